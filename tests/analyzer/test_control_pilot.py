"""The control pilot: IEC 61851-1 facts, CP readings from vendor messages, the CP view, and
sessions cut by plug-in cycles (basic charging without HLC) — hand-made events and the
corpus's dSPACE captures."""
from __future__ import annotations

import pytest

from ccs_analyzer.analyzer.control_pilot import (cable_rating_A, cp_sample, pwm_current_A,
                                                 pwm_on, state_of_voltage)
from ccs_analyzer.analyzer.views.control_pilot import build_cp_view
from tests.rules.util import analyze_events, ev

ST = "VS_CP_STATE.IND(ST/IoTecha)"
DS = "MS_SCS_DIAG.IND(dSPACE)"
EVSE_MODEM = "64:4d:70:01:03:bf"


def st(frame, t, volts, duty=100, hz=0):
    """A decoded ST/IoTecha CP reading."""
    return ev(frame, t, "slac", ST, message={"DutyCycle_pct": duty, "Frequency_Hz": hz,
                                              "Voltage_mV": int(volts * 1000),
                                              "Voltage_V": volts},
              src=EVSE_MODEM, dst="00:b0:52:00:00:01")


def ds(frame, t, state, volts, contactor="Open", current=0.0, voltage=0.0, pp=1568.0, battery=0.0):
    """A decoded dSPACE SCS diagnostic reading."""
    j = {"PP Resistor [Ohm]": pp, "HV Contactor": contactor, "Present Current [A]": current,
         "Present Voltage [V]": voltage, "Battery Voltage [V]": battery, "CP State": state,
         "CP/CE Voltage [V]": volts, "Power Type": "AC", "Target Current [A]": 0,
         "Target Voltage [V]": 0}
    return ev(frame, t, "slac", DS, message={"Text": "…", "JSON": j}, src=EVSE_MODEM,
              dst="00:b0:52:00:00:01")


# ------------------------------------------------------------------------- IEC 61851-1 facts
@pytest.mark.parametrize("volts, letter", [(12.0, "A"), (11.1, "A"), (9.0, "B"), (8.06, "B"),
                                           (5.96, "C"), (3.2, "D"), (0.0, "E"), (-12.0, "F"),
                                           (7.67, "?"), (10.5, "?"), (None, None)])
def test_state_bands(volts, letter):
    assert state_of_voltage(volts) == letter


@pytest.mark.parametrize("duty, amps", [(5, None), (4.5, None), (7, None), (9, 6.0), (10, 6.0),
                                        (22, 13.2), (26.7, 16.02), (50, 30.0), (85, 51.0),
                                        (90, 65.0), (96.5, 80.0), (98, None)])
def test_duty_to_current(duty, amps):
    assert pwm_current_A(duty) == amps


@pytest.mark.parametrize("ohm, amps", [(1568, 13.0), (1500, 13.0), (680, 20.0), (220, 32.0),
                                       (100, 63.0), (0, None), (3000, None)])
def test_pp_rating(ohm, amps):
    assert cable_rating_A(ohm) == amps


def test_pwm_on_needs_1khz():
    assert pwm_on(5, 1000) is True
    assert pwm_on(100, 0) is False
    assert pwm_on(0, 1000) is False
    assert pwm_on(22, 500) is False
    assert pwm_on(None, None) is None


def test_samples_from_both_reporters():
    a = cp_sample(st(1, 0.0, 5.956, 22, 1000))
    assert (a.state, a.pwm_current_A, a.source) == ("C2", 13.2, "ST/IoTecha")
    b = cp_sample(ds(2, 0.0, "State_A1", 8.93))      # the test system's name lags the voltage
    assert (b.state, b.reported_state, b.cable_rating_A, b.contactor) == ("B1", "A1", 13.0, "open")
    assert b.row()["CPState"] == "B1" and b.row()["CableRating_A"] == 13.0
    assert cp_sample(ev(3, 0.0, "slac", DS, message={"Text": "x"})) is None
    assert cp_sample(ev(4, 0.0, "slac", "CM_SLAC_PARM.REQ", message={"RunID": "01"})) is None


def test_view_reads_the_measuring_modem_and_its_transitions():
    evs = [st(1, 0.0, 12.0), ds(2, 0.0, "State_A1", 12.0), st(3, 5.0, 9.0),
           ds(4, 5.25, "State_B1", 9.0), st(5, 6.0, 9.0, 5, 1000), ds(6, 7.0, "State_B2", 7.6),
           st(7, 7.01, 6.0, 5, 1000), st(8, 9.0, 12.0)]
    v = build_cp_view(evs)
    assert v.primary == "ST/IoTecha"
    assert [(t.before, t.after) for t in v.transitions] == [
        (None, "A1"), ("A1", "B1"), ("B1", "B2"), ("B2", "C2"), ("C2", "A1")]
    assert [x.frame for x in v.out_of_band] == [6]
    t0 = evs[0].time
    assert v.state_at(t0 + 6.5) == "B2" and v.state_at(t0 - 1) is None
    assert [t.frame for t in v.plug_ins] == [3] and [t.frame for t in v.unplugs] == [8]
    assert v.states_between(t0 + 5.5, t0 + 8.0) == ["B1", "B2", "C2"]


# ---------------------------------------------------------------------------- basic sessions
def _basic_cycle(t0=0.0, frame0=1):
    f = frame0
    out = []
    for dt, volts, duty, hz in ((0, 12.0, 100, 0), (20, 9.0, 100, 0), (21, 9.0, 26, 1000),
                                (22, 6.0, 26, 1000), (40, 9.0, 26, 1000), (41, 9.0, 100, 0),
                                (42, 12.0, 100, 0)):
        out.append(st(f, t0 + dt, volts, duty, hz))
        f += 1
    out.append(ds(f, t0 + 23, "State_C2", 6.0, "Closed", 15.6, 230.0, pp=680.0))
    return sorted(out, key=lambda e: e.time)


def test_a_plug_in_cycle_without_hlc_is_a_basic_session():
    evs = _basic_cycle()
    for i, e in enumerate(evs):
        e.frame = i + 1
    a = analyze_events(evs)
    assert len(a.sessions) == 1
    s = a.sessions[0]
    summ = a.summaries[s.id]
    assert s.basic and summ["protocol"] == "IEC 61851-1"
    assert summ["outcome"] == "completed normally"
    assert summ["energy_transferred"] is True
    assert summ["stop_reason"]["kind"] == "ev-stop" and summ["stop_reason"]["by"] == "EV"
    assert summ["goal"] == "achieved"
    assert not [f for f in a.findings if f.severity == "error"]


def test_two_plug_ins_are_two_sessions_and_readings_before_stay_capture_events():
    first = _basic_cycle(0.0)
    second = _basic_cycle(200.0)
    evs = first + second
    for i, e in enumerate(evs):
        e.frame = i + 1
    a = analyze_events(evs)
    assert [s.basic for s in a.sessions] == [True, True]
    # the first reading (state A, 20 s before the plug-in) belongs to the first cycle
    assert a.sessions[0].events[0].frame == 1


def test_unplug_under_load_is_an_abort():
    evs = [st(1, 0.0, 9.0), st(2, 1.0, 9.0, 26, 1000), st(3, 2.0, 6.0, 26, 1000),
           st(4, 30.0, 12.0, 26, 1000)]
    a = analyze_events(evs)
    summ = a.summaries["S1"]
    assert summ["outcome"] == "aborted by EV"
    assert summ["stop_reason"]["kind"] == "ev-unplugged"
    assert "CPL006" in {f.rule for f in a.findings}
    assert summ["root_cause"] is not None and summ["goal"] == "not achieved"


def test_evse_pwm_off_after_charging_is_an_orderly_end():
    evs = [st(1, 0.0, 9.0), st(2, 1.0, 9.0, 26, 1000), st(3, 2.0, 6.0, 26, 1000),
           st(4, 30.0, 6.0, 100, 0), st(5, 31.0, 9.0, 100, 0), st(6, 33.0, 12.0, 100, 0)]
    summ = analyze_events(evs).summaries["S1"]
    assert summ["outcome"] == "completed normally"
    assert summ["stop_reason"]["kind"] == "evse-end"
    assert summ["goal"] == "achieved"


def test_cp_readings_join_the_hlc_session_they_run_in():
    from tests.rules.util import NS_ISO2, iso2, script
    v2g = script([(iso2("SessionSetupReq", {"EVCCID": "01"}, "00"),
                   iso2("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished",
                                            "EVSEID": "DE*1"}), 0.1, 0.05)],
                 t0=10.0, frame0=10, namespace=NS_ISO2)
    evs = [st(1, 0.0, 12.0), st(2, 5.0, 9.0), st(3, 6.0, 9.0, 5, 1000)] + v2g + [
        st(100, 30.0, 9.0, 100, 0), st(101, 31.0, 12.0)]
    a = analyze_events(sorted(evs, key=lambda e: e.frame))
    assert len(a.sessions) == 1
    s = a.sessions[0]
    assert not s.basic
    assert {1, 2, 3, 100, 101} <= {e.frame for e in s.events}


# ---------------------------------------------------------------------------- the corpus
def test_basic_ac_pwm_capture_is_one_basic_session(corpus):
    from ccs_analyzer.analyzer.analysis import analyze_capture
    a = analyze_capture(corpus / "IEC61851_AC_PWM_Basic.pcapng")
    assert len(a.sessions) == 1
    s = a.sessions[0]
    summ = a.summaries[s.id]
    assert s.basic and summ["protocol"] == "IEC 61851-1"
    assert summ["energy_transferred"] is True
    assert summ["outcome"] == "completed normally" and summ["goal"] == "achieved"
    assert summ["stop_reason"]["kind"] == "evse-end"        # the EVSE switched its PWM off
    v = build_cp_view(s.events)
    assert [t.after for t in v.transitions] == ["A1", "B1", "B2", "C2", "B2", "C2", "C1", "B1",
                                                "A1"]
    assert {x.duty_pct for x in v.duty()} == {100, 22}
    assert a.findings == []


@pytest.mark.parametrize("name", ["ISO-2_DC_Pause_DS5366.pcapng", "ISO-2_AC_DS5366.pcapng",
                                  "DIN_DC_DS5366_Josev.pcapng", "ISO-20_mTLS_DC_DS5366_Josev.pcapng",
                                  "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng",
                                  "ISO-20_BPT_AC_DS5366_Josev.pcapng"])
def test_dspace_captures_carry_their_pilot_and_no_cp_finding(corpus, name):
    from ccs_analyzer.analyzer.analysis import analyze_capture
    from ccs_analyzer.analyzer.timeline import timeline_frame
    a = analyze_capture(corpus / name)
    assert len(a.sessions) == 1 and not a.sessions[0].basic
    v = build_cp_view(a.sessions[0].events)
    assert v.present and v.plug_ins
    assert not [f for f in a.findings if f.category == "control-pilot"]
    df = timeline_frame(a.sessions, a.capture_events)
    assert df["CPState"].notna().sum() >= 3


def test_pause_capture_is_one_session_with_the_wake_up(corpus):
    from ccs_analyzer.analyzer.analysis import analyze_capture
    a = analyze_capture(corpus / "ISO-2_DC_Pause_DS5366.pcapng")
    v = build_cp_view(a.sessions[0].events)
    seq = [t.after for t in v.transitions]
    # paused (B1), the EV's wake-up pulse (C1), the EVSE's 5 % again (B2)
    i = seq.index("B1", 3)
    assert seq[i:i + 4] == ["B1", "C1", "B1", "B2"]


def _pause_and_new_session(cp: bool):
    from tests.rules.util import NS_ISO2, iso2, script
    setup = (iso2("SessionSetupReq", {"EVCCID": "01"}, "00"),
             iso2("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "DE*1"}),
             0.1, 0.05)
    first = script([setup, (iso2("SessionStopReq", {"ChargingSession": "Pause"}),
                            iso2("SessionStopRes", {"ResponseCode": "OK"}), 0.1, 0.05)],
                   t0=10.0, frame0=10, namespace=NS_ISO2, conn=0)
    # the resume offers SessionID 0 instead of the paused one: the EVSE sees a new session
    second = script([(iso2("SessionSetupReq", {"EVCCID": "01"}, "00"),
                      iso2("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished",
                                               "EVSEID": "DE*1"}, "77"), 0.1, 0.05)],
                    t0=60.0, frame0=50, namespace=NS_ISO2, conn=1)
    readings = [st(1, 0.0, 12.0), st(2, 5.0, 9.0), st(3, 6.0, 9.0, 5, 1000),
                st(30, 20.0, 9.0, 100, 0), st(40, 55.0, 6.0, 100, 0), st(41, 55.4, 9.0, 100, 0),
                st(42, 55.8, 9.0, 5, 1000), st(90, 90.0, 12.0)] if cp else []
    return analyze_events(sorted(first + second + readings, key=lambda e: e.frame))


def test_a_resume_in_the_same_plug_in_cycle_is_the_same_session():
    a = _pause_and_new_session(cp=True)
    assert len(a.sessions) == 1
    s = a.sessions[0]
    assert s.resumed == 1 and len(s.connections) == 2
    # without the pilot the capture cannot tell: two sessions, as before
    assert len(_pause_and_new_session(cp=False).sessions) == 2


def test_modem_attenuation_reports_are_timeline_rows(corpus):
    """The Qualcomm modem's VS_ATTENUATION_CHARACTERISTICS.IND carries the attenuation
    profile: it is a timeline value (dB), like CM_ATTEN_CHAR.IND's. (The pyPLC captures' ones
    carry no carrier groups, NumGroups 0: no value.)"""
    from ccs_analyzer.analyzer.analysis import analyze_capture
    from ccs_analyzer.analyzer.timeline import timeline_frame
    a = analyze_capture(corpus / "ISO-2_DC_DS5366.pcapng")
    df = timeline_frame(a.sessions, a.capture_events)
    vs = df[(df.name == "VS_ATTENUATION_CHARACTERISTICS.IND") & df.Attenuation_dB.notna()]
    assert len(vs) >= 1 and (vs.Attenuation_dB > 0).all()
