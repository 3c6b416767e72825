"""Importers: read threat-knowledge sources (STIX bundles, ATLAS YAML, D3FEND Turtle) into RDF quads.

Parsers here build pyoxigraph quads in memory and never touch a store; :mod:`threatgraph.knowledge`
swaps the finished release graph into the store in one step.
"""
