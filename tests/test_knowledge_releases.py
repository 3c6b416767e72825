"""Releases side by side: provenance, newest release, replacement of revoked techniques, diffs, CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from threatgraph.cli import main
from threatgraph.errors import InputError
from threatgraph.knowledge.releases import (
    diff_releases,
    load_release,
    newest_release,
    releases,
    replacement_for,
    resolve_release,
    version_key,
)
from threatgraph.resources import shared_data_dir
from threatgraph.store import open_store
from threatgraph.store.base import Store
from threatgraph.terms import ATTACK

pytestmark = pytest.mark.shared

DATA = shared_data_dir() or Path("/missing")
ATT = DATA / "attack"
if not (ATT / "ics-attack-17.1.json").is_file():  # pragma: no cover - only without the shared data
    pytest.skip("shared data not available (THREATGRAPH_SHARED_DATA)", allow_module_level=True)

NEW_IN_18 = [
    "T1036.012", "T1059.013", "T1204.005", "T1213.006", "T1518.002", "T1546.018",
    "T1562.013", "T1677", "T1678", "T1679", "T1680", "T1681",
]  # fmt: skip
G = "https://w3id.org/threatgraph/graph/release/"


@pytest.fixture(scope="module")
def store() -> Store:
    s = open_store()
    for name in ("enterprise-attack-17.1.stix20.json", "enterprise-attack-18.1.stix20.json"):
        load_release(s, "attack", str(ATT / name))
    for name in ("ics-attack-18.1.json", "ics-attack-17.1.json"):  # order of import does not matter
        load_release(s, "attack", str(ATT / name))
    return s


def test_newest_release_and_resolution(store: Store) -> None:
    assert newest_release(store, "attack-enterprise") == G + "attack-enterprise/18.1"
    assert newest_release(store, "attack") == G + "attack-enterprise/18.1"
    assert newest_release(store, "attack-ics") == G + "attack-ics/18.1"
    assert newest_release(store, "atlas") is None
    assert resolve_release(store, "attack-ics/17.1") == G + "attack-ics/17.1"
    assert resolve_release(store, "attack-ics") == G + "attack-ics/18.1"
    with pytest.raises(InputError, match="not loaded"):
        resolve_release(store, "attack-enterprise/16.0")
    assert sorted(["10.0", "9.1", "18.1", "17.1", "5.6.0"], key=version_key) == [
        "5.6.0", "9.1", "10.0", "17.1", "18.1",
    ]  # fmt: skip


def test_provenance_records(store: Store) -> None:
    infos = {(i.source, i.version): i for i in releases(store)}
    assert set(infos) == {
        ("attack-enterprise", "17.1"), ("attack-enterprise", "18.1"), ("attack-ics", "17.1"), ("attack-ics", "18.1"),
    }  # fmt: skip
    ent = infos[("attack-enterprise", "18.1")]
    path = ATT / "enterprise-attack-18.1.stix20.json"
    assert ent.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ent.location == str(path)
    assert ent.format == "STIX 2.0"
    assert infos[("attack-ics", "18.1")].format == "STIX 2.1"
    assert ent.counts["attack-pattern"] == 835
    assert ent.counts["relationship"] == 20048
    assert ent.quads == sum(1 for _ in store.quads(ent.graph))
    rows = store.select(
        f"""SELECT ?src ?t WHERE {{ GRAPH <https://w3id.org/threatgraph/graph/releases> {{
            <{ent.graph}> a prov:Entity ; prov:wasDerivedFrom ?src ; prov:generatedAtTime ?t }} }}"""
    )
    assert [r["src"].value for r in rows] == [path.resolve().as_uri()]
    assert rows[0]["t"].datatype.value.endswith("#dateTime")


def test_diff_17_to_18_reports_exactly_the_12_new_techniques(store: Store) -> None:
    d = diff_releases(store, G + "attack-enterprise/17.1", store, G + "attack-enterprise/18.1")
    tech = d["techniques"]
    assert [x["id"] for x in tech["added"]] == NEW_IN_18
    assert tech["removed"] == tech["revoked"] == tech["deprecated"] == []
    assert d["mitigations"]["added"] == d["mitigations"]["removed"] == []
    changed = {c["id"]: c["changes"] for c in d["mitigations"]["changed"]}
    assert set(changed["M1017"]["techniques"]["added"]) >= {"T1204.005", "T1213.006"}
    bumps = [c for c in tech["changed"] if "version" in c["changes"]]
    assert bumps and all(c["changes"]["version"]["old"] != c["changes"]["version"]["new"] for c in bumps)
    # the reverse direction: the same 12, removed
    back = diff_releases(store, G + "attack-enterprise/18.1", store, G + "attack-enterprise/17.1")
    assert [x["id"] for x in back["techniques"]["removed"]] == NEW_IN_18
    assert back["techniques"]["added"] == []


def _edited_ics(tmp_path: Path, version: str) -> str:
    """ICS 17.1 re-labelled as ``version`` with T0800 removed, T0801 revoked by T0802, T0803 deprecated."""
    b: dict[str, Any] = json.loads((ATT / "ics-attack-17.1.json").read_text(encoding="utf-8"))

    def ext(o: dict[str, Any]) -> str | None:
        return next((r.get("external_id") for r in o.get("external_references", [])), None)

    by_id = {ext(o): o for o in b["objects"] if o["type"] == "attack-pattern"}
    gone = by_id["T0800"]["id"]
    b["objects"] = [
        o for o in b["objects"] if o["id"] != gone and gone not in (o.get("source_ref"), o.get("target_ref"))
    ]
    by_id["T0801"]["revoked"] = True
    by_id["T0803"]["x_mitre_deprecated"] = True
    b["objects"].append(
        {
            "type": "relationship", "id": "relationship--00000000-0000-4000-8000-0000000000aa",
            "relationship_type": "revoked-by", "source_ref": by_id["T0801"]["id"],
            "target_ref": by_id["T0802"]["id"], "spec_version": "2.1",
        }
    )  # fmt: skip
    for o in b["objects"]:
        if o["type"] == "x-mitre-collection":
            o["x_mitre_version"] = version
    p = tmp_path / f"ics-attack-{version}.json"
    p.write_text(json.dumps(b), encoding="utf-8")
    return str(p)


def test_replacement_for_follows_the_newest_release(tmp_path: Path) -> None:
    s = open_store()
    load_release(s, "attack", str(ATT / "ics-attack-17.1.json"))
    assert replacement_for(s, ATTACK["T0801"]) == ("active", None)
    load_release(s, "attack", _edited_ics(tmp_path, "99.0"))
    assert newest_release(s, "attack-ics") == G + "attack-ics/99.0"
    assert replacement_for(s, ATTACK["T0801"]) == ("revoked", ATTACK["T0802"])
    assert replacement_for(s, ATTACK["T0803"]) == ("deprecated", None)
    assert replacement_for(s, ATTACK["T0800"]) == ("removed", None)
    assert replacement_for(s, ATTACK["T0802"]) == ("active", None)
    assert replacement_for(s, ATTACK["T9999"]) == ("unknown", None)
    d = diff_releases(s, G + "attack-ics/17.1", s, G + "attack-ics/99.0")["techniques"]
    assert [x["id"] for x in d["removed"]] == ["T0800"]
    assert d["revoked"] == [{"id": "T0801", "name": d["revoked"][0]["name"], "replacement": "T0802"}]
    assert [x["id"] for x in d["deprecated"]] == ["T0803"]
    assert d["added"] == []


def test_real_revocation_in_enterprise(store: Store) -> None:
    assert replacement_for(store, ATTACK["T1574.002"]) == ("revoked", ATTACK["T1574.001"])
    assert replacement_for(store, ATTACK["T1053.004"]) == ("deprecated", None)
    assert replacement_for(store, ATTACK["T1059.001"]) == ("active", None)


# -- CLI ---------------------------------------------------------------------------------------------
def test_cli_import_releases_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = str(tmp_path / "store")
    ics17, ics18 = str(ATT / "ics-attack-17.1.json"), str(ATT / "ics-attack-18.1.json")
    assert main(["import", "attack", ics17, "--store", st, "-q"]) == 0
    assert "attack-ics/17.1: imported" in capsys.readouterr().out
    assert main(["import", "attack", ics18, "--store", st]) == 0
    out, err = capsys.readouterr()
    assert "attack-ics/18.1: imported" in out
    assert "parsing" in err and "writing" in err  # progress on stderr
    assert main(["import", "attack", ics18, "--store", st]) == 0
    assert "already loaded" in capsys.readouterr().out
    assert main(["releases", "--store", st]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["source", "version", "triples"]
    assert [ln.split()[:3] for ln in table[1:]] == [
        ["attack-ics", "17.1", "8,491"],  # 11,014 before issue 14's smaller reified relationships
        ["*", "attack-ics", "18.1"],
    ]
    assert main(["releases", "--store", st, "--json"]) == 0
    assert [r["version"] for r in json.loads(capsys.readouterr().out)] == ["17.1", "18.1"]
    assert (
        main(["diff-release", "attack-ics/17.1", "attack-ics/18.1", "--format", "json", "--store", st]) == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"old", "new", "techniques", "mitigations"}
    assert (
        main(["diff-release", "attack-ics/17.1", "attack-ics/18.1", "--format", "markdown", "--store", st])
        == 0
    )
    assert "## Techniques" in capsys.readouterr().out
    # file arguments: read into a scratch store, the persistent one is not touched
    assert main(["diff-release", ics17, ics18, "--format", "table", "--store", st]) == 0
    assert "TECHNIQUES:" in capsys.readouterr().out
    assert main(["diff-release", "attack-ics/1.0", "attack-ics/18.1", "--store", st]) == 2
    assert "not loaded" in capsys.readouterr().err
    assert main(["import", "attack", str(tmp_path / "missing.json"), "--store", st]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_store_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("THREATGRAPH_STORE", str(tmp_path / "envstore"))
    assert main(["releases"]) == 2  # a read command does not create a store (issue 11)
    assert "no store at " + str(tmp_path / "envstore") in capsys.readouterr().err
    assert not (tmp_path / "envstore").exists()
    assert main(["import", "atlas", str(DATA / "atlas" / "ATLAS.yaml"), "-q"]) == 0
    capsys.readouterr()
    assert main(["releases"]) == 0
    assert "atlas" in capsys.readouterr().out
    assert (tmp_path / "envstore").is_dir()


def test_import_compiles_the_view_from_the_quads_it_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`threatgraph import` compiles the knowledge view from the quads it kept while writing the release
    (ViewSlice), not read back from the on-disk store: the same view as compiled from the store; a view
    already cached is neither compiled nor read again."""
    from pyoxigraph import RdfFormat, parse

    from threatgraph.knowledge import view

    monkeypatch.setenv("THREATGRAPH_CACHE", str(tmp_path / "cache"))
    st = str(tmp_path / "store")
    assert main(["import", "attack", str(ATT / "enterprise-attack-18.1.stix20.json"), "--store", st, "-q"]) == 0
    cached = list((tmp_path / "cache" / "views").glob("*.nq"))
    assert len(cached) == 1
    kept = {str(q) for q in parse(cached[0].read_bytes(), format=RdfFormat.N_QUADS)}
    store = open_store(st, must_exist=True)
    graphs = [g for g, _ in view._newest(store)]
    from_store = {str(q) for q in view.compile_view(store, graphs)}
    assert kept == from_store
    assert len(kept) > 2000 and any("kb#mitigates" in q for q in kept)

    def no_compile(*_: Any) -> list[Any]:
        raise AssertionError("compiled again")

    monkeypatch.setattr(view, "compile_view", no_compile)
    monkeypatch.setattr(view, "_parse_nquads", no_compile)
    assert view.prepare_view(store) == cached[0].stem
    cached[0].unlink()  # negative case: without the cached file it is compiled
    with pytest.raises(AssertionError, match="compiled again"):
        view.prepare_view(store)
