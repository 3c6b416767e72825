"""Which remote endpoints a query or update served by ``threatgraph serve`` may reach (``SERVICE``, ``LOAD``).

The decision is taken on the **parsed** request, not on its tokens: the text is parsed with rdflib's
SPARQL 1.1 grammar and the whole parse tree (sub-queries, ``EXISTS``, ``OPTIONAL``, ``MINUS``, every
update operation) is walked for ``SERVICE`` patterns and ``LOAD`` operations. Each target must be an
absolute ``http``/``https`` IRI whose scheme, host and port match an allow-list entry and whose path
starts with the entry's path; variables, relative IRIs, ``file:`` and anything else are refused.

Two parsers read the same text here (rdflib for the check, Oxigraph to run it), so the text is first
made unambiguous for both, failing closed:

* ``\\uXXXX``/``\\UXXXXXXXX`` codepoint escapes are decoded once, here, and the decoded text is what
  Oxigraph runs; an escape of an ASCII character other than a letter or digit (``\\u0023`` = ``#``,
  ``\\u0027`` = ``'`` ...) is refused, because the parsers disagree on whether it delimits anything.
* A bare carriage return (not followed by a line feed) is refused when the text needs parsing: SPARQL
  ends a ``#`` comment there, rdflib does not.
* A text that names ``SERVICE`` (or ``LOAD`` in an update) anywhere, even in a string or comment, is
  parsed; if rdflib cannot parse it, it is refused (HTTP 400) rather than run.

Texts that do not contain the words at all (the common case) skip the parser: without the keyword
Oxigraph cannot call anything.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class Refused(Exception):
    """A request the guard does not let through: HTTP ``status`` and a message saying what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- allow-list entries ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    """The parts of an ``http(s)`` IRI that decide where a connection goes."""

    scheme: str
    host: str
    port: int
    path: str


_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\]")
_DEFAULT_PORT = {"http": 80, "https": 443}


def endpoint_of(iri: str) -> Endpoint | None:
    """Scheme, host, port and path of an absolute ``http(s)`` IRI, or None if it is anything else.

    Refused (None): other schemes, user info (``http://allowed@evil/``), hosts with characters outside
    ``[a-z0-9.-]`` (percent-escapes, backslashes, Unicode), bad ports, dot segments, control characters.

    >>> endpoint_of("https://Query.Wikidata.org/sparql")
    Endpoint(scheme='https', host='query.wikidata.org', port=443, path='/sparql')
    >>> endpoint_of("http://example.org@127.0.0.1/") is None
    True
    """
    if any(ord(c) <= 0x20 or c in '\\<>"{}|^`' for c in iri):
        return None
    try:
        parts = urllib.parse.urlsplit(iri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORT or "@" in parts.netloc or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if not _HOST.fullmatch(host) or (parts.netloc.count(":") > 1 and not host.startswith("[")):
        return None
    path = parts.path or "/"
    segments = urllib.parse.unquote(path).split("/")
    if any(s in (".", "..") for s in segments):
        return None
    return Endpoint(scheme, host, port if port is not None else _DEFAULT_PORT[scheme], path)


def check_allow_entry(entry: str) -> Endpoint:
    """An ``--allow-service``/``--allow-load`` value as an endpoint; ValueError says what is wrong."""
    ep = endpoint_of(entry)
    if ep is None:
        raise ValueError(
            f"{entry!r} is not an absolute http:// or https:// IRI with a plain host name "
            "(e.g. https://query.wikidata.org/sparql); file: and other schemes are never allowed"
        )
    return ep


def allowed(iri: str, allow: Sequence[str]) -> bool:
    """True if ``iri`` goes to the scheme, host and port of an allow-list entry, under its path.

    >>> allowed("http://data.example.org/a.ttl", ["http://data.example.org/"])
    True
    >>> allowed("http://data.example.org.evil.com/a.ttl", ["http://data.example.org"])
    False
    """
    target = endpoint_of(iri)
    if target is None:
        return False
    for entry in allow:
        ep = endpoint_of(entry)
        if ep is None or (ep.scheme, ep.host, ep.port) != (target.scheme, target.host, target.port):
            continue
        if ep.path.endswith("/"):
            if target.path.startswith(ep.path):
                return True
        elif target.path == ep.path or target.path.startswith(ep.path + "/"):
            return True
    return False


# -- text normalisation ------------------------------------------------------------------------------
_ESCAPE = re.compile(r"\\\\|\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})|\\[uU]")


def decode_codepoint_escapes(text: str) -> str:
    """Decode ``\\uXXXX``/``\\UXXXXXXXX`` once (``\\\\`` is kept), refusing escapes of syntax characters.

    >>> decode_codepoint_escapes(r"SELECT * { BIND('caf\\u00e9' AS ?x) }")
    "SELECT * { BIND('café' AS ?x) }"
    """

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "\\\\":
            return m.group(0)
        digits = m.group(1) or m.group(2)
        if digits is None:
            raise Refused(400, f"malformed codepoint escape {m.group(0)!r} at offset {m.start()}: "
                               "use \\uXXXX (4 hex digits) or \\UXXXXXXXX (8)")
        cp = int(digits, 16)
        if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            raise Refused(400, f"the codepoint escape {m.group(0)!r} at offset {m.start()} is not a Unicode character")
        ch = chr(cp)
        if cp < 0x80 and not ch.isalnum():
            raise Refused(
                400, f"the codepoint escape {m.group(0)!r} at offset {m.start()} stands for {ch!r}, a character "
                "with a meaning in SPARQL syntax; write it directly (with a string escape such as \\\" where needed)",
            )
        return ch

    return _ESCAPE.sub(sub, text) if "\\" in text else text


_BARE_CR = re.compile(r"\r(?!\n)")


def _keywords(update: bool) -> re.Pattern[str]:
    return re.compile(r"service|load" if update else r"service", re.IGNORECASE)


# -- the parse-tree walk -----------------------------------------------------------------------------
def _walk(node: Any) -> Iterator[Any]:
    """Every CompValue in a pyparsing/rdflib parse result (iteratively deep; no recursion limit)."""
    from pyparsing import ParseResults
    from rdflib.plugins.sparql.parserutils import CompValue

    stack: list[Any] = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, CompValue):
            yield cur
            stack.extend(cur.values())
        elif isinstance(cur, (ParseResults, list, tuple)):
            stack.extend(cur)
        elif isinstance(cur, Mapping):
            stack.extend(cur.values())


_PN_LOCAL_ESC = re.compile(r"\\([_~.\-!$&'()*+,;=/?#@%])")


def _targets(tree: Any, default_prefixes: Mapping[str, str]) -> list[tuple[str, list[str] | None]]:
    """(keyword, candidate IRIs or None for a non-IRI target) of every SERVICE and LOAD in a parse tree."""
    from rdflib.term import URIRef, Variable

    declared: dict[str, set[str]] = {}
    nodes = list(_walk(tree))
    for n in nodes:
        if n.name == "PrefixDecl":
            declared.setdefault(str(n.get("prefix") or ""), set()).add(str(n["iri"]))
    found: list[tuple[str, list[str] | None]] = []
    for n in nodes:
        if n.name == "ServiceGraphPattern":
            kw, term = "SERVICE", n.get("term")
        elif n.name == "Load":
            kw, term = "LOAD", n.get("iri")
        else:
            continue
        if isinstance(term, Variable) or term is None:
            found.append((kw, None))
        elif isinstance(term, URIRef):
            found.append((kw, [str(term)]))
        elif getattr(term, "name", None) == "pname":
            prefix = str(term.get("prefix") or "")
            local = _PN_LOCAL_ESC.sub(r"\1", str(term.get("localname") or ""))
            spaces = set(declared.get(prefix, set()))
            if prefix in default_prefixes:
                spaces.add(default_prefixes[prefix])
            found.append((kw, [ns + local for ns in sorted(spaces)] or None))
        else:
            found.append((kw, None))
    return found


def parse_tree(text: str, *, update: bool) -> Any:
    """rdflib's parse of a query/update (its own codepoint expansion bypassed: done by the caller)."""
    from pyparsing import ParseBaseException
    from rdflib.plugins.sparql.parser import Query, UpdateUnit

    try:
        return (UpdateUnit if update else Query).parse_string(text, parse_all=True)
    except ParseBaseException as err:
        what = "update" if update else "query"
        raise Refused(
            400, f"this {what} names SERVICE or LOAD and could not be checked: the SPARQL 1.1 grammar rejects it at "
            f"line {err.lineno}, column {err.col} ({err.msg}); correct it or remove the word "
            f"(even from strings and comments)",
        ) from None
    except RecursionError:
        raise Refused(400, "the request is nested too deeply to be checked") from None
    except (ValueError, TypeError, IndexError, KeyError) as err:  # a parse action rejected a term
        raise Refused(400, f"this request names SERVICE or LOAD and could not be checked: {err}") from None


def check_remote_access(
    text: str,
    *,
    allow_service: Sequence[str],
    allow_load: Sequence[str],
    update: bool,
    default_prefixes: Mapping[str, str] | None = None,
) -> str:
    """Return the text to run (codepoint escapes decoded) or raise :class:`Refused`.

    >>> check_remote_access("SELECT * { SERVICE <http://10.0.0.1/sparql> { ?s ?p ?o } }", allow_service=(), allow_load=(), update=False)
    Traceback (most recent call last):
    ...
    threatgraph.server_guard.Refused: SERVICE <http://10.0.0.1/sparql> is not allowed on this server (allowed: none; the operator can allow an endpoint with --allow-service)
    """
    text = decode_codepoint_escapes(text)
    if not _keywords(update).search(text):
        return text
    if _BARE_CR.search(text):
        raise Refused(400, "a carriage return not followed by a line feed is not accepted in a request that names "
                           "SERVICE or LOAD; end lines with LF or CRLF")
    tree = parse_tree(text, update=update)
    for kw, iris in _targets(tree, default_prefixes or {}):
        allow = allow_service if kw == "SERVICE" else allow_load
        option = "--allow-service" if kw == "SERVICE" else "--allow-load"
        listed = f"allowed: {', '.join(allow) or 'none'}; the operator can allow an endpoint with {option}"
        if iris is None:
            raise Refused(403, f"{kw} must name its target with an IRI on this server, not a variable or expression ({listed})")
        for iri in iris:
            if not allowed(iri, allow):
                raise Refused(403, f"{kw} <{iri}> is not allowed on this server ({listed})")
    return text


# -- a second wall: no network sockets at all in processes that need none ---------------------------------
_AUDIT_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
"""machine -> (AUDIT_ARCH_* value, number of the ``socket`` system call)."""


def deny_network_sockets() -> bool:
    """Make ``socket(2)`` fail with EACCES for every family but AF_UNIX, in this process and its children.

    A seccomp filter (Linux x86-64 and AArch64, no privileges needed): once set, nothing in the process,
    including Oxigraph's HTTP client, can open a TCP/UDP connection, whatever the query says. Returns
    False where it cannot be set (other systems); the parsed-request check still applies there.
    """
    import ctypes
    import errno
    import os
    import struct

    machine = os.uname().machine
    if sys_platform() != "linux" or machine not in _AUDIT_ARCH:
        return False
    arch, nr_socket = _AUDIT_ARCH[machine]

    def stmt(code: int, k: int) -> bytes:
        return struct.pack("HBBI", code, 0, 0, k)

    def jump(code: int, k: int, jt: int, jf: int) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EACCES
    prog = [
        stmt(ld_w_abs, 4),                    # 0: seccomp_data.arch
        jump(jeq_k, arch, 0, 5),              # 1: another ABI (i386 socketcall ...): deny -> 7
        stmt(ld_w_abs, 0),                    # 2: seccomp_data.nr
        jump(jge_k, 0x40000000, 3, 0),        # 3: x32 system calls: deny -> 7
        jump(jeq_k, nr_socket, 0, 3),         # 4: not socket(2): allow -> 8
        stmt(ld_w_abs, 16),                   # 5: seccomp_data.args[0] (low half): the address family
        jump(jeq_k, 1, 1, 0),                 # 6: AF_UNIX: allow -> 8
        stmt(ret_k, deny),                    # 7
        stmt(ret_k, allow),                   # 8
    ]
    code = b"".join(prog)
    buf = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        return False
    return bool(libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(fprog), 0, 0) == 0)


def sys_platform() -> str:
    import sys

    return sys.platform
