"""Benchmark: rendering every ``analyze --format`` of one analysis, in process (issue 14).

The model is analysed once (not timed); then each format is rendered as ``analyze`` renders it
(``render_report_chunks`` for table/json/markdown, ``build_context`` + ``render_export`` for the
exports, the store's Turtle) and the CPU and wall time, the size and the sha256 of the text are
reported (median of ``--runs``). ``--out DIR`` writes each output to DIR/<format> (to compare two
versions with ``cmp``). Prints one JSON document on stdout and a table on stderr.

    PYTHONPATH=src python bench/bench_render.py MODEL [--knowledge shared] [--formats json,sarif] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from threatgraph.analysis.engine import Analysis, labels_of, no_gc
from threatgraph.analysis.findings import Finding, read_findings
from threatgraph.analysis.pipeline import analyze
from threatgraph.export import EXPORT_FORMATS, build_context, render_export
from threatgraph.report import FORMATS, render_report_chunks, render_turtle

VARIANTS: tuple[str, ...] = ("table:summary", "table:normal", "table:full", *(f for f in FORMATS if f != "table"))
"""Every output of ``analyze``: each format, the table at each ``--detail``."""


def render(variant: str, analysis: Analysis, findings: list[Finding], labels: dict[str, str],
           min_level: str = "info") -> Iterable[str]:
    """The pieces ``analyze --format FMT[:detail]`` writes (as ``commands/analyze.py`` renders them)."""
    fmt, _, detail = variant.partition(":")
    if fmt in ("table", "json", "markdown"):
        return render_report_chunks(fmt, analysis, findings, labels, detail=detail or "normal", min_level=min_level,
                                    width=120)
    if fmt in EXPORT_FORMATS:
        floor = ("info", "low", "medium", "high", "critical").index(min_level) + 1
        shown = [f for f in findings if f.level_rank >= floor]
        ctx = build_context(analysis.store, shown, labels, title=f"Threat analysis of {', '.join(analysis.model_files)}",
                            model_files=analysis.model_files, warnings=analysis.warnings, rules=analysis.rules,
                            all_findings=findings)
        return [render_export(fmt, ctx, analysis.store)]
    return [render_turtle(analysis.store)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--knowledge", nargs="+")
    ap.add_argument("--formats", default=",".join(VARIANTS))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--min-severity", default="info")
    a = ap.parse_args()
    with no_gc():
        t = time.perf_counter()
        analysis = analyze(a.models, knowledge=a.knowledge)
        analyse_s = time.perf_counter() - t
        c0 = time.process_time()
        labels = labels_of(analysis.store)
        findings = read_findings(analysis.store, labels)
        read_cpu = time.process_time() - c0
        rows = {}
        for variant in a.formats.split(","):
            cpu, wall = [], []
            for _ in range(a.runs):
                c0, w0 = time.process_time(), time.perf_counter()
                h = hashlib.sha256()
                size = 0
                fh = open(a.out / variant, "w", encoding="utf-8") if a.out else None
                for chunk in render(variant, analysis, findings, labels, a.min_severity):
                    b = chunk.encode("utf-8")
                    h.update(b)
                    size += len(b)
                    if fh is not None:
                        fh.write(chunk)
                if fh is not None:
                    fh.close()
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
            rows[variant] = {"cpu_s": round(statistics.median(cpu), 3), "wall_s": round(statistics.median(wall), 3),
                             "bytes": size, "sha256": h.hexdigest()}
            print(f"{variant:22} cpu {rows[variant]['cpu_s']:7.3f} s  wall {rows[variant]['wall_s']:7.3f} s  "
                  f"{size:>11,} B  {h.hexdigest()[:16]}", file=sys.stderr, flush=True)
    print(json.dumps({"models": a.models, "knowledge": a.knowledge, "analyse_s": round(analyse_s, 2),
                      "findings": len(findings), "read_findings_cpu_s": round(read_cpu, 3), "formats": rows}, indent=2))


if __name__ == "__main__":
    main()
