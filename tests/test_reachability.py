"""Exposure by reachability (issue 13): techniques on ML components that untrusted content reaches through
data flows, without the model stating tg:publiclyExposed or tgml:feedsFrom on them.

An internal LLM application behind a portal that an Internet user (external entity, trust level 0) talks
to receives the user's content through two flows: ATLAS direct prompt injection (AML.T0051.000),
model extraction (AML.T0024.002 targets inference endpoints and fine-tuned models, so not checked here),
cost harvesting (AML.T0034) and denial of AI service (AML.T0029) apply to it; a training dataset fed
from the portal's feedback store is exposed to poisoning (AML.T0020). The same model with the user in a
trusted zone, and an LLM no flow reaches, get none of them. Real ATLAS 5.6.0 and the shipped bridge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import Finding, read_findings
from threatgraph.knowledge.releases import load_release
from threatgraph.resources import queries_dir
from threatgraph.store import Store, open_store
from threatgraph.terms import TG

pytestmark = pytest.mark.shared

EX = "https://example.org/reach#"

MODEL = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <https://example.org/reach#> .
ex:internet a tg:TrustZone ; rdfs:label "Internet" ; tg:trustLevel 0 .
ex:staff a tg:TrustZone ; rdfs:label "Staff network" ; tg:trustLevel 3 .
ex:dmz a tg:TrustZone ; rdfs:label "DMZ" ; tg:trustLevel 1 .
ex:app a tg:TrustZone ; rdfs:label "App zone" ; tg:trustLevel 2 .
ex:user a tg:ExternalEntity ; rdfs:label "customer" ; tg:inZone ex:USERZONE .
ex:portal a tg:Process ; rdfs:label "web portal" ; tg:inZone ex:dmz .
ex:llm a tgml:LLMApplication ; rdfs:label "internal LLM" ; tg:inZone ex:app .
ex:offline a tgml:LLMApplication ; rdfs:label "offline LLM" ; tg:inZone ex:app .
ex:feedback a tgml:UserFeedbackData ; rdfs:label "feedback store" ; tg:inZone ex:app .
ex:prep a tgml:DataPreparationPipeline ; rdfs:label "prep job" ; tg:inZone ex:app .
ex:ds a tgml:TrainingDataset ; rdfs:label "training data" ; tg:inZone ex:app .
ex:f1 a tg:DataFlow ; rdfs:label "request" ; tg:source ex:user ; tg:target ex:portal .
ex:f2 a tg:DataFlow ; rdfs:label "prompt" ; tg:source ex:portal ; tg:target ex:llm .
ex:f3 a tg:DataFlow ; rdfs:label "rating" ; tg:source ex:portal ; tg:target ex:feedback .
ex:f4 a tg:DataFlow ; rdfs:label "export" ; tg:source ex:feedback ; tg:target ex:prep .
ex:f5 a tg:DataFlow ; rdfs:label "write" ; tg:source ex:prep ; tg:target ex:ds .
ex:f6 a tg:DataFlow ; rdfs:label "batch" ; tg:source ex:offline ; tg:target ex:prep .
"""

INPUT_BORNE = {"AML.T0051.000", "AML.T0034", "AML.T0029"}


@pytest.fixture(scope="module")
def store(shared_data: Path) -> Store:
    s = open_store()
    load_release(s, "atlas", str(shared_data / "atlas" / "ATLAS.yaml"))
    return s


def analyse(store: Store, tmp_path: Path, zone: str) -> list[Finding]:
    model = tmp_path / f"reach-{zone}.ttl"
    model.write_text(MODEL.replace("USERZONE", zone), encoding="utf-8")
    Engine(store).analyze([str(model)])
    return read_findings(store, labels_of(store))


def techniques(findings: list[Finding], element: str) -> dict[str, set[tuple[str, str]]]:
    """Technique id → its exposure facts (subject label, attribute) on ``element``."""
    out: dict[str, set[tuple[str, str]]] = {}
    for f in findings:
        if f.focus == EX + element:
            for t in f.techniques:
                out.setdefault(t.id, set()).update(t.exposures)
    return out


def test_internal_llm_behind_portal_gets_input_borne_techniques(store: Store, tmp_path: Path) -> None:
    found = techniques(analyse(store, tmp_path, "internet"), "llm")
    assert INPUT_BORNE <= set(found)
    assert ("customer", "receivesUntrustedInput") in found["AML.T0051.000"]
    # indirect prompt injection: content of untrusted origin reaches it through the flows
    assert ("customer", "untrustedOrigin") in found["AML.T0051.001"]


def test_dataset_fed_through_flows_from_untrusted_user_is_poisonable(store: Store, tmp_path: Path) -> None:
    findings = analyse(store, tmp_path, "internet")
    assert ("customer", "untrustedOrigin") in techniques(findings, "ds")["AML.T0020"]
    assert ("customer", "untrustedOrigin") in techniques(findings, "feedback")["AML.T0020"]


def test_no_path_from_an_untrusted_source_no_technique(store: Store, tmp_path: Path) -> None:
    findings = analyse(store, tmp_path, "internet")
    offline = techniques(findings, "offline")
    assert not (INPUT_BORNE | {"AML.T0051.001"}) & set(offline)
    assert "AML.T0051" in offline  # the unconditional parent still applies to every LLM application
    # the same system used by staff in a trusted zone: nothing untrusted reaches the LLM or the data
    trusted = analyse(store, tmp_path, "staff")
    assert not (INPUT_BORNE | {"AML.T0051.001"}) & set(techniques(trusted, "llm"))
    assert "AML.T0020" not in techniques(trusted, "ds")


def test_reachability_fact_names_origin_and_last_flow(store: Store, tmp_path: Path) -> None:
    analyse(store, tmp_path, "internet")
    facts: dict[object, dict[str, str]] = {}
    for path in sorted((queries_dir() / "derive-findings").glob("06-exposure-*.rq")):
        for q in store.construct(path.read_text(encoding="utf-8")):
            facts.setdefault(q.subject, {})[q.predicate.value] = q.object.value
    reach = {
        (f[TG.stageExposureOf], f[TG.factAttribute], f[TG.factSubject], f.get(TG.factVia, ""))
        for f in facts.values()
        if f.get(TG.factHops) == "true"
    }
    assert (EX + "llm", TG.receivesUntrustedInput, EX + "user", EX + "f2") in reach
    assert (EX + "ds", TG.untrustedOrigin, EX + "user", EX + "f5") in reach
    assert not any(e == EX + "offline" for e, *_ in reach)
    # not a fact per path: one per (element, attribute, origin, last flow)
    assert len([r for r in reach if r[:2] == (EX + "ds", TG.untrustedOrigin)]) == 1


SUPPLY = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <https://example.org/reach#> .
ex:hub a tgml:ModelHub ; rdfs:label "model hub" ; tg:untrustedOrigin UNTRUSTED .
ex:registry a tgml:ModelRegistry ; rdfs:label "registry" .
ex:tuner a tgml:TrainingPipeline ; rdfs:label "fine-tuning job" .
ex:server a tgml:InferenceEndpoint ; rdfs:label "model server" .
ex:toolHub a tgml:MLDependency ; rdfs:label "tool registry" ; tg:untrustedOrigin UNTRUSTED .
ex:tool a tgml:AgentTool ; rdfs:label "calendar tool" .
ex:agent a tgml:LLMAgent ; rdfs:label "assistant agent" .
ex:g1 a tg:DataFlow ; tg:source ex:hub ; tg:target ex:registry .
ex:g2 a tg:DataFlow ; tg:source ex:registry ; tg:target ex:tuner .
ex:g3 a tg:DataFlow ; tg:source ex:registry ; tg:target ex:server .
ex:g4 a tg:DataFlow ; tg:source ex:toolHub ; tg:target ex:tool .
ex:g5 a tg:DataFlow ; tg:source ex:tool ; tg:target ex:agent .
"""


def test_model_and_tool_supply_chain_reach_what_loads_them(store: Store, tmp_path: Path) -> None:
    """Mappings name what is compromised, not only the carrier (ATLAS AML.T0010.003, AML.T0058, AML.T0104)."""

    def run(untrusted: str) -> list[Finding]:
        model = tmp_path / f"supply-{untrusted}.ttl"
        model.write_text(SUPPLY.replace("UNTRUSTED", untrusted), encoding="utf-8")
        Engine(store).analyze([str(model)])
        return read_findings(store, labels_of(store))

    found = run("true")
    for element in ("tuner", "server"):
        got = techniques(found, element)
        assert {"AML.T0010.003", "AML.T0058"} <= set(got), element
        assert ("model hub", "untrustedOrigin") in got["AML.T0058"]
    assert ("tool registry", "untrustedOrigin") in techniques(found, "agent")["AML.T0104"]
    # the same chain from sources the owner trusts: none of them
    trusted = run("false")
    for element in ("tuner", "server", "agent"):
        assert not {"AML.T0010.003", "AML.T0058", "AML.T0104"} & set(techniques(trusted, element)), element
