"""``threatgraph analyze MODEL...``: derive threats with explanations; exit 1 at/above ``--fail-on`` (on the finding level)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from threatgraph.analysis.rules import SEVERITIES, load_all_rules, severity_rank
from threatgraph.commands._output import write_output, write_stdout
from threatgraph.commands._storeargs import add_auth_args, remote_options
from threatgraph.report import DETAILS, FORMATS


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "analyze",
        help="derive STRIDE and LINDDUN threats for a system model",
        description="Derive STRIDE and LINDDUN threats, with ATT&CK/ATLAS techniques, mitigations, risk and "
        "attack paths when knowledge is loaded, for one or more RDF system models (Turtle or any RDF syntax). "
        "The models are validated first (SHACL, as in 'threatgraph validate'); an invalid model is refused "
        "(exit 1, violations on stderr) unless --force is given. Every finding has one level: its risk level "
        "where computed, else the rule's severity (docs/risk.md); --min-severity and --fail-on use it.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="system model file(s) in Turtle or another RDF syntax")
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default=None,
        help="exit 1 when any finding has this level or higher (for CI gates); threats that declared "
        "protective facts mitigate (status mitigated, e.g. an encrypted flow's sniffing) never count",
    )
    p.add_argument(
        "--min-severity",
        choices=SEVERITIES,
        default="info",
        help="only show findings at or above this level (default: info = all)",
    )
    p.add_argument(
        "--detail",
        choices=DETAILS,
        default="normal",
        help="table detail: summary (counts, top risks, top mitigations), normal (default: plus one block per "
        "element, highest residual risk first), full (every finding with all techniques)",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--endpoint", metavar="URL", help="run the derivation on this remote SPARQL 1.1 store")
    add_auth_args(p)
    p.add_argument(
        "--shapes", action="append", default=[], metavar="FILE", help="extra SHACL shapes file for the validation (repeatable)"
    )
    p.add_argument("--force", action="store_true", help="analyse even when the model has validation violations")
    p.add_argument("--ml-classes", metavar="FILE", help="your phrases giving imported (non-RDF) elements their tgml: "
                   "ML class, tried before the shipped ones; PHRASE = none stops a phrase (docs/interchange.md)")
    p.add_argument(
        "--store",
        metavar="DIR",
        help="analyse in this persistent store (where `threatgraph import` loaded ATT&CK/ATLAS/D3FEND releases); "
        "the store is only read, unless --save",
    )
    p.add_argument(
        "--save",
        action="store_true",
        help="write the analysis (model, inferred and findings graphs) into --store DIR, replacing the previous "
        "analysis there (release graphs are kept)",
    )
    p.add_argument(
        "--knowledge",
        nargs="+",
        metavar="SRC",
        help="load threat knowledge before the analysis: `shared` (ATT&CK 18.1, ATLAS, D3FEND from the pinned "
        "reference data) or knowledge file paths (ATT&CK STIX *.json, ATLAS.yaml, D3FEND *.ttl)",
    )
    p.add_argument(
        "--frameworks",
        metavar="LIST",
        help="comma-separated: stride, linddun. Default: STRIDE for every element, LINDDUN where an element "
        "holds, processes or carries personal data; naming linddun applies LINDDUN to every element",
    )
    p.add_argument(
        "--rules", action="append", default=[], metavar="DIR",
        help="also run your own rules from DIR (.rq files in the format of queries/rules; repeatable)",
    )
    p.add_argument(
        "--ontology", action="append", default=[], metavar="FILE",
        help="ontology extension loaded with the shipped ontology: new ML classes, applicability axioms "
        "(check it with `threatgraph check-ontology --extra FILE`; repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import gc

    collecting = gc.isenabled()
    gc.disable()  # from here on: the analysis modules' imports too (no garbage either, issue 14)
    try:
        from threatgraph.analysis.engine import no_gc

        with no_gc():
            return _run(args)
    finally:
        from threatgraph import lifetime

        if collecting and not lifetime.kept():  # a one-shot process ending without freeing: enabled again,
            gc.enable()  # the collector would scan everything the analysis made (~20 M instructions) first


def _ontology(args: argparse.Namespace) -> Any:
    from threatgraph.analysis.ontology import load_ontology

    return load_ontology(extra=args.ontology)


def _run(args: argparse.Namespace) -> int:
    from threatgraph.analysis.engine import labels_of
    from threatgraph.analysis.findings import findings_of
    from threatgraph.commands._analysis import run_pipeline
    from threatgraph.export import EXPORT_FORMATS, build_context, render_export
    from threatgraph.export.context import ReportContext
    from threatgraph.report import render_report_chunks, render_turtle

    analysis = run_pipeline(
        args,
        args.models,
        knowledge=getattr(args, "knowledge", None),
        store=getattr(args, "store", None),
        endpoint=args.endpoint,
        remote=remote_options(args) if args.endpoint else None,
        save=getattr(args, "save", False),
        extra_shapes=getattr(args, "shapes", []),
        rules=load_all_rules(args.rules, ontology=_ontology(args)) if args.rules else None,
        ontology_extra=args.ontology,
        frameworks=[f.strip() for f in args.frameworks.split(",") if f.strip()] if args.frameworks else None,
    )
    if analysis is None:
        return 1
    labels = labels_of(analysis.store, complete=False)  # the finding graph adds no label: leave it deferred
    findings = findings_of(analysis, labels)  # what the engine kept + the second stage read by predicate
    def context() -> ReportContext:  # issue 7: exports and declared threats
        # the findings shown, filtered only here: the table, JSON and Markdown reports filter by min_level
        # themselves (at 10 k elements each finding's level was computed once more for nothing, ~0.1 s)
        floor = severity_rank(args.min_severity)
        shown = [f for f in findings if f.level_rank >= floor]
        return build_context(analysis.store, shown, labels, title=f"Threat analysis of {', '.join(analysis.model_files)}",
                             model_files=analysis.model_files, warnings=analysis.warnings, rules=analysis.rules,
                             all_findings=findings)

    if args.format in ("table", "json", "markdown"):  # issue 15: summary first, one level scale
        # pieces written one after another: the JSON report is never held whole (issue 14)
        chunks = render_report_chunks(args.format, analysis, findings, labels, detail=args.detail,
                                      min_level=args.min_severity)
    elif args.format in EXPORT_FORMATS:
        chunks = [render_export(args.format, context(), analysis.store)]
    else:
        chunks = [render_turtle(analysis.store)]
    if args.output:  # whole or not at all: a failure midway leaves an earlier report as it was
        write_output(args.output, chunks)
    else:
        write_stdout(chunks)
    if not getattr(args, "save", False):  # every write is done: the process may end without freeing
        from threatgraph import lifetime

        lifetime.keep(analysis, findings, labels, chunks)
    if args.fail_on:
        limit = severity_rank(args.fail_on)
        # a threat that declared protective facts mitigate (a mitigated-by rule) is reported, never gated on
        hits = [f for f in findings if f.level_rank >= limit and not f.mitigated_by]
        if hits:
            print(
                f"threatgraph: {len(hits)} finding(s) at or above {args.fail_on}",
                file=sys.stderr,
            )
            return 1
    return 0
