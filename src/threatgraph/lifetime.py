"""How a one-shot CLI process ends (issue 14).

At 10 k elements an ``analyze`` holds millions of small objects (finding cores, technique views, the
in-memory store's Python side); freeing them one by one when the command returns, then finalising the
interpreter, took ~1.6 s of a 26 s run, after the report was already written. The console entry point
(:func:`threatgraph.cli.entry`) therefore lets a command that has finished all its writes *keep* what it
built alive (:func:`keep`) and ends the process with :func:`os._exit` once stdout and stderr are flushed.

Only a command that calls :func:`keep` is ended this way, and only when run from the console entry point
(``threatgraph ...`` / ``python -m threatgraph``): :func:`threatgraph.cli.main`, which tests and embedding
code call, returns normally and frees everything. ``analyze`` calls it only when it wrote nothing to an
on-disk store (no ``--save``): every file it writes is complete and closed (``--output`` is written to a
temporary file and renamed) before it returns.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

_one_shot = False
_kept: list[object] = []


def begin_one_shot() -> None:
    """Called by the console entry point before the command runs."""
    global _one_shot
    _one_shot = True


def one_shot() -> bool:
    """Whether this process runs one command from the console entry point (:func:`begin_one_shot`)."""
    return _one_shot


def keep(*objects: object) -> None:
    """Keep ``objects`` alive to the end of a one-shot process, which then skips freeing them (no effect
    outside the console entry point)."""
    if _one_shot:
        _kept.extend(objects)


def kept() -> bool:
    """Whether a command asked to end without freeing what it built."""
    return bool(_kept)


def end(code: int) -> NoReturn:
    """End the process with ``code``: at once (``os._exit``) when the command kept its objects, after
    flushing stdout and stderr; else through :func:`sys.exit` (normal finalisation)."""
    if _one_shot and _kept:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):  # reader gone, or stdout closed: nothing left to deliver
            pass
        try:
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass
        os._exit(code)
    sys.exit(code)
