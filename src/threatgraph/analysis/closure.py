"""OWL 2 RL closure of ontology + model, keeping only useful inferences.

Two paths give the same triples (compared as store terms, where ``"x"`` and ``"x"^^xsd:string``
are one literal):

* ``reasonable`` (Rust) over ontology + model: the reference, used whenever the fast path may differ.
* the fast path: the ontology is compiled once (its own closure by ``reasonable``, plus per class
  and per property what one ABox fact entails), then one linear pass over the model adds types
  and ``owl:hasValue`` values (cax-sco, cax-eqc, prp-dom, prp-rng, cls-hv1/2, cls-int1/2, cls-uni).
  The compiled ontology is checked against ``reasonable`` on probe individuals (one per class,
  property, hasValue restriction and intersection); if any probe differs, or the ontology uses a
  construct not implemented here, every call takes the ``reasonable`` path. A model takes it too
  when it states schema (subClassOf, domain, owl:* predicates, ``a owl:Class`` ...), gives a
  functional property two values (prp-fp: owl:sameAs), or types an individual into disjoint classes.
  Unlike ``reasonable``, it does not return copies of asserted plain literals as ``xsd:string``
  (``rdfs:label`` ...): in the store they are the asserted triples.

Measured on this machine (2 cores, shared with other benchmarks; medians of 3, models of
bench/generate.py): 10 k elements (74 k triples) ``reasonable`` path 4.4-5.1 s, fast path 0.47 s;
peak traced memory 255 MB -> 26 MB, process max RSS 918 MB -> 171 MB. 1 k elements: 0.32 s -> 0.026 s.
Compiling the ontology costs ~0.14-0.5 s; it is done once per ontology and cached on disk
(:func:`closure_of`: ``ontology/<key>.closure.json`` under the cache directory, keyed by
:func:`~threatgraph.analysis.closure_key.closure_key`: the digest of the ontology's triples, a code version
and the installed ``reasonable`` and rdflib), so that a process reads it in a few milliseconds. owlrl is ~100-200x slower than ``reasonable``; it
is kept only as a reference in the tests.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import rdflib
import reasonable
from rdflib.namespace import OWL, RDF, RDFS

from threatgraph.analysis.closure_key import CLOSURE_CACHE_VERSION, closure_key
from threatgraph.analysis.fastclosure import Closure, Terms, closure_pass, saturate
from threatgraph.cachefiles import cache_dir, read_cached, write_atomic
from threatgraph.convert import to_ox

if TYPE_CHECKING:
    from threatgraph.analysis.ontology import Ontology

Triple = tuple[rdflib.term.Node, rdflib.term.Node, rdflib.term.Node]
Node = rdflib.term.Node

_DROP_TYPES = {OWL.Thing, OWL.Class, RDFS.Resource, RDFS.Class}
_REFLEXIVE = {RDFS.subClassOf, OWL.equivalentClass, RDFS.subPropertyOf, OWL.equivalentProperty, OWL.sameAs}

_OWL, _RDF, _RDFS = str(OWL), str(RDF), str(RDFS)
# Schema vocabulary the compiled ontology may use (anything else in these namespaces: no fast path).
_ONTO_PREDICATES = {
    RDF.type, RDF.first, RDF.rest, RDFS.subClassOf, RDFS.domain, RDFS.range, RDFS.label, RDFS.comment,
    RDFS.seeAlso, RDFS.isDefinedBy, OWL.equivalentClass, OWL.onProperty, OWL.hasValue, OWL.intersectionOf,
    OWL.unionOf, OWL.oneOf, OWL.members, OWL.distinctMembers, OWL.disjointWith, OWL.versionInfo,
    OWL.versionIRI, OWL.imports,
}  # fmt: skip
_ONTO_TYPES = {
    OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty, OWL.NamedIndividual,
    OWL.Restriction, OWL.FunctionalProperty, OWL.AllDisjointClasses, OWL.AllDifferent, OWL.Ontology,
    OWL.Thing, RDFS.Class, RDF.Property, RDFS.Resource, RDFS.Datatype,
}  # fmt: skip
# What a model may use from these namespaces and still take the fast path.
_MODEL_PREDICATES = {RDF.type, RDFS.label, RDFS.comment, RDFS.seeAlso, RDFS.isDefinedBy}
_MODEL_TYPES = {OWL.NamedIndividual, OWL.Thing}
_PROBE = "urn:threatgraph:reason-probe:"


_RDF_TYPE = RDF.type


def _useful(t: Triple) -> bool:
    s, p, o = t
    if p == _RDF_TYPE and (o in _DROP_TYPES or isinstance(o, rdflib.BNode)):
        return False
    if p in _REFLEXIVE and s == o:
        return False
    return not (isinstance(s, rdflib.BNode) and p in _REFLEXIVE)


def _schema(term: Node) -> bool:
    return isinstance(term, rdflib.URIRef) and str(term).startswith((_OWL, _RDF, _RDFS))


def reasonable_closure(ontology: rdflib.Graph, model: rdflib.Graph) -> list[Triple]:
    """The reference path: ``reasonable`` over ontology + model, minus asserted triples and trivia."""
    r = reasonable.PyReasoner()
    r.from_graph(ontology)
    r.from_graph(model)
    out = r.reason()
    asserted = set(model)
    asserted.update(ontology)
    return [t for t in out if t not in asserted and _useful(t)]


@dataclass
class _TBox:
    """The ontology compiled for the fast path (``reason`` says why there is none when it is empty)."""

    asserted: frozenset[Triple]
    inferred: list[Triple] = field(default_factory=list)
    """Useful triples ``reasonable`` entails from the ontology alone."""
    inferred_set: frozenset[Triple] = frozenset()
    reason: str = ""
    sup: dict[Node, set[Node]] = field(default_factory=dict)
    dom: dict[Node, frozenset[Node]] = field(default_factory=dict)
    rng: dict[Node, frozenset[Node]] = field(default_factory=dict)
    hv: dict[Node, set[tuple[Node, Node]]] = field(default_factory=dict)
    """Restriction -> its (property, value): cls-hv1."""
    hv2: dict[tuple[Node, Node], frozenset[Node]] = field(default_factory=dict)
    hv_props: frozenset[Node] = frozenset()
    hv_literals: dict[Node, list[rdflib.Literal]] = field(default_factory=dict)
    members: dict[Node, list[Node]] = field(default_factory=dict)
    """Intersection -> its classes: cls-int1/2."""
    unions: dict[Node, set[Node]] = field(default_factory=dict)
    """Member class -> the unions it belongs to: cls-uni."""
    functional: frozenset[Node] = frozenset()
    disjoint: list[frozenset[Node]] = field(default_factory=list)
    onto_types: dict[Node, frozenset[Node]] = field(default_factory=dict)
    onto_values: dict[tuple[Node, Node], frozenset[Node]] = field(default_factory=dict)
    """Values of functional properties in the ontology's closure, per (subject, property)."""
    onto_nodes: frozenset[Node] = frozenset()
    """Every term of the ontology (a model triple about one may coincide with an ontology triple)."""
    cache: dict[frozenset[Node], Closure[Node]] = field(default_factory=dict)

    def close(self, seeds: frozenset[Node]) -> Closure[Node]:
        """Types and (property, value) pairs an individual with the types ``seeds`` has (memoised)."""
        hit = self.cache.get(seeds)
        if hit is not None:
            return hit
        types, values = saturate(seeds, self.sup, self.members, self.unions, self.hv, self.dom, self.hv2)
        consistent = OWL.Nothing not in types and all(len(d & types) < 2 for d in self.disjoint)
        useful = frozenset(c for c in types if _useful((rdflib.URIRef(_PROBE), RDF.type, c)))
        out = Closure(frozenset(types), frozenset(values), useful, consistent)
        self.cache[seeds] = out
        return out


def _rdf_list(g: rdflib.Graph, head: Node) -> list[Node] | None:
    out: list[Node] = []
    seen: set[Node] = set()
    while head != RDF.nil:
        if head in seen:
            return None
        seen.add(head)
        firsts, rests = list(g.objects(head, RDF.first)), list(g.objects(head, RDF.rest))
        if len(firsts) != 1 or len(rests) != 1:
            return None
        out.append(firsts[0])
        head = rests[0]
    return out


def _unsupported(g: rdflib.Graph) -> str:
    """Why the fast path cannot handle an ontology (its closure ``g``), or ``""``."""
    for s, p, o in g:
        if p == OWL.sameAs and s == o:
            continue  # prp-fp with one value: reasonable's reflexive owl:sameAs, inert
        if _schema(p) and p not in _ONTO_PREDICATES:
            return f"ontology uses {p}"
        if p == RDF.type and _schema(o) and o not in _ONTO_TYPES:
            return f"ontology uses {o}"
        if isinstance(s, rdflib.Literal):
            return "ontology closure has a literal subject"
    return ""


def _build(onto: rdflib.Graph, closed: rdflib.Graph, tb: _TBox) -> str:
    """Fill ``tb`` from the ontology's closure; ``""`` or why the fast path cannot be used."""
    why = _unsupported(closed)
    if why:
        return why
    for s, o in closed.subject_objects(RDFS.subClassOf):
        if s != o:
            tb.sup.setdefault(s, set()).add(o)
    for s, o in closed.subject_objects(OWL.equivalentClass):
        if s != o:
            tb.sup.setdefault(s, set()).add(o)
            tb.sup.setdefault(o, set()).add(s)
    dom: dict[Node, set[Node]] = {}
    rng: dict[Node, set[Node]] = {}
    for s, o in closed.subject_objects(RDFS.domain):
        dom.setdefault(s, set()).add(o)
    for s, o in closed.subject_objects(RDFS.range):
        rng.setdefault(s, set()).add(o)
    tb.dom = {p: frozenset(cs) for p, cs in dom.items()}
    tb.rng = {p: frozenset(cs) for p, cs in rng.items()}
    hv2: dict[tuple[Node, Node], set[Node]] = {}
    for r in set(closed.subjects(OWL.hasValue)) | set(closed.subjects(OWL.onProperty)):
        ps, vs = list(closed.objects(r, OWL.onProperty)), list(closed.objects(r, OWL.hasValue))
        if len(ps) != 1 or len(vs) != 1:
            return f"restriction {r} is not one onProperty + one hasValue"
        tb.hv.setdefault(r, set()).add((ps[0], vs[0]))
        hv2.setdefault((ps[0], vs[0]), set()).add(r)
    tb.hv2 = {k: frozenset(v) for k, v in hv2.items()}
    tb.hv_props = frozenset(p for p, _ in hv2)
    for p, v in hv2:
        if isinstance(v, rdflib.Literal):
            tb.hv_literals.setdefault(p, []).append(v)
    for i, head in closed.subject_objects(OWL.intersectionOf):
        ms = _rdf_list(closed, head)
        if ms is None or i in tb.members:
            return f"intersection {i} is not one well-formed list"
        tb.members[i] = ms
    for u, head in closed.subject_objects(OWL.unionOf):
        ms = _rdf_list(closed, head)
        if ms is None:
            return f"union {u} is not a well-formed list"
        for m in ms:
            tb.unions.setdefault(m, set()).add(u)
    tb.functional = frozenset(closed.subjects(RDF.type, OWL.FunctionalProperty))
    for a, b in closed.subject_objects(OWL.disjointWith):
        tb.disjoint.append(frozenset((a, b)))
    for g in closed.subjects(RDF.type, OWL.AllDisjointClasses):
        for head in closed.objects(g, OWL.members):
            ms = _rdf_list(closed, head)
            if ms is None:
                return f"AllDisjointClasses {g} is not a well-formed list"
            tb.disjoint.append(frozenset(ms))
    types: dict[Node, set[Node]] = {}
    for s, o in closed.subject_objects(RDF.type):
        types.setdefault(s, set()).add(o)
    tb.onto_types = {s: frozenset(ts) for s, ts in types.items()}
    fvalues: dict[tuple[Node, Node], set[Node]] = {}
    for p in tb.functional:
        for s, o in closed.subject_objects(p):
            fvalues.setdefault((s, p), set()).add(o)
    tb.onto_values = {k: frozenset(v) for k, v in fvalues.items()}
    return _verify(onto, closed, tb)


def _probes(tb: _TBox, closed: rdflib.Graph) -> rdflib.Graph:
    """One probe individual per class, property, hasValue pair and intersection."""
    g = rdflib.Graph()
    n = 0

    def probe() -> rdflib.URIRef:
        nonlocal n
        n += 1
        return rdflib.URIRef(f"{_PROBE}{n}")

    classes = set(closed.objects(None, RDF.type)) | set(tb.sup) | set(tb.members) | set(tb.unions)
    for cs in (*tb.sup.values(), *tb.dom.values(), *tb.rng.values(), *tb.unions.values()):
        classes |= cs
    for c in sorted(classes, key=str):
        if not isinstance(c, rdflib.Literal) and not (_schema(c) and c not in _MODEL_TYPES):
            g.add((probe(), RDF.type, c))
    props = set(tb.dom) | set(tb.rng) | set(tb.functional) | set(tb.hv_props)
    for kind in (OWL.ObjectProperty, OWL.DatatypeProperty):
        props |= set(closed.subjects(RDF.type, kind))
    for p in sorted((p for p in props if not _schema(p)), key=str):
        g.add((probe(), p, probe()))
        g.add((probe(), p, rdflib.Literal("probe")))
    for p, v in sorted(tb.hv2, key=str):
        g.add((probe(), p, v))
    for ms in tb.members.values():
        x = probe()
        for m in ms:
            g.add((x, RDF.type, m))
    return g


def _normal(triples: Iterable[Triple]) -> set[tuple[object, object, object]]:
    return {(to_ox(s), to_ox(p), to_ox(o)) for s, p, o in triples}


def _verify(onto: rdflib.Graph, closed: rdflib.Graph, tb: _TBox) -> str:
    """``""`` when the fast path gives ``reasonable``'s answer on the probes, else what differs."""
    probes = _probes(tb, closed)
    got = _fast(tb, probes)
    if got is None:
        return "the probes take the reasonable path"
    given = _normal(probes) | _normal(onto)
    want = _normal(reasonable_closure(onto, probes)) - given
    have = _normal(got) - given
    if have != want:
        return f"probes differ: only reasonable {sorted(want - have)[:3]}; only fast {sorted(have - want)[:3]}"
    return ""


@functools.lru_cache(maxsize=4)
def _compile(asserted: frozenset[Triple]) -> _TBox:
    onto = rdflib.Graph()
    for t in asserted:
        onto.add(t)
    r = reasonable.PyReasoner()
    r.from_graph(onto)
    closed = rdflib.Graph()
    for t in r.reason():
        closed.add(t)
    tb = _TBox(asserted)
    tb.inferred = [t for t in closed if t not in asserted and _useful(t)]
    tb.inferred_set = frozenset(tb.inferred)
    tb.onto_nodes = frozenset(n for t in closed for n in t)
    tb.reason = _build(onto, closed, tb)
    return tb


def _fast(tb: _TBox, model: Iterable[Triple]) -> list[Triple] | None:
    """The closure by the compiled ontology, or ``None`` when the model needs ``reasonable`` (the pass of
    :func:`threatgraph.analysis.fastclosure.closure_pass` on rdflib terms)."""
    return closure_pass(tb, model, _RDFLIB_TERMS)


def _alike(a: rdflib.Literal, b: rdflib.Literal) -> bool:
    return str(a) == str(b) or (a.value is not None and a.value == b.value)


_RDFLIB_TERMS: Terms[Node] = Terms(
    rdf_type=RDF.type, literal=rdflib.Literal, schema=_schema, model_predicates=frozenset(_MODEL_PREDICATES),
    model_types=frozenset(_MODEL_TYPES), alike=_alike,
)


def _tbox(ontology: rdflib.Graph) -> _TBox:
    return _compile(frozenset(ontology))


def fast_path_applies(ontology: rdflib.Graph, model: rdflib.Graph) -> bool:
    """Whether :func:`closure` answers by the compiled ontology rather than running ``reasonable``."""
    tb = _tbox(ontology)
    return not tb.reason and _fast(tb, model) is not None


def closure_path(ontology: rdflib.Graph, model: rdflib.Graph) -> tuple[list[Triple], bool]:
    """:func:`closure` and whether it took the fast path."""
    tb = _tbox(ontology)
    if not tb.reason:
        out = _fast(tb, model)
        if out is not None:
            return out, True
    return reasonable_closure(ontology, model), False


SMALL_MODEL = 3_000
"""Below this many model triples, and while no ontology has been compiled in this process,
:func:`closure` runs ``reasonable`` directly: compiling costs ~0.14 s once, ``reasonable`` 0.05 s on
a 100-element model (773 triples) and 0.09 s at 300 elements (2,253 triples), 0.30 s at 1 k (7,455)."""


def closure(ontology: rdflib.Graph, model: rdflib.Graph) -> list[Triple]:
    """Triples the OWL 2 RL rules entail from ontology + model that neither asserts (trivia removed)."""
    if len(model) < SMALL_MODEL and _compile.cache_info().currsize == 0:
        return reasonable_closure(ontology, model)
    return closure_path(ontology, model)[0]


def fast_path_unavailable(ontology: rdflib.Graph) -> str:
    """Why no model can take the fast path with this ontology (``""``: models can)."""
    return _tbox(ontology).reason


# -- the compiled ontology, cached on disk ---------------------------------------------------------------
_COMPILED: dict[str, _TBox] = {}
"""Compiled ontologies of this process, by cache key."""


def _encode_tbox(tb: _TBox) -> bytes:
    """``tb`` as JSON: a table of its terms, then every field as indexes into that table."""
    index: dict[Node, int] = {}
    table: list[list[str]] = []

    def n(term: Node) -> int:
        i = index.get(term)
        if i is None:
            i = index[term] = len(table)
            if isinstance(term, rdflib.Literal):
                table.append(["l", str(term), str(term.datatype or ""), term.language or ""])
            elif isinstance(term, rdflib.BNode):
                table.append(["b", str(term)])
            else:
                table.append(["u", str(term)])
        return i

    def ns(terms: Iterable[Node]) -> list[int]:
        return [n(t) for t in terms]

    def triples(ts: Iterable[Triple]) -> list[list[int]]:
        return [ns(t) for t in ts]

    doc: dict[str, Any] = {
        "version": CLOSURE_CACHE_VERSION,
        "reason": tb.reason,
        "asserted": triples(tb.asserted),
        "inferred": triples(tb.inferred),
        "sup": [[n(k), ns(v)] for k, v in tb.sup.items()],
        "dom": [[n(k), ns(v)] for k, v in tb.dom.items()],
        "rng": [[n(k), ns(v)] for k, v in tb.rng.items()],
        "hv": [[n(k), [ns(pv) for pv in v]] for k, v in tb.hv.items()],
        "hv2": [[n(k[0]), n(k[1]), ns(v)] for k, v in tb.hv2.items()],
        "hv_props": ns(tb.hv_props),
        "hv_literals": [[n(k), ns(v)] for k, v in tb.hv_literals.items()],
        "members": [[n(k), ns(v)] for k, v in tb.members.items()],
        "unions": [[n(k), ns(v)] for k, v in tb.unions.items()],
        "functional": ns(tb.functional),
        "disjoint": [ns(d) for d in tb.disjoint],
        "onto_types": [[n(k), ns(v)] for k, v in tb.onto_types.items()],
        "onto_values": [[n(k[0]), n(k[1]), ns(v)] for k, v in tb.onto_values.items()],
        "onto_nodes": ns(tb.onto_nodes),
    }
    doc["terms"] = table
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode_tbox(raw: bytes) -> _TBox | None:
    """The compiled ontology of :func:`_encode_tbox`'s JSON; None when it is not one (then it is recompiled)."""
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != CLOSURE_CACHE_VERSION:
            return None
        table: list[Node] = []
        for e in doc["terms"]:
            if e[0] == "u":
                table.append(rdflib.URIRef(e[1]))
            elif e[0] == "b":
                table.append(rdflib.BNode(e[1]))
            elif e[0] == "l":
                table.append(rdflib.Literal(e[1], lang=e[3] or None, datatype=rdflib.URIRef(e[2]) if e[2] else None))
            else:
                return None

        def t3(x: list[int]) -> Triple:
            return (table[x[0]], table[x[1]], table[x[2]])

        def fs(xs: list[int]) -> frozenset[Node]:
            return frozenset(table[i] for i in xs)

        tb = _TBox(frozenset(t3(x) for x in doc["asserted"]))
        tb.reason = str(doc["reason"])
        tb.inferred = [t3(x) for x in doc["inferred"]]
        tb.inferred_set = frozenset(tb.inferred)
        tb.sup = {table[k]: set(fs(v)) for k, v in doc["sup"]}
        tb.dom = {table[k]: fs(v) for k, v in doc["dom"]}
        tb.rng = {table[k]: fs(v) for k, v in doc["rng"]}
        tb.hv = {table[k]: {(table[p], table[v]) for p, v in pvs} for k, pvs in doc["hv"]}
        tb.hv2 = {(table[p], table[v]): fs(rs) for p, v, rs in doc["hv2"]}
        tb.hv_props = fs(doc["hv_props"])
        tb.hv_literals = {table[k]: [table[i] for i in v] for k, v in doc["hv_literals"]}
        tb.members = {table[k]: [table[i] for i in v] for k, v in doc["members"]}
        tb.unions = {table[k]: set(fs(v)) for k, v in doc["unions"]}
        tb.functional = fs(doc["functional"])
        tb.disjoint = [fs(d) for d in doc["disjoint"]]
        tb.onto_types = {table[k]: fs(v) for k, v in doc["onto_types"]}
        tb.onto_values = {(table[s], table[p]): fs(v) for s, p, v in doc["onto_values"]}
        tb.onto_nodes = fs(doc["onto_nodes"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return tb


def _writable(directory: str | os.PathLike[str]) -> bool:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def compiled_ontology(onto: Ontology, *, compile_on_miss: bool = True) -> _TBox | None:
    """The compiled ontology of ``onto``: from this process, else from the cache, else compiled (and
    cached); None when it is not cached and ``compile_on_miss`` is False."""
    key = closure_key(onto)
    tb = _COMPILED.get(key)
    if tb is not None:
        return tb
    path = cache_dir() / "ontology" / f"{key}.closure.json"
    raw = read_cached(path)
    tb = _decode_tbox(raw) if raw is not None else None
    if tb is None:
        if not compile_on_miss:
            return None
        tb = _compile(frozenset(onto.graph))
        write_atomic(path, _encode_tbox(tb))
    _COMPILED[key] = tb
    return tb


def closure_of(onto: Ontology, model: rdflib.Graph) -> list[Triple]:
    """:func:`closure` of ``model`` under the ontology ``onto``, by its compiled form cached on disk
    (compiled on the first run; below :data:`SMALL_MODEL` triples with a cache directory that cannot be
    written, ``reasonable`` runs directly rather than compiling in every process)."""
    small = len(model) < SMALL_MODEL
    tb = compiled_ontology(onto, compile_on_miss=not small or _writable(cache_dir() / "ontology"))
    if tb is not None and not tb.reason:
        out = _fast(tb, model)
        if out is not None:
            return out
    return reasonable_closure(onto.graph, model)
