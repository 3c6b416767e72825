"""CLI commands, one module each (see :mod:`threatgraph.cli`)."""
