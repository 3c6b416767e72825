"""The ontology and its compiled closure are cached on disk (issue 14: start-up costs of one analysis).

A cache is keyed by digests (an edited ontology gets a new entry), read back to the same answers as
parsing and compiling in the process, rebuilt when it is corrupt, and skipped — never an error — when
the cache directory cannot be written.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdflib
from pyoxigraph import BlankNode, Literal, NamedNode, Quad

from threatgraph.analysis import closure as closure_mod
from threatgraph.analysis import ontology as ontology_mod
from threatgraph.analysis.closure import closure_of, compiled_ontology, reasonable_closure
from threatgraph.analysis.model import load_model_files, parse_model_text
from threatgraph.analysis.ontology import load_ontology
from threatgraph.convert import to_ox
from threatgraph.knowledge.view import RELEASES_GRAPH, cached_view, load_view
from threatgraph.resources import ontology_dir
from threatgraph.store import open_store

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "data" / "examples").rglob("*.ttl"))
TG = "https://w3id.org/threatgraph/ontology#"
EXTRA_AXIOM = """
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
<urn:test:Gadget> a owl:Class ; rdfs:subClassOf <https://w3id.org/threatgraph/ontology#Process> .
"""
MODEL = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
<urn:test:g1> a <urn:test:Gadget> ; <http://www.w3.org/2000/01/rdf-schema#label> "g1" .
<urn:test:p1> a tg:Process .
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache directory, and no ontology or compiled closure remembered by this process."""
    d = tmp_path / "cache"
    monkeypatch.setenv("THREATGRAPH_CACHE", str(d))
    ontology_mod._load.cache_clear()
    saved = dict(closure_mod._COMPILED)
    closure_mod._COMPILED.clear()
    yield d
    ontology_mod._load.cache_clear()
    closure_mod._COMPILED.clear()
    closure_mod._COMPILED.update(saved)


def _forget() -> None:
    """What a new process knows: nothing in memory, only the cache directory."""
    ontology_mod._load.cache_clear()
    closure_mod._COMPILED.clear()


def _terms(triples: object) -> set[tuple[object, object, object]]:
    return {(to_ox(s), to_ox(p), to_ox(o)) for s, p, o in triples}  # type: ignore[attr-defined]


def _onto_copy(tmp_path: Path) -> Path:
    d = tmp_path / "onto"
    d.mkdir()
    for f in ontology_dir().glob("*.ttl"):
        shutil.copy(f, d / f.name)
    return d


def test_ontology_read_back_from_the_cache_equals_the_parsed_one(cache: Path) -> None:
    parsed = load_ontology()
    assert parsed._graph is not None  # parsed in this process
    files = list((cache / "ontology").glob("*.json"))
    assert len(files) == 1 and not list((cache / "ontology").glob("*.tmp"))
    _forget()
    cached = load_ontology()
    assert cached is not parsed and cached._graph is None  # read from the cache: nothing parsed yet
    assert (cached.terms, cached.classes, cached.properties, cached.categories) == (
        parsed.terms, parsed.classes, parsed.properties, parsed.categories)
    assert cached.ntriples == parsed.ntriples and cached.digest == parsed.digest
    assert set(cached.quads("urn:g")) == set(parsed.quads("urn:g"))
    # the rdflib graph built from the cache is the parsed graph, blank-node labels included
    assert set(cached.graph) == set(parsed.graph)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_closure_from_the_cached_compiled_ontology_equals_reasonable(cache: Path, path: Path) -> None:
    compiled_ontology(load_ontology())  # compiled and written
    assert len(list((cache / "ontology").glob("*.closure.json"))) == 1
    _forget()
    onto = load_ontology()
    tb = compiled_ontology(onto, compile_on_miss=False)
    assert tb is not None and tb.reason == ""  # read back from disk, not compiled
    model = load_model_files([path]).graph
    got = closure_of(onto, model)
    asserted = _terms(model) | _terms(onto.graph)
    assert _terms(got) - asserted == _terms(reasonable_closure(onto.graph, model)) - asserted


def test_an_edited_ontology_gets_a_new_closure(cache: Path, tmp_path: Path) -> None:
    d = _onto_copy(tmp_path)
    model = parse_model_text(MODEL, "m.ttl")
    gadget_is_process = (rdflib.URIRef("urn:test:g1"), rdflib.RDF.type, rdflib.URIRef(TG + "Process"))
    before = load_ontology(d)
    assert gadget_is_process not in closure_of(before, model)
    (d / "zz-extra.ttl").write_text(EXTRA_AXIOM, encoding="utf-8")
    _forget()
    after = load_ontology(d)
    assert after.digest != before.digest
    assert "urn:test:Gadget" in after.classes
    assert gadget_is_process in closure_of(after, model)
    assert len(list((cache / "ontology").glob("*.closure.json"))) == 2
    # and the unedited ontology still reads its own entry
    (d / "zz-extra.ttl").unlink()
    _forget()
    again = load_ontology(d)
    assert again.digest == before.digest
    assert gadget_is_process not in closure_of(again, model)


@pytest.mark.parametrize("bad", [b'{"version": "1", "terms": [["u"]]', b'{"version": "1", "terms": [["u"]]}', b"\xff"])
def test_a_corrupt_cache_is_rebuilt(cache: Path, bad: bytes) -> None:
    compiled_ontology(load_ontology())
    (entry,) = (cache / "ontology").glob("*.closure.json")
    entry.write_bytes(bad)
    _forget()
    onto = load_ontology()
    assert onto._graph is None  # the ontology entry is intact
    assert compiled_ontology(onto, compile_on_miss=False) is None  # the corrupt entry is not used
    model = load_model_files([EXAMPLES[0]]).graph
    got = closure_of(onto, model)
    assert closure_mod._COMPILED  # compiled again (and cached again)
    asserted = _terms(model) | _terms(onto.graph)
    assert _terms(got) - asserted == _terms(reasonable_closure(onto.graph, model)) - asserted
    _forget()
    assert compiled_ontology(load_ontology(), compile_on_miss=False) is not None

    (onto_entry,) = (p for p in (cache / "ontology").glob("*.json") if not p.name.endswith(".closure.json"))
    onto_entry.write_bytes(bad)
    _forget()
    reparsed = load_ontology()
    assert reparsed._graph is not None and reparsed.terms == onto.terms


def test_an_unwritable_cache_directory_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   cache: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("THREATGRAPH_CACHE", str(blocker / "cache"))  # mkdir under a file fails
    onto = load_ontology()
    model = load_model_files([EXAMPLES[0]]).graph
    got = closure_of(onto, model)
    assert not closure_mod._COMPILED  # small model, nowhere to cache: reasonable ran, nothing compiled
    asserted = _terms(model) | _terms(onto.graph)
    assert _terms(got) - asserted == _terms(reasonable_closure(onto.graph, model)) - asserted
    assert blocker.read_text(encoding="utf-8") == "x"


def _view_quads() -> list[Quad]:
    g, r = NamedNode("https://w3id.org/threatgraph/graph/release/atlas/1.0"), NamedNode(RELEASES_GRAPH)
    t = NamedNode("urn:test:technique")
    return [Quad(t, NamedNode("http://www.w3.org/2000/01/rdf-schema#label"), Literal("Technique \"one\"\n"), g),
            Quad(BlankNode("b1"), NamedNode("urn:test:p"), t, g),
            Quad(g, NamedNode("urn:test:sha256"), Literal("abc"), r)]


def test_the_knowledge_view_cache_is_checked_by_its_digest(cache: Path) -> None:
    built: list[int] = []

    def build() -> list[Quad]:
        built.append(1)
        return _view_quads()

    first = cached_view("k1", None, build)
    second = cached_view("k1", None, build)
    assert len(built) == 1 and second.nquads == first.nquads
    assert set(second.quads) == set(_view_quads())
    assert second.graphs == ("https://w3id.org/threatgraph/graph/release/atlas/1.0",)
    store = open_store()
    load_view(store, second)
    assert set(store.quads()) == set(_view_quads())  # blank-node labels kept
    no_blank = cached_view("k0", None, lambda: [q for q in _view_quads() if not isinstance(q.subject, BlankNode)])
    store = open_store()
    load_view(store, no_blank)  # parsed by the store
    assert set(store.quads()) == set(no_blank.quads) and len(no_blank.quads) == 2
    # an altered file (same length, one byte changed) is recompiled, not loaded
    path = cache / "views" / "k1.nq"
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"one", b"two"))
    third = cached_view("k1", None, build)
    assert len(built) == 2 and b"two" not in third.nquads
    # a file of an older version (no digest line) is read when it parses, recompiled when it does not
    path.write_bytes(raw.partition(b"\n")[2])
    assert cached_view("k1", None, build).quads and len(built) == 2
    path.write_bytes(b"<urn:a> <urn:b> .\n")
    assert set(cached_view("k1", None, build).quads) == set(_view_quads()) and len(built) == 3


def test_the_knowledge_view_without_a_writable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("THREATGRAPH_CACHE", str(blocker / "cache"))
    built: list[int] = []

    def build() -> list[Quad]:
        built.append(1)
        return _view_quads()

    for _ in range(2):
        assert set(cached_view("k2", ["g"], build).quads) == set(_view_quads())
    assert len(built) == 2


# -- models read by pyoxigraph, closed by the cached compiled ontology (no rdflib on that path) ----------
FIXTURES = sorted((REPO / "tests" / "rules" / "fixtures").glob("*/*.ttl")) + sorted(
    (REPO / "tests" / "shapes" / "fixtures").glob("*/*.ttl"))
MODELS = EXAMPLES + FIXTURES


def _no_blank(triples: object) -> tuple[set[tuple[object, object, object]], int]:
    """Triples without blank nodes, and how many have one (blank-node labels differ between parsers)."""
    rows = {(s, p, o) for s, p, o in triples}  # type: ignore[attr-defined]
    plain = {t for t in rows if not any(isinstance(x, BlankNode) for x in t)}
    return plain, len(rows) - len(plain)


@pytest.mark.parametrize("path", MODELS, ids=[f"{p.parent.name}/{p.name}" for p in MODELS])
def test_pyoxigraph_reads_a_model_as_rdflib_does(path: Path) -> None:
    from threatgraph.analysis.model import _ox_triples

    loaded = load_model_files([path])
    by_rdflib = _ox_triples(parse_model_text(path.read_text(encoding="utf-8"), str(path)))
    assert _no_blank(loaded.triples) == _no_blank(by_rdflib)
    assert len(loaded.triples) == len(set(loaded.triples))


@pytest.mark.parametrize("path", MODELS, ids=[f"{p.parent.name}/{p.name}" for p in MODELS])
def test_model_closure_equals_reasonable(cache: Path, path: Path) -> None:
    from threatgraph.analysis.fastclosure import cached_tbox, model_closure

    onto = load_ontology()
    compiled_ontology(onto)
    assert cached_tbox(onto) is not None
    loaded = load_model_files([path])
    got = model_closure(onto, loaded)
    asserted = {tuple(t) for t in loaded.triples} | _terms(onto.graph)
    want = _terms(reasonable_closure(onto.graph, loaded.graph)) - asserted
    assert set(got) - asserted == want
    assert len(got) == len(set(got))


def test_model_closure_without_a_cache_compiles_it(cache: Path) -> None:
    from threatgraph.analysis.fastclosure import cached_tbox, model_closure

    onto = load_ontology()
    loaded = load_model_files([EXAMPLES[0]])
    assert cached_tbox(onto) is None
    first = model_closure(onto, loaded)  # rdflib path: compiles and caches the ontology
    assert cached_tbox(onto) is not None
    assert set(model_closure(onto, loaded)) == set(first)


@pytest.mark.parametrize(("literal", "expected"), [
    ('"01"^^xsd:integer', '"1"^^<http://www.w3.org/2001/XMLSchema#integer>'),
    ('"1"^^xsd:boolean', '"true"^^<http://www.w3.org/2001/XMLSchema#boolean>'),
    ('"PT36H"^^xsd:duration', '"P1DT12H"^^<http://www.w3.org/2001/XMLSchema#duration>'),
    ('"x"@EN-gb', '"x"@en-gb'),
    ("4", '"4"^^<http://www.w3.org/2001/XMLSchema#integer>'),
    ('"P90D"^^xsd:duration', '"P90D"^^<http://www.w3.org/2001/XMLSchema#duration>'),
])
def test_literals_rdflib_rewrites_are_read_by_rdflib(tmp_path: Path, literal: str, expected: str) -> None:
    f = tmp_path / "m.ttl"
    f.write_text("@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
                 f"<urn:x:p> a <https://w3id.org/threatgraph/ontology#Process> ; <urn:x:v> {literal} .\n",
                 encoding="utf-8")
    from threatgraph.analysis.model import _ox_triples

    (value,) = [o for _, p, o in load_model_files([f]).triples if p == NamedNode("urn:x:v")]
    assert str(value) == expected
    (by_rdflib,) = [o for _, p, o in _ox_triples(parse_model_text(f.read_text(encoding="utf-8"), str(f)))
                    if p == NamedNode("urn:x:v")]
    assert value == by_rdflib


def test_a_triple_term_is_still_refused(tmp_path: Path) -> None:
    from threatgraph.errors import InputError

    f = tmp_path / "star.ttl"
    f.write_text("<urn:x:a> <urn:x:p> <<( <urn:x:a> <urn:x:p> <urn:x:b> )>> .\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"star\.ttl"):
        load_model_files([f])


def test_processes_filling_the_cache_at_once(cache: Path) -> None:
    """Processes that miss the cache together each write whole files (temporary file + rename): all
    succeed, and the entries left are whole and used by the next process."""
    import os
    import subprocess
    import sys

    code = ("from threatgraph.analysis.ontology import load_ontology\n"
            "from threatgraph.analysis.closure import compiled_ontology\n"
            "o = load_ontology(); tb = compiled_ontology(o); print(len(o.terms), tb.reason == '')\n")
    env = dict(os.environ, THREATGRAPH_CACHE=str(cache), PYTHONPATH=str(REPO / "src"))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    assert len({o for o, _ in outs}) == 1 and outs[0][0].split()[1] == "True"
    assert not list((cache / "ontology").glob("*.tmp"))
    _forget()
    onto = load_ontology()
    assert onto._graph is None  # read from the cache
    assert compiled_ontology(onto, compile_on_miss=False) is not None


def test_analyze_with_an_unwritable_cache_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from threatgraph.cli import main

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("THREATGRAPH_CACHE", str(blocker / "cache"))
    assert main(["analyze", str(REPO / "data/examples/rag-assistant.ttl"), "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"] and not closure_mod._COMPILED  # reasonable ran; nothing compiled or cached
