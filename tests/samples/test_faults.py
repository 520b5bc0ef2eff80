"""Each fault does what its documentation says, at its level: message trees and timings,
the EV's and the SECC's reactions, SLAC / SDP / TCP frames, V2GTP and EXI bytes, the file."""
from __future__ import annotations

from ccs_analyzer.samples.script import header_of

from .helpers import body, decode, si, sim_from, sim_of, v2g


def names(sim):
    return [w.message.name for w in sim.messages]


def times(sim, name):
    return [w.time for w in sim.messages if w.message.name == name]


def ending(sim, conn=-1):
    return sim.sessions[0].connections[conn].ending


def comments(sim):
    return [c for w in sim.messages for c in w.message.comments]


def tcp_events(sim):
    return [e for e in decode(sim)[0] if e.layer == "tcp"]


# ------------------------------------------------------------------ script level
def test_late_response():
    sim = sim_of("iso2_dc_late_response")
    req, res = times(sim, "CableCheckReq")[2], times(sim, "CableCheckRes")[2]
    assert abs(res - req - 3.0) < 1e-3
    assert names(sim)[-1] == "SessionStopRes"
    assert any("late_response" in c for c in comments(sim))


def test_late_response_every_occurrence():
    sim = sim_from({"protocol": "DIN 70121", "timing": {"loop_cycles": 4},
                    "faults": [{"name": "late_response", "message": "CurrentDemandRes", "occurrence": 0,
                                "delay_s": 0.4}]})
    reqs, ress = times(sim, "CurrentDemandReq"), times(sim, "CurrentDemandRes")
    assert all(abs(b - a - 0.4) < 1e-3 for a, b in zip(reqs, ress))


def test_slow_charge_loop():
    sim = sim_of("iso2_dc_slow_charge_loop")
    reqs, ress = times(sim, "CurrentDemandReq"), times(sim, "CurrentDemandRes")
    assert all(abs(b - a - 0.3) < 1e-3 for a, b in zip(reqs, ress))


def test_missing_response():
    sim = sim_of("din_dc_missing_response")
    assert names(sim)[-1] == "ChargeParameterDiscoveryReq"
    e = ending(sim)
    assert (e.by, e.how, e.after_s) == ("EV", "FIN", 2.0)
    fins = [x for x in tcp_events(sim) if x.name == "FIN"]
    assert fins[0].direction == "EV->EVSE" and abs(fins[0].time - sim.messages[-1].time - 2.0) < 0.01


def test_failed_response_any_code():
    sim = sim_of("iso2_ac_failed_response")
    last = sim.messages[-1].message
    assert last.name == "ChargeParameterDiscoveryRes" and body(last)["ResponseCode"] == "FAILED_WrongChargeParameter"
    assert (ending(sim).by, ending(sim).how) == ("EVSE", "FIN")
    sim = sim_of("iso20_dc_failed_response")
    assert body(sim.messages[-1].message)["ResponseCode"] == "FAILED_PowerDeliveryNotApplied"


def test_failed_response_refuses_unknown_codes():
    import pytest

    from ccs_analyzer.samples import ScenarioError
    with pytest.raises(ScenarioError, match="not a ResponseCode"):
        sim_from({"faults": [{"name": "failed_response", "code": "FAILED_Whatever"}]})


def test_failed_no_negotiation():
    sim = sim_of("iso20_dc_failed_no_negotiation")
    res = sim.messages[-1].message
    assert res.tree == {"supportedAppProtocolRes": {"ResponseCode": "Failed_NoNegotiation"}}
    assert ending(sim).by == "EVSE"


def test_out_of_sequence():
    sim = sim_of("iso2_dc_out_of_sequence")
    ns = names(sim)
    i = ns.index("ChargeParameterDiscoveryRes")
    assert ns[i + 1:] == ["PowerDeliveryReq", "PowerDeliveryRes"]
    assert body(sim.messages[-1].message)["ResponseCode"] == "FAILED_SequenceError"


def test_session_id_changed_by_the_ev():
    sim = sim_of("din_dc_session_id_changed")
    sid = header_of(v2g(sim, "SessionSetupRes")[0].tree)["SessionID"]
    req, res = sim.messages[-2].message, sim.messages[-1].message
    assert req.name == "CableCheckReq" and header_of(req.tree)["SessionID"] != sid
    assert body(res)["ResponseCode"] == "FAILED_UnknownSession"


def test_session_id_changed_by_the_secc():
    sim = sim_of("iso2_dc_evse_session_id_changed")
    sid = header_of(v2g(sim, "SessionSetupRes")[0].tree)["SessionID"]
    res = sim.messages[-1].message
    assert res.name == "PreChargeRes" and header_of(res.tree)["SessionID"] != sid
    assert header_of(sim.messages[-2].message.tree)["SessionID"] == sid
    assert (ending(sim).by, ending(sim).how) == ("EV", "FIN")


def test_session_id_zero():
    sim = sim_of("iso2_ac_session_id_zero")
    for m in v2g(sim)[3:]:
        assert header_of(m.tree)["SessionID"] == "0000000000000000"
    assert names(sim)[-1] == "SessionStopRes"


def test_precharge_never_reaches():
    sim = sim_of("din_dc_precharge_never_reaches")
    target = si(body(v2g(sim, "PreChargeReq")[0])["EVTargetVoltage"])
    volts = [si(body(m)["EVSEPresentVoltage"]) for m in v2g(sim, "PreChargeRes")]
    assert max(volts) < 0.65 * target
    assert times(sim, "SessionStopReq")[0] - times(sim, "PreChargeReq")[0] > 7.0
    assert names(sim)[-2:] == ["SessionStopReq", "SessionStopRes"] and "PowerDeliveryReq" not in names(sim)


def test_precharge_overshoot():
    sim = sim_of("iso2_dc_precharge_overshoot")
    target = si(body(v2g(sim, "PreChargeReq")[0])["EVTargetVoltage"])
    volts = [si(body(m)["EVSEPresentVoltage"]) for m in v2g(sim, "PreChargeRes")]
    assert max(volts) > target + 35 and abs(volts[-1] - target) <= 10
    assert "PowerDeliveryReq" in names(sim)
    sim = sim_from({"protocol": "DIN 70121", "faults": [{"name": "precharge_overshoot", "settles": False}]})
    assert "PowerDeliveryReq" not in names(sim) and names(sim)[-1] == "SessionStopRes"


def test_evse_not_ready_in_precharge():
    sim = sim_of("din_dc_evse_not_ready_precharge")
    statuses = {body(m)["DC_EVSEStatus"]["EVSEStatusCode"] for m in v2g(sim, "PreChargeRes")}
    assert statuses == {"EVSE_NotReady"}
    assert "PowerDeliveryReq" not in names(sim) and names(sim)[-1] == "SessionStopRes"


def test_cablecheck_fail():
    sim = sim_of("iso2_dc_cablecheck_fail")
    last = v2g(sim, "CableCheckRes")[-1]
    b = body(last)
    assert (b["ResponseCode"], b["EVSEProcessing"], b["DC_EVSEStatus"]["EVSEIsolationStatus"]) == ("FAILED", "Finished", "Fault")
    assert ending(sim).by == "EVSE"
    sim = sim_of("din_dc_cablecheck_invalid")
    b = body(v2g(sim, "CableCheckRes")[-1])
    assert b["DC_EVSEStatus"]["EVSEIsolationStatus"] == "Invalid" and b["ResponseCode"] == "OK"
    assert names(sim)[-1] == "SessionStopRes" and "PreChargeReq" not in names(sim)


def test_evse_processing_ongoing_too_long():
    sim = sim_of("din_dc_authorization_ongoing")
    res = [w for w in sim.messages if w.message.name == "ContractAuthenticationRes"]
    assert all(body(w.message)["EVSEProcessing"] == "Ongoing" for w in res)
    assert res[-1].time - res[0].time > 60.0
    assert names(sim)[-1] == "SessionStopRes"
    sim = sim_of("iso2_dc_cablecheck_too_long")
    t = times(sim, "CableCheckReq")
    assert t[-1] - t[0] > 40.0 and "PreChargeReq" not in names(sim)


def test_evse_current_above_max():
    sim = sim_of("iso2_dc_current_above_max")
    over = [b for b in map(body, v2g(sim, "CurrentDemandRes"))
            if si(b["EVSEPresentCurrent"]) > si(b["EVSEMaximumCurrentLimit"])]
    assert len(over) == 6 and all(si(b["EVSEPresentCurrent"]) == 168.0 for b in over)


def test_emergency_shutdown():
    sim = sim_of("din_dc_emergency_shutdown")
    res = v2g(sim, "CurrentDemandRes")
    b = body(res[-1])
    assert b["DC_EVSEStatus"]["EVSEStatusCode"] == "EVSE_EmergencyShutdown" and si(b["EVSEPresentCurrent"]) == 0
    assert len(res) == 12
    assert names(sim)[-6:] == ["PowerDeliveryReq", "PowerDeliveryRes", "WeldingDetectionReq", "WeldingDetectionRes",
                               "SessionStopReq", "SessionStopRes"][-6:] or "SessionStopRes" in names(sim)
    sim = sim_of("iso20_dc_emergency_shutdown")
    last = sim.messages[-1].message
    assert last.name == "DC_ChargeLoopRes" and body(last)["ResponseCode"] == "FAILED"
    assert body(last)["EVSEStatus"]["EVSENotification"] == "Terminate"


def test_stop_charging_ignored():
    sim = sim_of("din_dc_stop_charging_ignored")
    res = [w for w in sim.messages if w.message.name == "CurrentDemandRes"]
    first = next(w for w in res if body(w.message)["DC_EVSEStatus"]["EVSENotification"] == "StopCharging")
    assert body(first.message)["DC_EVSEStatus"]["NotificationMaxDelay"] == 2
    later = [w for w in sim.messages if w.message.name == "CurrentDemandReq" and w.time > first.time]
    assert later[-1].time - first.time >= 3.5
    assert (ending(sim).by, ending(sim).how) == ("EVSE", "RST")
    assert any(e.name == "RST" and e.direction == "EVSE->EV" for e in tcp_events(sim))


def test_ev_error_code():
    sim = sim_of("din_dc_ev_error_code")
    reqs = v2g(sim, "CurrentDemandReq")
    assert body(reqs[-1])["DC_EVStatus"]["EVErrorCode"] == "FAILED_ChargingCurrentdifferential"
    assert body(reqs[-1])["DC_EVStatus"]["EVReady"] is False and len(reqs) == 15
    assert names(sim)[-1] == "SessionStopRes"
    sim = sim_from({"protocol": "ISO 15118-20", "faults": [{"name": "ev_error_code", "at_cycle": 3}]})
    assert body(v2g(sim, "SessionStopReq")[0])["EVTerminationCode"] == "FAILED_ChargingCurrentdifferential"


# ------------------------------------------------------------------ SLAC
def slac_events(sim):
    return [e for e in decode(sim)[0] if e.layer == "slac"]


def test_slac_timer_violated():
    ev = slac_events(sim_of("iso2_dc_slac_timer"))
    req = next(e for e in ev if e.name == "CM_SLAC_PARM.REQ")
    cnf = next(e for e in ev if e.name == "CM_SLAC_PARM.CNF")
    assert abs(cnf.time - req.time - 0.35) < 1e-4
    ev = slac_events(sim_of("iso2_dc_slac_atten_late"))
    start = next(e for e in ev if e.name == "CM_START_ATTEN_CHAR.IND")
    char = next(e for e in ev if e.name == "CM_ATTEN_CHAR.IND")
    assert char.time - start.time >= 1.5 - 1e-4


def test_wrong_run_id():
    ev = slac_events(sim_of("iso2_dc_wrong_run_id"))
    run = next(e for e in ev if e.name == "CM_SLAC_PARM.REQ").message["RunID"]
    char = next(e for e in ev if e.name == "CM_ATTEN_CHAR.IND")
    assert char.message["RunID"] != run
    assert any(e.name == "CM_SLAC_MATCH.CNF" for e in ev)
    sim = sim_of("slac_wrong_run_id_abort")
    ev = slac_events(sim)
    assert ev[-1].name == "CM_SLAC_MATCH.REQ" and not sim.messages


def test_cross_talk():
    sim = sim_of("iso2_dc_cross_talk")
    chars = [e for e in slac_events(sim) if e.name == "CM_ATTEN_CHAR.IND"]
    assert len({e.src for e in chars}) == 2
    means = sorted((sum(e.message["AAG"]) / len(e.message["AAG"]), e.src) for e in chars)
    match = next(e for e in slac_events(sim) if e.name == "CM_SLAC_MATCH.CNF")
    assert match.message["EVSE_MAC"] == means[0][1]
    sim = sim_of("iso2_dc_cross_talk_wrong_match")
    assert sim.sessions[0].slac.evse_mac == "02:00:00:00:e5:11"
    sdp = [e for e in decode(sim)[0] if e.layer == "sdp" and e.direction == "EVSE->EV"]
    assert sdp[0].message["SECCIPAddress"].endswith("e511")


def test_slac_incomplete():
    sim = sim_of("slac_incomplete")
    ev = slac_events(sim)
    assert [e.name for e in ev].count("CM_SLAC_PARM.REQ") == 3
    assert not any(e.name.startswith(("CM_START_ATTEN", "CM_SLAC_MATCH")) for e in ev)
    assert not sim.messages


# ------------------------------------------------------------------ SDP
def sdp_events(sim):
    return [e for e in decode(sim)[0] if e.layer == "sdp"]


def test_no_sdp_response():
    ev = sdp_events(sim_of("din_dc_no_sdp_response"))
    assert [e.direction for e in ev] == ["EV->EVSE"] * 6
    assert all(abs(b.time - a.time - 0.25) < 1e-4 for a, b in zip(ev, ev[1:]))


def test_sdp_retries_and_security_mismatch():
    ev = sdp_events(sim_of("iso2_dc_noisy_link"))
    assert [e.direction for e in ev] == ["EV->EVSE"] * 3 + ["EVSE->EV"]
    ev = sdp_events(sim_of("iso2_dc_sdp_security_mismatch"))
    assert ev[0].message["Security"] == "TLS" and ev[1].message["Security"] == "NoTLS"


# ------------------------------------------------------------------ TCP
def test_tcp_rst():
    sim = sim_of("iso2_dc_tcp_rst")
    assert names(sim)[-1] == "CurrentDemandRes" and len(v2g(sim, "CurrentDemandRes")) == 8
    rst = [e for e in tcp_events(sim) if e.name == "RST"]
    assert len(rst) == 1 and rst[0].direction == "EVSE->EV"


def test_lost_frames_are_acked_but_missing():
    sim = sim_of("iso2_dc_lost_frames")
    lost = [w for w in sim.messages if w.message.lost]
    assert [w.message.name for w in lost] == ["CurrentDemandRes", "CurrentDemandReq"]
    events, _ = decode(sim)
    decoded = [e for e in events if e.layer == "v2gtp" and e.message is not None]
    assert len(decoded) == len(sim.messages) - 2
    assert names(sim)[-1] == "SessionStopRes"


def test_tcp_retransmission():
    sim = sim_of("iso2_dc_noisy_link")
    assert any(w.message.retransmit_after_s for w in sim.messages)
    ev = tcp_events(sim)
    assert any("retransmission" in e.name.lower() for e in ev), sorted({e.name for e in ev})


def test_tcp_connect_refused():
    sim = sim_of("din_dc_tcp_connect_refused")
    ev = tcp_events(sim)
    assert [e.name for e in ev].count("RST") == 3 and not sim.messages


# ------------------------------------------------------------------ V2GTP / EXI / TLS / capture
def v2gtp_errors(sim):
    return [e for e in decode(sim)[0] if e.layer == "v2gtp" and e.error]


def test_v2gtp_header_error():
    sim = sim_of("din_dc_v2gtp_header_error")
    assert sim.messages[-1].message.v2gtp_header == {"version": 2}
    assert sim.messages[-1].message.wire()[:2] == b"\x02\xfe"
    assert any("version" in e.error for e in v2gtp_errors(sim))
    sim = sim_of("iso2_dc_v2gtp_payload_type")
    m = next(w.message for w in sim.messages if w.message.v2gtp_header)
    assert m.wire()[2:4] == b"\x80\x02" and names(sim)[-1] == "SessionStopRes"


def test_exi_truncated():
    sim = sim_of("iso2_ac_exi_truncated")
    m = sim.messages[-1].message
    assert m.exi_keep == 12 and len(m.payload()) == 12
    errs = v2gtp_errors(sim)
    assert errs and "EXI" in errs[0].error


def test_trailing_bytes():
    sim = sim_of("iso20_ac_trailing_bytes")
    m = v2g(sim, "SessionSetupRes")[0]
    assert m.payload() == m.exi() + b"\x00"
    assert names(sim)[-1] == "SessionStopRes"


def test_tls_handshake_failure():
    sim = sim_of("iso2_dc_tls_handshake_failure")
    events, _ = decode(sim)
    tls = [e for e in events if e.layer == "tls"]
    assert [e.name for e in tls][:2] == ["ClientHello", "Alert fatal handshake_failure"] or \
        (tls and tls[0].name == "ClientHello" and any("handshake_failure" in e.name for e in tls))
    assert not sim.messages


def test_capture_truncated(tmp_path):
    from ccs_analyzer.dissectors.pipeline import Dissector
    from ccs_analyzer.samples import simulate
    full = simulate("iso2_dc_eim").pcapng
    sim = sim_of("iso2_dc_capture_truncated")
    p = tmp_path / "t.pcapng"
    p.write_bytes(sim.pcapng)
    d = Dissector(p)
    list(d.events())
    assert d.capture.problems
    assert len(sim.pcapng) < len(full)
