"""Transport rules (TRN003-TRN008; TRN001/TRN002 are covered by the engine and corpus
tests): each triggered by a minimal session and silent on the close case next to it."""
from __future__ import annotations

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from tests.conftest import analyze_testevent
from tests.rules.util import (EV, EVSE, NS_ISO20_DC, analyze_events, connection, din,
                              ev, iso20, rules_found, script)

EV_DC = {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 50}
OK_DC = {"NotificationMaxDelay": 0, "EVSENotification": "None", "EVSEIsolationStatus": "Valid",
         "EVSEStatusCode": "EVSE_Ready"}


def setup():
    return [(din("SessionSetupReq", {"EVCCID": "01"}, "00"),
             din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}),
             0.05, 0.02)]


def cable_checks(n):
    return [(din("CableCheckReq", {"DC_EVStatus": EV_DC}),
             din("CableCheckRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC,
                                   "EVSEProcessing": "Ongoing"}), 0.2, 0.02)] * n


def with_offsets(evs):
    """Give the V2GTP events stream offsets and payload type 0x8001, as the pipeline does."""
    off = {EV: 0, EVSE: 0}
    for e in evs:
        if e.layer == "v2gtp":
            e.offset = off[e.direction]
            off[e.direction] += 40
            e.payload_type = 0x8001
            e.payload = b"\x80\x9a"
    return evs


def found(a, code):
    return rules_found(a, code)


# --------------------------------------------------------------------------- TRN003
def retrans(evs, n, dt, direction=EVSE, start=100, t0=2.0, offset=None):
    for i in range(n):
        e = ev(start + i, t0 + i * dt, "tcp", "TCP retransmission", direction,
               {"bytes": 36, "offset": 10_000 + 36 * i if offset is None else offset})
        evs.append(e)
    return evs


def test_trn003_retransmission_burst_is_a_storm():
    evs = retrans(with_offsets(script(setup() + cable_checks(30))), 12, 0.3)
    a = analyze_events(evs)
    (f,) = found(a, "TRN003")
    assert f.culprit == "link" and f.severity == "warning" and f.measured == 12
    assert f.frames[0] == 100 and f.frames[-1] == 111
    assert "by the EVSE" in f.synopsis


def test_trn003_a_few_retransmissions_are_normal_tcp():
    evs = retrans(with_offsets(script(setup() + cable_checks(30))), 3, 2.0)
    assert not found(analyze_events(evs), "TRN003")


def test_trn003_ignores_frames_captured_twice_and_cap007_names_them():
    """The dissector counts segments captured twice apart from retransmissions (connection
    summary ``duplicates``); CAP007 names them, TRN003 does not see them."""
    evs = with_offsets(script(setup() + cable_checks(30)))
    conn = connection(0, duplicates=[0, 12], duplicate_frames=[None, (20, 64)])
    a = analyze_events(evs, connections=[conn])
    assert not found(a, "TRN003")
    (f,) = found(a, "CAP007")
    assert f.severity == "info" and f.culprit == "capture" and f.measured == 12
    assert f.frames == [20, 64]


# --------------------------------------------------------------------------- TRN004
def framing(evs, reason, frame=90, direction=EV):
    e = ev(frame, 9.0, "v2gtp", "V2GTP framing error", direction, None, error=reason,
           info={"bytes": 12})
    e.first_frame, e.offset = frame - 1, 400
    evs.append(e)
    return evs


def test_trn004_bad_header_blames_the_sender():
    a = analyze_events(framing(script(setup()), "bad V2GTP header: protocol version 0x02 (expected 0x01)"))
    (f,) = found(a, "TRN004")
    assert f.culprit == "EVCC" and f.severity == "error" and f.frames == [89, 90]
    assert not found(a, "MSG001")


def test_trn004_bytes_lost_in_the_capture_are_not_the_senders_fault():
    a = analyze_events(framing(script(setup()), "V2GTP message incomplete: 20 bytes of the stream "
                                                "missing from the capture"))
    assert not found(a, "TRN004")
    a = analyze_events(framing(script(setup()), "stream ends 10 bytes before the end of a V2GTP message"))
    assert not found(a, "TRN004")        # the capture ended inside the message


def test_trn004_leaves_a_reserved_payload_type_to_trn005():
    evs = with_offsets(script(setup()))
    e = ev(90, 9.0, "v2gtp", "V2GTP reserved (0x8ABC)", EVSE, None,
           error="payload type 0x8ABC does not carry EXI (reserved (0x8ABC))",
           info={"header_problems": ["payload type 0x8ABC is reserved"]})
    e.payload, e.payload_type = b"\x00\x01", 0x8ABC
    a = analyze_events(evs + [e])
    assert not found(a, "TRN004") and not found(a, "MSG001")
    (f,) = found(a, "TRN005")
    assert f.culprit == "SECC" and "0x8ABC" in f.synopsis


# --------------------------------------------------------------------------- TRN005 / TRN006
def test_trn005_din_message_on_a_minus20_payload_type():
    evs = with_offsets(script(setup()))
    evs[-2].payload_type = 0x8002
    (f,) = found(analyze_events(evs), "TRN005")
    assert f.culprit == "EVCC" and f.severity == "error" and "0x8002" in f.synopsis
    assert not found(analyze_events(with_offsets(script(setup()))), "TRN005")


def test_trn005_minus20_message_per_schema():
    ok = [(iso20("SessionSetupReq", {"EVCCID": "01"}, "00" * 8),
           iso20("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "ZZ"}),
           0.05, 0.02),
          (iso20("DC_CableCheckReq", {}),
           iso20("DC_CableCheckRes", {"ResponseCode": "OK", "EVSEProcessing": "Ongoing"}), 0.05, 0.02)]
    evs = script(ok, namespace=NS_ISO20_DC)
    for e in evs:
        if e.layer == "v2gtp":
            e.payload_type = 0x8001 if e.name.startswith("supported") else \
                0x8004 if e.name.startswith("DC_") else 0x8002
    assert not found(analyze_events(evs), "TRN005")
    next(e for e in evs if e.name == "DC_CableCheckReq").payload_type = 0x8002
    (f,) = found(analyze_events(evs), "TRN005")
    assert f.severity == "warning" and "0x8004" in f.synopsis


def test_trn006_empty_payload():
    evs = script(setup())
    e = ev(90, 9.0, "v2gtp", "(undecodable EXI)", EV, None, error="empty payload")
    e.payload, e.payload_type = b"", 0x8001
    (f,) = found(analyze_events(evs + [e]), "TRN006")
    assert f.culprit == "EVCC" and f.frames == [90]
    assert not found(analyze_events(with_offsets(script(setup()))), "TRN006")


# --------------------------------------------------------------------------- TRN007
def test_trn007_secc_resets_instead_of_answering():
    evs = script(setup() + [(din("CableCheckReq", {"DC_EVStatus": EV_DC}), None, 0.05, 0)])
    req = evs[-1]
    evs.append(ev(req.frame + 1, req.time - 1_700_000_000.0 + 0.2, "tcp", "RST", EVSE))
    a = analyze_events(evs, [connection(0, rst=(None, req.frame + 1))])
    (f,) = found(a, "TRN007")
    assert f.culprit == "SECC" and f.frames == [req.frame, req.frame + 1]
    assert "CableCheckReq" in f.synopsis and f.measured == pytest.approx(0.2, abs=0.01)


def test_trn007_not_when_the_ev_closes():
    evs = script(setup() + [(din("CableCheckReq", {"DC_EVStatus": EV_DC}), None, 0.05, 0)])
    req = evs[-1]
    evs.append(ev(req.frame + 1, req.time - 1_700_000_000.0 + 2.5, "tcp", "FIN", EV))
    assert not found(analyze_events(evs, [connection(0, fin=(req.frame + 1, None))]), "TRN007")


# --------------------------------------------------------------------------- TRN008
def sdp(port, frame=1, t=0.0):
    return [ev(frame, t, "sdp", "SDP request", EV, {"Security": "NoTLS", "TransportProtocol": "TCP"}),
            ev(frame + 1, t + 0.05, "sdp", "SDP response", EVSE,
               {"SECCIPAddress": "fe80::2", "SECCPort": port, "Security": "NoTLS",
                "TransportProtocol": "TCP"})]


def test_trn008_connection_to_another_port_than_announced():
    evs = sdp(60001) + script(setup(), frame0=5, t0=1.0)
    (f,) = found(analyze_events(evs, [connection(0, syn=5, synack=6)]), "TRN008")
    assert f.culprit == "EVCC" and f.frames == [2, 5] and "port" in f.synopsis


def test_trn008_announced_address_and_port_are_fine():
    evs = sdp(60000) + script(setup(), frame0=5, t0=1.0)
    assert not found(analyze_events(evs, [connection(0, syn=5, synack=6)]), "TRN008")


# --------------------------------------------------------------------------- TRN001 / TRN009
def refused(conn, frame, t, port):
    """A SYN to ``port`` answered by the EVSE's RST (connection ``conn``)."""
    ep = f"[fe80::2]:{port}"
    evs = [ev(frame, t, "tcp", "SYN", EV, conn=conn, src="[fe80::1]:50001", dst=ep),
           ev(frame + 1, t + 0.001, "tcp", "RST", EVSE, conn=conn, src=ep, dst="[fe80::1]:50001")]
    return evs, connection(conn, syn=frame, synack=None, rst=(None, frame + 1), server=ep,
                           client="[fe80::1]:50001", bytes=[0, 0])


def test_trn001_unannounced_port_is_the_evs_error_even_in_another_session():
    evs = sdp(60000) + script(setup(), frame0=5, t0=1.0)
    evs.append(ev(20, 3.0, "tcp", "FIN", EV))
    bad, c1 = refused(1, 30, 20.0, 60918)
    a = analyze_events(evs + bad, [connection(0, syn=5, synack=6, fin=(20, None)), c1])
    (f,) = found(a, "TRN001")
    assert f.culprit == "EVCC" and {30, 31} <= set(f.frames) and "60000" in f.synopsis


def test_trn001_announced_port_refused_is_the_seccs():
    evs = sdp(60918)
    bad, c1 = refused(1, 10, 1.0, 60918)
    (f,) = found(analyze_events(evs + bad, [c1]), "TRN001")
    assert f.culprit == "SECC" and "nothing listens" in f.synopsis


def test_trn001_without_sdp_response_is_unknown():
    bad, c1 = refused(0, 1, 1.0, 15118)
    (f,) = found(analyze_events(bad, [c1]), "TRN001")
    assert f.culprit == "unknown"


def test_trn001_the_evs_own_reset_of_an_older_connection_is_no_refusal():
    evs = sdp(60000) + [ev(3, 0.2, "tcp", "RST", EV, conn=0)] + script(setup(), frame0=5, t0=1.0, conn=1)
    conns = [connection(0, syn=None, synack=None, rst=(3, None), roles_guessed=True),
             connection(1, syn=5, synack=6)]
    assert not found(analyze_events(evs, conns), "TRN001")


def half_open():
    """SYN, an old connection's ACK ("ACKed unseen" bytes), the EV's RST, SYN again: BYD Atto 3."""
    evs = sdp(60000) + [
        ev(3, 0.1, "tcp", "SYN", EV, conn=0),
        ev(4, 0.1001, "tcp", "TCP bytes missing from capture", EV,
           {"offset": 0, "bytes": 4387, "why": "ACKed unseen segment"}, conn=0),
        ev(5, 0.107, "tcp", "RST", EV, conn=0)] + script(setup(), frame0=6, t0=0.109, conn=1)
    conns = [connection(0, syn=3, synack=None, rst=(5, None), segments=[2, 1], lost_bytes=[4387, 0],
                        bytes=[0, 0]),
             connection(1, syn=6, synack=7)]
    return analyze_events(evs, conns)


def test_trn009_half_open_port_reuse_is_reported_not_as_a_refusal():
    a = half_open()
    (f,) = found(a, "TRN009")
    assert f.culprit == "EVCC" and f.severity == "info" and {3, 5, 6, 7} <= set(f.frames)
    assert not found(a, "TRN001") and not found(a, "CAP002")


def test_trn009_not_for_a_plain_refusal():
    bad, c1 = refused(0, 1, 1.0, 15118)
    assert not found(analyze_events(bad, [c1]), "TRN009")


def test_testevents_half_open_syn_of_the_byd(testevents):
    a = analyze_testevent(testevents, "logfiles__BYD__Atto3__2023-04-18T15-31-50.525Z-2_config-dc-iso2__"
                                      "ethernet-traffic.dump")
    (f,) = found(a, "TRN009")
    assert f.culprit == "EVCC" and {39, 41, 42} <= set(f.frames)
    assert not found(a, "TRN001") and not found(a, "CAP002")


@pytest.mark.parametrize("name", ["logfiles__Audi__Q4__ac_iso2-1.dump", "logfiles__Audi__Q4__dc-iso2.dump",
                                  "logfiles__Audi__Q4__dc-dinspec-1.dump"])
def test_testevents_syns_to_an_unannounced_port_blame_the_ev_in_every_session(testevents, name):
    fs = found(analyze_testevent(testevents, name), "TRN001")
    assert fs and {f.culprit for f in fs} == {"EVCC"}
    assert any(66 in f.frames for f in fs)


@pytest.mark.parametrize("name", [
    "logfiles__Citroen__eC4__2024-02-29T12-40-16.003Z-2_iso2_ac__ethernet-traffic.dump",
    "logfiles__Opel__Mokka-E__iso_15118-2_DC__2023-04-14T14-19-47.742Z-2_config-dc-iso2__ethernet-traffic.dump"])
def test_testevents_ev_resetting_its_previous_connection_is_no_refusal(testevents, name):
    assert not found(analyze_testevent(testevents, name), "TRN001")


# --------------------------------------------------------------------------- corpus
_cache: dict = {}


def analysis(corpus, name):
    if name not in _cache:
        _cache[name] = analyze_capture(corpus / name)
    return _cache[name]


def test_corpus_single_spurious_retransmission_is_no_storm(corpus):
    a = analysis(corpus, "ISO-20_mTLS_DC_DS5366_Josev.pcapng")
    assert a.connections[0]["retransmissions"] == [1, 0]
    assert not [f for f in a.findings if f.rule.startswith("TRN")]


def test_corpus_value_added_service_channel_is_no_v2gtp_error(corpus):
    a = analysis(corpus, "ISO-2_DC_BatteryDataExchange_DS5366_RiseV2G.pcapng")
    assert any(c["server"].endswith(":61000") and c["kind"] == "other" for c in a.connections)
    assert not [f for f in a.findings if f.rule.startswith(("TRN", "MSG001"))]


def test_corpus_secc_resets_after_requests(corpus):
    a = analysis(corpus, "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng")
    (f,) = [f for f in a.findings if f.rule == "TRN007"]
    assert f.frames == [140, 143] and f.culprit == "SECC" and f.session == "S1"
    b = analysis(corpus, "2022-12-13_compleo_powerdelivery230_no_load.pcapng")
    assert [f.frames for f in b.findings if f.rule == "TRN007"] == [[532, 534]]


def test_corpus_duplicated_frames_are_not_a_storm(corpus):
    a = analysis(corpus, "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng")
    assert not [f for f in a.findings if f.rule == "TRN003"]
    (f,) = [f for f in a.findings if f.rule == "CAP007"]
    # 570 data segments and their ACKs were recorded twice (CORPUS.md counts the bytes)
    assert f.session == "S3" and f.measured >= 570


@pytest.mark.parametrize("name", ["2022-11-25_v0.2_alpi_SDP_ok_TCP_fail.pcapng",
                                  "DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_Pause_DS5366.pcapng"])
def test_corpus_sdp_address_is_followed(corpus, name):
    a = analysis(corpus, name)
    assert not [f for f in a.findings if f.rule == "TRN008"]
