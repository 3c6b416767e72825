"""What the Microsoft Threat Modeling Tool's SDL template would generate on a model, in threatgraph's vocabulary.

The default template (``sdl-core-4.1.0.11.threat-types.json`` in the shared formats: 47 threat types, each
with ``include``/``exclude`` generation filters such as ``source is 'GE.P' and (flow crosses 'GE.TB.L' or
flow crosses 'GE.TB.B')``) is evaluated on every data flow of an analysed threatgraph model, so the
threats TMT would have put on the model's flows can be compared with threatgraph's findings on any model,
whatever format it came from (``bench/fidelity.py``, figure ``recall_sdl``).

The filter words are read in threatgraph's vocabulary, the way the importer maps a ``.tm7`` file:

* ``GE.P`` / ``GE.EI`` / ``GE.DS``: tg:Process / tg:ExternalEntity / tg:DataStore (with their subclasses);
  a standard type ``SE.…`` matches the template type the importer kept in ``dct:type`` (``"Web API
  (SE.P.TMCore.WebAPI)"``), so it only matches elements imported from ``.tm7`` files, except the web server
  and web application types, which any element stating tg:webApplication true matches;
* ``flow crosses 'GE.TB.L'`` / ``'GE.TB.B'``: tg:crossesBoundary true (asserted, or derived from different
  zones); a crossing of a specific boundary type (``SE.TB.L.TMCore.Machine``) is not known: false;
* properties: ``authenticatesSource``, ``authenticatesItself`` → tg:authenticated; ``authenticatesDestination`` →
  tg:destinationAuthenticated; ``providesConfidentiality`` → tg:encryptedInTransit; ``providesIntegrity`` →
  tg:integrityProtected, else tg:encryptedInTransit; ``storesLogData`` → tg:holdsLogs; ``storesCredentials`` →
  tg:storesCredentials; ``hasInputSanitizers`` → tg:inputValidated; ``hasOutputSanitizers`` →
  tg:outputEncoded; the forgery-protection attribute of flows (``54851a3b-…``) → tg:csrfProtected; ``codeType`` →
  tg:memoryUnsafe (true ``'Unmanaged'``, false ``'Managed'``). True
  reads ``'Yes'``, false ``'No'`` (``'None'`` for forgery protection), absent ``'Not Selected'``. Other
  properties (own protocol or authentication scheme, XML/JSON payload) have no threatgraph
  attribute and always read ``'Not Selected'``;
* flows the model declares out of scope (tg:outOfScope true) get no threat: threatgraph raises no finding
  on them either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TG = "https://w3id.org/threatgraph/ontology#"
GENERIC = {TG + "Process": "GE.P", TG + "ExternalEntity": "GE.EI", TG + "DataStore": "GE.DS"}
PROPS: dict[str, str | tuple[str, ...]] = {
    "authenticatesSource": "authenticated", "authenticatesItself": "authenticated",
    "authenticatesDestination": "destinationAuthenticated",
    "providesConfidentiality": "encryptedInTransit",
    # stated integrity protection, else transport encryption (TLS, IPsec: both give integrity)
    "providesIntegrity": ("integrityProtected", "encryptedInTransit"),
    "storesLogData": "holdsLogs", "storesCredentials": "storesCredentials",
    "hasInputSanitizers": "inputValidated", "hasOutputSanitizers": "outputEncoded",
    "54851a3b-65da-4902-b4e0-94ef015be735": "csrfProtected",
    "codeType": "memoryUnsafe",
}
CATEGORY = {"S": "Spoofing", "T": "Tampering", "R": "Repudiation", "I": "InformationDisclosure",
            "D": "DenialOfService", "E": "ElevationOfPrivilege"}


@dataclass
class End:
    """One end of a flow, or the flow itself: its TMT types and its boolean attributes."""

    types: set[str] = field(default_factory=set)
    attrs: dict[str, bool] = field(default_factory=dict)

    def prop(self, name: str) -> str:
        cands = PROPS.get(name)
        attr = next((a for a in ((cands,) if isinstance(cands, str) else cands or ()) if a in self.attrs), None)
        if attr is None:
            return "Not Selected"
        if attr == "csrfProtected":
            return "Yes" if self.attrs[attr] else "None"
        if attr == "memoryUnsafe":
            return "Unmanaged" if self.attrs[attr] else "Managed"
        return "Yes" if self.attrs[attr] else "No"


@dataclass
class Flow:
    iri: str
    source: End
    target: End
    flow: End
    crosses: bool


_TOKEN = re.compile(r"\s*(?:(\()|(\))|'([^']*)'|([A-Za-z0-9_.\-]+))")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot read TMT filter at {text[pos:pos + 30]!r}")
        out.append("(" if m.group(1) else ")" if m.group(2) else "'" + m.group(3) if m.group(3) is not None
                   else m.group(4))
        pos = m.end()
    return out


Pred = Callable[[Flow], bool]


def _or(a: Pred, b: Pred) -> Pred:
    return lambda f: a(f) or b(f)


def _and(a: Pred, b: Pred) -> Pred:
    return lambda f: a(f) and b(f)


def parse(text: str) -> Pred:
    """A TMT generation filter as a predicate on a flow; an empty filter is never true.

    >>> f = Flow("f", End({"GE.P"}), End({"GE.DS"}), End({"GE.DF"}), True)
    >>> parse("source is 'GE.P' and (target is 'GE.P' or target is 'GE.DS') and flow crosses 'GE.TB.B'")(f)
    True
    >>> parse("not target is 'GE.DS'")(f), parse("")(f)
    (False, False)
    """
    toks = _tokens(text)
    if not toks:
        return lambda _f: False
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise ValueError(f"TMT filter {text!r} ends too early")
        pos += 1
        return toks[pos - 1]

    def expr() -> Pred:
        left = conj()
        while peek() == "or":
            take()
            left = _or(left, conj())
        return left

    def conj() -> Pred:
        left = unary()
        while peek() == "and":
            take()
            left = _and(left, unary())
        return left

    def unary() -> Pred:
        if peek() == "not":
            take()
            inner = unary()
            return lambda f: not inner(f)
        if peek() == "(":
            take()
            inner = expr()
            if peek() != ")":
                raise ValueError(f"unbalanced parenthesis in TMT filter {text!r}")
            take()
            return inner
        return atom()

    def atom() -> Pred:
        subject, verb, value = take(), take(), take()
        if not value.startswith("'"):
            raise ValueError(f"expected a quoted value in TMT filter {text!r}")
        value = value[1:]
        role, _, prop = subject.partition(".")
        if role not in ("source", "target", "flow"):
            raise ValueError(f"unknown subject {subject!r} in TMT filter {text!r}")

        def end(f: Flow) -> End:
            return f.source if role == "source" else f.target if role == "target" else f.flow

        if verb == "crosses":
            return lambda f: f.crosses and value in ("GE.TB.L", "GE.TB.B")
        if verb != "is":
            raise ValueError(f"unknown verb {verb!r} in TMT filter {text!r}")
        if prop:
            return lambda f: end(f).prop(prop) == value
        return lambda f: value in end(f).types

    pred = expr()
    if pos != len(toks):
        raise ValueError(f"unexpected {toks[pos]!r} in TMT filter {text!r}")
    return pred


@dataclass
class ThreatType:
    id: str
    category: str
    include: Pred
    exclude: Pred


def load_threat_types(path: Path) -> list[ThreatType]:
    """The template's threat types with a STRIDE category (placeholders ``source is 'ROOT'`` never match)."""
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for t in doc["threat_types"]:
        cat = CATEGORY.get(str(t.get("category")))
        if cat is None:
            continue
        gf = t.get("generation_filters") or {}
        out.append(ThreatType(str(t["id"]), cat, parse(str(gf.get("include") or "")),
                              parse(str(gf.get("exclude") or ""))))
    return out


_FLOWS = """SELECT ?f ?s ?t ?x WHERE { ?f a tg:DataFlow ; tg:source ?s ; tg:target ?t .
  FILTER NOT EXISTS { ?f tg:outOfScope true }
  OPTIONAL { ?f tg:crossesBoundary true . BIND(1 AS ?x) } }"""
_TYPES = "SELECT ?e ?c WHERE { ?e a ?c . FILTER(?c IN (tg:Process, tg:ExternalEntity, tg:DataStore)) }"
_WEB = "SELECT ?e WHERE { ?e tg:webApplication true }"
_STD = "SELECT ?e ?d WHERE { ?e <http://purl.org/dc/terms/type> ?d }"
_ATTRS = """SELECT ?e ?p ?v WHERE { ?e ?p ?v . FILTER(?p IN (tg:authenticated, tg:encryptedInTransit,
  tg:holdsLogs, tg:storesCredentials, tg:inputValidated, tg:outputEncoded, tg:csrfProtected, tg:integrityProtected,
  tg:destinationAuthenticated, tg:memoryUnsafe)) }"""


def flows(select: Callable[[str], Iterator[dict[str, Any]]]) -> list[Flow]:
    """The flows of an analysed model (``select`` runs a SPARQL SELECT on its store, rows of term→value)."""
    ends: dict[str, End] = {}

    def end(iri: str) -> End:
        return ends.setdefault(iri, End())

    for r in select(_TYPES):
        end(str(r["e"])).types.add(GENERIC[str(r["c"])])
    for r in select(_WEB):
        # the importers' reading of TMT's web server / web application stencils (and of Threat Dragon's
        # isWebApplication, Threagile's web technologies): T13.1/T13.2 test these types
        end(str(r["e"])).types.update({"SE.P.TMCore.WebServer", "SE.P.TMCore.WebApp"})
    for r in select(_STD):
        m = re.search(r"\((SE\.[^)]+)\)\s*$", str(r["d"]))
        if m:
            end(str(r["e"])).types.add(m.group(1))
    for r in select(_ATTRS):
        end(str(r["e"])).attrs[str(r["p"])[len(TG):]] = str(r["v"]).lower() in ("true", "1")
    out = []
    for r in select(_FLOWS):
        f = str(r["f"])
        fl = end(f)
        fl.types.add("GE.DF")
        out.append(Flow(f, end(str(r["s"])), end(str(r["t"])), fl, r.get("x") is not None))
    return out


def generated(types: list[ThreatType], model_flows: list[Flow]) -> dict[tuple[str, str], set[str]]:
    """(flow IRI, STRIDE name) → the ids of the threat types TMT would generate there."""
    out: dict[tuple[str, str], set[str]] = {}
    for f in model_flows:
        for t in types:
            if t.include(f) and not t.exclude(f):
                out.setdefault((f.iri, t.category), set()).add(t.id)
    return out
