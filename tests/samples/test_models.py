"""The clean sessions follow the protocols and the physical models: message sequences,
SessionIDs, payload types, a PreCharge ramp toward the target, a charge loop with SoC rising,
current within the EVSE maxima and a taper near full, meter readings in AC, welding
detection with a falling voltage, pause / resume and renegotiation."""
from __future__ import annotations

import pytest

from ccs_analyzer.samples.physical import Battery, DcConverter, pv, rational
from ccs_analyzer.samples.script import header_of

from .helpers import body, si, sim_of, v2g

DC = ["din_dc", "iso2_dc_eim", "iso2_dc_pnc", "iso20_dc", "iso20_dc_scheduled"]


def names(sim):
    return [w.message.name for w in sim.messages]


def test_din_sequence():
    seq = [n for n in dict.fromkeys(names(sim_of("din_dc")))]
    assert seq == ["supportedAppProtocolReq", "supportedAppProtocolRes", "SessionSetupReq", "SessionSetupRes",
                   "ServiceDiscoveryReq", "ServiceDiscoveryRes", "ServicePaymentSelectionReq",
                   "ServicePaymentSelectionRes", "ContractAuthenticationReq", "ContractAuthenticationRes",
                   "ChargeParameterDiscoveryReq", "ChargeParameterDiscoveryRes", "CableCheckReq", "CableCheckRes",
                   "PreChargeReq", "PreChargeRes", "PowerDeliveryReq", "PowerDeliveryRes", "CurrentDemandReq",
                   "CurrentDemandRes", "WeldingDetectionReq", "WeldingDetectionRes", "SessionStopReq",
                   "SessionStopRes"]


def test_iso20_sequence_and_payload_types():
    sim = sim_of("iso20_dc")
    seq = list(dict.fromkeys(n[:-3] for n in names(sim)))
    assert seq == ["supportedAppProtocol", "SessionSetup", "AuthorizationSetup", "Authorization",
                   "ServiceDiscovery", "ServiceDetail", "ServiceSelection", "DC_ChargeParameterDiscovery",
                   "ScheduleExchange", "DC_CableCheck", "DC_PreCharge", "PowerDelivery", "DC_ChargeLoop",
                   "DC_WeldingDetection", "SessionStop"]
    for w in sim.messages:
        m = w.message
        want = 0x8001 if m.name.startswith("supportedAppProtocol") else 0x8004 if m.name.startswith("DC_") else 0x8002
        assert m.payload_type == want, m.name
    for w in sim_of("iso20_ac").messages:
        if w.message.name.startswith("AC_"):
            assert w.message.payload_type == 0x8003


@pytest.mark.parametrize("name", DC + ["iso2_ac_eim", "iso20_ac"])
def test_session_id(name):
    sim = sim_of(name)
    setup_req = v2g(sim, "SessionSetupReq")[0]
    assert set(header_of(setup_req.tree)["SessionID"]) == {"0"}
    sid = header_of(v2g(sim, "SessionSetupRes")[0].tree)["SessionID"]
    assert len(sid) == 16 and set(sid) != {"0"}
    for m in v2g(sim)[4:]:
        assert header_of(m.tree)["SessionID"] == sid, m.name


@pytest.mark.parametrize("name", DC)
def test_precharge_ramps_to_the_target_within_the_timeout(name):
    sim = sim_of(name)
    reqs = [w for w in sim.messages if w.message.name.endswith("PreChargeReq")]
    res = [w for w in sim.messages if w.message.name.endswith("PreChargeRes")]
    target = si(body(reqs[0].message)["EVTargetVoltage"])
    volts = [si(body(w.message)["EVSEPresentVoltage"]) for w in res]
    assert volts[0] < 0.5 * target                     # starts low
    assert all(b >= a - 1.0 for a, b in zip(volts, volts[1:]))   # rises (noise < 1 V)
    assert abs(volts[-1] - target) <= 10.0
    assert res[-1].time - reqs[0].time < 7.0
    for w in reqs:                                      # inrush limit 2 A (IEC 61851-23 CC.5.2)
        b = body(w.message)
        if "EVTargetCurrent" in b:
            assert si(b["EVTargetCurrent"]) <= 2.0


def loop_values(sim):
    out = []
    for w in sim.messages:
        m = w.message
        if m.name in ("CurrentDemandRes", "DC_ChargeLoopRes"):
            b = body(m)
            out.append(("res", si(b["EVSEPresentCurrent"]), si(b["EVSEPresentVoltage"]), b))
        elif m.name == "CurrentDemandReq":
            out.append(("req", body(m)["DC_EVStatus"]["EVRESSSOC"], si(body(m)["EVTargetCurrent"]), body(m)))
        elif m.name == "DC_ChargeLoopReq":
            out.append(("req", body(m)["DisplayParameters"]["PresentSOC"], None, body(m)))
    return out


@pytest.mark.parametrize("name", ["din_dc", "iso2_dc_eim", "iso2_dc_pnc"])
def test_charge_loop_follows_the_battery(name):
    sim = sim_of(name)
    vals = loop_values(sim)
    socs = [v[1] for v in vals if v[0] == "req"]
    assert socs == sorted(socs) and socs[-1] > socs[0]          # SoC rises
    currents = [v[1] for v in vals if v[0] == "res"]
    limit = si(body(v2g(sim, "ChargeParameterDiscoveryRes")[0])["DC_EVSEChargeParameter"]["EVSEMaximumCurrentLimit"])
    assert max(currents) <= limit + 1e-6                        # within the EVSE maximum
    assert max(currents) > 0.8 * min(limit, 140.0)              # reaches full power
    targets = [v[2] for v in vals if v[0] == "req"]
    assert targets[-1] < max(targets)                           # taper near full
    res = [v[3] for v in vals if v[0] == "res"]
    for b in res:                                               # power within the EVSE maximum
        pmax = si(b["EVSEMaximumPowerLimit"])
        assert si(b["EVSEPresentCurrent"]) * si(b["EVSEPresentVoltage"]) <= pmax * 1.001
    last_req = [w.message for w in sim.messages if w.message.name == "CurrentDemandReq"][-1]
    assert body(last_req)["ChargingComplete"] is True


@pytest.mark.parametrize("name", DC)
def test_welding_detection_sees_the_voltage_fall(name):
    sim = sim_of(name)
    res = [w.message for w in sim.messages if w.message.name.endswith("WeldingDetectionRes")]
    volts = [si(body(m)["EVSEPresentVoltage"]) for m in res]
    assert volts and volts == sorted(volts, reverse=True)


def test_ac_meter_readings_rise():
    sim = sim_of("iso2_ac_eim")
    readings = [body(m)["MeterInfo"]["MeterReading"] for m in v2g(sim, "ChargingStatusRes")]
    assert readings == sorted(readings) and readings[-1] > readings[0]
    assert all(body(m)["ReceiptRequired"] is False for m in v2g(sim, "ChargingStatusRes"))
    mi = [body(m)["MeterInfo"] for m in v2g(sim_of("iso20_ac"), "AC_ChargeLoopRes") if "MeterInfo" in body(m)]
    assert len(mi) >= 2 and mi[-1]["ChargedEnergyReadingWh"] > mi[0]["ChargedEnergyReadingWh"]


@pytest.mark.parametrize("name, loop", [("iso2_dc_pnc", "CurrentDemandRes"), ("iso2_ac_pnc", "ChargingStatusRes")])
def test_pnc_messages(name, loop):
    sim = sim_of(name)
    ns = names(sim)
    assert "PaymentDetailsReq" in ns and "PaymentDetailsRes" in ns
    auth = v2g(sim, "AuthorizationReq")[0]
    challenge = body(v2g(sim, "PaymentDetailsRes")[0])["GenChallenge"]
    assert body(auth)["GenChallenge"] == challenge and len(challenge) == 32
    assert "Signature" in header_of(auth.tree)
    cert = body(v2g(sim, "PaymentDetailsReq")[0])["ContractSignatureCertChain"]["Certificate"]
    from cryptography import x509
    assert "DESIMC0NTRACT01" in x509.load_der_x509_certificate(bytes.fromhex(cert)).subject.rfc4514_string()
    # every receipt request is followed by a MeteringReceiptReq signed and bound to the session
    for i, n in enumerate(ns):
        if n == loop and body(sim.messages[i].message).get("ReceiptRequired"):
            assert ns[i + 1] == "MeteringReceiptReq"
            m = sim.messages[i + 1].message
            assert body(m)["SessionID"] == header_of(m.tree)["SessionID"] and "Signature" in header_of(m.tree)
    assert "MeteringReceiptRes" in ns


def test_pause_and_resume():
    sim = sim_of("iso2_dc_pause")
    plan = sim.sessions[0]
    assert len(plan.connections) == 2
    stops = v2g(sim, "SessionStopReq")
    assert [body(m)["ChargingSession"] for m in stops] == ["Pause", "Terminate"]
    setups = v2g(sim, "SessionSetupRes")
    assert [body(m)["ResponseCode"] for m in setups] == ["OK_NewSessionEstablished", "OK_OldSessionJoined"]
    sid = header_of(setups[0].tree)["SessionID"]
    assert header_of(v2g(sim, "SessionSetupReq")[1].tree)["SessionID"] == sid
    assert header_of(setups[1].tree)["SessionID"] == sid
    gap = [w.time for w in sim.messages if w.message.name == "supportedAppProtocolReq"]
    assert gap[1] - gap[0] > 20.0


@pytest.mark.parametrize("name, follows", [("iso2_dc_renegotiation", ["ChargeParameterDiscoveryReq", "CableCheckReq"]),
                                          ("iso2_ac_renegotiation", ["ChargeParameterDiscoveryReq", "PowerDeliveryReq"])])
def test_renegotiation(name, follows):
    sim = sim_of(name)
    msgs = [w.message for w in sim.messages]
    i = next(k for k, m in enumerate(msgs) if m.name == "PowerDeliveryReq" and body(m)["ChargeProgress"] == "Renegotiate")
    assert body(msgs[i - 1]).get("AC_EVSEStatus", body(msgs[i - 1]).get("DC_EVSEStatus"))["EVSENotification"] == "ReNegotiation"
    after = [m.name for m in msgs[i + 2:] if m.side == "EV"]
    assert after[:2] == follows
    assert msgs[-1].name == "SessionStopRes"


def test_two_sessions_have_their_own_slac_and_session_ids():
    sim = sim_of("two_sessions")
    a, b = sim.sessions
    assert a.slac.run_id != b.slac.run_id and a.session_id != b.session_id
    assert a.protocol == "DIN 70121" and b.protocol == "ISO 15118-2"
    assert {w.session for w in sim.messages} == {1, 2}


def test_physical_value_encodings():
    assert pv(381.7, "V", -1) == {"Multiplier": -1, "Unit": "V", "Value": 3817}
    assert pv(150000, "W", 1) == {"Multiplier": 1, "Unit": "W", "Value": 15000}
    assert pv(400000, "W", 1) == {"Multiplier": 2, "Unit": "W", "Value": 4000}
    assert pv(5, None) == {"Multiplier": 0, "Value": 5}
    assert rational(460.25, -2) == {"Exponent": -1, "Value": 4602}
    assert rational(0, 0) == {"Exponent": 0, "Value": 0}


def test_models():
    b = Battery(soc_start=50, capacity_kwh=50, speedup=10)
    v0 = b.ocv()
    b.charge(50000, 36)                     # 0.5 kWh × 10 = 10 % of 50 kWh
    assert b.soc == pytest.approx(60.0) and b.ocv() > v0
    assert b.current_request(0.0, 0.1) == pytest.approx(30.0)   # ramp 300 A/s
    b.soc = 95
    assert b.current_request(1000, 1) < 0.5 * b.max_current_a   # taper
    d = DcConverter()
    for _ in range(50):
        d.precharge_step(400, 0.1)
    assert abs(d.voltage_v - 400) < 1
    peak = max(d.underdamped(t / 100, 400, 40, 0.8) for t in range(300))
    assert 435 < peak < 445 and abs(d.underdamped(5.0, 400, 40, 0.8) - 400) < 2
