"""ISO 15118-2 (AC and DC; EIM and Plug & Charge) message trees.

Element names, order and optional elements: the ISO 15118-2 XSDs (J-XSD-2) as the dSPACE
reference captures show them (ISO-2_DC_DS5366, ISO-2_AC_DS5366, ISO-2_DC_Pause_DS5366,
ISO-2_*_PnC_TLS_*_RiseV2G): DC_EVSEStatus order NotificationMaxDelay, EVSENotification,
EVSEIsolationStatus, EVSEStatusCode; ServiceDiscoveryRes PaymentOptionList and
SupportedEnergyTransferMode; a 24-hour PMaxSchedule with PMax as a PhysicalValue in W;
CurrentDemandRes ending with EVSEID and SAScheduleTupleID (mandatory in -2, PROTOCOL_FACTS §5);
ChargingStatusRes with EVSEMaxCurrent, MeterInfo and ReceiptRequired (true only with PnC,
[V2G2-691]); AC_EVSEStatus with RCD.

Plug & Charge: PaymentServiceSelection Contract, PaymentDetailsReq (eMAID, contract certificate
chain: pki_data.py, a real chain), PaymentDetailsRes GenChallenge (16 bytes [V2G2-697]),
AuthorizationReq with Id, GenChallenge and a header Signature [V2G2-684], MeteringReceiptReq
(Id, SessionID = header SessionID, SAScheduleTupleID, MeterInfo) when the SECC sets
ReceiptRequired, both really signed with the contract certificate's key (samples/signing.py:
the EXI-fragment digest and ECDSA P-256 over SignedInfo, ISO 15118-2 §7.9.2.4.2). The TLS channel PnC requires ([V2G2-634]) is out of the simulator's
reach: these messages travel over plain TCP (docs/simulator.md).
"""
from __future__ import annotations

import random

from ccs_analyzer.dissectors.exi.namespaces import NS_ISO2

from . import pki_data, signing
from .dialects import Dialect
from .din import msg
from .physical import pv


class Iso2Dialect(Dialect):
    protocol = "ISO 15118-2"
    namespace = NS_ISO2
    major, minor = 2, 0

    @property
    def names(self):
        return {"PaymentSelection": "PaymentServiceSelection",
                "ChargeLoop": "CurrentDemand" if self.mode == "DC" else "ChargingStatus"}

    @property
    def setup(self):
        if self.payment == "PnC" and self.certificate_installation:
            return ("ServiceDiscovery", "PaymentSelection", "CertificateInstallation", "PaymentDetails",
                    "Authorization")
        if self.payment == "PnC":
            return ("ServiceDiscovery", "PaymentSelection", "PaymentDetails", "Authorization")
        return ("ServiceDiscovery", "PaymentSelection", "Authorization")

    # ------------------------------------------------------------------ common parts
    def ev_status(self, s) -> dict:
        return {"EVReady": s.ev_ready, "EVErrorCode": s.ev_error, "EVRESSSOC": int(s.bat.soc)}

    def evse_status(self, s) -> dict:
        if self.mode == "AC":
            return {"NotificationMaxDelay": s.notification_delay, "EVSENotification": s.notification,
                    "RCD": s.rcd}
        return {"NotificationMaxDelay": s.notification_delay, "EVSENotification": s.notification,
                "EVSEIsolationStatus": s.isolation, "EVSEStatusCode": s.evse_status_code}

    def status_key(self) -> str:
        return "AC_EVSEStatus" if self.mode == "AC" else "DC_EVSEStatus"

    def m(self, s, name, body, sid=None, header_extra=None):
        t = msg(s.sid if sid is None else sid, name, body)
        if header_extra:
            t["V2G_Message"]["Header"].update(header_extra)
        return t

    def meter_info(self, s) -> dict:
        mi = {"MeterID": s.meter_id, "MeterReading": int(s.meter_wh)}
        if self.payment == "PnC":
            mi["SigMeterReading"] = s.sig_meter_reading
        mi["MeterStatus"] = 0
        mi["TMeter"] = int(s.now)
        return mi

    # ------------------------------------------------------------------ steps
    def req_SessionSetup(self, s):
        return self.m(s, "SessionSetupReq", {"EVCCID": s.evccid_hex}, sid=s.setup_sid)

    def res_SessionSetup(self, s):
        return self.m(s, "SessionSetupRes", {"ResponseCode": s.response_code, "EVSEID": s.evseid,
                                             "EVSETimeStamp": int(s.now)})

    def req_ServiceDiscovery(self, s):
        return self.m(s, "ServiceDiscoveryReq", {})

    def res_ServiceDiscovery(self, s):
        body = {"ResponseCode": s.response_code,
                "PaymentOptionList": {"PaymentOption": (["Contract", "ExternalPayment"]
                                                        if self.payment == "PnC" else ["ExternalPayment"])},
                "ChargeService": {"ServiceID": 1, "ServiceCategory": "EVCharging", "FreeService": False,
                                  "SupportedEnergyTransferMode": {"EnergyTransferMode": [s.energy_mode]}}}
        if self.payment == "PnC":
            body["ServiceList"] = {"Service": [{"ServiceID": 2, "ServiceName": "Certificate",
                                                "ServiceCategory": "ContractCertificate",
                                                "FreeService": True}]}
        return self.m(s, "ServiceDiscoveryRes", body)

    def req_PaymentSelection(self, s):
        return self.m(s, "PaymentServiceSelectionReq", {
            "SelectedPaymentOption": "Contract" if self.payment == "PnC" else "ExternalPayment",
            "SelectedServiceList": {"SelectedService": [{"ServiceID": 1}]}})

    def res_PaymentSelection(self, s):
        return self.m(s, "PaymentServiceSelectionRes", {"ResponseCode": s.response_code})

    def req_PaymentDetails(self, s):
        return self.m(s, "PaymentDetailsReq", {
            "eMAID": pki_data.EMAID,
            "ContractSignatureCertChain": {
                "Certificate": "".join(pki_data.CONTRACT_CERT),
                "SubCertificates": {"Certificate": ["".join(pki_data.MO_SUBCA2_CERT),
                                                    "".join(pki_data.MO_SUBCA1_CERT)]}}})

    def req_CertificateInstallation(self, s):
        """The EV's OEM provisioning certificate and the roots it trusts, signed with the
        provisioning key (ISO 15118-2 §8.4.3.11 CertificateInstallationReq)."""
        root = pki_data.cert(pki_data.V2G_ROOT_FOR_CPS)
        t = self.m(s, "CertificateInstallationReq", {
            "Id": "ID1", "OEMProvisioningCert": pki_data.OEM_PROV_CERT,
            "ListOfRootCertificateIDs": {"RootCertificateID": [{
                "X509IssuerName": root.issuer.rfc4514_string(), "X509SerialNumber": root.serial_number}]}})
        t["V2G_Message"]["Header"]["Signature"] = signing.marker("oem")
        return t

    def res_CertificateInstallation(self, s):
        """The new contract: the CPS chain, the contract chain, its private key encrypted for
        the EV, the ECDH public key and the eMAID, each with an Id, signed by the CPS leaf (the
        four References of the RISE-V2G reference capture)."""
        rng = random.Random(f"cert-install/{s.sid}")
        t = self.m(s, "CertificateInstallationRes", {
            "ResponseCode": s.response_code,
            "SAProvisioningCertificateChain": {
                "Certificate": pki_data.CPS_CERT,
                "SubCertificates": {"Certificate": [pki_data.CPS_SUBCA2_CERT, pki_data.CPS_SUBCA1_CERT]}},
            "ContractSignatureCertChain": {
                "Id": "ID1", "Certificate": pki_data.CONTRACT_CERT,
                "SubCertificates": {"Certificate": [pki_data.MO_SUBCA2_CERT, pki_data.MO_SUBCA1_CERT]}},
            "ContractSignatureEncryptedPrivateKey": {"Id": "ID2", "value": bytes(rng.randrange(256) for _ in range(48)).hex()},
            "DHpublickey": {"Id": "ID3", "value": "04" + bytes(rng.randrange(256) for _ in range(64)).hex()},
            "eMAID": {"Id": "ID4", "value": pki_data.EMAID}})
        t["V2G_Message"]["Header"]["Signature"] = signing.marker("cps")
        return t

    def res_PaymentDetails(self, s):
        return self.m(s, "PaymentDetailsRes", {"ResponseCode": s.response_code,
                                               "GenChallenge": s.gen_challenge,
                                               "EVSETimeStamp": int(s.now)})

    def req_Authorization(self, s):
        if self.payment == "PnC" and s.first_authorization:
            return self.m(s, "AuthorizationReq", {"Id": "ID1", "GenChallenge": s.gen_challenge},
                          header_extra={"Signature": signing.marker("contract")})
        return self.m(s, "AuthorizationReq", {})

    def res_Authorization(self, s):
        return self.m(s, "AuthorizationRes", {"ResponseCode": s.response_code,
                                              "EVSEProcessing": s.processing})

    def req_ChargeParameterDiscovery(self, s):
        b = s.bat
        if self.mode == "AC":
            param = {"AC_EVChargeParameter": {
                "DepartureTime": s.departure_time_s,
                "EAmount": pv(s.energy_request_wh, "Wh", 1),
                "EVMaxVoltage": pv(s.ev_ac_max_voltage_v, "V", 0),
                "EVMaxCurrent": pv(s.ev_ac_max_current_a, "A", -1),
                "EVMinCurrent": pv(s.ev_ac_min_current_a, "A", -1)}}
        else:
            param = {"DC_EVChargeParameter": {
                "DepartureTime": s.departure_time_s,
                "DC_EVStatus": self.ev_status(s),
                "EVMaximumCurrentLimit": pv(b.max_current_a, "A", -1),
                "EVMaximumPowerLimit": pv(b.max_power_w, "W", 1),
                "EVMaximumVoltageLimit": pv(b.max_voltage_v, "V", -1),
                "EVEnergyCapacity": pv(b.capacity_wh, "Wh", 1),
                "EVEnergyRequest": pv(s.energy_request_wh, "Wh", 1),
                "FullSOC": int(b.soc_target), "BulkSOC": min(100, int(b.taper_soc))}}
        return self.m(s, "ChargeParameterDiscoveryReq", {
            "MaxEntriesSAScheduleTuple": 3,
            "RequestedEnergyTransferMode": s.energy_mode, **param})

    def res_ChargeParameterDiscovery(self, s):
        if self.mode == "AC":
            pmax = s.ac.max_power_w
            param = {"AC_EVSEChargeParameter": {
                "AC_EVSEStatus": self.evse_status(s),
                "EVSENominalVoltage": pv(s.ac.nominal_voltage_v, "V", -1),
                "EVSEMaxCurrent": pv(s.ac.max_current_a, "A", -1)}}
        else:
            d = s.dc
            pmax = d.max_power_w
            param = {"DC_EVSEChargeParameter": {
                "DC_EVSEStatus": self.evse_status(s),
                "EVSEMaximumCurrentLimit": pv(d.max_current_a, "A", -1),
                "EVSEMaximumPowerLimit": pv(d.max_power_w, "W", 1),
                "EVSEMaximumVoltageLimit": pv(d.max_voltage_v, "V", -1),
                "EVSEMinimumCurrentLimit": pv(d.min_current_a, "A", -1),
                "EVSEMinimumVoltageLimit": pv(d.min_voltage_v, "V", -1),
                "EVSECurrentRegulationTolerance": pv(d.current_regulation_tolerance_a, "A", -1),
                "EVSEPeakCurrentRipple": pv(d.peak_current_ripple_a, "A", -1),
                "EVSEEnergyToBeDelivered": pv(s.energy_request_wh, "Wh", 1)}}
        body = {"ResponseCode": s.response_code, "EVSEProcessing": s.processing}
        if s.processing == "Finished":
            body["SAScheduleList"] = {"SAScheduleTuple": [{
                "SAScheduleTupleID": s.schedule_tuple_id,
                "PMaxSchedule": {"PMaxScheduleEntry": [
                    {"RelativeTimeInterval": {"start": 0, "duration": 86400},
                     "PMax": pv(pmax, "W", 1)}]}}]}
            if self.payment == "PnC" and self.signed_sales_tariff:
                # a one-level tariff, signed by the mobility operator (its Sub-CA 2 of the
                # contract chain): the header Signature references the SalesTariff's Id
                body["SAScheduleList"]["SAScheduleTuple"][0]["SalesTariff"] = {
                    "Id": "ID1", "SalesTariffID": 1, "NumEPriceLevels": 1,
                    "SalesTariffEntry": [{"RelativeTimeInterval": {"start": 0, "duration": 86400},
                                          "EPriceLevel": 1}]}
        body.update(param)
        t = self.m(s, "ChargeParameterDiscoveryRes", body)
        if "SalesTariff" in str(body.get("SAScheduleList", "")):
            t["V2G_Message"]["Header"]["Signature"] = signing.marker("mo-subca2")
        return t

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
        body = {"ChargeProgress": s.charge_progress, "SAScheduleTupleID": s.schedule_tuple_id}
        if self.mode == "AC" and s.charge_progress == "Start":
            body["ChargingProfile"] = {"ProfileEntry": [{
                "ChargingProfileEntryStart": 0,
                "ChargingProfileEntryMaxPower": pv(s.ac.max_power_w, "W", 1),
                "ChargingProfileEntryMaxNumberOfPhasesInUse": s.ac.phases}]}
        if self.mode == "DC":
            body["DC_EVPowerDeliveryParameter"] = {"DC_EVStatus": self.ev_status(s),
                                                   "BulkChargingComplete": s.bulk_complete,
                                                   "ChargingComplete": s.charging_complete}
        return self.m(s, "PowerDeliveryReq", body)

    def res_PowerDelivery(self, s):
        return self.m(s, "PowerDeliveryRes", {"ResponseCode": s.response_code,
                                              self.status_key(): self.evse_status(s)})

    def req_ChargeLoop(self, s):
        if self.mode == "AC":
            return self.m(s, "ChargingStatusReq", {})
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
        if self.mode == "AC":
            body = {"ResponseCode": s.response_code, "EVSEID": s.evseid,
                    "SAScheduleTupleID": s.schedule_tuple_id,
                    "EVSEMaxCurrent": pv(s.ac.max_current_a, "A", -1),
                    "MeterInfo": self.meter_info(s),
                    "ReceiptRequired": s.receipt_required,
                    "AC_EVSEStatus": self.evse_status(s)}
            return self.m(s, "ChargingStatusRes", body)
        d = s.dc
        cur, volt, powr = s.limits_achieved
        body = {"ResponseCode": s.response_code, "DC_EVSEStatus": self.evse_status(s),
                "EVSEPresentVoltage": pv(s.present_voltage_v, "V", -1),
                "EVSEPresentCurrent": pv(s.present_current_a, "A", -1),
                "EVSECurrentLimitAchieved": cur, "EVSEVoltageLimitAchieved": volt,
                "EVSEPowerLimitAchieved": powr,
                "EVSEMaximumVoltageLimit": pv(d.max_voltage_v, "V", -1),
                "EVSEMaximumCurrentLimit": pv(d.max_current_a, "A", -1),
                "EVSEMaximumPowerLimit": pv(d.max_power_w, "W", 1),
                "EVSEID": s.evseid, "SAScheduleTupleID": s.schedule_tuple_id}
        if self.payment == "PnC":
            body["MeterInfo"] = self.meter_info(s)
            body["ReceiptRequired"] = s.receipt_required
        return self.m(s, "CurrentDemandRes", body)

    def req_MeteringReceipt(self, s):
        return self.m(s, "MeteringReceiptReq", {"Id": "id1", "SessionID": s.sid,
                                                "SAScheduleTupleID": s.schedule_tuple_id,
                                                "MeterInfo": self.meter_info(s)},
                      header_extra={"Signature": signing.marker("contract")})

    def res_MeteringReceipt(self, s):
        return self.m(s, "MeteringReceiptRes", {"ResponseCode": s.response_code,
                                                self.status_key(): self.evse_status(s)})

    def req_WeldingDetection(self, s):
        return self.m(s, "WeldingDetectionReq", {"DC_EVStatus": self.ev_status(s)})

    def res_WeldingDetection(self, s):
        return self.m(s, "WeldingDetectionRes", {"ResponseCode": s.response_code,
                                                 "DC_EVSEStatus": self.evse_status(s),
                                                 "EVSEPresentVoltage": pv(s.present_voltage_v, "V", -1)})

    def req_SessionStop(self, s):
        return self.m(s, "SessionStopReq", {"ChargingSession": s.charging_session})

    def res_SessionStop(self, s):
        return self.m(s, "SessionStopRes", {"ResponseCode": s.response_code})
