"""The shipped SHACL shapes are valid SHACL (SHACL-SHACL) and their SPARQL parses; checked here once
instead of on every `validate`/`analyze` run."""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.validation import builtin_shape_files, check_shapes, load_shapes
from threatgraph.errors import InputError


def test_builtin_shapes_are_valid_shacl() -> None:
    g = load_shapes()
    assert len(builtin_shape_files()) >= 6
    check_shapes(g, [str(p) for p in builtin_shape_files()])


def test_invalid_extra_shapes_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad-shapes.ttl"
    bad.write_text(
        "@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <http://example.org/> .\n"
        "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:minCount \"one\" ] .\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="not valid SHACL"):
        load_shapes([bad])
