"""docs/vocabulary.md: generated from the ontology, complete, current, and its examples and label claims true.

The oracle for completeness is rdflib reading ``ontology/*.ttl`` directly; the label-property claims
are checked on the real releases (ATT&CK 18.1, ATLAS 5.6.0, CAPEC 3.9, D3FEND 1.2.0).
"""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import rdflib
from rdflib.namespace import RDF, RDFS, SKOS

from threatgraph.analysis.engine import Engine
from threatgraph.cli import main
from threatgraph.sparql import syntax_error
from threatgraph.store import Store, open_store
from threatgraph.terms import PREFIXES
from threatgraph.vocabulary import (
    EXAMPLES,
    LABEL_SOURCES,
    OURS,
    build_vocabulary,
    curie,
    vocabulary_html,
    vocabulary_markdown,
)

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "vocabulary.md"
ONTO = REPO / "ontology"
RAG = REPO / "data" / "examples" / "rag-assistant.ttl"


def ontology_graph() -> rdflib.Graph:
    g = rdflib.Graph()
    for f in sorted(ONTO.glob("*.ttl")):
        g.parse(f, format="turtle")
    return g


def declared_terms(g: rdflib.Graph) -> set[str]:
    return {str(s) for s in g.subjects(RDF.type, None) if isinstance(s, rdflib.URIRef) and str(s).startswith(OURS)}


def test_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == vocabulary_markdown(), (
        "docs/vocabulary.md is stale: run `threatgraph vocabulary --format markdown > docs/vocabulary.md`"
    )


def test_every_declared_term_has_a_row() -> None:
    g = ontology_graph()
    terms = declared_terms(g)
    assert len(terms) > 300
    md = vocabulary_markdown()
    missing = [t for t in terms if f"| `{curie(t)}` |" not in md]
    assert missing == []
    assert {t.iri for t in build_vocabulary().terms} == terms


def named(g: rdflib.Graph, s: rdflib.URIRef, p: rdflib.URIRef) -> list[str]:
    return sorted(curie(str(o)) for o in g.objects(s, p) if isinstance(o, rdflib.URIRef))


def test_labels_definitions_domains_ranges_and_superclasses_match_the_files() -> None:
    g = ontology_graph()
    v = build_vocabulary()
    checked = 0
    for t in v.terms:
        s = rdflib.URIRef(t.iri)
        label = g.value(s, RDFS.label) or g.value(s, SKOS.prefLabel)
        assert t.label == (" ".join(str(label).split()) if label is not None else ""), t.curie
        definition = g.value(s, SKOS.definition)
        if definition is not None:
            assert t.definition == " ".join(str(definition).split()), t.curie
        assert [d for d in t.domain if not d.startswith("(")] == named(g, s, RDFS.domain), t.curie
        assert [r for r in t.range if not r.startswith("(")] == named(g, s, RDFS.range), t.curie
        assert list(t.superclasses) == named(g, s, RDFS.subClassOf), t.curie
        inverse = [c.removeprefix("inverse of ") for c in t.characteristics if c.startswith("inverse of ")]
        assert inverse == named(g, s, rdflib.OWL.inverseOf), t.curie
        checked += 1
    assert checked == len(v.terms)
    focus = v.term("tg:focus")
    assert focus.domain == ("tg:Finding",) and focus.kind == "object property"
    assert v.term("tg:source").characteristics == ("functional",)
    assert v.term("tgml:VectorStore").superclasses and v.term("stride:Spoofing").notation == "S"
    assert "tg:perElementThreat value stride:Repudiation" in v.term("tg:LogStore").axioms


def test_an_extension_changes_the_reference(tmp_path: Path) -> None:
    """The generator reads the files: a new class shows up, so a hand-edited or old doc would fail."""
    for f in ONTO.glob("*.ttl"):
        shutil.copy(f, tmp_path / f.name)
    with (tmp_path / "ml.ttl").open("a", encoding="utf-8") as fh:
        fh.write('\ntgml:FeatureFlagStore a owl:Class ; rdfs:subClassOf tg:DataStore ;\n'
                 '  rdfs:label "Feature flag store"@en ; skos:definition "Holds rollout flags."@en .\n')
    md = vocabulary_markdown(build_vocabulary(directory=tmp_path))
    assert "| `tgml:FeatureFlagStore` | Feature flag store | Holds rollout flags. | `tg:DataStore` |" in md
    assert md != DOC.read_text(encoding="utf-8")
    assert "FeatureFlagStore" not in vocabulary_markdown()


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: set[str] = set()
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if (a.get("href") or "").startswith("#"):
            self.hrefs.add(str(a["href"])[1:])
        if tag not in ("meta",):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()


def test_html_has_an_anchor_per_term_and_no_dangling_link(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vocabulary", "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page == vocabulary_html()
    p = _Ids()
    p.feed(page)
    assert p.open == []
    curies = {curie(t) for t in declared_terms(ontology_graph())}
    assert curies <= p.ids
    assert p.hrefs and p.hrefs <= p.ids
    assert main(["vocabulary"]) == 0 and capsys.readouterr().out == DOC.read_text(encoding="utf-8")


def test_examples_parse_and_use_their_term() -> None:
    for ex in EXAMPLES:
        assert syntax_error(ex.query, ex.term) is None, ex.term
        assert ex.term in ex.query


@pytest.fixture(scope="module")
def knowledge(shared_data: Path) -> Store:
    from threatgraph.knowledge.releases import load_release

    store = open_store()
    for kind, rel in [
        ("attack", "attack/enterprise-attack-18.1.stix20.json"),
        ("atlas", "atlas/ATLAS.yaml"),
        ("d3fend", "d3fend/d3fend-protege-1.2.0.ttl"),
        ("capec", "capec/stix-capec-3.9.json"),
    ]:
        load_release(store, kind, str(shared_data / rel))
    Engine(store).analyze([RAG])
    return store


@pytest.mark.shared
@pytest.mark.parametrize("term", [ex.term for ex in EXAMPLES])
def test_example_answers_on_the_analysed_example(knowledge: Store, term: str) -> None:
    ex = next(e for e in EXAMPLES if e.term == term)
    rows = knowledge.select(ex.query)
    assert rows, f"the example for {term} returns nothing"


def _iri(c: str) -> str:
    prefix, _, local = c.partition(":")
    return PREFIXES[prefix] + local


SOURCE_GRAPH = {
    "ATT&CK (STIX)": "https://w3id.org/threatgraph/graph/release/attack-enterprise/",
    "ATLAS": "https://w3id.org/threatgraph/graph/release/atlas/",
    "CAPEC": "https://w3id.org/threatgraph/graph/release/capec/",
    "D3FEND": "https://w3id.org/threatgraph/graph/release/d3fend/",
    "threatgraph ontology": "https://w3id.org/threatgraph/graph/ontology",
}
LABELS = ("rdfs:label", "skos:prefLabel")


@pytest.mark.shared
@pytest.mark.parametrize("i", range(len(LABEL_SOURCES)))
def test_label_property_claims_hold(knowledge: Store, i: int) -> None:
    """Every resource of the named classes in that source carries the stated label properties, and not the other."""
    src = LABEL_SOURCES[i]
    graph = SOURCE_GRAPH[src.source]
    ours = 'FILTER(STRSTARTS(STR(?x), "https://w3id.org/threatgraph/"))' if src.source.startswith("threatgraph") else ""
    for cls in src.classes:
        for prop in LABELS:
            q = (
                f"SELECT (COUNT(DISTINCT ?x) AS ?all) (COUNT(DISTINCT ?y) AS ?with) WHERE {{ GRAPH ?g {{ ?x a <{_iri(cls)}> "
                f"OPTIONAL {{ ?x <{_iri(prop)}> ?l BIND(?x AS ?y) }} }} FILTER(STRSTARTS(STR(?g), \"{graph}\")) "
                f"FILTER(isIRI(?x)) {ours} }}"
            )
            row = knowledge.select(q)[0]
            total, with_prop = int(row["all"].value), int(row["with"].value)
            assert total > 0, (src.source, cls)
            if prop in src.properties:
                assert with_prop == total, (src.source, cls, prop, with_prop, total)
            else:
                assert with_prop == 0, (src.source, cls, prop, with_prop, total)
