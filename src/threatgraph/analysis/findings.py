"""Reading findings back from the finding graph (the single source every report renders from)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain

from pyoxigraph import BlankNode, Literal, NamedNode, Quad

from threatgraph.analysis.rules import SEVERITIES
from threatgraph.store import Store
from threatgraph.store.base import Term
from threatgraph.terms import DCT, RDF, RDFS, TG, graph_iri

BASELINE_RULES: tuple[str, ...] = ("TG-PE-STRIDE", "TG-PE-LINDDUN")
"""The per-element baseline rules (STRIDE-per-element and LINDDUN per-element tables)."""

_FOCUS = """
SELECT ?focus ?kind WHERE { GRAPH <%(g)s> { ?f a tg:Finding ; tg:focus ?focus }
  VALUES ?kind { tg:ExternalEntity tg:Process tg:DataStore tg:DataFlow } ?focus a ?kind }
"""
_SCHEMES = """
SELECT ?cat ?scheme WHERE { ?cat a tg:ThreatCategory ; skos:inScheme ?scheme }
"""


@dataclass
class TechniqueView:
    """One technique applied to a finding (second stage), with mitigations, controls and detection."""

    iri: str
    id: str
    label: str
    mapping: str
    asset_types: list[str] = field(default_factory=list)
    justification: str = ""
    sources: list[str] = field(default_factory=list)
    release: str = ""
    replaces: str = ""
    """ID of the revoked technique the mapping names, when this one replaces it."""
    exposures: list[tuple[str, str]] = field(default_factory=list)
    """(subject label, attribute local name) of the facts that met the mapping's tg:exposedWhen."""
    reduced_by: list[tuple[str, str]] = field(default_factory=list)
    status: str = "unmitigated"
    mitigations: list[tuple[str, str]] = field(default_factory=list)
    """(ID, label) of the applicable ATT&CK / ATLAS mitigations."""
    countermeasures: list[tuple[str, str, str]] = field(default_factory=list)
    """(D3FEND id, label, why: "relation artifact ← relation artifact")."""
    implemented: list[tuple[str, str]] = field(default_factory=list)
    """(mitigation or countermeasure ID, control label)."""
    detections: list[tuple[str, str]] = field(default_factory=list)
    """(detection strategy / data component ID, label)."""
    maturity: str = ""
    categories: list[str] = field(default_factory=list)
    """Labels of the finding's categories the technique realises (by its mapping's tg:realizes)."""
    unresolved: str = ""
    """Why the technique was not checked against a release ("" when it was): the label of
    ``tg:NoReleaseLoaded`` when the analysis loaded no ATT&CK / ATLAS release (the technique is the one the
    mapping names; name, mitigations, countermeasures, detections and revocation are unknown)."""

    @property
    def missing(self) -> list[tuple[str, str]]:
        """Applicable mitigations no control implements."""
        done = {m for m, _ in self.implemented}
        return [m for m in self.mitigations if m[0] not in done]


@dataclass
class RiskFactorView:
    """One factor of a finding's likelihood or impact."""

    of: str
    name: str
    value: str
    effect: int
    subject: str = ""


@dataclass
class Finding:
    """A finding as read from the finding graph."""

    iri: str
    rule_id: str
    threat: str
    severity: str
    focus: str
    focus_label: str
    focus_kind: str
    explanation: str
    source: str
    categories: list[tuple[str, str, str]] = field(default_factory=list)
    """(category IRI, label, framework: STRIDE or LINDDUN)."""
    evidence: list[tuple[str, str, str]] = field(default_factory=list)
    """(role, value IRI or literal, label)."""
    techniques: list[TechniqueView] = field(default_factory=list)
    control_status: str = ""
    """mitigated, partly mitigated, unmitigated ("" when the second stage did not run)."""
    covered_by: list[str] = field(default_factory=list)
    """Labels of controls that cover one of the finding's categories."""
    likelihood: int = 0
    impact: int = 0
    risk_score: int = 0
    risk_level: str = ""
    risk_factors: list[RiskFactorView] = field(default_factory=list)

    @property
    def residual_techniques(self) -> list[TechniqueView]:
        """Techniques not fully mitigated by declared controls."""
        return [t for t in self.techniques if t.status != "mitigated"]

    @property
    def severity_rank(self) -> int:
        """Rank of the rule's inherent severity (1 = info … 5 = critical)."""
        return _RANK.get(self.severity, -1) + 1

    @property
    def baseline(self) -> bool:
        """A per-element baseline finding (STRIDE / LINDDUN per-element table, rules ``TG-PE-*``)."""
        return self.rule_id in BASELINE_RULES

    @property
    def level(self) -> str:
        """The one level a user sees, sorts by and gates on (issue 15): the contextual risk level
        where risk was computed, the rule's severity otherwise (docs/risk.md, "One scale").

        A baseline finding without techniques has no risk of its own: the score stored on it is its
        element's context (exposure × data), shared by every category of the table, so its level is
        the rule's severity (info). With techniques that realise it, it is a concrete threat and its
        risk level counts."""
        # table look-ups, not tuple.index: reports ask for the level ~650 k times at 10 k elements
        risk = self.risk_level
        if risk:
            baseline = self.rule_id in BASELINE_RULES
            if self.techniques or not baseline:
                rank = _RANK.get(risk)
                if not baseline and rank is not None:
                    return SEVERITIES[min(rank, _CAP_RANK.get(self.severity, _TOP))]
                return risk
        return self.severity

    @property
    def level_cap(self) -> str:
        """The highest level the rule's severity allows: one step above it (issue 13, signal over noise).

        The risk score measures the element's context (exposure × data); the severity says how serious the
        threat itself is. A low-severity threat ("a flow may be interrupted") on a sensitive, exposed flow
        is at most medium, a medium one at most high; high and critical rules are not capped. Baseline
        findings (severity info: a placeholder, not a judgement) realised by techniques are not capped.

        >>> Finding("f", "R", "t", "low", "e", "E", "Process", "x", "s", risk_level="critical").level
        'medium'
        >>> Finding("f", "R", "t", "high", "e", "E", "Process", "x", "s", risk_level="critical").level
        'critical'
        >>> Finding("f", "R", "t", "medium", "e", "E", "Process", "x", "s", risk_level="low").level
        'low'
        """
        return SEVERITIES[_CAP_RANK.get(self.severity, _TOP)]

    @property
    def level_capped(self) -> bool:
        """Whether the rule's severity lowered the level below the risk level (:attr:`level_cap`)."""
        return bool(self.risk_level) and self.level != self.risk_level and self.level == self.level_cap

    @property
    def level_rank(self) -> int:
        """Rank of :attr:`level` on the severity scale (1 = info … 5 = critical)."""
        return _RANK.get(self.level, -1) + 1

    @property
    def category_labels(self) -> list[str]:
        return [c[1] for c in self.categories]


_RANK = {name: i for i, name in enumerate(SEVERITIES)}
"""Severity name -> index on the scale (0 = info)."""
_TOP = len(SEVERITIES) - 1
_CAP_RANK = {name: min(i + 1, _TOP) for i, name in enumerate(SEVERITIES)}
"""Severity name -> index of the highest level it allows (:attr:`Finding.level_cap`)."""


def read_findings(store: Store, labels: dict[str, str], graph: str | None = None) -> list[Finding]:
    """All findings of ``graph`` (default ``graph/findings``), sorted by focus label, severity, rule.

    Reads the graph's quads once (linear in its size) and the rule descriptions stored beside them.
    """
    g = graph or graph_iri("findings")
    subj: dict[str, dict[str, list[Term]]] = {}
    preds: dict[NamedNode, str] = {}  # a predicate's string once, not once per quad
    for q in store.quads(g):
        s, o = q.subject, q.object
        if type(s) is not NamedNode or not isinstance(o, (NamedNode, BlankNode, Literal)):
            continue
        sv = s.value
        props = subj.get(sv)
        if props is None:
            props = subj[sv] = {}
        pn = q.predicate
        pv = preds.get(pn)
        if pv is None:
            pv = preds[pn] = pn.value
        vals = props.get(pv)
        if vals is None:
            props[pv] = [o]
        else:
            vals.append(o)
    # applications are per (element, technique), linked to each finding they realise by tg:ofFinding
    for app_iri, app_props in list(subj.items()):
        for fin in app_props.get(_OF_FINDING, []):
            subj.setdefault(fin.value, {}).setdefault(_APPLICATION, []).append(NamedNode(app_iri))
    # mapping justifications, and what the knowledge view says of each technique (mitigations, D3FEND
    # countermeasures with their inference, detections, maturity: joined when read, not copied)
    joined: _Subjects = _Subjects(subj, store if any(_APPLICATION in props for props in subj.values()) else None)
    schemes = {r["cat"].value: r["scheme"].value for r in store.select(_SCHEMES)}
    kinds: dict[str, str] = {}
    for r in store.select(_FOCUS % {"g": g}):
        kinds.setdefault(r["focus"].value, labels.get(r["kind"].value, r["kind"].value))
    sev_names = {TG[name.capitalize()]: name for name in SEVERITIES}
    cache = _DerivationCache()
    # what many findings share, read once: rules, categories, evidence nodes (shared per (role, value))
    rules: dict[str, tuple[str, str, str]] = {}
    cats: dict[str, tuple[str, str, str]] = {}
    evidence: dict[str, tuple[str, str, str] | None] = {}
    out: list[Finding] = []
    for iri, props in subj.items():
        if _TYPE not in props or not any(t.value == _FINDING for t in props[_TYPE]):
            continue
        rule = props[_BY_RULE][0].value
        rinfo = rules.get(rule)
        if rinfo is None:
            rprops = joined.get(rule, {})
            rinfo = rules[rule] = (
                _one(rprops, _RULE_ID) or rule.rsplit("/", 1)[-1], _one(rprops, _LABEL), _one(rprops, _SOURCE))
        focus = props[_FOCUS_P][0].value
        f = Finding(
            iri=iri,
            rule_id=rinfo[0],
            threat=rinfo[1],
            severity=sev_names.get(props[_SEVERITY][0].value, "info"),
            focus=focus,
            focus_label=labels.get(focus, focus.rsplit("#", 1)[-1].rsplit("/", 1)[-1]),
            focus_kind=kinds.get(focus, ""),
            explanation=_one(props, _EXPLANATION),
            source=rinfo[2],
        )
        for cat in props.get(_CATEGORY, []):
            c = cats.get(cat.value)
            if c is None:
                fw = "LINDDUN" if "linddun" in schemes.get(cat.value, "") else "STRIDE"
                c = cats[cat.value] = (cat.value, labels.get(cat.value, cat.value), fw)
            f.categories.append(c)
        for ev in props.get(_EVIDENCE_P, []):
            e = evidence.get(ev.value, _NO_EVIDENCE)
            if e is _NO_EVIDENCE:
                e = evidence[ev.value] = _evidence(joined.get(ev.value, {}), labels)
            if e is not None:
                f.evidence.append(e)
        f.categories.sort(key=lambda c: (c[2] != "STRIDE", c[1]))
        f.evidence.sort()
        _attach_derivation(f, props, joined, labels, cache)
        out.append(f)
    return sorted(out, key=lambda f: (f.focus_label.lower(), f.focus, -f.severity_rank, f.rule_id, f.category_labels))


_NO_EVIDENCE = ("", "", "")
_Props = dict[str, list[Term]]


class _Subjects:
    """The finding graph's subjects (``own``: IRI → predicate → objects) joined with what ``graph/bridge`` and
    ``graph/view`` of ``store`` say of them (store None: nothing joined).

    On a store that reads a subject's quads from its index (``quads_matching_subject``, the embedded store)
    a subject is joined when first asked for: reading the two graphs whole cost ~45 ms of every analysis
    with knowledge (issue 14: ~21 k quads, most of them on techniques no finding cites), where a report
    reads a few hundred of their subjects. Any other store's graphs are read whole, once. Either way the
    objects of a subject come in the order a scan of the graphs gives them (finding graph, bridge, view;
    each by predicate, then object)."""

    def __init__(self, own: dict[str, _Props], store: Store | None) -> None:
        self._own = own
        self._joined: dict[str, _Props | None] = {}
        self._graphs = (graph_iri("bridge"), graph_iri("view"))
        self._match: Callable[[NamedNode, NamedNode], Iterable[Quad]] | None = None
        if store is None:
            self._joined = own  # type: ignore[assignment]
            return
        match = getattr(store, "quads_matching_subject", None)
        if callable(match):
            self._match = match
            return
        for q in chain.from_iterable(store.quads(g) for g in self._graphs):
            s, o = q.subject, q.object
            if isinstance(s, NamedNode) and isinstance(o, (NamedNode, Literal)):
                own.setdefault(s.value, {}).setdefault(q.predicate.value, []).append(o)
        self._joined = own  # type: ignore[assignment]

    def get(self, key: str, default: _Props) -> _Props:
        """The predicates and objects of ``key`` (``default`` when it is the subject of nothing)."""
        if key in self._joined:
            props = self._joined[key]
        elif self._match is None:
            return default
        else:
            props = self._joined[key] = self._join(key, self._match)
        return default if props is None else props

    def _join(self, key: str, match: Callable[[NamedNode, NamedNode], Iterable[Quad]]) -> _Props | None:
        props = self._own.get(key)
        copied = False
        s = NamedNode(key)
        for q in chain.from_iterable(match(s, NamedNode(g)) for g in self._graphs):
            o = q.object
            if not isinstance(o, (NamedNode, Literal)):
                continue
            if props is None:
                props, copied = {}, True
            elif not copied:  # the finding graph's own lists are not changed
                props, copied = {k: list(v) for k, v in props.items()}, True
            props.setdefault(q.predicate.value, []).append(o)
        return props


def _evidence(ep: dict[str, list[Term]], labels: dict[str, str]) -> tuple[str, str, str] | None:
    """(role, value, label) of an evidence node; None without a value."""
    role = _one(ep, _ROLE)
    if _VALUE in ep:
        v = ep[_VALUE][0].value
        return (role, v, labels.get(v, v))
    if _LITERAL_VALUE in ep:
        v = ep[_LITERAL_VALUE][0].value
        return (role, v, v)
    return None


def technique_id(iri: str) -> str:
    """ATT&CK / ATLAS / D3FEND id from an IRI (its last path or fragment segment).

    >>> technique_id("https://w3id.org/threatgraph/atlas/AML.T0051"), technique_id("http://d3fend.mitre.org/ontologies/d3fend.owl#FileAnalysis")
    ('AML.T0051', 'FileAnalysis')
    """
    return iri.replace("#", "/").rstrip("/").rsplit("/", 1)[-1]


_STATUS = {TG.Mitigated: "mitigated", TG.PartlyMitigated: "partly mitigated", TG.Unmitigated: "unmitigated"}


@dataclass
class _DerivationCache:
    """What many findings share, computed once: risk factor nodes, per-technique and per-mapping data.

    At 10 k elements (102 k findings, 109 k technique applications) reading the finding graph took
    4.1 s in :func:`_attach_derivation` when each application recomputed its technique's data.
    """

    factors: dict[str, tuple[str, str, str, int, str]] = field(default_factory=dict)
    techniques: dict[str, _TechniqueData] = field(default_factory=dict)
    mappings: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    applications: dict[str, TechniqueView | None] = field(default_factory=dict)
    """Application IRI → its view without the finding's categories (an application realises several findings)."""
    realized: dict[str, set[str]] = field(default_factory=dict)
    """Mapping IRI → the categories it realises."""


@dataclass
class _TechniqueData:
    mitigations: list[tuple[str, str]]
    countermeasures: list[tuple[str, str, str]]
    detections: list[tuple[str, str]]
    maturity: str


def _technique_data(t: str, subj: _Subjects, labels: dict[str, str]) -> _TechniqueData:
    """Mitigations, D3FEND countermeasures (with the inference that found them), detections, maturity."""

    def lab(iri: str) -> str:
        return labels.get(iri) or technique_id(iri)

    tp = subj.get(t, {})
    mitigations = sorted({(technique_id(m.value), labels.get(m.value, "")) for m in tp.get(_P.applicableMitigation, [])})
    why: dict[str, str] = {}
    for x in tp.get(_P.countermeasureInference, []):
        xp = subj.get(x.value, {})
        c = _one(xp, _P.countermeasureTechnique)
        text = (f"{technique_id(_one(xp, _P.offensiveRelation))} {lab(_one(xp, _P.offensiveArtifact))} ← "
                f"{technique_id(_one(xp, _P.defensiveRelation))} {lab(_one(xp, _P.defendedArtifact))}")
        if c and (c not in why or text < why[c]):
            why[c] = text
    countermeasures = sorted(
        (_one(subj.get(c, {}), _P.d3fendId) or technique_id(c), lab(c), w) for c, w in why.items()
    )
    detections: list[tuple[str, str]] = []
    for d in tp.get(_P.detectionStrategy, []):
        analytics = sorted(technique_id(a.value) for a in subj.get(d.value, {}).get(_P.analytic, []))
        extra = f" (analytics: {', '.join(analytics)})" if analytics else ""
        detections.append((technique_id(d.value), labels.get(d.value, "") + extra))
    for d in tp.get(_P.dataComponent, []):
        detections.append(("data component", labels.get(d.value, technique_id(d.value))))
    detections.sort()
    return _TechniqueData(mitigations, countermeasures, detections, _one(tp, _P.maturity))


_MISSING = TechniqueView("", "", "", "")


def _application_view(
    app: str, subj: _Subjects, labels: dict[str, str], cache: _DerivationCache
) -> TechniqueView | None:
    """What a technique application says, the same for every finding it realises (categories left empty);
    None when it names no technique."""

    def lab(iri: str) -> str:
        return labels.get(iri) or technique_id(iri)

    ap = subj.get(app, {})
    t = _one(ap, _P.appliedTechnique)
    if not t:
        return None
    tv = TechniqueView(iri=t, id=technique_id(t), label=labels.get(t, ""), mapping=_one(ap, _P.viaMapping))
    tv.asset_types = sorted({lab(c.value) for c in ap.get(_P.viaAssetType, [])})
    release = _one(ap, _P.inRelease)
    if release == _P.NoReleaseLoaded:
        tv.unresolved = labels.get(release) or "unresolved: no ATT&CK/ATLAS release loaded"
    else:
        tv.release = release.rsplit("release/", 1)[-1]
    rep = _one(ap, _P.replacesTechnique)
    tv.replaces = technique_id(rep) if rep else ""
    tv.status = _STATUS.get(_one(ap, _P.controlStatus), "unmitigated")
    for key, pred in (("exposures", _P.exposure), ("reduced_by", _P.reducedByFact)):
        facts = []
        for x in ap.get(pred, []):
            xp = subj.get(x.value, {})
            facts.append((lab(_one(xp, _P.factSubject)), technique_id(_one(xp, _P.factAttribute))))
        setattr(tv, key, sorted(set(facts)))
    td = cache.techniques.get(t)
    if td is None:
        td = cache.techniques[t] = _technique_data(t, subj, labels)
    tv.mitigations = td.mitigations
    tv.countermeasures = td.countermeasures
    tv.detections = td.detections
    tv.maturity = td.maturity
    mapping = cache.mappings.get(tv.mapping)
    if mapping is None:
        mp = subj.get(tv.mapping, {})
        mapping = cache.mappings[tv.mapping] = (_one(mp, _P.justification), sorted(x.value for x in mp.get(_P.source, [])))
    tv.justification = mapping[0]
    tv.sources = mapping[1]
    ctl = [lab(c.value) for c in ap.get(_P.implementedBy, [])]
    tv.implemented = sorted({(technique_id(m.value), ", ".join(sorted(ctl))) for m in ap.get(_P.implementedMitigation, [])})
    return tv


def _attach_derivation(
    f: Finding,
    props: dict[str, list[Term]],
    subj: _Subjects,
    labels: dict[str, str],
    cache: _DerivationCache | None = None,
) -> None:
    """Fill the second-stage fields of ``f`` from the finding graph's subjects (no extra queries)."""
    cache = cache if cache is not None else _DerivationCache()

    def lab(iri: str) -> str:
        return labels.get(iri) or technique_id(iri)

    f.control_status = _STATUS.get(_one(props, _P.controlStatus), "")
    f.covered_by = sorted(lab(c.value) for c in props.get(_P.coveredBy, []))
    for key, attr in (("likelihood", _P.likelihood), ("impact", _P.impact), ("risk_score", _P.riskScore)):
        v = _one(props, attr)
        if v:
            setattr(f, key, int(v))
    f.risk_level = _one(props, _P.riskLevel)
    for node in props.get(_P.riskFactor, []):
        args = cache.factors.get(node.value)
        if args is None:
            fp = subj.get(node.value, {})
            subject = _one(fp, _P.factorSubject)
            args = cache.factors[node.value] = (
                _one(fp, _P.factorOf), _one(fp, _P.factorName), _one(fp, _P.factorValue),
                int(_one(fp, _P.factorEffect) or 0), lab(subject) if subject else "",
            )
        f.risk_factors.append(RiskFactorView(*args))
    f.risk_factors.sort(key=lambda r: (r.of != "impact", -r.effect if r.of == "impact" else 0, r.name, r.value))
    for app in props.get(_P.application, []):
        base = cache.applications.get(app.value, _MISSING)
        if base is _MISSING:
            base = cache.applications[app.value] = _application_view(app.value, subj, labels, cache)
        if base is None:
            continue
        realized = cache.realized.get(base.mapping)
        if realized is None:
            realized = cache.realized[base.mapping] = {c.value for c in subj.get(base.mapping, {}).get(_P.realizes, [])}
        # a fresh view per finding (lists copied): an application is shared by the findings it realises
        f.techniques.append(TechniqueView(
            iri=base.iri, id=base.id, label=base.label, mapping=base.mapping, asset_types=list(base.asset_types),
            justification=base.justification, sources=list(base.sources), release=base.release,
            replaces=base.replaces, exposures=list(base.exposures), reduced_by=list(base.reduced_by),
            status=base.status, mitigations=list(base.mitigations), countermeasures=list(base.countermeasures),
            implemented=list(base.implemented), detections=list(base.detections), maturity=base.maturity,
            categories=[label for iri, label, _fw in f.categories if iri in realized], unresolved=base.unresolved,
        ))
    f.techniques.sort(key=lambda t: (t.status == "mitigated", t.id))


class _P:
    """The predicate IRIs read per finding and per application, as plain strings (``TG.x`` builds its
    string on every access: 2 M accesses at 10 k elements with knowledge)."""

    analytic = TG.analytic
    applicableMitigation = TG.applicableMitigation
    application = TG.application
    appliedTechnique = TG.appliedTechnique
    controlStatus = TG.controlStatus
    countermeasureInference = TG.countermeasureInference
    countermeasureTechnique = TG.countermeasureTechnique
    coveredBy = TG.coveredBy
    d3fendId = TG.d3fendId
    dataComponent = TG.dataComponent
    defendedArtifact = TG.defendedArtifact
    defensiveRelation = TG.defensiveRelation
    detectionStrategy = TG.detectionStrategy
    exposure = TG.exposure
    factAttribute = TG.factAttribute
    factSubject = TG.factSubject
    factorEffect = TG.factorEffect
    factorName = TG.factorName
    factorOf = TG.factorOf
    factorSubject = TG.factorSubject
    factorValue = TG.factorValue
    impact = TG.impact
    implementedBy = TG.implementedBy
    implementedMitigation = TG.implementedMitigation
    inRelease = TG.inRelease
    NoReleaseLoaded = TG.NoReleaseLoaded
    justification = TG.justification
    likelihood = TG.likelihood
    maturity = TG.maturity
    offensiveArtifact = TG.offensiveArtifact
    offensiveRelation = TG.offensiveRelation
    realizes = TG.realizes
    reducedByFact = TG.reducedByFact
    replacesTechnique = TG.replacesTechnique
    riskFactor = TG.riskFactor
    riskLevel = TG.riskLevel
    riskScore = TG.riskScore
    viaAssetType = TG.viaAssetType
    viaMapping = TG.viaMapping
    source = DCT.source


def _one(props: dict[str, list[Term]], key: str) -> str:
    vals = props.get(key)
    return vals[0].value if vals else ""


_TYPE = RDF.type
_APPLICATION = TG.application
_OF_FINDING = TG.ofFinding
_FINDING = TG.Finding
_BY_RULE = TG.byRule
_RULE_ID = TG.ruleId
_LABEL = RDFS.label
_SOURCE = TG.ruleSource
_FOCUS_P = TG.focus
_SEVERITY = TG.severity
_EXPLANATION = TG.explanation
_CATEGORY = TG.category
_EVIDENCE_P = TG.evidence
_ROLE = TG.role
_VALUE = TG.value
_LITERAL_VALUE = TG.literalValue
