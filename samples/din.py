"""DIN SPEC 70121 (DC, EIM / ExternalPayment) message trees.

Element names, order and optional elements: the DIN XSDs (V2G_CI_MsgBody.xsd,
V2G_CI_MsgDataTypes.xsd; J-XSD-DIN) as the reference captures show them (dsV2Gshark
DIN_DC_DS5366_Josev, pyPLC field captures): ServiceDiscoveryRes with PaymentOptions
[ExternalPayment] only [V2G-DC-252], ChargeService DC_extended; ChargeParameterDiscoveryRes
with a 24-hour PMaxSchedule whose PMax is a short capped at 32767 [V2G-DC-559] (EVerest
din_server); DC_EVSEStatus order EVSEIsolationStatus, EVSEStatusCode, NotificationMaxDelay,
EVSENotification; PowerDeliveryReq ReadyToChargeState (not ChargeProgress); SessionStopReq
without content. Message sequence: PROTOCOL_FACTS §4A.
"""
from __future__ import annotations

from ccs_analyzer.dissectors.exi.namespaces import NS_DIN

from .dialects import Dialect
from .physical import pv


def msg(sid: str, name: str, body: dict) -> dict:
    """A DIN / ISO-2 V2G_Message tree with ``body`` under ``name``."""
    return {"V2G_Message": {"Header": {"SessionID": sid}, "Body": {name: body}}}


class DinDialect(Dialect):
    protocol = "DIN 70121"
    namespace = NS_DIN
    major, minor = 2, 0
    names = {"PaymentSelection": "ServicePaymentSelection", "Authorization": "ContractAuthentication",
             "ChargeLoop": "CurrentDemand"}
    setup = ("ServiceDiscovery", "PaymentSelection", "Authorization")

    # ------------------------------------------------------------------ common parts
    def ev_status(self, s) -> dict:
        return {"EVReady": s.ev_ready, "EVErrorCode": s.ev_error, "EVRESSSOC": int(s.bat.soc)}

    def evse_status(self, s) -> dict:
        return {"EVSEIsolationStatus": s.isolation, "EVSEStatusCode": s.evse_status_code,
                "NotificationMaxDelay": s.notification_delay, "EVSENotification": s.notification}

    def m(self, s, name, body, sid=None):
        return msg(s.sid if sid is None else sid, name, body)

    # ------------------------------------------------------------------ steps
    def req_SessionSetup(self, s):
        return self.m(s, "SessionSetupReq", {"EVCCID": s.evccid_hex}, sid=s.setup_sid)

    def res_SessionSetup(self, s):
        return self.m(s, "SessionSetupRes", {"ResponseCode": s.response_code, "EVSEID": s.evseid_hex})

    def req_ServiceDiscovery(self, s):
        return self.m(s, "ServiceDiscoveryReq", {})

    def res_ServiceDiscovery(self, s):
        return self.m(s, "ServiceDiscoveryRes", {
            "ResponseCode": s.response_code,
            "PaymentOptions": {"PaymentOption": ["ExternalPayment"]},
            "ChargeService": {"ServiceTag": {"ServiceID": 1, "ServiceCategory": "EVCharging"},
                              "FreeService": False, "EnergyTransferType": s.energy_mode}})

    def req_PaymentSelection(self, s):
        return self.m(s, "ServicePaymentSelectionReq", {
            "SelectedPaymentOption": "ExternalPayment",
            "SelectedServiceList": {"SelectedService": [{"ServiceID": 1}]}})

    def res_PaymentSelection(self, s):
        return self.m(s, "ServicePaymentSelectionRes", {"ResponseCode": s.response_code})

    def req_Authorization(self, s):
        return self.m(s, "ContractAuthenticationReq", {})

    def res_Authorization(self, s):
        return self.m(s, "ContractAuthenticationRes", {"ResponseCode": s.response_code,
                                                       "EVSEProcessing": s.processing})

    def req_ChargeParameterDiscovery(self, s):
        b = s.bat
        return self.m(s, "ChargeParameterDiscoveryReq", {
            "EVRequestedEnergyTransferType": s.energy_mode,
            "DC_EVChargeParameter": {
                "DC_EVStatus": self.ev_status(s),
                "EVMaximumCurrentLimit": pv(b.max_current_a, "A", -1),
                "EVMaximumPowerLimit": pv(b.max_power_w, "W", 1),
                "EVMaximumVoltageLimit": pv(b.max_voltage_v, "V", -1),
                "EVEnergyCapacity": pv(b.capacity_wh, "Wh", 1),
                "EVEnergyRequest": pv(s.energy_request_wh, "Wh", 1),
                "FullSOC": int(b.soc_target), "BulkSOC": min(100, int(b.taper_soc))}})

    def res_ChargeParameterDiscovery(self, s):
        d = s.dc
        return self.m(s, "ChargeParameterDiscoveryRes", {
            "ResponseCode": s.response_code, "EVSEProcessing": s.processing,
            "SAScheduleList": {"SAScheduleTuple": [{
                "SAScheduleTupleID": s.schedule_tuple_id,
                "PMaxSchedule": {"PMaxScheduleID": 1, "PMaxScheduleEntry": [
                    {"RelativeTimeInterval": {"start": 0, "duration": 86400},
                     "PMax": int(min(32767, d.max_power_w))}]}}]},
            "DC_EVSEChargeParameter": {
                "DC_EVSEStatus": self.evse_status(s),
                "EVSEMaximumCurrentLimit": pv(d.max_current_a, "A", -1),
                "EVSEMaximumPowerLimit": pv(d.max_power_w, "W", 1),
                "EVSEMaximumVoltageLimit": pv(d.max_voltage_v, "V", -1),
                "EVSEMinimumCurrentLimit": pv(d.min_current_a, "A", -1),
                "EVSEMinimumVoltageLimit": pv(d.min_voltage_v, "V", -1),
                "EVSECurrentRegulationTolerance": pv(d.current_regulation_tolerance_a, "A", -1),
                "EVSEPeakCurrentRipple": pv(d.peak_current_ripple_a, "A", -1)}})

    def req_CableCheck(self, s):
        return self.m(s, "CableCheckReq", {"DC_EVStatus": self.ev_status(s)})

    def res_CableCheck(self, s):
        return self.m(s, "CableCheckRes", {"ResponseCode": s.response_code,
                                           "DC_EVSEStatus": self.evse_status(s),
                                           "EVSEProcessing": s.processing})

    def req_PreCharge(self, s):
        return self.m(s, "PreChargeReq", {"DC_EVStatus": self.ev_status(s),
                                          "EVTargetVoltage": pv(s.target_voltage_v, "V", -1),
                                          "EVTargetCurrent": pv(s.target_current_a, "A", -1)})

    def res_PreCharge(self, s):
        return self.m(s, "PreChargeRes", {"ResponseCode": s.response_code,
                                          "DC_EVSEStatus": self.evse_status(s),
                                          "EVSEPresentVoltage": pv(s.present_voltage_v, "V", -1)})

    def req_PowerDelivery(self, s):
        return self.m(s, "PowerDeliveryReq", {
            "ReadyToChargeState": s.charge_progress == "Start",
            "DC_EVPowerDeliveryParameter": {"DC_EVStatus": self.ev_status(s),
                                            "BulkChargingComplete": s.bulk_complete,
                                            "ChargingComplete": s.charging_complete}})

    def res_PowerDelivery(self, s):
        return self.m(s, "PowerDeliveryRes", {"ResponseCode": s.response_code,
                                              "DC_EVSEStatus": self.evse_status(s)})

    def req_ChargeLoop(self, s):
        b = s.bat
        return self.m(s, "CurrentDemandReq", {
            "DC_EVStatus": self.ev_status(s),
            "EVTargetCurrent": pv(s.target_current_a, "A", -1),
            "EVMaximumVoltageLimit": pv(b.max_voltage_v, "V", -1),
            "EVMaximumCurrentLimit": pv(b.max_current_a, "A", -1),
            "EVMaximumPowerLimit": pv(b.max_power_w, "W", 1),
            "BulkChargingComplete": s.bulk_complete,
            "ChargingComplete": s.charging_complete,
            "RemainingTimeToFullSoC": pv(s.remaining_full_s, "s", 0),
            "RemainingTimeToBulkSoC": pv(s.remaining_bulk_s, "s", 0),
            "EVTargetVoltage": pv(s.target_voltage_v, "V", -1)})

    def res_ChargeLoop(self, s):
        d = s.dc
        cur, volt, powr = s.limits_achieved
        return self.m(s, "CurrentDemandRes", {
            "ResponseCode": s.response_code, "DC_EVSEStatus": self.evse_status(s),
            "EVSEPresentVoltage": pv(s.present_voltage_v, "V", -1),
            "EVSEPresentCurrent": pv(s.present_current_a, "A", -1),
            "EVSECurrentLimitAchieved": cur, "EVSEVoltageLimitAchieved": volt,
            "EVSEPowerLimitAchieved": powr,
            "EVSEMaximumVoltageLimit": pv(d.max_voltage_v, "V", -1),
            "EVSEMaximumCurrentLimit": pv(d.max_current_a, "A", -1),
            "EVSEMaximumPowerLimit": pv(d.max_power_w, "W", 1)})

    def req_WeldingDetection(self, s):
        return self.m(s, "WeldingDetectionReq", {"DC_EVStatus": self.ev_status(s)})

    def res_WeldingDetection(self, s):
        return self.m(s, "WeldingDetectionRes", {"ResponseCode": s.response_code,
                                                 "DC_EVSEStatus": self.evse_status(s),
                                                 "EVSEPresentVoltage": pv(s.present_voltage_v, "V", -1)})

    def req_SessionStop(self, s):
        return self.m(s, "SessionStopReq", {})

    def res_SessionStop(self, s):
        return self.m(s, "SessionStopRes", {"ResponseCode": s.response_code})
