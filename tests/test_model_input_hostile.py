"""Hostile RDF model input (issue 11): one clear message and exit 2, never a traceback, a hang or a fetch.

Each case is written by the test (nothing large is committed) and run through the CLI in a subprocess
with a time limit; a positive counterpart shows the check does not refuse ordinary input.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

GOOD_TTL = """@prefix tg: <https://w3id.org/threatgraph/ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<urn:x:api> a tg:Process ; rdfs:label "API" .
"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">
 <rdf:Description rdf:about="urn:a"><rdfs:label>&f;</rdfs:label></rdf:Description>
</rdf:RDF>
"""
NAMESPACE_ENTITIES = """<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [ <!ENTITY tg "https://w3id.org/threatgraph/ontology#"> ]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">
 <rdf:Description rdf:about="urn:x:api"><rdf:type rdf:resource="&tg;Process"/><rdfs:label>API</rdfs:label></rdf:Description>
</rdf:RDF>
"""


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "threatgraph", *args], capture_output=True, text=True,
                          timeout=timeout, env={k: v for k, v in os.environ.items() if k != "THREATGRAPH_ALLOW_REMOTE_CONTEXT"})


def refused(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.startswith("threatgraph: error:")
    for w in words:
        assert w in res.stderr


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("bad.nt", '<urn:a> <urn:b> "x .\n', ["bad.nt:1", "malformed"]),
        ("ctx5.jsonld", '{"@context": 5, "@id": "urn:a"}', ["@context", "not int"]),
        ("file.jsonld", '{"@context": "file:///etc/passwd", "@id": "urn:a"}', ["does not fetch", "file:///etc/passwd"]),
        ("space.ttl", "@prefix tg: <https://w3id.org/threatgraph/ontology#> .\n<urn:a b> a tg:Process .\n",
         ["space.ttl:", "not a valid IRI"]),
        ("quote.ttl", '@prefix tg: <https://w3id.org/threatgraph/ontology#> .\n<urn:x"y> a tg:Process .\n', ["not a valid IRI"]),
        ("brace.ttl", "@prefix tg: <https://w3id.org/threatgraph/ontology#> .\n<urn:{z}> a tg:Process .\n", ["not a valid IRI"]),
        ("laughs.rdf", LAUGHS, ["built from other entities"]),
    ],
)
def test_refused_with_one_message(tmp_path: Path, name: str, text: str, words: list[str]) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    refused(run("analyze", str(path), "--force", timeout=30), *words)
    refused(run("validate", str(path), timeout=30), *words)


def test_remote_context_is_not_fetched(tmp_path: Path) -> None:
    """A JSON-LD @context naming a local listener: refused, and the listener sees no connection."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.5)
    hits: list[object] = []

    def accept() -> None:
        try:
            hits.append(srv.accept())
        except OSError:
            pass

    th = threading.Thread(target=accept)
    th.start()
    path = tmp_path / "remote.jsonld"
    port = srv.getsockname()[1]
    path.write_text(f'{{"@context": "http://127.0.0.1:{port}/ctx", "@id": "urn:a", "name": "x"}}', encoding="utf-8")
    refused(run("analyze", str(path), "--force"), "does not fetch")
    th.join()
    srv.close()
    assert hits == []


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "model.ttl"
    os.mkfifo(fifo)
    refused(run("analyze", str(fifo), timeout=20), "not a regular file")


def test_ordinary_input_still_reads(tmp_path: Path) -> None:
    """Negative cases: the checks do not refuse ordinary Turtle, inline JSON-LD contexts or RDF/XML with
    plain namespace entities."""
    ttl = tmp_path / "m.ttl"
    ttl.write_text(GOOD_TTL, encoding="utf-8")
    jsonld = tmp_path / "m.jsonld"
    jsonld.write_text('{"@context": {"tg": "https://w3id.org/threatgraph/ontology#", "label": '
                      '"http://www.w3.org/2000/01/rdf-schema#label"}, "@id": "urn:x:api", "@type": "tg:Process", '
                      '"label": "API"}', encoding="utf-8")
    rdf = tmp_path / "m.rdf"
    rdf.write_text(NAMESPACE_ENTITIES, encoding="utf-8")
    for path in (ttl, jsonld, rdf):
        res = run("analyze", str(path), "--force", "--format", "json")
        assert res.returncode == 0, res.stderr
        assert '"TG-PE-STRIDE"' in res.stdout


def test_model_above_the_element_limit_is_refused_up_front(tmp_path: Path) -> None:
    """A model larger than $THREATGRAPH_MAX_ELEMENTS is refused before any reasoning, naming the limit;
    the same model under a raised limit is analysed."""
    path = tmp_path / "big.ttl"
    body = "".join(f"<urn:x:p{i}> a tg:Process .\n" for i in range(60))
    path.write_text("@prefix tg: <https://w3id.org/threatgraph/ontology#> .\n" + body, encoding="utf-8")
    env = {k: v for k, v in os.environ.items()}
    small = subprocess.run([sys.executable, "-m", "threatgraph", "analyze", str(path), "--force"], capture_output=True,
                           text=True, timeout=60, env={**env, "THREATGRAPH_MAX_ELEMENTS": "50"})
    refused(small, "above the limit of 50", "THREATGRAPH_MAX_ELEMENTS")
    ok = subprocess.run([sys.executable, "-m", "threatgraph", "analyze", str(path), "--force"], capture_output=True,
                        text=True, timeout=60, env={**env, "THREATGRAPH_MAX_ELEMENTS": "100"})
    assert ok.returncode == 0, ok.stderr
