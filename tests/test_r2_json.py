"""The JSON report's speed-ups of round 2 (issue 14) keep its bytes: technique views numbered by identity
give the tokens and text of content-equal copies, and ``write_stdout`` writes the UTF-8 pieces to stdout's
buffer only where the text stream would write the same bytes."""

from __future__ import annotations

import copy
import io
import sys
from collections.abc import Iterator

import pytest

from threatgraph.analysis.findings import Finding, RiskFactorView, TechniqueView
from threatgraph.commands._output import write_stdout
from threatgraph.report import JsonChunks, Triage, findings_json_chunks


def _findings(shared: bool) -> list[Finding]:
    """Findings whose techniques are a few views, shared by object (``shared``, as ``findings_of`` makes them)
    or copied per finding (content-equal objects)."""
    views = [TechniqueView(f"urn:t{k}", f"T100{k}", "Tëchnique ×", "urn:m", justification="— why",
                           exposures=[("élément", "a")], status=["unmitigated", "mitigated"][k % 2],
                           mitigations=[("M1", "Mitigation"), ("M2", "Other")], implemented=[("M2", "ctl")] if k else [])
             for k in range(3)]
    out = []
    for i in range(30):
        f = Finding(f"urn:f:{i}", ["R-1", "TG-PE-STRIDE"][i % 2], "threat", ["low", "info", "high"][i % 3],
                    f"urn:e{i % 4}", f"élément {i % 4}", "Process", f"because {i}", "src",
                    categories=[(f"urn:c{i % 3}", f"C{i % 3}", "STRIDE")], control_status="unmitigated",
                    likelihood=3, impact=4, risk_score=12, risk_level="high",
                    risk_factors=[RiskFactorView("likelihood", "exposure", "publicly exposed", 1, "x")])
        for k in range(i % 4):
            v = views[k % 3]
            f.techniques.append(v if shared else copy.deepcopy(v))
        out.append(f)
    return out


def test_shared_and_copied_views_have_the_same_tokens_and_text() -> None:
    shared, copied = _findings(True), _findings(False)
    ts, tc = Triage(shared, {"R-1": "fix"}), Triage(copied)
    assert [ts.tokens(f) for f in shared] == [tc.tokens(f) for f in copied]
    assert len(ts.encoder) == len(tc.encoder) == 3
    assert len(ts.encoder.ids) == 3 and len(tc.encoder.ids) == sum(len(f.techniques) for f in copied)
    a = "".join(findings_json_chunks(shared, triage=ts))
    b = "".join(findings_json_chunks(copied, remediation={"R-1": "fix"}))
    assert a == b and '"missingMitigations": ["M1"]' in a


class _Spy:
    """Chunks that record whether their UTF-8 pieces were taken."""

    def __init__(self, chunks: JsonChunks) -> None:
        self.chunks = chunks
        self.took: list[str] = []

    def __iter__(self) -> Iterator[str]:
        self.took.append("text")
        return iter(self.chunks)

    def utf8(self, errors: str = "strict") -> Iterator[bytes]:
        self.took.append(f"utf8:{errors}")
        return self.chunks.utf8(errors)


def _stream(encoding: str, errors: str = "strict") -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors=errors)


def _written(stream: io.TextIOWrapper) -> bytes:
    stream.flush()
    raw = stream.buffer
    assert isinstance(raw, io.BytesIO)
    return raw.getvalue()


def test_write_stdout_utf8_pieces_after_earlier_text(monkeypatch: pytest.MonkeyPatch) -> None:
    fs = _findings(True)
    chunks = findings_json_chunks(fs, model_files=["m.ttl"])
    text = "".join(chunks)
    out = _stream("UTF8")
    monkeypatch.setattr(sys, "stdout", out)
    print("before")  # text still in the stream's buffer comes first
    spy = _Spy(chunks)
    write_stdout(spy)  # type: ignore[arg-type]
    assert spy.took == ["utf8:strict"]
    assert _written(out) == ("before\n" + text).encode("utf-8")


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8-sig", "ascii"])
def test_write_stdout_other_encodings_as_text(monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    fs = _findings(True)
    chunks = findings_json_chunks(fs, model_files=["m.ttl"])
    text = "".join(chunks)
    out = _stream(encoding, "replace")
    monkeypatch.setattr(sys, "stdout", out)
    spy = _Spy(chunks)
    write_stdout(spy)  # type: ignore[arg-type]
    assert spy.took == ["text"]
    assert _written(out) == text.encode(encoding, "replace")


def test_write_stdout_without_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = findings_json_chunks(_findings(True))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    write_stdout(chunks)
    write_stdout(["plain ", "text"])
    assert out.getvalue() == "".join(chunks) + "plain text"


def test_write_stdout_error_handler_as_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model path undecodable as UTF-8 (a lone surrogate from argv): written as the text stream writes it
    with surrogateescape; refused, as by the text stream, with strict."""
    chunks = findings_json_chunks(_findings(True), model_files=["m\udcff.ttl"])
    text = "".join(chunks)
    out = _stream("utf-8", "surrogateescape")
    monkeypatch.setattr(sys, "stdout", out)
    spy = _Spy(chunks)
    write_stdout(spy)  # type: ignore[arg-type]
    assert spy.took == ["utf8:surrogateescape"]
    assert _written(out) == text.encode("utf-8", "surrogateescape") and b"m\xff.ttl" in _written(out)
    monkeypatch.setattr(sys, "stdout", _stream("utf-8"))
    with pytest.raises(UnicodeEncodeError):
        write_stdout(chunks)
