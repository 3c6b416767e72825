"""MITRE ATT&CK STIX bundles (2.0 or 2.1; Enterprise, ICS, Mobile) → quads of one release graph.

Parsed with :func:`json.loads`, emitted as pyoxigraph quads; see ``docs/knowledge.md`` for the mapping.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pyoxigraph import Literal, NamedNode, Quad

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
    DCT_DESCRIPTION,
    DCT_MODIFIED,
    FALSE,
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
    RDF_TYPE,
    RDFS_SEE_ALSO,
    SKOS_ALT_LABEL,
    SKOS_CONCEPT,
    TRUE,
    XSD_DATETIME,
    Fields,
    GraphBuilder,
    load_json,
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
    b = GraphBuilder(release_graph(source, ver), location)
    if progress:
        progress(f"building {source} {ver}: {len(objs):,} objects")

    platform_base = ATTACK["platform/"]

    def emit() -> Iterator[Quad]:
        """Pass 2, lazily: quads in chunks; each object is released once converted."""
        add = b.add
        step = max(len(objs) // 10, 1)
        for i, o in enumerate(objs):
            if len(b.quads) >= 8192:
                yield from b.quads
                b.quads.clear()
            objs[i] = _DONE  # free the JSON object as we go
            if progress and i and i % step == 0:
                progress(f"  {i * 100 // len(objs)}% ({i:,}/{len(objs):,} objects)")
            t = o["type"]
            if t == "relationship":
                if not _relationship_fast(b, o, iris):  # a field of an unexpected type: worded by Fields
                    _relationship(b, Fields(o, _where(location, i, o)), iris)
                continue
            sid = o["id"]
            f = Fields(o, _where(location, i, o))
            cls = CLASSES.get(t)
            if cls is None:
                b.skipped[t] += 1
                continue
            b.counts[t] += 1
            s = b.iri(iris[sid])
            add(s, RDF_TYPE, cls)
            name = b.name_and_description(s, f)
            add(s, P_STIX_ID, Literal(sid))
            eid, url = external_id(o, ATTACK_SOURCE_NAMES, f._where)
            if eid:
                add(s, P_ATTACK_ID, Literal(eid))
            if url:
                b.see_also(s, url)
            ver_o = f.text("x_mitre_version")
            if ver_o:
                add(s, P_VERSION, Literal(ver_o))
            mod = f.text("modified")
            if mod:
                add(s, DCT_MODIFIED, b.dated(mod, XSD_DATETIME))
            created = f.text("created")
            if created:
                add(s, DCT_CREATED, b.dated(created, XSD_DATETIME))
            if f.flag("revoked"):
                add(s, P_REVOKED, TRUE)
            if f.flag("x_mitre_deprecated"):
                add(s, P_DEPRECATED, TRUE)
            for p in f.texts("x_mitre_platforms"):
                add(s, P_PLATFORM, b.concept(platform_base, C_PLATFORM, p))
            if t == "attack-pattern":
                add(s, P_IS_SUB, TRUE if f.flag("x_mitre_is_subtechnique") else FALSE)
                for ph in f.objs("kill_chain_phases"):
                    short = ph.get("phase_name")
                    tac = tactic_by_short.get(short) if isinstance(short, str) else None
                    if tac is None:
                        b.skipped["kill-chain-phase (unknown tactic)"] += 1
                    else:
                        add(s, P_TACTIC, b.iri(tac))
            elif t == "x-mitre-tactic":
                add(s, RDF_TYPE, SKOS_CONCEPT)
                short = f.text("x_mitre_shortname")
                if short:
                    add(s, P_SHORT_NAME, Literal(short))
            elif t in ("malware", "tool"):
                add(s, P_SOFTWARE_TYPE, Literal(t))
                for a in f.texts("x_mitre_aliases"):
                    if a != name:
                        add(s, SKOS_ALT_LABEL, Literal(a))
            elif t in ("intrusion-set", "campaign"):
                for a in f.texts("aliases"):
                    if a != name:
                        add(s, SKOS_ALT_LABEL, Literal(a))
            elif t == "x-mitre-detection-strategy":
                for ref in f.texts("x_mitre_analytic_refs"):
                    target = iris.get(ref)
                    if target:
                        add(s, P_ANALYTIC, b.iri(target))
            elif t == "x-mitre-analytic":
                seen: set[str] = set()
                for ls in f.objs("x_mitre_log_source_references"):
                    dc_ref = ls.get("x_mitre_data_component_ref")
                    target = iris.get(dc_ref) if isinstance(dc_ref, str) else None
                    if target and target not in seen:
                        seen.add(target)
                        add(s, P_DATA_COMPONENT, b.iri(target))
            elif t == "x-mitre-data-component":
                ds_ref = f.text("x_mitre_data_source_ref")
                target = iris.get(ds_ref) if ds_ref else None
                if target:
                    add(s, P_DATA_SOURCE, b.iri(target))
        yield from b.quads
        b.quads.clear()
        for t in METADATA_TYPES:
            b.skipped.pop(t, None)

    return Release(
        source=source,
        version=ver,
        quads=emit(),
        counts=b.counts,
        skipped=b.skipped,
        format=f"STIX {spec}",
    )


def _relationship_fast(b: GraphBuilder, o: dict[str, Any], iris: dict[str, str]) -> bool:
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
    src = iris.get(src_id)
    tgt = iris.get(tgt_id)
    if src is None or tgt is None:
        b.skipped["relationship (endpoint not in bundle)"] += 1
        return True
    b.counts["relationship"] += 1
    s = b.iri(src)
    ob = b.iri(tgt)
    g = b.graph
    append = b.quads.append
    pred = REL_PREDICATES.get(rtype)
    append(Quad(s, pred if pred is not None else P_RELATED_TO, ob, g))
    if not desc and not refs and pred is not None:
        return True
    r = b.iri(ATTACK[o["id"]])
    append(Quad(r, P_REL_SOURCE, s, g))
    append(Quad(r, P_REL_TARGET, ob, g))
    append(Quad(r, P_REL_TYPE, Literal(rtype), g))
    if desc:
        append(Quad(r, DCT_DESCRIPTION, Literal(desc), g))
    seen: set[str] = set()
    for ref in refs:
        url = ref.get("url")
        if isinstance(url, str) and url and url not in seen:
            seen.add(url)
            append(Quad(r, RDFS_SEE_ALSO, b.reference(url), g))
    return True


def _relationship(b: GraphBuilder, f: Fields, iris: dict[str, str]) -> None:
    rtype = f.req_text("relationship_type")
    src_id = f.req_text("source_ref")
    tgt_id = f.req_text("target_ref")
    src = iris.get(src_id)
    tgt = iris.get(tgt_id)
    if src is None or tgt is None:
        b.skipped["relationship (endpoint not in bundle)"] += 1
        return
    b.counts["relationship"] += 1
    s = b.iri(src)
    o = b.iri(tgt)
    pred = REL_PREDICATES.get(rtype)
    b.add(s, pred if pred is not None else P_RELATED_TO, o)
    desc = f.text("description")
    refs = f.objs("external_references")
    if not desc and not refs and pred is not None:
        return
    sid = f.req_text("id")
    r = b.iri(ATTACK[sid])  # the STIX id is the IRI's local name (no kb:stixId, no class: see docs/knowledge.md)
    b.relationship(r, s, o, rtype)
    if desc:
        b.add(r, DCT_DESCRIPTION, Literal(desc))
    seen: set[str] = set()
    for ref in refs:
        url = ref.get("url")
        if isinstance(url, str) and url and url not in seen:  # a citation listed twice is one triple
            seen.add(url)
            b.see_also(r, url)
