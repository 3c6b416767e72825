"""A real model imported from another tool is analysed as a new user runs it (issue 12: "a user with a real
model cannot start"): `analyze` does not refuse it for facts its format cannot state; it warns and analyses.
A hand-written model with the same gaps is still refused (exit 1) unless --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threatgraph.cli import main

ROOT = Path(__file__).resolve().parents[1]
TD_DEMO = ROOT / "bench" / "fidelity" / "models" / "threat-dragon-v2-demo.json"


def _analyze(model: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["analyze", str(model), "-f", "json", "-o", str(out), *extra])
    return code, capsys.readouterr().err


def test_imported_threat_dragon_model_is_analysed_with_a_warning(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    code, err = _analyze(TD_DEMO, out, capsys)
    assert code == 0, err
    assert "the imported model leaves" in err and "threatgraph validate MODEL" in err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert any(not f["rule"].startswith("TG-PE-") for f in doc["findings"])


def test_turtle_written_by_import_model_is_analysed_and_the_same_gaps_hand_written_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ttl = tmp_path / "demo.ttl"
    assert main(["import-model", "-q", "-o", str(ttl), str(TD_DEMO)]) in (0, 1)
    capsys.readouterr()
    code, err = _analyze(ttl, tmp_path / "a.json", capsys)
    assert code == 0 and "the imported model leaves" in err
    # negative: the same triples under the author's own IRIs are a hand-written model: refused, exit 1
    own = tmp_path / "own.ttl"
    own.write_text(ttl.read_text(encoding="utf-8").replace("urn:threatgraph:import:", "https://example.org/own/"),
                   encoding="utf-8")
    code, err = _analyze(own, tmp_path / "b.json", capsys)
    assert code == 1 and "validation violation" in err and "--force" in err
    assert not (tmp_path / "b.json").exists()
    code, err = _analyze(own, tmp_path / "c.json", capsys, "--force")
    assert code == 0 and (tmp_path / "c.json").exists()
