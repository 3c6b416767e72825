"""The console entry point ends a finished ``analyze`` without freeing what it built (issue 14), and only then."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "data" / "examples" / "health-risk.ttl"

# the child registers an atexit handler: it runs on a normal exit, never after os._exit
CHILD = """
import atexit, sys
atexit.register(lambda: print("finalised", file=sys.stderr))
sys.argv = ["threatgraph", *sys.argv[1:]]
from threatgraph.cli import entry
entry()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=300)


def test_analyze_to_stdout_ends_at_once_with_the_whole_report() -> None:
    res = _run("analyze", str(EX), "--format", "json")
    assert res.returncode == 0, res.stderr
    assert "finalised" not in res.stderr  # ended by os._exit, after the report was flushed
    report = json.loads(res.stdout)  # complete: the flush came first
    assert report["findings"]


def test_analyze_keeps_its_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = _run("analyze", str(EX), "--format", "json", "--output", str(out), "--fail-on", "low")
    assert res.returncode == 1
    assert "finding(s) at or above low" in res.stderr
    assert "finalised" not in res.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["findings"]


@pytest.mark.parametrize("argv", [["rules", "--format", "json"], ["analyze", "does-not-exist.ttl"]])
def test_other_commands_and_failures_finalise_normally(argv: list[str]) -> None:
    res = _run(*argv)
    assert "finalised" in res.stderr


def test_main_never_keeps() -> None:
    """Tests and embedding code call main(): it returns, and nothing is kept."""
    from threatgraph import lifetime
    from threatgraph.cli import main

    assert main(["analyze", str(EX), "--format", "json", "--output", "/dev/null"]) == 0
    assert not lifetime.kept()
