"""``threatgraph query NAME|FILE|TEXT|-``: run a named query, a query file, SPARQL text or stdin."""

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
        help="run a named query, a .rq file, SPARQL text or - (stdin)",
        description="Run a SPARQL query with typed parameters on the embedded store, a store directory "
        "or a remote SPARQL endpoint. Parameters are bound as RDF terms, never pasted into the query. "
        "A query that does not parse exits 2 with its line and column.",
    )
    p.add_argument(
        "query",
        metavar="NAME|FILE|TEXT|-",
        help="library query name (see `threatgraph queries`), a .rq file, inline SPARQL text, or - to read stdin",
    )
    p.add_argument(
        "--param", "-p", action="append", default=[], metavar="KEY=VALUE", help="query parameter (repeatable)"
    )
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--wide", action="store_true", help="table output: do not cut long cells")
    p.add_argument("--model", "-m", action="append", default=[], metavar="FILE", help="analyse this model first")
    p.add_argument("--replace", action="store_true",
                   help="with --model and --store: write the analysis into the store, replacing the one stored there")
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
    if args.model and args.store and not args.replace:
        raise InputError(f"query --model with --store {args.store} would replace the analysis stored there",
                         hint="pass --replace to do so, or leave out --store to analyse the model in memory")
    store = store_from_args(args, must_exist=not args.model)
    if args.model:
        Engine(store).analyze(args.model)
    elif not args.store and not args.endpoint:
        Engine(store).load_ontology()
    sys.stdout.write(render(run_query(store, q, params), args.format, wide=args.wide))
    return 0
