"""``threatgraph query``: a named query, a file, inline SPARQL text or stdin; exit codes; ``--wide``.

The inline, file and stdin forms run the text of a library query and must print exactly what the named
query prints; the oracle for the rows is the example model itself (parsed with rdflib).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import rdflib

from threatgraph.cli import main
from threatgraph.errors import InputError, RuleError
from threatgraph.querylib import resolve
from threatgraph.sparql import syntax_error

REPO = Path(__file__).resolve().parent.parent
RAG = str(REPO / "data" / "examples" / "rag-assistant.ttl")
TG = "https://w3id.org/threatgraph/ontology#"
PROCESSES = "SELECT ?e WHERE { ?e a tg:Process } ORDER BY ?e"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def processes_in_model() -> list[str]:
    """Oracle: elements the model asserts as tg:Process or one of its subclasses (from ontology + model)."""
    g = rdflib.Graph()
    g.parse(RAG, format="turtle")
    for f in sorted((REPO / "ontology").glob("*.ttl")):
        g.parse(f, format="turtle")
    sub = rdflib.RDFS.subClassOf
    kinds = set(g.transitive_subjects(sub, rdflib.URIRef(TG + "Process")))
    return sorted({str(s) for k in kinds for s in g.subjects(rdflib.RDF.type, k) if str(s).startswith("https://example")})


def test_inline_text_gives_the_model_processes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "query", PROCESSES, "--model", RAG, "--format", "json")
    assert code == 0, err
    got = [r["e"] for r in json.loads(out)]
    assert got == processes_in_model() and len(got) >= 3


def test_named_file_inline_and_stdin_agree(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = REPO / "queries" / "rules-fired.rq"
    code, named, err = run_cli(capsys, "query", "rules-fired", "--model", RAG, "--format", "csv")
    assert code == 0, err
    assert named.count("\r\n") > 3  # a header and several rules
    copy = tmp_path / "mine.sparql"
    copy.write_text(lib.read_text(encoding="utf-8"), encoding="utf-8")
    assert run_cli(capsys, "query", str(copy), "--model", RAG, "--format", "csv") == (0, named, "")
    assert run_cli(capsys, "query", lib.read_text(encoding="utf-8"), "--model", RAG, "--format", "csv") == (0, named, "")
    monkeypatch.setattr("sys.stdin", io.StringIO(lib.read_text(encoding="utf-8")))
    assert run_cli(capsys, "query", "-", "--model", RAG, "--format", "csv") == (0, named, "")


def test_ask_inline(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "query", "ASK { tg:DataFlow a owl:Class }")[:2] == (0, "true\n")
    assert run_cli(capsys, "query", "ASK { tg:DataFlow a tg:Process }")[:2] == (0, "false\n")


def test_bad_inline_query_exits_2_with_line_and_column(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "query", "SELECT ?x WHERE { ?x a }")
    assert code == 2 and out == ""
    assert "<inline>:1:" in err and "invalid SPARQL (line 1, column " in err and "Traceback" not in err


def test_bad_file_reports_the_file_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.rq"
    bad.write_text("# title: mine\n# a comment\n\nSELECT ?x\nWHERE { ?x tg:source }\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "query", str(bad))
    assert code == 2
    assert f"{bad}:5:" in err and "(line 5, column" in err and "WHERE { ?x tg:source }" in err


def test_bad_stdin_exits_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("PREFIX ex: <http://e/>\nSELECT ?x WHERE { ?x ex:p ?y . FILTER(?y = ) }\n"))
    code, _, err = run_cli(capsys, "query", "-")
    assert code == 2 and "<stdin>:2:" in err


def test_bad_user_header_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "p.rq"
    bad.write_text("# param: kind notatype The class\nSELECT ?e WHERE { ?e a ?kind }\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "query", str(bad))
    assert code == 2 and f"{bad}:1" in err and "notatype" in err


def test_user_query_with_a_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    text = "# param: kind iri The class\nSELECT ?e WHERE { ?e a ?kind } ORDER BY ?e"
    code, out, err = run_cli(capsys, "query", text, "--model", RAG, "-p", "kind=tg:Process", "-f", "json")
    assert code == 0, err
    assert [r["e"] for r in json.loads(out)] == processes_in_model()


def test_unknown_name_and_missing_file_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(capsys, "query", "no-such-query")[0] == 2
    code, _, err = run_cli(capsys, "query", str(tmp_path / "missing.rq"))
    assert code == 2 and "missing.rq" in err


def test_broken_library_query_is_internal(tmp_path: Path) -> None:
    (tmp_path / "broken.rq").write_text(
        "# name: broken\n# title: Broken\n# description: d\nSELECT ?x WHERE { ?x a }\n", encoding="utf-8"
    )
    with pytest.raises(RuleError) as exc:
        resolve("broken", tmp_path)
    assert exc.value.exit_code == 3 and "broken.rq:4:" in str(exc.value)
    with pytest.raises(InputError):  # the same text given by the user is bad input
        resolve((tmp_path / "broken.rq").read_text(encoding="utf-8"), tmp_path)


def test_store_failure_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "query", PROCESSES, "--endpoint", "http://127.0.0.1:9/sparql")
    assert code == 3 and "cannot reach" in err


def test_syntax_error_maps_lines() -> None:
    e = syntax_error("SELECT ?x\n\nWHERE { ?x ?y }", "q.rq", first_line=10)
    assert e is not None and e.line == 12 and e.text == "WHERE { ?x ?y }"
    assert syntax_error(PROCESSES, "q.rq") is None


def test_wide_does_not_cut(capsys: pytest.CaptureFixture[str]) -> None:
    g = rdflib.Graph()
    for f in sorted((REPO / "ontology").glob("*.ttl")):
        g.parse(f, format="turtle")
    defs = [str(o) for o in g.objects(None, rdflib.SKOS.definition)]
    longest = sorted(defs, key=lambda d: (-len(d), d))[0]
    assert len(longest) > 80
    q = "SELECT ?d WHERE { ?s skos:definition ?d } ORDER BY DESC(STRLEN(?d)) ?d LIMIT 1"
    code, cut, _ = run_cli(capsys, "query", q)
    assert code == 0 and longest not in cut and longest[:79] + "…" in cut
    code, wide, _ = run_cli(capsys, "query", q, "--wide")
    assert code == 0 and longest in wide


def test_model_into_a_new_store_then_served_with_another_model(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``query --model M --store NEW --replace`` writes the pipeline's analysis into a new store (the same rows
    as the in-memory analysis); ``serve --store DIR --model OTHER`` serves OTHER's analysis in place of M's."""
    from threatgraph.cli import build_parser
    from threatgraph.commands.serve import build_dataset

    code, in_memory, _ = run_cli(capsys, "query", "rules-fired", "--model", RAG, "-f", "csv")
    assert code == 0 and "TG-" in in_memory
    store = tmp_path / "store"
    assert run_cli(capsys, "query", "rules-fired", "--model", RAG, "--store", str(store), "--replace", "-f", "csv") == (
        0, in_memory, "")
    assert run_cli(capsys, "query", "rules-fired", "--store", str(store), "-f", "csv") == (0, in_memory, "")
    other = REPO / "data" / "examples" / "health-risk.ttl"
    path = build_dataset(str(store), [str(other)], build_parser().parse_args(["serve"]))
    assert path is not None
    try:
        served = rdflib.Dataset()
        served.parse(path, format="nquads")
    finally:
        Path(path).unlink()
    model = served.graph(rdflib.URIRef("https://w3id.org/threatgraph/graph/model"))
    subjects = {str(s) for s in model.subjects()}
    own = {str(s) for s in rdflib.Graph().parse(other, format="turtle").subjects()}
    rag = {str(s) for s in rdflib.Graph().parse(RAG, format="turtle").subjects()}
    assert own <= subjects and not (rag - own) & subjects
