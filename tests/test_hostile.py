"""The hostile-input corpus of issue 11 (tests/hostile/make_corpus.py), run through the CLI.

Each case runs ``python -m threatgraph`` in a subprocess under a time limit and an address-space limit
(``resource.setrlimit`` in ``preexec_fn``) and must give its exit code (2 for bad input unless the case
says otherwise), one message on stderr, no traceback; a case against a store leaves the store's content
digest unchanged.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "hostile"))
from make_corpus import Case, cases

REPO = Path(__file__).resolve().parent.parent
TIME_LIMIT_S = 60
MEMORY_LIMIT = 2 * 1024**3
"""Address space of one CLI run; a kilobyte bomb that expands past it fails the case (MemoryError)."""


def _limit() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(argv: list[str], env: dict[str, str] | None = None,
            timeout: float = TIME_LIMIT_S) -> subprocess.CompletedProcess[str]:
    """``threatgraph ARGV`` in a subprocess under the time and memory limits."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "threatgraph", *argv], capture_output=True, text=True,
                          timeout=timeout, env=full_env, preexec_fn=_limit, stdin=subprocess.DEVNULL)


def store_digest(location: Path) -> str:
    """sha256 of the store's quads, sorted (its content, whatever RocksDB does with its files)."""
    from pyoxigraph import Store

    store = Store.read_only(str(location))
    lines = sorted(str(q) for q in store.quads_for_pattern(None, None, None, None))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


CORPUS_CASES: list[Case] = cases(Path("/nonexistent-corpus-placeholder"), dry=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Case]]:
    root = tmp_path_factory.mktemp("hostile")
    return root, {c.name: c for c in cases(root)}


@pytest.fixture(scope="module")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding ATT&CK ICS 17.1 and ATLAS (copied for each case that needs a store)."""
    from threatgraph.knowledge.releases import load_release
    from threatgraph.resources import shared_data_dir
    from threatgraph.store import open_store

    shared = shared_data_dir()
    if shared is None or not shared.is_dir():
        pytest.skip("needs the pinned reference data (set THREATGRAPH_SHARED_DATA)")
    location = tmp_path_factory.mktemp("template") / "store"
    store = open_store(str(location))
    load_release(store, "attack", str(shared / "attack" / "ics-attack-17.1.json"))
    load_release(store, "atlas", str(shared / "atlas" / "ATLAS.yaml"))
    del store
    return location


@pytest.mark.parametrize("name", [c.name for c in CORPUS_CASES])
def test_hostile_case(name: str, corpus: tuple[Path, dict[str, Case]], request: pytest.FixtureRequest) -> None:
    from threatgraph.resources import shared_data_dir

    root, by_name = corpus
    case = by_name[name]
    store = root / "stores" / name
    argv = [a.replace("{dir}", str(root)).replace("{store}", str(store)).replace("{shared}", str(shared_data_dir()))
            for a in case.argv]
    before = None
    if case.store:
        shutil.copytree(request.getfixturevalue("template_store"), store)
        before = store_digest(store)
    try:
        res = run_cli(argv, case.env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: no answer within {TIME_LIMIT_S} s (a hang)")
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.returncode == case.exit, res.stderr[-2000:]
    assert case.expect in res.stderr, res.stderr[-2000:]
    if case.exit != 0:
        assert res.stderr.count("threatgraph: error:") == 1, res.stderr[-2000:]
    for piece in case.stdout_absent:
        assert piece not in res.stdout, f"{name}: {piece!r} on stdout"
    for piece in case.stdout_present:
        assert piece in res.stdout, f"{name}: {piece!r} not on stdout"
    for path in case.absent:
        assert not Path(path.replace("{dir}", str(root))).exists(), f"{name}: {path} was created"
    for folder, names in case.listing.items():
        assert sorted(p.name for p in Path(folder.replace("{dir}", str(root))).iterdir()) == names
    if before is not None:
        assert store_digest(store) == before, f"{name}: the store changed"


def test_remote_results_are_parsed_bounded() -> None:
    """A hostile SPARQL endpoint cannot crash the client with deep JSON (RecursionError before)."""
    from threatgraph.errors import StoreError
    from threatgraph.store.remote import _normalize_json_results

    ok = b'{"head": {}, "results": {"bindings": [{"x": {"type": "bnode", "value": "nodeID://b1"}}, 5]}}'
    assert b"nodeID___b1" in _normalize_json_results(ok)
    with pytest.raises(StoreError, match="nested more than"):
        _normalize_json_results(b'{"results": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
