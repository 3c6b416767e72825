"""The bridge: curated mappings from ATLAS / ATT&CK techniques to ML asset types and STRIDE / LINDDUN.

The mappings live in ``ontology/mappings/*.ttl`` (vocabulary: ``ontology/bridge.ttl``, policy:
``docs/bridge.md``). This module parses them, checks them against the ontology and the reference
data, loads them into the named graph ``graph/bridge`` and computes coverage.

>>> ms = parse_mappings([mappings_dir() / "atlas.ttl"])
>>> m = next(m for m in ms if m.technique_id == "AML.T0020")
>>> TGML.TrainingDataset in m.assets, STRIDE.Tampering in m.categories
(True, True)
>>> parent_id("T1552.001"), parent_id("AML.T0020")
('T1552', None)
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from threatgraph.errors import InputError
from threatgraph.knowledge.bridgegraph import (  # the loader every analysis runs, in a module of its own
    BRIDGE_GRAPH,
    _parse_file,
    load_bridge,
    mapping_files,
    mappings_dir,
)
from threatgraph.resources import ontology_dir
from threatgraph.store.base import Store
from threatgraph.terms import ATLAS, ATTACK, DCT, LINDDUN, OWL, RDF, RDFS, STRIDE, TG, TGML

MAPPING_NS = "https://w3id.org/threatgraph/mapping/"
"""Namespace of mapping nodes: ``<https://w3id.org/threatgraph/mapping/AML.T0020>``."""
MIN_JUSTIFICATION = 30
ELEMENT_KINDS = (TG.ExternalEntity, TG.Process, TG.DataStore)


@dataclass(frozen=True)
class TechniqueMapping:
    """One mapping node: a technique, the asset types it targets and the categories it realises."""

    iri: str
    technique: str
    assets: frozenset[str]
    categories: frozenset[str]
    exposed_when: frozenset[str] = frozenset()
    reduced_by: frozenset[str] = frozenset()
    requires_personal_data: bool = False
    preparatory: bool = False
    justification: str = ""
    sources: tuple[str, ...] = ()
    file: str = ""
    line: int = 0

    @property
    def technique_id(self) -> str:
        """``AML.T0020`` or ``T1190`` (the last path segment of the technique IRI)."""
        return self.technique.rsplit("/", 1)[-1]

    @property
    def framework(self) -> str:
        """``atlas``, ``attack`` or ``unknown`` (by the technique IRI's namespace)."""
        if self.technique.startswith(ATLAS):
            return "atlas"
        if self.technique.startswith(ATTACK):
            return "attack"
        return "unknown"

    @property
    def where(self) -> str:
        """``file:line`` of the node, for messages."""
        return f"{self.file}:{self.line}" if self.line else self.file or self.iri

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form (IRIs abbreviated to local names)."""
        return {
            "technique": self.technique_id,
            "framework": self.framework,
            "assets": sorted(_local(a) for a in self.assets),
            "categories": sorted(_local(c) for c in self.categories),
            "exposedWhen": sorted(_local(a) for a in self.exposed_when),
            "reducedBy": sorted(_local(a) for a in self.reduced_by),
            "requiresPersonalData": self.requires_personal_data,
            "preparatory": self.preparatory,
            "justification": self.justification,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class Problem:
    """A defect found by :func:`check_mappings`: where it is and what is wrong."""

    where: str
    technique: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.technique}: {self.message}"


@dataclass
class Vocabulary:
    """What mappings may refer to: ML asset classes (with superclasses), categories, attributes."""

    asset_classes: dict[str, frozenset[str]]
    """tgml asset class IRI → its named tgml/tg superclasses (transitive, itself excluded)."""
    categories: frozenset[str]
    attributes: frozenset[str]


@dataclass
class TechniqueCoverage:
    """Which of a set of technique IDs are mapped: explicitly, by inheritance from the parent, or not."""

    total: int
    explicit: list[str]
    inherited: dict[str, str]
    unmapped: list[str]
    unknown: list[str]
    """Mapped IDs that are not in the reference set (stale or mistyped)."""

    @property
    def mapped(self) -> int:
        return len(self.explicit) + len(self.inherited)

    @property
    def percent(self) -> float:
        return 100.0 * self.mapped / self.total if self.total else 100.0

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "mapped": self.mapped,
            "percent": round(self.percent, 2),
            "explicit": len(self.explicit),
            "inherited": dict(sorted(self.inherited.items())),
            "unmapped": self.unmapped,
            "unknown": self.unknown,
        }


@dataclass
class AssetCoverage:
    """Per ML asset type: mappings that target it directly, and through a superclass."""

    direct: dict[str, int] = field(default_factory=dict)
    via_superclass: dict[str, int] = field(default_factory=dict)

    @property
    def unmapped(self) -> list[str]:
        return sorted(c for c, n in self.direct.items() if n == 0 and self.via_superclass.get(c, 0) == 0)

    @property
    def without_direct(self) -> list[str]:
        return sorted(c for c, n in self.direct.items() if n == 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "types": len(self.direct),
            "unmapped": [_local(c) for c in self.unmapped],
            "withoutDirectMapping": [_local(c) for c in self.without_direct],
            "direct": {_local(c): n for c, n in sorted(self.direct.items())},
            "viaSuperclass": {_local(c): n for c, n in sorted(self.via_superclass.items())},
        }


# ------------------------------------------------------------------------------------------------
# parsing and loading
# ------------------------------------------------------------------------------------------------
def _node_lines(path: Path) -> dict[str, int]:
    """Mapping-node local name → first line where it is the subject (``m:ID a tg:TechniqueMapping``)."""
    out: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for no, line in enumerate(text.splitlines(), 1):
        head = line.split(" ", 1)[0]
        if head.startswith("m:"):
            out.setdefault(head[2:], no)
        elif head.startswith("<" + MAPPING_NS):
            out.setdefault(head[len(MAPPING_NS) + 1 : -1], no)
    return out


def _build(
    triples: Iterable[ox.Triple], file: str = "", lines: MappingABC[str, int] | None = None
) -> list[TechniqueMapping]:
    by_subject: dict[str, dict[str, list[ox.NamedNode | ox.BlankNode | ox.Literal]]] = defaultdict(
        lambda: defaultdict(list)
    )
    typed: list[str] = []
    for t in triples:
        s = t.subject
        if not isinstance(s, ox.NamedNode):
            continue
        o = t.object
        if isinstance(o, ox.Triple):
            continue
        by_subject[s.value][t.predicate.value].append(o)
        if t.predicate.value == RDF.type and o.value == TG.TechniqueMapping:
            typed.append(s.value)
    out: list[TechniqueMapping] = []
    for iri in typed:
        p = by_subject[iri]

        def iris(pred: str, p: dict[str, list[Any]] = p) -> frozenset[str]:
            return frozenset(o.value for o in p.get(pred, []) if isinstance(o, ox.NamedNode))

        def flag(pred: str, p: dict[str, list[Any]] = p) -> bool:
            return any(isinstance(o, ox.Literal) and o.value in ("true", "1") for o in p.get(pred, []))

        techniques = sorted(iris(TG.technique))
        just = [o.value for o in p.get(TG.justification, []) if isinstance(o, ox.Literal)]
        out.append(
            TechniqueMapping(
                iri=iri,
                technique=techniques[0] if techniques else "",
                assets=iris(TG.targetsAsset),
                categories=iris(TG.realizes),
                exposed_when=iris(TG.exposedWhen),
                reduced_by=iris(TG.reducedBy),
                requires_personal_data=flag(TG.requiresPersonalData),
                preparatory=flag(TG.preparatory),
                justification=just[0] if just else "",
                sources=tuple(sorted(o.value for o in p.get(DCT.source, []) if isinstance(o, ox.Literal))),
                file=file,
                line=(lines or {}).get(iri[len(MAPPING_NS) :], 0) if iri.startswith(MAPPING_NS) else 0,
            )
        )
    return sorted(out, key=lambda m: (m.framework, m.technique_id, m.iri))


def parse_mappings(paths: Sequence[Path] | None = None) -> list[TechniqueMapping]:
    """Parse mapping files (default: every file in :func:`mappings_dir`); InputError names a bad file."""
    files = list(paths) if paths is not None else mapping_files()
    out: list[TechniqueMapping] = []
    for path in files:
        out.extend(_build(_parse_file(path), str(path), _node_lines(path)))
    return out


def mappings_from_store(store: Store) -> list[TechniqueMapping]:
    """The mappings in ``graph/bridge`` of ``store`` (after :func:`load_bridge`)."""
    rows = store.select("SELECT ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }", {"g": ox.NamedNode(BRIDGE_GRAPH)})
    triples = []
    for r in rows:
        s, p, o = r["s"], r["p"], r["o"]
        if isinstance(s, ox.NamedNode | ox.BlankNode) and isinstance(p, ox.NamedNode):
            triples.append(ox.Triple(s, p, o))
    return _build(triples, file=BRIDGE_GRAPH)


# ------------------------------------------------------------------------------------------------
# applying the mappings to a system model: exposure conditions
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exposure:
    """A model element exposed to a mapped technique, and which reducing attributes it has."""

    element: str
    mapping: TechniqueMapping
    exposed_by: str
    """The tg:exposedWhen attribute that holds (``""`` when the mapping has no exposure condition)."""
    reduced_by: frozenset[str]
    """The mapping's tg:reducedBy attributes that hold for the element."""


_CANDIDATES = (
    "SELECT DISTINCT ?e ?m WHERE {\n"
    f"  GRAPH <{BRIDGE_GRAPH}> {{ ?m a tg:TechniqueMapping ; tg:targetsAsset ?cls }}\n"
    "  ?e a ?type . ?type rdfs:subClassOf* ?cls .\n"
    "}"
)
_TRUE_ATTRIBUTES = "SELECT ?x ?a WHERE { ?a a tg:SecurityAttribute . ?x ?a true }"
_FLOWS = "SELECT ?f ?s ?t WHERE { ?f tg:target ?t . OPTIONAL { ?f tg:source ?s } }"


def exposures(store: Store, mappings: Sequence[TechniqueMapping] | None = None) -> list[Exposure]:
    """Every (element, mapping) where the element's type is (a subclass of) a targeted asset type and
    the exposure condition holds; needs the ontology (for rdfs:subClassOf), the model and
    ``graph/bridge`` in ``store``.

    * ``tg:exposedWhen a``: ``a`` is true on the element, on a data flow into it, or on the source of
      such a flow (any one of the mapping's attributes suffices); no tg:exposedWhen: always exposed.
    * ``tg:reducedBy a`` holds when ``a`` is true on the element itself, or on every data flow into it
      (on the flow or on its source) when it has incoming flows.
    """
    by_iri = {m.iri: m for m in (mappings if mappings is not None else mappings_from_store(store))}
    true_attrs: dict[str, set[str]] = defaultdict(set)
    for r in store.select(_TRUE_ATTRIBUTES):
        true_attrs[r["x"].value].add(r["a"].value)
    incoming: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for r in store.select(_FLOWS):
        incoming[r["t"].value].append((r["f"].value, r["s"].value if "s" in r else None))

    def on_flow(flow: str, source: str | None, attr: str) -> bool:
        return attr in true_attrs.get(flow, ()) or (source is not None and attr in true_attrs.get(source, ()))

    out: list[Exposure] = []
    for r in store.select(_CANDIDATES):
        element, mapping = r["e"].value, by_iri.get(r["m"].value)
        if mapping is None:
            continue
        flows = incoming.get(element, [])
        own = true_attrs.get(element, set())
        exposed_by = ""
        if mapping.exposed_when:
            hits = sorted(
                a for a in mapping.exposed_when if a in own or any(on_flow(f, s, a) for f, s in flows)
            )
            if not hits:
                continue
            exposed_by = hits[0]
        reduced = frozenset(
            a for a in mapping.reduced_by if a in own or (flows and all(on_flow(f, s, a) for f, s in flows))
        )
        out.append(Exposure(element, mapping, exposed_by, reduced))
    return sorted(out, key=lambda x: (x.element, x.mapping.framework, x.mapping.technique_id))


# ------------------------------------------------------------------------------------------------
# reference data: ontology vocabulary, ATLAS and ATT&CK technique IDs
# ------------------------------------------------------------------------------------------------
def load_vocabulary(directory: Path | None = None) -> Vocabulary:
    """Asset classes (tgml classes under a core element kind), categories and attributes of the ontology."""
    d = directory or ontology_dir()
    triples: list[ox.Triple] = []
    for path in sorted(d.glob("*.ttl")):
        triples.extend(_parse_file(path))
    supers: dict[str, set[str]] = defaultdict(set)
    categories: set[str] = set()
    attributes: set[str] = set()
    classes: set[str] = set()
    for t in triples:
        if not isinstance(t.subject, ox.NamedNode) or not isinstance(t.object, ox.NamedNode):
            continue
        s, p, o = t.subject.value, t.predicate.value, t.object
        if p == RDFS.subClassOf:
            supers[s].add(o.value)
        elif p == RDF.type and o.value == TG.ThreatCategory:
            categories.add(s)
        elif p == RDF.type and o.value == TG.SecurityAttribute:
            attributes.add(s)
        elif p == RDF.type and o.value == OWL.Class:
            classes.add(s)

    def ancestors(c: str) -> set[str]:
        seen: set[str] = set()
        todo = list(supers.get(c, ()))
        while todo:
            x = todo.pop()
            if x not in seen:
                seen.add(x)
                todo.extend(supers.get(x, ()))
        return seen

    assets = {
        c: frozenset(a for a in ancestors(c) if a.startswith(TGML) or a.startswith(TG))
        for c in classes
        if c.startswith(TGML) and ancestors(c) & set(ELEMENT_KINDS)
    }
    return Vocabulary(assets, frozenset(categories), frozenset(attributes))


def atlas_techniques(path: Path) -> dict[str, str]:
    """ATLAS technique ID → name, from an ``ATLAS.yaml`` (every matrix)."""
    import yaml  # here: the analysis path imports this module, never this function (~40 ms)

    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err}") from err
    except yaml.YAMLError as err:
        raise InputError(
            f"{path}: invalid YAML: {err}", hint="pass the ATLAS.yaml of an ATLAS release"
        ) from err
    if not isinstance(data, dict) or not isinstance(data.get("matrices"), list):
        raise InputError(f"{path}: not an ATLAS.yaml (no 'matrices' list)", hint="pass ATLAS.yaml")
    out: dict[str, str] = {}
    for matrix in data["matrices"]:
        for t in matrix.get("techniques", []) if isinstance(matrix, dict) else []:
            if isinstance(t, dict) and isinstance(t.get("id"), str):
                out[t["id"]] = str(t.get("name", ""))
    return out


def attack_active_techniques(path: Path) -> dict[str, str]:
    """Active (not revoked, not deprecated) ATT&CK technique ID → name, from a STIX bundle."""
    try:
        with path.open(encoding="utf-8") as fh:
            bundle = json.load(fh)
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err}") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: invalid JSON: {err}", hint="pass an ATT&CK STIX bundle") from err
    out: dict[str, str] = {}
    for o in bundle.get("objects", []) if isinstance(bundle, dict) else []:
        if o.get("type") != "attack-pattern" or o.get("revoked") or o.get("x_mitre_deprecated"):
            continue
        for ref in o.get("external_references", []):
            if ref.get("source_name") == "mitre-attack" and isinstance(ref.get("external_id"), str):
                out[ref["external_id"]] = str(o.get("name", ""))
    return out


# ------------------------------------------------------------------------------------------------
# checking and coverage
# ------------------------------------------------------------------------------------------------
def parent_id(technique_id: str) -> str | None:
    """The parent technique of a sub-technique ID (``T1552.001`` → ``T1552``), else None."""
    head, sep, tail = technique_id.rpartition(".")
    if not sep or not tail.isdigit() or "." not in technique_id.removeprefix("AML."):
        return None
    return head


def check_mappings(
    mappings: Sequence[TechniqueMapping],
    vocabulary: Vocabulary,
    *,
    atlas_ids: Iterable[str] | None = None,
    attack_ids: Iterable[str] | None = None,
) -> list[Problem]:
    """Every defect of the mappings: unknown classes, categories, attributes or techniques, missing or
    short or duplicated justifications, missing sources, duplicate nodes. ``atlas_ids`` / ``attack_ids``
    (the valid IDs) are checked only when given."""
    problems: list[Problem] = []
    atlas_set = set(atlas_ids) if atlas_ids is not None else None
    attack_set = set(attack_ids) if attack_ids is not None else None
    just_count = Counter(m.justification.strip() for m in mappings if m.justification.strip())
    tech_count = Counter(m.technique for m in mappings if m.technique)

    for m in mappings:
        tid = m.technique_id or "?"

        def bad(msg: str, m: TechniqueMapping = m, tid: str = tid) -> None:
            problems.append(Problem(m.where, tid, msg))

        if not m.technique:
            bad("no tg:technique")
        elif m.framework == "unknown":
            bad(f"technique <{m.technique}> is neither an ATLAS nor an ATT&CK IRI")
        else:
            if m.iri != MAPPING_NS + m.technique_id:
                bad(f"node <{m.iri}> should be named <{MAPPING_NS}{m.technique_id}>")
            if tech_count[m.technique] > 1:
                bad("technique mapped by more than one node")
            if m.framework == "atlas" and atlas_set is not None and m.technique_id not in atlas_set:
                bad("unknown ATLAS technique (not in the ATLAS release)")
            if m.framework == "attack" and attack_set is not None and m.technique_id not in attack_set:
                bad("not an active ATT&CK technique (unknown, revoked or deprecated)")
        if not m.assets:
            bad("no tg:targetsAsset")
        for a in sorted(m.assets - vocabulary.asset_classes.keys()):
            bad(f"unknown asset type <{a}> (not a tgml asset class in ontology/ml.ttl)")
        if not m.categories:
            bad("no tg:realizes category")
        for c in sorted(m.categories - vocabulary.categories):
            bad(f"unknown category <{c}> (not a STRIDE or LINDDUN concept)")
        for a in sorted((m.exposed_when | m.reduced_by) - vocabulary.attributes):
            bad(f"unknown security attribute <{a}> in tg:exposedWhen / tg:reducedBy")
        if m.requires_personal_data and not any(c.startswith(LINDDUN) for c in m.categories):
            bad("tg:requiresPersonalData without a LINDDUN category")
        j = m.justification.strip()
        if len(j) < MIN_JUSTIFICATION:
            bad(f"justification missing or shorter than {MIN_JUSTIFICATION} characters")
        elif just_count[j] > 1:
            bad("justification duplicated verbatim in another mapping")
        if not m.sources:
            bad("no dct:source")
    return problems


def technique_coverage(
    mappings: Iterable[TechniqueMapping], technique_ids: Iterable[str]
) -> TechniqueCoverage:
    """Coverage of ``technique_ids`` by the mappings, with sub-technique inheritance from the parent."""
    ids = sorted(set(technique_ids))
    mapped = {m.technique_id for m in mappings if m.technique}
    explicit, unmapped = [], []
    inherited: dict[str, str] = {}
    for tid in ids:
        if tid in mapped:
            explicit.append(tid)
            continue
        parent = parent_id(tid)
        if parent is not None and parent in mapped:
            inherited[tid] = parent
        else:
            unmapped.append(tid)
    return TechniqueCoverage(len(ids), explicit, inherited, unmapped, sorted(mapped - set(ids)))


def asset_coverage(mappings: Iterable[TechniqueMapping], vocabulary: Vocabulary) -> AssetCoverage:
    """How many mappings target each tgml asset type directly and through one of its superclasses."""
    direct: Counter[str] = Counter()
    for m in mappings:
        direct.update(m.assets)
    cov = AssetCoverage()
    for cls, ancestors in vocabulary.asset_classes.items():
        cov.direct[cls] = direct.get(cls, 0)
        cov.via_superclass[cls] = sum(direct.get(a, 0) for a in ancestors)
    return cov


def category_counts(mappings: Iterable[TechniqueMapping]) -> dict[str, int]:
    """Mappings per STRIDE / LINDDUN category (local names prefixed ``stride:`` / ``linddun:``)."""
    c: Counter[str] = Counter()
    for m in mappings:
        c.update(m.categories)
    return {_curie(k): n for k, n in sorted(c.items())}


def _local(iri: str) -> str:
    for sep in ("#", "/"):
        if sep in iri:
            iri = iri.rsplit(sep, 1)[-1]
    return iri


def _curie(iri: str) -> str:
    for prefix, ns in (("stride", STRIDE), ("linddun", LINDDUN), ("tgml", TGML), ("tg", TG)):
        if iri.startswith(ns):
            return f"{prefix}:{iri[len(ns) :]}"
    return iri


__all__ = [
    "BRIDGE_GRAPH",
    "MAPPING_NS",
    "AssetCoverage",
    "Exposure",
    "Problem",
    "TechniqueCoverage",
    "TechniqueMapping",
    "Vocabulary",
    "asset_coverage",
    "atlas_techniques",
    "attack_active_techniques",
    "category_counts",
    "check_mappings",
    "exposures",
    "load_bridge",
    "load_vocabulary",
    "mapping_files",
    "mappings_dir",
    "mappings_from_store",
    "parent_id",
    "parse_mappings",
    "technique_coverage",
]
