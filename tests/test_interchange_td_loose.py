"""Threat Dragon models as Threat Dragon saves them (issue 12): a flow with a loose end (a point instead of
a cell) is imported with a placeholder element named after it, and odd cells are reported and skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
from rdflib.namespace import RDF, RDFS

from threatgraph.cli import main
from threatgraph.errors import InputError
from threatgraph.interchange.threatdragon import convert
from threatgraph.terms import TG, TGML

U = rdflib.URIRef


def _by_label(g: rdflib.Graph, label: str) -> rdflib.URIRef:
    nodes = [s for s in g.subjects(RDFS.label, rdflib.Literal(label)) if isinstance(s, rdflib.URIRef)]
    assert len(nodes) == 1, label
    return nodes[0]


def _model(extra: list[dict[str, Any]]) -> dict[str, Any]:
    cells: list[dict[str, Any]] = [
        {"id": "box", "shape": "trust-boundary-box", "zIndex": -1, "position": {"x": 0, "y": 0},
         "size": {"width": 300, "height": 200}, "data": {"type": "tm.BoundaryBox", "name": "Internet"}},
        {"id": "api", "shape": "process", "zIndex": 1, "position": {"x": 500, "y": 50},
         "size": {"width": 100, "height": 100}, "data": {"type": "tm.Process", "name": "Upload API"}},
        {"id": "store", "shape": "store", "zIndex": 2, "position": {"x": 800, "y": 50},
         "size": {"width": 100, "height": 60}, "data": {"type": "tm.Store", "name": "Files"}},
        {"id": "up", "shape": "flow", "zIndex": 3, "source": {"x": 180, "y": 70}, "target": {"cell": "api"},
         "data": {"type": "tm.Flow", "name": "Upload", "isEncrypted": True,
                  "threats": [{"title": "Spoofed uploader", "type": "Spoofing", "status": "Open"}]}},
        {"id": "save", "shape": "flow", "zIndex": 4, "source": {"cell": "api"}, "target": {"cell": "store"},
         "data": {"type": "tm.Flow", "name": "Save"}},
        *extra,
    ]
    return {"version": "2.2.0", "summary": {"title": "Uploads", "id": 7},
            "detail": {"diagrams": [{"id": 0, "title": "d", "diagramType": "STRIDE", "cells": cells}]}}


def test_loose_end_gets_a_placeholder_named_after_the_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = convert(_model([]), "up.json")
    g = res.graph
    ph = _by_label(g, "unnamed source of Upload")
    assert (ph, RDF.type, U(TG.ExternalEntity)) in g
    up = _by_label(g, "Upload")
    assert g.value(up, U(TG.source)) == ph and g.value(up, U(TG.target)) == _by_label(g, "Upload API")
    assert g.value(up, U(TG.encryptedInTransit)) == rdflib.Literal(True)
    assert g.value(up, U(TG.declaredThreat)) is not None  # its threats are kept
    # the point lies inside the "Internet" box: the placeholder is in that zone, the API outside it
    assert g.value(ph, U(TG.inZone)) == _by_label(g, "Internet")
    assert g.value(_by_label(g, "Upload API"), U(TG.inZone)) != _by_label(g, "Internet")
    assert res.warnings == ["up.json: threat-dragon: /detail/diagrams/0/cells/3/source: the flow's source is a loose "
                            "end (a point on the diagram, not an element); attached to a placeholder external element "
                            "'unnamed source of Upload'"]
    p = tmp_path / "up.json"
    p.write_text(json.dumps(_model([])), encoding="utf-8")
    assert main(["import-model", str(p), "-o", str(tmp_path / "up.ttl")]) == 0
    err = capsys.readouterr().err
    assert "cells/3/source: the flow's source is a loose end" in err and "Traceback" not in err


def test_connected_flows_get_no_placeholder() -> None:
    doc = _model([])
    doc["detail"]["diagrams"][0]["cells"][3]["source"] = {"cell": "store"}
    res = convert(doc, "ok.json")
    assert res.warnings == []
    assert not any(str(o).startswith("unnamed") for o in res.graph.objects(None, RDFS.label))


def test_odd_cells_are_reported_and_skipped() -> None:
    extra = [
        {"shape": "process", "data": {"type": "tm.Process", "name": "No id"}},  # missing id
        {"id": "api", "shape": "process", "data": {"type": "tm.Process", "name": "Second API"}},  # duplicate id
        {"id": "bad", "shape": "actor", "data": {"type": "tm.Actor", "name": "Bad", "description": 42}},  # wrong type
        {"id": "dangling", "shape": "flow", "source": {"cell": "api"}, "target": {"cell": "ghost"},
         "data": {"type": "tm.Flow", "name": "Notify"}},
        {"id": "nameless", "shape": "flow", "source": {"cell": "api"}, "data": {"type": "tm.Flow"}},
    ]
    res = convert(_model(extra), "odd.json")
    w = "\n".join(res.warnings)
    assert "/detail/diagrams/0/cells/5: missing required field 'id' (skipped)" in w
    assert "/detail/diagrams/0/cells/6/id: duplicate cell id 'api'; the first cell is kept (skipped)" in w
    assert "/detail/diagrams/0/cells/7/data/description: expected a string, found int (skipped)" in w
    assert ("/detail/diagrams/0/cells/8/target/cell: the flow's target names no actor, process or store ('ghost'); "
            "attached to a placeholder external element 'unnamed target of Notify'") in w
    assert "/detail/diagrams/0/cells/9/target: the flow's target is missing (no target.cell)" in w
    g = res.graph
    assert _by_label(g, "unnamed target of flow nameless") is not None
    assert "Second API" not in {str(o) for o in g.objects(None, RDFS.label)}
    assert len(set(g.subjects(RDF.type, U(TG.DataFlow)))) == 4


def test_nothing_usable_is_refused() -> None:
    doc = _model([])
    doc["detail"]["diagrams"][0]["cells"] = [{"id": "f", "shape": "flow", "source": {"x": 1, "y": 2},
                                             "target": {"x": 5, "y": 6}, "data": {"type": "tm.Flow", "name": "F"}}]
    with pytest.raises(InputError, match=r"no actor, process or store in any diagram .*cells/0/source: the flow's "
                                         r"source is a loose end"):
        convert(doc, "empty.json")


def test_version_1_loose_end() -> None:
    doc = {"summary": {"title": "old"}, "detail": {"diagrams": [{"id": 0, "title": "d", "diagramType": "STRIDE",
           "diagramJson": {"cells": [
               {"type": "tm.Process", "id": "p", "position": {"x": 300, "y": 0}, "size": {"width": 100, "height": 100},
                "attrs": {"text": {"text": "Kiosk"}}},
               {"type": "tm.Flow", "id": "f", "source": {"x": 10, "y": 20}, "target": {"id": "p"},
                "labels": [{"attrs": {"text": {"text": "Touch"}}}]}]}}]}}
    res = convert(doc, "v1.json")
    g = res.graph
    flow = _by_label(g, "Touch")
    assert g.value(flow, U(TG.source)) == _by_label(g, "unnamed source of Touch")
    assert g.value(flow, U(TG.target)) == _by_label(g, "Kiosk")
    assert any("/detail/diagrams/0/diagramJson/cells/1/source: the flow's source is a loose end" in w
               for w in res.warnings)


def test_process_named_as_a_data_server_gets_its_technology() -> None:
    """A database server drawn as a process circle (the Threat Model Cookbook's "PostgresSQL") is read as
    one, with a warning; a process that is a client of the server, or no server at all, is left alone."""
    extra = [
        {"id": f"p{i}", "shape": "process", "zIndex": 10 + i, "position": {"x": 500, "y": 300 + 150 * i},
         "size": {"width": 100, "height": 100}, "data": {"type": "tm.Process", "name": name}}
        for i, name in enumerate(["PostgresSQL", "Orders\nDB", "Kafka consumer"])
    ]
    res = convert(_model(extra), "servers.json")
    g = res.graph
    assert str(g.value(_by_label(g, "PostgresSQL"), U(TG.technology))) == "database"
    assert str(g.value(_by_label(g, "Orders\nDB"), U(TG.technology))) == "database"
    assert g.value(_by_label(g, "Kafka consumer"), U(TG.technology)) is None
    assert g.value(_by_label(g, "Upload API"), U(TG.technology)) is None
    assert (_by_label(g, "PostgresSQL"), RDF.type, U(TG.Process)) in g
    warned = [w for w in res.warnings if "server (tg:technology" in w]
    assert len(warned) == 2 and "'PostgresSQL' read as a database server (tg:technology database)" in warned[0]


def test_agent_and_tool_shapes() -> None:
    """Threat Dragon's AI shapes: ``tm.Agent`` is an LLM agent, ``tm.Tool`` an agent tool (a code execution tool
    when it runs agent-generated code) that the agent may call when a flow joins them, and a store that is
    the agent's long-term memory is agent memory. Before, both shapes were skipped as unknown cell types."""
    extra = [
        {"id": "agent", "shape": "agent", "zIndex": 10, "position": {"x": 500, "y": 300},
         "size": {"width": 150, "height": 80}, "data": {"type": "tm.Agent", "name": "Support agent"}},
        {"id": "tool", "shape": "agent-tool", "zIndex": 11, "position": {"x": 800, "y": 300},
         "size": {"width": 150, "height": 80},
         "data": {"type": "tm.Tool", "name": "Python sandbox", "executesAgentGeneratedCode": True}},
        {"id": "search", "shape": "agent-tool", "zIndex": 12, "position": {"x": 800, "y": 500},
         "size": {"width": 150, "height": 80}, "data": {"type": "tm.Tool", "name": "Search"}},
        {"id": "mem", "shape": "store", "zIndex": 13, "position": {"x": 500, "y": 500},
         "size": {"width": 100, "height": 60},
         "data": {"type": "tm.Store", "name": "Memory", "isLongTermAgentMemory": True}},
        {"id": "call", "shape": "flow", "zIndex": 14, "source": {"cell": "agent"}, "target": {"cell": "tool"},
         "data": {"type": "tm.Flow", "name": "Run code"}},
        {"id": "result", "shape": "flow", "zIndex": 15, "source": {"cell": "search"}, "target": {"cell": "agent"},
         "data": {"type": "tm.Flow", "name": "Results"}},
    ]
    res = convert(_model(extra), "agent.json")
    g = res.graph
    agent, tool, search = _by_label(g, "Support agent"), _by_label(g, "Python sandbox"), _by_label(g, "Search")
    assert (agent, RDF.type, U(TGML.LLMAgent)) in g
    assert (tool, RDF.type, U(TGML.CodeExecutionTool)) in g
    assert (search, RDF.type, U(TGML.AgentTool)) in g
    assert (_by_label(g, "Memory"), RDF.type, U(TGML.AgentMemory)) in g
    assert set(g.objects(agent, U(TGML.mayCallTool))) == {tool, search}
    assert not any("unknown cell type" in w for w in res.warnings)


def test_authentication_provider_and_privilege_level() -> None:
    """``providesAuthentication`` makes an actor or process an identity provider (tg:technology
    identity-provider, tg:highValueTarget true); a process's ``privilegeLevel`` gives tg:runsPrivileged when
    it clearly says administrative or ordinary-user privilege, and is reported unmapped otherwise; the retail
    flag ``handlesGoodsOrServices`` gives tg:businessTransactions, ``storesInventory`` stays unmapped with its
    reason. Before, all four were reported as properties with no home."""
    extra = [
        {"id": "idp", "shape": "actor", "zIndex": 10, "position": {"x": 50, "y": 300},
         "size": {"width": 100, "height": 60},
         "data": {"type": "tm.Actor", "name": "Corporate SSO", "providesAuthentication": True}},
        {"id": "auth", "shape": "process", "zIndex": 11, "position": {"x": 500, "y": 300},
         "size": {"width": 100, "height": 100},
         "data": {"type": "tm.Process", "name": "Login service", "providesAuthentication": True,
                  "privilegeLevel": "user", "handlesGoodsOrServices": True}},
        {"id": "agentd", "shape": "process", "zIndex": 12, "position": {"x": 500, "y": 500},
         "size": {"width": 100, "height": 100},
         "data": {"type": "tm.Process", "name": "Backup agent", "privilegeLevel": "Runs as root",
                  "providesAuthentication": False}},
        {"id": "svc", "shape": "process", "zIndex": 13, "position": {"x": 700, "y": 500},
         "size": {"width": 100, "height": 100},
         "data": {"type": "tm.Process", "name": "Report job", "privilegeLevel": "service account"}},
        {"id": "stock", "shape": "store", "zIndex": 14, "position": {"x": 800, "y": 300},
         "size": {"width": 100, "height": 60}, "data": {"type": "tm.Store", "name": "Stock", "storesInventory": True}},
    ]
    res = convert(_model(extra), "idp.json")
    g = res.graph
    idp, auth, backup = _by_label(g, "Corporate SSO"), _by_label(g, "Login service"), _by_label(g, "Backup agent")
    for node in (idp, auth):
        assert rdflib.Literal("identity-provider") in set(g.objects(node, U(TG.technology)))
        assert (node, U(TG.highValueTarget), rdflib.Literal(True)) in g
    assert (backup, U(TG.highValueTarget), None) not in g and (backup, U(TG.technology), None) not in g
    assert (auth, U(TG.runsPrivileged), rdflib.Literal(False)) in g
    assert (backup, U(TG.runsPrivileged), rdflib.Literal(True)) in g
    assert (_by_label(g, "Report job"), U(TG.runsPrivileged), None) not in g
    unmapped = res.unmapped
    assert not any("providesAuthentication" in w for w in unmapped)
    assert [w for w in unmapped if "privilegeLevel" in w] == [
        "threat-dragon /detail/diagrams/*/cells/*/data/privilegeLevel: privilege level neither clearly administrative "
        "(root, admin, system) nor clearly an ordinary user"]
    assert (auth, U(TG.businessTransactions), rdflib.Literal(True)) in g
    assert not any("handlesGoodsOrServices" in w for w in unmapped)
    assert any("storesInventory: retail-site store flag" in w for w in unmapped)


def test_privileged_process_and_identity_provider_raise_their_threats(tmp_path: Path) -> None:
    """End to end: a process running as root reached from the Internet box gets elevation of privilege
    (TG-STRIDE-E-080), an unencrypted flow to an actor that provides authentication gets spoofing of the
    identity provider (TG-STRIDE-S-081); the same process running as "user" and an encrypted flow get neither."""
    from threatgraph.analysis.engine import Engine, labels_of
    from threatgraph.analysis.findings import read_findings

    def model(level: str, encrypted: bool) -> dict[str, Any]:
        cells: list[dict[str, Any]] = [
            {"id": "box", "shape": "trust-boundary-box", "zIndex": -1, "position": {"x": 0, "y": 0},
             "size": {"width": 300, "height": 400}, "data": {"type": "tm.BoundaryBox", "name": "Internet"}},
            {"id": "cust", "shape": "actor", "zIndex": 1, "position": {"x": 50, "y": 50},
             "size": {"width": 100, "height": 60}, "data": {"type": "tm.Actor", "name": "Customer"}},
            {"id": "sso", "shape": "actor", "zIndex": 2, "position": {"x": 50, "y": 250},
             "size": {"width": 100, "height": 60},
             "data": {"type": "tm.Actor", "name": "SSO", "providesAuthentication": True}},
            {"id": "agent", "shape": "process", "zIndex": 3, "position": {"x": 500, "y": 50},
             "size": {"width": 100, "height": 100},
             "data": {"type": "tm.Process", "name": "Backup agent", "privilegeLevel": level}},
            {"id": "req", "shape": "flow", "zIndex": 4, "source": {"cell": "cust"}, "target": {"cell": "agent"},
             "data": {"type": "tm.Flow", "name": "Restore", "isEncrypted": True}},
            {"id": "login", "shape": "flow", "zIndex": 5, "source": {"cell": "agent"}, "target": {"cell": "sso"},
             "data": {"type": "tm.Flow", "name": "Log in", "isEncrypted": encrypted}},
        ]
        return {"version": "2.2.0", "summary": {"title": "Privilege"},
                "detail": {"diagrams": [{"id": 0, "title": "Main", "diagramType": "STRIDE", "cells": cells}]}}

    def rules(level: str, encrypted: bool) -> set[tuple[str, str]]:
        out = tmp_path / f"{level}-{encrypted}.ttl"
        convert(model(level, encrypted), "priv.json").graph.serialize(out, format="turtle")
        eng = Engine()
        eng.analyze([out])
        return {(f.rule_id, f.focus_label) for f in read_findings(eng.store, labels_of(eng.store))
                if f.rule_id in ("TG-STRIDE-E-080", "TG-STRIDE-S-081")}

    assert rules("root", False) == {("TG-STRIDE-E-080", "Restore"), ("TG-STRIDE-S-081", "Log in")}
    assert rules("user", True) == set()
