"""``threatgraph query NAME|FILE``: run a named query (or a query file) with typed parameters."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from threatgraph.analysis.engine import Engine
from threatgraph.commands._storeargs import add_store_args, store_from_args
from threatgraph.errors import InputError
from threatgraph.querylib import FORMATS, render, resolve
from threatgraph.querylib import run as run_query


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "query",
        help="run a named query from the library (or a .rq file)",
        description="Run a named SPARQL query with typed parameters on the embedded store, a store directory "
        "or a remote SPARQL endpoint. Parameters are bound as RDF terms, never pasted into the query.",
    )
    p.add_argument("query", metavar="NAME|FILE", help="library query name (see `threatgraph queries`) or a .rq file")
    p.add_argument(
        "--param", "-p", action="append", default=[], metavar="KEY=VALUE", help="query parameter (repeatable)"
    )
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--model", "-m", action="append", default=[], metavar="FILE", help="analyse this model first")
    add_store_args(p)
    p.set_defaults(func=run)


def parse_params(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"bad --param {item!r}", hint="use --param NAME=VALUE")
        out[key.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    q = resolve(args.query)
    params = parse_params(args.param)
    store = store_from_args(args)
    if args.model:
        Engine(store).analyze(args.model)
    elif not args.store and not args.endpoint:
        Engine(store).load_ontology()
    sys.stdout.write(render(run_query(store, q, params), args.format))
    return 0
