"""Embedded backend on pyoxigraph (in memory, or on disk in a directory)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from pyoxigraph import (
    BlankNode,
    DefaultGraph,
    NamedNode,
    Quad,
    QuerySolutions,
    QueryTriples,
    RdfFormat,
    serialize,
)
from pyoxigraph import (
    Store as OxStore,
)

from threatgraph.errors import InputError, StoreError
from threatgraph.sparql import inline_values
from threatgraph.store.base import IMPORT_PENDING, RELEASES, STAGING, Row, Term, boolean_of, rows_of
from threatgraph.terms import PREFIXES, TURTLE_PREFIXES

_FORMATS: dict[str, RdfFormat] = {
    "text/turtle": RdfFormat.TURTLE,
    "application/n-triples": RdfFormat.N_TRIPLES,
    "application/n-quads": RdfFormat.N_QUADS,
    "application/trig": RdfFormat.TRIG,
    "application/rdf+xml": RdfFormat.RDF_XML,
    "text/n3": RdfFormat.N3,
}


def rdf_format(mime: str) -> RdfFormat:
    """The pyoxigraph format for a media type.

    >>> rdf_format("text/turtle") == RdfFormat.TURTLE
    True
    """
    try:
        return _FORMATS[mime]
    except KeyError:
        raise InputError(f"unsupported RDF media type {mime!r}", hint=f"use one of {sorted(_FORMATS)}") from None


def is_store_dir(path: Path) -> bool:
    """True when ``path`` holds an on-disk store (RocksDB's ``CURRENT`` and a ``MANIFEST-*`` file)."""
    return (path / "CURRENT").is_file() and any(path.glob("MANIFEST-*"))


def check_location(location: str, *, must_exist: bool) -> None:
    """Refuse a ``--store`` directory that a command must not open.

    A read command (``must_exist``) needs an existing store: a mistyped name must not create an empty
    one. No command writes the store's files into an existing non-empty directory that is not a store.
    """
    path = Path(location).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"no store at {location}: it is a file, not a store directory",
                         hint="--store names a directory created by `threatgraph import` or `analyze --store`")
    if path.is_dir() and is_store_dir(path):
        return
    if path.is_dir() and any(path.iterdir()):
        raise InputError(f"{location} is a non-empty directory that is not a threatgraph store; nothing was "
                         "written to it", hint="name a new or empty directory for a new store, or the "
                         "directory of an existing store")
    if must_exist:
        raise InputError(f"no store at {location}",
                         hint="check the path, or create the store first: `threatgraph import attack --store DIR`")


_PENDING = NamedNode(IMPORT_PENDING)
_RELEASES = NamedNode(RELEASES)


class EmbeddedStore:
    """:class:`threatgraph.store.base.Store` on an in-process Oxigraph store.

    >>> s = EmbeddedStore()
    >>> s.load('<urn:a> <urn:p> "x" .', "application/n-triples", "urn:g")
    >>> [r["o"].value for r in s.select("SELECT ?o WHERE { <urn:a> <urn:p> ?o }")]
    ['x']
    """

    def __init__(self, location: str | None = None, *, read_only: bool = False, must_exist: bool = False) -> None:
        if location:
            check_location(location, must_exist=must_exist or read_only)
        try:
            if read_only and location:
                self._store = OxStore.read_only(location)
            else:
                self._store = OxStore(location) if location else OxStore()
        except OSError as err:
            raise StoreError(
                f"cannot open the store at {location}: {err}",
                hint="another threatgraph process may hold it; close it or use another --store directory",
            ) from err
        self.location = location
        self._deferred: list[tuple[str | Callable[[], Iterable[str]], NamedNode]] = []
        self.settled_count = 0
        """How many times deferred writes were loaded (:meth:`settle`): a test's view of whether a command
        read the finding graph back."""

    # -- deferred writes (issue 14) ----------------------------------------------------------------
    def defer(self, text: str | Callable[[], Iterable[str]], graph: str) -> None:
        """Add the N-Triples ``text`` (written by threatgraph from checked terms) to ``graph`` *when a reader
        needs it*: the analysis writes its finding graph this way, and a command that renders its report from
        the stages' results in memory never pays for loading it (at 10 k elements ~2 M quads, ~6 s and several
        hundred MB). Every read settles first (:meth:`settle`) unless it says it reads only graphs that are never
        deferred (``complete=False``: the model, its closure, the ontology, the knowledge); so do updates and
        drops. Adding quads does not: a set of quads does not depend on the order of additions.

        ``text`` may also be a function giving the text in pieces, called once when settling: the writer then
        does not even build the text a command never reads (the rule engine's findings, issue 14)."""
        if text:
            self._deferred.append((text, NamedNode(graph)))

    @property
    def deferred(self) -> bool:
        """Whether deferred writes wait to be loaded."""
        return bool(self._deferred)

    def settle(self) -> None:
        """Load the deferred writes, in the order they were made."""
        if not self._deferred:
            return
        pending, self._deferred = self._deferred, []
        self.settled_count += 1
        for text, graph in pending:
            for piece in (text,) if isinstance(text, str) else text():
                self._store.load(piece, RdfFormat.N_TRIPLES, to_graph=graph, lenient=True)

    def _settle_for(self, graph: NamedNode) -> None:
        """Settle before replacing or dropping ``graph`` when deferred text is written to it (the drop applies
        to it); a graph nothing is deferred to (the bridge, the view) is dropped without loading the rest."""
        if any(g == graph for _text, g in self._deferred):
            self.settle()

    # -- queries ---------------------------------------------------------------------------------
    def _hidden(self) -> set[NamedNode]:
        """Staging graphs and graphs marked ``kb:importPending`` (an import not yet committed, or killed):
        never shown to readers."""
        hidden = {q.subject for q in self._store.quads_for_pattern(None, _PENDING, None, _RELEASES)
                  if isinstance(q.subject, NamedNode)}
        hidden.update(g for g in self._store.named_graphs() if isinstance(g, NamedNode) and g.value.startswith(STAGING))
        return hidden

    def _run(self, query: str, bindings: Mapping[str, Term] | None, complete: bool = True) -> object:
        if complete and self._deferred:
            self.settle()
        text = inline_values(query, bindings) if bindings else query
        try:
            hidden = self._hidden()
            if not hidden:
                return self._store.query(text, use_default_graph_as_union=True, prefixes=PREFIXES)
            visible = [g for g in self._store.named_graphs() if g not in hidden]
            return self._store.query(text, default_graph=[DefaultGraph(), *visible], named_graphs=visible,
                                     prefixes=PREFIXES)
        except SyntaxError as err:
            raise StoreError(f"invalid SPARQL: {err}") from err
        except OSError as err:
            raise StoreError(f"query failed: {err}") from err

    def select(self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True) -> list[Row]:
        """``complete=False``: the query reads no graph written by :meth:`defer` (see there)."""
        res = self._run(query, bindings, complete)
        return rows_of(res)

    def solutions(self, query: str, *, complete: bool = True) -> QuerySolutions:
        """A SELECT's solutions as pyoxigraph gives them (a solution iterates its values in the order of
        ``variables``, None where unbound): for readers of many rows that want no dict per row (the engine's
        rules). ``complete=False`` as for :meth:`select`."""
        res = self._run(query, None, complete)
        if not isinstance(res, QuerySolutions):
            raise StoreError("expected a SELECT query")
        return res

    def ask(self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True) -> bool:
        res = self._run(query, bindings, complete)
        return boolean_of(res)

    def construct(
        self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True
    ) -> list[Quad]:
        res = self._run(query, bindings, complete)
        if not isinstance(res, QueryTriples):
            raise StoreError("expected a CONSTRUCT or DESCRIBE query")
        return [Quad(t.subject, t.predicate, t.object, DefaultGraph()) for t in res]

    def update(self, update: str) -> None:
        self.settle()
        try:
            self._store.update(update, prefixes=PREFIXES)
        except SyntaxError as err:
            raise StoreError(f"invalid SPARQL update: {err}") from err
        except OSError as err:
            raise StoreError(f"update failed: {err}") from err

    # -- data ------------------------------------------------------------------------------------
    def load(self, data: bytes | str, mime: str, graph: str, *, trusted: bool = False) -> None:
        """``trusted``: text threatgraph wrote itself from terms already checked (the engine's finding graph):
        parsed without validating IRIs and language tags again (Oxigraph's lenient mode)."""
        try:
            self._store.load(data, rdf_format(mime), to_graph=NamedNode(graph), lenient=trusted)
        except SyntaxError as err:
            raise InputError(f"cannot parse {mime} data for graph <{graph}>: {err}") from err

    def load_dataset(self, data: bytes, mime: str, *, trusted: bool = False) -> None:
        """Add the quads of an RDF dataset document (N-Quads, TriG), parsed by the store itself.
        ``trusted``: written by threatgraph itself and checked by digest (a compiled knowledge view): parsed
        without validating IRIs and language tags again (Oxigraph's lenient mode, ~1/3 faster)."""
        self._store.load(data, rdf_format(mime), lenient=trusted)

    def add_quads(self, quads: Iterable[Quad]) -> None:
        # bulk_extend skips per-quad transactions; much faster for the large batches the engine writes.
        if not self.location:
            self._store.bulk_extend(quads)
            return
        self._add_quads_overlapped(quads)

    _CHUNK = 32768
    _WRITERS = 2

    def _add_quads_overlapped(self, quads: Iterable[Quad]) -> None:
        """On disk: ``quads`` in chunks of N-Quads, bulk-loaded by two writer threads while this one
        produces the next chunks. pyoxigraph's ``bulk_load`` releases the GIL (``bulk_extend`` holds it
        while the RocksDB files are written, ~1.1 s for ATT&CK's 232 k quads, so neither the importer's
        Python work nor a second core could overlap the writes); Oxigraph's own bulk loader runs several
        loads into one store in parallel the same way. ``load_release`` of ATT&CK 18.1 on disk (in-process,
load ~2): one writer, chunks of 65,536: 1.86-2.01 s, peak 247 MB; two writers, 65,536: 1.57 s, 296 MB;
two writers, 32,768 (chosen): 1.68-1.76 s, 243 MB.
        Like ``bulk_extend``, not transactional: a failure (the caller's generator raising, the disk
        filling up) leaves the chunks already loaded, which the knowledge import rolls back by dropping
        its graph. At most one chunk waits in memory besides those being written. A chunk with blank
        nodes (D3FEND's OWL restrictions; none in ATT&CK) is written by ``bulk_extend`` in this thread:
        ``bulk_load`` would give its blank nodes new ids, splitting one that spans two chunks."""
        def chunks() -> Iterator[bytes]:
            batch: list[Quad] = []
            for q in quads:
                batch.append(q)
                if len(batch) >= self._CHUNK:
                    yield from self._serialized(batch)
            if batch:
                yield from self._serialized(batch)

        self._load_overlapped(chunks())

    def _serialized(self, batch: list[Quad]) -> Iterator[bytes]:
        """``batch`` as N-Quads, emptied; a batch with blank nodes is written here instead, by
        ``bulk_extend`` (``bulk_load`` gives parsed blank nodes fresh ids per call: a blank node in two
        chunks would become two; these keep theirs)."""
        data = serialize(batch, format=RdfFormat.N_QUADS) or b""
        if b"_:" in data:
            self._store.bulk_extend(batch)
        else:
            yield data
        batch.clear()

    def add_nquads(self, chunks: Iterable[bytes], *, trusted: bool = False) -> None:
        """Add N-Quads ``chunks`` without blank nodes, each bulk-loaded as it is (on disk by the writer
        threads of :meth:`_add_quads_overlapped`). ``trusted``: written by threatgraph, which checked its
        IRIs (the knowledge importers' :class:`~threatgraph.knowledge.rdfbuild.NQuadsWriter`): parsed in
        Oxigraph's lenient mode. Not transactional, like :meth:`add_quads`."""
        if not self.location:
            for chunk in chunks:
                self._store.bulk_load(chunk, RdfFormat.N_QUADS, lenient=trusted)
            return
        self._load_overlapped(chunks, trusted)

    def _load_overlapped(self, chunks: Iterable[bytes], trusted: bool = False) -> None:
        """``chunks`` (N-Quads) bulk-loaded by the writer threads while this thread produces the next."""
        import queue  # here: an analysis in memory never needs threads (start-up, issue 14)
        import threading

        pending: queue.Queue[bytes | None] = queue.Queue(maxsize=1)
        failed: list[Exception] = []

        def load() -> None:
            while True:
                chunk = pending.get()
                if chunk is None:
                    return
                if not failed:
                    try:
                        self._store.bulk_load(chunk, RdfFormat.N_QUADS, lenient=trusted)
                    except (OSError, ValueError, SyntaxError) as err:  # re-raised in the caller's thread
                        failed.append(err)

        writers = [threading.Thread(target=load, name=f"threatgraph-bulk-load-{i}", daemon=True)
                   for i in range(self._WRITERS)]

        def put(item: bytes | None) -> None:
            while any(w.is_alive() for w in writers):  # writers that died of anything else must not block
                try:
                    pending.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue
            if not failed:
                failed.append(StoreError("the store writer threads stopped"))

        for w in writers:
            w.start()
        try:
            for data in chunks:
                put(data)
                if failed:
                    break
        finally:
            # the writers must have stopped before the caller rolls back (drops the graph): a chunk
            # written after the drop would stay. Ctrl-C while waiting (at most one chunk) waits on.
            interrupted: KeyboardInterrupt | None = None
            while True:
                try:
                    for _ in writers:
                        put(None)
                    for w in writers:
                        w.join()
                    break
                except KeyboardInterrupt as err:
                    interrupted = err
            if interrupted is not None:
                raise interrupted
        if failed:
            raise failed[0]

    def replace_graph(self, graph: str, data: bytes | str, mime: str) -> None:
        # Parse first into a scratch in-memory store, so a syntax error leaves the old graph intact.
        scratch = OxStore()
        try:
            scratch.load(data, rdf_format(mime), to_graph=NamedNode(graph))
        except SyntaxError as err:
            raise InputError(f"cannot parse {mime} data for graph <{graph}>: {err}") from err
        g = NamedNode(graph)
        self._settle_for(g)
        if self._store.contains_named_graph(g):
            self._store.clear_graph(g)
        self._store.extend(scratch.quads_for_pattern(None, None, None, None))

    def drop_graph(self, graph: str) -> None:
        g = NamedNode(graph)
        self._settle_for(g)
        if self._store.contains_named_graph(g):
            self._store.remove_graph(g)

    def graph_names(self) -> list[str]:
        self.settle()
        return sorted(g.value for g in self._store.named_graphs() if isinstance(g, NamedNode))

    def dump(self, graph: str | None, mime: str) -> bytes:
        self.settle()
        fmt = rdf_format(mime)
        if graph is None:
            return self._store.dump(format=fmt, prefixes=TURTLE_PREFIXES if fmt.supports_datasets else None) or b""
        kwargs: dict[str, object] = {"from_graph": NamedNode(graph)}
        if fmt in (RdfFormat.TURTLE, RdfFormat.TRIG, RdfFormat.N3, RdfFormat.RDF_XML):
            kwargs["prefixes"] = TURTLE_PREFIXES
        return bytes(self._store.dump(format=fmt, **kwargs))  # type: ignore[arg-type]

    def quads(self, graph: str | None = None) -> Iterator[Quad]:
        """The quads of ``graph``, or of every graph but the hidden staging graphs."""
        self.settle()
        if graph:
            return iter(self._store.quads_for_pattern(None, None, None, NamedNode(graph)))
        hidden = self._hidden()
        everything = self._store.quads_for_pattern(None, None, None, None)
        return iter(everything) if not hidden else (q for q in everything if q.graph_name not in hidden)

    def quads_with_predicates(self, graph: str, predicates: Iterable[str]) -> Iterator[Quad]:
        """The quads of ``graph`` whose predicate is one of ``predicates`` (one index scan each)."""
        self.settle()
        g = NamedNode(graph)
        for p in sorted(predicates):
            yield from self._store.quads_for_pattern(None, NamedNode(p), None, g)

    def quads_matching(
        self, predicate: str, graph: str | None, obj: str | None = None, *, complete: bool = True
    ) -> Iterator[Quad]:
        """The quads of ``graph`` (None: of every graph but the hidden staging graphs) with ``predicate`` (and
        the IRI ``obj`` as object, when given), read from the store's index without SPARQL (the engine reads
        back what its stage queries wrote this way: at 10 k elements the technique applications' join took
        0.8 s as a SELECT). ``complete=False``: ``graph`` is not written by :meth:`defer`."""
        if complete:
            self.settle()
        o_node = NamedNode(obj) if obj is not None else None
        if graph is not None:
            return iter(self._store.quads_for_pattern(None, NamedNode(predicate), o_node, NamedNode(graph)))
        hidden = self._hidden()
        found = self._store.quads_for_pattern(None, NamedNode(predicate), o_node, None)
        return iter(found) if not hidden else (q for q in found if q.graph_name not in hidden)

    @property
    def oxigraph(self) -> OxStore:
        """The pyoxigraph store itself, for code that reads its indexes directly (the Python steps of the
        technique stage, threatgraph.analysis.stage_python); staging graphs are not hidden there. Deferred
        writes are loaded first; :meth:`unsettled_oxigraph` is the store as it is, for readers of graphs that
        are never deferred."""
        self.settle()
        return self._store

    def unsettled_oxigraph(self) -> OxStore:
        """The pyoxigraph store without loading deferred writes (:meth:`defer`): for code that reads only the
        model, its closure, the ontology and the knowledge."""
        return self._store

    def quads_about(self, subject: NamedNode | BlankNode, graph: str) -> Iterator[Quad]:
        """The quads of ``graph`` with ``subject``, from the store's index (the order of :meth:`quads`)."""
        self.settle()
        return iter(self._store.quads_for_pattern(subject, None, None, NamedNode(graph)))

    def flush(self) -> None:
        """Persist pending writes (on-disk stores); deferred writes are loaded first."""
        self.settle()
        if self.location:
            self._store.flush()

    def __len__(self) -> int:
        self.settle()
        return len(self._store)
