"""The faults of samples/faults_causes.py do what their documentation says, in the scenarios
made for the classes of failure explanation: the traffic (values, timing, who closes what)
is the one the scenario's ``[expect]`` table is about."""
from __future__ import annotations

import pytest

from ccs_analyzer.samples import ScenarioError
from ccs_analyzer.samples.script import header_of

from .helpers import body, decode, si, sim_from, sim_of, v2g


def names(sim):
    return [w.message.name for w in sim.messages]


def written(sim, name):
    return [w for w in sim.messages if w.message.name == name]


def tcp(sim, *names_):
    """The capture's TCP control events (SYN, SYN-ACK, FIN, RST …) in order."""
    return [e for e in decode(sim)[0] if e.layer == "tcp" and (not names_ or e.name in names_)]


def status(m):
    b = body(m)
    return b.get("DC_EVSEStatus") or {}


# ------------------------------------------------------------------ 1: foreign SessionID
def test_ev_foreign_session_id_every_request_refused_and_ev_closes():
    sim = sim_of("iso2_dc_ev_foreign_session_id")
    assert names(sim)[4:] == ["ServiceDiscoveryReq", "ServiceDiscoveryRes", "PaymentServiceSelectionReq",
                              "PaymentServiceSelectionRes", "AuthorizationReq", "AuthorizationRes"]
    own = header_of(v2g(sim, "SessionSetupRes")[0].tree)["SessionID"]
    later = [w.message for w in sim.messages][4:]
    reqs, ress = later[0::2], later[1::2]
    assert len({header_of(m.tree)["SessionID"] for m in reqs}) == 1
    assert all(header_of(m.tree)["SessionID"] != own for m in reqs)
    assert all(header_of(m.tree)["SessionID"] == own for m in ress)
    assert all(body(m)["ResponseCode"] == "FAILED_UnknownSession" for m in ress)
    fins = tcp(sim, "FIN")
    assert fins[0].direction == "EV->EVSE" and abs(fins[0].time - sim.messages[-1].time - 0.2) < 1e-3
    assert "SessionStopReq" not in names(sim)


# ------------------------------------------------------------------ 2 and 10: no current
def test_no_current_until_the_ev_gives_up():
    sim = sim_of("din_dc_no_current_ev_gives_up")
    reqs, ress = written(sim, "CurrentDemandReq"), written(sim, "CurrentDemandRes")
    assert all(si(body(w.message)["EVSEPresentCurrent"]) <= 0.8 for w in ress)
    assert max(si(body(w.message)["EVTargetCurrent"]) for w in reqs) == 120.0
    assert all(si(body(w.message)["EVSEMaximumCurrentLimit"]) == 150.0 for w in ress)
    assert {body(w.message)["DC_EVStatus"]["EVRESSSOC"] for w in reqs} == {27}      # no energy
    errs = [w for w in reqs if body(w.message)["DC_EVStatus"]["EVErrorCode"] != "NO_ERROR"]
    assert len(errs) == 1 and errs[0] is reqs[-1]
    assert body(errs[0].message)["DC_EVStatus"] == {"EVReady": False, "EVRESSSOC": 27,
                                                      "EVErrorCode": "FAILED_ChargingCurrentdifferential"}
    assert 60.0 <= errs[0].time - reqs[0].time < 60.5
    tail = names(sim)[-4:]
    assert tail == ["PowerDeliveryReq", "PowerDeliveryRes", "SessionStopReq", "SessionStopRes"]
    pd = v2g(sim, "PowerDeliveryReq")[-1]
    assert body(pd)["ReadyToChargeState"] is False and "WeldingDetectionReq" not in names(sim)


def test_no_current_then_the_evse_stops():
    sim = sim_of("iso2_dc_no_current_evse_stops")
    reqs, ress = written(sim, "CurrentDemandReq"), written(sim, "CurrentDemandRes")
    assert len(ress) == 100 and 19.5 < ress[-1].time - reqs[0].time < 20.5
    assert all(si(body(w.message)["EVSEPresentCurrent"]) <= 0.5 for w in ress)
    assert all(body(w.message)["DC_EVStatus"]["EVErrorCode"] == "NO_ERROR" for w in reqs)
    st = [status(w.message) for w in ress]
    assert all(s["EVSEStatusCode"] == "EVSE_Ready" for s in st[:-1])
    assert st[-1]["EVSEStatusCode"] == "EVSE_Shutdown" and st[-1]["EVSENotification"] == "StopCharging"
    n = names(sim)
    i = len(n) - 1 - n[::-1].index("CurrentDemandRes")
    assert n[i + 1:] == ["PowerDeliveryReq", "PowerDeliveryRes"] + ["WeldingDetectionReq",
                                  "WeldingDetectionRes"] * 3 + ["SessionStopReq", "SessionStopRes"]


# ------------------------------------------------------------------ 3: EV stops in PreCharge
def test_ev_stops_in_precharge_without_a_reason():
    sim = sim_of("iso2_dc_ev_stops_in_precharge")
    pre = v2g(sim, "PreChargeRes")
    assert len(pre) == 11 and names(sim)[-2:] == ["SessionStopReq", "SessionStopRes"]
    assert "PowerDeliveryReq" not in names(sim)
    volts = [si(body(m)["EVSEPresentVoltage"]) for m in pre]
    target = si(body(v2g(sim, "PreChargeReq")[0])["EVTargetVoltage"])
    assert volts == sorted(volts) and 0.9 * target < volts[-1] < target - 10     # approaching, not there
    assert all(status(m)["EVSEStatusCode"] == "EVSE_Ready" for m in pre)
    assert all(body(m)["DC_EVStatus"]["EVErrorCode"] == "NO_ERROR" for m in v2g(sim, "PreChargeReq"))
    assert body(v2g(sim, "SessionStopReq")[0])["ChargingSession"] == "Terminate"


# ------------------------------------------------------------------ 4: reconnect flood
def test_reconnect_flood_after_a_clean_session():
    sim = sim_of("din_dc_reconnect_flood")
    assert names(sim)[-2:] == ["SessionStopReq", "SessionStopRes"]
    ev = tcp(sim)
    fin = [e for e in ev if e.name == "FIN"][0]
    after = [e for e in ev if e.time > fin.time + 0.5]
    syns = [e for e in after if e.name == "SYN"]
    rsts = [e for e in after if e.name == "RST"]
    assert len(syns) == len(rsts) == 20 and all(e.direction == "EV->EVSE" for e in syns)
    assert all(e.direction == "EVSE->EV" for e in rsts)
    gaps = [b.time - a.time for a, b in zip(syns, syns[1:])]
    assert all(0.97 < g < 1.03 for g in gaps)
    assert len({e.conn for e in syns}) == 20                  # a new ephemeral port each time
    assert not [e for e in decode(sim)[0] if e.layer == "sdp" and e.time > fin.time]


def test_reconnect_flood_refuses_tls_sessions():
    with pytest.raises(ScenarioError, match="plain TCP"):
        sim_from({"protocol": "ISO 15118-2", "payment": "PnC", "faults": [{"name": "ev_reconnect_flood"}]})


# ------------------------------------------------------------------ 5: conformance only
def test_conformance_only_session():
    sim = sim_of("iso2_dc_conformance_only")
    lat = [b.time - a.time for a, b in zip(written(sim, "CurrentDemandReq"), written(sim, "CurrentDemandRes"))]
    assert lat and all(0.075 < x < 0.125 for x in lat)
    sdp = [e for e in decode(sim)[0] if e.layer == "sdp"]
    assert sdp[0].message["Security"] == "TLS" and sdp[1].message["Security"] == "NoTLS"
    assert names(sim)[-2:] == ["SessionStopReq", "SessionStopRes"]


# ------------------------------------------------------------------ 6: the EVSE stops
def test_evse_stops_charging_and_the_ev_follows():
    sim = sim_of("din_dc_evse_stops")
    ress = written(sim, "CurrentDemandRes")
    assert len(ress) == 30
    assert all(status(w.message)["EVSEStatusCode"] == "EVSE_Ready" for w in ress[:-1])
    last = status(ress[-1].message)
    assert (last["EVSEStatusCode"], last["EVSENotification"], last["NotificationMaxDelay"]) == \
        ("EVSE_Shutdown", "StopCharging", 2)
    pd = written(sim, "PowerDeliveryReq")[-1]
    assert body(pd.message)["ReadyToChargeState"] is False and abs(pd.time - ress[-1].time - 0.25) < 1e-3
    assert names(sim)[-2:] == ["SessionStopReq", "SessionStopRes"] and "WeldingDetectionReq" in names(sim)
    assert all(body(m)["DC_EVStatus"]["EVErrorCode"] == "NO_ERROR" for m in v2g(sim, "CurrentDemandReq"))


# ------------------------------------------------------------------ 7: response after the EV gave up
def test_response_after_ev_timeout():
    sim = sim_of("din_dc_response_after_ev_timeout")
    req, res = written(sim, "CurrentDemandReq")[-1], written(sim, "CurrentDemandRes")[-1]
    assert len(written(sim, "CurrentDemandRes")) == 10 and names(sim)[-1] == "CurrentDemandRes"
    assert abs(res.time - req.time - 0.6) < 1e-6
    ev = tcp(sim, "FIN", "RST")
    assert [(e.name, e.direction) for e in ev] == [("FIN", "EV->EVSE"), ("RST", "EV->EVSE")]
    assert abs(ev[0].time - req.time - 0.5) < 1e-6 and res.time < ev[1].time < res.time + 0.002
    assert sim.messages[-1].expect_decoded


# ------------------------------------------------------------------ 8 and 9: cable check
def test_cablecheck_never_finished():
    sim = sim_of("din_dc_cablecheck_never_finished")
    reqs, ress = written(sim, "CableCheckReq"), written(sim, "CableCheckRes")
    assert all(body(w.message)["EVSEProcessing"] == "Ongoing" for w in ress)
    late = [status(w.message) for w in ress if w.time - reqs[0].time > 1.6]
    assert late and all((s["EVSEIsolationStatus"], s["EVSEStatusCode"]) == ("Valid", "EVSE_Ready") for s in late)
    assert 40.0 <= reqs[-1].time - reqs[0].time < 40.7 and reqs[-2].time - reqs[0].time < 40.0
    assert [body(w.message)["DC_EVStatus"]["EVReady"] for w in reqs[-2:]] == [True, False]
    period = (reqs[-1].time - reqs[0].time) / (len(reqs) - 1)
    assert 0.55 < period < 0.65
    assert names(sim)[-1] == "CableCheckRes"
    fin = tcp(sim, "FIN", "RST")
    assert fin[0].name == "FIN" and fin[0].direction == "EV->EVSE"


def test_cablecheck_invalid_ignored():
    sim = sim_of("din_dc_cablecheck_invalid_ignored")
    last_cc = v2g(sim, "CableCheckRes")[-1]
    assert body(last_cc)["EVSEProcessing"] == "Finished" and body(last_cc)["ResponseCode"] == "OK"
    assert status(last_cc)["EVSEIsolationStatus"] == "Invalid"
    assert names(sim)[-5:] == ["CableCheckRes", "PreChargeReq", "PreChargeRes", "SessionStopReq", "SessionStopRes"]
    pre = v2g(sim, "PreChargeRes")[0]
    assert body(pre)["ResponseCode"] == "FAILED_SequenceError" and si(body(pre)["EVSEPresentVoltage"]) == 0.0
    assert body(v2g(sim, "SessionStopRes")[0])["ResponseCode"] == "OK"
    assert tcp(sim, "FIN")[0].direction == "EV->EVSE"


@pytest.mark.parametrize("fault, words", [
    ({"name": "evse_no_current"}, "DC sessions"),
    ({"name": "evse_stops_charging"}, "DC sessions"),
    ({"name": "cablecheck_never_finished", "ev_reaction": "wait"}, "ev_reaction"),
    ({"name": "response_after_ev_timeout", "delay_s": 0.4, "ev_close_s": 0.5}, "ev_close_s"),
])
def test_faults_that_do_not_fit_are_refused(fault, words):
    with pytest.raises(ScenarioError, match=words):
        sim_from({"protocol": "ISO 15118-2", "mode": "AC", "faults": [fault]}
                 if words == "DC sessions" else {"protocol": "DIN 70121", "faults": [fault]})
