"""``--output FILE``: written whole or not at all, and an unwritable FILE is one clear error (exit 2)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from threatgraph.cli import main
from threatgraph.commands._output import write_output
from threatgraph.errors import InputError

REPO = Path(__file__).resolve().parent.parent
RAG = str(REPO / "data" / "examples" / "rag-assistant.ttl")
TD = str(REPO / "bench" / "fidelity" / "models" / "threat-dragon-v2-demo.json")


@pytest.mark.parametrize("argv", [
    ["analyze", RAG, "-f", "json"],
    ["validate", RAG],
    ["diff-model", RAG, RAG],
    ["import-model", "-q", TD],
])
def test_unwritable_output_is_one_clear_error(argv: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "out.txt"
    assert main([*argv, "-o", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "cannot write there" in err and "Traceback" not in err and "hint:" in err
    assert main([*argv, "-o", str(tmp_path)]) == 2  # a directory
    assert "is a directory" in capsys.readouterr().err
    # positive: a writable path gets the whole output, nothing else is left in the directory
    out = tmp_path / "out.txt"
    assert main([*argv, "-o", str(out)]) in (0, 1)
    assert out.stat().st_size > 100 and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failure_midway_leaves_the_earlier_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("earlier report\n", encoding="utf-8")

    def chunks() -> Iterator[str]:
        yield "{\n"
        raise RuntimeError("a bug while rendering")

    with pytest.raises(RuntimeError):
        write_output(str(target), chunks())
    assert target.read_text(encoding="utf-8") == "earlier report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left behind
    write_output(str(target), iter(["{", "}\n"]))
    assert target.read_text(encoding="utf-8") == "{}\n"


def test_new_file_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_output(str(tmp_path / "a.txt"), ["x"])
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_write_output_error_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write there"):
        write_output(str(tmp_path / "missing" / "x"), ["x"])
