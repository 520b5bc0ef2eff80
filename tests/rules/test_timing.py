"""Timing rules (rules/timing/, TIM001-TIM007): event-level cases that trigger each rule and
close cases that must not, then what the rules say about the real captures."""
from __future__ import annotations


import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.rules import all_rules
from tests.conftest import CORPUS, REPO
from tests.rules.util import (EV, EVSE, NS_DIN, NS_ISO2, NS_ISO20_DC, analyze_events, connection,
                              din, ev, iso2, iso20, pv, rn, rules_found, script)

OK_STATUS = {"EVSEIsolationStatus": "Valid", "EVSEStatusCode": "EVSE_Ready",
             "NotificationMaxDelay": 0, "EVSENotification": "None"}
EV_STATUS = {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 50}
Z20 = "0000000000000000"


def tim(a, code=None):
    return [f for f in a.findings if f.rule.startswith("TIM") and (code is None or f.rule == code)]


# ------------------------------------------------------------------ message builders
def setup(mk=din, lat=0.02):
    return [(mk("SessionSetupReq", {"EVCCID": "01"}, "00"),
             mk("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}),
             0.05, lat)]


def exch(name, req=None, res=None, gap=0.05, lat=0.02, mk=din, rc="OK"):
    return (mk(f"{name}Req", req or {}), mk(f"{name}Res", {"ResponseCode": rc, **(res or {})}),
            gap, lat)


def current_demand(lats, gap=0.1, mk=din):
    return [exch("CurrentDemand", {"DC_EVStatus": EV_STATUS, "EVTargetCurrent": pv(10, "A"),
                                   "EVTargetVoltage": pv(400, "V")},
                 {"DC_EVSEStatus": OK_STATUS, "EVSEPresentVoltage": pv(400, "V"),
                  "EVSEPresentCurrent": pv(10, "A")}, gap, lat, mk) for lat in lats]


def precharge(volts, gap=0.5, target=400.0, mk=din):
    return [exch("PreCharge", {"DC_EVStatus": EV_STATUS, "EVTargetVoltage": pv(target, "V"),
                               "EVTargetCurrent": pv(1, "A")},
                 {"DC_EVSEStatus": OK_STATUS, "EVSEPresentVoltage": pv(v, "V")}, gap, 0.02, mk)
            for v in volts]


def ongoing(name, n, gap=1.0, mk=din, finished=True, field="EVSEProcessing"):
    out = [exch(name, {}, {field: "Ongoing"}, gap, 0.02, mk) for _ in range(n)]
    if finished:
        out.append(exch(name, {}, {field: "Finished"}, gap, 0.02, mk))
    return out


def cablecheck(n, gap=1.0, mk=din, finished=True):
    res = {"DC_EVSEStatus": {**OK_STATUS, "EVSEStatusCode": "EVSE_IsolationMonitoringActive"},
           "EVSEProcessing": "Ongoing"}
    out = [exch("CableCheck", {"DC_EVStatus": EV_STATUS}, res, gap, 0.02, mk) for _ in range(n)]
    if finished:
        out.append(exch("CableCheck", {"DC_EVStatus": EV_STATUS},
                        {"DC_EVSEStatus": OK_STATUS, "EVSEProcessing": "Finished"}, gap, 0.02, mk))
    return out


def power_delivery(start=True, mk=din, iso=False, lat=0.02, gap=0.05):
    req = ({"ChargeProgress": "Start" if start else "Stop", "SAScheduleTupleID": 1} if iso else
           {"ReadyToChargeState": start, "DC_EVStatus": EV_STATUS})
    return exch("PowerDelivery", req, {"DC_EVSEStatus": OK_STATUS}, gap, lat, mk)


def stop(mk=din):
    return [exch("SessionStop", {}, {}, 0.05, 0.02, mk)]


def run_iso2(exchanges, **kw):
    return analyze_events(script(setup(iso2) + exchanges, namespace=NS_ISO2, **kw))


def run_din(exchanges, **kw):
    return analyze_events(script(setup(din) + exchanges, namespace=NS_DIN, **kw))


# ------------------------------------------------------------------ the rule pack
def test_rules_are_registered_and_documented():
    codes = {c.code: c for c in all_rules() if c.code.startswith("TIM")}
    assert set(codes) >= {f"TIM00{i}" for i in range(1, 8)}
    for c in codes.values():
        doc = c.explain()
        for part in ("What it checks:", "Why it matters:", "Fix", "Source:"):
            assert part in doc, (c.code, part)
        assert c.category == "timing" and c.requirement


# ------------------------------------------------------------------ TIM001 late responses
def test_tim001_response_later_than_the_ev_timeout_blames_the_secc():
    a = run_iso2([power_delivery(iso=True, lat=5.6)] + stop(iso2))
    (f,) = tim(a, "TIM001")
    assert f.severity == "error" and f.culprit == "SECC"
    assert f.measured == pytest.approx(5.6, abs=0.01) and f.limit == 5.0
    assert "PowerDeliveryRes" in f.synopsis and "should have given up" in f.synopsis
    assert len(f.frames) == 2 and f.evidence["expected"] and f.evidence["actual"]


def test_tim001_response_later_than_the_performance_time_only():
    a = run_iso2([exch("ServiceDiscovery", lat=1.8, mk=iso2)] + stop(iso2))
    (f,) = tim(a, "TIM001")
    assert f.severity == "error" and f.limit == 1.5 and "performance time" in f.synopsis
    assert "within the EV's 2 s" in f.synopsis


def test_tim001_not_for_responses_in_time():
    a = run_iso2([exch("ServiceDiscovery", lat=1.4, mk=iso2), power_delivery(iso=True, lat=4.4)]
                 + current_demand([0.02, 0.028, 0.029], mk=iso2) + stop(iso2))
    assert not tim(a, "TIM001")       # 29 ms is inside the 5 ms capture allowance


def test_tim001_charge_loop_once_per_loop_with_count_and_frames():
    lats = [0.015] * 300
    for i in (10, 50, 120):
        lats[i] = 0.30
    for i in (200, 250):
        lats[i] = 0.05
    a = run_iso2(current_demand(lats, mk=iso2) + stop(iso2))
    (f,) = tim(a, "TIM001")
    assert f.evidence["over_timeout"] == 3 and f.evidence["over_performance"] == 2
    assert f.evidence["responses"] == 300 and f.evidence["latency_s"]["max"] == pytest.approx(0.3)
    assert "3 of 300 CurrentDemandRes" in f.synopsis and "2 more" in f.synopsis
    assert len(f.frames) <= 6 and f.frames[0] < f.frames[-1]


def test_tim001_din_current_demand_follows_the_2014_edition_as_warning():
    a = run_din(current_demand([0.1, 0.3, 0.1]) + stop())
    (f,) = tim(a, "TIM001")
    assert f.severity == "warning" and f.limit == 0.25
    assert "2024" in f.evidence["timeout"]["note"]
    b = run_din(current_demand([0.1, 0.6]) + stop())         # above both editions' value
    assert [f.severity for f in tim(b, "TIM001")] == ["error"]
    c = run_din(current_demand([0.2] * 20) + stop())        # no DIN performance time known
    assert not tim(c, "TIM001")


def _with_offsets(evs):
    """Stream offsets and payloads on the V2G events, per connection and direction, as the
    dissector sets them (8-byte V2GTP header + a 20-byte payload each)."""
    nxt: dict = {}
    for e in evs:
        if e.layer == "v2gtp":
            e.payload = b"\x00" * 20
            e.offset = nxt.get(e.direction, 0)
            nxt[e.direction] = e.offset + 28
    return evs


def test_tim001_request_lost_on_the_line_is_timed_from_the_copy_the_secc_answered():
    evs = _with_offsets(script(setup(iso2) + [exch("ServiceDiscovery", lat=2.5, mk=iso2)] + stop(iso2),
                               namespace=NS_ISO2))
    req = next(e for e in evs if e.name == "ServiceDiscoveryReq")
    evs.append(ev(req.frame, req.time - 1.7e9 + 2.49, "tcp", "TCP retransmission", EV,
                  {"bytes": 28, "offset": req.offset}))
    assert not tim(analyze_events(evs), "TIM001")          # answered 10 ms after the copy it got


def test_tim001_retransmission_of_other_bytes_does_not_excuse_a_late_response():
    evs = _with_offsets(script(setup(iso2) + [exch("ServiceDiscovery", lat=2.5, mk=iso2)] + stop(iso2),
                               namespace=NS_ISO2))
    req = next(e for e in evs if e.name == "ServiceDiscoveryReq")
    evs.append(ev(req.frame, req.time - 1.7e9 + 2.0, "tcp", "TCP retransmission", EVSE,
                  {"bytes": 28, "offset": 0}))              # the SECC's earlier response again
    (f,) = tim(analyze_events(evs), "TIM001")
    assert f.severity == "error" and f.evidence["request_retransmitted"] == 0


def test_tim001_response_completed_by_a_retransmission_is_timed_from_its_first_frame():
    evs = script(setup(iso2) + [exch("ServiceDiscovery", lat=2.5, mk=iso2)] + stop(iso2), namespace=NS_ISO2)
    res = next(e for e in evs if e.name == "ServiceDiscoveryRes")
    req = next(e for e in evs if e.name == "ServiceDiscoveryReq")
    res.first_frame = res.frame - 1
    res.info["first_time"] = req.time + 0.01               # began 10 ms after the request
    assert not tim(analyze_events(evs), "TIM001")


def test_tim002_gap_runs_from_the_responses_first_transmission():
    base = setup(iso2) + [exch("ServiceDiscovery", mk=iso2), exch("PaymentServiceSelection", gap=39.9,
                                                                   mk=iso2)] + stop(iso2)
    evs = script(base, namespace=NS_ISO2)
    res = next(e for e in evs if e.name == "ServiceDiscoveryRes")
    res.info["first_time"] = res.time - 0.2                 # completed 0.2 s after it began
    assert [f.rule for f in tim(analyze_events(evs))] == ["TIM002"]
    assert not tim(analyze_events(script(base, namespace=NS_ISO2)), "TIM002")


def test_tim001_ignores_unanswered_requests():
    a = run_iso2([exch("ServiceDiscovery", mk=iso2), (iso2("PaymentServiceSelectionReq", {}), None, 0.1, 0)])
    assert not tim(a, "TIM001")


# ------------------------------------------------------------------ TIM002 sequence
def test_tim002_next_request_after_the_ev_performance_time():
    a = run_iso2([exch("ServiceDiscovery", mk=iso2), exch("PaymentServiceSelection", gap=45.0, mk=iso2)]
                 + stop(iso2))
    (f,) = tim(a, "TIM002")
    assert f.severity == "error" and f.culprit == "EVCC" and f.limit == 40.0
    assert "PaymentServiceSelectionReq" in f.synopsis and "ServiceDiscoveryRes" in f.synopsis
    assert "Sequence_Timeout" not in f.synopsis


def test_tim002_past_the_secc_sequence_timeout():
    a = run_iso2([exch("ServiceDiscovery", mk=iso2), exch("PaymentServiceSelection", gap=65.0, mk=iso2)]
                 + stop(iso2))
    (f,) = tim(a, "TIM002")
    assert f.limit == 60.0 and "entitled to end the session" in f.synopsis


def test_tim002_ev_silent_until_the_evse_closes():
    evs = script(setup(iso2) + [exch("ServiceDiscovery", mk=iso2)], namespace=NS_ISO2)
    t = evs[-1].time - 1.7e9
    evs.append(ev(evs[-1].frame + 1, t + 61.0, "tcp", "FIN", EVSE))
    (f,) = tim(analyze_events(evs, [connection(0, fin=(None, evs[-1].frame))]), "TIM002")
    assert evs[-1].frame in f.frames and "closed the connection" in f.synopsis
    assert f.severity == "error" and f.culprit == "EVCC"


def test_tim002_not_for_short_gaps_capture_end_stop_or_failed():
    assert not tim(run_iso2([exch("ServiceDiscovery", mk=iso2),
                             exch("PaymentServiceSelection", gap=30.0, mk=iso2)] + stop(iso2)), "TIM002")
    # the capture ends 50 s after the last response: the SECC's 60 s had not expired
    evs = script(setup(iso2) + [exch("ServiceDiscovery", mk=iso2)], namespace=NS_ISO2)
    evs.append(ev(evs[-1].frame + 1, evs[-1].time - 1.7e9 + 50.0, "slac", "CM_GET_KEY.REQ"))
    assert not tim(analyze_events(evs), "TIM002")
    # long silence after SessionStopRes or a FAILED response is no sequence timeout
    evs = script(setup(iso2) + [exch("ServiceDiscovery", mk=iso2)] + stop(iso2), namespace=NS_ISO2)
    evs.append(ev(evs[-1].frame + 1, evs[-1].time - 1.7e9 + 100.0, "tcp", "FIN", EVSE))
    assert not tim(analyze_events(evs), "TIM002")
    evs = script(setup(iso2) + [exch("ServiceDiscovery", mk=iso2, rc="FAILED")], namespace=NS_ISO2)
    evs.append(ev(evs[-1].frame + 1, evs[-1].time - 1.7e9 + 100.0, "tcp", "FIN", EVSE))
    assert not tim(analyze_events(evs), "TIM002")


def test_tim002_names_power_delivery_stop():
    a = run_iso2([power_delivery(False, iso2, iso=True),
                  exch("WeldingDetection", {"DC_EVStatus": EV_STATUS}, {"DC_EVSEStatus": OK_STATUS,
                       "EVSEPresentVoltage": pv(20, "V")}, gap=45.0, mk=iso2)] + stop(iso2))
    (f,) = tim(a, "TIM002")
    assert "PowerDeliveryRes (Stop)" in f.synopsis and "WeldingDetectionReq" in f.synopsis


def test_tim002_lost_capture_data_lowers_the_severity():
    evs = script(setup(iso2) + [exch("ServiceDiscovery", mk=iso2),
                                exch("PaymentServiceSelection", gap=45.0, mk=iso2)] + stop(iso2),
                 namespace=NS_ISO2)
    res = next(e for e in evs if e.name == "ServiceDiscoveryRes")
    evs.append(ev(res.frame, res.time - 1.7e9 + 10.0, "tcp", "TCP bytes missing from capture", EV))
    (f,) = tim(analyze_events(evs), "TIM002")
    assert f.severity == "warning" and "missing from the capture" in f.synopsis


def iso20_charge_loop(gaps):
    loop = [(iso20("DC_ChargeLoopReq", {"EVPresentVoltage": rn(400), "MeterInfoRequested": False}),
             iso20("DC_ChargeLoopRes", {"ResponseCode": "OK", "EVSEPresentCurrent": rn(10),
                                        "EVSEPresentVoltage": rn(400)}), g, 0.02) for g in gaps]
    head = [(iso20("SessionSetupReq", {"EVCCID": "01"}, Z20),
             iso20("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}),
             0.05, 0.02)]
    tail = [(iso20("SessionStopReq", {"ChargingSession": "Terminate"}),
             iso20("SessionStopRes", {"ResponseCode": "OK"}), 0.05, 0.02)]
    return analyze_events(script(head + loop + tail, namespace=NS_ISO20_DC))


def test_tim002_iso20_charge_loop_cadence():
    a = iso20_charge_loop([0.1] * 10 + [0.3, 0.1, 0.3])
    (f,) = tim(a, "TIM002")
    assert f.severity == "warning" and f.limit == 0.25 and f.evidence["late"] == 2
    b = iso20_charge_loop([0.1] * 10 + [0.6])
    (g,) = tim(b, "TIM002")
    assert g.severity == "error" and g.limit == 0.5
    assert not tim(iso20_charge_loop([0.1] * 20), "TIM002")


# ------------------------------------------------------------------ TIM003 setup
def sdp_and_setup(sdp_answer_s, then_s=1.0, slac_before_s=None, proto="iso2"):
    evs = []
    t = 0.0
    if slac_before_s is not None:
        evs.append(ev(1, t, "slac", "CM_SLAC_MATCH.CNF", EVSE, {"RunID": "aa", "PEV_MAC": "02:00:00:00:00:01"},
                      src="02:00:00:00:00:02", dst="02:00:00:00:00:01"))
        t += slac_before_s
    evs.append(ev(2, t, "sdp", "SDP request", EV, {"Security": "NoTLS", "TransportProtocol": "TCP"}))
    evs.append(ev(3, t + sdp_answer_s, "sdp", "SDP response", EVSE, {"SECCPort": 60000}))
    mk, ns = (iso2, NS_ISO2) if proto == "iso2" else (din, NS_DIN)
    evs += script(setup(mk) + [exch("ServiceDiscovery", mk=mk)] + stop(mk), t0=t + sdp_answer_s + then_s,
                  frame0=10, namespace=ns)
    return analyze_events(evs)


def test_tim003_setup_longer_than_the_ev_timeout_names_the_slow_side():
    a = sdp_and_setup(19.5, then_s=1.0)
    (f,) = tim(a, "TIM003")
    assert f.severity == "error" and f.culprit == "SECC" and f.limit == 20.0
    assert 2 in f.frames and "SDP request → SDP response" in f.synopsis
    assert f.evidence["lower_bound"] is True


def test_tim003_between_the_secc_performance_time_and_the_ev_timeout():
    a = sdp_and_setup(0.1, then_s=18.5)
    (f,) = tim(a, "TIM003")
    assert f.severity == "warning" and f.limit == 18.0 and f.culprit == "EVCC"


def test_tim003_not_from_the_slac_match_and_not_for_quick_setups():
    assert not tim(sdp_and_setup(0.1, then_s=2.0, slac_before_s=19.0), "TIM003")
    assert not tim(sdp_and_setup(5.0, then_s=5.0), "TIM003")


# ------------------------------------------------------------------ TIM004 CableCheck
def test_tim004_cablecheck_longer_than_the_ev_timeout():
    a = run_iso2(cablecheck(41, gap=1.0, mk=iso2) + stop(iso2))
    (f,) = tim(a, "TIM004")
    assert f.severity == "error" and f.limit == 40.0 and f.culprit == "SECC"
    assert "42 cycles" in f.synopsis and f.evidence["finished"]


def test_tim004_secc_performance_time_and_din_editions_are_warnings():
    a = run_iso2(cablecheck(38, gap=1.0, mk=iso2) + stop(iso2))
    (f,) = tim(a, "TIM004")
    assert f.severity == "warning" and f.limit == 38.0
    b = run_din(cablecheck(39, gap=1.0) + stop())          # 39.2 s: over 38 (2024), not 40 (2014)
    assert [(f.severity, f.limit) for f in tim(b, "TIM004")] == [("warning", 38.0)]
    c = run_din(cablecheck(41, gap=1.0) + stop())          # over both editions' value
    assert [f.severity for f in tim(c, "TIM004")] == ["error"]


def test_tim004_not_for_normal_loops_or_a_capture_that_ends():
    assert not tim(run_iso2(cablecheck(30, gap=1.0, mk=iso2) + stop(iso2)), "TIM004")
    assert not tim(run_iso2(cablecheck(35, gap=1.0, mk=iso2, finished=False)), "TIM004")


# ------------------------------------------------------------------ TIM005 PreCharge
def test_tim005_secc_performance_time_iso2_only():
    volts = [50 * i for i in range(1, 8)] + [360, 370, 375, 378, 385]   # reached at 5.7 s
    a = run_iso2(precharge(volts, mk=iso2) + [power_delivery(True, iso2, iso=True)] + stop(iso2))
    fs = tim(a, "TIM005")
    assert [(f.severity, f.culprit, f.limit) for f in fs] == [("warning", "SECC", 5.0)]
    assert not rules_found(a, "PRE001")
    b = run_din(precharge(volts) + [power_delivery(True)] + stop())
    assert not tim(b, "TIM005")          # no DIN performance time known


def test_tim005_ev_keeps_precharge_past_its_timeout_is_info():
    volts = [380, 395] + [400] * 16                             # reached at once, 9 s of loop
    a = run_din(precharge(volts) + [power_delivery(True)] + stop())
    (f,) = tim(a, "TIM005")
    assert f.severity == "info" and f.culprit == "EVCC" and f.limit == 7.0
    assert "PowerDeliveryReq" in f.synopsis and "10 s" in f.synopsis


def test_tim005_never_duplicates_pre001():
    a = run_iso2(precharge([10.0 * i for i in range(16)], mk=iso2) + stop(iso2))  # never reached
    assert rules_found(a, "PRE001")
    assert all(f.severity == "info" and f.culprit == "EVCC" for f in tim(a, "TIM005"))
    b = run_iso2(precharge([200, 300, 395, 400, 400], mk=iso2) + [power_delivery(True, iso2, iso=True)]
                 + stop(iso2))
    assert not tim(b, "TIM005")


# ------------------------------------------------------------------ TIM006 Ongoing
def test_tim006_ongoing_past_the_secc_budget_and_the_ev_timeout():
    a = run_iso2(ongoing("Authorization", 58, mk=iso2) + stop(iso2))
    (f,) = tim(a, "TIM006")
    assert f.severity == "error" and f.limit == 55.0 and "Authorization" in f.synopsis
    b = run_iso2(ongoing("ChargeParameterDiscovery", 62, mk=iso2) + stop(iso2))
    (g,) = tim(b, "TIM006")
    assert g.limit == 60.0 and "should have given up" in g.synopsis
    c = run_din(ongoing("ContractAuthentication", 57) + stop())
    assert [f.severity for f in tim(c, "TIM006")] == ["warning"]      # DIN's 55 s is assumed


def test_tim006_not_for_short_loops_or_the_capture_end():
    assert not tim(run_iso2(ongoing("Authorization", 30, mk=iso2) + stop(iso2)), "TIM006")
    assert not tim(run_iso2(ongoing("Authorization", 40, mk=iso2, finished=False)), "TIM006")
    # still Ongoing when the capture ends, but past the SECC's 55 s: that timer did expire
    assert [f.limit for f in tim(run_iso2(ongoing("Authorization", 58, mk=iso2, finished=False)),
                                 "TIM006")] == [55.0]


def test_tim006_secc_reset_before_its_budget_is_info():
    evs = script(setup(din) + ongoing("ContractAuthentication", 28, finished=False), namespace=NS_DIN)
    evs += script([(din("ContractAuthenticationReq", {}), None, 0.8, 0)], handshake=False,
                  t0=evs[-1].time - 1.7e9, frame0=evs[-1].frame + 1)[2:]
    evs.append(ev(evs[-1].frame + 1, evs[-1].time - 1.7e9 + 0.15, "tcp", "RST", EVSE))
    a = analyze_events(evs, [connection(0, rst=(None, evs[-1].frame))])
    (f,) = tim(a, "TIM006")
    assert f.severity == "info" and f.culprit == "SECC" and evs[-1].frame in f.frames
    assert "no ongoing timeout" in f.synopsis


# ------------------------------------------------------------------ TIM007 WeldingDetection
def welding(volts, gap):
    return [exch("WeldingDetection", {"DC_EVStatus": EV_STATUS},
                 {"DC_EVSEStatus": OK_STATUS, "EVSEPresentVoltage": pv(v, "V")}, gap, 0.02, iso2)
            for v in volts]


def test_tim007_welding_loop_too_long_blames_the_side_that_holds_it():
    a = run_iso2([power_delivery(False, iso2, iso=True)] + welding([400] * 14, 5.0) + stop(iso2))
    (f,) = tim(a, "TIM007")
    assert f.severity == "warning" and f.culprit == "SECC" and "not discharged" in f.synopsis
    b = run_iso2([power_delivery(False, iso2, iso=True)] + welding([400] + [10] * 13, 5.0) + stop(iso2))
    assert [f.culprit for f in tim(b, "TIM007")] == ["EVCC"]


def test_tim007_not_for_short_welding_detection():
    assert not tim(run_iso2([power_delivery(False, iso2, iso=True)] + welding([400, 200, 50, 10], 0.3)
                            + stop(iso2)), "TIM007")


# ------------------------------------------------------------------ the real captures
_cache: dict = {}


def analysis(name: str):
    if name not in _cache:
        path = REPO / "samples" / name if name.endswith("din_dc_session.pcapng") else CORPUS / name
        _cache[name] = analyze_capture(path)
    return _cache[name]


CLEAN = ["DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng", "ISO-2_AC_DS5366.pcapng",
         "ISO-2_DC_Pause_DS5366.pcapng", "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng",
         "ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_SalesTariffSchedule_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_BatteryDataExchange_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng", "ISO-20_BPT_AC_DS5366_Josev.pcapng"]


@pytest.mark.parametrize("name", CLEAN, ids=lambda n: n[:32])
def test_clean_references_get_no_timing_finding(corpus, name):
    assert [(f.rule, f.synopsis) for f in tim(analysis(name))] == []


def test_iso20_mtls_reference_answers_the_handshake_late(corpus):
    """ISO-20_mTLS_DC: the EV's supportedAppProtocolReq (TLS record in frame 72, 34.33 s)
    is answered in frame 80 (37.88 s), 3.5 s later — after the EV's 2 s message timeout; the
    test system discloses its TLS secrets (frame 75) in between. A true finding on an
    otherwise clean reference: the dSPACE EV simply waited."""
    (f,) = tim(analysis("ISO-20_mTLS_DC_DS5366_Josev.pcapng"))
    assert f.rule == "TIM001" and f.frames == [72, 80] and f.culprit == "SECC"


def test_project_sample_gets_no_timing_finding():
    a = analysis("din_dc_session.pcapng")
    assert tim(a) == []


def test_compleo_authorization_wait_ended_by_the_evse_before_its_budget(corpus):
    a = analysis("2022-12-13_compleo_powerdelivery230_no_load.pcapng")
    fs = [f for f in tim(a, "TIM006") if f.session == "S1"]
    (f,) = fs
    assert f.severity == "info" and f.culprit == "SECC"
    assert {262, 264, 526, 534} <= set(f.frames) and 28 < f.measured < 30
    assert "28 times" in f.synopsis and "RST #534" in f.synopsis
    assert not [g for g in tim(a) if g.severity == "error"]


def test_model_y_precharge_timer_view_without_duplicating_pre001(corpus):
    a = analysis("2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng")
    (pre,) = rules_found(a, "PRE001")
    (f,) = tim(a)
    assert f.rule == "TIM005" and f.severity == "info" and f.culprit == "EVCC"
    assert {187, 579, 583} <= set(f.frames) and "119 cycles" in f.synopsis
    assert a.summaries["S1"]["root_cause"] == pre.id


@pytest.mark.parametrize("name", ["2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng",
                                  "2026-02-03_pyPLC_FoccciCape_with_Ioniq_runs_10_minutes.pcap",
                                  "2023-04-16_at_home_Ioniq_in_currentDemandLoop.pcapng",
                                  "2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng"])
def test_long_current_demand_loops_are_clean(corpus, name):
    # DIN CurrentDemand: latency ≤ 0.22 s against the 0.25 s EV timeout, gaps ≤ 0.37 s
    assert tim(analysis(name)) == []


def test_timing_rules_share_one_view_per_session(corpus, monkeypatch):
    """The timing rules read one TimingView per session, built once for all of them (a view
    rebuilt per rule made them quadratic on long captures); their speed is measured by
    benchmarks/bench.py's per-stage profile, not here."""
    from ccs_analyzer.analyzer.views import timing as timing_views

    a = analysis("2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng")
    rules = [c() for c in all_rules() if c.code.startswith("TIM")]
    built: list[str] = []
    real = timing_views._build

    def counting(session, ctx):
        built.append(session.id)
        return real(session, ctx)

    monkeypatch.setattr(timing_views, "_build", counting)
    a.cache.clear()
    for r in rules:
        for s in a.sessions:
            if r.applies(a.summaries[s.id].get("protocol")):
                list(r.check(s, a))
    assert len(rules) > 3 and built and len(built) == len(set(built))


def test_profile_overrides_one_message_of_one_protocol(tmp_path):
    from ccs_analyzer.analyzer.profile import load_profile
    p = tmp_path / "p.toml"
    p.write_text('[rules.TIM001]\nevcc_msg_timeout_s = { "DIN 70121" = { CurrentDemand = 0.5 } }\n')
    prof = load_profile(p, all_rules())
    evs = script(setup(din) + current_demand([0.1, 0.3]) + [exch("ServiceDiscovery", lat=2.2)] + stop(),
                 namespace=NS_DIN)
    fs = tim(analyze_events(evs, profile=prof), "TIM001")
    assert [f.evidence["message"] for f in fs] == ["ServiceDiscovery"]    # 2 s default kept


def test_tim001_lost_capture_data_while_waiting_lowers_the_severity():
    evs = script(setup(iso2) + [exch("ServiceDiscovery", lat=2.5, mk=iso2)] + stop(iso2),
                 namespace=NS_ISO2)
    req = next(e for e in evs if e.name == "ServiceDiscoveryReq")
    evs.append(ev(req.frame, req.time - 1.7e9 + 1.0, "tcp", "TCP bytes missing from capture", EVSE))
    (f,) = tim(analyze_events(evs), "TIM001")
    assert f.severity == "warning" and f.evidence["capture_lost_data"] == 1
    assert "timing may be off" in f.synopsis


def test_tim002_not_for_a_one_sided_capture():
    res = iso2("CableCheckRes", {"ResponseCode": "OK", "EVSEProcessing": "Ongoing",
                                 "DC_EVSEStatus": OK_STATUS})
    evs = [ev(1, 0.0, "v2gtp", "CableCheckRes", EVSE, res, namespace=NS_ISO2),
           ev(2, 70.0, "tcp", "FIN", EVSE)]
    assert not tim(analyze_events(evs, [connection(0, syn=None, synack=None, fin=(None, 2),
                                                   namespace=NS_ISO2)]))
