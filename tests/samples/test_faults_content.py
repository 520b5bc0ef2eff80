"""The content faults of samples/faults_handshake.py, faults_charging.py and faults_content.py do what their documentation says: the
supportedAppProtocol handshake, SessionIDs, the request / response pattern, the cable check,
status codes, the charge loop, receipts, limits, message content, PreCharge and timing."""
from __future__ import annotations

import pytest

from ccs_analyzer.samples import ScenarioError
from ccs_analyzer.samples.script import header_of

from .helpers import body, decode, si, sim_from, sim_of, v2g


def names(sim):
    return [w.message.name for w in sim.messages]


def times(sim, name):
    return [w.time for w in sim.messages if w.message.name == name]


def sap(sim):
    req, res = v2g(sim, "supportedAppProtocolReq")[0], v2g(sim, "supportedAppProtocolRes")
    return req.tree["supportedAppProtocolReq"]["AppProtocol"], (res[0].tree["supportedAppProtocolRes"] if res else None)


def sid(m):
    return header_of(m.tree)["SessionID"]


def ending(sim, conn=-1, session=0):
    return sim.sessions[session].connections[conn].ending


# ------------------------------------------------------------------ handshake
def test_sap_faults():
    entries, res = sap(sim_of("iso2_dc_sap_failed_schema_id"))
    assert res == {"ResponseCode": "Failed_NoNegotiation", "SchemaID": entries[0]["SchemaID"]}
    entries, res = sap(sim_of("din_dc_sap_not_preferred"))
    assert [e["Priority"] for e in entries] == [1, 2] and "15118:2" in entries[0]["ProtocolNamespace"]
    assert res["SchemaID"] == entries[1]["SchemaID"]
    entries, res = sap(sim_of("iso2_dc_sap_version_mismatch"))
    assert entries[0]["VersionNumberMinor"] == 1 and res["ResponseCode"] == "OK_SuccessfulNegotiation"
    sim = sim_of("iso2_dc_sap_schema_id_not_echoed")
    entries, res = sap(sim)
    assert [e["SchemaID"] for e in entries] == [10, 11] and res["SchemaID"] == 1
    assert names(sim)[-1] == "supportedAppProtocolRes" and ending(sim).by == "EV"
    entries, _ = sap(sim_of("iso2_dc_sap_duplicate_schema_id"))
    assert {e["SchemaID"] for e in entries} == {1} and len(entries) == 2
    entries, _ = sap(sim_of("iso2_dc_sap_duplicate_priority"))
    assert {e["Priority"] for e in entries} == {1}


def test_sap_unanswered_reconnects():
    sim = sim_of("iso2_dc_sap_unanswered")
    assert names(sim) == ["supportedAppProtocolReq"] * 3
    conns = sim.sessions[0].connections
    assert len(conns) == 3 and all(c.ending.by == "EV" and c.ending.after_s == 2.0 for c in conns)
    syns = [e for e in decode(sim)[0] if e.layer == "tcp" and e.name == "SYN"]
    assert len(syns) == 3


# ------------------------------------------------------------------ session IDs
def test_fixed_session_id_in_two_sessions():
    sim = sim_of("din_dc_fixed_session_id")
    res = [w for w in sim.messages if w.message.name == "SessionSetupRes"]
    assert [w.session for w in res] == [1, 2] and {sid(w.message) for w in res} == {"0102030405060708"}
    assert names(sim)[-1] == "SessionStopRes"


def test_stale_and_resume_session_ids():
    sim = sim_of("din_dc_stale_session_id")
    req, res = v2g(sim, "SessionSetupReq")[0], v2g(sim, "SessionSetupRes")[0]
    assert sid(req) == "4a5e1d9c2b7f3e08" and sid(res) not in ("4a5e1d9c2b7f3e08", "00")
    sim = sim_of("iso2_dc_resume_new_session")
    reqs, ress = v2g(sim, "SessionSetupReq"), v2g(sim, "SessionSetupRes")
    assert sid(reqs[1]) == sid(ress[0]) and body(ress[1])["ResponseCode"] == "OK_NewSessionEstablished"
    assert sid(ress[1]) != sid(ress[0]) and sid(v2g(sim)[-1]) == sid(ress[1])
    sim = sim_of("iso2_dc_resume_without_session_id")
    reqs, ress = v2g(sim, "SessionSetupReq"), v2g(sim, "SessionSetupRes")
    assert sid(reqs[1]) == "00" * 8 and body(ress[1])["ResponseCode"] == "OK_NewSessionEstablished"


def test_resume_changes_payment():
    sim = sim_of("iso2_dc_pnc_resume_changes_payment")
    sel = [body(m)["SelectedPaymentOption"] for m in v2g(sim, "PaymentServiceSelectionReq")]
    assert sel == ["Contract", "ExternalPayment"] and len(v2g(sim, "PaymentDetailsReq")) == 1
    auth = v2g(sim, "AuthorizationReq")
    assert "Signature" in header_of(auth[0].tree) and "Signature" not in header_of(auth[-1].tree)


def test_metering_receipt_defect_and_short_session_id():
    sim = sim_of("iso2_ac_pnc_receipt_session_id")
    for m in v2g(sim, "MeteringReceiptReq"):
        assert body(m)["SessionID"] == "00" * 8 != sid(m)
    sim = sim_from({"protocol": "ISO 15118-2", "mode": "AC", "payment": "PnC",
                    "timing": {"loop_cycles": 8, "receipt_every": 4},
                    "faults": [{"name": "metering_receipt_defect", "defect": "unsigned", "secc_reaction": "reject"}]})
    m = v2g(sim, "MeteringReceiptReq")[0]
    assert "Signature" not in header_of(m.tree) and "Id" not in body(m)
    assert body(sim.messages[-1].message)["ResponseCode"] == "FAILED_MeteringSignatureNotValid"
    sim = sim_of("iso20_dc_short_session_id")
    assert sid(v2g(sim, "SessionSetupReq")[0]) == "00"


# ------------------------------------------------------------------ request / response
def test_duplicate_response():
    sim = sim_of("din_dc_duplicate_response")
    ns = names(sim)
    i = ns.index("CurrentDemandRes")
    assert ns[i + 4:i + 6] == ["CurrentDemandRes", "CurrentDemandRes"]
    res = [w for w in sim.messages if w.message.name == "CurrentDemandRes"]
    assert res[2].message.tree == res[3].message.tree and res[3].message.side == "EVSE"


def test_wrong_response_type_and_repeated_request():
    sim = sim_of("din_dc_wrong_response_type")
    assert names(sim)[-2:] == ["PowerDeliveryReq", "CurrentDemandRes"]
    assert (ending(sim).by, ending(sim).after_s) == ("EV", 2.0)
    sim = sim_of("din_dc_ev_repeats_request")
    ns = names(sim)
    i = ns.index("PowerDeliveryReq")
    assert ns[i:i + 3] == ["PowerDeliveryReq", "PowerDeliveryReq", "PowerDeliveryRes"]
    t = times(sim, "PowerDeliveryReq")
    assert abs(t[1] - t[0] - 1.0) < 1e-3


# ------------------------------------------------------------------ cable check, status codes
def test_isolation_faults():
    sim = sim_of("din_dc_isolation_warning")
    last_cc = v2g(sim, "CableCheckRes")[-1]
    assert body(last_cc)["DC_EVSEStatus"]["EVSEIsolationStatus"] == "Warning"
    assert {body(m)["DC_EVSEStatus"]["EVSEIsolationStatus"] for m in v2g(sim, "CurrentDemandRes")} == {"Warning"}
    sim = sim_of("iso2_dc_isolation_fault")
    res = v2g(sim, "CurrentDemandRes")
    st = body(res[-1])["DC_EVSEStatus"]
    assert len(res) == 8 and (st["EVSEIsolationStatus"], st["EVSENotification"]) == ("Fault", "StopCharging")
    assert si(body(res[-1])["EVSEPresentCurrent"]) == 0
    assert body(v2g(sim, "WeldingDetectionRes")[0])["DC_EVSEStatus"]["EVSEIsolationStatus"] == "Fault"
    assert names(sim)[-1] == "SessionStopRes"


def test_status_faults():
    sim = sim_of("iso2_dc_isolation_monitoring_in_loop")
    assert {body(m)["DC_EVSEStatus"]["EVSEStatusCode"] for m in v2g(sim, "CurrentDemandRes")} == \
        {"EVSE_IsolationMonitoringActive"}
    sim = sim_of("iso2_ac_rcd_trip")
    res = v2g(sim, "ChargingStatusRes")
    assert len(res) == 8 and body(res[-1])["AC_EVSEStatus"]["RCD"] is True
    assert not any(body(m)["AC_EVSEStatus"]["RCD"] for m in res[:-1])
    assert body(v2g(sim, "PowerDeliveryRes")[-1])["AC_EVSEStatus"]["RCD"] is True
    sim = sim_of("iso2_dc_renegotiation_ignored")
    notes = [body(m)["DC_EVSEStatus"]["EVSENotification"] for m in v2g(sim, "CurrentDemandRes")]
    assert notes[:5] == ["None"] * 5 and set(notes[5:]) == {"ReNegotiation"}
    assert "ChargeParameterDiscoveryReq" not in names(sim)[names(sim).index("CurrentDemandReq"):]
    sim = sim_of("iso2_ac_pnc_certificate_expires_soon")
    assert body(v2g(sim, "PaymentDetailsRes")[0])["ResponseCode"] == "OK_CertificateExpiresSoon"
    assert names(sim)[-1] == "SessionStopRes"


# ------------------------------------------------------------------ charge loop, receipts
def test_loop_after_refused_power_delivery():
    sim = sim_of("din_dc_loop_after_refused_power_delivery")
    assert names(sim)[-4:] == ["PowerDeliveryReq", "PowerDeliveryRes", "CurrentDemandReq", "CurrentDemandRes"]
    assert body(v2g(sim, "PowerDeliveryRes")[0])["ResponseCode"] == "FAILED_PowerDeliveryNotApplied"
    assert body(sim.messages[-1].message)["ResponseCode"] == "FAILED_SequenceError"


def test_charging_complete_flag():
    sim = sim_of("din_dc_charging_complete_at_bulk")
    reqs = [body(m) for m in v2g(sim, "CurrentDemandReq")]
    assert all(b["ChargingComplete"] == b["BulkChargingComplete"] for b in reqs)
    assert sum(b["ChargingComplete"] and si(b["EVTargetCurrent"]) > 1 for b in reqs) >= 20
    sim = sim_of("iso2_dc_charging_complete_flags")
    pd = body(v2g(sim, "PowerDeliveryReq")[0])["DC_EVPowerDeliveryParameter"]
    assert pd["ChargingComplete"] is True
    bulk = [body(m)["BulkChargingComplete"] for m in v2g(sim, "CurrentDemandReq")]
    assert bulk[3] is True and not any(bulk[:3] + bulk[4:])


def test_receipt_faults():
    sim = sim_of("iso2_ac_pnc_receipt_rejected")
    ns = names(sim)
    i = ns.index("MeteringReceiptRes")
    assert body(v2g(sim, "MeteringReceiptRes")[0])["ResponseCode"] == "FAILED_MeteringSignatureNotValid"
    assert ns[i + 1] == "ChargingStatusReq" and ns[-1] == "SessionStopRes"
    sim = sim_of("iso2_ac_pnc_receipt_not_sent")
    assert "MeteringReceiptReq" not in names(sim)
    assert any(body(m)["ReceiptRequired"] for m in v2g(sim, "ChargingStatusRes"))
    sim = sim_of("iso2_ac_receipt_required_eim")
    flags = [body(m)["ReceiptRequired"] for m in v2g(sim, "ChargingStatusRes")]
    assert flags.count(True) == 2 and "MeteringReceiptReq" not in names(sim)


# ------------------------------------------------------------------ limits
def _loop(sim, res="CurrentDemandRes", req="CurrentDemandReq"):
    return list(zip(map(body, v2g(sim, req)), map(body, v2g(sim, res))))


def test_evse_regulation_faults():
    rows = _loop(sim_of("iso2_dc_current_overshoot"))
    over = [si(r["EVSEPresentCurrent"]) - si(q["EVTargetCurrent"]) for q, r in rows]
    assert sum(abs(x - 20.0) < 0.2 for x in over) == 4
    sim = sim_of("din_dc_voltage_overshoot")
    rows = _loop(sim)
    assert sum(si(r["EVSEPresentVoltage"]) > si(q["EVTargetVoltage"]) + 20 for q, r in rows) >= 5
    assert rows[-1][0]["DC_EVStatus"]["EVErrorCode"] == "FAILED_ChargingVoltageOutOfRange"
    rows = _loop(sim_of("din_dc_power_module_failure"))
    assert max(si(r["EVSEPresentCurrent"]) for _, r in rows[3:]) <= 75.0
    assert {si(r["EVSEMaximumCurrentLimit"]) for _, r in rows} == {150.0}
    rows = _loop(sim_of("din_dc_lamp_load"))
    assert all(si(r["EVSEPresentCurrent"]) < 0.4 and abs(si(r["EVSEPresentVoltage"]) - 230) < 1 for _, r in rows)


def test_ev_value_faults():
    rows = _loop(sim_of("din_dc_soc_glitch"))
    socs = [q["DC_EVStatus"]["EVRESSSOC"] for q, _ in rows]
    assert socs[7:9] == [0, 0] and socs[6] > 0 and socs[9] > 0
    rows = _loop(sim_of("iso2_dc_ev_target_above_max"))
    assert all(si(q["EVTargetVoltage"]) == si(q["EVMaximumVoltageLimit"]) + 20 for q, _ in rows)
    rows = _loop(sim_of("din_dc_limit_flags_fixed"))
    assert not any(r["EVSECurrentLimitAchieved"] or r["EVSEPowerLimitAchieved"] for _, r in rows)


def test_charge_parameter_faults():
    sim = sim_of("iso2_dc_negative_ev_limit")
    q = body(v2g(sim, "ChargeParameterDiscoveryReq")[0])["DC_EVChargeParameter"]
    assert si(q["EVMaximumCurrentLimit"]) == -200.0
    assert body(sim.messages[-1].message)["ResponseCode"] == "FAILED_WrongChargeParameter"
    sim = sim_of("iso2_dc_incompatible_voltage")
    r = body(v2g(sim, "ChargeParameterDiscoveryRes")[0])["DC_EVSEChargeParameter"]
    assert si(r["EVSEMinimumVoltageLimit"]) == 500.0 and names(sim)[-1] == "SessionStopRes"
    assert "CableCheckReq" not in names(sim)
    r = body(v2g(sim_of("iso2_dc_hpc_ratings"), "ChargeParameterDiscoveryRes")[0])["DC_EVSEChargeParameter"]
    assert (si(r["EVSEMaximumPowerLimit"]), si(r["EVSEMaximumCurrentLimit"])) == (350000.0, 500.0)


# ------------------------------------------------------------------ message content
def test_physical_value_error():
    res = v2g(sim_of("din_dc_max_voltage_glitch"), "CurrentDemandRes")
    assert [si(body(m)["EVSEMaximumVoltageLimit"]) for m in res[3:6]] == [500.0, 5000.0, 500.0]
    r = body(v2g(sim_of("din_dc_min_voltage_multiplier"), "ChargeParameterDiscoveryRes")[0])
    assert si(r["DC_EVSEChargeParameter"]["EVSEMinimumVoltageLimit"]) == 1500.0
    q = body(v2g(sim_of("iso2_dc_wrong_unit"), "ChargeParameterDiscoveryReq")[0])
    assert q["DC_EVChargeParameter"]["EVEnergyRequest"]["Unit"] == "W"


def test_multiplier_out_of_range_is_encoded_and_decoded():
    sim = sim_of("iso2_dc_multiplier_out_of_range")
    m = v2g(sim, "ChargeParameterDiscoveryRes")[0]
    p = body(m)["DC_EVSEChargeParameter"]["EVSEMaximumPowerLimit"]
    assert (p["Multiplier"], p["Value"]) == (4, 10)
    decoded = [e for e in decode(sim)[0] if e.layer == "v2gtp" and e.name == "ChargeParameterDiscoveryRes"]
    assert decoded[0].message == m.tree


def test_content_faults():
    sim = sim_of("din_dc_wrong_schema")
    assert {m.namespace for m in v2g(sim, "CableCheckReq")} == {"urn:iso:15118:2:2013:MsgDef"}
    assert {m.namespace for m in v2g(sim, "CableCheckRes")} == {"urn:din:70121:2012:MsgDef"}
    sim = sim_of("iso2_dc_wrong_status_type")
    assert all("AC_EVSEStatus" in body(m) and "DC_EVSEStatus" not in body(m) for m in v2g(sim, "PowerDeliveryRes"))
    sim = sim_of("iso2_dc_pnc_stale_gen_challenge")
    gc = body(v2g(sim, "PaymentDetailsRes")[0])["GenChallenge"]
    assert body(v2g(sim, "AuthorizationReq")[0])["GenChallenge"] != gc
    assert body(sim.messages[-1].message)["ResponseCode"] == "FAILED_ChallengeInvalid"
    sim = sim_of("iso2_dc_cpd_without_schedule")
    assert "SAScheduleList" not in body(v2g(sim, "ChargeParameterDiscoveryRes")[-1])
    b = body(v2g(sim_of("din_dc_iso2_service_content"), "ServiceDiscoveryRes")[0])
    assert b["PaymentOptions"]["PaymentOption"] == ["Contract", "ExternalPayment"]
    assert {"ServiceName", "ServiceScope"} <= set(b["ChargeService"]["ServiceTag"])


# ------------------------------------------------------------------ PreCharge, timing
def test_precharge_faults():
    targets = [si(body(m)["EVTargetVoltage"]) for m in v2g(sim_of("iso2_dc_precharge_target_changes"), "PreChargeReq")]
    assert targets[:3] == [430.0] * 3 and targets[3] < 400
    cur = {si(body(m)["EVTargetCurrent"]) for m in v2g(sim_of("din_dc_precharge_current_high"), "PreChargeReq")}
    assert cur == {10.0}
    sim = sim_of("din_dc_precharge_tolerance_loose")
    last = v2g(sim, "PreChargeRes")[-1]
    target = si(body(v2g(sim, "PreChargeReq")[-1])["EVTargetVoltage"])
    assert 20 < target - si(body(last)["EVSEPresentVoltage"]) <= 60


def test_timing_faults():
    sim = sim_of("iso20_dc_late_loop_request")
    ws = [w for w in sim.messages if w.message.name in ("DC_ChargeLoopReq", "DC_ChargeLoopRes")]
    reqs = [i for i, w in enumerate(ws) if w.message.name == "DC_ChargeLoopReq"]
    i = reqs[7]
    assert abs(ws[i].time - ws[i - 1].time - 0.8) < 1e-3
    sim = sim_of("din_dc_slow_setup")
    ev = decode(sim)[0]
    sdp = next(e for e in ev if e.layer == "sdp" and e.direction == "EVSE->EV")
    syn = next(e for e in ev if e.layer == "tcp" and e.name == "SYN")
    assert abs(syn.time - sdp.time - 21.0) < 0.01
    sim = sim_of("iso2_dc_slow_precharge_ramp")
    t = times(sim, "PreChargeReq")
    assert 5.0 < t[-1] - t[0] < 7.0
    sim = sim_of("din_dc_no_output_discharge")
    volts = [si(body(m)["EVSEPresentVoltage"]) for m in v2g(sim, "WeldingDetectionRes")]
    assert len(volts) == 65 and min(volts) > 300


def test_faults_refuse_sessions_they_do_not_fit():
    for table in ({"protocol": "DIN 70121", "faults": [{"name": "rcd_trip"}]},
                  {"protocol": "ISO 15118-2", "faults": [{"name": "short_session_id"}]},
                  {"protocol": "ISO 15118-2", "faults": [{"name": "secc_no_resume"}]},
                  {"protocol": "ISO 15118-2", "faults": [{"name": "sap_offer_duplicates", "field": "Nope"}]}):
        with pytest.raises(ScenarioError):
            sim_from(table)
