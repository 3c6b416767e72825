"""Python implementations of the heaviest steps of the technique stage (issue 14, speed).

:func:`threatgraph.analysis.techniques.run_stage` runs the SPARQL updates of ``queries/derive-findings/*.rq``;
on the embedded (pyoxigraph) store the steps named in :data:`PythonStage.STEPS` run here instead, over the
same store: the triples they need are read from the store's indexes (``quads_for_pattern``) or by a few
small SELECTs (tables of the bridge mappings and the knowledge view, a few hundred to a few thousand rows),
joined in dictionaries and sets, and the resulting triples written in bulk as N-Triples. Each implementation
writes exactly the quads of its ``.rq`` file (same IRIs, literals and graphs; tests/test_techniques_python.py
compares the whole finding graph both ways); the ``.rq`` files stay the specification and still run on other stores
(remote SPARQL endpoints) and with ``run_stage(..., python=False)``.

Intermediate tables: 07-reduction-facts.rq writes blank-node facts into the scratch graph ``graph/stage``
for 15-reduced-by.rq. Run here, its facts are kept in memory (:attr:`PythonStage.reduction`) and only
written into ``graph/stage`` when a step run as SPARQL reads them (:meth:`PythonStage.before_sparql`).

What 10-techniques and 15-reduced-by write of the technique applications is also kept in memory
(:class:`StageMemory`, :attr:`PythonStage.memory`, handed on as ``StageResult.memory`` and ``Analysis.stage_memory``):
the control status and risk steps and :func:`threatgraph.analysis.findings.findings_of` build on it instead of
reading ~1 M quads back (issue 14). The graph is still written in full: the later ``.rq`` steps, risk, named
queries, the server, ``--save`` and exports read it.

With the rule findings in memory (``run_stage(..., cores=, rules=)``, what the engine hands it; issue 14) the
stage never loads the deferred finding graph (``EmbeddedStore.defer``): the findings' focus and categories come
from the engine's :class:`~threatgraph.analysis.findings.FindingCore`, the steps read the model, closure, bridge,
view and scratch graph from the store without its deferred text (``unsettled_oxigraph``), 31-countermeasures-assets
and 50-controls also run here (:data:`PythonStage.MEMORY_STEPS`, from :class:`StageMemory`), and what they write
into graph/findings is deferred N-Triples text (the same triples). Measured in-process (CPU of ``run_stage`` with
its control status, on a shared machine, so approximate): generated 10 k elements 9.8 s (of which ~2.9 s loading the
deferred finding graph) → 3.5 s, 1 k 0.78 s → 0.36 s, rag-assistant with knowledge 0.13 s → 0.06 s.

Where a ``.rq`` expression could fail on unusual terms (``STR`` or ``MD5`` of a blank node), the SPARQL
semantics are kept: the variable stays unbound and the template triples that use it are not written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from pyoxigraph import BlankNode, Literal, NamedNode, Quad, RdfFormat, Triple, parse
from pyoxigraph import Store as OxStore

from threatgraph.resources import queries_dir
from threatgraph.store.base import Row, Store, Term
from threatgraph.terms import FINDING, RDF, TG, TGML, graph_iri

if TYPE_CHECKING:
    from threatgraph.analysis.findings import FindingCore

Node: TypeAlias = NamedNode | BlankNode | Literal | Triple
"""A term of a quad read from the store."""
Subject: TypeAlias = NamedNode | BlankNode | Triple
Triples: TypeAlias = set[tuple[Subject, NamedNode, Node]]

_G_MODEL = NamedNode(graph_iri("model"))
_G_INFERRED = NamedNode(graph_iri("inferred"))
_G_BRIDGE = NamedNode(graph_iri("bridge"))
_G_VIEW = NamedNode(graph_iri("view"))
_G_STAGE = NamedNode(graph_iri("stage"))
_G_FINDINGS = NamedNode(graph_iri("findings"))
_TRUE = Literal(True)
_TYPE = NamedNode(str(RDF.type))


def _n(iri: str) -> NamedNode:
    return NamedNode(iri)


_P = {name: _n(TG[name]) for name in (
    "Finding", "focus", "category", "realizes", "targetsAsset", "preparatory", "requiresPersonalData",
    "exposedWhen", "reducedBy", "stagePersonal", "stageReductionOf", "factAttribute", "factSubject", "factVia",
    "factHops", "TechniqueApplication", "ofFinding", "onElement", "appliedTechnique", "viaMapping",
    "viaAssetType", "inRelease", "replacesTechnique", "exposure", "ExposureFact", "reducedByFact", "target",
    "coversCategory", "hasControl", "coveredBy", "countermeasure", "countermeasureInference",
    "countermeasuresByAssetType", "forAssetType", "countermeasureTechnique", "offensiveArtifact",
    "defensiveRelation", "defendedArtifact", "CountermeasureInference", "forTechnique", "offensiveRelation",
    "implementsMitigation", "applicableMitigation", "implementedMitigation", "implementedBy",
)}
_USES_GUARDRAIL = _n(TGML.usesGuardrail)
_APP = f"{FINDING}app/"
_FACT = f"{FINDING}fact/"
_FACT_R = f"{FINDING}fact/r/"
_D3FEND = f"{FINDING}d3fend/"

_MAPPINGS = f"""SELECT ?m ?cat ?cls ?free WHERE {{
  GRAPH <{_G_BRIDGE.value}> {{ ?m tg:realizes ?cat ; tg:targetsAsset ?cls }}
  FILTER NOT EXISTS {{ GRAPH <{_G_BRIDGE.value}> {{ ?m tg:preparatory true }} }}
  OPTIONAL {{ GRAPH <{_G_BRIDGE.value}> {{ ?m tg:requiresPersonalData ?personal }} }}
  BIND (COALESCE(!STRSTARTS(STR(?cat), "https://w3id.org/threatgraph/linddun#") || !BOUND(?personal)
                 || ?personal != true, false) AS ?free)
}}"""
"""The candidate mappings of 10-techniques.rq (its innermost sub-select) with its FILTER's part that does not
depend on the element: ``?free`` is true when the row passes without the element's personal data (an error,
as in the FILTER's disjunction, counts as false: then only ``tg:stagePersonal`` lets the row pass)."""

_CITATIONS = f"""SELECT ?m ?t ?rel ?replaced ?tid WHERE {{
  GRAPH <{_G_VIEW.value}> {{
    ?m tg:citesTechnique ?t ; tg:inRelease ?rel .
    OPTIONAL {{ ?m tg:replacesTechnique ?replaced }}
  }}
  BIND (REPLACE(STR(?t), "^.*/", "") AS ?tid)
}}"""
"""The cited techniques of 10-techniques.rq (its sub-select over graph/view, verbatim)."""

_EXPOSURES = f"""SELECT ?e ?attr ?s ?via ?hops ?xh WHERE {{
  GRAPH <{_G_STAGE.value}> {{
    ?xf tg:stageExposureOf ?e ; tg:factAttribute ?attr ; tg:factSubject ?s .
    OPTIONAL {{ ?xf tg:factVia ?via }} OPTIONAL {{ ?xf tg:factHops ?hops }}
  }}
  BIND (MD5(CONCAT(STR(?e), " ", STR(?s), " ", STR(?attr))) AS ?xh)
}}"""
"""The exposure facts of 10-techniques.rq (its sub-select over graph/stage, verbatim)."""

_REDUCTIONS = f"""SELECT ?e ?attr ?s WHERE {{ GRAPH <{_G_STAGE.value}> {{
  ?rf tg:stageReductionOf ?e ; tg:factAttribute ?attr ; tg:factSubject ?s }} }}"""
"""The reduction facts of 15-reduced-by.rq, when 07-reduction-facts.rq ran as SPARQL."""


_VALUED = (NamedNode, Literal)
_SPECIAL = (BlankNode, Triple)
_RESOURCE = (NamedNode, BlankNode)
# (tuples: ``isinstance(x, A | B)`` builds the union at every call, a third of a microsecond)


def _str(term: Node) -> str | None:
    """SPARQL ``STR``: the IRI or the lexical form; ``None`` (an error) for a blank node or a triple."""
    return term.value if isinstance(term, _VALUED) else None


def _iri(text: str) -> NamedNode | None:
    """SPARQL ``IRI`` of a string: ``None`` (an error) when it is not a valid IRI."""
    try:
        return NamedNode(text)
    except ValueError:
        return None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


class _Out:
    """Triples to add to graph/findings, with every term as its N-Triples text (Python caches the hash of a
    string, not of a pyoxigraph term). Written as N-Triples documents parsed by the store (a third
    faster than building ``Quad`` objects for ``bulk_extend``); a triple with a blank node or a triple term
    (:attr:`special`, read from the store) is written with the original terms, so a blank node stays that node."""

    CHUNK = 100_000
    """Lines parsed by the store at a time (the text of 10 k elements' applications is ~130 MB at once)."""

    def __init__(self, stage: PythonStage) -> None:
        self.stage = stage
        self.lines: list[str] = []
        """N-Triples lines not yet written (duplicates are harmless: the store is a set)."""
        self.special: dict[str, Node] = {}
        """Text → term of the blank nodes and triple terms read (their text does not name them in the store)."""
        self.odd: set[tuple[str, str, str]] = set()

    def key(self, term: Node) -> str:
        """The N-Triples text of ``term`` (a blank node or a triple term is remembered in :attr:`special`)."""
        if type(term) is NamedNode:
            return f"<{term.value}>"  # (its N-Triples text, as str gives it: a third of the time)
        text = str(term)
        if isinstance(term, _SPECIAL):
            text = f"{type(term).__name__}:{text}"  # never the text of an IRI or a literal
            self.special[text] = term
        return text

    def add(self, s: str, p: str, o: str) -> None:
        if s in self.special or o in self.special:
            self.odd.add((s, p, o))
        else:
            self.lines.append(f"{s} {p} {o} .\n")

    def _term(self, text: str) -> Node:
        got = self.special.get(text)
        if got is not None:
            return got
        if text.startswith("<"):
            return NamedNode(text[1:-1])
        parsed: Node = next(iter(parse(f"<urn:s> <urn:p> {text} .", format=RdfFormat.N_TRIPLES))).object
        return parsed

    def flush(self) -> None:
        """Write the lines so far (the store parses them without checking IRIs again: lenient); with the rule
        findings in memory (:attr:`PythonStage.cores`), deferred like them (``EmbeddedStore.defer``)."""
        if self.lines:
            self.stage.write_text("".join(self.lines))
            self.lines.clear()

    def write(self) -> None:
        """Write everything."""
        self.flush()
        stage = self.stage
        quads = []
        for s, p, o in self.odd:
            subject = self._term(s)
            if isinstance(subject, Literal):
                continue
            quads.append(Quad(subject, NamedNode(p[1:-1]), self._term(o), _G_FINDINGS))
        if quads:
            stage.store.add_quads(quads)
        self.odd.clear()


@dataclass(slots=True)
class AppRecord:
    """What 10-techniques.rq and 15-reduced-by.rq wrote of one technique application (IRIs, without the
    ``<>``), kept in memory so the finding read-back needs not read it from the store again."""

    technique: list[str] = field(default_factory=list)
    mapping: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    asset_types: set[str] = field(default_factory=set)
    exposures: list[str] = field(default_factory=list)
    """Exposure fact nodes (``tg:exposure``), distinct."""
    reduced: list[str] = field(default_factory=list)
    """Reduction fact nodes (``tg:reducedByFact``), distinct."""

    @property
    def single(self) -> bool:
        """Whether each of technique, mapping, release and replaced technique has at most one value (else the
        value a reader of the store sees first depends on the store's order: ask the store)."""
        return len(self.technique) <= 1 and len(self.mapping) <= 1 and len(self.release) <= 1 and len(self.replaces) <= 1


@dataclass
class StageMemory:
    """The technique applications the Python steps 10-techniques and 15-reduced-by wrote into graph/findings,
    as they wrote them (issue 14: the finding read-back built from them instead of ~1 M quads read back).
    Exactly the ``tg:controlStatus``, ``tg:ofFinding``, ``tg:appliedTechnique``, ``tg:viaMapping``, ``tg:inRelease``,
    ``tg:replacesTechnique``, ``tg:viaAssetType``, ``tg:exposure``, ``tg:reducedByFact`` quads of graph/findings
    and the ``tg:factSubject`` / ``tg:factAttribute`` of their fact nodes (every term an IRI); with the rule findings
    in memory, also what 31-countermeasures-assets, 50-controls, 51-coverage and the control status wrote that the
    finding read-back needs (:attr:`written`)."""

    apps: dict[str, AppRecord] = field(default_factory=dict)
    of_finding: dict[str, list[str]] = field(default_factory=dict)
    """Finding IRI → its applications (``tg:ofFinding``; only findings with one)."""
    facts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Fact node IRI → (subject IRI, attribute IRI)."""
    control: dict[str, str] = field(default_factory=dict)
    """Application or finding IRI → its ``tg:controlStatus`` IRI (filled by
    :func:`~threatgraph.analysis.techniques.derive_control_status`, the one writer of that predicate)."""
    written: dict[str, dict[str, list[Term]]] | None = None
    """Subject IRI → predicate IRI → objects (distinct, Triple terms left out) of every other quad the stage wrote
    into graph/findings: 31-countermeasures-assets (``tg:countermeasureInference`` and its inference nodes'
    predicates), 50-controls (``tg:implementedMitigation``, ``tg:implementedBy``), 51-coverage (``tg:coveredBy``)
    and the control status's ``tg:mitigatedByFact``; ``tg:countermeasure`` and ``rdf:type`` / ``tg:forTechnique`` of
    the inference nodes are not kept (no reader of the memory asks). Set by
    :func:`~threatgraph.analysis.techniques.run_stage` only when all four ran from memory (the rule findings in
    memory, every step of the shipped stage run here): then :func:`~threatgraph.analysis.findings.findings_of` reads
    nothing of graph/findings (issue 14); None otherwise."""


def _add_new(values: list[str], value: str) -> None:
    if value not in values:
        values.append(value)


Applied = tuple[Node, str, list[str], "list[AppRecord] | None"]
"""The applications of one element through one mapping as 15-reduced-by reads them: the element, its text, the
applications, and their records when kept (then the applications are IRIs, else N-Triples texts)."""
Fact = tuple[Node, Node, Node]
"""A reduction fact of 07-reduction-facts.rq: (element, attribute, subject that has the attribute)."""


class PythonStage:
    """The Python implementations of stage steps on one embedded store, for one run of the stage.

    :data:`STEPS` maps a step's file name (in the shipped ``queries/derive-findings``) to the method that
    implements it; :meth:`handles` tells whether a given file runs here.
    """

    STEPS: ClassVar[dict[str, str]] = {
        "07-reduction-facts.rq": "reduction_facts",
        "10-techniques.rq": "techniques",
        "15-reduced-by.rq": "reduced_by",
        "51-coverage.rq": "coverage",
    }

    MEMORY_STEPS: ClassVar[dict[str, str]] = {
        "31-countermeasures-assets.rq": "countermeasures",
        "50-controls.rq": "controls",
    }
    """Steps that run here only with the rule findings in memory (:attr:`cores`) and the applications in
    :attr:`memory` (what they read of graph/findings is then all in memory: the graph stays deferred)."""

    def __init__(self, store: Store, ox: OxStore, cores: Sequence[FindingCore] | None = None) -> None:
        self.store = store
        self.ox = ox
        self.cores = cores
        """The rule findings (the engine's :class:`~threatgraph.analysis.findings.FindingCore`), when the caller
        has them: then graph/findings holds only them (deferred text) and the rules besides what this stage
        writes, the steps read the findings from here and never load the deferred text (:attr:`ox` is the store
        without it), and what they write into graph/findings is deferred too."""
        self.reduction: set[Fact] | None = None
        """Facts of 07-reduction-facts.rq run here and not (yet) written into graph/stage."""
        self.applied: dict[str, list[Applied]] | None = None
        """What 10-techniques wrote, for 15-reduced-by: mapping text → the applications ``tg:viaMapping`` it, per
        element (:data:`Applied`); kept only when graph/findings had no application before 10 ran and
        until a step runs as SPARQL (then 15 reads the applications from the store)."""
        self.memory: StageMemory | None = None
        """What 10-techniques and 15-reduced-by wrote of the applications (:class:`StageMemory`); None when they
        did not both run here on a finding graph without applications, or wrote a term that is not an IRI."""
        self.on_element: dict[Node, list[str]] = {}
        """Element → IRIs of its applications (``tg:onElement``), as 10-techniques wrote them (with :attr:`cores`)."""
        self.countermeasure: dict[str, set[Node]] = {}
        """Technique IRI → ``tg:countermeasure`` objects 31-countermeasures-assets wrote (run here)."""
        self.implemented: dict[str, set[str]] | None = None
        """Application IRI → values of its ``tg:implementedMitigation`` (50-controls, run here); None: not run here."""
        self.covered: set[str] | None = None
        """IRIs of the findings with a ``tg:coveredBy`` (51-coverage, run here with :attr:`cores`); None: not kept."""
        self.sparql_findings = False
        """Whether a step run as SPARQL wrote into graph/findings (then :attr:`MEMORY_STEPS` run as SPARQL)."""
        self.ran: set[str] = set()
        """File names of the steps run here."""
        self.written: dict[str, dict[str, list[Term]]] = {}
        """What 31-countermeasures-assets, 50-controls and 51-coverage wrote into graph/findings (with :attr:`cores`;
        :attr:`StageMemory.written`)."""

    def _note(self, s: str, p: str, o: Node) -> None:
        """Keep the quad (``s`` ``p`` ``o``) written into graph/findings in :attr:`written` (with :attr:`cores`)."""
        if isinstance(o, Triple):
            return
        props = self.written.get(s)
        if props is None:
            self.written[s] = {p: [o]}
            return
        vals = props.get(p)
        if vals is None:
            props[p] = [o]
        elif o not in vals:
            vals.append(o)

    @classmethod
    def of(cls, store: Store, cores: Sequence[FindingCore] | None = None) -> PythonStage | None:
        """The Python stage of ``store``, or ``None`` when it is not an embedded pyoxigraph store. ``cores``: the
        rule findings in memory (:attr:`cores`; only on a store that defers, ``EmbeddedStore``)."""
        unsettled = getattr(store, "unsettled_oxigraph", None)
        if cores is not None and callable(unsettled) and callable(getattr(store, "defer", None)):
            ox = unsettled()
            return cls(store, ox, cores) if isinstance(ox, OxStore) else None
        ox = getattr(store, "oxigraph", None)
        return cls(store, ox) if isinstance(ox, OxStore) else None

    @classmethod
    def handles(cls, path: Path) -> bool:
        """Whether ``path`` is a shipped stage step with a Python implementation."""
        if path.name not in cls.STEPS:
            return False
        return cls.shipped(path)

    @staticmethod
    def shipped(path: Path) -> bool:
        """Whether ``path`` is a file of the shipped ``queries/derive-findings``."""
        try:
            return path.resolve().parent == (queries_dir() / "derive-findings").resolve()
        except OSError:
            return False

    def takes(self, path: Path) -> bool:
        """Whether the step ``path`` runs here now: a step of :data:`STEPS`, or of :data:`MEMORY_STEPS` when
        what it reads of graph/findings is in memory."""
        if path.name in self.MEMORY_STEPS:
            return (self.cores is not None and self.memory is not None and not self.sparql_findings
                    and self.shipped(path))
        return self.handles(path)

    def run(self, path: Path) -> None:
        """Run the Python implementation of the step ``path`` (one that :meth:`takes`)."""
        step: Callable[[], None] = getattr(self, self.STEPS.get(path.name) or self.MEMORY_STEPS[path.name])
        step()
        self.ran.add(path.name)

    def write_text(self, text: str) -> None:
        """Add the N-Triples ``text`` to graph/findings: deferred with :attr:`cores`, else loaded (lenient)."""
        defer = getattr(self.store, "defer", None)
        if self.cores is not None and callable(defer):
            defer(text, _G_FINDINGS.value)
        else:
            self.ox.load(text, RdfFormat.N_TRIPLES, to_graph=_G_FINDINGS, lenient=True)

    def select(self, query: str) -> list[Row]:
        """A SELECT over graphs that are never deferred (bridge, view, stage): without loading deferred text."""
        if self.cores is not None:
            return self.store.select(query, complete=False)
        return self.store.select(query)

    def solutions(self, query: str, names: Sequence[str]) -> Iterable[Sequence[Node | None]]:
        """The rows of the SELECT ``query`` (as :meth:`select`) as sequences of the values of ``names`` (its
        projection, in order; None where unbound): from the store's solutions when it gives them (no dict per row)."""
        solutions = getattr(self.store, "solutions", None)
        if callable(solutions):
            got: Iterable[Sequence[Node | None]] = (
                solutions(query, complete=False) if self.cores is not None else solutions(query))
            return got
        return [tuple(r.get(name) for name in names) for r in self.select(query)]

    def before_sparql(self, text: str, findings: bool = True) -> None:
        """Before a step runs as SPARQL: write the facts kept in memory that its query reads. ``findings``:
        the step writes into graph/findings (not only into the scratch graph graph/stage)."""
        if findings:
            self.applied = None  # the step may write applications 15-reduced-by must see
            self.sparql_findings = True
        if self.reduction is not None and "stageReductionOf" in text:
            quads: list[Quad] = []
            for e, attr, s in sorted(self.reduction, key=str):
                x = BlankNode()
                quads += [Quad(x, _P["stageReductionOf"], e, _G_STAGE), Quad(x, _P["factAttribute"], attr, _G_STAGE),
                          Quad(x, _P["factSubject"], s, _G_STAGE)]
            self.store.add_quads(quads)
            self.reduction = None

    def _objects(self, predicate: NamedNode, graph: NamedNode) -> Iterable[Quad]:
        return self.ox.quads_for_pattern(None, predicate, None, graph)

    def _add(self, triples: Triples) -> None:
        out = _Out(self)
        for s, p, o in triples:
            out.add(out.key(s), out.key(p), out.key(o))
        out.write()

    # -- 07-reduction-facts.rq ----------------------------------------------------------------------
    def reduction_facts(self) -> None:
        """The model facts that can meet a mapping's ``tg:reducedBy`` attribute for element ``?e``: the
        attribute is true on ``?e`` (subject ``?e``) or on a data flow into ``?e`` (subject: the flow)."""
        attrs = {q.object for q in self._objects(_P["reducedBy"], _G_BRIDGE)}
        facts: set[Fact] = set()
        target = _P["target"]
        for attr in attrs:
            if not isinstance(attr, NamedNode):  # a variable in predicate position binds IRIs only
                continue
            for q in self.ox.quads_for_pattern(None, attr, _TRUE, _G_MODEL):
                s = q.subject
                if not isinstance(s, _RESOURCE):
                    continue
                facts.add((s, attr, s))
                for t in self.ox.quads_for_pattern(s, target, None, _G_MODEL):
                    facts.add((t.object, attr, s))
        self.reduction = facts if self.reduction is None else self.reduction | facts

    def _reduction_facts(self) -> set[Fact]:
        """Facts of 07-reduction-facts.rq: those kept in memory and those in graph/stage."""
        facts = set(self.reduction or ())
        for r in self.select(_REDUCTIONS):
            facts.add((r["e"], r["attr"], r["s"]))
        return facts

    # -- 10-techniques.rq --------------------------------------------------------------------------
    def techniques(self) -> None:
        """Technique applications: per (element, technique), linked to each finding they realise."""
        ox = self.ox
        fresh = next(iter(ox.quads_for_pattern(None, _P["viaMapping"], None, _G_FINDINGS)), None) is None
        applied: dict[str, list[Applied]] = {}
        self.applied = None
        self.memory = None
        mem = StageMemory()
        mem_facts = mem.facts
        mem_apps = mem.apps  # application IRI → its record
        self.on_element = {}
        not_iri: list[str] = []  # terms of the applications that are not IRIs (then no memory is kept)
        iris: dict[str, str] = {}  # N-Triples text of an IRI → the IRI, one string for all its uses

        def iri(text: str) -> str:
            got = iris.get(text)
            if got is None:
                got = iris[text] = text[1:-1]
            return got

        out = _Out(self)
        key = out.key
        # candidate mappings per (category, class)
        by_cat_cls: dict[tuple[str, str], set[tuple[str, bool]]] = {}
        classes: dict[str, Node] = {}
        for m_term, cat_term, cls_term, free in self.solutions(_MAPPINGS, ("m", "cat", "cls", "free")):
            assert m_term is not None and cat_term is not None and cls_term is not None and free is not None
            cls = key(cls_term)
            is_free = isinstance(free, Literal) and free.value == "true"  # (a boolean literal: COALESCE)
            by_cat_cls.setdefault((key(cat_term), cls), set()).add((key(m_term), is_free))
            classes[cls] = cls_term
        if not by_cat_cls:
            return
        # cited techniques per mapping: (technique, release, replaced or "", local id or None when unbound)
        cites: dict[str, list[tuple[str, str, str, str | None]]] = {}
        for m_term, t_term, rel_term, rep_term, local in self.solutions(
                _CITATIONS, ("m", "t", "rel", "replaced", "tid")):
            assert m_term is not None and t_term is not None and rel_term is not None  # (always bound)
            tid = None
            if isinstance(local, Literal) and _iri(f"{_APP}{'0' * 32}/{local.value}") is not None:
                tid = local.value  # IRI(CONCAT(…, ?tid)) is an IRI (its hash part is always hex)
            cites.setdefault(key(m_term), []).append(
                (key(t_term), key(rel_term), "" if rep_term is None else key(rep_term), tid))
        if not cites:
            return
        # exposure conditions of the mappings, and the exposure facts per (element, attribute)
        exposed: dict[str, set[str]] = {}
        for q in self._objects(_P["exposedWhen"], _G_BRIDGE):
            exposed.setdefault(key(q.subject), set()).add(key(q.object))
        facts: dict[tuple[str, str], list[tuple[str, str, str, str, str | None]]] = {}
        if exposed:
            for e_term, attr_term, s_term, via, hops, digest in self.solutions(
                    _EXPOSURES, ("e", "attr", "s", "via", "hops", "xh")):
                assert e_term is not None and attr_term is not None and s_term is not None  # (always bound)
                attr = key(attr_term)
                facts.setdefault((key(e_term), attr), []).append(
                    (attr, key(s_term), "" if via is None else key(via), "" if hops is None else key(hops),
                     None if not isinstance(digest, Literal) else digest.value))
        personal = {key(q.subject) for q in ox.quads_for_pattern(None, _P["stagePersonal"], _TRUE, _G_STAGE)}
        # element types (inferred or asserted) among the mappings' classes
        types: dict[str, set[str]] = {}
        element: dict[str, Node] = {}
        for cls, term in classes.items():
            for g in (_G_INFERRED, _G_MODEL):
                for q in ox.quads_for_pattern(None, _TYPE, term, g):
                    e = key(q.subject)
                    if e not in element:
                        element[e] = q.subject
                        types[e] = set()
                    types[e].add(cls)
        # findings: (finding, focus, category)
        focus: dict[str, list[str]] = {}
        categories: dict[str, list[str]] = {}
        if self.cores is not None:  # in memory: the graph's tg:focus / tg:category of each, distinct
            for core in self.cores:
                e = key(core.focus)
                if e not in types:
                    continue
                f = f"<{core.iri}>"
                es = focus.get(f)
                if es is None:
                    focus[f] = [e]
                    categories[f] = [f"<{c}>" for c in dict.fromkeys(core.categories)]
                else:  # two rules of one id: one finding IRI, the union of what each wrote
                    _add_new(es, e)
                    for cat_iri in core.categories:
                        _add_new(categories[f], f"<{cat_iri}>")
        else:
            findings = {key(q.subject) for q in ox.quads_for_pattern(None, _TYPE, _P["Finding"], _G_FINDINGS)}
            for q in self._objects(_P["focus"], _G_FINDINGS):
                f, e = key(q.subject), key(q.object)
                if f in findings and e in types:
                    focus.setdefault(f, []).append(e)
            for q in self._objects(_P["category"], _G_FINDINGS):
                f = key(q.subject)
                if f in focus:
                    categories.setdefault(f, []).append(key(q.object))

        # candidate (mapping, class, free) rows per (element type set, category): elements share type sets
        signature: dict[frozenset[str], int] = {}
        sig_of: dict[str, int] = {}
        sig_types: list[frozenset[str]] = []
        for e, ts in types.items():
            kind = frozenset(ts)
            i = signature.get(kind)
            if i is None:
                i = signature[kind] = len(sig_types)
                sig_types.append(kind)
            sig_of[e] = i
        candidates: dict[tuple[int, str, bool], list[tuple[str, list[tuple[str, str, str, str]]]]] = {}
        citing = {m for m, cited in cites.items() if cited}
        lines, special, add = out.lines, out.special, out.add
        c = {name: str(_P[name]) for name in (
            "TechniqueApplication", "onElement", "appliedTechnique", "viaMapping", "inRelease", "replacesTechnique",
            "exposure", "ExposureFact", "factSubject", "factAttribute", "factVia", "factHops", "ofFinding",
            "viaAssetType")}
        a_type = str(_TYPE)
        app_cls, on, tech, via_m, in_rel, rep_p, exp_p = (c["TechniqueApplication"], c["onElement"],
            c["appliedTechnique"], c["viaMapping"], c["inRelease"], c["replacesTechnique"], c["exposure"])
        of_finding, via_cls = c["ofFinding"], c["viaAssetType"]
        # exposure fact row → N-Triples text of its node (None: ?x unbound), once its triples are written
        fact_of: dict[tuple[str, str, str, str, str | None], str | None] = {}
        # (element, mapping) → its applications' IRIs and records, once their triples are written (empty: none),
        # and the classes whose tg:viaAssetType triples are written for them
        Applies = tuple[list[str], list[AppRecord], set[str]]
        apps_of: dict[tuple[str, str], Applies] = {}

        def fact(row: tuple[str, str, str, str, str | None]) -> str | None:
            if row in fact_of:
                return fact_of[row]
            attr, s, via, hops, xh = row
            x = None if xh is None or _iri(_FACT + xh) is None else f"<{_FACT}{xh}>"  # MD5 unbound: ?x unbound
            fact_of[row] = x
            if x is not None:
                if s[0] != "<" or attr[0] != "<":
                    not_iri.append(s)
                mem_facts[iri(x)] = (iri(s), iri(attr))
                add(x, a_type, c["ExposureFact"])
                add(x, c["factSubject"], s)
                add(x, c["factAttribute"], attr)
                if via:
                    add(x, c["factVia"], via)
                if hops:
                    add(x, c["factHops"], hops)
            return x

        # per mapping, its cited techniques prepared once: (local id, technique, release, replaced or "", their
        # IRIs, whether all four are IRIs, whether none is a blank node or triple term, the lines' text after
        # the application's tg:onElement triple, each to follow the application's text), with the mapping's
        # exposure attributes (None: none) and whether the mapping is no blank node or triple term
        Cited = tuple[str, str, str, str, str, str, str, str, bool, bool, tuple[str, ...]]
        Prepared = tuple[list[Cited], frozenset[str] | None, bool, list[Applied]]
        prepared: dict[str, Prepared] = {}
        exposed_f = {m: frozenset(attrs) for m, attrs in exposed.items()}

        def prepare(m: str) -> Prepared:
            got: list[Cited] = []
            m_i = iri(m)
            tail = f" {via_m} {m} .\n"
            for t, rel, replaced, tid in cites.get(m, ()):
                if tid is None:
                    continue
                is_iri = t[0] == "<" and m[0] == "<" and rel[0] == "<" and (not replaced or replaced[0] == "<")
                plain = t not in special and rel not in special and replaced not in special
                segments: tuple[str, ...] = (f" {tech} {t} .\n", tail, f" {in_rel} {rel} .\n")
                if replaced:
                    segments += (f" {rep_p} {replaced} .\n",)
                got.append((tid, t, rel, replaced, iri(t), m_i, iri(rel), iri(replaced) if replaced else "",
                            is_iri, plain, segments))
            groups: list[Applied] = []  # (what 15-reduced-by reads: the applications through m per element)
            if fresh:
                applied[m] = groups
            prep = prepared[m] = (got, exposed_f.get(m), m not in special, groups)
            return prep

        no_apps: Applies = ([], [], set())
        # (element, exposure attributes of a mapping) → (distinct IRIs of its exposure fact nodes, each one's line
        # after the application's text); no_exposure: no fact (the FILTER on exposure drops the rows)
        exposures: dict[tuple[str, frozenset[str]], tuple[list[str], list[str]]] = {}
        no_exposure: tuple[list[str], list[str]] = ([], [])
        no_exposure_text: tuple[list[str], list[str]] = ([], [])
        # element → (its node, the prefix of its applications' IRIs (None: MD5 of STR unbound), the text of an
        # application's tg:onElement triple after the application, whether it is no blank node or triple term)
        ElementInfo = tuple[Node, str | None, str, bool, list[str]]
        element_info: dict[str, ElementInfo] = {}
        head = f" {a_type} {app_cls} .\n"

        def info_of(e: str) -> ElementInfo:
            node = element[e]
            se = _str(node)
            got = element_info[e] = (node, None if se is None else f"{_APP}{_md5(se)}/", f" {on} {e} .\n",
                                     e not in special, [])
            return got

        def exposure_of(e: str, attrs: frozenset[str]) -> tuple[list[str], list[str]]:
            rows = [row for a in attrs for row in facts.get((e, a), ())]
            if not rows:
                return no_exposure
            xs = [x for x in map(fact, rows) if x is not None]
            return list(dict.fromkeys([iri(x) for x in xs])), [f" {exp_p} {x} .\n" for x in xs]

        def apply(e: str, m: str) -> Applies:
            """Write the triples of the rows of (e, m) but those of ?f and ?cls (``tg:ofFinding``,
            ``tg:viaAssetType``); return the applications' IRIs and records (empty when the FILTER on exposure
            drops every row)."""
            prep = prepared.get(m)
            if prep is None:
                if not cites.get(m):
                    return no_apps
                prep = prepare(m)
            cited, attrs, plain_m, groups = prep
            if attrs is not None:
                found = exposures.get((e, attrs))
                if found is None:
                    found = exposures[(e, attrs)] = exposure_of(e, attrs)
                if found is no_exposure:
                    return no_apps  # FILTER (BOUND(?s) || NOT EXISTS { ?m tg:exposedWhen ?anyAttr })
                xs_iris, exposure = found
            else:
                xs_iris, exposure = no_exposure_text
            info = element_info.get(e)
            if info is None:
                info = info_of(e)
            node, prefix, middle, plain_e, on_e = info
            if prefix is None:
                return no_apps  # ?app unbound: no application triples (the fact triples above stay)
            plain_em = plain_e and plain_m
            apps: list[str] = []
            recs: list[AppRecord] = []
            for tid, t, rel, replaced, t_i, m_i, rel_i, rep_i, is_iri, plain, segments in cited:
                app_i = prefix + tid
                app = f"<{app_i}>"
                rec = mem_apps.get(app_i)
                if rec is None:
                    rec = mem_apps[app_i] = AppRecord([t_i], [m_i], [rel_i], [rep_i] if replaced else [], set(),
                                                      list(xs_iris))
                else:
                    _add_new(rec.technique, t_i)
                    _add_new(rec.mapping, m_i)
                    _add_new(rec.release, rel_i)
                    if replaced:
                        _add_new(rec.replaces, rep_i)
                    for x in xs_iris:
                        _add_new(rec.exposures, x)
                apps.append(app_i)
                recs.append(rec)
                if not is_iri:
                    not_iri.append(app)
                if plain_em and plain:
                    if exposure:
                        lines.append(f"{app}{head}{app}{middle}{app}{app.join(segments)}{app}{app.join(exposure)}")
                        continue
                    lines.append(f"{app}{head}{app}{middle}{app}{app.join(segments)}")
                else:
                    add(app, a_type, app_cls)
                    add(app, on, e)
                    add(app, tech, t)
                    add(app, via_m, m)
                    add(app, in_rel, rel)
                    if replaced:
                        add(app, rep_p, replaced)
                if exposure:
                    lines.append(app + app.join(exposure))
            if not apps:
                return no_apps
            if fresh:
                groups.append((node, e, apps, recs))
            on_e.extend(apps)
            return (apps, recs, set())

        # class → (its text, IRI, the text of a tg:viaAssetType triple after the application's IRI and that text
        # followed by the next application's "<"; both empty for a blank node or triple term)
        AssetClass = tuple[str, str, str, str]
        asset_classes: dict[str, AssetClass] = {}

        def class_of(cls: str) -> AssetClass:
            got = asset_classes.get(cls)
            if got is None:
                suffix = "" if cls in special else f"> {via_cls} {cls} .\n"
                got = asset_classes[cls] = (cls, iri(cls), suffix, suffix + "<" if suffix else "")
            return got

        def link(e: str, cat: str) -> list[str]:
            """The applications realising ``cat`` on ``e`` (writing their triples, and the tg:viaAssetType ones,
            the first time)."""
            sig = sig_of[e]
            e_personal = e in personal
            rows = candidates.get((sig, cat, e_personal))
            if rows is None:  # per mapping, its classes (a mapping that cites no technique has no row: left out)
                grouped: dict[str, list[str]] = {}
                for cls in sig_types[sig]:
                    for m, free in by_cat_cls.get((cat, cls), ()):
                        if (free or e_personal) and m in citing:
                            grouped.setdefault(m, []).append(cls)
                rows = candidates[(sig, cat, e_personal)] = [(m, [class_of(cls) for cls in clss])
                                                             for m, clss in grouped.items()]
            first: list[str] | None = None  # the applications of the first mapping that has some (distinct)
            found: set[str] | None = None  # with those of another mapping: all of them (distinct)
            for m, clss in rows:
                got = apps_of.get((e, m))
                if got is None:
                    got = apps_of[(e, m)] = apply(e, m)
                apps = got[0]
                if not apps:
                    continue
                if first is None:
                    first = apps
                elif found is None:
                    found = set(first)
                    found.update(apps)
                else:
                    found.update(apps)
                done = got[2]
                for cls, cls_i, suffix, separator in clss:
                    if cls in done:
                        continue
                    done.add(cls)
                    if cls[0] != "<":
                        not_iri.append(cls)
                    if not suffix:
                        for app in apps:
                            add(f"<{app}>", via_cls, cls)
                    else:
                        lines.append("<" + separator.join(apps) + suffix)
                    for rec in got[1]:
                        rec.asset_types.add(cls_i)
            return list(found) if found is not None else first if first is not None else []

        chunk = out.CHUNK // 4  # (lines of several triples)
        # (element, category) → the applications its findings of that category are linked to, once their
        # tg:viaAssetType triples are written (findings share them: different rules, one element and category)
        linked_of: dict[tuple[str, str], list[str]] = {}
        for f, cats in categories.items():
            es = focus[f]
            linked: list[str] | set[str]
            if len(es) == 1 and len(cats) == 1:  # (most findings: one focus, one category; distinct already)
                k = (es[0], cats[0])
                one = linked_of.get(k)
                if one is None:
                    one = linked_of[k] = link(*k)
                linked = one
            else:
                linked = set()
                for e in es:
                    for cat in cats:
                        got = linked_of.get((e, cat))
                        if got is None:
                            got = linked_of[(e, cat)] = link(e, cat)
                        linked.update(got)
            if linked:
                if f[0] != "<":
                    not_iri.append(f)
                mem.of_finding[f[1:-1]] = list(linked)
                if f not in special:
                    suffix = f"> {of_finding} {f} .\n"
                    lines.append("<" + (suffix + "<").join(linked) + suffix)
                else:
                    for app in linked:
                        add(f"<{app}>", of_finding, f)
            if len(lines) > chunk:
                out.flush()
        out.write()
        if self.cores is not None:
            self.on_element = {info[0]: info[4] for info in element_info.values() if info[4]}
        self.applied = applied if fresh else None
        if fresh and not not_iri:
            self.memory = mem

    # -- 15-reduced-by.rq --------------------------------------------------------------------------
    def _applications(self, m: Node, key: Callable[[Node], str]) -> Iterable[Applied]:
        """The applications ``tg:viaMapping m`` in graph/findings per element (:data:`Applied`): as 10-techniques run
        here wrote them (:attr:`applied`; IRIs), else read from the store (texts by ``key``)."""
        if self.applied is not None:
            return self.applied.get(key(m), [])
        ox = self.ox
        groups: dict[str, Applied] = {}
        for q in ox.quads_for_pattern(None, _P["viaMapping"], m, _G_FINDINGS):
            app = key(q.subject)
            for qe in ox.quads_for_pattern(q.subject, _P["onElement"], None, _G_FINDINGS):
                e_text = key(qe.object)
                got = groups.get(e_text)
                if got is None:
                    got = groups[e_text] = (qe.object, e_text, [], None)
                got[2].append(app)
        return list(groups.values())

    def reduced_by(self) -> None:
        """Reducing facts of the applications whose mapping names a ``tg:reducedBy`` attribute."""
        mem = self.memory if self.applied is not None else None
        self.memory = mem
        reducing: dict[Node, set[Node]] = {}
        for q in self._objects(_P["reducedBy"], _G_BRIDGE):
            reducing.setdefault(q.subject, set()).add(q.object)
        if not reducing:
            return
        out = _Out(self)
        key, lines, special = out.key, out.lines, out.special
        # (element, attribute) → the subjects that have it (texts as keys: a term's hash is not cached)
        subjects: dict[tuple[str, str], list[Node]] = {}
        attr_of: dict[str, Node] = {}  # text → attribute
        for e, attr, s in self._reduction_facts():
            a_text = key(attr)
            attr_of[a_text] = attr
            subjects.setdefault((key(e), a_text), []).append(s)
        if not subjects:
            return
        a_type, fact_cls, by_p = str(_TYPE), str(_P["ExposureFact"]), str(_P["reducedByFact"])
        subj_p, attr_p = str(_P["factSubject"]), str(_P["factAttribute"])
        # (element, attribute) → texts of the fact nodes, once their triples are written
        nodes: dict[tuple[str, str], list[str]] = {}

        def facts_of(k: tuple[str, str]) -> list[str]:
            xs: list[str] = []
            got = subjects.get(k)
            if got is None:
                return xs
            attr_text = k[1]
            sa = _str(attr_of[attr_text])
            for s in got:
                ss = _str(s)
                if ss is None or sa is None:
                    continue  # STR of a blank node: ?x unbound
                x = f"<{_FACT_R}{_md5(f'{ss} {sa}')}>"
                xs.append(x)
                if mem is not None:
                    mem.facts[x[1:-1]] = (ss, sa)
                out.add(x, a_type, fact_cls)
                out.add(x, subj_p, key(s))
                out.add(x, attr_p, attr_text)
            return xs

        with_facts: dict[str, set[str]] = {}  # element → the attributes it has facts for
        for e_text, attr_text in subjects:
            with_facts.setdefault(e_text, set()).add(attr_text)
        # (element text, attributes of a mapping) → the element's facts for them, in their order: texts, distinct
        # IRIs, lines' text after the application (mappings with the same attributes share them)
        of_element: dict[tuple[str, int], tuple[list[str], list[str], list[str]]] = {}
        attr_ids: dict[tuple[str, ...], int] = {}  # (the attributes of a mapping, by a number)
        for m, attr_set in reducing.items():
            attrs = tuple(map(key, attr_set))  # (in the set's order, as the facts are listed)
            attrs_id = attr_ids.setdefault(attrs, len(attr_ids))
            # (one group per element: its applications through m share the element's facts for the attributes of m)
            for _e, e_text, group, recs in self._applications(m, key):
                if not group:
                    continue
                has = with_facts.get(e_text)
                if has is None or has.isdisjoint(attrs):
                    continue  # (no fact of the element for the attributes of m)
                got = of_element.get((e_text, attrs_id))
                if got is None:
                    xs: list[str] = []
                    for attr_text in attrs:
                        if attr_text not in has:
                            continue  # (no fact)
                        k = (e_text, attr_text)
                        found = nodes.get(k)
                        if found is None:
                            found = nodes[k] = facts_of(k)
                        xs.extend(found)
                    got = of_element[(e_text, attrs_id)] = (
                        xs, list(dict.fromkeys([x[1:-1] for x in xs])), [f" {by_p} {x} .\n" for x in xs])
                xs, xs_i, suffixes = got
                if not xs:
                    continue
                if recs is None:  # (read from the store: texts)
                    for app in group:
                        if mem is not None:
                            rec = mem.apps.get(app[1:-1])
                            if rec is not None:
                                if rec.reduced:
                                    for x in xs_i:
                                        _add_new(rec.reduced, x)
                                else:
                                    rec.reduced.extend(xs_i)
                        if app not in special:
                            lines.append(app + app.join(suffixes))
                        else:
                            for x in xs:
                                out.add(app, by_p, x)
                    continue
                if mem is not None:
                    for rec in recs:
                        if rec.reduced:
                            for x in xs_i:
                                _add_new(rec.reduced, x)
                        else:
                            rec.reduced.extend(xs_i)
                if len(suffixes) == 1:
                    suffix = ">" + suffixes[0]
                    lines.append("<" + (suffix + "<").join(group) + suffix)
                else:
                    for app_i in group:
                        app = f"<{app_i}>"
                        lines.append(app + app.join(suffixes))
        out.write()

    # -- 51-coverage.rq ----------------------------------------------------------------------------
    def coverage(self) -> None:
        """Findings covered by a control of their element (or of a guardrail it uses) for their category."""
        ox = self.ox
        covers: dict[Node, set[Node]] = {}
        for q in self._objects(_P["coversCategory"], _G_MODEL):
            covers.setdefault(q.subject, set()).add(q.object)
        out: Triples = set()
        p = _P
        by_focus: dict[Node, list[tuple[NamedNode, list[NamedNode]]]] | None = None
        if self.cores is not None and covers:  # the findings in memory: focus → (finding, categories)
            by_focus = {}
            for core in self.cores:
                by_focus.setdefault(core.focus, []).append(
                    (NamedNode(core.iri), [NamedNode(c) for c in core.categories]))
        for ctl, cats in covers.items():
            holders = {q.subject for q in ox.quads_for_pattern(None, p["hasControl"], ctl, _G_MODEL)}
            for g in list(holders):
                holders.update(q.subject for q in ox.quads_for_pattern(None, _USES_GUARDRAIL, g, _G_MODEL))
            # (the first set also holds the guardrails themselves: they have the control)
            for e in holders:
                if by_focus is not None:
                    for fn, f_cats in by_focus.get(e, ()):
                        if any(c in cats for c in f_cats):
                            out.add((fn, p["coveredBy"], ctl))
                    continue
                for q in ox.quads_for_pattern(None, p["focus"], e, _G_FINDINGS):
                    f = q.subject
                    if not isinstance(f, _RESOURCE):
                        continue
                    if Quad(f, _TYPE, p["Finding"], _G_FINDINGS) not in ox:
                        continue
                    if any(Quad(f, p["category"], c, _G_FINDINGS) in ox for c in cats):
                        out.add((f, p["coveredBy"], ctl))
        if self.cores is not None:
            self.covered = {f.value for f, _p, _c in out if isinstance(f, NamedNode)}
            covered_by = _P["coveredBy"].value
            for f, _p, ctl in out:
                if isinstance(f, NamedNode):
                    self._note(f.value, covered_by, ctl)
        self._add(out)

    # -- 31-countermeasures-assets.rq (with the findings in memory) ----------------------------------
    def countermeasures(self) -> None:
        """D3FEND countermeasures through ML asset types for the applied techniques (of :attr:`memory`) that
        the knowledge view marks ``tg:countermeasuresByAssetType``, each with the inference that found it."""
        mem = self.memory
        assert mem is not None  # (takes)
        ox, p = self.ox, _P
        self.countermeasure = {}
        marked = {q.subject for q in ox.quads_for_pattern(None, p["countermeasuresByAssetType"], _TRUE, _G_VIEW)}
        if not marked:
            return
        pairs: set[tuple[str, str]] = set()  # SELECT DISTINCT ?t ?cls over the applications
        is_marked: dict[str, bool] = {}  # technique IRI → marked (one NamedNode per technique, not per application)
        for rec in mem.apps.values():
            for t in rec.technique:
                got = is_marked.get(t)
                if got is None:
                    got = is_marked[t] = NamedNode(t) in marked
                if got:
                    for cls in rec.asset_types:
                        pairs.add((t, cls))
        if not pairs:
            return

        def values(y: Node, name: str) -> list[Node]:
            if isinstance(y, Literal):
                return []
            return [q.object for q in ox.quads_for_pattern(y, p[name], None, _G_VIEW)]

        candidates: dict[str, list[tuple[Node, Node, Node, Node]]] = {}  # class → (?c, ?a, ?dp, ?b) rows
        for cls in {cls for _t, cls in pairs}:
            rows: list[tuple[Node, Node, Node, Node]] = []
            candidates[cls] = rows
            for q in ox.quads_for_pattern(None, p["forAssetType"], NamedNode(cls), _G_VIEW):
                y = q.subject
                rows.extend((c, a, dp, b) for c in values(y, "countermeasureTechnique")
                            for a in values(y, "offensiveArtifact") for dp in values(y, "defensiveRelation")
                            for b in values(y, "defendedArtifact"))
        rows_of: dict[str, set[tuple[Node, Node, Node, Node]]] = {}  # technique → rows of its classes, distinct
        for t, cls in pairs:
            rows_of.setdefault(t, set()).update(candidates[cls])
        out = _Out(self)
        lines, special, add = out.lines, out.special, out.add
        texts: dict[Node, str] = {}

        def text(term: Node) -> str:
            got = texts.get(term)
            if got is None:
                got = texts[term] = out.key(term)
            return got

        c = {name: str(p[name]) for name in (
            "countermeasure", "countermeasureInference", "CountermeasureInference", "forTechnique",
            "countermeasureTechnique", "offensiveRelation", "offensiveArtifact", "defensiveRelation",
            "defendedArtifact", "targetsAsset")}
        a_type = str(_TYPE)
        rel = p["targetsAsset"]
        rel_s = rel.value
        note = self._note
        inf_p, cm_p, off_p, art_p, def_p, dart_p = (p[name].value for name in (
            "countermeasureInference", "countermeasureTechnique", "offensiveRelation", "offensiveArtifact",
            "defensiveRelation", "defendedArtifact"))
        written = self.written
        # per distinct row (shared by the techniques of its classes): its texts, its STR parts for the inference
        # IRI, whether a term is special, the inference node's lines after its rdf:type and tg:forTechnique
        # lines (joined by the node's text) and its noted (predicate, object) pairs; None: STR of a blank node
        Prepared = tuple[str, str, bool, list[str], list[tuple[str, Term]]]
        prepared: dict[tuple[Node, Node, Node, Node], Prepared | None] = {}
        missing: Prepared = ("", "", False, [], [])  # (not prepared yet)
        for t, found in rows_of.items():
            tt = f"<{t}>"
            head = f" {a_type} {c['CountermeasureInference']} .\n"
            cms = self.countermeasure.setdefault(t, set())
            # t's tg:countermeasureInference values in written, created when note would create them (then kept
            # distinct by their IRIs, not by a scan of the list per row); None and fallback: by note
            t_vals: list[Term] | None = None
            t_seen: set[str] = set()
            fallback = False
            for row in found:
                cm, a, dp, b = row
                ct = text(cm)
                if cm not in cms:
                    cms.add(cm)
                    add(tt, c["countermeasure"], ct)
                prep = prepared.get(row, missing)
                if prep is missing:
                    parts = [_str(term) for term in row]
                    if any(part is None for part in parts):
                        prep = None
                    else:
                        sc, sa, sdp, sb = parts
                        at, dpt, bt = text(a), text(dp), text(b)
                        odd = ct in special or at in special or dpt in special or bt in special
                        segs = ["", f" {c['countermeasureTechnique']} {ct} .\n",
                                f" {c['offensiveRelation']} {c['targetsAsset']} .\n", f" {c['offensiveArtifact']} {at} .\n",
                                f" {c['defensiveRelation']} {dpt} .\n", f" {c['defendedArtifact']} {bt} .\n"]
                        noted: list[tuple[str, Term]] = []  # (what note keeps: no triple term)
                        for x_p, x_o in ((cm_p, cm), (off_p, rel), (art_p, a), (def_p, dp), (dart_p, b)):
                            if not isinstance(x_o, Triple):
                                noted.append((x_p, x_o))
                        prep = (f" {sc} {rel_s} {sa} {sdp} {sb}", ct, odd, segs, noted)
                    prepared[row] = prep
                if prep is None:
                    continue  # STR of a blank node: ?x unbound
                md5_tail, ct, odd, segs, noted = prep
                x_i = f"{_D3FEND}{_md5(f'{t}{md5_tail}')}"  # (hex: always an IRI)
                x = f"<{x_i}>"
                if t_vals is None and not fallback:
                    props = written.get(t)
                    if props is None:
                        t_vals = []
                        written[t] = {inf_p: t_vals}
                    elif inf_p not in props:
                        t_vals = props[inf_p] = []
                    else:
                        fallback = True
                if t_vals is not None:
                    if x_i not in t_seen:
                        t_seen.add(x_i)
                        t_vals.append(NamedNode(x_i))
                else:
                    note(t, inf_p, NamedNode(x_i))
                if x_i in written or not noted:
                    for x_p, x_o in noted:
                        note(x_i, x_p, x_o)
                else:
                    written[x_i] = {x_p: [x_o] for x_p, x_o in noted}
                if odd:
                    at, dpt, bt = text(a), text(dp), text(b)
                    for pred, obj in (("countermeasureTechnique", ct), ("offensiveArtifact", at),
                                      ("defensiveRelation", dpt), ("defendedArtifact", bt)):
                        add(x, c[pred], obj)
                    lines.append(f"{tt} {c['countermeasureInference']} {x} .\n{x}{head}"
                                 f"{x} {c['forTechnique']} {tt} .\n{x} {c['offensiveRelation']} {c['targetsAsset']} .\n")
                    continue
                lines.append(f"{tt} {c['countermeasureInference']} {x} .\n{x}{head}{x} {c['forTechnique']} {tt} .\n"
                             + x.join(segs))
        out.write()

    # -- 50-controls.rq (with the findings in memory) -----------------------------------------------
    def controls(self) -> None:
        """Declared controls of an application's element (or of a guardrail it uses) that implement an
        applicable mitigation or countermeasure of its technique (the view's, or 31's)."""
        mem = self.memory
        assert mem is not None  # (takes)
        ox, p = self.ox, _P
        implemented: dict[str, set[str]] = {}
        self.implemented = implemented
        mitigations: dict[Node, list[Node]] = {}  # control → what it implements
        for q in self._objects(p["implementsMitigation"], _G_MODEL):
            mitigations.setdefault(q.subject, []).append(q.object)
        if not mitigations:
            return
        # element → its controls (tg:hasControl, or of a guardrail it uses), those that implement something
        controls: dict[Node, set[Node]] = {}
        for ctl in mitigations:
            if isinstance(ctl, Literal):
                continue
            for q in ox.quads_for_pattern(None, p["hasControl"], ctl, _G_MODEL):
                controls.setdefault(q.subject, set()).add(ctl)
                for qg in ox.quads_for_pattern(None, _USES_GUARDRAIL, q.subject, _G_MODEL):
                    controls.setdefault(qg.subject, set()).add(ctl)
        out: Triples = set()
        applicable: dict[str, set[Node]] = {}  # technique → mitigations and countermeasures

        def of(t: str) -> set[Node]:
            got = applicable.get(t)
            if got is None:
                tn = NamedNode(t)
                got = applicable[t] = {q.object for name in ("applicableMitigation", "countermeasure")
                                       for q in ox.quads_for_pattern(tn, p[name], None, _G_VIEW)}
                got |= self.countermeasure.get(t, set())
            return got

        note, impl_p, by_p = self._note, p["implementedMitigation"].value, p["implementedBy"].value
        for e, ctls in controls.items():
            for app in dict.fromkeys(self.on_element.get(e, ())):
                rec = mem.apps[app]
                app_node = NamedNode(app)
                for t in rec.technique:
                    mits = of(t)
                    for ctl in ctls:
                        for mit in mitigations[ctl]:
                            if mit in mits:
                                out.add((app_node, p["implementedMitigation"], mit))
                                out.add((app_node, p["implementedBy"], ctl))
                                if not isinstance(mit, Triple):
                                    implemented.setdefault(app_node.value, set()).add(mit.value)
                                note(app, impl_p, mit)
                                note(app, by_p, ctl)
        self._add(out)
