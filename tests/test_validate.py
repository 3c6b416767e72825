"""``threatgraph validate`` and the validation in ``analyze``: examples conform, exit codes, formats,
messages that name the element and the fix, user and organisation shapes, bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rdflib
from rdflib.namespace import RDF, SH

from threatgraph.analysis.validation import load_shapes, validate_models
from threatgraph.cli import main
from threatgraph.errors import InputError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "data" / "examples").glob("*.ttl"))
ORG = REPO / "data" / "shapes" / "org-strict-example.ttl"
FIX = Path(__file__).parent / "shapes" / "fixtures"

BAD_MODEL = """@prefix ex: <http://example.org/m#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:z1 a tg:TrustZone ; rdfs:label "Internet" .
ex:z2 a tg:TrustZone ; rdfs:label "Cloud" .
ex:d a tg:DataAsset ; rdfs:label "Requests" ; tg:classification tg:Personal .
ex:user a tgml:EndUser ; rdfs:label "User" ; tg:inZone ex:z1 .
ex:api a tgml:InferenceEndpoint ; rdfs:label "Scoring API" ; tg:inZone ex:z2 ; tg:publiclyExposed true .
ex:q a tg:DataFlow ; rdfs:label "query" ; tg:source ex:user ; tg:target ex:api ; tg:carries ex:d ;
    tg:encryptedInTransit true .
"""


@pytest.fixture()
def bad_model(tmp_path: Path) -> Path:
    p = tmp_path / "bad.ttl"
    p.write_text(BAD_MODEL, encoding="utf-8")
    return p


def test_three_examples_exist() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.name)
def test_examples_have_no_violations(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = validate_models([model])
    assert report.violations == [], [i.text for i in report.violations]
    assert main(["validate", str(model)]) == 0


def test_violations_exit_1_and_name_element_label_iri_and_fix(bad_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(bad_model)]) == 1
    out = capsys.readouterr()
    assert "Scoring API" in out.out and "<http://example.org/m#api>" in out.out
    assert "tg:authorizationEnforced true" in out.out  # the fix
    assert "query" in out.out and "tg:authenticated" in out.out
    assert "violation" in out.err
    report = validate_models([bad_model])
    texts = [i.text for i in report.violations]
    assert any(t.startswith("violation: Scoring API <http://example.org/m#api>:") for t in texts)
    assert any("query <http://example.org/m#q>" in t and "tg:authenticated true" in t for t in texts)


def test_json_format(bad_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(bad_model), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["conforms"] is False
    assert doc["summary"]["violation"] == len([r for r in doc["results"] if r["severity"] == "violation"]) >= 2
    api = [r for r in doc["results"] if r["element"]["iri"] == "http://example.org/m#api"]
    assert api and api[0]["element"]["label"] == "Scoring API"
    assert api[0]["path"] == "https://w3id.org/threatgraph/ontology#authorizationEnforced"


def test_turtle_format_is_a_shacl_report(bad_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(bad_model), "--format", "turtle"]) == 1
    g = rdflib.Graph().parse(data=capsys.readouterr().out, format="turtle")
    reports = list(g.subjects(RDF.type, SH.ValidationReport))
    assert len(reports) == 1
    assert g.value(reports[0], SH.conforms) == rdflib.Literal(False)
    foci = {g.value(r, SH.focusNode) for r in g.objects(reports[0], SH.result)}
    assert rdflib.URIRef("http://example.org/m#api") in foci


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    model = tmp_path / "m.ttl"
    # a conforming model whose only problem is a missing label (a warning)
    model.write_text(
        (FIX / "LabelShape" / "nonconforming.ttl").read_text(encoding="utf-8"), encoding="utf-8"
    )
    report = validate_models([model])
    assert report.count("violation") == 0 and report.count("warning") >= 1
    assert main(["validate", str(model)]) == 0
    assert main(["validate", str(model), "--strict"]) == 1


def test_inference_endpoint_is_validated_as_a_process(tmp_path: Path) -> None:
    # ElementZoneShape targets tg:Process: only the OWL 2 RL closure makes the endpoint one.
    model = tmp_path / "m.ttl"
    model.write_text((FIX / "ElementZoneShape" / "nonconforming.ttl").read_text(encoding="utf-8"), encoding="utf-8")
    report = validate_models([model])
    assert any(i.focus == "http://example.org/test#focus" and i.path and i.path.endswith("#inZone") for i in report.violations)


def test_org_shapes_are_added(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rag = REPO / "data" / "examples" / "rag-assistant.ttl"
    assert main(["validate", str(rag)]) == 0
    assert main(["validate", str(rag), "--shapes", str(ORG)]) == 1
    out = capsys.readouterr().out
    assert "Company policy DP-7" in out and "Customer database" in out
    ok = tmp_path / "ok.ttl"
    ok.write_text(
        BAD_MODEL.replace("ex:api a", "ex:db a tg:DataStore ; rdfs:label \"DB\" ; tg:inZone ex:z2 ; tg:holds ex:d .\nex:api a")
        .replace('tg:classification tg:Personal .', 'tg:classification tg:Personal ; tg:retentionPeriod "P30D"^^<http://www.w3.org/2001/XMLSchema#duration> .'),
        encoding="utf-8",
    )
    issues = validate_models([ok], extra_shapes=[ORG]).issues
    assert not [i for i in issues if "DP-7" in i.message]
    bad = tmp_path / "bad.ttl"
    bad.write_text(ok.read_text(encoding="utf-8").replace('"P30D"^^<http://www.w3.org/2001/XMLSchema#duration>', '"30 days"'), encoding="utf-8")
    issues = validate_models([bad], extra_shapes=[ORG]).issues
    assert [i for i in issues if "DP-7" in i.message and i.focus == "http://example.org/m#d"]


def test_unparsable_model_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "broken.ttl"
    p.write_text("@prefix ex: <http://e/> .\nex:a ex:b \n", encoding="utf-8")
    assert main(["validate", str(p)]) == 2
    assert "broken.ttl" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.ttl")]) == 2


def test_unreadable_model_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "binary.ttl"
    p.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["validate", str(p)]) == 2
    assert "binary.ttl" in capsys.readouterr().err


def test_unparsable_shapes_exit_2(tmp_path: Path, bad_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "shapes.ttl"
    s.write_text("@prefix sh: <http://www.w3.org/ns/shacl#> .\n<urn:s> a sh:NodeShape ; sh:minCount", encoding="utf-8")
    assert main(["validate", str(bad_model), "--shapes", str(s)]) == 2
    assert "shapes.ttl" in capsys.readouterr().err


def test_invalid_shacl_exit_2(tmp_path: Path, bad_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "notshacl.ttl"
    s.write_text(
        "@prefix sh: <http://www.w3.org/ns/shacl#> .\n"
        "<urn:s> a sh:NodeShape ; sh:targetNode <urn:x> ; sh:property [ sh:path <urn:p> ; sh:minCount \"one\" ] .\n",
        encoding="utf-8",
    )
    assert main(["validate", str(bad_model), "--shapes", str(s)]) == 2
    assert "not valid SHACL" in capsys.readouterr().err
    with pytest.raises(InputError, match="not valid SPARQL"):
        s.write_text(
            "@prefix sh: <http://www.w3.org/ns/shacl#> .\n"
            '<urn:s> a sh:NodeShape ; sh:targetNode <urn:x> ; sh:sparql [ sh:message "m" ; sh:select "SELECT $this WHERE { $this ?p }" ] .\n',
            encoding="utf-8",
        )
        load_shapes([s])


def test_analyze_refuses_invalid_model_unless_forced(bad_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(bad_model)]) == 1
    err = capsys.readouterr().err
    assert "refusing to analyse" in err and "Scoring API" in err and "--force" in err
    assert main(["analyze", str(bad_model), "--force"]) == 0
    assert "--force" in capsys.readouterr().err


def test_missing_store_directory_exit_2(bad_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(bad_model), "--store", str(tmp_path / "nope")]) == 2
    assert "no such store directory" in capsys.readouterr().err


TYPOS = """
@prefix ex: <https://example.org/rag-assistant#> .
@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:reg a tgml:ModelRegistery ; rdfs:label "Model registry" .
ex:reg2 a tgml:ModelRegistery ; rdfs:label "Second registry" .
ex:chatApi tg:rateLimted true .
ex:agent tg:rateLimted true .
"""


def test_undefined_class_and_property_are_warnings_reported_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from threatgraph.analysis.model import load_model_files, undefined_terms
    from threatgraph.analysis.ontology import load_ontology
    from threatgraph.analysis.validation import TERMS_CHECK, build_store, undefined_terms_in

    model = tmp_path / "typos.ttl"
    model.write_text((REPO / "data" / "examples" / "rag-assistant.ttl").read_text(encoding="utf-8") + TYPOS, encoding="utf-8")
    loaded = load_model_files([model])
    # the same terms as the loader's check (the oracle analyze warns with)
    classes, props = undefined_terms(loaded.graph, load_ontology())
    found = undefined_terms_in(build_store(loaded.graph))
    assert [t for k, t, _n in found if k == "class"] == classes == ["https://w3id.org/threatgraph/ml#ModelRegistery"]
    assert [t for k, t, _n in found if k == "property"] == props == ["https://w3id.org/threatgraph/ontology#rateLimted"]
    report = validate_models([model])
    terms = [i for i in report.issues if i.shape == TERMS_CHECK.value]
    assert len(terms) == 2  # once per term, though each is used twice
    by = {i.focus.rsplit("#", 1)[-1]: i for i in terms}
    assert by["ModelRegistery"].severity == by["rateLimted"].severity == "warning"
    assert "did you mean tgml:ModelRegistry?" in by["ModelRegistery"].message and "2 element(s)" in by["ModelRegistery"].message
    assert "did you mean tg:rateLimited?" in by["rateLimted"].message and "2 statement(s)" in by["rateLimted"].message
    assert report.violations == []
    assert main(["validate", str(model)]) == 0
    out = capsys.readouterr().out
    assert out.count("<https://w3id.org/threatgraph/ml#ModelRegistery>") == 1
    assert main(["validate", str(model), "--strict"]) == 1
    assert "0 violation(s), 2 warning(s) (--strict)" in capsys.readouterr().err
    doc_code = main(["validate", str(model), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc_code == 0 and doc["summary"]["warning"] == 2
    texts = [r["text"] for r in doc["results"]]
    assert len(texts) == len(set(texts))  # no result twice


@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.name)
def test_examples_use_no_undefined_terms(model: Path) -> None:
    from threatgraph.analysis.validation import TERMS_CHECK

    assert [i.text for i in validate_models([model]).issues if i.shape == TERMS_CHECK.value] == []


def test_same_model_twice_reports_each_problem_once(bad_model: Path) -> None:
    once = validate_models([bad_model]).issues
    assert once and validate_models([bad_model, bad_model]).issues == once


def test_user_shapes_checked_once_per_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shapes = tmp_path / "org.ttl"
    shapes.write_text(ORG.read_text(encoding="utf-8"), encoding="utf-8")
    rag = REPO / "data" / "examples" / "rag-assistant.ttl"
    code = (
        "import sys\nfrom threatgraph.analysis.validation import compiled_shapes\n"
        f"compiled_shapes([{str(shapes)!r}])\nprint('pyshacl' in sys.modules)\n"
    )

    def pyshacl_imported() -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    assert pyshacl_imported() == "True"  # first time: SHACL-SHACL check
    assert pyshacl_imported() == "False"  # same content: remembered in the cache directory
    assert len(list((tmp_path / "cache" / "threatgraph" / "shapes-checked").iterdir())) == 1
    shapes.write_text(shapes.read_text(encoding="utf-8").replace("sh:maxCount 1", 'sh:maxCount "one"'), encoding="utf-8")
    with pytest.raises(InputError, match="not valid SHACL"):  # changed content is checked again
        validate_models([rag], extra_shapes=[shapes])
    assert len(list((tmp_path / "cache" / "threatgraph" / "shapes-checked").iterdir())) == 1


def test_query_and_serve_analyse_through_the_pipeline(bad_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``query --model`` and ``serve --model`` run the same pipeline as ``analyze``: an invalid hand-written
    model is refused (exit 1, violations listed) unless --force."""
    from threatgraph.cli import build_parser
    from threatgraph.commands.serve import build_dataset

    assert main(["query", "rules-fired", "--model", str(bad_model), "-f", "csv"]) == 1
    err = capsys.readouterr().err
    assert "refusing to analyse" in err and "Scoring API" in err
    assert main(["query", "rules-fired", "--model", str(bad_model), "-f", "csv", "--force"]) == 0
    out = capsys.readouterr()
    assert "TG-" in out.out and "analysing despite" in out.err
    assert build_dataset(None, [str(bad_model)], build_parser().parse_args(["serve"])) is None
    assert "refusing to analyse" in capsys.readouterr().err
    path = build_dataset(None, [str(bad_model)], build_parser().parse_args(["serve", "--force"]))
    assert path is not None
    try:
        assert "/graph/findings>" in Path(path).read_text(encoding="utf-8")
    finally:
        Path(path).unlink()
