"""The whole chain on the real corpus: every capture analysed, every frame accounted for, and
the sessions / findings say what CORPUS.md says happened."""
from __future__ import annotations

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.analyzer.timeline import timeline_frame
from tests.conftest import CORPUS, corpus_captures

_cache: dict = {}


def analysis(name: str):
    if name not in _cache:
        _cache[name] = analyze_capture(CORPUS / name)
    return _cache[name]


def rules_of(a, severity=None):
    return [f.rule for f in a.findings if severity is None or f.severity == severity]


@pytest.mark.parametrize("cap", corpus_captures(), ids=lambda p: p.name[:40])
def test_every_frame_accounted_for(corpus, cap):
    a = analysis(cap.name)
    acc = a.accounting
    assert acc["frames"] == a.capture["frames"] > 0
    assert acc["decoded"] + acc["skipped"] + acc["out_of_scope"] == acc["frames"]
    assert not [f for f in a.findings if f.rule == "ENG001"], "a rule crashed"
    for s in a.sessions:
        assert a.summaries[s.id]["ended"]["how"]


@pytest.mark.parametrize("name", ["DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng",
                                  "ISO-2_AC_DS5366.pcapng", "ISO-20_BPT_AC_DS5366_Josev.pcapng",
                                  "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng"])
def test_clean_reference_sessions_have_no_error(corpus, name):
    a = analysis(name)
    assert len(a.sessions) == 1
    s = a.summaries["S1"]
    assert s["ended"]["how"] == "SessionStop (Terminate)"
    assert rules_of(a, "error") == []


def test_din_reference_session_summary(corpus):
    a = analysis("DIN_DC_DS5366_Josev.pcapng")
    s = a.summaries["S1"]
    assert s["protocol"] == "DIN 70121" and not s["namespace_detected"]
    assert s["last_message"]["name"] == "SessionStopRes" and s["last_message"]["frame"] == 417
    assert s["slac"]["matched"] and s["slac"]["match_frame"] == 55
    assert s["SessionID"] and s["EVSEID"] is not None
    assert s["max_voltage_v"] and s["max_voltage_v"] > 300


def test_taycan_slac_failure_blames_the_ev(corpus):
    # two matching attempts 41 s apart (more than TT_matching_repetition, [V2G3-A09-125]):
    # two sessions, each three CM_SLAC_PARM.REQ the EV gave up on
    a = analysis("2023-05-03_TaycanLeftside_slacFail.pcapng")
    assert [(a.summaries[s.id]["start_frame"], a.summaries[s.id]["end_frame"])
            for s in a.sessions] == [(3, 8), (13, 26)]
    f = [f for f in a.findings if f.rule == "SLC001"]
    assert [x.session for x in f] == ["S1", "S2"] and {x.culprit for x in f} == {"EVCC"}
    assert all("3 CM_SLAC_PARM.REQ" in x.synopsis for x in f)
    assert {a.summaries[s.id]["ended"]["how"] for s in a.sessions} == {"SLAC not completed"}


def test_sdp_ok_tcp_fail_names_the_wrong_port(corpus):
    a = analysis("2022-11-25_v0.2_alpi_SDP_ok_TCP_fail.pcapng")
    f = [f for f in a.findings if f.rule == "TRN001"]
    assert len(f) == 1 and f[0].culprit == "EVCC"
    assert "15118" in f[0].synopsis and "51111" in f[0].synopsis
    assert {186, 187}.issubset(f[0].frames)


def test_cablecheck_failed_and_precharge_failures(corpus):
    a = analysis("2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    rsp = [f for f in a.findings if f.rule == "RSP001"]
    assert rsp and {656, 659} <= set(rsp[0].frames) and "CableCheckRes" in rsp[0].synopsis
    b = analysis("2022-12-13_compleo_with_bulb.pcapng")
    pre = [f for f in b.findings if f.rule == "PRE001"]
    assert pre and "95.5 V" in pre[0].synopsis and 731 in pre[0].frames
    m = analysis("2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng")
    pre = [f for f in m.findings if f.rule == "PRE001"]
    assert pre and 583 in pre[0].frames and "EVSE_NotReady" in pre[0].synopsis


def test_pause_and_resume_is_one_session(corpus):
    a = analysis("ISO-2_DC_Pause_DS5366.pcapng")
    assert len(a.sessions) == 1
    s = a.summaries["S1"]
    assert s["resumed"] == 1 and len(s["connections"]) == 2
    assert s["ended"]["how"] == "SessionStop (Terminate)"


def test_schema_detected_when_the_handshake_is_missing(corpus):
    a = analysis("2025-01-21_listenMode_02_mac_spoofing_some_frames_visible.pcapng")
    v2g = [e for s in a.sessions for e in s.events if e.layer == "v2gtp"]
    assert len(v2g) == 1 and v2g[0].name == "CableCheckRes"
    assert v2g[0].info.get("namespace_detected") and v2g[0].protocol == "DIN 70121"


def test_tls_13_mutual_session(corpus):
    a = analysis("ISO-20_mTLS_DC_DS5366_Josev.pcapng")
    s = a.summaries["S1"]
    assert s["protocol"] == "ISO 15118-20" and s["tls"]
    tls = next(c for c in a.connections if c["kind"] == "tls")["tls"]
    assert tls["version"] == "TLS 1.3"
    assert a.keylog["secrets"] >= 4


def test_other_chargers_sounding_is_reported(corpus):
    a = analysis("ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng")
    answering = a.summaries["S1"]["slac"]["chargers_answering"]
    assert len(answering) == 2
    assert a.summaries["S1"]["evse_mac"] in answering


def test_timeline_physical_values_in_si(corpus):
    a = analysis("ISO-2_DC_DS5366.pcapng")
    df = timeline_frame(a.sessions, a.capture_events)
    assert len(df) == sum(len(s.events) for s in a.sessions) + len(a.capture_events)
    cd = df[df["name"] == "CurrentDemandRes"]
    assert len(cd) == 417
    assert cd["EVSEPresentCurrent_A"].max() == pytest.approx(200.0, abs=0.1)
    assert 370 <= cd["EVSEPresentVoltage_V"].max() <= 377
    assert cd["power_W"].notna().all() and df["energy_Wh"].max() > 0
