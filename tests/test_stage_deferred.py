"""The technique stage does not load the deferred finding graph (issue 14, speed).

The engine defers the rule findings' N-Triples (``EmbeddedStore.defer``) and hands the stage what it wrote of
each finding (``Engine.cores``, ``Engine.rules``): ``run_stage`` reads the findings from them, reads the model,
closure, bridge, view and scratch graph without settling, and defers what it writes into graph/findings. The
store's ``settled_count`` stays as it was across the stage, and the finding graph, once loaded, is the one the
all-SPARQL stage (``python=False``) writes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from pyoxigraph import BlankNode

from threatgraph.analysis.engine import Engine
from threatgraph.analysis.model import load_model_files
from threatgraph.analysis.techniques import newest_releases, run_stage
from threatgraph.knowledge.bridgegraph import load_bridge
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import TG, graph_iri

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "data" / "examples"
F = graph_iri("findings")


def _engine(model: Path, knowledge: list[str] | None) -> tuple[Engine, EmbeddedStore, dict[str, str]]:
    """An engine whose rules ran with their findings deferred (the bridge and the releases read before)."""
    store = EmbeddedStore()
    engine = Engine(store)
    loaded = load_model_files([str(model)])
    engine.load(loaded)
    if knowledge:
        from threatgraph.knowledge.view import load_view, view_of_files

        load_view(store, view_of_files(knowledge))
    engine.derive()
    load_bridge(store)
    releases = newest_releases(store)
    engine.run_rules()
    return engine, store, releases


def _lines(store: EmbeddedStore) -> Counter[str]:
    return Counter(" ".join("_:" if isinstance(t, BlankNode) else str(t) for t in (q.subject, q.predicate, q.object))
                   for q in store.quads(F))


def _run(model: Path, knowledge: list[str] | None) -> tuple[EmbeddedStore, int]:
    engine, store, releases = _engine(model, knowledge)
    assert store.deferred  # the rule findings wait as text
    before = store.settled_count
    result = run_stage(store, releases, findings=engine.foci.keys(), cores=engine.cores, rules=engine.rules)
    assert store.settled_count == before, "the stage loaded the deferred finding graph"
    assert store.deferred
    assert result.memory is not None and result.finding_status
    return store, result.total


def _sparql(model: Path, knowledge: list[str] | None) -> tuple[EmbeddedStore, int]:
    engine, store, releases = _engine(model, knowledge)
    result = run_stage(store, releases, findings=engine.foci.keys(), python=False)
    return store, result.total


def _check(model: Path, knowledge: list[str] | None) -> Counter[str]:
    deferred, n = _run(model, knowledge)
    sparql, n_sparql = _sparql(model, knowledge)
    a, b = _lines(deferred), _lines(sparql)  # (reading settles the deferred text)
    assert deferred.settled_count == 1
    assert a == b, (sorted((a - b).elements())[:5], sorted((b - a).elements())[:5])
    assert n == n_sparql
    text = "\n".join(a)
    assert f"<{TG.TechniqueApplication}>" in text and f"<{TG.controlStatus}>" in text
    return a


@pytest.mark.parametrize("name", ["rag-assistant", "health-risk"])
def test_stage_does_not_settle_without_knowledge(name: str) -> None:
    _check(EX / f"{name}.ttl", None)


@pytest.mark.shared
def test_stage_does_not_settle_with_knowledge() -> None:
    lines = "\n".join(_check(EX / "rag-assistant.ttl", ["shared"]))
    # the steps that read the applications in memory wrote what they write with SPARQL
    assert f"<{TG.implementedMitigation}>" in lines and f"<{TG.coveredBy}>" in lines
    assert f"<{TG.countermeasureInference}>" in lines and f"<{TG.reducedByFact}>" in lines


def test_without_cores_the_stage_reads_the_graph() -> None:
    """Negative case: without the engine's cores the stage reads the findings from the store (settles)."""
    engine, store, releases = _engine(EX / "rag-assistant.ttl", None)
    before = store.settled_count
    run_stage(store, releases, findings=engine.foci.keys())
    assert store.settled_count == before + 1 and not store.deferred
