"""Detect a model file's format and convert it: OTM, Threat Dragon, Threagile, TM-BOM, pytm JSON (JSON or YAML),
Microsoft Threat Modeling Tool ``.tm7`` (XML), or RDF.

RDF files (Turtle, N-Triples, RDF/XML, JSON-LD, …) are not handled here: :func:`detect` returns None
for them and the RDF loader parses them. JSON and YAML files must be one of the interchange formats;
anything else is an error naming the formats tried and where the file failed. A ``.tm7`` file, or XML
whose root is the Threat Modeling Tool's ``ThreatModel``, is read by :mod:`threatgraph.interchange.tmt`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from threatgraph.bounded import limits, load_json, load_yaml
from threatgraph.errors import InputError
from threatgraph.interchange import otm, pytm_json, threagile, threatdragon, tmbom, tmt
from threatgraph.interchange.common import ImportResult
from threatgraph.interchange.mlclasses import MLClasses

FORMATS: tuple[str, ...] = ("otm", "threat-dragon", "threagile", "tmt", "tm-bom", "pytm")
_JSON_EXT = {".json", ".otm"}
_YAML_EXT = {".yaml", ".yml"}
_RDF_JSON_EXT = {".jsonld", ".json-ld"}


def sniff(doc: Any) -> str | None:
    """The interchange format of a parsed JSON/YAML document, or None.

    >>> sniff({"otmVersion": "0.2.0", "project": {}})
    'otm'
    >>> sniff({"summary": {"title": "x"}, "detail": {"diagrams": []}})
    'threat-dragon'
    >>> sniff({"threagile_version": "1.0.0", "technical_assets": {}})
    'threagile'
    >>> sniff({"@context": {}}) is None
    True
    """
    if not isinstance(doc, Mapping):
        return None
    if "otmVersion" in doc:
        return "otm"
    if "threagile_version" in doc or ("technical_assets" in doc and "title" in doc):
        return "threagile"
    if isinstance(doc.get("detail"), Mapping) and "diagrams" in doc["detail"] and "summary" in doc:
        return "threat-dragon"
    if tmbom.sniff(doc):
        return "tm-bom"
    if pytm_json.sniff(doc):
        return "pytm"
    return None


def detect(path: Path, text: str, *, ml: MLClasses | None = None) -> ImportResult | None:
    """Convert ``text`` (the content of ``path``) if it is an interchange format; None for RDF.

    ``ml``: the ML phrase table (default: the shipped one; see :mod:`threatgraph.interchange.mlclasses`).
    """
    ext = path.suffix.lower()
    if ext in _RDF_JSON_EXT:
        return None
    stripped = text.lstrip("\ufeff \t\r\n")
    if ext == ".tm7" or (stripped.startswith("<ThreatModel") and "ThreatModeling.Model" in stripped[:1000]):
        return tmt.convert_text(text, str(path), ml=ml)  # Microsoft Threat Modeling Tool (XML)
    if ext in _YAML_EXT:
        return _from_yaml(path, text, ml)
    if ext == ".otm" and not stripped.startswith("{"):
        return _from_yaml(path, text, ml)  # OTM is JSON or YAML; StartLeft's examples use YAML in .otm files
    if ext in _JSON_EXT or (stripped.startswith("{") and ext not in {".ttl", ".nt", ".n3", ".trig", ".nq", ".rdf", ".owl", ".xml"}):
        return _from_json(path, text, strict=ext in _JSON_EXT, ml=ml)
    return None


def _check_size(path: Path, text: str) -> None:
    cap = limits().input_bytes
    if len(text) > cap:  # characters: at least as many bytes
        raise InputError(f"{path}: {len(text)} characters, above the limit of {cap} bytes for a JSON/YAML model",
                         hint="raise THREATGRAPH_MAX_INPUT_BYTES if the file is genuine (see docs/limits.md)")


def _from_json(path: Path, text: str, *, strict: bool, ml: MLClasses | None = None) -> ImportResult | None:
    _check_size(path, text)
    try:
        doc = load_json(text, str(path))
    except json.JSONDecodeError as err:
        if not strict:
            return None
        raise InputError(
            f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); tried: OTM, Threat Dragon v2, "
            "TM-BOM, pytm (all JSON)",
            hint="fix the JSON syntax at that line and column",
        ) from err
    fmt = sniff(doc)
    if fmt is None:
        if isinstance(doc, Mapping) and "@context" in doc:
            return None  # JSON-LD: RDF
        keys = ", ".join(sorted(map(str, doc))[:8]) if isinstance(doc, Mapping) else type(doc).__name__
        raise InputError(
            f"{path}: /: not an OTM (no 'otmVersion'), Threat Dragon v2 (no 'summary' and 'detail.diagrams'), "
            f"TM-BOM (no 'scope' and 'data_flows'), pytm (no 'elements' and 'flows') or JSON-LD (no '@context') document; top level has: {keys or 'nothing'}",
            hint="export the model from its tool again, or give an RDF model (Turtle)",
        )
    return _convert(fmt, doc, path, ml)


def _from_yaml(path: Path, text: str, ml: MLClasses | None = None) -> ImportResult:
    _check_size(path, text)
    try:
        doc = load_yaml(text, str(path))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "?"
        raise InputError(
            f"{path}:{where}: not valid YAML ({err.problem}); tried: Threagile, OTM (YAML)",
            hint="correct the value at that line" if isinstance(err, yaml.constructor.ConstructorError | yaml.composer.ComposerError)
            else "fix the YAML at that line (indentation, an unclosed quote?)",
        ) from err
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({err}); tried: Threagile, OTM (YAML)") from err
    fmt = sniff(doc)
    if fmt not in ("threagile", "otm"):
        keys = ", ".join(sorted(map(str, doc))[:8]) if isinstance(doc, Mapping) else type(doc).__name__
        raise InputError(
            f"{path}: /: not a Threagile model (no 'threagile_version' or 'technical_assets') or an OTM model "
            f"(no 'otmVersion'); top level has: {keys or 'nothing'}",
            hint="threatgraph reads Threagile and OTM YAML; other models must be RDF (Turtle), OTM or Threat Dragon "
            "JSON",
        )
    return _convert(fmt, doc, path, ml)


_NAMES = {"otm": "OTM", "threat-dragon": "Threat Dragon", "tm-bom": "TM-BOM", "pytm": "pytm JSON",
          "threagile": "Threagile"}


def _convert(fmt: str, doc: Any, path: Path, ml: MLClasses | None = None) -> ImportResult:
    """Convert a parsed document; a field of a type the converter does not expect (a number where the format has
    a list, an object where it has text) is one located error, never a traceback."""
    try:
        return _convert_doc(fmt, doc, path, ml)
    except (TypeError, AttributeError, KeyError, IndexError) as err:
        raise InputError(
            f"{path}: {fmt}: a field has a type or shape the {_NAMES.get(fmt, fmt)} format does not give it "
            f"({type(err).__name__}: {err}); the model was not imported",
            hint="validate the file against the format's JSON Schema (docs/interchange.md) or export it again from "
                 "its tool",
        ) from err
    except ValueError as err:  # float("x") and the like; InputError is not a ValueError
        raise InputError(
            f"{path}: {fmt}: a field has a value the {_NAMES.get(fmt, fmt)} format does not give it ({err}); the "
            "model was not imported",
            hint="validate the file against the format's JSON Schema (docs/interchange.md) or export it again from "
                 "its tool",
        ) from err


def _convert_doc(fmt: str, doc: Any, path: Path, ml: MLClasses | None = None) -> ImportResult:
    if fmt == "otm":
        return otm.convert(doc, str(path), ml=ml)
    if fmt == "threat-dragon":
        return threatdragon.convert(doc, str(path), ml=ml)
    if fmt == "tm-bom":
        return tmbom.convert(doc, str(path), ml=ml)
    if fmt == "pytm":
        return pytm_json.convert(doc, str(path), ml=ml)
    if isinstance(doc, Mapping) and doc.get("includes"):
        return threagile.convert(threagile.merge_includes(doc, path), str(path), included=True, ml=ml)
    return threagile.convert(doc, str(path), ml=ml)
