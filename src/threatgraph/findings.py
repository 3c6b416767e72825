"""Reading findings back from the finding graph (the single source every report renders from)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyoxigraph import Literal, NamedNode

from threatgraph.rules import SEVERITIES
from threatgraph.store import Store
from threatgraph.store.base import Term
from threatgraph.terms import graph_iri

_QUERY = """
SELECT ?f ?rid ?threat ?sev ?focus ?expl ?src ?framework WHERE {
  GRAPH <%(g)s> {
    ?f a tg:Finding ; tg:ruleId ?rid ; tg:threat ?threat ; tg:severity ?sevNode ; tg:focus ?focus ;
       tg:explanation ?expl ; tg:byRule ?rule .
    ?rule tg:ruleSource ?src .
  }
  ?sevNode rdfs:label ?sev0 .
  BIND(STR(?sev0) AS ?sev)
  BIND("" AS ?framework)
}
"""
_CATS = """
SELECT ?f ?cat ?scheme WHERE { GRAPH <%(g)s> { ?f a tg:Finding ; tg:category ?cat } OPTIONAL { ?cat skos:inScheme ?scheme } }
"""
_EVIDENCE = """
SELECT ?f ?role ?v ?lit WHERE { GRAPH <%(g)s> { ?f tg:evidence ?e . ?e tg:role ?role .
  OPTIONAL { ?e tg:value ?v } OPTIONAL { ?e tg:literalValue ?lit } } }
"""
_FOCUS = """
SELECT ?focus ?kind WHERE { GRAPH <%(g)s> { ?f a tg:Finding ; tg:focus ?focus }
  VALUES ?kind { tg:ExternalEntity tg:Process tg:DataStore tg:DataFlow } ?focus a ?kind }
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


def _text(t: Term) -> str:
    return t.value


def read_findings(store: Store, labels: dict[str, str], graph: str | None = None) -> list[Finding]:
    """All findings of ``graph`` (default ``graph/findings``), sorted by focus label, severity, rule."""
    g = graph or graph_iri("findings")
    out: dict[str, Finding] = {}
    for r in store.select(_QUERY % {"g": g}):
        focus = r["focus"]
        out[r["f"].value] = Finding(
            iri=r["f"].value,
            rule_id=_text(r["rid"]),
            threat=_text(r["threat"]),
            severity=_text(r["sev"]),
            focus=focus.value,
            focus_label=labels.get(focus.value, focus.value.rsplit("#", 1)[-1].rsplit("/", 1)[-1]),
            focus_kind="",
            explanation=_text(r["expl"]),
            source=_text(r["src"]),
        )
    kinds: dict[str, str] = {}
    for r in store.select(_FOCUS % {"g": g}):
        kinds.setdefault(r["focus"].value, labels.get(r["kind"].value, r["kind"].value))
    for r in store.select(_CATS % {"g": g}):
        f = out.get(r["f"].value)
        if f is None:
            continue
        cat = r["cat"].value
        scheme = r.get("scheme")
        fw = "LINDDUN" if scheme is not None and "linddun" in scheme.value else "STRIDE"
        f.categories.append((cat, labels.get(cat, cat), fw))
    for r in store.select(_EVIDENCE % {"g": g}):
        f = out.get(r["f"].value)
        if f is None:
            continue
        v = r.get("v")
        lit = r.get("lit")
        if isinstance(v, NamedNode):
            f.evidence.append((_text(r["role"]), v.value, labels.get(v.value, v.value)))
        elif isinstance(lit, Literal):
            f.evidence.append((_text(r["role"]), lit.value, lit.value))
    for f in out.values():
        f.focus_kind = kinds.get(f.focus, "")
        f.categories.sort(key=lambda c: (c[2] != "STRIDE", c[1]))
        f.evidence.sort()
    return sorted(out.values(), key=lambda f: (f.focus_label.lower(), f.focus, -f.severity_rank, f.rule_id, f.category_labels))
