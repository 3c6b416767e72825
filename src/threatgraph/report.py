"""Renderers of the finding graph: table, JSON, Markdown, Turtle. All read :mod:`threatgraph.findings`."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections import Counter
from collections.abc import Sequence
from itertools import groupby

from threatgraph import __version__
from threatgraph.findings import Finding
from threatgraph.store import Store
from threatgraph.terms import graph_iri

FORMATS: tuple[str, ...] = (
    "table", "json", "markdown", "turtle",
    # issue 7 exports (threatgraph.export)
    "sarif", "html", "csv", "navigator-enterprise", "navigator-atlas", "dot", "mermaid",
)


def _by_element(findings: Sequence[Finding]) -> list[tuple[Finding, list[Finding]]]:
    groups = []
    for _, items in groupby(findings, key=lambda f: f.focus):
        lst = list(items)
        groups.append((lst[0], lst))
    return groups


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    """Counts of findings per severity.

    >>> summary([])
    {}
    """
    return dict(Counter(f.severity for f in findings))


def render_table(findings: Sequence[Finding], *, width: int | None = None) -> str:
    """A readable text table grouped by element: category, threat, severity, why."""
    width = width or max(80, min(shutil.get_terminal_size((120, 20)).columns, 160))
    lines: list[str] = []
    cat_w, sev_w = 34, 8
    why_w = max(30, width - cat_w - sev_w - 8)
    for head, items in _by_element(findings):
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        lines.append(f"{head.focus_label}{kind}  <{head.focus}>")
        for f in items:
            cats = ", ".join(f"{c[2]}:{c[1]}" for c in f.categories)
            why = f"[{f.rule_id}] {f.threat}. {f.explanation}"
            wrapped = textwrap.wrap(why, why_w) or [""]
            cat_lines = textwrap.wrap(cats, cat_w) or [""]
            for i in range(max(len(wrapped), len(cat_lines))):
                c = cat_lines[i] if i < len(cat_lines) else ""
                s = f.severity if i == 0 else ""
                w = wrapped[i] if i < len(wrapped) else ""
                lines.append(f"  {c:<{cat_w}}  {s:<{sev_w}}  {w}".rstrip())
        lines.append("")
    counts = summary(findings)
    order = ["critical", "high", "medium", "low", "info"]
    lines.append(
        f"{len(findings)} findings on {len(_by_element(findings))} elements: "
        + ", ".join(f"{counts[s]} {s}" for s in order if s in counts)
    )
    return "\n".join(lines) + "\n"


def findings_json(findings: Sequence[Finding], *, model_files: Sequence[str] = (), warnings: Sequence[str] = ()) -> str:
    """JSON document: tool, model files, warnings, summary, and every finding with its evidence."""
    doc = {
        "tool": {"name": "threatgraph", "version": __version__},
        "models": list(model_files),
        "warnings": list(warnings),
        "summary": summary(findings),
        "findings": [
            {
                "id": f.iri,
                "rule": f.rule_id,
                "threat": f.threat,
                "severity": f.severity,
                "element": {"iri": f.focus, "label": f.focus_label, "kind": f.focus_kind},
                "categories": [{"iri": c[0], "label": c[1], "framework": c[2]} for c in f.categories],
                "explanation": f.explanation,
                "evidence": [{"role": e[0], "value": e[1], "label": e[2]} for e in f.evidence],
                "source": f.source,
            }
            for f in findings
        ],
    }
    # Indented for people up to a few thousand findings; beyond, compact (json's C encoder only runs
    # without indent: 4.2 s -> 0.9 s for the 100 k findings of the 10 k-element benchmark model).
    return json.dumps(doc, indent=2 if len(findings) <= 5000 else None, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(findings: Sequence[Finding], *, title: str = "Threat analysis") -> str:
    """Markdown report: one section per element with a table of findings."""
    out = [f"# {title}", ""]
    counts = summary(findings)
    out.append(f"{len(findings)} findings: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    out.append("")
    for head, items in _by_element(findings):
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        out += [f"## {_md(head.focus_label)}{kind}", "", f"`{head.focus}`", ""]
        out += ["| Category | Threat | Severity | Why | Rule |", "|---|---|---|---|---|"]
        for f in items:
            cats = ", ".join(f"{c[2]}: {c[1]}" for c in f.categories)
            out.append(f"| {_md(cats)} | {_md(f.threat)} | {f.severity} | {_md(f.explanation)} | {f.rule_id} |")
        out.append("")
    return "\n".join(out) + "\n"


def render_turtle(store: Store) -> str:
    """The finding graph itself, as Turtle."""
    return store.dump(graph_iri("findings"), "text/turtle").decode("utf-8")
