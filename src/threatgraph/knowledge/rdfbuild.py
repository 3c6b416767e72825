"""Shared pieces of the importers: the release-graph builder, typed field access, IRIs of kb: terms.

>>> b = GraphBuilder("https://w3id.org/threatgraph/graph/release/x/1", "x.json")
>>> b.add(b.iri("urn:a"), RDFS_LABEL, b.lit("A"))
>>> len(b.quads)
1
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from pyoxigraph import Literal, NamedNode, Quad

from threatgraph import bounded
from threatgraph.errors import ImportFailed
from threatgraph.terms import DCT, KB, RDF, RDFS, SKOS, XSD

RDF_TYPE = NamedNode(RDF.type)
RDFS_LABEL = NamedNode(RDFS.label)
RDFS_SEE_ALSO = NamedNode(RDFS.seeAlso)
DCT_DESCRIPTION = NamedNode(DCT.description)
DCT_MODIFIED = NamedNode(DCT.modified)
DCT_CREATED = NamedNode(DCT.created)
DCT_IDENTIFIER = NamedNode(DCT.identifier)
SKOS_CONCEPT = NamedNode(SKOS.Concept)
SKOS_PREF_LABEL = NamedNode(SKOS.prefLabel)
SKOS_ALT_LABEL = NamedNode(SKOS.altLabel)
SKOS_NOTATION = NamedNode(SKOS.notation)
SKOS_CLOSE_MATCH = NamedNode(SKOS.closeMatch)
XSD_DATETIME = NamedNode(XSD.dateTime)
XSD_DATE = NamedNode(XSD.date)
XSD_ANYURI = NamedNode(XSD.anyURI)
TRUE = Literal(True)
FALSE = Literal(False)


def kb(name: str) -> NamedNode:
    """The ``kb:`` term ``name`` as a NamedNode."""
    return NamedNode(KB[name])


# Classes and properties of the kb: vocabulary used by the importers (declared in ontology/knowledge.ttl).
C_TECHNIQUE = kb("Technique")
C_TACTIC = kb("Tactic")
C_MITIGATION = kb("Mitigation")
C_GROUP = kb("Group")
C_SOFTWARE = kb("Software")
C_CAMPAIGN = kb("Campaign")
C_DATA_SOURCE = kb("DataSource")
C_DATA_COMPONENT = kb("DataComponent")
C_DETECTION_STRATEGY = kb("DetectionStrategy")
C_ANALYTIC = kb("Analytic")
C_ASSET = kb("Asset")
C_MATRIX = kb("Matrix")
C_PLATFORM = kb("Platform")
C_RELATIONSHIP = kb("Relationship")
C_CASE_STUDY = kb("CaseStudy")
C_PROCEDURE_STEP = kb("ProcedureStep")
C_LIFECYCLE_STAGE = kb("LifecycleStage")
C_ATTACK_PATTERN = kb("AttackPattern")

P_ATTACK_ID = kb("attackId")
P_EXTERNAL_ID = kb("externalId")
P_STIX_ID = kb("stixId")
P_VERSION = kb("version")
P_REVOKED = kb("revoked")
P_DEPRECATED = kb("deprecated")
P_REVOKED_BY = kb("revokedBy")
P_IS_SUB = kb("isSubtechnique")
P_SUB_OF = kb("subtechniqueOf")
P_TACTIC = kb("tactic")
P_PLATFORM = kb("platform")
P_MITIGATES = kb("mitigates")
P_USES = kb("uses")
P_DETECTS = kb("detects")
P_ATTRIBUTED_TO = kb("attributedTo")
P_TARGETS = kb("targets")
P_RELATED_TO = kb("relatedTo")
P_REL_SOURCE = kb("relSource")
P_REL_TARGET = kb("relTarget")
P_REL_TYPE = kb("relType")
P_SHORT_NAME = kb("shortName")
P_SOFTWARE_TYPE = kb("softwareType")
P_ANALYTIC = kb("analytic")
P_DATA_COMPONENT = kb("dataComponent")
P_DATA_SOURCE = kb("dataSource")
P_ATTACK_REFERENCE = kb("attackReference")
P_CWE_ID = kb("cweId")
P_STATUS = kb("status")
P_MATURITY = kb("maturity")
P_LIFECYCLE_STAGE = kb("lifecycleStage")
P_CATEGORY = kb("mitigationCategory")
P_PROCEDURE_STEP = kb("procedureStep")
P_STEP_INDEX = kb("stepIndex")
P_TECHNIQUE = kb("technique")
P_CASE_STUDY_TYPE = kb("caseStudyType")
P_ACTOR = kb("actor")
P_TARGET = kb("caseStudyTarget")
P_INCIDENT_DATE = kb("incidentDate")
P_CHILD_OF = kb("childOf")

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """Lower-case, non-alphanumerics folded to ``-``.

    >>> slug("Azure AD / Entra ID")
    'azure-ad-entra-id'
    """
    return _SLUG.sub("-", text.lower()).strip("-")


_DATETIME_RE = re.compile(r"-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_DATE_RE = re.compile(r"-?\d{4,}-\d\d-\d\d(Z|[+-]\d\d:\d\d)?")


def valid_date(text: str, datatype: NamedNode) -> bool:
    """True when ``text`` is a valid lexical form of ``xsd:dateTime`` (or ``xsd:date``), with a real date.

    >>> valid_date("2024-02-29T10:00:00Z", XSD_DATETIME), valid_date("2023-02-29T10:00:00Z", XSD_DATETIME)
    (True, False)
    >>> valid_date("2024-01-05", XSD_DATE), valid_date("yesterday", XSD_DATE)
    (True, False)
    """
    pattern = _DATE_RE if datatype == XSD_DATE else _DATETIME_RE
    if not pattern.fullmatch(text):
        return False
    day = text.lstrip("-")[:10]
    try:
        _dt.date.fromisoformat(day)
    except ValueError:
        return False
    if datatype == XSD_DATE:
        return True
    hh, mm, ss = int(text[11:13]), int(text[14:16]), int(text[17:19])
    return (hh < 24 and mm < 60 and ss < 60) or (hh, mm, ss) == (24, 0, 0)


class GraphBuilder:
    """Collects the quads of one release graph and the per-type counts of what was read."""

    def __init__(self, graph: str, location: str) -> None:
        self.graph = NamedNode(graph)
        self.location = location
        self.quads: list[Quad] = []
        self.counts: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self._iris: dict[str, NamedNode] = {}
        self._concepts: dict[tuple[NamedNode, str], NamedNode] = {}
        self._refs: dict[str, NamedNode | Literal] = {}

    def add(self, s: NamedNode, p: NamedNode, o: NamedNode | Literal) -> None:
        """Add one triple to the release graph."""
        self.quads.append(Quad(s, p, o, self.graph))

    def dated(self, value: Any, datatype: NamedNode) -> Literal:
        """``value`` as an ``xsd:dateTime`` or ``xsd:date`` literal when it is one; otherwise a plain string
        literal, counted in ``skipped`` (an ill-typed literal would make date comparisons fail silently).

        >>> b = GraphBuilder("https://w3id.org/threatgraph/graph/release/x/1", "x.json")
        >>> b.dated("2024-01-02T03:04:05.000Z", XSD_DATETIME).datatype == XSD_DATETIME
        True
        >>> b.dated("2024-02-30T00:00:00Z", XSD_DATETIME).datatype == XSD_DATETIME, dict(b.skipped)
        (False, {'ill-formed date (kept as text)': 1})
        """
        text = value.isoformat() if isinstance(value, _dt.date) else str(value)
        if valid_date(text, datatype):
            return Literal(text, datatype=datatype)
        self.skipped["ill-formed date (kept as text)"] += 1
        return Literal(text)

    def iri(self, value: str) -> NamedNode:
        """A cached NamedNode."""
        node = self._iris.get(value)
        if node is None:
            try:
                node = NamedNode(value)
            except ValueError as err:
                raise ImportFailed(f"{self.location}: invalid IRI {value!r}: {err}") from err
            self._iris[value] = node
        return node

    @staticmethod
    def lit(value: str) -> Literal:
        """A plain string literal."""
        return Literal(value)

    def concept(self, base: str, cls: NamedNode, label: str) -> NamedNode:
        """The SKOS concept ``base + slug(label)`` of class ``cls``, typed and labelled on first use."""
        node = self._concepts.get((cls, label))
        if node is None:
            node = self.iri(base + slug(label))
            self._concepts[(cls, label)] = node
            self.add(node, RDF_TYPE, cls)
            self.add(node, RDF_TYPE, SKOS_CONCEPT)
            self.add(node, SKOS_PREF_LABEL, Literal(label))
            self.add(node, RDFS_LABEL, Literal(label))
        return node

    def name_and_description(self, s: NamedNode, f: Fields) -> str | None:
        """Add ``rdfs:label`` (field ``name``) and a non-empty ``dct:description``; return the name."""
        name = f.text("name")
        if name is not None:
            self.add(s, RDFS_LABEL, Literal(name))
        desc = f.text("description")
        if desc:
            self.add(s, DCT_DESCRIPTION, Literal(desc))
        return name

    def relationship(self, r: NamedNode, source: NamedNode, target: NamedNode, rel_type: str) -> None:
        """The reified relationship ``r``: its source, target and type (no ``rdf:type kb:Relationship``:
        no query reads it, and ``kb:relSource`` identifies these nodes; 18,735 quads of ATT&CK 18.1)."""
        self.add(r, P_REL_SOURCE, source)
        self.add(r, P_REL_TARGET, target)
        self.add(r, P_REL_TYPE, Literal(rel_type))

    def reference(self, url: str) -> NamedNode | Literal:
        """``url`` as an IRI when it is a valid one, else as an ``xsd:anyURI`` literal (cached: ATT&CK cites
        the same reports many times)."""
        o = self._refs.get(url)
        if o is None:
            try:
                o = NamedNode(url)
            except ValueError:
                o = Literal(url, datatype=XSD_ANYURI)
            self._refs[url] = o
        return o

    def see_also(self, s: NamedNode, url: str) -> None:
        """``rdfs:seeAlso`` :meth:`reference`."""
        self.add(s, RDFS_SEE_ALSO, self.reference(url))


def nt_string(value: str) -> str:
    """``value`` as an N-Triples string literal (only ``"``, ``\\``, LF and CR need escaping there).

    >>> print(nt_string('say "hi"\\n'))
    "say \\"hi\\"\\n"
    >>> nt_string('a\\\\b') == str(Literal('a\\\\b'))
    True
    """
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    return '"' + value + '"'


NT_TRUE = str(TRUE)
NT_FALSE = str(FALSE)


class NQuadsWriter:
    """Like :class:`GraphBuilder`, but the triples of the release graph are N-Triples text (terms are their
    N-Triples forms, ``<iri>`` and ``"literal"``), emitted as N-Quads chunks that the store bulk-loads
    as they are: no pyoxigraph term or ``Quad`` per triple, and no serialisation of them (for ATT&CK 18.1's
    175 k quads that was ~60 % of the conversion). IRIs built from the data are checked by
    :class:`NamedNode` once each (cached), so the text always parses.

    ``watch`` (set by the consumer before the chunks are read): predicates whose triples are also kept,
    as ``s p o`` text, in ``watched`` (the slice the knowledge view is compiled from).

    >>> w = NQuadsWriter("urn:g", "x.json")
    >>> w.add(w.iri("urn:a"), str(RDFS_LABEL), nt_string("A"))
    >>> b"".join(w.chunks())
    b'<urn:a> <http://www.w3.org/2000/01/rdf-schema#label> "A" <urn:g> .\\n'
    """

    CHUNK = 16384
    """Lines per chunk. ATT&CK 18.1 on disk (in-process, load ~8): 32,768 peaked at 237-240 MB (chunks in
    flight and the writers' bulk loads on top of what is left of the JSON tree), 16,384 at 200 MB (the JSON
    parse's own peak), same CPU."""

    def __init__(self, graph: str, location: str) -> None:
        self.graph = graph
        self.location = location
        self.lines: list[str] = []
        self.counts: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.watch: frozenset[str] = frozenset()
        self.watched: list[str] = []
        self._iris: dict[str, str] = {}
        self._refs: dict[str, str] = {}
        self._concepts: dict[tuple[str, str], str] = {}

    def add(self, s: str, p: str, o: str) -> None:
        """Add one triple (N-Triples terms)."""
        spo = f"{s} {p} {o}"
        self.lines.append(spo)
        if p in self.watch:
            self.watched.append(spo)

    def chunks(self, force: bool = True) -> Iterator[bytes]:
        """The lines so far as one N-Quads chunk (when ``force`` or when there are :data:`CHUNK` of them)."""
        if self.lines and (force or len(self.lines) >= self.CHUNK):
            sep = f" <{self.graph}> .\n"
            text = sep.join(self.lines) + sep
            self.lines.clear()
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError as err:
                raise ImportFailed(f"{self.location}: text that is not valid Unicode ({err.reason}: a lone "
                                   "surrogate such as \\ud800)", hint="the file is damaged; download it again") from None
            del text  # not held while the consumer has the chunk (peak memory)
            yield data

    def iri(self, value: str) -> str:
        """``<value>``, checked to be an IRI (cached)."""
        node = self._iris.get(value)
        if node is None:
            try:
                node = str(NamedNode(value))
            except ValueError as err:
                raise ImportFailed(f"{self.location}: invalid IRI {value!r}: {err}") from err
            self._iris[value] = node
        return node

    def dated(self, value: str, datatype: NamedNode) -> str:
        """As :meth:`GraphBuilder.dated`."""
        if valid_date(value, datatype):
            return f'"{value}"^^{datatype}'
        self.skipped["ill-formed date (kept as text)"] += 1
        return nt_string(value)

    def concept(self, base: str, cls: NamedNode, label: str) -> str:
        """As :meth:`GraphBuilder.concept`."""
        key = (cls.value, label)
        node = self._concepts.get(key)
        if node is None:
            node = self.iri(base + slug(label))
            self._concepts[key] = node
            text = nt_string(label)
            self.add(node, NT_TYPE, str(cls))
            self.add(node, NT_TYPE, NT_SKOS_CONCEPT)
            self.add(node, NT_PREF_LABEL, text)
            self.add(node, NT_LABEL, text)
        return node

    def name_and_description(self, s: str, f: Fields) -> str | None:
        """As :meth:`GraphBuilder.name_and_description`."""
        name = f.text("name")
        if name is not None:
            self.add(s, NT_LABEL, nt_string(name))
        desc = f.text("description")
        if desc:
            self.add(s, NT_DESCRIPTION, nt_string(desc))
        return name

    def reference(self, url: str) -> str:
        """As :meth:`GraphBuilder.reference`."""
        o = self._refs.get(url)
        if o is None:
            try:
                o = str(NamedNode(url))
            except ValueError:
                o = str(Literal(url, datatype=XSD_ANYURI))
            self._refs[url] = o
        return o

    def see_also(self, s: str, url: str) -> None:
        """As :meth:`GraphBuilder.see_also`."""
        self.add(s, NT_SEE_ALSO, self.reference(url))


NT_TYPE = str(RDF_TYPE)
NT_LABEL = str(RDFS_LABEL)
NT_DESCRIPTION = str(DCT_DESCRIPTION)
NT_SEE_ALSO = str(RDFS_SEE_ALSO)
NT_SKOS_CONCEPT = str(SKOS_CONCEPT)
NT_PREF_LABEL = str(SKOS_PREF_LABEL)


def load_json(data: bytes, location: str) -> Any:
    """Bounded ``json.loads`` (:func:`threatgraph.bounded.load_json`: depth, numbers) with an
    :class:`ImportFailed` naming the file, line and column."""
    try:
        return bounded.load_json(data, location, error=ImportFailed)
    except json.JSONDecodeError as err:
        raise ImportFailed(
            f"{location}: line {err.lineno} column {err.colno}: malformed JSON: {err.msg}",
            hint="the file may be truncated or not JSON; download it again",
        ) from err
    except UnicodeDecodeError as err:
        raise ImportFailed(f"{location}: not UTF-8 text: {err}", hint="is this the right file?") from err


class Fields:
    """Typed access to one JSON object's fields; type errors name the file, index, id and field."""

    __slots__ = ("_where", "obj")

    def __init__(self, obj: Mapping[str, Any], where: str) -> None:
        self.obj = obj
        self._where = where

    def fail(self, key: str, expected: str) -> ImportFailed:
        """The error for field ``key`` not being ``expected``."""
        got = type(self.obj.get(key)).__name__
        return ImportFailed(
            f"{self._where}: field {key!r} must be {expected}, got {got}",
            hint="the file is not valid for this kind of import; check it or download it again",
        )

    def text(self, key: str) -> str | None:
        """A string field, or None when absent/null."""
        v = self.obj.get(key)
        if v is None or isinstance(v, str):
            return v
        raise self.fail(key, "a string")

    def req_text(self, key: str) -> str:
        """A required string field."""
        v = self.text(key)
        if v is None:
            raise self.fail(key, "a string")
        return v

    def flag(self, key: str) -> bool:
        """A boolean field (absent → False)."""
        v = self.obj.get(key, False)
        if v is None:
            return False
        if isinstance(v, bool):
            return v
        raise self.fail(key, "true or false")

    def items(self, key: str) -> list[Any]:
        """A list field (absent → empty)."""
        v = self.obj.get(key)
        if v is None:
            return []
        if isinstance(v, list):
            return v
        raise self.fail(key, "a list")

    def texts(self, key: str) -> list[str]:
        """A list of strings."""
        v = self.items(key)
        for x in v:
            if not isinstance(x, str):
                raise self.fail(key, "a list of strings")
        return v

    def objs(self, key: str) -> list[dict[str, Any]]:
        """A list of objects."""
        v = self.items(key)
        for x in v:
            if not isinstance(x, dict):
                raise self.fail(key, "a list of objects")
        return v
