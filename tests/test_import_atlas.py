"""ATLAS 5.6.0, CAPEC 3.9 and D3FEND 1.2.0 imports, checked against the files parsed independently here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyoxigraph import NamedNode

from threatgraph.knowledge.releases import active_filter, load_release
from threatgraph.resources import shared_data_dir
from threatgraph.store import open_store
from threatgraph.store.base import Store
from threatgraph.terms import ATLAS, ATTACK, CAPEC

pytestmark = pytest.mark.shared

DATA = shared_data_dir() or Path("/missing")
ATLAS_YAML = DATA / "atlas" / "ATLAS.yaml"
if not ATLAS_YAML.is_file():  # pragma: no cover - only without the shared data
    pytest.skip("shared data not available (THREATGRAPH_SHARED_DATA)", allow_module_level=True)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """ATLAS.yaml parsed with PyYAML, independently of the importer."""
    with ATLAS_YAML.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


@pytest.fixture(scope="module")
def store() -> Store:
    """ATLAS, Enterprise 18.1, CAPEC and D3FEND side by side in one store."""
    s = open_store()
    load_release(s, "atlas", str(ATLAS_YAML))
    load_release(s, "attack", str(DATA / "attack" / "enterprise-attack-18.1.stix20.json"))
    load_release(s, "capec", str(DATA / "capec" / "stix-capec-3.9.json"))
    load_release(s, "d3fend", str(DATA / "d3fend" / "d3fend-protege-1.2.0.ttl"))
    return s


ATLAS_G = "https://w3id.org/threatgraph/graph/release/atlas/5.6.0"
ENT_G = "https://w3id.org/threatgraph/graph/release/attack-enterprise/18.1"
CAPEC_G = "https://w3id.org/threatgraph/graph/release/capec/3.9"
D3F_G = "https://w3id.org/threatgraph/graph/release/d3fend/1.2.0"


def _count(store: Store, graph: str, cls: str) -> int:
    rows = store.select(f"SELECT (COUNT(?x) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?x a kb:{cls} }} }}")
    return int(rows[0]["n"].value)


def test_atlas_counts(store: Store) -> None:
    counts = {c: _count(store, ATLAS_G, c) for c in ("Tactic", "Technique", "Mitigation", "CaseStudy")}
    assert counts == {"Tactic": 16, "Technique": 170, "Mitigation": 35, "CaseStudy": 57}
    subs = store.select(
        f"SELECT (COUNT(?x) AS ?n) WHERE {{ GRAPH <{ATLAS_G}> {{ ?x kb:subtechniqueOf ?p }} }}"
    )
    assert int(subs[0]["n"].value) == 69


def test_atlas_technique_mitigation_pairs_are_exactly_the_files(store: Store, doc: dict[str, Any]) -> None:
    expected = set()
    for m in doc["matrices"][0]["mitigations"]:
        for use in m["techniques"]:
            expected.add((m["id"], use["id"]))
        # ATLAS 5.6.0 quirk: AML.M0018 and AML.M0034 carry a mis-indented {id, use} technique entry inside
        # `ml-lifecycle`; the importer keeps it as the technique use it is (docs/knowledge.md)
        for item in m.get("ml-lifecycle", []):
            if isinstance(item, dict):
                expected.add((m["id"], item["id"]))
    rows = store.select(
        f"""SELECT ?m ?t WHERE {{ GRAPH <{ATLAS_G}> {{ ?mi kb:mitigates ?te .
            ?mi kb:externalId ?m . ?te kb:externalId ?t }} }}"""
    )
    got = {(r["m"].value, r["t"].value) for r in rows}
    assert len(got) == len(expected) == 246  # distinct pairs (stix-atlas.json has 246 mitigates too)
    assert got == expected
    assert ("AML.M0018", "AML.T0052.001") in got


def test_atlas_tactics_subtechniques_and_lifecycle(store: Store, doc: dict[str, Any]) -> None:
    matrix = doc["matrices"][0]
    tech_tactics = {(t["id"], tac) for t in matrix["techniques"] for tac in t.get("tactics", [])}
    rows = store.select(
        f"""SELECT ?t ?a WHERE {{ GRAPH <{ATLAS_G}> {{ ?x a kb:Technique ; kb:externalId ?t ; kb:tactic ?y .
            ?y kb:externalId ?a }} }}"""
    )
    assert {(r["t"].value, r["a"].value) for r in rows} == tech_tactics
    parents = {(t["id"], t["subtechnique-of"]) for t in matrix["techniques"] if "subtechnique-of" in t}
    rows = store.select(
        f"""SELECT ?s ?p WHERE {{ GRAPH <{ATLAS_G}> {{ ?x kb:subtechniqueOf ?y ; kb:externalId ?s .
            ?y kb:externalId ?p }} }}"""
    )
    assert {(r["s"].value, r["p"].value) for r in rows} == parents
    stages = {(m["id"], s) for m in matrix["mitigations"] for s in m["ml-lifecycle"] if isinstance(s, str)}
    rows = store.select(
        f"""SELECT ?m ?s WHERE {{ GRAPH <{ATLAS_G}> {{ ?x kb:externalId ?m ; kb:lifecycleStage ?y .
            ?y rdfs:label ?s }} }}"""
    )
    assert {(r["m"].value, r["s"].value) for r in rows} == stages


def test_atlas_case_study_procedures(store: Store, doc: dict[str, Any]) -> None:
    expected = {
        (cs["id"], i + 1, step["technique"])
        for cs in doc["case-studies"]
        for i, step in enumerate(cs["procedure"])
    }
    rows = store.select(
        f"""SELECT ?cs ?i ?t WHERE {{ GRAPH <{ATLAS_G}> {{ ?c a kb:CaseStudy ; kb:externalId ?cs ;
            kb:procedureStep ?s . ?s kb:stepIndex ?i ; kb:technique/kb:externalId ?t }} }}"""
    )
    assert {(r["cs"].value, int(r["i"].value), r["t"].value) for r in rows} == expected


def test_all_53_attack_references_resolve_to_active_18_1_objects(store: Store, doc: dict[str, Any]) -> None:
    matrix = doc["matrices"][0]
    refs = {
        (x["id"], x["ATT&CK-reference"]["id"])
        for key in ("tactics", "techniques", "mitigations")
        for x in matrix[key]
        if "ATT&CK-reference" in x
    }
    assert len(refs) == 53
    rows = store.select(
        f"""SELECT ?a ?id WHERE {{
            GRAPH <{ATLAS_G}> {{ ?x kb:attackReference ?y ; skos:closeMatch ?y ; kb:externalId ?a }}
            GRAPH <{ENT_G}> {{ ?y kb:attackId ?id . {active_filter("y")} }} }}"""
    )
    assert {(r["a"].value, r["id"].value) for r in rows} == refs
    # and the kinds agree: ATLAS tactics → ATT&CK tactics, techniques → techniques, mitigations → mitigations
    wrong = store.select(
        f"""SELECT ?x WHERE {{ GRAPH <{ATLAS_G}> {{ ?x a ?c ; kb:attackReference ?y
            VALUES ?c {{ kb:Tactic kb:Technique kb:Mitigation }} }}
            FILTER NOT EXISTS {{ GRAPH <{ENT_G}> {{ ?y a ?c }} }} }}"""
    )
    assert wrong == []


def test_capec(store: Store) -> None:
    bundle = json.loads((DATA / "capec" / "stix-capec-3.9.json").read_text(encoding="utf-8"))
    patterns = [o for o in bundle["objects"] if o["type"] == "attack-pattern"]
    dep = {
        next(r["external_id"] for r in o["external_references"] if r["source_name"] == "capec")
        for o in patterns
        if o["x_capec_status"] in ("Deprecated", "Obsolete")
    }
    rows = store.select(
        f"SELECT ?id WHERE {{ GRAPH <{CAPEC_G}> {{ ?x kb:deprecated true ; kb:externalId ?id }} }}"
    )
    assert {r["id"].value for r in rows} == dep
    assert len(dep) == 57
    n = store.select(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{CAPEC_G}> {{ ?m kb:mitigates ?p }} }}")
    assert int(n[0]["n"].value) == 1182
    attack_refs = store.select(
        f"SELECT DISTINCT ?t WHERE {{ GRAPH <{CAPEC_G}> {{ ?x kb:attackReference ?t }} }}"
    )
    assert len(attack_refs) == 189
    active = store.select(
        f"""SELECT DISTINCT ?t WHERE {{ GRAPH <{CAPEC_G}> {{ ?x kb:attackReference ?t }}
            GRAPH <{ENT_G}> {{ ?t a kb:Technique . {active_filter("t")} }} }}"""
    )
    assert len(active) == 187  # T1574.002 is revoked; T1513 is a Mobile technique (data README)
    cwe_pairs = {
        (o["id"], r["external_id"])
        for o in patterns
        for r in o["external_references"]
        if r["source_name"] == "cwe"
    }
    assert len(cwe_pairs) == 1212  # 1,214 references, two of them repeated on the same pattern
    rows = store.select(f"SELECT ?s ?c WHERE {{ GRAPH <{CAPEC_G}> {{ ?x kb:cweId ?c ; kb:stixId ?s }} }}")
    assert {(r["s"].value, r["c"].value) for r in rows} == cwe_pairs
    assert store.ask(
        f"ASK {{ GRAPH <{CAPEC_G}> {{ <{CAPEC['CAPEC-66']}> a kb:AttackPattern ; rdfs:label ?l }} }}"
    )


def test_d3fend_is_its_own_graph(store: Store) -> None:
    assert sum(1 for _ in store.quads(D3F_G)) == 32060
    assert store.ask(f"""ASK {{ GRAPH <{D3F_G}> {{ ?t d3f:attack-id "T1003.001" }} }}""")
    # nothing leaks into the other release graphs
    assert not store.ask(f"ASK {{ GRAPH <{ENT_G}> {{ ?s ?p ?o FILTER(STRSTARTS(STR(?p), STR(d3f:))) }} }}")


def test_atlas_ids_and_pages(store: Store) -> None:
    rows = store.select(
        f"SELECT ?l ?page WHERE {{ GRAPH <{ATLAS_G}> {{ ?t rdfs:label ?l ; rdfs:seeAlso ?page }} }}",
        {"t": NamedNode(ATLAS["AML.T0020"])},
    )
    assert [(r["l"].value, r["page"].value) for r in rows] == [
        ("Poison Training Data", "https://atlas.mitre.org/techniques/AML.T0020")
    ]
    assert store.ask(
        f"ASK {{ GRAPH <{ATLAS_G}> {{ <{ATLAS['AML.TA0002']}> kb:attackReference <{ATTACK['TA0043']}> }} }}"
    )
