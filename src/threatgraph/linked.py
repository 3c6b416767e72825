"""Linked data: dereferencing the graph's own IRIs (``GET /resource?iri=…``, ``/atlas/AML.T0051`` …).

A resource's *description* is what the store says about it as subject (all graphs, duplicates across
graphs once), the triples of the blank nodes it reaches (a concise bounded description), and the labels
(``rdfs:label``, ``skos:prefLabel``) of the IRIs it links to. :func:`describe` runs in a query worker of
``threatgraph serve`` (under its time, row and memory limits); the IRI is used as an RDF term in
pattern lookups, never pasted into query text.

>>> path_iri("/atlas/AML.T0051")
'https://w3id.org/threatgraph/atlas/AML.T0051'
>>> path_iri("/query") is None
True
>>> href("https://w3id.org/threatgraph/attack/T1059.001"), href("https://w3id.org/threatgraph/ontology#Finding")
('/attack/T1059.001', '/ontology#tg:Finding')
>>> href("https://example.org/a b")
'/resource?iri=https%3A%2F%2Fexample.org%2Fa+b'
"""

from __future__ import annotations

import html
import urllib.parse
from typing import Any

from pyoxigraph import BlankNode, Literal, NamedNode, RdfFormat, Store, Triple, serialize

from threatgraph.terms import BASE, KB, LINDDUN, PREFIXES, RDFS, SKOS, STRIDE, TG, TGML, TURTLE_PREFIXES

PATH_PREFIXES: tuple[str, ...] = ("attack/", "atlas/", "capec/", "finding/", "rule/", "graph/")
"""Path-style URLs this server resolves: ``/<prefix>…`` names ``https://w3id.org/threatgraph/<prefix>…``."""
HASH_NAMESPACES: tuple[str, ...] = (str(TG), str(TGML), str(KB), str(STRIDE), str(LINDDUN))
"""Vocabulary namespaces: their terms are documented at ``/ontology#prefix:Name``."""
LABELS: tuple[NamedNode, ...] = (NamedNode(RDFS.label), NamedNode(SKOS.prefLabel))
RDF_TYPES: dict[str, RdfFormat] = {
    "text/turtle": RdfFormat.TURTLE,
    "application/ld+json": RdfFormat.JSON_LD,
    "application/n-triples": RdfFormat.N_TRIPLES,
    "application/rdf+xml": RdfFormat.RDF_XML,
}
OFFERS: tuple[str, ...] = ("text/html", *RDF_TYPES)
Response = tuple[int, str, bytes]


def path_iri(path: str) -> str | None:
    """The IRI a path-style URL names (percent-escapes decoded), or None if the path is not one."""
    rest = path[1:] if path.startswith("/") else path
    if not rest.startswith(PATH_PREFIXES) or rest in PATH_PREFIXES:
        return None
    return BASE + urllib.parse.unquote(rest, errors="strict")


def curie(iri: str) -> str:
    """``prefix:local`` for a known namespace, else the IRI."""
    best = ""
    for p, ns in PREFIXES.items():
        if iri.startswith(ns) and len(ns) > len(PREFIXES.get(best, "")) and len(iri) > len(ns):
            best = p
    return f"{best}:{iri[len(PREFIXES[best]):]}" if best else iri


def href(iri: str) -> str:
    """Where a link to ``iri`` goes on this server: path-style URL, vocabulary anchor, or ``/resource?iri=``."""
    if iri.startswith(BASE):
        rest = iri[len(BASE):]
        if rest.startswith(PATH_PREFIXES) and "#" not in rest and "?" not in rest:
            return "/" + urllib.parse.quote(rest, safe="/:@!$&'()*+,;=-._~")
        if any(iri.startswith(ns) for ns in HASH_NAMESPACES):
            return "/ontology#" + urllib.parse.quote(curie(iri), safe=":")
    return "/resource?" + urllib.parse.urlencode({"iri": iri})


def _collect(store: Store, iri: NamedNode, max_rows: int) -> list[Triple] | None:
    """Subject triples + blank-node closure + labels of linked IRIs; None when over ``max_rows``."""
    seen: set[Triple] = set()
    out: list[Triple] = []
    linked: list[NamedNode] = []
    todo: list[NamedNode | BlankNode] = [iri]
    visited: set[NamedNode | BlankNode] = {iri}
    while todo:
        node = todo.pop()
        for q in store.quads_for_pattern(node, None, None, None):
            t = q.triple
            if t in seen:
                continue
            seen.add(t)
            out.append(t)
            if len(out) > max_rows:
                return None
            o = t.object
            if isinstance(o, BlankNode) and o not in visited:
                visited.add(o)
                todo.append(o)
            elif isinstance(o, NamedNode) and o not in visited:
                visited.add(o)
                linked.append(o)
    if not out:
        return out
    for o in linked:
        for lp in LABELS:
            for q in store.quads_for_pattern(o, lp, None, None):
                t = q.triple
                if t not in seen:
                    seen.add(t)
                    out.append(t)
                    if len(out) > max_rows:
                        return None
    return out


def describe(store: Store, req: dict[str, Any]) -> Response:
    """Answer a ``describe`` request (keys ``iri``, ``mime``, ``max_rows``) in a query worker."""
    iri_text: str = req["iri"]
    try:
        iri = NamedNode(iri_text)
    except ValueError as err:
        return 400, "text/plain", f"not a valid absolute IRI {iri_text[:200]!r}: {err}\n".encode()
    max_rows: int = req["max_rows"]
    triples = _collect(store, iri, max_rows)
    if triples is None:
        return 422, "text/plain", (
            f"the description of <{iri_text}> has more than {max_rows} triples, this server's limit; "
            "query it with SPARQL and LIMIT (the operator can raise --max-rows)\n").encode()
    if not triples:
        return 404, "text/plain", (
            f"this dataset has no statements about <{iri_text}> (nothing has it as subject); "
            "check the IRI, or import the release or analyse the model that defines it\n").encode()
    mime: str = req["mime"]
    if mime == "text/html":
        return 200, mime, render_html(iri_text, triples).encode()
    prefixes = TURTLE_PREFIXES if mime in ("text/turtle", "application/rdf+xml") else None
    return 200, mime, serialize(triples, format=RDF_TYPES[mime], prefixes=prefixes) or b""


# -- HTML ---------------------------------------------------------------------------------------------
def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _iri_link(iri: str, labels: dict[str, str]) -> str:
    label = labels.get(iri)
    text = f"{_h(label)} <small><code>{_h(curie(iri))}</code></small>" if label else f"<code>{_h(curie(iri))}</code>"
    return f'<a href="{_h(href(iri))}">{text}</a>'


def _cell(term: Any, labels: dict[str, str], by_subject: dict[Any, list[Triple]], depth: int) -> str:
    if isinstance(term, NamedNode):
        return _iri_link(term.value, labels)
    if isinstance(term, Literal):
        extra = ""
        if term.language:
            extra = f" <small>@{_h(term.language)}</small>"
        elif term.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
            extra = f" <small>^^{_h(curie(term.datatype.value))}</small>"
        return f'<span style="white-space:pre-wrap">{_h(term.value)}</span>{extra}'
    if isinstance(term, BlankNode) and depth < 8 and term in by_subject:
        return _table(by_subject[term], labels, by_subject, depth + 1)
    return f"<code>{_h(str(term))}</code>"


def _table(rows: list[Triple], labels: dict[str, str], by_subject: dict[Any, list[Triple]], depth: int) -> str:
    body = "".join(
        f"<tr><td>{_iri_link(t.predicate.value, labels)}</td><td>{_cell(t.object, labels, by_subject, depth)}</td></tr>"
        for t in sorted(rows, key=lambda t: (t.predicate.value, str(t.object)))
    )
    return f"<table><tr><th>predicate</th><th>object</th></tr>{body}</table>"


def render_html(iri: str, triples: list[Triple]) -> str:
    """An HTML page: the resource's predicate/object table, every IRI a link to follow on this server."""
    subject = NamedNode(iri)
    by_subject: dict[Any, list[Triple]] = {}
    for t in triples:
        by_subject.setdefault(t.subject, []).append(t)
    labels: dict[str, str] = {}
    for t in triples:
        if t.predicate in LABELS and isinstance(t.subject, NamedNode) and isinstance(t.object, Literal):
            if t.subject.value not in labels or t.predicate == LABELS[0]:
                labels[t.subject.value] = t.object.value
    title = labels.get(iri, curie(iri))
    own = by_subject.get(subject, [])
    alt = "/resource?" + urllib.parse.urlencode({"iri": iri})
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{_h(title)} — threatgraph</title>",
        "<style>body{font-family:sans-serif;max-width:80em;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;"
        "text-align:left}</style>",
        "</head>", "<body>",
        f"<h1>{_h(title)}</h1>",
        f'<p><code>{_h(iri)}</code> · {len(own)} statements · <a href="/ontology">vocabulary</a> · '
        f'<a href="/">query page</a></p>',
        f"<p>As RDF: request <code>{_h(alt)}</code> (or this URL) with <code>Accept: text/turtle</code> or "
        "<code>application/ld+json</code>.</p>",
        _table(own, labels, by_subject, 0),
        "</body>", "</html>", "",
    ])
