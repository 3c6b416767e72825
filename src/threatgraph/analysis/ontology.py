"""The shipped ontology: its modules, parsed once per process, and the terms it defines.

>>> onto = load_ontology()
>>> "https://w3id.org/threatgraph/ontology#DataFlow" in onto.terms
True
>>> "https://w3id.org/threatgraph/stride#Spoofing" in onto.categories
True
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=4)
def _load(files: tuple[Path, ...], stamps: tuple[float, ...]) -> Ontology:
    g = rdflib.Graph()
    for f in files:
        try:
            g.parse(f, format="turtle")
        except (SyntaxError, ValueError) as err:  # rdflib's BadSyntax subclasses SyntaxError
            raise InputError(f"{f}: cannot parse the ontology module: {err}") from err
    terms = {str(s) for s in g.subjects() if isinstance(s, rdflib.URIRef)}
    classes = {str(s) for s in g.subjects(RDF.type, rdflib.OWL.Class) if isinstance(s, rdflib.URIRef)}
    props: set[str] = set()
    for kind in _DECLARING[1:5]:
        props |= {str(s) for s in g.subjects(RDF.type, kind) if isinstance(s, rdflib.URIRef)}
    cats = {str(s) for s in g.subjects(RDF.type, rdflib.URIRef(TG.ThreatCategory))}
    return Ontology(g, files, frozenset(terms), frozenset(classes), frozenset(props), frozenset(cats))


def load_ontology(directory: Path | None = None) -> Ontology:
    """Parse all ontology modules (cached per process while the files are unchanged)."""
    files = tuple(ontology_files(directory))
    if not files:
        raise InputError(f"no ontology modules (*.ttl) in {directory or ontology_dir()}")
    return _load(files, tuple(f.stat().st_mtime for f in files))
