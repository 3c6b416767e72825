"""The compiled knowledge view: what an analysis needs from the imported releases, small and cached.

An analysis reads a few thousand facts of the 10⁵–10⁶ quads of the ATT&CK, ATLAS and D3FEND
releases: techniques with their status, replacements, parents, tactics, maturity and ids;
mitigations and what they mitigate; detection strategies, analytics and data components; the D3FEND
class hierarchy and restrictions the countermeasure inference walks; labels. The view is that
slice of the newest release of each source, kept **in the release's own graph IRI** (so every
stage query and report reads it exactly as it reads the full release), plus the provenance records
of those releases. It is compiled once per set of releases, keyed by the releases' sha256 digests
(and this module's :data:`VIEW_VERSION`), and cached as N-Quads under :func:`cache_dir`; loading it
into an in-memory store takes milliseconds where importing the files takes seconds.

Sources of a view: a store holding imported releases (``analyze --store DIR``, opened read-only;
``analyze --endpoint URL``), or knowledge files loaded on the fly (``analyze --knowledge
shared|FILE…``: the files' digests are the key; a file's digest is remembered by path, size and
modification time so that an unchanged file is not hashed again).

>>> sorted(KEPT_SOURCES)
['atlas', 'attack-enterprise', 'attack-ics', 'capec', 'd3fend']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyoxigraph import NamedNode, Quad, RdfFormat, parse, serialize

from threatgraph.cachefiles import cache_dir, write_atomic
from threatgraph.errors import InputError, StoreError
from threatgraph.store.base import Store
from threatgraph.terms import GRAPH, KB, OWL, RDF, RDFS, SKOS

VIEW_VERSION = "4"
"""Bumped whenever what the view keeps changes (part of the cache key)."""

KEPT_SOURCES = frozenset({"attack-enterprise", "attack-ics", "atlas", "d3fend", "capec"})
"""Sources whose newest release goes into the view."""

D3F = "http://d3fend.mitre.org/ontologies/d3fend.owl#"
KEPT_KB = ("attackId", "externalId", "revoked", "deprecated", "revokedBy", "isSubtechnique",
                   "subtechniqueOf", "tactic", "mitigates", "detects", "analytic", "dataComponent", "maturity",
                   "shortName")
KEPT_CLASSES: frozenset[str] = frozenset(
    KB + c for c in ("Technique", "Mitigation", "Tactic", "DetectionStrategy", "Analytic", "DataComponent",
                     "DataSource", "AttackPattern")
)
"""ATT&CK / ATLAS / CAPEC objects the view keeps (groups, software, campaigns, case studies and reified
relationships are left out: no analysis reads them)."""
KNOWLEDGE_PREDICATES: frozenset[str] = frozenset(
    {RDF.type, RDFS.label, SKOS.prefLabel} | {KB + p for p in KEPT_KB}
)
"""Predicates kept on those objects."""
D3FEND_PREDICATES: frozenset[str] = frozenset(
    {RDFS.label, SKOS.prefLabel, RDFS.subClassOf, OWL.onProperty, OWL.someValuesFrom, D3F + "attack-id", D3F + "d3fend-id"}
)
"""Predicates kept from D3FEND: the class hierarchy and restrictions the countermeasure inference walks."""
RELEASES_GRAPH = GRAPH + "releases"


@dataclass(frozen=True)
class View:
    """A compiled view: its cache key, the release graphs it holds, and its quads (as N-Quads)."""

    key: str
    release_graphs: tuple[str, ...] | None
    """The release graphs of the view; None: those its quads name (found when asked)."""
    nquads: bytes = field(repr=False)
    """The view as N-Quads: what the cache holds, and what :func:`load_view` gives the store to parse
    (in Rust: ~25% faster than parsing into Python quads and adding those)."""

    @property
    def quads(self) -> list[Quad]:
        """The view's quads."""
        return _parse_nquads(self.nquads) or []

    @property
    def graphs(self) -> tuple[str, ...]:
        """The release graphs of the view."""
        if self.release_graphs is not None:
            return self.release_graphs
        names = {q.graph_name.value for q in self.quads if isinstance(q.graph_name, NamedNode)}
        return tuple(sorted(names - {RELEASES_GRAPH}))


def view_key(digests: Iterable[tuple[str, str]]) -> str:
    """Cache key of a view of releases given as (graph IRI, sha256) pairs, with the digest of the
    ontology, mappings and derive-knowledge queries the view is derived from.

    >>> view_key([("g1", "a"), ("g2", "b")]) == view_key([("g2", "b"), ("g1", "a")])
    True
    """
    from threatgraph.analysis.techniques import view_inputs_digest

    h = hashlib.sha256(f"threatgraph-view/{VIEW_VERSION}\n{view_inputs_digest()}\n".encode())
    for g, sha in sorted(digests):
        h.update(f"{g} {sha}\n".encode())
    return h.hexdigest()


def _newest(store: Store) -> list[tuple[str, str]]:
    """(graph, sha256) of the newest recorded release of every kept source."""
    from threatgraph.knowledge.releases import releases

    newest: dict[str, tuple[str, str]] = {}
    for info in releases(store):  # sorted by source, then version: the last one wins
        if info.source in KEPT_SOURCES:
            newest[info.source] = (info.graph, info.sha256)
    return sorted(newest.values())


def compile_view(store: Store, graphs: Sequence[str]) -> list[Quad]:
    """The view's quads, compiled from the release graphs ``graphs`` of ``store``.

    The kept slice of each ATT&CK / ATLAS / CAPEC release and the release records go into a scratch
    in-memory store with the ontology and the bridge mappings, where the derive-knowledge queries
    compute ``graph/view`` (cited techniques, mitigations, D3FEND countermeasures with their
    inference, detections). The view is ``graph/view``, the records, and of the releases only what
    ``graph/view`` names (its techniques, mitigations, detections and D3FEND classes, with their
    labels, ids, status and maturity).
    """
    from threatgraph.analysis.engine import Engine
    from threatgraph.analysis.techniques import G_VIEW, ensure_view, newest_releases
    from threatgraph.knowledge.bridge import load_bridge
    from threatgraph.store import open_store

    kept: list[Quad] = []
    d3fend: list[Quad] = []
    rdf_type = NamedNode(RDF.type)
    for g in graphs:
        quads = list(store.quads(g))
        if g.startswith(GRAPH + "release/d3fend/"):
            d3fend.extend(q for q in quads if q.predicate.value in D3FEND_PREDICATES)
            continue
        subjects = {q.subject for q in quads
                    if q.predicate == rdf_type and isinstance(q.object, NamedNode) and q.object.value in KEPT_CLASSES}
        kept.extend(q for q in quads if q.subject in subjects and q.predicate.value in KNOWLEDGE_PREDICATES)
    wanted = {NamedNode(g) for g in graphs}
    counts: set[object] = set()
    all_records = list(store.quads(RELEASES_GRAPH))
    for q in all_records:
        if q.predicate.value == KB + "countOf" and q.object in wanted:
            counts.add(q.subject)
    records = [q for q in all_records if q.subject in wanted or q.subject in counts]

    scratch = open_store()
    scratch.add_quads(kept + d3fend + records)
    Engine(scratch).load_ontology()
    load_bridge(scratch)
    ensure_view(scratch, newest_releases(scratch))
    view = list(scratch.quads(G_VIEW))
    named = {t for q in view for t in (q.subject, q.object) if isinstance(t, NamedNode)}
    labels = {RDFS.label, SKOS.prefLabel}
    d3fend_labels = [q for q in d3fend if q.subject in named and q.predicate.value in labels]
    # of the releases' objects, only those graph/view names (cited techniques, their mitigations,
    # detection strategies, analytics, data components): ~22 k -> a few thousand quads
    return [q for q in kept if q.subject in named] + d3fend_labels + records + view


def _parse_nquads(data: bytes) -> list[Quad] | None:
    try:
        return [q for q in parse(data, format=RdfFormat.N_QUADS) if isinstance(q, Quad)]
    except (SyntaxError, ValueError):
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a cache that cannot be written is only slower next time."""
    write_atomic(path, data)


_HEADER = b"# threatgraph-view sha256 "


def _with_header(data: bytes) -> bytes:
    """N-Quads with a first comment line holding the digest of the rest (a truncated or altered cache
    file is recompiled without parsing it first)."""
    return _HEADER + hashlib.sha256(data).hexdigest().encode() + b"\n" + data


def _checked(raw: bytes) -> bytes | None:
    """The N-Quads of a cache file when its digest line matches (an older file without one: when it parses)."""
    if raw.startswith(_HEADER):
        head, _, body = raw.partition(b"\n")
        return raw if head[len(_HEADER):].decode("ascii", "replace") == hashlib.sha256(body).hexdigest() else None
    return raw if _parse_nquads(raw) is not None else None


def cached_view(key: str, graphs: Sequence[str] | None, build: Callable[[], list[Quad]]) -> View:
    """The view of ``key`` from the cache, or built with ``build()`` and cached."""
    from threatgraph.progress import step

    path = cache_dir() / "views" / f"{key}.nq"
    if path.is_file():
        try:
            with step("reading the compiled knowledge view"):
                data = _checked(path.read_bytes())
        except OSError:
            data = None
        if data is not None:
            return View(key, None if graphs is None else tuple(graphs), data)
    with step("compiling the knowledge view (once per set of releases)"):
        quads = build()
        data = _with_header(serialize(quads, format=RdfFormat.N_QUADS) or b"")
        _write_atomic(path, data)
    return View(key, None if graphs is None else tuple(graphs), data)


def view_of_store(store: Store) -> View | None:
    """The view of the newest releases recorded in ``store`` (None when it holds none)."""
    newest = _newest(store)
    if not newest:
        return None
    graphs = [g for g, _ in newest]
    return cached_view(view_key(newest), graphs, lambda: compile_view(store, graphs))


# -- knowledge files (analyze --knowledge) -------------------------------------------------------------
def file_digest(path: str) -> str:
    """sha256 of a file, remembered by (path, size, mtime) in the cache so unchanged files are hashed once."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from err
    index_path = cache_dir() / "digests.json"
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}
    entry = index.get(str(p))
    if isinstance(entry, list) and len(entry) == 2 and entry[0] == stamp and isinstance(entry[1], str):
        return entry[1]
    h = hashlib.sha256()
    try:
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from err
    digest = h.hexdigest()
    index[str(p)] = [stamp, digest]
    _write_atomic(index_path, json.dumps(index, indent=0, sort_keys=True).encode())
    return digest


def view_of_files(specs: Sequence[str]) -> View:
    """The view of knowledge files (``shared`` or paths, as ``analyze --knowledge``), cached by their digests.

    On a cache miss the files are imported into a scratch in-memory store (as ``threatgraph import``
    does) and the view is compiled from it.
    """
    from threatgraph.analysis.techniques import knowledge_paths

    pairs = knowledge_paths(specs)
    digests = [(f"{kind}:{Path(path).name}", file_digest(path)) for kind, path in pairs]
    key = view_key(digests)

    def build() -> list[Quad]:
        from threatgraph.knowledge.releases import load_release
        from threatgraph.store import open_store

        scratch = open_store()
        for kind, path in pairs:
            load_release(scratch, kind, path)
        return compile_view(scratch, [g for g, _ in _newest(scratch)])

    return cached_view(key, None, build)


def load_view(store: Store, view: View) -> None:
    """Add the view's quads to ``store`` (an in-memory analysis store)."""
    load = getattr(store, "load_dataset", None)
    try:
        if callable(load) and b"_:" not in view.nquads:  # the store's loader renames blank nodes
            load(view.nquads, "application/n-quads")
        else:
            store.add_quads(view.quads)
    except (OSError, ValueError, SyntaxError) as err:
        raise StoreError(f"cannot load the knowledge view: {err}") from err
