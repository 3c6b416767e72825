"""threatgraph: a knowledge-graph threat reasoning engine for machine-learning systems.

>>> from threatgraph import __version__
>>> isinstance(__version__, str)
True
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
