"""Importers of OTM, Threat Dragon v2 and Threagile models (issue 7), on test models written from the
public format documentation; each test input is validated against the format's JSON Schema first."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
import yaml
from rdflib.compare import isomorphic
from rdflib.namespace import RDF, RDFS

from threatgraph.cli import main
from threatgraph.errors import InputError
from threatgraph.interchange import convert_file, detect_and_convert
from threatgraph.interchange.common import ImportResult
from threatgraph.resources import shared_data_dir
from threatgraph.terms import DCT, LINDDUN, STRIDE, TG, TGML

HERE = Path(__file__).resolve().parent / "interchange"
OTM = HERE / "ml-platform.otm.json"
TD = HERE / "rag-assistant.threatdragon.json"
TGL = HERE / "ml-platform.threagile.yaml"
U = rdflib.URIRef


def _analyze_options() -> set[str]:
    from threatgraph.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices["analyze"]._option_string_actions)  # type: ignore[attr-defined]


ANALYZE = ["analyze", "--force"] if "--force" in _analyze_options() else ["analyze"]
"""``analyze`` without refusing an incomplete imported model (where the validation step exists)."""


def formats_dir() -> Path | None:
    d = shared_data_dir()
    cand = [d.parent / "formats"] if d is not None else []
    cand.append(Path(__file__).resolve().parents[2] / "shared" / "formats")
    return next((c for c in cand if (c / "open-threat-model.schema.json").is_file()), None)


def validate(doc: Any, schema_file: str) -> list[str]:
    """Errors of ``doc`` against a schema of /work/shared/formats (read there, never copied)."""
    import jsonschema

    d = formats_dir()
    if d is None:
        pytest.fail("the interchange schemas are missing: ../shared/formats")
    schema = json.loads((d / schema_file).read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def load_yaml_as_json(path: Path) -> Any:
    return json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))


def by_label(g: rdflib.Graph, label: str) -> rdflib.term.Node:
    hits = list(g.subjects(RDFS.label, rdflib.Literal(label)))
    assert len(hits) == 1, f"{label!r}: {hits}"
    return hits[0]


def types(g: rdflib.Graph, s: rdflib.term.Node) -> set[str]:
    return {str(o) for o in g.objects(s, RDF.type)}


def declared(g: rdflib.Graph, element: rdflib.term.Node) -> dict[str, dict[str, set[str]]]:
    out = {}
    for t in g.objects(element, U(TG.declaredThreat)):
        title = str(g.value(t, RDFS.label))
        out[title] = {str(p): {str(o) for o in g.objects(t, p)} for p in set(g.predicates(t))}
    return out


# ---------------------------------------------------------------------------------------------
# The test inputs conform to the public schemas
# ---------------------------------------------------------------------------------------------
@pytest.mark.shared
def test_inputs_conform_to_their_schemas() -> None:
    assert validate(json.loads(OTM.read_text()), "open-threat-model.schema.json") == []
    assert validate(json.loads(TD.read_text()), "threat-dragon-v2.schema.json") == []
    assert validate(load_yaml_as_json(TGL), "threagile.schema.json") == []


@pytest.mark.shared
def test_schema_check_is_not_vacuous() -> None:
    doc = json.loads(OTM.read_text())
    del doc["dataflows"][0]["source"]
    assert any("source" in e for e in validate(doc, "open-threat-model.schema.json"))


# ---------------------------------------------------------------------------------------------
# OTM
# ---------------------------------------------------------------------------------------------
def otm() -> ImportResult:
    r = convert_file(OTM)
    assert r is not None and r.format == "otm"
    return r


def test_otm_elements_kinds_and_ml_classes() -> None:
    g = otm().graph
    merchant = by_label(g, "Merchant\nbackend")  # the newline survives
    assert types(g, merchant) == {TG.ExternalEntity}
    assert types(g, by_label(g, "Scoring API")) == {TG.Process}
    assert types(g, by_label(g, "Fraud model")) == {TG.Process, TGML.InferenceEndpoint}
    assert types(g, by_label(g, "Model registry")) == {TG.DataStore, TGML.ModelRegistry}
    assert types(g, by_label(g, "Metrics sidecar")) == {TG.Process}  # unknown type: a process, reported


def test_otm_zones_trust_and_nesting() -> None:
    g = otm().graph
    zone = {str(g.value(by_label(g, n), U(TG.inZone))) for n in ("Fraud model", "Model registry", "Metrics sidecar")}
    assert zone == {str(by_label(g, "ML subnet"))}  # sidecar inherits its parent component's zone
    assert g.value(by_label(g, "Internet"), U(TG.trustLevel)).toPython() == 0
    assert g.value(by_label(g, "Production VPC"), U(TG.trustLevel)).toPython() == 70


def test_otm_flows_assets_and_classification() -> None:
    g = otm().graph
    flows = {str(g.value(f, RDFS.label)) for f in g.subjects(RDF.type, U(TG.DataFlow))}
    assert flows == {"Score request", "Internal scoring call", "Internal scoring call (reverse)", "Load model"}
    req = by_label(g, "Score request")
    assert g.value(req, U(TG.protocol)) == rdflib.Literal("HTTPS")
    assert g.value(req, U(TG.encryptedInTransit)).toPython() is True
    cls = {str(g.value(a, RDFS.label)): str(g.value(a, U(TG.classification))) for a in g.subjects(RDF.type, U(TG.DataAsset))}
    assert cls == {"Card transactions": TG.Personal, "Fraud scores": TG.Internal, "Model weights": TG.Confidential}
    assert (by_label(g, "Model registry"), U(TG.holds), by_label(g, "Model weights")) in g
    assert g.value(by_label(g, "Scoring API"), U(TG.rateLimited)).toPython() is True


def test_otm_threats_mitigations_and_controls() -> None:
    g = otm().graph
    api = by_label(g, "Scoring API")
    d = declared(g, api)["Spoofed merchant calls the scoring API"]
    assert d[TG.category] == {STRIDE.Spoofing}
    assert d[TG.threatStatus] == {"EXPOSED"}
    assert d[TG.severity] == {TG.High}
    assert "Mutual TLS (IMPLEMENTED" in next(iter(d[TG.mitigationText]))
    ctrl = g.value(api, U(TG.hasControl))
    assert str(g.value(ctrl, RDFS.label)) == "Mutual TLS"
    assert str(g.value(ctrl, U(TG.coversCategory))) == STRIDE.Spoofing
    flow = declared(g, by_label(g, "Score request"))["Transaction tampered in transit"]
    assert flow[TG.category] == {STRIDE.Tampering}  # "Confidentiality" is not STRIDE: reported, dropped


def test_otm_reports_what_had_no_home() -> None:
    notes = "\n".join(otm().unmapped)
    for expected in ("CD-V2-MYSTERY-WIDGET", "deploymentColour", "/representations", "/threats/*/cwes",
                     "/trustZones/*/parent", "/project/owner"):
        assert expected in notes
    assert "/dataflows/*/source" not in notes  # mapped fields are not reported


def test_otm_minimal_document_with_only_required_fields(tmp_path: Path) -> None:
    doc = {"otmVersion": "0.2.0", "project": {"name": "Empty", "id": "empty"}}
    if formats_dir() is not None:
        assert validate(doc, "open-threat-model.schema.json") == []
    p = tmp_path / "m.otm"
    p.write_text(json.dumps(doc))
    r = convert_file(p)
    assert r is not None
    assert set(r.graph.subjects(RDF.type, U(TG.System))) and not set(r.graph.subjects(RDF.type, U(TG.Process)))


# ---------------------------------------------------------------------------------------------
# Threat Dragon v2
# ---------------------------------------------------------------------------------------------
def td() -> ImportResult:
    r = convert_file(TD)
    assert r is not None and r.format == "threat-dragon"
    return r


def test_td_kinds_and_explicit_ml_words() -> None:
    g = td().graph
    assert types(g, by_label(g, "Customer\n(web chat)")) == {TG.ExternalEntity}
    assert types(g, by_label(g, "Assistant")) == {TG.Process, TGML.LLMApplication}
    assert types(g, by_label(g, "Article index")) == {TG.DataStore, TGML.VectorStore}
    assert types(g, by_label(g, "Chat logs")) == {TG.DataStore}
    assert types(g, by_label(g, "Analytics")) == {TG.Process}  # no ML words: no ML class


def test_td_boundary_box_zones_and_curve_crossing() -> None:
    g = td().graph
    box = by_label(g, "Cloud tenant")
    assert types(g, box) == {TG.TrustZone}
    for inside in ("Assistant", "Article index", "Chat logs"):
        assert g.value(by_label(g, inside), U(TG.inZone)) == box
    outside = by_label(g, "Outside all trust boundary boxes")
    assert g.value(by_label(g, "LLM API"), U(TG.inZone)) == outside
    assert types(g, by_label(g, "Vendor boundary")) == {TG.TrustBoundary}
    crossing = {str(g.value(f, RDFS.label)) for f in g.subjects(U(TG.crossesBoundary), rdflib.Literal(True))}
    assert crossing == {"Prompt"}  # only the flow whose line crosses the curve


def test_td_flow_flags_and_store_flags() -> None:
    g = td().graph
    chat = by_label(g, "Chat\nmessage")
    assert g.value(chat, U(TG.encryptedInTransit)).toPython() is True
    assert g.value(chat, U(TG.publiclyExposed)).toPython() is True
    rev = by_label(g, "Chat\nmessage (reverse)")
    assert g.value(rev, U(TG.source)) == g.value(chat, U(TG.target))
    logs = by_label(g, "Chat logs")
    assert g.value(logs, U(TG.holdsLogs)).toPython() is True
    held = g.value(logs, U(TG.holds))
    assert g.value(held, U(TG.classification)) == U(TG.Confidential)


def test_td_declared_threats_by_diagram_type() -> None:
    g = td().graph
    a = declared(g, by_label(g, "Assistant"))
    assert a["Prompt injection from retrieved article"][TG.category] == {STRIDE.Tampering}
    assert a["Prompt injection from retrieved article"][TG.mitigationText] == {"Strip markup; output filter"}
    assert a["Assistant floods the LLM provider"][TG.threatStatus] == {"Mitigated"}
    assert TG.category not in a["Vendor lock-in"]  # "Business risk" has no STRIDE/LINDDUN category
    p = declared(g, by_label(g, "Analytics"))  # LINDDUN diagram
    assert p["Users linked across sessions"][TG.category] == {LINDDUN.Linking}
    assert p["Transcripts disclosed"][TG.category] == {LINDDUN.DataDisclosure}
    assert declared(g, by_label(g, "Prompt"))["Prompt disclosed to provider"][TG.category] == {STRIDE.InformationDisclosure}
    assert "Business risk" in "\n".join(td().unmapped)


def test_td_missing_optional_fields(tmp_path: Path) -> None:
    doc = {"version": "2.0", "summary": {"title": "Bare"},
           "detail": {"contributors": [], "diagramTop": 0, "reviewer": "", "threatTop": 0, "diagrams": [
               {"id": 0, "title": "d", "diagramType": "STRIDE", "thumbnail": "t", "version": "2.0", "cells": [
                   {"id": "a1", "shape": "actor", "zIndex": 1, "data": {"type": "tm.Actor", "hasOpenThreats": False}},
                   {"id": "p1", "shape": "process", "zIndex": 2, "data": {"type": "tm.Process", "name": "P", "hasOpenThreats": False}},
                   {"id": "f1", "shape": "flow", "zIndex": 3, "source": {"cell": "a1"}, "target": {"cell": "p1"},
                    "data": {"type": "tm.Flow", "hasOpenThreats": False}}]}]}}
    if formats_dir() is not None:
        assert validate(doc, "threat-dragon-v2.schema.json") == []
    p = tmp_path / "bare.json"
    p.write_text(json.dumps(doc))
    r = convert_file(p)
    assert r is not None
    g = r.graph
    actor = next(g.subjects(RDF.type, U(TG.ExternalEntity)))
    assert str(g.value(actor, RDFS.label)) == "a1"  # no name: the id is the label
    assert not set(g.subjects(U(TG.inZone), None))  # no boundary boxes: no zones invented


# ---------------------------------------------------------------------------------------------
# Threagile
# ---------------------------------------------------------------------------------------------
def tgl() -> ImportResult:
    r = convert_file(TGL)
    assert r is not None and r.format == "threagile"
    return r


def test_threagile_assets_ai_technology_and_unknown_technology() -> None:
    g = tgl().graph
    assert types(g, by_label(g, "Scoring API")) == {TG.Process, TGML.InferenceEndpoint}  # technology ai
    assert types(g, by_label(g, "Model store")) == {TG.DataStore}  # unknown-technology: core kind only
    assert types(g, by_label(g, "Analyst browser")) == {TG.ExternalEntity}
    assert g.value(by_label(g, "Analyst browser"), U(TG.publiclyExposed)).toPython() is True
    assert g.value(by_label(g, "Model store"), U(TG.encryptedAtRest)).toPython() is True
    assert g.value(by_label(g, "Legacy CRM"), U(TG.encryptedAtRest)).toPython() is False
    assert g.value(by_label(g, "Model store"), U(TG.criticality)).toPython() == 5


def test_threagile_data_asset_classification_from_cia_and_tags() -> None:
    g = tgl().graph
    cls = {str(g.value(a, RDFS.label)): str(g.value(a, U(TG.classification))) for a in g.subjects(RDF.type, U(TG.DataAsset))}
    assert cls == {"Customer records": TG.Personal, "Churn scores": TG.Internal, "Model weights": TG.Confidential}
    assert str(g.value(by_label(g, "Customer records"), U(DCT.description))) == "Name, e-mail,\nusage history"


def test_threagile_links_and_response_flows() -> None:
    g = tgl().graph
    view = by_label(g, "View scores")
    assert g.value(view, U(TG.authenticated)).toPython() is True
    assert g.value(view, U(TG.encryptedInTransit)).toPython() is True
    resp = by_label(g, "View scores (response)")
    assert g.value(resp, U(TG.carries)) == by_label(g, "Churn scores")
    assert g.value(resp, U(TG.source)) == by_label(g, "Scoring API")
    load = by_label(g, "Load model")
    assert g.value(load, U(TG.authenticated)).toPython() is False
    assert g.value(load, U(TG.encryptedInTransit)) is None  # unknown-protocol: not stated
    export = by_label(g, "Nightly export")
    assert g.value(export, U(TG.encryptedInTransit)).toPython() is True  # sftp


def test_threagile_trust_boundaries_innermost_zone() -> None:
    g = tgl().graph
    assert g.value(by_label(g, "Scoring API"), U(TG.inZone)) == by_label(g, "Kubernetes namespace")
    assert g.value(by_label(g, "Model store"), U(TG.inZone)) == by_label(g, "Cloud account")
    assert g.value(by_label(g, "Analyst browser"), U(TG.inZone)) == by_label(g, "Outside all trust boundaries")


def test_threagile_risk_tracking_and_individual_risks() -> None:
    g = tgl().graph
    view = declared(g, by_label(g, "View scores"))["unencrypted-communication"]
    assert view[TG.threatStatus] == {"mitigated"}
    assert view[TG.category] == {STRIDE.InformationDisclosure}
    assert view[TG.mitigationText] == {"TLS terminates at the ingress"}
    assert declared(g, by_label(g, "Load model"))["missing-authentication"][TG.threatStatus] == {"accepted"}
    inv = declared(g, by_label(g, "Scoring API"))["Model inversion"]
    assert inv[TG.category] == {STRIDE.InformationDisclosure} and inv[TG.severity] == {TG.High}
    assert any("/risk_tracking:" in n for n in tgl().unmapped)  # some-unknown-rule@nowhere


def test_threagile_odd_parts_are_reported_and_skipped(tmp_path: Path) -> None:
    doc = yaml.safe_load(TGL.read_text())
    doc = copy.deepcopy(doc)
    doc["technical_assets"]["Model store"]["type"] = "queue"
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    r = convert_file(p)
    assert r is not None
    w = "\n".join(r.warnings)
    assert "threagile: /technical_assets/Model store/type: unknown technical asset type 'queue'" in w
    labels = {str(o) for o in r.graph.objects(None, RDFS.label)}
    assert "Model store" not in labels and "Scoring API" in labels
    # the links to the skipped asset keep their source, with a placeholder target named after them
    assert any(lab.startswith("unnamed target of ") for lab in labels)
    assert "names no technical asset" in w
    for asset in doc["technical_assets"].values():
        asset["type"] = "queue"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match=r"threagile: /technical_assets: no usable technical asset"):
        convert_file(p)


def test_threagile_web_technology_and_accepted_formats(tmp_path: Path) -> None:
    doc = copy.deepcopy(yaml.safe_load(TGL.read_text()))
    api = doc["technical_assets"]["Scoring API"]
    api["technologies"] = ["web-application"]
    api["data_formats_accepted"] = ["XML", "serialization"]
    doc["technical_assets"]["Legacy CRM"]["technologies"] = ["sourcecode-repository"]
    p = tmp_path / "web.yaml"
    p.write_text(yaml.safe_dump(doc))
    r = convert_file(p)
    assert r is not None
    g = r.graph
    node = by_label(g, "Scoring API")
    assert g.value(node, U(TG.webApplication)).toPython() is True
    assert {str(o) for o in g.objects(node, U(TG.acceptsFormat))} == {"xml", "serialization"}
    assert not any("/technical_assets/Scoring API/technologies" in w for w in r.unmapped)
    # an asset without web technology gets no tg:webApplication
    assert g.value(by_label(g, "Model store"), U(TG.webApplication)) is None
    assert g.value(by_label(g, "Legacy CRM"), U(TG.developmentInfrastructure)).toPython() is True
    assert g.value(node, U(TG.developmentInfrastructure)) is None


def test_td_web_application_and_stored_credentials(tmp_path: Path) -> None:
    doc = {"version": "2.0", "summary": {"title": "Shop"},
           "detail": {"contributors": [], "diagramTop": 0, "reviewer": "", "threatTop": 0, "diagrams": [
               {"id": 0, "title": "d", "diagramType": "STRIDE", "thumbnail": "t", "version": "2.0", "cells": [
                   {"id": "p1", "shape": "process", "zIndex": 1,
                    "data": {"type": "tm.Process", "name": "Web shop", "isWebApplication": True}},
                   {"id": "p2", "shape": "process", "zIndex": 2,
                    "data": {"type": "tm.Process", "name": "Batch", "isWebApplication": False}},
                   {"id": "s1", "shape": "store", "zIndex": 3,
                    "data": {"type": "tm.Store", "name": "Users", "storesCredentials": True}}]}]}}
    p = tmp_path / "shop.json"
    p.write_text(json.dumps(doc))
    r = convert_file(p)
    assert r is not None
    g = r.graph
    assert g.value(by_label(g, "Web shop"), U(TG.webApplication)).toPython() is True
    assert g.value(by_label(g, "Batch"), U(TG.webApplication)).toPython() is False
    assert g.value(by_label(g, "Users"), U(TG.storesCredentials)).toPython() is True
    assert not any("isWebApplication" in w for w in r.unmapped)


# ---------------------------------------------------------------------------------------------
# Detection, Turtle output, bad input
# ---------------------------------------------------------------------------------------------
def test_rdf_files_are_left_to_the_rdf_loader(tmp_path: Path) -> None:
    ttl = tmp_path / "m.ttl"
    ttl.write_text("@prefix tg: <https://w3id.org/threatgraph/ontology#> . <urn:x> a tg:Process .")
    jsonld = tmp_path / "m.json"
    jsonld.write_text(json.dumps({"@context": {"tg": TG}, "@id": "urn:x", "@type": "tg:Process"}))
    assert detect_and_convert(ttl) is None
    assert detect_and_convert(jsonld) is None


@pytest.mark.parametrize("src", [OTM, TD, TGL], ids=["otm", "threat-dragon", "threagile"])
def test_import_model_writes_turtle_that_round_trips(src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.ttl"
    assert main(["import-model", str(src), "-o", str(out)]) == 0
    assert "not imported:" in capsys.readouterr().err
    back = rdflib.Graph().parse(out, format="turtle")
    r = convert_file(src)
    assert r is not None
    assert isomorphic(back, r.graph)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("broken.json", '{"otmVersion": "0.2.0",\n  "project": {"name": "x" "id": "y"}}', r"broken\.json:2:\d+: not valid JSON .*tried: OTM"),
        ("other.json", '{"hello": "world"}', r"other\.json: /: not an OTM .*Threat Dragon v2"),
        ("broken.yaml", "title: x\ntechnical_assets:\n  a: [1, 2\n", r"broken\.yaml:\d+:\d+: not valid YAML .*Threagile"),
        ("other.yaml", "just: a mapping\n", r"other\.yaml: /: not a Threagile model"),
        ("flow.otm", json.dumps({"otmVersion": "0.2.0", "project": {"name": "n", "id": "i"},
                                 "components": [{"id": "c", "type": "web-service", "parent": {"trustZone": "z"}}],
                                 "trustZones": [{"id": "z", "name": "Z", "risk": {"trustRating": 1}}],
                                 "dataflows": [{"id": "f", "name": "F", "source": "c", "destination": "ghost"}]}),
         r"otm: /components: no usable component \(.*/components/0: missing required field 'name'"),
        ("td.json", json.dumps({"version": "2", "summary": {"title": "t"}, "detail": {"diagrams": [{"id": 0, "cells": [
            {"id": "f", "shape": "flow", "zIndex": 0, "source": {"cell": "x"}, "data": {"type": "tm.Flow"}}]}]}}),
         r"threat-dragon: /detail/diagrams: no actor, process or store in any diagram \(.*/detail/diagrams/0/cells/0/"
         r"source/cell: the flow's source names no actor, process or store \('x'\)"),
        ("td1.json", json.dumps({"summary": {"title": "old"}, "detail": {"contributors": [], "diagrams": [
            {"title": "d", "diagramType": "STRIDE", "id": 0, "diagramJson": {"cells": [
                {"type": "tm.Flow", "id": "f", "source": {"id": "ghost"}, "target": {"id": "ghost"}}]}}]}}),
         r"threat-dragon: /detail/diagrams: no actor, process or store in any diagram \(.*/detail/diagrams/0/"
         r"diagramJson/cells/0/source/cell: the flow's source names no actor, process or store \('ghost'\)"),
    ],
)
def test_bad_input_names_the_format_and_the_place(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  name: str, text: str, expected: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InputError, match=expected):
        convert_file(p)
    assert main(["import-model", str(p)]) == 2
    assert main(["analyze", str(p)]) == 2
    assert main(["diff-model", str(p), str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("threatgraph: error:") == 3 and name in err


def test_analyze_accepts_interchange_formats_and_compares_declared_threats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ANALYZE, str(TD), "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    dec = doc["declared"]
    by_title = {t["title"]: t for t in dec["threats"]}
    assert dec["total"] == 7
    assert by_title["Impersonation of another customer"]["derived_by"]  # Spoofing on an external entity
    assert by_title["Vendor lock-in"]["derived_by"] == []  # no category: never matched
    assert dec["matched"] == sum(1 for t in dec["threats"] if t["derived_by"])
    elements = {f["element"]["iri"] for f in doc["findings"]}
    assert any(":0:assistant" in e for e in elements)


def test_declared_matching_requires_same_category_on_same_element(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ttl = tmp_path / "m.ttl"
    ttl.write_text(f"""@prefix tg: <{TG}> . @prefix stride: <{STRIDE}> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<urn:x:z> a tg:TrustZone .
<urn:x:user> a tg:ExternalEntity ; rdfs:label "User" ; tg:inZone <urn:x:z> ;
  tg:declaredThreat <urn:x:t1> , <urn:x:t2> .
<urn:x:t1> a tg:DeclaredThreat ; rdfs:label "user spoofed" ; tg:category stride:Spoofing .
<urn:x:t2> a tg:DeclaredThreat ; rdfs:label "user tampered" ; tg:category stride:Tampering .
""")
    assert main([*ANALYZE, str(ttl)]) == 0
    # the default table: the comparison in one line of the summary
    assert "Declared threats: 1 of 2 also derived (1 not derived)" in capsys.readouterr().out
    assert main([*ANALYZE, str(ttl), "--detail", "full"]) == 0
    out = capsys.readouterr().out
    assert "user spoofed [Spoofing] — derived by TG-PE-STRIDE" in out
    # STRIDE-per-element gives external entities Spoofing and Repudiation only, never Tampering
    assert "user tampered [Tampering] — NOT derived" in out


def test_turtle_overlay_completes_an_imported_model(tmp_path: Path) -> None:
    from threatgraph.analysis.model import load_model_files

    overlay = tmp_path / "overlay.ttl"
    flow = "urn:threatgraph:import:otm:fraud-scoring:flow:f2"
    overlay.write_text(f"@prefix tg: <{TG}> .\n<{flow}> tg:authenticated true .\n", encoding="utf-8")
    g = load_model_files([OTM, overlay]).graph
    node = U(flow)
    assert (node, RDF.type, U(TG.DataFlow)) in g  # from the OTM file
    assert g.value(node, U(TG.authenticated)).toPython() is True  # from the overlay: same IRI
    assert str(g.value(node, RDFS.label)) == "Internal scoring call"


def test_otm_odd_parts_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"otmVersion": "0.2.0", "project": {"name": "n", "id": "i"},
           "trustZones": [{"id": "z", "name": "Z", "risk": {"trustRating": 1}}],
           "components": [{"id": "c", "name": "C", "type": "web-service", "parent": {"trustZone": "z"}},
                          {"id": "c", "name": "Again", "type": "web-service", "parent": {"trustZone": "z"}},
                          {"id": "d", "name": "D", "type": "database", "parent": {"trustZone": "nowhere"},
                           "threats": [{"threat": "unknown", "state": "EXPOSED"}]}],
           "dataflows": [{"id": "f", "name": "F", "source": "c", "destination": "ghost", "assets": ["none"]},
                         {"id": "g", "name": "G", "source": "c", "destination": "d"}]}
    p = tmp_path / "odd.otm.json"
    p.write_text(json.dumps(doc))
    r = convert_file(p)
    assert r is not None
    w = "\n".join(r.warnings)
    assert "otm: /components/1/id: duplicate component id 'c'; the first one is kept (skipped)" in w
    assert "otm: /components/2/parent/trustZone: no trust zone with id 'nowhere' (the component is imported in no trust zone)" in w
    assert "otm: /components/2/threats/0/threat: no threat with id 'unknown' in /threats (skipped)" in w
    assert ("otm: /dataflows/0/destination: the flow's target names no component ('ghost'); attached to a placeholder "
            "external element 'unnamed target of F'") in w
    assert "otm: /dataflows/0/assets/0: no asset with id 'none' (skipped)" in w
    g = r.graph
    labels = {str(o) for o in g.objects(None, RDFS.label)}
    assert {"C", "D", "F", "G", "unnamed target of F"} <= labels and "Again" not in labels
    assert main(["import-model", str(p), "-o", str(tmp_path / "o.ttl")]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_not_applicable_declared_threats_still_derived_are_reported(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A threat the model marks not applicable keeps its finding; the reports name the overlap (issue 13)."""
    ttl = tmp_path / "m.ttl"
    ttl.write_text(f"""@prefix tg: <{TG}> . @prefix stride: <{STRIDE}> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<urn:x:z> a tg:TrustZone .
<urn:x:user> a tg:ExternalEntity ; rdfs:label "User" ; tg:inZone <urn:x:z> ;
  tg:declaredThreat <urn:x:t1> , <urn:x:t2> .
<urn:x:t1> a tg:DeclaredThreat ; rdfs:label "user spoofed" ; tg:category stride:Spoofing ;
  tg:threatStatus "NotApplicable" ; tg:mitigationText "users sign in with the corporate IdP" .
<urn:x:t2> a tg:DeclaredThreat ; rdfs:label "user denies" ; tg:category stride:Repudiation ; tg:threatStatus "Open" .
""")
    assert main([*ANALYZE, str(ttl)]) == 0
    assert "Declared threats: 2 of 2 also derived (0 not derived; 1 derived the model marks not applicable)" in \
        capsys.readouterr().out
    assert main([*ANALYZE, str(ttl), "--detail", "full"]) == 0
    out = capsys.readouterr().out
    assert ("user spoofed [Spoofing, NotApplicable] — derived by TG-PE-STRIDE although the model marks it not "
            "applicable (users sign in with the corporate IdP)") in out
    assert "user denies [Repudiation, Open] — derived by TG-PE-STRIDE\n" in out
    out_json = tmp_path / "r.json"
    assert main([*ANALYZE, str(ttl), "-f", "json", "-o", str(out_json)]) == 0
    dec = json.loads(out_json.read_text(encoding="utf-8"))["declared"]
    assert dec["not_applicable_derived"] == 1
    assert {t["title"]: t["not_applicable"] for t in dec["threats"]} == {"user spoofed": True, "user denies": False}


def test_otm_from_a_threat_modeling_tool_model_keeps_its_tmt_properties(tmp_path: Path) -> None:
    """StartLeft's conversion of a .tm7 model to OTM (OWASP Threat Dragon ships one as a demo) keeps each stencil's
    Threat Modeling Tool properties in ``properties``. They are read as in a .tm7 file: "Out Of Scope" is honoured,
    "... TLS Enforced: True" encrypts the service's flows, an Azure firewall open to all networks exposes it, an
    identity provider authenticates callers. Before, the whole object was reported as "component field with no
    home" and the out-of-scope statement was lost."""
    doc: dict[str, Any] = {
        "otmVersion": "0.1.0", "project": {"name": "shop", "id": "shop"},
        "trustZones": [{"id": "cloud", "name": "Public Cloud", "risk": {"trustRating": 10}}],
        "components": [
            {"id": "db", "name": "Orders DB", "type": "CD-MICROSOFT-AZURE-DB-POSTGRESQL", "parent": {"trustZone": "cloud"},
             "properties": {"Name": "Orders DB", "Out Of Scope": "false", "Azure Postgres DB TLS Enforced": "True",
                            "Azure Postgres DB Firewall Settings": "Allow access from all networks"}},
            {"id": "api", "name": "Public API", "type": "web-service", "parent": {"trustZone": "cloud"},
             "properties": {"Out Of Scope": "true", "Reason For Out Of Scope": "the platform team's",
                            "Identity Provider": "Azure AD", "Web API Technologies": "Select", "Colour": ["red"]}},
        ],
        "dataflows": [{"id": "f1", "name": "Query", "source": "api", "destination": "db",
                       "properties": {"Dataflow Order": "0", "Provides Integrity": "No"}}],
    }
    p = tmp_path / "from-tmt.otm.json"
    p.write_text("    " + json.dumps(doc, indent=4), encoding="utf-8")  # indented as StartLeft writes it
    res = convert_file(p)
    assert res is not None and res.format == "otm"
    g = res.graph
    db, api, flow = by_label(g, "Orders DB"), by_label(g, "Public API"), by_label(g, "Query")
    assert g.value(api, U(TG.outOfScope)).toPython() is True
    assert str(g.value(api, U(TG.outOfScopeReason))) == "the platform team's"
    assert g.value(db, U(TG.outOfScope)).toPython() is False
    assert g.value(api, U(TG.authenticated)).toPython() is True
    assert g.value(db, U(TG.publiclyExposed)).toPython() is True
    assert g.value(flow, U(TG.encryptedInTransit)).toPython() is True
    assert g.value(flow, U(TG.integrityProtected)).toPython() is False  # stated on the flow: kept
    notes = "\n".join(res.unmapped)
    assert "component field with no home" not in notes
    assert "/components/*/properties/Colour" in notes and "/dataflows/*/properties/Dataflow Order" in notes


@pytest.mark.parametrize(("source", "edit"), [
    # a number where OTM has a list of asset ids (found by mutating the test models)
    ("ml-platform.otm.json", lambda d: d["components"][1].__setitem__("assets", {"processed": 5})),
    # an object where Threat Dragon has a coordinate
    ("rag-assistant.threatdragon.json",
     lambda d: d["detail"]["diagrams"][0]["cells"][0].__setitem__("position", {"x": {"a": 1}, "y": 0})),
    # text that is not a number where Threat Dragon has a coordinate
    ("rag-assistant.threatdragon.json",
     lambda d: d["detail"]["diagrams"][0]["cells"][0].__setitem__("position", {"x": "left", "y": 0})),
])
def test_field_of_an_unexpected_type_is_one_error_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, edit: Any) -> None:
    """A field whose type or shape the format never gives it was a TypeError / ValueError traceback from deep in an
    importer; it is one error naming the file and the format (exit 2)."""
    doc = json.loads((HERE / source).read_text(encoding="utf-8"))
    edit(doc)
    p = tmp_path / source
    p.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError, match=r"a field has a (type or shape|value) the .* format does not give it"):
        convert_file(p)
    assert main(["import-model", str(p), "-o", str(tmp_path / "out.ttl")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and source in err
