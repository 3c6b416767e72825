"""Derivation rules: one SPARQL SELECT per ``.rq`` file in ``queries/rules``, with a checked header.

A header is a block of ``# key: value`` lines at the top of the file (see docs/architecture.md).
The loader parses it and checks it against the ontology: every category, class and property the
rule names must exist, the query must parse and project ``?focus``.

>>> text = '''# id: X-1
... # title: Example
... # framework: STRIDE
... # category: stride:Spoofing
... # severity: high
... # focus: element
... # source: test
... # explanation: {focus} is spoofable.
... # remediation: Authenticate it.
... SELECT ?focus WHERE { ?focus a tg:Process }'''
>>> r = parse_rule(text, "X-1.rq")
>>> (r.id, r.severity, r.categories)
('X-1', 'high', ('https://w3id.org/threatgraph/stride#Spoofing',))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pyoxigraph import QuerySolutions
from pyoxigraph import Store as OxStore

from threatgraph.errors import InputError, RuleError
from threatgraph.resources import queries_dir
from threatgraph.sparql import syntax_error
from threatgraph.terms import PREFIXES

if TYPE_CHECKING:
    from threatgraph.analysis.ontology import Ontology

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
"""Severity names, lowest first; their index + 1 is the rank used by ``--fail-on``."""

FRAMEWORKS: tuple[str, ...] = ("STRIDE", "LINDDUN", "STRIDE+LINDDUN")
FOCUS_KINDS: tuple[str, ...] = ("element", "flow")
REQUIRED: tuple[str, ...] = (
    "id", "title", "framework", "category", "severity", "focus", "source", "explanation", "remediation",
)
OPTIONAL: tuple[str, ...] = ("attack", "atlas", "description", "tags", "covers", "group", "mitigated-by")
"""``remediation`` (required): a short what-to-do shown when no ATT&CK/ATLAS/D3FEND knowledge is loaded
(issue 15); ``covers``: the peer-tool threats the rule covers, space separated ``TOOL:ID`` (``TMT:T18``,
``Threagile:unencrypted-asset``, ``pytm:DS06``), the crosswalk of issue 13; ``mitigated-by``: the declared
protective facts (``tg:`` properties, space separated) whose presence the rule requires: its findings are
threats the model shows as handled, reported with control status mitigated (issue 13, docs/risk.md)."""
_PEER = re.compile(r"^(TMT|TMT-Azure|Threagile|pytm):[A-Za-z0-9][A-Za-z0-9._-]*$")
DYNAMIC_CATEGORY = "?category"

_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_ATTACK_ID = re.compile(r"^(T\d{4}(\.\d{3})?|TA\d{4}|M\d{4})$")
_ATLAS_ID = re.compile(r"^AML\.(T\d{4}(\.\d{3})?|TA\d{4}|M\d{4})$")
_CURIE = re.compile(r"(?<![\w<#/])(tg|tgml|stride|linddun):([A-Za-z_][A-Za-z0-9_-]*)")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Rule:
    """A parsed, header-checked derivation rule."""

    id: str
    title: str
    framework: str
    categories: tuple[str, ...]
    """Category IRIs; empty when the query binds ``?category`` itself (dynamic)."""
    severity: str
    focus: str
    source: str
    explanation: str
    query: str
    path: str
    attack: tuple[str, ...] = ()
    atlas: tuple[str, ...] = ()
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    remediation: str = ""
    """What to do about a finding of this rule (header ``remediation``)."""
    covers: tuple[str, ...] = ()
    """Peer-tool threat ids the rule covers (header ``covers``), e.g. ``("TMT:T18", "pytm:DS06")``."""
    mitigated_by: tuple[str, ...] = ()
    """IRIs of the declared protective facts (header ``mitigated-by``) that mitigate every finding of the rule:
    a mitigated counterpart of a rule that fires when the fact is absent (its findings get tg:Mitigated)."""
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Line of each header key in the file (for messages)."""
    query_line: int = field(default=1, compare=False, repr=False)
    """Line of the file where :attr:`query` starts."""
    builtin: bool = True
    """False for a rule loaded from a user directory (``--rules DIR``)."""

    def at(self, key: str | None = None) -> str:
        """``path:line`` of a header key (or of the query's first line)."""
        return f"{self.path}:{self.lines.get(key, 1) if key else self.query_line}"

    @property
    def tags(self) -> tuple[str, ...]:
        """Free tags from the header (e.g. ``linddun-pro:receiving``)."""
        return tuple(self.extra.get("tags", "").split())

    @property
    def group_by_focus(self) -> bool:
        """Header ``group: focus``: all the rows of one focus make ONE finding carrying every category they
        bind (the per-element baselines: one finding per element listing its categories, issue 13)."""
        return self.extra.get("group", "category") == "focus"

    @property
    def baseline(self) -> bool:
        """Tagged ``baseline``: applicability of a framework's categories to an element kind, not a threat
        the model's facts make specific (gets risk only when techniques realise it)."""
        return "baseline" in self.tags

    @property
    def dynamic_category(self) -> bool:
        return not self.categories

    @property
    def severity_rank(self) -> int:
        return SEVERITIES.index(self.severity) + 1


def expand_curie(curie: str, where: str) -> str:
    """Expand ``prefix:local`` with threatgraph's prefixes.

    >>> expand_curie("stride:Tampering", "x")
    'https://w3id.org/threatgraph/stride#Tampering'
    """
    prefix, sep, local = curie.partition(":")
    if not sep or prefix not in PREFIXES or not local:
        raise RuleError(f"{where}: {curie!r} is not a known prefixed name", hint=f"use one of {sorted(PREFIXES)}")
    return PREFIXES[prefix] + local


def parse_rule(text: str, path: str) -> Rule:
    """Parse a rule file's text. Raises :class:`RuleError` naming the file, the line and the problem."""
    from threatgraph.rqheader import read_header  # (not imported by an analysis whose rules are cached)

    head = read_header(text, path)
    header = head.fields

    def at(key: str) -> str:
        return f"{path}:{head.lines.get(key, 1)}"

    missing = [k for k in REQUIRED if not header.get(k)]
    if missing:
        raise RuleError(f"{path}:1: header lacks {', '.join(missing)}", hint="see docs/architecture.md, 'Rules'")
    unknown = sorted(set(header) - set(REQUIRED) - set(OPTIONAL), key=lambda k: head.lines.get(k, 0))
    if unknown:
        raise RuleError(f"{at(unknown[0])}: unknown header key(s) {', '.join(unknown)}",
                        hint=f"keys: {', '.join(REQUIRED + OPTIONAL)}")
    rid = header["id"]
    if not _ID.match(rid):
        raise RuleError(f"{at('id')}: rule id {rid!r} must look like TG-STRIDE-S-001 (upper case, dash separated)")
    if Path(path).stem != rid:
        raise RuleError(f"{at('id')}: rule id {rid!r} must equal the file name stem {Path(path).stem!r}")
    severity = header["severity"].lower()
    if severity not in SEVERITIES:
        raise RuleError(f"{at('severity')}: severity {header['severity']!r} is not one of {', '.join(SEVERITIES)}")
    framework = header["framework"]
    if framework not in FRAMEWORKS:
        raise RuleError(f"{at('framework')}: framework {framework!r} is not one of {', '.join(FRAMEWORKS)}")
    focus = header["focus"]
    if focus not in FOCUS_KINDS:
        raise RuleError(f"{at('focus')}: focus {focus!r} is not one of {', '.join(FOCUS_KINDS)}")
    cats_text = header["category"].split()
    categories: tuple[str, ...] = ()
    if cats_text != [DYNAMIC_CATEGORY]:
        categories = tuple(expand_curie(c, at("category")) for c in cats_text)
    attack = tuple(header.get("attack", "").split())
    for a in attack:
        if not _ATTACK_ID.match(a):
            raise RuleError(f"{at('attack')}: {a!r} is not an ATT&CK technique, tactic or mitigation id")
    atlas = tuple(header.get("atlas", "").split())
    for a in atlas:
        if not _ATLAS_ID.match(a):
            raise RuleError(f"{at('atlas')}: {a!r} is not an ATLAS id (AML.Txxxx)")
    covers = tuple(header.get("covers", "").replace(",", " ").split())
    for c in covers:
        if not _PEER.match(c):
            raise RuleError(f"{at('covers')}: covers {c!r} is not TOOL:ID with TOOL one of TMT, TMT-Azure, Threagile, pytm")
    mitigated_by = tuple(expand_curie(c, at("mitigated-by")) for c in header.get("mitigated-by", "").split())
    body = head.body
    query_line = head.body_line + body[: len(body) - len(body.lstrip())].count("\n")
    return Rule(
        id=rid,
        title=header["title"],
        framework=framework,
        categories=categories,
        severity=severity,
        focus=focus,
        source=header["source"],
        explanation=header["explanation"],
        query=body.strip() + "\n",
        path=path,
        attack=attack,
        atlas=atlas,
        description=header.get("description", ""),
        extra={k: header[k] for k in ("tags", "group") if k in header},
        remediation=header["remediation"],
        covers=covers,
        mitigated_by=mitigated_by,
        lines=dict(head.lines),
        query_line=query_line,
    )


def check_rule(rule: Rule, known_terms: set[str], categories: set[str]) -> None:
    """Check a rule against the ontology: the query parses and projects ``?focus``; every prefixed
    name it uses and every category it names is defined; explanation placeholders are projected."""
    for cat in rule.categories:
        if cat not in categories:
            raise RuleError(f"{rule.at('category')}: category <{cat}> is not a STRIDE or LINDDUN category of the ontology")
    for m in _CURIE.finditer(rule.query):
        iri = PREFIXES[m.group(1)] + m.group(2)
        if iri not in known_terms:
            line = rule.query_line + rule.query.count("\n", 0, m.start())
            raise RuleError(
                f"{rule.path}:{line}: {m.group(0)} is not defined in the ontology",
                hint="fix the name or add it to an ontology module (or an --ontology extension)",
            )
    for fact in rule.mitigated_by:
        if fact not in known_terms:
            raise RuleError(f"{rule.at('mitigated-by')}: mitigated-by <{fact}> is not defined in the ontology")
    bad = syntax_error(rule.query, rule.path, rule.query_line)
    if bad is not None:
        raise RuleError(bad.message())
    res = OxStore().query(rule.query, prefixes=PREFIXES)
    if not isinstance(res, QuerySolutions):
        raise RuleError(f"{rule.at()}: a rule must be a SELECT query")
    projected = {v.value for v in res.variables}
    if "focus" not in projected:
        raise RuleError(f"{rule.at()}: the query must project ?focus")
    if rule.dynamic_category and "category" not in projected:
        raise RuleError(f"{rule.at('category')}: header says 'category: ?category' but the query does not project ?category")
    for ph in _PLACEHOLDER.findall(rule.explanation):
        if ph not in projected:
            raise RuleError(f"{rule.at('explanation')}: explanation names {{{ph}}} but the query does not project ?{ph}")


def rule_files(directory: Path | None = None) -> list[Path]:
    """The ``.rq`` files of a rule directory (default: the shipped ``queries/rules``), sorted."""
    d = directory or (queries_dir() / "rules")
    if not d.is_dir():
        raise RuleError(f"rule directory {d} does not exist")
    return sorted(d.glob("*.rq"))


def load_rules(
    paths: Iterable[Path] | None = None,
    *,
    known_terms: set[str] | None = None,
    categories: set[str] | None = None,
) -> list[Rule]:
    """Parse (and, given the ontology's terms and categories, check) rules. Duplicate ids are refused.

    A set of rules that passed the checks is remembered in the cache (:func:`_checked_marker`: keyed by the
    rules' texts, the terms and categories they were checked against, the prefixes and the installed
    pyoxigraph), so the shipped rules are not checked again by every analysis (~30 ms); a rule set that
    fails is never remembered, and any edit of a rule or of the ontology checks again."""
    texts: list[tuple[str, str]] = []
    for p in paths if paths is not None else rule_files():
        try:
            texts.append((str(p), Path(p).read_text(encoding="utf-8")))
        except OSError as err:
            raise RuleError(f"cannot read rule {p}: {err}") from err
    check = known_terms is not None and categories is not None
    marker = _checked_marker(texts, known_terms or set(), categories or set()) if check else None
    if marker is not None and marker.is_file():
        check = False
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    parsed = _parsed_rules(texts)
    for i, (name, text) in enumerate(texts):
        rule = parsed[i] if parsed is not None else parse_rule(text, name)
        if rule.id in seen:
            raise RuleError(f"{name}: rule id {rule.id} is also used by {seen[rule.id]}")
        seen[rule.id] = name
        if check:
            check_rule(rule, known_terms or set(), categories or set())
        rules.append(rule)
    if check and marker is not None:
        from threatgraph.cachefiles import write_atomic

        write_atomic(marker, b"checked\n")
    return rules


_PARSED_VERSION = "2"
"""Bumped whenever :func:`parse_rule` or :class:`Rule` changes (part of the key of the cached parsed rules)."""
_STR_FIELDS = ("id", "title", "framework", "severity", "focus", "source", "explanation", "query", "path",
               "description", "remediation")
_TUPLE_FIELDS = ("categories", "attack", "atlas", "covers", "mitigated_by")


def _rule_json(rule: Rule) -> dict[str, object]:
    return {**{k: getattr(rule, k) for k in _STR_FIELDS}, **{k: list(getattr(rule, k)) for k in _TUPLE_FIELDS},
            "extra": rule.extra, "lines": rule.lines, "query_line": rule.query_line}


_KEYS = frozenset((*_STR_FIELDS, *_TUPLE_FIELDS, "extra", "lines", "query_line"))


def _rule_of_json(doc: object) -> Rule | None:
    """The :class:`Rule` of one entry of the cache, None when it is not one (a file of another layout)."""
    if not isinstance(doc, dict) or doc.keys() != _KEYS or not all(isinstance(doc[k], list) for k in _TUPLE_FIELDS):
        return None
    try:
        return Rule(**{**doc, **{k: tuple(doc[k]) for k in _TUPLE_FIELDS}})
    except TypeError:
        return None


def _parsed_rules(texts: Sequence[tuple[str, str]]) -> list[Rule] | None:
    """The rules of ``texts`` ((path, text) pairs) as :func:`parse_rule` parses them, from the cache
    (``rules/<key>.parsed.json``, keyed by the paths and texts: an edited, added or removed rule gets a new
    entry), else parsed and cached; None when one of them does not parse (the caller parses them one by one
    and reports the error). Parsing ~100 headers cost ~15 ms of every analysis (issue 14). The cache holds
    data only (JSON, digest-checked when read): a damaged file is parsed again and rewritten."""
    import hashlib
    import json

    from threatgraph.cachefiles import cache_dir, read_checked, write_checked

    h = hashlib.sha256(f"threatgraph-rules-parsed/{_PARSED_VERSION}\n".encode())
    for k, v in sorted(PREFIXES.items()):  # categories are expanded with them
        h.update(f"{k} {v}\n".encode())
    for module in (__file__, Path(__file__).parent.parent / "rqheader.py"):  # the parser: a changed one parses again
        try:
            h.update(hashlib.sha256(Path(module).read_bytes()).digest())
        except OSError:  # (not installed as files): not cached
            return _parse_all(texts)
    for path, text in texts:
        h.update(f"{len(path)} {len(text)}\n{path}\0{text}\0".encode())
    cache = cache_dir() / "rules" / f"{h.hexdigest()}.parsed.json"
    raw = read_checked(cache)
    if raw is not None:
        try:
            docs = json.loads(raw)
        except ValueError:
            docs = None
        if isinstance(docs, list) and len(docs) == len(texts):
            rules = [_rule_of_json(d) for d in docs]
            if all(r is not None and r.path == path for r, (path, _) in zip(rules, texts, strict=True)):
                return rules  # type: ignore[return-value]
    out = _parse_all(texts)
    if out is not None:
        write_checked(cache, json.dumps([_rule_json(r) for r in out], separators=(",", ":")).encode())
    return out


def _parse_all(texts: Sequence[tuple[str, str]]) -> list[Rule] | None:
    try:
        return [parse_rule(text, path) for path, text in texts]
    except RuleError:
        return None


_CHECK_VERSION = "2"
"""Bumped whenever :func:`check_rule` checks more (part of the key of the remembered checks)."""


def _checked_marker(texts: Sequence[tuple[str, str]], known_terms: set[str], categories: set[str]) -> Path:
    """The cache file whose presence says that these rule texts passed :func:`check_rule` against these
    terms and categories."""
    import hashlib

    from threatgraph.cachefiles import cache_dir, library_stamp

    h = hashlib.sha256(f"threatgraph-rules-checked/{_CHECK_VERSION}\n{library_stamp('pyoxigraph')}\n".encode())
    for k, v in sorted(PREFIXES.items()):
        h.update(f"{k} {v}\n".encode())
    h.update("\x00".join(sorted(known_terms)).encode() + b"\x01" + "\x00".join(sorted(categories)).encode() + b"\x01")
    for _path, text in texts:
        h.update(hashlib.sha256(text.encode()).digest())
    return cache_dir() / "rules" / f"{h.hexdigest()}.ok"


_SERVICE = re.compile(r"\bSERVICE\b", re.IGNORECASE)


def _strip_comments_and_strings(query: str) -> str:
    text = re.sub(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|<[^<>\s]*>', " ", query)
    return re.sub(r"#[^\n]*", " ", text)


def _refuse_service(rule: Rule, path: Path) -> None:
    """InputError if the rule calls SERVICE, decided on the parsed query (threatgraph.server_guard): a
    token scan is fooled by a comment ended by a carriage return or a ``\\#`` in a prefixed name."""
    from threatgraph.server_guard import Refused, check_remote_access
    from threatgraph.terms import PREFIXES

    try:
        check_remote_access(rule.query, allow_service=(), allow_load=(), update=False, default_prefixes=PREFIXES)
    except Refused as err:
        stripped = _strip_comments_and_strings(rule.query)
        m = _SERVICE.search(stripped)
        if m:
            line = rule.query_line + stripped.count("\n", 0, m.start())
        else:  # hidden from the token scan: the first mention of the word
            raw = _SERVICE.search(rule.query)
            line = rule.query_line + (rule.query.count("\n", 0, raw.start()) if raw else 0)
        if err.status == 403:
            raise InputError(f"{path}:{line}: a rule may not use SERVICE (it would query another endpoint)") from None
        raise InputError(f"{path}:{line}: {err.message}") from None


def load_user_rules(
    directories: Iterable[str | Path],
    *,
    known_terms: set[str],
    categories: set[str],
    taken: Mapping[str, str] | None = None,
) -> list[Rule]:
    """Rules from users' directories (every ``*.rq`` file, same format and checks as ``queries/rules``).

    Anything wrong is the user's input: an :class:`InputError` (exit 2) naming the file and line. Ids
    already ``taken`` (id → file, e.g. the built-in rules) or repeated across the directories are
    refused. A rule is a SPARQL SELECT and nothing else: no code runs, and ``SERVICE`` (a query that
    would reach out to another endpoint) is refused.
    """
    seen: dict[str, str] = dict(taken or {})
    out: list[Rule] = []
    for d in directories:
        directory = Path(d)
        if not directory.is_dir():
            raise InputError(f"{directory}: not a rule directory", hint="give a directory of .rq rule files")
        files = sorted(p for p in directory.glob("*.rq") if p.is_file())
        if not files:
            raise InputError(f"{directory}: no .rq rule files", hint="one rule per .rq file (see docs/rules.md)")
        for p in files:
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise InputError(f"{p}: cannot read the rule: {err}") from None
            try:
                rule = parse_rule(text, str(p))
                _refuse_service(rule, p)  # before check_rule, which runs the query (on an empty store)
                check_rule(rule, known_terms, categories)
            except RuleError as err:
                raise InputError(err.message, hint=err.hint or "see docs/rules.md, 'Your own rules'") from None
            if rule.id in seen:
                raise InputError(
                    f"{rule.at('id')}: rule id {rule.id} is also used by {seen[rule.id]}",
                    hint="give your rule its own id, e.g. with your organisation's prefix (ACME-STRIDE-S-001)",
                )
            seen[rule.id] = str(p)
            out.append(replace(rule, builtin=False))
    return out


def load_all_rules(user_dirs: Sequence[str | Path] = (), *, ontology: Ontology | None = None) -> list[Rule]:
    """The built-in rules (a broken one is a :class:`RuleError`, exit 3) followed by the users' rules
    from ``user_dirs`` (a broken one is an :class:`InputError`, exit 2), checked against ``ontology``
    (default: the shipped one)."""
    from threatgraph.analysis.ontology import load_ontology

    onto = ontology or load_ontology()
    terms, cats = set(onto.terms), set(onto.categories)
    builtin = load_rules(rule_files(), known_terms=terms, categories=cats)
    taken = {r.id: r.path for r in builtin}
    return builtin + load_user_rules(user_dirs, known_terms=terms, categories=cats, taken=taken)


def severity_rank(name: str) -> int:
    """Rank of a severity name (1 = info … 5 = critical).

    >>> severity_rank("high")
    4
    """
    try:
        return SEVERITIES.index(name.lower()) + 1
    except ValueError:
        raise RuleError(f"unknown severity {name!r}; use one of {', '.join(SEVERITIES)}") from None


def select_rules(rules: Sequence[Rule], ids: Iterable[str]) -> list[Rule]:
    """Rules whose id is in ``ids``."""
    wanted = set(ids)
    return [r for r in rules if r.id in wanted]
