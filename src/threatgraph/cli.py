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
import errno
import gc
import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any

from threatgraph import __version__
from threatgraph.errors import ThreatgraphError
from threatgraph.sanitize import terminal, terminal_columns

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
    "vocabulary",
    "check_ontology",
)


PROGRESS = frozenset({"analyze", "validate", "diff-model", "coverage"})
"""Commands that show a spinner on stderr for work over 2 s (threatgraph.progress); ``import`` prints
its own progress lines."""


SUMMARIES: dict[str, tuple[str, str]] = {
    "analyze": ("analyze", "derive STRIDE and LINDDUN threats for a system model"),
    "rules": ("rules", "list the derivation rules (the rule catalogue)"),
    "knowledge_import": ("import", "import a MITRE knowledge release (ATT&CK, ATLAS, D3FEND, CAPEC) into the store"),
    "releases": ("releases", "list the knowledge releases loaded in the store"),
    "diff_release": ("diff-release", "compare two knowledge releases (techniques and mitigations)"),
    "coverage": ("coverage", "which ATLAS/ATT&CK techniques and ML asset types the bridge mappings cover"),
    "query": ("query", "run a named query, a .rq file, SPARQL text or - (stdin)"),
    "queries": ("queries", "list the named queries"),
    "serve": ("serve", "serve the knowledge graph over SPARQL 1.1 (query page at /)"),
    "push": ("push", "load the ontology, imported releases and models into a remote SPARQL store"),
    "validate": ("validate", "check that a system model is complete (SHACL shapes)"),
    "import_model": ("import-model", "convert an OTM, Threat Dragon, Threagile, MS Threat Modeling Tool, TM-BOM or pytm "
                     "model into Turtle"),
    "diff_model": ("diff-model", "compare two versions of a system model and their findings"),
    "vocabulary": (
        "vocabulary", "print the vocabulary reference (every class and property, label properties, SPARQL examples)"
    ),
    "check_ontology": (
        "check-ontology", "check the ontology plus your extension with HermiT (consistency, unsatisfiable classes)"
    ),
}
"""Command name and one-line help of each command module, so that the parser can list every command
while importing only the one that runs (start-up: importing all of them cost ~0.6 s, issue 14).
``tests/test_cli.py`` checks these equal what each module's ``register`` declares; a module without
an entry here is imported to register itself."""


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, the terminal's width found without importing shutil: argparse makes a
    formatter for every argument added (to check its metavar), and its width ``shutil.get_terminal_size()``
    imported shutil with bz2, lzma and fnmatch into every command (~7.5 M instructions, issue 14)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, terminal_columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help formatter is :class:`_Formatter` unless another is given (the
    commands' parsers are made by ``add_parser`` of the subparsers action, of this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The argument parser. ``command``: the command that will run (only its module is imported; the
    others are listed by their summary), ``"*"`` for every command fully registered.

    When ``command`` names a command, the other commands (with a summary) get no parser at all: only a
    listing of the commands (``threatgraph --help``, an unknown command) shows them, and a command's own
    parsing and help never do; the fourteen parsers, each with its help action, cost ~8 M instructions of
    every command's start-up (issue 14)."""
    parser = _Parser(
        prog="threatgraph",
        description="Knowledge-graph threat reasoning for ML systems (STRIDE, LINDDUN, ATT&CK, ATLAS).",
        epilog="Exit codes: 0 ok, 1 findings/violations at or above the threshold, 2 bad input, 3 internal error.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    known = command != "*" and any(command == summary[0] for summary in SUMMARIES.values())
    for name in COMMANDS:
        summary = SUMMARIES.get(name)
        if summary is not None and command != "*" and summary[0] != command:
            if not known:  # listed (help, an unknown command's error): by its summary
                sub.add_parser(summary[0], help=summary[1], add_help=False)
            continue
        module = importlib.import_module(f"threatgraph.commands.{name}")
        module.register(sub)
    for choice in sub._choices_actions:  # the one-line help of each command in the listing
        choice.help = plain_text(choice.help or "")
    for cmd in PROGRESS:
        sp = sub.choices.get(cmd)
        if sp is not None and sp.add_help and "--quiet" not in sp._option_string_actions:
            sp.add_argument("--quiet", action="store_true", help="no progress on stderr (shown only on a terminal)")
    for cmd, sp in sub.choices.items():  # --help of each command: a plain-text description
        sp.description = plain_text(sp.description or next(
            (c.help for c in sub._choices_actions if c.dest == cmd), "") or "")
        for action in sp._actions:
            if isinstance(action.help, str):
                action.help = plain_text(action.help)
    return parser


_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|ref|doc|term):`~?([^`]+)`")


def plain_text(text: str) -> str:
    """Help text without reST markup: roles and double back-quotes dropped, single ones as quotes.

    >>> plain_text("Run ``threatgraph import`` (:func:`load`), see `threatgraph validate`.")
    "Run threatgraph import (load), see 'threatgraph validate'."
    """
    text = _ROLE.sub(r"\1", text)
    text = re.sub(r"``(.+?)``", r"\1", text)
    return re.sub(r"`([^`]+)`", r"'\1'", text)


class _QuietRdflib:
    """A meta-path finder that finds nothing: when ``rdflib`` is first imported (its package imports its
    submodules; ``importlib.util.find_spec("rdflib")``, which only locates it, does not) it sets rdflib's log
    level and steps aside (see :func:`quiet_rdflib`)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.startswith("rdflib."):
            _quiet_now()
        return None


def _quiet_now() -> None:
    import logging

    logging.getLogger("rdflib").setLevel(logging.ERROR)
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietRdflib)]


def quiet_rdflib() -> None:
    """rdflib logs its own warnings (e.g. "does not look like a valid URI") on stderr; the CLI reports
    problems itself, once, as "threatgraph: error/warning: ..." lines. The level is set when rdflib is
    first imported, not before: a command that never uses rdflib (``analyze`` of a Turtle model) does not
    import :mod:`logging` either (start-up, issue 14)."""
    if "rdflib" in sys.modules:
        _quiet_now()
    elif not any(isinstance(f, _QuietRdflib) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietRdflib())


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (its first argument not starting with ``-``), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name); return the exit code."""
    quiet_rdflib()
    args_list = list(argv) if argv is not None else sys.argv[1:]
    collecting = gc.isenabled()
    gc.disable()  # importing the command's modules makes ~10^5 objects, none of them garbage: ~19 M
    try:  # instructions of cyclic collections in every process (issue 14); the command runs with it as it was
        parser = build_parser(_command_of(args_list))
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    finally:
        if collecting:
            from threatgraph import lifetime

            if lifetime.one_shot():  # what the imports made lives to the end: never scanned (the first
                gc.freeze()  # collection after the pause scanned all of it, ~8 M instructions)
            gc.enable()
    if args.version:
        print(f"threatgraph {__version__}")
        return EXIT_OK
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    from threatgraph.progress import reporting

    try:
        with reporting(f"threatgraph {args.command}", quiet=getattr(args, "quiet", False) or args.command not in PROGRESS):
            return int(args.func(args))
    except ThreatgraphError as err:
        print(f"threatgraph: error: {terminal(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("threatgraph: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as err:  # the disk filled up under a write that has no better handler
        if err.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left on device" not in str(err):
            raise
        print(f"threatgraph: error: no space left on the device: {terminal(str(err))}\n"
              "  hint: free disk space and run the command again", file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> None:
    """Console-script entry point: a command that kept what it built ends without freeing it
    (:mod:`threatgraph.lifetime`)."""
    from threatgraph import lifetime

    lifetime.begin_one_shot()
    lifetime.end(main())
