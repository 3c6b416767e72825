"""Stores: a narrow protocol (:class:`~threatgraph.store.base.Store`) and its backends.

The engine and everything above it know only the protocol; :func:`open_store` picks a backend.
"""

from __future__ import annotations

from threatgraph.store.base import Row, Store, Term
from threatgraph.store.embedded import EmbeddedStore


def open_store(location: str | None = None) -> Store:
    """Open the embedded store: in memory when ``location`` is None, else on disk in that directory.

    >>> s = open_store()
    >>> s.graph_names()
    []
    """
    return EmbeddedStore(location)


__all__ = ["EmbeddedStore", "Row", "Store", "Term", "open_store"]
