"""The renderers' fast paths (issue 14) write what the straightforward code wrote.

Each helper that replaced a slower standard one is compared with it on many inputs, edge cases
included: the indented JSON writer with ``json.dumps(indent=2)``, the table's wrapper with
``textwrap.wrap``, SARIF's indexed line search with a regular-expression search of every line, and the
triage's sorted-once lists with sorting per use. The reports built from them are compared byte for byte
in tests/test_report.py (snapshots) and by the answers digests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from threatgraph import __version__
from threatgraph.analysis.findings import Finding, TechniqueView
from threatgraph.export.jsonindent import dumps_indent2
from threatgraph.export.sarif import LineIndex
from threatgraph.report import (
    ReportInput,
    Triage,
    _Wrapper,
    do_text,
    dumps_one_per_line,
    finding_derivation_json,
    findings_json_chunks,
    gather,
    level_counts,
    mitigation_plans,
    own_score,
    paths_json,
    rank_key,
    ranking,
    summary,
    technique_json,
    threat_text,
    unresolved_note,
    why_text,
)


def _value(rng: random.Random, depth: int = 0) -> object:
    r = rng.random()
    if depth > 4 or r < 0.5:
        return rng.choice(["x", 'é\n"\\', "", "\u2028\x00", 0, -3, 10**20, 1.5, 1e-7, float("nan"), float("inf"),
                           -float("inf"), True, False, None])
    if r < 0.75:
        items = [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        return items if rng.random() < 0.8 else tuple(items)
    keys: list[object] = ["a", "ü", 1, 2.5, True, False, None, "k"]
    return {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_dumps_indent2_is_json_dumps_indent_2() -> None:
    rng = random.Random(14)
    for _ in range(2000):
        doc = _value(rng)
        assert dumps_indent2(doc) == json.dumps(doc, indent=2, ensure_ascii=False)


def test_dumps_indent2_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        dumps_indent2({"a": {1, 2}})
    with pytest.raises(TypeError):
        dumps_indent2({("a", "b"): 1})


def test_wrapper_is_textwrap() -> None:
    rng = random.Random(15)
    pieces = ["a", "b", " ", "  ", "-", "—", "\t", "\n", "\xa0", "\u2003", ".", "x" * 12, "word", "re-use", "é", "("]
    wrap = _Wrapper()
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        width = rng.randint(5, 60)
        first = " " * rng.randint(0, 4)
        for _repeat in range(2):  # the second call answers from the cache
            assert wrap(text, width, first, first + "  ") == textwrap.wrap(
                text, width, initial_indent=first, subsequent_indent=first + "  ")


def _first_line_by_regex(path: Path, iri: str, prefixes: dict[str, str], ids: Sequence[str]) -> int | None:
    """The search LineIndex did before issue 14: one expression per element, every line tried."""
    pats = [re.escape(f"<{iri}>")]
    for p, ns in prefixes.items():
        if iri.startswith(ns) and len(iri) > len(ns):
            pats.append(rf"(?<![\w:]){re.escape(p)}:{re.escape(iri[len(ns):])}(?![\w-])")
    for i in ids:
        pats.append(re.escape(json.dumps(i)))
        pats.append(rf"^\s*{re.escape(i)}\s*:|:\s*{re.escape(i)}\s*$|^\s*{re.escape(repr(i))}\s*:")
    rx = re.compile("|".join(pats))
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if rx.search(line):
            return n
    return None


def test_line_index_finds_the_line_a_search_of_every_line_finds(tmp_path: Path) -> None:
    model = tmp_path / "m.ttl"
    model.write_text("\n".join([
        "@prefix ex: <https://example.org/m#> .",
        "@prefix : <https://example.org/d#> .",
        "ex:api-gw a tg:Process .",          # not ex:api (followed by '-')
        "x:ex:api a tg:Process .",           # not ex:api (preceded by ':')
        "ex:apix ex:api_2 ex:api.",           # ex:api before '.': a mention
        "<https://example.org/m#store> a tg:DataStore .",
        ":local a tg:Process .",
        '{"id": "node-7", "name": "n"}',
        "  node-8 : x",
        "key: node-9",
        "  'it''s' : y",
        "ex:café a tg:Process .",
    ]) + "\n", encoding="utf-8")
    prefixes = {"ex": "https://example.org/m#", "": "https://example.org/d#"}
    index = LineIndex([str(model)])
    cases: list[tuple[str, tuple[str, ...]]] = [
        ("https://example.org/m#api", ()), ("https://example.org/m#api-gw", ()), ("https://example.org/m#api_2", ()),
        ("https://example.org/m#store", ()), ("https://example.org/d#local", ()), ("https://example.org/m#café", ()),
        ("https://example.org/m#absent", ()), ("urn:x:1", ("node-7",)), ("urn:x:2", ("node-8",)),
        ("urn:x:3", ("node-9",)), ("urn:x:4", ("it's",)), ("urn:x:5", ("no-such-id",)), ("urn:x:6", ("-",)),
    ]
    found = 0
    for iri, ids in cases:
        expected = _first_line_by_regex(model, iri, prefixes, ids)
        hit = index.find(iri, ids)
        assert (hit[1] if hit else None) == expected, (iri, ids)
        found += expected is not None
    assert found >= 8  # the cases do find lines (and some do not)


def _finding(i: int, rng: random.Random) -> Finding:
    level = rng.choice(["critical", "high", "medium", "low", ""])
    f = Finding(f"urn:f:{i}", rng.choice(["R-A", "R-B", "TG-PE-STRIDE"]), f"threat {i}",
                rng.choice(["info", "low", "medium", "high"]), f"urn:e{i % 7}", f"E{i % 7}", "Process", "because",
                "src", categories=[(f"urn:c:{i % 3}", f"C{i % 3}", "STRIDE")],
                control_status=rng.choice(["mitigated", "unmitigated", "partly mitigated", ""]),
                risk_score=rng.randint(0, 20) if level else 0, risk_level=level)
    for k in range(rng.randint(0, 3)):
        f.techniques.append(TechniqueView(f"urn:t{k}", f"T{1000 + k}", "", "urn:m",
                                          status=rng.choice(["mitigated", "unmitigated"]),
                                          mitigations=[(f"M{k}", f"Mit {k}")]))
    return f


def test_triage_lists_are_those_sorted_per_use() -> None:
    rng = random.Random(16)
    findings = [_finding(i, rng) for i in range(300)]
    tri = Triage(findings)
    by_key = sorted(findings, key=rank_key)
    assert tri.ordered == by_key
    assert tri.ranking == [f for f in by_key if f.control_status != "mitigated" and f.level_rank > 1]
    assert tri.ranking and len(tri.ranking) < len(findings)
    groups: dict[str, list[Finding]] = {}
    for f in by_key:
        groups.setdefault(f.focus, []).append(f)
    assert tri.groups == sorted(((items[0], items) for items in groups.values()), key=lambda g: rank_key(g[0]))
    assert [p.id for p in tri.plans]  # residual techniques with missing mitigations
    assert all(tri.facts(f).level == f.level and tri.facts(f).level_capped == f.level_capped for f in findings)


# ---------------------------------------------------------------------------------------------------
# Every output format, byte for byte, against digests recorded with the code before the fast paths
# (commit e5921cc: the straightforward per-view technique encoding, every quad of the finding graph read
# for the exports). Turtle is hashed as its sorted N-Triples (its order and grouping are the store's).

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "data" / "examples"
DIGESTS = REPO / "tests" / "snapshots" / "render-digests.json"
VARIANTS: tuple[str, ...] = (
    "table:summary", "table:normal", "table:full", "json", "markdown", "turtle", "sarif", "html", "csv",
    "navigator-enterprise", "navigator-atlas", "dot", "mermaid", "threat-dragon", "otm", "json@medium", "csv@medium",
    "sarif@high",
)
"""``FORMAT[:detail][@min-severity]``: each format of ``analyze``, the table at each detail, some formats with
findings left out below a level."""


def _render(variant: str, analysis: object, findings: list[Finding], labels: dict[str, str]) -> str:
    """What ``threatgraph analyze --format FORMAT`` writes (commands/analyze.py), the table 120 wide."""
    from threatgraph.export import EXPORT_FORMATS, build_context, render_export
    from threatgraph.report import render_report_chunks, render_turtle

    head, _, min_level = variant.partition("@")
    fmt, _, detail = head.partition(":")
    min_level = min_level or "info"
    if fmt in ("table", "json", "markdown"):
        return "".join(render_report_chunks(fmt, analysis, findings, labels, detail=detail or "normal",  # type: ignore[arg-type]
                                            min_level=min_level, width=120))
    a: Any = analysis
    if fmt in EXPORT_FORMATS:
        floor = ("info", "low", "medium", "high", "critical").index(min_level) + 1
        shown = [f for f in findings if f.level_rank >= floor]
        ctx = build_context(a.store, shown, labels, title=f"Threat analysis of {', '.join(a.model_files)}",
                            model_files=a.model_files, warnings=a.warnings, rules=a.rules, all_findings=findings)
        return render_export(fmt, ctx, a.store)
    from pyoxigraph import RdfFormat, parse

    # the triples, sorted as N-Triples: the Turtle's statement order and grouping follow the store's order
    triples = parse(render_turtle(a.store).encode("utf-8"), format=RdfFormat.TURTLE)
    return "".join(sorted(f"{t}\n" for t in triples))


def _digests(model: Path, knowledge: list[str] | None, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[object]]:
    """(size in bytes, sha256) of each variant's text; the model named relative to its directory, as a user
    in that directory would (the reports quote the path)."""
    from threatgraph.analysis.engine import labels_of, no_gc
    from threatgraph.analysis.findings import read_findings
    from threatgraph.analysis.pipeline import analyze

    monkeypatch.chdir(model.parent)
    out: dict[str, list[object]] = {}
    with no_gc():
        analysis = analyze([model.name], knowledge=knowledge, force=True)
        labels = labels_of(analysis.store)
        findings = read_findings(analysis.store, labels)
        for variant in VARIANTS:
            data = _render(variant, analysis, findings, labels).encode("utf-8")
            out[variant] = [len(data), hashlib.sha256(data).hexdigest()]
    return out


def _check(case: str, got: dict[str, list[object]]) -> None:
    recorded: dict[str, dict[str, list[object]]] = json.loads(DIGESTS.read_text()) if DIGESTS.is_file() else {}
    if os.environ.get("THREATGRAPH_UPDATE_SNAPSHOTS") == "1":
        recorded[case] = got
        DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    assert case in recorded, f"no digests for {case}: THREATGRAPH_UPDATE_SNAPSHOTS=1 with the reference code"
    changed = [v for v in VARIANTS if recorded[case].get(v) != got[v]]
    assert not changed, f"{case}: {changed} differ from the recorded output"


_EXAMPLES = ["rag-assistant", "tabular-platform", "health-risk"]


@pytest.mark.slow
@pytest.mark.parametrize("name", _EXAMPLES)
def test_every_format_of_the_examples_plain(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(f"{name} plain", _digests(EXAMPLES / f"{name}.ttl", None, monkeypatch))


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("name", _EXAMPLES)
def test_every_format_of_the_examples_with_knowledge(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(f"{name} shared", _digests(EXAMPLES / f"{name}.ttl", ["shared"], monkeypatch))


def _generated(tmp_path: Path) -> Path:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from generate import generate_model  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    model = tmp_path / "m1k.ttl"
    model.write_text(generate_model(1000), encoding="utf-8")
    return model


@pytest.mark.slow
def test_every_format_of_a_generated_1k_model_plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check("generated-1k plain", _digests(_generated(tmp_path), None, monkeypatch))


@pytest.mark.slow
@pytest.mark.shared
def test_every_format_of_a_generated_1k_model_with_knowledge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check("generated-1k shared", _digests(_generated(tmp_path), ["shared"], monkeypatch))


_TEXTS = ["", "x", 'é "q" \\ \n', "\u2028", "Mitigation", "AML.M0020"]
_LISTS = random.Random(18)
_MITIGATIONS = [[(_LISTS.choice(["M1", "M2", "AML.M0020"]), _LISTS.choice(_TEXTS)) for _ in range(n)] for n in (0, 1, 3)]
_COUNTERMEASURES = [[(_LISTS.choice(["D3-A", "D3-B"]), _LISTS.choice(_TEXTS), _LISTS.choice(_TEXTS)) for _ in range(n)]
                    for n in (0, 2)]
_DETECTIONS = [[("DET1", _LISTS.choice(_TEXTS)) for _ in range(n)] for n in (0, 1, 2)]


def _view(rng: random.Random) -> TechniqueView:
    """A technique view drawn from few values, so that views repeat each other's content in part or whole
    (a technique's mitigations, countermeasures and detections are one of a few lists, as in a report)."""
    pick = rng.choice
    return TechniqueView(
        pick(["urn:t1", "urn:t2"]), pick(["T1190", "AML.T0051"]), pick(_TEXTS), pick(["urn:m1", "urn:m2"]),
        asset_types=[pick(_TEXTS) for _ in range(rng.randint(0, 2))], justification=pick(_TEXTS),
        sources=[pick(_TEXTS) for _ in range(rng.randint(0, 2))], release=pick(["", "attack/18.1"]),
        replaces=pick(["", "T1000"]), exposures=[(pick(_TEXTS), "a")] * rng.randint(0, 2),
        reduced_by=[(pick(_TEXTS), "b")] * rng.randint(0, 1), status=pick(["mitigated", "unmitigated", "partly mitigated"]),
        mitigations=list(pick(_MITIGATIONS)), countermeasures=list(pick(_COUNTERMEASURES)),
        implemented=[(pick(["M1", "M2"]), pick(_TEXTS)) for _ in range(rng.randint(0, 2))],
        detections=list(pick(_DETECTIONS)), maturity=pick(["", "realized", "feasible"]),
        unresolved=pick(["", "", "unresolved: no release"]),
    )


def test_technique_encoder_writes_what_json_dumps_writes() -> None:
    """Each view's text is that of json.dumps of its dict (technique_json), whether encoded or reused."""
    from threatgraph.report import TechniqueEncoder

    rng = random.Random(17)
    encode = TechniqueEncoder()
    views = [_view(rng) for _ in range(3000)]
    views += [dataclasses.replace(v) for v in views[:500]]  # copies: the same content, other objects
    texts = set()
    for t in views:
        expected = json.dumps(technique_json(t), ensure_ascii=False)
        assert encode(t) == expected
        texts.add(expected)
    assert len(encode) == len(texts) < len(views)  # the copies' text reused
    assert [encode.token(t) for t in views[-500:]] == [encode.token(t) for t in views[:500]]  # one token per content
    lists = {name for name, _ in encode._lists}
    assert lists <= {"exposure", "reducedBy", "mitigations", "implemented", "countermeasures", "detections"}
    assert sum(1 for name, _ in encode._lists if name in ("mitigations", "countermeasures", "detections")) <= 3 + 2 + 3


def _straightforward_json(ri: ReportInput) -> str:
    """The JSON report as one document of dicts encoded by :func:`dumps_one_per_line` (the code before the
    pieces were encoded one by one and technique entries reused): the specification of the fast path."""
    rem = ri.remediation
    shown = list(ri.findings)
    findings = []
    for f in shown:
        findings.append({
            "id": f.iri, "rule": f.rule_id, "threat": f.threat, "level": f.level, "severity": f.severity,
            "remediation": rem.get(f.rule_id) or None, "do": do_text(f, rem) or None,
            "element": {"iri": f.focus, "label": f.focus_label, "kind": f.focus_kind},
            "categories": [{"iri": c[0], "label": c[1], "framework": c[2]} for c in f.categories],
            "explanation": f.explanation,
            "evidence": [{"role": e[0], "value": e[1], "label": e[2]} for e in f.evidence],
            "source": f.source, **finding_derivation_json(f),
        })
    doc = {
        "tool": {"name": "threatgraph", "version": __version__}, "models": list(ri.model_files),
        "warnings": list(ri.warnings), "summary": summary(shown), "levels": level_counts(shown),
        "ranking": [{"rank": i, "finding": f.iri, "element": f.focus_label, "threat": threat_text(f), "level": f.level,
                     "score": own_score(f) or None, "why": why_text(f), "do": do_text(f, rem)}
                    for i, f in enumerate(ranking(shown), 1)],
        "topMitigations": [{"id": p.id, "name": p.label, "findings": len(p.findings), "techniques": sorted(p.techniques),
                            "elements": p.elements} for p in mitigation_plans(shown)],
        "findings": findings, "releases": dict(ri.releases),
        **({"techniqueStatus": note} if (note := unresolved_note(shown)) else {}),
        "outOfScope": [{"iri": e, "label": label, "reason": why or None} for e, label, why in ri.out_of_scope],
        "attackPaths": paths_json(ri.paths),
    }
    return dumps_one_per_line(doc, ("ranking", "topMitigations", "findings", "outOfScope", "attackPaths"))


@pytest.mark.parametrize("name", ["rag-assistant", "health-risk"])
@pytest.mark.parametrize("min_level", ["info", "high"])
def test_json_report_is_the_straightforward_document(name: str, min_level: str) -> None:
    from threatgraph.analysis.engine import labels_of
    from threatgraph.analysis.findings import read_findings
    from threatgraph.analysis.pipeline import analyze

    analysis = analyze([str(EXAMPLES / f"{name}.ttl")])
    labels = labels_of(analysis.store)
    findings = read_findings(analysis.store, labels)
    ri = gather(analysis, findings, labels, min_level=min_level)
    assert not ri.declared  # with declared threats the document is re-encoded whole (with_declared)
    fast = "".join(findings_json_chunks(ri.findings, model_files=ri.model_files, warnings=ri.warnings, paths=ri.paths,
                                        releases=ri.releases, out_of_scope=ri.out_of_scope, triage=ri.triage))
    assert fast == _straightforward_json(ri)
    assert '"techniques": [{"id": ' in fast


def test_wrap_short_words_is_textwrap() -> None:
    """The bisecting wrap gives textwrap's lines, on the texts it takes (most: no word longer than a line)."""
    from threatgraph.report import _wrap_short_words

    rng = random.Random(19)
    words = ["a", "to", "the", "re-use", "x-", "-", "--", "é", "word.", "(T1190)", "AML.T0051;", "\xa0", "\u2003"]
    spaces = [" ", " ", "  ", "\t", "\n", " \n "]
    taken = 0
    for _ in range(20000):
        text = "".join(rng.choice(words) + rng.choice(spaces) for _ in range(rng.randint(0, 60))).rstrip(rng.choice(["", " "]))
        width = rng.randint(8, 100)
        first, rest = " " * rng.randint(0, 6), " " * rng.randint(0, 8)
        got = _wrap_short_words(text, width, first, rest)
        if got is not None:
            taken += 1
            assert got == textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest), (text, width)
    assert taken > 15000
