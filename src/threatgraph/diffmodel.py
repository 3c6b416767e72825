"""Diff two versions of a system model: elements, flows and attributes added, removed or changed, and
findings that appeared, disappeared or changed level (the contextual risk level where computed, else the severity) or residual risk.

Both versions are analysed with the same rules (any format the model loader reads: Turtle, OTM, Threat
Dragon, Threagile). Elements are matched by IRI, findings by their stable IRI (rule + focus + category).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyoxigraph import BlankNode, Literal, NamedNode

from threatgraph import sanitize
from threatgraph.analysis.engine import labels_of
from threatgraph.analysis.findings import findings_of
from threatgraph.analysis.pipeline import analyze
from threatgraph.analysis.rules import SEVERITIES
from threatgraph.export.context import finding_views, local_name
from threatgraph.terms import PREFIXES, RDF, TG, graph_iri

_KINDS = {TG.ExternalEntity: "external entity", TG.Process: "process", TG.DataStore: "data store", TG.DataFlow: "data flow"}
_LABEL_PREDICATES = {"http://www.w3.org/2000/01/rdf-schema#label", "http://www.w3.org/2004/02/skos/core#prefLabel"}


@dataclass
class FindingState:
    rule: str
    severity: str
    rank: int
    risk: float | None
    focus: str
    focus_label: str
    threat: str
    categories: list[str]
    level: str = ""
    """What users see and gate on: the contextual risk level where computed, else the severity."""
    mitigated_by: tuple[str, ...] = ()
    """The declared protective facts that mitigate it (a mitigated counterpart rule): never gated on."""


@dataclass
class Snapshot:
    """One analysed model version."""

    files: list[str]
    kinds: dict[str, str]
    labels: dict[str, str]
    facts: dict[str, dict[str, set[str]]]
    """Asserted model triples: subject IRI → predicate (CURIE) → values (CURIEs or literal text)."""
    findings: dict[str, FindingState]
    warnings: list[str] = field(default_factory=list)
    """What the loader and the engine noticed (schema deviations read anyway, undefined terms)."""


@dataclass
class Change:
    what: str
    """external entity, process, data store, data flow, or other (zones, data assets, …)."""
    iri: str
    label: str
    change: str
    """added, removed or changed."""
    details: list[str] = field(default_factory=list)


@dataclass
class FindingChange:
    iri: str
    rule: str
    element: str
    element_iri: str
    threat: str
    categories: list[str]
    change: str
    """appeared, disappeared or changed."""
    old_severity: str | None = None
    new_severity: str | None = None
    old_risk: float | None = None
    new_risk: float | None = None
    old_level: str | None = None
    new_level: str | None = None
    """The finding's level (as ``analyze`` shows and gates on it): risk level where computed, else severity."""
    mitigated_by: tuple[str, ...] = ()
    """The declared protective facts that mitigate the new version of the finding (not gated on, as in analyze)."""


@dataclass
class ModelDiff:
    old_files: list[str]
    new_files: list[str]
    elements: list[Change] = field(default_factory=list)
    flows: list[Change] = field(default_factory=list)
    other: list[Change] = field(default_factory=list)
    findings: list[FindingChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """The warnings of both analyses (old first)."""

    def new_at_or_above(self, level: str) -> list[FindingChange]:
        """Findings that appeared at or above ``level``, or rose to it from below (on the finding level, as
        ``analyze --fail-on`` gates; a threat declared facts mitigate never counts: adding encryption to a flow
        replaces its open threats with mitigated ones, which must not fail the gate)."""
        limit = SEVERITIES.index(level) + 1
        out = []
        for fc in self.findings:
            if fc.mitigated_by:
                continue
            new = SEVERITIES.index(fc.new_level) + 1 if fc.new_level in SEVERITIES else 0
            old = SEVERITIES.index(fc.old_level) + 1 if fc.old_level in SEVERITIES else 0
            if (fc.change == "appeared" and new >= limit) or (fc.change == "changed" and new >= limit > old):
                out.append(fc)
        return out

    def at_or_above(self, level: str) -> ModelDiff:
        """The same diff listing only findings whose old or new level is at or above ``level``."""
        limit = SEVERITIES.index(level)
        keep = [fc for fc in self.findings
                if max((SEVERITIES.index(s) for s in (fc.old_level, fc.new_level) if s in SEVERITIES), default=-1) >= limit]
        return ModelDiff(self.old_files, self.new_files, self.elements, self.flows, self.other, keep, self.warnings)

    @property
    def empty(self) -> bool:
        return not (self.elements or self.flows or self.other or self.findings)


def curie(iri: str) -> str:
    """A prefixed name for ``iri`` where a threatgraph prefix fits, else ``<iri>``.

    >>> curie("https://w3id.org/threatgraph/ontology#authenticated")
    'tg:authenticated'
    """
    best = ""
    for p, ns in PREFIXES.items():
        if iri.startswith(ns) and len(ns) > len(best):
            best, name = ns, p
    return f"{name}:{iri[len(best):]}" if best else f"<{iri}>"


def snapshot(paths: Sequence[str | Path], ml_classes: str | Path | None = None) -> Snapshot:
    """Analyse one model version and keep what the diff compares (``ml_classes``: as ``analyze --ml-classes``)."""
    analysis = analyze(list(paths), validate=False, ml_classes=ml_classes)
    store = analysis.store
    labels = labels_of(store, complete=False)
    findings = findings_of(analysis, labels)
    views = finding_views(store, findings, labels, analysis.rules)
    kinds: dict[str, str] = {}
    for r in store.select("SELECT ?e ?k WHERE { VALUES ?k { tg:ExternalEntity tg:Process tg:DataStore tg:DataFlow } ?e a ?k }"):
        if isinstance(r["e"], NamedNode):
            kinds.setdefault(r["e"].value, _KINDS[r["k"].value])
    facts: dict[str, dict[str, set[str]]] = {}
    for q in store.quads(graph_iri("model")):
        s, o = q.subject, q.object
        if not isinstance(s, NamedNode) or isinstance(o, BlankNode):
            continue
        value = curie(o.value) if isinstance(o, NamedNode) else o.value if isinstance(o, Literal) else str(o)
        facts.setdefault(s.value, {}).setdefault(curie(q.predicate.value), set()).add(value)
    states = {
        v.f.iri: FindingState(v.f.rule_id, v.f.severity, v.f.severity_rank, v.residual_risk, v.f.focus, v.f.focus_label,
                              v.f.threat, [f"{c[2]}: {c[1]}" for c in v.f.categories], v.f.level,
                              tuple(getattr(v.f, "mitigated_by", ())))
        for v in views
    }
    return Snapshot(list(analysis.model_files), kinds, labels, facts, states, list(analysis.warnings))


def _label(iri: str, *snaps: Snapshot) -> str:
    for s in snaps:
        if iri in s.labels:
            return " ".join(s.labels[iri].split())
    return local_name(iri)


def diff_snapshots(old: Snapshot, new: Snapshot) -> ModelDiff:
    """Compare two analysed versions."""
    d = ModelDiff(old.files, new.files, warnings=old.warnings + [w for w in new.warnings if w not in old.warnings])
    for iri in sorted(set(old.facts) | set(new.facts)):
        what = new.kinds.get(iri) or old.kinds.get(iri) or "other"
        label = _label(iri, new, old)
        a, b = old.facts.get(iri), new.facts.get(iri)
        if a is None:
            ch = Change(what, iri, label, "added", [f"{p} {', '.join(sorted(v))}" for p, v in sorted((b or {}).items())
                                                    if curie(RDF.type) != p or what == "other"])
        elif b is None:
            ch = Change(what, iri, label, "removed")
        else:
            details = []
            for p in sorted(set(a) | set(b)):
                va, vb = a.get(p, set()), b.get(p, set())
                if va != vb:
                    details.append(f"{p}: {', '.join(sorted(va)) or '(none)'} → {', '.join(sorted(vb)) or '(none)'}")
            if not details:
                continue
            ch = Change(what, iri, label, "changed", details)
        (d.flows if what == "data flow" else d.other if what == "other" else d.elements).append(ch)
    for iri in sorted(set(old.findings) | set(new.findings)):
        fa, fb = old.findings.get(iri), new.findings.get(iri)
        f = fb or fa
        assert f is not None
        fc = FindingChange(iri, f.rule, " ".join(f.focus_label.split()), f.focus, f.threat, f.categories, "",
                           fa.severity if fa else None, fb.severity if fb else None,
                           fa.risk if fa else None, fb.risk if fb else None,
                           fa.level if fa else None, fb.level if fb else None, fb.mitigated_by if fb else ())
        if fa is None:
            fc.change = "appeared"
        elif fb is None:
            fc.change = "disappeared"
        elif fa.severity != fb.severity or fa.risk != fb.risk or fa.level != fb.level:
            fc.change = "changed"
        else:
            continue
        d.findings.append(fc)
    d.findings.sort(key=lambda fc: (("appeared", "changed", "disappeared").index(fc.change),
                                    -(SEVERITIES.index(fc.new_level or fc.old_level or "info")), fc.element.lower(), fc.rule))
    return d


def diff_models(old: Sequence[str | Path], new: Sequence[str | Path],
                ml_classes: str | Path | None = None) -> ModelDiff:
    """Analyse both versions (imported formats classed with the same ``ml_classes`` phrases) and compare them."""
    return diff_snapshots(snapshot(old, ml_classes), snapshot(new, ml_classes))


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
def _sev(fc: FindingChange) -> str:
    if fc.change == "changed" and fc.old_level != fc.new_level:
        return f"{fc.old_level} → {fc.new_level}"
    return str(fc.new_level or fc.old_level)


def _risk(fc: FindingChange) -> str:
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:g}"

    if fc.change == "appeared":
        return fmt(fc.new_risk)
    if fc.change == "disappeared":
        return fmt(fc.old_risk)
    return f"{fmt(fc.old_risk)} → {fmt(fc.new_risk)}" if fc.old_risk != fc.new_risk else fmt(fc.new_risk)


def _summary(d: ModelDiff) -> str:
    n = {c: sum(1 for f in d.findings if f.change == c) for c in ("appeared", "disappeared", "changed")}
    return (f"{len(d.elements)} element and {len(d.flows)} flow changes, {len(d.other)} other resources changed; "
            f"findings: {n['appeared']} appeared, {n['disappeared']} disappeared, {n['changed']} changed")


def render_table(d: ModelDiff) -> str:
    """Plain-text report."""
    out = [f"Model diff: {', '.join(d.old_files)} → {', '.join(d.new_files)}", ""]
    for title, changes in (("Elements", d.elements), ("Data flows", d.flows), ("Other resources", d.other)):
        if not changes:
            continue
        out.append(f"{title}:")
        for c in changes:
            sign = {"added": "+", "removed": "-", "changed": "~"}[c.change]
            out.append(f"  {sign} {c.label} ({c.what}) <{c.iri}> {c.change}")
            out += [f"      {x}" for x in c.details]
        out.append("")
    if d.findings:
        out.append("Findings:")
        for fc in d.findings:
            sign = {"appeared": "+", "disappeared": "-", "changed": "~"}[fc.change]
            out.append(f"  {sign} [{_sev(fc)}] {fc.element}: {fc.threat} ({fc.rule}; {', '.join(fc.categories)}) "
                       f"risk {_risk(fc)}")
        out.append("")
    out.append(_summary(d) if not d.empty else "No differences.")
    return sanitize.terminal("\n".join(out) + "\n")


def _md(text: str) -> str:
    return sanitize.markdown(text)


def render_markdown(d: ModelDiff) -> str:
    """Markdown for a pull-request comment."""
    out = ["## Threat model changes", "", f"`{', '.join(d.old_files)}` → `{', '.join(d.new_files)}`: {_summary(d)}.", ""]
    appeared = [f for f in d.findings if f.change == "appeared"]
    if appeared:
        out += ["### New findings", "", "| Level | Risk | Element | Threat | Category | Rule |", "|---|---|---|---|---|---|"]
        out += [f"| {fc.new_level} | {_risk(fc)} | {_md(fc.element)} | {_md(fc.threat)} | {_md(', '.join(fc.categories))} | "
                f"{fc.rule} |" for fc in appeared]
        out.append("")
    changed = [f for f in d.findings if f.change == "changed"]
    if changed:
        out += ["### Findings with changed level or risk", "", "| Level | Risk | Element | Threat | Rule |",
                "|---|---|---|---|---|"]
        out += [f"| {_sev(fc)} | {_risk(fc)} | {_md(fc.element)} | {_md(fc.threat)} | {fc.rule} |" for fc in changed]
        out.append("")
    gone = [f for f in d.findings if f.change == "disappeared"]
    if gone:
        out += ["### Resolved findings", "", "| Level | Element | Threat | Rule |", "|---|---|---|---|"]
        out += [f"| {fc.old_level} | {_md(fc.element)} | {_md(fc.threat)} | {fc.rule} |" for fc in gone]
        out.append("")
    for title, changes in (("Elements", d.elements), ("Data flows", d.flows), ("Other resources", d.other)):
        if not changes:
            continue
        out += [f"### {title}", "", "| Change | Name | Kind | Details |", "|---|---|---|---|"]
        out += [f"| {c.change} | {_md(c.label)} | {c.what} | {_md('; '.join(c.details))} |" for c in changes]
        out.append("")
    return "\n".join(out)


def render_json(d: ModelDiff) -> str:
    doc = {"old": d.old_files, "new": d.new_files, "summary": _summary(d), **{k: v for k, v in asdict(d).items()
                                                                            if k not in ("old_files", "new_files")}}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"table": render_table, "markdown": render_markdown, "json": render_json}
