"""Write the findings back into the tools the team uses: a Threat Dragon v2 model and an OTM 0.2.0 document.

Each finding becomes a threat on the cell (Threat Dragon) or component / dataflow (OTM) it is about: the
category in the diagram's own vocabulary (STRIDE or LINDDUN words), the title, the level (risk level where
computed, else severity), status Open — or Mitigated when declared controls mitigate it —, the explanation
as description and the mitigations to implement by name (the technique mitigations no control implements
when knowledge is loaded, else the rule's ``remediation``).

When the analysed model is one Threat Dragon (or OTM) file, that file is re-read and the threats are added
to it, everything else left as the team saved it; a threat already there with our id (a previous write-back
the team triaged) is kept as they left it. Otherwise the document is laid out from the system model: zones
as boundary boxes (trust zones in OTM), elements as actors, processes and stores, flows between them.
Re-importing the output gives the same elements, flows, zones and threats (docs/interchange.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyoxigraph import Literal, NamedNode

from threatgraph.analysis.findings import Finding
from threatgraph.export.context import ReportContext, local_name
from threatgraph.export.jsonindent import dumps_indent2
from threatgraph.interchange.common import KIND_OF, Builder
from threatgraph.store import Store
from threatgraph.terms import LINDDUN, STRIDE, TGML, graph_iri

TD_VERSION = "2.2.0"
OTM_VERSION = "0.2.0"

STRIDE_WORDS: dict[str, str] = {
    STRIDE.Spoofing: "Spoofing",
    STRIDE.Tampering: "Tampering",
    STRIDE.Repudiation: "Repudiation",
    STRIDE.InformationDisclosure: "Information disclosure",
    STRIDE.DenialOfService: "Denial of service",
    STRIDE.ElevationOfPrivilege: "Elevation of privilege",
}
"""Threat Dragon's STRIDE threat types (td.vue i18n ``threats.model.stride``)."""
LINDDUN_WORDS: dict[str, str] = {
    LINDDUN.Linking: "Linkability",
    LINDDUN.Identifying: "Identifiability",
    LINDDUN.NonRepudiation: "Non-repudiation",
    LINDDUN.Detecting: "Detectability",
    LINDDUN.DataDisclosure: "Disclosure of information",
    LINDDUN.UnawarenessUnintervenability: "Unawareness",
    LINDDUN.NonCompliance: "Non-compliance",
}
"""Threat Dragon's LINDDUN threat types (td.vue i18n ``threats.model.linddun``)."""
TD_SEVERITY = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "info": "Low"}
"""Threat Dragon knows TBD, Low, Medium, High and Critical; our ``info`` is written as Low."""
OTM_IMPACT = {"critical": 100, "high": 80, "medium": 50, "low": 20, "info": 10}
"""OTM threat impact (0–100) per level; the likelihood is left null (not assessed), which the OTM importer
reads as certain, so the level comes back as high (critical, high), medium or low."""

_SHAPES = {"ExternalEntity": ("actor", "tm.Actor", 160, 80), "Process": ("process", "tm.Process", 100, 100),
           "DataStore": ("store", "tm.Store", 160, 80)}
_V1_SHAPES = {"tm.Actor": "actor", "tm.Process": "process", "tm.Store": "store", "tm.Flow": "flow",
              "tm.Boundary": "trust-boundary-curve", "tm.BoundaryBox": "trust-boundary-box", "tm.Text": "td-text-block"}
_OTM_TYPES = {"ExternalEntity": "external-entity", "Process": "process", "DataStore": "data-store"}
_FLAGS = ("encryptedInTransit", "publiclyExposed", "encryptedAtRest", "holdsLogs", "artifactsSigned", "outOfScope")


@dataclass
class Threat:
    """One finding (or one threat the model declares) as a threat to write."""

    id: str
    """Stable UUID (:func:`finding_id`): the same finding gets the same id in every run and after re-import."""
    focus: str
    title: str
    categories: list[str]
    severity: str
    status: str
    """Open or Mitigated for a finding; a declared threat's own status."""
    description: str
    mitigations: list[tuple[str, str]]
    """(id, name) of the mitigations to implement."""
    rule_id: str = ""
    techniques: list[str] = field(default_factory=list)
    technique_status: str = ""
    """The techniques' status when they are unresolved (no ATT&CK / ATLAS release loaded), else ""."""
    declared: bool = False

    def word(self, linddun: bool) -> tuple[str, str]:
        """(threat type, model type) in a STRIDE or LINDDUN diagram's vocabulary; the other method's word
        (with its own model type) when the finding has no category of the diagram's method."""
        first, second = (LINDDUN_WORDS, STRIDE_WORDS) if linddun else (STRIDE_WORDS, LINDDUN_WORDS)
        for words in (first, second):
            for c in self.categories:
                if c in words:
                    return words[c], ("LINDDUN" if words is LINDDUN_WORDS else "STRIDE")
        return (local_name(self.categories[0]) if self.categories else "Threat"), ("LINDDUN" if linddun else "STRIDE")

    @property
    def mitigation_text(self) -> str:
        return "; ".join(f"{i} {n}" if i and i != n else n for i, n in self.mitigations)

    @property
    def td_status(self) -> str:
        """The status in Threat Dragon's words (NA, Open, Mitigated and the schema's other words kept)."""
        if self.status in TD_STATUSES:
            return self.status
        key = "".join(ch for ch in self.status.lower() if ch.isalpha())
        return "NA" if key in ("na", "notapplicable") else "Mitigated" if key == "mitigated" else "Open"

    @property
    def otm_state(self) -> str:
        if not self.declared:
            return "MITIGATED" if self.status == "Mitigated" else "EXPOSED"
        return self.status or "EXPOSED"


TD_STATUSES = ("NA", "Open", "Mitigated", "Accepted", "Transferred", "Avoided", "Eliminated")
"""Threat statuses of the Threat Dragon v2 schema."""


def threats_of(ctx: ReportContext) -> list[Threat]:
    """The findings shown, as threats to write (in the context's order)."""
    out = []
    used: set[str] = set()
    known = ctx.model.elements.keys() | ctx.model.flows.keys()
    for fv in ctx.findings:
        f = fv.f
        tid = finding_id(ctx, fv.f, known)
        if tid in used:  # two findings alike in rule, element and evidence labels: the IRI tells them apart
            tid = str(uuid.uuid5(uuid.NAMESPACE_URL, f.iri))
        used.add(tid)
        mits: list[tuple[str, str]] = []
        for t in f.techniques:
            for m in t.missing:
                if m not in mits:
                    mits.append(m)
        if not mits and not any(t.mitigations for t in f.techniques) and ctx.remediation.get(f.rule_id):
            mits = [("", ctx.remediation[f.rule_id])]
        out.append(Threat(
            id=tid, focus=f.focus, title=f.threat,
            categories=[c[0] for c in f.categories], severity=f.level or f.severity,
            status="Mitigated" if fv.control_status == "mitigated" else "Open", description=f.explanation,
            mitigations=mits, rule_id=f.rule_id, techniques=list(fv.techniques),
            technique_status=fv.unresolved if fv.techniques else "",
        ))
    return out


def finding_id(ctx: ReportContext, f: Finding, known: AbstractSet[str] | None = None) -> str:
    """A UUID for a finding that survives the round trip through another tool: from the rule, the element's
    label and kind, the categories and the labels of the elements and flows in its evidence (the finding IRI itself is built
    from element IRIs, which change when a model is re-imported from another format). ``known``: the IRIs of
    the model's elements and flows, when the caller has them (one set per finding made threats_of quadratic)."""
    if known is None:
        known = ctx.model.elements.keys() | ctx.model.flows.keys()
    ev = sorted(f"{role}={label}" for role, value, label in f.evidence if value in known)
    cats = sorted(c[0] for c in f.categories)
    key = "\x1f".join(["threatgraph-finding", f.rule_id, f.focus_kind, f.focus_label, *cats, *ev])
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def declared_of(ctx: ReportContext, findings: list[Threat]) -> list[Threat]:
    """The model's declared threats as threats to write (a laid-out document would lose them otherwise).

    A declared threat that is one of our findings written back before (its identifier is the finding's id)
    replaces that finding: the team's triage wins. A model-level declared threat (one naming no element,
    e.g. a TM-BOM threat without ``components_affected``) has no cell or component to go on and is left out.
    """
    ours = {t.id for t in findings}
    out = []
    for d in ctx.declared:
        if d.model_level:
            continue
        tail = d.iri.rsplit(":", 1)[-1]
        out.append(Threat(
            id=tail if tail in ours else str(uuid.uuid5(uuid.NAMESPACE_URL, d.iri)), focus=d.element, title=d.title,
            categories=[c for c, _ in d.categories], severity=d.severity, status=d.status, description="",
            mitigations=[("", d.mitigation)] if d.mitigation else [], declared=True,
        ))
    return out


def _all_threats(ctx: ReportContext) -> list[Threat]:
    """Declared threats and findings for a laid-out document (a finding the team triaged appears once)."""
    found = threats_of(ctx)
    declared = declared_of(ctx, found)
    seen = {t.id for t in declared}
    return declared + [t for t in found if t.id not in seen]


def _read_input(ctx: ReportContext, fmt: str) -> tuple[str, dict[str, Any]] | None:
    """(path, parsed document) when the model is one file of ``fmt`` (threat-dragon or otm) in JSON."""
    if len(ctx.model_files) != 1:
        return None
    from threatgraph.interchange.detect import sniff

    path = Path(ctx.model_files[0])
    if path.suffix.lower() not in (".json", ".otm", ".yaml", ".yml"):
        return None
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix.lower() in (".json", ".otm") and text.lstrip().startswith("{") else _yaml(text)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(doc, dict) and sniff(doc) == fmt:
        return str(path), doc
    return None


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(str(err)) from err


def _flags(store: Store) -> dict[str, dict[str, bool]]:
    """Element and flow security flags of ``graph/model`` (IRI → local name → value)."""
    values = " ".join(f"tg:{f}" for f in _FLAGS)
    q = f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph_iri('model')}> {{ ?s ?p ?o }} VALUES ?p {{ {values} }} }}"
    out: dict[str, dict[str, bool]] = {}
    for r in store.select(q):
        o = r["o"]
        if isinstance(o, Literal) and o.value in ("true", "false"):
            out.setdefault(r["s"].value, {})[local_name(r["p"].value)] = o.value == "true"
    return out


def _ml_classes(store: Store) -> dict[str, str]:
    """Element IRI → the local name of one asserted ML class the importers know (the first by name)."""
    q = f"SELECT ?e ?c WHERE {{ GRAPH <{graph_iri('model')}> {{ ?e a ?c }} FILTER(STRSTARTS(STR(?c), STR(tgml:))) }}"
    found: dict[str, list[str]] = {}
    for r in store.select(q):
        c = r["c"]
        if isinstance(c, NamedNode) and c.value[len(TGML):] in KIND_OF:
            found.setdefault(r["e"].value, []).append(c.value[len(TGML):])
    return {e: sorted(cs)[0] for e, cs in found.items()}


def _system(ctx: ReportContext) -> tuple[str, str]:
    if ctx.model.systems:
        _, label, desc = sorted(ctx.model.systems)[0]
        return label, desc
    return ctx.title, ""


# ---------------------------------------------------------------------------------------------
# Threat Dragon v2
# ---------------------------------------------------------------------------------------------
def render_threat_dragon(ctx: ReportContext, store: Store) -> str:
    """A Threat Dragon v2 model with the findings as threats (the input model when it was Threat Dragon)."""
    found = _read_input(ctx, "threat-dragon")
    doc = _td_add(found[0], found[1], threats_of(ctx)) if found else None
    if doc is None:
        doc = _td_layout(ctx, store, _all_threats(ctx))
    return dumps_indent2(doc) + "\n"


def _td_threat(t: Threat, number: int, linddun: bool) -> dict[str, Any]:
    word, model_type = t.word(linddun)
    return {
        "threatId": t.id, "number": number, "title": t.title, "type": word, "modelType": model_type,
        "status": t.td_status, "severity": TD_SEVERITY.get(t.severity, "TBD"),
        "description": t.description, "mitigation": t.mitigation_text,
    }


def _on_cell(cell: dict[str, Any]) -> bool:
    """Whether the cell's threats are ``cell.threats`` (where the schema has them, and where the importer
    looks first) rather than ``data.threats`` (where Threat Dragon 2 saves them): when the cell already uses
    it, or when ``data.threats`` holds something that is not a list (kept as it is)."""
    data = cell["data"]
    return (isinstance(cell.get("threats"), list) and bool(cell["threats"])) or \
        (data.get("threats") is not None and not isinstance(data["threats"], list))


def _cell_threat_list(cell: dict[str, Any]) -> list[Any]:
    """A copy of the cell's threats."""
    if _on_cell(cell):
        return list(cell["threats"]) if isinstance(cell.get("threats"), list) else []
    return list(cell["data"].get("threats") or [])


def _set_threats(cell: dict[str, Any], threats: list[Any]) -> None:
    if _on_cell(cell):
        cell["threats"] = threats
    else:
        cell["data"]["threats"] = threats
    cell["data"]["hasOpenThreats"] = any(isinstance(t, Mapping) and t.get("status") == "Open" for t in threats)


def _td_add(path: str, doc: dict[str, Any], threats: list[Threat]) -> dict[str, Any] | None:
    """Add the threats to the Threat Dragon document they were derived from (None when a finding is about
    something the document has no cell for)."""
    from threatgraph.interchange.threatdragon import FORMAT, _v1_cell

    summary: Mapping[str, Any] = doc["summary"] if isinstance(doc.get("summary"), Mapping) else {}
    sid = summary.get("id")
    b = Builder(FORMAT, path, str(sid) if sid not in (None, "") else str(summary.get("title")))
    detail = doc["detail"]
    diagrams = detail.get("diagrams") if isinstance(detail.get("diagrams"), list) else []
    at: dict[str, tuple[dict[str, Any], bool, str]] = {}  # IRI → (cell, LINDDUN diagram, note)
    for di, diagram in enumerate(diagrams):
        if not isinstance(diagram, dict):
            continue
        if "diagramJson" in diagram and "cells" not in diagram:  # Threat Dragon 1.x: upgraded as TD 2 does
            v1 = diagram.pop("diagramJson")
            cells = [_v1_cell(c) for c in (v1.get("cells") or [])] if isinstance(v1, Mapping) else []
            for c in cells:
                if isinstance(c, dict) and isinstance(c.get("data"), dict):
                    c.setdefault("shape", _V1_SHAPES.get(str(c["data"].get("type")), "td-text-block"))
                    c.setdefault("zIndex", 0)
                    c["data"].setdefault("hasOpenThreats", False)
            diagram["cells"] = cells
        diagram.setdefault("diagramType", "STRIDE")
        diagram.setdefault("id", di)
        diagram.setdefault("thumbnail", "./public/content/images/thumbnail.stride.jpg")
        diagram.setdefault("title", f"Diagram {di + 1}")
        diagram.setdefault("version", TD_VERSION)
        linddun = "linddun" in str(diagram.get("diagramType")).lower()
        dkey = str(diagram.get("id", di))
        for cell in diagram.get("cells") or []:
            if not isinstance(cell, dict) or not isinstance(cell.get("data"), dict) or not isinstance(cell.get("id"), str):
                continue
            ctype, cid = cell["data"].get("type"), cell["id"]
            if ctype in ("tm.Actor", "tm.Process", "tm.Store"):
                at.setdefault(str(b.iri(dkey, cid)), (cell, linddun, ""))
            elif ctype == "tm.Flow":
                at.setdefault(str(b.iri(dkey, cid)), (cell, linddun, ""))
                at.setdefault(str(b.iri(dkey, cid + "#reverse")), (cell, linddun, " (in the flow's reverse direction)"))
                for end in ("source", "target"):  # a loose end's placeholder element: its threats go on the flow
                    at.setdefault(str(b.iri(dkey, cid, end)), (cell, linddun, f" (on the flow's unnamed {end})"))
    if any(t.focus not in at for t in threats):
        return None
    top = detail.get("threatTop") if isinstance(detail.get("threatTop"), int) else 0
    per_cell: dict[int, tuple[dict[str, Any], list[Any], set[str]]] = {}  # cell, its threats, their ids
    for t in threats:
        cell, linddun, note = at[t.focus]
        entry = per_cell.get(id(cell))
        if entry is None:
            lst = _cell_threat_list(cell)
            ids = {x["threatId"] for x in lst if isinstance(x, Mapping) and isinstance(x.get("threatId"), str)}
            entry = per_cell[id(cell)] = (cell, lst, ids)
        if t.id in entry[2]:
            continue  # written before and triaged by the team: kept as they left it
        top += 1
        item = _td_threat(t, top, linddun)
        item["description"] += note
        entry[1].append(item)
        entry[2].add(t.id)
    for cell, lst, _ in per_cell.values():
        _set_threats(cell, lst)
    doc.setdefault("version", TD_VERSION)
    detail["threatTop"] = top
    for key, default in (("contributors", []), ("diagramTop", len(diagrams)), ("reviewer", "")):
        detail.setdefault(key, default)
    return doc


def _cell_id(iri: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, iri))


def _td_layout(ctx: ReportContext, store: Store, threats: list[Threat]) -> dict[str, Any]:
    """A Threat Dragon model laid out from the system model: one column per zone (a boundary box)."""
    mv = ctx.model
    flags, ml = _flags(store), _ml_classes(store)
    by_focus: dict[str, list[Threat]] = {}
    for t in threats:
        by_focus.setdefault(t.focus, []).append(t)
    counter = [0]

    def numbered(items: list[Threat]) -> list[dict[str, Any]]:
        out = []
        for t in items:
            counter[0] += 1
            out.append(_td_threat(t, counter[0], False))
        return out

    columns: list[tuple[str | None, list[str]]] = []
    zones = sorted(mv.zones, key=lambda z: (mv.zones[z][1] if mv.zones[z][1] is not None else 99, mv.zones[z][0].lower(), z))
    members: dict[str | None, list[str]] = {}
    for e in sorted(mv.elements, key=lambda e: (mv.elements[e].label.lower(), e)):
        members.setdefault(mv.elements[e].zone if mv.elements[e].zone in mv.zones else None, []).append(e)
    columns = [(z, members.get(z, [])) for z in zones] + ([(None, members[None])] if None in members else [])
    cells: list[dict[str, Any]] = []
    z_index = 0
    width, pitch = 260, 150
    for col, (zone, elems) in enumerate(columns):
        x0 = col * (width + 60)
        if zone is not None:
            name = mv.zones[zone][0]
            cells.append({
                "id": _cell_id(zone), "shape": "trust-boundary-box", "zIndex": -1,
                "position": {"x": x0, "y": 0}, "size": {"width": width, "height": 60 + max(1, len(elems)) * pitch},
                "attrs": {"label": {"text": name}, "headerText": {"text": name}},  # TD 2.2 and later TD 2.x
                "data": {"type": "tm.BoundaryBox", "name": name, "description": "", "isTrustBoundary": True,
                         "hasOpenThreats": False},
            })
        for row, e in enumerate(elems):
            ev = mv.elements[e]
            shape, ttype, w, h = _SHAPES.get(ev.kind, _SHAPES["Process"])
            desc = ev.description
            if e in ml and KIND_OF.get(ml[e]) == ev.kind:  # the importer reads an explicit tgml:Class back
                desc = f"{desc}\n(tgml:{ml[e]})" if desc else f"tgml:{ml[e]}"
            f = flags.get(e, {})
            data: dict[str, Any] = {"type": ttype, "name": ev.label, "description": desc,
                                    "outOfScope": f.get("outOfScope", False), "reasonOutOfScope": ""}
            if ev.kind == "DataStore":
                data.update(isALog=f.get("holdsLogs", False), isEncrypted=f.get("encryptedAtRest", False),
                            isSigned=f.get("artifactsSigned", False), storesCredentials=False)
            z_index += 1
            cell = {"id": _cell_id(e), "shape": shape, "zIndex": z_index,
                    "position": {"x": x0 + (width - w) // 2, "y": 50 + row * pitch + (pitch - h) // 2},
                    "size": {"width": w, "height": h}, "attrs": {"text": {"text": ev.label}}, "data": data}
            _set_threats(cell, numbered(by_focus.get(e, [])))
            cells.append(cell)
    for firi in sorted(mv.flows, key=lambda i: (mv.flows[i].label.lower(), i)):
        fl = mv.flows[firi]
        if fl.source not in mv.elements or fl.target not in mv.elements:
            continue
        f = flags.get(firi, {})
        z_index += 1
        cell = {"id": _cell_id(firi), "shape": "flow", "zIndex": z_index, "connector": "smooth",
                "source": {"cell": _cell_id(fl.source)}, "target": {"cell": _cell_id(fl.target)}, "vertices": [],
                "labels": [{"position": 0.5, "attrs": {"labelText": {"text": fl.label, "textAnchor": "middle",
                                                                      "textVerticalAnchor": "middle"}}}],
                "attrs": {"line": {"stroke": "#333333", "strokeWidth": 1, "targetMarker": {"name": "block"}}},
                "data": {"type": "tm.Flow", "name": fl.label, "description": "", "protocol": fl.protocol,
                         "isEncrypted": f.get("encryptedInTransit", False),
                         "isPublicNetwork": f.get("publiclyExposed", False), "isBidirectional": False,
                         "outOfScope": f.get("outOfScope", False), "reasonOutOfScope": ""}}
        _set_threats(cell, numbered(by_focus.get(firi, [])))
        cells.append(cell)
    title, desc = _system(ctx)
    return {
        "version": TD_VERSION,
        "summary": {"title": title, "owner": "", "description": desc or ctx.title},
        "detail": {
            "contributors": [], "reviewer": "", "diagramTop": 1, "threatTop": counter[0],
            "diagrams": [{"id": 0, "title": title, "diagramType": "STRIDE", "placeholder": "",
                          "thumbnail": "./public/content/images/thumbnail.stride.jpg", "version": TD_VERSION,
                          "description": f"Laid out by threatgraph from {', '.join(ctx.model_files)}",
                          "cells": cells}],
        },
    }


# ---------------------------------------------------------------------------------------------
# Open Threat Model 0.2.0
# ---------------------------------------------------------------------------------------------
def _otm_categories(t: Threat) -> list[str]:
    out = []
    for c in t.categories:
        if c in STRIDE_WORDS:
            out.append(f"STRIDE: {STRIDE_WORDS[c]}")
        elif c in LINDDUN_WORDS:
            out.append(f"LINDDUN: {LINDDUN_WORDS[c]}")
    return out


def render_otm(ctx: ReportContext, store: Store) -> str:
    """An OTM 0.2.0 document with the findings as threats and mitigations (the input one when it was OTM)."""
    found = _read_input(ctx, "otm")
    doc = _otm_add(found[0], found[1], threats_of(ctx)) if found else _otm_layout(ctx, store, _all_threats(ctx))
    return dumps_indent2(doc) + "\n"


def _otm_attach(doc: dict[str, Any], owners: Mapping[str, dict[str, Any]], threats: list[Threat]) -> None:
    """Add threat and mitigation definitions to ``doc`` and threat instances to the owners (by focus IRI)."""
    tdefs = doc["threats"] = [t for t in (doc.get("threats") or []) if isinstance(t, Mapping)]
    mdefs = doc["mitigations"] = [m for m in (doc.get("mitigations") or []) if isinstance(m, Mapping)]
    tids = {t.get("id") for t in tdefs}
    mids = {m.get("id") for m in mdefs}
    held: dict[int, set[str]] = {}  # owner -> the threat ids of its instances (its list filtered once)
    for t in threats:
        owner = owners.get(t.focus)
        if owner is None:
            continue
        have = held.get(id(owner))
        if have is None:
            insts = owner["threats"] = [i for i in (owner.get("threats") or []) if isinstance(i, Mapping)]
            have = held[id(owner)] = {i["threat"] for i in insts if isinstance(i.get("threat"), str)}
        insts = owner["threats"]
        if t.id in have:
            continue  # written before and triaged: kept as the team left it
        have.add(t.id)
        if t.id not in tids:
            tids.add(t.id)
            tdefs.append({"id": t.id, "name": t.title, "description": t.description, "categories": _otm_categories(t),
                          "risk": {"likelihood": None, "impact": OTM_IMPACT.get(t.severity, 50)},
                          "attributes": {"rule": t.rule_id, "level": t.severity,
                                         "techniques": t.techniques,
                                         **({"techniqueStatus": t.technique_status} if t.technique_status else {})}})
        refs = []
        for mid_raw, name in t.mitigations:
            mid = mid_raw or ("remediation-" + t.rule_id if t.rule_id else "declared-" + t.id)
            if mid not in mids:
                mids.add(mid)
                mdefs.append({"id": mid, "name": name, "description": name, "riskReduction": 0,
                              "attributes": {"riskReductionAssessed": False}})
            refs.append({"mitigation": mid, "state": "RECOMMENDED"})
        insts.append({"threat": t.id, "state": t.otm_state, "mitigations": refs})


def _otm_add(path: str, doc: dict[str, Any], threats: list[Threat]) -> dict[str, Any]:
    """Add the threats to the OTM document they were derived from."""
    project: Mapping[str, Any] = doc["project"] if isinstance(doc.get("project"), Mapping) else {}
    b = Builder("otm", path, str(project.get("id")))
    _otm_draft_keys(doc)
    owners: dict[str, dict[str, Any]] = {}
    for c in doc.get("components") or []:
        if isinstance(c, dict) and isinstance(c.get("id"), str):
            owners.setdefault(str(b.iri("component", c["id"])), c)
    for f in doc.get("dataflows") or []:
        if isinstance(f, dict) and isinstance(f.get("id"), str):
            for ident in (f["id"], f["id"] + "#reverse"):
                owners.setdefault(str(b.iri("flow", ident)), f)
            for role in ("source", "target"):
                owners.setdefault(str(b.iri("flow", f["id"], role)), f)
    _otm_attach(doc, owners, threats)
    return doc


def _otm_draft_keys(doc: dict[str, Any]) -> None:
    """Write the keys of early OTM drafts that the importer reads (``trustzones``, a plain-id ``parent``,
    ``from`` / ``to``) as OTM 0.2.0 names them; what the team left out (a zone's ``risk``) is not invented."""
    if "trustzones" in doc and "trustZones" not in doc:
        doc["trustZones"] = doc.pop("trustzones")
    zones = {z.get("id") for z in doc.get("trustZones") or [] if isinstance(z, Mapping)}
    comps = {c.get("id") for c in doc.get("components") or [] if isinstance(c, Mapping)}
    for c in doc.get("components") or []:
        if isinstance(c, dict) and isinstance(c.get("parent"), str):
            p = c["parent"]
            if p in zones and p not in comps:
                c["parent"] = {"trustZone": p}
            elif p in comps and p not in zones:
                c["parent"] = {"component": p}
    for f in doc.get("dataflows") or []:
        if isinstance(f, dict):
            for draft, key in (("from", "source"), ("to", "destination")):
                if key not in f and isinstance(f.get(draft), str):
                    f[key] = f.pop(draft)


def _otm_layout(ctx: ReportContext, store: Store, threats: list[Threat]) -> dict[str, Any]:
    mv = ctx.model
    flags, ml = _flags(store), _ml_classes(store)
    title, desc = _system(ctx)
    zones: list[dict[str, Any]] = [{"id": _cell_id(z), "name": label, "description": None,
              "risk": {"trustRating": level if level is not None else 0},
              **({} if level is not None else {"attributes": {"trustRatingAssessed": False}})}
             for z, (label, level) in sorted(mv.zones.items(), key=lambda kv: (kv[1][0].lower(), kv[0]))]
    outside: dict[str, Any] | None = None
    comps: list[dict[str, Any]] = []
    owners: dict[str, dict[str, Any]] = {}
    for e in sorted(mv.elements, key=lambda e: (mv.elements[e].label.lower(), e)):
        ev = mv.elements[e]
        if ev.zone in mv.zones:
            zid = _cell_id(str(ev.zone))
        else:
            if outside is None:
                outside = {"id": "outside-trust-zones", "name": "Outside all trust zones", "risk": {"trustRating": 0},
                           "attributes": {"trustRatingAssessed": False}}
                zones.append(outside)
            zid = str(outside["id"])
        attrs: dict[str, Any] = {k: v for k, v in flags.get(e, {}).items() if k != "outOfScope"}
        if e in ml and KIND_OF.get(ml[e]) == ev.kind:
            attrs["tgml"] = f"tgml:{ml[e]}"
        comp = {"id": _cell_id(e), "name": ev.label, "type": _OTM_TYPES.get(ev.kind, "process"),
                "description": ev.description or None, "parent": {"trustZone": zid}, "attributes": attrs or None}
        comps.append(comp)
        owners[e] = comp
    flows: list[dict[str, Any]] = []
    for firi in sorted(mv.flows, key=lambda i: (mv.flows[i].label.lower(), i)):
        fl = mv.flows[firi]
        if fl.source not in mv.elements or fl.target not in mv.elements:
            continue
        fattrs: dict[str, Any] = {k: v for k, v in flags.get(firi, {}).items() if k != "outOfScope"}
        if fl.protocol:
            fattrs["protocol"] = fl.protocol
        flow = {"id": _cell_id(firi), "name": fl.label, "bidirectional": False, "source": _cell_id(fl.source),
                "destination": _cell_id(fl.target), "attributes": fattrs or None}
        flows.append(flow)
        owners[firi] = flow
    doc: dict[str, Any] = {
        "otmVersion": OTM_VERSION,
        "project": {"name": title, "id": _cell_id("project:" + title), "description": desc or ctx.title},
        "trustZones": zones, "components": comps, "dataflows": flows,
    }
    _otm_attach(doc, owners, threats)
    return doc


__all__ = ["render_otm", "render_threat_dragon", "threats_of"]
