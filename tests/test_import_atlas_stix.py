"""ATLAS 5.6.0 imported from its STIX 2.1 bundle against the same release imported from ATLAS.yaml.

Both pinned files are imported, each into its own store, and compared quad by quad: everything the
bundle yields is in the YAML import, and what only the YAML yields is exactly what the bundle does not
carry (case studies, maturity, lifecycle stages, categories, ATT&CK references) plus the two technique
uses ATLAS 5.6.0 mis-indents under ``ml-lifecycle`` (which atlas-navigator-data's generator does not
see). Expected figures are read from the files here, independently of the importer. Then bad input:
one message naming the file and the object, exit 2 without a traceback, the store unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyoxigraph import Quad

from threatgraph.errors import ImportFailed
from threatgraph.knowledge.releases import load_release, releases
from threatgraph.resources import shared_data_dir
from threatgraph.store import open_store
from threatgraph.store.base import Store
from threatgraph.terms import ATLAS, KB

pytestmark = pytest.mark.shared

DATA = shared_data_dir() or Path("/missing")
ATLAS_YAML = DATA / "atlas" / "ATLAS.yaml"
ATLAS_STIX = DATA / "atlas" / "stix-atlas.json"
GRAPH = "https://w3id.org/threatgraph/graph/release/atlas/5.6.0"
ROOT = Path(__file__).resolve().parents[1]

ONLY_IN_YAML = {KB[p] for p in ("maturity", "lifecycleStage", "mitigationCategory", "attackReference")} | {
    "http://www.w3.org/2004/02/skos/core#closeMatch"
}
"""Predicates the STIX bundle has no data for."""


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ATLAS_STIX.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    with ATLAS_YAML.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def _quads(path: Path, version: str | None = None) -> tuple[set[Quad], Any]:
    store = open_store()
    res = load_release(store, "atlas", str(path), version=version)
    return set(store.quads(GRAPH)), res


@pytest.fixture(scope="module")
def both() -> dict[str, Any]:
    y, yres = _quads(ATLAS_YAML)
    s, sres = _quads(ATLAS_STIX, "5.6.0")
    return {"yaml": y, "stix": s, "yres": yres, "sres": sres}


def _ids(quads: set[Quad], cls: str) -> set[str]:
    typed = {q.subject for q in quads if q.predicate.value.endswith("#type") and q.object.value == KB[cls]}
    return {q.object.value for q in quads if q.subject in typed and q.predicate.value == KB["externalId"]}


def _pairs(quads: set[Quad], pred: str) -> set[tuple[str, str]]:
    base = len(str(ATLAS))
    return {(q.subject.value[base:], q.object.value[base:]) for q in quads if q.predicate.value == KB[pred]}


def _stix_ids(bundle: dict[str, Any]) -> dict[str, str]:
    return {
        o["id"]: r["external_id"]
        for o in bundle["objects"]
        for r in o.get("external_references", [])
        if r.get("source_name") == "mitre-atlas" and o["type"] != "x-mitre-matrix"
    }


def test_stix_and_yaml_hold_the_same_objects(both: dict[str, Any], bundle: dict[str, Any]) -> None:
    by_type = Counter(o["type"] for o in bundle["objects"])
    counts = {}
    for cls in ("Tactic", "Technique", "Mitigation"):
        ids = _ids(both["stix"], cls)
        assert ids == _ids(both["yaml"], cls), cls
        counts[cls] = len(ids)
    assert counts == {"Tactic": by_type["x-mitre-tactic"], "Technique": by_type["attack-pattern"],
                      "Mitigation": by_type["course-of-action"]} == {"Tactic": 16, "Technique": 170, "Mitigation": 35}
    assert both["sres"].release.version == "5.6.0" and both["sres"].release.graph == GRAPH
    assert both["sres"].release.format == "ATLAS STIX 2.1"


def test_sub_technique_links_and_tactics_agree(
    both: dict[str, Any], bundle: dict[str, Any], doc: dict[str, Any]
) -> None:
    ids = _stix_ids(bundle)
    from_bundle = {
        (ids[o["source_ref"]], ids[o["target_ref"]])
        for o in bundle["objects"]
        if o["type"] == "relationship" and o["relationship_type"] == "subtechnique-of"
    }
    from_yaml = {(t["id"], t["subtechnique-of"]) for t in doc["matrices"][0]["techniques"] if "subtechnique-of" in t}
    assert _pairs(both["stix"], "subtechniqueOf") == _pairs(both["yaml"], "subtechniqueOf") == from_bundle == from_yaml
    assert len(from_yaml) == 69
    # technique -> tactic: ATLAS.yaml gives sub-techniques none; the bundle copies the parent's onto them,
    # and the import leaves those out (counted), so both imports link the same 101 top-level techniques
    tech = _ids(both["yaml"], "Technique")
    stix_tac = {p for p in _pairs(both["stix"], "tactic") if p[0] in tech}
    yaml_tac = {p for p in _pairs(both["yaml"], "tactic") if p[0] in tech}
    expected = {(t["id"], tac) for t in doc["matrices"][0]["techniques"] for tac in t.get("tactics", [])}
    assert stix_tac == yaml_tac == expected
    copied = sum(len(t["kill_chain_phases"]) for t in bundle["objects"] if t.get("x_mitre_is_subtechnique"))
    assert both["sres"].skipped == {"sub-technique tactic (the parent's, copied by the STIX generator)": copied}


def test_mitigates_pairs_and_the_two_the_bundle_lacks(
    both: dict[str, Any], bundle: dict[str, Any], doc: dict[str, Any]
) -> None:
    ids = _stix_ids(bundle)
    rels = [
        (ids[o["source_ref"]], ids[o["target_ref"]])
        for o in bundle["objects"]
        if o["type"] == "relationship" and o["relationship_type"] == "mitigates"
    ]
    listed = [(m["id"], u["id"]) for m in doc["matrices"][0]["mitigations"] for u in m.get("techniques", [])]
    misplaced = {
        (m["id"], u["id"])
        for m in doc["matrices"][0]["mitigations"]
        for u in m.get("ml-lifecycle", [])
        if isinstance(u, dict)
    }
    # 246 relationships = the YAML's 246 `techniques` entries, two of them listed twice
    # (AML.M0002 and AML.M0004 -> AML.T0043.001): 244 distinct pairs ...
    assert len(rels) == len(listed) == 246 and len(set(rels)) == len(set(listed)) == 244
    assert Counter(rels) == Counter(listed)
    assert {p for p, n in Counter(rels).items() if n > 1} == {("AML.M0002", "AML.T0043.001"),
                                                              ("AML.M0004", "AML.T0043.001")}
    # ... while the YAML import has 246: the two uses mis-indented under ml-lifecycle, which the bundle's
    # generator (it reads only `techniques`) dropped
    assert misplaced == {("AML.M0018", "AML.T0052.001"), ("AML.M0034", "AML.T0052.001")}
    assert _pairs(both["stix"], "mitigates") == set(rels)
    assert _pairs(both["yaml"], "mitigates") == set(rels) | misplaced
    assert len(set(rels) | misplaced) == 246


def test_everything_else_is_equal(both: dict[str, Any]) -> None:
    stix, yml = both["stix"], both["yaml"]
    assert stix <= yml, sorted(str(q) for q in stix - yml)[:5]
    base = str(ATLAS)
    misplaced = {f"{base}AML.M0018/mitigates/AML.T0052.001", f"{base}AML.M0034/mitigates/AML.T0052.001"}
    unexplained = [
        q for q in yml - stix
        if q.predicate.value not in ONLY_IN_YAML
        and "AML.CS" not in q.subject.value  # case studies and their procedure steps
        and not q.subject.value.startswith(base + "lifecycle/")  # the lifecycle-stage concepts
        and q.subject.value not in misplaced  # the reified mis-indented uses ...
        and not (q.predicate.value == KB["mitigates"]  # ... and their kb:mitigates
                 and (q.subject.value + "/mitigates/" + q.object.value[len(base):]) in misplaced)
    ]
    assert unexplained == []
    # the two kinds hold comparable amounts: names, descriptions, dates and pages of all 221 objects
    assert len(stix) > 3000


def _cli(store_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "THREATGRAPH_CACHE": str(store_dir / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "threatgraph", "import", "atlas", *args, "--store", str(store_dir / "s"), "-q"],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )


def test_cli_imports_the_bundle_and_asks_for_the_version(tmp_path: Path) -> None:
    res = _cli(tmp_path, str(ATLAS_STIX))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert str(ATLAS_STIX) in res.stderr and "does not state its ATLAS version" in res.stderr
    assert "--release-version" in res.stderr and "'0.1'" in res.stderr
    ok = _cli(tmp_path, str(ATLAS_STIX), "--release-version", "5.6.0")
    assert ok.returncode == 0, ok.stderr
    assert "atlas/5.6.0: imported" in ok.stdout and "technique 170" in ok.stdout
    # the same release from the YAML afterwards is a new file for a loaded version: it replaces the graph
    again = _cli(tmp_path, str(ATLAS_YAML))
    assert again.returncode == 0 and "atlas/5.6.0: replaced" in again.stdout, again.stderr


# -- bad input ---------------------------------------------------------------------------------------
@pytest.fixture
def store() -> Store:
    """A store holding ATLAS 5.6.0 from the YAML."""
    s = open_store()
    load_release(s, "atlas", str(ATLAS_YAML))
    return s


def _state(store: Store) -> list[bytes]:
    return sorted(store.dump(None, "application/n-quads").splitlines())


def _fails(store: Store, path: Path, *needles: str, version: str | None = "5.7.0") -> str:
    before = _state(store)
    with pytest.raises(ImportFailed) as info:
        load_release(store, "atlas", str(path), version=version)
    assert _state(store) == before
    assert [r.version for r in releases(store)] == ["5.6.0"]
    msg = str(info.value)
    assert str(path) in msg, msg
    for n in needles:
        assert n in msg, msg
    assert info.value.hint, msg  # what to do
    return msg


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return p


def test_truncated_and_malformed_bundles(store: Store, tmp_path: Path) -> None:
    text = ATLAS_STIX.read_text(encoding="utf-8")
    _fails(store, _write(tmp_path, "cut.json", text[: len(text) // 2]), "malformed JSON", "line ")
    _fails(store, _write(tmp_path, "list.json", '{"type": "not-a-bundle"}'), "not a STIX bundle")
    _fails(store, _write(tmp_path, "bom.json", "\ufeff  {\"objects\": 3, \"type\": \"bundle\"}"), "must be a list")


def test_other_bundles_are_not_atlas(store: Store) -> None:
    _fails(store, DATA / "attack" / "ics-attack-17.1.json", "not an ATLAS STIX bundle", "import attack")
    _fails(store, DATA / "capec" / "stix-capec-3.9.json", "not an ATLAS STIX bundle")


def test_wrong_types_name_the_object(store: Store, tmp_path: Path, bundle: dict[str, Any]) -> None:
    objs = bundle["objects"]
    i = next(k for k, o in enumerate(objs) if o["type"] == "attack-pattern")
    r = next(k for k, o in enumerate(objs) if o["type"] == "relationship")
    for k, field, value, needle in (
        (i, "name", 42, "field 'name' must be a string"),
        (i, "kill_chain_phases", "reconnaissance", "field 'kill_chain_phases' must be a list"),
        (i, "x_mitre_deprecated", "yes", "field 'x_mitre_deprecated' must be true or false"),
        (r, "target_ref", ["x"], "field 'target_ref' must be a string"),
    ):
        bad = json.loads(json.dumps(bundle))
        bad["objects"][k][field] = value
        _fails(store, _write(tmp_path, f"bad-{field}.json", bad), f"object #{k} ({objs[k]['id']})", needle)


def test_no_version_in_the_bundle(store: Store, tmp_path: Path, bundle: dict[str, Any]) -> None:
    path = _write(tmp_path, "stix-atlas.json", bundle)
    _fails(store, path, "does not state its ATLAS version", version=None)
    # a version in the file name, or in the matrix name of the older bundles (``ATLAS 4.5.0``), is used
    named = _write(tmp_path, "stix-atlas-5.6.0.json", bundle)
    assert load_release(open_store(), "atlas", str(named)).release.version == "5.6.0"
    old = json.loads(json.dumps(bundle))
    for o in old["objects"]:
        if o["type"] == "x-mitre-matrix":
            o["name"] = "ATLAS 4.5.0"
    older = _write(tmp_path, "stix-atlas-old.json", old)
    assert load_release(open_store(), "atlas", str(older)).release.version == "4.5.0"


def test_a_combined_atlas_and_attack_bundle_keeps_only_atlas(tmp_path: Path, bundle: dict[str, Any]) -> None:
    ics: dict[str, Any] = json.loads((DATA / "attack" / "ics-attack-18.1.json").read_text(encoding="utf-8"))
    mixed = {**bundle, "objects": [*ics["objects"], *bundle["objects"]]}
    s = open_store()
    res = load_release(s, "atlas", str(_write(tmp_path, "mixed.json", mixed)), version="5.6.0")
    assert {k: res.release.counts[k] for k in ("tactic", "technique", "mitigation", "mitigates")} == {
        "tactic": 16, "technique": 170, "mitigation": 35, "mitigates": 246}
    assert res.skipped["attack-pattern (not ATLAS: no mitre-atlas external ID)"] == sum(
        1 for o in ics["objects"] if o["type"] == "attack-pattern")
    assert res.skipped["relationship (endpoint not an ATLAS object of the bundle)"] == sum(
        1 for o in ics["objects"] if o["type"] == "relationship")
