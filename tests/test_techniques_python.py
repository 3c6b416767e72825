"""The Python steps of the technique stage write exactly the quads of their SPARQL updates (issue 14, speed).

``run_stage`` runs 07-reduction-facts, 10-techniques, 15-reduced-by and 51-coverage in Python on the embedded
store (threatgraph.analysis.stage_python) and every step of ``queries/derive-findings`` as SPARQL with
``python=False``. Each model is analysed both ways and the whole finding graph (and the knowledge view the
stage reads) compared quad for quad: the three examples and a generated 1 k-element model, with the pinned
knowledge releases and without any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyoxigraph import BlankNode, Literal, NamedNode, Quad

from threatgraph.analysis import techniques
from threatgraph.analysis.pipeline import analyze
from threatgraph.analysis.stage_python import PythonStage
from threatgraph.errors import StoreError
from threatgraph.store.base import Store
from threatgraph.terms import TG, graph_iri

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "data" / "examples"
F = graph_iri("findings")
V = graph_iri("view")
EXAMPLES = ("rag-assistant", "tabular-platform", "health-risk")


@pytest.fixture(scope="module")
def generated(generated_model: Callable[[int, int], Path]) -> Path:
    return generated_model(1000, 42)


def graph_lines(store: Store, graph: str) -> Counter[str]:
    """The quads of ``graph`` as N-Quads lines (blank nodes as ``_:``), counted."""
    return Counter(" ".join("_:" if isinstance(t, BlankNode) else str(t) for t in (q.subject, q.predicate, q.object))
                   for q in store.quads(graph))


def difference(a: Counter[str], b: Counter[str]) -> tuple[list[str], list[str]]:
    """Lines of ``a`` missing from ``b`` and lines of ``b`` not in ``a`` (a few of each, sorted)."""
    return sorted((a - b).elements())[:5], sorted((b - a).elements())[:5]


class Spy:
    """Wraps ``run_stage`` with a fixed ``python`` argument."""

    def __init__(self, python: bool) -> None:
        self.python = python
        self.real = techniques.run_stage

    def __call__(self, *args: Any, **kw: Any) -> techniques.StageResult:
        kw["python"] = self.python
        return self.real(*args, **kw)


@pytest.fixture
def run_both(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def run(model: Path, knowledge: list[str] | None) -> tuple[Store, Store]:
        stores = []
        for python in (False, True):
            monkeypatch.setattr(techniques, "run_stage", Spy(python))
            stores.append(analyze([str(model)], knowledge=knowledge).store)
        return stores[0], stores[1]

    yield run


def assert_same(sparql: Store, python: Store) -> Counter[str]:
    for graph in (F, V):
        a, b = graph_lines(sparql, graph), graph_lines(python, graph)
        assert a == b, (graph, difference(a, b))
    return graph_lines(python, F)


def check(run_both: Any, model: Path, knowledge: list[str] | None) -> Counter[str]:
    sparql, python = run_both(model, knowledge)
    lines = assert_same(sparql, python)
    text = "\n".join(lines)
    # the four steps wrote something: applications (10), exposure facts, findings with techniques
    assert f"<{TG.TechniqueApplication}>" in text and f"<{TG.ofFinding}>" in text
    assert f"<{TG.exposure}>" in text
    return lines


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_without_knowledge(run_both: Any, name: str) -> None:
    lines = check(run_both, EX / f"{name}.ttl", None)
    assert f"<{TG.NoReleaseLoaded}>" in "\n".join(lines)


@pytest.mark.shared
@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_with_knowledge(run_both: Any, name: str) -> None:
    lines = check(run_both, EX / f"{name}.ttl", ["shared"])
    text = "\n".join(lines)
    assert f"<{TG.NoReleaseLoaded}>" not in text
    assert f"<{TG.reducedByFact}>" in text  # 07 and 15 found reducing facts on every example
    if name == "rag-assistant":
        assert f"<{TG.coveredBy}>" in text  # 51: a guardrail control covers categories there


def test_generated_1k_without_knowledge(run_both: Any, generated: Path) -> None:
    lines = check(run_both, generated, None)
    assert sum(n for line, n in lines.items() if line.endswith(f"<{TG.TechniqueApplication}>")) > 5000


@pytest.mark.shared
def test_generated_1k_with_knowledge(run_both: Any, generated: Path) -> None:
    lines = check(run_both, generated, ["shared"])
    assert sum(n for line, n in lines.items() if f"<{TG.reducedByFact}>" in line) > 1000


def test_comparison_sees_a_removed_quad(run_both: Any) -> None:
    """Negative case: one quad of the Python run's finding graph removed, the comparison fails and names it."""
    sparql, python = run_both(EX / "rag-assistant.ttl", None)
    assert_same(sparql, python)
    q = next(q for q in python.quads(F) if q.predicate == NamedNode(TG.exposure))
    python.update(f"DELETE DATA {{ GRAPH <{F}> {{ {q.subject} {q.predicate} {q.object} }} }}")
    with pytest.raises(AssertionError) as err:
        assert_same(sparql, python)
    assert str(q.object) in str(err.value)
    missing, extra = difference(graph_lines(sparql, F), graph_lines(python, F))
    assert missing == [f"{q.subject} {q.predicate} {q.object}"] and extra == []


def test_steps_run_where_asked(tmp_path: Path) -> None:
    """The registry names the four steps; a copy of a step elsewhere runs as SPARQL; ``python=True`` on a
    store that is not embedded is refused."""
    shipped = {p.name: p for p in techniques.stage_files()}
    assert set(PythonStage.STEPS) <= set(shipped)
    assert all(PythonStage.handles(shipped[name]) for name in PythonStage.STEPS)
    copy = tmp_path / "10-techniques.rq"
    copy.write_text(shipped["10-techniques.rq"].read_text(encoding="utf-8"), encoding="utf-8")
    assert not PythonStage.handles(copy) and not PythonStage.handles(shipped["50-controls.rq"])

    class NotEmbedded:  # no pyoxigraph store behind it (a remote store); refused before anything is read
        pass

    with pytest.raises(StoreError, match="embedded"):
        techniques.run_stage(NotEmbedded(), {}, files=[], python=True)  # type: ignore[arg-type]


def test_reduction_facts_kept_for_a_sparql_reader() -> None:
    """07 run in Python keeps its facts in memory; a step run as SPARQL that reads them finds them in
    graph/stage (the shape of 07-reduction-facts.rq)."""
    from threatgraph.store import open_store

    store = open_store()
    g = graph_iri
    store.add_quads([
        Quad(NamedNode("urn:m"), NamedNode(TG.reducedBy), NamedNode(TG.authenticated), NamedNode(g("bridge"))),
        Quad(NamedNode("urn:flow"), NamedNode(TG.authenticated), Literal(True), NamedNode(g("model"))),
        Quad(NamedNode("urn:flow"), NamedNode(TG.target), NamedNode("urn:e"), NamedNode(g("model"))),
    ])
    stage = PythonStage.of(store)
    assert stage is not None
    stage.reduction_facts()
    assert stage.reduction == {
        (NamedNode("urn:flow"), NamedNode(TG.authenticated), NamedNode("urn:flow")),
        (NamedNode("urn:e"), NamedNode(TG.authenticated), NamedNode("urn:flow")),
    }
    assert not list(store.quads(g("stage")))
    stage.before_sparql("SELECT * { ?x tg:stageReductionOf ?e }")
    rows = store.select(f"""SELECT ?e ?s WHERE {{ GRAPH <{g("stage")}> {{ ?x tg:stageReductionOf ?e ;
        tg:factAttribute tg:authenticated ; tg:factSubject ?s }} }}""")
    assert sorted((r["e"].value, r["s"].value) for r in rows) == [("urn:e", "urn:flow"), ("urn:flow", "urn:flow")]
    assert stage.reduction is None


@pytest.mark.parametrize("sparql_step", ["07-reduction-facts.rq", "10-techniques.rq", "15-reduced-by.rq"])
def test_mixed_steps_give_the_same_graph(run_both: Any, monkeypatch: pytest.MonkeyPatch, sparql_step: str) -> None:
    """One of the steps as SPARQL and the others in Python (what each Python step hands the next one, in
    memory, is then read from or written to the store): the same finding graph as all SPARQL."""
    sparql, _ = run_both(EX / "rag-assistant.ttl", None)
    monkeypatch.setattr(PythonStage, "STEPS", {k: v for k, v in PythonStage.STEPS.items() if k != sparql_step})
    monkeypatch.setattr(techniques, "run_stage", Spy(True))
    mixed = analyze([str(EX / "rag-assistant.ttl")]).store
    lines = assert_same(sparql, mixed)
    assert any(f"<{TG.reducedByFact}>" in line for line in lines)
