"""Techniques cited without knowledge (issue 13): a plain ``analyze`` (no ``--knowledge``, no ``--store``)
applies the bridge mappings under the same asset classes and conditions as with a release, and cites each
mapping's technique *unresolved* (``tg:inRelease tg:NoReleaseLoaded``): its id, no name, no mitigations,
countermeasures or detections, no revocation check, and a status every renderer shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threatgraph.analysis.engine import labels_of
from threatgraph.analysis.findings import Finding, read_findings
from threatgraph.analysis.pipeline import analyze
from threatgraph.export import build_context, render_export
from threatgraph.report import findings_json, render_table, unresolved_note
from threatgraph.terms import TG, graph_iri

RAG = "https://example.org/rag-assistant#"
STATUS = "unresolved: no ATT&CK/ATLAS release loaded (load with --knowledge shared or threatgraph import)"


def techniques_of(findings: list[Finding], element: str) -> dict[str, list[str]]:
    """Technique id -> the unresolved statuses of its applications on ``element``."""
    out: dict[str, list[str]] = {}
    for f in findings:
        if f.focus == element:
            for t in f.techniques:
                out.setdefault(t.id, []).append(t.unresolved)
    return out


@pytest.fixture(scope="module")
def plain(examples_dir: Path):  # type: ignore[no-untyped-def]
    a = analyze([str(examples_dir / "rag-assistant.ttl")])
    labels = labels_of(a.store)
    return a, labels, read_findings(a.store, labels)


def test_plain_run_cites_unresolved_technique_on_ml_asset(plain) -> None:  # type: ignore[no-untyped-def]
    a, _, findings = plain
    assert a.releases == {}
    techs = techniques_of(findings, RAG + "chatApi")
    # prompt injection on the public LLM application, the direct sub-technique by its exposure condition
    assert {"AML.T0051", "AML.T0051.000"} <= set(techs)
    assert set(techs["AML.T0051.000"]) == {STATUS}
    t = next(t for f in findings if f.focus == RAG + "chatApi" for t in f.techniques if t.id == "AML.T0051.000")
    assert ("Public chat API", "publiclyExposed") in t.exposures
    # nothing that only a release says: no name, no mitigations, countermeasures, detections, maturity
    assert (t.label, t.release, t.mitigations, t.countermeasures, t.detections, t.maturity) == ("", "", [], [], [], "")
    assert t.mapping.endswith("mapping/AML.T0051.000") and t.justification
    # the finding graph says so on the application itself (no extra node per application)
    rows = a.store.select(f"""SELECT ?rel WHERE {{ GRAPH <{graph_iri("findings")}> {{
        ?app tg:onElement <{RAG}chatApi> ; tg:appliedTechnique <{t.iri}> ; tg:inRelease ?rel }} }}""")
    assert [r["rel"].value for r in rows] == [TG.NoReleaseLoaded]
    # the baseline finding the techniques realise gets a risk of its own, as with a release
    base = next(f for f in findings if f.focus == RAG + "chatApi" and f.rule_id == "TG-PE-STRIDE")
    assert base.techniques and base.risk_score > 0


def test_plain_run_keeps_mapping_conditions(plain) -> None:  # type: ignore[no-untyped-def]
    _, _, findings = plain
    # data stores are not LLM applications: no prompt injection there; no technique on a non-ML element
    for element in ("customerDb", "conversationLogs", "embeddingWeights"):
        assert not {"AML.T0051", "AML.T0051.000"} & set(techniques_of(findings, RAG + element))
    assert techniques_of(findings, RAG + "mailRecipient") == {}  # an external entity that is no ML asset
    assert all(t.unresolved == STATUS for f in findings for t in f.techniques)


def test_plain_run_renderers_say_unresolved(plain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, labels, findings = plain
    assert unresolved_note(findings) == STATUS
    doc = json.loads(findings_json(findings, releases=a.releases))
    assert doc["techniqueStatus"] == STATUS
    tj = next(t for f in doc["findings"] for t in f["techniques"])
    assert tj["release"] is None and tj["unresolved"] == STATUS and tj["mitigations"] == []
    assert STATUS in " ".join(render_table(findings, width=200).split())  # the full listing, per technique
    ctx = build_context(a.store, findings, labels, title="t", rules=a.rules)
    sarif = json.loads(render_export("sarif", ctx, a.store))
    cited = {f.iri for f in findings if f.techniques}  # (other findings may list their rule header's ids)
    props = [r["properties"] for r in sarif["runs"][0]["results"] if r["partialFingerprints"]["threatgraphFinding/v1"] in cited]
    assert props and all(p["techniqueStatus"] == STATUS for p in props)
    assert STATUS.replace("&", "&amp;") in render_export("html", ctx, a.store)
    csv_text = render_export("csv", ctx, a.store)
    assert f"({STATUS})" in csv_text
    layer = json.loads(render_export("navigator-atlas", ctx, a.store))
    assert STATUS in layer["description"] and all(STATUS in t["comment"] for t in layer["techniques"])


@pytest.mark.shared
def test_knowledge_run_resolves_and_cites_the_same_pairs(plain, examples_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """With the pinned releases every mapped technique is active (none revoked or deprecated), so a plain
    run cites exactly the (element, technique) pairs of a knowledge run; the knowledge run says nothing
    of unresolved techniques."""
    _, _, plain_findings = plain
    a = analyze([str(examples_dir / "rag-assistant.ttl")], knowledge=["shared"])
    findings = read_findings(a.store, labels_of(a.store))
    assert not any(t.unresolved for f in findings for t in f.techniques)
    assert unresolved_note(findings) == ""
    assert "techniqueStatus" not in json.loads(findings_json(findings, releases=a.releases))
    pairs = {(f.focus, t.id) for f in findings for t in f.techniques}
    assert pairs and pairs == {(f.focus, t.id) for f in plain_findings for t in f.techniques}


@pytest.mark.shared
def test_only_capec_loaded_still_cites_unresolved(examples_dir: Path, shared_data: Path) -> None:
    """A loaded release that resolves no technique (CAPEC: its view holds the attack patterns' ATT&CK links)
    leaves the techniques unresolved, and the rest of the view is kept."""
    a = analyze([str(examples_dir / "rag-assistant.ttl")], knowledge=[str(shared_data / "capec/stix-capec-3.9.json")])
    findings = read_findings(a.store, labels_of(a.store))
    cited = {t.unresolved for f in findings if f.focus == RAG + "chatApi" for t in f.techniques}
    assert cited == {STATUS}
    assert a.store.select(f"SELECT ?p WHERE {{ GRAPH <{graph_iri('view')}> {{ ?p tg:capecTechnique ?t }} }} LIMIT 1")


@pytest.mark.shared
@pytest.mark.parametrize(("loaded", "unresolved_prefix"), [
    ("attack/enterprise-attack-18.1.stix20.json", "AML."),  # ATT&CK only: the ATLAS mappings are unresolved
    ("atlas/ATLAS.yaml", "T"),  # ATLAS only: the ATT&CK mappings are unresolved
])
def test_one_source_loaded_cites_the_other_unresolved(plain, examples_dir: Path, shared_data: Path,  # type: ignore[no-untyped-def]
                                                      loaded: str, unresolved_prefix: str) -> None:
    """With only one of ATT&CK / ATLAS loaded, the other source's mappings are cited unresolved (issue 13: they
    were dropped: with ATT&CK alone the rag assistant lost its 411 ATLAS citations, prompt injection among
    them); the loaded source's techniques are resolved against its release. Same (element, technique) pairs as
    a plain run (and so as a run with both releases, test above)."""
    _, _, plain_findings = plain
    a = analyze([str(examples_dir / "rag-assistant.ttl")], knowledge=[str(shared_data / loaded)])
    findings = read_findings(a.store, labels_of(a.store))
    techs = [t for f in findings for t in f.techniques]
    assert {t.unresolved for t in techs if t.id.startswith(unresolved_prefix)} == {STATUS}
    resolved = [t for t in techs if not t.id.startswith(unresolved_prefix)]
    assert resolved and not any(t.unresolved for t in resolved) and all(t.release for t in resolved)
    assert {t.id for f in findings if f.focus == RAG + "chatApi" for t in f.techniques} >= (
        {"AML.T0051", "AML.T0051.000"} if unresolved_prefix == "AML." else {"AML.T0051"})
    pairs = {(f.focus, t.id) for f in findings for t in f.techniques}
    assert pairs == {(f.focus, t.id) for f in plain_findings for t in f.techniques}
    assert unresolved_note(findings) == STATUS  # the reports say some techniques are unresolved
