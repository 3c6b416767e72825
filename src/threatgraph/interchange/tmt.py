"""Microsoft Threat Modeling Tool ``.tm7`` files → threatgraph system model.

A ``.tm7`` file is a DataContract XML document. It is parsed with ``defusedxml`` (no DTD, no entity,
no external resource). Each diagram (``DrawingSurfaceList/DrawingSurfaceModel``) holds stencils
(``Borders``: processes ``GE.P``, external interactors ``GE.EI``, data stores ``GE.DS``, border trust
boundaries ``GE.TB.B``, annotations ``GE.A``) and lines (``Lines``: data flows ``GE.DF`` and line trust
boundaries ``GE.TB.L``). The element kind is the stencil's generic type; its standard type (the
template's, e.g. ``SE.DS.TMCore.AzureStorage``) is kept as a label and gives an ML class where it
clearly is one. A border boundary is a trust zone holding the stencils whose centre lies inside it
(the smallest one); a line boundary is crossed by the flows whose drawn curve crosses it. The threats
the tool generated (``ThreatInstances``) become declared threats on their flow with their threat type
id, title, STRIDE category, priority, state and justification.

Template properties that answer a threat type become the attributes the rules test (docs/interchange.md):
authentication of the source and of the destination, confidentiality and integrity of a flow (stated, or
inherited from the SDL flow types HTTP, HTTPS, IPsec), input and output sanitizers, encryption, signing, log
data, credentials and write access of a store, cookies and forgery protection of a flow, and the Azure
template's service settings (TLS enforced, firewall, identity provider, auditing, "Show Boundary Threats").

Bad parts (a stencil without id, a duplicate id, a flow with a loose end, a threat naming no flow) are
reported with their XML path and skipped or attached to a placeholder; the rest imports.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import rdflib
from defusedxml import DefusedXmlException

from threatgraph.errors import InputError
from threatgraph.interchange.common import (
    Builder,
    ImportResult,
    add_system,
    category_iri,
    declared_threat,
    severity_iri,
)
from threatgraph.interchange.mlclasses import MLClasses
from threatgraph.interchange.threatdragon import _crosses
from threatgraph.terms import DCT, TG, TGML

FORMAT = "tmt"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_GENERIC_PATH = "/ThreatModel/DrawingSurfaceList/DrawingSurfaceModel"
_NULL_GUID = "00000000-0000-0000-0000-000000000000"

_KINDS = {"GE.P": "Process", "GE.EI": "ExternalEntity", "GE.DS": "DataStore"}
_GENERIC = ("GE.P", "GE.EI", "GE.DS", "GE.DF", "GE.TB.B", "GE.TB.L", "GE.A")

KNOWN_TYPES: dict[str, str] = {
    # The standard element types of the SDL template "SDL TM Knowledge Base (Core)" 4.1.0.11 and of the
    # "Azure Threat Model Template" 1.0.0.33 → their generic type (ParentId in the template). A stencil
    # whose type is neither here nor in the template embedded in the file is read as its generic type,
    # with a warning.
    "SE.P.TMCore.OSProcess": "GE.P", "SE.P.TMCore.Thread": "GE.P", "SE.P.TMCore.KernelThread": "GE.P",
    "SE.P.TMCore.WinApp": "GE.P", "SE.P.TMCore.NetApp": "GE.P", "SE.P.TMCore.ThickClient": "GE.P",
    "SE.P.TMCore.BrowserClient": "GE.P", "SE.P.TMCore.PlugIn": "GE.P", "SE.P.TMCore.WebServer": "GE.P",
    "SE.P.TMCore.Modern": "GE.P", "SE.P.TMCore.Win32Service": "GE.P", "SE.P.TMCore.WebApp": "GE.P",
    "SE.P.TMCore.WebSvc": "GE.P", "SE.P.TMCore.VM": "GE.P", "SE.P.TMCore.NonMS": "GE.P",
    "SE.EI.TMCore.Browser": "GE.EI", "SE.EI.TMCore.AuthProvider": "GE.EI", "SE.EI.TMCore.WebApp": "GE.EI",
    "SE.EI.TMCore.WebSvc": "GE.EI", "SE.EI.TMCore.User": "GE.EI", "SE.EI.TMCore.Megasevrice": "GE.EI",
    "SE.EI.TMCore.CRT": "GE.EI", "SE.EI.TMCore.NFX": "GE.EI", "SE.EI.TMCore.WinRT": "GE.EI",
    "SE.DS.TMCore.CloudStorage": "GE.DS", "SE.DS.TMCore.SQL": "GE.DS", "SE.DS.TMCore.NoSQL": "GE.DS",
    "SE.DS.TMCore.FS": "GE.DS", "SE.DS.TMCore.Registry": "GE.DS", "SE.DS.TMCore.ConfigFile": "GE.DS",
    "SE.DS.TMCore.Cache": "GE.DS", "SE.DS.TMCore.HTML5LS": "GE.DS", "SE.DS.TMCore.Cookie": "GE.DS",
    "SE.DS.TMCore.Device": "GE.DS",
    "SE.DF.TMCore.HTTP": "GE.DF", "SE.DF.TMCore.HTTPS": "GE.DF", "SE.DF.TMCore.Binary": "GE.DF",
    "SE.DF.TMCore.IPsec": "GE.DF", "SE.DF.TMCore.NamedPipe": "GE.DF", "SE.DF.TMCore.SMB": "GE.DF",
    "SE.DF.TMCore.RPC": "GE.DF", "SE.DF.TMCore.ALPC": "GE.DF", "SE.DF.TMCore.UDP": "GE.DF",
    "SE.DF.TMCore.IOCTL": "GE.DF", "SE.DF.TMCore.Request": "GE.DF", "SE.DF.TMCore.Response": "GE.DF",
    "SE.TB.L.TMCore.Internet": "GE.TB.L", "SE.TB.L.TMCore.Machine": "GE.TB.L", "SE.TB.L.TMCore.Kernel": "GE.TB.L",
    "SE.TB.L.TMCore.AppContainer": "GE.TB.L",
    "SE.TB.B.TMCore.CorpNet": "GE.TB.B", "SE.TB.B.TMCore.Sandbox": "GE.TB.B", "SE.TB.B.TMCore.IEB": "GE.TB.B",
    "SE.TB.B.TMCore.NonIEB": "GE.TB.B",
    # Azure Threat Model Template
    "SE.P.TMCore.AzureDocumentDB": "GE.DS", "SE.DS.TMCore.AzureKeyVault": "GE.DS", "SE.P.TMCore.AzureRedis": "GE.DS",
    "SE.DS.TMCore.AzureStorage": "GE.DS", "SE.DS.TMCore.AzureSQLDB": "GE.DS", "SE.DS.TMCore.AzureSQLDWDB": "GE.DS",
    "SE.DS.TMCore.AzureMySQLDB": "GE.DS", "SE.DS.TMCore.AzurePostgresDB": "GE.DS",
    "SE.EI.TMCore.DynamicsCRMMobileClient": "GE.EI", "SE.EI.TMCore.DynamicsCRMOutlookClient": "GE.EI",
    "SE.EI.TMCore.IoTdevice": "GE.EI", "SE.EI.TMCore.Mobile": "GE.EI",
    "SE.P.TMCore.ADFS": "GE.P", "SE.P.TMCore.AzureAD": "GE.P", "SE.P.TMCore.ADE": "GE.P",
    "SE.P.TMCore.AzureDataFactory": "GE.P", "SE.P.TMCore.AzureEventHub": "GE.P", "SE.P.TMCore.ALA": "GE.P",
    "SE.P.TMCore.AzureML": "GE.P", "SE.P.TMCore.AzureStreamAnalytics": "GE.P", "SE.P.TMCore.AzureTrafficManager": "GE.P",
    "SE.P.TMCore.AzureWebJob": "GE.P", "SE.P.TMCore.DynamicsCRM": "GE.P", "SE.P.TMCore.DynamicsCRMPortal": "GE.P",
    "SE.P.TMCore.Host": "GE.P", "SE.P.TMCore.IdSrv": "GE.P", "SE.GP.TMCore.IoTCloudGateway": "GE.P",
    "SE.GP.TMCore.IoTFieldGateway": "GE.P", "SE.P.TMCore.WCF": "GE.P", "SE.P.TMCore.WebAPI": "GE.P",
    "SE.P.TMCore.AzureAppServiceWebApp": "GE.P", "SE.P.TMCore.AzureAppServiceApiApp": "GE.P",
    "SE.P.TMCore.AzureAppServiceMobileApp": "GE.P",
    "SE.TB.TMCore.AzureIaaSVMTrustBoundary": "GE.TB.B", "SE.TB.TMCore.AzureTrustBoundary": "GE.TB.B",
    "SE.TB.TMCore.IoTCloudGatewayZone": "GE.TB.B", "SE.TB.TMCore.IoTDeviceZone": "GE.TB.B",
    "SE.TB.TMCore.IoTFieldGatewayZone": "GE.TB.B", "SE.TB.TMCore.LocalUserTrustBoundary": "GE.TB.B",
    "SE.TB.TMCore.MachineTrustBoundary": "GE.TB.B", "SE.TB.TMCore.RemoteUserTrustBoundary": "GE.TB.B",
    "SE.TB.TMCore.ServiceFabric": "GE.TB.B",
}

ML_TYPES: dict[str, str] = {
    "SE.P.TMCore.AzureML": TGML.TrainingPipeline,  # Azure Machine Learning: trains and deploys models
}
"""Standard types that are an ML asset class whatever the stencil is named."""

_PROTOCOLS: dict[str, tuple[str, bool | None]] = {
    # data flow standard type → (tg:protocol, tg:encryptedInTransit unless a property states it)
    "SE.DF.TMCore.HTTP": ("HTTP", False), "SE.DF.TMCore.HTTPS": ("HTTPS", True),
    "SE.DF.TMCore.IPsec": ("IPsec", True), "SE.DF.TMCore.SMB": ("SMB", None), "SE.DF.TMCore.RPC": ("RPC", None),
    "SE.DF.TMCore.ALPC": ("ALPC", None), "SE.DF.TMCore.UDP": ("UDP", None),
    "SE.DF.TMCore.NamedPipe": ("named pipe", None), "SE.DF.TMCore.IOCTL": ("IOCTL", None),
}

_FLOW_DEFAULTS: dict[str, dict[str, bool]] = {
    # what the SDL template's flow types inherit (default.tb7: HTTP states No for source and destination
    # authentication and integrity; HTTPS provides integrity and authenticates the destination; IPsec also
    # authenticates the source), each unless a property of the flow states it
    "SE.DF.TMCore.HTTP": {TG.authenticated: False, TG.destinationAuthenticated: False, TG.integrityProtected: False},
    "SE.DF.TMCore.HTTPS": {TG.destinationAuthenticated: True, TG.integrityProtected: True},
    "SE.DF.TMCore.IPsec": {TG.authenticated: True, TG.destinationAuthenticated: True, TG.integrityProtected: True},
}

_BOOL_PROPS: dict[str, str] = {
    # template property (display name, lower case) → boolean attribute; Yes/True → true, No/False → false
    "authenticates itself": TG.authenticated,
    "implements or uses an authentication mechanism": TG.authenticated,
    "implements or uses an authorization mechanism": TG.authorizationEnforced,
    "sanitizes input": TG.inputValidated,
    "sanitizes output": TG.outputEncoded,
    "source authenticated": TG.authenticated,
    "destination authenticated": TG.destinationAuthenticated,
    "provides confidentiality": TG.encryptedInTransit,
    "provides integrity": TG.integrityProtected,
    "encrypted": TG.encryptedAtRest,
    "signed": TG.artifactsSigned,
    "stores log data": TG.holdsLogs,
    "azure sql db tde enabled": TG.encryptedAtRest,
    "azure sql dw db tde enabled": TG.encryptedAtRest,
    "azure sql db auditing enabled": TG.auditLogged,
    "azure sql dw db auditing enabled": TG.auditLogged,
    "azure key vault audit logging enabled": TG.auditLogged,
}
_FIREWALL_OPEN = ("allow access from all networks", "allow access from azure")
"""Azure firewall / network settings that leave a resource reachable by anyone (any network, or any Azure
tenant: anyone who signs up): tg:publiclyExposed true; "Allow access from selected networks" → false."""
_PAYLOADS = {"transmits xml": "xml", "json payload": "json"}
_PARSES = {"processes xml": "xml", "processes json": "json"}
"""Azure template process properties ("Processes XML", "Azure Web App Processes JSON", ...; by their ending) →
tg:acceptsFormat of the process itself."""
_IDENTITY_PROVIDERS = {"adfs", "azure ad"}
"""Azure template Web API "Identity Provider": the API authenticates its callers with tokens from it."""
"""SDL flow properties (TMT names XMLenc, JSON) → the format the flow's target process parses (tg:acceptsFormat),
the fact TMT's T11 "XML DTD and XSLT Processing" and T12 "JavaScript Object Notation Processing" test."""
_CODE_TYPES: dict[str, bool] = {
    # the SDL template's static "Code Type" of its process types (default.tb7): Unmanaged → tg:memoryUnsafe true
    "SE.P.TMCore.KernelThread": True, "SE.P.TMCore.WinApp": True, "SE.P.TMCore.ThickClient": True,
    "SE.P.TMCore.BrowserClient": True, "SE.P.TMCore.Win32Service": True, "SE.P.TMCore.WebApp": True,
    "SE.P.TMCore.WebSvc": True,
    "SE.P.TMCore.NetApp": False, "SE.P.TMCore.WebServer": False, "SE.P.TMCore.Modern": False,
}
"""Applied when the stencil does not carry the attribute (a file saved without its static attributes)."""
_WEB_APPS = {"SE.P.TMCore.WebServer", "SE.P.TMCore.WebApp", "SE.P.TMCore.AzureAppServiceWebApp"}
"""Standard process types that serve browsers: tg:webApplication (the targets of TMT's cross-site scripting)."""
_APIS = {"SE.P.TMCore.WebAPI", "SE.P.TMCore.AzureAppServiceApiApp"}
"""Standard process types that serve an API to programs: tg:servesApi (the targets of the Azure template's TH109)."""
_CLOUD_ACCOUNTS = {"SE.TB.TMCore.AzureTrustBoundary"}
"""Border boundaries that are a cloud subscription: the stencils inside are tg:cloudAccount (TH116, TH117)."""
_NO_FORGERY_PROTECTION = {"none"}
_UNSET = {"", "select", "not selected", "not applicable"}
_TRUE = {"yes", "true"}
_FALSE = {"no", "false"}

_SHAPES = {"StencilEllipse": "GE.P", "StencilRectangle": "GE.EI", "StencilParallelLines": "GE.DS",
           "BorderBoundary": "GE.TB.B", "Connector": "GE.DF", "LineBoundary": "GE.TB.L", "StencilAnnotation": "GE.A"}
"""The stencil classes of the DataContract (``i:type`` of a stencil or line) → the generic type they draw."""

_CATEGORY_LETTERS = {"S": "Spoofing", "T": "Tampering", "R": "Repudiation", "I": "Information Disclosure",
                     "D": "Denial of Service", "E": "Elevation of Privilege"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _kids(e: Element, name: str) -> Iterator[Element]:
    return (c for c in e if _local(c.tag) == name)


def _kid(e: Element, name: str) -> Element | None:
    return next(_kids(e, name), None)


def _text(e: Element | None, name: str | None = None) -> str | None:
    """Text of ``e`` (or of its child ``name``), stripped; None when absent, nil or empty."""
    if e is not None and name is not None:
        e = _kid(e, name)
    if e is None or e.get(_XSI + "nil") == "true":
        return None
    t = (e.text or "").strip()
    return t or None


@dataclass
class _Template:
    name: str | None = None
    elements: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # id → (name, parent)
    threats: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # id → (title, category)
    categories: dict[str, str] = field(default_factory=dict)  # id → name


@dataclass
class _Prop:
    display: str
    value: str | None


def _type_name(value: Element) -> str | None:
    """The stencil type's name as the tool shows it: the first header of its properties ("Web API")."""
    props = _kid(value, "Properties")
    for p in props if props is not None else []:
        if (p.get(_XSI + "type") or "").rsplit(":", 1)[-1] == "HeaderDisplayAttribute":
            return _text(p, "DisplayName")
    return None


def _unnamed(b: Builder, v: Element, epath: str, guid: str, template: _Template, stype: str | None) -> str:
    """Label of a stencil or line drawn without a name: its type's name and the start of its Guid; reported."""
    tname = _type_name(v) or (template.elements.get(stype or "", (None, None))[0] if stype else None)
    label = f"unnamed {tname or 'stencil'} {guid[:8]}"
    _warn(b, epath, f"no Name: labelled {label!r}")
    return label


def _base_type(stype: str | None, template: _Template) -> str | None:
    """The nearest standard type threatgraph knows among ``stype`` and its ancestors in the embedded template
    (a custom template's "Payments API" derived from the Azure template's Web API is read as a Web API)."""
    seen: set[str] = set()
    while stype and stype not in KNOWN_TYPES and stype not in _GENERIC and stype not in seen:
        seen.add(stype)
        stype = template.elements.get(stype, (None, None))[1]
    return stype if stype in KNOWN_TYPES else None


def parse_xml(text: str | bytes, name: str) -> Element:
    """The root element of a ``.tm7`` document, parsed without DTDs, entities or external resources.

    ``bytes`` are decoded by the XML parser (byte-order mark or encoding declaration: UTF-8, UTF-16).
    """
    if isinstance(text, bytes) and text.startswith(b"PK\x03\x04"):
        raise InputError(f"{name}: a zip archive, not a Microsoft Threat Modeling Tool model (a .tm7 file is XML); "
                         "tried: Microsoft Threat Modeling Tool (.tm7)",
                         hint="extract the .tm7 file from the archive, or save the model again from the Threat "
                              "Modeling Tool")
    try:
        root: Element = SafeET.fromstring(text.lstrip("\ufeff") if isinstance(text, str) else text,
                                          forbid_dtd=True)
    except ParseError as err:
        line, col = err.position
        raise InputError(
            f"{name}:{line}:{col + 1}: not valid XML ({str(err).split(':')[0]}); tried: Microsoft Threat Modeling "
            "Tool (.tm7)",
            hint="the file is damaged or truncated: save the model again from the Threat Modeling Tool",
        ) from err
    except DefusedXmlException as err:
        raise InputError(
            f"{name}: a Threat Modeling Tool file never declares a DTD or entities; refused ({type(err).__name__})",
            hint="save the model again from the Threat Modeling Tool",
        ) from err
    if _local(root.tag) != "ThreatModel":
        raise InputError(f"{name}: /{_local(root.tag)}: not a Microsoft Threat Modeling Tool model (the root "
                         "element of a .tm7 file is ThreatModel)",
                         hint="open the file in the Threat Modeling Tool and save it as a .tm7 model")
    return root


def convert_text(text: str | bytes, name: str, *, ml: MLClasses | None = None) -> ImportResult:
    """Convert the XML text (or the bytes) of a ``.tm7`` file (``ml``: the ML phrase table, default the shipped one)."""
    return convert(parse_xml(text, name), name, ml=ml)


def convert(root: Element, name: str, *, ml: MLClasses | None = None) -> ImportResult:
    """Convert a parsed ``.tm7`` document."""
    meta = _kid(root, "MetaInformation")
    title = _text(meta, "ThreatModelName") if meta is not None else None
    surfaces = _kid(root, "DrawingSurfaceList")
    if surfaces is None:
        raise InputError(f"{name}: tmt: /ThreatModel/DrawingSurfaceList: missing: the file has no diagram",
                         hint="save the model again from the Threat Modeling Tool")
    # IRIs must not depend on the file's name or place: the model name, else the first diagram's Guid
    first = _kid(surfaces, "DrawingSurfaceModel")
    project = title or (_text(first, "Guid") if first is not None else None) or "tmt-model"
    b = Builder(FORMAT, name, project, ml=ml)
    system = add_system(b, title or "Threat Modeling Tool model",
                        _text(meta, "HighLevelSystemDescription") if meta is not None else None, project)
    if meta is not None:
        for key in ("Owner", "Reviewer", "Contributors", "Assumptions", "ExternalDependencies"):
            if _text(meta, key):
                b.unmapped(f"/ThreatModel/MetaInformation/{key}", "model metadata with no home")
    template = _read_template(_kid(root, "KnowledgeBase"))
    if template.name:
        b.lit(system, DCT.source, f"Microsoft Threat Modeling Tool template: {template.name}")
    flows: dict[str, rdflib.URIRef] = {}
    elements: dict[str, rdflib.URIRef] = {}
    n_items = 0
    for di, surface in enumerate(_kids(surfaces, "DrawingSurfaceModel"), start=1):
        n_items += _diagram(b, surface, f"/ThreatModel/DrawingSurfaceList/DrawingSurfaceModel[{di}]", system,
                            template, elements, flows)
    if n_items == 0:
        raise InputError(f"{name}: tmt: /ThreatModel/DrawingSurfaceList: no usable process, external interactor, "
                         "data store or data flow in any diagram", hint="draw the system in the Threat Modeling Tool")
    threats = _kid(root, "ThreatInstances")
    if threats is not None:
        _threats(b, threats, template, elements, flows)
    return b.result()


def _read_template(kb: Element | None) -> _Template:
    t = _Template(categories=dict(_CATEGORY_LETTERS))
    if kb is None:
        return t
    manifest = _kid(kb, "Manifest")
    if manifest is not None:
        nm, ver = _text(manifest, "Name"), _text(manifest, "Version")
        t.name = f"{nm} {ver}" if nm and ver else nm
    for sect in ("GenericElements", "StandardElements"):
        s = _kid(kb, sect)
        for et in s if s is not None else []:
            eid = _text(et, "Id")
            if eid:
                t.elements[eid] = (_text(et, "Name"), _text(et, "ParentId"))
    cats = _kid(kb, "ThreatCategories")
    for c in cats if cats is not None else []:
        cid, cname = _text(c, "Id"), _text(c, "Name")
        if cid and cname:
            t.categories[cid] = cname
    types = _kid(kb, "ThreatTypes")
    for tt in types if types is not None else []:
        tid = _text(tt, "Id")
        if tid:
            t.threats[tid] = (_text(tt, "ShortTitle"), _text(tt, "Category"))
    return t


def _props(value: Element) -> list[_Prop]:
    out: list[_Prop] = []
    props = _kid(value, "Properties")
    for p in props if props is not None else []:
        kind = (p.get(_XSI + "type") or "").rsplit(":", 1)[-1]
        display = _text(p, "DisplayName") or ""
        if kind == "HeaderDisplayAttribute":
            continue
        val = _kid(p, "Value")
        if kind in ("ListDisplayAttribute", "StaticListDisplayAttribute") and val is not None:
            # a static attribute is the template's fixed value for the stencil type (e.g. an HTTPS flow's
            # "Provides Confidentiality: Yes", an external web service's "Authenticates Itself: Not Applicable")
            options = [(o.text or "").strip() for o in val]
            idx = _text(p, "SelectedIndex")
            sel = options[int(idx)] if idx is not None and idx.isdigit() and int(idx) < len(options) else None
            out.append(_Prop(display, sel))
        else:
            out.append(_Prop(display, _text(val)))
    return out


def _geometry(b: Builder, v: Element, path: str) -> tuple[float, float, float, float] | None:
    """The stencil's drawn box (left, top, right, bottom); None when it has no (numeric) Left and Top."""
    if _text(v, "Left") is None or _text(v, "Top") is None:
        return None
    try:
        left, top = float(_text(v, "Left") or "0"), float(_text(v, "Top") or "0")
        w, h = float(_text(v, "Width") or "0"), float(_text(v, "Height") or "0")
    except ValueError:
        _warn(b, path, "Left/Top/Width/Height is not a number; the stencil is imported without a trust zone")
        return None
    return (left, top, left + w, top + h)


def _warn(b: Builder, path: str, msg: str) -> None:
    text = f"{b.name}: {FORMAT}: {path}: {msg}"
    if text not in b.warnings:
        b.warnings.append(text)


def _entries(b: Builder, parent: Element | None, path: str, section: str,
             seen: set[str]) -> Iterator[tuple[str, Element, str]]:
    """(guid, Value element, XML path) of each ``KeyValueOfguidanyType`` entry; bad ones reported and skipped."""
    if parent is None:
        return
    for i, kv in enumerate(parent, start=1):
        epath = f"{path}/{section}/{_local(kv.tag)}[{i}]"
        v = _kid(kv, "Value")
        if v is None:
            _warn(b, epath, "entry without a Value (skipped)")
            continue
        guid = _text(v, "Guid") or _text(kv, "Key")
        if not guid:
            _warn(b, epath, "stencil or line without a Guid (skipped)")
            continue
        if guid in seen:
            _warn(b, epath, f"duplicate Guid {guid!r} (skipped; the first one is kept)")
            continue
        seen.add(guid)
        yield guid, v, epath


def _diagram(b: Builder, surface: Element, path: str, system: rdflib.URIRef, template: _Template,
             elements: dict[str, rdflib.URIRef], flows: dict[str, rdflib.URIRef]) -> int:
    dguid = _text(surface, "Guid") or path
    dname = next((p.value for p in _props(surface) if p.display == "Name" and p.value), None)
    n = 0
    seen: set[str] = set(elements) | set(flows)
    boxes: list[tuple[rdflib.URIRef, float, float, float, float]] = []
    clouds: list[tuple[float, float, float, float]] = []
    centres: dict[str, tuple[float, float]] = {}
    names: dict[str, str] = {}
    local: list[str] = []
    epaths: dict[str, str] = {}
    tls: set[rdflib.URIRef] = set()
    selfauth: set[rdflib.URIRef] = set()
    readonly: set[rdflib.URIRef] = set()
    for guid, v, epath in _entries(b, _kid(surface, "Borders"), path, "Borders", seen):
        generic, stype = _types(b, v, epath, template)
        base = _base_type(stype, template)
        props = _props(v)
        label = next((p.value for p in props if p.display == "Name" and p.value), None)
        geo = _geometry(b, v, epath)
        if generic == "GE.TB.B":
            zone = b.iri(guid)
            b.typed(zone, TG.TrustZone, label or _type_name(v) or "Trust border boundary", guid)
            if geo is not None:
                boxes.append((zone, *geo))
                if base in _CLOUD_ACCOUNTS:
                    clouds.append(geo)
            else:
                _warn(b, epath, "border boundary without Left/Top: no stencil can be placed inside it")
            continue
        if generic == "GE.A":
            b.unmapped(_GENERIC_PATH + "/Borders/*/Value[GE.A]", "free text annotation on the diagram (no home)")
            continue
        if generic not in _KINDS:
            _warn(b, epath, f"stencil of generic type {generic!r} is not a process, external interactor, data store "
                  "or border boundary (skipped)")
            continue
        kind = _KINDS[generic]
        node = b.iri(guid)
        elements[guid] = node
        shown_as = label or _unnamed(b, v, epath, guid, template, stype)
        names[guid] = shown_as
        local.append(guid)
        epaths[guid] = epath
        b.typed(node, TG[kind], shown_as, guid)
        b.add(node, TG.partOf, system)
        _standard(b, node, stype, template)
        if kind == "Process" and base in _WEB_APPS:
            b.g.add((node, rdflib.URIRef(TG.webApplication), rdflib.Literal(True)))
        if kind == "Process" and base in _APIS:
            b.g.add((node, rdflib.URIRef(TG.servesApi), rdflib.Literal(True)))
        # ML class: from the standard type, else from words in the stencil's name or its template type's name
        # (a custom template's "Vector Database" stencil is a tgml:VectorStore)
        tname = template.elements.get(stype or "", (None, None))[0] if stype else None
        b.ml_class(node, kind, [("name", label), ("stencil type", tname)], epath, given=ML_TYPES.get(base or ""))
        _attributes(b, node, kind, props, _GENERIC_PATH + "/Borders/*/Value/Properties", guid, tls=tls,
                    readonly=readonly)
        if kind == "Process" and base in _CODE_TYPES and (node, rdflib.URIRef(TG.memoryUnsafe), None) not in b.g:
            b.g.add((node, rdflib.URIRef(TG.memoryUnsafe), rdflib.Literal(_CODE_TYPES[base])))
        if kind == "ExternalEntity" and (node, rdflib.URIRef(TG.authenticated), rdflib.Literal(True)) in b.g:
            selfauth.add(node)  # "Authenticates Itself: Yes": every flow it sends authenticates its source
        if geo is not None:
            centres[guid] = ((geo[0] + geo[2]) / 2, (geo[1] + geo[3]) / 2)
        n += 1

    if boxes:
        outside = b.iri(dguid, "outside-boundaries")
        used = False
        for guid in local:
            c = centres.get(guid)
            if c is None:
                _warn(b, epaths[guid], "stencil without Left/Top: placed outside all trust border "
                      "boundaries")
            inside = [bx for bx in boxes if c and bx[1] <= c[0] <= bx[3] and bx[2] <= c[1] <= bx[4]]
            if inside:
                zone = min(inside, key=lambda bx: (bx[3] - bx[1]) * (bx[4] - bx[2]))[0]
            else:
                zone, used = outside, True
            b.add(elements[guid], TG.inZone, zone)
            if c and any(x0 <= c[0] <= x1 and y0 <= c[1] <= y1 for x0, y0, x1, y1 in clouds):
                # drawn inside an Azure Trust Boundary (however nested): a resource of the subscription
                b.g.add((elements[guid], rdflib.URIRef(TG.cloudAccount), rdflib.Literal(True)))
        if used:
            b.typed(outside, TG.TrustZone, f"Outside all trust border boundaries ({dname or 'diagram'})", None)

    lines = list(_entries(b, _kid(surface, "Lines"), path, "Lines", seen))
    curves: list[list[tuple[float, float]]] = []
    for guid, v, epath in lines:
        generic, _ = _types(b, v, epath, template)
        if generic == "GE.TB.L":
            node = b.iri(guid)
            label = next((p.value for p in _props(v) if p.display == "Name" and p.value), None)
            b.typed(node, TG.TrustBoundary, label or "Trust line boundary", guid)
            curve = _curve(v)
            if curve is None:
                _warn(b, epath, "line boundary without numeric SourceX/SourceY/TargetX/TargetY: no flow crosses it")
            else:
                curves.append(curve)
    for guid, v, epath in lines:
        generic, stype = _types(b, v, epath, template)
        if generic == "GE.TB.L":
            continue
        if generic != "GE.DF":
            _warn(b, epath, f"line of generic type {generic!r} is not a data flow or line boundary (skipped)")
            continue
        base = _base_type(stype, template)
        props = _props(v)
        label = next((p.value for p in props if p.display == "Name" and p.value), None) or \
            _unnamed(b, v, epath, guid, template, stype)
        ends = []
        for key in ("SourceGuid", "TargetGuid"):
            ref = _text(v, key)
            if ref and ref != _NULL_GUID and ref in elements:
                ends.append(ref)
                continue
            role = "source" if key == "SourceGuid" else "target"
            ph = f"{guid}#{role}"
            if ph not in elements:
                elements[ph] = b.iri(guid, role)
                names[ph] = f"unnamed {role} of {label}"
                b.typed(elements[ph], TG.ExternalEntity, names[ph], None)
                b.add(elements[ph], TG.partOf, system)
            what = f"names no stencil ({ref!r})" if ref and ref != _NULL_GUID else "is not connected"
            _warn(b, f"{epath}/Value/{key}", f"the flow's {role} {what}; attached to a placeholder external "
                  f"element {names[ph]!r}")
            ends.append(ph)
        node = b.iri(guid)
        flows[guid] = node
        b.typed(node, TG.DataFlow, label, guid)
        b.add(node, TG.source, elements[ends[0]])
        b.add(node, TG.target, elements[ends[1]])
        b.add(node, TG.partOf, system)
        proto = _PROTOCOLS.get(base or "")
        if proto:
            b.lit(node, TG.protocol, proto[0])
        _standard(b, node, stype, template)
        _attributes(b, node, "DataFlow", props, _GENERIC_PATH + "/Lines/*/Value/Properties", guid,
                    target=elements[ends[1]])
        if elements[ends[0]] in selfauth and (node, rdflib.URIRef(TG.authenticated), None) not in b.g:
            # TMT's S3 excludes "source.authenticatesItself is 'Yes' or flow.authenticatesSource is 'Yes'":
            # either one authenticates the sender (before the flow type's inherited "No")
            b.g.add((node, rdflib.URIRef(TG.authenticated), rdflib.Literal(True)))
        if elements[ends[1]] in readonly and (node, rdflib.URIRef(TG.readOnly), None) not in b.g:
            # the store grants no write access ("Write Access: No"): a flow into it only reads
            b.g.add((node, rdflib.URIRef(TG.readOnly), rdflib.Literal(True)))
        # a service that refuses unencrypted connections (TLS / HTTPS enforced, WCF transport or message
        # security) is the TLS server of its flows: integrity-protected, the server's identity verified (the
        # destination of a flow into it, the sender of a flow out of it); before the flow type's defaults
        served: dict[str, bool] = {}
        if elements[ends[0]] in tls or elements[ends[1]] in tls:
            served = {TG.integrityProtected: True, TG.encryptedInTransit: True}
            served[TG.destinationAuthenticated if elements[ends[1]] in tls else TG.authenticated] = True
        for attr, value in [*served.items(), *_FLOW_DEFAULTS.get(base or "", {}).items()]:
            if (node, rdflib.URIRef(attr), None) not in b.g:
                b.g.add((node, rdflib.URIRef(attr), rdflib.Literal(value)))
        stated = (node, rdflib.URIRef(TG.encryptedInTransit), None) in b.g
        if not stated and proto and proto[1] is not None:
            b.g.add((node, rdflib.URIRef(TG.encryptedInTransit), rdflib.Literal(proto[1])))
        flow_curve = _curve(v)
        shown = next((p.value for p in props if p.display.strip().lower() == "show boundary threats"), None)
        if (shown or "").strip().lower() == "no":
            # the author turned the boundary threats of this flow off (the Azure template's "Show Boundary
            # Threats: No", which every boundary threat type of that template excludes): not a crossing
            pass
        elif flow_curve is not None and any(_crosses_curve(flow_curve, c) for c in curves):
            b.add(node, TG.crossesBoundary, rdflib.Literal(True))
        n += 1
    return n


def _types(b: Builder, v: Element, epath: str, template: _Template) -> tuple[str, str | None]:
    """(generic type, standard type) of a stencil or line; an unknown standard type is read as its generic one."""
    generic = _text(v, "GenericTypeId")
    stype = _text(v, "TypeId")
    parent = (template.elements.get(stype or "", (None, None))[1]) or KNOWN_TYPES.get(stype or "")
    if generic not in _GENERIC:
        generic = parent if parent in _GENERIC else generic
        if generic not in _GENERIC and stype:
            generic = next((g for g in _GENERIC if stype.startswith("SE." + g[3:] + ".")), generic)
        if generic not in _GENERIC:
            # no generic type, and a custom type id (a GUID) the file's template does not define: the shape the
            # tool draws it with is its kind (an ellipse is a process, a rectangle an external interactor, ...)
            shape = _SHAPES.get((v.get(_XSI + "type") or "").rsplit(":", 1)[-1])
            if shape is not None:
                _warn(b, f"{epath}/Value/GenericTypeId", f"no generic type: read as {shape!r}, from the shape "
                      f"{v.get(_XSI + 'type')!r} the tool draws it with")
                generic = shape
    if stype and stype != generic and stype not in template.elements and stype not in KNOWN_TYPES:
        _warn(b, f"{epath}/Value/TypeId", f"unknown stencil type {stype!r}: read as its generic type {generic!r}")
        stype = None
    return str(generic), stype


def _standard(b: Builder, node: rdflib.URIRef, stype: str | None, template: _Template) -> None:
    """The template's type of the element, as a description of what it is (``dct:type``)."""
    if stype and stype not in _GENERIC:
        tname = template.elements.get(stype, (None, None))[0]
        b.lit(node, DCT.type, f"{tname} ({stype})" if tname else stype)


def _attributes(b: Builder, node: rdflib.URIRef, kind: str, props: list[_Prop], ppath: str, guid: str,
                tls: set[rdflib.URIRef] | None = None, target: rdflib.URIRef | None = None,
                readonly: set[rdflib.URIRef] | None = None) -> None:
    """Template properties → attributes. ``tls`` collects the elements that refuse unencrypted connections (their
    flows are encrypted in transit); ``target`` is a flow's target (the parser of the payload it carries);
    ``readonly`` collects the data stores that grant no write access (flows into them only read)."""
    cookieless = False
    for p in props:
        key = p.display.strip().lower()
        val = (p.value or "").strip()
        if key == "name":
            continue
        if key == "out of scope":
            if val.lower() in _TRUE | _FALSE:
                b.g.add((node, rdflib.URIRef(TG.outOfScope), rdflib.Literal(val.lower() in _TRUE)))
            continue
        if key == "reason for out of scope":
            b.lit(node, TG.outOfScopeReason, val or None)
            continue
        if val.lower() in _UNSET:
            continue
        prop = _BOOL_PROPS.get(key)
        if key == "encrypted" and kind == "DataFlow":
            prop = TG.encryptedInTransit
        if prop and val.lower() in _TRUE | _FALSE:
            b.g.add((node, rdflib.URIRef(prop), rdflib.Literal(val.lower() in _TRUE)))
        elif key == "forgery protection" and kind == "DataFlow":
            # a named protection (anti-forgery token, nonce, canary, header, ...) or "None"
            if not val.lower().startswith("not applicable"):
                b.g.add((node, rdflib.URIRef(TG.csrfProtected), rdflib.Literal(val.lower() not in _NO_FORGERY_PROTECTION)))
        elif key == "stores credentials" and kind == "DataStore" and val.lower() in _TRUE | _FALSE:
            b.g.add((node, rdflib.URIRef(TG.storesCredentials), rdflib.Literal(val.lower() in _TRUE)))
            if val.lower() in _TRUE:
                asset = b.iri(guid, "credentials")
                b.typed(asset, TG.DataAsset, "Credentials", None)
                b.add(asset, TG.classification, rdflib.URIRef(TG.Confidential))
                b.add(node, TG.holds, asset)
        elif key == "https enforced" or key.endswith("tls enforced"):
            # the Azure template's "HTTPS Enforced" (Storage), "... TLS Enforced" (MySQL, PostgreSQL, Redis):
            # the service refuses plaintext connections, so every flow to or from it is encrypted in transit
            if val.lower() in _TRUE and tls is not None:
                tls.add(node)
            elif val.lower() not in _TRUE | _FALSE:
                b.unmapped(f"{ppath}/{p.display}", "template property with no threatgraph attribute")
        elif key.endswith("firewall settings") or key == "network security":
            # Azure network restriction of a service: open to all networks (or all of Azure) = publicly exposed
            low = val.lower()
            if low.startswith(_FIREWALL_OPEN) or low.startswith("allow access from selected"):
                b.g.add((node, rdflib.URIRef(TG.publiclyExposed), rdflib.Literal(low.startswith(_FIREWALL_OPEN))))
            elif low.startswith("allow access from selective"):
                b.g.add((node, rdflib.URIRef(TG.publiclyExposed), rdflib.Literal(False)))
            else:
                b.unmapped(f"{ppath}/{p.display}", "template property with no threatgraph attribute")
        elif key == "authenticating to key vault":
            # a managed identity or a principal with certificate or secret: callers are authenticated
            b.g.add((node, rdflib.URIRef(TG.authenticated), rdflib.Literal(True)))
        elif key in _PAYLOADS and kind == "DataFlow" and val.lower() in _TRUE | _FALSE:
            if val.lower() in _TRUE and target is not None and (target, rdflib.RDF.type, rdflib.URIRef(TG.Process)) in b.g:
                b.lit(target, TG.acceptsFormat, _PAYLOADS[key])
        elif key.endswith(tuple(_PARSES)) and kind == "Process" and val.lower() in _TRUE | _FALSE:
            if val.lower() in _TRUE:
                b.lit(node, TG.acceptsFormat, _PARSES[next(k for k in _PARSES if key.endswith(k))])
        elif key == "identity provider" and kind == "Process":
            # the Web API accepts only tokens from this identity provider: its callers are authenticated
            if val.lower() in _IDENTITY_PROVIDERS:
                b.g.add((node, rdflib.URIRef(TG.authenticated), rdflib.Literal(True)))
            else:
                b.unmapped(f"{ppath}/{p.display}", "template property with no threatgraph attribute")
        elif key == "client credential type" and kind == "Process":
            # WCF: the credential its clients present; "None" = anonymous callers
            b.g.add((node, rdflib.URIRef(TG.authenticated), rdflib.Literal(val.lower() != "none")))
        elif key in ("security mode", "protection level") and kind == "Process":
            # WCF transport or message security, or messages encrypted and signed: its flows are protected
            if val.lower() in ("transport", "message") or val.lower().startswith("encryptandsign"):
                if tls is not None:
                    tls.add(node)
            elif val.lower() != "none":
                b.unmapped(f"{ppath}/{p.display}", "template property with no threatgraph attribute")
        elif key.startswith("nw level access control config for") and kind == "Process":
            # Logic Apps network access control: any IP inbound = publicly exposed; IP ranges or other Logic
            # Apps only = filtered
            low = val.lower()
            if low.startswith("allow any ip"):
                b.g.add((node, rdflib.URIRef(TG.publiclyExposed), rdflib.Literal(True)))
            elif low.startswith(("allow only", "allow specific", "specific ip")):
                b.g.add((node, rdflib.URIRef(TG.ipFiltered), rdflib.Literal(True)))
                if key.endswith("triggers"):
                    b.g.add((node, rdflib.URIRef(TG.publiclyExposed), rdflib.Literal(False)))
            elif low != "none":
                b.unmapped(f"{ppath}/{p.display}", "template property with no threatgraph attribute")
        elif key == "show boundary threats" and kind == "DataFlow":
            continue  # read with the flow's crossing
        elif key == "write access" and kind == "DataStore" and val.lower() in _TRUE | _FALSE:
            if val.lower() in _FALSE and readonly is not None:
                readonly.add(node)
        elif key == "contains cookies" and kind == "DataFlow" and val.lower() in _TRUE | _FALSE:
            # a request without cookies carries no ambient credential a forged cross-site request could reuse
            cookieless = val.lower() in _FALSE
        elif key == "code type" and kind == "Process" and val.lower() in ("managed", "unmanaged"):
            # TMT's T2 "Process Memory Tampered" is generated on flows into a process whose code is unmanaged
            b.g.add((node, rdflib.URIRef(TG.memoryUnsafe), rdflib.Literal(val.lower() == "unmanaged")))
        elif key == "dataflow order":
            b.unmapped(f"{ppath}/Dataflow Order", "drawing order of the tool (no home)")
        else:
            b.unmapped(f"{ppath}/{p.display}", "template property with no threatgraph attribute")
    if cookieless:
        b.g.set((node, rdflib.URIRef(TG.csrfProtected), rdflib.Literal(True)))


def tmt_properties(b: Builder, node: rdflib.URIRef, kind: str, props: object, ppath: str, guid: str,
                   tls: set[rdflib.URIRef] | None = None, target: rdflib.URIRef | None = None) -> None:
    """Threat Modeling Tool properties given as a JSON object (``{"Sanitizes Input": "Yes", ...}``, the way
    StartLeft's conversion of a ``.tm7`` file to OTM keeps them) → the attributes a ``.tm7`` stencil's
    properties give; values that are not text, numbers or booleans are reported."""
    if not isinstance(props, dict):
        b.unmapped(ppath, "properties that are not an object of names and values")
        return
    plist: list[_Prop] = []
    for key, value in props.items():
        if isinstance(value, bool):
            plist.append(_Prop(str(key), "true" if value else "false"))
        elif isinstance(value, (str, int, float)):
            plist.append(_Prop(str(key), str(value)))
        else:
            b.unmapped(f"{ppath}/{key}", "property value that is not text, a number or a boolean")
    _attributes(b, node, kind, plist, ppath, guid, tls=tls, target=target)


def _num(v: Element, name: str) -> float | None:
    t = _text(v, name)
    try:
        return float(t) if t is not None else None
    except ValueError:
        return None


def _curve(v: Element, steps: int = 16) -> list[tuple[float, float]] | None:
    """The drawn line of a flow or line boundary: the quadratic curve from Source to Target through Handle."""
    sx, sy, tx, ty = (_num(v, k) for k in ("SourceX", "SourceY", "TargetX", "TargetY"))
    if sx is None or sy is None or tx is None or ty is None:
        return None
    hx, hy = _num(v, "HandleX"), _num(v, "HandleY")
    if hx is None or hy is None:
        return [(sx, sy), (tx, ty)]
    # the handle lies on the curve at t = 1/2, so the control point is 2·H − (S + T)/2
    cx, cy = 2 * hx - (sx + tx) / 2, 2 * hy - (sy + ty) / 2
    pts = []
    for i in range(steps + 1):
        t = i / steps
        a, m, c = (1 - t) ** 2, 2 * (1 - t) * t, t * t
        pts.append((a * sx + m * cx + c * tx, a * sy + m * cy + c * ty))
    return pts


def _crosses_curve(flow: list[tuple[float, float]], boundary: list[tuple[float, float]]) -> bool:
    """Whether the flow's curve crosses the boundary's curve an odd number of times.

    >>> _crosses_curve([(0, 0), (10, 0)], [(5, -5), (5, 5)])
    True
    >>> _crosses_curve([(0, 0), (4, 0)], [(5, -5), (5, 5)])
    False
    """
    hits = sum(1 for p, q in pairwise(flow) if _crosses(p, q, boundary))
    return hits % 2 == 1


def _threats(b: Builder, threats: Element, template: _Template, elements: dict[str, rdflib.URIRef],
             flows: dict[str, rdflib.URIRef]) -> None:
    seen: set[str] = set()
    for i, kv in enumerate(threats, start=1):
        tpath = f"/ThreatModel/ThreatInstances/{_local(kv.tag)}[{i}]"
        v = _kid(kv, "Value")
        key = _text(kv, "Key")
        if v is None or not key:
            _warn(b, tpath, "threat instance without Key or Value (skipped)")
            continue
        if key in seen:
            _warn(b, tpath, f"duplicate threat instance key {key!r} (skipped; the first one is kept)")
            continue
        seen.add(key)
        props: dict[str, str] = {}
        pe = _kid(v, "Properties")
        for kvp in pe if pe is not None else []:
            pk, pv = _text(kvp, "Key"), _text(kvp, "Value")
            if pk and pv:
                props[pk] = pv
        flow_guid, target = _text(v, "FlowGuid"), _text(v, "TargetGuid")
        node = flows.get(flow_guid or "") or elements.get(target or "")
        if node is None:
            _warn(b, f"{tpath}/Value/FlowGuid", f"threat names no imported flow ({flow_guid!r}) or element (skipped)")
            continue
        ttype = _text(v, "TypeId")
        ttitle, tcat = template.threats.get(ttype or "", (None, None))
        title = props.get("Title") or _text(v, "Title") or ttitle
        cat_word = props.get("UserThreatCategory") or _text(v, "UserThreatCategory") or \
            (template.categories.get(tcat) if tcat else None)
        cat = category_iri(cat_word) if cat_word else None
        if cat_word and cat is None:
            b.unmapped("/ThreatModel/ThreatInstances/*/Value/Properties/UserThreatCategory",
                       f"threat category {cat_word!r} is not a STRIDE category")
        prio = props.get("Priority") or _text(v, "Priority")
        declared_threat(
            b, node, b.iri("threat", key),
            title=title,
            description=props.get("UserThreatDescription") or _text(v, "UserThreatDescription"),
            category=cat,
            severity=severity_iri(prio) if prio else None,
            status=_text(v, "State"),
            mitigation=_text(v, "StateInformation"),
            ident=ttype,
        )
        if props.get("PossibleMitigations"):
            b.unmapped("/ThreatModel/ThreatInstances/*/Value/Properties/PossibleMitigations",
                       "the template's suggested mitigations (not the team's; no home)")
