"""Capture-quality rules (CAP002-CAP007; CAP001 reads the reader's problems): each triggered
by a minimal session and silent on the close case; the listen-mode and partial captures of
the corpus explained as capture limits, not protocol failures."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.rules.capture_quality import FramesSkipped
from tests.conftest import analyze_testevent
from tests.rules.util import EV, EVSE, NS_DIN, analyze_events, connection, din, ev, rules_found, script

EV_DC = {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 50}
OK_DC = {"NotificationMaxDelay": 0, "EVSENotification": "None", "EVSEIsolationStatus": "Valid",
         "EVSEStatusCode": "EVSE_Ready"}


def setup():
    return [(din("SessionSetupReq", {"EVCCID": "01"}, "00"),
             din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}),
             0.05, 0.02)]


def found(a, code):
    return rules_found(a, code)


# --------------------------------------------------------------------------- CAP001
def cut(after_frame, reason="capture ends inside a packet: 20 of 74 bytes present (file cut short)"):
    return {"offset": 4000, "length": 20, "reason": reason, "after_frame": after_frame}


def loop(n=3):
    q = din("CurrentDemandReq", {"DC_EVStatus": EV_DC})
    r = din("CurrentDemandRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC})
    return [(q, r, 0.1, 0.02)] * n


def test_cap001_cut_inside_a_running_session_belongs_to_it():
    evs = script(setup() + loop())
    last = max(e.frame for e in evs)
    (f,) = found(analyze_events(evs, capture_problems=[cut(last)]), "CAP001")
    assert f.session == "S1" and last in f.frames and "inside session S1" in f.synopsis


def test_cap001_damage_between_first_and_last_frame_of_a_session():
    stop = [(din("SessionStopReq", {}), din("SessionStopRes", {"ResponseCode": "OK"}), 0.1, 0.02)]
    evs = script(setup() + loop(4) + stop)
    (f,) = found(analyze_events(evs, capture_problems=[cut(7, "implausible pcap record header")]),
                 "CAP001")
    assert f.session == "S1"


def test_cap001_cut_after_the_session_ended_stays_capture_level():
    stop = [(din("SessionStopReq", {}), din("SessionStopRes", {"ResponseCode": "OK"}), 0.1, 0.02)]
    evs = script(setup() + loop() + stop)
    last = max(e.frame for e in evs)
    (f,) = found(analyze_events(evs, capture_problems=[cut(last)]), "CAP001")
    assert f.session is None


@pytest.mark.parametrize("name,session,frame", [
    ("logfiles__BYD__Atto3__2023-04-18T15-30-40.007Z-1_config-dc-dinspec__ethernet-traffic.dump", "S1", 397),
    # frame 1 is a leftover of the previous capture's session, no session: the cut one is S1
    ("logfiles__BYD__Atto3__2023-04-18T15-33-10.987Z-3_config-ac-iso2_not_supported__ethernet-traffic.dump",
     "S1", 41),
    ("logfiles__Opel__Mokka-E__iso_15118-2_AC_not_supported__2023-04-14T14-21-01.727Z-3_config-ac-iso2__"
     "ethernet-traffic.dump", "S2", 83),
])
def test_testevents_cut_captures_name_the_session_they_cut(testevents, name, session, frame):
    (f,) = found(analyze_testevent(testevents, name), "CAP001")
    assert f.session == session and frame in f.frames


def test_testevents_cut_after_the_session_stopped_stays_capture_level(testevents):
    a = analyze_testevent(testevents, "logfiles__BYD__Atto3__2023-04-18T15-31-50.525Z-2_config-dc-iso2__"
                                      "ethernet-traffic.dump")
    (f,) = found(a, "CAP001")
    assert f.session is None


# --------------------------------------------------------------------------- CAP002
def test_cap002_bytes_missing_from_the_capture():
    evs = script(setup()) + [ev(50, 3.0, "tcp", "TCP bytes missing from capture", EVSE,
                                {"offset": 100, "bytes": 40, "why": "ACKed unseen segment"})]
    a = analyze_events(evs, [connection(0, lost_bytes=[0, 40])])
    (f,) = found(a, "CAP002")
    assert f.culprit == "capture" and f.severity == "warning" and f.frames == [50]
    assert "40 byte(s)" in f.synopsis and "EVSE→EV" in f.synopsis


def test_cap002_complete_streams():
    assert not found(analyze_events(script(setup())), "CAP002")


# --------------------------------------------------------------------------- CAP003
def slac(name, direction, frame):
    return ev(frame, frame * 0.01, "slac", name, direction, {"RunID": "0102030405060708"})


def test_cap003_evse_side_slac_only():
    evs = [slac("CM_SLAC_PARM.CNF", EVSE, 1), slac("CM_ATTEN_CHAR.IND", EVSE, 2),
           slac("CM_SLAC_MATCH.CNF", EVSE, 3)]
    (f,) = found(analyze_events(evs), "CAP003")
    assert f.culprit == "capture" and f.frames == [1, 3] and "EVSE only" in f.synopsis


def test_cap003_not_for_a_lone_unanswered_request_or_a_full_exchange():
    assert not found(analyze_events([slac("CM_SLAC_PARM.REQ", EV, 1)]), "CAP003")
    both = [slac("CM_SLAC_PARM.REQ", EV, 1), slac("CM_SLAC_PARM.CNF", EVSE, 2)]
    assert not found(analyze_events(both), "CAP003")


def test_cap003_connection_seen_from_one_side():
    evs = script(setup())
    a = analyze_events(evs, [connection(0, client_mac=None, server_mac="02:00:00:00:00:02",
                                        bytes=[0, 26], frames=8)])
    (f,) = found(a, "CAP003")
    assert "connection 0 from the EVSE only" in f.synopsis
    ok = analyze_events(evs, [connection(0, client_mac="02:00:00:00:00:01",
                                         server_mac="02:00:00:00:00:02")])
    assert not found(ok, "CAP003")


# --------------------------------------------------------------------------- CAP004
def test_cap004_connection_open_before_the_capture_and_schema_detected():
    res = din("CableCheckRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC, "EVSEProcessing": "Ongoing"})
    evs = [ev(10, 1.0, "tcp", "TCP connection started before the capture", EVSE, {"roles": "guessed"}),
           ev(10, 1.0, "v2gtp", "CableCheckRes", EVSE, res, namespace=NS_DIN,
              info={"namespace_detected": True})]
    a = analyze_events(evs, [connection(0, syn=None, synack=None, namespace_detected=True)])
    (f,) = found(a, "CAP004")
    assert f.severity == "info" and f.culprit == "capture" and f.frames == [10]
    assert "detected" in f.synopsis and "CableCheckRes" in f.synopsis


def test_cap004_full_connection():
    assert not found(analyze_events(script(setup())), "CAP004")


# --------------------------------------------------------------------------- CAP005
def tls_summary(**kw):
    return {"version": "TLS 1.2", "cipher_suite": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
            "client_random": "ab" * 32, "decrypting": False, "records": [10, 10],
            "decrypted": [0, 0], "undecryptable": [7, 7], "application_bytes": [0, 0],
            "dropped": [0, 0], **kw}


def test_cap005_tls_without_keys():
    evs = [ev(1, 0.0, "tcp", "SYN", EV), ev(2, 0.01, "tcp", "SYN-ACK", EVSE),
           ev(3, 0.02, "tls", "ClientHello", EV, {}, info={"kind": "handshake"}),
           ev(9, 0.5, "tls", "Encrypted record", EV, {"length": 40}, info={"kind": "encrypted"},
              error="encrypted, no key log secrets for client random abab… (needs CLIENT_RANDOM)")]
    a = analyze_events(evs, [connection(0, kind="tls", namespace=None, tls=tls_summary())])
    (f,) = found(a, "CAP005")
    assert f.severity == "info" and f.culprit == "capture" and f.measured == 14
    assert "ab" * 32 in f.synopsis and "CLIENT_RANDOM" in f.evidence["why"]
    assert not [x for x in a.findings if x.rule.startswith("TLS")]


def test_cap005_decrypted_connection():
    evs = [ev(1, 0.0, "tcp", "SYN", EV), ev(2, 0.01, "tcp", "SYN-ACK", EVSE),
           ev(3, 0.02, "tls", "ClientHello", EV, {}, info={"kind": "handshake"})]
    a = analyze_events(evs, [connection(0, kind="tls", tls=tls_summary(decrypting=True,
                                                                        undecryptable=[0, 0]))])
    assert not found(a, "CAP005")


# --------------------------------------------------------------------------- CAP006
def ctx(skipped, snaplen=96):
    return SimpleNamespace(accounting={"skipped_by_reason": skipped},
                           capture={"interfaces": [{"id": 0, "linktype": 1, "snaplen": snaplen}]})


def test_cap006_snap_length_truncation_is_a_warning():
    fs = list(FramesSkipped().check(None, ctx({"IPv6 payload truncated (42 of 180 bytes captured)": 7,
                                              "TCP header truncated (12 of 20 bytes)": 1})))
    by = {f.severity: f for f in fs}
    assert by["warning"].measured == 7 and by["warning"].evidence["snaplen"] == [96]
    assert by["info"].measured == 1 and all(f.culprit == "capture" for f in fs)


def test_cap006_nothing_skipped():
    assert list(FramesSkipped().check(None, ctx({}))) == []


# --------------------------------------------------------------------------- corpus
_cache: dict = {}


def analysis(corpus, name):
    if name not in _cache:
        _cache[name] = analyze_capture(corpus / name)
    return _cache[name]


def test_corpus_listen_mode_fragment_is_a_capture_limit(corpus):
    a = analysis(corpus, "2025-01-21_listenMode_02_mac_spoofing_some_frames_visible.pcapng")
    (one,) = [f for f in a.findings if f.rule == "CAP003"]
    (mid,) = [f for f in a.findings if f.rule == "CAP004"]
    assert one.culprit == mid.culprit == "capture"
    assert 534 in one.frames and 321 in one.frames and "connection 0 from the EVSE only" in one.synopsis
    assert mid.frames == [534] and mid.severity == "info" and "CableCheckRes" in mid.synopsis
    mine = [f for f in a.findings if f.rule.startswith(("MSG", "TLS", "TRN", "CAP"))]
    assert {f.rule for f in mine} == {"CAP003", "CAP004"}      # no retransmission storm, no schema error


@pytest.mark.parametrize("name,frames", [
    ("2025-01-21_listenMode_01_slow_and_only_broadcast_visible.pcapng", [5, 10]),
    ("2025-01-21_listenMode_04_cutted_tx_path_no_joining.pcapng", [378, 432]),
    ("2025-01-21_listenMode_05_cutted_tx_path_no_joining.pcapng", [14, 19]),
    ("2022-10-26_WP4_networkEstablishedButHiddenCommunication.pcapng", [1, 4])])
def test_corpus_evse_side_slac_only(corpus, name, frames):
    a = analysis(corpus, name)
    (f,) = [f for f in a.findings if f.rule == "CAP003"]
    assert f.frames == frames and f.culprit == "capture" and f.severity == "warning"
    assert "SLAC of the EVSE only" in f.synopsis and "CM_SLAC_MATCH.CNF" in f.synopsis


def test_corpus_complete_captures_have_no_capture_quality_finding(corpus):
    for name in ("DIN_DC_DS5366_Josev.pcapng", "ISO-20_mTLS_DC_DS5366_Josev.pcapng",
                 "2022-11-17_Dehner_Alpitronic_until_SdpRequest.pcapng"):
        a = analysis(corpus, name)
        assert not [f for f in a.findings if f.rule.startswith("CAP")], name


def rewrite(src, dst, keep=lambda f: True, snap=None):
    """Copy a capture frame by frame (times kept), leaving out frames or cutting them at a
    snap length, as another capture setup would have recorded it."""
    from ccs_analyzer.dissectors.capture import CaptureReader
    from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter
    with open(dst, "wb") as out:
        w = PcapngWriter(out)
        ifaces: dict = {}
        for f in CaptureReader(str(src)):
            if not keep(f):
                continue
            if f.interface not in ifaces:
                ifaces[f.interface] = w.add_interface(f.linktype, snaplen=snap or 262144)
            w.write(f.time, f.data[:snap] if snap else f.data, interface=ifaces[f.interface],
                    orig_len=f.orig_len)
    return dst


@pytest.mark.parametrize("name,version", [("ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng", "TLS 1.2"),
                                          ("ISO-20_mTLS_DC_DS5366_Josev.pcapng", "TLS 1.3")])
def test_corpus_tls_without_the_disclosed_keys_is_a_capture_limit(corpus, tmp_path, name, version):
    path = rewrite(corpus / name, tmp_path / "nokeys.pcapng",
                   keep=lambda f: b"CLIENT_RANDOM" not in f.data and b"TRAFFIC_SECRET" not in f.data)
    a = analyze_capture(path)
    (f,) = [f for f in a.findings if f.rule == "CAP005"]
    assert f.severity == "info" and f.culprit == "capture" and f.evidence["version"] == version
    assert f.evidence["client_random"] in f.synopsis
    assert not [x for x in a.findings if x.rule.startswith(("TLS", "MSG", "TRN"))
                and x.severity == "error"]


def test_corpus_snap_length_cut_capture(tmp_path):
    from tests.conftest import REPO
    a = analyze_capture(rewrite(REPO / "samples" / "din_dc_session.pcapng", tmp_path / "snap.pcapng",
                                snap=96))
    (f,) = [f for f in a.findings if f.rule == "CAP006"]
    assert f.severity == "warning" and f.evidence["snaplen"] == [96] and f.measured > 100
    assert [x for x in a.findings if x.rule == "CAP002"]
