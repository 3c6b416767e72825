"""Loading users' system models (any RDF syntax rdflib reads) with located, actionable errors.

>>> m = parse_model_text('''@prefix tg: <https://w3id.org/threatgraph/ontology#> .
... <urn:x:p> a tg:Process .''', "inline.ttl")
>>> len(m)
1
"""

from __future__ import annotations

import xml.sax
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rdflib
from rdflib.namespace import RDF
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.util import guess_format

from threatgraph.analysis.ontology import Ontology
from threatgraph.errors import InputError
from threatgraph.interchange import convert_file
from threatgraph.terms import STANDARD_VOCABULARIES, TG

MAX_MODEL_BYTES = 512 * 1024 * 1024
"""Refuse model files above this size (a clear error rather than running out of memory)."""

# Vocabularies a model may use without the ontology defining them.
_STANDARD = STANDARD_VOCABULARIES


@dataclass
class ModelLoad:
    """The parsed model graph and what the loader noticed."""

    graph: rdflib.Graph
    files: list[str]
    warnings: list[str] = field(default_factory=list)
    """Deviations from an imported format's schema that were read anyway (OTM, Threat Dragon, Threagile)."""


def _format_for(path: Path) -> str:
    fmt = guess_format(str(path))
    if fmt is None:
        return "turtle"
    return fmt


def parse_model_text(text: str, name: str, fmt: str = "turtle", graph: rdflib.Graph | None = None) -> rdflib.Graph:
    """Parse RDF text into ``graph`` (new if None); errors name ``name`` and the line."""
    g = graph if graph is not None else rdflib.Graph()
    try:
        g.parse(data=text, format=fmt, publicID=Path(name).resolve().as_uri() if "/" in name else None)
    except BadSyntax as err:
        line = getattr(err, "lines", 0) + 1
        why = getattr(err, "_why", None) or str(err).splitlines()[0]
        raise InputError(
            f"{name}:{line}: malformed {fmt}: {why}",
            hint="fix the syntax at that line (a missing '.', ';' or a prefix that is not declared?)",
        ) from err
    except xml.sax.SAXParseException as err:
        raise InputError(f"{name}:{err.getLineNumber()}: malformed RDF/XML: {err.getMessage()}") from err
    except (SyntaxError, ValueError, TypeError, KeyError) as err:
        raise InputError(f"{name}: cannot parse as {fmt}: {err}") from err
    return g


def load_model_files(paths: Sequence[str | Path]) -> ModelLoad:
    """Parse one or more model files into a single graph (the system model)."""
    if not paths:
        raise InputError("no model file given", hint="name at least one model file, e.g. data/examples/rag-assistant.ttl")
    g = rdflib.Graph()
    files: list[str] = []
    warnings: list[str] = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InputError(f"{path}: no such file", hint="check the path; example models are in data/examples/")
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a model file")
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise InputError(f"{path}: {size} bytes is above the {MAX_MODEL_BYTES}-byte limit for a model file")
        if (converted := convert_file(path)) is not None:  # OTM, Threat Dragon, Threagile
            g += converted.graph
            warnings.extend(f"{w} (read anyway)" for w in converted.warnings)
            files.append(str(path))
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text (byte {err.start})", hint="save the model as UTF-8") from err
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror}") from err
        before = len(g)
        parse_model_text(text, str(path), _format_for(path), g)
        if len(g) == before and not text.strip():
            raise InputError(f"{path}: the file is empty", hint="describe the system's elements and flows in it")
        files.append(str(path))
    if len(g) == 0:
        raise InputError(
            f"{', '.join(files)}: the model contains no triples",
            hint="a model needs at least one element, e.g. `ex:api a tg:Process ; rdfs:label \"API\" .`",
        )
    return ModelLoad(g, files, warnings)


def undefined_terms(model: rdflib.Graph, onto: Ontology) -> tuple[list[str], list[str]]:
    """Classes and properties the model uses that neither the ontology nor the model itself defines."""
    declared_here = {str(s) for s in model.subjects() if isinstance(s, rdflib.URIRef)}
    known = onto.terms | declared_here

    def unknown(iri: str) -> bool:
        return not iri.startswith(_STANDARD) and iri not in known

    classes = sorted({str(o) for o in model.objects(None, RDF.type) if isinstance(o, rdflib.URIRef) and unknown(str(o))})
    props = sorted({str(p) for p in model.predicates() if unknown(str(p))})
    return classes, props


def model_warnings(model: rdflib.Graph, onto: Ontology) -> list[str]:
    """Warnings about a parsed model: undefined classes and properties, nothing typed as an element."""
    out: list[str] = []
    classes, props = undefined_terms(model, onto)
    for c in classes:
        out.append(f"class <{c}> is not defined by the threatgraph ontology (typo? elements of it get no findings)")
    for p in props:
        out.append(f"property <{p}> is not defined by the threatgraph ontology (typo? it is ignored by the rules)")
    return out


def flow_errors(closure: Iterable[tuple[str, str | None, str | None]]) -> list[str]:
    """Messages for data flows without a source or a target: ``closure`` yields (flow, source, target)."""
    msgs = []
    for flow, src, tgt in closure:
        missing = [n for n, v in (("tg:source", src), ("tg:target", tgt)) if v is None]
        if missing:
            msgs.append(f"data flow <{flow}> has no {' and no '.join(missing)}")
    return msgs


TG_DATAFLOW = TG.DataFlow
