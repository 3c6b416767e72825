"""Progress on stderr (issue 15): a spinner on a terminal after the delay, nothing otherwise."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest

from threatgraph.cli import main
from threatgraph.progress import reporting, step

MODEL = Path(__file__).resolve().parent.parent / "data" / "examples" / "health-risk.ttl"


def test_spinner_on_a_terminal_names_the_step_and_is_erased() -> None:
    out = io.StringIO()
    with reporting("threatgraph analyze", stream=out, delay=0, force_terminal=True) as r:
        assert r is not None
        with step("importing atlas ATLAS.yaml"):
            time.sleep(0.5)
    text = out.getvalue()
    assert "threatgraph analyze: importing atlas ATLAS.yaml (0 s)" in text
    assert text.rstrip(" ").endswith("\x1b[2K") or "\x1b[2K" in text[-40:]  # transient: the line is erased
    assert not isinstance(sys.stdout, type(r)) and r.closed


def test_quiet_redirected_or_quick_work_shows_nothing() -> None:
    for kwargs in ({"quiet": True, "force_terminal": True, "delay": 0},  # --quiet
                   {"force_terminal": None, "delay": 0},  # not a terminal (StringIO)
                   {"force_terminal": True, "delay": 5}):  # done before the delay
        out = io.StringIO()
        with reporting("threatgraph analyze", stream=out, **kwargs):  # type: ignore[arg-type]
            with step("importing"):
                time.sleep(0.2)
        assert out.getvalue() == "", kwargs


def test_the_first_stdout_write_ends_the_spinner(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    with reporting("threatgraph analyze", stream=out, delay=0, force_terminal=True) as r:
        time.sleep(0.3)
        assert r is not None and not r.closed
        print("the report")
        assert r.closed  # stopped before the report reaches the terminal
        shown = len(out.getvalue())
        time.sleep(0.3)
        assert len(out.getvalue()) == shown  # no spinner redrawn over the report
    assert capsys.readouterr().out == "the report\n"


def test_analyze_quiet_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(MODEL), "--detail", "summary"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("Threat analysis of")
    assert main(["analyze", str(MODEL), "--detail", "summary", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
