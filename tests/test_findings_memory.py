"""findings_of from what the stage kept in memory (issue 14): equal to reading the settled finding graph back, and
without loading the deferred finding graph.

The technique stage keeps everything it writes into graph/findings that :func:`findings_of` reads
(:class:`~threatgraph.analysis.stage_python.StageMemory`: the applications, and ``written`` for coverage, controls,
D3FEND inferences and mitigating facts); :func:`read_findings` of the settled store is the reference.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pyoxigraph import NamedNode

import threatgraph.analysis.pipeline as pipeline
from threatgraph.analysis.engine import Analysis, labels_of
from threatgraph.analysis.findings import _first_in, _last_written, findings_of, read_findings
from threatgraph.analysis.stage_python import AppRecord, StageMemory
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import TG, graph_iri

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "data" / "examples"
EXAMPLES = ["rag-assistant", "tabular-platform", "health-risk"]
G_FINDINGS = graph_iri("findings")


def _labels(store: EmbeddedStore) -> dict[str, str]:
    """The labels of ``store`` as :func:`labels_of` reads them, without loading the deferred finding graph (which
    labels rules only; labels_of itself settles)."""
    saved = store.select
    store.select = lambda query, *args, **kwargs: saved(query, complete=False)  # type: ignore[method-assign]
    try:
        return labels_of(store)
    finally:
        del store.select


def _check(analysis: Analysis) -> None:
    store = analysis.store
    assert isinstance(store, EmbeddedStore)
    memory = analysis.stage_memory
    assert memory is not None and memory.written is not None
    labels = _labels(store)
    before = store.settled_count
    kept = findings_of(analysis, labels)
    assert store.settled_count == before == 0 and store.deferred  # nothing of the finding graph read back
    read = read_findings(store, labels)  # (settles)
    assert store.settled_count == 1
    assert [dataclasses.asdict(f) for f in kept] == [dataclasses.asdict(f) for f in read]
    assert any(f.techniques for f in kept)
    # the applications' values as a reader of the store lists them: the record's lists, newest first
    ox = store.oxigraph
    g = NamedNode(G_FINDINGS)
    for app, rec in memory.apps.items():
        for p, vals in ((TG.appliedTechnique, rec.technique), (TG.viaMapping, rec.mapping),
                        (TG.inRelease, rec.release), (TG.replacesTechnique, rec.replaces)):
            got = [q.object.value for q in ox.quads_for_pattern(NamedNode(app), NamedNode(p), None, g)]
            assert got == vals[::-1], (app, p)


@pytest.mark.parametrize("name", EXAMPLES)
def test_findings_from_memory_equal_the_graph(name: str) -> None:
    _check(pipeline.analyze([EX / f"{name}.ttl"]))


@pytest.mark.shared
def test_findings_from_memory_equal_the_graph_with_knowledge() -> None:
    analysis = pipeline.analyze([EX / "rag-assistant.ttl"], knowledge=["shared"])
    memory = analysis.stage_memory
    assert memory is not None and memory.written is not None
    # the knowledge brings D3FEND inferences and applicable mitigations the stage wrote into the finding graph
    assert any(TG.countermeasureInference in props for props in memory.written.values())
    _check(analysis)


def test_first_value_of_several_is_the_last_written() -> None:
    """An application with several mappings, techniques, releases: the value a reader of the in-memory store sees
    first is the last distinct one written (a value written again keeps its place), as :func:`_last_written` says."""
    store = EmbeddedStore()
    app = "https://w3id.org/threatgraph/finding/app/x/T1"
    rec = AppRecord(technique=["urn:t:1", "urn:t:0"], mapping=[f"urn:m:{i}" for i in (3, 1, 4, 0, 2)],
                    release=["urn:r:b", "urn:r:a"], replaces=[])
    lines: list[str] = []
    for p, vals in ((TG.appliedTechnique, rec.technique), (TG.viaMapping, rec.mapping), (TG.inRelease, rec.release)):
        for v in vals:
            lines.append(f"<{app}> <{p}> <{v}> .\n")
        lines.append(f"<{app}> <{p}> <{vals[0]}> .\n")  # written again: keeps its place
    store.defer("".join(lines[:4]), G_FINDINGS)
    store.defer("".join(lines[4:]), G_FINDINGS)
    memory = StageMemory(apps={app: rec})
    mine = _last_written(memory)
    theirs = _first_in(store, G_FINDINGS)
    for p in (TG.appliedTechnique, TG.viaMapping, TG.inRelease, TG.replacesTechnique):
        assert mine(app, p) == theirs(app, p)
    assert mine(app, TG.viaMapping) == "urn:m:2"
