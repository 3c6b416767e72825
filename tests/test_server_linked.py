"""``threatgraph serve`` as linked data (issue 16): ``/ontology`` by content negotiation, and the graph's
own IRIs dereferenced (``/resource?iri=``, ``/atlas/…``, ``/attack/…``, ``/finding/…``) as Turtle,
JSON-LD or HTML, on a store holding real ATT&CK 18.1 + ATLAS releases and an analysed example."""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import rdflib
import yaml
from rdflib.compare import isomorphic
from rdflib.namespace import RDFS, SKOS

from threatgraph.analysis.engine import Engine
from threatgraph.knowledge.releases import load_release
from threatgraph.server import Running, ServerConfig, start, write_dataset
from threatgraph.store import open_store
from threatgraph.terms import ATLAS, ATTACK, KB, TG

# A private opener: SPARQLWrapper installs a global urllib opener (with a digest-auth handler whose
# retry count, once past 5, turns every later 401 into an HTTPError without a body), and other test
# files run before these.
_OPENER = urllib.request.build_opener()

pytestmark = pytest.mark.shared

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "data" / "examples" / "rag-assistant.ttl"
T0051 = rdflib.URIRef(ATLAS["AML.T0051"])


@pytest.fixture(scope="module")
def dataset(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """ATT&CK 18.1 + ATLAS + the analysed RAG example as an N-Quads file; and the finding IRIs."""
    store = open_store()
    load_release(store, "attack", str(shared_data / "attack" / "enterprise-attack-18.1.stix20.json"))
    load_release(store, "atlas", str(shared_data / "atlas" / "ATLAS.yaml"))
    Engine(store).analyze([str(MODEL)])
    findings = [r["f"].value for r in store.select("SELECT ?f WHERE { ?f a tg:Finding } ORDER BY ?f")]
    return write_dataset(store.quads(), str(tmp_path_factory.mktemp("linked"))), findings


@pytest.fixture(scope="module")
def served(dataset: tuple[str, list[str]]) -> Iterator[tuple[Running, list[str]]]:
    """A read-only server on that dataset."""
    running = start(ServerConfig(port=0, time_limit=10.0, workers=2, max_rows=5000), dataset[0])
    yield running, dataset[1]
    running.stop()


def get(url: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def turtle(body: bytes) -> rdflib.Graph:
    return rdflib.Graph().parse(data=body.decode(), format="turtle")


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def links(body: bytes) -> list[str]:
    p = Links()
    p.feed(body.decode())
    return p.hrefs


# -- /ontology ----------------------------------------------------------------------------------------
def test_ontology_html_or_turtle_by_accept(served: tuple[Running, list[str]]) -> None:
    url = served[0].url + "/ontology"
    status, headers, body = get(url, "text/html,application/xhtml+xml,*/*;q=0.8")  # a browser
    assert status == 200 and headers["Content-Type"].startswith("text/html") and headers["Vary"] == "Accept"
    assert b'id="tg:Finding"' in body and b"<h1>threatgraph vocabulary</h1>" in body

    status, headers, body = get(url, "text/turtle")
    assert status == 200 and headers["Content-Type"].startswith("text/turtle") and headers["Vary"] == "Accept"
    g = turtle(body)
    assert (rdflib.URIRef(TG.Finding), rdflib.RDF.type, rdflib.OWL.Class) in g
    assert b"<!DOCTYPE" not in body

    status, headers, body = get(url, "application/ld+json")
    assert status == 200 and headers["Content-Type"].startswith("application/ld+json")
    assert isomorphic(rdflib.Graph().parse(data=body.decode(), format="json-ld"), g)

    assert get(url, "image/png")[0] == 406


# -- dereferencing --------------------------------------------------------------------------------------
def test_atlas_technique_in_turtle_has_label_and_tactic_with_its_label(
    served: tuple[Running, list[str]], shared_data: Path
) -> None:
    # the expected answer comes from ATLAS.yaml itself
    matrix = yaml.safe_load((shared_data / "atlas" / "ATLAS.yaml").read_text())["matrices"][0]
    tech = next(t for t in matrix["techniques"] if t["id"] == "AML.T0051")
    tactic_names = {t["id"]: t["name"] for t in matrix["tactics"] if t["id"] in tech["tactics"]}
    assert tactic_names

    status, headers, body = get(served[0].url + "/atlas/AML.T0051", "text/turtle")
    assert status == 200 and headers["Content-Type"].startswith("text/turtle") and headers["Vary"] == "Accept"
    g = turtle(body)
    assert (T0051, RDFS.label, rdflib.Literal(tech["name"])) in g
    for tid, name in tactic_names.items():
        tactic = rdflib.URIRef(ATLAS[tid])
        assert (T0051, rdflib.URIRef(KB.tactic), tactic) in g
        assert (tactic, RDFS.label, rdflib.Literal(name)) in g
    # only the technique's own triples and the labels of what it links to
    assert {s for s in g.subjects()} - {T0051} <= set(g.objects(T0051))
    assert {p for s, p, _ in g if s != T0051} <= {RDFS.label, SKOS.prefLabel}

    # the same description through /resource?iri=
    s2, _, b2 = get(served[0].url + "/resource?" + urllib.parse.urlencode({"iri": str(T0051)}), "text/turtle")
    assert s2 == 200 and set(turtle(b2)) == set(g)


def test_json_ld_parses_to_the_same_graph(served: tuple[Running, list[str]], shared_data: Path) -> None:
    bundle = json.loads((shared_data / "attack" / "enterprise-attack-18.1.stix20.json").read_text())
    name = next(o["name"] for o in bundle["objects"] if o.get("type") == "attack-pattern" and any(
        r.get("external_id") == "T1059.001" for r in o.get("external_references", [])))
    url = served[0].url + "/attack/T1059.001"
    status, headers, body = get(url, "application/ld+json")
    assert status == 200 and headers["Content-Type"].startswith("application/ld+json")
    json.loads(body)
    g = rdflib.Graph().parse(data=body.decode(), format="json-ld")
    t = rdflib.URIRef(ATTACK["T1059.001"])
    assert (t, RDFS.label, rdflib.Literal(name)) in g
    assert set(g) == set(turtle(get(url, "text/turtle")[2]))


def test_html_page_has_links_that_work(served: tuple[Running, list[str]]) -> None:
    url = served[0].url
    status, headers, body = get(url + "/atlas/AML.T0051", "text/html")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"<title>LLM Prompt Injection" in body
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    hrefs = links(body)
    tactic = next(h for h in hrefs if re.fullmatch(r"/atlas/AML\.TA\d{4}", h))
    status, _, tbody = get(url + tactic, "text/html")
    assert status == 200 and b"<h1>" in tbody and b"kb:Tactic" in tbody
    # a link to a resource outside our namespace goes through /resource?iri= and answers too
    outside = next(h for h in hrefs if h.startswith("/resource?iri=http%3A%2F%2Fpurl.org"))
    assert get(url + outside)[0] in (200, 404)  # dct terms are not described in this dataset: 404, not 500
    vocab = next(h for h in hrefs if h.startswith("/ontology#kb:"))
    assert get(url + vocab.split("#")[0])[0] == 200
    # every link to one of our resources resolves
    for h in {h for h in hrefs if h.startswith(("/atlas/", "/attack/"))}:
        assert get(url + h, "text/turtle")[0] == 200, h


def test_a_finding_from_the_analysis_dereferences(served: tuple[Running, list[str]]) -> None:
    running, findings = served
    assert findings
    f = findings[0]
    path = "/" + f.removeprefix("https://w3id.org/threatgraph/")
    status, _, body = get(running.url + path, "text/turtle")
    assert status == 200
    g = turtle(body)
    fi = rdflib.URIRef(f)
    assert (fi, rdflib.RDF.type, rdflib.URIRef(TG.Finding)) in g
    rule = g.value(fi, rdflib.URIRef(TG.byRule))
    assert rule is not None and g.value(rule, RDFS.label) is not None  # the rule's label came along
    status, _, html_body = get(running.url + path, "text/html")
    assert status == 200 and any(h.startswith("/rule/") for h in links(html_body))


def test_unknown_iri_is_404_and_bad_iri_is_400(served: tuple[Running, list[str]]) -> None:
    url = served[0].url
    status, _, body = get(url + "/atlas/AML.T9999", "text/turtle")
    assert status == 404 and b"no statements about <https://w3id.org/threatgraph/atlas/AML.T9999>" in body
    status, _, body = get(url + "/resource?iri=" + urllib.parse.quote("urn:example:nothing"))
    assert status == 404
    for bad in ("not an iri", "relative/path", "http://exa mple.org/", ""):
        status, _, body = get(url + "/resource?" + urllib.parse.urlencode({"iri": bad}))
        assert status == 400, bad
    assert get(url + "/resource")[0] == 400
    assert get(url + "/attack/%ff%fe")[0] == 400
    assert get(url + "/atlas/AML.T0051", "image/png")[0] == 406


def test_iri_is_bound_not_pasted(served: tuple[Running, list[str]]) -> None:
    """An IRI that would break out of a query if it were pasted into one is just an unknown resource."""
    url = served[0].url
    iri = "urn:x> ?p ?o } UNION { ?s ?p ?o"
    status, _, _ = get(url + "/resource?" + urllib.parse.urlencode({"iri": iri}))
    assert status == 400  # not an IRI at all (spaces, '>')
    iri = "urn:x%3E%20%3Fp"
    status, _, body = get(url + "/resource?" + urllib.parse.urlencode({"iri": iri}), "text/turtle")
    assert status == 404 and f"<{iri}>".encode() in body


def test_bad_host_is_still_refused(served: tuple[Running, list[str]]) -> None:
    host, port = served[0].server.server_address[:2]
    for path in ("/ontology", "/atlas/AML.T0051", "/resource?iri=urn:x"):
        conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
        conn.request("GET", path, headers={"Host": "evil.example:80", "Accept": "text/turtle"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 403 and b"DNS rebinding" in body and b"AML" not in body
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    conn.request("GET", "/atlas/AML.T0051", headers={"Accept": "text/turtle"})
    assert conn.getresponse().status == 200
    conn.close()


def test_writes_are_refused(served: tuple[Running, list[str]]) -> None:
    req = urllib.request.Request(served[0].url + "/atlas/AML.T0051", data=b"x", method="POST")
    try:
        _OPENER.open(req, timeout=10)
        raise AssertionError("POST was accepted")
    except urllib.error.HTTPError as err:
        assert err.code == 405


def test_descriptions_are_bounded_by_the_row_limit(
    served: tuple[Running, list[str]], dataset: tuple[str, list[str]]
) -> None:
    small = len(turtle(get(served[0].url + "/atlas/AML.TA0005", "text/turtle")[2]))  # a tactic
    large = len(turtle(get(served[0].url + "/atlas/AML.T0051", "text/turtle")[2]))
    assert 0 < small < large
    running = start(ServerConfig(port=0, time_limit=10.0, workers=1, max_rows=small), dataset[0])
    try:
        status, _, body = get(running.url + "/atlas/AML.T0051", "text/turtle")
        assert status == 422 and f"more than {small} triples".encode() in body
        status, _, body = get(running.url + "/atlas/AML.TA0005", "text/turtle")
        assert status == 200 and len(turtle(body)) == small
    finally:
        running.stop()


def test_html_escapes_data_values() -> None:
    """Literals and IRIs from the data are text on the page, never markup."""
    from pyoxigraph import Literal, NamedNode, Triple

    from threatgraph.linked import render_html

    s = NamedNode("https://w3id.org/threatgraph/atlas/AML.TX")
    page = render_html(s.value, [
        Triple(s, NamedNode(str(RDFS.label)), Literal("<script>alert(1)</script>")),
        Triple(s, NamedNode(str(RDFS.seeAlso)), NamedNode("https://example.org/x?a=1&b='2'")),
    ])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<code>https://example.org/x?a=1&amp;b=&#x27;2&#x27;</code>" in page
    assert 'href="/resource?iri=https%3A%2F%2Fexample.org%2Fx%3Fa%3D1%26b%3D%272%27"' in page
