"""Charging-loop rules (CHL…) on event-level sessions, and on the corpus.

The message builders at the top (DIN 70121 / ISO 15118-2 / ISO 15118-20 DC sessions) are
shared by the precharge, cable-check and limits tests.
"""
from __future__ import annotations

import pytest

from tests.rules.util import (NS_ISO2, NS_ISO20_DC, analyze_events, din, iso2, iso20, pv,
                              rn, rules_found, script)

OK_STATUS = {"EVSEIsolationStatus": "Valid", "EVSEStatusCode": "EVSE_Ready",
             "NotificationMaxDelay": 0, "EVSENotification": "None"}
EV_STATUS = {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 50}


def status(**kw) -> dict:
    """DC_EVSEStatus with some fields replaced."""
    return {**OK_STATUS, **kw}


def ev_status(**kw) -> dict:
    return {**EV_STATUS, **kw}


# ------------------------------------------------------------------ DIN / ISO-2 builders
def setup(msg=din):
    return [(msg("SessionSetupReq", {"EVCCID": "01"}, "00"),
             msg("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}),
             0.05, 0.02)]


def cpd(msg=din, *, evse=None, ev=None, rc="OK"):
    """ChargeParameterDiscovery with DC limits (EVSE 500 A / 500 V / 150 kW, EV 200 A / 460 V)."""
    evp = {"DC_EVStatus": EV_STATUS, "EVMaximumCurrentLimit": pv(200, "A"),
           "EVMaximumVoltageLimit": pv(460, "V"), **(ev or {})}
    evsep = {"DC_EVSEStatus": status(EVSEIsolationStatus="Invalid"),
             "EVSEMaximumCurrentLimit": pv(500, "A"), "EVSEMaximumPowerLimit": pv(150000, "W", 1),
             "EVSEMaximumVoltageLimit": pv(500, "V"), "EVSEMinimumCurrentLimit": pv(0, "A"),
             "EVSEMinimumVoltageLimit": pv(50, "V"), **(evse or {})}
    return [(msg("ChargeParameterDiscoveryReq", {"EVRequestedEnergyTransferType": "DC_extended",
                                                 "DC_EVChargeParameter": evp}),
             msg("ChargeParameterDiscoveryRes", {"ResponseCode": rc, "EVSEProcessing": "Finished",
                                                 "DC_EVSEChargeParameter": evsep}), 0.05, 0.02)]


def cablecheck(n=3, *, final=None, msg=din, gap=0.2):
    """n CableCheck exchanges, Ongoing then (last) Finished with ``final`` DC_EVSEStatus."""
    out = []
    for i in range(n):
        last = i == n - 1
        st = (final if final is not None else OK_STATUS) if last else \
            status(EVSEStatusCode="EVSE_IsolationMonitoringActive", EVSEIsolationStatus="Invalid")
        out.append((msg("CableCheckReq", {"DC_EVStatus": EV_STATUS}),
                    msg("CableCheckRes", {"ResponseCode": "OK", "DC_EVSEStatus": st,
                                          "EVSEProcessing": "Finished" if last and final is not False
                                          else "Ongoing"}), gap, 0.02))
    return out


def precharge(volts, target=400.0, *, msg=din, st=None, current=1.0, gap=0.3, targets=None,
              res_extra=None):
    out = []
    for i, v in enumerate(volts):
        t = targets[i] if targets else target
        out.append((msg("PreChargeReq", {"DC_EVStatus": EV_STATUS, "EVTargetVoltage": pv(t, "V", -1),
                                         "EVTargetCurrent": pv(current, "A", -1)}),
                    msg("PreChargeRes", {"ResponseCode": "OK",
                                         "DC_EVSEStatus": (st[i] if isinstance(st, list) else st) or OK_STATUS,
                                         "EVSEPresentVoltage": pv(v, "V", -1), **(res_extra or {})}),
                    gap, 0.02))
    return out


def power_delivery(start=True, *, rc="OK", msg=din, complete=False, answered=True):
    if msg is din:
        req = {"ReadyToChargeState": start,
               "DC_EVPowerDeliveryParameter": {"DC_EVStatus": EV_STATUS, "BulkChargingComplete": False,
                                               "ChargingComplete": complete}}
    else:
        req = {"ChargeProgress": "Start" if start else "Stop", "SAScheduleTupleID": 1,
               "DC_EVPowerDeliveryParameter": {"DC_EVStatus": EV_STATUS, "ChargingComplete": complete}}
    res = msg("PowerDeliveryRes", {"ResponseCode": rc, "DC_EVSEStatus": OK_STATUS}) if answered else None
    return [(msg("PowerDeliveryReq", req), res, 0.05, 0.05)]


def cd(ti, pi, *, tv=400.0, pv_=380.0, msg=din, req=None, res=None, st=None, gap=0.2,
       answered=True):
    """One CurrentDemand exchange: EV target ti A / tv V, EVSE present pi A / pv_ V."""
    q = {"DC_EVStatus": EV_STATUS, "EVTargetCurrent": pv(ti, "A", -1),
         "EVMaximumVoltageLimit": pv(460, "V"), "EVMaximumCurrentLimit": pv(200, "A"),
         "BulkChargingComplete": False, "ChargingComplete": False,
         "EVTargetVoltage": pv(tv, "V", -1), **(req or {})}
    r = {"ResponseCode": "OK", "DC_EVSEStatus": st or OK_STATUS,
         "EVSEPresentVoltage": pv(pv_, "V", -1), "EVSEPresentCurrent": pv(pi, "A", -1),
         "EVSECurrentLimitAchieved": False, "EVSEVoltageLimitAchieved": False,
         "EVSEPowerLimitAchieved": False, **(res or {})}
    return (msg("CurrentDemandReq", q), msg("CurrentDemandRes", r) if answered else None, gap, 0.02)


def loop(n, ti=100.0, pi=100.0, **kw):
    return [cd(ti, pi, **kw) for _ in range(n)]


def stop(msg=din):
    return [(msg("SessionStopReq", {}), msg("SessionStopRes", {"ResponseCode": "OK"}), 0.05, 0.02)]


def welding(msg=din):
    return [(msg("WeldingDetectionReq", {"DC_EVStatus": EV_STATUS}),
             msg("WeldingDetectionRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_STATUS,
                                         "EVSEPresentVoltage": pv(50, "V")}), 0.05, 0.02)]


def clean_din(loop_part=None, **kw):
    """A complete, clean DIN DC session (optionally with another charge loop)."""
    return (setup() + cpd() + cablecheck() + precharge([100, 250, 385, 398]) + power_delivery()
            + (loop_part if loop_part is not None else loop(10)) + power_delivery(False) + welding()
            + stop())


def analyze(exchanges, namespace=None, **kw):
    if namespace is None:
        return analyze_events(script(exchanges), **kw)
    return analyze_events(script(exchanges, namespace=namespace), **kw)


def codes(a, prefix) -> list[str]:
    return sorted(f.rule for f in a.findings if f.rule.startswith(prefix))


# ------------------------------------------------------------------ -20 builders
def iso20_cl(ti=None, pi=0.0, pv_=400.0, *, soc=50, complete=False, note=None):
    """One DC_ChargeLoop exchange (scheduled mode with ti, dynamic without)."""
    mode = ({"Scheduled_DC_CLReqControlMode": {"EVTargetCurrent": rn(ti), "EVTargetVoltage": rn(450)}}
            if ti is not None else
            {"Dynamic_DC_CLReqControlMode": {"EVMaximumChargePower": rn(50000), "EVMinimumChargePower": rn(0),
                                             "EVMaximumChargeCurrent": rn(100), "EVMaximumVoltage": rn(450),
                                             "EVMinimumVoltage": rn(200)}})
    res = {"ResponseCode": "OK", "EVSEPresentCurrent": rn(pi), "EVSEPresentVoltage": rn(pv_),
           "EVSEPowerLimitAchieved": False, "EVSECurrentLimitAchieved": False,
           "EVSEVoltageLimitAchieved": False,
           "Scheduled_DC_CLResControlMode": {"EVSEMaximumChargePower": rn(150000),
                                             "EVSEMaximumChargeCurrent": rn(300),
                                             "EVSEMaximumVoltage": rn(1000)}}
    if note:
        res["EVSEStatus"] = {"NotificationMaxDelay": 0, "EVSENotification": note}
    return (iso20("DC_ChargeLoopReq", {"DisplayParameters": {"PresentSOC": soc, "ChargingComplete": complete},
                                       "MeterInfoRequested": False, "EVPresentVoltage": rn(pv_), **mode}),
            iso20("DC_ChargeLoopRes", res), 0.2, 0.02)


def iso20_pd(start=True, processing="Finished", rc="OK"):
    return [(iso20("PowerDeliveryReq", {"EVProcessing": processing,
                                        "ChargeProgress": "Start" if start else "Stop"}),
             iso20("PowerDeliveryRes", {"ResponseCode": rc}), 0.05, 0.02)]


def iso20_precharge(volts, target=450.0, last_finished=True):
    out = []
    for i, v in enumerate(volts):
        fin = last_finished and i == len(volts) - 1
        out.append((iso20("DC_PreChargeReq", {"EVProcessing": "Finished" if fin else "Ongoing",
                                              "EVPresentVoltage": rn(target), "EVTargetVoltage": rn(target)}),
                    iso20("DC_PreChargeRes", {"ResponseCode": "OK", "EVSEPresentVoltage": rn(v)}), 0.2, 0.02))
    return out


def iso20_setup():
    return [(iso20("SessionSetupReq", {"EVCCID": "01"}, sid="00" * 8),
             iso20("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "ZZ"}),
             0.05, 0.02)]


# ============================================================== CHL001
def test_clean_din_session_has_no_finding_of_mine():
    a = analyze(clean_din())
    mine = [f for f in a.findings if f.rule[:3] in ("CHL", "LIM", "PRE", "CBL")]
    assert mine == [], [(f.rule, f.synopsis) for f in mine]


def test_loop_after_failed_power_delivery():
    a = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery(rc="FAILED")
                + loop(3) + stop())
    (f,) = rules_found(a, "CHL001")
    assert f.culprit == "EVCC" and "FAILED" in f.synopsis
    assert len(f.frames) == 2


def test_loop_without_power_delivery_and_after_unanswered_one():
    a = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + loop(3) + stop())
    (f,) = rules_found(a, "CHL001")
    assert "PreChargeRes" in f.synopsis and "without any PowerDelivery" in f.synopsis
    b = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery(answered=False)
                + loop(3) + stop())
    (g,) = rules_found(b, "CHL001")
    assert "got no response" in g.synopsis


def test_loop_after_stop_request():
    a = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery(False)
                + loop(3) + stop())
    (f,) = rules_found(a, "CHL001")
    assert "ReadyToChargeState=false" in f.synopsis


def test_iso20_loop_after_power_delivery_ongoing_and_clean_iso20():
    base = iso20_setup() + iso20_precharge([100, 449])
    bad = analyze(base + iso20_pd(processing="Ongoing") + [iso20_cl(50, 50)] * 3 + iso20_pd(False),
                  namespace=NS_ISO20_DC)
    (f,) = rules_found(bad, "CHL001")
    assert "EVProcessing=Ongoing" in f.synopsis
    good = analyze(base + iso20_pd(processing="Ongoing") + iso20_pd() + [iso20_cl(50, 50)] * 3
                   + iso20_pd(False), namespace=NS_ISO20_DC)
    assert codes(good, "CHL") == []


# ============================================================== CHL002
def test_current_requested_after_evse_shutdown():
    shut = status(EVSEStatusCode="EVSE_Shutdown", EVSENotification="StopCharging", NotificationMaxDelay=10)
    part = loop(5) + [cd(10, 0.3, st=shut) for _ in range(30)]
    a = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery() + part
                + power_delivery(False) + stop())
    (f,) = rules_found(a, "CHL002")
    assert f.culprit == "EVCC" and "EVSE_Shutdown / StopCharging" in f.synopsis
    assert "29 more CurrentDemandReq" in f.synopsis and f.measured > 2.0
    assert f.evidence["EVSEPresentCurrent_max_A"] == pytest.approx(0.3)


def test_ev_that_ramps_down_after_shutdown_is_fine():
    shut = status(EVSEStatusCode="EVSE_Shutdown")
    part = loop(5) + [cd(100, 100, st=shut)] + [cd(0, 0, st=shut) for _ in range(20)]
    a = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery() + part
                + power_delivery(False) + stop())
    assert not rules_found(a, "CHL002")
    # a notification alone leaves the EV its NotificationMaxDelay
    note = status(EVSENotification="StopCharging", NotificationMaxDelay=10)
    part = loop(5) + [cd(100, 100, st=note) for _ in range(20)]         # 4 s < 10 s
    b = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery() + part
                + power_delivery(False) + stop())
    assert not rules_found(b, "CHL002")


# ============================================================== CHL003 / CHL004
def test_current_after_charging_complete():
    done = {"ChargingComplete": True, "BulkChargingComplete": True}
    a = analyze(clean_din(loop(3) + [cd(100, 100, req=done) for _ in range(40)]))
    (f,) = rules_found(a, "CHL003")
    assert "ChargingComplete" in f.synopsis and f.measured > 5.0
    short = analyze(clean_din(loop(3) + [cd(100, 100, req=done) for _ in range(5)]))
    assert not rules_found(short, "CHL003")
    ramp = analyze(clean_din(loop(3) + [cd(0.5, 0.5, req=done) for _ in range(40)]))
    assert not rules_found(ramp, "CHL003")


def test_iso20_charging_complete_in_display_parameters():
    base = iso20_setup() + iso20_precharge([100, 449]) + iso20_pd()
    a = analyze(base + [iso20_cl(50, 50, complete=True)] * 40 + iso20_pd(False), namespace=NS_ISO20_DC)
    assert rules_found(a, "CHL003")


def test_charging_complete_inconsistent():
    a = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery(complete=True)
                + loop(3) + power_delivery(False) + stop())
    (f,) = rules_found(a, "CHL004")
    assert f.severity == "info" and "ChargingComplete=true" in f.synopsis
    back = analyze(clean_din(loop(2) + [cd(10, 10, req={"ChargingComplete": True})] + loop(2)))
    (g,) = rules_found(back, "CHL004")
    assert "went back from true" in g.synopsis and len(g.frames) == 2
    assert not rules_found(analyze(clean_din(loop(2) + [cd(1, 1, req={"ChargingComplete": True})] * 2)),
                           "CHL004")


# ============================================================== CHL005
def _ac_session(after_receipt, rc="OK"):
    cs_req = iso2("ChargingStatusReq", {})
    cs = iso2("ChargingStatusRes", {"ResponseCode": "OK", "EVSEID": "ZZ", "SAScheduleTupleID": 1,
                                    "EVSEMaxCurrent": pv(16, "A"),
                                    "AC_EVSEStatus": {"NotificationMaxDelay": 0, "EVSENotification": "None",
                                                      "RCD": False}})
    cs_rr = iso2("ChargingStatusRes", {**cs["V2G_Message"]["Body"]["ChargingStatusRes"], "ReceiptRequired": True})
    mr = (iso2("MeteringReceiptReq", {"Id": "id1", "SessionID": "5a3c9e01b2d47f68", "SAScheduleTupleID": 1,
                                      "MeterInfo": {"MeterID": "m", "MeterReading": 12}}),
          iso2("MeteringReceiptRes", {"ResponseCode": rc, "AC_EVSEStatus": {
              "NotificationMaxDelay": 0, "EVSENotification": "None", "RCD": False}}), 0.05, 0.02)
    pd = (iso2("PowerDeliveryReq", {"ChargeProgress": "Start", "SAScheduleTupleID": 1}),
          iso2("PowerDeliveryRes", {"ResponseCode": "OK", "AC_EVSEStatus": {
              "NotificationMaxDelay": 0, "EVSENotification": "None", "RCD": False}}), 0.05, 0.02)
    pds = (iso2("PowerDeliveryReq", {"ChargeProgress": "Stop", "SAScheduleTupleID": 1}), pd[1], 0.05, 0.02)
    ex = [pd] + [(cs_req, cs, 0.4, 0.02)] * 3 + [(cs_req, cs_rr, 0.4, 0.02), mr] + after_receipt + [pds] + stop(iso2)
    return analyze(setup(iso2) + ex, namespace=NS_ISO2)


def test_loop_resumes_after_receipt():
    cs_req = iso2("ChargingStatusReq", {})
    cs = iso2("ChargingStatusRes", {"ResponseCode": "OK", "EVSEID": "ZZ", "SAScheduleTupleID": 1,
                                    "AC_EVSEStatus": {"NotificationMaxDelay": 0, "EVSENotification": "None",
                                                      "RCD": False}})
    good = _ac_session([(cs_req, cs, 0.4, 0.02)] * 2)
    assert not rules_found(good, "CHL005")
    bad = _ac_session([(cs_req, cs, 0.4, 0.02)] * 3, rc="FAILED_MeteringSignatureNotValid")
    (f,) = rules_found(bad, "CHL005")
    assert "FAILED_MeteringSignatureNotValid" in f.synopsis and "3 more ChargingStatusReq" in f.synopsis
    odd = _ac_session([(iso2("ServiceDiscoveryReq", {}), iso2("ServiceDiscoveryRes", {"ResponseCode": "OK"}),
                        0.1, 0.02)])
    (g,) = rules_found(odd, "CHL005")
    assert "ServiceDiscoveryReq" in g.synopsis


# ============================================================== CHL006
def test_loop_ended_by_tcp_close_and_by_session_stop():
    from tests.rules.util import EVSE, ev
    evs = script(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery() + loop(5))
    last = evs[-1]
    evs.append(ev(last.frame + 1, last.time - 1_700_000_000 + 0.1, "tcp", "FIN", EVSE))
    a = analyze_events(evs)
    (f,) = rules_found(a, "CHL006")
    assert f.culprit == "SECC" and "closed the TCP connection" in f.synopsis
    assert last.frame + 1 in f.frames
    b = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery() + loop(5) + stop())
    (g,) = rules_found(b, "CHL006")
    assert g.culprit == "EVCC" and "SessionStopReq" in g.synopsis


def test_capture_ending_in_the_loop_blames_nobody():
    a = analyze(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery() + loop(5))
    assert not rules_found(a, "CHL006")
    assert not rules_found(analyze(clean_din()), "CHL006")


def test_unanswered_loop_request_then_reset():
    from tests.rules.util import EVSE, ev
    evs = script(setup() + cpd() + cablecheck() + precharge([100, 398]) + power_delivery() + loop(5)
                 + [cd(100, 100, answered=False)])
    last = evs[-1]
    evs.append(ev(last.frame + 1, last.time - 1_700_000_000 + 2.0, "tcp", "RST", EVSE))
    (f,) = rules_found(analyze_events(evs), "CHL006")
    assert f.culprit == "SECC" and "got no response" in f.synopsis


# ============================================================== corpus
_cache: dict = {}


def corpus_analysis(name):
    if name not in _cache:
        from ccs_analyzer.analyzer.analysis import analyze_capture
        from tests.conftest import CORPUS
        _cache[name] = analyze_capture(CORPUS / name)
    return _cache[name]


def test_corpus_westpark_ev_ignores_shutdown(corpus):
    a = corpus_analysis("2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    (f,) = rules_found(a, "CHL002")
    assert f.culprit == "EVCC" and {11981, 12698, 12700} <= set(f.frames)
    assert "99 more CurrentDemandReq" in f.synopsis
    (g,) = rules_found(a, "CHL006")
    assert g.culprit == "SECC" and 12700 in g.frames


def test_corpus_ioniq_loop_closed_by_the_evse(corpus):
    a = corpus_analysis("2023-04-16_at_home_Ioniq_in_currentDemandLoop.pcapng")
    (f,) = rules_found(a, "CHL006")
    assert f.culprit == "SECC" and {6343, 6345} <= set(f.frames) and "699 cycles" in f.synopsis


def test_corpus_600s_loops_end_with_power_delivery(corpus):
    for name in ("2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng",
                 "2026-02-03_pyPLC_FoccciCape_with_Ioniq_runs_10_minutes.pcap"):
        a = corpus_analysis(name)
        assert not rules_found(a, "CHL006"), name      # PowerDelivery stop; 2026 S2: capture ends
        assert not rules_found(a, "CHL001") and not rules_found(a, "CHL002")


@pytest.mark.parametrize("name", ["DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng",
                                  "ISO-2_AC_DS5366.pcapng", "ISO-2_DC_Pause_DS5366.pcapng",
                                  "ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng",
                                  "ISO-20_mTLS_DC_DS5366_Josev.pcapng", "ISO-20_BPT_AC_DS5366_Josev.pcapng",
                                  "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng"])
def test_corpus_clean_references_loop_health(corpus, name):
    a = corpus_analysis(name)
    mine = [f for f in a.findings if f.rule.startswith("CHL")]
    assert all(f.severity == "info" for f in mine), [(f.rule, f.synopsis) for f in mine]
    assert {f.rule for f in mine} <= {"CHL004"}


def test_project_sample_gets_no_finding_of_these_modules():
    from pathlib import Path

    from ccs_analyzer.analyzer.analysis import analyze_capture
    sample = Path(__file__).resolve().parents[2] / "samples" / "din_dc_session.pcapng"
    a = analyze_capture(sample)
    assert [f.rule for f in a.findings if f.rule[:3] in ("PRE", "CBL", "LIM", "CHL")] == []


# ============================================================== CHL007
def no_current_session(part, pre_target=400.0):
    return analyze(setup() + cpd() + cablecheck() + precharge([100, 250, pre_target - 2], pre_target)
                   + power_delivery() + part + power_delivery(False) + welding() + stop())


def test_evse_delivers_no_current():
    part = [cd(100, 0, tv=450, pv_=380) for _ in range(60)] + loop(5)      # ~13 s at 0 A
    a = no_current_session(part)
    (f,) = rules_found(a, "CHL007")
    assert f.severity == "error" and f.culprit == "SECC" and f.category == "charging-loop"
    assert f.evidence["cycles"] == 60 and f.count == 60 and f.evidence["duration_s"] > 10
    assert f.measured == 0 and f.limit == pytest.approx(100)
    assert "then current flowed (100.0 A" in f.synopsis
    first, last = f.evidence["first_frame"], f.evidence["last_frame"]
    assert min(f.frames) == first and last in f.frames and last - first > 110
    assert f.message == "CurrentDemandReq" and f.phase == "charging"
    assert not [g for g in a.findings if g.rule in ("LIM004", "LIM005")]


def test_whatever_the_voltage_unless_the_battery_holds_it():
    # at the EV's target voltage but 50 V above the battery it declared in PreCharge
    a = no_current_session([cd(100, 0.2, tv=450, pv_=450) for _ in range(60)], pre_target=400)
    assert rules_found(a, "CHL007") and not rules_found(a, "LIM005")
    # a lamp: the output holds the EV's target, which is its battery voltage: load-limited
    b = no_current_session([cd(10, 0.3, tv=230, pv_=230.5) for _ in range(60)], pre_target=230)
    assert not rules_found(b, "CHL007") and rules_found(b, "LIM005")


def test_a_normal_ramp_a_stop_status_or_a_small_request_is_not_no_current():
    ramp = [cd(100, 0) for _ in range(10)] + [cd(100, 10 * i) for i in range(1, 11)] + loop(40)
    assert not rules_found(no_current_session(ramp), "CHL007")                  # 2 s at 0 A
    nr = [cd(100, 0, st=status(EVSEStatusCode="EVSE_NotReady")) for _ in range(60)]
    assert not rules_found(no_current_session(nr), "CHL007")
    small = [cd(1.5, 0) for _ in range(60)]
    assert not rules_found(no_current_session(small), "CHL007")
    stopping = [cd(100, 0, req={"DC_EVStatus": ev_status(EVErrorCode="FAILED_ChargingCurrentdifferential")})
                for _ in range(60)]
    assert not rules_found(no_current_session(stopping), "CHL007")
    limited = [cd(100, 0, res={"EVSEMaximumCurrentLimit": pv(0, "A")}) for _ in range(60)]
    assert not rules_found(no_current_session(limited), "CHL007")


def test_iso20_scheduled_loop_without_current():
    a = analyze(iso20_setup() + iso20_precharge([100, 449]) + iso20_pd()
                + [iso20_cl(50, 0.0, pv_=400) for _ in range(60)] + iso20_pd(False),
                namespace=NS_ISO20_DC)
    (f,) = rules_found(a, "CHL007")
    assert "DC_ChargeLoopRes" in f.synopsis


# ============================================================== CHL007 on the corpus
TE = "testevents/"


@pytest.mark.parametrize("name,lo,hi", [
    ("logfiles__BMW__iX_fw_11_2022.64__iso_15118-2__2023-03-30T06-29-19.281Z_iso2__ethernet-traffic.dump", 436, 1387),
    ("logfiles__BMW__iX_fw_11_2022.64__din_spec_70121__2023-03-30T06-24-26.582Z_din_spec__ethernet-traffic.dump", 436, 1405),
    ("logfiles__Opel__Mokka-E__din_spec_70121__2023-04-14T14-33-09.944Z-1_config-dc-dinspec__ethernet-traffic.dump", 125, 473),
    ("logfiles__Seres__2024-01-10T13-18-27.364Z-1_din_spec__ethernet-traffic.dump", 134, 3681),
])
def test_corpus_evse_delivered_no_current(corpus, name, lo, hi):
    a = corpus_analysis(TE + name)
    (f,) = rules_found(a, "CHL007")
    assert f.culprit == "SECC" and min(f.frames) == lo and hi in f.frames and f.evidence["duration_s"] > 10
    assert not [g for g in a.findings if g.rule in ("LIM004", "LIM005")
                and set(range(lo, hi + 1)) & set(g.frames)]


def test_corpus_taycan_no_current_twice(corpus):
    a = corpus_analysis(TE + "logfiles__Porsche__Taycan_4S__din-spec-70121__2023-04-11T13-06-54.809Z-taycan-discharge-test__ethernet-traffic.dump")
    f, g = rules_found(a, "CHL007")
    assert min(f.frames) == 586 and 1068 in f.frames and "then current flowed" in f.synopsis
    assert min(g.frames) == 10175 and 10864 in g.frames


@pytest.mark.parametrize("name", ["2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng",   # a lamp
                                  "2023-04-16_at_home_Ioniq_in_currentDemandLoop.pcapng",        # 10 A
                                  "DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng",
                                  "ISO-2_DC_Pause_DS5366.pcapng", "ISO-20_mTLS_DC_DS5366_Josev.pcapng",
                                  "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng"])
def test_corpus_no_current_only_where_none_flowed(corpus, name):
    assert not rules_found(corpus_analysis(name), "CHL007")
