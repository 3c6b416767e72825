"""The model reaches the analysis store as the store parses it (issue 14): the same graph as the parsed triples."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyoxigraph import NamedNode, Quad, RdfFormat
from pyoxigraph import Store as OxStore

from threatgraph.analysis.engine import G_MODEL, Engine
from threatgraph.analysis.model import load_model_files
from threatgraph.store import open_store

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"
G = NamedNode("urn:g")


def _store_of_triples(triples: list) -> set[Quad]:
    s = OxStore()
    s.bulk_extend(Quad(a, b, c, G) for a, b, c in triples)
    return set(s)


def _store_of_texts(texts: list[str]) -> set[Quad]:
    s = OxStore()
    for t in texts:
        s.load(t, RdfFormat.TURTLE, to_graph=G)
    return set(s)


@pytest.mark.parametrize("name", ["rag-assistant.ttl", "tabular-platform.ttl"])
def test_texts_hold_the_triples(name: str) -> None:
    loaded = load_model_files([EXAMPLES / name])
    assert loaded.texts is not None
    assert _store_of_texts(loaded.texts) == _store_of_triples(loaded.triples)


def test_relative_iris_resolve_against_the_file(tmp_path: Path) -> None:
    model = tmp_path / "m.ttl"
    model.write_text("@prefix tg: <https://w3id.org/threatgraph/ontology#> .\n"
                     "<api> a tg:Process ; <p#x> <../up> .\n@base <http://ex.org/a/> .\n<q> a tg:Process .\n")
    loaded = load_model_files([model])
    assert loaded.texts is not None and loaded.texts[0].startswith(f"@base <{model.resolve().as_uri()}> .")
    assert NamedNode(model.resolve().parent.joinpath("api").as_uri()) in {t[0] for t in loaded.triples}
    assert _store_of_texts(loaded.texts) == _store_of_triples(loaded.triples)


def test_blank_nodes_keep_the_parsed_labels(tmp_path: Path) -> None:
    """A model with a blank node is added as quads: the closure names its blank nodes as the triples do."""
    model = tmp_path / "b.ttl"
    model.write_text("@prefix tg: <https://w3id.org/threatgraph/ontology#> .\n"
                     "<urn:x:api> a tg:Process ; tg:inZone [ a tg:TrustZone ] .\n")
    loaded = load_model_files([str(model)])
    assert loaded.texts is None
    store = open_store()
    Engine(store).load(loaded)
    got = {(q.subject, q.predicate, q.object) for q in store.quads(G_MODEL)}
    assert got == set(loaded.triples)


def test_engine_load_puts_the_same_model_graph(tmp_path: Path) -> None:
    loaded = load_model_files([EXAMPLES / "rag-assistant.ttl"])
    assert loaded.texts is not None
    by_text = open_store()
    Engine(by_text).load(loaded)
    loaded.texts = None
    by_quads = open_store()
    Engine(by_quads).load(loaded)
    assert set(by_text.quads(G_MODEL)) == set(by_quads.quads(G_MODEL))
    assert len(by_text) == len(by_quads)
