"""threatgraph: a knowledge-graph threat reasoning engine for machine-learning systems.

The public pipeline is :func:`threatgraph.analyze` (:func:`threatgraph.analysis.pipeline.analyze`),
imported lazily so that ``import threatgraph`` stays cheap:

>>> from threatgraph import __version__
>>> isinstance(__version__, str)
True
>>> import threatgraph
>>> callable(threatgraph.analyze)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from threatgraph.analysis.engine import Analysis
    from threatgraph.analysis.pipeline import analyze


def __getattr__(name: str) -> Any:
    if name == "analyze":
        from threatgraph.analysis.pipeline import analyze

        return analyze
    if name == "Analysis":
        from threatgraph.analysis.engine import Analysis

        return Analysis
    raise AttributeError(f"module 'threatgraph' has no attribute {name!r}")


__all__ = ["Analysis", "__version__", "analyze"]
