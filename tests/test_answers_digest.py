"""Same answers (issue 14): what an analysis answers does not change when the finding graph's shape does.

The answers of an analysis with ATT&CK Enterprise 18.1, ATLAS 5.6.0 and D3FEND 1.2.0 loaded — findings
(rule, focus, categories, severity, explanation, evidence), the techniques of each finding (mapping,
asset types, release, replacement, exposure and reducing facts, control status, implemented
mitigations), the knowledge joined to each technique (mitigations, D3FEND countermeasures with their
inference, detections, maturity), risk (likelihood, impact, score, level, every factor) and attack
paths — are read back through :func:`threatgraph.analysis.findings.read_findings` and
:func:`threatgraph.analysis.paths.read_paths` (the interface every renderer uses), put in a canonical
order and hashed per part. The recorded digests were computed with the code of commit dbad625, whose
JSON reports of these models were byte-identical to those of 50cc807 (before this round).

A deliberate change of the answers (new rules, new mappings) updates the digests in the same commit,
saying why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from threatgraph.analysis.engine import Analysis, labels_of
from threatgraph.analysis.findings import read_findings
from threatgraph.analysis.paths import read_paths
from threatgraph.analysis.pipeline import analyze

pytestmark = pytest.mark.shared

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "data" / "examples"


def answers(analysis: Analysis) -> dict[str, tuple[int, str]]:
    """Rows and a hash of the sorted rows of each part of the answers."""
    labels = labels_of(analysis.store)
    findings = read_findings(analysis.store, labels)
    parts: dict[str, list[str]] = {"findings": [], "techniques": [], "knowledge": [], "risk": [], "paths": []}

    def row(*values: Any) -> str:
        return json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)

    seen_tech: set[str] = set()
    for f in findings:
        parts["findings"].append(row(f.iri, f.rule_id, f.focus, f.categories, f.severity, f.explanation,
                                     sorted(f.evidence), f.control_status, sorted(f.covered_by)))
        parts["risk"].append(row(f.iri, f.likelihood, f.impact, f.risk_score, f.risk_level,
                                 sorted(row(*dataclasses.astuple(x)) for x in f.risk_factors)))
        for t in f.techniques:
            parts["techniques"].append(row(f.iri, t.iri, t.mapping, t.asset_types, t.release, t.replaces,
                                           t.exposures, t.reduced_by, t.status, t.implemented))
            if t.iri not in seen_tech:
                seen_tech.add(t.iri)
                parts["knowledge"].append(row(t.iri, t.label, t.mitigations, t.countermeasures, t.detections,
                                              t.maturity, t.justification, t.sources))
    for p in read_paths(analysis.store, labels, findings):
        parts["paths"].append(row(*dataclasses.astuple(p)))
    out = {}
    for name, lines in parts.items():
        lines.sort()
        out[name] = (len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16])
    return out


# Findings and risk re-recorded when five Threagile counterpart rules were added (issue 13, Threagile
# fidelity: TG-STRIDE-T-030 missing hardening, E-030 missing authentication, I-030 unencrypted
# communication without a boundary, T-031 query injection over database protocols, I-031 SSRF over web
# protocols): rag 146 -> 150, tabular 197 -> 200, health 141 -> 146, generated 3480 -> 3678 findings; the
# techniques, knowledge and paths parts are unchanged. Then findings, techniques and risk re-recorded for the
# second batch (T-032 unchecked deployment, T-033 container base image, T-034 push deployment, D-030, E-031
# second factor, T-035 missing WAF, E-032 unnecessary data transfer, I-032 missing vault, T-036 missing build
# infrastructure, S-030 missing identity store; T-016 no longer needs an unauthenticated flow from an exposed
# element): E-032 fires on the examples (rag 150 -> 152, tabular 200 -> 202, health 146 -> 150), its
# technique (T1005) adds applications; the generated model is unchanged (its elements state no processed data).
# Third batch (E-033 unguarded access from the Internet, E-034 missing identity propagation, S-031 service
# registry poisoning): the examples are unchanged, the generated model gets 23 more findings (3678 -> 3701,
# E-033 on flows from exposed elements into critical ones). Recorded again on the merge with main's rules
# aligned with TMT (which had rag 193, tabular 257, health 174, generated 4320 findings): rag 199, tabular
# 262, health 183, generated 4541 findings; techniques as with the Threagile rules alone (486, 552, 309).
# Techniques, knowledge and paths re-recorded (findings and risk unchanged) for three derived ML roles and
# their ATLAS mappings (issue 13, the fidelity bench's ML recall): tgml:LLMResponseRenderer (AML.T0077),
# tgml:RAGIngestionPipeline (AML.T0070), tgml:TrainingDataWriter (AML.T0020), with the justifications of
# those three mappings reworded (the knowledge part hashes them): rag 486 -> 487 technique rows (RAG
# poisoning on the ingestion job), tabular 552 -> 553 and health 309 -> 310 (training data poisoning on the
# data preparation job that writes the datasets), generated 13,386 -> 13,436; attack paths list the
# techniques of their hops, so their hashes change with them (same number of paths). Then AML.T0057 (LLM
# Data Leakage) also targets tgml:VectorStore, a connected data source as the corpus is, and its justification
# says so: rag 487 -> 488 technique rows (the vector store), knowledge hashes of rag, tabular and generated.
# Then tgml:PredictionConsumer (a process acting on a non-LLM model's predictions) and AML.T0015 Evade AI
# Model on it ("evade a downstream task where AI is utilized"), its justification reworded: health 310 -> 311
# technique rows and its risk part (a finding with the technique gets its risk from it) and paths; knowledge
# hashes of every model.
# Then hosted model providers, code execution tools and the TMT Azure template's API / subscription threats
# (issue 13): rules TG-STRIDE-I-036, D-031 and T-040 fire on the rag example's hosted LLM provider (200 -> 203
# findings, with their risk), whose ATLAS mappings AML.T0057, AML.T0034, AML.T0034.000 and AML.T0010 now also
# target tgml:LLMProvider (AML.T0034s also the derived tgml:HostedModelClient, the backend that calls it): 488 ->
# 503 technique rows; the justifications of T0034, T0057, T0010 and T0050 reworded, so the knowledge hashes of
# every model change; tabular, health and the generated model have no provider: findings and techniques unchanged.
RECORDED: dict[str, dict[str, tuple[int, str]]] = {
    "rag-assistant": {"findings": (245, "8bf672b42e816b56"), "techniques": (636, "1279cbf4a4eb6db0"), "knowledge": (155, "4e8a7c4d470fff5f"), "risk": (245, "ce7418ace7b349cc"), "paths": (16, "59935d3d4ef12ef2")},
    "tabular-platform": {"findings": (319, "49b3c8ca80d53dd0"), "techniques": (702, "c0f57975d5bb413b"), "knowledge": (138, "0eb083aff9c479f0"), "risk": (319, "b55c303fecac84fa"), "paths": (27, "51bf23ede34ab902")},
    "health-risk": {"findings": (225, "a38524f3dcc6c8d7"), "techniques": (384, "e85a69147a7e4e52"), "knowledge": (114, "b0b5e79f2dc47e09"), "risk": (225, "f1262c044afdd68b"), "paths": (24, "f233b5c4b63d63fb")},
    "generated-1k": {"findings": (5469, "f2ed04b96f93d3e0"), "techniques": (17770, "66d967875b6aa93a"), "knowledge": (112, "8d3b4f9a7bd4c785"), "risk": (5469, "74bca7436c97223c"), "paths": (250, "3ed694960e9c8d04")},
}
"""Model name → part → (rows, hash). Recorded at commit dbad625 (see the module docstring) and unchanged
through the lean finding graph (applications per element and technique, knowledge joined from
graph/view); then deliberately re-recorded when the per-element baseline became one finding per element
listing its categories, LINDDUN's only where personal data is handled, and baseline findings no technique
realises lost their risk (issues 13, 15): rag 507 -> 114 findings, generated 1k 10,210 -> 2,610; the
knowledge joined to each technique and the attack paths are unchanged. Re-recorded again when 19 rules
were added for the peer-tool crosswalk (issue 13): rag 114 -> 138 findings, tabular 144 -> 179, health
107 -> 132, generated 1k 2,610 -> 3,180, with their techniques and risk; health-risk and generated 1k
attack paths change because new findings lie on their hops. Re-recorded (findings, risk) when the rules
were aligned with the Microsoft Threat Modeling Tool SDL template's generation filters (issue 13): rules
that cover a TMT threat raise its STRIDE category too (S-001/S-003 +E for E5, T-002 +E for E6/E7, E-005 +I
for I2, R-002 +T for T5, S-004 +E, T-014 +T), S-002 (S7/S7.1) and R-001 (R6) lost conditions TMT does not
have, and new flow rules S-005 (S8), R-004 (R7/R8), D-004 (D3/D4/D5), D-005 (D2), I-014 (I23), E-007 (E5),
E-008 (the Azure template's store access threats): rag 146 -> 193 findings, tabular 197 -> 257, health
141 -> 174, generated 1k 3,480 -> 4,320; techniques, knowledge and paths unchanged. Re-recorded (findings,
risk) when the rules honoured the TMT properties that answer a threat (issue 13, precision on threats people
reject): rag 199 -> 200 (new TG-STRIDE-T-039, second-order injection: the agent orchestrator reads back from
its long-term memory what it stored from the LLM and the filtered user message), health 183 -> 182 (R-004 no
longer raised on the flow into the model registry, whose records are signed: tg:artifactsSigned answers
"data store denies writing"). Then (same round): TG-STRIDE-E-005 raises information disclosure only on flows
into a data store (TMT's I2), (category bound by the query, one finding per flow), elevation of privilege on every flow
as before, so a flow into a process the model states encrypted no longer gets disclosure from a missing
authorization check; new TG-STRIDE-I-035 (TMT's I6 on unencrypted boundary flows carrying only public or
internal data): the examples keep their counts (the category of E-005 findings on flows into processes changes;
risk unchanged), generated 1k 4,541 -> 4,557 (I-035); techniques, knowledge and paths unchanged. Recorded
again on merging the TMT-property rules with the ML roles (issue 13; the two changes compose: findings and risk
from the first, techniques, knowledge and paths from the second; health-risk's risk part from both).
Re-recorded (findings, techniques, risk) for the mitigated counterpart rules (issue 13: TG-STRIDE-I-050, I-051,
T-050, R-050, D-050 raise the threat a declared protective fact such as tg:encryptedInTransit mitigates, control
status mitigated, instead of dropping it): rag 203 -> 227 findings, tabular 262 -> 302, health 182 -> 218,
generated 1k 4,557 -> 4,828, with their risk and the techniques the bridge applies to them
(rag 503 -> 508, tabular 553 -> 620, health 311 -> 354, generated 13,436 -> 13,536); knowledge and paths unchanged.
Recorded again when three rule branches merged (issue 13), their findings adding up: rules on stated controls
(E-060 on flows into elements stating no authorization: rag +3, tabular +3; T-060: generated 1k +75), process rules
reached across a trust boundary (S-042, T-041, R-041, D-041, E-041: rag +15, tabular +14, health +7, generated
+566) and the mitigated counterparts (rag +24, tabular +40, health +36, generated +271): rag 245 findings, tabular
319, health 225, generated 1k 5,469; technique rows 636, 702, 384, 17,770; knowledge and paths unchanged."""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rag-assistant", "tabular-platform", "health-risk"])
def test_example_answers_unchanged(name: str) -> None:
    got = answers(analyze([str(EX / f"{name}.ttl")], knowledge=["shared"]))
    assert got == RECORDED[name]


RECORDED_PLAIN: dict[str, dict[str, tuple[int, str]]] = {
    "rag-assistant": {"findings": (245, "2dbc023ba991b6f2"), "techniques": (636, "2194382ee8976ac2"), "knowledge": (155, "9c219b3f8e0c0789"), "risk": (245, "bbadc62ccd6c9b92"), "paths": (16, "59935d3d4ef12ef2")},
    "tabular-platform": {"findings": (319, "28240542c528df3c"), "techniques": (702, "ad6485fc9c5f95ff"), "knowledge": (138, "8486b7d82698a83a"), "risk": (319, "034a2a2c69416bb9"), "paths": (27, "51bf23ede34ab902")},
    "health-risk": {"findings": (225, "a38524f3dcc6c8d7"), "techniques": (384, "369255e3f021daa2"), "knowledge": (114, "0c65dd5017d66677"), "risk": (225, "9f56f91f37d15d35"), "paths": (24, "f233b5c4b63d63fb")},
}
"""The answers of a plain analysis (no --knowledge, no --store), recorded when techniques began to be cited
without knowledge, unresolved (issue 13: the bridge mappings applied under the same asset classes and
conditions, tg:inRelease tg:NoReleaseLoaded; before, a plain run cited no technique: 0 technique rows).
The technique rows are as many as with knowledge (486, 552, 309: the same (element, technique) pairs; none
of the mapped techniques is revoked or deprecated in ATT&CK 18.1 / ATLAS 5.6.0), their hashes differ (no
release, no mitigations, names or detections); the findings of tabular and health and the paths of all three
equal the knowledge run's (rag's findings differ in control status only: no mitigation is known without a
release, so declared controls implement none); risk differs (no technique maturity factor without a release). Re-recorded on the merge with the ML roles and
the TMT-property rules (issue 13): the plain technique rows follow the knowledge run's (488, 553, 311).
Re-recorded with the hosted-provider rules and mappings (issue 13): rag 203 findings and 503 technique rows as with
knowledge; knowledge hashes of every model (reworded justifications). Re-recorded with the mitigated counterpart
rules (issue 13): the same findings and technique rows as the knowledge run (227, 302, 218; 508, 620, 354)."""


@pytest.mark.parametrize("name", sorted(RECORDED_PLAIN))
def test_example_plain_answers_unchanged(name: str) -> None:
    got = answers(analyze([str(EX / f"{name}.ttl")]))
    assert got == RECORDED_PLAIN[name]
    assert got["techniques"][0] == RECORDED[name]["techniques"][0]  # as many technique rows as with knowledge


@pytest.mark.slow
def test_generated_model_answers_unchanged(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    try:
        from generate import generate_model  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    model = tmp_path / "m1k.ttl"
    model.write_text(generate_model(1000), encoding="utf-8")
    got = answers(analyze([str(model)], knowledge=["shared"], force=True))
    assert got == RECORDED["generated-1k"]


def test_answers_see_a_change() -> None:
    """The digest is sensitive: dropping one technique changes the techniques part."""
    a = analyze([str(EX / "health-risk.ttl")])
    before = answers(a)
    a.store.update("DELETE WHERE { GRAPH <https://w3id.org/threatgraph/graph/findings> { ?f tg:explanation ?e } }")
    assert answers(a)["findings"] != before["findings"]
