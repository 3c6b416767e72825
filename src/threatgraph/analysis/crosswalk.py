"""The crosswalk to peer tools' threat libraries (issue 13): peer threat id → our rule(s) or the reason.

The peer threats (every Microsoft Threat Modeling Tool SDL threat type, every Threagile built-in risk
rule, every OWASP pytm threat) are data in ``ontology/crosswalk/peers.ttl``: tool, id, title and, for a
threat no rule covers, ``tg:notCoveredBecause``. A rule names the peer threats it covers in its
``covers:`` header. :func:`build_crosswalk` joins the two.

>>> from threatgraph.analysis.rules import parse_rule
>>> rule = parse_rule('''# id: X-1
... # title: t
... # framework: STRIDE
... # category: stride:Spoofing
... # severity: low
... # focus: element
... # source: s
... # explanation: e
... # remediation: r
... # covers: TMT:S1
... SELECT ?focus WHERE { ?focus a tg:Process }''', "X-1.rq")
>>> peers = [PeerThreat("TMT", "S1", "Spoofing", "Spoofing", ""), PeerThreat("pytm", "HA02", "RE", "", "no fact")]
>>> [(e.key, e.status, e.rules) for e in build_crosswalk([rule], peers).entries]
[('TMT:S1', 'covered', ('X-1',)), ('pytm:HA02', 'explained', ())]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from threatgraph.analysis.rules import Rule
from threatgraph.errors import InputError
from threatgraph.resources import ontology_dir
from threatgraph.terms import TG

TOOLS: tuple[str, ...] = ("TMT", "Threagile", "pytm", "TMT-Azure")
"""Peer tools, in the order they are listed. ``TMT-Azure``: threat types of TMT's Azure Threat Model Template
(1.0.0.33) that rules translate; only those are listed (the SDL template is the complete TMT catalogue)."""

_RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


@dataclass(frozen=True)
class PeerThreat:
    """One threat of a peer tool's library."""

    tool: str
    id: str
    title: str
    category: str
    reason: str
    """``tg:notCoveredBecause``: why no rule covers it ("" when none is given)."""

    @property
    def key(self) -> str:
        """``TOOL:ID`` as written in a rule's ``covers:`` header."""
        return f"{self.tool}:{self.id}"


@dataclass(frozen=True)
class CrosswalkEntry:
    peer: PeerThreat
    rules: tuple[str, ...]
    """Ids of the rules whose ``covers:`` names the peer threat, sorted."""

    @property
    def key(self) -> str:
        return self.peer.key

    @property
    def status(self) -> str:
        """``covered`` (a rule names it), ``explained`` (a reason says why not) or ``missing``."""
        if self.rules:
            return "covered"
        return "explained" if self.peer.reason else "missing"


@dataclass(frozen=True)
class Crosswalk:
    entries: tuple[CrosswalkEntry, ...]
    unknown: tuple[tuple[str, str], ...]
    """(rule id, peer id) pairs where a rule's ``covers:`` names a peer threat the catalogue lacks."""

    def counts(self) -> dict[str, dict[str, int]]:
        """Per tool: how many peer threats are covered, explained, missing, and the total."""
        out: dict[str, dict[str, int]] = {t: {"covered": 0, "explained": 0, "missing": 0, "total": 0} for t in TOOLS}
        for e in self.entries:
            c = out.setdefault(e.peer.tool, {"covered": 0, "explained": 0, "missing": 0, "total": 0})
            c[e.status] += 1
            c["total"] += 1
        return out

    def problems(self) -> list[str]:
        """Everything that breaks the crosswalk: peer threats neither covered nor explained, stale reasons on
        covered threats, and ``covers:`` ids that name no known peer threat."""
        out = [f"{e.key} ({e.peer.title}) is neither covered by a rule nor explained" for e in self.entries
               if e.status == "missing"]
        out += [f"{e.key} is covered by {', '.join(e.rules)} but still has tg:notCoveredBecause; delete the reason"
                for e in self.entries if e.rules and e.peer.reason]
        out += [f"rule {rid} covers {pid}, which is not a peer threat in ontology/crosswalk/peers.ttl"
                for rid, pid in self.unknown]
        return out


def peers_file() -> Path:
    """The shipped peer-threat catalogue, ``ontology/crosswalk/peers.ttl``."""
    return ontology_dir() / "crosswalk" / "peers.ttl"


def _literal(term: Any) -> str:
    return str(term.value) if isinstance(term, ox.Literal) else ""


def load_peers(path: Path | None = None) -> list[PeerThreat]:
    """The peer threats of the catalogue, in the file's order of tools then by id as written."""
    p = path or peers_file()
    try:
        quads = list(ox.parse(path=str(p), format=ox.RdfFormat.TURTLE))
    except SyntaxError as err:
        raise InputError(f"{p}: invalid Turtle: {err}", hint="fix the syntax at the reported line and column") from err
    except OSError as err:
        raise InputError(f"{p}: cannot read: {err}") from err
    props: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for q in quads:
        s = q.subject.value
        if q.predicate.value == _RDF_TYPE and q.object == ox.NamedNode(TG + "PeerThreat"):
            if s not in props:
                order.append(s)
            props.setdefault(s, {})
        else:
            props.setdefault(s, {})[q.predicate.value] = _literal(q.object)
    peers: list[PeerThreat] = []
    for s in order:
        d = props[s]
        tool, pid = d.get(TG + "peerTool", ""), d.get(TG + "peerId", "")
        if tool not in TOOLS or not pid:
            raise InputError(f"{p}: peer threat <{s}> needs tg:peerTool (one of {', '.join(TOOLS)}) and tg:peerId")
        peers.append(PeerThreat(tool, pid, d.get(_RDFS_LABEL, ""), d.get(TG + "peerCategory", ""),
                                d.get(TG + "notCoveredBecause", "")))
    return peers


def build_crosswalk(rules: Sequence[Rule], peers: Sequence[PeerThreat]) -> Crosswalk:
    """Join the peer catalogue with the rules' ``covers:`` headers."""
    by_peer: dict[str, list[str]] = {}
    for r in rules:
        for c in r.covers:
            by_peer.setdefault(c, []).append(r.id)
    known = {p.key for p in peers}
    unknown = tuple(sorted((rid, c) for c, rids in by_peer.items() if c not in known for rid in rids))
    tool_rank = {t: i for i, t in enumerate(TOOLS)}
    ordered = sorted(peers, key=lambda p: tool_rank.get(p.tool, len(TOOLS)))
    entries = tuple(CrosswalkEntry(p, tuple(sorted(set(by_peer.get(p.key, []))))) for p in ordered)
    return Crosswalk(entries, unknown)


def _summary_lines(cw: Crosswalk) -> list[str]:
    lines = ["| tool | covered | explained | missing | total |", "|---|---|---|---|---|"]
    for tool, c in cw.counts().items():
        lines.append(f"| {tool} | {c['covered']} | {c['explained']} | {c['missing']} | {c['total']} |")
    return lines


def crosswalk_markdown(cw: Crosswalk) -> str:
    """The crosswalk as Markdown (docs/crosswalk.md is this output)."""
    lines = [
        "# Crosswalk to peer tools' threat libraries",
        "",
        "Generated by `threatgraph rules --crosswalk --format markdown` from the `covers:` headers of "
        "`queries/rules/*.rq` and from `ontology/crosswalk/peers.ttl`; do not edit.",
        "",
        "Each threat of the Microsoft Threat Modeling Tool SDL template, of Threagile's built-in risk rules and "
        "of OWASP pytm's threat library is either covered by threatgraph rules (their conditions translated into "
        "threatgraph's vocabulary) or explained: the reason no rule covers it. TMT-Azure lists only the threat types "
        "of TMT's Azure Threat Model Template that rules translate (not the whole template).",
        "",
        *_summary_lines(cw),
    ]
    for tool in TOOLS:
        lines += ["", f"## {tool}", "", "| id | title | category | rules | not covered because |", "|---|---|---|---|---|"]
        for e in cw.entries:
            if e.peer.tool != tool:
                continue
            cells = [e.peer.id, e.peer.title, e.peer.category, " ".join(e.rules), "" if e.rules else e.peer.reason]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def crosswalk_json(cw: Crosswalk) -> dict[str, Any]:
    return {
        "counts": cw.counts(),
        "peers": [
            {"tool": e.peer.tool, "id": e.peer.id, "title": e.peer.title, "category": e.peer.category,
             "status": e.status, "rules": list(e.rules), "reason": "" if e.rules else e.peer.reason}
            for e in cw.entries
        ],
        "problems": cw.problems(),
    }


def crosswalk_table(cw: Crosswalk) -> str:
    """A plain-text listing, one peer threat a line."""
    out = []
    for e in cw.entries:
        what = " ".join(e.rules) if e.rules else ("not covered: " + e.peer.reason if e.peer.reason else "MISSING")
        out.append(f"{e.key:<26} {what}")
    for tool, c in cw.counts().items():
        out.append(f"{tool}: {c['covered']} covered, {c['explained']} explained, {c['missing']} missing, "
                   f"{c['total']} total")
    return "\n".join(out) + "\n"


def crosswalk_json_text(cw: Crosswalk) -> str:
    return json.dumps(crosswalk_json(cw), indent=2) + "\n"
