"""SDP rules (rules/sdp.py): event-level cases that trigger each rule and close cases that
must not, and what the rules say about the real captures (CORPUS.md)."""
from __future__ import annotations

import pytest

from tests.rules.test_slac import (CLEAN, EV_IP, EV_MAC, SECC_IP, analysis, events, mine, nominal,
                                   only)
from tests.rules.util import (EV, EVSE, analyze_events, din, ev, rules_found, script)

REQ_F = {"Security": "NoTLS", "TransportProtocol": "TCP"}
RES_F = {"SECCIPAddress": SECC_IP, "SECCPort": 60000, "Security": "NoTLS", "TransportProtocol": "TCP"}


def req(t, **f):
    return {"t": t, "layer": "sdp", "name": "SDP request", "dir": EV, "f": {**REQ_F, **f},
            "src": f"[{EV_IP}]:50000", "dst": "[ff02::1]:15118", "info": {"src_mac": EV_MAC}}


def res(t, src=SECC_IP, **f):
    return {"t": t, "layer": "sdp", "name": "SDP response", "dir": EVSE, "f": {**RES_F, **f},
            "src": f"[{src}]:15118", "dst": f"[{EV_IP}]:50000", "info": {"dst_mac": EV_MAC}}


def run(steps, end=None, extra=()):
    evs = events(steps, end)
    n = len(evs)
    for i, e in enumerate(extra, 1):
        e.frame = n + i
    return analyze_events(evs + list(extra))


def sdp_of(a, code=None):
    return [f for f in a.findings if f.category == "sdp" and (code is None or f.rule == code)]


def test_answered_sdp_is_clean():
    assert sdp_of(run(nominal() + [req(3.0), res(3.05)], end=20.0)) == []


# --------------------------------------------------------------------------- SDP001
def test_unanswered_sdp_is_an_error_of_the_secc():
    a = run(nominal() + [req(3.0), req(3.5), req(4.0)], end=20.0)
    f = only(a, "SDP001")
    assert f.severity == "error" and f.culprit == "SECC"
    assert "3 SDP requests (frames 20-22" in f.synopsis and "never answered" in f.synopsis
    assert f.frames == [20, 22]
    assert a.summaries["S1"]["root_cause"] == f.id


def test_unanswered_sdp_at_capture_end_is_not_blamed():
    assert not rules_found(run(nominal() + [req(3.0)], end=3.1), "SDP001")


def test_sdp_answered_on_the_third_request_is_info():
    a = run(nominal() + [req(3.0), req(3.5), req(4.0), res(4.07)], end=20.0)
    f = only(a, "SDP001")
    assert f.severity == "info" and "#20-#21 unanswered, then #22 (request 3)" in f.synopsis
    assert f.frames == [20, 21, 22, 23]


def test_response_not_captured_but_tcp_follows():
    syn = ev(0, 4.5, "tcp", "SYN", EV, conn=0)
    a = run(nominal() + [req(3.0)], end=20.0, extra=[syn])
    f = only(a, "SDP001")
    assert f.culprit == "capture" and f.severity == "info" and "not captured" in f.synopsis


def test_sdp_after_an_ended_session_is_a_warning():
    v2g = script([(din("SessionSetupReq", {"EVCCID": "01"}, "00"),
                   din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}),
                   0.05, 0.02),
                  (din("SessionStopReq", {}), din("SessionStopRes", {"ResponseCode": "OK"}), 0.05, 0.02)],
                 t0=4.0, frame0=100)
    evs = events(nominal() + [req(3.0), res(3.05)])
    evs += v2g
    later = events([req(10.0 + 0.5 * i) for i in range(4)])
    for i, e in enumerate(later):
        e.frame = 200 + i
    evs += later + [ev(300, 30.0, "capture", "capture end")]
    a = analyze_events(evs)
    fs = rules_found(a, "SDP001")
    assert len(fs) == 1 and fs[0].severity == "warning" and fs[0].culprit == "unknown"
    assert "which had ended" in fs[0].synopsis


# --------------------------------------------------------------------------- SDP002 / SDP003
def test_more_than_fifty_requests():
    f = only(run(nominal() + [req(3.0 + 0.3 * i) for i in range(51)], end=40.0), "SDP002")
    assert f.culprit == "EVCC" and f.measured == 51 and f.limit == 50


def test_fifty_requests_are_allowed():
    assert not rules_found(run(nominal() + [req(3.0 + 0.3 * i) for i in range(50)], end=40.0), "SDP002")


def test_requests_closer_than_250_ms():
    f = only(run(nominal() + [req(3.0), req(3.1), res(3.15)], end=20.0), "SDP003")
    assert f.culprit == "EVCC" and f.measured == pytest.approx(0.1)


def test_requests_250_ms_apart():
    assert not rules_found(run(nominal() + [req(3.0), req(3.25), res(3.3)], end=20.0), "SDP003")


# --------------------------------------------------------------------------- SDP004-SDP007
def test_security_matches():
    assert not rules_found(run(nominal() + [req(3.0, Security="TLS"), res(3.05, Security="TLS")],
                               end=20.0), "SDP004")


def test_tls_announced_for_din():
    v2g = script([(din("SessionSetupReq", {"EVCCID": "01"}, "00"),
                   din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}),
                   0.05, 0.02)], t0=4.0, frame0=100)
    evs = events(nominal() + [req(3.0, Security="TLS"), res(3.05, Security="TLS")]) + v2g
    f = only(analyze_events(evs), "SDP004")
    assert "DIN 70121" in f.synopsis


def test_transport_not_tcp():
    a = run(nominal() + [req(3.0, TransportProtocol="UDP"), res(3.05, TransportProtocol="UDP")], end=20.0)
    fs = rules_found(a, "SDP005")
    assert {f.culprit for f in fs} == {"EVCC", "SECC"} and all(f.severity == "error" for f in fs)


def test_transport_tcp():
    assert not rules_found(run(nominal() + [req(3.0), res(3.05)], end=20.0), "SDP005")


def test_secc_address_differs_from_responder():
    f = only(run(nominal() + [req(3.0), res(3.05, src="fe80::9")], end=20.0), "SDP006")
    assert f.culprit == "SECC" and "fe80::9" in f.synopsis and SECC_IP in f.synopsis


def test_secc_address_same_in_another_spelling():
    steps = nominal() + [req(3.0), res(3.05, SECCIPAddress="fe80:0:0::2")]
    assert not rules_found(run(steps, end=20.0), "SDP006")


def test_port_outside_dynamic_range():
    f = only(run(nominal() + [req(3.0), res(3.05, SECCPort=15118)], end=20.0), "SDP007")
    assert f.severity == "info" and f.measured == 15118


def test_port_inside_dynamic_range():
    assert not rules_found(run(nominal() + [req(3.0), res(3.05, SECCPort=49152)], end=20.0), "SDP007")


# --------------------------------------------------------------------------- SDP008
def test_sdp_late_after_match():
    f = only(run(nominal() + [req(33.5), res(33.55)], end=40.0), "SDP008")
    assert f.culprit == "EVCC" and f.measured == pytest.approx(32.6) and f.frames == [19, 20]


def test_sdp_within_join_and_setup_time():
    assert not rules_found(run(nominal() + [req(23.0), res(23.05)], end=40.0), "SDP008")


# --------------------------------------------------------------------------- corpus
def test_corpus_dehner_sdp_never_answered(corpus):
    a = analysis(corpus, "2022-11-17_Dehner_Alpitronic_until_SdpRequest.pcapng")
    (f,) = mine(a, "SDP001")
    assert f.severity == "error" and f.culprit == "SECC" and f.frames[0] == 25
    assert "#25 never answered" in f.synopsis
    assert a.summaries[f.session]["root_cause"] == f.id


def test_corpus_alpi_sdp_ok_on_third_request(corpus):
    a = analysis(corpus, "2022-11-25_v0.2_alpi_SDP_ok_TCP_fail.pcapng")
    (f,) = mine(a, "SDP001")
    assert f.severity == "info" and f.frames == [171, 172, 173, 174]
    assert not [x for x in mine(a) if x.category == "sdp" and x.severity != "info"]


def test_corpus_westpark_sdp_between_sessions(corpus):
    a = analysis(corpus, "2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    sdp = mine(a, "SDP001")
    between = [f for f in sdp if f.severity == "warning"]
    assert {tuple(f.frames[:2]) for f in between} == {(703, 989), (12776, 12935)}
    assert all(f.culprit == "unknown" and "which had ended" in f.synopsis for f in between)
    assert not [f for f in sdp if f.severity == "error"]
    (many,) = mine(a, "SDP002")
    assert many.measured == 63 and many.culprit == "EVCC"


@pytest.mark.parametrize("name", CLEAN)
def test_corpus_clean_references_have_no_sdp_findings(corpus, name):
    assert [f for f in mine(analysis(corpus, name)) if f.category == "sdp"] == []
