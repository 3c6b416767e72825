"""pytm JSON import (issue 12): the JSON that pytm 1.4 writes for its own sample model (`tm.py --json`,
OWASP/pytm tm.py, tests/interchange/pytm-sample.json), checked against its source counts and pytm's
threat library; bad input."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import rdflib
from rdflib.namespace import RDF, RDFS

from threatgraph.cli import main
from threatgraph.errors import InputError
from threatgraph.interchange import convert_file
from threatgraph.interchange.pytm_json import convert
from threatgraph.terms import CAPEC, DCT, TG, TGML

SAMPLE = Path(__file__).resolve().parent / "interchange" / "pytm-sample.json"
U = rdflib.URIRef


def _doc() -> dict[str, Any]:
    return dict(json.loads(SAMPLE.read_text(encoding="utf-8")))


def _count(g: rdflib.Graph, cls: str) -> int:
    return len(set(g.subjects(RDF.type, U(cls))))


def _by_label(g: rdflib.Graph, label: str) -> rdflib.URIRef:
    nodes = [s for s in g.subjects(RDFS.label, rdflib.Literal(label)) if isinstance(s, rdflib.URIRef)]
    assert len(nodes) == 1, label
    return nodes[0]


def test_pytm_sample_imports_with_the_counts_of_its_source() -> None:
    doc = _doc()
    res = convert_file(SAMPLE)
    assert res is not None and res.format == "pytm"
    g = res.graph
    classes = Counter(e["__class__"] for e in doc["elements"])
    assert classes == {"Actor": 1, "Server": 1, "Datastore": 2, "Lambda": 1}
    assert _count(g, TG.ExternalEntity) == classes["Actor"]
    assert _count(g, TG.Process) == classes["Server"] + classes["Lambda"]
    assert _count(g, TG.DataStore) == classes["Datastore"]
    assert _count(g, TG.DataFlow) == len(doc["flows"]) == 6
    assert _count(g, TG.TrustZone) == len(doc["boundaries"]) == 3
    assert _count(g, TG.DeclaredThreat) == len(doc["findings"]) == 100
    assert res.warnings == []
    # every finding on its element or flow, with pytm's threat id
    per_target: Counter[str] = Counter()
    for t in g.subjects(RDF.type, U(TG.DeclaredThreat)):
        owner = g.value(predicate=U(TG.declaredThreat), object=t)
        per_target[str(g.value(owner, RDFS.label))] += 1
    assert per_target == Counter(f["target"] for f in doc["findings"])
    ids = Counter(str(g.value(t, U(DCT.identifier))) for t in g.subjects(RDF.type, U(TG.DeclaredThreat)))
    assert ids == Counter(f["threat_id"] for f in doc["findings"])
    # zones and flow ends as pytm states them
    assert g.value(_by_label(g, "User"), U(TG.inZone)) == _by_label(g, "Internet")
    flow = next(s for s in g.subjects(RDFS.label, rdflib.Literal("Insert query with comments"))
                if (s, RDF.type, U(TG.DataFlow)) in g)
    assert g.value(flow, U(TG.source)) == _by_label(g, "Web Server")
    for f in doc["flows"]:  # pytm 1.4 writes the sample's protocols empty: no tg:protocol then
        node = next(x for x in g.subjects(U(DCT.identifier), rdflib.Literal(f["name"]))
                    if (x, RDF.type, U(TG.DataFlow)) in g)
        assert g.value(node, U(TG.protocol)) == (rdflib.Literal(f["protocol"]) if f["protocol"] else None)
    data = next(s for s in g.subjects(RDFS.label, rdflib.Literal("Insert query with comments"))
                if (s, RDF.type, U(TG.DataAsset)) in g)
    assert (flow, U(TG.carries), data) in g and g.value(data, U(TG.classification)) == U(TG.Public)


def test_pytm_findings_match_pytm_threat_library() -> None:
    """The threat ids and severities the import keeps are those of pytm's own threat library."""
    threatlib = Path(__import__("pytm").__file__).parent / "threatlib" / "threats.json" if _has_pytm() else None
    if threatlib is None:
        pytest.skip("pytm is not installed (its threat library is the reference)")
    lib = {t["SID"]: t for t in json.loads(threatlib.read_text(encoding="utf-8"))}
    g = convert(_doc(), "s.json").graph
    for t in g.subjects(RDF.type, U(TG.DeclaredThreat)):
        sid = str(g.value(t, U(DCT.identifier)))
        assert sid in lib, sid
        assert str(g.value(t, RDFS.label)) == lib[sid]["description"].strip()
        sev = lib[sid]["severity"].lower()
        expected = {"very high": TG.Critical, "high": TG.High, "medium": TG.Medium, "low": TG.Low, "very low": TG.Info}
        assert g.value(t, U(TG.severity)) == U(expected[sev])
        capecs = {r for r in g.objects(t, U(DCT.references)) if str(r).startswith(str(CAPEC))}
        assert len(capecs) == len(set(re.findall(r"capec\.mitre\.org/data/definitions/(\d+)", lib[sid]["references"])))


def _has_pytm() -> bool:
    try:
        __import__("pytm")
    except ImportError:
        return False
    return True


def test_pytm_controls_and_ml_classes() -> None:
    doc = _doc()
    web = next(e for e in doc["elements"] if e["name"] == "Web Server")
    web["controls"]["sanitizesInput"] = True
    web["controls"]["usesMFA"] = True
    web["controls"]["encodesOutput"] = True
    web["controls"]["implementsCSRFToken"] = False
    flow = next(f for f in doc["flows"] if f["name"] == "User enters comments (*)")
    flow["controls"]["isEncrypted"] = True
    flow["inScope"] = False
    agent = copy.deepcopy(web)
    agent.update({"__class__": "Agent", "name": "Support agent", "findings": []})
    llm = copy.deepcopy(web)
    llm.update({"__class__": "LLM", "name": "Hosted model", "isThirdParty": True, "findings": []})
    doc["elements"] += [agent, llm]
    g = convert(doc, "c.json").graph
    w = _by_label(g, "Web Server")
    assert g.value(w, U(TG.inputValidated)) == rdflib.Literal(True)
    assert g.value(w, U(TG.authenticated)) == rdflib.Literal(False)  # pytm states its controls (false = absent)
    assert g.value(w, U(TG.outputEncoded)) == rdflib.Literal(True)
    assert g.value(w, U(TG.csrfProtected)) == rdflib.Literal(False)
    ctrl = g.value(w, U(TG.hasControl))
    assert g.value(ctrl, RDFS.label) == rdflib.Literal("usesMFA")
    f = _by_label(g, "User enters comments (*)")
    assert g.value(f, U(TG.encryptedInTransit)) == rdflib.Literal(True)
    assert g.value(f, U(TG.outOfScope)) == rdflib.Literal(True)
    assert (_by_label(g, "Support agent"), RDF.type, U(TGML.LLMAgent)) in g
    hosted = _by_label(g, "Hosted model")
    assert (hosted, RDF.type, U(TGML.LLMProvider)) in g and (hosted, RDF.type, U(TG.ExternalEntity)) in g


def test_pytm_boundary_crossing_as_pytm_decides() -> None:
    """pytm's Element.crosses: a flow crosses when its ends' boundaries differ, one of them possibly none
    (the sample's Web Server is drawn outside every boundary); same boundary or none at both ends: no crossing."""
    doc = _doc()
    doc["elements"].append({"__class__": "Process", "name": "Loose job", "inBoundary": None, "controls": {}})
    doc["flows"].append({"name": "Job to web", "source": "Loose job", "sink": "Web Server", "data": []})
    g = convert(doc, "b.json").graph
    crossing = {str(g.value(f, RDFS.label)) for f in g.subjects(U(TG.crossesBoundary), rdflib.Literal(True))}
    assert crossing == {"User enters comments (*)", "Show comments (*)", "Insert query with comments",
                        "Retrieve comments", "Serverless function periodically cleans DB"}
    # negative: both ends in Server/DB, both ends outside every boundary
    assert "Database verify real user identity" not in crossing and "Job to web" not in crossing
    assert (None, U(TG.crossesBoundary), rdflib.Literal(False)) not in g


def test_pytm_server_xml_resources_and_vpn() -> None:
    """A pytm Server is the element pytm's threat library resolves its web threats on: tg:webApplication;
    usesXMLParser → accepts XML; a data format → accepted by the flow's sink; handlesResourceConsumption →
    rate limited; a flow's usesVPN or a TLS version → encrypted."""
    doc = _doc()
    web = next(e for e in doc["elements"] if e["name"] == "Web Server")
    web["usesXMLParser"] = True
    web["controls"]["handlesResourceConsumption"] = True
    next(d for d in doc["data"] if d["name"] == "Insert query with comments")["format"] = "JSON"
    flow = next(f for f in doc["flows"] if f["name"] == "Show comments (*)")
    flow["controls"]["usesVPN"] = True
    next(f for f in doc["flows"] if f["name"] == "Retrieve comments")["tlsVersion"] = "TLSVersion.TLSv12"
    g = convert(doc, "x.json").graph
    w = _by_label(g, "Web Server")
    assert g.value(w, U(TG.webApplication)) == rdflib.Literal(True)
    assert g.value(w, U(TG.acceptsFormat)) == rdflib.Literal("xml")
    # the data's format goes to the sink of the flow carrying it (SQL Database), not to the sender
    assert set(g.objects(_by_label(g, "SQL Database"), U(TG.acceptsFormat))) == {rdflib.Literal("json")}
    assert rdflib.Literal("json") not in set(g.objects(w, U(TG.acceptsFormat)))
    assert g.value(w, U(TG.rateLimited)) == rdflib.Literal(True)
    assert g.value(_by_label(g, "Show comments (*)"), U(TG.encryptedInTransit)) == rdflib.Literal(True)
    # negative: a Lambda is no web application; pytm's defaults (false) say nothing more
    lam = _by_label(g, "AWS Lambda")
    assert g.value(lam, U(TG.webApplication)) is None and g.value(lam, U(TG.acceptsFormat)) is None
    assert g.value(lam, U(TG.rateLimited)) == rdflib.Literal(False)
    assert g.value(_by_label(g, "Retrieve comments"), U(TG.encryptedInTransit)) == rdflib.Literal(True)  # TLS 1.2
    # negative: TLSVersion.NONE and isEncrypted false
    assert g.value(_by_label(g, "User enters comments (*)"), U(TG.encryptedInTransit)) == rdflib.Literal(False)


def test_pytm_odd_parts_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _doc()
    doc["elements"].append({"__class__": "Server"})  # no name
    doc["elements"].append(copy.deepcopy(doc["elements"][0]))  # duplicate
    doc["flows"][0]["sink"] = "Nowhere"
    doc["findings"][0]["target"] = "Ghost"
    res = convert(doc, "odd.json")
    w = "\n".join(res.warnings)
    assert "odd.json: pytm: /elements/5: missing required field 'name' (skipped)" in w
    assert "odd.json: pytm: /elements/6/name: duplicate name 'User'" in w
    assert ("/flows/0/sink: the flow's target names no element ('Nowhere'); attached to a placeholder external "
            "element 'unnamed target of Database verify real user identity'") in w
    assert "/findings/0/target: no element or flow named 'Ghost' (skipped)" in w
    g = res.graph
    assert _count(g, TG.DeclaredThreat) == 99 and _count(g, TG.DataFlow) == 6
    p = tmp_path / "odd.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["import-model", str(p), "-o", str(tmp_path / "o.ttl")]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_pytm_nothing_usable_is_refused() -> None:
    with pytest.raises(InputError, match=r"pytm: /elements: no usable element"):
        convert({"name": "x", "elements": [{"__class__": "Actor"}], "flows": [], "boundaries": []}, "e.json")
    with pytest.raises(InputError, match="a pytm model is a JSON object"):
        convert([], "e.json")


def test_pytm_llm_roles_from_its_attributes() -> None:
    """pytm's LLM class by what pytm says of it: agent capabilities → LLM agent, a system prompt or RAG → LLM
    application, otherwise the served model (LLM inference endpoint); third party → provider (an external
    entity); processesUntrustedInput → receives untrusted input."""
    doc = _doc()
    web = next(e for e in doc["elements"] if e["name"] == "Web Server")
    llms = {"Agentic": {"hasAgentCapabilities": True}, "Chat app": {"hasSystemPrompt": True,
            "processesUntrustedInput": True}, "Retriever": {"hasRAG": True}, "Plain model": {},
            "Vendor model": {"isThirdParty": True, "hasSystemPrompt": True}}
    for name, attrs in llms.items():
        e = copy.deepcopy(web)
        e.update({"__class__": "LLM", "name": name, "findings": [], **attrs})
        doc["elements"].append(e)
    res = convert(doc, "l.json")
    g = res.graph
    assert (_by_label(g, "Agentic"), RDF.type, U(TGML.LLMAgent)) in g
    assert (_by_label(g, "Chat app"), RDF.type, U(TGML.LLMApplication)) in g
    assert (_by_label(g, "Retriever"), RDF.type, U(TGML.LLMApplication)) in g
    plain = _by_label(g, "Plain model")
    assert (plain, RDF.type, U(TGML.LLMInferenceEndpoint)) in g and (plain, RDF.type, U(TGML.LLMApplication)) not in g
    assert (_by_label(g, "Vendor model"), RDF.type, U(TGML.LLMProvider)) in g
    assert (_by_label(g, "Vendor model"), RDF.type, U(TGML.LLMApplication)) not in g
    assert g.value(_by_label(g, "Chat app"), U(TG.receivesUntrustedInput)) == rdflib.Literal(True)
    assert g.value(plain, U(TG.receivesUntrustedInput)) is None
    assert not [u for u in res.unmapped if "hasSystemPrompt" in u or "processesUntrustedInput" in u]
    assert [u for u in res.unmapped if "OS" in u]  # an attribute with no home is still reported
