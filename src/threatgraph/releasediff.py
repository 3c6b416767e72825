"""What a knowledge update means for one model: ``threatgraph diff-release OLD NEW --model MODEL``.

The model is analysed twice with the public pipeline (:func:`threatgraph.analysis.pipeline.analyze`),
once against each side's knowledge (the side's ATT&CK release plus the same ATLAS and D3FEND files),
and the two sets of findings are compared:

* findings that appear or disappear, and findings that gain or lose techniques;
* techniques cited on the old side that the new release revokes (with the replacement it names,
  following a chain of revocations), deprecates or no longer contains — read from the new release
  itself (:func:`stix_status` for a file, :func:`store_status` for a release in a store), since the
  compiled knowledge view keeps only the techniques the mappings still cite;
* per technique cited on both sides: mitigations, D3FEND countermeasures and detections (detection
  strategies and data components) that appear or disappear;
* findings whose level (contextual risk level, else rule severity) or risk score changes.

What the update *introduces* — a finding that appears, a technique a finding gains that its
controls do not fully mitigate, a finding whose level rises — carries the (new) finding's level;
:func:`introduced_at` selects those at or above a level (``--fail-on``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threatgraph.analysis.findings import Finding, TechniqueView, technique_id
from threatgraph.analysis.rules import SEVERITIES
from threatgraph.errors import InputError
from threatgraph.knowledge.view import View
from threatgraph.store.base import Store

Status = tuple[str, str | None, str]
"""(``active``/``revoked``/``deprecated``/``removed``, replacement technique id or None, its label)."""


@dataclass
class Side:
    """The findings of one analysis of the model and the store they were read from."""

    label: str
    findings: list[Finding]
    status: dict[str, Status]
    """Technique id → status in this side's ATT&CK release of the techniques the *other* side cites
    (filled for NEW)."""
    labels: dict[str, str]
    source: str = "attack-enterprise"
    """The source of this side's ATT&CK release (``attack-enterprise``, ``attack-ics``)."""


def side_knowledge(spec: str, extra: Sequence[str] | None) -> list[str]:
    """Knowledge files of one side: the ATT&CK STIX file ``spec`` plus ``extra`` (default: the shared
    ATLAS and D3FEND files; CAPEC only serves the declared-threat comparison)."""
    from threatgraph.analysis.techniques import SHARED_FILES, knowledge_kind
    from threatgraph.resources import shared_data_dir

    path = Path(spec).expanduser()
    if not path.is_file():
        raise InputError(
            f"{spec}: no such file",
            hint="with --model, OLD and NEW are ATT&CK STIX bundles (e.g. enterprise-attack-17.1.stix20.json) "
            "or releases loaded in --store (e.g. attack-enterprise/17.1)",
        )
    if knowledge_kind(str(path)) != "attack":
        raise InputError(f"{spec}: not an ATT&CK STIX bundle", hint="OLD and NEW are the two ATT&CK releases to compare")
    if extra is None:
        d = shared_data_dir()
        if d is None or not d.is_dir():
            raise InputError(
                "no ATLAS and D3FEND files: the shared reference data directory is missing",
                hint="pass --knowledge ATLAS.yaml d3fend.ttl, or set THREATGRAPH_SHARED_DATA",
            )
        extra = [str(d / rel) for kind, rel in SHARED_FILES if kind not in ("attack", "capec")]
    for f in extra:
        if knowledge_kind(f) == "attack":
            raise InputError(f"--knowledge {f}: an ATT&CK bundle; the ATT&CK releases are OLD and NEW")
    return [str(path), *extra]


def store_view(store: Store, spec: str) -> tuple[View, str, str]:
    """The knowledge view of the ATT&CK release ``spec`` of ``store`` (e.g. ``attack-enterprise/17.1``)
    with the newest release of every other source the store holds; the release's ``source/version``
    and graph."""
    from threatgraph.knowledge.releases import releases, resolve_release
    from threatgraph.knowledge.view import KEPT_SOURCES, cached_view, compile_view, view_key

    graph = resolve_release(store, spec)
    infos = releases(store)
    chosen = next(i for i in infos if i.graph == graph)
    if chosen.source not in KEPT_SOURCES or not chosen.source.startswith("attack-"):
        raise InputError(f"{spec}: a {chosen.source} release", hint="OLD and NEW are the two ATT&CK releases to compare")
    newest = {i.source: i for i in infos if i.source in KEPT_SOURCES}  # sorted by version: the last one wins
    newest[chosen.source] = chosen
    pairs = sorted((i.graph, i.sha256) for i in newest.values())
    graphs = [g for g, _ in pairs]
    view = cached_view(view_key(pairs), graphs, lambda: compile_view(store, graphs))
    return view, f"{chosen.source}/{chosen.version}", graph


def _follow(start: str, revoked_by: dict[str, str], revoked: set[str]) -> str:
    """End of a chain of revocations (``revoked_by`` maps a revoked technique to its successor)."""
    current, seen = start, {start}
    while current in revoked and current in revoked_by and revoked_by[current] not in seen:
        current = revoked_by[current]
        seen.add(current)
    return current


def stix_status(path: str, ids: Sequence[str]) -> dict[str, Status]:
    """Status of the ATT&CK techniques ``ids`` in the STIX bundle ``path``, read from the bundle itself
    (the compiled knowledge view keeps only the techniques the mappings cite, so a technique the
    update deprecates or removes is not in it): revoked (with the end of the revoked-by chain),
    deprecated, active, or removed (not in the bundle)."""
    from threatgraph.errors import ImportFailed
    from threatgraph.knowledge.fetch import read_source
    from threatgraph.knowledge.rdfbuild import load_json
    from threatgraph.knowledge.stix import external_id, objects_of

    try:
        src = read_source(path)
        objs = objects_of(load_json(src.take(), path), path)
    except ImportFailed as err:
        raise InputError(str(err)) from err
    names = frozenset({"mitre-attack"})
    tid: dict[str, str] = {}
    label: dict[str, str] = {}
    flags: dict[str, set[str]] = {}
    revoked_by: dict[str, str] = {}
    for i, o in enumerate(objs):
        if o["type"] != "attack-pattern":
            continue
        eid, _ = external_id(o, names, f"{path}: object #{i}")
        if not eid:
            continue
        tid[o["id"]] = eid
        label[eid] = str(o.get("name", ""))
        state = "revoked" if o.get("revoked") is True else "deprecated" if o.get("x_mitre_deprecated") is True else "active"
        flags.setdefault(eid, set()).add(state)
    for o in objs:
        if o["type"] == "relationship" and o.get("relationship_type") == "revoked-by":
            a, b = tid.get(str(o.get("source_ref"))), tid.get(str(o.get("target_ref")))
            if a and b:
                revoked_by[a] = b
    revoked = {k for k, v in flags.items() if v == {"revoked"}}
    out: dict[str, Status] = {}
    for t in ids:
        st = flags.get(t)
        if not st:
            out[t] = ("removed", None, "")
        elif "active" in st:
            out[t] = ("active", None, "")
        elif t in revoked:
            end = _follow(t, revoked_by, revoked)
            out[t] = ("revoked", end, label.get(end, "")) if end != t else ("revoked", None, "")
        else:
            out[t] = ("deprecated", None, "")
    return out


def store_status(store: Store, graph: str, ids: Sequence[str]) -> dict[str, Status]:
    """:func:`stix_status` of the techniques ``ids`` in the release graph ``graph`` of ``store``."""
    from threatgraph.terms import ATTACK

    values = " ".join(f"<{ATTACK[t]}>" for t in ids if t.replace(".", "").isalnum())
    rows = store.select(
        f"""SELECT ?t ?revoked ?deprecated ?by ?label WHERE {{ VALUES ?t {{ {values} }} GRAPH <{graph}> {{
            ?t a ?cls . OPTIONAL {{ ?t kb:revoked ?revoked }} OPTIONAL {{ ?t kb:deprecated ?deprecated }}
            OPTIONAL {{ ?t kb:revokedBy ?by }} }} }}"""
    ) if values else []
    found: dict[str, tuple[bool, bool, str | None]] = {}
    for r in rows:
        found[r["t"].value] = ("revoked" in r and r["revoked"].value == "true",
                               "deprecated" in r and r["deprecated"].value == "true",
                               r["by"].value if "by" in r else None)
    out: dict[str, Status] = {}
    for t in ids:
        f = found.get(str(ATTACK[t]))
        if f is None:
            out[t] = ("removed", None, "")
        elif f[0]:
            current, seen = f[2], {str(ATTACK[t])}
            while current and current not in seen:
                seen.add(current)
                nxt = store.select(f"SELECT ?by WHERE {{ GRAPH <{graph}> {{ <{current}> kb:revoked true ; kb:revokedBy ?by }} }}")
                if not nxt:
                    break
                current = nxt[0]["by"].value
            lab = store.select(f"SELECT ?l WHERE {{ GRAPH <{graph}> {{ <{current}> rdfs:label ?l }} }} LIMIT 1") if current else []
            out[t] = ("revoked", technique_id(current) if current else None, lab[0]["l"].value if lab else "")
        elif f[1]:
            out[t] = ("deprecated", None, "")
        else:
            out[t] = ("active", None, "")
    return out


def analyse_side(models: Sequence[str], knowledge: Sequence[str] | View, label: str) -> tuple[Side, Store]:
    """Run the pipeline for one side (knowledge files or a compiled view); return its findings and store."""
    from threatgraph.analysis.engine import labels_of
    from threatgraph.analysis.findings import findings_of
    from threatgraph.analysis.pipeline import analyze

    if isinstance(knowledge, View):
        a = analyze(list(models), view=knowledge)
    else:
        a = analyze(list(models), knowledge=list(knowledge))
    labels = labels_of(a.store, complete=False)
    attack = sorted(src for src in a.releases if src.startswith("attack-"))
    side = Side(label, findings_of(a, labels), {}, labels, attack[0] if attack else "attack-enterprise")
    return side, a.store


def _resolve(spec: str, knowledge: Sequence[str] | None, store: Store | None) -> tuple[list[str] | View, str, str]:
    """(knowledge files or view, label, release graph in ``store`` or "" for a file)."""
    if Path(spec).expanduser().is_file() or store is None or spec.lower().endswith((".json", ".json.gz")):
        return side_knowledge(spec, knowledge), Path(spec).name, ""
    if knowledge is not None:
        raise InputError(
            f"--knowledge applies to ATT&CK files; the release {spec} is analysed with the store's ATLAS and D3FEND",
            hint="pass OLD and NEW as files, or leave out --knowledge",
        )
    return store_view(store, spec)


def compare_model(
    models: Sequence[str],
    old: str,
    new: str,
    *,
    knowledge: Sequence[str] | None = None,
    store: Store | None = None,
) -> dict[str, Any]:
    """The diff of the findings of ``models`` between ATT&CK releases ``old`` and ``new`` (JSON-ready).

    A side is an ATT&CK STIX file, analysed with ``knowledge`` (ATLAS and D3FEND files; default the
    shared reference data), or a release loaded in ``store`` (``source/version``), analysed with the
    newest release of every other source in that store.
    """
    old_k, old_label, _ = _resolve(old, knowledge, store)
    new_k, new_label, new_graph = _resolve(new, knowledge, store)
    old_side, _ = analyse_side(models, old_k, old_label)
    new_side, _ = analyse_side(models, new_k, new_label)
    cited = sorted({t.id for f in old_side.findings for t in f.techniques
                    if t.release.split("/", 1)[0] == new_side.source})
    if store is not None and new_graph:
        new_side.status = store_status(store, new_graph, cited)
    else:
        new_side.status = stix_status(new, cited)
    return diff_sides(old_side, new_side, models)


def _brief(f: Finding) -> dict[str, Any]:
    return {"finding": f.iri, "rule": f.rule_id, "threat": f.threat, "focus": f.focus_label, "level": f.level,
            "risk_score": f.risk_score}


def _tech(t: TechniqueView) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "label": t.label, "status": t.status}
    if t.replaces:
        out["replaces"] = t.replaces
    return out


def _pairs(items: Sequence[tuple[str, ...]]) -> dict[str, str]:
    return {x[0] if x[0] != "data component" else f"data component: {x[1]}": x[1] for x in items}


def _set_change(old: dict[str, str], new: dict[str, str]) -> dict[str, list[dict[str, str]]] | None:
    """Items added and removed; ``changed`` when an item keeps its id but not its label (a detection
    strategy with other analytics)."""
    added = [{"id": k, "label": new[k]} for k in sorted(set(new) - set(old))]
    removed = [{"id": k, "label": old[k]} for k in sorted(set(old) - set(new))]
    changed = [{"id": k, "old": old[k], "new": new[k]} for k in sorted(set(old) & set(new)) if old[k] != new[k]]
    if not (added or removed or changed):
        return None
    out = {"added": added, "removed": removed}
    if changed:
        out["changed"] = changed
    return out


def diff_sides(old: Side, new: Side, models: Sequence[str] = ()) -> dict[str, Any]:
    """Compare two analyses of the same model (see the module docstring)."""
    rank = {s: i + 1 for i, s in enumerate(SEVERITIES)}
    olds = {f.iri: f for f in old.findings}
    news = {f.iri: f for f in new.findings}
    findings_added = [_brief(news[i]) for i in sorted(set(news) - set(olds))]
    findings_removed = [_brief(olds[i]) for i in sorted(set(olds) - set(news))]
    introduced: list[dict[str, Any]] = [
        {"kind": "finding", "level": x["level"], "finding": x["finding"], "rule": x["rule"], "focus": x["focus"]}
        for x in findings_added
    ]
    changed: list[dict[str, Any]] = []
    risk: list[dict[str, Any]] = []
    for iri in sorted(set(olds) & set(news)):
        fo, fn = olds[iri], news[iri]
        to = {t.id: t for t in fo.techniques}
        tn = {t.id: t for t in fn.techniques}
        gained = [_tech(tn[k]) for k in sorted(set(tn) - set(to))]
        lost = [_tech(to[k]) for k in sorted(set(to) - set(tn))]
        if gained or lost:
            changed.append({**_brief(fn), "gained": gained, "lost": lost})
        for g in gained:
            if g["status"] != "mitigated":
                introduced.append({"kind": "technique", "level": fn.level, "finding": iri, "rule": fn.rule_id,
                                   "focus": fn.focus_label, "technique": g["id"]})
        if fo.level != fn.level or fo.risk_score != fn.risk_score or fo.control_status != fn.control_status:
            risk.append({**_brief(fn), "old_level": fo.level, "new_level": fn.level, "old_score": fo.risk_score,
                         "new_score": fn.risk_score, "old_control_status": fo.control_status,
                         "new_control_status": fn.control_status})
            if rank.get(fn.level, 0) > rank.get(fo.level, 0):
                introduced.append({"kind": "risk", "level": fn.level, "finding": iri, "rule": fn.rule_id,
                                   "focus": fn.focus_label})
    # techniques: old side's cited techniques, their status in the new release, and what the knowledge
    # says of each technique cited on both sides
    tech_old = {t.id: t for f in old.findings for t in f.techniques}
    tech_new = {t.id: t for f in new.findings for t in f.techniques}
    n_findings: dict[str, int] = {}
    for f in old.findings:
        for t in f.techniques:
            n_findings[t.id] = n_findings.get(t.id, 0) + 1
    status: dict[str, list[dict[str, Any]]] = {"revoked": [], "deprecated": [], "removed": []}
    for tid in sorted(tech_old):
        t = tech_old[tid]
        st, by, by_label = new.status.get(tid, ("active", None, ""))
        if st == "active":
            continue
        entry: dict[str, Any] = {"id": tid, "label": t.label, "findings": n_findings.get(tid, 0)}
        if st == "revoked":
            entry["replacement"] = by
            entry["replacement_label"] = by_label
        status[st].append(entry)
    per_tech: dict[str, dict[str, Any]] = {}
    for tid in sorted(set(tech_old) & set(tech_new)):
        a, b = tech_old[tid], tech_new[tid]
        changes: dict[str, Any] = {}
        for name, x, y in (
            ("mitigations", _pairs(a.mitigations), _pairs(b.mitigations)),
            ("countermeasures", _pairs(a.countermeasures), _pairs(b.countermeasures)),
            ("detections", _pairs(a.detections), _pairs(b.detections)),
        ):
            ch = _set_change(x, y)
            if ch:
                changes[name] = ch
        if changes:
            per_tech[tid] = {"label": b.label, **changes}
    introduced.sort(key=lambda x: (-rank.get(x["level"], 0), x["focus"], x["rule"], x.get("technique", "")))
    return {
        "models": [str(m) for m in models],
        "old": old.label,
        "new": new.label,
        "findings": {"old": len(olds), "new": len(news), "added": findings_added, "removed": findings_removed,
                     "changed": changed},
        "techniques": status,
        "knowledge": per_tech,
        "risk": risk,
        "introduced": introduced,
    }


def introduced_at(diff: dict[str, Any], level: str) -> list[dict[str, Any]]:
    """What the update introduces at or above ``level`` (a severity name)."""
    if level not in SEVERITIES:
        raise InputError(f"unknown level {level!r}", hint=f"one of {', '.join(SEVERITIES)}")
    limit = SEVERITIES.index(level)
    return [x for x in diff["introduced"] if x["level"] in SEVERITIES and SEVERITIES.index(x["level"]) >= limit]


def is_empty(diff: dict[str, Any]) -> bool:
    """True when the update changes nothing for the model."""
    f = diff["findings"]
    return not (f["added"] or f["removed"] or f["changed"] or any(diff["techniques"].values())
                or diff["knowledge"] or diff["risk"])


# -- rendering ------------------------------------------------------------------------------------------
def render(diff: dict[str, Any], fmt: str) -> str:
    """The model diff as ``json``, ``markdown`` or a plain ``table``."""
    import json

    if fmt == "json":
        return json.dumps(diff, indent=2, ensure_ascii=False)
    md = fmt == "markdown"
    out: list[str] = []

    def head(text: str) -> None:
        out.append(f"\n## {text}\n" if md else f"\n{text.upper()}")

    def line(text: str) -> None:
        out.append(f"- {text}" if md else f"  {text}")

    f = diff["findings"]
    models = ", ".join(diff["models"])
    out.append(f"# {diff['old']} → {diff['new']} for {models}" if md else f"{diff['old']} -> {diff['new']} for {models}")
    tech = diff["techniques"]
    summary = (f"findings {f['old']} → {f['new']}: {len(f['added'])} added, {len(f['removed'])} removed, "
               f"{len(f['changed'])} with other techniques; techniques: {len(tech['revoked'])} revoked, "
               f"{len(tech['deprecated'])} deprecated, {len(tech['removed'])} removed; "
               f"{len(diff['knowledge'])} with other mitigations, countermeasures or detections; "
               f"{len(diff['risk'])} risk changes")
    out.append(("\n" if md else "") + summary)
    if is_empty(diff):
        out.append("\nNo changes for this model." if md else "\nno changes for this model")
        return "\n".join(out)
    if f["added"] or f["removed"]:
        head("Findings added and removed")
        for sign, xs in (("+", f["added"]), ("-", f["removed"])):
            for x in xs:
                line(f"{sign} [{x['level']}] {x['rule']} {x['threat']} on {x['focus']}")
    if f["changed"]:
        head("Findings gaining or losing techniques")
        for x in f["changed"]:
            parts = [f"+{t['id']}" + (f" (replaces {t['replaces']})" if "replaces" in t else "") for t in x["gained"]]
            parts += [f"-{t['id']}" for t in x["lost"]]
            line(f"[{x['level']}] {x['rule']} on {x['focus']}: {', '.join(parts)}")
    if any(tech.values()):
        head("Cited techniques revoked, deprecated or removed")
        for x in tech["revoked"]:
            rep = f"{x['replacement']} {x['replacement_label']}".strip() if x["replacement"] else "nothing"
            line(f"{x['id']} {x['label']}: revoked, replaced by {rep} ({x['findings']} finding(s))")
        for key in ("deprecated", "removed"):
            for x in tech[key]:
                line(f"{x['id']} {x['label']}: {key} ({x['findings']} finding(s))")
    for name in ("mitigations", "countermeasures", "detections"):
        rows = [(tid, e) for tid, e in diff["knowledge"].items() if name in e]
        if not rows:
            continue
        head(name.capitalize())
        for tid, e in rows:
            ch = e[name]
            if name == "detections":
                line(f"{tid} {e['label']}: {len(ch['added'])} added, {len(ch['removed'])} removed"
                     + (f", {len(ch['changed'])} changed" if ch.get("changed") else ""))
                for x in ch["added"]:
                    out.append(f"  - + {x['id']} {x['label']}" if md else f"      + {x['id']} {x['label']}")
                for x in ch["removed"]:
                    out.append(f"  - - {x['id']}" if md else f"      - {x['id']}")
                for x in ch.get("changed", []):
                    out.append(f"  - ~ {x['id']} {x['new']}" if md else f"      ~ {x['id']} {x['new']}")
            else:
                line(f"{tid} {e['label']}: " + "; ".join(
                    [f"+{x['id']} {x['label']}" for x in ch["added"]] + [f"-{x['id']} {x['label']}" for x in ch["removed"]]
                    + [f"~{x['id']} {x['old']} → {x['new']}" for x in ch.get("changed", [])]
                ))
    if diff["risk"]:
        head("Residual risk")
        for x in diff["risk"]:
            line(f"{x['rule']} on {x['focus']}: {x['old_level']} ({x['old_score']}) → {x['new_level']} ({x['new_score']})"
                 + (f", controls {x['old_control_status']} → {x['new_control_status']}"
                    if x["old_control_status"] != x["new_control_status"] else ""))
    if diff["introduced"]:
        head("Introduced by the update")
        for x in diff["introduced"]:
            what = f"technique {x['technique']}" if x["kind"] == "technique" else x["kind"]
            line(f"[{x['level']}] {what}: {x['rule']} on {x['focus']}")
    return "\n".join(out)
