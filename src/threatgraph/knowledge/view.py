"""The compiled knowledge view: what an analysis needs from the imported releases, small and cached.

An analysis reads a few thousand facts of the 10⁵–10⁶ quads of the ATT&CK, ATLAS and D3FEND
releases: techniques with their status, replacements, parents, tactics, maturity and ids;
mitigations and what they mitigate; detection strategies, analytics and data components; the D3FEND
class hierarchy and restrictions the countermeasure inference walks; the ATT&CK techniques CAPEC attack
patterns link to (for the declared-threat comparison), with the patterns' names and ids; labels. The view is that
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from pyoxigraph import NamedNode, Quad, RdfFormat, parse, serialize

from threatgraph.cachefiles import cache_dir, read_stamped, write_atomic
from threatgraph.errors import InputError, StoreError
from threatgraph.records import FrozenRecord, set_fields
from threatgraph.resources import ontology_dir
from threatgraph.store.base import Store
from threatgraph.terms import GRAPH, KB, OWL, RDF, RDFS, SKOS, TG, graph_iri

VIEW_VERSION = "6"
"""Bumped whenever what the view keeps changes (part of the cache key). 6: issue 14's smaller reified
relationships change the releases' ``kb:quadCount`` the view's release records carry (the view's
knowledge is the same), so a view cached from an import by an older version is not reused."""

KEPT_SOURCES = frozenset({"attack-enterprise", "attack-ics", "atlas", "d3fend", "capec"})
"""Sources whose newest release goes into the view."""

D3F = "http://d3fend.mitre.org/ontologies/d3fend.owl#"
KEPT_KB = ("attackId", "externalId", "revoked", "deprecated", "revokedBy", "isSubtechnique",
                   "subtechniqueOf", "tactic", "mitigates", "detects", "analytic", "dataComponent", "maturity",
                   "shortName", "attackReference")
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
TG_CAPEC_TECHNIQUE = TG + "capecTechnique"
"""graph/view: a CAPEC attack pattern → an ATT&CK Enterprise technique it links to (queries/derive-knowledge/50-capec-techniques.rq)."""
ONTOLOGY_GRAPH = graph_iri("ontology")
"""``threatgraph.analysis.engine.G_ONTOLOGY`` (not imported: the engine module imports rdflib)."""
VIEW_PREDICATES: frozenset[str] = KNOWLEDGE_PREDICATES | D3FEND_PREDICATES
"""Every predicate :func:`compile_view` reads from a release graph: an import keeps the quads with these
(:class:`ViewSlice`) so that the view is compiled without reading the release back from the store."""


class View(FrozenRecord):
    """A compiled view: its cache key, the release graphs it holds, and its quads (as N-Quads). (A frozen
    record, written out: :mod:`threatgraph.records`.)"""

    key: str
    release_graphs: tuple[str, ...] | None
    """The release graphs of the view; None: those its quads name (found when asked)."""
    nquads: bytes
    """The view as N-Quads: what the cache holds, and what :func:`load_view` gives the store to parse
    (in Rust: ~25% faster than parsing into Python quads and adding those)."""

    _fields = ("key", "release_graphs", "nquads")
    _norepr = frozenset({"nquads"})

    def __init__(self, key: str, release_graphs: tuple[str, ...] | None, nquads: bytes) -> None:
        set_fields(self, key=key, release_graphs=release_graphs, nquads=nquads)

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


def newest_of_store(store: Store) -> list[tuple[str, str]]:
    """(graph, sha256) of the newest recorded release of every kept source (what a view is compiled from)."""
    return _newest(store)


def _newest(store: Store) -> list[tuple[str, str]]:
    """(graph, sha256) of the newest recorded release of every kept source."""
    from threatgraph.knowledge.releases import releases

    newest: dict[str, tuple[str, str]] = {}
    for info in releases(store):  # sorted by source, then version: the last one wins
        if info.source in KEPT_SOURCES:
            newest[info.source] = (info.graph, info.sha256)
    return sorted(newest.values())


class ViewSlice:
    """The quads of one release that :func:`compile_view` reads (:data:`VIEW_PREDICATES`), kept by an
    import as it streams the release into the store (:meth:`keep`), so that the view is compiled without
    reading them back. Kept as N-Quads bytes: ~5 MB for ATT&CK 18.1's 44 k quads, where as many
    ``Quad`` objects held the import's peak memory ~58 MB higher.

    >>> from pyoxigraph import Literal
    >>> g, s = NamedNode("urn:g"), NamedNode("urn:s")
    >>> kept = ViewSlice()
    >>> out = list(kept.keep([Quad(s, NamedNode(RDFS.label), Literal("x"), g),
    ...                       Quad(s, NamedNode(RDFS.comment), Literal("y"), g)]))
    >>> len(out), [q.predicate.value for q in kept.quads()] == [RDFS.label]
    (2, True)
    """

    _BATCH = 8192

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def keep(self, quads: Iterable[Quad]) -> Iterator[Quad]:
        """``quads`` passed through; those with a :data:`VIEW_PREDICATES` predicate are also kept."""
        wanted = {NamedNode(p) for p in VIEW_PREDICATES}
        batch: list[Quad] = []
        append = batch.append
        for q in quads:
            if q.predicate in wanted:
                append(q)
                if len(batch) >= self._BATCH:
                    self._flush(batch)
            yield q
        self._flush(batch)

    def keep_text(self, triples: list[str], graph: str) -> None:
        """Keep ``triples`` (``s p o`` in N-Triples terms, as :class:`~threatgraph.knowledge.rdfbuild.NQuadsWriter`
        watches them) in ``graph``."""
        if triples:
            sep = f" <{graph}> .\n"
            self._chunks.append((sep.join(triples) + sep).encode("utf-8"))

    def _flush(self, batch: list[Quad]) -> None:
        if batch:
            self._chunks.append(serialize(batch, format=RdfFormat.N_QUADS) or b"")
            batch.clear()

    def quads(self) -> list[Quad]:
        """The kept quads."""
        return [q for q in parse(b"".join(self._chunks), format=RdfFormat.N_QUADS) if isinstance(q, Quad)]


def _release_quads(store: Store, graph: str) -> list[Quad]:
    """The quads of ``graph`` with a predicate :func:`compile_view` reads (the embedded store reads just
    those, ~44 k of ATT&CK 18.1's 232 k quads: its long descriptions are never decoded)."""
    by_predicate = getattr(store, "quads_with_predicates", None)
    if callable(by_predicate):
        return list(by_predicate(graph, VIEW_PREDICATES))
    return [q for q in store.quads(graph) if q.predicate.value in VIEW_PREDICATES]


def compile_view(store: Store, graphs: Sequence[str], preloaded: Mapping[str, ViewSlice] | None = None) -> list[Quad]:
    """The view's quads, compiled from the release graphs ``graphs`` of ``store``; ``preloaded`` maps a
    graph to its :class:`ViewSlice` when the caller has it (a release just imported), so that those quads
    are not read back from the store.

    The kept slice of each ATT&CK / ATLAS / CAPEC release and the release records go into a scratch
    in-memory store with the ontology and the bridge mappings, where the derive-knowledge queries
    compute ``graph/view`` (cited techniques, mitigations, D3FEND countermeasures with their
    inference, detections). The view is ``graph/view``, the records, and of the releases only what
    ``graph/view`` names (its techniques, mitigations, detections and D3FEND classes, with their
    labels, ids, status and maturity).
    """
    from threatgraph.analysis.techniques import G_VIEW, ensure_view, newest_releases
    from threatgraph.knowledge.bridgegraph import load_bridge
    from threatgraph.store import open_store

    kept: list[Quad] = []
    d3fend: list[Quad] = []
    rdf_type = NamedNode(RDF.type)
    for g in graphs:
        given = preloaded.get(g) if preloaded else None
        quads = given.quads() if given is not None else _release_quads(store, g)
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
    for path in sorted(ontology_dir().glob("*.ttl")):  # the modules Engine.load_ontology loads, without rdflib
        scratch.load(path.read_bytes(), "text/turtle", ONTOLOGY_GRAPH)
    load_bridge(scratch)
    ensure_view(scratch, newest_releases(scratch))
    view = list(scratch.quads(G_VIEW))
    # a CAPEC link names its attack pattern (kept with its label and id), not the ATT&CK technique: the
    # techniques no mapping cites stay out of the view (their ids are in their IRIs)
    capec_link = NamedNode(TG_CAPEC_TECHNIQUE)
    named = {t for q in view for t in ((q.subject,) if q.predicate == capec_link else (q.subject, q.object))
             if isinstance(t, NamedNode)}
    labels = {RDFS.label, SKOS.prefLabel}
    d3fend_labels = [q for q in d3fend if q.subject in named and q.predicate.value in labels]
    # of the releases' objects, only those graph/view names (cited techniques, their mitigations,
    # detection strategies, analytics, data components): ~22 k -> a few thousand quads
    attack_reference = NamedNode(KB + "attackReference")  # read by 50-capec-techniques.rq, resolved in graph/view
    return [q for q in kept if q.subject in named and q.predicate != attack_reference] + d3fend_labels + records + view


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


def _read_view_file(path: Path) -> bytes | None:
    """The N-Quads of a cached view file, checked by its digest line (:func:`_checked`) unless the file is
    the one that was checked before (:func:`threatgraph.cachefiles.read_stamped`): hashing the ~5 MB view of
    ATT&CK, ATLAS and D3FEND cost ~3 ms of every ``analyze --store`` (issue 14)."""
    return read_stamped(path, _checked, header=_HEADER)


def read_cached_view(key: str, graphs: Sequence[str] | None) -> View | None:
    """The view of ``key`` from the cache; None when it is not there (or damaged)."""
    from threatgraph.progress import step

    path = cache_dir() / "views" / f"{key}.nq"
    if not path.is_file():
        return None
    with step("reading the compiled knowledge view"):
        data = _read_view_file(path)
    return None if data is None else View(key, None if graphs is None else tuple(graphs), data)


def cached_view(key: str, graphs: Sequence[str] | None, build: Callable[[], list[Quad]]) -> View:
    """The view of ``key`` from the cache, or built with ``build()`` and cached."""
    from threatgraph.progress import step

    found = read_cached_view(key, graphs)
    if found is not None:
        return found
    path = cache_dir() / "views" / f"{key}.nq"
    with step("compiling the knowledge view (once per set of releases)"):
        quads = build()
        data = _with_header(serialize(quads, format=RdfFormat.N_QUADS) or b"")
        _write_atomic(path, data)
    return View(key, None if graphs is None else tuple(graphs), data)


def view_of_store(store: Store, preloaded: Mapping[str, ViewSlice] | None = None) -> View | None:
    """The view of the newest releases recorded in ``store`` (None when it holds none); ``preloaded``:
    as for :func:`compile_view`."""
    newest = _newest(store)
    if not newest:
        return None
    graphs = [g for g, _ in newest]
    return cached_view(view_key(newest), graphs, lambda: compile_view(store, graphs, preloaded))


# -- the store manifest (analyze --store without opening RocksDB) ---------------------------------------
MANIFEST_NAME = "threatgraph-releases.json"
"""The manifest a store directory holds next to RocksDB's files: the newest release of each kept source
(graph, sha256) and the :func:`store_stamp` of the directory when they were read."""
MANIFEST_FORMAT = 1
_UNSTAMPED = ("LOG", "LOCK")
"""RocksDB files left out of the stamp: its info log (``LOG``, ``LOG.old.*``: written by every open, even
read-only) and the lock file."""


def store_stamp(directory: str | Path) -> str | None:
    """A digest of the names, sizes and modification times (ns) of a store directory's files, without opening
    it (~40 ``stat`` calls); None when it cannot be listed.

    Any write to an Oxigraph/RocksDB store changes it: a write appends to the write-ahead log (``*.log``),
    a flush or compaction writes new ``*.sst`` files and a new ``MANIFEST-*``, even opening the store for
    writing starts a new log and ``OPTIONS-*`` file; opening it read-only changes none of them (only the
    info ``LOG``, left out). So a manifest whose stamp equals the directory's was written after the last
    change of the store, by whatever tool or version changed it.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     before = store_stamp(d)
    ...     _ = (Path(d) / "000001.log").write_bytes(b"x")
    ...     before != store_stamp(d)
    True
    """
    import os

    entries: list[str] = []
    try:
        with os.scandir(directory) as it:
            for e in it:
                if e.name == MANIFEST_NAME or e.name.startswith(_UNSTAMPED) or e.name.startswith(MANIFEST_NAME):
                    continue  # (a manifest being written: MANIFEST_NAME + random + ".tmp")
                st = e.stat(follow_symlinks=False)
                entries.append(f"{e.name}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ino}")
    except OSError:
        return None
    if not entries:
        return None
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def read_manifest(directory: str | Path) -> list[tuple[str, str]] | None:
    """The newest releases (graph, sha256) the manifest of a store directory records, when it is there and
    current (its stamp equals :func:`store_stamp` of the directory now); else None (absent, unreadable,
    written by another format, or the store changed since: the caller opens the store)."""
    try:
        doc = json.loads((Path(directory).expanduser() / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        return None
    stamp, recorded = doc.get("stamp"), doc.get("releases")
    if not isinstance(stamp, str) or not isinstance(recorded, list):
        return None
    out: list[tuple[str, str]] = []
    for item in recorded:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            return None
        out.append((item[0], item[1]))
    if stamp != store_stamp(Path(directory).expanduser()):
        return None
    return sorted(out)


def write_manifest(directory: str | Path, newest: Sequence[tuple[str, str]], stamp: str | None) -> bool:
    """Record ``newest`` (as :func:`_newest` read it) in the manifest of a store directory, with the
    ``stamp`` taken **before** the store was opened to read them; written only when the directory's stamp is
    still that one (nothing wrote the store meanwhile: else the manifest could name releases older than
    the store's). A manifest that cannot be written only makes the next analysis slower. Returns whether
    it was written."""
    path = Path(directory).expanduser()
    if stamp is None or store_stamp(path) != stamp:
        return False
    doc = {"format": MANIFEST_FORMAT, "stamp": stamp, "releases": [list(p) for p in sorted(newest)],
           "note": "written by threatgraph after each change of the store's releases; safe to delete"}
    return write_atomic(path / MANIFEST_NAME, json.dumps(doc, indent=1).encode())


def refresh_manifest(directory: str | Path) -> bool:
    """Rewrite the manifest of a store directory from the store itself (opened read-only; the store must be
    closed by any writer of this process first). Returns whether it was written."""
    from threatgraph.store.embedded import EmbeddedStore

    stamp = store_stamp(Path(directory).expanduser())
    if stamp is None:
        return False
    try:
        store = EmbeddedStore(str(Path(directory).expanduser()), read_only=True)
        newest = _newest(store)
    except (InputError, StoreError):  # not a store (any more), or not readable: no manifest, analyses open it
        return False
    del store
    return write_manifest(directory, newest, stamp)


def view_of_manifest(directory: str | Path) -> tuple[bool, View | None]:
    """``(True, view)`` when the store directory's manifest is current and the view of its releases is
    cached (``view`` None: the store holds no release): ``analyze --store`` then never opens the store.
    ``(False, None)``: the caller opens the store (:func:`view_of_store`)."""
    newest = read_manifest(directory)
    if newest is None:
        return False, None
    if not newest:
        return True, None
    graphs = tuple(g for g, _ in newest)
    view = read_cached_view(view_key(newest), graphs)
    return (view is not None), view


def prepare_view(store: Store, preloaded: Mapping[str, ViewSlice] | None = None) -> str | None:
    """Make sure the view of the newest releases of ``store`` is compiled and cached (``threatgraph
    import`` does this after an import, so that the next analysis only reads it); return its key, None
    when the store holds no release. A view already cached is not read."""
    newest = _newest(store)
    if not newest:
        return None
    key = view_key(newest)
    if not (cache_dir() / "views" / f"{key}.nq").is_file():
        graphs = [g for g, _ in newest]
        cached_view(key, graphs, lambda: compile_view(store, graphs, preloaded))
    return key


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


def has_blank_node(nquads: bytes) -> bool:
    """Whether N-Quads text may hold a blank node (``_:`` anywhere, a literal's text included).

    ``b"_:" in nquads`` compared the 5 MB view of ATT&CK, ATLAS and D3FEND byte by byte (~21 M
    instructions of every ``analyze --store``, issue 14); a search for the rare ``_`` alone is a
    ``memchr``.

    >>> has_blank_node(b'_:b0 <urn:p> "x" .'), has_blank_node(b'<urn:s> <urn:p> "a_b" .'), has_blank_node(b"x_")
    (True, False, False)
    """
    i = nquads.find(b"_")
    while i >= 0:
        if nquads[i + 1 : i + 2] == b":":
            return True
        i = nquads.find(b"_", i + 1)
    return False


def load_view(store: Store, view: View) -> None:
    """Add the view's quads to ``store`` (an in-memory analysis store)."""
    load = getattr(store, "load_dataset", None)
    try:
        if callable(load) and not has_blank_node(view.nquads):  # the store's loader renames blank nodes
            load(view.nquads, "application/n-quads", trusted=True)  # threatgraph's own output, digest-checked
        else:
            store.add_quads(view.quads)
    except (OSError, ValueError, SyntaxError) as err:
        raise StoreError(f"cannot load the knowledge view: {err}") from err
