"""Fidelity: how much of what people wrote on real public threat models threatgraph also finds (issue 13).

For each model under ``bench/fidelity/models/`` (provenance in its README), the model is imported and
analysed as a new user would (``threatgraph import-model``, then ``threatgraph analyze --force -f json``,
once without and once with ``--knowledge shared``), and the threats written in the model are compared
with threatgraph's *specific* findings: every rule except the per-element baselines ``TG-PE-*``, plus
baseline findings that carry at least one ATLAS / ATT&CK technique.

Threat Dragon models: the ground truth is the set of (element, STRIDE category) pairs of the threats
written on the model's cells (STRIDE diagrams only), split by the status people gave them:

* ``open``: status Open (or no status): recall = share of these pairs raised by a specific finding;
* ``mitigated``: status Mitigated: share raised (the threat is real, people have handled it);
* ``rejected``: status NotApplicable (or "Not applicable"): share raised anyway (lower is better).

A model the importer refuses is reported with its error and no figures (``"error"``).

    python bench/fidelity.py                 # table on stdout
    python bench/fidelity.py --json out.json # the same figures, machine-readable
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from threatgraph.cli import main as cli_main

HERE = Path(__file__).resolve().parent
MODELS = HERE / "fidelity" / "models"
STRIDE_NS = "https://w3id.org/threatgraph/stride#"

# Threat Dragon's STRIDE threat types (td.vue, threat type strings of STRIDE diagrams) → stride: names.
TD_STRIDE = {
    "spoofing": "Spoofing",
    "tampering": "Tampering",
    "repudiation": "Repudiation",
    "information disclosure": "InformationDisclosure",
    "denial of service": "DenialOfService",
    "elevation of privilege": "ElevationOfPrivilege",
}
REJECTED = {"notapplicable", "not applicable", "n/a", "rejected", "false positive"}

Pair = tuple[str, str]
"""(element id in the source model, STRIDE local name)."""


@dataclass
class Truth:
    open: set[Pair] = field(default_factory=set)
    mitigated: set[Pair] = field(default_factory=set)
    rejected: set[Pair] = field(default_factory=set)


@dataclass
class Run:
    raised: int
    recall_open: float | None
    recall_all: float | None
    mitigated_raised: float | None
    rejected_raised: float | None
    specific_findings: int
    baseline_findings: int
    missed_open: list[str]


@dataclass
class ModelResult:
    model: str
    format: str
    pairs_open: int = 0
    pairs_mitigated: int = 0
    pairs_rejected: int = 0
    error: str = ""
    runs: dict[str, Run] = field(default_factory=dict)


def threat_dragon_truth(doc: dict[str, Any]) -> tuple[Truth, dict[str, str]]:
    """The (cell id, STRIDE) pairs of the threats written on a Threat Dragon v2 model, and cell labels."""
    truth, labels = Truth(), {}
    for diagram in doc.get("detail", {}).get("diagrams", []) or []:
        if str(diagram.get("diagramType") or "STRIDE").upper() != "STRIDE":
            continue
        for cell in diagram.get("cells", []) or []:
            data = cell.get("data") or {}
            cid = str(cell.get("id"))
            labels[cid] = str(data.get("name") or cid).replace("\n", " ")
            for t in data.get("threats") or []:
                cat = TD_STRIDE.get(str(t.get("type") or "").strip().lower())
                if cat is None:
                    continue
                status = str(t.get("status") or "Open").strip().lower()
                pair = (cid, cat)
                if status in REJECTED:
                    truth.rejected.add(pair)
                elif status == "mitigated":
                    truth.mitigated.add(pair)
                else:
                    truth.open.add(pair)
    return truth, labels


def specific(finding: dict[str, Any]) -> bool:
    """A finding of a specific rule, or a baseline finding with techniques attached."""
    return not str(finding["rule"]).startswith("TG-PE-") or bool(finding.get("techniques"))


def raised_pairs(findings: Iterable[dict[str, Any]], ids: Iterable[str]) -> set[Pair]:
    """(source element id, STRIDE name) for each specific finding whose element IRI names that id."""
    ids = list(ids)
    out: set[Pair] = set()
    for f in findings:
        if not specific(f):
            continue
        iri = str(f["element"]["iri"])
        hits = [i for i in ids if iri.endswith(":" + i) or (":" + i + ":") in iri or iri.endswith("/" + i)]
        for c in f.get("categories", []):
            if str(c["iri"]).startswith(STRIDE_NS):
                for i in hits:
                    out.add((i, str(c["iri"])[len(STRIDE_NS) :]))
    return out


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(argv)
    return code, err.getvalue()


def _share(part: set[Pair], whole: set[Pair]) -> float | None:
    return round(len(part & whole) / len(whole), 3) if whole else None


def measure(path: Path, work: Path) -> ModelResult:
    doc = json.loads(path.read_text(encoding="utf-8"))
    truth, labels = threat_dragon_truth(doc)
    res = ModelResult(
        model=path.name,
        format="threat-dragon",
        pairs_open=len(truth.open),
        pairs_mitigated=len(truth.mitigated),
        pairs_rejected=len(truth.rejected),
    )
    ttl = work / (path.stem + ".ttl")
    code, err = _cli(["import-model", "-q", "-o", str(ttl), str(path)])
    if code != 0:
        res.error = f"import-model exit {code}: " + " ".join(err.split())
        return res
    for name, extra in (("plain", []), ("knowledge", ["--knowledge", "shared"])):
        out = work / f"{path.stem}.{name}.json"
        code, err = _cli(["analyze", str(ttl), "--force", "-f", "json", "-o", str(out), *extra])
        if code not in (0, 1):
            res.error = f"analyze ({name}) exit {code}: " + " ".join(err.split())
            return res
        findings = json.loads(out.read_text(encoding="utf-8"))["findings"]
        raised = raised_pairs(findings, labels)
        every = truth.open | truth.mitigated
        res.runs[name] = Run(
            raised=len(raised),
            recall_open=_share(raised, truth.open),
            recall_all=_share(raised, every),
            mitigated_raised=_share(raised, truth.mitigated),
            rejected_raised=_share(raised, truth.rejected),
            specific_findings=sum(1 for f in findings if specific(f)),
            baseline_findings=sum(1 for f in findings if not specific(f)),
            missed_open=sorted(f"{labels.get(e, e)} / {c}" for e, c in truth.open - raised),
        )
    return res


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def table(results: list[ModelResult]) -> str:
    head = f"{'model':42} {'run':9} {'open':>5} {'recall':>6} {'all':>5} {'mitig':>5} {'rej':>5} {'spec':>5} {'base':>5}"
    lines = [head, "-" * len(head)]
    for r in results:
        if r.error:
            lines.append(f"{r.model:42} error: {r.error[:150]}")
            continue
        for name, run in r.runs.items():
            lines.append(
                f"{r.model:42} {name:9} {r.pairs_open:>5} {_fmt(run.recall_open):>6} {_fmt(run.recall_all):>5} "
                f"{_fmt(run.mitigated_raised):>5} {_fmt(run.rejected_raised):>5} {run.specific_findings:>5} "
                f"{run.baseline_findings:>5}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE ('-' for stdout)")
    ap.add_argument(
        "models", nargs="*", type=Path, help="model files (default: bench/fidelity/models/*.json)"
    )
    args = ap.parse_args(argv)
    paths = args.models or sorted(MODELS.glob("*.json"))
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(p, Path(tmp)) for p in paths]
    data = {
        "metric": "recall of (element, STRIDE) pairs of human-written threats by specific findings",
        "models": [asdict(r) for r in results],
    }
    if args.json == "-":
        print(json.dumps(data, indent=1))
    else:
        print(table(results))
        if args.json:
            Path(args.json).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
