"""The control pilot in report.html (IEC 61851-1): the CP lane of the plots, the measured
voltage / current of a basic session, the "Control pilot" table and the CP rows of the
message sequence; a session without CP readings renders as before.

Always run: the made basic-charging capture (tests/reports/captures.py, frames written by
hand) and hand-made events; the real captures of ../shared run when it is there."""
from __future__ import annotations

import re
from types import SimpleNamespace

from ccs_analyzer.analyzer.views.control_pilot import build_cp_view
from ccs_analyzer.dissectors.events import Event
from ccs_analyzer.reports import html_report as hr
from ccs_analyzer.reports.html_report import write_html_report
from ccs_analyzer.reports.plots import _step_runs, session_plots, svg_cp_lane
from ccs_analyzer.reports.sequence import pilot_label, sequence_rows

T0 = 1_700_000_000.0
#: The transitions of the made basic-charging capture, as the chart labels them.
BASIC_LABELS = ["→ A1", "A1 → B1", "B1 → B2 (22 % · 13.2 A)", "B2 → C2", "C2 → B2 (16 % · 9.6 A)",
                "B2 → C2", "C2 → C1", "C1 → B1", "B1 → A1"]


def svg_of(html: str, panel: str) -> str:
    m = re.search(rf'<svg [^>]*data-panel="{panel}".*?</svg>', html, re.S)
    return m.group(0) if m else ""


def section(html: str, sid: str) -> str:
    """The HTML of a session's section."""
    m = re.search(rf'<section id="{sid}" class="session">(.*?)</section>', html, re.S)
    return m.group(1)


# --------------------------------------------------------------------------- hand-made events
def cp_st(frame: int, t: float, volts: float, duty: float = 100.0, hz: float = 0.0) -> Event:
    """A VS_CP_STATE.IND (ST/IoTecha) event, decoded as the dissector gives it."""
    return Event(frame=frame, time=T0 + t, layer="slac", name="VS_CP_STATE.IND(ST/IoTecha)",
                 protocol="HomePlug", src="02:00:00:00:c9:01", dst="00:b0:52:00:00:01",
                 message={"Voltage_V": volts, "DutyCycle_pct": duty, "Frequency_Hz": hz})


def cd(frame: int, t: float) -> Event:
    """A CurrentDemandReq / Res (no payload: the chart needs only the name and direction)."""
    req = frame % 2 == 0
    return Event(frame=frame, time=T0 + t, layer="v2gtp",
                 name="CurrentDemandReq" if req else "CurrentDemandRes", protocol="DIN 70121",
                 direction="EV->EVSE" if req else "EVSE->EV", conn=0)


def test_a_pilot_row_per_transition_ends_the_loop_it_interrupts():
    evs = [cp_st(1, 0.0, 5.96, 5.0, 1000.0)]
    evs += [cd(f, 0.1 * f) for f in range(2, 8)]
    evs.append(cp_st(8, 0.85, 8.95, 5.0, 1000.0))             # the EV leaves C during the loop
    evs += [cd(f, 0.1 * f) for f in range(10, 16)]
    evs += [cp_st(16, 1.65, 7.4, 5.0, 1000.0), cp_st(17, 1.7, 8.95, 5.0, 1000.0)]
    session = SimpleNamespace(events=evs)
    rows = sequence_rows(session, T0, {16: ["F9"]})
    kinds = [r["kind"] for r in rows if r["kind"] != "phase"]
    assert kinds == ["pilot", "loop", "pilot", "loop", "pilot"]
    assert [r["kind"] for r in rows].count("phase") == 1      # the split loop keeps its phase
    pilots = [r for r in rows if r["kind"] == "pilot"]
    assert [r["label"] for r in pilots] == ["→ C2 (5 %)", "C2 → B2", "7.4 V between the bands"]
    assert [r["transition"] for r in pilots] == [True, True, False]      # 16 is cited, 17 no change
    assert pilots[2]["findings"] == ["F9"] and pilots[1]["frame"] == 8 and pilots[1]["letter"] == "B"
    assert [r["count"] for r in rows if r["kind"] == "loop"] == [6, 6]


def test_pilot_labels():
    assert pilot_label(None, "E") == "→ E"
    assert pilot_label("C2", "B2") == "C2 → B2"
    assert pilot_label("B1", "B2", 5.0) == "B1 → B2 (5 %)"
    assert pilot_label("B1", "B2", 22.0, 13.2) == "B1 → B2 (22 % · 13.2 A)"


def test_cp_lane_rows_in_voltage_order_with_duty_and_findings():
    evs = [cp_st(1, 0.0, 12.0), cp_st(2, 3.0, 8.97), cp_st(3, 4.0, 8.95, 5.0, 1000.0),
           cp_st(4, 5.0, 7.7, 5.0, 1000.0), cp_st(5, 5.01, 5.96, 5.0, 1000.0),
           cp_st(6, 9.0, 0.1, 0.0, 1000.0)]
    cp = build_cp_view(evs)
    marker = {"t": 5.0, "id": "F7", "severity": "warning", "text": "CPL008: <b>noise</b>"}
    svg = svg_cp_lane(cp, T0, (-0.5, 9.5), [marker])
    labels = re.findall(r'class="ax cps s-\w">(?:<title>[^<]*</title>)?([A-F][12]?)</text>', svg)
    assert labels == ["A1", "B1", "B2", "C2", "E"]             # top to bottom: 12 V … 0 V
    assert svg.count('class="cpst"') == len(cp.transitions) == 5
    assert 'data-role="duty"' in svg and "5 %" in svg
    assert svg.count('class="oob"') == 2                       # the 7.7 V reading and its legend
    assert 'data-finding="F7"' in svg and "&lt;b&gt;noise" in svg and "<b>" not in svg
    assert "contactor" not in svg                              # no test system: no band


def test_step_lines_break_where_the_value_goes_away():
    assert _step_runs([(0.0, 1.0), (1.0, None), (2.0, 3.0)], 0.0, 10.0, True) == [
        [(0.0, 1.0), (1.0, 1.0)], [(2.0, 3.0), (10.0, 3.0)]]
    assert _step_runs([(0.0, 1.0), (5.0, 2.0)], 1.0, 10.0, True) == [[(1.0, 1.0), (5.0, 2.0), (10.0, 2.0)]]


# --------------------------------------------------------------------------- the made captures
def test_basic_session_report_shows_the_cp_lane_table_and_transitions(analyses):
    a = analyses["basic"]
    (s,) = a.sessions
    assert s.basic and a.summaries["S1"]["protocol"] == "IEC 61851-1"
    html = hr.render_html(a)
    sec = section(html, "S1")
    ids = re.findall(r'data-panel="([a-z_]+)"', sec)
    assert ids == ["measured_voltage", "measured_current", "cp"]     # no empty V2G panels
    lane = svg_of(sec, "cp")
    assert lane.count('data-contactor="closed"') == 2 and lane.count('class="cpst"') == 9
    assert 'current the PWM duty cycle allows' in svg_of(sec, "measured_current")
    for f in a.findings:                                       # findings marked on the lane
        if f.session == "S1" and f.time is not None:
            assert f'data-finding="{f.id}"' in lane
    # the "Control pilot" table
    assert "<h3>Control pilot</h3>" in sec
    table = re.search(r'<table class="pilot-tr">(.*?)</table>', sec, re.S).group(1)
    assert table.count("<tr>") == 1 + 9
    for label in ("A1 → B1", "B1 → B2", "B2 → C2", "C2 → B2", "C2 → C1", "B1 → A1"):
        assert label in table
    text = re.sub(r"<[^>]+>", "", sec)
    assert "22 % → 13.2 A" in text and "16 % → 9.6 A" in text
    assert "1568 Ω–1575 Ω → 13 A cable" in text
    assert "2 closings, 2 openings" in text
    assert "between the bands" in text and "7.7 V at 6.000 s" in text
    # the session card says what it is and leaves out what only V2G says
    assert "basic charging (IEC 61851-1)" in text
    for v2g_only in ("payment / transfer", "SessionID", "V2G messages", "SoC"):
        assert v2g_only not in text
    # the sequence chart: a CP lane with one row per transition
    msc = re.search(r'<div class="msc with-pilot".*?</div>\s*</section>', html, re.S)
    assert msc is not None and '<span class="lane pilot">CP' in msc.group(0)
    rows = re.findall(r'<div class="mrow pilot[^"]*" data-frame="(\d+)">', html)
    cited = {fr for f in a.findings for fr in f.frames}
    cp = build_cp_view(s.events)
    assert len(rows) == 9 + len(cited & {x.frame for x in cp.samples} - {tr.frame for tr in cp.transitions})


def test_basic_session_sequence_has_one_row_per_transition(analyses):
    a = analyses["basic"]
    (s,) = a.sessions
    cp = build_cp_view(s.events)
    rows = sequence_rows(s, s.events[0].time, {}, cp)
    assert [r["kind"] for r in rows if r["kind"] not in ("gap",)] == ["pilot"] * 9
    assert [r["label"] for r in rows if r["kind"] == "pilot"] == BASIC_LABELS
    assert [r["frame"] for r in rows if r["kind"] == "pilot"] == [tr.frame for tr in cp.transitions]
    assert len(cp.samples) > 2 * len(cp.transitions)          # not one row per reading
    gaps = [r for r in rows if r["kind"] == "gap"]              # the readings between are counted
    # 6.25 … 20.25 s: the contactor, the meter, the 16 % PWM and the noise, no state change
    assert [(g["seconds"], g["pilot_readings"]) for g in gaps] == [(4.0, 1), (18.0, 7), (4.0, 1), (8.0, 2)]


def test_pilot_facts_of_the_basic_session(analyses):
    a = analyses["basic"]
    (s,) = a.sessions
    p = hr.pilot_facts(build_cp_view(s.events), s.events[0].time)
    assert p["sequence"] == ["A1", "B1", "B2", "C2", "B2", "C2", "C1", "B1", "A1"]
    assert [(d["duty_pct"], d["current_A"], d["digital"]) for d in p["duty"]] == [(22.0, 13.2, False),
                                                                                  (16.0, 9.6, False)]
    assert p["pp"]["ratings_A"] == [13.0] and p["pp"]["min_ohm"] == 1568.0
    assert [c["state"] for c in p["contactor"]] == ["open", "closed", "open", "closed", "open"]
    assert (p["closings"], p["openings"]) == (2, 2)
    assert p["out_of_band_n"] == 2 and p["primary"] == "ST/IoTecha"
    assert {x["source"] for x in p["sources"]} == {"ST/IoTecha", "dSPACE SCS"}
    assert hr.pilot_facts(build_cp_view([]), 0.0) is None


def test_session_without_cp_evidence_renders_as_before(analyses):
    a = analyses["fail"]
    (s,) = a.sessions
    assert not build_cp_view(s.events).samples and not getattr(s, "basic", False)
    html = hr.render_html(a)
    body = html.split("</style>", 1)[1].split("<script", 1)[0]       # not the stylesheet
    for cp_only in ("Control pilot", 'data-panel="cp"', "with-pilot", "mrow pilot", "pilot-tr",
                    "lane pilot", "basic charging", "measured_"):
        assert cp_only not in body
    assert "payment / transfer" in html and "V2G messages" in html
    ids = re.findall(r'data-panel="([a-z_]+)"', html)
    assert ids[:2] == ["voltage", "current"] and ids[-1] == "precharge"
    rows = sequence_rows(s, s.events[0].time, {})
    assert not [r for r in rows if r["kind"] == "pilot"]
    t0 = s.events[0].time
    assert [p["id"] for p in session_plots(s, t0, [])] == ids


# --------------------------------------------------------------------------- real captures
def test_corpus_basic_capture(corpus):
    from ccs_analyzer.analyzer.analysis import analyze_capture
    a = analyze_capture(corpus / "IEC61851_AC_PWM_Basic.pcapng")
    basic = [s for s in a.sessions if s.basic]
    assert basic
    html = hr.render_html(a)
    sec = section(html, basic[0].id)
    assert 'data-panel="cp"' in sec and 'data-panel="measured_current"' in sec
    assert 'data-panel="voltage"' not in sec
    assert "B1 → B2 (22 % · 13.2 A)" in sec and "C2 → C1" in sec and "13 A cable" in sec
    cp = build_cp_view(basic[0].events)
    assert sec.count('class="mrow pilot') >= len(cp.transitions) > 3


def test_corpus_pause_shows_the_pilot_wake_up_between_the_connections(corpus):
    from ccs_analyzer.analyzer.analysis import analyze_capture
    a = analyze_capture(corpus / "ISO-2_DC_Pause_DS5366.pcapng")
    s = a.sessions[0]
    rows = sequence_rows(s, s.events[0].time, {})
    seq = [(r["kind"], r.get("label") or r.get("name") or r.get("base")) for r in rows
           if r["kind"] in ("msg", "loop", "pilot")]
    first_stop = seq.index(("msg", "SessionStopRes"))
    second_sdp = [i for i, x in enumerate(seq) if x == ("msg", "SDP request")][-1]
    between = [label for kind, label in seq[first_stop:second_sdp] if kind == "pilot"]
    # the EV sleeps (B1), wakes the EVSE with B → C → B, the EVSE answers with its 5 % PWM
    assert between == ["B2 → B1", "B1 → C1", "C1 → B1", "B1 → B2 (5 %)"]
    html = hr.render_html(a)
    assert 'data-panel="cp"' in html and 'data-panel="voltage"' in html
    assert "digital communication" in html


# --------------------------------------------------------------------------- in the browser
def test_basic_report_in_the_browser(watched, analyses, tmp_path):
    url = (tmp_path / "report.html").as_uri() if write_html_report(analyses["basic"], tmp_path) else None
    w = watched(lambda u: u.split("#")[0] == url)
    w.page.goto(url)
    w.page.wait_for_load_state("load")
    assert w.problems() == []                                  # no CSP violation, no script error
    lane = w.page.locator("svg.plot[data-panel=cp]")
    box = lane.bounding_box()
    assert box["width"] > 300 and box["height"] > 80
    assert w.page.locator(".msc .mrow.pilot").count() >= 9
    w.page.locator(".msc .mrow.pilot button.mname").nth(2).click()     # the frame panel opens
    panel = w.page.locator("#frame-panel")
    panel.wait_for(state="visible")
    assert "DutyCycle_pct" in panel.inner_text()
