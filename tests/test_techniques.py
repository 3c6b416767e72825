"""Stage 2 of analyze (issue 4) on the real knowledge: techniques per element, mitigations, controls.

ATT&CK Enterprise 17.1 and 18.1, ATLAS 5.6.0 and D3FEND 1.2.0 are imported once into an in-memory
store; the example models are analysed on it. Expected techniques come from the bridge mappings and
the ATLAS descriptions (prompt injection on the public LLM application; poisoning on data fed by a
partner feed), and their absence is checked where the exposure condition does not hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyoxigraph import NamedNode

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import Finding, read_findings
from threatgraph.knowledge.releases import active_ids, load_release, newest_release
from threatgraph.report import findings_json, render_table
from threatgraph.store import Store, open_store
from threatgraph.terms import ATLAS, graph_iri

pytestmark = pytest.mark.shared

RAG = "https://example.org/rag-assistant#"
TAB = "https://example.org/tabular-platform#"
G_FINDINGS = graph_iri("findings")


@pytest.fixture(scope="module")
def kstore(shared_data: Path) -> Store:
    """ATT&CK 17.1 and 18.1, ATLAS and D3FEND imported into one in-memory store."""
    store = open_store()
    for kind, rel in (
        ("attack", "attack/enterprise-attack-17.1.stix20.json"),
        ("attack", "attack/enterprise-attack-18.1.stix20.json"),
        ("atlas", "atlas/ATLAS.yaml"),
        ("d3fend", "d3fend/d3fend-protege-1.2.0.ttl"),
    ):
        load_release(store, kind, str(shared_data / rel))
    return store


def analyse(store: Store, *paths: Path | str) -> list[Finding]:
    Engine(store).analyze([str(p) for p in paths])
    return read_findings(store, labels_of(store))


def techniques_of(findings: list[Finding], element: str) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        if f.focus == element:
            for t in f.techniques:
                out.setdefault(t.id, []).append(f)
    return out


def technique(findings: list[Finding], element: str, tid: str):  # type: ignore[no-untyped-def]
    for f in findings:
        if f.focus == element:
            for t in f.techniques:
                if t.id == tid:
                    return f, t
    raise AssertionError(f"{tid} not applied to {element}")


@pytest.fixture(scope="module")
def rag(kstore: Store, examples_dir: Path) -> list[Finding]:
    return analyse(kstore, examples_dir / "rag-assistant.ttl")


def test_public_llm_endpoint_gets_prompt_injection(rag: list[Finding]) -> None:
    techs = techniques_of(rag, RAG + "chatApi")
    assert {"AML.T0051", "AML.T0051.000"} <= set(techs)
    # the direct-injection sub-technique needs public exposure: recorded as the exposure fact
    _, t = technique(rag, RAG + "chatApi", "AML.T0051.000")
    assert ("Public chat API", "publiclyExposed") in t.exposures
    assert t.mapping.endswith("mapping/AML.T0051.000") and t.sources and t.justification
    # categories: the bridge maps prompt injection to Tampering and Elevation of privilege
    cats = {c for f in techs["AML.T0051"] for c in f.category_labels}
    assert {"Tampering", "Elevation of privilege"} & cats
    # on the per-element baseline finding (all STRIDE categories of a process, issue 13) the technique
    # names the categories it realises
    realised = {c for f in techs["AML.T0051"] for t in f.techniques if t.id == "AML.T0051" for c in t.categories}
    assert realised <= {"Tampering", "Elevation of privilege"} and realised


def test_prompt_injection_not_on_data_stores(rag: list[Finding]) -> None:
    for element in ("customerDb", "conversationLogs", "embeddingWeights"):
        assert "AML.T0051" not in techniques_of(rag, RAG + element)
        assert "AML.T0051.000" not in techniques_of(rag, RAG + element)


def test_direct_injection_reaches_the_agent_behind_the_public_api(rag: list[Finding]) -> None:
    # the agent is an LLM application too; it is not publicly exposed and no flow into it is, but the
    # customer's prompt reaches it through the public chat API (reachability, issue 13)
    assert "AML.T0051" in techniques_of(rag, RAG + "agent")
    _, t = technique(rag, RAG + "agent", "AML.T0051.000")
    assert ("Public chat API", "receivesUntrustedInput") in t.exposures
    assert ("Public chat API", "publiclyExposed") not in t.exposures  # not a fact about the agent's inputs


def test_mitigations_and_controls_on_prompt_injection(rag: list[Finding]) -> None:
    _, t = technique(rag, RAG + "chatApi", "AML.T0051")
    ids = {m for m, _ in t.mitigations}
    assert {"AML.M0020", "AML.M0021"} <= ids  # Generative AI Guardrails, Guidelines (ATLAS 5.6.0)
    # the chat API uses the input guardrail, whose control implements AML.M0020: partly mitigated
    assert ("AML.M0020", "Prompt-injection classifier and content-safety filter on user input") in t.implemented
    assert t.status == "partly mitigated"
    assert "AML.M0020" not in {m for m, _ in t.missing}
    assert t.countermeasures, "D3FEND countermeasures through the LLM application's artifacts"


def test_declared_controls_remove_technique_from_residual(kstore: Store, examples_dir: Path, tmp_path: Path) -> None:
    store = kstore
    mits = store.select(
        "SELECT DISTINCT ?m WHERE { GRAPH ?g { ?m kb:mitigates ?t } }",
        {"g": NamedNode(newest_release(store, "atlas") or ""), "t": NamedNode(ATLAS["AML.T0051"])},
    )
    ids = sorted(r["m"].value.rsplit("/", 1)[-1] for r in mits)
    assert len(ids) >= 3
    extra = tmp_path / "controls.ttl"
    extra.write_text(
        "@prefix ex: <https://example.org/rag-assistant#> . @prefix tg: <https://w3id.org/threatgraph/ontology#> .\n"
        "@prefix atlas: <https://w3id.org/threatgraph/atlas/> .\n"
        "ex:chatApi tg:hasControl ex:ctlAllInjection .\n"
        "ex:ctlAllInjection a tg:Control ; tg:implementsMitigation " + ", ".join(f"atlas:{i}" for i in ids) + " .\n",
        encoding="utf-8",
    )
    with_ctl = analyse(store, examples_dir / "rag-assistant.ttl", extra)
    f, t = technique(with_ctl, RAG + "chatApi", "AML.T0051")
    assert t.status == "mitigated" and not t.missing
    assert "AML.T0051" not in {r.id for r in f.residual_techniques}
    # negative: the agent has no such control, so prompt injection stays residual there
    _, t_agent = technique(with_ctl, RAG + "agent", "AML.T0051")
    assert t_agent.status != "mitigated"
    # and mitigated techniques lower the likelihood of the finding (declared-controls factor)
    assert any(r.name == "declared controls" for r in f.risk_factors)


POISON_MODEL = """@prefix ex: <https://example.org/poison#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:partner a tgml:ThirdPartyDataSource ; rdfs:label "partner feed" ; tg:untrustedOrigin true .
ex:lake a tgml:FirstPartyDataSource ; rdfs:label "first-party lake" ; tg:artifactsSigned true ; tg:provenanceKnown true .
ex:prep a tgml:DataPreparationPipeline ; rdfs:label "prep" .
ex:dsPartner a tgml:TrainingDataset ; rdfs:label "partner-fed training data" ; tgml:feedsFrom ex:partner .
ex:dsFirst a tgml:TrainingDataset ; rdfs:label "first-party training data" ; tgml:feedsFrom ex:lake .
ex:f1 a tg:DataFlow ; tg:source ex:partner ; tg:target ex:prep .
ex:f2 a tg:DataFlow ; tg:source ex:lake ; tg:target ex:dsFirst ; tg:artifactsSigned true .
"""


def test_poisoning_needs_untrusted_origin(kstore: Store, tmp_path: Path) -> None:
    model = tmp_path / "poison.ttl"
    model.write_text(POISON_MODEL, encoding="utf-8")
    findings = analyse(kstore, model)
    partner = techniques_of(findings, "https://example.org/poison#dsPartner")
    first = techniques_of(findings, "https://example.org/poison#dsFirst")
    assert "AML.T0020" in partner
    _, t = technique(findings, "https://example.org/poison#dsPartner", "AML.T0020")
    assert ("partner feed", "untrustedOrigin") in t.exposures
    assert {"AML.M0007", "AML.M0025"} <= {m for m, _ in t.mitigations}  # sanitize training data, dataset provenance
    assert "AML.T0020" not in first  # fed only from a first-party, signed source


def test_tabular_partner_feed_poisoning(kstore: Store, examples_dir: Path) -> None:
    findings = analyse(kstore, examples_dir / "tabular-platform.ttl")
    assert "AML.T0020" in techniques_of(findings, TAB + "rawDataset")
    # the training split is fed (tgml:feedsFrom) from the raw dataset, itself fed by the partner feed
    _, t = technique(findings, TAB + "trainingDataset", "AML.T0020")
    assert any(attr == "untrustedOrigin" for _, attr in t.exposures)
    assert any(attr in ("provenanceKnown", "artifactsSigned", "inputValidated") for _, attr in t.reduced_by)


def test_only_active_techniques_of_newest_release(kstore: Store, rag: list[Finding]) -> None:
    newest = newest_release(kstore, "attack-enterprise")
    assert newest is not None and newest.endswith("/18.1")
    active18 = active_ids(kstore, newest)
    cited = {t.id for f in rag for t in f.techniques if not t.id.startswith("AML.")}
    assert cited and cited <= active18
    releases = {t.release for f in rag for t in f.techniques}
    assert releases == {"attack-enterprise/18.1", "atlas/5.6.0"}
    # every application names the newest release graph
    rows = kstore.select(
        "SELECT DISTINCT ?rel WHERE { GRAPH ?g { ?a tg:inRelease ?rel } }", {"g": NamedNode(G_FINDINGS)}
    )
    assert {r["rel"].value for r in rows} == {newest, newest_release(kstore, "atlas")}


def test_detections_from_v18(rag: list[Finding]) -> None:
    _, t = technique(rag, RAG + "chatApi", "T1190")
    ids = {d for d, _ in t.detections}
    assert any(i.startswith("DET") for i in ids)
    assert "data component" not in ids  # v18 has detection strategies, not the v17 data-component links


def test_reports_show_techniques_risk_and_controls(rag: list[Finding]) -> None:
    chat = [f for f in rag if f.focus == RAG + "chatApi"]
    text = render_table(chat, width=140)
    assert "technique AML.T0051 LLM Prompt Injection" in text
    assert "risk " in text and "likelihood: base 2" in text and "controls: " in text
    import json

    doc = json.loads(findings_json(chat))
    techs = [t for f in doc["findings"] for t in f["techniques"]]
    assert any(t["id"] == "AML.T0051" and t["mitigations"] for t in techs)
    assert all(f["risk"]["factors"] for f in doc["findings"])


HEALTH = "https://example.org/health-risk#"


def test_health_membership_inference_needs_personal_data(kstore: Store, examples_dir: Path, tmp_path: Path) -> None:
    findings = analyse(kstore, examples_dir / "health-risk.ttl")
    _, t = technique(findings, HEALTH + "riskEndpoint", "AML.T0024.000")
    cats = {c for g in techniques_of(findings, HEALTH + "riskEndpoint")["AML.T0024.000"] for c in g.category_labels}
    assert "Identifying" in cats  # LINDDUN: the endpoint processes personal health data
    assert ("Risk-score inference endpoint", "rateLimited") in t.reduced_by
    assert t.status in ("partly mitigated", "mitigated") and t.implemented  # query quota / coarse output
    # negative: the same public endpoint without personal data keeps only the STRIDE category
    model = tmp_path / "nopd.ttl"
    model.write_text(
        "@prefix ex: <https://example.org/nopd#> . @prefix tg: <https://w3id.org/threatgraph/ontology#> .\n"
        "@prefix tgml: <https://w3id.org/threatgraph/ml#> .\n"
        "ex:api a tgml:InferenceEndpoint ; tg:publiclyExposed true .\n",
        encoding="utf-8",
    )
    plain = analyse(kstore, model)
    cats2 = {c for g in techniques_of(plain, "https://example.org/nopd#api").get("AML.T0024.000", []) for c in g.category_labels}
    assert "Information disclosure" in cats2 and "Identifying" not in cats2
