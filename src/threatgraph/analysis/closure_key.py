"""The cache key of a compiled ontology (:mod:`threatgraph.analysis.closure` writes it,
:mod:`threatgraph.analysis.fastclosure` reads it), computed without importing rdflib or ``reasonable``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from threatgraph.cachefiles import library_stamp

if TYPE_CHECKING:
    from threatgraph.analysis.ontology import Ontology

CLOSURE_CACHE_VERSION = "1"
"""Bumped whenever the compiled ontology or how it is compiled changes (part of the cache key)."""


def closure_key(onto: Ontology) -> str:
    """Digest of the ontology's triples, :data:`CLOSURE_CACHE_VERSION` and the installed rdflib and reasonable."""
    stamp = library_stamp("rdflib", "reasonable")
    return hashlib.sha256(f"threatgraph-closure/{CLOSURE_CACHE_VERSION}/{stamp}/{onto.digest}".encode()).hexdigest()
