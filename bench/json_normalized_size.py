"""Prototype measure (issue 14, a product decision): how large ``analyze --format json`` would be if its
technique entries were normalised. The report itself is not changed; this reads one (a finding per line,
as ``analyze`` writes it) and prints the size of the same document in three normalised shapes, each
list item on one line as today:

* ``applications``: each distinct technique entry (an (element, technique) application: its status,
  exposure, controls, and the technique's texts) listed once under ``techniqueApplications``; a finding's
  ``techniques`` become the entries' indexes;
* ``+ techniques``: also each technique's texts (name, release, maturity, mitigations, countermeasures,
  detections) listed once under ``techniqueTexts`` (keyed by technique id), not in every application;
* ``+ mappings``: also each mapping's justification, sources and asset types listed once under
  ``mappings`` (keyed by mapping IRI).

    python bench/json_normalized_size.py REPORT.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

_TEXT_KEYS = ("label", "release", "unresolved", "maturity", "mitigations", "countermeasures", "detections")
_MAPPING_KEYS = ("justification", "sources", "assetTypes")


def _size(item: object) -> int:
    return len(json.dumps(item, ensure_ascii=False).encode("utf-8")) + 6  # ",\n    " per item line


def measure(path: str) -> dict[str, Any]:
    total = 0
    technique_bytes = 0
    entries = 0
    apps: dict[str, int] = {}  # entry text -> index
    app_sizes = [0, 0, 0]  # applications listed once: whole, without texts, without texts and mappings
    texts: dict[str, str] = {}
    mappings: dict[str, str] = {}
    finding_delta = 0  # bytes saved in the finding lines by references instead of entries
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            total += len(line.encode("utf-8"))
            body = line.strip().rstrip(",")
            if not (body.startswith('{"id": ') and '"techniques": [' in body):
                continue
            f = json.loads(body)
            if "rule" not in f or "element" not in f:  # topMitigations entries name techniques too
                continue
            refs: list[int] = []
            for t in f["techniques"]:
                entries += 1
                text = json.dumps(t, ensure_ascii=False)
                technique_bytes += len(text.encode("utf-8"))
                idx = apps.get(text)
                if idx is None:
                    idx = apps[text] = len(apps)
                    app_sizes[0] += _size(t)
                    texts.setdefault(t["id"], json.dumps({k: t.get(k) for k in _TEXT_KEYS}, ensure_ascii=False))
                    mappings.setdefault(t["mapping"], json.dumps({k: t.get(k) for k in _MAPPING_KEYS}, ensure_ascii=False))
                    lean = {k: v for k, v in t.items() if k not in _TEXT_KEYS}
                    app_sizes[1] += _size(lean)
                    app_sizes[2] += _size({k: v for k, v in lean.items() if k not in _MAPPING_KEYS})
                refs.append(idx)
            before = len(json.dumps(f["techniques"], ensure_ascii=False).encode("utf-8"))
            finding_delta += before - len(json.dumps(refs).encode("utf-8"))
    text_bytes = sum(len(v.encode("utf-8")) + 6 + len(k) + 4 for k, v in texts.items())
    mapping_bytes = sum(len(v.encode("utf-8")) + 6 + len(k) + 4 for k, v in mappings.items())
    applications = total - finding_delta + app_sizes[0] + 40
    with_texts = total - finding_delta + app_sizes[1] + text_bytes + 80
    with_mappings = total - finding_delta + app_sizes[2] + text_bytes + mapping_bytes + 120
    return {"report": path, "bytes": total, "technique_entries": entries, "technique_entry_bytes": technique_bytes,
            "distinct_entries": len(apps), "distinct_techniques": len(texts), "distinct_mappings": len(mappings),
            "normalised_bytes": {"applications": applications, "+ techniques": with_texts, "+ mappings": with_mappings}}


if __name__ == "__main__":
    for p in sys.argv[1:]:
        r = measure(p)
        mb = 1e6
        print(f"{p}: {r['bytes'] / mb:.1f} MB, {r['technique_entries']:,} technique entries "
              f"({r['technique_entry_bytes'] / mb:.1f} MB), {r['distinct_entries']:,} distinct, "
              f"{r['distinct_techniques']} techniques, {r['distinct_mappings']} mappings", file=sys.stderr)
        for k, v in r["normalised_bytes"].items():
            print(f"  {k:14} {v / mb:8.1f} MB  ({v / r['bytes']:.0%})", file=sys.stderr)
        print(json.dumps(r))
