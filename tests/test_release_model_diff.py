"""``threatgraph diff-release OLD NEW --model MODEL``: what an ATT&CK update means for a model.

Expected changes were first read from the STIX bundles themselves (see the oracle helpers below):
between Enterprise ATT&CK 17.1 and 18.1 no technique the rag-assistant example cites is revoked or
deprecated, T1190 gains mitigation M1037 (Filter Network Traffic), and v18's detection strategies
(DET…) replace the data components that detected a technique in 17.1 (T1190: DET0080 instead of
Application Log Content and Network Traffic Content). Revocation, deprecation and removal are
exercised on an edited copy of 18.1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from threatgraph.cli import main
from threatgraph.releasediff import compare_model, introduced_at, is_empty, render
from threatgraph.resources import shared_data_dir

pytestmark = pytest.mark.shared

DATA = shared_data_dir() or Path("/missing")
ATT = DATA / "attack"
OLD = str(ATT / "enterprise-attack-17.1.stix20.json")
NEW = str(ATT / "enterprise-attack-18.1.stix20.json")
MODEL = str(Path(__file__).resolve().parent.parent / "data" / "examples" / "rag-assistant.ttl")
if not Path(OLD).is_file():  # pragma: no cover - only without the shared data
    pytest.skip("shared data not available (THREATGRAPH_SHARED_DATA)", allow_module_level=True)


def _ext(o: dict[str, Any]) -> str | None:
    return next((r.get("external_id") for r in o.get("external_references", [])
                 if r.get("source_name") == "mitre-attack"), None)


def _bundle(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def _related(bundle: dict[str, Any], rel: str, target_id: str, prefix: str) -> set[str]:
    """External ids of the active objects of type ``prefix`` with a ``rel`` relationship to ``target_id``."""
    objs = {o["id"]: o for o in bundle["objects"]}
    out = set()
    for o in bundle["objects"]:
        if o["type"] != "relationship" or o.get("relationship_type") != rel or o.get("revoked"):
            continue
        src, tgt = objs.get(o["source_ref"]), objs.get(o["target_ref"])
        if src and tgt and _ext(tgt) == target_id and src["type"].startswith(prefix):
            if not src.get("revoked") and not src.get("x_mitre_deprecated"):
                out.add(_ext(src) or "")
    return out


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], str]:
    """The CLI on the real 17.1 → 18.1 update, JSON output, ``--fail-on info``."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["diff-release", OLD, NEW, "--model", MODEL, "--format", "json", "--fail-on", "info"])
    return rc, json.loads(out.getvalue()), out.getvalue()


def test_oracle_what_the_bundles_say() -> None:
    """The expectations of the tests below, read from the STIX bundles."""
    old, new = _bundle(OLD), _bundle(NEW)
    assert "M1037" not in _related(old, "mitigates", "T1190", "course-of-action")
    assert "M1037" in _related(new, "mitigates", "T1190", "course-of-action")
    assert _related(new, "detects", "T1190", "x-mitre-detection-strategy") == {"DET0080"}
    assert _related(old, "detects", "T1190", "x-mitre-detection-strategy") == set()
    assert _related(old, "detects", "T1190", "x-mitre-data-component")


def test_real_update_changes_mitigations_and_detections_only(real: tuple[int, dict[str, Any], str]) -> None:
    rc, d, _ = real
    assert d["findings"]["old"] == d["findings"]["new"] > 0
    assert d["findings"]["added"] == d["findings"]["removed"] == d["findings"]["changed"] == []
    assert d["techniques"] == {"revoked": [], "deprecated": [], "removed": []}
    assert d["risk"] == [] and d["introduced"] == []
    assert rc == 0  # --fail-on info: the update introduces nothing
    t1190 = d["knowledge"]["T1190"]
    assert t1190["mitigations"] == {"added": [{"id": "M1037", "label": "Filter Network Traffic"}], "removed": []}
    assert [x["id"] for x in t1190["detections"]["added"]] == ["DET0080"]
    assert [x["id"] for x in t1190["detections"]["removed"]] == [
        "data component: Application Log Content", "data component: Network Traffic Content"]
    # only T1190 gains a mitigation; every ATT&CK technique cited now has a v18 detection strategy
    assert [t for t, e in d["knowledge"].items() if "mitigations" in e] == ["T1190"]
    dets = {t: e["detections"] for t, e in d["knowledge"].items() if "detections" in e}
    assert "T1059.006" in dets and "T1566" in dets
    for t, ch in dets.items():
        assert [x["id"][:3] for x in ch["added"]] == ["DET"], t
        assert ch["removed"] and all(x["id"].startswith("data component: ") for x in ch["removed"]), t
    # ATLAS and D3FEND are the same files on both sides: no ATLAS technique changes
    assert not any(t.startswith("AML.") for t in d["knowledge"])


def test_renderings(real: tuple[int, dict[str, Any], str]) -> None:
    _, d, _ = real
    md = render(d, "markdown")
    assert md.startswith("# enterprise-attack-17.1.stix20.json → enterprise-attack-18.1.stix20.json")
    assert "## Mitigations" in md and "- T1190 Exploit Public-Facing Application: +M1037 Filter Network Traffic" in md
    assert "  - + DET0080 " in md and "## Findings gaining" not in md
    table = render(d, "table")
    assert "MITIGATIONS" in table and "      + DET0080 " in table
    assert json.loads(render(d, "json")) == d


def test_same_release_on_both_sides_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["diff-release", OLD, OLD, "--model", MODEL, "--fail-on", "info"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "no changes for this model" in out
    d = compare_model([MODEL], OLD, OLD)
    assert is_empty(d) and d["findings"]["old"] > 0 and introduced_at(d, "info") == []


# -- revocation, deprecation and removal, on an edited copy of 18.1 ------------------------------------
REVOKED, REPLACEMENT, DEPRECATED, REMOVED = "T1566", "T1204", "T1070", "T1199"


@pytest.fixture(scope="module")
def edited(tmp_path_factory: pytest.TempPathFactory) -> str:
    """18.1 with T1566 revoked by T1204, T1070 deprecated and T1199 removed."""
    b = _bundle(NEW)
    by_id = {_ext(o): o for o in b["objects"] if o["type"] == "attack-pattern"}
    gone = by_id[REMOVED]["id"]
    b["objects"] = [o for o in b["objects"] if gone not in (o["id"], o.get("source_ref"), o.get("target_ref"))]
    by_id[REVOKED]["revoked"] = True
    by_id[DEPRECATED]["x_mitre_deprecated"] = True
    b["objects"].append({
        "type": "relationship", "id": "relationship--00000000-0000-4000-8000-0000000000ab",
        "relationship_type": "revoked-by", "source_ref": by_id[REVOKED]["id"],
        "target_ref": by_id[REPLACEMENT]["id"], "created": "2025-01-01T00:00:00.000Z",
        "modified": "2025-01-01T00:00:00.000Z",
    })  # fmt: skip
    p = tmp_path_factory.mktemp("attack") / "enterprise-attack-18.1-edited.json"
    p.write_text(json.dumps(b), encoding="utf-8")
    return str(p)


@pytest.fixture(scope="module")
def edited_diff(edited: str) -> dict[str, Any]:
    return compare_model([MODEL], OLD, edited)


def test_revoked_deprecated_and_removed_cited_techniques(edited_diff: dict[str, Any]) -> None:
    t = edited_diff["techniques"]
    assert [(x["id"], x["replacement"], x["replacement_label"]) for x in t["revoked"]] == [
        (REVOKED, REPLACEMENT, "User Execution")]
    assert [x["id"] for x in t["deprecated"]] == [DEPRECATED]
    assert [x["id"] for x in t["removed"]] == [REMOVED]
    assert all(x["findings"] > 0 for k in t for x in t[k])


def test_findings_gain_the_replacement_and_lose_the_rest(edited_diff: dict[str, Any], real: tuple[int, dict[str, Any], str]) -> None:
    changed = {x["finding"]: x for x in edited_diff["findings"]["changed"]}
    n = {x["id"]: x["findings"] for k, xs in edited_diff["techniques"].items() for x in xs}
    lost = {tid: sum(1 for x in changed.values() if tid in [t["id"] for t in x["lost"]])
            for tid in (REVOKED, DEPRECATED, REMOVED)}
    assert lost == {REVOKED: n[REVOKED], DEPRECATED: n[DEPRECATED], REMOVED: n[REMOVED]}
    gained = [g for x in changed.values() for g in x["gained"]]
    assert gained and all(g["id"] == REPLACEMENT and g["replaces"] == REVOKED for g in gained)
    assert len(gained) == n[REVOKED]  # T1204 was cited by none of those findings before
    assert edited_diff["findings"]["added"] == edited_diff["findings"]["removed"] == []
    # the knowledge changes of the real update are still there for the techniques left
    assert edited_diff["knowledge"]["T1190"] == real[1]["knowledge"]["T1190"]


def test_fail_on_gates_on_the_level_of_what_is_introduced(edited_diff: dict[str, Any], edited: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    intro = edited_diff["introduced"]
    assert intro and {x["technique"] for x in intro if x["kind"] == "technique"} == {REPLACEMENT}
    from threatgraph.analysis.rules import SEVERITIES

    top = max(SEVERITIES.index(x["level"]) for x in intro)
    assert introduced_at(edited_diff, SEVERITIES[top])
    rc = main(["diff-release", OLD, edited, "--model", MODEL, "--format", "markdown", "--fail-on", SEVERITIES[top]])
    cap = capsys.readouterr()
    assert rc == 1 and "introduces" in cap.err
    assert f"revoked, replaced by {REPLACEMENT} User Execution" in cap.out
    if top + 1 < len(SEVERITIES):  # above the highest introduced level: passes
        assert introduced_at(edited_diff, SEVERITIES[top + 1]) == []


def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "store")]
    assert main(["diff-release", OLD, str(tmp_path / "nope.json"), "--model", MODEL, *store]) == 2
    assert "no such file" in capsys.readouterr().err
    atlas = str(DATA / "atlas" / "ATLAS.yaml")
    assert main(["diff-release", OLD, atlas, "--model", MODEL]) == 2
    assert "not an ATT&CK STIX bundle" in capsys.readouterr().err
    assert main(["diff-release", OLD, NEW, "--fail-on", "high"]) == 2
    assert "need --model" in capsys.readouterr().err
    assert main(["diff-release", "attack-enterprise/17.1", NEW, "--model", MODEL, *store]) == 2
    assert "'attack-enterprise/17.1' is not loaded" in capsys.readouterr().err


def test_releases_in_a_store_give_the_same_answer(real: tuple[int, dict[str, Any], str]) -> None:
    """OLD and NEW as releases loaded in a store (ATLAS and D3FEND from the store) = OLD and NEW as files."""
    from threatgraph.knowledge.releases import load_release
    from threatgraph.store import open_store

    s = open_store()
    for kind, path in (("attack", OLD), ("attack", NEW), ("atlas", str(DATA / "atlas" / "ATLAS.yaml")),
                       ("d3fend", str(DATA / "d3fend" / "d3fend-protege-1.2.0.ttl"))):
        load_release(s, kind, path)
    d = compare_model([MODEL], "attack-enterprise/17.1", "attack-enterprise/18.1", store=s)
    assert (d["old"], d["new"]) == ("attack-enterprise/17.1", "attack-enterprise/18.1")
    want = dict(real[1], old=d["old"], new=d["new"])
    assert d == want
    # the same release on both sides: nothing
    assert is_empty(compare_model([MODEL], "attack-enterprise/18.1", "attack-enterprise/18.1", store=s))
    # the status readers agree on every technique of 18.1 (the store side as imported, checked against
    # mitreattack-python in test_import_attack_oracle), revoked ones included, and on one not in it
    from threatgraph.releasediff import stix_status, store_status

    ids = sorted({_ext(o) or "" for o in _bundle(NEW)["objects"] if o["type"] == "attack-pattern"} - {""})
    ids.append("T9999")
    from_file = stix_status(NEW, ids)
    assert from_file == store_status(s, "https://w3id.org/threatgraph/graph/release/attack-enterprise/18.1", ids)
    kinds = {st for st, _, _ in from_file.values()}
    assert kinds == {"active", "revoked", "deprecated", "removed"}
    assert from_file["T9999"] == ("removed", None, "")
    assert sum(st == "revoked" and by is not None for st, by, _ in from_file.values()) > 50


# -- diff_sides on hand-made analyses (no knowledge files): the rules of what counts as introduced ------
def _finding(iri: str, level: str, techniques: list[Any], score: int = 0) -> Any:
    from threatgraph.analysis.findings import Finding

    return Finding(iri=iri, rule_id="R-" + iri, threat="t", severity=level, focus=iri, focus_label=iri,
                   focus_kind="", explanation="", source="", techniques=techniques, risk_score=score)


def _technique(tid: str, status: str = "unmitigated", detections: list[tuple[str, str]] | None = None) -> Any:
    from threatgraph.analysis.findings import TechniqueView

    return TechniqueView(iri="x/" + tid, id=tid, label=tid, mapping="m", status=status,
                         detections=detections or [])


def test_what_counts_as_introduced() -> None:
    from threatgraph.releasediff import Side, diff_sides

    old = Side("old", [
        _finding("a", "medium", [_technique("T1", detections=[("DET1", "x (analytics: AN1)")])]),
        _finding("b", "low", [_technique("T2")], score=4),
        _finding("gone", "critical", []),
    ], {}, {})
    new = Side("new", [
        _finding("a", "medium", [_technique("T1", detections=[("DET1", "x (analytics: AN1, AN2)")]),
                                 _technique("T3", status="mitigated")]),
        _finding("b", "high", [_technique("T2"), _technique("T4")], score=12),
        _finding("c", "medium", []),
    ], {}, {})
    d = diff_sides(old, new)
    intro = {(x["kind"], x["finding"], x.get("technique", "")): x["level"] for x in d["introduced"]}
    # a mitigated technique gained (T3) and a removed finding introduce nothing
    assert intro == {("finding", "c", ""): "medium", ("technique", "b", "T4"): "high", ("risk", "b", ""): "high"}
    assert [x["finding"] for x in d["findings"]["removed"]] == ["gone"]
    assert [(x["old_level"], x["new_level"], x["old_score"], x["new_score"]) for x in d["risk"]] == [("low", "high", 4, 12)]
    assert d["knowledge"]["T1"]["detections"] == {
        "added": [], "removed": [], "changed": [{"id": "DET1", "old": "x (analytics: AN1)", "new": "x (analytics: AN1, AN2)"}]}
    assert [x["level"] for x in introduced_at(d, "high")] == ["high", "high"]
    assert introduced_at(d, "critical") == []
    assert "~ DET1 x (analytics: AN1, AN2)" in render(d, "table")
    # the reverse: the finding that disappears introduces nothing; the lower risk neither
    back = diff_sides(new, old)
    assert [(x["kind"], x["finding"]) for x in back["introduced"]] == [("finding", "gone")]
