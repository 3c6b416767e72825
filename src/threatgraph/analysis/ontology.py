"""The shipped ontology: its modules, parsed once per process, and the terms it defines.

>>> onto = load_ontology()
>>> "https://w3id.org/threatgraph/ontology#DataFlow" in onto.terms
True
>>> "https://w3id.org/threatgraph/stride#Spoofing" in onto.categories
True
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyoxigraph import NamedNode, Quad, RdfFormat, Triple, parse, serialize

from threatgraph import __version__
from threatgraph.cachefiles import cache_dir, library_stamp, read_cached, write_atomic
from threatgraph.errors import InputError
from threatgraph.resources import ontology_dir
from threatgraph.terms import RDF, RDFS, TG

if TYPE_CHECKING:
    import rdflib

_OWL = "http://www.w3.org/2002/07/owl#"
_DECLARING = (
    _OWL + "Class",
    _OWL + "ObjectProperty",
    _OWL + "DatatypeProperty",
    _OWL + "AnnotationProperty",
    _OWL + "NamedIndividual",
    RDF.Property,
    RDFS.Class,
)
"""Types that declare a term (IRIs; rdflib is imported only to parse, not to read the cached ontology)."""


ONTOLOGY_CACHE_VERSION = "1"
"""Bumped whenever what the cached ontology holds changes (part of its cache key)."""


@dataclass(frozen=True)
class Ontology:
    """The merged ontology plus indexes the loader and checker need.

    ``ntriples`` is the ontology as the analysis store holds it (what :meth:`quads` yields); ``graph``,
    the rdflib graph, is built from it on first use (the cached ontology of a run needs none: the
    closure is compiled and cached too), with the same blank-node labels."""

    files: tuple[Path, ...]
    terms: frozenset[str]
    """IRIs of everything the ontology declares or describes (classes, properties, individuals)."""
    classes: frozenset[str]
    properties: frozenset[str]
    categories: frozenset[str]
    """STRIDE and LINDDUN category IRIs."""
    ntriples: bytes = field(repr=False)
    digest: str = ""
    """sha256 of ``ntriples``: the key of the compiled closure (:mod:`threatgraph.analysis.closure`)."""
    _graph: rdflib.Graph | None = field(default=None, repr=False, compare=False)

    @property
    def graph(self) -> rdflib.Graph:
        """The ontology as an rdflib graph (parsed from :attr:`ntriples` on first use)."""
        if self._graph is None:
            import rdflib

            from threatgraph.convert import from_ox

            g = rdflib.Graph()
            for t in parse(self.ntriples, format=RdfFormat.N_TRIPLES):
                g.add((from_ox(t.subject), from_ox(t.predicate), from_ox(t.object)))
            object.__setattr__(self, "_graph", g)
            return g
        return self._graph

    def quads(self, graph: str) -> list[Quad]:
        """The ontology's triples as quads in ``graph`` (what the analysis store loads)."""
        g = NamedNode(graph)
        return [Quad(t.subject, t.predicate, t.object, g) for t in parse(self.ntriples, format=RdfFormat.N_TRIPLES)]


def ontology_files(directory: Path | None = None) -> list[Path]:
    """Top-level ``*.ttl`` modules of the ontology directory (shapes and mappings live in subfolders)."""
    d = directory or ontology_dir()
    return sorted(d.glob("*.ttl"))


_FORMATS = {".ttl": "turtle", ".owl": "xml", ".rdf": "xml", ".xml": "xml", ".nt": "nt", ".n3": "n3",
            ".jsonld": "json-ld", ".json": "json-ld", ".trig": "trig"}


def parse_extension(path: Path) -> rdflib.Graph:
    """Parse a user's ontology extension (Turtle, RDF/XML, N-Triples, JSON-LD by file suffix).

    Bad input is an :class:`InputError` naming the file (and the parser's line where it gives one).
    """
    import rdflib

    fmt = _FORMATS.get(path.suffix.lower(), "turtle")
    g = rdflib.Graph()
    try:
        g.parse(path, format=fmt)
    except FileNotFoundError:
        raise InputError(f"{path}: no such ontology extension file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the ontology extension: {err}") from None
    except (SyntaxError, ValueError) as err:  # rdflib's BadSyntax subclasses SyntaxError
        raise InputError(f"{path}: cannot parse the ontology extension ({fmt}): {' '.join(str(err).split())}",
                         hint="fix the syntax; the extension is RDF (Turtle, RDF/XML, N-Triples or JSON-LD)") from None
    if len(g) == 0:
        raise InputError(f"{path}: the ontology extension is empty")
    return g


def _parse(files: tuple[Path, ...], extra: tuple[Path, ...]) -> Ontology:
    import rdflib

    g = rdflib.Graph()
    for f in files:
        try:
            g.parse(f, format="turtle")
        except (SyntaxError, ValueError) as err:  # rdflib's BadSyntax subclasses SyntaxError
            raise InputError(f"{f}: cannot parse the ontology module: {err}") from err
    for f in extra:
        g += parse_extension(f)
    terms = {str(s) for s in g.subjects() if isinstance(s, rdflib.URIRef)}
    a = rdflib.URIRef(RDF.type)
    classes = {str(s) for s in g.subjects(a, rdflib.URIRef(_DECLARING[0])) if isinstance(s, rdflib.URIRef)}
    props: set[str] = set()
    for kind in _DECLARING[1:5]:
        props |= {str(s) for s in g.subjects(a, rdflib.URIRef(kind)) if isinstance(s, rdflib.URIRef)}
    cats = {str(s) for s in g.subjects(a, rdflib.URIRef(TG.ThreatCategory))}
    from threatgraph.convert import to_ox

    nt = serialize([Triple(to_ox(s), to_ox(p), to_ox(o)) for s, p, o in g], format=RdfFormat.N_TRIPLES) or b""  # type: ignore[arg-type]
    return Ontology(files + extra, frozenset(terms), frozenset(classes), frozenset(props), frozenset(cats), nt,
                    hashlib.sha256(nt).hexdigest(), g)


def _source_key(files: tuple[Path, ...], extra: tuple[Path, ...]) -> str | None:
    """Digest of the ontology sources (their names and bytes), or None when one cannot be read."""
    h = hashlib.sha256(f"threatgraph-ontology/{ONTOLOGY_CACHE_VERSION}/{__version__}/{library_stamp('rdflib')}\n".encode())
    for kind, group in (("module", files), ("extension", extra)):
        for f in group:
            try:
                data = f.read_bytes()
            except OSError:
                return None
            h.update(f"{kind} {f.name if kind == 'module' else f} {len(data)}\n".encode())
            h.update(data)
    return h.hexdigest()


def _from_cache(raw: bytes, files: tuple[Path, ...]) -> Ontology | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("version") != ONTOLOGY_CACHE_VERSION:
        return None
    sets: list[frozenset[str]] = []
    for k in ("terms", "classes", "properties", "categories"):
        v = doc.get(k)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            return None
        sets.append(frozenset(v))
    nt = doc.get("ntriples")
    if not isinstance(nt, str) or not nt:
        return None
    data = nt.encode("utf-8")
    return Ontology(files, sets[0], sets[1], sets[2], sets[3], data, hashlib.sha256(data).hexdigest())


def _to_cache(onto: Ontology) -> bytes:
    doc = {"version": ONTOLOGY_CACHE_VERSION, "terms": sorted(onto.terms), "classes": sorted(onto.classes),
           "properties": sorted(onto.properties), "categories": sorted(onto.categories),
           "ntriples": onto.ntriples.decode("utf-8")}
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


@functools.lru_cache(maxsize=4)
def _load(files: tuple[Path, ...], stamps: tuple[float, ...], extra: tuple[Path, ...] = ()) -> Ontology:
    """The ontology of ``files`` + ``extra``: from the cache (``ontology/<digest of the sources>.json``
    under :func:`~threatgraph.cachefiles.cache_dir`) when it is there, else parsed and cached
    (parsing the Turtle modules with rdflib costs ~0.2 s per process; reading the cache ~5 ms)."""
    key = _source_key(files, extra)
    path = cache_dir() / "ontology" / f"{key}.json" if key else None
    if path is not None:
        raw = read_cached(path)
        if raw is not None:
            hit = _from_cache(raw, files + extra)
            if hit is not None:
                return hit
    onto = _parse(files, extra)
    if path is not None:
        write_atomic(path, _to_cache(onto))
    return onto


def load_ontology(directory: Path | None = None, extra: Sequence[str | Path] = ()) -> Ontology:
    """Parse all ontology modules, plus a user's ``extra`` files (an extension: new ML classes,
    applicability axioms, mappings), cached per process per set of files while they are unchanged."""
    files = tuple(ontology_files(directory))
    if not files:
        raise InputError(f"no ontology modules (*.ttl) in {directory or ontology_dir()}")
    ext = tuple(Path(f).resolve() for f in extra)
    for f in ext:
        if not f.is_file():
            raise InputError(f"{f}: no such ontology extension file")
    return _load(files, tuple(f.stat().st_mtime for f in files + ext), ext)
