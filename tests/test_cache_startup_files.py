"""Start-up caches of every analysis (issue 14): the parsed rule files and the bridge mappings' N-Triples.

Each cache is keyed by a digest of what it is derived from (an edited file gets a new entry and its new
answer), read back to the same answers as parsing in the process, and a damaged entry is ignored and
rebuilt, never an error. ``analyze`` of a Turtle model imports neither rdflib nor :mod:`logging`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyoxigraph import NamedNode

import threatgraph.cachefiles as cachefiles
from threatgraph.analysis.rules import load_rules, parse_rule, rule_files
from threatgraph.knowledge.bridge import BRIDGE_GRAPH, load_bridge, mapping_files
from threatgraph.store import open_store

REPO = Path(__file__).resolve().parent.parent
DAMAGED = [b"", b"\xff\xfe", b"# threatgraph-cache sha256 00\n[]", b"[{\"id\": 1}]"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("THREATGRAPH_CACHE", str(d))
    return d


# -- parsed rules ------------------------------------------------------------------------------------
def _rule_dir(tmp_path: Path, n: int = 6) -> list[Path]:
    d = tmp_path / "rules"
    d.mkdir()
    for p in rule_files()[:n]:
        shutil.copy(p, d / p.name)
    return sorted(d.glob("*.rq"))


def test_rules_read_from_the_cache_equal_the_parsed_ones(cache: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _rule_dir(tmp_path)
    first = load_rules(paths)
    assert len(list((cache / "rules").glob("*.parsed.json"))) == 1
    from threatgraph.analysis import rules as rules_mod

    def no_parse(text: str, path: str) -> rules_mod.Rule:
        raise AssertionError("parsed again although cached")

    monkeypatch.setattr(rules_mod, "parse_rule", no_parse)
    again = load_rules(paths)  # from the cache: parse_rule is not called
    assert again == first == [parse_rule(p.read_text(encoding="utf-8"), str(p)) for p in paths]
    assert [(r.lines, r.query_line, r.builtin) for r in again] == [(r.lines, r.query_line, r.builtin) for r in first]


def test_an_edited_rule_is_parsed_again(cache: Path, tmp_path: Path) -> None:
    paths = _rule_dir(tmp_path)
    before = load_rules(paths)
    text = paths[0].read_text(encoding="utf-8")
    old_title = before[0].title
    paths[0].write_text(text.replace(f"# title: {old_title}", "# title: An edited title", 1), encoding="utf-8")
    after = load_rules(paths)
    assert after[0].title == "An edited title" and after[1:] == before[1:]
    assert len(list((cache / "rules").glob("*.parsed.json"))) == 2
    # a rule removed from the set: a set of its own
    assert load_rules(paths[1:]) == after[1:]


@pytest.mark.parametrize("bad", DAMAGED)
def test_a_damaged_rule_cache_is_rebuilt(cache: Path, tmp_path: Path, bad: bytes) -> None:
    paths = _rule_dir(tmp_path)
    first = load_rules(paths)
    (entry,) = (cache / "rules").glob("*.parsed.json")
    entry.write_bytes(bad)
    assert load_rules(paths) == first
    assert entry.read_bytes() != bad  # written again


def test_a_well_formed_cache_of_another_layout_is_not_used(cache: Path, tmp_path: Path) -> None:
    """A file that passes the digest check but does not hold rules (another layout) is parsed again."""
    from threatgraph.cachefiles import write_checked

    paths = _rule_dir(tmp_path)
    first = load_rules(paths)
    (entry,) = (cache / "rules").glob("*.parsed.json")
    write_checked(entry, b'[{"id": "X"}]')
    assert load_rules(paths) == first


def test_a_broken_rule_is_reported_and_not_cached(cache: Path, tmp_path: Path) -> None:
    from threatgraph.errors import RuleError

    paths = _rule_dir(tmp_path)
    text = paths[2].read_text(encoding="utf-8")
    paths[2].write_text(text.replace("# severity:", "# severity: enormous\n# x-severity:", 1), encoding="utf-8")
    with pytest.raises(RuleError, match=paths[2].name):
        load_rules(paths)
    assert not list((cache / "rules").glob("*.parsed.json"))


# -- bridge ------------------------------------------------------------------------------------------
def _bridge_quads(files: list[Path] | None = None) -> set[tuple[str, str, str]]:
    store = open_store()
    n = load_bridge(store, files)
    quads = {(str(q.subject), str(q.predicate), str(q.object)) for q in store.quads(BRIDGE_GRAPH)}
    assert n == len(quads)
    return quads


def test_bridge_from_the_cache_equals_the_parsed_files(cache: Path) -> None:
    import pyoxigraph as ox

    parsed = {(str(t.subject), str(t.predicate), str(t.object))
              for p in mapping_files() for t in (q.triple for q in ox.parse(path=str(p), format=ox.RdfFormat.TURTLE))}
    first = _bridge_quads()
    assert len(list((cache / "bridge").glob("*.nt"))) == 1
    assert _bridge_quads() == first == parsed


def test_bridge_replaces_the_graph(cache: Path) -> None:
    store = open_store()
    store.update(f"INSERT DATA {{ GRAPH <{BRIDGE_GRAPH}> {{ <urn:x> <urn:p> <urn:o> }} }}")
    load_bridge(store)
    load_bridge(store)  # from the cache
    assert not list(store._store.quads_for_pattern(NamedNode("urn:x"), None, None, None))  # type: ignore[attr-defined]


def test_an_edited_mapping_file_is_parsed_again(cache: Path, tmp_path: Path) -> None:
    d = tmp_path / "mappings"
    d.mkdir()
    for p in mapping_files():
        shutil.copy(p, d / p.name)
    files = sorted(d.glob("*.ttl"))
    before = _bridge_quads(files)
    files[0].write_text(files[0].read_text(encoding="utf-8") + "\n<urn:test:m> <urn:test:p> \"edited\" .\n",
                        encoding="utf-8")
    after = _bridge_quads(files)
    assert after - before == {("<urn:test:m>", "<urn:test:p>", '"edited"')}
    assert len(list((cache / "bridge").glob("*.nt"))) == 2


@pytest.mark.parametrize("bad", [*DAMAGED, b"# threatgraph-cache sha256 x\n<urn:a> <urn:b> \"c\" ."])
def test_a_damaged_bridge_cache_is_rebuilt(cache: Path, bad: bytes) -> None:
    first = _bridge_quads()
    (entry,) = (cache / "bridge").glob("*.nt")
    entry.write_bytes(bad)
    assert _bridge_quads() == first
    assert entry.read_bytes() != bad


def test_an_unwritable_cache_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("THREATGRAPH_CACHE", str(blocker / "cache"))
    assert _bridge_quads()
    assert load_rules(rule_files()[:3])


# -- imports -----------------------------------------------------------------------------------------
def test_analyze_of_a_turtle_model_imports_neither_rdflib_nor_logging(cache: Path, tmp_path: Path) -> None:
    """Once the caches are warm (the first analysis parses the ontology with rdflib and caches it)."""
    out = tmp_path / "out.json"
    code = ("import sys; from threatgraph.cli import main; "
            f"rc = main(['analyze', {str(REPO / 'data/examples/rag-assistant.ttl')!r}, '--format', 'json', "
            f"'-o', {str(out)!r}]); "
            "print(rc, 'rdflib' in sys.modules, 'logging' in sys.modules)")
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # warms the cache
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip().splitlines()[-1] in ("0 False False", "1 False False")
    assert out.stat().st_size > 0


def test_rdflib_warnings_stay_quiet_when_it_is_imported_later() -> None:
    code = ("import sys, logging as _l; from threatgraph.cli import quiet_rdflib; quiet_rdflib(); "
            "import importlib.util; importlib.util.find_spec('rdflib'); "
            "assert _l.getLogger('rdflib').level == 0; import rdflib; print(_l.getLogger('rdflib').level)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "40"


# -- the compiled knowledge view: digest checked once, then by its stamp -----------------------------
def test_a_stamped_view_is_not_hashed_again_and_a_change_in_place_is_seen(cache: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    from pyoxigraph import Literal, Quad

    from threatgraph.knowledge import view as view_mod

    quads = [Quad(NamedNode("urn:test:t"), NamedNode("http://www.w3.org/2000/01/rdf-schema#label"), Literal("one"),
                  NamedNode("https://w3id.org/threatgraph/graph/release/atlas/1.0"))]
    built: list[int] = []

    def build() -> list[Quad]:
        built.append(1)
        return quads

    view_mod.cached_view("k1", None, build)
    path = cache / "views" / "k1.nq"
    stamp = path.with_name("k1.nq.stamp")
    view_mod.cached_view("k1", None, build)
    assert not stamp.exists()  # just written: too recent to be stamped (its times could still repeat)
    monkeypatch.setattr(cachefiles, "STAMP_AGE_NS", -(10**18))
    view_mod.cached_view("k1", None, build)
    assert stamp.exists()
    checks: list[int] = []
    original = view_mod._checked

    def spy(raw: bytes) -> bytes | None:
        checks.append(1)
        return original(raw)

    monkeypatch.setattr(view_mod, "_checked", spy)
    assert set(view_mod.cached_view("k1", None, build).quads) == set(quads)
    assert not checks and built == [1]  # read by its stamp
    # changed in place, same size, modification time put back: the change time moved, so checked again
    time.sleep(0.05)
    st = os.stat(path)
    path.write_bytes(path.read_bytes().replace(b'"one"', b'"two"'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = view_mod.cached_view("k1", None, build)
    assert checks and built == [1, 1] and b"two" not in again.nquads  # rejected by its digest, compiled again
    # a damaged stamp is only a check more
    checks.clear()
    stamp.write_bytes(b"\xff garbage")
    assert set(view_mod.cached_view("k1", None, build).quads) == set(quads) and checks and built == [1, 1]
