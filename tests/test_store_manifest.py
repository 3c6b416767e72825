"""``analyze --store DIR`` reads the store's manifest (issue 14): the releases it holds, recorded by
``threatgraph import`` with a stamp of the store's files, so that the analysis loads the cached view
without opening RocksDB; a stale, damaged or missing manifest (or view) falls back to opening the store,
with the same answers, and a store changed by anything else is never answered from the old manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from threatgraph.cli import main
from threatgraph.knowledge import view as view_mod
from threatgraph.knowledge.view import MANIFEST_NAME, read_manifest, store_stamp
from threatgraph.store.embedded import EmbeddedStore

pytestmark = pytest.mark.shared

ATLAS_GRAPH = "https://w3id.org/threatgraph/graph/release/atlas/5.6.0"


@pytest.fixture
def store_dir(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with ATLAS 5.6.0 imported by ``threatgraph import`` (views cached in a fresh cache)."""
    monkeypatch.setenv("THREATGRAPH_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "store"
    assert main(["import", "atlas", str(shared_data / "atlas/ATLAS.yaml"), "--store", str(d), "-q"]) == 0
    return d


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The on-disk stores opened (EmbeddedStore with a location) while the test runs."""
    seen: list[str] = []
    original = EmbeddedStore.__init__

    def spy(self: EmbeddedStore, location: str | None = None, **kw: Any) -> None:
        if location:
            seen.append(location)
        original(self, location, **kw)

    monkeypatch.setattr(EmbeddedStore, "__init__", spy)
    return seen


def _analyze(examples_dir: Path, store: Path, out: Path, *extra: str) -> dict[str, Any]:
    rc = main(["analyze", str(examples_dir / "rag-assistant.ttl"), "--store", str(store), "--format", "json",
               "--output", str(out), "--force", *extra])
    assert rc in (0, 1)
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def _techniques(doc: dict[str, Any]) -> set[str]:
    return {t["id"] for f in doc["findings"] for t in f["techniques"]}


def test_import_writes_a_current_manifest(store_dir: Path) -> None:
    assert read_manifest(store_dir) is not None
    [(graph, sha)] = read_manifest(store_dir) or [("", "")]
    assert graph == ATLAS_GRAPH and len(sha) == 64
    doc = json.loads((store_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert doc["stamp"] == store_stamp(store_dir)


def test_analysis_reads_the_manifest_without_opening_the_store(store_dir: Path, examples_dir: Path, tmp_path: Path,
                                                               opened: list[str]) -> None:
    fast = _analyze(examples_dir, store_dir, tmp_path / "fast.json")
    assert opened == []  # RocksDB never opened
    assert "AML.T0051" in _techniques(fast)
    # the same answers as the analysis that opens the store (no manifest)
    (store_dir / MANIFEST_NAME).unlink()
    slow = _analyze(examples_dir, store_dir, tmp_path / "slow.json")
    assert opened == [str(store_dir)]
    assert (tmp_path / "slow.json").read_bytes() == (tmp_path / "fast.json").read_bytes()
    # ... which recorded the manifest again: the next analysis does not open the store
    assert read_manifest(store_dir) == [(ATLAS_GRAPH, read_manifest(store_dir)[0][1])]  # type: ignore[index]
    again = _analyze(examples_dir, store_dir, tmp_path / "again.json")
    assert opened == [str(store_dir)] and again == slow


def test_a_release_removed_by_another_tool_is_not_answered_from_the_manifest(
        store_dir: Path, examples_dir: Path, tmp_path: Path, opened: list[str]) -> None:
    before = _analyze(examples_dir, store_dir, tmp_path / "before.json")
    assert before["releases"] == {"atlas": ATLAS_GRAPH} and _techniques(before)
    manifest = (store_dir / MANIFEST_NAME).read_bytes()
    # another tool (or an older threatgraph) drops the release without touching the manifest
    s = EmbeddedStore(str(store_dir))
    s.update(f"DROP GRAPH <{ATLAS_GRAPH}> ; DELETE WHERE {{ GRAPH <https://w3id.org/threatgraph/graph/releases> "
             f"{{ <{ATLAS_GRAPH}> ?p ?o }} }}")
    s.flush()
    del s
    assert (store_dir / MANIFEST_NAME).read_bytes() == manifest  # the manifest still names ATLAS ...
    assert read_manifest(store_dir) is None  # ... but its stamp is not the store's any more
    opened.clear()
    after = _analyze(examples_dir, store_dir, tmp_path / "after.json")
    assert opened == [str(store_dir)]
    # answered from the store: no release; the mappings' techniques are cited unresolved (issue 13)
    assert after["releases"] == {} and "no ATT&CK/ATLAS release loaded" in after.get("techniqueStatus", "")
    assert read_manifest(store_dir) == []  # recorded again: no release
    opened.clear()
    assert _analyze(examples_dir, store_dir, tmp_path / "again.json") == after and opened == []


def test_a_release_added_by_another_tool_is_analysed(store_dir: Path, shared_data: Path, examples_dir: Path,
                                                     tmp_path: Path) -> None:
    from threatgraph.knowledge.releases import load_release

    empty = tmp_path / "other"
    s = EmbeddedStore(str(empty))
    s.update("INSERT DATA { GRAPH <urn:x> { <urn:a> <urn:b> <urn:c> } }")
    s.flush()
    del s
    assert view_mod.refresh_manifest(empty) and read_manifest(empty) == []
    assert _analyze(examples_dir, empty, tmp_path / "none.json")["releases"] == {}
    s = EmbeddedStore(str(empty))  # imported without writing the manifest (an older threatgraph)
    load_release(s, "atlas", str(shared_data / "atlas/ATLAS.yaml"))
    s.flush()
    del s
    doc = _analyze(examples_dir, empty, tmp_path / "atlas.json")
    assert doc["releases"] == {"atlas": ATLAS_GRAPH} and "AML.T0051" in _techniques(doc)


@pytest.mark.parametrize("text", [b"", b"{not json", b'{"format": 1}', b'{"format": 99, "stamp": "x", "releases": []}',
                                  b'{"format": 1, "stamp": "0", "releases": []}',
                                  b'{"format": 1, "stamp": "0", "releases": [["a"]]}'])
def test_a_damaged_or_foreign_manifest_opens_the_store(store_dir: Path, examples_dir: Path, tmp_path: Path,
                                                       opened: list[str], text: bytes) -> None:
    good = _analyze(examples_dir, store_dir, tmp_path / "good.json")
    (store_dir / MANIFEST_NAME).write_bytes(text)
    assert read_manifest(store_dir) is None
    assert _analyze(examples_dir, store_dir, tmp_path / "bad.json") == good
    assert opened == [str(store_dir)]


def test_a_manifest_with_a_forged_stamp_but_other_releases_is_caught_by_the_stamp(
        store_dir: Path, examples_dir: Path, tmp_path: Path) -> None:
    doc = json.loads((store_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    doc["releases"] = []
    doc["stamp"] = "0" * 64
    (store_dir / MANIFEST_NAME).write_text(json.dumps(doc), encoding="utf-8")
    assert "AML.T0051" in _techniques(_analyze(examples_dir, store_dir, tmp_path / "out.json"))


def test_a_missing_view_opens_the_store_and_compiles_it(store_dir: Path, examples_dir: Path, tmp_path: Path,
                                                        opened: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    good = _analyze(examples_dir, store_dir, tmp_path / "good.json")
    assert opened == []
    monkeypatch.setenv("THREATGRAPH_CACHE", str(tmp_path / "empty-cache"))
    assert _analyze(examples_dir, store_dir, tmp_path / "out.json") == good
    assert opened == [str(store_dir)]


def test_reading_does_not_change_the_stamp_writing_does(store_dir: Path) -> None:
    stamp = store_stamp(store_dir)
    s = EmbeddedStore(str(store_dir), read_only=True)
    assert s.graph_names()
    del s
    assert store_stamp(store_dir) == stamp
    w = EmbeddedStore(str(store_dir))  # opened for writing, nothing written: a new log, options
    del w
    assert store_stamp(store_dir) != stamp


def test_save_records_the_manifest_again(store_dir: Path, examples_dir: Path, tmp_path: Path,
                                         opened: list[str]) -> None:
    saved = _analyze(examples_dir, store_dir, tmp_path / "saved.json", "--save")
    assert read_manifest(store_dir) is not None
    opened.clear()
    assert _analyze(examples_dir, store_dir, tmp_path / "next.json") == saved and opened == []


def test_an_unwritable_store_directory_only_skips_the_manifest(store_dir: Path, examples_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (store_dir / MANIFEST_NAME).unlink()
    monkeypatch.setattr(view_mod, "write_atomic", lambda path, data: False)
    doc = _analyze(examples_dir, store_dir, tmp_path / "out.json")
    assert "AML.T0051" in _techniques(doc) and not (store_dir / MANIFEST_NAME).exists()


@pytest.mark.parametrize("argv", [["releases", "--json"], ["query", "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"],
                                  ["validate", "MODEL"], ["coverage", "--release", "atlas"]])
def test_read_commands_leave_the_manifest_current(argv: list[str], store_dir: Path, examples_dir: Path,
                                                  tmp_path: Path, opened: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Read commands open the store read-only: the directory's stamp does not move, so the next
    ``analyze --store`` still answers from the manifest without opening RocksDB."""

    assert read_manifest(store_dir) is not None
    model = str(examples_dir / "rag-assistant.ttl")
    assert main([a.replace("MODEL", model) for a in argv] + ["--store", str(store_dir)]) in (0, 1)
    capsys.readouterr()
    assert read_manifest(store_dir) is not None  # the stamp is still the directory's
    opened.clear()
    _analyze(examples_dir, store_dir, tmp_path / "after.json")
    assert opened == []
