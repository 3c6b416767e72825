"""``threatgraph diff-model`` (issue 7) on two versions of a small model, the tabular-platform example and
its version 2, and two versions of an imported OTM model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threatgraph.analysis.risk import risk_level
from threatgraph.cli import main
from threatgraph.diffmodel import FindingChange, ModelDiff, diff_models, render_markdown, render_table

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "tests" / "interchange"
V1, V2 = HERE / "small-system.ttl", HERE / "small-system-v2.ttl"
EX = "https://example.org/small#"


@pytest.fixture(scope="module")
def small_diff() -> ModelDiff:
    return diff_models([V1], [V2])


def test_elements_and_flows_added_removed_changed(small_diff: ModelDiff) -> None:
    el = {c.iri.removeprefix(EX): c for c in small_diff.elements}
    assert el["admin"].change == "added" and el["admin"].what == "process"
    assert el["llm"].change == "removed" and el["llm"].what == "external entity"
    assert el["assistant"].change == "changed"
    assert sorted(el["assistant"].details) == ["tg:authenticated: false → true", "tg:authorizationEnforced: false → true",
                                               "tg:rateLimited: false → true"]
    assert "index" not in el and "user" not in el  # unchanged elements are not listed
    fl = {c.iri.removeprefix(EX): c for c in small_diff.flows}
    assert {k: c.change for k, c in fl.items()} == {"manage": "added", "prompt": "removed", "retrieve": "changed"}
    assert "tg:encryptedInTransit: false → true" in fl["retrieve"].details
    assert small_diff.other == []


def test_findings_appeared_disappeared_changed(small_diff: ModelDiff) -> None:
    by = {(fc.rule, fc.element_iri.removeprefix(EX)): fc for fc in small_diff.findings}
    new = by[("TG-STRIDE-E-004", "admin")]
    assert new.change == "appeared" and new.new_severity == "critical" and new.old_severity is None
    gone = by[("TG-STRIDE-S-001", "ask")]
    assert gone.change == "disappeared" and gone.old_severity == "high"
    changed = by[("TG-STRIDE-I-003", "index")]
    assert changed.change == "changed" and changed.old_severity == changed.new_severity
    assert changed.old_risk != changed.new_risk
    assert not any(fc.element_iri == EX + "user" and fc.change == "changed" and fc.old_risk == fc.new_risk
                   and fc.old_severity == fc.new_severity for fc in small_diff.findings)


def test_fail_on_counts_only_new_findings_at_or_above(small_diff: ModelDiff, capsys: pytest.CaptureFixture[str]) -> None:
    # Gated on the level, as analyze --fail-on is: the notebook finding is of critical severity but
    # medium level (risk 9: an internal console); the poison-message one has a risk above medium (16,
    # critical, before plain runs cited techniques unresolved; 12, high, since: no technique maturity without
    # a release) but its rule's severity (low) caps its level at medium.
    by = {(fc.rule, fc.element_iri.removeprefix(EX)): fc for fc in small_diff.findings}
    notebook = by[("TG-STRIDE-E-004", "admin")]
    assert notebook.new_severity == "critical" and notebook.new_level == "medium"
    poison = by[("TG-STRIDE-D-003", "assistant")]
    assert poison.new_risk is not None and risk_level(int(poison.new_risk)) in ("high", "critical")
    assert poison.new_severity == "low" and poison.new_level == "medium"
    assert small_diff.new_at_or_above("critical") == [] and small_diff.new_at_or_above("high") == []
    assert {"TG-STRIDE-E-004", "TG-STRIDE-D-003"} <= {fc.rule for fc in small_diff.new_at_or_above("medium")}
    assert main(["diff-model", str(V1), str(V2), "--fail-on", "high"]) == 0
    assert main(["diff-model", str(V1), str(V2), "--fail-on", "medium"]) == 1
    assert "new finding(s) at or above medium" in capsys.readouterr().err
    reverse = diff_models([V2], [V1])
    expected = 1 if reverse.new_at_or_above("critical") else 0
    assert main(["diff-model", str(V2), str(V1), "--fail-on", "critical"]) == expected
    assert reverse.new_at_or_above("high"), "going back re-opens the spoofing finding"
    assert main(["diff-model", str(V2), str(V1), "--fail-on", "high"]) == 1
    assert main(["diff-model", str(V1), str(V1), "--fail-on", "info"]) == 0
    assert "No differences." in capsys.readouterr().out


def test_rising_level_counts_as_new_at_that_level() -> None:
    fc = FindingChange("f", "R", "e", "urn:e", "t", [], "changed", "high", "high", 6.0, 12.0, "medium", "high")
    d = ModelDiff(["a"], ["b"], findings=[fc])
    assert d.new_at_or_above("high") == [fc]
    assert d.new_at_or_above("medium") == []  # it was already at medium
    assert d.at_or_above("critical").findings == []


def test_formats_table_markdown_json(small_diff: ModelDiff, capsys: pytest.CaptureFixture[str]) -> None:
    table = render_table(small_diff)
    assert "+ Admin console (process)" in table and "- LLM provider (external entity)" in table
    md = render_markdown(small_diff)
    assert md.startswith("## Threat model changes")
    assert "### New findings" in md and "### Resolved findings" in md and "| critical |" in md
    assert main(["diff-model", str(V1), str(V2), "-f", "json", "--min-severity", "medium"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {f["change"] for f in doc["findings"]} <= {"appeared", "disappeared", "changed"}
    assert doc["findings"] and all({f["old_level"], f["new_level"]} & {"medium", "high", "critical"}
                                   for f in doc["findings"])
    assert not any(f["new_level"] == "low" or f["old_level"] == "low" for f in doc["findings"])
    assert any(f["new_level"] != f["new_severity"] for f in doc["findings"] if f["change"] == "appeared")
    assert {e["iri"] for e in doc["elements"]} == {EX + "admin", EX + "llm", EX + "assistant"}


def test_example_model_and_its_version_2() -> None:
    v1 = REPO / "data" / "examples" / "tabular-platform.ttl"
    v2 = REPO / "data" / "examples" / "versions" / "tabular-platform-v2.ttl"
    d = diff_models([v1], [v2])
    ex = "https://example.org/tabular-platform#"
    el = {c.iri.removeprefix(ex): c for c in d.elements}
    assert el["debugNotebook"].change == "added"
    assert el["notebooks"].details == ["tg:authenticated: false → true"]
    assert el["modelRegistry"].details == ["tg:authorizationEnforced: false → true"]
    by = {(fc.rule, fc.element_iri.removeprefix(ex), fc.change) for fc in d.findings}
    assert ("TG-STRIDE-E-004", "debugNotebook", "appeared") in by
    assert ("TG-STRIDE-I-005", "notebooks", "disappeared") in by
    # --fail-on gates on the level (risk level where computed): the new notebook finding is of critical
    # severity, and its level is what the risk model gives it in this context.
    notebook = next(fc for fc in d.findings if fc.rule == "TG-STRIDE-E-004" and fc.change == "appeared")
    assert notebook.new_severity == "critical" and notebook.new_level
    assert [fc.element_iri for fc in d.new_at_or_above(notebook.new_level) if fc.rule == "TG-STRIDE-E-004"] == [ex + "debugNotebook"]
    assert d.new_at_or_above("critical") == [fc for fc in d.findings if fc.change == "appeared" and fc.new_level == "critical"]


def test_two_versions_of_an_imported_otm_model(tmp_path: Path) -> None:
    doc = json.loads((HERE / "ml-platform.otm.json").read_text(encoding="utf-8"))
    old = tmp_path / "old.otm.json"
    old.write_text(json.dumps(doc))
    doc["dataflows"][2]["attributes"] = {"encryptedInTransit": False, "authenticated": False}
    new = tmp_path / "new.otm.json"
    new.write_text(json.dumps(doc))
    d = diff_models([old], [new])
    assert d.elements == [] and d.other == []
    assert len(d.flows) == 1 and d.flows[0].label == "Load model"
    assert sorted(d.flows[0].details) == ["tg:authenticated: (none) → false", "tg:encryptedInTransit: (none) → false"]
