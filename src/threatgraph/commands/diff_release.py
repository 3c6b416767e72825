"""``threatgraph diff-release OLD NEW``: what changed between two knowledge releases."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from threatgraph.analysis.rules import SEVERITIES
from threatgraph.commands.knowledge_import import StderrProgress, add_store_option, open_cli_store
from threatgraph.errors import InputError
from threatgraph.knowledge.fetch import is_url
from threatgraph.knowledge.releases import diff_releases, load_release, resolve_release
from threatgraph.store import open_store
from threatgraph.store.base import Store

SECTIONS = ("added", "removed", "revoked", "deprecated", "changed")


def register(sub: Any) -> None:
    """Add the ``diff-release`` subcommand."""
    p = sub.add_parser(
        "diff-release",
        help="compare two knowledge releases (techniques and mitigations)",
        description="OLD and NEW are loaded releases (e.g. attack-enterprise/17.1) or files to read "
        "without storing them.",
    )
    p.add_argument("old", help="e.g. attack-enterprise/17.1, or a file path / URL")
    p.add_argument("new", help="e.g. attack-enterprise/18.1, or a file path / URL")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    p.add_argument("--kind", default="attack", help="import kind for file arguments (default attack)")
    p.add_argument(
        "--model", nargs="+", metavar="MODEL",
        help="what the update means for this system model: analyse it against OLD and NEW (ATT&CK STIX "
        "files) and compare the findings",
    )
    p.add_argument(
        "--knowledge", nargs="+", metavar="FILE",
        help="with --model: the ATLAS and D3FEND files both sides use (default: the shared reference data)",
    )
    p.add_argument(
        "--fail-on", choices=SEVERITIES, default=None,
        help="with --model: exit 1 when the update introduces a finding, an unmitigated technique or a "
        "higher risk at this level or above",
    )
    add_store_option(p)
    p.set_defaults(func=run)


def _side(spec: str, kind: str, store: Store | None, store_arg: str | None) -> tuple[Store, str]:
    if is_url(spec) or Path(spec).expanduser().is_file():
        scratch = open_store()
        res = load_release(scratch, kind, spec, progress=StderrProgress())
        return scratch, res.release.graph
    if store is None:
        raise InputError(f"{spec!r} is neither a file nor a loaded release")
    return store, resolve_release(store, spec)


def _change_text(changes: dict[str, Any]) -> str:
    parts = []
    for k, v in changes.items():
        if "old" in v:
            parts.append(f"{k}: {v['old']} → {v['new']}")
        else:
            added = "".join(f" +{x}" for x in v["added"])
            removed = "".join(f" -{x}" for x in v["removed"])
            parts.append(f"{k}:{added}{removed}")
    return "; ".join(parts)


def _item_text(section: str, item: dict[str, Any]) -> str:
    text = f"{item['id']} {item['name']}"
    if section == "revoked":
        text += f" (replaced by {item['replacement'] or 'nothing'})"
    if section == "changed":
        text += f": {_change_text(item['changes'])}"
    return text


def render(diff: dict[str, Any], fmt: str) -> str:
    """The diff as ``json``, ``markdown`` or a plain ``table``."""
    if fmt == "json":
        return json.dumps(diff, indent=2, ensure_ascii=False)
    lines: list[str] = []
    md = fmt == "markdown"
    lines.append(f"# {diff['old']} → {diff['new']}" if md else f"{diff['old']} -> {diff['new']}")
    for kind in ("techniques", "mitigations"):
        part = diff[kind]
        summary = ", ".join(f"{len(part[s])} {s}" for s in SECTIONS)
        lines.append(f"\n## {kind.capitalize()}\n\n{summary}" if md else f"\n{kind.upper()}: {summary}")
        for s in SECTIONS:
            if not part[s]:
                continue
            lines.append(f"\n### {s.capitalize()} ({len(part[s])})\n" if md else f"  {s} ({len(part[s])}):")
            for item in part[s]:
                lines.append(f"- {_item_text(s, item)}" if md else f"    {_item_text(s, item)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the diff."""
    if args.model:
        return _run_model(args)
    if args.knowledge or args.fail_on:
        raise InputError("--knowledge and --fail-on need --model MODEL", hint="or compare the releases alone")
    needs_store = not all(is_url(x) or Path(x).expanduser().is_file() for x in (args.old, args.new))
    store = open_cli_store(args.store, create=False) if needs_store else None
    old_store, old = _side(args.old, args.kind, store, args.store)
    new_store, new = _side(args.new, args.kind, store, args.store)
    print(render(diff_releases(old_store, old, new_store, new), args.format))
    return 0


def _run_model(args: argparse.Namespace) -> int:
    from threatgraph.releasediff import compare_model, introduced_at
    from threatgraph.releasediff import render as render_model

    needs_store = not all(Path(x).expanduser().is_file() for x in (args.old, args.new))
    store = open_cli_store(args.store) if needs_store else None
    diff = compare_model(args.model, args.old, args.new, knowledge=args.knowledge, store=store)
    print(render_model(diff, args.format))
    if args.fail_on:
        hits = introduced_at(diff, args.fail_on)
        if hits:
            print(f"threatgraph: the update introduces {len(hits)} change(s) at or above {args.fail_on}", file=sys.stderr)
            return 1
    return 0
