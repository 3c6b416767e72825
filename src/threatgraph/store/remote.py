"""Remote backend: any SPARQL 1.1 server, over the SPARQL 1.1 Protocol and the Graph Store Protocol.

Queries and updates go through SPARQLWrapper; results are parsed into pyoxigraph terms with
:func:`pyoxigraph.parse_query_results`, so the engine sees the same terms as on the embedded store.
Data is written per named graph with the Graph Store Protocol when the server has one, else with
chunked ``INSERT DATA`` updates.

Endpoint layouts are recognised from the query URL (override any part with keyword arguments):

* ``…/query`` (Oxigraph server, ``threatgraph serve``): update ``…/update``, graph store ``…/store?graph=``;
* ``…/sparql`` (Virtuoso): update on the same URL, graph store ``…/sparql-graph-crud?graph-uri=``
  (``…/sparql-auth`` and ``…/sparql-graph-crud-auth`` when credentials are given).

Queries see the union of all graphs as their default graph only if the server is set up that way
(Oxigraph: ``--union-default-graph``; Virtuoso does it by default; ``threatgraph serve`` does).

>>> s = RemoteStore("http://127.0.0.1:7878/query")
>>> (s.update_endpoint, s.store_endpoint, s.graph_param)
('http://127.0.0.1:7878/update', 'http://127.0.0.1:7878/store', 'graph')
>>> v = RemoteStore("http://127.0.0.1:8890/sparql", user="dba", password="dba")
>>> (v.endpoint, v.store_endpoint, v.graph_param)
('http://127.0.0.1:8890/sparql-auth', 'http://127.0.0.1:8890/sparql-graph-crud-auth', 'graph-uri')
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

from pyoxigraph import (
    BlankNode,
    DefaultGraph,
    NamedNode,
    Quad,
    QueryBoolean,
    QueryResultsFormat,
    QuerySolutions,
    RdfFormat,
    parse,
    parse_query_results,
    serialize,
)
from SPARQLWrapper import BASIC, DIGEST, POST, URLENCODED, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import SPARQLWrapperException

from threatgraph import bounded
from threatgraph.errors import InputError, StoreError
from threatgraph.sparql import inline_values
from threatgraph.store.base import Row, Term, boolean_of, rows_of
from threatgraph.store.embedded import rdf_format
from threatgraph.terms import sparql_prefixes

_RESULT_TYPES = {
    "application/sparql-results+json": QueryResultsFormat.JSON,
    "application/json": QueryResultsFormat.JSON,
    "application/sparql-results+xml": QueryResultsFormat.XML,
    "application/xml": QueryResultsFormat.XML,
    "text/tab-separated-values": QueryResultsFormat.TSV,
}
_GRAPH_TYPES = {
    "application/n-triples": RdfFormat.N_TRIPLES,
    "text/plain": RdfFormat.N_TRIPLES,
    "text/turtle": RdfFormat.TURTLE,
    "application/rdf+xml": RdfFormat.RDF_XML,
    "application/n-quads": RdfFormat.N_QUADS,
    "application/trig": RdfFormat.TRIG,
}
INSERT_CHUNK = 2000
"""Triples per ``INSERT DATA`` request when the server has no Graph Store Protocol."""
BNODE_CHUNK = 150
"""Triples per ``INSERT {…} WHERE {}`` request (Virtuoso limits the size of a template)."""


def _batches(quads: list[Quad], size: int, bnode_size: int) -> list[list[Quad]]:
    """Split quads into batches; quads linked through blank nodes always land in the same batch.

    >>> from pyoxigraph import BlankNode as B, NamedNode as N
    >>> g, p = N("urn:g"), N("urn:p")
    >>> qs = [Quad(N("urn:a"), p, B("x"), g), Quad(B("x"), p, B("y"), g), Quad(N("urn:c"), p, N("urn:d"), g)]
    >>> [len(b) for b in _batches(qs, 1, 1)]
    [1, 2]
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for q in quads:
        labels = _bnodes(q)
        for other in labels[1:]:
            parent[find(other)] = find(labels[0])
    groups: dict[str, list[Quad]] = defaultdict(list)
    plain: list[Quad] = []
    for q in quads:
        labels = _bnodes(q)
        if labels:
            groups[find(labels[0])].append(q)
        else:
            plain.append(q)
    out: list[list[Quad]] = [plain[i : i + size] for i in range(0, len(plain), size)]
    current: list[Quad] = []
    for group in groups.values():
        if current and len(current) + len(group) > bnode_size:
            out.append(current)
            current = []
        current.extend(group)
    if current:
        out.append(current)
    return out


def _bnodes(q: Quad) -> list[str]:
    return [t.value for t in (q.subject, q.object) if isinstance(t, BlankNode)]


def _normalize_json_results(body: bytes) -> bytes:
    """Make SPARQL JSON results from older servers parseable: blank node labels such as Virtuoso's
    ``nodeID://b10001`` become valid labels, and the pre-standard ``typed-literal`` type a ``literal``."""
    try:
        data = bounded.load_json(body, "the endpoint's SPARQL results")
    except ValueError:
        return body
    except InputError as err:  # nested too deeply, NaN, 5000-digit numbers: never from a sane endpoint
        raise StoreError(err.message, hint="is the endpoint URL right? the answer is not usable SPARQL results") from err
    results = data.get("results") if isinstance(data, dict) else None
    bindings = results.get("bindings") if isinstance(results, dict) else None
    if not isinstance(bindings, list):
        return body
    for row in bindings:
        if not isinstance(row, dict):
            continue
        for term in row.values():
            if not isinstance(term, dict) or not isinstance(term.get("value"), str):
                continue
            if term.get("type") == "bnode":
                term["value"] = _var(term["value"])
            elif term.get("type") == "typed-literal":
                term["type"] = "literal"
    return json.dumps(data).encode()


def _var(label: str) -> str:
    """A SPARQL variable/blank-node name from a blank node label."""
    return "".join(c if c.isalnum() else "_" for c in label)


def _short(err: Exception, limit: int = 800) -> str:
    """An error text cut to ``limit`` characters (servers often echo the whole query).

    SPARQLWrapper puts the server's answer into its message as a bytes repr (``b'...\\n'``): it is
    shown as the decoded text the server sent.

    >>> from SPARQLWrapper.SPARQLExceptions import Unauthorized
    >>> _short(Unauthorized(b"updates need the token: send 'Authorization: Bearer TOKEN'\\n"))
    "Unauthorized: access to this endpoint needs credentials: updates need the token: send 'Authorization: Bearer TOKEN'"
    """
    text = str(err)
    head, sep, response = text.partition(". \n\nResponse:\n")
    if sep and response[:2] in ("b'", 'b"'):
        try:
            raw = ast.literal_eval(response)
        except (ValueError, SyntaxError):
            raw = None
        if isinstance(raw, bytes):
            name, _, what = head.partition(": ")
            what = _SW_MESSAGES.get(name, what)
            text = f"{name}: {what}: {raw.decode('utf-8', 'replace').strip()}"
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


_SW_MESSAGES = {"Unauthorized": "access to this endpoint needs credentials"}


class _TooLarge(StoreError):
    """HTTP 413 from the server: the request body exceeds its limit."""


_BNODE_NT = re.compile(rb"(?:^|[ \t])_:", re.MULTILINE)


def _http_error(what: str, err: urllib.error.HTTPError) -> StoreError:
    """A StoreError with the status and the decoded text of an error answer."""
    try:
        body = err.read().decode("utf-8", "replace").strip()
    except OSError:
        body = ""
    return StoreError(_short(Exception(f"{what} failed: HTTP {err.code} {err.reason}" + (f": {body}" if body else ""))))


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class RemoteStore:
    """:class:`threatgraph.store.base.Store` over HTTP (SPARQL 1.1 Protocol + Graph Store Protocol)."""

    def __init__(
        self,
        endpoint: str,
        *,
        update_endpoint: str | None = None,
        store_endpoint: str | None = None,
        graph_param: str | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        digest: bool | None = None,
        timeout: float = 300.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(
                f"invalid SPARQL endpoint URL {endpoint!r}",
                hint="give the query URL, e.g. http://127.0.0.1:7878/query or http://127.0.0.1:8890/sparql",
            )
        base, _, last = endpoint.rstrip("/").rpartition("/")
        virtuoso = last in ("sparql", "sparql-auth")
        if virtuoso and user and last == "sparql":
            endpoint = base + "/sparql-auth"
        self.endpoint = endpoint
        if last == "query":
            self.update_endpoint = update_endpoint or base + "/update"
            self.store_endpoint: str | None = store_endpoint or base + "/store"
            self.graph_param = graph_param or "graph"
        elif virtuoso:
            self.update_endpoint = update_endpoint or endpoint
            crud = "/sparql-graph-crud-auth" if user else "/sparql-graph-crud"
            self.store_endpoint = store_endpoint or base + crud
            self.graph_param = graph_param or "graph-uri"
        else:
            self.update_endpoint = update_endpoint or endpoint
            self.store_endpoint = store_endpoint
            self.graph_param = graph_param or "graph"
        self.user, self.password, self.token = user, password, token
        self.digest = virtuoso if digest is None else digest
        self.timeout = timeout
        self._opener = self._build_opener()
        self._bnode_quads: dict[str, list[Quad]] = {}
        self._bnode_labels: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"RemoteStore({self.endpoint!r})"

    # -- HTTP plumbing -----------------------------------------------------------------------------
    def _build_opener(self) -> urllib.request.OpenerDirector:
        handlers: list[urllib.request.BaseHandler] = []
        if self.user is not None and self.digest:
            mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            for url in filter(None, (self.endpoint, self.update_endpoint, self.store_endpoint)):
                mgr.add_password(None, url, self.user, self.password or "")
            handlers.append(urllib.request.HTTPDigestAuthHandler(mgr))
        return urllib.request.build_opener(*handlers)

    def _headers(self) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        elif self.user is not None and not self.digest:
            cred = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
            h["Authorization"] = "Basic " + cred
        return h

    def _wrapper(self, url: str) -> SPARQLWrapper:
        sw = SPARQLWrapper(url, updateEndpoint=self.update_endpoint)
        sw.setMethod(POST)
        sw.setRequestMethod(URLENCODED)
        sw.setTimeout(int(self.timeout))
        if self.token:
            sw.addCustomHttpHeader("Authorization", "Bearer " + self.token)
        elif self.user is not None:
            sw.setHTTPAuth(DIGEST if self.digest else BASIC)
            sw.setCredentials(self.user, self.password or "")
        return sw

    def _http(self, method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> tuple[str, bytes]:
        req = urllib.request.Request(url, data=data, method=method, headers={**self._headers(), **(headers or {})})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return _media(resp.headers.get("Content-Type")), resp.read()
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", "replace")[:500]
            cls = _TooLarge if err.code == 413 else StoreError
            raise cls(f"{method} {url} failed: HTTP {err.code}: {body.strip()}") from err
        except (urllib.error.URLError, OSError) as err:
            raise StoreError(
                f"cannot reach {url}: {err}", hint="check that the SPARQL server is running and the URL is right"
            ) from err

    def _sparql(self, text: str, accept: str) -> tuple[str, bytes]:
        """POST a query (form-encoded, like SPARQLWrapper does) and return (media type, body)."""
        sw = self._wrapper(self.endpoint)
        sw.setQuery(text)
        # SPARQLWrapper guesses the form from the text and its comment stripper is fooled by words in
        # comments (e.g. "remove" reads as MOVE): the caller knows it is a query, so say so.
        sw.queryType = "CONSTRUCT" if "n-triples" in accept else "SELECT"
        sw.setOnlyConneg(True)
        sw.addCustomHttpHeader("Accept", accept)
        try:
            result = sw.query()
        except SPARQLWrapperException as err:
            raise StoreError(f"query on {self.endpoint} failed: {_short(err)}") from err
        except urllib.error.HTTPError as err:
            raise _http_error(f"query on {self.endpoint}", err) from err
        except (urllib.error.URLError, OSError) as err:
            raise StoreError(
                f"cannot reach {self.endpoint}: {err}", hint="check that the SPARQL server is running and the URL is right"
            ) from err
        info = result.response.info()
        return _media(info.get("Content-Type")), bytes(result.response.read())

    @staticmethod
    def _bind(query: str, bindings: Mapping[str, Term] | None) -> str:
        # A VALUES block at the start of the WHERE group (Virtuoso 7.2 rejects a trailing VALUES on
        # variables it does not project, and on CONSTRUCT; every engine joins it first).
        return inline_values(query, bindings) if bindings else query

    def _results(self, query: str, bindings: Mapping[str, Term] | None) -> QuerySolutions | QueryBoolean:
        text = sparql_prefixes() + self._bind(query, bindings)
        ctype, body = self._sparql(text, "application/sparql-results+json, application/sparql-results+xml;q=0.9")
        fmt = _RESULT_TYPES.get(ctype, QueryResultsFormat.JSON)
        if fmt == QueryResultsFormat.JSON and (b'"bnode"' in body or b'"typed-literal"' in body):
            body = _normalize_json_results(body)
        try:
            res = parse_query_results(body, fmt)
        except SyntaxError as err:
            raise StoreError(f"unreadable SPARQL results from {self.endpoint} ({ctype}): {err}") from err
        if isinstance(res, (QuerySolutions, QueryBoolean)):
            return res
        raise StoreError(f"unexpected results from {self.endpoint}")

    # -- queries -----------------------------------------------------------------------------------
    # ``complete``: this store defers no write (see the Store protocol); accepted and ignored
    def select(self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True) -> list[Row]:
        res = self._results(query, bindings)
        return rows_of(res)

    def ask(self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True) -> bool:
        res = self._results(query, bindings)
        return boolean_of(res)

    def construct(
        self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True
    ) -> list[Quad]:
        text = sparql_prefixes() + self._bind(query, bindings)
        ctype, body = self._sparql(text, "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.5")
        fmt = _GRAPH_TYPES.get(ctype, RdfFormat.TURTLE)
        try:
            return [Quad(q.subject, q.predicate, q.object, DefaultGraph()) for q in parse(body, fmt)]
        except SyntaxError as err:
            raise StoreError(f"unreadable graph from {self.endpoint} ({ctype}): {err}") from err

    def update(self, update: str) -> None:
        sw = self._wrapper(self.update_endpoint)
        sw.setQuery(sparql_prefixes() + update)
        sw.setMethod(POST)
        sw.queryType = "INSERT"  # the caller says it is an update (see _sparql)
        try:
            sw.query().response.read()
        except SPARQLWrapperException as err:
            raise StoreError(f"update on {self.update_endpoint} failed: {_short(err)}") from err
        except urllib.error.HTTPError as err:
            raise _http_error(f"update on {self.update_endpoint}", err) from err
        except (urllib.error.URLError, OSError) as err:
            raise StoreError(f"cannot reach {self.update_endpoint}: {err}") from err

    # -- data --------------------------------------------------------------------------------------
    def _gsp_url(self, graph: str | None) -> str:
        assert self.store_endpoint is not None
        if graph is None:
            return self.store_endpoint + "?default"
        return self.store_endpoint + "?" + urllib.parse.urlencode({self.graph_param: graph})

    @staticmethod
    def _ntriples(data: bytes | str, mime: str, graph: str) -> bytes:
        """Parse locally (so bad data fails before anything is sent) and re-serialize as N-Triples."""
        try:
            triples = list(parse(data, rdf_format(mime)))
        except SyntaxError as err:
            raise InputError(f"cannot parse {mime} data for graph <{graph}>: {err}") from err
        return serialize(triples, format=RdfFormat.N_TRIPLES) or b""

    def _insert_data(self, graph: str, nt: bytes) -> None:
        g = NamedNode(graph)
        self._insert_quads([Quad(t.subject, t.predicate, t.object, g) for t in parse(nt, RdfFormat.N_TRIPLES)])

    def _insert_quads(self, quads: list[Quad]) -> None:
        """Write quads with SPARQL Update, in batches that never split a set of triples linked by blank
        nodes (blank nodes are scoped to one request). Batches without blank nodes use ``INSERT DATA``;
        the others ``INSERT {…} WHERE {}`` (Virtuoso refuses blank nodes in ``INSERT DATA``)."""
        for batch in _batches(quads, INSERT_CHUNK, BNODE_CHUNK):
            blocks: dict[str, list[str]] = defaultdict(list)
            for q in batch:
                blocks[str(q.graph_name)].append(str(q.triple) + " .")
            text = " ".join(f"GRAPH {g} {{\n" + "\n".join(lines) + "\n}" for g, lines in blocks.items())
            if any(_bnodes(q) for q in batch):
                self.update(f"INSERT {{ {text} }} WHERE {{}}")
            else:
                self.update(f"INSERT DATA {{ {text} }}")

    def load(self, data: bytes | str, mime: str, graph: str) -> None:
        self._post_graph(graph, self._ntriples(data, mime, graph))

    def add_quads(self, quads: Iterable[Quad]) -> None:
        by_graph: dict[str, list[Quad]] = defaultdict(list)
        for q in quads:
            if not isinstance(q.graph_name, NamedNode):
                raise StoreError("a remote store takes quads in named graphs only")
            by_graph[q.graph_name.value].append(q)
        new_b = [q for qs in by_graph.values() for q in qs if _bnodes(q)]
        labels = {b for q in new_b for b in _bnodes(q)}
        linked = sorted(g for g, known in self._bnode_labels.items() if known & labels)
        if linked and not (self.store_endpoint and self.graph_param == "graph"):
            # No dataset upload (Virtuoso): match the earlier blank nodes on the server by the triples
            # written with them, and insert the new quads against the matched nodes.
            plain_by_graph: dict[str, list[Quad]] = defaultdict(list)
            for q in (q for qs in by_graph.values() for q in qs if not _bnodes(q)):
                plain_by_graph[q.graph_name.value].append(q)  # type: ignore[union-attr]
            for graph, qs in plain_by_graph.items():
                self._post_graph(graph, serialize([q.triple for q in qs], format=RdfFormat.N_TRIPLES) or b"")
            self._insert_matched(new_b, [q for g in linked for q in self._bnode_quads[g]])
        elif linked:
            # Blank nodes are scoped to one request: quads sharing a blank node with data written
            # earlier are written again together with it, in one request, or the link is lost.
            old = [q for g in linked for q in self._bnode_quads[g]]
            plain = [q for qs in by_graph.values() for q in qs if not _bnodes(q)]
            for g in linked:
                n = NamedNode(g)
                self.update(
                    f"DELETE {{ GRAPH {n} {{ ?s ?p ?o }} }} WHERE {{ GRAPH {n} {{ ?s ?p ?o "
                    "FILTER(isBlank(?s) || isBlank(?o)) } }"
                )
            self._write_dataset(plain + old + new_b)
        else:
            for graph, qs in by_graph.items():
                self._post_graph(graph, serialize([q.triple for q in qs], format=RdfFormat.N_TRIPLES) or b"")
        for q in new_b:
            g = q.graph_name.value  # type: ignore[union-attr]
            self._bnode_quads.setdefault(g, []).append(q)
            self._bnode_labels.setdefault(g, set()).update(_bnodes(q))

    def _insert_matched(self, new: list[Quad], old: list[Quad]) -> None:
        """Insert ``new`` quads whose blank nodes were written earlier (``old``) with ``INSERT … WHERE``:
        the WHERE clause matches the earlier blank-node structure on the server, one connected
        component at a time."""
        index: dict[str, list[Quad]] = defaultdict(list)
        for q in old:
            for b in _bnodes(q):
                index[b].append(q)
        for batch in _batches(new, INSERT_CHUNK, 1):
            start = {b for q in batch for b in _bnodes(q) if b in index}
            seen, todo, pattern = set(start), list(start), []
            while todo:
                for q in index[todo.pop()]:
                    if q not in pattern:
                        pattern.append(q)
                        for b in _bnodes(q):
                            if b not in seen:
                                seen.add(b)
                                todo.append(b)

            def term(t: object, known: set[str]) -> str:
                if isinstance(t, BlankNode):
                    return f"?b_{_var(t.value)}" if t.value in known else f"_:{_var(t.value)}"
                return str(t)

            def block(quads: list[Quad], known: set[str]) -> str:
                groups: dict[str, list[str]] = defaultdict(list)
                for q in quads:
                    groups[str(q.graph_name)].append(
                        f"{term(q.subject, known)} {q.predicate} {term(q.object, known)} ."
                    )
                return " ".join(f"GRAPH {g} {{ {' '.join(lines)} }}" for g, lines in groups.items())

            self.update(f"INSERT {{ {block(batch, seen)} }} WHERE {{ {block(pattern, seen)} }}")

    def _post_graph(self, graph: str, nt: bytes) -> None:
        """Add N-Triples to ``graph``: one Graph Store POST, else batched ``INSERT DATA``."""
        if not nt:
            return
        if self.store_endpoint:
            self._post_split(self._gsp_url(graph), nt)
        else:
            self._insert_data(graph, nt)

    def _post_split(self, url: str, nt: bytes) -> None:
        """POST N-Triples; when the server refuses the size (413), POST halves (appending to a graph is the
        same in parts). Data with blank nodes is never split: they are scoped to one request."""
        try:
            self._http("POST", url, nt, {"Content-Type": "application/n-triples"})
        except _TooLarge as err:
            lines = nt.splitlines(keepends=True)
            if len(lines) < 2 or _BNODE_NT.search(nt):
                raise StoreError(f"{err} (the server's request size limit is too small for this graph; "
                                 "raise it, e.g. threatgraph serve --max-body)") from err
            mid = len(lines) // 2
            self._post_split(url, b"".join(lines[:mid]))
            self._post_split(url, b"".join(lines[mid:]))

    def _write_dataset(self, quads: list[Quad]) -> None:
        """Write quads of several graphs keeping blank nodes linked (one request, or linked batches)."""
        if self.store_endpoint and self.graph_param == "graph":
            body = serialize(quads, format=RdfFormat.N_QUADS) or b""
            self._http("POST", self.store_endpoint, body, {"Content-Type": "application/n-quads"})
            return
        self._insert_quads(quads)

    def _forget(self, graph: str) -> None:
        self._bnode_quads.pop(graph, None)
        self._bnode_labels.pop(graph, None)

    def replace_graph(self, graph: str, data: bytes | str, mime: str) -> None:
        nt = self._ntriples(data, mime, graph)
        self._forget(graph)
        if self.store_endpoint:
            # PUT replaces the graph in one request (atomic on servers with transactions).
            try:
                self._http("PUT", self._gsp_url(graph), nt, {"Content-Type": "application/n-triples"})
            except _TooLarge as err:
                if _BNODE_NT.search(nt):
                    raise StoreError(f"{err} (the server's request size limit is too small for this graph; "
                                     "raise it, e.g. threatgraph serve --max-body)") from err
                # Too large for one request: upload in parts to a scratch graph, then MOVE it over the
                # target in one update (readers never see a half-written graph).
                scratch = f"urn:threatgraph:upload:{uuid.uuid4().hex}"
                try:
                    self._post_split(self._gsp_url(scratch), nt)
                    self.update(f"MOVE GRAPH {NamedNode(scratch)} TO GRAPH {NamedNode(graph)}")
                except StoreError:
                    with contextlib.suppress(StoreError):
                        self.update(f"DROP SILENT GRAPH {NamedNode(scratch)}")
                    raise
        else:
            self.drop_graph(graph)
            self._insert_data(graph, nt)

    def drop_graph(self, graph: str) -> None:
        self._forget(graph)
        self.update(f"DROP SILENT GRAPH {NamedNode(graph)}")

    def graph_names(self) -> list[str]:
        rows = self.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        return sorted(r["g"].value for r in rows if isinstance(r.get("g"), NamedNode))

    def dump(self, graph: str | None, mime: str) -> bytes:
        fmt = rdf_format(mime)
        quads = list(self.quads(graph))
        if fmt.supports_datasets:
            return serialize(quads, format=fmt) or b""
        return serialize([q.triple for q in quads], format=fmt) or b""

    def quads(self, graph: str | None = None) -> Iterator[Quad]:
        if graph is None:
            rows = self.select("SELECT ?s ?p ?o ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        else:
            rows = self.select("SELECT ?s ?p ?o ?g WHERE { GRAPH ?g { ?s ?p ?o } }", {"g": NamedNode(graph)})
        for r in rows:
            yield Quad(r["s"], r["p"], r["o"], r["g"])  # type: ignore[arg-type]

    def __len__(self) -> int:
        rows = self.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
        return int(rows[0]["n"].value) if rows else 0
