"""JSON limits: the container-only walk of ``bounded.load_json`` (``_json_within``) accepts exactly the
documents the general ``check_tree`` accepts, and a refused document gets ``check_tree``'s message."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from threatgraph import bounded
from threatgraph.errors import InputError


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize("limit", [3, 10])
def test_depth_boundary(limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREATGRAPH_MAX_DEPTH", str(limit))
    assert bounded.load_json(_nested(limit), "ok.json") is not None  # exactly the limit: accepted
    with pytest.raises(InputError, match=f"deep.json: /0(/0|/…)*: nested more than {limit} levels deep"):
        bounded.load_json(_nested(limit + 1), "deep.json")


def test_value_count_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREATGRAPH_MAX_NODES", "7")
    # {"a": [1, 2]}: the object, its key, the list, its two items = 5; {"a": [1, 2], "b": 3}: 7
    assert bounded.load_json('{"a": [1, 2], "b": 3}', "ok.json") == {"a": [1, 2], "b": 3}
    with pytest.raises(InputError, match=r"big.json: /: more than 7 values"):
        bounded.load_json('{"a": [1, 2, 3], "b": 3}', "big.json")


def _random_doc(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 7 or roll < 0.3:
        return rng.choice([1, "x", None, True, 2.5])
    if roll < 0.65:
        return [_random_doc(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}": _random_doc(rng, depth + 1) for i in range(rng.randrange(4))}


def test_fast_walk_agrees_with_check_tree() -> None:
    rng = random.Random(14)
    accepted = refused = 0
    for _ in range(400):
        doc = json.loads(json.dumps(_random_doc(rng, 1)))
        lim = bounded.Limits(depth=rng.randrange(1, 8), nodes=rng.randrange(1, 60), digits=1000,
                             input_bytes=1 << 20, includes=10, decompressed_bytes=1 << 20)
        try:
            _check_with(doc, lim)
            general = True
        except InputError:
            general = False
        assert bounded._json_within(doc, lim) is general, (doc, lim)
        accepted += general
        refused += not general
    assert accepted > 50 and refused > 50  # both outcomes exercised


def _check_with(doc: Any, lim: bounded.Limits) -> None:
    saved = bounded.limits
    bounded.limits = lambda: lim  # type: ignore[assignment]
    try:
        bounded.check_tree(doc, "r.json")
    finally:
        bounded.limits = saved  # type: ignore[assignment]
