"""SPARQL text helpers shared by every backend.

User values never enter query text as raw strings: they are RDF terms, serialized by pyoxigraph in
N-Triples form (which escapes quotes, newlines and ``>``) inside a trailing ``VALUES`` clause.

>>> from pyoxigraph import Literal
>>> with_values("SELECT ?s WHERE { ?s ?p ?o }", {"o": Literal('a" } INSERT {')})
'SELECT ?s WHERE { ?s ?p ?o }\\nVALUES (?o) { ("a\\\\" } INSERT {") }'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pyoxigraph import BlankNode, Literal, NamedNode

from threatgraph.errors import InputError

_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def term_text(term: NamedNode | BlankNode | Literal) -> str:
    """N-Triples text of a term (blank nodes are refused: they cannot be bound from outside)."""
    if isinstance(term, BlankNode):
        raise InputError("a blank node cannot be bound as a query parameter")
    if not isinstance(term, (NamedNode, Literal)):
        raise InputError(f"not an RDF term: {term!r}")
    return str(term)


def with_values(query: str, bindings: Mapping[str, NamedNode | BlankNode | Literal] | None) -> str:
    """Append a one-row ``VALUES`` clause binding ``bindings`` to the query's variables."""
    if not bindings:
        return query
    names = list(bindings)
    for n in names:
        if not _VAR.match(n):
            raise InputError(f"invalid variable name {n!r}")
    head = " ".join("?" + n for n in names)
    row = " ".join(term_text(bindings[n]) for n in names)
    return f"{query.rstrip()}\nVALUES ({head}) {{ ({row}) }}"
