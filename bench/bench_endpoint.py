"""Benchmark of ``threatgraph serve`` against the Oxigraph server on the same data in the same run.

Data: ATT&CK Enterprise 18.1 + ATLAS 5.6.0 + D3FEND 1.2.0 imported, and the example models
(data/examples/*.ttl) analysed with them (findings, technique applications, countermeasures…).
Both servers run as separate processes on loopback and get the same requests: named queries of the
library (default parameters, bound as a one-row VALUES block opening the WHERE group as the library
binds them — ``sparql.inline_values`` —, threatgraph prefixes declared in the text), sent
as SPARQL 1.1 Protocol POSTs (form-encoded, SPARQL JSON results) over keep-alive connections by 1, 8
and 16 concurrent client threads. Each level is measured ``--runs`` times; the median run is reported.

Prints one JSON document (stdout) and a table (stderr). Targets (issue 6): our throughput ≥ 0.5× the
Oxigraph server's; p95 latency under 100 ms at 8 clients.

    .venv/bin/python bench/bench_endpoint.py [--requests 400] [--runs 3] [--workers 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERIES = [
    "findings-by-severity",
    "techniques-of-tactic",
    "subtechniques-of",
    "mitigations-of-technique",
    "techniques-used-by-group",
    "elements-crossing-boundaries",
    "rules-fired",
    "top-mitigations",
    "revoked-techniques",
    "atlas-attack-links",
    "case-studies-of-technique",
    "lifecycle-unmitigated",
]

SERVER = """
import sys
from threatgraph.server import ServerConfig, SparqlServer
cfg = ServerConfig(port=int(sys.argv[2]), workers=int(sys.argv[3]), time_limit=30, max_rows=1_000_000)
srv = SparqlServer(cfg, sys.argv[1])
print("ready", flush=True)
srv.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_dataset(path: Path) -> int:
    from threatgraph.analysis.engine import Engine
    from threatgraph.knowledge.releases import load_release
    from threatgraph.resources import shared_data_dir
    from threatgraph.server import write_dataset
    from threatgraph.store import open_store

    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("needs the pinned reference data (THREATGRAPH_SHARED_DATA)")
    store = open_store()
    for kind, rel in [
        ("attack", "attack/enterprise-attack-18.1.stix20.json"),
        ("atlas", "atlas/ATLAS.yaml"),
        ("d3fend", "d3fend/d3fend-protege-1.2.0.ttl"),
    ]:
        load_release(store, kind, str(shared / rel))
    Engine(store).analyze(sorted((REPO / "data" / "examples").glob("*.ttl")))
    tmp = write_dataset(store.quads(), str(path.parent))
    os.replace(tmp, path)
    return len(store)


def wait(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, MB."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
        pids += [int(p) for p in out.stdout.split()]
        for p in list(pids[1:]):
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(p)], capture_output=True, text=True, check=False)
            pids += [int(x) for x in out.stdout.split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def requests_bodies() -> list[tuple[str, bytes]]:
    from threatgraph.querylib import load_library
    from threatgraph.sparql import inline_values
    from threatgraph.terms import sparql_prefixes

    lib = load_library()
    out = []
    for name in QUERIES:
        q = lib[name]
        bindings = q.bind({})
        text = sparql_prefixes() + (inline_values(q.query, bindings) if bindings else q.query)
        out.append((name, urllib.parse.urlencode({"query": text}).encode()))
    return out


def run_level(port: int, bodies: list[tuple[str, bytes]], clients: int, total: int) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_client = max(1, total // clients)

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        for j in range(per_client):
            name, body = bodies[(k + j) % len(bodies)]
            t = time.perf_counter()
            conn.request("POST", "/query", body, {
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/sparql-results+json"})
            resp = conn.getresponse()
            data = resp.read()
            mine.append(time.perf_counter() - t)
            if resp.status != 200:
                with lock:
                    errors.append(f"{name}: {resp.status} {data[:80]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "throughput_rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
    }


def same_answers(port_a: int, port_b: int, bodies: list[tuple[str, bytes]]) -> dict[str, int]:
    """Row counts per query (checked equal on both servers)."""
    counts = {}
    for name, body in bodies:
        n = []
        for port in (port_a, port_b):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("POST", "/query", body, {
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/sparql-results+json"})
            resp = conn.getresponse()
            data = json.loads(resp.read())
            n.append(len(data["results"]["bindings"]))
            conn.close()
        if n[0] != n[1]:
            raise SystemExit(f"{name}: threatgraph gives {n[0]} rows, Oxigraph server {n[1]}")
        counts[name] = n[0]
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400, help="requests per level and run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4, help="threatgraph query workers")
    ap.add_argument("--clients", default="1,8,16")
    args = ap.parse_args()
    oxi = Path(sys.executable).parent / "oxigraph"
    oxi_exe = str(oxi) if oxi.exists() else shutil.which("oxigraph")
    if not oxi_exe:
        raise SystemExit("the Oxigraph server is missing: pip install oxigraph")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.nq"
        t = time.perf_counter()
        quads = build_dataset(data)
        print(f"dataset: {quads:,} quads built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        ours_port, ox_port = free_port(), free_port()
        ours = subprocess.Popen([sys.executable, "-c", SERVER, str(data), str(ours_port), str(args.workers)],
                                stdout=subprocess.PIPE)
        oxdir = Path(tmp) / "oxi"
        subprocess.run([oxi_exe, "load", "--location", str(oxdir), "--file", str(data)], check=True,
                       capture_output=True)
        ox = subprocess.Popen([oxi_exe, "serve", "--location", str(oxdir), "--bind", f"127.0.0.1:{ox_port}",
                               "--union-default-graph"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait(f"http://127.0.0.1:{ours_port}/query?query=ASK%7B%7D")
            wait(f"http://127.0.0.1:{ox_port}/query?query=ASK%7B%7D")
            bodies = requests_bodies()
            counts = same_answers(ours_port, ox_port, bodies)
            per_query: dict[str, dict[str, float]] = {}
            for name, body in bodies:
                per_query[name] = {}
                for label, port in (("threatgraph", ours_port), ("oxigraph", ox_port)):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    times = []
                    for _ in range(7):
                        t = time.perf_counter()
                        conn.request("POST", "/query", body, {"Content-Type": "application/x-www-form-urlencoded",
                                                              "Accept": "application/sparql-results+json"})
                        conn.getresponse().read()
                        times.append(1000 * (time.perf_counter() - t))
                    conn.close()
                    per_query[name][label + "_ms"] = statistics.median(times[1:])
            levels = [int(c) for c in args.clients.split(",")]
            report: dict[str, object] = {"quads": quads, "queries": counts, "workers": args.workers,
                                         "requests_per_level": args.requests, "runs": args.runs, "levels": {},
                                         "single_client_median_ms": per_query}
            for c in levels:
                entry: dict[str, object] = {}
                for label, port in (("threatgraph", ours_port), ("oxigraph", ox_port)):
                    run_level(port, bodies, c, min(args.requests, 50))  # warm-up
                    runs = [run_level(port, bodies, c, args.requests) for _ in range(args.runs)]
                    runs.sort(key=lambda r: r["throughput_rps"])
                    entry[label] = runs[len(runs) // 2]
                ratio = entry["threatgraph"]["throughput_rps"] / entry["oxigraph"]["throughput_rps"]  # type: ignore[index]
                entry["throughput_ratio"] = ratio
                report["levels"][str(c)] = entry  # type: ignore[index]
            report["peak_rss_mb"] = {"threatgraph": rss_mb(ours.pid), "oxigraph": rss_mb(ox.pid)}
            at8 = report["levels"].get("8")  # type: ignore[attr-defined]
            report["targets"] = {
                "throughput_ratio_min": min(v["throughput_ratio"] for v in report["levels"].values()),  # type: ignore[attr-defined]
                "p95_ms_at_8": at8["threatgraph"]["p95_ms"] if at8 else None,
                "met": bool(at8) and at8["threatgraph"]["p95_ms"] < 100
                and all(v["throughput_ratio"] >= 0.5 for v in report["levels"].values()),  # type: ignore[attr-defined]
            }
        finally:
            for p in (ours, ox):
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    print(json.dumps(report, indent=1))
    print(f"{'query':<34} {'threatgraph ms':>14} {'oxigraph ms':>12}", file=sys.stderr)
    for name, v in report["single_client_median_ms"].items():  # type: ignore[attr-defined]
        print(f"{name:<34} {v['threatgraph_ms']:14.2f} {v['oxigraph_ms']:12.2f}", file=sys.stderr)
    print(f"\n{'clients':>7} {'server':<12} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}", file=sys.stderr)
    for c, entry in report["levels"].items():  # type: ignore[attr-defined]
        for label in ("threatgraph", "oxigraph"):
            r = entry[label]
            print(f"{c:>7} {label:<12} {r['throughput_rps']:8.1f} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['errors']:6d}",
                  file=sys.stderr)
        print(f"{'':>7} ratio        {entry['throughput_ratio']:8.2f}", file=sys.stderr)
    print(f"peak RSS MB: {report['peak_rss_mb']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
