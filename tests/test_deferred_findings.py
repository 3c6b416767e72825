"""Risk and attack paths neither read nor load the finding graph the engine defers (issue 14).

The embedded store keeps the finding graph as N-Triples text until a reader needs it
(:meth:`~threatgraph.store.embedded.EmbeddedStore.defer`, ``settled_count`` counts the loads). The risk step and
the attack path step read the model, its closure and the knowledge only (the findings, statuses and applications
come from the engine and the stage in memory), write their triples deferred and keep what they wrote
(``Analysis.risk``, ``Analysis.paths``): ``findings_of`` and ``read_paths`` build the same answers from that, and a
reader of the store (a named query, ``--save``) still sees every triple.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import threatgraph.analysis.paths as paths_module
import threatgraph.analysis.pipeline as pipeline
import threatgraph.analysis.risk as risk_module
from threatgraph.analysis.engine import Analysis, labels_of
from threatgraph.analysis.findings import findings_of
from threatgraph.analysis.paths import read_paths
from threatgraph.analysis.risk import finding_factors
from threatgraph.analysis.techniques import read_applications
from threatgraph.cli import main
from threatgraph.querylib import load_library, run
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import TG, graph_iri

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "data" / "examples"
EXAMPLES = ["rag-assistant", "tabular-platform", "health-risk"]
G_FINDINGS = graph_iri("findings")


def _settles_around_risk_and_paths(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int, bool]]:
    """Record (step, settles before, settles after, deferred after) of every risk and path step that runs."""
    seen: list[tuple[str, int, int, bool]] = []

    def watch(module: Any, name: str) -> None:
        orig = getattr(module, name)

        def wrapped(store: EmbeddedStore, *args: Any, **kwargs: Any) -> Any:
            before = store.settled_count
            out = orig(store, *args, **kwargs)
            seen.append((name, before, store.settled_count, store.deferred))
            return out

        monkeypatch.setattr(module, name, wrapped)

    watch(risk_module, "score_findings")
    watch(paths_module, "find_paths")
    return seen


@pytest.mark.parametrize("name", EXAMPLES)
def test_risk_and_paths_load_no_deferred_writes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The risk and path steps run without loading the deferred finding graph, and leave their own triples deferred
    (measured around the steps: until the technique stage stops loading it, the store settles before them)."""
    seen = _settles_around_risk_and_paths(monkeypatch)
    analysis = pipeline.analyze([EX / f"{name}.ttl"])
    assert [s[0] for s in seen] == ["score_findings", "find_paths"]
    for step, before, after, deferred in seen:
        assert after == before, f"{step} loaded the deferred finding graph"
        assert deferred, f"{step}: nothing left deferred"
    assert analysis.risk is not None and analysis.risk.scores
    assert analysis.paths is not None and len(analysis.paths) == analysis.path_count > 0


@pytest.mark.shared
def test_risk_and_paths_load_no_deferred_writes_with_knowledge(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _settles_around_risk_and_paths(monkeypatch)
    analysis = pipeline.analyze([EX / "rag-assistant.ttl"], knowledge=["shared"])
    assert [(s[1] == s[2], s[3]) for s in seen] == [(True, True), (True, True)]
    assert analysis.stage_memory is not None  # the reductions came from the stage's memory
    assert any(len(v[5]) for v in analysis.risk.scores.values()) if analysis.risk else False


def _as_read(analysis: Analysis) -> Analysis:
    """The same analysis without what risk and paths kept: findings_of reads their triples back from the graph."""
    return dataclasses.replace(analysis, risk=None, paths=None)


@pytest.mark.parametrize("name", EXAMPLES)
def test_kept_risk_and_paths_equal_the_graph(name: str) -> None:
    """findings_of from Analysis.risk and read_paths from Analysis.paths give exactly what reading the finding graph
    back gives (every field, the same order)."""
    analysis = pipeline.analyze([EX / f"{name}.ttl"])
    labels = labels_of(analysis.store)
    kept = findings_of(analysis, labels)
    read = findings_of(_as_read(analysis), labels)
    assert [dataclasses.asdict(f) for f in kept] == [dataclasses.asdict(f) for f in read]
    assert any(f.risk_factors for f in kept) and any(f.risk_score for f in kept)
    assert read_paths(analysis.store, labels, kept, kept=analysis.paths) == read_paths(analysis.store, labels, kept)


@pytest.mark.shared
def test_kept_risk_and_paths_equal_the_graph_with_knowledge() -> None:
    analysis = pipeline.analyze([EX / "rag-assistant.ttl"], knowledge=["shared"])
    labels = labels_of(analysis.store)
    kept = findings_of(analysis, labels)
    read = findings_of(_as_read(analysis), labels)
    assert [dataclasses.asdict(f) for f in kept] == [dataclasses.asdict(f) for f in read]
    assert any(v.name == "reducing attribute" for v in analysis.risk.factors.values()) if analysis.risk else False
    views = read_paths(analysis.store, labels, kept, kept=analysis.paths)
    assert views == read_paths(analysis.store, labels, kept) and any(h.techniques for v in views for h in v.hops)


@pytest.mark.shared
def test_reductions_from_memory_equal_the_graph() -> None:
    """The reducing attributes the risk step takes from the stage's memory are those the finding graph holds."""
    analysis = pipeline.analyze([EX / "rag-assistant.ttl"], knowledge=["shared"])
    store, memory = analysis.store, analysis.stage_memory
    assert memory is not None
    apps = read_applications(store)
    from_memory = finding_factors(store, applications=apps, memory=memory)
    from_graph = finding_factors(store, applications=apps)
    assert from_memory == from_graph
    assert any(x.name == "reducing attribute" for fs in from_graph.values() for x in fs)


def test_readers_of_the_store_see_risk_and_paths() -> None:
    """A named query (or --save, or the server) reads the store: it loads the deferred writes and sees the risk and
    path triples the steps wrote, as many as they kept."""
    analysis = pipeline.analyze([EX / "rag-assistant.ttl"])
    store = analysis.store
    assert isinstance(store, EmbeddedStore) and store.deferred
    before = store.settled_count
    result = run(store, load_library()["attack-paths"])
    assert store.settled_count == before + 1 and not store.deferred
    assert len(result.rows) == analysis.path_count == len(analysis.paths or [])
    scored = store.select(f"SELECT (COUNT(?f) AS ?n) WHERE {{ GRAPH <{G_FINDINGS}> {{ ?f <{TG.riskScore}> ?s }} }}")
    assert analysis.risk is not None and int(scored[0]["n"].value) == len(analysis.risk.scores) > 0
    hops = store.select(f"SELECT (COUNT(?h) AS ?n) WHERE {{ GRAPH <{G_FINDINGS}> {{ ?p <{TG.hop}> ?h }} }}")
    assert int(hops[0]["n"].value) == sum(len(p.hops) for p in analysis.paths or [])


def _captured(monkeypatch: pytest.MonkeyPatch) -> list[Analysis]:
    got: list[Analysis] = []
    orig = pipeline.analyze

    def analyze(*args: Any, **kwargs: Any) -> Analysis:
        a = orig(*args, **kwargs)
        got.append(a)
        return a

    monkeypatch.setattr(pipeline, "analyze", analyze)
    return got


@pytest.mark.parametrize("knowledge", [False, pytest.param(True, marks=pytest.mark.shared)])
@pytest.mark.parametrize("fmt", ["json", "table", "markdown"])
def test_analyze_report_loads_no_finding_graph(
    fmt: str, knowledge: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``threatgraph analyze MODEL --format json`` renders from memory: the finding graph stays deferred text
    (issue 14: at 10 k elements loading it cost ~6 s and several hundred MB)."""
    got = _captured(monkeypatch)
    out = tmp_path / f"report.{fmt}"
    extra = ["--knowledge", "shared"] if knowledge else []
    assert main(["analyze", str(EX / "rag-assistant.ttl"), *extra, "--format", fmt, "--output", str(out)]) == 0
    if fmt == "json":
        assert json.loads(out.read_text(encoding="utf-8"))["findings"]
    store = got[0].store
    assert isinstance(store, EmbeddedStore)
    assert store.settled_count == 0 and store.deferred


TIES = """@prefix ex: <https://example.org/ties#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:z a tg:TrustZone ; tg:trustLevel 2 .
""" + "".join(f"""ex:user{i} a tg:ExternalEntity ; rdfs:label "user" ; tg:inZone ex:z .
ex:data{i} a tgml:TrainingDataset ; rdfs:label "data" ; tg:inZone ex:z .
ex:f{i} a tg:DataFlow ; rdfs:label "upload" ; tg:source ex:user{i} ; tg:target ex:data{i} .
""" for i in range(6))


def test_paths_with_equal_labels_in_one_order(tmp_path: Path) -> None:
    """Paths alike but for their IRIs (starts and targets of one label) come in IRI order, read from the store or
    from what find_paths kept."""
    model = tmp_path / "ties.ttl"
    model.write_text(TIES, encoding="utf-8")
    analysis = pipeline.analyze([model], force=True)
    labels = labels_of(analysis.store)
    kept = read_paths(analysis.store, labels, kept=analysis.paths)
    assert kept == read_paths(analysis.store, labels)
    assert len({(v.start_label, v.target_label) for v in kept}) == 1 < len(kept)
    assert [(v.start, v.target) for v in kept] == sorted((v.start, v.target) for v in kept)
