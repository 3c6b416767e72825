"""Benchmark: ``analyze`` with ATT&CK 18.1 + ATLAS + D3FEND loaded vs OWASP pytm, on the same models.

For each size (100 / 1,000 / 10,000 elements, bench/generate.py) and each tool, a fresh subprocess:
  * threatgraph: loads the compiled knowledge view of ATT&CK Enterprise 18.1, ATLAS 5.6.0 and D3FEND
    1.2.0 (threatgraph.knowledge.view, as every analysis does) into a fresh in-memory store for each run
    and parses the model file into an RDF graph once (neither timed: "knowledge already loaded, model built"),
    then times ``Engine(store).analyze([model], loaded=...)`` — OWL 2 RL closure, rules, and the
    second stage (techniques, mitigations, D3FEND, detections, controls, risk, attack paths); the
    parse time is reported separately (``model_parse_s``);
  * pytm: builds the equivalent pytm model (same elements, flows and trust boundaries, read from the
    same generated Turtle; not timed), then times ``tm.resolve()`` with pytm's own threat library.
Median of ``--runs`` runs; ``insert_finding_graph_only_s``: the median time to insert the finding
graph's quads, already built, into a fresh in-memory Oxigraph store (what an analysis would pay to
materialise this graph: since issue 14 it stays deferred text until a reader needs it, and
``settled_during_analysis`` shows that nothing loaded it); peak RSS of the subprocess (``ru_maxrss``, includes
the loaded knowledge, taken before the benchmark itself reads the finding graph back) and the RSS growth
during the analysis. Prints one JSON document on stdout and a table on stderr.

    .venv/bin/python bench/bench_analyze_pytm.py [--sizes 100,1000,10000] [--runs 3]

Targets (issue 4): no slower than pytm at 10 k, within 2x at 1 k, time linear in model size.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import element_count, generate_model

TG_CHILD = r"""
import gc, json, resource, statistics, sys, time
from threatgraph.analysis.engine import Engine
from threatgraph.knowledge.view import load_view, view_of_files
from threatgraph.analysis.model import load_model_files
from threatgraph.store import open_store

model, runs = sys.argv[1], int(sys.argv[2])
# knowledge as analyses load it (issue 14): the compiled view of ATT&CK 18.1 + ATLAS + D3FEND, from the
# cache (compiled here on the first run of the benchmark)
view = view_of_files(["shared"])
t = time.perf_counter()
loaded = load_model_files([model])
parse_s = time.perf_counter() - t
gc.collect()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(runs):
    # a fresh store per run, as every analysis has (pipeline.analyze): Oxigraph's in-memory store keeps
    # what a dropped graph held, so a store re-used across runs grew and slowed each later run
    a = store = None  # the previous run's store is freed first (peak RSS is per run)
    store = open_store()
    load_view(store, view)
    engine = Engine(store)
    t = time.perf_counter()
    a = engine.analyze([model], loaded=loaded)
    times.append(time.perf_counter() - t)
# peak before anything below reads the finding graph: the analysis leaves it as deferred text (issue 14), and
# the count and the floor below load it, which no analysis does
rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
settled = store.settled_count
apps = store.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH <https://w3id.org/threatgraph/graph/findings> { ?a a tg:TechniqueApplication } }")
# floor: only inserting the finding graph's quads (already built) into a fresh in-memory Oxigraph store
from pyoxigraph import Store as OxStore
quads = list(store.quads("https://w3id.org/threatgraph/graph/findings"))
floor = []
for _ in range(runs):
    fresh = OxStore()
    t = time.perf_counter()
    fresh.bulk_extend(quads)
    floor.append(time.perf_counter() - t)
    del fresh
print(json.dumps({"times": times, "findings": a.finding_count, "techniqueApplications": int(apps[0]["n"].value),
                  "paths": a.path_count, "rss_before_kb": rss0, "model_parse_s": parse_s,
                  "finding_quads": len(quads), "insert_floor_s": statistics.median(floor),
                  "rss_peak_kb": rss_peak, "settled_during_analysis": settled}))
"""

PYTM_CHILD = r"""
import gc, json, resource, sys, time
from pyoxigraph import RdfFormat, parse
from pytm import TM, Actor, Boundary, Dataflow, Datastore, ExternalEntity, Process

TG = "https://w3id.org/threatgraph/ontology#"
TGML = "https://w3id.org/threatgraph/ml#"
ENTITY = {"EndUser": Actor, "ThirdPartyDataSource": ExternalEntity}
STORE = {"FirstPartyDataSource", "TrainingDataset", "FeatureStore", "FineTunedModel", "ModelRegistry", "InferenceLogStore"}

def build(path):
    props = {}
    for t in parse(path=path, format=RdfFormat.TURTLE):
        props.setdefault(t.subject.value, {}).setdefault(t.predicate.value, []).append(t.object.value)
    TM.reset()
    tm = TM("generated")
    tm.description = "generated ML system"
    tm.isOrdered = False
    zones, nodes = {}, {}
    for s, p in props.items():
        types = p.get("http://www.w3.org/1999/02/22-rdf-syntax-ns#type", [])
        if TG + "TrustZone" in types:
            zones[s] = Boundary(s.rsplit("#", 1)[-1])
    for s, p in props.items():
        types = [t.rsplit("#", 1)[-1] for t in p.get("http://www.w3.org/1999/02/22-rdf-syntax-ns#type", []) if t.startswith(TGML)]
        if not types:
            continue
        cls = types[0]
        name = s.rsplit("#", 1)[-1]
        if cls in ENTITY:
            el = ENTITY[cls](name)
        elif cls in STORE:
            el = Datastore(name)
            el.isSQL = False
            if cls == "InferenceLogStore":
                el.storesLogData = True
        else:
            el = Process(name)
        zone = p.get(TG + "inZone")
        if zone:
            el.inBoundary = zones[zone[0]]
        if p.get(TG + "publiclyExposed") == ["true"]:
            el.exposedToInternet = True if hasattr(el, "exposedToInternet") else None
        nodes[s] = el
    for s, p in props.items():
        if TG + "DataFlow" in p.get("http://www.w3.org/1999/02/22-rdf-syntax-ns#type", []):
            f = Dataflow(nodes[p[TG + "source"][0]], nodes[p[TG + "target"][0]], s.rsplit("#", 1)[-1])
            f.protocol = "HTTPS"
            if p.get(TG + "encryptedInTransit") == ["true"]:
                f.controls.isEncrypted = True
            if p.get(TG + "authenticated") == ["true"]:
                f.controls.authenticatesSource = True
    return tm, len(nodes), len(zones)

model, runs = sys.argv[1], int(sys.argv[2])
gc.collect()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(runs):
    tm, n_nodes, n_zones = build(model)
    t = time.perf_counter()
    tm.resolve()
    times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "findings": len(tm.findings), "nodes": n_nodes, "boundaries": n_zones,
                  "rss_before_kb": rss0, "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def child(code: str, model: Path, runs: int) -> dict[str, object]:
    res = subprocess.run([sys.executable, "-c", code, str(model), str(runs)], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{res.stderr[-3000:]}")
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            model = Path(tmp) / f"model-{n}.ttl"
            model.write_text(generate_model(n, seed=args.seed), encoding="utf-8")
            tg = child(TG_CHILD, model, args.runs)
            py = child(PYTM_CHILD, model, args.runs)
            tg_t = statistics.median(tg["times"])  # type: ignore[arg-type]
            py_t = statistics.median(py["times"])  # type: ignore[arg-type]
            rows.append({
                "elements": element_count(n),
                "threatgraph": {
                    "median_s": round(tg_t, 4), "times_s": [round(t, 4) for t in tg["times"]],  # type: ignore[attr-defined]
                    "findings": tg["findings"], "techniqueApplications": tg["techniqueApplications"], "paths": tg["paths"],
                    "model_parse_s": round(float(tg["model_parse_s"]), 3),  # type: ignore[arg-type]
                    "finding_graph_quads": tg["finding_quads"],
                    "insert_finding_graph_only_s": round(float(tg["insert_floor_s"]), 3),  # type: ignore[arg-type]
                    "peak_rss_mb": round(int(tg["rss_peak_kb"]) / 1024, 1),  # type: ignore[call-overload]
                    "analysis_rss_growth_mb": round((int(tg["rss_peak_kb"]) - int(tg["rss_before_kb"])) / 1024, 1),  # type: ignore[call-overload]
                    "settled_during_analysis": tg["settled_during_analysis"],
                },
                "pytm": {
                    "median_s": round(py_t, 4), "times_s": [round(t, 4) for t in py["times"]],  # type: ignore[attr-defined]
                    "findings": py["findings"], "nodes": py["nodes"], "boundaries": py["boundaries"],
                    "peak_rss_mb": round(int(py["rss_peak_kb"]) / 1024, 1),  # type: ignore[call-overload]
                    "analysis_rss_growth_mb": round((int(py["rss_peak_kb"]) - int(py["rss_before_kb"])) / 1024, 1),  # type: ignore[call-overload]
                },
                "ratio_threatgraph_to_pytm": round(tg_t / py_t, 2) if py_t else None,
            })
            print(f"  done {element_count(n)} elements", file=sys.stderr, flush=True)
    by_n = {r["elements"]: r for r in rows}
    linear = {}
    ns = sorted(by_n)
    for a, b in itertools.pairwise(ns):
        ta = by_n[a]["threatgraph"]["median_s"]  # type: ignore[index]
        tb = by_n[b]["threatgraph"]["median_s"]  # type: ignore[index]
        linear[f"{b}/{a}"] = {"size_ratio": round(b / a, 1), "time_ratio": round(tb / ta, 2) if ta else None}
    doc = {"benchmark": "analyze (ATT&CK 18.1 + ATLAS 5.6.0 + D3FEND 1.2.0) vs pytm resolve()", "runs": args.runs,
           "seed": args.seed, "results": rows, "threatgraph_scaling": linear,
           "targets": {"10k": "threatgraph <= pytm", "1k": "threatgraph <= 2x pytm", "scaling": "linear"}}
    print(json.dumps(doc, indent=2))
    head = f"{'elements':>9} {'threatgraph s':>14} {'pytm s':>9} {'ratio':>7} {'tg findings':>12} {'tg techniques':>14} {'pytm findings':>14} {'tg peak MB':>11} {'pytm peak MB':>13} {'insert-only s':>14}"
    print(head, file=sys.stderr)
    for r in rows:
        tg, py = r["threatgraph"], r["pytm"]
        print(f"{r['elements']:>9} {tg['median_s']:>14} {py['median_s']:>9} {r['ratio_threatgraph_to_pytm']:>7} "  # type: ignore[index]
              f"{tg['findings']:>12} {tg['techniqueApplications']:>14} {py['findings']:>14} {tg['peak_rss_mb']:>11} {py['peak_rss_mb']:>13} "  # type: ignore[index]
              f"{tg['insert_finding_graph_only_s']:>14}",  # type: ignore[index]
              file=sys.stderr)
    for k, v in linear.items():
        print(f"scaling {k}: size x{v['size_ratio']}, time x{v['time_ratio']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
