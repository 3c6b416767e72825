"""ML classes from what imports carry (issue 13): the shipped phrase table (data/ml-classes.conf), every
importer's signals, the warning each inferred class prints (element path + reason), a user's mapping file
(--ml-classes: tried first, ``none`` stops a phrase) and its errors (exit 2, file:line, no traceback)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import rdflib
import yaml
from rdflib.namespace import RDF, RDFS

from threatgraph import resources
from threatgraph.analysis.model import load_model_files
from threatgraph.cli import main
from threatgraph.errors import InputError
from threatgraph.interchange import convert_file
from threatgraph.interchange.common import KIND_OF, ImportResult, ml_class_from_text
from threatgraph.interchange.mlclasses import default_table, parse_table, read_table, table
from threatgraph.terms import TG, TGML

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "interchange"
U = rdflib.URIRef


def _ml(g: rdflib.Graph, label: str) -> set[str]:
    """The tgml: classes of the element labelled ``label``."""
    nodes = [s for s in g.subjects(RDFS.label, rdflib.Literal(label))]
    assert len(nodes) == 1, (label, nodes)
    return {str(c).removeprefix(str(TGML)) for c in g.objects(nodes[0], RDF.type) if str(c).startswith(str(TGML))}


def _write(tmp: Path, name: str, doc: Any) -> Path:
    p = tmp / name
    p.write_text(yaml.safe_dump(doc) if name.endswith(".yaml") else json.dumps(doc), encoding="utf-8")
    return p


def _threagile(assets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"threagile_version": "1.0.0", "title": "ML", "technical_assets":
            {k: {"id": k, **v} for k, v in assets.items()}}


# -- the shipped table ---------------------------------------------------------------------------------------
def test_shipped_table_kinds_agree_with_the_ontology() -> None:
    """Every class of [classes] is under the core kind the file says in ontology/ml.ttl, and none is missing."""
    g = rdflib.Graph()
    for f in (REPO / "ontology").glob("*.ttl"):
        g.parse(f)
    onto: dict[str, str] = {}
    for s in set(g.subjects(RDFS.subClassOf, None)):
        if str(s).startswith(str(TGML)):
            anc = set(g.transitive_objects(s, RDFS.subClassOf))
            for k in ("ExternalEntity", "Process", "DataStore"):
                if U(TG[k]) in anc:
                    onto[str(s).removeprefix(str(TGML))] = k
    assert len(onto) > 30
    assert default_table().kinds == onto


def test_shipped_phrases_are_the_former_table() -> None:
    """The phrases moved out of Python in the former order (32), plus the model-server phrase (an LLM
    named by what it serves: issue 13, an internal LLM behind a portal), plus 16 lines of practitioners'
    words (frameworks, products, model names; issue 13, the fidelity bench's agentic and fraud models), each
    after the line it extends so that the former phrases keep winning, plus code-execution tools and hosted
    products and model names on external entities (issue 13, hosted providers); one class each (35 classes named)."""
    t = default_table()
    assert [p.cls for p in t.phrases][:5] == ["LLMAgent", "LLMApplication", "LLMAgent", "LLMApplication", "Guardrail"]
    assert len(t.phrases) == 51 and all(p.cls for p in t.phrases)
    assert len(KIND_OF) == 35 and KIND_OF["VectorStore"] == "DataStore" and KIND_OF["ModelHub"] == "ExternalEntity"


@pytest.mark.parametrize(("text", "kind", "cls"), [
    ("LangGraph agent that plans tasks and calls tools through function calling", "Process", "LLMAgent"),
    ("Agent Orchestrator", "Process", "LLMAgent"),
    ("Backend built with LangChain", "Process", "LLMApplication"),
    ("MCP server exposing the agent's tools", "Process", "AgentTool"),
    ("Mixtral 8x7B Instruct served by TGI", "Process", "LLMInferenceEndpoint"),
    ("JupyterHub", "Process", "NotebookEnvironment"),
    ("Notebooks of the data scientists", "Process", "NotebookEnvironment"),
    ("Document ingestion job", "Process", "RAGIngestionPipeline"),
    ("Postgres with pgvector holding the agent's long-term memory", "DataStore", "AgentMemory"),
    ("Pinecone index of contract chunks", "DataStore", "VectorStore"),
    ("a Qdrant vector db", "DataStore", "VectorStore"),
    ("Azure OpenAI Service", "ExternalEntity", "LLMProvider"),
    ("Amazon Bedrock", "ExternalEntity", "LLMProvider"),
    ("Content moderation service", "Process", "Guardrail"),
    ("SageMaker endpoint", "Process", "InferenceEndpoint"),
    ("Model training", "Process", "TrainingPipeline"),
    ("Fine-tuning job", "Process", "TrainingPipeline"),
    ("Chat history", "DataStore", "AgentMemory"),
    ("Feast online store", "DataStore", "FeatureStore"),
    ("Prompt library", "DataStore", "PromptTemplate"),
    ("Model checkpoints", "DataStore", "ModelArtifact"),
    ("Code Interpreter Sandbox", "Process", "CodeExecutionTool"),
    ("gVisor container that executes the Python code the agent writes", "Process", "CodeExecutionTool"),
    ("GPT-4o", "ExternalEntity", "LLMProvider"),
    ("Anthropic Claude", "ExternalEntity", "LLMProvider"),
    ("Google Gemini", "ExternalEntity", "LLMProvider"),
    ("Mistral La Plateforme", "ExternalEntity", "LLMProvider"),
    ("Llama 3.1 on a hosted inference service", "ExternalEntity", "LLMProvider"),
    ("Agent orchestrator with a code interpreter tool", "Process", "LLMAgent"),  # the agent phrase wins
    ("Hugging Face Hub with the Llama weights", "ExternalEntity", "ModelHub"),   # a hub named as such wins
])
def test_practitioners_words(text: str, kind: str, cls: str) -> None:
    """Positive: the words people write in Threagile descriptions, names and tags (frameworks, products,
    model names) give the class."""
    assert ml_class_from_text(text, kind) == TGML[cls]


@pytest.mark.parametrize(("text", "kind"), [
    ("Datadog agent on every node", "Process"),       # an agent that is no LLM agent
    ("Customer support assistant team", "ExternalEntity"),  # a kind no such phrase names
    ("Memory cache (Redis)", "DataStore"),            # a cache is no agent memory
    ("Order ingestion job", "Process"),               # ingestion of anything but documents for RAG
    ("Mistral clause library", "DataStore"),          # a model name on a data store makes no model server
    ("Service that fills the template and calls GPT-4o", "Process"),  # a model's name: its caller says it too
    ("Training room booking", "DataStore"),           # training not of a model
    ("Chat history", "Process"),                      # a store phrase on a process
    ("Scoring API", "Process"),                       # the front that calls the model is named so too
    ("Model store", "DataStore"),                     # too vague: a catalogue of product models
    ("Claude review worker", "DataStore"),            # a model name on a store: no class (providers are external)
    ("Shell of the build agent host", "ExternalEntity"),  # no code execution tool outside the system
])
def test_practitioners_words_negative(text: str, kind: str) -> None:
    assert ml_class_from_text(text, kind) is None


def test_an_llm_named_by_what_it_serves_is_an_llm_inference_endpoint() -> None:
    """Positive: a process described only by its model or server; negative: the LLM application and agent
    phrases still win, and a data store or an external provider is not made a model server."""
    assert ml_class_from_text("Self-hosted Llama 3 70B served with vLLM", "Process") == TGML.LLMInferenceEndpoint
    assert ml_class_from_text("Internal LLM", "Process") == TGML.LLMInferenceEndpoint
    assert ml_class_from_text("LLM application (RAG)", "Process") == TGML.LLMApplication
    assert ml_class_from_text("LLM agent", "Process") == TGML.LLMAgent
    assert ml_class_from_text("LLM response cache", "DataStore") is None
    assert ml_class_from_text("OpenAI LLM API", "ExternalEntity") == TGML.LLMProvider
    assert ml_class_from_text("Billing service", "Process") is None


def test_default_file_found_in_an_installed_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed wheel has the file at threatgraph/_data/ml-classes.conf (pyproject force-include); a
    checkout reads data/ml-classes.conf."""
    assert resources.ml_classes_file() == REPO / "data" / "ml-classes.conf"
    (tmp_path / "_data").mkdir()
    (tmp_path / "_data" / "ml-classes.conf").write_text("[classes]\nVectorStore = DataStore\n", encoding="utf-8")
    monkeypatch.setattr(resources, "_PKG", tmp_path)
    assert resources.ml_classes_file() == tmp_path / "_data" / "ml-classes.conf"
    if sys.version_info >= (3, 11):
        import tomllib

        force = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
            "force-include"]
        assert force["data/ml-classes.conf"] == "threatgraph/_data/ml-classes.conf"


# -- each importer's signals ---------------------------------------------------------------------------------
def test_threagile_ai_technology_refined_by_words(tmp_path: Path) -> None:
    """Threagile's technology ai says only "AI": the phrases name which (with a warning); without words the
    ai class of the kind stays (no warning). Before, every ai process was a plain inference endpoint, so an
    ai asset described as a RAG application or a self-hosted LLM got none of the LLM techniques."""
    res = convert_file(_write(tmp_path, "m.yaml", _threagile({
        "assistant": {"type": "process", "technology": "ai", "description": "RAG application built with LangChain"},
        "llm": {"type": "process", "technology": "ai", "description": "Mixtral 8x7B served by TGI"},
        "index": {"type": "datastore", "technology": "ai", "description": "Pinecone index of the documents"},
        "scorer": {"type": "process", "technology": "ai", "description": "fraud scores for payments"},
        "weights": {"type": "datastore", "technology": "ai"},
    })))
    assert isinstance(res, ImportResult)
    g = res.graph
    assert _ml(g, "assistant") == {"LLMApplication"}
    assert _ml(g, "llm") == {"LLMInferenceEndpoint"}
    assert _ml(g, "index") == {"VectorStore"}
    # negative: no phrase matches, the ai class of the kind, no warning
    assert _ml(g, "scorer") == {"InferenceEndpoint"} and _ml(g, "weights") == {"ModelArtifact"}
    assert any("/technical_assets/assistant: classed tgml:LLMApplication" in w for w in res.classed)
    assert not any("/technical_assets/scorer" in w or "/technical_assets/weights" in w for w in res.classed)


def test_threagile_technology_tags_name_description(tmp_path: Path) -> None:
    res = convert_file(_write(tmp_path, "m.yaml", _threagile({
        "rag-index": {"type": "datastore", "technologies": ["database"], "tags": ["vector-database"]},
        "model-registry": {"type": "datastore", "technology": "database"},
        "bot": {"type": "process", "technology": "web-service-rest", "description": "the customer chatbot"},
        "scorer": {"type": "process", "technology": "ai"},
        "store": {"type": "datastore", "tags": ["tgml:FeatureStore"]},
        "orders": {"type": "datastore", "technology": "database", "description": "orders, no vectors"},
        "writer": {"type": "process", "description": "writes to the vector store"},
    })))
    assert isinstance(res, ImportResult)
    g = res.graph
    assert _ml(g, "rag-index") == {"VectorStore"}
    assert _ml(g, "model-registry") == {"ModelRegistry"}
    assert _ml(g, "bot") == {"LLMApplication"}
    assert _ml(g, "scorer") == {"InferenceEndpoint"}  # technology ai: stated, no warning
    assert _ml(g, "store") == {"FeatureStore"}  # explicit tgml: tag, no warning
    assert _ml(g, "orders") == set() and _ml(g, "writer") == set()  # a vector-store phrase for a process: no
    assert any(w.endswith(': /technical_assets/rag-index: classed tgml:VectorStore because its tag "vector-database" '
                          'says "vector database" (override with --ml-classes FILE)') for w in res.classed)
    assert any('/technical_assets/model-registry: classed tgml:ModelRegistry because its name "model-registry" says '
               '"model registry"' in w for w in res.classed)
    assert any("/technical_assets/bot: classed tgml:LLMApplication because its description says \"chatbot\"" in w
               for w in res.classed)
    assert len(res.classed) == 3, res.classed
    assert not any("scorer" in w or "/store" in w for w in res.classed)


def test_otm_type_tags_name(tmp_path: Path) -> None:
    zone = {"id": "z", "name": "Z", "risk": {"trustRating": 50}}

    def comp(cid: str, type_: str, name: str, **more: Any) -> dict[str, Any]:
        return {"id": cid, "name": name, "type": type_, "parent": {"trustZone": "z"}, **more}

    doc = {"otmVersion": "0.2.0", "project": {"id": "p", "name": "P"}, "trustZones": [zone], "components": [
        comp("a", "CD-V2-VECTOR-DATABASE", "Index"),
        comp("b", "web-service", "Helper", tags=["llm-app"]),
        comp("c", "web-service", "Support chatbot"),
        comp("d", "web-service", "Orders API"),
        comp("e", "database", "Prompts", description="tgml:PromptTemplate store"),
    ]}
    res = convert_file(_write(tmp_path, "m.otm.json", doc))
    assert res is not None
    g = res.graph
    assert _ml(g, "Index") == {"VectorStore"} and _ml(g, "Helper") == {"LLMApplication"}
    assert _ml(g, "Support chatbot") == {"LLMApplication"} and _ml(g, "Orders API") == set()
    assert _ml(g, "Prompts") == {"PromptTemplate"}
    assert any('/components/0: classed tgml:VectorStore because its type "CD-V2-VECTOR-DATABASE" says "vector database"'
               in w for w in res.classed)
    assert any('/components/1: classed tgml:LLMApplication because its tag "llm-app" says "llm app"' in w
               for w in res.classed)
    assert any('/components/2: classed tgml:LLMApplication because its name "Support chatbot" says "chatbot"' in w
               for w in res.classed)
    assert len(res.classed) == 3  # the explicit tgml: word prints nothing
    # the user's "none" stops the type table too; the element keeps its core kind
    mine = tmp_path / "mine.conf"
    mine.write_text("vector database = none\n", encoding="utf-8")
    res2 = convert_file(tmp_path / "m.otm.json", ml_classes=mine)
    assert res2 is not None
    assert _ml(res2.graph, "Index") == set()
    idx = next(res2.graph.subjects(RDFS.label, rdflib.Literal("Index")))
    assert (idx, RDF.type, U(TG.DataStore)) in res2.graph


def test_threat_dragon_name_and_description(tmp_path: Path) -> None:
    cells = [
        {"id": "1", "shape": "process", "data": {"type": "tm.Process", "name": "Embedding service"}},
        {"id": "2", "shape": "store", "data": {"type": "tm.Store", "name": "Docs", "description": "a Qdrant vector db"}},
        {"id": "3", "shape": "store", "data": {"type": "tm.Store", "name": "Orders"}},
    ]
    doc = {"summary": {"title": "T"}, "detail": {"diagrams": [{"id": 0, "title": "D", "diagramType": "STRIDE",
                                                                "cells": cells}]}}
    res = convert_file(_write(tmp_path, "td.json", doc))
    assert res is not None
    assert _ml(res.graph, "Embedding service") == {"EmbeddingModel"} and _ml(res.graph, "Docs") == {"VectorStore"}
    assert _ml(res.graph, "Orders") == set()
    assert any('/detail/diagrams/0/cells/0: classed tgml:EmbeddingModel because its name "Embedding service" says '
               '"embedding service"' in w for w in res.classed)
    assert any('/detail/diagrams/0/cells/1: classed tgml:VectorStore because its description says "vector db"' in w
               for w in res.classed)


def test_tmbom_data_store_type_and_data_sets(tmp_path: Path) -> None:
    doc = {"scope": {"title": "S", "description": "d"}, "trust_zones": [{"symbolic_name": "z", "title": "Z"}],
           "components": [{"symbolic_name": "c", "title": "Trainer", "description": "nightly training job",
                           "trust_zone": "z"}],
           "data_stores": [{"symbolic_name": "v", "title": "Index", "description": "d", "trust_zone": "z",
                            "type": "vector_database", "vendor": "Qdrant"},
                           {"symbolic_name": "s", "title": "Orders", "description": "d", "trust_zone": "z",
                            "type": "relational"}],
           "data_sets": [{"symbolic_name": "t", "title": "Training data", "description": "labelled rows",
                          "placements": [{"data_store": "s"}]}],
           "data_flows": []}
    res = convert_file(_write(tmp_path, "tm.json", doc))
    assert res is not None
    g = res.graph
    assert _ml(g, "Index") == {"VectorStore"} and _ml(g, "Orders") == set() and _ml(g, "Trainer") == {"TrainingPipeline"}
    assert _ml(g, "Training data") == {"TrainingDataset"}
    assert any('/data_stores/0: classed tgml:VectorStore because its type "vector_database" says "vector database"'
               in w for w in res.classed)
    assert any("/components/0: classed tgml:TrainingPipeline because its description says \"training job\"" in w
               for w in res.classed)
    assert any('/data_sets/0: classed tgml:TrainingDataset because its name "Training data" says "training data"' in w
               for w in res.classed)


def test_pytm_class_is_stated_name_is_inferred(tmp_path: Path) -> None:
    doc = {"name": "tm", "boundaries": [], "flows": [], "elements": [
        {"__class__": "Agent", "name": "Helper"},
        {"__class__": "Server", "name": "Embedding service"},
        {"__class__": "Server", "name": "Web"},
    ]}
    res = convert_file(_write(tmp_path, "p.json", doc))
    assert res is not None
    assert _ml(res.graph, "Helper") == {"LLMAgent"} and _ml(res.graph, "Embedding service") == {"EmbeddingModel"}
    assert _ml(res.graph, "Web") == set()
    assert [w.split(": ", 2)[2] for w in res.classed] == [
        '/elements/1: classed tgml:EmbeddingModel because its name "Embedding service" says "embedding service" '
        "(override with --ml-classes FILE)"]


def test_tmt_label_and_stencil_type_name() -> None:
    from threatgraph.interchange.tmt import convert_text

    sdl = (HERE / "sdl-template.tm7").read_text(encoding="utf-8")
    assert sdl.count(">Orders DB<") >= 1
    res = convert_text(sdl.replace(">Orders DB<", ">Orders vector DB<", 1), "m.tm7")
    assert _ml(res.graph, "Orders vector DB") == {"VectorStore"}
    assert any("/ThreatModel/DrawingSurfaceList/DrawingSurfaceModel[1]/Borders/KeyValueOfguidanyType[" in w and
               'classed tgml:VectorStore because its name "Orders vector DB" says "vector db"' in w for w in res.classed)
    plain = convert_text(sdl, "m.tm7")
    assert _ml(plain.graph, "Orders DB") == set() and not any("VectorStore" in w for w in plain.classed)
    assert any('classed tgml:TrainingPipeline because its name "Model training job" says "training job"' in w
               for w in plain.classed)


# -- the user's file -----------------------------------------------------------------------------------------
def test_user_entries_are_tried_first_and_none_suppresses(tmp_path: Path) -> None:
    model = _write(tmp_path, "m.yaml", _threagile({
        "notes": {"type": "process", "description": "Jupyter notebook for the analysts"},
        "kb": {"type": "datastore", "description": "the team knowledge base"},
        "helper": {"type": "process", "description": "chatbot embedding service"},
        "cache": {"type": "datastore", "description": "Chroma collection"},
    }))
    base = convert_file(model)
    assert base is not None
    assert _ml(base.graph, "notes") == {"NotebookEnvironment"} and _ml(base.graph, "kb") == {"RAGCorpus"}
    assert _ml(base.graph, "helper") == {"LLMApplication"} and _ml(base.graph, "cache") == set()
    mine = tmp_path / "mine.conf"
    mine.write_text("# mine\nnotebook|jupyter = none\nknowledge base = none\nchroma = tgml:VectorStore\n"
                    "chatbot = none\n", encoding="utf-8")
    res = convert_file(model, ml_classes=mine)
    assert res is not None
    assert _ml(res.graph, "notes") == set() and _ml(res.graph, "kb") == set()
    assert _ml(res.graph, "helper") == {"EmbeddingModel"}  # the stopped phrase no longer wins; the next one does
    assert _ml(res.graph, "cache") == {"VectorStore"}
    assert any(f"/technical_assets/cache: classed tgml:VectorStore because its description says \"chroma\" (your "
               f"{mine}:4; override with --ml-classes FILE)" in w for w in res.classed)
    assert not any("/notes:" in w or "/kb:" in w for w in res.classed)
    # a user's class entry beats a shipped phrase that would match too
    first = tmp_path / "first.conf"
    first.write_text("[phrases]\nknowledge base = VectorStore\n", encoding="utf-8")
    res3 = convert_file(_write(tmp_path, "k.yaml", _threagile({"kb": {"type": "datastore",
                                                                      "description": "the RAG corpus knowledge base"}})),
                        ml_classes=first)
    assert res3 is not None and _ml(res3.graph, "kb") == {"VectorStore"}


def test_load_model_files_passes_the_mapping_and_lists_the_choices(tmp_path: Path) -> None:
    model = _write(tmp_path, "m.yaml", _threagile({"idx": {"type": "datastore", "tags": ["vector-db"]}}))
    loaded = load_model_files([model])
    assert any("classed tgml:VectorStore" in w and not w.endswith("(read anyway)") for w in loaded.warnings)
    mine = tmp_path / "mine.conf"
    mine.write_text("vector db = ModelRegistry\n", encoding="utf-8")
    other = load_model_files([model], ml_classes=mine)
    assert _ml(other.graph, "idx") == {"ModelRegistry"}


@pytest.mark.parametrize(("text", "expect"), [
    ("vector db VectorStore\n", r"mine\.conf:1: expected PHRASE = CLASS"),
    ("ok = VectorStore\n\nvector db = VectorStor\n", r"mine\.conf:3: unknown class 'VectorStor' \(did you mean VectorStore"),
    ("(unclosed = VectorStore\n", r"mine\.conf:1: the phrase '\(unclosed' is not a valid regular expression"),
    ("x* = VectorStore\n", r"mine\.conf:1: the phrase 'x\*' matches empty text"),
    ("[classes]\nFoo = DataStore\n", r"mine\.conf:1: \[classes\] cannot be changed"),
    ("[extras]\n", r"mine\.conf:1: unknown section \[extras\]"),
    ("= VectorStore\n", r"mine\.conf:1: expected PHRASE = CLASS"),
])
def test_malformed_user_file_is_located(tmp_path: Path, text: str, expect: str) -> None:
    mine = tmp_path / "mine.conf"
    mine.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=expect) as err:
        read_table(mine)
    assert err.value.hint


def test_bad_user_file_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _write(tmp_path, "m.yaml", _threagile({"idx": {"type": "datastore", "tags": ["vector-db"]}}))
    bad = tmp_path / "bad.conf"
    bad.write_text("[phrases]\nvector db = Nope\n", encoding="utf-8")
    for cmd in (["import-model", "--ml-classes", str(bad), str(model)],
                ["analyze", "--ml-classes", str(bad), str(model)]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert f"{bad}:2: unknown class 'Nope'" in err and "hint:" in err and "Traceback" not in err
    binary = tmp_path / "bin.conf"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert main(["import-model", "--ml-classes", str(binary), str(model)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["import-model", "--ml-classes", str(tmp_path / "missing.conf"), str(model)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_import_model_prints_the_choice_and_honours_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _write(tmp_path, "m.yaml", _threagile({"idx": {"type": "datastore", "tags": ["vector-db"]}}))
    out = tmp_path / "out.ttl"
    assert main(["import-model", "-q", "-o", str(out), str(model)]) == 0
    err = capsys.readouterr().err
    assert ('threagile: /technical_assets/idx: classed tgml:VectorStore because its tag "vector-db" says "vector db" '
            "(override with --ml-classes FILE)") in err
    assert (None, RDF.type, U(TGML.VectorStore)) in rdflib.Graph().parse(out)
    mine = tmp_path / "mine.conf"
    mine.write_text("vector db = none\n", encoding="utf-8")
    assert main(["import-model", "-q", "--ml-classes", str(mine), "-o", str(out), str(model)]) == 0
    assert "classed" not in capsys.readouterr().err
    assert (None, RDF.type, U(TGML.VectorStore)) not in rdflib.Graph().parse(out)


def test_parsed_tables_compose() -> None:
    mine = parse_table("chroma = VectorStore\n", "mine.conf", user=True)
    t = table(mine)
    assert t.phrases[0].cls == "VectorStore" and t.phrases[0].user and len(t.phrases) == len(default_table().phrases) + 1
    assert table() is default_table()


def test_docs_example_file_parses_and_the_summary_names_the_shipped_classes() -> None:
    """docs/interchange.md: its example user file is valid and its summary table names the same classes as
    the shipped file's phrases."""
    doc = (REPO / "docs" / "interchange.md").read_text(encoding="utf-8")
    section = doc[doc.index("### ML classes from words"):doc.index("### OTM (0.2)")]
    example = section[section.index("# mine.conf"):]
    example = example[:example.index("```")]
    mine = parse_table(example, "mine.conf", user=True)
    assert [p.cls for p in mine.phrases] == ["VectorStore", "InferenceEndpoint", None]
    summary = {c for c in re.findall(r"`tgml:(\w+)`", section[section.index("| words | class | kind |"):])}
    assert summary == {p.cls for p in default_table().phrases}


def test_a_phrase_with_a_back_reference_still_matches() -> None:
    """The quick joined test of all phrases must not hide a phrase whose group numbers would shift."""
    mine = parse_table("(x|y)z = VectorStore\n(foo|bar) \\1 = VectorStore\n", "mine.conf", user=True)
    found = table(mine).classify([("name", "bar bar")], "DataStore")
    assert found is not None and found.cls == TGML.VectorStore
    assert table(mine).classify([("name", "foo bar")], "DataStore") is None
