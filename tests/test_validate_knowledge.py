"""Knowledge-reference shapes against the real pinned releases (ATT&CK Enterprise 18.1, ATLAS 5.6.0):
cited IDs that exist pass, revoked ones name their replacement, deprecated and unknown ones fail, and
the raw STIX bundle (read with json, an outside oracle) agrees on which IDs are revoked/deprecated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threatgraph.analysis.validation import validate_models
from threatgraph.cli import main
from threatgraph.knowledge.atlas import parse_atlas
from threatgraph.knowledge.stix import parse_attack
from threatgraph.store import Store, open_store

REPO = Path(__file__).resolve().parent.parent
RAG = REPO / "data" / "examples" / "rag-assistant.ttl"
ATTACK_FILE = "enterprise-attack-18.1.stix20.json"

CITING = """@prefix ex: <http://example.org/k#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix attack: <https://w3id.org/threatgraph/attack/> .
@prefix atlas: <https://w3id.org/threatgraph/atlas/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:z a tg:TrustZone ; rdfs:label "Zone" .
ex:d a tg:DataAsset ; rdfs:label "Data" ; tg:classification tg:Internal .
ex:db a tg:DataStore ; rdfs:label "DB" ; tg:inZone ex:z ; tg:holds ex:d ;
    tg:hasControl ex:ok , ex:revoked , ex:deprecated , ex:unknown .
ex:ok a tg:Control ; rdfs:label "Current" ; tg:implementsMitigation attack:M1041 , atlas:AML.M0020 .
ex:revoked a tg:Control ; rdfs:label "Old SMB control" ; tg:implementsMitigation attack:T1077 .
ex:deprecated a tg:Control ; rdfs:label "Port control" ; tg:implementsMitigation attack:T1043 .
ex:unknown a tg:Control ; rdfs:label "Typo" ; tg:implementsMitigation attack:M1999 .
"""


def _release_store(shared: Path, location: str | None = None) -> Store:
    store = open_store(location)
    store.add_quads(parse_attack((shared / "attack" / ATTACK_FILE).read_bytes(), ATTACK_FILE).quads)
    store.add_quads(parse_atlas((shared / "atlas" / "ATLAS.yaml").read_bytes(), "ATLAS.yaml").quads)
    return store


@pytest.fixture(scope="module")
def releases(shared_data: Path) -> Store:
    return _release_store(shared_data)


def _stix_status(shared: Path) -> dict[str, tuple[bool, bool]]:
    bundle = json.loads((shared / "attack" / ATTACK_FILE).read_bytes())
    out: dict[str, tuple[bool, bool]] = {}
    for o in bundle["objects"]:
        for ref in o.get("external_references", []):
            if ref.get("source_name") == "mitre-attack" and o["type"] in ("attack-pattern", "course-of-action"):
                out[ref["external_id"]] = (bool(o.get("revoked")), bool(o.get("x_mitre_deprecated")))
    return out


@pytest.mark.shared
def test_example_ids_exist_in_the_releases(releases: Store) -> None:
    report = validate_models([RAG], knowledge=releases)
    assert report.violations == []
    assert not [i for i in report.issues if "Knowledge" in i.shape]  # checked, so no "format only" infos
    assert len(report.knowledge_graphs) == 2


@pytest.mark.shared
def test_revoked_deprecated_unknown(releases: Store, shared_data: Path, tmp_path: Path) -> None:
    oracle = _stix_status(shared_data)
    assert oracle["T1077"][0] and oracle["T1043"][1] and "M1999" not in oracle and not any(oracle["M1041"])
    model = tmp_path / "k.ttl"
    model.write_text(CITING, encoding="utf-8")
    report = validate_models([model], knowledge=releases)
    by = {(i.focus.rsplit("#", 1)[-1], i.shape.rsplit("#", 1)[-1]): i for i in report.violations}
    assert set(by) == {
        ("revoked", "KnowledgeIdRevokedShape"),
        ("deprecated", "KnowledgeIdDeprecatedShape"),
        ("unknown", "KnowledgeIdExistsShape"),
    }
    assert "replace it with T1021.002 (SMB/Windows Admin Shares)" in by[("revoked", "KnowledgeIdRevokedShape")].message
    assert "Old SMB control <http://example.org/k#revoked>" in by[("revoked", "KnowledgeIdRevokedShape")].text
    assert "M1999" in by[("unknown", "KnowledgeIdExistsShape")].message


@pytest.mark.shared
def test_cli_store_option(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _release_store(shared_data, str(tmp_path / "store"))
    store.flush()  # type: ignore[attr-defined]
    del store
    model = tmp_path / "k.ttl"
    model.write_text(CITING, encoding="utf-8")
    assert main(["validate", str(model), "--store", str(tmp_path / "store")]) == 1
    out = capsys.readouterr().out
    assert "revoked" in out and "T1021.002" in out
    assert main(["validate", str(model)]) == 0  # without releases: format only, infos
    assert "only the format" in capsys.readouterr().out
