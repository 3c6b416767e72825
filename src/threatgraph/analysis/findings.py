"""Reading findings back from the finding graph (the single source every report renders from)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeAlias

from pyoxigraph import BlankNode, Literal, NamedNode, Quad

from threatgraph.analysis.rules import SEVERITIES
from threatgraph.store import Store
from threatgraph.store.base import Term
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import DCT, RDF, RDFS, TG, graph_iri

if TYPE_CHECKING:
    from threatgraph.analysis.engine import Analysis
    from threatgraph.analysis.risk import RiskMemory
    from threatgraph.analysis.stage_python import StageMemory

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
    mitigated_by: list[str] = field(default_factory=list)
    """Local names of the declared protective facts that mitigate it (``tg:mitigatedByFact``, e.g.
    ``encryptedInTransit``): a finding of a mitigated counterpart rule, control status mitigated."""
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
                    if self.mitigated_by:  # handled by a declared fact: at most the rule's (residual) severity
                        return SEVERITIES[min(rank, _RANK.get(self.severity, _TOP))]
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

        A threat that declared protective facts mitigate (:attr:`mitigated_by`) is capped at the rule's
        severity itself (the residual severity of a mitigated counterpart rule, issue 13):

        >>> Finding("f", "R", "t", "low", "e", "E", "Process", "x", "s", risk_level="high",
        ...         mitigated_by=["encryptedInTransit"]).level
        'low'
        """
        if self.mitigated_by:
            return SEVERITIES[_RANK.get(self.severity, _TOP)]
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


Index: TypeAlias = dict[str, dict[str, list[Term]]]
"""Subject IRI → predicate IRI → objects (in store order): what the builder reads of the finding graph and of
the bridge and knowledge-view graphs."""


@dataclass(slots=True)
class FindingCore:
    """What the rule engine knows of a finding when it writes it (:meth:`threatgraph.analysis.engine.Engine.run_rules`
    keeps one per finding on ``Analysis.cores``): everything of a :class:`Finding` but the second stage
    (techniques, control status, coverage, risk), which :func:`findings_of` reads from the finding graph."""

    iri: str
    rule_id: str
    threat: str
    """The rule's title."""
    source: str
    """The rule's source (tg:ruleSource)."""
    severity: str
    focus: Term
    categories: list[str]
    """IRIs of the finding's categories."""
    explanation: str
    bindings: Mapping[str, Sequence[Term]]
    """The rule's bindings, variable → distinct values: the evidence is every variable but ``focus``
    (blank nodes are left out, as the engine writes no evidence node for them)."""


_GRAPH_OBJECTS = frozenset({NamedNode, BlankNode, Literal})
_KNOWLEDGE_OBJECTS = frozenset({NamedNode, Literal})
_KNOWLEDGE_GRAPHS = (graph_iri("bridge"), graph_iri("view"))


def _index_quads(index: Index, quads: Iterable[Quad], objects: frozenset[type]) -> None:
    """Add ``quads`` with an IRI subject and an object of one of ``objects`` types to ``index``."""
    preds: dict[NamedNode, str] = {}  # a predicate's string once, not once per quad
    for q in quads:
        s, o = q.subject, q.object
        if type(s) is not NamedNode or type(o) not in objects:
            continue
        sv = s.value
        props = index.get(sv)
        if props is None:
            props = index[sv] = {}
        pn = q.predicate
        pv = preds.get(pn)
        if pv is None:
            pv = preds[pn] = pn.value
        vals = props.get(pv)
        if vals is None:
            props[pv] = [o]  # type: ignore[list-item]  # (checked above: not an RDF-star triple)
        else:
            vals.append(o)  # type: ignore[arg-type]


def _index_predicate(index: Index, p: str, quads: Iterable[Quad], objects: frozenset[type]) -> None:
    """:func:`_index_quads` of quads of the one predicate ``p``."""
    for q in quads:
        s, o = q.subject, q.object
        if type(s) is not NamedNode or type(o) not in objects:
            continue
        sv = s.value
        props = index.get(sv)
        if props is None:
            index[sv] = {p: [o]}  # type: ignore[list-item]
            continue
        vals = props.get(p)
        if vals is None:
            props[p] = [o]  # type: ignore[list-item]
        else:
            vals.append(o)  # type: ignore[arg-type]


def read_findings(store: Store, labels: dict[str, str], graph: str | None = None) -> list[Finding]:
    """All findings of ``graph`` (default ``graph/findings``), sorted by focus label, severity, rule.

    Reads the graph's quads once (linear in its size) and the rule descriptions stored beside them. For any
    store; an analysis that ran here has :func:`findings_of` (the same findings, read faster)."""
    g = graph or graph_iri("findings")
    subj: Index = {}
    _index_quads(subj, store.quads(g), _GRAPH_OBJECTS)
    if any(_OF_FINDING in props or _APPLICATION in props for props in subj.values()):
        # mapping justifications, and what the knowledge view says of each technique (mitigations, D3FEND
        # countermeasures with their inference, detections, maturity: joined when read, not copied)
        for kg in _KNOWLEDGE_GRAPHS:
            _index_quads(subj, store.quads(kg), _KNOWLEDGE_OBJECTS)
    cores = _graph_cores(subj)
    return _Builder(subj, labels).findings(cores, focus_kinds(store, cores, labels, g), _schemes(store))


def findings_of(analysis: Analysis, labels: dict[str, str]) -> list[Finding]:
    """The findings of ``analysis``, equal to :func:`read_findings` of its store, built from what the engine
    kept of each finding (``analysis.cores``: rule, focus, categories, explanation, evidence) and the
    second stage read from the finding, bridge and view graphs by predicate (index scans, no SPARQL).

    Falls back to :func:`read_findings` when the analysis kept no cores (not run by the engine) or its store
    has no index reader (a remote store). CPU with knowledge (medians, docs/performance.md): rag-assistant
    0.133 s → 0.096 s, generated 1 k 0.97 s → 0.69 s, 10 k 9.8 s → 8.6 s (main's ``read_findings`` → this).

    After the technique stage and risk kept what they wrote (``analysis.stage_memory`` with its ``written``,
    ``analysis.risk``), nothing is read of graph/findings and the embedded store's deferred finding graph stays
    unloaded (issue 14; the bridge and view graphs are read by predicate). CPU with the garbage collector off (as
    ``analyze`` runs it), with knowledge: generated 1 k 1.15 s → 0.33 s, 10 k 9.8 s → 2.55 s (loading the graph and
    reading it back, and a view copied per finding, before)."""
    store = analysis.store
    match = getattr(store, "quads_matching", None)
    cores = analysis.cores
    if cores is None or not callable(match) or len({c.iri for c in cores}) != len(cores):
        return read_findings(store, labels)  # (two rules of one id would share finding IRIs: read the graph)
    memory = analysis.stage_memory
    if not hasattr(type(store), "oxigraph"):  # (the attribute itself loads the store's deferred writes)
        memory = None
    risk = getattr(analysis, "risk", None)
    written = memory.written if memory is not None else None
    subj: Index = {}
    if written is None:
        for p in _SECOND_STAGE:
            if memory is not None and p in _IN_MEMORY:
                continue  # what the Python steps wrote of the applications: kept by them (issue 14)
            if risk is not None and p in _RISK:
                continue  # what the risk step wrote: kept by it (issue 14)
            _index_predicate(subj, p, match(p, G_FINDINGS), _GRAPH_OBJECTS)
    else:  # everything the stage wrote into graph/findings is in memory (the lists copied: the graphs below add)
        if risk is None:
            for p in _RISK:
                _index_predicate(subj, p, match(p, G_FINDINGS), _GRAPH_OBJECTS)
        for s, props in written.items():
            got = subj.get(s)
            if got is None:
                subj[s] = {p: list(vals) for p, vals in props.items()}
            else:
                for p, vals in props.items():
                    got.setdefault(p, []).extend(vals)
    # what the knowledge says of the applied techniques (and the D3FEND inferences the stage added to the finding
    # graph), by predicate: a whole view is a few ten thousand quads (read by subject, technique by technique,
    # it took as long at 1 k elements and longer on the examples, whose techniques cover most of it)
    for g in (G_FINDINGS, *_KNOWLEDGE_GRAPHS):
        if g == G_FINDINGS and written is not None:
            continue  # (the stage's D3FEND inferences: in memory)
        objects = _GRAPH_OBJECTS if g == G_FINDINGS else _KNOWLEDGE_OBJECTS
        unsettled = g != G_FINDINGS and isinstance(store, EmbeddedStore)  # (the bridge and the view: never deferred)
        for p in _KNOWLEDGE:
            _index_predicate(subj, p, match(p, g, complete=False) if unsettled else match(p, g), objects)
    first: Callable[[str, str], str] | None = None
    if memory is not None:
        first = _last_written(memory) if written is not None and not getattr(store, "location", None) else _first_in(store, G_FINDINGS)
    builder = _Builder(subj, labels, memory, first, risk)
    return builder.findings(cores, focus_kinds(store, cores, labels, complete=False), _schemes(store, complete=False))


def _first_in(store: Any, graph: str) -> Callable[[str, str], str]:
    """(subject, predicate) → the value of the predicate on the subject a reader of ``graph`` of the embedded
    store ``store`` sees first (the pyoxigraph store's order; its deferred writes are loaded at the first call)."""
    g = NamedNode(graph)

    def first(s: str, p: str) -> str:
        ox = store.oxigraph
        return next((q.object.value for q in ox.quads_for_pattern(NamedNode(s), NamedNode(p), None, g)), "")

    return first


_RECORD_FIELDS = {TG.appliedTechnique: "technique", TG.viaMapping: "mapping", TG.inRelease: "release",
                  TG.replacesTechnique: "replaces"}


def _last_written(memory: StageMemory) -> Callable[[str, str], str]:
    """:func:`_first_in` without loading the finding graph, for the in-memory embedded store: its reader lists the
    values of (subject, predicate) newest first (the reverse of the order quads were first added; a quad added
    again keeps its place), and the stage wrote an application's values in the order of its record's lists
    (tests/test_findings_memory.py checks both), so the value a reader sees first is the record's last."""
    apps = memory.apps

    def first(s: str, p: str) -> str:
        rec = apps.get(s)
        vals: list[str] = getattr(rec, _RECORD_FIELDS[p]) if rec is not None else []
        return vals[-1] if vals else ""

    return first


def _schemes(store: Store, *, complete: bool = True) -> dict[str, str]:
    """Threat category IRI → the IRI of its scheme (STRIDE or LINDDUN). ``complete=False``: without loading the
    embedded store's deferred finding graph (the categories are in the ontology)."""
    rows = store.select(_SCHEMES, complete=complete)
    return {r["cat"].value: r["scheme"].value for r in rows}


_KINDS: tuple[str, ...] = (TG.ExternalEntity, TG.Process, TG.DataStore, TG.DataFlow)
"""Element kinds, in the order that picks one for an element typed with several."""


def focus_kinds(store: Store, cores: Sequence[FindingCore], labels: dict[str, str], graph: str | None = None, *,
                complete: bool = True) -> dict[str, str]:
    """Focus IRI → label of its element kind (the first of :data:`_KINDS` it has), for the foci of ``cores``.
    Read from the store's index where it has one, else by SPARQL over the finding ``graph``. ``complete=False``:
    on the embedded store, without loading its deferred finding graph (which types no element)."""
    foci = {c.focus.value for c in cores}
    rank: dict[str, int] = {}
    match = getattr(store, "quads_matching", None)
    if callable(match):
        unsettled = not complete and isinstance(store, EmbeddedStore)
        for i, kind in enumerate(_KINDS):
            for q in (match(RDF.type, None, kind, complete=False) if unsettled else match(RDF.type, None, kind)):
                s = q.subject.value
                if s in foci and s not in rank:
                    rank[s] = i
    else:
        order = {k: i for i, k in enumerate(_KINDS)}
        for r in store.select(_FOCUS % {"g": graph or G_FINDINGS}):
            s, i = r["focus"].value, order[r["kind"].value]
            if i < rank.get(s, len(_KINDS)):
                rank[s] = i
    names = [labels.get(k, k) for k in _KINDS]
    return {s: names[i] for s, i in rank.items()}


def _graph_cores(subj: Index) -> list[FindingCore]:
    """The cores of the findings of a finding graph read whole (:func:`read_findings`)."""
    sev_names = {TG[name.capitalize()]: name for name in SEVERITIES}
    rules: dict[str, tuple[str, str, str]] = {}
    nodes: dict[str, tuple[str, Term] | None] = {}  # evidence nodes are shared per (role, value)
    out: list[FindingCore] = []
    for iri, props in subj.items():
        if _TYPE not in props or not any(t.value == _FINDING for t in props[_TYPE]):
            continue
        rule = props[_BY_RULE][0].value
        rinfo = rules.get(rule)
        if rinfo is None:
            rp = subj.get(rule) or _EMPTY
            rinfo = rules[rule] = (_one(rp, _RULE_ID) or rule.rsplit("/", 1)[-1], _one(rp, _LABEL), _one(rp, _SOURCE))
        bindings: dict[str, list[Term]] = {}
        for ev in props.get(_EVIDENCE_P, ()):
            node = nodes.get(ev.value, _NO_NODE)
            if node is _NO_NODE:
                ep = subj.get(ev.value) or _EMPTY
                vals = ep.get(_VALUE) or ep.get(_LITERAL_VALUE)
                node = nodes[ev.value] = (_one(ep, _ROLE), vals[0]) if vals else None
            if node is not None:
                bindings.setdefault(node[0], []).append(node[1])
        out.append(FindingCore(
            iri=iri, rule_id=rinfo[0], threat=rinfo[1], source=rinfo[2],
            severity=sev_names.get(props[_SEVERITY][0].value, "info"), focus=props[_FOCUS_P][0],
            categories=[c.value for c in props.get(_CATEGORY, ())], explanation=_one(props, _EXPLANATION),
            bindings=bindings,
        ))
    return out


_NO_NODE = ("", Literal(""))


def technique_id(iri: str) -> str:
    """ATT&CK / ATLAS / D3FEND id from an IRI (its last path or fragment segment).

    >>> technique_id("https://w3id.org/threatgraph/atlas/AML.T0051"), technique_id("http://d3fend.mitre.org/ontologies/d3fend.owl#FileAnalysis")
    ('AML.T0051', 'FileAnalysis')
    """
    return iri.replace("#", "/").rstrip("/").rsplit("/", 1)[-1]


_STATUS = {TG.Mitigated: "mitigated", TG.PartlyMitigated: "partly mitigated", TG.Unmitigated: "unmitigated"}


@dataclass
class _TechniqueData:
    mitigations: list[tuple[str, str]]
    countermeasures: list[tuple[str, str, str]]
    detections: list[tuple[str, str]]
    maturity: str


_MISSING = TechniqueView("", "", "", "")
_EMPTY: dict[str, list[Term]] = {}


class _K:
    """Predicate IRIs the builder reads, as plain strings (``TG.x`` builds its string on every access)."""

    analytic = TG.analytic
    applicableMitigation = TG.applicableMitigation
    appliedTechnique = TG.appliedTechnique
    controlStatus = TG.controlStatus
    countermeasureInference = TG.countermeasureInference
    countermeasureTechnique = TG.countermeasureTechnique
    coveredBy = TG.coveredBy
    mitigatedByFact = TG.mitigatedByFact
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


class _Builder:
    """Builds :class:`Finding` objects from their cores and the second stage in an :data:`Index` (the one
    builder of :func:`read_findings` and :func:`findings_of`).

    What many findings share is computed once: risk factor nodes, per-technique, per-mapping and
    per-application data (at 10 k elements, 102 k findings and 109 k technique applications, reading the
    finding graph took 4.1 s in the derivation alone when each application recomputed its technique's data).
    """

    def __init__(self, subj: Index, labels: dict[str, str], memory: StageMemory | None = None,
                 first: Callable[[str, str], str] | None = None, risk: RiskMemory | None = None) -> None:
        """``subj``: what the finding graph says of findings, technique applications and their nodes
        (:data:`_SECOND_STAGE`), and the knowledge of techniques, mappings and their nodes (:data:`_KNOWLEDGE`).
        ``memory``: what the stage's Python steps wrote of the applications (then ``subj`` leaves out the
        predicates of :data:`_IN_MEMORY`); ``first``: (subject, predicate) → the value the finding graph lists
        first (asked for an application with several techniques, mappings, releases or replaced techniques);
        ``risk``: what the risk step wrote (then ``subj`` leaves out the predicates of :data:`_RISK`)."""
        self.labels = labels
        self.risk = risk
        self.subj = subj
        self.memory = memory
        self.first = first
        # applications are per (element, technique), linked to each finding they realise by tg:ofFinding
        self.apps: dict[str, list[str]] = {}
        for s, props in subj.items():
            direct = props.get(_APPLICATION)
            if direct:
                self.apps.setdefault(s, []).extend(o.value for o in direct)
            fins = props.get(_OF_FINDING)
            if fins:
                for fin in fins:
                    lst = self.apps.get(fin.value)
                    if lst is None:
                        self.apps[fin.value] = [s]
                    else:
                        lst.append(s)
        if memory is not None:
            for f_iri, kept in memory.of_finding.items():
                known = self.apps.get(f_iri)
                if known is None:
                    self.apps[f_iri] = list(kept)
                else:
                    known.extend(kept)
        self.factors: dict[str, tuple[str, str, str, int, str]] = {}
        self.factor_lists: dict[tuple[str, ...], list[RiskFactorView]] = {}
        self.facts: dict[str, tuple[str, str]] = {}
        self.fact_lists: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self.labs: dict[str, str] = {}
        self.techniques: dict[str, _TechniqueData] = {}
        self.mappings: dict[str, tuple[str, list[str]]] = {}
        self.applications: dict[str, TechniqueView | None] = {}
        """Application IRI → its view without the finding's categories (an application realises several findings)."""
        self.parts: dict[tuple[object, ...], dict[str, Any]] = {}
        self.single_types: dict[str, frozenset[str]] = {}
        """Asset type IRI → the frozenset of it alone (:meth:`application_view`)."""
        """The fields of application views but their facts, by what the applications say (:meth:`application_view`)."""
        self.views: dict[tuple[object, ...], TechniqueView] = {}
        """The views of applications by their part's id and facts (:meth:`application_view`)."""
        self.realized: dict[str, set[str]] = {}
        """Mapping IRI → the categories it realises."""
        self.cat_keys: dict[tuple[str, ...], tuple[str, ...]] = {}
        """A finding's category IRIs → the one tuple of them (:meth:`attach` keys views by its id)."""
        self.finding_views: dict[tuple[int, int], TechniqueView] = {}
        """(id of an application view, id of a finding's category tuple) → the view the finding lists (shared by
        the findings alike; the application views and category tuples are kept, so their ids stay theirs)."""

    def lab(self, iri: str) -> str:
        out = self.labs.get(iri)
        if out is None:
            out = self.labs[iri] = self.labels.get(iri) or technique_id(iri)
        return out

    def props(self, s: str) -> dict[str, list[Term]]:
        """What is known of ``s`` (a finding, application, technique, mapping or one of their nodes)."""
        return self.subj.get(s) or _EMPTY

    def factor(self, n: str) -> tuple[str, str, str, int, str]:
        """(of, name, value, effect, subject label) of the risk factor node ``n``."""
        args = self.factors.get(n)
        if args is None and self.risk is not None:
            fac = self.risk.factors[n]
            subj = fac.subject
            args = self.factors[n] = (fac.of, fac.name, fac.value, fac.effect,
                                      self.lab(subj.value) if type(subj) is NamedNode else "")
        if args is None:
            fp = self.props(n)
            subject = _one(fp, _K.factorSubject)
            args = self.factors[n] = (
                _one(fp, _K.factorOf), _one(fp, _K.factorName), _one(fp, _K.factorValue),
                int(_one(fp, _K.factorEffect) or 0), self.lab(subject) if subject else "",
            )
        return args

    def findings(self, cores: Iterable[FindingCore], kinds: dict[str, str], schemes: dict[str, str]) -> list[Finding]:
        """The findings of ``cores``, sorted by focus label, focus, severity, rule, categories (and IRI), with their
        second stage: control status, coverage, risk, techniques.

        What findings alike share is computed once: their sorted categories per list of category IRIs, the risk
        factor views per list of factor nodes, the sorted technique views per (application views, categories); each
        finding gets its own lists of them. A finding is made without its ``__init__`` (its fields set at once)."""
        labels = self.labels
        lab = self.lab
        subj = self.subj
        memory = self.memory
        control = memory.control if memory is not None else None
        risk = self.risk
        scores = risk.scores if risk is not None else None
        factor_lists, factor = self.factor_lists, self.factor
        all_apps = self.apps
        applications, finding_views, realized_of = self.applications, self.finding_views, self.realized
        application_view = self.application_view
        technique_lists: dict[tuple[int, ...], list[TechniqueView]] = {}
        # category IRIs (as the core lists them) → (sorted category tuples, their labels, their IRIs: the views' key)
        shapes: dict[tuple[str, ...], tuple[list[tuple[str, str, str]], list[str], tuple[str, ...]]] = {}
        cat_keys = self.cat_keys
        evidence: dict[tuple[str, Term], tuple[str, str, str]] = {}
        focus_keys: dict[Term, tuple[str, str, str, str]] = {}  # focus → (label, its lower case, kind, IRI)
        keyed: list[tuple[tuple[object, ...], Finding]] = []
        status_names, rank_of = _STATUS, _RANK
        p_status, p_covered, p_facts = _K.controlStatus, _K.coveredBy, _K.mitigatedByFact
        p_like, p_impact, p_score, p_level, p_factor = _K.likelihood, _K.impact, _K.riskScore, _K.riskLevel, _K.riskFactor
        new = _new_finding
        for c in cores:
            fk = focus_keys.get(c.focus)
            if fk is None:
                focus = c.focus.value
                label = labels.get(focus, focus.rsplit("#", 1)[-1].rsplit("/", 1)[-1])
                fk = focus_keys[c.focus] = (label, label.lower(), kinds.get(focus, ""), focus)
            focus = fk[3]  # (one string per element: the findings' sort compares equal foci by identity)
            ckey = tuple(c.categories)
            shape = shapes.get(ckey)
            if shape is None:
                cts = []
                for cat in ckey:
                    fw = "LINDDUN" if "linddun" in schemes.get(cat, "") else "STRIDE"
                    cts.append((cat, labels.get(cat, cat), fw))
                cts.sort(key=_category_order)
                fc = tuple(ci for ci, _label, _fw in cts)
                shape = shapes[ckey] = (cts, [ct[1] for ct in cts], cat_keys.setdefault(fc, fc))
            cts, cat_labels, fc = shape
            ev: list[tuple[str, str, str]] = []
            for role, vals in c.bindings.items():
                if role == "focus":
                    continue
                for v in vals:
                    if type(v) is BlankNode:
                        continue
                    e = evidence.get((role, v))
                    if e is None:
                        text = v.value
                        e = evidence[(role, v)] = (role, text, text if type(v) is Literal else labels.get(text, text))
                    ev.append(e)
            ev.sort()
            iri = c.iri
            props = subj.get(iri) or _EMPTY
            covered = props.get(p_covered)
            facts = props.get(p_facts)
            likelihood = impact = risk_score = 0
            risk_level = ""
            key: tuple[str, ...] | None = None
            if scores is None:
                got = _one(props, p_like)
                if got:
                    likelihood = int(got)
                got = _one(props, p_impact)
                if got:
                    impact = int(got)
                got = _one(props, p_score)
                if got:
                    risk_score = int(got)
                risk_level = _one(props, p_level)
                nodes = props.get(p_factor)
                if nodes:
                    key = tuple(n.value for n in nodes)
            else:
                scored = scores.get(iri)
                if scored is not None:
                    likelihood, impact, risk_score, risk_level, enodes, fnodes = scored
                    key = enodes + fnodes if fnodes else enodes
            if key:
                # findings of one element share most factor nodes: the sorted factor views once per list of nodes
                rows = factor_lists.get(key)
                if rows is None:
                    rows = factor_lists[key] = [RiskFactorView(*r) for r in sorted(
                        (factor(n) for n in key),
                        key=lambda r: (r[0] != "impact", -r[3] if r[0] == "impact" else 0, r[1], r[2], r[3], r[4]))]
                risk_factors = rows.copy()
            else:
                risk_factors = []
            apps = all_apps.get(iri)
            if apps:
                bases = []
                for app in apps:
                    base = applications.get(app, _MISSING)
                    if base is _MISSING:
                        base = applications[app] = application_view(app)
                    if base is not None:
                        bases.append(base)
                # the sorted views once per (application views, categories): findings alike share them (by id:
                # the application views and category tuples are kept, so their ids stay theirs)
                tkey = (id(fc), *map(id, bases))
                techniques = technique_lists.get(tkey)
                if techniques is None:
                    techniques = []
                    fc_id = id(fc)
                    for base in bases:
                        # one view per (application view, the finding's categories): the findings of one element
                        # and category list share it, as its lists (no reader of a view changes it: report.py,
                        # export/, diffmodel.py, releasediff.py only read them); the view of an application is the
                        # view of every application alike (application_view), with the categories of the finding
                        # its mapping realises
                        vkey = (id(base), fc_id)
                        tv = finding_views.get(vkey)
                        if tv is None:
                            realized = realized_of.get(base.mapping)
                            if realized is None:
                                realized = realized_of[base.mapping] = {
                                    x.value for x in self.props(base.mapping).get(_K.realizes, ())}
                            d = base.__dict__.copy()  # (a 19-argument __init__ per view cost more)
                            d["categories"] = [label for ci, label, _fw in cts if ci in realized]
                            tv = finding_views[vkey] = _new_view(TechniqueView)
                            tv.__dict__ = d
                        techniques.append(tv)
                    techniques.sort(key=_technique_order)
                    technique_lists[tkey] = techniques
                techniques = techniques.copy()
            else:
                techniques = []
            f = new(Finding)
            f.__dict__ = {
                "iri": iri, "rule_id": c.rule_id, "threat": c.threat, "severity": c.severity, "focus": focus,
                "focus_label": fk[0], "focus_kind": fk[2], "explanation": c.explanation, "source": c.source,
                "categories": cts.copy(), "evidence": ev, "techniques": techniques,
                "control_status": status_names.get(
                    control.get(iri, "") if control is not None else _one(props, p_status), ""),
                "covered_by": sorted([lab(x.value) for x in covered]) if covered else [],
                "mitigated_by": sorted([x.value.rsplit("#", 1)[-1] for x in facts]) if facts else [],
                "likelihood": likelihood, "impact": impact, "risk_score": risk_score, "risk_level": risk_level,
                "risk_factors": risk_factors,
            }
            keyed.append(((fk[1], focus, -(rank_of.get(c.severity, -1) + 1), c.rule_id, cat_labels, iri), f))
        keyed.sort(key=_first)
        return [f for _k, f in keyed]

    def application_view(self, app: str) -> TechniqueView | None:
        """What a technique application says, the same for every finding it realises (categories left empty);
        None when it names no technique."""
        ap = self.subj.get(app) or _EMPTY
        memory = self.memory
        rec = memory.apps.get(app) if memory is not None else None
        single_types = self.single_types
        if rec is None:
            t = _one(ap, _K.appliedTechnique)
            via = _one(ap, _K.viaMapping)
            asset_types: frozenset[str] = frozenset(c.value for c in ap.get(_K.viaAssetType, ()))
            release = _one(ap, _K.inRelease)
            rep = _one(ap, _K.replacesTechnique)
            exposures = tuple(x.value for x in ap.get(_K.exposure, ()))
            reduced = tuple(x.value for x in ap.get(_K.reducedByFact, ()))
        else:
            technique, mapping, releases, replaces = rec.technique, rec.mapping, rec.release, rec.replaces
            if (len(technique) <= 1 and len(mapping) <= 1 and len(releases) <= 1 and len(replaces) <= 1) \
                    or self.first is None:  # (AppRecord.single)
                t = technique[0] if technique else ""
                via = mapping[0] if mapping else ""
                release = releases[0] if releases else ""
                rep = replaces[0] if replaces else ""
            else:  # several values: the one the graph lists first, as the store's reader gets it
                first = self.first
                t, via = first(app, _K.appliedTechnique), first(app, _K.viaMapping)
                release, rep = first(app, _K.inRelease), first(app, _K.replacesTechnique)
            types = rec.asset_types
            if len(types) == 1:  # (mostly one: the frozenset of each type once, its hash kept)
                (one,) = types
                asset_types = single_types.get(one)  # type: ignore[assignment]
                if asset_types is None:
                    asset_types = single_types[one] = frozenset(types)
            else:
                asset_types = frozenset(types)
            exposures = tuple(rec.exposures)
            reduced = tuple(rec.reduced)
        if not t:
            return None
        status = memory.control.get(app, "") if memory is not None else _one(ap, _K.controlStatus)
        by = ap.get(_K.implementedBy)
        implemented = ap.get(_K.implementedMitigation)
        # what applications of one technique by one mapping say but their facts: computed once (the parts)
        pkey = (t, via, release, rep, asset_types, status, tuple(c.value for c in by) if by else (),
                tuple(m.value for m in implemented) if implemented else ())
        part = self.parts.get(pkey)
        if part is None:
            part = self.parts[pkey] = self._part(*pkey)
        # applications of one technique on elements alike say the same: one view for them all (findings shares it)
        key = (id(part), exposures, reduced)  # (the parts are kept: their ids stay theirs)
        tv = self.views.get(key)
        if tv is None:
            d = part.copy()
            d["exposures"] = self._facts(exposures)
            d["reduced_by"] = self._facts(reduced)
            tv = self.views[key] = _new_view(TechniqueView)
            tv.__dict__ = d
        return tv

    def _part(self, t: str, via: str, release: str, rep: str, asset_types: Iterable[str], status: str,
              by: tuple[str, ...], implemented: tuple[str, ...]) -> dict[str, Any]:
        """The fields of the view of an application with these values (:meth:`application_view`), but its facts."""
        lab = self.lab
        td = self.techniques.get(t)
        if td is None:
            td = self.techniques[t] = self.technique_data(t)
        mapping = self.mappings.get(via)
        if mapping is None:
            mp = self.props(via)
            mapping = self.mappings[via] = (_one(mp, _K.justification), sorted(x.value for x in mp.get(_K.source, ())))
        ctl = [lab(c) for c in by]
        unresolved = ""
        if release == _NO_RELEASE:
            unresolved = self.labels.get(release) or "unresolved: no ATT&CK/ATLAS release loaded"
            release = ""
        else:
            release = release.rsplit("release/", 1)[-1]
        # the fields of TechniqueView, in its order
        return {
            "iri": t, "id": technique_id(t), "label": self.labels.get(t, ""), "mapping": via,
            "asset_types": sorted({lab(c) for c in asset_types}), "justification": mapping[0], "sources": mapping[1],
            "release": release, "replaces": technique_id(rep) if rep else "", "exposures": [], "reduced_by": [],
            "status": _STATUS.get(status, "unmitigated"), "mitigations": td.mitigations,
            "countermeasures": td.countermeasures,
            "implemented": sorted({(technique_id(m), ", ".join(sorted(ctl))) for m in implemented}),
            "detections": td.detections, "maturity": td.maturity, "categories": [], "unresolved": unresolved,
        }

    def _facts(self, key: tuple[str, ...]) -> list[tuple[str, str]]:
        """(subject label, attribute local name) of exposure / reduction fact nodes (IRIs), sorted, distinct (one
        list per set of nodes: an element's applications share its fact nodes; the views share the lists)."""
        found = self.fact_lists.get(key)
        if found is not None:
            return found
        out: set[tuple[str, str]] = set()
        facts = self.facts
        kept = self.memory.facts if self.memory is not None else _NO_FACTS
        for n in key:
            fact = facts.get(n)
            if fact is None:
                sa = kept.get(n)
                if sa is None:
                    xp = self.props(n)
                    sa = (_one(xp, _K.factSubject), _one(xp, _K.factAttribute))
                fact = facts[n] = (self.lab(sa[0]), technique_id(sa[1]))
            out.add(fact)
        found = self.fact_lists[key] = sorted(out)
        return found

    def technique_data(self, t: str) -> _TechniqueData:
        """Mitigations, D3FEND countermeasures (with the inference that found them), detections, maturity."""
        labels, lab = self.labels, self.lab
        tp = self.props(t)
        mitigations = sorted({(technique_id(m.value), labels.get(m.value, "")) for m in tp.get(_K.applicableMitigation, ())})
        why: dict[str, str] = {}
        for x in tp.get(_K.countermeasureInference, ()):
            xp = self.props(x.value)
            c = _one(xp, _K.countermeasureTechnique)
            text = (f"{technique_id(_one(xp, _K.offensiveRelation))} {lab(_one(xp, _K.offensiveArtifact))} ← "
                    f"{technique_id(_one(xp, _K.defensiveRelation))} {lab(_one(xp, _K.defendedArtifact))}")
            if c and (c not in why or text < why[c]):
                why[c] = text
        countermeasures = sorted((_one(self.props(c), _K.d3fendId) or technique_id(c), lab(c), w) for c, w in why.items())
        detections: list[tuple[str, str]] = []
        for d in tp.get(_K.detectionStrategy, ()):
            analytics = sorted(technique_id(a.value) for a in self.props(d.value).get(_K.analytic, ()))
            extra = f" (analytics: {', '.join(analytics)})" if analytics else ""
            detections.append((technique_id(d.value), labels.get(d.value, "") + extra))
        for d in tp.get(_K.dataComponent, ()):
            detections.append(("data component", labels.get(d.value, technique_id(d.value))))
        detections.sort()
        return _TechniqueData(mitigations, countermeasures, detections, _one(tp, _K.maturity))


_new_view = object.__new__
_new_finding = object.__new__
_first = itemgetter(0)


def _category_order(c: tuple[str, str, str]) -> tuple[bool, str, str]:
    """The order of a finding's categories: STRIDE first, then by label and IRI."""
    return (c[2] != "STRIDE", c[1], c[0])


def _technique_order(t: TechniqueView) -> tuple[bool, str, str, str]:
    """The order of a finding's techniques: not mitigated first, then by id, IRI and mapping."""
    return (t.status == "mitigated", t.id, t.iri, t.mapping)


_SECOND_STAGE: tuple[str, ...] = (
    TG.controlStatus, TG.coveredBy, TG.mitigatedByFact, TG.likelihood, TG.impact, TG.riskScore, TG.riskLevel, TG.riskFactor,
    TG.factorOf, TG.factorName, TG.factorValue, TG.factorEffect, TG.factorSubject,
    TG.application, TG.ofFinding, TG.appliedTechnique, TG.viaMapping, TG.viaAssetType, TG.inRelease,
    TG.replacesTechnique, TG.exposure, TG.reducedByFact, TG.factSubject, TG.factAttribute, TG.implementedBy,
    TG.implementedMitigation,
)
"""The predicates of findings, technique applications, their fact and risk factor nodes that :class:`_Builder`
reads (:func:`findings_of` reads these from the finding graph, by predicate)."""
_IN_MEMORY: frozenset[str] = frozenset({
    TG.controlStatus, TG.ofFinding, TG.appliedTechnique, TG.viaMapping, TG.viaAssetType, TG.inRelease, TG.replacesTechnique,
    TG.exposure, TG.reducedByFact, TG.factSubject, TG.factAttribute,
})
"""The predicates of :data:`_SECOND_STAGE` that :class:`~threatgraph.analysis.stage_python.StageMemory` holds
(when the stage's Python steps kept it, :func:`findings_of` does not read them back)."""
_RISK: frozenset[str] = frozenset({
    TG.likelihood, TG.impact, TG.riskScore, TG.riskLevel, TG.riskFactor,
    TG.factorOf, TG.factorName, TG.factorValue, TG.factorEffect, TG.factorSubject,
})
"""The predicates of :data:`_SECOND_STAGE` that :class:`~threatgraph.analysis.risk.RiskMemory` holds (when the
analysis kept it, :func:`findings_of` does not read them back)."""
_NO_FACTS: dict[str, tuple[str, str]] = {}
_KNOWLEDGE: tuple[str, ...] = (
    TG.applicableMitigation, TG.countermeasureInference, TG.countermeasureTechnique,
    TG.d3fendId, TG.offensiveRelation, TG.offensiveArtifact, TG.defensiveRelation, TG.defendedArtifact,
    TG.detectionStrategy, TG.analytic, TG.dataComponent, TG.maturity, TG.justification, DCT.source, TG.realizes,
)
"""The predicates of techniques, mappings, countermeasure inferences and detections :class:`_Builder` reads
(:meth:`_Builder.props`; the finding graph, graph/bridge and graph/view)."""


def _one(d: dict[str, list[Term]], s: str) -> str:
    vals = d.get(s)
    return vals[0].value if vals else ""


_NO_RELEASE = TG.NoReleaseLoaded
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
G_FINDINGS = graph_iri("findings")
