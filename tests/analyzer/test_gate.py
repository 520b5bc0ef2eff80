"""``ccs-analyzer gate``, consistent with the verdicts (docs/scoring.md, docs/ci.md): findings at
or above the threshold count once per cause (consequences do not), a session that did not
achieve its goal counts unless --no-goal or the baseline accepts it, baselines written by
the gate make the next run pass, and the JUnit XML has one test case per session and rule."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.analyzer.cli import app
from ccs_analyzer.analyzer.gate import Baseline, judge, write_baseline

REPO = Path(__file__).resolve().parents[2]
CAPS = REPO / "samples" / "captures"
#: a clean session (goal achieved, conformance pass)
CLEAN = REPO / "samples" / "din_dc_session.pcapng"
#: the EV stops in PreCharge for no visible reason: failed, no error-severity finding
NO_CAUSE = CAPS / "iso2_dc_ev_stops_in_precharge.pcapng"
#: the EV gives up after a late response: failed, root cause TIM001 with consequences
LATE = CAPS / "din_dc_response_after_ev_timeout.pcapng"
runner = CliRunner()


def gate(*args):
    return runner.invoke(app, ["gate", *[str(a) for a in args]], catch_exceptions=False)


def test_clean_capture_passes(tmp_path):
    r = gate(CLEAN, "--junit", tmp_path / "g.xml", "--json", tmp_path / "g.json")
    assert r.exit_code == 0, r.output
    js = json.loads((tmp_path / "g.json").read_text())
    cap = js["captures"][0]
    assert cap["failed_sessions"] == [] and cap["sessions"][0]["goal"] == "achieved"


def test_failed_session_without_error_findings_fails_the_gate(tmp_path):
    a = analyze_capture(NO_CAUSE)
    assert not [f for f in a.findings if f.severity == "error"]
    assert a.summaries["S1"]["goal"] == "not achieved"
    r = gate(NO_CAUSE, "--junit", tmp_path / "g.xml")
    assert r.exit_code == 1 and "session S1 failed" in r.output and "No cause visible" in r.output
    suite = ET.parse(tmp_path / "g.xml").getroot().find("testsuite")
    case = next(c for c in suite.findall("testcase") if c.get("name") == "session S1 goal")
    assert "No cause visible" in case.find("failure").get("message")
    assert gate(NO_CAUSE, "--no-goal").exit_code == 0


def test_written_baseline_accepts_findings_and_failed_sessions(tmp_path):
    bl = tmp_path / "bl.json"
    assert gate(NO_CAUSE, LATE, "--write-baseline", bl, "-j", "1").exit_code == 1
    r = gate(NO_CAUSE, LATE, "--baseline", bl, "-j", "1")
    assert r.exit_code == 0, r.output
    assert "failed session(s) baselined" in r.output


def test_failure_without_any_finding_is_baselined_by_phase_and_outcome(tmp_path):
    from tests.rules.test_engine import precharge, setup_exchanges, stop
    from tests.rules.util import analyze_events, script
    a = analyze_events(script(setup_exchanges() + precharge(3, [100.0, 300.0, 380.0]) + stop()))
    s = a.summaries["S1"]
    assert s["goal"] == "not achieved" and s["root_cause"] is None
    g = judge(a, "x.pcapng", "error", Baseline())
    assert [x["id"] for x in g.failed_sessions] == ["S1"]
    write_baseline(tmp_path / "bl.json", [g])
    entries = json.loads((tmp_path / "bl.json").read_text())["accepted"]
    goal = [e for e in entries if e["rule"] == "GOAL"]
    assert len(goal) == 1 and {"capture": "x.pcapng", "rule": "GOAL", "phase": s["phase_reached"],
                               "message": "stopped by EV"}.items() <= goal[0].items()
    g = judge(a, "x.pcapng", "error", Baseline(entries))
    assert not g.failed_sessions and g.accepted_sessions


def test_consequences_count_with_their_cause():
    a = analyze_capture(LATE)
    root = next(f for f in a.findings if f.id == a.summaries["S1"]["root_cause"])
    cons = [f for f in a.findings if f.caused_by]
    assert root.rule == "TIM001" and cons
    g = judge(a, str(LATE), "warning", Baseline())
    assert root in g.counting and not any(f in g.counting for f in cons)
    assert [s["id"] for s in g.failed_sessions] == ["S1"]
    # accepting the root cause accepts the session's failure
    bl = Baseline([{"capture": LATE.name, "rule": root.rule, "phase": root.phase, "message": root.message}])
    g = judge(a, str(LATE), "warning", bl)
    assert root in g.baselined and not g.failed_sessions and g.accepted_sessions
