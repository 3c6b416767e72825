"""No rule's SELECT grows super-linearly with the model (issue 14).

Twice a rule that looked harmless on the examples paired every element with every element at scale (TG-STRIDE-T-010's
scope fix: 27.9 s at 10 k elements; the process rules comparing zone trust levels in a UNION branch: 7-8.6 s each);
bench_analyze's 10k/1k ratio caught both, after the fact. Here every built-in rule runs on a generated model of
8,000 elements (loaded, closed and derived as the engine does before its rules) within a CPU budget of 1.2 s: the
slowest there (the per-element baselines) take ~0.3 s, the former process rule ~4 s (1.56 s at 5,000). CPU time, not wall time, so a loaded
machine does not make it flaky.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine
from threatgraph.analysis.fastclosure import model_closure
from threatgraph.analysis.model import load_model_files
from threatgraph.analysis.ontology import load_ontology
from threatgraph.analysis.rules import load_all_rules
from threatgraph.store import Store, open_store

BUDGET_S = 1.2
SIZE = 8000

# TG-STRIDE-D-041 as first merged (422e94d): its second UNION branch bound the caller and the process only through
# their zones' trust levels
FORMER_D041 = """SELECT ?focus ?source ?callers WHERE {
  {
    SELECT ?focus (MIN(?src) AS ?source) (COUNT(DISTINCT ?src) AS ?callers) WHERE {
      ?focus a tg:Process .
      FILTER NOT EXISTS { ?focus tg:outOfScope true }
      FILTER NOT EXISTS { ?focus tg:rateLimited true }
      ?in tg:target ?focus ;
          tg:crossesBoundary true ;
          tg:source ?src .
      FILTER (?src != ?focus)
      {
        ?src a tg:ExternalEntity .
      } UNION {
        ?src tg:inZone/tg:trustLevel ?srcTrust .
        ?focus tg:inZone/tg:trustLevel ?focusTrust .
        FILTER (?srcTrust < ?focusTrust)
      }
      FILTER NOT EXISTS { ?in tg:rateLimited true }
    }
    GROUP BY ?focus
  }
}"""


@pytest.fixture(scope="module")
def store(generated_model: Callable[[int, int], Path]) -> Store:
    loaded = load_model_files([generated_model(SIZE, 42)])
    onto = load_ontology()
    mem = open_store()
    engine = Engine(mem, ontology=onto)
    engine.load(loaded, model_closure(onto, loaded))
    engine.derive()
    return mem


def _cpu(store: Store, query: str) -> tuple[float, int]:
    t = time.process_time()
    rows = store.select(query)
    return time.process_time() - t, len(rows)


@pytest.mark.slow
def test_every_rule_within_budget_at_8k(store: Store) -> None:
    slow = {}
    fired = 0
    for rule in load_all_rules():
        dt, n = _cpu(store, rule.query)
        fired += n > 0
        if dt > BUDGET_S:
            slow[rule.id] = round(dt, 2)
    assert fired >= 40  # the model exercises the rules (not an empty store that answers everything at once)
    assert not slow, f"rules over {BUDGET_S} s CPU at {SIZE} elements (super-linear?): {slow}"


@pytest.mark.slow
def test_budget_catches_the_former_process_rule(store: Store) -> None:
    dt, n = _cpu(store, FORMER_D041)
    assert n > 0
    assert dt > BUDGET_S
