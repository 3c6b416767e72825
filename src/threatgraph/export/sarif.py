"""SARIF 2.1.0: one result per finding, for code-scanning dashboards.

Each result has the rule id, a SARIF level from the finding's level (docs/risk.md: critical/high →
error, medium → warning, low/info → note; the rule's severity is a property), the element as a
logical location (its IRI) and the model file as a physical location with the line where the element
first appears (its IRI, a prefixed name of it, or its source id for imported OTM / Threat Dragon /
Threagile files). Rule help lists the techniques and mitigations. A threat that the model's declared
protective facts mitigate (a rule with ``mitigated-by``) is kept with properties ``controlStatus`` and
``mitigatedBy`` and an accepted ``inSource`` suppression, so dashboards list it as handled, not open.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from threatgraph import __version__
from threatgraph.export.context import FindingView, ReportContext
from threatgraph.export.jsonindent import dumps_indent2
from threatgraph.store import Store
from threatgraph.terms import graph_iri

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
_PREFIX = re.compile(r"^\s*(?:@prefix|PREFIX)\s+([A-Za-z][\w.-]*)?:\s*<([^>]*)>", re.IGNORECASE)


def source_ids(store: Store) -> dict[str, list[str]]:
    """dct:identifier values of model elements (the source ids of imported models)."""
    out: dict[str, list[str]] = {}
    query = "SELECT ?e ?i WHERE { GRAPH <" + graph_iri("model") + "> { ?e dct:identifier ?i } }"
    for r in store.select(query):
        out.setdefault(r["e"].value, []).append(r["i"].value)
    return out


_WORD = re.compile(r"\w+")


class LineIndex:
    """Finds the first line of a model file on which an element appears.

    Each file's words (runs of word characters) are indexed once; a mention of an element (``<IRI>``, a prefixed
    name, a source id, each bounded by non-word characters) holds its words whole, so only the lines with
    its rarest words are searched (searching every line per element made SARIF quadratic in the model:
    4 s of CPU at 1 k elements)."""

    def __init__(self, files: Sequence[str]) -> None:
        self.files: list[tuple[str, list[str], dict[str, str]]] = []
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[str, int] | None] = {}
        self._words: list[dict[str, list[int]] | None] = []
        for f in files:
            try:
                lines = Path(f).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            prefixes: dict[str, str] = {}
            for line in lines:
                m = _PREFIX.match(line)
                if m:
                    prefixes[m.group(1) or ""] = m.group(2)
            self.files.append((f, lines, prefixes))
            self._words.append(None)

    def find(self, iri: str, ids: Sequence[str] = ()) -> tuple[str, int] | None:
        """(file, 1-based line) of the first mention of ``iri`` (or one of its source ``ids``)."""
        key = (iri, tuple(ids))
        if key not in self._cache:
            self._cache[key] = self._find(iri, ids)
        return self._cache[key]

    def _find(self, iri: str, ids: Sequence[str]) -> tuple[str, int] | None:
        """The first line with ``<IRI>``, a prefixed name of it (``(?<![\\w:])p:local(?![\\w-])``), or a
        source id (``"id"`` in JSON, a YAML key or value). The IRI's forms are tested as strings (a
        regular expression compiled per element cost ~0.3 ms each); the ids' forms as expressions."""
        for k, (f, lines, prefixes) in enumerate(self.files):
            literals = [f"<{iri}>"]  # the text each form matches
            names = [f"{p}:{iri[len(ns):]}" for p, ns in prefixes.items() if iri.startswith(ns) and len(iri) > len(ns)]
            literals += names
            rx = None
            if ids:
                pats = []
                for i in ids:
                    pats.append(re.escape(json.dumps(i)))  # "id" in JSON
                    pats.append(rf"^\s*{re.escape(i)}\s*:|:\s*{re.escape(i)}\s*$|^\s*{re.escape(repr(i))}\s*:")  # YAML key/value
                    literals += [json.dumps(i), i, repr(i)]
                rx = re.compile("|".join(pats))
            candidates = self._candidates(k, literals)
            for n in candidates if candidates is not None else range(len(lines)):
                line = lines[n]
                if literals[0] in line or any(_prefixed_at(line, name) for name in names) or (rx is not None and rx.search(line)):
                    return f, n + 1
        return None

    def _candidates(self, k: int, literals: Sequence[str]) -> list[int] | None:
        """The lines of file ``k`` (0-based, in order) that hold every word of one of ``literals``; None
        when a literal has no word (every line is a candidate)."""
        words = self._words[k]
        if words is None:
            words = self._words[k] = {}
            for n, line in enumerate(self.files[k][1]):
                for w in set(_WORD.findall(line)):
                    words.setdefault(w, []).append(n)
        out: set[int] = set()
        for literal in literals:
            runs = sorted(set(_WORD.findall(literal)), key=lambda w: len(words.get(w, ())))
            if not runs:
                return None
            hits = set(words.get(runs[0], ()))
            for w in runs[1:]:
                if len(hits) <= 8:
                    break
                hits.intersection_update(words.get(w, ()))
            out |= hits
        return sorted(out)


def _word_char(ch: str) -> bool:
    """``\\w`` of a str pattern: alphanumeric (str.isalnum) or the underscore."""
    return ch.isalnum() or ch == "_"


def _prefixed_at(line: str, name: str) -> bool:
    """Whether ``line`` holds the prefixed name ``name`` as ``(?<![\\w:])name(?![\\w-])`` does."""
    i = line.find(name)
    while i >= 0:
        j = i + len(name)
        if (i == 0 or not (line[i - 1] == ":" or _word_char(line[i - 1]))) and \
                (j == len(line) or not (line[j] == "-" or _word_char(line[j]))):
            return True
        i = line.find(name, i + 1)
    return False


def _rule_help(items: Sequence[FindingView]) -> tuple[str, str]:
    f = items[0].f
    techniques = sorted({t for fv in items for t in fv.techniques})
    mitigations = sorted({m for fv in items for m in fv.mitigations})
    unresolved = next((fv.unresolved for fv in items if fv.unresolved and fv.techniques), "")
    text = [f"{f.threat}.", f"Source: {f.source}."]
    md = [f"**{f.threat}**", "", f"Source: {f.source}", ""]
    if techniques:
        text.append("Techniques: " + ", ".join(techniques) + (f" ({unresolved})" if unresolved else "") + ".")
        md.append("Techniques: " + ", ".join(f"`{t}`" for t in techniques) + (f" ({unresolved})" if unresolved else ""))
    if mitigations:
        text.append("Mitigations: " + "; ".join(f"{m[0]} {m[1]}" if m[0] != m[1] else m[0] for m in mitigations) + ".")
        md += ["", "Mitigations:", *(f"- {m[0]} {m[1]}" if m[0] != m[1] else f"- {m[0]}" for m in mitigations)]
    else:
        text.append("Mitigations: none recorded in the finding graph for this rule.")
    return " ".join(text), "\n".join(md)


def render_sarif(ctx: ReportContext, store: Store, *, base: Path | None = None) -> str:
    """The SARIF 2.1.0 log as JSON text. File URIs are relative to ``base`` (default: the working directory)."""
    base = (base or Path.cwd()).resolve()
    index = LineIndex(ctx.model_files)
    ids = source_ids(store)
    by_rule: dict[str, list[FindingView]] = {}
    for fv in ctx.findings:
        by_rule.setdefault(fv.f.rule_id, []).append(fv)
    rule_ids = sorted(by_rule)
    rules = []
    for rid in rule_ids:
        items = by_rule[rid]
        f = items[0].f
        text, md = _rule_help(items)
        worst = max(items, key=lambda fv: fv.f.severity_rank).f.severity
        rules.append({
            "id": rid,
            "name": re.sub(r"[^A-Za-z0-9]+", "", f.threat.title())[:80] or rid,
            "shortDescription": {"text": f.threat},
            "fullDescription": {"text": f"{f.threat}. Source: {f.source}."},
            "help": {"text": text, "markdown": md},
            "defaultConfiguration": {"level": LEVELS.get(worst, "warning")},
            "properties": {"tags": ["security", "threat-model"], "security-severity": SECURITY_SEVERITY.get(worst, "5.0")},
        })
    artifacts: list[str] = []
    artifact_index: dict[str, int] = {}
    uris: dict[str, str] = {}  # file -> its URI (a path resolved per finding took ~0.5 ms each)
    rule_index = {rid: i for i, rid in enumerate(rule_ids)}
    results = []
    for fv in ctx.findings:
        f = fv.f
        loc = index.find(f.focus, ids.get(f.focus, ()))
        location: dict[str, object] = {
            "logicalLocations": [{"fullyQualifiedName": f.focus, "name": ctx.element_label(f.focus),
                                  "kind": "element" if f.focus_kind != "Data flow" else "dataFlow"}],
        }
        file = loc[0] if loc else (ctx.model_files[0] if ctx.model_files else None)
        if file is not None:
            uri = uris.get(file)
            if uri is None:
                uri = uris[file] = _uri(file, base)
            if uri not in artifact_index:
                artifact_index[uri] = len(artifacts)
                artifacts.append(uri)
            phys: dict[str, object] = {"artifactLocation": {"uri": uri, "index": artifact_index[uri]}}
            if loc:
                phys["region"] = {"startLine": loc[1]}
            location["physicalLocation"] = phys
        props: dict[str, object] = {
            "level": f.level,
            "severity": f.severity,
            "categories": [f"{c[2]}: {c[1]}" for c in f.categories],
            "element": f.focus,
        }
        if fv.techniques:
            props["techniques"] = fv.techniques
            if fv.unresolved:
                props["techniqueStatus"] = fv.unresolved
        if fv.mitigations:
            props["mitigations"] = [m[0] for m in fv.mitigations]
        if fv.residual_risk is not None:
            props["residualRisk"] = fv.residual_risk
        mitigated_by = getattr(f, "mitigated_by", None)
        if mitigated_by:  # a threat the model's declared facts mitigate: kept, with its status, as suppressed
            props["controlStatus"] = "mitigated"
            props["mitigatedBy"] = list(mitigated_by)
        result: dict[str, object] = {
            "ruleId": f.rule_id,
            "ruleIndex": rule_index[f.rule_id],
            "level": LEVELS.get(f.level, "warning"),
            "message": {"text": f"{ctx.element_label(f.focus)}: {f.threat}. {f.explanation}"},
            "locations": [location],
            "partialFingerprints": {"threatgraphFinding/v1": f.iri},
            "properties": props,
        }
        if mitigated_by:
            result["suppressions"] = [{"kind": "inSource", "status": "accepted",
                                       "justification": "mitigated by the model's declared fact "
                                                        + ", ".join(mitigated_by)}]
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "threatgraph", "version": __version__, "semanticVersion": __version__,
                                "informationUri": "https://w3id.org/threatgraph", "rules": rules}},
            "artifacts": [{"location": {"uri": u}} for u in artifacts],
            "results": results,
            "invocations": [{"executionSuccessful": True,
                             "toolConfigurationNotifications": [{"level": "warning", "message": {"text": w}}
                                                                for w in ctx.warnings]}],
        }],
    }
    return dumps_indent2(log) + "\n"


def _uri(file: str, base: Path) -> str:
    p = Path(file).resolve()
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return p.as_uri()


__all__ = ["LineIndex", "render_sarif"]
