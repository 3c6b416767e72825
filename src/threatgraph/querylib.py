"""The named-query library (``queries/*.rq``): header parsing and checks, typed parameters, rendering.

Every library file starts with a header of ``# key: value`` lines::

    # name: techniques-of-tactic
    # title: Techniques of a tactic
    # description: Active techniques (and sub-techniques) that serve one tactic, with their release.
    # param: tactic technique-id [default=TA0001] The tactic's ATT&CK or ATLAS id

Parameters are bound as RDF terms of the declared type (``iri``, ``string``, ``integer``,
``boolean``, ``technique-id``) through the store's ``bindings`` (a trailing ``VALUES`` row), never
spliced into the query text. A query names a parameter as the variable ``?<name>``.

>>> q = parse_query_text('''# name: demo
... # title: Demo
... # description: Elements of a kind.
... # param: kind iri [default=tg:Process] The element class
... SELECT ?e WHERE { ?e a ?kind }''', "demo.rq")
>>> q.bind({})["kind"].value
'https://w3id.org/threatgraph/ontology#Process'
>>> q.bind({"kind": "http://example.org/x> } INSERT"})
Traceback (most recent call last):
...
threatgraph.errors.InputError: parameter kind: 'http://example.org/x> } INSERT' is not a valid IRI (Invalid IRI code point '>')
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pyoxigraph import BlankNode, Literal, NamedNode, Quad, RdfFormat, serialize

from threatgraph import sanitize
from threatgraph.errors import InputError, RuleError
from threatgraph.resources import queries_dir
from threatgraph.rqheader import read_header
from threatgraph.sparql import syntax_error
from threatgraph.store.base import Row, Store, Term
from threatgraph.terms import ATLAS, ATTACK, PREFIXES, XSD

PARAM_TYPES: tuple[str, ...] = ("iri", "string", "integer", "boolean", "technique-id")
FORMATS: tuple[str, ...] = ("table", "csv", "json", "srj", "turtle")
REQUIRED: tuple[str, ...] = ("name", "title", "description")

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"^(?P<name>\S+)\s+(?P<type>\S+)(?:\s+\[default=(?P<default>[^\]]*)\])?\s*(?P<desc>.*)$")
_ATTACK_ID = re.compile(r"^(T\d{4}(\.\d{3})?|TA\d{4}|M\d{4}|G\d{4}|S\d{4}|C\d{4}|DS\d{4}|DET\d{4})$")
_ATLAS_ID = re.compile(r"^AML\.(T\d{4}(\.\d{3})?|TA\d{4}|M\d{4}|CS\d{4})$")
_FORM = re.compile(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", re.IGNORECASE)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


@dataclass(frozen=True)
class Param:
    """A declared query parameter."""

    name: str
    type: str
    default: str | None
    description: str


@dataclass(frozen=True)
class NamedQuery:
    """A parsed, header-checked library query."""

    name: str
    title: str
    description: str
    query: str
    path: str
    form: str
    params: tuple[Param, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def bind(self, values: Mapping[str, str]) -> dict[str, Term]:
        """Typed RDF terms for the parameters: given ``values`` (strings), else defaults."""
        known = {p.name for p in self.params}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"query {self.name}: unknown parameter(s) {', '.join(unknown)}",
                hint=f"its parameters are: {', '.join(sorted(known)) or 'none'}",
            )
        out: dict[str, Term] = {}
        for p in self.params:
            raw = values.get(p.name, p.default)
            if raw is None:
                raise InputError(
                    f"query {self.name}: parameter {p.name} is required ({p.description})",
                    hint=f"add --param {p.name}=VALUE",
                )
            out[p.name] = to_term(raw, p.type, p.name)
        return out

    def describe(self) -> dict[str, object]:
        """JSON-ready description (used by ``queries --format json`` and the server's query page)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "form": self.form,
            "params": [
                {"name": p.name, "type": p.type, "default": p.default, "description": p.description} for p in self.params
            ],
            "query": self.query,
        }


def to_term(raw: str, kind: str, name: str = "value") -> Term:
    """Convert a parameter's text to an RDF term of its declared type (the only way values enter a query).

    >>> to_term("T1059.001", "technique-id").value
    'https://w3id.org/threatgraph/attack/T1059.001'
    >>> str(to_term('x" } ; DROP ALL #', "string"))
    '"x\\\\" } ; DROP ALL #"'
    >>> to_term("12a", "integer")
    Traceback (most recent call last):
    ...
    threatgraph.errors.InputError: parameter value: '12a' is not an integer
    """
    if kind == "string":
        return Literal(raw)
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d{1,18}", raw.strip()):
            raise InputError(f"parameter {name}: {raw!r} is not an integer")
        return Literal(int(raw))
    if kind == "boolean":
        low = raw.strip().lower()
        if low in _TRUE:
            return Literal(True)
        if low in _FALSE:
            return Literal(False)
        raise InputError(f"parameter {name}: {raw!r} is not a boolean", hint="use true or false")
    if kind == "technique-id":
        val = raw.strip()
        if _ATTACK_ID.match(val):
            return NamedNode(ATTACK[val])
        if _ATLAS_ID.match(val):
            return NamedNode(ATLAS[val])
        raise InputError(
            f"parameter {name}: {raw!r} is not an ATT&CK or ATLAS id",
            hint="use an id such as T1059.001, TA0002, M1036, G0007 or AML.T0020",
        )
    if kind == "iri":
        val = raw.strip()
        prefix, sep, local = val.partition(":")
        if sep and prefix in PREFIXES and not local.startswith("//"):
            val = PREFIXES[prefix] + local
        try:
            node = NamedNode(val)
        except ValueError as err:
            raise InputError(f"parameter {name}: {raw!r} is not a valid IRI ({err})") from None
        return node
    raise InputError(f"parameter {name}: unknown type {kind!r}")


def _check_syntax(query: str, path: str, first_line: int = 1) -> None:
    err = syntax_error(query, path, first_line)
    if err is not None:
        hint = f"{err.text}\n        {' ' * max(err.column - 1, 0)}^" if err.text else None
        raise RuleError(err.message(), hint=hint)


def query_form(query: str) -> str:
    """SELECT, ASK, CONSTRUCT or DESCRIBE (the first such keyword outside comments, strings and IRIs)."""
    text = re.sub(r"#[^\n]*", " ", query)
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|<[^<>\s]*>', " ", text)
    m = _FORM.search(text)
    return m.group(1).upper() if m else "SELECT"


def parse_query_text(text: str, path: str, *, require_header: bool = True) -> NamedQuery:
    """Parse a library file. Raises :class:`RuleError` naming the file and the problem."""
    head = read_header(text, path, repeatable=("param",))
    header = head.fields
    params = [_parse_param(line.value, line.where) for line in head.repeated]
    query = head.body.strip()
    first_line = head.body_line + len(head.body[: len(head.body) - len(head.body.lstrip())].split("\n")) - 1
    stem = Path(path).stem
    if require_header:
        missing = [k for k in REQUIRED if not header.get(k)]
        if missing:
            raise RuleError(
                f"{path}: header lacks {', '.join(missing)}", hint="see docs/sparql.md, 'Writing a named query'"
            )
        if header["name"] != stem:
            raise RuleError(f"{path}: name {header['name']!r} must equal the file name stem {stem!r}")
        if not _NAME.match(header["name"]):
            raise RuleError(f"{path}: name {header['name']!r} must be lower-case words joined by dashes")
    if not query:
        raise RuleError(f"{path}: no query after the header")
    seen: set[str] = set()
    for p in params:
        if p.name in seen:
            raise RuleError(f"{path}: parameter {p.name!r} declared twice")
        seen.add(p.name)
        if not re.search(r"[?$]" + re.escape(p.name) + r"\b", query):
            raise RuleError(f"{path}: parameter {p.name!r} is not used as ?{p.name} in the query")
        if p.default is not None:
            try:
                to_term(p.default, p.type, p.name)
            except InputError as err:
                raise RuleError(f"{path}: bad default for {p.name}: {err.message}") from err
    _check_syntax(query, path, first_line)
    extra = {k: v for k, v in header.items() if k not in REQUIRED}
    return NamedQuery(
        name=header.get("name", stem),
        title=header.get("title", stem),
        description=header.get("description", ""),
        query=query,
        path=path,
        form=query_form(query),
        params=tuple(params),
        extra=extra,
    )


def _parse_param(value: str, where: str) -> Param:
    m = _PARAM.match(value)
    if not m:
        raise RuleError(f"{where}: bad param line {value!r}", hint="use: # param: NAME TYPE [default=VALUE] DESCRIPTION")
    name, kind = m.group("name"), m.group("type")
    if not _VAR.match(name):
        raise RuleError(f"{where}: parameter name {name!r} is not a SPARQL variable name")
    if kind not in PARAM_TYPES:
        raise RuleError(f"{where}: parameter type {kind!r} is not one of {', '.join(PARAM_TYPES)}")
    return Param(name, kind, m.group("default"), m.group("desc").strip())


def library_files(directory: Path | None = None) -> list[Path]:
    """The library's ``.rq`` files (top level of ``queries/`` only), sorted by name."""
    d = directory or queries_dir()
    return sorted(p for p in d.glob("*.rq") if p.is_file())


def load_library(directory: Path | None = None) -> dict[str, NamedQuery]:
    """Parse and check every library query; name → query."""
    out: dict[str, NamedQuery] = {}
    for path in library_files(directory):
        q = parse_query_text(path.read_text(encoding="utf-8"), str(path))
        out[q.name] = q
    return out


def resolve(spec: str, directory: Path | None = None, *, stdin: TextIO | None = None) -> NamedQuery:
    """The query that ``spec`` names: ``-`` (read ``stdin``), a query file, a library name, or SPARQL text.

    A library query that does not parse is a broken library (:class:`RuleError`, exit 3); a query the
    user wrote (file, text, stdin) that does not parse, or has a bad header, is bad input
    (:class:`InputError`, exit 2) naming its line and column.

    >>> resolve("SELECT ?e WHERE { ?e a tg:Process }").path
    '<inline>'
    >>> resolve("SELECT ?e WHERE { ?e a }")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    threatgraph.errors.InputError: <inline>:1:25: invalid SPARQL (line 1, column 25): expected one of ...
    """
    if spec == "-":
        source = stdin if stdin is not None else sys.stdin
        return _user_query(source.read(), "<stdin>")
    path = Path(spec)
    looks_like_text = bool(_FORM.search(spec)) or "{" in spec or "\n" in spec
    if path.suffix in (".rq", ".sparql") and _is_file(path):
        return _read_user_file(path)
    lib_path = (directory or queries_dir()) / f"{spec}.rq"
    if _NAME.match(spec) and lib_path.is_file():
        return parse_query_text(lib_path.read_text(encoding="utf-8"), str(lib_path))
    if not looks_like_text and _is_file(path):
        return _read_user_file(path)
    if looks_like_text:
        return _user_query(spec, "<inline>")
    names = sorted(load_library(directory))
    raise InputError(
        f"no named query, query file or SPARQL text {spec!r}",
        hint=f"give a library name (`threatgraph queries`), a .rq file, SPARQL text or - for stdin; names: {', '.join(names)}",
    )


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, or with NUL: SPARQL text, not a path
        return False


def _read_user_file(path: Path) -> NamedQuery:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read query file {path}: {err}", hint="give a UTF-8 text file") from None
    return _user_query(text, str(path))


def _user_query(text: str, path: str) -> NamedQuery:
    """A query the user wrote: its header is optional, and anything wrong with it is an InputError."""
    try:
        return parse_query_text(text, path, require_header=False)
    except RuleError as err:
        raise InputError(err.message, hint=err.hint) from None


# -- running and rendering -------------------------------------------------------------------------
@dataclass
class Result:
    """What a query returned: rows (SELECT), a boolean (ASK) or triples (CONSTRUCT/DESCRIBE)."""

    form: str
    variables: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    boolean: bool | None = None
    triples: list[Quad] = field(default_factory=list)


_PROJECTION = re.compile(r"\bSELECT\b(.*?)(\bWHERE\b|\{)", re.IGNORECASE | re.DOTALL)


def projected_variables(query: str) -> list[str]:
    """Variables of a SELECT clause, in order (``[]`` for ``SELECT *``).

    >>> projected_variables("SELECT DISTINCT ?a (COUNT(?x) AS ?n) ?b WHERE { }")
    ['a', 'n', 'b']
    """
    m = _PROJECTION.search(re.sub(r"#[^\n]*", " ", query))
    if not m:
        return []
    clause = m.group(1)
    out: list[str] = []
    for am in re.finditer(r"\bAS\s+[?$]([A-Za-z_][A-Za-z0-9_]*)|\((?:[^()]|\([^()]*\))*\)|[?$]([A-Za-z_][A-Za-z0-9_]*)", clause, re.IGNORECASE):
        if am.group(0).startswith("("):
            inner = re.search(r"\bAS\s+[?$]([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", am.group(0), re.IGNORECASE)
            if inner:
                out.append(inner.group(1))
            continue
        name = am.group(1) or am.group(2)
        if name and name not in out:
            out.append(name)
    return out


def run(store: Store, q: NamedQuery, values: Mapping[str, str] | None = None) -> Result:
    """Run a named query on any store with typed parameter bindings."""
    bindings = q.bind(values or {})
    if q.form == "ASK":
        return Result("ASK", boolean=store.ask(q.query, bindings))
    if q.form in ("CONSTRUCT", "DESCRIBE"):
        return Result(q.form, triples=store.construct(q.query, bindings))
    rows = store.select(q.query, bindings)
    names = projected_variables(q.query)
    for r in rows:
        for k in r:
            if k not in names:
                names.append(k)
    return Result("SELECT", variables=names, rows=rows)


def _plain(t: Term | None) -> str:
    if t is None:
        return ""
    if isinstance(t, BlankNode):
        return "_:" + t.value
    return t.value


def _short(t: Term | None) -> str:
    if isinstance(t, NamedNode):
        for prefix, iri in PREFIXES.items():
            if t.value.startswith(iri) and len(t.value) > len(iri):
                return f"{prefix}:{t.value[len(iri):]}"
    return _plain(t)


def srj_term(t: Term) -> dict[str, str]:
    """A term in SPARQL 1.1 Query Results JSON form."""
    if isinstance(t, NamedNode):
        return {"type": "uri", "value": t.value}
    if isinstance(t, BlankNode):
        return {"type": "bnode", "value": t.value}
    d = {"type": "literal", "value": t.value}
    if t.language:
        d["xml:lang"] = t.language
    elif t.datatype.value != XSD.string:
        d["datatype"] = t.datatype.value
    return d


def render(result: Result, fmt: str, *, wide: bool = False) -> str:
    """Render a result as ``table``, ``csv``, ``json`` (plain objects), ``srj`` (SPARQL JSON) or ``turtle``.

    Table cells are cut at 80 characters unless ``wide``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    if result.form == "ASK":
        if fmt == "srj":
            return json.dumps({"head": {}, "boolean": result.boolean}) + "\n"
        if fmt == "json":
            return json.dumps(result.boolean) + "\n"
        return ("true" if result.boolean else "false") + "\n"
    if result.form in ("CONSTRUCT", "DESCRIBE"):
        if fmt not in ("turtle", "table"):
            raise InputError(f"a {result.form} query gives a graph: use --format turtle")
        data = serialize([q.triple for q in result.triples], format=RdfFormat.TURTLE, prefixes=PREFIXES)
        return (data or b"").decode("utf-8")
    names = result.variables
    if fmt == "turtle":
        raise InputError("a SELECT query gives a table: use --format table, csv, json or srj")
    if fmt == "srj":
        bindings = [{k: srj_term(v) for k, v in r.items()} for r in result.rows]
        return json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}}, indent=1) + "\n"
    if fmt == "json":
        return json.dumps([{k: _plain(r.get(k)) for k in names if k in r} for r in result.rows], indent=1) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(names)
        for r in result.rows:
            w.writerow([_csv_safe(_plain(r.get(k))) for k in names])
        return buf.getvalue()
    return render_table(names, [[_short(r.get(k)) for k in names] for r in result.rows], width=None if wide else 80)


def render_table(names: Sequence[str], cells: Sequence[Sequence[str]], width: int | None = 80) -> str:
    """A plain-text table (long cells cut at ``width`` characters; ``None``: never cut).

    >>> print(render_table(["a"], [["x" * 6]], width=4), end="")
    a
    ----
    xxx…
    (1 row)
    """
    cut = [[c if width is None or len(c) <= width else c[: width - 1] + "…" for c in row] for row in cells]
    widths = [max([len(n)] + [len(row[i]) for row in cut]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cut:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    lines.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return sanitize.terminal("\n".join(lines) + "\n")  # model text may carry ESC/BEL


def _csv_safe(value: object) -> object:
    """A text cell a spreadsheet will not run as a formula (numbers stay numbers).

    >>> _csv_safe("-2+3+cmd|' /C calc'!A0"), _csv_safe("-1.5"), _csv_safe(3)
    ("'-2+3+cmd|' /C calc'!A0", '-1.5', 3)
    """
    if not isinstance(value, str):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return sanitize.csv_cell(value)
