"""On-disk writes (EmbeddedStore.add_quads on a store directory): chunks bulk-loaded by writer threads
hold exactly the quads given, blank nodes included (a blank node used in two chunks stays one node)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyoxigraph import BlankNode, Literal, NamedNode, Quad

from threatgraph.resources import shared_data_dir
from threatgraph.store import EmbeddedStore


def _quads_spanning_chunks(n: int) -> list[Quad]:
    g, p, q = NamedNode("urn:g"), NamedNode("urn:p"), NamedNode("urn:q")
    nodes = [BlankNode(f"b{i}") for i in range(n)]
    first = [Quad(NamedNode(f"urn:s{i}"), p, nodes[i], g) for i in range(n)]
    second = [Quad(nodes[i], q, Literal(f"v{i}"), g) for i in range(n)]  # the same nodes, chunks later
    return first + second


def test_blank_nodes_across_chunks_stay_one_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EmbeddedStore, "_CHUNK", 500)
    quads = _quads_spanning_chunks(1500)  # 6 chunks; node i in chunk i // 500 and in chunk 3 + i // 500
    s = EmbeddedStore(str(tmp_path / "store"))
    s.add_quads(iter(quads))
    assert sorted(map(str, s.quads("urn:g"))) == sorted(map(str, quads))
    joined = s.select("SELECT (COUNT(*) AS ?n) WHERE { ?s <urn:p> ?b . ?b <urn:q> ?v }")
    assert int(joined[0]["n"].value) == 1500


def test_named_nodes_only_go_through_the_writer_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EmbeddedStore, "_CHUNK", 500)
    g, p = NamedNode("urn:g"), NamedNode("urn:p")
    quads = [Quad(NamedNode(f"urn:s{i}"), p, Literal(f"has _: inside {i}" if i % 7 else str(i)), g)
             for i in range(2600)]
    s = EmbeddedStore(str(tmp_path / "store"))
    s.add_quads(iter(quads))
    assert sorted(map(str, s.quads("urn:g"))) == sorted(map(str, quads))
    assert len(s) == 2600


def test_d3fend_graph_is_the_same_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """D3FEND's OWL restrictions are blank nodes: the on-disk graph equals the in-memory one."""
    data = shared_data_dir()
    path = data / "d3fend" / "d3fend-protege-1.2.0.ttl" if data else None
    if path is None or not path.is_file():  # pragma: no cover - only without the shared data
        pytest.skip("shared data not available (THREATGRAPH_SHARED_DATA)")
    from threatgraph.knowledge.d3fend import parse_d3fend

    monkeypatch.setattr(EmbeddedStore, "_CHUNK", 4000)
    quads = list(parse_d3fend(path.read_bytes(), str(path), None, None).quads)
    assert any(isinstance(q.subject, BlankNode) for q in quads)
    memory, disk = EmbeddedStore(), EmbeddedStore(str(tmp_path / "store"))
    memory.add_quads(quads)
    disk.add_quads(iter(quads))
    assert sorted(map(str, disk.quads())) == sorted(map(str, memory.quads()))


def test_deferred_writes_load_when_read() -> None:
    """Issue 14: the finding graph is written with EmbeddedStore.defer and loaded only when something reads it;
    a read that says it needs no deferred graph (complete=False) leaves it waiting."""
    from threatgraph.store.embedded import EmbeddedStore

    s = EmbeddedStore()
    s.load('<urn:m> <urn:p> "model" .', "application/n-triples", "urn:model")
    s.defer('<urn:f> <urn:p> "finding" .\n', "urn:findings")
    q = "SELECT ?o WHERE { ?s <urn:p> ?o } ORDER BY ?o"
    assert [r["o"].value for r in s.select(q, complete=False)] == ["model"]
    assert s.deferred and s.settled_count == 0
    s.add_quads([])  # an addition does not need the deferred text
    assert s.deferred
    assert [r["o"].value for r in s.select(q)] == ["finding", "model"]
    assert not s.deferred and s.settled_count == 1
    assert [r["o"].value for r in s.select("SELECT ?o WHERE { GRAPH <urn:findings> { ?s ?p ?o } }")] == ["finding"]


def test_deferred_writes_settle_before_updates_and_drops() -> None:
    from threatgraph.store.embedded import EmbeddedStore

    s = EmbeddedStore()
    s.defer('<urn:f> <urn:p> "x" .\n', "urn:findings")
    s.drop_graph("urn:findings")  # the drop applies to what was deferred before it
    assert len(s) == 0
    s.defer('<urn:f> <urn:p> "y" .\n', "urn:findings")
    s.update("DELETE WHERE { GRAPH <urn:findings> { ?s ?p ?o } }")
    assert len(s) == 0
    s.defer('<urn:f> <urn:p> "z" .\n', "urn:findings")
    assert s.dump("urn:findings", "application/n-triples").strip() == b'<urn:f> <urn:p> "z" .'


def test_dropping_another_graph_leaves_deferred_writes_waiting() -> None:
    from threatgraph.store.embedded import EmbeddedStore

    s = EmbeddedStore()
    s.load('<urn:b> <urn:p> "bridge" .', "application/n-triples", "urn:bridge")
    s.defer('<urn:f> <urn:p> "x" .\n', "urn:findings")
    s.drop_graph("urn:bridge")
    assert s.deferred and s.settled_count == 0
    s.replace_graph("urn:bridge", '<urn:b> <urn:p> "again" .', "application/n-triples")
    assert s.deferred
    s.drop_graph("urn:findings")
    assert not s.deferred and s.settled_count == 1 and len(s) == 1
