"""find_paths' breadth-first search gives the answers of the per-length SPARQL it replaced (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine
from threatgraph.analysis.paths import (
    MAX_HOPS,
    PAIRS_QUERY,
    PathRecord,
    _shortest,
    _values,
    find_paths,
    hops_query,
)
from threatgraph.store import Store, open_store

# ties between chains of one length (the smallest joined flow IRIs win, "f1" before "f1x" before "f2"), a
# cycle, a flow with two targets, a chain longer than allowed, and a flow that is not typed a DataFlow
MODEL = """@prefix ex: <https://example.org/tie#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
ex:src a tg:ExternalEntity .
ex:bad a tgml:ThirdPartyDataSource ; tg:untrustedOrigin true .
ex:a a tg:Process . ex:b a tg:Process . ex:c a tg:Process .
ex:ds a tgml:TrainingDataset . ex:ds2 a tgml:TrainingDataset . ex:far a tgml:ModelArtifact .
ex:f2 a tg:DataFlow ; tg:source ex:src ; tg:target ex:a .
ex:f1x a tg:DataFlow ; tg:source ex:src ; tg:target ex:b .
ex:f1 tg:source ex:src ; tg:target ex:c .
ex:g1 a tg:DataFlow ; tg:source ex:a ; tg:target ex:ds .
ex:g2 a tg:DataFlow ; tg:source ex:b ; tg:target ex:ds, ex:ds2 .
ex:g3 a tg:DataFlow ; tg:source ex:c ; tg:target ex:ds2 .
ex:back a tg:DataFlow ; tg:source ex:ds ; tg:target ex:src .
ex:h a tg:DataFlow ; tg:source ex:bad ; tg:target ex:a .
ex:k1 a tg:DataFlow ; tg:source ex:ds2 ; tg:target ex:n1 .
ex:k2 a tg:DataFlow ; tg:source ex:n1 ; tg:target ex:n2 .
ex:k3 a tg:DataFlow ; tg:source ex:n2 ; tg:target ex:far .
"""


def _per_length(store: Store, pairs: list[tuple[str, str]], max_hops: int) -> dict[tuple[str, str], list[str]]:
    """The queries find_paths ran before: one per length, for the pairs still open."""
    found: dict[tuple[str, str], list[str]] = {}
    for length in range(1, max_hops + 1):
        if not pairs:
            break
        for r in store.select(hops_query(length, _values(pairs))):
            found[(r["start"].value, r["asset"].value)] = r["flows"].value.split(" ")
        pairs = [p for p in pairs if p not in found]
    return found


@pytest.mark.parametrize("max_hops", [2, 4, MAX_HOPS])
def test_shortest_agrees_with_the_queries(tmp_path: Path, max_hops: int) -> None:
    path = tmp_path / "m.ttl"
    path.write_text(MODEL, encoding="utf-8")
    store = open_store()
    Engine(store).analyze([str(path)])
    pairs = sorted({(r["start"].value, r["asset"].value) for r in store.select(PAIRS_QUERY)})
    assert len(pairs) >= 5
    want = _per_length(store, pairs, max_hops)
    by_start: dict[str, list[str]] = {}
    for start, asset in pairs:
        by_start.setdefault(start, []).append(asset)
    got = _shortest(store, by_start, max_hops)
    assert got == want
    tie = "https://example.org/tie#"
    # the tie to ds2 at length 2: f1 (untyped) g3 before f1x g2
    assert got[(tie + "src", tie + "ds2")] == [tie + "f1", tie + "g3"]
    assert ((tie + "src", tie + "far") in got) == (max_hops >= 5)
    kept: list[PathRecord] = []
    find_paths(store, max_hops, keep=kept)
    assert {(k.start, k.target): [f for f, _el in k.hops] for k in kept} == want


def test_examples_agree(examples_dir: Path) -> None:
    for name in ("rag-assistant", "tabular-platform", "health-risk"):
        store = open_store()
        Engine(store).analyze([str(examples_dir / f"{name}.ttl")])
        pairs = sorted({(r["start"].value, r["asset"].value) for r in store.select(PAIRS_QUERY)})
        assert len(pairs) > 1
        kept: list[PathRecord] = []
        assert find_paths(store, keep=kept) == len(_per_length(store, pairs, MAX_HOPS))
        assert {(k.start, k.target): [f for f, _el in k.hops] for k in kept} == _per_length(store, pairs, MAX_HOPS)
