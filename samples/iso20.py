"""ISO 15118-20 (DC and AC; EIM and Plug & Charge) message trees.

Element names, order and optional elements: the ISO 15118-20 XSDs (V2G_CI_CommonMessages,
V2G_CI_CommonTypes, V2G_CI_DC, V2G_CI_AC; J-XSD-20) as the dSPACE / Josev reference captures
show them (ISO-20_mTLS_DC_DS5366_Josev, ISO-20_BPT_AC_DS5366_Josev): every message carries a
MessageHeader {SessionID (8 octets), TimeStamp (epoch s)}; values are RationalNumbers;
AuthorizationSetupRes offers EIM; ServiceDetailRes lists parameter sets (Connector,
ControlMode 1 = Scheduled / 2 = Dynamic, MobilityNeedsMode, Pricing); ScheduleExchange and the
charge loop use the control mode selected in ServiceSelection (PROTOCOL_FACTS §5).

V2GTP payload types (PROTOCOL_FACTS §1.2, E-D20 payload_type.hpp): CommonMessages 0x8002,
AC_* 0x8003, DC_* 0x8004; supportedAppProtocol 0x8001. Service IDs: 1 AC, 2 DC (Table 204).

Plug & Charge: AuthorizationSetupRes offers EIM and PnC with a GenChallenge
(PnC_ASResAuthorizationMode); the first AuthorizationReq selects PnC and carries
PnC_AReqAuthorizationMode (Id, the GenChallenge, the contract certificate chain on secp521r1,
samples/pki_data.py) signed in the header with the contract key (samples/signing.py: SHA-512
digest, ECDSA secp521r1, ISO 15118-20 §8.4).

EVSENotification values of -20 differ from DIN / ISO-2: the session state's StopCharging maps
to Terminate and ReNegotiation to ScheduleRenegotiation; "None" omits the optional EVSEStatus.
The TLS 1.3 channel -20 requires ([V2G20-1237]) is out of the simulator's reach; the messages
go over plain TCP, as the dSPACE references ISO-20_BPT_AC_DS5366_Josev do.
"""
from __future__ import annotations

import random

from ccs_analyzer.dissectors.exi.namespaces import NS_ISO20_AC as NS_AC, NS_ISO20_CM as NS_CM, \
    NS_ISO20_DC as NS_DC

from . import pki_data, signing
from .dialects import Dialect
from .physical import rational

_NOTIFICATION_20 = {"StopCharging": "Terminate", "ReNegotiation": "ScheduleRenegotiation"}
_MODE_SPECIFIC = {"ChargeParameterDiscovery", "CableCheck", "PreCharge", "ChargeLoop", "WeldingDetection"}


class Iso20Dialect(Dialect):
    protocol = "ISO 15118-20"
    major, minor = 1, 0

    @property
    def namespace(self):
        return NS_DC if self.mode == "DC" else NS_AC

    @property
    def names(self):
        p = f"{self.mode}_"
        return {"PaymentSelection": "ServiceSelection", "ChargeParameterDiscovery": p + "ChargeParameterDiscovery",
                "CableCheck": p + "CableCheck", "PreCharge": p + "PreCharge", "ChargeLoop": p + "ChargeLoop",
                "WeldingDetection": p + "WeldingDetection"}

    def namespace_of(self, step: str) -> str:
        return self.namespace if step in _MODE_SPECIFIC else NS_CM

    def payload_type(self, step: str) -> int:
        if step in _MODE_SPECIFIC:
            return 0x8004 if self.mode == "DC" else 0x8003
        return 0x8002

    @property
    def service_id(self) -> int:
        return 2 if self.mode == "DC" else 1

    @property
    def control_mode_id(self) -> int:
        return 2 if self.control_mode == "Dynamic" else 1

    # ------------------------------------------------------------------ common parts
    def m(self, s, name, body, sid=None):
        return {name: {"Header": {"SessionID": s.sid if sid is None else sid, "TimeStamp": int(s.now)},
                       **body}}

    def evse_status(self, s) -> dict | None:
        if s.notification == "None":
            return None
        return {"NotificationMaxDelay": s.notification_delay,
                "EVSENotification": _NOTIFICATION_20.get(s.notification, s.notification)}

    def with_status(self, body: dict, s, key="EVSEStatus") -> dict:
        st = self.evse_status(s)
        if st is not None:
            body[key] = st
        return body

    def meter_info(self, s) -> dict:
        return {"MeterID": s.meter_id, "ChargedEnergyReadingWh": int(s.meter_wh), "MeterStatus": 0,
                "MeterTimestamp": int(s.now)}

    # ------------------------------------------------------------------ steps
    def req_SessionSetup(self, s):
        return self.m(s, "SessionSetupReq", {"EVCCID": s.evccid_20}, sid=s.setup_sid)

    def res_SessionSetup(self, s):
        return self.m(s, "SessionSetupRes", {"ResponseCode": s.response_code, "EVSEID": s.evseid})

    def req_AuthorizationSetup(self, s):
        return self.m(s, "AuthorizationSetupReq", {})

    @property
    def setup(self):
        steps = ("AuthorizationSetup", "Authorization", "ServiceDiscovery", "ServiceDetail", "PaymentSelection")
        if self.payment == "PnC" and self.certificate_installation:
            return steps[:1] + ("CertificateInstallation",) + steps[1:]
        return steps

    def req_CertificateInstallation(self, s):
        """ISO 15118-20 CertificateInstallationReq: the OEM provisioning chain (Id, signed with
        its key: secp521r1 / SHA-512), the roots the EV trusts, one contract chain wanted."""
        root = pki_data.cert(pki_data.CPS_CHAIN_20[2])
        t = self.m(s, "CertificateInstallationReq", {
            "OEMProvisioningCertificateChain": {"Id": "ID1", "Certificate": pki_data.OEM_PROV_CHAIN_20[0],
                                                "SubCertificates": {"Certificate": pki_data.OEM_PROV_CHAIN_20[1:]}},
            "ListOfRootCertificateIDs": {"RootCertificateID": [{
                "X509IssuerName": root.issuer.rfc4514_string(), "X509SerialNumber": root.serial_number}]},
            "MaximumContractCertificateChains": 1})
        t["CertificateInstallationReq"]["Header"]["Signature"] = signing.marker("oem-20")
        return t

    def res_CertificateInstallation(self, s):
        """ISO 15118-20 CertificateInstallationRes: the CPS chain and SignedInstallationData
        (Id: the contract chain, ECDH curve SECP521, the 133-octet DH public key, the 94-octet
        encrypted private key), signed by the CPS leaf."""
        rng = random.Random(f"cert-install-20/{s.sid}")
        t = self.m(s, "CertificateInstallationRes", {
            "ResponseCode": s.response_code, "EVSEProcessing": "Finished",
            "CPSCertificateChain": {"Certificate": pki_data.CPS_CHAIN_20[0],
                                    "SubCertificates": {"Certificate": pki_data.CPS_CHAIN_20[1:]}},
            "SignedInstallationData": {
                "Id": "ID1",
                "ContractCertificateChain": {
                    "Certificate": pki_data.CONTRACT_CERT_20,
                    "SubCertificates": {"Certificate": [pki_data.MO_SUBCA2_CERT_20, pki_data.MO_SUBCA1_CERT_20]}},
                "ECDHCurve": "SECP521",
                "DHPublicKey": "04" + bytes(rng.randrange(256) for _ in range(132)).hex(),
                "SECP521_EncryptedPrivateKey": bytes(rng.randrange(256) for _ in range(94)).hex()},
            "RemainingContractCertificateChains": 0})
        t["CertificateInstallationRes"]["Header"]["Signature"] = signing.marker("cps-20")
        return t

    def res_AuthorizationSetup(self, s):
        if self.payment == "PnC":
            return self.m(s, "AuthorizationSetupRes", {"ResponseCode": s.response_code,
                                                       "AuthorizationServices": ["EIM", "PnC"],
                                                       "CertificateInstallationService": bool(self.certificate_installation),
                                                       "PnC_ASResAuthorizationMode": {"GenChallenge": s.gen_challenge}})
        return self.m(s, "AuthorizationSetupRes", {"ResponseCode": s.response_code,
                                                   "AuthorizationServices": ["EIM"],
                                                   "CertificateInstallationService": False,
                                                   "EIM_ASResAuthorizationMode": {}})

    def req_Authorization(self, s):
        if self.payment == "PnC" and s.first_authorization:
            t = self.m(s, "AuthorizationReq", {
                "SelectedAuthorizationService": "PnC",
                "PnC_AReqAuthorizationMode": {
                    "Id": "ID1", "GenChallenge": s.gen_challenge,
                    "ContractCertificateChain": {
                        "Certificate": pki_data.CONTRACT_CERT_20,
                        "SubCertificates": {"Certificate": [pki_data.MO_SUBCA2_CERT_20,
                                                            pki_data.MO_SUBCA1_CERT_20]}}}})
            t["AuthorizationReq"]["Header"]["Signature"] = signing.marker("contract-20")
            return t
        return self.m(s, "AuthorizationReq", {"SelectedAuthorizationService": "EIM",
                                              "EIM_AReqAuthorizationMode": {}})

    def res_Authorization(self, s):
        return self.m(s, "AuthorizationRes", {"ResponseCode": s.response_code, "EVSEProcessing": s.processing})

    def req_ServiceDiscovery(self, s):
        return self.m(s, "ServiceDiscoveryReq", {})

    def res_ServiceDiscovery(self, s):
        return self.m(s, "ServiceDiscoveryRes", {
            "ResponseCode": s.response_code, "ServiceRenegotiationSupported": False,
            "EnergyTransferServiceList": {"Service": [{"ServiceID": self.service_id, "FreeService": False}]}})

    def req_ServiceDetail(self, s):
        return self.m(s, "ServiceDetailReq", {"ServiceID": self.service_id})

    def res_ServiceDetail(self, s):
        params = [{"Name": "Connector", "intValue": 2 if self.mode == "DC" else 3},
                  {"Name": "ControlMode", "intValue": self.control_mode_id},
                  {"Name": "MobilityNeedsMode", "intValue": 1},
                  {"Name": "Pricing", "intValue": 0}]
        if self.mode == "AC":
            params.append({"Name": "EVSENominalVoltage", "intValue": int(s.ac.nominal_voltage_v)})
        return self.m(s, "ServiceDetailRes", {
            "ResponseCode": s.response_code, "ServiceID": self.service_id,
            "ServiceParameterList": {"ParameterSet": [{"ParameterSetID": 1, "Parameter": params}]}})

    def req_PaymentSelection(self, s):
        return self.m(s, "ServiceSelectionReq", {
            "SelectedEnergyTransferService": {"ServiceID": self.service_id, "ParameterSetID": 1}})

    def res_PaymentSelection(self, s):
        return self.m(s, "ServiceSelectionRes", {"ResponseCode": s.response_code})

    def req_ChargeParameterDiscovery(self, s):
        b = s.bat
        if self.mode == "AC":
            return self.m(s, "AC_ChargeParameterDiscoveryReq", {"AC_CPDReqEnergyTransferMode": {
                "EVMaximumChargePower": rational(s.ev_ac_max_power_w, 1),
                "EVMinimumChargePower": rational(s.ev_ac_min_power_w, 0)}})
        return self.m(s, "DC_ChargeParameterDiscoveryReq", {"DC_CPDReqEnergyTransferMode": {
            "EVMaximumChargePower": rational(b.max_power_w, 1),
            "EVMinimumChargePower": rational(1000, 0),
            "EVMaximumChargeCurrent": rational(b.max_current_a, -1),
            "EVMinimumChargeCurrent": rational(b.min_current_a, -1),
            "EVMaximumVoltage": rational(b.max_voltage_v, -1),
            "EVMinimumVoltage": rational(b.min_voltage_v, -1),
            "TargetSOC": int(b.soc_target)}})

    def res_ChargeParameterDiscovery(self, s):
        if self.mode == "AC":
            a = s.ac
            return self.m(s, "AC_ChargeParameterDiscoveryRes", {
                "ResponseCode": s.response_code, "AC_CPDResEnergyTransferMode": {
                    "EVSEMaximumChargePower": rational(a.max_power_w, 1),
                    "EVSEMinimumChargePower": rational(a.phases * a.nominal_voltage_v * 6, 0),
                    "EVSENominalFrequency": rational(a.frequency_hz, -1)}})
        d = s.dc
        return self.m(s, "DC_ChargeParameterDiscoveryRes", {
            "ResponseCode": s.response_code, "DC_CPDResEnergyTransferMode": {
                "EVSEMaximumChargePower": rational(d.max_power_w, 1),
                "EVSEMinimumChargePower": rational(0, 0),
                "EVSEMaximumChargeCurrent": rational(d.max_current_a, -1),
                "EVSEMinimumChargeCurrent": rational(d.min_current_a, -1),
                "EVSEMaximumVoltage": rational(d.max_voltage_v, -1),
                "EVSEMinimumVoltage": rational(d.min_voltage_v, -1)}})

    def req_ScheduleExchange(self, s):
        b = s.bat
        if self.control_mode == "Dynamic":
            mode = {"Dynamic_SEReqControlMode": {
                "DepartureTime": s.departure_time_s, "MinimumSOC": 20, "TargetSOC": int(b.soc_target),
                "EVTargetEnergyRequest": rational(s.energy_request_wh, 1),
                "EVMaximumEnergyRequest": rational(s.energy_request_wh * 1.2, 1),
                "EVMinimumEnergyRequest": rational(0, 0)}}
        else:
            mode = {"Scheduled_SEReqControlMode": {
                "DepartureTime": s.departure_time_s,
                "EVTargetEnergyRequest": rational(s.energy_request_wh, 1),
                "EVMaximumEnergyRequest": rational(s.energy_request_wh * 1.2, 1),
                "EVMinimumEnergyRequest": rational(0, 0)}}
        return self.m(s, "ScheduleExchangeReq", {"MaximumSupportingPoints": 1024, **mode})

    def res_ScheduleExchange(self, s):
        if self.control_mode == "Dynamic":
            mode = {"Dynamic_SEResControlMode": {}}
        else:
            pmax = s.dc.max_power_w if self.mode == "DC" else s.ac.max_power_w
            mode = {"Scheduled_SEResControlMode": {"ScheduleTuple": [{
                "ScheduleTupleID": s.schedule_tuple_id,
                "ChargingSchedule": {"PowerSchedule": {
                    "TimeAnchor": int(s.now),
                    "PowerScheduleEntries": {"PowerScheduleEntry": [
                        {"Duration": 86400, "Power": rational(pmax, 1)}]}}}}]}}
        return self.m(s, "ScheduleExchangeRes", {"ResponseCode": s.response_code,
                                                 "EVSEProcessing": s.processing, **mode})

    def req_CableCheck(self, s):
        return self.m(s, "DC_CableCheckReq", {})

    def res_CableCheck(self, s):
        return self.m(s, "DC_CableCheckRes", {"ResponseCode": s.response_code, "EVSEProcessing": s.processing})

    def req_PreCharge(self, s):
        return self.m(s, "DC_PreChargeReq", {"EVProcessing": s.ev_processing,
                                             "EVPresentVoltage": rational(s.bat.ocv(), -1),
                                             "EVTargetVoltage": rational(s.target_voltage_v, -1)})

    def res_PreCharge(self, s):
        return self.m(s, "DC_PreChargeRes", {"ResponseCode": s.response_code,
                                             "EVSEPresentVoltage": rational(s.present_voltage_v, -1)})

    def req_PowerDelivery(self, s):
        body = {"EVProcessing": s.ev_processing, "ChargeProgress": s.charge_progress}
        if s.charge_progress == "Start" and s.ev_processing == "Finished":
            power = s.bat.max_power_w if self.mode == "DC" else s.ev_ac_max_power_w
            mode = ({"Dynamic_EVPPTControlMode": {}} if self.control_mode == "Dynamic" else
                    {"Scheduled_EVPPTControlMode": {"SelectedScheduleTupleID": s.schedule_tuple_id}})
            body["EVPowerProfile"] = {"TimeAnchor": int(s.now), **mode,
                                      "EVPowerProfileEntries": {"EVPowerProfileEntry": [
                                          {"Duration": 3600, "Power": rational(power, 1)}]}}
        return self.m(s, "PowerDeliveryReq", body)

    def res_PowerDelivery(self, s):
        return self.m(s, "PowerDeliveryRes", self.with_status({"ResponseCode": s.response_code}, s))

    def display(self, s) -> dict:
        b = s.bat
        return {"PresentSOC": int(b.soc), "TargetSOC": int(b.soc_target),
                "RemainingTimeToTargetSOC": int(s.remaining_full_s),
                "ChargingComplete": s.charging_complete}

    def req_ChargeLoop(self, s):
        b = s.bat
        if self.mode == "AC":
            return self.m(s, "AC_ChargeLoopReq", {
                "DisplayParameters": self.display(s), "MeterInfoRequested": s.meter_info_requested,
                "Scheduled_AC_CLReqControlMode": {
                    "EVMaximumChargePower": rational(s.ev_ac_max_power_w, 1),
                    "EVPresentActivePower": rational(s.ac_power_w, 1)}})
        if self.control_mode == "Dynamic":
            mode = {"Dynamic_DC_CLReqControlMode": {
                "EVTargetEnergyRequest": rational(s.energy_left_wh, 1),
                "EVMaximumEnergyRequest": rational(s.energy_left_wh * 1.2, 1),
                "EVMinimumEnergyRequest": rational(0, 0),
                "EVMaximumChargePower": rational(b.max_power_w, 1),
                "EVMinimumChargePower": rational(1000, 0),
                "EVMaximumChargeCurrent": rational(s.target_current_a, -1),
                "EVMaximumVoltage": rational(b.max_voltage_v, -1),
                "EVMinimumVoltage": rational(b.min_voltage_v, -1)}}
        else:
            mode = {"Scheduled_DC_CLReqControlMode": {
                "EVTargetCurrent": rational(s.target_current_a, -1),
                "EVTargetVoltage": rational(s.target_voltage_v, -1),
                "EVMaximumChargePower": rational(b.max_power_w, 1),
                "EVMaximumChargeCurrent": rational(b.max_current_a, -1),
                "EVMaximumVoltage": rational(b.max_voltage_v, -1)}}
        return self.m(s, "DC_ChargeLoopReq", {
            "DisplayParameters": self.display(s), "MeterInfoRequested": s.meter_info_requested,
            "EVPresentVoltage": rational(s.bat.terminal_voltage(s.present_current_a), -1), **mode})

    def res_ChargeLoop(self, s):
        body = self.with_status({"ResponseCode": s.response_code}, s)
        if s.meter_info_requested:
            body["MeterInfo"] = self.meter_info(s)
        if self.mode == "AC":
            a = s.ac
            body["Scheduled_AC_CLResControlMode"] = {
                "EVSETargetActivePower": rational(a.max_power_w, 1),
                "EVSEPresentActivePower": rational(s.ac_power_w, 1)}
            return self.m(s, "AC_ChargeLoopRes", body)
        d = s.dc
        cur, volt, powr = s.limits_achieved
        body.update({"EVSEPresentCurrent": rational(s.present_current_a, -1),
                     "EVSEPresentVoltage": rational(s.present_voltage_v, -1),
                     "EVSEPowerLimitAchieved": powr, "EVSECurrentLimitAchieved": cur,
                     "EVSEVoltageLimitAchieved": volt})
        limits = {"EVSEMaximumChargePower": rational(d.max_power_w, 1),
                  "EVSEMinimumChargePower": rational(0, 0),
                  "EVSEMaximumChargeCurrent": rational(d.max_current_a, -1),
                  "EVSEMaximumVoltage": rational(d.max_voltage_v, -1)}
        key = "Dynamic_DC_CLResControlMode" if self.control_mode == "Dynamic" else "Scheduled_DC_CLResControlMode"
        body[key] = limits
        return self.m(s, "DC_ChargeLoopRes", body)

    def req_WeldingDetection(self, s):
        return self.m(s, "DC_WeldingDetectionReq", {"EVProcessing": s.ev_processing})

    def res_WeldingDetection(self, s):
        return self.m(s, "DC_WeldingDetectionRes", {"ResponseCode": s.response_code,
                                                    "EVSEPresentVoltage": rational(s.present_voltage_v, -1)})

    def req_SessionStop(self, s):
        body = {"ChargingSession": s.charging_session}
        if s.ev_termination_code:
            body["EVTerminationCode"] = s.ev_termination_code
            body["EVTerminationExplanation"] = s.ev_termination_explanation
        return self.m(s, "SessionStopReq", body)

    def res_SessionStop(self, s):
        return self.m(s, "SessionStopRes", {"ResponseCode": s.response_code})
