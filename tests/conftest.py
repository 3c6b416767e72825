"""Shared fixtures: the pinned reference data and fresh engines."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from threatgraph.resources import shared_data_dir

if TYPE_CHECKING:
    from threatgraph.analysis.engine import Engine

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "data" / "examples"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``shared`` need ../shared/data. Where CI has it they must run; elsewhere they skip,
    unless THREATGRAPH_REQUIRE_SHARED=1 (set by .ci/run), which turns a missing directory into errors."""
    if shared_data_dir() is not None and shared_data_dir().is_dir():  # type: ignore[union-attr]
        return
    if os.environ.get("THREATGRAPH_REQUIRE_SHARED") == "1":
        return
    skip = pytest.mark.skip(reason="needs the pinned reference data (set THREATGRAPH_SHARED_DATA)")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The pinned reference data directory (fails, does not skip, when it is required but missing)."""
    d = shared_data_dir()
    if d is None or not d.is_dir():
        pytest.fail("the pinned reference data is missing: set THREATGRAPH_SHARED_DATA or put it in ../shared/data")
    return d


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session", autouse=True)
def _knowledge_view_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compiled knowledge views (threatgraph.knowledge.view) are cached in a per-session directory, never
    in the user's ~/.cache; the CLI subprocesses of the tests inherit it."""
    if "THREATGRAPH_CACHE" not in os.environ:
        os.environ["THREATGRAPH_CACHE"] = str(tmp_path_factory.mktemp("threatgraph-cache"))


@pytest.fixture(scope="session")
def generated_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int], Path]:
    """``generated_model(n, seed)``: the path of bench/generate.py's model of ``n`` elements for ``seed``, written
    once per session."""
    made: dict[tuple[int, int], Path] = {}
    d = tmp_path_factory.mktemp("generated")

    def path(n: int, seed: int = 0) -> Path:
        if (n, seed) not in made:
            sys.path.insert(0, str(REPO / "bench"))
            try:
                from generate import generate_model  # type: ignore[import-not-found]
            finally:
                sys.path.remove(str(REPO / "bench"))
            made[n, seed] = d / f"generated-{n}-{seed}.ttl"
            made[n, seed].write_text(generate_model(n, seed=seed), encoding="utf-8")
        return made[n, seed]

    return path


def engine_on(path: Path, store: object = None) -> Engine:
    """An engine (on ``store``, or a fresh embedded one) with the model at ``path`` loaded and its facts derived,
    ready for rule queries."""
    from threatgraph.analysis.engine import Engine
    from threatgraph.analysis.model import load_model_files

    eng = Engine(store)  # type: ignore[arg-type]
    eng.load(load_model_files([path]))
    eng.derive()
    return eng


@pytest.fixture(scope="session")
def derived_engine() -> Callable[..., Engine]:
    """:func:`engine_on` as a fixture: ``derived_engine(path, store=None)``."""
    return engine_on
