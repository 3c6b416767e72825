"""Benchmark: importing ATT&CK Enterprise 18.1 into the embedded store vs mitreattack-python and json.load.

Each run is a fresh subprocess, so peak memory (``ru_maxrss`` of the child) is per run; times are the
operation only (measured in the child, interpreter start-up and imports excluded). Prints JSON, then a
table with medians and ratios.

  import       threatgraph.knowledge.releases.load_release into an in-memory EmbeddedStore (json.load + quads + write)
  import-disk  the same into an on-disk store in a temporary directory (what ``threatgraph import`` does)
  mitre        mitreattack.stix20.MitreAttackData(path)
  json         json.load of the same file

Query: technique → mitigations for all active techniques (1,445 pairs): one SPARQL query
(``technique_mitigations``) vs ``MitreAttackData.get_mitigations_mitigating_technique`` per technique;
the answers are asserted identical.

Usage: ``.venv/bin/python bench/bench_import.py [--runs 3] [--file PATH]``

Whole-process mode (issue 14), ``--whole-process [--runs 5] [--json PATH]``: what a user waits for, each
run one process timed from spawn to exit by this script, peak RSS from ``os.wait4`` of that process,
CPU time (user + system, also from ``wait4``: less sensitive to other load on the machine than wall
time), the commands alternating run by run (so drift in machine load hits each alike), medians:

  tg-cold  ``threatgraph import attack FILE --store <fresh dir>`` with an empty view cache
           (``THREATGRAPH_CACHE`` fresh): parse, write the store, compile the knowledge view -- the
           first import of a release
  tg-warm  the same with the view of that release already cached (a release imported before, into
           another store): no view compilation
  mitre    ``python -c "from mitreattack.stix20 import MitreAttackData; MitreAttackData(FILE)"``

The knowledge-view part is reported separately: ``tg-cold - tg-warm`` (medians). ``--baseline-src DIR``
adds ``base-cold`` / ``base-warm``: the same import from another checkout's ``src`` (before/after a
change in one run, under the same machine load).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = {
    "import/mitre time": 0.25,
    "import/json time": 5.0,
    "import/mitre peak memory": 1.0,
    "query speed-up": 10.0,
}


def _default_file() -> Path:
    from threatgraph.resources import shared_data_dir

    data = shared_data_dir()
    if data is None:
        sys.exit("shared data not found: set THREATGRAPH_SHARED_DATA")
    return data / "attack" / "enterprise-attack-18.1.stix20.json"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def child(mode: str, path: str) -> dict[str, Any]:
    """One measurement in this (child) process."""
    out: dict[str, Any] = {"mode": mode}
    if mode == "json":
        t = time.perf_counter()
        with open(path, "rb") as fh:
            json.load(fh)
        out["seconds"] = time.perf_counter() - t
    elif mode == "mitre":
        from mitreattack.stix20 import MitreAttackData

        t = time.perf_counter()
        MitreAttackData(path)
        out["seconds"] = time.perf_counter() - t
    elif mode in ("import", "import-disk"):
        from threatgraph.knowledge.releases import load_release
        from threatgraph.store import open_store

        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            store = open_store(tmp if mode == "import-disk" else None)
            res = load_release(store, "attack", path)
            out["seconds"] = time.perf_counter() - t
            out["triples"] = res.release.quads
            del store
    elif mode == "query":
        out.update(_query(path))
    else:
        raise SystemExit(f"unknown mode {mode}")
    out["peak_mb"] = _peak_mb()
    return out


def _query(path: str) -> dict[str, Any]:
    from mitreattack.stix20 import MitreAttackData

    from threatgraph.knowledge.releases import load_release, technique_mitigations
    from threatgraph.store import open_store

    store = open_store()
    graph = load_release(store, "attack", path).release.graph
    mad = MitreAttackData(path)
    techniques = mad.get_techniques(remove_revoked_deprecated=True)

    def oracle() -> dict[str, set[str]]:
        res: dict[str, set[str]] = {}
        for t in techniques:
            ms = {
                mad.get_attack_id(e["object"]["id"])
                for e in mad.get_mitigations_mitigating_technique(t["id"])
            }
            if ms:
                res[mad.get_attack_id(t["id"])] = ms
        return res

    sparql_times, mitre_times = [], []
    answer: dict[str, set[str]] = {}
    expected: dict[str, set[str]] = {}
    for _ in range(5):
        t = time.perf_counter()
        answer = technique_mitigations(store, graph)
        sparql_times.append(time.perf_counter() - t)
    for _ in range(3):
        t = time.perf_counter()
        expected = oracle()
        mitre_times.append(time.perf_counter() - t)
    pairs = sum(len(v) for v in answer.values())
    assert answer == expected, "SPARQL and mitreattack-python disagree"
    assert pairs == 1445, pairs
    return {
        "pairs": pairs,
        "identical": answer == expected,
        "sparql_s": statistics.median(sparql_times),
        "mitre_per_technique_s": statistics.median(mitre_times),
        "mitre_first_pass_s": mitre_times[0],
    }


def _timed_process(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``argv`` to completion: wall seconds from spawn to exit, and the peak RSS of that process."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    return {"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024.0}


WHOLE_MODES = ("tg-cold", "tg-warm", "mitre")
BASELINE_MODES = ("base-cold", "base-warm")


def whole_process(path: Path, runs: int, baseline: Path | None = None) -> dict[str, Any]:
    """Median wall time and peak RSS of whole processes: threatgraph import vs MitreAttackData; with
    ``baseline`` (the ``src`` directory of another checkout, e.g. before a change) its import too, in the
    same alternation."""
    src = Path(__file__).resolve().parent.parent / "src"

    def env_for(source: Path, cache: Path | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source), os.environ.get("PYTHONPATH", "")) if p)
        if cache is not None:
            env["THREATGRAPH_CACHE"] = str(cache)
        return env

    tg = [sys.executable, "-m", "threatgraph", "import", "attack", str(path), "-q", "--store"]
    mitre = [sys.executable, "-c", f"from mitreattack.stix20 import MitreAttackData; MitreAttackData({str(path)!r})"]
    modes = WHOLE_MODES + (BASELINE_MODES if baseline else ())
    load_before = list(os.getloadavg())
    res: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        warm = {"tg": Path(tmp) / "warm-cache", "base": Path(tmp) / "warm-cache-base"}
        # prime the warm caches (not timed)
        _timed_process([*tg, str(Path(tmp) / "prime")], env_for(src, warm["tg"]))
        if baseline:
            _timed_process([*tg, str(Path(tmp) / "prime-base")], env_for(baseline, warm["base"]))
        for i in range(runs):
            for m in modes:
                if m == "mitre":
                    res[m].append(_timed_process(mitre, env_for(src)))
                    continue
                who, kind = m.split("-")
                source = src if who == "tg" else baseline
                assert source is not None
                cache = warm[who] if kind == "warm" else Path(tmp) / f"cache-{m}-{i}"
                res[m].append(_timed_process([*tg, str(Path(tmp) / f"{m}-{i}")], env_for(source, cache)))
    med = {
        m: {
            "seconds": statistics.median(r["seconds"] for r in res[m]),
            "cpu_s": statistics.median(r["cpu_s"] for r in res[m]),
            "peak_mb": statistics.median(r["peak_mb"] for r in res[m]),
            "runs_s": [round(r["seconds"], 3) for r in res[m]],
            "runs_cpu_s": [round(r["cpu_s"], 3) for r in res[m]],
            "runs_peak_mb": [round(r["peak_mb"], 1) for r in res[m]],
        }
        for m in modes
    }
    mitre_s = med["mitre"]["seconds"]
    ratios = {f"{m}/mitre time": med[m]["seconds"] / mitre_s for m in modes if m != "mitre"}
    ratios.update({f"{m}/mitre cpu": med[m]["cpu_s"] / med["mitre"]["cpu_s"] for m in modes if m != "mitre"})
    ratios.update({f"{m}/mitre peak memory": med[m]["peak_mb"] / med["mitre"]["peak_mb"]
                   for m in modes if m.endswith("cold")})
    view = {"tg": med["tg-cold"]["seconds"] - med["tg-warm"]["seconds"]}
    if baseline:
        view["base"] = med["base-cold"]["seconds"] - med["base-warm"]["seconds"]
    return {
        "file": str(path),
        "mode": "whole-process",
        "runs": runs,
        "baseline_src": str(baseline) if baseline else None,
        "median": med,
        "view_compile_s": view,
        "ratios": ratios,
        "target": {"tg/mitre time": WHOLE_TARGET},
        "meets_target": {m: ratios[f"{m}/mitre time"] <= WHOLE_TARGET for m in modes if m != "mitre"},
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average_before_after": [load_before, list(os.getloadavg())],
    }


WHOLE_TARGET = 0.25


def _print_whole(report: dict[str, Any]) -> None:
    med = report["median"]
    print(f"{'process':<10} {'median s':>9} {'cpu s':>7} {'peak MB':>9}  runs")
    for m, r in med.items():
        print(f"{m:<10} {r['seconds']:>9.3f} {r['cpu_s']:>7.3f} {r['peak_mb']:>9.1f}  {r['runs_s']}")
    for who, v in report["view_compile_s"].items():
        print(f"knowledge view compilation ({who}-cold - {who}-warm): {v:.3f} s")
    for k, v in report["ratios"].items():
        print(f"{k:<28} {v:>7.3f}" + (f"  target <= {WHOLE_TARGET}" if "time" in k else ""))
    lb, la = report["load_average_before_after"]
    print(f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")


def _spawn(mode: str, path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--file", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--file", type=Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--whole-process", action="store_true",
                    help="time whole processes: threatgraph import vs MitreAttackData (issue 14)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON report to PATH")
    ap.add_argument("--baseline-src", type=Path, metavar="DIR",
                    help="with --whole-process: also time the import of the threatgraph sources in DIR "
                    "(another checkout's src/, e.g. before a change), alternating with the others")
    args = ap.parse_args()
    path = args.file or _default_file()
    if args.child:
        print(json.dumps(child(args.child, str(path))))
        return
    if args.whole_process:
        whole = whole_process(path, max(args.runs, 1), args.baseline_src)
        text = json.dumps(whole, indent=2)
        print(text)
        if args.json:
            args.json.write_text(text + "\n", encoding="utf-8")
        print()
        _print_whole(whole)
        return
    load_before = list(os.getloadavg())  # other processes on the machine skew the timings: recorded
    modes = ("json", "import", "mitre", "import-disk")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for _ in range(args.runs):  # interleaved, so drift in machine load hits every mode alike
        for m in modes:
            runs[m].append(_spawn(m, path))
    med = {
        m: {
            "seconds": statistics.median(r["seconds"] for r in runs[m]),
            "peak_mb": statistics.median(r["peak_mb"] for r in runs[m]),
            "runs_s": [round(r["seconds"], 3) for r in runs[m]],
        }
        for m in modes
    }
    query = _spawn("query", path)
    ratios = {
        "import/mitre time": med["import"]["seconds"] / med["mitre"]["seconds"],
        "import/json time": med["import"]["seconds"] / med["json"]["seconds"],
        "import/mitre peak memory": med["import"]["peak_mb"] / med["mitre"]["peak_mb"],
        "query speed-up": query["mitre_per_technique_s"] / query["sparql_s"],
    }
    ok = {k: (v >= TARGETS[k] if k == "query speed-up" else v <= TARGETS[k]) for k, v in ratios.items()}
    report = {
        "file": str(path),
        "runs": args.runs,
        "median": med,
        "query": query,
        "ratios": ratios,
        "targets": TARGETS,
        "meets_target": ok,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average_before_after": [load_before, list(os.getloadavg())],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(f"{'mode':<12} {'median s':>9} {'peak MB':>9}  runs")
    for m in modes:
        print(f"{m:<12} {med[m]['seconds']:>9.3f} {med[m]['peak_mb']:>9.1f}  {med[m]['runs_s']}")
    print(
        f"query: SPARQL {query['sparql_s'] * 1000:.1f} ms vs mitreattack per-technique "
        f"{query['mitre_per_technique_s'] * 1000:.1f} ms ({query['pairs']} pairs, identical={query['identical']})"
    )
    for k, v in ratios.items():
        print(
            f"{k:<26} {v:>7.3f}  target {'≥' if k == 'query speed-up' else '≤'} {TARGETS[k]}  "
            f"{'ok' if ok[k] else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
