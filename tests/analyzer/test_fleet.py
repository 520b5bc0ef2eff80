"""Fleet questions (analyzer/fleet.py, ``ccs-analyzer fleet``) on a hand-built Parquet store
with known answers: totals, rates by phase, root cause, rule, EV × EVSE and day, the PFMEA
occurrence (rule → failure mode), the window, the CLI's three formats, an empty store, a
missing one."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("duckdb")

from typer.testing import CliRunner  # noqa: E402

from ccs_analyzer.analyzer import fleet as fl  # noqa: E402
from ccs_analyzer.analyzer.cli import app  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

# The agreed store schema (docs/fleet.md "Store"); the columns the fixture fills.
CAPTURE_SCHEMA = pa.schema([
    ("sha256", pa.string()), ("file", pa.string()), ("path", pa.string()), ("size", pa.int64()),
    ("frames", pa.int64()), ("first_time", pa.float64()), ("last_time", pa.float64()),
    ("duration_s", pa.float64()), ("analyzed_at", pa.string()), ("analyzer_version", pa.string()),
    ("profile", pa.string()), ("verdict", pa.string()), ("conformance", pa.string()),
    ("score", pa.int64()), ("sessions", pa.int64()), ("errors", pa.int64()),
    ("warnings", pa.int64()), ("infos", pa.int64())])
SESSION_SCHEMA = pa.schema([
    ("sha256", pa.string()), ("session", pa.string()), ("protocol", pa.string()),
    ("outcome", pa.string()), ("phase_reached", pa.string()), ("goal", pa.string()),
    ("verdict", pa.string()), ("conformance", pa.string()), ("score", pa.int64()),
    ("stop_kind", pa.string()), ("stopped_by", pa.string()), ("root_cause_rule", pa.string()),
    ("root_cause_culprit", pa.string()), ("root_cause_synopsis", pa.string()),
    ("no_cause_visible", pa.bool_()), ("explanation", pa.string()), ("EVCCID", pa.string()),
    ("ev_mac", pa.string()), ("ev_vendor", pa.string()), ("evse_mac", pa.string()),
    ("evse_vendor", pa.string()), ("EVSEID", pa.string()), ("energy_transfer_mode", pa.string()),
    ("payment", pa.string()), ("energy_wh", pa.float64()), ("energy_transferred", pa.bool_()),
    ("start", pa.float64()), ("end", pa.float64()), ("duration_s", pa.float64()),
    ("basic", pa.bool_()), ("findings", pa.list_(pa.string()))])
FINDING_SCHEMA = pa.schema([
    ("sha256", pa.string()), ("session", pa.string()), ("id", pa.string()), ("rule", pa.string()),
    ("title", pa.string()), ("category", pa.string()), ("severity", pa.string()),
    ("culprit", pa.string()), ("first_frame", pa.int64()), ("frames", pa.list_(pa.int64())),
    ("time", pa.float64()), ("synopsis", pa.string()), ("measured", pa.string()),
    ("limit", pa.string()), ("unit", pa.string()), ("caused_by", pa.string()),
    ("role", pa.string()), ("count", pa.int64()), ("failure_modes", pa.list_(pa.string()))])


def _t(day: int, hour: int) -> float:
    return dt.datetime(2026, 3, day, hour, tzinfo=dt.timezone.utc).timestamp()


def _table(rows: list[dict], schema) -> "pa.Table":
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)


def write_capture(store: Path, cap: dict, sessions: list[dict], findings: list[dict]) -> None:
    """One capture's rows in the store layout (date of its first packet, its sha256)."""
    day = dt.datetime.fromtimestamp(cap["first_time"], dt.timezone.utc).strftime("%Y-%m-%d")
    d = store / f"date={day}" / f"sha256={cap['sha256']}"
    d.mkdir(parents=True, exist_ok=True)
    for s in sessions:
        s["sha256"] = cap["sha256"]
    for f in findings:
        f["sha256"] = cap["sha256"]
    pq.write_table(_table([cap], CAPTURE_SCHEMA), d / "captures.parquet")
    pq.write_table(_table(sessions, SESSION_SCHEMA), d / "sessions.parquet")
    pq.write_table(_table(findings, FINDING_SCHEMA), d / "findings.parquet")


EV_A = {"EVCCID": "aa0000000001", "ev_mac": "02:00:00:00:00:0a", "ev_vendor": "02:00:00 (locally administered)"}
EV_B = {"EVCCID": None, "ev_mac": "02:00:00:00:00:0b", "ev_vendor": "02:00:00 (locally administered)"}
EV_C = {"EVCCID": "cc0000000003", "ev_mac": None, "ev_vendor": None}
EVSE_X = {"EVSEID": "DE*ABC*E1", "evse_mac": "02:00:00:00:e5:01"}
EVSE_Y = {"EVSEID": None, "evse_mac": "02:00:00:00:e5:02", "evse_vendor": "02:00:00 (locally administered)"}
EVSE_Z = {"EVSEID": "DE*XYZ*E9", "evse_mac": None}


def _s(sid, phase, goal, outcome, t0, root=None, culprit=None, **who):
    return {"session": sid, "protocol": "DIN 70121", "phase_reached": phase, "goal": goal,
            "outcome": outcome, "start": t0, "end": None if t0 is None else t0 + 60,
            "root_cause_rule": root, "root_cause_culprit": culprit,
            "root_cause_synopsis": f"{root} happened" if root else None,
            "no_cause_visible": goal == "not achieved" and root is None, **who}


def _f(fid, session, rule, fms, t, severity="error", count=1):
    return {"id": fid, "session": session, "rule": rule, "title": f"title of {rule}",
            "severity": severity, "category": "x", "culprit": "SECC", "time": t, "count": count,
            "failure_modes": fms, "frames": [1, 2]}


def build_store(store: Path) -> Path:
    """Four captures over three days (2026-03-01 … 03), seven sessions plus one crosstalk;
    the expected answers are spelled out in the tests."""
    write_capture(store, {"sha256": "a1" * 32, "file": "c1.pcapng", "first_time": _t(1, 8), "verdict": "fail"},
                  [_s("S1", "pre-charge", "not achieved", "stopped by EV", _t(1, 8), "PRE001", "SECC", **EV_A, **EVSE_X),
                   _s("S2", "session stop", "achieved", "completed normally", _t(1, 9), **EV_B, **EVSE_X),
                   _s("S3", "SLAC", None, "crosstalk", _t(1, 10), **EV_C, **EVSE_Z)],
                  [_f("F1", "S1", "PRE001", ["UC2 156"], _t(1, 8) + 5),
                   _f("F2", "S1", "SEQ001", ["UC2 237", "UC2 238", "UC2 239"], _t(1, 8) + 6, "warning"),
                   _f("F3", "S2", "LIM004", ["UC2 244", "UC2 248"], _t(1, 9) + 5, "warning"),
                   _f("F4", "S3", "SDP001", ["UC2 100"], _t(1, 10) + 1),          # crosstalk: not counted
                   _f("F5", None, "MSG001", ["UC2 110", "UC2 111"], _t(1, 8) + 1)])  # capture scope
    write_capture(store, {"sha256": "b2" * 32, "file": "c2.pcapng", "first_time": _t(2, 12), "verdict": "fail"},
                  [_s("S1", "SDP", "not achieved", "never got past SDP", _t(2, 12), "SDP001", "SECC", **EV_A, **EVSE_Y),
                   _s("S2", "charging", "unknown", "capture ended", _t(2, 13), **EV_A, **EVSE_Y)],
                  [_f("F1", "S1", "SDP001", ["UC2 100"], _t(2, 12) + 2),
                   _f("F2", "S1", "SDP002", ["UC2 100"], _t(2, 12) + 3, "warning")])
    write_capture(store, {"sha256": "c3" * 32, "file": "c3.pcapng", "first_time": _t(3, 7), "verdict": "fail"},
                  [_s("S1", "pre-charge", "not achieved", "stopped by EV", _t(3, 7), "PRE001", "SECC", **EV_B, **EVSE_X),
                   _s("S2", "session stop", "achieved", "completed normally", _t(3, 8), **EV_A, **EVSE_X)],
                  [_f("F1", "S1", "PRE001", ["UC2 156"], _t(3, 7) + 5, count=3),
                   _f("F2", "S2", "HSK003", ["UC2 100", "UC2 107"], _t(3, 8) + 1, "info")])
    write_capture(store, {"sha256": "d4" * 32, "file": "c4.pcapng", "first_time": _t(3, 20), "verdict": "fail"},
                  [_s("S1", "cable check", "not achieved", "timed out", None, **EV_C, **EVSE_Z)],
                  [_f("F1", "S1", "CBL003", None, None),          # no failure_modes stored: the pack's
                   _f("F2", "S1", "ZZZ900", ["UC2 301"], _t(3, 20) + 9)])
    return store


@pytest.fixture
def store(tmp_path):
    return build_store(tmp_path / "store")


def test_totals_and_phases(store):
    s = fl.fleet_summary(store)
    t = s["totals"]
    assert (t["captures"], t["sessions"], t["crosstalk"], t["failed"], t["achieved"], t["unknown"]) == (4, 7, 1, 4, 2, 1)
    assert t["failure_rate"] == {"n": 4, "of": 7, "pct": 57.1}
    assert t["verdicts"] == {"fail": 4}
    ph = {p["phase"]: p for p in s["by_phase"]}
    assert [p["phase"] for p in s["by_phase"]] == ["SDP", "cable check", "pre-charge", "charging", "session stop"]
    assert ph["pre-charge"]["failure_rate"] == {"n": 2, "of": 2, "pct": 100.0}
    assert ph["pre-charge"]["share_of_failures"] == {"n": 2, "of": 4, "pct": 50.0}
    assert ph["session stop"]["failure_rate"] == {"n": 0, "of": 2, "pct": 0.0}
    assert ph["charging"]["outcomes"] == {"capture ended": 1}
    assert "SLAC" not in ph                                    # the crosstalk session
    assert s["empty"] is False and s["message"] is None and s["schema"] == fl.SCHEMA


def test_root_causes_rules_pairs_days(store):
    s = fl.fleet_summary(store)
    rc = {(x["rule"], x["culprit"]): x for x in s["by_root_cause"]}
    assert rc[("PRE001", "SECC")]["sessions"] == 2
    assert rc[("PRE001", "SECC")]["share_of_failures"] == {"n": 2, "of": 4, "pct": 50.0}
    assert rc[("SDP001", "SECC")]["failed"] == 1
    assert rc[(None, None)]["sessions"] == 1                     # c4: no cause visible
    r = {x["rule"]: x for x in s["by_rule"]}
    assert r["PRE001"]["findings"] == 2 and r["PRE001"]["occurrences"] == 4
    assert r["PRE001"]["sessions"] == {"n": 2, "of": 7, "pct": 28.6}
    assert r["PRE001"]["fail_rate"] == {"n": 2, "of": 2, "pct": 100.0}
    assert r["PRE001"]["root_cause"] == 2 and r["PRE001"]["captures"] == {"n": 2, "of": 4, "pct": 50.0}
    assert r["SDP001"]["findings"] == 1 and r["SDP001"]["sessions"]["n"] == 1   # not the crosstalk one
    assert r["LIM004"]["fail_rate"] == {"n": 0, "of": 1, "pct": 0.0}
    assert r["MSG001"]["sessions"]["n"] == 0 and r["MSG001"]["captures"]["n"] == 1
    assert s["by_rule"][0]["rule"] == "PRE001"                   # most failed sessions first
    pairs = {(q["ev"], q["evse"]): q for q in s["by_pair"]}
    assert set(pairs) == {("aa0000000001", "DE*ABC*E1"), ("02:00:00:00:00:0b", "DE*ABC*E1"),
                          ("aa0000000001", "02:00:00:00:e5:02"), ("cc0000000003", "DE*XYZ*E9")}
    q = pairs[("aa0000000001", "DE*ABC*E1")]
    assert (q["sessions"], q["failed"], q["captures"], q["ev_by"], q["evse_by"]) == (2, 1, 2, "EVCCID", "EVSEID")
    assert q["failure_rate"] == {"n": 1, "of": 2, "pct": 50.0} and q["root_causes"] == {"PRE001": 1}
    q = pairs[("02:00:00:00:00:0b", "DE*ABC*E1")]
    assert q["ev_by"] == "MAC" and q["ev_vendor"] == "02:00:00 (locally administered)"
    assert pairs[("aa0000000001", "02:00:00:00:e5:02")]["evse_by"] == "MAC"
    assert pairs[("cc0000000003", "DE*XYZ*E9")]["failure_rate"]["pct"] == 100.0
    days = [(d["day"], d["sessions"], d["failed"], d["captures"]) for d in s["by_day"]]
    assert days == [("2026-03-01", 2, 1, 1), ("2026-03-02", 2, 1, 1), ("2026-03-03", 3, 2, 2)]


def test_pfmea_occurrence_maps_rules_to_failure_modes(store):
    s = fl.fleet_summary(store)
    fm = {m["id"]: m for m in s["failure_modes"]}
    m = fm["UC2 156"]
    assert m["sessions"] == {"n": 2, "of": 7, "pct": 28.6} and m["findings"] == 2
    assert m["failed_sessions"] == {"n": 2, "of": 4, "pct": 50.0}
    assert m["captures"] == {"n": 2, "of": 4, "pct": 50.0} and m["one_in"] == 3.5
    assert m["first_seen"] == _t(1, 8) + 5 and m["last_seen"] == _t(3, 7) + 5
    assert m["last_seen_utc"] == "2026-03-03T07:00:05Z"
    assert {x["rule"]: x["sessions"] for x in m["rules"]}["PRE001"] == 2
    assert "CBL001" in {x["rule"] for x in m["rules"]}             # cites it, not seen: 0
    m = fm["UC2 100"]            # SDP001 + SDP002 in one session, HSK003 in another; crosstalk left out
    assert m["findings"] == 3 and m["sessions"]["n"] == 2 and m["failed_sessions"]["n"] == 1
    assert fm["UC2 110"]["sessions"]["n"] == 0 and fm["UC2 110"]["captures"]["n"] == 1  # capture scope
    assert fm["UC2 167"]["sessions"]["n"] == 1                    # CBL003: the rule pack's modes
    assert fm["UC2 167"]["first_seen"] == _t(3, 20)                # no finding time: the capture's
    assert fm["UC2 301"]["sessions"]["n"] == 1                    # a rule outside the pack: the store's
    assert fm["UC2 252"]["sessions"]["n"] == 0 and fm["UC2 252"]["one_in"] is None
    assert s["failure_modes"][0]["id"] in ("UC2 100", "UC2 156")   # most sessions first
    rows = {e["row"]: e for e in s["pfmea_rows"]}
    if s["pfmea_source"] and s["pfmea_source"].endswith("FAILURE_MODES.md"):
        assert fm["UC2 156"]["pfmea"]["cause"] == "Signal integrity issue (noise)"
        assert fm["UC2 100"]["pfmea"]["failure_mode"].startswith("EV/EVSE fail to establish a successful V2G")
        assert fm["UC2 237-239"]["pfmea"]["cause"].startswith("237 Signal integrity")
        e = rows["UC2 237–239"]
    else:
        e = rows["UC2 237–239"]
    assert {"UC2 237", "UC2 238", "UC2 239", "UC2 237-239"} <= set(e["ids"])
    assert e["sessions"]["n"] == 1 and e["findings"] == 1         # one SEQ001 finding, counted once
    assert rows["UC2 100–103"]["sessions"]["n"] == 2


def test_pfmea_text_without_shared(store, monkeypatch, tmp_path):
    monkeypatch.setenv("CCS_SHARED", str(tmp_path / "nowhere"))
    s = fl.fleet_summary(store)
    assert s["pfmea_source"] == "rules/failure_modes.py"
    fm = {m["id"]: m for m in s["failure_modes"]}
    assert fm["UC2 156"]["pfmea"]["row"] == "UC2 156–158" and fm["UC2 156"]["pfmea"]["cause"] is None
    assert fm["UC2 301"]["pfmea"]["failure_mode"].startswith("EV and EVSE cannot reliably")
    assert fm["UC1 230-231"]["pfmea"] is None                     # IDs only


def test_parse_failure_modes_table():
    text = ("| IDs | Step | Failure mode | Effect | Severity | Cause(s) by ID | Observable | Lines |\n"
            "|---|---|---|---|---|---|---|---|\n"
            "| UC2 100–103 | 7 V2G | fail | Failed | C=8 U=1 Avg=4.5 | 100 Incorrect SDP; 101 Signal "
            "integrity issue (noise); 102 EVCC crash; 103 SECC crash | Yes | L959 |\n"
            "| UC2 104–106 | 7 | timeout | Failed | C=8 U=1 Avg=4.5 | 104 Mismatch | Yes | L965 |\n"
            "| UC2 1–50 | 1–3 | x | y |\n")
    rows = fl.parse_failure_modes(text)
    assert set(rows) == {("UC2", n) for n in range(100, 107)}
    assert rows[("UC2", 104)]["step"] == "7 V2G" and rows[("UC2", 105)]["cause"] is None
    assert rows[("UC2", 101)]["cause"] == "Signal integrity issue (noise)"
    assert rows[("UC2", 100)]["severity_avg"] == 4.5 and rows[("UC2", 100)]["row"] == "UC2 100–103"
    assert fl.pfmea_entry("UC2 102-103", rows)["cause"] == "102 EVCC crash; 103 SECC crash"
    assert fl.pfmea_entry("UC2 999", rows) is None and fl.pfmea_entry("nonsense", rows) is None


def test_window(store):
    s = fl.fleet_summary(store, since="2026-03-02", until="2026-03-02")
    t = s["totals"]
    assert (t["captures"], t["sessions"], t["failed"], t["crosstalk"]) == (1, 2, 1, 0)
    assert s["window"] == {"since": "2026-03-02", "until": "2026-03-02", "basis": s["window"]["basis"]}
    assert {m["id"]: m["sessions"]["n"] for m in s["failure_modes"]}["UC2 156"] == 0
    s = fl.fleet_summary(store, since=dt.date(2026, 3, 3))
    assert s["totals"]["sessions"] == 3 and s["totals"]["captures"] == 2   # c4's session: its capture's day
    assert fl.fleet_summary(store, until="2026-02-28")["message"] == "no captures in the window"
    with pytest.raises(fl.FleetError):
        fl.fleet_summary(store, since="03/02/2026")
    with pytest.raises(fl.FleetError):
        fl.fleet_summary(store, since="2026-03-03", until="2026-03-01")


def test_empty_and_missing_store(tmp_path):
    (tmp_path / "empty").mkdir()
    s = fl.fleet_summary(tmp_path / "empty")
    assert s["empty"] is True and s["totals"]["sessions"] == 0 and s["totals"]["failure_rate"]["pct"] is None
    assert "holds no captures" in s["message"]
    assert all(m["sessions"]["n"] == 0 for m in s["failure_modes"])
    with pytest.raises(FileNotFoundError):
        fl.fleet_summary(tmp_path / "missing")


def test_older_store_without_columns(tmp_path):
    """A column missing from every file reads as NULL; a table without files as empty."""
    d = tmp_path / "old" / "date=2026-03-01" / "sha256=ee"
    d.mkdir(parents=True)
    pq.write_table(pa.table({"sha256": ["ee"], "first_time": [_t(1, 1)]}), d / "captures.parquet")
    pq.write_table(pa.table({"sha256": ["ee"], "session": ["S1"], "goal": ["not achieved"],
                             "phase_reached": ["SDP"]}), d / "sessions.parquet")
    s = fl.fleet_summary(tmp_path / "old")
    assert s["totals"]["failed"] == 1 and s["by_rule"] == [] and s["by_day"][0]["day"] == "2026-03-01"
    assert s["by_pair"][0]["ev"] == "(unknown EV)"


# ---------------------------------------------------------------------------- CLI
def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_cli_table(store):
    r = run("fleet", store)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "4 capture(s), 7 session(s) (+1 crosstalk, not counted)" in out
    assert "failed 4 / 7 (57.1 %) of the sessions" in out
    for title in ("By phase reached", "By root cause", "By rule", "By EV × EVSE", "Over time",
                  "ChargeX PFMEA failure modes"):
        assert title in out
    assert "UC2 156" in out and "2 / 7 (28.6 %)" in out and "DE*ABC*E1" in out


def test_cli_json(store, tmp_path):
    r = run("fleet", store, "--format", "json")
    assert r.exit_code == 0
    s = json.loads(r.stdout)
    assert s["kind"] == "fleet" and s["totals"]["failed"] == 4
    out = tmp_path / "fleet.json"
    r = run("fleet", store, "--format", "json", "-o", out, "--since", "2026-03-03")
    assert r.exit_code == 0 and json.loads(out.read_text())["totals"]["sessions"] == 3


def test_cli_html(store, tmp_path):
    out = tmp_path / "fleet.html"
    r = run("fleet", store, "--format", "html", "-o", out)
    assert r.exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # offline
    for sid in ("by-phase", "by-root", "by-rule", "by-pair", "by-day", "by-failure-mode", "by-pfmea-row"):
        assert f'id="{sid}"' in html
    assert "PRE001" in html and "UC2 156" in html and "57.1 %" in html and "<svg" in html


def test_cli_empty_missing_and_bad_input(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run("fleet", tmp_path / "empty")
    assert r.exit_code == 0 and "holds no captures" in r.output
    r = run("fleet", tmp_path / "empty", "--format", "html", "-o", tmp_path / "e.html")
    assert r.exit_code == 0 and "holds no captures" in (tmp_path / "e.html").read_text()
    r = run("fleet", tmp_path / "missing")
    assert r.exit_code == 2 and "no such store" in r.output
    r = run("fleet", tmp_path / "empty", "--since", "yesterday")
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output
    r = run("fleet", tmp_path / "empty", "--format", "xml")
    assert r.exit_code == 2


# ---------------------------------------------------------------------------- through the writer
SAMPLES = REPO / "samples" / "captures"


def test_store_written_by_the_analyzer(tmp_path):
    """Two sample captures analysed and put with analyzer/store.py, then asked."""
    store_mod = pytest.importorskip("ccs_analyzer.analyzer.store")
    from ccs_analyzer.analyzer.analysis import analyze_capture

    st = store_mod.Store(tmp_path / "store")
    analyses = [analyze_capture(SAMPLES / n) for n in ("din_dc_precharge_never_reaches.pcapng",
                                                        "din_dc_no_sdp_response.pcapng")]
    for a in analyses:
        st.put_analysis(a)
    s = fl.fleet_summary(st.path)
    sessions = [x for a in analyses for x in a.summaries.values() if x["outcome"] != "crosstalk"]
    failed = sum(x["goal"] == "not achieved" for x in sessions)
    assert s["totals"]["captures"] == 2 and s["totals"]["sessions"] == len(sessions)
    assert s["totals"]["failed"] == failed
    rules = {f.rule for a in analyses for f in a.findings}
    assert {r["rule"] for r in s["by_rule"]} == rules and {"PRE001", "SDP001"} <= rules
    fm = {m["id"]: m for m in s["failure_modes"]}
    for a in analyses:
        for f in a.findings:
            for ref in f.failure_modes:
                assert fm[ref]["findings"] >= 1 and f.rule in {x["rule"] for x in fm[ref]["rules"] if x["findings"]}
    assert fm["UC2 156"]["sessions"]["n"] == 1 and fm["UC2 156"]["sessions"]["of"] == len(sessions)
    roots = {(x["rule"], x["culprit"]) for x in s["by_root_cause"]}
    assert ("PRE001", "SECC") in roots and ("SDP001", "SECC") in roots
    day = dt.datetime.fromtimestamp(analyses[0].capture["first_time"], dt.timezone.utc).strftime("%Y-%m-%d")
    assert s["by_day"][0]["day"] == day


# ---------------------------------------------------------------------------- report browser
def test_browser_batch_summary_reads_the_store(tmp_path):
    import http.client
    import threading

    from ccs_analyzer.reports import browser as br

    root = tmp_path / "runs"
    root.mkdir()
    assert br.Library(root).summary()["kind"] == "reports"          # no store: the reports
    build_store(root / br.STORE_DIR)
    lib = br.Library(root)
    s = lib.summary()
    assert s["kind"] == "fleet" and s["totals"]["failed"] == 4 and s["store"] == str(root / br.STORE_DIR)
    other = build_store(tmp_path / "elsewhere")
    assert br.Library(root, store=other).summary()["store"] == str(other)
    srv = br.make_server(root, port=0)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        c.request("GET", "/summary", headers={"Host": f"127.0.0.1:{srv.port}"})
        r = c.getresponse()
        html = r.read().decode()
        assert r.status == 200 and "unsafe-inline" not in r.getheader("Content-Security-Policy")
        assert 'id="by-pfmea-row"' in html and 'id="by-phase"' in html and "57.1 %" in html
        c.request("GET", "/api/summary", headers={"Host": f"127.0.0.1:{srv.port}"})
        assert json.loads(c.getresponse().read())["kind"] == "fleet"
        c.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_browser_falls_back_when_the_store_cannot_be_read(tmp_path):
    from ccs_analyzer.reports import browser as br

    root = tmp_path / "runs"
    bad = root / br.STORE_DIR / "date=2026-03-01" / ("sha256=" + "ab" * 32)
    bad.mkdir(parents=True)
    (bad / "captures.parquet").write_bytes(b"not parquet")
    s = br.Library(root).summary()
    assert s["kind"] == "reports" and "cannot read the store" in s["store_error"]
