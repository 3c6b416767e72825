"""Stores: a narrow protocol (:class:`~threatgraph.store.base.Store`) and its backends.

The engine and everything above it know only the protocol; :func:`open_store` picks a backend.
"""

from __future__ import annotations

from typing import Any

from threatgraph.store.base import Row, Store, Term
from threatgraph.store.embedded import EmbeddedStore


def open_store(location: str | None = None, endpoint: str | None = None, **remote: Any) -> Store:
    """Open the embedded store (in memory when ``location`` is None, else on disk in that directory),
    or a remote SPARQL 1.1 store when ``endpoint`` is given (``remote`` options go to
    :class:`~threatgraph.store.remote.RemoteStore`: ``user``, ``password``, ``token``, …).
    ``must_exist=True``: the directory must hold a store already (read commands); a non-empty directory that
    is not a store is always refused (:func:`~threatgraph.store.embedded.check_location`).
    ``read_only=True`` (read commands): opened without the write lock, so reading changes nothing in the
    directory (the manifest ``analyze --store`` reads stays current, docs/performance.md).

    >>> s = open_store()
    >>> s.graph_names()
    []
    """
    must_exist = bool(remote.pop("must_exist", False))
    read_only = bool(remote.pop("read_only", False))
    if endpoint:
        from threatgraph.store.remote import RemoteStore

        return RemoteStore(endpoint, **remote)
    return EmbeddedStore(location, must_exist=must_exist, read_only=read_only)


__all__ = ["EmbeddedStore", "Row", "Store", "Term", "open_store"]
