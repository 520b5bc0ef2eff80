"""Session rules (SES001-SES011): SessionIDs of new sessions, resume after a pause, the ID
every message carries — on event-level sessions and on the corpus."""
from __future__ import annotations

import pytest

from tests.conftest import analyze_testevent
from tests.rules.test_sequence import (EV, EVSE, MINE, corpus_analysis, din_flow, iso2_flow,
                                       iso20_flow, one, run, setup, tail, x)
from tests.rules.util import (NS_ISO2, NS_ISO20_CM, SID, analyze_events, connection, din,
                              rules_found, script)

OTHER = "1122334455667788"


def two_connections(first_ex, second_ex, *, ns=NS_ISO2, gap_s=30.0):
    """Two TCP connections one after the other (pause / new session), each closed by FIN."""
    first = tail(script(first_ex, namespace=ns), ("FIN", EV), ("FIN", EVSE))
    t0 = first[-1].time - 1_700_000_000.0 + gap_s
    second = tail(script(second_ex, namespace=ns, conn=1, frame0=first[-1].frame + 1, t0=t0),
                  ("FIN", EV), ("FIN", EVSE))
    conns = [connection(0, fin=(first[-2].frame, first[-1].frame), namespace=ns),
             connection(1, syn=second[0].frame, synack=second[1].frame,
                        fin=(second[-2].frame, second[-1].frame), namespace=ns)]
    return analyze_events(first + second, connections=conns)


def ses(a):
    return [(f.rule, f.synopsis) for f in a.findings if f.rule.startswith("SES")]


# --------------------------------------------------------------------------- SES001
def test_ses001_not_for_a_resume_of_a_pause_before_the_capture():
    ex = din_flow()
    ex[0] = setup(sid=OTHER, rc="OK_OldSessionJoined", res_sid=OTHER)
    ex[1:] = [(din(_name(r), _body(r), OTHER), din(_name(s), _body(s), OTHER), g, l) for r, s, g, l in ex[1:]]
    a = run(ex, end=[("FIN", EV)])
    assert not rules_found(a, "SES001") and not rules_found(a, "SES003")


def _name(tree):
    return next(iter(tree["V2G_Message"]["Body"]))


def _body(tree):
    return tree["V2G_Message"]["Body"][_name(tree)]


# --------------------------------------------------------------------------- SES002/3
def test_ses002_zero_session_id_handed_out():
    ex = din_flow()
    ex[0] = setup(res_sid="0000000000000000")
    a = run(ex, end=[("FIN", EV)])
    f = one(a, "SES002")
    assert f.culprit == "SECC" and "all-zero" in f.synopsis
    assert not rules_found(run(din_flow(), end=[("FIN", EV)]), "SES002")


def test_ses003_old_session_joined_for_session_id_zero():
    ex = din_flow()
    ex[0] = setup(rc="OK_OldSessionJoined")
    f = one(run(ex, end=[("FIN", EV)]), "SES003")
    assert f.culprit == "SECC" and f.limit == "OK_NewSessionEstablished"


def test_ses003_secc_does_not_resume_a_paused_session():
    second = iso2_flow("DC", sid=SID)
    second[0] = setup(sid=SID, rc="OK_NewSessionEstablished", res_sid=OTHER)
    second[1:] = [(_resid(r, OTHER), _resid(s, OTHER), g, l) for r, s, g, l in second[1:]]
    a = two_connections(iso2_flow("DC", stop="Pause"), second)
    f = one(a, "SES003")
    assert "did not resume" in f.synopsis and f.culprit == "SECC"


def _resid(tree, sid):
    return din(_name(tree), _body(tree), sid)


# --------------------------------------------------------------------------- pause/resume
def test_pause_and_resume_with_the_old_id_is_clean():
    a = two_connections(iso2_flow("DC", stop="Pause"), iso2_flow("DC", sid=SID))
    assert ses(a) == []
    assert len(a.sessions) == 1


def test_ses007_pause_not_resumed():
    second = iso2_flow("DC")
    second[1:] = [(_resid(r, OTHER), _resid(s, OTHER), g, l) for r, s, g, l in second[1:]]
    second[0] = setup(res_sid=OTHER)
    a = two_connections(iso2_flow("DC", stop="Pause"), second)
    f = one(a, "SES007")
    assert f.culprit == "EVCC" and SID in f.synopsis and "not resumed" in f.synopsis
    assert not rules_found(a, "SES001")


def test_ses009_new_session_with_an_earlier_sessions_id():
    a = two_connections(iso2_flow("DC"), iso2_flow("DC"))
    assert len(a.sessions) == 2
    f = one(a, "SES009")
    assert f.severity == "info" and f.session == "S2" and f.culprit == "SECC"
    second = iso2_flow("DC")
    second[0] = setup(res_sid=OTHER)
    second[1:] = [(_resid(r, OTHER), _resid(s, OTHER), g, l) for r, s, g, l in second[1:]]
    assert not rules_found(two_connections(iso2_flow("DC"), second), "SES009")


def test_ses009_reusing_a_paused_sessions_id_is_a_warning():
    a = two_connections(iso2_flow("DC", stop="Pause"), iso2_flow("DC"))
    f = one(a, "SES009")
    assert f.severity == "warning"
    assert one(a, "SES007").culprit == "EVCC"


# --------------------------------------------------------------------------- SES004/5/6
def test_ses004_ev_changes_the_session_id_and_is_refused():
    ex = din_flow()[:3]
    ex.append(x("ContractAuthentication", {}, {"EVSEProcessing": "Finished"}, sid=OTHER,
                res_sid=SID, rc="FAILED_UnknownSession"))
    a = run(ex, end=[("FIN", EVSE)])
    f = one(a, "SES004")
    assert f.culprit == "EVCC" and f.severity == "error" and OTHER in f.synopsis
    c = one(a, "SES005")
    assert c.caused_by == f.id
    assert not rules_found(a, "SES006") and not rules_found(a, "RSP001")


def test_ses004_evse_response_with_another_id_tolerated_is_a_warning():
    ex = din_flow()
    ex[2] = x("ServicePaymentSelection", {"SelectedPaymentOption": "ExternalPayment"}, res_sid=OTHER)
    f = one(run(ex, end=[("FIN", EV)]), "SES004")
    assert f.culprit == "SECC" and f.severity == "warning"


def test_ses004_not_for_a_consistent_session():
    assert not rules_found(run(din_flow(), end=[("FIN", EV)]), "SES004")


def test_ses006_unknown_session_to_the_right_id():
    ex = din_flow()[:3] + [x("ContractAuthentication", {}, {}, rc="FAILED_UnknownSession")]
    a = run(ex, end=[("FIN", EVSE)])
    f = one(a, "SES006")
    assert f.culprit == "SECC" and f.severity == "error"
    assert not rules_found(a, "SES005")


# --------------------------------------------------------------------------- SES010/11
def test_ses010_metering_receipt_session_id():
    ex = iso2_flow("AC", "Contract")
    i = next(i for i, e in enumerate(ex) if "ChargingStatusReq" in str(e[0]))
    rec = x("MeteringReceipt", {"Id": "id1", "SessionID": OTHER, "MeterInfo": {"MeterID": "1"}},
            {"AC_EVSEStatus": {"NotificationMaxDelay": 0, "EVSENotification": "None", "RCD": False}})
    ok = x("MeteringReceipt", {"Id": "id1", "SessionID": SID.upper(), "MeterInfo": {"MeterID": "1"}},
           {"AC_EVSEStatus": {"NotificationMaxDelay": 0, "EVSENotification": "None", "RCD": False}})
    ex_bad = ex[:i] + [_receipt_required(ex[i]), rec] + ex[i + 1:]
    f = one(run(ex_bad, ns=NS_ISO2, end=[("FIN", EV)]), "SES010")
    assert f.culprit == "EVCC" and OTHER in f.synopsis
    ex_ok = ex[:i] + [_receipt_required(ex[i]), ok] + ex[i + 1:]
    assert not rules_found(run(ex_ok, ns=NS_ISO2, end=[("FIN", EV)]), "SES010")


def _receipt_required(exchange):
    req, res, g, l = exchange
    b = dict(_body(res), ReceiptRequired=True)
    return (req, din("ChargingStatusRes", b, SID), g, l)


def test_ses011_iso20_session_id_length():
    ex = iso20_flow()
    bad = ex[:1] + [_short_id(e) for e in ex[1:]]
    from tests.rules.test_sequence import x20
    bad[0] = x20("SessionSetup", {"EVCCID": "01"}, {"EVSEID": "DE*1"}, rc="OK_NewSessionEstablished",
                 sid="0000000000000000", res_sid="a1b2c3d4")
    a = run(bad, ns=NS_ISO20_CM, end=[("FIN", EV)])
    fs = rules_found(a, "SES011")
    assert {f.culprit for f in fs} == {"EVCC", "SECC"} and all("4-byte" in f.synopsis for f in fs)
    assert all(f.severity == "warning" for f in fs)           # tolerated by the peer
    assert not rules_found(run(iso20_flow(), ns=NS_ISO20_CM, end=[("FIN", EV)]), "SES011")


def _short_id(exchange):
    req, res, g, l = exchange
    out = []
    for t in (req, res):
        root = next(iter(t))
        out.append({root: {**t[root], "Header": {**t[root]["Header"], "SessionID": "a1b2c3d4"}}})
    return (out[0], out[1], g, l)


# --------------------------------------------------------------------------- corpus
def test_corpus_pause_resume_is_clean(corpus):
    a = corpus_analysis(corpus, "ISO-2_DC_Pause_DS5366.pcapng")
    assert [(f.rule, f.synopsis) for f in a.findings if f.rule.startswith(MINE)] == []


def test_corpus_pyplc_reuses_its_fixed_session_id(corpus):
    a = corpus_analysis(corpus, "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng")
    fs = [f for f in a.findings if f.rule == "SES009"]
    assert {f.session for f in fs} == {"S2", "S3"}
    assert all(f.severity == "info" and f.culprit == "SECC" for f in fs)
    assert all("0102030405060708" in f.synopsis for f in fs)


@pytest.mark.parametrize("name", ["ISO-20_BPT_AC_DS5366_Josev.pcapng", "ISO-20_mTLS_DC_DS5366_Josev.pcapng",
                                  "DIN_DC_DS5366_Josev.pcapng"])
def test_corpus_session_ids_are_consistent(corpus, name):
    a = corpus_analysis(corpus, name)
    assert [f for f in a.findings if f.rule.startswith("SES")] == []


# --------------------------------------------------------------------------- SES012
def _evse_stop(st_kw, *, ev_complete=False, ev_stops=True, loop=4):
    """DIN DC: ``loop`` CurrentDemand cycles at 40 A, then one whose response carries
    ``st_kw`` (DC_EVSEStatus fields); the EV then stops (PowerDelivery false, WeldingDetection,
    SessionStop) or keeps looping."""
    from tests.rules.test_sequence import OK, cd, status
    ex = din_flow(loop=0, stop=False)
    ex += [cd(target=40.0, gap=1.0) for _ in range(loop)]
    last = cd(st=status(**st_kw), target=40.0)
    if ev_complete:
        req = din("CurrentDemandReq", {"DC_EVStatus": {"EVReady": True, "EVErrorCode": "NO_ERROR",
                                                       "EVRESSSOC": 80},
                                       "EVTargetCurrent": {"Multiplier": 0, "Unit": "A", "Value": 0},
                                       "EVTargetVoltage": {"Multiplier": 0, "Unit": "V", "Value": 400},
                                       "ChargingComplete": True})
        last = (req,) + last[1:]
    ex.append(last)
    if ev_stops:
        ex += [x("PowerDelivery", {"ReadyToChargeState": False}, {"DC_EVSEStatus": OK}),
               x("WeldingDetection", {"DC_EVStatus": {"EVReady": True, "EVErrorCode": "NO_ERROR",
                                                      "EVRESSSOC": 80}}, {"DC_EVSEStatus": OK}),
               x("SessionStop")]
    else:
        ex += [cd(target=40.0) for _ in range(3)]
    return run(ex, end=[("FIN", EV)])


def test_ses012_evse_initiated_stop_is_named():
    a = _evse_stop({"EVSEStatusCode": "EVSE_Shutdown", "EVSENotification": "StopCharging"})
    f = one(a, "SES012")
    assert f.culprit == "SECC" and f.severity == "warning" and f.category == "session"
    assert "EVSE_Shutdown + EVSENotification StopCharging" in f.synopsis
    assert "40.0 A" in f.synopsis and "s of charging" in f.synopsis and "charger's log" in f.synopsis
    assert not rules_found(a, "RSP003")


@pytest.mark.parametrize("kw", [{"EVSEStatusCode": "EVSE_Shutdown"}, {"EVSENotification": "StopCharging"}])
def test_ses012_either_signal_is_enough(kw):
    assert rules_found(_evse_stop(kw), "SES012")


def test_ses012_not_when_the_ev_asked_to_stop_first():
    a = _evse_stop({"EVSEStatusCode": "EVSE_Shutdown"}, ev_complete=True)
    assert not rules_found(a, "SES012")


def test_ses012_not_for_a_fault_status_nor_when_the_ev_goes_on():
    a = _evse_stop({"EVSEStatusCode": "EVSE_EmergencyShutdown", "EVSENotification": "StopCharging"})
    assert not rules_found(a, "SES012") and rules_found(a, "RSP004")
    b = _evse_stop({"EVSEStatusCode": "EVSE_Shutdown", "EVSENotification": "StopCharging"}, ev_stops=False)
    assert not rules_found(b, "SES012")


def test_ses012_clean_session_is_silent():
    assert not rules_found(run(din_flow(), end=[("FIN", EV)]), "SES012")


@pytest.mark.parametrize("name,frames", [
    ("logfiles__Renault__Zoe_Z50_R135__din_spec_70121-DC__Zoe_Z50_R135_DC_Charging.pcap", (5536, 5539)),
    ("logfiles__BMW__iX_2024-02-27__2024-02-27T13-26-06.131Z-1_din_spec__ethernet-traffic.dump", (568, 571)),
    ("logfiles__Citroen__eC4__2024-02-29T12-39-13.614Z-2_iso2_dc__ethernet-traffic.dump", (408, 411)),
])
def test_testevents_evse_stops(testevents, name, frames):
    (f,) = rules_found(analyze_testevent(testevents, name), "SES012")
    assert f.culprit == "SECC" and set(frames) <= set(f.frames)


def test_ses012_not_for_an_ac_residual_current_trip():
    ac_stop = {"NotificationMaxDelay": 0, "EVSENotification": "StopCharging", "RCD": True}
    ex = iso2_flow("AC", stop="Terminate")
    i = max(i for i, e in enumerate(ex) if "ChargingStatusReq" in str(e[0]))
    ex[i] = x("ChargingStatus", {}, {"EVSEID": "ZZ", "SAScheduleTupleID": 1, "AC_EVSEStatus": ac_stop})
    a = run(ex, ns=NS_ISO2, end=[("FIN", EV)])
    assert not rules_found(a, "SES012") and rules_found(a, "RSP009")
    ex[i] = x("ChargingStatus", {}, {"EVSEID": "ZZ", "SAScheduleTupleID": 1,
                                     "AC_EVSEStatus": {**ac_stop, "RCD": False}})
    assert rules_found(run(ex, ns=NS_ISO2, end=[("FIN", EV)]), "SES012")
