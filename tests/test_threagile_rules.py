"""The STRIDE table of Threagile's built-in risk rules (``BUILTIN_STRIDE``) and its use for risk tracking.

The expected rule ids and categories below are an outside oracle, transcribed by hand from Threagile's
source (github.com/Threagile/threagile): the rule list ``GetBuiltInRiskRules`` in ``pkg/risks/risks.go``
(commit 56d92ace) and each rule's ``Category()`` (``ID`` and ``STRIDE``) in
``pkg/risks/builtin/<rule_name>_rule.go`` (commits 38635e4f, 5e4967db, 1e226edc, 23a2fca7, 170d2fd5,
2692157f, 636f5fe6); the same values are in the first layout ``risks/built-in/<rule-name>/<rule-name>-rule.go``
(commits 0233bc4b, 01932af9, 0976d632, 17ceeb48, 2f794e47, 2e320fdb, 19555a17, 28e6264b).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
import yaml
from rdflib.namespace import RDFS

from threatgraph.interchange import convert_file
from threatgraph.interchange.threagile import BUILTIN_STRIDE
from threatgraph.resources import shared_data_dir
from threatgraph.terms import STRIDE, TG

U = rdflib.URIRef

# Rule id -> Threagile STRIDE constant, as written in the Go source (types.Spoofing, types.Tampering, ...).
THREAGILE_SOURCE: dict[str, str] = {
    "accidental-secret-leak": "InformationDisclosure",
    "code-backdooring": "Tampering",
    "container-baseimage-backdooring": "Tampering",
    "container-platform-escape": "ElevationOfPrivilege",
    "cross-site-request-forgery": "Spoofing",
    "cross-site-scripting": "Tampering",
    "dos-risky-access-across-trust-boundary": "DenialOfService",
    "incomplete-model": "InformationDisclosure",
    "ldap-injection": "Tampering",
    "missing-authentication": "ElevationOfPrivilege",
    "missing-authentication-second-factor": "ElevationOfPrivilege",
    "missing-build-infrastructure": "Tampering",
    "missing-cloud-hardening": "Tampering",
    "missing-file-validation": "Spoofing",
    "missing-hardening": "Tampering",
    "missing-identity-propagation": "ElevationOfPrivilege",
    "missing-identity-provider-isolation": "ElevationOfPrivilege",
    "missing-identity-store": "Spoofing",
    "missing-network-segmentation": "ElevationOfPrivilege",
    "missing-vault": "InformationDisclosure",
    "missing-vault-isolation": "ElevationOfPrivilege",
    "missing-waf": "Tampering",
    "mixed-targets-on-shared-runtime": "ElevationOfPrivilege",
    "path-traversal": "InformationDisclosure",
    "push-instead-of-pull-deployment": "Tampering",
    "search-query-injection": "Tampering",
    "server-side-request-forgery": "InformationDisclosure",
    "service-registry-poisoning": "Spoofing",
    "sql-nosql-injection": "Tampering",
    "unchecked-deployment": "Tampering",
    "unencrypted-asset": "InformationDisclosure",
    "unencrypted-communication": "InformationDisclosure",
    "unguarded-access-from-internet": "ElevationOfPrivilege",
    "unguarded-direct-datastore-access": "ElevationOfPrivilege",
    "unnecessary-communication-link": "ElevationOfPrivilege",
    "unnecessary-data-asset": "ElevationOfPrivilege",
    "unnecessary-data-transfer": "ElevationOfPrivilege",
    "unnecessary-technical-asset": "ElevationOfPrivilege",
    "untrusted-deserialization": "Tampering",
    "wrong-communication-link-content": "InformationDisclosure",
    "wrong-trust-boundary-content": "ElevationOfPrivilege",
    "xml-external-entity": "InformationDisclosure",
}

# Threagile's STRIDE constants and their YAML words (the `stride` values of individual risk categories).
GO_TO_WORD = {
    "Spoofing": "spoofing",
    "Tampering": "tampering",
    "Repudiation": "repudiation",
    "InformationDisclosure": "information-disclosure",
    "DenialOfService": "denial-of-service",
    "ElevationOfPrivilege": "elevation-of-privilege",
}


def test_table_has_exactly_threagiles_builtin_rules() -> None:
    assert len(THREAGILE_SOURCE) == 42
    assert sorted(BUILTIN_STRIDE) == sorted(THREAGILE_SOURCE)


def test_every_category_equals_the_source() -> None:
    wrong = {r: (BUILTIN_STRIDE[r], GO_TO_WORD[c]) for r, c in THREAGILE_SOURCE.items() if BUILTIN_STRIDE.get(r) != GO_TO_WORD[c]}
    assert wrong == {}


@pytest.mark.parametrize(
    ("rule", "word"),
    [
        ("missing-file-validation", "spoofing"),
        ("service-registry-poisoning", "spoofing"),
        ("push-instead-of-pull-deployment", "tampering"),
        ("dos-risky-access-across-trust-boundary", "denial-of-service"),
        ("incomplete-model", "information-disclosure"),
        ("wrong-communication-link-content", "information-disclosure"),
        ("unnecessary-data-asset", "elevation-of-privilege"),
        ("mixed-targets-on-shared-runtime", "elevation-of-privilege"),
    ],
)
def test_spot_checks(rule: str, word: str) -> None:
    assert BUILTIN_STRIDE[rule] == word


def test_every_word_is_one_the_importer_maps() -> None:
    from threatgraph.interchange.threagile import _STRIDE

    assert set(BUILTIN_STRIDE.values()) <= set(_STRIDE)


# ---------------------------------------------------------------------------------------------
# Import: risk tracking of built-in rules gets their category; an unknown rule is reported
# ---------------------------------------------------------------------------------------------
def _asset(aid: str, kind: str, links: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": aid, "description": aid, "type": kind, "usage": "business", "used_as_client_by_human": False,
        "out_of_scope": False, "size": "service", "technology": "web-service-rest", "internet": False,
        "machine": "container", "encryption": "none", "owner": "team", "confidentiality": "confidential",
        "integrity": "critical", "availability": "important", "multi_tenant": False, "redundant": False,
        "custom_developed_parts": True, "data_assets_processed": [], "data_assets_stored": [],
        "data_formats_accepted": ["json"], "communication_links": links or {},
    }


def _tracked(status: str, justification: str | None = None) -> dict[str, Any]:
    return {"status": status, "justification": justification, "ticket": None, "date": None, "checked_by": None}


def _model() -> dict[str, Any]:
    link = {"target": "store", "description": "queries", "protocol": "jdbc", "authentication": "none",
            "authorization": "none", "vpn": False, "ip_filtered": False, "readonly": False, "usage": "business",
            "data_assets_sent": [], "data_assets_received": []}
    return {
        "threagile_version": "1.0.0",
        "title": "Rule table check",
        "author": {"name": "tests"},
        "business_criticality": "important",
        "tags_available": [],
        "data_assets": {},
        "technical_assets": {"Orders API": _asset("api", "process", {"Query orders": link}),
                             "Orders DB": _asset("store", "datastore")},
        "shared_runtimes": {},
        "risk_tracking": {
            # a link risk (Tampering) and an asset risk (Spoofing), of rules the old table lacked / had
            "sql-nosql-injection@api@store@api>query-orders": _tracked("in-progress"),
            "service-registry-poisoning@store": _tracked("accepted", "no registry in production"),
            "no-such-rule@api": _tracked("unchecked"),
        },
    }


def _schema_errors(doc: Any) -> list[str]:
    import jsonschema

    d = shared_data_dir()
    cands = [d.parent / "formats"] if d is not None else []
    cands.append(Path(__file__).resolve().parents[2] / "shared" / "formats")
    schema_dir = next((c for c in cands if (c / "threagile.schema.json").is_file()), None)
    if schema_dir is None:
        pytest.fail("the interchange schemas are missing: ../shared/formats")
    schema = json.loads((schema_dir / "threagile.schema.json").read_text(encoding="utf-8"))
    return [f"{e.json_path}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]


@pytest.mark.shared
def test_test_model_conforms_to_the_threagile_schema() -> None:
    assert _schema_errors(json.loads(json.dumps(_model()))) == []


def test_risk_tracking_gets_the_builtin_rule_category(tmp_path: Path) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text(yaml.safe_dump(_model(), sort_keys=False), encoding="utf-8")
    r = convert_file(p)
    assert r is not None and r.format == "threagile"
    g = r.graph

    def element(label: str) -> rdflib.term.Node:
        (s,) = list(g.subjects(RDFS.label, rdflib.Literal(label)))
        return s

    def threats(el: rdflib.term.Node) -> dict[str, set[str]]:
        return {str(g.value(t, RDFS.label)): {str(c) for c in g.objects(t, U(TG.category))}
                for t in g.objects(el, U(TG.declaredThreat))}

    assert threats(element("Query orders")) == {"sql-nosql-injection": {str(STRIDE.Tampering)}}
    assert threats(element("Orders DB")) == {"service-registry-poisoning": {str(STRIDE.Spoofing)}}
    # unknown rule: still imported on its asset, without a category, and reported (no crash)
    assert threats(element("Orders API")) == {"no-such-rule": set()}
    notes = [n for n in r.unmapped if n.startswith("threagile /risk_tracking/*:")]
    assert len(notes) == 1 and "'no-such-rule'" in notes[0] and "without a STRIDE category" in notes[0]


def test_known_rules_give_no_report(tmp_path: Path) -> None:
    doc = _model()
    del doc["risk_tracking"]["no-such-rule@api"]
    p = tmp_path / "known.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    r = convert_file(p)
    assert r is not None
    assert not [n for n in r.unmapped if "/risk_tracking" in n]
