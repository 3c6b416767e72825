"""Benchmark of ``threatgraph analyze`` on generated models of 100, 1,000 and 10,000 elements.

Each run is a fresh process started as a user starts it (``python -m threatgraph analyze MODEL --format
json --output FILE``; peak memory is per run): interpreter start, imports, analysis, report and exit, timed
from outside. (Until issue 14's last round the child called ``main()`` in-process and the clock stopped when it
returned: start-up and exit were not counted.) Prints one JSON document (stdout) and a table (stderr). Target (issue 2): time grows
linearly, 10 k ≤ 12× the 1 k time.

    python bench/bench_analyze.py [--sizes 100,1000,10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import element_count, generate_model


def run_once(model: Path, out: Path) -> tuple[float, int, float]:
    """Wall time, peak RSS and CPU time (user + system: on a shared, loaded machine the steadier figure)
    of one whole process as a user starts it (``python -m threatgraph analyze``: interpreter start, imports,
    analysis, report, exit), measured from outside (os.wait4)."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "threatgraph", "analyze", str(model), "--format", "json", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"analyze failed: {err.decode(errors='replace')}")
    return dt, int(usage.ru_maxrss) * 1024, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            model = Path(tmp) / f"model-{n}.ttl"
            model.write_text(generate_model(n, seed=42), encoding="utf-8")
            times, peaks, cpus = [], [], []
            for _ in range(args.runs):
                dt, peak, cpu = run_once(model, Path(tmp) / "out.json")
                times.append(dt)
                peaks.append(peak)
                cpus.append(cpu)
            findings = len(json.loads((Path(tmp) / "out.json").read_text())["findings"])
            results.append(
                {
                    "elements": element_count(n),
                    "runs": args.runs,
                    "median_s": round(statistics.median(times), 3),
                    "min_s": round(min(times), 3),
                    "max_s": round(max(times), 3),
                    "median_cpu_s": round(statistics.median(cpus), 3),
                    "peak_rss_mb": round(max(peaks) / 2**20, 1),
                    "findings": findings,
                }
            )
    by_n = {r["elements"]: r for r in results}
    ratios = {}
    keys = sorted(by_n)
    for a, b in itertools.pairwise(keys):
        ratios[f"{b}/{a}"] = round(by_n[b]["median_s"] / by_n[a]["median_s"], 2)
    doc = {"benchmark": "analyze", "unix_time": int(time.time()), "results": results, "time_ratios": ratios,
           "target": "10k/1k time ratio <= 12 (linear)"}
    print(json.dumps(doc, indent=2))
    print(f"{'elements':>9} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>7} {'peak MB':>8} {'findings':>9}",
          file=sys.stderr)
    for r in results:
        print(f"{r['elements']:>9} {r['median_s']:>9} {r['min_s']:>7} {r['max_s']:>7} {r['median_cpu_s']:>7} "
              f"{r['peak_rss_mb']:>8} {r['findings']:>9}", file=sys.stderr)
    print("ratios:", ratios, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
