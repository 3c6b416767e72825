"""A failed import leaves the store exactly as it was, with an error naming the file and the object.

Broken inputs are made in tmp_path from the real (small) ICS bundles; network imports are tested only
against a local HTTP server on 127.0.0.1 started here; a process killed mid-import is simulated with
SIGKILL on a real subprocess writing to an on-disk store.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pyoxigraph import Quad

from threatgraph.errors import ImportFailed, StoreError
from threatgraph.knowledge.rdfbuild import NQuadsWriter
from threatgraph.knowledge.releases import load_release, releases
from threatgraph.resources import shared_data_dir
from threatgraph.store import EmbeddedStore, open_store
from threatgraph.store.base import Store

pytestmark = pytest.mark.shared

DATA = shared_data_dir() or Path("/missing")
ICS17 = DATA / "attack" / "ics-attack-17.1.json"
ICS18 = DATA / "attack" / "ics-attack-18.1.json"
ENT18 = DATA / "attack" / "enterprise-attack-18.1.stix20.json"
if not ICS17.is_file():  # pragma: no cover - only without the shared data
    pytest.skip("shared data not available (THREATGRAPH_SHARED_DATA)", allow_module_level=True)
ROOT = Path(__file__).resolve().parents[1]


def _state(store: Store) -> list[bytes]:
    return sorted(store.dump(None, "application/n-quads").splitlines())


@pytest.fixture
def store() -> Store:
    """An in-memory store already holding one release (ICS 18.1)."""
    s = open_store()
    load_release(s, "attack", str(ICS18))
    return s


@pytest.fixture(scope="module")
def ics17() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ICS17.read_text(encoding="utf-8"))
    return data


def _write(tmp_path: Path, name: str, data: bytes | str) -> str:
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(p)


def _fails(store: Store, kind: str, path: str, *needles: str) -> ImportFailed:
    before = _state(store)
    with pytest.raises(ImportFailed) as info:
        load_release(store, kind, path)
    assert _state(store) == before
    msg = str(info.value)
    assert path in msg
    for n in needles:
        assert n in msg, msg
    return info.value


def test_malformed_json(store: Store, tmp_path: Path) -> None:
    text = ICS17.read_text(encoding="utf-8").replace('"type": "attack-pattern"', '"type" "attack-pattern"', 1)
    _fails(store, "attack", _write(tmp_path, "bad.json", text), "malformed JSON", "line ")


def test_truncated_file(store: Store, tmp_path: Path) -> None:
    raw = ICS17.read_bytes()
    _fails(store, "attack", _write(tmp_path, "cut.json", raw[: len(raw) // 2]), "malformed JSON")


def test_truncated_gzip(store: Store, tmp_path: Path) -> None:
    packed = gzip.compress(ICS17.read_bytes())
    _fails(store, "attack", _write(tmp_path, "cut.json.gz", packed[: len(packed) // 2]), "gzip")


def test_bundle_that_is_not_attack(store: Store, tmp_path: Path) -> None:
    _fails(store, "attack", str(DATA / "capec" / "stix-capec-3.9.json"), "not an ATT&CK bundle")
    _fails(store, "attack", _write(tmp_path, "list.json", "[1, 2]"), "not a STIX bundle")
    _fails(store, "attack", str(DATA / "atlas" / "ATLAS.yaml"), "malformed JSON")
    _fails(store, "capec", str(ICS17), "not a CAPEC bundle")
    _fails(store, "atlas", str(ICS17), "not an ATLAS STIX bundle")  # JSON: read as the STIX form
    _fails(store, "d3fend", str(DATA / "atlas" / "ATLAS.yaml"), "Turtle")


def test_wrong_types_name_the_object(store: Store, tmp_path: Path, ics17: dict[str, Any]) -> None:
    objs = ics17["objects"]
    i = next(k for k, o in enumerate(objs) if o["type"] == "attack-pattern")
    sid = objs[i]["id"]
    for field, value, needle in (
        ("name", 42, "field 'name' must be a string"),
        ("revoked", "yes", "field 'revoked' must be true or false"),
        ("kill_chain_phases", "execution", "field 'kill_chain_phases' must be a list"),
        ("x_mitre_platforms", [1], "field 'x_mitre_platforms' must be a list of strings"),
    ):
        bad = json.loads(json.dumps(ics17))
        bad["objects"][i][field] = value
        path = _write(tmp_path, f"bad-{field}-17.1.json", json.dumps(bad))
        _fails(store, "attack", path, f"object #{i} ({sid})", needle)
    # late in the file: the first chunks are already in the store when this is found, and are rolled back
    last = max(k for k, o in enumerate(objs) if o["type"] == "relationship")
    assert last > len(objs) * 0.9
    bad = json.loads(json.dumps(ics17))
    bad["objects"][last]["relationship_type"] = 5
    path = _write(tmp_path, "late-17.1.json", json.dumps(bad))
    _fails(
        store, "attack", path, f"object #{last} ({objs[last]['id']})", "'relationship_type' must be a string"
    )
    bad = {**ics17, "objects": {"not": "a list"}}
    _fails(store, "attack", _write(tmp_path, "objs-17.1.json", json.dumps(bad)), "'objects' must be a list")
    bad = {**ics17, "objects": [*objs[:5], "a string", *objs[5:]]}
    _fails(store, "attack", _write(tmp_path, "str-17.1.json", json.dumps(bad)), "object #5 is a str")


def test_broken_atlas_and_d3fend(store: Store, tmp_path: Path) -> None:
    text = (DATA / "atlas" / "ATLAS.yaml").read_text(encoding="utf-8")
    _fails(store, "atlas", _write(tmp_path, "cut.yaml", text[: len(text) // 3] + "\n  - [unclosed"), "YAML")
    doc = yaml.safe_load(text)
    doc["matrices"][0]["techniques"][7]["tactics"] = "AML.TA0002"
    name = doc["matrices"][0]["techniques"][7]["id"]
    wrong = _write(tmp_path, "wrong.yaml", yaml.safe_dump(doc))
    _fails(store, "atlas", wrong, f"techniques[7] ({name})", "field 'tactics' must be a list")
    doc["matrices"][0]["techniques"] = 7
    _fails(
        store,
        "atlas",
        _write(tmp_path, "wrong2.yaml", yaml.safe_dump(doc)),
        "field 'techniques' must be a list",
    )
    ttl = (DATA / "d3fend" / "d3fend-protege-1.2.0.ttl").read_bytes()
    _fails(store, "d3fend", _write(tmp_path, "d3fend-1.2.0.ttl", ttl[: len(ttl) // 2]), "malformed Turtle")


def test_unknown_types_and_dangling_relationships_are_counted(
    store: Store, tmp_path: Path, ics17: dict[str, Any]
) -> None:
    extra = [
        {"type": "x-custom-thing", "id": "x-custom-thing--00000000-0000-4000-8000-000000000001"},
        {
            "type": "relationship",
            "id": "relationship--00000000-0000-4000-8000-000000000002",
            "relationship_type": "uses",
            "source_ref": "intrusion-set--00000000-0000-4000-8000-00000000dead",
            "target_ref": "attack-pattern--00000000-0000-4000-8000-00000000beef",
        },
    ]
    path = _write(tmp_path, "extra.json", json.dumps({**ics17, "objects": [*ics17["objects"], *extra]}))
    res = load_release(store, "attack", path)
    assert res.status == "imported"
    assert res.release.version == "17.1"
    assert res.skipped == {"x-custom-thing": 1, "relationship (endpoint not in bundle)": 1}
    assert res.release.counts["skipped x-custom-thing"] == 1
    assert res.release.counts["attack-pattern"] == 95


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
def test_failure_while_writing_leaves_the_store_unchanged(
    tmp_path: Path, on_disk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On disk, quads go to the store in chunks written by a worker thread (EmbeddedStore._CHUNK): with
    small chunks, several are already written when the failure comes; all are rolled back."""
    monkeypatch.setattr(EmbeddedStore, "_CHUNK", 1000)
    monkeypatch.setattr(NQuadsWriter, "CHUNK", 1000)  # the ATT&CK import writes N-Quads text in chunks

    class FailingStore(EmbeddedStore):
        fail = False

        def add_quads(self, quads: Iterable[Quad]) -> None:
            def broken() -> Iterator[Quad]:
                for n, q in enumerate(quads):
                    if n == 5000 and self.fail:
                        raise OSError("disk full (simulated)")
                    yield q

            super().add_quads(broken())

        def add_nquads(self, chunks: Iterable[bytes], *, trusted: bool = False) -> None:
            def broken() -> Iterator[bytes]:
                for n, chunk in enumerate(chunks):
                    if n == 5 and self.fail:
                        raise OSError("disk full (simulated)")
                    yield chunk

            super().add_nquads(broken(), trusted=trusted)

    failing = FailingStore(str(tmp_path / "store") if on_disk else None)
    load_release(failing, "attack", str(ICS18))
    before = _state(failing)
    failing.fail = True
    with pytest.raises(StoreError, match=r"disk full \(simulated\); the import was rolled back") as info:
        load_release(failing, "attack", str(ICS17))  # new version: written to a staging graph, rolled back
    assert info.value.exit_code == 3
    assert _state(failing) == before
    with pytest.raises(StoreError, match="simulated"):
        # same version from another file (gzip: another sha256): the replace path via a staging graph
        load_release(
            failing, "attack", _write(tmp_path, "ics-18.1.json.gz", gzip.compress(ICS18.read_bytes()))
        )
    assert _state(failing) == before
    assert [i.version for i in releases(failing)] == ["18.1"]
    failing.fail = False  # positive case: the same writes without the failure do change the store
    load_release(failing, "attack", str(ICS17))
    assert _state(failing) != before
    assert [i.version for i in releases(failing)] == ["17.1", "18.1"]


def test_a_failing_disk_write_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write error raised by the store itself (in the writer thread, after chunks were written)
    reaches the import, which rolls back: the store is as it was."""
    monkeypatch.setattr(EmbeddedStore, "_CHUNK", 1000)
    monkeypatch.setattr(NQuadsWriter, "CHUNK", 1000)
    s = EmbeddedStore(str(tmp_path / "store"))
    load_release(s, "attack", str(ICS18))
    before = _state(s)
    real = s._store
    calls = {"n": 0}

    class Flaky:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def bulk_load(self, *args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(28, "No space left on device")
            real.bulk_load(*args, **kwargs)

    s._store = Flaky()  # type: ignore[assignment]
    with pytest.raises(StoreError, match="No space left on device; the import was rolled back"):
        load_release(s, "attack", str(ICS17))
    assert calls["n"] >= 3
    s._store = real
    assert _state(s) == before
    assert [i.version for i in releases(s)] == ["18.1"]


def test_reimport_is_a_noop_and_a_new_file_replaces(store: Store, tmp_path: Path) -> None:
    before = _state(store)
    res = load_release(store, "attack", str(ICS18))
    assert res.status == "unchanged"
    assert _state(store) == before
    packed = _write(tmp_path, "ics-attack-18.1.json.gz", gzip.compress(ICS18.read_bytes()))
    res = load_release(store, "attack", packed)
    assert res.status == "replaced"
    assert res.release.format == "STIX 2.1 (gzip)"
    infos = releases(store)
    assert [(i.source, i.version, i.location) for i in infos] == [("attack-ics", "18.1", packed)]
    # same triples, new provenance record, no staging graph left
    assert len([q for q in store.quads(infos[0].graph)]) == infos[0].quads
    assert sorted(store.graph_names()) == sorted(
        [infos[0].graph, "https://w3id.org/threatgraph/graph/releases"]
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving tmp_path (no internet access in tests)."""
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_import_from_http_plain_and_gzip(http_dir: tuple[str, Path]) -> None:
    base, root = http_dir
    (root / "ics-attack-17.1.json").write_bytes(ICS17.read_bytes())
    (root / "ics-attack-18.1.json.gz").write_bytes(gzip.compress(ICS18.read_bytes()))
    s = open_store()
    r1 = load_release(s, "attack", f"{base}/ics-attack-17.1.json")
    r2 = load_release(s, "attack", f"{base}/ics-attack-18.1.json.gz")
    assert (r1.status, r1.release.version, r2.release.version) == ("imported", "17.1", "18.1")
    assert r1.release.location == f"{base}/ics-attack-17.1.json"
    prov = s.select(
        "SELECT ?src WHERE { GRAPH <https://w3id.org/threatgraph/graph/releases> { ?g prov:wasDerivedFrom ?src } }"
    )
    assert {r["src"].value for r in prov} == {
        f"{base}/ics-attack-17.1.json",
        f"{base}/ics-attack-18.1.json.gz",
    }
    before = _state(s)
    with pytest.raises(ImportFailed, match="HTTP 404"):
        load_release(s, "attack", f"{base}/missing.json")
    assert _state(s) == before


def _cli(store_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "THREATGRAPH_SHARED_DATA": str(DATA)}
    return subprocess.Popen(
        [sys.executable, "-m", "threatgraph", "import", "attack", *args, "--store", str(store_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _check_consistent(store_dir: Path, *, allow_unrecorded: bool = False) -> list[tuple[str, str]]:
    """Every recorded release has exactly its recorded triples; graphs without a record only after a kill."""
    s = open_store(str(store_dir))
    try:
        infos = releases(s)
        for i in infos:
            assert sum(1 for _ in s.quads(i.graph)) == i.quads, i.graph
        recorded = {i.graph for i in infos} | {"https://w3id.org/threatgraph/graph/releases"}
        stray = [g for g in s.graph_names() if g not in recorded]
        if not allow_unrecorded:
            assert stray == []
        return [(i.source, i.version) for i in infos]
    finally:
        del s


def test_leftovers_of_a_killed_import_are_dropped_by_the_next(store: Store) -> None:
    rel = "https://w3id.org/threatgraph/graph/release/attack-ics/17.1"
    staging = "https://w3id.org/threatgraph/graph/staging/0123"
    hand_made = "https://w3id.org/threatgraph/graph/release/test/1.0"
    store.load("<urn:a> <urn:p> <urn:b> .", "application/n-triples", rel)  # cut short: marked pending
    store.load("<urn:a> <urn:p> <urn:c> .", "application/n-triples", staging)
    store.load("<urn:a> <urn:p> <urn:d> .", "application/n-triples", hand_made)  # not an import: kept
    store.update(
        f"INSERT DATA {{ GRAPH <https://w3id.org/threatgraph/graph/releases> {{ <{rel}> kb:importPending true }} }}"
    )
    assert [i.version for i in releases(store)] == ["18.1"]  # readers never see the leftover as a release
    res = load_release(store, "attack", str(ICS17))
    assert res.release.graph == rel and res.release.quads == 8491  # 11,014 before issue 14's smaller relationships
    assert not store.ask(f"ASK {{ GRAPH <{rel}> {{ <urn:a> ?p ?o }} }}")
    assert staging not in store.graph_names()
    assert store.ask(f"ASK {{ GRAPH <{hand_made}> {{ <urn:a> <urn:p> <urn:d> }} }}")
    assert not store.ask("ASK { GRAPH ?g { ?x kb:importPending ?v } }")


@pytest.mark.slow
def test_killed_mid_import_keeps_the_previous_release(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    first = _cli(store_dir, str(ICS18))
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    assert _check_consistent(store_dir) == [("attack-ics", "18.1")]
    proc = _cli(store_dir, str(ENT18))
    assert proc.stderr is not None
    for line in proc.stderr:  # progress lines; kill as soon as the store is being written
        if line.startswith(b"writing"):
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    loaded = _check_consistent(store_dir, allow_unrecorded=True)  # a cut-short graph has no record
    assert ("attack-ics", "18.1") in loaded
    assert set(loaded) <= {("attack-ics", "18.1"), ("attack-enterprise", "18.1")}
    # the store still works: the next import succeeds and drops any unrecorded leftovers
    again = _cli(store_dir, str(ICS17))
    assert again.wait(timeout=120) == 0
    assert ("attack-ics", "17.1") in _check_consistent(store_dir)


def test_version_needed_when_the_bundle_does_not_say(
    store: Store, tmp_path: Path, ics17: dict[str, Any]
) -> None:
    # a STIX 2.0-style bundle: no x-mitre-collection, and no version in the file name
    objs = [o for o in ics17["objects"] if o["type"] != "x-mitre-collection"]
    path = _write(tmp_path, "bundle.json", json.dumps({"type": "bundle", "id": ics17["id"], "objects": objs}))
    _fails(store, "attack", path, "cannot tell the ATT&CK version", "--release-version")
    res = load_release(store, "attack", path, version="17.1")
    assert (res.status, res.release.source, res.release.version) == ("imported", "attack-ics", "17.1")


class _Taxii(http.server.BaseHTTPRequestHandler):
    """A minimal TAXII 2.1 collection endpoint serving ICS 17.1 in pages (``limit``/``next``)."""

    objects: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        from urllib.parse import parse_qs, urlparse

        url = urlparse(self.path)
        if url.path != "/api/collections/ics/objects/":
            self.send_error(404)
            return
        if self.headers.get("Accept") != "application/taxii+json;version=2.1":
            self.send_error(406)
            return
        q = parse_qs(url.query)
        start, limit = int(q.get("next", ["0"])[0]), min(int(q.get("limit", ["100"])[0]), 400)
        page = self.objects[start : start + limit]
        more = start + limit < len(self.objects)
        body = {"more": more, "objects": page, **({"next": str(start + limit)} if more else {})}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/taxii+json;version=2.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_import_from_a_taxii_collection(ics17: dict[str, Any]) -> None:
    _Taxii.objects = ics17["objects"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Taxii)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"taxii+http://127.0.0.1:{server.server_address[1]}/api/collections"
        s = open_store()
        res = load_release(s, "attack", f"{base}/ics/")
        from_file = load_release(open_store(), "attack", str(ICS17))
        assert (res.release.source, res.release.version) == ("attack-ics", "17.1")
        assert res.release.counts == from_file.release.counts  # 5 pages, same objects
        assert res.release.quads == from_file.release.quads
        before = _state(s)
        with pytest.raises(ImportFailed, match="HTTP 404"):
            load_release(s, "attack", f"{base}/nope/")
        assert _state(s) == before
    finally:
        server.shutdown()
        server.server_close()


def test_ctrl_c_while_writing_on_disk_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of the on-disk writes (chunks already written by the writer threads): the
    writers stop before the rollback, the store is as it was, and the interrupt propagates."""
    monkeypatch.setattr(EmbeddedStore, "_CHUNK", 1000)
    monkeypatch.setattr(NQuadsWriter, "CHUNK", 1000)

    class Interrupted(EmbeddedStore):
        armed = False

        def add_quads(self, quads: Iterable[Quad]) -> None:
            def interrupted() -> Iterator[Quad]:
                for n, q in enumerate(quads):
                    if n == 6000 and self.armed:
                        raise KeyboardInterrupt
                    yield q

            super().add_quads(interrupted())

        def add_nquads(self, chunks: Iterable[bytes], *, trusted: bool = False) -> None:
            def interrupted() -> Iterator[bytes]:  # the ATT&CK import writes N-Quads text
                for n, chunk in enumerate(chunks):
                    if n == 6 and self.armed:
                        raise KeyboardInterrupt
                    yield chunk

            super().add_nquads(interrupted(), trusted=trusted)

    s = Interrupted(str(tmp_path / "store"))
    load_release(s, "attack", str(ICS18))
    before = _state(s)
    s.armed = True
    with pytest.raises(KeyboardInterrupt):
        load_release(s, "attack", str(ICS17))
    assert _state(s) == before
    assert [i.version for i in releases(s)] == ["18.1"]
    assert not [t for t in threading.enumerate() if t.name.startswith("threatgraph-bulk-load")]
