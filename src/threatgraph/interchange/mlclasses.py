"""ML classes from words: the phrase table (``data/ml-classes.conf``) and a user's overrides.

The importers give an element a ``tgml:`` class when its technology, tags, type, name or description
says what it is ("vector database" → tgml:VectorStore). The phrases live in a data file shipped with
threatgraph; a user's file (``--ml-classes FILE``) is tried first and can stop a phrase with ``none``.
Each choice made from words (not one the source states, like Threagile's ``ai`` technology or a
``tgml:Class`` tag) is returned with its reason so the importer can print it as a warning.

>>> t = default_table()
>>> c = t.classify([("technology", "vector-database")], "DataStore", token=True)
>>> c.cls.rsplit("#")[1], c.reason()
('VectorStore', 'its technology "vector-database" says "vector database"')
>>> t.classify([("name", "Orders DB")], "DataStore") is None
True
>>> mine = parse_table("chroma = VectorStore\\nnotebook = none\\n", "mine.conf", user=True)
>>> t2 = t.overridden_by(mine)
>>> t2.classify([("name", "Chroma")], "DataStore").reason()
'its name "Chroma" says "chroma"'
>>> t2.classify([("name", "Chroma")], "DataStore").rule
'mine.conf:1'
>>> t2.classify([("name", "Jupyter notebook")], "Process").cls.rsplit("#")[1]
'NotebookEnvironment'
>>> t2.classify([("name", "Ops notebook")], "Process") is None
True
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from threatgraph.errors import InputError
from threatgraph.terms import TGML

KINDS = ("Process", "DataStore", "ExternalEntity")
OVERRIDE_HINT = "override with --ml-classes FILE"
_SECTION = re.compile(r"^\[\s*([A-Za-z-]+)\s*\]$")
_EXPLICIT = re.compile(r"\btgml:([A-Za-z]+)\b")
_TOKEN_SEP = re.compile(r"[-_.]+")
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")


@dataclass(frozen=True)
class Phrase:
    """One ``PHRASE = CLASS`` line: the compiled phrase, the class local name (None for ``none``), where."""

    text: str
    rx: re.Pattern[str]
    cls: str | None
    where: str
    user: bool = False


@dataclass(frozen=True)
class Choice:
    """An ML class chosen for an element: the class IRI and why (field, its value, the words that matched)."""

    cls: str
    field: str
    value: str
    words: str
    explicit: bool = False
    rule: str = ""

    def reason(self) -> str:
        """``its technology "vector-database" says "vector database"``."""
        shown = " ".join(self.value.split())
        value = "" if self.field == "description" or len(shown) > 80 else f' "{shown}"'
        return f'its {self.field}{value} says "{self.words}"'


@dataclass(frozen=True)
class MLClasses:
    """The phrase table: classes with their core kind, and the phrases tried in order."""

    kinds: dict[str, str]
    phrases: tuple[Phrase, ...]
    sources: tuple[str, ...] = field(default=())

    def kind_of(self, cls: str) -> str | None:
        """The core kind (local name) of an ML class given by local name or IRI."""
        return self.kinds.get(cls.removeprefix(str(TGML)))

    def overridden_by(self, user: MLClasses) -> MLClasses:
        """This table with ``user``'s phrases tried first (its ``none`` phrases stop matches anywhere)."""
        return MLClasses(self.kinds, (*user.phrases, *self.phrases), (*user.sources, *self.sources))

    def explicit(self, fields: Sequence[tuple[str, str | None]], kind: str) -> Choice | None:
        """A ``tgml:ClassName`` written in one of the fields, for an element of core ``kind``."""
        for name, value in fields:
            for m in _EXPLICIT.finditer(value or ""):
                if self.kinds.get(m.group(1)) == kind:
                    return Choice(TGML[m.group(1)], name, value or "", m.group(0), explicit=True)
        return None

    @cached_property
    def _stops(self) -> tuple[re.Pattern[str], ...]:
        return tuple(p.rx for p in self.phrases if p.cls is None)

    @cached_property
    def _any_of_kind(self) -> dict[str, re.Pattern[str] | None]:
        """Per core kind, one pattern matching where any phrase of that kind matches (a quick first test)."""
        out: dict[str, re.Pattern[str] | None] = {}
        for kind in KINDS:
            parts = [p.text for p in self.phrases if p.cls is not None and self.kinds.get(p.cls) == kind]
            if any(_BACKREF.search(x) for x in parts):  # numbered groups shift when joined: no quick test
                out[kind] = re.compile("")
                continue
            out[kind] = re.compile(r"\b(?:" + "|".join(f"(?:{x})" for x in parts) + r")\b", re.IGNORECASE) \
                if parts else None
        return out

    def mask(self, text: str) -> str:
        """``text`` (normalised) with what the ``none`` phrases match blanked out."""
        for rx in self._stops:
            text = rx.sub(" | ", text)
        return text

    def classify(self, fields: Sequence[tuple[str, str | None]], kind: str, *, token: bool = False,
                 tokens: Collection[str] = (), user_only: bool = False, explicit: bool = True) -> Choice | None:
        """The ML class the ``fields`` (label, value) name for an element of core ``kind`` (local name), or None.

        An explicit ``tgml:ClassName`` wins; then the phrases in order, each tried on every field in
        order. ``token``: the fields are identifiers (technology, tags, type) whose ``-``, ``_`` and
        ``.`` may separate words (tried as written and split); ``tokens``: the labels of such fields. ``user_only``: only the user's phrases (for importers with a table of
        their own between the user's phrases and the shipped ones).
        """
        if explicit and (found := self.explicit(fields, kind)):
            return found
        quick = self._any_of_kind.get(kind)
        if quick is None:
            return None
        texts = [(name, value, self.mask(low)) for name, value in fields if value
                 for low in _variants(value, token=token or name in tokens)]
        if not any(quick.search(low) for _, _, low in texts):
            return None
        for p in self.phrases:
            if p.cls is None or self.kinds.get(p.cls) != kind or (user_only and not p.user):
                continue
            for name, value, low in texts:
                m = p.rx.search(low)
                if m:
                    return Choice(TGML[p.cls], name, value, m.group(0), rule=p.where if p.user else "")
        return None


def _variants(value: str, *, token: bool) -> list[str]:
    """The normalised forms a field is matched in: as written, and with an identifier's separators as spaces."""
    plain = normalise(value)
    split = normalise(value, token=True) if token else plain
    return [plain] if split == plain else [plain, split]


def normalise(text: str | None, *, token: bool = False) -> str:
    """Lower-case words separated by single spaces (identifiers split at ``-``, ``_`` and ``.`` when ``token``).

    >>> normalise("CD-V2-Vector_Database", token=True)
    'cd v2 vector database'
    >>> normalise("  Fine-tuned\\n model ")
    'fine-tuned model'
    """
    low = (text or "").lower()
    if token:
        low = _TOKEN_SEP.sub(" ", low)
    return " ".join(low.split())


def parse_table(text: str, name: str, *, user: bool = False, kinds: dict[str, str] | None = None) -> MLClasses:
    """Parse a table file's text (``name`` for messages). A user's file has phrases only (classes from ``kinds``).

    >>> try:
    ...     parse_table("[phrases]\\nvector db = VectorStor\\n", "x.conf", user=True)
    ... except InputError as err:
    ...     print(err.message)
    x.conf:2: unknown class 'VectorStor' (did you mean VectorStore, FeatureStore?)
    """
    known: dict[str, str] = {} if kinds is None and not user else dict(kinds or default_table().kinds)
    phrases: list[Phrase] = []
    section = "phrases" if user else None
    hint = ('write one "PHRASE = CLASS" per line, CLASS a tgml: class or none (see docs/interchange.md, '
            '"ML classes from words")')
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{n}"
        if m := _SECTION.match(line):
            section = m.group(1).lower()
            if section not in ("classes", "phrases"):
                raise InputError(f"{where}: unknown section [{m.group(1)}]", hint="the sections are [phrases] "
                                 "(and, in the shipped file only, [classes])")
            if user and section == "classes":
                raise InputError(f"{where}: [classes] cannot be changed in your file (the ontology fixes each "
                                 "class's kind)", hint="list only [phrases]: PHRASE = CLASS or PHRASE = none")
            continue
        left, eq, right = line.rpartition("=")
        left, right = left.strip(), right.strip()
        if not eq or not left or not right:
            raise InputError(f"{where}: expected PHRASE = CLASS, found {line[:60]!r}", hint=hint)
        if section is None:
            raise InputError(f"{where}: an entry before any [classes] or [phrases] section", hint=hint)
        if section == "classes":
            if right not in KINDS:
                raise InputError(f"{where}: unknown core kind {right!r} for {left}", hint=f"use one of {', '.join(KINDS)}")
            known[left] = right
            continue
        cls = right.removeprefix("tgml:")
        if cls.lower() == "none":
            target: str | None = None
        elif cls in known:
            target = cls
        else:
            close = difflib.get_close_matches(cls, known, n=3)
            raise InputError(f"{where}: unknown class {right!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""),
                             hint=f"name a tgml: class of ontology/ml.ttl ({', '.join(sorted(known)[:6])}, …) or none")
        try:
            rx = re.compile(rf"\b(?:{left})\b", re.IGNORECASE)
        except re.error as err:
            raise InputError(f"{where}: the phrase {left!r} is not a valid regular expression ({err})",
                             hint="write plain words, or escape special characters with a backslash") from err
        if re.fullmatch(left, ""):
            raise InputError(f"{where}: the phrase {left!r} matches empty text (it would class everything)",
                             hint="write the words that must appear")
        phrases.append(Phrase(left, rx, target, where, user))
    return MLClasses(known, tuple(phrases), (name,))


def read_table(path: str | Path) -> MLClasses:
    """A user's mapping file (``--ml-classes FILE``), checked; InputError (exit 2) with file:line when malformed."""
    from threatgraph.bounded import read_regular

    p = Path(path)
    data = read_regular(p, f"--ml-classes {p}", max_bytes=1_000_000)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"--ml-classes {p}: not UTF-8 text (byte {err.start})", hint="save the file as UTF-8") from err
    return parse_table(text, str(p), user=True)


@cache
def default_table() -> MLClasses:
    """The shipped table (``data/ml-classes.conf``)."""
    from threatgraph.resources import ml_classes_file

    path = ml_classes_file()
    return parse_table(path.read_text(encoding="utf-8"), path.name)


def table(user: str | Path | MLClasses | None = None) -> MLClasses:
    """The table to use: the shipped one, with a user's file (path or parsed) tried first."""
    if user is None:
        return default_table()
    mine = user if isinstance(user, MLClasses) else read_table(user)
    return default_table().overridden_by(mine)
