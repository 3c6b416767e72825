"""Threagile YAML → threatgraph system model.

Technical assets → elements by ``type`` (``ai`` technology → ML classes, table in docs/interchange.md);
data assets → tg:DataAsset with tg:classification from their confidentiality rating; communication
links → tg:DataFlow (protocol, authentication, authorization, encryption, data sent; data received as a
response flow); trust boundaries → tg:TrustZone (an asset's innermost boundary), assets outside all
boundaries in one implicit zone; risk tracking and individual risk categories → tg:DeclaredThreat.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import rdflib
import yaml
from rdflib.namespace import XSD

from threatgraph.bounded import limits, load_yaml, read_regular, yaml_problem, yaml_where
from threatgraph.errors import InputError
from threatgraph.interchange.common import (
    Builder,
    ImportResult,
    add_system,
    bool_attr,
    declared_threat,
    items,
    optional,
    pointer,
    require,
    severity_iri,
)
from threatgraph.interchange.mlclasses import MLClasses
from threatgraph.terms import DCT, STRIDE, TG, TGML

FORMAT = "threagile"

_KINDS = {"external-entity": "ExternalEntity", "process": "Process", "datastore": "DataStore"}
_AI_CLASS = {"Process": "InferenceEndpoint", "DataStore": "ModelArtifact", "ExternalEntity": "LLMProvider"}
_CONFIDENTIALITY = {
    "public": TG.Public,
    "internal": TG.Internal,
    "restricted": TG.Confidential,
    "confidential": TG.Confidential,
    "strictly-confidential": TG.Confidential,
}
_RATING = {"archive": 1, "operational": 2, "important": 3, "critical": 4, "mission-critical": 5,
           "public": 1, "internal": 2, "restricted": 3, "confidential": 4, "strictly-confidential": 5}
_PERSONAL_TAGS = {"pii", "personal", "personal-data", "gdpr"}
_SPECIAL_TAGS = {"health", "phi", "biometric", "genetic", "special-category"}
_ENCRYPTED = {"https", "wss", "reverse-proxy-web-protocol-encrypted", "jdbc-encrypted", "odbc-encrypted",
              "sql-access-protocol-encrypted", "nosql-access-protocol-encrypted", "binary-encrypted",
              "text-encrypted", "ssh", "ssh-tunnel", "smtp-encrypted", "pop3-encrypted", "imap-encrypted", "ftps",
              "sftp", "scp", "ldaps", "smb-encrypted", "iiop-encrypted", "jrmp-encrypted"}
_WEB_TECH = {"web-server", "web-application", "application-server", "erp", "cms", "identity-provider", "report-engine"}
"""Threagile's web-application technologies (``IsWebApplication`` in pkg/types): tg:webApplication on processes."""
_DEV_TECH = {"build-pipeline", "sourcecode-repository", "artifact-registry", "code-inspection-platform", "devops-client"}
"""Threagile's development-relevant technologies (``IsDevelopmentRelevant``): tg:developmentInfrastructure."""
_HIGH_VALUE_TECH = {"application-server", "erp", "identity-provider", "hmi", "plc", "scada", "industrial-control-actor",
                    "industrial-control-sensor"}
"""Threagile's technologies with the attribute ``high_value_target`` (pkg/types/technologies.yaml): tg:highValueTarget."""
_INTERMEDIARY_TECH = {"load-balancer", "reverse-proxy", "waf", "ids", "ips", "service-registry"}
"""Threagile's technologies with ``no_authentication_required`` (technologies.yaml): tg:trafficIntermediary."""
_LOCAL = {"in-process-library-call", "inter-process-communication", "local-file-access", "container-spawning",
          "unknown-protocol"}
_STRIDE = {
    "spoofing": STRIDE.Spoofing, "tampering": STRIDE.Tampering, "repudiation": STRIDE.Repudiation,
    "information-disclosure": STRIDE.InformationDisclosure, "denial-of-service": STRIDE.DenialOfService,
    "elevation-of-privilege": STRIDE.ElevationOfPrivilege,
}
# STRIDE category of Threagile's built-in risk rules (``RiskCategory.STRIDE`` returned by each rule's
# ``Category()``), keyed by the rule id (``RiskCategory.ID``), for the category part of risk tracking ids.
# Checked against the source of github.com/Threagile/threagile, every rule file read:
#   newest layout  pkg/risks/builtin/<rule_name>_rule.go (types.RiskCategory) at commits 38635e4f, 5e4967db,
#                  1e226edc, 23a2fca7, 170d2fd5, 2692157f, 636f5fe6; the rule list GetBuiltInRiskRules in
#                  pkg/risks/risks.go at 56d92ace (42 rules, all below);
#   first layout   risks/built-in/<rule-name>/<rule-name>-rule.go (model.RiskCategory) at commits 0233bc4b,
#                  01932af9, 0976d632, 17ceeb48, 2f794e47, 2e320fdb, 19555a17, 28e6264b.
# No rule changed its STRIDE category between the two layouts (spot checks of the layout in between,
# pkg/security/risks/builtin, at 19ed1486, 16dfc6d3, 8e37a328, 3890a1e4 agree too). Not included: the 12
# LINDDUN-style privacy rules of pkg/risks/privacy (pull request #138, open when read); unknown rule ids
# are imported without a category and reported.
BUILTIN_STRIDE: dict[str, str] = {
    "accidental-secret-leak": "information-disclosure",
    "code-backdooring": "tampering",
    "container-baseimage-backdooring": "tampering",
    "container-platform-escape": "elevation-of-privilege",
    "cross-site-request-forgery": "spoofing",
    "cross-site-scripting": "tampering",
    "dos-risky-access-across-trust-boundary": "denial-of-service",
    "incomplete-model": "information-disclosure",
    "ldap-injection": "tampering",
    "missing-authentication": "elevation-of-privilege",
    "missing-authentication-second-factor": "elevation-of-privilege",
    "missing-build-infrastructure": "tampering",
    "missing-cloud-hardening": "tampering",
    "missing-file-validation": "spoofing",
    "missing-hardening": "tampering",
    "missing-identity-propagation": "elevation-of-privilege",
    "missing-identity-provider-isolation": "elevation-of-privilege",
    "missing-identity-store": "spoofing",
    "missing-network-segmentation": "elevation-of-privilege",
    "missing-vault": "information-disclosure",
    "missing-vault-isolation": "elevation-of-privilege",
    "missing-waf": "tampering",
    "mixed-targets-on-shared-runtime": "elevation-of-privilege",
    "path-traversal": "information-disclosure",
    "push-instead-of-pull-deployment": "tampering",
    "search-query-injection": "tampering",
    "server-side-request-forgery": "information-disclosure",
    "service-registry-poisoning": "spoofing",
    "sql-nosql-injection": "tampering",
    "unchecked-deployment": "tampering",
    "unencrypted-asset": "information-disclosure",
    "unencrypted-communication": "information-disclosure",
    "unguarded-access-from-internet": "elevation-of-privilege",
    "unguarded-direct-datastore-access": "elevation-of-privilege",
    "unnecessary-communication-link": "elevation-of-privilege",
    "unnecessary-data-asset": "elevation-of-privilege",
    "unnecessary-data-transfer": "elevation-of-privilege",
    "unnecessary-technical-asset": "elevation-of-privilege",
    "untrusted-deserialization": "tampering",
    "wrong-communication-link-content": "information-disclosure",
    "wrong-trust-boundary-content": "elevation-of-privilege",
    "xml-external-entity": "information-disclosure",
}
_WILD = ("data_assets", "technical_assets", "communication_links", "trust_boundaries", "risk_tracking",
         "individual_risk_categories", "risks_identified", "shared_runtimes", "custom_risk_categories")
_TA_MAPPED = ("id", "description", "type", "technology", "technologies", "internet", "encryption", "confidentiality",
              "multi_tenant", "usage", "machine", "custom_developed_parts", "used_as_client_by_human",
              "data_formats_accepted",
              "integrity", "availability", "data_assets_processed", "data_assets_stored", "communication_links",
              "out_of_scope", "justification_out_of_scope")
_LINK_MAPPED = ("target", "description", "protocol", "authentication", "authorization", "data_assets_sent",
                "vpn", "ip_filtered", "readonly", "usage",
                "data_assets_received")


def convert(doc: Any, name: str, *, included: bool = False, ml: MLClasses | None = None) -> ImportResult:
    """Convert a parsed Threagile model (``included``: its ``includes`` were merged by :func:`merge_includes`).

    ``ml``: the ML phrase table (default: the shipped one; see :mod:`threatgraph.interchange.mlclasses`).
    """
    b = Builder(FORMAT, name, "threagile", ml=ml)
    if not isinstance(doc, Mapping):
        raise b.fail([], "a Threagile model is a YAML mapping")
    title = require(b, doc, [], "title")
    b = Builder(FORMAT, name, title, wild=_WILD, ml=ml)
    desc = doc.get("application_description")
    system = add_system(b, title, desc.get("description") if isinstance(desc, Mapping) else None, title)
    b.unmapped_keys(doc, [], ("title", "application_description", "data_assets", "technical_assets",
                              "trust_boundaries", "risk_tracking", "individual_risk_categories", "threagile_version",
                              "tags_available", "includes", "custom_risk_categories"),
                    "model-level field with no home (author, business overview, questions, diagram tweaks, …)")
    if doc.get("includes") and not included:
        b.unmapped("/includes", "included files are not followed (only when reading a file): import the merged model")

    data: dict[str, rdflib.URIRef] = {}
    for key, a in _mapping(b, doc, [], "data_assets").items():
        path: list[str | int] = ["data_assets", key]
        try:
            aid = require(b, a, path, "id")
            adesc = optional(b, a, path, "description", str)
            conf = optional(b, a, path, "confidentiality", str)
        except InputError as err:
            b.skip(err)
            continue
        node = b.iri("data", aid)
        data[aid] = node
        b.typed(node, TG.DataAsset, str(key), aid, at=path)
        b.lit(node, DCT.description, adesc)
        tags = {str(t).lower() for t in a.get("tags") or []}
        cls = _CONFIDENTIALITY.get(conf or "", None)
        if tags & _SPECIAL_TAGS:
            cls = TG.SpecialCategoryPersonal
        elif tags & _PERSONAL_TAGS:
            cls = TG.Personal
        if cls:
            b.add(node, TG.classification, rdflib.URIRef(cls))
        elif conf is not None:
            b.skip(b.fail([*path, "confidentiality"], f"unknown confidentiality {conf!r} (use public, internal, "
                          "restricted, confidential or strictly-confidential)"))
        b.unmapped_keys(a, path, ("id", "description", "confidentiality", "tags", "integrity", "availability", "quantity"),
                        "data-asset field with no home (usage, origin, owner)")

    assets: dict[str, rdflib.URIRef] = {}
    kinds: dict[str, str] = {}
    ta = _mapping(b, doc, [], "technical_assets")
    usable: list[tuple[str, Mapping[str, Any], str, str]] = []
    for key, t in ta.items():
        try:
            tid = require(b, t, ["technical_assets", key], "id")
            if tid in assets:
                raise b.fail(["technical_assets", key, "id"], f"duplicate technical asset id {tid!r}; the first one "
                             "is kept")
            ttype = require(b, t, ["technical_assets", key], "type")
            if ttype not in _KINDS:
                raise b.fail(["technical_assets", key, "type"], f"unknown technical asset type {ttype!r} (use "
                             "external-entity, process or datastore)")
        except InputError as err:
            b.skip(err)
            continue
        assets[tid] = b.iri("asset", tid)
        usable.append((str(key), t, tid, _KINDS[ttype]))
    if not assets and ta:
        raise InputError(f"{name}: {FORMAT}: /technical_assets: no usable technical asset"
                         + (f" ({'; '.join(b.warnings[-3:])})" if b.warnings else ""),
                         hint="every technical asset needs an id and a type (external-entity, process or datastore)")
    links: dict[str, rdflib.URIRef] = {}
    raa = attacker_attractiveness(doc)
    for key, t, tid, kind in usable:
        path = ["technical_assets", key]
        node = assets[tid]
        kinds[tid] = kind
        b.typed(node, TG[kind], str(key), tid)
        b.add(node, TG.partOf, system)
        tdesc = optional(b, t, path, "description", str)
        b.lit(node, DCT.description, tdesc)
        techs = [str(x) for x in (t.get("technologies") or [])]
        if isinstance(t.get("technology"), str):
            techs.append(t["technology"])
        ttags = [str(x) for x in t["tags"] if isinstance(x, (str, int, float))] if isinstance(t.get("tags"), list) else []
        signals = [*(("technology", x) for x in techs), *(("tag", x) for x in ttags), ("type", str(t.get("type"))),
                   ("name", str(key)), ("description", tdesc)]
        b.ml_class(node, kind, signals, pointer(path), tokens=("technology", "tag", "type", "name"),
                   default=TGML[_AI_CLASS[kind]] if "ai" in techs else None)
        mapped = {"ai"}
        if kind == "Process" and any(x in _WEB_TECH for x in techs):
            b.g.add((node, rdflib.URIRef(TG.webApplication), rdflib.Literal(True)))
            mapped |= _WEB_TECH
        if any(x in _DEV_TECH for x in techs):
            b.g.add((node, rdflib.URIRef(TG.developmentInfrastructure), rdflib.Literal(True)))
            mapped |= _DEV_TECH
        if "container-platform" in techs:
            b.g.add((node, rdflib.URIRef(TG.containerPlatform), rdflib.Literal(True)))
            mapped.add("container-platform")
        if any(x in _HIGH_VALUE_TECH for x in techs):
            b.g.add((node, rdflib.URIRef(TG.highValueTarget), rdflib.Literal(True)))
            mapped |= _HIGH_VALUE_TECH
        if any(x in _INTERMEDIARY_TECH for x in techs):
            b.g.add((node, rdflib.URIRef(TG.trafficIntermediary), rdflib.Literal(True)))
            mapped |= _INTERMEDIARY_TECH
        if tid in raa:
            b.g.add((node, rdflib.URIRef(TG.attackerAttractiveness),
                     rdflib.Literal(Decimal(f"{raa[tid]:.1f}"), datatype=XSD.decimal)))
        bool_attr(b, node, TG.multiTenant, t.get("multi_tenant"))
        for x in sorted(set(techs)):
            b.lit(node, TG.technology, x.lower())
        b.lit(node, TG.sensitivityScore, _C_ASSET.get(str(t.get("confidentiality")), 8)
              + _I_ASSET.get(str(t.get("integrity")), 5) + _I_ASSET.get(str(t.get("availability")), 5))
        bool_attr(b, node, TG.customDeveloped, t.get("custom_developed_parts"))
        bool_attr(b, node, TG.usedByHuman, t.get("used_as_client_by_human"))
        if isinstance(t.get("machine"), str):
            b.g.add((node, rdflib.URIRef(TG.containerised), rdflib.Literal(t["machine"] == "container")))
        if isinstance(t.get("usage"), str):
            b.g.add((node, rdflib.URIRef(TG.devOps), rdflib.Literal(t["usage"] == "devops")))
        if str(t.get("availability")) in _RATING:
            b.lit(node, TG.availabilityCriticality, _RATING[str(t["availability"])])
        if "waf" in techs:
            b.g.add((node, rdflib.URIRef(TG.webApplicationFirewall), rdflib.Literal(True)))
        if [x for x in techs if x not in mapped] and "ai" not in techs:
            b.unmapped(f"/technical_assets/{key}/technologies", "technology with no threatgraph class (the asset keeps its core kind)")
        for j, fmt in enumerate(t.get("data_formats_accepted") or []):
            if isinstance(fmt, str) and fmt:
                b.lit(node, TG.acceptsFormat, fmt.lower())
            else:
                raise b.fail([*path, "data_formats_accepted", j], "a data format must be a non-empty string",
                             hint="use json, xml, serialization, file or csv")
        if isinstance(t.get("internet"), bool):
            b.g.add((node, rdflib.URIRef(TG.publiclyExposed), rdflib.Literal(t["internet"])))
        enc = t.get("encryption")
        if isinstance(enc, str) and (kind == "DataStore" or (kind == "Process" and t.get("data_assets_stored"))):
            # a process that stores data has data at rest too (Threagile's unencrypted-asset looks at any asset)
            b.g.add((node, rdflib.URIRef(TG.encryptedAtRest), rdflib.Literal(enc != "none")))
            b.g.add((node, rdflib.URIRef(TG.encryptedPerUser), rdflib.Literal(enc == "data-with-end-user-individual-key")))
        ratings = [_RATING[str(t[k])] for k in ("confidentiality", "integrity", "availability") if str(t.get(k)) in _RATING]
        if ratings:
            b.lit(node, TG.criticality, max(ratings))
        for k2, prop, need in (("data_assets_processed", TG.processes, "Process"), ("data_assets_stored", TG.holds, "DataStore")):
            for j, did in enumerate(t.get(k2) or []):
                if did not in data:
                    b.skip(b.fail([*path, k2, j], f"no data asset with id {did!r}"))
                    continue
                if kind == need:
                    b.add(node, prop, data[did])
                elif kind == "Process" and k2 == "data_assets_stored":
                    # a process that stores data handles it (Threagile counts stored data as processed)
                    b.add(node, TG.processes, data[did])
                else:
                    b.unmapped(f"/technical_assets/{key}/{k2}", f"only a {need.lower()} has {k2.split('_')[-1]} data here")
        bool_attr(b, node, TG.outOfScope, t.get("out_of_scope"))
        if t.get("out_of_scope") is True and isinstance(t.get("justification_out_of_scope"), str):
            b.lit(node, TG.outOfScopeReason, t["justification_out_of_scope"])
        b.unmapped_keys(t, path, _TA_MAPPED,
                        "technical-asset field with no home (size, owner, redundant, …)")
        for lkey, link in _mapping(b, t, path, "communication_links").items():
            lpath = [*path, "communication_links", lkey]
            target = link.get("target") if isinstance(link, Mapping) else None
            if isinstance(target, str) and target in assets:
                tnode = assets[target]
            else:
                what = f"names no technical asset ({target!r})" if isinstance(target, str) else "is missing"
                tnode = b.placeholder(b.iri("link", tid, str(lkey), "target"), "target", str(lkey), system,
                                      [*lpath, "target"], what)
            flow = b.iri("link", tid, str(lkey))
            links[link_id(tid, str(lkey))] = flow
            try:
                _link(b, link, lpath, flow, str(lkey), node, tnode, system, data, sent=True)
                if link.get("data_assets_received"):
                    response = b.iri("link", tid, str(lkey), "response")
                    _link(b, link, lpath, response, f"{lkey} (response)", tnode, node, system, data, sent=False)
                    b.add(response, TG.responseTo, flow)
            except InputError as err:
                b.skip(err)

    # Trust boundaries → zones (innermost boundary wins).
    tb = _mapping(b, doc, [], "trust_boundaries")
    zone_of: dict[str, tuple[int, rdflib.URIRef]] = {}
    nested_in: dict[str, str] = {}
    ids = {}
    for key, z in tb.items():
        try:
            zid = require(b, z, ["trust_boundaries", key], "id")
        except InputError as err:
            b.skip(err)
            continue
        ids[zid] = key
        for inner in z.get("trust_boundaries_nested") or []:
            nested_in[str(inner)] = zid
    for key, z in tb.items():
        path = ["trust_boundaries", key]
        if not isinstance(z, Mapping) or not isinstance(z.get("id"), str):
            continue
        zid = z["id"]
        node = b.iri("zone", zid)
        b.typed(node, TG.TrustZone, str(key), zid, at=path)
        b.lit(node, DCT.description, optional(b, z, path, "description", str))
        depth, p = 0, zid
        while p in nested_in and depth < len(tb):
            p, depth = nested_in[p], depth + 1
        for j, aid in enumerate(z.get("technical_assets_inside") or []):
            if aid not in assets:
                b.skip(b.fail([*path, "technical_assets_inside", j], f"no technical asset with id {aid!r}"))
                continue
            if aid not in zone_of or zone_of[aid][0] < depth:
                zone_of[aid] = (depth, node)
        for j, inner in enumerate(z.get("trust_boundaries_nested") or []):
            if inner not in ids:
                b.skip(b.fail([*path, "trust_boundaries_nested", j], f"no trust boundary with id {inner!r}"))
        if z.get("type"):
            b.unmapped(f"/trust_boundaries/{key}/type", "boundary type (network, execution environment) has no home")
        b.unmapped_keys(z, path, ("id", "description", "type", "technical_assets_inside", "trust_boundaries_nested"),
                        "trust-boundary field with no home (tags)")
        if z.get("trust_boundaries_nested"):
            b.unmapped(f"/trust_boundaries/{key}/trust_boundaries_nested", "nesting is flattened to the innermost zone")
    if tb:
        outside = b.iri("zone", "outside-trust-boundaries")
        used = False
        for aid, node in assets.items():
            if aid in zone_of:
                b.add(node, TG.inZone, zone_of[aid][1])
            else:
                b.add(node, TG.inZone, outside)
                used = True
        if used:
            b.typed(outside, TG.TrustZone, "Outside all trust boundaries", None)
    if doc.get("shared_runtimes"):
        b.unmapped("/shared_runtimes", "shared runtimes have no home")

    # Individual risk categories (a map keyed by title; newer Threagile: custom_risk_categories, a list with
    # a title each) with their identified risks, then risk tracking.
    categories: dict[str, Mapping[str, Any]] = {}
    defined: list[tuple[list[str | int], str, Any]] = [
        (["individual_risk_categories", key], str(key), rc)
        for key, rc in _mapping(b, doc, [], "individual_risk_categories").items()
    ]
    for i, rc in enumerate(items(b, doc, [], "custom_risk_categories")):
        title = rc.get("title") if isinstance(rc, Mapping) else None
        defined.append((["custom_risk_categories", i], str(title or (rc.get("id") if isinstance(rc, Mapping) else i)), rc))
    for path, title, rc in defined:
        rid = require(b, rc, path, "id")
        categories[rid] = rc
        b.unmapped_keys(rc, path, ("id", "title", "description", "stride", "mitigation", "risks_identified"),
                        "risk-category detail with no home (impact, asvs, cheat_sheet, action, check, function, cwe, "
                        "detection_logic, …)")
        for sid, risk in _mapping(b, rc, path, "risks_identified").items():
            rpath = [*path, "risks_identified", sid]
            if isinstance(risk, Mapping):
                b.unmapped_keys(risk, rpath, ("severity", "most_relevant_technical_asset",
                                              "most_relevant_communication_link"),
                                "identified-risk detail with no home (exploitation likelihood and impact, data loss, "
                                "other most relevant elements)")
            el = _risk_target(risk, assets, links)
            if el is None:
                b.unmapped(pointer([*path, "risks_identified"]), "risk without a known technical asset")
                continue
            sev = risk.get("severity") if isinstance(risk, Mapping) else None
            declared_threat(
                b, el, b.iri("risk", str(sid)), title=title, description=rc.get("description"),
                category=_STRIDE.get(str(rc.get("stride"))), severity=severity_iri(sev) if isinstance(sev, str) else None,
                status="unchecked", mitigation=rc.get("mitigation") if isinstance(rc.get("mitigation"), str) else None,
                ident=str(sid),
            )
    for sid, rt in _mapping(b, doc, [], "risk_tracking").items():
        path = ["risk_tracking", sid]
        status = optional(b, rt, path, "status", str)
        cat_id, _, rest = str(sid).partition("@")
        el = _tracked_target(rest, assets, links)
        if el is None:
            b.unmapped("/risk_tracking", "tracked risk whose id names no technical asset (wildcards are not expanded)")
            continue
        if cat_id in categories:
            stride: str | None = str(categories[cat_id].get("stride"))
        else:
            stride = BUILTIN_STRIDE.get(cat_id)
            if stride is None:
                b.unmapped(pointer(path), "tracked risk of a rule that is neither a built-in Threagile rule nor an "
                           f"individual risk category (e.g. {cat_id!r}): imported without a STRIDE category")
        threat = b.iri("risk", str(sid))
        declared_threat(
            b, el, threat, title=cat_id, category=_STRIDE.get(stride or ""), status=status,
            mitigation=optional(b, rt, path, "justification", str), ident=str(sid),
        )
        b.unmapped_keys(rt, path, ("status", "justification"), "risk-tracking field with no home (ticket, date, checked_by)")
    return b.result()


_C_ASSET = {"public": 8, "internal": 13, "restricted": 21, "confidential": 34, "strictly-confidential": 55}
_C_DATA = {"public": 5, "internal": 8, "restricted": 13, "confidential": 21, "strictly-confidential": 34}
_C_FLOW = {"public": 2, "internal": 3, "restricted": 5, "confidential": 8, "strictly-confidential": 13}
_I_ASSET = {"archive": 5, "operational": 8, "important": 13, "critical": 21, "mission-critical": 34}
_I_DATA = {"archive": 3, "operational": 5, "important": 8, "critical": 13, "mission-critical": 21}
_I_FLOW = {"archive": 2, "operational": 3, "important": 5, "critical": 8, "mission-critical": 13}
_QUANTITY = {"very-few": 1, "few": 2, "many": 3, "very-many": 5}


def attacker_attractiveness(doc: Mapping[str, Any]) -> dict[str, float]:
    """Threagile's Relative Attacker Attractiveness (RAA, percent) of every technical asset, by asset id.

    A port of Threagile's ``CalculateRAA`` (pkg/model/raa.go, the ``raa`` plugin): each in-scope asset scores
    the Fibonacci weights of its own C/I/A ratings, of the data it processes and stores (C and I times the
    data's quantity factor) and of the data its outgoing links send and receive; load balancers and reverse
    proxies divide by 5.5, monitoring by 5; container platforms multiply by 5, vaults and build, source and
    artifact infrastructure by 2, identity providers and stores by 2.5 (other data stores by 2), multi-tenant
    assets by 1.5. The score is placed between the model's minimum and maximum (percent, at least 1), after
    adding a third of the positive gap to the most attractive asset it sends to (pivoting). Unknown or
    missing ratings count as the lowest. Stored data counts as processed too (as Threagile does).

    >>> doc = {"data_assets": {"d": {"id": "d", "confidentiality": "strictly-confidential", "integrity": "critical"}},
    ...        "technical_assets": {"w": {"id": "w", "type": "process", "data_assets_processed": ["d"],
    ...                                   "communication_links": {"q": {"target": "db"}}},
    ...                             "db": {"id": "db", "type": "datastore", "data_assets_stored": ["d"]}}}
    >>> {k: round(v) for k, v in attacker_attractiveness(doc).items()}
    {'w': 20, 'db': 100}
    """
    data: dict[str, Mapping[str, Any]] = {}
    for a in (doc.get("data_assets") or {}).values() if isinstance(doc.get("data_assets"), Mapping) else ():
        if isinstance(a, Mapping) and isinstance(a.get("id"), str):
            data[a["id"]] = a
    assets: dict[str, Mapping[str, Any]] = {}
    for t in (doc.get("technical_assets") or {}).values() if isinstance(doc.get("technical_assets"), Mapping) else ():
        if isinstance(t, Mapping) and isinstance(t.get("id"), str):
            assets[t["id"]] = t

    def weight(d: Mapping[str, Any], table_c: Mapping[str, int], table_i: Mapping[str, int]) -> float:
        q = _QUANTITY.get(str(d.get("quantity")), 1)
        c = table_c.get(str(d.get("confidentiality")), min(table_c.values()))
        i = table_i.get(str(d.get("integrity")), min(table_i.values()))
        av = table_i.get(str(d.get("availability")), min(table_i.values()))
        return float(c * q + i * q + av)

    def techs(t: Mapping[str, Any]) -> set[str]:
        out = {str(x) for x in t.get("technologies") or [] if isinstance(x, str)}
        if isinstance(t.get("technology"), str):
            out.add(t["technology"])
        return out

    def links(t: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        cl = t.get("communication_links")
        return [v for v in cl.values() if isinstance(v, Mapping)] if isinstance(cl, Mapping) else []

    def ids(val: Any) -> list[str]:
        return [str(x) for x in val if str(x) in data] if isinstance(val, list) else []

    def score(t: Mapping[str, Any]) -> float:
        if t.get("out_of_scope") is True:
            return 0.0
        s = float(_C_ASSET.get(str(t.get("confidentiality")), 8) + _I_ASSET.get(str(t.get("integrity")), 5)
                  + _I_ASSET.get(str(t.get("availability")), 5))
        stored = ids(t.get("data_assets_stored"))
        processed = ids(t.get("data_assets_processed"))
        for did in processed + [d for d in stored if d not in processed] + stored:
            s += weight(data[did], _C_DATA, _I_DATA)
        for link in links(t):
            for did in ids(link.get("data_assets_sent")) + ids(link.get("data_assets_received")):
                s += weight(data[did], _C_FLOW, _I_FLOW)
        tech = techs(t)
        if tech & {"load-balancer", "reverse-proxy"}:
            s /= 5.5
        if "monitoring" in tech:
            s /= 5
        if "container-platform" in tech:
            s *= 5
        if "vault" in tech:
            s *= 2
        if tech & {"build-pipeline", "sourcecode-repository", "artifact-registry"}:
            s *= 2
        if tech & {"identity-provider", "identity-store-database", "identity-store-ldap"}:
            s *= 2.5
        elif t.get("type") == "datastore":
            s *= 2
        if t.get("multi_tenant") is True:
            s *= 1.5
        return s

    raw = {k: score(t) for k, t in assets.items()}
    if not raw:
        return {}
    low, high = min(raw.values()), max(raw.values())
    if not low < high:
        high = low + 1
    spread = high - low

    def relative(v: float) -> float:
        pct = (v - low) / spread * 100
        return pct if pct > 0 else 1.0

    out: dict[str, float] = {}
    for k, t in assets.items():
        adjust = 0.0
        if t.get("out_of_scope") is not True:
            for link in links(t):
                target = str(link.get("target"))
                if target in raw:
                    delta = relative(raw[target]) - relative(raw[k])
                    adjust = max(adjust, delta / 3 if delta > 0 else 0.0)
        out[k] = relative(raw[k] + adjust)
    return out


_SINGLETONS = ("threagile_version", "title", "date", "business_criticality")


@dataclass
class _Budget:
    """What the includes of one model may still read: files and bytes (docs/limits.md)."""

    root: Path
    files: int
    bytes: int


def merge_includes(doc: Any, path: Path, _seen: tuple[Path, ...] = (), _budget: _Budget | None = None) -> Any:
    """The model with the files of its ``includes`` merged in, as Threagile reads them.

    Include paths are relative to the including file and may include further files. Threagile's merge
    (``Model.Merge`` in pkg/input/model.go): single values (title, date, …) may be set once or identically,
    maps (assets, boundaries, risk tracking, …) are joined (an entry defined twice must agree, field by
    field), lists are concatenated, the management summary comments are joined by a blank line.

    Included files must be regular files inside the model's folder (or below it); the number of files read
    and their total size are bounded (``THREATGRAPH_MAX_INCLUDES``, ``THREATGRAPH_MAX_INPUT_BYTES``).
    """
    if not isinstance(doc, Mapping) or not doc.get("includes"):
        return doc
    if _budget is None:
        lim = limits()
        _budget = _Budget(path.resolve().parent, lim.includes, lim.input_bytes)
    b = Builder(FORMAT, str(path), "threagile")
    merged: dict[str, Any] = {k: v for k, v in doc.items() if k != "includes"}
    for i, inc in enumerate(items(b, doc, [], "includes")):
        if not isinstance(inc, str):
            raise b.fail(["includes", i], f"expected a file name, found {type(inc).__name__}")
        file = (path.parent / inc).resolve()
        if file in _seen or file == path.resolve():
            raise b.fail(["includes", i], f"{inc!r} includes itself (directly or through other includes)")
        if not file.is_relative_to(_budget.root):
            raise b.fail(["includes", i], f"included file {inc!r} is outside the model's folder {_budget.root}",
                         hint="keep included files in the model's folder or below it")
        try:
            file.stat()
        except OSError as err:
            raise b.fail(["includes", i], f"cannot read included file {inc!r} ({err.strerror})",
                         hint="include paths are relative to the including file") from err
        _budget.files -= 1
        if _budget.files < 0:
            raise b.fail(["includes", i], f"more than {limits().includes} included files in all (the limit)",
                         hint="raise THREATGRAPH_MAX_INCLUDES if the model is genuine (see docs/limits.md)")
        data = read_regular(file, f"{path}: threagile: {pointer(['includes', i])}: included file {inc!r}",
                            max_bytes=_budget.bytes)
        _budget.bytes -= len(data)
        try:
            sub = load_yaml(data, str(file))
        except UnicodeDecodeError as err:
            raise b.fail(["includes", i], f"included file {inc!r} is not UTF-8 text (byte {err.start})") from err
        except yaml.YAMLError as err:
            raise b.fail(["includes", i], f"included file {inc!r} is not valid YAML "
                         f"({file}{yaml_where(err)}: {yaml_problem(err)})") from err
        sub = merge_includes(sub, file, (*_seen, path.resolve()), _budget)
        if sub is None:
            continue
        if not isinstance(sub, Mapping):
            raise b.fail(["includes", i], f"included file {inc!r} is not a YAML mapping")
        for key, val in sub.items():
            merged[key] = _merge_value(b, ["includes", i, str(key)], key, merged.get(key), val)
    return merged


def _merge_value(b: Builder, at: list[str | int], key: Any, old: Any, new: Any) -> Any:
    if old is None or old == "" or old == [] or old == {}:
        return new
    if new is None or new == "" or new == [] or new == {} or old == new:
        return old
    if key == "management_summary_comment" and isinstance(old, str) and isinstance(new, str):
        return f"{old}\n\n{new}"
    if isinstance(old, Mapping) and isinstance(new, Mapping) and key not in _SINGLETONS:
        out = dict(old)
        for k, v in new.items():
            out[k] = _merge_value(b, [*at, str(k)], k, out.get(k), v)
        return out
    if isinstance(old, list) and isinstance(new, list):
        return old + [v for v in new if v not in old]
    raise b.fail(at, f"conflicting values {old!r} and {new!r} in the including and the included file",
                 hint="define a single value once, in one of the files")


def link_id(source: str, title: str) -> str:
    """Threagile's id of a communication link: source id, ``>``, the title lower-cased and dashed.

    >>> link_id("analyst", "View scores")
    'analyst>view-scores'
    """
    return source + ">" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _mapping(b: Builder, obj: Mapping[str, Any], path: list[str | int], key: str) -> Mapping[str, Any]:
    val = obj.get(key)
    if val is None:
        return {}
    if not isinstance(val, Mapping):
        raise b.fail([*path, key], f"expected a mapping, found {type(val).__name__}")
    return val


def _link(b: Builder, link: Mapping[str, Any], path: list[str | int], flow: rdflib.URIRef, label: str,
          src: rdflib.URIRef, tgt: rdflib.URIRef, system: rdflib.URIRef, data: Mapping[str, rdflib.URIRef],
          *, sent: bool) -> None:
    b.typed(flow, TG.DataFlow, label, str(path[-1]))
    b.add(flow, TG.source, src)
    b.add(flow, TG.target, tgt)
    b.add(flow, TG.partOf, system)
    b.lit(flow, DCT.description, optional(b, link, path, "description", str))
    proto = optional(b, link, path, "protocol", str)
    b.lit(flow, TG.protocol, proto)
    if proto and proto not in _LOCAL:
        b.g.add((flow, rdflib.URIRef(TG.encryptedInTransit), rdflib.Literal(proto in _ENCRYPTED)))
    auth = optional(b, link, path, "authentication", str)
    if auth:
        b.g.add((flow, rdflib.URIRef(TG.authenticated), rdflib.Literal(auth != "none")))
    if auth:
        b.g.add((flow, rdflib.URIRef(TG.multiFactorAuthenticated), rdflib.Literal(auth == "two-factor")))
    for lk, lprop in (("vpn", TG.vpn), ("ip_filtered", TG.ipFiltered), ("readonly", TG.readOnly)):
        bool_attr(b, flow, lprop, link.get(lk))
    if isinstance(link.get("usage"), str):
        b.g.add((flow, rdflib.URIRef(TG.devOps), rdflib.Literal(link["usage"] == "devops")))
    authz = optional(b, link, path, "authorization", str)
    if authz:
        b.g.add((flow, rdflib.URIRef(TG.propagatesUserIdentity), rdflib.Literal(authz == "enduser-identity-propagation")))
        b.g.add((flow, rdflib.URIRef(TG.authorizationEnforced), rdflib.Literal(authz != "none")))
    key = "data_assets_sent" if sent else "data_assets_received"
    for j, did in enumerate(link.get(key) or []):
        if did not in data:
            b.skip(b.fail([*path, key, j], f"no data asset with id {did!r}"))
            continue
        b.add(flow, TG.carries, data[did])
    if sent:
        b.unmapped_keys(link, path, _LINK_MAPPED, "communication-link field with no home (diagram tweaks, tags)")


def _risk_target(risk: Any, assets: Mapping[str, rdflib.URIRef], links: Mapping[str, rdflib.URIRef]) -> rdflib.URIRef | None:
    if not isinstance(risk, Mapping):
        return None
    link = risk.get("most_relevant_communication_link")
    if link and str(link) in links:
        return links[str(link)]
    ta = risk.get("most_relevant_technical_asset")
    return assets.get(str(ta)) if ta else None


def _tracked_target(rest: str, assets: Mapping[str, rdflib.URIRef], links: Mapping[str, rdflib.URIRef]) -> rdflib.URIRef | None:
    parts = [p for p in rest.split("@") if p]
    for p in parts:
        if p in links:
            return links[p]
    for p in parts:
        if p in assets:
            return assets[p]
    return None
