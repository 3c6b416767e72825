"""The fast evaluator gives exactly the results of naive pyshacl (same shapes, same data), on the
example models and on a generated model (slow: naive pyshacl runs each SPARQL query per focus node)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from threatgraph.analysis.model import load_model_files, parse_model_text
from threatgraph.analysis.validation import build_data, evaluate, load_shapes, result_keys

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "data" / "examples").glob("*.ttl"))
ORG = REPO / "data" / "shapes" / "org-strict-example.ttl"


@pytest.mark.slow
@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.name)
def test_fast_equals_pyshacl_on_examples(model: Path) -> None:
    shapes = load_shapes([ORG])
    data = build_data(load_model_files([model]).graph)
    fast, naive = result_keys(evaluate(data, shapes, "fast")), result_keys(evaluate(data, shapes, "pyshacl"))
    assert fast == naive
    assert len(fast) > 0


@pytest.mark.slow
def test_fast_equals_pyshacl_on_fixture_violations() -> None:
    # several non-conforming fixtures at once (core and SPARQL constraints both report)
    fixtures = Path(__file__).parent / "shapes" / "fixtures"
    shapes = load_shapes()
    for name in ("FlowTargetShape", "BooleanAttributeShape", "ElementKindShape", "KnowledgeIdRevokedShape", "ControlKindAppliesShape"):
        data = build_data(load_model_files([fixtures / name / "nonconforming.ttl"]).graph)
        assert result_keys(evaluate(data, shapes, "fast")) == result_keys(evaluate(data, shapes, "pyshacl")), name


@pytest.mark.slow
def test_fast_equals_pyshacl_on_generated_model() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from bench_validate import with_gaps
    from generate import generate_model

    shapes = load_shapes()
    # the generator writes complete models: remove ~10 % of the declarations so shapes report
    data = build_data(parse_model_text(with_gaps(generate_model(100, 3), 5), "generated.ttl"))
    fast = result_keys(evaluate(data, shapes, "fast"))
    assert fast == result_keys(evaluate(data, shapes, "pyshacl"))
    assert len(fast) > 0
