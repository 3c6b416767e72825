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

# (file, number of quads parsed, digest). First computed with the code of commit 66abcc0 (before
# optimising): ICS 11,231 quads cd039883..., Enterprise 231,747 quads fe61eda7.... Re-recorded
# deliberately for issue 14 (smaller reified relationships): a reified STIX relationship no longer
# carries ``rdf:type kb:Relationship``, ``kb:stixId`` (its IRI's local name) and ``dct:modified`` (no
# query, command or test reads them), and a citation URL listed twice is one ``rdfs:seeAlso``. Checked
# when re-recording: the new quads are exactly the old ones without those (as sets; 32 old duplicates).
PINS = [
    ("ics-attack-18.1.json", 9422, "6c8a653138c817963f1424abe5d15263837dc575f464d9c202de63d9a1bc0900"),
    (
        "enterprise-attack-18.1.stix20.json",
        175510,
        "244f10a7212bf05085efe1b1617ebe86a6c6539a6b4d9c91a4c4783078e2ffd9",
    ),
]
STORED_ICS = (9422, "4960d421691cb9cd2f58d98927fba8f454f5e75de0e9d0685d6b8ade2bfb3d51")
"""The stored ICS graph (before issue 14's re-recording: 11,231 quads, 0a08f67b...)."""


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
    assert digest(store.quads(graph)) == STORED_ICS


def test_stored_graph_unchanged_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same quads through the on-disk store, written in chunks of N-Quads by a worker thread
    (12 chunks here)."""
    from threatgraph.knowledge.rdfbuild import NQuadsWriter
    from threatgraph.store import EmbeddedStore

    monkeypatch.setattr(EmbeddedStore, "_CHUNK", 1000)
    monkeypatch.setattr(NQuadsWriter, "CHUNK", 1000)  # the ATT&CK import writes N-Quads text in chunks
    path = ATTACK_DIR / "ics-attack-18.1.json"
    store = open_store(str(tmp_path / "store"))
    graph = load_release(store, "attack", str(path)).release.graph
    assert digest(store.quads(graph)) == STORED_ICS


def test_digest_detects_a_change() -> None:
    path = ATTACK_DIR / "ics-attack-18.1.json"
    quads = list(parse_attack(path.read_bytes(), str(path)).quads)
    assert digest(quads[1:]) != (PINS[0][1], PINS[0][2])


@pytest.mark.parametrize("name", [p[0] for p in PINS])
def test_relationship_nodes_keep_what_queries_read(name: str) -> None:
    """A reified relationship keeps its source, target, type, description and citations; not its class,
    STIX id (the IRI's local name) or modification date; every parsed quad is distinct."""
    path = ATTACK_DIR / name
    quads = list(parse_attack(path.read_bytes(), str(path)).quads)
    assert len({str(q) for q in quads}) == len(quads)
    rel_preds: dict[str, int] = {}
    for q in quads:
        if "/relationship--" in q.subject.value:
            rel_preds[q.predicate.value] = rel_preds.get(q.predicate.value, 0) + 1
    kb = "https://w3id.org/threatgraph/kb#"
    assert {kb + "relSource", kb + "relTarget", kb + "relType",
            "http://purl.org/dc/terms/description", "http://www.w3.org/2000/01/rdf-schema#seeAlso"} <= set(rel_preds)
    assert rel_preds[kb + "relSource"] == rel_preds[kb + "relTarget"] == rel_preds[kb + "relType"]
    assert not {kb + "stixId", "http://purl.org/dc/terms/modified",
                "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"} & set(rel_preds)
