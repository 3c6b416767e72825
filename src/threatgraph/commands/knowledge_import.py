"""``threatgraph import attack|atlas|d3fend|capec [SOURCE] [--store DIR]``: load a knowledge release."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from threatgraph.knowledge.fetch import DEFAULT_URLS
from threatgraph.knowledge.releases import PARSERS, load_release
from threatgraph.store import open_store
from threatgraph.store.base import Store

DEFAULT_STORE = "~/.local/share/threatgraph/store"


def store_location(arg: str | None, *, create: bool = True) -> str:
    """``--store`` if given, else ``$THREATGRAPH_STORE``, else ``~/.local/share/threatgraph/store``
    (created, with its parents, when ``create``)."""
    loc = arg or os.environ.get("THREATGRAPH_STORE") or DEFAULT_STORE
    path = Path(loc).expanduser()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return str(path)


def open_cli_store(arg: str | None, *, create: bool = True) -> Store:
    """Open the persistent store named by ``--store`` / the environment; a read command passes
    ``create=False`` and gets "no store at DIR" (exit 2) instead of a new empty store, opened read-only
    (reading leaves the directory, and so the manifest of ``analyze --store``, unchanged)."""
    return open_store(store_location(arg, create=create), must_exist=not create, read_only=not create)


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--store DIR``."""
    parser.add_argument(
        "--store",
        metavar="DIR",
        help=f"store directory (default: $THREATGRAPH_STORE or {DEFAULT_STORE})",
    )


class StderrProgress:
    """Progress lines on stderr; on a terminal, percentage lines overwrite each other."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._inline = False

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        inline = self.tty and message.startswith("  ")
        if inline:
            sys.stderr.write("\r" + message.ljust(60))
        else:
            sys.stderr.write(("\n" if self._inline else "") + message + "\n")
        sys.stderr.flush()
        self._inline = inline


def register(sub: Any) -> None:
    """Add the ``import`` subcommand."""
    p = sub.add_parser(
        "import",
        help="import a MITRE knowledge release (ATT&CK, ATLAS, D3FEND, CAPEC) into the store",
        description="Import one release into its own named graph, with provenance. The store is only "
        "changed if the whole import succeeds; importing the same file again does nothing.",
    )
    p.add_argument("kind", choices=sorted(PARSERS), help="what SOURCE holds")
    p.add_argument(
        "source",
        nargs="?",
        help="file path, http(s) URL (plain or gzip) or taxii+https://…/collections/ID/; ATLAS as ATLAS.yaml "
        "or its STIX 2.1 bundle stix-atlas.json (default: MITRE's published file, "
        f"e.g. {DEFAULT_URLS['attack']})",
    )
    p.add_argument("--release-version", metavar="V", help="release version when the file does not say")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_store_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import and print one summary line."""
    location = store_location(args.store)
    _import(args, open_store(location))  # the store is closed when it returns
    # the manifest analyses read (knowledge/view.py: analyze --store without opening the store), written
    # after the store is closed (closing flushes, which changes its files)
    from threatgraph.knowledge.view import refresh_manifest

    refresh_manifest(location)
    return 0


def _import(args: argparse.Namespace, store: Store) -> None:
    progress = StderrProgress(args.quiet)
    res = load_release(store, args.kind, args.source, version=args.release_version, progress=progress)
    info = res.release
    if res.status == "unchanged":
        print(f"{info.source}/{info.version}: already loaded (same sha256 {info.sha256[:16]}), nothing to do")
    else:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(info.counts.items()))
        print(f"{info.source}/{info.version}: {res.status}, {info.quads:,} triples into <{info.graph}>")
        print(f"  {counts}")
    # compile the knowledge view analyses read (knowledge/view.py) now, so the next analysis does not
    from threatgraph.knowledge.view import prepare_view

    prepare_view(store, {info.graph: res.view_slice} if res.view_slice is not None else None)
