"""Threat knowledge: importers of MITRE releases (ATT&CK STIX, ATLAS, D3FEND, CAPEC) that build
pyoxigraph quads in memory and never touch a store; :mod:`threatgraph.knowledge.releases` swaps a
finished release graph into the store in one step; :mod:`threatgraph.knowledge.bridge` holds the
curated ML asset ↔ technique mappings."""
