"""The vocabulary reference (``docs/vocabulary.md``), generated from the ontology files, never by hand.

Every class, property and individual that threatgraph's namespaces (``tg:``, ``tgml:``, ``kb:``,
``stride:``, ``linddun:``) declare in ``ontology/*.ttl``, grouped by module, with its label,
definition, domain, range, superclasses and other axioms; the SKOS schemes (STRIDE, LINDDUN, data
classification, ML lifecycle) with their concepts; SPARQL examples for the terms queries use most; and
which label property each knowledge source uses. :func:`vocabulary_markdown` and
:func:`vocabulary_html` render the same :class:`Vocabulary`.

>>> v = build_vocabulary()
>>> v.term("tg:focus").domain
('tg:Finding',)
>>> "| `tg:appliedTechnique` |" in vocabulary_markdown(v)
True
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rdflib
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from threatgraph.analysis.ontology import Ontology, load_ontology, ontology_files
from threatgraph.terms import KB, LINDDUN, PREFIXES, STRIDE, TG, TGML

OURS: tuple[str, ...] = (str(TG), str(TGML), str(KB), str(STRIDE), str(LINDDUN))
"""The namespaces this reference documents."""

MODULES: tuple[tuple[str, str, str], ...] = (
    ("core.ttl", "Core: systems, elements, data, security attributes, controls, findings (tg:)",
     "The data-flow model users write, its security attributes and declared controls, threat categories, "
     "severities, and the finding vocabulary the rules write."),
    ("derivation.ttl", "Finding derivation: techniques, mitigations, risk, attack paths (tg:)",
     "What the second stage of `analyze` adds to a finding (see docs/risk.md)."),
    ("bridge.ttl", "Bridge: technique ↔ ML-asset mappings (tg:)",
     "Curated mappings from ATLAS / ATT&CK techniques to ML asset types and categories (docs/bridge.md)."),
    ("ml.ttl", "ML asset taxonomy (tgml:)",
     "Asset types of ML systems, each under one core element kind, and ML-specific properties."),
    ("knowledge.ttl", "Threat knowledge (kb:)",
     "Imported ATT&CK, ATLAS and CAPEC objects and release provenance (docs/knowledge.md)."),
    ("stride.ttl", "STRIDE (SKOS scheme, stride:)", "The STRIDE categories and the security property each violates."),
    ("linddun.ttl", "LINDDUN (SKOS scheme, linddun:)", "The LINDDUN categories and the privacy property each violates."),
)

_KINDS: tuple[tuple[rdflib.URIRef, str], ...] = (
    (OWL.Class, "class"),
    (RDFS.Class, "class"),
    (OWL.ObjectProperty, "object property"),
    (OWL.DatatypeProperty, "datatype property"),
    (OWL.AnnotationProperty, "annotation property"),
    (RDF.Property, "property"),
    (SKOS.ConceptScheme, "concept scheme"),
)
_CHARACTERISTICS = {
    OWL.FunctionalProperty: "functional",
    OWL.InverseFunctionalProperty: "inverse functional",
    OWL.TransitiveProperty: "transitive",
    OWL.SymmetricProperty: "symmetric",
}


@dataclass(frozen=True)
class Term:
    """One documented term. IRIs of related terms are given as CURIEs (or ``<iri>``)."""

    iri: str
    curie: str
    kind: str
    """class, object property, datatype property, annotation property, property, concept scheme, individual."""
    module: str
    label: str = ""
    definition: str = ""
    notes: tuple[str, ...] = ()
    superclasses: tuple[str, ...] = ()
    axioms: tuple[str, ...] = ()
    """Other class axioms (restrictions, equivalent classes), in Manchester-like syntax."""
    domain: tuple[str, ...] = ()
    range: tuple[str, ...] = ()
    characteristics: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    """For individuals: their classes."""
    notation: str = ""
    scheme: str = ""
    links: tuple[tuple[str, str], ...] = ()
    """For individuals: other (property, value) statements worth showing (tg:violates, skos:broader, …)."""


@dataclass(frozen=True)
class Example:
    """A SPARQL example for a much-used term (tested against an analysed example model)."""

    term: str
    question: str
    query: str


@dataclass(frozen=True)
class LabelSource:
    """Which label property a kind of resource carries (checked on the real releases by the tests)."""

    source: str
    resources: str
    classes: tuple[str, ...]
    properties: tuple[str, ...]
    note: str = ""


@dataclass
class Vocabulary:
    """All documented terms, by module, in file order of the modules and alphabetical within."""

    terms: list[Term] = field(default_factory=list)
    files: tuple[str, ...] = ()

    def term(self, curie: str) -> Term:
        for t in self.terms:
            if t.curie == curie:
                return t
        raise KeyError(curie)

    def of(self, module: str, kinds: Iterable[str]) -> list[Term]:
        wanted = set(kinds)
        return [t for t in self.terms if t.module == module and t.kind in wanted]


EXAMPLES: tuple[Example, ...] = (
    Example(
        "tg:focus",
        "Which elements have the most findings?",
        "SELECT ?element ?label (COUNT(?finding) AS ?findings) WHERE {\n"
        "  ?finding a tg:Finding ; tg:focus ?element .\n"
        "  OPTIONAL { ?element rdfs:label ?label }\n"
        "} GROUP BY ?element ?label ORDER BY DESC(?findings)",
    ),
    Example(
        "tg:category",
        "How many findings per STRIDE / LINDDUN category? (categories carry skos:prefLabel)",
        "SELECT ?category ?name (COUNT(?finding) AS ?findings) WHERE {\n"
        "  ?finding tg:category ?category .\n"
        "  ?category skos:prefLabel ?name .\n"
        "} GROUP BY ?category ?name ORDER BY DESC(?findings)",
    ),
    Example(
        "tg:riskLevel",
        "Which findings carry the highest residual risk?",
        "SELECT ?finding ?element ?level ?score ?status WHERE {\n"
        "  ?finding tg:riskLevel ?level ; tg:riskScore ?score ; tg:focus ?element ; tg:controlStatus ?status .\n"
        "} ORDER BY DESC(?score) LIMIT 20",
    ),
    Example(
        "tg:appliedTechnique",
        "Which ATT&CK / ATLAS techniques realise the findings on each element? (techniques carry rdfs:label)",
        "SELECT DISTINCT ?element ?technique ?name WHERE {\n"
        "  ?app tg:onElement ?element ; tg:appliedTechnique ?technique .\n"
        "  ?technique rdfs:label ?name .\n"
        "} ORDER BY ?element ?technique",
    ),
    Example(
        "kb:mitigates",
        "Which mitigations counter the techniques that apply to my system? (mitigations carry rdfs:label)",
        "SELECT ?mitigation ?name (COUNT(DISTINCT ?technique) AS ?techniques) WHERE {\n"
        "  ?app tg:appliedTechnique ?technique .\n"
        "  ?mitigation kb:mitigates ?technique ; rdfs:label ?name .\n"
        "} GROUP BY ?mitigation ?name ORDER BY DESC(?techniques)",
    ),
    Example(
        "tg:perElementThreat",
        "Which categories apply to each element by its kind (inferred from applicability.ttl)?",
        "SELECT ?element ?label ?category WHERE {\n"
        "  ?element tg:perElementThreat ?category ; rdfs:label ?label .\n"
        "} ORDER BY ?element ?category",
    ),
    Example(
        "tg:crossesBoundary",
        "Which data flows cross a trust boundary, and what do they carry?",
        "SELECT ?flow ?source ?target ?asset WHERE {\n"
        "  ?flow tg:crossesBoundary true ; tg:source ?source ; tg:target ?target .\n"
        "  OPTIONAL { ?flow tg:carries ?asset }\n"
        "}",
    ),
    Example(
        "kb:revokedBy",
        "Which techniques of a release are revoked, and what replaces them?",
        "SELECT ?technique ?name ?replacement WHERE {\n"
        "  GRAPH <https://w3id.org/threatgraph/graph/release/attack-enterprise/18.1> {\n"
        "    ?technique a kb:Technique ; kb:revoked true ; kb:revokedBy ?replacement ; rdfs:label ?name }\n"
        "} ORDER BY ?technique",
    ),
)
"""The examples shown under "Terms queries use most"; each runs in tests/test_vocabulary.py."""

LABEL_SOURCES: tuple[LabelSource, ...] = (
    LabelSource(
        "threatgraph ontology", "classes and properties (tg:, tgml:, kb:)", ("owl:Class", "owl:ObjectProperty"),
        ("rdfs:label",), "definitions in skos:definition",
    ),
    LabelSource(
        "threatgraph ontology", "SKOS concepts: STRIDE, LINDDUN, data classifications, ML lifecycle stages",
        ("tg:ThreatCategory", "tg:DataClassification", "tgml:LifecycleStage"), ("skos:prefLabel",),
        "no rdfs:label; skos:notation gives the letter (S, T, …, L, I, …)",
    ),
    LabelSource(
        "threatgraph ontology", "other individuals: severities, control statuses, security/privacy properties",
        ("tg:Severity", "tg:ControlStatus", "tg:SecurityProperty"), ("rdfs:label",),
    ),
    LabelSource(
        "ATT&CK (STIX)", "techniques, tactics, mitigations, groups, software, campaigns, data sources and "
        "components, detection strategies, analytics, matrices",
        ("kb:Technique", "kb:Tactic", "kb:Mitigation", "kb:Group", "kb:Software", "kb:Campaign",
         "kb:DataComponent", "kb:DetectionStrategy", "kb:Analytic"),
        ("rdfs:label",), "the STIX name; aliases as skos:altLabel; no skos:prefLabel",
    ),
    LabelSource(
        "ATT&CK (STIX)", "platforms", ("kb:Platform",), ("rdfs:label", "skos:prefLabel"),
        "SKOS concepts made by the importer: both, same text",
    ),
    LabelSource(
        "ATLAS", "techniques, tactics, mitigations, case studies", ("kb:Technique", "kb:Tactic", "kb:Mitigation",
                                                                      "kb:CaseStudy"),
        ("rdfs:label",), "ATLAS mitigations have rdfs:label only; the ML lifecycle stages they link to "
        "(kb:lifecycleStage) have both",
    ),
    LabelSource(
        "ATLAS", "ML lifecycle stages of mitigations", ("kb:LifecycleStage",), ("rdfs:label", "skos:prefLabel"),
        "SKOS concepts made by the importer: both, same text",
    ),
    LabelSource("CAPEC", "attack patterns, courses of action", ("kb:AttackPattern", "kb:Mitigation"), ("rdfs:label",)),
    LabelSource("D3FEND", "techniques, artifacts, tactics (as published)", ("d3f:DefensiveTactic",), ("rdfs:label",)),
)


def curie(iri: str) -> str:
    """``tg:Finding`` for a known namespace, else ``<iri>``.

    >>> curie("https://w3id.org/threatgraph/ontology#focus"), curie("urn:x")
    ('tg:focus', '<urn:x>')
    """
    best = ""
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(iri) > len(ns) and len(ns) > len(PREFIXES.get(best, "")):
            best = prefix
    return f"{best}:{iri[len(PREFIXES[best]):]}" if best else f"<{iri}>"


def _text(g: rdflib.Graph, s: rdflib.term.Node, p: rdflib.URIRef) -> str:
    vals = sorted(
        (o for o in g.objects(s, p) if isinstance(o, rdflib.Literal)),
        key=lambda lit: (lit.language not in (None, "en"), str(lit)),
    )
    return " ".join(str(vals[0]).split()) if vals else ""


def _expr(g: rdflib.Graph, node: rdflib.term.Node, name: Callable[[str], str] | None = None) -> str:
    """A class expression in Manchester-like syntax (IRIs shown by ``name``, default :func:`curie`)."""
    name = name or curie
    if isinstance(node, rdflib.URIRef):
        return name(str(node))
    if isinstance(node, rdflib.Literal):
        return f'"{node}"' if node.datatype is None else f"{str(node).lower() if isinstance(node.toPython(), bool) else node}"
    prop = g.value(node, OWL.onProperty)
    if prop is not None:
        p = name(str(prop))
        for pred, word in ((OWL.hasValue, "value"), (OWL.someValuesFrom, "some"), (OWL.allValuesFrom, "only")):
            v = g.value(node, pred)
            if v is not None:
                return f"{p} {word} {_expr(g, v, name)}"
        for pred, word in ((OWL.cardinality, "exactly"), (OWL.minCardinality, "min"), (OWL.maxCardinality, "max"),
                           (OWL.qualifiedCardinality, "exactly"), (OWL.minQualifiedCardinality, "min"),
                           (OWL.maxQualifiedCardinality, "max")):
            v = g.value(node, pred)
            if v is not None:
                on = g.value(node, OWL.onClass)
                return f"{p} {word} {v}" + (f" {_expr(g, on, name)}" if on is not None else "")
        return f"{p} restriction"
    for pred, word in ((OWL.intersectionOf, " and "), (OWL.unionOf, " or ")):
        lst = g.value(node, pred)
        if lst is not None:
            return "(" + word.join(_expr(g, m, name) for m in rdflib.collection.Collection(g, lst)) + ")"
    lst = g.value(node, OWL.oneOf)
    if lst is not None:
        return "{" + ", ".join(_expr(g, m, name) for m in rdflib.collection.Collection(g, lst)) + "}"
    comp = g.value(node, OWL.complementOf)
    if comp is not None:
        return f"not {_expr(g, comp, name)}"
    return "(anonymous class)"


def _group_values(exprs: Iterable[str]) -> list[str]:
    """``p value a``, ``p value b`` → ``p value a, b`` (keeps the first position of each property)."""
    out: list[str] = []
    merged: dict[str, int] = {}
    for e in exprs:
        head, sep, val = e.partition(" value ")
        if sep and " " not in head and not val.startswith("("):
            if head in merged:
                out[merged[head]] += f", {val}"
                continue
            merged[head] = len(out)
        out.append(e)
    return out


def _ours(iri: str) -> bool:
    return iri.startswith(OURS)


def build_vocabulary(onto: Ontology | None = None, directory: Path | None = None) -> Vocabulary:
    """Collect every term of our namespaces from the ontology modules (``directory`` or the shipped ones)."""
    onto = onto or load_ontology(directory)
    g = onto.graph
    files = onto.files or tuple(ontology_files(directory))
    declared_in: dict[str, str] = {}
    for f in files:
        mg = rdflib.Graph()
        mg.parse(f, format="turtle")
        for s, _, _ in mg.triples((None, RDF.type, None)):
            if isinstance(s, rdflib.URIRef) and _ours(str(s)):
                declared_in.setdefault(str(s), f.name)
    terms: list[Term] = []
    for iri, module in declared_in.items():
        s = rdflib.URIRef(iri)
        types = set(g.objects(s, RDF.type))
        kind = next((k for t, k in _KINDS if t in types), "individual")
        supers = sorted(
            curie(str(o)) for o in g.objects(s, RDFS.subClassOf) if isinstance(o, rdflib.URIRef)
        )
        axioms = sorted(_expr(g, o) for o in g.objects(s, RDFS.subClassOf) if not isinstance(o, rdflib.URIRef))
        axioms = _group_values(axioms)
        axioms += [f"≡ {_expr(g, o)}" for o in sorted(g.objects(s, OWL.equivalentClass), key=str)]
        axioms += [f"{_expr(g, o)} ⊑ {curie(iri)}" for o in sorted(g.subjects(RDFS.subClassOf, s), key=str)
                   if isinstance(o, rdflib.BNode)]
        links: list[tuple[str, str]] = []
        if kind == "individual":
            for p in (TG.violates, SKOS.broader, TG.rank, TG.sensitivityRank):
                for o in sorted(g.objects(s, rdflib.URIRef(str(p))), key=str):
                    links.append((curie(str(p)), _expr(g, o)))
        terms.append(
            Term(
                iri=iri,
                curie=curie(iri),
                kind=kind,
                module=module,
                label=_text(g, s, RDFS.label) or _text(g, s, SKOS.prefLabel),
                definition=_text(g, s, SKOS.definition) or _text(g, s, RDFS.comment),
                notes=tuple(" ".join(str(n).split()) for n in sorted(g.objects(s, SKOS.scopeNote), key=str)),
                superclasses=tuple(supers),
                axioms=tuple(axioms),
                domain=tuple(sorted(_expr(g, o) for o in g.objects(s, RDFS.domain))),
                range=tuple(sorted(_expr(g, o) for o in g.objects(s, RDFS.range))),
                characteristics=tuple(sorted(w for t, w in _CHARACTERISTICS.items() if t in types))
                + tuple(f"inverse of {curie(str(o))}" for o in sorted(g.objects(s, OWL.inverseOf), key=str))
                + tuple(f"sub-property of {curie(str(o))}" for o in sorted(g.objects(s, RDFS.subPropertyOf), key=str)),
                types=tuple(sorted(curie(str(t)) for t in types if t != OWL.NamedIndividual)),
                notation=_text(g, s, SKOS.notation),
                scheme=", ".join(sorted(curie(str(o)) for o in g.objects(s, SKOS.inScheme))),
                links=tuple(links),
            )
        )
    order = {name: i for i, (name, _, _) in enumerate(MODULES)}
    terms.sort(key=lambda t: (order.get(t.module, len(order)), t.module, t.curie.lower(), t.curie))
    return Vocabulary(terms, tuple(f.name for f in files))


# -- Markdown --------------------------------------------------------------------------------------
_CLASS_KINDS = ("class",)
_PROP_KINDS = ("object property", "datatype property", "annotation property", "property")
_INDIVIDUAL_KINDS = ("individual", "concept scheme")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(items: Sequence[str]) -> str:
    return ", ".join(f"`{i}`" for i in items)


def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return [*out, ""]


def _signature(t: Term, quote: str) -> str:
    """``object property; domain tg:Finding; range tg:ThreatCategory``."""
    parts = [" ".join([t.kind, *t.characteristics])]
    if t.domain:
        parts.append("domain " + ", ".join(f"{quote}{d}{quote}" for d in t.domain))
    if t.range:
        parts.append("range " + ", ".join(f"{quote}{r}{quote}" for r in t.range))
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _definition(t: Term) -> str:
    return " ".join([t.definition, *t.notes]).strip()


def vocabulary_markdown(vocab: Vocabulary | None = None) -> str:
    """The reference as Markdown; ``docs/vocabulary.md`` is exactly this text."""
    v = vocab or build_vocabulary()
    L: list[str] = [
        "# Vocabulary reference",
        "",
        "Generated by `threatgraph vocabulary --format markdown` from `ontology/*.ttl`; do not edit "
        "(regenerate with `threatgraph vocabulary --format markdown > docs/vocabulary.md`; a test fails when "
        "this file is stale). The same reference as HTML: `threatgraph vocabulary --format html`.",
        "",
        "Every query sees these prefixes predeclared:",
        "",
    ]
    L += _md_table(["prefix", "namespace"], [[f"`{p}:`", f"`{ns}`"] for p, ns in PREFIXES.items()])
    L += ["## Which label property to use", "",
          "Query `?x rdfs:label|skos:prefLabel ?name` to cover both when a query mixes sources.", ""]
    L += _md_table(
        ["source", "resources", "label property", "note"],
        [[s.source, s.resources, _code(s.properties), s.note] for s in LABEL_SOURCES],
    )
    L += ["## Terms queries use most", ""]
    for ex in EXAMPLES:
        t = v.term(ex.term)
        L += [f"### `{ex.term}` — {t.label}", "", _signature(t, "`"), ""]
        L += [_definition(t), ""] if _definition(t) else []
        L += [f"*{ex.question}*", "", "```sparql", ex.query, "```", ""]
    for name, title, intro in MODULES:
        L += _md_module(v, name, title, intro)
    extra = sorted({t.module for t in v.terms} - {m for m, _, _ in MODULES})
    for name in extra:
        L += _md_module(v, name, f"Module {name}", "")
    L += ["## Per-element categories (applicability.ttl)", "",
          "Class axioms from which the OWL 2 RL closure infers `?element tg:perElementThreat ?category`.", ""]
    L += _md_table(["element class", "categories"], _applicability(v))
    return "\n".join(L).rstrip("\n") + "\n"


def _applicability(v: Vocabulary) -> list[list[str]]:
    rows = []
    for t in v.terms:
        for a in t.axioms:
            if a.startswith("tg:perElementThreat value "):
                rows.append([f"`{t.curie}`", a.removeprefix("tg:perElementThreat value ")])
    return rows


def _md_module(v: Vocabulary, name: str, title: str, intro: str) -> list[str]:
    classes = v.of(name, _CLASS_KINDS)
    props = v.of(name, _PROP_KINDS)
    inds = v.of(name, _INDIVIDUAL_KINDS)
    if not (classes or props or inds):
        return []
    L = [f"## {title}", "", f"`ontology/{name}`. {intro}".rstrip(), ""]
    if classes:
        L += [f"### Classes ({len(classes)})", ""]
        L += _md_table(
            ["class", "label", "definition", "superclasses", "axioms"],
            [[f"`{t.curie}`", t.label, _definition(t), _code(t.superclasses), "; ".join(t.axioms)] for t in classes],
        )
    if props:
        L += [f"### Properties ({len(props)})", ""]
        L += _md_table(
            ["property", "kind", "label", "definition", "domain", "range"],
            [[f"`{t.curie}`", " ".join([t.kind.removesuffix(" property"), *t.characteristics]), t.label,
              _definition(t), _code(t.domain), _code(t.range)] for t in props],
        )
    if inds:
        L += [f"### Individuals and concepts ({len(inds)})", ""]
        L += _md_table(
            ["individual", "type", "notation", "label", "definition", "scheme", "links"],
            [[f"`{t.curie}`", _code(t.types), t.notation, t.label, _definition(t), t.scheme,
              "; ".join(f"{p} {o}" for p, o in t.links)] for t in inds],
        )
    return L


# -- HTML ------------------------------------------------------------------------------------------
def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _link(c: str, known: set[str]) -> str:
    return f'<a href="#{_h(c)}"><code>{_h(c)}</code></a>' if c in known else f"<code>{_h(c)}</code>"


def _links(items: Sequence[str], known: set[str]) -> str:
    return ", ".join(_link(i, known) for i in items)


def _html_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_h(h)}</th>" for h in head) + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows]
    return [*out, "</tbody>", "</table>"]


def vocabulary_html(vocab: Vocabulary | None = None) -> str:
    """The reference as one standalone HTML page; every term has an anchor ``#prefix:Name``."""
    v = vocab or build_vocabulary()
    known = {t.curie for t in v.terms}
    B: list[str] = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<title>threatgraph vocabulary</title>",
        "<style>body{font-family:sans-serif;max-width:80em;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.25em .5em;"
        "vertical-align:top;text-align:left}pre{background:#f4f4f4;padding:.5em}</style>",
        "</head>", "<body>", "<h1>threatgraph vocabulary</h1>",
        "<p>Generated from the ontology files (<code>ontology/*.ttl</code>); the same content as "
        "<code>docs/vocabulary.md</code>.</p>",
        "<h2>Prefixes</h2>",
    ]
    B += _html_table(["prefix", "namespace"], [[f"<code>{_h(p)}:</code>", f"<code>{_h(ns)}</code>"]
                                               for p, ns in PREFIXES.items()])
    B += ['<h2 id="labels">Which label property to use</h2>']
    B += _html_table(["source", "resources", "label property", "note"],
                     [[_h(s.source), _h(s.resources), _links(s.properties, known), _h(s.note)] for s in LABEL_SOURCES])
    B += ['<h2 id="examples">Terms queries use most</h2>']
    for ex in EXAMPLES:
        t = v.term(ex.term)
        B += [f"<h3>{_link(ex.term, known)} — {_h(t.label)}</h3>", f"<p>{_h(_signature(t, ''))}</p>",
              f"<p>{_h(_definition(t))}</p>",
              f"<p><em>{_h(ex.question)}</em></p>", f"<pre><code>{_h(ex.query)}</code></pre>"]
    for name, title, intro in MODULES:
        classes, props, inds = v.of(name, _CLASS_KINDS), v.of(name, _PROP_KINDS), v.of(name, _INDIVIDUAL_KINDS)
        B += [f'<h2 id="module-{_h(name)}">{_h(title)}</h2>', f"<p><code>ontology/{_h(name)}</code>. {_h(intro)}</p>"]

        def anchor(t: Term) -> str:
            return f'<code id="{_h(t.curie)}" title="{_h(t.iri)}">{_h(t.curie)}</code>'

        if classes:
            B += [f"<h3>Classes ({len(classes)})</h3>"]
            B += _html_table(["class", "label", "definition", "superclasses", "axioms"],
                             [[anchor(t), _h(t.label), _h(_definition(t)), _links(t.superclasses, known),
                               _h("; ".join(t.axioms))] for t in classes])
        if props:
            B += [f"<h3>Properties ({len(props)})</h3>"]
            B += _html_table(["property", "kind", "label", "definition", "domain", "range"],
                             [[anchor(t), _h(" ".join([t.kind.removesuffix(" property"), *t.characteristics])),
                               _h(t.label), _h(_definition(t)), _links(t.domain, known), _links(t.range, known)]
                              for t in props])
        if inds:
            B += [f"<h3>Individuals and concepts ({len(inds)})</h3>"]
            B += _html_table(["individual", "type", "notation", "label", "definition", "scheme", "links"],
                             [[anchor(t), _links(t.types, known), _h(t.notation), _h(t.label), _h(_definition(t)),
                               _h(t.scheme), _h("; ".join(f"{p} {o}" for p, o in t.links))] for t in inds])
    B += ['<h2 id="applicability">Per-element categories</h2>']
    B += _html_table(["element class", "categories"],
                     [[_h(c.strip("`")), _h(cats)] for c, cats in _applicability(v)])
    B += ["</body>", "</html>"]
    return "\n".join(B) + "\n"
