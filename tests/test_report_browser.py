"""The HTML report in a real headless browser (Debian chromium, .ci/install-chromium.sh): clicking
an element filters the findings table (the same state as the URL fragment), the table sorts, and a
screenshot is kept as an artefact ($THREATGRAPH_ARTIFACTS, default: the test's temporary directory)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from threatgraph.cli import main

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "data" / "examples" / "rag-assistant.ttl"
CHAT_API = "https://example.org/rag-assistant#chatApi"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--virtual-time-budget=10000"]
EXE = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(EXE is None, reason="chromium is not installed (.ci/install-chromium.sh)")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    d = tmp_path_factory.mktemp("html")
    assert main(["analyze", str(MODEL), "-f", "html", "-o", str(d / "r.html")]) == 0
    assert main(["analyze", str(MODEL), "-f", "json", "-o", str(d / "r.json")]) == 0
    return d / "r.html", json.loads((d / "r.json").read_text(encoding="utf-8"))


def browse(page: Path, fragment: str, profile: Path, *extra: str) -> str:
    assert EXE is not None
    proc = subprocess.run([EXE, *FLAGS, f"--user-data-dir={profile}", *(extra or ("--dump-dom",)), page.as_uri() + fragment],
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def rows(dom: str) -> list[tuple[bool, dict[str, str]]]:
    """(hidden, data attributes) of the findings table's rows, in document order."""
    out = []
    for m in re.finditer(r"<tr( [^>]*data-focus=[^>]*)>", dom):
        attrs = dict(re.findall(r'(data-[a-z]+)="([^"]*)"', m.group(1)))
        out.append((" hidden" in m.group(1), attrs))
    return out


def test_clicking_state_filters_by_element(report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, doc = report
    dom = browse(page, "#focus=" + quote(CHAT_API, safe=""), tmp_path / "p")
    assert 'data-ready="1"' in dom
    shown = [a for hidden, a in rows(dom) if not hidden]
    expected = [f for f in doc["findings"] if f["element"]["iri"] == CHAT_API]  # type: ignore[index, union-attr]
    assert len(shown) == len(expected) > 0 and all(a["data-focus"] == CHAT_API for a in shown)
    assert len(rows(dom)) == len(doc["findings"])  # type: ignore[arg-type]  # the others hidden, not removed
    assert f'data-shown="{len(expected)}"' in dom


def test_level_filter_and_sort(report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, doc = report
    dom = browse(page, "#level=4&sort=element", tmp_path / "p")
    all_rows = rows(dom)
    shown = [a for hidden, a in all_rows if not hidden]
    high = [f for f in doc["findings"] if f["level"] in ("high", "critical")]  # type: ignore[index, union-attr]
    assert len(shown) == len(high) > 0 and all(int(a["data-level"]) >= 4 for a in shown)
    labels = [a["data-element"].lower() for _, a in all_rows]
    assert labels == sorted(labels) and 'data-sort="element"' in dom
    # default order (no fragment): highest residual risk first, as the JSON ranking
    dom = browse(page, "", tmp_path / "p2")
    levels = [int(a["data-level"]) for _, a in rows(dom)]
    assert levels[: len(high)] == sorted(levels[: len(high)], reverse=True) and min(levels[: len(high)]) >= 4


def test_screenshot_is_kept(report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, _ = report
    out_dir = Path(os.environ.get("THREATGRAPH_ARTIFACTS", tmp_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "report-rag-assistant.png"
    browse(page, "#focus=" + quote(CHAT_API, safe=""), tmp_path / "p", f"--screenshot={shot}", "--window-size=1400,2400")
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_a_click_on_an_element_filters_and_a_second_click_clears(report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, doc = report
    expected = sum(1 for f in doc["findings"] if f["element"]["iri"] == CHAT_API)  # type: ignore[index, union-attr]
    dom = browse(page, "#click=" + quote(CHAT_API, safe=""), tmp_path / "p")
    shown = [a for hidden, a in rows(dom) if not hidden]
    assert len(shown) == expected and {a["data-focus"] for a in shown} == {CHAT_API}
    dom = browse(page, "#click=" + quote(CHAT_API, safe="") + "&click=" + quote(CHAT_API, safe=""), tmp_path / "p2")
    assert len([a for hidden, a in rows(dom) if not hidden]) == len(doc["findings"])  # type: ignore[arg-type]
