"""Conversions between rdflib terms (parsers, the reasoner) and pyoxigraph terms (the store protocol).

>>> import rdflib
>>> to_ox(rdflib.Literal(True))
<Literal value=true datatype=<NamedNode value=http://www.w3.org/2001/XMLSchema#boolean>>
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import rdflib
from pyoxigraph import BlankNode, Literal, NamedNode, Quad

from threatgraph.store.base import Term


def to_ox(term: rdflib.term.Node) -> Term:
    """One rdflib term as a pyoxigraph term."""
    if isinstance(term, rdflib.URIRef):
        return NamedNode(str(term))
    if isinstance(term, rdflib.BNode):
        return BlankNode(str(term))
    if isinstance(term, rdflib.Literal):
        if term.language:
            return Literal(str(term), language=term.language)
        if term.datatype is not None:
            return Literal(str(term), datatype=NamedNode(str(term.datatype)))
        return Literal(str(term))
    raise TypeError(f"cannot convert {term!r}")


_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


def from_ox(term: Term) -> rdflib.term.Node:
    """One pyoxigraph term as an rdflib term (the inverse of :func:`to_ox`: plain literals come back
    without a datatype, blank nodes keep their label).

    >>> from_ox(to_ox(rdflib.Literal("x"))) == rdflib.Literal("x")
    True
    """
    if isinstance(term, NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, BlankNode):
        return rdflib.BNode(term.value)
    if isinstance(term, Literal):
        if term.language:
            return rdflib.Literal(term.value, lang=term.language)
        dt = term.datatype.value
        if dt in (_XSD_STRING, _LANG_STRING):
            return rdflib.Literal(term.value)
        return rdflib.Literal(term.value, datatype=rdflib.URIRef(dt))
    raise TypeError(f"cannot convert {term!r}")


def triples_to_quads(triples: Iterable[tuple[rdflib.term.Node, rdflib.term.Node, rdflib.term.Node]], graph: str) -> Iterator[Quad]:
    """rdflib triples as quads in ``graph``."""
    g = NamedNode(graph)
    cache: dict[rdflib.term.Node, Term] = {}
    for s, p, o in triples:
        try:
            ss = cache[s]
        except KeyError:
            ss = cache[s] = to_ox(s)
        try:
            pp = cache[p]
        except KeyError:
            pp = cache[p] = to_ox(p)
        oo = cache.get(o)
        if oo is None:
            oo = to_ox(o)
            if not isinstance(o, rdflib.Literal):
                cache[o] = oo
        yield Quad(ss, pp, oo, g)  # type: ignore[arg-type]


def term_key(term: Term) -> str:
    """A stable text form of a term (N-Triples), used in finding IRIs and sorting."""
    return str(term)
