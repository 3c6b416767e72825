"""Open Threat Model (OTM 0.2, IriusRisk/StartLeft) → threatgraph system model.

Trust zones → tg:TrustZone (trustRating → tg:trustLevel); components → elements whose kind comes from
the component ``type`` (table in docs/interchange.md); dataflows → tg:DataFlow (bidirectional ones as
two flows); assets → tg:DataAsset with a classification from their CIA risk; component and dataflow
threats → tg:DeclaredThreat with their state and mitigations; implemented mitigations → tg:Control.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import rdflib

from threatgraph.errors import InputError
from threatgraph.interchange.common import (
    TGMLN,
    Builder,
    ImportResult,
    add_system,
    category_iri,
    declared_threat,
    items,
    map_attributes,
    optional,
    pointer,
    require,
    slug,
)
from threatgraph.interchange.mlclasses import Choice, MLClasses, normalise
from threatgraph.interchange.tmt import tmt_properties
from threatgraph.terms import DCT, TG, TGML

FORMAT = "otm"

# Component type tokens → (core kind, ML class or None). Matched on the lower-case type split at
# non-letters, most specific first. Types matching nothing are processes (OTM components are mostly
# services) and are reported as unmapped.
_TYPE_TABLE: list[tuple[str, str, str | None]] = [
    (r"vector[- ]?(store|db|database|index)", "DataStore", "VectorStore"),
    (r"model[- ]?registry", "DataStore", "ModelRegistry"),
    (r"feature[- ]?store", "DataStore", "FeatureStore"),
    (r"training[- ]?(data|dataset)", "DataStore", "TrainingDataset"),
    (r"(ml|ai)[- ]?model|model[- ]?artifact", "DataStore", "ModelArtifact"),
    (r"llm[- ]?agent|ai[- ]?agent", "Process", "LLMAgent"),
    (r"llm|genai|chatbot", "Process", "LLMApplication"),
    (r"sagemaker[- ]?endpoint|inference|model[- ]?serving|ml[- ]?endpoint", "Process", "InferenceEndpoint"),
    (r"sagemaker|training[- ]?(job|pipeline)|ml[- ]?pipeline", "Process", "TrainingPipeline"),
    (r"notebook|jupyter", "Process", "NotebookEnvironment"),
    (r"guardrail", "Process", "Guardrail"),
    (r"bedrock|openai|ai[- ]?provider|llm[- ]?provider", "ExternalEntity", "LLMProvider"),
    (r"model[- ]?hub|hugging[- ]?face", "ExternalEntity", "ModelHub"),
    (r"(^|[^a-z])(user|client|browser|actor|mobile|external|third[- ]?party|partner|customer)", "ExternalEntity", None),
    (r"database|(^|[^a-z])db|sql|mongo|dynamo|s3|bucket|storage|store|redis|cache|elasticsearch|documentdb|"
     r"data[- ]?lake|warehouse|file[- ]?system|filesystem|queue|topic|kafka|sqs|sns|blob|repository|registry|vault",
     "DataStore", None),
    (r"service|server|app|application|api|lambda|function|gateway|process|job|worker|container|pod|vm|"
     r"instance|ec2|ecs|eks|kubernetes|backend|frontend|web|proxy|balancer|cdn|waf|load",
     "Process", None),
]


def component_kind(type_: str) -> tuple[str, str | None, bool]:
    """(core kind local name, ML class IRI or None, matched) for an OTM component type.

    >>> component_kind("CD-V2-VECTOR-DATABASE")
    ('DataStore', 'https://w3id.org/threatgraph/ml#VectorStore', True)
    >>> component_kind("empty-component")[0:2]
    ('Process', None)
    >>> component_kind("CD-V2-WEB-CLIENT")[0]
    'ExternalEntity'
    """
    low = type_.lower()
    for rx, kind, ml in _TYPE_TABLE:
        if re.search(rx, low):
            return kind, (TGML[ml] if ml else None), True
    return "Process", None, False


def _type_choice(table: MLClasses, type_: str, kind: str) -> Choice | None:
    """The ML class the type table gives ``type_`` (after the user's ``none`` phrases), with its reason."""
    low = table.mask(normalise(type_, token=True))
    for rx, k, ml in _TYPE_TABLE:
        if ml and k == kind and (m := re.search(rx, low)):
            return Choice(TGML[ml], "type", type_, m.group(0).strip())
    return None


def classification_from_cia(risk: Mapping[str, Any]) -> str:
    """tg:Public/Internal/Confidential from an OTM asset's confidentiality rating.

    OTM does not fix the scale: values above 5 are read as percentages (0–100), others as 1–5.

    >>> classification_from_cia({"confidentiality": 90}).rsplit("#")[1]
    'Confidential'
    >>> classification_from_cia({"confidentiality": 2}).rsplit("#")[1]
    'Internal'
    >>> classification_from_cia({"confidentiality": 0}).rsplit("#")[1]
    'Public'
    """
    values = [v for v in (risk.get("confidentiality"), risk.get("integrity"), risk.get("availability"))
              if isinstance(v, (int, float))]
    c = risk.get("confidentiality")
    if not isinstance(c, (int, float)):
        return TG.Internal
    scale = 100.0 if any(v > 5 for v in values) else 5.0
    x = float(c) / scale
    if x >= 0.7:
        return TG.Confidential
    if x >= 0.3:
        return TG.Internal
    return TG.Public


def convert(doc: Any, name: str, *, ml: MLClasses | None = None) -> ImportResult:
    """Convert a parsed OTM document (``ml``: the ML phrase table, default the shipped one)."""
    b = Builder(FORMAT, name, "otm", ml=ml)
    if not isinstance(doc, Mapping):
        raise b.fail([], "an OTM document is a JSON object")
    require(b, doc, [], "otmVersion")
    project = require(b, doc, [], "project", Mapping)
    pid = require(b, project, ["project"], "id")
    b = Builder(FORMAT, name, pid, ml=ml)
    system = add_system(b, require(b, project, ["project"], "name"), optional(b, project, ["project"], "description", str), pid)
    b.unmapped_keys(project, ["project"], ("id", "name", "description"), "project metadata with no threatgraph property")
    zkey = "trustZones"
    if "trustZones" not in doc and "trustzones" in doc:
        zkey = "trustzones"
        b.deviation(["trustzones"], "'trustzones' read as 'trustZones' (the key of early OTM drafts)")
    b.unmapped_keys(doc, [], ("otmVersion", "project", "assets", zkey, "components", "dataflows", "threats",
                             "mitigations"), "OTM section with no threatgraph counterpart")

    # Threat and mitigation definitions (referenced by id from component and dataflow threats).
    threat_defs: dict[str, Mapping[str, Any]] = {}
    for i, t in enumerate(items(b, doc, [], "threats")):
        try:
            tid = require(b, t, ["threats", i], "id")
            require(b, t, ["threats", i], "name")
        except InputError as err:
            b.skip(err)
            continue
        threat_defs[tid] = t
        b.unmapped_keys(t, ["threats", i], ("id", "name", "description", "categories", "risk"),
                        "threat detail with no threatgraph property")
        if isinstance(t.get("risk"), Mapping):
            b.unmapped_keys(t["risk"], ["threats", i, "risk"], ("likelihood", "impact"),
                            "threat risk comment with no threatgraph property")
    mitigation_defs: dict[str, Mapping[str, Any]] = {}
    for i, m in enumerate(items(b, doc, [], "mitigations")):
        try:
            mid = require(b, m, ["mitigations", i], "id")
            require(b, m, ["mitigations", i], "name")
        except InputError as err:
            b.skip(err)
            continue
        mitigation_defs[mid] = m
        if m.get("riskReduction") is not None:
            b.unmapped(f"/mitigations/{i}/riskReduction", "kept in the mitigation text only")

    # Data assets.
    assets: dict[str, rdflib.URIRef] = {}
    for i, a in enumerate(items(b, doc, [], "assets")):
        path: list[str | int] = ["assets", i]
        try:
            aid = require(b, a, path, "id")
            aname = require(b, a, path, "name")
            adesc = optional(b, a, path, "description", str)
        except InputError as err:
            b.skip(err)
            continue
        node = b.iri("asset", aid)
        assets[aid] = node
        b.typed(node, TG.DataAsset, aname, aid, at=path)
        b.lit(node, DCT.description, adesc)
        risk = optional(b, a, path, "risk", Mapping)
        if risk is None:
            b.deviation([*path, "risk"], "asset without the required 'risk': imported without a classification")
        else:
            if isinstance(risk.get("confidentiality"), (int, float)):
                b.add(node, TG.classification, rdflib.URIRef(classification_from_cia(risk)))
            b.unmapped_keys(risk, [*path, "risk"], ("confidentiality",),
                            "integrity/availability ratings and risk comments have no data-asset property")
        attrs = a.get("attributes")
        if isinstance(attrs, Mapping) and attrs.get("personal") is True:
            b.g.set((node, rdflib.URIRef(TG.classification), rdflib.URIRef(TG.Personal)))
        b.unmapped_keys(a, path, ("id", "name", "description", "risk", "attributes"), "asset field with no home")

    # Trust zones.
    zones: dict[str, rdflib.URIRef] = {}
    zone_parent: dict[str, str] = {}
    for i, z in enumerate(items(b, doc, [], zkey)):
        path = [zkey, i]
        try:
            zid = require(b, z, path, "id")
            zname = require(b, z, path, "name")
            zdesc = optional(b, z, path, "description", str)
        except InputError as err:
            b.skip(err)
            continue
        node = b.iri("zone", zid)
        zones[zid] = node
        b.typed(node, TG.TrustZone, zname, zid, at=path)
        b.lit(node, DCT.description, zdesc)
        zrisk = optional(b, z, path, "risk", Mapping)
        if zrisk is None:
            b.deviation([*path, "risk"], "trust zone without the required 'risk': imported without a trust level")
        rating = (zrisk or {}).get("trustRating")
        if isinstance(rating, (int, float)) and not isinstance(rating, bool):
            b.lit(node, TG.trustLevel, round(rating))
        parent = z.get("parent")
        if isinstance(parent, Mapping) and isinstance(parent.get("trustZone"), str):
            zone_parent[zid] = parent["trustZone"]
            b.unmapped(f"/{zkey}/{i}/parent", "nested trust zones are flattened (no zone nesting property)")
        b.unmapped_keys(z, path, ("id", "name", "description", "risk", "parent", "attributes"),
                        "trust-zone field with no home")
        map_attributes(b, node, z.get("attributes"), [*path, "attributes"])

    # Components.
    comps: dict[str, rdflib.URIRef] = {}
    kinds: dict[str, str] = {}
    parents: dict[str, Mapping[str, Any]] = {}
    raw = items(b, doc, [], "components")
    usable: list[tuple[int, Mapping[str, Any], str, str, str, str | None]] = []
    for i, c in enumerate(raw):
        path = ["components", i]
        try:
            cid = require(b, c, path, "id")
            if cid in comps:
                raise b.fail([*path, "id"], f"duplicate component id {cid!r}; the first one is kept")
            ctype = require(b, c, path, "type")
            cname = require(b, c, path, "name")
            cdesc = optional(b, c, path, "description", str)
        except InputError as err:
            b.skip(err)
            continue
        comps[cid] = b.iri("component", cid)
        usable.append((i, c, cid, ctype, cname, cdesc))
    if not comps and (raw or doc.get("dataflows")):
        raise InputError(f"{name}: {FORMAT}: /components: no usable component"
                         + (f" ({'; '.join(b.warnings[-3:])})" if b.warnings else ""),
                         hint="every component needs an id, a name and a type")
    tls: set[rdflib.URIRef] = set()
    for i, c, cid, ctype, cname, cdesc in usable:
        path = ["components", i]
        node = comps[cid]
        kind, _, matched = component_kind(ctype)
        kinds[cid] = kind
        b.typed(node, TG[kind], cname, cid, at=path)
        # ML class: a tgml: word, else the user's phrases, else the type table, else the shipped phrases
        tags = [str(x) for x in c.get("tags") or [] if isinstance(x, (str, int, float))] \
            if isinstance(c.get("tags"), list) else []
        signals = [("type", ctype), *(("tag", x) for x in tags), ("name", cname), ("description", cdesc)]
        tokens = ("type", "tag")
        b.ml_class(node, kind, signals, pointer(path), tokens=tokens,
                   choice=b.ml.classify(signals, kind, tokens=tokens, user_only=True, explicit=False)
                   or _type_choice(b.ml, ctype, kind))
        if not matched:
            b.unmapped(f"/components/{i}/type", f"component type {ctype!r} is not in the type table; imported as a process")
        b.lit(node, DCT.description, cdesc)
        b.add(node, TG.partOf, system)
        try:
            parent = _parent(b, c, path, zones, comps)
            if isinstance(parent.get("component"), str) and parent["component"] not in comps:
                raise b.fail([*path, "parent", "component"], f"no component with id {parent['component']!r}")
            if isinstance(parent.get("trustZone"), str) and parent["trustZone"] not in zones:
                raise b.fail([*path, "parent", "trustZone"], f"no trust zone with id {parent['trustZone']!r}")
        except InputError as err:
            b.warnings.append(f"{err.message} (the component is imported in no trust zone)")
            parent = {}
        parents[cid] = parent
        if isinstance(parent.get("component"), str):
            b.unmapped(f"/components/{i}/parent/component", "component nesting is flattened (the zone is inherited)")
        ca = c.get("assets")
        if isinstance(ca, Mapping):
            for key, prop, need in (("processed", TG.processes, "Process"), ("stored", TG.holds, "DataStore")):
                for j, aid in enumerate(ca.get(key) or []):
                    if aid is None:
                        continue
                    if aid not in assets:
                        b.skip(b.fail([*path, "assets", key, j], f"no asset with id {aid!r}"))
                        continue
                    if kind == need:
                        b.add(node, prop, assets[aid])
                    else:
                        b.unmapped(f"/components/{i}/assets/{key}", f"only a {need.lower()} can have assets {key}")
        _threats(b, c, path, node, threat_defs, mitigation_defs)
        map_attributes(b, node, c.get("attributes"), [*path, "attributes"])
        if "properties" in c:
            # StartLeft's conversion of a Threat Modeling Tool model keeps the stencil's TMT properties here
            # ("Out Of Scope", "Sanitizes Input", "Azure Postgres DB TLS Enforced", ...): read as in a .tm7
            tmt_properties(b, node, kind, c["properties"], "/components/*/properties", cid, tls=tls)
        b.unmapped_keys(c, path, ("id", "name", "type", "description", "parent", "assets", "threats", "attributes",
                                  "properties"), "component field with no home (tags, representations)")
    for cid, node in comps.items():
        zid = _zone_of(cid, parents, set())
        if zid is not None:
            b.add(node, TG.inZone, zones[zid])

    # Data flows.
    for i, f in enumerate(items(b, doc, [], "dataflows")):
        path = ["dataflows", i]
        try:
            fid = require(b, f, path, "id")
            label = require(b, f, path, "name")
        except InputError as err:
            b.skip(err)
            continue
        ends = []
        for key, draft in (("source", "from"), ("destination", "to")):
            if key not in f and isinstance(f.get(draft), str):
                b.deviation([*path, draft], f"'{draft}' read as '{key}' (the key of early OTM drafts)")
                key = draft
            ref = f.get(key)
            if isinstance(ref, str) and ref in comps:
                ends.append(comps[ref])
                continue
            role = "source" if key in ("source", "from") else "target"
            what = f"names no component ({ref!r})" if isinstance(ref, str) else "is missing"
            ends.append(b.placeholder(b.iri("flow", fid, role), role, label, system, [*path, key], what))
        pairs = [(fid, ends[0], ends[1], label)]
        if f.get("bidirectional") is True:
            pairs.append((fid + "#reverse", ends[1], ends[0], f"{label} (reverse)"))
        for k, (ident, src, tgt, lab) in enumerate(pairs):
            node = b.iri("flow", ident)
            b.typed(node, TG.DataFlow, lab, fid, at=[*path, "#reverse"] if k else path)
            b.add(node, TG.source, src)
            b.add(node, TG.target, tgt)
            b.add(node, TG.partOf, system)
            b.lit(node, DCT.description, optional(b, f, path, "description", str))
            for j, aid in enumerate(f.get("assets") or []):
                if aid is None:
                    continue
                if aid not in assets:
                    b.skip(b.fail([*path, "assets", j], f"no asset with id {aid!r}"))
                    continue
                b.add(node, TG.carries, assets[aid])
            map_attributes(b, node, f.get("attributes"), [*path, "attributes"])
            if "properties" in f:
                tmt_properties(b, node, "DataFlow", f["properties"], "/dataflows/*/properties", ident, target=tgt)
            if src in tls or tgt in tls:
                # a service that refuses plaintext connections (TMT "... TLS Enforced: True"): its flows are
                # encrypted and integrity-protected unless they state otherwise
                for attr in (TG.encryptedInTransit, TG.integrityProtected):
                    if (node, rdflib.URIRef(attr), None) not in b.g:
                        b.g.add((node, rdflib.URIRef(attr), rdflib.Literal(True)))
            if k == 0:
                _threats(b, f, path, node, threat_defs, mitigation_defs)
        b.unmapped_keys(f, path, ("id", "name", "description", "bidirectional", "source", "destination", "from", "to",
                                  "assets", "threats", "attributes", "properties"), "dataflow field with no home (tags)")
    b.g.bind("tgml", TGMLN)
    return b.result()


def _parent(b: Builder, c: Mapping[str, Any], path: list[str | int], zones: Mapping[str, Any],
            comps: Mapping[str, Any]) -> Mapping[str, Any]:
    """A component's ``parent`` object; early drafts' plain id string is read when it names one zone or component."""
    parent = c.get("parent")
    if parent is None:
        b.deviation([*path, "parent"], "component without the required 'parent': imported in no trust zone")
        return {}
    if isinstance(parent, str):
        if parent in zones and parent not in comps:
            b.deviation([*path, "parent"], "a plain id string read as {'trustZone': id} (early OTM drafts)")
            return {"trustZone": parent}
        if parent in comps and parent not in zones:
            b.deviation([*path, "parent"], "a plain id string read as {'component': id} (early OTM drafts)")
            return {"component": parent}
        raise b.fail([*path, "parent"], f"parent {parent!r} names no trust zone or component (or both)",
                     hint="write parent: {trustZone: ID} or parent: {component: ID}")
    if not isinstance(parent, Mapping):
        raise b.fail([*path, "parent"], f"expected an object, found {type(parent).__name__}")
    return parent


def _zone_of(cid: str, parents: Mapping[str, Mapping[str, Any]], seen: set[str]) -> str | None:
    if cid in seen:
        return None
    seen.add(cid)
    p = parents.get(cid) or {}
    if isinstance(p.get("trustZone"), str):
        return str(p["trustZone"])
    if isinstance(p.get("component"), str):
        return _zone_of(p["component"], parents, seen)
    return None


def _threats(
    b: Builder,
    owner: Mapping[str, Any],
    path: list[str | int],
    node: rdflib.URIRef,
    threat_defs: Mapping[str, Mapping[str, Any]],
    mitigation_defs: Mapping[str, Mapping[str, Any]],
) -> None:
    for j, inst in enumerate(items(b, owner, path, "threats")):
        tpath = [*path, "threats", j]
        try:
            tid = require(b, inst, tpath, "threat")
            state = require(b, inst, tpath, "state")
            d = threat_defs.get(tid)
            if d is None:
                raise b.fail([*tpath, "threat"], f"no threat with id {tid!r} in /threats")
        except InputError as err:
            b.skip(err)
            continue
        cats = [category_iri(c) for c in d.get("categories") or [] if isinstance(c, str)]
        cats_known = [c for c in cats if c]
        mit_texts = []
        for k, m in enumerate(inst.get("mitigations") or []):
            if not isinstance(m, Mapping):
                continue
            mid = m.get("mitigation")
            md = mitigation_defs.get(mid) if isinstance(mid, str) else None
            if isinstance(mid, str) and md is None:
                b.skip(b.fail([*tpath, "mitigations", k, "mitigation"], f"no mitigation with id {mid!r} in /mitigations"))
                continue
            mname = str(md["name"]) if md else str(mid)
            mstate = m.get("state") or ""
            extra = f", risk reduction {md['riskReduction']}" if md and md.get("riskReduction") is not None else ""
            mit_texts.append(f"{mname} ({mstate}{extra})" if mstate else mname)
            if md and str(mstate).upper() == "IMPLEMENTED":
                ctrl = rdflib.URIRef(f"{node}:control:{slug(str(mid))}")
                b.typed(ctrl, TG.Control, mname, str(mid))
                b.lit(ctrl, DCT.description, md.get("description") if isinstance(md.get("description"), str) else None)
                b.add(node, TG.hasControl, ctrl)
                for cat in cats_known:
                    b.add(ctrl, TG.coversCategory, rdflib.URIRef(cat))
        risk_raw = d.get("risk")
        risk: Mapping[str, Any] = risk_raw if isinstance(risk_raw, Mapping) else {}
        sev = _severity(risk)
        threat = rdflib.URIRef(f"{node}:threat:{slug(tid)}")
        declared_threat(
            b, node, threat,
            title=str(d.get("name")),
            description=d.get("description") if isinstance(d.get("description"), str) else None,
            category=cats_known[0] if cats_known else None,
            severity=sev,
            status=state,
            mitigation="; ".join(mit_texts) or None,
            ident=tid,
        )
        for extra_cat in cats_known[1:]:
            b.add(threat, TG.category, rdflib.URIRef(extra_cat))
        if len(cats_known) < len(cats):
            b.unmapped("/threats/*/categories", "threat category that is not a STRIDE or LINDDUN category")


def _severity(risk: Mapping[str, Any]) -> str | None:
    """Severity from OTM likelihood × impact (0–100 each): ≥ 64% high, ≥ 36% medium, else low."""
    lik, imp = risk.get("likelihood"), risk.get("impact")
    if not isinstance(imp, (int, float)):
        return None
    score = (float(lik) if isinstance(lik, (int, float)) else 100.0) * float(imp) / 10000.0
    if score >= 0.64:
        return TG.High
    if score >= 0.36:
        return TG.Medium
    return TG.Low
