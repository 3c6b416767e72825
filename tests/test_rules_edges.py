"""Edge cases of the interaction rules beyond their one positive/negative fixture pair: trust
levels (lower, higher, equal, unknown), an asserted boundary crossing, an explicit ``false``,
repeated sources, and end-user data paths. Each case says whether the rule must fire on ex:focus.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyoxigraph import NamedNode

from threatgraph.analysis.engine import Engine
from threatgraph.terms import RULE

PRE = """@prefix tg: <https://w3id.org/threatgraph/ontology#> . @prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix ex: <http://example.org/test#> .
"""


def Z(a: str, b: str) -> str:
    return f"""ex:za a tg:TrustZone {a} . ex:zb a tg:TrustZone {b} .
ex:s a tg:ExternalEntity ; tg:inZone ex:za . ex:t a tg:Process ; tg:inZone ex:zb .
ex:focus a tg:DataFlow ; tg:source ex:s ; tg:target ex:t ."""
cases = [
 ("TG-STRIDE-T-002", Z("; tg:trustLevel 0", "; tg:trustLevel 2"), True),
 ("TG-STRIDE-T-002", Z("; tg:trustLevel 2", "; tg:trustLevel 0"), False),
 ("TG-STRIDE-T-002", Z("; tg:trustLevel 1", "; tg:trustLevel 1"), False),
 ("TG-STRIDE-T-002", Z("", ""), True),
 ("TG-STRIDE-T-002", Z("; tg:trustLevel 2", ""), True),
 ("TG-STRIDE-S-001", "ex:z a tg:TrustZone . ex:s a tg:ExternalEntity ; tg:inZone ex:z . ex:t a tg:Process ; tg:inZone ex:z . ex:focus a tg:DataFlow ; tg:source ex:s ; tg:target ex:t .", False),
 ("TG-STRIDE-S-001", "ex:s a tg:ExternalEntity . ex:t a tg:Process . ex:focus a tg:DataFlow ; tg:source ex:s ; tg:target ex:t ; tg:crossesBoundary true .", True),
 ("TG-STRIDE-S-001", "ex:s a tg:ExternalEntity . ex:t a tg:Process ; tg:authenticated true . ex:focus a tg:DataFlow ; tg:source ex:s ; tg:target ex:t ; tg:crossesBoundary true .", False),
 ("TG-STRIDE-S-001", "ex:s a tg:ExternalEntity . ex:t a tg:Process . ex:focus a tg:DataFlow ; tg:source ex:s ; tg:target ex:t ; tg:crossesBoundary true ; tg:authenticated false .", True),
 ("TG-STRIDE-I-004", Z("; tg:trustLevel 1", "; tg:trustLevel 1").replace("ex:focus a tg:DataFlow ;", "ex:d tg:classification tg:Confidential . ex:focus a tg:DataFlow ; tg:carries ex:d ;"), False),
 ("TG-STRIDE-I-004", Z("; tg:trustLevel 3", "; tg:trustLevel 1").replace("ex:focus a tg:DataFlow ;", "ex:d tg:classification tg:Confidential . ex:focus a tg:DataFlow ; tg:carries ex:d ;"), True),
 ("TG-STRIDE-I-004", Z("; tg:trustLevel 3", "; tg:trustLevel 1").replace("ex:focus a tg:DataFlow ;", "ex:d tg:classification tg:Internal . ex:focus a tg:DataFlow ; tg:carries ex:d ;"), False),
 ("TG-LINDDUN-L-001", """ex:d tg:classification tg:Personal . ex:a a tg:Process . ex:focus a tg:Process .
   ex:f1 a tg:DataFlow ; tg:source ex:a ; tg:target ex:focus ; tg:carries ex:d . ex:f2 a tg:DataFlow ; tg:source ex:a ; tg:target ex:focus ; tg:carries ex:d .""", False),
 ("TG-LINDDUN-U-001", """ex:d tg:classification tg:Personal . ex:u a tgml:EndUser . ex:p a tg:Process . ex:q a tg:Process . ex:v a tgml:LLMProvider .
   ex:f1 a tg:DataFlow ; tg:source ex:u ; tg:target ex:p ; tg:carries ex:d . ex:focus a tg:DataFlow ; tg:source ex:q ; tg:target ex:v ; tg:carries ex:d .""", False),
 ("TG-LINDDUN-U-001", """ex:d tg:classification tg:Personal . ex:u a tgml:EndUser . ex:p a tg:Process . ex:v a tgml:LLMProvider .
   ex:f1 a tg:DataFlow ; tg:source ex:u ; tg:target ex:p ; tg:carries ex:d . ex:focus a tg:DataFlow ; tg:source ex:p ; tg:target ex:v ; tg:carries ex:d .""", True),
 ("TG-LINDDUN-U-001", """ex:d tg:classification tg:Personal . ex:u a tgml:EndUser . ex:p a tg:Process .
   ex:f1 a tg:DataFlow ; tg:source ex:u ; tg:target ex:p ; tg:carries ex:d . ex:focus a tg:DataFlow ; tg:source ex:p ; tg:target ex:u ; tg:carries ex:d .""", False),
 ("TG-LINDDUN-I-001", """ex:m a tgml:ModelArtifact ; tgml:trainedOnPersonalData true . ex:focus a tgml:LLMApplication ; tg:publiclyExposed true ; tgml:usesModel ex:m .""", True),
 ("TG-LINDDUN-I-001", """ex:m a tgml:ModelArtifact ; tgml:trainedOnPersonalData false . ex:focus a tgml:LLMApplication ; tg:publiclyExposed true ; tgml:usesModel ex:m .""", False),
 ("TG-STRIDE-E-003", """ex:focus a tgml:LLMAgent ; tg:publiclyExposed true .""", True),
 ("TG-STRIDE-T-006", """ex:m a tgml:PretrainedModel ; tgml:modelOrigin tgml:PublicHubOrigin . ex:p a tg:Process . ex:focus a tg:DataFlow ; tg:source ex:m ; tg:target ex:p .""", True),
 ("TG-STRIDE-T-006", """ex:m a tgml:PretrainedModel ; tgml:modelOrigin tgml:VendorOrigin . ex:p a tg:Process . ex:focus a tg:DataFlow ; tg:source ex:m ; tg:target ex:p .""", False),
]


@pytest.mark.parametrize(("rid", "body", "want"), cases, ids=[f"{c[0]}-{i}" for i, c in enumerate(cases)])
def test_edge_case(tmp_path: Path, rid: str, body: str, want: bool) -> None:
    model = tmp_path / "m.ttl"
    model.write_text(PRE + body, encoding="utf-8")
    eng = Engine()
    eng.analyze([model])
    rows = eng.store.select(
        "SELECT ?f WHERE { GRAPH <https://w3id.org/threatgraph/graph/findings> "
        "{ ?f tg:byRule ?r ; tg:focus <http://example.org/test#focus> } }",
        {"r": NamedNode(RULE + rid)},
    )
    assert bool(rows) is want
