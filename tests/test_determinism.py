"""The finding graph is the same on every run: stable IRIs (findings, shared evidence nodes) and explanations do
not depend on the order in which the store returns rows (checked with all knowledge loaded, where
the second stage adds techniques, risk factors and paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine
from threatgraph.analysis.techniques import load_knowledge
from threatgraph.store import open_store
from threatgraph.terms import graph_iri

EXAMPLE = Path(__file__).resolve().parent.parent / "data" / "examples" / "tabular-platform.ttl"


def _finding_quads(knowledge: bool) -> set[str]:
    store = open_store()
    if knowledge:
        load_knowledge(store, ["shared"])
    Engine(store).analyze([EXAMPLE])
    return {str(q) for q in store.quads(graph_iri("findings"))}


def test_same_graph_twice_without_knowledge() -> None:
    first = _finding_quads(False)
    assert len(first) > 1000
    assert first == _finding_quads(False)


@pytest.mark.shared
def test_same_graph_twice_with_knowledge() -> None:
    first = _finding_quads(True)
    assert any("technique" in q.lower() for q in first)
    assert first == _finding_quads(True)
