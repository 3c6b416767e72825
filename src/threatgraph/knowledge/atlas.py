"""MITRE ATLAS ``ATLAS.yaml`` → quads of one release graph (tactics, techniques, mitigations, cases)."""

from __future__ import annotations

import datetime as _dt
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
)
from threatgraph.knowledge.stix import Release, release_graph
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


def parse_atlas(
    data: bytes, location: str, version: str | None = None, progress: Progress | None = None
) -> Release:
    """Parse ``ATLAS.yaml`` (the ``dist/ATLAS.yaml`` of mitre-atlas/atlas-data)."""
    if progress:
        progress(f"parsing {location}")
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
