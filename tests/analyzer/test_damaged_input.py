"""Damaged captures (random byte flips, truncation) never raise: the analysis, report.json and
report.html all come out, no rule fails (ENG001) and no dissector error is hidden."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.dissectors.capture import CaptureError
from ccs_analyzer.reports.html_report import render_html
from ccs_analyzer.reports.json_report import report_dict

REPO = Path(__file__).resolve().parents[2]
SOURCES = [REPO / "samples" / "din_dc_session.pcapng",
           *sorted((REPO / "samples" / "captures").glob("iso2_dc_pnc*.pcapng"))[:1],
           *sorted((REPO / "samples" / "captures").glob("iso20_dc.pcapng"))]


@pytest.mark.parametrize("seed", range(12))
def test_mutated_captures_are_analysed(tmp_path, seed):
    rng = random.Random(seed)
    src = SOURCES[seed % len(SOURCES)]
    data = bytearray(src.read_bytes())
    for _ in range(rng.choice([1, 8, 80, 800])):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if seed % 3 == 0:
        data = data[: rng.randrange(len(data) // 2, len(data))]
    p = tmp_path / "m.pcapng"
    p.write_bytes(bytes(data))
    try:
        a = analyze_capture(p)
    except CaptureError:
        return                       # the file header itself was destroyed: a clear error
    json.dumps(report_dict(a))
    assert render_html(a)
    assert not [f for f in a.findings if f.rule == "ENG001"]
    evs = [e for s in a.sessions for e in s.events] + list(a.capture_events)
    assert not [e for e in evs if e.name == "dissector error"]
    assert a.accounting["frames"] == a.capture["frames"]
