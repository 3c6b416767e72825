"""``threatgraph diff-model OLD NEW``: what changed between two versions of a system model and its findings."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from threatgraph.analysis.rules import SEVERITIES
from threatgraph.commands._output import write_output
from threatgraph.diffmodel import RENDERERS, diff_models


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "diff-model",
        help="compare two versions of a system model and their findings",
        description="Elements, flows and attributes added, removed or changed, and findings that appeared, "
        "disappeared or changed level/residual risk. Models may be RDF or any format import-model reads.",
    )
    p.add_argument("old", metavar="OLD", help="the earlier model file")
    p.add_argument("new", metavar="NEW", help="the later model file")
    p.add_argument("--format", "-f", choices=tuple(RENDERERS), default="table", help="output format (default: table)")
    p.add_argument("--fail-on", choices=SEVERITIES, default=None,
                   help="exit 1 when findings at or above this level appear (or rise to it); the level is the contextual "
                   "risk level where computed, else the severity, as analyze --fail-on uses it")
    p.add_argument("--min-severity", choices=SEVERITIES, default="info",
                   help="only list findings whose level is at or above this (default: info = all)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--ml-classes", metavar="FILE", help="your phrases giving imported (non-RDF) elements their tgml: "
                   "ML class, tried before the shipped ones (data/ml-classes.conf; docs/interchange.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    d = diff_models([args.old], [args.new], ml_classes=args.ml_classes)
    for w in d.warnings:
        print(f"threatgraph: warning: {w}", file=sys.stderr)
    hits = d.new_at_or_above(args.fail_on) if args.fail_on else []
    d = d.at_or_above(args.min_severity)
    text = RENDERERS[args.format](d)
    if args.output:
        write_output(args.output, [text])
    else:
        sys.stdout.write(text)
    if hits:
        print(f"threatgraph: {len(hits)} new finding(s) at or above {args.fail_on}", file=sys.stderr)
        return 1
    return 0
