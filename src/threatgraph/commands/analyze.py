"""``threatgraph analyze MODEL...``: derive threats with explanations; exit 1 at/above ``--fail-on``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from threatgraph.analysis.closure import Triple, closure
from threatgraph.analysis.engine import Engine, labels_of, no_gc
from threatgraph.analysis.findings import read_findings
from threatgraph.analysis.model import ModelLoad, load_model_files
from threatgraph.analysis.ontology import load_ontology
from threatgraph.analysis.paths import read_paths
from threatgraph.analysis.rules import SEVERITIES, severity_rank
from threatgraph.commands._storeargs import add_auth_args, remote_options
from threatgraph.export import EXPORT_FORMATS, build_context, render_export, with_declared
from threatgraph.export.context import ReportContext, declared_threats
from threatgraph.export.markdown import declared_text
from threatgraph.report import FORMATS, findings_json, render_paths, render_table, render_turtle
from threatgraph.store import open_store


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "analyze",
        help="derive STRIDE and LINDDUN threats for a system model",
        description="Validate-free analysis of one or more RDF system models (Turtle or any RDF syntax).",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="system model file(s) in Turtle or another RDF syntax")
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default=None,
        help="exit 1 when any finding has this severity or higher (for CI gates)",
    )
    p.add_argument(
        "--min-severity",
        choices=SEVERITIES,
        default="info",
        help="only show findings at or above this severity (default: info = all)",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--endpoint", metavar="URL", help="run the derivation on this remote SPARQL 1.1 store")
    add_auth_args(p)
    p.add_argument(
        "--shapes", action="append", default=[], metavar="FILE", help="extra SHACL shapes file for the validation (repeatable)"
    )
    p.add_argument("--force", action="store_true", help="analyse even when the model has validation violations")
    p.add_argument(
        "--store",
        metavar="DIR",
        help="analyse in this persistent store (where `threatgraph import` loaded ATT&CK/ATLAS/D3FEND releases); "
        "the model, inferred and findings graphs are replaced, release graphs are kept",
    )
    p.add_argument(
        "--knowledge",
        nargs="+",
        metavar="SRC",
        help="load threat knowledge before the analysis: `shared` (ATT&CK 18.1, ATLAS, D3FEND from the pinned "
        "reference data) or knowledge file paths (ATT&CK STIX *.json, ATLAS.yaml, D3FEND *.ttl)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with no_gc():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    # Parse and reason once; validation and the engine share the model and its closure.
    loaded = load_model_files(args.models)
    for w in loaded.warnings:  # before validation, which may refuse the model
        print(f"threatgraph: warning: {w}", file=sys.stderr)
    inferred = closure(load_ontology().graph, loaded.graph)
    if not refuse_invalid(args, loaded, inferred):
        return 1
    if args.endpoint:
        store = open_store(endpoint=args.endpoint, **remote_options(args))
    else:
        store = open_store(getattr(args, "store", None))
    if getattr(args, "knowledge", None):
        from threatgraph.analysis.techniques import load_knowledge

        load_knowledge(store, args.knowledge)
    engine = Engine(store)
    analysis = engine.analyze(args.models, loaded=loaded, inferred=inferred)
    for w in analysis.warnings:
        if w not in loaded.warnings:  # printed above
            print(f"threatgraph: warning: {w}", file=sys.stderr)
    labels = labels_of(analysis.store)
    findings = read_findings(analysis.store, labels)
    floor = severity_rank(args.min_severity)
    shown = [f for f in findings if f.severity_rank >= floor]
    def context() -> ReportContext:  # issue 7: exports and declared threats
        return build_context(analysis.store, shown, labels, title=f"Threat analysis of {', '.join(analysis.model_files)}",
                             model_files=analysis.model_files, warnings=analysis.warnings, rules=analysis.rules,
                             all_findings=findings)

    if args.format in ("table", "json"):
        paths = read_paths(analysis.store, labels, findings)  # issue 4: attack paths with techniques per hop
        # The full export context costs as much as the analysis on big models: build it only when the
        # model declares threats to compare with (imported Threat Dragon / OTM / Threagile models).
        declared = bool(declared_threats(analysis.store, labels, findings))
        if args.format == "table":
            text = render_table(shown) + render_paths(paths) + (declared_text(context()) if declared else "")
        else:
            text = findings_json(shown, model_files=analysis.model_files, warnings=analysis.warnings, paths=paths,
                                 releases=analysis.releases)
            if declared:
                text = with_declared(text, context())
    elif args.format == "markdown" or args.format in EXPORT_FORMATS:
        text = render_export(args.format, context(), analysis.store)
    else:
        text = render_turtle(analysis.store)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    if args.fail_on:
        limit = severity_rank(args.fail_on)
        hits = [f for f in findings if f.severity_rank >= limit]
        if hits:
            print(
                f"threatgraph: {len(hits)} finding(s) at or above {args.fail_on}",
                file=sys.stderr,
            )
            return 1
    return 0


def refuse_invalid(args: argparse.Namespace, loaded: ModelLoad | None = None, inferred: list[Triple] | None = None) -> bool:
    """Validate the model first (issue 5); False (after listing the violations on stderr) unless ``--force``."""
    from threatgraph.analysis.validation import validate_models

    report = validate_models(args.models, extra_shapes=getattr(args, "shapes", []), loaded=loaded, inferred=inferred)
    bad = report.violations
    if not bad:
        return True
    if getattr(args, "force", False):
        print(f"threatgraph: warning: analysing despite {len(bad)} validation violation(s) (--force)", file=sys.stderr)
        return True
    print(f"threatgraph: error: the model has {len(bad)} validation violation(s); refusing to analyse it:", file=sys.stderr)
    for issue in bad:
        print(f"  - {issue.focus_label} <{issue.focus}>: {issue.message}", file=sys.stderr)
    print("  hint: fix them (see `threatgraph validate`), or pass --force to analyse anyway", file=sys.stderr)
    return False
