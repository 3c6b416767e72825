"""The shipped ontology: its modules, parsed once per process, and the terms it defines.

>>> onto = load_ontology()
>>> "https://w3id.org/threatgraph/ontology#DataFlow" in onto.terms
True
>>> "https://w3id.org/threatgraph/stride#Spoofing" in onto.categories
True
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rdflib
from rdflib.namespace import RDF, RDFS

from threatgraph.errors import InputError
from threatgraph.resources import ontology_dir
from threatgraph.terms import TG

_DECLARING = (
    rdflib.OWL.Class,
    rdflib.OWL.ObjectProperty,
    rdflib.OWL.DatatypeProperty,
    rdflib.OWL.AnnotationProperty,
    rdflib.OWL.NamedIndividual,
    RDF.Property,
    RDFS.Class,
)


@dataclass(frozen=True)
class Ontology:
    """The merged ontology graph plus indexes the loader and checker need."""

    graph: rdflib.Graph
    files: tuple[Path, ...]
    terms: frozenset[str]
    """IRIs of everything the ontology declares or describes (classes, properties, individuals)."""
    classes: frozenset[str]
    properties: frozenset[str]
    categories: frozenset[str]
    """STRIDE and LINDDUN category IRIs."""


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


@functools.lru_cache(maxsize=4)
def _load(files: tuple[Path, ...], stamps: tuple[float, ...], extra: tuple[Path, ...] = ()) -> Ontology:
    g = rdflib.Graph()
    for f in files:
        try:
            g.parse(f, format="turtle")
        except (SyntaxError, ValueError) as err:  # rdflib's BadSyntax subclasses SyntaxError
            raise InputError(f"{f}: cannot parse the ontology module: {err}") from err
    for f in extra:
        g += parse_extension(f)
    terms = {str(s) for s in g.subjects() if isinstance(s, rdflib.URIRef)}
    classes = {str(s) for s in g.subjects(RDF.type, rdflib.OWL.Class) if isinstance(s, rdflib.URIRef)}
    props: set[str] = set()
    for kind in _DECLARING[1:5]:
        props |= {str(s) for s in g.subjects(RDF.type, kind) if isinstance(s, rdflib.URIRef)}
    cats = {str(s) for s in g.subjects(RDF.type, rdflib.URIRef(TG.ThreatCategory))}
    return Ontology(g, files + extra, frozenset(terms), frozenset(classes), frozenset(props), frozenset(cats))


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
