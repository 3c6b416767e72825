"""``threatgraph queries``: list the named-query library with descriptions and parameters."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from threatgraph.querylib import load_library


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "queries", help="list the named queries", description="List the named SPARQL queries of the library."
    )
    p.add_argument("--format", "-f", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lib = load_library()
    if args.format == "json":
        sys.stdout.write(json.dumps([q.describe() for q in lib.values()], indent=1) + "\n")
        return 0
    for q in lib.values():
        print(f"{q.name}  —  {q.title}")
        print(f"    {q.description}")
        for p in q.params:
            default = f" [default={p.default}]" if p.default is not None else ""
            print(f"    --param {p.name}=<{p.type}>{default}  {p.description}")
    return 0
