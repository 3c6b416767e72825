"""Every derivation rule has a positive and a negative fixture, found automatically.

``tests/rules/fixtures/<RULE-ID>/positive.ttl``: the rule must fire on ``<http://example.org/test#focus>``.
``tests/rules/fixtures/<RULE-ID>/negative.ttl``: the rule must not fire on it (typically the positive
model with the one fact changed that the rule depends on); ``negative-<case>.ttl`` files beside it are
further negative cases, checked the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyoxigraph import NamedNode

from threatgraph.analysis.engine import Engine
from threatgraph.analysis.ontology import load_ontology
from threatgraph.analysis.rules import load_rules, rule_files
from threatgraph.terms import RULE

FIXTURES = Path(__file__).parent / "rules" / "fixtures"
FOCUS = NamedNode("http://example.org/test#focus")
RULES = load_rules(rule_files())


def _analyze(rule_id: str, model: Path) -> tuple[list[str], int]:
    """IRIs of the rule's findings on ex:focus, and the number of findings of all rules."""
    engine = Engine()
    total = engine.analyze([model]).finding_count
    rows = engine.store.select(
        "SELECT ?f WHERE { GRAPH <https://w3id.org/threatgraph/graph/findings> { ?f tg:byRule ?rule ; tg:focus ?focus } }",
        {"rule": NamedNode(RULE + rule_id), "focus": FOCUS},
    )
    return [r["f"].value for r in rows], total


def _fires_on_focus(rule_id: str, model: Path) -> list[str]:
    return _analyze(rule_id, model)[0]


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_has_fixtures(rule: object) -> None:
    rid = rule.id  # type: ignore[attr-defined]
    assert (FIXTURES / rid / "positive.ttl").is_file(), f"rule {rid} has no positive fixture"
    assert (FIXTURES / rid / "negative.ttl").is_file(), f"rule {rid} has no negative fixture"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_positive(rule: object) -> None:
    rid = rule.id  # type: ignore[attr-defined]
    path = FIXTURES / rid / "positive.ttl"
    if not path.is_file():
        pytest.fail(f"rule {rid} has no positive fixture")
    # positive.ttl and any further positive-<case>.ttl (another way the rule's condition is met)
    for case in [path, *sorted((FIXTURES / rid).glob("positive-*.ttl"))]:
        assert _fires_on_focus(rid, case), f"{rid} did not fire on ex:focus in {case}"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_negative(rule: object) -> None:
    rid = rule.id  # type: ignore[attr-defined]
    path = FIXTURES / rid / "negative.ttl"
    if not path.is_file():
        pytest.fail(f"rule {rid} has no negative fixture")
    # negative.ttl and any further negative-<case>.ttl (another fact the rule must respect)
    for case in [path, *sorted((FIXTURES / rid).glob("negative-*.ttl"))]:
        fired, total = _analyze(rid, case)
        assert total > 0, f"{case}: the analysis produced no findings at all, so this negative test would prove nothing"
        assert not fired, f"{rid} fired on ex:focus in {case}, which should not match"


def test_all_rules_pass_the_ontology_check() -> None:
    onto = load_ontology()
    rules = load_rules(rule_files(), known_terms=set(onto.terms), categories=set(onto.categories))
    assert len(rules) == len(RULES) >= 2


def test_no_orphan_fixture_directories() -> None:
    ids = {r.id for r in RULES}
    orphans = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name not in ids)
    assert not orphans, f"fixture directories without a rule: {orphans}"
