"""The remote store against a real Oxigraph server (PyPI ``oxigraph``) on loopback: the Store protocol,
``push`` and ``analyze --endpoint`` give the same findings as the embedded store, and the query CLI."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyoxigraph import BlankNode, Literal, NamedNode, Quad

from threatgraph.analysis.engine import Engine, labels_of
from threatgraph.analysis.findings import read_findings
from threatgraph.cli import main
from threatgraph.errors import InputError, StoreError
from threatgraph.store import Store, open_store
from threatgraph.store.remote import RemoteStore

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "data" / "examples").glob("*.ttl"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def oxigraph_binary() -> str:
    exe = Path(sys.executable).parent / "oxigraph"
    found = str(exe) if exe.exists() else shutil.which("oxigraph")
    if not found:
        pytest.fail("the Oxigraph server is missing: pip install oxigraph (see pyproject test extras)")
    return found


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def oxigraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An Oxigraph server with its own data directory, union default graph (rules see all graphs)."""
    port = free_port()
    proc = subprocess.Popen(
        [oxigraph_binary(), "serve", "--location", str(tmp_path_factory.mktemp("oxi")),
         "--bind", f"127.0.0.1:{port}", "--union-default-graph"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/query"
    try:
        wait_ready(url + "?query=ASK%7B%7D", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def finding_set(store: Store) -> set[tuple[object, ...]]:
    return {
        (f.iri, f.rule_id, f.severity, f.explanation, tuple(f.evidence), tuple(f.categories))
        for f in read_findings(store, labels_of(store))
    }


def technique_rows(store: Store) -> set[tuple[str, ...]]:
    rows = store.select(
        "SELECT ?f ?t ?st WHERE { GRAPH <https://w3id.org/threatgraph/graph/findings> "
        "{ ?a tg:ofFinding ?f ; tg:appliedTechnique ?t . OPTIONAL { ?a tg:controlStatus ?st } } }"
    )
    return {tuple(r[k].value for k in ("f", "t", "st") if k in r) for r in rows}


# -- the Store protocol -----------------------------------------------------------------------------------
def test_store_protocol(oxigraph: str) -> None:
    s = RemoteStore(oxigraph)
    s.drop_graph("urn:t:g")
    s.load('<urn:t:a> <urn:t:p> "x", "y"@en, 3 .', "text/turtle", "urn:t:g")
    assert "urn:t:g" in s.graph_names()
    rows = s.select("SELECT ?o WHERE { <urn:t:a> <urn:t:p> ?o } ORDER BY STR(?o)")
    assert [r["o"] for r in rows] == [Literal(3), Literal("x"), Literal("y", language="en")]
    assert s.select("SELECT ?o WHERE { <urn:t:a> <urn:t:p> ?o }", {"o": Literal("y", language="en")})
    assert not s.select("SELECT ?o WHERE { <urn:t:a> <urn:t:p> ?o }", {"o": Literal("y")})
    assert s.ask("ASK { GRAPH <urn:t:g> { ?s ?p 3 } }")
    assert len(s.construct("CONSTRUCT { ?s ?p ?o } WHERE { GRAPH <urn:t:g> { ?s ?p ?o } }")) == 3
    with pytest.raises(InputError, match="cannot parse"):
        s.replace_graph("urn:t:g", "this is not turtle", "text/turtle")
    assert len(list(s.quads("urn:t:g"))) == 3  # the failed replace kept the old content
    s.replace_graph("urn:t:g", "<urn:t:a> <urn:t:p> <urn:t:b> .", "application/n-triples")
    assert [q.object for q in s.quads("urn:t:g")] == [NamedNode("urn:t:b")]
    assert b"<urn:t:b>" in s.dump("urn:t:g", "application/n-triples")
    s.update("INSERT DATA { GRAPH <urn:t:g> { <urn:t:c> <urn:t:p> <urn:t:d> } }")
    assert len(s) >= 2
    s.drop_graph("urn:t:g")
    assert "urn:t:g" not in s.graph_names()


def test_blank_nodes_shared_across_writes_stay_linked(oxigraph: str) -> None:
    s = RemoteStore(oxigraph)
    b = BlankNode("r1")
    s.add_quads([Quad(b, NamedNode("urn:t:onProperty"), NamedNode("urn:t:p"), NamedNode("urn:t:ont"))])
    s.add_quads([Quad(NamedNode("urn:t:C"), NamedNode("urn:t:sub"), b, NamedNode("urn:t:inf"))])
    assert s.ask("ASK { <urn:t:C> <urn:t:sub> ?r . ?r <urn:t:onProperty> <urn:t:p> }")
    assert len(list(s.quads("urn:t:ont"))) == 1  # rewritten, not duplicated
    s.drop_graph("urn:t:ont")
    s.drop_graph("urn:t:inf")


def test_errors_are_store_errors() -> None:
    with pytest.raises(InputError, match="invalid SPARQL endpoint"):
        RemoteStore("ftp://example.org/sparql")
    dead = RemoteStore(f"http://127.0.0.1:{free_port()}/query", timeout=5)
    with pytest.raises(StoreError, match="cannot reach"):
        dead.select("SELECT * WHERE { ?s ?p ?o } LIMIT 1")


@pytest.mark.filterwarnings("ignore:.*query type:RuntimeWarning")  # SPARQLWrapper cannot classify bad text
def test_bad_sparql_is_a_store_error(oxigraph: str) -> None:
    with pytest.raises(StoreError, match="failed"):
        RemoteStore(oxigraph).select("SELEC nothing")


# -- parity with the embedded store -----------------------------------------------------------------------
@pytest.mark.parametrize("model", EXAMPLES, ids=lambda p: p.stem)
def test_same_findings_as_embedded(oxigraph: str, model: Path) -> None:
    embedded = Engine().analyze([model]).store
    remote = open_store(endpoint=oxigraph)
    Engine(remote).analyze([model])
    expected = finding_set(embedded)
    assert len(expected) > 100
    assert finding_set(remote) == expected


def test_push_and_analyze_cli(oxigraph: str, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(EXAMPLES[0])
    assert main(["push", "--endpoint", oxigraph, "--model", model]) == 0
    remote = RemoteStore(oxigraph)
    assert {"https://w3id.org/threatgraph/graph/ontology", "https://w3id.org/threatgraph/graph/model"} <= set(
        remote.graph_names()
    )
    capsys.readouterr()
    assert main(["analyze", model, "--format", "json", "--endpoint", oxigraph]) == 0
    remote_json = json.loads(capsys.readouterr().out)
    assert main(["analyze", model, "--format", "json"]) == 0
    local_json = json.loads(capsys.readouterr().out)
    assert canonical(remote_json["findings"]) == canonical(local_json["findings"])


def canonical(findings: list[dict[str, object]]) -> list[str]:
    """Findings as sorted JSON strings. The risk *score* is compared; its factor text is not, because
    threatgraph.analysis.risk breaks ties between equally sensitive data assets by result order, which differs
    between servers (reported to the integrator)."""
    out = []
    for f in findings:
        g = dict(f)
        risk = g.pop("risk", None)
        if isinstance(risk, dict):
            g["risk"] = {k: risk[k] for k in ("score", "level", "likelihood", "impact") if k in risk}
        out.append(json.dumps(g, sort_keys=True))
    return sorted(out)


def test_query_cli_on_endpoint_and_embedded(oxigraph: str, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(EXAMPLES[0])
    Engine(open_store(endpoint=oxigraph)).analyze([model])
    capsys.readouterr()
    assert main(["query", "rules-fired", "--endpoint", oxigraph, "--format", "csv"]) == 0
    remote = capsys.readouterr().out
    assert main(["query", "rules-fired", "--model", model, "--format", "csv"]) == 0
    assert capsys.readouterr().out == remote and remote.startswith("ruleId,title,severity,findings")
    assert main(["query", "findings-of-element", "--endpoint", oxigraph, "--param", "element=not an iri"]) == 2
    assert "not a valid IRI" in capsys.readouterr().err
    assert main(["query", "no-such-query"]) == 2
    assert main(["queries"]) == 0
    listing = capsys.readouterr().out
    assert "techniques-changed" in listing and "--param old=<iri>" in listing


@pytest.mark.shared
def test_push_store_with_knowledge_gives_same_technique_findings(
    oxigraph: str, shared_data: Path, tmp_path: Path
) -> None:
    """Releases imported locally, pushed graph by graph; the technique stage then runs on the server."""
    from threatgraph.knowledge.releases import load_release

    local_dir = str(tmp_path / "store")
    local = open_store(local_dir)
    load_release(local, "attack", str(shared_data / "attack/enterprise-attack-18.1.stix20.json"))
    load_release(local, "atlas", str(shared_data / "atlas/ATLAS.yaml"))
    load_release(local, "d3fend", str(shared_data / "d3fend/d3fend-protege-1.2.0.ttl"))
    model = str(REPO / "data" / "examples" / "rag-assistant.ttl")
    Engine(local).analyze([model])
    expected_findings, expected_tech = finding_set(local), technique_rows(local)
    del local
    remote = RemoteStore(oxigraph)
    for g in remote.graph_names():
        remote.drop_graph(g)
    assert main(["push", "--endpoint", oxigraph, "--store", local_dir]) == 0
    assert "https://w3id.org/threatgraph/graph/release/attack-enterprise/18.1" in remote.graph_names()
    Engine(remote).analyze([model])
    assert len(expected_tech) > 100
    assert technique_rows(remote) == expected_tech
    assert finding_set(remote) == expected_findings
