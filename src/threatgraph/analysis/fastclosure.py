"""The closure's fast path on store terms (pyoxigraph), without importing rdflib (issue 14: start-up).

:mod:`threatgraph.analysis.closure` compiles the ontology (its closure by ``reasonable``, then per class
and per property what one fact entails, checked against ``reasonable`` on probes) and caches the result
on disk as JSON. This module reads that cache into pyoxigraph terms and runs the same one linear pass
over a model given as pyoxigraph triples (:func:`threatgraph.analysis.model.load_model_files` parses
Turtle and N-Triples models with pyoxigraph), so that an analysis whose ontology is compiled and cached
imports neither rdflib nor ``reasonable``. Whenever the pass cannot answer (the model states schema,
gives a functional property two values, types an individual into disjoint classes, spells a hasValue
literal otherwise), or nothing is cached, :func:`model_closure` answers by the rdflib path, which
runs ``reasonable``. ``tests/test_startup_cache.py`` checks both give the same triples.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pyoxigraph import BlankNode, Literal, NamedNode

from threatgraph.cachefiles import cache_dir, read_cached
from threatgraph.terms import OWL, RDF, RDFS

if TYPE_CHECKING:
    from threatgraph.analysis.model import ModelLoad
    from threatgraph.analysis.ontology import Ontology

Term = NamedNode | BlankNode | Literal
OxTriple = tuple[Term, Term, Term]

_RDF_TYPE = NamedNode(RDF.type)
_NOTHING = NamedNode(OWL + "Nothing")
_DROP_TYPES = frozenset(NamedNode(i) for i in (OWL + "Thing", OWL + "Class", RDFS.Resource, RDFS + "Class"))
_REFLEXIVE = frozenset(NamedNode(i) for i in (RDFS.subClassOf, OWL + "equivalentClass", RDFS + "subPropertyOf",
                                              OWL + "equivalentProperty", OWL + "sameAs"))
_SCHEMA_NS = (OWL, RDF, RDFS)
_MODEL_PREDICATES = frozenset(NamedNode(i) for i in (RDF.type, RDFS.label, RDFS.comment, RDFS + "seeAlso",
                                                     RDFS + "isDefinedBy"))
_MODEL_TYPES = frozenset(NamedNode(i) for i in (OWL + "NamedIndividual", OWL + "Thing"))
_EMPTY: frozenset[Term] = frozenset()
_NONE: frozenset[Any] = frozenset()


def _schema(term: Term) -> bool:
    return isinstance(term, NamedNode) and term.value.startswith(_SCHEMA_NS)


def _useful(t: OxTriple) -> bool:
    s, p, o = t
    if p == _RDF_TYPE and (o in _DROP_TYPES or isinstance(o, BlankNode)):
        return False
    if p in _REFLEXIVE and s == o:
        return False
    return not (isinstance(s, BlankNode) and p in _REFLEXIVE)


T = TypeVar("T")
def saturate(
    seeds: Iterable[T],
    sup: Mapping[T, Collection[T]],
    members: Mapping[T, Collection[T]],
    unions: Mapping[T, Collection[T]],
    hv: Mapping[T, Collection[tuple[T, T]]],
    dom: Mapping[T, Collection[T]],
    hv2: Mapping[tuple[T, T], Collection[T]],
) -> tuple[set[T], set[tuple[T, T]]]:
    """All types and (property, value) pairs of an individual with the types ``seeds``, from the compiled
    tables (OWL 2 RL cax-sco, cls-int1/2, cls-uni, cls-hv1/2, prp-dom), on rdflib or store terms alike.

    >>> types, values = saturate(["A"], {"A": ["B"]}, {}, {}, {"B": [("p", "v")]}, {"p": ["D"]}, {})
    >>> sorted(types), values
    (['A', 'B', 'D'], {('p', 'v')})
    """
    types: set[T] = set()
    values: set[tuple[T, T]] = set()
    todo = list(seeds)
    while todo:
        while todo:
            c = todo.pop()
            if c in types:
                continue
            types.add(c)
            todo.extend(sup.get(c, ()))
            todo.extend(members.get(c, ()))
            todo.extend(unions.get(c, ()))
            for pv in hv.get(c, ()):
                if pv not in values:
                    values.add(pv)
                    todo.extend(dom.get(pv[0], ()))
                    todo.extend(hv2.get(pv, ()))
        todo = [i for i, ms in members.items() if i not in types and all(m in types for m in ms)]
    return types, values


@dataclass(frozen=True, eq=False)
class Closure(Generic[T]):
    """What an individual with some given types has: all its types, (property, value) pairs, the
    types worth returning, and whether no disjointness axiom is violated (on rdflib or store terms)."""

    types: frozenset[T]
    values: frozenset[tuple[T, T]]
    useful: frozenset[T]
    consistent: bool


@dataclass
class OxTBox:
    """The compiled ontology in store terms (the fields of ``closure._TBox``)."""

    asserted: frozenset[OxTriple]
    inferred: list[OxTriple]
    inferred_set: frozenset[OxTriple]
    sup: dict[Term, frozenset[Term]]
    dom: dict[Term, frozenset[Term]]
    rng: dict[Term, frozenset[Term]]
    hv: dict[Term, frozenset[tuple[Term, Term]]]
    hv2: dict[tuple[Term, Term], frozenset[Term]]
    hv_props: frozenset[Term]
    hv_literals: dict[Term, list[Literal]]
    members: dict[Term, list[Term]]
    unions: dict[Term, frozenset[Term]]
    functional: frozenset[Term]
    disjoint: list[frozenset[Term]]
    onto_types: dict[Term, frozenset[Term]]
    onto_values: dict[tuple[Term, Term], frozenset[Term]]
    onto_nodes: frozenset[Term]
    cache: dict[frozenset[Term], Closure[Term]] = field(default_factory=dict)

    def close(self, seeds: frozenset[Term]) -> Closure[Term]:
        """Types and (property, value) pairs an individual with the types ``seeds`` has (memoised)."""
        hit = self.cache.get(seeds)
        if hit is not None:
            return hit
        types, values = saturate(seeds, self.sup, self.members, self.unions, self.hv, self.dom, self.hv2)
        consistent = _NOTHING not in types and all(len(d & types) < 2 for d in self.disjoint)
        useful = frozenset(c for c in types if c not in _DROP_TYPES and not isinstance(c, BlankNode))
        out = Closure(frozenset(types), frozenset(values), useful, consistent)
        self.cache[seeds] = out
        return out


def decode(raw: bytes, version: str) -> OxTBox | None:
    """The compiled ontology of a cache file (``closure._encode_tbox``) in store terms; None when the file
    is not one of ``version``, or the ontology has no fast path (its ``reason`` is set)."""
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != version or doc.get("reason"):
            return None
        table: list[Term] = []
        for e in doc["terms"]:
            if e[0] == "u":
                table.append(NamedNode(e[1]))
            elif e[0] == "b":
                table.append(BlankNode(e[1]))
            elif e[0] == "l":
                if e[3]:
                    table.append(Literal(e[1], language=e[3]))
                elif e[2]:
                    table.append(Literal(e[1], datatype=NamedNode(e[2])))
                else:
                    table.append(Literal(e[1]))
            else:
                return None

        def t3(x: list[int]) -> OxTriple:
            return (table[x[0]], table[x[1]], table[x[2]])

        def fs(xs: list[int]) -> frozenset[Term]:
            return frozenset(table[i] for i in xs)

        inferred = [t3(x) for x in doc["inferred"]]
        hv_literals: dict[Term, list[Literal]] = {}
        for k, vs in doc["hv_literals"]:
            lits = [table[i] for i in vs]
            hv_literals[table[k]] = [v for v in lits if isinstance(v, Literal)]
        return OxTBox(
            asserted=frozenset(t3(x) for x in doc["asserted"]),
            inferred=inferred,
            inferred_set=frozenset(inferred),
            sup={table[k]: fs(v) for k, v in doc["sup"]},
            dom={table[k]: fs(v) for k, v in doc["dom"]},
            rng={table[k]: fs(v) for k, v in doc["rng"]},
            hv={table[k]: frozenset((table[p], table[v]) for p, v in pvs) for k, pvs in doc["hv"]},
            hv2={(table[p], table[v]): fs(rs) for p, v, rs in doc["hv2"]},
            hv_props=fs(doc["hv_props"]),
            hv_literals=hv_literals,
            members={table[k]: [table[i] for i in v] for k, v in doc["members"]},
            unions={table[k]: fs(v) for k, v in doc["unions"]},
            functional=fs(doc["functional"]),
            disjoint=[fs(d) for d in doc["disjoint"]],
            onto_types={table[k]: fs(v) for k, v in doc["onto_types"]},
            onto_values={(table[s], table[p]): fs(v) for s, p, v in doc["onto_values"]},
            onto_nodes=fs(doc["onto_nodes"]),
        )
    except (ValueError, KeyError, IndexError, TypeError):
        return None


_XSD = "http://www.w3.org/2001/XMLSchema#"
_NUMERIC = frozenset(_XSD + t for t in ("integer", "decimal", "double", "float", "int", "long", "short", "byte",
                                         "nonNegativeInteger", "positiveInteger", "nonPositiveInteger",
                                         "negativeInteger", "unsignedInt", "unsignedLong", "unsignedShort",
                                         "unsignedByte"))


def _value(lit: Literal) -> Any:
    """A comparable value of ``lit``, or the lexical form when it has none here."""
    dt = lit.datatype.value
    if dt == _XSD + "boolean":
        return {"true": True, "1": True, "false": False, "0": False}.get(lit.value.strip(), lit.value)
    if dt in _NUMERIC:
        try:
            return float(lit.value)
        except ValueError:
            return lit.value
    return lit.value


def _alike(a: Literal, b: Literal) -> bool:
    """Whether rdflib may take ``a`` and ``b`` for the same value (then ``reasonable`` decides)."""
    return a.value == b.value or _value(a) == _value(b)


class CompiledTBox(Protocol[T]):
    """What the linear pass reads of a compiled ontology (``closure._TBox`` on rdflib terms, :class:`OxTBox`
    on store terms)."""

    @property
    def asserted(self) -> Set[tuple[T, T, T]]: ...
    @property
    def inferred(self) -> Sequence[tuple[T, T, T]]: ...
    @property
    def inferred_set(self) -> frozenset[tuple[T, T, T]]: ...
    @property
    def dom(self) -> Mapping[T, Set[T]]: ...
    @property
    def rng(self) -> Mapping[T, Set[T]]: ...
    @property
    def hv2(self) -> Mapping[tuple[T, T], Set[T]]: ...
    @property
    def hv_props(self) -> Set[T]: ...
    @property
    def hv_literals(self) -> Mapping[T, Sequence[Any]]: ...
    @property
    def functional(self) -> Set[T]: ...
    @property
    def onto_types(self) -> Mapping[T, Set[T]]: ...
    @property
    def onto_values(self) -> Mapping[tuple[T, T], Set[T]]: ...
    @property
    def onto_nodes(self) -> Set[T]: ...
    def close(self, seeds: frozenset[T]) -> Closure[T]: ...


@dataclass(frozen=True)
class Terms(Generic[T]):
    """What the linear pass needs to know of a term library (rdflib or pyoxigraph)."""

    rdf_type: T
    literal: type
    """The class of literals."""
    schema: Callable[[T], bool]
    """Whether a term is in the OWL, RDF or RDFS namespace."""
    model_predicates: frozenset[T]
    """Schema predicates a model may use and still take the fast path."""
    model_types: frozenset[T]
    """Schema classes a model may type an individual with and still take the fast path."""
    alike: Callable[[Any, Any], bool]
    """Whether two literals may be taken for the same value (then ``reasonable`` decides)."""


_Plan = tuple[Set[Any], Set[Any], bool, bool]
_TYPE: _Plan = (frozenset(), frozenset(), False, False)


def _plan(tb: CompiledTBox[T], terms: Terms[T], p: T) -> _Plan | None:
    """What one model triple with predicate ``p`` entails: domain, range, hasValue?, tracked values?"""
    if p == terms.rdf_type:
        return _TYPE
    if terms.schema(p) and p not in terms.model_predicates:
        return None
    return (tb.dom.get(p, _NONE), tb.rng.get(p, _NONE), p in tb.hv_props, p in tb.functional or p in tb.hv_props)


def closure_pass(tb: CompiledTBox[T], model: Iterable[tuple[T, T, T]], terms: Terms[T]) -> list[tuple[T, T, T]] | None:
    """The closure of ``model`` by the compiled ontology ``tb``, or None when ``reasonable`` must answer: one
    linear pass, the same on rdflib terms (``closure._fast``) and on store terms (:func:`fast`)."""
    triples = list(model)
    literal, schema, model_types = terms.literal, terms.schema, terms.model_types
    seeds: dict[T, set[T]] = {}
    asserted_types: dict[T, set[T]] = {}
    values: dict[tuple[T, T], set[T]] = {}
    plans: dict[T, _Plan | None] = {}
    hv2, rng = tb.hv2, tb.rng
    for s, p, o in triples:
        try:
            plan = plans[p]
        except KeyError:
            plan = plans[p] = _plan(tb, terms, p)
        if plan is None:
            return None
        if plan is _TYPE:
            if isinstance(o, literal) or (schema(o) and o not in model_types):
                return None
            try:
                seeds[s].add(o)
            except KeyError:
                seeds[s] = {o}
            try:
                asserted_types[s].add(o)
            except KeyError:
                asserted_types[s] = {o}
            continue
        dom_p, rng_p, hv, track = plan
        if dom_p:
            try:
                seeds[s].update(dom_p)
            except KeyError:
                seeds[s] = set(dom_p)
        if rng_p and not isinstance(o, literal):
            try:
                seeds[o].update(rng_p)
            except KeyError:
                seeds[o] = set(rng_p)
        if hv:
            rs = hv2.get((p, o))
            if rs is not None:
                seeds.setdefault(s, set()).update(rs)
            elif isinstance(o, literal) and any(terms.alike(o, v) for v in tb.hv_literals.get(p, ())):
                return None  # a hasValue literal spelt otherwise: leave the matching to reasonable
        if track:
            values.setdefault((s, p), set()).add(o)
    onto_types = tb.onto_types
    for s in onto_types.keys() & seeds.keys():
        seeds[s].update(onto_types[s])
    done: dict[T, Closure[T]] = {}
    todo = list(seeds)
    while todo:
        s = todo.pop()
        closed = tb.close(frozenset(seeds[s]))
        if done.get(s) is closed:
            continue
        done[s] = closed
        for p, v in closed.values:
            if p in rng and not isinstance(v, literal):
                extra = rng[p] - seeds.setdefault(v, set(onto_types.get(v, ())))
                if extra:
                    seeds[v] |= extra
                    todo.append(v)
    out: list[tuple[T, T, T]] = []
    rdf_type, onto_nodes = terms.rdf_type, tb.onto_nodes
    # a value of an untracked property (neither functional nor of a hasValue restriction) never repeats one the
    # model states, nor matters to the functional check below; nor does one of a tracked, non-functional property
    # the model gives the individual no value of: such values are returned as they are, by a list comprehension
    # (at 10 k elements ~91 k of 109 k inferred triples, whose per-value set bookkeeping took half of the pass)
    functional, tracked = tb.functional, tb.functional | tb.hv_props
    kinds: dict[Closure[T], tuple[frozenset[T], bool]] = {}
    for s, closed in done.items():
        if not closed.consistent:
            return None
        have = asserted_types.get(s)
        mine = [(s, rdf_type, c) for c in (closed.useful if have is None else closed.useful - have)]
        kind = kinds.get(closed)
        if kind is None:
            props = frozenset(p for p, _ in closed.values if p in tracked)
            kind = kinds[closed] = (props, any(p in functional for p in props))
        props, checked = kind
        if not checked and not any((s, p) in values for p in props):
            mine.extend([(s, p, v) for p, v in closed.values])
        else:
            for p, v in closed.values:
                vs = values.setdefault((s, p), set())
                if v not in vs:
                    vs.add(v)
                    mine.append((s, p, v))
        if s in onto_nodes:
            mine = [t for t in mine if t not in tb.asserted and t not in tb.inferred_set]
        out.extend(mine)
    functional = tb.functional
    for (s, p), vs in values.items():
        if p in functional and len(vs | tb.onto_values.get((s, p), _NONE)) > 1:
            return None  # prp-fp would equate the values
    stated = tb.inferred_set.intersection(triples)  # not a set of the whole model: ~0.03 s at 10 k elements
    out.extend(t for t in tb.inferred if t not in stated)
    return out


OX_TERMS: Terms[Term] = Terms(
    rdf_type=_RDF_TYPE, literal=Literal, schema=_schema, model_predicates=_MODEL_PREDICATES,
    model_types=_MODEL_TYPES, alike=_alike,
)


def fast(tb: OxTBox, model: Iterable[OxTriple]) -> list[OxTriple] | None:
    """The closure of ``model`` by the compiled ontology, or None when ``reasonable`` must answer
    (:func:`closure_pass` on store terms)."""
    return closure_pass(tb, model, OX_TERMS)


_BY_KEY: dict[str, OxTBox | None] = {}


def cached_tbox(onto: Ontology) -> OxTBox | None:
    """The compiled ontology of ``onto`` from the disk cache, in store terms (None: not cached, or no
    fast path for this ontology)."""
    from threatgraph.analysis.closure_key import CLOSURE_CACHE_VERSION, closure_key

    key = closure_key(onto)
    if key in _BY_KEY:
        return _BY_KEY[key]
    raw = read_cached(cache_dir() / "ontology" / f"{key}.closure.json")
    tb = decode(raw, CLOSURE_CACHE_VERSION) if raw is not None else None
    if tb is not None:
        _BY_KEY[key] = tb
    return tb


def model_closure(onto: Ontology, loaded: ModelLoad) -> list[OxTriple]:
    """What the OWL 2 RL rules entail from the ontology and the model that neither asserts, as store terms:
    by the cached compiled ontology when it answers, else by :func:`threatgraph.analysis.closure.closure_of`
    (which compiles and caches the ontology, or runs ``reasonable``)."""
    tb = cached_tbox(onto)
    if tb is not None:
        out = fast(tb, loaded.triples)
        if out is not None:
            return out
    from threatgraph.analysis.closure import closure_of
    from threatgraph.convert import to_ox

    return [(to_ox(s), to_ox(p), to_ox(o)) for s, p, o in closure_of(onto, loaded.graph)]
