"""Loading the bridge mappings (``ontology/mappings/*.ttl``) into ``graph/bridge``: what every analysis needs of
:mod:`threatgraph.knowledge.bridge`, kept apart from its parsing, checking and coverage (start-up, issue 14:
an analysis does not import those)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyoxigraph as ox

from threatgraph.errors import InputError
from threatgraph.resources import ontology_dir
from threatgraph.store.base import Store
from threatgraph.terms import graph_iri

BRIDGE_GRAPH = graph_iri("bridge")
"""Named graph the mapping files are loaded into."""


def mappings_dir() -> Path:
    """Directory of the shipped mapping files (``ontology/mappings``)."""
    return ontology_dir() / "mappings"


def mapping_files(directory: Path | None = None) -> list[Path]:
    """The ``*.ttl`` mapping files, sorted."""
    return sorted((directory or mappings_dir()).glob("*.ttl"))


def _parse_file(path: Path) -> list[ox.Triple]:
    try:
        return [q.triple for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)]
    except SyntaxError as err:
        raise InputError(
            f"{path}: invalid Turtle: {err}", hint="fix the syntax at the reported line and column"
        ) from err
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err}") from err


BRIDGE_CACHE_VERSION = "1"
"""Bumped whenever what :func:`load_bridge` caches changes (part of the cache key)."""


def _bridge_cache(files: Sequence[Path]) -> Path:
    """The cache file of the mapping files' N-Triples: keyed by the files' names and contents (an edited,
    added or removed mapping file gets a new entry) and the installed pyoxigraph, which parses them."""
    import hashlib

    from threatgraph.cachefiles import cache_dir, library_stamp

    h = hashlib.sha256(f"threatgraph-bridge/{BRIDGE_CACHE_VERSION}\n{library_stamp('pyoxigraph')}\n".encode())
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err}") from err
        h.update(path.name.encode() + b"\0" + hashlib.sha256(data).digest())
    return cache_dir() / "bridge" / f"{h.hexdigest()}.nt"


def load_bridge(store: Store, paths: Sequence[Path] | None = None) -> int:
    """Replace ``graph/bridge`` with the mapping files; return the number of triples loaded.

    The files' N-Triples are cached (:func:`_bridge_cache`, checked by digest when read): every analysis
    loads the bridge, and parsing the Turtle files and loading them through a scratch store cost ~20 ms of
    each (issue 14). A cache file that is missing, damaged or cannot be written is rebuilt or skipped."""
    from threatgraph.cachefiles import read_checked, write_checked
    from threatgraph.store.embedded import EmbeddedStore

    files = list(paths) if paths is not None else mapping_files()
    cache = _bridge_cache(files)
    data = read_checked(cache)
    if data is not None and isinstance(store, EmbeddedStore):
        store.drop_graph(BRIDGE_GRAPH)
        try:  # threatgraph's own output, digest-checked: parsed without validating IRIs again
            store.load(data, "application/n-triples", BRIDGE_GRAPH, trusted=True)
            return data.count(b"\n")
        except InputError:  # not what write_checked wrote after all: parsed again below
            store.drop_graph(BRIDGE_GRAPH)
            data = None
    if data is None:
        triples: list[ox.Triple] = []
        for path in files:
            triples.extend(_parse_file(path))
        data = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b""
        write_checked(cache, data)
    store.replace_graph(BRIDGE_GRAPH, data, "application/n-triples")
    return data.count(b"\n")


