"""``analyze --store DIR`` and ``analyze --knowledge PATH``: techniques in the JSON report; releases kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threatgraph.cli import main
from threatgraph.knowledge.releases import load_release, releases
from threatgraph.store.embedded import EmbeddedStore

pytestmark = pytest.mark.shared


def _techniques(doc: dict[str, object], element: str) -> set[str]:
    return {t["id"] for f in doc["findings"] if f["element"]["iri"] == element for t in f["techniques"]}  # type: ignore[index, union-attr, attr-defined]


def test_store_keeps_releases(shared_data: Path, examples_dir: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    s = EmbeddedStore(str(store_dir))
    load_release(s, "atlas", str(shared_data / "atlas/ATLAS.yaml"))
    s.flush()
    del s
    out = tmp_path / "out.json"
    rc = main(["analyze", str(examples_dir / "rag-assistant.ttl"), "--store", str(store_dir), "--format", "json",
               "--output", str(out), "--force"])
    assert rc in (0, 1)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert "AML.T0051" in _techniques(doc, "https://example.org/rag-assistant#chatApi")
    assert doc["releases"] == {"atlas": "https://w3id.org/threatgraph/graph/release/atlas/5.6.0"}
    assert doc["attackPaths"]
    # the release graph and its record survive the analysis
    s2 = EmbeddedStore(str(store_dir))
    assert [r.source for r in releases(s2)] == ["atlas"]


def test_knowledge_paths_and_categories_only(shared_data: Path, examples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    rc = main(["analyze", str(examples_dir / "rag-assistant.ttl"), "--knowledge", str(shared_data / "atlas/ATLAS.yaml"),
               "--format", "json", "--output", str(out), "--force"])
    assert rc in (0, 1)
    with_k = json.loads(out.read_text(encoding="utf-8"))
    assert "AML.T0051" in _techniques(with_k, "https://example.org/rag-assistant#chatApi")
    rc = main(["analyze", str(examples_dir / "rag-assistant.ttl"), "--format", "json", "--output", str(out), "--force"])
    without = json.loads(out.read_text(encoding="utf-8"))
    # without knowledge the mappings' techniques are cited unresolved (issue 13): ids, no mitigations
    unresolved = [t for f in without["findings"] if f["element"]["iri"].endswith("#chatApi") for t in f["techniques"]]
    assert without["releases"] == {} and "AML.T0051" in {t["id"] for t in unresolved}
    assert all(t["release"] is None and t["unresolved"].startswith("unresolved: no ATT&CK/ATLAS release loaded")
               and t["mitigations"] == [] for t in unresolved)
    # risk and control status without knowledge too, except on baseline findings no technique realises
    assert all(f["risk"] for f in without["findings"] if not f["rule"].startswith("TG-PE-"))
    assert all(bool(f["risk"]) == bool(f["techniques"]) for f in without["findings"] if f["rule"].startswith("TG-PE-"))
    assert len(without["findings"]) == len(with_k["findings"])


def test_knowledge_bad_path(tmp_path: Path, examples_dir: Path) -> None:
    rc = main(["analyze", str(examples_dir / "rag-assistant.ttl"), "--knowledge", str(tmp_path / "nope.json"), "--force"])
    assert rc == 2
