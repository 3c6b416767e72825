"""The analyze report (issue 15): summary first, one level scale, elements by highest residual risk,
baseline folded, techniques capped, what to do; the 150-line budget; Markdown; snapshots.

Snapshots of the default table of each example (no knowledge, 120 columns) are kept in
tests/snapshots/; regenerate them with ``THREATGRAPH_UPDATE_SNAPSHOTS=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from threatgraph.analysis.findings import Finding, TechniqueView
from threatgraph.analysis.rules import SEVERITIES, load_rules
from threatgraph.cli import build_parser, main
from threatgraph.report import (
    TECHNIQUE_CAP,
    do_text,
    element_lines,
    fold_baseline,
    mitigation_plans,
    ranking,
    top_techniques,
)

REPO = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
EXAMPLES = ("rag-assistant", "health-risk", "tabular-platform")
WIDTH = 120


def run(args: list[str], out: Path) -> tuple[int, str]:
    """``threatgraph analyze`` from the repository root at 120 columns, the report written to ``out``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        mp.setenv("COLUMNS", str(WIDTH))
        rc = main(["analyze", *args, "--output", str(out)])
    return rc, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rag_plain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The RAG example without knowledge: default table, full table, JSON."""
    d = tmp_path_factory.mktemp("plain")
    m = "data/examples/rag-assistant.ttl"
    return {
        "table": run([m], d / "t.txt")[1],
        "full": run([m, "--detail", "full"], d / "f.txt")[1],
        "summary": run([m, "--detail", "summary"], d / "s.txt")[1],
        "json": run([m, "-f", "json"], d / "j.json")[1],
    }


@pytest.fixture(scope="module")
def rag_knowledge(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The RAG example with ATT&CK 18.1, ATLAS and D3FEND (the pinned reference data)."""
    if not os.environ.get("THREATGRAPH_SHARED_DATA") and not (REPO.parent / "shared" / "data").is_dir():
        pytest.skip("needs the pinned reference data")
    d = tmp_path_factory.mktemp("knowledge")
    m = ["data/examples/rag-assistant.ttl", "--knowledge", "shared"]
    out = {
        "table": run(m, d / "t.txt")[1],
        "json": run([*m, "-f", "json"], d / "j.json")[1],
        "markdown": run([*m, "-f", "markdown"], d / "m.md")[1],
    }
    # every rule with a remediation of a typical length (wt-crosswalk writes them into the rule headers)
    from threatgraph import report

    original = report.gather

    def gather(*args: object, **kwargs: object) -> report.ReportInput:
        ri = original(*args, **kwargs)  # type: ignore[arg-type]
        ri.remediation = {f.rule_id: "Add the control this rule names on the element (see the rule's explanation), "
                          "then rerun the analysis." for f in ri.all_findings}
        return ri

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report, "gather", gather)
        out["table_remediation"] = run(m, d / "r.txt")[1]
    return out


# -- unit: ranking, folding, the cap, what to do ---------------------------------------------------

def finding(rule: str, level: str, *, score: int = 0, severity: str = "medium", focus: str = "e1",
            status: str = "unmitigated", techniques: int = 0, cat: str = "Tampering") -> Finding:
    f = Finding(f"urn:f:{rule}:{focus}:{level}:{cat}", rule, f"threat {rule}", severity, f"urn:{focus}", focus.upper(),
                "Process", f"because {rule}", "src", categories=[(f"urn:c:{cat}", cat, "STRIDE")],
                control_status=status, risk_score=score, risk_level=level if score else "",
                likelihood=score and 1, impact=score)
    for i in range(techniques):
        f.techniques.append(TechniqueView(f"urn:t{i}", f"AML.T{i:04d}", f"Technique {i}", "urn:m", maturity="demonstrated",
                                          mitigations=[(f"AML.M{i % 2:04d}", f"Mitigation {i % 2}")]))
    return f


def test_ranking_highest_residual_risk_first() -> None:
    fs = [finding("R-LOW", "low", score=3), finding("R-CRIT", "critical", score=16),
          finding("R-HIGH", "high", score=12), finding("R-HIGH2", "high", score=10),
          finding("R-MIT", "critical", score=20, status="mitigated"), finding("R-INFO", "info", severity="info")]
    assert [f.rule_id for f in ranking(fs)] == ["R-CRIT", "R-HIGH", "R-HIGH2", "R-LOW"]  # no mitigated, no info


def test_baseline_without_techniques_is_not_ranked_by_its_context_score() -> None:
    base = finding("TG-PE-STRIDE", "critical", score=20, severity="info")
    assert base.level == "info" and base.risk_level == "critical"  # the element's context, not its level
    with_t = finding("TG-PE-STRIDE", "critical", score=20, severity="info", techniques=2, cat="Spoofing")
    assert with_t.level == "critical"  # techniques realise it: its risk counts
    assert ranking([base, with_t]) == [with_t]


def test_fold_baseline_one_line_by_level() -> None:
    items = [finding("TG-PE-STRIDE", "critical", score=16, severity="info", techniques=1, cat="Spoofing"),
             finding("TG-PE-STRIDE", "", severity="info", cat="Repudiation"),
             finding("TG-PE-LINDDUN", "", severity="info", cat="Linking")]
    line = fold_baseline(items)
    assert line == "baseline: critical Spoofing; info 2 categories (1 residual techniques)"
    assert fold_baseline([finding("R-X", "high", score=12)]) == ""  # no baseline finding, nothing to fold


def test_technique_cap() -> None:
    many = finding("R-T", "high", score=12, techniques=15)
    shown, more = top_techniques(many)
    assert len(shown) == TECHNIQUE_CAP and more == 12
    few = finding("R-T", "high", score=12, techniques=2)
    assert top_techniques(few) == (few.techniques, 0)
    from threatgraph.report import ReportInput

    top10 = [finding(f"R-C{i}", "critical", score=20, focus=f"c{i}") for i in range(10)]
    ri = ReportInput([many, *top10], [many, *top10], {}, {}, [], [], {})
    text = "\n".join(element_lines(ri, 200))
    assert "#1 above: threat R-C0" in text  # a finding of the top list is referred to, not repeated
    assert "techniques AML.T0000, AML.T0001, AML.T0002 +12 more · do: apply Mitigation 0" in text
    ri_few = ReportInput([few, *top10], [few, *top10], {}, {}, [], [], {})
    assert "techniques AML.T0000, AML.T0001 · do:" in "\n".join(element_lines(ri_few, 200))


def test_do_text_mitigations_by_name_first_then_remediation() -> None:
    f = finding("R-T", "high", score=12, techniques=3)
    text = do_text(f, {"R-T": "Rate-limit the endpoint."})
    assert text == "apply Mitigation 0 (AML.M0000), Mitigation 1 (AML.M0001); Rate-limit the endpoint"
    assert do_text(finding("R-T", "high", score=12), {"R-T": "Rate-limit the endpoint."}) == "Rate-limit the endpoint"
    assert do_text(finding("R-T", "high", score=12), {}) == ""
    plans = mitigation_plans([f, finding("R-U", "medium", score=6, techniques=1, focus="e2")])
    assert [(p.id, len(p.findings), sorted(p.techniques), p.elements) for p in plans] == [
        ("AML.M0000", 2, ["AML.T0000", "AML.T0002"], ["E1", "E2"]), ("AML.M0001", 1, ["AML.T0001"], ["E1"])]


def test_remediation_header_rendered_without_knowledge(tmp_path: Path) -> None:
    """Rule.remediation (header field) is what the table says to do when no knowledge is loaded."""
    from threatgraph.report import ReportInput, render_triage_table

    rules = {r.id: r for r in load_rules()}
    rule = replace(rules["TG-STRIDE-D-002"], remediation="Put a rate limit and a quota in front of the endpoint.")
    f = finding("TG-STRIDE-D-002", "high", score=12)
    ri = ReportInput([f], [f], {}, {rule.id: rule.remediation}, [], [], {})
    assert "do:  Put a rate limit and a quota in front of the endpoint" in render_triage_table(ri, width=200)
    ri_none = ReportInput([f], [f], {}, {}, [], [], {})
    assert "do:" not in render_triage_table(ri_none, width=200)


# -- the RAG example -------------------------------------------------------------------------------

def element_blocks(table: str) -> list[tuple[str, str, list[str]]]:
    """(element label, level on its line, levels of its finding lines) of the element section."""
    section = table.split("Elements, highest residual risk first\n", 1)[1]
    blocks: list[tuple[str, str, list[str]]] = []
    for line in section.splitlines():
        m = re.match(r"^(\S.*?) (?:\([^()]*\) )?· (\w+)(?: · |$)", line)
        if m and not line.startswith(" "):
            blocks.append((m.group(1), m.group(2), []))
        elif re.match(r"^  (critical|high|medium|low|info) ", line):
            blocks[-1][2].append(line.split()[0])
    return blocks


def json_levels(doc: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    by: dict[str, list[dict[str, object]]] = {}
    for f in doc["findings"]:  # type: ignore[attr-defined]
        by.setdefault(f["element"]["label"], []).append(f)
    return by


RANK = {s: i for i, s in enumerate(SEVERITIES)}


@pytest.mark.parametrize("variant", ["plain", "knowledge"])
def test_rag_order_and_levels_equal_the_json(variant: str, request: pytest.FixtureRequest) -> None:
    rep = request.getfixturevalue("rag_plain" if variant == "plain" else "rag_knowledge")
    doc = json.loads(rep["json"])
    blocks = element_blocks(rep["table"])
    assert len(blocks) >= 10
    # elements in order of their highest residual risk
    ranks = [RANK[level] for _, level, _ in blocks]
    assert ranks == sorted(ranks, reverse=True)
    by = json_levels(doc)
    for label, level, lines in blocks:
        label = re.sub(r" \([^()]*\)$", "", label) if label not in by else label
        items = by[label]
        residual = [f for f in items if f["controlStatus"] != "mitigated"]
        assert level == max((f["level"] for f in residual), key=RANK.__getitem__)
        # every level shown is the JSON's, finding for finding (the baseline is folded: no line of its own; the
        # threats declared facts mitigate are the summary's one line, kept in the JSON with their status)
        assert Counter(lines) == Counter(f["level"] for f in items
                                         if not f["rule"].startswith("TG-PE-") and not f.get("mitigatedBy"))
        assert all(f["controlStatus"] == "mitigated" for f in items if f.get("mitigatedBy"))
    # the top 10 of the table is the head of the JSON ranking
    top = re.findall(r"^\s*(\d+)\. (\w+) +(.+?) — ", rep["table"], re.M)
    assert [(lv, el) for _, lv, el in top] == [(r["level"], r["element"]) for r in doc["ranking"][:10]]
    assert len(top) == 10
    # counts by level equal the JSON's
    counts = {lv: int(n) for n, lv in re.findall(r"(\d+) (critical|high|medium|low|info)", rep["table"].splitlines()[2])}
    assert counts == doc["levels"] and sum(counts.values()) == len(doc["findings"])


def test_rag_json_level_and_severity(rag_plain: dict[str, str]) -> None:
    doc = json.loads(rag_plain["json"])
    fs = doc["findings"]
    assert all(f["level"] in SEVERITIES and f["severity"] in SEVERITIES for f in fs)
    # one scale: no finding whose rule says info is shown above info unless techniques realise it
    info_baseline = [f for f in fs if f["severity"] == "info" and not f["techniques"]]
    assert info_baseline and all(f["level"] == "info" for f in info_baseline)
    # the case the issue saw ("info" shown as "risk 20 (critical)"): such findings carry no risk at all now
    assert not any(f["risk"] for f in info_baseline)
    # where risk is computed for a finding of its own, it is the level, capped one step above the rule's
    # severity (a low-severity threat is at most medium); the cap is stated in the JSON and the explanation
    own = [f for f in fs if not f["rule"].startswith("TG-PE-")]
    sev = {s: i for i, s in enumerate(SEVERITIES)}
    for f in own:
        # a threat declared facts mitigate (mitigatedBy) is capped at the rule's severity itself (issue 13)
        step = 0 if f.get("mitigatedBy") else 1
        cap = SEVERITIES[min(sev[f["severity"]] + step, len(SEVERITIES) - 1)]
        assert f["level"] == min(f["risk"]["level"], cap, key=sev.__getitem__)
        assert ("levelCappedAt" in f["risk"]) == (f["level"] != f["risk"]["level"])
    capped = [f for f in own if "levelCappedAt" in f["risk"] and not f.get("mitigatedBy")]
    assert capped and all("capped one step above the rule's severity" in f["risk"]["explanation"] for f in capped)
    mitigated = [f for f in own if f.get("mitigatedBy")]
    assert mitigated and all(f["controlStatus"] == "mitigated" and f["level"] in ("info", "low") for f in mitigated)
    assert any("mitigated by the declared fact" in f["risk"]["explanation"] for f in mitigated)
    assert any(f["level"] != f["severity"] for f in own)


def test_rag_folding_and_detail_levels(rag_plain: dict[str, str]) -> None:
    table, full, summary = rag_plain["table"], rag_plain["full"], rag_plain["summary"]
    assert table.index("Top 10 residual risks") < table.index("Elements, highest residual risk first")
    assert "[TG-PE-" not in table.split("Elements, highest residual risk first")[1]  # folded into the element line
    assert table.count("baseline: ") == len(element_blocks(table))
    assert "STRIDE per element" in full and "LINDDUN per element" in full  # full: today's complete listing
    assert "Elements, highest residual risk first" not in summary and summary.splitlines()[:20] == table.splitlines()[:20]
    assert len(summary.splitlines()) < len(table.splitlines()) < len(full.splitlines())
    # no "info" finding carries a risk level in the full listing
    assert not re.search(r"^\s+\S.*\s info\s.*\n.*risk \d+ \(critical\)", full)


@pytest.mark.shared
def test_rag_with_knowledge_fits_150_lines(rag_knowledge: dict[str, str]) -> None:
    table = rag_knowledge["table"]
    lines = table.splitlines()
    assert len(lines) <= 150, len(lines)
    assert [line for line in lines if len(line) > WIDTH] == []
    with_remediation = rag_knowledge["table_remediation"].splitlines()
    assert len(with_remediation) <= 150, len(with_remediation)  # longer texts: the budget still holds
    assert sum("rerun the analysis" in x for x in with_remediation) > 10
    # mitigation names, not bare ids
    mits = table.split("Mitigations that would close the most", 1)[1].split("Out of scope")[0]
    assert re.search(r"^  [A-Z][A-Za-z].* \((AML\.)?M\d{4}\): \d+ findings, \d+ techniques; on ", mits, re.M)
    assert "missing mitigations: AML.M" not in table
    assert re.search(r"do:  apply [A-Z][^(]+ \((AML\.)?M\d{4}\)", table)
    assert re.search(r"^ {12}techniques [^·]* \+\d+ more · do: apply ", table, re.M)  # the cap


@pytest.mark.shared
def test_markdown_parses_and_keeps_the_table_order(rag_knowledge: dict[str, str]) -> None:
    md = rag_knowledge["markdown"]
    assert len(md) < 65536  # GitHub refuses longer comments (elements past the budget are named, not detailed)
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[0].startswith("Threat analysis of")
    assert headings[1:] == ["Top 10 residual risks", "Mitigations that would close the most",
                            "Elements, highest residual risk first"]
    html_blocks = [t.content for t in tokens if t.type == "html_block"]
    opened = sum(b.count("<details>") for b in html_blocks)
    assert opened == sum(b.count("</details>") for b in html_blocks) > 10
    # the tables inside the <details> blocks parse as tables (a blank line after </summary>)
    summaries = [re.search(r"<summary><b>(.*?)</b>", b) for b in html_blocks]
    md_order = [m.group(1).replace("&amp;", "&") for m in summaries if m]
    assert sum(1 for t in tokens if t.type == "table_open") == 2 + len(md_order)
    # the same order as the table; each keeps as many elements as its budget allows (150 lines, 64 KiB)
    table_order = [label for label, _, _ in element_blocks(rag_knowledge["table"])]
    n = min(len(md_order), len(table_order))
    assert n > 5 and md_order[:n] == table_order[:n]
    top_rows = md.split("### Top 10 residual risks", 1)[1].split("###", 1)[0]
    doc = json.loads(rag_knowledge["json"])
    assert re.findall(r"^\| \d+ \| \*\*(\w+)\*\* \| (.+?) \|", top_rows, re.M) == [
        (r["level"], r["element"]) for r in doc["ranking"][:10]]


def test_min_severity_and_fail_on_use_the_level(tmp_path: Path, rag_plain: dict[str, str]) -> None:
    everything = json.loads(rag_plain["json"])["findings"]
    rc, text = run(["data/examples/rag-assistant.ttl", "-f", "json", "--min-severity", "high"], tmp_path / "h.json")
    assert rc == 0
    shown = json.loads(text)["findings"]
    assert {f["id"] for f in shown} == {f["id"] for f in everything if RANK[f["level"]] >= RANK["high"]}
    assert any(RANK[f["severity"]] < RANK["high"] for f in shown)  # a medium rule at a high risk is shown
    hidden = [f for f in everything if RANK[f["severity"]] >= RANK["high"] and RANK[f["level"]] < RANK["high"]]
    assert hidden and not {f["id"] for f in hidden} & {f["id"] for f in shown}  # a high rule at low risk is not
    top = max(RANK[f["level"]] for f in everything)
    assert run(["data/examples/rag-assistant.ttl", "--fail-on", SEVERITIES[top]], tmp_path / "a.txt")[0] == 1
    if top + 1 < len(SEVERITIES):
        assert run(["data/examples/rag-assistant.ttl", "--fail-on", SEVERITIES[top + 1]], tmp_path / "b.txt")[0] == 0


# -- snapshots -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLES)
def test_default_table_snapshot(name: str, tmp_path: Path) -> None:
    rc, text = run([f"data/examples/{name}.ttl"], tmp_path / "t.txt")
    assert rc == 0
    snap = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("THREATGRAPH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        snap.write_text(text, encoding="utf-8")
    assert snap.is_file(), f"no snapshot {snap}: run with THREATGRAPH_UPDATE_SNAPSHOTS=1 and review it"
    assert text == snap.read_text(encoding="utf-8"), (
        f"the default table of {name} changed: review, then THREATGRAPH_UPDATE_SNAPSHOTS=1 pytest {__file__}")


# -- help texts ------------------------------------------------------------------------------------

def test_every_command_has_a_plain_text_description() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert len(sub.choices) >= 10  # type: ignore[attr-defined]
    for name, p in sub.choices.items():  # type: ignore[attr-defined]
        assert p.description, f"{name} has no description"
        text = p.format_help()
        assert "``" not in text and not re.search(r":(func|class|mod|meth|attr):", text), f"{name}: reST in --help"
        assert "`" not in text, f"{name}: backquotes in --help"
    analyze = sub.choices["analyze"].format_help()  # type: ignore[attr-defined]
    flat = " ".join(analyze.split())
    assert "validated first" in flat and "refused" in flat and "--force" in flat


def test_markdown_stays_under_the_comment_limit() -> None:
    from threatgraph.report import MARKDOWN_BUDGET, ReportInput, render_markdown

    big = [replace(finding(f"R-{i:03d}", "high", score=12, focus=f"e{i}"), explanation="x" * 900) for i in range(300)]
    quiet = [finding(f"R-Q{i:04d}", "", severity="info", focus=f"quiet-element-number-{i}") for i in range(3000)]
    md = render_markdown(ReportInput(big + quiet, big + quiet, {}, {}, [], ["a warning"], {}))
    assert MARKDOWN_BUDGET < len(md) < 65536
    assert re.search(r"^\d+ more elements with findings above info are left out", md, re.M)
    assert "The elements with info findings only: left out to keep the comment short" in md  # 3000 names: too long
    assert "<summary>Warnings (1)</summary>" in md  # a short section after it still fits
    small = big[:5]
    assert "left out" not in render_markdown(ReportInput(small, small, {}, {}, [], [], {}))


def test_out_of_scope_line_and_json(tmp_path: Path, rag_plain: dict[str, str]) -> None:
    assert "Out of scope: none declared in the model." in rag_plain["table"]
    assert json.loads(rag_plain["json"])["outOfScope"] == []
    model = tmp_path / "m.ttl"
    model.write_text((REPO / "data/examples/rag-assistant.ttl").read_text(encoding="utf-8") + """
<https://example.org/rag-assistant#reviewer> <https://w3id.org/threatgraph/ontology#outOfScope> true ;
    <https://w3id.org/threatgraph/ontology#outOfScopeReason> "a manual process, reviewed elsewhere" .
""", encoding="utf-8")
    rc, table = run([str(model), "--detail", "summary"], tmp_path / "t.txt")
    assert rc == 0
    assert "Out of scope (declared, still analysed): Support quality reviewer (a manual process, reviewed elsewhere)." in table
    doc = json.loads(run([str(model), "-f", "json"], tmp_path / "j.json")[1])
    assert doc["outOfScope"] == [{"iri": "https://example.org/rag-assistant#reviewer", "label": "Support quality reviewer",
                                  "reason": "a manual process, reviewed elsewhere"}]
