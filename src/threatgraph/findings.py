"""Reading findings back from the finding graph (the single source every report renders from)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyoxigraph import BlankNode, Literal, NamedNode

from threatgraph.rules import SEVERITIES
from threatgraph.store import Store
from threatgraph.store.base import Term
from threatgraph.terms import RDF, RDFS, TG, graph_iri

_FOCUS = """
SELECT ?focus ?kind WHERE { GRAPH <%(g)s> { ?f a tg:Finding ; tg:focus ?focus }
  VALUES ?kind { tg:ExternalEntity tg:Process tg:DataStore tg:DataFlow } ?focus a ?kind }
"""
_SCHEMES = """
SELECT ?cat ?scheme WHERE { ?cat a tg:ThreatCategory ; skos:inScheme ?scheme }
"""


@dataclass
class Finding:
    """A finding as read from the finding graph."""

    iri: str
    rule_id: str
    threat: str
    severity: str
    focus: str
    focus_label: str
    focus_kind: str
    explanation: str
    source: str
    categories: list[tuple[str, str, str]] = field(default_factory=list)
    """(category IRI, label, framework: STRIDE or LINDDUN)."""
    evidence: list[tuple[str, str, str]] = field(default_factory=list)
    """(role, value IRI or literal, label)."""

    @property
    def severity_rank(self) -> int:
        return SEVERITIES.index(self.severity) + 1 if self.severity in SEVERITIES else 0

    @property
    def category_labels(self) -> list[str]:
        return [c[1] for c in self.categories]


def read_findings(store: Store, labels: dict[str, str], graph: str | None = None) -> list[Finding]:
    """All findings of ``graph`` (default ``graph/findings``), sorted by focus label, severity, rule.

    Reads the graph's quads once (linear in its size) and the rule descriptions stored beside them.
    """
    g = graph or graph_iri("findings")
    subj: dict[str, dict[str, list[Term]]] = {}
    for q in store.quads(g):
        s, o = q.subject, q.object
        if isinstance(s, NamedNode) and isinstance(o, (NamedNode, BlankNode, Literal)):
            subj.setdefault(s.value, {}).setdefault(q.predicate.value, []).append(o)
    schemes = {r["cat"].value: r["scheme"].value for r in store.select(_SCHEMES)}
    kinds: dict[str, str] = {}
    for r in store.select(_FOCUS % {"g": g}):
        kinds.setdefault(r["focus"].value, labels.get(r["kind"].value, r["kind"].value))
    sev_names = {TG[name.capitalize()]: name for name in SEVERITIES}
    out: list[Finding] = []
    for iri, props in subj.items():
        if _TYPE not in props or not any(t.value == _FINDING for t in props[_TYPE]):
            continue
        rule = props[_BY_RULE][0].value
        rprops = subj.get(rule, {})
        focus = props[_FOCUS_P][0].value
        f = Finding(
            iri=iri,
            rule_id=_one(rprops, _RULE_ID) or rule.rsplit("/", 1)[-1],
            threat=_one(rprops, _LABEL),
            severity=sev_names.get(props[_SEVERITY][0].value, "info"),
            focus=focus,
            focus_label=labels.get(focus, focus.rsplit("#", 1)[-1].rsplit("/", 1)[-1]),
            focus_kind=kinds.get(focus, ""),
            explanation=_one(props, _EXPLANATION),
            source=_one(rprops, _SOURCE),
        )
        for cat in props.get(_CATEGORY, []):
            fw = "LINDDUN" if "linddun" in schemes.get(cat.value, "") else "STRIDE"
            f.categories.append((cat.value, labels.get(cat.value, cat.value), fw))
        for ev in props.get(_EVIDENCE_P, []):
            ep = subj.get(ev.value, {})
            role = _one(ep, _ROLE)
            if _VALUE in ep:
                v = ep[_VALUE][0].value
                f.evidence.append((role, v, labels.get(v, v)))
            elif _LITERAL_VALUE in ep:
                v = ep[_LITERAL_VALUE][0].value
                f.evidence.append((role, v, v))
        f.categories.sort(key=lambda c: (c[2] != "STRIDE", c[1]))
        f.evidence.sort()
        out.append(f)
    return sorted(out, key=lambda f: (f.focus_label.lower(), f.focus, -f.severity_rank, f.rule_id, f.category_labels))


def _one(props: dict[str, list[Term]], key: str) -> str:
    vals = props.get(key)
    return vals[0].value if vals else ""


_TYPE = RDF.type
_FINDING = TG.Finding
_BY_RULE = TG.byRule
_RULE_ID = TG.ruleId
_LABEL = RDFS.label
_SOURCE = TG.ruleSource
_FOCUS_P = TG.focus
_SEVERITY = TG.severity
_EXPLANATION = TG.explanation
_CATEGORY = TG.category
_EVIDENCE_P = TG.evidence
_ROLE = TG.role
_VALUE = TG.value
_LITERAL_VALUE = TG.literalValue
