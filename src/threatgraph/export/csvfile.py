"""CSV of findings, one row per finding (spreadsheet-safe: cells that a spreadsheet would run as a
formula are prefixed with an apostrophe)."""

from __future__ import annotations

import csv
import io

from threatgraph.export.context import ReportContext
from threatgraph.sanitize import csv_cell

COLUMNS: tuple[str, ...] = (
    "finding", "rule", "level", "severity", "residual_risk", "element", "element_iri", "element_kind", "categories",
    "threat", "explanation", "techniques", "mitigations", "controls", "source",
)


def _safe(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection): :func:`threatgraph.sanitize.csv_cell`.

    >>> _safe("=HYPERLINK(1)"), _safe("-2+3+cmd|' /C calc'!A0"), _safe("1.5")
    ("'=HYPERLINK(1)", "'-2+3+cmd|' /C calc'!A0", '1.5')
    """
    return csv_cell(value)


def render_csv(ctx: ReportContext) -> str:
    """The findings as CSV with a header row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for fv in ctx.findings:
        f = fv.f
        ev = ctx.model.elements.get(f.focus)
        w.writerow([_safe(x) for x in (
            f.iri, f.rule_id, f.level, f.severity, "" if fv.residual_risk is None else f"{fv.residual_risk:g}",
            ctx.element_label(f.focus), f.focus, f.focus_kind,
            "; ".join(f"{c[2]}: {c[1]}" for c in f.categories), f.threat, f.explanation,
            fv.techniques_text, "; ".join(f"{m[0]} {m[1]}" if m[0] != m[1] else m[0] for m in fv.mitigations),
            "; ".join(fv.controls or (ev.controls if ev else [])), f.source,
        )])
    return buf.getvalue()
