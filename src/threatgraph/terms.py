"""Namespaces and well-known IRIs of threatgraph (stable, documented in README).

Every other module takes its IRIs from here; nothing else spells a namespace.

>>> TG.DataFlow
'https://w3id.org/threatgraph/ontology#DataFlow'
>>> graph_iri("model")
'https://w3id.org/threatgraph/graph/model'
"""

from __future__ import annotations

from typing import Final

BASE: Final = "https://w3id.org/threatgraph/"


class Namespace(str):
    """A string IRI prefix; attribute or item access yields the full IRI as ``str``."""

    __slots__ = ()

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        return self + name

    def __getitem__(self, name: str) -> str:  # type: ignore[override]
        return self + name

    def term(self, name: str) -> str:
        """Full IRI for ``name``."""
        return self + name


TG: Final = Namespace(BASE + "ontology#")
"""Core data-flow ontology, security attributes, findings vocabulary."""
TGML: Final = Namespace(BASE + "ml#")
"""ML asset taxonomy."""
STRIDE: Final = Namespace(BASE + "stride#")
LINDDUN: Final = Namespace(BASE + "linddun#")
KB: Final = Namespace(BASE + "kb#")
"""Threat-knowledge vocabulary (techniques, tactics, mitigations, releases)."""
ATTACK: Final = Namespace(BASE + "attack/")
"""ID-based IRIs of ATT&CK objects: ``ATTACK["T1059.001"]``."""
ATLAS: Final = Namespace(BASE + "atlas/")
"""ID-based IRIs of ATLAS objects: ``ATLAS["AML.T0020"]``."""
CAPEC: Final = Namespace(BASE + "capec/")
FINDING: Final = Namespace(BASE + "finding/")
RULE: Final = Namespace(BASE + "rule/")
GRAPH: Final = Namespace(BASE + "graph/")

RDF: Final = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
RDFS: Final = Namespace("http://www.w3.org/2000/01/rdf-schema#")
OWL: Final = Namespace("http://www.w3.org/2002/07/owl#")
XSD: Final = Namespace("http://www.w3.org/2001/XMLSchema#")
SKOS: Final = Namespace("http://www.w3.org/2004/02/skos/core#")
DCT: Final = Namespace("http://purl.org/dc/terms/")
PROV: Final = Namespace("http://www.w3.org/ns/prov#")
SH: Final = Namespace("http://www.w3.org/ns/shacl#")
D3F: Final = Namespace("http://d3fend.mitre.org/ontologies/d3fend.owl#")

PREFIXES: Final[dict[str, str]] = {
    "tg": str(TG),
    "tgml": str(TGML),
    "stride": str(STRIDE),
    "linddun": str(LINDDUN),
    "kb": str(KB),
    "attack": str(ATTACK),
    "atlas": str(ATLAS),
    "capec": str(CAPEC),
    "finding": str(FINDING),
    "rule": str(RULE),
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "owl": str(OWL),
    "xsd": str(XSD),
    "skos": str(SKOS),
    "dct": str(DCT),
    "prov": str(PROV),
    "sh": str(SH),
    "d3f": str(D3F),
}


TURTLE_PREFIXES: Final[dict[str, str]] = {k: v for k, v in PREFIXES.items() if k not in ("finding", "rule")}
"""Prefixes for Turtle output: finding and rule IRIs are written in full (their local parts contain '/')."""


STANDARD_VOCABULARIES: Final = (
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://www.w3.org/2000/01/rdf-schema#",
    "http://www.w3.org/2002/07/owl#",
    "http://www.w3.org/2001/XMLSchema#",
    "http://www.w3.org/2004/02/skos/core#",
    "http://purl.org/dc/terms/",
    "http://purl.org/dc/elements/1.1/",
    "http://www.w3.org/ns/prov#",
    "http://xmlns.com/foaf/0.1/",
    "https://schema.org/",
    "http://schema.org/",
    "http://www.w3.org/ns/shacl#",
)
"""Vocabularies a model may use without the ontology defining them (no undefined-term warning)."""


def graph_iri(name: str) -> str:
    """IRI of one of threatgraph's named graphs (``ontology``, ``model``, ``inferred``, ``findings``, …)."""
    return GRAPH + name


def sparql_prefixes() -> str:
    """PREFIX declarations for every namespace in :data:`PREFIXES`."""
    return "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in PREFIXES.items())
