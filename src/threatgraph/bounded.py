"""Bounded readers and parsers for untrusted JSON, YAML and gzip input (see docs/limits.md).

Every model file in an interchange format (OTM, Threat Dragon, Threagile and its includes) and every
knowledge source (STIX JSON, ATLAS YAML, gzip) is read through these functions, so that hostile input
gets one clear message naming the file (and line or JSON pointer) instead of a traceback, a hang or a
memory exhaustion. The limits come from environment variables, read on every call:

=====================================  ===========  =================================================
variable                               default      bounds
=====================================  ===========  =================================================
``THREATGRAPH_MAX_DEPTH``              100          nesting depth of a JSON/YAML document
``THREATGRAPH_MAX_NODES``              2000000      values of a YAML document with aliases expanded
``THREATGRAPH_MAX_NUMBER_DIGITS``      1000         digits of one number
``THREATGRAPH_MAX_INPUT_BYTES``        268435456    bytes of one model file, and of all its includes
``THREATGRAPH_MAX_INCLUDES``           100          files a Threagile model may include (in total)
``THREATGRAPH_MAX_DECOMPRESSED_BYTES`` 536870912    bytes of a knowledge source (gunzipped, downloaded)
=====================================  ===========  =================================================

>>> load_json('{"a": [1, 2.5, "x"]}', "m.json")
{'a': [1, 2.5, 'x']}
>>> load_json('{"a": NaN}', "m.json")
Traceback (most recent call last):
...
threatgraph.errors.InputError: m.json:1: the number NaN is not allowed (not a finite number)
  hint: write a finite number, or quote the value as a string
>>> load_yaml("a: &x [1, 2]\\nb: *x\\n", "m.yaml")
{'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import stat
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threatgraph.errors import InputError

if TYPE_CHECKING:
    import yaml

_DEFAULTS: dict[str, int] = {
    "THREATGRAPH_MAX_DEPTH": 100,
    "THREATGRAPH_MAX_NODES": 2_000_000,
    "THREATGRAPH_MAX_NUMBER_DIGITS": 1000,
    "THREATGRAPH_MAX_INPUT_BYTES": 256 * 1024 * 1024,
    "THREATGRAPH_MAX_INCLUDES": 100,
    "THREATGRAPH_MAX_DECOMPRESSED_BYTES": 512 * 1024 * 1024,
}


@dataclass(frozen=True)
class Limits:
    """The input limits in force (:func:`limits` reads them from the environment)."""

    depth: int
    nodes: int
    digits: int
    input_bytes: int
    includes: int
    decompressed_bytes: int


def _env(name: str) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return _DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not a whole number",
                         hint=f"set it to a positive number (default {_DEFAULTS[name]}) or unset it") from None
    if value <= 0:
        raise InputError(f"environment variable {name}={raw!r} must be positive",
                         hint=f"the default is {_DEFAULTS[name]}")
    return value


def limits() -> Limits:
    """The limits from ``THREATGRAPH_MAX_*`` environment variables, else the defaults.

    >>> limits().depth
    100
    """
    return Limits(
        depth=_env("THREATGRAPH_MAX_DEPTH"),
        nodes=_env("THREATGRAPH_MAX_NODES"),
        digits=_env("THREATGRAPH_MAX_NUMBER_DIGITS"),
        input_bytes=_env("THREATGRAPH_MAX_INPUT_BYTES"),
        includes=_env("THREATGRAPH_MAX_INCLUDES"),
        decompressed_bytes=_env("THREATGRAPH_MAX_DECOMPRESSED_BYTES"),
    )


def _raise(error: type[InputError], message: str, hint: str) -> InputError:
    return error(message, hint=hint)


# -- files ----------------------------------------------------------------------------------------

def read_regular(path: Path, name: str, *, max_bytes: int | None = None,
                 error: type[InputError] = InputError, regular_only: bool = True,
                 limit_var: str = "THREATGRAPH_MAX_INPUT_BYTES") -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``max_bytes`` (default: the limit).

    Devices (``/dev/zero``), FIFOs and directories are refused before anything is read, so a hostile
    name cannot block or exhaust memory; with ``regular_only=False`` pipes and devices are read (process
    substitution), but never more than ``max_bytes``.
    """
    cap = limits().input_bytes if max_bytes is None else max_bytes
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode) or (regular_only and not stat.S_ISREG(st.st_mode)):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise _raise(error, f"{name}: {kind}", "name a model file")
        if st.st_size > cap:
            raise _too_big(error, name, st.st_size, cap, limit_var)
        with path.open("rb") as fh:
            data = fh.read(cap + 1)
    except OSError as err:
        raise _raise(error, f"{name}: cannot read: {err.strerror or err}", "check the path") from err
    if len(data) > cap:
        raise _too_big(error, name, len(data), cap, limit_var)
    return data


def _too_big(error: type[InputError], name: str, size: int, cap: int, limit_var: str) -> InputError:
    return error(f"{name}: {size} bytes or more, above the limit of {cap} bytes",
                 hint=f"raise {limit_var} if the file is genuine (see docs/limits.md)")


def gunzip(raw: bytes, name: str, *, max_bytes: int | None = None,
           error: type[InputError] = InputError) -> bytes:
    """Decompress gzip data (several members allowed), refusing more than ``max_bytes`` of output.

    >>> import gzip
    >>> gunzip(gzip.compress(b"abc") + gzip.compress(b"def"), "x.gz")
    b'abcdef'
    >>> gunzip(gzip.compress(b"0" * 5000), "bomb.gz", max_bytes=1000)
    Traceback (most recent call last):
    ...
    threatgraph.errors.InputError: bomb.gz: decompresses to more than 1000 bytes (the limit)
      hint: raise THREATGRAPH_MAX_DECOMPRESSED_BYTES if the file is genuine (see docs/limits.md)
    """
    cap = limits().decompressed_bytes if max_bytes is None else max_bytes
    out = bytearray()
    buf = raw
    try:
        while buf[:2] == b"\x1f\x8b":
            d = zlib.decompressobj(31)
            out += d.decompress(buf, cap - len(out) + 1)
            if len(out) > cap:
                raise error(f"{name}: decompresses to more than {cap} bytes (the limit)",
                            hint="raise THREATGRAPH_MAX_DECOMPRESSED_BYTES if the file is genuine "
                            "(see docs/limits.md)")
            if not d.eof:
                raise error(f"{name}: corrupt or truncated gzip data: the stream ends early",
                            hint="download the file again")
            buf = d.unused_data
    except zlib.error as err:
        raise error(f"{name}: corrupt or truncated gzip data: {err}", hint="download the file again") from err
    return bytes(out)


# -- JSON -----------------------------------------------------------------------------------------

def _line_of(text: str, needle: str) -> str:
    at = text.find(needle)
    return f":{text.count(chr(10), 0, at) + 1}" if at >= 0 else ""


def load_json(data: str | bytes, name: str, *, error: type[InputError] = InputError) -> Any:
    """``json.loads`` bounded: NaN/Infinity, out-of-range or over-long numbers and deep nesting are refused.

    Syntax errors are raised as :class:`json.JSONDecodeError` (the callers word them for their format);
    every limit is an ``error`` (``InputError`` by default) naming ``name``, the line or the JSON pointer.
    """
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    lim = limits()

    def bad_number(literal: str, why: str) -> InputError:
        shown = literal if len(literal) <= 40 else f"{literal[:20]}…({len(literal)} characters)"
        return error(f"{name}{_line_of(text, literal)}: the number {shown} is not allowed ({why})",
                     hint="write a finite number, or quote the value as a string")

    def parse_constant(literal: str) -> Any:
        raise bad_number(literal, "not a finite number")

    def parse_float(literal: str) -> float:
        if len(literal) > lim.digits:
            raise bad_number(literal, f"more than {lim.digits} characters")
        value = float(literal)
        if not math.isfinite(value):
            raise bad_number(literal, "out of the range of a double")
        return value

    def parse_int(literal: str) -> int:
        if len(literal) > lim.digits:
            raise bad_number(literal, f"more than {lim.digits} digits")
        return int(literal)

    # The cyclic GC is paused while the tree is built and walked: a JSON tree has no cycles, and the
    # collections its ~10^5-10^6 new containers trigger cost ~0.1-0.2 s of ATT&CK 18.1's parse (45 MB).
    paused = gc.isenabled()
    gc.disable()
    try:
        try:
            doc = json.loads(text, parse_constant=parse_constant, parse_float=parse_float, parse_int=parse_int)
        except RecursionError:
            raise _depth_error(error, name, "", lim.depth) from None
        within = _json_within(doc, lim)
    finally:
        if paused:
            gc.enable()
    if not within:  # the general walk words the message (pointer of the offending value)
        check_tree(doc, name, error=error)
    return doc


def _json_within(doc: Any, lim: Limits) -> bool:
    """True when a parsed JSON document is within the depth and value-count limits.

    A JSON document is a tree (no shared values, unlike YAML aliases) and its numbers were already
    bounded by the parse hooks, so this only visits containers, with exact type tests: ~6x faster than
    :func:`check_tree` on ATT&CK 18.1 (136,266 containers, 617,979 values). It counts values as
    :func:`check_tree` does (a mapping: itself, its keys and its values; a list: itself and its items),
    so a document it passes, :func:`check_tree` passes; otherwise :func:`check_tree` finds and words the
    problem.

    >>> lim = limits()
    >>> _json_within({"a": [1, {"b": 2}]}, lim), _json_within([[[1]]], Limits(2, 10, 10, 10, 10, 10))
    (True, False)
    """
    if type(doc) is not dict and type(doc) is not list:
        return True
    max_depth = lim.depth
    total = 1  # the root; every container is counted once below as a child of its parent
    level: list[Any] = [doc]
    depth = 1
    while level:
        if depth > max_depth:
            return False
        nxt: list[Any] = []
        for obj in level:
            if type(obj) is dict:
                total += 2 * len(obj)  # keys and values
                kids = [v for v in obj.values() if type(v) is dict or type(v) is list]
            else:
                total += len(obj)
                kids = [v for v in obj if type(v) is dict or type(v) is list]
            if kids:
                nxt.extend(kids)
        if total > lim.nodes:
            return False
        level = nxt
        depth += 1
    return True


def _depth_error(error: type[InputError], name: str, where: str, depth: int) -> InputError:
    return error(f"{name}{where}: nested more than {depth} levels deep (the limit)",
                 hint="raise THREATGRAPH_MAX_DEPTH if the file is genuine (see docs/limits.md)")


# -- YAML -----------------------------------------------------------------------------------------

@cache
def _bounded_loader() -> Any:
    """PyYAML's safe loader with limits (:class:`_BoundedLoader`), made on first use: yaml is imported here,
    not with this module (the knowledge importers import it, and every analysis reads release records
    through them: ~40 ms of start-up for nothing when no YAML is read)."""
    import yaml

    class _BoundedLoader(yaml.SafeLoader):
        """PyYAML's safe loader with a nesting-depth limit and value errors reported at their line."""

        max_depth = 100

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > self.max_depth:
                    event = self.peek_event()  # type: ignore[no-untyped-call]
                    raise yaml.composer.ComposerError(
                        None, None, f"nested more than {self.max_depth} levels deep (the limit, "
                        "THREATGRAPH_MAX_DEPTH)", event.start_mark)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):  # YAML (and Threagile, with Go's yaml.v3) refuse duplicate keys
                seen: dict[tuple[str, str], Any] = {}
                for key_node, _ in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                        first = seen.setdefault((key_node.tag, key_node.value), key_node.start_mark)
                        if first is not key_node.start_mark:
                            raise yaml.constructor.ConstructorError(
                                None, None, f"duplicate key {_short(key_node.value)!r} (first at line {first.line + 1 if first else '?'})",
                                key_node.start_mark)
            return super().construct_mapping(node, deep)

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, OverflowError) as err:  # impossible dates, 5000-digit integers, …
                why = "a number of more than 4300 digits" if "Exceeds the limit" in str(err) else str(err)
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read the value {_short(node.value)!s}: {why}", node.start_mark) from None

    return _BoundedLoader


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def load_yaml(data: str | bytes, name: str, *, error: type[InputError] = InputError) -> Any:
    """``yaml.safe_load`` bounded: nesting depth, alias expansion (billion laughs), recursive aliases,
    non-finite floats and over-long numbers are refused; impossible dates and other values that cannot be
    constructed are :class:`yaml.MarkedYAMLError` with their line (the callers word syntax errors).
    """
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    lim = limits()
    loader = _bounded_loader()(text)
    loader.max_depth = lim.depth
    try:
        doc = loader.get_single_data()
    except RecursionError:
        raise _depth_error(error, name, "", lim.depth) from None
    finally:
        loader.dispose()
    check_tree(doc, name, error=error)
    return doc


# -- the parsed tree ------------------------------------------------------------------------------

def _pointer(chain: Any) -> str:
    parts: list[str] = []
    while chain is not None:
        chain, key = chain
        parts.append(str(key).replace("~", "~0").replace("/", "~1"))
    parts.reverse()
    if len(parts) > 8:
        parts = [*parts[:6], "…", parts[-1]]
    return "/" + "/".join(parts)


def check_tree(doc: Any, name: str, *, error: type[InputError] = InputError) -> None:
    """Refuse a parsed document that is too deep, too large once YAML aliases are expanded, recursive
    (an alias inside its own anchor), or that holds a non-finite float or an over-long integer.

    Linear in the size of the parsed (unexpanded) document: shared values are measured once.

    >>> a = [1, 2]; check_tree({"x": [a, a]}, "ok.yaml")
    >>> loop: list[Any] = []; loop.append(loop); check_tree(loop, "loop.yaml")
    Traceback (most recent call last):
    ...
    threatgraph.errors.InputError: loop.yaml: /0: a YAML alias refers to a value that contains it (a recursive document)
      hint: threatgraph reads tree-shaped documents only: remove the alias
    """
    lim = limits()
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, int, Any, bool]] = [(doc, 1, None, False)]
    max_bits = int(lim.digits * 3.33) + 1
    while stack:
        obj, depth, chain, done = stack.pop()
        if isinstance(obj, (Mapping, list)):
            oid = id(obj)
            children = list(obj.values()) if isinstance(obj, Mapping) else obj
            if done:
                on_path.discard(oid)
                total = 1 + (len(obj) if isinstance(obj, Mapping) else 0)
                for c in children:
                    total += size.get(id(c), 1) if isinstance(c, (Mapping, list)) else 1
                if total > lim.nodes:
                    raise error(f"{name}: {_pointer(chain) if chain else '/'}: more than {lim.nodes} values once "
                                "YAML aliases are expanded (the limit)",
                                hint="an alias bomb? raise THREATGRAPH_MAX_NODES if the file is genuine "
                                "(see docs/limits.md)")
                size[oid] = total
                continue
            if oid in size:
                continue
            if oid in on_path:
                raise error(f"{name}: {_pointer(chain)}: a YAML alias refers to a value that contains it "
                            "(a recursive document)",
                            hint="threatgraph reads tree-shaped documents only: remove the alias")
            if depth > lim.depth:
                raise _depth_error(error, name, f": {_pointer(chain)}", lim.depth)
            on_path.add(oid)
            stack.append((obj, depth, chain, True))
            keys = list(obj.keys()) if isinstance(obj, Mapping) else range(len(obj))
            for k, c in zip(keys, children, strict=True):
                stack.append((c, depth + 1, (chain, k), False))
        elif isinstance(obj, float) and not math.isfinite(obj):
            raise error(f"{name}: {_pointer(chain) if chain else '/'}: the number {obj} is not allowed "
                        "(not a finite number)", hint="write a finite number, or quote the value as a string")
        elif isinstance(obj, int) and not isinstance(obj, bool) and obj.bit_length() > max_bits:
            raise error(f"{name}: {_pointer(chain) if chain else '/'}: a number of more than {lim.digits} "
                        "digits is not allowed", hint="quote the value as a string")


_MARK_RE = re.compile(r"line (\d+), column (\d+)")


def yaml_where(err: yaml.YAMLError) -> str:
    """``:LINE:COL`` of a YAML error (1-based), or ``""``."""
    mark = getattr(err, "problem_mark", None)
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def yaml_problem(err: yaml.YAMLError) -> str:
    """The problem of a YAML error without PyYAML's multi-line location text."""
    problem = getattr(err, "problem", None)
    return str(problem) if problem else _MARK_RE.sub("", str(err)).strip()
