"""``json.dumps(obj, indent=2, ensure_ascii=False)``, the same text, written without the standard library's
indenting encoder: that one is pure Python and passes every token up through one generator per level of
nesting (the C encoder runs only without indentation in Python 3.11). The SARIF, Threat Dragon and OTM
exports are indented documents of 5–50 MB at 1 k–10 k elements; written here each value is one append.

>>> import json
>>> doc = {"a": [1, 2.5, None, True, "é\\n"], "b": {}, "c": [], "d": {"e": {"f": [[]]}}, 3: False}
>>> dumps_indent2(doc) == json.dumps(doc, indent=2, ensure_ascii=False)
True
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any

_INF = float("inf")


def _float(o: float) -> str:
    """As the standard encoder writes a float (``allow_nan``: NaN, Infinity)."""
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _key(k: object) -> str:
    """A dict key as the standard encoder turns it into a string (no ``skipkeys``)."""
    if isinstance(k, str):
        return k
    if isinstance(k, float):
        return _float(k)
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {k.__class__.__name__}")


def _scalar(o: object) -> str | None:
    """The text of a scalar, None for a list, tuple or dict."""
    if isinstance(o, str):
        return encode_basestring(o)
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, float):
        return _float(o)
    if isinstance(o, (list, tuple, dict)):
        return None
    return json.dumps(o)  # raises TypeError as the standard encoder does


def _emit(o: Any, out: list[str], nl: str) -> None:
    """Append the text of ``o`` to ``out``; ``nl``: a newline and the indentation of the line ``o`` is on."""
    if isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = nl + "  "
        sep = "{" + inner
        for k, v in o.items():
            t = type(v)
            if t is str:
                out.append(f"{sep}{encode_basestring(_key(k))}: {encode_basestring(v)}")
            elif t is int:
                out.append(f"{sep}{encode_basestring(_key(k))}: {int.__repr__(v)}")
            else:
                s = _scalar(v)
                if s is not None:
                    out.append(f"{sep}{encode_basestring(_key(k))}: {s}")
                else:
                    out.append(f"{sep}{encode_basestring(_key(k))}: ")
                    _emit(v, out, inner)
            sep = "," + inner
        out.append(nl + "}")
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        inner = nl + "  "
        sep = "[" + inner
        for v in o:
            if type(v) is str:
                out.append(sep + encode_basestring(v))
            else:
                s = _scalar(v)
                if s is not None:
                    out.append(sep + s)
                else:
                    out.append(sep)
                    _emit(v, out, inner)
            sep = "," + inner
        out.append(nl + "]")
    else:
        s = _scalar(o)
        assert s is not None
        out.append(s)


def dumps_indent2(obj: Any) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False)`` (``obj`` without cycles)."""
    out: list[str] = []
    _emit(obj, out, "\n")
    return "".join(out)


__all__ = ["dumps_indent2"]
