"""ATT&CK Enterprise 18.1 import checked against MITRE's own mitreattack-python on the same bundle.

For every active technique: tactics, mitigations, parent and sub-techniques; for every technique:
revoked / deprecated status and replacement; for every active group: the techniques it uses (directly
or through campaigns attributed to it, as ``get_techniques_used_by_group`` defines). 100% agreement
is required; there are no documented differences for 18.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from threatgraph.knowledge.releases import (
    ACTIVE_TECHNIQUES_QUERY,
    active_filter,
    load_release,
    replacement_for,
    technique_mitigations,
)
from threatgraph.resources import shared_data_dir
from threatgraph.store import open_store
from threatgraph.store.base import Store
from threatgraph.terms import ATTACK

pytestmark = pytest.mark.shared

DATA = shared_data_dir()
ENTERPRISE_18 = DATA / "attack" / "enterprise-attack-18.1.stix20.json" if DATA else Path("/missing")
if not ENTERPRISE_18.is_file():  # pragma: no cover - only without the shared data
    pytest.skip("shared data not available (THREATGRAPH_SHARED_DATA)", allow_module_level=True)

mitreattack = pytest.importorskip(
    "mitreattack.stix20", reason="mitreattack-python (test extra) not installed"
)


@pytest.fixture(scope="module")
def mad() -> Any:
    """MitreAttackData on the Enterprise 18.1 bundle (loads in ~6 s: once per module)."""
    return mitreattack.MitreAttackData(str(ENTERPRISE_18))


@pytest.fixture(scope="module")
def revoked_by(mad: Any) -> dict[str, str]:
    """STIX id of each revoked object → STIX id of its replacement, from the library's own store.

    One query instead of ``get_revoking_object`` per technique (0.2 s each); a sample is checked
    against ``get_revoking_object`` in the test below.
    """
    from stix2 import Filter

    rels = mad.src.query(
        [Filter("type", "=", "relationship"), Filter("relationship_type", "=", "revoked-by")]
    )
    return {r["source_ref"]: r["target_ref"] for r in rels}


@pytest.fixture(scope="module")
def loaded() -> tuple[Store, str]:
    store = open_store()
    res = load_release(store, "attack", str(ENTERPRISE_18))
    return store, res.release.graph


def _aid(mad: Any, obj: Any) -> str:
    return str(mad.get_attack_id(obj["id"]))


def _pairs(store: Store, graph: str, pattern: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in store.select(f"SELECT ?a ?b WHERE {{ GRAPH <{graph}> {{ {pattern} }} }}"):
        out.setdefault(r["a"].value, set()).add(r["b"].value)
    return out


def test_active_techniques_are_the_oracles(mad: Any, loaded: tuple[Store, str]) -> None:
    store, graph = loaded
    oracle = {_aid(mad, t) for t in mad.get_techniques(remove_revoked_deprecated=True)}
    rows = store.select(ACTIVE_TECHNIQUES_QUERY.replace("GRAPH ?release", f"GRAPH <{graph}>"))
    mine = {r["id"].value for r in rows}
    assert len(oracle) == 691  # 216 techniques + 475 sub-techniques (data README)
    assert mine == oracle


def test_tactics_of_every_active_technique(mad: Any, loaded: tuple[Store, str]) -> None:
    store, graph = loaded
    mine = _pairs(store, graph, "?t kb:attackId ?a ; kb:tactic ?x . ?x kb:attackId ?b")
    # get_techniques_by_tactic per tactic (14 calls) gives the same map as get_tactics_by_technique per
    # technique (691 calls, 40 s); the latter is checked on a sample
    oracle: dict[str, set[str]] = {}
    for tactic in mad.get_tactics(remove_revoked_deprecated=True):
        for t in mad.get_techniques_by_tactic(tactic["x_mitre_shortname"], "enterprise-attack", True):
            oracle.setdefault(_aid(mad, t), set()).add(_aid(mad, tactic))
    techniques = mad.get_techniques(remove_revoked_deprecated=True)
    assert set(oracle) == {_aid(mad, t) for t in techniques}
    for t in techniques[::50]:
        assert {_aid(mad, x) for x in mad.get_tactics_by_technique(t["id"])} == oracle[_aid(mad, t)]
    assert {k: mine.get(k, set()) for k in oracle} == oracle


def test_mitigations_of_every_active_technique(mad: Any, loaded: tuple[Store, str]) -> None:
    store, graph = loaded
    oracle: dict[str, set[str]] = {}
    for t in mad.get_techniques(remove_revoked_deprecated=True):
        ms = {_aid(mad, e["object"]) for e in mad.get_mitigations_mitigating_technique(t["id"])}
        if ms:
            oracle[_aid(mad, t)] = ms
    mine = technique_mitigations(store, graph)
    assert sum(len(v) for v in oracle.values()) == 1445
    assert mine == oracle


def test_parent_and_subtechniques(mad: Any, loaded: tuple[Store, str]) -> None:
    store, graph = loaded
    parents = _pairs(store, graph, "?s kb:subtechniqueOf ?p . ?s kb:attackId ?a . ?p kb:attackId ?b")
    # a relationship is active only when both ends are: T1053.004 (deprecated) and T1574.002 (revoked)
    # keep their subtechnique-of relationship in the bundle; mitreattack-python leaves them out too
    subs = _pairs(
        store,
        graph,
        f"?s kb:subtechniqueOf ?p . ?s kb:attackId ?b . ?p kb:attackId ?a . {active_filter('s')}",
    )
    flags = {
        r["id"].value: r["sub"].value == "true"
        for r in store.select(
            f"SELECT ?id ?sub WHERE {{ GRAPH <{graph}> {{ ?t kb:attackId ?id ; kb:isSubtechnique ?sub }} }}"
        )
    }
    for t in mad.get_techniques(remove_revoked_deprecated=True):
        tid = _aid(mad, t)
        assert flags[tid] == bool(t.get("x_mitre_is_subtechnique", False)), tid
        oracle_parent = {_aid(mad, e["object"]) for e in mad.get_parent_technique_of_subtechnique(t["id"])}
        assert parents.get(tid, set()) == oracle_parent, tid
        oracle_subs = {_aid(mad, e["object"]) for e in mad.get_subtechniques_of_technique(t["id"])}
        assert subs.get(tid, set()) == oracle_subs, tid


def test_revoked_and_deprecated_status_of_every_technique(
    mad: Any, loaded: tuple[Store, str], revoked_by: dict[str, str]
) -> None:
    store, graph = loaded
    rows = store.select(
        f"""SELECT ?id ?r ?d ?by WHERE {{ GRAPH <{graph}> {{ ?t a kb:Technique ; kb:attackId ?id .
            OPTIONAL {{ ?t kb:revoked ?r }} OPTIONAL {{ ?t kb:deprecated ?d }}
            OPTIONAL {{ ?t kb:revokedBy/kb:attackId ?by }} }} }}"""
    )
    mine = {r["id"].value: ("r" in r, "d" in r, r["by"].value if "by" in r else None) for r in rows}
    techniques = mad.get_techniques()
    assert len(techniques) == len(mine) == 835
    revoked = deprecated = 0
    for t in techniques:
        tid = _aid(mad, t)
        is_rev, is_dep = bool(t.get("revoked", False)), bool(t.get("x_mitre_deprecated", False))
        by = revoked_by.get(t["id"]) if is_rev else None
        assert mine[tid] == (is_rev, is_dep, mad.get_attack_id(by) if by else None), tid
        revoked += is_rev
        deprecated += is_dep
    assert (revoked, deprecated) == (132, 12)
    for t in [t for t in techniques if t.get("revoked")][::20]:  # the fixture agrees with the API
        assert mad.get_revoking_object(t["id"])["id"] == revoked_by[t["id"]]


def test_replacement_for_agrees_with_the_oracle(
    mad: Any, loaded: tuple[Store, str], revoked_by: dict[str, str]
) -> None:
    store, _graph = loaded
    for t in mad.get_techniques():
        tid = _aid(mad, t)
        status, repl = replacement_for(store, ATTACK[tid])
        if t.get("revoked"):
            # one hop per revoked-by relationship; follow the chain to its end like replacement_for
            target = revoked_by.get(t["id"])
            while target in revoked_by:
                target = revoked_by[target]
            assert (status, repl) == ("revoked", ATTACK[mad.get_attack_id(target)] if target else None), tid
        elif t.get("x_mitre_deprecated"):
            assert (status, repl) == ("deprecated", None), tid
        else:
            assert (status, repl) == ("active", None), tid


def test_techniques_used_by_every_active_group(mad: Any, loaded: tuple[Store, str]) -> None:
    store, graph = loaded
    mine = _pairs(
        store,
        graph,
        f"""?g a kb:Group ; kb:attackId ?a .
        {{ ?g kb:uses ?t }} UNION {{ ?c a kb:Campaign ; kb:attributedTo ?g ; kb:uses ?t }}
        ?t a kb:Technique ; kb:attackId ?b . {active_filter("t")}""",
    )
    groups = mad.get_groups(remove_revoked_deprecated=True)
    assert len(groups) == 172
    oracle = {
        _aid(mad, g): {_aid(mad, e["object"]) for e in mad.get_techniques_used_by_group(g["id"])}
        for g in groups
    }
    assert sum(len(v) for v in oracle.values()) > 3000
    assert {k: mine.get(k, set()) for k in oracle} == oracle


def test_counts_match_the_data_readme(loaded: tuple[Store, str]) -> None:
    store, graph = loaded
    rows = store.select(
        f"""SELECT ?cls (COUNT(?x) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?x a ?cls . {active_filter("x")} }} }}
            GROUP BY ?cls"""
    )
    n = {r["cls"].value.rsplit("#", 1)[-1]: int(r["n"].value) for r in rows}
    assert (n["Technique"], n["Mitigation"], n["Group"], n["Software"]) == (691, 44, 172, 784)
    rel = store.select(
        f"""SELECT ?p (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o .
            VALUES ?p {{ kb:uses kb:mitigates kb:detects kb:subtechniqueOf kb:revokedBy kb:attributedTo }} }} }}
            GROUP BY ?p"""
    )
    counts = {r["p"].value.rsplit("#", 1)[-1]: int(r["n"].value) for r in rel}
    assert counts == {
        "uses": 17270,
        "mitigates": 1445,
        "detects": 691,
        "subtechniqueOf": 477,
        "revokedBy": 140,
        "attributedTo": 25,
    }


def test_ids_stix_ids_and_pages(loaded: tuple[Store, str]) -> None:
    store, graph = loaded
    rows = store.select(
        f"""SELECT ?label ?stix ?page ?cls WHERE {{ GRAPH <{graph}> {{
            ?t a ?cls ; rdfs:label ?label ; kb:stixId ?stix ; rdfs:seeAlso ?page ; kb:version ?v }} }}""",
        {"t": __import__("pyoxigraph").NamedNode(ATTACK["T1059.001"])},
    )
    assert len(rows) == 1
    assert rows[0]["label"].value == "PowerShell"
    assert rows[0]["stix"].value == "attack-pattern--970a3432-3237-47ad-bcca-7d8cbb217736"
    assert rows[0]["page"].value == "https://attack.mitre.org/techniques/T1059/001"
    for iri in ("TA0002", "M1036", "G0007", "S0002", "C0001", "DC0001", "DET0001", "AN0001"):
        assert store.ask(f"ASK {{ GRAPH <{graph}> {{ <{ATTACK[iri]}> a ?c ; kb:attackId ?id }} }}"), iri
    # pre-2019 mitigations share their technique's T-ID: kept apart from the technique
    assert store.ask(
        f"ASK {{ GRAPH <{graph}> {{ <{ATTACK['mitigation/T1174']}> a kb:Mitigation ; kb:deprecated true }} }}"
    )
    assert not store.ask(f"ASK {{ GRAPH <{graph}> {{ <{ATTACK['T1174']}> a kb:Mitigation }} }}")
