"""Response-code rules (RSP001-RSP009): FAILED and warning codes, EVSE status and
notifications, EV error codes — on event-level sessions and on the corpus."""
from __future__ import annotations

import pytest

from tests.rules.test_sequence import (EV, EVS, EVSE, MINE, OK, _index, cd, corpus_analysis, din_flow,
                                       iso2_flow, one, run, session_of_frame, status, x)
from tests.rules.util import NS_ISO2, pv, rules_found


def by_rule(a, code, session=None):
    return [f for f in a.findings if f.rule == code and (session is None or f.session == session)]


# --------------------------------------------------------------------------- RSP001
@pytest.mark.parametrize("code,culprit,word", [
    ("FAILED", "SECC", "generic failure"),
    ("FAILED_WrongChargeParameter", "EVCC", "inconsistent"),
    ("FAILED_ContactorError", "SECC", "contactor"),
])
def test_rsp001_failed_codes_name_meaning_and_side(code, culprit, word):
    ex = din_flow()[:5]
    ex[4] = x("ChargeParameterDiscovery", {"DC_EVChargeParameter": {"DC_EVStatus": EVS}},
              {"EVSEProcessing": "Finished", "DC_EVSEChargeParameter": {"DC_EVSEStatus": OK}}, rc=code)
    a = run(ex, end=[("FIN", EVSE)])
    f = one(a, "RSP001")
    assert f.culprit == culprit and f.severity == "error" and code in f.synopsis and word in f.synopsis
    assert len(f.frames) == 2                   # the request and the response
    assert a.summaries["S1"]["root_cause"] == f.id


def test_rsp001_not_for_ok_or_codes_with_their_own_rule():
    assert not rules_found(run(din_flow(), end=[("FIN", EV)]), "RSP001")
    ex = din_flow()[:2] + [x("PreCharge", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": OK}, rc="FAILED_SequenceError")]
    a = run(ex, end=[("FIN", EVSE)])
    assert not rules_found(a, "RSP001") and rules_found(a, "SEQ003")


# --------------------------------------------------------------------------- RSP002
def test_rsp002_certificate_expires_soon():
    ex = iso2_flow("DC", "Contract")
    i = _index(ex, "PaymentDetailsReq")
    ex[i] = x("PaymentDetails", {"eMAID": "DE8AA001234567890"}, {"GenChallenge": "00" * 16, "EVSETimeStamp": 0},
              rc="OK_CertificateExpiresSoon")
    f = one(run(ex, ns=NS_ISO2, end=[("FIN", EV)]), "RSP002")
    assert f.severity == "warning" and f.culprit == "EVCC" and "21 days" in f.synopsis
    assert not rules_found(run(iso2_flow("DC", "Contract"), ns=NS_ISO2, end=[("FIN", EV)]), "RSP002")


# --------------------------------------------------------------------------- RSP003
def _stop_flow(delay, n_after, react_after=None):
    """Charge loop; from the 3rd cycle the EVSE asks to stop (EVSE_Shutdown + StopCharging,
    NotificationMaxDelay ``delay``); the EV goes on for ``n_after`` cycles (0.25 s apart),
    then stops with PowerDelivery if ``react_after`` is set."""
    stopping = status(EVSEStatusCode="EVSE_Shutdown", EVSENotification="StopCharging", NotificationMaxDelay=delay)
    ex = din_flow(loop=2, stop=False)
    ex += [cd(stopping, gap=0.25) for _ in range(n_after)]
    if react_after:
        ex += [x("PowerDelivery", {"ReadyToChargeState": False}, {"DC_EVSEStatus": OK}, gap=0.25),
               x("WeldingDetection", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": OK}), x("SessionStop")]
    return ex


def test_rsp003_ev_ignores_stop_charging_beyond_notification_max_delay():
    a = run(_stop_flow(delay=1, n_after=12), end=[("RST", EVSE)])
    f = one(a, "RSP003")
    assert f.culprit == "EVCC" and f.severity == "error" and f.limit == 1
    assert "StopCharging" in f.synopsis and "EVSE_Shutdown" in f.synopsis and "RST" in f.synopsis
    assert a.summaries["S1"]["root_cause"] in {g.id for g in a.findings if g.culprit == "EVCC"}


def test_rsp003_not_when_the_ev_stops_in_time():
    a = run(_stop_flow(delay=2, n_after=3, react_after=True), end=[("FIN", EV)])
    assert not rules_found(a, "RSP003")
    assert a.summaries["S1"]["outcome"] == "stopped by EVSE"


def test_rsp003_late_reaction_is_still_a_finding():
    a = run(_stop_flow(delay=1, n_after=10, react_after=True), end=[("FIN", EV)])
    f = one(a, "RSP003")
    assert "stopped only with PowerDeliveryReq" in f.synopsis


def test_rsp003_not_when_the_evse_closes_before_the_deadline():
    a = run(_stop_flow(delay=10, n_after=4), end=[("RST", EVSE)])
    assert not rules_found(a, "RSP003")


# --------------------------------------------------------------------------- RSP004
def test_rsp004_emergency_shutdown():
    ex = din_flow(stop=False)[:-3] + [cd(status(EVSEStatusCode="EVSE_EmergencyShutdown")) for _ in range(3)]
    a = run(ex, end=[("FIN", EVSE)])
    f = one(a, "RSP004")
    assert f.culprit == "SECC" and f.severity == "error" and "in 3 responses" in f.synopsis
    assert not rules_found(run(din_flow(), end=[("FIN", EV)]), "RSP004")


# --------------------------------------------------------------------------- RSP005
def _renegotiation(reaction):
    ex = iso2_flow("DC", stop=None)
    i = max(i for i, e in enumerate(ex) if "CurrentDemandReq" in str(e[0]))
    note = status(EVSENotification="ReNegotiation", NotificationMaxDelay=1)
    ex = ex[:i + 1] + [cd(note, gap=0.25) for _ in range(reaction[0])]
    if reaction[1] == "renegotiate":
        ex += [x("PowerDelivery", {"ChargeProgress": "Renegotiate"}, {"DC_EVSEStatus": OK}, gap=0.25)]
    elif reaction[1] == "stop":
        ex += [x("PowerDelivery", {"ChargeProgress": "Stop"}, {"DC_EVSEStatus": OK}, gap=0.25),
               x("SessionStop", {"ChargingSession": "Terminate"})]
    return ex


def test_rsp005_renegotiation_followed_is_clean():
    assert not rules_found(run(_renegotiation((2, "renegotiate")), ns=NS_ISO2), "RSP005")


def test_rsp005_stop_instead_of_renegotiation_is_a_warning():
    f = one(run(_renegotiation((1, "stop")), ns=NS_ISO2, end=[("FIN", EV)]), "RSP005")
    assert f.severity == "warning" and "stopped instead" in f.synopsis


# --------------------------------------------------------------------------- RSP006
def test_rsp006_isolation_monitoring_outside_cablecheck():
    ex = din_flow()
    i = _index(ex, "PreChargeReq")
    imd = status(EVSEStatusCode="EVSE_IsolationMonitoringActive")
    ex[i] = x("PreCharge", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": imd, "EVSEPresentVoltage": pv(398, "V")})
    f = one(run(ex, end=[("FIN", EV)]), "RSP006")
    assert f.culprit == "SECC" and f.severity == "warning" and "PreChargeRes" in f.synopsis
    ex = din_flow()
    i = _index(ex, "CableCheckReq")
    ex[i:i] = [x("CableCheck", {"DC_EVStatus": EVS}, {"EVSEProcessing": "Ongoing", "DC_EVSEStatus": imd})]
    assert not rules_found(run(ex, end=[("FIN", EV)]), "RSP006")


# --------------------------------------------------------------------------- RSP007
def _precharge_not_ready(then_stop):
    ex = din_flow()
    i = _index(ex, "PreChargeReq")
    nr = x("PreCharge", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": status(EVSEStatusCode="EVSE_NotReady"),
                                                "EVSEPresentVoltage": pv(398, "V")})
    if then_stop:
        return ex[:i] + [nr] * 5 + [x("SessionStop")]
    return ex[:i] + [nr] * 5 + ex[i + 1:]


def test_rsp007_not_ready_in_precharge_then_the_ev_gives_up():
    a = run(_precharge_not_ready(True), end=[("FIN", EV)])
    f = one(a, "RSP007")
    assert f.severity == "error" and f.culprit == "SECC" and "SessionStopReq" in f.synopsis
    assert "5 responses" in f.synopsis


def test_rsp007_tolerated_not_ready_is_info():
    f = one(run(_precharge_not_ready(False), end=[("FIN", EV)]), "RSP007")
    assert f.severity == "info" and "went on with PowerDeliveryReq" in f.synopsis
    assert not rules_found(run(din_flow(), end=[("FIN", EV)]), "RSP007")


# --------------------------------------------------------------------------- RSP008
def test_rsp008_ev_error_then_stop():
    ex = din_flow(loop=3, stop=False) + [cd(err="FAILED_RESSTemperatureInhibit")]
    ex += [x("PowerDelivery", {"ReadyToChargeState": False, "DC_EVStatus": {**EVS, "EVErrorCode":
                                                                              "FAILED_RESSTemperatureInhibit"}},
             {"DC_EVSEStatus": OK}), x("SessionStop")]
    a = run(ex, end=[("FIN", EV)])
    f = one(a, "RSP008")
    assert f.culprit == "EVCC" and f.severity == "error" and "temperature" in f.synopsis
    assert "in 2 requests" in f.synopsis and "PowerDeliveryReq" in f.synopsis
    assert a.summaries["S1"]["root_cause"] == f.id


def test_rsp008_error_code_while_charging_on_is_a_warning():
    ex = din_flow(loop=2, stop=False) + [cd(err="FAILED_EVShiftPosition")] + din_flow(loop=2)[-5:]
    f = one(run(ex, end=[("FIN", EV)]), "RSP008")
    assert f.severity == "warning"


def test_rsp008_not_for_no_error_or_nodata():
    ex = din_flow(loop=1, stop=False) + [cd(err="NoData")] + din_flow()[-3:]
    assert not rules_found(run(ex, end=[("FIN", EV)]), "RSP008")


# --------------------------------------------------------------------------- RSP009
def test_rsp009_rcd_tripped():
    ex = iso2_flow("AC")
    i = _index(ex, "ChargingStatusReq")
    tripped = {"NotificationMaxDelay": 0, "EVSENotification": "None", "RCD": True}
    ex[i] = x("ChargingStatus", {}, {"EVSEID": "ZZ", "SAScheduleTupleID": 1, "AC_EVSEStatus": tripped})
    f = one(run(ex, ns=NS_ISO2, end=[("FIN", EV)]), "RSP009")
    assert f.severity == "error" and "RCD" in f.synopsis
    assert not rules_found(run(iso2_flow("AC"), ns=NS_ISO2, end=[("FIN", EV)]), "RSP009")


# --------------------------------------------------------------------------- corpus
def test_corpus_westpark_cablecheck_failed_and_ignored_stop(corpus):
    a = corpus_analysis(corpus, "2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    s1 = session_of_frame(a, 659)
    (f,) = by_rule(a, "RSP001", s1)
    assert {656, 659} <= set(f.frames) and f.culprit == "SECC" and "CableCheckRes" in f.synopsis
    assert "EVSE_Shutdown" in f.synopsis and "Invalid" in f.synopsis
    assert a.summaries[s1]["root_cause"] == f.id
    s3 = session_of_frame(a, 11981)
    (g,) = by_rule(a, "RSP003", s3)
    assert {11981, 12700} <= set(g.frames) and g.culprit == "EVCC" and g.limit == 10
    assert "99 more CurrentDemandReq" in g.synopsis
    root = next(x for x in a.findings if x.id == a.summaries[s3]["root_cause"])
    assert root.culprit == "EVCC"


def test_corpus_ioniq_ev_error_codes(corpus):
    """The Ioniq reports FAILED_ChargingCurrentdifferential after 600 s in which the charger
    (pyPLC) delivered at most 10 A of the 182 A / 66 A asked: the EV's error is the
    consequence, the charger's under-delivery (culprit SECC) the root cause (class 2 of the
    explanation issue)."""
    a = corpus_analysis(corpus, "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng")
    b = corpus_analysis(corpus, "2026-02-03_pyPLC_FoccciCape_with_Ioniq_runs_10_minutes.pcap")
    for an, frame in ((a, 12094), (a, 25567), (b, 13836)):
        s = session_of_frame(an, frame)
        (f,) = by_rule(an, "RSP008", s)
        assert frame in f.frames and f.culprit == "EVCC" and "FAILED_ChargingCurrentdifferential" in f.synopsis
        root = next(x for x in an.findings if x.id == an.summaries[s]["root_cause"])
        assert root.rule in ("LIM004", "CHL007") and root.culprit == "SECC"
        assert f.caused_by == root.id and an.summaries[s]["goal"] == "not achieved"


def test_corpus_model_y_not_ready_in_precharge(corpus):
    a = corpus_analysis(corpus, "2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng")
    (f,) = by_rule(a, "RSP007")
    assert {189, 581, 583} <= set(f.frames) and f.culprit == "SECC" and f.severity == "error"
    assert "119 responses" in f.synopsis


def test_corpus_compleo_emergency_shutdown(corpus):
    a = corpus_analysis(corpus, "2022-12-13_compleo_with_bulb.pcapng")
    (f,) = by_rule(a, "RSP004")
    assert {701, 731} <= set(f.frames) and f.culprit == "SECC" and "EVSE_EmergencyShutdown" in f.synopsis


def test_corpus_polestar_evse_shutdown_is_a_normal_stop(corpus):
    a = corpus_analysis(corpus, "2024-06-18_Griffigroen_pyPLC_polestar2_discharging_with_additional_"
                                "prechargeCircuit.pcapng")
    assert [f for f in a.findings if f.rule.startswith(MINE) and f.rule != "SES012"] == []
    (f,) = by_rule(a, "SES012")         # the EVSE ended the charge: named, not a fault
    assert f.culprit == "SECC" and f.severity == "warning" and 1145 in f.frames


# --------------------------------------------------------------------------- ISO 15118-20
def _iso20_notified(note, n_after, reaction=None):
    from tests.rules.test_sequence import iso20_flow, x20
    from tests.rules.util import rn
    ex = iso20_flow(loop=2)
    i = max(i for i, e in enumerate(ex) if "DC_ChargeLoopReq" in str(e[0]))
    st = {"NotificationMaxDelay": 1, "EVSENotification": note}
    loop = x20("DC_ChargeLoop", {}, {"EVSEPresentCurrent": rn(10), "EVSEPresentVoltage": rn(400), "EVSEStatus": st},
               gap=0.25)
    out = ex[:i + 1] + [loop] * n_after
    if reaction:
        out += [x20("PowerDelivery", {"EVProcessing": "Finished", "ChargeProgress": reaction}, {}, gap=0.25)]
    return out


def test_rsp003_iso20_terminate_ignored():
    from tests.rules.util import NS_ISO20_CM
    f = one(run(_iso20_notified("Terminate", 10), ns=NS_ISO20_CM, end=[("RST", EVSE)]), "RSP003")
    assert "Terminate" in f.synopsis and f.culprit == "EVCC"
    assert not rules_found(run(_iso20_notified("Terminate", 1, "Stop"), ns=NS_ISO20_CM), "RSP003")


def test_rsp005_iso20_schedule_renegotiation():
    from tests.rules.util import NS_ISO20_CM
    f = one(run(_iso20_notified("ScheduleRenegotiation", 10), ns=NS_ISO20_CM, end=[("RST", EVSE)]), "RSP005")
    assert "ScheduleRenegotiation" in f.synopsis
    ok = _iso20_notified("ScheduleRenegotiation", 1, "ScheduleRenegotiation")
    assert not rules_found(run(ok, ns=NS_ISO20_CM), "RSP005")
