"""Python implementations of the heaviest steps of the technique stage (issue 14, speed).

:func:`threatgraph.analysis.techniques.run_stage` runs the SPARQL updates of ``queries/derive-findings/*.rq``;
on the embedded (pyoxigraph) store the steps named in :data:`PythonStage.STEPS` run here instead, over the
same store: the triples they need are read from the store's indexes (``quads_for_pattern``) or by a few
small SELECTs (tables of the bridge mappings and the knowledge view, a few hundred to a few thousand rows),
joined in dictionaries and sets, and the resulting quads added in bulk. Each implementation writes exactly
the quads of its ``.rq`` file (same IRIs, literals and graphs; tests/test_techniques_python.py compares the
whole finding graph both ways); the ``.rq`` files stay the specification and still run on other stores
(remote SPARQL endpoints) and with ``run_stage(..., python=False)``.

Intermediate tables: 07-reduction-facts.rq writes blank-node facts into the scratch graph ``graph/stage``
for 15-reduced-by.rq. Run here, its facts are kept in memory (:attr:`PythonStage.reduction`) and only
written into ``graph/stage`` when a step run as SPARQL reads them (:meth:`PythonStage.before_sparql`).

Where a ``.rq`` expression could fail on unusual terms (``STR`` or ``MD5`` of a blank node), the SPARQL
semantics are kept: the variable stays unbound and the template triples that use it are not written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar, TypeAlias

from pyoxigraph import BlankNode, Literal, NamedNode, Quad, RdfFormat, Triple
from pyoxigraph import Store as OxStore

from threatgraph.resources import queries_dir
from threatgraph.store.base import Store
from threatgraph.terms import FINDING, RDF, TG, TGML, graph_iri

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
    "coversCategory", "hasControl", "coveredBy",
)}
_USES_GUARDRAIL = _n(TGML.usesGuardrail)
_APP = f"{FINDING}app/"
_FACT = f"{FINDING}fact/"
_FACT_R = f"{FINDING}fact/r/"

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


def _str(term: Node) -> str | None:
    """SPARQL ``STR``: the IRI or the lexical form; ``None`` (an error) for a blank node or a triple."""
    return term.value if isinstance(term, NamedNode | Literal) else None


def _iri(text: str) -> NamedNode | None:
    """SPARQL ``IRI`` of a string: ``None`` (an error) when it is not a valid IRI."""
    try:
        return NamedNode(text)
    except ValueError:
        return None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


class _Out:
    """Triples to add to graph/findings, deduplicated: as N-Triples lines (parsed by the store, a third faster
    than building ``Quad`` objects for ``bulk_extend``), or as terms when a blank node or a triple term is
    among them (a blank node read from the store must stay that node)."""

    def __init__(self) -> None:
        self.lines: set[str] = set()
        self.terms: set[tuple[Subject, NamedNode, Node]] = set()
        self.text: dict[Node, str | None] = {}

    def nt(self, term: Node) -> str | None:
        """The N-Triples form of an IRI or a literal (cached); ``None`` for a blank node or a triple term."""
        text = self.text.get(term, "")
        if text == "":
            text = self.text[term] = str(term) if isinstance(term, NamedNode | Literal) else None
        return text

    def add(self, s: Subject, p: NamedNode, o: Node) -> None:
        ss, ps, os_ = self.nt(s), self.nt(p), self.nt(o)
        if ss is None or ps is None or os_ is None:
            self.terms.add((s, p, o))
        else:
            self.lines.add(f"{ss} {ps} {os_} .\n")

    def write(self, stage: PythonStage) -> None:
        if self.lines:
            data = "".join(self.lines).encode("utf-8")
            stage.ox.load(data, RdfFormat.N_TRIPLES, to_graph=_G_FINDINGS, lenient=True)
        if self.terms:
            stage.store.add_quads([Quad(s, p, o, _G_FINDINGS) for s, p, o in self.terms])
        self.lines.clear()
        self.terms.clear()


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

    def __init__(self, store: Store, ox: OxStore) -> None:
        self.store = store
        self.ox = ox
        self.reduction: set[Fact] | None = None
        """Facts of 07-reduction-facts.rq run here and not (yet) written into graph/stage."""

    @classmethod
    def of(cls, store: Store) -> PythonStage | None:
        """The Python stage of ``store``, or ``None`` when it is not an embedded pyoxigraph store."""
        ox = getattr(store, "oxigraph", None)
        return cls(store, ox) if isinstance(ox, OxStore) else None

    @classmethod
    def handles(cls, path: Path) -> bool:
        """Whether ``path`` is a shipped stage step with a Python implementation."""
        if path.name not in cls.STEPS:
            return False
        try:
            return path.resolve().parent == (queries_dir() / "derive-findings").resolve()
        except OSError:
            return False

    def run(self, path: Path) -> None:
        """Run the Python implementation of the step ``path`` (one that :meth:`handles`)."""
        step: Callable[[], None] = getattr(self, self.STEPS[path.name])
        step()

    def before_sparql(self, text: str) -> None:
        """Before a step runs as SPARQL: write the facts kept in memory that its query reads."""
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
        out = _Out()
        for s, p, o in triples:
            out.add(s, p, o)
        out.write(self)

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
                if not isinstance(s, NamedNode | BlankNode):
                    continue
                facts.add((s, attr, s))
                for t in self.ox.quads_for_pattern(s, target, None, _G_MODEL):
                    facts.add((t.object, attr, s))
        self.reduction = facts if self.reduction is None else self.reduction | facts

    def _reduction_facts(self) -> set[Fact]:
        """Facts of 07-reduction-facts.rq: those kept in memory and those in graph/stage."""
        facts = set(self.reduction or ())
        for r in self.store.select(_REDUCTIONS):
            facts.add((r["e"], r["attr"], r["s"]))
        return facts

    # -- 10-techniques.rq --------------------------------------------------------------------------
    def techniques(self) -> None:
        """Technique applications: per (element, technique), linked to each finding they realise."""
        ox = self.ox
        # candidate mappings per (category, class)
        by_cat_cls: dict[tuple[Node, Node], set[tuple[Node, bool]]] = {}
        classes: set[Node] = set()
        for r in self.store.select(_MAPPINGS):
            free = r["free"].value == "true"
            by_cat_cls.setdefault((r["cat"], r["cls"]), set()).add((r["m"], free))
            classes.add(r["cls"])
        if not by_cat_cls:
            return
        # cited techniques per mapping (the local id is bound when STR(?t) is)
        cites: dict[Node, list[tuple[Node, Node, Node | None, str | None]]] = {}
        for r in self.store.select(_CITATIONS):
            local = r.get("tid")
            cites.setdefault(r["m"], []).append((r["t"], r["rel"], r.get("replaced"), local.value if local else None))
        if not cites:
            return
        # exposure conditions of the mappings, and the exposure facts per (element, attribute)
        exposed: dict[Node, set[Node]] = {}
        for q in self._objects(_P["exposedWhen"], _G_BRIDGE):
            exposed.setdefault(q.subject, set()).add(q.object)
        facts: dict[tuple[Node, Node], list[tuple[Node, Node | None, Node | None, str | None]]] = {}
        if exposed:
            for r in self.store.select(_EXPOSURES):
                digest = r.get("xh")
                facts.setdefault((r["e"], r["attr"]), []).append(
                    (r["s"], r.get("via"), r.get("hops"), digest.value if digest else None))
        personal = {q.subject for q in ox.quads_for_pattern(None, _P["stagePersonal"], _TRUE, _G_STAGE)}
        # element types (inferred or asserted) among the mappings' classes
        types: dict[Node, set[Node]] = {}
        for cls in classes:
            for g in (_G_INFERRED, _G_MODEL):
                for q in ox.quads_for_pattern(None, _TYPE, cls, g):
                    types.setdefault(q.subject, set()).add(cls)
        # findings: (finding, focus, category)
        findings = {q.subject for q in ox.quads_for_pattern(None, _TYPE, _P["Finding"], _G_FINDINGS)}
        focus: dict[Node, list[Node]] = {}
        for q in self._objects(_P["focus"], _G_FINDINGS):
            if q.subject in findings and q.object in types:
                focus.setdefault(q.subject, []).append(q.object)

        # candidate (mapping, class, free) rows per (element type set, category): elements share type sets
        signature: dict[frozenset[Node], int] = {}
        sig_of: dict[Node, int] = {}
        sig_types: list[frozenset[Node]] = []
        for e, ts in types.items():
            kind = frozenset(ts)
            i = signature.get(kind)
            if i is None:
                i = signature[kind] = len(sig_types)
                sig_types.append(kind)
            sig_of[e] = i
        candidates: dict[tuple[int, Node], list[tuple[Node, Node, bool]]] = {}
        out = _Out()
        nt = out.nt
        lines = out.lines
        p = _P
        of_finding, via_cls = p["ofFinding"], p["viaAssetType"]
        of_s = str(of_finding)
        # (element, mapping) → its applications (IRI and its N-Triples form), once their triples are written
        # (empty: none); (element, mapping, class) rows whose tg:viaAssetType triple is written
        apps_of: dict[tuple[Node, Node], list[tuple[NamedNode, str]]] = {}
        done: set[tuple[Node, Node, Node]] = set()

        fact_of: dict[tuple[Node, Node, Node | None, Node | None, str | None], str | None] = {}
        # exposure fact row -> N-Triples form of its node (None: ?x unbound), once its triples are written
        consts = {name: str(p[name]) for name in ("TechniqueApplication", "onElement", "appliedTechnique",
                                                  "viaMapping", "inRelease", "replacesTechnique", "exposure")}
        a_type, a_cls, a_on, a_tech = str(_TYPE), consts["TechniqueApplication"], consts["onElement"], consts["appliedTechnique"]
        a_map, a_rel, a_rep, a_exp = consts["viaMapping"], consts["inRelease"], consts["replacesTechnique"], consts["exposure"]

        def fact(row: tuple[Node, Node, Node | None, Node | None, str | None]) -> str | None:
            """Write the triples of an exposure fact row (attribute, subject, via, hops, hash) once; return
            the N-Triples form of its node (``None``: ?x unbound)."""
            if row in fact_of:
                return fact_of[row]
            attr, s, via, hops, xh = row
            x = None if xh is None else _iri(_FACT + xh)  # MD5 of an unbound CONCAT: ?x unbound
            fact_of[row] = None if x is None else str(x)
            if x is not None:
                out.add(x, _TYPE, p["ExposureFact"])
                out.add(x, p["factSubject"], s)
                out.add(x, p["factAttribute"], attr)
                if via is not None:
                    out.add(x, p["factVia"], via)
                if hops is not None:
                    out.add(x, p["factHops"], hops)
            return fact_of[row]

        def apply(e: Node, m: Node) -> list[tuple[NamedNode, str]]:
            """Write the triples of the rows of (e, m) but those of ?f and ?cls (``tg:ofFinding``,
            ``tg:viaAssetType``); return the applications (empty when the FILTER on exposure drops every row)."""
            cited = cites.get(m)
            if not cited:
                return []
            attrs = exposed.get(m)
            xs: list[str] = []
            if attrs is not None:
                rows = [(a, s, via, hops, xh) for a in attrs for s, via, hops, xh in facts.get((e, a), ())]
                if not rows:
                    return []  # FILTER (BOUND(?s) || NOT EXISTS { ?m tg:exposedWhen ?anyAttr })
                for row in rows:
                    x_s = fact(row)
                    if x_s is not None:
                        xs.append(x_s)
            se = _str(e)
            eh = None if se is None else _md5(se)
            e_s, m_s = nt(e), nt(m)
            apps: list[tuple[NamedNode, str]] = []
            for t, rel, replaced, tid in cited:
                app = None if eh is None or tid is None else _iri(f"{_APP}{eh}/{tid}")
                if app is None:
                    continue  # ?app unbound: no application triples (the fact triples above stay)
                app_s = str(app)
                apps.append((app, app_s))
                t_s, rel_s = nt(t), nt(rel)
                rep_s = "" if replaced is None else nt(replaced)
                if e_s is None or m_s is None or t_s is None or rel_s is None or rep_s is None:
                    out.add(app, _TYPE, p["TechniqueApplication"])  # a blank node among them
                    out.add(app, p["onElement"], e)
                    out.add(app, p["appliedTechnique"], t)
                    out.add(app, p["viaMapping"], m)
                    out.add(app, p["inRelease"], rel)
                    if replaced is not None:
                        out.add(app, p["replacesTechnique"], replaced)
                else:
                    lines.update((f"{app_s} {a_type} {a_cls} .\n", f"{app_s} {a_on} {e_s} .\n",
                                  f"{app_s} {a_tech} {t_s} .\n", f"{app_s} {a_map} {m_s} .\n",
                                  f"{app_s} {a_rel} {rel_s} .\n"))
                    if rep_s:
                        lines.add(f"{app_s} {a_rep} {rep_s} .\n")
                for x_s in xs:
                    lines.add(f"{app_s} {a_exp} {x_s} .\n")
            return apps

        for q in self._objects(p["category"], _G_FINDINGS):
            f = q.subject
            es = focus.get(f)
            if es is None:
                continue
            cat = q.object
            f_s = nt(f)
            for e in es:
                sig = sig_of[e]
                rows = candidates.get((sig, cat))
                if rows is None:
                    rows = candidates[(sig, cat)] = [(m, cls, free) for cls in sig_types[sig]
                                                     for m, free in by_cat_cls.get((cat, cls), ())]
                if not rows:
                    continue
                e_personal = e in personal
                for m, cls, free in rows:
                    if not (free or e_personal):
                        continue
                    apps = apps_of.get((e, m))
                    if apps is None:
                        apps = apps_of[(e, m)] = apply(e, m)
                    if not apps:
                        continue
                    key = (e, m, cls)
                    if key not in done:
                        done.add(key)
                        for app, _ in apps:
                            out.add(app, via_cls, cls)
                    if f_s is None:
                        for app, _ in apps:
                            out.add(app, of_finding, f)
                    else:
                        for _, app_s in apps:
                            lines.add(f"{app_s} {of_s} {f_s} .\n")
        out.write(self)

    # -- 15-reduced-by.rq --------------------------------------------------------------------------
    def reduced_by(self) -> None:
        """Reducing facts of the applications whose mapping names a ``tg:reducedBy`` attribute."""
        ox = self.ox
        reducing: dict[Node, set[Node]] = {}
        for q in self._objects(_P["reducedBy"], _G_BRIDGE):
            reducing.setdefault(q.subject, set()).add(q.object)
        if not reducing:
            return
        subjects: dict[tuple[Node, Node], list[Node]] = {}
        for e, attr, s in self._reduction_facts():
            subjects.setdefault((e, attr), []).append(s)
        if not subjects:
            return
        out: Triples = set()
        nodes: dict[tuple[Node, Node], NamedNode | None] = {}
        p = _P
        for m, attrs in reducing.items():
            for q in ox.quads_for_pattern(None, p["viaMapping"], m, _G_FINDINGS):
                app = q.subject
                for qe in ox.quads_for_pattern(app, p["onElement"], None, _G_FINDINGS):
                    e = qe.object
                    for attr in attrs:
                        for s in subjects.get((e, attr), ()):
                            key = (s, attr)
                            if key in nodes:
                                x = nodes[key]
                            else:
                                ss, sa = _str(s), _str(attr)
                                x = nodes[key] = (None if ss is None or sa is None
                                                  else NamedNode(_FACT_R + _md5(f"{ss} {sa}")))
                            if x is None:
                                continue
                            out.add((app, p["reducedByFact"], x))
                            out.add((x, _TYPE, p["ExposureFact"]))
                            out.add((x, p["factSubject"], s))
                            out.add((x, p["factAttribute"], attr))
        self._add(out)

    # -- 51-coverage.rq ----------------------------------------------------------------------------
    def coverage(self) -> None:
        """Findings covered by a control of their element (or of a guardrail it uses) for their category."""
        ox = self.ox
        covers: dict[Node, set[Node]] = {}
        for q in self._objects(_P["coversCategory"], _G_MODEL):
            covers.setdefault(q.subject, set()).add(q.object)
        out: Triples = set()
        p = _P
        for ctl, cats in covers.items():
            holders = {q.subject for q in ox.quads_for_pattern(None, p["hasControl"], ctl, _G_MODEL)}
            for g in list(holders):
                holders.update(q.subject for q in ox.quads_for_pattern(None, _USES_GUARDRAIL, g, _G_MODEL))
            # (the first set also holds the guardrails themselves: they have the control)
            for e in holders:
                for q in ox.quads_for_pattern(None, p["focus"], e, _G_FINDINGS):
                    f = q.subject
                    if not isinstance(f, NamedNode | BlankNode):
                        continue
                    if Quad(f, _TYPE, p["Finding"], _G_FINDINGS) not in ox:
                        continue
                    if any(Quad(f, p["category"], c, _G_FINDINGS) in ox for c in cats):
                        out.add((f, p["coveredBy"], ctl))
        self._add(out)
