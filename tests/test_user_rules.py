"""Users' own rules: ``rules --rules DIR`` and ``analyze --rules DIR``; a bad user rule exits 2 naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rdflib

from threatgraph.analysis.ontology import load_ontology
from threatgraph.analysis.rules import load_all_rules, load_rules, load_user_rules, parse_rule, rule_files
from threatgraph.cli import main
from threatgraph.errors import InputError, RuleError

REPO = Path(__file__).resolve().parent.parent
RAG = str(REPO / "data" / "examples" / "rag-assistant.ttl")
BUILTIN = load_rules(rule_files())

GOOD = """# id: ACME-STRIDE-T-001
# title: Vector index writable by the ingestion job without signed content
# framework: STRIDE
# category: stride:Tampering
# severity: high
# focus: element
# source: ACME internal guideline 7
# explanation: {focus} is a vector index; anyone who can write to it can plant retrieval content.
# remediation: Sign indexed content and verify it on write.
SELECT ?focus WHERE {
  ?focus a tgml:VectorStore .
}
"""


def write_rule(d: Path, text: str, name: str | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    rid = name or next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("# id:"))
    p = d / f"{rid}.rq"
    p.write_text(text, encoding="utf-8")
    return p


def vector_stores() -> set[str]:
    """Oracle: the model's instances of tgml:VectorStore or a subclass (rdflib over ontology + model)."""
    g = rdflib.Graph()
    g.parse(RAG, format="turtle")
    for f in sorted((REPO / "ontology").glob("*.ttl")):
        g.parse(f, format="turtle")
    vs = rdflib.URIRef("https://w3id.org/threatgraph/ml#VectorStore")
    kinds = set(g.transitive_subjects(rdflib.RDFS.subClassOf, vs))
    return {str(s) for k in kinds for s in g.subjects(rdflib.RDF.type, k)}


def test_rules_lists_user_rules_with_the_builtin_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_rule(tmp_path / "mine", GOOD)
    assert main(["rules", "--rules", str(tmp_path / "mine"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in doc] == [r.id for r in BUILTIN] + ["ACME-STRIDE-T-001"]
    mine = doc[-1]
    assert mine["builtin"] is False and mine["severity"] == "high"
    assert mine["categories"] == ["https://w3id.org/threatgraph/stride#Tampering"]
    assert all(r["builtin"] for r in doc[:-1])
    assert main(["rules", "--rules", str(tmp_path / "mine")]) == 0
    out = capsys.readouterr().out
    assert f"{len(BUILTIN) + 1} rules ({len(BUILTIN)} built-in, 1 yours)" in out and "ACME-STRIDE-T-001" in out


def test_analyze_runs_user_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_rule(tmp_path / "mine", GOOD)
    code = main(["analyze", RAG, "--rules", str(tmp_path / "mine"), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    mine = [f for f in json.loads(out)["findings"] if f["rule"] == "ACME-STRIDE-T-001"]
    assert {f["element"]["iri"] for f in mine} == vector_stores() and mine
    assert mine[0]["severity"] == "high" and "is a vector index" in mine[0]["explanation"]
    assert main(["analyze", RAG, "--format", "json"]) == 0
    assert not [f for f in json.loads(capsys.readouterr().out)["findings"] if f["rule"].startswith("ACME-")]


def test_two_user_directories(tmp_path: Path) -> None:
    write_rule(tmp_path / "a", GOOD)
    write_rule(tmp_path / "b", GOOD.replace("ACME-STRIDE-T-001", "ACME-STRIDE-T-002"))
    rules = load_all_rules([tmp_path / "a", tmp_path / "b"])
    assert [r.id for r in rules if not r.builtin] == ["ACME-STRIDE-T-001", "ACME-STRIDE-T-002"]


BAD: list[tuple[str, str, int, str]] = [
    ("severity", GOOD.replace("# severity: high", "# severity: urgent"), 5, "severity 'urgent'"),
    ("unknown-term", GOOD.replace("tgml:VectorStore", "tgml:VectorStor"), 11, "tgml:VectorStor is not defined"),
    ("syntax", GOOD.replace("?focus a tgml:VectorStore .", "?focus a ."), 11, "invalid SPARQL"),
    ("no-focus", GOOD.replace("SELECT ?focus WHERE {\n  ?focus", "SELECT ?x WHERE {\n  ?x"), 10, "must project ?focus"),
    ("construct", GOOD.replace("SELECT ?focus WHERE", "CONSTRUCT { ?focus a tg:Finding } WHERE"), 10, "SELECT"),
    ("placeholder", GOOD.replace("{focus} is", "{focus} or {zone} is"), 8, "{zone}"),
    ("service", GOOD.replace("  ?focus a tgml:VectorStore .", "  ?focus a tgml:VectorStore .\n  SERVICE <http://evil.example/sparql> { ?focus ?p ?o }"), 12, "SERVICE"),
    ("service-after-cr", GOOD.replace("  ?focus a tgml:VectorStore .", "  ?focus a tgml:VectorStore . # note\r  SERVICE <http://evil.example/sparql> { ?focus ?p ?o }"), 12, "SERVICE"),
    ("service-after-escaped-hash", GOOD.replace("  ?focus a tgml:VectorStore .", "  ?focus a tgml:VectorStore . ?focus rdfs:label\\#y ?z SERVICE <http://evil.example/sparql> { ?focus ?p ?o }"), 11, "SERVICE"),
    ("missing-key", GOOD.replace("# source: ACME internal guideline 7\n", ""), 1, "header lacks source"),
    ("no-remediation", GOOD.replace("# remediation: Sign indexed content and verify it on write.\n", ""), 1,
     "header lacks remediation"),
    ("unknown-key", GOOD.replace("# source:", "# owner: me\n# source:"), 7, "unknown header key"),
    ("category", GOOD.replace("stride:Tampering", "stride:Tamper"), 4, "not a STRIDE or LINDDUN category"),
    ("builtin-id", GOOD.replace("ACME-STRIDE-T-001", BUILTIN[0].id), 1, f"also used by {BUILTIN[0].path}"),
]


@pytest.mark.parametrize(("case", "text", "line", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_user_rule_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, text: str, line: int, words: str
) -> None:
    path = write_rule(tmp_path / "bad", text)
    for argv in (["rules", "--rules", str(tmp_path / "bad")], ["analyze", RAG, "--rules", str(tmp_path / "bad")]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (case, err)
        assert f"{path}:{line}" in err and words in err, (case, err)
        assert "Traceback" not in err


def test_duplicate_ids_across_user_directories(tmp_path: Path) -> None:
    write_rule(tmp_path / "a", GOOD)
    second = write_rule(tmp_path / "b", GOOD)
    with pytest.raises(InputError) as exc:
        load_all_rules([tmp_path / "a", tmp_path / "b"])
    assert str(second) in str(exc.value) and "also used by" in str(exc.value)


def test_not_a_directory_or_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--rules", str(tmp_path / "nope")]) == 2
    assert "not a rule directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["rules", "--rules", str(tmp_path / "empty")]) == 2


def test_builtin_rule_errors_stay_internal_and_carry_lines() -> None:
    with pytest.raises(RuleError) as exc:
        parse_rule(GOOD.replace("# focus: element", "# focus: node"), "ACME-STRIDE-T-001.rq")
    assert exc.value.exit_code == 3 and str(exc.value).startswith("ACME-STRIDE-T-001.rq:6: focus 'node'")
    onto = load_ontology()
    ok = load_user_rules([], known_terms=set(onto.terms), categories=set(onto.categories))
    assert ok == []
