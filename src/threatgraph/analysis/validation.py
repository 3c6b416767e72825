"""Model completeness validation with SHACL (shapes in ``ontology/shapes/``, docs/validation.md).

The data graph is the model + its OWL 2 RL closure + the ontology (+ any imported knowledge
releases, for the knowledge-reference shapes). Two evaluators give the same standard
``sh:ValidationReport``:

* ``method="pyshacl"`` (naive): pyshacl runs every shape. Its SPARQL-based constraints re-parse and
  run the query once per focus node, which dominates on large models.
* ``method="fast"`` (default): every eligible ``sh:sparql`` constraint runs ONCE over all its focus
  nodes on the embedded store (the shape's targets joined into the query as a sub-select binding
  ``$this``); the remaining (core) constraints run in pyshacl; the results are merged into one report
  built exactly as pyshacl builds its own. Constraints that cannot be run this way (property
  shapes, ``$PATH``/``$currentShape``/``$shapesGraph``, sub-queries, shapes reused via ``sh:node``
  and the like, custom SPARQL targets) are left to pyshacl. ``tests/test_validate_equivalence.py``
  and ``bench/bench_validate.py`` check both evaluators give identical results.

>>> shapes = load_shapes()
>>> len(sparql_constraints(shapes)) > 5
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyshacl
import rdflib
import rdflib.collection
from pyoxigraph import BlankNode, Literal, NamedNode, Quad
from pyparsing import ParseException
from pyshacl.entrypoints import meta_validate
from pyshacl.errors import ConstraintLoadError, ReportableRuntimeError, ShapeLoadError
from pyshacl.rdfutil import clone_blank_node  # type: ignore[attr-defined]
from rdflib.namespace import OWL, RDF, RDFS, SH, SKOS
from rdflib.plugins.sparql import prepareQuery

from threatgraph.analysis.closure import Triple, closure
from threatgraph.analysis.engine import no_gc
from threatgraph.analysis.model import ModelLoad, load_model_files
from threatgraph.analysis.ontology import Ontology, load_ontology
from threatgraph.convert import triples_to_quads
from threatgraph.errors import InputError, StoreError
from threatgraph.resources import ontology_dir
from threatgraph.store import Store, open_store
from threatgraph.store.base import Term
from threatgraph.terms import GRAPH, graph_iri

SHAPES_NS = "https://w3id.org/threatgraph/shapes#"
METHODS: tuple[str, ...] = ("fast", "pyshacl")
SEVERITY_NAMES: dict[str, str] = {str(SH.Violation): "violation", str(SH.Warning): "warning", str(SH.Info): "info"}
_SEVERITY_ORDER = {"violation": 0, "warning": 1, "info": 2}
_RELEASE_PREFIX = GRAPH + "release/"
# Where a shape is used by another shape: its sh:sparql must then run where pyshacl nests it.
_NESTING = (SH.node, SH.property, SH["and"], SH["or"], SH["not"], SH.xone, SH.qualifiedValueShape, RDF.first)
_TARGETS = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)
_DEFAULT_PREFIXES = {"rdf": str(RDF), "rdfs": str(RDFS), "owl": str(OWL)}
_WHERE = re.compile(r"\bWHERE\s*\{", re.IGNORECASE)
_PROJECTS_THIS = re.compile(r"^\s*SELECT\s+(DISTINCT\s+|REDUCED\s+)?[^{]*\$this\b", re.IGNORECASE | re.DOTALL)
_UNSUPPORTED = re.compile(r"\$(PATH|currentShape|shapesGraph)\b|\?failure\b")
_FORBIDDEN = re.compile(r"\b(VALUES|MINUS|SERVICE)\b", re.IGNORECASE)
_SELECTS = re.compile(r"\bSELECT\b", re.IGNORECASE)


def shapes_dir() -> Path:
    """Directory of the shipped shape files (``ontology/shapes``)."""
    return ontology_dir() / "shapes"


def builtin_shape_files() -> list[Path]:
    """The shipped shape files, sorted."""
    return sorted(shapes_dir().glob("*.ttl"))


# -------------------------------------------------------------------------------------------------
# Shapes: loading and checking
# -------------------------------------------------------------------------------------------------
def load_shapes(extra: Sequence[str | Path] = (), *, builtin: bool = True) -> rdflib.Graph:
    """Parse the shipped shapes (unless ``builtin`` is False) and ``extra`` files. With extra files the
    whole set is checked as SHACL; the shipped shapes alone are checked by the test suite
    (tests/test_shapes_meta.py), not on every run (SHACL-SHACL plus parsing their SPARQL: ~3.7 s)."""
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
    if not path.is_file():
        raise InputError(f"{path}: no such shapes file", hint="pass a Turtle file of SHACL shapes to --shapes")
    try:
        g.parse(path, format=rdflib.util.guess_format(str(path)) or "turtle")
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as err:
        raise InputError(
            f"{path}: cannot parse the shapes file: {str(err).strip().splitlines()[0] if str(err).strip() else err!r}",
            hint="fix the Turtle syntax (a missing '.', ';' or prefix declaration?)",
        ) from err


def check_shapes(shapes: rdflib.Graph, names: Sequence[str] = ()) -> None:
    """Refuse a shapes graph that is not valid SHACL (SHACL-SHACL), or whose SPARQL does not parse."""
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
    for sc in sparql_constraints(shapes):
        if _FORBIDDEN.search(sc.select):
            raise InputError(
                f"{where}: shape <{sc.shape}>: a SHACL SPARQL constraint must not use VALUES, MINUS or SERVICE",
                hint="rewrite the filter with FILTER (?x IN (...)) or FILTER NOT EXISTS",
            )
        try:
            prepareQuery(sc.query_text())
        except (ParseException, ValueError, TypeError, KeyError, AttributeError, NotImplementedError) as err:
            raise InputError(
                f"{where}: shape <{sc.shape}>: sh:select is not valid SPARQL: {err}",
                hint="declare every prefix it uses in its sh:prefixes, and check the query syntax",
            ) from err


# -------------------------------------------------------------------------------------------------
# SPARQL-based constraints
# -------------------------------------------------------------------------------------------------
@dataclass
class SparqlConstraint:
    """One ``sh:sparql`` constraint of one shape, with what the fast evaluator needs."""

    shape: rdflib.term.Node
    node: rdflib.term.Node
    select: str
    prefixes: dict[str, str]
    messages: list[rdflib.Literal]
    shape_messages: list[rdflib.Literal]
    severity: rdflib.term.Node
    targets: list[tuple[rdflib.term.Node, rdflib.term.Node]]
    eligible: bool
    why_not: str = ""

    def query_text(self) -> str:
        """The query with its prefix declarations (as pyshacl runs it)."""
        head = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in self.prefixes.items())
        return f"{head}\n{self.select}"


def _prefixes(shapes: rdflib.Graph, node: rdflib.term.Node) -> dict[str, str]:
    out = dict(_DEFAULT_PREFIXES)
    vals = set(shapes.objects(node, SH.prefixes))
    if not vals:
        return out
    onts = set(shapes.subjects(RDF.type, OWL.Ontology))
    global_declares: set[rdflib.term.Node] = set()
    for o in onts:
        global_declares.update(shapes.objects(o, SH.declare))
    for val in vals:
        own = set(shapes.objects(val, SH.declare))
        declares = own if (own and val in onts) else global_declares | own
        for dec in declares:
            p = shapes.value(dec, SH.prefix)
            ns = shapes.value(dec, SH.namespace)
            if p is not None and ns is not None:
                out[str(p)] = str(ns)
    return out


def _is_true(shapes: rdflib.Graph, node: rdflib.term.Node, prop: rdflib.URIRef) -> bool:
    v = shapes.value(node, prop)
    return isinstance(v, rdflib.Literal) and v.toPython() is True


def sparql_constraints(shapes: rdflib.Graph) -> list[SparqlConstraint]:
    """Every active ``sh:sparql`` constraint, marked eligible or not for the one-query evaluation."""
    out: list[SparqlConstraint] = []
    for shape, node in sorted(shapes.subject_objects(SH.sparql), key=lambda t: (str(t[0]), str(t[1]))):
        if _is_true(shapes, shape, SH.deactivated) or _is_true(shapes, node, SH.deactivated):
            continue
        select = shapes.value(node, SH.select)
        text = str(select) if isinstance(select, rdflib.Literal) else ""
        targets: list[tuple[rdflib.term.Node, rdflib.term.Node]] = [(p, o) for p in _TARGETS for o in shapes.objects(shape, p)]
        if (shape, RDF.type, RDFS.Class) in shapes or (shape, RDF.type, OWL.Class) in shapes:
            targets.append((SH.targetClass, shape))
        why = ""
        if shapes.value(shape, SH.path) is not None:
            why = "property shape"
        elif any(True for p in _NESTING for _ in shapes.subjects(p, shape)):
            why = "shape used by another shape"
        elif shapes.value(shape, SH.target) is not None:
            why = "custom target"
        elif not targets:
            why = "no target"
        elif len(list(shapes.objects(node, SH.select))) != 1:
            why = "not exactly one sh:select"
        elif "$this" not in text or not _PROJECTS_THIS.search(text) or _UNSUPPORTED.search(text):
            why = "query does not project $this, or uses $PATH/$currentShape/$shapesGraph/?failure"
        elif len(_SELECTS.findall(text)) != 1 or not _WHERE.search(text):
            why = "sub-query or no WHERE"
        msgs = [m for m in shapes.objects(node, SH.message) if isinstance(m, rdflib.Literal)]
        shape_msgs = [m for m in shapes.objects(shape, SH.message) if isinstance(m, rdflib.Literal)]
        if not why and not msgs and not shape_msgs:
            why = "no sh:message"
        out.append(
            SparqlConstraint(
                shape=shape,
                node=node,
                select=text,
                prefixes=_prefixes(shapes, node),
                messages=msgs,
                shape_messages=shape_msgs,
                severity=shapes.value(shape, SH.severity) or SH.Violation,
                targets=targets,
                eligible=not why,
                why_not=why,
            )
        )
    return out


def _n3(term: rdflib.term.Node) -> str:
    if isinstance(term, rdflib.URIRef):
        return f"<{term}>"
    raise InputError(f"unsupported SHACL target {term!r}", hint="targets must be IRIs")


def _target_pattern(targets: Iterable[tuple[rdflib.term.Node, rdflib.term.Node]], extra: str = "") -> str:
    parts = []
    for kind, obj in targets:
        if kind == SH.targetClass:
            parts.append(f"{{ ?this <{RDF.type}>/<{RDFS.subClassOf}>* {_n3(obj)} }}")
        elif kind == SH.targetNode:
            parts.append(f"{{ VALUES ?this {{ {_n3(obj)} }} }}")
        elif kind == SH.targetSubjectsOf:
            parts.append(f"{{ ?this {_n3(obj)} ?tgTargetAny }}")
        else:
            parts.append(f"{{ ?tgTargetAny {_n3(obj)} ?this }}")
    return "{ SELECT DISTINCT ?this WHERE { " + " UNION ".join(parts) + f" {extra} }} }}"


class FocusSets:
    """Focus nodes of each distinct target set, found once and joined into queries as ``VALUES``
    (blank-node focus nodes, which VALUES cannot hold, through the target pattern itself)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[tuple[str, str], ...], str] = {}

    def pattern(self, targets: Sequence[tuple[rdflib.term.Node, rdflib.term.Node]]) -> str:
        """A group pattern binding ``?this`` to exactly the focus nodes of ``targets``."""
        key = tuple(sorted((str(p), str(o)) for p, o in targets))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        sub = _target_pattern(targets)
        rows = self.store.select(f"SELECT ?this WHERE {{ {sub} }}")
        iris = sorted({str(r["this"]) for r in rows if isinstance(r["this"], NamedNode)})
        blanks = any(isinstance(r["this"], BlankNode) for r in rows)
        parts = []
        if iris:
            parts.append("{ VALUES ?this { " + " ".join(iris) + " } }")
        if blanks:
            parts.append(_target_pattern(targets, "FILTER (isBlank(?this))"))
        if not parts:
            parts.append("{ FILTER (false) }")
        text = " UNION ".join(parts) if len(parts) > 1 else parts[0]
        self._cache[key] = text
        return text


def focused_query(sc: SparqlConstraint, focus: FocusSets | None = None) -> str:
    """The constraint's query with its focus nodes joined in, to run once for all of them."""
    m = _WHERE.search(sc.select)
    if m is None:  # pragma: no cover - excluded by eligibility
        raise InputError(f"shape <{sc.shape}>: no WHERE clause")
    pattern = focus.pattern(sc.targets) if focus is not None else _target_pattern(sc.targets)
    body = sc.select[: m.end()] + "\n  " + pattern + "\n" + sc.select[m.end() :]
    head = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in sc.prefixes.items())
    return head + body


# -------------------------------------------------------------------------------------------------
# Data
# -------------------------------------------------------------------------------------------------
@dataclass
class ValidationData:
    """What the shapes are checked against: the rdflib graph (pyshacl) and the same data in a store."""

    graph: rdflib.Graph
    store: Store
    knowledge_graphs: list[str] = field(default_factory=list)
    focus: FocusSets = field(init=False)

    def __post_init__(self) -> None:
        self.focus = FocusSets(self.store)


def build_data(
    model: rdflib.Graph,
    ontology: Ontology | None = None,
    knowledge: Store | None = None,
    *,
    knowledge_in_graph: bool = False,
    inferred: list[Triple] | None = None,
) -> ValidationData:
    """Model + OWL 2 RL closure + ontology (+ release graphs of ``knowledge``) as one data set.

    Release graphs go into the store; into the rdflib graph only when ``knowledge_in_graph`` (the
    naive evaluator needs them there; the fast one runs every knowledge shape on the store).
    """
    onto = ontology or load_ontology()
    if inferred is None:
        inferred = closure(onto.graph, model)
    g = rdflib.Graph()
    for t in onto.graph:
        g.add(t)
    for t in model:
        g.add(t)
    for t in inferred:
        g.add(t)
    store = open_store()
    store.add_quads(triples_to_quads(onto.graph, graph_iri("ontology")))
    store.add_quads(triples_to_quads(model, graph_iri("model")))
    store.add_quads(triples_to_quads(inferred, graph_iri("inferred")))
    releases: list[str] = []
    if knowledge is not None:
        for name in knowledge.graph_names():
            if not name.startswith(_RELEASE_PREFIX):
                continue
            releases.append(name)
            quads = list(knowledge.quads(name))
            store.add_quads(quads)
            if knowledge_in_graph:
                for q in quads:
                    g.add((_to_rdflib(q.subject), _to_rdflib(q.predicate), _to_rdflib(q.object)))
    return ValidationData(g, store, releases)


def _to_rdflib(term: Any) -> rdflib.term.Identifier:
    if isinstance(term, NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, BlankNode):
        return rdflib.BNode(term.value)
    if isinstance(term, Literal):
        if term.language:
            return rdflib.Literal(term.value, lang=term.language)
        return rdflib.Literal(term.value, datatype=rdflib.URIRef(term.datatype.value))
    raise TypeError(f"not an RDF term: {term!r}")


# -------------------------------------------------------------------------------------------------
# Evaluation
# -------------------------------------------------------------------------------------------------
def _pyshacl(data: rdflib.Graph, shapes: rdflib.Graph) -> rdflib.Graph:
    try:
        _conforms, report, _text = pyshacl.validate(data, shacl_graph=shapes, inference="none", advanced=True)
    except (ReportableRuntimeError, ShapeLoadError, ConstraintLoadError) as err:
        raise InputError(f"the shapes cannot be evaluated: {err}") from err
    if not isinstance(report, rdflib.Graph):
        raise InputError(f"the shapes cannot be evaluated: {report}")
    return report


def _format_message(msg: str, fdict: dict[str, rdflib.term.Node]) -> str:
    # As pyshacl's ConstraintComponent._format_sparql_based_result_message.
    for var, val in fdict.items():
        msg = re.sub(f"{{[?$]{var}}}", str(val), msg)
    return msg


def _run_sparql_constraint(
    sc: SparqlConstraint, data: ValidationData, report: rdflib.Graph, vr: rdflib.term.Node, cloned: dict[str, Any]
) -> int:
    try:
        rows = data.store.select(focused_query(sc, data.focus))
    except StoreError as err:
        raise InputError(f"shape <{sc.shape}>: its SPARQL constraint fails: {err}") from err
    seen: set[tuple[Any, ...]] = set()
    n = 0
    for row in rows:
        this = row.get("this")
        if this is None:
            continue
        f = _to_rdflib(this)
        p = _to_rdflib(row["path"]) if "path" in row else None
        v = _to_rdflib(row["value"]) if "value" in row else f
        extra = {k: _to_rdflib(t) for k, t in row.items() if k not in ("this", "path", "value")}
        key = (f, p, v, tuple(sorted(extra.items())))
        if key in seen:
            continue
        seen.add(key)
        n += 1
        fdict: dict[str, rdflib.term.Node] = dict(extra)
        fdict["this"] = f
        if p is not None:
            fdict["path"] = p
        fdict["value"] = v
        r = rdflib.BNode()
        report.add((vr, SH.result, r))
        report.add((r, RDF.type, SH.ValidationResult))
        report.add((r, SH.sourceConstraintComponent, SH.SPARQLConstraintComponent))
        report.add((r, SH.sourceShape, _clone(sc.shape, data.graph, cloned, report, shapes=True)))
        report.add((r, SH.resultSeverity, sc.severity))
        report.add((r, SH.focusNode, _clone(f, data.graph, cloned, report)))
        report.add((r, SH.value, _clone(v, data.graph, cloned, report)))
        if p is not None:
            report.add((r, SH.resultPath, p))
        report.add((r, SH.sourceConstraint, _clone(sc.node, data.graph, cloned, report, shapes=True)))
        msgs = [m for m in sc.messages if m not in sc.shape_messages] if sc.messages else []
        for m in msgs + sc.shape_messages:
            report.add((r, SH.resultMessage, rdflib.Literal(_format_message(str(m), fdict))))
    return n


def _clone(
    node: rdflib.term.Node,
    source: rdflib.Graph,
    cloned: dict[str, Any],
    report: rdflib.Graph,
    *,
    shapes: bool = False,
) -> rdflib.term.Node:
    if not isinstance(node, rdflib.BNode):
        return node
    key = ("s:" if shapes else "d:") + str(node)
    if key not in cloned:
        src = cloned["__shapes__"] if shapes else source
        cloned[key] = clone_blank_node(src, node, report, keepid=True)
    return cloned[key]  # type: ignore[no-any-return]


# -------------------------------------------------------------------------------------------------
# Simple core constraints, evaluated with one query per shape
# -------------------------------------------------------------------------------------------------
_PROP_PARAMS = {SH.minCount, SH.maxCount, SH["class"], SH.datatype}
_PROP_ALLOWED = _PROP_PARAMS | {SH.path, SH.severity, SH.message, SH.name, SH.description, RDF.type}
_NODE_PARAMS = {SH.nodeKind, SH["or"]}
_NODE_OTHER = {
    SH.severity, SH.message, SH.name, SH.description, RDF.type, SH.property, SH.sparql, SH.prefixes,
    *_TARGETS,
}


@dataclass
class CoreCheck:
    """A property shape (or node-level constraints of a node shape) the fast evaluator runs itself."""

    shape: rdflib.term.Node
    targets: list[tuple[rdflib.term.Node, rdflib.term.Node]]
    severity: rdflib.term.Node
    messages: list[rdflib.Literal]
    path: rdflib.URIRef | None = None
    min_count: int | None = None
    max_count: int | None = None
    classes: list[rdflib.URIRef] = field(default_factory=list)
    datatype: rdflib.URIRef | None = None
    node_kind_iri: bool = False
    or_classes: list[rdflib.URIRef] = field(default_factory=list)
    parent: rdflib.term.Node | None = None


def _simple_targets(shapes: rdflib.Graph, shape: rdflib.term.Node) -> list[tuple[rdflib.term.Node, rdflib.term.Node]] | None:
    if _is_true(shapes, shape, SH.deactivated) or shapes.value(shape, SH.target) is not None:
        return None
    if any(True for p in _NESTING for _ in shapes.subjects(p, shape)):
        return None
    if (shape, RDF.type, RDFS.Class) in shapes or (shape, RDF.type, OWL.Class) in shapes:
        return None
    targets: list[tuple[rdflib.term.Node, rdflib.term.Node]] = [(p, o) for p in _TARGETS for o in shapes.objects(shape, p)]
    if not targets or not all(isinstance(o, rdflib.URIRef) for _p, o in targets):
        return None
    return targets


def _int(v: rdflib.term.Node | None) -> int | None:
    return int(v.toPython()) if isinstance(v, rdflib.Literal) else None


def core_checks(shapes: rdflib.Graph) -> list[CoreCheck]:
    """Property shapes with an IRI path and only sh:minCount/maxCount/class/datatype, and node shapes'
    sh:nodeKind sh:IRI / sh:or of sh:class lists, of shapes with plain targets and a message."""
    out: list[CoreCheck] = []
    for shape in sorted(set(shapes.subjects(RDF.type, SH.NodeShape)), key=str):
        targets = _simple_targets(shapes, shape)
        if targets is None:
            continue
        for ps in sorted(shapes.objects(shape, SH.property), key=str):
            preds = set(shapes.predicates(ps, None))
            path = shapes.value(ps, SH.path)
            msgs = [m for m in shapes.objects(ps, SH.message) if isinstance(m, rdflib.Literal)]
            if not isinstance(path, rdflib.URIRef) or not preds <= _PROP_ALLOWED or not msgs:
                continue
            if any(len(list(shapes.objects(ps, p))) > 1 for p in (SH.minCount, SH.maxCount, SH.datatype)):
                continue
            if _is_true(shapes, ps, SH.deactivated) or (any(True for _ in shapes.subjects(None, ps)) and len(
                list(shapes.subjects(None, ps))
            ) != 1):
                continue
            classes = [c for c in shapes.objects(ps, SH["class"])]
            dt = shapes.value(ps, SH.datatype)
            if not all(isinstance(c, rdflib.URIRef) for c in classes) or (dt is not None and not isinstance(dt, rdflib.URIRef)):
                continue
            out.append(
                CoreCheck(
                    shape=ps,
                    targets=targets,
                    severity=shapes.value(ps, SH.severity) or SH.Violation,
                    messages=msgs,
                    path=path,
                    min_count=_int(shapes.value(ps, SH.minCount)),
                    max_count=_int(shapes.value(ps, SH.maxCount)),
                    classes=[rdflib.URIRef(str(c)) for c in classes],
                    datatype=rdflib.URIRef(dt) if dt is not None else None,
                    parent=shape,
                )
            )
        msgs = [m for m in shapes.objects(shape, SH.message) if isinstance(m, rdflib.Literal)]
        preds = set(shapes.predicates(shape, None))
        if not msgs or not preds <= (_NODE_PARAMS | _NODE_OTHER) or not preds & _NODE_PARAMS:
            continue
        kinds = list(shapes.objects(shape, SH.nodeKind))
        ors = list(shapes.objects(shape, SH["or"]))
        if (kinds and kinds != [SH.IRI]) or len(ors) > 1:
            continue
        or_classes: list[rdflib.URIRef] = []
        if ors:
            members = list(rdflib.collection.Collection(shapes, ors[0]))
            for m in members:
                if set(shapes.predicates(m, None)) - {RDF.type} != {SH["class"]}:
                    break
                c = shapes.value(m, SH["class"])
                if not isinstance(c, rdflib.URIRef) or len(list(shapes.objects(m, SH["class"]))) != 1:
                    break
                if any(True for _ in shapes.subjects(None, m)) and len(list(shapes.subjects(None, m))) != 1:
                    break
                or_classes.append(c)
            else:
                pass
            if len(or_classes) != len(members) or not members:
                continue
        out.append(
            CoreCheck(
                shape=shape,
                targets=targets,
                severity=shapes.value(shape, SH.severity) or SH.Violation,
                messages=msgs,
                node_kind_iri=bool(kinds),
                or_classes=or_classes,
            )
        )
    return out


def _well_typed(v: rdflib.term.Node, dt: rdflib.URIRef) -> bool:
    if not isinstance(v, rdflib.Literal) or v.datatype != dt:
        return False
    return not getattr(rdflib.Literal(str(v), datatype=dt), "ill_typed", False)


_XSD = "http://www.w3.org/2001/XMLSchema#"
_CASTABLE = {_XSD + t for t in ("boolean", "integer", "decimal", "float", "double", "string", "dateTime")}


def _subclasses(data: ValidationData, classes: Sequence[rdflib.URIRef]) -> set[rdflib.term.Node]:
    out: set[rdflib.term.Node] = set(classes)
    for c in classes:
        for r in data.store.select(f"SELECT DISTINCT ?s WHERE {{ ?s <{RDFS.subClassOf}>* <{c}> }}"):
            out.add(_to_rdflib(r["s"]))
    return out


def _run_core_check(
    cc: CoreCheck, data: ValidationData, report: rdflib.Graph, vr: rdflib.term.Node, cloned: dict[str, Any]
) -> int:
    target = data.focus.pattern(cc.targets)
    rows: list[tuple[rdflib.term.Node, str, rdflib.term.Node | None]] = []
    sel = data.store.select
    if cc.path is not None:
        p = f"<{cc.path}>"
        if cc.min_count is not None or cc.max_count is not None:
            # Only the focus nodes whose count is out of bounds come back.
            bounds = []
            if cc.min_count is not None:
                bounds.append(f"?n < {cc.min_count}")
            if cc.max_count is not None:
                bounds.append(f"?n > {cc.max_count}")
            q = (
                f"SELECT ?this ?n WHERE {{ {{ SELECT ?this (COUNT(?v) AS ?n) WHERE {{ {target} "
                f"OPTIONAL {{ ?this {p} ?v }} }} GROUP BY ?this }} FILTER ({' || '.join(bounds)}) }}"
            )
            for r in sel(q):
                n = int(r["n"].value)
                focus: rdflib.term.Node = _to_rdflib(r["this"])
                if cc.min_count is not None and n < cc.min_count:
                    rows.append((focus, "MinCount", None))
                if cc.max_count is not None and n > cc.max_count:
                    rows.append((focus, "MaxCount", None))
        if cc.datatype is not None:
            dt = f"<{cc.datatype}>"
            cast = f"BIND ({dt}(STR(?v)) AS ?cast)" if str(cc.datatype) in _CASTABLE else ""
            check = "|| !BOUND(?cast)" if cast else "|| true"
            q = f"SELECT ?this ?v WHERE {{ {target} ?this {p} ?v {cast} FILTER (!isLiteral(?v) || datatype(?v) != {dt} {check}) }}"
            for r in sel(q):
                v = _to_rdflib(r["v"])
                if not _well_typed(v, cc.datatype):
                    rows.append((_to_rdflib(r["this"]), "Datatype", v))
        for c in cc.classes:
            ok = " ".join(f"<{k}>" for k in sorted(_subclasses(data, [c]), key=str) if isinstance(k, rdflib.URIRef))
            q = f"SELECT ?this ?v WHERE {{ {target} ?this {p} ?v FILTER NOT EXISTS {{ ?v a ?k FILTER (?k IN ({', '.join(ok.split())})) }} }}"
            rows.extend((_to_rdflib(r["this"]), "Class", _to_rdflib(r["v"])) for r in sel(q))
    else:
        if cc.node_kind_iri:
            bad = sel(f"SELECT DISTINCT ?this WHERE {{ {target} FILTER (!isIRI(?this)) }}")
            rows.extend((_to_rdflib(r["this"]), "NodeKind", _to_rdflib(r["this"])) for r in bad)
        if cc.or_classes:
            ok = ", ".join(f"<{k}>" for k in sorted(_subclasses(data, cc.or_classes), key=str) if isinstance(k, rdflib.URIRef))
            bad = sel(f"SELECT ?this WHERE {{ {target} FILTER NOT EXISTS {{ ?this a ?k FILTER (?k IN ({ok})) }} }}")
            rows.extend((_to_rdflib(r["this"]), "Or", _to_rdflib(r["this"])) for r in bad)
    for focus, component, value in rows:
        res = rdflib.BNode()
        report.add((vr, SH.result, res))
        report.add((res, RDF.type, SH.ValidationResult))
        report.add((res, SH.sourceConstraintComponent, SH[f"{component}ConstraintComponent"]))
        report.add((res, SH.sourceShape, _clone(cc.shape, data.graph, cloned, report, shapes=True)))
        report.add((res, SH.resultSeverity, cc.severity))
        report.add((res, SH.focusNode, _clone(focus, data.graph, cloned, report)))
        if value is not None:
            report.add((res, SH.value, _clone(value, data.graph, cloned, report)))
        if cc.path is not None:
            report.add((res, SH.resultPath, cc.path))
        for m in cc.messages:
            report.add((res, SH.resultMessage, m))
    return len(rows)


_NOT_CONSTRAINTS = {
    RDF.type, SH.severity, SH.message, SH.name, SH.description, SH.prefixes, SH.deactivated, SH.target, *_TARGETS,
}


def _drop_idle_targets(core: rdflib.Graph) -> None:
    """Remove the targets of node shapes left with no constraint (pyshacl would still find their focus nodes)."""
    for shape in set(core.subjects(RDF.type, SH.NodeShape)):
        if set(core.predicates(shape, None)) <= _NOT_CONSTRAINTS:
            for p in _TARGETS:
                core.remove((shape, p, None))


def evaluate(data: ValidationData, shapes: rdflib.Graph, method: str = "fast") -> rdflib.Graph:
    """The standard SHACL validation report graph of ``shapes`` on ``data``.

    The cyclic garbage collector is paused meanwhile (as in the engine): full collections rescanning
    the large rdflib heap cost more than the evaluation itself on 10 k-element models.
    """
    with no_gc():
        return _evaluate(data, shapes, method)


def _evaluate(data: ValidationData, shapes: rdflib.Graph, method: str) -> rdflib.Graph:
    if method not in METHODS:
        raise InputError(f"unknown validation method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if method == "pyshacl":
        return _pyshacl(data.graph, shapes)
    data.focus = FocusSets(data.store)
    fast = [sc for sc in sparql_constraints(shapes) if sc.eligible]
    core = rdflib.Graph()
    for prefix, ns in shapes.namespace_manager.namespaces():
        core.bind(prefix, ns)
    fast_links = {(sc.shape, SH.sparql, sc.node) for sc in fast}
    checks = core_checks(shapes)
    for cc in checks:
        if cc.parent is not None:
            fast_links.add((cc.parent, SH.property, cc.shape))
        else:
            fast_links |= {(cc.shape, SH.nodeKind, SH.IRI)} if cc.node_kind_iri else set()
            fast_links |= {(cc.shape, SH["or"], o) for o in shapes.objects(cc.shape, SH["or"])} if cc.or_classes else set()
    for t in shapes:
        if t not in fast_links:
            core.add(t)
    _drop_idle_targets(core)
    if any(True for p in (*_TARGETS, SH.target) for _ in core.subject_objects(p)):
        report = _pyshacl(data.graph, core)
    else:
        report = rdflib.Graph()
        report.add((rdflib.BNode(), RDF.type, SH.ValidationReport))
    vr = report.value(None, RDF.type, SH.ValidationReport, any=False)
    if vr is None:  # pragma: no cover
        raise StoreError("the pyshacl report has no sh:ValidationReport")
    cloned: dict[str, Any] = {"__shapes__": shapes}
    added = sum(_run_sparql_constraint(sc, data, report, vr, cloned) for sc in fast)
    added += sum(_run_core_check(cc, data, report, vr, cloned) for cc in checks)
    report.set((vr, SH.conforms, rdflib.Literal(not any(True for _ in report.objects(vr, SH.result)))))
    return report


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
    """The SHACL report graph and its results, sorted by element then severity."""

    graph: rdflib.Graph
    issues: list[Issue]
    model_files: list[str] = field(default_factory=list)
    shape_files: list[str] = field(default_factory=list)
    knowledge_graphs: list[str] = field(default_factory=list)

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


def _label_index(g: rdflib.Graph) -> dict[rdflib.term.Node, str]:
    out: dict[rdflib.term.Node, str] = {}
    for prop in (RDFS.label, SKOS.prefLabel):
        for s, o in g.subject_objects(prop):
            if isinstance(o, rdflib.Literal) and (not o.language or o.language.startswith("en")):
                out.setdefault(s, str(o))
    return out


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


def issues_of(report: rdflib.Graph, data: rdflib.Graph, shapes: rdflib.Graph | None = None) -> list[Issue]:
    """The results of a report graph with labels from ``data``, sorted by element, severity, path."""
    labels = _label_index(data)

    def label(n: rdflib.term.Node) -> str:
        if isinstance(n, rdflib.Literal):
            return str(n)
        return labels.get(n) or (_local(str(n)) if isinstance(n, rdflib.URIRef) else f"_:{n}")

    def kind(n: rdflib.term.Node) -> str:
        types = {str(t) for t in data.objects(n, RDF.type)}
        for k in _KINDS:
            if k in types:
                return labels.get(rdflib.URIRef(k)) or _local(k)
        return ""

    out: list[Issue] = []
    for r in report.objects(None, SH.result):
        focus = report.value(r, SH.focusNode)
        if focus is None:
            continue
        sev = SEVERITY_NAMES.get(str(report.value(r, SH.resultSeverity)), "violation")
        path = report.value(r, SH.resultPath)
        value = report.value(r, SH.value)
        msgs = sorted(str(m) for m in report.objects(r, SH.resultMessage))
        shape = report.value(r, SH.sourceShape)
        out.append(
            Issue(
                severity=sev,
                focus=str(focus),
                focus_label=label(focus),
                focus_kind=kind(focus),
                path=str(path) if isinstance(path, rdflib.URIRef) else (None if path is None else str(path)),
                value=None if value is None or value == focus else str(value),
                value_label=None if value is None or value == focus else label(value),
                message=" ".join(msgs) or "does not conform to the shape",
                shape=str(shape) if isinstance(shape, rdflib.URIRef) else _shape_name(shapes or report, shape),
            )
        )
    worst: dict[str, int] = {}
    for i in out:
        worst[i.focus] = min(worst.get(i.focus, 9), _SEVERITY_ORDER[i.severity])
    # Elements with violations first, then warnings, then infos; by label within each.
    out.sort(
        key=lambda i: (worst[i.focus], i.focus_label.lower(), i.focus, _SEVERITY_ORDER[i.severity], i.path or "", i.value or "")
    )
    return out


def _shape_name(shapes: rdflib.Graph, shape: rdflib.term.Node | None) -> str:
    """A blank-node property shape as ``<parent shape IRI> <path IRI>``."""
    if shape is None:
        return ""
    parent = shapes.value(None, SH.property, shape)
    path = shapes.value(shape, SH.path)
    if parent is not None:
        return f"{parent} {path}" if path is not None else str(parent)
    return f"_:{shape}"


def result_keys(report: rdflib.Graph) -> set[tuple[str, ...]]:
    """Comparable form of every result (for checking two evaluators agree)."""
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


def validate_models(
    model_paths: Sequence[str | Path],
    *,
    extra_shapes: Sequence[str | Path] = (),
    knowledge: Store | None = None,
    method: str = "fast",
    loaded: ModelLoad | None = None,
    inferred: list[Triple] | None = None,
    ontology: Ontology | None = None,
) -> ValidationReport:
    """Validate model files against the shipped shapes plus ``extra_shapes``; return the report.
    ``loaded`` / ``inferred``: the parsed model and its OWL 2 RL closure, when the caller has them;
    ``ontology``: the ontology with a user's extension (default: the shipped one)."""
    shapes = load_shapes(extra_shapes)
    load = loaded or load_model_files(model_paths)
    data = build_data(load.graph, ontology, knowledge=knowledge, knowledge_in_graph=method == "pyshacl",
                      inferred=inferred)
    report = evaluate(data, shapes, method)
    return ValidationReport(
        graph=report,
        issues=issues_of(report, data.graph, shapes),
        model_files=list(load.files),
        shape_files=[str(p) for p in builtin_shape_files()] + [str(p) for p in extra_shapes],
        knowledge_graphs=data.knowledge_graphs,
    )


def quads_of(report: rdflib.Graph) -> list[Quad]:
    """The report graph as quads of ``graph/validation`` (to keep it in a store)."""
    return list(triples_to_quads(report, graph_iri("validation")))


__all__ = [
    "METHODS",
    "Issue",
    "SparqlConstraint",
    "Term",
    "ValidationData",
    "ValidationReport",
    "build_data",
    "builtin_shape_files",
    "check_shapes",
    "evaluate",
    "focused_query",
    "issues_of",
    "load_shapes",
    "result_keys",
    "sparql_constraints",
    "validate_models",
]
