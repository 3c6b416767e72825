"""Derived ML roles (issue 13, queries/derive/llm-endpoint.rq, llm-agent.rq, training-source.rq).

The fidelity bench's GenAI/RAG model (bench/fidelity/models/threagile-genai-rag-support.yaml) showed three
gaps of the ATLAS bridge: an internal LLM served by an inference endpoint behind an LLM application got no
prompt injection (the LLM techniques targeted the application only); an LLM application that calls an agent
tool got none of the agent techniques (they targeted tgml:LLMAgent and the tool); a log store a fine-tuning
pipeline reads got no data poisoning (it targeted stores classed as datasets). Each derivation has a
positive case and a negative one (the same element without the flow that makes the role). Real ATLAS
5.6.0 and the shipped bridge.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import Finding, read_findings
from threatgraph.knowledge.releases import load_release
from threatgraph.store import Store, open_store

pytestmark = pytest.mark.shared

EX = "https://example.org/roles#"
ROOT = Path(__file__).resolve().parents[1]

MODEL = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <https://example.org/roles#> .
ex:internet a tg:TrustZone ; rdfs:label "Internet" ; tg:trustLevel 0 .
ex:app a tg:TrustZone ; rdfs:label "App zone" ; tg:trustLevel 2 .
ex:user a tg:ExternalEntity ; rdfs:label "customer" ; tg:inZone ex:internet .
ex:portal a tg:Process ; rdfs:label "web portal" ; tg:inZone ex:app .
ex:rag a tgml:LLMApplication ; rdfs:label "assistant" ; tg:inZone ex:app .
ex:llm a tgml:InferenceEndpoint ; rdfs:label "internal LLM" ; tg:inZone ex:app .
ex:scorer a tgml:InferenceEndpoint ; rdfs:label "fraud scorer" ; tg:inZone ex:app .
ex:tool a tgml:AgentTool ; rdfs:label "refund tool" ; tg:inZone ex:app .
ex:logs a tgml:InferenceLogStore ; rdfs:label "prompt logs" ; tg:inZone ex:app .
ex:otherlogs a tgml:InferenceLogStore ; rdfs:label "access logs" ; tg:inZone ex:app .
ex:ft a tgml:TrainingPipeline ; rdfs:label "fine-tuning" ; tg:inZone ex:app .
ex:f1 a tg:DataFlow ; rdfs:label "chat" ; tg:source ex:user ; tg:target ex:portal .
ex:f2 a tg:DataFlow ; rdfs:label "ask" ; tg:source ex:portal ; tg:target ex:rag .
ex:f3 a tg:DataFlow ; rdfs:label "completion" ; tg:source ex:rag ; tg:target ex:llm .
ex:f4 a tg:DataFlow ; rdfs:label "score" ; tg:source ex:portal ; tg:target ex:scorer .
ex:f5 a tg:DataFlow ; rdfs:label "log" ; tg:source ex:rag ; tg:target ex:logs .
ex:f6 a tg:DataFlow ; rdfs:label "log access" ; tg:source ex:portal ; tg:target ex:otherlogs .
ex:f7 a tg:DataFlow ; rdfs:label "read logs" ; tg:source ex:logs ; tg:target ex:ft .
TOOLFLOW
"""
TOOLFLOW = 'ex:f8 a tg:DataFlow ; rdfs:label "call" ; tg:source ex:rag ; tg:target ex:tool .'


@pytest.fixture(scope="module")
def store(shared_data: Path) -> Store:
    s = open_store()
    load_release(s, "atlas", str(shared_data / "atlas" / "ATLAS.yaml"))
    return s


def analyse(store: Store, tmp_path: Path, tool_flow: bool) -> list[Finding]:
    model = tmp_path / f"roles-{tool_flow}.ttl"
    model.write_text(MODEL.replace("TOOLFLOW", TOOLFLOW if tool_flow else ""), encoding="utf-8")
    Engine(store).analyze([str(model)])
    return read_findings(store, labels_of(store))


def techniques(findings: list[Finding], element: str) -> set[str]:
    return {t.id for f in findings if f.focus == EX + element for t in f.techniques}


def types(store: Store, element: str) -> set[str]:
    rows = store.select(f"SELECT ?c WHERE {{ <{EX}{element}> a ?c }}")
    return {r["c"].value.rsplit("#", 1)[-1] for r in rows}


def test_inference_endpoint_behind_an_llm_application_gets_prompt_injection(store: Store, tmp_path: Path) -> None:
    found = techniques(analyse(store, tmp_path, tool_flow=True), "llm")
    assert "LLMInferenceEndpoint" in types(store, "llm")
    # reached from the Internet through portal and assistant: direct injection (receivesUntrustedInput)
    assert {"AML.T0051.000", "AML.T0054"} <= found
    # negative: an inference endpoint no LLM application calls (a fraud scorer the portal calls) is not an LLM
    assert "LLMInferenceEndpoint" not in types(store, "scorer")
    assert not {"AML.T0051", "AML.T0051.000", "AML.T0051.001", "AML.T0054"} & techniques(
        read_findings(store, labels_of(store)), "scorer")


def test_llm_application_calling_a_tool_is_an_agent(store: Store, tmp_path: Path) -> None:
    found = techniques(analyse(store, tmp_path, tool_flow=True), "rag")
    assert "LLMAgent" in types(store, "rag")
    assert "AML.T0053" in found  # AI Agent Tool Invocation: targets agents and tools
    # negative: the same application without the flow to the tool stays an LLM application
    found = techniques(analyse(store, tmp_path, tool_flow=False), "rag")
    assert "LLMAgent" not in types(store, "rag")
    assert "AML.T0053" not in found


def test_store_read_by_a_training_pipeline_is_training_data(store: Store, tmp_path: Path) -> None:
    findings = analyse(store, tmp_path, tool_flow=False)
    assert "TrainingDataset" in types(store, "logs")
    assert "AML.T0020" in techniques(findings, "logs")  # Poison Training Data, reached from the Internet
    # negative: a log store nothing trains on
    assert "TrainingDataset" not in types(store, "otherlogs")
    assert "AML.T0020" not in techniques(findings, "otherlogs")


def test_fidelity_of_the_genai_rag_model(tmp_path: Path) -> None:
    """The bench's ML figure on the GenAI/RAG Threagile model: measured 0.926 (25 of 27 hand-written
    (risk, asset) pairs; before the derivations 0.778). Misses: insecure output handling on the portal
    (a plain web application; LLM Response Rendering targets LLM applications) and indirect prompt
    injection on the ingestion pipeline (RAG poisoning targets the corpus and the vector store)."""
    out = tmp_path / "fidelity.json"
    model = ROOT / "bench" / "fidelity" / "models" / "threagile-genai-rag-support.yaml"
    subprocess.run([sys.executable, str(ROOT / "bench" / "fidelity.py"), "--json", str(out), str(model)],
                   check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text(encoding="utf-8"))["models"][0]
    assert result["error"] == "" and result["ml_pairs"] == 27 and result["ml_unclassified"] == []
    knowledge = result["runs"]["knowledge"]
    assert knowledge["ml_recall"] >= 0.92, knowledge["missed_ml"]
    # without knowledge the mappings' techniques are cited unresolved (issue 13): the same figure
    assert result["runs"]["plain"]["ml_recall"] == knowledge["ml_recall"]
