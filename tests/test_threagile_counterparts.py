"""Threagile's built-in rules and their threatgraph counterparts, on small Threagile models (issue 13).

Each case is a Threagile model written so that one built-in rule fires under its Go condition
(github.com/Threagile/threagile, pkg/risks/builtin/<rule>_rule.go, read at commits 38635e4f, 5e4967db,
2692157f) on a known asset or link, and a variant with the one fact changed that makes the condition
false. The model is imported with threatgraph's Threagile importer and analysed; the covering rule must
fire on the element Threagile would flag (the asset, or the link for link risks) with Threagile's STRIDE
category, and must not fire on the variant.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from threatgraph.cli import main as cli_main
from threatgraph.interchange.threagile import attacker_attractiveness

STRIDE = "https://w3id.org/threatgraph/stride#"


def base() -> dict[str, Any]:
    """A client, a web application, an ERP process and a database; the ERP data is strictly confidential."""
    return {
        "threagile_version": "1.0.0",
        "title": "Counterparts",
        "data_assets": {
            "Contracts": {"id": "contracts", "usage": "business", "quantity": "many",
                          "confidentiality": "strictly-confidential", "integrity": "critical", "availability": "critical"},
            "Pages": {"id": "pages", "usage": "business", "quantity": "few", "confidentiality": "public",
                      "integrity": "operational", "availability": "operational"},
        },
        "technical_assets": {
            "Client": {"id": "client", "type": "external-entity", "technology": "browser", "usage": "business",
                       "out_of_scope": False, "internet": True, "encryption": "none", "multi_tenant": False,
                       "confidentiality": "public", "integrity": "operational", "availability": "operational",
                       "data_assets_processed": ["pages"],
                       "communication_links": {"Web": {"target": "web", "protocol": "https", "authentication": "session-id",
                                                       "authorization": "enduser-identity-propagation",
                                                       "data_assets_sent": ["pages"]}}},
            "Web": {"id": "web", "type": "process", "technology": "web-application", "usage": "business",
                    "out_of_scope": False, "internet": True, "encryption": "none", "multi_tenant": False,
                    "confidentiality": "internal", "integrity": "operational", "availability": "operational",
                    "data_assets_processed": ["pages"],
                    "communication_links": {"ERP calls": {"target": "erp", "protocol": "https", "authentication": "token",
                                                          "authorization": "technical-user", "data_assets_sent": ["pages"]}}},
            "ERP": {"id": "erp", "type": "process", "technology": "erp", "usage": "business", "out_of_scope": False,
                    "internet": False, "encryption": "none", "multi_tenant": False,
                    "confidentiality": "confidential", "integrity": "critical", "availability": "critical",
                    "data_assets_processed": ["contracts"],
                    "communication_links": {"DB traffic": {"target": "db", "protocol": "jdbc-encrypted",
                                                           "authentication": "credentials", "authorization": "technical-user",
                                                           "data_assets_sent": ["contracts"]}}},
            "DB": {"id": "db", "type": "datastore", "technology": "database", "usage": "business", "out_of_scope": False,
                   "internet": False, "encryption": "none", "multi_tenant": False,
                   "confidentiality": "strictly-confidential", "integrity": "critical", "availability": "critical",
                   "data_assets_processed": ["contracts"], "data_assets_stored": ["contracts"]},
        },
        "trust_boundaries": {
            "DC": {"id": "dc", "type": "network-on-prem", "technical_assets_inside": ["web", "erp", "db"]},
        },
    }


def link(doc: dict[str, Any], asset: str, title: str) -> dict[str, Any]:
    for t in doc["technical_assets"].values():
        if t["id"] == asset:
            return dict(t["communication_links"][title])
    raise KeyError(asset)


def set_link(doc: dict[str, Any], asset: str, title: str, **values: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for t in out["technical_assets"].values():
        if t["id"] == asset:
            t["communication_links"][title].update(values)
    return out


def set_asset(doc: dict[str, Any], asset: str, **values: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for t in out["technical_assets"].values():
        if t["id"] == asset:
            t.update(values)
    return out


def fired(doc: dict[str, Any], tmp_path: Path) -> set[tuple[str, str, str]]:
    """(rule id, element IRI suffix after 'asset:' or 'link:', STRIDE local name) of every finding."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "model.yaml"
    src.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    ttl, out = tmp_path / "model.ttl", tmp_path / "findings.json"
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["import-model", "-q", "-o", str(ttl), str(src)]) == 0
        assert cli_main(["analyze", str(ttl), "--force", "-f", "json", "-o", str(out)]) in (0, 1)
    res: set[tuple[str, str, str]] = set()
    for f in json.loads(out.read_text(encoding="utf-8"))["findings"]:
        iri = str(f["element"]["iri"])
        el = iri.split(":asset:")[-1] if ":asset:" in iri else iri.split(":link:")[-1].replace("%20", " ")
        for c in f.get("categories", []):
            if str(c["iri"]).startswith(STRIDE):
                res.add((str(f["rule"]), el, str(c["iri"])[len(STRIDE):]))
    return res


def made_without_link_auth(doc: dict[str, Any]) -> dict[str, Any]:
    return set_link(doc, "web", "ERP calls", authentication="none")


# (Threagile rule, covering rule, element Threagile flags, STRIDE, positive model, negative model)
CASES: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]] = [
    # missing-hardening: RAA >= 55, or >= 40 for data stores and high-value targets; out of scope: never
    ("missing-hardening", "TG-STRIDE-T-030", "db", "Tampering", base(), set_asset(base(), "db", out_of_scope=True)),
    # missing-authentication: link without authentication into an asset processing confidential+ data
    ("missing-authentication", "TG-STRIDE-E-030", "web:ERP calls", "ElevationOfPrivilege",
     made_without_link_auth(base()), base()),
    # unencrypted-communication: unencrypted network link with authentication data or sensitive data, no boundary needed
    ("unencrypted-communication", "TG-STRIDE-I-030", "erp:DB traffic", "InformationDisclosure",
     set_link(base(), "erp", "DB traffic", protocol="jdbc"), base()),
    # unencrypted-asset: stored confidential/critical data, encryption none
    ("unencrypted-asset", "TG-STRIDE-I-003", "db", "InformationDisclosure", base(),
     set_asset(base(), "db", encryption="transparent")),
    # sql-nosql-injection: database access protocol into a query-injectable technology (flagged at the caller's link)
    ("sql-nosql-injection", "TG-STRIDE-T-031", "erp:DB traffic", "Tampering", base(),
     set_link(base(), "erp", "DB traffic", protocol="nfs")),
    # server-side-request-forgery: an in-scope non-client asset with an outgoing web-protocol link
    ("server-side-request-forgery", "TG-STRIDE-I-031", "web:ERP calls", "InformationDisclosure", base(),
     set_asset(base(), "web", out_of_scope=True)),
    # cross-site-scripting: an in-scope web application
    ("cross-site-scripting", "TG-STRIDE-T-011", "web", "Tampering", base(),
     set_asset(base(), "web", technology="batch-processing")),
    # untrusted-deserialization: accepts the serialization format
    ("untrusted-deserialization", "TG-STRIDE-T-015", "erp", "Tampering",
     set_asset(base(), "erp", data_formats_accepted=["serialization"]), set_asset(base(), "erp", data_formats_accepted=["json"])),
    # xml-external-entity: accepts XML
    ("xml-external-entity", "TG-STRIDE-T-014", "erp", "InformationDisclosure",
     set_asset(base(), "erp", data_formats_accepted=["xml"]), set_asset(base(), "erp", data_formats_accepted=["json"])),
    # container-platform-escape: technology container-platform
    ("container-platform-escape", "TG-STRIDE-E-006", "erp", "ElevationOfPrivilege",
     set_asset(base(), "erp", technology="container-platform"), base()),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_counterpart_fires_where_threagile_does(case: tuple[str, str, str, str, dict[str, Any], dict[str, Any]],
                                                tmp_path: Path) -> None:
    _rule, ours, element, stride, positive, negative = case
    assert (ours, element, stride) in fired(positive, tmp_path / "pos")
    assert not any(r == ours and e == element for r, e, _ in fired(negative, tmp_path / "neg"))


def test_attacker_attractiveness_follows_threagile() -> None:
    raa = attacker_attractiveness(base())
    # the database (strictly confidential, stored twice, data-store factor 2) is the most attractive asset,
    # the public client the least (percent, at least 1)
    assert raa["db"] == 100.0 and raa["client"] == 1.0
    assert raa["db"] > raa["erp"] > raa["web"]
    # out of scope: no attractiveness of its own (the minimum)
    assert attacker_attractiveness(set_asset(base(), "db", out_of_scope=True))["db"] == 1.0
    # a load balancer divides its score by 5.5
    lb = set_asset(base(), "web", technology="load-balancer")
    assert attacker_attractiveness(lb)["web"] < raa["web"]


def devops(doc: dict[str, Any]) -> dict[str, Any]:
    """The base model with a build server that deploys into the ERP system over a DevOps link."""
    out = copy.deepcopy(doc)
    out["data_assets"]["Code"] = {"id": "code", "usage": "devops", "quantity": "few", "confidentiality": "confidential",
                                  "integrity": "critical", "availability": "important"}
    out["technical_assets"]["Jenkins"] = {
        "id": "jenkins", "type": "process", "technology": "build-pipeline", "usage": "devops", "out_of_scope": False,
        "internet": False, "encryption": "none", "multi_tenant": False, "confidentiality": "confidential",
        "integrity": "critical", "availability": "operational", "data_assets_processed": ["code"],
        "communication_links": {"Deployment": {"target": "erp", "protocol": "ssh", "authentication": "client-certificate",
                                               "authorization": "technical-user", "usage": "devops", "readonly": False,
                                               "vpn": False, "data_assets_sent": ["code"]}}}
    return out


def human_to_web() -> dict[str, Any]:
    """The base model where a person's client sends contracts to the web application, which processes them."""
    doc = set_asset(base(), "client", used_as_client_by_human=True, data_assets_processed=["pages", "contracts"])
    return set_asset(doc, "web", data_assets_processed=["pages", "contracts"])


CASES_2: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]] = [
    # unchecked-deployment: every development-relevant asset
    ("unchecked-deployment", "TG-STRIDE-T-032", "jenkins", "Tampering", devops(base()),
     set_asset(devops(base()), "jenkins", technology="batch-processing")),
    # container-baseimage-backdooring: machine container, in scope
    ("container-baseimage-backdooring", "TG-STRIDE-T-033", "erp", "Tampering",
     set_asset(base(), "erp", machine="container"), set_asset(base(), "erp", machine="virtual")),
    # push-instead-of-pull-deployment: a build pipeline's DevOps link that is not read-only into a runtime asset
    ("push-instead-of-pull-deployment", "TG-STRIDE-T-034", "jenkins:Deployment", "Tampering", devops(base()),
     set_link(devops(base()), "jenkins", "Deployment", readonly=True)),
    # dos-risky-access-across-trust-boundary: availability critical, business link across a boundary (via a forwarder: 1 hop)
    ("dos-risky-access-across-trust-boundary", "TG-STRIDE-D-030", "client:Web", "DenialOfService",
     set_asset(base(), "web", availability="critical"), set_asset(base(), "web", availability="important")),
    # missing-authentication-second-factor: a human-operated client sends sensitive data without two-factor
    ("missing-authentication-second-factor", "TG-STRIDE-E-031", "client:Web", "ElevationOfPrivilege",
     set_link(human_to_web(), "client", "Web", data_assets_sent=["contracts"]),
     set_link(human_to_web(), "client", "Web", data_assets_sent=["contracts"], authentication="two-factor")),
    # missing-waf: a web application reached with a web protocol across a boundary, not from a WAF
    ("missing-waf", "TG-STRIDE-T-035", "web", "Tampering", base(), set_asset(base(), "client", technology="waf")),
    # unnecessary-data-transfer: sensitive data on a link of an asset that neither processes nor stores it
    ("unnecessary-data-transfer", "TG-STRIDE-E-032", "web", "ElevationOfPrivilege",
     set_link(base(), "web", "ERP calls", data_assets_sent=["contracts"]),
     set_asset(set_link(base(), "web", "ERP calls", data_assets_sent=["contracts"]), "web",
               data_assets_processed=["pages", "contracts"])),
    # code-backdooring: development-relevant asset reached from an Internet asset, not over a VPN
    ("code-backdooring", "TG-STRIDE-T-016", "jenkins", "Tampering",
     set_asset(devops(base()), "jenkins", internet=True), set_asset(devops(base()), "jenkins", out_of_scope=True,
                                                                   internet=True)),
]


@pytest.mark.parametrize("case", CASES_2, ids=[c[0] for c in CASES_2])
def test_more_counterparts(case: tuple[str, str, str, str, dict[str, Any], dict[str, Any]], tmp_path: Path) -> None:
    _rule, ours, element, stride, positive, negative = case
    assert (ours, element, stride) in fired(positive, tmp_path / "pos")
    assert not any(r == ours and e == element for r, e, _ in fired(negative, tmp_path / "neg"))


def add_asset(doc: dict[str, Any], title: str, ident: str, technology: str, kind: str = "process") -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["technical_assets"][title] = {"id": ident, "type": kind, "technology": technology, "usage": "devops",
                                      "out_of_scope": False, "internet": False, "encryption": "none",
                                      "multi_tenant": False, "confidentiality": "internal", "integrity": "important",
                                      "availability": "operational"}
    return out


def with_build_chain(doc: dict[str, Any]) -> dict[str, Any]:
    doc = add_asset(doc, "Jenkins", "jenkins", "build-pipeline")
    doc = add_asset(doc, "Git", "git", "sourcecode-repository", "datastore")
    return add_asset(doc, "Dev client", "dev-client", "devops-client", "external-entity")


# Model-wide rules: Threagile names the most sensitive asset (HighestSensitivityScore) as the example.
CASES_3: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]] = [
    # missing-vault: no vault technology anywhere; the database (strictly confidential, critical) is the example
    ("missing-vault", "TG-STRIDE-I-032", "db", "InformationDisclosure", base(),
     add_asset(base(), "Vault", "vault", "vault")),
    # missing-build-infrastructure: custom-developed parts but no build pipeline, repository and developer client
    ("missing-build-infrastructure", "TG-STRIDE-T-036", "erp", "Tampering",
     set_asset(set_asset(base(), "erp", custom_developed_parts=True), "web", custom_developed_parts=True),
     with_build_chain(set_asset(set_asset(base(), "erp", custom_developed_parts=True), "web", custom_developed_parts=True))),
    # missing-identity-store: end-user identity propagated, no identity store
    ("missing-identity-store", "TG-STRIDE-S-030", "web", "Spoofing", base(),
     add_asset(base(), "LDAP", "ldap", "identity-store-ldap", "datastore")),
]


@pytest.mark.parametrize("case", CASES_3, ids=[c[0] for c in CASES_3])
def test_model_wide_counterparts(case: tuple[str, str, str, str, dict[str, Any], dict[str, Any]], tmp_path: Path) -> None:
    _rule, ours, element, stride, positive, negative = case
    got = fired(positive, tmp_path / "pos")
    assert (ours, element, stride) in got
    assert len({e for r, e, _ in got if r == ours}) == 1  # one example element per model, as Threagile
    assert not any(r == ours for r, _, _ in fired(negative, tmp_path / "neg"))


CASES_4: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]] = [
    # unguarded-access-from-internet: an Internet asset reaches a confidential custom-developed asset directly
    ("unguarded-access-from-internet", "TG-STRIDE-E-033", "client:Web", "ElevationOfPrivilege",
     set_asset(base(), "web", custom_developed_parts=True, confidentiality="confidential"),
     set_link(set_asset(base(), "web", custom_developed_parts=True, confidentiality="confidential"), "client", "Web",
              vpn=True)),
    # missing-identity-propagation: authenticated technical-user call from an identity-propagating technology into
    # a sensitive asset that processes end-user requests
    ("missing-identity-propagation", "TG-STRIDE-E-034", "web:ERP calls", "ElevationOfPrivilege", base(),
     set_link(base(), "web", "ERP calls", authorization="enduser-identity-propagation")),
    # service-registry-poisoning: every in-scope service registry
    ("service-registry-poisoning", "TG-STRIDE-S-031", "registry", "Spoofing",
     add_asset(base(), "Registry", "registry", "service-registry"),
     set_asset(add_asset(base(), "Registry", "registry", "service-registry"), "registry", out_of_scope=True)),
]


@pytest.mark.parametrize("case", CASES_4, ids=[c[0] for c in CASES_4])
def test_identity_and_exposure_counterparts(case: tuple[str, str, str, str, dict[str, Any], dict[str, Any]],
                                            tmp_path: Path) -> None:
    _rule, ours, element, stride, positive, negative = case
    assert (ours, element, stride) in fired(positive, tmp_path / "pos")
    assert not any(r == ours and e == element for r, e, _ in fired(negative, tmp_path / "neg"))


def with_files(doc: dict[str, Any]) -> dict[str, Any]:
    """The base model with an NFS file server, an LDAP server and a search engine the ERP system uses."""
    out = add_asset(doc, "Files", "files", "file-server", "datastore")
    out = add_asset(out, "LDAP", "ldap", "ldap-server", "datastore")
    out = add_asset(out, "Search", "search", "search-engine")
    for t in out["technical_assets"].values():
        if t["id"] == "erp":
            t["communication_links"].update({
                "NFS": {"target": "files", "protocol": "nfs", "authentication": "none", "authorization": "none"},
                "Directory": {"target": "ldap", "protocol": "ldaps", "authentication": "credentials",
                              "authorization": "technical-user"},
                "Search": {"target": "search", "protocol": "https", "authentication": "token",
                           "authorization": "technical-user"}})
    return out


CASES_5: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]] = [
    ("ldap-injection", "TG-STRIDE-T-037", "erp:Directory", "Tampering", with_files(base()),
     set_asset(with_files(base()), "erp", out_of_scope=True)),
    ("path-traversal", "TG-STRIDE-I-033", "erp:NFS", "InformationDisclosure", with_files(base()),
     set_asset(with_files(base()), "files", technology="database")),
    ("search-query-injection", "TG-STRIDE-T-038", "erp:Search", "Tampering", with_files(base()),
     set_link(with_files(base()), "erp", "Search", protocol="jdbc")),
    # accidental-secret-leak: a source-code repository, whatever its type
    ("accidental-secret-leak", "TG-STRIDE-I-011", "git", "InformationDisclosure",
     add_asset(base(), "Git", "git", "sourcecode-repository", "process"),
     set_asset(add_asset(base(), "Git", "git", "sourcecode-repository", "process"), "git", out_of_scope=True)),
]


@pytest.mark.parametrize("case", CASES_5, ids=[c[0] for c in CASES_5])
def test_technology_keyed_counterparts(case: tuple[str, str, str, str, dict[str, Any], dict[str, Any]],
                                       tmp_path: Path) -> None:
    _rule, ours, element, stride, positive, negative = case
    assert (ours, element, stride) in fired(positive, tmp_path / "pos")
    assert not any(r == ours and e == element for r, e, _ in fired(negative, tmp_path / "neg"))


def test_link_rules_leave_response_flows_out(tmp_path: Path) -> None:
    """A link with data received becomes a request and a response flow (tg:responseTo); rules about the
    connection the caller opens fire on the request only, rules about the data on the wire on both."""
    doc = set_link(base(), "web", "ERP calls", data_assets_received=["pages"], protocol="http")
    got = fired(doc, tmp_path)
    assert ("TG-STRIDE-I-031", "web:ERP calls", "InformationDisclosure") in got
    assert not any(r == "TG-STRIDE-I-031" and e == "web:ERP calls:response" for r, e, _ in got)
    # unencrypted communication: authentication data travels both ways on the HTTP connection
    assert {("TG-STRIDE-I-030", "web:ERP calls", "InformationDisclosure"),
            ("TG-STRIDE-I-030", "web:ERP calls:response", "InformationDisclosure")} <= got


CASES_6: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any]]] = [
    # unencrypted-asset on a process that stores data (Threagile looks at every asset with stored data)
    ("unencrypted-asset (process)", "TG-STRIDE-I-034", "erp", "InformationDisclosure",
     set_asset(base(), "erp", data_assets_stored=["contracts"]),
     set_asset(base(), "erp", data_assets_stored=["contracts"], encryption="transparent")),
    # unencrypted-asset: strictly confidential end-user data in a database needs an end-user individual key
    ("unencrypted-asset (end-user key)", "TG-STRIDE-I-034", "db", "InformationDisclosure",
     set_asset(base(), "db", encryption="data-with-symmetric-shared-key"),
     set_asset(base(), "db", encryption="data-with-end-user-individual-key")),
]


@pytest.mark.parametrize("case", CASES_6, ids=[c[0] for c in CASES_6])
def test_unencrypted_asset_counterpart(case: tuple[str, str, str, str, dict[str, Any], dict[str, Any]],
                                       tmp_path: Path) -> None:
    _rule, ours, element, stride, positive, negative = case
    assert (ours, element, stride) in fired(positive, tmp_path / "pos")
    assert not any(r == ours and e == element for r, e, _ in fired(negative, tmp_path / "neg"))


def test_missing_file_validation_counterpart(tmp_path: Path) -> None:
    """missing-file-validation: custom-developed, in scope, accepts the file format (Threagile: spoofing)."""
    pos = set_asset(base(), "erp", custom_developed_parts=True, data_formats_accepted=["file"])
    neg = set_asset(base(), "erp", custom_developed_parts=False, data_formats_accepted=["file"])
    assert ("TG-STRIDE-S-032", "erp", "Spoofing") in fired(pos, tmp_path / "pos")
    assert not any(r == "TG-STRIDE-S-032" for r, _, _ in fired(neg, tmp_path / "neg"))
