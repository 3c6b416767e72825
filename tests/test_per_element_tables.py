"""The two published per-element tables, reproduced exactly (outside oracles).

STRIDE-per-element: Microsoft (Shostack, *Threat Modeling*, 2014, table 3-9; SDL Threat Modeling Tool).
LINDDUN: the classic per-element mapping table (Deng et al. 2011, linddun.org).
The expected tables below are transcribed from those publications, not from our ontology.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import read_findings

STRIDE_TABLE = {  # element kind -> letters
    "external entity": "S R",
    "process": "S T R I D E",
    "data store": "T I D",
    "data store holding logs": "T R I D",
    "data flow": "T I D",
}
LINDDUN_TABLE = {  # L I N D DD U NC (classic: Linkability, Identifiability, Non-repudiation, Detectability,
    # Disclosure of information, Unawareness, Non-compliance)
    "external entity": "L I U",
    "process": "L I N D DD NC",
    "data store": "L I N D DD NC",
    "data store holding logs": "L I N D DD NC",
    "data flow": "L I N D DD NC",
}

MODEL = """
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <http://example.org/tables#> .
ex:zoneA a tg:TrustZone . ex:zoneB a tg:TrustZone .
ex:ee a tg:ExternalEntity ; rdfs:label "external entity" ; tg:inZone ex:zoneA .
ex:proc a tg:Process ; rdfs:label "process" ; tg:inZone ex:zoneB .
ex:store a tg:DataStore ; rdfs:label "data store" ; tg:inZone ex:zoneB .
ex:logs a tg:DataStore ; rdfs:label "data store holding logs" ; tg:holdsLogs true ; tg:inZone ex:zoneB .
ex:flow a tg:DataFlow ; rdfs:label "data flow" ; tg:source ex:ee ; tg:target ex:proc .
"""


@pytest.fixture(scope="module")
def per_element(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, set[str]]]:
    path: Path = tmp_path_factory.mktemp("tables") / "all-kinds.ttl"
    path.write_text(MODEL, encoding="utf-8")
    eng = Engine(frameworks=("stride", "linddun"))  # LINDDUN asked for: its baseline on every element
    eng.analyze([path])
    out: dict[str, dict[str, set[str]]] = {}
    notation = {
        r["c"].value: r["n"].value
        for r in eng.store.select("SELECT ?c ?n WHERE { ?c a tg:ThreatCategory ; skos:notation ?n }")
    }
    for f in read_findings(eng.store, labels_of(eng.store)):
        if f.rule_id not in ("TG-PE-STRIDE", "TG-PE-LINDDUN"):
            continue
        fw = "STRIDE" if f.rule_id == "TG-PE-STRIDE" else "LINDDUN"
        for cat in f.categories:
            out.setdefault(f.focus_label, {}).setdefault(fw, set()).add(notation[cat[0]])
    return out


@pytest.mark.parametrize("kind", sorted(STRIDE_TABLE))
def test_stride_per_element(per_element: dict[str, dict[str, set[str]]], kind: str) -> None:
    assert per_element[kind].get("STRIDE", set()) == set(STRIDE_TABLE[kind].split())


@pytest.mark.parametrize("kind", sorted(LINDDUN_TABLE))
def test_linddun_per_element(per_element: dict[str, dict[str, set[str]]], kind: str) -> None:
    assert per_element[kind].get("LINDDUN", set()) == set(LINDDUN_TABLE[kind].split())


def test_linddun_baseline_only_where_personal_data_by_default(tmp_path: Path) -> None:
    """Issue 13: without --frameworks, the LINDDUN baseline is raised only on elements that hold, process or
    carry personal data (or send/receive it on a flow); one baseline finding per element and framework."""
    path = tmp_path / "m.ttl"
    path.write_text(MODEL + '''
ex:pd a tg:DataAsset ; tg:classification tg:Personal .
ex:store tg:holds ex:pd .
''', encoding="utf-8")
    eng = Engine()
    eng.analyze([path])
    baseline = [f for f in read_findings(eng.store, labels_of(eng.store)) if f.rule_id == "TG-PE-LINDDUN"]
    assert [f.focus_label for f in baseline] == ["data store"]
    assert {c[1] for c in baseline[0].categories} >= {"Linking", "Identifying", "Data disclosure"}
    stride = [f for f in read_findings(eng.store, labels_of(eng.store)) if f.rule_id == "TG-PE-STRIDE"]
    assert len(stride) == len({f.focus for f in stride}) == len(STRIDE_TABLE)


def test_trust_zone_gets_nothing(per_element: dict[str, dict[str, set[str]]]) -> None:
    assert all(k in STRIDE_TABLE for k in per_element)
