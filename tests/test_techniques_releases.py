"""Techniques cited only when active in the newest release; revoked ones replaced (hand-made knowledge).

Two tiny "ATT&CK" release graphs and a bridge mapping are built by hand so that each case is explicit:
a technique revoked in the newer release is replaced by its successor, a deprecated one is dropped, an
active one is kept, and the older release is never read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyoxigraph import Literal, NamedNode, Quad

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import Finding, read_findings
from threatgraph.analysis.techniques import run_stage
from threatgraph.knowledge import bridgegraph
from threatgraph.store import Store, open_store
from threatgraph.terms import ATTACK, KB, RDF, graph_iri

OLD = graph_iri("release/attack-enterprise/1.0")
NEW = graph_iri("release/attack-enterprise/2.0")
MODEL = """@prefix ex: <https://example.org/rel#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
ex:api a tgml:InferenceEndpoint ; tg:publiclyExposed true .
"""
BRIDGE = """@prefix m: <https://w3id.org/threatgraph/mapping/> .
@prefix attack: <https://w3id.org/threatgraph/attack/> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix stride: <https://w3id.org/threatgraph/stride#> .
@prefix dct: <http://purl.org/dc/terms/> .
m:T9001 a tg:TechniqueMapping ; tg:technique attack:T9001 ; tg:targetsAsset tgml:InferenceEndpoint ;
    tg:realizes stride:Tampering ; tg:justification "active" ; dct:source "test" .
m:T9002 a tg:TechniqueMapping ; tg:technique attack:T9002 ; tg:targetsAsset tgml:InferenceEndpoint ;
    tg:realizes stride:Tampering ; tg:justification "revoked in 2.0 by T9003" ; dct:source "test" .
m:T9004 a tg:TechniqueMapping ; tg:technique attack:T9004 ; tg:targetsAsset tgml:InferenceEndpoint ;
    tg:realizes stride:Tampering ; tg:justification "deprecated in 2.0" ; dct:source "test" .
m:T9005 a tg:TechniqueMapping ; tg:technique attack:T9005 ; tg:targetsAsset tgml:InferenceEndpoint ;
    tg:realizes stride:Tampering ; tg:exposedWhen tg:untrustedOrigin ; tg:justification "not exposed" ; dct:source "test" .
m:T9006 a tg:TechniqueMapping ; tg:technique attack:T9006 ; tg:targetsAsset tgml:InferenceEndpoint ;
    tg:realizes stride:Tampering ; tg:justification "only in 1.0" ; dct:source "test" .
"""


def _tech(g: str, tid: str, *extra: tuple[str, NamedNode | Literal]) -> list[Quad]:
    t = NamedNode(ATTACK[tid])
    q = [Quad(t, NamedNode(RDF.type), NamedNode(KB.Technique), NamedNode(g)),
         Quad(t, NamedNode(KB.attackId), Literal(tid), NamedNode(g))]
    q += [Quad(t, NamedNode(KB[p]), o, NamedNode(g)) for p, o in extra]
    return q


def analysed(tmp_path: Path) -> tuple[Store, list[Finding]]:
    model = tmp_path / "m.ttl"
    model.write_text(MODEL, encoding="utf-8")
    store = open_store()
    # no release recorded and no shipped mappings (they would be cited unresolved): categories only
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bridgegraph, "mapping_files", lambda directory=None: [])
        Engine(store).analyze([str(model)])
    store.load(BRIDGE, "text/turtle", graph_iri("bridge"))
    quads = []
    for tid in ("T9001", "T9002", "T9004", "T9005", "T9006"):
        quads += _tech(OLD, tid)
    quads += _tech(NEW, "T9001") + _tech(NEW, "T9003") + _tech(NEW, "T9005")
    quads += _tech(NEW, "T9002", ("revoked", Literal(True)), ("revokedBy", NamedNode(ATTACK["T9003"])))
    quads += _tech(NEW, "T9004", ("deprecated", Literal(True)))
    store.add_quads(quads)
    run_stage(store, {"attack-enterprise": NEW})
    return store, read_findings(store, labels_of(store))


def test_newest_release_only(tmp_path: Path) -> None:
    _, findings = analysed(tmp_path)
    techs = {t.id: t for f in findings for t in f.techniques}
    assert set(techs) == {"T9001", "T9003"}
    assert techs["T9003"].replaces == "T9002"  # revoked in 2.0: cited as its replacement
    assert techs["T9001"].replaces == "" and techs["T9001"].release == "attack-enterprise/2.0"
    # negatives: deprecated (T9004), only in the older release (T9006), exposure not met (T9005)
    assert not {"T9002", "T9004", "T9005", "T9006"} & set(techs)


def test_older_release_as_newest(tmp_path: Path) -> None:
    store, _ = analysed(tmp_path)
    store.drop_graph(graph_iri("findings"))
    Engine(store).run_rules()
    run_stage(store, {"attack-enterprise": OLD})
    techs = {t.id for f in read_findings(store, labels_of(store)) for t in f.techniques}
    assert techs == {"T9001", "T9002", "T9004", "T9006"}
