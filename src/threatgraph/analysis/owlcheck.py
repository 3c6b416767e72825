"""``check-ontology``: HermiT (OWL 2 DL) over the shipped ontology plus a user's extension.

An extension adds ML classes, applicability axioms or mappings in one or more RDF files. HermiT (run
through owlready2, the optional ``reasoner`` extra, and a Java runtime) decides whether the merged
ontology is consistent and which classes are unsatisfiable. The report names the extension's axioms
involved: for an unsatisfiable class, the extension's statements that mention it; for an
inconsistency, a minimal set of the extension's descriptions (statements grouped by subject) that
together contradict the ontology, found by QuickXplain over HermiT runs (bounded by ``max_runs``).
Terms of threatgraph's namespaces that the extension uses but nobody declares (typos) are reported
too.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import rdflib
from rdflib.namespace import RDF, RDFS

from threatgraph.analysis.ontology import load_ontology, parse_extension
from threatgraph.errors import InputError, MissingDependency

NOTHING = "http://www.w3.org/2002/07/owl#Nothing"
XSD_DURATION = rdflib.URIRef("http://www.w3.org/2001/XMLSchema#duration")
_OURS = ("https://w3id.org/threatgraph/ontology#", "https://w3id.org/threatgraph/ml#",
         "https://w3id.org/threatgraph/kb#", "https://w3id.org/threatgraph/stride#",
         "https://w3id.org/threatgraph/linddun#")

Triple = tuple[rdflib.term.Node, rdflib.term.Node, rdflib.term.Node]


@dataclass(frozen=True)
class Axiom:
    """One statement of the extension, as text, with where its subject is described."""

    text: str
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Unsatisfiable:
    """A class HermiT finds unsatisfiable (equivalent to owl:Nothing), with the extension's axioms on it."""

    iri: str
    name: str
    axioms: tuple[Axiom, ...]
    unsatisfiable_parents: tuple[str, ...] = ()


@dataclass
class OntologyCheck:
    """The outcome of :func:`check_ontology`."""

    files: list[str]
    triples: int
    consistent: bool
    unsatisfiable: list[Unsatisfiable] = field(default_factory=list)
    conflict: list[Axiom] = field(default_factory=list)
    """For an inconsistent ontology: a minimal set of the extension's axioms that contradicts it."""
    conflict_complete: bool = True
    """False when the search for ``conflict`` stopped at ``max_runs`` (then ``conflict`` is a superset)."""
    undeclared: list[Axiom] = field(default_factory=list)
    runs: int = 0

    @property
    def ok(self) -> bool:
        return self.consistent and not self.unsatisfiable and not self.undeclared

    def as_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "extensionTriples": self.triples,
            "consistent": self.consistent,
            "conflict": [{"axiom": a.text, "at": a.where()} for a in self.conflict],
            "conflictMinimal": self.conflict_complete,
            "unsatisfiable": [
                {"class": u.iri, "name": u.name, "axioms": [{"axiom": a.text, "at": a.where()} for a in u.axioms],
                 "unsatisfiableParents": list(u.unsatisfiable_parents)}
                for u in self.unsatisfiable
            ],
            "undeclared": [{"term": a.text, "at": a.where()} for a in self.undeclared],
            "hermitRuns": self.runs,
        }

    def render(self) -> str:
        lines = [f"shipped ontology + {', '.join(self.files) or 'no extension'} ({self.triples} extension triples)"]
        if not self.consistent:
            lines.append("INCONSISTENT: the extension contradicts the ontology; "
                         + ("these axioms together are the cause (remove or fix one):" if self.conflict_complete
                            else "the cause is among these axioms (search stopped at the run limit):"))
            lines += [f"  {a.where()}: {a.text}" for a in self.conflict]
        else:
            lines.append("consistent")
        for u in self.unsatisfiable:
            lines.append(f"UNSATISFIABLE class {u.name} (no individual can be one):")
            lines += [f"  {a.where()}: {a.text}" for a in u.axioms]
            if u.unsatisfiable_parents:
                lines.append(f"  it is a subclass of unsatisfiable {', '.join(u.unsatisfiable_parents)}")
        for a in self.undeclared:
            lines.append(f"UNDECLARED term {a.text} at {a.where()} (a typo? nothing declares it)")
        if self.ok:
            lines.append("no problems")
        return "\n".join(lines) + "\n"


# -- dependencies ------------------------------------------------------------------------------------
def reasoner() -> ModuleType:
    """owlready2, configured with a Java runtime; :class:`MissingDependency` (exit 2) when either is missing."""
    try:
        import owlready2
    except ImportError:
        raise MissingDependency(
            "check-ontology needs HermiT through owlready2, which is not installed",
            hint="install the optional extra: pip install 'threatgraph[reasoner]'",
        ) from None
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise MissingDependency(
            "check-ontology needs a Java runtime for HermiT, and none was found"
            + (f" (JAVA_HOME={java_home} has no bin/java)" if java_home else " (no java on PATH)"),
            hint="install a JRE (e.g. apt-get install default-jre-headless) or set JAVA_HOME",
        )
    owlready2.JAVA_EXE = java
    module: ModuleType = owlready2
    return module


# -- the extension as groups of statements -------------------------------------------------------------
@dataclass(frozen=True)
class _Group:
    root: rdflib.term.Node
    triples: tuple[Triple, ...]
    axioms: tuple[Axiom, ...]


def _closure(g: rdflib.Graph, root: rdflib.term.Node) -> list[Triple]:
    out: list[Triple] = []
    todo, seen = [root], {root}
    while todo:
        s = todo.pop()
        for t in g.triples((s, None, None)):
            out.append(t)
            o = t[2]
            if isinstance(o, rdflib.BNode) and o not in seen:
                seen.add(o)
                todo.append(o)
    return out


def _line_of(text: str, node: rdflib.term.Node, g: rdflib.Graph) -> int:
    """The line of the file where ``node`` is described (first line starting with its name), else 1."""
    if isinstance(node, rdflib.URIRef):
        iri = str(node)
        local = re.split(r"[#/:]", iri)[-1]
        names = [re.escape(f"<{iri}>")]
        if local:
            names.append(r"[A-Za-z0-9_.-]*:" + re.escape(local) + r"(?![\w-])")
        pat = re.compile(r"^[ \t]*(?:" + "|".join(names) + r")", re.MULTILINE)
        m = pat.search(text)
        if m:
            return text.count("\n", 0, m.start()) + 1
        m = re.search("|".join(names), text)
        if m:
            return text.count("\n", 0, m.start()) + 1
    return 1


_NOT_LOGICAL = ("http://www.w3.org/2000/01/rdf-schema#label", "http://www.w3.org/2000/01/rdf-schema#comment",
                "http://www.w3.org/2000/01/rdf-schema#seeAlso", "http://www.w3.org/2004/02/skos/core#",
                "http://purl.org/dc/terms/")
_DECLARATION = {(RDF.type, rdflib.OWL.Class), (RDF.type, rdflib.OWL.ObjectProperty),
                (RDF.type, rdflib.OWL.DatatypeProperty), (RDF.type, rdflib.OWL.AnnotationProperty),
                (RDF.type, rdflib.OWL.NamedIndividual)}


def _logical(t: Triple) -> bool:
    """Not an annotation (label, definition …) and not a bare declaration."""
    return not str(t[1]).startswith(_NOT_LOGICAL) and (t[1], t[2]) not in _DECLARATION


class _Names:
    """Short names: threatgraph's prefixes, then the extension's own."""

    def __init__(self, g: rdflib.Graph) -> None:
        from threatgraph.terms import PREFIXES

        self.prefixes = dict(PREFIXES)
        for prefix, ns in g.namespaces():
            if prefix and str(ns) not in self.prefixes.values() and prefix not in self.prefixes:
                self.prefixes[prefix] = str(ns)

    def __call__(self, iri: str) -> str:
        best = max((p for p, ns in self.prefixes.items() if iri.startswith(ns) and len(iri) > len(ns)),
                   key=lambda p: len(self.prefixes[p]), default=None)
        return f"{best}:{iri[len(self.prefixes[best]):]}" if best else f"<{iri}>"


def _show(g: rdflib.Graph, node: rdflib.term.Node, names: _Names) -> str:
    from threatgraph.vocabulary import _expr

    if isinstance(node, rdflib.URIRef):
        return names(str(node))
    if isinstance(node, rdflib.Literal):
        return node.n3()
    return _expr(g, node, names)


def _groups(g: rdflib.Graph, file_of: dict[Triple, tuple[str, str]], names: _Names) -> list[_Group]:
    """Statements grouped by top-level subject (IRIs; blank nodes nobody points to, e.g. GCIs)."""
    pointed = {o for o in g.objects() if isinstance(o, rdflib.BNode)}
    roots = sorted({s for s in g.subjects() if isinstance(s, rdflib.URIRef) or s not in pointed}, key=str)
    out: list[_Group] = []
    for root in roots:
        triples = _closure(g, root)
        axioms: list[Axiom] = []
        for t in triples:
            if t[0] != root or not _logical(t):
                continue
            file, text = file_of.get(t, ("?", ""))
            subject = _show(g, root, names)  # a blank node root (general axiom) shows as its class expression
            axioms.append(Axiom(f"{subject} {_show(g, t[1], names)} {_show(g, t[2], names)}", file,
                                _line_of(text, root, g)))
        out.append(_Group(root, tuple(triples), tuple(sorted(axioms, key=lambda a: a.text))))
    return out


# -- HermiT ----------------------------------------------------------------------------------------
@dataclass
class _Hermit:
    owlready2: ModuleType
    base: rdflib.Graph
    workdir: Path
    runs: int = 0

    def run(self, extra: Sequence[Triple]) -> tuple[bool, set[str]]:
        """(consistent, unsatisfiable class IRIs) of the base graph plus ``extra``."""
        owlready2 = self.owlready2
        g = rdflib.Graph()
        for t in self.base:
            g.add(t)
        for t in extra:
            g.add(t)
        for t in [t for t in g if isinstance(t[2], rdflib.Literal) and t[2].datatype == XSD_DURATION]:
            g.remove(t)  # HermiT has only the OWL 2 datatype map (no xsd:duration)
        self.runs += 1
        path = self.workdir / f"run{self.runs}.owl"
        g.serialize(destination=path, format="xml")
        world = owlready2.World()
        with contextlib.redirect_stderr(io.StringIO()):  # owlready2's loader warnings about punning
            onto = world.get_ontology(path.as_uri()).load()
            try:
                with onto:
                    owlready2.sync_reasoner(world, infer_property_values=False, debug=0)
            except owlready2.OwlReadyInconsistentOntologyError:
                return False, set()
            except owlready2.OwlReadyJavaError as err:
                raise InputError(f"HermiT refused the ontology: {str(err).strip()[:500]}",
                                 hint="the extension must be OWL 2 DL") from None
        unsat = {c.iri for c in world.inconsistent_classes() if hasattr(c, "iri")}
        nothing = world["http://www.w3.org/2002/07/owl#Nothing"]
        unsat |= {c.iri for c in nothing.equivalent_to if hasattr(c, "iri")}
        return True, unsat


def _quickxplain(groups: list[_Group], consistent: Callable[[list[_Group]], bool]) -> list[_Group]:
    """A minimal subset of ``groups`` that is inconsistent with the base (Junker's QuickXplain)."""

    def qx(background: list[_Group], delta: bool, candidates: list[_Group]) -> list[_Group]:
        if delta and not consistent(background):
            return []
        if len(candidates) == 1:
            return candidates
        half = len(candidates) // 2
        c1, c2 = candidates[:half], candidates[half:]
        d2 = qx(background + c1, bool(c1), c2)
        d1 = qx(background + d2, bool(d2), c1)
        return d1 + d2

    return qx([], False, groups)


class _RunLimit(Exception):
    pass


def check_ontology(extra: Sequence[str | Path], *, max_runs: int = 12) -> OntologyCheck:
    """Run HermiT over the shipped ontology plus the ``extra`` files and report what is wrong."""
    owlready2 = reasoner()
    base = load_ontology().graph
    ext = rdflib.Graph()
    file_of: dict[Triple, tuple[str, str]] = {}
    file_names: list[str] = []
    for f in extra:
        g = parse_extension(Path(f))
        text = Path(f).read_text(encoding="utf-8", errors="replace")
        file_names.append(str(f))
        for prefix, ns in g.namespaces():
            ext.bind(prefix, ns, override=False)
        for t in g:
            ext.add(t)
            file_of.setdefault(t, (str(f), text))
    names = _Names(ext)
    undeclared = _undeclared(base, ext, file_of, names)
    with tempfile.TemporaryDirectory(prefix="threatgraph-hermit-") as tmp:
        hermit = _Hermit(owlready2, base, Path(tmp))
        consistent, unsat = hermit.run(list(ext))
        result = OntologyCheck(file_names, len(ext), consistent, undeclared=undeclared)
        if not consistent:
            groups = [grp for grp in _groups(ext, file_of, names) if grp.axioms]
            cache: dict[frozenset[int], bool] = {frozenset(): True}  # the shipped ontology is consistent

            def ok(sel: list[_Group]) -> bool:
                key = frozenset(id(s) for s in sel)
                if key not in cache:
                    if hermit.runs >= max_runs:
                        raise _RunLimit
                    cache[key] = hermit.run([t for s in sel for t in s.triples])[0]
                return cache[key]

            try:
                conflict = _quickxplain(groups, ok)
            except _RunLimit:
                conflict, result.conflict_complete = groups, False
            result.conflict = [a for grp in conflict for a in grp.axioms]
        else:
            result.unsatisfiable = _explain_unsat(base, ext, unsat - {NOTHING}, file_of, names)
        result.runs = hermit.runs
    return result


def _explain_unsat(
    base: rdflib.Graph, ext: rdflib.Graph, unsat: set[str], file_of: dict[Triple, tuple[str, str]], names: _Names
) -> list[Unsatisfiable]:
    curie = names
    merged = base + ext
    groups = {g.root: g for g in _groups(ext, file_of, names)}
    out: list[Unsatisfiable] = []
    for iri in sorted(unsat):
        node = rdflib.URIRef(iri)
        axioms: list[Axiom] = []
        for grp in groups.values():
            mentions = grp.root == node or any(node in (t[0], t[2]) for t in grp.triples)
            if mentions:
                axioms += [a for a in grp.axioms if grp.root == node or curie(iri) in a.text]
        parents = sorted(
            curie(str(p)) for p in merged.transitive_objects(node, RDFS.subClassOf)
            if isinstance(p, rdflib.URIRef) and p != node and str(p) in unsat
        )
        out.append(Unsatisfiable(iri, curie(iri), tuple(axioms), tuple(parents)))
    return out


def _undeclared(
    base: rdflib.Graph, ext: rdflib.Graph, file_of: dict[Triple, tuple[str, str]], curie: _Names
) -> list[Axiom]:
    declared = {s for s in (base + ext).subjects(RDF.type, None) if isinstance(s, rdflib.URIRef)}
    used: dict[rdflib.URIRef, Triple] = {}
    for t in ext:
        for n in t:
            if isinstance(n, rdflib.URIRef) and str(n).startswith(_OURS) and n not in declared:
                used.setdefault(n, t)
    out = []
    for n, t in sorted(used.items(), key=lambda kv: str(kv[0])):
        file, text = file_of.get(t, ("?", ""))
        m = re.search(re.escape(str(n).rsplit("#", 1)[-1].rsplit("/", 1)[-1]), text)
        line = text.count("\n", 0, m.start()) + 1 if m else 1
        out.append(Axiom(curie(str(n)), file, line))
    return out

