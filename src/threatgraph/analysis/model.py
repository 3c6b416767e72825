"""Loading users' system models (any RDF syntax rdflib reads) with located, actionable errors.

>>> m = parse_model_text('''@prefix tg: <https://w3id.org/threatgraph/ontology#> .
... <urn:x:p> a tg:Process .''', "inline.ttl")
>>> len(m)
1
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING

from pyoxigraph import BlankNode, Literal, NamedNode, RdfFormat, parse

from threatgraph.analysis.ontology import Ontology
from threatgraph.errors import InputError
from threatgraph.interchange import convert_file
from threatgraph.terms import RDF, STANDARD_VOCABULARIES, TG, XSD

if TYPE_CHECKING:  # rdflib (~0.1 s to import) is needed only for syntaxes other than Turtle and N-Triples
    import rdflib

    from threatgraph.interchange.mlclasses import MLClasses

OxTerm = NamedNode | BlankNode | Literal
OxTriple = tuple[OxTerm, OxTerm, OxTerm]

MAX_MODEL_BYTES = 512 * 1024 * 1024
MAX_ELEMENTS_ENV = "THREATGRAPH_MAX_ELEMENTS"
DEFAULT_MAX_ELEMENTS = 50_000
"""Models describing more typed resources (elements, flows, zones, data assets, controls) are refused up
front: an analysis takes about 20 s and 1 GB per 10,000 elements on a 2-core machine (docs/limits.md)."""


def max_elements() -> int:
    """The typed-resource limit of a model: ``$THREATGRAPH_MAX_ELEMENTS`` or :data:`DEFAULT_MAX_ELEMENTS`."""
    raw = os.environ.get(MAX_ELEMENTS_ENV, "")
    try:
        value = int(raw) if raw else DEFAULT_MAX_ELEMENTS
    except ValueError:
        raise InputError(f"{MAX_ELEMENTS_ENV}={raw!r} is not a whole number") from None
    return value if value > 0 else DEFAULT_MAX_ELEMENTS
"""Refuse model files above this size (a clear error rather than running out of memory)."""

# Vocabularies a model may use without the ontology defining them.
_STANDARD = STANDARD_VOCABULARIES


@dataclass
class ModelLoad:
    """The parsed model (as store terms) and what the loader noticed."""

    triples: list[OxTriple]
    """The model's triples, each once, as pyoxigraph terms (what the analysis store holds)."""
    files: list[str]
    warnings: list[str] = field(default_factory=list)
    """Deviations from an imported format's schema that were read anyway (OTM, Threat Dragon, Threagile, …),
    and the ML classes an importer chose from an element's words (with the reason)."""
    _graph: rdflib.Graph | None = field(default=None, repr=False, compare=False)
    texts: list[str] | None = field(default=None, repr=False, compare=False)
    """The model files as Turtle documents that hold exactly :attr:`triples` (each with an ``@base``
    directive where the file had a base IRI), when every file is Turtle that pyoxigraph parsed and no triple
    has a blank node; else None. A store loads these itself (:meth:`threatgraph.analysis.engine.Engine.load`):
    at 10 k elements ~0.15 s less than building and adding 74 k quads, with the same graph (the same parser;
    blank nodes would get other labels than :attr:`triples` gives them, hence none)."""

    @property
    def graph(self) -> rdflib.Graph:
        """The model as an rdflib graph (built on first use, blank-node labels as in :attr:`triples`)."""
        if self._graph is None:
            import rdflib

            from threatgraph.convert import from_ox

            g = rdflib.Graph()
            for s, p, o in self.triples:
                g.add((from_ox(s), from_ox(p), from_ox(o)))
            self._graph = g
        return self._graph


def _format_for(path: Path) -> str:
    from rdflib.util import guess_format

    fmt = guess_format(str(path))
    if fmt is None:
        return "turtle"
    return fmt


def parse_model_text(text: str, name: str, fmt: str = "turtle", graph: rdflib.Graph | None = None) -> rdflib.Graph:
    """Parse RDF text into ``graph`` (new if None); errors name ``name`` and the line."""
    import xml.sax

    import rdflib
    from rdflib.exceptions import Error as RdflibError
    from rdflib.plugins.parsers.notation3 import BadSyntax

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
    except RdflibError as err:  # e.g. the N-Triples parser's ParserError("Invalid line: ...")
        raise InputError(f"{name}:{_line_of(text, str(err))}: malformed {fmt}: {err}",
                         hint="fix the syntax at that line") from err
    except (SyntaxError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise InputError(f"{name}: cannot parse as {fmt}: {err}") from err
    check_iris(g, name, text)
    return g


# Characters an IRI may not contain (RFC 3987): rdflib's Turtle parser lets them through, and the
# reasoner (Rust) then panics on them.
_BAD_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\]')


def check_iris(g: rdflib.Graph, name: str, text: str = "") -> None:
    """Refuse a model holding an IRI that is not one (spaces, quotes, braces, control characters …),
    naming the first one and its line."""
    import rdflib

    seen: set[str] = set()
    for triple in g:
        for term in triple:
            if isinstance(term, rdflib.URIRef):
                v = str(term)
                if v in seen:
                    continue
                seen.add(v)
                m = _BAD_IRI.search(v)
                if m:
                    where = _line_of(text, v.rsplit("/", 1)[-1][:40]) if text else "?"
                    raise InputError(
                        f"{name}:{where}: <{v}> is not a valid IRI (it contains {m.group(0)!r})",
                        hint="IRIs may not contain spaces, quotes, braces, '<', '>', '|', '^', '`' or '\\'; "
                        "percent-encode them (%20 for a space) or use another name",
                    )


def _line_of(text: str, fragment: str) -> str:
    """The 1-based line of ``text`` where ``fragment`` (or the text after "Invalid line: ") first occurs."""
    frag = fragment.split("Invalid line: ", 1)[-1].strip()[:60]
    if not frag:
        return "?"
    i = text.find(frag)
    return str(text.count("\n", 0, i) + 1) if i >= 0 else "?"


ALLOW_REMOTE_CONTEXT_ENV = "THREATGRAPH_ALLOW_REMOTE_CONTEXT"
"""Set to 1 to let JSON-LD models name remote or ``file:`` @context documents (they are then fetched/read
by rdflib); by default such models are refused and nothing is fetched."""


def check_jsonld(text: str, name: str) -> None:
    """Refuse JSON-LD whose @context is not an object/array/IRI, and any @context or @import naming a
    document (remote or file:), unless $THREATGRAPH_ALLOW_REMOTE_CONTEXT=1: reading a model must not
    fetch URLs or read local files."""
    import json

    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise InputError(f"{name}: not valid JSON: {err}") from err
    allow = os.environ.get(ALLOW_REMOTE_CONTEXT_ENV) == "1"
    stack: list[tuple[object, str]] = [(doc, "")]
    while stack:
        node, ptr = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                here = f"{ptr}/{k}"
                if k in ("@context", "@import"):
                    for c in v if isinstance(v, list) else [v]:
                        if isinstance(c, str):
                            if not allow:
                                raise InputError(
                                    f"{name}: {here}: JSON-LD context {c!r} is a document to fetch or read; "
                                    "threatgraph does not fetch remote or file: contexts",
                                    hint=f"inline the context in the file, or set {ALLOW_REMOTE_CONTEXT_ENV}=1 to "
                                    "allow fetching it",
                                )
                        elif c is not None and not isinstance(c, dict):
                            raise InputError(f"{name}: {here}: a JSON-LD @context must be an object, an array "
                                             f"or an IRI, not {type(c).__name__}")
                stack.append((v, here))
        elif isinstance(node, list):
            stack.extend((v, f"{ptr}/{i}") for i, v in enumerate(node))


_ENTITY = re.compile(r"<!ENTITY\s+%?\s*([\w.-]+)\s+(SYSTEM|PUBLIC|(\"[^\"]*\"|'[^']*'))", re.IGNORECASE)


def check_xml_entities(text: str, name: str) -> None:
    """Refuse RDF/XML whose DOCTYPE declares external entities or entities that use other entities
    (entity-expansion "billion laughs" documents); plain namespace abbreviations stay allowed."""
    head = text[: text.find("<rdf:RDF")] if "<rdf:RDF" in text else text[:65536]
    if "<!ENTITY" not in head.upper():
        return
    for m in _ENTITY.finditer(head):
        if m.group(2).upper() in ("SYSTEM", "PUBLIC"):
            raise InputError(f"{name}: RDF/XML declares an external entity ({m.group(1)}); refused (it would read a "
                             "file or fetch a URL)", hint="remove the DOCTYPE entity declarations")
        if "&" in m.group(3) or "%" in m.group(3):
            raise InputError(f"{name}: RDF/XML declares entity {m.group(1)} built from other entities; refused "
                             "(entity expansion can grow a small file to gigabytes)",
                             hint="remove the DOCTYPE entity declarations or write the values out")


_OX_FORMATS = {".ttl": RdfFormat.TURTLE, ".nt": RdfFormat.N_TRIPLES}
"""Suffixes whose models pyoxigraph parses (in ~1 ms instead of rdflib's ~50 ms, and without importing
rdflib). Anything it refuses, and anything rdflib would read differently, is parsed by rdflib as before
(with its located error messages)."""
_XSD_STRING = XSD + "string"
_SUBJECT, _PREDICATE, _OBJECT = attrgetter("subject"), attrgetter("predicate"), attrgetter("object")
_CANONICAL = {XSD + "boolean": re.compile(r"true|false"), XSD + "integer": re.compile(r"-?(?:0|[1-9][0-9]*)"),
              XSD + "duration": re.compile(r"P(?:0|[1-9][0-9]*)D")}
"""Typed literals rdflib keeps as written when their lexical form matches (it rewrites others: ``01`` to
``1``, ``"1"^^xsd:boolean`` to ``true``, ``PT36H`` to ``P1DT12H``); a model with any other typed literal is read by rdflib."""


def _base_of(name: str) -> str | None:
    """The base IRI a model file's relative IRIs resolve against (its file URI, when named by a path)."""
    return Path(name).resolve().as_uri() if "/" in name else None


def _parse_ox(text: str, name: str, fmt: RdfFormat) -> tuple[list[OxTriple], bool] | None:
    """The triples of a Turtle / N-Triples model as pyoxigraph reads them, and whether one has a blank node;
    or None when rdflib must read it (a syntax error, to report it as before; a term rdflib would write
    otherwise)."""
    base = _base_of(name)
    try:
        quads = list(parse(text, format=fmt, base_iri=base, rename_blank_nodes=True, without_named_graphs=True))
    except (SyntaxError, ValueError):
        return None
    # each distinct term is checked once (a model repeats its predicates, classes and elements), on the sets of
    # the subjects, predicates and objects built by C loops (map/set/zip: at 10 k elements ~0.09 s instead of
    # ~0.17 s for one Python loop over the quads); pyoxigraph's parser returns these exact classes, so type()
    # is tested rather than isinstance
    subjects = list(map(_SUBJECT, quads))
    predicates = list(map(_PREDICATE, quads))
    objects = list(map(_OBJECT, quads))
    bad_iri = _BAD_IRI.search
    blank = False
    for p in set(predicates):
        if type(p) is not NamedNode or bad_iri(p.value):
            return None
    for s in set(subjects):
        if type(s) is NamedNode:
            if bad_iri(s.value):
                return None
        elif type(s) is BlankNode:
            blank = True
        else:
            return None  # a triple term (RDF 1.2): rdflib refuses it
    for o in set(objects):
        if type(o) is Literal:
            if o.language:
                if getattr(o, "direction", None):
                    return None  # RDF 1.2 directional language tag
            else:
                dt = o.datatype.value
                if dt != _XSD_STRING:
                    canonical = _CANONICAL.get(dt)
                    if canonical is None or not canonical.fullmatch(o.value):
                        return None
        elif type(o) is NamedNode:
            if bad_iri(o.value):
                return None
        elif type(o) is BlankNode:
            blank = True
        else:
            return None
    out: list[OxTriple] = list(zip(subjects, predicates, objects, strict=True))
    return out, blank  # language tags are lowercased either way (pyoxigraph's Literal lowercases rdflib's)


def load_model_files(paths: Sequence[str | Path], *, ml_classes: str | Path | MLClasses | None = None) -> ModelLoad:
    """Parse one or more model files into a single graph (the system model).

    ``ml_classes``: a user's ML phrase file (or parsed table) for the imported formats, tried before the
    shipped phrases (``--ml-classes``; docs/interchange.md). The ML classes an importer chose from an
    element's words are listed in the warnings with their reasons.
    """
    if not paths:
        raise InputError("no model file given", hint="name at least one model file, e.g. data/examples/rag-assistant.ttl")
    ml: MLClasses | None = None
    if ml_classes is not None:  # a malformed user file fails before any model is read
        from threatgraph.interchange.mlclasses import table

        ml = table(ml_classes)
    triples: dict[OxTriple, None] = {}
    texts: list[str] | None = []
    files: list[str] = []
    warnings: list[str] = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InputError(f"{path}: no such file", hint="check the path; example models are in data/examples/")
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a model file")
        if not path.is_file():  # a FIFO, socket, device or process substitution would block or be empty
            raise InputError(f"{path}: not a regular file (a pipe, FIFO or device?)",
                             hint="save the model to a file and pass its path")
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise InputError(f"{path}: {size} bytes is above the {MAX_MODEL_BYTES}-byte limit for a model file")
        if (converted := convert_file(path, ml_classes=ml)) is not None:  # OTM, Threat Dragon, Threagile, …
            texts = None
            triples.update(dict.fromkeys(_ox_triples(converted.graph)))
            warnings.extend(f"{w} (read anyway)" for w in converted.warnings)
            warnings.extend(converted.classed)
            files.append(str(path))
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text (byte {err.start})", hint="save the model as UTF-8") from err
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror}") from err
        ox_fmt = _OX_FORMATS.get(path.suffix.lower())
        parsed = _parse_ox(text, str(path), ox_fmt) if ox_fmt is not None else None
        if parsed is not None:
            got, blank = parsed
            if texts is not None and ox_fmt == RdfFormat.TURTLE and not blank:
                texts.append(_with_base(text, _base_of(str(path))))
            else:
                texts = None
        else:
            texts = None
            fmt = _format_for(path)
            if fmt == "json-ld":
                check_jsonld(text, str(path))
            elif fmt == "xml":
                check_xml_entities(text, str(path))
            got = _ox_triples(parse_model_text(text, str(path), fmt))
        if not got and not text.strip():
            raise InputError(f"{path}: the file is empty", hint="describe the system's elements and flows in it")
        triples.update(dict.fromkeys(got))
        files.append(str(path))
    limit = max_elements()
    rdf_type = NamedNode(RDF.type)
    n = len({s for s, p, _ in triples if p == rdf_type})
    if n > limit:
        raise InputError(
            f"{', '.join(files)}: the model describes {n:,} typed resources, above the limit of {limit:,} "
            "(analysis time and memory grow with the model; see docs/limits.md)",
            hint=f"split the model, or raise the limit with {MAX_ELEMENTS_ENV}=N if the machine can take it",
        )
    if not triples:
        raise InputError(
            f"{', '.join(files)}: the model contains no triples",
            hint="a model needs at least one element, e.g. `ex:api a tg:Process ; rdfs:label \"API\" .`",
        )
    return ModelLoad(list(triples), files, warnings, texts=texts)


def _with_base(text: str, base: str | None) -> str:
    """Turtle ``text`` that a parser without a base IRI reads as ``text`` with ``base``: an ``@base`` directive
    first (a leading byte-order mark goes: it would be a syntax error after the directive)."""
    if base is None:
        return text
    return f"@base <{base}> .\n{text.removeprefix(chr(0xFEFF))}"


def _ox_triples(g: rdflib.Graph) -> list[OxTriple]:
    from threatgraph.convert import to_ox

    return [(to_ox(s), to_ox(p), to_ox(o)) for s, p, o in g]


def undefined_terms(model: rdflib.Graph | Sequence[OxTriple], onto: Ontology) -> tuple[list[str], list[str]]:
    """Classes and properties the model uses that neither the ontology nor the model itself defines
    (``model``: an rdflib graph, or triples as pyoxigraph terms)."""
    triples = model if isinstance(model, Sequence) else _ox_triples(model)
    # the distinct subjects, classes and predicates first, then their IRIs: half the time at 10 k elements
    # (a term's IRI is a new string each time it is read)
    declared_here = {s.value for s in {s for s, _, _ in triples} if isinstance(s, NamedNode)}
    known = onto.terms | declared_here

    def unknown(iri: str) -> bool:
        return not iri.startswith(_STANDARD) and iri not in known

    rdf_type = NamedNode(RDF.type)
    types = {o for _, p, o in triples if p == rdf_type}
    classes = sorted({o.value for o in types if isinstance(o, NamedNode) and unknown(o.value)})
    props = sorted({p.value for p in {p for _, p, _ in triples} if unknown(p.value)})
    return classes, props


def model_warnings(model: rdflib.Graph | Sequence[OxTriple], onto: Ontology) -> list[str]:
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
