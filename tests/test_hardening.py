"""Knowledge-import hardening of issue 11: disk full, unrecorded graphs, kind before digest, STIX dates."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from pyoxigraph import Literal, Quad

from threatgraph.cli import main
from threatgraph.knowledge.rdfbuild import DCT_MODIFIED, XSD_DATETIME, NQuadsWriter
from threatgraph.knowledge.releases import STAGING_PREFIX, load_release, newest_release, releases
from threatgraph.knowledge.stix import parse_attack
from threatgraph.resources import shared_data_dir
from threatgraph.store import EmbeddedStore, open_store

pytestmark = pytest.mark.shared

SHARED = shared_data_dir() or Path("/nonexistent")
ICS17 = SHARED / "attack" / "ics-attack-17.1.json"
ICS18 = SHARED / "attack" / "ics-attack-18.1.json"
ATLAS = SHARED / "atlas" / "ATLAS.yaml"


def _digest(location: Path) -> list[str]:
    from pyoxigraph import Store

    return sorted(str(q) for q in Store.read_only(str(location)).quads_for_pattern(None, None, None, None))


def test_disk_full_during_import_exits_3_and_keeps_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    st = tmp_path / "store"
    assert main(["import", "attack", str(ICS18), "--store", str(st), "--quiet"]) == 0
    before = _digest(st)
    original = EmbeddedStore.add_quads

    def full(self: EmbeddedStore, quads: Iterable[Quad]) -> None:
        def some() -> Iterable[Quad]:
            for n, q in enumerate(quads):
                if n == 3000:
                    raise OSError(errno.ENOSPC, "No space left on device")
                yield q
        original(self, some())

    original_text = EmbeddedStore.add_nquads

    def full_text(self: EmbeddedStore, chunks: Iterable[bytes], *, trusted: bool = False) -> None:
        def some() -> Iterable[bytes]:  # the ATT&CK import writes N-Quads text
            for n, chunk in enumerate(chunks):
                if n == 1:
                    raise OSError(errno.ENOSPC, "No space left on device")
                yield chunk
        original_text(self, some(), trusted=trusted)

    monkeypatch.setattr(EmbeddedStore, "add_quads", full)
    monkeypatch.setattr(EmbeddedStore, "add_nquads", full_text)
    monkeypatch.setattr(NQuadsWriter, "CHUNK", 1000)
    capsys.readouterr()
    assert main(["import", "attack", str(ICS17), "--store", str(st), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "No space left on device" in err and "store is as it was" in err and "Traceback" not in err
    assert _digest(st) == before
    monkeypatch.setattr(EmbeddedStore, "add_quads", original)  # the disk has room again: the import works
    monkeypatch.setattr(EmbeddedStore, "add_nquads", original_text)
    assert main(["import", "attack", str(ICS17), "--store", str(st), "--quiet"]) == 0
    assert [i.version for i in releases(open_store(str(st)))] == ["17.1", "18.1"]


def test_unrecorded_staging_graph_is_invisible_to_readers() -> None:
    store = EmbeddedStore()
    load_release(store, "attack", str(ICS18))
    visible = store.select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")[0]["n"].value
    # what a killed import leaves: quads of a newer release in a staging graph, never recorded
    store.load("<urn:x:leak> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://w3id.org/threatgraph/kb#Technique> .", "application/n-triples",
               STAGING_PREFIX + "killed")
    assert not store.ask("ASK { <urn:x:leak> ?p ?o }")
    assert not store.ask("ASK { GRAPH ?g { <urn:x:leak> ?p ?o } }")
    assert store.select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")[0]["n"].value == visible
    assert not any(str(q.subject) == "<urn:x:leak>" for q in store.quads())  # serve copies these
    assert [i.version for i in releases(store)] == ["18.1"]
    assert newest_release(store, "attack-ics") == "https://w3id.org/threatgraph/graph/release/attack-ics/18.1"
    # a release graph cut short before its record (marked kb:importPending) is hidden too
    pending = "https://w3id.org/threatgraph/graph/release/attack-ics/99.0"
    store.load("<urn:x:cut> <urn:p> <urn:o> .", "application/n-triples", pending)
    assert store.ask("ASK { <urn:x:cut> ?p ?o }")  # not marked: an ordinary graph
    store.update(f"INSERT DATA {{ GRAPH <https://w3id.org/threatgraph/graph/releases> {{ <{pending}> "
                 "kb:importPending true } }")
    assert not store.ask("ASK { <urn:x:cut> ?p ?o }") and not store.ask("ASK { GRAPH ?g { <urn:x:cut> ?p ?o } }")
    assert not any(str(q.subject) == "<urn:x:cut>" for q in store.quads())
    # positive: the same triple in an ordinary graph is seen
    store.load("<urn:x:leak> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://w3id.org/threatgraph/kb#Technique> .", "application/n-triples", "urn:g")
    assert store.ask("ASK { <urn:x:leak> ?p ?o }")
    # the next import drops the leftover
    load_release(store, "attack", str(ICS17))
    assert not any(g.startswith(STAGING_PREFIX) or g == pending for g in store.graph_names())


def test_kind_is_checked_before_the_digest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    st = str(tmp_path / "store")
    assert main(["import", "atlas", str(ATLAS), "--store", st, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["import", "attack", str(ATLAS), "--store", st, "--quiet"]) == 2  # not "already loaded"
    out, err = capsys.readouterr()
    assert "already loaded" not in out and "malformed JSON" in err
    assert main(["import", "atlas", str(ATLAS), "--store", st, "--quiet"]) == 0  # same kind: unchanged
    assert "already loaded" in capsys.readouterr().out


def _with_dates(tmp_path: Path, modified: str) -> tuple[Any, Path]:
    bundle = json.loads(ICS17.read_text(encoding="utf-8"))
    target = next(o for o in bundle["objects"] if o.get("type") == "attack-pattern")
    target["modified"] = modified
    path = tmp_path / "ics.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return target, path


@pytest.mark.parametrize(("modified", "typed"), [("2024-02-30T00:00:00.000Z", False), ("not a date", False),
                                                 ("2024-02-29T10:11:12.000Z", True)])
def test_stix_dates_are_typed_only_when_valid(tmp_path: Path, modified: str, typed: bool) -> None:
    target, path = _with_dates(tmp_path, modified)
    rel = parse_attack(path.read_bytes(), str(path), None, None)
    quads = list(rel.quads)
    from threatgraph.knowledge.rdfbuild import P_STIX_ID

    subject = next(q.subject for q in quads if q.predicate == P_STIX_ID and q.object == Literal(target["id"]))
    mods = [q.object for q in quads if q.subject == subject and q.predicate == DCT_MODIFIED]
    assert len(mods) == 1 and isinstance(mods[0], Literal) and mods[0].value == modified
    assert (mods[0].datatype == XSD_DATETIME) is typed
    assert ("ill-formed date (kept as text)" in rel.skipped) is (not typed)
