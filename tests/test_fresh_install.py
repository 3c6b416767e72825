"""A pip install with only the runtime dependencies works (issue 11: a fresh machine works as the README says).

Builds a virtual environment, installs the project without extras (pip's configured package index), and
runs the CLI there: no traceback, and clear messages where the source checkout's data is not available.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("fresh") / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    res = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(REPO)],
                         capture_output=True, text=True, timeout=900)
    if res.returncode != 0 and ("No matching distribution" in res.stderr or "Could not find" in res.stderr):
        pytest.skip(f"the package index cannot provide the runtime dependencies: {res.stderr[-500:]}")
    assert res.returncode == 0, res.stderr[-3000:]
    return env_dir


def _run(env_dir: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "THREATGRAPH_SHARED_DATA")}
    return subprocess.run([str(env_dir / "bin" / "threatgraph"), *argv], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_runtime_dependencies_are_enough(installed: Path, tmp_path: Path) -> None:
    freeze = subprocess.run([str(installed / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True,
                            text=True, timeout=120).stdout.lower()
    assert "pytest" not in freeze and "mitreattack" not in freeze  # no test extra
    model = REPO / "data" / "examples" / "rag-assistant.ttl"
    res = _run(installed, "analyze", str(model), cwd=tmp_path)
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "finding" in res.stdout.lower()
    res = _run(installed, "query", "--help", cwd=tmp_path)
    assert res.returncode == 0 and "Traceback" not in res.stderr and "--endpoint" in res.stdout
    # the remote store's dependency (SPARQLWrapper) is installed: a dead endpoint is a clear error, not an import error
    res = _run(installed, "query", "rules-fired", "--endpoint", "http://127.0.0.1:9/query", cwd=tmp_path)
    assert res.returncode in (2, 3) and "Traceback" not in res.stderr and "ModuleNotFoundError" not in res.stderr
    assert res.stderr.startswith("threatgraph: error:"), res.stderr


@pytest.mark.slow
def test_shared_data_missing_in_an_install_says_what_to_do(installed: Path, tmp_path: Path) -> None:
    model = REPO / "data" / "examples" / "rag-assistant.ttl"
    res = _run(installed, "analyze", str(model), "--knowledge", "shared", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "THREATGRAPH_SHARED_DATA" in res.stderr and "threatgraph import" in res.stderr
    res = _run(installed, "coverage", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "THREATGRAPH_SHARED_DATA" in res.stderr and "--release" in res.stderr
    assert sys.executable  # the test's own interpreter is untouched
