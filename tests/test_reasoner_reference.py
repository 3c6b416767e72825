"""The fast OWL 2 RL reasoner (``reasonable``, Rust) agrees with the pure-Python reference (owlrl)
on what matters to threatgraph: the classes of every model individual and every per-element
threat category. owlrl is ~100-200x slower, so it is used here only, on the example models."""

from __future__ import annotations

from pathlib import Path

import owlrl
import pytest
import rdflib
from rdflib.namespace import RDF

from threatgraph.analysis.closure import closure
from threatgraph.analysis.model import load_model_files
from threatgraph.analysis.ontology import load_ontology
from threatgraph.terms import TG

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "data" / "examples").glob("*.ttl"))
PER_ELEMENT = rdflib.URIRef(TG.perElementThreat)


def _facts(g: rdflib.Graph, individuals: set[rdflib.term.Node]) -> set[tuple[rdflib.term.Node, ...]]:
    out: set[tuple[rdflib.term.Node, ...]] = set()
    for s in individuals:
        for o in g.objects(s, RDF.type):
            if isinstance(o, rdflib.URIRef) and str(o).startswith(("https://w3id.org/threatgraph/",)):
                out.add((s, RDF.type, o))
        for o in g.objects(s, PER_ELEMENT):
            out.add((s, PER_ELEMENT, o))
    return out


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_reasonable_matches_owlrl(example: Path) -> None:
    onto = load_ontology()
    model = load_model_files([example]).graph
    individuals = {s for s in model.subjects(RDF.type, None) if isinstance(s, rdflib.URIRef)}

    fast = rdflib.Graph()
    for t in model:
        fast.add(t)
    for t in closure(onto.graph, model):
        fast.add(t)

    ref = rdflib.Graph()
    for t in onto.graph:
        ref.add(t)
    for t in model:
        ref.add(t)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics).expand(ref)

    got, want = _facts(fast, individuals), _facts(ref, individuals)
    assert want, "owlrl inferred nothing: the reference run is broken"
    assert any(p == PER_ELEMENT for _, p, _ in want)
    assert got == want, f"only reasonable: {sorted(got - want)[:5]}; only owlrl: {sorted(want - got)[:5]}"
