"""The quads of ATT&CK release graphs are pinned: a canonical digest taken before the import was optimised.

Digest = sha256 of the sorted N-Quads lines (``str(quad)``) joined by newlines, for the graph built by
:func:`threatgraph.knowledge.stix.parse_attack` and for the graph actually written by ``load_release``.
Any change of the mapping must update these pins deliberately (and docs/knowledge.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pytest
from pyoxigraph import Quad

from threatgraph.knowledge.releases import load_release
from threatgraph.knowledge.stix import parse_attack
from threatgraph.resources import shared_data_dir
from threatgraph.store import open_store

pytestmark = pytest.mark.shared

DATA = shared_data_dir()
ATTACK_DIR = DATA / "attack" if DATA else Path("/missing")
if not (ATTACK_DIR / "ics-attack-18.1.json").is_file():  # pragma: no cover - only without the shared data
    pytest.skip("shared data not available (THREATGRAPH_SHARED_DATA)", allow_module_level=True)

# (file, number of quads parsed, digest) computed with the code of commit 66abcc0 (before optimising).
PINS = [
    ("ics-attack-18.1.json", 11231, "cd03988398030fd9f9dc535c5e1070638d83cb62dbbc2cfbdebbc5083a353bf9"),
    (
        "enterprise-attack-18.1.stix20.json",
        231747,
        "fe61eda746e9085d6a6259ed7e6e1e882df65a69ea226dc84c72bb26b1378fea",
    ),
]


def digest(quads: Iterable[Quad]) -> tuple[int, str]:
    """(count, sha256 of the sorted N-Quads lines)."""
    lines = sorted(str(q) for q in quads)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


@pytest.mark.parametrize(("name", "count", "sha"), PINS)
def test_parsed_quads_unchanged(name: str, count: int, sha: str) -> None:
    path = ATTACK_DIR / name
    rel = parse_attack(path.read_bytes(), str(path))
    assert digest(rel.quads) == (count, sha)


def test_stored_graph_unchanged() -> None:
    """What the store holds (pyoxigraph writes xsd:dateTime in canonical form: ``.610Z`` → ``.61Z``)."""
    path = ATTACK_DIR / "ics-attack-18.1.json"
    store = open_store()
    graph = load_release(store, "attack", str(path)).release.graph
    assert digest(store.quads(graph)) == (
        11231,
        "0a08f67b9b4302cb35386f5f920fc343af036745d6caed7595128523be75f9e0",
    )


def test_stored_graph_unchanged_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same quads through the on-disk store, written in chunks of N-Quads by a worker thread
    (12 chunks here)."""
    from threatgraph.store import EmbeddedStore

    monkeypatch.setattr(EmbeddedStore, "_CHUNK", 1000)
    path = ATTACK_DIR / "ics-attack-18.1.json"
    store = open_store(str(tmp_path / "store"))
    graph = load_release(store, "attack", str(path)).release.graph
    assert digest(store.quads(graph)) == (
        11231,
        "0a08f67b9b4302cb35386f5f920fc343af036745d6caed7595128523be75f9e0",
    )


def test_digest_detects_a_change() -> None:
    path = ATTACK_DIR / "ics-attack-18.1.json"
    quads = list(parse_attack(path.read_bytes(), str(path)).quads)
    assert digest(quads[1:]) != (PINS[0][1], PINS[0][2])
