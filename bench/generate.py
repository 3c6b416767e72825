"""Generator of synthetic ML system models (Turtle) of a given number of elements, for benchmarks.

A model is a set of replicated ML "cells" (users → public inference endpoint → model registry ←
training pipeline ← feature store ← partner feed …) spread over trust zones, so that every element
kind, ML class and most rule conditions occur at realistic rates. Deterministic for a seed.

    python bench/generate.py 1000 > /tmp/m1k.ttl
"""

from __future__ import annotations

import random
import sys

PREFIXES = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix tgml: <https://w3id.org/threatgraph/ml#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <https://example.org/generated#> .
"""

# (local id, class, zone, extra attributes); flows are listed separately and count as elements.
_CELL_NODES: list[tuple[str, str, str, str]] = [
    ("user", "tgml:EndUser", "internet", ""),
    ("partner", "tgml:ThirdPartyDataSource", "partner", "tg:untrustedOrigin true ;"),
    ("lake", "tgml:FirstPartyDataSource", "data", "tg:encryptedAtRest true ; tg:holds ex:data_personal ;"),
    ("prep", "tgml:DataPreparationPipeline", "data", ""),
    ("train_ds", "tgml:TrainingDataset", "data", "tg:holds ex:data_personal ;"),
    ("features", "tgml:FeatureStore", "data", "tg:holds ex:data_internal ;"),
    ("trainer", "tgml:TrainingPipeline", "training", ""),
    ("model", "tgml:FineTunedModel", "training",
     "tg:provenanceKnown true ; tgml:trainedOn ex:train_ds_{i} ; tg:holds ex:data_confidential ;"),
    ("registry", "tgml:ModelRegistry", "training", "tg:holds ex:data_confidential ;"),
    ("api", "tgml:InferenceEndpoint", "serving", "tg:publiclyExposed true ; tg:authorizationEnforced {authz} ;"),
    ("logs", "tgml:InferenceLogStore", "serving", "tg:holdsLogs true ; tg:holds ex:data_personal ;"),
]
_CELL_FLOWS: list[tuple[str, str, str, str]] = [
    ("f_query", "user", "api", "personal"),
    ("f_partner", "partner", "prep", "confidential"),
    ("f_lake", "lake", "prep", "personal"),
    ("f_prep", "prep", "train_ds", "personal"),
    ("f_feat", "train_ds", "features", "internal"),
    ("f_train", "features", "trainer", "internal"),
    ("f_model", "trainer", "registry", "confidential"),
    ("f_deploy", "registry", "api", "confidential"),
    ("f_log", "api", "logs", "personal"),
]
_ZONES = {"internet": 0, "partner": 1, "data": 6, "training": 7, "serving": 4}
_CLASS = {"personal": "tg:Personal", "confidential": "tg:Confidential", "internal": "tg:Internal"}
CELL_SIZE = len(_CELL_NODES) + len(_CELL_FLOWS)


def generate_model(n_elements: int, seed: int = 0) -> str:
    """Turtle for a model with about ``n_elements`` elements (nodes + flows), a multiple of the cell size."""
    rng = random.Random(seed)
    cells = max(1, round(n_elements / CELL_SIZE))
    out = [PREFIXES, "ex:system a tg:System ; rdfs:label \"Generated ML system\" .\n"]
    for z, level in _ZONES.items():
        out.append(f'ex:zone_{z} a tg:TrustZone ; rdfs:label "{z}" ; tg:trustLevel {level} .\n')
    for c, label in _CLASS.items():
        out.append(f'ex:data_{c} a tg:DataAsset ; rdfs:label "{c} data" ; tg:classification {label} .\n')
    for i in range(cells):
        for nid, cls, zone, extra in _CELL_NODES:
            attrs = extra.format(i=i, authz="true" if rng.random() < 0.5 else "false")
            if rng.random() < 0.5:
                attrs += " tg:authenticated true ;"
            if rng.random() < 0.3:
                attrs += " tg:auditLogged true ;"
            out.append(
                f'ex:{nid}_{i} a {cls} ; rdfs:label "{nid} {i}" ; tg:partOf ex:system ; '
                f"tg:inZone ex:zone_{zone} ; {attrs} tg:criticality {rng.randint(1, 5)} .\n"
            )
        for fid, src, tgt, data in _CELL_FLOWS:
            # Complete models (they pass `threatgraph validate`): every flow states both attributes.
            attrs = f" tg:encryptedInTransit {str(rng.random() < 0.6).lower()} ;"
            attrs += f" tg:authenticated {str(rng.random() < 0.5).lower()} ;"
            out.append(
                f'ex:{fid}_{i} a tg:DataFlow ; rdfs:label "{fid} {i}" ; tg:partOf ex:system ; '
                f"tg:source ex:{src}_{i} ; tg:target ex:{tgt}_{i} ; tg:carries ex:data_{data} ;{attrs} .\n"
            )
    return "".join(out)


def element_count(n_elements: int) -> int:
    """Exact number of elements :func:`generate_model` makes for ``n_elements``."""
    return max(1, round(n_elements / CELL_SIZE)) * CELL_SIZE


if __name__ == "__main__":
    sys.stdout.write(generate_model(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
