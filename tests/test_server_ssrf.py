"""``threatgraph serve`` never calls an endpoint that is not allow-listed (issue 11, SSRF).

A local TCP listener stands in for an internal host; every hostile query and update below must be
refused and the listener must see no connection. The allow-listed case shows the listener is real."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyoxigraph import Store

from threatgraph.querylib import load_library
from threatgraph.server import Running, ServerConfig, start, write_dataset
from threatgraph.server_guard import Refused, allowed, check_remote_access, deny_network_sockets, parse_tree
from threatgraph.terms import PREFIXES

# A private opener: SPARQLWrapper installs a global urllib opener (with a digest-auth handler whose
# retry count, once past 5, turns every later 401 into an HTTPError without a body), and other test
# files run before these.
_OPENER = urllib.request.build_opener()

REPO = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token"


def http(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def q(url: str, query: str) -> tuple[int, dict[str, str], bytes]:
    return http(f"{url}/query?{urllib.parse.urlencode({'query': query})}", headers={"Accept": "application/json"})


class Listener:
    """A TCP socket on loopback that counts the connections it receives (and answers nothing useful)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sparql"

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    store = Store()
    store.update("INSERT DATA { GRAPH <urn:x:g> { <urn:x:a> <urn:x:p> 'service' } }")
    return write_dataset(store, str(tmp_path_factory.mktemp("ds")))


@pytest.fixture(scope="module")
def server(tiny_dataset: str) -> Iterator[Running]:
    """Read-write (token) server whose allow-lists name only hosts that are not the listener."""
    cfg = ServerConfig(
        port=0, time_limit=5.0, workers=2, update_token=TOKEN,
        allow_service=("http://sparql.example.org/q",), allow_load=("http://data.example.org/",),
    )
    r = start(cfg, tiny_dataset)
    yield r
    r.stop()


def hostile_queries(target: str) -> dict[str, str]:
    host_path = target.removeprefix("http://")
    return {
        "comment ended by CR": f"SELECT * WHERE {{ # note\rSERVICE <{target}> {{ ?s ?p ?o }} }}",
        "escaped # in a local name": f"PREFIX ex: <urn:x:> SELECT * WHERE {{ ?s ex:a\\#b ?o SERVICE <{target}> {{ ?s ?p ?o }} }}",
        "codepoint-escaped keyword": f"SELECT * WHERE {{ \\u0053ERVICE <{target}> {{ ?s ?p ?o }} }}",
        "codepoint-escaped quote": f"SELECT * WHERE {{ BIND('\\u0027' AS ?x) SERVICE <{target}> {{ ?s ?p ?o }} BIND(''' ''' AS ?y) }}",
        "codepoint-escaped slashes": f"SELECT * WHERE {{ SERVICE <http:\\u002f\\u002f{host_path}> {{ ?s ?p ?o }} }}",
        "lower case": f"select * where {{ service <{target}> {{ ?s ?p ?o }} }}",
        "mixed case SILENT": f"SELECT * WHERE {{ SeRvIcE SiLeNt <{target}> {{ ?s ?p ?o }} }}",
        "variable target": f"SELECT * WHERE {{ BIND(<{target}> AS ?e) SERVICE ?e {{ ?s ?p ?o }} }}",
        "nested sub-query": f"SELECT * WHERE {{ {{ SELECT * WHERE {{ FILTER NOT EXISTS {{ OPTIONAL {{ SERVICE <{target}> {{ ?s ?p ?o }} }} }} }} }} }}",
        "prefixed name": f"PREFIX x: <{target}/> SELECT * WHERE {{ SERVICE x:q {{ ?s ?p ?o }} }}",
        "user info": f"SELECT * WHERE {{ SERVICE <http://sparql.example.org@{host_path}> {{ ?s ?p ?o }} }}",
        "allowed host as a name prefix": "SELECT * WHERE { SERVICE <http://sparql.example.org.127.0.0.1.nip.io/q> { ?s ?p ?o } }",
        "dot segments": "SELECT * WHERE { SERVICE <http://sparql.example.org/q/../admin> { ?s ?p ?o } }",
        "file": "SELECT * WHERE { SERVICE <file:///etc/passwd> { ?s ?p ?o } }",
    }


def hostile_updates(target: str) -> dict[str, str]:
    return {
        "LOAD": f"LOAD <{target}>",
        "LOAD SILENT INTO GRAPH": f"load silent <{target}> into graph <urn:x:g2>",
        "LOAD after a string naming load": f"INSERT DATA {{ <urn:a> <urn:b> 'load' }} ; LOAD <{target}>",
        "LOAD after a comment ended by CR": f"INSERT DATA {{ <urn:a> <urn:b> 1 }} # x\rLOAD <{target}>",
        "SERVICE in an update": f"INSERT {{ ?s ?p ?o }} WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}",
        "LOAD with BASE": "BASE <file:///etc/> LOAD <passwd>",
        "LOAD file": "LOAD <file:///etc/passwd> INTO GRAPH <urn:x:g3>",
    }


@pytest.mark.parametrize("name", list(hostile_queries("http://h/x")))
def test_hostile_service_is_refused_and_never_called(server: Running, listener: Listener, name: str) -> None:
    before = listener.connections
    status, _, body = q(server.url, hostile_queries(listener.url)[name])
    assert status in (400, 403), (status, body)
    assert b"SERVICE" in body or b"codepoint" in body or b"carriage return" in body
    assert not body.startswith(b"b'") and b"Traceback" not in body
    time.sleep(0.05)
    assert listener.connections == before


@pytest.mark.parametrize("name", list(hostile_updates("http://h/x")))
def test_hostile_load_is_refused_and_never_called(server: Running, listener: Listener, name: str) -> None:
    before = listener.connections
    auth = {"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"}
    status, _, body = http(server.url + "/update", hostile_updates(listener.url)[name].encode(), auth)
    assert status in (400, 403), (status, body)
    time.sleep(0.05)
    assert listener.connections == before
    assert q(server.url, "ASK { <urn:a> <urn:b> ?o }")[2].endswith(b"false}")  # nothing of it was applied


def test_default_read_only_server_refuses_service(tiny_dataset: str, listener: Listener) -> None:
    r = start(ServerConfig(port=0, time_limit=5.0), tiny_dataset)
    try:
        before = listener.connections
        for text in hostile_queries(listener.url).values():
            assert q(r.url, text)[0] in (400, 403)
        assert q(r.url, f"SELECT * WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}")[0] == 403
        assert listener.connections == before
        # words in strings and comments are no SERVICE call
        status, _, body = q(r.url, "SELECT ?o WHERE { ?s ?p ?o FILTER(?o = 'service') } # SERVICE <http://10.0.0.1/>")
        assert status == 200 and b'"service"' in body
    finally:
        r.stop()


def test_allow_listed_service_is_called(tiny_dataset: str, listener: Listener) -> None:
    """The positive case: an allow-listed SERVICE does reach the listener (which then fails it)."""
    r = start(ServerConfig(port=0, time_limit=5.0, allow_service=(listener.url,)), tiny_dataset)
    try:
        before = listener.connections
        status, _, body = q(r.url, f"SELECT * WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}")
        assert status == 500 and b"query failed" in body  # the listener closes without an answer
        assert listener.connections == before + 1
        other = f"http://127.0.0.1:{listener.port}/admin"  # same host, path outside the allowed one
        assert q(r.url, f"SELECT * WHERE {{ SERVICE <{other}> {{ ?s ?p ?o }} }}")[0] == 403
        assert listener.connections == before + 1
    finally:
        r.stop()


def test_allow_listed_load_is_applied(tiny_dataset: str) -> None:
    """LOAD from an allow-listed http server that serves Turtle works; the same from another path does not."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Turtle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<urn:x:loaded> <urn:x:p> 1 ."
            self.send_response(200)
            self.send_header("Content-Type", "text/turtle")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    data = HTTPServer(("127.0.0.1", 0), Turtle)
    threading.Thread(target=data.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{data.server_address[1]}"
    r = start(ServerConfig(port=0, update_token=TOKEN, allow_load=(base + "/data/",)), tiny_dataset)
    try:
        auth = {"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"}
        assert http(r.url + "/update", f"LOAD <{base}/secret> INTO GRAPH <urn:x:l>".encode(), auth)[0] == 403
        status, _, body = http(r.url + "/update", f"LOAD <{base}/data/a.ttl> INTO GRAPH <urn:x:l>".encode(), auth)
        assert status == 204, body
        assert q(r.url, "ASK { GRAPH <urn:x:l> { <urn:x:loaded> ?p ?o } }")[2].endswith(b"true}")
    finally:
        r.stop()
        data.shutdown()
        data.server_close()


def test_every_named_query_is_accepted_and_parsed() -> None:
    library = load_library()
    assert len(library) == len(list((REPO / "queries").glob("*.rq"))) >= 32
    for name, nq in library.items():
        assert check_remote_access(nq.query, allow_service=(), allow_load=(), update=False, default_prefixes=PREFIXES) == nq.query
        parse_tree(nq.query, update=False)  # the checker's grammar reads each one (raises Refused if not)
        text = nq.query + "\n# mentions SERVICE"  # forces the parsed path
        assert check_remote_access(text, allow_service=(), allow_load=(), update=False, default_prefixes=PREFIXES) == text, name


def test_unparseable_text_naming_service_is_refused_with_400() -> None:
    text = "SELECT * WHERE { ?s ?p ?o FILTER("
    assert check_remote_access(text, allow_service=(), allow_load=(), update=False) == text  # no keyword: Oxigraph decides
    with pytest.raises(Refused) as err:
        check_remote_access("SELECT * WHERE { ?s ?p ?o FILTER( # service", allow_service=(), allow_load=(), update=False)
    assert err.value.status == 400 and "could not be checked" in err.value.message and "line 1" in err.value.message


def test_allow_list_matching() -> None:
    allow = ["https://query.wikidata.org/sparql", "http://data.example.org/"]
    assert allowed("https://query.wikidata.org/sparql", allow)
    assert allowed("https://QUERY.wikidata.org:443/sparql?x=1", allow)
    assert allowed("http://data.example.org/a/b.ttl", allow)
    for iri in [
        "https://query.wikidata.org/sparqlx",          # path prefix without a segment boundary
        "http://query.wikidata.org/sparql",            # other scheme
        "https://query.wikidata.org:8443/sparql",      # other port
        "http://data.example.org.evil.com/",           # name prefix
        "http://data.example.org@10.0.0.1/",           # user info
        "http://data.example.org/%2e%2e/x",            # encoded dot segment
        "http://data.example.org\\@10.0.0.1/",         # backslash
        "file:///etc/passwd",
        "ftp://data.example.org/",
        "data.example.org/a",
    ]:
        assert not allowed(iri, allow), iri


def test_network_sockets_are_denied_to_a_sandboxed_process(listener: Listener) -> None:
    """The second wall: a process under deny_network_sockets() cannot reach the listener even when Oxigraph is
    asked to call it directly (no parsed check in between)."""
    before = listener.connections
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        ok = deny_network_sockets()
        outcome = b"unset"
        if ok:
            try:
                list(Store().query(f"SELECT * WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}"))  # type: ignore[arg-type]
                outcome = b"called"
            except OSError:
                outcome = b"refused"
        os.write(w, outcome)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    outcome = os.read(r, 100)
    os.close(r)
    if outcome == b"unset":
        pytest.skip("seccomp filters are not available here")
    assert outcome == b"refused"
    time.sleep(0.05)
    assert listener.connections == before
    # the test process itself is unaffected
    with socket.create_connection(("127.0.0.1", listener.port), timeout=2):
        pass


def test_named_queries_run_on_the_server(server: Running) -> None:
    status, _, body = http(f"{server.url}/queries/releases", headers={"Accept": "application/json"})
    assert status == 200, body


@pytest.mark.parametrize("entry", ["file:///etc/", "10.0.0.1", "http://user@example.org/", "gopher://example.org/"])
def test_bad_allow_list_entries_are_refused_at_start(entry: str) -> None:
    from threatgraph.errors import InputError

    with pytest.raises(InputError, match="--allow-service"):
        ServerConfig(allow_service=(entry,)).validate()
    ServerConfig(allow_service=("https://query.wikidata.org/sparql",)).validate()
