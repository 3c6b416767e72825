"""Threat-knowledge releases in a store: import, provenance, newest release, status, diff.

Each release is one named graph ``graph/release/<source>/<version>``; its PROV-O record lives in
``graph/releases`` and is written last, as the commit point of the import: readers see only recorded
releases, and a failed import is rolled back (see :func:`load_release` and ``docs/knowledge.md``).

>>> from threatgraph.store import open_store
>>> newest_release(open_store(), "attack-enterprise") is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyoxigraph import Literal, NamedNode, Quad

from threatgraph.errors import ImportFailed, InputError, StoreError
from threatgraph.knowledge.view import VIEW_PREDICATES, ViewSlice
from threatgraph.records import FrozenRecord, Record, set_fields
from threatgraph.store.base import STAGING, Store
from threatgraph.terms import GRAPH, KB, PROV, RDF, XSD, graph_iri

if TYPE_CHECKING:
    from threatgraph.knowledge.fetch import Progress, Source
    from threatgraph.knowledge.stix import Release

RELEASES_GRAPH = graph_iri("releases")
STAGING_PREFIX = STAGING

Parser = Callable[[bytes, str, "str | None", "Progress | None"], "Release"]
"""(Every analysis reads release records through this module; only an import fetches and parses a release:
:mod:`threatgraph.knowledge.fetch` and :mod:`threatgraph.knowledge.stix` are imported where used.)"""


def release_graph(source: str, version: str) -> str:
    """:func:`threatgraph.knowledge.stix.release_graph` (imported when called)."""
    from threatgraph.knowledge.stix import release_graph as graph_of

    return graph_of(source, version)


def _lazy(module: str, name: str) -> Parser:
    """The parser ``name`` of ``threatgraph.knowledge.<module>``, imported when first called: every
    analysis reads release records through this module, and no analysis parses a release."""

    def parse(data: bytes, location: str, version: str | None, progress: Progress | None) -> Release:
        import importlib

        fn: Parser = getattr(importlib.import_module(f"threatgraph.knowledge.{module}"), name)
        return fn(data, location, version, progress)

    parse.__name__ = parse.__qualname__ = name
    return parse


PARSERS: dict[str, Parser] = {
    "attack": _lazy("stix", "parse_attack"),
    "atlas": _lazy("atlas", "parse_atlas"),
    "d3fend": _lazy("d3fend", "parse_d3fend"),
    "capec": _lazy("capec", "parse_capec"),
}
"""Import kinds (the ``threatgraph import KIND`` argument) and their parsers.

>>> PARSERS["atlas"].__name__
'parse_atlas'
"""

SOURCE_ALIASES = {"attack": "attack-enterprise", "enterprise": "attack-enterprise", "ics": "attack-ics"}


def active_filter(var: str) -> str:
    """The canonical "active" test for ``?var``, to put inside the release's ``GRAPH`` block.

    ``FILTER NOT EXISTS`` gives the same answers; MINUS is faster on Oxigraph.

    >>> print(active_filter("t"))
    MINUS { ?t kb:revoked true } MINUS { ?t kb:deprecated true }
    """
    if not var.isidentifier():
        raise InputError(f"invalid SPARQL variable name {var!r}")
    return f"MINUS {{ ?{var} kb:revoked true }} MINUS {{ ?{var} kb:deprecated true }}"


ACTIVE_TECHNIQUES_QUERY = """SELECT ?technique ?id WHERE { GRAPH ?release {
    ?technique a kb:Technique .
    OPTIONAL { ?technique kb:attackId|kb:externalId ?id }
    MINUS { ?technique kb:revoked true }
    MINUS { ?technique kb:deprecated true }
} }"""
"""Canonical SPARQL for the active techniques of one release (bind ``?release`` to its graph IRI)."""

ACTIVE_MITIGATES_QUERY = """SELECT ?technique ?mitigation WHERE { GRAPH ?release {
    ?mitigation kb:mitigates ?technique .
    MINUS { ?technique kb:revoked true }
    MINUS { ?technique kb:deprecated true }
    MINUS { ?mitigation kb:revoked true }
    MINUS { ?mitigation kb:deprecated true }
} }"""
"""Canonical SPARQL for active technique → mitigation pairs (both ends must be active)."""


def _kb(name: str) -> NamedNode:
    return NamedNode(KB[name])


def _g(iri: str) -> str:
    """N-Triples form of a graph IRI (validated by pyoxigraph, so safe inside query text)."""
    try:
        return str(NamedNode(iri))
    except ValueError as err:
        raise InputError(f"invalid graph IRI {iri!r}") from err


def _bind(query: str, release: str) -> str:
    return query.replace("GRAPH ?release", "GRAPH " + _g(release))


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Sort key for release versions: numeric parts compare as numbers.

    >>> sorted(["17.1", "9.0", "18.1", "18.0"], key=version_key)
    ['9.0', '17.1', '18.0', '18.1']
    """
    out: list[tuple[int, str]] = []
    for part in version.replace("-", ".").split("."):
        out.append((int(part), "") if part.isdigit() else (-1, part))
    return tuple(out)


class ReleaseInfo(FrozenRecord):
    """One loaded release, as recorded in ``graph/releases``. (A frozen record, written out:
    :mod:`threatgraph.records`.)"""

    graph: str
    source: str
    version: str
    location: str
    sha256: str
    imported: str
    quads: int
    format: str
    counts: dict[str, int]

    _fields = ("graph", "source", "version", "location", "sha256", "imported", "quads", "format", "counts")

    def __init__(self, graph: str, source: str, version: str, location: str, sha256: str, imported: str,
                 quads: int, format: str = "", counts: dict[str, int] | None = None) -> None:
        set_fields(self, graph=graph, source=source, version=version, location=location, sha256=sha256,
              imported=imported, quads=quads, format=format, counts={} if counts is None else counts)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "source": self.source,
            "version": self.version,
            "graph": self.graph,
            "location": self.location,
            "sha256": self.sha256,
            "imported": self.imported,
            "quads": self.quads,
            "format": self.format,
            "counts": self.counts,
        }


class ImportResult(FrozenRecord):
    """What :func:`load_release` did: ``imported``, ``replaced`` (same version, new file) or ``unchanged``.
    (A frozen record, written out: :mod:`threatgraph.records`.)"""

    status: str
    release: ReleaseInfo
    skipped: dict[str, int]
    view_slice: ViewSlice | None
    """The release's quads that the knowledge view is compiled from, kept while importing so that
    ``view_of_store(store, {graph: view_slice})`` need not read them back; None when nothing was imported."""

    _fields = ("status", "release", "skipped", "view_slice")

    def __init__(self, status: str, release: ReleaseInfo, skipped: dict[str, int] | None = None,
                 view_slice: ViewSlice | None = None) -> None:
        set_fields(self, status=status, release=release, skipped={} if skipped is None else skipped,
              view_slice=view_slice)


# -- reading records ---------------------------------------------------------------------------------
def releases(store: Store) -> list[ReleaseInfo]:
    """All releases recorded in the store, sorted by source then version."""
    rows = store.select(
        f"""SELECT ?g ?source ?version ?loc ?sha ?time ?n ?fmt WHERE {{ GRAPH {_g(RELEASES_GRAPH)} {{
            ?g a kb:Release ; kb:sourceName ?source ; kb:releaseVersion ?version ; kb:sha256 ?sha ;
               kb:sourceLocation ?loc ; prov:generatedAtTime ?time ; kb:quadCount ?n .
            OPTIONAL {{ ?g kb:format ?fmt }} }} }}"""
    )
    counts: dict[str, dict[str, int]] = {}
    for r in store.select(
        f"""SELECT ?g ?type ?n WHERE {{ GRAPH {_g(RELEASES_GRAPH)} {{
            ?c kb:countOf ?g ; kb:objectType ?type ; kb:count ?n }} }}"""
    ):
        counts.setdefault(r["g"].value, {})[r["type"].value] = int(r["n"].value)
    out = [
        ReleaseInfo(
            graph=r["g"].value,
            source=r["source"].value,
            version=r["version"].value,
            location=r["loc"].value,
            sha256=r["sha"].value,
            imported=r["time"].value,
            quads=int(r["n"].value),
            format=r["fmt"].value if "fmt" in r else "",
            counts=counts.get(r["g"].value, {}),
        )
        for r in rows
    ]
    return sorted(out, key=lambda i: (i.source, version_key(i.version)))


def newest_release(store: Store, source: str) -> str | None:
    """Graph IRI of the newest loaded release of ``source`` (``attack-enterprise``, ``atlas``, …), or None."""
    source = SOURCE_ALIASES.get(source, source)
    found = [r for r in releases(store) if r.source == source]
    return found[-1].graph if found else None


def resolve_release(store: Store, spec: str) -> str:
    """Graph IRI for ``source/version``, ``source`` (newest) or a graph IRI; InputError if not loaded."""
    infos = releases(store)
    if spec.startswith(GRAPH):
        match = [i for i in infos if i.graph == spec]
    elif "/" in spec:
        src, ver = spec.split("/", 1)
        src = SOURCE_ALIASES.get(src, src)
        match = [i for i in infos if i.source == src and i.version == ver]
    else:
        src = SOURCE_ALIASES.get(spec, spec)
        match = [i for i in infos if i.source == src][-1:]
    if not match:
        loaded = ", ".join(f"{i.source}/{i.version}" for i in infos) or "none"
        raise InputError(
            f"release {spec!r} is not loaded (loaded: {loaded})",
            hint="import it first with `threatgraph import`, or pass a file path",
        )
    return match[0].graph


# -- importing ---------------------------------------------------------------------------------------
RELEASE_PREFIX = GRAPH + "release/"


def clean_unrecorded(store: Store) -> list[str]:
    """Drop what a killed import left: graphs marked ``kb:importPending`` and staging graphs.

    Graphs written by other means (no marker) are never touched.
    """
    rg = _g(RELEASES_GRAPH)
    pending = {
        r["g"].value for r in store.select(f"SELECT ?g WHERE {{ GRAPH {rg} {{ ?g kb:importPending true }} }}")
    }
    stale = sorted(pending | {g for g in store.graph_names() if g.startswith(STAGING_PREFIX)})
    for g in stale:
        store.drop_graph(g)
    if pending:
        store.update(f"DELETE WHERE {{ GRAPH {rg} {{ ?g kb:importPending ?x }} }}")
    return stale


def kind_of(source: str) -> str:
    """The import kind (``attack``, ``atlas``, ``d3fend``, ``capec``) that produces releases of ``source``.

    >>> kind_of("attack-ics"), kind_of("atlas")
    ('attack', 'atlas')
    """
    return "attack" if source.startswith("attack") else source


def parse_release(
    kind: str, location: str | None = None, *, version: str | None = None, progress: Progress | None = None
) -> tuple[Release, Source]:
    """Read and parse one source without touching any store."""
    from threatgraph.knowledge.fetch import DEFAULT_URLS, read_source

    parser = PARSERS.get(kind)
    if parser is None:
        raise InputError(f"unknown import kind {kind!r}", hint=f"use one of {', '.join(PARSERS)}")
    src = read_source(location or DEFAULT_URLS[kind], progress)
    return parser(src.data, src.location, version, progress), src


def _provenance(rel: Release, src: Source, now: str) -> list[Quad]:
    """The release record, without ``kb:quadCount`` (counted by the commit update)."""
    import uuid

    from threatgraph.knowledge.fetch import is_url

    g = NamedNode(rel.graph)
    rg = NamedNode(RELEASES_GRAPH)
    if is_url(src.location):
        origin = NamedNode(src.location)
    else:
        origin = NamedNode(Path(src.location).expanduser().resolve().as_uri())
    q = [
        Quad(g, NamedNode(RDF.type), _kb("Release"), rg),
        Quad(g, NamedNode(RDF.type), NamedNode(PROV.Entity), rg),
        Quad(g, _kb("sourceName"), Literal(rel.source), rg),
        Quad(g, _kb("releaseVersion"), Literal(rel.version), rg),
        Quad(g, _kb("sourceLocation"), Literal(src.location), rg),
        Quad(g, NamedNode(PROV.wasDerivedFrom), origin, rg),
        Quad(g, _kb("sha256"), Literal(src.sha256), rg),
        Quad(g, NamedNode(PROV.generatedAtTime), Literal(now, datatype=NamedNode(XSD.dateTime)), rg),
        Quad(g, _kb("format"), Literal(rel.format + (" (gzip)" if src.compressed else "")), rg),
    ]
    for typ, n in sorted({**rel.counts, **{"skipped " + k: v for k, v in rel.skipped.items()}}.items()):
        c = NamedNode(f"{rel.graph}#count-{uuid.uuid5(uuid.NAMESPACE_URL, typ).hex[:12]}")
        q += [
            Quad(c, _kb("countOf"), g, rg),
            Quad(c, _kb("objectType"), Literal(typ), rg),
            Quad(c, _kb("count"), Literal(n), rg),
        ]
    return q


def _nt(quads: Iterable[Quad]) -> str:
    return "\n".join(f"{q.subject} {q.predicate} {q.object} ." for q in quads)


def load_release(
    store: Store,
    source: str,
    path: str | None = None,
    *,
    version: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import one release (``source`` = ``attack``, ``atlas``, ``d3fend`` or ``capec``) from a path or URL.

    The file is read and checked (JSON/YAML/Turtle syntax, kind, version) before the store is touched;
    quads then stream into the release graph (a new version) or a staging graph (a new file for a
    loaded version), and the provenance record is written last, in one SPARQL update that is the commit
    point: a release exists only once its record does, and readers (:func:`releases`,
    :func:`newest_release`) see only recorded ones. Any failure while writing (a bad object further in
    the file, a store error, Ctrl-C) drops the unrecorded graph and re-raises, leaving the store as it
    was; a killed process leaves an unrecorded graph (marked ``kb:importPending``) that the next
    import drops. Re-importing a file
    with the same sha256 does nothing.
    """
    from threatgraph.knowledge.fetch import DEFAULT_URLS
    from threatgraph.progress import step

    with step(f"importing {source} {(path or DEFAULT_URLS.get(source) or '').rsplit('/', 1)[-1]}"):
        return _load_release(store, source, path, version=version, progress=progress)


def _load_release(
    store: Store, source: str, path: str | None, *, version: str | None, progress: Progress | None
) -> ImportResult:
    import datetime as _dt
    import uuid

    from threatgraph.knowledge.fetch import DEFAULT_URLS, read_source

    clean_unrecorded(store)
    src_loc = path or DEFAULT_URLS.get(source)
    parser = PARSERS.get(source)
    if parser is None or src_loc is None:
        raise InputError(f"unknown import kind {source!r}", hint=f"use one of {', '.join(PARSERS)}")
    src = read_source(src_loc, progress)
    existing = releases(store)
    for info in existing:  # the same file imported as the same kind: nothing to do
        if (info.sha256 == src.sha256 and kind_of(info.source) == source
                and (version is None or info.version == version)):
            if progress:
                progress(f"{src.location}: already loaded as {info.source}/{info.version} (same sha256)")
            return ImportResult("unchanged", info)
    rel = parser(src.take(), src.location, version, progress)  # format errors: raised before any write
    old = next((i for i in existing if i.graph == rel.graph), None)
    if progress:
        progress(f"writing <{rel.graph}>")
    rg, g = _g(RELEASES_GRAPH), _g(rel.graph)
    # A new version is written in place, a new file for a loaded version into a staging graph; either
    # is marked kb:importPending until the commit point, and the embedded store hides pending and staging
    # graphs from every reader (queries, quads(), so serve), so a killed import is never visible.
    target = rel.graph if old is None else f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    marker = f"{_g(target)} kb:importPending true"
    count = (f"INSERT {{ GRAPH {rg} {{ {g} kb:quadCount ?n }} }} "  # counted by the store: readers cannot see it
             f"WHERE {{ SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {g} {{ ?s ?p ?o }} }} }}")
    view_slice = ViewSlice()
    # a parser that writes N-Quads text (ATT&CK) hands it to the store as it is when the store bulk-loads
    # text (the embedded one): no Quad objects, no re-serialisation; the view's triples are watched for
    add_nquads = getattr(store, "add_nquads", None)
    writer = rel.writer if rel.nquads is not None and callable(add_nquads) else None
    if writer is not None:
        writer.watch = frozenset(f"<{p}>" for p in VIEW_PREDICATES)
        writer.graph = target
    quads = view_slice.keep(rel.quads) if writer is None else iter(())
    try:
        store.update(f"INSERT DATA {{ GRAPH {rg} {{ {marker} }} }}")  # lets clean_unrecorded find leftovers
        # quads stream from the parser into the store (a bad object further on raises here: rolled back)
        if old is None:
            store.drop_graph(rel.graph)  # a graph of that name without a record is not a release
        if writer is not None:
            assert add_nquads is not None and rel.nquads is not None
            add_nquads(rel.nquads, trusted=True)  # the writer checked every IRI
            view_slice.keep_text(writer.watched, rel.graph)
        elif old is None:
            store.add_quads(quads)
        else:
            stg = NamedNode(target)
            store.add_quads(Quad(q.subject, q.predicate, q.object, stg) for q in quads)
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        record = _nt(_provenance(rel, src, now))
        if old is None:
            store.update(  # the commit point
                f"DELETE DATA {{ GRAPH {rg} {{ {marker} }} }} ; INSERT DATA {{ GRAPH {rg} {{ {record} }} }} ; {count}"
            )
            status = "imported"
        else:
            store.update(  # one transaction: swap the graph and the record
                f"""DROP SILENT GRAPH {g} ;
                MOVE SILENT GRAPH {_g(target)} TO GRAPH {g} ;
                DELETE WHERE {{ GRAPH {rg} {{ ?c kb:countOf {g} ; ?p ?o }} }} ;
                DELETE WHERE {{ GRAPH {rg} {{ {g} ?p ?o }} }} ;
                DELETE DATA {{ GRAPH {rg} {{ {marker} }} }} ;
                INSERT DATA {{ GRAPH {rg} {{ {record} }} }} ;
                {count}"""
            )
            status = "replaced"
    except BaseException as err:  # includes KeyboardInterrupt: roll back, then re-raise
        try:
            store.drop_graph(target)  # never recorded, so never a release
            store.update(f"DELETE DATA {{ GRAPH {rg} {{ {marker} }} }}")
        except (OSError, StoreError):  # the disk is full: the staging graph stays hidden; the next import drops it
            pass
        if isinstance(err, OSError):
            raise StoreError(f"cannot write to the store: {err.strerror or err}; the import was rolled back "
                             "and the store is as it was",
                             hint="free disk space (or use another --store directory) and import again") from err
        raise
    info = next(i for i in releases(store) if i.graph == rel.graph)
    flush = getattr(store, "flush", None)
    if callable(flush):
        flush()
    return ImportResult(status, info, rel.skipped, view_slice)


# -- status of cited techniques ----------------------------------------------------------------------
def replacement_for(store: Store, technique_iri: str) -> tuple[str, str | None]:
    """Status of a technique in the newest release of its source, with the replacement when revoked.

    Returns ``("active", None)``, ``("revoked", replacement-IRI-or-None)``, ``("deprecated", None)``,
    ``("removed", None)`` (in an older release only) or ``("unknown", None)`` (in no loaded release).
    A chain of revocations is followed to its end.
    """
    t = _g(technique_iri)
    rows = store.select(
        f"""SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ {t} a ?cls }}
            GRAPH {_g(RELEASES_GRAPH)} {{ ?g a kb:Release }} }}"""
    )
    in_graphs = {r["g"].value for r in rows}
    if not in_graphs:
        return ("unknown", None)
    infos = releases(store)
    sources = sorted({i.source for i in infos if i.graph in in_graphs})
    newest = [[i for i in infos if i.source == s][-1] for s in sources]
    present = [i for i in newest if i.graph in in_graphs]
    if not present:
        return ("removed", None)
    g = _g(present[-1].graph)
    row = store.select(
        f"""SELECT ?revoked ?deprecated ?by WHERE {{ GRAPH {g} {{ {t} a ?cls .
            OPTIONAL {{ {t} kb:revoked ?revoked }} OPTIONAL {{ {t} kb:deprecated ?deprecated }}
            OPTIONAL {{ {t} kb:revokedBy ?by }} }} }} LIMIT 1"""
    )[0]
    if "revoked" in row and row["revoked"].value == "true":
        current: str | None = row["by"].value if "by" in row else None
        seen = {technique_iri}
        while current and current not in seen:
            seen.add(current)
            nxt = store.select(
                f"SELECT ?by WHERE {{ GRAPH {g} {{ {_g(current)} kb:revoked true ; kb:revokedBy ?by }} }}"
            )
            if not nxt:
                break
            current = nxt[0]["by"].value
        return ("revoked", current)
    if "deprecated" in row and row["deprecated"].value == "true":
        return ("deprecated", None)
    return ("active", None)


# -- queries used by tests, benchmarks and reports ---------------------------------------------------
def technique_mitigations(store: Store, release: str) -> dict[str, set[str]]:
    """Active technique ID → IDs of its active mitigations (ATT&CK or ATLAS), in one SPARQL query."""
    q = _bind(
        ACTIVE_MITIGATES_QUERY.replace("SELECT ?technique ?mitigation", "SELECT ?tid ?mid").replace(
            "?mitigation kb:mitigates ?technique .",
            "?mitigation kb:mitigates ?technique .\n"
            "    ?technique kb:attackId|kb:externalId ?tid . ?mitigation kb:attackId|kb:externalId ?mid .",
        ),
        release,
    )
    out: dict[str, set[str]] = {}
    for r in store.select(q):
        out.setdefault(r["tid"].value, set()).add(r["mid"].value)
    return out


def active_ids(store: Store, release: str, cls: str = "Technique") -> set[str]:
    """IDs (kb:attackId or kb:externalId) of the active members of ``kb:<cls>`` in one release."""
    rows = store.select(
        f"""SELECT ?id WHERE {{ GRAPH {_g(release)} {{
            ?x a {_g(KB[cls])} . {{ ?x kb:attackId ?id }} UNION {{ ?x kb:externalId ?id }}
            FILTER NOT EXISTS {{ ?x kb:revoked true }} FILTER NOT EXISTS {{ ?x kb:deprecated true }} }} }}"""
    )
    return {r["id"].value for r in rows}


def require_release(store: Store, graph: str) -> None:
    """Raise :class:`InputError` when ``graph`` is not a recorded release."""
    if not any(i.graph == graph for i in releases(store)):
        raise InputError(f"<{graph}> is not a loaded release", hint="see `threatgraph releases`")


__all__ = [
    "ACTIVE_MITIGATES_QUERY",
    "ACTIVE_TECHNIQUES_QUERY",
    "PARSERS",
    "RELEASES_GRAPH",
    "ImportFailed",
    "ImportResult",
    "ReleaseInfo",
    "active_filter",
    "active_ids",
    "clean_unrecorded",
    "diff_releases",
    "load_release",
    "newest_release",
    "parse_release",
    "release_graph",
    "releases",
    "replacement_for",
    "resolve_release",
    "snapshot",
    "technique_mitigations",
    "version_key",
]


# -- release diff ------------------------------------------------------------------------------------
DIFF_KINDS = {"techniques": "Technique", "mitigations": "Mitigation"}


class _Entry(Record):
    """The facts of one technique or mitigation a release diff compares (a mutable record, written out:
    :mod:`threatgraph.records`)."""

    iri: str
    ident: str
    name: str
    version: str
    revoked: bool
    deprecated: bool
    revoked_by: str
    tactics: set[str]
    platforms: set[str]
    related: set[str]

    _fields = ("iri", "ident", "name", "version", "revoked", "deprecated", "revoked_by", "tactics", "platforms",
               "related")

    def __init__(self, iri: str, ident: str, name: str = "", version: str = "", revoked: bool = False,
                 deprecated: bool = False, revoked_by: str = "", tactics: set[str] | None = None,
                 platforms: set[str] | None = None, related: set[str] | None = None) -> None:
        set_fields(self, iri=iri, ident=ident, name=name, version=version, revoked=revoked, deprecated=deprecated,
              revoked_by=revoked_by, tactics=set() if tactics is None else tactics,
              platforms=set() if platforms is None else platforms, related=set() if related is None else related)

    @property
    def active(self) -> bool:
        return not (self.revoked or self.deprecated)


def snapshot(store: Store, release: str, cls: str) -> dict[str, _Entry]:
    """ID → facts compared by :func:`diff_releases` for every ``kb:<cls>`` of one release."""
    g, c = _g(release), _g(KB[cls])
    entries: dict[str, _Entry] = {}
    by_iri: dict[str, _Entry] = {}
    for r in store.select(
        f"""SELECT ?x ?id ?name ?version ?revoked ?deprecated ?byid WHERE {{ GRAPH {g} {{
            ?x a {c} . {{ ?x kb:attackId ?id }} UNION {{ ?x kb:externalId ?id }}
            OPTIONAL {{ ?x rdfs:label ?name }} OPTIONAL {{ ?x kb:version ?version }}
            OPTIONAL {{ ?x kb:revoked ?revoked }} OPTIONAL {{ ?x kb:deprecated ?deprecated }}
            OPTIONAL {{ ?x kb:revokedBy ?by . ?by kb:attackId|kb:externalId ?byid }}
        }} }}"""
    ):
        e = _Entry(
            iri=r["x"].value,
            ident=r["id"].value,
            name=r["name"].value if "name" in r else "",
            version=r["version"].value if "version" in r else "",
            revoked="revoked" in r and r["revoked"].value == "true",
            deprecated="deprecated" in r and r["deprecated"].value == "true",
            revoked_by=r["byid"].value if "byid" in r else "",
        )
        entries[e.ident] = e
        by_iri[e.iri] = e
    related = (
        "?x kb:mitigates ?y . ?y kb:attackId|kb:externalId ?v"
        if cls == "Mitigation"
        else "?y kb:mitigates ?x . ?y kb:attackId|kb:externalId ?v"
    )
    for attr, pattern in (
        ("tactics", "?x kb:tactic ?y . ?y rdfs:label ?v"),
        ("platforms", "?x kb:platform ?y . ?y rdfs:label ?v"),
        ("related", related),
    ):
        for r in store.select(f"SELECT ?x ?v WHERE {{ GRAPH {g} {{ ?x a {c} . {pattern} }} }}"):
            e2 = by_iri.get(r["x"].value)
            if e2 is not None:
                getattr(e2, attr).add(r["v"].value)
    return entries


def _brief(e: _Entry) -> dict[str, Any]:
    return {"id": e.ident, "name": e.name}


def diff_releases(old_store: Store, old: str, new_store: Store, new: str) -> dict[str, Any]:
    """Techniques and mitigations added, removed, newly revoked (with replacement), deprecated, changed."""
    out: dict[str, Any] = {"old": old, "new": new}
    for key, cls in DIFF_KINDS.items():
        a, b = snapshot(old_store, old, cls), snapshot(new_store, new, cls)
        rel_name = "techniques" if cls == "Mitigation" else "mitigations"
        changed = []
        for ident in sorted(set(a) & set(b)):
            x, y = a[ident], b[ident]
            if not y.active:
                continue
            ch: dict[str, Any] = {}
            if x.name != y.name:
                ch["name"] = {"old": x.name, "new": y.name}
            if x.version != y.version:
                ch["version"] = {"old": x.version, "new": y.version}
            for attr, label in (("tactics", "tactics"), ("platforms", "platforms"), ("related", rel_name)):
                old_set, new_set = getattr(x, attr), getattr(y, attr)
                if old_set != new_set:
                    ch[label] = {"added": sorted(new_set - old_set), "removed": sorted(old_set - new_set)}
            if ch:
                changed.append({**_brief(y), "changes": ch})
        out[key] = {
            "added": [_brief(b[i]) for i in sorted(set(b) - set(a))],
            "removed": [_brief(a[i]) for i in sorted(set(a) - set(b))],
            "revoked": [
                {**_brief(b[i]), "replacement": b[i].revoked_by or None}
                for i in sorted(set(a) & set(b))
                if b[i].revoked and not a[i].revoked
            ],
            "deprecated": [
                _brief(b[i]) for i in sorted(set(a) & set(b)) if b[i].deprecated and not a[i].deprecated
            ],
            "changed": changed,
        }
    return out
