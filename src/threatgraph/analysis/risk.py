"""Residual risk of every finding: likelihood × impact on 1–5 scales, each factor stored as RDF.

The facts come from SPARQL (one query per factor kind, over all findings at once); the arithmetic is
here. The scale and every factor are documented in docs/risk.md. On each finding the engine writes
``tg:likelihood``, ``tg:impact``, ``tg:riskScore``, ``tg:riskLevel`` and ``tg:riskFactor`` nodes
(``tg:factorOf`` "likelihood"/"impact", ``tg:factorName``, ``tg:factorValue``, ``tg:factorEffect``,
``tg:factorSubject``). Factors that depend only on the element are shared by the element's findings.

>>> combine_likelihood([2, 1, -1]), combine_likelihood([9]), combine_likelihood([-9])
(4, 5, 1)
>>> risk_level(2 * 3), risk_level(4 * 4), risk_level(1)
('medium', 'critical', 'low')
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyoxigraph import Literal, NamedNode

from threatgraph.analysis.techniques import Applications, read_applications
from threatgraph.store.base import Store, Term
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import FINDING, RDF, TG, graph_iri

if TYPE_CHECKING:
    from threatgraph.analysis.stage_python import StageMemory

G_FINDINGS = graph_iri("findings")
BASE_LIKELIHOOD = 2
"""Likelihood before any factor: "possible" (2 of 5)."""
DEFAULT_IMPACT = 2
"""Impact when nothing is known about the element's data or criticality (as for internal data)."""
CRITICAL_ASSET_IMPACT = 3
"""Impact floor of critical ML asset types (training data, model artifacts, registries, feature stores)."""
MATURITY_POINTS = {"realized": 1, "demonstrated": 0, "feasible": -1}
"""Likelihood points by the highest ATLAS maturity of the finding's techniques (ATT&CK counts as realized)."""
CONTROL_POINTS = {TG.Mitigated: -2, TG.PartlyMitigated: -1}
STATUS_TEXT = {TG.Mitigated: "mitigated", TG.PartlyMitigated: "partly mitigated"}
LEVELS: tuple[tuple[int, str], ...] = ((15, "critical"), (10, "high"), (5, "medium"), (1, "low"))
"""Risk level by score (likelihood × impact): 15–25 critical, 10–14 high, 5–9 medium, 1–4 low."""

# Element-level queries cover every element (the findings' foci are picked in Python): a sub-select of
# the foci joined to them is re-evaluated per row by Oxigraph (measured: 3.9 s instead of 0.05 s at 1 k).

# Element-level facts: each query yields ?e (the element), ?s (what the factor was read from), ?v (value).
_DATA = """SELECT ?e ?s ?v ?c WHERE {
  { ?e tg:holds|tg:processes|tg:carries ?s } UNION { ?fl tg:target|tg:source ?e ; tg:carries ?s }
  ?s tg:classification ?c . ?c tg:sensitivityRank ?v . }"""
_CRITICALITY = "SELECT ?e ?s ?v WHERE { ?e tg:criticality ?v . BIND(?e AS ?s) }"
_CRITICAL_TYPE = """SELECT ?e ?s ?v WHERE {
  VALUES ?s { tgml:Dataset tgml:ModelArtifact tgml:ModelRegistry tgml:FeatureStore } ?e a ?s . BIND("" AS ?v) }"""
_PUBLIC = """SELECT ?e ?s ?v WHERE {
  { ?e tg:publiclyExposed true . BIND(?e AS ?s) BIND("publicly exposed" AS ?v) }
  UNION { ?fl tg:target ?e ; tg:source ?s . ?s tg:publiclyExposed true . BIND("receives data from a publicly exposed element" AS ?v) }
  UNION { ?fl tg:target ?e ; tg:source ?src . ?src tg:inZone ?s . ?s tg:trustLevel 0 . BIND("receives data from an untrusted zone (trust level 0)" AS ?v) }
  UNION { ?e tg:source ?src . ?src tg:inZone ?s . ?s tg:trustLevel 0 . BIND("flow from an untrusted zone (trust level 0)" AS ?v) }
  UNION { ?e tg:inZone ?s . ?s tg:trustLevel 0 . BIND("in an untrusted zone (trust level 0)" AS ?v) } }"""
_BOUNDARY = """SELECT ?e ?s ?v WHERE {
  { ?s tg:target ?e ; tg:crossesBoundary true . } UNION { ?e tg:crossesBoundary true . BIND(?e AS ?s) }
  BIND("crosses a trust boundary" AS ?v) }"""
_UNTRUSTED = """SELECT ?e ?s ?v WHERE {
  { ?e tg:untrustedOrigin true . BIND(?e AS ?s) BIND("third-party / untrusted origin" AS ?v) }
  UNION { ?fl tg:target ?e ; tg:source ?s . ?s tg:untrustedOrigin true . BIND("fed by an untrusted source" AS ?v) }
  UNION { ?e tg:source ?s . ?s tg:untrustedOrigin true . BIND("carries data from an untrusted source" AS ?v) }
  UNION { ?e tgml:feedsFrom+ ?s . ?s tg:untrustedOrigin true . BIND("lineage from an untrusted source" AS ?v) } }"""

# Finding-level facts.
# The maturity of each applied technique, read per (technique, release): a few hundred rows, where a
# join per application read ~110 k rows through GRAPH ?rel (1.1 s at 10 k elements).
_MATURITY = f"""SELECT ?s ?rel ?v WHERE {{
  {{ SELECT DISTINCT ?s ?rel WHERE {{ GRAPH <{G_FINDINGS}> {{ ?app tg:appliedTechnique ?s ; tg:inRelease ?rel }} }} }}
  OPTIONAL {{ GRAPH ?rel {{ ?s kb:maturity ?m }} }}
  OPTIONAL {{ GRAPH ?rel {{ ?s kb:attackId ?aid }} }}
  BIND(COALESCE(LCASE(STR(?m)), IF(BOUND(?aid), "realized", "")) AS ?v) FILTER(?v != "") }}"""
_CONTROLS = f"""SELECT ?f ?v WHERE {{ GRAPH <{G_FINDINGS}> {{ ?f a tg:Finding ; tg:controlStatus ?v }} }}"""
_REDUCED = f"""SELECT ?app ?attr WHERE {{ GRAPH <{G_FINDINGS}> {{ ?app tg:reducedByFact ?x . ?x tg:factAttribute ?attr }} }}"""
_FINDINGS = f"SELECT ?f ?e WHERE {{ GRAPH <{G_FINDINGS}> {{ ?f a tg:Finding ; tg:focus ?e }} }}"


@dataclass(frozen=True)
class Factor:
    """One factor: of "likelihood" or "impact"; for likelihood ``effect`` is points, for impact a level."""

    of: str
    name: str
    value: str
    effect: int
    subject: Term | None = None

    def key(self) -> str:
        return f"{self.of}|{self.name}|{self.value}|{self.effect}|{self.subject}"


@dataclass
class RiskMemory:
    """What :func:`score_findings` wrote, kept in memory (issue 14): the finding read-back
    (:func:`~threatgraph.analysis.findings.findings_of`) builds the findings' risk from it instead of loading the
    finding graph the writes were deferred to. Exactly the ``tg:likelihood``, ``tg:impact``, ``tg:riskScore``,
    ``tg:riskLevel`` and ``tg:riskFactor`` quads of the scored findings and the factor nodes' quads."""

    scores: dict[str, tuple[int, int, int, str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    """Finding IRI → (likelihood, impact, score, level, its element's factor node IRIs, its own factor node IRIs);
    a node may be in both (then one quad)."""
    factors: dict[str, Factor] = field(default_factory=dict)
    """Factor node IRI → the factor it describes."""


def combine_likelihood(points: Iterable[int]) -> int:
    """Base likelihood plus the factors' points, clamped to 1–5."""
    return max(1, min(5, BASE_LIKELIHOOD + sum(points)))


def risk_level(score: int) -> str:
    """Level name of a risk score (1–25)."""
    for floor, name in LEVELS:
        if score >= floor:
            return name
    return "low"


def _local(iri: str) -> str:
    return iri.rstrip("/#").replace("#", "/").rsplit("/", 1)[-1]


def _tuples(store: Store, query: str, names: Sequence[str]) -> Iterable[Sequence[Term | None]]:
    """The solutions of the SELECT ``query`` (variables ``names``, in its order) as sequences of terms, None where
    unbound: on the embedded store as pyoxigraph gives them (no dict per row), else from the rows. Reads only the
    model, its closure and the knowledge (``complete=False``: the embedded store's deferred writes stay unloaded)."""
    if isinstance(store, EmbeddedStore):
        return store.solutions(query, complete=False)
    return [tuple(r.get(n) for n in names) for r in store.select(query, complete=False)]


def element_factors(store: Store) -> dict[str, list[Factor]]:
    """Factors that depend on the element only (data, criticality, asset type, exposure, boundary, origin).

    Of several facts of one kind the one named is the first by a total order (the same on every backend): the
    best per element is kept as the rows come (a row replaces it only when strictly before it), not all rows
    sorted (16.5 k data rows at 10 k elements)."""
    out: dict[str, list[Factor]] = defaultdict(list)
    # equal factors are one object (score_findings' node cache by id: one lookup, no Factor hash per element);
    # the elements holding one data asset share its factor (at 1 k, 1000 data factors are 3 distinct)
    made: dict[tuple[str, str, str, int, Term | None], Factor] = {}

    def factor(of: str, name: str, value: str, effect: int, subject: Term | None) -> Factor:
        key = (of, name, value, effect, subject)
        fac = made.get(key)
        if fac is None:
            fac = made[key] = Factor(of, name, value, effect, subject)
        return fac

    # between equally sensitive data assets the smallest (N-Triples text) is named on every backend
    best_data: dict[str, tuple[int, str, Term, Term]] = {}
    for e_t, s, v, c in _tuples(store, _DATA, ("e", "s", "v", "c")):
        rank = int(v.value)  # type: ignore[union-attr]
        e = e_t.value  # type: ignore[union-attr]
        prev = best_data.get(e)
        if prev is None or rank > prev[0] or (rank == prev[0] and str(s) < prev[1]):
            best_data[e] = (rank, str(s), s, c)  # type: ignore[assignment]
    for e in sorted(best_data):
        rank, _key, s, c = best_data[e]
        cls = _local(c.value)
        out[e].append(factor("impact", "data classification", f"{cls} (sensitivity rank {rank})", min(rank, 5), s))
    for e_t, s, v in _tuples(store, _CRITICALITY, ("e", "s", "v")):
        crit = max(1, min(5, int(v.value)))  # type: ignore[union-attr]
        out[e_t.value].append(Factor("impact", "criticality", str(crit), crit, s))  # type: ignore[union-attr]
    for e_t, s, _v in _tuples(store, _CRITICAL_TYPE, ("e", "s", "v")):
        out[e_t.value].append(  # type: ignore[union-attr]
            factor("impact", "critical ML asset type", _local(s.value), CRITICAL_ASSET_IMPACT, s)  # type: ignore[union-attr]
        )
    for query, name in ((_PUBLIC, "exposure"), (_BOUNDARY, "trust boundary"), (_UNTRUSTED, "untrusted origin")):
        # one point per kind, from the first fact by (value, subject)
        first: dict[str, tuple[str, str, Term]] = {}
        for e_t, s, v in _tuples(store, query, ("e", "s", "v")):
            e = e_t.value  # type: ignore[union-attr]
            vv, sv = v.value, s.value  # type: ignore[union-attr]
            prev_l = first.get(e)
            if prev_l is None or (vv, sv) < (prev_l[0], prev_l[1]):
                first[e] = (vv, sv, s)  # type: ignore[assignment]
        for e in sorted(first):
            vv, _sv, s = first[e]
            out[e].append(factor("likelihood", name, vv, 1, s))
    return out


def finding_factors(
    store: Store, control_status: Mapping[str, str] | None = None, applications: Applications | None = None,
    memory: StageMemory | None = None,
) -> dict[str, list[Factor]]:
    """Factors that depend on the finding: technique maturity, reducing attributes, declared controls.

    ``control_status`` (finding IRI → ``tg:controlStatus`` IRI) and ``applications`` spare reading the
    statuses and applications back from the store when the caller has just written them
    (``StageResult.finding_status``, ``StageResult.applications``); ``memory`` (``StageResult.memory``: the
    applications' reducing facts) spares reading the reductions back.
    """
    out: dict[str, list[Factor]] = defaultdict(list)
    made: dict[tuple[str, str, int, Term | None], Factor] = {}  # equal factors are one object (score_findings' node cache)

    def factor(name: str, value: str, effect: int, subject: Term | None = None) -> Factor:
        key = (name, value, effect, subject)
        fac = made.get(key)
        if fac is None:
            fac = made[key] = Factor("likelihood", name, value, effect, subject)
        return fac

    apps = applications if applications is not None else read_applications(store)
    maturity: dict[tuple[str, str], tuple[int, str, Term, str]] = {}  # (points, technique IRI, technique, maturity)
    for r in _maturity_rows(store, apps):
        m = r["v"].value
        pts = MATURITY_POINTS.get(m)
        if pts is not None:
            sv = r["s"].value
            maturity[(sv, r["rel"].value)] = (pts, sv, r["s"], m)
    reduced: dict[str, str] = {}
    # the smallest attribute IRI names the reduction: the same text on every run and backend
    if memory is not None:  # (the rows of _reductions, by application: one min per application)
        facts = memory.facts
        for app, rec in memory.apps.items():
            if rec.reduced:
                attrs = [facts[x][1] for x in rec.reduced if x in facts]
                if attrs:
                    reduced[app] = min(attrs)
    else:
        for app, attr in _reductions(store, memory):
            prev = reduced.get(app)
            if prev is None or attr < prev:
                reduced[app] = attr
    technique = apps.technique
    by_apps: dict[tuple[str, ...], list[Factor]] = {}  # the findings of one element and techniques: once
    # the maturity rows ranked by (points, technique IRI), the order the best is picked by (rows equal in both name
    # the same technique at the same maturity: one rank); each application → the rank of its row, -1 without one:
    # a finding's best is the max of its applications' ranks (no tuple compared per application)
    firsts: dict[tuple[int, str], tuple[int, str, Term, str]] = {}
    for row in maturity.values():
        firsts.setdefault((row[0], row[1]), row)
    order = sorted(firsts)
    ranked = [firsts[k] for k in order]
    rank_of = {k: i for i, k in enumerate(order)}
    # (technique term's id, release) → its rank: the applications of one technique share its term (as
    # applications_in makes them; the terms are kept by ``apps``, so their ids stay theirs), looked up once
    rank_by_term: dict[tuple[int, str], int] = {}
    app_rank: dict[str, int] = {}
    for app, (t, rel) in technique.items():
        tkey = (id(t), rel)
        rank = rank_by_term.get(tkey)
        if rank is None:
            found = maturity.get((t.value, rel))
            rank = rank_by_term[tkey] = -1 if found is None else rank_of[(found[0], found[1])]
        app_rank[app] = rank
    rank_get = app_rank.__getitem__
    is_reduced = reduced.__contains__
    for f, all_apps in apps.of_finding.items():
        key = tuple(all_apps)
        made_here = by_apps.get(key)
        if made_here is None:
            made_here = by_apps[key] = []
            top = max(map(rank_get, all_apps), default=-1)
            best = ranked[top] if top >= 0 else None
            if best is not None:
                pts, _sv, s, m = best
                made_here.append(factor("technique maturity", f"{m} ({_local(s.value)})", pts, s))
            if all_apps and all(map(is_reduced, all_apps)):
                attrs = sorted({_local(reduced[a]) for a in all_apps})
                made_here.append(factor("reducing attribute", f"{', '.join(attrs)} for every applicable technique", -1))
        if made_here:
            out[f] = made_here.copy()
    statuses: Iterable[tuple[str, str]] = (
        control_status.items()
        if control_status is not None
        else ((r["f"].value, r["v"].value) for r in store.select(_CONTROLS))
    )
    for f, v in statuses:
        pts = CONTROL_POINTS.get(v)
        if pts is not None:
            out[f].append(factor("declared controls", STATUS_TEXT[v], pts))
    return out


def _reductions(store: Store, memory: StageMemory | None) -> Iterable[tuple[str, str]]:
    """(application IRI, attribute IRI) of each reducing fact of each application: the rows of :data:`_REDUCED`,
    from ``memory`` when the stage kept its applications (the same quads), else read from the finding graph."""
    if memory is None:
        return ((r["app"].value, r["attr"].value) for r in store.select(_REDUCED))
    facts = memory.facts
    return ((app, facts[x][1]) for app, rec in memory.apps.items() for x in rec.reduced if x in facts)


def _maturity_rows(store: Store, apps: Applications) -> list[dict[str, Term]]:
    """The rows of :data:`_MATURITY` for the (technique, release) pairs of ``apps`` (the only ones looked up):
    the pairs given as VALUES, not found by a DISTINCT over every application of the finding graph
    (0.2 s at 10 k elements, 229 k applications)."""
    # (the applications of one technique share its term, as applications_in makes them: deduplicated by the term's
    # id first, the terms hashed once per (term, release), not once per application)
    pairs = set({(id(t), rel): (t, rel) for t, rel in apps.technique.values()}.values())
    if not all(type(t) is NamedNode for t, _ in pairs):
        return store.select(_MATURITY)
    if not pairs:
        return []
    values = " ".join(f"({t} {NamedNode(rel)})" for t, rel in sorted(pairs, key=lambda p: (p[0].value, p[1])))
    return store.select(f"""SELECT ?s ?rel ?v WHERE {{
  VALUES (?s ?rel) {{ {values} }}
  OPTIONAL {{ GRAPH ?rel {{ ?s kb:maturity ?m }} }}
  OPTIONAL {{ GRAPH ?rel {{ ?s kb:attackId ?aid }} }}
  BIND(COALESCE(LCASE(STR(?m)), IF(BOUND(?aid), "realized", "")) AS ?v) FILTER(?v != "") }}""", complete=False)


def score_findings(
    store: Store,
    control_status: Mapping[str, str] | None = None,
    applications: Applications | None = None,
    foci: Mapping[str, Term] | None = None,
    *,
    skip: Set[str] = frozenset(),
    memory: StageMemory | None = None,
    keep: RiskMemory | None = None,
) -> int:
    """Score every finding of ``graph/findings``; write scores and factor nodes there; return the count.

    ``control_status``, ``applications``, ``memory``: see :func:`finding_factors`; ``foci`` (finding IRI → focus
    element), when the caller has them, spares reading the findings back. Findings in ``skip`` get no
    risk (baseline findings that no technique realises keep their rule's severity). ``keep`` receives what is
    written (:class:`RiskMemory`). Given ``control_status``, ``applications``, ``memory`` and ``foci``, nothing is
    read from the finding graph: on the embedded store its deferred writes stay unloaded.
    """
    from threatgraph.analysis.engine import _TextWriter  # engine imports this module

    per_element = element_factors(store)
    per_finding = finding_factors(store, control_status, applications, memory)
    # written as N-Triples text, loaded in chunks (engine._TextWriter): a Python Quad per triple and
    # bulk_extend took 2.2 s of CPU for the ~400 k triples at 10 k elements, the text ~0.9 s
    writer = _TextWriter(store, G_FINDINGS)
    factor_nodes: dict[Factor, str] = {}  # equal factors have equal keys (Factor.key); N-Triples terms
    by_id: dict[int, str] = {}  # the same Factor object again (finding_factors shares them)
    kept_factors = keep.factors if keep is not None else None
    kept_scores = keep.scores if keep is not None else None
    p = {n: str(NamedNode(TG[n])) for n in (
        "likelihood", "impact", "riskScore", "riskLevel", "riskFactor", "factorOf", "factorName",
        "factorValue", "factorEffect", "factorSubject", "RiskFactor")}
    rdf_type = str(NamedNode(RDF.type))

    def node(fac: Factor) -> str:
        n = by_id.get(id(fac))
        if n is not None:
            return n
        n = factor_nodes.get(fac)
        if n is None:
            key = fac.key()
            n = factor_nodes[fac] = str(NamedNode(f"{FINDING}risk/{hashlib.sha1(key.encode()).hexdigest()[:16]}"))
            text = (f"{n} {rdf_type} {p['RiskFactor']} .\n{n} {p['factorOf']} {Literal(fac.of)} .\n"
                    f"{n} {p['factorName']} {Literal(fac.name)} .\n{n} {p['factorValue']} {Literal(fac.value)} .\n"
                    f"{n} {p['factorEffect']} {Literal(fac.effect)} .\n")
            lines = 5
            if isinstance(fac.subject, NamedNode):
                text += f"{n} {p['factorSubject']} {fac.subject} .\n"
                lines += 1
            writer.add(text, lines)
            if kept_factors is not None:
                kept_factors[n[1:-1]] = fac
        by_id[id(fac)] = n
        return n

    # per element once: its factor links (predicate and node, the subject left out), likelihood points
    # and impact (the default impact factor when nothing is known); literals are cached (a few dozen
    # distinct values)
    default = Factor("impact", "default", "nothing known about data or criticality", DEFAULT_IMPACT)
    elements: dict[str, tuple[str, int, int, int, tuple[str, ...]]] = {}
    lits: dict[object, str] = {}

    def lit(v: int | str) -> str:
        out = lits.get(v)
        if out is None:
            out = lits[v] = str(Literal(v))
        return out

    count = 0
    has_factor = p["riskFactor"]
    p_like, p_imp, p_score, p_level = p["likelihood"], p["impact"], p["riskScore"], p["riskLevel"]
    pairs: Iterable[tuple[str, Term]] = (
        foci.items() if foci is not None else ((r["f"].value, r["e"]) for r in store.select(_FINDINGS))
    )
    # findings of one element with the same factors write the same text but their subject: made once per (element,
    # its own factors) as a template ("\x00" for the subject; no term's N-Triples text holds a NUL), with what is kept
    shapes: dict[tuple[str, tuple[int, ...]], tuple[str, int, tuple[int, int, int, str, tuple[str, ...], tuple[str, ...]]]] = {}
    owns: dict[tuple[int, ...], tuple[str, int, int, tuple[str, ...]]] = {}  # own factors' ids → links, points
    heads: dict[tuple[int, int], str] = {}  # (likelihood, impact) → the score lines
    for f, focus in pairs:
        if f in skip:
            continue
        e = focus.value
        ffs = per_finding.get(f)
        fkey = tuple(map(id, ffs)) if ffs else ()  # (the Factor objects are kept by per_finding: ids stay theirs)
        key = (e, fkey)
        shape = shapes.get(key)
        if shape is None:
            el = elements.get(e)
            if el is None:
                efs = list(per_element.get(e, []))
                if not any(x.of == "impact" for x in efs):
                    efs.append(default)
                impact = max(x.effect for x in efs if x.of == "impact")
                enodes = [node(x) for x in efs]
                el = elements[e] = ("".join(f"\x00{has_factor} {n} .\n" for n in enodes), len(enodes),
                                    sum(x.effect for x in efs if x.of == "likelihood"), impact,
                                    tuple(dict.fromkeys(n[1:-1] for n in enodes)))
            links, nlinks, points, impact, element_nodes = el
            # a finding's own factors: their links, points and nodes made once per set of Factor objects
            own = owns.get(fkey)
            if own is None:
                fnodes = [node(x) for x in ffs or ()]
                own = owns[fkey] = ("".join(f"\x00{has_factor} {n} .\n" for n in fnodes), len(fnodes),
                                    sum(x.effect for x in ffs or () if x.of == "likelihood"),
                                    tuple(dict.fromkeys(n[1:-1] for n in fnodes)) if fnodes else ())
            flinks, nflinks, fpoints, finding_nodes = own
            likelihood = combine_likelihood([points, fpoints])
            risk = likelihood * impact
            level = risk_level(risk)
            head = heads.get((likelihood, impact))
            if head is None:
                head = heads[(likelihood, impact)] = (
                    f"\x00{p_like} {lit(likelihood)} .\n\x00{p_imp} {lit(impact)} .\n\x00{p_score} {lit(risk)} .\n"
                    f"\x00{p_level} {lit(level)} .\n")
            # (the nodes distinct, as the store's quads are: an element's and a finding's factors never share one)
            shape = shapes[key] = (head + links + flinks, 4 + nlinks + nflinks, (
                likelihood, impact, risk, level, element_nodes, finding_nodes))
        if kept_scores is not None:
            kept_scores[f] = shape[2]
        writer.add(shape[0].replace("\x00", f"<{f}> "), shape[1])
        count += 1
    writer.flush()
    return count
