"""OWASP Threat Dragon v2 JSON (and version 1 files, upgraded in memory) → threatgraph system model.

Cells by ``data.type``: ``tm.Actor`` → tg:ExternalEntity, ``tm.Process`` → tg:Process, ``tm.Store`` →
tg:DataStore (tgml:AgentMemory with ``isLongTermAgentMemory``), the AI shapes ``tm.Agent`` → tgml:LLMAgent
and ``tm.Tool`` → tgml:AgentTool (tgml:CodeExecutionTool with ``executesAgentGeneratedCode``), an agent
tgml:mayCallTool each tool a flow joins it to, ``tm.Flow`` → tg:DataFlow (``source.cell`` → ``target.cell``), ``tm.BoundaryBox`` → a
tg:TrustZone holding the elements drawn inside it, ``tm.Boundary`` (a curve) → a tg:TrustBoundary, and
every flow whose straight line between its end elements crosses the curve gets tg:crossesBoundary true.
Human-written threats become tg:DeclaredThreat (type → STRIDE/LINDDUN category, severity, status,
mitigation text). ML classes only from explicit words in an element's name or description.
An actor or process with ``providesAuthentication`` is an identity provider (tg:technology identity-provider,
tg:highValueTarget true); a process's free-text ``privilegeLevel`` gives tg:runsPrivileged when it clearly
says administrative (root, admin, SYSTEM) or ordinary-user privilege; ``handlesGoodsOrServices`` gives
tg:businessTransactions.

A process whose name calls it a data server (a database product or the word database/DB, a message
broker, a file server, a search index; ``_SERVER_NAMES``) gets that ``tg:technology`` (database,
message-queue, file-server, search-index): people often draw the database server as a process circle, and
rules on data at rest (TG-STRIDE-I-041) then see it. A store named as a queue or message broker gets
``tg:technology message-queue`` (TG-STRIDE-S-041: fake messages from unauthenticated producers). The import
warns for each element so read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import rdflib

from threatgraph.errors import InputError
from threatgraph.interchange.common import (
    Builder,
    ImportResult,
    add_system,
    bool_attr,
    category_iri,
    declared_threat,
    items,
    optional,
    require,
    severity_iri,
    slug,
)
from threatgraph.interchange.mlclasses import MLClasses
from threatgraph.terms import DCT, TG, TGML

FORMAT = "threat-dragon"

_KINDS = {"tm.Actor": "ExternalEntity", "tm.Process": "Process", "tm.Store": "DataStore", "tm.Agent": "Process",
          "tm.Tool": "Process"}
_CELL_MAPPED = ("id", "shape", "zIndex", "data", "source", "target", "vertices", "position", "size", "attrs",
                "visible", "connector", "threats", "width", "height", "labels", "angle", "smooth")
_LAYOUT = ("position", "size", "attrs", "visible", "connector", "zIndex", "shape", "width", "height", "labels", "angle",
           "smooth")
_DATA_MAPPED = ("type", "name", "description", "hasOpenThreats", "isALog", "isEncrypted", "isPublicNetwork",
                "isSigned", "isBidirectional", "protocol", "storesCredentials", "handlesCardPayment", "isWebApplication",
                "isTrustBoundary", "threats", "outOfScope", "reasonOutOfScope", "executesAgentGeneratedCode",
                "isLongTermAgentMemory", "providesAuthentication", "privilegeLevel", "handlesGoodsOrServices",
                "storesInventory")
# privilegeLevel is free text: the words read as administrative privilege (tg:runsPrivileged true) and as an
# ordinary user (false); a text with words of both kinds or of neither is reported unmapped
_PRIVILEGED = frozenset(("root", "admin", "administrator", "administrators", "administrative", "system", "localsystem",
                         "superuser", "su", "sudo", "elevated", "privileged", "high", "kernel", "domain-admin",
                         "domainadmin", "full"))
_UNPRIVILEGED = frozenset(("user", "users", "unprivileged", "non-privileged", "nonprivileged", "low", "limited",
                           "restricted", "guest", "none", "nobody", "standard", "least", "read-only", "readonly"))

Point = tuple[float, float]


def convert(doc: Any, name: str, *, ml: MLClasses | None = None) -> ImportResult:
    """Convert a parsed Threat Dragon v2 document (``ml``: the ML phrase table, default the shipped one)."""
    b = Builder(FORMAT, name, "threat-dragon", ml=ml)
    if not isinstance(doc, Mapping):
        raise b.fail([], "a Threat Dragon model is a JSON object")
    summary = require(b, doc, [], "summary", Mapping)
    title = require(b, summary, ["summary"], "title")
    sid = summary.get("id")
    b = Builder(FORMAT, name, str(sid) if sid not in (None, "") else title, ml=ml)
    system = add_system(b, title, optional(b, summary, ["summary"], "description", str), str(sid or title))
    detail = require(b, doc, [], "detail", Mapping)
    b.unmapped_keys(summary, ["summary"], ("title", "description", "id"), "model metadata with no home (owner)")
    b.unmapped_keys(detail, ["detail"], ("diagrams", "diagramTop", "threatTop"),
                    "model metadata with no home (contributors, reviewer)")
    found = 0
    for di, diagram in enumerate(items(b, detail, ["detail"], "diagrams")):
        try:
            found += _diagram(b, diagram, ["detail", "diagrams", di], system)
        except InputError as err:  # one bad diagram does not lose the others
            _skip(b, err)
    if found == 0:
        problems = "; ".join(b.warnings[-3:])
        raise InputError(f"{name}: {FORMAT}: /detail/diagrams: no actor, process or store in any diagram"
                         + (f" ({problems})" if problems else ""),
                         hint="draw the system in Threat Dragon: actors, processes and stores joined by flows")
    return b.result()


def _skip(b: Builder, err: InputError) -> None:
    """Report a part that cannot be read (its located message) and go on without it."""
    msg = f"{err.message} (skipped)"
    if msg not in b.warnings:
        b.warnings.append(msg)


def _diagram(b: Builder, diagram: Any, path: list[str | int], system: rdflib.URIRef) -> int:
    """Convert one diagram; the number of actors, processes and stores it has."""
    if not isinstance(diagram, Mapping):
        raise b.fail(path, "a diagram is a JSON object")
    dtype = str(diagram.get("diagramType") or "STRIDE")
    linddun = "linddun" in dtype.lower()
    dkey = str(diagram.get("id", path[-1]))
    cells_at: list[str | int] = list(path)
    if "diagramJson" in diagram and "cells" not in diagram:
        # Threat Dragon 1.x: the cells are JointJS cells under diagramJson, with their properties on the cell
        # itself; Threat Dragon 2 still opens these files and upgrades them the same way.
        cells_at = [*path, "diagramJson"]
        v1 = diagram["diagramJson"]
        if not isinstance(v1, Mapping):
            raise b.fail(cells_at, f"expected an object, found {type(v1).__name__}")
        cells = [_v1_cell(c) for c in items(b, v1, cells_at, "cells")]
        b.deviation(cells_at, "a Threat Dragon version 1 diagram, read as Threat Dragon 2 upgrades it (names from "
                    "the shape text or the flow label, properties from the cell)")
    else:
        cells = items(b, diagram, path, "cells")
    elements: dict[str, rdflib.URIRef] = {}
    names: dict[str, str] = {}
    boxes: list[tuple[rdflib.URIRef, float, float, float, float]] = []
    curves: list[tuple[rdflib.URIRef, list[Point]]] = []
    centres: dict[str, Point] = {}
    flows: list[tuple[int, Mapping[str, Any]]] = []
    seen: set[str] = set()
    agents: set[str] = set()
    tools: set[str] = set()
    for ci, cell in enumerate(cells):
        cpath = [*cells_at, "cells", ci]
        try:
            cid = require(b, cell, cpath, "id")
            data = require(b, cell, cpath, "data", Mapping)
            ctype = require(b, data, [*cpath, "data"], "type")
            if cid in seen:
                raise b.fail([*cpath, "id"], f"duplicate cell id {cid!r}; the first cell is kept")
        except InputError as err:
            _skip(b, err)
            continue
        seen.add(cid)
        try:
            label = _cell_label(cell, data)
            for lk in _LAYOUT:
                if lk in cell:
                    b.unmapped(f"{_ptr([*cpath, lk])}", "diagram layout (no home in a system model)")
            if ctype in _KINDS:
                kind = _KINDS[ctype]
                node = b.iri(dkey, cid)
                elements[cid] = node
                names[cid] = label or cid
                b.typed(node, TG[kind], label or cid, cid)
                b.add(node, TG.partOf, system)
                desc = optional(b, data, [*cpath, "data"], "description", str)
                b.lit(node, DCT.description, desc)
                b.ml_class(node, kind, [("name", label), ("description", desc)], _ptr(cpath),
                           given=_given_ml_class(ctype, data))
                if ctype == "tm.Agent":
                    agents.add(cid)
                elif ctype == "tm.Tool":
                    tools.add(cid)
                _element_flags(b, node, kind, data, [*cpath, "data"], cid, dkey)
                centres[cid] = _centre(cell)
                _cell_threats(b, cell, cpath, node, linddun)
            elif ctype == "tm.Flow":
                flows.append((ci, cell))
            elif ctype == "tm.BoundaryBox":
                node = b.iri(dkey, cid)
                b.typed(node, TG.TrustZone, label or "Trust boundary box", cid)
                pos, size = _obj(cell, "position"), _obj(cell, "size")
                x, y = float(pos.get("x", 0)), float(pos.get("y", 0))
                w, h = float(size.get("width", cell.get("width", 0)) or 0), float(size.get("height", cell.get("height", 0)) or 0)
                boxes.append((node, x, y, x + w, y + h))
            elif ctype == "tm.Boundary":
                node = b.iri(dkey, cid)
                b.typed(node, TG.TrustBoundary, label or "Trust boundary", cid)
                pts = [_pt(cell.get("source"))] + [_pt(v) for v in cell.get("vertices") or []] + [_pt(cell.get("target"))]
                curves.append((node, [p for p in pts if p is not None]))
            elif ctype == "tm.Text":
                b.unmapped(_ptr([*cpath, "data"]), "free text on the diagram (no home)")
            else:
                b.unmapped(_ptr([*cpath, "data", "type"]), f"unknown cell type {ctype!r} (skipped)")
            b.unmapped_keys(data, [*cpath, "data"], _DATA_MAPPED, "element property with no threatgraph property")
            b.unmapped_keys(cell, cpath, _CELL_MAPPED, "cell field with no home")
        except InputError as err:
            _skip(b, err)
            if cid in elements and cid not in centres:  # drop the half-converted element
                b.g.remove((elements.pop(cid), None, None))
                names.pop(cid, None)

    n_elements = len(elements)
    for ci, cell in flows:
        cpath = [*cells_at, "cells", ci]
        cid = cell["id"]
        data = cell["data"]
        try:
            ends = []
            own = _cell_label(cell, data)
            for key in ("source", "target"):
                end = cell.get(key)
                ref = end.get("cell") if isinstance(end, Mapping) else None
                if isinstance(ref, str) and ref in elements:
                    ends.append(ref)
                    continue
                # a loose end (Threat Dragon saves a point) or a reference to nothing: a placeholder element
                ph, ph_name = f"{cid}#{key}", f"unnamed {key} of {own or 'flow ' + str(cid)}"
                elements[ph] = b.iri(dkey, cid, key)
                names[ph] = ph_name
                b.typed(elements[ph], TG.ExternalEntity, ph_name, None)
                b.add(elements[ph], TG.partOf, system)
                point = _pt(end)
                centres[ph] = point if point is not None else (0.0, 0.0)
                if isinstance(ref, str):
                    where, what = [*cpath, key, "cell"], f"names no actor, process or store ({ref!r})"
                elif point is not None:
                    where, what = [*cpath, key], "is a loose end (a point on the diagram, not an element)"
                else:
                    where, what = [*cpath, key], f"is missing (no {key}.cell)"
                msg = f"{b.name}: {FORMAT}: {_ptr(where)}: the flow's {key} {what}; attached to a placeholder external " \
                      f"element {ph_name!r}"
                if msg not in b.warnings:
                    b.warnings.append(msg)
                ends.append(ph)
            for agent, tool in ((ends[0], ends[1]), (ends[1], ends[0])):
                if agent in agents and tool in tools:
                    b.add(elements[agent], TGML.mayCallTool, elements[tool])
            label = own or f"{names[ends[0]]} → {names[ends[1]]}"
            pairs = [(cid, ends[0], ends[1], label)]
            if data.get("isBidirectional") is True:
                pairs.append((cid + "#reverse", ends[1], ends[0], f"{label} (reverse)"))
            for k, (ident, src, tgt, lab) in enumerate(pairs):
                node = b.iri(dkey, ident)
                b.typed(node, TG.DataFlow, lab, cid)
                b.add(node, TG.source, elements[src])
                b.add(node, TG.target, elements[tgt])
                b.add(node, TG.partOf, system)
                b.lit(node, DCT.description, optional(b, data, [*cpath, "data"], "description", str))
                b.lit(node, TG.protocol, optional(b, data, [*cpath, "data"], "protocol", str))
                bool_attr(b, node, TG.encryptedInTransit, data.get("isEncrypted"))
                if data.get("isPublicNetwork") is True:
                    b.add(node, TG.publiclyExposed, rdflib.Literal(True))
                if any(_crosses(centres.get(src, (0.0, 0.0)), centres.get(tgt, (0.0, 0.0)), pts) for _, pts in curves):
                    b.add(node, TG.crossesBoundary, rdflib.Literal(True))
                _out_of_scope(b, node, data)
                if k == 0:
                    _cell_threats(b, cell, cpath, node, linddun)
        except InputError as err:
            _skip(b, err)

    # Zones from boundary boxes: the smallest box containing the element's centre.
    if boxes:
        outside = b.iri(dkey, "outside-boundaries")
        used_outside = False
        for cid, node in elements.items():
            cx, cy = centres[cid]
            inside = [bx for bx in boxes if bx[1] <= cx <= bx[3] and bx[2] <= cy <= bx[4]]
            if inside:
                zone = min(inside, key=lambda bx: (bx[3] - bx[1]) * (bx[4] - bx[2]))[0]
            else:
                zone, used_outside = outside, True
            b.add(node, TG.inZone, zone)
        if used_outside:
            b.typed(outside, TG.TrustZone, "Outside all trust boundary boxes", None)
    return n_elements


# A process named as one of these servers is store-like (tg:technology, a Threagile technology name). A name
# that also calls it a client of the server (worker, consumer, driver...) is left alone.
_SERVER_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("database", re.compile(r"\b(postgres\w*|mysql|mariadb|mssql|sql ?server|oracle ?db|mongo(db)?|cassandra|couchdb"
                            r"|dynamodb|cosmos ?db|sqlite|neo4j|influx ?db|rdbms|database|db)\b")),
    ("message-queue", re.compile(r"\b(message (queue|broker|bus)|kafka|rabbit ?mq|active ?mq|amazon sqs|sqs)\b")),
    ("file-server", re.compile(r"\b(file server|file share|nas|sftp server|ftp server)\b")),
    ("search-index", re.compile(r"\b(elasticsearch|opensearch|solr)\b")),
)
_CLIENT_WORDS = re.compile(r"\b(client|consumer|worker|producer|publisher|subscriber|connector|driver|proxy|ui|console"
                           r"|admin|migrations?|importer|exporter|sync)\b")


_QUEUE_STORE = re.compile(r"\b(queues?|message (queue|broker|bus)|topic|kafka|rabbit ?mq|active ?mq|sqs|service bus"
                          r"|event hub|pub ?sub)\b")


def store_technology(name: str | None) -> str | None:
    """``message-queue`` for a store whose name calls it a queue or a message broker, else None.

    >>> store_technology("Message Queue"), store_technology("Orders topic"), store_technology("Database")
    ('message-queue', 'message-queue', None)
    """
    if name and _QUEUE_STORE.search(" ".join(name.lower().split())):
        return "message-queue"
    return None


def server_technology(name: str | None) -> str | None:
    """The technology a process's name gives it, if the name calls it a data server.

    >>> server_technology("PostgresSQL"), server_technology("Orders DB"), server_technology("Kafka")
    ('database', 'database', 'message-queue')
    >>> server_technology("Web Service"), server_technology("DB migration worker"), server_technology(None)
    (None, None, None)
    """
    if not name:
        return None
    text = " ".join(name.lower().split())
    if _CLIENT_WORDS.search(text):
        return None
    for tech, rx in _SERVER_NAMES:
        if rx.search(text):
            return tech
    return None


_V1_LAYOUT: dict[str, str] = {"z": "zIndex"}
_V1_CELL = ("id", "type", "position", "size", "angle", "z", "attrs", "labels", "smooth", "source", "target",
            "vertices", "threats")


def _v1_cell(cell: Any) -> Any:
    """A Threat Dragon 1.x cell in the shape of a version 2 cell (``data`` holding the type, name and flags).

    >>> c = _v1_cell({"type": "tm.Flow", "id": "f", "source": {"id": "a"}, "target": {"id": "b"},
    ...               "labels": [{"attrs": {"text": {"text": "Query"}}}], "isEncrypted": True})
    >>> c["source"], c["data"]["name"], c["data"]["isEncrypted"]
    ({'cell': 'a'}, 'Query', True)
    """
    if not isinstance(cell, Mapping) or "data" in cell:
        return cell
    data: dict[str, Any] = {k: v for k, v in cell.items() if k not in _V1_CELL}
    data["type"] = cell.get("type")
    name = cell.get("name")
    if not isinstance(name, str):
        text = _obj(_obj(cell, "attrs"), "text").get("text")
        labels = cell.get("labels")
        if not isinstance(text, str) and isinstance(labels, list) and labels and isinstance(labels[0], Mapping):
            text = _obj(_obj(labels[0], "attrs"), "text").get("text")
        name = text if isinstance(text, str) else None
    if name is not None:
        data["name"] = name
    out: dict[str, Any] = {_V1_LAYOUT.get(str(k), str(k)): v for k, v in cell.items() if k in _V1_CELL and k != "type"}
    for end in ("source", "target"):
        v = cell.get(end)
        if isinstance(v, Mapping) and isinstance(v.get("id"), str):
            out[end] = {"cell": v["id"]}
    out["data"] = data
    return out


def _element_flags(b: Builder, node: rdflib.URIRef, kind: str, data: Mapping[str, Any], path: list[str | int],
                   cid: str, dkey: str) -> None:
    name = data.get("name")
    if kind == "DataStore":
        tech = store_technology(name if isinstance(name, str) else None)
        if tech is not None:
            b.lit(node, TG.technology, tech)
            _named_technology(b, path, "store", str(name), tech)
        bool_attr(b, node, TG.holdsLogs, data.get("isALog"))
        bool_attr(b, node, TG.encryptedAtRest, data.get("isEncrypted"))
        bool_attr(b, node, TG.artifactsSigned, data.get("isSigned"))
        bool_attr(b, node, TG.storesCredentials, data.get("storesCredentials"))
        if data.get("storesCredentials") is True:
            asset = b.iri(dkey, cid, "credentials")
            b.typed(asset, TG.DataAsset, "Credentials or personal data", None)
            b.add(asset, TG.classification, rdflib.URIRef(TG.Confidential))
            b.add(node, TG.holds, asset)
    elif data.get("storesCredentials") is True:
        b.unmapped(_ptr([*path, "storesCredentials"]), "only stores hold data")
    if kind == "Process":
        bool_attr(b, node, TG.webApplication, data.get("isWebApplication"))
        tech = server_technology(name if isinstance(name, str) else None)
        if tech is not None:
            b.lit(node, TG.technology, tech)
            _named_technology(b, path, "process", str(name), tech)
    elif data.get("isWebApplication") is True:
        b.unmapped(_ptr([*path, "isWebApplication"]), "only processes are web applications")
    _authentication_and_privilege(b, node, kind, data, path)
    if kind == "Process" and data.get("handlesCardPayment") is True:
        asset = b.iri(dkey, cid, "card-payment-data")
        b.typed(asset, TG.DataAsset, "Card payment data", None)
        b.add(asset, TG.classification, rdflib.URIRef(TG.Confidential))
        b.add(node, TG.processes, asset)
    for key in ("isALog", "isSigned"):
        if kind != "DataStore" and key in data:
            b.unmapped(_ptr([*path, key]), "store flag on another kind of element")
    if kind != "DataStore" and data.get("isEncrypted") is not None:
        b.unmapped(_ptr([*path, "isEncrypted"]), "encryption flag on an actor or process")
    _out_of_scope(b, node, data)


def privilege_level(text: str) -> bool | None:
    """Whether a Threat Dragon ``privilegeLevel`` text states administrative privilege (True), an ordinary
    user (False) or neither clearly (None).

    >>> privilege_level("root"), privilege_level("Local SYSTEM"), privilege_level("admin rights")
    (True, True, True)
    >>> privilege_level("user"), privilege_level("unprivileged"), privilege_level("Low")
    (False, False, False)
    >>> privilege_level("root user"), privilege_level("service account"), privilege_level("admin or low")
    (True, None, None)
    >>> privilege_level("non-admin") is None
    True
    """
    words = {w for w in re.split(r"[\s,;/()._]+", text.lower()) if w}
    if any(w.startswith(("non", "un")) and w not in _UNPRIVILEGED
           and any(stem in w for stem in ("admin", "privileg", "root", "elevat", "system")) for w in words):
        return None  # "non-admin", "unelevated": a negation the word lists do not read
    high = bool(words & _PRIVILEGED)
    # "user" is also the noun of "admin user", "root user": it counts as unprivileged only on its own
    low = bool(words & (_UNPRIVILEGED - {"user", "users"} if high else _UNPRIVILEGED))
    return high if high != low else None


def _authentication_and_privilege(b: Builder, node: rdflib.URIRef, kind: str, data: Mapping[str, Any],
                                  path: list[str | int]) -> None:
    """``providesAuthentication`` (actor, process): an identity provider, tg:technology identity-provider and
    tg:highValueTarget true; ``privilegeLevel`` (process): tg:runsPrivileged; ``handlesGoodsOrServices``
    (process): tg:businessTransactions; ``storesInventory``: no home, reported unmapped when true."""
    if data.get("providesAuthentication") is True:
        if kind in ("ExternalEntity", "Process"):
            b.lit(node, TG.technology, "identity-provider")
            b.lit(node, TG.highValueTarget, True)
        else:
            b.unmapped(_ptr([*path, "providesAuthentication"]), "only actors and processes provide authentication")
    level = data.get("privilegeLevel")
    if isinstance(level, str) and level.strip():
        runs = privilege_level(level) if kind == "Process" else None
        if runs is not None:
            b.add(node, TG.runsPrivileged, rdflib.Literal(runs))
        elif kind != "Process":
            b.unmapped(_ptr([*path, "privilegeLevel"]), "privilege level on an actor or store")
        else:
            b.unmapped(_ptr([*path, "privilegeLevel"]),
                       "privilege level neither clearly administrative (root, admin, system) nor clearly an "
                       "ordinary user")
    if kind == "Process":
        bool_attr(b, node, TG.businessTransactions, data.get("handlesGoodsOrServices"))
    elif data.get("handlesGoodsOrServices") is True:
        b.unmapped(_ptr([*path, "handlesGoodsOrServices"]), "only processes carry out transactions")
    if data.get("storesInventory") is True:
        b.unmapped(_ptr([*path, "storesInventory"]), "retail-site store flag: no threatgraph property (what it "
                   "stocks is not stated, so no asset or rating follows from it)")


def _given_ml_class(ctype: str, data: Mapping[str, Any]) -> str | None:
    """The ML class a Threat Dragon shape states: an agent (``tm.Agent``) is an LLM agent, a tool (``tm.Tool``)
    an agent tool (a code execution tool when ``executesAgentGeneratedCode``), a store with
    ``isLongTermAgentMemory`` an agent's memory."""
    if ctype == "tm.Agent":
        return str(TGML.LLMAgent)
    if ctype == "tm.Tool":
        return str(TGML.CodeExecutionTool if data.get("executesAgentGeneratedCode") is True else TGML.AgentTool)
    if ctype == "tm.Store" and data.get("isLongTermAgentMemory") is True:
        return str(TGML.AgentMemory)
    return None


def _named_technology(b: Builder, path: list[str | int], what: str, name: str, tech: str) -> None:
    msg = (f"{b.name}: {FORMAT}: {_ptr(path)}: {what} {' '.join(name.split())!r} read as a {tech.replace('-', ' ')}"
           f"{' server' if what == 'process' else ''} (tg:technology {tech}) from its name")
    if msg not in b.warnings:
        b.warnings.append(msg)


def _out_of_scope(b: Builder, node: rdflib.URIRef, data: Mapping[str, Any]) -> None:
    """``outOfScope`` → tg:outOfScope (the element is still imported and analysed), ``reasonOutOfScope``."""
    bool_attr(b, node, TG.outOfScope, data.get("outOfScope"))
    reason = data.get("reasonOutOfScope")
    if data.get("outOfScope") is True and isinstance(reason, str):
        b.lit(node, TG.outOfScopeReason, reason)
    elif isinstance(reason, str) and reason.strip():
        b.unmapped("/detail/diagrams/*/cells/*/data/reasonOutOfScope", "a reason for an element that is in scope")


def _cell_threats(b: Builder, cell: Mapping[str, Any], cpath: list[str | int], node: rdflib.URIRef, linddun: bool) -> None:
    data = _obj(cell, "data")
    threats = list(items(b, cell, cpath, "threats"))
    tpath_base = [*cpath, "threats"]
    if not threats and isinstance(data.get("threats"), list):  # Threat Dragon keeps them under data
        threats = data["threats"]
        tpath_base = [*cpath, "data", "threats"]
    for ti, t in enumerate(threats):
        tpath = [*tpath_base, ti]
        if not isinstance(t, Mapping):
            _skip(b, b.fail(tpath, f"a threat is a JSON object, found {type(t).__name__}"))
            continue
        title = optional(b, t, tpath, "title", str)
        ttype = optional(b, t, tpath, "type", str) or ""
        model_type = str(t.get("modelType") or "").lower()  # the threat's own method wins over the diagram's
        linddun_t = "linddun" in model_type if model_type in ("stride", "linddun") else linddun
        cat = category_iri(ttype, linddun=linddun_t) if ttype else None
        if ttype and cat is None:
            b.unmapped(_ptr([*tpath, "type"]), f"threat type {ttype!r} is not a STRIDE or LINDDUN category")
        sev_word = optional(b, t, tpath, "severity", str)
        ident = t.get("threatId") or (str(t["number"]) if t.get("number") is not None else f"t{ti}")
        declared_threat(
            b, node, rdflib.URIRef(f"{node}:threat:{slug(str(ident))}"),
            title=title or ttype or None,
            description=optional(b, t, tpath, "description", str),
            category=cat,
            severity=severity_iri(sev_word) if sev_word else None,
            status=optional(b, t, tpath, "status", str),
            mitigation=optional(b, t, tpath, "mitigation", str),
            ident=str(ident),
        )
        if t.get("score"):
            b.unmapped(_ptr([*tpath, "score"]), "custom threat score (no home)")


def _cell_label(cell: Mapping[str, Any], data: Mapping[str, Any]) -> str | None:
    """The name of a cell: ``data.name``, else the text drawn on it (Threat Dragon 2 keeps the name of a
    boundary box only in ``attrs.label.text``, a flow's in its label), else None.

    >>> _cell_label({"attrs": {"label": {"text": "Internet"}}}, {"type": "tm.BoundaryBox"})
    'Internet'
    >>> _cell_label({"labels": [{"attrs": {"labelText": {"text": "Query"}}}]}, {"name": ""})
    'Query'
    """
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        return name
    attrs = _obj(cell, "attrs")
    texts = [_obj(attrs, "label").get("text"), _obj(attrs, "text").get("text")]
    labels = cell.get("labels")
    if isinstance(labels, list) and labels and isinstance(labels[0], Mapping):
        la = _obj(labels[0], "attrs")
        texts += [_obj(la, "labelText").get("text"), _obj(la, "label").get("text"), _obj(la, "text").get("text")]
    return next((t for t in texts if isinstance(t, str) and t.strip()), None)


def _ptr(path: Sequence[str | int]) -> str:
    from threatgraph.interchange.common import pointer

    return pointer(path)


def _obj(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = parent.get(key)
    return v if isinstance(v, Mapping) else {}


def _pt(v: Any) -> Point | None:
    if isinstance(v, Mapping) and isinstance(v.get("x"), (int, float)) and isinstance(v.get("y"), (int, float)):
        return (float(v["x"]), float(v["y"]))
    return None


def _centre(cell: Mapping[str, Any]) -> Point:
    pos, size = _obj(cell, "position"), _obj(cell, "size")
    x, y = float(pos.get("x", 0) or 0), float(pos.get("y", 0) or 0)
    w = float(size.get("width", cell.get("width", 0)) or 0)
    h = float(size.get("height", cell.get("height", 0)) or 0)
    return (x + w / 2, y + h / 2)


def _crosses(a: Point, c: Point, polyline: Sequence[Point]) -> bool:
    """Whether segment a–c crosses the polyline (an odd number of proper crossings counts).

    >>> _crosses((0, 0), (10, 0), [(5, -5), (5, 5)])
    True
    >>> _crosses((0, 0), (4, 0), [(5, -5), (5, 5)])
    False
    """
    hits = sum(1 for p, q in pairwise(polyline) if _intersect(a, c, p, q))
    return hits % 2 == 1


def _orient(p: Point, q: Point, r: Point) -> float:
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def _intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    d1, d2 = _orient(c, d, a), _orient(c, d, b)
    d3, d4 = _orient(a, b, c), _orient(a, b, d)
    return ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and d1 != 0 and d2 != 0
