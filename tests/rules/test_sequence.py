"""Sequence rules (SEQ001-SEQ009): state machines per protocol, request/response pairing,
unanswered requests, sessions that end without SessionStop — on event-level sessions and
on the corpus."""
from __future__ import annotations

import pytest

from tests.conftest import analyze_testevent
from tests.rules.util import (EV, EVSE, NS_DIN, NS_ISO2, NS_ISO20_CM, SID, analyze_events,
                              connection, din, ev, iso20, pv, rn, rules_found, script)

# --------------------------------------------------------------------------- builders
OK = {"EVSEIsolationStatus": "Valid", "EVSEStatusCode": "EVSE_Ready", "NotificationMaxDelay": 0,
      "EVSENotification": "None"}
EVS = {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 50}
MINE = ("SEQ", "SES", "RSP")


def x(name, req=None, res=None, *, rc="OK", gap=0.05, lat=0.02, sid=SID, res_sid=None, wrap=din):
    """One exchange for ``script``: request ``name``Req with body ``req``, response with
    ResponseCode ``rc`` and body ``res`` (``res=False``: no response)."""
    rq = wrap(name + "Req", dict(req or {}), sid)
    rs = None if res is False else wrap(name + "Res", {"ResponseCode": rc, **(res or {})},
                                        res_sid if res_sid is not None else sid)
    return (rq, rs, gap, lat)


def status(**kw):
    return {**OK, **kw}


def setup(sid="00", rc="OK_NewSessionEstablished", res_sid=SID, wrap=din):
    return x("SessionSetup", {"EVCCID": "01"}, {"EVSEID": "0a"} if wrap is din else {"EVSEID": "DE*1"},
             rc=rc, sid=sid, res_sid=res_sid, wrap=wrap)


def cd(st=None, target=10.0, err="NO_ERROR", res=None, **kw):
    """A CurrentDemand exchange (``res=False``: unanswered)."""
    body = False if res is False else {"DC_EVSEStatus": st or OK, "EVSEPresentVoltage": pv(400, "V"),
                                       "EVSEPresentCurrent": pv(target, "A")}
    return x("CurrentDemand", {"DC_EVStatus": {**EVS, "EVErrorCode": err}, "EVTargetCurrent": pv(target, "A"),
                               "EVTargetVoltage": pv(400, "V")}, body, **kw)


def din_flow(loop=3, stop=True):
    """A complete DIN 70121 DC EIM session (after the handshake)."""
    out = [setup(), x("ServiceDiscovery"),
           x("ServicePaymentSelection", {"SelectedPaymentOption": "ExternalPayment"}),
           x("ContractAuthentication", {}, {"EVSEProcessing": "Finished"}),
           x("ChargeParameterDiscovery", {"EVRequestedEnergyTransferType": "DC_extended",
                                          "DC_EVChargeParameter": {"DC_EVStatus": EVS}},
             {"EVSEProcessing": "Finished", "DC_EVSEChargeParameter": {"DC_EVSEStatus": OK}}),
           x("CableCheck", {"DC_EVStatus": EVS}, {"EVSEProcessing": "Finished", "DC_EVSEStatus": OK}),
           x("PreCharge", {"DC_EVStatus": EVS, "EVTargetVoltage": pv(400, "V"), "EVTargetCurrent": pv(1, "A")},
             {"DC_EVSEStatus": OK, "EVSEPresentVoltage": pv(398, "V")}),
           x("PowerDelivery", {"ReadyToChargeState": True}, {"DC_EVSEStatus": OK})]
    out += [cd() for _ in range(loop)]
    if stop:
        out += [x("PowerDelivery", {"ReadyToChargeState": False}, {"DC_EVSEStatus": OK}),
                x("WeldingDetection", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": OK}),
                x("SessionStop")]
    return out


def iso2_flow(mode="DC", payment="ExternalPayment", loop=3, stop="Terminate", wrap=din, sid="00"):
    """A complete ISO 15118-2 session (AC or DC, EIM or PnC) after the handshake."""
    out = [setup(sid=sid, rc="OK_NewSessionEstablished" if sid == "00" else "OK_OldSessionJoined"),
           x("ServiceDiscovery"),
           x("PaymentServiceSelection", {"SelectedPaymentOption": payment,
                                         "SelectedServiceList": {"SelectedService": [{"ServiceID": 1}]}})]
    if payment == "Contract":
        out.append(x("PaymentDetails", {"eMAID": "DE8AA001234567890"}, {"GenChallenge": "00" * 16,
                                                                         "EVSETimeStamp": 0}))
    out.append(x("Authorization", {}, {"EVSEProcessing": "Finished"}))
    if mode == "DC":
        out += [x("ChargeParameterDiscovery", {"RequestedEnergyTransferMode": "DC_extended",
                                               "DC_EVChargeParameter": {"DC_EVStatus": EVS}},
                  {"EVSEProcessing": "Finished", "DC_EVSEChargeParameter": {"DC_EVSEStatus": OK}}),
                x("CableCheck", {"DC_EVStatus": EVS}, {"EVSEProcessing": "Finished", "DC_EVSEStatus": OK}),
                x("PreCharge", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": OK, "EVSEPresentVoltage": pv(400, "V")}),
                x("PowerDelivery", {"ChargeProgress": "Start", "SAScheduleTupleID": 1}, {"DC_EVSEStatus": OK})]
        out += [cd() for _ in range(loop)]
        out += [x("PowerDelivery", {"ChargeProgress": "Stop", "SAScheduleTupleID": 1}, {"DC_EVSEStatus": OK}),
                x("WeldingDetection", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": OK})]
    else:
        ac = {"NotificationMaxDelay": 0, "EVSENotification": "None", "RCD": False}
        out += [x("ChargeParameterDiscovery", {"RequestedEnergyTransferMode": "AC_three_phase_core",
                                               "AC_EVChargeParameter": {}},
                  {"EVSEProcessing": "Finished", "AC_EVSEChargeParameter": {"AC_EVSEStatus": ac}}),
                x("PowerDelivery", {"ChargeProgress": "Start", "SAScheduleTupleID": 1}, {"AC_EVSEStatus": ac})]
        out += [x("ChargingStatus", {}, {"EVSEID": "ZZ", "SAScheduleTupleID": 1, "AC_EVSEStatus": ac})
                for _ in range(loop)]
        out += [x("PowerDelivery", {"ChargeProgress": "Stop", "SAScheduleTupleID": 1}, {"AC_EVSEStatus": ac})]
    if stop:
        out.append(x("SessionStop", {"ChargingSession": stop}))
    return out


def x20(name, req=None, res=None, **kw):
    return x(name, req, res, wrap=iso20, **kw)


def iso20_flow(loop=3, precharge_processing=("Finished",)):
    """A complete ISO 15118-20 DC EIM session after the handshake."""
    out = [setup(sid="0000000000000000", wrap=iso20), x20("AuthorizationSetup", {}, {
        "AuthorizationServices": ["EIM"], "CertificateInstallationService": False,
        "EIM_ASResAuthorizationMode": {}}),
        x20("Authorization", {"SelectedAuthorizationService": "EIM", "EIM_AReqAuthorizationMode": {}},
            {"EVSEProcessing": "Finished"}),
        x20("ServiceDiscovery"), x20("ServiceSelection", {"SelectedEnergyTransferService": {
            "ServiceID": 2, "ParameterSetID": 1}}),
        x20("DC_ChargeParameterDiscovery", {}, {}),
        x20("ScheduleExchange", {"MaximumSupportingPoints": 24}, {"EVSEProcessing": "Finished"}),
        x20("DC_CableCheck", {}, {"EVSEProcessing": "Finished"})]
    out += [x20("DC_PreCharge", {"EVProcessing": p, "EVPresentVoltage": rn(400), "EVTargetVoltage": rn(400)},
                {"EVSEPresentVoltage": rn(400)}) for p in precharge_processing]
    out += [x20("PowerDelivery", {"EVProcessing": "Finished", "ChargeProgress": "Start"}, {})]
    out += [x20("DC_ChargeLoop", {}, {"EVSEPresentCurrent": rn(10), "EVSEPresentVoltage": rn(400)})
            for _ in range(loop)]
    out += [x20("PowerDelivery", {"EVProcessing": "Finished", "ChargeProgress": "Stop"}, {}),
            x20("DC_WeldingDetection", {"EVProcessing": "Finished"}, {"EVSEPresentVoltage": rn(0)}),
            x20("SessionStop", {"ChargingSession": "Terminate"}, {})]
    return out


def tail(evs, *what, dt=0.01):
    """Append TCP events (``("FIN", EVSE)`` …) after the last event of a list."""
    f, t = evs[-1].frame, evs[-1].time - 1_700_000_000.0
    out = list(evs)
    for i, (name, d) in enumerate(what, 1):
        out.append(ev(f + i, t + dt * i, "tcp", name, d, conn=evs[-1].conn))
    return out


def run(exchanges, *, ns=NS_DIN, end=(), conns=None, extra=(), **kw):
    """Analyse one connection's exchanges, with optional TCP end events (e.g.
    ``[("FIN", EVSE), ("FIN", EV)]``) reflected in the connection summary."""
    evs = script(exchanges, namespace=ns, **kw)
    evs = tail(evs, *end) if end else evs
    evs += list(extra)
    if conns is None:
        fin, rst = [None, None], [None, None]
        for e in evs:
            if e.layer == "tcp" and e.name in ("FIN", "RST"):
                d = 0 if e.direction == EV else 1
                (fin if e.name == "FIN" else rst)[d] = (fin if e.name == "FIN" else rst)[d] or e.frame
        conns = [connection(0, fin=tuple(fin), rst=tuple(rst), namespace=ns)]
    return analyze_events(evs, connections=conns)


def _index(exchanges, name):
    """Index of the first exchange whose request is ``name``."""
    return next(i for i, e in enumerate(exchanges) if name in str(e[0])[:200])


def mine(a, severity=None):
    return [f for f in a.findings if f.rule.startswith(MINE) and (severity is None or f.severity == severity)]


def one(a, code):
    fs = rules_found(a, code)
    assert len(fs) == 1, [(f.rule, f.synopsis) for f in a.findings if f.rule.startswith(MINE)]
    return fs[0]


# --------------------------------------------------------------------------- clean flows
@pytest.mark.parametrize("flow,ns", [
    (lambda: din_flow(), NS_DIN),
    (lambda: iso2_flow("DC"), NS_ISO2),
    (lambda: iso2_flow("AC"), NS_ISO2),
    (lambda: iso2_flow("DC", "Contract"), NS_ISO2),
    (lambda: iso20_flow(precharge_processing=("Ongoing", "Ongoing", "Finished")), NS_ISO20_CM),
], ids=["din", "iso2-dc", "iso2-ac", "iso2-pnc", "iso20-dc"])
def test_complete_sessions_are_clean(flow, ns):
    a = run(flow(), ns=ns, end=[("FIN", EV), ("FIN", EVSE)])
    assert mine(a) == [], [(f.rule, f.synopsis) for f in mine(a)]


# --------------------------------------------------------------------------- SEQ001
def test_seq001_session_without_sessionstop_is_a_consequence():
    a = run(din_flow(stop=False), end=[("RST", EVSE)])
    f = one(a, "SEQ001")
    assert f.culprit == "SECC" and f.severity == "warning"
    assert f.caused_by is not None          # linked to the root cause (SEQ009 here)


def test_seq001_capture_ended_is_info_for_the_capture():
    a = run(din_flow(stop=False))
    f = one(a, "SEQ001")
    assert f.severity == "info" and f.culprit == "capture"
    assert not rules_found(a, "SEQ009")


def test_seq001_not_with_sessionstop():
    assert not rules_found(run(din_flow(), end=[("FIN", EV)]), "SEQ001")


# --------------------------------------------------------------------------- SEQ002/3/4
def test_seq002_out_of_sequence_refused_with_sequence_error():
    ex = [setup(), x("PreCharge", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": OK}, rc="FAILED_SequenceError")]
    a = run(ex, end=[("FIN", EVSE)])
    f = one(a, "SEQ002")
    assert f.severity == "error" and f.culprit == "EVCC"
    assert "PreChargeReq" in f.synopsis and "SessionSetupRes" in f.synopsis
    assert "ServiceDiscoveryReq, SessionStopReq" in f.synopsis and f.requirement.startswith("DIN 70121 [V2G-DC-438]")
    assert len(f.frames) == 3                  # SessionSetupRes, PreChargeReq, PreChargeRes
    c = one(a, "SEQ003")
    assert c.caused_by == f.id and c.culprit == "EVCC"
    assert not rules_found(a, "SEQ004") and not rules_found(a, "RSP001")
    assert a.summaries["S1"]["root_cause"] == f.id


def test_seq002_tolerated_out_of_sequence_is_info():
    ex = din_flow()
    del ex[1:4]                                # SessionSetup → ChargeParameterDiscovery
    f = one(run(ex, end=[("FIN", EV)]), "SEQ002")
    assert f.severity == "info" and f.evidence["tolerated"]
    assert "ChargeParameterDiscoveryReq" in f.synopsis


def test_seq002_repeated_violations_are_one_finding_each_with_count():
    pre = x("PreCharge", {"DC_EVStatus": EVS}, {"DC_EVSEStatus": OK, "EVSEPresentVoltage": pv(400, "V")})
    ex = din_flow(loop=1, stop=False)
    for _ in range(5):
        ex += [pre, cd()]
    a = run(ex)
    fs = rules_found(a, "SEQ002")
    assert sorted((f.evidence["previous_response"], f.evidence["actual"], f.count) for f in fs) == [
        ("CurrentDemandRes", "PreChargeReq", 5), ("PreChargeRes", "CurrentDemandReq", 5)]
    assert all(f.severity == "info" for f in fs)


def test_seq002_ongoing_loops_are_allowed():
    ex = din_flow()
    i = _index(ex, "ContractAuthenticationReq")
    ex[i:i] = [x("ContractAuthentication", {}, {"EVSEProcessing": "Ongoing"}) for _ in range(5)]
    i = _index(ex, "CableCheckReq")
    ex[i:i] = [x("CableCheck", {"DC_EVStatus": EVS}, {"EVSEProcessing": "Ongoing", "DC_EVSEStatus": OK})
               for _ in range(5)]
    i = _index(ex, "ChargeParameterDiscoveryReq")
    ex[i:i] = [x("ChargeParameterDiscovery", {"DC_EVChargeParameter": {"DC_EVStatus": EVS}},
                 {"EVSEProcessing": "Ongoing", "DC_EVSEChargeParameter": {"DC_EVSEStatus": OK}})
               for _ in range(3)]
    assert not rules_found(run(ex, end=[("FIN", EV)]), "SEQ002")


def test_seq002_iso2_start_directly_after_the_charge_loop():
    ex = iso2_flow("DC")
    i = max(i for i, e in enumerate(ex) if "CurrentDemandReq" in str(e[0]))
    ex.insert(i + 1, x("PowerDelivery", {"ChargeProgress": "Start", "SAScheduleTupleID": 1}, {"DC_EVSEStatus": OK},
                       rc="FAILED"))
    a = run(ex, ns=NS_ISO2, end=[("FIN", EVSE)])
    (f,) = [f for f in rules_found(a, "SEQ002") if "PowerDeliveryReq(Start)" in f.synopsis]
    assert f.requirement == "ISO 15118-2 [V2G2-812]" and f.severity == "error"
    # the EV went on after the FAILED response: that is out of sequence too ([V2G2-539])
    (g,) = [g for g in rules_found(a, "SEQ002") if g is not f]
    assert "ended the session" in g.synopsis and "[V2G2-539]" in g.requirement


def test_seq002_iso2_renegotiate_before_the_loop_and_after():
    ex = iso2_flow("DC")
    i = next(i for i, e in enumerate(ex) if "PreChargeReq" in str(e[0]))
    bad = ex[:i + 1] + [x("PowerDelivery", {"ChargeProgress": "Renegotiate"}, {"DC_EVSEStatus": OK})]
    f = one(run(bad, ns=NS_ISO2), "SEQ002")
    assert "Renegotiate" in f.synopsis and "[V2G2-812]" in f.requirement
    # renegotiation from the charge loop, then ChargeParameterDiscovery and PowerDelivery again
    j = max(i for i, e in enumerate(ex) if "CurrentDemandReq" in str(e[0]))
    cpd = next(e for e in ex if "ChargeParameterDiscoveryReq" in str(e[0]))
    good = ex[:j + 1] + [x("PowerDelivery", {"ChargeProgress": "Renegotiate"}, {"DC_EVSEStatus": OK}), cpd,
                         x("PowerDelivery", {"ChargeProgress": "Start", "SAScheduleTupleID": 1},
                           {"DC_EVSEStatus": OK}), cd()] + ex[j + 1:]
    assert not rules_found(run(good, ns=NS_ISO2, end=[("FIN", EV)]), "SEQ002")


def test_seq002_pnc_needs_payment_details():
    ex = iso2_flow("DC", "Contract")
    del ex[3]                                  # PaymentDetails
    f = one(run(ex, ns=NS_ISO2), "SEQ002")
    assert "AuthorizationReq" in f.synopsis and "PaymentDetailsReq" in f.synopsis and "[V2G2-551]" in f.requirement


def test_seq002_iso20_precharge_ongoing_then_power_delivery():
    ex = iso20_flow(precharge_processing=("Ongoing",))
    f = one(run(ex, ns=NS_ISO20_CM), "SEQ002")
    assert "PowerDeliveryReq(Start)" in f.synopsis and "[V2G20-2005]" in f.requirement
    assert "EVProcessing=Ongoing" in f.evidence["state"]


def test_seq002_new_connection_starts_with_the_handshake():
    ex = script(din_flow(), handshake=False)
    f = one(analyze_events(ex), "SEQ002")
    assert "first request of the connection" in f.synopsis and "supportedAppProtocolReq" in f.synopsis


def test_seq002_pause_and_resume_are_clean():
    first = script(iso2_flow("DC", stop="Pause"), namespace=NS_ISO2)
    first = tail(first, ("FIN", EV), ("FIN", EVSE))
    t0 = first[-1].time - 1_700_000_000.0 + 30
    second = script(iso2_flow("DC", sid=SID), namespace=NS_ISO2, conn=1, frame0=first[-1].frame + 1, t0=t0)
    second = tail(second, ("FIN", EV), ("FIN", EVSE))
    conns = [connection(0, fin=(first[-2].frame, first[-1].frame), namespace=NS_ISO2),
             connection(1, syn=second[0].frame, synack=second[1].frame,
                        fin=(second[-2].frame, second[-1].frame), namespace=NS_ISO2)]
    a = analyze_events(first + second, connections=conns)
    assert len(a.sessions) == 1 and a.summaries["S1"]["resumed"] == 1
    assert mine(a) == [], [(f.rule, f.synopsis) for f in mine(a)]


def test_seq004_sequence_error_to_an_allowed_request_blames_the_secc():
    ex = [setup(), x("ServiceDiscovery", rc="FAILED_SequenceError")]
    a = run(ex, end=[("FIN", EVSE)])
    f = one(a, "SEQ004")
    assert f.culprit == "SECC" and f.severity == "error" and "ServiceDiscoveryReq" in f.synopsis
    assert not rules_found(a, "SEQ002") and not rules_found(a, "SEQ003")


# --------------------------------------------------------------------------- SEQ005/6
def test_seq005_not_for_one_response_per_request():
    assert not rules_found(analyze_events(script([setup(), x("ServiceDiscovery")])), "SEQ005")


def test_seq006_response_of_another_type():
    ex = [setup(), x("ServiceDiscovery")]
    ex[1] = (ex[1][0], din("ServicePaymentSelectionRes", {"ResponseCode": "OK"}), 0.05, 0.02)
    f = one(run(ex), "SEQ006")
    assert f.culprit == "SECC" and "instead of ServiceDiscoveryRes" in f.synopsis
    assert not rules_found(run([setup(), x("ServiceDiscovery")]), "SEQ006")


# --------------------------------------------------------------------------- SEQ007/8
def test_seq007_secc_resets_instead_of_answering():
    ex = din_flow()[:4] + [x("ChargeParameterDiscovery", {}, False)]
    a = run(ex, end=[("RST", EVSE)], )
    f = one(a, "SEQ007")
    assert f.culprit == "SECC" and f.severity == "error" and "reset (RST)" in f.synopsis
    assert a.summaries["S1"]["root_cause"] == f.id


def test_seq007_ev_gives_up_before_its_timeout():
    ex = din_flow()[:8] + [x("PowerDelivery", {"ReadyToChargeState": False}, False)]
    f = one(run(ex, end=[("FIN", EV)], ), "SEQ007")
    assert f.culprit == "EVCC" and f.severity == "warning" and "before its own" in f.synopsis


def test_seq007_ev_closes_after_the_timeout():
    ex = din_flow()[:8] + [x("PowerDelivery", {"ReadyToChargeState": False}, False)]
    evs = script(ex)
    evs = tail(evs, ("FIN", EV), dt=3.0)
    f = one(analyze_events(evs, connections=[connection(0, fin=(evs[-1].frame, None))]), "SEQ007")
    assert f.culprit == "SECC" and f.measured >= 2.0 and f.limit == 2.0


def test_seq007_not_when_the_capture_ends_within_the_timeout():
    ex = din_flow()[:8] + [x("PowerDelivery", {"ReadyToChargeState": False}, False)]
    assert not rules_found(run(ex), "SEQ007")


def test_seq007_silent_secc_until_the_capture_ends():
    ex = din_flow()[:8] + [x("PowerDelivery", {"ReadyToChargeState": False}, False)]
    evs = script(ex)
    later = ev(evs[-1].frame + 1, evs[-1].time - 1_700_000_000.0 + 5, "slac", "CM_SLAC_PARM.REQ", EV,
               {"RunID": "0102030405060708"}, src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")
    f = one(analyze_events(evs + [later]), "SEQ007")
    assert f.culprit == "SECC" and "until the capture ended" in f.synopsis


def test_seq007_lost_bytes_blame_the_capture():
    ex = din_flow()[:4] + [x("ChargeParameterDiscovery", {}, False)]
    evs = script(ex)
    t = evs[-1].time - 1_700_000_000.0
    evs += [ev(evs[-1].frame + 1, t + 0.05, "tcp", "TCP bytes missing from capture", EVSE),
            ev(evs[-1].frame + 2, t + 0.1, "tcp", "RST", EVSE)]
    f = one(analyze_events(evs, connections=[connection(0, rst=(None, evs[-1].frame))]), "SEQ007")
    assert f.culprit == "capture" and f.severity == "warning"


def test_seq007_after_an_ignored_stop_request_is_info():
    stopping = status(EVSEStatusCode="EVSE_Shutdown", EVSENotification="StopCharging", NotificationMaxDelay=1)
    ex = din_flow(stop=False)[:-1] + [cd(stopping, gap=0.3) for _ in range(8)] + [cd(res=False, gap=0.3)]
    f = one(run(ex, end=[("RST", EVSE)]), "SEQ007")
    assert f.severity == "info" and f.culprit == "EVCC" and "asked the EV to stop" in f.synopsis


def test_seq008_next_request_without_waiting():
    ex = [setup(), x("ServiceDiscovery", res=False), x("ServicePaymentSelection",
                                                       {"SelectedPaymentOption": "ExternalPayment"}, gap=0.3)]
    a = run(ex)
    f = one(a, "SEQ008")
    assert f.culprit == "EVCC" and f.measured == pytest.approx(0.3, abs=0.01)
    assert not rules_found(a, "SEQ007")


def test_seq008_not_after_the_timeout_which_is_seq007():
    ex = [setup(), x("ServiceDiscovery", res=False), x("ServicePaymentSelection",
                                                       {"SelectedPaymentOption": "ExternalPayment"}, gap=2.5)]
    a = run(ex)
    assert not rules_found(a, "SEQ008")
    assert one(a, "SEQ007").culprit == "SECC"


# --------------------------------------------------------------------------- SEQ009
def test_seq009_evse_drops_a_running_session():
    a = run(din_flow(stop=False), end=[("FIN", EVSE), ("FIN", EV)])
    f = one(a, "SEQ009")
    assert f.culprit == "SECC" and f.severity == "error"
    assert a.summaries["S1"]["root_cause"] == f.id


def test_seq009_not_after_an_announced_stop():
    ex = din_flow(stop=False)[:-1] + [cd(status(EVSEStatusCode="EVSE_Shutdown"))]
    assert not rules_found(run(ex, end=[("FIN", EVSE)]), "SEQ009")
    assert not rules_found(run(din_flow(), end=[("FIN", EVSE)]), "SEQ009")


# --------------------------------------------------------------------------- corpus
_cache: dict = {}


def corpus_analysis(corpus, name):
    if name not in _cache:
        from ccs_analyzer.analyzer.analysis import analyze_capture
        _cache[name] = analyze_capture(corpus / name)
    return _cache[name]


def by_rule(a, code, session=None):
    return [f for f in a.findings if f.rule == code and (session is None or f.session == session)]


def session_of_frame(a, frame):
    return next(s.id for s in a.sessions if any(e.frame == frame for e in s.events))


def test_corpus_compleo_unanswered_requests(corpus):
    a = corpus_analysis(corpus, "2022-12-13_compleo_powerdelivery230_no_load.pcapng")
    s1 = session_of_frame(a, 532)
    (f,) = by_rule(a, "SEQ007", s1)
    assert {532, 534} <= set(f.frames) and f.culprit == "SECC" and f.severity == "error"
    assert "ContractAuthenticationReq" in f.synopsis and "28 earlier" in f.synopsis
    assert a.summaries[s1]["root_cause"] == f.id
    s3 = session_of_frame(a, 1384)
    (g,) = by_rule(a, "SEQ007", s3)
    assert {1384, 1387} <= set(g.frames) and "PowerDeliveryReq" in g.synopsis
    assert g.culprit == "EVCC"                  # the EV closed after 1.05 s, before its 2 s timeout


def test_corpus_ioniq_first_session_reset_after_cpd(corpus):
    a = corpus_analysis(corpus, "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng")
    (f,) = by_rule(a, "SEQ007", "S1")
    assert {140, 143} <= set(f.frames) and f.culprit == "SECC"
    assert a.summaries["S1"]["root_cause"] == f.id


@pytest.mark.parametrize("name,frame", [("2023-04-16_at_home_Ioniq_in_currentDemandLoop.pcapng", 6345),
                                        ("2023-05-24_pyPlc_with_Ioniq93prcSoc.pcapng", 728)])
def test_corpus_evse_drops_the_charge_loop(corpus, name, frame):
    a = corpus_analysis(corpus, name)
    (f,) = by_rule(a, "SEQ009")
    assert frame in f.frames and f.culprit == "SECC"
    root = next(g for g in a.findings if g.id == a.summaries[f.session]["root_cause"])
    # pyPLC's EVSE reported 1 A throughout before it closed: the earlier CHL007 (no current
    # delivered, also the SECC's) comes first
    assert root is f or (root.rule == "CHL007" and root.culprit == "SECC")


def test_corpus_westpark_unanswered_after_ignored_stop(corpus):
    a = corpus_analysis(corpus, "2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    s = session_of_frame(a, 12698)
    (f,) = by_rule(a, "SEQ007", s)
    assert {12698, 12700} <= set(f.frames) and f.severity == "info" and f.culprit == "EVCC"


def test_corpus_capture_cut_is_not_blamed(corpus):
    a = corpus_analysis(corpus, "2026-02-03_pyPLC_FoccciCape_with_Ioniq_runs_10_minutes.pcap")
    (f,) = by_rule(a, "SEQ001", "S2")
    assert f.severity == "info" and f.culprit == "capture"
    assert not [g for g in a.findings if g.rule.startswith(("SEQ", "SES")) and g.severity != "info"]


CLEAN = ["DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng", "ISO-2_AC_DS5366.pcapng",
         "ISO-2_DC_Pause_DS5366.pcapng", "ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng", "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_SalesTariffSchedule_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_BatteryDataExchange_DS5366_RiseV2G.pcapng", "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng",
         "ISO-20_BPT_AC_DS5366_Josev.pcapng", "ISO-20_mTLS_DC_DS5366_Josev.pcapng"]


@pytest.mark.parametrize("name", CLEAN, ids=lambda n: n[:32])
def test_corpus_clean_references_have_no_findings_of_these_rules(corpus, name):
    a = corpus_analysis(corpus, name)
    assert [(f.rule, f.synopsis) for f in a.findings if f.rule.startswith(MINE)] == []


def test_sample_capture_is_clean():
    from pathlib import Path

    from ccs_analyzer.analyzer.analysis import analyze_capture
    p = Path(__file__).resolve().parents[2] / "samples" / "din_dc_session.pcapng"
    if not p.exists():
        pytest.skip("sample capture not built")
    a = analyze_capture(p)
    assert [(f.rule, f.synopsis) for f in a.findings if f.rule.startswith(MINE)] == []


def test_seq008_not_when_the_capture_lost_the_response():
    evs = script([setup(), x("ServiceDiscovery", res=False),
                  x("ServicePaymentSelection", {"SelectedPaymentOption": "ExternalPayment"}, gap=0.3)])
    gap = ev(evs[-2].frame, evs[-3].time - 1_700_000_000.0 + 0.1, "tcp", "TCP bytes missing from capture", EVSE)
    evs = sorted(evs[:-2] + [gap] + [_shift(e, 1) for e in evs[-2:]], key=lambda e: e.frame)
    assert not rules_found(analyze_events(evs), "SEQ008")


def _shift(e, n):
    from dataclasses import replace
    return replace(e, frame=e.frame + n)


# --------------------------------------------------------------------------- after a FAILED response
def _failed_then(next_requests, rc_next="FAILED_SequenceError"):
    """ISO 15118-2 DC: ChargeParameterDiscoveryRes FAILED_WrongChargeParameter, then the EV's
    ``next_requests`` (names) each answered ``rc_next`` (the Seres capture's pattern)."""
    ex = iso2_flow("DC", stop=None)
    i = next(i for i, e in enumerate(ex) if "ChargeParameterDiscoveryReq" in str(e[0]))
    req, res, gap, lat = ex[i]
    res = din("ChargeParameterDiscoveryRes", {"ResponseCode": "FAILED_WrongChargeParameter",
                                              "EVSEProcessing": "Finished"})
    out = ex[:i] + [(req, res, gap, lat)]
    for name in next_requests:
        body = {"DC_EVStatus": EVS} if name != "SessionStop" else {"ChargingSession": "Terminate"}
        out.append(x(name, body, {"DC_EVSEStatus": OK} if name != "SessionStop" else {},
                     rc=rc_next if name != "SessionStop" else "OK", gap=0.4))
    return out


def test_seq002_going_on_after_a_failed_response_is_the_evs_error():
    a = run(_failed_then(["CableCheck"] * 4), ns=NS_ISO2, end=[("FIN", EV)])
    f = one(a, "SEQ002")
    assert f.culprit == "EVCC" and f.count == 4 and "ended the session" in f.synopsis
    assert "[V2G2-539]" in f.requirement and f.severity == "error"
    g = one(a, "SEQ003")                    # one grouped consequence, not one per response
    assert g.count == 4 and g.culprit == "EVCC"
    assert not rules_found(a, "SEQ004")


def test_seq002_session_stop_after_a_failed_response_is_fine():
    a = run(_failed_then(["SessionStop"]), ns=NS_ISO2, end=[("FIN", EVSE)])
    assert not rules_found(a, "SEQ002") and not rules_found(a, "SES013")


def test_ses013_secc_answering_on_after_its_failed_response():
    a = run(_failed_then(["CableCheck"] * 3), ns=NS_ISO2, end=[("FIN", EV)])
    f = one(a, "SES013")
    assert f.culprit == "SECC" and f.category == "session" and f.count == 3
    assert "FAILED_WrongChargeParameter" in f.synopsis and "FAILED_SequenceError" in f.synopsis


def test_ses013_not_when_the_secc_closes_after_its_failed_response():
    ex = _failed_then([])
    assert not rules_found(run(ex, ns=NS_ISO2, end=[("FIN", EVSE)]), "SES013")


# --------------------------------------------------------------------------- SessionStop while Ongoing
def _cable_check_ongoing_then_stop(rc):
    ex = din_flow(stop=False)
    i = next(i for i, e in enumerate(ex) if "CableCheckReq" in str(e[0]))
    ongoing = x("CableCheck", {"DC_EVStatus": EVS}, {"EVSEProcessing": "Ongoing",
                                                     "DC_EVSEStatus": status(EVSEStatusCode="EVSE_IsolationMonitoringActive")})
    return ex[:i] + [ongoing, ongoing, x("SessionStop", {}, {}, rc=rc)]


def test_session_stop_while_cable_check_is_ongoing_is_allowed():
    a = run(_cable_check_ongoing_then_stop("OK"), end=[("FIN", EV)])
    assert not rules_found(a, "SEQ002") and not rules_found(a, "SEQ004")


def test_sequence_error_to_session_stop_while_ongoing_is_the_seccs():
    a = run(_cable_check_ongoing_then_stop("FAILED_SequenceError"), end=[("FIN", EV)])
    f = one(a, "SEQ004")
    assert f.culprit == "SECC" and f.category == "response-code" and f.severity == "error"
    assert "SessionStopReq" in f.synopsis and not rules_found(a, "SEQ002")


@pytest.mark.parametrize("table,key", [("DIN 70121", "ChargeParameterDiscoveryRes (Ongoing)"),
                                       ("DIN 70121", "CableCheckRes (Ongoing)"),
                                       ("ISO 15118-2", "AuthorizationRes (Ongoing)"),
                                       ("ISO 15118-2", "ChargeParameterDiscoveryRes (Ongoing)"),
                                       ("ISO 15118-2", "CableCheckRes (Ongoing)")])
def test_ongoing_loops_may_be_ended_with_session_stop(table, key):
    from ccs_analyzer.rules.state_machines import TABLES
    allowed, _ = TABLES[table][key]
    assert "SessionStop" in allowed


# --------------------------------------------------------------------------- test events
SERES_AC = "logfiles__Seres__2024-01-10T13-40-14.939Z-2_iso2_ac__ethernet-traffic.dump"
AMPERA_1 = "logfiles__Opel__Ampera-E__2023-01-13-din_spec_70121__session__ampera_dc_din_1.dump"


def test_testevents_seres_goes_on_after_failed_and_the_secc_lets_it(testevents):
    a = analyze_testevent(testevents, SERES_AC)
    (f,) = rules_found(a, "SEQ002")
    assert f.culprit == "EVCC" and f.count == 161 and {65, 67} <= set(f.frames)
    (g,) = rules_found(a, "SES013")
    assert g.culprit == "SECC" and g.category == "session" and {65, 710} <= set(g.frames)
    assert not rules_found(a, "SEQ004")


def test_testevents_ampera_session_stop_refused_during_cable_check(testevents):
    a = analyze_testevent(testevents, AMPERA_1)
    (f,) = rules_found(a, "SEQ004")
    assert f.culprit == "SECC" and f.category == "response-code" and {866, 868} <= set(f.frames)
    assert not [g for g in rules_found(a, "SEQ002") + rules_found(a, "SEQ003") if 866 in g.frames]
