"""Where the shipped ontology, queries and ML phrase table live (installed wheel or source checkout), and the shared data.

>>> (ontology_dir() / "core.ttl").is_file()
True
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent
_REPO = _PKG.parent.parent


_DIRS: dict[str, Path] = {}


def _data_dir(name: str) -> Path:
    """The shipped directory ``name``: found once per process (an analysis asks for the ontology and
    queries directories ~20 times; each answer cost a ``stat`` and three path objects, issue 14)."""
    found = _DIRS.get(name)
    if found is None:
        installed = _PKG / "_data" / name
        found = _DIRS[name] = installed if installed.is_dir() else _REPO / name
    return found


def ontology_dir() -> Path:
    """Directory of the OWL/Turtle ontology modules (``ontology/``)."""
    return _data_dir("ontology")


def queries_dir() -> Path:
    """Directory of the SPARQL library (``queries/``), with derivation rules in ``queries/rules``."""
    return _data_dir("queries")


def ml_classes_file() -> Path:
    """The shipped phrase table of ML classes (``data/ml-classes.conf``; ``_data/ml-classes.conf`` when installed).

    >>> ml_classes_file().name
    'ml-classes.conf'
    """
    installed = _PKG / "_data" / "ml-classes.conf"
    return installed if installed.is_file() else _REPO / "data" / "ml-classes.conf"


def shared_data_hint() -> str:
    """What to do when the pinned reference data is missing (a pip install has no ``../shared/data``).

    >>> "THREATGRAPH_SHARED_DATA" in shared_data_hint()
    True
    """
    env = os.environ.get("THREATGRAPH_SHARED_DATA")
    where = (f"THREATGRAPH_SHARED_DATA={env} is not a directory" if env else
             f"THREATGRAPH_SHARED_DATA is not set and there is no {_REPO.parent / 'shared' / 'data'}")
    return (f"{where}: set THREATGRAPH_SHARED_DATA to a directory holding attack/, atlas/ and d3fend/ "
            "(MITRE's files), or name the files, or load MITRE's releases once with `threatgraph import attack`, "
            "`threatgraph import atlas` (downloads them) and use the store")


def shared_data_dir() -> Path | None:
    """The pinned reference data: ``$THREATGRAPH_SHARED_DATA``, else ``../shared/data`` next to the checkout."""
    env = os.environ.get("THREATGRAPH_SHARED_DATA")
    if env:
        return Path(env)
    candidate = _REPO.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None
