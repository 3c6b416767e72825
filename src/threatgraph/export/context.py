"""What every export renders from: the findings (read from the finding graph), the system model's
elements, flows, zones and data assets, and the declared threats compared with the findings.

Techniques, mitigations and residual risk are read generically from the finding graph (any ATT&CK /
ATLAS IRI or numeric ``…risk…`` literal on a finding or its rule), with the rule headers' ``attack`` /
``atlas`` ids as a fallback, so the exports show whatever the engine records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pyoxigraph import BlankNode, Literal, NamedNode

from threatgraph.analysis.findings import Finding
from threatgraph.analysis.rules import SEVERITIES, Rule
from threatgraph.store import Store
from threatgraph.terms import ATLAS, ATTACK, RDF, RDFS, TG, graph_iri

TECHNIQUE_ID = re.compile(r"^(T\d{4}(\.\d{3})?|AML\.T\d{4}(\.\d{3})?)$")
MITIGATION_ID = re.compile(r"^(M\d{4}|AML\.M\d{4})$")
_KNOWN = {RDF.type, TG.byRule, TG.ruleId, TG.focus, TG.severity, TG.threat, TG.explanation, TG.category,
          TG.evidence, RDFS.label, TG.ruleSource}


@dataclass
class FindingView:
    """A finding with what the finding graph adds beyond :class:`Finding`."""

    f: Finding
    techniques: list[str] = field(default_factory=list)
    """ATT&CK / ATLAS technique ids (``T1190``, ``AML.T0051``)."""
    mitigations: list[tuple[str, str]] = field(default_factory=list)
    """(id or IRI, label)."""
    residual_risk: float | None = None
    risk_level: str = ""
    control_status: str = ""
    """mitigated, partly mitigated, unmitigated (when the finding graph says)."""
    controls: list[str] = field(default_factory=list)
    """Declared controls that implement a mitigation of, or cover, the finding."""
    residual_techniques: list[str] | None = None
    """Techniques not fully mitigated (None: not known, all count)."""
    extra: list[tuple[str, str]] = field(default_factory=list)
    """(property label, value label) of other properties the finding graph holds."""

    @property
    def risk_or_rank(self) -> float:
        return self.residual_risk if self.residual_risk is not None else float(self.f.severity_rank)


@dataclass
class ElementView:
    iri: str
    label: str
    kind: str
    """ExternalEntity, Process, DataStore (local name)."""
    ml_classes: list[str] = field(default_factory=list)
    zone: str | None = None
    description: str = ""
    controls: list[str] = field(default_factory=list)


@dataclass
class FlowView:
    iri: str
    label: str
    source: str
    target: str
    protocol: str = ""
    data: list[str] = field(default_factory=list)
    crosses: bool = False


@dataclass
class ModelView:
    elements: dict[str, ElementView] = field(default_factory=dict)
    flows: dict[str, FlowView] = field(default_factory=dict)
    zones: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    """zone IRI → (label, trust level)."""
    assets: list[tuple[str, str, str]] = field(default_factory=list)
    """(IRI, label, classification label)."""
    systems: list[tuple[str, str, str]] = field(default_factory=list)
    """(IRI, label, description)."""


_REJECTED_STATES = frozenset({"notapplicable", "na", "rejected", "falsepositive"})


@dataclass
class DeclaredThreat:
    iri: str
    element: str
    element_label: str
    title: str
    categories: list[tuple[str, str]]
    severity: str
    status: str
    mitigation: str
    matched_by: list[str] = field(default_factory=list)
    """Rule ids of the derived findings of the same category on the same element."""

    @property
    def rejected(self) -> bool:
        """People marked the threat not applicable (TMT/Threat Dragon ``NotApplicable``, "N/A", rejected).

        >>> DeclaredThreat("t", "e", "E", "T", [], "", "NotApplicable", "").rejected
        True
        >>> DeclaredThreat("t", "e", "E", "T", [], "", "Mitigated", "").rejected
        False
        """
        return re.sub(r"[^a-z]", "", self.status.lower()) in _REJECTED_STATES


@dataclass
class ReportContext:
    """Everything the exports render."""

    title: str
    findings: list[FindingView]
    model: ModelView
    model_files: list[str]
    warnings: list[str]
    declared: list[DeclaredThreat]
    labels: dict[str, str]
    attack_paths: list[tuple[str, str]] = field(default_factory=list)
    """(label, description) of attack paths in the finding graph, if the engine records any."""
    remediation: dict[str, str] = field(default_factory=dict)
    """Rule id → the rule's ``remediation`` header text (what to do without knowledge)."""

    def element_label(self, iri: str) -> str:
        if iri in self.model.elements:
            return self.model.elements[iri].label
        if iri in self.model.flows:
            return self.model.flows[iri].label
        return self.labels.get(iri, local_name(iri))

    def by_focus(self) -> dict[str, list[FindingView]]:
        out: dict[str, list[FindingView]] = {}
        for fv in self.findings:
            out.setdefault(fv.f.focus, []).append(fv)
        return out

    def added(self) -> list[FindingView]:
        """Derived findings whose (element, category) no declared threat names (when any are declared)."""
        if not self.declared:
            return []
        declared = {(d.element, c) for d in self.declared for c, _ in d.categories}
        return [fv for fv in self.findings if not any((fv.f.focus, c[0]) in declared for c in fv.f.categories)]


def local_name(iri: str) -> str:
    return re.split(r"[#/:]", iri.rstrip("/#"))[-1]


def technique_id(iri: str) -> str | None:
    """``T1190`` for ``…/attack/T1190``; None for other IRIs."""
    for ns in (ATTACK, ATLAS):
        if iri.startswith(ns):
            tail = iri[len(ns):]
            if TECHNIQUE_ID.match(tail):
                return tail
    return None


def mitigation_id(iri: str) -> str | None:
    for ns in (ATTACK, ATLAS):
        if iri.startswith(ns):
            tail = iri[len(ns):]
            if MITIGATION_ID.match(tail):
                return tail
    return None


def _num(lit: Literal) -> float | None:
    try:
        return float(lit.value)
    except ValueError:
        return None


def finding_views(store: Store, findings: Sequence[Finding], labels: Mapping[str, str],
                  rules: Iterable[Rule] = ()) -> list[FindingView]:
    """Wrap findings with the techniques, mitigations, residual risk and other facts of the finding graph."""
    g = graph_iri("findings")
    props: dict[str, list[tuple[str, object]]] = {}
    for q in store.quads(g):
        if isinstance(q.subject, (NamedNode, BlankNode)):
            props.setdefault(str(q.subject), []).append((q.predicate.value, q.object))
    by_rule = {r.id: r for r in rules}
    out = []
    for f in findings:
        fv = FindingView(f)
        own = props.get(f"<{f.iri}>", [])
        rule_node = next((o for p, o in own if p == TG.byRule and isinstance(o, NamedNode)), None)
        facts = list(own)
        if rule_node is not None:
            facts += [(p, o) for p, o in props.get(str(rule_node), []) if p not in _KNOWN]
        risk: tuple[int, float] | None = None
        for p, o in facts:
            if p in _KNOWN:
                continue
            lp = local_name(p).lower()
            if isinstance(o, (NamedNode, BlankNode)):
                # the object itself, and one hop into nodes the finding graph describes (applications, factors)
                inner = [(p, o)] + [(p2, o2) for p2, o2 in props.get(str(o), []) if isinstance(o2, NamedNode)]
                described = str(o) in props
                for p2, o2 in inner:
                    if not isinstance(o2, NamedNode):
                        continue
                    tid, mid = technique_id(o2.value), mitigation_id(o2.value)
                    if tid:
                        if tid not in fv.techniques:
                            fv.techniques.append(tid)
                    elif mid:
                        item = (mid, labels.get(o2.value, mid))
                        if item not in fv.mitigations:
                            fv.mitigations.append(item)
                    elif any(w in local_name(p2).lower() for w in ("mitigat", "countermeasure")):
                        item = (o2.value, labels.get(o2.value, local_name(o2.value)))
                        if item not in fv.mitigations:
                            fv.mitigations.append(item)
                if isinstance(o, NamedNode) and not described and technique_id(o.value) is None \
                        and mitigation_id(o.value) is None and "mitigat" not in lp:
                    fv.extra.append((labels.get(p, local_name(p)), labels.get(o.value, local_name(o.value))))
            elif isinstance(o, Literal):
                num = _num(o)
                if "risk" in lp and num is not None:
                    prio = 2 if "residual" in lp else 1 if "score" in lp else 0
                    if risk is None or prio > risk[0]:
                        risk = (prio, num)
                else:
                    fv.extra.append((labels.get(p, local_name(p)), o.value))
        fv.residual_risk = risk[1] if risk is not None else None
        _structured(fv)
        rule = by_rule.get(f.rule_id)
        if rule is not None and not getattr(f, "techniques", None):
            for t in (*rule.attack, *rule.atlas):
                if TECHNIQUE_ID.match(t) and t not in fv.techniques:
                    fv.techniques.append(t)
        fv.techniques.sort()
        fv.extra = sorted(set(fv.extra))
        out.append(fv)
    return out


def _structured(fv: FindingView) -> None:
    """Techniques, mitigations, controls and risk as :func:`read_findings` gives them (issue 4), when present."""
    f = fv.f
    views = getattr(f, "techniques", None) or []
    ids = [t.id for t in views if TECHNIQUE_ID.match(getattr(t, "id", ""))]
    if ids:
        fv.techniques = sorted(set(ids))
        fv.residual_techniques = sorted({t.id for t in views if getattr(t, "status", "") != "mitigated"} & set(ids))
    if views:
        fv.mitigations = []  # the structured view replaces the generic scan
    for t in views:
        for m in [*getattr(t, "mitigations", []), *((c[0], c[1]) for c in getattr(t, "countermeasures", []))]:
            if (m[0], m[1]) not in fv.mitigations:
                fv.mitigations.append((m[0], m[1]))
        for mid, control in getattr(t, "implemented", []):
            item = f"{control} ({mid})"
            if item not in fv.controls:
                fv.controls.append(item)
    for c in getattr(f, "covered_by", []):
        if c not in fv.controls:
            fv.controls.append(c)
    score = getattr(f, "risk_score", 0)
    # a baseline finding without techniques: the stored score is its element's context, not its own
    # risk (docs/risk.md, "The level of a finding"), so it is neither shown nor ranked as one
    own = bool(views) or not getattr(f, "baseline", False)
    if isinstance(score, (int, float)) and score > 0 and own:
        fv.residual_risk = float(score)
    level = getattr(f, "risk_level", "")
    if level and own:
        fv.risk_level = level
    elif level:
        fv.residual_risk = None
    status = getattr(f, "control_status", "")
    if status:
        fv.control_status = status
    fv.extra = [e for e in fv.extra if e[0] not in ("risk level", "riskLevel", "control status", "controlStatus")]


_ELEMENTS = """
SELECT ?e ?kind WHERE { VALUES ?kind { tg:ExternalEntity tg:Process tg:DataStore } ?e a ?kind . FILTER(isIRI(?e)) }
"""
_ML = "SELECT ?e ?c WHERE { GRAPH <%s> { ?e a ?c } FILTER(STRSTARTS(STR(?c), STR(tgml:))) }"
_FLOWS = """
SELECT ?f ?s ?t ?p ?d ?x WHERE { ?f a tg:DataFlow ; tg:source ?s ; tg:target ?t .
  OPTIONAL { ?f tg:protocol ?p } OPTIONAL { ?f tg:carries ?d } OPTIONAL { ?f tg:crossesBoundary ?x } }
"""
_ZONES = "SELECT ?z ?l WHERE { ?z a tg:TrustZone OPTIONAL { ?z tg:trustLevel ?l } }"
_IN_ZONE = "SELECT ?e ?z WHERE { GRAPH <%s> { ?e tg:inZone ?z } }"
_DESC = "SELECT ?e ?d WHERE { GRAPH <%s> { ?e dct:description ?d } }"
_CONTROLS = "SELECT ?e ?c WHERE { GRAPH <%s> { ?e tg:hasControl ?c } }"
_ASSETS = "SELECT ?a ?c WHERE { ?a a tg:DataAsset OPTIONAL { ?a tg:classification ?c } FILTER(isIRI(?a)) }"
_SYSTEMS = "SELECT ?s ?d WHERE { GRAPH <%s> { ?s a tg:System OPTIONAL { ?s dct:description ?d } } }"
_DECLARED = """
SELECT ?e ?t ?title ?cat ?sev ?status ?mit WHERE { GRAPH <%s> { ?e tg:declaredThreat ?t .
  OPTIONAL { ?t rdfs:label ?title } OPTIONAL { ?t tg:category ?cat } OPTIONAL { ?t tg:severity ?sev }
  OPTIONAL { ?t tg:threatStatus ?status } OPTIONAL { ?t tg:mitigationText ?mit } } }
"""


def model_view(store: Store, labels: Mapping[str, str]) -> ModelView:
    """Elements, flows, zones, data assets and systems of ``graph/model`` (kinds after reasoning)."""
    gm = graph_iri("model")
    mv = ModelView()

    def lab(iri: str) -> str:
        return labels.get(iri, local_name(iri))

    for r in store.select(_ELEMENTS):
        e, k = r["e"].value, local_name(r["kind"].value)
        mv.elements.setdefault(e, ElementView(e, lab(e), k))
    for r in store.select(_ML % gm):
        ev = mv.elements.get(r["e"].value)
        if ev is not None:
            ev.ml_classes.append(lab(r["c"].value))
    for r in store.select(_ZONES):
        lvl = r.get("l")
        mv.zones[r["z"].value] = (lab(r["z"].value), int(lvl.value) if isinstance(lvl, Literal) and lvl.value.lstrip("-").isdigit() else None)
    for r in store.select(_IN_ZONE % gm):
        ev = mv.elements.get(r["e"].value)
        if ev is not None and (ev.zone is None or r["z"].value < ev.zone):  # the same zone every run
            ev.zone = r["z"].value
    for r in store.select(_DESC % gm):
        ev = mv.elements.get(r["e"].value)
        if ev is not None and (not ev.description or r["d"].value < ev.description):
            ev.description = r["d"].value
    for r in store.select(_CONTROLS % gm):
        ev = mv.elements.get(r["e"].value)
        if ev is not None:
            ev.controls.append(lab(r["c"].value))
    for r in store.select(_FLOWS):
        f = r["f"].value
        fv = mv.flows.get(f)
        if fv is None:
            fv = mv.flows[f] = FlowView(f, lab(f), r["s"].value, r["t"].value)
        p, d, x = r.get("p"), r.get("d"), r.get("x")
        if isinstance(p, Literal) and (not fv.protocol or p.value < fv.protocol):
            fv.protocol = p.value
        if isinstance(d, NamedNode) and lab(d.value) not in fv.data:
            fv.data.append(lab(d.value))
        if isinstance(x, Literal) and x.value == "true":
            fv.crosses = True
    for r in store.select(_ASSETS):
        c = r.get("c")
        mv.assets.append((r["a"].value, lab(r["a"].value), lab(c.value) if isinstance(c, NamedNode) else ""))
    mv.assets = sorted(set(mv.assets), key=lambda a: a[1].lower())
    for r in store.select(_SYSTEMS % gm):
        d = r.get("d")
        mv.systems.append((r["s"].value, lab(r["s"].value), d.value if isinstance(d, Literal) else ""))
    for ev in mv.elements.values():
        ev.ml_classes.sort()
        ev.controls.sort()
    for fv in mv.flows.values():  # the store returns rows in no set order: the same diagram every run
        fv.data.sort()
    return mv


def declared_threats(store: Store, labels: Mapping[str, str], findings: Sequence[Finding]) -> list[DeclaredThreat]:
    """Declared threats of the model, each with the rules whose findings match it (same element, same category)."""
    gm = graph_iri("model")
    sev_names = {TG[name.capitalize()]: name for name in SEVERITIES}
    out: dict[str, DeclaredThreat] = {}
    for r in store.select(_DECLARED % gm):
        t = r["t"].value
        e = r["e"].value
        d = out.get(t)
        if d is None:
            title, sev, status, mit = (r.get(k) for k in ("title", "sev", "status", "mit"))
            d = out[t] = DeclaredThreat(
                t, e, labels.get(e, local_name(e)),
                title.value if title is not None else local_name(t), [],
                sev_names.get(sev.value, "") if sev is not None else "",
                status.value if status is not None else "",
                mit.value if mit is not None else "",
            )
        cat = r.get("cat")
        if isinstance(cat, NamedNode) and all(c != cat.value for c, _ in d.categories):
            d.categories.append((cat.value, labels.get(cat.value, local_name(cat.value))))
    index: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        for c in f.categories:
            index.setdefault((f.focus, c[0]), []).append(f.rule_id)
    for d in out.values():
        d.matched_by = sorted({rid for c, _ in d.categories for rid in index.get((d.element, c), [])})
    return sorted(out.values(), key=lambda d: (d.element_label.lower(), d.title.lower(), d.iri))


def attack_paths(store: Store, labels: dict[str, str] | None = None, findings: Sequence[Finding] = ()) -> list[tuple[str, str]]:
    """(summary, detail) of each attack path in the finding graph."""
    from threatgraph.analysis.paths import read_paths

    views = read_paths(store, dict(labels or {}), list(findings))
    return [(f"{v.start_label} → {v.target_label}",
             f"{v.text} ({v.length} hops, {v.crossings} boundary crossings)"
             + "".join(f"; {h.element_label}: {' '.join(h.techniques)}" for h in v.hops if h.techniques))
            for v in views]


def build_context(store: Store, findings: Sequence[Finding], labels: dict[str, str], *, title: str,
                  model_files: Sequence[str] = (), warnings: Sequence[str] = (), rules: Iterable[Rule] = (),
                  all_findings: Sequence[Finding] | None = None) -> ReportContext:
    """The context of every export; ``findings`` are those shown, ``all_findings`` those matched with declared threats."""
    rules = list(rules)
    return ReportContext(
        remediation={r.id: r.remediation for r in rules if r.remediation},
        title=title,
        findings=finding_views(store, findings, labels, rules),
        model=model_view(store, labels),
        model_files=list(model_files),
        warnings=list(warnings),
        declared=declared_threats(store, labels, all_findings if all_findings is not None else findings),
        labels=labels,
        attack_paths=attack_paths(store, labels, all_findings if all_findings is not None else findings),
    )


__all__ = ["ReportContext", "build_context"]
