"""A self-contained HTML report (inline CSS and SVG; no scripts, fonts or stylesheets from elsewhere).

Same sections as the Markdown report; the diagram is an inline SVG laid out with one column per trust
zone (least trusted first) and elements coloured like the DOT/Mermaid diagrams.
"""

from __future__ import annotations

from html import escape

from threatgraph import __version__
from threatgraph.export.context import ReportContext
from threatgraph.export.diagram import SEVERITY_COLOURS, colour_basis, element_levels
from threatgraph.export.markdown import controls_text, counts, risk_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem;color:#212121;max-width:1400px}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.3rem .5rem;
vertical-align:top;text-align:left;font-size:.9rem}th{background:#f5f5f5}code{font-size:.8rem;color:#555}
.sev{font-weight:600;padding:0 .3rem;border-radius:3px}.critical{background:#b71c1c;color:#fff}
.high{background:#e65100;color:#fff}.medium{background:#f9a825}.low{background:#fff59d}.info{background:#e0e0e0}
.missing{color:#b71c1c;font-weight:600}svg text{font-family:inherit}
"""
_SEV_RANK_NAME = {5: "critical", 4: "high", 3: "medium", 2: "low", 1: "info"}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _lines(text: str) -> str:
    return "<br>".join(_e(x) for x in text.splitlines()) if text else ""


def render_svg(ctx: ReportContext) -> str:
    """The data-flow diagram as inline SVG."""
    m = ctx.model
    levels = element_levels(ctx)
    zone_keys: list[str | None] = sorted(
        {ev.zone for ev in m.elements.values()},
        key=lambda z: (z is not None, (m.zones.get(z or "", ("", None))[1] if z else -1) or 0,
                       m.zones.get(z or "", ("", None))[0]),
    )
    bw, bh, gap_x, gap_y, top = 180.0, 58.0, 110.0, 34.0, 60.0
    pos: dict[str, tuple[float, float]] = {}
    parts: list[str] = []
    max_rows = 1
    for ci, z in enumerate(zone_keys):
        members = sorted((ev for ev in m.elements.values() if ev.zone == z), key=lambda e: e.label.lower())
        max_rows = max(max_rows, len(members))
        x = 30 + ci * (bw + gap_x)
        for ri, ev in enumerate(members):
            pos[ev.iri] = (x, top + ri * (bh + gap_y))
    height = top + max_rows * (bh + gap_y) + 20
    width = 60 + len(zone_keys) * (bw + gap_x)
    for ci, z in enumerate(zone_keys):
        x = 30 + ci * (bw + gap_x)
        if z is not None:
            label, trust = m.zones.get(z, (z, None))
            parts.append(f'<rect x="{x - 14}" y="20" width="{bw + 28}" height="{height - 30}" fill="none" '
                         f'stroke="#c62828" stroke-dasharray="6 4"/>')
            parts.append(f'<text x="{x - 8}" y="38" font-size="12" fill="#c62828">{_e(label)}'
                         f'{_e(f" (trust {trust})") if trust is not None else ""}</text>')
    for fl in sorted(m.flows.values(), key=lambda f: f.iri):
        if fl.source not in pos or fl.target not in pos:
            continue
        (x1, y1), (x2, y2) = pos[fl.source], pos[fl.target]
        a = (x1 + bw / 2, y1 + bh / 2)
        b = (x2 + bw / 2, y2 + bh / 2)
        if fl.source == fl.target:
            continue
        lvl = levels.get(fl.iri, (0, ""))[0]
        colour = SEVERITY_COLOURS[lvl] if lvl >= 3 else "#424242"
        width_attr = 2.5 if fl.crosses else 1.2
        label = fl.label.replace("\n", " ") + (f" [{fl.protocol}]" if fl.protocol else "")
        if abs(x1 - x2) < 1:  # same column: a curve beside the boxes instead of a line through them
            sx, sy, ex, ey = x1 + bw, y1 + bh / 2, x2 + bw, y2 + bh / 2
            cx, cy = x1 + bw + 24 + 10 * abs(y2 - y1) / (bh + gap_y), (sy + ey) / 2
            parts.append(f'<path d="M{sx:.0f} {sy:.0f} Q{cx:.0f} {cy:.0f} {ex:.0f} {ey:.0f}" fill="none" stroke="{colour}" '
                         f'stroke-width="{width_attr}" marker-end="url(#arrow)"><title>{_e(label)}</title></path>')
            continue
        # clip to the box edges (roughly) so arrowheads are visible
        dx, dy = b[0] - a[0], b[1] - a[1]
        scale = max(abs(dx) / (bw / 2 + 4), abs(dy) / (bh / 2 + 4), 1e-9)
        sx, sy = a[0] + dx / scale, a[1] + dy / scale
        ex, ey = b[0] - dx / scale, b[1] - dy / scale
        parts.append(f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{ex:.0f}" y2="{ey:.0f}" stroke="{colour}" '
                     f'stroke-width="{width_attr}" marker-end="url(#arrow)"><title>{_e(label)}</title></line>')
        parts.append(f'<text x="{(sx + ex) / 2:.0f}" y="{(sy + ey) / 2 - 4:.0f}" font-size="10" text-anchor="middle" '
                     f'fill="#333">{_e(label[:40])}</text>')
    for iri, (x, y) in pos.items():
        ev = m.elements[iri]
        lvl, why = levels.get(iri, (0, "no findings"))
        fill = SEVERITY_COLOURS[lvl]
        shape = {
            "ExternalEntity": f'<rect x="{x}" y="{y}" width="{bw}" height="{bh}" fill="{fill}" stroke="#333"/>',
            "Process": f'<rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="26" fill="{fill}" stroke="#333"/>',
            "DataStore": f'<path d="M{x} {y + 8} v{bh - 16} a{bw / 2} 8 0 0 0 {bw} 0 v-{bh - 16} a{bw / 2} 8 0 0 0 -{bw} 0 '
                         f'a{bw / 2} 8 0 0 0 {bw} 0" fill="{fill}" stroke="#333"/>',
        }.get(ev.kind, f'<rect x="{x}" y="{y}" width="{bw}" height="{bh}" fill="{fill}" stroke="#333"/>')
        title = f"{ev.label} ({ev.kind}{', ' + ', '.join(ev.ml_classes) if ev.ml_classes else ''}): {why}"
        text_colour = "#fff" if lvl >= 4 else "#000"
        label_lines = ev.label.splitlines() or [""]
        tspans = "".join(f'<tspan x="{x + bw / 2}" dy="{0 if i == 0 else 13}">{_e(t[:28])}</tspan>'
                         for i, t in enumerate(label_lines[:2]))
        kind = ", ".join(ev.ml_classes) or ev.kind
        parts.append(f'<g><title>{_e(title)}</title>{shape}<text x="{x + bw / 2}" y="{y + 24}" font-size="12" '
                     f'text-anchor="middle" fill="{text_colour}">{tspans}</text><text x="{x + bw / 2}" y="{y + bh - 8}" '
                     f'font-size="9" text-anchor="middle" fill="{text_colour}">«{_e(kind[:32])}»</text></g>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="Data-flow diagram"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#424242"/>'
            f'</marker></defs>{"".join(parts)}</svg>')


def render_html(ctx: ReportContext) -> str:
    """The full HTML report."""
    m = ctx.model
    h: list[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                    f"<title>{_e(ctx.title)}</title>",
                    '<meta name="generator" content="threatgraph ' + _e(__version__) + '">',
                    f"<style>{_CSS}</style></head><body>", f"<h1>{_e(ctx.title)}</h1>"]
    h.append("<h2>Scope</h2><ul>")
    for _, label, desc in m.systems:
        h.append(f"<li>System <b>{_e(label)}</b>{': ' + _lines(desc) if desc else ''}</li>")
    h.append(f"<li>Model files: {', '.join(f'<code>{_e(f)}</code>' for f in ctx.model_files) or '-'}</li>")
    h.append(f"<li>{len(m.elements)} elements, {len(m.flows)} data flows, {len(m.zones)} trust zones, "
             f"{len(m.assets)} data assets</li><li>{len(ctx.findings)} findings: {_e(counts(ctx.findings))}</li></ul>")
    h.append("<h2>Elements</h2><table><tr><th>Element</th><th>Kind</th><th>ML class</th><th>Zone</th><th>Controls</th></tr>")
    for ev in sorted(m.elements.values(), key=lambda e: e.label.lower()):
        zone = m.zones.get(ev.zone or "", ("", None))[0]
        h.append(f"<tr><td>{_lines(ev.label)}<br><code>{_e(ev.iri)}</code></td><td>{_e(ev.kind)}</td>"
                 f"<td>{_e(', '.join(ev.ml_classes))}</td><td>{_e(zone)}</td><td>{_e('; '.join(ev.controls))}</td></tr>")
    h.append("</table>")
    if m.assets:
        h.append("<h2>Data assets</h2><table><tr><th>Data asset</th><th>Classification</th></tr>")
        h += [f"<tr><td>{_lines(label)}</td><td>{_e(cls)}</td></tr>" for _, label, cls in m.assets]
        h.append("</table>")
    h.append(f"<h2>Diagram</h2><p>Elements coloured by {_e(colour_basis(ctx))}; thick lines cross a trust boundary.</p>")
    h.append(render_svg(ctx))
    h.append("<h2>Findings by element</h2>")
    for focus, items in ctx.by_focus().items():
        head = items[0].f
        h.append(f"<h3>{_lines(ctx.element_label(focus))} <small>({_e(head.focus_kind)})</small></h3>"
                 f"<p><code>{_e(focus)}</code></p>")
        h.append("<table><tr><th>Level</th><th>Risk</th><th>Category</th><th>Threat</th><th>Why</th>"
                 "<th>Techniques</th><th>Mitigations</th><th>Controls</th><th>Rule</th></tr>")
        for fv in items:
            f = fv.f
            cats = ", ".join(f"{c[2]}: {c[1]}" for c in f.categories)
            mits = "<br>".join(_e(f"{mm[0]} {mm[1]}" if mm[0] != mm[1] else mm[0]) for mm in fv.mitigations)
            extra = "".join(f"<br><small>{_e(k)}: {_e(v)}</small>" for k, v in fv.extra[:6])
            h.append(f'<tr><td><span class="sev {_e(f.level)}">{_e(f.level)}</span></td><td>{_e(risk_text(fv))}</td>'
                     f"<td>{_e(cats)}</td><td>{_e(f.threat)}</td><td>{_e(f.explanation)}{extra}</td>"
                     f"<td>{_e(' '.join(fv.techniques))}</td><td>{mits}</td><td>{_e(controls_text(ctx, fv))}</td>"
                     f"<td>{_e(f.rule_id)}</td></tr>")
        h.append("</table>")
    if ctx.attack_paths:
        h.append("<h2>Attack paths</h2><ul>")
        h += [f"<li><b>{_e(label)}</b>{': ' + _e(desc) if desc else ''}</li>" for label, desc in ctx.attack_paths]
        h.append("</ul>")
    if ctx.declared:
        matched = sum(1 for d in ctx.declared if d.matched_by)
        h.append("<h2>Declared threats compared with derived findings</h2>")
        h.append(f"<p>{matched} of {len(ctx.declared)} declared threats are also derived; threatgraph adds "
                 f"{len(ctx.added())} findings on categories nobody declared for those elements.</p>")
        h.append("<table><tr><th>Element</th><th>Declared threat</th><th>Category</th><th>Status</th>"
                 "<th>Mitigation</th><th>Derived by</th></tr>")
        for d in ctx.declared:
            cats = ", ".join(c[1] for c in d.categories) or "(no STRIDE/LINDDUN category)"
            derived = _e(", ".join(d.matched_by)) if d.matched_by else '<span class="missing">not derived</span>'
            h.append(f"<tr><td>{_lines(d.element_label)}</td><td>{_e(d.title)}</td><td>{_e(cats)}</td>"
                     f"<td>{_e(d.status)}</td><td>{_e(d.mitigation)}</td><td>{derived}</td></tr>")
        h.append("</table>")
    h.append("<h2>Validation warnings</h2>")
    h.append("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in ctx.warnings) + "</ul>" if ctx.warnings else "<p>None.</p>")
    h.append("</body></html>")
    return "\n".join(h) + "\n"
