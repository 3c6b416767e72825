"""MITRE D3FEND ontology (Turtle) → quads of its own release graph, unchanged."""

from __future__ import annotations

from collections import Counter

from pyoxigraph import NamedNode, Quad, RdfFormat, parse

from threatgraph.errors import ImportFailed
from threatgraph.knowledge.fetch import Progress
from threatgraph.knowledge.stix import Release, release_graph, version_from_name
from threatgraph.terms import D3F, OWL, RDF

SOURCE = "d3fend"


def parse_d3fend(
    data: bytes, location: str, version: str | None = None, progress: Progress | None = None
) -> Release:
    """Parse the D3FEND Turtle; version from ``owl:versionInfo``, ``version``, or the file name."""
    if progress:
        progress(f"parsing {location}")
    try:
        triples = list(parse(data, RdfFormat.TURTLE))
    except SyntaxError as err:
        raise ImportFailed(f"{location}: malformed Turtle: {err}", hint="the file may be truncated") from err
    ver = version
    owl_version = OWL.versionInfo
    ontology = OWL.Ontology
    counts: Counter[str] = Counter()
    versions: dict[str, str] = {}
    ontologies: set[str] = set()
    for t in triples:
        if t.predicate.value == owl_version:
            versions[t.subject.value] = str(t.object.value)
        if t.predicate.value == RDF.type and isinstance(t.object, NamedNode):
            o = t.object.value
            if o == ontology:
                ontologies.add(t.subject.value)
            if o.startswith(OWL) and o != ontology:
                counts[o[len(OWL) :]] += 1
            elif o == ontology and not t.subject.value.startswith(D3F.rstrip("#")):
                raise ImportFailed(
                    f"{location}: ontology {t.subject} is not D3FEND", hint="pass the D3FEND TTL"
                )
    if not any(t.subject.value.startswith(str(D3F)) for t in triples[:2000]):
        raise ImportFailed(f"{location}: no d3f: terms: not the D3FEND ontology", hint="pass d3fend*.ttl")
    ver = ver or next((versions[o] for o in sorted(ontologies) if o in versions), None)
    ver = ver or version_from_name(location.rsplit("/", 1)[-1])
    if not ver:
        raise ImportFailed(f"{location}: cannot tell the D3FEND version", hint="pass --release-version 1.2.0")
    g = NamedNode(release_graph(SOURCE, ver))
    quads = [Quad(t.subject, t.predicate, t.object, g) for t in triples]
    counts["triples"] = len(quads)
    return Release(source=SOURCE, version=ver, quads=quads, counts=dict(counts), format="Turtle")
