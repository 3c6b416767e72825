"""Every shipped SHACL shape has a conforming and a non-conforming fixture, discovered from
``tests/shapes/fixtures/<shape local name>/{conforming,nonconforming}.ttl``.

Non-conforming: the shape reports a result (on ``ex:focus``, unless the fixture says ``any-focus``) with
the shape's declared severity and a message. Conforming: the shape reports nothing at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib
from rdflib.namespace import RDF, SH

from threatgraph.analysis.shacl import sh
from threatgraph.analysis.validation import SHAPES_NS, load_shapes, validate_models

FIXTURES = Path(__file__).parent / "shapes" / "fixtures"
FOCUS = "http://example.org/test#focus"


@pytest.fixture(scope="module")
def shapes() -> rdflib.Graph:
    return load_shapes()


def shipped_shapes() -> list[str]:
    g = load_shapes()
    names = {
        str(s)[len(SHAPES_NS) :]
        for s in g.subjects(RDF.type, SH.NodeShape)
        if isinstance(s, rdflib.URIRef) and str(s).startswith(SHAPES_NS)
    }
    return sorted(names)


def _results(path: Path, shape: str) -> list[tuple[str, str, list[str]]]:
    report = validate_models([path])
    assert report.shapes is not None
    node = SHAPES_NS + shape
    out = []
    for r in report.results:
        parents = report.shapes.subjects(sh("property"), r.shape)
        if r.shape.value == node or (parents and parents[0].value == node):
            out.append((r.focus.value, r.severity.value, [m.value for m in r.messages]))
    return out


def test_every_shape_has_fixtures() -> None:
    missing = [n for n in shipped_shapes() if not (FIXTURES / n / "conforming.ttl").is_file() or not (FIXTURES / n / "nonconforming.ttl").is_file()]
    assert missing == [], f"shapes without fixtures: {missing}"
    assert len(shipped_shapes()) >= 25


@pytest.mark.parametrize("shape", shipped_shapes())
def test_nonconforming(shapes: rdflib.Graph, shape: str) -> None:
    path = FIXTURES / shape / "nonconforming.ttl"
    got = _results(path, shape)
    assert got, f"{shape} reports nothing on {path}"
    declared = {str(o) for o in shapes.objects(rdflib.URIRef(SHAPES_NS + shape), SH.severity)}
    declared |= {
        str(o)
        for ps in shapes.objects(rdflib.URIRef(SHAPES_NS + shape), SH.property)
        for o in shapes.objects(ps, SH.severity)
    }
    for _focus, severity, messages in got:
        assert severity in declared
        assert messages and all(len(m) > 40 for m in messages)
    if "any-focus" not in path.read_text(encoding="utf-8"):
        assert FOCUS in {g[0] for g in got}


@pytest.mark.parametrize("shape", shipped_shapes())
def test_conforming(shapes: rdflib.Graph, shape: str) -> None:
    assert _results(FIXTURES / shape / "conforming.ttl", shape) == []
