"""OWASP pytm's JSON (what ``tm.py --json FILE`` writes) → threatgraph system model.

Only the JSON is read: a pytm Python model is never executed. ``boundaries`` → tg:TrustZone,
``elements`` by ``__class__`` (Actor / ExternalEntity → tg:ExternalEntity, Datastore → tg:DataStore,
the other assets → tg:Process; Agent → tgml:LLMAgent, LLM → tgml:LLMProvider when third-party, else
tgml:LLMAgent with agent capabilities, tgml:LLMApplication with a system prompt or RAG, else
tgml:LLMInferenceEndpoint), ``flows`` → tg:DataFlow (``source`` → ``sink``), ``data`` → tg:DataAsset,
element and flow ``controls`` → our attributes where one exists, else a tg:Control for each control that
is true, and the ``findings`` pytm resolved → tg:DeclaredThreat (threat id, severity, response, CAPEC /
CWE references).

pytm's own semantics are kept where its threat library depends on them: a flow whose ends lie in different
boundaries, one of them possibly in none, gets tg:crossesBoundary true (pytm's ``Element.crosses``); a
``Server`` is tg:webApplication (pytm resolves its web threats, XSS, SSI, HTTP smuggling, on Servers);
``usesXMLParser`` → tg:acceptsFormat "xml", a flow's ``tlsVersion`` other than NONE → tg:encryptedInTransit,
and a data item's ``format`` → tg:acceptsFormat of the sink of each flow carrying it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import rdflib

from threatgraph.errors import InputError
from threatgraph.interchange.common import (
    Builder,
    ImportResult,
    add_system,
    declared_threat,
    pointer,
    severity_iri,
)
from threatgraph.interchange.mlclasses import MLClasses
from threatgraph.terms import CAPEC, DCT, TG, TGML

FORMAT = "pytm"

_KINDS = {"Actor": "ExternalEntity", "ExternalEntity": "ExternalEntity", "Datastore": "DataStore",
          "Server": "Process", "Process": "Process", "SetOfProcesses": "Process", "Lambda": "Process",
          "Asset": "Process", "Agent": "Process", "LLM": "Process"}
_CONTROL_ATTRS: dict[str, str] = {
    # pytm control (true or false) → attribute; several controls feeding one attribute are or-ed
    "authenticatesSource": TG.authenticated,
    "implementsAuthenticationScheme": TG.authenticated,
    "hasAccessControl": TG.authorizationEnforced,
    "authorizesSource": TG.authorizationEnforced,
    "sanitizesInput": TG.inputValidated,
    "validatesInput": TG.inputValidated,
    "usesCodeSigning": TG.artifactsSigned,
    "encodesOutput": TG.outputEncoded,
    "implementsCSRFToken": TG.csrfProtected,
    "handlesResourceConsumption": TG.rateLimited,
}
_FLOW_ONLY = {"isEncrypted": TG.encryptedInTransit, "providesConfidentiality": TG.encryptedInTransit,
              "usesVPN": TG.encryptedInTransit}
_STORE_ONLY = {"isEncryptedAtRest": TG.encryptedAtRest, "isEncrypted": TG.encryptedAtRest}
_CLASSIFICATION = {"PUBLIC": TG.Public, "RESTRICTED": TG.Internal, "SENSITIVE": TG.Confidential,
                   "SECRET": TG.Confidential, "TOP_SECRET": TG.Confidential}
_SEVERITY = {"very high": TG.Critical, "very low": TG.Info}
_CAPEC_URL = re.compile(r"capec\.mitre\.org/data/definitions/(\d+)\.html")
_CWE_URL = re.compile(r"cwe\.mitre\.org/data/definitions/(\d+)\.html")
_ELEMENT_MAPPED = ("__class__", "name", "description", "inBoundary", "controls", "findings", "storesLogData",
                   "storesPII", "isThirdParty", "inputs", "outputs", "data", "inScope", "usesXMLParser",
                   "hasAgentCapabilities", "hasSystemPrompt", "hasRAG", "processesUntrustedInput")


def sniff(doc: Mapping[str, Any]) -> bool:
    """Whether a parsed JSON document is pytm's serialisation of a model.

    >>> sniff({"name": "tm", "elements": [], "flows": [], "boundaries": [], "findings": []})
    True
    >>> sniff({"name": "tm", "elements": []})
    False
    """
    return isinstance(doc.get("elements"), list) and isinstance(doc.get("flows"), list) and (
        "boundaries" in doc or "findings" in doc or "threatsFile" in doc)


def convert(doc: Any, name: str, *, ml: MLClasses | None = None) -> ImportResult:
    """Convert a parsed pytm JSON document (``ml``: the ML phrase table, default the shipped one)."""
    b = Builder(FORMAT, name, "pytm", ml=ml)
    if not isinstance(doc, Mapping):
        raise b.fail([], "a pytm model is a JSON object")
    title = doc.get("name") if isinstance(doc.get("name"), str) and doc["name"].strip() else None
    if title is None:
        b.deviation(["name"], "no model name; named 'pytm model'")
    b = Builder(FORMAT, name, title or "pytm-model", ml=ml)
    desc = doc.get("description") if isinstance(doc.get("description"), str) else None
    system = add_system(b, title or "pytm model", desc, title or "pytm-model")
    m = _Model(b, system)
    m.boundaries(doc)
    m.elements(doc)
    m.data(doc)
    m.flows(doc)
    if not m.nodes:
        raise InputError(f"{name}: {FORMAT}: /elements: no usable element"
                         + (f" ({'; '.join(b.warnings[-3:])})" if b.warnings else ""),
                         hint="write the JSON with pytm: python3 tm.py --json FILE")
    m.findings(doc)
    for key in ("assumptions", "excluded_findings", "threatsExcluded"):
        if doc.get(key):
            b.unmapped(f"/{key}", "pytm assumptions and exclusions (no home)")
    return b.result()


class _Model:
    def __init__(self, b: Builder, system: rdflib.URIRef) -> None:
        self.b = b
        self.system = system
        self.zones: dict[str, rdflib.URIRef] = {}
        self.nodes: dict[str, rdflib.URIRef] = {}  # element name → node
        self.kinds: dict[str, str] = {}
        self.boundary_of: dict[str, str | None] = {}  # element name → the boundary it is in (None: in none)
        self.flow_nodes: dict[str, rdflib.URIRef] = {}
        self.data_nodes: dict[str, rdflib.URIRef] = {}
        self.data_formats: dict[str, str] = {}  # data name → its pytm format, lower case (xml, json, ...)

    def _objects(self, doc: Mapping[str, Any], key: str) -> list[tuple[Mapping[str, Any], list[str | int], str]]:
        """The named objects of a top-level list; an entry without a name or a repeated name is skipped."""
        b = self.b
        val = doc.get(key)
        if val is None:
            return []
        if not isinstance(val, list):
            b.skip(b.fail([key], f"expected an array, found {type(val).__name__}"))
            return []
        out: list[tuple[Mapping[str, Any], list[str | int], str]] = []
        seen: set[str] = set()
        for i, o in enumerate(val):
            path: list[str | int] = [key, i]
            if not isinstance(o, Mapping):
                b.skip(b.fail(path, f"expected an object, found {type(o).__name__}"))
                continue
            nm = o.get("name")
            if not isinstance(nm, str) or not nm.strip():
                b.skip(b.fail(path, "missing required field 'name'"))
                continue
            if nm in seen:
                b.skip(b.fail([*path, "name"], f"duplicate name {nm!r}; the first one is kept"))
                continue
            seen.add(nm)
            out.append((o, path, nm))
        return out

    def boundaries(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        for o, _, nm in self._objects(doc, "boundaries"):
            node = b.iri("boundary", nm)
            b.typed(node, TG.TrustZone, nm, nm)
            b.lit(node, DCT.description, o.get("description") if isinstance(o.get("description"), str) else None)
            self.zones[nm] = node
            if o.get("inBoundary"):
                b.unmapped("/boundaries/*/inBoundary", "nested boundaries are flattened (no zone nesting property)")

    def elements(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        listed = self._objects(doc, "elements")
        names = {nm for _, _, nm in listed}
        for extra in ("actors", "assets"):  # pytm lists them again; read any the elements list lacks
            listed += [x for x in self._objects(doc, extra) if x[2] not in names]
            names |= {nm for _, _, nm in listed}
        for o, path, nm in listed:
            cls = str(o["__class__"]) if isinstance(o.get("__class__"), str) else "Asset"
            kind = _KINDS.get(cls)
            if kind is None:
                b.deviation([*path, "__class__"], f"unknown pytm class {cls!r}: read as a process")
                kind = "Process"
            ml: str | None = None
            if cls == "Agent":
                ml = TGML.LLMAgent
            elif cls == "LLM":
                # pytm's LLM is the model with what surrounds it: with agent capabilities it is an agent, with a
                # system prompt or retrieval an LLM application (pytm's LLM01, LLM02, LLM05, LLM07 read these)
                if o.get("isThirdParty") is True:
                    kind, ml = "ExternalEntity", TGML.LLMProvider
                elif o.get("hasAgentCapabilities") is True:
                    ml = TGML.LLMAgent
                elif o.get("hasSystemPrompt") is True or o.get("hasRAG") is True:
                    ml = TGML.LLMApplication
                else:
                    ml = TGML.LLMInferenceEndpoint
            node = b.iri("element", nm)
            self.nodes[nm] = node
            self.kinds[nm] = kind
            b.typed(node, TG[kind], nm, nm)
            b.add(node, TG.partOf, self.system)
            desc = o.get("description") if isinstance(o.get("description"), str) else None
            b.lit(node, DCT.description, desc)
            b.ml_class(node, kind, [("class", cls), ("name", nm), ("description", desc)], pointer(path),
                       tokens=("class",), given=ml)
            zone = o.get("inBoundary")
            self.boundary_of[nm] = None
            if isinstance(zone, str) and zone:
                if zone in self.zones:
                    b.add(node, TG.inZone, self.zones[zone])
                    self.boundary_of[nm] = zone
                else:
                    b.skip(b.fail([*path, "inBoundary"], f"no boundary named {zone!r}"))
            if o.get("processesUntrustedInput") is True:
                b.g.add((node, rdflib.URIRef(TG.receivesUntrustedInput), rdflib.Literal(True)))
            if cls == "Server":
                # pytm's threat library resolves its web threats (XSS, SSI, HTTP smuggling, web fingerprinting,
                # session hijacking) on Server elements: a pytm Server is the web-facing server
                b.g.add((node, rdflib.URIRef(TG.webApplication), rdflib.Literal(True)))
            if o.get("usesXMLParser") is True:
                b.lit(node, TG.acceptsFormat, "xml")
            if kind == "DataStore" and isinstance(o.get("storesLogData"), bool):
                b.g.add((node, rdflib.URIRef(TG.holdsLogs), rdflib.Literal(o["storesLogData"])))
            if kind == "DataStore" and o.get("storesPII") is True:
                asset = b.iri("element", nm, "personal-data")
                b.typed(asset, TG.DataAsset, "Personal data", None)
                b.add(asset, TG.classification, rdflib.URIRef(TG.Personal))
                b.add(node, TG.holds, asset)
            self._controls(node, kind, o, path)
            b.unmapped_keys({k: v for k, v in o.items() if v is not False and v != -1 and v != [0]}, path,
                            _ELEMENT_MAPPED, "element property with no threatgraph attribute (OS, levels, source "
                            "files, classification, TLS version, …)")

    def _controls(self, node: rdflib.URIRef, kind: str, o: Mapping[str, Any], path: list[str | int]) -> None:
        b = self.b
        if isinstance(o.get("inScope"), bool):
            b.g.add((node, rdflib.URIRef(TG.outOfScope), rdflib.Literal(not o["inScope"])))
        controls = o.get("controls")
        if controls is None:
            return
        if not isinstance(controls, Mapping):
            b.skip(b.fail([*path, "controls"], f"expected an object, found {type(controls).__name__}"))
            return
        table = dict(_CONTROL_ATTRS)
        table.update(_FLOW_ONLY if kind == "DataFlow" else _STORE_ONLY if kind == "DataStore" else {})
        values: dict[str, bool] = {}
        for ctl, val in controls.items():
            if not isinstance(val, bool):
                if val not in ("", None):
                    b.unmapped(f"/{path[0]}/*/controls/{ctl}", "control setting with no threatgraph attribute")
                continue
            attr = table.get(ctl)
            if attr is not None:
                values[attr] = values.get(attr, False) or val
            elif val:
                ctrl = rdflib.URIRef(f"{node}:control:{ctl}")
                b.typed(ctrl, TG.Control, ctl, ctl)
                b.add(node, TG.hasControl, ctrl)
        tls = str(o.get("tlsVersion") or "").rsplit(".", 1)[-1]
        if kind == "DataFlow" and tls not in ("", "NONE"):
            # a flow with a TLS (or SSL) version is encrypted in transit, however weak the version (pytm's CR08)
            values[TG.encryptedInTransit] = True
        for attr, val in values.items():
            b.g.add((node, rdflib.URIRef(attr), rdflib.Literal(val)))

    def data(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        for o, path, nm in self._objects(doc, "data"):
            node = b.iri("data", nm)
            self.data_nodes[nm] = node
            if isinstance(o.get("format"), str) and o["format"].strip():
                self.data_formats[nm] = o["format"].strip().lower()
            b.typed(node, TG.DataAsset, nm, nm)
            b.lit(node, DCT.description, o.get("description") if isinstance(o.get("description"), str) else None)
            cls = str(o.get("classification") or "").rsplit(".", 1)[-1]
            if cls in _CLASSIFICATION:
                b.add(node, TG.classification, rdflib.URIRef(_CLASSIFICATION[cls]))
            if o.get("isPII") is True:
                b.add(node, TG.classification, rdflib.URIRef(TG.Personal))
            if o.get("isCredentials") is True:
                b.add(node, TG.classification, rdflib.URIRef(TG.Confidential))
            if isinstance(o.get("isCredentials"), bool):
                b.g.add((node, rdflib.URIRef(TG.credentials), rdflib.Literal(o["isCredentials"])))
            for j, el in enumerate(o.get("processedBy") or []):
                if el not in self.nodes:
                    b.skip(b.fail([*path, "processedBy", j], f"no element named {el!r}"))
                    continue
                prop = TG.holds if self.kinds[el] == "DataStore" else TG.processes
                if self.kinds[el] != "ExternalEntity":
                    b.add(self.nodes[el], prop, node)

    def flows(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        for o, path, nm in self._objects(doc, "flows"):
            ends = []
            for key, role in (("source", "source"), ("sink", "target")):
                ref = o.get(key)
                if isinstance(ref, str) and ref in self.nodes:
                    ends.append(self.nodes[ref])
                else:
                    what = f"names no element ({ref!r})" if isinstance(ref, str) else "is missing"
                    ends.append(b.placeholder(b.iri("flow", nm, role), role, nm, self.system, [*path, key], what))
            node = b.iri("flow", nm)
            self.flow_nodes[nm] = node
            b.typed(node, TG.DataFlow, nm, nm)
            b.add(node, TG.source, ends[0])
            b.add(node, TG.target, ends[1])
            b.add(node, TG.partOf, self.system)
            src, dst = o.get("source"), o.get("sink")
            if (isinstance(src, str) and isinstance(dst, str) and src in self.boundary_of and dst in self.boundary_of
                    and self.boundary_of[src] != self.boundary_of[dst]):
                # pytm's own test (Element.crosses): the ends' boundaries differ, one of them possibly none, so a
                # flow from the Internet boundary to a server drawn outside every boundary crosses a boundary
                b.g.add((node, rdflib.URIRef(TG.crossesBoundary), rdflib.Literal(True)))
            text = " ".join(x for x in (o.get("description"), o.get("note")) if isinstance(x, str) and x.strip())
            b.lit(node, DCT.description, text or None)
            b.lit(node, TG.protocol, o.get("protocol") if isinstance(o.get("protocol"), str) else None)
            data = o.get("data")
            for j, d in enumerate(data if isinstance(data, list) else [data] if isinstance(data, str) else []):
                if d in self.data_nodes:
                    b.add(node, TG.carries, self.data_nodes[d])
                    if d in self.data_formats and isinstance(dst, str) and dst in self.nodes:
                        # pytm's XML / JSON threats read the format of the data a flow carries; the sink parses it
                        b.lit(self.nodes[dst], TG.acceptsFormat, self.data_formats[d])
                else:
                    b.skip(b.fail([*path, "data", j], f"no data named {d!r}"))
            self._controls(node, "DataFlow", o, path)
            b.unmapped_keys({k: v for k, v in o.items() if v is not False and v != -1 and v != [0]}, path,
                            ("name", "source", "sink", "description", "note", "protocol", "data", "controls",
                             "findings", "order", "isResponse", "responseTo", "response", "inScope", "tlsVersion"),
                            "flow property with no threatgraph attribute (ports, TLS version, classification, …)")

    def findings(self, doc: Mapping[str, Any]) -> None:
        b = self.b
        val = doc.get("findings")
        if not isinstance(val, list):
            return
        seen: set[str] = set()
        for i, f in enumerate(val):
            path: list[str | int] = ["findings", i]
            if not isinstance(f, Mapping):
                b.skip(b.fail(path, f"expected an object, found {type(f).__name__}"))
                continue
            target = f.get("target")
            node = self.nodes.get(target) or self.flow_nodes.get(target) if isinstance(target, str) else None
            if node is None:
                b.skip(b.fail([*path, "target"], f"no element or flow named {target!r}"))
                continue
            fid = str(f.get("id") if f.get("id") not in (None, "") else i)
            if fid in seen:
                b.skip(b.fail([*path, "id"], f"duplicate finding id {fid!r}; the first one is kept"))
                continue
            seen.add(fid)
            tid = f.get("threat_id") if isinstance(f.get("threat_id"), str) else None
            sev_word = f.get("severity") if isinstance(f.get("severity"), str) else None
            sev = (_SEVERITY.get(sev_word.lower()) or severity_iri(sev_word)) if sev_word else None
            threat = b.iri("finding", fid)
            declared_threat(
                b, node, threat,
                title=_text(f, "description"),
                description=_text(f, "details"),
                severity=sev,
                status=_text(f, "response"),
                mitigation=_text(f, "mitigations"),
                ident=tid,
            )
            refs = _text(f, "references") or ""
            for num in sorted({int(n) for n in _CAPEC_URL.findall(refs)}):
                b.add(threat, DCT.references, rdflib.URIRef(CAPEC[f"CAPEC-{num}"]))
            for num in sorted({int(n) for n in _CWE_URL.findall(refs)}):
                b.add(threat, DCT.references, rdflib.URIRef(f"https://cwe.mitre.org/data/definitions/{num}.html"))
            for k in ("example", "condition", "likelihood", "cvss", "assumption"):
                if f.get(k):
                    b.unmapped(pointer(["findings", "*", k]), "finding detail with no home")


def _text(o: Mapping[str, Any], key: str) -> str | None:
    v = o.get(key)
    return v if isinstance(v, str) and v.strip() else None
