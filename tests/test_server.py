"""``threatgraph serve``: SPARQL 1.1 Protocol, Graph Store Protocol, limits and security, with real clients
(raw urllib, SPARQLWrapper, rdflib's SPARQLStore, threatgraph's RemoteStore) on loopback."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdflib
from pyoxigraph import Literal, NamedNode, QueryResultsFormat, RdfFormat, parse, parse_query_results
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import JSON, POST, SPARQLWrapper

from threatgraph.analysis.engine import Engine
from threatgraph.server import Running, ServerConfig, check_remote_access, start, write_dataset
from threatgraph.store import open_store
from threatgraph.store.remote import RemoteStore

# A private opener: SPARQLWrapper installs a global urllib opener (with a digest-auth handler whose
# retry count, once past 5, turns every later 401 into an HTTPError without a body), and other test
# files run before these.
_OPENER = urllib.request.build_opener()

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "data" / "examples" / "rag-assistant.ttl"
G_MODEL = "https://w3id.org/threatgraph/graph/model"
TOKEN = "s3cret-token"
COUNT_FINDINGS = "SELECT (COUNT(*) AS ?n) WHERE { ?f a tg:Finding }"
BOMB = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """An analysed example (ontology, model, inferred, findings) as an N-Quads file, and its finding count."""
    analysis = Engine().analyze([MODEL])
    path = write_dataset(analysis.store.quads(), str(tmp_path_factory.mktemp("ds")))
    n = int(analysis.store.select(COUNT_FINDINGS)[0]["n"].value)
    yield path, n


def _start(dataset: tuple[str, int], **kw: object) -> Running:
    cfg = ServerConfig(port=0, time_limit=3.0, workers=2, **kw)  # type: ignore[arg-type]
    return start(cfg, dataset[0])


@pytest.fixture(scope="module")
def ro(dataset: tuple[str, int]) -> Iterator[Running]:
    """Read-only server with a small row limit and request-size limit."""
    r = _start(dataset, max_rows=5000, max_body=200_000, cors_origins=("https://example.org",))
    yield r
    r.stop()


@pytest.fixture()
def rw(dataset: tuple[str, int]) -> Iterator[Running]:
    """Server with updates enabled by a token (fresh per test: writes change the served data)."""
    r = _start(dataset, update_token=TOKEN, allow_load=("http://127.0.0.1:9/",))
    yield r
    r.stop()


def http(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def q(url: str, query: str, accept: str = "application/sparql-results+json") -> tuple[int, dict[str, str], bytes]:
    return http(f"{url}/query?{urllib.parse.urlencode({'query': query})}", headers={"Accept": accept})


def count(body: bytes) -> int:
    return int(json.loads(body)["results"]["bindings"][0]["n"]["value"])


# -- protocol -------------------------------------------------------------------------------------------
def test_get_and_both_post_encodings_agree(ro: Running, dataset: tuple[str, int]) -> None:
    status, headers, body = q(ro.url, COUNT_FINDINGS)
    assert status == 200 and headers["Content-Type"].startswith("application/sparql-results+json")
    assert count(body) == dataset[1] > 100
    form = urllib.parse.urlencode({"query": COUNT_FINDINGS}).encode()
    s2, _, b2 = http(ro.url + "/query", form, {"Content-Type": "application/x-www-form-urlencoded"})
    s3, _, b3 = http(ro.url + "/query", COUNT_FINDINGS.encode(), {"Content-Type": "application/sparql-query"})
    assert (s2, count(b2)) == (s3, count(b3)) == (200, dataset[1])


def test_content_negotiation_for_results(ro: Running) -> None:
    query = "SELECT ?s WHERE { ?s a tg:TrustZone } ORDER BY ?s"
    status, _, jbody = q(ro.url, query)
    expected = [b["s"]["value"] for b in json.loads(jbody)["results"]["bindings"]]
    assert status == 200 and "https://example.org/rag-assistant#internet" in expected
    for accept, fmt in [
        ("application/sparql-results+xml", QueryResultsFormat.XML),
        ("text/tab-separated-values", QueryResultsFormat.TSV),
    ]:
        status, headers, body = q(ro.url, query, accept)
        assert status == 200 and headers["Content-Type"].startswith(accept)
        assert [s["s"].value for s in parse_query_results(body, fmt)] == expected  # type: ignore[union-attr]
    status, headers, body = q(ro.url, query, "text/csv;q=0.9, application/x-nothing")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert body.decode().splitlines() == ["s", *expected]
    assert q(ro.url, "ASK { ?s a tg:TrustZone }")[2] == b'{"head": {}, "boolean": true}'


def test_content_negotiation_for_graphs(ro: Running) -> None:
    query = "CONSTRUCT { ?z a tg:TrustZone } WHERE { ?z a tg:TrustZone }"
    sizes = set()
    for accept, fmt in [
        ("text/turtle", RdfFormat.TURTLE),
        ("application/n-triples", RdfFormat.N_TRIPLES),
        ("application/ld+json", RdfFormat.JSON_LD),
        ("application/rdf+xml", RdfFormat.RDF_XML),
    ]:
        status, headers, body = q(ro.url, query, accept)
        assert status == 200 and headers["Content-Type"].startswith(accept), (accept, body)
        sizes.add(len(list(parse(body, fmt))))
    assert sizes == {6}
    status, _, body = q(ro.url, query, "image/png")
    assert status == 406 and b"text/turtle" in body


def test_service_description(ro: Running) -> None:
    status, headers, body = http(ro.url + "/query", headers={"Accept": "text/turtle"})
    assert status == 200 and headers["Content-Type"].startswith("text/turtle")
    g = rdflib.Graph().parse(data=body.decode(), format="turtle")
    sd = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    assert (None, rdflib.RDF.type, sd.Service) in g
    names = {str(o) for o in g.objects(None, sd.name)}
    assert G_MODEL in names
    assert (None, sd.supportedLanguage, sd.SPARQL11Update) not in g  # read-only server


def test_graph_store_reads(ro: Running) -> None:
    status, headers, body = http(
        f"{ro.url}/store?{urllib.parse.urlencode({'graph': G_MODEL})}", headers={"Accept": "application/n-triples"}
    )
    assert status == 200 and headers["Content-Type"].startswith("application/n-triples")
    triples = list(parse(body, RdfFormat.N_TRIPLES))
    assert len(triples) == len(list(parse(MODEL.read_bytes(), RdfFormat.TURTLE)))
    status, _, body = http(f"{ro.url}/store?graph=urn:nothing")
    assert status == 404 and b"urn:nothing" in body
    status, headers, body = http(f"{ro.url}/store", headers={"Accept": "application/n-quads"})
    assert status == 200 and len(body) > len(MODEL.read_bytes())


def test_named_query_endpoint(ro: Running) -> None:
    status, _, body = http(f"{ro.url}/queries/findings-by-severity?severity=tg:High", headers={"Accept": "application/json"})
    rows = json.loads(body)["results"]["bindings"]
    assert status == 200 and rows and {r["rule"]["value"] for r in rows} >= {"TG-STRIDE-E-002"}
    status, _, body = http(f"{ro.url}/queries/findings-by-severity?nope=1")
    assert status == 400 and b"unknown parameter" in body
    status, _, body = http(f"{ro.url}/queries/findings-of-element?element=not%20an%20iri")
    assert status == 400 and b"not a valid IRI" in body
    status, _, listing = http(f"{ro.url}/queries")
    assert status == 200 and len(json.loads(listing)) >= 25


# -- malformed requests -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "data", "headers", "status", "needle"),
    [
        ("GET", "/query?query=SELEKT%20*", None, {}, 400, b"invalid SPARQL"),
        ("POST", "/query", b"query=", {"Content-Type": "text/plain"}, 415, b"unsupported Content-Type"),
        ("POST", "/query", b"", {"Content-Type": "application/x-www-form-urlencoded"}, 400, b"missing the 'query'"),
        ("PUT", "/query", b"x", {"Content-Type": "application/sparql-query"}, 405, b"not allowed"),
        ("GET", "/nowhere", None, {}, 404, b"/query"),
        ("POST", "/query", b"\xff\xfe", {"Content-Type": "application/sparql-query"}, 400, b"UTF-8"),
        ("GET", "/query?query=SELECT%20*%20%7B%7D&default-graph-uri=not%20an%20iri", None, {}, 400, b"invalid graph IRI"),
        ("POST", "/store?graph=urn:g", b"<a> <b> <c> .", {"Content-Type": "application/n-triples"}, 403, b"read-only"),
        ("POST", "/update", b"update=CLEAR%20ALL", {"Content-Type": "application/x-www-form-urlencoded"}, 403, b"read-only"),
    ],
)
def test_bad_requests_get_clear_errors(
    ro: Running, method: str, path: str, data: bytes | None, headers: dict[str, str], status: int, needle: bytes
) -> None:
    got, hdrs, body = http(ro.url + path, data, headers, method)
    assert got == status, body
    assert needle in body and hdrs["Content-Type"].startswith("text/plain")
    assert q(ro.url, "ASK {}")[0] == 200  # still answering


def test_request_size_limit(ro: Running) -> None:
    values = " ".join(f'"{i}"' for i in range(40_000))
    query = f"SELECT ?x WHERE {{ VALUES ?x {{ {values} }} }}"
    status, _, body = http(ro.url + "/query", query.encode(), {"Content-Type": "application/sparql-query"})
    assert status == 413 and b"limit" in body


def test_result_size_limit(ro: Running) -> None:
    status, _, body = q(ro.url, "SELECT * WHERE { ?s ?p ?o }")
    assert status == 422 and b"more than 5000 rows" in body
    status, _, body = q(ro.url, "SELECT * WHERE { ?s ?p ?o } LIMIT 10")
    assert status == 200 and len(json.loads(body)["results"]["bindings"]) == 10


# -- hostile queries --------------------------------------------------------------------------------------
def test_cartesian_bomb_is_stopped_and_server_keeps_answering(ro: Running, dataset: tuple[str, int]) -> None:
    t0 = time.monotonic()
    status, _, body = q(ro.url, BOMB)
    assert status == 503 and b"time limit of 3 s" in body
    assert time.monotonic() - t0 < 20
    assert count(q(ro.url, COUNT_FINDINGS)[2]) == dataset[1]


def test_deep_property_path_is_bounded(ro: Running) -> None:
    status, _, body = q(ro.url, "SELECT (COUNT(*) AS ?n) WHERE { ?a (!rdf:nil|^!rdf:nil)* ?b . ?b (!rdf:nil)* ?c }")
    assert status == 503 and b"time limit" in body
    assert q(ro.url, "ASK {}")[0] == 200


def test_concurrent_bombs_do_not_block_the_server(ro: Running) -> None:
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(q(ro.url, BOMB)[0])) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [503, 503, 503]
    assert q(ro.url, "ASK { ?s a tg:Finding }")[2] == b'{"head": {}, "boolean": true}'


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { SERVICE <http://169.254.169.254/latest/meta-data> { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE SILENT <http://127.0.0.1:22/> { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE ?endpoint { ?s ?p ?o } }",
        "PREFIX x: <http://10.0.0.1/> SELECT * WHERE { SERVICE x:sparql { ?s ?p ?o } }",
        "select * where { service <file:///etc/passwd> { ?s ?p ?o } }",
    ],
)
def test_service_refused(ro: Running, query: str) -> None:
    status, _, body = q(ro.url, query)
    assert status == 403 and b"SERVICE" in body


def test_service_words_in_strings_and_comments_are_not_refused(ro: Running) -> None:
    query = 'SELECT ?x WHERE { BIND("SERVICE <http://10.0.0.1/>" AS ?x) } # SERVICE <http://10.0.0.1/>'
    status, _, body = q(ro.url, query)
    assert status == 200 and b"10.0.0.1" in body


def test_allow_list_does_not_admit_file_or_base_tricks() -> None:
    cfg = ServerConfig(allow_load=("http://data.example.org/",), allow_service=("http://sparql.example.org/",))
    check_remote_access("LOAD <http://data.example.org/a.ttl>", cfg, update=True)  # allowed
    check_remote_access("SELECT * { SERVICE <http://sparql.example.org/q> { ?s ?p ?o } }", cfg, update=False)
    from threatgraph.server import HttpError

    for text in [
        "LOAD <file:///etc/passwd>",
        "LOAD <http://data.example.org.evil.com/x>",
        "BASE <file:///etc/> LOAD <passwd>",
        "LOAD SILENT <FILE:///etc/shadow> INTO GRAPH <urn:g>",
    ]:
        with pytest.raises(HttpError) as err:
            check_remote_access(text, cfg, update=True)
        assert err.value.status == 403


# -- updates and writes -----------------------------------------------------------------------------------
def test_updates_need_the_token(rw: Running) -> None:
    insert = b"INSERT DATA { GRAPH <urn:x:g> { <urn:x:a> <urn:x:p> 'v' } }"
    ctype = {"Content-Type": "application/sparql-update"}
    status, headers, body = http(rw.url + "/update", insert, ctype)
    assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
    status, _, body = http(rw.url + "/update", insert, {**ctype, "Authorization": "Bearer wrong"})
    assert status == 403 and b"wrong update token" in body
    status, _, body = http(rw.url + "/update", insert, {**ctype, "Authorization": "Basic " + TOKEN})
    assert status == 403
    assert q(rw.url, "ASK { <urn:x:a> <urn:x:p> 'v' }")[2].endswith(b"false}")
    status, _, _ = http(rw.url + "/update", insert, {**ctype, "Authorization": f"Bearer {TOKEN}"})
    assert status == 204
    assert q(rw.url, "ASK { <urn:x:a> <urn:x:p> 'v' }")[2].endswith(b"true}")


def test_load_file_refused_even_with_token(rw: Running) -> None:
    auth = {"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"}
    status, _, body = http(rw.url + "/update", b"LOAD <file:///etc/passwd>", auth)
    assert status == 403 and b"not allowed" in body
    status, _, body = http(rw.url + "/update", b"LOAD <http://169.254.169.254/x> INTO GRAPH <urn:g>", auth)
    assert status == 403


def test_graph_store_writes_with_token(rw: Running) -> None:
    url = f"{rw.url}/store?graph=urn:x:gsp"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    nt = {"Content-Type": "application/n-triples"}
    assert http(url, b"<urn:x:a> <urn:x:p> <urn:x:b> .", nt, "PUT")[0] == 401
    assert http(url, b"<urn:x:a> <urn:x:p> <urn:x:b> .", {**nt, **auth}, "PUT")[0] == 201
    assert http(url, b"<urn:x:a> <urn:x:p> <urn:x:c> .", {**nt, **auth}, "POST")[0] == 204
    assert http(url, b"not turtle at all", {"Content-Type": "text/turtle", **auth}, "PUT")[0] == 400
    assert http(url, b"x", {"Content-Type": "image/png", **auth}, "PUT")[0] == 415
    status, _, body = http(url, headers={"Accept": "application/n-triples"})
    assert status == 200 and len(list(parse(body, RdfFormat.N_TRIPLES))) == 2  # the bad PUT changed nothing
    assert http(url, b"<urn:x:a> <urn:x:p> <urn:x:d> .", {**nt, **auth}, "PUT")[0] == 204
    assert len(list(parse(http(url, headers={"Accept": "application/n-triples"})[2], RdfFormat.N_TRIPLES))) == 1
    assert http(url, None, auth, "DELETE")[0] == 204
    assert http(url)[0] == 404
    assert http(url, None, auth, "DELETE")[0] == 404


# -- CORS -------------------------------------------------------------------------------------------------
def test_cors(ro: Running, rw: Running) -> None:
    _, headers, _ = http(ro.url + "/query?query=ASK%7B%7D", headers={"Origin": "https://example.org"})
    assert headers.get("Access-Control-Allow-Origin") == "https://example.org"
    _, headers, _ = http(ro.url + "/query?query=ASK%7B%7D", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers
    status, headers, _ = http(ro.url + "/query", None, {"Origin": "https://example.org"}, "OPTIONS")
    assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]
    _, headers, _ = http(rw.url + "/query?query=ASK%7B%7D", headers={"Origin": "https://example.org"})
    assert "Access-Control-Allow-Origin" not in headers  # CORS is off unless configured


# -- real clients -----------------------------------------------------------------------------------------
def test_sparqlwrapper_client(ro: Running, dataset: tuple[str, int]) -> None:
    sw = SPARQLWrapper(ro.url + "/query")
    sw.setReturnFormat(JSON)
    sw.setQuery("PREFIX tg: <https://w3id.org/threatgraph/ontology#> " + COUNT_FINDINGS)
    res = sw.queryAndConvert()
    assert int(res["results"]["bindings"][0]["n"]["value"]) == dataset[1]  # type: ignore[index,call-overload]
    sw.setMethod(POST)
    sw.setQuery("ASK { ?z a <https://w3id.org/threatgraph/ontology#TrustZone> }")
    assert sw.queryAndConvert()["boolean"] is True  # type: ignore[index,call-overload]
    sw.setQuery("SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } ORDER BY ?a")
    with pytest.raises(urllib.error.HTTPError) as err:  # SPARQLWrapper passes a 503 through as HTTPError
        sw.queryAndConvert()
    assert err.value.code == 503


def test_rdflib_sparqlstore_client(ro: Running) -> None:
    store = SPARQLStore(ro.url + "/query", returnFormat="json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ConjunctiveGraph queries the endpoint's default graph
        g = rdflib.ConjunctiveGraph(store=store)
    rows = list(g.query("SELECT ?z WHERE { ?z a <https://w3id.org/threatgraph/ontology#TrustZone> }"))
    assert rdflib.URIRef("https://example.org/rag-assistant#internet") in {r[0] for r in rows}  # type: ignore[index]
    assert len(rows) == 6


def test_remote_store_on_our_server(rw: Running) -> None:
    rs = RemoteStore(rw.url + "/query", token=TOKEN)
    rows = rs.select("SELECT DISTINCT ?l WHERE { ?z a tg:TrustZone ; rdfs:label ?l }", {"z": NamedNode("https://example.org/rag-assistant#internet")})
    assert [r["l"] for r in rows] == [Literal("Internet")]
    rs.load('<urn:x:a> <urn:x:p> "v" .', "application/n-triples", "urn:x:g2")
    assert rs.ask("ASK { GRAPH <urn:x:g2> { <urn:x:a> <urn:x:p> ?v } }")
    rs.drop_graph("urn:x:g2")
    assert "urn:x:g2" not in rs.graph_names()
    assert G_MODEL in rs.graph_names()
    ro_store = open_store(endpoint=rw.url + "/query")
    from threatgraph.errors import StoreError

    with pytest.raises(StoreError, match="401"):
        ro_store.load('<urn:x:a> <urn:x:p> "v" .', "application/n-triples", "urn:x:g3")


# -- load -------------------------------------------------------------------------------------------------
def test_loopback_load_has_no_errors(ro: Running) -> None:
    """16 clients, 2,000 requests of mixed named queries; every answer must be a 200 with the right rows."""
    queries = [
        ("/queries/findings-by-severity?severity=tg:High", None),
        ("/queries/elements-crossing-boundaries", None),
        ("/query?" + urllib.parse.urlencode({"query": COUNT_FINDINGS}), None),
        ("/query", urllib.parse.urlencode({"query": "SELECT ?z WHERE { ?z a tg:TrustZone }"}).encode()),
    ]
    expected = {i: http(ro.url + p, d, {"Content-Type": "application/x-www-form-urlencoded"})[2] for i, (p, d) in enumerate(queries)}
    errors: list[str] = []
    done = [0]
    lock = threading.Lock()

    def client(k: int) -> None:
        for j in range(125):
            i = (k + j) % len(queries)
            path, data = queries[i]
            status, _, body = http(ro.url + path, data, {"Content-Type": "application/x-www-form-urlencoded"})
            with lock:
                done[0] += 1
                if status != 200 or body != expected[i]:
                    errors.append(f"{path}: {status} {body[:100]!r}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert done[0] == 2000
    assert errors == []


def test_defaults_are_loopback_and_read_only() -> None:
    from threatgraph.cli import build_parser

    cfg = ServerConfig()
    assert cfg.host == "127.0.0.1" and cfg.update_token is None and cfg.cors_origins == ()
    assert cfg.allow_load == () and cfg.allow_service == ()
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.update_token is None


def test_head_request(ro: Running) -> None:
    status, headers, body = http(f"{ro.url}/store?{urllib.parse.urlencode({'graph': G_MODEL})}", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000


def test_a_killed_worker_is_replaced(ro: Running, dataset: tuple[str, int]) -> None:
    import os
    import signal

    pool = ro.server.pool
    idle = [pool._idle.get() for _ in range(pool.cfg.workers)]
    for w in idle:
        os.kill(w.pid, signal.SIGKILL)
        pool._idle.put(w)
    time.sleep(0.2)
    assert count(q(ro.url, COUNT_FINDINGS)[2]) == dataset[1]
    assert count(q(ro.url, COUNT_FINDINGS)[2]) == dataset[1]
