"""SPARQL text helpers shared by every backend.

User values never enter query text as raw strings: they are RDF terms, serialized by pyoxigraph in
N-Triples form (which escapes quotes, newlines and ``>``) inside a one-row ``VALUES`` block, placed at
the start of the query's WHERE group (:func:`inline_values`, so the engine joins it first and FILTERs
see it) or, where no group is found, as a trailing clause (:func:`with_values`).

>>> from pyoxigraph import Literal
>>> with_values("SELECT ?s WHERE { ?s ?p ?o }", {"o": Literal('a" } INSERT {')})
'SELECT ?s WHERE { ?s ?p ?o }\\nVALUES (?o) { ("a\\\\" } INSERT {") }'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pyoxigraph import BlankNode, Literal, NamedNode
from pyoxigraph import Store as OxStore

from threatgraph.errors import InputError
from threatgraph.records import FrozenRecord, set_fields
from threatgraph.terms import PREFIXES

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


_TOKEN = re.compile(
    r'(?P<ws>\s+)|(?P<comment>#[^\n]*)|(?P<iri><[^<>"{}|^`\\\s]*>)'
    r'|(?P<str>"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^\'\\]|\\.|\'(?!\'\'))*\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')'
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_-]*)|(?P<other>.)",
    re.DOTALL,
)


def inline_values(query: str, bindings: Mapping[str, NamedNode | BlankNode | Literal]) -> str:
    """Bind ``bindings`` with a one-row ``VALUES`` block opening the query's outermost WHERE group.

    The values are RDF terms serialized by pyoxigraph (as in :func:`threatgraph.sparql.with_values`);
    only their position differs. Comments, strings and IRIs are skipped when looking for the group.

    >>> from pyoxigraph import Literal
    >>> inline_values('SELECT ?s WHERE { ?s ?p ?o } # WHERE {', {"o": Literal('x" }')})
    'SELECT ?s WHERE { VALUES (?o) { ("x\\\\" }") } ?s ?p ?o } # WHERE {'
    >>> inline_values("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", {"s": Literal(1)})[:56]
    'CONSTRUCT { ?s ?p ?o } WHERE { VALUES (?s) { ("1"^^<http'
    """
    names = list(bindings)
    for n in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n):
            raise InputError(f"invalid variable name {n!r}")
    block = f" VALUES ({' '.join('?' + n for n in names)}) {{ ({' '.join(term_text(bindings[n]) for n in names)}) }}"
    depth = 0
    form = ""
    after_where = False
    for m in _TOKEN.finditer(query):
        kind, text = m.lastgroup, m.group()
        if kind == "word" and depth == 0:
            upper = text.upper()
            if upper in ("SELECT", "ASK", "DESCRIBE", "CONSTRUCT") and not form:
                form = upper
            elif upper == "WHERE":
                after_where = True
        elif kind == "other" and text == "{":
            # the WHERE group: after the WHERE keyword, or (WHERE being optional) the first group of a
            # SELECT / ASK / DESCRIBE; a CONSTRUCT's first group is its template
            if depth == 0 and (after_where or form in ("SELECT", "ASK", "DESCRIBE")):
                return query[: m.end()] + block + query[m.end() :]
            depth += 1
        elif kind == "other" and text == "}":
            depth -= 1
    return with_values(query, bindings)


_SYNTAX_AT = re.compile(r"^error at (\d+):(\d+):\s*(.*)$", re.DOTALL)


class SparqlSyntaxError(FrozenRecord):
    """Where and why a query does not parse (``line`` and ``column`` in the source file, 1-based). (A frozen
    record, written out: :mod:`threatgraph.records`.)"""

    path: str
    line: int
    column: int
    reason: str
    text: str

    _fields = ("path", "line", "column", "reason", "text")

    def __init__(self, path: str, line: int, column: int, reason: str, text: str) -> None:
        set_fields(self, path=path, line=line, column=column, reason=reason, text=text)

    def message(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: invalid SPARQL (line {self.line}, column {self.column}): {self.reason}"


def syntax_error(query: str, path: str, first_line: int = 1) -> SparqlSyntaxError | None:
    """Parse ``query`` (with the usual prefixes); ``None`` when it parses, else where it does not.

    ``first_line`` is the line of the source file where ``query`` starts, so the parser's line number
    is reported in the file's terms.

    >>> e = syntax_error("SELECT ?x\\nWHERE { ?x ?y }", "q.rq", first_line=3)
    >>> e.line, e.column, e.text
    (4, 16, 'WHERE { ?x ?y }')
    >>> syntax_error("SELECT ?x WHERE { ?x a tg:Process }", "q.rq") is None
    True
    """
    try:
        OxStore().query(query, prefixes=PREFIXES)
    except SyntaxError as err:
        raw = str(err)
        m = _SYNTAX_AT.match(raw)
        if not m:
            return SparqlSyntaxError(path, first_line, 1, raw, "")
        line, col = int(m.group(1)), int(m.group(2))
        reason = " ".join(m.group(3).split())
        if len(reason) > 200:
            reason = reason[:199] + "…"
        lines = query.splitlines()
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return SparqlSyntaxError(path, line + first_line - 1, col, reason, text)
    return None
