"""A Microsoft Threat Modeling Tool model drawn with every stencil of the default SDL template (issue 13).

The hidden models threatgraph is scored on are ``.tm7`` files people made with the tool, most with its
default template "SDL TM Knowledge Base (Core)". No public triaged model of that template was found, so this
writes one the way the tool saves it: every standard process (15), external interactor (9) and data store (10)
type of the template (``mtmt/sdl-core-4.1.0.11.threat-types.json`` in the shared formats), the processes and
stores inside a corporate-network border boundary and the interactors outside it, and 63 flows cycling
through the template's 12 flow types (interactor → process and back across the boundary, process → store,
store → process, process → process). Each stencil carries the properties a new stencil has (the template's
first option: "Not Selected", "Not Applicable"), the process types their static "Code Type" (Unmanaged for
native applications, threads, web applications, ...), and the HTTP, HTTPS and IPsec flows the template's static
attributes ("Provides Confidentiality: Yes", ...), as ``StaticListDisplayAttribute`` entries.

``bench/fidelity.py`` reads it like any ``.tm7``; it holds no threat instances, so only the SDL-generation
figures (``sdl``, ``r-sdl``: the pairs TMT's generation filters give on it, and the share threatgraph raises on
the flow) are measured. Usage: ``python bench/sdl_all_stencils.py OUT.tm7`` (or ``build(types_json)``).
"""

from __future__ import annotations

import itertools
import json
import sys
import uuid
from pathlib import Path

ABS = 'xmlns="http://schemas.datacontract.org/2004/07/ThreatModeling.Model.Abstracts"'
KB = 'xmlns:b="http://schemas.datacontract.org/2004/07/ThreatModeling.KnowledgeBase"'
CODE_TYPE = {  # default.tb7: the static "Code Type" of the SDL template's process types
    "SE.P.TMCore.KernelThread": "Unmanaged", "SE.P.TMCore.WinApp": "Unmanaged", "SE.P.TMCore.NetApp": "Managed",
    "SE.P.TMCore.ThickClient": "Unmanaged", "SE.P.TMCore.BrowserClient": "Unmanaged",
    "SE.P.TMCore.WebServer": "Managed", "SE.P.TMCore.Modern": "Managed", "SE.P.TMCore.Win32Service": "Unmanaged",
    "SE.P.TMCore.WebApp": "Unmanaged", "SE.P.TMCore.WebSvc": "Unmanaged",
}
STATIC = {  # default.tb7: the static attributes of the SDL template's flow types
    "SE.DF.TMCore.HTTP": [("Source Authenticated", "No"), ("Destination Authenticated", "No"),
                          ("Provides Confidentiality", "No"), ("Provides Integrity", "No")],
    "SE.DF.TMCore.HTTPS": [("Destination Authenticated", "Yes"), ("Provides Confidentiality", "Yes"),
                           ("Provides Integrity", "Yes")],
    "SE.DF.TMCore.IPsec": [("Source Authenticated", "Yes"), ("Destination Authenticated", "Yes"),
                           ("Provides Confidentiality", "Yes"), ("Provides Integrity", "Yes")],
}


def _guid(i: int) -> str:
    return str(uuid.UUID(int=i))


def _props(header: str, name: str, extra: str = "") -> str:
    return (f'<Properties {ABS}><a:anyType i:type="b:HeaderDisplayAttribute" {KB}><b:DisplayName>{header}'
            '</b:DisplayName><b:Name/><b:Value i:nil="true"/></a:anyType>'
            f'<a:anyType i:type="b:StringDisplayAttribute" {KB}><b:DisplayName>Name</b:DisplayName><b:Name/>'
            f'<b:Value i:type="c:string" xmlns:c="http://www.w3.org/2001/XMLSchema">{name}</b:Value></a:anyType>'
            f'<a:anyType i:type="b:BooleanDisplayAttribute" {KB}><b:DisplayName>Out Of Scope</b:DisplayName>'
            '<b:Name>71f3d9aa-b8ef-4e54-8126-607a1d903103</b:Name><b:Value i:type="c:boolean" '
            'xmlns:c="http://www.w3.org/2001/XMLSchema">false</b:Value></a:anyType>'
            f"{extra}</Properties>")


def _list(display: str, options: list[str], index: int = 0, static: bool = False) -> str:
    kind = "StaticListDisplayAttribute" if static else "ListDisplayAttribute"
    return (f'<a:anyType i:type="b:{kind}" {KB}><b:DisplayName>{display}</b:DisplayName><b:Name>x</b:Name>'
            '<b:Value i:type="a:ArrayOfstring">' + "".join(f"<a:string>{o}</a:string>" for o in options)
            + f"</b:Value><b:SelectedIndex>{index}</b:SelectedIndex></a:anyType>")


def build(types_json: Path) -> str:
    """The ``.tm7`` XML text."""
    std = json.loads(types_json.read_text(encoding="utf-8"))["standard_elements"]
    kinds = {g: [e for e in std if e["parent"] == g] for g in ("GE.P", "GE.EI", "GE.DS", "GE.DF")}
    borders: list[str] = []
    lines: list[str] = []
    centre: dict[str, tuple[float, float]] = {}
    ids = itertools.count(2)

    def stencil(guid: str, generic: str, tid: str, header: str, name: str, x: int, y: int, size: int = 100,
                shape: str = "StencilEllipse", extra: str = "") -> None:
        borders.append(
            f'<a:KeyValueOfguidanyType><a:Key>{guid}</a:Key><a:Value z:Id="i{next(ids)}" i:type="{shape}">'
            f"<GenericTypeId {ABS}>{generic}</GenericTypeId><Guid {ABS}>{guid}</Guid>" + _props(header, name, extra)
            + f"<TypeId {ABS}>{tid}</TypeId><Height {ABS}>{size}</Height><Left {ABS}>{x}</Left><Top {ABS}>{y}</Top>"
            f"<Width {ABS}>{size}</Width></a:Value></a:KeyValueOfguidanyType>")
        centre[guid] = (x + size / 2, y + size / 2)

    stencil(_guid(1), "GE.TB.B", "SE.TB.B.TMCore.CorpNet", "CorpNet Trust Boundary", "Corporate network", 1000, 0,
            size=3000, shape="BorderBoundary")
    placed: dict[str, list[str]] = {"GE.P": [], "GE.EI": [], "GE.DS": []}
    layout = {"GE.EI": (100, 100, "StencilRectangle", _list("Authenticates Itself", ["Not Applicable", "No", "Yes"])),
              "GE.P": (200, 1200, "StencilEllipse", _list("Sanitizes Input", ["Not Selected", "Yes", "No"])
                       + _list("Sanitizes Output", ["Not Selected", "Yes", "No"])),
              "GE.DS": (300, 2500, "StencilParallelLines", "")}
    for generic, (base, x, shape, extra) in layout.items():
        for i, e in enumerate(kinds[generic]):
            guid = _guid(base + i)
            placed[generic].append(guid)
            code = _list("Code Type", [CODE_TYPE[e["id"]]], static=True) if e["id"] in CODE_TYPE else ""
            stencil(guid, generic, e["id"], e["name"], e["name"], x, 150 * i, shape=shape, extra=code + extra)
    fids = itertools.count(400)
    ftypes = itertools.cycle(kinds["GE.DF"])

    def flow(src: str, dst: str) -> None:
        e, guid = next(ftypes), _guid(next(fids))
        extra = "".join(_list(k, [v], static=True) for k, v in STATIC.get(e["id"], []))
        (sx, sy), (tx, ty) = centre[src], centre[dst]
        lines.append(
            f'<a:KeyValueOfguidanyType><a:Key>{guid}</a:Key><a:Value z:Id="i{next(ids)}" i:type="Connector">'
            f"<GenericTypeId {ABS}>GE.DF</GenericTypeId><Guid {ABS}>{guid}</Guid>"
            + _props(e["name"], f"{e['name']} flow {guid[-3:]}", extra)
            + f"<TypeId {ABS}>{e['id']}</TypeId><HandleX {ABS}>{(sx + tx) / 2}</HandleX>"
            f"<HandleY {ABS}>{(sy + ty) / 2}</HandleY><SourceGuid {ABS}>{src}</SourceGuid><SourceX {ABS}>{sx}</SourceX>"
            f"<SourceY {ABS}>{sy}</SourceY><TargetGuid {ABS}>{dst}</TargetGuid><TargetX {ABS}>{tx}</TargetX>"
            f"<TargetY {ABS}>{ty}</TargetY></a:Value></a:KeyValueOfguidanyType>")

    procs, ents, stores = placed["GE.P"], placed["GE.EI"], placed["GE.DS"]
    for i, ent in enumerate(ents):
        flow(ent, procs[i % len(procs)])
        flow(procs[i % len(procs)], ent)
    for i, p in enumerate(procs):
        flow(p, stores[i % len(stores)])
        flow(stores[(i + 3) % len(stores)], p)
        flow(p, procs[(i + 1) % len(procs)])
    arrays = 'xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays"'
    return ('<ThreatModel xmlns="http://schemas.datacontract.org/2004/07/ThreatModeling.Model" '
            'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><DrawingSurfaceList>'
            '<DrawingSurfaceModel z:Id="i1" xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/">'
            f"<GenericTypeId {ABS}>DRAWINGSURFACE</GenericTypeId><Guid {ABS}>{_guid(9999)}</Guid>"
            f"<Properties {ABS} {arrays}/><TypeId {ABS}>DRAWINGSURFACE</TypeId>"
            f"<Borders {arrays}>" + "".join(borders) + f"</Borders><Lines {arrays}>" + "".join(lines)
            + "</Lines></DrawingSurfaceModel></DrawingSurfaceList><MetaInformation><ThreatModelName>SDL all "
            "stencils</ThreatModelName></MetaInformation></ThreatModel>")


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fidelity  # the shared formats directory, found as the bench finds it

    fmt = fidelity.formats_dir()
    if fmt is None or len(argv) != 1:
        print("usage: sdl_all_stencils.py OUT.tm7 (needs the shared formats: THREATGRAPH_SHARED_DATA)", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(build(fmt / "mtmt" / "sdl-core-4.1.0.11.threat-types.json"), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
