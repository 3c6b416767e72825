"""Progress on stderr for long work (issue 15): a spinner with the current step and the elapsed time,
shown once the work has taken ``delay`` seconds (2 by default) and only when stderr is a terminal;
nothing when stderr is redirected or with ``--quiet``. Drawn with rich (a declared dependency).

Library code reports what it is doing with :func:`step` (a no-op unless a command is reporting):

>>> import io
>>> with step("importing ATLAS"):
...     pass
>>> with reporting("threatgraph analyze", stream=io.StringIO()) as r:  # not a terminal: nothing shown
...     r is None
True

The first write to stdout ends the spinner (the report follows on the same terminal); stderr lines
(warnings) are printed above it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

__all__ = ["Reporter", "reporting", "step"]


class Reporter:
    """The spinner of one command run (started by a timer thread after the delay)."""

    def __init__(self, label: str, stream: IO[str], delay: float, force_terminal: bool | None) -> None:
        import threading  # here: a command whose stderr is no terminal makes no Reporter (start-up, issue 14)

        from rich.console import Console
        from rich.spinner import Spinner

        self.label = label
        self.steps: list[str] = []
        self.console = Console(file=stream, force_terminal=force_terminal, highlight=False)
        self.spinner = Spinner("dots", text=label)
        self.started = time.monotonic()
        self.live: Any = None
        self.closed = False
        self.lock = threading.Lock()
        self.timer = threading.Timer(delay, self._start)
        self.timer.daemon = True
        self.timer.start()

    def text(self) -> str:
        now = self.steps[-1] if self.steps else "working"
        elapsed = f" ({time.monotonic() - self.started:.0f} s)"
        head = f"{self.label}: {now}"
        room = max(10, self.console.width - len(elapsed) - 3)  # one line: the spinner and a space before it
        return (head if len(head) <= room else head[: room - 1] + "…") + elapsed

    def __rich__(self) -> Any:
        self.spinner.update(text=self.text())
        return self.spinner

    def _start(self) -> None:
        from rich.live import Live

        with self.lock:
            if self.closed:
                return
            self.live = Live(self, console=self.console, transient=True, refresh_per_second=8,
                             redirect_stdout=False, redirect_stderr=True)
            self.live.start()

    def close(self) -> None:
        """Stop the spinner and erase it (idempotent)."""
        with self.lock:
            self.closed = True
            self.timer.cancel()
            if self.live is not None:
                self.live.stop()
                self.live = None


_active: Reporter | None = None


class _EndOnWrite:
    """Stands in for stdout while reporting: the first write ends the spinner, then writes go through
    (every other attribute is the real stdout's)."""

    def __init__(self, target: IO[str], reporter: Reporter) -> None:
        self._target = target
        self._reporter = reporter

    def write(self, s: str) -> int:
        self._reporter.close()
        if sys.stdout is self:
            sys.stdout = self._target
        return self._target.write(s)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._target, name)


@contextmanager
def reporting(label: str, *, quiet: bool = False, stream: IO[str] | None = None, delay: float = 2.0,
              force_terminal: bool | None = None) -> Iterator[Reporter | None]:
    """Show a spinner for the work inside the block (see the module docstring); yields the reporter,
    or None when nothing is shown."""
    global _active
    out = stream if stream is not None else sys.stderr
    if quiet or not (force_terminal or out.isatty()):
        yield None
        return
    reporter = Reporter(label, out, delay, force_terminal)
    saved_stdout = sys.stdout
    # kept referenced until the block ends: print() holds sys.stdout as a borrowed reference while the
    # proxy puts the real stdout back (freeing the proxy then crashes the interpreter)
    proxy = _EndOnWrite(saved_stdout, reporter)
    sys.stdout = proxy
    _active = reporter
    try:
        yield reporter
    finally:
        _active = None
        reporter.close()
        if sys.stdout is proxy:
            sys.stdout = saved_stdout
        del proxy


@contextmanager
def step(text: str) -> Iterator[None]:
    """Name what the library is doing for the spinner, if a command is reporting."""
    reporter = _active
    if reporter is None:
        yield
        return
    reporter.steps.append(text)
    try:
        yield
    finally:
        if reporter.steps and reporter.steps[-1] == text:
            reporter.steps.pop()
