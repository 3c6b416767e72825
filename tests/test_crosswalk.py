"""The crosswalk to peer tools' threat libraries (issue 13), checked against the peers' real catalogues.

The expected peer ids are read from the sources themselves, not from ``ontology/crosswalk/peers.ttl``:
- MS TMT: every threat type of the SDL TM Knowledge Base (Core) template, extracted from ``default.tb7``
  into ``../shared/formats/mtmt/sdl-core-4.1.0.11.threat-types.json`` (47);
- Threagile: every built-in risk rule id (``BUILTIN_STRIDE``, itself checked against Threagile's Go source
  in tests/test_threagile_rules.py) (42);
- OWASP pytm: every SID of ``pytm/threatlib/threats.json`` in the installed pytm package (114).
Every one must be covered by a rule's ``covers:`` header or explained (``tg:notCoveredBecause``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from threatgraph.analysis.crosswalk import (
    Crosswalk,
    PeerThreat,
    build_crosswalk,
    crosswalk_markdown,
    load_peers,
)
from threatgraph.analysis.ontology import load_ontology
from threatgraph.analysis.rules import Rule, load_rules, parse_rule, rule_files
from threatgraph.cli import main
from threatgraph.interchange.threagile import BUILTIN_STRIDE
from threatgraph.resources import shared_data_dir

DOC = Path(__file__).resolve().parent.parent / "docs" / "crosswalk.md"


def _formats_dir() -> Path:
    d = shared_data_dir()
    cands = [d.parent / "formats"] if d is not None else []
    cands.append(Path(__file__).resolve().parents[2] / "shared" / "formats")
    for c in cands:
        if (c / "mtmt").is_dir():
            return c
    pytest.fail("the interchange formats are missing: ../shared/formats (set THREATGRAPH_SHARED_DATA)")


def _tmt_ids() -> set[str]:
    doc = json.loads((_formats_dir() / "mtmt" / "sdl-core-4.1.0.11.threat-types.json").read_text(encoding="utf-8"))
    return {t["id"] for t in doc["threat_types"]}


def _pytm_ids() -> set[str]:
    text = resources.files("pytm").joinpath("threatlib", "threats.json").read_text(encoding="utf-8")
    return {t["SID"] for t in json.loads(text)}


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    onto = load_ontology()
    return load_rules(rule_files(), known_terms=set(onto.terms), categories=set(onto.categories))


@pytest.fixture(scope="module")
def crosswalk(rules: list[Rule]) -> Crosswalk:
    return build_crosswalk(rules, load_peers())


def test_real_catalogues_have_the_expected_sizes() -> None:
    # the sizes the issue names; guards against reading the wrong file or an empty one
    assert len(_tmt_ids()) == 47
    assert len(BUILTIN_STRIDE) == 42
    assert len(_pytm_ids()) >= 100


@pytest.mark.parametrize("tool", ["TMT", "Threagile", "pytm"])
def test_catalogue_lists_exactly_the_real_peer_threats(tool: str) -> None:
    real = {"TMT": _tmt_ids, "Threagile": lambda: set(BUILTIN_STRIDE), "pytm": _pytm_ids}[tool]()
    listed = {p.id for p in load_peers() if p.tool == tool}
    assert not real - listed, f"{tool} threats missing from ontology/crosswalk/peers.ttl: {sorted(real - listed)}"
    assert not listed - real, f"{tool} ids in peers.ttl that the tool does not define: {sorted(listed - real)}"


def test_azure_template_peers_are_real_threat_types() -> None:
    """TMT-Azure lists only the Azure template threat types rules translate; each must be one of the template
    embedded in the sample Azure model, with its title and category."""
    from threatgraph.interchange.tmt import _kid, _read_template, parse_xml

    root = parse_xml((_formats_dir() / "mtmt" / "sample-azure-template.tm7").read_bytes(), "sample-azure-template.tm7")
    template = _read_template(_kid(root, "KnowledgeBase"))
    listed = [p for p in load_peers() if p.tool == "TMT-Azure"]
    assert {p.id for p in listed} == {"TH109", "TH116", "TH117"}
    for p in listed:
        title, cat = template.threats[p.id]
        assert title is not None and title.strip() == p.title
        assert cat is not None and template.categories[cat].replace("Privileges", "Privilege") == p.category


def test_every_peer_threat_is_covered_or_explained(crosswalk: Crosswalk) -> None:
    assert crosswalk.problems() == []
    for tool, c in crosswalk.counts().items():
        assert c["missing"] == 0 and c["covered"] + c["explained"] == c["total"] > 0, tool


def test_every_covered_peer_threat_names_an_existing_rule(crosswalk: Crosswalk, rules: list[Rule]) -> None:
    ids = {r.id for r in rules}
    covered = [e for e in crosswalk.entries if e.status == "covered"]
    assert covered
    assert all(set(e.rules) <= ids for e in covered)


def test_problems_are_reported_for_missing_stale_and_unknown_ids() -> None:
    rule = parse_rule(
        "# id: X-1\n# title: t\n# framework: STRIDE\n# category: stride:Spoofing\n# severity: low\n# focus: element\n"
        "# source: s\n# explanation: e\n# remediation: r\n# covers: TMT:S1 pytm:NOPE\nSELECT ?focus WHERE { ?focus a tg:Process }",
        "X-1.rq",
    )
    peers = [
        PeerThreat("TMT", "S1", "Spoofing", "Spoofing", "stale reason"),
        PeerThreat("TMT", "S2", "Spoofing 2", "Spoofing", ""),
        PeerThreat("TMT", "S3", "Spoofing 3", "Spoofing", "needs a fact"),
    ]
    cw = build_crosswalk([rule], peers)
    assert [e.status for e in cw.entries] == ["covered", "missing", "explained"]
    problems = cw.problems()
    assert len(problems) == 3
    assert any("TMT:S2" in p and "neither covered" in p for p in problems)
    assert any("TMT:S1" in p and "still has tg:notCoveredBecause" in p for p in problems)
    assert any("pytm:NOPE" in p for p in problems)


def test_crosswalk_doc_is_generated(crosswalk: Crosswalk) -> None:
    assert DOC.read_text(encoding="utf-8") == crosswalk_markdown(crosswalk), (
        "docs/crosswalk.md is stale: run `threatgraph rules --crosswalk --format markdown > docs/crosswalk.md`"
    )


def test_cli_crosswalk_json(capsys: pytest.CaptureFixture[str], crosswalk: Crosswalk) -> None:
    assert main(["rules", "--crosswalk", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_key = {f"{p['tool']}:{p['id']}": p for p in doc["peers"]}
    assert len(by_key) == len(crosswalk.entries)
    assert by_key["TMT:I6"]["status"] == "covered" and "TG-STRIDE-I-001" in by_key["TMT:I6"]["rules"]
    assert by_key["pytm:HA02"]["status"] == "explained" and by_key["pytm:HA02"]["reason"]
    assert doc["problems"] == []


def test_remediation_is_required() -> None:
    from threatgraph.errors import RuleError

    with pytest.raises(RuleError, match="remediation"):
        parse_rule(
            "# id: X-1\n# title: t\n# framework: STRIDE\n# category: stride:Spoofing\n# severity: low\n"
            "# focus: element\n# source: s\n# explanation: e\nSELECT ?focus WHERE { ?focus a tg:Process }",
            "X-1.rq",
        )


def test_every_shipped_rule_has_remediation(rules: list[Rule]) -> None:
    assert all(r.remediation.strip() for r in rules)
