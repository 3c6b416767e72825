"""Renderers of the finding graph: table, JSON, Markdown, Turtle. All read :mod:`threatgraph.analysis.findings`."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections import Counter
from collections.abc import Sequence
from itertools import groupby

from threatgraph import __version__
from threatgraph.analysis.findings import Finding, TechniqueView
from threatgraph.analysis.paths import PathView
from threatgraph.analysis.risk import BASE_LIKELIHOOD
from threatgraph.store import Store
from threatgraph.terms import graph_iri

FORMATS: tuple[str, ...] = (
    "table", "json", "markdown", "turtle",
    # issue 7 exports (threatgraph.export)
    "sarif", "html", "csv", "navigator-enterprise", "navigator-atlas", "dot", "mermaid",
    # issue 12: findings written back into the team's tool (threatgraph.export.writeback)
    "threat-dragon", "otm",
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


BASELINE_RULES = ("TG-PE-STRIDE", "TG-PE-LINDDUN")
"""Per-element table rules: their findings are shown as one line per element and framework."""


def render_table(findings: Sequence[Finding], *, width: int | None = None) -> str:
    """A readable text table grouped by element: category, threat, severity, why.

    The per-element baseline (STRIDE-per-element and LINDDUN tables) is condensed into one line per
    framework; interaction findings follow, each with its explanation, risk, controls and techniques.
    """
    width = width or max(80, min(shutil.get_terminal_size((120, 20)).columns, 160))
    lines: list[str] = []
    cat_w, sev_w = 34, 8
    why_w = max(30, width - cat_w - sev_w - 8)
    indent = " " * (cat_w + sev_w + 6)

    def row(cats: str, sev: str, why: str) -> None:
        wrapped = textwrap.wrap(why, why_w) or [""]
        cat_lines = textwrap.wrap(cats, cat_w) or [""]
        for i in range(max(len(wrapped), len(cat_lines))):
            c = cat_lines[i] if i < len(cat_lines) else ""
            s = sev if i == 0 else ""
            w = wrapped[i] if i < len(wrapped) else ""
            lines.append(f"  {c:<{cat_w}}  {s:<{sev_w}}  {w}".rstrip())

    def extras(texts: Sequence[str]) -> None:
        for extra in texts:
            lines.extend(textwrap.wrap(extra, width, initial_indent=indent, subsequent_indent=indent + "  "))

    for head, items in _by_element(findings):
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        lines.append(f"{head.focus_label}{kind}  <{head.focus}>")
        baseline = [f for f in items if f.rule_id in BASELINE_RULES]
        for rule_id in BASELINE_RULES:
            group = [f for f in baseline if f.rule_id == rule_id]
            if not group:
                continue
            fw = "STRIDE" if rule_id == "TG-PE-STRIDE" else "LINDDUN"
            cats = ", ".join(c[1] for f in group for c in f.categories)
            kinds = sorted({e[2] for f in group for e in f.evidence if e[0] == "kind"})
            table = "Microsoft STRIDE-per-element" if fw == "STRIDE" else "LINDDUN per-element"
            row(f"{fw} per element", group[0].severity, f"[{rule_id}] {cats} ({table} table: {', '.join(kinds)})")
            seen: list[str] = []
            for f in group:
                seen.extend(t for t in derivation_lines(f) if t not in seen)
            extras(seen)
        for f in items:
            if f.rule_id in BASELINE_RULES:
                continue
            row(", ".join(f"{c[2]}:{c[1]}" for c in f.categories), f.severity, f"[{f.rule_id}] {f.threat}. {f.explanation}")
            extras(derivation_lines(f))
        lines.append("")
    counts = summary(findings)
    order = ["critical", "high", "medium", "low", "info"]
    lines.append(
        f"{len(findings)} findings on {len(_by_element(findings))} elements: "
        + ", ".join(f"{counts[s]} {s}" for s in order if s in counts)
    )
    return "\n".join(lines) + "\n"


def risk_text(f: Finding) -> str:
    """One line explaining a finding's risk score: the score, and every factor with its value and effect.

    >>> from threatgraph.analysis.findings import RiskFactorView
    >>> f = Finding("f", "R", "t", "info", "e", "E", "Process", "x", "s", likelihood=3, impact=4, risk_score=12,
    ...             risk_level="high", risk_factors=[RiskFactorView("impact", "criticality", "4", 4),
    ...                                              RiskFactorView("likelihood", "exposure", "publicly exposed", 1, "API")])
    >>> risk_text(f)
    'risk 12 (high) = likelihood 3 × impact 4; likelihood: base 2, +1 exposure (publicly exposed: API); impact: criticality 4'
    """
    lik = [f"base {BASE_LIKELIHOOD}"] + [
        f"{r.effect:+d} {r.name} ({r.value}{': ' + r.subject if r.subject else ''})" for r in f.risk_factors if r.of == "likelihood"
    ]
    imp = [f"{r.name} {r.value}" + (f" [{r.subject}]" if r.subject and r.subject not in r.value and r.name != "criticality" else "")
           for r in f.risk_factors if r.of == "impact"]
    return (f"risk {f.risk_score} ({f.risk_level}) = likelihood {f.likelihood} × impact {f.impact}; "
            f"likelihood: {', '.join(lik)}; impact: {'; '.join(imp) or 'default'}")


def technique_text(t: TechniqueView) -> str:
    """One line for a technique applied to a finding: status, why it applies, what mitigates and detects it."""
    head = f"{t.id}" + (f" {t.label}" if t.label else "") + f" [{t.status}]"
    if t.replaces:
        head += f" (replaces revoked {t.replaces})"
    parts = [head]
    if t.asset_types:
        parts.append("targets " + ", ".join(t.asset_types))
    if t.exposures:
        parts.append("exposed: " + ", ".join(f"{a} on {s}" for s, a in t.exposures))
    if t.reduced_by:
        parts.append("reduced: " + ", ".join(f"{a} on {s}" for s, a in t.reduced_by))
    if t.maturity:
        parts.append(f"maturity {t.maturity}")
    if t.implemented:
        parts.append("implemented: " + ", ".join(f"{m} by {c}" for m, c in t.implemented))
    missing = t.missing
    if missing:
        parts.append("missing mitigations: " + ", ".join(m for m, _ in missing))
    if t.countermeasures:
        shown = ", ".join(c[0] for c in t.countermeasures[:6])
        more = f" +{len(t.countermeasures) - 6}" if len(t.countermeasures) > 6 else ""
        parts.append(f"D3FEND: {shown}{more}")
    if t.detections:
        ids = sorted({d[0] for d in t.detections})
        parts.append("detect: " + ", ".join(ids[:4]) + (f" +{len(ids) - 4}" if len(ids) > 4 else ""))
    if t.sources:
        parts.append("mapping: " + "; ".join(t.sources[:2]))
    return "; ".join(parts)


def derivation_lines(f: Finding) -> list[str]:
    """The second-stage lines of a finding in the table: risk, controls, techniques."""
    out: list[str] = []
    if f.risk_score:
        out.append(risk_text(f))
    if f.control_status:
        ctl = f"controls: {f.control_status}"
        if f.covered_by:
            ctl += " (category covered by " + ", ".join(f.covered_by) + ")"
        if f.techniques:
            ctl += f"; {len(f.residual_techniques)} of {len(f.techniques)} techniques residual"
        out.append(ctl)
    out.extend("technique " + technique_text(t) for t in f.techniques)
    return out


def render_paths(paths: Sequence[PathView]) -> str:
    """Attack paths as text: one line per path, then one line per hop with its techniques."""
    if not paths:
        return ""
    lines = [f"Attack paths ({len(paths)}): external entities / untrusted sources to critical assets", ""]
    for pv in paths:
        lines.append(f"{pv.start_label} ⇒ {pv.target_label}: {pv.length} hops, {pv.crossings} trust-boundary crossings")
        for i, h in enumerate(pv.hops, 1):
            cross = " [crosses boundary]" if h.crosses_boundary else ""
            tech = (": " + ", ".join(h.techniques[:8]) + (f" +{len(h.techniques) - 8}" if len(h.techniques) > 8 else "")) if h.techniques else ""
            lines.append(f"  {i}. via {h.flow_label}{cross} → {h.element_label}{tech}")
        lines.append("")
    return "\n".join(lines) + "\n"


def technique_json(t: TechniqueView) -> dict[str, object]:
    """JSON form of a technique application."""
    return {
        "id": t.id, "iri": t.iri, "label": t.label, "status": t.status, "release": t.release,
        "replaces": t.replaces or None, "mapping": t.mapping, "assetTypes": t.asset_types,
        "justification": t.justification, "sources": t.sources,
        "exposure": [{"element": s, "attribute": a} for s, a in t.exposures],
        "reducedBy": [{"element": s, "attribute": a} for s, a in t.reduced_by],
        "maturity": t.maturity or None,
        "mitigations": [{"id": m, "label": lab} for m, lab in t.mitigations],
        "implemented": [{"mitigation": m, "controls": c} for m, c in t.implemented],
        "missingMitigations": [m for m, _ in t.missing],
        "countermeasures": [{"id": c, "label": lab, "inferredVia": why} for c, lab, why in t.countermeasures],
        "detections": [{"id": d, "label": lab} for d, lab in t.detections],
    }


def finding_derivation_json(f: Finding) -> dict[str, object]:
    """JSON keys the second stage adds to a finding."""
    return {
        "controlStatus": f.control_status or None,
        "coveredBy": f.covered_by,
        "risk": {
            "likelihood": f.likelihood, "impact": f.impact, "score": f.risk_score, "level": f.risk_level,
            "explanation": risk_text(f) if f.risk_score else "",
            "factors": [{"of": r.of, "name": r.name, "value": r.value, "effect": r.effect, "subject": r.subject}
                        for r in f.risk_factors],
        } if f.risk_score else None,
        "techniques": [technique_json(t) for t in f.techniques],
        "residualTechniques": [t.id for t in f.residual_techniques],
    }


def paths_json(paths: Sequence[PathView]) -> list[dict[str, object]]:
    """JSON form of attack paths."""
    return [
        {"start": {"iri": p.start, "label": p.start_label}, "target": {"iri": p.target, "label": p.target_label},
         "length": p.length, "boundaryCrossings": p.crossings,
         "hops": [{"flow": h.flow, "flowLabel": h.flow_label, "element": h.element, "elementLabel": h.element_label,
                   "crossesBoundary": h.crosses_boundary, "techniques": h.techniques} for h in p.hops]}
        for p in paths
    ]


def findings_json(
    findings: Sequence[Finding],
    *,
    model_files: Sequence[str] = (),
    warnings: Sequence[str] = (),
    paths: Sequence[PathView] = (),
    releases: dict[str, str] | None = None,
) -> str:
    """JSON document: tool, model files, warnings, summary, and every finding with its evidence,
    techniques, controls and risk; attack paths and the knowledge releases read (when any)."""
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
                **finding_derivation_json(f),
            }
            for f in findings
        ],
        "releases": dict(releases or {}),
        "attackPaths": paths_json(paths),
    }
    # Indented for people up to a few thousand findings; beyond, compact (json's C encoder only runs
    # without indent: 4.2 s -> 0.9 s for the 100 k findings of the 10 k-element benchmark model).
    return json.dumps(doc, indent=2 if len(findings) <= 5000 else None, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(findings: Sequence[Finding], *, title: str = "Threat analysis", paths: Sequence[PathView] = ()) -> str:
    """Markdown report: one section per element with a table of findings and one of techniques; attack paths."""
    out = [f"# {title}", ""]
    counts = summary(findings)
    out.append(f"{len(findings)} findings: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    out.append("")
    for head, items in _by_element(findings):
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        out += [f"## {_md(head.focus_label)}{kind}", "", f"`{head.focus}`", ""]
        out += ["| Category | Threat | Severity | Risk | Controls | Why | Rule |", "|---|---|---|---|---|---|---|"]
        for f in items:
            cats = ", ".join(f"{c[2]}: {c[1]}" for c in f.categories)
            risk = f"{f.risk_score} {f.risk_level}" if f.risk_score else ""
            why = f.explanation + (" " + risk_text(f) if f.risk_score else "")
            out.append(f"| {_md(cats)} | {_md(f.threat)} | {f.severity} | {risk} | {f.control_status} | {_md(why)} | {f.rule_id} |")
        techs = [(f, t) for f in items for t in f.techniques]
        if techs:
            out += ["", "| Technique | Category | Status | Why it applies, mitigations, detection |", "|---|---|---|---|"]
            for f, t in techs:
                out.append(f"| {t.id} | {_md(', '.join(f.category_labels))} | {t.status} | {_md(technique_text(t))} |")
        out.append("")
    if paths:
        out += ["## Attack paths", "", "| From | To | Hops | Boundary crossings | Path (techniques per hop) |", "|---|---|---|---|---|"]
        for pv in paths:
            hops = " → ".join(f"{h.element_label}" + (f" ({', '.join(h.techniques[:5])})" if h.techniques else "") for h in pv.hops)
            out.append(f"| {_md(pv.start_label)} | {_md(pv.target_label)} | {pv.length} | {pv.crossings} | {_md(hops)} |")
        out.append("")
    return "\n".join(out) + "\n"


def render_turtle(store: Store) -> str:
    """The finding graph itself, as Turtle."""
    return store.dump(graph_iri("findings"), "text/turtle").decode("utf-8")
