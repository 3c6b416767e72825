"""The compiled evaluator gives exactly the results of plain pyshacl (same shapes, same data): every
shape fixture, the example models (with the organisation shapes), a generated model, and user shapes
using the other core constraints the compiler translates or leaves to pyshacl. Plain pyshacl runs
each SPARQL query per focus node, hence ``slow``.

The fast path itself imports neither pyshacl nor rdflib (checked in a fresh process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from threatgraph.analysis.model import load_model_files, parse_model_text
from threatgraph.analysis.validation import build_store, compiled_shapes, result_keys, validate_store
from threatgraph.store import Store

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "data" / "examples").glob("*.ttl"))
ORG = REPO / "data" / "shapes" / "org-strict-example.ttl"
FIXTURES = sorted((Path(__file__).parent / "shapes" / "fixtures").glob("*/*.ttl"))

# User shapes: compiled core constraints (sh:in, sh:hasValue, sh:nodeKind, sh:minCount 2, sh:datatype
# xsd:string / xsd:integer, sh:in over plain strings, node-level sh:class, targetNode / targetSubjectsOf) and shapes the
# compiler leaves to pyshacl (sh:pattern, sh:node, an inverse path).
USER_SHAPES = """@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix ex: <http://example.org/u#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
ex:InShape a sh:NodeShape ; sh:targetClass tg:DataAsset ;
    sh:property [ sh:path tg:classification ; sh:in ( tg:Public tg:Internal ) ; sh:message "in"@en ] .
ex:HasValueShape a sh:NodeShape ; sh:targetClass tg:DataFlow ;
    sh:property [ sh:path tg:encryptedInTransit ; sh:hasValue true ; sh:severity sh:Warning ; sh:message "hv" ] .
ex:KindShape a sh:NodeShape ; sh:targetSubjectsOf tg:source ;
    sh:property [ sh:path tg:source ; sh:nodeKind sh:Literal ; sh:severity sh:Info ; sh:message "kind" ] .
ex:TwoLabelsShape a sh:NodeShape ; sh:targetClass tg:TrustZone ;
    sh:property [ sh:path <http://www.w3.org/2000/01/rdf-schema#label> ; sh:minCount 2 ; sh:datatype xsd:string ; sh:message "two" ] .
ex:IntShape a sh:NodeShape ; sh:targetSubjectsOf tg:retries ;
    sh:property [ sh:path tg:retries ; sh:datatype xsd:integer ; sh:maxCount 1 ; sh:message "int" ] .
ex:NodeClassShape a sh:NodeShape ; sh:targetNode ex:nothing , <https://example.org/rag-assistant#customer> ;
    sh:class tg:Process ; sh:message "node class" .
ex:PatternShape a sh:NodeShape ; sh:targetClass tg:Element ;
    sh:property [ sh:path <http://www.w3.org/2000/01/rdf-schema#label> ; sh:pattern "^[A-Z]" ; sh:message "pattern" ] .
ex:NamedShape a sh:NodeShape ; sh:property [ sh:path <http://www.w3.org/2000/01/rdf-schema#label> ; sh:minCount 1 ] .
ex:NodeRefShape a sh:NodeShape ; sh:targetClass tg:Control ; sh:node ex:NamedShape .
ex:InStringShape a sh:NodeShape ; sh:targetSubjectsOf tg:dataSubject ;
    sh:property [ sh:path tg:dataSubject ; sh:in ( "customers" "staff" ) ; sh:message "in string" ] .
ex:InverseShape a sh:NodeShape ; sh:targetClass tg:DataStore ;
    sh:property [ sh:path [ sh:inversePath tg:target ] ; sh:minCount 1 ; sh:message "inverse" ] .
"""


def _same(store: Store, extra: list[Path] | tuple[()] = ()) -> set[tuple[str, ...]]:
    fast = validate_store(store, extra_shapes=extra, check_terms=False)
    naive = validate_store(store, extra_shapes=extra, method="pyshacl", check_terms=False)
    keys = result_keys(fast.shacl_graph())
    assert keys == result_keys(naive.graph)
    assert len(fast.results) == len(naive.results)  # no duplicate results either side
    return keys


@pytest.mark.slow
@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.name)
def test_fast_equals_pyshacl_on_examples(model: Path) -> None:
    assert len(_same(build_store(load_model_files([model]).graph), [ORG])) > 0


@pytest.mark.slow
def test_fast_equals_pyshacl_on_every_fixture() -> None:
    assert len(FIXTURES) >= 60
    reported = 0
    for path in FIXTURES:
        reported += bool(_same(build_store(load_model_files([path]).graph)))
    assert reported >= 30  # every non-conforming fixture reports something


@pytest.mark.slow
def test_fast_equals_pyshacl_on_generated_model() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from bench_validate import with_gaps
    from generate import generate_model

    # the generator writes complete models: remove ~10 % of the declarations so shapes report
    store = build_store(parse_model_text(with_gaps(generate_model(100, 3), 5), "generated.ttl"))
    assert len(_same(store)) > 10


@pytest.mark.slow
def test_user_shapes_compiled_and_fallback(tmp_path: Path) -> None:
    shapes = tmp_path / "user.ttl"
    shapes.write_text(USER_SHAPES, encoding="utf-8")
    compiled = compiled_shapes([shapes])
    left = {s.value.rsplit("#", 1)[-1] for s, _why in compiled.fallback}
    assert left == {"PatternShape", "NodeRefShape", "InverseShape"}
    model = (REPO / "data" / "examples" / "rag-assistant.ttl").read_text(encoding="utf-8")
    # a plain string literal equals xsd:string (RDF 1.1): "customers" is in the list, "patients" is not
    model += '\n<https://example.org/rag-assistant#answer> <https://w3id.org/threatgraph/ontology#dataSubject> "patients" .\n'
    model += '\n<https://example.org/rag-assistant#agent> <https://w3id.org/threatgraph/ontology#retries> "3"^^<http://www.w3.org/2001/XMLSchema#integer> , "x"^^<http://www.w3.org/2001/XMLSchema#integer> .\n'
    keys = _same(build_store(parse_model_text(model, "rag.ttl")), [shapes])
    messages = {k[-1] for k in keys}
    # each user shape reports something on this model (so the comparison covers it)
    assert {"in", "hv", "kind", "two", "int", "node class", "pattern", "inverse", "in string"} <= messages
    assert sum(1 for k in keys if k[-1] == "in string") == 1  # only "patients", on the answer


def test_fast_path_imports_neither_pyshacl_nor_rdflib(tmp_path: Path) -> None:
    store = build_store(load_model_files([REPO / "data" / "examples" / "rag-assistant.ttl"]).graph)
    dump = tmp_path / "data.nq"
    dump.write_bytes(store.dump(None, "application/n-quads"))
    expected = validate_store(store)
    code = (
        "import sys\n"
        "from threatgraph.store import open_store\n"
        "from threatgraph.analysis.validation import validate_store\n"
        "s = open_store()\n"
        f"s._store.load(path={str(dump)!r}, format=__import__('pyoxigraph').RdfFormat.N_QUADS)\n"
        "r = validate_store(s)\n"
        "print(len(r.issues), 'pyshacl' in sys.modules, 'rdflib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(len(expected.issues)), "False", "False"]
