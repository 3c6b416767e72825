"""``threatgraph serve`` under hostile HTTP (issue 11): failed writes and time-outs lose nothing, a foreign or
malformed Host is refused (DNS rebinding), a refused request's body is never read as a second request,
messages are text that says what to do."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from pyoxigraph import Store

from threatgraph.errors import StoreError
from threatgraph.server import Running, ServerConfig, start, write_dataset
from threatgraph.store.remote import RemoteStore

# A private opener: SPARQLWrapper installs a global urllib opener (with a digest-auth handler whose
# retry count, once past 5, turns every later 401 into an HTTPError without a body), and other test
# files run before these.
_OPENER = urllib.request.build_opener()

TOKEN = "s3cret-token"
BOMB = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"
UPDATE = {"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"}


def http(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def q(url: str, query: str) -> tuple[int, bytes]:
    status, _, body = http(f"{url}/query?{urllib.parse.urlencode({'query': query})}", headers={"Accept": "application/json"})
    return status, body


def raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes on one connection, read until the server closes it (or the time-out), return all answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
        except TimeoutError:
            pass
    return b"".join(chunks)


class MediaServer:
    """An http server that answers every GET with the media type named by the path (/text/html ...)."""

    def __init__(self) -> None:
        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ctype = self.path.strip("/") or "text/html"
                body = b"<urn:x:loaded> <urn:x:p> 1 ." if ctype == "text/turtle" else b"<html>not rdf</html>"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    store = Store()
    store.update("INSERT DATA { " + " ".join(f"<urn:x:s{i}> <urn:x:p> {i} ." for i in range(400)) + " }")
    return write_dataset(store, str(tmp_path_factory.mktemp("ds")))


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    m = MediaServer()
    yield m
    m.close()


@pytest.fixture(scope="module")
def srv(dataset: str, media: MediaServer) -> Iterator[Running]:
    r = start(ServerConfig(port=0, time_limit=1.0, workers=2, update_token=TOKEN, allow_load=(media.base + "/",),
                           max_body=100_000), dataset)
    yield r
    r.stop()


# -- 2. a failed write or a time-out loses nothing ---------------------------------------------------------
@pytest.mark.parametrize(("ctype", "status", "needle"), [
    ("text/html", 502, b"media type text/html is not supported"),
    ("application/octet-stream", 502, b"not supported"),
])
def test_failed_load_keeps_the_dataset_process(srv: Running, media: MediaServer, ctype: str, status: int, needle: bytes) -> None:
    got, _, body = http(srv.url + "/update", f"LOAD <{media.base}/{ctype}> INTO GRAPH <urn:x:l>".encode(), UPDATE)
    assert got == status and needle in body, body
    assert b"changed nothing" in body and not body.startswith(b"b'")
    # the dataset process still applies writes and queries see them
    assert http(srv.url + "/update", b"INSERT DATA { <urn:x:after> <urn:x:p> 1 }", UPDATE)[0] == 204
    assert q(srv.url, "ASK { <urn:x:after> <urn:x:p> 1 }")[1].endswith(b"true}")
    assert q(srv.url, "ASK { GRAPH <urn:x:l> { ?s ?p ?o } }")[1].endswith(b"false}")


def test_good_load_after_a_failed_one(srv: Running, media: MediaServer) -> None:
    assert http(srv.url + "/update", f"LOAD <{media.base}/text/html>".encode(), UPDATE)[0] == 502
    status, _, body = http(srv.url + "/update", f"LOAD <{media.base}/text/turtle> INTO GRAPH <urn:x:t>".encode(), UPDATE)
    assert status == 204, body
    assert q(srv.url, "ASK { GRAPH <urn:x:t> { <urn:x:loaded> ?p ?o } }")[1].endswith(b"true}")


def _live_workers(r: Running) -> list[int]:
    pool = r.server.pool
    ws = [pool._idle.get(timeout=5) for _ in range(pool.cfg.workers)]
    try:
        pids = []
        for w in ws:
            os.kill(w.pid, 0)  # raises if the process is gone
            assert not w.conn.closed
            pids.append(w.pid)
        return pids
    finally:
        for w in ws:
            pool._idle.put(w)


def test_time_outs_do_not_lose_workers(srv: Running) -> None:
    before = _live_workers(srv)
    assert len(set(before)) == 2
    for _ in range(2):
        assert q(srv.url, BOMB)[0] == 503
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(q(srv.url, BOMB)[0])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [503] * 4
    after = _live_workers(srv)
    assert len(set(after)) == 2 and not set(after) & set(before)  # the killed ones were replaced, none lost
    for pid in before:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # both workers answer at once: two half-second queries finish in well under two seconds
    slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f } "
    t0 = time.monotonic()
    out: list[int] = []
    ts = [threading.Thread(target=lambda: out.append(q(srv.url, slow)[0])) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert out == [200, 200] and time.monotonic() - t0 < 2.5


def test_a_dead_idle_worker_is_replaced_before_use(srv: Running) -> None:
    pids = _live_workers(srv)
    for pid in pids:
        os.kill(pid, 9)
    time.sleep(0.1)
    for _ in range(3):
        assert q(srv.url, "ASK { <urn:x:s1> ?p ?o }") == (200, b'{"head": {}, "boolean": true}')
    assert not set(_live_workers(srv)) & set(pids)


# -- 3. Host header ---------------------------------------------------------------------------------------
def _port(r: Running) -> int:
    return int(r.server.server_address[1])


@pytest.mark.parametrize(("host", "status"), [
    ("127.0.0.1:{port}", b"200"),
    ("localhost:{port}", b"200"),
    ("LOCALHOST:{port}", b"200"),
    ("attacker.example:{port}", b"403"),
    ("attacker.example", b"403"),
    ("127.0.0.1:1", b"403"),
    ("127.0.0.1:99999", b"400"),
    ("a b", b"400"),
    ("[::1", b"400"),
    ("evil.example/x", b"400"),
    ("", b"400"),
])
def test_host_header(srv: Running, host: str, status: bytes) -> None:
    port = _port(srv)
    answer = raw(port, f"GET /query?query=ASK%7B%7D HTTP/1.1\r\nHost: {host.format(port=port)}\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:300]
    assert b"Traceback" not in answer
    if status == b"403":
        assert b"--allowed-host" in answer and b"DNS rebinding" in answer


def test_missing_and_repeated_host(srv: Running) -> None:
    port = _port(srv)
    assert raw(port, b"GET /query?query=ASK%7B%7D HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(port, b"GET /query?query=ASK%7B%7D HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")
    two = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode()
    assert raw(port, two).startswith(b"HTTP/1.1 400")


def test_allowed_host_option(dataset: str) -> None:
    r = start(ServerConfig(port=0, allowed_hosts=("graph.example.org", "proxy.example:8443")), dataset)
    try:
        port = _port(r)

        def status(host: str) -> bytes:
            req = f"GET /query?query=ASK%7B%7D HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            return raw(port, req.encode())[9:12]

        assert status("graph.example.org") == b"200"
        assert status("graph.example.org:443") == b"200"
        assert status("proxy.example:8443") == b"200"
        assert status("proxy.example:8444") == b"403"
        assert status("other.example.org") == b"403"
        assert status(f"127.0.0.1:{port}") == b"200"
    finally:
        r.stop()


def test_bad_allowed_host_is_an_input_error() -> None:
    from threatgraph.errors import InputError

    with pytest.raises(InputError, match="--allowed-host"):
        ServerConfig(allowed_hosts=("http://x/",)).validate()


# -- 4. keep-alive desync --------------------------------------------------------------------------------
def test_refused_body_is_not_read_as_a_second_request(srv: Running) -> None:
    port = _port(srv)
    smuggled = f"GET /query?query=ASK%7B%7D HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    for first in [
        # a write without the token is refused before the body is read
        f"POST /update HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/sparql-update\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n".encode(),
        # an unknown path, a wrong method, a wrong media type
        f"POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode(),
        f"PATCH /store HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode(),
        f"PUT /store?graph=urn:x:g HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode(),
        # a foreign Host
        f"POST /query HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/sparql-query\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n".encode(),
        # chunked (refused): the connection must close
        f"POST /query HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n\r\n"
        f"{len(smuggled):x}\r\n".encode(),
    ]:
        answer = raw(port, first + smuggled, timeout=5)
        assert answer.count(b"HTTP/1.1 ") == 1, answer[:600]  # one answer: the body was not a request
        assert not answer.startswith(b"HTTP/1.1 2")


def test_keep_alive_still_works_for_good_requests(srv: Running) -> None:
    port = _port(srv)
    one = f"GET /query?query=ASK%7B%7D HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    last = f"GET /query?query=ASK%7B%7D HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    answer = raw(port, one + one + last)
    assert answer.count(b"HTTP/1.1 200") == 3


def test_idle_connection_is_closed_after_the_timeout(dataset: str) -> None:
    r = start(ServerConfig(port=0, connection_timeout=0.5), dataset)
    try:
        with socket.create_connection(("127.0.0.1", _port(r)), timeout=10) as s:
            t0 = time.monotonic()
            s.sendall(b"GET /query?query=ASK%7B%7D HTTP/1.1\r\n")  # never finished
            assert s.recv(100) == b""  # closed by the server
            assert time.monotonic() - t0 < 5
    finally:
        r.stop()


# -- 5. messages --------------------------------------------------------------------------------------
def test_messages_say_what_to_do(srv: Running, dataset: str) -> None:
    status, _, body = http(srv.url + "/update", b"INSERT DATA { <urn:a> <urn:b> 1 }", {"Content-Type": "application/sparql-update"})
    assert status == 401 and b"Authorization: Bearer TOKEN" in body and b"--token" in body
    status, _, body = http(srv.url + "/update", b"INSERT DATA { <urn:a> <urn:b> 1 }", {**UPDATE, "Authorization": "Bearer nope"})
    assert status == 403 and b"--token" in body
    ro = start(ServerConfig(port=0), dataset)
    try:
        status, _, body = http(ro.url + "/update", b"INSERT DATA { <urn:a> <urn:b> 1 }", UPDATE)
        assert status == 403 and b"--update-token" in body
        # the client shows the server's text, not a bytes repr
        with pytest.raises(StoreError) as err:
            RemoteStore(ro.url + "/query", token=TOKEN).update("INSERT DATA { <urn:a> <urn:b> 1 }")
        text = str(err.value)
        assert "--update-token" in text and "b'" not in text and "\\n" not in text
    finally:
        ro.stop()
    with pytest.raises(StoreError) as err:
        RemoteStore(srv.url + "/query", token="wrong").update("INSERT DATA { <urn:a> <urn:b> 1 }")
    assert "wrong update token" in str(err.value) and "b'" not in str(err.value)
    with pytest.raises(StoreError) as err:
        RemoteStore(srv.url + "/query").select("SELECT * WHERE { SERVICE <http://10.0.0.1/> { ?s ?p ?o } }")
    assert "not allowed" in str(err.value) and "b'" not in str(err.value)


# -- 6. fairness ------------------------------------------------------------------------------------------
def test_fair_slots_shares_and_reserve() -> None:
    from threatgraph.server import FairSlots

    slots = FairSlots(base=2, reserve=1)
    assert slots.acquire("a", 0.1) and slots.acquire("a", 0.1)  # alone, a may use every base slot
    assert not slots.acquire("a", 0.1)  # but never the reserve
    assert slots.acquire("b", 0.1)  # b holds none: the reserve slot
    assert not slots.acquire("c", 0.1)  # reserve used up
    slots.release("a")
    # a base slot is free; b and a both want it: the client holding fewer goes first, and the share is 1 each
    assert not slots.acquire("a", 0.1)  # a holds 1 = its share while b is active
    slots.release("b")
    assert slots.busy == 1
    assert slots.acquire("c", 0.1) and slots.acquire("b", 0.1)
    assert slots.busy == 3


def _latencies(port: int, query: str, source: str, seconds: float, out: list[float], stop: threading.Event) -> None:
    import http.client

    path = "/query?" + urllib.parse.urlencode({"query": query})
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
        t0 = time.monotonic()
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            conn.getresponse().read()
        finally:
            conn.close()
        out.append(time.monotonic() - t0)


@pytest.mark.slow
@pytest.mark.parametrize("reserve", [2, 0])
def test_other_clients_stay_fast_while_two_clients_send_bombs(dataset: str, reserve: int) -> None:
    """Two clients (127.0.0.2 and .3) each keep three cartesian-product bombs running; a third client's
    cheap queries keep a p95 under 1 s with the reserve workers, and do not without them (the control)."""
    r = start(ServerConfig(port=0, time_limit=3.0, workers=2, reserve_workers=reserve), dataset)
    stop = threading.Event()
    try:
        port = _port(r)
        bombs: list[float] = []
        threads = [
            threading.Thread(target=_latencies, args=(port, BOMB, src, 8.0, bombs, stop), daemon=True)
            for src in ("127.0.0.2", "127.0.0.3") for _ in range(3)
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the bombs hold every base worker
        fast: list[float] = []
        _latencies(port, "ASK { <urn:x:s1> ?p ?o }", "127.0.0.4", 6.0, fast, stop)
        stop.set()
        for t in threads:
            t.join(30)
        fast.sort()
        p95 = fast[int(0.95 * (len(fast) - 1))]
        print(f"reserve={reserve}: {len(fast)} cheap queries, p50 {fast[len(fast) // 2]:.3f} s, p95 {p95:.3f} s")
        if reserve:
            assert p95 < 1.0, (p95, len(fast))
            assert len(fast) > 20
        else:
            assert p95 > 1.0, (p95, len(fast))  # the control: without a reserve the cheap client waits
        assert bombs  # the bombs were answered (503 at the time limit), not left hanging
    finally:
        stop.set()
        r.stop()


# -- 6. connections and buffering ----------------------------------------------------------------------
def test_connection_caps(dataset: str) -> None:
    r = start(ServerConfig(port=0, max_connections_per_client=3, max_connections=5), dataset)
    socks: list[socket.socket] = []
    try:
        port = _port(r)
        for _ in range(3):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.2)
        answer = raw(port, b"")  # the 4th connection from this address
        assert answer.startswith(b"HTTP/1.1 503") and b"too many open connections" in answer
        other = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
        socks.append(other)  # another address still gets in
        other.sendall(f"GET /query?query=ASK%7B%7D HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert other.recv(100).startswith(b"HTTP/1.1 200")
        socks.pop(0).close()
        time.sleep(0.3)
        ok = f"GET /query?query=ASK%7B%7D HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
        assert raw(port, ok).startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()
        r.stop()
    assert r.server._conns_total == 0


@pytest.fixture(scope="module")
def big_dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    store = Store()
    store.update("INSERT DATA { GRAPH <urn:x:big> { " + " ".join(f"<urn:x:s{i}> <urn:x:p> 'value {i:08d} padding padding' ." for i in range(40_000)) + " } }")
    return write_dataset(store, str(tmp_path_factory.mktemp("big")))


def _stuck_reader(port: int) -> socket.socket:
    """A client that asks for the whole 40,000-triple graph and reads nothing."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /store?graph=urn:x:big HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/n-triples\r\n\r\n".encode())
    return s


def test_slow_readers_cannot_pin_unbounded_buffers(big_dataset: str) -> None:
    r = start(ServerConfig(port=0, max_rows=100_000, max_buffered_mb=1, connection_timeout=5), big_dataset)
    try:
        port = _port(r)
        stuck = _stuck_reader(port)
        deadline = time.monotonic() + 10
        while r.server._buffered == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.server._buffered > 1024 * 1024  # the first large response is being sent
        status, _, body = http(f"{r.url}/store?graph=urn:x:big", headers={"Accept": "application/n-triples"})
        assert status == 503 and b"slow clients" in body
        assert q(r.url, "ASK { GRAPH <urn:x:big> { ?s ?p ?o } }") == (200, b'{"head": {}, "boolean": true}')  # small ones pass
        stuck.close()
        deadline = time.monotonic() + 10
        while r.server._buffered and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, body = http(f"{r.url}/store?graph=urn:x:big", headers={"Accept": "application/n-triples"})
        assert status == 200 and body.count(b"\n") == 40_000
    finally:
        r.stop()


def test_a_trickling_reader_is_cut_off(big_dataset: str) -> None:
    r = start(ServerConfig(port=0, connection_timeout=0.5, min_send_rate=1_000_000), big_dataset)
    try:
        s = _stuck_reader(_port(r))
        got = 0
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 30:
                c = s.recv(2048)  # 2 KB every 0.1 s: progress, but far below the minimum rate
                if not c:
                    break
                got += len(c)
                time.sleep(0.1)
        except ConnectionResetError:
            pass
        s.close()
        elapsed = time.monotonic() - t0
        assert 0 < got < 2_000_000 and elapsed < 15, (got, elapsed)  # reset at the deadline (3.5 s for 3 MB)
        assert r.server._conns_total == 0
    finally:
        r.stop()


# -- 2. the dataset process is restarted, with the writes since the start ----------------------------------
def test_a_dead_dataset_process_is_restarted_with_earlier_writes(dataset: str) -> None:
    import signal

    r = start(ServerConfig(port=0, update_token=TOKEN), dataset)
    try:
        assert http(r.url + "/update", b"INSERT DATA { <urn:x:w1> <urn:x:p> 1 }", UPDATE)[0] == 204
        os.kill(r.server.pool._zygote.pid, signal.SIGKILL)
        r.server.pool._zygote.wait(5)
        assert http(r.url + "/update", b"INSERT DATA { <urn:x:w2> <urn:x:p> 2 }", UPDATE)[0] == 204
        assert r.server.pool.restarts == 1
        assert q(r.url, "SELECT (COUNT(*) AS ?n) { ?s <urn:x:p> ?o }")[1].count(b'"402"') == 1  # 400 + both writes
        os.kill(r.server.pool._zygote.pid, signal.SIGKILL)
        r.server.pool._zygote.wait(5)
        # a query that needs a fresh worker (after the write) restarts it too
        assert q(r.url, "ASK { <urn:x:w1> <urn:x:p> 1 }")[1].endswith(b"true}")
    finally:
        r.stop()


def test_a_write_past_the_write_time_limit_is_abandoned(dataset: str) -> None:
    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(4)
            self.send_response(200)
            self.send_header("Content-Type", "text/turtle")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    slow = HTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{slow.server_address[1]}/"
    r = start(ServerConfig(port=0, update_token=TOKEN, allow_load=(base,), write_time_limit=1.0), dataset)
    try:
        assert http(r.url + "/update", b"INSERT DATA { <urn:x:w1> <urn:x:p> 1 }", UPDATE)[0] == 204
        t0 = time.monotonic()
        status, _, body = http(r.url + "/update", f"INSERT DATA {{ <urn:x:w3> <urn:x:p> 3 }} ; LOAD <{base}x>".encode(), UPDATE)
        assert status == 503 and b"abandoned; nothing changed" in body and b"--write-time-limit" in body
        assert time.monotonic() - t0 < 3.5
        assert q(r.url, "ASK { <urn:x:w1> <urn:x:p> 1 }")[1].endswith(b"true}")  # the earlier write survived
        assert q(r.url, "ASK { <urn:x:w3> <urn:x:p> 3 }")[1].endswith(b"false}")
        assert http(r.url + "/update", b"INSERT DATA { <urn:x:w4> <urn:x:p> 4 }", UPDATE)[0] == 204
    finally:
        r.stop()
        slow.shutdown()
        slow.server_close()


# -- analyze --endpoint against our own server --------------------------------------------------------------
def test_remote_store_splits_graphs_over_the_body_limit(dataset: str) -> None:
    r = start(ServerConfig(port=0, update_token=TOKEN, max_body=20_000), dataset)
    try:
        rs = RemoteStore(r.url + "/query", token=TOKEN)
        nt = "".join(f"<urn:x:big{i}> <urn:x:p> \"value number {i}\" .\n" for i in range(2000))  # ~100 KB
        rs.load(nt, "application/n-triples", "urn:x:split")
        assert q(r.url, "SELECT (COUNT(*) AS ?n) { GRAPH <urn:x:split> { ?s ?p ?o } }")[1].count(b'"2000"') == 1
        # a replacement too large for one PUT: parts into a scratch graph, then one MOVE over the target
        rs.replace_graph("urn:x:split", nt.replace("value", "new value"), "application/n-triples")
        status, body = q(r.url, "SELECT (COUNT(*) AS ?n) { GRAPH <urn:x:split> { ?s ?p ?o FILTER(STRSTARTS(?o, 'new')) } }")
        assert status == 200 and body.count(b'"2000"') == 1
        assert "urn:x:split" in rs.graph_names() and not any(g.startswith("urn:threatgraph:upload:") for g in rs.graph_names())
        assert q(r.url, "SELECT (COUNT(*) AS ?n) { GRAPH <urn:x:split> { ?s ?p ?o } }")[1].count(b'"2000"') == 1
        with_bnodes = "".join(f"_:b{i} <urn:x:p> \"value number {i}\" .\n" for i in range(2000))
        with pytest.raises(StoreError, match=r"413.*--max-body"):
            rs.load(with_bnodes, "application/n-triples", "urn:x:bn")  # never split: blank nodes would come apart
    finally:
        r.stop()


@pytest.mark.slow
def test_analyze_endpoint_on_our_server_with_default_limits(tmp_path: Path) -> None:
    """`analyze --endpoint` against `serve --update-token` (default 1 MB body limit) gives the local result."""
    import subprocess
    import sys

    model = Path(__file__).resolve().parent.parent / "data" / "examples" / "rag-assistant.ttl"
    env = {**os.environ, "THREATGRAPH_SERVER_LOG": ""}
    r = start(ServerConfig(port=0, update_token=TOKEN, time_limit=30.0), "")
    try:
        cmd = [sys.executable, "-m", "threatgraph", "analyze", str(model), "--format", "json"]
        remote = subprocess.run([*cmd, "--endpoint", r.url + "/query", "--token", TOKEN], capture_output=True, env=env, timeout=300)
        local = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    finally:
        r.stop()
    assert remote.returncode == local.returncode, remote.stderr.decode()
    assert remote.stdout == local.stdout and len(local.stdout) > 10_000
