"""Benchmark of model validation (SHACL): naive pyshacl vs threatgraph's evaluator (same shapes, same data).

For each size: generate a model (bench/generate.py), build the store (model + OWL 2 RL closure +
ontology; timed separately, common to both), remove ~10 % of some declarations so there is something to report (with_gaps), then validate with all shapes ("sparql") and with the
SPARQL-based constraints removed ("core"), each method in a fresh process (peak RSS per process),
median of --runs runs. Results must be identical (compared result by result); the ratio is ours/naive.

    .venv/bin/python bench/bench_validate.py --sizes 1000 10000 --runs 3 --naive-max 1000

Naive pyshacl with SPARQL constraints re-parses each query per focus node; above --naive-max elements
it is not run (it takes tens of minutes) and the row says so.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import re
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def with_gaps(ttl: str, seed: int) -> str:
    """Remove some declarations (authentication, zones, labels, held data, ...) so that the shapes
    report violations and warnings: about 10 % of each kind, deterministic for ``seed``."""
    rng = random.Random(seed)
    pattern = re.compile(
        r" (tg:authenticated (?:true|false)|tg:encryptedInTransit (?:true|false)|tg:inZone ex:\w+|"
        r"rdfs:label \"[^\"]*\"|tg:holds ex:\w+|tg:authorizationEnforced (?:true|false)|tg:provenanceKnown true) ;"
    )
    return pattern.sub(lambda m: "" if rng.random() < 0.1 else m.group(0), ttl)


def _core_only(path: Path) -> Path:
    """The shipped shapes without their SPARQL-based constraints, as one Turtle file."""
    import rdflib
    from rdflib.namespace import SH

    from threatgraph.analysis.validation import load_shapes

    g = rdflib.Graph()
    for t in load_shapes():
        if t[1] != SH.sparql:
            g.add(t)
    g.serialize(path, format="turtle")
    return path


def _measure(n: int, method: str, variant: str, runs: int, q: Any) -> None:
    import tempfile

    from generate import element_count, generate_model
    from threatgraph.analysis.model import parse_model_text
    from threatgraph.analysis.validation import build_store, result_keys, validate_store

    extra = [_core_only(Path(tempfile.mkdtemp()) / "core.ttl")] if variant == "core" else []
    model = parse_model_text(with_gaps(generate_model(n, 1), 7), "generated.ttl")
    t0 = time.perf_counter()
    store = build_store(model)
    build = time.perf_counter() - t0
    times = []
    keys: set[tuple[str, ...]] = set()
    for _ in range(runs):
        t = time.perf_counter()
        report = validate_store(store, extra_shapes=extra, builtin=not extra, method=method, check_terms=False)
        times.append(time.perf_counter() - t)
        keys = result_keys(report.shacl_graph())
    q.put(
        {
            "elements": element_count(n),
            "method": method,
            "variant": variant,
            "median_s": statistics.median(times),
            "runs_s": times,
            "build_data_s": build,
            "results": len(keys),
            "keys": sorted(keys),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def measure(n: int, method: str, variant: str, runs: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_measure, args=(n, method, variant, runs, q))
    p.start()
    out: dict[str, Any] = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--naive-max", type=int, default=500, help="largest size for naive pyshacl with SPARQL")
    ap.add_argument("--naive-runs", type=int, default=1, help="runs of naive pyshacl (it is slow)")
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        for variant in ("sparql", "core"):
            ours = measure(n, "fast", variant, args.runs)
            naive: dict[str, Any] | None = None
            if variant == "core" or n <= args.naive_max:
                naive = measure(n, "pyshacl", variant, args.naive_runs)
            row = {
                "elements": ours["elements"],
                "shapes": variant,
                "ours_median_s": round(ours["median_s"], 3),
                "ours_peak_rss_mb": round(ours["peak_rss_mb"]),
                "naive_median_s": round(naive["median_s"], 3) if naive else None,
                "naive_peak_rss_mb": round(naive["peak_rss_mb"]) if naive else None,
                "ratio_ours_over_naive": round(ours["median_s"] / naive["median_s"], 4) if naive else None,
                "identical": (ours["keys"] == naive["keys"]) if naive else None,
                "results": ours["results"],
                "build_data_s": round(ours["build_data_s"], 3),
                "runs": args.runs,
                "naive_runs": args.naive_runs if naive else 0,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"benchmark": "validate", "rows": rows}, indent=2))
    print(f"{'elements':>8} {'shapes':>6} {'ours s':>8} {'naive s':>9} {'ratio':>7} {'same':>5} {'RSS ours/naive MB':>18}")
    for r in rows:
        naive_s = f"{r['naive_median_s']:.2f}" if r["naive_median_s"] is not None else "not run"
        ratio = f"{r['ratio_ours_over_naive']:.3f}" if r["ratio_ours_over_naive"] is not None else "-"
        print(
            f"{r['elements']:>8} {r['shapes']:>6} {r['ours_median_s']:>8.2f} {naive_s:>9} {ratio:>7} "
            f"{r['identical']!s:>5} {r['ours_peak_rss_mb']:>8}/{r['naive_peak_rss_mb']}"
        )


if __name__ == "__main__":
    main()
