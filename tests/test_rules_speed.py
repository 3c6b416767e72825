"""Rules rewritten for speed in issue 14 (h-rules) give the same rows as their former queries, kept here as the
slow reference, on the examples, the rules' own fixtures and a generated model; and the rule engine gives the same
findings, evidence order included, whether it reads pyoxigraph's solutions by position (embedded store) or rows
(any other store).

The rewrites change the order of the patterns only (Oxigraph joins in the order written: the rewritten queries start
from the rarer element kinds, protocol statements or technologies instead of every data flow), or fold a UNION of two
branches over the same crossing flows into one pattern with ``FILTER (EXISTS … || EXISTS …)`` under MIN/COUNT DISTINCT.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from pyoxigraph import NamedNode, Quad

from threatgraph.analysis.engine import Engine, Explanation, _row_solutions
from threatgraph.store.base import Row, Term
from threatgraph.store.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "data" / "examples").glob("*.ttl"))

FORMER = {
    "TG-STRIDE-D-041": """\
SELECT ?focus ?source ?callers WHERE {
  {
    SELECT ?focus (MIN(?src) AS ?source) (COUNT(DISTINCT ?src) AS ?callers) WHERE {
      {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        ?src a tg:ExternalEntity .
      } UNION {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        FILTER EXISTS {
          ?src tg:inZone/tg:trustLevel ?srcTrust .
          ?focus tg:inZone/tg:trustLevel ?focusTrust .
          FILTER (?srcTrust < ?focusTrust)
        }
      }
      ?focus a tg:Process .
      FILTER (?src != ?focus)
      FILTER NOT EXISTS { ?focus tg:outOfScope true }
      FILTER NOT EXISTS { ?focus tg:rateLimited true }
      FILTER NOT EXISTS { ?in tg:rateLimited true }
    }
    GROUP BY ?focus
  }
}
""",
    "TG-STRIDE-E-034": """\
SELECT ?focus ?source ?target WHERE {
  FILTER NOT EXISTS { ?focus tg:responseTo ?request }
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target ;
         tg:authenticated true .
  FILTER NOT EXISTS { ?focus tg:propagatesUserIdentity true }
  FILTER NOT EXISTS { ?target tg:outOfScope true }
  FILTER NOT EXISTS { ?source a tg:DataStore }
  FILTER NOT EXISTS { ?focus tg:devOps true ; tg:authorizationEnforced true }
  ?target tg:technology ?ttech .
  FILTER (?ttech IN ("application-server", "ejb", "erp", "report-engine", "web-application", "web-server", "web-service-rest",
                     "web-service-soap"))
  ?source tg:technology ?stech .
  FILTER (?stech IN ("application-server", "browser", "client-system", "cli", "cms", "desktop", "devops-client", "ejb", "erp",
                     "function", "gateway", "identity-provider", "iot-device", "library", "load-balancer", "message-queue",
                     "mobile-app", "report-engine", "reverse-proxy", "search-engine", "service-mesh", "task", "tool", "waf",
                     "web-application", "web-server", "web-service-rest", "web-service-soap"))
  ?target tg:criticality ?crit .
  FILTER (?crit >= 4 || (?crit >= 3 && EXISTS { ?target tg:multiTenant true }))
}
""",
    "TG-STRIDE-E-041": """\
SELECT ?focus ?source ?callers WHERE {
  {
    SELECT ?focus (MIN(?src) AS ?source) (COUNT(DISTINCT ?src) AS ?callers) WHERE {
      {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        ?src a tg:ExternalEntity .
      } UNION {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        FILTER EXISTS {
          ?src tg:inZone/tg:trustLevel ?srcTrust .
          ?focus tg:inZone/tg:trustLevel ?focusTrust .
          FILTER (?srcTrust < ?focusTrust)
        }
      }
      ?focus a tg:Process .
      FILTER (?src != ?focus)
      FILTER NOT EXISTS { ?focus tg:outOfScope true }
      FILTER NOT EXISTS { ?focus tg:authorizationEnforced true }
      FILTER NOT EXISTS { ?in tg:authorizationEnforced true }
    }
    GROUP BY ?focus
  }
}
""",
    "TG-STRIDE-I-004": """\
SELECT ?focus ?source ?target ?srcZone ?tgtZone ?srcTrust ?tgtTrust ?data ?classification WHERE {
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target ;
         tg:carries ?data .
  ?source tg:inZone ?srcZone .
  ?target tg:inZone ?tgtZone .
  ?srcZone tg:trustLevel ?srcTrust .
  ?tgtZone tg:trustLevel ?tgtTrust .
  FILTER (?srcTrust > ?tgtTrust)
  ?data a tg:SensitiveDataAsset ;
        tg:classification ?classification .
  FILTER NOT EXISTS { ?focus tg:authorizationEnforced true }
  FILTER NOT EXISTS { ?source tg:authorizationEnforced true }
}
""",
    "TG-STRIDE-I-031": """\
SELECT ?focus ?source ?target ?protocol WHERE {
  FILTER NOT EXISTS { ?focus tg:responseTo ?request }
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target ;
         tg:protocol ?protocol .
  ?source a tg:Process .
  FILTER (LCASE(STR(?protocol)) IN ("http", "https", "ws", "wss", "reverse-proxy-web-protocol", "reverse-proxy-web-protocol-encrypted"))
  FILTER NOT EXISTS { ?source tg:outOfScope true }
  FILTER NOT EXISTS { ?source tg:trafficIntermediary true }
  FILTER NOT EXISTS { ?focus tg:inputValidated true }
}
""",
    "TG-STRIDE-I-033": """\
SELECT ?focus ?source ?target WHERE {
  FILTER NOT EXISTS { ?focus tg:responseTo ?request }
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target .
  ?target tg:technology ?tech .
  FILTER (?tech IN ("file-server", "local-file-system"))
  FILTER NOT EXISTS { ?source tg:outOfScope true }
  FILTER NOT EXISTS { ?focus tg:inputValidated true }
}
""",
    "TG-STRIDE-R-002": """\
SELECT ?focus ?source ?target WHERE {
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target .
  ?source a tg:Process .
  ?target a tg:LogStore .
  FILTER NOT EXISTS { ?target tg:auditLogged true }
  FILTER NOT EXISTS { ?focus tg:auditLogged true }
  FILTER NOT EXISTS { ?target tg:artifactsSigned true }
}
""",
    "TG-STRIDE-R-041": """\
SELECT ?focus ?source ?callers WHERE {
  {
    SELECT ?focus (MIN(?src) AS ?source) (COUNT(DISTINCT ?src) AS ?callers) WHERE {
      {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        ?src a tg:ExternalEntity .
      } UNION {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        FILTER EXISTS {
          ?src tg:inZone/tg:trustLevel ?srcTrust .
          ?focus tg:inZone/tg:trustLevel ?focusTrust .
          FILTER (?srcTrust < ?focusTrust)
        }
      }
      ?focus a tg:Process .
      FILTER (?src != ?focus)
      FILTER NOT EXISTS { ?focus tg:outOfScope true }
      FILTER NOT EXISTS { ?focus tg:auditLogged true }
      FILTER NOT EXISTS { ?in tg:auditLogged true }
    }
    GROUP BY ?focus
  }
}
""",
    "TG-STRIDE-R-050": """\
SELECT ?focus ?source ?target WHERE {
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target .
  ?source a tg:Process .
  ?target a tg:LogStore .
  FILTER (EXISTS { ?target tg:auditLogged true } || EXISTS { ?focus tg:auditLogged true })
}
""",
    "TG-STRIDE-S-042": """\
SELECT ?focus ?source ?callers WHERE {
  {
    SELECT ?focus (MIN(?src) AS ?source) (COUNT(DISTINCT ?src) AS ?callers) WHERE {
      {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        ?src a tg:ExternalEntity .
      } UNION {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        FILTER EXISTS {
          ?src tg:inZone/tg:trustLevel ?srcTrust .
          ?focus tg:inZone/tg:trustLevel ?focusTrust .
          FILTER (?srcTrust < ?focusTrust)
        }
      }
      ?focus a tg:Process .
      FILTER (?src != ?focus)
      FILTER NOT EXISTS { ?focus tg:outOfScope true }
      FILTER NOT EXISTS { ?focus tg:authenticated true }
      FILTER NOT EXISTS { ?in tg:authenticated true }
    }
    GROUP BY ?focus
  }
}
""",
    "TG-STRIDE-T-004": """\
SELECT ?focus ?source ?target ?origin WHERE {
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target .
  ?source a tg:DataStore .
  ?target a tgml:LLMApplication .
  {
    ?source tgml:feedsFrom ?origin .
    { ?origin a tgml:ThirdPartyDataSource } UNION { ?origin tg:untrustedOrigin true }
  } UNION {
    { ?source tg:untrustedOrigin true } UNION { ?focus tg:untrustedOrigin true }
    BIND (?source AS ?origin)
  }
  FILTER (EXISTS { ?target tgml:noGuardrails true } || NOT EXISTS { ?target tgml:usesGuardrail ?guardrail })
}
""",
    "TG-STRIDE-T-007": """\
SELECT ?focus ?source ?target WHERE {
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target .
  ?source a tgml:MLDependency .
  ?target a tg:Process .
  FILTER NOT EXISTS { ?focus tg:artifactsSigned true }
  FILTER NOT EXISTS { ?source tg:artifactsSigned true }
  FILTER NOT EXISTS { ?target tg:artifactsSigned true }
}
""",
    "TG-STRIDE-T-008": """\
SELECT ?focus ?source ?target ?srcZone ?tgtZone WHERE {
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target .
  ?source a tg:Process .
  ?target a tgml:ModelRegistry .
  FILTER NOT EXISTS { ?focus tg:authenticated true }
  FILTER NOT EXISTS { ?target tg:authenticated true }
  OPTIONAL { ?source tg:inZone ?srcZone }
  OPTIONAL { ?target tg:inZone ?tgtZone }
}
""",
    "TG-STRIDE-T-031": """\
SELECT ?focus ?source ?target ?protocol WHERE {
  FILTER NOT EXISTS { ?focus tg:responseTo ?request }
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target ;
         tg:protocol ?protocol .
  ?target a tg:DataStore .
  FILTER (LCASE(STR(?protocol)) IN ("jdbc", "jdbc-encrypted", "odbc", "odbc-encrypted", "sql-access-protocol",
          "sql-access-protocol-encrypted", "nosql-access-protocol", "nosql-access-protocol-encrypted"))
  FILTER NOT EXISTS { ?focus tg:inputValidated true }
}
""",
    "TG-STRIDE-T-037": """\
SELECT ?focus ?source ?target WHERE {
  FILTER NOT EXISTS { ?focus tg:responseTo ?request }
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target ;
         tg:protocol ?protocol .
  FILTER (LCASE(STR(?protocol)) IN ("ldap", "ldaps"))
  FILTER NOT EXISTS { ?source tg:outOfScope true }
  FILTER NOT EXISTS { ?focus tg:inputValidated true }
}
""",
    "TG-STRIDE-T-038": """\
SELECT ?focus ?source ?target WHERE {
  FILTER NOT EXISTS { ?focus tg:responseTo ?request }
  ?focus a tg:DataFlow ;
         tg:source ?source ;
         tg:target ?target ;
         tg:protocol ?protocol .
  FILTER (LCASE(STR(?protocol)) IN ("http", "https", "binary", "binary-encrypted"))
  ?target tg:technology ?tech .
  FILTER (?tech IN ("search-engine", "search-index"))
  FILTER NOT EXISTS { ?source tg:outOfScope true }
  FILTER NOT EXISTS { ?focus tg:inputValidated true }
}
""",
    "TG-STRIDE-T-041": """\
SELECT ?focus ?source ?callers WHERE {
  {
    SELECT ?focus (MIN(?src) AS ?source) (COUNT(DISTINCT ?src) AS ?callers) WHERE {
      {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        ?src a tg:ExternalEntity .
      } UNION {
        ?in tg:crossesBoundary true ;
            tg:source ?src ;
            tg:target ?focus .
        FILTER EXISTS {
          ?src tg:inZone/tg:trustLevel ?srcTrust .
          ?focus tg:inZone/tg:trustLevel ?focusTrust .
          FILTER (?srcTrust < ?focusTrust)
        }
      }
      ?focus a tg:Process .
      FILTER (?src != ?focus)
      FILTER NOT EXISTS { ?focus tg:outOfScope true }
      FILTER NOT EXISTS { ?focus tg:inputValidated true }
      FILTER NOT EXISTS { ?in tg:inputValidated true }
    }
    GROUP BY ?focus
  }
}
""",
}


def rows(eng: Engine, query: str) -> Counter[tuple[tuple[str, str], ...]]:
    return Counter(tuple(sorted((k, str(v)) for k, v in r.items())) for r in eng.store.select(query))


@pytest.fixture(scope="module")
def models(generated_model: Callable[[int, int], Path]) -> list[Path]:
    fixtures = [p for rid in FORMER for p in sorted((ROOT / "tests" / "rules" / "fixtures" / rid).glob("*.ttl"))]
    return [*EXAMPLES, *fixtures, generated_model(300, 0)]


@pytest.mark.slow
def test_rewritten_rules_give_the_former_rows(models: list[Path], derived_engine: Callable[..., Engine]) -> None:
    fired = dict.fromkeys(FORMER, 0)
    for path in models:
        eng = derived_engine(path)
        by_id = {r.id: r for r in eng.rules}
        for rid, former in FORMER.items():
            assert by_id[rid].query != former  # the rule file holds the rewrite
            got = rows(eng, by_id[rid].query)
            assert got == rows(eng, former), f"{rid} on {path.name}"
            fired[rid] += sum(got.values())
    assert all(fired.values()), fired  # every compared rule fires somewhere: the comparison is not vacuous


class RowStore:
    """An embedded store seen only through the Store protocol (not an EmbeddedStore): the engine reads rows."""

    def __init__(self) -> None:
        self.inner = EmbeddedStore()

    def select(self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True) -> list[Row]:
        return self.inner.select(query, bindings, complete=complete)

    def ask(self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True) -> bool:
        return self.inner.ask(query, bindings, complete=complete)

    def construct(
        self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True
    ) -> list[Quad]:
        return self.inner.construct(query, bindings, complete=complete)

    def update(self, update: str) -> None:
        self.inner.update(update)

    def load(self, data: bytes | str, mime: str, graph: str) -> None:
        self.inner.load(data, mime, graph)

    def add_quads(self, quads: Iterable[Quad]) -> None:
        self.inner.add_quads(quads)

    def replace_graph(self, graph: str, data: bytes | str, mime: str) -> None:
        self.inner.replace_graph(graph, data, mime)

    def drop_graph(self, graph: str) -> None:
        self.inner.drop_graph(graph)

    def graph_names(self) -> list[str]:
        return self.inner.graph_names()

    def dump(self, graph: str | None, mime: str) -> bytes:
        return self.inner.dump(graph, mime)

    def quads(self, graph: str | None = None) -> Iterator[Quad]:
        return self.inner.quads(graph)

    def __len__(self) -> int:
        return len(self.inner)


def cores(eng: Engine) -> list[tuple[object, ...]]:
    eng.run_rules()
    return sorted((c.iri, c.rule_id, str(c.focus), c.categories, c.explanation,
                   [(k, [str(v) for v in vs]) for k, vs in c.bindings.items()]) for c in eng.cores)


@pytest.mark.parametrize("model", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_solutions_and_rows_give_the_same_findings(model: Path, derived_engine: Callable[..., Engine]) -> None:
    embedded = derived_engine(model)
    by_rows = derived_engine(model, RowStore())
    got = cores(embedded)
    assert got and got == cores(by_rows)  # evidence order too: the bindings lists are compared as they are
    assert isinstance(embedded.store, EmbeddedStore) and embedded.store.settled_count == 0  # the rules never settle


def test_row_solutions_keep_each_rows_variable_order() -> None:
    a, b, c = NamedNode("urn:a"), NamedNode("urn:b"), NamedNode("urn:c")

    class Fixed(RowStore):
        def select(
            self, query: str, bindings: Mapping[str, Term] | None = None, *, complete: bool = True
        ) -> list[Row]:
            return [{"x": a, "z": c}, {"y": b, "z": c}, {"x": a, "y": b}]

    names, sols = _row_solutions(Fixed(), "SELECT ?x ?y ?z WHERE {}")
    assert names == ["x", "y", "z"]
    assert list(sols) == [(a, None, c), (None, b, c), (a, b, None)]


@pytest.mark.parametrize("template", ["{a} and {b}", "no field", "{a}{a} {{x}} {b}.", "{category}: {a}"])
def test_compiled_explanation_renders_as_render(template: str) -> None:
    e = Explanation(template, {"urn:a": "Alpha"})
    row: dict[str, list[Term]] = {"a": [NamedNode("urn:a")], "b": [NamedNode("urn:z"), NamedNode("urn:y")]}
    fmt, fields = e.compiled()
    args = [e.value([NamedNode("urn:cat")] if f == "category" else row.get(f)) for f in fields]
    assert fmt.format(*args) == e.render(row, [NamedNode("urn:cat")])
