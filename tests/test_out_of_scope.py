"""Out of scope is honoured (issue 13): an element the author marks out of scope stays in the model and
the report (with its reason) and raises no finding; the same element in scope does."""

from __future__ import annotations

import json
from pathlib import Path

from threatgraph.cli import main

MODEL = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <http://example.org/oos#> .
ex:dc a tg:TrustZone ; rdfs:label "Data centre" .
ex:web a tg:Process ; rdfs:label "Web app" ; tg:inZone ex:dc .
ex:legacy a tg:DataStore ; rdfs:label "Legacy archive" ; tg:inZone ex:dc ; tg:encryptedAtRest false %s .
ex:put a tg:DataFlow ; rdfs:label "archive" ; tg:source ex:web ; tg:target ex:legacy .
"""


def run(tmp_path: Path, capsys: object, extra: str) -> dict[str, object]:
    path = tmp_path / "m.ttl"
    path.write_text(MODEL % extra, encoding="utf-8")
    assert main(["analyze", str(path), "--force", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[attr-defined,no-any-return]


def test_out_of_scope_element_raises_nothing(tmp_path: Path, capsys: object) -> None:
    doc = run(tmp_path, capsys, '; tg:outOfScope true ; tg:outOfScopeReason "decommissioned in Q3"')
    foci = {f["element"]["iri"] for f in doc["findings"]}  # type: ignore[index]
    assert "http://example.org/oos#legacy" not in foci
    assert "http://example.org/oos#web" in foci  # the rest of the model is analysed
    assert {"iri": "http://example.org/oos#legacy", "label": "Legacy archive",
            "reason": "decommissioned in Q3"} in doc["outOfScope"]  # type: ignore[operator]


def test_in_scope_element_gets_findings(tmp_path: Path, capsys: object) -> None:
    doc = run(tmp_path, capsys, "")
    rules = {f["rule"] for f in doc["findings"] if f["element"]["iri"] == "http://example.org/oos#legacy"}  # type: ignore[index]
    assert {"TG-PE-STRIDE", "TG-STRIDE-I-012", "TG-STRIDE-T-018"} <= rules
    assert doc["outOfScope"] == []
