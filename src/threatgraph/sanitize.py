"""Neutralising model text in outputs: terminals, Markdown and spreadsheets (issue 11).

Labels, descriptions and ids come from model files written by others. Every renderer passes model text
through one of these functions at the point where it is emitted:

- :func:`terminal` for text printed to a terminal (table output, messages): control characters such as
  ESC (terminal escape sequences: window title, colours, cursor moves) and BEL, C1 controls and the
  Unicode bidirectional overrides are shown escaped (``\\x1b``), never sent raw;
- :func:`markdown` for a Markdown table cell, heading or list item (PR comments): no link, image, HTML
  or autolink can be formed from model text, pipes and newlines cannot break the table;
- :func:`csv_cell` for a CSV cell: OWASP's rule against formula injection, a leading apostrophe for
  every cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return.
"""

from __future__ import annotations

import os
import re
import sys

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def terminal(text: str) -> str:
    """``text`` with every control character but newline and tab written as an escape.

    >>> terminal("ok\\x1b]0;pwned\\x07 label\\u202e")
    'ok\\\\x1b]0;pwned\\\\x07 label\\\\u202e'
    >>> terminal("two\\nlines\\tand tabs")
    'two\\nlines\\tand tabs'
    """
    return _CONTROL.sub(_escape, text)


def terminal_columns(fallback: int = 80) -> int:
    """``shutil.get_terminal_size((fallback, …)).columns``: ``$COLUMNS`` when a positive integer, else the
    width of the terminal on ``sys.__stdout__``, else ``fallback``; without importing shutil (with bz2,
    lzma and fnmatch: ~7.5 M instructions of start-up, issue 14).

    >>> import shutil
    >>> terminal_columns(97) == shutil.get_terminal_size((97, 20)).columns
    True
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return fallback
    return size.columns or fallback


_MD_SPECIAL = re.compile(r"([\\\[\]|])")
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)")


def markdown(text: str) -> str:
    """Model text for one line of Markdown (a table cell, a heading, a list item).

    Brackets, pipes and backslashes are backslash-escaped (so ``[x](javascript:…)`` and
    ``![](https://…)`` render as text: no link or image without brackets), ``<``/``>``/``&`` become
    entities (no HTML, no ``<https://…>`` autolink), the colon of ``scheme://`` and the dot of ``www.``
    become entities (no GFM autolink), newlines become spaces and control characters are escaped. All of
    it renders as the original text.

    >>> print(markdown("[click](javascript:alert(1)) | ![t](https://evil.example/p.gif)"))
    \\[click\\](javascript:alert(1)) \\| !\\[t\\](https&#58;//evil.example/p.gif)
    >>> markdown("Model <b>store</b>\\nline two")
    'Model &lt;b&gt;store&lt;/b&gt; line two'
    """
    t = terminal(text.replace("\r\n", " ").replace("\r", " ").replace("\n", " "))
    t = t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    t = _MD_SPECIAL.sub(r"\\\1", t)
    t = _SCHEME.sub(r"\1&#58;", t)
    return t.replace("www.", "www&#46;")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection rule).

    >>> csv_cell("=HYPERLINK(1)"), csv_cell("-2+3+cmd|' /C calc'!A0"), csv_cell("\\t=1"), csv_cell("plain")
    ("'=HYPERLINK(1)", "'-2+3+cmd|' /C calc'!A0", "'\\t=1", 'plain')
    """
    return "'" + value if value.startswith(_FORMULA_START) else value
