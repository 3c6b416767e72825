"""Shared helpers of the model importers: IRI minting, located errors, and the list of unmapped fields.

Every importer turns one source document into an rdflib graph of the threatgraph system model and a
list of *unmapped* notes: source fields that have no home in the ontology (layout, colours, owners, …),
grouped by a generic path (``/detail/diagrams/*/cells/*/position``) so the list stays short.

>>> pointer(["detail", "diagrams", 0, "cells", 3])
'/detail/diagrams/0/cells/3'
>>> generic("/detail/diagrams/0/cells/3/position")
'/detail/diagrams/*/cells/*/position'
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import rdflib
from rdflib.namespace import RDF, RDFS

from threatgraph.errors import InputError
from threatgraph.interchange.mlclasses import OVERRIDE_HINT, Choice, MLClasses, default_table
from threatgraph.terms import DCT, LINDDUN, STRIDE, TG, TGML

TGN = rdflib.Namespace(str(TG))
TGMLN = rdflib.Namespace(str(TGML))
DCTN = rdflib.Namespace(str(DCT))

IMPORT_BASE = "urn:threatgraph:import:"
"""Imported elements get IRIs ``urn:threatgraph:import:<format>:<project>:<source id>``: independent of
the file's location, so two versions of one model keep the same IRIs (for ``diff-model``)."""


def pointer(path: Sequence[str | int]) -> str:
    """JSON pointer (RFC 6901) of a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def generic(ptr: str) -> str:
    """A pointer with array indexes replaced by ``*`` (for grouping unmapped fields)."""
    return re.sub(r"/\d+(?=/|$)", "/*", ptr)


def slug(text: str) -> str:
    """An IRI-safe piece for an identifier: percent-encoded, never empty.

    >>> slug("my comp/1 é")
    'my%20comp%2F1%20%C3%A9'
    """
    return quote(text, safe="-._~") or "_"


@dataclass
class ImportResult:
    """A converted model: the RDF graph, the source format, and the fields that had no home."""

    graph: rdflib.Graph
    format: str
    unmapped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Deviations from the format's published schema that were read anyway (best effort, unambiguous)."""
    classed: list[str] = field(default_factory=list)
    """The ML classes chosen from an element's words, each with its element and reason (printed as warnings)."""


class Builder:
    """Accumulates the converted graph and the unmapped notes of one source document."""

    def __init__(self, fmt: str, name: str, project: str, wild: Iterable[str] = (),
                 ml: MLClasses | None = None) -> None:
        self.fmt = fmt
        self.ml = ml if ml is not None else default_table()
        self.classed: list[str] = []
        self.wild = set(wild)
        self.name = name
        self.base = f"{IMPORT_BASE}{fmt}:{slug(project)}:"
        self.g = rdflib.Graph()
        self.g.bind("tg", TGN)
        self.g.bind("tgml", TGMLN)
        self.g.bind("dct", DCTN)
        self._unmapped: dict[str, tuple[int, str]] = {}
        self.warnings: list[str] = []
        self._defined: dict[rdflib.URIRef, str] = {}

    # -- IRIs and triples -------------------------------------------------------------------------
    def iri(self, *parts: str) -> rdflib.URIRef:
        """The IRI of a source object from its identifier parts."""
        return rdflib.URIRef(self.base + ":".join(slug(p) for p in parts))

    def add(self, s: rdflib.term.Node, p: str, o: rdflib.term.Node) -> None:
        self.g.add((s, rdflib.URIRef(p), o))

    def lit(self, s: rdflib.term.Node, p: str, value: str | int | float | bool | None) -> None:
        """Add a literal unless ``value`` is None or an empty string."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return
        self.g.add((s, rdflib.URIRef(p), rdflib.Literal(value)))

    def typed(self, s: rdflib.URIRef, cls: str, label: str | None, ident: str | None = None,
              at: Sequence[str | int] | None = None) -> None:
        """``s a cls`` with its rdfs:label and dct:identifier (the source id).

        ``at`` is the JSON pointer of the source object: a second object with the same id (the same IRI)
        would be merged silently into the first, so it is reported as a warning naming both places.
        """
        if at is not None:
            first = self._defined.setdefault(s, pointer(at))
            if first != pointer(at):
                msg = (f"{self.name}: {self.fmt}: {pointer(at)}: id {ident!r} is already used at {first}; "
                       "the two are merged into one element (give each a distinct id)")
                if msg not in self.warnings:
                    self.warnings.append(msg)
        self.g.add((s, RDF.type, rdflib.URIRef(cls)))
        self.lit(s, str(RDFS.label), label)
        self.lit(s, DCT.identifier, ident)

    # -- unmapped notes ---------------------------------------------------------------------------
    def unmapped(self, ptr: str, why: str) -> None:
        """Note that the field at ``ptr`` has no home in the ontology (grouped by generic path)."""
        parts = ptr.split("/")
        for i in range(1, len(parts)):
            if parts[i - 1] in self.wild:
                parts[i] = "*"
        key = generic("/".join(parts))
        n, _ = self._unmapped.get(key, (0, why))
        self._unmapped[key] = (n + 1, why)

    def unmapped_keys(self, obj: Mapping[str, Any], path: Sequence[str | int], mapped: Iterable[str], why: str) -> None:
        """Note every key of ``obj`` that is present, not empty and not in ``mapped``."""
        known = set(mapped)
        for k, v in obj.items():
            if k in known or v is None or v == [] or v == {} or v == "":
                continue
            self.unmapped(pointer([*path, k]), why)

    def deviation(self, path: Sequence[str | int], why: str) -> None:
        """Note a deviation from the published schema that is read anyway (once per generic path)."""
        msg = f"{self.name}: {self.fmt}: {generic(pointer(path)) or '/'}: {why}"
        if msg not in self.warnings:
            self.warnings.append(msg)

    def skip(self, err: InputError) -> None:
        """Report a part that cannot be read (its located message) and go on without it."""
        msg = f"{err.message} (skipped)"
        if msg not in self.warnings:
            self.warnings.append(msg)

    def placeholder(self, node: rdflib.URIRef, role: str, flow: str, system: rdflib.URIRef,
                    path: Sequence[str | int], what: str) -> rdflib.URIRef:
        """An external element standing for a flow's missing ``role`` end ("unnamed source of FLOW"), reported."""
        label = f"unnamed {role} of {flow}"
        self.typed(node, TG.ExternalEntity, label, None)
        self.add(node, TG.partOf, system)
        msg = f"{self.name}: {self.fmt}: {pointer(path)}: the flow's {role} {what}; attached to a placeholder " \
              f"external element {label!r}"
        if msg not in self.warnings:
            self.warnings.append(msg)
        return node

    def notes(self) -> list[str]:
        """The unmapped notes, one line per generic path."""
        out = []
        for key in sorted(self._unmapped):
            n, why = self._unmapped[key]
            times = f" ({n} values)" if n > 1 else ""
            out.append(f"{self.fmt} {key}{times}: {why}")
        return out

    def result(self) -> ImportResult:
        return ImportResult(self.g, self.fmt, self.notes(), list(self.warnings), list(self.classed))

    # -- ML classes -------------------------------------------------------------------------------
    def ml_class(self, node: rdflib.URIRef, kind: str, fields: Sequence[tuple[str, str | None]], at: str, *,
                 tokens: Collection[str] = (), given: str | None = None,
                 choice: Choice | None = None, default: str | None = None) -> str | None:
        """Give ``node`` (of core ``kind``) its ML class and return it (IRI), or None.

        ``given``: the class the source states (a TMT ML stencil): taken as is. Otherwise an explicit
        ``tgml:ClassName`` in a field, else ``choice`` (an importer's own table), else the phrase table
        over ``fields`` (label, value; ``tokens``: labels of identifier fields), else ``default``: the
        class the source states only generally (Threagile's ``ai`` technology says "AI", the words say
        which: an ``ai`` asset described as a RAG application is an LLM application, one described as
        nothing more is an inference endpoint). A class chosen from words is reported in ``classed``
        with the element's path ``at`` and the reason.
        """
        if given is None:
            found = self.ml.explicit(fields, kind) or choice or self.ml.classify(fields, kind, tokens=tokens,
                                                                                explicit=False)
            if found is None:
                if default is not None:
                    self.g.add((node, RDF.type, rdflib.URIRef(default)))
                return default
            given = found.cls
            if not found.explicit:
                how = f"your {found.rule}; " if found.rule else ""
                msg = (f"{self.name}: {self.fmt}: {at or '/'}: classed tgml:{given.removeprefix(str(TGML))} because "
                       f"{found.reason()} ({how}{OVERRIDE_HINT})")
                if msg not in self.classed:
                    self.classed.append(msg)
        self.g.add((node, RDF.type, rdflib.URIRef(given)))
        return given

    # -- errors -----------------------------------------------------------------------------------
    def fail(self, path: Sequence[str | int], message: str, hint: str | None = None) -> InputError:
        """A located error: ``FILE: FORMAT: /json/pointer: message``."""
        return InputError(f"{self.name}: {self.fmt}: {pointer(path) or '/'}: {message}", hint=hint)


def require(b: Builder, obj: Any, path: Sequence[str | int], key: str, kind: type | tuple[type, ...] = str) -> Any:
    """``obj[key]``, which must exist and be of ``kind``; else a located error."""
    if not isinstance(obj, Mapping):
        raise b.fail(path, f"expected an object, found {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        raise b.fail(path, f"missing required field '{key}'")
    val = obj[key]
    if not isinstance(val, kind) or (isinstance(val, bool) and kind in (int, float, (int, float))):
        raise b.fail([*path, key], f"expected {_kind_name(kind)}, found {type(val).__name__}")
    return val


def optional(b: Builder, obj: Mapping[str, Any], path: Sequence[str | int], key: str, kind: type | tuple[type, ...]) -> Any:
    """``obj[key]`` or None; a located error when present with the wrong type."""
    val = obj.get(key)
    if val is None:
        return None
    if not isinstance(val, kind) or (isinstance(val, bool) and kind in (int, float, (int, float))):
        raise b.fail([*path, key], f"expected {_kind_name(kind)}, found {type(val).__name__}")
    return val


def items(b: Builder, obj: Mapping[str, Any], path: Sequence[str | int], key: str) -> list[Any]:
    """An optional list field (None/missing → empty)."""
    val = obj.get(key)
    if val is None:
        return []
    if not isinstance(val, list):
        raise b.fail([*path, key], f"expected an array, found {type(val).__name__}")
    return val


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "an array", dict: "an object"}
    if isinstance(kind, tuple):
        return " or ".join(sorted({names.get(k, k.__name__) for k in kind}))
    return names.get(kind, kind.__name__)


# ---------------------------------------------------------------------------------------------
# Threat categories named in other tools
# ---------------------------------------------------------------------------------------------
_CATEGORY_WORDS: dict[str, str] = {
    "spoofing": STRIDE.Spoofing,
    "tampering": STRIDE.Tampering,
    "repudiation": STRIDE.Repudiation,
    "informationdisclosure": STRIDE.InformationDisclosure,
    "denialofservice": STRIDE.DenialOfService,
    "elevationofprivilege": STRIDE.ElevationOfPrivilege,
    "elevationofprivileges": STRIDE.ElevationOfPrivilege,  # Microsoft TMT via StartLeft writes the plural
    # the classic STRIDE names (Howard and LeBlanc), which custom TMT templates and teams' own lists use
    "spoofingidentity": STRIDE.Spoofing,
    "spoofingofidentity": STRIDE.Spoofing,
    "identityspoofing": STRIDE.Spoofing,
    "tamperingwithdata": STRIDE.Tampering,
    "datatampering": STRIDE.Tampering,
    "dos": STRIDE.DenialOfService,
    "eop": STRIDE.ElevationOfPrivilege,
    "linking": LINDDUN.Linking,
    "linkability": LINDDUN.Linking,
    "identifying": LINDDUN.Identifying,
    "identifiability": LINDDUN.Identifying,
    "nonrepudiation": LINDDUN.NonRepudiation,
    "detecting": LINDDUN.Detecting,
    "detectability": LINDDUN.Detecting,
    "datadisclosure": LINDDUN.DataDisclosure,
    "disclosureofinformation": LINDDUN.DataDisclosure,
    "unawareness": LINDDUN.UnawarenessUnintervenability,
    "unawarenessunintervenability": LINDDUN.UnawarenessUnintervenability,
    "unintervenability": LINDDUN.UnawarenessUnintervenability,
    "noncompliance": LINDDUN.NonCompliance,
}


def category_iri(word: str, linddun: bool = False) -> str | None:
    """The STRIDE/LINDDUN concept a tool's category word names, or None.

    ``linddun`` resolves the words both methods use ("Non-repudiation") to LINDDUN, and "Information
    disclosure" in a LINDDUN diagram to LINDDUN Data disclosure.

    >>> category_iri("Information disclosure").endswith("stride#InformationDisclosure")
    True
    >>> category_iri("Non-repudiation", linddun=True).endswith("linddun#NonRepudiation")
    True
    >>> category_iri("Elevation of Privileges").endswith("stride#ElevationOfPrivilege")
    True
    >>> category_iri("Confidentiality") is None
    True
    >>> category_iri("Tampering with data").endswith("stride#Tampering")
    True
    >>> category_iri("Denial of service (DoS)").endswith("stride#DenialOfService")
    True
    >>> category_iri("LINDDUN: Non-repudiation").endswith("linddun#NonRepudiation")
    True
    """
    # a trailing explanation or abbreviation in parentheses ("Elevation of privilege (EoP)") is not the name
    key = re.sub(r"[^a-z]", "", re.sub(r"\s*\([^)]*\)\s*$", "", word.lower()) or word.lower())
    for method in ("linddun", "stride"):  # "LINDDUN: Non-repudiation", as threatgraph writes OTM categories
        if key.startswith(method) and len(key) > len(method):
            key, linddun = key[len(method):], method == "linddun"
    if linddun and key == "informationdisclosure":
        return LINDDUN.DataDisclosure
    if not linddun and key == "nonrepudiation":
        return STRIDE.Repudiation
    return _CATEGORY_WORDS.get(key)


SEVERITY_WORDS: dict[str, str] = {
    "critical": TG.Critical,
    "veryhigh": TG.Critical,
    "high": TG.High,
    "elevated": TG.High,
    "medium": TG.Medium,
    "low": TG.Low,
    "info": TG.Info,
    "informational": TG.Info,
}


def severity_iri(word: str) -> str | None:
    """tg:Critical … tg:Info for a tool's severity word, or None."""
    return SEVERITY_WORDS.get(re.sub(r"[^a-z]", "", word.lower()))


def declared_threat(
    b: Builder,
    element: rdflib.URIRef,
    threat: rdflib.URIRef,
    *,
    title: str | None,
    description: str | None = None,
    category: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    mitigation: str | None = None,
    ident: str | None = None,
) -> None:
    """A tg:DeclaredThreat attached to ``element`` with tg:declaredThreat."""
    b.typed(threat, TG.DeclaredThreat, title or ident or "declared threat", ident)
    b.add(element, TG.declaredThreat, threat)
    b.lit(threat, DCT.description, description)
    if category:
        b.add(threat, TG.category, rdflib.URIRef(category))
    if severity:
        b.add(threat, TG.severity, rdflib.URIRef(severity))
    b.lit(threat, TG.threatStatus, status)
    b.lit(threat, TG.mitigationText, mitigation)


# ---------------------------------------------------------------------------------------------
# ML asset classes recognised from words (data/ml-classes.conf; see docs/interchange.md)
# ---------------------------------------------------------------------------------------------
def _kind_of() -> dict[str, str]:
    t = default_table()
    return {p.cls: t.kinds[p.cls] for p in t.phrases if p.cls is not None}


KIND_OF: dict[str, str] = _kind_of()
"""Core kind (tg:ExternalEntity / tg:Process / tg:DataStore) of each ML class the shipped phrases name
(``data/ml-classes.conf``); an explicit ``tgml:ClassName`` in a source is read for these classes."""


def ml_class_from_text(text: str, kind: str) -> str | None:
    """The ML class named in ``text`` for an element of core ``kind`` (local name), by the shipped phrases, or None.

    An explicit ``tgml:ClassName`` wins; otherwise the first phrase of the table whose class is of
    the same core kind. A phrase for another kind (a "vector store" process) is ignored.

    >>> ml_class_from_text("Qdrant vector database for the RAG index", "DataStore")
    'https://w3id.org/threatgraph/ml#VectorStore'
    >>> ml_class_from_text("Writes to the vector store", "Process") is None
    True
    >>> ml_class_from_text("tgml:ModelRegistry (MLflow)", "DataStore")
    'https://w3id.org/threatgraph/ml#ModelRegistry'
    """
    found = default_table().classify([("text", text)], kind)
    return found.cls if found else None


def add_system(b: Builder, title: str, description: str | None, ident: str) -> rdflib.URIRef:
    """The tg:System node of the imported model."""
    system = b.iri("system")
    b.typed(system, TG.System, title, ident)
    b.lit(system, DCT.description, description)
    return system


def bool_attr(b: Builder, s: rdflib.term.Node, prop: str, value: Any) -> None:
    """Set a boolean security attribute when the source states it (True or False)."""
    if isinstance(value, bool):
        b.g.add((s, rdflib.URIRef(prop), rdflib.Literal(value)))


ATTRIBUTE_NAMES: dict[str, str] = {
    name.lower(): TG[name]
    for name in (
        "authenticated", "authorizationEnforced", "encryptedInTransit", "encryptedAtRest", "publiclyExposed",
        "inputValidated", "auditLogged", "artifactsSigned", "provenanceKnown", "untrustedOrigin", "holdsLogs",
        "rateLimited", "humanInTheLoop", "consentObtained", "anonymized", "webApplication", "outputEncoded",
        "storesCredentials", "csrfProtected", "developmentInfrastructure", "containerPlatform", "highValueTarget",
        "trafficIntermediary", "multiTenant", "customDeveloped", "usedByHuman", "containerised", "devOps",
        "webApplicationFirewall", "multiFactorAuthenticated", "vpn", "ipFiltered", "readOnly", "propagatesUserIdentity", "encryptedPerUser",
        "integrityProtected", "destinationAuthenticated", "runsPrivileged", "businessTransactions",
    )
}
"""Our boolean security attributes by lower-case local name (for free-form ``attributes`` maps)."""


def map_attributes(b: Builder, s: rdflib.URIRef, attrs: Any, path: Sequence[str | int]) -> None:
    """Free-form attribute maps: our attribute names (booleans), ``protocol``; the rest is unmapped."""
    if not isinstance(attrs, Mapping):
        return
    for k, v in attrs.items():
        prop = ATTRIBUTE_NAMES.get(str(k).lower().replace("_", "").replace("-", ""))
        if prop and isinstance(v, bool):
            bool_attr(b, s, prop, v)
        elif str(k).lower() == "protocol" and isinstance(v, str):
            b.lit(s, TG.protocol, v)
        elif str(k).lower() in ("tgml", "mlclass") and isinstance(v, str) and v.removeprefix("tgml:") in KIND_OF:
            b.add(s, str(RDF.type), rdflib.URIRef(TGML[v.removeprefix("tgml:")]))
        else:
            b.unmapped(pointer([*path, str(k)]), "free-form attribute with no threatgraph property")
