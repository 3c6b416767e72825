"""The one public analysis pipeline: ``threatgraph.analyze(models, knowledge=…, store=…) -> Analysis``.

The CLI (``analyze``), the server, ``push`` and the tests call it; commands only parse arguments and
render. Data flows down once: the model files are parsed and closed under the ontology (OWL 2 RL) once;
validation and the engine share both; the analysis itself always runs in a fresh **in-memory** store
holding the ontology, the model, its closure, the bridge mappings and — when threat knowledge is asked
for — the compiled knowledge view (:mod:`threatgraph.knowledge.view`), never the whole releases.

Where the knowledge comes from:

* ``knowledge=["shared"]`` or file paths: ATT&CK STIX, ATLAS.yaml, D3FEND, CAPEC files, imported on the
  first run and cached as a compiled view keyed by the files' digests;
* ``store="DIR"``: the releases imported there with ``threatgraph import`` (the store is opened
  read-only and never written unless ``save=True``);
* ``endpoint="URL"``: the releases of a remote SPARQL store; the analysis graphs are written back to
  it (the documented purpose of ``analyze --endpoint``).

``save=True`` writes the model, inferred, findings, ontology, bridge and knowledge-view graphs into ``store`` (one
transaction: the graphs are staged, then swapped in by one SPARQL update).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from threatgraph.analysis.engine import G_FINDINGS, G_INFERRED, G_MODEL, G_ONTOLOGY, Analysis, Engine, no_gc
from threatgraph.analysis.model import ModelLoad
from threatgraph.errors import InputError, ThreatgraphError
from threatgraph.store import Store, open_store
from threatgraph.terms import GRAPH, RDF, TG, graph_iri

if TYPE_CHECKING:
    from threatgraph.analysis.rules import Rule
    from threatgraph.analysis.validation import ValidationReport
    from threatgraph.knowledge.view import View

G_BRIDGE = graph_iri("bridge")
G_VIEW = graph_iri("view")
SAVED_GRAPHS: tuple[str, ...] = (G_ONTOLOGY, G_MODEL, G_INFERRED, G_FINDINGS, G_BRIDGE, G_VIEW)
"""The graphs an analysis leaves in a store it saves into (release graphs are never touched)."""


class ModelInvalid(ThreatgraphError):
    """The model has validation violations and ``force`` was not given (exit 1)."""

    exit_code = 1

    def __init__(self, report: ValidationReport, warnings: Sequence[str] = ()) -> None:
        n = len(report.violations)
        super().__init__(
            f"the model has {n} validation violation(s); refusing to analyse it",
            hint="fix them (see `threatgraph validate`), or pass --force to analyse anyway",
        )
        self.report = report
        self.warnings = list(warnings)
        """What the model loader noticed before validation (deviations of imported formats)."""


def open_knowledge_store(directory: str) -> Store:
    """Open an existing store directory read-only (``analyze --store``); InputError when it is not one."""
    from threatgraph.store.embedded import EmbeddedStore

    path = Path(directory).expanduser()
    if not path.is_dir() or not any(path.iterdir()):
        raise InputError(
            f"--store {directory}: no store at that directory",
            hint="import knowledge first (`threatgraph import attack --store DIR`), or check the path",
        )
    return EmbeddedStore(str(path), read_only=True)


def analyze(
    models: Sequence[str | Path],
    *,
    knowledge: Sequence[str] | None = None,
    store: str | None = None,
    endpoint: str | None = None,
    remote: Mapping[str, str | None] | None = None,
    save: bool = False,
    validate: bool = True,
    force: bool = False,
    extra_shapes: Sequence[str | Path] = (),
    rules: Sequence[Rule] | None = None,
    ontology_extra: Sequence[str | Path] = (),
    frameworks: Sequence[str] | None = None,
    view: View | None = None,
    ml_classes: str | Path | None = None,
) -> Analysis:
    """Analyse the system model files ``models``; see the module docstring for the options.
    ``frameworks``: ``("stride",)``, ``("linddun",)`` or both (LINDDUN then applies to every element);
    default: STRIDE everywhere, LINDDUN where personal data is handled.
    ``view``: a compiled knowledge view to read instead of ``knowledge`` or the store's newest releases
    (``diff-release --model`` analyses against a chosen, older release this way).
    ``ontology_extra``: a user's ontology extension files, loaded with the shipped ontology for the
    closure, validation and rules (``analyze --ontology``).
    ``ml_classes``: a user's ML phrase file for imported (non-RDF) models, tried before the shipped
    ``data/ml-classes.conf`` (``analyze --ml-classes``; docs/interchange.md).

    Raises :class:`ModelInvalid` (exit 1) when validation finds violations and ``force`` is False,
    :class:`~threatgraph.errors.InputError` (exit 2) for unreadable input.
    """
    with no_gc():
        return _analyze(models, knowledge, store, endpoint, remote or {}, save, validate, force, extra_shapes, rules,
                        ontology_extra, frameworks, view, ml_classes)


IMPORTED_PREFIX = "urn:threatgraph:import:"
"""The IRIs the importers give a converted model's resources (``urn:threatgraph:import:<format>:…``)."""


def imported_model(loaded: ModelLoad) -> bool:
    """Whether the model was converted from another tool's format (directly, or a Turtle file written by
    ``import-model``): its system node has an importer's IRI. Such a model is analysed despite validation
    violations (issue 12: a real model is never refused): the formats cannot state everything the shapes
    ask for, and the rules read an unstated control as not in place.

    >>> from pyoxigraph import NamedNode
    >>> t = (NamedNode("urn:threatgraph:import:tmt:1:system"), NamedNode(str(RDF.type)), NamedNode(str(TG.System)))
    >>> imported_model(ModelLoad([t], [])), imported_model(ModelLoad([], []))
    (True, False)
    """
    rdf_type, system = str(RDF.type), str(TG.System)
    return any(p.value == rdf_type and o.value == system and s.value.startswith(IMPORTED_PREFIX)
               for s, p, o in loaded.triples)


def _analyze(
    models: Sequence[str | Path],
    knowledge: Sequence[str] | None,
    store_dir: str | None,
    endpoint: str | None,
    remote: Mapping[str, str | None],
    save: bool,
    validate: bool,
    force: bool,
    extra_shapes: Sequence[str | Path],
    rules: Sequence[Rule] | None,
    ontology_extra: Sequence[str | Path] = (),
    frameworks: Sequence[str] | None = None,
    view: View | None = None,
    ml_classes: str | Path | None = None,
) -> Analysis:
    from threatgraph.analysis.fastclosure import model_closure
    from threatgraph.analysis.model import load_model_files
    from threatgraph.analysis.ontology import load_ontology

    if save and not store_dir:
        raise InputError("--save needs --store DIR (the store to write the analysis into)")
    loaded = load_model_files(models, ml_classes=ml_classes)
    onto = load_ontology(extra=ontology_extra)
    inferred = model_closure(onto, loaded)
    # the ontology, the model and its closure go into the in-memory analysis store once; validation reads
    # them there (compiled SHACL, no second store), before any knowledge is added
    mem = open_store()
    engine = Engine(mem, ontology=onto, rules=rules, frameworks=frameworks)
    inferred = engine.load(loaded, inferred)
    report = None
    if validate:
        from threatgraph.analysis.validation import validate_store

        report = validate_store(mem, extra_shapes=extra_shapes, model_files=loaded.files)
        if report.violations and not force and not imported_model(loaded):
            raise ModelInvalid(report, loaded.warnings)
    source: Store | None = None
    stamp: str | None = None
    from_manifest = False
    if endpoint:
        source = open_store(endpoint=endpoint, **remote)
    elif store_dir:
        from threatgraph.knowledge.view import store_stamp, view_of_manifest

        if view is None and not knowledge and not save:  # the store's manifest names its releases
            from_manifest, view = view_of_manifest(store_dir)
        if not from_manifest:
            stamp = store_stamp(Path(store_dir).expanduser())  # before opening: see write_manifest
            source = open_knowledge_store(store_dir)
    if view is None and knowledge:
        from threatgraph.knowledge.view import view_of_files

        view = view_of_files(knowledge)
    elif view is None and source is not None:
        from threatgraph.knowledge.view import view_of_store

        view = view_of_store(source)
        if store_dir and not save:  # the next analysis of this store need not open it
            from threatgraph.knowledge.view import newest_of_store, write_manifest

            write_manifest(store_dir, newest_of_store(source), stamp)
    if view is not None:
        from threatgraph.knowledge.view import load_view

        load_view(mem, view)
    analysis = engine.analyze(models, loaded=loaded, inferred=inferred, preloaded=True)
    analysis.validation = report
    if report is not None and report.violations and not force:  # an imported model (else refused above)
        analysis.warnings.append(
            f"the imported model leaves {len(report.violations)} fact(s) unstated that threatgraph's shapes ask "
            "for (its source format has no place for them, or the author left them out); analysed anyway, an "
            "unstated control counting as not in place: `threatgraph validate MODEL` lists them")
    analysis.knowledge_key = view.key if view is not None else ""
    if endpoint and source is not None:
        write_graphs(source, mem)
    elif save and store_dir:
        from threatgraph.store.embedded import EmbeddedStore

        close = getattr(source, "close", None)
        if callable(close):
            close()
        write_graphs(EmbeddedStore(str(Path(store_dir).expanduser())), mem)  # closed when it returns
        from threatgraph.knowledge.view import refresh_manifest

        refresh_manifest(store_dir)  # the write changed the store's files: record its releases again
    return analysis


def write_graphs(target: Store, mem: Store, graphs: Sequence[str] = SAVED_GRAPHS) -> None:
    """Replace ``graphs`` of ``target`` by those of the in-memory analysis store ``mem``.

    On an embedded store the graphs are first written under staging names, then swapped in by one
    SPARQL update (one transaction: a failure leaves the old analysis in place); a remote store gets
    each graph by the Graph Store protocol (or INSERT DATA), one graph at a time.
    """
    from pyoxigraph import NamedNode, Quad

    from threatgraph.store.embedded import EmbeddedStore

    if not isinstance(target, EmbeddedStore):
        for g in graphs:
            data = mem.dump(g, "application/n-triples")
            target.replace_graph(g, data, "application/n-triples")
        return
    import uuid

    staged: dict[str, str] = {g: f"{GRAPH}staging/{uuid.uuid4().hex}" for g in graphs}
    try:
        for g, tmp in staged.items():
            node = NamedNode(tmp)
            target.add_quads(Quad(q.subject, q.predicate, q.object, node) for q in mem.quads(g))
        ops = [f"DROP SILENT GRAPH <{g}> ; MOVE SILENT GRAPH <{tmp}> TO GRAPH <{g}>" for g, tmp in staged.items()]
        target.update(" ;\n".join(ops))
    except BaseException:
        for tmp in staged.values():
            target.drop_graph(tmp)
        raise
    flush = getattr(target, "flush", None)
    if callable(flush):
        flush()
