"""Importers of other threat-modelling tools' formats into the threatgraph system model.

OTM (Open Threat Model), OWASP Threat Dragon JSON, Threagile YAML, Microsoft Threat Modeling Tool ``.tm7``,
OWASP Threat Model Library (TM-BOM) JSON and pytm JSON are converted into the same
RDF the users write by hand (see docs/interchange.md for the mapping tables). The model loader calls
:func:`convert_file` for every file, so ``analyze`` and ``diff-model`` accept these formats too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from threatgraph.errors import InputError

if TYPE_CHECKING:  # imported when used: rdflib (~0.1 s) is not needed to read a Turtle model
    import rdflib

    from threatgraph.interchange.common import ImportResult
    from threatgraph.interchange.mlclasses import MLClasses


def __getattr__(name: str) -> Any:
    if name == "ImportResult":
        from threatgraph.interchange.common import ImportResult

        return ImportResult
    if name == "MLClasses":
        from threatgraph.interchange.mlclasses import MLClasses

        return MLClasses
    raise AttributeError(name)


_RDF_SUFFIXES = frozenset({".ttl", ".nt", ".n3", ".trig", ".nq", ".rdf", ".owl", ".xml", ".jsonld", ".json-ld"})
"""Suffixes :func:`~threatgraph.interchange.detect.detect` leaves to the RDF loader (unless the text is
a Threat Modeling Tool document)."""


def convert_file(path: str | Path, *, ml_classes: str | Path | MLClasses | None = None) -> ImportResult | None:
    """Convert an interchange-format file (see :mod:`threatgraph.interchange.detect`); None for an RDF file.

    Deviations from the format's published schema that are still unambiguous are read anyway and
    listed in ``ImportResult.warnings``; the ML classes chosen from an element's words are listed in
    ``ImportResult.classed``; the commands print both on stderr. ``ml_classes``: a user's mapping file
    (or a parsed table) tried before the shipped phrases (``data/ml-classes.conf``); a malformed file
    is an :class:`~threatgraph.errors.InputError` naming its line.
    """
    p = Path(path)
    if p.suffix.lower() == ".tm7":  # XML: the parser reads the encoding the file declares (UTF-8 or UTF-16)
        from threatgraph.interchange import tmt
        from threatgraph.interchange.mlclasses import table

        ml = table(ml_classes)
        try:
            return tmt.convert_text(p.read_bytes(), str(p), ml=ml)
        except OSError as err:
            raise InputError(f"{p}: cannot read: {err.strerror}") from err
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{p}: not UTF-8 text (byte {err.start})", hint="save the model as UTF-8") from err
    except OSError as err:
        raise InputError(f"{p}: cannot read: {err.strerror}") from err
    if p.suffix.lower() in _RDF_SUFFIXES and not text.lstrip("\ufeff \t\r\n").startswith("<ThreatModel"):
        return None  # what detect() answers for these, without importing the converters (and yaml): ~0.07 s
    from threatgraph.interchange.mlclasses import table

    ml = table(ml_classes)
    from threatgraph.interchange.detect import detect

    return detect(p, text, ml=ml)


def detect_and_convert(path: str | Path, *, ml_classes: str | Path | MLClasses | None = None) -> rdflib.Graph | None:
    """The converted graph of an OTM / Threat Dragon / Threagile file, or None for RDF files."""
    result = convert_file(path, ml_classes=ml_classes)
    return result.graph if result is not None else None


__all__ = ["ImportResult", "MLClasses", "convert_file", "detect_and_convert"]
