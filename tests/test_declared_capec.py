"""Declared threats citing CAPEC ids compared with the derived techniques through the CAPEC → ATT&CK links of
the loaded CAPEC release (issue 12): the real TM-BOM sample of ../shared/formats/tm-bom, a TM-BOM model
whose threats cite a CAPEC id linked to a technique derived on one element (matched there, not on an
element far from it, matched as a model-level threat), and the same model without CAPEC loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from threatgraph.analysis.engine import labels_of
from threatgraph.analysis.findings import read_findings
from threatgraph.analysis.pipeline import analyze
from threatgraph.analysis.techniques import knowledge_paths
from threatgraph.cli import main
from threatgraph.export.context import CAPEC_NOT_LOADED, related_techniques
from threatgraph.knowledge.view import view_of_files

pytestmark = pytest.mark.shared

HERE = Path(__file__).resolve().parent


def _capec_links(shared: Path) -> tuple[dict[str, set[str]], dict[str, str]]:
    """CAPEC id → ATT&CK technique ids and names of the non-deprecated patterns, read from the STIX file itself."""
    doc = json.loads((shared / "capec" / "stix-capec-3.9.json").read_text(encoding="utf-8"))
    links: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for o in doc["objects"]:
        if o.get("type") != "attack-pattern" or o.get("x_capec_status") in ("Deprecated", "Obsolete"):
            continue
        refs = o.get("external_references", [])
        cid = next((r["external_id"] for r in refs if r.get("source_name") == "capec"), None)
        if cid is None:
            continue
        names[cid] = o["name"]
        links[cid] = {r["external_id"].strip() for r in refs if r.get("source_name") == "ATTACK"}
    return links, names


def _analyse_json(model: Path, knowledge: list[str], tmp_path: Path, fmt: str = "json") -> str:
    out = tmp_path / f"report.{fmt}"
    code = main(["analyze", str(model), *(x for k in knowledge for x in ("--knowledge", k)), "--force", "--quiet",
                 "--format", fmt, "-o", str(out)])
    assert code in (0, 1), code
    return out.read_text(encoding="utf-8")


def test_vault_sample_threats_compared_through_capec(shared_data: Path, tmp_path: Path) -> None:
    """Every threat of the sample names no component (model-level) and cites one CAPEC id: each gets its
    CAPEC id's ATT&CK links as CAPEC 3.9 has them, and is matched exactly when a finding anywhere cites a
    linked technique (or its parent / a sub-technique)."""
    sample = shared_data.parent / "formats" / "tm-bom" / "sample-hashicorp-vault.json"
    if not sample.is_file():
        pytest.fail("the TM-BOM sample is missing: ../shared/formats/tm-bom")
    src = json.loads(sample.read_text(encoding="utf-8"))
    links, names = _capec_links(shared_data)
    doc = json.loads(_analyse_json(sample, ["shared"], tmp_path))
    cited_anywhere = {t for f in doc["findings"] for t in f["techniques"]}
    rules = {r.id: r for r in analyze_rules()}
    cited_anywhere |= {t for f in doc["findings"] for t in rules[f["rule"]].attack if t.startswith("T")}
    threats = {t["iri"].rsplit(":", 1)[-1]: t for t in doc["declared"]["threats"]}
    assert set(threats) == {t["symbolic_name"] for t in src["threats"]}
    linked = matched = 0
    for t in src["threats"]:
        got = threats[t["symbolic_name"]]
        assert got["elements"] == [] and not t.get("components_affected")
        cids = sorted({f"CAPEC-{m['capec_id']}" for m in t.get("attack_mechanisms", [])})
        capec = got["capec"]
        assert capec["cited"] == cids
        want = {c: sorted(links.get(c, set())) for c in cids}
        assert capec["links"] == want
        assert capec["names"] == {c: names[c] for c in cids if want[c]}
        expected = {(c, tid, lk) for c in cids for lk in want[c] for tid in cited_anywhere if related_techniques(tid, lk)}
        assert {(m["capec"], m["technique"], m["linked"]) for m in capec["matches"]} == expected
        assert got["matched"] == bool(expected or got["derived_by"])
        linked += any(want.values())
        matched += bool(expected)
        assert capec["status"] == ("matched" if expected else "not matched" if any(want.values()) else "no ATT&CK link")
    summary = doc["declared"]["capec"]
    assert summary == {"loaded": True, "citing": len(src["threats"]), "linked": linked, "matched": matched}
    assert linked > 0  # the sample's CAPEC ids do link to ATT&CK (CAPEC-122, -125, -555)


def analyze_rules() -> list[Any]:
    from threatgraph.analysis.rules import load_rules

    return list(load_rules())


def _fraud_model() -> dict[str, Any]:
    """A TM-BOM model of an ML scoring service (as tests/test_interchange_tmbom.py's), without threats."""
    return {
        "$schema": "https://github.com/OWASP/www-project-threat-model-library/blob/v1.0.2/threat-model.schema.json",
        "version": "1.0",
        "scope": {"title": "Fraud scoring", "description": "Scores card payments"},
        "trust_zones": [{"symbolic_name": "internet", "title": "Internet", "description": "Outside"},
                        {"symbolic_name": "ml", "title": "ML platform", "description": "Training and serving"}],
        "trust_boundaries": [{"trust_zone_a": "internet", "trust_zone_b": "ml"}],
        "actors": [{"symbolic_name": "merchant", "title": "Merchant", "description": "Sends payments",
                    "trust_zone": "internet"}],
        "components": [
            {"symbolic_name": "scoring", "title": "Scoring inference service", "description": "Serves the model",
             "trust_zone": "ml"},
            {"symbolic_name": "trainer", "title": "Training pipeline", "description": "Nightly retraining",
             "trust_zone": "ml"},
            {"symbolic_name": "wiki", "title": "Team wiki", "description": "Documentation pages", "trust_zone": "ml"}],
        "data_stores": [{"symbolic_name": "lake", "title": "Data lake", "description": "Raw payments", "type": "object",
                         "trust_zone": "ml"}],
        "data_sets": [{"symbolic_name": "train-set", "title": "Fraud training dataset", "description": "Labelled payments",
                       "placements": [{"data_store": "lake", "encrypted": True}], "data_sensitivity": ["pii"]}],
        "data_flows": [
            {"symbolic_name": "score-request", "title": "Score request", "description": "A payment to score",
             "source": {"type": "actor", "object": "merchant"}, "destination": {"type": "component", "object": "scoring"},
             "encrypted": True},
            {"symbolic_name": "read-lake", "title": "Read training data", "description": "Batch read",
             "source": {"type": "data_store", "object": "lake"}, "destination": {"type": "component", "object": "trainer"},
             "encrypted": False}],
        "threats": [],
    }


def _cited(findings: list[Any], rules: dict[str, Any]) -> dict[str, set[str]]:
    """Element or flow IRI → ATT&CK technique ids its findings cite (applications and rule headers)."""
    out: dict[str, set[str]] = {}
    for f in findings:
        ids = {t.id for t in f.techniques} | {t for t in rules[f.rule_id].attack if t.startswith("T")}
        out.setdefault(f.focus, set()).update(i for i in ids if i.startswith("T"))
    return out


def test_declared_capec_matches_on_its_element_only(shared_data: Path, tmp_path: Path) -> None:
    doc = _fraud_model()
    base = tmp_path / "base.json"
    base.write_text(json.dumps(doc), encoding="utf-8")
    a = analyze([str(base)], knowledge=["shared"], force=True)
    labels = labels_of(a.store)
    rules = {r.id: r for r in a.rules}
    cited = _cited(read_findings(a.store, labels), rules)
    links, _ = _capec_links(shared_data)
    by_title = {label: i for i, label in labels.items()}
    sym = {e["symbolic_name"]: by_title[e["title"]] for sec in ("components", "data_stores", "actors") for e in doc[sec]}
    flows = {by_title[f["title"]]: {sym[f["source"]["object"]], sym[f["destination"]["object"]]} for f in doc["data_flows"]}

    def near(s: str) -> set[str]:
        """Techniques cited on the element and on the flows from or to it."""
        out = set(cited.get(sym[s], set()))
        for f, ends in flows.items():
            if sym[s] in ends:
                out |= cited.get(f, set())
        return out

    # a component with a technique some CAPEC id links to, and an element where none of that id's techniques is cited
    choice = None
    for s in sorted(sym):
        for c in sorted(links):
            if any(related_techniques(t, lk) for t in near(s) for lk in links[c]):
                far = [o for o in sorted(sym) if not any(related_techniques(t, lk) for t in near(o) for lk in links[c])]
                if far:
                    choice = (s, c, far[0])
                    break
        if choice:
            break
    assert choice is not None, "no element of the fixture carries a technique a CAPEC id links to"
    on, cid, off = choice
    num = int(cid.split("-")[1])
    doc["threats"] = [
        {"symbolic_name": "on", "title": "Declared on the element", "components_affected": [on],
         "attack_mechanisms": [{"capec_id": num}]},
        {"symbolic_name": "off", "title": "Declared elsewhere", "components_affected": [off],
         "attack_mechanisms": [{"capec_id": num}]},
        {"symbolic_name": "whole", "title": "Declared on the model", "attack_mechanisms": [{"capec_id": num}]},
        {"symbolic_name": "plain", "title": "Cites no CAPEC", "components_affected": [on]},
    ]
    model = tmp_path / "declared.json"
    model.write_text(json.dumps(doc), encoding="utf-8")
    out = json.loads(_analyse_json(model, ["shared"], tmp_path))
    threats = {t["iri"].rsplit(":", 1)[-1]: t for t in out["declared"]["threats"]}
    want = {(cid, t, lk) for t in near(on) for lk in links[cid] if related_techniques(t, lk)}
    assert want
    got_on = threats["on"]["capec"]
    assert got_on["status"] == "matched" and threats["on"]["matched"] is True
    assert {(m["capec"], m["technique"], m["linked"]) for m in got_on["matches"]} == want
    assert all(m["rules"] for m in got_on["matches"])
    assert threats["off"]["capec"]["status"] == "not matched" and threats["off"]["capec"]["matches"] == []
    assert threats["off"]["matched"] is False
    assert threats["whole"]["elements"] == [] and threats["whole"]["capec"]["status"] == "matched"
    assert "capec" not in threats["plain"]
    assert out["declared"]["capec"]["matched"] == 2
    # the same comparison in the Markdown report: a CAPEC → ATT&CK column naming the technique matched
    md = _analyse_json(model, ["shared"], tmp_path, fmt="markdown")
    assert "CAPEC → ATT&CK" in md and f"via {cid}" in md and f"{cid} → " in md

    # without CAPEC: the comparison says it is not loaded and how to load it, instead of "not matched"
    no_capec = [p for k, p in knowledge_paths(["shared"]) if k != "capec"]
    out2 = json.loads(_analyse_json(model, no_capec, tmp_path))
    for name in ("on", "off", "whole"):
        c = out2["declared"]["threats"][[t["iri"].rsplit(":", 1)[-1] for t in out2["declared"]["threats"]].index(name)]["capec"]
        assert c["status"] == "not loaded" and c["message"] == CAPEC_NOT_LOADED and "matches" not in c
    assert out2["declared"]["capec"]["loaded"] is False
    table = _analyse_json(model, no_capec, tmp_path, fmt="table")
    assert "CAPEC not loaded" in table


def test_view_keeps_capec_links_small(shared_data: Path) -> None:
    """The compiled view with CAPEC holds every non-deprecated CAPEC → ATT&CK link (revoked techniques
    replaced) and the linked patterns' names, and no ATT&CK technique only CAPEC names."""
    paths = [p for _, p in knowledge_paths(["shared"])]
    with_capec = view_of_files(paths)
    without = view_of_files([p for k, p in knowledge_paths(["shared"]) if k != "capec"])
    pairs = {(q.subject.value.rsplit("/", 1)[-1], q.object.value.rsplit("/", 1)[-1])
             for q in with_capec.quads if q.predicate.value.endswith("#capecTechnique")}
    links, names = _capec_links(shared_data)
    want = {(c, t) for c, ts in links.items() for t in ts}
    assert {c for c, _ in pairs} == {c for c, _ in want}
    # a link to a technique revoked in ATT&CK 18.1 is replaced by its successor: the same CAPEC id, another technique
    missing, extra = want - pairs, pairs - want
    assert len(missing) < len(want) // 20 and {c for c, _ in missing} == {c for c, _ in extra}
    capec_graph = [q for q in with_capec.quads if "/release/capec/" in q.graph_name.value]
    assert {q.object.value for q in capec_graph if q.predicate.value.endswith("#label")} == {names[c] for c, _ in want}
    attack = {q.subject for q in with_capec.quads if "/release/attack-enterprise/" in q.graph_name.value}
    attack0 = {q.subject for q in without.quads if "/release/attack-enterprise/" in q.graph_name.value}
    assert attack == attack0
    assert not any(q.predicate.value.endswith("capecTechnique") for q in without.quads)


def test_store_with_imported_capec(shared_data: Path, tmp_path: Path) -> None:
    """``analyze --store DIR`` after ``threatgraph import capec``: the view of the store carries the links
    (here without ATT&CK, so exactly CAPEC's own), and the comparison reports them."""
    store = tmp_path / "store"
    assert main(["import", "capec", str(shared_data / "capec" / "stix-capec-3.9.json"), "--store", str(store)]) == 0
    links, names = _capec_links(shared_data)
    cid = min((c for c in links if links[c]), key=lambda c: int(c.split("-")[1]))
    doc = _fraud_model()
    doc["threats"] = [{"symbolic_name": "t", "title": "Cites CAPEC", "components_affected": ["scoring"],
                       "attack_mechanisms": [{"capec_id": int(cid.split("-")[1])}]}]
    model = tmp_path / "m.json"
    model.write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "r.json"
    assert main(["analyze", str(model), "--store", str(store), "--force", "--quiet", "--format", "json", "-o", str(out)]) in (0, 1)
    capec = json.loads(out.read_text(encoding="utf-8"))["declared"]["threats"][0]["capec"]
    assert capec["links"] == {cid: sorted(links[cid])} and capec["names"] == {cid: names[cid]}
    assert capec["status"] in ("matched", "not matched")
