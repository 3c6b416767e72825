"""OWASP Threat Model Library format ("TM-BOM", schema v1.0.x) → threatgraph system model.

``trust_zones`` → tg:TrustZone, ``trust_boundaries`` → tg:TrustBoundary separating two zones, ``actors``
→ tg:ExternalEntity, ``components`` → tg:Process, ``data_stores`` → tg:DataStore, ``data_sets`` →
tg:DataAsset held by the stores they are placed in (an ML data set — training data, a RAG corpus, … —
becomes a store of the matching tgml: class instead), ``data_flows`` → tg:DataFlow, ``threats`` →
tg:DeclaredThreat with their CAPEC and CWE references, ``controls`` that are active or assumed →
tg:Control on the affected elements (the others are the threats' mitigation text), ``risks`` → the
threats' severity. Each odd part is reported with its JSON pointer and skipped; the rest imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rdflib
from rdflib.namespace import RDF

from threatgraph.errors import InputError
from threatgraph.interchange.common import (
    Builder,
    ImportResult,
    add_system,
    declared_threat,
    items,
    optional,
    pointer,
    require,
)
from threatgraph.interchange.mlclasses import MLClasses
from threatgraph.terms import CAPEC, DCT, TG

FORMAT = "tm-bom"
SCHEMA_MARK = "www-project-threat-model-library"

_KINDS = {"actor": "ExternalEntity", "component": "Process", "data_store": "DataStore"}
_SECTION = {"actor": "actors", "component": "components", "data_store": "data_stores"}
_SENSITIVITY = {
    # data_sensitivity → classifications (pii: personal; phi: health, a special category; the rest confidential
    # or internal)
    "pii": (TG.Personal,), "phi": (TG.SpecialCategoryPersonal,), "cred": (TG.Confidential,),
    "fin": (TG.Confidential,), "pci": (TG.Confidential,), "ip": (TG.Confidential,), "gov": (TG.Confidential,),
    "biz": (TG.Internal,), "op": (TG.Internal,),
}
_LEVEL = {"very_low": TG.Info, "low": TG.Low, "medium": TG.Medium, "high": TG.High, "very_high": TG.Critical,
          "critical": TG.Critical}
_SEV_RANK = {TG.Info: 0, TG.Low: 1, TG.Medium: 2, TG.High: 3, TG.Critical: 4}
_IMPLEMENTED = ("active", "assumed")
_TOP_MAPPED = ("$schema", "scope", "description", "trust_zones", "trust_boundaries", "actors", "components",
               "data_stores", "data_sets", "data_flows", "threats", "controls", "risks")


def sniff(doc: Mapping[str, Any]) -> bool:
    """Whether a parsed JSON document is a TM-BOM model.

    >>> sniff({"$schema": "https://github.com/OWASP/www-project-threat-model-library/blob/v1.0.2/threat-model.schema.json"})
    True
    >>> sniff({"scope": {"title": "x"}, "data_flows": [], "components": []})
    True
    >>> sniff({"scope": {}})
    False
    """
    schema = doc.get("$schema")
    if isinstance(schema, str) and SCHEMA_MARK in schema:
        return True
    return isinstance(doc.get("scope"), Mapping) and "data_flows" in doc and (
        "components" in doc or "actors" in doc or "data_stores" in doc)


def convert(doc: Any, name: str, *, ml: MLClasses | None = None) -> ImportResult:
    """Convert a parsed TM-BOM document (``ml``: the ML phrase table, default the shipped one)."""
    b = Builder(FORMAT, name, "tm-bom", ml=ml)
    if not isinstance(doc, Mapping):
        raise b.fail([], "a TM-BOM threat model is a JSON object")
    scope = doc.get("scope")
    title = scope.get("title") if isinstance(scope, Mapping) else None
    if not isinstance(title, str) or not title.strip():
        b.deviation(["scope", "title"], "no scope title; the model is named 'TM-BOM model'")
        title = None
    b = Builder(FORMAT, name, title or "tm-bom-model", ml=ml)
    desc = doc.get("description") if isinstance(doc.get("description"), str) else None
    if desc is None and isinstance(scope, Mapping) and isinstance(scope.get("description"), str):
        desc = scope["description"]
    system = add_system(b, title or "TM-BOM model", desc, title or "tm-bom-model")
    if isinstance(scope, Mapping):
        b.unmapped_keys(scope, ["scope"], ("title", "description"),
                        "scope rating with no home (business criticality, data sensitivity, exposure, tier)")
    b.unmapped_keys(doc, [], _TOP_MAPPED, "model metadata with no home (version, dates, diagrams, assumptions, "
                    "threat personas, extensions)")
    m = _Model(b, system)
    m.zones(doc)
    for kind in ("actor", "component", "data_store"):
        m.elements(doc, kind)
    m.data_sets(doc)
    m.flows(doc)
    if not m.nodes and not m.flow_count:
        raise InputError(f"{name}: {FORMAT}: /: no usable actor, component, data store or data flow",
                         hint="a TM-BOM model lists its actors, components, data stores and data flows")
    m.threats(doc)
    m.risks(doc)
    m.controls(doc)
    return b.result()


class _Model:
    def __init__(self, b: Builder, system: rdflib.URIRef) -> None:
        self.b = b
        self.system = system
        self.zone_nodes: dict[str, rdflib.URIRef] = {}
        self.nodes: dict[str, rdflib.URIRef] = {}  # symbolic name → element
        self.names: dict[str, str] = {}
        self.zone_of: dict[str, rdflib.URIRef] = {}
        self.flow_count = 0
        self.threat_nodes: dict[str, rdflib.URIRef] = {}
        self.threat_elements: dict[str, list[rdflib.URIRef]] = {}
        self.severity: dict[str, str] = {}
        self.mitigations: dict[str, list[str]] = {}

    def skip(self, err: InputError) -> None:
        msg = f"{err.message} (skipped)"
        if msg not in self.b.warnings:
            self.b.warnings.append(msg)

    def _listed(self, doc: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any], list[str | int]]]:
        """The objects of a top-level array with their paths; a wrong item is reported and skipped."""
        try:
            arr = items(self.b, doc, [], key)
        except InputError as err:
            self.skip(err)
            return []
        out: list[tuple[int, Mapping[str, Any], list[str | int]]] = []
        for i, item in enumerate(arr):
            if isinstance(item, Mapping):
                out.append((i, item, [key, i]))
            else:
                self.skip(self.b.fail([key, i], f"expected an object, found {type(item).__name__}"))
        return out

    def _ident(self, obj: Mapping[str, Any], path: list[str | int], seen: set[str]) -> str:
        sym = require(self.b, obj, path, "symbolic_name")
        if sym in seen:
            raise self.b.fail([*path, "symbolic_name"], f"duplicate symbolic_name {sym!r}; the first one is kept")
        seen.add(sym)
        return str(sym)

    def zone(self, sym: str, path: list[str | int]) -> rdflib.URIRef:
        if sym not in self.zone_nodes:
            node = self.b.iri("zone", sym)
            self.b.typed(node, TG.TrustZone, sym, sym)
            self.zone_nodes[sym] = node
            self.b.deviation(path, f"trust zone {sym!r} is not listed in /trust_zones; created with that name")
        return self.zone_nodes[sym]

    def zones(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        seen: set[str] = set()
        for _, z, path in self._listed(doc, "trust_zones"):
            try:
                sym = self._ident(z, path, seen)
                node = b.iri("zone", sym)
                b.typed(node, TG.TrustZone, optional(b, z, path, "title", str) or sym, sym)
                b.lit(node, DCT.description, optional(b, z, path, "description", str))
                self.zone_nodes[sym] = node
            except InputError as err:
                self.skip(err)
        for i, tb, path in self._listed(doc, "trust_boundaries"):
            try:
                za, zb = require(b, tb, path, "trust_zone_a"), require(b, tb, path, "trust_zone_b")
                node = b.iri("boundary", str(i))
                b.typed(node, TG.TrustBoundary, f"{za} | {zb}", None)
                b.add(node, TG.separates, self.zone(za, [*path, "trust_zone_a"]))
                b.add(node, TG.separates, self.zone(zb, [*path, "trust_zone_b"]))
                b.unmapped_keys(tb, path, ("trust_zone_a", "trust_zone_b"),
                                "boundary access control and authentication methods, token lifetimes (no home)")
            except InputError as err:
                self.skip(err)

    def elements(self, doc: Mapping[str, Any], kind: str) -> None:
        b = self.b
        core = _KINDS[kind]
        seen = set(self.nodes)
        for _, e, path in self._listed(doc, _SECTION[kind]):
            try:
                sym = self._ident(e, path, seen)
                title = optional(b, e, path, "title", str) or sym
                desc = optional(b, e, path, "description", str)
                zsym = optional(b, e, path, "trust_zone", str)
            except InputError as err:
                self.skip(err)
                continue
            node = b.iri(kind, sym)
            self.nodes[sym] = node
            self.names[sym] = title
            b.typed(node, TG[core], title, sym)
            b.add(node, TG.partOf, self.system)
            b.lit(node, DCT.description, desc)
            signals: list[tuple[str, str | None]] = [("name", title), ("description", desc)]
            if kind != "component":  # an actor's type (user, third_party, …); a data store's type, vendor, product
                signals += [(k, e[k]) for k in ("type", "vendor", "product") if isinstance(e.get(k), str)]
            b.ml_class(node, core, signals, pointer(path), tokens=("type", "vendor", "product"))
            if zsym:
                zone = self.zone(zsym, [*path, "trust_zone"])
                b.add(node, TG.inZone, zone)
                self.zone_of[sym] = zone
            if kind == "data_store":
                for k in ("type", "vendor", "product"):
                    if isinstance(e.get(k), str):
                        b.lit(node, DCT.type, " ".join(str(e[x]) for x in ("type", "vendor", "product")
                                                       if isinstance(e.get(x), str)))
                        break
            mapped: tuple[str, ...] = ("symbolic_name", "title", "description", "trust_zone")
            if kind == "data_store":
                mapped = (*mapped, "type", "vendor", "product")
            b.unmapped_keys(e, path, mapped, "element field with no home (actor type and permissions, parent "
                            "component, repository link)")

    def data_sets(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        seen: set[str] = set()
        for _, d, path in self._listed(doc, "data_sets"):
            try:
                sym = self._ident(d, path, seen)
                title = optional(b, d, path, "title", str) or sym
                desc = optional(b, d, path, "description", str)
                sens = items(b, d, path, "data_sensitivity")
                places = items(b, d, path, "placements")
            except InputError as err:
                self.skip(err)
                continue
            stores: list[tuple[rdflib.URIRef, bool | None, str]] = []
            for pi, p in enumerate(places):
                ref = p.get("data_store") if isinstance(p, Mapping) else None
                if not isinstance(ref, str) or ref not in self.nodes:
                    self.skip(b.fail([*path, "placements", pi, "data_store"], f"no data store {ref!r}"))
                    continue
                enc = p.get("encrypted") if isinstance(p.get("encrypted"), bool) else None
                stores.append((self.nodes[ref], enc, ref))
            signals = [("name", title), ("description", desc)]
            ml = b.ml.classify(signals, "DataStore")
            if ml:
                # an ML data set is an asset of its own kind in the ML vocabulary (a store of that class)
                node = b.iri("data_set", sym)
                b.typed(node, TG.DataStore, title, sym)
                b.ml_class(node, "DataStore", signals, pointer(path), choice=ml)
                b.add(node, TG.partOf, self.system)
                b.lit(node, DCT.description, desc)
                if stores and stores[0][2] in self.zone_of:
                    b.add(node, TG.inZone, self.zone_of[stores[0][2]])
                if stores and all(enc is not None for _, enc, _ in stores):
                    b.g.add((node, rdflib.URIRef(TG.encryptedAtRest), rdflib.Literal(all(e for _, e, _ in stores))))
                self.nodes[sym] = node
                self.names[sym] = title
            else:
                node = b.iri("data_set", sym)
                b.typed(node, TG.DataAsset, title, sym)
                b.lit(node, DCT.description, desc)
                for store, enc, _ in stores:
                    b.add(store, TG.holds, node)
                    if enc is False:
                        b.g.set((store, rdflib.URIRef(TG.encryptedAtRest), rdflib.Literal(False)))
                    elif enc is True and (store, rdflib.URIRef(TG.encryptedAtRest), None) not in b.g:
                        b.g.add((store, rdflib.URIRef(TG.encryptedAtRest), rdflib.Literal(True)))
            for s in sens:
                for cls in _SENSITIVITY.get(str(s), ()):
                    if (node, RDF.type, rdflib.URIRef(TG.DataAsset)) in b.g:
                        b.add(node, TG.classification, rdflib.URIRef(cls))
            b.unmapped_keys(d, path, ("symbolic_name", "title", "description", "placements", "data_sensitivity"),
                            "data set field with no home (record count, access control methods)")

    def _end(self, flow: Mapping[str, Any], path: list[str | int], key: str, label: str, fsym: str) -> rdflib.URIRef:
        b = self.b
        end = flow.get(key)
        ref = end.get("object") if isinstance(end, Mapping) else None
        if isinstance(ref, str) and ref in self.nodes:
            return self.nodes[ref]
        role = "source" if key == "source" else "target"
        node = b.iri("flow", fsym, role)
        b.typed(node, TG.ExternalEntity, f"unnamed {role} of {label}", None)
        b.add(node, TG.partOf, self.system)
        what = f"names no actor, component or data store ({ref!r})" if isinstance(ref, str) else "is missing"
        msg = f"{b.name}: {FORMAT}: {pointer([*path, key])}: the flow's {key} {what}; attached to a placeholder " \
              f"external element 'unnamed {role} of {label}'"
        b.warnings.append(msg)
        return node

    def flows(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        seen: set[str] = set()
        for _, f, path in self._listed(doc, "data_flows"):
            try:
                sym = self._ident(f, path, seen)
                label = optional(b, f, path, "title", str) or sym
                desc = optional(b, f, path, "description", str)
                enc = optional(b, f, path, "encrypted", bool)
                sensitive = optional(b, f, path, "has_sensitive_data", bool)
            except InputError as err:
                self.skip(err)
                continue
            src = self._end(f, path, "source", label, sym)
            tgt = self._end(f, path, "destination", label, sym)
            node = b.iri("flow", sym)
            b.typed(node, TG.DataFlow, label, sym)
            b.add(node, TG.source, src)
            b.add(node, TG.target, tgt)
            b.add(node, TG.partOf, self.system)
            b.lit(node, DCT.description, desc)
            if enc is not None:
                b.g.add((node, rdflib.URIRef(TG.encryptedInTransit), rdflib.Literal(enc)))
            if sensitive is True:
                b.unmapped("/data_flows/*/has_sensitive_data", "which data a flow carries is not stated (no "
                           "tg:carries)")
            self.flow_count += 1

    def threats(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        seen: set[str] = set()
        for _, t, path in self._listed(doc, "threats"):
            try:
                sym = self._ident(t, path, seen)
                title = optional(b, t, path, "title", str) or sym
                desc = optional(b, t, path, "description", str)
                affected = items(b, t, path, "components_affected")
            except InputError as err:
                self.skip(err)
                continue
            node = b.iri("threat", sym)
            targets = []
            for ai, a in enumerate(affected):
                if isinstance(a, str) and a in self.nodes:
                    targets.append(self.nodes[a])
                else:
                    self.skip(b.fail([*path, "components_affected", ai], f"no component, actor or data store {a!r}"))
            self.threat_nodes[sym] = node
            self.threat_elements[sym] = targets
            for el in targets:
                declared_threat(b, el, node, title=title, description=desc, ident=sym)
            if not targets:
                b.typed(node, TG.DeclaredThreat, title, sym)
                b.lit(node, DCT.description, desc)
                b.add(node, DCT.isPartOf, self.system)
                b.unmapped("/threats/*/components_affected",
                           "a threat naming no affected element is kept on the model (dct:isPartOf the system)")
            for key, field_ in (("attack_mechanisms", "capec_id"), ("weaknesses", "cwe_id")):
                refs: list[Any] = t[key] if isinstance(t.get(key), list) else []
                for ri, ref in enumerate(refs):
                    num = ref.get(field_) if isinstance(ref, Mapping) else None
                    if not isinstance(num, int) or isinstance(num, bool):
                        self.skip(b.fail([*path, key, ri], f"no integer {field_}"))
                        continue
                    if field_ == "capec_id":
                        b.add(node, DCT.references, rdflib.URIRef(CAPEC[f"CAPEC-{num}"]))
                    else:
                        b.add(node, DCT.references, rdflib.URIRef(f"https://cwe.mitre.org/data/definitions/{num}.html"))
            b.unmapped_keys(t, path, ("symbolic_name", "title", "description", "components_affected",
                                      "attack_mechanisms", "weaknesses"),
                            "threat field with no home (threat persona, event, sources)")

    def risks(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        for _, r, path in self._listed(doc, "risks"):
            level = r.get("level")
            sev = _LEVEL.get(level) if isinstance(level, str) else None
            listed: list[Any] = r["threats"] if isinstance(r.get("threats"), list) else []
            for ti, t in enumerate(listed):
                if t not in self.threat_nodes:
                    self.skip(b.fail([*path, "threats", ti], f"no threat {t!r}"))
                    continue
                old = self.severity.get(t)
                if sev and (old is None or _SEV_RANK[sev] > _SEV_RANK[old]):
                    self.severity[t] = sev  # the highest level of the risks the threat is part of
            b.unmapped_keys(r, path, ("threats", "level"),
                            "risk detail with no home (title, likelihood, impact, score; the level is the threats' "
                            "severity)")
        for t, sev in self.severity.items():
            b.g.set((self.threat_nodes[t], rdflib.URIRef(TG.severity), rdflib.URIRef(sev)))

    def controls(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        seen: set[str] = set()
        for _, c, path in self._listed(doc, "controls"):
            try:
                sym = self._ident(c, path, seen)
                title = optional(b, c, path, "title", str) or sym
                status = optional(b, c, path, "status", str) or "unknown"
                threats = items(b, c, path, "threats")
            except InputError as err:
                self.skip(err)
                continue
            known = []
            for ti, t in enumerate(threats):
                if t in self.threat_nodes:
                    known.append(str(t))
                else:
                    self.skip(b.fail([*path, "threats", ti], f"no threat {t!r}"))
            for t in known:
                self.mitigations.setdefault(t, []).append(f"{title} ({status})")
            if status not in _IMPLEMENTED:
                continue
            node = b.iri("control", sym)
            b.typed(node, TG.Control, title, sym)
            b.lit(node, DCT.description, optional(b, c, path, "description", str))
            elements = {el for t in known for el in self.threat_elements.get(t, [])}
            for el in sorted(elements):
                b.add(el, TG.hasControl, node)
            if not elements:
                b.add(node, DCT.isPartOf, self.system)
            for t in known:
                b.add(node, DCT.relation, self.threat_nodes[t])
        for t, texts in self.mitigations.items():
            b.lit(self.threat_nodes[t], TG.mitigationText, "; ".join(texts))
