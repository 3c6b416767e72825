"""The fast closure (compiled ontology + one pass over the model) gives ``reasonable``'s answer.

Both answers are compared as store terms minus what the model and ontology assert: that is what the
engine and validation load (``"x"`` and ``"x"^^xsd:string``, which ``reasonable`` returns for plain
literals, are the same literal there).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
import rdflib
from rdflib.namespace import OWL, RDF, RDFS

from threatgraph.analysis.closure import (
    Triple,
    closure,
    closure_path,
    fast_path_applies,
    fast_path_unavailable,
    reasonable_closure,
)
from threatgraph.analysis.model import load_model_files, parse_model_text
from threatgraph.analysis.ontology import load_ontology
from threatgraph.convert import to_ox

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "data" / "examples").rglob("*.ttl"))
FIXTURES = sorted((REPO / "tests" / "rules" / "fixtures").glob("*/*.ttl")) + sorted(
    (REPO / "tests" / "shapes" / "fixtures").glob("*/*.ttl")
)
sys.path.insert(0, str(REPO / "bench"))
from generate import generate_model  # noqa: E402

TG = "https://w3id.org/threatgraph/ontology#"
PREFIXES = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://example.org/test#> .
"""


def _store_terms(triples: Iterable[Triple]) -> set[tuple[object, object, object]]:
    return {(to_ox(s), to_ox(p), to_ox(o)) for s, p, o in triples}


def _check(model: rdflib.Graph, *, fast: bool) -> None:
    """Both paths give the same new triples; ``fast``: which path :func:`closure` takes."""
    onto = load_ontology().graph
    got, took_fast = closure_path(onto, model)
    assert took_fast is fast
    assert fast_path_applies(onto, model) is fast
    asserted = _store_terms(model) | _store_terms(onto)
    want = _store_terms(reasonable_closure(onto, model)) - asserted
    have = _store_terms(got) - asserted
    assert have == want, f"only reasonable: {sorted(want - have)[:5]}; only fast: {sorted(have - want)[:5]}"
    assert len(got) == len(set(got)), "the fast path returned a triple twice"


def _model(body: str) -> rdflib.Graph:
    return parse_model_text(PREFIXES + body, "inline.ttl")


def test_ontology_compiles() -> None:
    assert fast_path_unavailable(load_ontology().graph) == ""


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO / "data" / "examples")) for p in EXAMPLES])
def test_examples(path: Path) -> None:
    _check(load_model_files([path]).graph, fast=True)


@pytest.mark.parametrize("path", FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in FIXTURES])
def test_fixtures(path: Path) -> None:
    model = load_model_files([path]).graph
    onto = load_ontology().graph
    _check(model, fast=fast_path_applies(onto, model))


def test_most_fixtures_take_the_fast_path() -> None:
    onto = load_ontology().graph
    fast = [fast_path_applies(onto, load_model_files([p]).graph) for p in FIXTURES]
    assert sum(fast) >= len(fast) - 5


@pytest.mark.parametrize(("n", "seed"), [(100, 0), (100, 1), (100, 7), (1000, 0), (1000, 3)])
def test_generated(n: int, seed: int) -> None:
    _check(parse_model_text(generate_model(n, seed=seed), "generated.ttl"), fast=True)


def test_hasvalue_intersection_union() -> None:
    """cls-hv1/2, cls-int1/2, cls-uni and equivalent classes, on one small model."""
    _check(
        _model(
            """
ex:logs a tg:DataStore ; tg:holdsLogs true .
ex:logs2 a tg:LogStore .
ex:pii a tg:DataAsset ; tg:classification tg:Personal .
ex:sc a tg:SpecialCategoryDataAsset .
ex:sc2 tg:classification tg:SpecialCategoryPersonal .
ex:flow a tg:DataFlow ; tg:source ex:p ; tg:target ex:logs ; tg:carries ex:pii .
ex:p a tg:Process ; rdfs:label "p"@en , "p2"^^xsd:string .
ex:m a tgml:FineTunedModel , owl:NamedIndividual , owl:Thing ; tgml:trainedOn ex:ds .
_:b a tg:DataStore ; tg:holdsLogs true .
"""
        ),
        fast=True,
    )


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("subClassOf", "ex:A rdfs:subClassOf tg:Process . ex:x a ex:A ."),
        ("class declaration", "ex:A a owl:Class . ex:x a ex:A ."),
        ("domain", "ex:p rdfs:domain tg:Process . ex:x ex:p ex:y ."),
        ("sameAs", "ex:x a tg:Process ; owl:sameAs ex:y . ex:y a tg:DataStore ."),
        ("functional, two values", "ex:f a tg:DataFlow ; tg:source ex:a , ex:b ; tg:target ex:c ."),
        ("disjoint classes", "ex:x a tg:Process , tg:DataStore ."),
        ("hasValue literal spelt otherwise", 'ex:s a tg:DataStore ; tg:holdsLogs "true" .'),
        ("transitive property", "ex:p a owl:TransitiveProperty . ex:a ex:p ex:b . ex:b ex:p ex:c ."),
        ("list", "ex:x a tg:Process ; ex:steps ( ex:a ex:b ) . ex:l rdf:first ex:a ."),
    ],
)
def test_fallback(name: str, body: str) -> None:
    if "rdf:" in body:
        body = "@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .\n" + body
    _check(_model(body), fast=False)


def test_fallback_keeps_reasonable_answer() -> None:
    """A model with schema gets what ``reasonable`` entails from it (here: the new superclass)."""
    model = _model("ex:A rdfs:subClassOf tg:Process . ex:x a ex:A .")
    got = closure(load_ontology().graph, model)
    x, process = rdflib.URIRef("http://example.org/test#x"), rdflib.URIRef(f"{TG}Process")
    assert (x, RDF.type, process) in got


def test_unsupported_ontology_construct_disables_fast_path() -> None:
    onto = rdflib.Graph()
    for t in load_ontology().graph:
        onto.add(t)
    prop = rdflib.URIRef("https://w3id.org/threatgraph/ontology#partOf")
    onto.add((prop, RDF.type, OWL.TransitiveProperty))
    assert "TransitiveProperty" in fast_path_unavailable(onto)
    model = load_model_files([EXAMPLES[0]]).graph
    assert not fast_path_applies(onto, model)
    got, fast = closure_path(onto, model)
    assert not fast
    assert _store_terms(got) == _store_terms(reasonable_closure(onto, model))


def _random_model(seed: int) -> rdflib.Graph:
    """Random facts over the ontology's classes, properties and individuals (and a few fresh nodes)."""
    rnd = random.Random(seed)
    onto = load_ontology().graph
    classes = sorted(c for c in onto.subjects(RDF.type, OWL.Class) if isinstance(c, rdflib.URIRef))
    props = sorted(
        p
        for kind in (OWL.ObjectProperty, OWL.DatatypeProperty)
        for p in onto.subjects(RDF.type, kind)
        if isinstance(p, rdflib.URIRef) and (p, RDF.type, OWL.FunctionalProperty) not in onto
    )
    values = sorted({v for v in onto.objects(None, OWL.hasValue)}, key=str)
    named = sorted(s for s in onto.subjects(RDF.type, OWL.NamedIndividual) if isinstance(s, rdflib.URIRef))
    nodes: list[rdflib.term.Node] = [rdflib.URIRef(f"http://example.org/test#n{i}") for i in range(80)]
    nodes.append(rdflib.BNode("fresh"))
    objects = [*nodes, *named, *values, rdflib.Literal("text"), rdflib.Literal(3), rdflib.Literal(False)]
    g = rdflib.Graph()
    for _ in range(100):
        s = rnd.choice(nodes)
        if rnd.random() < 0.2:
            g.add((s, RDF.type, rnd.choice(classes)))
        else:
            g.add((s, rnd.choice(props), rnd.choice(objects)))
    g.add((nodes[0], RDFS.label, rdflib.Literal("n0", datatype=rdflib.URIRef("http://www.w3.org/2001/XMLSchema#string"))))
    return g


def test_random_models() -> None:
    """Random models: same answer on either path, and the fast path is taken for some of them."""
    onto = load_ontology().graph
    fast = 0
    for seed in range(40):
        model = _random_model(seed)
        took = fast_path_applies(onto, model)
        _check(model, fast=took)
        fast += took
    assert fast >= 5


def test_functional_value_in_ontology_and_model() -> None:
    """A second value of a functional property, the first stated by the ontology: reasonable's path."""
    onto = rdflib.Graph()
    for t in load_ontology().graph:
        onto.add(t)
    x = rdflib.URIRef(f"{TG}Internal")
    onto.add((x, rdflib.URIRef(f"{TG}source"), rdflib.URIRef("http://example.org/test#a")))
    assert fast_path_unavailable(onto) == ""
    model = _model("tg:Internal tg:source ex:b .")
    assert not fast_path_applies(onto, model)
    assert fast_path_applies(onto, _model("tg:Internal tg:source ex:a ."))
