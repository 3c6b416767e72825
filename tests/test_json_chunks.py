"""The JSON report's UTF-8 pieces (issue 14): ``JsonChunks.utf8()`` is the text's encoding, and
``write_output`` writes the same file from them as from the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from threatgraph.analysis.findings import Finding, RiskFactorView, TechniqueView
from threatgraph.commands._output import write_output
from threatgraph.report import JsonChunks, Triage, findings_json_chunks

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"


def _findings() -> list[Finding]:
    """Findings with non-ASCII text (×, —, é, a character outside the BMP) and shared parts."""
    out = []
    for i in range(40):
        f = Finding(f"urn:f:{i}", ["R-é", "TG-PE-STRIDE"][i % 2], "threat — x", ["low", "info", "high"][i % 3],
                    f"urn:e{i % 5}", f"élément {i % 5} \U0001f512", "Process", f"because {i} ×", "src ’",
                    categories=[(f"urn:c{i % 3}", f"C{i % 3}", "STRIDE")], evidence=[("kind", "urn:k", "Procès")],
                    control_status=["unmitigated", "mitigated", "partly mitigated"][i % 3],
                    likelihood=3, impact=4, risk_score=12 if i % 4 else 0, risk_level="high" if i % 4 else "",
                    risk_factors=[RiskFactorView("likelihood", "exposure", "publicly exposed", 1, f"é{i % 5}")])
        for k in range(i % 3):
            f.techniques.append(TechniqueView(f"urn:t{k}", f"T100{k}", "Tëchnique", "urn:m", justification="— why",
                                              exposures=[(f"élément {i % 5}", "a")], status=["unmitigated", "mitigated"][k % 2],
                                              mitigations=[("M1", "Mitigation ×")]))
        out.append(f)
    return out


def test_utf8_pieces_are_the_text_encoded(tmp_path: Path) -> None:
    fs = _findings()
    chunks = findings_json_chunks(fs, model_files=["m.ttl"], remediation={"R-é": "do — this"}, triage=Triage(fs))
    assert isinstance(chunks, JsonChunks)
    text = "".join(chunks)
    assert "×" in text and "\U0001f512" in text and '"techniques": [{"id": "T1000"' in text
    assert b"".join(chunks.utf8()) == text.encode("utf-8")
    assert "".join(chunks) == text  # iterated again: the same text
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_output(str(a), chunks)
    write_output(str(b), [text])
    assert a.read_bytes() == b.read_bytes() == text.encode("utf-8")


@pytest.mark.parametrize("name", ["rag-assistant", "health-risk"])
def test_utf8_pieces_of_an_example(name: str) -> None:
    from threatgraph.analysis.engine import labels_of
    from threatgraph.analysis.findings import read_findings
    from threatgraph.analysis.pipeline import analyze

    analysis = analyze([str(EXAMPLES / f"{name}.ttl")])
    labels = labels_of(analysis.store)
    fs = read_findings(analysis.store, labels)
    chunks = findings_json_chunks(fs, model_files=["m.ttl"], triage=Triage(fs))
    assert b"".join(chunks.utf8()) == "".join(chunks).encode("utf-8")
