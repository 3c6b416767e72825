"""MITRE ATLAS → quads of one release graph: ``ATLAS.yaml`` (tactics, techniques, mitigations, case studies)
or the STIX 2.1 bundle ``stix-atlas.json`` (the same tactics, techniques and mitigations; told apart by
content, see :func:`parse_atlas` and ``docs/knowledge.md``)."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from pyoxigraph import Literal, NamedNode

from threatgraph import bounded
from threatgraph.errors import ImportFailed
from threatgraph.knowledge.fetch import Progress
from threatgraph.knowledge.rdfbuild import (
    C_CASE_STUDY,
    C_LIFECYCLE_STAGE,
    C_MITIGATION,
    C_PROCEDURE_STEP,
    C_TACTIC,
    C_TECHNIQUE,
    DCT_CREATED,
    DCT_DESCRIPTION,
    DCT_MODIFIED,
    FALSE,
    P_ACTOR,
    P_ATTACK_REFERENCE,
    P_CASE_STUDY_TYPE,
    P_CATEGORY,
    P_DEPRECATED,
    P_EXTERNAL_ID,
    P_INCIDENT_DATE,
    P_IS_SUB,
    P_LIFECYCLE_STAGE,
    P_MATURITY,
    P_MITIGATES,
    P_PROCEDURE_STEP,
    P_STEP_INDEX,
    P_SUB_OF,
    P_TACTIC,
    P_TARGET,
    P_TECHNIQUE,
    RDF_TYPE,
    SKOS_CLOSE_MATCH,
    SKOS_CONCEPT,
    TRUE,
    XSD_DATE,
    Fields,
    GraphBuilder,
    load_json,
)
from threatgraph.knowledge.stix import Release, external_id, objects_of, release_graph, version_from_name
from threatgraph.terms import ATLAS, ATTACK

SOURCE = "atlas"
ATLAS_SITE = "https://atlas.mitre.org/"

def _loader() -> Any:
    """The C loader (~10x faster), else the pure-Python one; yaml is imported here, not with the module
    (``threatgraph.knowledge.releases`` imports this module, and every analysis with knowledge reads
    release records through it: ~40 ms of start-up)."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _date(b: GraphBuilder, v: Any) -> Literal | None:
    if v is None:
        return None
    if isinstance(v, _dt.datetime):
        v = v.date()
    return b.dated(v, XSD_DATE)


def is_json_object(data: bytes) -> bool:
    """True when ``data`` starts (after a BOM and white space) with ``{``: a JSON document, here the STIX
    bundle; ``ATLAS.yaml`` starts with a YAML key (``id:``) or ``---``.

    >>> is_json_object(b'\\xef\\xbb\\xbf  {"type": "bundle"}'), is_json_object(b"---\\nid: ATLAS\\n")
    (True, False)
    """
    head = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"{")


def parse_atlas(
    data: bytes, location: str, version: str | None = None, progress: Progress | None = None
) -> Release:
    """Parse ``ATLAS.yaml`` (the ``dist/ATLAS.yaml`` of mitre-atlas/atlas-data) or, when the content is a
    JSON object, the STIX 2.1 bundle (``dist/stix-atlas.json`` of mitre-atlas/atlas-navigator-data)."""
    if progress:
        progress(f"parsing {location}")
    if is_json_object(data):
        return parse_atlas_stix(data, location, version)
    import yaml

    try:
        doc = yaml.load(data, Loader=_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        raise ImportFailed(
            f"{location}: {at}malformed YAML: {err}", hint="the file may be truncated"
        ) from err
    except (ValueError, OverflowError) as err:  # an impossible date, a 5000-digit integer, …
        raise ImportFailed(f"{location}: a value YAML cannot construct: {err}",
                           hint="is this MITRE's ATLAS.yaml? download it again") from err
    except RecursionError:
        raise ImportFailed(f"{location}: nested too deeply", hint="is this MITRE's ATLAS.yaml?") from None
    bounded.check_tree(doc, location, error=ImportFailed)  # depth, alias expansion, recursive aliases
    if not isinstance(doc, dict) or not isinstance(doc.get("matrices"), list) or not doc["matrices"]:
        raise ImportFailed(
            f"{location}: not an ATLAS.yaml file (expected a top-level mapping with 'matrices')",
            hint="pass dist/ATLAS.yaml from mitre-atlas/atlas-data",
        )
    top = Fields(doc, location)
    ver = version or (str(doc["version"]) if doc.get("version") is not None else None)
    if not ver:
        raise ImportFailed(f"{location}: no 'version' field", hint="pass --release-version")
    b = GraphBuilder(release_graph(SOURCE, ver), location)
    add = b.add
    known: set[str] = set()
    matrices = top.objs("matrices")
    for mi, matrix in enumerate(matrices):
        mf = Fields(matrix, f"{location}: matrices[{mi}]")
        for key in ("tactics", "techniques", "mitigations"):
            for j, item in enumerate(mf.objs(key)):
                ident = Fields(item, f"{location}: {key}[{j}]").req_text("id")
                known.add(ident)
    stage_base = ATLAS["lifecycle/"]

    def ref(f: Fields, ident: str, where: str) -> NamedNode:
        if ident not in known:
            raise ImportFailed(
                f"{where}: refers to unknown ATLAS id {ident!r}", hint="the file is inconsistent"
            )
        return b.iri(ATLAS[ident])

    def common(item: dict[str, Any], where: str, cls: NamedNode, kind: str) -> tuple[NamedNode, Fields]:
        f = Fields(item, where)
        ident = f.req_text("id")
        s = b.iri(ATLAS[ident])
        b.counts[kind] += 1
        add(s, RDF_TYPE, cls)
        add(s, P_EXTERNAL_ID, Literal(ident))
        b.name_and_description(s, f)
        page = {"tactic": "tactics/", "technique": "techniques/", "mitigation": "mitigations/"}.get(kind)
        if page:
            b.see_also(s, ATLAS_SITE + page + ident)
        for k, p in (("created_date", DCT_CREATED), ("modified_date", DCT_MODIFIED)):
            d = _date(b, item.get(k))
            if d is not None:
                add(s, p, d)
        if item.get("deprecated") is True:
            add(s, P_DEPRECATED, TRUE)
        aref = item.get("ATT&CK-reference")
        if aref is not None:
            af = Fields(aref, where + " ATT&CK-reference") if isinstance(aref, dict) else None
            if af is None:
                raise f.fail("ATT&CK-reference", "a mapping with 'id'")
            target = b.iri(ATTACK[af.req_text("id")])
            add(s, P_ATTACK_REFERENCE, target)
            add(s, SKOS_CLOSE_MATCH, target)
        return s, f

    for mi, matrix in enumerate(matrices):
        mf = Fields(matrix, f"{location}: matrices[{mi}]")
        for j, item in enumerate(mf.objs("tactics")):
            s, _f = common(item, f"{location}: tactics[{j}] ({item.get('id')})", C_TACTIC, "tactic")
            add(s, RDF_TYPE, SKOS_CONCEPT)
        for j, item in enumerate(mf.objs("techniques")):
            where = f"{location}: techniques[{j}] ({item.get('id')})"
            s, f = common(item, where, C_TECHNIQUE, "technique")
            parent = f.text("subtechnique-of")
            add(s, P_IS_SUB, TRUE if parent else FALSE)
            if parent:
                add(s, P_SUB_OF, ref(f, parent, where))
            for tac in f.texts("tactics"):
                add(s, P_TACTIC, ref(f, tac, where))
            maturity = f.text("maturity")
            if maturity:
                add(s, P_MATURITY, Literal(maturity))
        for j, item in enumerate(mf.objs("mitigations")):
            where = f"{location}: mitigations[{j}] ({item.get('id')})"
            s, f = common(item, where, C_MITIGATION, "mitigation")
            uses = f.objs("techniques")
            for st in f.items("ml-lifecycle"):
                if isinstance(st, str):
                    add(s, P_LIFECYCLE_STAGE, b.concept(stage_base, C_LIFECYCLE_STAGE, st))
                elif isinstance(st, dict) and "id" in st and "use" in st:
                    # ATLAS 5.6.0 quirk: AML.M0018 and AML.M0034 have a mis-indented technique use
                    # ({id, use}) inside ml-lifecycle; it is a technique use, so it is kept as one.
                    uses = [*uses, st]
                    b.skipped["technique use misplaced in ml-lifecycle (recovered)"] += 1
                else:
                    raise f.fail("ml-lifecycle", "a list of strings")
            for cat in f.texts("category"):
                add(s, P_CATEGORY, Literal(cat))
            for k, use in enumerate(uses):
                uf = Fields(use, f"{where} techniques[{k}]")
                tech = ref(uf, uf.req_text("id"), where)
                add(s, P_MITIGATES, tech)
                b.counts["mitigates"] += 1
                text = uf.text("use")
                if text:
                    r = b.iri(f"{ATLAS[f.req_text('id')]}/mitigates/{uf.req_text('id')}")
                    b.relationship(r, s, tech, "mitigates")
                    add(r, DCT_DESCRIPTION, Literal(text.strip()))
    for j, cs in enumerate(top.objs("case-studies")):
        where = f"{location}: case-studies[{j}] ({cs.get('id')})"
        s, f = common(cs, where, C_CASE_STUDY, "case-study")
        summary = f.text("summary")
        if summary:
            add(s, DCT_DESCRIPTION, Literal(summary))
        for key, p in (("case-study-type", P_CASE_STUDY_TYPE), ("actor", P_ACTOR), ("target", P_TARGET)):
            v = f.text(key)
            if v:
                add(s, p, Literal(v))
        d = _date(b, cs.get("incident-date"))
        if d is not None:
            add(s, P_INCIDENT_DATE, d)
        for k, st in enumerate(f.objs("procedure")):
            sf = Fields(st, f"{where} procedure[{k}]")
            node = b.iri(f"{ATLAS[f.req_text('id')]}/step/{k + 1}")
            add(s, P_PROCEDURE_STEP, node)
            add(node, RDF_TYPE, C_PROCEDURE_STEP)
            add(node, P_STEP_INDEX, Literal(k + 1))
            step_tech = sf.text("technique")
            if step_tech:
                add(node, P_TECHNIQUE, ref(sf, step_tech, where))
            step_tac = sf.text("tactic")
            if step_tac:
                add(node, P_TACTIC, ref(sf, step_tac, where))
            step_text = sf.text("description")
            if step_text:
                add(node, DCT_DESCRIPTION, Literal(step_text))
        for cite in f.objs("references"):
            url = cite.get("url")
            if isinstance(url, str) and url:
                b.see_also(s, url)
    if not b.counts.get("technique"):
        raise ImportFailed(f"{location}: no ATLAS techniques found", hint="pass dist/ATLAS.yaml")
    return Release.built(b, SOURCE, ver, "ATLAS YAML")


# -- the STIX 2.1 form -------------------------------------------------------------------------------
ATLAS_SOURCE_NAMES = frozenset({"mitre-atlas"})
STIX_KINDS: dict[str, tuple[str, NamedNode]] = {
    "x-mitre-tactic": ("tactic", C_TACTIC),
    "attack-pattern": ("technique", C_TECHNIQUE),
    "course-of-action": ("mitigation", C_MITIGATION),
}
STIX_METADATA = frozenset({"identity", "marking-definition", "x-mitre-collection", "x-mitre-matrix"})
_PAGES = {"tactic": "tactics/", "technique": "techniques/", "mitigation": "mitigations/"}
_MATRIX_VERSION = re.compile(r"ATLAS (\d+\.\d+(?:\.\d+)?)")


def _stix_date(b: GraphBuilder, text: str) -> Literal:
    """A STIX timestamp as the ``xsd:date`` ATLAS.yaml gives (ATLAS dates its objects by day; the bundle's
    times are all midnight UTC, written by atlas-navigator-data from the YAML's dates)."""
    return b.dated(text[:10] if len(text) > 10 and text[10] == "T" else text, XSD_DATE)


def parse_atlas_stix(data: bytes, location: str, version: str | None = None) -> Release:
    """Parse the ATLAS STIX 2.1 bundle into the same quads as :func:`parse_atlas` makes of the matching
    ``ATLAS.yaml``, for what the bundle holds: tactics, techniques (sub-technique links from
    ``subtechnique-of``, tactics from ``kill_chain_phases``), mitigations and ``mitigates`` relationships
    (with their ``use`` text). The bundle has no case studies, maturity, lifecycle stages, categories or
    ATT&CK references, and no ATLAS version: ``version``, else a version in the ``x-mitre-matrix`` name
    (``ATLAS 4.5.0``, bundles before 5.x), else one in the file name."""
    doc = load_json(data, location)
    objs = objects_of(doc, location)
    del doc
    ident: dict[str, str] = {}  # STIX id -> ATLAS id
    kinds: dict[str, str] = {}  # STIX id -> STIX type
    kind_of_eid: dict[str, str] = {}  # ATLAS id -> STIX type
    tactic_by_short: dict[str, str] = {}
    matrix_version: str | None = None
    collection_version: str | None = None
    skipped_objects: dict[str, int] = {}
    for i, o in enumerate(objs):
        t = o["type"]
        where = f"{location}: object #{i} ({o['id']})"
        if t == "x-mitre-matrix":
            name = Fields(o, where).text("name")
            m = _MATRIX_VERSION.fullmatch(name or "")
            matrix_version = m.group(1) if m else matrix_version
            continue
        if t == "x-mitre-collection":
            collection_version = Fields(o, where).text("x_mitre_version")
            continue
        if t not in STIX_KINDS:
            continue
        eid, _url = external_id(o, ATLAS_SOURCE_NAMES, where)
        if not eid:  # an ATT&CK object of a combined ATLAS + ATT&CK bundle
            key = f"{t} (not ATLAS: no mitre-atlas external ID)"
            skipped_objects[key] = skipped_objects.get(key, 0) + 1
            continue
        ident[o["id"]] = eid
        kinds[o["id"]] = t
        kind_of_eid[eid] = t
        if t == "x-mitre-tactic":
            short = Fields(o, where).text("x_mitre_shortname")
            if short:
                tactic_by_short[short] = eid
    if "attack-pattern" not in kinds.values():
        raise ImportFailed(
            f"{location}: not an ATLAS STIX bundle (no attack-pattern with a mitre-atlas external ID)",
            hint="pass MITRE's dist/ATLAS.yaml or dist/stix-atlas.json; "
            "for ATT&CK use `threatgraph import attack`, for CAPEC `threatgraph import capec`",
        )
    ver = version or matrix_version or version_from_name(location.rsplit("/", 1)[-1])
    if not ver:
        said = f" (its x-mitre-collection says x_mitre_version {collection_version!r}, which " \
            "atlas-navigator-data sets to a fixed value, not the ATLAS release)" if collection_version else ""
        raise ImportFailed(
            f"{location}: the STIX bundle does not state its ATLAS version{said}",
            hint="pass --release-version, e.g. --release-version 5.6.0 (the `version:` of the matching "
            "ATLAS.yaml), so that both forms of one release are one release",
        )
    b = GraphBuilder(release_graph(SOURCE, ver), location)
    add = b.add
    b.skipped.update(skipped_objects)

    # Relationships first: sub-technique links and mitigation uses, keyed by ATLAS ids.
    parent_of: dict[str, str] = {}
    uses: list[tuple[str, str, str | None]] = []
    for i, o in enumerate(objs):
        if o["type"] != "relationship":
            continue
        f = Fields(o, f"{location}: object #{i} ({o['id']})")
        rtype = f.req_text("relationship_type")
        src, tgt = ident.get(f.req_text("source_ref")), ident.get(f.req_text("target_ref"))
        desc = f.text("description")
        if src is None or tgt is None:
            b.skipped["relationship (endpoint not an ATLAS object of the bundle)"] += 1
        elif rtype == "subtechnique-of":
            parent_of[src] = tgt
        elif rtype == "mitigates":
            uses.append((src, tgt, desc))
        else:
            b.skipped[f"relationship {rtype}"] += 1

    tactics_of: dict[str, list[str]] = {}
    for i, o in enumerate(objs):
        kind = kinds.get(o["id"])
        if kind is None:
            continue
        where = f"{location}: object #{i} ({o['id']})"
        f = Fields(o, where)
        eid = ident[o["id"]]
        label, cls = STIX_KINDS[kind]
        s = b.iri(ATLAS[eid])
        b.counts[label] += 1
        add(s, RDF_TYPE, cls)
        add(s, P_EXTERNAL_ID, Literal(eid))
        b.name_and_description(s, f)
        _eid, url = external_id(o, ATLAS_SOURCE_NAMES, where)
        b.see_also(s, url or ATLAS_SITE + _PAGES[label] + eid)
        for key, p in (("created", DCT_CREATED), ("modified", DCT_MODIFIED)):
            text = f.text(key)
            if text:
                add(s, p, _stix_date(b, text))
        if f.flag("x_mitre_deprecated") or f.flag("revoked"):
            add(s, P_DEPRECATED, TRUE)
        if kind == "x-mitre-tactic":
            add(s, RDF_TYPE, SKOS_CONCEPT)
        elif kind == "attack-pattern":
            phases: list[str] = []
            for ph in f.objs("kill_chain_phases"):
                pf = Fields(ph, where + " kill_chain_phases")
                tac = tactic_by_short.get(pf.text("phase_name") or "")
                if pf.text("kill_chain_name") != "mitre-atlas" or tac is None:
                    b.skipped["kill-chain-phase (not an ATLAS tactic of the bundle)"] += 1
                elif tac not in phases:
                    phases.append(tac)
            tactics_of[eid] = phases
    for i, o in enumerate(objs):  # techniques' links, once every technique's tactics are known
        if kinds.get(o["id"]) != "attack-pattern":
            continue
        eid = ident[o["id"]]
        s = b.iri(ATLAS[eid])
        flagged = Fields(o, f"{location}: object #{i} ({o['id']})").flag("x_mitre_is_subtechnique")
        parent = parent_of.get(eid)
        add(s, P_IS_SUB, TRUE if parent or flagged else FALSE)
        inherited: list[str] = []
        if parent is not None:
            add(s, P_SUB_OF, b.iri(ATLAS[parent]))
            inherited = tactics_of.get(parent, [])
        for tac in tactics_of[eid]:
            if tac in inherited:
                # atlas-navigator-data copies the parent's phases onto each sub-technique; ATLAS.yaml
                # gives sub-techniques no tactics, and neither does this import
                b.skipped["sub-technique tactic (the parent's, copied by the STIX generator)"] += 1
            else:
                add(s, P_TACTIC, b.iri(ATLAS[tac]))
    for src, tgt, desc in uses:
        if kind_of_eid.get(src) != "course-of-action" or kind_of_eid.get(tgt) != "attack-pattern":
            b.skipped["relationship mitigates (not mitigation -> technique)"] += 1
            continue
        s, tech = b.iri(ATLAS[src]), b.iri(ATLAS[tgt])
        add(s, P_MITIGATES, tech)
        b.counts["mitigates"] += 1
        if desc and desc.strip():
            r = b.iri(f"{ATLAS[src]}/mitigates/{tgt}")
            b.relationship(r, s, tech, "mitigates")
            add(r, DCT_DESCRIPTION, Literal(desc.strip()))
    return Release.built(b, SOURCE, ver, "ATLAS STIX 2.1")
