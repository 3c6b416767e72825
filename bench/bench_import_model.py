"""Whole-process import time of the real sample models (issue 12: "a 1 MB .tm7 imports in under 1 s").

Each sample is imported with ``threatgraph import-model FILE -o OUT.ttl`` in a fresh process, the runs
of the samples alternating, median of ``--runs``; peak RSS of each process (``/proc`` children usage).
The samples are the shared formats (``../shared/formats`` or ``$THREATGRAPH_SHARED_FORMATS``: the MS
TMT ``.tm7`` on the Azure template, the TM-BOM model) and the Threat Dragon demo models of
``bench/fidelity/models``; none is copied.

    .venv/bin/python bench/bench_import_model.py --runs 5 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def formats_dir() -> Path | None:
    env = os.environ.get("THREATGRAPH_SHARED_FORMATS")
    if env:
        return Path(env)
    candidate = REPO.parent / "shared" / "formats"
    return candidate if candidate.is_dir() else None


def samples() -> list[Path]:
    out: list[Path] = []
    fmt = formats_dir()
    if fmt is not None:
        out += sorted((fmt / "mtmt").glob("*.tm7")) + sorted((fmt / "tm-bom").glob("sample-*.json"))
    out += sorted((HERE / "fidelity" / "models").glob("*.json"))
    return out


def run_once(path: Path, out: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one whole ``import-model`` process."""
    cmd = [sys.executable, "-m", "threatgraph", "import-model", str(path), "-o", str(out)]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):
            err.seek(0)
            raise SystemExit(f"{path}: import-model exited {proc.returncode}: {err.read().decode(errors='replace')[-500:]}")
    return elapsed, usage.ru_maxrss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    files = samples()
    if not files:
        print("no samples: set THREATGRAPH_SHARED_FORMATS or put ../shared/formats beside the checkout", file=sys.stderr)
        return 2
    times: dict[Path, list[float]] = {f: [] for f in files}
    peaks: dict[Path, int] = {f: 0 for f in files}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for f in files:
                t, rss = run_once(f, Path(tmp) / "out.ttl")
                times[f].append(t)
                peaks[f] = max(peaks[f], rss)
    rows: list[dict[str, Any]] = []
    print(f"{'model':45} {'bytes':>10} {'median s':>9} {'min s':>7} {'peak MB':>8}")
    for f in files:
        row = {"model": f.name, "bytes": f.stat().st_size, "median_s": round(statistics.median(times[f]), 3),
               "min_s": round(min(times[f]), 3), "peak_mb": round(peaks[f] / 1024, 1), "runs": args.runs}
        rows.append(row)
        print(f"{f.name:45} {row['bytes']:>10} {row['median_s']:>9} {row['min_s']:>7} {row['peak_mb']:>8}")
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "loadavg": os.getloadavg()[0]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
