"""Shared ``--store`` / ``--endpoint`` options of the query, serve and push commands."""

from __future__ import annotations

import argparse
import os
from typing import Any

from threatgraph.store import Store, open_store


def add_store_args(p: argparse.ArgumentParser, *, endpoint: bool = True) -> None:
    """Add ``--store DIR`` and (optionally) ``--endpoint URL --user U --password P --token T``."""
    p.add_argument("--store", metavar="DIR", help="embedded store directory (from `threatgraph import`/`analyze`)")
    if endpoint:
        p.add_argument("--endpoint", metavar="URL", help="remote SPARQL 1.1 query URL instead of the embedded store")
        add_auth_args(p)


def add_auth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", help="user name for the remote endpoint (HTTP Basic; Digest for Virtuoso /sparql)")
    p.add_argument(
        "--password", help="password for --user (default: $THREATGRAPH_ENDPOINT_PASSWORD)", default=None
    )
    p.add_argument("--token", help="bearer token for the remote endpoint (default: $THREATGRAPH_ENDPOINT_TOKEN)")


def remote_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "user": args.user,
        "password": args.password or os.environ.get("THREATGRAPH_ENDPOINT_PASSWORD"),
        "token": args.token or os.environ.get("THREATGRAPH_ENDPOINT_TOKEN"),
    }


def store_from_args(args: argparse.Namespace, *, must_exist: bool = True) -> Store:
    """The store the options name: remote endpoint, embedded directory, or a new in-memory store.

    An embedded directory must hold a store already unless ``must_exist`` is false (a command that writes).
    """
    if getattr(args, "endpoint", None):
        return open_store(endpoint=args.endpoint, **remote_options(args))
    read_only = must_exist and bool(args.store)  # a read command: opened read-only, the directory unchanged
    return open_store(args.store, must_exist=must_exist and bool(args.store), read_only=read_only)
