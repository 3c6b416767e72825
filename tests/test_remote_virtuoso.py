"""The remote store against Virtuoso open source 7.2 (Debian ``virtuoso-opensource``, installed by
``.ci/install-virtuoso.sh``): same findings as the embedded store on the example models.

The fixture runs a private Virtuoso with its own database directory on free loopback ports and grants
SPARQL updates to the anonymous SPARQL account of that throw-away database; a second test writes
through HTTP digest authentication as dba on ``/sparql-auth``.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import read_findings
from threatgraph.store import Store
from threatgraph.store.remote import RemoteStore

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "data" / "examples").glob("*.ttl"))
INI = Path("/etc/virtuoso-opensource-7/virtuoso.ini")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def virtuoso_ini(directory: Path, sql_port: int, http_port: int) -> str:
    """The packaged virtuoso.ini with every file in ``directory`` and the servers on loopback ports."""
    out: list[str] = []
    section = ""
    for line in INI.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\[(.+)\]", line)
        if m:
            section = m.group(1)
        key = line.split("=", 1)[0].strip()
        if key in ("DatabaseFile", "ErrorLogFile", "LockFile", "TransactionFile", "xa_persistent_file"):
            name = Path(line.split("=", 1)[1].strip()).name
            line = f"{key} = {directory / name}"
        elif section == "Parameters" and key == "ServerPort":
            line = f"ServerPort = 127.0.0.1:{sql_port}"
        elif section == "Parameters" and key == "DirsAllowed":
            line = f"DirsAllowed = ., {directory}, /usr/share/virtuoso-opensource-7/vad"
        elif section == "HTTPServer" and key == "ServerPort":
            line = f"ServerPort = 127.0.0.1:{http_port}"
        elif section == "SPARQL" and key == "ResultSetMaxRows":
            line = "ResultSetMaxRows = 1000000"
        elif section == "SPARQL" and key == "MaxQueryCostEstimationTime":
            line = "MaxQueryCostEstimationTime = 0"  # the estimator refuses some rule queries outright
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe, isql = shutil.which("virtuoso-t"), shutil.which("isql-vt")
    if not exe or not isql or not INI.exists():
        pytest.fail("Virtuoso is not installed: run .ci/install-virtuoso.sh")
    d = tmp_path_factory.mktemp("virtuoso")
    sql_port, http_port = free_port(), free_port()
    ini = d / "virtuoso.ini"
    ini.write_text(virtuoso_ini(d, sql_port, http_port), encoding="utf-8")
    proc = subprocess.Popen(
        [exe, "+foreground", "+configfile", str(ini)], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{http_port}/sparql"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log = (d / "virtuoso.log").read_text(errors="replace") if (d / "virtuoso.log").exists() else ""
                pytest.fail(f"virtuoso exited with {proc.returncode}: {log[-2000:]}")
            try:
                with urllib.request.urlopen(url + "?query=ASK%7B%7D", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail("virtuoso did not answer within 60 s")
                time.sleep(0.3)
        subprocess.run(
            [isql, f"127.0.0.1:{sql_port}", "dba", "dba", "exec=GRANT SPARQL_UPDATE TO \"SPARQL\";"],
            check=True, capture_output=True, timeout=60,
        )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def finding_set(store: Store) -> set[tuple[object, ...]]:
    return {
        (f.iri, f.rule_id, f.severity, f.explanation, tuple(f.evidence), tuple(f.categories))
        for f in read_findings(store, labels_of(store))
    }


def test_store_basics(virtuoso: str) -> None:
    s = RemoteStore(virtuoso)
    assert s.store_endpoint and s.store_endpoint.endswith("/sparql-graph-crud") and s.graph_param == "graph-uri"
    s.drop_graph("urn:t:g")
    s.load('<urn:t:a> <urn:t:p> "x", "y"@en .', "text/turtle", "urn:t:g")
    rows = s.select("SELECT ?o WHERE { GRAPH <urn:t:g> { <urn:t:a> <urn:t:p> ?o } } ORDER BY STR(?o)")
    assert [r["o"].value for r in rows] == ["x", "y"]
    s.drop_graph("urn:t:g")
    assert not s.ask("ASK { GRAPH <urn:t:g> { ?s ?p ?o } }")


def test_digest_auth_as_dba(virtuoso: str) -> None:
    s = RemoteStore(virtuoso, user="dba", password="dba")
    assert s.endpoint.endswith("/sparql-auth")
    s.update("INSERT DATA { GRAPH <urn:t:auth> { <urn:t:a> <urn:t:p> <urn:t:b> } }")
    assert s.ask("ASK { GRAPH <urn:t:auth> { <urn:t:a> <urn:t:p> <urn:t:b> } }")
    s.drop_graph("urn:t:auth")
    from threatgraph.errors import StoreError

    with pytest.raises(StoreError):
        RemoteStore(virtuoso, user="dba", password="wrong").update("INSERT DATA { GRAPH <urn:t:x> { <urn:t:a> <urn:t:p> 1 } }")


@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_same_findings_as_embedded(virtuoso: str, model: Path) -> None:
    embedded = Engine().analyze([model]).store
    remote = RemoteStore(virtuoso)
    Engine(remote).analyze([model])
    expected = finding_set(embedded)
    assert len(expected) > 100
    got = finding_set(remote)
    assert got == expected, (sorted(expected - got)[:3], sorted(got - expected)[:3])


LIBRARY_ON_EXAMPLES = {
    "findings-by-severity": {},
    "findings-of-element": {"element": "https://example.org/rag-assistant#agent"},
    "elements-with-label": {},
    "finding-count-by-category": {},
    "elements-crossing-boundaries": {},
    "disclosure-privacy-and-security": {},
    "rules-fired": {},
    "elements-of-kind": {"kind": "tgml:VectorStore"},
    "personal-data-flows-unencrypted": {},
    "controls-and-mitigations": {},
    "attack-paths": {},
    "element-graph": {"element": "https://example.org/rag-assistant#agent"},
}


def test_named_queries_give_the_same_rows(virtuoso: str) -> None:
    """Parameters are bound in a leading VALUES block on Virtuoso (it refuses a trailing one on
    variables it does not project); the rows must equal the embedded store's."""
    from threatgraph.querylib import load_library, run

    model = REPO / "data" / "examples" / "rag-assistant.ttl"
    embedded = Engine().analyze([model]).store
    remote = RemoteStore(virtuoso)
    Engine(remote).analyze([model])
    lib = load_library()

    def rows(store: Store, name: str) -> list[tuple[str, ...]]:
        res = run(store, lib[name], LIBRARY_ON_EXAMPLES[name])
        if res.form == "CONSTRUCT":
            return sorted((q.subject.value, q.predicate.value, q.object.value) for q in res.triples
                          if not any(type(t).__name__ == "BlankNode" for t in (q.subject, q.object)))
        # GROUP_CONCAT order is unspecified: compare the words of each cell as a sorted list
        return sorted(
            tuple(" ".join(sorted(r[v].value.split(" "))) if v in r else "" for v in res.variables) for r in res.rows
        )

    for name in LIBRARY_ON_EXAMPLES:
        expected = rows(embedded, name)
        assert expected, name
        assert rows(remote, name) == expected, name
