"""Attack paths: from external entities / untrusted sources along data flows to critical assets."""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import read_findings
from threatgraph.analysis.paths import PAIRS_QUERY, PathView, hops_query, read_paths
from threatgraph.report import render_paths
from threatgraph.store import Store, open_store

EX = "https://example.org/paths#"
MODEL = """@prefix ex: <https://example.org/paths#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:out a tg:TrustZone ; tg:trustLevel 0 .
ex:in a tg:TrustZone ; tg:trustLevel 3 .
ex:partner a tgml:ThirdPartyDataSource ; rdfs:label "partner" ; tg:inZone ex:out .
ex:prep a tgml:DataPreparationPipeline ; rdfs:label "prep" ; tg:inZone ex:in .
ex:train a tgml:TrainingDataset ; rdfs:label "training data" ; tg:inZone ex:in .
ex:trainer a tgml:TrainingPipeline ; rdfs:label "trainer" ; tg:inZone ex:in .
ex:model a tgml:FineTunedModel ; rdfs:label "model" ; tg:inZone ex:in .
ex:isolated a tgml:TrainingDataset ; rdfs:label "isolated data" ; tg:inZone ex:in .
ex:viewer a tg:ExternalEntity ; rdfs:label "viewer" ; tg:inZone ex:out .
ex:f1 a tg:DataFlow ; rdfs:label "feed" ; tg:source ex:partner ; tg:target ex:prep .
ex:f2 a tg:DataFlow ; rdfs:label "write" ; tg:source ex:prep ; tg:target ex:train .
ex:f3 a tg:DataFlow ; rdfs:label "read" ; tg:source ex:train ; tg:target ex:trainer .
ex:f4 a tg:DataFlow ; rdfs:label "save" ; tg:source ex:trainer ; tg:target ex:model .
ex:f5 a tg:DataFlow ; rdfs:label "shortcut" ; tg:source ex:prep ; tg:target ex:trainer .
ex:f6 a tg:DataFlow ; rdfs:label "report" ; tg:source ex:model ; tg:target ex:viewer .
"""


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[PathView]]:
    path = tmp_path_factory.mktemp("paths") / "m.ttl"
    path.write_text(MODEL, encoding="utf-8")
    store = open_store()
    Engine(store).analyze([str(path)])
    labels = labels_of(store)
    return store, read_paths(store, labels, read_findings(store, labels))


def by_pair(paths: list[PathView]) -> dict[tuple[str, str], PathView]:
    return {(p.start.removeprefix(EX), p.target.removeprefix(EX)): p for p in paths}


def test_reachable_critical_assets(analysed: tuple[Store, list[PathView]]) -> None:
    _, paths = analysed
    pairs = set(by_pair(paths))
    assert pairs == {("partner", "train"), ("partner", "model")}
    # negative: the isolated dataset is critical but unreachable; the viewer only receives data
    assert not any(t == "isolated" or s == "viewer" for s, t in pairs)


def test_shortest_path_hops_and_boundaries(analysed: tuple[Store, list[PathView]]) -> None:
    _, paths = analysed
    p = by_pair(paths)[("partner", "model")]
    # partner → prep → trainer (shortcut) → model: 3 flows, not 4 through the training data
    assert [h.flow_label for h in p.hops] == ["feed", "shortcut", "save"]
    assert [h.element_label for h in p.hops] == ["prep", "trainer", "model"]
    assert p.length == 3 and p.crossings == 1 and p.hops[0].crosses_boundary and not p.hops[1].crosses_boundary
    assert p.text == "partner → prep → trainer → model"


def test_property_path_query_agrees(analysed: tuple[Store, list[PathView]]) -> None:
    store, paths = analysed
    pairs = {(r["start"].value, r["asset"].value) for r in store.select(PAIRS_QUERY)}
    assert pairs == {(p.start, p.target) for p in paths}
    rows = store.select(hops_query(2))
    assert (EX + "partner", EX + "train") in {(r["start"].value, r["asset"].value) for r in rows}


def test_rendered(analysed: tuple[Store, list[PathView]]) -> None:
    _, paths = analysed
    text = render_paths(paths)
    assert "partner ⇒ model: 3 hops, 1 trust-boundary crossings" in text
    assert "via feed [crosses boundary] → prep" in text
    assert render_paths([]) == ""


def test_example_rag_paths(examples_dir: Path) -> None:
    store = open_store()
    Engine(store).analyze([str(examples_dir / "rag-assistant.ttl")])
    labels = labels_of(store)
    ex = "https://example.org/rag-assistant#"
    paths = {(v.start, v.target): v for v in read_paths(store, labels, read_findings(store, labels))}
    # the public model hub reaches the downloaded embedding weights in one hop across the boundary
    p = paths[(ex + "modelHub", ex + "embeddingWeights")]
    assert p.length == 1 and p.crossings == 1
    # the crawled docs site reaches the customer database only through the agent and the SQL tool
    q = paths[(ex + "docsSite", ex + "customerDb")]
    assert ex + "agent" in [h.element for h in q.hops] and ex + "sqlTool" in [h.element for h in q.hops]
