"""``threatgraph check-ontology [--extra FILE...]``: HermiT over the shipped ontology plus your extension.

Exit 0 when the merged ontology is consistent, every class is satisfiable and every threatgraph term
the extension uses is declared; 1 otherwise (with the axioms involved); 2 for unreadable files or when
the optional ``reasoner`` extra (owlready2) or Java is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check-ontology",
        help="check the ontology plus your extension with HermiT (consistency, unsatisfiable classes)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--extra", nargs="+", action="extend", default=[], metavar="FILE",
        help="ontology extension file(s): new ML classes, applicability axioms, mappings (Turtle, RDF/XML, …)",
    )
    p.add_argument("--format", "-f", choices=("text", "json"), default="text")
    p.add_argument("--max-runs", type=int, default=12, metavar="N",
                   help="HermiT runs allowed to narrow an inconsistency down to a minimal set of axioms (default 12)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from threatgraph.analysis.owlcheck import check_ontology

    result = check_ontology(args.extra, max_runs=max(1, args.max_runs))
    if args.format == "json":
        sys.stdout.write(json.dumps(result.as_json(), indent=1) + "\n")
    else:
        sys.stdout.write(result.render())
    return 0 if result.ok else 1
