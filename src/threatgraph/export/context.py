"""What every export renders from: the findings (read from the finding graph), the system model's
elements, flows, zones and data assets, and the declared threats compared with the findings.

Techniques, mitigations and residual risk are read generically from the finding graph (any ATT&CK /
ATLAS IRI or numeric ``…risk…`` literal on a finding or its rule), with the rule headers' ``attack`` /
``atlas`` ids as a fallback, so the exports show whatever the engine records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from pyoxigraph import BlankNode, Literal, NamedNode

from threatgraph.analysis.findings import Finding
from threatgraph.analysis.rules import SEVERITIES, Rule
from threatgraph.store import EmbeddedStore, Store
from threatgraph.terms import ATLAS, ATTACK, CAPEC, RDF, RDFS, TG, graph_iri

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
    unresolved: str = ""
    """The status of the techniques when they were cited without a loaded ATT&CK / ATLAS release (the label
    of ``tg:NoReleaseLoaded``: ``unresolved: no ATT&CK/ATLAS release loaded …``); "" when they were checked."""

    @property
    def techniques_text(self) -> str:
        """The technique ids, followed by their status when they are unresolved.

        >>> fv = FindingView(None, techniques=["AML.T0051", "T1190"], unresolved="unresolved: no release")  # type: ignore[arg-type]
        >>> fv.techniques_text
        'AML.T0051 T1190 (unresolved: no release)'
        """
        ids = " ".join(self.techniques)
        return f"{ids} ({self.unresolved})" if ids and self.unresolved else ids

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


CAPEC_NOT_LOADED = "CAPEC not loaded: load it with --knowledge shared or `threatgraph import capec`"
"""What the declared-threat comparison says of a threat citing CAPEC ids when no CAPEC release is loaded."""
MODEL_LEVEL = "(whole model)"
"""Element label of a declared threat that names no element (compared with the findings of every element)."""


@dataclass(frozen=True)
class CapecMatch:
    """A declared threat's CAPEC id matched through CAPEC's ATT&CK links."""

    capec: str
    """The cited CAPEC id (``CAPEC-122``)."""
    technique: str
    """The technique the analysis cites (``T1548.002``)."""
    linked: str
    """The technique CAPEC links to (``T1548``: the same, its parent or one of its sub-techniques)."""
    element: str
    """IRI of the element or flow whose finding cites the technique."""
    rules: tuple[str, ...]
    """Rule ids of those findings."""

_REJECTED_STATES = frozenset({"notapplicable", "na", "rejected", "falsepositive"})


@dataclass
class DeclaredThreat:
    iri: str
    element: str
    """The (first) element the threat is declared on; empty for a model-level threat."""
    element_label: str
    title: str
    categories: list[tuple[str, str]]
    severity: str
    status: str
    mitigation: str
    matched_by: list[str] = field(default_factory=list)
    """Rule ids of the derived findings of the same category on the same element (any element for a
    model-level threat)."""
    elements: list[str] = field(default_factory=list)
    """Every element the threat is declared on (none: a model-level threat)."""
    capec: list[str] = field(default_factory=list)
    """The CAPEC ids the threat cites (``dct:references capec:CAPEC-n``), in numeric order."""
    capec_loaded: bool = False
    """Whether a CAPEC release was loaded (its ATT&CK links are in the knowledge view)."""
    capec_links: dict[str, list[str]] = field(default_factory=dict)
    """Cited CAPEC id → the ATT&CK techniques it links to in the loaded release (empty: none)."""
    capec_names: dict[str, str] = field(default_factory=dict)
    """Cited CAPEC id → its name in the loaded release (for the ids that link to ATT&CK)."""
    capec_matches: list[CapecMatch] = field(default_factory=list)

    @property
    def model_level(self) -> bool:
        return not self.elements

    @property
    def matched(self) -> bool:
        """Derived: a finding of the same category, or a technique a cited CAPEC id links to, on the element."""
        return bool(self.matched_by or self.capec_matches)

    @property
    def capec_status(self) -> str:
        """``""`` (cites no CAPEC id), ``not loaded``, ``matched``, ``not matched`` or ``no ATT&CK link``."""
        if not self.capec:
            return ""
        if not self.capec_loaded:
            return "not loaded"
        if self.capec_matches:
            return "matched"
        return "not matched" if any(self.capec_links.get(c) for c in self.capec) else "no ATT&CK link"

    def capec_text(self) -> str:
        """One short line: each cited CAPEC id with the techniques it links to and what matched."""
        if not self.capec:
            return ""
        if not self.capec_loaded:
            return f"{', '.join(self.capec)}: {CAPEC_NOT_LOADED}"
        parts = []
        for c in self.capec:
            links = self.capec_links.get(c, [])
            if not links:
                parts.append(f"{c}: no ATT&CK link")
                continue
            got = sorted({m.technique for m in self.capec_matches if m.capec == c})
            parts.append(f"{c} → {' '.join(links)}: " + (f"matched {' '.join(got)}" if got else "not derived"))
        return "; ".join(parts)

    def derived_text(self) -> str:
        """The rules of the category matches and the techniques of the CAPEC matches ("" when neither)."""
        parts = list(self.matched_by)
        for c in self.capec:
            got = sorted({m.technique for m in self.capec_matches if m.capec == c})
            rules = sorted({r for m in self.capec_matches if m.capec == c for r in m.rules})
            if got:
                parts.append(f"{' '.join(got)} via {c} ({', '.join(rules)})")
        return ", ".join(parts)

    @property
    def rejected(self) -> bool:
        """People marked the threat not applicable (TMT/Threat Dragon ``NotApplicable``, "N/A", rejected).

        >>> DeclaredThreat("t", "e", "E", "T", [], "", "NotApplicable", "").rejected
        True
        >>> DeclaredThreat("t", "e", "E", "T", [], "", "Mitigated", "").rejected
        False
        """
        return re.sub(r"[^a-z]", "", self.status.lower()) in _REJECTED_STATES


def capec_summary(declared: Sequence[DeclaredThreat]) -> str:
    """``CAPEC: …`` — how the declared threats citing CAPEC ids compare through CAPEC's ATT&CK links
    ("" when none cites one)."""
    citing = [d for d in declared if d.capec]
    if not citing:
        return ""
    if not any(d.capec_loaded for d in citing):
        return f"{CAPEC_NOT_LOADED} ({len(citing)} declared threats cite CAPEC ids)."
    linked = [d for d in citing if any(d.capec_links.get(c) for c in d.capec)]
    n = sum(1 for d in citing if d.capec_matches)
    return (f"CAPEC: {len(citing)} declared threats cite CAPEC ids, {len(linked)} of them linked to ATT&CK "
            f"techniques, {n} matched by a derived technique.")


def is_declared(f: Finding, declared: Sequence[DeclaredThreat]) -> bool:
    """Whether a declared threat names the finding's (element, category); a model-level threat names its
    categories on every element."""
    for d in declared:
        cats = {c for c, _ in d.categories}
        if (not d.elements or f.focus in d.elements) and any(c[0] in cats for c in f.categories):
            return True
    return False


def undeclared(findings: Sequence[Finding], declared: Sequence[DeclaredThreat]) -> list[Finding]:
    """The findings for which :func:`is_declared` is false, with the declared (element, category) pairs
    indexed once (not every declared threat per finding)."""
    if not declared:
        return list(findings)
    anywhere: set[str] = set()  # categories of model-level threats
    pairs: set[tuple[str, str]] = set()
    for d in declared:
        cats = {c for c, _ in d.categories}
        if d.elements:
            pairs.update((e, c) for e in d.elements for c in cats)
        else:
            anywhere |= cats
    return [f for f in findings if not any(c[0] in anywhere or (f.focus, c[0]) in pairs for c in f.categories)]


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
        keep = {id(f) for f in undeclared([fv.f for fv in self.findings], self.declared)}
        return [fv for fv in self.findings if id(fv.f) in keep]


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
    """Wrap findings with the techniques, mitigations, residual risk and other facts of the finding graph.

    What one (predicate, object) fact adds to a view is worked out once and kept (the findings of an
    element share their rule, category and technique-application nodes): at 1 k elements this took
    ~0.25 s of CPU as a scan per finding (a regular expression per predicate, one-hop lists per object)."""
    props_of = _subject_facts(store, graph_iri("findings"))
    by_rule_p = TG.byRule
    by_rule = {r.id: r for r in rules}
    lower: dict[str, str] = {}  # IRI -> its local name in lower case

    def lname(iri: str) -> str:
        ln = lower.get(iri)
        if ln is None:
            ln = lower[iri] = local_name(iri).lower()
        return ln

    rule_facts: dict[NamedNode, list[tuple[str, object]]] = {}
    node_facts: dict[tuple[str, object], _NodeFact] = {}
    literal_facts: dict[tuple[str, object], tuple[float | None, int, tuple[str, str] | None]] = {}

    def node_fact(p: str, o: NamedNode | BlankNode) -> _NodeFact:
        """What the fact (p, o) adds: technique ids and mitigations (in order), an extra property."""
        tids: list[str] = []
        mits: list[tuple[str, str]] = []
        # the object itself, and one hop into nodes the finding graph describes (applications, factors)
        of_o = props_of(o)
        inner = [(p, o)] + [(p2, o2) for p2, o2 in of_o if isinstance(o2, NamedNode)]
        described = bool(of_o)
        for p2, o2 in inner:
            if not isinstance(o2, NamedNode):
                continue
            tid, mid = technique_id(o2.value), mitigation_id(o2.value)
            if tid:
                tids.append(tid)
            elif mid:
                mits.append((mid, labels.get(o2.value, mid)))
            elif any(w in lname(p2) for w in ("mitigat", "countermeasure")):
                mits.append((o2.value, labels.get(o2.value, local_name(o2.value))))
        extra = None
        if isinstance(o, NamedNode) and not described and technique_id(o.value) is None \
                and mitigation_id(o.value) is None and "mitigat" not in lname(p):
            extra = (labels.get(p, local_name(p)), labels.get(o.value, local_name(o.value)))
        return _NodeFact(tids, mits, extra)

    out = []
    for f in findings:
        fv = FindingView(f)
        node = NamedNode(f.iri)
        own = props_of(node)
        rule_node = next((o for p, o in own if p == by_rule_p and isinstance(o, NamedNode)), None)
        facts = list(own)
        if rule_node is not None:
            more = rule_facts.get(rule_node)
            if more is None:
                more = rule_facts[rule_node] = [(p, o) for p, o in props_of(rule_node) if p not in _KNOWN]
            facts += more
        risk: tuple[int, float] | None = None
        techniques: set[str] = set()
        mitigations: set[tuple[str, str]] = set()
        for p, o in facts:
            if p in _KNOWN:
                continue
            if isinstance(o, (NamedNode, BlankNode)):
                nf = node_facts.get((p, o))
                if nf is None:
                    nf = node_facts[(p, o)] = node_fact(p, o)
                for tid in nf.techniques:
                    if tid not in techniques:
                        techniques.add(tid)
                        fv.techniques.append(tid)
                for item in nf.mitigations:
                    if item not in mitigations:
                        mitigations.add(item)
                        fv.mitigations.append(item)
                if nf.extra is not None:
                    fv.extra.append(nf.extra)
            elif isinstance(o, Literal):
                lf = literal_facts.get((p, o))
                if lf is None:
                    lp = lname(p)
                    num = _num(o)
                    if "risk" in lp and num is not None:
                        lf = (num, 2 if "residual" in lp else 1 if "score" in lp else 0, None)
                    else:
                        lf = (None, 0, (labels.get(p, local_name(p)), o.value))
                    literal_facts[(p, o)] = lf
                num, prio, extra = lf
                if num is not None:
                    if risk is None or prio > risk[0]:
                        risk = (prio, num)
                elif extra is not None:
                    fv.extra.append(extra)
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


def _subject_facts(store: Store, graph: str) -> Callable[[object], list[tuple[str, object]]]:
    """(predicate IRI, object term) of a subject in ``graph``, in the store's order. An embedded store is
    asked per subject, for the subjects a report reads (the findings shown, their rules and the nodes
    their facts name): reading every quad of the finding graph (applications, exposure facts, paths) took
    ~0.4 s at 1 k elements, ~5 s at 10 k. A remote store is read whole, once (a query per subject would
    be a request each)."""
    props: dict[object, list[tuple[str, object]]] = {}
    if isinstance(store, EmbeddedStore):

        def about(node: object) -> list[tuple[str, object]]:
            got = props.get(node)
            if got is None:
                got = props[node] = [(q.predicate.value, q.object) for q in store.quads_about(node, graph)] \
                    if isinstance(node, (NamedNode, BlankNode)) else []
            return got

        return about
    for q in store.quads(graph):
        props.setdefault(q.subject, []).append((q.predicate.value, q.object))
    return lambda node: props.get(node, [])


@dataclass(frozen=True, slots=True)
class _NodeFact:
    """What a finding's (predicate, IRI or blank node) fact adds to its view (:func:`finding_views`)."""

    techniques: list[str]
    """Technique ids, in the order met."""
    mitigations: list[tuple[str, str]]
    """(mitigation id or IRI, label), in the order met."""
    extra: tuple[str, str] | None


@lru_cache(maxsize=4096)
def _is_technique_id(text: str) -> bool:
    return TECHNIQUE_ID.match(text) is not None


def _structured(fv: FindingView) -> None:
    """Techniques, mitigations, controls and risk as :func:`read_findings` gives them (issue 4), when present."""
    f = fv.f
    views = getattr(f, "techniques", None) or []
    ids = [t.id for t in views if _is_technique_id(getattr(t, "id", ""))]
    if ids:
        fv.techniques = sorted(set(ids))
        fv.residual_techniques = sorted({t.id for t in views if getattr(t, "status", "") != "mitigated"} & set(ids))
    if views:
        fv.mitigations = []  # the structured view replaces the generic scan
        fv.unresolved = next((u for t in views if (u := getattr(t, "unresolved", ""))), "")
    # each list kept in first-met order, duplicates found in a set (a list scan per item was quadratic in
    # a finding's mitigations and countermeasures: hundreds per finding with D3FEND loaded)
    mits, mitigations = set(fv.mitigations), fv.mitigations
    controls, have = fv.controls, set(fv.controls)
    for t in views:
        for m in [*getattr(t, "mitigations", []), *getattr(t, "countermeasures", [])]:
            pair = (m[0], m[1])
            if pair not in mits:
                mits.add(pair)
                mitigations.append(pair)
        for mid, control in getattr(t, "implemented", []):
            item = f"{control} ({mid})"
            if item not in have:
                have.add(item)
                controls.append(item)
    for c in getattr(f, "covered_by", []):
        if c not in have:
            have.add(c)
            controls.append(c)
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
SELECT ?e ?t ?title ?cat ?sev ?status ?mit WHERE { GRAPH <%s> {
  { ?e tg:declaredThreat ?t } UNION { ?t a tg:DeclaredThreat FILTER NOT EXISTS { ?x tg:declaredThreat ?t } }
  OPTIONAL { ?t rdfs:label ?title } OPTIONAL { ?t tg:category ?cat } OPTIONAL { ?t tg:severity ?sev }
  OPTIONAL { ?t tg:threatStatus ?status } OPTIONAL { ?t tg:mitigationText ?mit } } }
"""
_DECLARED_CAPEC = "SELECT ?t ?c WHERE { GRAPH <%s> { ?t dct:references ?c } FILTER(STRSTARTS(STR(?c), STR(capec:))) }"
_CAPEC_LINKS = "SELECT ?p ?t WHERE { GRAPH <%s> { ?p tg:capecTechnique ?t } }"
_CAPEC_NAMES = "SELECT ?p ?n WHERE { GRAPH ?g { ?p a kb:AttackPattern ; rdfs:label ?n } FILTER(STRSTARTS(STR(?p), STR(capec:))) }"
_FLOW_ENDS = "SELECT ?f ?e WHERE { GRAPH <%s> { ?f a tg:DataFlow { ?f tg:source ?e } UNION { ?f tg:target ?e } } }"


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


def declared_threats(store: Store, labels: Mapping[str, str], findings: Sequence[Finding],
                     rules: Iterable[Rule] = ()) -> list[DeclaredThreat]:
    """Declared threats of the model, each compared with the findings (docs/interchange.md, "Declared threats").

    Matched by category: a finding of the same STRIDE/LINDDUN category on an element the threat is
    declared on (on any element for a model-level threat, one that names no element). Matched through
    CAPEC: the threat cites CAPEC-n (``dct:references capec:CAPEC-n``), the loaded CAPEC release links
    CAPEC-n to an ATT&CK technique (graph/view, ``tg:capecTechnique``), and a finding on the element, or
    on a data flow from or to it (any finding for a model-level threat), cites that technique, its parent
    or one of its sub-techniques (through its technique applications or its rule's ``attack`` header).
    """
    gm = graph_iri("model")
    sev_names = {TG[name.capitalize()]: name for name in SEVERITIES}
    out: dict[str, DeclaredThreat] = {}
    for r in store.select(_DECLARED % gm, complete=False):
        t = r["t"].value
        el = r.get("e")
        e = el.value if el is not None else ""
        d = out.get(t)
        if d is None:
            title, sev, status, mit = (r.get(k) for k in ("title", "sev", "status", "mit"))
            d = out[t] = DeclaredThreat(
                t, e, labels.get(e, local_name(e)) if e else MODEL_LEVEL,
                title.value if title is not None else local_name(t), [],
                sev_names.get(sev.value, "") if sev is not None else "",
                status.value if status is not None else "",
                mit.value if mit is not None else "",
            )
        if e and e not in d.elements:
            d.elements.append(e)
        cat = r.get("cat")
        if isinstance(cat, NamedNode) and all(c != cat.value for c, _ in d.categories):
            d.categories.append((cat.value, labels.get(cat.value, local_name(cat.value))))
    if not out:  # nothing to compare (most models): no index of the findings (at 10 k elements 55 k)
        return []
    index: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        for c in f.categories:
            index.setdefault((f.focus, c[0]), []).append(f.rule_id)
            index.setdefault(("", c[0]), []).append(f.rule_id)
    for d in out.values():
        d.elements.sort()
        scope = d.elements or [""]
        d.matched_by = sorted({rid for c, _ in d.categories for e in scope for rid in index.get((e, c), [])})
    _compare_capec(store, out, findings, rules)
    return sorted(out.values(), key=lambda d: (d.element_label.lower(), d.title.lower(), d.iri))


def _capec_key(cid: str) -> tuple[int, str]:
    num = cid.rsplit("-", 1)[-1]
    return (int(num), cid) if num.isdigit() else (1 << 30, cid)


def related_techniques(a: str, b: str) -> bool:
    """Whether two technique ids are the same, or one is the parent of the other.

    >>> related_techniques("T1548", "T1548.002"), related_techniques("T1548.002", "T1548"), related_techniques("T1548.001", "T1548.002")
    (True, True, False)
    """
    return a == b or a.split(".")[0] == b or b.split(".")[0] == a


def _compare_capec(store: Store, declared: Mapping[str, DeclaredThreat], findings: Sequence[Finding],
                   rules: Iterable[Rule]) -> None:
    """Fill the CAPEC fields of ``declared`` (see :func:`declared_threats`)."""
    from threatgraph.analysis.techniques import G_VIEW
    from threatgraph.knowledge.releases import newest_release

    gm = graph_iri("model")
    for r in store.select(_DECLARED_CAPEC % gm, complete=False):
        d = declared.get(r["t"].value)
        cid = r["c"].value[len(CAPEC):]
        if d is not None and cid not in d.capec:
            d.capec.append(cid)
    citing = [d for d in declared.values() if d.capec]
    if not citing:
        return
    for d in citing:
        d.capec.sort(key=_capec_key)
    if newest_release(store, "capec") is None:
        return
    links: dict[str, set[str]] = {}
    for r in store.select(_CAPEC_LINKS % G_VIEW, complete=False):
        tid = technique_id(r["t"].value)
        if tid and r["p"].value.startswith(CAPEC):
            links.setdefault(r["p"].value[len(CAPEC):], set()).add(tid)
    cited = {c for d in citing for c in d.capec}
    names = {r["p"].value[len(CAPEC):]: r["n"].value for r in store.select(_CAPEC_NAMES, complete=False)
             if r["p"].value[len(CAPEC):] in cited}
    header = {rule.id: [t for t in rule.attack if TECHNIQUE_ID.match(t)] for rule in rules}
    # element or flow → technique id → rule ids of the findings citing the technique there
    cites: dict[str, dict[str, set[str]]] = {}
    for f in findings:
        for tid in {t.id for t in f.techniques} | set(header.get(f.rule_id, ())):
            cites.setdefault(f.focus, {}).setdefault(tid, set()).add(f.rule_id)
    touching: dict[str, set[str]] = {}
    for r in store.select(_FLOW_ENDS % gm, complete=False):
        touching.setdefault(r["e"].value, set()).add(r["f"].value)
    for d in citing:
        d.capec_loaded = True
        where = set(d.elements) | {fl for e in d.elements for fl in touching.get(e, ())} if d.elements else set(cites)
        for c in d.capec:
            d.capec_links[c] = sorted(links.get(c, ()))
            if c in names:
                d.capec_names[c] = names[c]
            for focus in sorted(where):
                for tid, rids in sorted(cites.get(focus, {}).items()):
                    for linked in d.capec_links[c]:
                        if related_techniques(tid, linked):
                            d.capec_matches.append(CapecMatch(c, tid, linked, focus, tuple(sorted(rids))))


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
        declared=declared_threats(store, labels, all_findings if all_findings is not None else findings, rules),
        labels=labels,
        attack_paths=attack_paths(store, labels, all_findings if all_findings is not None else findings),
    )


__all__ = ["CAPEC_NOT_LOADED", "CapecMatch", "DeclaredThreat", "ReportContext", "build_context", "capec_summary", "declared_threats",
           "undeclared"]
