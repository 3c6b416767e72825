"""Stage 2 of ``analyze``: from STRIDE/LINDDUN findings to techniques, mitigations, controls (issue 4).

The stage is the SPARQL CONSTRUCT queries of ``queries/derive-findings/*.rq``, run in file-name order;
each one's triples go into ``graph/findings`` (or, for a query whose first line is ``# output: stage``,
into the scratch graph ``graph/stage``, dropped at the end) before the next runs. Materialising the
intermediate tables keeps every join small: Oxigraph does not reorder a join of findings × mappings
× element types well (measured 13 s → 0.3 s at 1 k elements). The queries name the newest
release graph of each knowledge source by a placeholder IRI
(``https://w3id.org/threatgraph/graph/newest/<source>``) that :func:`bind_releases` replaces with the
graph of the newest loaded release (or with a graph that does not exist, so that the patterns on a
source that is not loaded match nothing). Bridge mappings (``graph/bridge``) come from
:func:`threatgraph.knowledge.bridge.load_bridge`.

>>> q = bind_releases("GRAPH <https://w3id.org/threatgraph/graph/newest/atlas> { ?s ?p ?o }",
...                   {"atlas": "https://w3id.org/threatgraph/graph/release/atlas/5.6.0"})
>>> q
'GRAPH <https://w3id.org/threatgraph/graph/release/atlas/5.6.0> { ?s ?p ?o }'
>>> "graph/none" in bind_releases("GRAPH <https://w3id.org/threatgraph/graph/newest/d3fend> {}", {})
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pyoxigraph import NamedNode, Quad

from threatgraph.errors import InputError, RuleError, StoreError
from threatgraph.resources import queries_dir, shared_data_dir, shared_data_hint
from threatgraph.store.base import Row, Store, Term
from threatgraph.store.embedded import EmbeddedStore
from threatgraph.terms import FINDING, GRAPH, PREFIXES, TG, graph_iri

if TYPE_CHECKING:
    from threatgraph.analysis.findings import FindingCore
    from threatgraph.analysis.rules import Rule
    from threatgraph.analysis.stage_python import StageMemory

G_FINDINGS = graph_iri("findings")
SOURCES: tuple[str, ...] = ("attack-enterprise", "atlas", "d3fend")
"""Knowledge sources the stage reads (the newest loaded release of each)."""
VIEW_SOURCES: tuple[str, ...] = (*SOURCES, "capec")
"""Knowledge sources the knowledge view reads: those of the stage, and CAPEC (its attack patterns' ATT&CK
links, for the declared-threat comparison; queries/derive-knowledge/50-capec-techniques.rq)."""
NEWEST_PREFIX = GRAPH + "newest/"
NO_GRAPH = GRAPH + "none"
G_STAGE = graph_iri("stage")
"""Scratch graph of the stage's intermediate tables (queries starting with ``# output: stage``)."""
STAGE_MARK = "# output: stage"
SCOPED_MARK = "# scoped: every pattern names its graph"
"""Marks a stage query that runs as a SPARQL Update (see :func:`run_stage`)."""


@dataclass
class StageResult:
    """What the stage added: triples per query file, and the releases it read."""

    releases: dict[str, str] = field(default_factory=dict)
    triples: dict[str, int] = field(default_factory=dict)
    finding_status: dict[str, str] = field(default_factory=dict)
    """Finding IRI → its ``tg:controlStatus`` IRI (as written), for :func:`threatgraph.analysis.risk.score_findings`."""
    applications: Applications | None = None
    """The technique applications the stage wrote, read back once (for control status and risk)."""
    memory: StageMemory | None = None
    """What the Python steps wrote of the applications, when they ran on the shipped stage files
    (:class:`~threatgraph.analysis.stage_python.StageMemory`: :func:`~threatgraph.analysis.findings.findings_of`
    builds the findings' techniques from it instead of reading the applications back)."""

    @property
    def total(self) -> int:
        return sum(self.triples.values())


@dataclass
class Applications:
    """The technique applications of the finding graph: per finding, and the technique of each."""

    of_finding: dict[str, list[str]] = field(default_factory=dict)
    """Finding IRI → IRIs of its technique applications."""
    technique: dict[str, tuple[Term, str]] = field(default_factory=dict)
    """Application IRI → (applied technique, IRI of the release graph it was checked against)."""


_APPLICATIONS = f"""SELECT ?f ?app ?t ?rel WHERE {{ GRAPH <{G_FINDINGS}> {{
  ?app tg:ofFinding ?f ; tg:appliedTechnique ?t ; tg:inRelease ?rel }} }}"""


def read_applications(store: Store) -> Applications:
    """Read the technique applications of ``graph/findings``: the rows of :data:`_APPLICATIONS`, by one
    SELECT, or on a store with an index reader (``quads_matching``, the embedded store) from its three predicates
    joined here (at 10 k elements, 134 k rows: 1.5 s → 0.4 s)."""
    out = Applications()
    match = getattr(store, "quads_matching", None)
    if not callable(match):
        for r in store.select(_APPLICATIONS):
            f, app = r["f"].value, r["app"].value
            out.of_finding.setdefault(f, []).append(app)
            out.technique[app] = (r["t"], r["rel"].value)
    else:
        techniques: dict[str, list[Term]] = {}
        for q in match(TG.appliedTechnique, G_FINDINGS):
            techniques.setdefault(q.subject.value, []).append(q.object)
        releases: dict[str, list[str]] = {}
        for q in match(TG.inRelease, G_FINDINGS):
            if q.subject.value in techniques:
                releases.setdefault(q.subject.value, []).append(q.object.value)
        for q in match(TG.ofFinding, G_FINDINGS):
            app = q.subject.value
            rels = releases.get(app)
            if not rels:
                continue
            lst = out.of_finding.setdefault(q.object.value, [])
            for t in techniques[app]:  # one row per (technique, release), as the SELECT's join gives
                for rel in rels:
                    lst.append(app)
                    out.technique[app] = (t, rel)
    for apps in out.of_finding.values():
        apps.sort()
    return out


def applications_in(memory: StageMemory) -> Applications | None:
    """:func:`read_applications` from what the Python steps wrote (the same rows); None when an application has
    several techniques or releases (then which row the join gives last depends on the store's order)."""
    out = Applications()
    # (every application 10-techniques kept is linked to a finding: PythonStage.techniques writes an application
    # only for the findings it links it to)
    technique = out.technique
    nodes: dict[str, NamedNode] = {}  # (one term per technique)
    try:  # (one pass: at 10 k elements the records lie apart in memory)
        for app, rec in memory.apps.items():
            [t] = rec.technique  # (ValueError: not one technique)
            [rel] = rec.release
            node = nodes.get(t)
            if node is None:
                node = nodes[t] = NamedNode(t)
            technique[app] = (node, rel)
    except ValueError:
        return None
    out.of_finding = {f: sorted(apps) for f, apps in memory.of_finding.items()}
    return out


def application_iri(element: str, technique: str) -> str:
    """IRI of the application of ``technique`` on ``element`` (as 10-techniques.rq builds it).

    >>> application_iri("urn:e", "https://w3id.org/threatgraph/atlas/AML.T0051")
    'https://w3id.org/threatgraph/finding/app/18bb31873db38e3d4664db13120b6136/AML.T0051'
    """
    import hashlib

    return f"{FINDING}app/{hashlib.md5(element.encode(), usedforsecurity=False).hexdigest()}/{technique.rsplit('/', 1)[-1]}"


def stage_files(directory: Path | None = None) -> list[Path]:
    """The CONSTRUCT queries of the stage (``queries/derive-findings/*.rq``), in order."""
    d = directory or (queries_dir() / "derive-findings")
    if not d.is_dir():
        raise RuleError(f"query directory {d} does not exist")
    return sorted(d.glob("*.rq"))


G_VIEW = graph_iri("view")
"""What the knowledge says of the techniques the bridge mappings cite (queries/derive-knowledge/*.rq):
model-independent, computed once per set of releases and shipped mappings (knowledge/view.py caches it)."""
G_BRIDGE = graph_iri("bridge")


def knowledge_files() -> list[Path]:
    """The CONSTRUCT queries of the knowledge view (``queries/derive-knowledge/*.rq``), in order."""
    return stage_files(queries_dir() / "derive-knowledge")


def view_inputs_digest() -> str:
    """sha256 of what the knowledge view is derived from besides the releases: the ontology modules, the
    bridge mappings and the derive-knowledge queries (a change to any of them recompiles the view)."""
    import hashlib

    from threatgraph.resources import ontology_dir

    h = hashlib.sha256()
    files = sorted(ontology_dir().glob("*.ttl")) + sorted((ontology_dir() / "mappings").glob("*.ttl")) + knowledge_files()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


class _Unsettled:
    """A read-only view of an embedded store whose SELECTs read graphs that are never deferred (the release
    records, the knowledge view, the bridge): they do not load the deferred finding graph
    (``EmbeddedStore.defer``). Only ``select`` is offered (what :func:`~threatgraph.knowledge.releases.releases`
    and the view key read)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    def select(self, query: str, bindings: Mapping[str, Term] | None = None) -> list[Row]:
        return self.store.select(query, bindings, complete=False)


def known_reader(store: Store) -> Store:
    """``store``, or for the embedded store a reader of the graphs that are never deferred (:class:`_Unsettled`:
    SELECT only) that does not load the deferred finding graph."""
    return cast(Store, _Unsettled(store)) if isinstance(store, EmbeddedStore) else store


def _add_construct(store: Store, query: str, graph: str) -> int:
    """Add the triples of the CONSTRUCT ``query`` (reading graphs that are never deferred) to ``graph``, without
    loading the deferred finding graph of an embedded store; return how many were added."""
    quads = store.construct(query, complete=False)
    g = NamedNode(graph)
    store.add_quads([Quad(q.subject, q.predicate, q.object, g) for q in quads])
    return len(quads)


def _update_unsettled(store: EmbeddedStore, update: str) -> None:
    """Run the SPARQL ``update`` (its patterns name graphs that are never deferred; it writes graph/stage) on the
    embedded store without loading its deferred text first."""
    try:
        store.unsettled_oxigraph().update(update, prefixes=PREFIXES)
    except SyntaxError as err:
        raise StoreError(f"invalid SPARQL update: {err}") from err
    except OSError as err:
        raise StoreError(f"update failed: {err}") from err


def _drop_stage(store: Store) -> None:
    """Drop the scratch graph graph/stage (never deferred: on the embedded store without loading deferred text)."""
    if isinstance(store, EmbeddedStore):
        ox, g = store.unsettled_oxigraph(), NamedNode(G_STAGE)
        if ox.contains_named_graph(g):
            ox.remove_graph(g)
    else:
        store.drop_graph(G_STAGE)


def view_key_of(store: Store, releases: Mapping[str, str]) -> str:
    """The key of the knowledge view of ``releases`` (graph IRIs) as recorded in ``store``."""
    import hashlib

    from threatgraph.knowledge.releases import releases as recorded

    sha = {i.graph: i.sha256 for i in recorded(store)}
    h = hashlib.sha256(view_inputs_digest().encode())
    for src in sorted(releases):
        h.update(f"{src} {releases[src]} {sha.get(releases[src], '')}\n".encode())
    return h.hexdigest()


_VIEW_KEY = f"SELECT ?k WHERE {{ GRAPH <{G_VIEW}> {{ <{G_VIEW}> tg:viewKey ?k }} }}"


def ensure_view(store: Store, releases: Mapping[str, str]) -> str:
    """Make ``graph/view`` of ``store`` hold the knowledge view of ``releases``; return its key.

    The newest loaded CAPEC release, if any, is added to ``releases`` (:func:`view_releases`). Nothing
    is done when the graph already records that key (an analysis store loaded from the cached
    view); otherwise the derive-knowledge queries run on ``store`` (its release graphs, ``graph/bridge``
    and ``graph/ontology``) and the key is recorded.
    """
    reader = known_reader(store)
    releases = view_releases(reader, releases)
    key = view_key_of(reader, releases)
    rows = reader.select(_VIEW_KEY)
    if rows and rows[0]["k"].value == key:
        return key
    store.drop_graph(G_VIEW)
    for path in knowledge_files():
        query = bind_releases(path.read_text(encoding="utf-8"), releases)
        store.update(as_insert(query, G_VIEW))
    store.update(f'INSERT DATA {{ GRAPH <{G_VIEW}> {{ <{G_VIEW}> tg:viewKey "{key}" }} }}')
    return key


NO_RELEASE = TG.NoReleaseLoaded
"""Object of ``tg:inRelease`` of a technique cited without a loaded release (ontology/derivation.ttl)."""
TECHNIQUE_SOURCES = frozenset({"attack-enterprise", "atlas"})
"""The sources whose releases resolve the techniques the mappings name (queries/derive-knowledge/05)."""


def unresolved_files() -> list[Path]:
    """The CONSTRUCT queries of the view without knowledge (``queries/derive-unresolved/*.rq``)."""
    return stage_files(queries_dir() / "derive-unresolved")


def unresolved_view(store: Store) -> None:
    """Add to ``graph/view``, for an analysis without a loaded ATT&CK / ATLAS release, the citations of the
    view without knowledge: each bridge mapping cites the technique it names with ``tg:inRelease
    tg:NoReleaseLoaded`` (queries/derive-unresolved), so the stage applies the mappings under the same asset
    classes and conditions as with a release. Nothing is checked (revocation, deprecation) and nothing is added
    (names, mitigations, D3FEND, detections, maturity): those come from releases. What else the view holds
    (CAPEC links, D3FEND) is kept; citations left by an analysis with releases that are no longer loaded are
    removed first."""
    g = NamedNode(G_VIEW)
    for p in ("citesTechnique", "inRelease", "replacesTechnique"):  # on mappings only (derive-knowledge/05)
        if isinstance(store, EmbeddedStore):  # (graph/view is never deferred)
            ox = store.unsettled_oxigraph()
            for q in list(ox.quads_for_pattern(None, NamedNode(TG[p]), None, g)):
                ox.remove(q)
        else:
            store.update(f"DELETE {{ GRAPH {g} {{ ?m tg:{p} ?o }} }} WHERE {{ GRAPH {g} {{ ?m tg:{p} ?o }} }}")
    cite_unresolved(store, {})


def cite_unresolved(store: Store, releases: Mapping[str, str]) -> None:
    """Add to ``graph/view`` the unresolved citations (``tg:inRelease tg:NoReleaseLoaded``) of the bridge
    mappings whose technique's source has no release in ``releases`` (queries/derive-unresolved): every mapping
    when neither ATT&CK nor ATLAS is loaded, the ATLAS mappings when only ATT&CK is, and the reverse (issue 13:
    with one of the two loaded, the other's mappings cited nothing and were dropped silently)."""
    for path in unresolved_files():
        query = bind_releases(path.read_text(encoding="utf-8"), releases)
        if isinstance(store, EmbeddedStore):  # reads graph/bridge only: without loading deferred text
            _add_construct(store, query, G_VIEW)
        else:
            store.update(as_insert(query, G_VIEW))


def newest_releases(store: Store) -> dict[str, str]:
    """Source name → graph IRI of the newest loaded release, for the sources of :data:`SOURCES` (as
    :func:`~threatgraph.knowledge.releases.newest_release` of each, from one read of the records)."""
    from threatgraph.knowledge.releases import SOURCE_ALIASES, releases

    recorded = releases(known_reader(store))  # sorted by source, then version
    out: dict[str, str] = {}
    for src in SOURCES:
        found = [r.graph for r in recorded if r.source == SOURCE_ALIASES.get(src, src)]
        if found:
            out[src] = found[-1]
    return out


def view_releases(store: Store, releases: Mapping[str, str]) -> dict[str, str]:
    """``releases`` with the newest loaded CAPEC release (the knowledge view reads it; the stage does not)."""
    from threatgraph.knowledge.releases import newest_release

    out = dict(releases)
    capec = newest_release(store, "capec")
    if capec is not None and "capec" not in out:
        out["capec"] = capec
    return out


def bind_releases(query: str, releases: Mapping[str, str]) -> str:
    """Replace the ``graph/newest/<source>`` placeholders by release graph IRIs (validated as IRIs)."""
    for src in VIEW_SOURCES:
        target = releases.get(src, NO_GRAPH)
        query = query.replace(f"<{NEWEST_PREFIX}{src}>", str(NamedNode(target)))
    return query


def as_insert(query: str, graph: str) -> str:
    """The CONSTRUCT ``query`` as a SPARQL Update inserting its template into ``graph``.

    >>> print(as_insert("# c\\nCONSTRUCT { ?s a ?o }\\nWHERE { GRAPH <urn:g> { ?s a ?o } }", "urn:out"))
    # c
    INSERT { GRAPH <urn:out> { ?s a ?o } }
    WHERE { GRAPH <urn:g> { ?s a ?o } }
    """
    start = query.index("CONSTRUCT {")
    end = query.index("}\nWHERE", start)
    template = query[start + len("CONSTRUCT {") : end]
    rest = query[end + len("}\nWHERE") :]
    return f"{query[:start]}INSERT {{ GRAPH {NamedNode(graph)} {{{template}}} }}\nWHERE{rest}"


def run_stage(
    store: Store,
    releases: Mapping[str, str] | None = None,
    files: Sequence[Path] | None = None,
    *,
    findings: Iterable[str] | None = None,
    python: bool | None = None,
    cores: Sequence[FindingCore] | None = None,
    rules: Sequence[Rule] | None = None,
) -> StageResult:
    """Run every stage query against ``store``; their triples go into ``graph/findings``.

    ``python``: on the embedded (pyoxigraph) store the heaviest steps run as Python over the store's indexes
    (:class:`threatgraph.analysis.stage_python.PythonStage`: 07-reduction-facts, 10-techniques, 15-reduced-by,
    51-coverage; the same quads as their ``.rq`` files, which stay the specification). ``None`` (default): so
    wherever the store allows it; ``False``: every step as SPARQL; ``True``: Python, or :class:`StoreError`
    when the store is not embedded.

    A query holding the line :data:`SCOPED_MARK` (every pattern names its graph) runs as a SPARQL
    Update (``INSERT … WHERE``), so its triples never pass through Python (measured at 1 k elements:
    3.1 s → 1.6 s for the whole stage); those triples are not counted in ``StageResult.triples``
    (counting the finding graph before and after cost 0.6 s at 10 k elements). Other queries
    (patterns over the union default graph) run as CONSTRUCT. ``findings``: the IRIs of every
    finding, when the caller has them (else they are read from the store).

    ``cores`` and ``rules``: every rule finding and the rules that wrote them (the engine's, issue 14), when
    ``graph/findings`` holds only them and the rules (an analysis of the engine). On the embedded store the stage
    then reads the findings from them and never loads the deferred finding graph (``EmbeddedStore.defer``):
    the steps run in Python (31-countermeasures-assets and 50-controls too), the scratch graph's steps run as
    CONSTRUCTs over the model and knowledge graphs, and what the stage writes into ``graph/findings`` is deferred
    text (the same triples).
    """
    known = cores is not None and rules is not None and files is None and python is not False
    fast = None
    if python is not False:
        from threatgraph.analysis.stage_python import PythonStage

        fast = PythonStage.of(store, cores if known else None)
        if fast is None and python:
            raise StoreError("the Python steps of the technique stage need the embedded (pyoxigraph) store")
    in_memory = fast is not None and fast.cores is not None
    rel = dict(releases) if releases is not None else newest_releases(store)
    result = StageResult(releases=rel)
    if rel:
        ensure_view(store, rel)  # what the knowledge says of the cited techniques (graph/view)
    if not TECHNIQUE_SOURCES & rel.keys():
        unresolved_view(store)  # no ATT&CK / ATLAS release: each mapping cites its own technique, unresolved
    else:
        cite_unresolved(store, rel)  # the mappings of a source without a loaded release (e.g. ATLAS), unresolved
    _drop_stage(store)
    for path in files if files is not None else stage_files():
        if fast is not None and fast.takes(path):
            fast.run(path)
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise RuleError(f"cannot read {path}: {err}") from err
        graph = G_STAGE if text.startswith(STAGE_MARK) else G_FINDINGS
        if fast is not None:
            fast.before_sparql(text, graph == G_FINDINGS)
        query = bind_releases(text, rel)
        if in_memory and graph == G_STAGE and fast is not None and fast.shipped(path):
            # a shipped scratch step reads the model, its closure, the bridge (and, over the union graph, nothing
            # the rule findings hold): without loading the deferred finding graph, as an update of the store itself
            # when every pattern names its graph, else as a CONSTRUCT
            if SCOPED_MARK in text.splitlines():
                _update_unsettled(cast(EmbeddedStore, store), as_insert(query, graph))
            else:
                _add_construct(store, query, G_STAGE)
                result.triples[path.name] = 0
            continue
        if SCOPED_MARK in text.splitlines():
            store.update(as_insert(query, graph))
            continue
        g = NamedNode(graph)
        quads = store.construct(query)
        store.add_quads([Quad(q.subject, q.predicate, q.object, g) for q in quads])
        result.triples[path.name] = len(quads) if graph == G_FINDINGS else 0
    _drop_stage(store)
    if fast is not None and files is None:
        result.memory = fast.memory
    apps = applications_in(result.memory) if result.memory is not None else None
    result.applications = apps if apps is not None else read_applications(store)
    mitigated: dict[str, list[str]] | None = None
    if in_memory and cores is not None and rules is not None:
        facts = {r.id: r.mitigated_by for r in rules if r.mitigated_by}
        mitigated = {}  # the SELECT _FACT_MITIGATED's rows: finding → its rule's tg:mitigatedByFact, distinct
        for c in cores:
            for x in facts.get(c.rule_id, ()):
                got = mitigated.setdefault(c.iri, [])
                if x not in got:
                    got.append(x)
        findings = list(dict.fromkeys(c.iri for c in cores))
    result.triples["control status"] = derive_control_status(
        store, result.finding_status, applications=result.applications, findings=findings,
        written=result.memory.control if result.memory is not None else None,
        implemented=fast.implemented if in_memory and fast is not None else None,
        covered=fast.covered if in_memory and fast is not None else None,
        mitigated=mitigated,
    )
    if (result.memory is not None and fast is not None and in_memory and mitigated is not None
            and _MEMORY_WRITERS <= fast.ran):
        # everything else the stage wrote into graph/findings, for findings_of (issue 14: no read-back)
        written = fast.written
        fact_p = TG.mitigatedByFact
        for f, xs in mitigated.items():
            if xs:
                props = written.setdefault(f, {})
                props[fact_p] = [NamedNode(x) for x in xs]
        result.memory.written = written
    return result


_MEMORY_WRITERS = frozenset({"31-countermeasures-assets.rq", "50-controls.rq", "51-coverage.rq"})
"""The steps whose writes into graph/findings :attr:`StageMemory.written` holds (run in Python with the rule
findings in memory)."""


# Applicable mitigations depend on the technique only: read per technique, not per application (at 10 k
# elements the per-application join returned several hundred thousand rows).
_TECH_MITIGATIONS = f"SELECT ?t ?m WHERE {{ GRAPH <{G_VIEW}> {{ ?t tg:applicableMitigation ?m }} }}"
_APP_IMPLEMENTED = f"SELECT ?app ?m WHERE {{ GRAPH <{G_FINDINGS}> {{ ?app tg:implementedMitigation ?m }} }}"
_COVERED = f"SELECT DISTINCT ?f WHERE {{ GRAPH <{G_FINDINGS}> {{ ?f tg:coveredBy ?c }} }}"
_FINDINGS = f"SELECT ?f WHERE {{ GRAPH <{G_FINDINGS}> {{ ?f a tg:Finding }} }}"
_FACT_MITIGATED = f"""SELECT ?f ?x WHERE {{ GRAPH <{G_FINDINGS}> {{
  ?r tg:mitigatedByFact ?x . ?f tg:byRule ?r ; a tg:Finding }} }}"""


def application_status(applicable: set[str], implemented: set[str]) -> str:
    """Control status of one technique application (docs/risk.md).

    Mitigated: every applicable ATT&CK / ATLAS mitigation is implemented, or the technique has none and
    one of its D3FEND countermeasures is; partly mitigated: something is implemented; else unmitigated.

    >>> application_status({"M1", "M2"}, {"M1", "M2"}), application_status({"M1", "M2"}, {"M1"})
    ('Mitigated', 'PartlyMitigated')
    >>> application_status(set(), {"D3-X"}), application_status({"M1"}, set())
    ('Mitigated', 'Unmitigated')
    """
    if (applicable and applicable <= implemented) or (not applicable and implemented):
        return "Mitigated"
    return "PartlyMitigated" if implemented else "Unmitigated"


def finding_status(app_statuses: list[str], covered: bool) -> str:
    """Control status of a finding from its applications' statuses and category coverage (docs/risk.md).

    >>> finding_status(["Mitigated", "Mitigated"], False), finding_status(["Mitigated", "Unmitigated"], False)
    ('Mitigated', 'PartlyMitigated')
    >>> finding_status(["Unmitigated"], True), finding_status([], True), finding_status([], False)
    ('PartlyMitigated', 'Mitigated', 'Unmitigated')
    """
    if not app_statuses:
        return "Mitigated" if covered else "Unmitigated"
    if all(s == "Mitigated" for s in app_statuses):
        return "Mitigated"
    if covered or any(s != "Unmitigated" for s in app_statuses):
        return "PartlyMitigated"
    return "Unmitigated"


def derive_control_status(
    store: Store,
    finding_statuses: dict[str, str] | None = None,
    *,
    applications: Applications | None = None,
    findings: Iterable[str] | None = None,
    written: dict[str, str] | None = None,
    implemented: Mapping[str, set[str]] | None = None,
    covered: set[str] | None = None,
    mitigated: Mapping[str, Sequence[str]] | None = None,
) -> int:
    """Write ``tg:controlStatus`` on every technique application and finding; return the triple count.

    The facts come from SPARQL SELECTs over ``graph/findings`` (the applications, see
    :func:`read_applications`, unless given; applicable mitigations per technique; implemented ones
    from 50-controls.rq; category coverage from 51-coverage.rq); the set arithmetic is
    :func:`application_status` and :func:`finding_status`. A finding of a rule with ``mitigated-by`` facts
    (tg:mitigatedByFact on the rule) is tg:Mitigated and carries those facts itself. ``findings``: every finding IRI,
    when the caller has them. ``finding_statuses``, when given, receives finding IRI → status IRI; ``written``, when
    given, receives the subject IRI → status IRI of every quad written (applications and findings).

    ``implemented`` (application IRI → values of its ``tg:implementedMitigation``), ``covered`` (the findings with a
    ``tg:coveredBy``) and ``mitigated`` (finding → its rule's ``tg:mitigatedByFact`` IRIs), when all three are given
    with ``findings`` and ``applications`` (what the stage wrote, kept in memory): nothing is read from
    ``graph/findings`` and, on the embedded store, the triples are deferred (``EmbeddedStore.defer``) like the rest
    of the finding graph.
    """
    apps = applications if applications is not None else read_applications(store)
    memory = (implemented is not None and covered is not None and mitigated is not None and findings is not None
              and applications is not None)
    by_technique: dict[str, set[str]] = {}
    for r in known_reader(store).select(_TECH_MITIGATIONS):  # graph/view
        by_technique.setdefault(r["t"].value, set()).add(r["m"].value)
    if implemented is None or not memory:
        implemented = {}
        for r in store.select(_APP_IMPLEMENTED):
            implemented.setdefault(r["app"].value, set()).add(r["m"].value)
    none: set[str] = set()
    app_status: dict[str, str] = {}
    # technique (by the id of its term: applications_in gives one term per technique, and every term stays alive
    # in apps) → status of its applications without implemented mitigations
    plain: dict[int, str] = {}
    if not implemented:  # (no application has implemented mitigations: one status per technique term)
        for t, _rel in apps.technique.values():
            if id(t) not in plain:
                plain[id(t)] = application_status(by_technique.get(t.value, none), none)
        app_status = {a: plain[id(t)] for a, (t, _rel) in apps.technique.items()}
    for a, (t, _rel) in (apps.technique.items() if implemented else ()):  # (one pass: tables lie apart in memory)
        impl = implemented.get(a) if implemented else None
        if impl is None:
            st = plain.get(id(t))
            if st is None:
                st = plain[id(t)] = application_status(by_technique.get(t.value, none), none)
        else:
            st = application_status(by_technique.get(t.value, none), impl)
        app_status[a] = st
    if covered is None or not memory:
        covered = {r["f"].value for r in store.select(_COVERED)}
    # findings of a mitigated counterpart rule (header mitigated-by): the declared fact mitigates the threat
    by_fact: dict[str, list[NamedNode]] = {}
    if mitigated is not None and memory:
        for f, xs in mitigated.items():
            by_fact[f] = [NamedNode(x) for x in xs]
    else:
        for r in store.select(_FACT_MITIGATED):
            by_fact.setdefault(r["f"].value, []).append(NamedNode(r["x"].value))
    all_findings = findings if findings is not None else (r["f"].value for r in store.select(_FINDINGS))
    defer = memory and isinstance(store, EmbeddedStore)
    if defer:
        return _control_text(cast(EmbeddedStore, store), apps, app_status, covered, by_fact, all_findings,
                             finding_statuses, written)
    g = NamedNode(G_FINDINGS)
    p = NamedNode(TG.controlStatus)
    fact_p = NamedNode(TG.mitigatedByFact)
    nodes = {name: NamedNode(TG[name]) for name in ("Mitigated", "PartlyMitigated", "Unmitigated")}
    quads = [Quad(NamedNode(a), p, nodes[s], g) for a, s in app_status.items()]
    wrote: list[str] = []
    statuses: list[str] = []
    for f in all_findings:
        fapps = apps.of_finding.get(f, [])
        facts = by_fact.get(f)
        if facts:
            st = "Mitigated"
            quads.extend(Quad(NamedNode(f), fact_p, x, g) for x in facts)
        else:
            st = finding_status([app_status.get(a, "Unmitigated") for a in sorted(fapps)], f in covered)
        quads.append(Quad(NamedNode(f), p, nodes[st], g))
        if written is not None:
            wrote.append(f)
            statuses.append(TG[st])
        if finding_statuses is not None:
            finding_statuses[f] = TG[st]
    store.add_quads(quads)
    if written is not None:
        written.update((a, TG[s]) for a, s in app_status.items())
        written.update(zip(wrote, statuses, strict=True))
    return len(quads)


def _control_text(
    store: EmbeddedStore,
    apps: Applications,
    app_status: dict[str, str],
    covered: set[str],
    by_fact: dict[str, list[NamedNode]],
    all_findings: Iterable[str],
    finding_statuses: dict[str, str] | None,
    written: dict[str, str] | None,
) -> int:
    """The quads of :func:`derive_control_status` (the same ones) deferred as N-Triples text; the applications'
    and findings' IRIs are those the stage and the engine wrote (checked), the facts' are checked here."""
    p = str(NamedNode(TG.controlStatus))
    fact_p = str(NamedNode(TG.mitigatedByFact))
    status_iri = {name: TG[name] for name in ("Mitigated", "PartlyMitigated", "Unmitigated")}
    obj = {name: f"{p} <{iri}> .\n" for name, iri in status_iri.items()}
    # status → the applications that have it, statuses in the order of their first application (one joined text each)
    statuses = list(dict.fromkeys(app_status.values()))
    by_status: dict[str, list[str]] = (
        {statuses[0]: list(app_status)} if len(statuses) == 1
        else {s: [a for a, sa in app_status.items() if sa == s] for s in statuses})
    lines = ["<" + f"> {obj[s]}<".join(group) + f"> {obj[s]}" for s, group in by_status.items()]
    n = len(app_status)
    of_finding = apps.of_finding
    # a finding's status depends only on which statuses its applications have (finding_status): with one status
    # for every application (no knowledge: all Unmitigated), on whether it has applications and is covered (every
    # application of of_finding has a technique, so a status: Applications)
    uniform = next(iter(by_status)) if len(by_status) == 1 else None
    status_of: dict[tuple[bool, bool], str] = {
        (has, cov): finding_status([uniform] if has and uniform is not None else [], cov)
        for has in (False, True) for cov in (False, True)}
    found: dict[str, str] = {}  # finding → its status IRI (the findings are distinct: a set of quads)
    append = lines.append
    for f in all_findings:
        facts = by_fact.get(f) if by_fact else None
        if facts:
            st = "Mitigated"
            lines.extend(f"<{f}> {fact_p} {x} .\n" for x in facts)
            n += len(facts)
        else:
            fapps = of_finding.get(f)  # (finding_status does not depend on the applications' order)
            if not fapps or uniform is not None:
                st = status_of[(bool(fapps), f in covered)]
            else:
                st = finding_status([*{app_status.get(a, "Unmitigated") for a in fapps}], f in covered)
        append(f"<{f}> {obj[st]}")
        n += 1
        found[f] = status_iri[st]
    if finding_statuses is not None:
        finding_statuses.update(found)
    if written is not None:  # the applications, then the findings
        written.update(zip(app_status, map(status_iri.__getitem__, app_status.values()), strict=True))
        written.update(found)
    store.defer("".join(lines), G_FINDINGS)
    return n


# -- loading knowledge on the fly (analyze --knowledge) ------------------------------------------------
SHARED_FILES: tuple[tuple[str, str], ...] = (
    ("attack", "attack/enterprise-attack-18.1.stix20.json"),
    ("atlas", "atlas/ATLAS.yaml"),
    ("d3fend", "d3fend/d3fend-protege-1.2.0.ttl"),
    ("capec", "capec/stix-capec-3.9.json"),
)
"""What ``--knowledge shared`` loads from the pinned reference data: ATT&CK 18.1, ATLAS, D3FEND, and
CAPEC 3.9 when the data directory holds it (:data:`OPTIONAL_SHARED`)."""
OPTIONAL_SHARED = frozenset({"capec"})
"""Kinds of :data:`SHARED_FILES` that ``--knowledge shared`` skips when their file is missing (CAPEC only
serves the declared-threat comparison; the analysis does not need it)."""


def knowledge_kind(path: str) -> str:
    """The import kind of a knowledge file, from its name.

    >>> [knowledge_kind(p) for p in ("x/ATLAS.yaml", "d3fend-protege-1.2.0.ttl", "stix-capec-3.9.json", "enterprise-attack-18.1.json")]
    ['atlas', 'd3fend', 'capec', 'attack']
    """
    name = Path(path).name.lower()
    if name.endswith((".yaml", ".yml")) or ("atlas" in name and name.endswith(".json")):
        return "atlas"
    if name.endswith((".ttl", ".owl", ".ttl.gz")) or "d3fend" in name:
        return "d3fend"
    if "capec" in name:
        return "capec"
    if name.endswith((".json", ".json.gz")):
        return "attack"
    raise InputError(
        f"{path}: cannot tell which knowledge source this file is",
        hint="pass an ATT&CK STIX bundle (*.json), ATLAS.yaml, the D3FEND ontology (*.ttl) or a CAPEC bundle",
    )


def knowledge_paths(specs: Sequence[str]) -> list[tuple[str, str]]:
    """(kind, path) pairs for ``--knowledge`` arguments: ``shared`` (the pinned data) or file paths."""
    out: list[tuple[str, str]] = []
    for spec in specs:
        if spec == "shared":
            d = shared_data_dir()
            if d is None or not d.is_dir():
                raise InputError(
                    "--knowledge shared: the pinned reference data directory is missing",
                    hint=shared_data_hint() + " (analyze --store DIR)",
                )
            out.extend((kind, str(d / rel)) for kind, rel in SHARED_FILES
                       if kind not in OPTIONAL_SHARED or (d / rel).is_file())
        else:
            if not Path(spec).is_file():
                raise InputError(f"--knowledge {spec}: no such file", hint="pass `shared` or paths of knowledge files")
            out.append((knowledge_kind(spec), spec))
    return out


def load_knowledge(store: Store, specs: Sequence[str]) -> list[str]:
    """Import the knowledge files named by ``specs`` into ``store``; return the release graphs."""
    from threatgraph.knowledge.releases import load_release

    return [load_release(store, kind, path).release.graph for kind, path in knowledge_paths(specs)]


# -- D3FEND coverage of ATT&CK (the same inference as queries/derive-knowledge/30-countermeasures-attack.rq) --
def d3fend_pattern(inherit: bool = True) -> str:
    """The D3FEND graph pattern of ``30-countermeasures-attack.rq`` (binds ``?id`` → ``?c``, ``?did``).

    With ``inherit=False`` a sub-technique does not inherit its parent technique's artifacts
    (``?d3t rdfs:subClassOf* ?tx`` becomes ``?d3t rdfs:subClassOf? ?tx``, i.e. only the technique's own
    restrictions, the same hop count the countermeasure side uses).
    """
    text = (queries_dir() / "derive-knowledge" / "30-countermeasures-attack.rq").read_text(encoding="utf-8")
    start = text.index(f"GRAPH <{NEWEST_PREFIX}d3fend> {{")
    end = text.index("\n  }\n", start)
    block = text[start : end + 4]
    if not inherit:
        block = block.replace("?d3t rdfs:subClassOf* ?tx", "?d3t rdfs:subClassOf? ?tx")
    return block


@dataclass(frozen=True)
class D3fendCoverage:
    """Share of the active techniques of an ATT&CK release that get at least one D3FEND countermeasure."""

    active: int
    covered: int
    per_technique: dict[str, int]

    @property
    def share(self) -> float:
        return self.covered / self.active if self.active else 0.0


def d3fend_coverage(store: Store, attack_release: str, d3fend_release: str, *, inherit: bool = True) -> D3fendCoverage:
    """Active techniques of ``attack_release`` with at least one inferred D3FEND countermeasure."""
    from threatgraph.knowledge.releases import active_ids

    active = active_ids(store, attack_release)
    query = "SELECT ?id (COUNT(DISTINCT ?c) AS ?n) WHERE {\n  " + d3fend_pattern(inherit) + "\n} GROUP BY ?id"
    rows = store.select(bind_releases(query, {"d3fend": d3fend_release}))
    per = {r["id"].value: int(r["n"].value) for r in rows if r["id"].value in active}
    return D3fendCoverage(len(active), len(per), per)
