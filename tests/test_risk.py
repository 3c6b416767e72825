"""Residual risk (docs/risk.md): likelihood × impact with every factor stored as RDF and rendered.

Runs without knowledge and without bridge mappings (categories only: without knowledge the mappings'
techniques are cited unresolved, issue 13, and would realise the baseline findings): impact from data
classification / criticality / asset type, likelihood from exposure, trust boundaries, untrusted origin and
declared controls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyoxigraph import NamedNode

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import Finding, read_findings
from threatgraph.analysis.risk import combine_likelihood, risk_level
from threatgraph.analysis.rules import load_rules, parse_rule
from threatgraph.knowledge import bridgegraph
from threatgraph.report import findings_json, risk_text
from threatgraph.store import Store, open_store
from threatgraph.terms import graph_iri

EX = "https://example.org/risk#"
MODEL = """@prefix ex: <https://example.org/risk#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix stride: <https://w3id.org/threatgraph/stride#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:internet a tg:TrustZone ; tg:trustLevel 0 .
ex:dmz a tg:TrustZone ; tg:trustLevel 1 .
ex:patients a tg:DataAsset ; rdfs:label "patient records" ; tg:classification tg:SpecialCategoryPersonal .
ex:user a tgml:EndUser ; rdfs:label "user" ; tg:inZone ex:internet ; tg:untrustedOrigin true .
ex:api a tgml:InferenceEndpoint ; rdfs:label "public API" ; tg:inZone ex:dmz ; tg:publiclyExposed true ;
    tg:criticality 4 ; tg:processes ex:patients .
ex:batch a tgml:BatchScoringJob ; rdfs:label "internal batch job" .
ex:guarded a tgml:BatchScoringJob ; rdfs:label "guarded job" ; tg:hasControl ex:ctl .
ex:ctl a tg:Control ; rdfs:label "tamper-proofing" ; tg:coversCategory stride:Tampering .
ex:q a tg:DataFlow ; rdfs:label "query" ; tg:source ex:user ; tg:target ex:api ; tg:carries ex:patients .
"""


# A specific (non-baseline) rule firing on every process for Spoofing and Tampering, so that the risk of
# findings with those categories can be checked on any element: since issue 13/15 the per-element
# baseline findings get a risk only when techniques realise them.
PROBE = """# id: TEST-RISK-{c}
# title: Probe finding on every process
# framework: STRIDE
# category: stride:{cat}
# severity: medium
# focus: element
# source: test
# remediation: none
# explanation: {{focus}} is a process.
SELECT ?focus WHERE {{ ?focus a tg:Process }}
"""
PROBES = [parse_rule(PROBE.format(c=c, cat=cat), f"TEST-RISK-{c}.rq") for c, cat in (("S", "Spoofing"), ("T", "Tampering"))]


def engine(store: Store) -> Engine:
    return Engine(store, rules=[*load_rules(), *PROBES])


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    path = tmp_path_factory.mktemp("risk") / "model.ttl"
    path.write_text(MODEL, encoding="utf-8")
    store = open_store()
    with pytest.MonkeyPatch.context() as mp:  # no bridge mappings: no technique, categories only
        mp.setattr(bridgegraph, "mapping_files", lambda directory=None: [])
        engine(store).analyze([str(path)])
    return read_findings(store, labels_of(store))


def of(findings: list[Finding], element: str, category: str) -> Finding:
    return next(f for f in findings if f.focus == EX + element and category in f.category_labels
                and f.rule_id.startswith("TEST-RISK-"))


def test_baseline_without_techniques_has_no_risk(findings: list[Finding]) -> None:
    """One scale (issue 15): a per-element baseline finding no technique realises keeps its rule's
    severity (info) as its level; it is never shown with a contextual risk level such as critical."""
    base = [f for f in findings if f.rule_id == "TG-PE-STRIDE"]
    assert base and all(f.risk_level == "" and f.risk_score == 0 and f.level == "info" for f in base)
    specific = of(findings, "api", "Tampering")
    # its risk is critical; the level is capped one step above the rule's severity (medium → high)
    assert specific.risk_level == "critical" and specific.severity == "medium"
    assert specific.level == "high" and specific.level_capped


def test_scale_helpers() -> None:
    assert combine_likelihood([]) == 2 and combine_likelihood([1, 1, 1, 1]) == 5 and combine_likelihood([-2, -1]) == 1
    assert [risk_level(s) for s in (1, 4, 5, 9, 10, 14, 15, 25)] == [
        "low", "low", "medium", "medium", "high", "high", "critical", "critical"]


def test_exposed_endpoint_with_special_category_data(findings: list[Finding]) -> None:
    f = of(findings, "api", "Tampering")
    names = {(r.of, r.name) for r in f.risk_factors}
    assert ("impact", "data classification") in names and ("impact", "criticality") in names
    assert f.impact == 5  # special-category personal data (rank 5) beats criticality 4
    # likelihood: base 2 + publicly exposed + crossing from the Internet + fed by an untrusted source
    assert {("likelihood", "exposure"), ("likelihood", "trust boundary"), ("likelihood", "untrusted origin")} <= names
    assert f.likelihood == 5 and f.risk_score == 25 and f.risk_level == "critical"
    text = risk_text(f)
    assert "SpecialCategoryPersonal (sensitivity rank 5)" in text and "+1 exposure (publicly exposed: public API)" in text


def test_internal_element_without_facts_has_defaults(findings: list[Finding]) -> None:
    f = of(findings, "batch", "Tampering")
    assert (f.likelihood, f.impact, f.risk_score, f.risk_level) == (2, 2, 4, "low")
    assert [(r.of, r.name) for r in f.risk_factors] == [("impact", "default")]
    assert f.control_status == "unmitigated"


def test_category_control_lowers_likelihood(findings: list[Finding]) -> None:
    covered = of(findings, "guarded", "Tampering")
    other = of(findings, "guarded", "Spoofing")
    assert covered.control_status == "mitigated" and covered.covered_by == ["tamper-proofing"]
    assert covered.likelihood == 1 and any(r.name == "declared controls" and r.effect == -2 for r in covered.risk_factors)
    assert other.control_status == "unmitigated" and other.likelihood == 2


def test_factors_are_rdf_on_the_finding(tmp_path: Path) -> None:
    path = tmp_path / "m.ttl"
    path.write_text(MODEL, encoding="utf-8")
    store = open_store()
    engine(store).analyze([str(path)])
    rows = store.select(
        """SELECT ?f ?l ?i ?s ?name ?eff WHERE { GRAPH ?g { ?f tg:focus ?e ; tg:likelihood ?l ; tg:impact ?i ;
           tg:riskScore ?s ; tg:riskFactor ?rf . ?rf a tg:RiskFactor ; tg:factorName ?name ; tg:factorEffect ?eff } }""",
        {"g": NamedNode(graph_iri("findings")), "e": NamedNode(EX + "api")},
    )
    assert rows and all(int(r["s"].value) == int(r["l"].value) * int(r["i"].value) for r in rows)
    assert {"data classification", "exposure"} <= {r["name"].value for r in rows}


def test_json_carries_risk(findings: list[Finding]) -> None:
    doc = json.loads(findings_json([of(findings, "api", "Tampering")]))
    risk = doc["findings"][0]["risk"]
    assert risk["score"] == 25 and risk["level"] == "critical" and risk["explanation"].startswith("risk 25")
    assert {x["name"] for x in risk["factors"]} >= {"exposure", "criticality"}
    assert doc["findings"][0]["techniques"] == []  # no mappings loaded: categories only
