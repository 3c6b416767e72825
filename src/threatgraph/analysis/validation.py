"""Model completeness validation with SHACL (shapes in ``ontology/shapes/``, docs/validation.md).

The data is the model + its OWL 2 RL closure + the ontology (+ any imported knowledge releases, for
the knowledge-reference shapes), held in an embedded pyoxigraph store (:func:`validate_store`).

* ``method="fast"`` (default): the shapes are parsed with pyoxigraph and compiled to SPARQL
  (:mod:`threatgraph.analysis.shacl`): every constraint of a compiled shape runs ONCE over all its
  focus nodes on the store, and the results are built as pyshacl builds them. Shapes using a
  construct the compiler does not translate (possible in ``--shapes`` files) are evaluated by
  pyshacl, imported only then, on an rdflib copy of the store.
* ``method="pyshacl"``: plain pyshacl on all shapes, for comparison
  (``tests/test_validate_equivalence.py`` checks both give identical results).

Besides the shapes, ``validate`` reports each class and property the model uses that neither the
ontology nor the model defines (a typo such as ``tgml:ModelRegistery``), once per term, as a warning.

>>> report = validate_store(_demo_store(), check_terms=False)
>>> [(i.severity, i.shape.split()[0].rsplit("#")[-1]) for i in report.issues][:1]
[('warning', 'LabelShape')]
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyoxigraph import BlankNode, Literal, NamedNode
from pyoxigraph import Store as OxStore

from threatgraph.analysis.shacl import (
    TARGETS,
    Check,
    Compiled,
    ShapesGraph,
    compile_shapes,
    expand_classes,
    sh,
    sparql_constraints,
)
from threatgraph.errors import InputError, StoreError
from threatgraph.resources import ontology_dir
from threatgraph.store import Store, open_store
from threatgraph.store.base import Term
from threatgraph.terms import GRAPH, PREFIXES, STANDARD_VOCABULARIES, graph_iri

if TYPE_CHECKING:
    import rdflib

    from threatgraph.analysis.closure import Triple
    from threatgraph.analysis.model import ModelLoad
    from threatgraph.analysis.ontology import Ontology

SHAPES_NS = "https://w3id.org/threatgraph/shapes#"
METHODS: tuple[str, ...] = ("fast", "pyshacl")
SH_NS = "http://www.w3.org/ns/shacl#"
SEVERITY_NAMES: dict[str, str] = {SH_NS + "Violation": "violation", SH_NS + "Warning": "warning", SH_NS + "Info": "info"}
_SEVERITY_ORDER = {"violation": 0, "warning": 1, "info": 2}
_RELEASE_PREFIX = GRAPH + "release/"
G_ONTOLOGY, G_MODEL, G_INFERRED = graph_iri("ontology"), graph_iri("model"), graph_iri("inferred")
TERMS_CHECK = NamedNode(SHAPES_NS + "DefinedTermsCheck")
"""``sh:sourceShape`` of the undefined-class/property warnings (not a SHACL shape: a built-in check)."""
_FORBIDDEN = re.compile(r"\b(VALUES|MINUS|SERVICE)\b", re.IGNORECASE)
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_SUBCLASS_OF = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
_LABELS = ("http://www.w3.org/2000/01/rdf-schema#label", "http://www.w3.org/2004/02/skos/core#prefLabel")


def shapes_dir() -> Path:
    """Directory of the shipped shape files (``ontology/shapes``)."""
    return ontology_dir() / "shapes"


def builtin_shape_files() -> list[Path]:
    """The shipped shape files, sorted."""
    return sorted(shapes_dir().glob("*.ttl"))


# -------------------------------------------------------------------------------------------------
# Shapes: loading, checking (user shapes) and compiling, cached per process
# -------------------------------------------------------------------------------------------------
_COMPILED: dict[str, Compiled] = {}
_CHECKED: set[str] = set()


def _digest(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError as err:
            raise InputError(f"{p}: cannot read the shapes file: {err.strerror}") from err
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def compiled_shapes(extra: Sequence[str | Path] = (), *, builtin: bool = True) -> Compiled:
    """The shipped shapes (unless ``builtin`` is False) plus ``extra`` files, compiled (cached per
    process by content digest).

    Extra files are checked first (SHACL-SHACL and their SPARQL, which needs pyshacl; once per
    content digest and process)."""
    extra_paths = [Path(p) for p in extra]
    for p in extra_paths:
        if not p.is_file():
            raise InputError(f"{p}: no such shapes file", hint="pass a Turtle file of SHACL shapes to --shapes")
    paths = (builtin_shape_files() if builtin else []) + extra_paths
    if not paths:
        raise InputError("no shapes to validate with", hint="pass a SHACL shapes file")
    key = _digest(paths)
    cached = _COMPILED.get(key)
    if cached is not None:
        return cached
    graph = ShapesGraph.parse_files(paths)  # syntax errors name the file, before the SHACL check
    if extra_paths and key not in _CHECKED and not _checked_on_disk(key):
        check_shapes(load_shapes(extra_paths, builtin=builtin), [str(p) for p in extra_paths])
        _CHECKED.add(key)
        _remember_checked(key)
    compiled = _COMPILED[key] = compile_shapes(graph)
    return compiled


def cache_dir() -> Path:
    """Where threatgraph keeps per-user caches: ``$XDG_CACHE_HOME/threatgraph`` (default
    ``~/.cache/threatgraph``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "threatgraph"


def _check_marker(key: str) -> Path:
    from threatgraph import __version__

    return cache_dir() / "shapes-checked" / f"{key}-{__version__}"


def _checked_on_disk(key: str) -> bool:
    """True when this exact set of shape files (by content digest) passed the SHACL check before."""
    return _check_marker(key).is_file()


def _remember_checked(key: str) -> None:
    marker = _check_marker(key)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_bytes(b"")
    except OSError:  # a read-only or full cache directory only costs the check next time
        pass


def load_shapes(extra: Sequence[str | Path] = (), *, builtin: bool = True) -> rdflib.Graph:
    """The shipped shapes (unless ``builtin`` is False) and ``extra`` files as an rdflib graph, for
    SHACL-SHACL checks and pyshacl. With extra files the whole set is checked as SHACL; the shipped
    shapes alone are checked by the test suite (tests/test_shapes_meta.py), not on every run."""
    import rdflib

    g = rdflib.Graph()
    for path in builtin_shape_files() if builtin else []:
        _parse_shapes_file(g, path)
    if extra:
        for p in extra:
            _parse_shapes_file(g, Path(p))
        # user shapes may use the shipped sh:prefixes declarations, so the check runs on the union
        check_shapes(g, [str(p) for p in extra])
    return g


def _parse_shapes_file(g: rdflib.Graph, path: Path) -> None:
    import rdflib.util

    if not path.is_file():
        raise InputError(f"{path}: no such shapes file", hint="pass a Turtle file of SHACL shapes to --shapes")
    try:
        g.parse(path, format=rdflib.util.guess_format(str(path)) or "turtle")
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as err:
        raise InputError(
            f"{path}: cannot parse the shapes file: {str(err).strip().splitlines()[0] if str(err).strip() else err!r}",
            hint="fix the Turtle syntax (a missing '.', ';' or prefix declaration?)",
        ) from err


def _ox_shapes(g: rdflib.Graph) -> ShapesGraph:
    from threatgraph.convert import to_ox

    return ShapesGraph((to_ox(s), to_ox(p), to_ox(o)) for s, p, o in g)  # type: ignore[misc]


def check_shapes(shapes: rdflib.Graph, names: Sequence[str] = ()) -> None:
    """Refuse a shapes graph that is not valid SHACL (SHACL-SHACL), or whose SPARQL does not parse."""
    from pyshacl.entrypoints import meta_validate
    from pyshacl.errors import ConstraintLoadError, ReportableRuntimeError, ShapeLoadError
    from rdflib.namespace import RDF, SH

    where = ", ".join(names) or "shapes"
    if not any(shapes.subjects(RDF.type, SH.NodeShape)) and not any(shapes.subjects(RDF.type, SH.PropertyShape)):
        if not any(shapes.subjects(SH.path, None)):
            raise InputError(f"{where}: no SHACL shapes found (nothing is a sh:NodeShape or sh:PropertyShape)")
    try:
        conforms, _g, text = meta_validate(shapes, inference="none", allow_infos=True, allow_warnings=True)
    except (ReportableRuntimeError, ShapeLoadError, ConstraintLoadError) as err:
        raise InputError(f"{where}: not valid SHACL: {err}") from err
    if not conforms:
        lines = [ln.strip() for ln in str(text).splitlines() if ln.strip().startswith(("Focus Node", "Message", "Result Path"))]
        raise InputError(
            f"{where}: not valid SHACL: " + "; ".join(lines[:6]),
            hint="see https://www.w3.org/TR/shacl/ for the shape vocabulary",
        )
    empty = OxStore()
    for sc in sparql_constraints(_ox_shapes(shapes)):
        if _FORBIDDEN.search(sc.select):
            raise InputError(
                f"{where}: shape <{sc.shape.value}>: a SHACL SPARQL constraint must not use VALUES, MINUS or SERVICE",
                hint="rewrite the filter with FILTER (?x IN (...)) or FILTER NOT EXISTS",
            )
        try:
            empty.query(sc.query_text())
        except (SyntaxError, OSError, ValueError) as err:
            raise InputError(
                f"{where}: shape <{sc.shape.value}>: sh:select is not valid SPARQL: {err}",
                hint="declare every prefix it uses in its sh:prefixes, and check the query syntax",
            ) from err


# -------------------------------------------------------------------------------------------------
# Results
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    """One SHACL validation result (pyoxigraph terms; blank nodes as in the store / shapes graph)."""

    focus: Term
    severity: Term
    shape: Term
    component: NamedNode
    messages: tuple[Literal, ...]
    path: Term | None = None
    value: Term | None = None
    constraint: Term | None = None


def _format_message(msg: str, fdict: dict[str, Term]) -> str:
    # As pyshacl's ConstraintComponent._format_sparql_based_result_message.
    for var, val in fdict.items():
        msg = re.sub(f"{{[?$]{var}}}", val.value, msg)
    return msg


class _Classes:
    """Each class and its subclasses in the data (``rdfs:subClassOf*``), looked up once per run."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.known: dict[str, list[str]] = {}

    def __call__(self, cls: str) -> list[str]:
        out = self.known.get(cls)
        if out is None:
            rows = self.store.select(f"SELECT DISTINCT ?c WHERE {{ ?c <{_SUBCLASS_OF}>* {cls} FILTER (isIRI(?c)) }}")
            out = self.known[cls] = sorted({str(r["c"]) for r in rows} | {cls})
        return out


def _run_check(store: Store, ch: Check, out: list[Result], classes: _Classes | None = None) -> None:
    query = expand_classes(ch.query, classes or _Classes(store))
    try:
        rows = store.select(query)
    except StoreError as err:
        raise InputError(f"shape <{ch.shape}>: its constraint cannot be evaluated: {err}") from err
    if not ch.sparql:
        comp = sh(f"{ch.component}ConstraintComponent")
        for r in rows:
            value = r["value"] if ch.value == "row" else r["this"] if ch.value == "this" else None
            out.append(Result(r["this"], ch.severity, ch.shape, comp, ch.messages, ch.path, value))
        return
    seen: set[tuple[Any, ...]] = set()
    comp = sh("SPARQLConstraintComponent")
    for r in rows:
        this = r.get("this")
        if this is None:
            continue
        path, value = r.get("path"), r.get("value", this)
        extra = {k: t for k, t in r.items() if k not in ("this", "path", "value")}
        key = (this, path, value, tuple(sorted(extra.items(), key=lambda kv: kv[0])))
        if key in seen:
            continue
        seen.add(key)
        fdict: dict[str, Term] = dict(extra)
        fdict["this"] = this
        if path is not None:
            fdict["path"] = path
        fdict["value"] = value
        msgs = tuple(Literal(_format_message(m.value, fdict)) for m in ch.messages)
        out.append(Result(this, ch.severity, ch.shape, comp, msgs, path, value, ch.constraint))


def _pyshacl_results(store: Store, shapes: ShapesGraph, skip_targets_of: Iterable[Term] = ()) -> tuple[list[Result], Any]:
    """Run pyshacl (imported here only) on an rdflib copy of the store; ``skip_targets_of``: shapes
    already evaluated (their targets are removed so pyshacl does not run them again)."""
    import pyshacl
    import rdflib
    from pyshacl.errors import ConstraintLoadError, ReportableRuntimeError, ShapeLoadError
    from rdflib.namespace import RDF, SH

    from threatgraph.convert import from_ox, to_ox

    skip = set(skip_targets_of)
    targets = set(TARGETS) | {sh("target")}
    sg = rdflib.Graph()
    for s, p, o in shapes.triples:
        if s in skip and p in targets:
            continue
        sg.add((from_ox(s), from_ox(p), from_ox(o)))
    dg = rdflib.Graph()
    for q in store.quads():
        dg.add((from_ox(q.subject), from_ox(q.predicate), from_ox(q.object)))  # type: ignore[arg-type]  # no RDF-star
    try:
        _conforms, report, _text = pyshacl.validate(dg, shacl_graph=sg, inference="none", advanced=True)
    except (ReportableRuntimeError, ShapeLoadError, ConstraintLoadError) as err:
        raise InputError(f"the shapes cannot be evaluated: {err}") from err
    if not isinstance(report, rdflib.Graph):
        raise InputError(f"the shapes cannot be evaluated: {report}")
    out: list[Result] = []

    def ox(n: Any) -> Any:
        return None if n is None else to_ox(n)

    for r in report.objects(None, SH.result):
        out.append(
            Result(
                focus=ox(report.value(r, SH.focusNode)),
                severity=ox(report.value(r, SH.resultSeverity)),
                shape=ox(report.value(r, SH.sourceShape)),
                component=ox(report.value(r, SH.sourceConstraintComponent)),
                messages=tuple(ox(m) for m in report.objects(r, SH.resultMessage)),
                path=ox(report.value(r, SH.resultPath)),
                value=ox(report.value(r, SH.value)),
                constraint=ox(report.value(r, SH.sourceConstraint)),
            )
        )
    assert report.value(None, RDF.type, SH.ValidationReport) is not None
    return out, report


# -------------------------------------------------------------------------------------------------
# Undefined classes and properties
# -------------------------------------------------------------------------------------------------
def undefined_terms_in(store: Store) -> list[tuple[str, str, int]]:
    """``(kind, IRI, uses)`` of each class (``kind`` "class") and property ("property") used in
    graph/model that neither graph/ontology nor the model itself describes (same rule as
    :func:`threatgraph.analysis.model.undefined_terms`); ``uses``: elements typed / statements."""
    rows = store.select(
        f"SELECT ?t ?k ?n WHERE {{ {{ SELECT ?t ?k (COUNT(*) AS ?n) WHERE {{ GRAPH <{G_MODEL}> {{ "
        f"{{ ?s <{_RDF_TYPE}> ?t BIND (\"class\" AS ?k) }} UNION {{ ?s ?t ?o BIND (\"property\" AS ?k) }} }} "
        f"FILTER (isIRI(?t)) }} GROUP BY ?t ?k }} "
        f"FILTER NOT EXISTS {{ GRAPH <{G_ONTOLOGY}> {{ ?t ?p1 ?o1 }} }} FILTER NOT EXISTS {{ GRAPH <{G_MODEL}> {{ ?t ?p2 ?o2 }} }} }}"
    )
    out = []
    for r in rows:
        iri = r["t"].value
        if not iri.startswith(STANDARD_VOCABULARIES):
            out.append((r["k"].value, iri, int(r["n"].value)))
    return sorted(out, key=lambda t: (t[0], t[1]))


def _compact(iri: str) -> str:
    best = ""
    out = iri
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(ns) > len(best):
            best, out = ns, f"{prefix}:{iri[len(ns):]}"
    return out


def _term_results(store: Store) -> list[Result]:
    undefined = undefined_terms_in(store)
    if not undefined:
        return []
    known: dict[str, set[str]] = {"class": set(), "property": set()}
    for r in store.select(
        f"SELECT DISTINCT ?s ?c WHERE {{ GRAPH <{G_ONTOLOGY}> {{ ?s <{_RDF_TYPE}> ?t }} FILTER (isIRI(?s)) "
        "BIND (?t IN (owl:Class, rdfs:Class) AS ?c) }"
    ):
        known["class" if r["c"].value == "true" else "property"].add(r["s"].value)
    import difflib

    out = []
    for kind, iri, uses in undefined:
        guess = difflib.get_close_matches(iri, sorted(known[kind]), n=1, cutoff=0.85)
        hint = f"did you mean {_compact(guess[0])}? " if guess else ""
        if kind == "class":
            what = f"so the {uses} element(s) typed with it get no findings from it"
            declare = f"`{_compact(iri)} rdfs:subClassOf tg:Process` (or another kind)"
        else:
            what = f"so its {uses} statement(s) are ignored by the rules"
            declare = f"`{_compact(iri)} a owl:DatatypeProperty`"
        msg = (
            f"The {kind} {_compact(iri)} is not defined by the threatgraph ontology (a typo?), {what}: "
            f"{hint}Correct it, or declare it in the model if it is your own term, e.g. {declare}."
        )
        out.append(Result(NamedNode(iri), sh("Warning"), TERMS_CHECK, NamedNode(SHAPES_NS + "DefinedTermComponent"), (Literal(msg),)))
    return out


# -------------------------------------------------------------------------------------------------
# Results for people
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Issue:
    """One validation result, with labels resolved for display."""

    severity: str
    focus: str
    focus_label: str
    focus_kind: str
    path: str | None
    value: str | None
    value_label: str | None
    message: str
    shape: str

    @property
    def text(self) -> str:
        """One self-contained sentence: element label and IRI, then what is wrong and the fix."""
        return f"{self.severity}: {self.focus_label} <{self.focus}>: {self.message}"


@dataclass
class ValidationReport:
    """The validation results (SHACL results, then the undefined-term warnings) and, for display,
    the issues sorted by element then severity, each problem once."""

    results: list[Result]
    issues: list[Issue]
    model_files: list[str] = field(default_factory=list)
    shape_files: list[str] = field(default_factory=list)
    knowledge_graphs: list[str] = field(default_factory=list)
    term_results: list[Result] = field(default_factory=list)
    shapes: ShapesGraph | None = None
    store: Store | None = None
    raw: Any = None
    """pyshacl's own report graph (``method="pyshacl"``)."""
    _graph: Any = None

    def count(self, severity: str) -> int:
        """Number of results of ``severity`` (violation, warning, info)."""
        return sum(1 for i in self.issues if i.severity == severity)

    @property
    def violations(self) -> list[Issue]:
        """The results of severity violation."""
        return [i for i in self.issues if i.severity == "violation"]

    def failed(self, strict: bool = False) -> bool:
        """True when there are violations (or, with ``strict``, warnings)."""
        return bool(self.count("violation") or (strict and self.count("warning")))

    @property
    def graph(self) -> rdflib.Graph:
        """The standard ``sh:ValidationReport`` as an rdflib graph (built on first use; rdflib is
        imported only then). Blank-node shapes, paths and focus nodes are copied as pyshacl does."""
        if self.raw is not None:
            return self.raw  # type: ignore[no-any-return]
        if self._graph is None:
            self._graph = report_graph(self.results + self.term_results, self.shapes, self.store)
        return self._graph  # type: ignore[no-any-return]

    def shacl_graph(self) -> rdflib.Graph:
        """The report graph of the SHACL results only (without the undefined-term warnings)."""
        if self.raw is not None:
            return self.raw  # type: ignore[no-any-return]
        return report_graph(self.results, self.shapes, self.store)


def report_graph(results: Sequence[Result], shapes: ShapesGraph | None, store: Store | None) -> rdflib.Graph:
    """``results`` as a SHACL validation report graph (rdflib, as pyshacl writes it)."""
    import rdflib
    from rdflib.namespace import RDF, SH

    from threatgraph.convert import from_ox

    g = rdflib.Graph()
    g.bind("sh", SH)
    vr = rdflib.BNode()
    g.add((vr, RDF.type, SH.ValidationReport))
    g.add((vr, SH.conforms, rdflib.Literal(not results)))
    data_bnodes: dict[Term, list[tuple[Term, Term]]] | None = None
    cloned: set[Term] = set()

    def clone_shape(node: Term) -> None:
        if isinstance(node, BlankNode) and shapes is not None and node not in cloned:
            cloned.add(node)
            for s, p, o in shapes.description(node):
                g.add((from_ox(s), from_ox(p), from_ox(o)))

    def clone_data(node: Term) -> None:
        nonlocal data_bnodes
        if not isinstance(node, BlankNode) or store is None or node in cloned:
            return
        if data_bnodes is None:
            data_bnodes = {}
            for r in store.select("SELECT ?s ?p ?o WHERE { ?s ?p ?o FILTER (isBlank(?s)) }"):
                data_bnodes.setdefault(r["s"], []).append((r["p"], r["o"]))
        cloned.add(node)
        for p, o in data_bnodes.get(node, []):
            g.add((from_ox(node), from_ox(p), from_ox(o)))
            clone_data(o)

    for res in results:
        n = rdflib.BNode()
        g.add((vr, SH.result, n))
        g.add((n, RDF.type, SH.ValidationResult))
        g.add((n, SH.sourceConstraintComponent, from_ox(res.component)))
        g.add((n, SH.sourceShape, from_ox(res.shape)))
        clone_shape(res.shape)
        g.add((n, SH.resultSeverity, from_ox(res.severity)))
        g.add((n, SH.focusNode, from_ox(res.focus)))
        clone_data(res.focus)
        if res.value is not None:
            g.add((n, SH.value, from_ox(res.value)))
            clone_data(res.value)
        if res.path is not None:
            g.add((n, SH.resultPath, from_ox(res.path)))
            clone_shape(res.path)
        if res.constraint is not None:
            g.add((n, SH.sourceConstraint, from_ox(res.constraint)))
            clone_shape(res.constraint)
        for m in res.messages:
            g.add((n, SH.resultMessage, from_ox(m)))
    return g


def _local(iri: str) -> str:
    return re.split(r"[#/]", iri.rstrip("/#"))[-1]


_KINDS = (
    "https://w3id.org/threatgraph/ontology#DataFlow",
    "https://w3id.org/threatgraph/ontology#DataStore",
    "https://w3id.org/threatgraph/ontology#Process",
    "https://w3id.org/threatgraph/ontology#ExternalEntity",
    "https://w3id.org/threatgraph/ontology#TrustZone",
    "https://w3id.org/threatgraph/ontology#DataAsset",
    "https://w3id.org/threatgraph/ontology#Control",
)


def _labels_and_kinds(store: Store, nodes: set[Term]) -> tuple[dict[Term, str], dict[Term, str]]:
    """rdfs:label (else skos:prefLabel; English or untagged) and element kind of ``nodes``."""
    iris = sorted({n for n in nodes if isinstance(n, NamedNode)} | {NamedNode(k) for k in _KINDS}, key=str)
    labels: dict[Term, dict[str, str]] = {}
    kinds: dict[Term, set[str]] = {}
    lang_ok = "FILTER (isLiteral(?l) && (lang(?l) = '' || STRSTARTS(LCASE(lang(?l)), 'en')))"
    kind_in = ", ".join(f"<{k}>" for k in _KINDS)
    queries = []
    if iris:
        values = "VALUES ?s { " + " ".join(str(n) for n in iris) + " }"
        queries.append(f"SELECT ?s ?lp ?l ?k WHERE {{ {values} {{ ?s ?lp ?l FILTER (?lp IN (<{_LABELS[0]}>, <{_LABELS[1]}>)) {lang_ok} }} "
                       f"UNION {{ ?s <{_RDF_TYPE}> ?k FILTER (?k IN ({kind_in})) }} }}")
    if any(isinstance(n, BlankNode) for n in nodes):
        queries.append(f"SELECT ?s ?lp ?l ?k WHERE {{ {{ ?s ?lp ?l FILTER (isBlank(?s) && ?lp IN (<{_LABELS[0]}>, <{_LABELS[1]}>)) {lang_ok} }} "
                       f"UNION {{ ?s <{_RDF_TYPE}> ?k FILTER (isBlank(?s) && ?k IN ({kind_in})) }} }}")
    for q in queries:
        for r in store.select(q):
            if "l" in r:
                labels.setdefault(r["s"], {}).setdefault(r["lp"].value, r["l"].value)
            elif "k" in r:
                kinds.setdefault(r["s"], set()).add(r["k"].value)
    label = {n: (d.get(_LABELS[0]) or d[_LABELS[1]]) for n, d in labels.items()}
    kind: dict[Term, str] = {}
    for n, ks in kinds.items():
        for k in _KINDS:
            if k in ks:
                kind[n] = label.get(NamedNode(k)) or _local(k)
                break
    return label, kind


def issues_of(results: Sequence[Result], store: Store, shapes: ShapesGraph | None = None) -> list[Issue]:
    """The results with labels from ``store``, each problem once, sorted by element, severity, path."""
    nodes = {r.focus for r in results} | {r.value for r in results if r.value is not None}
    labels, kinds = _labels_and_kinds(store, nodes)

    def label(n: Term) -> str:
        if isinstance(n, Literal):
            return n.value
        return labels.get(n) or (_local(n.value) if isinstance(n, NamedNode) else f"_:{n.value}")

    out: list[Issue] = []
    seen: set[tuple[str, ...]] = set()
    for r in results:
        sev = SEVERITY_NAMES.get(r.severity.value, "violation")
        kind = kinds.get(r.focus, "")
        if r.shape == TERMS_CHECK:
            kind = "undefined term"
        same = r.value is None or r.value == r.focus
        issue = Issue(
            severity=sev,
            focus=r.focus.value,
            focus_label=label(r.focus),
            focus_kind=kind,
            path=None if r.path is None else r.path.value,
            value=None if same or r.value is None else r.value.value,
            value_label=None if same or r.value is None else label(r.value),
            message=" ".join(sorted(m.value for m in r.messages)) or "does not conform to the shape",
            shape=r.shape.value if isinstance(r.shape, NamedNode) else _shape_name(shapes, r.shape),
        )
        key = (issue.severity, issue.focus, issue.path or "", issue.value or "", issue.message)
        if key in seen:  # one problem once (e.g. the same result from two graphs or shape files)
            continue
        seen.add(key)
        out.append(issue)
    worst: dict[str, int] = {}
    for i in out:
        worst[i.focus] = min(worst.get(i.focus, 9), _SEVERITY_ORDER[i.severity])
    # Elements with violations first, then warnings, then infos; by label within each.
    out.sort(
        key=lambda i: (worst[i.focus], i.focus_label.lower(), i.focus, _SEVERITY_ORDER[i.severity], i.path or "", i.value or "", i.message)
    )
    return out


def _shape_name(shapes: ShapesGraph | None, shape: Term | None) -> str:
    """A blank-node property shape as ``<parent shape IRI> <path IRI>``."""
    if shape is None:
        return ""
    if shapes is None:
        return f"_:{shape.value}"
    parents = shapes.subjects(sh("property"), shape)
    path = shapes.value(shape, sh("path"))
    if parents:
        return f"{parents[0].value} {path.value}" if path is not None else parents[0].value
    return f"_:{shape.value}"


def result_keys(report: rdflib.Graph) -> set[tuple[str, ...]]:
    """Comparable form of every result of a report graph (for checking two evaluators agree)."""
    import rdflib
    from rdflib.namespace import SH

    keys: set[tuple[str, ...]] = set()

    def canon(node: rdflib.term.Node | None) -> str:
        # Blank nodes (property shapes, constraints) by their description, so runs in other processes compare.
        if not isinstance(node, rdflib.BNode):
            return str(node)
        return "[" + " ".join(sorted(f"{p}={'_' if isinstance(o, rdflib.BNode) else o}" for p, o in report.predicate_objects(node))) + "]"

    for r in report.objects(None, SH.result):
        vals = []
        for p in (SH.focusNode, SH.resultPath, SH.value, SH.resultSeverity, SH.sourceShape, SH.sourceConstraintComponent, SH.sourceConstraint):
            vals.append(canon(report.value(r, p)))
        vals.append("|".join(sorted(str(m) for m in report.objects(r, SH.resultMessage))))
        keys.add(tuple(vals))
    return keys


# -------------------------------------------------------------------------------------------------
# Entry points
# -------------------------------------------------------------------------------------------------
def validate_store(
    store: Store,
    *,
    extra_shapes: Sequence[str | Path] = (),
    method: str = "fast",
    model_files: Sequence[str] = (),
    check_terms: bool = True,
    builtin: bool = True,
) -> ValidationReport:
    """Validate the data of an embedded store against the shipped shapes (unless ``builtin`` is
    False) plus ``extra_shapes``.

    ``store`` holds the model in graph/model, its OWL 2 RL closure in graph/inferred, the ontology in
    graph/ontology, and any knowledge release graphs (``graph/release/...``); queries see their
    union. ``check_terms``: also report undefined classes and properties of graph/model."""
    if method not in METHODS:
        raise InputError(f"unknown validation method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    compiled = compiled_shapes(extra_shapes, builtin=builtin)
    raw = None
    results: list[Result] = []
    if method == "pyshacl":
        results, raw = _pyshacl_results(store, compiled.graph)
    else:
        classes = _Classes(store)
        for ch in compiled.checks:
            _run_check(store, ch, results, classes)
        if compiled.fallback:
            more, _report = _pyshacl_results(store, compiled.graph, compiled.compiled_shapes)
            results.extend(more)
    terms = _term_results(store) if check_terms else []
    return ValidationReport(
        results=results,
        issues=issues_of(results + terms, store, compiled.graph),
        model_files=list(model_files),
        shape_files=[str(p) for p in (builtin_shape_files() if builtin else [])] + [str(p) for p in extra_shapes],
        knowledge_graphs=[n for n in store.graph_names() if n.startswith(_RELEASE_PREFIX)],
        term_results=terms,
        shapes=compiled.graph,
        store=store,
        raw=raw,
    )


def build_store(
    model: rdflib.Graph,
    knowledge: Store | None = None,
    *,
    inferred: list[Triple] | None = None,
    ontology: Ontology | None = None,
) -> Store:
    """An in-memory store with the model, its closure, the ontology (``ontology``: with a user's
    extension; default the shipped one) and the release graphs of ``knowledge``, in the graphs
    :func:`validate_store` reads."""
    from threatgraph.analysis.closure import closure_of
    from threatgraph.analysis.ontology import load_ontology
    from threatgraph.convert import triples_to_quads

    onto = ontology or load_ontology()
    if inferred is None:
        inferred = closure_of(onto, model)
    store = open_store()
    store.add_quads(onto.quads(G_ONTOLOGY))
    store.add_quads(triples_to_quads(model, G_MODEL))
    store.add_quads(triples_to_quads(inferred, G_INFERRED))
    if knowledge is not None:
        for name in knowledge.graph_names():
            if name.startswith(_RELEASE_PREFIX):
                store.add_quads(knowledge.quads(name))
    return store


def validate_models(
    model_paths: Sequence[str | Path],
    *,
    extra_shapes: Sequence[str | Path] = (),
    knowledge: Store | None = None,
    method: str = "fast",
    loaded: ModelLoad | None = None,
    inferred: list[Triple] | None = None,
    ontology: Ontology | None = None,
    check_terms: bool = True,
) -> ValidationReport:
    """Validate model files against the shipped shapes plus ``extra_shapes``; return the report.
    ``loaded`` / ``inferred``: the parsed model and its OWL 2 RL closure, when the caller has them;
    ``ontology``: the ontology with a user's extension (default: the shipped one)."""
    from threatgraph.analysis.model import load_model_files

    if method not in METHODS:
        raise InputError(f"unknown validation method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    compiled_shapes(extra_shapes)  # bad shapes are refused before the model is reasoned over
    load = loaded or load_model_files(model_paths)
    store = build_store(load.graph, knowledge, inferred=inferred, ontology=ontology)
    return validate_store(store, extra_shapes=extra_shapes, method=method, model_files=load.files, check_terms=check_terms)


def _demo_store() -> Store:
    """A two-triple model in a store, for the module doctest."""
    store = open_store()
    store.load(
        "<urn:x:zone> a <https://w3id.org/threatgraph/ontology#TrustZone> .", "text/turtle", G_MODEL
    )
    return store


__all__ = [
    "METHODS",
    "Issue",
    "Result",
    "Term",
    "ValidationReport",
    "build_store",
    "builtin_shape_files",
    "cache_dir",
    "check_shapes",
    "compiled_shapes",
    "issues_of",
    "load_shapes",
    "report_graph",
    "result_keys",
    "undefined_terms_in",
    "validate_models",
    "validate_store",
]
