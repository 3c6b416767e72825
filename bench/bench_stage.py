"""CPU time of the technique stage (``threatgraph.analysis.techniques.run_stage``) inside a whole analysis.

Runs ``threatgraph.analyze`` on generated models (bench/generate.py) and reports the process CPU time and
the wall time of the ``run_stage`` call only, per size, with the Python fast path (default) and with the
SPARQL updates of queries/derive-findings (``--sparql``)::

    python bench/bench_stage.py 1000 10000 --knowledge shared --repeat 3 [--sparql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate_model
from threatgraph.analysis import techniques
from threatgraph.analysis.pipeline import analyze


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[1000, 10000])
    ap.add_argument("--knowledge", action="append", default=None, help="as analyze --knowledge (e.g. shared)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sparql", action="store_true", help="run the .rq files (python=False)")
    args = ap.parse_args()
    real = techniques.run_stage
    timings: list[tuple[float, float]] = []

    def timed(*a: Any, **kw: Any) -> techniques.StageResult:
        if args.sparql and "python" in real.__code__.co_varnames:
            kw["python"] = False
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            timings.append((time.process_time() - c0, time.perf_counter() - w0))

    techniques.run_stage = timed  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            model = Path(tmp) / f"model-{n}.ttl"
            model.write_text(generate_model(n, seed=42), encoding="utf-8")
            timings.clear()
            for _ in range(args.repeat):
                analyze([str(model)], knowledge=args.knowledge)
            cpu = [c for c, _ in timings]
            wall = [w for _, w in timings]
            print(f"{n} elements, knowledge={args.knowledge}, {'sparql' if args.sparql else 'default'}: run_stage CPU "
                  f"{min(cpu):.2f}-{max(cpu):.2f} s (median {statistics.median(cpu):.2f}), wall median "
                  f"{statistics.median(wall):.2f} s, n={len(cpu)}", flush=True)


if __name__ == "__main__":
    main()
