"""Data-flow diagrams of the analysed model: Graphviz DOT and Mermaid.

Trust zones are clusters (DOT) / subgraphs (Mermaid); external entities are boxes, processes ellipses
(rounded in Mermaid), data stores cylinders; flows are labelled with their data and protocol; elements
are coloured by their highest residual risk, or by their most severe finding while there is no risk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from threatgraph import sanitize
from threatgraph.export.context import FlowView, ReportContext

SEVERITY_COLOURS: dict[int, str] = {5: "#b71c1c", 4: "#e65100", 3: "#f9a825", 2: "#fff59d", 1: "#e0e0e0", 0: "#ffffff"}
"""Fill colour by level rank (critical 5 … info 1, no finding 0)."""
_SHAPES_DOT = {"ExternalEntity": "box", "Process": "ellipse", "DataStore": "cylinder"}


def element_levels(ctx: ReportContext) -> dict[str, tuple[int, str]]:
    """Per element or flow IRI: (level rank 0–5, text): the highest level (docs/risk.md, "The level of a
    finding") among its residual findings, i.e. those declared controls do not fully mitigate; 1 (info)
    when every finding is mitigated."""
    out: dict[str, tuple[int, str]] = {}
    for focus, items in ctx.by_focus().items():
        residual = [fv for fv in items if fv.control_status != "mitigated"]
        if residual:
            worst = max(residual, key=lambda fv: fv.f.level_rank)
            out[focus] = (worst.f.level_rank, f"highest residual level {worst.f.level}")
        else:
            out[focus] = (1, "every finding mitigated")
    return out


def colour_basis(ctx: ReportContext) -> str:
    return "highest residual level (risk where computed, else severity)"


def _flow_label(ctx: ReportContext, fl_label: str, data: list[str], protocol: str) -> str:
    parts = [fl_label]
    if data:
        parts.append(", ".join(data))
    if protocol:
        parts.append(f"[{protocol}]")
    return "\n".join(parts)


def _zones(ctx: ReportContext) -> list[tuple[int, str | None, str, list[str]]]:
    """(index, zone IRI, caption with trust level, element IRIs by label) per trust zone, in drawing
    order: zones by label, then the elements in no zone (zone ``None``)."""
    by_zone: dict[str | None, list[str]] = {}
    for iri, ev in ctx.model.elements.items():
        by_zone.setdefault(ev.zone, []).append(iri)
    out: list[tuple[int, str | None, str, list[str]]] = []
    for zi, zone in enumerate(sorted(by_zone, key=lambda z: (z is None, ctx.model.zones.get(z or "", ("", None))[0]))):
        caption = ""
        if zone is not None:
            zlabel, trust = ctx.model.zones.get(zone, (zone, None))
            caption = zlabel + (f" (trust {trust})" if trust is not None else "")
        members = sorted(by_zone[zone], key=lambda i: ctx.model.elements[i].label.lower())
        out.append((zi, zone, caption, members))
    return out


def _drawn_flows(ctx: ReportContext, ids: Mapping[str, str]) -> Iterator[tuple[str, FlowView]]:
    """(IRI, flow) in IRI order, for the flows whose two ends are drawn (have a node id)."""
    for iri in sorted(ctx.model.flows):
        fl = ctx.model.flows[iri]
        if fl.source in ids and fl.target in ids:
            yield iri, fl


def _dot_str(text: str) -> str:
    return '"' + sanitize.terminal(text).replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n") + '"'


def render_dot(ctx: ReportContext) -> str:
    """Graphviz DOT of the data-flow diagram."""
    levels = element_levels(ctx)
    ids = {iri: f"n{i}" for i, iri in enumerate(sorted(ctx.model.elements))}
    lines = [
        "digraph threatgraph {",
        "  rankdir=LR;",
        f"  label={_dot_str(ctx.title + ' (colour: ' + colour_basis(ctx) + ')')};",
        '  node [fontname="Helvetica", style=filled, fillcolor="#ffffff"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for zi, zone, caption, members in _zones(ctx):
        indent = "  "
        if zone is not None:
            lines.append(f"  subgraph cluster_{zi} {{")
            lines.append(f"    label={_dot_str(caption)};")
            lines.append('    style=dashed; color="#c62828";')
            indent = "    "
        for iri in members:
            ev = ctx.model.elements[iri]
            level, why = levels.get(iri, (0, "no findings"))
            kind = ev.kind + (f" / {', '.join(ev.ml_classes)}" if ev.ml_classes else "")
            lines.append(
                f"{indent}{ids[iri]} [label={_dot_str(ev.label + chr(10) + '«' + kind + '»')}, "
                f'shape={_SHAPES_DOT.get(ev.kind, "box")}, fillcolor="{SEVERITY_COLOURS[level]}", '
                f'fontcolor="{"#ffffff" if level >= 4 else "#000000"}", '
                f"tooltip={_dot_str(why)}];"
            )
        if zone is not None:
            lines.append("  }")
    for iri, fl in _drawn_flows(ctx, ids):
        level, why = levels.get(iri, (0, "no findings"))
        colour = SEVERITY_COLOURS[level] if level >= 3 else "#424242"
        lines.append(
            f"  {ids[fl.source]} -> {ids[fl.target]} [label={_dot_str(_flow_label(ctx, fl.label, fl.data, fl.protocol))}, "
            f'color="{colour}", tooltip={_dot_str(why)}{", style=bold" if fl.crosses else ""}];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mm(text: str) -> str:
    """Text inside a Mermaid quoted label: quotes, brackets and markup characters as entity codes, newlines as
    <br/>, control characters escaped (:func:`threatgraph.sanitize.terminal`)."""
    t = sanitize.terminal(text).replace("&", "&amp;").replace('"', "#quot;").replace("<", "&lt;").replace(">", "&gt;")
    t = t.replace("[", "#91;").replace("]", "#93;")
    return re.sub(r"\r?\n", "<br/>", t)


def render_mermaid(ctx: ReportContext) -> str:
    """Mermaid flowchart of the data-flow diagram."""
    levels = element_levels(ctx)
    ids = {iri: f"n{i}" for i, iri in enumerate(sorted(ctx.model.elements))}
    lines = ["flowchart LR", f"  %% {_mm(ctx.title)} (colour: {colour_basis(ctx)})"]
    for lv, colour in SEVERITY_COLOURS.items():
        lines.append(f"  classDef level{lv} fill:{colour},stroke:#333,color:{'#fff' if lv >= 4 else '#000'}")
    for zi, zone, caption, members in _zones(ctx):
        indent = "  "
        if zone is not None:
            lines.append(f'  subgraph z{zi}["{_mm(caption)}"]')
            indent = "    "
        for iri in members:
            ev = ctx.model.elements[iri]
            text = _mm(ev.label) + "<br/><i>" + _mm(ev.kind + (f" / {', '.join(ev.ml_classes)}" if ev.ml_classes else "")) + "</i>"
            shape = {"ExternalEntity": f'["{text}"]', "Process": f'(["{text}"])', "DataStore": f'[("{text}")]'}
            lines.append(f"{indent}{ids[iri]}{shape.get(ev.kind, shape['ExternalEntity'])}")
        if zone is not None:
            lines.append("  end")
    for _iri, fl in _drawn_flows(ctx, ids):
        arrow = "==>" if fl.crosses else "-->"
        lines.append(f'  {ids[fl.source]} {arrow}|"{_mm(_flow_label(ctx, fl.label, fl.data, fl.protocol))}"| {ids[fl.target]}')
    for iri in sorted(ctx.model.elements):
        level, _ = levels.get(iri, (0, ""))
        lines.append(f"  class {ids[iri]} level{level}")
    return "\n".join(lines) + "\n"
