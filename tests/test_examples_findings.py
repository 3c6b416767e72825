"""The three example models get the findings a reviewer would expect, on the elements they concern.

Each expectation names the element (by IRI), the rule and the category; negative checks show that
the elements built to be safe get nothing and that fixing an attribute removes the finding.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import Finding, read_findings

EX = Path(__file__).resolve().parent.parent / "data" / "examples"
RAG = "https://example.org/rag-assistant#"
TAB = "https://example.org/tabular-platform#"
HEALTH = "https://example.org/health-risk#"


def _analyze(path: Path) -> list[Finding]:
    eng = Engine()
    eng.analyze([path])
    return read_findings(eng.store, labels_of(eng.store))


@pytest.fixture(scope="module")
def rag() -> list[Finding]:
    return _analyze(EX / "rag-assistant.ttl")


@pytest.fixture(scope="module")
def tabular() -> list[Finding]:
    return _analyze(EX / "tabular-platform.ttl")


@pytest.fixture(scope="module")
def health() -> list[Finding]:
    return _analyze(EX / "health-risk.ttl")


def has(findings: list[Finding], focus: str, rule: str, category: str) -> bool:
    return any(f.focus == focus and f.rule_id == rule and category in f.category_labels for f in findings)


def rules_on(findings: list[Finding], focus: str) -> set[str]:
    return {f.rule_id for f in findings if f.focus == focus}


# --- (a) RAG assistant with an agent and tools -------------------------------------------------
@pytest.mark.parametrize(
    ("focus", "rule", "category"),
    [
        ("agent", "TG-STRIDE-E-002", "Elevation of privilege"),  # tools without a human in the loop
        ("f11", "TG-STRIDE-T-003", "Tampering"),  # LLM output steering tool calls: prompt injection
        ("f03", "TG-STRIDE-T-003", "Elevation of privilege"),  # user text into the agent
        ("f14", "TG-STRIDE-T-002", "Tampering"),  # web search results, untrusted, unvalidated
        ("f17", "TG-STRIDE-I-001", "Data disclosure"),  # personal data in a plain-text e-mail
        ("f29", "TG-STRIDE-T-006", "Tampering"),  # unsigned model pulled from a public hub
        ("f10", "TG-LINDDUN-U-001", "Unawareness & unintervenability"),  # user data to the LLM provider
        ("agent", "TG-PE-STRIDE", "Spoofing"),  # per-element baseline: an agent is a process
    ],
)
def test_rag_expected(rag: list[Finding], focus: str, rule: str, category: str) -> None:
    assert has(rag, RAG + focus, rule, category), sorted(rules_on(rag, RAG + focus))


def test_rag_explanations_name_the_facts(rag: list[Finding]) -> None:
    f = next(f for f in rag if f.focus == RAG + "agent" and f.rule_id == "TG-STRIDE-E-002")
    tools = {e[1] for e in f.evidence if e[0] == "tool"}
    assert tools and all(t.startswith(RAG) for t in tools)
    assert "Support agent orchestrator" in f.explanation


# --- (b) tabular ML platform ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("focus", "rule", "category"),
    [
        ("inferenceApi", "TG-STRIDE-E-001", "Elevation of privilege"),  # public API, no authorization
        ("inferenceApi", "TG-LINDDUN-I-001", "Identifying"),  # served model trained on personal data
        ("f03", "TG-STRIDE-T-005", "Tampering"),  # partner feed → dataset without provenance: poisoning
        ("f10", "TG-STRIDE-T-007", "Tampering"),  # unsigned pip install
        ("f12", "TG-STRIDE-T-006", "Elevation of privilege"),  # base model from a hub, unsigned
        ("notebooks", "TG-STRIDE-I-005", "Information disclosure"),  # notebook reaching confidential data
        ("inferenceLogs", "TG-PE-STRIDE", "Repudiation"),  # log store: repudiation per element
    ],
)
def test_tabular_expected(tabular: list[Finding], focus: str, rule: str, category: str) -> None:
    assert has(tabular, TAB + focus, rule, category), sorted(rules_on(tabular, TAB + focus))


def test_tabular_plain_store_has_no_repudiation(tabular: list[Finding]) -> None:
    # The feature store holds no logs: STRIDE-per-element gives a data store T, I, D only.
    cats = {c for f in tabular if f.focus == TAB + "featureStore" and f.rule_id == "TG-PE-STRIDE"
            for c in f.category_labels}
    assert cats == {"Tampering", "Information disclosure", "Denial of service"}


# --- (c) health risk model with special-category personal data ------------------------------------
@pytest.mark.parametrize(
    ("focus", "rule", "category"),
    [
        ("riskEndpoint", "TG-LINDDUN-I-001", "Identifying"),  # membership inference on patients
        ("riskEndpoint", "TG-STRIDE-E-001", "Elevation of privilege"),
        ("f23", "TG-LINDDUN-D-001", "Detecting"),  # a push alert whose existence reveals a diagnosis
        ("f15", "TG-LINDDUN-NC-001", "Non-compliance"),  # records to a vendor without consent
        ("f15", "TG-LINDDUN-U-001", "Unawareness & unintervenability"),
        ("dataPrep", "TG-LINDDUN-L-001", "Linking"),  # joins several personal-data feeds
        ("inferenceLogs", "TG-LINDDUN-N-001", "Non-repudiation"),
    ],
)
def test_health_expected(health: list[Finding], focus: str, rule: str, category: str) -> None:
    assert has(health, HEALTH + focus, rule, category), sorted(rules_on(health, HEALTH + focus))


def test_health_privacy_findings_matter(health: list[Finding]) -> None:
    linddun = [f for f in health if f.rule_id.startswith("TG-LINDDUN-")]
    assert len({f.focus for f in linddun}) >= 8


# --- fixing the model removes the finding ---------------------------------------------------------
def test_authorizing_the_public_api_removes_the_finding(tmp_path: Path) -> None:
    text = (EX / "tabular-platform.ttl").read_text(encoding="utf-8")
    fixed = tmp_path / "tabular-fixed.ttl"
    fixed.write_text(text + f"\n<{TAB}inferenceApi> <https://w3id.org/threatgraph/ontology#authorizationEnforced> true .\n",
                     encoding="utf-8")
    before = _analyze(EX / "tabular-platform.ttl")
    after = _analyze(fixed)
    assert has(before, TAB + "inferenceApi", "TG-STRIDE-E-001", "Elevation of privilege")
    assert not has(after, TAB + "inferenceApi", "TG-STRIDE-E-001", "Elevation of privilege")
