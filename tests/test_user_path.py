"""The user path's start-up (issue 14, h-user): hand-written records, cache files checked once, one parser."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from threatgraph import cachefiles
from threatgraph.cli import build_parser
from threatgraph.knowledge.releases import ImportResult, ReleaseInfo, _Entry
from threatgraph.knowledge.view import View
from threatgraph.records import FrozenInstanceError
from threatgraph.sparql import SparqlSyntaxError, syntax_error


# -- records behave as the dataclasses they replace --------------------------------------------------
def test_frozen_records_compare_hash_and_refuse_changes() -> None:
    a = SparqlSyntaxError("q.rq", 3, 4, "bad", "x")
    assert a == SparqlSyntaxError("q.rq", 3, 4, "bad", "x") and a != SparqlSyntaxError("q.rq", 3, 5, "bad", "x")
    assert hash(a) == hash(("q.rq", 3, 4, "bad", "x"))
    assert repr(a) == "SparqlSyntaxError(path='q.rq', line=3, column=4, reason='bad', text='x')"
    assert a != ("q.rq", 3, 4, "bad", "x")
    with pytest.raises(FrozenInstanceError):
        a.line = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.path
    err = syntax_error("SELECT ?x\nWHERE { ?x ?y }", "q.rq", first_line=3)
    assert err is not None and (err.line, err.column, err.text) == (4, 16, "WHERE { ?x ?y }")


def test_view_repr_leaves_out_its_quads() -> None:
    v = View("k", ("urn:g",), b"<urn:s> <urn:p> <urn:o> <urn:g> .\n")
    assert repr(v) == "View(key='k', release_graphs=('urn:g',))"
    assert v == View("k", ("urn:g",), v.nquads) and v != View("k", None, v.nquads)
    assert v.graphs == ("urn:g",)


def test_release_records_defaults_are_not_shared() -> None:
    r1 = ReleaseInfo("g", "atlas", "1", "loc", "sha", "t", 3)
    r2 = ReleaseInfo("g", "atlas", "1", "loc", "sha", "t", 3)
    assert r1 == r2 and r1.format == "" and r1.counts == {} and r1.counts is not r2.counts
    assert r1.as_json()["counts"] == {}
    with pytest.raises(TypeError):  # a dict field: unhashable, as the frozen dataclass was
        hash(r1)
    res = ImportResult("imported", r1)
    assert res.skipped == {} and res.view_slice is None and res == ImportResult("imported", r2, {})
    e = _Entry("urn:t", "T1")
    e.tactics.add("x")
    assert e.active and _Entry("urn:t", "T1").tactics == set() and e != _Entry("urn:t", "T1")
    e.revoked = True
    assert not e.active
    with pytest.raises(TypeError):
        hash(e)
    assert not dataclasses.is_dataclass(e)


# -- cache files: the digest checked once, then by the file's stamp ---------------------------------
def test_a_checked_cache_file_is_hashed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.nt"
    assert cachefiles.write_checked(path, b"<urn:a> <urn:b> <urn:c> .\n")
    checks: list[int] = []
    original = cachefiles._digest_matches

    def spy(raw: bytes) -> bytes | None:
        checks.append(1)
        return original(raw)

    monkeypatch.setattr(cachefiles, "_digest_matches", spy)
    assert cachefiles.read_checked(path) == b"<urn:a> <urn:b> <urn:c> .\n"
    assert checks == [1] and not path.with_name("c.nt.stamp").exists()  # too recent to be stamped
    monkeypatch.setattr(cachefiles, "STAMP_AGE_NS", -1)
    assert cachefiles.read_checked(path) == b"<urn:a> <urn:b> <urn:c> .\n"
    assert checks == [1, 1] and path.with_name("c.nt.stamp").exists()
    assert cachefiles.read_checked(path) == b"<urn:a> <urn:b> <urn:c> .\n" and checks == [1, 1]  # by its stamp
    # damaged after it was stamped (a rewrite: new inode and times): checked again, refused
    raw = path.read_bytes()
    path.unlink()
    path.write_bytes(raw.replace(b"<urn:c>", b"<urn:d>"))
    assert cachefiles.read_checked(path) is None and checks == [1, 1, 1]
    # a damaged stamp only costs a check
    assert cachefiles.write_checked(path, b"x\n")
    path.with_name("c.nt.stamp").write_bytes(b"\xff")
    assert cachefiles.read_checked(path) == b"x\n" and checks == [1, 1, 1, 1]


def test_a_file_without_digest_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.write_bytes(b"no digest line")
    assert cachefiles.read_checked(path) is None
    path.write_bytes(b"# threatgraph-cache sha256 00\nbody")
    assert cachefiles.read_checked(path) is None
    assert cachefiles.read_checked(tmp_path / "missing") is None


# -- the parser: only the running command's ----------------------------------------------------------
def test_a_named_command_gets_the_only_parser() -> None:
    parser = build_parser("analyze")
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == ["analyze"]  # type: ignore[attr-defined]
    args = parser.parse_args(["analyze", "m.ttl", "--format", "json"])
    assert args.command == "analyze" and args.format == "json"
    listing = next(a for a in build_parser("analyz")._actions if a.dest == "command")
    assert len(listing.choices) == len(build_parser(None)._subparsers._actions[-1].choices) > 10  # type: ignore
