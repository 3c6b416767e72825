"""Benchmark (issue 14): the user path, as whole processes, against OWASP pytm's whole process.

Timed, each as a fresh process (median of ``--runs``, runs alternating between the tools):

* ``store``:   ``threatgraph analyze MODEL --store DIR --format json`` where DIR holds ATT&CK Enterprise
  18.1, ATLAS 5.6.0 and D3FEND 1.2.0 imported with ``threatgraph import`` (done once, not timed; the import
  writes DIR's manifest, so that the analysis loads the cached view without opening the store);
* ``shared``:  ``threatgraph analyze MODEL --knowledge shared --format json``;
* ``none``:    ``threatgraph analyze MODEL --format json`` (no threat knowledge);
* ``pytm``:    ``python tm_MODEL.py --json OUT`` — a pytm model script equivalent to MODEL (same elements
  by kind, trust boundaries, flows with their protocol, encryption and authentication), generated once
  from MODEL (not timed): import pytm, build the model, ``resolve()``, JSON out.

The compiled knowledge view, the parsed ontology and its compiled closure are cached in a scratch cache
directory, warmed by one untimed run (as after ``threatgraph import``, which compiles the view). Bytecode
is cached too, in a scratch ``PYTHONPYCACHEPREFIX`` (``PYTHONDONTWRITEBYTECODE`` is unset for the
children): an installed package has its ``.pyc`` files, a source checkout run with
``PYTHONDONTWRITEBYTECODE=1`` compiles every module in every process (~0.15 s of threatgraph's start-up,
2026-12-02); ``--no-bytecode-cache`` measures that way. Peak RSS of each process (``ru_maxrss`` of the child).
Prints one JSON document on stdout and a table on stderr.

    .venv/bin/python bench/bench_user_path.py [--model data/examples/rag-assistant.ttl] [--runs 5]

Targets (issue 14): ``store`` ≤ 1.0× pytm; ``shared`` ≤ 2 s; ``none`` ≤ 0.5 s.
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

REPO = Path(__file__).resolve().parent.parent
TG = "https://w3id.org/threatgraph/ontology#"


def pytm_script(model: Path) -> str:
    """A pytm model script equivalent to ``model`` (element kinds from threatgraph's own closure)."""
    from threatgraph.analysis.pipeline import analyze

    a = analyze([str(model)], validate=False)
    q = a.store.select
    kinds: dict[str, str] = {}
    for kind, cls in (("ExternalEntity", "ExternalEntity"), ("Datastore", "DataStore"), ("Process", "Process")):
        for r in q(f"SELECT DISTINCT ?e WHERE {{ ?e a <{TG}{cls}> }}"):
            kinds.setdefault(r["e"].value, kind)
    for r in q("SELECT DISTINCT ?e WHERE { ?e a <https://w3id.org/threatgraph/ml#EndUser> }"):
        kinds[r["e"].value] = "Actor"
    zone_of = {r["e"].value: r["z"].value for r in q(f"SELECT ?e ?z WHERE {{ ?e <{TG}inZone> ?z }}")}
    zones = sorted(set(zone_of.values()))
    lines = ["import sys", "from pytm import TM, Actor, Boundary, Dataflow, Datastore, ExternalEntity, Process",
             "tm = TM('equivalent of " + model.name + "')", "tm.description = 'benchmark model'", "tm.isOrdered = False"]
    names: dict[str, str] = {}
    for i, z in enumerate(zones):
        lines.append(f"z{i} = Boundary({z.rsplit('#', 1)[-1]!r})")
    for i, (e, kind) in enumerate(sorted(kinds.items())):
        if e in {r["f"].value for r in q(f"SELECT ?f WHERE {{ ?f a <{TG}DataFlow> }}")}:
            continue
        names[e] = f"e{i}"
        lines.append(f"e{i} = {kind}({e.rsplit('#', 1)[-1]!r})")
        if e in zone_of:
            lines.append(f"e{i}.inBoundary = z{zones.index(zone_of[e])}")
    flows = q(f"""SELECT ?f ?s ?t ?enc ?auth WHERE {{ ?f a <{TG}DataFlow> ; <{TG}source> ?s ; <{TG}target> ?t .
        OPTIONAL {{ ?f <{TG}encryptedInTransit> ?enc }} OPTIONAL {{ ?f <{TG}authenticated> ?auth }} }}""")
    for i, r in enumerate(sorted(flows, key=lambda r: r["f"].value)):
        s, t = names.get(r["s"].value), names.get(r["t"].value)
        if s is None or t is None:
            continue
        lines.append(f"f{i} = Dataflow({s}, {t}, {r['f'].value.rsplit('#', 1)[-1]!r})")
        lines.append(f"f{i}.protocol = 'HTTPS'")
        if "enc" in r and r["enc"].value == "true":
            lines.append(f"f{i}.controls.isEncrypted = True")
        if "auth" in r and r["auth"].value == "true":
            lines.append(f"f{i}.controls.authenticatesSource = True")
    lines.append("tm.process()")
    return "\n".join(lines) + "\n"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "data/examples/rag-assistant.ttl"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="leave PYTHONDONTWRITEBYTECODE / PYTHONPYCACHEPREFIX as they are in the environment")
    args = ap.parse_args()
    model = Path(args.model).resolve()
    tg = [str(Path(sys.executable).parent / "threatgraph")]
    shared = os.environ.get("THREATGRAPH_SHARED_DATA") or str(REPO.parent / "shared" / "data")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, THREATGRAPH_CACHE=str(Path(tmp) / "cache"), THREATGRAPH_SHARED_DATA=shared)
        if not args.no_bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        store = str(Path(tmp) / "store")
        for kind, rel in (("attack", "attack/enterprise-attack-18.1.stix20.json"), ("atlas", "atlas/ATLAS.yaml"),
                          ("d3fend", "d3fend/d3fend-protege-1.2.0.ttl")):
            subprocess.run([*tg, "import", kind, str(Path(shared) / rel), "--store", store, "-q"], env=env, check=True,
                           capture_output=True)
        script = Path(tmp) / "tm_model.py"
        script.write_text(pytm_script(model), encoding="utf-8")
        out = str(Path(tmp) / "out.json")
        cmds = {
            "store": [*tg, "analyze", str(model), "--store", store, "--format", "json", "-o", out],
            "shared": [*tg, "analyze", str(model), "--knowledge", "shared", "--format", "json", "-o", out],
            "none": [*tg, "analyze", str(model), "--format", "json", "-o", out],
            "pytm": [sys.executable, str(script), "--json", out],
        }
        for cmd in cmds.values():  # warm: compiled view cached, files in the page cache
            timed(cmd, env)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        peaks: dict[str, float] = {k: 0.0 for k in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                wall, _peak = timed(cmd, env)
                times[name].append(wall)
        for name, cmd in cmds.items():  # peak RSS, one process each (ru_maxrss of children is cumulative)
            code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            res = subprocess.run([sys.executable, "-c", code, *cmd], env=env, capture_output=True, text=True, check=True)
            peaks[name] = int(res.stdout.strip()) / 1024
    med = {k: statistics.median(v) for k, v in times.items()}
    doc = {
        "benchmark": "user path, whole processes (issue 14)", "model": str(model), "runs": args.runs,
        "bytecode_cached": not args.no_bytecode_cache, "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "times_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "peak_rss_mb": {k: round(v, 1) for k, v in peaks.items()},
        "ratio_store_to_pytm": round(med["store"] / med["pytm"], 2),
        "ratio_shared_to_pytm": round(med["shared"] / med["pytm"], 2),
        "ratio_none_to_pytm": round(med["none"] / med["pytm"], 2),
        "targets": {"store": "<= 1.0x pytm", "shared": "<= 2 s", "none": "<= 0.5 s"},
    }
    print(json.dumps(doc, indent=2))
    for k in cmds:
        print(f"{k:>7}: median {med[k]:.3f} s  peak {peaks[k]:.0f} MB  runs {times[k]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
