"""The N-Triples text the Python stage writes a term as (``_Out.key``): a named node's is built from its value
(issue 14, speed) and must stay what ``str`` gives, also for IRIs a lenient load let through."""

from __future__ import annotations

from pyoxigraph import BlankNode, Literal, NamedNode, RdfFormat, Triple
from pyoxigraph import Store as OxStore

from threatgraph.analysis.stage_python import PythonStage, _Out


def _out() -> _Out:
    return _Out(PythonStage(None, OxStore()))  # type: ignore[arg-type]  # (key reads neither store)


def test_named_node_text_is_str() -> None:
    ox = OxStore()
    ox.load('<http://ex/a b> <http://ex/p> <http://ex/{x}|^`> .\n<http://ex/\\u00e9> <http://ex/p> <urn:x:y> .\n',
            RdfFormat.N_TRIPLES, to_graph=NamedNode("urn:g"), lenient=True)
    terms = [t for q in ox for t in (q.subject, q.predicate, q.object)]
    terms.append(NamedNode("https://w3id.org/threatgraph/finding/app/0123/AML.T0051"))
    out = _out()
    assert {t.value for t in terms} >= {"http://ex/a b", "http://ex/{x}|^`", "http://ex/é", "urn:x:y"}
    for t in terms:
        assert out.key(t) == str(t)
    assert not out.special


def test_other_terms_keep_their_keys() -> None:
    out = _out()
    lit = Literal("x", language="en")
    assert out.key(lit) == str(lit)
    b = BlankNode()
    text = out.key(b)
    assert text != str(b) and out.special[text] == b
    t = Triple(NamedNode("urn:s"), NamedNode("urn:p"), NamedNode("urn:o"))
    assert out.special[out.key(t)] == t
