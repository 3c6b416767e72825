"""Derived ML roles (issue 13, queries/derive/llm-endpoint.rq, llm-agent.rq, training-source.rq,
llm-renderer.rq, rag-ingestion.rq, training-writer.rq, llm-0-application.rq, prediction-consumer.rq).

The fidelity bench's GenAI/RAG model (bench/fidelity/models/threagile-genai-rag-support.yaml) showed three
gaps of the ATLAS bridge: an internal LLM served by an inference endpoint behind an LLM application got no
prompt injection (the LLM techniques targeted the application only); an LLM application that calls an agent
tool got none of the agent techniques (they targeted tgml:LLMAgent and the tool); a log store a fine-tuning
pipeline reads got no data poisoning (it targeted stores classed as datasets). Each derivation has a
positive case and a negative one (the same element without the flow that makes the role). Real ATLAS
5.6.0 and the shipped bridge.

The bench's agentic and fraud-scoring models (written for it, bench/fidelity/models/README.md) and the
GenAI model's two last misses showed three more: the web front end that renders an LLM application's
answers got no LLM Response Rendering (AML.T0077 targeted LLM applications only), the job that indexes
untrusted documents into a RAG corpus got no RAG poisoning (AML.T0070: the corpus and the vector store only),
the job or labelling tool that writes a training dataset got no training data poisoning (AML.T0020: the
dataset and the training pipeline only).
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
    """The bench's ML figure on the GenAI/RAG Threagile model: measured 1.00 (27 of 27 hand-written
    (risk, asset) pairs; before the derivations 0.778, then 0.926 before the response renderer and the RAG
    ingestion pipeline roles, whose misses were insecure output handling on the portal and indirect prompt
    injection on the ingestion pipeline)."""
    out = tmp_path / "fidelity.json"
    model = ROOT / "bench" / "fidelity" / "models" / "threagile-genai-rag-support.yaml"
    subprocess.run([sys.executable, str(ROOT / "bench" / "fidelity.py"), "--json", str(out), str(model)],
                   check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text(encoding="utf-8"))["models"][0]
    assert result["error"] == "" and result["ml_pairs"] == 27 and result["ml_unclassified"] == []
    knowledge = result["runs"]["knowledge"]
    assert knowledge["ml_recall"] >= 1.0, knowledge["missed_ml"]
    # without knowledge the mappings' techniques are cited unresolved (issue 13): the same figure
    assert result["runs"]["plain"]["ml_recall"] == knowledge["ml_recall"]


PIPELINES = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <https://example.org/roles#> .
ex:internet a tg:TrustZone ; rdfs:label "Internet" ; tg:trustLevel 0 .
ex:app a tg:TrustZone ; rdfs:label "App zone" ; tg:trustLevel 2 .
ex:forum a tg:ExternalEntity ; rdfs:label "public forum" ; tg:inZone ex:internet .
ex:web a tg:Process ; rdfs:label "chat front end" ; tg:webApplication true ; tg:inZone ex:app .
ex:admin a tg:Process ; rdfs:label "admin console" ; tg:webApplication true ; tg:inZone ex:app .
ex:rag a tgml:LLMApplication ; rdfs:label "assistant" ; tg:inZone ex:app .
ex:corpus a tgml:RAGCorpus ; rdfs:label "corpus" ; tg:inZone ex:app .
ex:ingest a tg:Process ; rdfs:label "document sync" ; tg:inZone ex:app .
ex:embed a tgml:EmbeddingModel ; rdfs:label "embedder" ; tg:inZone ex:app .
ex:etl a tg:Process ; rdfs:label "order export" ; tg:inZone ex:app .
ex:orders a tg:DataStore ; rdfs:label "orders" ; tg:inZone ex:app .
ex:labeler a tg:Process ; rdfs:label "case review tool" ; tg:inZone ex:app .
ex:lake a tg:DataStore ; rdfs:label "data lake" ; tg:inZone ex:app .
ex:train a tgml:TrainingPipeline ; rdfs:label "training" ; tg:inZone ex:app .
ex:reader a tg:Process ; rdfs:label "report job" ; tg:inZone ex:app .
ex:p1 a tg:DataFlow ; rdfs:label "ask" ; tg:source ex:web ; tg:target ex:rag .
ex:p2 a tg:DataFlow ; rdfs:label "admin to orders" ; tg:source ex:admin ; tg:target ex:orders .
ex:p3 a tg:DataFlow ; rdfs:label "pull threads" ; tg:source ex:forum ; tg:target ex:ingest .
ex:p4 a tg:DataFlow ; rdfs:label "store chunks" ; tg:source ex:ingest ; tg:target ex:corpus .
ex:p5 a tg:DataFlow ; rdfs:label "store vectors" ; tg:source ex:embed ; tg:target ex:corpus .
ex:p6 a tg:DataFlow ; rdfs:label "export" ; tg:source ex:etl ; tg:target ex:orders .
ex:p7 a tg:DataFlow ; rdfs:label "disputes" ; tg:source ex:forum ; tg:target ex:labeler .
ex:p8 a tg:DataFlow ; rdfs:label "write labels" ; tg:source ex:labeler ; tg:target ex:lake .
ex:p9 a tg:DataFlow ; rdfs:label "read lake" ; tg:source ex:lake ; tg:target ex:train .
ex:p10 a tg:DataFlow ; rdfs:label "report" ; tg:source ex:lake ; tg:target ex:reader .
ex:provider a tgml:LLMProvider ; rdfs:label "hosted LLM API" .
ex:templates a tgml:PromptTemplate ; rdfs:label "prompt templates" ; tg:inZone ex:app .
ex:backend a tg:Process ; rdfs:label "review backend" ; tg:inZone ex:app .
ex:embedjob a tg:Process ; rdfs:label "embedding job" ; tg:inZone ex:app .
ex:p11 a tg:DataFlow ; rdfs:label "load template" ; tg:source ex:templates ; tg:target ex:backend .
ex:p12 a tg:DataFlow ; rdfs:label "completion" ; tg:source ex:backend ; tg:target ex:provider .
ex:p13 a tg:DataFlow ; rdfs:label "embed" ; tg:source ex:embedjob ; tg:target ex:provider .
ex:fraudmodel a tgml:InferenceEndpoint ; rdfs:label "fraud scorer" ; tg:inZone ex:app .
ex:checkout a tg:Process ; rdfs:label "checkout" ; tg:inZone ex:app .
ex:p14 a tg:DataFlow ; rdfs:label "score" ; tg:source ex:checkout ; tg:target ex:fraudmodel .
ex:p15 a tg:DataFlow ; rdfs:label "read scores" ; tg:source ex:labeler ; tg:target ex:fraudmodel .
"""


@pytest.fixture
def pipelines(store: Store, tmp_path: Path) -> list[Finding]:
    """The pipelines model analysed afresh for each test (the store is shared with the tests above)."""
    model = tmp_path / "pipelines.ttl"
    model.write_text(PIPELINES, encoding="utf-8")
    Engine(store).analyze([str(model)])
    return read_findings(store, labels_of(store))


def test_web_application_rendering_llm_answers_gets_response_rendering(store: Store, pipelines: list[Finding]) -> None:
    assert "LLMResponseRenderer" in types(store, "web")
    assert "AML.T0077" in techniques(pipelines, "web")  # LLM Response Rendering
    # negative: a web application that exchanges nothing with an LLM application renders no LLM answers
    assert "LLMResponseRenderer" not in types(store, "admin")
    assert "AML.T0077" not in techniques(pipelines, "admin")


def test_job_indexing_untrusted_documents_gets_rag_poisoning(store: Store, pipelines: list[Finding]) -> None:
    assert "RAGIngestionPipeline" in types(store, "ingest")
    assert "AML.T0070" in techniques(pipelines, "ingest")  # RAG Poisoning, the forum's threads reach it
    # negative: a job writing a plain store, and an embedding service (its own class) writing the corpus
    assert "RAGIngestionPipeline" not in types(store, "etl")
    assert "RAGIngestionPipeline" not in types(store, "embed")
    assert "AML.T0070" not in techniques(pipelines, "etl")


def test_tool_writing_training_data_gets_poisoning(store: Store, pipelines: list[Finding]) -> None:
    assert "TrainingDataset" in types(store, "lake")  # read by the training pipeline
    assert "TrainingDataWriter" in types(store, "labeler")  # also a prediction consumer (reads the scores)
    assert "PredictionConsumer" in types(store, "labeler")
    assert "AML.T0020" in techniques(pipelines, "labeler")  # Poison Training Data, the forum reaches it
    # negative: a job that only reads the dataset, and one that writes a store nothing trains on
    assert "TrainingDataWriter" not in types(store, "reader")
    assert "TrainingDataWriter" not in types(store, "etl")
    assert "AML.T0020" not in techniques(pipelines, "reader")
    # a job writing only a RAG corpus is no training data writer
    assert "TrainingDataWriter" not in types(store, "ingest")


def test_process_filling_templates_for_an_llm_is_an_llm_application(store: Store, pipelines: list[Finding]) -> None:
    """A backend described only by what it does (reads prompt templates, calls a hosted LLM) is an LLM
    application, with the application techniques (system prompt extraction AML.T0056 targets applications
    and templates)."""
    assert "LLMApplication" in types(store, "backend")
    assert "AML.T0056" in techniques(pipelines, "backend")
    # negative: a job that only sends data to the provider (embeddings) builds no prompts
    assert "LLMApplication" not in types(store, "embedjob")
    assert "AML.T0056" not in techniques(pipelines, "embedjob")


def test_process_acting_on_a_model_score_gets_evasion(store: Store, pipelines: list[Finding]) -> None:
    """ATLAS AML.T0015 evades "a downstream task where AI is utilized": the checkout that acts on the fraud
    score is that task."""
    assert "PredictionConsumer" in types(store, "checkout")
    assert "AML.T0015" in techniques(pipelines, "checkout")
    # negative: a caller of an LLM (the web front end calls the LLM application; the backend calls a hosted
    # LLM) is no prediction consumer, nor is a process that calls no model
    assert "PredictionConsumer" not in types(store, "backend")
    assert "PredictionConsumer" not in types(store, "etl")
    assert "AML.T0015" not in techniques(pipelines, "etl")


HOSTED = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <https://example.org/roles#> .
ex:internet a tg:TrustZone ; rdfs:label "Internet" ; tg:trustLevel 0 .
ex:app a tg:TrustZone ; rdfs:label "App zone" ; tg:trustLevel 2 .
ex:customer a tg:ExternalEntity ; rdfs:label "customer" ; tg:inZone ex:internet ; tg:untrustedOrigin true .
ex:upload a tg:Process ; rdfs:label "upload service" ; tg:inZone ex:app .
ex:parser a tg:Process ; rdfs:label "document parser" ; tg:inZone ex:app .
ex:report a tg:Process ; rdfs:label "report job" ; tg:inZone ex:app .
ex:provider a tgml:LLMProvider ; rdfs:label "hosted LLM API" ; tg:inZone ex:internet .
ex:agent a tgml:LLMAgent ; rdfs:label "ops agent" ; tg:inZone ex:app .
ex:sandbox a tgml:CodeExecutionTool ; rdfs:label "code interpreter" ; tg:inZone ex:app .
ex:jira a tgml:AgentTool ; rdfs:label "ticket tool" ; tg:inZone ex:app .
ex:h1 a tg:DataFlow ; rdfs:label "upload" ; tg:source ex:customer ; tg:target ex:upload .
ex:h2 a tg:DataFlow ; rdfs:label "parse" ; tg:source ex:upload ; tg:target ex:parser .
ex:h3 a tg:DataFlow ; rdfs:label "embed chunks" ; tg:source ex:parser ; tg:target ex:provider .
ex:h4 a tg:DataFlow ; rdfs:label "report" ; tg:source ex:upload ; tg:target ex:report .
ex:h5 a tg:DataFlow ; rdfs:label "ask" ; tg:source ex:customer ; tg:target ex:agent .
ex:h6 a tg:DataFlow ; rdfs:label "run code" ; tg:source ex:agent ; tg:target ex:sandbox .
ex:h7 a tg:DataFlow ; rdfs:label "open ticket" ; tg:source ex:agent ; tg:target ex:jira .
"""


@pytest.fixture
def hosted(store: Store, tmp_path: Path) -> list[Finding]:
    model = tmp_path / "hosted.ttl"
    model.write_text(HOSTED, encoding="utf-8")
    Engine(store).analyze([str(model)])
    return read_findings(store, labels_of(store))


def test_process_calling_a_hosted_provider_gets_cost_harvesting(store: Store, hosted: list[Finding]) -> None:
    """A job that only sends chunks to a hosted provider is a tgml:HostedModelClient (z-hosted-model-client.rq):
    cost harvesting (AML.T0034) runs the bill up through it; the provider itself gets the hosted-provider rules
    (disclosure of what is sent, dependency and cost, unvalidated output) with their ATLAS techniques."""
    assert "HostedModelClient" in types(store, "parser")
    assert "AML.T0034" in techniques(hosted, "parser")
    rules = {f.rule_id for f in hosted if f.focus == EX + "provider"}
    assert {"TG-STRIDE-I-036", "TG-STRIDE-D-031", "TG-STRIDE-T-040"} <= rules
    assert {"AML.T0034", "AML.T0010"} <= techniques(hosted, "provider")
    # negative: a job that calls no provider (it receives the same untrusted uploads)
    assert "HostedModelClient" not in types(store, "report")
    assert "AML.T0034" not in techniques(hosted, "report")


def test_code_execution_tool_gets_interpreter_techniques(store: Store, hosted: list[Finding]) -> None:
    """An agent tool that runs the model's code is where command and scripting execution happens (AML.T0050)."""
    assert "AgentTool" in types(store, "sandbox")  # by the OWL closure: a code execution tool is an agent tool
    assert "AML.T0050" in techniques(hosted, "sandbox")
    # negative: an agent tool that runs no code
    assert "AML.T0050" not in techniques(hosted, "jira")
