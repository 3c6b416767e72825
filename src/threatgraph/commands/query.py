"""``threatgraph query NAME|FILE|TEXT|-``: run a named query, a query file, SPARQL text or stdin."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from threatgraph.analysis.engine import Engine
from threatgraph.analysis.pipeline import write_graphs
from threatgraph.commands._analysis import add_model_options, run_pipeline
from threatgraph.commands._storeargs import add_store_args, remote_options, store_from_args
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
    add_model_options(p)
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


def _holds_store(directory: str) -> bool:
    path = Path(directory).expanduser()
    return path.is_dir() and any(path.iterdir())


def run(args: argparse.Namespace) -> int:
    q = resolve(args.query)
    params = parse_params(args.param)
    if args.model and args.store and not args.replace:
        raise InputError(f"query --model with --store {args.store} would replace the analysis stored there",
                         hint="pass --replace to do so, or leave out --store to analyse the model in memory")
    if args.model:  # the analysis pipeline, as `analyze` runs it (knowledge from the store or endpoint)
        existing = bool(args.store) and _holds_store(args.store)
        analysis = run_pipeline(args, args.model, store=args.store if existing else None, save=existing,
                                endpoint=args.endpoint, remote=remote_options(args) if args.endpoint else None)
        if analysis is None:
            return 1
        if args.store and not existing:  # a new store directory: the analysis is all it holds
            store = store_from_args(args, must_exist=False)
            write_graphs(store, analysis.store)
        else:
            store = analysis.store if not (args.store or args.endpoint) else store_from_args(args)
    else:
        store = store_from_args(args)
        if not args.store and not args.endpoint:
            Engine(store).load_ontology()
    sys.stdout.write(render(run_query(store, q, params), args.format, wide=args.wide))
    return 0
