"""``threatgraph push --endpoint URL``: copy the ontology, imported releases and models to a remote store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from threatgraph.analysis.engine import G_INFERRED, G_MODEL, G_ONTOLOGY, Engine
from threatgraph.analysis.model import load_model_files
from threatgraph.commands._storeargs import add_auth_args, remote_options
from threatgraph.convert import triples_to_quads
from threatgraph.store import open_store


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "push",
        help="load the ontology, imported releases and models into a remote SPARQL store",
        description="Write threatgraph's named graphs to a remote SPARQL 1.1 store, one graph at a time (Graph Store "
        "Protocol where the server has it, else SPARQL Update). Then `threatgraph analyze --endpoint URL` runs "
        "the derivation there.",
    )
    p.add_argument("--endpoint", required=True, metavar="URL", help="remote SPARQL query URL (…/query, …/sparql)")
    add_auth_args(p)
    p.add_argument("--store", metavar="DIR", help="embedded store whose graphs (imported releases) to push")
    p.add_argument("--model", "-m", action="append", default=[], metavar="FILE", help="model file(s) for graph/model")
    p.add_argument("--ml-classes", metavar="FILE", help="your phrases giving imported (non-RDF) elements their tgml: "
                   "ML class, tried before the shipped ones (data/ml-classes.conf; docs/interchange.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    remote = open_store(endpoint=args.endpoint, **remote_options(args))
    Engine(remote).load_ontology()
    pushed = {G_ONTOLOGY: "ontology"}
    if args.store:
        local = open_store(args.store, must_exist=True, read_only=True)
        for g in local.graph_names():
            if g in (G_ONTOLOGY, G_INFERRED):
                continue
            remote.replace_graph(g, local.dump(g, "application/n-triples"), "application/n-triples")
            pushed[g] = "store"
    if args.model:
        loaded = load_model_files(args.model, ml_classes=args.ml_classes)
        for w in loaded.warnings:
            print(f"threatgraph: warning: {w}", file=sys.stderr)
        remote.drop_graph(G_MODEL)
        remote.add_quads(triples_to_quads(loaded.graph, G_MODEL))
        pushed[G_MODEL] = ", ".join(loaded.files)
    for g, what in pushed.items():
        print(f"pushed <{g}> ({what})", file=sys.stderr)
    return 0
