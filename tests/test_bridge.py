"""The bridge mappings (ontology/mappings/*.ttl), their checker, loader and the coverage command.

Checked against outside oracles where they exist: ATLAS 5.6.0 (ATLAS.yaml and, independently,
stix-atlas.json), ATT&CK Enterprise 18.1 (active techniques) and the ML taxonomy in ontology/ml.ttl.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from threatgraph.cli import main
from threatgraph.errors import InputError
from threatgraph.knowledge import bridge
from threatgraph.knowledge.bridge import (
    TechniqueMapping,
    Vocabulary,
    check_mappings,
    load_vocabulary,
    parse_mappings,
    technique_coverage,
)
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import LINDDUN, STRIDE, TG, TGML

REPO = Path(__file__).resolve().parent.parent
MAPPINGS = REPO / "ontology" / "mappings"

# The ML asset classes the mappings are written against (the contract given to ontology/ml.ttl).
EXPECTED_ASSETS = {
    "ThirdPartyDataSource",
    "WebScrapedDataSource",
    "LabelingService",
    "MLDependency",
    "ModelHub",
    "LLMProvider",
    "HumanReviewer",
    "EndUser",
    "ModelConsumerApp",
    "DataPreparationPipeline",
    "FeaturePipeline",
    "NotebookEnvironment",
    "TrainingPipeline",
    "TrainingCluster",
    "ModelEvaluation",
    "ModelCICD",
    "InferenceEndpoint",
    "BatchScoringJob",
    "ModelMonitoring",
    "LLMApplication",
    "LLMAgent",
    "AgentTool",
    "EmbeddingModel",
    "Guardrail",
    "FirstPartyDataSource",
    "UserFeedbackData",
    "Dataset",
    "RawDataset",
    "TrainingDataset",
    "ValidationDataset",
    "TestDataset",
    "FeatureStore",
    "ExperimentTracker",
    "ModelArtifact",
    "PretrainedModel",
    "FoundationModel",
    "FineTunedModel",
    "ModelRegistry",
    "PromptTemplate",
    "AgentMemory",
    "VectorStore",
    "RAGCorpus",
    "InferenceLogStore",
}


@pytest.fixture(scope="module")
def mappings() -> list[TechniqueMapping]:
    return parse_mappings()


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_vocabulary()


@pytest.fixture(scope="module")
def atlas_ids(shared_data: Path) -> dict[str, str]:
    return bridge.atlas_techniques(shared_data / "atlas" / "ATLAS.yaml")


@pytest.fixture(scope="module")
def attack_active(shared_data: Path) -> dict[str, str]:
    return bridge.attack_active_techniques(shared_data / "attack" / "enterprise-attack-18.1.stix20.json")


def _atlas(ms: list[TechniqueMapping]) -> list[TechniqueMapping]:
    return [m for m in ms if m.framework == "atlas"]


def _attack(ms: list[TechniqueMapping]) -> list[TechniqueMapping]:
    return [m for m in ms if m.framework == "attack"]


# ------------------------------------------------------------------------------------------------
# coverage of the reference data
# ------------------------------------------------------------------------------------------------
@pytest.mark.shared
def test_every_atlas_technique_has_its_own_mapping(
    mappings: list[TechniqueMapping], atlas_ids: dict[str, str]
) -> None:
    assert len(atlas_ids) == 170  # ATLAS 5.6.0: techniques and sub-techniques
    cov = technique_coverage(_atlas(mappings), atlas_ids)
    assert cov.unmapped == []
    assert cov.inherited == {}  # every ATLAS technique and sub-technique is mapped explicitly
    assert len(cov.explicit) == 170
    assert cov.unknown == []  # every mapped ATLAS ID exists in ATLAS.yaml


@pytest.mark.shared
def test_atlas_ids_agree_with_the_stix_rendering(mappings: list[TechniqueMapping], shared_data: Path) -> None:
    """Outside oracle: the ATLAS STIX bundle lists the same 170 technique IDs the mappings cover."""
    bundle = json.loads((shared_data / "atlas" / "stix-atlas.json").read_text(encoding="utf-8"))
    stix_ids = {
        ref["external_id"]
        for o in bundle["objects"]
        if o["type"] == "attack-pattern"
        for ref in o.get("external_references", [])
        if str(ref.get("external_id", "")).startswith("AML.T")
    }
    assert {m.technique_id for m in _atlas(mappings)} == stix_ids


@pytest.mark.shared
def test_attack_mappings_are_active_in_18_1(
    mappings: list[TechniqueMapping], attack_active: dict[str, str]
) -> None:
    ids = {m.technique_id for m in _attack(mappings)}
    assert ids <= set(attack_active), sorted(ids - set(attack_active))
    parents = {i for i in ids if "." not in i}
    assert 30 <= len(parents) <= 50
    for must in ("T1190", "T1530", "T1552", "T1195", "T1078"):
        assert must in ids


@pytest.mark.shared
def test_checker_is_clean_on_the_shipped_mappings(
    mappings: list[TechniqueMapping],
    vocab: Vocabulary,
    atlas_ids: dict[str, str],
    attack_active: dict[str, str],
) -> None:
    assert check_mappings(mappings, vocab, atlas_ids=atlas_ids, attack_ids=attack_active) == []


# ------------------------------------------------------------------------------------------------
# content rules for every mapping
# ------------------------------------------------------------------------------------------------
def test_every_mapping_is_complete(mappings: list[TechniqueMapping]) -> None:
    assert len(mappings) >= 200
    for m in mappings:
        assert m.assets, m.technique_id
        assert m.categories, m.technique_id
        assert len(m.justification.strip()) >= 30, m.technique_id
        assert m.sources, m.technique_id
        assert m.iri == bridge.MAPPING_NS + m.technique_id


def test_justifications_are_not_duplicated(mappings: list[TechniqueMapping]) -> None:
    counts = Counter(m.justification.strip() for m in mappings)
    assert [j for j, n in counts.items() if n > 1] == []


def test_sources_name_the_technique_itself(mappings: list[TechniqueMapping]) -> None:
    for m in mappings:
        own = f"ATLAS {m.technique_id}" if m.framework == "atlas" else f"ATT&CK {m.technique_id}"
        assert own in m.sources, (m.technique_id, m.sources)


def test_one_node_per_technique(mappings: list[TechniqueMapping]) -> None:
    counts = Counter(m.technique for m in mappings)
    assert max(counts.values()) == 1


def test_categories_and_attributes_are_known(mappings: list[TechniqueMapping], vocab: Vocabulary) -> None:
    assert len(vocab.categories) == 13  # 6 STRIDE + 7 LINDDUN
    for m in mappings:
        assert m.categories <= vocab.categories
        assert all(c.startswith((STRIDE, LINDDUN)) for c in m.categories)
        assert (m.exposed_when | m.reduced_by) <= vocab.attributes
        if m.requires_personal_data:
            assert any(c.startswith(LINDDUN) for c in m.categories), m.technique_id


def test_referenced_asset_types_exist_in_ml_ttl(mappings: list[TechniqueMapping], vocab: Vocabulary) -> None:
    ml_classes = {c.removeprefix(TGML) for c in vocab.asset_classes}
    assert EXPECTED_ASSETS <= ml_classes
    used = {a for m in mappings for a in m.assets}
    assert used <= set(vocab.asset_classes), sorted(used - set(vocab.asset_classes))
    # every asset type of the taxonomy is targeted by at least one mapping
    assert set(vocab.asset_classes) <= used


def test_intent_examples(mappings: list[TechniqueMapping]) -> None:
    """The mappings say what the issue asks for on its examples."""
    by = {m.technique_id: m for m in mappings}
    poison = by["AML.T0020"]
    assert {TGML.TrainingDataset, TGML.ThirdPartyDataSource} <= poison.assets
    assert STRIDE.Tampering in poison.categories and TG.untrustedOrigin in poison.exposed_when
    assert {TG.provenanceKnown, TG.artifactsSigned} <= poison.reduced_by
    for tid in ("AML.T0024.000", "AML.T0024.001", "AML.T0024.002", "AML.T0040"):
        assert TGML.InferenceEndpoint in by[tid].assets and STRIDE.InformationDisclosure in by[tid].categories
        assert TG.publiclyExposed in by[tid].exposed_when
    assert (
        LINDDUN.Identifying in by["AML.T0024.000"].categories and by["AML.T0024.000"].requires_personal_data
    )
    assert STRIDE.InformationDisclosure in by["AML.T0024.002"].categories
    assert not any(c.startswith(LINDDUN) for c in by["AML.T0024.002"].categories)
    for tid in ("AML.T0051", "AML.T0051.000", "AML.T0051.001"):
        assert {TGML.LLMApplication, TGML.LLMAgent} <= by[tid].assets
        assert {STRIDE.Tampering, STRIDE.ElevationOfPrivilege} <= by[tid].categories
    assert {TGML.PretrainedModel, TGML.ModelHub} <= by["AML.T0010.003"].assets
    assert TGML.MLDependency in by["AML.T0010.001"].assets
    assert TGML.InferenceEndpoint in by["T1190"].assets and TG.publiclyExposed in by["T1190"].exposed_when
    assert TGML.Dataset in by["T1530"].assets
    assert TGML.NotebookEnvironment in by["T1552"].assets
    assert TGML.TrainingCluster in by["T1078"].assets


# ------------------------------------------------------------------------------------------------
# inheritance
# ------------------------------------------------------------------------------------------------
def test_parent_id() -> None:
    assert bridge.parent_id("T1552.001") == "T1552"
    assert bridge.parent_id("AML.T0000.002") == "AML.T0000"
    assert bridge.parent_id("AML.T0020") is None
    assert bridge.parent_id("T1190") is None


def test_sub_techniques_inherit_unless_overridden(mappings: list[TechniqueMapping]) -> None:
    attack = _attack(mappings)
    cov = technique_coverage(attack, ["T1552", "T1552.001", "T1552.004", "T1059.004", "T9999.001"])
    assert cov.explicit == ["T1552", "T1552.001"]  # T1552.001 has its own (overriding) node
    assert cov.inherited == {"T1552.004": "T1552", "T1059.004": "T1059"}
    assert cov.unmapped == ["T9999.001"]
    by = {m.technique_id: m for m in attack}
    assert by["T1552.001"].assets != by["T1552"].assets


# ------------------------------------------------------------------------------------------------
# negative cases: the checker reports defects
# ------------------------------------------------------------------------------------------------
BAD_TTL = """
@prefix m: <https://w3id.org/threatgraph/mapping/> .
@prefix atlas: <https://w3id.org/threatgraph/atlas/> .
@prefix attack: <https://w3id.org/threatgraph/attack/> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix stride: <https://w3id.org/threatgraph/stride#> .
@prefix linddun: <https://w3id.org/threatgraph/linddun#> .
@prefix dct: <http://purl.org/dc/terms/> .

m:AML.T0020 a tg:TechniqueMapping ; tg:technique atlas:AML.T0020 ;
    tg:targetsAsset tgml:TrainingDataset , tgml:QuantumDataLake ;
    tg:realizes stride:Tampering ;
    tg:justification "Poisoned examples planted in the training data embed a backdoor in the model." ;
    dct:source "test" .

m:AML.T9999 a tg:TechniqueMapping ; tg:technique atlas:AML.T9999 ;
    tg:targetsAsset tgml:InferenceEndpoint ;
    tg:realizes stride:Frobnication ;
    tg:exposedWhen tg:isShiny ;
    tg:justification "Poisoned examples planted in the training data embed a backdoor in the model." ;
    dct:source "test" .

m:T1064 a tg:TechniqueMapping ; tg:technique attack:T1064 ;
    tg:targetsAsset tgml:NotebookEnvironment ;
    tg:realizes stride:ElevationOfPrivilege ;
    tg:requiresPersonalData true ;
    tg:justification "too short" .

m:wrong a tg:TechniqueMapping ; tg:technique attack:T1190 ;
    tg:justification "A node without asset types or categories, and with a wrong IRI." ;
    dct:source "test" .
"""


@pytest.mark.shared
def test_checker_reports_every_defect(
    tmp_path: Path, vocab: Vocabulary, atlas_ids: dict[str, str], attack_active: dict[str, str]
) -> None:
    f = tmp_path / "bad.ttl"
    f.write_text(BAD_TTL, encoding="utf-8")
    ms = parse_mappings([f])
    problems = check_mappings(ms, vocab, atlas_ids=atlas_ids, attack_ids=attack_active)
    got = {(p.technique, p.message.split(" <")[0].split(" (")[0]) for p in problems}
    expected = {
        ("AML.T0020", "unknown asset type"),
        ("AML.T0020", "justification duplicated verbatim in another mapping"),
        ("AML.T9999", "unknown ATLAS technique"),
        ("AML.T9999", "unknown category"),
        ("AML.T9999", "unknown security attribute"),
        ("AML.T9999", "justification duplicated verbatim in another mapping"),
        ("T1064", "not an active ATT&CK technique"),
        ("T1064", "tg:requiresPersonalData without a LINDDUN category"),
        ("T1064", "justification missing or shorter than 30 characters"),
        ("T1064", "no dct:source"),
        ("T1190", "node"),
        ("T1190", "no tg:targetsAsset"),
        ("T1190", "no tg:realizes category"),
    }
    assert got == expected, sorted(got ^ expected)
    # messages point at the file and line of the node and name the offending term
    unknown = next(p for p in problems if "unknown asset type" in p.message)
    assert unknown.where == f"{f}:11" and "QuantumDataLake" in unknown.message


def test_malformed_mapping_file_is_an_input_error(tmp_path: Path) -> None:
    f = tmp_path / "broken.ttl"
    f.write_text("@prefix m: <https://w3id.org/threatgraph/mapping/> .\nm:X a ", encoding="utf-8")
    with pytest.raises(InputError) as err:
        parse_mappings([f])
    assert "broken.ttl" in str(err.value)


# ------------------------------------------------------------------------------------------------
# loading into a store
# ------------------------------------------------------------------------------------------------
def test_load_bridge_round_trips_through_the_store(mappings: list[TechniqueMapping]) -> None:
    store = EmbeddedStore()
    n = bridge.load_bridge(store)
    assert n > 2000
    assert bridge.BRIDGE_GRAPH in store.graph_names()
    back = bridge.mappings_from_store(store)

    def key(m: TechniqueMapping) -> tuple[object, ...]:
        return (
            m.technique,
            m.assets,
            m.categories,
            m.exposed_when,
            m.reduced_by,
            m.justification,
            m.sources,
            m.requires_personal_data,
            m.preparatory,
        )

    assert sorted(map(key, back), key=str) == sorted(map(key, mappings), key=str)
    # replacing, not appending
    bridge.load_bridge(store, [MAPPINGS / "attack.ttl"])
    assert {m.framework for m in bridge.mappings_from_store(store)} == {"attack"}


# ------------------------------------------------------------------------------------------------
# the coverage command
# ------------------------------------------------------------------------------------------------
@pytest.mark.shared
def test_coverage_json(capsys: pytest.CaptureFixture[str], shared_data: Path) -> None:
    assert main(["coverage", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["atlas"]["total"] == 170 and report["atlas"]["mapped"] == 170
    assert report["atlas"]["percent"] == 100.0 and report["atlas"]["unmapped"] == []
    # 44: tgml:LLMInferenceEndpoint; 48: the derived roles LLMResponseRenderer, RAGIngestionPipeline,
    # TrainingDataWriter and PredictionConsumer, each with its ATLAS mapping (issue 13); 50: the derived
    # HostedModelClient (AML.T0034, AML.T0034.000) and CodeExecutionTool (AML.T0050, T1059) (issue 13)
    assert report["assetTypes"]["types"] == 50 and report["assetTypes"]["unmapped"] == []
    assert report["attack"]["curated"] == len(_attack(parse_mappings()))
    assert report["attack"]["inherited"]["T1059.004"] == "T1059"
    assert report["problems"] == []
    assert report["categories"]["stride:Tampering"] > 0 and report["categories"]["linddun:Identifying"] > 0


@pytest.mark.shared
def test_coverage_table(capsys: pytest.CaptureFixture[str], shared_data: Path) -> None:
    assert main(["coverage"]) == 0
    out = capsys.readouterr().out
    assert "170/170 (100.0%)" in out and "50/50" in out
    assert "unmapped ATLAS techniques: none" in out


@pytest.mark.shared
def test_coverage_reports_gaps_and_defects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_data: Path
) -> None:
    """With only part of the ATLAS mappings, coverage lists what is missing and exits 1."""
    text = (MAPPINGS / "atlas.ttl").read_text(encoding="utf-8")
    cut = text.index("m:AML.T0010 a tg:TechniqueMapping")
    d = tmp_path / "maps"
    d.mkdir()
    (d / "atlas.ttl").write_text(text[:cut], encoding="utf-8")
    shutil.copy(MAPPINGS / "attack.ttl", d / "attack.ttl")
    assert main(["coverage", "--format", "json", "--mappings", str(d)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert "AML.T0010" in report["atlas"]["unmapped"] and "AML.T0112.001" in report["atlas"]["unmapped"]
    assert "AML.T0008.005" not in report["atlas"]["unmapped"]
    assert report["atlas"]["mapped"] + len(report["atlas"]["unmapped"]) == 170

    (d / "extra.ttl").write_text(BAD_TTL, encoding="utf-8")
    assert main(["coverage", "--format", "json", "--mappings", str(d)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any("QuantumDataLake" in p for p in report["problems"])
    assert "AML.T9999" in report["atlas"]["unknown"]


def test_coverage_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "--atlas", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    bad = tmp_path / "ATLAS.yaml"
    bad.write_text("just: a mapping\n", encoding="utf-8")
    assert main(["coverage", "--atlas", str(bad)]) == 2
    assert "not an ATLAS.yaml" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# OWL 2 DL: the vocabulary declares every term the mappings use; HermiT accepts ontology + mappings
# ------------------------------------------------------------------------------------------------
def test_every_predicate_used_by_the_mappings_is_declared() -> None:
    import pyoxigraph as ox

    declared: dict[str, set[str]] = {}
    for path in sorted((REPO / "ontology").glob("*.ttl")):
        for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE):
            if q.predicate.value == str(RDF_TYPE):
                declared.setdefault(q.subject.value, set()).add(q.object.value)
    used: set[str] = set()
    for path in bridge.mapping_files():
        used |= {q.predicate.value for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)}
    kinds = {OWL_NS + k for k in ("ObjectProperty", "DatatypeProperty", "AnnotationProperty")}
    for p in used - {str(RDF_TYPE)}:
        assert declared.get(p, set()) & kinds, f"{p} is not declared as an OWL property"
    assert OWL_NS + "AnnotationProperty" in declared[TG.targetsAsset]
    assert OWL_NS + "AnnotationProperty" in declared[TG.exposedWhen]
    assert OWL_NS + "AnnotationProperty" in declared[TG.reducedBy]
    assert OWL_NS + "Class" in declared[TG.TechniqueMapping]


RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
OWL_NS = "http://www.w3.org/2002/07/owl#"


def test_hermit_accepts_ontology_with_mappings(tmp_path: Path) -> None:
    """HermiT: the ontology modules plus all mappings are consistent (skipped without owlready2/Java)."""
    owlready2 = pytest.importorskip("owlready2", reason="owlready2 (test extra) is not installed")
    java = shutil.which("java")
    if not java:
        pytest.skip("Java is not installed (HermiT needs a JVM)")
    owlready2.JAVA_EXE = java
    from rdflib import Graph

    g = Graph()
    for path in [*sorted((REPO / "ontology").glob("*.ttl")), *bridge.mapping_files()]:
        g.parse(path, format="turtle")
    out = tmp_path / "merged.owl"
    g.serialize(destination=out, format="xml")
    world = owlready2.World()
    onto = world.get_ontology(out.as_uri()).load()
    with onto:
        owlready2.sync_reasoner(world, infer_property_values=False, debug=0)  # raises if inconsistent
    assert list(world.inconsistent_classes()) == []
    mapping = world["https://w3id.org/threatgraph/mapping/AML.T0020"]
    assert mapping is not None and world[TG.TechniqueMapping] in mapping.is_a


@pytest.mark.shared
def test_coverage_against_a_loaded_atlas_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_data: Path
) -> None:
    """--release takes the ATLAS technique IDs from the release imported into the store."""
    import gc

    from threatgraph.knowledge.releases import load_release
    from threatgraph.store import open_store

    store_dir = tmp_path / "store"
    store = open_store(str(store_dir))
    load_release(store, "atlas", str(shared_data / "atlas" / "ATLAS.yaml"))
    del store
    gc.collect()
    assert main(["coverage", "--format", "json", "--release", "atlas", "--store", str(store_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["atlas"]["from"].endswith("release/atlas/5.6.0")
    assert report["atlas"]["total"] == 170 and report["atlas"]["unmapped"] == []
    assert main(["coverage", "--release", "atlas/0.0.1", "--store", str(store_dir)]) == 2
    assert "not loaded" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# exposure conditions applied to a model
# ------------------------------------------------------------------------------------------------
MODEL_TTL = """
@prefix ex: <http://example.org/m#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
ex:vendor a tgml:ThirdPartyDataSource ; tg:untrustedOrigin true .
ex:crm a tgml:FirstPartyDataSource .
ex:dsA a tgml:TrainingDataset .
ex:dsB a tgml:TrainingDataset .
ex:dsC a tgml:TrainingDataset ; tg:provenanceKnown true .
ex:f1 a tg:DataFlow ; tg:source ex:vendor ; tg:target ex:dsA .
ex:f2 a tg:DataFlow ; tg:source ex:crm ; tg:target ex:dsB ; tg:artifactsSigned true .
ex:f3 a tg:DataFlow ; tg:source ex:vendor ; tg:target ex:dsC ; tg:artifactsSigned true .
ex:api a tgml:InferenceEndpoint ; tg:publiclyExposed true ; tg:rateLimited true .
ex:internal a tgml:InferenceEndpoint .
"""
EX = "http://example.org/m#"


def test_exposure_conditions_distinguish_untrusted_from_first_party_sources() -> None:
    store = EmbeddedStore()
    for path in sorted((REPO / "ontology").glob("*.ttl")):
        store.load(path.read_bytes(), "text/turtle", "https://w3id.org/threatgraph/graph/ontology")
    store.load(MODEL_TTL, "text/turtle", "https://w3id.org/threatgraph/graph/model")
    bridge.load_bridge(store)
    found = {(x.element.removeprefix(EX), x.mapping.technique_id): x for x in bridge.exposures(store)}

    # poisoning: the dataset fed from the untrusted vendor is exposed, the first-party one is not,
    # and the one with known provenance and signed input is exposed with both reducers recorded
    assert found[("dsA", "AML.T0020")].exposed_by == TG.untrustedOrigin
    assert found[("dsA", "AML.T0020")].reduced_by == frozenset()
    assert ("dsB", "AML.T0020") not in found
    assert found[("dsC", "AML.T0020")].reduced_by == {TG.provenanceKnown, TG.artifactsSigned}
    assert ("vendor", "AML.T0020") in found  # untrusted on the entity itself
    # model extraction: only the public endpoint, rate limiting recorded as reducing it
    assert found[("api", "AML.T0024.002")].reduced_by == {TG.rateLimited}
    assert ("internal", "AML.T0024.002") not in found
    # no exposure condition: applies to every instance, also through a superclass (Dataset)
    assert ("dsB", "AML.T0059") in found and ("internal", "AML.T0043") in found
    # nothing targets LLM applications in this model
    assert not any(t.startswith("AML.T0051") for _, t in found)
