"""The Markdown report (scope, assets, diagram, findings by element, declared threats, warnings) and
the declared-threat sections that the table and JSON outputs of ``analyze`` add."""

from __future__ import annotations

from collections import Counter

from threatgraph import sanitize
from threatgraph.export.context import (
    CAPEC_NOT_LOADED,
    DeclaredThreat,
    FindingView,
    ReportContext,
    capec_summary,
)
from threatgraph.export.diagram import colour_basis, render_mermaid

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def md(text: str) -> str:
    """Text for a Markdown table cell or heading: :func:`threatgraph.sanitize.markdown` (no link, image or
    HTML from model text; pipes escaped, newlines as spaces)."""
    return sanitize.markdown(text)


def counts(findings: list[FindingView]) -> str:
    c = Counter(fv.f.level for fv in findings)
    return ", ".join(f"{c[s]} {s}" for s in SEVERITY_ORDER if c[s]) or "none"


def risk_text(fv: FindingView) -> str:
    """``12 (high)``: residual risk score and level, or empty."""
    if fv.residual_risk is None:
        return ""
    return f"{fv.residual_risk:g}" + (f" ({fv.risk_level})" if fv.risk_level else "")


def controls_text(ctx: ReportContext, fv: FindingView) -> str:
    """Controls of the finding (implementing or covering it) and status, else the element's declared controls."""
    ev = ctx.model.elements.get(fv.f.focus)
    items = fv.controls or (ev.controls if ev else [])
    text = "; ".join(items)
    if fv.control_status:
        text = f"{fv.control_status}" + (f": {text}" if text else "")
    return text


def _mit(fv: FindingView) -> str:
    return "; ".join(f"{m[0]} {m[1]}" if m[0] != m[1] else m[0] for m in fv.mitigations)


def render_markdown_report(ctx: ReportContext) -> str:
    """The full Markdown report."""
    m = ctx.model
    out = [f"# {md(ctx.title)}", ""]
    out += ["## Scope", ""]
    for _, label, desc in m.systems:
        out.append(f"- System **{md(label)}**" + (f": {md(desc)}" if desc else ""))
    out.append(f"- Model files: {', '.join(f'`{f}`' for f in ctx.model_files) or '-'}")
    out.append(f"- {len(m.elements)} elements, {len(m.flows)} data flows, {len(m.zones)} trust zones, "
               f"{len(m.assets)} data assets")
    out.append(f"- {len(ctx.findings)} findings: {counts(ctx.findings)}")
    out.append("")
    out += ["## Elements", "", "| Element | Kind | ML class | Zone | Controls |", "|---|---|---|---|---|"]
    for ev in sorted(m.elements.values(), key=lambda e: e.label.lower()):
        zone = m.zones.get(ev.zone or "", ("", None))[0]
        out.append(f"| {md(ev.label)} | {ev.kind} | {md(', '.join(ev.ml_classes))} | {md(zone)} | {md('; '.join(ev.controls))} |")
    out.append("")
    if m.assets:
        out += ["## Data assets", "", "| Data asset | Classification |", "|---|---|"]
        out += [f"| {md(label)} | {md(cls)} |" for _, label, cls in m.assets]
        out.append("")
    out += ["## Diagram", "", f"Elements coloured by {colour_basis(ctx)}.", "", "```mermaid", render_mermaid(ctx).rstrip(), "```", ""]
    out += ["## Findings by element", ""]
    for focus, items in ctx.by_focus().items():
        head = items[0].f
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        out += [f"### {md(ctx.element_label(focus))}{kind}", "", f"`{focus}`", ""]
        out += ["| Level | Risk | Category | Threat | Why | Techniques | Mitigations | Controls | Rule |",
                "|---|---|---|---|---|---|---|---|---|"]
        for fv in items:
            f = fv.f
            cats = ", ".join(f"{c[2]}: {c[1]}" for c in f.categories)
            out.append(f"| {f.level} | {risk_text(fv)} | {md(cats)} | {md(f.threat)} | {md(f.explanation)} | "
                       f"{md(fv.techniques_text)} | {md(_mit(fv))} | {md(controls_text(ctx, fv))} | {f.rule_id} |")
        out.append("")
    if ctx.attack_paths:
        out += ["## Attack paths", ""]
        out += [f"- **{md(label)}**" + (f": {md(desc)}" if desc else "") for label, desc in ctx.attack_paths]
        out.append("")
    out += declared_markdown(ctx)
    out += ["## Validation warnings", ""]
    out += [f"- {md(w)}" for w in ctx.warnings] or ["None."]
    out.append("")
    return "\n".join(out)


def declared_markdown(ctx: ReportContext) -> list[str]:
    """The declared-threats section (empty when the model declares none)."""
    if not ctx.declared:
        return []
    matched = [d for d in ctx.declared if d.matched]
    out = ["## Declared threats compared with derived findings", "",
           f"{len(matched)} of {len(ctx.declared)} declared threats are also derived (a finding of the same "
           f"category on the same element); threatgraph adds {len(ctx.added())} findings on categories "
           "nobody declared for those elements." + (" " + capec_summary(ctx.declared)).rstrip(), "",
           "| Element | Declared threat | Category | Status | Mitigation | Derived by | CAPEC → ATT&CK |",
           "|---|---|---|---|---|---|---|"]
    for d in ctx.declared:
        cats = ", ".join(c[1] for c in d.categories) or "(no STRIDE/LINDDUN category)"
        out.append(f"| {md(d.element_label)} | {md(d.title)} | {md(cats)} | {md(d.status)} | {md(d.mitigation)} | "
                   f"{md(d.derived_text()) or '**not derived**'} | {md(d.capec_text())} |")
    out.append("")
    added = [fv for fv in ctx.added() if fv.f.level_rank > 1]
    if added:
        out += ["Added by threatgraph (above info):", ""]
        out += [f"- {md(ctx.element_label(fv.f.focus))}: {md(fv.f.threat)} ({fv.f.level}, {fv.f.rule_id})" for fv in added]
        out.append("")
    return out


def declared_text(ctx: ReportContext) -> str:
    """The declared-threats section for the text table."""
    if not ctx.declared:
        return ""
    lines = ["", "Declared threats (from the imported model) compared with derived findings:"]
    for d in ctx.declared:
        cats = ", ".join(c[1] for c in d.categories) or "no category"
        how = f"derived by {d.derived_text()}" if d.matched else "NOT derived"
        status = f", {d.status}" if d.status else ""
        capec = f" · {d.capec_text()}" if d.capec else ""
        lines.append(f"  {' '.join(d.element_label.split())}: {' '.join(d.title.split())} [{cats}{status}] — {how}{capec}")
    n = sum(1 for d in ctx.declared if d.matched)
    lines.append(f"{n} of {len(ctx.declared)} declared threats also derived; {len(ctx.added())} findings added.")
    return sanitize.terminal("\n".join(lines) + "\n")


def declared_json(ctx: ReportContext) -> dict[str, object]:
    """The declared-threats field of the JSON output.

    Per threat: ``derived_by`` (rules matching by category), ``matched`` (by category or through CAPEC),
    ``elements`` (empty: a model-level threat) and, when it cites CAPEC ids, ``capec``: ``status``
    (``not loaded``, ``matched``, ``not matched``, ``no ATT&CK link``), ``cited``, ``links`` (CAPEC id →
    linked ATT&CK techniques, when loaded), ``names`` and ``matches`` (``capec``, ``technique`` derived,
    ``linked`` technique of CAPEC, ``element``, ``rules``); ``message`` says how to load CAPEC when it is not.
    """
    citing = [d for d in ctx.declared if d.capec]
    doc: dict[str, object] = {
        "matched": sum(1 for d in ctx.declared if d.matched),
        "total": len(ctx.declared),
        # threats the model marks not applicable that threatgraph still derives (reported, not suppressed)
        "not_applicable_derived": sum(1 for d in ctx.declared if d.rejected and d.matched),
        "added": [fv.f.iri for fv in ctx.added()],
        "threats": [_declared_threat_json(d) for d in ctx.declared],
    }
    if citing:
        doc["capec"] = {
            "loaded": any(d.capec_loaded for d in citing),
            "citing": len(citing),
            "linked": sum(1 for d in citing if any(d.capec_links.get(c) for c in d.capec)),
            "matched": sum(1 for d in citing if d.capec_matches),
        }
    return doc


def _declared_threat_json(d: DeclaredThreat) -> dict[str, object]:
    item: dict[str, object] = {
        "iri": d.iri, "element": d.element, "elements": d.elements, "title": d.title,
        "categories": [c[0] for c in d.categories], "severity": d.severity, "status": d.status,
        "mitigation": d.mitigation, "derived_by": d.matched_by, "matched": d.matched,
        "not_applicable": d.rejected,
    }
    if d.capec:
        capec: dict[str, object] = {"status": d.capec_status, "cited": d.capec}
        if d.capec_loaded:
            capec["links"] = {c: d.capec_links.get(c, []) for c in d.capec}
            capec["names"] = d.capec_names
            capec["matches"] = [{"capec": m.capec, "technique": m.technique, "linked": m.linked,
                                 "element": m.element, "rules": list(m.rules)} for m in d.capec_matches]
        else:
            capec["message"] = CAPEC_NOT_LOADED
        item["capec"] = capec
    return item
