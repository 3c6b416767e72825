"""``check-ontology`` (HermiT over the shipped ontology + a user's extension) and ``analyze --ontology``.

HermiT needs owlready2 (the ``reasoner`` extra) and Java; those tests skip with the reason when either
is missing. The missing-dependency messages, the extension loader and ``analyze --ontology`` need neither.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from threatgraph.analysis.ontology import load_ontology
from threatgraph.cli import main
from threatgraph.errors import InputError

REPO = Path(__file__).resolve().parent.parent
PREFIXES = """@prefix tg:     <https://w3id.org/threatgraph/ontology#> .
@prefix tgml:   <https://w3id.org/threatgraph/ml#> .
@prefix stride: <https://w3id.org/threatgraph/stride#> .
@prefix owl:    <http://www.w3.org/2002/07/owl#> .
@prefix rdfs:   <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos:   <http://www.w3.org/2004/02/skos/core#> .
@prefix acme:   <https://acme.example/ml#> .
"""
# A consistent extension: a new ML class in tgml:, an applicability axiom, and a class in the user's namespace.
GOOD = PREFIXES + """
tgml:FeatureFlagStore a owl:Class ;
    rdfs:subClassOf tg:DataStore ;
    rdfs:label "Feature flag store"@en ;
    skos:definition "Holds model rollout flags."@en .

tgml:FeatureFlagStore rdfs:subClassOf
    [ a owl:Restriction ; owl:onProperty tg:perElementThreat ; owl:hasValue stride:ElevationOfPrivilege ] .

acme:ShadowModel a owl:Class ; rdfs:subClassOf tgml:ModelArtifact ; rdfs:label "Shadow model"@en .
"""
# Line 9: a class under two disjoint element kinds; line 15: a typo of tgml:Guardrail.
UNSAT = PREFIXES + """
acme:ServingCache a owl:Class ;
    rdfs:subClassOf tgml:InferenceEndpoint , tg:DataStore ;
    rdfs:label "Serving cache"@en .

acme:Fine a owl:Class ; rdfs:subClassOf tg:Process .

acme:filter a tgml:GuardRail .
"""
# acme:flags is both a data store (via acme:FlagStore) and an inference endpoint (a process): inconsistent.
INCONSISTENT = PREFIXES + """
acme:FlagStore a owl:Class ;
    rdfs:subClassOf tg:DataStore ;
    rdfs:label "Flag store"@en .

acme:Scorer a owl:Class ; rdfs:subClassOf tg:Process .

acme:flags a acme:FlagStore ;
    rdfs:label "rollout flags" .

acme:flags a tgml:InferenceEndpoint .
acme:other a acme:Scorer .
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def hermit() -> None:
    pytest.importorskip("owlready2", reason="owlready2 (the reasoner extra) is not installed")
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        pytest.skip("Java is not installed (HermiT needs a JVM)")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["check-ontology", *argv, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_consistent_extension(hermit: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ext = write(tmp_path, "good.ttl", GOOD)
    code, doc = run_json(capsys, "--extra", str(ext))
    assert code == 0, doc
    assert doc["consistent"] is True and doc["unsatisfiable"] == [] and doc["undeclared"] == []
    assert doc["extensionTriples"] > 8 and doc["hermitRuns"] == 1


def test_unsatisfiable_class_and_typo(hermit: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ext = write(tmp_path, "unsat.ttl", UNSAT)
    code, doc = run_json(capsys, "--extra", str(ext))
    assert code == 1 and doc["consistent"] is True
    assert [u["name"] for u in doc["unsatisfiable"]] == ["acme:ServingCache"]
    axioms = {(a["axiom"], a["at"]) for a in doc["unsatisfiable"][0]["axioms"]}
    assert axioms == {
        ("acme:ServingCache rdfs:subClassOf tgml:InferenceEndpoint", f"{ext}:9"),
        ("acme:ServingCache rdfs:subClassOf tg:DataStore", f"{ext}:9"),
    }
    assert doc["undeclared"] == [{"term": "tgml:GuardRail", "at": f"{ext}:15"}]
    main(["check-ontology", "--extra", str(ext)])
    text = capsys.readouterr().out
    assert "UNSATISFIABLE class acme:ServingCache" in text and "UNDECLARED term tgml:GuardRail" in text


def test_inconsistent_extension_names_a_minimal_set(
    hermit: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ext = write(tmp_path, "bad.ttl", INCONSISTENT)
    code, doc = run_json(capsys, "--extra", str(ext))
    assert code == 1 and doc["consistent"] is False and doc["conflictMinimal"] is True
    assert {(c["axiom"], c["at"]) for c in doc["conflict"]} == {
        ("acme:FlagStore rdfs:subClassOf tg:DataStore", f"{ext}:9"),
        ("acme:flags rdf:type acme:FlagStore", f"{ext}:15"),
        ("acme:flags rdf:type tgml:InferenceEndpoint", f"{ext}:15"),
    }


def test_missing_owlready2(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "owlready2", None)  # import fails as if not installed
    assert main(["check-ontology", "--extra", str(write(tmp_path, "good.ttl", GOOD))]) == 2
    err = capsys.readouterr().err
    assert "owlready2, which is not installed" in err and "threatgraph[reasoner]" in err


def test_missing_java(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("owlready2")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jvm"))
    assert main(["check-ontology"]) == 2
    err = capsys.readouterr().err
    assert "needs a Java runtime" in err and "no-jvm" in err and "JAVA_HOME" in err


def test_bad_extension_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "broken.ttl", PREFIXES + "\nacme:X a owl:Class ;\n  rdfs:label \"x\" \n acme:Y .\n")
    assert main(["check-ontology", "--extra", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "cannot parse" in err and "Traceback" not in err
    assert main(["analyze", str(REPO / "data/examples/rag-assistant.ttl"), "--ontology", str(bad)]) == 2
    assert main(["analyze", str(REPO / "data/examples/rag-assistant.ttl"), "--ontology", str(tmp_path / "no.ttl")]) == 2


def test_load_ontology_extra_is_cached_per_set_of_files(tmp_path: Path) -> None:
    ext = write(tmp_path, "good.ttl", GOOD)
    shipped = load_ontology()
    extended = load_ontology(extra=[ext])
    assert load_ontology(extra=[str(ext)]) is extended and load_ontology() is shipped
    fs = "https://w3id.org/threatgraph/ml#FeatureFlagStore"
    assert fs in extended.classes and fs not in shipped.classes
    assert len(extended.graph) > len(shipped.graph)
    with pytest.raises(InputError):
        load_ontology(extra=[tmp_path / "missing.ttl"])


MODEL = """@prefix tg:   <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex:   <https://example.org/flags#> .
ex:sys a tg:System ; rdfs:label "Flags" .
ex:zone a tg:TrustZone ; rdfs:label "internal" ; tg:trustLevel 2 .
ex:api a tg:Process ; rdfs:label "rollout API" ; tg:partOf ex:sys ; tg:inZone ex:zone .
ex:flags a tgml:FeatureFlagStore ; rdfs:label "flag store" ; tg:partOf ex:sys ; tg:inZone ex:zone ;
    tg:holds ex:flagData .
ex:flagData a tg:DataAsset ; rdfs:label "flag values" ; tg:classification tg:Internal .
ex:f1 a tg:DataFlow ; rdfs:label "read flags" ; tg:source ex:flags ; tg:target ex:api ; tg:partOf ex:sys ;
    tg:carries ex:flagData .
"""
RULE = """# id: ACME-STRIDE-E-001
# title: Feature flags change model behaviour without review
# framework: STRIDE
# category: stride:ElevationOfPrivilege
# severity: medium
# focus: element
# source: ACME guideline 12
# explanation: {focus} decides which model version serves users.
# remediation: Restrict who may change the flags and audit every change.
SELECT ?focus WHERE { ?focus a tgml:FeatureFlagStore }
"""


def categories_of(doc: dict[str, Any], label: str) -> set[tuple[str, str]]:
    return {(f["rule"], c["label"]) for f in doc["findings"] if f["element"]["label"] == label for c in f["categories"]}


def test_analyze_uses_the_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ext = write(tmp_path, "good.ttl", GOOD)
    model = write(tmp_path, "model.ttl", MODEL)
    assert main(["analyze", str(model), "-f", "json"]) == 0
    out = capsys.readouterr()
    plain = json.loads(out.out)
    assert "FeatureFlagStore> is not defined" in out.err
    assert main(["analyze", str(model), "--ontology", str(ext), "-f", "json"]) == 0
    out = capsys.readouterr()
    extended = json.loads(out.out)
    assert "not defined" not in out.err and extended["warnings"] == []
    # the extension's applicability axiom adds STRIDE elevation of privilege to the flag store (closure)
    added = categories_of(extended, "flag store") - categories_of(plain, "flag store")
    assert added == {("TG-PE-STRIDE", "Elevation of privilege")}
    # a user rule naming the extension's class is checked against the extended ontology
    (tmp_path / "rules").mkdir()
    write(tmp_path / "rules", "ACME-STRIDE-E-001.rq", RULE)
    assert main(["analyze", str(model), "--rules", str(tmp_path / "rules")]) == 2
    assert "tgml:FeatureFlagStore is not defined" in capsys.readouterr().err
    assert main(["analyze", str(model), "--rules", str(tmp_path / "rules"), "--ontology", str(ext), "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert ("ACME-STRIDE-E-001", "Elevation of privilege") in categories_of(doc, "flag store")


def test_reasoner_extra_is_declared() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    extras = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    assert 'reasoner = ["owlready2' in extras
