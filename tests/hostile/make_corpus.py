"""Generate the hostile-input corpus of issue 11 (nothing large is committed: every case is built here).

``python tests/hostile/make_corpus.py DIR`` writes the files into DIR and prints the cases as JSON;
``tests/test_hostile.py`` builds the corpus in a temporary directory and runs every case through the CLI
in a subprocess under a time and a memory limit.

A case is a command line (``{dir}`` is the corpus directory, ``{store}`` a prepared store when
``store`` is true), the exit code it must give, and a piece of the one message it must print on stderr.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

THREAGILE_HEAD = "threagile_version: 1.0.0\ntitle: Hostile\n"
OTM_HEAD = '{"otmVersion": "0.2.0", "project": {"name": "h", "id": "h"}, '


@dataclass
class Case:
    name: str
    argv: list[str]
    exit: int = 2
    expect: str = ""
    """A piece of the message on stderr (case-sensitive)."""
    store: bool = False
    """Run against a prepared store whose content digest must not change."""
    env: dict[str, str] = field(default_factory=dict)
    stdout_absent: list[str] = field(default_factory=list)
    """Pieces that must not appear on stdout (raw control characters, live links, formulas)."""
    stdout_present: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    """Paths (``{dir}`` allowed) that must not exist afterwards (a store a read command must not create)."""
    listing: dict[str, list[str]] = field(default_factory=dict)
    """Directory → the only names it may hold afterwards (nothing written into a directory not a store)."""


def _write(root: Path, rel: str, data: bytes | str) -> str:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(p)


def _laughs(levels: int = 9, fan: int = 9) -> str:
    lines = ['threagile_version: 1.0.0', 'title: Bomb', 'a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(fan))}]")
    lines.append(f"technical_assets: {{x: *a{levels}}}")
    return "\n".join(lines) + "\n"


def interchange(root: Path) -> list[Case]:
    """JSON and YAML model files: nesting, numbers, dates, alias bombs, includes, duplicate keys."""
    cases: list[Case] = []

    def imp(name: str, rel: str, data: bytes | str, expect: str, exit: int = 2) -> None:
        cases.append(Case(name, ["import-model", _write(root, rel, data)], exit, expect))

    deep = 100_000
    imp("json-deep-nesting", "deep.otm.json", OTM_HEAD + '"x": ' + "[" * deep + "]" * deep + "}", "nested more than")
    imp("yaml-deep-nesting", "deep.yaml", THREAGILE_HEAD + "x: " + "[" * deep + "]" * deep + "\n", "nested more than")
    imp("yaml-deep-block-nesting", "deepblock.yaml",
        THREAGILE_HEAD + "".join(" " * i + f"k{i}:\n" for i in range(2000)), "nested more than")
    imp("json-huge-exponent", "exp.otm.json", OTM_HEAD + '"x": 1e999999}', "1e999999")
    imp("json-nan", "nan.otm.json", OTM_HEAD + '"x": NaN}', "NaN")
    imp("json-infinity", "inf.otm.json", OTM_HEAD + '"x": -Infinity}', "Infinity")
    imp("json-5000-digits", "digits.otm.json", OTM_HEAD + '"x": ' + "9" * 5000 + "}", "digits")
    imp("yaml-5000-digits", "digits.yaml", THREAGILE_HEAD + "x: " + "9" * 5000 + "\n", "digits.yaml:3")
    imp("yaml-inf", "inf.yaml", THREAGILE_HEAD + "x: .inf\n", "not a finite number")
    imp("yaml-impossible-date", "date.yaml", "threagile_version: 1.0.0\ntitle: H\ndate: 2024-02-30\n",
        "date.yaml:3")
    imp("yaml-billion-laughs", "laughs.yaml", _laughs(), "aliases are expanded")
    imp("yaml-recursive-alias", "loop.yaml", THREAGILE_HEAD + "x: &a [*a]\n", "recursive")
    imp("yaml-duplicate-key", "dupkey.yaml", THREAGILE_HEAD + "title: Again\n", "duplicate key 'title'")
    # Threagile includes.
    imp("include-dev-zero", "inc/devzero.yaml", THREAGILE_HEAD + "includes: [/dev/zero]\n", "outside the model's folder")
    (root / "inc").mkdir(parents=True, exist_ok=True)
    (root / "inc" / "zero.yaml").symlink_to("/dev/zero")
    imp("include-dev-zero-symlink", "inc/viazero.yaml", THREAGILE_HEAD + "includes: [zero.yaml]\n", "outside the model's")
    os.mkfifo(root / "inc" / "fifo.yaml")
    imp("include-fifo", "inc/fifo-main.yaml", THREAGILE_HEAD + "includes: [fifo.yaml]\n", "not a regular file")
    _write(root, "secret.yaml", "technical_assets: {}\nsecret_field: leaked\n")
    imp("include-outside-folder", "inc/outside.yaml", THREAGILE_HEAD + "includes: [../secret.yaml]\n",
        "outside the model's folder")
    imp("include-directory", "inc/dir.yaml", THREAGILE_HEAD + "includes: [sub]\n", "a directory")
    (root / "inc" / "sub").mkdir()
    # fan-out: each level includes the next twice (2^30 reads without a bound)
    for i in range(30):
        _write(root, f"fan/f{i}.yaml", f"includes: [f{i + 1}.yaml, f{i + 1}.yaml]\n" if i < 29 else "title: Hostile\n")
    imp("include-fan-out", "fan/main.yaml", THREAGILE_HEAD + "includes: [f0.yaml]\n", "included files in all")
    # duplicate ids: read (exit 0) with a warning naming both places
    dup = ('{"otmVersion": "0.2.0", "project": {"name": "d", "id": "d"}, "components": ['
           '{"id": "c1", "name": "A", "type": "web-service"}, {"id": "c1", "name": "B", "type": "database"}]}')
    imp("otm-duplicate-component-id", "dup.otm.json", dup, "/components/1/id: duplicate component id 'c1'", exit=0)
    dup_assets = ('{"otmVersion": "0.2.0", "project": {"name": "d", "id": "d"}, "assets": ['
                  '{"id": "a1", "name": "A", "risk": {"confidentiality": 1, "integrity": 1, "availability": 1}}, '
                  '{"id": "a1", "name": "B", "risk": {"confidentiality": 1, "integrity": 1, "availability": 1}}]}')
    imp("otm-duplicate-asset-id", "dupa.otm.json", dup_assets, "/assets/1: id 'a1' is already used at /assets/0",
        exit=0)
    # the limits are configurable
    cases.append(Case("model-above-input-bytes", ["import-model", _write(root, "big.otm.json", OTM_HEAD + '"x": "' + "a" * 5000 + '"}')],
                      2, "above the limit of 4096 bytes", env={"THREATGRAPH_MAX_INPUT_BYTES": "4096"}))
    cases.append(Case("limit-from-environment", ["import-model", _write(root, "nest4.yaml", THREAGILE_HEAD + "x: [[[[1]]]]\n")],
                      2, "nested more than 3 levels", env={"THREATGRAPH_MAX_DEPTH": "3"}))
    return cases


def knowledge(root: Path) -> list[Case]:
    """Knowledge imports into a prepared store (ATT&CK ICS 17.1 and ATLAS): each must leave it unchanged."""
    cases: list[Case] = []

    def imp(name: str, kind: str, rel: str, data: bytes | str, expect: str, **kw: object) -> None:
        path = _write(root, rel, data) if rel else data
        cases.append(Case(name, ["import", kind, str(path), "--store", "{store}", "--quiet"], 2, expect,
                          store=True, **kw))  # type: ignore[arg-type]

    member = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in ~64 KiB
    imp("knowledge-gzip-bomb", "attack", "k/bomb.json.gz", member * 16, "decompresses to more than")
    deep = 100_000
    imp("knowledge-deep-json", "attack", "k/deep.json", '{"type": "bundle", "objects": ' + "[" * deep + "]" * deep + "}",
        "nested more than")
    imp("knowledge-json-nan", "attack", "k/nan.json", '{"type": "bundle", "id": NaN, "objects": []}', "NaN")
    imp("knowledge-dev-zero", "attack", "", "/dev/zero", "above the limit")
    imp("knowledge-atlas-as-attack", "attack", "", "{shared}/atlas/ATLAS.yaml", "malformed JSON")
    imp("knowledge-atlas-alias-bomb", "atlas", "k/laughs.yaml", _laughs().replace("technical_assets", "matrices"),
        "aliases are expanded")
    imp("knowledge-atlas-impossible-date", "atlas", "k/date.yaml", "id: ATLAS\nversion: 1\nmatrices: []\n"
        "date: 2024-02-30\n", "day is out of range")
    imp("knowledge-atlas-recursive", "atlas", "k/loop.yaml", "matrices: &m [*m]\n", "recursive")
    return cases


HOSTILE_LABEL = ("-2+3+cmd|' /C calc'!A0 \\u001B]0;pwned\\u0007 [click](javascript:alert(1)) "
                 "![b](https://evil.example/b.gif) <img src=https://evil.example/i.gif>")


LABELS = "SELECT ?l WHERE { ?e rdfs:label ?l } ORDER BY ?l"


def outputs(root: Path) -> list[Case]:
    """Model text that attacks the reader of an output: a terminal, a PR comment, a spreadsheet."""
    example = Path(__file__).resolve().parents[2] / "data" / "examples" / "rag-assistant.ttl"
    text = example.read_text(encoding="utf-8").replace('rdfs:label "Customer" ;', f'rdfs:label "{HOSTILE_LABEL}" ;')
    model = _write(root, "out/hostile-label.ttl", text)
    return [
        Case("table-control-characters", ["analyze", model, "--format", "table"], 0,
             stdout_absent=["\x1b", "\x07"], stdout_present=["\\x1b]0;pwned\\x07"]),
        Case("markdown-links-and-images", ["analyze", model, "--format", "markdown"], 0,
             stdout_absent=["[click](javascript:", "![b](", "<img", "\x1b"], stdout_present=["javascript:alert"]),
        Case("csv-formula", ["analyze", model, "--format", "csv"], 0,
             stdout_absent=[",-2+3+cmd", ",=", ",+", ",@"], stdout_present=[",'-2+3+cmd"]),
        Case("query-table-control-characters", ["query", LABELS, "--model", model], 0,
             stdout_absent=["\x1b", "\x07"], stdout_present=["\\x1b]0;pwned\\x07"]),
        Case("query-csv-formula", ["query", LABELS, "--model", model, "--format", "csv"], 0,
             stdout_absent=["\n-2+3+cmd"], stdout_present=["\n'-2+3+cmd"]),
    ]


def stores(root: Path) -> list[Case]:
    """Store safety: read commands need a store; nothing is written into a directory that is not one."""
    example = str(Path(__file__).resolve().parents[2] / "data" / "examples" / "rag-assistant.ttl")
    missing = "{dir}/no-such-store"
    cases = [
        Case(f"read-missing-store-{cmd[0]}", [*cmd, "--store", missing], 2, "no store at", absent=[missing])
        for cmd in (["releases"], ["query", "rules-fired"], ["diff-release", "attack-ics/17.1", "attack-ics/18.1"],
                    ["serve", "--port", "0"], ["coverage", "--release", "atlas"])
    ]
    _write(root, "notastore/keep.txt", "my notes\n")
    for cmd in (["import", "attack", "{shared}/attack/ics-attack-17.1.json", "--quiet"], ["analyze", example],
                ["releases"]):
        cases.append(Case(f"non-store-directory-{cmd[0]}", [*cmd, "--store", "{dir}/notastore"], 2,
                          "not a threatgraph store", listing={"{dir}/notastore": ["keep.txt"]}))
    cases.append(Case("query-model-replaces-store", ["query", "rules-fired", "--model", example, "--store", "{store}"],
                      2, "would replace the analysis", store=True))
    return cases


def cases(root: Path, dry: bool = False) -> list[Case]:
    """Write every file under ``root`` and return the cases (``dry``: only their names, nothing written)."""
    if dry:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return cases(Path(tmp))
    root.mkdir(parents=True, exist_ok=True)
    groups: list[Callable[[Path], list[Case]]] = [interchange, knowledge, outputs, stores]
    out: list[Case] = []
    for group in groups:
        out.extend(group(root))
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    json.dump([asdict(c) for c in cases(target)], sys.stdout, indent=1)
    sys.stdout.write("\n")
