"""Exports of an analysis, all rendered from the finding graph: SARIF, HTML, CSV, ATT&CK Navigator
layers, DOT and Mermaid diagrams, the full Markdown report, and the findings written back into a Threat
Dragon v2 model or an OTM 0.2.0 document."""

from __future__ import annotations

import json

from threatgraph.export.context import ReportContext, build_context
from threatgraph.export.jsonindent import dumps_indent2
from threatgraph.store import Store

EXPORT_FORMATS: tuple[str, ...] = ("sarif", "html", "csv", "navigator-enterprise", "navigator-atlas", "dot", "mermaid",
                                    "threat-dragon", "otm")


def render_export(fmt: str, ctx: ReportContext, store: Store) -> str:
    """Render ``ctx`` in one of :data:`EXPORT_FORMATS` (or ``markdown``, the full Markdown report)."""
    if fmt == "sarif":
        from threatgraph.export.sarif import render_sarif

        return render_sarif(ctx, store)
    if fmt == "html":
        from threatgraph.export.html import render_html

        return render_html(ctx)
    if fmt == "csv":
        from threatgraph.export.csvfile import render_csv

        return render_csv(ctx)
    if fmt in ("navigator-enterprise", "navigator-atlas"):
        from threatgraph.export.navigator import render_layer

        return render_layer(ctx, fmt.split("-", 1)[1], attack_version=attack_version(store))
    if fmt == "dot":
        from threatgraph.export.diagram import render_dot

        return render_dot(ctx)
    if fmt == "mermaid":
        from threatgraph.export.diagram import render_mermaid

        return render_mermaid(ctx)
    if fmt == "threat-dragon":
        from threatgraph.export.writeback import render_threat_dragon

        return render_threat_dragon(ctx, store)
    if fmt == "otm":
        from threatgraph.export.writeback import render_otm

        return render_otm(ctx, store)
    if fmt == "markdown":
        from threatgraph.export.markdown import render_markdown_report

        return render_markdown_report(ctx)
    raise ValueError(f"unknown export format {fmt!r}")


def with_declared(json_text: str, ctx: ReportContext) -> str:
    """The ``analyze --format json`` document with a ``declared`` field when the model declares threats."""
    if not ctx.declared:
        return json_text
    from threatgraph.export.markdown import declared_json

    doc = json.loads(json_text)
    doc["declared"] = declared_json(ctx)
    if json_text.startswith("{\n"):
        return dumps_indent2(doc) + "\n"
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"  # keep a compact document compact


def attack_version(store: Store) -> str | None:
    """The ATT&CK Enterprise release loaded in the store (from its release graph name), if any."""
    prefix = "https://w3id.org/threatgraph/graph/release/attack-enterprise/"
    versions = [g[len(prefix):] for g in store.graph_names() if g.startswith(prefix)]
    return max(versions, key=lambda v: [int(x) if x.isdigit() else 0 for x in v.split(".")]) if versions else None


__all__ = ["EXPORT_FORMATS", "ReportContext", "build_context", "render_export", "with_declared"]
