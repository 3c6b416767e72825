"""Attack paths: from each external entity or untrusted source, along data flows, to the critical assets.

Critical assets are training data (tgml:Dataset, tgml:FeatureStore), model artifacts, model
registries, and data stores holding or receiving personal data. Which start reaches which asset is one
SPARQL property-path query (``?start (^tg:source/tg:target)+ ?asset``); the hops of one shortest path
per (start, asset) pair are those :func:`hops_query` gives per path length for the pairs still open, found by a
breadth-first search over the flows read once (:func:`_shortest`).
Paths are written to ``graph/findings`` as ``tg:AttackPath`` nodes with ``tg:hop`` nodes; reports show
the techniques applicable at each hop (those of the findings on the hop's element).

>>> path_iri("urn:a", "urn:b") == path_iri("urn:a", "urn:b")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from pyoxigraph import Literal, NamedNode

from threatgraph.analysis.findings import Finding
from threatgraph.store.base import Store, Term
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import FINDING, RDF, TG, graph_iri

G_FINDINGS = graph_iri("findings")
MAX_HOPS = 12
"""Longest path searched (in data flows)."""

_CRITICAL = """
  { VALUES ?kind { tgml:Dataset tgml:FeatureStore tgml:ModelArtifact tgml:ModelRegistry } ?asset a ?kind }
  UNION { ?asset a tg:DataStore ; tg:holds ?pd . ?pd a tg:PersonalDataAsset }
  UNION { ?asset a tg:DataStore . ?pf tg:target ?asset ; tg:carries ?pd . ?pd a tg:PersonalDataAsset }
"""
_START = "{ ?start a tg:ExternalEntity } UNION { ?start tg:untrustedOrigin true }"

PAIRS_QUERY = f"""SELECT DISTINCT ?start ?asset WHERE {{
  {_START}
  ?start (^tg:source/tg:target)+ ?asset .
  {_CRITICAL}
  FILTER (?start != ?asset)
}}"""
"""Every (start, critical asset) pair connected by a chain of data flows."""


def path_iri(start: str, asset: str) -> str:
    """Stable IRI of the attack path from ``start`` to ``asset``."""
    return f"{FINDING}path/{hashlib.sha1(f'{start}|{asset}'.encode()).hexdigest()[:16]}"


def hops_query(length: int, values: str = "") -> str:
    """SELECT of one path per pair of exactly ``length`` flows (the smallest, as a flow-IRI list);
    ``values`` (a VALUES clause) restricts the pairs.

    >>> print(hops_query(2))
    SELECT ?start ?asset (MIN(CONCAT(STR(?f1), " ", STR(?f2))) AS ?flows) WHERE {
      ?f1 tg:source ?start ; tg:target ?n1 .
      ?f2 tg:source ?n1 ; tg:target ?asset .
    } GROUP BY ?start ?asset
    """
    chain = []
    prev = "?start"
    flows = []
    for i in range(1, length + 1):
        node = "?asset" if i == length else f"?n{i}"
        chain.append(f"?f{i} tg:source {prev} ; tg:target {node} .")
        flows.append(f"STR(?f{i})")
        prev = node
    key = flows[0] if len(flows) == 1 else "CONCAT(" + ', " ", '.join(flows) + ")"
    return (
        "SELECT ?start ?asset (MIN(" + key + ") AS ?flows) WHERE {\n  "
        + "\n  ".join(chain)
        + values
        + "\n} GROUP BY ?start ?asset"
    )


def _values(pairs: list[tuple[str, str]]) -> str:
    rows = " ".join(f"({NamedNode(s)} {NamedNode(a)})" for s, a in pairs)
    return f"\n  VALUES (?start ?asset) {{ {rows} }}"


_FLOWS = "SELECT ?f ?s ?t WHERE { ?f tg:source ?s ; tg:target ?t }"
_STARTS = f"SELECT DISTINCT ?start WHERE {{ {_START} }}"
_ASSETS = f"SELECT DISTINCT ?asset WHERE {{ {_CRITICAL} }}"
"""Every flow's (source, target): the links of :func:`hops_query`'s chains."""


def _shortest(store: Store, assets_of: Mapping[str, Iterable[str]], max_hops: int) -> dict[tuple[str, str], list[str]]:
    """(start, asset) → the flow IRIs of one shortest chain of at most ``max_hops`` flows from start to asset, for
    each start of ``assets_of`` and each of its assets (not itself) that has one: the answers of :func:`hops_query`
    per length for the pairs still open (the chain whose flow IRIs joined by spaces are the smallest string), found by
    one breadth-first search per start over the flows read once (the pairs query and seven chain queries of up to
    2.5 k pairs each took 0.4 s at 10 k elements).

    Of the chains of one length to a node the smallest is the smallest chain to one of its predecessors extended by
    the smallest flow from there, since chains of one length compare by their first differing flow (an IRI has no
    space, which sorts before any character an IRI may have: the joined strings compare as the lists of flows)."""
    succ: dict[object, list[tuple[str, object]]] = {}
    for f, src, tgt in _tuples(store, _FLOWS, ("f", "s", "t")):
        if type(f) is not NamedNode or src is None or tgt is None:
            continue  # (STR of a blank flow is an error: no chain of the queries goes through it)
        succ.setdefault(src, []).append((f.value, tgt))
    found: dict[tuple[str, str], list[str]] = {}
    wanted_of: dict[int, dict[object, str]] = {}  # (the starts often share one list of assets: its nodes once)
    for start, assets in assets_of.items():
        s_node = NamedNode(start)
        wanted = wanted_of.get(id(assets))
        if wanted is None:
            wanted = wanted_of[id(assets)] = {NamedNode(a): a for a in assets}
        best: dict[object, tuple[str, ...]] = {s_node: ()}
        frontier: dict[object, tuple[str, ...]] = {s_node: ()}
        left = len(wanted) - (s_node in wanted)
        for _length in range(max_hops):
            reached: dict[object, tuple[str, ...]] = {}
            for node, chain in frontier.items():
                for flow, nxt in succ.get(node, ()):
                    if nxt in best:  # (reached by a shorter chain)
                        continue
                    cand = (*chain, flow)
                    old = reached.get(nxt)
                    if old is None or cand < old:
                        reached[nxt] = cand
            if not reached:
                break
            best.update(reached)
            for node, chain in reached.items():
                a = wanted.get(node)
                if a is not None:
                    found[(start, a)] = list(chain)
                    left -= 1
            if not left:
                break
            frontier = reached
    return found


def _tuples(store: Store, query: str, names: Sequence[str]) -> Iterable[Sequence[Term | None]]:
    """The solutions of the SELECT ``query`` (variables ``names``, in its order) as sequences of terms, None where
    unbound: on the embedded store as pyoxigraph gives them (no dict per row), else from the rows. ``complete=False``:
    the embedded store's deferred writes stay unloaded."""
    if isinstance(store, EmbeddedStore):
        return store.solutions(query, complete=False)
    return [tuple(r.get(n) for n in names) for r in store.select(query, complete=False)]


@dataclass(frozen=True, slots=True)
class PathRecord:
    """What :func:`find_paths` wrote of one attack path (IRIs), kept in memory: :func:`read_paths` builds the
    views from these instead of reading the finding graph back (issue 14)."""

    iri: str
    start: str
    target: str
    length: int
    crossings: int
    hops: tuple[tuple[str, str], ...]
    """(flow IRI, element IRI) of each hop, in order (``tg:hopIndex`` 1, 2, …)."""


def find_paths(store: Store, max_hops: int = MAX_HOPS, *, keep: list[PathRecord] | None = None) -> int:
    """Find and store one shortest attack path per (start, critical asset) pair; return how many. ``keep``
    receives what is written (:class:`PathRecord`, sorted by start and target). Reads only the model and its
    closure: on the embedded store the finding graph's deferred writes stay unloaded."""
    # the pairs of PAIRS_QUERY: each start's search reaches the critical assets it connects to (itself excepted)
    starts = sorted({r[0].value for r in _tuples(store, _STARTS, ("start",)) if type(r[0]) is NamedNode})
    critical = sorted({r[0].value for r in _tuples(store, _ASSETS, ("asset",)) if type(r[0]) is NamedNode})
    found = _shortest(store, dict.fromkeys(starts, critical), max_hops) if starts and critical else {}
    if not found:
        return 0
    targets = {
        f.value: (t.value, x is not None)  # type: ignore[union-attr]
        for f, t, x in _tuples(
            store,
            "SELECT ?f ?t ?x WHERE { ?f a tg:DataFlow ; tg:target ?t . OPTIONAL { ?f tg:crossesBoundary true . BIND(1 AS ?x) } }",
            ("f", "t", "x"),
        )
    }
    from threatgraph.analysis.engine import _TextWriter  # engine imports this module

    # N-Triples text loaded in chunks (engine._TextWriter), not a Python Quad per triple
    writer = _TextWriter(store, G_FINDINGS)
    t = {n: str(NamedNode(TG[n])) for n in (
        "AttackPath", "PathHop", "pathStart", "pathTarget", "pathLength", "boundaryCrossings", "hop",
        "hopIndex", "hopFlow", "hopElement")}
    rdf_type = str(NamedNode(RDF.type))
    for (start, asset), flows in sorted(found.items()):
        p = NamedNode(path_iri(start, asset))
        ps = str(p)
        crossings = sum(1 for f in flows if targets.get(f, ("", False))[1])
        parts = [f"{ps} {rdf_type} {t['AttackPath']} .\n{ps} {t['pathStart']} {NamedNode(start)} .\n"
                 f"{ps} {t['pathTarget']} {NamedNode(asset)} .\n{ps} {t['pathLength']} {Literal(len(flows))} .\n"
                 f"{ps} {t['boundaryCrossings']} {Literal(crossings)} .\n"]
        for i, f in enumerate(flows, 1):
            h = NamedNode(f"{p.value}/hop{i}")
            parts.append(f"{ps} {t['hop']} {h} .\n{h} {rdf_type} {t['PathHop']} .\n{h} {t['hopIndex']} {Literal(i)} .\n"
                         f"{h} {t['hopFlow']} {NamedNode(f)} .\n"
                         f"{h} {t['hopElement']} {NamedNode(targets.get(f, (asset, False))[0])} .\n")
        writer.add("".join(parts), 5 + 5 * len(flows))
        if keep is not None:
            keep.append(PathRecord(p.value, start, asset, len(flows), crossings,
                                   tuple((f, targets.get(f, (asset, False))[0]) for f in flows)))
    writer.flush()
    return len(found)


@dataclass
class HopView:
    """One hop of an attack path: the flow taken and the element reached, with its techniques."""

    flow: str
    flow_label: str
    element: str
    element_label: str
    crosses_boundary: bool
    techniques: list[str] = field(default_factory=list)
    """IDs of the techniques applicable to the element (from its findings), residual ones first."""


@dataclass
class PathView:
    """An attack path as read from the finding graph."""

    iri: str
    start: str
    start_label: str
    target: str
    target_label: str
    length: int
    crossings: int
    hops: list[HopView] = field(default_factory=list)

    @property
    def text(self) -> str:
        """``start → element → … → target``."""
        return " → ".join([self.start_label] + [h.element_label for h in self.hops])


_READ = f"""SELECT ?p ?start ?target ?len ?cross ?i ?flow ?el ?x WHERE {{ GRAPH <{G_FINDINGS}> {{
  ?p a tg:AttackPath ; tg:pathStart ?start ; tg:pathTarget ?target ; tg:pathLength ?len ; tg:boundaryCrossings ?cross ;
     tg:hop ?h . ?h tg:hopIndex ?i ; tg:hopFlow ?flow ; tg:hopElement ?el . }}
  OPTIONAL {{ ?flow tg:crossesBoundary true . BIND(1 AS ?x) }} }}"""


_ID = attrgetter("id")
"""A technique view's id."""

_CROSSING = "SELECT ?flow WHERE { ?flow tg:crossesBoundary true }"


def _store_rows(store: Store) -> list[dict[str, str]]:
    """The rows of :data:`_READ`, read from the finding graph."""
    return [{k: v.value for k, v in r.items()} for r in store.select(_READ)]


def read_paths(store: Store, labels: dict[str, str], findings: Sequence[Finding] = (),
               kept: Sequence[PathRecord] | None = None) -> list[PathView]:
    """The attack paths of the finding graph, with the techniques of ``findings`` at each hop. ``kept``: what
    :func:`find_paths` wrote into the store's finding graph (``Analysis.paths``), read instead of the graph (on the
    embedded store, whose writes are deferred, without loading them; no row per hop made)."""
    rows = _store_rows(store) if kept is None else []
    elements = {r["el"] for r in rows} if kept is None else {el for pr in kept for _f, el in pr.hops}
    # technique ids of the elements on a hop, as a set each (sorted once per element; a list searched per view, for
    # every element, was ~0.3 s at 10 k elements: 229 k views), a finding's ids added in one call
    by_element: dict[str, set[str]] = {el: set() for el in elements}
    get = by_element.get
    last: str | None = None
    ids: set[str] | None = None
    for f in findings:
        focus = f.focus
        if focus is not last:  # (findings_of sorts the findings of an element together, with one focus string)
            last, ids = focus, get(focus)
        if ids is not None and f.techniques:
            ids.update(map(_ID, f.techniques))
    ordered = {el: sorted(ids) for el, ids in by_element.items()}
    labs: dict[str, str] = {}

    def lab(iri: str) -> str:
        got = labs.get(iri)
        if got is None:
            got = labs[iri] = labels.get(iri) or iri.replace("#", "/").rsplit("/", 1)[-1]
        return got

    out: dict[str, PathView] = {}
    if kept is not None:
        crossing = {r[0].value for r in _tuples(store, _CROSSING, ("flow",)) if r[0] is not None}
        for pr in kept:
            pv = PathView(pr.iri, pr.start, lab(pr.start), pr.target, lab(pr.target), pr.length, pr.crossings)
            pv.hops = [HopView(flow, lab(flow), el, lab(el), flow in crossing, ordered[el].copy()) for flow, el in pr.hops]
            out.setdefault(pr.iri, pv)
        return sorted(out.values(), key=lambda v: (-v.crossings, v.length, v.start_label, v.target_label, v.start, v.target))
    hops: dict[str, list[tuple[int, HopView]]] = {}
    for r in rows:
        p = r["p"]
        if p not in out:
            start, target = r["start"], r["target"]
            out[p] = PathView(p, start, lab(start), target, lab(target), int(r["len"]), int(r["cross"]))
        el = r["el"]
        hop = HopView(r["flow"], lab(r["flow"]), el, lab(el), "x" in r, ordered[el].copy())
        hops.setdefault(p, []).append((int(r["i"]), hop))
    for p, pv in out.items():
        pv.hops = [h for _, h in sorted(hops.get(p, []), key=lambda x: x[0])]
    # ties (two starts or targets with one label) by IRI: the same order whether read from the store (in its
    # order) or from what find_paths kept
    return sorted(out.values(), key=lambda v: (-v.crossings, v.length, v.start_label, v.target_label, v.start, v.target))
