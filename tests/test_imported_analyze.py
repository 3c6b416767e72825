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


def test_imported_model_warning_does_not_claim_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Analysed without --force, an imported model's warning says why; it never says '(--force)'."""
    code, err = _analyze(TD_DEMO, tmp_path / "a.json", capsys)
    assert code == 0 and "the imported model leaves" in err and "(--force)" not in err
    code, err = _analyze(TD_DEMO, tmp_path / "b.json", capsys, "--force")
    assert code == 0 and "(--force)" in err


GENAI = Path(__file__).resolve().parent.parent / "bench" / "fidelity" / "models" / "threagile-genai-rag-support.yaml"


@pytest.mark.parametrize("command", [["validate"], ["query", "SELECT ?e WHERE { ?e a tg:Process } LIMIT 1", "--model"]])
def test_ml_classes_file_is_read_by_every_command_that_reads_a_model(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--ml-classes is not only on analyze/import-model: a `guardrails? = none` phrase silences that class's
    guess (and its warning) in validate and query --model too; an unreadable file exits 2 before any model."""
    mine = tmp_path / "mine.conf"
    mine.write_text("[phrases]\nguardrails? = none\n", encoding="utf-8")
    main([*command, str(GENAI)])
    assert "classed tgml:Guardrail" in capsys.readouterr().err
    main([*command, str(GENAI), "--ml-classes", str(mine)])
    err = capsys.readouterr().err
    assert "classed tgml:Guardrail" not in err and "classed tgml:EmbeddingModel" in err
    assert main([*command, str(GENAI), "--ml-classes", str(tmp_path / "nope.conf")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_diff_model_reads_ml_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """diff-model classes both versions with the user's phrases (`guardrails? = none` silences that guess, the
    model diffed with itself stays unchanged); an unreadable table exits 2."""
    mine = tmp_path / "mine.conf"
    mine.write_text("[phrases]\nguardrails? = none\n", encoding="utf-8")
    assert main(["diff-model", str(GENAI), str(GENAI), "-f", "json"]) == 0
    assert any("classed tgml:Guardrail" in w for w in json.loads(capsys.readouterr().out)["warnings"])
    assert main(["diff-model", str(GENAI), str(GENAI), "--ml-classes", str(mine), "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"] == [] and not any("classed tgml:Guardrail" in w for w in doc["warnings"])
    assert any("classed tgml:EmbeddingModel" in w for w in doc["warnings"])
    assert main(["diff-model", str(GENAI), str(GENAI), "--ml-classes", str(tmp_path / "nope.conf")]) == 2
    assert "cannot read" in capsys.readouterr().err
