"""CLI behaviour: exit codes, bad input messages (file and line, no traceback), output formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from threatgraph.cli import main

GOOD = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <http://example.org/cli#> .
ex:z1 a tg:TrustZone . ex:z2 a tg:TrustZone .
ex:user a tg:ExternalEntity ; rdfs:label "User" ; tg:inZone ex:z1 .
ex:api a tg:Process ; rdfs:label "API" ; tg:inZone ex:z2 .
ex:req a tg:DataFlow ; rdfs:label "request" ; tg:source ex:user ; tg:target ex:api ;
    tg:carries ex:query ; tg:authenticated true ; tg:encryptedInTransit true .
ex:query a tg:DataAsset ; rdfs:label "query" ; tg:classification tg:Internal .
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_table_output_groups_by_element(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["analyze", str(write(tmp_path, "m.ttl", GOOD)), "--detail", "full"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "API (Process)  <http://example.org/cli#api>" in out
    # the per-element baseline is one line per framework, naming the table and the element kind
    assert "STRIDE per element" in out and "[TG-PE-STRIDE]" in out and "table: Process)" in out
    assert "Elevation of privilege" in out
    assert "Unawareness" not in out  # no element handles personal data: no LINDDUN baseline (issue 13)


def test_json_output_has_explanations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(write(tmp_path, "m.ttl", GOOD)), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    api = [f for f in doc["findings"] if f["element"]["iri"] == "http://example.org/cli#api"]
    cats = {c["label"] for f in api for c in f["categories"]}
    assert {"Spoofing", "Tampering", "Repudiation", "Information disclosure", "Denial of service",
            "Elevation of privilege"} <= cats
    baseline = [f for f in api if f["rule"] == "TG-PE-STRIDE"]
    assert len(baseline) == 1  # one baseline finding per element, listing its categories (issue 13)
    spoof = baseline[0]
    assert {c["label"] for c in spoof["categories"]} == {"Spoofing", "Tampering", "Repudiation",
                                                         "Information disclosure", "Denial of service",
                                                         "Elevation of privilege"}
    assert "Spoofing" in spoof["explanation"] and "Process" in spoof["explanation"]
    assert {"role": "kind", "value": "https://w3id.org/threatgraph/ontology#Process", "label": "Process"} in spoof["evidence"]


def test_turtle_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = str(write(tmp_path, "m.ttl", GOOD))
    assert main(["analyze", m, "--format", "turtle"]) == 0
    ttl = capsys.readouterr().out
    assert "tg:Finding" in ttl and "<https://w3id.org/threatgraph/finding/TG-PE-STRIDE/" in ttl
    assert main(["analyze", m, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("## Threat analysis") and "### Top " in md and "elements with info findings only" in md


def test_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = str(write(tmp_path, "m.ttl", GOOD))
    assert main(["analyze", m, "--fail-on", "info", "--format", "json"]) == 1
    assert "at or above info" in capsys.readouterr().err


def test_stable_finding_iris(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = str(write(tmp_path, "m.ttl", GOOD))
    main(["analyze", m, "--format", "json"])
    first = {f["id"] for f in json.loads(capsys.readouterr().out)["findings"]}
    main(["analyze", m, "--format", "json"])
    assert first == {f["id"] for f in json.loads(capsys.readouterr().out)["findings"]}


def test_malformed_turtle_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.ttl", GOOD + "ex:oops tg:source ex:user\nex:more ex:x .\n")
    rc = main(["analyze", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2
    line = GOOD.count("\n") + 2  # the line after GOOD lacks its final '.', so the next one is the error
    assert f"{bad}:{line}:" in err and "malformed turtle" in err
    assert "Traceback" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "/nonexistent/model.ttl"]) == 2
    assert "/nonexistent/model.ttl: no such file" in capsys.readouterr().err


def test_empty_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(write(tmp_path, "empty.ttl", ""))]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["analyze", str(write(tmp_path, "prefixes.ttl", "@prefix ex: <http://x/> .\n"))]) == 2
    assert "no triples" in capsys.readouterr().err


def test_flow_without_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write(tmp_path, "m.ttl", GOOD.replace(" ; tg:target ex:api", ""))
    assert main(["analyze", str(m), "--force"]) == 2
    err = capsys.readouterr().err
    assert "data flow <http://example.org/cli#req> has no tg:target" in err


def test_unknown_terms_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write(tmp_path, "m.ttl", GOOD + "ex:api a tg:Proces ; tg:authenticatd true .\n")
    assert main(["analyze", str(m), "--format", "json", "--force"]) == 0
    err = capsys.readouterr().err
    assert "class <https://w3id.org/threatgraph/ontology#Proces> is not defined" in err
    assert "property <https://w3id.org/threatgraph/ontology#authenticatd> is not defined" in err


def test_known_terms_do_not_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(write(tmp_path, "m.ttl", GOOD)), "--format", "json"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_other_rdf_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rdflib

    g = rdflib.Graph().parse(data=GOOD, format="turtle")
    nt = write(tmp_path, "m.nt", g.serialize(format="nt"))
    assert main(["analyze", str(nt), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"]


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2


def test_console_entry_point_and_module(tmp_path: Path) -> None:
    m = str(write(tmp_path, "m.ttl", GOOD))
    res = subprocess.run([sys.executable, "-m", "threatgraph", "analyze", m, "--fail-on", "critical"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "findings on 3 elements" in res.stdout


def test_rule_catalogue_is_generated(capsys: pytest.CaptureFixture[str]) -> None:
    from threatgraph.analysis.ontology import load_ontology
    from threatgraph.analysis.rules import load_rules, rule_files
    from threatgraph.commands.rules import catalogue_markdown

    onto = load_ontology()
    rules = load_rules(rule_files(), known_terms=set(onto.terms), categories=set(onto.categories))
    doc = Path(__file__).resolve().parent.parent / "docs" / "rule-catalogue.md"
    assert doc.read_text(encoding="utf-8") == catalogue_markdown(rules), (
        "docs/rule-catalogue.md is stale: run `threatgraph rules --format markdown > docs/rule-catalogue.md`"
    )


def test_incomplete_model_is_refused_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write(tmp_path, "m.ttl", GOOD.replace(" tg:authenticated true ;", ""))
    assert main(["analyze", str(m)]) == 1
    err = capsys.readouterr().err
    assert "request <http://example.org/cli#req>" in err and "tg:authenticated" in err
    assert main(["analyze", str(m), "--force", "--format", "json"]) == 0


def test_command_summaries_match_the_modules() -> None:
    """The parser lists commands from cli.SUMMARIES without importing them: each summary must equal what
    the command module registers (name and help), so the lazy listing never drifts from the real one."""
    import argparse
    import importlib

    from threatgraph.cli import COMMANDS, SUMMARIES

    for module_name in COMMANDS:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(f"threatgraph.commands.{module_name}").register(sub)
        declared = [(a.dest, a.help) for a in sub._choices_actions]
        if module_name in SUMMARIES:
            assert declared == [SUMMARIES[module_name]], module_name


def test_only_the_running_command_is_imported() -> None:
    """Start-up (issue 14): `threatgraph rules` does not import the validation stack (pyshacl)."""
    import subprocess
    import sys

    code = ("import sys; from threatgraph.cli import main; main(['rules']); "
            "print('pyshacl' in sys.modules, 'threatgraph.server' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"
