"""``threatgraph vocabulary``: the vocabulary reference generated from the ontology (docs/vocabulary.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "vocabulary",
        help="print the vocabulary reference (every class and property, label properties, SPARQL examples)",
        description="Print the reference of the tg:, tgml:, kb:, stride: and linddun: vocabularies, generated from "
        "the ontology files. docs/vocabulary.md is the Markdown output.",
    )
    p.add_argument("--format", "-f", choices=("markdown", "html"), default="markdown")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from threatgraph.vocabulary import build_vocabulary, vocabulary_html, vocabulary_markdown

    vocab = build_vocabulary()
    sys.stdout.write(vocabulary_markdown(vocab) if args.format == "markdown" else vocabulary_html(vocab))
    return 0
