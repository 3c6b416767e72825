"""SHACL shapes compiled to SPARQL queries for the embedded store (docs/validation.md).

Shapes are parsed with pyoxigraph into a :class:`ShapesGraph` (no rdflib). :func:`compile_shapes`
turns every node shape whose constraints it understands into :class:`Check` queries that each run
ONCE over all the shape's focus nodes; a shape using anything else (or a shape another shape
refers to) is left to pyshacl, which :mod:`threatgraph.analysis.validation` imports only then.

Compiled: node shapes with IRI targets (``sh:targetClass``, ``sh:targetNode``,
``sh:targetSubjectsOf``, ``sh:targetObjectsOf``) and a ``sh:message`` on every constraint, whose
constraints are ``sh:sparql`` (one ``sh:select`` projecting ``$this``, no ``$PATH``/
``$currentShape``/``$shapesGraph``, no sub-query), node-level ``sh:nodeKind``, ``sh:class``, ``sh:or``
of ``sh:class`` shapes, and property shapes on an IRI path with ``sh:minCount``, ``sh:maxCount``,
``sh:class``, ``sh:datatype`` (types SPARQL can cast, ``xsd:string``, ``rdf:langString``,
``rdfs:Literal``), ``sh:nodeKind``, ``sh:in`` (IRIs and literals), ``sh:hasValue``.

>>> g = ShapesGraph.parse_text('''@prefix sh: <http://www.w3.org/ns/shacl#> .
... <urn:S> a sh:NodeShape ; sh:targetClass <urn:C> ;
...   sh:property [ sh:path <urn:p> ; sh:minCount 1 ; sh:message "needs p" ] .''', "inline.ttl")
>>> c = compile_shapes(g)
>>> [ch.component for ch in c.checks], c.fallback
(['MinCount'], [])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyoxigraph import BlankNode, Literal, NamedNode, RdfFormat, parse

from threatgraph.errors import InputError
from threatgraph.store.base import Term

SH = "http://www.w3.org/ns/shacl#"
RDF_TYPE = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
RDF_FIRST = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#first")
RDF_REST = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#rest")
RDF_NIL = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#nil")
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"
VIOLATION = NamedNode(SH + "Violation")
_CLASSES = {NamedNode(RDFS + "Class"), NamedNode(OWL + "Class")}


def sh(name: str) -> NamedNode:
    """An IRI of the SHACL vocabulary."""
    return NamedNode(SH + name)


TARGETS = tuple(sh(n) for n in ("targetClass", "targetNode", "targetSubjectsOf", "targetObjectsOf"))
# Where a shape is used by another shape (pyshacl then evaluates it nested): not compiled.
NESTING = (*(sh(n) for n in ("node", "property", "and", "or", "not", "xone", "qualifiedValueShape")), RDF_FIRST)
_DEFAULT_PREFIXES = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "rdfs": RDFS, "owl": OWL}
_ANNOTATIONS = {
    RDF_TYPE, sh("severity"), sh("message"), sh("name"), sh("description"), sh("deactivated"), sh("order"),
    sh("group"), NamedNode(RDFS + "label"), NamedNode(RDFS + "comment"),
}
_NODE_ALLOWED = _ANNOTATIONS | set(TARGETS) | {
    sh("property"), sh("sparql"), sh("prefixes"), sh("nodeKind"), sh("class"), sh("or"), sh("declare"),
}
_PROP_ALLOWED = _ANNOTATIONS | {
    sh("path"), sh("minCount"), sh("maxCount"), sh("class"), sh("datatype"), sh("nodeKind"), sh("in"), sh("hasValue"),
}
_NODE_KINDS = {
    "IRI": "isIRI({v})",
    "BlankNode": "isBlank({v})",
    "Literal": "isLiteral({v})",
    "BlankNodeOrIRI": "!isLiteral({v})",
    "BlankNodeOrLiteral": "!isIRI({v})",
    "IRIOrLiteral": "!isBlank({v})",
}
# Datatypes whose lexical forms SPARQL casts check (pyshacl: rdflib's ill-typed test).
_CASTABLE = {XSD + t for t in ("boolean", "integer", "decimal", "float", "double", "dateTime", "date", "time", "duration")}
_WHERE = re.compile(r"\bWHERE\s*\{", re.IGNORECASE)
_PROJECTS_THIS = re.compile(r"^\s*SELECT\s+(DISTINCT\s+|REDUCED\s+)?[^{]*\$this\b", re.IGNORECASE | re.DOTALL)
_UNSUPPORTED = re.compile(r"\$(PATH|currentShape|shapesGraph)\b|\?failure\b")
_SELECTS = re.compile(r"\bSELECT\b", re.IGNORECASE)
_FORMATS = {".nt": RdfFormat.N_TRIPLES, ".n3": RdfFormat.N3, ".rdf": RdfFormat.RDF_XML, ".owl": RdfFormat.RDF_XML, ".xml": RdfFormat.RDF_XML}


# -------------------------------------------------------------------------------------------------
# The shapes graph
# -------------------------------------------------------------------------------------------------
class ShapesGraph:
    """The triples of the shape files, indexed by subject and by predicate/object."""

    def __init__(self, triples: Iterable[tuple[Term, NamedNode, Term]]) -> None:
        self.triples: list[tuple[Term, NamedNode, Term]] = list(dict.fromkeys(triples))
        self.spo: dict[Term, dict[NamedNode, list[Term]]] = {}
        self.pos: dict[NamedNode, dict[Term, list[Term]]] = {}
        self.incoming: dict[Term, list[tuple[Term, NamedNode]]] = {}
        for s, p, o in self.triples:
            self.spo.setdefault(s, {}).setdefault(p, []).append(o)
            self.pos.setdefault(p, {}).setdefault(o, []).append(s)
            self.incoming.setdefault(o, []).append((s, p))

    @classmethod
    def parse_files(cls, paths: Sequence[Path]) -> ShapesGraph:
        """Parse shape files (Turtle unless the extension names another syntax)."""
        triples: list[tuple[Term, NamedNode, Term]] = []
        for path in paths:
            if not path.is_file():
                raise InputError(f"{path}: no such shapes file", hint="pass a Turtle file of SHACL shapes to --shapes")
            try:
                data = path.read_bytes()
            except OSError as err:
                raise InputError(f"{path}: cannot read: {err.strerror}") from err
            triples.extend(_parse(data, str(path), _FORMATS.get(path.suffix.lower(), RdfFormat.TURTLE)))
        return cls(triples)

    @classmethod
    def parse_text(cls, text: str, name: str) -> ShapesGraph:
        """Parse Turtle text (tests, doctests)."""
        return cls(_parse(text.encode("utf-8"), name, RdfFormat.TURTLE))

    def objects(self, s: Term, p: NamedNode) -> list[Term]:
        return self.spo.get(s, {}).get(p, [])

    def value(self, s: Term, p: NamedNode) -> Term | None:
        vals = self.objects(s, p)
        return vals[0] if vals else None

    def subjects(self, p: NamedNode, o: Term | None = None) -> list[Term]:
        by_o = self.pos.get(p, {})
        if o is not None:
            return by_o.get(o, [])
        return list(dict.fromkeys(s for ss in by_o.values() for s in ss))

    def predicates(self, s: Term) -> set[NamedNode]:
        return set(self.spo.get(s, {}))

    def is_true(self, s: Term, p: NamedNode) -> bool:
        v = self.value(s, p)
        return isinstance(v, Literal) and v.value in ("true", "1")

    def items(self, head: Term) -> list[Term] | None:
        """The members of an RDF list, or None if ``head`` is not a well-formed list."""
        out: list[Term] = []
        seen: set[Term] = set()
        node = head
        while node != RDF_NIL:
            if node in seen or len(self.objects(node, RDF_FIRST)) != 1 or len(self.objects(node, RDF_REST)) != 1:
                return None
            seen.add(node)
            out.append(self.objects(node, RDF_FIRST)[0])
            node = self.objects(node, RDF_REST)[0]
        return out

    def description(self, node: Term, _seen: frozenset[Term] = frozenset()) -> list[tuple[Term, NamedNode, Term]]:
        """The triples of a blank node, recursively through blank-node objects (as pyshacl clones them)."""
        out: list[tuple[Term, NamedNode, Term]] = []
        for p, objs in self.spo.get(node, {}).items():
            for o in objs:
                out.append((node, p, o))
                if isinstance(o, BlankNode) and o not in _seen:
                    out.extend(self.description(o, _seen | {node}))
        return out


def _parse(data: bytes, name: str, fmt: RdfFormat) -> list[tuple[Term, NamedNode, Term]]:
    try:
        return [(q.subject, q.predicate, q.object) for q in parse(data, fmt)]
    except SyntaxError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        raise InputError(
            f"{name}: cannot parse the shapes file: {first}",
            hint="fix the Turtle syntax (a missing '.', ';' or prefix declaration?)",
        ) from err


# -------------------------------------------------------------------------------------------------
# SPARQL-based constraints
# -------------------------------------------------------------------------------------------------
@dataclass
class SparqlConstraint:
    """One ``sh:sparql`` constraint of one shape."""

    shape: Term
    node: Term
    select: str
    prefixes: dict[str, str]
    messages: list[Literal]
    shape_messages: list[Literal]
    severity: Term
    why_not: str = ""
    """Why it cannot run once for all focus nodes (empty: it can)."""

    def query_text(self) -> str:
        """The query with its prefix declarations (as pyshacl runs it)."""
        head = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in self.prefixes.items())
        return f"{head}\n{self.select}"


def _prefixes(g: ShapesGraph, node: Term) -> dict[str, str]:
    out = dict(_DEFAULT_PREFIXES)
    vals = g.objects(node, sh("prefixes"))
    if not vals:
        return out
    onts = set(g.subjects(RDF_TYPE, NamedNode(OWL + "Ontology")))
    global_declares: list[Term] = [d for o in sorted(onts, key=str) for d in g.objects(o, sh("declare"))]
    for val in vals:
        own = g.objects(val, sh("declare"))
        declares = own if (own and val in onts) else global_declares + own
        for dec in declares:
            p, ns = g.value(dec, sh("prefix")), g.value(dec, sh("namespace"))
            if isinstance(p, Literal) and ns is not None and not isinstance(ns, BlankNode):
                out[p.value] = ns.value
    return out


def _messages(g: ShapesGraph, node: Term) -> list[Literal]:
    return [m for m in g.objects(node, sh("message")) if isinstance(m, Literal)]


def sparql_constraints(g: ShapesGraph) -> list[SparqlConstraint]:
    """Every active ``sh:sparql`` constraint, with why it cannot run once for all focus nodes."""
    out: list[SparqlConstraint] = []
    for shape in sorted(g.subjects(sh("sparql")), key=str):
        for node in g.objects(shape, sh("sparql")):
            if g.is_true(shape, sh("deactivated")) or g.is_true(node, sh("deactivated")):
                continue
            selects = g.objects(node, sh("select"))
            text = selects[0].value if selects and isinstance(selects[0], Literal) else ""
            why = ""
            if len(selects) != 1:
                why = "not exactly one sh:select"
            elif "$this" not in text or not _PROJECTS_THIS.search(text) or _UNSUPPORTED.search(text):
                why = "query does not project $this, or uses $PATH/$currentShape/$shapesGraph/?failure"
            elif len(_SELECTS.findall(text)) != 1 or not _WHERE.search(text):
                why = "sub-query or no WHERE"
            msgs, shape_msgs = _messages(g, node), _messages(g, shape)
            if not why and not msgs and not shape_msgs:
                why = "no sh:message"
            sev = g.value(shape, sh("severity")) or VIOLATION
            out.append(SparqlConstraint(shape, node, text, _prefixes(g, node), msgs, shape_msgs, sev, why))
    return out


# -------------------------------------------------------------------------------------------------
# Compilation
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One compiled constraint: a SELECT whose solutions are the validation results.

    Solutions bind ``?this`` (focus node), and ``?value`` when ``value == "row"``; for SPARQL-based
    constraints (``sparql``) also ``?path`` and any other variable used in ``{?var}`` messages.
    Class markers (:func:`subclasses_marker`) are filled in when the query runs.
    """

    query: str
    shape: Term
    severity: Term
    component: str
    """Local name of the SHACL constraint component (``MinCount`` → ``sh:MinCountConstraintComponent``)."""
    messages: tuple[Literal, ...]
    path: NamedNode | None = None
    value: str = "none"
    """``row`` (the solution's ``?value``), ``this`` (the focus node) or ``none``."""
    constraint: Term | None = None
    sparql: bool = False


@dataclass
class Compiled:
    """Compiled checks, the shapes left to pyshacl (with why), and the shapes graph."""

    checks: list[Check]
    fallback: list[tuple[Term, str]]
    graph: ShapesGraph
    compiled_shapes: list[Term] = field(default_factory=list)


class _NotCompiled(Exception):
    """A shape uses something this compiler does not translate."""


def _iri(t: Term | None) -> str:
    if not isinstance(t, NamedNode):
        raise _NotCompiled("a target or parameter that is not an IRI")
    return str(t)


def subclasses_marker(cls: str) -> str:
    """Stands in a compiled query for the class ``cls`` and its subclasses (``rdfs:subClassOf*`` in the
    data), which :func:`expand_classes` fills in when the query runs (looked up once per run: a
    property path from the class end would enumerate every instance of the class for each node)."""
    return f"\u27e6{cls}\u27e7"


SUBCLASSES = re.compile("\u27e6(<[^>]*>)\u27e7")


def expand_classes(query: str, subclasses: Callable[[str], list[str]]) -> str:
    """Replace each class marker by the IRIs ``subclasses`` returns for it (N-Triples form)."""
    return SUBCLASSES.sub(lambda m: " ".join(subclasses(m.group(1))), query)


def _typed(var: str, classes: Sequence[str], tvar: str = "?tgK") -> str:
    """A pattern: ``var`` is an instance of one of ``classes`` (or of a subclass)."""
    return f"VALUES {tvar} {{ {' '.join(subclasses_marker(c) for c in classes)} }} {var} <{RDF_TYPE.value}> {tvar} ."


@dataclass(frozen=True)
class _Targets:
    """A shape's focus nodes: ``pattern`` enumerates them (a sub-select binding ``?this``);
    ``member`` is true when a bound ``?this`` is one."""

    pattern: str
    member: str


def _targets(g: ShapesGraph, shape: Term) -> _Targets:
    parts: list[str] = []
    tests: list[str] = []
    for kind in TARGETS:
        for o in g.objects(shape, kind):
            if kind == TARGETS[0]:
                parts.append(f"{{ {_typed('?this', [_iri(o)], '?tgT')} }}")
                tests.append(f"EXISTS {{ {_typed('?this', [_iri(o)], '?tgT')} }}")
            elif kind == TARGETS[1]:
                if isinstance(o, BlankNode):
                    raise _NotCompiled("blank-node sh:targetNode")
                parts.append(f"{{ BIND ({o} AS ?this) }}")
                tests.append(f"sameTerm(?this, {o})")
            elif kind == TARGETS[2]:
                parts.append(f"{{ ?this {_iri(o)} ?tgAny }}")
                tests.append(f"EXISTS {{ ?this {_iri(o)} ?tgAny }}")
            else:
                parts.append(f"{{ ?tgAny {_iri(o)} ?this }}")
                tests.append(f"EXISTS {{ ?tgAny {_iri(o)} ?this }}")
    if not parts:
        raise _NotCompiled("no target")
    return _Targets("{ SELECT DISTINCT ?this WHERE { " + " UNION ".join(parts) + " } }", " || ".join(tests))


def _is_int(t: Term | None) -> int | None:
    if t is None:
        return None
    if not isinstance(t, Literal) or not re.fullmatch(r"[0-9]+", t.value):
        raise _NotCompiled("a count that is not a non-negative integer")
    return int(t.value)


def _single(g: ShapesGraph, node: Term, name: str) -> Term | None:
    vals = g.objects(node, sh(name))
    if len(vals) > 1:
        raise _NotCompiled(f"several sh:{name}")
    return vals[0] if vals else None


def _kind_expr(g: ShapesGraph, node: Term, var: str) -> str | None:
    kind = _single(g, node, "nodeKind")
    if kind is None:
        return None
    name = kind.value[len(SH) :] if isinstance(kind, NamedNode) and kind.value.startswith(SH) else ""
    if name not in _NODE_KINDS:
        raise _NotCompiled("unknown sh:nodeKind")
    return _NODE_KINDS[name].format(v=var)


def _datatype_match(dt: Term) -> tuple[str, str]:
    """(BIND clause, condition) true when ``?value`` is a well-formed literal of ``dt``."""
    d = _iri(dt)
    if dt.value in _CASTABLE:
        return f"BIND ({d}(STR(?value)) AS ?tgCast)", f"isLiteral(?value) && datatype(?value) = {d} && BOUND(?tgCast)"
    if dt.value == XSD + "string":
        return "", f"isLiteral(?value) && datatype(?value) = {d}"
    if dt.value == "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString":
        return "", 'isLiteral(?value) && lang(?value) != ""'
    if dt.value == RDFS + "Literal":
        return "", "isLiteral(?value)"
    raise _NotCompiled(f"sh:datatype <{dt.value}> (not a type SPARQL checks)")


def _compile_property(g: ShapesGraph, ps: Term, t: _Targets) -> list[Check]:
    if not g.predicates(ps) <= _PROP_ALLOWED:
        raise _NotCompiled("a property-shape parameter not compiled: " + ", ".join(sorted(p.value for p in g.predicates(ps) - _PROP_ALLOWED)))
    if len(g.incoming.get(ps, [])) != 1:
        raise _NotCompiled("a property shape shared by several shapes")
    path = _single(g, ps, "path")
    if not isinstance(path, NamedNode):
        raise _NotCompiled("a property path that is not an IRI")
    msgs = tuple(_messages(g, ps))
    if not msgs:
        raise _NotCompiled("a property shape without sh:message (pyshacl's generic messages)")
    sev = _single(g, ps, "severity") or VIOLATION
    p = str(path)
    out: list[Check] = []

    def add(query: str, component: str, value: str) -> None:
        out.append(Check(query, ps, sev, component, msgs, path, value))

    # Value checks start from the path's triples and test the (few) offending values for focus
    # membership; count checks start from the focus nodes (an anti-join) or the grouped triples.
    lo, hi = _is_int(_single(g, ps, "minCount")), _is_int(_single(g, ps, "maxCount"))
    if lo == 1:
        add(f"SELECT DISTINCT ?this WHERE {{ {t.pattern} MINUS {{ ?this {p} ?value }} }}", "MinCount", "none")
    elif lo is not None and lo > 1:
        add(
            f"SELECT ?this WHERE {{ {t.pattern} OPTIONAL {{ ?this {p} ?value }} }} GROUP BY ?this "
            f"HAVING (COUNT(DISTINCT ?value) < {lo})",
            "MinCount", "none",
        )
    if hi is not None:
        add(
            f"SELECT ?this WHERE {{ {{ SELECT ?this WHERE {{ ?this {p} ?value }} GROUP BY ?this "
            f"HAVING (COUNT(DISTINCT ?value) > {hi}) }} FILTER ({t.member}) }}",
            "MaxCount", "none",
        )
    values = f"?this {p} ?value ."

    def offending(where: str) -> str:
        # the offending values first (a sub-select), then whether their subject is a focus node:
        # Oxigraph would otherwise test membership for every value
        return f"SELECT DISTINCT ?this ?value WHERE {{ {{ SELECT ?this ?value WHERE {{ {where} }} }} FILTER ({t.member}) }}"
    classes = [_iri(c) for c in g.objects(ps, sh("class"))]
    for cls in classes:
        add(offending(f"{values} MINUS {{ {_typed('?value', [cls])} }}"), "Class", "row")
    dt = _single(g, ps, "datatype")
    if dt is not None:
        bind, cond = _datatype_match(dt)
        add(offending(f"{values} {bind} FILTER (!({cond}))"), "Datatype", "row")
    kind = _kind_expr(g, ps, "?value")
    if kind is not None:
        add(offending(f"{values} FILTER (!({kind}))"), "NodeKind", "row")
    for lst in g.objects(ps, sh("in")):
        members = g.items(lst)
        if members is None or any(isinstance(m, BlankNode) for m in members):
            raise _NotCompiled("sh:in that is not a list of IRIs and literals")
        allowed = " || ".join(f"sameTerm(?value, {m})" for m in members) or "false"
        add(offending(f"{values} FILTER (!({allowed}))"), "In", "row")
    for hv in g.objects(ps, sh("hasValue")):
        if isinstance(hv, BlankNode):
            raise _NotCompiled("blank-node sh:hasValue")
        add(f"SELECT DISTINCT ?this WHERE {{ {t.pattern} MINUS {{ ?this {p} {hv} }} }}", "HasValue", "none")
    return out


def _compile_node_level(g: ShapesGraph, shape: Term, t: _Targets, sev: Term) -> list[Check]:
    wheres: list[tuple[str, str]] = []
    kind = _kind_expr(g, shape, "?this")
    if kind is not None:
        wheres.append(("NodeKind", f"{t.pattern} FILTER (!({kind}))"))
    for cls in g.objects(shape, sh("class")):
        wheres.append(("Class", f"{t.pattern} MINUS {{ {_typed('?this', [_iri(cls)])} }}"))
    for lst in g.objects(shape, sh("or")):
        members = g.items(lst)
        classes: list[str] = []
        for m in members or []:
            if not isinstance(m, BlankNode) or g.predicates(m) - {RDF_TYPE} != {sh("class")} or len(g.incoming.get(m, [])) != 1:
                raise _NotCompiled("sh:or of shapes other than [ sh:class C ]")
            if len(g.objects(m, sh("class"))) != 1:
                raise _NotCompiled("sh:or member with several sh:class")
            classes.append(_iri(g.objects(m, sh("class"))[0]))
        if not members:
            raise _NotCompiled("an empty or malformed sh:or list")
        wheres.append(("Or", f"{t.pattern} MINUS {{ {_typed('?this', classes)} }}"))
    if not wheres:
        return []
    msgs = tuple(_messages(g, shape))
    if not msgs:
        raise _NotCompiled("node-level constraints without sh:message (pyshacl's generic messages)")
    return [Check(f"SELECT DISTINCT ?this WHERE {{ {w} }}", shape, sev, c, msgs, None, "this") for c, w in wheres]


def focused_query(sc: SparqlConstraint, focus: str) -> str:
    """The constraint's query with its focus nodes joined in, to run once for all of them."""
    m = _WHERE.search(sc.select)
    if m is None:  # pragma: no cover - excluded by eligibility
        raise _NotCompiled("no WHERE clause")
    head = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in sc.prefixes.items())
    return head + sc.select[: m.end()] + "\n  " + focus + "\n" + sc.select[m.end() :]


def _compile_shape(g: ShapesGraph, shape: Term, sparql: dict[Term, list[SparqlConstraint]]) -> list[Check]:
    if g.value(shape, sh("path")) is not None:
        raise _NotCompiled("a property shape with targets")
    if any(p in NESTING for _s, p in g.incoming.get(shape, [])):
        raise _NotCompiled("a shape used by another shape")
    if set(g.objects(shape, RDF_TYPE)) & _CLASSES:
        raise _NotCompiled("an implicit class target")
    if g.objects(shape, sh("target")):
        raise _NotCompiled("a custom target")
    extra = g.predicates(shape) - _NODE_ALLOWED
    if extra:
        raise _NotCompiled("a node-shape parameter not compiled: " + ", ".join(sorted(p.value for p in extra)))
    t = _targets(g, shape)
    sev = _single(g, shape, "severity") or VIOLATION
    checks = _compile_node_level(g, shape, t, sev)
    for ps in g.objects(shape, sh("property")):
        if not g.is_true(ps, sh("deactivated")):
            checks.extend(_compile_property(g, ps, t))
    for sc in sparql.get(shape, []):
        if sc.why_not:
            raise _NotCompiled(sc.why_not)
        msgs = [m for m in sc.messages if m not in sc.shape_messages] + sc.shape_messages
        checks.append(Check(focused_query(sc, t.pattern), shape, sev, "SPARQL", tuple(msgs), None, "row", sc.node, True))
    return checks


def shape_nodes(g: ShapesGraph) -> list[Term]:
    """Every node shape with targets (declared ``sh:NodeShape`` or not), in a stable order."""
    nodes = set(g.subjects(RDF_TYPE, sh("NodeShape")))
    for t in (*TARGETS, sh("target")):
        nodes.update(g.subjects(t))
    return sorted(nodes, key=str)


def compile_shapes(g: ShapesGraph) -> Compiled:
    """Compile every targeted shape it can; the others are listed in ``fallback`` with the reason."""
    sparql: dict[Term, list[SparqlConstraint]] = {}
    for sc in sparql_constraints(g):
        sparql.setdefault(sc.shape, []).append(sc)
    checks: list[Check] = []
    fallback: list[tuple[Term, str]] = []
    done: list[Term] = []
    for shape in shape_nodes(g):
        if g.is_true(shape, sh("deactivated")):
            done.append(shape)
            continue
        try:
            found = _compile_shape(g, shape, sparql)
        except _NotCompiled as why:
            # pyshacl starts only from targeted shapes (explicit targets, or a shape that is a class);
            # untargeted ones run nested in those, so they matter only through them.
            types = set(g.objects(shape, RDF_TYPE))
            if any(g.objects(shape, t) for t in (*TARGETS, sh("target"))) or types & _CLASSES:
                fallback.append((shape, str(why)))
            continue
        checks.extend(found)
        done.append(shape)
    return Compiled(checks, fallback, g, done)


__all__ = [
    "Check",
    "Compiled",
    "ShapesGraph",
    "SparqlConstraint",
    "compile_shapes",
    "expand_classes",
    "focused_query",
    "shape_nodes",
    "sparql_constraints",
]
