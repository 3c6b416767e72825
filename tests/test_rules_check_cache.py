"""Rules that passed their checks against the ontology are remembered in the cache (issue 14: ~30 ms of
every analysis); an edited rule, or another ontology, is checked again and a failing one is never remembered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from threatgraph.analysis import rules as rules_mod
from threatgraph.analysis.ontology import load_ontology
from threatgraph.analysis.rules import load_rules, rule_files
from threatgraph.errors import RuleError


@pytest.fixture
def rule_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("THREATGRAPH_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "rules"
    d.mkdir()
    for p in rule_files()[:5]:
        shutil.copy(p, d / p.name)
    return d


def _checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = rules_mod.check_rule

    def spy(rule: rules_mod.Rule, terms: set[str], cats: set[str]) -> None:
        calls.append(rule.id)
        original(rule, terms, cats)

    monkeypatch.setattr(rules_mod, "check_rule", spy)
    return calls


def test_checked_rules_are_not_checked_again(rule_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    onto = load_ontology()
    terms, cats = set(onto.terms), set(onto.categories)
    calls = _checks(monkeypatch)
    first = load_rules(sorted(rule_dir.glob("*.rq")), known_terms=terms, categories=cats)
    assert len(calls) == 5
    again = load_rules(sorted(rule_dir.glob("*.rq")), known_terms=terms, categories=cats)
    assert len(calls) == 5 and again == first
    # checked against other terms (another ontology): checked again
    load_rules(sorted(rule_dir.glob("*.rq")), known_terms=terms | {"urn:x"}, categories=cats)
    assert len(calls) == 10


def test_an_edited_rule_is_checked_again_and_a_failure_is_not_remembered(rule_dir: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    onto = load_ontology()
    terms, cats = set(onto.terms), set(onto.categories)
    paths = sorted(rule_dir.glob("*.rq"))
    load_rules(paths, known_terms=terms, categories=cats)
    text = paths[0].read_text(encoding="utf-8")
    where = text.index("WHERE {") + len("WHERE {")
    paths[0].write_text(text[:where] + " ?focus a tg:NoSuchClassAnywhere . " + text[where:], encoding="utf-8")
    for _ in range(2):  # refused both times: the failing set was not remembered
        with pytest.raises(RuleError, match="NoSuchClassAnywhere"):
            load_rules(paths, known_terms=terms, categories=cats)
