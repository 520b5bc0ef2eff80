"""Session segmentation (analyzer/sessions.py): a session is one plug-in attempt.

Synthetic events (no bytes) for each rule of the module docstring — retries during and after
a session, answered retries as new attempts, leftovers of earlier sessions, SLAC attempts far
apart, crosstalk — then the real captures the rules were made for (skipped without
../shared) and the simulator's cross-talk samples.
"""
from __future__ import annotations

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.analyzer.sessions import (RETRY_GAP_S, TT_MATCHING_REPETITION_S,
                                            SessionBuilder)
from ccs_analyzer.dissectors.events import Event
from tests.conftest import CORPUS
from tests.rules.util import EV, EVSE, analyze_events, din, ev, script

EV_MAC, EV2_MAC = "02:00:00:00:0e:01", "02:00:00:00:0e:02"
EVSE_MAC, EVSE2_MAC = "02:00:00:00:e5:01", "02:00:00:00:e5:02"
BCAST = "ff:ff:ff:ff:ff:ff"
RUN, RUN2 = "0102030405060708", "1112131415161718"
SID = "5a3c9e01b2d47f68"


# --------------------------------------------------------------------------- event makers
def parm_req(f, t, run=RUN, ev_mac=EV_MAC):
    return ev(f, t, "slac", "CM_SLAC_PARM.REQ", EV, {"RunID": run}, src=ev_mac, dst=BCAST)


def slac_run(f, t, run=RUN, ev_mac=EV_MAC, evse=EVSE_MAC, answered=True, match=True):
    """A SLAC run from frame ``f`` at ``t`` s: PARM.REQ, and when ``answered`` the EVSE's
    PARM.CNF, the EV's START_ATTEN_CHAR.IND, ATTEN_CHAR.IND / RSP and (``match``) MATCH."""
    out = [parm_req(f, t, run, ev_mac)]
    if not answered:
        return out
    m = {"RunID": run}
    out += [ev(f + 1, t + 0.01, "slac", "CM_SLAC_PARM.CNF", EVSE, m, src=evse, dst=ev_mac),
            ev(f + 2, t + 0.1, "slac", "CM_START_ATTEN_CHAR.IND", EV, m, src=ev_mac, dst=BCAST),
            ev(f + 3, t + 0.7, "slac", "CM_ATTEN_CHAR.IND", EVSE, m, src=evse, dst=ev_mac),
            ev(f + 4, t + 0.71, "slac", "CM_ATTEN_CHAR.RSP", EV, m, src=ev_mac, dst=evse)]
    if match:
        mm = {**m, "PEV_MAC": ev_mac, "EVSE_MAC": evse}
        out += [ev(f + 5, t + 0.8, "slac", "CM_SLAC_MATCH.REQ", EV, mm, src=ev_mac, dst=evse),
                ev(f + 6, t + 0.81, "slac", "CM_SLAC_MATCH.CNF", EVSE, mm, src=evse, dst=ev_mac)]
    return out


def sdp_req(f, t, ev_mac=EV_MAC):
    return ev(f, t, "sdp", "SDP request", EV, {"Security": "NoTLS"}, info={"src_mac": ev_mac})


def sdp_res(f, t, ev_mac=EV_MAC):
    return ev(f, t, "sdp", "SDP response", EVSE, {"SECCPort": 60000}, info={"dst_mac": ev_mac})


def v2g(f, t, conn=0, offered="00", stop="Terminate", close=True):
    """One V2G connection: handshake, SessionSetup (offering ``offered``), SessionStop
    (``stop``), then FIN from both sides (``close``)."""
    setup_res = "OK_NewSessionEstablished" if offered == "00" else "OK_OldSessionJoined"
    out = script([(din("SessionSetupReq", {"EVCCID": "01"}, offered),
                   din("SessionSetupRes", {"ResponseCode": setup_res, "EVSEID": "0a"}), 0.05, 0.02),
                  (din("SessionStopReq", {"ChargingSession": stop}),
                   din("SessionStopRes", {"ResponseCode": "OK"}), 0.05, 0.02)],
                 t0=t, frame0=f, conn=conn)
    if close:
        f_end, t_end = out[-1].frame, out[-1].time - 1_700_000_000.0
        out += [ev(f_end + 1, t_end + 0.01, "tcp", "FIN", EVSE, conn=conn),
                ev(f_end + 2, t_end + 0.02, "tcp", "FIN", EV, conn=conn)]
    return out


def refused(f, t, conn):
    """A SYN the SECC answers with RST."""
    return [ev(f, t, "tcp", "SYN", EV, conn=conn), ev(f + 1, t + 0.001, "tcp", "RST", EVSE, conn=conn)]


def attempt(f, t, conn=0, **kw):
    """A whole plug-in: SLAC, SDP, a V2G connection (frames from ``f``, times from ``t``)."""
    return slac_run(f, t) + [sdp_req(f + 10, t + 2.0), sdp_res(f + 11, t + 2.01)] + \
        v2g(f + 20, t + 2.1, conn, **kw)


def build(events):
    b = SessionBuilder()
    for e in sorted(events, key=lambda e: e.frame):
        b.add(e)
    return b.finish(), b


def hp(f, t, name, src, dst, message=None):
    """A HomePlug management message (no RunID: CM_SET_KEY, vendor MMEs)."""
    return Event(frame=f, time=1_700_000_000.0 + t, layer="slac", name=name, protocol="HomePlug",
                 message=message or {}, src=src, dst=dst)


def cp(f, t, volts):
    """A control-pilot indication of the EVSE's modem (VS_CP_STATE.IND, ST/IoTecha)."""
    return hp(f, t, "VS_CP_STATE.IND(ST/IoTecha)", EVSE_MAC, "00:b0:52:00:00:01",
              {"Voltage_V": volts})


def spans(sessions):
    return [(s.events[0].frame, s.events[-1].frame) for s in sessions]


# --------------------------------------------------------------------------- retries
def test_refused_connections_during_a_session_are_its_retries():
    evs = attempt(1, 0.0) + refused(200, 2.5, 1) + refused(300, 3.5, 2)
    (s,), _ = build(evs)
    assert s.retry_connections == [1, 2] and s.connections == [0, 1, 2]
    assert [e.frame for e in s.retries] == [200, 201, 300, 301]
    assert s.own_end_frame == max(e.frame for e in evs if e.conn == 0)
    assert s.session_ids == [SID] and not s.crosstalk


def test_a_refused_syn_does_not_end_the_session():
    # the RST answering a refused SYN used to mark the session ended: the next refused SYN
    # then started a "never got past TCP" session of its own
    evs = slac_run(1, 0.0) + [sdp_req(10, 2.0), sdp_res(11, 2.01)]
    evs += script([(din("SessionSetupReq", {"EVCCID": "01"}, "00"),
                    din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished"}), 0.05, 0.02)],
                  t0=2.1, frame0=20)
    evs += refused(40, 3.0, 1) + refused(50, 4.0, 2)
    evs += script([(din("ChargeParameterDiscoveryReq", {}),
                    din("ChargeParameterDiscoveryRes", {"ResponseCode": "OK"}), 0.05, 0.02)],
                  t0=4.5, frame0=60, handshake=False)[2:]
    (s,), _ = build(evs)
    assert not s.ended and s.retry_connections == [1, 2]


def test_flood_during_a_pause_and_resume_is_one_session():
    evs = attempt(1, 0.0, stop="Pause")
    evs += refused(100, 5.0, 1)
    evs += [sdp_req(110, 8.0), sdp_res(111, 8.01)] + v2g(120, 8.1, conn=2, offered=SID)
    evs += refused(200, 9.0, 3)
    (s,), _ = build(evs)
    assert s.resumed == 1 and s.retry_connections == [1, 3] and s.connections == [0, 1, 2, 3]


def test_unanswered_slac_after_the_session_are_retries():
    evs = attempt(1, 0.0)                                   # ends ~2.3 s (FIN)
    evs += [parm_req(100 + i, 9.0 + 0.5 * i, RUN2) for i in range(6)]
    (s,), _ = build(evs)
    assert [e.frame for e in s.retries] == list(range(100, 106))
    assert s.own_end_frame < 100 and RUN2 in s.run_ids


def test_unanswered_slac_long_after_the_session_is_an_attempt_of_its_own():
    evs = attempt(1, 0.0) + [parm_req(100 + i, 2.5 + RETRY_GAP_S + 5 + 0.2 * i) for i in range(3)]
    (s1, s2), _ = build(evs)
    assert not s1.retries and [e.frame for e in s2.events] == [100, 101, 102] and not s2.retries


def test_an_answered_slac_run_is_a_new_attempt_with_its_unanswered_requests():
    evs = attempt(1, 0.0)
    evs += [sdp_req(100 + i, 3.0 + 0.5 * i) for i in range(4)]      # nobody answers SDP
    evs += [parm_req(110, 6.0, RUN2), parm_req(111, 6.2, RUN2)]     # the EV restarts SLAC …
    evs += slac_run(112, 6.4, RUN2)                                 # … answered the 3rd time
    (s1, s2), _ = build(evs)
    assert [e.frame for e in s1.retries] == [100, 101, 102, 103]
    assert s2.events[0].frame == 110 and not s2.retries and s2.run_ids == [RUN2]


def test_answered_sdp_after_an_ended_session_is_a_new_attempt():
    evs = attempt(1, 0.0) + [sdp_req(100, 4.0), sdp_req(101, 4.3), sdp_res(102, 4.31)]
    (s1, s2), _ = build(evs)
    assert not s1.retries and [e.frame for e in s2.events] == [100, 101, 102] and s2.has_sdp


def test_accepted_connection_without_v2g_answer_is_a_retry():
    evs = attempt(1, 0.0)
    evs += [ev(100, 3.0, "tcp", "SYN", EV, conn=1), ev(101, 3.001, "tcp", "SYN-ACK", EVSE, conn=1),
            ev(102, 3.01, "v2gtp", "supportedAppProtocolReq", EV, {"supportedAppProtocolReq": {}},
               conn=1),
            ev(103, 4.1, "tcp", "FIN", EV, conn=1), ev(104, 6.0, "tcp", "RST", EVSE, conn=1)]
    (s,), _ = build(evs)
    assert s.retry_connections == [1] and s.own_end_frame < 100


def test_accepted_connection_with_v2g_after_an_ended_session_is_a_new_attempt():
    evs = attempt(1, 0.0) + v2g(100, 4.0, conn=1)
    (s1, s2), _ = build(evs)
    assert not s1.retry_connections and s2.connections == [1]


def test_refused_connections_before_any_v2g_are_the_sessions_own():
    # SDP answered, but the EV connects to the wrong port: the session's own TCP failure
    evs = slac_run(1, 0.0) + [sdp_req(10, 2.0), sdp_res(11, 2.01)]
    evs += refused(20, 2.5, 0) + refused(30, 3.5, 1)
    (s,), _ = build(evs)
    assert s.connections == [0, 1] and not s.retry_connections and not s.retries


def test_summary_reports_retries_and_how_the_own_activity_ended():
    evs = attempt(1, 0.0) + refused(200, 5.0, 1) + [parm_req(210, 9.0, RUN2)]
    a = analyze_events(evs)
    summ = a.summaries["S1"]
    assert summ["ended"]["how"] == "SessionStop (Terminate)"
    assert summ["retries"] == {"events": 3, "first_frame": 200, "last_frame": 210,
                               "slac_requests": 1, "sdp_requests": 0, "connections": 1}
    assert summ["retry_connections"] == [1] and summ["end_frame"] == 210
    assert summ["own_end_frame"] < 200 and summ["crosstalk"] is None


# --------------------------------------------------------------------------- leftovers
def _left(f, t, conn, names, sid="9999999999999999"):
    out = [ev(f, t, "tcp", "TCP connection started before the capture", EV, conn=conn,
              info={"roles": "guessed"})]
    for name in names:
        if name == "SessionStopRes":
            out.append(ev(f, t, "v2gtp", name, EVSE, din(name, {"ResponseCode": "OK"}, sid), conn=conn))
        else:
            out.append(ev(f, t, "tcp", name, EV, conn=conn))
    return out


def test_leftover_at_capture_start_is_no_session():
    evs = _left(1, 0.0, 9, ["SessionStopRes", "FIN"]) + attempt(10, 3.0)
    (s,), b = build(evs)
    assert 9 not in s.connections and s.events[0].frame == 10
    (left,) = b.leftovers
    assert left["conn"] == 9 and left["frames"] == [1] and left["SessionID"] == "9999999999999999"
    assert left["what"] == ["SessionStopRes", "FIN"]
    assert sum(1 for e in b.capture_events if e.conn == 9) == 3      # kept, not dropped


def test_leftover_fin_only_is_no_session():
    evs = _left(1, 0.0, 9, ["FIN"])
    sessions, b = build(evs)
    assert sessions == [] and b.leftovers[0]["frames"] == [1]


def test_stale_stop_response_mid_session_does_not_join_it():
    # a SessionStopRes retransmission of an earlier session plus the EV's RST (Ampera din_2
    # frames 87/88): without it the session has no SessionStop
    evs = slac_run(1, 0.0) + [sdp_req(10, 2.0), sdp_res(11, 2.01)]
    evs += script([(din("SessionSetupReq", {"EVCCID": "01"}, "00"),
                    din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished"}), 0.05, 0.02)],
                  t0=2.1, frame0=20)
    evs += _left(40, 3.0, 5, ["SessionStopRes", "FIN"]) + [ev(41, 3.01, "tcp", "RST", EV, conn=5)]
    evs += [ev(50, 5.0, "tcp", "FIN", EV, conn=0)]
    a = analyze_events(evs)
    (s,) = a.sessions
    assert 5 not in s.connections and a.leftovers[0]["frames"] == [40, 41]
    assert not any(e.name == "SessionStopRes" for e in s.events)
    (cap,) = [f for f in a.findings if f.rule == "CAP004"]
    assert cap.session is None and cap.frames == [40, 41] and "Leftover" in cap.synopsis


def test_mid_session_fragment_with_v2g_stays_a_session():
    evs = [ev(5, 0.0, "tcp", "TCP connection started before the capture", EVSE, conn=0),
           ev(5, 0.0, "v2gtp", "CableCheckRes", EVSE,
              din("CableCheckRes", {"ResponseCode": "OK", "EVSEProcessing": "Ongoing"}), conn=0),
           ev(9, 1.0, "tcp", "FIN", EVSE, conn=0)]
    (s,), b = build(evs)
    assert s.connections == [0] and not b.leftovers


# --------------------------------------------------------------------------- SLAC attempts
def test_slac_attempts_further_apart_than_tt_matching_repetition():
    gap = TT_MATCHING_REPETITION_S + 5
    evs = [parm_req(1 + i, 0.2 * i, "5445534c41204556") for i in range(5)]     # "TESLA EV"
    evs += slac_run(10, 0.8 + gap, "5445534c41204556")
    s1, s2 = build(evs)[0]
    assert spans([s1, s2]) == [(1, 5), (10, 16)]


def test_slac_retries_within_tt_matching_repetition_are_one_session():
    evs = [parm_req(1 + i, 0.2 * i) for i in range(4)] + slac_run(5, 0.8)
    (s,), _ = build(evs)
    assert spans([s]) == [(1, 11)]


def test_slac_gap_with_the_ev_still_plugged_in_is_one_attempt():
    # the control pilot stayed in state B (9 V) between the runs (dSPACE references)
    evs = [cp(1, 0.0, 8.9), parm_req(2, 1.0), ev(3, 1.05, "slac", "CM_SLAC_PARM.CNF", EVSE,
                                                 {"RunID": RUN}, src=EVSE_MAC, dst=EV_MAC)]
    evs += slac_run(10, 60.0, RUN2)
    assert len(build(evs)[0]) == 1
    unplugged = evs[:3] + [cp(5, 30.0, 11.9), cp(6, 55.0, 8.9)] + evs[3:]
    assert len(build(unplugged)[0]) == 2


def test_an_evse_echoing_a_wrong_run_id_does_not_pull_a_later_attempt_back():
    bad = "00188700a1d60000"
    evs = []
    for k, t0 in enumerate((0.0, 41.0)):
        for i in range(3):
            f = 1 + 20 * k + 2 * i
            evs += [parm_req(f, t0 + 0.2 * i, (RUN, RUN2)[k]),
                    ev(f + 1, t0 + 0.2 * i + 0.05, "slac", "CM_SLAC_PARM.CNF", EVSE, {"RunID": bad},
                       src=EVSE_MAC, dst=EV_MAC)]
    assert spans(build(evs)[0]) == [(1, 6), (21, 26)]


def test_two_evs_with_the_same_fixed_run_id_stay_apart():
    tesla = "5445534c41204556"
    evs = slac_run(1, 0.0, tesla) + slac_run(20, 0.5, tesla, ev_mac=EV2_MAC, evse=EVSE2_MAC)
    s1, s2 = build(sorted(evs, key=lambda e: e.frame))[0]
    assert {e.src for e in s1.events if e.direction == EV} == {EV_MAC}
    assert {e.src for e in s2.events if e.direction == EV} == {EV2_MAC}


# --------------------------------------------------------------------------- crosstalk
def _other_ev(f, t, **kw):
    return slac_run(f, t, RUN2, ev_mac=EV2_MAC, **kw)


def test_unanswered_slac_of_another_ev_is_crosstalk():
    sessions, _ = build(attempt(1, 0.0) + _other_ev(100, 1.0, answered=False))
    assert [bool(s.crosstalk) for s in sessions] == [False, True]
    assert EV2_MAC in sessions[1].crosstalk and "no EVSE answered" in sessions[1].crosstalk


def test_slac_of_another_ev_matched_by_another_evse_is_crosstalk():
    sessions, _ = build(attempt(1, 0.0) + _other_ev(100, 1.0, evse=EVSE2_MAC))
    assert EVSE2_MAC in sessions[1].crosstalk and "matched" in sessions[1].crosstalk


def test_slac_of_another_ev_answered_by_this_charger_is_no_crosstalk():
    sessions, _ = build(attempt(1, 0.0) + _other_ev(100, 30.0, match=False))
    assert [s.crosstalk for s in sessions] == [None, None]


def test_no_crosstalk_without_a_served_session():
    sessions, _ = build(slac_run(1, 0.0, match=False) + _other_ev(100, 1.0, answered=False))
    assert [s.crosstalk for s in sessions] == [None, None]


def test_a_second_charger_answering_the_same_ev_is_one_session():
    # the multi-EVSE case: the EV hears two EVSEs and matches one
    evs = attempt(1, 0.0) + [
        ev(2, 0.02, "slac", "CM_SLAC_PARM.CNF", EVSE, {"RunID": RUN}, src=EVSE2_MAC, dst=EV_MAC),
        ev(5, 0.705, "slac", "CM_ATTEN_CHAR.IND", EVSE, {"RunID": RUN}, src=EVSE2_MAC, dst=EV_MAC)]
    (s,), _ = build(sorted(evs, key=lambda e: (e.frame, e.time)))
    assert s.evse_mac == EVSE_MAC and not s.crosstalk


# --------------------------------------------------------------------------- simulator samples
SAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "samples" / "captures"


@pytest.mark.parametrize("name", ["iso2_dc_cross_talk", "iso2_dc_cross_talk_wrong_match"])
def test_simulated_cross_talk_is_one_normal_session(name):
    path = SAMPLES / f"{name}.pcapng"
    if not path.exists():
        pytest.skip("sample capture not in this checkout")
    a = analyze_capture(path)
    (s,) = a.sessions
    assert not s.crosstalk and not s.retries and a.summaries["S1"]["outcome"] == "completed normally"


# --------------------------------------------------------------------------- real captures
_cache: dict = {}


def real(name: str):
    if name not in _cache:
        _cache[name] = analyze_capture(CORPUS / name)
    return _cache[name]


TE = "testevents/logfiles__"


def test_audi_pause_resume_with_syn_flood_is_one_session(corpus):
    a = real(TE + "Audi__Q4__ac_iso2-1.dump")
    (s,) = a.sessions
    assert s.session_ids == ["afeedbcffbef7ffb"] and s.resumed == 4
    own = [c for c in s.connections if c not in s.retry_connections]
    assert own == [0, 33, 47, 57, 76] and len(s.retry_connections) > 100
    ports = {c["server"].rsplit(":", 1)[1] for c in a.connections if c["conn"] in s.retry_connections}
    assert ports == {"60918"}
    assert a.summaries["S1"]["ended"]["how"] == "SessionStop (Terminate)"


@pytest.mark.parametrize("name", ["Audi__Q4__dc-dinspec-1.dump", "Audi__Q4__dc-iso2.dump"])
def test_audi_syn_flood_is_no_second_session(corpus, name):
    a = real(TE + name)
    (s,) = a.sessions
    assert len(s.retry_connections) > 50 and s.retries[0].frame == 66


def test_citroen_slac_retries_after_the_session(corpus):
    a = real(TE + "Citroen__eC4__2024-02-29T12-40-16.003Z-2_iso2_ac__ethernet-traffic.dump")
    (s,) = a.sessions
    assert [e.frame for e in s.retries] == list(range(69, 81))
    assert s.own_end_frame == 68 and a.summaries["S1"]["ended"]["how"] == "TCP closed (FIN) by EV"
    assert [x["frames"] for x in a.leftovers] == [[41]]                 # the EV's stale RST


@pytest.mark.parametrize("name,frames,sessions", [
    ("BYD__Atto3__2023-04-18T15-33-10.987Z-3_config-ac-iso2_not_supported__ethernet-traffic.dump",
     [1], [(9, 41)]),
    ("Opel__Ampera-E__2023-01-13-din_spec_70121__session__ampera_dc_din_1.dump", [5],
     [(10, 513), (520, 881)]),
    ("Opel__Ampera-E__2023-01-13-din_spec_70121__session__ampera_dc_din_3.dump", [1],
     [(13, 372), (373, 727)]),
    ("Opel__Ampera-E__2023-01-13-din_spec_70121__session__ampera_dc_din_2.dump", [87, 88],
     [(1, 521)]),
])
def test_leftovers_of_earlier_sessions(corpus, name, frames, sessions):
    a = real(TE + name)
    assert [x["frames"] for x in a.leftovers] == [frames]
    assert [(a.summaries[s.id]["start_frame"], a.summaries[s.id]["end_frame"])
            for s in a.sessions] == sessions
    assert not any(e.frame in frames for s in a.sessions for e in s.events)
    (cap,) = [f for f in a.findings if f.rule == "CAP004" and f.session is None]
    assert cap.frames == frames and "ended before the capture" in cap.synopsis


def test_ampera_stale_stop_response_no_longer_completes_the_session(corpus):
    a = real(TE + "Opel__Ampera-E__2023-01-13-din_spec_70121__session__ampera_dc_din_2.dump")
    assert a.summaries["S1"]["outcome"] != "completed normally"
    assert not a.summaries["S1"]["ended"]["how"].startswith("SessionStop")


def test_tesla_slac_attempts_79_s_apart(corpus):
    a = real(TE + "Tesla__Model_Y_11.1__din_spec_70121__2023-01-18-tesla_y_dinspec_infypower__"
                  "teslay_dc_infy_0.dump")
    s1, s2 = a.sessions
    assert s1.own_end_frame == 6 and s2.events[0].frame == 10
    assert a.summaries["S1"]["outcome"] == "never got past SLAC"


def test_tesla_slac_retries_answered_the_fifth_time(corpus):
    a = real(TE + "Tesla__Model_Y_11.1__iso15118-2__ac-iso__1_telsa_model_y.dump")
    (s,) = a.sessions
    assert sum(1 for e in s.events if e.name == "CM_SLAC_PARM.REQ") == 5 and not s.retries


def test_new_answered_slac_after_a_session_is_a_second_session(corpus):
    a = real(TE + "Opel__Mokka-E__din_spec_70121__2023-04-14T14-18-09.853Z-1_config-dc-dinspec__"
                  "ethernet-traffic.dump")
    assert [a.summaries[s.id]["start_frame"] for s in a.sessions] == [6, 1042]


def test_listen_mode_fragment_stays_a_session(corpus):
    a = real("2025-01-21_listenMode_02_mac_spoofing_some_frames_visible.pcapng")
    (s,) = a.sessions
    assert any(e.name == "CableCheckRes" for e in s.events) and not a.leftovers


@pytest.mark.parametrize("name", ["ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng",
                                  "DIN_DC_DS5366_Josev.pcapng"])
def test_references_are_one_clean_session(corpus, name):
    a = real(name)
    (s,) = a.sessions
    assert not s.crosstalk and not s.retries and a.summaries["S1"]["outcome"] == "completed normally"


def test_westpark_retries_between_two_plug_ins(corpus):
    a = real("2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    s1, s2 = a.sessions
    assert s1.own_end_frame == 883 and s1.retries[0].frame == 703       # SDP storm, refused SYNs
    assert s2.events[0].frame == 1033                                   # the SLAC restart
    assert s2.own_end_frame == 12700 and len(s2.retry_connections) >= 3


def test_refused_retries_after_the_session_are_a_warning_on_the_ev():
    # TRN001 reads the retries: after the session's own end the SECC need not listen
    evs = attempt(1, 0.0) + refused(200, 5.0, 1) + refused(210, 6.0, 2)
    conns = [{"conn": c, "client": "[fe80::1]:5000%d" % c, "server": "[fe80::2]:60000",
              "syn_frame": f, "synack_frame": 22 if c == 0 else None, "kind": "v2gtp" if c == 0
              else "no payload", "v2g_messages": 4 if c == 0 else 0}
             for c, f in ((0, 21), (1, 200), (2, 210))]
    a = analyze_events(evs, conns)
    (f,) = [x for x in a.findings if x.rule == "TRN001"]
    assert f.severity == "warning" and f.culprit == "EVCC" and f.frames == [200, 201, 210, 211]
    assert "after session S1 had ended" in f.synopsis


def test_crosstalk_is_reported_not_judged():
    """Another charger's traffic is named as such: no findings, no goal, not a failure."""
    from tests.rules.util import analyze_events
    a = analyze_events(attempt(1, 0.0) + _other_ev(100, 1.0, answered=False))
    s2 = a.summaries["S2"]
    assert s2["outcome"] == "crosstalk" and s2["goal"] is None and s2["verdict"] == "pass"
    assert not [f for f in a.findings if f.session == "S2"]
    assert "Not a session of this charger" in s2["explanation"]


def test_evseid_text_tells_one_charger_across_protocols():
    from ccs_analyzer.analyzer.sessions import evseid_text
    din = "urn:din:70121:2012:MsgDef"
    assert evseid_text("44452a53494d2a45303030312a31", din) == "DE*SIM*E0001*1"
    assert evseid_text("00", din) is None                       # binary: no text form
    assert evseid_text("zz", din) is None
    assert evseid_text("DE*SIM*E0001*1", "urn:iso:15118:2:2013:MsgDef") == "DE*SIM*E0001*1"
    assert evseid_text(None, din) is None
