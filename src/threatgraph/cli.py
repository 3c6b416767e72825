"""Command-line interface: ``threatgraph COMMAND ...`` (also ``python -m threatgraph``).

Thin by design: each command lives in ``threatgraph.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a ``run(args) -> int``.
Results go to stdout, errors to stderr.

Exit codes (documented in README):
  0  success; no findings at or above ``--fail-on``; validation clean
  1  findings at or above ``--fail-on`` (analyze, diff-model), or validation violations
  2  bad input: unreadable or malformed files, unknown IDs, bad options
  3  internal error: a broken rule or query, a store failure
  130 interrupted

>>> main(["--version"])
threatgraph 0.1.0
0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from threatgraph import __version__
from threatgraph.errors import ThreatgraphError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

# One module per command under threatgraph.commands; each defines register(subparsers).
COMMANDS: tuple[str, ...] = (
    "analyze",
    "rules",
    "knowledge_import",
    "releases",
    "diff_release",
    "coverage",
    "query",
    "queries",
    "serve",
    "push",
    "validate",
    "import_model",
    "diff_model",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threatgraph",
        description="Knowledge-graph threat reasoning for ML systems (STRIDE, LINDDUN, ATT&CK, ATLAS).",
        epilog="Exit codes: 0 ok, 1 findings/violations at or above the threshold, 2 bad input, 3 internal error.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"threatgraph.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    if args.version:
        print(f"threatgraph {__version__}")
        return EXIT_OK
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args))
    except ThreatgraphError as err:
        print(f"threatgraph: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("threatgraph: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
