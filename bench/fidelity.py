"""Fidelity: how much of what people wrote on real public threat models threatgraph also finds (issue 13).

For each model under ``bench/fidelity/models/`` (provenance in its README), the threats written in the
model are taken out as the ground truth, the rest is imported and analysed as a new user would
(``threatgraph import-model``, then ``threatgraph analyze --force -f json``, once without and once with
``--knowledge shared``), and the ground truth is compared with threatgraph's *specific* findings: every
rule except the per-element baselines ``TG-PE-*``, plus baseline findings that carry at least one ATLAS /
ATT&CK technique. The product never sees the answers: the bench removes them from the copy it imports
(Threat Dragon threats, pytm findings, Threagile risk tracking and individual risks).

Threat Dragon models (``*.json`` with ``detail.diagrams``): the ground truth is the set of (element, STRIDE
category) pairs of the threats written on the model's cells (STRIDE diagrams only), split by status:

* ``open``: status Open (or no status): recall = share of these pairs raised by a specific finding;
* ``mitigated``: status Mitigated: share raised (the threat is real, people have handled it);
* ``rejected``: status NotApplicable (or "Not applicable"): share raised anyway (lower is better).

pytm models (pytm's ``--json`` output, findings resolved by pytm itself): every finding pytm's ``resolve()``
made is an open (element, STRIDE) pair, the STRIDE category of a pytm threat from the bench's table
``bench/fidelity/pytm_stride.json`` (pytm's threat library has none); ``id_recall`` is the share of pytm's
(element, threat id) pairs on which threatgraph raises a finding of a rule whose ``# covers:`` header names
that pytm threat (the crosswalk). pytm resolves a threat on an element from the element's own controls, where
threatgraph's interaction rules raise it on each flow into the element: for pytm models a finding on a flow
also counts for the element receiving it (never for the sender).

Threagile models (``*.yaml``): the (asset, STRIDE) pairs of the risks written in the model (individual risk
categories with their identified risks, risk tracking) and, when a file ``<model>.risks.json`` lies beside
it, of the risks Threagile generated (its ``risks.json``); a pair is raised by a specific finding of that
category on the asset or on the risk's most relevant communication link. ML risks (``ml_recall``, the goal
of issue 13): each hand-written (risk, asset) pair whose risk text matches an entry of
``bench/fidelity/ml_risk_techniques.json`` is matched when threatgraph cites one of that entry's ATLAS /
ATT&CK techniques (or a sub-technique) on the asset or on a data flow that starts or ends at it.

A model the importer refuses is reported with its error and no figures (``"error"``).

    python bench/fidelity.py                 # table on stdout
    python bench/fidelity.py --json out.json # the same figures, machine-readable
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import rdflib
import yaml

from threatgraph.cli import main as cli_main
from threatgraph.interchange.threagile import BUILTIN_STRIDE

HERE = Path(__file__).resolve().parent
MODELS = HERE / "fidelity" / "models"
RULES = HERE.parent / "queries" / "rules"
ML_TABLE = HERE / "fidelity" / "ml_risk_techniques.json"
PYTM_TABLE = HERE / "fidelity" / "pytm_stride.json"
STRIDE_NS = "https://w3id.org/threatgraph/stride#"
TG_NS = "https://w3id.org/threatgraph/ontology#"
DCT_ID = rdflib.URIRef("http://purl.org/dc/terms/identifier")

# Threat Dragon's STRIDE threat types (td.vue, threat type strings of STRIDE diagrams) → stride: names.
TD_STRIDE = {
    "spoofing": "Spoofing",
    "tampering": "Tampering",
    "repudiation": "Repudiation",
    "information disclosure": "InformationDisclosure",
    "denial of service": "DenialOfService",
    "elevation of privilege": "ElevationOfPrivilege",
}
# Threagile's STRIDE values → stride: names.
THREAGILE_STRIDE = {
    "spoofing": "Spoofing",
    "tampering": "Tampering",
    "repudiation": "Repudiation",
    "information-disclosure": "InformationDisclosure",
    "denial-of-service": "DenialOfService",
    "elevation-of-privilege": "ElevationOfPrivilege",
}
REJECTED = {"notapplicable", "not applicable", "n/a", "rejected", "false positive", "false-positive"}
MODEL_SUFFIXES = (".json", ".yaml", ".yml")

Pair = tuple[str, str]
"""(element id in the source model, STRIDE local name, pytm threat id or hand-written risk id)."""


@dataclass
class Truth:
    open: set[Pair] = field(default_factory=set)
    mitigated: set[Pair] = field(default_factory=set)
    rejected: set[Pair] = field(default_factory=set)


@dataclass
class Prepared:
    """A model split into what the product imports and what the bench keeps as the answers."""

    fmt: str
    text: str
    """The model without its threats, as the product imports it."""
    suffix: str
    truth: Truth
    labels: dict[str, str]
    truth_source: str
    ids: set[Pair] = field(default_factory=set)
    """pytm: (element, pytm threat id) pairs."""
    ml: set[Pair] = field(default_factory=set)
    """Threagile: (asset id, risk category id) of hand-written risks the ML table classifies."""
    ml_techniques: dict[str, set[str]] = field(default_factory=dict)
    ml_unclassified: list[str] = field(default_factory=list)
    links: dict[Pair, set[str]] = field(default_factory=dict)
    """Threagile: (asset, STRIDE) → ids of the communication links the risks name (also count)."""


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
    id_recall: float | None = None
    missed_ids: list[str] = field(default_factory=list)
    ml_recall: float | None = None
    ml_matched: int = 0
    missed_ml: list[str] = field(default_factory=list)


@dataclass
class ModelResult:
    model: str
    format: str
    truth_source: str = ""
    pairs_open: int = 0
    pairs_mitigated: int = 0
    pairs_rejected: int = 0
    id_pairs: int = 0
    ml_pairs: int = 0
    ml_unclassified: list[str] = field(default_factory=list)
    error: str = ""
    runs: dict[str, Run] = field(default_factory=dict)


# ---- ground truth per format -------------------------------------------------------------------------


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


def pytm_stride(threat_id: str, table: Mapping[str, Any] | None = None) -> str | None:
    """The bench's STRIDE category of a pytm threat id (bench/fidelity/pytm_stride.json).

    >>> pytm_stride("INP05"), pytm_stride("DE04"), pytm_stride("XX01")
    ('Tampering', 'Repudiation', None)
    """
    t = table if table is not None else json.loads(PYTM_TABLE.read_text(encoding="utf-8"))
    if threat_id in t["ids"]:
        return str(t["ids"][threat_id])
    prefix = re.sub(r"\d+$", "", threat_id)
    return str(t["prefix"][prefix]) if prefix in t["prefix"] else None


def pytm_truth(doc: dict[str, Any]) -> Prepared:
    """pytm's resolved findings as (element name, STRIDE) and (element name, threat id) pairs."""
    table = json.loads(PYTM_TABLE.read_text(encoding="utf-8"))
    truth, ids, labels = Truth(), set(), {}
    for f in doc.get("findings") or []:
        target, tid = str(f.get("target") or ""), str(f.get("threat_id") or "")
        if not target or not tid:
            continue
        labels[target] = target
        ids.add((target, tid))
        cat = pytm_stride(tid, table)
        if cat is not None:
            status = str(f.get("response") or "").strip().lower()
            (truth.rejected if status in REJECTED else truth.open).add((target, cat))
    stripped = dict(doc)
    stripped["findings"], stripped["excluded_findings"] = [], []
    for key in ("elements", "flows", "actors", "assets"):
        stripped[key] = [
            {**e, "findings": [], "overrides": []} if isinstance(e, dict) else e for e in doc.get(key) or []
        ]
    return Prepared("pytm", json.dumps(stripped), ".json", truth, labels, "pytm resolve() findings", ids=ids)


def _risk_text(rc: Mapping[str, Any], title: str) -> str:
    return " ".join(str(x) for x in (rc.get("id"), title, rc.get("description")) if x).lower()


def ml_techniques_of(text: str, table: Mapping[str, Any] | None = None) -> set[str]:
    """The technique ids the ML table gives for a risk text (empty: the risk is not an ML risk).

    >>> sorted(ml_techniques_of("Model extraction through the chat API"))[:2]
    ['AML.T0005', 'AML.T0024.002']
    >>> ml_techniques_of("Missing TLS on the database link")
    set()
    """
    t = table if table is not None else json.loads(ML_TABLE.read_text(encoding="utf-8"))
    low = " ".join(text.lower().split())
    out: set[str] = set()
    for entry in t["entries"]:
        if any(re.search(rf"(?<![\w-])(?:{k})", low) for k in entry["keywords"]):
            out |= set(entry["techniques"])
    return out


def _link_id(source_id: str, key: str) -> str:
    """Threagile's id of a communication link: ``<asset id>><link title, lower-case, dashed>``."""
    return source_id + ">" + re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")


def threagile_truth(doc: dict[str, Any], generated: list[dict[str, Any]] | None) -> Prepared:
    """(asset, STRIDE) pairs of the risks written in (and, if given, generated for) a Threagile model."""
    table = json.loads(ML_TABLE.read_text(encoding="utf-8"))
    truth, labels = Truth(), {}
    links: dict[Pair, set[str]] = {}
    ml: set[Pair] = set()
    ml_tech: dict[str, set[str]] = {}
    unclassified: set[str] = set()
    for key, t in (doc.get("technical_assets") or {}).items():
        if isinstance(t, Mapping) and t.get("id"):
            labels[str(t["id"])] = str(key)

    def add(asset: str, stride: str | None, status: str, link: str | None) -> None:
        cat = THREAGILE_STRIDE.get(str(stride or ""))
        if not asset or cat is None:
            return
        pair = (asset, cat)
        status = status.strip().lower()
        if status in REJECTED:
            truth.rejected.add(pair)
        elif status == "mitigated":
            truth.mitigated.add(pair)
        else:
            truth.open.add(pair)
        if link:
            links.setdefault(pair, set()).add(link)

    cats: dict[str, Mapping[str, Any]] = {}
    for title, rc in (doc.get("individual_risk_categories") or {}).items():
        if not isinstance(rc, Mapping):
            continue
        rid = str(rc.get("id"))
        cats[rid] = rc
        techs = ml_techniques_of(_risk_text(rc, str(title)), table)
        for risk in (rc.get("risks_identified") or {}).values():
            if not isinstance(risk, Mapping):
                continue
            asset = str(risk.get("most_relevant_technical_asset") or "")
            add(asset, rc.get("stride"), "unchecked", str(risk.get("most_relevant_communication_link") or "") or None)
            if not asset:
                continue
            if techs:
                ml.add((asset, rid))
                ml_tech[rid] = techs
            else:
                unclassified.add(rid)
    for sid, rt in (doc.get("risk_tracking") or {}).items():
        if "*" in str(sid):
            continue  # wildcards name the generated risks they track; not expanded (as the importer)
        cat_id, _, rest = str(sid).partition("@")
        parts = rest.split("@")
        stride = cats[cat_id].get("stride") if cat_id in cats else BUILTIN_STRIDE.get(cat_id)
        status = str(rt.get("status") or "") if isinstance(rt, Mapping) else ""
        link = next((p for p in parts if ">" in p), None)
        asset = next((p for p in parts if ">" not in p), "")
        add(asset, stride, status, link)
    for r in generated or []:
        add(str(r.get("most_relevant_technical_asset") or ""), BUILTIN_STRIDE.get(str(r.get("category"))),
            str(r.get("risk_status") or ""), str(r.get("most_relevant_communication_link") or "") or None)
    stripped = {k: v for k, v in doc.items() if k not in ("individual_risk_categories", "risk_tracking")}
    source = "hand-written risks" + (" + Threagile-generated risks.json" if generated is not None else "")
    return Prepared("threagile", yaml.safe_dump(stripped, sort_keys=False), ".yaml", truth, labels, source,
                    ml=ml, ml_techniques=ml_tech, ml_unclassified=sorted(unclassified), links=links)


def prepare(path: Path) -> Prepared:
    if path.suffix in (".yaml", ".yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        risks = path.with_name(path.stem + ".risks.json")
        generated = json.loads(risks.read_text(encoding="utf-8")) if risks.exists() else None
        return threagile_truth(doc, generated)
    doc = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(doc.get("elements"), list) and isinstance(doc.get("flows"), list):
        return pytm_truth(doc)
    truth, labels = threat_dragon_truth(doc)
    stripped = json.loads(json.dumps(doc))
    for diagram in stripped.get("detail", {}).get("diagrams", []) or []:
        for cell in diagram.get("cells", []) or []:
            if isinstance(cell.get("data"), dict):
                cell["data"]["threats"] = []
    return Prepared("threat-dragon", json.dumps(stripped), ".json", truth, labels, "threats written on cells")


# ---- what threatgraph raised -------------------------------------------------------------------------


def specific(finding: dict[str, Any]) -> bool:
    """A finding of a specific rule, or a baseline finding with techniques attached."""
    return not str(finding["rule"]).startswith("TG-PE-") or bool(finding.get("techniques"))


@dataclass
class Elements:
    """Source ids of the imported model's elements and flows (by IRI), from its Turtle."""

    ids: dict[str, str]
    flows: dict[str, tuple[str, str, str]]
    """flow IRI → (source element id, target element id, Threagile link id)."""


def elements(ttl: Path) -> Elements:
    g = rdflib.Graph().parse(ttl)
    ids = {str(s): str(o) for s, o in g.subject_objects(DCT_ID)}
    flows: dict[str, tuple[str, str, str]] = {}
    for f in g.subjects(rdflib.RDF.type, rdflib.URIRef(TG_NS + "DataFlow")):
        src, dst = g.value(f, rdflib.URIRef(TG_NS + "source")), g.value(f, rdflib.URIRef(TG_NS + "target"))
        if src is None or dst is None:
            continue
        s_id, d_id = ids.get(str(src), ""), ids.get(str(dst), "")
        response = str(f).endswith(":response")
        link = _link_id(d_id if response else s_id, ids.get(str(f), ""))
        flows[str(f)] = (s_id, d_id, link)
    return Elements(ids, flows)


def _on(iri: str, els: Elements, receiver: bool) -> set[str]:
    """The source ids a finding on ``iri`` counts for: the element or flow itself, and with ``receiver`` the
    element a flow delivers to (pytm: see :func:`raised_ids`)."""
    hits = {els.ids[iri]} if iri in els.ids else set()
    if receiver and iri in els.flows and els.flows[iri][1]:
        hits.add(els.flows[iri][1])
    return hits


def raised_pairs(findings: Iterable[dict[str, Any]], els: Elements, receiver: bool = False) -> set[Pair]:
    """(element or link id, STRIDE name) for each specific finding (links as Threagile link ids; with
    ``receiver``, a finding on a flow also counts for the element receiving the flow)."""
    out: set[Pair] = set()
    for f in findings:
        if not specific(f):
            continue
        iri = str(f["element"]["iri"])
        hits = _on(iri, els, receiver)
        if iri in els.flows:
            hits.add(els.flows[iri][2])
        for c in f.get("categories", []):
            if str(c["iri"]).startswith(STRIDE_NS):
                out |= {(i, str(c["iri"])[len(STRIDE_NS):]) for i in hits}
    return out


def covers() -> dict[str, set[str]]:
    """pytm threat id → rules whose ``# covers:`` header names it."""
    out: dict[str, set[str]] = {}
    for rq in sorted(RULES.glob("*.rq")):
        for line in rq.read_text(encoding="utf-8").splitlines():
            if line.startswith("# covers:"):
                for token in line[len("# covers:"):].split():
                    if token.startswith("pytm:"):
                        out.setdefault(token[5:], set()).add(rq.stem)
    return out


def raised_ids(findings: Iterable[dict[str, Any]], els: Elements, truth: set[Pair]) -> set[Pair]:
    """The (element, pytm threat id) pairs of ``truth`` on which a covering rule raised a finding.

    pytm resolves a threat whose ``target`` is an element class (Process, Server, Lambda, Datastore) on the
    element itself, its condition reading the element's own controls (``target.controls.validatesInput``);
    threatgraph's interaction rules raise the same concern on each flow into that element, naming it as the
    flow's target. A finding on a flow therefore counts for the flow and for the element receiving it;
    never for the flow's sender (docs/fidelity.md).
    """
    by_rule: dict[str, set[str]] = {}
    for f in findings:
        by_rule.setdefault(str(f["rule"]), set()).update(_on(str(f["element"]["iri"]), els, True))
    cov = covers()
    return {(e, t) for e, t in truth if any(e in by_rule.get(r, set()) for r in cov.get(t, set()))}


def _covered(cited: str, wanted: set[str]) -> bool:
    return any(cited == w or cited.startswith(w + ".") for w in wanted)


def ml_matched(findings: Iterable[dict[str, Any]], els: Elements, prep: Prepared) -> set[Pair]:
    """The hand-written (asset, risk) pairs with a matching technique cited on the asset or a flow touching it."""
    cited: dict[str, set[str]] = {}
    for f in findings:
        iri = str(f["element"]["iri"])
        techs = {str(t["id"]) for t in f.get("techniques") or []}
        if not techs:
            continue
        on = {els.ids[iri]} if iri in els.ids and iri not in els.flows else set()
        if iri in els.flows:
            on |= set(els.flows[iri][:2])
        for e in on:
            cited.setdefault(e, set()).update(techs)
    return {(a, r) for a, r in prep.ml if any(_covered(t, prep.ml_techniques[r]) for t in cited.get(a, set()))}


# ---- the run -----------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(argv)
    return code, err.getvalue()


def _share(part: set[Pair], whole: set[Pair]) -> float | None:
    return round(len(part & whole) / len(whole), 3) if whole else None


def _with_links(raised: set[Pair], prep: Prepared) -> set[Pair]:
    """Threagile: a pair also counts as raised when raised on one of the links its risks name."""
    extra = {p for p, links in prep.links.items() if any((link, p[1]) in raised for link in links)}
    return raised | extra


def measure(path: Path, work: Path) -> ModelResult:
    prep = prepare(path)
    truth, labels = prep.truth, prep.labels
    res = ModelResult(
        model=path.name,
        format=prep.fmt,
        truth_source=prep.truth_source,
        pairs_open=len(truth.open),
        pairs_mitigated=len(truth.mitigated),
        pairs_rejected=len(truth.rejected),
        id_pairs=len(prep.ids),
        ml_pairs=len(prep.ml),
        ml_unclassified=prep.ml_unclassified,
    )
    src = work / (path.stem + ".input" + prep.suffix)
    src.write_text(prep.text, encoding="utf-8")
    ttl = work / (path.stem + ".ttl")
    code, err = _cli(["import-model", "-q", "-o", str(ttl), str(src)])
    if code != 0:
        res.error = f"import-model exit {code}: " + " ".join(err.split())
        return res
    els = elements(ttl)
    for name, extra in (("plain", []), ("knowledge", ["--knowledge", "shared"])):
        out = work / f"{path.stem}.{name}.json"
        code, err = _cli(["analyze", str(ttl), "--force", "-f", "json", "-o", str(out), *extra])
        if code not in (0, 1):
            res.error = f"analyze ({name}) exit {code}: " + " ".join(err.split())
            return res
        findings = json.loads(out.read_text(encoding="utf-8"))["findings"]
        raised = _with_links(raised_pairs(findings, els, receiver=prep.fmt == "pytm"), prep)
        every = truth.open | truth.mitigated
        run = Run(
            raised=len(raised & (every | truth.rejected)),
            recall_open=_share(raised, truth.open),
            recall_all=_share(raised, every),
            mitigated_raised=_share(raised, truth.mitigated),
            rejected_raised=_share(raised, truth.rejected),
            specific_findings=sum(1 for f in findings if specific(f)),
            baseline_findings=sum(1 for f in findings if not specific(f)),
            missed_open=sorted(f"{labels.get(e, e)} / {c}" for e, c in truth.open - raised),
        )
        if prep.ids:
            got = raised_ids(findings, els, prep.ids)
            run.id_recall = _share(got, prep.ids)
            run.missed_ids = sorted(f"{e} / {t}" for e, t in prep.ids - got)
        if prep.ml:
            got = ml_matched(findings, els, prep)
            run.ml_recall = _share(got, prep.ml)
            run.ml_matched = len(got)
            run.missed_ml = sorted(f"{labels.get(a, a)} / {r}" for a, r in prep.ml - got)
        res.runs[name] = run
    return res


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def table(results: list[ModelResult]) -> str:
    head = (f"{'model':42} {'run':9} {'open':>5} {'recall':>6} {'all':>5} {'mitig':>5} {'rej':>5} {'spec':>5} "
            f"{'base':>5} {'ids':>5} {'id-rec':>6} {'ml':>4} {'ml-rec':>6}")
    lines = [head, "-" * len(head)]
    for r in results:
        if r.error:
            lines.append(f"{r.model:42} error: {r.error[:150]}")
            continue
        for name, run in r.runs.items():
            lines.append(
                f"{r.model[:42]:42} {name:9} {r.pairs_open:>5} {_fmt(run.recall_open):>6} {_fmt(run.recall_all):>5} "
                f"{_fmt(run.mitigated_raised):>5} {_fmt(run.rejected_raised):>5} {run.specific_findings:>5} "
                f"{run.baseline_findings:>5} {r.id_pairs or '-':>5} {_fmt(run.id_recall):>6} {r.ml_pairs or '-':>4} "
                f"{_fmt(run.ml_recall):>6}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE ('-' for stdout)")
    ap.add_argument(
        "models", nargs="*", type=Path, help="model files (default: bench/fidelity/models/*.json, *.yaml)"
    )
    args = ap.parse_args(argv)
    paths = args.models or sorted(
        p for p in MODELS.iterdir() if p.suffix in MODEL_SUFFIXES and not p.name.endswith(".risks.json")
    )
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(p, Path(tmp)) for p in paths]
    data = {
        "metric": "recall of (element, STRIDE) pairs of human-written (or peer-tool) threats by specific findings; "
        "id_recall: (element, pytm threat id) pairs raised by a covering rule; ml_recall: hand-written ML risks "
        "matched by a cited ATLAS/ATT&CK technique on the asset or a flow touching it",
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
