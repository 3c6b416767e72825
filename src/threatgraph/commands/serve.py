"""``threatgraph serve``: a read-only (by default) SPARQL 1.1 endpoint with a query page and limits."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from threatgraph.analysis.engine import Engine
from threatgraph.analysis.pipeline import write_graphs
from threatgraph.commands._analysis import add_model_options, run_pipeline
from threatgraph.server import ServerConfig, SparqlServer, write_dataset
from threatgraph.store import EmbeddedStore, open_store


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="serve the knowledge graph over SPARQL 1.1 (query page at /)",
        description="Serve a store and/or analysed models over the SPARQL 1.1 Protocol (/query, /update), the Graph "
        "Store Protocol (/store) and a query page (/); the vocabulary at /ontology and the graph's own IRIs "
        "(/resource?iri=IRI, /attack/ID, /atlas/ID, /finding/...) as linked data. Read-only unless --update-token is given. Each query runs in "
        "a forked worker that is killed at the time limit.",
    )
    p.add_argument("--store", metavar="DIR", help="embedded store directory to serve (read at start, never written)")
    p.add_argument("--model", "-m", action="append", default=[], metavar="FILE", help="analyse and serve this model")
    add_model_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=7879, help="port (default 7879; 0 picks a free one)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="S", help="seconds per query (default 10)")
    p.add_argument("--write-time-limit", type=float, default=60.0, metavar="S",
                   help="seconds per write (update, LOAD, upload); past it the write is abandoned (default 60)")
    p.add_argument("--max-rows", type=int, default=100_000, help="rows/triples per result (default 100000)")
    p.add_argument("--max-body", type=int, default=1_000_000, metavar="BYTES", help="request size limit (default 1 MB)")
    p.add_argument("--workers", type=int, default=2, help="query worker processes (default 2)")
    p.add_argument(
        "--reserve-workers", type=int, default=2, metavar="N",
        help="extra workers started on demand only for clients that hold none, so that clients sending slow "
        "queries cannot make everyone else wait (default 2)",
    )
    p.add_argument("--memory-limit-mb", type=int, default=1024, help="extra memory per query worker (default 1024)")
    p.add_argument(
        "--update-token",
        default=None,
        help="enable SPARQL Update and graph writes for requests with 'Authorization: Bearer TOKEN' "
        "(default: $THREATGRAPH_UPDATE_TOKEN; unset = read-only)",
    )
    p.add_argument(
        "--allow-load", action="append", default=[], metavar="URL",
        help="http(s) URL prefix that LOAD may read (same scheme, host and port; repeatable; default: none)",
    )
    p.add_argument(
        "--allow-service", action="append", default=[], metavar="URL",
        help="http(s) endpoint that SERVICE may call (same scheme, host and port; repeatable; default: none)",
    )
    p.add_argument(
        "--allowed-host", action="append", default=[], metavar="NAME",
        help="also answer requests whose Host header is NAME or NAME:PORT (a proxy's public name; '*' = any). "
        "By default only the bound address (and localhost when bound to loopback) is answered: a guard "
        "against DNS rebinding. Repeatable",
    )
    p.add_argument("--connection-timeout", type=float, default=30.0, metavar="S",
                   help="close a connection silent for S seconds (idle, slow sender or slow reader; default 30)")
    p.add_argument("--max-connections", type=int, default=256, metavar="N",
                   help="open connections the server holds (more are answered 503; default 256)")
    p.add_argument("--max-connections-per-client", type=int, default=64, metavar="N",
                   help="open connections one client address may hold (default 64)")
    p.add_argument("--max-buffered-mb", type=int, default=512, metavar="MB",
                   help="responses waiting for slow readers, in total (default 512)")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN", help="allow this CORS origin ('*' = any)")
    p.set_defaults(func=run)


def build_dataset(store_dir: str | None, models: list[str], args: argparse.Namespace | None = None) -> str | None:
    """Collect what to serve into a temporary N-Quads file (returns its path; None when the model is
    refused, after saying why). ``models`` are analysed by the pipeline, as `analyze --store` would, with the
    store's knowledge; the store directory itself is only read."""
    analysis = None
    if models:
        analysis = run_pipeline(args or argparse.Namespace(), models, store=store_dir)
        if analysis is None:
            return None
    mem = EmbeddedStore()
    if store_dir:
        disk = open_store(store_dir, must_exist=True, read_only=True)  # a read command: never creates or changes a store
        mem.add_quads(disk.quads())
        del disk
    if analysis is not None:
        write_graphs(mem, analysis.store)  # replaces an analysis the store held
    elif not store_dir:
        Engine(mem).load_ontology()
    return write_dataset(mem.quads())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    cfg = ServerConfig(
        host=args.host,
        port=args.port,
        time_limit=args.time_limit,
        write_time_limit=args.write_time_limit,
        max_rows=args.max_rows,
        max_body=args.max_body,
        workers=args.workers,
        reserve_workers=args.reserve_workers,
        memory_limit_mb=args.memory_limit_mb,
        update_token=args.update_token or os.environ.get("THREATGRAPH_UPDATE_TOKEN") or None,
        allow_load=tuple(args.allow_load),
        allow_service=tuple(args.allow_service),
        cors_origins=tuple(args.cors),
        allowed_hosts=tuple(args.allowed_host),
        connection_timeout=args.connection_timeout,
        max_connections=args.max_connections,
        max_connections_per_client=args.max_connections_per_client,
        max_buffered_mb=args.max_buffered_mb,
    )
    cfg.validate()
    path = build_dataset(args.store, args.model, args)
    if path is None:
        return 1
    try:
        server = SparqlServer(cfg, path)
    finally:
        os.unlink(path)
    mode = "read-write (bearer token)" if cfg.update_token else "read-only"
    print(f"threatgraph: serving {server.pool.size_at_start} quads at {server.url}/ ({mode}); "
          f"SPARQL endpoint {server.url}/query, vocabulary {server.url}/ontology", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly (workers and zygote) on kill -TERM
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
