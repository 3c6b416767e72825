"""A self-contained HTML report (inline CSS, SVG and one small inline script; nothing loaded from
elsewhere, works offline).

The summary first (counts by level, the top residual risks, the mitigations that would close the
most), then scope, elements, the data-flow diagram (inline SVG, one column per trust zone, elements
coloured by their highest residual level, boundary-crossing flows thick and marked) and one findings
table: sortable (click a column head), filterable (text, minimum level, or click an element or flow
in the diagram), each finding expanding to its evidence, techniques, mitigations and risk factors.
The URL fragment ``#focus=IRI&sort=KEY&level=N&q=TEXT`` sets the same state, ``#click=IRI`` clicks
that element in the diagram (links, tests).
"""

from __future__ import annotations

from html import escape

from threatgraph import __version__
from threatgraph.analysis.findings import Finding
from threatgraph.export.context import FindingView, ReportContext, capec_summary
from threatgraph.export.diagram import SEVERITY_COLOURS, colour_basis, element_levels
from threatgraph.export.markdown import controls_text, counts, risk_text
from threatgraph.report import TOP_MITIGATIONS, TOP_RISKS, Triage, threat_text, unresolved_note

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem;color:#212121;max-width:1400px}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.3rem .5rem;
vertical-align:top;text-align:left;font-size:.9rem}th{background:#f5f5f5}code{font-size:.8rem;color:#555}
.sev{font-weight:600;padding:0 .3rem;border-radius:3px}.critical{background:#b71c1c;color:#fff}
.high{background:#e65100;color:#fff}.medium{background:#f9a825}.low{background:#fff59d}.info{background:#e0e0e0}
.missing{color:#b71c1c;font-weight:600}svg text{font-family:inherit}
#findings th[data-key]{cursor:pointer;user-select:none}#findings th[data-key]:after{content:" \\2195";color:#999}
#findings details summary{cursor:pointer}#findings details ul{margin:.3rem 0;padding-left:1.2rem}
svg [data-focus]{cursor:pointer}svg [data-focus]:hover{opacity:.8}.filters{margin:.5rem 0}.filters *{margin-right:.5rem}
"""
_LEVEL_RANK = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_SCRIPT = """
(function () {
  var table = document.getElementById('findings'); if (!table) return;
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var state = {focus: '', q: '', level: 0, sort: '', dir: 1};
  var q = document.getElementById('q'), lv = document.getElementById('lv');
  function apply() {
    var n = 0;
    rows.forEach(function (r) {
      var ok = (!state.focus || r.getAttribute('data-focus') === state.focus) &&
        (!state.level || +r.getAttribute('data-level') >= state.level) &&
        (!state.q || r.getAttribute('data-text').indexOf(state.q) >= 0);
      r.hidden = !ok; if (ok) n++;
    });
    document.getElementById('count').textContent = n + ' of ' + rows.length + ' findings shown';
    document.getElementById('focus').textContent = state.focus ? 'element: ' + state.focus : '';
    document.body.setAttribute('data-shown', n);
    document.body.setAttribute('data-focus', state.focus);
  }
  function sort(key, dir) {
    var num = key === 'level' || key === 'risk' || key === 'rank';
    rows.sort(function (a, b) {
      var x = a.getAttribute('data-' + key), y = b.getAttribute('data-' + key);
      if (num) { x = +x; y = +y; } else { x = x.toLowerCase(); y = y.toLowerCase(); }
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    state.sort = key; state.dir = dir;
    document.body.setAttribute('data-sort', key + (dir < 0 ? ' desc' : ''));
  }
  Array.prototype.forEach.call(table.querySelectorAll('th[data-key]'), function (th) {
    th.addEventListener('click', function () {
      var key = th.getAttribute('data-key');
      sort(key, state.sort === key ? -state.dir : (key === 'level' || key === 'risk' ? -1 : 1));
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll('svg [data-focus]'), function (g) {
    g.addEventListener('click', function () {
      var f = g.getAttribute('data-focus'); state.focus = state.focus === f ? '' : f; apply();
      table.scrollIntoView();
    });
  });
  q.addEventListener('input', function () { state.q = q.value.toLowerCase(); apply(); });
  lv.addEventListener('change', function () { state.level = +lv.value; apply(); });
  document.getElementById('all').addEventListener('click', function () {
    state.focus = ''; state.q = ''; state.level = 0; q.value = ''; lv.value = '0'; apply();
  });
  var hash = location.hash.replace(/^#/, ''), clicks = [];
  hash.split('&').forEach(function (kv) {
    var i = kv.indexOf('='); if (i < 0) return;
    var k = kv.slice(0, i), v = decodeURIComponent(kv.slice(i + 1));
    if (k === 'focus') state.focus = v;
    if (k === 'q') { state.q = v.toLowerCase(); q.value = v; }
    if (k === 'level') { state.level = +v; lv.value = v; }
    if (k === 'sort') { var d = v.charAt(0) === '-' ? -1 : 1; sort(v.replace(/^-/, ''), d); }
    if (k === 'click') clicks.push(v);  // a real click on the diagram (tests, links)
  });
  apply();
  clicks.forEach(function (f) {
    Array.prototype.forEach.call(document.querySelectorAll('svg [data-focus]'), function (g) {
      if (g.getAttribute('data-focus') === f) g.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    });
  });
  document.body.setAttribute('data-ready', '1');
})();
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
            parts.append(f'<path data-focus="{_e(fl.iri)}" d="M{sx:.0f} {sy:.0f} Q{cx:.0f} {cy:.0f} {ex:.0f} {ey:.0f}" '
                         f'fill="none" stroke="{colour}" stroke-width="{width_attr}" marker-end="url(#arrow)">'
                         f'<title>{_e(label)}</title></path>')
            continue
        # clip to the box edges (roughly) so arrowheads are visible
        dx, dy = b[0] - a[0], b[1] - a[1]
        scale = max(abs(dx) / (bw / 2 + 4), abs(dy) / (bh / 2 + 4), 1e-9)
        sx, sy = a[0] + dx / scale, a[1] + dy / scale
        ex, ey = b[0] - dx / scale, b[1] - dy / scale
        dash = ' stroke-dasharray="10 3"' if fl.crosses else ""
        parts.append(f'<line data-focus="{_e(fl.iri)}" x1="{sx:.0f}" y1="{sy:.0f}" x2="{ex:.0f}" y2="{ey:.0f}" '
                     f'stroke="{colour}" stroke-width="{width_attr}" marker-end="url(#arrow)"{dash}>'
                     f'<title>{_e(label)}</title></line>')
        mark = "⚠ " if fl.crosses else ""  # crosses a trust boundary
        parts.append(f'<text x="{(sx + ex) / 2:.0f}" y="{(sy + ey) / 2 - 4:.0f}" font-size="10" text-anchor="middle" '
                     f'fill="#333">{_e(mark + label[:40])}</text>')
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
        parts.append(f'<g data-focus="{_e(iri)}"><title>{_e(title)}</title>{shape}<text x="{x + bw / 2}" y="{y + 24}" font-size="12" '
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
    tri = Triage([fv.f for fv in ctx.findings], ctx.remediation)
    h += summary_html(ctx, tri)
    h.append(f"<h2>Diagram</h2><p>Elements coloured by {_e(colour_basis(ctx))}; thick dashed lines marked ⚠ cross a trust boundary; click an element or a flow to filter the findings.</p>")
    h.append(render_svg(ctx))
    h += findings_table(ctx, tri)
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
    if ctx.attack_paths:
        h.append("<h2>Attack paths</h2><ul>")
        h += [f"<li><b>{_e(label)}</b>{': ' + _e(desc) if desc else ''}</li>" for label, desc in ctx.attack_paths]
        h.append("</ul>")
    if ctx.declared:
        matched = sum(1 for d in ctx.declared if d.matched)
        h.append("<h2>Declared threats compared with derived findings</h2>")
        h.append(f"<p>{matched} of {len(ctx.declared)} declared threats are also derived; threatgraph adds "
                 f"{len(ctx.added())} findings on categories nobody declared for those elements."
                 f"{_e((' ' + capec_summary(ctx.declared)).rstrip())}</p>")
        h.append("<table><tr><th>Element</th><th>Declared threat</th><th>Category</th><th>Status</th>"
                 "<th>Mitigation</th><th>Derived by</th><th>CAPEC → ATT&amp;CK</th></tr>")
        for d in ctx.declared:
            cats = ", ".join(c[1] for c in d.categories) or "(no STRIDE/LINDDUN category)"
            derived = _e(d.derived_text()) if d.matched else '<span class="missing">not derived</span>'
            h.append(f"<tr><td>{_lines(d.element_label)}</td><td>{_e(d.title)}</td><td>{_e(cats)}</td>"
                     f"<td>{_e(d.status)}</td><td>{_e(d.mitigation)}</td><td>{derived}</td>"
                     f"<td>{_e(d.capec_text())}</td></tr>")
        h.append("</table>")
    h.append("<h2>Validation warnings</h2>")
    h.append("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in ctx.warnings) + "</ul>" if ctx.warnings else "<p>None.</p>")
    h.append(f"<script>{_SCRIPT}</script>")
    h.append("</body></html>")
    return "\n".join(h) + "\n"


def summary_html(ctx: ReportContext, triage: Triage | None = None) -> list[str]:
    """Counts by level, the top residual risks and the mitigations that would close the most (``triage``:
    the :class:`~threatgraph.report.Triage` of the context's findings, when the caller has one)."""
    fs = [fv.f for fv in ctx.findings]
    tri = triage if triage is not None else Triage(fs, ctx.remediation)
    h = ["<h2>Summary</h2>", f"<p>{len(fs)} findings: {_e(counts(ctx.findings))} (level: risk where computed, "
         "else the rule's severity).</p>"]
    note = unresolved_note(fs)
    if note:
        h.append(f"<p>Techniques {_e(note)}.</p>")
    top = tri.ranking[:TOP_RISKS]
    if top:
        h.append(f'<h3>Top {len(top)} residual risks</h3><table id="top-risks"><tr><th>#</th><th>Level</th>'
                 "<th>Element</th><th>Threat</th><th>Why</th><th>Do first</th></tr>")
        h += [f'<tr><td>{i}</td><td><span class="sev {_e(lv := tri.facts(f).level)}">{_e(lv)}</span></td>'
              f"<td>{_e(f.focus_label)}</td><td>{_e(threat_text(f))}</td><td>{_e(tri.why(f))}</td>"
              f"<td>{_e(tri.do(f))}</td></tr>" for i, f in enumerate(top, 1)]
        h.append("</table>")
    plans = tri.plans[:TOP_MITIGATIONS]
    if plans:
        h.append('<h3>Mitigations that would close the most</h3><table id="top-mitigations"><tr><th>Mitigation</th>'
                 "<th>Id</th><th>Residual findings</th><th>Techniques</th><th>Elements</th></tr>")
        h += [f"<tr><td>{_e(p.label or p.id)}</td><td>{_e(p.id)}</td><td>{len(p.findings)}</td><td>{len(p.techniques)}</td>"
              f"<td>{_e(', '.join(p.elements))}</td></tr>" for p in plans]
        h.append("</table>")
    return h


def findings_table(ctx: ReportContext, triage: Triage | None = None) -> list[str]:
    """One sortable, filterable table of every finding, highest residual risk first; each expands."""
    tri = triage if triage is not None else Triage([fv.f for fv in ctx.findings], ctx.remediation)
    h = ["<h2>Findings</h2>",
         '<p class="filters"><input id="q" type="search" placeholder="filter text" aria-label="filter text">'
         '<select id="lv" aria-label="minimum level"><option value="0">any level</option>'
         + "".join(f'<option value="{r}">{n} or higher</option>' for n, r in _LEVEL_RANK.items() if r > 1)
         + '</select><button id="all" type="button">show all</button><span id="focus"></span><span id="count"></span></p>',
         '<table id="findings"><thead><tr><th data-key="element">Element</th><th data-key="category">Category</th>'
         '<th data-key="level">Level</th><th data-key="risk">Risk</th><th data-key="rule">Rule</th>'
         "<th>Threat (click for evidence, techniques, mitigations, risk)</th></tr></thead><tbody>"]
    for rank, fv in enumerate(sorted(ctx.findings, key=lambda v: tri.key(v.f)), 1):
        f = fv.f
        x = tri.facts(f)
        element = ctx.element_label(f.focus)
        cats = ", ".join(f"{c[2]}: {c[1]}" for c in f.categories)
        text = " ".join((element, cats, x.level, f.rule_id, f.threat, f.explanation)).lower()
        risk = fv.residual_risk if fv.residual_risk is not None else 0
        h.append(f'<tr data-focus="{_e(f.focus)}" data-rank="{rank}" data-element="{_e(element)}" '
                 f'data-category="{_e(cats)}" data-level="{x.level_rank}" data-risk="{risk:g}" data-rule="{_e(f.rule_id)}" '
                 f'data-text="{_e(text)}"><td>{_lines(element)}</td><td>{_e(cats)}</td>'
                 f'<td><span class="sev {_e(x.level)}">{_e(x.level)}</span></td><td>{_e(risk_text(fv))}</td>'
                 f"<td>{_e(f.rule_id)}</td><td><details><summary>{_e(threat_text(f))}</summary>{_finding_detail(ctx, fv, tri)}"
                 "</details></td></tr>")
    h.append("</tbody></table>")
    return h


def _finding_detail(ctx: ReportContext, fv: FindingView, tri: Triage) -> str:
    f = fv.f
    items = [f"<li><b>Why</b>: {_e(f.explanation)}</li>"]
    do = tri.do(f, n=4)
    if do:
        items.append(f"<li><b>What to do</b>: {_e(do)}</li>")
    if f.evidence:
        items.append("<li><b>Evidence</b>: " + _e("; ".join(f"{role}: {label}" for role, _, label in f.evidence)) + "</li>")
    if f.risk_score:
        items.append(f"<li><b>Risk</b>: {_e(full_risk_text(f, tri.facts(f).own_score))}</li>")
    for t in f.techniques:
        missing = ", ".join(f"{lab} ({m})" if lab else m for m, lab in tri.missing(t))
        items.append(f"<li><b>{_e(t.id)}</b> {_e(t.label)} [{_e(t.status)}]"
                     + (f'; <i title="{_e(t.unresolved)}">unresolved</i>' if t.unresolved else "")
                     + (f"; missing mitigations: {_e(missing)}" if missing else "")
                     + (f"; {_e(t.justification)}" if t.justification else "") + "</li>")
    if not f.techniques and fv.mitigations:
        items.append("<li><b>Mitigations</b>: " + _e("; ".join(f"{m[1]} ({m[0]})" if m[1] != m[0] else m[0]
                                                              for m in fv.mitigations)) + "</li>")
    ctl = controls_text(ctx, fv)
    if ctl:
        items.append(f"<li><b>Controls</b>: {_e(ctl)}</li>")
    items.append(f"<li><b>Rule</b>: {_e(f.rule_id)} (severity {_e(f.severity)}; {_e(f.source)})</li>")
    return "<ul>" + "".join(items) + "</ul>"


def full_risk_text(f: Finding, own: int | None = None) -> str:
    """The risk with its factors; for a baseline finding without techniques, said to be its element's context
    (``own``: :func:`~threatgraph.report.own_score` of ``f`` when known)."""
    from threatgraph.report import own_score
    from threatgraph.report import risk_text as finding_risk_text

    text = finding_risk_text(f)
    return text if (own_score(f) if own is None else own) else "element context, not this finding's level: " + text.split(" = ", 1)[1]
