"""``findings_of`` (the engine's per-finding cores + the second stage read by predicate) gives exactly the
findings ``read_findings`` reads from the whole finding graph: every field of every finding, its techniques
and risk factors, in the same order; on the three examples and a generated 1 k model, with the knowledge of
the pinned reference data (ATT&CK 18.1, ATLAS, D3FEND) and without it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from pyoxigraph import NamedNode, Quad

import threatgraph.analysis.findings as findings_module
from threatgraph.analysis.engine import Analysis, labels_of
from threatgraph.analysis.findings import _IN_MEMORY, Finding, findings_of, read_findings
from threatgraph.analysis.pipeline import analyze
from threatgraph.analysis.stage_python import StageMemory
from threatgraph.terms import TG, graph_iri

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "data" / "examples"
EXAMPLES = ["rag-assistant", "tabular-platform", "health-risk"]


def _fast(analysis: Analysis, monkeypatch: pytest.MonkeyPatch) -> list[Finding]:
    """findings_of on its fast path: reading the whole graph instead fails the test."""

    def refused(*_args: object, **_kwargs: object) -> list[Finding]:
        raise AssertionError("findings_of fell back to read_findings")

    labels = labels_of(analysis.store)
    with monkeypatch.context() as m:
        m.setattr(findings_module, "read_findings", refused)
        return findings_of(analysis, labels)


def _assert_same(fast: list[Finding], slow: list[Finding]) -> None:
    assert len(fast) == len(slow) > 0
    for a, b in zip(fast, slow, strict=True):
        assert dataclasses.asdict(a) == dataclasses.asdict(b), a.iri  # every field, nested views included
    assert fast == slow
    # the comparison has something to compare: techniques, risk factors and evidence are filled in
    assert any(f.techniques for f in slow) and any(f.risk_factors for f in slow) and any(f.evidence for f in slow)


@pytest.mark.shared
@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_with_knowledge(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a = analyze([str(EX / f"{name}.ttl")], knowledge=["shared"])
    slow = read_findings(a.store, labels_of(a.store))
    _assert_same(_fast(a, monkeypatch), slow)
    assert any(t.mitigations for f in slow for t in f.techniques)  # knowledge joined


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_without_knowledge(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a = analyze([str(EX / f"{name}.ttl")])
    slow = read_findings(a.store, labels_of(a.store))
    _assert_same(_fast(a, monkeypatch), slow)
    assert all(t.unresolved for f in slow for t in f.techniques)


@pytest.mark.slow
@pytest.mark.shared
def test_generated_1k_with_knowledge(generated_model: Callable[[int, int], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    a = analyze([str(generated_model(1000, 0))], knowledge=["shared"], force=True)
    _assert_same(_fast(a, monkeypatch), read_findings(a.store, labels_of(a.store)))


@pytest.mark.slow
def test_generated_1k_without_knowledge(generated_model: Callable[[int, int], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    a = analyze([str(generated_model(1000, 0))], force=True)
    _assert_same(_fast(a, monkeypatch), read_findings(a.store, labels_of(a.store)))


def test_comparison_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison sees a difference in a finding's core and in its second stage."""
    a = analyze([str(EX / "health-risk.ttl")])
    labels = labels_of(a.store)
    _assert_same(_fast(a, monkeypatch), read_findings(a.store, labels))
    # the graph loses the explanations the cores still have: read_findings differs, findings_of does not
    a.store.update("DELETE WHERE { GRAPH <https://w3id.org/threatgraph/graph/findings> { ?f tg:explanation ?e } }")
    slow = read_findings(a.store, labels)
    with pytest.raises(AssertionError):
        _assert_same(_fast(a, monkeypatch), slow)
    # a core with another evidence value: the findings differ in that field only
    assert a.cores is not None
    fast = _fast(a, monkeypatch)
    for f in slow:
        f.explanation = next(c.explanation for c in a.cores if c.iri == f.iri)
    _assert_same(fast, slow)
    core = next(c for c in a.cores if any(k != "focus" for k in c.bindings))
    role = next(k for k in core.bindings if k != "focus")
    core.bindings = {**core.bindings, role: [*core.bindings[role], core.focus]}
    with pytest.raises(AssertionError, match=core.iri):
        _assert_same(_fast(a, monkeypatch), slow)


def test_without_cores_reads_the_graph() -> None:
    """An analysis without cores (not run by the engine here) is read from its finding graph."""
    a = analyze([str(EX / "health-risk.ttl")])
    labels = labels_of(a.store)
    kept = findings_of(a, labels)
    a.cores = None
    assert findings_of(a, labels) == kept == read_findings(a.store, labels)


def _memory_pairs(memory: StageMemory) -> dict[str, set[tuple[str, str]]]:
    """(subject, object) IRIs per predicate of what the stage kept in memory."""
    out: dict[str, set[tuple[str, str]]] = {p: set() for p in _IN_MEMORY}
    for app, rec in memory.apps.items():
        for p, values in ((TG.appliedTechnique, rec.technique), (TG.viaMapping, rec.mapping),
                          (TG.inRelease, rec.release), (TG.replacesTechnique, rec.replaces),
                          (TG.viaAssetType, rec.asset_types), (TG.exposure, rec.exposures),
                          (TG.reducedByFact, rec.reduced)):
            out[p].update((app, v) for v in values)
    for f, apps in memory.of_finding.items():
        out[TG.ofFinding].update((app, f) for app in apps)
    out[TG.controlStatus].update(memory.control.items())
    for x, (s, attr) in memory.facts.items():
        out[TG.factSubject].add((x, s))
        out[TG.factAttribute].add((x, attr))
    return out


def _assert_memory_is_graph(a: Analysis) -> None:
    """What the stage kept in memory is exactly what the finding graph holds of those predicates."""
    memory = a.stage_memory
    assert memory is not None and memory.apps
    kept = _memory_pairs(memory)
    for p in _IN_MEMORY:
        stored = {(q.subject.value, q.object.value) for q in a.store.quads_matching(p, graph_iri("findings"))}
        assert kept[p] == stored, p


@pytest.mark.shared
@pytest.mark.parametrize("knowledge", [None, ["shared"]])
@pytest.mark.parametrize("name", EXAMPLES)
def test_stage_memory_is_the_graph(name: str, knowledge: list[str] | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The applications the Python steps kept (issue 14) are those they wrote; findings_of built from them equals
    findings_of reading them back from the store."""
    a = analyze([str(EX / f"{name}.ttl")], knowledge=knowledge)
    _assert_memory_is_graph(a)
    kept = _fast(a, monkeypatch)
    a.stage_memory = None
    _assert_same(kept, _fast(a, monkeypatch))


def test_stage_memory_first_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """An application with several mappings: the view names the mapping the finding graph lists first (asked of
    the store), as when read back."""
    a = analyze([str(EX / "health-risk.ttl")])
    memory = a.stage_memory
    assert memory is not None
    kept = _fast(a, monkeypatch)
    app, rec = next((app, rec) for app, rec in memory.apps.items() if any(app in v for v in memory.of_finding.values()))
    other = next(m for r in memory.apps.values() for m in r.mapping if m not in rec.mapping)
    a.store.add_quads([Quad(NamedNode(app), NamedNode(TG.viaMapping), NamedNode(other), NamedNode(graph_iri("findings")))])
    rec.mapping.append(other)
    assert not rec.single
    changed = _fast(a, monkeypatch)
    a.stage_memory = None
    _assert_same(changed, _fast(a, monkeypatch))
    g = NamedNode(graph_iri("findings"))
    listed = [q.object.value for q in a.store.oxigraph.quads_for_pattern(NamedNode(app), NamedNode(TG.viaMapping), None, g)]
    assert sorted(listed) == sorted(rec.mapping)
    views = [t for f in changed for t in f.techniques if f.iri in {f for f, apps in memory.of_finding.items() if app in apps}
             and t.iri == rec.technique[0]]
    assert views and {t.mapping for t in views} == {listed[0]}
    if listed[0] == other:
        assert changed != kept
