"""Deferred text given as a function (issue 14): built only when the store settles, once, in pieces, in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from threatgraph.analysis.engine import G_FINDINGS, Engine
from threatgraph.store.embedded import EmbeddedStore

EX = Path(__file__).resolve().parent.parent / "data" / "examples"


def test_a_deferred_function_runs_once_on_settle() -> None:
    s = EmbeddedStore()
    calls: list[int] = []

    def pieces() -> Iterator[str]:
        calls.append(1)
        yield '<urn:f> <urn:p> "a" .\n'
        yield '<urn:f> <urn:p> "b" .\n'

    s.defer(pieces, "urn:findings")
    s.defer('<urn:f> <urn:p> "c" .\n', "urn:findings")
    assert s.deferred and not calls
    assert s.select("SELECT ?o WHERE { ?s ?p ?o }", complete=False) == []  # a reader of other graphs: not built
    assert not calls
    got = sorted(r["o"].value for r in s.select("SELECT ?o WHERE { GRAPH <urn:findings> { ?s ?p ?o } }"))
    assert got == ["a", "b", "c"] and calls == [1] and not s.deferred
    s.settle()
    assert calls == [1]


def test_run_rules_defers_its_text_unbuilt() -> None:
    store = EmbeddedStore()
    engine = Engine(store)
    analysis = engine.analyze([EX / "rag-assistant.ttl"])
    assert analysis.finding_count > 0 and store.settled_count == 0
    pending = [text for text, _g in store._deferred]
    assert any(callable(text) for text in pending)  # the rules' findings: text not built yet
    rows = store.select(f"SELECT (COUNT(DISTINCT ?f) AS ?n) WHERE {{ GRAPH <{G_FINDINGS}> {{ ?f a tg:Finding }} }}")
    assert int(rows[0]["n"].value) == analysis.finding_count and store.settled_count == 1
