"""Renderers of the finding graph: table, JSON, Markdown, Turtle. All read :mod:`threatgraph.analysis.findings`."""

from __future__ import annotations

import json
import os
import re
import textwrap
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import accumulate
from operator import add, attrgetter
from typing import Any, Protocol, cast

from threatgraph import __version__, sanitize
from threatgraph.analysis.findings import BASELINE_RULES, Finding, RiskFactorView, TechniqueView
from threatgraph.analysis.paths import PathRecord, PathView, read_paths
from threatgraph.analysis.risk import BASE_LIKELIHOOD
from threatgraph.analysis.rules import SEVERITIES, Rule
from threatgraph.export.context import DeclaredThreat, capec_summary, declared_threats, undeclared
from threatgraph.sanitize import terminal_columns
from threatgraph.store import Store
from threatgraph.terms import graph_iri

FORMATS: tuple[str, ...] = (
    "table", "json", "markdown", "turtle",
    # issue 7 exports (threatgraph.export)
    "sarif", "html", "csv", "navigator-enterprise", "navigator-atlas", "dot", "mermaid",
    # issue 12: findings written back into the team's tool (threatgraph.export.writeback)
    "threat-dragon", "otm",
)


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    """Counts of findings per severity.

    >>> summary([])
    {}
    """
    return dict(Counter(map(_SEVERITY, findings)))


_SEVERITY = attrgetter("severity")


def render_table(findings: Sequence[Finding], *, width: int | None = None, remediation: Mapping[str, str] | None = None,
                 triage: Triage | None = None) -> str:
    """The complete listing (``--detail full``) grouped by element, elements by highest residual risk:
    category, threat, level, why.

    The per-element baseline (STRIDE-per-element and LINDDUN tables) is condensed into one line per
    framework; interaction findings follow, each with its explanation, risk, controls, techniques and
    what to do. ``triage``: the :class:`Triage` of ``findings`` with ``remediation``, when the caller has one.
    """
    tri = triage if triage is not None else Triage(findings, remediation)
    width = width or max(80, min(terminal_columns(120), 160))
    wrap = _Wrapper()
    lines: list[str] = []
    cat_w, sev_w = 34, 8
    why_w = max(30, width - cat_w - sev_w - 8)
    indent = " " * (cat_w + sev_w + 6)

    def row(cats: str, sev: str, why: str) -> None:
        wrapped = wrap(why, why_w) or [""]
        cat_lines = wrap(cats, cat_w) or [""]
        for i in range(max(len(wrapped), len(cat_lines))):
            c = cat_lines[i] if i < len(cat_lines) else ""
            s = sev if i == 0 else ""
            w = wrapped[i] if i < len(wrapped) else ""
            lines.append(f"  {c:<{cat_w}}  {s:<{sev_w}}  {w}".rstrip())

    def extras(texts: Sequence[str]) -> None:
        for extra in texts:
            lines.extend(wrap(extra, width, indent, indent + "  "))

    for head, items in tri.groups:
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        lines.append(f"{head.focus_label}{kind}  <{head.focus}>")
        baseline = [f for f in items if f.rule_id in BASELINE_RULES]
        for rule_id in BASELINE_RULES:
            group = [f for f in baseline if f.rule_id == rule_id]
            if not group:
                continue
            fw = "STRIDE" if rule_id == "TG-PE-STRIDE" else "LINDDUN"
            cats = ", ".join(c[1] for f in group for c in f.categories)
            kinds = sorted({e[2] for f in group for e in f.evidence if e[0] == "kind"})
            table = "Microsoft STRIDE-per-element" if fw == "STRIDE" else "LINDDUN per-element"
            row(f"{fw} per element", highest_level(group, tri) if any(map(is_residual, group)) else tri.facts(group[0]).level,
                f"[{rule_id}] {cats} ({table} table: {', '.join(kinds)})")
            seen: dict[str, None] = {}  # the lines of the group, each once, in order
            for f in group:
                seen.update(dict.fromkeys(_derivation_lines(f, tri)))
            extras(list(seen))
        for f in items:
            if f.rule_id in BASELINE_RULES:
                continue
            row(", ".join(f"{c[2]}:{c[1]}" for c in f.categories), tri.facts(f).level, f"[{f.rule_id}] {f.threat}. {f.explanation}")
            extras(_derivation_lines(f, tri))
            do = tri.do(f, n=4)
            if do:
                extras([f"do: {do}"])
        lines.append("")
    counts = level_counts(findings, tri)
    lines.append(
        f"{len(findings)} findings on {len({f.focus for f in findings})} elements: "
        + ", ".join(f"{n} {lv}" for lv, n in counts.items())
    )
    return sanitize.terminal("\n".join(lines) + "\n")  # model text may carry ESC/BEL


_OTHER_SPACE = re.compile(r"[^\S ]")


class _Wrapper:
    """``textwrap.wrap(text, width, initial_indent=…, subsequent_indent=…)``, the same lines, each text
    wrapped once (findings of an element repeat their risk, technique and what-to-do lines), and a text
    that fits on its first line without wrapping (textwrap splits every text into words first: 70 % of
    the full table's time)."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, int, str, str], list[str]] = {}

    def __call__(self, text: str, width: int, initial_indent: str = "", subsequent_indent: str = "") -> list[str]:
        key = (text, width, initial_indent, subsequent_indent)
        hit = self._done.get(key)
        if hit is None:
            if len(text) <= width - len(initial_indent) and not _OTHER_SPACE.search(text):
                # one line: textwrap keeps the text and drops its trailing spaces (only spaces: no tab
                # to expand, no other whitespace to turn into spaces or to drop as a chunk)
                body = text.rstrip(" ")
                hit = [initial_indent + body] if body else []
            else:
                hit = _wrap_short_words(text, width, initial_indent, subsequent_indent)
                if hit is None:
                    hit = textwrap.wrap(text, width, initial_indent=initial_indent, subsequent_indent=subsequent_indent)
            self._done[key] = hit
        return list(hit)


_SPLITTER = textwrap.TextWrapper()
"""Splits a text into textwrap's chunks (the defaults of ``textwrap.wrap``; the width plays no part)."""


def _wrap_short_words(text: str, width: int, initial_indent: str, subsequent_indent: str) -> list[str] | None:
    """``textwrap.wrap`` (default options) of a text none of whose chunks is too long for a line; None for
    any other text (a long word is broken by textwrap's own rules). textwrap's lines are greedy: each takes
    the chunks that fit, less the whitespace chunks it starts (after the first line) or ends with; the
    chunks that fit are found by bisecting their running lengths instead of one chunk at a time (70 % of
    the full table's time at 10 k elements was textwrap's chunk loop)."""
    chunks = _SPLITTER._split_chunks(text)
    if width <= 0 or not chunks:
        return None
    lens = list(map(len, chunks))
    if max(lens) > min(width - len(initial_indent), width - len(subsequent_indent)):
        return None
    ends = list(accumulate(lens, initial=0))
    lines: list[str] = []
    i, n = 0, len(chunks)
    while i < n:
        indent = subsequent_indent if lines else initial_indent
        if lines and chunks[i].strip() == "":
            i += 1
            if i == n:
                break
        j = bisect_right(ends, ends[i] + width - len(indent)) - 1  # chunks[i:j] fit, chunks[j] does not
        end = j - 1 if chunks[j - 1].strip() == "" else j
        if end > i:
            lines.append(indent + "".join(chunks[i:end]))
        i = j
    return lines


def risk_text(f: Finding) -> str:
    """One line explaining a finding's risk score: the score, and every factor with its value and effect.

    >>> from threatgraph.analysis.findings import RiskFactorView
    >>> f = Finding("f", "R", "t", "high", "e", "E", "Process", "x", "s", likelihood=3, impact=4, risk_score=12,
    ...             risk_level="high", risk_factors=[RiskFactorView("impact", "criticality", "4", 4),
    ...                                              RiskFactorView("likelihood", "exposure", "publicly exposed", 1, "API")])
    >>> risk_text(f)
    'risk 12 (high) = likelihood 3 × impact 4; likelihood: base 2, +1 exposure (publicly exposed: API); impact: criticality 4'
    """
    return _risk_text(f, f.level, f.level_capped)


def _risk_text(f: Finding, level: str, capped: bool) -> str:
    """:func:`risk_text` with the finding's :attr:`Finding.level` and :attr:`Finding.level_capped` known."""
    return _risk_with(f, _factors_text(f.risk_factors), level, capped)


def _factors_text(factors: Sequence[RiskFactorView]) -> str:
    """The part of :func:`risk_text` that the risk factors alone make (``likelihood: …; impact: …``)."""
    lik = [f"base {BASE_LIKELIHOOD}"] + [
        f"{r.effect:+d} {r.name} ({r.value}{': ' + r.subject if r.subject else ''})" for r in factors if r.of == "likelihood"
    ]
    imp = [f"{r.name} {r.value}" + (f" [{r.subject}]" if r.subject and r.subject not in r.value and r.name != "criticality" else "")
           for r in factors if r.of == "impact"]
    return f"likelihood: {', '.join(lik)}; impact: {'; '.join(imp) or 'default'}"


def _risk_with(f: Finding, factors: str, level: str, capped: bool) -> str:
    """:func:`_risk_text` with the :func:`_factors_text` of the finding's factors known."""
    cap = ((f"; level {level}: mitigated by the declared fact {', '.join(f.mitigated_by)}, capped at the rule's severity"
            if f.mitigated_by else f"; level {level}: capped one step above the rule's severity ({f.severity})")
           if capped else "")
    return f"risk {f.risk_score} ({f.risk_level}) = likelihood {f.likelihood} × impact {f.impact}; {factors}{cap}"


def technique_text(t: TechniqueView) -> str:
    """One line for a technique applied to a finding: status, why it applies, what mitigates and detects it."""
    head = f"{t.id}" + (f" {t.label}" if t.label else "") + f" [{t.status}]"
    if t.replaces:
        head += f" (replaces revoked {t.replaces})"
    parts = [head]
    if t.unresolved:
        parts.append(t.unresolved)
    if t.asset_types:
        parts.append("targets " + ", ".join(t.asset_types))
    if t.exposures:
        parts.append("exposed: " + ", ".join(f"{a} on {s}" for s, a in t.exposures))
    if t.reduced_by:
        parts.append("reduced: " + ", ".join(f"{a} on {s}" for s, a in t.reduced_by))
    if t.maturity:
        parts.append(f"maturity {t.maturity}")
    if t.implemented:
        parts.append("implemented: " + ", ".join(f"{m} by {c}" for m, c in t.implemented))
    missing = t.missing
    if missing:
        parts.append("missing mitigations: " + ", ".join(m for m, _ in missing))
    if t.countermeasures:
        shown = ", ".join(c[0] for c in t.countermeasures[:6])
        more = f" +{len(t.countermeasures) - 6}" if len(t.countermeasures) > 6 else ""
        parts.append(f"D3FEND: {shown}{more}")
    if t.detections:
        ids = sorted({d[0] for d in t.detections})
        parts.append("detect: " + ", ".join(ids[:4]) + (f" +{len(ids) - 4}" if len(ids) > 4 else ""))
    if t.sources:
        parts.append("mapping: " + "; ".join(t.sources[:2]))
    return "; ".join(parts)


def derivation_lines(f: Finding) -> list[str]:
    """The second-stage lines of a finding in the table: risk, controls, techniques."""
    return _derivation_lines(f, Triage([f]))


def _derivation_lines(f: Finding, tri: Triage) -> list[str]:
    x = tri.facts(f)
    out: list[str] = []
    if f.risk_score and x.own_score:
        out.append(risk_text(f))
    elif f.risk_score:  # a baseline finding without techniques: its element's context, not its level
        out.append("element context, not this finding's level (no technique realises it): "
                   + risk_text(f).split(" = ", 1)[1])
    if f.control_status:
        ctl = f"controls: {f.control_status}"
        if f.covered_by:
            ctl += " (category covered by " + ", ".join(f.covered_by) + ")"
        if f.mitigated_by:
            ctl += " (by the declared fact " + ", ".join(f.mitigated_by) + ")"
        if f.techniques:
            ctl += f"; {len(x.residual_techniques)} of {len(f.techniques)} techniques residual"
        out.append(ctl)
    out.extend(tri.technique_line(t) for t in f.techniques)
    return out


def render_paths(paths: Sequence[PathView], note: str = "") -> str:
    """Attack paths as text: one line per path, then one line per hop with its techniques (``note``: their
    status when they are unresolved, :func:`unresolved_note`)."""
    if not paths:
        return ""
    lines = [f"Attack paths ({len(paths)}): external entities / untrusted sources to critical assets"
             + (f"; techniques {note}" if note else ""), ""]
    for pv in paths:
        lines.append(f"{pv.start_label} ⇒ {pv.target_label}: {pv.length} hops, {pv.crossings} trust-boundary crossings")
        for i, h in enumerate(pv.hops, 1):
            cross = " [crosses boundary]" if h.crosses_boundary else ""
            tech = (": " + ", ".join(h.techniques[:8]) + (f" +{len(h.techniques) - 8}" if len(h.techniques) > 8 else "")) if h.techniques else ""
            lines.append(f"  {i}. via {h.flow_label}{cross} → {h.element_label}{tech}")
        lines.append("")
    return sanitize.terminal("\n".join(lines) + "\n")  # model text may carry ESC/BEL


def technique_json(t: TechniqueView) -> dict[str, object]:
    """JSON form of a technique application."""
    return _technique_json(t, t.missing)


def _technique_json(t: TechniqueView, missing: Sequence[tuple[str, str]]) -> dict[str, object]:
    return {
        "id": t.id, "iri": t.iri, "label": t.label, "status": t.status, "release": t.release or None,
        **({"unresolved": t.unresolved} if t.unresolved else {}),
        "replaces": t.replaces or None, "mapping": t.mapping, "assetTypes": t.asset_types,
        "justification": t.justification, "sources": t.sources,
        "exposure": [{"element": s, "attribute": a} for s, a in t.exposures],
        "reducedBy": [{"element": s, "attribute": a} for s, a in t.reduced_by],
        "maturity": t.maturity or None,
        "mitigations": [{"id": m, "label": lab} for m, lab in t.mitigations],
        "implemented": [{"mitigation": m, "controls": c} for m, c in t.implemented],
        "missingMitigations": [m for m, _ in missing],
        "countermeasures": [{"id": c, "label": lab, "inferredVia": why} for c, lab, why in t.countermeasures],
        "detections": [{"id": d, "label": lab} for d, lab in t.detections],
    }


_VIEW_SCALARS = attrgetter("id", "iri", "label", "status", "release", "unresolved", "replaces", "mapping",
                           "justification", "maturity")
_VIEW_LISTS = attrgetter("asset_types", "sources", "exposures", "reduced_by", "mitigations", "implemented",
                         "countermeasures", "detections")
"""The fields of a technique view (:class:`TechniqueView` but its categories, which no report shows as
part of the application): its scalar fields and its list fields, read in one call each."""

_FACTOR = attrgetter("of", "name", "value", "effect", "subject")
"""The fields of a :class:`RiskFactorView` as a tuple."""


class TechniqueEncoder:
    """The JSON text of technique applications (:func:`technique_json`, one line), each distinct content
    encoded once: the findings an application realises, and the applications of one technique, repeat the
    same text (``findings_of`` shares a view among the findings of one application and category list;
    at 1 k elements 17.7 k views, 7.5 k view objects, 3.6 k distinct contents; at 10 k 178 k views, 74 k
    objects, 35 k distinct; 112 distinct mitigation, countermeasure and detection lists). ``missing``: the applicable mitigations no
    control implements of a view (:attr:`TechniqueView.missing`).

    Each distinct content has a *token* (:meth:`token`, numbered from 0): what a report derives from a
    finding's techniques alone (their text, what to do, why) is kept by the tuple of their tokens
    (:meth:`Triage.tokens`)."""

    def __init__(self, missing: Callable[[TechniqueView], list[tuple[str, str]]] | None = None) -> None:
        self._missing = missing or _missing
        self.ids: dict[int, int] = {}
        """``id`` of a view → its token (:meth:`token`; read by :meth:`Triage.tokens` without a call per view)."""
        self._held: list[TechniqueView] = []  # the views numbered by identity: their ids stay theirs
        self._tokens: dict[tuple[object, ...], int] = {}
        self.views: list[TechniqueView] = []
        """The first view of each token (the others have the same content)."""
        self._keys: list[tuple[object, ...]] = []
        self._texts: list[str | None] = []
        # the parts of a text that views of one technique, or of one mapping, share (encoded once each)
        self._heads: dict[tuple[object, ...], str] = {}
        self._mids: dict[tuple[object, ...], str] = {}
        self._tails: dict[tuple[object, ...], str] = {}
        self._lists: dict[tuple[str, tuple[object, ...]], str] = {}

    def token(self, t: TechniqueView) -> int:
        """The number of the content of ``t`` (the same for every view with the same content): kept by the
        view's identity (the findings of an application and categories share one view, ``findings_of``; no
        reader changes a view), its content compared once per view object."""
        tok = self.ids.get(id(t))
        if tok is None:
            key = _VIEW_SCALARS(t) + tuple(map(tuple, _VIEW_LISTS(t)))
            tok = self._tokens.get(key)
            if tok is None:
                tok = self._tokens[key] = len(self.views)
                self.views.append(t)
                self._keys.append(key)
                self._texts.append(None)
            self.ids[id(t)] = tok
            self._held.append(t)
        return tok

    def text(self, tok: int, keep: bool = True) -> str:
        """The text of token ``tok`` (encoded when first asked for: a table asks for none); ``keep``: kept
        for the next call (a caller that keeps it in another form, as the JSON report's UTF-8, says no)."""
        text = self._texts[tok]
        if text is None:
            text = self._encode(self.views[tok], self._keys[tok])
            if keep:
                self._texts[tok] = text
        return text

    def __call__(self, t: TechniqueView) -> str:
        return self.text(self.token(t))

    def __len__(self) -> int:
        """How many distinct contents have a token."""
        return len(self.views)

    def _list(self, name: str, items: tuple[tuple[object, ...], ...]) -> str:
        """The JSON text of one of the view's lists of objects (``name``: its key), each distinct list encoded once."""
        key = (name, items)
        text = self._lists.get(key)
        if text is None:
            text = self._lists[key] = _objects(_VIEW_LIST_KEYS[name], items)
        return text

    def _encode(self, t: TechniqueView, key: tuple[object, ...]) -> str:
        """:func:`_technique_json` of ``t`` (``key``: its content as :meth:`token` read it) encoded: the parts
        written out key by key, each distinct part once (the spec: tests/test_render_fast.py)."""
        # key: id, iri, label, status, release, unresolved, replaces, mapping, justification, maturity (0-9),
        # asset types, sources, exposures, reduced by, mitigations, implemented, countermeasures, detections
        hk = key[0:3]
        head = self._heads.get(hk)
        if head is None:
            head = self._heads[hk] = "".join((
                '{"id": ', _val(t.id), ', "iri": ', _val(t.iri), ', "label": ', _val(t.label), ', "status": '))
        mk = key[4:9] + key[10:12]
        mid = self._mids.get(mk)
        if mid is None:
            mid = self._mids[mk] = "".join((
                ', "release": ', _val(t.release) if t.release else "null",
                ', "unresolved": ' + _val(t.unresolved) if t.unresolved else "",
                ', "replaces": ', _val(t.replaces) if t.replaces else "null", ', "mapping": ', _val(t.mapping),
                ', "assetTypes": ', _strs(t.asset_types), ', "justification": ', _val(t.justification),
                ', "sources": ', _strs(t.sources), ', "exposure": '))
        missing = tuple(self._missing(t))
        tk = (key[9], key[14], key[15], missing, key[16], key[17])
        tail = self._tails.get(tk)
        if tail is None:
            lst = self._list
            tail = self._tails[tk] = "".join((
                ', "maturity": ', _val(t.maturity) if t.maturity else "null",
                ', "mitigations": ', lst("mitigations", key[14]),  # type: ignore[arg-type]
                ', "implemented": ', lst("implemented", key[15]),  # type: ignore[arg-type]
                ', "missingMitigations": ', _strs([m for m, _ in missing]),
                ', "countermeasures": ', lst("countermeasures", key[16]),  # type: ignore[arg-type]
                ', "detections": ', lst("detections", key[17]), "}"))  # type: ignore[arg-type]
        return "".join((head, _val(t.status), mid, self._list("exposure", key[12]),  # type: ignore[arg-type]
                        ', "reducedBy": ', self._list("reducedBy", key[13]), tail))  # type: ignore[arg-type]


def finding_derivation_json(f: Finding) -> dict[str, object]:
    """JSON keys the second stage adds to a finding."""
    return {
        **_risk_json(f, facts_of(f)),
        "techniques": [technique_json(t) for t in f.techniques],
        "residualTechniques": [t.id for t in f.residual_techniques],
    }


def _risk_json(f: Finding, x: Facts) -> dict[str, object]:
    """The keys of :func:`finding_derivation_json` before the techniques."""
    return {
        "controlStatus": f.control_status or None,
        "coveredBy": f.covered_by,
        **({"mitigatedBy": f.mitigated_by} if f.mitigated_by else {}),
        "risk": {
            "likelihood": f.likelihood, "impact": f.impact, "score": f.risk_score, "level": f.risk_level,
            **({"levelCappedAt": x.level} if x.level_capped else {}),
            "explanation": risk_text(f),
            "factors": [{"of": r.of, "name": r.name, "value": r.value, "effect": r.effect, "subject": r.subject}
                        for r in f.risk_factors],
        } if f.risk_score else None,
    }


def paths_json(paths: Sequence[PathView]) -> list[dict[str, object]]:
    """JSON form of attack paths."""
    return [
        {"start": {"iri": p.start, "label": p.start_label}, "target": {"iri": p.target, "label": p.target_label},
         "length": p.length, "boundaryCrossings": p.crossings,
         "hops": [{"flow": h.flow, "flowLabel": h.flow_label, "element": h.element, "elementLabel": h.element_label,
                   "crossesBoundary": h.crosses_boundary, "techniques": h.techniques} for h in p.hops]}
        for p in paths
    ]


def findings_json(
    findings: Sequence[Finding],
    *,
    model_files: Sequence[str] = (),
    warnings: Sequence[str] = (),
    paths: Sequence[PathView] = (),
    releases: dict[str, str] | None = None,
    remediation: Mapping[str, str] | None = None,
    out_of_scope: Sequence[tuple[str, str, str]] = (),
) -> str:
    """JSON document: tool, model files, warnings, summary, and every finding with its evidence,
    techniques, controls and risk; attack paths and the knowledge releases read (when any).

    Each finding has ``level`` (the one user-facing scale, :attr:`Finding.level`) and ``severity`` (the
    rule's inherent one); ``ranking`` lists the residual findings above info, highest residual risk
    first (the table's top list is its head); ``topMitigations`` the missing mitigations that would
    address the most residual findings."""
    return "".join(findings_json_chunks(findings, model_files=model_files, warnings=warnings, paths=paths,
                                        releases=releases, remediation=remediation, out_of_scope=out_of_scope))


def findings_json_chunks(
    findings: Sequence[Finding],
    *,
    model_files: Sequence[str] = (),
    warnings: Sequence[str] = (),
    paths: Sequence[PathView] = (),
    releases: dict[str, str] | None = None,
    remediation: Mapping[str, str] | None = None,
    out_of_scope: Sequence[tuple[str, str, str]] = (),
    triage: Triage | None = None,
) -> JsonChunks:
    """:func:`findings_json` as pieces whose concatenation is the document, made as they are taken: a
    writer taking them one after another never holds the report (at 10 k elements 120 M characters,
    twice that as one string with a non-ASCII character, plus its UTF-8 encoding when written whole),
    and no finding is held as a dict with the others. A technique application shared by several
    findings is encoded once. ``triage``: the :class:`Triage` of ``findings`` with ``remediation``, when
    the caller has one."""
    tri = triage if triage is not None else Triage(findings, remediation)
    rem = tri.remediation
    tri.number()  # the findings' techniques numbered: what to do is then kept by them (Triage.do)
    facts, why, do = tri.facts, tri._why_of, tri._do_of
    mids: dict[tuple[str, str, int], str] = {}
    tails: dict[str, str] = {}

    def rank(i: int, f: Finding) -> str:
        """``_dumps`` of the ranking entry of ``f``, written out key by key."""
        x = facts(f)
        # the texts findings share (threat, level, what to do: kept strings, their hashes kept) encoded once each
        threat = threat_text(f) if f.rule_id in BASELINE_RULES else f.threat
        mid = mids.get((threat, x.level, x.own_score))
        if mid is None:
            mid = mids[(threat, x.level, x.own_score)] = (
                f', "threat": {_str(threat)}, "level": {_str(x.level)}, '
                f'"score": {_num(x.own_score) if x.own_score else "null"}, "why": ')
        todo = do(f, x)
        tail = tails.get(todo)
        if tail is None:
            tail = tails[todo] = f', "do": {_str(todo)}}}'
        return f'{{"rank": {i}, "finding": {_str(f.iri)}, "element": {_str(f.focus_label)}{mid}{_str(why(f, x))}{tail}'

    eager: dict[str, list[str]] = {
        "ranking": [rank(i, f) for i, f in enumerate(tri.ranking, 1)],
        "topMitigations": [
            _dumps({"id": p.id, "name": p.label, "findings": len(p.findings), "techniques": sorted(p.techniques),
                    "elements": p.elements})
            for p in tri.plans
        ],
        "outOfScope": [_dumps({"iri": e, "label": label, "reason": why or None}) for e, label, why in out_of_scope],
        "attackPaths": [_dumps(p) for p in paths_json(paths)],
    }
    doc = {
        "tool": {"name": "threatgraph", "version": __version__},
        "models": list(model_files),
        "warnings": list(warnings),
        "summary": summary(tri.findings),
        "levels": level_counts(tri.findings, tri),
        "ranking": None,
        "topMitigations": None,
        "findings": None,
        "releases": dict(releases or {}),
        # the findings' techniques all have a token: their contents say whether any is unresolved
        **({"techniqueStatus": note} if (note := unresolved_note(tri.findings) if any(
            t.unresolved for t in tri.encoder.views) else "") else {}),
        "outOfScope": None,
        "attackPaths": None,
    }

    def make(utf8: bool, errors: str = "strict") -> Iterator[Any]:
        """The pieces, as text or (``utf8``) as its UTF-8 encoding (``errors``: the codec's error handler)."""
        # the parts many findings share (an element, its categories, evidence, risk, techniques) encoded once
        # each (as UTF-8 when utf8: then each is encoded once, not once per finding)
        enc: Callable[[str], Any] = _encoder(errors) if utf8 else _same
        heads: dict[tuple[object, ...], Any] = {}
        elements: dict[tuple[object, ...], Any] = {}
        categories: dict[tuple[object, ...], Any] = {}
        evidences: dict[tuple[object, ...], Any] = {}
        sources: dict[tuple[object, ...], Any] = {}
        techniques: dict[tuple[int, ...], tuple[Any, ...]] = {}
        texts: dict[int, Any] = {}  # the technique texts as given (each once: not joined per list of techniques)
        evidence_items: dict[tuple[object, ...], str] = {}
        factor_items: dict[tuple[object, ...], str] = {}
        factor_texts: dict[int, tuple[str, str]] = {}
        risks: dict[tuple[object, ...], Any] = {}
        text = tri.encoder.text
        facts = tri.facts
        known = tri._facts.get
        tokens = tri.tokens
        factor_token = tri.factor_token
        start, null, comma = enc('{"id": '), enc("null"), enc(", ")
        opening = enc(', "techniques": [')
        last_element: tuple[object, ...] = ()
        element: Any = None

        def technique(tok: int) -> Any:
            got = texts.get(tok)
            if got is None:
                got = texts[tok] = enc(text(tok, not utf8))
            return got

        def finding(f: Finding) -> tuple[Any, ...]:
            """The pieces of ``_dumps`` of the finding's dict (the keys of ``finding_derivation_json`` after its
            own), written out key by key with the shared parts reused (the spec: tests/test_render_fast.py)."""
            x = known(id(f))  # every finding of the triage has its facts (Triage.number)
            if x is None:
                x = facts(f)
            toks = x.toks
            if toks is None:
                toks = tokens(f)
            level = x.level
            # what to do is the rule's and the techniques' (Triage.do): the key names it without making it
            key: tuple[object, ...] = (f.rule_id, f.threat, level, f.severity, toks)
            head = heads.get(key)  # from the rule to the element: the rule's findings alike share it
            if head is None:
                do = tri._do_of(f, x)
                remedy = rem.get(f.rule_id)
                head = heads[key] = enc("".join((
                    ', "rule": ', _val(f.rule_id), ', "threat": ', _val(f.threat), ', "level": ', _val(level),
                    ', "severity": ', _val(f.severity), ', "remediation": ', _val(remedy) if remedy else "null",
                    ', "do": ', _val(do) if do else "null", ', "element": ',
                )))
            nonlocal last_element, element
            key = (f.focus, f.focus_label, f.focus_kind)
            if key != last_element:  # the findings of an element mostly follow one another
                element = elements.get(key)
                if element is None:
                    element = elements[key] = enc(_objects(_ELEMENT_KEYS, (key,))[1:-1] + ', "categories": ')
                last_element = key
            key = tuple(map(id, f.categories))  # shared objects (held by the findings): by identity
            cats = categories.get(key)
            if cats is None:
                cats = categories[key] = enc(_objects(_CATEGORY_KEYS, f.categories) + ', "explanation": ')
            key = tuple(map(id, f.evidence))  # the items are shared objects (held by the findings): by identity
            evidence = evidences.get(key)
            if evidence is None:
                evidence = evidences[key] = enc(', "evidence": ' + _list_of(_EVIDENCE_KEYS, f.evidence, evidence_items))
            mitigated = tuple(f.mitigated_by)
            key = (f.source, f.control_status, tuple(f.covered_by), mitigated)
            source = sources.get(key)
            if source is None:
                source = sources[key] = enc("".join((
                    ', "source": ', _val(f.source),
                    ', "controlStatus": ', _val(f.control_status) if f.control_status else "null",
                    ', "coveredBy": ', _strs(f.covered_by),
                    ', "mitigatedBy": ' + _strs(f.mitigated_by) if f.mitigated_by else "", ', "risk": ',
                )))
            score = f.risk_score
            if score:
                # the findings of an element share its risk factors, and most their score
                factor = x.factor if x.factor >= 0 else factor_token(f)
                key = (f.likelihood, f.impact, score, f.risk_level, level, x.level_capped, f.severity, mitigated, factor)
                risk = risks.get(key)
                if risk is None:
                    texts = factor_texts.get(factor)  # the factors' part of the explanation, and their list
                    if texts is None:
                        texts = factor_texts[factor] = (_factors_text(f.risk_factors), _list_of(
                            _FACTOR_KEYS, tuple(map(_FACTOR, f.risk_factors)), factor_items))
                    risk = risks[key] = enc(
                        f'{{"likelihood": {_num(f.likelihood)}, "impact": {_num(f.impact)}, "score": {_num(score)}, '
                        f'"level": {_str(f.risk_level)}, '
                        + (f'"levelCappedAt": {_str(level)}, ' if x.level_capped else "")
                        + f'"explanation": {_str(_risk_with(f, texts[0], level, x.level_capped))}, "factors": '
                        + texts[1] + "}")
            else:
                risk = null
            # the techniques' texts are shared by the findings they realise: their pieces, not a copy
            techs = techniques.get(toks)
            if techs is None:
                pieces: list[Any] = [opening]
                for k in toks:
                    pieces += (technique(k), comma)
                if toks:
                    pieces.pop()  # the comma after the last
                pieces.append(enc('], "residualTechniques": ' + _strs([t.id for t in x.residual_techniques]) + "}"))
                techs = techniques[toks] = tuple(pieces)
            return (start, enc(_str(f.iri)), head, element, cats, enc(_str(f.explanation)), evidence, source, risk,
                    *techs)

        lines: dict[str, tuple[bool, Iterable[Any]]] = {key: (bool(items), items) for key, items in eager.items()}
        lines["findings"] = (bool(tri.findings), map(finding, tri.findings))  # one at a time
        return _one_per_line_any(doc, lines, utf8, errors)

    return JsonChunks(make)


class JsonChunks:
    """The pieces of a JSON report (:func:`findings_json_chunks`), made as they are taken: iterated, its
    text; :meth:`utf8`, its UTF-8 encoding, in which the parts findings share are encoded once each, not
    once per finding (:func:`threatgraph.commands._output.write_output` writes those)."""

    def __init__(self, make: Callable[[bool, str], Iterator[Any]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[str]:
        return self._make(False, "strict")

    def utf8(self, errors: str = "strict") -> Iterator[bytes]:
        """The pieces encoded as UTF-8 (their concatenation is the text's encoding; ``errors``: the codec's
        error handler, e.g. a text stream's ``errors``: the standard handlers encode each character alone, so
        the pieces' encodings joined are the text's)."""
        return self._make(True, errors)


def _same(text: str) -> str:
    return text


def _encoder(errors: str) -> Callable[[str], bytes]:
    """UTF-8 encoding with the error handler ``errors``."""
    if errors == "strict":
        return str.encode
    return lambda text: text.encode("utf-8", errors)


_str: Callable[[str], str] = json.encoder.encode_basestring
"""A string as ``json.dumps(text, ensure_ascii=False)`` writes it (json's C function, when built)."""


def _val(value: object) -> str:
    """A value as ``json.dumps(value, ensure_ascii=False)`` writes it (a string by json's C function, an
    int as its digits, None as null)."""
    kind = type(value)
    if kind is str:
        return _str(value)  # type: ignore[arg-type]
    if kind is int:
        return int.__repr__(value)
    return "null" if value is None else _dumps(value)


def _objects(keys: Sequence[str], items: Iterable[Sequence[object]]) -> str:
    """``json.dumps([dict(zip(names, item)) for item in items], ensure_ascii=False)`` written out (``keys``:
    the JSON text of each distinct name with ``": "``, e.g. :data:`_EVIDENCE_KEYS`)."""
    out = []
    for item in items:
        if len(item) != len(keys):
            raise ValueError(f"{len(keys)} values expected, not {len(item)}: {item!r}")
        try:
            values = list(map(_str, item))  # type: ignore[arg-type]  # strings: json's C function alone
        except TypeError:
            values = list(map(_val, item))
        out.append("{" + ", ".join(map(add, keys, values)) + "}")
    return "[" + ", ".join(out) + "]"


def _list_of(keys: Sequence[str], items: Iterable[tuple[object, ...]], done: dict[tuple[object, ...], str]) -> str:
    """:func:`_objects` with the text of each item kept in ``done`` (one ``done`` per ``keys``)."""
    texts = []
    for item in items:
        text = done.get(item)
        if text is None:
            text = done[item] = _objects(keys, (item,))[1:-1]
        texts.append(text)
    return "[" + ", ".join(texts) + "]"


def _keys(*names: str) -> tuple[str, ...]:
    """The texts that start the members ``names`` of a JSON object (:func:`_objects`)."""
    return tuple(_str(n) + ": " for n in names)


_ELEMENT_KEYS = _keys("iri", "label", "kind")
_CATEGORY_KEYS = _keys("iri", "label", "framework")
_EVIDENCE_KEYS = _keys("role", "value", "label")
_FACTOR_KEYS = _keys("of", "name", "value", "effect", "subject")
_VIEW_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "exposure": _keys("element", "attribute"), "reducedBy": _keys("element", "attribute"),
    "mitigations": _keys("id", "label"), "implemented": _keys("mitigation", "controls"),
    "countermeasures": _keys("id", "label", "inferredVia"), "detections": _keys("id", "label"),
}
"""The member names of the objects each list of :func:`technique_json` holds, one per item's tuple element."""


def _strs(texts: Sequence[str]) -> str:
    """A list of strings as ``json.dumps(texts, ensure_ascii=False)`` writes it."""
    return "[" + ", ".join(map(_str, texts)) + "]" if all(type(t) is str for t in texts) else _dumps(texts)


def _num(value: object) -> str:
    """A number as ``json.dumps`` writes it (an int as its decimal digits, as json does)."""
    return str(value) if type(value) is int else _dumps(value)


_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(item, ensure_ascii=False)`` without making an encoder per call (json.dumps makes one
whenever an option differs from its defaults)."""


def _dumps(item: object) -> str:
    """One line of JSON (json's C encoder: it runs only without indentation)."""
    return _ENCODE(item)


def dumps_one_per_line(doc: Mapping[str, object], keys: Sequence[str]) -> str:
    """``doc`` as JSON indented by two spaces, except that each item of the lists under ``keys`` is one
    line (a finding per line: readable, grep- and diff-friendly, and written by json's C encoder, which
    only runs without indentation: 0.15 s -> 0.04 s for the 2.5 MB report of the RAG example with
    knowledge, 4.2 s -> 0.9 s for the 100 k findings of the 10 k-element benchmark model).

    >>> print(dumps_one_per_line({"a": 1, "items": [{"x": 1}, {"x": 2}], "none": []}, ("items", "none")), end="")
    {
      "a": 1,
      "items": [
        {"x": 1},
        {"x": 2}
      ],
      "none": []
    }
    """
    lines: dict[str, tuple[bool, Iterable[_Line]]] = {}
    for key in keys:
        items = doc.get(key)
        if isinstance(items, list) and items:
            lines[key] = (True, (_dumps(item) for item in items))
    return "".join(_one_per_line(doc, lines))


_Line = str | tuple[str, ...]
"""A line of :func:`_one_per_line`: its text, or the pieces of its text (a finding's shared parts are not
copied into a string of their own before they are copied into the batch)."""

_BATCH = 1 << 18
"""Characters of items joined into one piece of :func:`_one_per_line` (a few writes per megabyte)."""


def _one_per_line(doc: Mapping[str, object], lines: Mapping[str, tuple[bool, Iterable[_Line]]]) -> Iterator[str]:
    """The pieces of ``doc`` indented by two spaces, with the list under each key of ``lines`` ((whether
    it has items, its items' lines)) written one item per line (an empty one as ``[]``); ``doc`` holds
    each such key (any value) at its place. The items are taken as the pieces are; an item is its line,
    or a tuple of the pieces of its line."""
    return _one_per_line_any(doc, lines, False)


def _one_per_line_any(doc: Mapping[str, object], lines: Mapping[str, tuple[bool, Iterable[Any]]],
                      utf8: bool, errors: str = "strict") -> Iterator[Any]:
    """:func:`_one_per_line`; with ``utf8``, the pieces as UTF-8 (an item's pieces given encoded, an item
    given as one text encoded here; ``errors``: the codec's error handler)."""
    enc: Callable[[str], Any] = _encoder(errors) if utf8 else _same
    join: Callable[[list[Any]], Any] = b"".join if utf8 else "".join
    sep = enc(",\n    ")
    token = os.urandom(16).hex()  # a placeholder no input can spell
    outer: dict[str, object] = dict(doc)
    parts: dict[str, Iterable[Any]] = {}
    for key, (nonempty, items) in lines.items():
        if not nonempty:
            outer[key] = []
            continue
        mark = f"{token}-{key}"
        outer[key] = mark
        parts[json.dumps(mark)] = items
    text = json.dumps(outer, indent=2, ensure_ascii=False)
    # pieces, joined once by the caller or written one by one (a replace per key, then + "\n", copied
    # the whole report each time: at 10 k elements ~0.3 GB of peak memory)
    pos = 0
    for mark in sorted(parts, key=text.index):
        at = text.index(mark, pos)
        yield enc(text[pos:at])
        # the items in batches: one piece per item and separator made a write call each (4 per finding)
        batch = [enc("[\n    ")]
        size = 0
        for item in parts.pop(mark):
            if size >= _BATCH:
                yield join(batch)
                batch.clear()
                size = 0
            if type(item) is str:
                item = enc(item)
                batch.append(item)
                size += len(item)
            else:  # a line's pieces: joined once, with the batch
                batch += item
                size += sum(map(len, item))
            batch.append(sep)
        batch[-1] = enc("\n  ]")
        yield join(batch)
        pos = at + len(mark)
    yield enc(text[pos:])
    yield enc("\n")


def _md(text: str) -> str:
    return sanitize.markdown(text)


def render_turtle(store: Store) -> str:
    """The finding graph itself, as Turtle."""
    return store.dump(graph_iri("findings"), "text/turtle").decode("utf-8")


# ---------------------------------------------------------------------------------------------------
# Triage (issue 15): the summary first, elements by highest residual risk, baseline folded, techniques
# capped, what to do. One ordering (:func:`rank_key`) serves the table, the JSON ranking and Markdown.

DETAILS: tuple[str, ...] = ("summary", "normal", "full")
"""``--detail``: the summary only; the summary and one compact block per element; the complete listing."""
TOP_RISKS = 10
TOP_MITIGATIONS = 5
TECHNIQUE_CAP = 3
LEVEL_ORDER: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
_MATURITY_RANK = {"realized": 3, "demonstrated": 2, "feasible": 1}


class AnalysisLike(Protocol):
    """What the renderers need of an analysis (:class:`threatgraph.analysis.engine.Analysis`)."""

    store: Store
    rules: list[Rule]
    model_files: list[str]
    warnings: list[str]
    releases: dict[str, str]
    paths: list[PathRecord] | None
    """The attack paths the analysis wrote (None: read them from the store's finding graph)."""


def own_score(f: Finding) -> int:
    """The risk score that belongs to the finding itself (0 for a baseline finding without techniques,
    whose stored score is its element's context; see :attr:`Finding.level`)."""
    return _own_score(f, f.level, f.level_capped)


def _own_score(f: Finding, level: str, capped: bool) -> int:
    return f.risk_score if f.risk_level and (level == f.risk_level or capped) and (f.techniques or not f.baseline) else 0


def is_residual(f: Finding) -> bool:
    """Not fully mitigated by declared controls."""
    return f.control_status != "mitigated"


@dataclass(slots=True)
class Facts:
    """What the renderers derive from one finding, computed once (:class:`Triage`): :attr:`Finding.level`
    is a property that a report read ~12 times per finding, :attr:`Finding.residual_techniques` builds a
    list per read."""

    f: Finding
    """The finding (kept, so that its ``id`` is not reused while a :class:`Triage` holds its facts)."""
    level: str
    level_rank: int
    level_capped: bool
    own_score: int
    residual: bool
    residual_techniques: list[TechniqueView]
    key: tuple[object, ...]
    """:func:`rank_key`."""
    toks: tuple[int, ...] | None = None
    """:meth:`Triage.tokens` (None until numbered)."""
    factor: int = -1
    """:meth:`Triage.factor_token` (-1 until numbered)."""


_LEVEL_RANK = {name: i for i, name in enumerate(SEVERITIES, 1)}
"""Level name -> rank on the severity scale (1 = info ... 5 = critical; 0 for another name)."""


def facts_of(f: Finding) -> Facts:
    """The :class:`Facts` of ``f``."""
    level = f.level
    risk = f.risk_level
    capped = bool(risk) and level != risk and level == f.level_cap  # Finding.level_capped
    rank = _LEVEL_RANK.get(level, 0)  # Finding.level_rank
    techs = f.techniques
    # _own_score, Finding.residual_techniques, Finding.severity_rank and Finding.category_labels written out
    # (read once per finding of a report: a call each cost as much as the rest)
    own = f.risk_score if risk and (level == risk or capped) and (techs or f.rule_id not in BASELINE_RULES) else 0
    residual = f.control_status != "mitigated"
    res = [t for t in techs if t.status != "mitigated"] if techs else []
    key = (not residual, -rank, -own, -_LEVEL_RANK.get(f.severity, 0), -len(res),
           f.focus_label.lower(), f.focus, f.rule_id, [c[1] for c in f.categories], f.iri)
    return Facts(f, level, rank, capped, own, residual, res, key)


_KEY = attrgetter("key")
_LEVEL = attrgetter("level")
_FINDING = attrgetter("f")


def rank_key(f: Finding) -> tuple[object, ...]:
    """Highest residual risk first: level, own risk score, the rule's severity, residual techniques;
    then element, rule and categories so that the order is the same every run."""
    return facts_of(f).key


def ranking(findings: Sequence[Finding]) -> list[Finding]:
    """The residual findings above info, highest residual risk first (the table's top list is its head)."""
    return Triage(findings).ranking


def level_counts(findings: Sequence[Finding], triage: Triage | None = None) -> dict[str, int]:
    """Findings per user-facing level, highest first (levels without findings left out).

    >>> level_counts([])
    {}
    """
    if triage is not None and findings is triage.findings:
        c = Counter(map(_LEVEL, triage.all_facts))
    else:
        c = Counter(triage.facts(f).level for f in findings) if triage is not None else Counter(f.level for f in findings)
    return {lv: c[lv] for lv in LEVEL_ORDER if c[lv]}


def technique_key(t: TechniqueView) -> tuple[object, ...]:
    """Techniques by risk: unmitigated first, then by maturity (ATT&CK counts as realized), missing mitigations."""
    return _technique_key(t, _missing)


def _technique_key(t: TechniqueView, missing: Callable[[TechniqueView], list[tuple[str, str]]]) -> tuple[object, ...]:
    maturity = _MATURITY_RANK.get(t.maturity, 3 if t.id.startswith("T") else 0)
    return (t.status == "mitigated", t.status == "partly mitigated", -maturity, -len(missing(t)), t.id)


def top_techniques(f: Finding, n: int = TECHNIQUE_CAP) -> tuple[list[TechniqueView], int]:
    """The ``n`` riskiest techniques of ``f`` and how many more there are.

    >>> from threatgraph.analysis.findings import TechniqueView as T
    >>> f = Finding("f", "R", "t", "info", "e", "E", "Process", "x", "s")
    >>> f.techniques = [T("a", "AML.T0001", "", "", status="mitigated"), T("b", "AML.T0002", "", "", maturity="feasible"),
    ...                 T("c", "T1190", "", "")]
    >>> [t.id for t in top_techniques(f, 2)[0]], top_techniques(f, 2)[1]
    (['T1190', 'AML.T0002'], 1)
    """
    ts = sorted(f.techniques, key=technique_key)
    return ts[:n], max(0, len(ts) - n)


def capped_techniques(ts: Sequence[TechniqueView], more: int) -> str:
    """``T1059, AML.T0051 +12 more: Command and Scripting Interpreter; LLM Prompt Injection`` (ids and the
    count first, so that a clipped line keeps them)."""
    names = "; ".join(t.label for t in ts if t.label)
    mark = UNRESOLVED_MARK if any(t.unresolved for t in ts) else ""
    return ", ".join(t.id for t in ts) + (f" +{more} more" if more else "") + mark + (f": {names}" if names else "")


def threat_text(f: Finding) -> str:
    """The threat as a person reads it: the rule's title; for a baseline finding its categories."""
    if f.baseline:
        fw = f.categories[0][2] if f.categories else ("STRIDE" if f.rule_id.endswith("STRIDE") else "LINDDUN")
        return ", ".join(f.category_labels) + f" ({fw})"
    return f.threat


def risk_brief(f: Finding, own: int | None = None) -> str:
    """``risk 12 = likelihood 3 × impact 4 (trust boundary; Personal data)`` or empty without an own score
    (``own``: :func:`own_score` of ``f`` when known)."""
    if not (own_score(f) if own is None else own):
        return ""
    why = [r.name for r in f.risk_factors if r.of == "likelihood" and r.effect > 0]
    imp = next((r for r in f.risk_factors if r.of == "impact"), None)
    if imp is not None:
        why.append(imp.value.split(" (")[0] + " data" if imp.name == "data classification" else f"{imp.name} {imp.value}")
    return f"risk {f.risk_score} = likelihood {f.likelihood} × impact {f.impact}" + (f" ({'; '.join(why)})" if why else "")


def why_text(f: Finding) -> str:
    """One line of why: the techniques that realise a baseline finding, else the rule's explanation; the risk."""
    return _why_text(facts_of(f))


def _why_text(x: Facts, missing: Callable[[TechniqueView], list[tuple[str, str]]] | None = None) -> str:
    f = x.f
    lead = _why_lead(x, missing) if f.baseline and f.techniques else f.explanation.rstrip(".")
    brief = risk_brief(f, x.own_score)
    return lead + (f"; {brief}" if brief else "")


def _why_lead(x: Facts, missing: Callable[[TechniqueView], list[tuple[str, str]]] | None = None) -> str:
    """The start of :func:`why_text` of a baseline finding with techniques: how many residual techniques
    realise it, and the riskiest."""
    f = x.f
    res = x.residual_techniques or f.techniques
    # the first in technique_key order (min keeps the first of equal keys, as sorted does)
    return _lead_text(len(res), min(res, key=technique_key if missing is None else lambda t: _technique_key(t, missing)))


def _lead_text(n: int, t: TechniqueView) -> str:
    """:func:`_why_lead` of ``n`` residual techniques of which ``t`` is the riskiest."""
    return (f"{n} residual technique{'s' if n != 1 else ''} realise it, e.g. {t.id}" + (f" {t.label}" if t.label else "")
            + (UNRESOLVED_MARK if t.unresolved else ""))


def missing_mitigations(f: Finding) -> list[tuple[str, str, int]]:
    """(id, name, residual techniques of ``f`` it covers) of the mitigations still missing, most covering
    first; D3FEND countermeasures only when none of its techniques has an ATT&CK / ATLAS mitigation."""
    return _missing_mitigations(f.residual_techniques, _missing)


def _missing(t: TechniqueView) -> list[tuple[str, str]]:
    return t.missing


def _missing_mitigations(residual: Sequence[TechniqueView],
                         missing: Callable[[TechniqueView], list[tuple[str, str]]]) -> list[tuple[str, str, int]]:
    count: dict[tuple[str, str], int] = {}  # a dict, not a Counter: one per finding (Counter's missing keys cost)
    for t in residual:
        for m in missing(t):
            count[m] = count.get(m, 0) + 1
    if not count and not any(t.mitigations for t in residual):
        for t in residual:
            for c in t.countermeasures:
                k = (c[0], c[1])
                count[k] = count.get(k, 0) + 1
    return [(m, label, n) for (m, label), n in sorted(count.items(), key=lambda kv: (-kv[1], kv[0][0]))]


def mitigation_name(mid: str, label: str) -> str:
    """``Generative AI Guardrails (AML.M0020)``; the id alone when no name is known."""
    return f"{label} ({mid})" if label and label != mid else mid


def do_text(f: Finding, remediation: Mapping[str, str], n: int = 2) -> str:
    """What to do first: with knowledge, the missing mitigations of the techniques that realise ``f``
    (by name, most covering first); then the rule's remediation."""
    return _do_text(f, f.residual_techniques, missing_mitigations(f), remediation, n)


def _do_text(f: Finding, residual: Sequence[TechniqueView], missing: Sequence[tuple[str, str, int]],
             remediation: Mapping[str, str], n: int) -> str:
    parts: list[str] = []
    by_name: dict[str, list[str]] = {}  # ATLAS and ATT&CK may name a mitigation alike (User Training)
    for m, lab, _ in missing:
        by_name.setdefault(lab or m, []).append(m)
    if by_name:
        names = [mitigation_name(", ".join(ids), lab) for lab, ids in by_name.items()]
        more = f" +{len(names) - n} more" if len(names) > n else ""
        parts.append("apply " + ", ".join(names[:n]) + more)
    elif f.techniques and not residual:
        parts.append("keep the declared controls")
    rem = remediation.get(f.rule_id, "").strip()
    if rem:
        parts.append(rem.rstrip("."))
    return "; ".join(parts)


@dataclass
class MitigationPlan:
    """A missing mitigation and the residual findings, techniques and elements it would address."""

    id: str
    label: str
    findings: list[Finding] = field(default_factory=list)
    techniques: set[str] = field(default_factory=set)
    elements: list[str] = field(default_factory=list)
    """Element labels, highest residual risk first."""

    @property
    def name(self) -> str:
        return mitigation_name(self.id, self.label)


def mitigation_plans(findings: Sequence[Finding]) -> list[MitigationPlan]:
    """Missing ATT&CK / ATLAS mitigations ordered by how many residual findings, then techniques, each
    would address (D3FEND countermeasures are listed per finding, not here: each technique has many)."""
    return Triage(findings).plans


def element_groups(findings: Sequence[Finding]) -> list[tuple[Finding, list[Finding]]]:
    """Findings grouped by element; elements by their highest residual risk, findings in rank order."""
    return Triage(findings).groups


def highest_level(items: Sequence[Finding], triage: Triage | None = None) -> str:
    """The highest level among the residual findings (info when none)."""
    facts = triage.facts if triage is not None else facts_of
    best: Facts | None = None
    for f in items:
        x = facts(f)
        if x.residual and (best is None or x.level_rank > best.level_rank):  # the first of the highest, as max()
            best = x
    return best.level if best is not None else "info"


def fold_baseline(items: Sequence[Finding], triage: Triage | None = None) -> str:
    """An element's baseline findings in one line: categories by level, techniques counted.

    >>> fold_baseline([])
    ''
    """
    base = [f for f in items if f.baseline]
    if not base:
        return ""
    tri = triage if triage is not None else Triage(base)
    by_level: dict[str, list[str]] = {}
    for f in sorted(base, key=tri.key):
        x = tri.facts(f)
        by_level.setdefault(x.level, []).extend(c for c in f.category_labels if c not in by_level.get(x.level, []))
    parts = []
    for lv in LEVEL_ORDER:
        cats = by_level.get(lv)
        if cats:
            parts.append(f"{lv} {', '.join(cats)}" if lv != "info" else f"info {len(cats)} categor{'y' if len(cats) == 1 else 'ies'}")
    techs = {t.id for f in base for t in tri.facts(f).residual_techniques}
    return "baseline: " + "; ".join(parts) + (f" ({len(techs)} residual techniques)" if techs else "")


def fold_baseline_groups(items: Sequence[Finding], triage: Triage | None = None) -> list[Finding]:
    """``items`` with the baseline findings of one rule and level merged into one (categories and
    techniques united, the highest own score kept), in rank order."""
    tri = triage if triage is not None else Triage(items)
    groups: dict[tuple[str, str], list[Finding]] = {}
    out: list[Finding] = []
    for f in items:
        if f.baseline:
            groups.setdefault((f.rule_id, tri.facts(f).level), []).append(f)
        else:
            out.append(f)
    for group in groups.values():
        head = min(group, key=tri.key)
        cats = list(dict.fromkeys(c for f in group for c in f.categories))
        techs = list({t.id: t for f in reversed(group) for t in f.techniques}.values())
        out.append(replace(head, categories=cats, techniques=sorted(techs, key=lambda t: (t.status == "mitigated", t.id))))
    return sorted(out, key=tri.key)


class Triage:
    """The findings of one report with what the renderers derive from each finding computed once:
    its :class:`Facts` (level, rank key, residual techniques), what to do, why; the rank order, the
    ranking, the mitigation plans and the element groups sorted once, not once per use (issue 14: at
    1 k elements the JSON report computed :attr:`Finding.level` 56 k times for 4.6 k findings)."""

    def __init__(self, findings: Sequence[Finding], remediation: Mapping[str, str] | None = None, *,
                 facts: dict[int, Facts] | None = None) -> None:
        """``facts``: :class:`Facts` already computed, by the ``id`` of their finding (taken over, not copied)."""
        self.findings = list(findings)
        self.remediation: Mapping[str, str] = remediation or {}
        self._facts: dict[int, Facts] = facts if facts is not None else {}
        self._missing: dict[tuple[object, ...], list[tuple[str, str]]] = {}
        self._do: dict[tuple[object, ...], str] = {}
        self._missing_of: dict[tuple[int, ...], list[tuple[str, str, int]]] = {}
        self._technique_lines: dict[int, tuple[TechniqueView, str]] = {}
        self.encoder = TechniqueEncoder(self.missing)
        """The techniques' content, numbered (:meth:`tokens`) and encoded once each."""
        self._numbered = False
        self._leads: dict[tuple[int, ...], str] = {}
        self._briefs: dict[tuple[object, ...], str] = {}
        self._factor_tokens: dict[tuple[tuple[object, ...], ...], int] = {}
        self._factor_same: dict[tuple[int, ...], int] = {}  # ids of the factor objects -> factor token
        self._technique_keys: dict[int, tuple[object, ...]] = {}

    def facts(self, f: Finding) -> Facts:
        """The :class:`Facts` of ``f`` (kept by the finding's identity)."""
        x = self._facts.get(id(f))
        if x is None:
            x = self._facts[id(f)] = facts_of(f)
        return x

    def key(self, f: Finding) -> tuple[object, ...]:
        """:func:`rank_key` of ``f``."""
        return self.facts(f).key

    def missing(self, t: TechniqueView) -> list[tuple[str, str]]:
        """:attr:`TechniqueView.missing` (not to be changed by the caller): the view's mitigations when no
        control implements one; else kept by content (each finding has its own copy of an application's
        view: at 10 k elements 229 k views, keyed by identity each was computed once)."""
        if not t.implemented:
            return t.mitigations
        key = (tuple(t.mitigations), tuple(t.implemented))
        hit = self._missing.get(key)
        if hit is None:
            hit = self._missing[key] = t.missing
        return hit

    def tokens(self, f: Finding) -> tuple[int, ...]:
        """The tokens of the techniques of ``f`` (:meth:`TechniqueEncoder.token`): what the report derives from
        the techniques alone is kept by them (findings realised by the same applications share it); kept in
        the finding's :class:`Facts`."""
        x = self.facts(f)  # keeps f: its id is not reused while this triage lives
        toks = x.toks
        if toks is None:
            known: Callable[[int], int | None] = self.encoder.ids.get
            got = tuple(map(known, map(id, f.techniques)))  # the views numbered before: no call each
            toks = x.toks = tuple(map(self.encoder.token, f.techniques)) if None in got else cast(tuple[int, ...], got)
        return toks

    def number(self) -> None:
        """:meth:`tokens` of every finding of the triage, each view object numbered once (its content compared
        once), then each finding's tokens looked up by its views' identities without a call per view."""
        if self._numbered:
            return
        self._numbered = True
        token = self.encoder.token
        known: Callable[[int], int | None] = self.encoder.ids.get
        for x in self.all_facts:  # the findings kept by self.findings (and their facts): their ids stay theirs
            if x.toks is None:
                ts = x.f.techniques
                got = tuple(map(known, map(id, ts)))  # the views numbered before: no call each
                x.toks = (tuple([k if k is not None else token(t) for k, t in zip(got, ts, strict=True)]) if None in got
                          else cast(tuple[int, ...], got))

    def do(self, f: Finding, n: int = 2) -> str:
        """:func:`do_text` of ``f`` with the report's remediation: kept by the rule and the techniques'
        content (the text reads nothing else of the finding) once the finding has its :meth:`tokens` (the
        JSON report numbers every finding's techniques), else by the finding."""
        return self._do_of(f, self.facts(f), n)

    def _do_of(self, f: Finding, x: Facts, n: int = 2) -> str:
        """:meth:`do` of ``f`` with its facts ``x``."""
        toks = x.toks
        key: tuple[object, ...] = (toks, f.rule_id, n) if toks is not None else (id(f), n)
        text = self._do.get(key)
        if text is None:
            res = x.residual_techniques
            if toks is not None:  # the missing mitigations are the techniques' (the rules' findings alike share them)
                missing = self._missing_of.get(toks)
                if missing is None:
                    # none without a mitigation or countermeasure to count (no knowledge loaded)
                    missing = self._missing_of[toks] = (_missing_mitigations(res, self.missing) if any(
                        t.mitigations or t.countermeasures for t in res) else [])
            else:
                missing = _missing_mitigations(res, self.missing)
            text = self._do[key] = _do_text(f, res, missing, self.remediation, n)
        return text

    def why(self, f: Finding) -> str:
        """:func:`why_text` of ``f``."""
        return self._why_of(f, self.facts(f))

    def _why_of(self, f: Finding, x: Facts) -> str:
        """:meth:`why` of ``f`` with its facts ``x``."""
        if f.techniques and f.rule_id in BASELINE_RULES:  # Finding.baseline
            toks = x.toks if x.toks is not None else self.tokens(f)
            lead = self._leads.get(toks)
            if lead is None:
                lead = self._leads[toks] = self._lead(toks)
        else:
            lead = f.explanation.rstrip(".")
        brief = ""
        if x.own_score:
            key = (f.risk_score, f.likelihood, f.impact, x.factor if x.factor >= 0 else self.factor_token(f))
            hit = self._briefs.get(key)
            if hit is None:
                hit = self._briefs[key] = risk_brief(f, x.own_score)
            brief = hit
        return lead + (f"; {brief}" if brief else "")

    def factor_token(self, f: Finding) -> int:
        """The number of the content of the risk factors of ``f`` (the same for every finding with the same factors):
        the report's risk parts and risk briefs are kept by it (the factors read once per finding, not per use)."""
        x = self.facts(f)  # keeps f: its id is not reused while this triage lives
        tok = x.factor
        if tok < 0:
            # findings share their element's factor objects: their identities name the content without reading
            # it (the objects are held by the findings, so their ids stay theirs)
            same = tuple(map(id, f.risk_factors))
            tok = self._factor_same.get(same, -1)
            if tok < 0:
                tok = self._factor_same[same] = self._factor_tokens.setdefault(
                    tuple(map(_FACTOR, f.risk_factors)), len(self._factor_tokens))
            x.factor = tok
        return tok

    def _lead(self, toks: tuple[int, ...]) -> str:
        """:func:`_why_lead` of a finding with the techniques ``toks``, their keys (:func:`technique_key`)
        taken once per content."""
        views = self.encoder.views
        res = [k for k in toks if views[k].status != "mitigated"] or list(toks)
        keys = self._technique_keys
        for k in res:
            if k not in keys:
                keys[k] = _technique_key(views[k], self.missing)
        return _lead_text(len(res), views[min(res, key=keys.__getitem__)])  # min: the first of equal keys

    def technique_line(self, t: TechniqueView) -> str:
        """``technique`` + :func:`technique_text` (once per technique view)."""
        hit = self._technique_lines.get(id(t))
        if hit is None:
            hit = self._technique_lines[id(t)] = (t, "technique " + technique_text(t))
        return hit[1]

    @cached_property
    def all_facts(self) -> list[Facts]:
        """The :class:`Facts` of every finding, in the order of :attr:`findings`."""
        facts = self._facts
        got = facts.get
        xs = []
        for f in self.findings:  # the facts of all, in one loop (not a method call per finding)
            x = got(id(f))
            if x is None:
                x = facts[id(f)] = facts_of(f)
            xs.append(x)
        return xs

    @cached_property
    def _ordered_facts(self) -> list[Facts]:
        # stable: equal keys keep the findings' order, as sorted(findings, key=rank_key)
        return sorted(self.all_facts, key=_KEY)

    @cached_property
    def ordered(self) -> list[Finding]:
        """Every finding, highest residual risk first (:func:`rank_key`)."""
        return list(map(_FINDING, self._ordered_facts))

    @cached_property
    def ranking(self) -> list[Finding]:
        """The residual findings above info in rank order (:func:`ranking`)."""
        return [x.f for x in self._ordered_facts if x.residual and x.level_rank > 1]

    @cached_property
    def groups(self) -> list[tuple[Finding, list[Finding]]]:
        """:func:`element_groups`: the findings in rank order grouped by element, so the elements are in the
        order of their first (highest) finding."""
        groups: dict[str, list[Finding]] = {}
        for f in self.ordered:
            groups.setdefault(f.focus, []).append(f)
        return [(items[0], items) for items in groups.values()]

    @cached_property
    def plans(self) -> list[MitigationPlan]:
        """:func:`mitigation_plans`."""
        plans: dict[str, MitigationPlan] = {}
        seen: dict[str, set[str]] = {}  # plan id -> its elements (the list keeps their order)
        if self._numbered:  # the views' missing mitigations once per content: none at all, no plan (no knowledge)
            views = self.encoder.views
            if not any(t.mitigations for t in views):
                return []
        for f in self.ordered:
            x = self.facts(f)
            if not x.residual or not f.techniques:
                continue
            for t in x.residual_techniques:
                for mid, label in t.mitigations if not t.implemented else self.missing(t):  # Triage.missing
                    p = plans.get(mid)
                    if p is None:
                        p = plans[mid] = MitigationPlan(mid, label)
                        seen[mid] = set()
                    if not p.findings or p.findings[-1] is not f:
                        p.findings.append(f)
                    p.techniques.add(t.id)
                    if f.focus_label not in seen[mid]:
                        seen[mid].add(f.focus_label)
                        p.elements.append(f.focus_label)
        return sorted(plans.values(), key=lambda p: (-len(p.findings), -len(p.techniques),
                                                      -max(self.facts(x).level_rank for x in p.findings), p.id))


def clip(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` characters (an ellipsis when cut).

    >>> clip("abc\\n def", 5), clip("abc", 5), clip("  a  b ", 9)
    ('abc…', 'abc', '  a  b')
    """
    parts = text.splitlines() or [""]
    text = " ".join([parts[0].rstrip()] + [p.strip() for p in parts[1:]]).rstrip()
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def releases_text(releases: Mapping[str, str], findings: Sequence[Finding] = ()) -> str:
    """``ATT&CK 18.1, ATLAS 5.6.0, D3FEND 1.2.0`` or ``none``; with ``findings`` citing techniques without a
    release, ``none; techniques unresolved: …`` (:func:`unresolved_note`)."""
    names = {"attack-enterprise": "ATT&CK", "atlas": "ATLAS", "d3fend": "D3FEND"}
    text = ", ".join(f"{names.get(k, k)} {v.rsplit('/', 1)[-1]}" for k, v in sorted(releases.items())) or "none"
    note = unresolved_note(findings)
    return text + (f"; techniques {note}" if note else "")


def unresolved_note(findings: Sequence[Finding]) -> str:
    """The status of the techniques cited without a loaded release (``unresolved: no ATT&CK/ATLAS release
    loaded …``, the label of ``tg:NoReleaseLoaded``), or ``""`` when every technique was checked."""
    return next((t.unresolved for f in findings for t in f.techniques if t.unresolved), "")


UNRESOLVED_MARK = " (unresolved)"
"""After technique ids cited without a loaded release, where the line has no room for the whole status."""


_OUT_OF_SCOPE = """SELECT ?e ?r WHERE { ?e tg:outOfScope true OPTIONAL { ?e tg:outOfScopeReason ?r } FILTER(isIRI(?e)) }"""


@dataclass
class ReportInput:
    """What the triage renderers read, gathered once (:func:`gather`)."""

    findings: list[Finding]
    """The findings shown (at or above ``--min-severity``)."""
    all_findings: list[Finding]
    labels: dict[str, str]
    remediation: dict[str, str]
    model_files: list[str]
    warnings: list[str]
    releases: dict[str, str]
    paths: list[PathView] = field(default_factory=list)
    declared: list[DeclaredThreat] = field(default_factory=list)
    out_of_scope: list[tuple[str, str, str]] = field(default_factory=list)
    """(IRI, label, reason) of the elements and flows the model declares out of scope (``tg:outOfScope``;
    imported from MS TMT, Threat Dragon, Threagile); they are still analysed."""
    title: str = "Threat analysis"
    facts: dict[int, Facts] = field(default_factory=dict, repr=False)
    """The :class:`Facts` of findings by their ``id`` (:func:`gather`'s, handed to the triage; each holds its finding)."""

    @property
    def added(self) -> int:
        """Findings on (element, category) pairs no declared threat names."""
        return len(undeclared(self.all_findings, self.declared))

    @cached_property
    def triage(self) -> Triage:
        """The shown findings with what the renderers derive from them, each computed once."""
        return Triage(self.findings, self.remediation, facts=self.facts)


def gather(analysis: AnalysisLike, findings: Sequence[Finding], labels: dict[str, str], *, min_level: str = "info") -> ReportInput:
    """Everything the table, JSON and Markdown reports read: shown findings, paths, declared threats."""
    floor = SEVERITIES.index(min_level) + 1 if min_level in SEVERITIES else 1
    store = analysis.store
    scope: dict[str, str] = {}
    for r in store.select(_OUT_OF_SCOPE, complete=False):  # the model's statement: no need to load the findings
        reason = r.get("r")
        scope[r["e"].value] = min(scope.get(r["e"].value) or "\uffff", reason.value if reason is not None else "")
    out_of_scope = sorted(((e, labels.get(e, e), why.strip()) for e, why in scope.items()), key=lambda x: (x[1].lower(), x[0]))
    facts: dict[int, Facts] = {}  # the triage's (Finding.level read once per finding, not again by the triage)
    shown = []
    for f in findings:
        x = facts[id(f)] = facts_of(f)
        if x.level_rank >= floor:  # Finding.level_rank
            shown.append(f)
    return ReportInput(
        findings=shown,
        all_findings=list(findings),
        labels=labels,
        remediation={r.id: r.remediation for r in analysis.rules if r.remediation},
        model_files=list(analysis.model_files),
        warnings=list(analysis.warnings),
        releases=dict(analysis.releases),
        paths=read_paths(store, labels, findings, kept=analysis.paths),
        declared=declared_threats(store, labels, findings, analysis.rules),
        out_of_scope=out_of_scope,
        title=f"Threat analysis of {', '.join(analysis.model_files)}",
        facts=facts,
    )


def declared_line(ri: ReportInput) -> str:
    if not ri.declared:
        return "Declared threats: none in the model."
    n = sum(1 for d in ri.declared if d.matched)
    # the model's own triage is reported, never applied silently: findings stay, the overlap is named
    rejected = sum(1 for d in ri.declared if d.rejected and d.matched)
    also = f"; {rejected} derived the model marks not applicable" if rejected else ""
    return (f"Declared threats: {n} of {len(ri.declared)} also derived ({len(ri.declared) - n} not derived{also}); "
            f"threatgraph adds {ri.added} findings on categories nobody declared.")


def mitigated_line(ri: ReportInput) -> str:
    """The findings that declared protective facts mitigate (rules with ``mitigated-by``), in one line; ""
    when there are none. They are left out of the element blocks (signal over noise) and of ``--fail-on``;
    JSON and SARIF keep each of them with its control status and facts (issue 13)."""
    fs = [f for f in ri.findings if f.mitigated_by]
    if not fs:
        return ""
    by_fact = Counter(fact for f in fs for fact in f.mitigated_by)
    facts = ", ".join(f"{fact} {n}" for fact, n in sorted(by_fact.items(), key=lambda kv: (-kv[1], kv[0])))
    n_el = len({f.focus for f in fs})
    return (f"Mitigated by declared facts (not counted by --fail-on): {len(fs)} threat{'s' if len(fs) != 1 else ''} "
            f"on {n_el} element{'s' if n_el != 1 else ''} ({facts}); JSON/SARIF list each with status mitigated.")


def scope_line(ri: ReportInput) -> str:
    """The elements the model declares out of scope, in one line."""
    if not ri.out_of_scope:
        return "Out of scope: none declared in the model."
    names = [label + (f" ({why})" if why else "") for _, label, why in ri.out_of_scope]
    shown = "; ".join(names[:6]) + (f" +{len(names) - 6} more" if len(names) > 6 else "")
    return f"Out of scope (declared, still analysed): {shown}."


def summary_lines(ri: ReportInput, width: int) -> list[str]:
    """The summary of the table: counts by level, the top residual risks, the top mitigations, scope."""
    fs, tri = ri.findings, ri.triage
    n_el = len({f.focus for f in fs})
    counts = level_counts(fs, tri)
    lines = [clip(ri.title, width),
             f"{len(fs)} findings on {n_el} elements; knowledge: {releases_text(ri.releases, fs)}",
             clip("Levels: " + (", ".join(f"{v} {k}" for k, v in counts.items()) or "none")
                  + " (risk where computed, at most one step above the rule's severity; else the severity; docs/risk.md)", width), ""]
    top = tri.ranking[:TOP_RISKS]
    lines.append(f"Top {len(top)} residual risks" if top else "No residual risk above info.")
    pad = " " * 14
    for i, f in enumerate(top, 1):
        lines.append(clip(f"{i:>2}. {tri.facts(f).level:<8}  {f.focus_label} — {threat_text(f)} [{f.rule_id}]", width))
        lines.append(clip(f"{pad}why: {tri.why(f)}", width))
        do = tri.do(f)
        if do:
            lines.append(clip(f"{pad}do:  {do}", width))
    plans = tri.plans
    lines.append("")
    if plans:
        lines.append(f"Mitigations that would close the most (top {min(TOP_MITIGATIONS, len(plans))} of {len(plans)} missing)")
        for p in plans[:TOP_MITIGATIONS]:
            els = ", ".join(p.elements[:3]) + (f" +{len(p.elements) - 3} more" if len(p.elements) > 3 else "")
            lines.append(clip(f"  {p.name}: {len(p.findings)} findings, {len(p.techniques)} techniques; on {els}", width))
    elif ri.releases:
        lines.append("Mitigations: none missing on the residual techniques.")
    else:
        lines.append("Mitigations: no ATT&CK / ATLAS knowledge loaded (add --knowledge shared); the rules' remediation is shown.")
    lines.append(clip(scope_line(ri), width))
    lines.append(clip(declared_line(ri), width))
    if mitigated_line(ri):
        lines.append(clip(mitigated_line(ri), width))
    if capec_summary(ri.declared):
        lines.append(clip(capec_summary(ri.declared), width))
    if ri.paths:
        lines.append(f"Attack paths: {len(ri.paths)} from external entities / untrusted sources to critical assets"
                     " (--detail full lists them).")
    return lines


TABLE_LINES = 150
"""Line budget of the default table (issue 15): elements that no longer fit are named on one line."""


def element_lines(ri: ReportInput, width: int, budget: int | None = None) -> list[str]:
    """One block per element with a residual finding above info: the element and its folded baseline,
    then each other finding (level, threat, why; the capped techniques and what to do; a reference to
    the top list for the findings in it). ``budget``: at most this many lines; the elements after it
    are named on a closing line (``--detail full`` lists everything)."""
    lines = ["", "Elements, highest residual risk first"]
    quiet: list[str] = []
    left_out: list[tuple[str, str]] = []
    pad = " " * 12
    tri = ri.triage
    top = {f.iri: i for i, f in enumerate(tri.ranking[:TOP_RISKS], 1)}
    for head, items in tri.groups:
        level = highest_level(items, tri)
        if level == "info":
            quiet.append(head.focus_label)
            continue
        block = 1 + sum(1 if f.iri in top else 2 for f in items if not f.baseline and not f.mitigated_by)
        if left_out or (budget is not None and len(lines) + block > budget - 4):
            left_out.append((head.focus_label, level))
            continue
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        fold = fold_baseline(items, tri)
        lines.append(clip(f"{head.focus_label}{kind} · {level}" + (f" · {fold}" if fold else ""), width))
        for f in items:
            if f.baseline or f.mitigated_by:  # mitigated by declared facts: the summary's one line
                continue
            status = "" if is_residual(f) else " (mitigated)"
            if f.iri in top:  # why and what to do are in the top list already
                lines.append(clip(f"  {tri.facts(f).level:<8}  #{top[f.iri]} above: {threat_text(f)}", width))
                continue
            lines.append(clip(f"  {tri.facts(f).level:<8}  {threat_text(f)}{status} — {tri.why(f)}", width))
            ts, more = top_techniques(f)
            mark = UNRESOLVED_MARK if any(t.unresolved for t in ts) else ""
            parts = [f"techniques {', '.join(t.id for t in ts)}" + (f" +{more} more" if more else "") + mark] if ts else []
            do = tri.do(f)
            if do:
                parts.append(f"do: {do}")
            if parts:
                lines.append(clip(pad + " · ".join(parts), width))
    if left_out:
        text = (f"{len(left_out)} more elements with findings above info (--detail full lists them): "
                + ", ".join(f"{name} ({lvl})" for name, lvl in left_out))
        lines.extend(textwrap.wrap(text, width, subsequent_indent="  ")[:2])
    if quiet:
        text = f"{len(quiet)} elements with info findings only: " + ", ".join(quiet)
        lines.extend(textwrap.wrap(text, width, subsequent_indent="  ")[:2])
    return lines


def render_triage_table(ri: ReportInput, *, detail: str = "normal", width: int | None = None) -> str:
    """The default ``analyze`` table: the summary first, then (``normal``) the elements in order of their
    highest residual risk, or (``full``) the complete listing."""
    width = width or max(80, min(terminal_columns(120), 160))
    lines = summary_lines(ri, width)
    if detail == "normal":
        lines += element_lines(ri, width, budget=TABLE_LINES - len(lines))
    text = "\n".join(lines) + "\n"
    if detail == "full":
        text += "\n" + render_table(ri.findings, width=width, triage=ri.triage) + render_paths(ri.paths, unresolved_note(ri.findings))
        if ri.declared:
            text += declared_text_plain(ri)
    return sanitize.terminal(text)


def declared_text_plain(ri: ReportInput) -> str:
    """The declared threats, one line each (full listing)."""
    lines = ["", "Declared threats (from the imported model) compared with derived findings:"]
    for d in ri.declared:
        cats = ", ".join(c[1] for c in d.categories) or "no category"
        how = f"derived by {d.derived_text()}" if d.matched else "NOT derived"
        if d.rejected and d.matched:
            why = " ".join(d.mitigation.split())
            how += " although the model marks it not applicable" + (f" ({why})" if why else "")
        status = f", {d.status}" if d.status else ""
        capec = f" · {d.capec_text()}" if d.capec else ""
        lines.append(f"  {' '.join(d.element_label.split())}: {' '.join(d.title.split())} [{cats}{status}] — {how}{capec}")
    return sanitize.terminal("\n".join(lines) + "\n")  # model text may carry ESC/BEL


def _cell(text: str) -> str:
    """Text for a Markdown table cell (pipes escaped, one line, no raw HTML, link or image:
    :func:`threatgraph.sanitize.markdown`)."""
    return " ".join(sanitize.markdown(text).split())


COMMENT_LIMIT = 65_536
"""GitHub refuses comments longer than this (characters)."""
MARKDOWN_BUDGET = 52_000
"""Characters after which no further element block is added; the sections after the elements are
added whole while the comment stays under :data:`COMMENT_LIMIT`, else named in one line."""


def render_markdown(ri: ReportInput) -> str:
    """The report as a pull-request comment: the summary and top lists first, then one collapsible
    ``<details>`` block per element in the order of the table (highest residual risk first)."""
    fs, tri = ri.findings, ri.triage
    counts = level_counts(fs, tri)
    out = [f"## {_cell(ri.title)}", "",
           f"**{len(fs)} findings** on {len({f.focus for f in fs})} elements · knowledge: {releases_text(ri.releases, fs)} · "
           "levels: " + (", ".join(f"{v} {k}" for k, v in counts.items()) or "none")
           + " (risk level where computed, else the rule's severity)", ""]
    top = tri.ranking[:TOP_RISKS]
    out += [f"### Top {len(top)} residual risks", ""]
    if top:
        out += ["| # | Level | Element | Threat | Why | Do first |", "|---|---|---|---|---|---|"]
        out += [f"| {i} | **{tri.facts(f).level}** | {_cell(f.focus_label)} | {_cell(threat_text(f))} | {_cell(tri.why(f))} | "
                f"{_cell(tri.do(f))} |" for i, f in enumerate(top, 1)]
    else:
        out.append("No residual risk above info.")
    out.append("")
    plans = tri.plans
    out += ["### Mitigations that would close the most", ""]
    if plans:
        out += ["| Mitigation | Id | Residual findings | Techniques | Elements |", "|---|---|---|---|---|"]
        for p in plans[:TOP_MITIGATIONS]:
            els = ", ".join(p.elements[:5]) + (f" +{len(p.elements) - 5} more" if len(p.elements) > 5 else "")
            out.append(f"| {_cell(p.label or p.id)} | {p.id} | {len(p.findings)} | {len(p.techniques)} | {_cell(els)} |")
    else:
        out.append("None missing." if ri.releases else "No ATT&CK / ATLAS knowledge loaded (`--knowledge shared`); "
                   "each finding shows its rule's remediation.")
    out += ["", f"- {_cell(scope_line(ri))}", f"- {_cell(declared_line(ri))}"]
    if mitigated_line(ri):
        out.append(f"- {_cell(mitigated_line(ri))}")
    out += [f"- {_cell(capec_summary(ri.declared))}", ""] if capec_summary(ri.declared) else [""]
    out += ["### Elements, highest residual risk first", ""]
    quiet: list[str] = []
    cut = 0
    size = sum(len(x) + 1 for x in out)  # of out, kept as blocks are added (summed per element, it was quadratic)
    for head, items in tri.groups:
        level = highest_level(items, tri)
        if level == "info":
            quiet.append(head.focus_label)
            continue
        if size > MARKDOWN_BUDGET:
            cut += 1
            continue
        start = len(out)
        kind = f" ({head.focus_kind})" if head.focus_kind else ""
        fold = fold_baseline(items, tri)
        out += ["<details>", f"<summary><b>{_html(head.focus_label)}</b> {_html(kind.strip())} · {level}"
                + (f" · {_html(fold)}" if fold else "") + "</summary>", ""]
        out += ["| Level | Threat | Why | Do | Techniques | Rule |", "|---|---|---|---|---|---|"]
        info = [f for f in items if tri.facts(f).level_rank <= 1]  # counted, not listed: a comment must stay under 64 KiB
        for f in fold_baseline_groups(items, tri):
            if tri.facts(f).level_rank <= 1 or f.mitigated_by:  # mitigated by declared facts: the summary's line
                continue
            ts, more = top_techniques(f)
            techs = capped_techniques(ts, more)
            out.append(f"| {tri.facts(f).level} | {_cell(threat_text(f))} | {_cell(clip(tri.why(f), 200))} | "
                       f"{_cell(clip(tri.do(f), 200))} | {_cell(techs)} | {f.rule_id} |")
        if info:
            out += ["", f"and {len(info)} info finding{'s' if len(info) != 1 else ''} "
                    f"({_cell(', '.join(sorted({c for f in info for c in f.category_labels})))}); "
                    "`--format json` or `--detail full` lists them."]
        out += ["", "</details>", ""]
        size += sum(len(x) + 1 for x in out[start:])
    if cut:
        out += [f"{cut} more elements with findings above info are left out to keep the comment short; "
                "`--format json` or `--detail full` lists them.", ""]
    sections: list[tuple[str, list[str]]] = []
    if quiet:
        sections.append(("the elements with info findings only", [
            "<details>", f"<summary>{len(quiet)} elements with info findings only</summary>", "",
            ", ".join(_cell(q) for q in quiet), "", "</details>", ""]))
    if ri.paths:
        sections.append(("the attack paths", [
            "<details>", f"<summary>Attack paths ({len(ri.paths)})</summary>", "",
            *(f"- **{_cell(p.start_label)} ⇒ {_cell(p.target_label)}**: {p.length} hops, {p.crossings} boundary "
              f"crossings: {_cell(p.text)}" for p in ri.paths), "", "</details>", ""]))
    if ri.declared:
        sections.append(("the declared threats", [
            "<details>", "<summary>Declared threats compared with derived findings</summary>", "",
            "| Element | Declared threat | Category | Status | Derived by | CAPEC → ATT&CK |", "|---|---|---|---|---|---|",
            *(f"| {_cell(d.element_label)} | {_cell(d.title)} | {_cell(', '.join(c[1] for c in d.categories))} | "
              f"{_cell(d.status)} | {_cell(d.derived_text()) or '**not derived**'} | {_cell(d.capec_text())} |"
              for d in ri.declared),
            "", "</details>", ""]))
    if ri.warnings:
        sections.append(("the warnings", [
            "<details>", f"<summary>Warnings ({len(ri.warnings)})</summary>", "",
            *(f"- {_cell(w)}" for w in ri.warnings), "", "</details>", ""]))
    size = sum(len(x) + 1 for x in out)
    for name, lines in sections:  # each whole or, past the comment limit, a note
        extra = sum(len(x) + 1 for x in lines)
        if size + extra > COMMENT_LIMIT - 1000:
            lines = [f"{name[0].upper()}{name[1:]}: left out to keep the comment short (`--format json` lists them).", ""]
            extra = sum(len(x) + 1 for x in lines)
        out += lines
        size += extra
    return "\n".join(out)


def _html(text: str) -> str:
    """Model text inside an HTML tag of the Markdown report: no tag, no link (brackets as entities)."""
    t = sanitize.terminal(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(t.replace("[", "&#91;").replace("]", "&#93;").split())


def render_report(fmt: str, analysis: AnalysisLike, findings: Sequence[Finding], labels: dict[str, str], *,
                  detail: str = "normal", min_level: str = "info", width: int | None = None) -> str:
    """``analyze``'s table (``detail``: summary, normal, full), JSON or Markdown (PR comment) report.

    ``findings`` are all the findings of the analysis; those below ``min_level`` (on :attr:`Finding.level`)
    are left out of the report, not out of the declared-threat comparison."""
    return "".join(render_report_chunks(fmt, analysis, findings, labels, detail=detail, min_level=min_level, width=width))


def render_report_chunks(fmt: str, analysis: AnalysisLike, findings: Sequence[Finding], labels: dict[str, str], *,
                         detail: str = "normal", min_level: str = "info", width: int | None = None) -> Iterable[str]:
    """:func:`render_report` as pieces to write one after another (the JSON report is made as it is
    written: never held whole, issue 14)."""
    ri = gather(analysis, findings, labels, min_level=min_level)
    if fmt == "table":
        return [render_triage_table(ri, detail=detail, width=width)]
    if fmt == "markdown":
        return [render_markdown(ri)]
    if fmt == "json":
        chunks = findings_json_chunks(ri.findings, model_files=ri.model_files, warnings=ri.warnings, paths=ri.paths,
                                      releases=ri.releases, out_of_scope=ri.out_of_scope, triage=ri.triage)
        if not ri.declared:
            return chunks
        from threatgraph.export import with_declared
        from threatgraph.export.context import FindingView, ModelView, ReportContext

        # what the declared field reads: the declared threats (compared with every finding, as gathered)
        # and the findings shown
        ctx = ReportContext(title=ri.title, findings=[FindingView(f) for f in ri.findings], model=ModelView(),
                            model_files=ri.model_files, warnings=ri.warnings, declared=ri.declared, labels=labels,
                            remediation=ri.remediation)
        return [with_declared("".join(chunks), ctx)]
    raise ValueError(f"render_report: unknown format {fmt!r}")
