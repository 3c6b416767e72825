"""D3FEND countermeasures inferred the D3FEND way, and their coverage of ATT&CK Enterprise 17.1.

D3FEND 1.2.0 models exactly the ATT&CK 17.1 technique set. A technique gets a countermeasure when the
technique (or, with inheritance, its parent technique) acts on a digital artifact A and the
countermeasure (or its parent) acts on A or a narrower kind of A (queries/derive-findings/
30-countermeasures-attack.rq). MITRE reports about 41 % of ATT&CK techniques covered; reading the data
with each technique's own artifacts gives 40.9 %, with sub-techniques inheriting their parent's
artifacts 44.8 % (docs/risk.md). The engine uses inheritance.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.techniques import d3fend_coverage, d3fend_pattern
from threatgraph.knowledge.releases import load_release
from threatgraph.store import Store, open_store

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def store(shared_data: Path) -> Store:
    s = open_store()
    load_release(s, "attack", str(shared_data / "attack/enterprise-attack-17.1.stix20.json"))
    load_release(s, "d3fend", str(shared_data / "d3fend/d3fend-protege-1.2.0.ttl"))
    return s


ATTACK = "https://w3id.org/threatgraph/graph/release/attack-enterprise/17.1"
D3FEND = "https://w3id.org/threatgraph/graph/release/d3fend/1.2.0"


def test_share_with_subtechnique_inheritance(store: Store) -> None:
    cov = d3fend_coverage(store, ATTACK, D3FEND, inherit=True)
    print(f"D3FEND 1.2.0 on ATT&CK 17.1, inherited: {cov.covered}/{cov.active} = {100 * cov.share:.1f} %")
    assert cov.active == 679  # 211 techniques + 468 sub-techniques active in 17.1 (data README)
    assert 0.40 <= cov.share <= 0.47


def test_share_own_artifacts_matches_mitre(store: Store) -> None:
    own = d3fend_coverage(store, ATTACK, D3FEND, inherit=False)
    inherited = d3fend_coverage(store, ATTACK, D3FEND, inherit=True)
    print(f"D3FEND 1.2.0 on ATT&CK 17.1, own artifacts: {own.covered}/{own.active} = {100 * own.share:.1f} %")
    assert 0.38 <= own.share <= 0.44  # MITRE: about 41 %
    assert own.covered < inherited.covered
    assert set(own.per_technique) <= set(inherited.per_technique)


def test_known_technique_countermeasures(store: Store) -> None:
    cov = d3fend_coverage(store, ATTACK, D3FEND)
    # LSASS Memory accesses a process (d3f:Process): process analysis countermeasures apply
    assert cov.per_technique.get("T1003.001", 0) > 0
    # negative: revoked techniques are not active, so they are never counted
    assert "T1086" not in cov.per_technique


def test_pattern_is_the_stage_query() -> None:
    text = d3fend_pattern()
    assert "?b rdfs:subClassOf* ?a" in text and "?d3t rdfs:subClassOf* ?tx" in text
    assert "?d3t rdfs:subClassOf? ?tx" in d3fend_pattern(inherit=False)


def test_analyze_on_17_1_data_components_and_countermeasures(store: Store, examples_dir: Path) -> None:
    """With ATT&CK 17.1 as the newest release: detections are data components; D3FEND countermeasures
    come from the ATT&CK technique's artifacts; ATLAS techniques are cited unresolved (ATLAS not loaded)."""
    from threatgraph.analysis.engine import Engine, labels_of
    from threatgraph.analysis.findings import read_findings

    Engine(store).analyze([str(examples_dir / "rag-assistant.ttl")])
    findings = read_findings(store, labels_of(store))
    techs = {t.id: t for f in findings for t in f.techniques}
    atlas = [t for i, t in techs.items() if i.startswith("AML.")]
    assert techs and atlas and all(t.unresolved and not t.release for t in atlas)
    t1190 = techs["T1190"]
    assert t1190.release == "attack-enterprise/17.1"
    assert {d for d, _ in t1190.detections} == {"data component"}
    assert t1190.countermeasures and all(c[0].startswith("D3-") for c in t1190.countermeasures)
    assert all("←" in c[2] for c in t1190.countermeasures)  # the inference is explained
