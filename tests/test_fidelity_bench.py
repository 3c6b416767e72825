"""The ground truth readers of bench/fidelity.py (issue 13): answers are taken out of the copy threatgraph
imports, ML risks are classed by the keyword table, pytm threats get the bench's STRIDE category."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fidelity() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fidelity_bench", ROOT / "bench" / "fidelity.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fidelity_bench"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_ml_table_classes_risks_and_leaves_others(fidelity: ModuleType) -> None:
    techs = fidelity.ml_techniques_of("Indirect prompt injection via retrieved documents")
    assert {"AML.T0051.001", "AML.T0070"} <= techs
    assert "AML.T0029" in fidelity.ml_techniques_of("inference-dos: request floods exhaust the GPUs")
    # negative: a classic web risk is no ML risk; a word inside another word does not count ("dos" in "kudos")
    assert fidelity.ml_techniques_of("Missing TLS between web server and database") == set()
    assert fidelity.ml_techniques_of("kudos page") == set()


def test_threagile_truth_removes_the_answers(fidelity: ModuleType) -> None:
    doc = yaml.safe_load((ROOT / "bench/fidelity/models/threagile-genai-rag-support.yaml").read_text(encoding="utf-8"))
    prep = fidelity.threagile_truth(doc, None)
    imported = yaml.safe_load(prep.text)
    assert "individual_risk_categories" not in imported and "risk_tracking" not in imported
    assert imported["technical_assets"].keys() == doc["technical_assets"].keys()
    assert ("internal-llm", "llm-prompt-injection") in prep.ml and len(prep.ml) == 27
    assert ("internal-llm", "ElevationOfPrivilege") in prep.truth.open
    # a risk the table does not class is reported, not counted
    doc["individual_risk_categories"]["Odd"] = {"id": "odd", "description": "Paper jam in the printer", "stride": "tampering",
                                                 "risks_identified": {"x": {"most_relevant_technical_asset": "crm-db"}}}
    prep = fidelity.threagile_truth(doc, None)
    assert prep.ml_unclassified == ["odd"] and ("crm-db", "odd") not in prep.ml


def test_pytm_truth_removes_findings_and_maps_stride(fidelity: ModuleType) -> None:
    doc = json.loads((ROOT / "bench/fidelity/models/pytm-tm-sample.json").read_text(encoding="utf-8"))
    prep = fidelity.pytm_truth(doc)
    imported = json.loads(prep.text)
    assert imported["findings"] == [] and all(e["findings"] == [] for e in imported["elements"])
    assert len(prep.ids) == 100 and ("Web Server", "INP03") in prep.ids
    assert ("Web Server", "Tampering") in prep.truth.open
    assert fidelity.pytm_stride("DE04") == "Repudiation" and fidelity.pytm_stride("ZZ01") is None


def test_threagile_example_recall(fidelity: ModuleType, tmp_path: Path) -> None:
    """The Threagile example's (asset, STRIDE) recall stays at least what was measured (docs/fidelity.md).

    The two pairs left are artifacts of the partial Threagile run the ground truth comes from (incomplete
    model on the LDAP server, whose technology is known; missing hardening on the load balancer with an
    attractiveness computed without the load-balancer divisor); the rest must stay found."""
    res = fidelity.measure(ROOT / "bench/fidelity/models/threagile-example.yaml", tmp_path)
    run = res.runs["plain"]
    assert res.error == "" and res.pairs_open == 20
    assert run.recall_open is not None and run.recall_open >= 0.9
    # the hardening and authentication pairs Threagile generated are found by specific rules
    assert not {"Apache Webserver / Tampering", "ERP System / Tampering", "Git Repository / ElevationOfPrivilege",
                "Customer Contract Database / InformationDisclosure", "Jenkins Buildserver / InformationDisclosure"} & set(run.missed_open)
