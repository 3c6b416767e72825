"""``threatgraph validate MODEL...``: check a model is complete enough to analyse (SHACL shapes).

Exit 0 without violations (warnings and infos never fail unless ``--strict``), 1 with violations,
2 on unreadable input (model or shapes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from threatgraph import __version__
from threatgraph.analysis.model import load_model_files
from threatgraph.analysis.validation import METHODS, Issue, ValidationReport, validate_models
from threatgraph.commands._output import write_output
from threatgraph.errors import InputError
from threatgraph.store import open_store
from threatgraph.terms import PREFIXES

FORMATS: tuple[str, ...] = ("table", "json", "turtle")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "validate",
        help="check that a system model is complete (SHACL shapes)",
        description=(
            "Validate one or more RDF system models against threatgraph's SHACL shapes (and your own, "
            "--shapes), on the model plus its OWL 2 RL closure. Exit 0: no violations; 1: violations "
            "(or warnings with --strict); 2: unreadable model or shapes."
        ),
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="system model file(s) in Turtle or another RDF syntax")
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument(
        "--shapes",
        action="append",
        default=[],
        metavar="FILE",
        help="extra SHACL shapes file (Turtle), e.g. your organisation's policy; repeatable",
    )
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    p.add_argument(
        "--store",
        metavar="DIR",
        help="an on-disk store with imported ATT&CK/ATLAS releases: cited IDs are checked against them",
    )
    p.add_argument("--method", choices=METHODS, default="fast", help=argparse.SUPPRESS)
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--ml-classes", metavar="FILE", help="your phrases giving imported (non-RDF) elements their tgml: "
                   "ML class, tried before the shipped ones (data/ml-classes.conf; docs/interchange.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.store and not Path(args.store).is_dir():
        raise InputError(
            f"{args.store}: no such store directory",
            hint="import releases first: threatgraph import attack --store DIR (and atlas)",
        )
    knowledge = open_store(args.store, must_exist=True, read_only=True) if args.store else None
    loaded = load_model_files(args.models, ml_classes=args.ml_classes)
    for w in loaded.warnings:
        print(f"threatgraph: warning: {w}", file=sys.stderr)
    report = validate_models(args.models, extra_shapes=args.shapes, knowledge=knowledge, method=args.method,
                             loaded=loaded)
    if args.format == "json":
        text = report_json(report)
    elif args.format == "turtle":
        text = report.graph.serialize(format="turtle")
    else:
        text = render_table(report)
    if args.output:
        write_output(args.output, [text])
    else:
        sys.stdout.write(text)
    if report.failed(args.strict):
        what = f"{report.count('violation')} violation(s)"
        if args.strict:
            what += f", {report.count('warning')} warning(s) (--strict)"
        print(f"threatgraph: the model does not validate: {what}", file=sys.stderr)
        return 1
    return 0


def compact(iri: str | None) -> str:
    """``tg:holds`` for a threatgraph IRI; other IRIs unchanged.

    >>> compact("https://w3id.org/threatgraph/ontology#holds")
    'tg:holds'
    """
    if iri is None:
        return ""
    best = ""
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(ns) > len(best):
            best = ns
            out = f"{prefix}:{iri[len(ns):]}"
    return out if best else iri


def summary_line(report: ValidationReport) -> str:
    """``N violations, N warnings, N infos on N elements``."""
    elements = len({i.focus for i in report.issues})
    return (
        f"{report.count('violation')} violations, {report.count('warning')} warnings, "
        f"{report.count('info')} infos on {elements} elements"
    )


def render_table(report: ValidationReport, *, width: int | None = None) -> str:
    """Readable text, grouped by element: severity, path, value, and the message with the fix."""
    width = width or max(80, min(shutil.get_terminal_size((120, 20)).columns, 160))
    lines: list[str] = []
    for _focus, group in groupby(report.issues, key=lambda i: i.focus):
        items = list(group)
        head = items[0]
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        lines.append(f"{head.focus_label}{kind}  <{head.focus}>")
        for i in items:
            where = compact(i.path)
            if i.value_label:
                where += f" = {i.value_label}"
            lines.append(f"  {i.severity:<9}  {where}".rstrip())
            for ln in textwrap.wrap(i.message, max(40, width - 13)):
                lines.append(f"             {ln}")
        lines.append("")
    if not report.issues:
        lines.append("The model conforms to every shape.")
    lines.append(summary_line(report))
    if report.knowledge_graphs:
        lines.append("Knowledge releases checked: " + ", ".join(report.knowledge_graphs))
    return "\n".join(lines) + "\n"


def _issue_json(i: Issue) -> dict[str, Any]:
    return {
        "severity": i.severity,
        "element": {"iri": i.focus, "label": i.focus_label, "kind": i.focus_kind},
        "path": i.path,
        "value": i.value,
        "valueLabel": i.value_label,
        "message": i.message,
        "text": i.text,
        "shape": i.shape,
    }


def report_json(report: ValidationReport, issues: Sequence[Issue] | None = None) -> str:
    """JSON document: tool, inputs, summary, conforms (no violations), and every result."""
    doc = {
        "tool": {"name": "threatgraph", "version": __version__},
        "models": report.model_files,
        "shapes": report.shape_files,
        "knowledge": report.knowledge_graphs,
        "conforms": not report.count("violation"),
        "summary": {s: report.count(s) for s in ("violation", "warning", "info")},
        "results": [_issue_json(i) for i in (issues if issues is not None else report.issues)],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
