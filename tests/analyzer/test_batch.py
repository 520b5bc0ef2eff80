"""The batch summary of a folder of reports (analyzer/batch.py), which the report browser
shows: failure rates by phase, rule and EV × EVSE pairing; a session fails only by its goal."""
from __future__ import annotations

from ccs_analyzer.analyzer.batch import batch_summary, folder_summary
from ccs_analyzer.analyzer.scoring import failed
from ccs_analyzer.dissectors.oui import vendor


def _rep(sessions, findings):
    return {"verdict": "fail", "sessions": sessions, "findings": findings}


def test_batch_summary_rates():
    f1 = {"id": "F1", "rule": "PRE001", "title": "t", "severity": "error", "session": "S1"}
    f2 = {"id": "F2", "rule": "SEQ001", "title": "u", "severity": "warning", "session": "S1"}
    s_bad = {"id": "S1", "verdict": "fail", "goal": "not achieved", "outcome": "stopped by EV",
             "phase_reached": "pre-charge",
             "root_cause": "F1", "findings": ["F1", "F2"], "EVCCID": "aabbccddeeff", "EVSEID": "DE*ABC*E1",
             "ev_mac": "dc:0e:a1:11:67:08", "evse_mac": "02:00:00:00:e5:01"}
    s_ok = {"id": "S1", "verdict": "pass", "goal": "achieved", "outcome": "completed normally",
            "phase_reached": "session stop",
            "root_cause": None, "findings": [], "EVCCID": None, "EVSEID": "DE*ABC*E1",
            "ev_mac": "dc:0e:a1:11:67:08", "evse_mac": "02:00:00:00:e5:01"}
    s = batch_summary([("a", _rep([s_bad], [f1, f2])), ("b", _rep([s_ok], [])), ("c", None)])
    assert s["sessions"] == 2 and s["failed"] == 1 and s["rate"] == 50.0 and s["captures"] == 2
    ph = {p["phase"]: p for p in s["by_phase"]}
    assert ph["pre-charge"]["rate"] == 100.0 and ph["session stop"]["rate"] == 0.0
    assert [p["phase"] for p in s["by_phase"]] == ["pre-charge", "session stop"]   # protocol order
    r = {x["rule"]: x for x in s["by_rule"]}
    assert r["PRE001"]["root_cause"] == 1 and r["SEQ001"]["root_cause"] == 0 and r["PRE001"]["rate"] == 50.0
    pairs = {(q["ev"], q["evse"]): q for q in s["by_pair"]}
    assert pairs[("aabbccddeeff", "DE*ABC*E1")]["failed"] == 1
    ev_vendor = vendor("dc:0e:a1:11:67:08")
    assert pairs[(ev_vendor, "DE*ABC*E1")]["rate"] == 0.0     # no EVCCID: the MAC's vendor


def test_failed_is_the_goal_not_achieved():
    assert failed({"goal": "not achieved"})
    assert not failed({"goal": "achieved", "verdict": "fail"})
    assert not failed({"goal": "unknown"}) and not failed({})


def test_folder_summary_without_store_reads_the_reports_and_says_why_not_the_store(tmp_path):
    s_bad = {"id": "S1", "goal": "not achieved", "phase_reached": "pre-charge", "findings": []}
    rep = {"verdict": "fail", "sessions": [s_bad], "findings": []}
    s = folder_summary(None, [("a", rep)])
    assert s["kind"] == "reports" and s["failed"] == 1 and s["store_error"] is None
    s = folder_summary(tmp_path / "missing", [("a", rep)])
    assert s["kind"] == "reports" and s["store_error"].startswith(str(tmp_path / "missing"))
