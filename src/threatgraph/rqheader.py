"""The ``# key: value`` header of ``.rq`` files, shared by named queries and rules.

The header is the block of comment lines at the top; blank lines and comments that are not
``key: value`` are skipped. The first other line starts the body.

>>> h = read_header("# name: x\\n# param: a\\n\\n# param: b\\nSELECT 1", "x.rq", repeatable=("param",))
>>> h.fields, [(r.value, r.where) for r in h.repeated], h.body
({'name': 'x'}, [('a', 'x.rq:2'), ('b', 'x.rq:4')], 'SELECT 1')
>>> read_header("# name: x\\n# name: y\\n", "x.rq")
Traceback (most recent call last):
...
threatgraph.errors.RuleError: x.rq:2: header key 'name' given twice
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from threatgraph.errors import RuleError

_HEADER = re.compile(r"^#\s*([a-z][a-z0-9_-]*)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class HeaderLine:
    """One ``# key: value`` line; ``where`` is ``path:lineno``."""

    key: str
    value: str
    where: str


@dataclass(frozen=True)
class RqHeader:
    """A parsed header: single-valued ``fields``, the ``repeated`` lines in order, and the body text."""

    fields: dict[str, str]
    repeated: tuple[HeaderLine, ...]
    body: str
    body_line: int = 1
    """The 1-based line of ``text`` where the body starts (to map a parser's line numbers back)."""
    lines: dict[str, int] = field(default_factory=dict)
    """The line of each key (the first line for repeatable keys)."""


def read_header(text: str, path: str, *, repeatable: Collection[str] = ()) -> RqHeader:
    """Split ``text`` into header and body; a key given twice (not ``repeatable``) is a RuleError."""
    fields: dict[str, str] = {}
    repeated: list[HeaderLine] = []
    body: list[str] = []
    in_header = True
    body_line = 1
    lines: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if in_header:
            if not line.strip():
                continue
            m = _HEADER.match(line)
            if m:
                key, value = m.group(1), m.group(2)
                lines.setdefault(key, lineno)
                if key in repeatable:
                    repeated.append(HeaderLine(key, value, f"{path}:{lineno}"))
                    continue
                if key in fields:
                    raise RuleError(f"{path}:{lineno}: header key {key!r} given twice")
                fields[key] = value
                continue
            if line.lstrip().startswith("#"):
                continue
            in_header = False
            body_line = lineno
        body.append(line)
    return RqHeader(fields, tuple(repeated), "\n".join(body), body_line, lines)
