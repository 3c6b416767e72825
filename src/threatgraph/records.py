"""Hand-written record classes: what ``@dataclass`` generates, without generating it (issue 14).

``@dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__`` (and ``__hash__``,
``__setattr__`` / ``__delattr__`` when frozen) of each class and compiles it with ``exec`` when the
module is imported: ~3 M instructions per class, in every process (the ``.pyc`` cannot hold them). A
record class here writes its ``__init__`` out and lists its fields in ``_fields``; the other methods
come from :class:`Record` / :class:`FrozenRecord`, with the behaviour of the dataclass they replace:

* ``repr``: ``Name(field=value, ...)`` (the class's ``__qualname__``; fields in ``_norepr`` left out);
* ``==``: same class and equal field values (in ``_fields`` order), else ``NotImplemented``;
* :class:`FrozenRecord`: assigning or deleting an attribute raises :class:`FrozenInstanceError` (an
  ``AttributeError``), and ``hash`` is that of the tuple of field values; a mutable :class:`Record` is
  unhashable, as an ``eq=True`` dataclass is.

>>> class P(FrozenRecord):
...     _fields = ("x", "y")
...     def __init__(self, x: int, y: int = 0) -> None:
...         set_fields(self, x=x, y=y)
>>> p = P(1)
>>> p, p == P(1, 0), p == P(1, 2), hash(p) == hash((1, 0))
(P(x=1, y=0), True, False, True)
>>> p.x = 2
Traceback (most recent call last):
  ...
threatgraph.records.FrozenInstanceError: cannot assign to field 'x'
"""

from __future__ import annotations

from typing import Any, ClassVar


class FrozenInstanceError(AttributeError):
    """An attribute of a frozen record was assigned or deleted (as :class:`dataclasses.FrozenInstanceError`)."""


def set_fields(obj: object, **values: Any) -> None:
    """Set the fields of a new record (also of a frozen one)."""
    obj.__dict__.update(values)


class Record:
    """A record with ``__repr__`` and ``__eq__`` over its ``_fields`` (a mutable, unhashable record)."""

    _fields: ClassVar[tuple[str, ...]] = ()
    """The fields, in the order of ``__init__``'s parameters (``repr`` and ``==`` follow it)."""
    _norepr: ClassVar[frozenset[str]] = frozenset()
    """Fields ``repr`` leaves out (``field(repr=False)``)."""

    def _values(self) -> tuple[Any, ...]:
        d = self.__dict__
        return tuple(d[n] for n in self._fields)

    def __repr__(self) -> str:
        d = self.__dict__
        inner = ", ".join(f"{n}={d[n]!r}" for n in self._fields if n not in self._norepr)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class FrozenRecord(Record):
    """A record whose attributes cannot be assigned or deleted once made; hashable by its field values."""

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())
