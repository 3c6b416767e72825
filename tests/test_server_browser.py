"""The built-in query page in a real headless browser (Debian chromium, installed by
``.ci/install-chromium.sh``): it loads offline (no external resources), lists the named queries and
runs one, showing its rows."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine
from threatgraph.server import Running, ServerConfig, start, write_dataset

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "data" / "examples" / "rag-assistant.ttl"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=15000",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    store = Engine().analyze([MODEL]).store
    path = write_dataset(store.quads(), str(tmp_path_factory.mktemp("ds")))
    r = start(ServerConfig(port=0, time_limit=5.0), path)
    yield r
    r.stop()


def dump_dom(url: str, profile: Path) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("chromium is not installed: run .ci/install-chromium.sh")
    proc = subprocess.run(
        [exe, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_page_lists_the_named_queries(server: Running, tmp_path: Path) -> None:
    dom = dump_dom(server.url + "/", tmp_path / "profile")
    assert 'data-loaded="' in dom
    loaded = int(re.search(r'data-loaded="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    options = re.findall(r'<option value="([a-z0-9-]+)">', dom)
    assert loaded >= 25 and len(options) == loaded
    assert "techniques-changed" in options and "findings-by-severity" in options


def test_page_runs_a_named_query_with_a_parameter(server: Running, tmp_path: Path) -> None:
    dom = dump_dom(server.url + "/#query=findings-by-severity&severity=tg:High", tmp_path / "profile")
    table = re.search(r'<table id="results">(.*?)</table>', dom, re.S)
    assert table, dom[-3000:]
    cells = re.findall(r"<td>(.*?)</td>", table.group(1))
    assert "TG-STRIDE-E-002" in cells and "https://example.org/rag-assistant#agent" in cells
    rows = int(re.search(r'data-rows="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert rows == len(re.findall(r"<tr>", table.group(1))) - 1 > 0


def test_page_shows_server_errors(server: Running, tmp_path: Path) -> None:
    dom = dump_dom(server.url + "/#query=findings-of-element&element=not%20an%20iri", tmp_path / "profile")
    assert 'class="error"' in dom and "HTTP 400" in dom and "not a valid IRI" in dom


def test_page_has_no_external_resources() -> None:
    static = REPO / "src" / "threatgraph" / "static"
    for f in static.iterdir():
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)=["']https?://""", text), f
        assert "cdn" not in text.lower(), f
