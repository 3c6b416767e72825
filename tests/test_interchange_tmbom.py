"""OWASP Threat Model Library ("TM-BOM") import (issue 12): the real HashiCorp Vault model of
../shared/formats/tm-bom (counts checked against the JSON), a small ML model written from the schema
(validated against it first), and bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
from rdflib.namespace import RDF, RDFS

from threatgraph.cli import main
from threatgraph.errors import InputError
from threatgraph.interchange import convert_file
from threatgraph.interchange.tmbom import convert
from threatgraph.resources import shared_data_dir
from threatgraph.terms import CAPEC, DCT, TG, TGML

U = rdflib.URIRef
SCHEMA_URL = "https://github.com/OWASP/www-project-threat-model-library/blob/v1.0.2/threat-model.schema.json"


def _dir() -> Path:
    d = shared_data_dir()
    cand = [d.parent / "formats" / "tm-bom"] if d is not None else []
    cand.append(Path(__file__).resolve().parents[2] / "shared" / "formats" / "tm-bom")
    found = next((c for c in cand if (c / "sample-hashicorp-vault.json").is_file()), None)
    if found is None:
        pytest.fail("the TM-BOM sample is missing: ../shared/formats/tm-bom")
    return found


def _count(g: rdflib.Graph, cls: str) -> int:
    return len(set(g.subjects(RDF.type, U(cls))))


def _by_label(g: rdflib.Graph, label: str) -> rdflib.URIRef:
    nodes = [s for s in g.subjects(RDFS.label, rdflib.Literal(label)) if isinstance(s, rdflib.URIRef)]
    assert len(nodes) == 1, label
    return nodes[0]


def _schema_errors(doc: Any) -> list[str]:
    import jsonschema

    schema = json.loads((_dir() / "threat-model.schema.json").read_text(encoding="utf-8"))
    return [f"{e.json_path}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]


def test_vault_sample_imports_with_the_counts_of_its_source() -> None:
    path = _dir() / "sample-hashicorp-vault.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    res = convert_file(path)
    assert res is not None and res.format == "tm-bom"
    g = res.graph
    assert (len(doc["actors"]), len(doc["components"]), len(doc["data_stores"]), len(doc["data_flows"]),
            len(doc["threats"])) == (3, 12, 3, 24, 8)
    assert _count(g, TG.ExternalEntity) == len(doc["actors"])
    assert _count(g, TG.Process) == len(doc["components"])
    assert _count(g, TG.DataStore) == len(doc["data_stores"])
    assert _count(g, TG.DataFlow) == len(doc["data_flows"])
    assert _count(g, TG.DeclaredThreat) == len(doc["threats"])
    assert _count(g, TG.TrustBoundary) == len(doc["trust_boundaries"])
    assert _count(g, TG.DataAsset) == len(doc["data_sets"])  # none of them is an ML data set
    # zones: the four listed and the two the model names without listing them (reported, not refused)
    named = {z["symbolic_name"] for z in doc["trust_zones"]}
    named |= {e["trust_zone"] for k in ("actors", "components", "data_stores") for e in doc[k]}
    named |= {tb[k] for tb in doc["trust_boundaries"] for k in ("trust_zone_a", "trust_zone_b")}
    assert _count(g, TG.TrustZone) == len(named) == 6
    assert sum("is not listed in /trust_zones" in w for w in res.warnings) == 2
    # declared controls: the active ones; every control is in its threats' mitigation text
    active = [c for c in doc["controls"] if c["status"] in ("active", "assumed")]
    assert _count(g, TG.Control) == len(active) == 3
    texts = " ".join(str(o) for o in g.objects(None, U(TG.mitigationText)))
    assert all(c["title"] in texts for c in doc["controls"])
    # CAPEC and CWE references of every threat
    for t in doc["threats"]:
        node = _by_label(g, t["title"])
        refs = set(g.objects(node, U(DCT.references)))
        assert {U(CAPEC[f"CAPEC-{m['capec_id']}"]) for m in t.get("attack_mechanisms", [])} <= refs
        assert len(refs) == len(t.get("attack_mechanisms", [])) + len(t.get("weaknesses", []))
    # severity: the highest level of the risks a threat is in
    for r in doc["risks"]:
        for t in r["threats"]:
            assert g.value(_by_label(g, next(x["title"] for x in doc["threats"] if x["symbolic_name"] == t)),
                           U(TG.severity)) is not None
    # flows keep their ends and encryption
    for f in doc["data_flows"]:
        node = g.value(predicate=U(DCT.identifier), object=rdflib.Literal(f["symbolic_name"]))
        assert g.value(node, U(TG.encryptedInTransit)) == rdflib.Literal(f["encrypted"])
        assert g.value(g.value(node, U(TG.source)), U(DCT.identifier)) == rdflib.Literal(f["source"]["object"])


def _ml_model() -> dict[str, Any]:
    return {
        "$schema": SCHEMA_URL,
        "version": "1.0",
        "scope": {"title": "Fraud scoring", "description": "Scores card payments", "business_criticality": "high",
                  "data_sensitivity": ["pii"], "exposure": "external", "tier": "business_critical"},
        "trust_zones": [{"symbolic_name": "internet", "title": "Internet", "description": "Outside"},
                        {"symbolic_name": "ml", "title": "ML platform", "description": "Training and serving"}],
        "trust_boundaries": [{"trust_zone_a": "internet", "trust_zone_b": "ml"}],
        "actors": [{"symbolic_name": "merchant", "title": "Merchant", "description": "Sends payments", "type": "third_party",
                    "trust_zone": "internet"}],
        "components": [
            {"symbolic_name": "scoring", "title": "Scoring inference service", "description": "Serves the model",
             "trust_zone": "ml"},
            {"symbolic_name": "trainer", "title": "Training pipeline", "description": "Nightly retraining",
             "trust_zone": "ml"}],
        "data_stores": [{"symbolic_name": "lake", "title": "Data lake", "description": "Raw payments", "type": "object",
                         "trust_zone": "ml"}],
        "data_sets": [
            {"symbolic_name": "payments", "title": "Payment records", "description": "Card payments",
             "placements": [{"data_store": "lake", "encrypted": False}], "data_sensitivity": ["pii", "pci"]},
            {"symbolic_name": "train-set", "title": "Fraud training dataset", "description": "Labelled payments",
             "placements": [{"data_store": "lake", "encrypted": True}], "data_sensitivity": ["pii"]}],
        "data_flows": [
            {"symbolic_name": "score-request", "title": "Score request", "description": "A payment to score",
             "source": {"type": "actor", "object": "merchant"}, "destination": {"type": "component", "object": "scoring"},
             "has_sensitive_data": True, "encrypted": True},
            {"symbolic_name": "read-lake", "title": "Read training data", "description": "Batch read",
             "source": {"type": "data_store", "object": "lake"}, "destination": {"type": "component", "object": "trainer"},
             "has_sensitive_data": True, "encrypted": False}],
        "threats": [
            {"symbolic_name": "evasion", "title": "Model evasion", "description": "Crafted payments evade the model",
             "components_affected": ["scoring"], "threat_persona": "fraudster", "event": "fraud passes",
             "sources": ["adversary"], "attack_mechanisms": [{"capec_id": 28, "capec_title": "Fuzzing"}],
             "weaknesses": [{"cwe_id": 20}]},
            {"symbolic_name": "poisoning", "title": "Training data poisoning", "description": "Bad labels",
             "components_affected": ["trainer", "lake"], "threat_persona": "insider", "event": "model degraded",
             "sources": ["adversary"]}],
        "controls": [
            {"symbolic_name": "rate-limit", "title": "Rate limiting per merchant", "description": "Throttles queries",
             "threats": ["evasion"], "status": "active", "priority": "high"},
            {"symbolic_name": "label-review", "title": "Label review", "description": "Second pair of eyes",
             "threats": ["poisoning"], "status": "suggested", "priority": "medium"}],
        "risks": [{"symbolic_name": "fraud-loss", "title": "Fraud loss", "description": "Money lost",
                   "threats": ["evasion"], "likelihood": "likely", "impact": "major", "impact_description": "Chargebacks",
                   "score": 16, "level": "very_high"}],
    }


def test_ml_model_written_from_the_schema() -> None:
    doc = _ml_model()
    assert _schema_errors(doc) == []
    res = convert(doc, "fraud.json")
    g = res.graph
    assert res.warnings == []
    scoring, trainer, lake = (_by_label(g, n) for n in ("Scoring inference service", "Training pipeline", "Data lake"))
    assert (scoring, RDF.type, U(TGML.InferenceEndpoint)) in g
    assert (trainer, RDF.type, U(TGML.TrainingPipeline)) in g
    # the ML data set is a training dataset (a store in the ML vocabulary); the other one a data asset in the lake
    train = _by_label(g, "Fraud training dataset")
    assert (train, RDF.type, U(TGML.TrainingDataset)) in g and (train, RDF.type, U(TG.DataStore)) in g
    assert g.value(train, U(TG.inZone)) == _by_label(g, "ML platform")
    payments = _by_label(g, "Payment records")
    assert (lake, U(TG.holds), payments) in g and (lake, U(TG.holds), train) not in g
    assert set(g.objects(payments, U(TG.classification))) == {U(TG.Personal), U(TG.Confidential)}
    assert g.value(lake, U(TG.encryptedAtRest)) == rdflib.Literal(False)
    # threats on the affected elements, CAPEC / CWE kept, severity from the risk level
    evasion, poisoning = _by_label(g, "Model evasion"), _by_label(g, "Training data poisoning")
    assert (scoring, U(TG.declaredThreat), evasion) in g
    assert {(trainer, U(TG.declaredThreat), poisoning), (lake, U(TG.declaredThreat), poisoning)} <= set(g)
    assert set(g.objects(evasion, U(DCT.references))) == {
        U(CAPEC["CAPEC-28"]), U("https://cwe.mitre.org/data/definitions/20.html")}
    assert g.value(evasion, U(TG.severity)) == U(TG.Critical)
    assert g.value(poisoning, U(TG.severity)) is None
    # an active control is a declared control on the threat's element; a suggested one is only text
    ctrl = _by_label(g, "Rate limiting per merchant")
    assert (scoring, U(TG.hasControl), ctrl) in g and (ctrl, RDF.type, U(TG.Control)) in g
    assert _count(g, TG.Control) == 1
    assert g.value(poisoning, U(TG.mitigationText)) == rdflib.Literal("Label review (suggested)")
    # the boundary separates the two zones
    tb = next(iter(g.subjects(RDF.type, U(TG.TrustBoundary))))
    assert set(g.objects(tb, U(TG.separates))) == {_by_label(g, "Internet"), _by_label(g, "ML platform")}


def test_odd_parts_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _ml_model()
    doc["components"].append(copy.deepcopy(doc["components"][0]))  # duplicate id
    doc["components"].append({"title": "No id", "description": "x", "trust_zone": "ml"})  # missing id
    doc["data_stores"].append("not an object")  # wrong type
    doc["data_flows"][1]["destination"] = {"type": "component", "object": "ghost"}  # loose end
    doc["controls"][0]["threats"].append("nobody")
    res = convert(doc, "odd.json")
    w = "\n".join(res.warnings)
    assert "odd.json: tm-bom: /components/2/symbolic_name: duplicate symbolic_name 'scoring'" in w
    assert "odd.json: tm-bom: /components/3: missing required field 'symbolic_name' (skipped)" in w
    assert "odd.json: tm-bom: /data_stores/1: expected an object, found str (skipped)" in w
    assert "/data_flows/1/destination: the flow's destination names no actor, component or data store ('ghost')" in w
    assert "/controls/0/threats/1: no threat 'nobody'" in w
    g = res.graph
    ph = _by_label(g, "unnamed target of Read training data")
    assert (ph, RDF.type, U(TG.ExternalEntity)) in g
    assert _count(g, TG.Process) == 2 and _count(g, TG.DataFlow) == 2 and _count(g, TG.DeclaredThreat) == 2
    p = tmp_path / "odd.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["import-model", str(p), "-o", str(tmp_path / "o.ttl")]) == 0
    err = capsys.readouterr().err
    assert "duplicate symbolic_name" in err and "Traceback" not in err


def test_bad_files_are_refused_with_their_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(_ml_model())
    p = tmp_path / "cut.json"
    p.write_text(text[:300], encoding="utf-8")
    assert main(["import-model", str(p)]) == 2
    err = capsys.readouterr().err
    assert "cut.json:1:" in err and "not valid JSON" in err and "TM-BOM" in err and "Traceback" not in err
    with pytest.raises(InputError, match="no usable actor, component, data store or data flow"):
        convert({"$schema": SCHEMA_URL, "scope": {"title": "x"}, "components": "oops", "data_flows": []}, "e.json")
    with pytest.raises(InputError, match="a TM-BOM threat model is a JSON object"):
        convert([], "e.json")


def test_analyze_reads_tm_bom(tmp_path: Path) -> None:
    p = tmp_path / "fraud.json"
    p.write_text(json.dumps(_ml_model()), encoding="utf-8")
    assert main(["validate", str(p)]) in (0, 1)


def test_shapes_of_published_models_are_read() -> None:
    """Shapes seen in Threat Dragon's demo TM-BOM (huskyai.tmbom.json, commit 1e44cd3b): an actor without a
    trust zone, a reference typed as the wrong kind, an empty flow title, a placement in a store not listed."""
    doc = _ml_model()
    del doc["actors"][0]["trust_zone"]
    doc["data_flows"][1]["source"] = {"type": "component", "object": "lake"}  # lake is a data store
    doc["data_flows"][1]["title"] = ""
    doc["data_sets"][0]["placements"].append({"data_store": "redis-cache", "encrypted": False})
    res = convert(doc, "husky.json")
    g = res.graph
    merchant = _by_label(g, "Merchant")
    assert g.value(merchant, U(TG.inZone)) is None
    flow = g.value(predicate=U(DCT.identifier), object=rdflib.Literal("read-lake"))
    assert g.value(flow, U(TG.source)) == _by_label(g, "Data lake")
    assert g.value(flow, RDFS.label) == rdflib.Literal("read-lake")
    assert any("/data_sets/0/placements/1/data_store: no data store 'redis-cache' (skipped)" in w for w in res.warnings)
    assert _count(g, TG.DataFlow) == 2
