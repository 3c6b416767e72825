"""``threatgraph import-model FILE``: convert an OTM, Threat Dragon, Threagile, MS TMT, TM-BOM or pytm model to Turtle."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from threatgraph.commands._output import write_output
from threatgraph.errors import InputError
from threatgraph.interchange import convert_file


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "import-model",
        help="convert an OTM, Threat Dragon, Threagile, MS Threat Modeling Tool, TM-BOM or pytm model into Turtle",
        description="Detects the format (OTM JSON/YAML, OWASP Threat Dragon JSON, Threagile YAML, Microsoft Threat "
        "Modeling Tool .tm7, OWASP Threat Model Library TM-BOM JSON, pytm JSON), converts it and "
        "writes Turtle; fields with no home in the ontology are listed on stderr. See docs/interchange.md.",
    )
    p.add_argument("file", metavar="FILE", help="the model to convert (.json, .otm, .yaml, .yml, .tm7)")
    p.add_argument("--output", "-o", metavar="OUT.ttl", help="write the Turtle to OUT.ttl instead of stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="do not list the fields that had no home")
    p.add_argument("--ml-classes", metavar="FILE", help="your phrases giving elements their tgml: ML class, tried "
                   "before the shipped ones (data/ml-classes.conf); PHRASE = none stops a phrase (docs/interchange.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path}: no such file", hint="check the path")
    result = convert_file(path, ml_classes=args.ml_classes)
    if result is None:
        raise InputError(
            f"{path}: not an OTM, Threat Dragon, Threagile, Threat Modeling Tool, TM-BOM or pytm model (detected by "
            "extension and content)",
            hint="RDF models need no import: give them to analyze directly",
        )
    for w in result.warnings:
        print(f"threatgraph: warning: {w} (read anyway)", file=sys.stderr)
    for w in result.classed:
        print(f"threatgraph: warning: {w}", file=sys.stderr)
    header = (f"# Imported by threatgraph import-model from {path.name} ({result.format}).\n"
              f"# {len(result.unmapped)} kinds of source field had no home in the ontology (see stderr / docs/interchange.md).\n")
    text = header + result.graph.serialize(format="turtle")
    if args.output:
        write_output(args.output, [text])
    else:
        sys.stdout.write(text)
    if not args.quiet:
        for note in result.unmapped:
            print(f"threatgraph: not imported: {note}", file=sys.stderr)
        n = sum(1 for _ in result.graph.subjects(unique=True))
        print(f"threatgraph: imported {result.format} model {path}: {len(result.graph)} triples about {n} resources",
              file=sys.stderr)
    return 0
