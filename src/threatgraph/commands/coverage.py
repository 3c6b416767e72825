"""``threatgraph coverage``: how much of ATLAS / ATT&CK and of the ML asset taxonomy the bridge maps.

Reports the ATLAS techniques without a mapping (of ``ATLAS.yaml``, or of a release loaded in the
store with ``--release``), the ATT&CK techniques covered (explicitly or inherited by sub-techniques),
the tgml asset types no mapping targets, mappings per STRIDE / LINDDUN category, and every defect the
mapping checker finds. Exit 0 when every ATLAS technique is mapped and the mappings are clean, 1
otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from threatgraph.errors import InputError
from threatgraph.knowledge.bridge import (
    TechniqueCoverage,
    asset_coverage,
    atlas_techniques,
    attack_active_techniques,
    category_counts,
    check_mappings,
    load_vocabulary,
    mapping_files,
    parse_mappings,
    technique_coverage,
)
from threatgraph.resources import shared_data_dir, shared_data_hint

ATLAS_REL = Path("atlas") / "ATLAS.yaml"
ATTACK_REL = Path("attack") / "enterprise-attack-18.1.stix20.json"


def register(sub: Any) -> None:
    """Add the ``coverage`` subcommand."""
    p = sub.add_parser(
        "coverage",
        help="which ATLAS/ATT&CK techniques and ML asset types the bridge mappings cover",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument(
        "--atlas",
        type=Path,
        metavar="ATLAS.yaml",
        help="ATLAS data file (default: atlas/ATLAS.yaml in the shared data)",
    )
    p.add_argument(
        "--attack",
        type=Path,
        metavar="BUNDLE.json",
        help="ATT&CK Enterprise STIX bundle (default: attack/enterprise-attack-18.1.stix20.json "
        "in the shared data; skipped when absent)",
    )
    p.add_argument(
        "--release",
        metavar="SPEC",
        help="take ATLAS technique IDs from a release loaded in the store instead "
        "(e.g. atlas or atlas/5.6.0; see `threatgraph releases`)",
    )
    p.add_argument("--store", metavar="DIR", help="store directory for --release")
    p.add_argument(
        "--mappings",
        type=Path,
        metavar="DIR",
        help="directory of mapping files (default: the shipped ontology/mappings)",
    )
    p.set_defaults(func=run)


def _default(rel: Path, given: Path | None, what: str, required: bool) -> Path | None:
    if given is not None:
        if not given.is_file():
            raise InputError(f"{given}: no such file", hint=f"pass the {what} file")
        return given
    base = shared_data_dir()
    path = base / rel if base is not None else None
    if path is not None and path.is_file():
        return path
    if required:
        raise InputError(
            f"cannot find {rel} in the shared data",
            hint=f"pass --{what.split()[0].lower()} FILE, or use --release with a store (`threatgraph import atlas`); "
            + shared_data_hint(),
        )
    return None


def _release_atlas_ids(spec: str, store_dir: str | None) -> tuple[set[str], str]:
    from threatgraph.commands.knowledge_import import open_cli_store
    from threatgraph.knowledge.releases import active_ids, resolve_release

    store = open_cli_store(store_dir, create=False)
    graph = resolve_release(store, spec)
    ids = {i for i in active_ids(store, graph) if i.startswith("AML.")}
    if not ids:
        raise InputError(f"release <{graph}> has no ATLAS techniques", hint="pick an ATLAS release")
    return ids, graph


def run(args: argparse.Namespace) -> int:
    """Compute the report and print it; 1 if an ATLAS technique is unmapped or a mapping is defective."""
    files = mapping_files(args.mappings) if args.mappings else mapping_files()
    if not files:
        raise InputError(
            f"no mapping files (*.ttl) in {args.mappings}", hint="point --mappings at ontology/mappings"
        )
    mappings = parse_mappings(files)
    vocab = load_vocabulary()
    if args.release:
        atlas_ids, atlas_from = _release_atlas_ids(args.release, args.store)
    else:
        atlas_path = _default(ATLAS_REL, args.atlas, "ATLAS data", required=True)
        assert atlas_path is not None
        atlas_ids, atlas_from = set(atlas_techniques(atlas_path)), str(atlas_path)
    attack_path = _default(ATTACK_REL, args.attack, "ATTACK bundle", required=False)
    attack_ids = set(attack_active_techniques(attack_path)) if attack_path else None

    atlas_cov = technique_coverage([m for m in mappings if m.framework == "atlas"], atlas_ids)
    attack_maps = [m for m in mappings if m.framework == "attack"]
    attack_cov = technique_coverage(attack_maps, attack_ids) if attack_ids is not None else None
    assets = asset_coverage(mappings, vocab)
    problems = check_mappings(mappings, vocab, atlas_ids=atlas_ids, attack_ids=attack_ids)
    report: dict[str, Any] = {
        "mappings": {"files": [str(f) for f in files], "count": len(mappings)},
        "atlas": {"from": atlas_from, **atlas_cov.as_json()},
        "attack": (
            {"from": str(attack_path), "curated": len(attack_maps), **attack_cov.as_json()}
            if attack_cov is not None
            else {"curated": len(attack_maps)}
        ),
        "assetTypes": assets.as_json(),
        "categories": category_counts(mappings),
        "problems": [str(p) for p in problems],
    }
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        _print_table(report, atlas_cov, attack_cov)
    return 0 if not atlas_cov.unmapped and not problems else 1


def _print_table(report: dict[str, Any], atlas: TechniqueCoverage, attack: TechniqueCoverage | None) -> None:
    assets = report["assetTypes"]
    rows = [
        (
            "mappings",
            str(report["mappings"]["count"]),
            ", ".join(Path(f).name for f in report["mappings"]["files"]),
        ),
        (
            "ATLAS techniques",
            f"{atlas.mapped}/{atlas.total} ({atlas.percent:.1f}%)",
            f"{len(atlas.explicit)} explicit, {len(atlas.inherited)} inherited; from {report['atlas']['from']}",
        ),
    ]
    if attack is not None:
        rows.append(
            (
                "ATT&CK techniques",
                f"{attack.mapped}/{attack.total} ({attack.percent:.1f}%)",
                f"{report['attack']['curated']} curated, {len(attack.inherited)} inherited sub-techniques",
            )
        )
    else:
        rows.append(
            ("ATT&CK techniques", str(report["attack"]["curated"]), "curated (no ATT&CK bundle found)")
        )
    covered = assets["types"] - len(assets["unmapped"])
    rows.append(
        (
            "ML asset types",
            f"{covered}/{assets['types']}",
            f"{assets['types'] - len(assets['withoutDirectMapping'])} targeted directly",
        )
    )
    rows.append(("problems", str(len(report["problems"])), ""))
    width = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value.ljust(w2)}  {note}".rstrip())
    print()
    print("mappings per category:")
    for cat, n in report["categories"].items():
        print(f"  {cat.ljust(40)} {n}")
    _list("unmapped ATLAS techniques", atlas.unmapped)
    _list("mapped IDs not in the ATLAS release", atlas.unknown)
    if attack is not None:
        _list("mapped IDs not active in ATT&CK", attack.unknown)
    _list("ML asset types without any mapping", assets["unmapped"])
    _list(
        "ML asset types only covered through a superclass",
        sorted(set(assets["withoutDirectMapping"]) - set(assets["unmapped"])),
    )
    _list("problems", report["problems"])


def _list(title: str, items: list[str]) -> None:
    print(f"\n{title}: {len(items) if items else 'none'}")
    for i in items:
        print(f"  {i}")
