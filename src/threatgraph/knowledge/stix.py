"""MITRE ATT&CK STIX bundles (2.0 or 2.1; Enterprise, ICS, Mobile) → quads of one release graph.

Parsed with :func:`json.loads`, emitted as pyoxigraph quads; see ``docs/knowledge.md`` for the mapping.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pyoxigraph import NamedNode, Quad, RdfFormat, parse

from threatgraph.errors import ImportFailed
from threatgraph.knowledge.fetch import Progress
from threatgraph.knowledge.rdfbuild import (
    C_ANALYTIC,
    C_ASSET,
    C_CAMPAIGN,
    C_DATA_COMPONENT,
    C_DATA_SOURCE,
    C_DETECTION_STRATEGY,
    C_GROUP,
    C_MATRIX,
    C_MITIGATION,
    C_PLATFORM,
    C_SOFTWARE,
    C_TACTIC,
    C_TECHNIQUE,
    DCT_CREATED,
    DCT_MODIFIED,
    NT_DESCRIPTION,
    NT_FALSE,
    NT_SEE_ALSO,
    NT_SKOS_CONCEPT,
    NT_TRUE,
    NT_TYPE,
    P_ANALYTIC,
    P_ATTACK_ID,
    P_ATTRIBUTED_TO,
    P_DATA_COMPONENT,
    P_DATA_SOURCE,
    P_DEPRECATED,
    P_DETECTS,
    P_IS_SUB,
    P_MITIGATES,
    P_PLATFORM,
    P_REL_SOURCE,
    P_REL_TARGET,
    P_REL_TYPE,
    P_RELATED_TO,
    P_REVOKED,
    P_REVOKED_BY,
    P_SHORT_NAME,
    P_SOFTWARE_TYPE,
    P_STIX_ID,
    P_SUB_OF,
    P_TACTIC,
    P_TARGETS,
    P_USES,
    P_VERSION,
    SKOS_ALT_LABEL,
    XSD_DATETIME,
    Fields,
    GraphBuilder,
    NQuadsWriter,
    load_json,
    nt_string,
    slug,
)
from threatgraph.terms import ATTACK, GRAPH

ATTACK_SOURCE_NAMES = frozenset({"mitre-attack", "mitre-ics-attack", "mitre-mobile-attack"})
DOMAIN_SOURCES = {
    "enterprise-attack": "attack-enterprise",
    "ics-attack": "attack-ics",
    "mobile-attack": "attack-mobile",
}
CLASSES: dict[str, NamedNode] = {
    "attack-pattern": C_TECHNIQUE,
    "x-mitre-tactic": C_TACTIC,
    "course-of-action": C_MITIGATION,
    "intrusion-set": C_GROUP,
    "malware": C_SOFTWARE,
    "tool": C_SOFTWARE,
    "campaign": C_CAMPAIGN,
    "x-mitre-data-source": C_DATA_SOURCE,
    "x-mitre-data-component": C_DATA_COMPONENT,
    "x-mitre-detection-strategy": C_DETECTION_STRATEGY,
    "x-mitre-analytic": C_ANALYTIC,
    "x-mitre-asset": C_ASSET,
    "x-mitre-matrix": C_MATRIX,
}
REL_PREDICATES: dict[str, NamedNode] = {
    "uses": P_USES,
    "mitigates": P_MITIGATES,
    "detects": P_DETECTS,
    "subtechnique-of": P_SUB_OF,
    "attributed-to": P_ATTRIBUTED_TO,
    "revoked-by": P_REVOKED_BY,
    "targets": P_TARGETS,
}
METADATA_TYPES = frozenset({"identity", "marking-definition", "x-mitre-collection"})
# N-Triples forms of the terms the ATT&CK conversion writes (it writes text: NQuadsWriter)
NT_CLASSES = {t: str(c) for t, c in CLASSES.items()}
NT_REL_PREDICATES = {t: str(p) for t, p in REL_PREDICATES.items()}
(NT_STIX_ID, NT_ATTACK_ID, NT_VERSION, NT_MODIFIED, NT_CREATED, NT_REVOKED, NT_DEPRECATED, NT_PLATFORM, NT_IS_SUB,
 NT_TACTIC, NT_SHORT_NAME, NT_SOFTWARE_TYPE, NT_ALT_LABEL, NT_ANALYTIC, NT_DATA_COMPONENT, NT_DATA_SOURCE,
 NT_RELATED_TO, NT_REL_SOURCE, NT_REL_TARGET, NT_REL_TYPE) = (str(t) for t in (
    P_STIX_ID, P_ATTACK_ID, P_VERSION, DCT_MODIFIED, DCT_CREATED, P_REVOKED, P_DEPRECATED, P_PLATFORM, P_IS_SUB,
    P_TACTIC, P_SHORT_NAME, P_SOFTWARE_TYPE, SKOS_ALT_LABEL, P_ANALYTIC, P_DATA_COMPONENT, P_DATA_SOURCE,
    P_RELATED_TO, P_REL_SOURCE, P_REL_TARGET, P_REL_TYPE))
_DONE: dict[str, Any] = {}
_VERSION_IN_NAME = re.compile(r"(?<![0-9])(\d+\.\d+(?:\.\d+)?)(?![0-9])")


@dataclass
class Release:
    """A parsed release: its source key, version, graph IRI, quads and counts."""

    source: str
    version: str
    quads: Iterable[Quad]
    """All quads; for large bundles a one-shot generator that fills ``counts``/``skipped`` as it runs."""
    counts: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)
    format: str = ""
    nquads: Iterable[bytes] | None = None
    """When the parser writes text (ATT&CK): the same quads as N-Quads chunks, the one-shot generator that
    ``quads`` parses; a consumer reads one or the other. The store bulk-loads these as they are."""
    writer: NQuadsWriter | None = None
    """The writer of ``nquads``: set its ``watch`` before reading them to get those triples in ``watched``."""

    @property
    def graph(self) -> str:
        """``graph/release/<source>/<version>``."""
        return release_graph(self.source, self.version)

    @classmethod
    def built(cls, b: GraphBuilder, source: str, version: str, fmt: str) -> Release:
        """The release of a finished builder: its quads, and copies of its counts."""
        return cls(source, version, b.quads, dict(b.counts), dict(b.skipped), fmt)


def release_graph(source: str, version: str) -> str:
    """IRI of the named graph of one release.

    >>> release_graph("attack-enterprise", "18.1")
    'https://w3id.org/threatgraph/graph/release/attack-enterprise/18.1'
    """
    return f"{GRAPH}release/{source}/{version}"


def version_from_name(name: str) -> str | None:
    """A ``N.N[.N]`` version in a file name, if any.

    >>> version_from_name("enterprise-attack-18.1.stix20.json")
    '18.1'
    >>> version_from_name("enterprise-attack.json") is None
    True
    """
    m = _VERSION_IN_NAME.search(name)
    return m.group(1) if m else None


def external_id(obj: dict[str, Any], names: frozenset[str], where: str) -> tuple[str | None, str | None]:
    """(external_id, url) of the first external reference whose source_name is in ``names``."""
    refs = Fields(obj, where).objs("external_references")
    for ref in refs:
        if ref.get("source_name") in names:
            eid = ref.get("external_id")
            url = ref.get("url")
            if eid is not None and not isinstance(eid, str):
                raise Fields(ref, where + " external_references").fail("external_id", "a string")
            return eid, url if isinstance(url, str) else None
    return None, None


def objects_of(bundle: Any, location: str) -> list[dict[str, Any]]:
    """The ``objects`` of a STIX bundle, each checked to be an object with string ``type`` and ``id``."""
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        raise ImportFailed(
            f'{location}: not a STIX bundle (top level must be an object with "type": "bundle")',
            hint="pass a STIX 2.0/2.1 bundle file",
        )
    objs = bundle.get("objects")
    if not isinstance(objs, list):
        raise ImportFailed(f"{location}: bundle field 'objects' must be a list", hint="the file is damaged")
    for i, o in enumerate(objs):
        if not isinstance(o, dict):
            raise ImportFailed(f"{location}: object #{i} is a {type(o).__name__}, not a JSON object")
        if not isinstance(o.get("type"), str) or not isinstance(o.get("id"), str):
            raise ImportFailed(f"{location}: object #{i} has no string 'type' and 'id'")
    return objs


def _where(location: str, i: int, obj: dict[str, Any]) -> str:
    return f"{location}: object #{i} ({obj.get('id')})"


def parse_attack(
    data: bytes, location: str, version: str | None = None, progress: Progress | None = None
) -> Release:
    """Parse an ATT&CK bundle; ``version`` overrides the version found in the bundle or the file name."""
    if progress:
        progress(f"parsing {location} ({len(data) / 1e6:.1f} MB)")
    bundle = load_json(data, location)
    del data  # the caller hands over its only reference (Source.take): free 45 MB before building
    objs = objects_of(bundle, location)
    del bundle

    # Pass 1: IRIs of every object, tactic short names, domain and version.
    iris: dict[str, str] = {}
    tactic_by_short: dict[str, str] = {}
    domains: Counter[str] = Counter()
    coll_version: str | None = None
    spec = "2.1" if any(o.get("spec_version") == "2.1" for o in objs[:50]) else "2.0"
    for i, o in enumerate(objs):
        t = o["type"]
        if t == "x-mitre-collection":
            coll_version = Fields(o, _where(location, i, o)).text("x_mitre_version")
            continue
        if t not in CLASSES:
            continue
        where = _where(location, i, o)
        eid, _url = external_id(o, ATTACK_SOURCE_NAMES, where)
        if t == "attack-pattern" and eid:
            for d in Fields(o, where).texts("x_mitre_domains"):
                domains[d] += 1
        if eid and (t != "course-of-action" or eid.startswith("M")):
            iris[o["id"]] = ATTACK[eid]
        elif eid:  # pre-2019 mitigations reuse their technique's T-id: keep them apart
            iris[o["id"]] = ATTACK["mitigation/" + eid]
        else:
            iris[o["id"]] = ATTACK[o["id"]]
        if t == "x-mitre-tactic":
            short = Fields(o, where).text("x_mitre_shortname")
            if short:
                tactic_by_short[short] = iris[o["id"]]
    if not domains:
        raise ImportFailed(
            f"{location}: not an ATT&CK bundle (no attack-pattern with a mitre-attack external ID)",
            hint="use `threatgraph import capec` / `atlas` for other MITRE data",
        )
    domain = domains.most_common(1)[0][0]
    source = DOMAIN_SOURCES.get(domain, "attack-" + slug(domain))
    ver = version or coll_version or version_from_name(location.rsplit("/", 1)[-1])
    if not ver:
        raise ImportFailed(
            f"{location}: cannot tell the ATT&CK version (no x-mitre-collection, no version in the name)",
            hint="pass --release-version, e.g. --release-version 18.1",
        )
    w = NQuadsWriter(release_graph(source, ver), location)
    if progress:
        progress(f"building {source} {ver}: {len(objs):,} objects")

    platform_base = ATTACK["platform/"]
    iri_text = {sid: w.iri(iri) for sid, iri in iris.items()}  # N-Triples form of every object's IRI

    def emit() -> Iterator[bytes]:
        """Pass 2, lazily: N-Quads chunks; each object is released once converted."""
        add = w.add
        step = max(len(objs) // 10, 1)
        for i, o in enumerate(objs):
            if len(w.lines) >= w.CHUNK:
                yield from w.chunks()
            objs[i] = _DONE  # free the JSON object as we go
            if progress and i and i % step == 0:
                progress(f"  {i * 100 // len(objs)}% ({i:,}/{len(objs):,} objects)")
            t = o["type"]
            if t == "relationship":
                if not _relationship_fast(w, o, iri_text):  # a field of an unexpected type: worded by Fields
                    _relationship(w, Fields(o, _where(location, i, o)), iri_text)
                continue
            sid = o["id"]
            f = Fields(o, _where(location, i, o))
            cls = NT_CLASSES.get(t)
            if cls is None:
                w.skipped[t] += 1
                continue
            w.counts[t] += 1
            s = iri_text[sid]
            add(s, NT_TYPE, cls)
            name = w.name_and_description(s, f)
            add(s, NT_STIX_ID, nt_string(sid))
            eid, url = external_id(o, ATTACK_SOURCE_NAMES, f._where)
            if eid:
                add(s, NT_ATTACK_ID, nt_string(eid))
            if url:
                w.see_also(s, url)
            ver_o = f.text("x_mitre_version")
            if ver_o:
                add(s, NT_VERSION, nt_string(ver_o))
            mod = f.text("modified")
            if mod:
                add(s, NT_MODIFIED, w.dated(mod, XSD_DATETIME))
            created = f.text("created")
            if created:
                add(s, NT_CREATED, w.dated(created, XSD_DATETIME))
            if f.flag("revoked"):
                add(s, NT_REVOKED, NT_TRUE)
            if f.flag("x_mitre_deprecated"):
                add(s, NT_DEPRECATED, NT_TRUE)
            for p in f.texts("x_mitre_platforms"):
                add(s, NT_PLATFORM, w.concept(platform_base, C_PLATFORM, p))
            if t == "attack-pattern":
                add(s, NT_IS_SUB, NT_TRUE if f.flag("x_mitre_is_subtechnique") else NT_FALSE)
                for ph in f.objs("kill_chain_phases"):
                    short = ph.get("phase_name")
                    tac = tactic_by_short.get(short) if isinstance(short, str) else None
                    if tac is None:
                        w.skipped["kill-chain-phase (unknown tactic)"] += 1
                    else:
                        add(s, NT_TACTIC, w.iri(tac))
            elif t == "x-mitre-tactic":
                add(s, NT_TYPE, NT_SKOS_CONCEPT)
                short = f.text("x_mitre_shortname")
                if short:
                    add(s, NT_SHORT_NAME, nt_string(short))
            elif t in ("malware", "tool"):
                add(s, NT_SOFTWARE_TYPE, nt_string(t))
                for a in f.texts("x_mitre_aliases"):
                    if a != name:
                        add(s, NT_ALT_LABEL, nt_string(a))
            elif t in ("intrusion-set", "campaign"):
                for a in f.texts("aliases"):
                    if a != name:
                        add(s, NT_ALT_LABEL, nt_string(a))
            elif t == "x-mitre-detection-strategy":
                for ref in f.texts("x_mitre_analytic_refs"):
                    target = iri_text.get(ref)
                    if target:
                        add(s, NT_ANALYTIC, target)
            elif t == "x-mitre-analytic":
                seen: set[str] = set()
                for ls in f.objs("x_mitre_log_source_references"):
                    dc_ref = ls.get("x_mitre_data_component_ref")
                    target = iri_text.get(dc_ref) if isinstance(dc_ref, str) else None
                    if target and target not in seen:
                        seen.add(target)
                        add(s, NT_DATA_COMPONENT, target)
            elif t == "x-mitre-data-component":
                ds_ref = f.text("x_mitre_data_source_ref")
                target = iri_text.get(ds_ref) if ds_ref else None
                if target:
                    add(s, NT_DATA_SOURCE, target)
        yield from w.chunks()
        for t in METADATA_TYPES:
            w.skipped.pop(t, None)

    chunks = emit()
    return Release(
        source=source,
        version=ver,
        quads=_parsed(chunks),
        counts=w.counts,
        skipped=w.skipped,
        format=f"STIX {spec}",
        nquads=chunks,
        writer=w,
    )


def _parsed(chunks: Iterable[bytes]) -> Iterator[Quad]:
    """The quads of N-Quads ``chunks`` (for callers that want :class:`Quad` objects)."""
    for chunk in chunks:
        for q in parse(chunk, format=RdfFormat.N_QUADS):
            if isinstance(q, Quad):
                yield q


def _relationship_fast(w: NQuadsWriter, o: dict[str, Any], iris: dict[str, str]) -> bool:
    """:func:`_relationship` for a well-typed relationship (the 20 k of ATT&CK 18.1: a third of the
    conversion's time), without :class:`Fields`; False, having added nothing, when a field has an
    unexpected type, for :func:`_relationship` to word the error (or accept a subclass)."""
    rtype = o.get("relationship_type")
    src_id = o.get("source_ref")
    tgt_id = o.get("target_ref")
    desc = o.get("description")
    refs = o.get("external_references")
    if type(rtype) is not str or type(src_id) is not str or type(tgt_id) is not str:
        return False
    if desc is not None and type(desc) is not str:
        return False
    if refs is None:
        refs = ()
    elif type(refs) is not list or any(type(ref) is not dict for ref in refs):
        return False
    s = iris.get(src_id)
    ob = iris.get(tgt_id)
    if s is None or ob is None:
        w.skipped["relationship (endpoint not in bundle)"] += 1
        return True
    w.counts["relationship"] += 1
    add = w.add
    pred = NT_REL_PREDICATES.get(rtype)
    add(s, pred if pred is not None else NT_RELATED_TO, ob)
    if not desc and not refs and pred is not None:
        return True
    r = w.iri(ATTACK[o["id"]])
    add(r, NT_REL_SOURCE, s)
    add(r, NT_REL_TARGET, ob)
    add(r, NT_REL_TYPE, nt_string(rtype))
    if desc:
        add(r, NT_DESCRIPTION, nt_string(desc))
    seen: set[str] = set()
    for ref in refs:
        url = ref.get("url")
        if isinstance(url, str) and url and url not in seen:
            seen.add(url)
            add(r, NT_SEE_ALSO, w.reference(url))
    return True


def _relationship(w: NQuadsWriter, f: Fields, iris: dict[str, str]) -> None:
    rtype = f.req_text("relationship_type")
    src_id = f.req_text("source_ref")
    tgt_id = f.req_text("target_ref")
    s = iris.get(src_id)
    o = iris.get(tgt_id)
    if s is None or o is None:
        w.skipped["relationship (endpoint not in bundle)"] += 1
        return
    w.counts["relationship"] += 1
    pred = NT_REL_PREDICATES.get(rtype)
    w.add(s, pred if pred is not None else NT_RELATED_TO, o)
    desc = f.text("description")
    refs = f.objs("external_references")
    if not desc and not refs and pred is not None:
        return
    sid = f.req_text("id")
    r = w.iri(ATTACK[sid])  # the STIX id is the IRI's local name (no kb:stixId, no class: see docs/knowledge.md)
    w.add(r, NT_REL_SOURCE, s)  # as GraphBuilder.relationship
    w.add(r, NT_REL_TARGET, o)
    w.add(r, NT_REL_TYPE, nt_string(rtype))
    if desc:
        w.add(r, NT_DESCRIPTION, nt_string(desc))
    seen: set[str] = set()
    for ref in refs:
        url = ref.get("url")
        if isinstance(url, str) and url and url not in seen:  # a citation listed twice is one triple
            seen.add(url)
            w.see_also(r, url)
