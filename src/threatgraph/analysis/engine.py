"""The derivation engine: model + ontology → OWL 2 RL closure → derived facts → rules → finding graph.

The engine talks to a :class:`~threatgraph.store.base.Store` only. Findings are RDF resources in
``graph/findings`` with stable IRIs (rule id + focus + category); reports are rendered from them.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING

from pyoxigraph import BlankNode, Literal, NamedNode, Quad

from threatgraph.analysis.fastclosure import OxTriple, model_closure
from threatgraph.analysis.findings import FindingCore
from threatgraph.analysis.model import ModelLoad, flow_errors, load_model_files, model_warnings
from threatgraph.analysis.ontology import Ontology, load_ontology
from threatgraph.analysis.rules import Rule, load_rules, rule_files
from threatgraph.errors import InputError
from threatgraph.resources import queries_dir
from threatgraph.store import Store, open_store
from threatgraph.store.base import Term
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import FINDING, RDF, RDFS, RULE, TG, graph_iri

G_ONTOLOGY = graph_iri("ontology")
G_MODEL = graph_iri("model")
G_INFERRED = graph_iri("inferred")
G_FINDINGS = graph_iri("findings")
G_SETTINGS = graph_iri("settings")
"""Settings of the analysis the rules read (tg:linddunEverywhere)."""

if TYPE_CHECKING:
    from threatgraph.analysis.paths import PathRecord
    from threatgraph.analysis.risk import RiskMemory
    from threatgraph.analysis.stage_python import StageMemory
    from threatgraph.analysis.validation import ValidationReport

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Analysis:
    """What :func:`analyze` did: the store holding every graph, the rules run, counts and warnings."""

    store: Store
    rules: list[Rule]
    model_files: list[str]
    warnings: list[str] = field(default_factory=list)
    finding_count: int = 0
    inferred_count: int = 0
    releases: dict[str, str] = field(default_factory=dict)
    """Knowledge source → newest loaded release graph the second stage read (empty: categories only)."""
    stage_triples: int = 0
    path_count: int = 0
    validation: ValidationReport | None = None
    """The validation report (:func:`threatgraph.analysis.pipeline.analyze` validates first)."""
    knowledge_key: str = ""
    """Cache key of the compiled knowledge view the analysis read ("" without knowledge)."""
    cores: list[FindingCore] | None = None
    """What the engine wrote of each finding (:class:`~threatgraph.analysis.findings.FindingCore`), for
    :func:`~threatgraph.analysis.findings.findings_of`; None when unknown (the findings are read from the graph)."""
    stage_memory: StageMemory | None = None
    """What the technique stage's Python steps wrote of the technique applications
    (:class:`~threatgraph.analysis.stage_python.StageMemory`), for :func:`~threatgraph.analysis.findings.findings_of`;
    None when the stage did not keep it (the applications are read from the graph)."""
    risk: RiskMemory | None = None
    """What the risk step wrote (:class:`~threatgraph.analysis.risk.RiskMemory`), for ``findings_of``; None: read the graph."""
    paths: list[PathRecord] | None = None
    """What the attack path step wrote (:class:`~threatgraph.analysis.paths.PathRecord`), for ``read_paths``."""


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    Measured on the 10 k-element benchmark model: rule evaluation 16 s → 7.7 s and reading the
    finding graph 12 s → 3.8 s, because full collections rescan an ever larger heap. Nothing the
    engine builds has reference cycles, so reference counting frees it all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def finding_iri(rule_id: str, focus: Term, category: str | None) -> str:
    """Stable IRI of a finding: the same rule, focus and category always give the same IRI.

    >>> finding_iri("TG-X-1", NamedNode("urn:a"), None) == finding_iri("TG-X-1", NamedNode("urn:a"), None)
    True
    >>> finding_iri("TG-X-1", NamedNode("urn:a"), None).startswith("https://w3id.org/threatgraph/finding/TG-X-1/")
    True
    """
    key = f"{focus}|{category or ''}".encode()
    return f"{FINDING}{rule_id}/{hashlib.sha1(key).hexdigest()[:16]}"


def _local_name(iri: str) -> str:
    return re.split(r"[#/]", iri.rstrip("/#"))[-1]


def term_label(term: Term, labels: dict[str, str]) -> str:
    """Human label of a term: its rdfs:label, else its local name or literal value."""
    if isinstance(term, NamedNode):
        return labels.get(term.value) or _local_name(term.value)
    if isinstance(term, Literal):
        return term.value
    return "_:" + term.value


def labels_of(store: Store, *, complete: bool = True) -> dict[str, str]:
    """rdfs:label / skos:prefLabel of every IRI in the store (English or untagged preferred).

    ``complete=False``: without loading the deferred writes of an embedded store (:meth:`EmbeddedStore.defer`);
    the finding graph's writers (the rules, risk, attack paths) write no label, so the labels are the same."""
    query = ("SELECT ?s ?l WHERE { { ?s rdfs:label ?l } UNION { ?s skos:prefLabel ?l } FILTER(isIRI(?s)) "
             "FILTER(lang(?l) = '' || langMatches(lang(?l), 'en')) }")
    rows = store.select(query, complete=complete)
    out: dict[str, str] = {}
    for r in rows:
        s, lit = r["s"], r["l"]
        if isinstance(s, NamedNode) and isinstance(lit, Literal):
            out.setdefault(s.value, lit.value)
    return out


def render_explanation(template: str, row: dict[str, list[Term]], labels: dict[str, str]) -> str:
    """Fill ``{var}`` placeholders with the labels of the bound terms (several values joined).

    >>> render_explanation("{a} and {b}", {"a": [Literal("x"), Literal("w")]}, {})
    'w, x and ?'
    """
    return Explanation(template, labels).render(row)


class Explanation:
    """A rule's explanation template, split once into text and ``{var}`` parts, with a label cache.

    Rendering ~100 k findings at 10 k elements: 1.3 s with a regex substitution per finding, less
    than half of that this way (same text).
    """

    def __init__(self, template: str, labels: dict[str, str], cache: dict[Term, str] | None = None) -> None:
        """``cache``: term → label, shared by the explanations of one run (a term's label does not depend on
        the rule)."""
        self.parts: list[tuple[str, str | None]] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(template):
            self.parts.append((template[pos : m.start()], m.group(1)))
            pos = m.end()
        self.tail = template[pos:]
        self.labels = labels
        self.cache: dict[Term, str] = {} if cache is None else cache

    def label(self, term: Term) -> str:
        out = self.cache.get(term)
        if out is None:
            out = self.cache[term] = term_label(term, self.labels)
        return out

    def render(self, row: dict[str, list[Term]], category: Sequence[Term] | None = None) -> str:
        """The text for one finding: ``row`` maps variables to bound terms; ``category`` overrides
        the ``{category}`` variable."""
        out: list[str] = []
        for text, var in self.parts:
            out.append(text)
            vals = category if var == "category" and category is not None else row.get(var) if var else None
            out.append(self.value(vals))
        out.append(self.tail)
        return "".join(out)

    def value(self, vals: Sequence[Term] | None) -> str:
        """The text of one placeholder bound to ``vals``: ``?`` when unbound, else the labels, sorted and
        joined when several."""
        if not vals:
            return "?"
        if len(vals) == 1:
            return self.label(vals[0]) or "?"
        return ", ".join(sorted({self.label(v) for v in vals})) or "?"

    def compiled(self) -> tuple[str, list[str]]:
        """The template as a :meth:`str.format` string with positional fields, and the variable of each field
        (what :meth:`render` does, with one ``format`` call per finding)."""
        fmt = "".join(text.replace("{", "{{").replace("}", "}}") + "{}" for text, _ in self.parts)
        return fmt + self.tail.replace("{", "{{").replace("}", "}}"), [var for _, var in self.parts if var]


class Engine:
    """Runs an analysis against any store.

    >>> from threatgraph.resources import queries_dir
    >>> eng = Engine()
    >>> len(eng.rules) > 0
    True
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        ontology: Ontology | None = None,
        rules: Sequence[Rule] | None = None,
        rule_dir: Path | None = None,
        frameworks: Sequence[str] | None = None,
    ) -> None:
        self.store: Store = store if store is not None else open_store()
        self.ontology = ontology or load_ontology()
        if rules is None:
            rules = load_rules(
                rule_files(rule_dir), known_terms=set(self.ontology.terms), categories=set(self.ontology.categories)
            )
        self.rules: list[Rule] = list(rules)
        self.frameworks = tuple(f.lower() for f in frameworks) if frameworks else ()
        """The frameworks asked for (``--frameworks``); empty: STRIDE everywhere and LINDDUN where personal
        data is handled. Asking for ``linddun`` applies the LINDDUN baseline to every element."""
        if self.frameworks:
            unknown = sorted(set(self.frameworks) - {"stride", "linddun"})
            if unknown:
                raise InputError(f"unknown framework(s) {', '.join(unknown)}", hint="use stride, linddun or both")
            self.rules = [r for r in self.rules if set(r.framework.lower().split("+")) & set(self.frameworks)]
        self.foci: dict[str, Term] = {}
        """Finding IRI → focus element, of the findings :meth:`run_rules` wrote last."""
        self.baseline: set[str] = set()
        """IRIs of the baseline findings :meth:`run_rules` wrote last (rules tagged ``baseline``)."""
        self.cores: list[FindingCore] = []
        """What :meth:`run_rules` wrote last of each finding (rule, focus, categories, explanation, bindings)."""

    # -- steps -----------------------------------------------------------------------------------
    def load_ontology(self) -> None:
        """(Re)load the ontology modules into ``graph/ontology``."""
        self.store.drop_graph(G_ONTOLOGY)
        self.store.add_quads(self.ontology.quads(G_ONTOLOGY))

    def analyze(
        self,
        model_paths: Sequence[str | Path],
        *,
        loaded: ModelLoad | None = None,
        inferred: list[OxTriple] | None = None,
        preloaded: bool = False,
    ) -> Analysis:
        """Load the model files, reason, derive, run every rule; return the analysis. ``preloaded``: the
        caller already ran :meth:`load` with the same ``loaded`` and ``inferred``."""
        with no_gc():
            return self._analyze(model_paths, loaded, inferred, preloaded)

    def load(self, loaded: ModelLoad, inferred: list[OxTriple] | None = None) -> list[OxTriple]:
        """Put the ontology, the model and its closure into the store (dropping an earlier analysis);
        return the closure. What validation reads (:func:`threatgraph.analysis.validation.validate_store`)."""
        self.load_ontology()
        for g in (G_MODEL, G_INFERRED, G_FINDINGS, G_SETTINGS):
            self.store.drop_graph(g)
        if "linddun" in self.frameworks:
            self.store.update(f"INSERT DATA {{ GRAPH <{G_SETTINGS}> {{ <{G_SETTINGS}> tg:linddunEverywhere true }} }}")
        g_model, g_inferred = NamedNode(G_MODEL), NamedNode(G_INFERRED)
        if loaded.texts is not None and isinstance(self.store, EmbeddedStore):  # the Turtle files, parsed by the
            # store itself: no quad objects (issue 14); a remote store gets quads as before
            for text in loaded.texts:
                self.store.load(text, "text/turtle", G_MODEL)
        else:
            self.store.add_quads(Quad(s, p, o, g_model) for s, p, o in loaded.triples)  # type: ignore[arg-type]
        if inferred is None:
            inferred = model_closure(self.ontology, loaded)
        # a generator: each quad is freed once added (at 10 k elements ~0.07 s less than a list of 109 k)
        self.store.add_quads(Quad(s, p, o, g_inferred) for s, p, o in inferred)  # type: ignore[arg-type]
        return inferred

    def _analyze(
        self, model_paths: Sequence[str | Path], loaded: ModelLoad | None, inferred: list[OxTriple] | None,
        preloaded: bool = False,
    ) -> Analysis:
        """``loaded`` / ``inferred``: the parsed model and its closure when the caller already has them
        (``analyze`` shares them with validation instead of parsing and reasoning twice)."""
        if loaded is None:
            loaded = load_model_files(model_paths)
        warnings = loaded.warnings + model_warnings(loaded.triples, self.ontology)
        if not preloaded or inferred is None:
            inferred = self.load(loaded, inferred)
        derived = self.derive()
        self.check_flows()
        count = self.run_rules()
        analysis = Analysis(self.store, self.rules, loaded.files, warnings, count, len(inferred) + derived,
                            cores=self.cores)
        self.derive_findings(analysis)
        return analysis

    def derive_findings(self, analysis: Analysis) -> None:
        """Second stage (issue 4): techniques, mitigations, controls, risk and attack paths of the findings.

        Techniques are cited with or without loaded knowledge releases (without: unresolved, as the bridge
        mappings name them, see :func:`threatgraph.analysis.techniques.unresolved_view`); their names,
        mitigations, countermeasures and detections need the releases; controls by category, risk and attack
        paths are derived with or without them.
        """
        from threatgraph.analysis.paths import find_paths
        from threatgraph.analysis.risk import RiskMemory, score_findings
        from threatgraph.analysis.techniques import newest_releases, run_stage
        from threatgraph.knowledge.bridgegraph import load_bridge

        releases = newest_releases(self.store)
        load_bridge(self.store)  # with or without releases: without, techniques are cited unresolved
        foci = self.foci or None  # none kept (rules not run by this engine): read from the store
        stage = run_stage(self.store, releases, findings=foci.keys() if foci else None,
                          cores=self.cores if foci else None, rules=self.rules)  # (the rule findings in memory)
        analysis.releases = stage.releases
        analysis.stage_memory = stage.memory
        analysis.stage_triples = stage.total
        # a baseline finding (applicability of a category to an element kind) has a risk of its own only
        # when techniques realise it; otherwise it stays at its rule's severity (info): one scale, issue 15
        apps = stage.applications.of_finding if stage.applications is not None else {}
        unscored = {f for f in self.baseline if not apps.get(f)}
        analysis.risk, analysis.paths = RiskMemory(), []  # what they write, kept for the report (issue 14)
        score_findings(self.store, stage.finding_status, stage.applications, foci, skip=unscored,
                       memory=stage.memory, keep=analysis.risk)
        analysis.path_count = find_paths(self.store, keep=analysis.paths)

    def derive(self) -> int:
        """Run the CONSTRUCT queries of ``queries/derive`` and add their triples to ``graph/inferred``."""
        total = 0
        g = NamedNode(G_INFERRED)
        for path in sorted((queries_dir() / "derive").glob("*.rq")):
            quads = self.store.construct(path.read_text(encoding="utf-8"))
            self.store.add_quads(Quad(q.subject, q.predicate, q.object, g) for q in quads)
            total += len(quads)
        return total

    def check_flows(self) -> None:
        """Refuse flows without a source or a target, naming them."""
        rows = self.store.select(
            "SELECT ?f ?s ?t WHERE { ?f a tg:DataFlow . OPTIONAL { ?f tg:source ?s } OPTIONAL { ?f tg:target ?t } "
            "FILTER(!bound(?s) || !bound(?t)) }"
        )
        msgs = flow_errors(
            (
                r["f"].value,
                r["s"].value if "s" in r else None,
                r["t"].value if "t" in r else None,
            )
            for r in rows
        )
        if msgs:
            raise InputError(
                "; ".join(msgs),
                hint="give every data flow a tg:source and a tg:target element",
            )

    def run_rules(self) -> int:
        """Run every rule; write findings (and rule descriptions) into ``graph/findings``."""
        labels = labels_of(self.store, complete=False)  # nothing deferred yet: the rules write the finding graph
        g = NamedNode(G_FINDINGS)
        quads: list[Quad] = []
        n = 0
        self.foci = foci = {}
        self.baseline = set()
        self.cores = cores = []
        # the author's statement that an element is not part of the analysis (Threat Dragon outOfScope,
        # Threagile out_of_scope, TMT "Out Of Scope"): it stays in the model and the diagrams and raises
        # no finding (issue 13); reports list it with its reason
        out_of_scope = {r["e"] for r in self.store.select("SELECT ?e WHERE { ?e tg:outOfScope true }", complete=False)}
        evidence_nodes: dict[tuple[str, Term], NamedNode] = {}
        records: list[_Record] = []  # the findings written as text (:func:`_finding_chunks`)
        solutions = self._solutions_reader()
        cat_labels: dict[str, str] = {}
        cat_texts: dict[tuple[str, ...], str] = {}
        label_cache: dict[Term, str] = {}
        shown: dict[Term, str] = {}  # a term → its label in an explanation ("?" for an empty one)
        ids: dict[tuple[Term, str | None], tuple[str, str]] = {}  # (focus, category) → focus text, IRI hash
        for rule in self.rules:
            rule_node = NamedNode(RULE + rule.id)
            quads.extend(self._rule_quads(rule, rule_node, g))
            grouped = self._grouped(rule, *solutions(rule.query), out_of_scope)
            explanation = Explanation(rule.explanation, labels, label_cache)
            fmt, fields = explanation.compiled()
            rule_text, severity_text = str(rule_node), str(_SEV_NODES[rule.severity])
            rule_id, baseline = rule.id, rule.baseline
            iri_prefix, sha1 = f"{FINDING}{rule_id}/", hashlib.sha1
            value, label = explanation.value, explanation.label
            head = _finding_head(rule_text, severity_text)
            for key, (cats, ev) in grouped.items():
                n += 1
                focus = key[0]
                # finding_iri, once per (focus, category) of all the rules, with the focus's N-Triples text
                known = ids.get(key)
                if known is None:
                    focus_text = str(focus)
                    known = ids[key] = (focus_text, sha1(f"{focus_text}|{key[1] or ''}".encode()).hexdigest()[:16])
                focus_text, digest = known
                iri = iri_prefix + digest
                foci[iri] = focus
                if baseline:
                    self.baseline.add(iri)
                if len(cats) > 1:
                    cats.sort()
                if type(focus) is BlankNode:  # as a quad: a blank node parsed from text would get a new id
                    text = self._finding_quads(quads, rule, rule_node, iri, focus, cats, ev, explanation, g, evidence_nodes)
                else:
                    # Explanation.render, one format call: the label of a single value directly
                    args = []
                    for var in fields:
                        if var == "category":
                            if len(cats) == 1:
                                c = cats[0]
                                lab = cat_labels.get(c)
                                if lab is None:
                                    lab = cat_labels[c] = label(_category_node(c)) or "?"
                                args.append(lab)
                            else:  # the baselines' several categories: a few combinations, rendered once each
                                joined = cat_texts.get(tuple(cats))
                                if joined is None:
                                    joined = cat_texts[tuple(cats)] = value([_category_node(c) for c in cats])
                                args.append(joined)
                            continue
                        vals = ev.get(var)
                        if vals is not None and len(vals) == 1:
                            v = vals[0]
                            lab = shown.get(v)
                            if lab is None:
                                lab = shown[v] = label(v) or "?"
                            args.append(lab)
                        else:
                            args.append(value(vals))
                    text = fmt.format(*args)
                    records.append((iri, head, focus_text, cats, ev, text))
                cores.append(FindingCore(iri, rule_id, rule.title, rule.source, rule.severity, focus, cats, text, ev))
        store = self.store
        if not records:
            pass
        elif isinstance(store, EmbeddedStore):  # the text built when a reader needs it (terms already checked)
            store.defer(functools.partial(_finding_chunks, records), G_FINDINGS)
        else:
            for chunk in _finding_chunks(records):
                store.load(chunk, "application/n-triples", G_FINDINGS)
        store.add_quads(quads)
        return n

    def _grouped(
        self, rule: Rule, names: list[str], solutions: Iterable[Sequence[Term | None]], skip: set[Term]
    ) -> dict[tuple[Term, str | None], tuple[list[str], dict[str, list[Term]]]]:
        """The rows of ``rule`` grouped by (focus, category when findings are per category): each group's
        categories and evidence (variable → distinct values, in the order the rows bind them). ``names``:
        the variables of the positions of each solution (None where unbound). The finding IRI (a SHA-1) is
        then computed once per finding, not once per row (86 k rows at 10 k elements)."""
        grouped: dict[tuple[Term, str | None], tuple[list[str], dict[str, list[Term]]]] = {}
        if "focus" not in names:
            return grouped
        fi = names.index("focus")
        ci = names.index("category") if "category" in names else -1
        evars = [(i, var) for i, var in enumerate(names) if var not in ("focus", "category")]
        dynamic, merge = rule.dynamic_category, rule.group_by_focus
        per_category = dynamic and not merge
        categories = self.ontology.categories
        static = list(rule.categories)
        known: dict[Term | None, str | None] = {}  # a dynamic category term → its IRI, None when not one
        for row in solutions:
            focus = row[fi]
            if focus is None or (skip and focus in skip):  # (an empty set would still hash the term)
                continue
            cat_iri: str | None = None
            if dynamic:
                cat = row[ci] if ci >= 0 else None
                cat_iri = known.get(cat, "")  # "": not seen yet (no category's IRI)
                if cat_iri == "":
                    cat_iri = known[cat] = (
                        cat.value if isinstance(cat, NamedNode) and cat.value in categories else None)
                if cat_iri is None:
                    continue
            key = (focus, cat_iri if per_category else None)
            entry = grouped.get(key)
            if entry is None:  # a group's first row: each value is new
                ev: dict[str, list[Term]] = {"focus": [focus]}
                for i, var in evars:
                    val = row[i]
                    if val is not None:
                        ev[var] = [val]
                grouped[key] = ([cat_iri] if cat_iri is not None else static.copy(), ev)
                continue
            if merge and cat_iri is not None and cat_iri not in entry[0]:
                entry[0].append(cat_iri)
            ev = entry[1]
            for i, var in evars:
                val = row[i]
                if val is None:
                    continue
                bucket = ev.get(var)
                if bucket is None:
                    ev[var] = [val]
                elif val not in bucket:
                    bucket.append(val)
        return grouped

    def _solutions_reader(self) -> Callable[[str], tuple[list[str], Iterable[Sequence[Term | None]]]]:
        """How :meth:`run_rules` reads a rule's query: the variables and the solutions as sequences of terms
        (None where unbound). On the embedded store, pyoxigraph's solutions themselves (no dict per row), read
        without loading the finding graph this engine defers (:meth:`EmbeddedStore.defer`: a rule reads the
        model, its closure and the ontology only); elsewhere the rows of :meth:`Store.select`."""
        store = self.store
        if isinstance(store, EmbeddedStore):
            return functools.partial(_embedded_solutions, store)
        return functools.partial(_row_solutions, store)

    @staticmethod
    def _rule_quads(rule: Rule, node: NamedNode, g: NamedNode) -> list[Quad]:
        q = [
            Quad(node, NamedNode(RDF.type), NamedNode(TG.Rule), g),
            Quad(node, NamedNode(TG.ruleId), Literal(rule.id), g),
            Quad(node, NamedNode(RDFS.label), Literal(rule.title), g),
            Quad(node, NamedNode(TG.ruleSource), Literal(rule.source), g),
            Quad(node, NamedNode(TG.severity), NamedNode(TG[rule.severity.capitalize()]), g),
        ]
        for c in rule.categories:
            q.append(Quad(node, NamedNode(TG.category), NamedNode(c), g))
        for fact in rule.mitigated_by:  # a mitigated counterpart: its findings get tg:Mitigated (techniques.py)
            q.append(Quad(node, NamedNode(TG.mitigatedByFact), NamedNode(fact), g))
        return q

    @staticmethod
    def _finding_quads(
        q: list[Quad],
        rule: Rule,
        rule_node: NamedNode,
        iri: str,
        focus: Term,
        cats: list[str],
        evidence: dict[str, list[Term]],
        explanation: Explanation,
        g: NamedNode,
        nodes: dict[tuple[str, Term], NamedNode],
    ) -> str:
        """Append the quads of one finding to ``q``; its evidence nodes are shared with every finding
        that has the same (role, value) (``nodes``, filled here). Returns the finding's explanation."""
        f = NamedNode(iri)
        cat_nodes = [_category_node(c) for c in cats]
        text = explanation.render(evidence, cat_nodes)
        q += (
            Quad(f, _RDF_TYPE, _FINDING, g),
            Quad(f, _BY_RULE, rule_node, g),
            Quad(f, _FOCUS, focus, g),
            Quad(f, _SEVERITY, _SEV_NODES[rule.severity], g),
            Quad(f, _EXPLANATION, Literal(text), g),
        )
        for c in cat_nodes:
            q.append(Quad(f, _CATEGORY, c, g))
        for role, vals in evidence.items():
            if role == "focus":
                continue
            for val in vals:
                if isinstance(val, BlankNode):
                    continue
                key = (role, val)
                ev = nodes.get(key)
                if ev is None:
                    ev = nodes[key] = _evidence_node(q, role, val, g)
                q.append(Quad(f, _EVIDENCE, ev, g))
        return text


class _TextWriter:
    """Triples of one graph written as N-Triples text, loaded into the store in chunks of about :attr:`CHUNK`
    lines (one parse per chunk instead of a Python ``Quad`` per triple)."""

    CHUNK = 20_000

    def __init__(self, store: Store, graph: str) -> None:
        self.store, self.graph = store, graph
        self.parts: list[str] = []
        self.lines = 0

    def add(self, text: str, lines: int) -> None:
        self.parts.append(text)
        self.lines += lines
        if self.lines >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            data = "".join(self.parts)
            if isinstance(self.store, EmbeddedStore):  # loaded when a reader needs it (terms already checked)
                self.store.defer(data, self.graph)
            else:
                self.store.load(data, "application/n-triples", self.graph)
            self.parts.clear()
            self.lines = 0


_Record = tuple[str, tuple[str, str, str, str, str], str, list[str], dict[str, list[Term]], str]
"""What :meth:`Engine.run_rules` keeps of a finding it writes as text: its IRI, the rest of its first lines after
the IRI (:func:`_finding_head`), its focus as N-Triples, its categories, its evidence and its explanation (the
categories and evidence are those of its :class:`FindingCore`, never changed after)."""


def _finding_chunks(records: Iterable[_Record], chunk: int = _TextWriter.CHUNK) -> Iterator[str]:
    """:meth:`Engine._finding_quads` of each record as N-Triples text, in pieces of about ``chunk`` lines (the same
    triples; the focus is not a blank node); each evidence node's own lines come with the first finding that cites
    it.

    The engine defers this on the embedded store (:meth:`EmbeddedStore.defer`): building the text was a third of
    the CPU of :meth:`Engine.run_rules` at 1 k elements and ~0.35 s of ~2.9 s at 10 k elements (55 k findings),
    for a graph ``analyze --format json`` never reads.

    >>> "".join(_finding_chunks([("urn:f", _finding_head("<urn:r>", "<urn:s>"), "<urn:e>", ["urn:c"],
    ...                           {"focus": [NamedNode("urn:e")], "data": [Literal("d")]}, "t")])).count("\\n")
    9
    """
    nodes: dict[str, dict[Term, str]] = {}  # role → value → the rest of the line that links a finding to its node
    parts: list[str] = []
    lines = 0
    for iri, head, focus_text, cats, evidence, text in records:
        f = f"<{iri}>"
        h1, h2, h3, h4, h5 = head
        if '"' in text or "\\" in text or not text.isprintable():  # _nt_string, inlined
            nt = str(Literal(text))
        else:
            nt = f'"{text}"'
        parts.append(f"{f}{h1}{f}{h2}{f}{h3}{focus_text} .\n{f}{h4}{f}{h5}{nt} .\n")
        lines += 5 + len(cats)
        for c in cats:
            parts.append(f"{f}{_category_line(c)}")
        for role, vals in evidence.items():
            if role == "focus":
                continue
            of_role = nodes.get(role)
            if of_role is None:
                of_role = nodes[role] = {}
            for val in vals:
                link = of_role.get(val)
                if link is None:
                    if type(val) is BlankNode:
                        continue
                    ev = f"<{evidence_iri(role, val)}>"
                    link = of_role[val] = f" {_NT_EVIDENCE} {ev} .\n"
                    pred = _NT_LITERAL_VALUE if type(val) is Literal else _NT_VALUE
                    parts.append(f"{ev} {_NT_ROLE} {_role_literal(role)} .\n{ev} {pred} {val} .\n")
                    lines += 2
                parts.append(f + link)
                lines += 1
        if lines >= chunk:
            yield "".join(parts)
            parts.clear()
            lines = 0
    if parts:
        yield "".join(parts)


def _finding_head(rule_text: str, severity_text: str) -> tuple[str, str, str, str, str]:
    """What :func:`_finding_chunks` writes after the finding's IRI on its first lines, for one rule."""
    return (f" {_NT_TYPE} {_NT_FINDING} .\n", f" {_NT_BY_RULE} {rule_text} .\n", f" {_NT_FOCUS} ",
            f" {_NT_SEVERITY} {severity_text} .\n", f" {_NT_EXPLANATION} ")


@functools.lru_cache(maxsize=1024)
def _category_line(category: str) -> str:
    return f" {_NT_CATEGORY} <{category}> .\n"


def _nt_string(text: str) -> str:
    r"""``str(Literal(text))`` (an xsd:string literal in N-Triples): quoted as it is when nothing needs escaping.

    >>> [_nt_string(t) == str(Literal(t)) for t in ("plain é", 'a "q"', "a\\b", "l1\nl2", "\t", "\x7f", "\u00a0")]
    [True, True, True, True, True, True, True]
    """
    if '"' in text or "\\" in text or not text.isprintable():
        return str(Literal(text))
    return f'"{text}"'


def _embedded_solutions(store: EmbeddedStore, query: str) -> tuple[list[str], Iterable[Sequence[Term | None]]]:
    """A rule's SELECT on the embedded ``store`` (``complete=False``: rules never read the deferred finding graph),
    its solutions left as pyoxigraph gives them: the variables, and one sequence of terms per solution."""
    res = store.solutions(query, complete=False)
    return [v.value for v in res.variables], res


def _row_solutions(store: Store, query: str) -> tuple[list[str], Iterable[Sequence[Term | None]]]:
    """:func:`_embedded_solutions` of any store, from its rows: the variables in an order that keeps the order of
    every row (a row's variables come in the order of the results' head, unbound ones left out)."""
    rows = store.select(query)
    order: TopologicalSorter[str] = TopologicalSorter()
    for row in rows:
        prev: str | None = None
        for var in row:
            order.add(var, *((prev,) if prev is not None else ()))
            prev = var
    names = list(order.static_order())
    return names, [tuple(row.get(var) for var in names) for row in rows]


@functools.lru_cache(maxsize=256)
def _category_node(iri: str) -> NamedNode:
    return NamedNode(iri)


@functools.lru_cache(maxsize=256)
def _role_literal(role: str) -> Literal:
    return Literal(role)


def evidence_iri(role: str, value: Term) -> str:
    """Stable IRI of an evidence node: one node per (role, value), shared by every finding with that evidence
    (issue 14: per-finding evidence nodes were ~37 % of the finding graph).

    >>> evidence_iri("kind", NamedNode("urn:a")) == evidence_iri("kind", NamedNode("urn:a"))
    True
    >>> evidence_iri("kind", NamedNode("urn:a")) != evidence_iri("kind", Literal("urn:a"))
    True
    >>> evidence_iri("kind", NamedNode("urn:a")).startswith("https://w3id.org/threatgraph/finding/evidence/")
    True
    """
    key = f"{role}|{value}".encode()
    return f"{FINDING}evidence/{hashlib.sha1(key).hexdigest()[:16]}"


def _evidence_node(q: list[Quad], role: str, val: Term, g: NamedNode) -> NamedNode:
    """Append the quads of the evidence node (``role``, ``val``) to ``q``; return the node."""
    ev = NamedNode(evidence_iri(role, val))
    q.append(Quad(ev, _ROLE, _role_literal(role), g))
    q.append(Quad(ev, _LITERAL_VALUE if isinstance(val, Literal) else _VALUE, val, g))
    return ev


_RDF_TYPE = NamedNode(RDF.type)
_FINDING = NamedNode(TG.Finding)
_BY_RULE = NamedNode(TG.byRule)
_FOCUS = NamedNode(TG.focus)
_SEVERITY = NamedNode(TG.severity)
_EXPLANATION = NamedNode(TG.explanation)
_CATEGORY = NamedNode(TG.category)
_EVIDENCE = NamedNode(TG.evidence)
_ROLE = NamedNode(TG.role)
_VALUE = NamedNode(TG.value)
_LITERAL_VALUE = NamedNode(TG.literalValue)
_SEV_NODES = {s: NamedNode(TG[s.capitalize()]) for s in ("info", "low", "medium", "high", "critical")}
_NT_TYPE, _NT_FINDING, _NT_BY_RULE, _NT_FOCUS = str(_RDF_TYPE), str(_FINDING), str(_BY_RULE), str(_FOCUS)
_NT_SEVERITY, _NT_EXPLANATION, _NT_CATEGORY = str(_SEVERITY), str(_EXPLANATION), str(_CATEGORY)
_NT_EVIDENCE, _NT_ROLE, _NT_VALUE, _NT_LITERAL_VALUE = str(_EVIDENCE), str(_ROLE), str(_VALUE), str(_LITERAL_VALUE)


def analyze(model_paths: Sequence[str | Path], store: Store | None = None) -> Analysis:
    """Analyse model files on ``store`` (default: a fresh in-memory embedded store).

    >>> a = analyze(["data/examples/rag-assistant.ttl"]) if Path("data/examples/rag-assistant.ttl").exists() else None
    """
    return Engine(store).analyze(model_paths)
