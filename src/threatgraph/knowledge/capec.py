"""MITRE CAPEC as STIX 2.1 (``stix-capec.json``) → quads of one release graph."""

from __future__ import annotations

from pyoxigraph import Literal

from threatgraph.errors import ImportFailed
from threatgraph.knowledge.fetch import Progress
from threatgraph.knowledge.rdfbuild import (
    C_ATTACK_PATTERN,
    C_MITIGATION,
    DCT_CREATED,
    DCT_DESCRIPTION,
    DCT_MODIFIED,
    P_ATTACK_REFERENCE,
    P_CHILD_OF,
    P_CWE_ID,
    P_DEPRECATED,
    P_EXTERNAL_ID,
    P_MITIGATES,
    P_RELATED_TO,
    P_STATUS,
    P_STIX_ID,
    P_VERSION,
    RDF_TYPE,
    TRUE,
    XSD_DATETIME,
    Fields,
    GraphBuilder,
    load_json,
)
from threatgraph.knowledge.stix import Release, _where, external_id, objects_of, release_graph
from threatgraph.terms import ATTACK, CAPEC

SOURCE = "capec"
DEPRECATED_STATUS = frozenset({"Deprecated", "Obsolete"})
_CAPEC = frozenset({"capec"})


def parse_capec(
    data: bytes, location: str, version: str | None = None, progress: Progress | None = None
) -> Release:
    """Parse a CAPEC STIX bundle: attack patterns, courses of action, ``mitigates``, ATT&CK and CWE links."""
    if progress:
        progress(f"parsing {location}")
    objs = objects_of(load_json(data, location), location)
    iris: dict[str, str] = {}
    versions: set[str] = set()
    for i, o in enumerate(objs):
        f = Fields(o, _where(location, i, o))
        if o["type"] == "attack-pattern":
            eid, _ = external_id(o, _CAPEC, f._where)
            if eid:
                iris[o["id"]] = CAPEC[eid]
                v = f.text("x_capec_version")
                if v:
                    versions.add(v)
        elif o["type"] == "course-of-action":
            # names (coa-67-0 …) are not unique in CAPEC 3.9: the STIX id is the only stable key
            iris[o["id"]] = CAPEC[o["id"]]
    if not any(k.startswith("attack-pattern--") for k in iris):
        raise ImportFailed(
            f"{location}: not a CAPEC bundle (no attack-pattern with a capec external ID)",
            hint="use `threatgraph import attack` for ATT&CK bundles",
        )
    ver = version or (max(versions) if versions else None)
    if not ver:
        raise ImportFailed(
            f"{location}: no x_capec_version on any attack pattern", hint="pass --release-version"
        )
    b = GraphBuilder(release_graph(SOURCE, ver), location)
    add = b.add
    for i, o in enumerate(objs):
        t = o["type"]
        f = Fields(o, _where(location, i, o))
        if t == "relationship":
            src = iris.get(f.req_text("source_ref"))
            tgt = iris.get(f.req_text("target_ref"))
            if src is None or tgt is None:
                b.skipped["relationship (endpoint not in bundle)"] += 1
                continue
            rtype = f.req_text("relationship_type")
            b.counts["relationship"] += 1
            pred = P_MITIGATES if rtype == "mitigates" else P_RELATED_TO
            add(b.iri(src), pred, b.iri(tgt))
            desc = f.text("description")
            if desc or pred is P_RELATED_TO:
                r = b.iri(CAPEC[o["id"]])
                b.relationship(r, b.iri(src), b.iri(tgt), rtype)
                if desc:
                    add(r, DCT_DESCRIPTION, Literal(desc))
            continue
        if o["id"] not in iris:
            if t not in ("identity", "marking-definition"):
                b.skipped[t] += 1
            continue
        b.counts[t] += 1
        s = b.iri(iris[o["id"]])
        add(s, RDF_TYPE, C_ATTACK_PATTERN if t == "attack-pattern" else C_MITIGATION)
        add(s, P_STIX_ID, Literal(o["id"]))
        b.name_and_description(s, f)
        for key, p in (("modified", DCT_MODIFIED), ("created", DCT_CREATED)):
            v = f.text(key)
            if v:
                add(s, p, b.dated(v, XSD_DATETIME))
        if t != "attack-pattern":
            continue
        v = f.text("x_capec_version")
        if v:
            add(s, P_VERSION, Literal(v))
        status = f.text("x_capec_status")
        if status:
            add(s, P_STATUS, Literal(status))
            if status in DEPRECATED_STATUS:
                add(s, P_DEPRECATED, TRUE)
        for parent in f.texts("x_capec_child_of_refs"):
            target = iris.get(parent)
            if target:
                add(s, P_CHILD_OF, b.iri(target))
        for ref in f.objs("external_references"):
            sn, eid, url = ref.get("source_name"), ref.get("external_id"), ref.get("url")
            if not isinstance(eid, str):
                continue
            if sn == "capec":
                add(s, P_EXTERNAL_ID, Literal(eid))
                if isinstance(url, str):
                    b.see_also(s, url)
            elif sn == "ATTACK":
                add(s, P_ATTACK_REFERENCE, b.iri(ATTACK[eid.strip()]))
            elif sn == "cwe":
                add(s, P_CWE_ID, Literal(eid))
    return Release.built(b, SOURCE, ver, "STIX 2.1")
