"""``threatgraph releases [--store DIR] [--json]``: list the loaded knowledge releases."""

from __future__ import annotations

import argparse
import json
from typing import Any

from threatgraph.commands.knowledge_import import add_store_option, open_cli_store
from threatgraph.knowledge.releases import releases


def register(sub: Any) -> None:
    """Add the ``releases`` subcommand."""
    p = sub.add_parser("releases", help="list the knowledge releases loaded in the store")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    add_store_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one row per release (newest of each source marked with ``*``)."""
    infos = releases(open_cli_store(args.store, create=False))
    if args.json:
        print(json.dumps([i.as_json() for i in infos], indent=2))
        return 0
    if not infos:
        print("no releases loaded (use `threatgraph import`)")
        return 0
    newest = {i.source: i.graph for i in infos}
    rows = [("", "source", "version", "triples", "sha256", "imported", "from")]
    for i in infos:
        mark = "*" if newest[i.source] == i.graph else ""
        rows.append((mark, i.source, i.version, f"{i.quads:,}", i.sha256[:16], i.imported[:19], i.location))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0
