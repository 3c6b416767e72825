"""``threatgraph serve``: a SPARQL 1.1 Protocol + Graph Store Protocol endpoint with limits, on the stdlib.

Process layout (how the limits are enforced)::

    HTTP threads (ThreadingHTTPServer) ──► worker pool ──► forked workers (one query at a time each)
                           │                                   ▲ fork
                           └──────── writes ──────────► zygote (holds the in-memory dataset, single-threaded)

* The *zygote* is a child process that loads the dataset into an in-memory pyoxigraph store and does
  nothing but fork workers and apply writes (so it is single-threaded whenever it forks).
* Each *worker* is a fork of the zygote: it shares the dataset copy-on-write and runs one query at a
  time. pyoxigraph cannot cancel a running query, so the time limit is enforced by **killing the
  worker** when its deadline passes and forking a fresh one (a few milliseconds). A worker also stops
  at the row limit while iterating results, and runs under an address-space limit (``RLIMIT_AS``), so
  a query that needs too much memory dies alone.
* Writes (SPARQL Update, Graph Store PUT/POST/DELETE; only with the update token) go to the zygote;
  workers forked before a write are retired and replaced, so every query sees every earlier write.
  Writes change the served in-memory dataset only (``--store`` is read at start, never written).
* ``SERVICE``/``LOAD`` targets are checked on the parsed request (:mod:`threatgraph.server_guard`), in the
  worker; without allow-lists the zygote and workers also run under a seccomp filter that denies them
  network sockets. Updates are checked in a worker before they reach the zygote.
* :class:`FairSlots` decides who gets a worker (fair shares per client address, reserve workers for
  clients holding none); the HTTP side checks ``Host`` (DNS rebinding), caps connections, drops or
  refuses unread bodies (no keep-alive desync), and sends answers under a deadline and a buffer budget.

Limits of this design: writes run one at a time in the zygote (``write_time_limit``; a zygote that
dies or is stopped is restarted and the writes are replayed); the limits bound CPU time and memory
per query, not the number of rows examined.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import os
import pickle
import queue
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from pyoxigraph import (
    BlankNode,
    Literal,
    NamedNode,
    Quad,
    QueryBoolean,
    QuerySolutions,
    QueryTriples,
    RdfFormat,
    Triple,
    parse,
    serialize,
)
from pyoxigraph import (
    Store as OxStore,
)

from threatgraph import linked
from threatgraph import server_guard as guard
from threatgraph.errors import InputError, ThreatgraphError
from threatgraph.querylib import NamedQuery, load_library, srj_term
from threatgraph.sparql import inline_values
from threatgraph.terms import PREFIXES, XSD

# -- media types -------------------------------------------------------------------------------------
RESULT_TYPES: dict[str, str] = {
    "application/sparql-results+json": "json",
    "application/json": "json",
    "application/sparql-results+xml": "xml",
    "application/xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
GRAPH_TYPES: dict[str, RdfFormat] = {
    "text/turtle": RdfFormat.TURTLE,
    "application/n-triples": RdfFormat.N_TRIPLES,
    "application/ld+json": RdfFormat.JSON_LD,
    "application/rdf+xml": RdfFormat.RDF_XML,
    "text/plain": RdfFormat.N_TRIPLES,
}
DATASET_TYPES: dict[str, RdfFormat] = {"application/n-quads": RdfFormat.N_QUADS, "application/trig": RdfFormat.TRIG}
WRITE_TYPES: dict[str, RdfFormat] = {**GRAPH_TYPES, **DATASET_TYPES}
_RESULT_MIME = {"json": "application/sparql-results+json", "xml": "application/sparql-results+xml", "csv": "text/csv", "tsv": "text/tab-separated-values"}
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class ServerConfig:
    """Settings of ``threatgraph serve`` (see ``threatgraph serve --help``)."""

    host: str = "127.0.0.1"
    port: int = 7879
    time_limit: float = 10.0
    """Seconds a query may run before its worker is killed (HTTP 503)."""
    max_rows: int = 100_000
    """Rows (or triples) a result may have (HTTP 422 beyond)."""
    max_body: int = 1_000_000
    """Bytes a request body or query may have (HTTP 413 beyond)."""
    workers: int = 2
    reserve_workers: int = 2
    """Extra workers, forked on demand, only for clients that hold none (see :class:`FairSlots`)."""
    memory_limit_mb: int = 1024
    """Extra address space a worker may allocate beyond the shared dataset."""
    update_token: str | None = None
    allow_load: tuple[str, ...] = ()
    """``http(s)`` endpoints that ``LOAD`` may read from: same scheme, host and port, path under the entry's
    (``file:`` and everything else are always refused; see :mod:`threatgraph.server_guard`)."""
    allow_service: tuple[str, ...] = ()
    """``http(s)`` endpoints that ``SERVICE`` may call (matched like ``allow_load``)."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS (``*`` for any); none by default."""
    union_default_graph: bool = True
    allowed_hosts: tuple[str, ...] = ()
    """Extra ``Host`` header values accepted (``NAME`` any port, ``NAME:PORT``, ``*`` any); besides these only
    the bound address, and ``localhost``/loopback when bound to loopback or all interfaces (DNS rebinding)."""
    max_connections: int = 256
    """Open connections the server holds at once (more are answered 503 and closed)."""
    max_connections_per_client: int = 64
    """Open connections one client (IP address) may hold."""
    max_buffered_mb: int = 512
    """Megabytes of large responses being sent at once (beyond it, a large answer is a 503)."""
    min_send_rate: int = 64 * 1024
    """Bytes per second a client must read a response at, after ``connection_timeout`` of grace."""
    write_time_limit: float = 60.0
    """Seconds a write (update, LOAD, graph upload) may take; past it the dataset process is restarted
    without it (HTTP 503, nothing changed)."""
    connection_timeout: float = 30.0
    """Seconds a connection may stay silent (idle keep-alive, slow request, slow reader) before it is closed."""

    def validate(self) -> None:
        """Raise InputError (exit 2) naming the option whose value cannot work."""
        for option, entries in (("--allow-service", self.allow_service), ("--allow-load", self.allow_load)):
            for entry in entries:
                try:
                    guard.check_allow_entry(entry)
                except ValueError as err:
                    raise InputError(f"{option}: {err}") from None
        for name in self.allowed_hosts:
            if name != "*" and parse_host(name) is None:
                raise InputError(f"--allowed-host: {name!r} is not a host name, NAME:PORT or '*'")


class HttpError(Exception):
    """An error answered with ``status`` and a plain-text message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# -- SERVICE / LOAD allow-lists (decided on the parsed request: see threatgraph.server_guard) -------------
def check_remote_access(text: str, cfg: ServerConfig, *, update: bool) -> str:
    """The text to run, or HttpError if it calls a ``SERVICE`` (or ``LOAD``s) that is not allow-listed.

    >>> check_remote_access("SELECT * { SERVICE <http://10.0.0.1/sparql> { ?s ?p ?o } }", ServerConfig(), update=False)
    Traceback (most recent call last):
    ...
    threatgraph.server.HttpError: SERVICE <http://10.0.0.1/sparql> is not allowed on this server (allowed: none; the operator can allow an endpoint with --allow-service)
    """
    try:
        return guard.check_remote_access(
            text, allow_service=cfg.allow_service, allow_load=cfg.allow_load, update=update, default_prefixes=PREFIXES
        )
    except guard.Refused as err:
        raise HttpError(err.status, err.message) from None


# -- result serializers (run in workers) --------------------------------------------------------------
def _nt(t: Any) -> str:
    return str(t)


def _xml_term(t: Any) -> str:
    if isinstance(t, NamedNode):
        return f"<uri>{xml_escape(t.value)}</uri>"
    if isinstance(t, BlankNode):
        return f"<bnode>{xml_escape(t.value)}</bnode>"
    if isinstance(t, Literal):
        if t.language:
            return f"<literal xml:lang={quoteattr(t.language)}>{xml_escape(t.value)}</literal>"
        if t.datatype.value != XSD.string:
            return f"<literal datatype={quoteattr(t.datatype.value)}>{xml_escape(t.value)}</literal>"
        return f"<literal>{xml_escape(t.value)}</literal>"
    return f"<literal>{xml_escape(str(t))}</literal>"


def _csv_cell(t: Any) -> str:
    if t is None:
        return ""
    v = ("_:" + t.value) if isinstance(t, BlankNode) else t.value
    if any(c in v for c in ',"\n\r'):
        return '"' + v.replace('"', '""') + '"'
    return str(v)


def serialize_solutions(names: list[str], rows: list[list[Any]], fmt: str) -> bytes:
    """SELECT results in SPARQL JSON, XML, CSV or TSV."""
    if fmt == "json":
        bindings = [{n: srj_term(t) for n, t in zip(names, row, strict=True) if t is not None} for row in rows]
        return json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}}).encode()
    if fmt == "xml":
        parts = ['<?xml version="1.0"?><sparql xmlns="http://www.w3.org/2005/sparql-results#"><head>']
        parts += [f"<variable name={quoteattr(n)}/>" for n in names]
        parts.append("</head><results>")
        for row in rows:
            parts.append("<result>")
            parts += [f"<binding name={quoteattr(n)}>{_xml_term(t)}</binding>" for n, t in zip(names, row, strict=True) if t is not None]
            parts.append("</result>")
        parts.append("</results></sparql>")
        return "".join(parts).encode()
    if fmt == "csv":
        lines = [",".join(names)] + [",".join(_csv_cell(t) for t in row) for row in rows]
        return ("\r\n".join(lines) + "\r\n").encode()
    lines = ["\t".join("?" + n for n in names)] + ["\t".join("" if t is None else _nt(t) for t in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def serialize_boolean(value: bool, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps({"head": {}, "boolean": value}).encode()
    if fmt == "xml":
        v = "true" if value else "false"
        return f'<?xml version="1.0"?><sparql xmlns="http://www.w3.org/2005/sparql-results#"><head/><boolean>{v}</boolean></sparql>'.encode()
    return (("true" if value else "false") + "\n").encode()


# -- worker (a fork of the zygote) --------------------------------------------------------------------
Response = tuple[int, str, bytes]


def _run_query(store: OxStore, req: dict[str, Any]) -> Response:
    kwargs: dict[str, Any] = {"prefixes": PREFIXES}
    if req.get("default_graphs"):
        kwargs["default_graph"] = [NamedNode(g) for g in req["default_graphs"]]
    elif req.get("union", True):
        kwargs["use_default_graph_as_union"] = True
    if req.get("named_graphs"):
        kwargs["named_graphs"] = [NamedNode(g) for g in req["named_graphs"]]
    max_rows: int = req["max_rows"]
    try:
        text = guard.check_remote_access(
            req["query"], allow_service=req["allow_service"], allow_load=(), update=False, default_prefixes=PREFIXES
        )
    except guard.Refused as err:
        return err.status, "text/plain", (err.message + "\n").encode()
    try:
        res = store.query(text, **kwargs)
        if isinstance(res, QueryBoolean):
            fmt = req["result_format"]
            return 200, _RESULT_MIME[fmt], serialize_boolean(bool(res), fmt)
        if isinstance(res, QuerySolutions):
            names = [v.value for v in res.variables]
            rows: list[list[Any]] = []
            for sol in res:
                if len(rows) >= max_rows:
                    return 422, "text/plain", _too_many(max_rows)
                rows.append([sol[i] for i in range(len(names))])
            fmt = req["result_format"]
            return 200, _RESULT_MIME[fmt], serialize_solutions(names, rows, fmt)
        if isinstance(res, QueryTriples):
            triples: list[Triple] = []
            for t in res:
                if len(triples) >= max_rows:
                    return 422, "text/plain", _too_many(max_rows)
                triples.append(t)
            mime = req["graph_mime"]
            return 200, mime, serialize(triples, format=GRAPH_TYPES[mime], prefixes=_prefixes_for(mime)) or b""
    except SyntaxError as err:
        return 400, "text/plain", f"invalid SPARQL query: {err}\n".encode()
    except UnicodeError as err:
        return 400, "text/plain", f"the query is not valid Unicode text: {err}\n".encode()
    except (OSError, RuntimeError, ValueError, TypeError) as err:  # SERVICE failures, evaluation errors
        return 500, "text/plain", f"query failed: {err}\n".encode()
    return 500, "text/plain", b"unexpected query result\n"


def _prefixes_for(mime: str) -> dict[str, str] | None:
    return PREFIXES if mime in ("text/turtle", "application/trig", "application/rdf+xml") else None


def _too_many(n: int) -> bytes:
    return (
        f"the result has more than {n} rows, this server's limit; add LIMIT or narrow the query "
        "(the operator can raise --max-rows)\n"
    ).encode()


def _dump(store: OxStore, req: dict[str, Any]) -> Response:
    graph = req.get("graph")
    mime = req["mime"]
    if graph is None:
        fmt = DATASET_TYPES[mime]
        return 200, mime, store.dump(format=fmt, prefixes=_prefixes_for(mime)) or b""
    if graph == "":
        from pyoxigraph import DefaultGraph

        g: Any = DefaultGraph()
    else:
        g = NamedNode(graph)
        if not store.contains_named_graph(g):
            return 404, "text/plain", f"no graph <{graph}> in this dataset\n".encode()
    triples = [q.triple for q in store.quads_for_pattern(None, None, None, g)]
    if len(triples) > req["max_rows"]:
        return 422, "text/plain", _too_many(req["max_rows"])
    return 200, mime, serialize(triples, format=GRAPH_TYPES[mime], prefixes=_prefixes_for(mime)) or b""


def _limit_memory(extra_mb: int) -> None:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError):  # no /proc or no RLIMIT_AS: run without a memory cap
        pass


def _worker_loop(conn: Connection, store: OxStore, memory_limit_mb: int, network: bool) -> None:
    if not network:
        guard.deny_network_sockets()
    _limit_memory(memory_limit_mb)
    while True:
        try:
            req = conn.recv()
        except (EOFError, OSError):
            return
        if req["kind"] == "query":
            resp = _run_query(store, req)
        elif req["kind"] == "check_update":
            try:
                text = guard.check_remote_access(
                    req["text"], allow_service=req["allow_service"], allow_load=req["allow_load"], update=True,
                    default_prefixes=PREFIXES,
                )
                resp = (200, "text/plain", text.encode())
            except guard.Refused as err:
                resp = (err.status, "text/plain", (err.message + "\n").encode())
        elif req["kind"] == "dump":
            resp = _dump(store, req)
        elif req["kind"] == "describe":
            resp = linked.describe(store, req)
        else:
            resp = (400, "text/plain", b"unknown request\n")
        try:
            conn.send(resp)
        except (OSError, ValueError):
            return


# -- zygote ---------------------------------------------------------------------------------------------
def _zygote_write(store: OxStore, req: dict[str, Any]) -> tuple[int, str]:
    op = req["op"]
    try:
        if op == "update":
            store.update(req["text"], prefixes=PREFIXES)
        elif op in ("put", "post"):
            graph = req["graph"]
            fmt = WRITE_TYPES[req["mime"]]
            scratch = OxStore()
            if graph is None:
                scratch.load(req["data"], fmt)
            else:
                from pyoxigraph import DefaultGraph

                target: Any = DefaultGraph() if graph == "" else NamedNode(graph)
                scratch.load(req["data"], fmt, to_graph=target)
            created = graph is not None and graph != "" and not store.contains_named_graph(NamedNode(graph))
            if op == "put" and graph is not None:
                if graph == "":
                    from pyoxigraph import DefaultGraph

                    store.clear_graph(DefaultGraph())
                elif store.contains_named_graph(NamedNode(graph)):
                    store.clear_graph(NamedNode(graph))
            store.extend(scratch.quads_for_pattern(None, None, None, None))
            return (201 if created else 204), ""
        elif op == "delete":
            g = NamedNode(req["graph"])
            if not store.contains_named_graph(g):
                return 404, f"no graph <{req['graph']}> in this dataset"
            store.remove_graph(g)
        else:
            return 400, "unknown write"
    except SyntaxError as err:
        return 400, f"invalid input: {err}"
    except (OSError, RuntimeError) as err:  # LOAD: unreachable URL, a media type that is not RDF ...
        what = "the update" if op == "update" else "the write"
        return 502 if op == "update" else 500, f"{what} failed and changed nothing: {err}"
    except (ValueError, TypeError, KeyError) as err:
        return 400, f"invalid write: {err}"
    return 204, ""


def zygote_main(fd: int, dataset: str, memory_limit_mb: int, network: str = "") -> None:
    """Entry point of the zygote process (see ``WorkerPool``).

    ``network`` says who may open network sockets: "" nobody (the zygote and its workers run under
    :func:`threatgraph.server_guard.deny_network_sockets`), "w" workers (SERVICE allow-list), "z" the
    zygote (LOAD allow-list), "wz" both.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped automatically
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not network:
        guard.deny_network_sockets()
    import rdflib.plugins.sparql.parser  # noqa: F401  (the SERVICE/LOAD check's grammar, shared by every fork)

    conn = Connection(fd)
    store = OxStore()
    if dataset:
        try:
            store.load(path=dataset, format=RdfFormat.N_QUADS)
        except (SyntaxError, OSError) as err:
            conn.send(("error", f"cannot load the dataset: {err}"))
            return
    conn.send(("ready", len(store)))
    while True:
        try:
            req = conn.recv()
        except (EOFError, OSError):
            return
        if req["op"] == "fork":
            try:
                parent_end, child_end = socket.socketpair()
                pid = os.fork()
            except OSError as err:  # out of processes or descriptors: say so, keep serving
                conn.send(("error", f"cannot start a query worker: {err}"))
                continue
            if pid == 0:  # worker
                conn.close()
                parent_end.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                try:
                    _worker_loop(Connection(child_end.detach()), store, memory_limit_mb, "w" in network)
                finally:
                    os._exit(0)
            child_end.close()
            conn.send(("ok", pid))
            send_handle(conn, parent_end.fileno(), os.getppid())
            parent_end.close()
        elif req["op"] == "graphs":
            conn.send(sorted(g.value for g in store.named_graphs() if isinstance(g, NamedNode)))
        elif req["op"] == "size":
            conn.send(len(store))
        else:
            conn.send(_zygote_write(store, req))


# -- worker pool (in the HTTP server process) ----------------------------------------------------------
class FairSlots:
    """Who may run a request in a worker now, so that no client (IP address) starves the others.

    ``base`` slots are shared fairly: while several clients want workers, none may hold more than
    ``base // clients`` (at least 1), and a freed slot goes to the waiting client that holds fewest.
    ``reserve`` further slots (extra forked workers) are only for clients that hold none, so a client
    with a cheap query is served at once even while others keep every base worker busy with query bombs.
    """

    def __init__(self, base: int, reserve: int) -> None:
        self.base, self.reserve = max(1, base), max(0, reserve)
        self._cond = threading.Condition()
        self._held: dict[str, int] = {}
        self._waiting: dict[int, str] = {}
        self._tickets = itertools.count()
        self.busy = 0

    def _cap(self) -> int:
        active = set(self._waiting.values()) | {c for c, n in self._held.items() if n}
        return max(1, self.base // max(1, len(active)))

    def _may_take(self, client: str, ticket: int) -> bool:
        held = self._held.get(client, 0)
        cap = self._cap()
        if self.busy < self.base and held < cap:
            first = min((self._held.get(c, 0), t) for t, c in self._waiting.items() if self._held.get(c, 0) < cap)
            return first == (held, ticket)
        if held == 0 and self.busy < self.base + self.reserve:
            return min(t for t, c in self._waiting.items() if self._held.get(c, 0) == 0) == ticket
        return False

    def acquire(self, client: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            ticket = next(self._tickets)
            self._waiting[ticket] = client
            try:
                while not self._may_take(client, ticket):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                self._held[client] = self._held.get(client, 0) + 1
                self.busy += 1
                return True
            finally:
                del self._waiting[ticket]
                self._cond.notify_all()

    def release(self, client: str) -> None:
        with self._cond:
            n = self._held.get(client, 0) - 1
            if n > 0:
                self._held[client] = n
            else:
                self._held.pop(client, None)
            self.busy -= 1
            self._cond.notify_all()


@dataclass
class _Worker:
    conn: Connection
    pid: int
    generation: int


_DRAIN_BYTES = 16 * 1024 * 1024
"""A body over --max-body but at most this (or 4 x --max-body) is read and dropped before the 413, so
clients that send before they read (urllib, SPARQLWrapper) see the answer instead of a broken pipe."""
_REPLAY_BYTES = 128 * 1024 * 1024
"""Writes kept for replaying into a restarted zygote; beyond this, a zygote death needs a server restart."""


class WorkerPool:
    """Forked query workers with per-query deadlines (kill and replace on timeout)."""

    def __init__(self, dataset: str, cfg: ServerConfig) -> None:
        self.cfg = cfg
        # The dataset stays readable through this descriptor (the caller may delete the file): a zygote
        # that dies is restarted from it, and the writes since are replayed (see _restart_zygote).
        self._datafd = os.open(dataset, os.O_RDONLY) if dataset else -1
        self._zlock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._log_bytes = 0
        self._replayable = True
        self.restarts = 0
        self.size_at_start = self._start_zygote()
        self.generation = 0
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self.slots = FairSlots(cfg.workers, cfg.reserve_workers)
        self._graphs: tuple[int, list[str]] | None = None
        for _ in range(max(1, cfg.workers)):
            self._idle.put(self._fork())

    def _start_zygote(self) -> int:
        """Start the zygote on the dataset; returns its size in quads."""
        cfg = self.cfg
        parent, child = socket.socketpair()
        fds = (child.fileno(),) + ((self._datafd,) if self._datafd >= 0 else ())
        path = f"/dev/fd/{self._datafd}" if self._datafd >= 0 else ""
        self._zygote = subprocess.Popen(
            [sys.executable, "-c", "import sys; from threatgraph.server import zygote_main; "
             "zygote_main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4])",
             str(child.fileno()), path, str(cfg.memory_limit_mb),
             ("w" if cfg.allow_service else "") + ("z" if cfg.allow_load else "")],
            pass_fds=fds,
        )
        child.close()
        self._zconn = Connection(parent.detach())
        try:
            status = self._zconn.recv()
        except (EOFError, OSError) as err:
            raise ThreatgraphError(f"the dataset process did not start ({err})") from err
        if status[0] != "ready":
            raise ThreatgraphError(str(status[1]))
        return int(status[1])

    def _stop_zygote(self) -> None:
        with contextlib.suppress(OSError):
            self._zconn.close()
        with contextlib.suppress(OSError):
            self._zygote.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._zygote.wait(5)

    def _restart_zygote(self, why: str) -> None:
        """Replace a dead or stuck zygote (caller holds ``_zlock``): reload the dataset, replay the writes."""
        self._stop_zygote()
        self.generation += 1  # every worker forked from the old one is retired
        if not self._replayable:
            raise HttpError(503, f"the dataset process {why}, and the writes since the start are too large to "
                                 "replay; restart the server")
        try:
            self._start_zygote()
            for req in self._log:
                self._zconn.send(req)
                self._zconn.recv()
        except (ThreatgraphError, EOFError, OSError) as err:
            self._replayable = False
            raise HttpError(503, f"the dataset process {why} and could not be restarted ({err}); restart the server") from err
        self.restarts += 1

    def _record(self, req: dict[str, Any]) -> None:
        """Keep a successful write for replay (up to _REPLAY_BYTES in all)."""
        if not self._replayable:
            return
        self._log_bytes += len(req.get("text") or "") + len(req.get("data") or b"") + 200
        if self._log_bytes > _REPLAY_BYTES:
            self._replayable = False
            self._log.clear()
            return
        self._log.append(req)

    def _fork(self) -> _Worker:
        with self._zlock:
            for attempt in (1, 2):
                try:
                    self._zconn.send({"op": "fork"})
                    status, detail = self._zconn.recv()
                    if status != "ok":
                        raise HttpError(503, f"{detail}; try again later", {"Retry-After": "1"})
                    fd = recv_handle(self._zconn)
                    return _Worker(Connection(fd), int(detail), self.generation)
                except (EOFError, OSError, ValueError) as err:
                    if attempt == 2:
                        raise HttpError(503, f"the query workers are unavailable ({err}); restart the server") from err
                    self._restart_zygote("stopped")
            raise AssertionError("unreachable")

    @staticmethod
    def _kill(w: _Worker) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(w.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            w.conn.close()

    def run(self, req: dict[str, Any], client: str = "") -> Response:
        """Run a query/dump request in a worker within the time limit (``client``: who asks, for fairness)."""
        limit = self.cfg.time_limit
        if not self.slots.acquire(client, limit):
            raise HttpError(503, f"the query workers stayed busy for {limit:g} s (this client already has its share "
                            "or all are in use); try again later", {"Retry-After": "1"})
        try:
            try:
                w = self._idle.get_nowait()
            except queue.Empty:  # a reserve slot (or a worker lost to a failed fork): start one
                w = self._fork()
        except HttpError:
            self.slots.release(client)
            raise
        try:
            if w.generation != self.generation or w.conn.closed or self._stale(w):
                w = self._replace(w)
            try:
                w.conn.send(req)
            except (OSError, ValueError):  # the worker died between requests: use a fresh one
                w = self._replace(w)
                w.conn.send(req)
            if not w.conn.poll(limit):
                w = self._replace(w)
                raise HttpError(
                    503, f"the query exceeded this server's time limit of {limit:g} s and was stopped; "
                    "narrow it or add LIMIT (the operator can raise --time-limit)",
                )
            try:
                resp: Response = w.conn.recv()
            except (EOFError, OSError, pickle.UnpicklingError):
                w = self._replace(w)
                raise HttpError(
                    503, f"the query was aborted: its worker exceeded the memory limit "
                    f"({self.cfg.memory_limit_mb} MB) or crashed; narrow the query",
                ) from None
            return resp
        finally:
            self._idle.put(w)  # always give the worker back: one that could not be replaced is re-forked next time
            self.slots.release(client)

    @staticmethod
    def _stale(w: _Worker) -> bool:
        """An idle worker has nothing to say: readable means it died (EOF) or is out of step."""
        try:
            return bool(w.conn.poll(0))
        except (OSError, ValueError):
            return True

    def _replace(self, w: _Worker) -> _Worker:
        """Kill ``w`` and fork a fresh worker (HttpError 503 if the zygote cannot; ``w`` stays closed then)."""
        self._kill(w)
        return self._fork()

    def write(self, req: dict[str, Any]) -> tuple[int, str]:
        """Apply a write in the zygote; later queries run in fresh forks that see it."""
        limit = self.cfg.write_time_limit
        with self._zlock:
            if self._zygote.poll() is not None:
                self._restart_zygote("had stopped")
            try:
                self._zconn.send(req)
                if not self._zconn.poll(limit):
                    self._restart_zygote(f"ran a write for more than {limit:g} s")
                    raise HttpError(503, f"the write took longer than {limit:g} s and was abandoned; nothing changed "
                                         "(the operator can raise --write-time-limit)")
                status, message = self._zconn.recv()
            except (EOFError, OSError):
                self._restart_zygote("died during a write")
                raise HttpError(503, "the dataset process died during this write; it was restarted with the earlier "
                                     "writes, without this one") from None
            self.generation += 1
            if int(status) < 400:
                self._record(req)
        return int(status), str(message)

    def graphs(self) -> list[str]:
        cached = self._graphs
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        with self._zlock:
            for attempt in (1, 2):
                try:
                    self._zconn.send({"op": "graphs"})
                    names: list[str] = self._zconn.recv()
                    break
                except (EOFError, OSError) as err:
                    if attempt == 2:
                        raise HttpError(503, f"the dataset process is unavailable ({err}); restart the server") from err
                    self._restart_zygote("stopped")
        self._graphs = (self.generation, names)
        return names

    def close(self) -> None:
        while True:
            try:
                self._kill(self._idle.get_nowait())
            except queue.Empty:
                break
        self._zconn.close()
        self._zygote.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._zygote.wait(5)
        if self._zygote.poll() is None:
            self._zygote.kill()
            self._zygote.wait()
        if self._datafd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._datafd)
            self._datafd = -1


# -- content negotiation ------------------------------------------------------------------------------
def negotiate(accept: str | None, offers: Iterable[str], default: str) -> str | None:
    """Pick the offer the Accept header prefers (q-values, ``type/*``, ``*/*``); None if none is acceptable.

    >>> negotiate("text/csv;q=0.5, application/sparql-results+xml", ["application/sparql-results+json", "application/sparql-results+xml", "text/csv"], "application/sparql-results+json")
    'application/sparql-results+xml'
    """
    offers = list(offers)
    if not accept or not accept.strip():
        return default
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        mime = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if mime == "*/*":
            cand = default
        elif mime.endswith("/*"):
            cand = next((o for o in offers if o.startswith(mime[:-1])), "")
        else:
            cand = mime if mime in offers else ""
        if cand and (best is None or (q, -i) > (best[0], -best[1])):
            best = (q, i, cand)
    return best[2] if best else None


# -- Host header (DNS rebinding) ------------------------------------------------------------------------
_HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?")


def parse_host(value: str) -> tuple[str, int | None] | None:
    """(lower-case name, port or None) of a ``Host`` header value; None if malformed.

    >>> parse_host("LocalHost:7879"), parse_host("[::1]"), parse_host("a b"), parse_host("x:99999")
    (('localhost', 7879), ('[::1]', None), None, None)
    """
    m = _HOST_HEADER.fullmatch(value.strip())
    if not m:
        return None
    port = int(m.group(2)) if m.group(2) else None
    if port is not None and not 0 < port < 65536:
        return None
    return m.group(1).lower(), port


def _ip_kind(name: str) -> str:
    """'loopback', 'any' (0.0.0.0, ::), 'ip' for other address literals, '' for names."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return ""
    return "loopback" if ip.is_loopback else "any" if ip.is_unspecified else "ip"


# -- HTTP handler -------------------------------------------------------------------------------------
class _BufferFull(OSError):
    """The response buffering budget is spent: the connection is closed without the body."""


class SparqlServer(ThreadingHTTPServer):
    """The HTTP server: holds the config, the worker pool and the named-query library."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: the default 5 resets connections under concurrent load

    def __init__(self, cfg: ServerConfig, dataset: str) -> None:
        cfg.validate()
        self.cfg = cfg
        self.pool = WorkerPool(dataset, cfg)
        self.library: dict[str, NamedQuery] = load_library()
        self._conn_lock = threading.Lock()
        self._conns: dict[str, int] = {}
        self._conns_total = 0
        self._buffered = 0
        self._onto_lock = threading.Lock()
        self._onto: dict[str, bytes] = {}
        try:
            super().__init__((cfg.host, cfg.port), Handler)
        except OSError:
            self.pool.close()
            raise

    def ontology(self, mime: str) -> bytes:
        """The shipped ontology as ``mime`` (``text/html``: the vocabulary reference), built once per server."""
        with self._onto_lock:
            if mime not in self._onto:
                if mime == "text/html":
                    from threatgraph.vocabulary import vocabulary_html

                    self._onto[mime] = vocabulary_html().encode()
                else:
                    if "ttl" not in self._onto:
                        from threatgraph.analysis.ontology import load_ontology

                        self._onto["ttl"] = load_ontology().graph.serialize(format="turtle", encoding="utf-8")
                    if mime == "text/turtle":
                        self._onto[mime] = self._onto["ttl"]
                    else:
                        triples = parse(self._onto["ttl"], format=RdfFormat.TURTLE)
                        self._onto[mime] = serialize(triples, format=linked.RDF_TYPES[mime]) or b""
            return self._onto[mime]

    # -- connection caps and the response buffering budget ------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a thread for the connection unless the server or this client has too many open."""
        ip = str(client_address[0])
        cfg = self.cfg
        with self._conn_lock:
            mine = self._conns.get(ip, 0)
            full = self._conns_total >= cfg.max_connections or mine >= cfg.max_connections_per_client
            if not full:
                self._conns[ip] = mine + 1
                self._conns_total += 1
        if full:
            msg = (f"too many open connections (this server takes {cfg.max_connections}, "
                   f"{cfg.max_connections_per_client} per client); close idle ones or try again later\n").encode()
            head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    f"Content-Length: {len(msg)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(head + msg)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            ip = str(client_address[0])
            with self._conn_lock:
                self._conns_total -= 1
                left = self._conns.get(ip, 1) - 1
                if left > 0:
                    self._conns[ip] = left
                else:
                    self._conns.pop(ip, None)

    @contextlib.contextmanager
    def buffered(self, n: int) -> Iterator[None]:
        """Count ``n`` bytes of response being sent; _BufferFull if the budget (``max_buffered_mb``) is spent."""
        budget = self.cfg.max_buffered_mb * 1024 * 1024
        with self._conn_lock:
            if self._buffered and self._buffered + n > budget:
                raise _BufferFull(f"{self._buffered} bytes of responses are waiting for slow readers")
            self._buffered += n
        try:
            yield
        finally:
            with self._conn_lock:
                self._buffered -= n

    def host_allowed(self, name: str, port: int | None) -> bool:
        """True if a request with this ``Host`` is meant for this server (see ``ServerConfig.allowed_hosts``)."""
        bound_host, bound_port = str(self.server_address[0]).lower(), int(self.server_address[1])
        for entry in self.cfg.allowed_hosts:
            if entry == "*":
                return True
            parsed = parse_host(entry)
            if parsed and parsed[0] == name and (parsed[1] is None or parsed[1] == (port or 80)):
                return True
        if (port or 80) != bound_port:
            return False
        if name in (bound_host, f"[{bound_host}]", self.cfg.host.lower()):
            return True
        if _ip_kind(bound_host) in ("loopback", "any") and (name == "localhost" or _ip_kind(name) == "loopback"):
            return True
        return _ip_kind(bound_host) == "any" and _ip_kind(name) != ""  # all interfaces: any address literal

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed (reset, time-out) is closed with one log line, never a traceback."""
        err = sys.exc_info()[1]
        if os.environ.get("THREATGRAPH_SERVER_LOG"):
            print(f"threatgraph serve: connection from {client_address[0]} closed: {err!r}", file=sys.stderr)

    def server_close(self) -> None:
        super().server_close()
        self.pool.close()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class Handler(BaseHTTPRequestHandler):
    """SPARQL 1.1 Protocol (``/query``, ``/sparql``, ``/update``), Graph Store (``/store``), query page (``/``),
    linked data (``/ontology``, ``/resource?iri=``, ``/attack/…``, ``/atlas/…``, ``/finding/…`` …)."""

    server: SparqlServer
    protocol_version = "HTTP/1.1"
    server_version = "threatgraph"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms
        # to every keep-alive response.
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.settimeout(self.server.cfg.connection_timeout)
        self._body_done = False

    def parse_request(self) -> bool:
        """Parse the request line and headers, then refuse a foreign or malformed ``Host`` (DNS rebinding)."""
        self._body_done = False
        if not super().parse_request():
            return False
        values = self.headers.get_all("Host") or []
        err: HttpError | None = None
        if len(values) > 1:
            err = HttpError(400, "more than one Host header")
        elif not values:
            if self.request_version != "HTTP/1.0":
                err = HttpError(400, "the request has no Host header (HTTP/1.1 requires one)")
        else:
            parsed = parse_host(values[0])
            if parsed is None:
                err = HttpError(400, f"malformed Host header {values[0][:100]!r}")
            elif not self.server.host_allowed(*parsed):
                err = HttpError(
                    403, f"this server does not answer to Host {values[0][:100]!r} (a guard against DNS rebinding); "
                    f"use http://{self.server.url.removeprefix('http://')}/ or ask the operator to start it with "
                    "--allowed-host NAME",
                )
        if err is not None:
            self.close_connection = True  # the body (if any) is never read: do not read it as a next request
            self._error(err)
            return False
        return True

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("THREATGRAPH_SERVER_LOG"):
            super().log_message(format, *args)

    # -- plumbing ---------------------------------------------------------------------------------
    def _cors(self) -> dict[str, str]:
        origins = self.server.cfg.cors_origins
        origin = self.headers.get("Origin")
        if not origins or not origin:
            return {}
        if "*" in origins:
            return {"Access-Control-Allow-Origin": "*"}
        if origin in origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        if len(body) < 65536 or self.command == "HEAD":
            self._send_now(status, ctype, body, headers)
            return
        try:
            with self.server.buffered(len(body)):
                self._send_now(status, ctype, body, headers)
        except _BufferFull:
            self._send_now(503, "text/plain", b"the server is busy sending large results to slow clients; "
                           b"try again later or narrow the query\n", {"Retry-After": "2"})

    def _send_now(self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        head_only = self.command == "HEAD"
        self.send_response(status)
        if body or status not in (204, 304):
            self.send_header("Content-Type", ctype + ("; charset=utf-8" if ctype.startswith("text/") else ""))
            self.send_header("Content-Length", str(len(body)))
        for k, v in {**self._cors(), **(headers or {})}.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and not head_only:
            self._write_body(body)

    def _write_body(self, body: bytes) -> None:
        """Send in chunks under a deadline: a client reading a trickle cannot hold a response (and a thread)
        for ever (large bodies also count against the buffering budget, see ``_send``)."""
        cfg = self.server.cfg
        deadline = time.monotonic() + cfg.connection_timeout + len(body) / max(1, cfg.min_send_rate)
        view = memoryview(body)
        for i in range(0, len(body), 65536):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the client read {i} of {len(body)} bytes too slowly")
            self.wfile.write(view[i:i + 65536])

    def _error(self, err: HttpError) -> None:
        self._send(err.status, "text/plain", (err.message.rstrip() + "\n").encode(), err.headers)

    def _body(self) -> bytes:
        if self._body_done:
            return b""
        self._body_done = True
        te = self.headers.get("Transfer-Encoding", "")
        if te and te.lower() != "identity":
            self.close_connection = True
            raise HttpError(411, "chunked request bodies are not supported: send Content-Length")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        if not raw.strip().isdigit() or len(self.headers.get_all("Content-Length") or []) > 1:
            self.close_connection = True
            raise HttpError(400, f"bad Content-Length {raw[:40]!r}")
        n = int(raw)
        if n > self.server.cfg.max_body:
            self.close_connection = True
            if n <= max(_DRAIN_BYTES, 4 * self.server.cfg.max_body):
                # read it away (not kept), so that the client, still sending, gets to read the 413
                left = n
                while left > 0:
                    chunk = self.rfile.read(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
            raise HttpError(413, f"the request body has {n} bytes; this server's limit is {self.server.cfg.max_body} "
                                 "(send smaller requests, or the operator can raise --max-body)")
        data = self.rfile.read(n)
        if len(data) < n:
            self.close_connection = True
            raise HttpError(400, f"the request body ended after {len(data)} of {n} bytes")
        return data

    def _discard_body(self) -> None:
        """Read and drop a body nobody read (a refused request), so it is not parsed as the next request."""
        if self._body_done:
            return
        try:
            self._body()
        except HttpError:
            self.close_connection = True

    def _split(self) -> tuple[str, dict[str, list[str]]]:
        parts = urllib.parse.urlsplit(self.path)
        try:
            params = urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=False, errors="strict")
        except (ValueError, UnicodeDecodeError) as err:
            raise HttpError(400, f"malformed query string: {err}") from None
        return parts.path.rstrip("/") or "/", params

    def _dispatch(self, method: str) -> None:
        try:
            path, params = self._split()
            route: Callable[[str, dict[str, list[str]]], None] | None = {
                "/query": self._sparql_query,
                "/sparql": self._sparql_query,
                "/update": self._sparql_update,
                "/store": self._graph_store,
                "/": self._page,
                "/queries": self._queries,
            }.get(path)
            if route is None and path.startswith("/queries/"):
                route = self._named_query
            if route is None and path.startswith("/static/"):
                route = self._static
            if route is None and path == "/ontology":
                route = self._ontology
            if route is None and (path == "/resource" or path.startswith(tuple("/" + p for p in linked.PATH_PREFIXES))):
                route = self._resource
            if route is None:
                raise HttpError(404, f"no such resource {path}; the SPARQL endpoint is /query")
            route(method, params)
        except HttpError as err:
            self._refuse(err)
        except OSError:  # reset, broken pipe, time-out: nothing more can be said on this connection
            self.close_connection = True
            with contextlib.suppress(OSError):  # reset it: drop what the kernel still holds for a slow reader
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except ThreatgraphError as err:
            self._refuse(HttpError(500, str(err)))

        self._settle_body()

    def _settle_body(self) -> None:
        """Drop a body nobody read (a small one is read; otherwise the connection closes after the answer),
        so that it is never parsed as the next request on a keep-alive connection."""
        if self._body_done:
            return
        raw = self.headers.get("Content-Length", "0").strip()
        # a small body is read even when the connection closes after the answer (a client sending
        # "Connection: close", as urllib does): closing with unread bytes makes the kernel send a reset,
        # which can discard the answer before the client reads it
        if not raw.isdigit() or int(raw) > 65536 or self.headers.get("Transfer-Encoding"):
            self._body_done = True
            self.close_connection = True
            return
        try:
            self._discard_body()
        except OSError:
            self.close_connection = True

    def _refuse(self, err: HttpError) -> None:
        """Answer an error, after dealing with the unread body."""
        self._settle_body()
        self._error(err)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:
        headers = {"Allow": "GET, HEAD, POST, PUT, DELETE, OPTIONS"}
        if self._cors():
            headers.update({
                "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Accept, Authorization",
                "Access-Control-Max-Age": "600",
            })
        self._discard_body()
        self._send(204, "text/plain", b"", headers)

    def do_PATCH(self) -> None:
        self._refuse(HttpError(405, "PATCH is not supported", {"Allow": "GET, HEAD, POST, PUT, DELETE, OPTIONS"}))

    # -- auth ---------------------------------------------------------------------------------------
    def _require_token(self) -> None:
        token = self.server.cfg.update_token
        if not token:
            raise HttpError(403, "this server is read-only: updates and graph writes are disabled; the operator "
                                 "enables them by starting it with --update-token TOKEN (or $THREATGRAPH_UPDATE_TOKEN)")
        auth = self.headers.get("Authorization", "")
        how = ("send 'Authorization: Bearer TOKEN' with the token the server was started with "
               "(threatgraph commands: --token TOKEN or $THREATGRAPH_ENDPOINT_TOKEN)")
        if not auth:
            raise HttpError(401, f"updates need the server's update token: {how}",
                            {"WWW-Authenticate": 'Bearer realm="threatgraph"'})
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HttpError(403, f"wrong update token: {how}",
                            {"WWW-Authenticate": 'Bearer realm="threatgraph", error="invalid_token"'})

    # -- SPARQL query -------------------------------------------------------------------------------
    def _query_text(self, method: str, params: dict[str, list[str]], key: str) -> tuple[str | None, dict[str, list[str]]]:
        if method == "GET":
            vals = params.get(key)
            return (vals[0] if vals else None), params
        if method != "POST":
            raise HttpError(405, f"{method} is not allowed here; use GET or POST", {"Allow": "GET, HEAD, POST, OPTIONS"})
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        body = self._body()
        if ctype == "application/x-www-form-urlencoded":
            try:
                form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict")
            except (UnicodeDecodeError, ValueError) as err:
                raise HttpError(400, f"malformed form body: {err}") from None
            merged = {**params, **form}
            vals = form.get(key)
            return (vals[0] if vals else None), merged
        expected = "application/sparql-query" if key == "query" else "application/sparql-update"
        if ctype == expected:
            try:
                return body.decode("utf-8"), params
            except UnicodeDecodeError:
                raise HttpError(400, "the request body is not UTF-8") from None
        raise HttpError(415, f"unsupported Content-Type {ctype or '(none)'!r}; send application/x-www-form-urlencoded or {expected}")

    def _sparql_query(self, method: str, params: dict[str, list[str]]) -> None:
        text, merged = self._query_text(method, params, "query")
        if text is None:
            if method == "GET" and "update" not in params:
                self._service_description()
                return
            raise HttpError(400, "missing the 'query' parameter")
        if "update" in merged:
            raise HttpError(400, "send updates to /update")
        self._execute(text, merged)

    def _execute(self, text: str, params: dict[str, list[str]]) -> None:
        cfg = self.server.cfg
        if len(text.encode()) > cfg.max_body:
            raise HttpError(413, f"the query has more than {cfg.max_body} bytes, this server's limit")
        accept = self.headers.get("Accept")
        result_mime = negotiate(accept, RESULT_TYPES, "application/sparql-results+json")
        graph_mime = negotiate(accept, GRAPH_TYPES, "text/turtle")
        if result_mime is None and graph_mime is None:
            raise HttpError(406, f"cannot produce {accept!r}; results: {', '.join(RESULT_TYPES)}; graphs: {', '.join(GRAPH_TYPES)}")
        req: dict[str, Any] = {
            "kind": "query",
            "query": text,
            "result_format": RESULT_TYPES[result_mime or "application/sparql-results+json"],
            "graph_mime": graph_mime or "text/turtle",
            "default_graphs": params.get("default-graph-uri", []),
            "named_graphs": params.get("named-graph-uri", []),
            "union": cfg.union_default_graph,
            "max_rows": cfg.max_rows,
            "allow_service": cfg.allow_service,
        }
        for g in req["default_graphs"] + req["named_graphs"]:
            try:
                NamedNode(g)
            except ValueError:
                raise HttpError(400, f"invalid graph IRI {g!r}") from None
        status, ctype, body = self.server.pool.run(req, self.client_address[0])
        if status == 200 and result_mime is None and ctype in _RESULT_MIME.values():
            raise HttpError(406, f"a SELECT/ASK result cannot be given as {accept!r}; accept one of {', '.join(RESULT_TYPES)}")
        if status == 200 and graph_mime is None and ctype in GRAPH_TYPES:
            raise HttpError(406, f"a graph result cannot be given as {accept!r}; accept one of {', '.join(GRAPH_TYPES)}")
        self._send(status, ctype, body)

    def _named_query(self, method: str, params: dict[str, list[str]]) -> None:
        if method != "GET":
            raise HttpError(405, "named queries are run with GET", {"Allow": "GET, HEAD"})
        name = self._split()[0][len("/queries/"):]
        q = self.server.library.get(name)
        if q is None:
            raise HttpError(404, f"no named query {name!r}; GET /queries lists them")
        try:
            bindings = q.bind({k: v[0] for k, v in params.items() if k not in ("default-graph-uri", "named-graph-uri")})
        except InputError as err:
            raise HttpError(400, str(err)) from None
        self._execute(inline_values(q.query, bindings) if bindings else q.query, params)

    def _queries(self, method: str, params: dict[str, list[str]]) -> None:
        body = json.dumps([q.describe() for q in self.server.library.values()]).encode()
        self._send(200, "application/json", body)

    # -- SPARQL update --------------------------------------------------------------------------------
    def _sparql_update(self, method: str, params: dict[str, list[str]]) -> None:
        if method != "POST":
            raise HttpError(405, "updates are sent with POST", {"Allow": "POST, OPTIONS"})
        self._require_token()
        text, _ = self._query_text(method, params, "update")
        if text is None:
            raise HttpError(400, "missing the 'update' parameter")
        cfg = self.server.cfg
        if len(text.encode()) > cfg.max_body:
            raise HttpError(413, f"the update has more than {cfg.max_body} bytes, this server's limit")
        # The SERVICE/LOAD check parses the text: it runs in a worker, under the time and memory limits.
        status, _, checked = self.server.pool.run(
            {"kind": "check_update", "text": text, "allow_service": cfg.allow_service, "allow_load": cfg.allow_load},
            self.client_address[0],
        )
        if status != 200:
            raise HttpError(status, checked.decode("utf-8", "replace"))
        status, message = self.server.pool.write({"op": "update", "text": checked.decode()})
        if status >= 400:
            raise HttpError(status, message)
        self._send(204, "text/plain", b"")

    # -- Graph Store Protocol -------------------------------------------------------------------------
    def _target_graph(self, params: dict[str, list[str]]) -> str | None:
        """'' for the default graph, an IRI for a named graph, None for the whole dataset."""
        if "default" in params:
            return ""
        g = params.get("graph")
        if not g:
            return None
        try:
            NamedNode(g[0])
        except ValueError:
            raise HttpError(400, f"invalid graph IRI {g[0]!r}") from None
        return g[0]

    def _graph_store(self, method: str, params: dict[str, list[str]]) -> None:
        graph = self._target_graph(params)
        if method == "GET":
            offers = DATASET_TYPES if graph is None else GRAPH_TYPES
            mime = negotiate(self.headers.get("Accept"), offers, next(iter(offers)))
            if mime is None:
                raise HttpError(406, f"cannot produce {self.headers.get('Accept')!r}; use one of {', '.join(offers)}")
            status, ctype, body = self.server.pool.run(
                {"kind": "dump", "graph": graph, "mime": mime, "max_rows": self.server.cfg.max_rows},
                self.client_address[0],
            )
            self._send(status, ctype, body)
            return
        if method not in ("PUT", "POST", "DELETE"):
            raise HttpError(405, f"{method} is not allowed on /store")
        self._require_token()
        if method == "DELETE":
            if not graph:
                raise HttpError(400, "DELETE needs ?graph=IRI")
            status, message = self.server.pool.write({"op": "delete", "graph": graph})
        else:
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype not in WRITE_TYPES or (graph is not None and ctype in DATASET_TYPES):
                raise HttpError(415, f"unsupported Content-Type {ctype or '(none)'!r}; use one of {', '.join(WRITE_TYPES)}")
            if graph is None and ctype not in DATASET_TYPES:
                raise HttpError(400, "name the target with ?graph=IRI or ?default, or send N-Quads/TriG")
            status, message = self.server.pool.write(
                {"op": method.lower(), "graph": graph, "data": self._body(), "mime": ctype}
            )
        if status >= 400:
            raise HttpError(status, message)
        self._send(status, "text/plain", b"")

    # -- service description and page ---------------------------------------------------------------
    def _service_description(self) -> None:
        mime = negotiate(self.headers.get("Accept"), GRAPH_TYPES, "text/turtle")
        if mime is None or mime == "text/plain":
            mime = "text/turtle"
        sd = "http://www.w3.org/ns/sparql-service-description#"
        fmt = "http://www.w3.org/ns/formats/"
        host = self.headers.get("Host") or f"{self.server.cfg.host}:{self.server.cfg.port}"
        svc = NamedNode(f"http://{host}/query")
        a = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
        t = [Triple(svc, a, NamedNode(sd + "Service")), Triple(svc, NamedNode(sd + "endpoint"), svc)]
        langs = ["SPARQL11Query"] + (["SPARQL11Update"] if self.server.cfg.update_token else [])
        t += [Triple(svc, NamedNode(sd + "supportedLanguage"), NamedNode(sd + x)) for x in langs]
        for f in ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                  "Turtle", "N-Triples", "JSON-LD", "RDF_XML"):
            t.append(Triple(svc, NamedNode(sd + "resultFormat"), NamedNode(fmt + f)))
        if self.server.cfg.union_default_graph:
            t.append(Triple(svc, NamedNode(sd + "feature"), NamedNode(sd + "UnionDefaultGraph")))
        ds = BlankNode()
        t += [Triple(svc, NamedNode(sd + "defaultDataset"), ds), Triple(ds, a, NamedNode(sd + "Dataset"))]
        for g in self.server.pool.graphs():
            ng = BlankNode()
            t += [Triple(ds, NamedNode(sd + "namedGraph"), ng), Triple(ng, NamedNode(sd + "name"), NamedNode(g))]
        body = serialize(t, format=GRAPH_TYPES[mime], prefixes={"sd": sd} if mime == "text/turtle" else None) or b""
        self._send(200, mime, body)

    # -- linked data ----------------------------------------------------------------------------------
    def _linked_mime(self, offers: Iterable[str]) -> str:
        accept = self.headers.get("Accept")
        offers = list(offers)
        mime = negotiate(accept, offers, "text/html")
        if mime is None:
            raise HttpError(406, f"cannot produce {accept!r}; use one of {', '.join(offers)}", {"Vary": "Accept"})
        return mime

    def _linked_headers(self, ctype: str) -> dict[str, str]:
        """Headers of a negotiated linked-data answer; HTML pages (data values escaped) may load nothing."""
        headers = {"Vary": "Accept, Origin" if "Vary" in self._cors() else "Accept", "X-Content-Type-Options": "nosniff"}
        if ctype == "text/html":
            headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return headers

    def _ontology(self, method: str, params: dict[str, list[str]]) -> None:
        if method != "GET":
            raise HttpError(405, "the ontology is read with GET", {"Allow": "GET, HEAD"})
        mime = self._linked_mime(linked.OFFERS)
        self._send(200, mime, self.server.ontology(mime), self._linked_headers(mime))

    def _resource(self, method: str, params: dict[str, list[str]]) -> None:
        if method != "GET":
            raise HttpError(405, "resources are read with GET", {"Allow": "GET, HEAD"})
        path = urllib.parse.urlsplit(self.path).path
        if path.rstrip("/") == "/resource":
            values = params.get("iri")
            if not values or not values[0]:
                raise HttpError(400, "missing the 'iri' parameter: GET /resource?iri=IRI (percent-encoded)")
            iri: str | None = values[0]
        else:
            try:
                iri = linked.path_iri(path)
            except UnicodeDecodeError:
                raise HttpError(400, f"the path {path[:200]!r} is not UTF-8 after percent-decoding") from None
            if iri is None:
                raise HttpError(404, f"no such resource {path[:200]}")
        assert iri is not None
        if len(iri.encode()) > 4096:
            raise HttpError(400, "the IRI is longer than 4096 bytes")
        try:
            NamedNode(iri)
        except ValueError as err:
            raise HttpError(400, f"not a valid absolute IRI {iri[:200]!r}: {err}") from None
        mime = self._linked_mime(linked.OFFERS)
        status, ctype, body = self.server.pool.run(
            {"kind": "describe", "iri": iri, "mime": mime, "max_rows": self.server.cfg.max_rows},
            self.client_address[0],
        )
        self._send(status, ctype, body, self._linked_headers(ctype))

    def _page(self, method: str, params: dict[str, list[str]]) -> None:
        if method != "GET":
            raise HttpError(405, "the query page is read with GET", {"Allow": "GET, HEAD"})
        self._static_file("index.html")

    def _static(self, method: str, params: dict[str, list[str]]) -> None:
        self._static_file(self._split()[0][len("/static/"):])

    def _static_file(self, name: str) -> None:
        if not re.fullmatch(r"[a-z0-9_-]+\.(html|js|css)", name):
            raise HttpError(404, "no such file")
        path = STATIC_DIR / name
        if not path.is_file():
            raise HttpError(404, "no such file")
        ctype = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
        self._send(200, ctype, path.read_bytes(), {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"})


# -- starting -----------------------------------------------------------------------------------------
def write_dataset(quads: Iterable[Quad], directory: str | None = None) -> str:
    """Write quads to a temporary N-Quads file for the zygote to load; returns its path."""
    fd, path = tempfile.mkstemp(suffix=".nq", prefix="threatgraph-serve-", dir=directory)
    with os.fdopen(fd, "wb") as fh:
        fh.write(serialize(quads, format=RdfFormat.N_QUADS) or b"")
    return path


@dataclass
class Running:
    """A server started in a background thread (tests, benchmarks)."""

    server: SparqlServer
    thread: threading.Thread
    cleanup: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        for p in self.cleanup:
            with contextlib.suppress(OSError):
                os.unlink(p)


def start(cfg: ServerConfig, dataset_path: str) -> Running:
    """Start a server in a daemon thread (``cfg.port`` 0 picks a free port)."""
    srv = SparqlServer(cfg, dataset_path)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    th.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not th.is_alive():
        time.sleep(0.01)
    return Running(srv, th)
