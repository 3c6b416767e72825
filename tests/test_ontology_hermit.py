"""The ontology modules are OWL 2 DL, consistent and free of unsatisfiable classes (HermiT via owlready2).

HermiT runs in Java (owlready2 bundles HermiT.jar and calls ``java`` on the PATH; set ``JAVA_HOME`` to
use another JVM). The tests are skipped, with the reason shown, when owlready2 or Java is missing.
Each test loads every ``ontology/*.ttl`` into one rdflib graph, writes it as RDF/XML and hands it to
HermiT in a fresh owlready2 ``World`` so that the tests do not share state.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from rdflib import OWL, RDF, RDFS, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY_DIR = ROOT / "ontology"
EXAMPLES_DIR = ROOT / "data" / "examples"

TG = Namespace("https://w3id.org/threatgraph/ontology#")
TGML = Namespace("https://w3id.org/threatgraph/ml#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
XSD_DURATION = URIRef("http://www.w3.org/2001/XMLSchema#duration")
BAD = Namespace("http://example.org/hermit-negative#")

KINDS = (TG.ExternalEntity, TG.Process, TG.DataStore, TG.DataFlow)

# The contract other modules (mappings, rules) are written against: ML class -> element kind.
EXPECTED_ML_CLASSES: dict[str, URIRef] = {
    **{n: TG.ExternalEntity for n in (
        "ThirdPartyDataSource", "WebScrapedDataSource", "LabelingService", "MLDependency", "ModelHub",
        "LLMProvider", "HumanReviewer", "EndUser", "ModelConsumerApp")},
    **{n: TG.Process for n in (
        "DataPreparationPipeline", "FeaturePipeline", "NotebookEnvironment", "TrainingPipeline",
        "TrainingCluster", "ModelEvaluation", "ModelCICD", "InferenceEndpoint", "LLMInferenceEndpoint", "BatchScoringJob",
        "ModelMonitoring", "LLMApplication", "LLMAgent", "AgentTool", "EmbeddingModel", "Guardrail",
        # derived roles (queries/derive/, issue 13)
        "LLMResponseRenderer", "RAGIngestionPipeline", "TrainingDataWriter", "PredictionConsumer",
        "HostedModelClient", "CodeExecutionTool")},
    **{n: TG.DataStore for n in (
        "FirstPartyDataSource", "UserFeedbackData", "Dataset", "RawDataset", "TrainingDataset",
        "ValidationDataset", "TestDataset", "FeatureStore", "ExperimentTracker", "ModelArtifact",
        "PretrainedModel", "FoundationModel", "FineTunedModel", "ModelRegistry", "PromptTemplate",
        "AgentMemory", "VectorStore", "RAGCorpus", "InferenceLogStore")},
}
# tgml classes that are not element kinds (vocabulary support classes).
ML_SUPPORT_CLASSES = {TGML.LifecycleStage, TGML.ModelOriginKind}
LIFECYCLE_STAGES = {TGML[n] for n in (
    "DataCollection", "DataPreparation", "ModelDevelopment", "ModelEvaluationStage", "ModelDeployment",
    "ModelOperation", "CrossCutting")}


# ------------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ontology_graph() -> Graph:
    """All ontology modules merged into one graph."""
    files = sorted(ONTOLOGY_DIR.glob("*.ttl"))
    assert files, f"no ontology modules in {ONTOLOGY_DIR}"
    graph = Graph()
    for path in files:
        graph.parse(path, format="turtle")
    return graph


@pytest.fixture(scope="module")
def owlready2() -> Any:
    """The owlready2 module configured to find Java, or skip with the reason."""
    module = pytest.importorskip("owlready2", reason="owlready2 (test extra) is not installed")
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        pytest.skip("Java is not installed (HermiT needs a JVM; set JAVA_HOME or put java on PATH)")
    module.JAVA_EXE = java
    return module


class HermitResult:
    """Outcome of one HermiT run."""

    def __init__(self, consistent: bool, unsatisfiable: set[str], world: Any) -> None:
        self.consistent = consistent
        self.unsatisfiable = unsatisfiable
        self.world = world


def run_hermit(owlready2: Any, graph: Graph, tmp_path: Path, name: str = "merged") -> HermitResult:
    """Serialize ``graph`` to RDF/XML, load it into a fresh World and classify it with HermiT."""
    path = tmp_path / f"{name}.owl"
    graph.serialize(destination=path, format="xml")
    world = owlready2.World()
    onto = world.get_ontology(path.as_uri()).load()
    try:
        with onto:
            owlready2.sync_reasoner(world, infer_property_values=False, debug=0)
    except owlready2.OwlReadyInconsistentOntologyError:
        return HermitResult(False, set(), world)
    unsat = {c.iri for c in world.inconsistent_classes()}
    nothing = world["http://www.w3.org/2002/07/owl#Nothing"]
    unsat |= {c.iri for c in nothing.equivalent_to if hasattr(c, "iri")}
    return HermitResult(True, unsat, world)


def with_extra(graph: Graph, triples: list[tuple[Any, Any, Any]]) -> Graph:
    """A copy of ``graph`` with ``triples`` added."""
    copy = Graph()
    for triple in graph:
        copy.add(triple)
    for triple in triples:
        copy.add(triple)
    return copy


def ancestors(graph: Graph, cls: URIRef) -> set[URIRef]:
    """Named superclasses of ``cls`` (reflexive, transitive over rdfs:subClassOf)."""
    return {c for c in graph.transitive_objects(cls, RDFS.subClassOf) if isinstance(c, URIRef)}


def ml_classes(graph: Graph) -> set[URIRef]:
    """Named owl:Class declarations in the tgml namespace."""
    return {c for c in graph.subjects(RDF.type, OWL.Class)
            if isinstance(c, URIRef) and str(c).startswith(str(TGML))}


# ------------------------------------------------------------------------------------------------
# HermiT: consistency and satisfiability
# ------------------------------------------------------------------------------------------------
def test_ontology_is_consistent_and_all_classes_satisfiable(
        owlready2: Any, ontology_graph: Graph, tmp_path: Path) -> None:
    result = run_hermit(owlready2, ontology_graph, tmp_path)
    assert result.consistent, "HermiT: the merged ontology modules are inconsistent"
    assert result.unsatisfiable == set(), f"unsatisfiable classes: {sorted(result.unsatisfiable)}"
    # HermiT really classified the taxonomy: inferred (not asserted) subsumptions are present.
    agent = result.world[str(TGML.LLMAgent)]
    assert result.world[str(TG.Process)] in agent.ancestors()
    log_store = result.world[str(TGML.InferenceLogStore)]
    assert result.world[str(TG.LogStore)] in log_store.ancestors(), \
        "InferenceLogStore should be classified under tg:LogStore (holdsLogs true)"


def test_hermit_detects_a_class_under_two_element_kinds(
        owlready2: Any, ontology_graph: Graph, tmp_path: Path) -> None:
    """Negative: a class that is both a process and a data store is unsatisfiable."""
    bad = with_extra(ontology_graph, [
        (BAD.ServingStore, RDF.type, OWL.Class),
        (BAD.ServingStore, RDFS.subClassOf, TG.Process),
        (BAD.ServingStore, RDFS.subClassOf, TG.DataStore),
        # misplacing an ML class under a second kind makes it (and its subclasses) unsatisfiable
        (TGML.VectorStore, RDFS.subClassOf, TGML.InferenceEndpoint),
    ])
    result = run_hermit(owlready2, bad, tmp_path, "bad-class")
    assert result.consistent  # no individual is affected, only classes
    assert {str(BAD.ServingStore), str(TGML.VectorStore)} <= result.unsatisfiable


def test_hermit_detects_an_individual_of_two_element_kinds(
        owlready2: Any, ontology_graph: Graph, tmp_path: Path) -> None:
    """Negative: an element typed both as an inference endpoint and a model artifact is inconsistent."""
    bad = with_extra(ontology_graph, [
        (BAD.model, RDF.type, TGML.InferenceEndpoint),
        (BAD.model, RDF.type, TGML.ModelArtifact),
    ])
    assert not run_hermit(owlready2, bad, tmp_path, "bad-individual").consistent


def test_hermit_detects_ml_property_misuse(owlready2: Any, ontology_graph: Graph, tmp_path: Path) -> None:
    """Negative: tgml:trainedOn on a pipeline (a process) contradicts its domain ModelArtifact."""
    bad = with_extra(ontology_graph, [
        (BAD.pipeline, RDF.type, TGML.TrainingPipeline),
        (BAD.pipeline, TGML.trainedOn, BAD.data),
    ])
    assert not run_hermit(owlready2, bad, tmp_path, "bad-property").consistent
    ok = with_extra(ontology_graph, [
        (BAD.model, RDF.type, TGML.FineTunedModel),
        (BAD.model, TGML.trainedOn, BAD.data),
        (BAD.model, TGML.modelOrigin, TGML.InternalOrigin),
    ])
    assert run_hermit(owlready2, ok, tmp_path, "ok-property").consistent


def test_examples_are_consistent_with_the_ontology(
        owlready2: Any, ontology_graph: Graph, tmp_path: Path) -> None:
    """The example system models, loaded with the ontology, are consistent for HermiT."""
    files = sorted(EXAMPLES_DIR.glob("*.ttl"))
    assert len(files) >= 3
    merged = with_extra(ontology_graph, [])
    for path in files:
        merged.parse(path, format="turtle")
    # HermiT supports only the OWL 2 datatype map, which has no xsd:duration: leave out the
    # tg:retentionPeriod values (and only those) before reasoning.
    durations = [(s, p, o) for s, p, o in merged
                 if isinstance(o, Literal) and o.datatype == XSD_DURATION]
    assert durations and {p for _, p, _ in durations} == {TG.retentionPeriod}
    for triple in durations:
        merged.remove(triple)
    result = run_hermit(owlready2, merged, tmp_path, "examples")
    assert result.consistent, "the example models contradict the ontology"
    assert result.unsatisfiable == set()


# ------------------------------------------------------------------------------------------------
# Taxonomy shape (rdflib only)
# ------------------------------------------------------------------------------------------------
def test_ml_classes_match_the_published_names(ontology_graph: Graph) -> None:
    declared = ml_classes(ontology_graph)
    expected = {TGML[n] for n in EXPECTED_ML_CLASSES}
    assert expected - declared == set(), "missing ML classes"
    assert declared - expected - ML_SUPPORT_CLASSES == set(), "undocumented tgml classes (add them here)"
    for name, kind in EXPECTED_ML_CLASSES.items():
        assert kind in ancestors(ontology_graph, TGML[name]), f"tgml:{name} should be under {kind}"


def test_every_ml_class_is_documented_and_under_exactly_one_kind(ontology_graph: Graph) -> None:
    element_classes = ml_classes(ontology_graph) - ML_SUPPORT_CLASSES
    assert len(element_classes) >= 30
    for cls in sorted(element_classes):
        labels = list(ontology_graph.objects(cls, RDFS.label))
        definitions = list(ontology_graph.objects(cls, SKOS.definition))
        stages = list(ontology_graph.objects(cls, TGML.lifecycleStage))
        assert len(labels) == 1 and isinstance(labels[0], Literal) and labels[0].language == "en", cls
        assert len(definitions) == 1 and len(str(definitions[0]).split()) >= 6, cls
        assert len(stages) == 1 and stages[0] in LIFECYCLE_STAGES, cls
        kinds = [k for k in KINDS if k in ancestors(ontology_graph, cls)]
        assert len(kinds) == 1, f"{cls} is under {kinds}"


def test_lifecycle_scheme_is_complete(ontology_graph: Graph) -> None:
    in_scheme = set(ontology_graph.subjects(SKOS.inScheme, TGML.LifecycleScheme))
    assert in_scheme == LIFECYCLE_STAGES
    for stage in in_scheme:
        assert ontology_graph.value(stage, SKOS.prefLabel) is not None
        assert ontology_graph.value(stage, SKOS.definition) is not None
    # every stage is used by at least one class
    used = set(ontology_graph.objects(None, TGML.lifecycleStage))
    assert used == LIFECYCLE_STAGES


def test_ml_properties_are_declared(ontology_graph: Graph) -> None:
    object_props = {"trainedOn", "fineTunedFrom", "modelOrigin", "usesModel", "usesGuardrail",
                    "mayCallTool", "retrievesFrom", "feedsFrom"}
    data_props = {"noGuardrails", "trainedOnPersonalData"}
    for name in object_props:
        assert (TGML[name], RDF.type, OWL.ObjectProperty) in ontology_graph, name
    for name in data_props:
        assert (TGML[name], RDF.type, OWL.DatatypeProperty) in ontology_graph, name
    for name in object_props | data_props:
        assert ontology_graph.value(TGML[name], RDFS.label) is not None, name
        assert ontology_graph.value(TGML[name], SKOS.definition) is not None, name
        assert ontology_graph.value(TGML[name], RDFS.range) is not None, name
    assert (TGML.lifecycleStage, RDF.type, OWL.AnnotationProperty) in ontology_graph
    origins = ontology_graph.value(
        ontology_graph.value(TGML.ModelOriginKind, OWL.equivalentClass), OWL.oneOf)
    assert isinstance(origins, BNode)
    assert set(Collection(ontology_graph, origins)) == {
        TGML.PublicHubOrigin, TGML.VendorOrigin, TGML.InternalOrigin}
    # the log store restriction that makes STRIDE repudiation apply
    restrictions = [r for r in ontology_graph.objects(TGML.InferenceLogStore, RDFS.subClassOf)
                    if isinstance(r, BNode)]
    assert any(ontology_graph.value(r, OWL.onProperty) == TG.holdsLogs
               and ontology_graph.value(r, OWL.hasValue) == Literal(True) for r in restrictions)
