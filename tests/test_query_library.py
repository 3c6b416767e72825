"""The named-query library: header checks, typed parameters, and one test of specific rows per query.

Queries over the finding graph run on an analysed example model; queries over threat knowledge run on
the pinned releases (marker ``shared``) and are checked against the source files (STIX bundle, ATLAS
YAML, the data README) where those give the answer independently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pyoxigraph import Literal, NamedNode

from threatgraph.analysis.engine import Engine
from threatgraph.errors import InputError, RuleError
from threatgraph.querylib import (
    NamedQuery,
    Result,
    load_library,
    parse_query_text,
    projected_variables,
    render,
    resolve,
    run,
    to_term,
)
from threatgraph.store import Store, open_store

REPO = Path(__file__).resolve().parent.parent
RAG = REPO / "data" / "examples" / "rag-assistant.ttl"
EX = "https://example.org/rag-assistant#"
TG = "https://w3id.org/threatgraph/ontology#"
ATT = "https://w3id.org/threatgraph/attack/"
ATL = "https://w3id.org/threatgraph/atlas/"
R18 = "https://w3id.org/threatgraph/graph/release/attack-enterprise/18.1"
R17 = "https://w3id.org/threatgraph/graph/release/attack-enterprise/17.1"
RATLAS = "https://w3id.org/threatgraph/graph/release/atlas/5.6.0"
LIB = load_library()


def vals(res: Result, var: str) -> list[str]:
    return [r[var].value for r in res.rows if var in r]


@pytest.fixture(scope="module")
def example() -> Store:
    """The RAG example analysed without threat knowledge (rules, findings, paths)."""
    return Engine().analyze([RAG]).store


@pytest.fixture(scope="module")
def knowledge(shared_data: Path) -> Store:
    """ATT&CK 18.1 + 17.1, ATLAS 5.6.0, D3FEND 1.2.0 and the RAG example analysed with them."""
    from threatgraph.knowledge.releases import load_release

    store = open_store()
    for kind, rel in [
        ("attack", "attack/enterprise-attack-18.1.stix20.json"),
        ("attack", "attack/enterprise-attack-17.1.stix20.json"),
        ("atlas", "atlas/ATLAS.yaml"),
        ("d3fend", "d3fend/d3fend-protege-1.2.0.ttl"),
    ]:
        load_release(store, kind, str(shared_data / rel))
    Engine(store).analyze([RAG])
    return store


@pytest.fixture(scope="module")
def stix18(shared_data: Path) -> dict[str, object]:
    """Oracle: the raw STIX bundle, indexed: id → object, external id → object."""
    bundle = json.loads((shared_data / "attack/enterprise-attack-18.1.stix20.json").read_text(encoding="utf-8"))
    objs = {o["id"]: o for o in bundle["objects"]}

    def ext(o: dict[str, object]) -> str | None:
        for r in o.get("external_references", []):  # type: ignore[attr-defined]
            if r.get("source_name") == "mitre-attack":
                return str(r.get("external_id"))
        return None

    return {"objs": objs, "by_ext": {ext(o): o for o in bundle["objects"] if ext(o)}, "ext": ext, "all": bundle["objects"]}


def _active(o: dict[str, object]) -> bool:
    return not o.get("revoked") and not o.get("x_mitre_deprecated")


# -- the library itself -----------------------------------------------------------------------------------
def test_library_has_at_least_25_checked_queries_each_with_a_test() -> None:
    assert len(LIB) >= 25
    assert set(LIB) == set(EXAMPLE_CHECKS) | set(KNOWLEDGE_CHECKS), "every named query needs a row test"
    for q in LIB.values():
        assert q.title and q.description and q.form in ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
        assert Path(q.path).parent.name == "queries"


def test_library_is_only_the_top_level() -> None:
    assert not any("/rules/" in q.path or "/derive" in q.path for q in LIB.values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# name: x\n# description: d\nSELECT * {}", "header lacks title"),
        ("# name: other\n# title: t\n# description: d\nSELECT * {}", "must equal the file name"),
        ("# name: x\n# title: t\n# description: d\n# param: p float A\nSELECT ?p {}", "not one of"),
        ("# name: x\n# title: t\n# description: d\n# param: p string Unused\nSELECT ?s {}", "not used"),
        ("# name: x\n# title: t\n# description: d\n# param: p integer [default=ten] N\nSELECT ?p {}", "bad default"),
        ("# name: x\n# title: t\n# description: d\nSELEC ?s {}", "invalid SPARQL"),
        ("# name: x\n# title: t\n# description: d\n# param: p string A\n# param: p string B\nSELECT ?p {}", "twice"),
        ("# name: x\n# title: t\n# description: d\n", "no query"),
    ],
)
def test_bad_headers_are_refused(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_query_text(text, "queries/x.rq")


def test_parameter_types() -> None:
    assert to_term("AML.T0051.000", "technique-id") == NamedNode(ATL + "AML.T0051.000")
    assert to_term("G0007", "technique-id") == NamedNode(ATT + "G0007")
    assert to_term("tgml:VectorStore", "iri") == NamedNode("https://w3id.org/threatgraph/ml#VectorStore")
    assert to_term("42", "integer") == Literal(42)
    assert to_term("TRUE", "boolean") == Literal(True)
    for raw, kind in [("T59", "technique-id"), ("1.5", "integer"), ("maybe", "boolean"), ("no scheme", "iri")]:
        with pytest.raises(InputError):
            to_term(raw, kind)


def test_missing_and_unknown_parameters() -> None:
    q = LIB["findings-of-element"]
    with pytest.raises(InputError, match="required"):
        q.bind({})
    with pytest.raises(InputError, match="unknown parameter"):
        q.bind({"element": EX + "agent", "elephant": "x"})


def test_projection_order() -> None:
    assert projected_variables(LIB["top-mitigations"].query) == ["mitigation", "label", "techniques", "implementedBy"]


def test_resolve_file_and_unknown(tmp_path: Path) -> None:
    f = tmp_path / "mine.rq"
    f.write_text("SELECT ?z WHERE { ?z a tg:TrustZone }", encoding="utf-8")
    assert resolve(str(f)).form == "SELECT"
    with pytest.raises(InputError, match="no named query"):
        resolve("no-such-query")


# -- injection: values are RDF terms in a VALUES row, never query text -------------------------------------
class Spy:
    """A store that records what it was asked (and answers nothing)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, object]]] = []

    def select(self, query: str, bindings: dict[str, object] | None = None) -> list[dict[str, object]]:
        self.calls.append((query, dict(bindings or {})))
        return []


HOSTILE = [
    'high" } INSERT DATA { <urn:x> <urn:y> <urn:z> } #',
    "high' } ; DROP ALL ; SELECT * { '",
    "} } UNION { ?s ?p ?o }",
    '"""\n} INSERT {',
    'high"@en',
    "\\u0022 } INSERT",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_string_injection_is_bound_as_one_literal(example: Store, value: str) -> None:
    q = LIB["elements-with-label"]
    spy = Spy()
    run(spy, q, {"label": value})  # type: ignore[arg-type]
    text, bindings = spy.calls[0]
    assert text == q.query  # the query text is never changed
    assert bindings == {"label": Literal(value)}
    before = len(example)
    assert run(example, q, {"label": value}).rows == []
    assert len(example) == before


@pytest.mark.parametrize(
    "value",
    [
        "https://example.org/rag-assistant#agent> } INSERT DATA { <urn:a> <urn:b> <urn:c> } #",
        "https://example.org/a b",
        "https://example.org/{x}",
        'https://example.org/"q"',
        "urn:x\n}",
    ],
)
def test_iri_injection_is_refused(example: Store, value: str) -> None:
    with pytest.raises(InputError, match="not a valid IRI"):
        run(example, LIB["findings-of-element"], {"element": value})


def test_language_tagged_looking_values_stay_plain_strings(example: Store) -> None:
    bound = LIB["elements-with-label"].bind({"label": '"Vector index"@en'})
    assert bound["label"] == Literal('"Vector index"@en') and bound["label"].language is None
    assert run(example, LIB["elements-with-label"], {"label": '"Vector index"@en'}).rows == []
    assert run(example, LIB["elements-with-label"], {"label": "Vector index@en"}).rows == []


def test_integer_and_technique_injection_refused() -> None:
    with pytest.raises(InputError):
        to_term("1 } INSERT", "integer")
    with pytest.raises(InputError):
        LIB["techniques-of-tactic"].bind({"tactic": "TA0001> } #"})


# -- rendering --------------------------------------------------------------------------------------------
def test_render_formats(example: Store) -> None:
    res = run(example, LIB["elements-crossing-boundaries"], {})
    csv_lines = render(res, "csv").splitlines()
    assert csv_lines[0] == "flow,flowLabel,source,srcZone,srcLevel,target,tgtZone,tgtLevel"
    assert len(csv_lines) == len(res.rows) + 1
    srj = json.loads(render(res, "srj"))
    assert srj["head"]["vars"][0] == "flow" and len(srj["results"]["bindings"]) == len(res.rows)
    assert json.loads(render(res, "json"))[0]["flow"].startswith(EX)
    table = render(res, "table")
    assert f"({len(res.rows)} rows)" in table
    with pytest.raises(InputError, match="table"):
        render(res, "turtle")


# -- rows on the example model ----------------------------------------------------------------------------
def _findings_by_severity(s: Store) -> None:
    res = run(s, LIB["findings-by-severity"], {})
    assert (EX + "agent", "TG-STRIDE-E-002") in set(zip(vals(res, "focus"), vals(res, "rule"), strict=True))
    low = run(s, LIB["findings-by-severity"], {"severity": "tg:Info"})
    assert "TG-PE-STRIDE" in vals(low, "rule") and "TG-STRIDE-E-002" not in vals(low, "rule")


def _elements_with_label(s: Store) -> None:
    res = run(s, LIB["elements-with-label"], {})
    assert vals(res, "element") == [EX + "vectorStore"]
    assert vals(res, "declaredAs") == ["https://w3id.org/threatgraph/ml#VectorStore"]
    assert run(s, LIB["elements-with-label"], {"label": "Internet"}).rows[0]["element"].value == EX + "internet"


def _findings_of_element(s: Store) -> None:
    res = run(s, LIB["findings-of-element"], {"element": EX + "agent"})
    assert "TG-STRIDE-E-002" in vals(res, "rule")
    assert all(e.startswith(("The ", "Support agent", "LLM")) or e for e in vals(res, "explanation"))
    assert run(s, LIB["findings-of-element"], {"element": EX + "nonexistent"}).rows == []


def _count_by_category(s: Store) -> None:
    res = run(s, LIB["finding-count-by-category"], {})
    cats = dict(zip(vals(res, "category"), (int(x) for x in vals(res, "findings")), strict=True))
    assert cats["https://w3id.org/threatgraph/stride#InformationDisclosure"] >= 40
    assert len(cats) == 13  # 6 STRIDE + 7 LINDDUN categories


def _crossing(s: Store) -> None:
    res = run(s, LIB["elements-crossing-boundaries"], {})
    rows = {(r["flow"].value, r["srcZone"].value, r["tgtZone"].value) for r in res.rows}
    assert (EX + "f01", EX + "internet", EX + "dmz") in rows
    assert all(a != b for _, a, b in rows)


def _disclosure(s: Store) -> None:
    res = run(s, LIB["disclosure-privacy-and-security"], {})
    rows = {r["element"].value: r["strideRules"].value for r in res.rows}
    assert "TG-STRIDE-I-003" in rows[EX + "agentMemory"]


def _rules_fired(s: Store) -> None:
    res = run(s, LIB["rules-fired"], {})
    fired = dict(zip(vals(res, "ruleId"), (int(x) for x in vals(res, "findings")), strict=True))
    assert fired["TG-STRIDE-E-002"] >= 1 and fired["TG-PE-STRIDE"] == 53  # one baseline finding per element
    assert len(fired) == len(Engine().rules)


def _elements_of_kind(s: Store) -> None:
    res = run(s, LIB["elements-of-kind"], {"kind": "tgml:VectorStore"})
    assert vals(res, "element") == [EX + "vectorStore"]
    procs = run(s, LIB["elements-of-kind"], {})
    assert (EX + "agent", "https://w3id.org/threatgraph/ml#LLMAgent") in set(
        zip(vals(procs, "element"), vals(procs, "declaredAs"), strict=True)
    )


def _asserted_vs_inferred(s: Store) -> None:
    res = run(s, LIB["asserted-vs-inferred"], {"element": EX + "agent"})
    rows = {(r["origin"].value, r["property"].value, r["value"].value) for r in res.rows}
    rdf_type = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
    assert ("asserted", rdf_type, "https://w3id.org/threatgraph/ml#LLMAgent") in rows
    assert ("inferred", rdf_type, TG + "Process") in rows
    assert "TG-STRIDE-E-002" in {r["rule"].value for r in res.rows if "rule" in r}


def _personal_unencrypted(s: Store) -> None:
    res = run(s, LIB["personal-data-flows-unencrypted"], {})
    assert vals(res, "flow") == [EX + "f17"]


def _controls(s: Store) -> None:
    res = run(s, LIB["controls-and-mitigations"], {})
    rows = set(zip(vals(res, "control"), vals(res, "mitigation"), strict=False))
    assert (EX + "ctlDbEncryption", ATT + "M1041") in rows


def _paths(s: Store) -> None:
    res = run(s, LIB["attack-paths"], {})
    rows = {(r["start"].value, r["target"].value, int(r["crossings"].value)) for r in res.rows}
    assert (EX + "customer", EX + "customerDb", 3) in rows


def _element_graph(s: Store) -> None:
    res = run(s, LIB["element-graph"], {"element": EX + "agent"})
    assert res.form == "CONSTRUCT"
    turtle = render(res, "turtle")
    import rdflib

    g = rdflib.Graph().parse(data=turtle, format="turtle")
    agent = rdflib.URIRef(EX + "agent")
    assert (agent, rdflib.RDF.type, rdflib.URIRef("https://w3id.org/threatgraph/ml#LLMAgent")) in g
    assert (agent, rdflib.RDF.type, rdflib.URIRef(TG + "Process")) in g  # inferred
    findings = set(g.subjects(rdflib.URIRef(TG + "focus"), agent))
    rows = run(s, LIB["findings-of-element"], {"element": EX + "agent"}).rows  # a row per (finding, category)
    assert len(findings) == len({r["finding"].value for r in rows}) >= 3
    with pytest.raises(InputError, match="turtle"):
        render(res, "csv")


EXAMPLE_CHECKS: dict[str, Callable[[Store], None]] = {
    "element-graph": _element_graph,
    "findings-by-severity": _findings_by_severity,
    "elements-with-label": _elements_with_label,
    "findings-of-element": _findings_of_element,
    "finding-count-by-category": _count_by_category,
    "elements-crossing-boundaries": _crossing,
    "disclosure-privacy-and-security": _disclosure,
    "rules-fired": _rules_fired,
    "elements-of-kind": _elements_of_kind,
    "asserted-vs-inferred": _asserted_vs_inferred,
    "personal-data-flows-unencrypted": _personal_unencrypted,
    "controls-and-mitigations": _controls,
    "attack-paths": _paths,
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_CHECKS))
def test_example_query_rows(example: Store, name: str) -> None:
    EXAMPLE_CHECKS[name](example)


# -- rows on the pinned knowledge --------------------------------------------------------------------------
def _techniques_of_tactic(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["techniques-of-tactic"], {})
    got = sorted(r["id"].value for r in res.rows if r["release"].value == R18)
    expected = sorted(
        o["ext"](x)  # type: ignore[operator]
        for x in o["all"]  # type: ignore[attr-defined]
        if x["type"] == "attack-pattern" and _active(x)
        and any(p["phase_name"] == "reconnaissance" for p in x.get("kill_chain_phases", []))
    )
    assert got == expected and len(got) == 45
    atlas = run(s, LIB["techniques-of-tactic"], {"tactic": "AML.TA0002"})
    assert vals(atlas, "release") and set(vals(atlas, "release")) == {RATLAS}


def _subtechniques(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["subtechniques-of"], {})
    got = sorted(r["id"].value for r in res.rows if r["release"].value == R18)
    assert len(got) == 13 and got[-1] == "T1059.013"
    old = sorted(r["id"].value for r in res.rows if r["release"].value == R17)
    assert "T1059.013" not in old and len(old) == 12


def _mitigations_of(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["mitigations-of-technique"], {})
    got = sorted(r["id"].value for r in res.rows if r["release"].value == R18)
    assert got == ["M1026", "M1038", "M1042", "M1045", "M1049"]
    assert all(r.get("how") for r in res.rows)


def _used_by_group(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["techniques-used-by-group"], {})
    got = {r["id"].value for r in res.rows if r["release"].value == R18}
    objs, g7 = o["objs"], o["by_ext"]["G0007"]["id"]  # type: ignore[index]
    expected = {
        o["ext"](objs[r["target_ref"]])  # type: ignore[operator,index]
        for r in o["all"]  # type: ignore[attr-defined]
        if r["type"] == "relationship" and r["relationship_type"] == "uses" and r["source_ref"] == g7
        and objs[r["target_ref"]]["type"] == "attack-pattern"  # type: ignore[index]
    }
    assert got == expected and len(got) == 91
    assert any("APT28" in r["procedure"].value for r in res.rows if "procedure" in r)


def _groups_applicable(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["groups-using-applicable-techniques"], {})
    rows = {(r["group"].value, r["technique"].value, r["element"].value) for r in res.rows}
    assert (ATT + "G0001", ATT + "T1190", EX + "chatApi") in rows
    assert all("procedure" in r for r in res.rows[:20])


def _tactics_without(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["tactics-without-mitigation"], {})
    assert vals(res, "id") == ["AML.TA0014"]
    assert run(s, LIB["tactics-without-mitigation"], {"release": R18}).rows == []


def _changed(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["techniques-changed"], {})
    added = sorted(r["id"].value for r in res.rows if r["change"].value == "added")
    # the 12 techniques new in v18 listed in the data README
    assert added == ["T1036.012", "T1059.013", "T1204.005", "T1213.006", "T1518.002", "T1546.018",
                     "T1562.013", "T1677", "T1678", "T1679", "T1680", "T1681"]
    assert not [r for r in res.rows if r["change"].value == "removed"]
    back = run(s, LIB["techniques-changed"], {"old": R18, "new": R17})
    assert sorted(r["id"].value for r in back.rows if r["change"].value == "removed") == added


def _revoked(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["revoked-techniques"], {})
    assert len(res.rows) == 132  # README: 132 revoked attack-patterns in 18.1
    rows = {r["id"].value: r["replacementId"].value for r in res.rows if "replacementId" in r}
    assert rows["T1002"] == "T1560"


def _citing_revoked(s: Store, o: dict[str, object]) -> None:
    """The examples cite no revoked technique; a finding graph that does is built here from real data."""
    assert run(s, LIB["findings-citing-revoked"], {}).rows == []
    scratch = open_store()
    scratch.add_quads(s.quads(R18))
    nt = (
        f"<urn:f> <{TG}focus> <{EX}agent> .\n"
        f"<urn:app> a <{TG}TechniqueApplication> ; <{TG}ofFinding> <urn:f> ; <{TG}inRelease> <{R18}> ;"
        f" <{TG}appliedTechnique> <{ATT}T1560> ; <{TG}replacesTechnique> <{ATT}T1002> .\n"
        f"<urn:app2> a <{TG}TechniqueApplication> ; <{TG}ofFinding> <urn:f> ; <{TG}inRelease> <{R18}> ;"
        f" <{TG}appliedTechnique> <{ATT}T1004> .\n"
    )
    scratch.load(nt, "text/turtle", "https://w3id.org/threatgraph/graph/findings")
    res = run(scratch, LIB["findings-citing-revoked"], {})
    assert {(r["revoked"].value, r["replacement"].value) for r in res.rows} == {
        (ATT + "T1002", ATT + "T1560"),
        (ATT + "T1004", ATT + "T1547.004"),
    }


def _training_data(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["mitigations-for-training-data"], {})
    rows = {r["id"].value: r["techniqueIds"].value.split() for r in res.rows}
    assert "AML.T0020" in rows["AML.M0005"]  # Poison Training Data is mitigated by access control to data


def _d3fend(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["d3fend-countermeasures"], {})
    d3f = "http://d3fend.mitre.org/ontologies/d3fend.owl#"
    rows = {(r["countermeasure"].value, r["artifact"].value) for r in res.rows}
    assert (d3f + "ProcessSpawnAnalysis", d3f + "Process") in rows


def _atlas_links(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["atlas-attack-links"], {})
    assert len(res.rows) == 53  # README: 53 ATT&CK references in ATLAS 5.6.0, all active in 18.1
    assert all("attackLabel" in r for r in res.rows)
    assert (ATL + "AML.M0011", ATT + "M1044") in {(r["atlas"].value, r["attack"].value) for r in res.rows}


def _case_studies(s: Store, o: dict[str, object], atlas_yaml: dict[str, object] | None = None) -> None:
    res = run(s, LIB["case-studies-of-technique"], {})
    assert sorted(set(vals(res, "id"))) == ["AML.CS0037"]
    res2 = run(s, LIB["case-studies-of-technique"], {"technique": "AML.T0051.000"})
    from threatgraph.resources import shared_data_dir

    data = yaml.safe_load((shared_data_dir() / "atlas/ATLAS.yaml").read_text(encoding="utf-8"))  # type: ignore[operator]
    expected = sorted({c["id"] for c in data["case-studies"] for st in c.get("procedure", []) if st.get("technique") == "AML.T0051.000"})
    assert sorted(set(vals(res2, "id"))) == expected and expected


def _releases(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["releases"], {})
    assert set(zip(vals(res, "source"), vals(res, "version"), strict=True)) == {
        ("attack-enterprise", "17.1"), ("attack-enterprise", "18.1"), ("atlas", "5.6.0"), ("d3fend", "1.2.0")
    }


def _techniques_of_element(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["techniques-of-element"], {"element": EX + "agent"})
    rows = {(r["technique"].value, r["assetType"].value) for r in res.rows}
    assert (ATL + "AML.T0010.005", "https://w3id.org/threatgraph/ml#LLMAgent") in rows
    assert all(r.get("justification") for r in res.rows)


def _unmitigated(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["unmitigated-techniques"], {})
    assert (EX + "agent", ATL + "AML.T0010.001") in set(zip(vals(res, "element"), vals(res, "technique"), strict=True))
    # AML.T0085 on the agent is partly mitigated by telemetry: never listed as unmitigated there
    assert len(res.rows) > 100


def _lifecycle(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["lifecycle-unmitigated"], {})
    assert vals(res, "stage")[0] == "https://w3id.org/threatgraph/ml#ModelOperation"
    counts = [int(x) for x in vals(res, "unmitigated")]
    assert counts == sorted(counts, reverse=True)


def _top_mitigations(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["top-mitigations"], {})
    counts = [int(x) for x in vals(res, "techniques")]
    assert counts == sorted(counts, reverse=True) and counts[0] >= 10
    # AML.M0004 (restrict the number of AI model queries) since exposure by reachability (issue 13) applies
    # the query-based techniques to the model endpoints behind the public API; M1018 before
    assert res.rows[0]["mitigation"].value == ATL + "AML.M0004"


def _mappings_for_asset(s: Store, o: dict[str, object]) -> None:
    res = run(s, LIB["mappings-for-asset"], {})
    assert {ATL + "AML.T0066", ATL + "AML.T0070"} <= set(vals(res, "technique"))
    assert "https://w3id.org/threatgraph/stride#Tampering" in {c for r in res.rows for c in r["categories"].value.split()}


KNOWLEDGE_CHECKS: dict[str, Callable[[Store, dict[str, object]], None]] = {
    "techniques-of-tactic": _techniques_of_tactic,
    "subtechniques-of": _subtechniques,
    "mitigations-of-technique": _mitigations_of,
    "techniques-used-by-group": _used_by_group,
    "groups-using-applicable-techniques": _groups_applicable,
    "tactics-without-mitigation": _tactics_without,
    "techniques-changed": _changed,
    "revoked-techniques": _revoked,
    "findings-citing-revoked": _citing_revoked,
    "mitigations-for-training-data": _training_data,
    "d3fend-countermeasures": _d3fend,
    "atlas-attack-links": _atlas_links,
    "case-studies-of-technique": _case_studies,
    "releases": _releases,
    "techniques-of-element": _techniques_of_element,
    "unmitigated-techniques": _unmitigated,
    "lifecycle-unmitigated": _lifecycle,
    "top-mitigations": _top_mitigations,
    "mappings-for-asset": _mappings_for_asset,
}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(KNOWLEDGE_CHECKS))
def test_knowledge_query_rows(knowledge: Store, stix18: dict[str, object], name: str) -> None:
    KNOWLEDGE_CHECKS[name](knowledge, stix18)


def test_named_query_is_a_namedquery() -> None:
    assert all(isinstance(q, NamedQuery) for q in LIB.values())


def test_query_cli_on_a_store_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from threatgraph.cli import main

    store = open_store(str(tmp_path / "store"))
    Engine(store).analyze([RAG])
    store.flush()  # type: ignore[attr-defined]
    del store
    import gc

    gc.collect()  # release the store directory's lock
    assert main(["query", "element-graph", "--store", str(tmp_path / "store"), "--param", f"element={EX}agent",
                 "--format", "turtle"]) == 0
    out = capsys.readouterr().out
    assert "tgml:LLMAgent" in out and "tg:Finding" in out
    assert main(["query", "elements-of-kind", "--store", str(tmp_path / "store"), "-p", "kind=tgml:VectorStore",
                 "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"element": EX + "vectorStore", "label": "Vector index",
         "declaredAs": "https://w3id.org/threatgraph/ml#VectorStore"}
    ]
    assert main(["query", "elements-of-kind", "--store", str(tmp_path / "store"), "-p", "kind"]) == 2
