"""Importers on the shapes of real published models (issue: robustness on third-party models).

Each fixture here is written for these tests and reproduces a shape found in a public model that the
first importers refused or read incompletely (docs/interchange.md, "Real models checked"): OTM in YAML
and with the keys of early OTM drafts (StartLeft's examples), Microsoft Threat Modeling Tool wording in
OTM threat categories, Threat Dragon 1.x files, and the detail fields of Threagile's example model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib
import yaml
from rdflib.namespace import RDF, RDFS

from threatgraph.cli import main
from threatgraph.errors import InputError
from threatgraph.interchange import convert_file
from threatgraph.interchange.common import ImportResult
from threatgraph.terms import STRIDE, TG

HERE = Path(__file__).resolve().parent / "interchange"
DRAFT_OTM = HERE / "draft-shapes.otm"
TMT_OTM = HERE / "tmt-export.otm.yaml"
TD_V1 = HERE / "legacy-v1.threatdragon.json"
TGL = HERE / "ml-platform.threagile.yaml"
U = rdflib.URIRef


def _convert(path: Path) -> ImportResult:
    r = convert_file(path)
    assert r is not None
    return r


def _by_label(g: rdflib.Graph, label: str) -> rdflib.term.Node:
    found = list(g.subjects(RDFS.label, rdflib.Literal(label)))
    assert len(found) == 1, (label, found)
    return found[0]


def _count(g: rdflib.Graph, cls: str) -> int:
    return len(set(g.subjects(RDF.type, U(cls))))


def test_otm_yaml_with_early_draft_keys_is_read_with_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    r = _convert(DRAFT_OTM)
    g = r.graph
    assert r.format == "otm"
    assert (_count(g, TG.ExternalEntity), _count(g, TG.Process), _count(g, TG.DataStore)) == (1, 1, 1)
    assert _count(g, TG.TrustZone) == 2 and _count(g, TG.DataFlow) == 2
    api, orders = _by_label(g, "Shop API"), _by_label(g, "Orders")
    assert g.value(api, U(TG.inZone)) == g.value(orders, U(TG.inZone)) == _by_label(g, "Core")
    flow = _by_label(g, "Store order")
    assert (g.value(flow, U(TG.source)), g.value(flow, U(TG.target))) == (api, orders)
    assert g.value(_by_label(g, "Core"), U(TG.trustLevel)) is None  # no 'risk': no trust level invented
    text = "\n".join(r.warnings)
    for word in ("'trustzones' read as 'trustZones'", "/components/*/parent: a plain id string",
                 "'from' read as 'source'", "'to' read as 'destination'", "without the required 'risk'"):
        assert word in text
    assert any("/dataflows/*/type" in n for n in r.unmapped)  # the draft's flow type is reported, not lost
    assert capsys.readouterr().err == ""  # the library returns warnings; the commands print them
    for argv in (["import-model", str(DRAFT_OTM)], ["validate", str(DRAFT_OTM)],
                 ["analyze", "--force", str(DRAFT_OTM), "--format", "json"],
                 ["diff-model", str(DRAFT_OTM), str(DRAFT_OTM)]):
        assert main(argv) in (0, 1)
        err = capsys.readouterr().err
        assert "threatgraph: warning:" in err and "draft-shapes.otm: otm: /trustzones" in err, argv
        assert err.count("'trustzones' read as 'trustZones'") == 1, argv  # printed once per command


def test_otm_draft_parent_naming_nothing_is_reported(tmp_path: Path) -> None:
    doc = yaml.safe_load(DRAFT_OTM.read_text())
    doc["components"][0]["parent"] = "nowhere"
    p = tmp_path / "bad.otm"
    p.write_text(yaml.safe_dump(doc))
    r = _convert(p)
    assert any("bad.otm: otm: /components/0/parent: parent 'nowhere' names no trust zone" in w and
               w.endswith("(the component is imported in no trust zone)") for w in r.warnings)
    elements = set(r.graph.subjects(U(TG.partOf), None))
    assert len(elements) == 3 + 2  # three components and two flows, as without the fault
    zoned = set(r.graph.subjects(U(TG.inZone), None))
    assert len(elements - zoned) == 2 + 1  # the flows and the component whose parent names nothing


def test_otm_yaml_file_with_tmt_category_words(capsys: pytest.CaptureFixture[str]) -> None:
    r = _convert(TMT_OTM)
    g = r.graph
    assert r.format == "otm" and not r.warnings
    threats = list(g.subjects(RDF.type, U(TG.DeclaredThreat)))
    assert len(threats) == 1
    assert g.value(threats[0], U(TG.category)) == U(STRIDE.ElevationOfPrivilege)
    assert not any("categories" in n for n in r.unmapped)
    assert g.value(_by_label(g, "Ledger rows"), U(TG.classification)) == U(TG.Confidential)
    assert any("/assets/*/risk/riskComments" in n for n in r.unmapped)
    assert any("/threats/*/risk/likelihoodComment" in n for n in r.unmapped)
    assert _by_label(g, "Teller app") in set(g.subjects(RDF.type, U(TG.ExternalEntity)))
    assert _by_label(g, "Ledger DB") in set(g.subjects(RDF.type, U(TG.DataStore)))
    assert main(["analyze", "--force", str(TMT_OTM), "--format", "json"]) in (0, 1)
    assert "Traceback" not in capsys.readouterr().err


def test_otm_json_and_yaml_spellings_give_the_same_graph(tmp_path: Path) -> None:
    import json

    from rdflib.compare import isomorphic

    doc = yaml.safe_load(TMT_OTM.read_text())
    j = tmp_path / "tmt-export.otm.json"
    j.write_text(json.dumps(doc))
    y = tmp_path / "tmt-export.otm"
    y.write_text(TMT_OTM.read_text())
    assert isomorphic(_convert(j).graph, _convert(y).graph)
    assert isomorphic(_convert(j).graph, _convert(TMT_OTM).graph)


def test_yaml_that_is_neither_threagile_nor_otm_names_both(tmp_path: Path) -> None:
    p = tmp_path / "other.yaml"
    p.write_text("just: a mapping\n")
    with pytest.raises(InputError, match=r"not a Threagile model .* or an OTM model"):
        convert_file(p)


def test_threat_dragon_v1_is_upgraded_like_threat_dragon_2_does(capsys: pytest.CaptureFixture[str]) -> None:
    r = _convert(TD_V1)
    g = r.graph
    assert any("a Threat Dragon version 1 diagram" in w and "/detail/diagrams/*/diagramJson" in w for w in r.warnings)
    visitor, kiosk, audit = _by_label(g, "Visitor"), _by_label(g, "Kiosk\nshell"), _by_label(g, "Audit log")
    assert (RDF.type, U(TG.ExternalEntity)) in g.predicate_objects(visitor)
    assert g.value(audit, U(TG.holdsLogs)) == rdflib.Literal(True)
    assert g.value(audit, U(TG.encryptedAtRest)) == rdflib.Literal(False)
    assert g.value(audit, U(TG.holds)) is not None  # storesCredentials
    touch, log = _by_label(g, "Touch input"), _by_label(g, "Audit events")
    assert (g.value(touch, U(TG.source)), g.value(touch, U(TG.target))) == (visitor, kiosk)
    assert g.value(touch, U(TG.protocol)) == rdflib.Literal("USB HID")
    assert g.value(touch, U(TG.publiclyExposed)) == rdflib.Literal(True)
    assert g.value(touch, U(TG.crossesBoundary)) == rdflib.Literal(True)
    assert g.value(log, U(TG.crossesBoundary)) is None
    assert g.value(log, U(TG.encryptedInTransit)) == rdflib.Literal(True)
    assert _count(g, TG.TrustBoundary) == 1
    threat = g.value(kiosk, U(TG.declaredThreat))
    assert g.value(threat, U(TG.category)) == U(STRIDE.ElevationOfPrivilege)
    assert g.value(threat, RDFS.label) == rdflib.Literal("Kiosk escape")
    assert g.value(kiosk, U(TG.runsPrivileged)) == rdflib.Literal(False)  # privilegeLevel "kiosk user"
    assert not any("privilegeLevel" in n for n in r.unmapped)
    assert g.value(kiosk, U(TG.outOfScope)) == rdflib.Literal(True)  # still imported and analysed
    assert g.value(kiosk, U(TG.outOfScopeReason)) == rdflib.Literal("Vendor-managed")
    assert g.value(visitor, U(TG.outOfScope)) is None  # not stated
    assert main(["validate", str(TD_V1)]) in (0, 1)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "threatgraph: warning:" in err


def test_threat_dragon_v1_with_a_broken_diagram_is_a_located_error(tmp_path: Path) -> None:
    p = tmp_path / "td1.json"
    p.write_text('{"summary": {"title": "old"}, "detail": {"diagrams": [{"id": 0, "diagramJson": []}]}}')
    with pytest.raises(InputError, match=r"td1\.json: threat-dragon: /detail/diagrams/0/diagramJson: expected an object"):
        convert_file(p)


def test_threagile_individual_risk_details_and_boundary_tags_are_reported(tmp_path: Path) -> None:
    doc = yaml.safe_load(TGL.read_text())
    asset = next(iter(doc["technical_assets"].values()))["id"]
    doc["individual_risk_categories"] = {"Odd thing": {
        "id": "odd-thing", "description": "d", "impact": "i", "asvs": "V0", "cheat_sheet": "https://example.com",
        "action": "a", "mitigation": "m", "check": "c", "function": "architecture", "stride": "tampering",
        "detection_logic": "l", "risk_assessment": "r", "false_positives": "f", "model_failure_possible_reason": False,
        "cwe": 693, "risks_identified": {"Odd at asset": {
            "severity": "elevated", "exploitation_likelihood": "likely", "exploitation_impact": "medium",
            "data_breach_probability": "possible", "data_breach_technical_assets": [asset],
            "most_relevant_technical_asset": asset}}}}
    for z in (doc.get("trust_boundaries") or {}).values():
        z["tags"] = ["aws"]
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(doc))
    r = _convert(p)
    notes = "\n".join(r.unmapped)
    for field in ("cheat_sheet", "asvs", "cwe", "detection_logic", "risks_identified/*/exploitation_likelihood",
                  "risks_identified/*/data_breach_technical_assets"):
        assert f"/individual_risk_categories/*/{field}" in notes
    assert "/trust_boundaries/*/tags" in notes or not doc.get("trust_boundaries")
    risk = r.graph.value(None, RDFS.label, rdflib.Literal("Odd thing"))
    assert risk is not None and r.graph.value(risk, U(TG.severity)) == U(TG.High)


SPLIT = HERE / "threagile-split" / "main.yaml"


def test_threagile_includes_are_merged_like_threagile_does() -> None:
    r = _convert(SPLIT)
    g = r.graph
    assert r.format == "threagile"
    shop, db = _by_label(g, "Shop"), _by_label(g, "DB")
    flow = _by_label(g, "Save order")
    assert (g.value(flow, U(TG.source)), g.value(flow, U(TG.target))) == (shop, db)
    assert g.value(flow, U(TG.encryptedInTransit)) == rdflib.Literal(True)
    assert g.value(shop, U(TG.inZone)) == g.value(db, U(TG.inZone)) == _by_label(g, "Net")
    assert (_by_label(g, "Split shop"), RDF.type, U(TG.System)) in g  # the title came from an included file
    threats = {str(g.value(t, RDFS.label)): t for t in g.objects(db, U(TG.declaredThreat))}
    assert set(threats) == {"Weird thing", "weird-thing"}  # the identified risk and the tracked one
    for t in threats.values():
        assert g.value(t, U(TG.category)) == U(STRIDE.Tampering)
    assert g.value(threats["Weird thing"], U(TG.severity)) == U(TG.High)
    assert g.value(threats["weird-thing"], U(TG.threatStatus)) == rdflib.Literal("mitigated")
    notes = "\n".join(r.unmapped)
    assert "/includes" not in notes
    assert "/custom_risk_categories/*/cwe" in notes
    assert "/custom_risk_categories/*/risks_identified/*/exploitation_likelihood" in notes
    assert "/management_summary_comment" in notes  # merged (both parts), reported as having no home


def test_threagile_merge_includes_joins_summaries_and_lists() -> None:
    from threatgraph.interchange.threagile import merge_includes

    doc = merge_includes(yaml.safe_load(SPLIT.read_text()), SPLIT)
    assert doc["management_summary_comment"] == "First part.\n\nSecond part."
    assert "includes" not in doc and set(doc["technical_assets"]) == {"Shop", "DB"}
    assert [c["id"] for c in doc["custom_risk_categories"]] == ["weird-thing"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"main.yaml": "threagile_version: 1.0.0\ntitle: A\nincludes: [meta.yaml]\n", "meta.yaml": "title: B\n"},
         r"main\.yaml: threagile: /includes/0/title: conflicting values 'A' and 'B'"),
        ({"main.yaml": "threagile_version: 1.0.0\ntitle: A\nincludes: [gone.yaml]\n"},
         r"main\.yaml: threagile: /includes/0: cannot read included file 'gone\.yaml'"),
        ({"main.yaml": "threagile_version: 1.0.0\ntitle: A\nincludes: [b.yaml]\n", "b.yaml": "includes: [main.yaml]\n"},
         r"/includes/0: 'main\.yaml' includes itself"),
        ({"main.yaml": "threagile_version: 1.0.0\ntitle: A\nincludes: [b.yaml]\n", "b.yaml": "- a list\n"},
         r"main\.yaml: threagile: /includes/0: included file 'b\.yaml' is not a YAML mapping"),
    ],
    ids=["conflict", "missing", "cycle", "not-a-mapping"],
)
def test_threagile_include_problems_are_located_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       files: dict[str, str], expected: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    main_file = tmp_path / "main.yaml"
    with pytest.raises(InputError, match=expected):
        convert_file(main_file)
    assert main(["validate", str(main_file)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "main.yaml" in err


def test_threat_dragon_2_names_drawn_on_boxes_and_unnamed_flows(tmp_path: Path) -> None:
    """Threat Dragon 2.x demo models keep a boundary box's name only in attrs.label.text and leave flow
    names empty (td.vue/src/service/demo/three-tier-web-app.json)."""
    import json

    cells = [
        {"id": "box", "shape": "trust-boundary-box", "zIndex": -1, "position": {"x": 0, "y": 0},
         "size": {"width": 300, "height": 200}, "attrs": {"label": {"text": "Internet"}},
         "data": {"type": "tm.BoundaryBox", "description": "", "isTrustBoundary": True}},
        {"id": "ui", "shape": "process", "zIndex": 1, "position": {"x": 50, "y": 50}, "size": {"width": 100, "height": 100},
         "attrs": {"text": {"text": "Web UI"}}, "data": {"type": "tm.Process", "name": "Web UI"}},
        {"id": "api", "shape": "process", "zIndex": 2, "position": {"x": 500, "y": 50}, "size": {"width": 100, "height": 100},
         "data": {"type": "tm.Process", "name": "API"}},
        {"id": "f", "shape": "flow", "zIndex": 3, "source": {"cell": "ui", "port": "p1"}, "target": {"cell": "api", "port": "p2"},
         "labels": [{"attrs": {"labelText": {"text": ""}}}], "data": {"type": "tm.Flow", "name": "", "isBidirectional": True}},
    ]
    doc = {"version": "2.3.0", "summary": {"title": "Boxes", "id": 0},
           "detail": {"diagramTop": 1, "threatTop": 0, "diagrams": [
               {"id": 0, "title": "d", "diagramType": "STRIDE", "version": "2.4.0", "cells": cells}]}}
    p = tmp_path / "boxes.json"
    p.write_text(json.dumps(doc))
    g = _convert(p).graph
    zone = _by_label(g, "Internet")
    assert (zone, RDF.type, U(TG.TrustZone)) in g
    assert g.value(_by_label(g, "Web UI"), U(TG.inZone)) == zone
    forward, back = _by_label(g, "Web UI → API"), _by_label(g, "Web UI → API (reverse)")
    assert g.value(back, U(TG.source)) == g.value(forward, U(TG.target)) == _by_label(g, "API")
