"""The example system models in data/examples are complete, well-formed data-flow models.

A small checker (``model_problems``) lists every defect of a model against the ontology: undeclared
classes or properties, elements without exactly one kind, label, system or trust zone, flows without
a source and target element or without classified data, stores holding nothing, non-boolean security
attributes. The examples must have none; hand-made broken models must have exactly the planted ones.
Mitigations cited by the examples' controls are checked against the pinned ATLAS / ATT&CK data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from rdflib import OWL, RDF, RDFS, Graph, Literal, Namespace, URIRef

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY_DIR = ROOT / "ontology"
EXAMPLES_DIR = ROOT / "data" / "examples"
EXAMPLE_NAMES = ("rag-assistant", "tabular-platform", "health-risk")

TG = Namespace("https://w3id.org/threatgraph/ontology#")
TGML = Namespace("https://w3id.org/threatgraph/ml#")
ATLAS = "https://w3id.org/threatgraph/atlas/"
ATTACK = "https://w3id.org/threatgraph/attack/"
OWN_NAMESPACES = (str(TG), str(TGML))
KINDS = (TG.ExternalEntity, TG.Process, TG.DataStore, TG.DataFlow)
CLASSIFICATIONS = {TG.Public, TG.Internal, TG.Confidential, TG.Personal, TG.SpecialCategoryPersonal}
XSD_BOOLEAN = URIRef("http://www.w3.org/2001/XMLSchema#boolean")
EXTRA_BOOLEANS = {TG.revealsSensitiveFacts, TG.crossesBoundary, TGML.noGuardrails, TGML.trainedOnPersonalData}


@pytest.fixture(scope="module")
def ontology() -> Graph:
    graph = Graph()
    for path in sorted(ONTOLOGY_DIR.glob("*.ttl")):
        graph.parse(path, format="turtle")
    return graph


def load_example(name: str) -> Graph:
    return Graph().parse(EXAMPLES_DIR / f"{name}.ttl", format="turtle")


def superclasses(ontology: Graph, cls: URIRef) -> set[URIRef]:
    return {c for c in ontology.transitive_objects(cls, RDFS.subClassOf) if isinstance(c, URIRef)}


def elements_by_kind(model: Graph, ontology: Graph) -> dict[URIRef, set[URIRef]]:
    """Each element of ``model`` (a node typed with a subclass of tg:Element) and its element kinds."""
    kinds: dict[URIRef, set[URIRef]] = {}
    for node, cls in model.subject_objects(RDF.type):
        if not isinstance(node, URIRef) or not isinstance(cls, URIRef):
            continue
        ancestors = superclasses(ontology, cls)
        if TG.Element in ancestors:
            kinds.setdefault(node, set()).update(k for k in KINDS if k in ancestors)
    return kinds


def model_problems(model: Graph, ontology: Graph) -> list[str]:
    """Every defect of ``model`` as a readable message (empty when it is well-formed)."""
    problems: list[str] = []
    declared_classes = set(ontology.subjects(RDF.type, OWL.Class))
    declared_props = {p for t in (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty)
                      for p in ontology.subjects(RDF.type, t)}
    for cls in set(model.objects(None, RDF.type)):
        if str(cls).startswith(OWN_NAMESPACES) and cls not in declared_classes:
            problems.append(f"undeclared class {cls}")
    for prop in set(model.predicates()):
        if str(prop).startswith(OWN_NAMESPACES) and prop not in declared_props:
            problems.append(f"undeclared property {prop}")

    booleans = set(ontology.subjects(RDF.type, TG.SecurityAttribute)) | EXTRA_BOOLEANS
    for prop in booleans:
        for subject, value in model.subject_objects(prop):
            if not (isinstance(value, Literal) and value.datatype == XSD_BOOLEAN):
                problems.append(f"{subject}: {prop} must be an xsd:boolean, not {value!r}")

    kinds = elements_by_kind(model, ontology)
    for element, element_kinds in sorted(kinds.items()):
        if len(element_kinds) != 1:
            problems.append(f"{element}: needs exactly one element kind, has {sorted(element_kinds)}")
        if model.value(element, RDFS.label) is None:
            problems.append(f"{element}: no rdfs:label")
        systems = list(model.objects(element, TG.partOf))
        if len(systems) != 1 or (systems[0], RDF.type, TG.System) not in model:
            problems.append(f"{element}: needs tg:partOf one tg:System")
        if TG.DataFlow in element_kinds:
            ends = [list(model.objects(element, p)) for p in (TG.source, TG.target)]
            if any(len(e) != 1 for e in ends):
                problems.append(f"{element}: a flow needs exactly one tg:source and one tg:target")
            elif any(e[0] not in kinds or TG.DataFlow in kinds[e[0]] for e in ends):
                problems.append(f"{element}: source and target must be elements (not flows) of the model")
            elif ends[0][0] == ends[1][0]:
                problems.append(f"{element}: source and target are the same element")
            assets = list(model.objects(element, TG.carries))
            if not assets:
                problems.append(f"{element}: a flow should tg:carries a data asset")
        else:
            zones = list(model.objects(element, TG.inZone))
            if len(zones) != 1 or (zones[0], RDF.type, TG.TrustZone) not in model:
                problems.append(f"{element}: needs tg:inZone one tg:TrustZone")
            elif not isinstance(model.value(zones[0], TG.trustLevel), Literal):
                problems.append(f"{zones[0]}: trust zone without tg:trustLevel")
        if TG.DataStore in element_kinds and not list(model.objects(element, TG.holds)):
            problems.append(f"{element}: a data store should tg:holds a data asset")

    used_assets = set(model.objects(None, TG.carries)) | set(model.objects(None, TG.holds))
    for asset in used_assets | set(model.subjects(RDF.type, TG.DataAsset)):
        if (asset, RDF.type, TG.DataAsset) not in model:
            problems.append(f"{asset}: used as data but not typed tg:DataAsset")
        classes = list(model.objects(asset, TG.classification))
        if len(classes) != 1 or classes[0] not in CLASSIFICATIONS:
            problems.append(f"{asset}: needs exactly one tg:classification among the five levels")
        if model.value(asset, RDFS.label) is None:
            problems.append(f"{asset}: no rdfs:label")
    for control in set(model.subjects(RDF.type, TG.Control)) | set(model.objects(None, TG.hasControl)):
        if model.value(control, RDFS.label) is None or (control, RDF.type, TG.Control) not in model:
            problems.append(f"{control}: a control needs a type tg:Control and an rdfs:label")
    return problems


# ------------------------------------------------------------------------------------------------
# the examples
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_is_well_formed(name: str, ontology: Graph) -> None:
    model = load_example(name)
    assert model_problems(model, ontology) == []
    kinds = elements_by_kind(model, ontology)
    assert len(kinds) >= 15
    counts = {k: sum(1 for ks in kinds.values() if k in ks) for k in KINDS}
    assert all(n >= 3 for n in counts.values()), counts
    # ML-specific: every example uses the ML taxonomy, and mixes good and bad security attributes
    assert any(str(c).startswith(str(TGML)) for c in model.objects(None, RDF.type))
    attrs = set(ontology.subjects(RDF.type, TG.SecurityAttribute))
    values = {o for p in attrs for o in model.objects(None, p)}
    assert {Literal(True), Literal(False)} <= values
    assert set(model.subjects(RDF.type, TG.Control)), "every example declares controls"


def test_examples_cover_the_requested_scenarios(ontology: Graph) -> None:
    rag, tabular, health = (load_example(n) for n in EXAMPLE_NAMES)

    def typed(model: Graph, cls: URIRef) -> set[URIRef]:
        return {s for s, c in model.subject_objects(RDF.type)
                if isinstance(c, URIRef) and cls in superclasses(ontology, c) and isinstance(s, URIRef)}

    for cls in (TGML.EndUser, TGML.LLMApplication, TGML.Guardrail, TGML.LLMAgent, TGML.AgentTool,
                TGML.AgentMemory, TGML.VectorStore, TGML.EmbeddingModel, TGML.RAGCorpus,
                TGML.WebScrapedDataSource, TGML.PromptTemplate, TGML.LLMProvider, TGML.InferenceLogStore,
                TGML.HumanReviewer):
        assert typed(rag, cls), f"rag-assistant lacks a {cls}"
    assert len(typed(rag, TGML.AgentTool)) == 3
    for cls in (TGML.FirstPartyDataSource, TGML.ThirdPartyDataSource, TGML.DataPreparationPipeline,
                TGML.RawDataset, TGML.TrainingDataset, TGML.ValidationDataset, TGML.TestDataset,
                TGML.FeaturePipeline, TGML.FeatureStore, TGML.TrainingPipeline, TGML.TrainingCluster,
                TGML.MLDependency, TGML.NotebookEnvironment, TGML.ExperimentTracker, TGML.ModelEvaluation,
                TGML.ModelRegistry, TGML.FineTunedModel, TGML.PretrainedModel, TGML.ModelHub,
                TGML.ModelCICD, TGML.InferenceEndpoint, TGML.ModelConsumerApp, TGML.ModelMonitoring,
                TGML.BatchScoringJob):
        assert typed(tabular, cls), f"tabular-platform lacks a {cls}"
    # one flow into the public inference API without authorisation
    api = next(iter(typed(tabular, TGML.InferenceEndpoint)))
    assert (api, TG.publiclyExposed, Literal(True)) in tabular
    assert any((f, TG.authorizationEnforced, Literal(False)) in tabular
               for f in tabular.subjects(TG.target, api))
    # health: special-category data, a vendor receiving it without consent, a revealing flow
    assert (None, TG.classification, TG.SpecialCategoryPersonal) in health
    for cls in (TGML.EndUser, TGML.HumanReviewer, TGML.FirstPartyDataSource, TGML.InferenceEndpoint,
                TGML.LabelingService, TGML.InferenceLogStore, TGML.UserFeedbackData, TGML.TrainingDataset):
        assert typed(health, cls), f"health-risk lacks a {cls}"
    vendors = typed(health, TGML.LabelingService)
    assert any((f, TG.consentObtained, Literal(False)) in health
               for v in vendors for f in health.subjects(TG.target, v))
    assert (None, TG.revealsSensitiveFacts, Literal(True)) in health


# ------------------------------------------------------------------------------------------------
# the checker finds planted defects (so the passing tests above mean something)
# ------------------------------------------------------------------------------------------------
BROKEN = """
@prefix ex: <http://example.org/broken#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:sys a tg:System .
ex:z a tg:TrustZone ; tg:trustLevel 1 .
ex:user a tgml:EndUser ; rdfs:label "user" ; tg:partOf ex:sys .                        # no zone
ex:api a tgml:InferenceEndpont ; rdfs:label "typo" ; tg:partOf ex:sys ; tg:inZone ex:z .  # typo
ex:svc a tgml:InferenceEndpoint ; tg:partOf ex:sys ; tg:inZone ex:z ;                    # no label
    tg:authenticated "yes" .                                                            # not boolean
ex:odd a tg:Process , tg:DataStore ; rdfs:label "odd" ; tg:partOf ex:sys ; tg:inZone ex:z ;
    tg:holds ex:d .
ex:f1 a tg:DataFlow ; rdfs:label "f1" ; tg:partOf ex:sys ; tg:source ex:user ; tg:carries ex:d .
ex:f2 a tg:DataFlow ; rdfs:label "f2" ; tg:partOf ex:sys ; tg:source ex:user ; tg:target ex:svc ;
    tg:carries ex:d2 ; tg:encryptedInTransitt true .                                   # typo property
ex:d a tg:DataAsset ; rdfs:label "d" ; tg:classification tg:Secret .
ex:d2 a tg:DataAsset ; rdfs:label "d2" ; tg:classification tg:Personal .
"""


def test_checker_reports_planted_defects(ontology: Graph) -> None:
    model = Graph().parse(data=BROKEN, format="turtle")
    problems = model_problems(model, ontology)
    expected_fragments = [
        "undeclared class https://w3id.org/threatgraph/ml#InferenceEndpont",
        "undeclared property https://w3id.org/threatgraph/ontology#encryptedInTransitt",
        "broken#svc: https://w3id.org/threatgraph/ontology#authenticated must be an xsd:boolean",
        "broken#odd: needs exactly one element kind",
        "broken#user: needs tg:inZone",
        "broken#svc: no rdfs:label",
        "broken#f1: a flow needs exactly one tg:source and one tg:target",
        "broken#d: needs exactly one tg:classification",
    ]
    for fragment in expected_fragments:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert len(problems) == len(expected_fragments), problems
    # ex:api has an undeclared (typo) class, so it is not recognised as an element at all
    assert not any("broken#api:" in p for p in problems)


def test_checker_accepts_a_minimal_correct_model(ontology: Graph) -> None:
    fixed = BROKEN.replace("tgml:InferenceEndpont", "tgml:InferenceEndpoint")
    model = Graph().parse(data=fixed, format="turtle")
    assert not any("undeclared class" in p for p in model_problems(model, ontology))


# ------------------------------------------------------------------------------------------------
# cited mitigations exist and are active in the pinned ATLAS / ATT&CK releases (outside oracle)
# ------------------------------------------------------------------------------------------------
def _active_mitigation_ids(shared_data: Path) -> set[str]:
    atlas = yaml.safe_load((shared_data / "atlas" / "ATLAS.yaml").read_text(encoding="utf-8"))
    ids = {m["id"] for matrix in atlas["matrices"] for m in matrix.get("mitigations", [])
           if not m.get("deprecated")}
    bundle = json.loads((shared_data / "attack" / "enterprise-attack-18.1.stix20.json")
                        .read_text(encoding="utf-8"))
    for obj in bundle["objects"]:
        if obj["type"] != "course-of-action" or obj.get("revoked") or obj.get("x_mitre_deprecated"):
            continue
        ids.update(r["external_id"] for r in obj.get("external_references", [])
                   if r.get("source_name") == "mitre-attack")
    return ids


@pytest.mark.shared
def test_cited_mitigations_are_real_and_active(shared_data: Path) -> None:
    active = _active_mitigation_ids(shared_data)
    assert "AML.M0015" in active and "M1041" in active and "T1059" not in active
    cited: set[str] = set()
    for name in EXAMPLE_NAMES:
        model = load_example(name)
        for mitigation in model.objects(None, TG.implementsMitigation):
            iri = str(mitigation)
            assert iri.startswith((ATLAS, ATTACK)), iri
            cited.add(iri.rsplit("/", 1)[1])
    assert len(cited) >= 10
    assert cited - active == set(), f"not active mitigations: {sorted(cited - active)}"
