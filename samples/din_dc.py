"""The message script of a DIN SPEC 70121 DC charging session, with a simple physical model:
CableCheck, a PreCharge ramp toward the EV's battery voltage, and a CurrentDemand loop
following a battery (SoC rising, current limited by the EVSE maxima, tapering near full).

Message sequence: DIN SPEC 70121 §9.6 (Figure 107 sequence, [V2G-DC-437] SessionSetup after
the handshake) as in PROTOCOL_FACTS §4A; element names and order: the DIN XSDs.
Physical values are DIN PhysicalValueType {Multiplier, Unit, Value}.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

NS_SAP = "urn:iso:15118:2:2010:AppProtocol"
NS_DIN = "urn:din:70121:2012:MsgDef"


@dataclass
class Exchange:
    """One request/response pair: trees, the EXI namespace, the EV's think time before the
    request (s) and the SECC's response latency (s)."""

    request: dict
    response: dict
    namespace: str
    gap_s: float
    latency_s: float


def pv(value: float, unit: str, multiplier: int = 0) -> dict:
    """A DIN PhysicalValueType with ``value`` (in ``unit``) scaled by 10^-multiplier."""
    return {"Multiplier": multiplier, "Unit": unit, "Value": int(round(value / 10 ** multiplier))}


def msg(session_id: str, name: str, body: dict) -> dict:
    return {"V2G_Message": {"Header": {"SessionID": session_id}, "Body": {name: body}}}


@dataclass
class DinDcParams:
    """Knobs of the session (defaults: a healthy 400 V battery on a 150 kW charger)."""

    evccid: str = "020000000001"
    evseid: str = "0a0b0c"
    session_id: str = "5a3c9e01b2d47f68"
    battery_v: float = 380.0
    soc_start: int = 42
    soc_stop: int = 46
    capacity_wh: float = 60000.0
    ev_max_current_a: float = 200.0
    ev_max_voltage_v: float = 420.0
    evse_max_current_a: float = 150.0
    evse_max_voltage_v: float = 500.0
    evse_max_power_w: float = 150000.0
    cablecheck_cycles: int = 4
    precharge_ramp_v_per_s: float = 150.0
    loop_cycles: int = 40
    loop_period_s: float = 0.1
    latency_s: float = 0.03
    seed: int = 1


def din_dc_script(p: DinDcParams | None = None) -> list[Exchange]:
    """The whole session as a list of :class:`Exchange` (deterministic for a given seed)."""
    p = p or DinDcParams()
    rnd = random.Random(p.seed)

    def lat():
        return round(p.latency_s * (0.8 + 0.4 * rnd.random()), 4)

    sid0, sid = "00", p.session_id
    ex: list[Exchange] = []
    soc = float(p.soc_start)

    def ev_status(ready=True):
        return {"EVReady": ready, "EVErrorCode": "NO_ERROR", "EVRESSSOC": int(soc)}

    def evse_status(code="EVSE_Ready", iso="Valid"):
        return {"EVSEIsolationStatus": iso, "EVSEStatusCode": code, "NotificationMaxDelay": 0,
                "EVSENotification": "None"}

    ex.append(Exchange(
        {"supportedAppProtocolReq": {"AppProtocol": [
            {"ProtocolNamespace": NS_DIN, "VersionNumberMajor": 2, "VersionNumberMinor": 0,
             "SchemaID": 1, "Priority": 1}]}},
        {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}},
        NS_SAP, 0.05, lat()))
    ex.append(Exchange(msg(sid0, "SessionSetupReq", {"EVCCID": p.evccid}),
                       msg(sid, "SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished",
                                                    "EVSEID": p.evseid}), NS_DIN, 0.05, lat()))
    ex.append(Exchange(msg(sid, "ServiceDiscoveryReq", {}),
                       msg(sid, "ServiceDiscoveryRes", {
                           "ResponseCode": "OK",
                           "PaymentOptions": {"PaymentOption": ["ExternalPayment"]},
                           "ChargeService": {"ServiceTag": {"ServiceID": 1, "ServiceCategory": "EVCharging"},
                                             "FreeService": False, "EnergyTransferType": "DC_extended"}}),
                       NS_DIN, 0.05, lat()))
    ex.append(Exchange(msg(sid, "ServicePaymentSelectionReq", {
        "SelectedPaymentOption": "ExternalPayment",
        "SelectedServiceList": {"SelectedService": [{"ServiceID": 1}]}}),
        msg(sid, "ServicePaymentSelectionRes", {"ResponseCode": "OK"}), NS_DIN, 0.05, lat()))
    ex.append(Exchange(msg(sid, "ContractAuthenticationReq", {}),
                       msg(sid, "ContractAuthenticationRes", {"ResponseCode": "OK",
                                                              "EVSEProcessing": "Finished"}),
                       NS_DIN, 0.05, lat()))
    ex.append(Exchange(
        msg(sid, "ChargeParameterDiscoveryReq", {
            "EVRequestedEnergyTransferType": "DC_extended",
            "DC_EVChargeParameter": {
                "DC_EVStatus": ev_status(),
                "EVMaximumCurrentLimit": pv(p.ev_max_current_a, "A"),
                "EVMaximumVoltageLimit": pv(p.ev_max_voltage_v, "V")}}),
        msg(sid, "ChargeParameterDiscoveryRes", {
            "ResponseCode": "OK", "EVSEProcessing": "Finished",
            "SAScheduleList": {"SAScheduleTuple": [{
                "SAScheduleTupleID": 1,
                "PMaxSchedule": {"PMaxScheduleID": 1, "PMaxScheduleEntry": [
                    {"RelativeTimeInterval": {"start": 0, "duration": 86400},
                     "PMax": int(p.evse_max_power_w // 10)}]}}]},
            "DC_EVSEChargeParameter": {
                "DC_EVSEStatus": evse_status("EVSE_Ready", "Invalid"),
                "EVSEMaximumCurrentLimit": pv(p.evse_max_current_a, "A"),
                "EVSEMaximumPowerLimit": pv(p.evse_max_power_w, "W", 1),
                "EVSEMaximumVoltageLimit": pv(p.evse_max_voltage_v, "V"),
                "EVSEMinimumCurrentLimit": pv(0, "A"),
                "EVSEMinimumVoltageLimit": pv(150, "V"),
                "EVSEPeakCurrentRipple": pv(5, "A")}}),
        NS_DIN, 0.05, lat()))
    for i in range(p.cablecheck_cycles):
        done = i == p.cablecheck_cycles - 1
        ex.append(Exchange(msg(sid, "CableCheckReq", {"DC_EVStatus": ev_status()}),
                           msg(sid, "CableCheckRes", {
                               "ResponseCode": "OK",
                               "DC_EVSEStatus": evse_status("EVSE_Ready" if done else "EVSE_IsolationMonitoringActive",
                                                            "Valid" if done else "Invalid"),
                               "EVSEProcessing": "Finished" if done else "Ongoing"}),
                           NS_DIN, 0.25, lat()))
    v = 0.0
    target = p.battery_v
    t_cycle = 0.1
    while True:
        v = min(target, v + p.precharge_ramp_v_per_s * t_cycle + rnd.uniform(-0.5, 0.5))
        ex.append(Exchange(msg(sid, "PreChargeReq", {"DC_EVStatus": ev_status(),
                                                     "EVTargetVoltage": pv(target, "V"),
                                                     "EVTargetCurrent": pv(1, "A")}),
                           msg(sid, "PreChargeRes", {"ResponseCode": "OK",
                                                     "DC_EVSEStatus": evse_status(),
                                                     "EVSEPresentVoltage": pv(v, "V", -1)}),
                           NS_DIN, t_cycle - p.latency_s, lat()))
        if abs(target - v) < 5:
            break
    ex.append(Exchange(msg(sid, "PowerDeliveryReq", {"ReadyToChargeState": True,
                                                     "DC_EVPowerDeliveryParameter": {
                                                         "DC_EVStatus": ev_status(),
                                                         "ChargingComplete": False}}),
                       msg(sid, "PowerDeliveryRes", {"ResponseCode": "OK",
                                                     "DC_EVSEStatus": evse_status()}),
                       NS_DIN, 0.05, lat()))
    current = 0.0
    for i in range(p.loop_cycles):
        taper = max(0.1, min(1.0, (100 - soc) / 15))
        target_i = min(p.ev_max_current_a * taper, p.evse_max_current_a)
        current = current + (target_i - current) * 0.5
        volt = p.battery_v + 0.1 * current + (soc - p.soc_start) * 0.5
        soc = min(100.0, soc + volt * current * p.loop_period_s / 3600 / p.capacity_wh * 100)
        done = soc >= p.soc_stop or i == p.loop_cycles - 1
        ex.append(Exchange(
            msg(sid, "CurrentDemandReq", {
                "DC_EVStatus": ev_status(), "EVTargetCurrent": pv(target_i, "A", -1),
                "EVMaximumVoltageLimit": pv(p.ev_max_voltage_v, "V"),
                "EVMaximumCurrentLimit": pv(p.ev_max_current_a, "A"),
                "BulkChargingComplete": False, "ChargingComplete": done,
                "RemainingTimeToFullSoC": pv((100 - soc) * 60, "s"),
                "EVTargetVoltage": pv(p.ev_max_voltage_v, "V")}),
            msg(sid, "CurrentDemandRes", {
                "ResponseCode": "OK", "DC_EVSEStatus": evse_status(),
                "EVSEPresentVoltage": pv(volt, "V", -1), "EVSEPresentCurrent": pv(current, "A", -1),
                "EVSECurrentLimitAchieved": target_i >= p.evse_max_current_a,
                "EVSEVoltageLimitAchieved": False, "EVSEPowerLimitAchieved": False,
                "EVSEMaximumVoltageLimit": pv(p.evse_max_voltage_v, "V"),
                "EVSEMaximumCurrentLimit": pv(p.evse_max_current_a, "A"),
                "EVSEMaximumPowerLimit": pv(p.evse_max_power_w, "W", 1)}),
            NS_DIN, p.loop_period_s - p.latency_s, lat()))
        if done:
            break
    ex.append(Exchange(msg(sid, "PowerDeliveryReq", {"ReadyToChargeState": False,
                                                     "DC_EVPowerDeliveryParameter": {
                                                         "DC_EVStatus": ev_status(),
                                                         "ChargingComplete": True}}),
                       msg(sid, "PowerDeliveryRes", {"ResponseCode": "OK",
                                                     "DC_EVSEStatus": evse_status()}),
                       NS_DIN, 0.05, lat()))
    for volt in (int(p.battery_v * 0.6), 25):
        ex.append(Exchange(msg(sid, "WeldingDetectionReq", {"DC_EVStatus": ev_status(False)}),
                           msg(sid, "WeldingDetectionRes", {"ResponseCode": "OK",
                                                            "DC_EVSEStatus": evse_status(),
                                                            "EVSEPresentVoltage": pv(volt, "V")}),
                           NS_DIN, 0.2, lat()))
    ex.append(Exchange(msg(sid, "SessionStopReq", {}), msg(sid, "SessionStopRes", {"ResponseCode": "OK"}),
                       NS_DIN, 0.05, lat()))
    return ex
