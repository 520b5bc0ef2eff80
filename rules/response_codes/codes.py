"""Response code rules on FAILED and warning response codes: RSP001, RSP002."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.exchanges import responses
from ccs_analyzer.analyzer.views.signatures import SIGNATURE_REFUSALS, passes_core_validation

from ..base import Rule, judged
from ..helpers import facts, is_failed

#: ResponseCode → (meaning, likely culprit, requirement, PFMEA IDs). FAILED_SequenceError
#: and FAILED_UnknownSession have their own rules (SEQ003/SEQ004, SES005/SES006).
FAILED_CODES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "FAILED": ("the SECC could not process the request (generic failure)", "SECC",
               "ISO 15118-2 [V2G2-539] / DIN 70121 [V2G-DC-665]", ("UC2 111",)),
    "FAILED_SequenceError": ("the EVCC sent a request out of order", "EVCC",
                             "ISO 15118-2 [V2G2-538]", ("UC2 110",)),
    "FAILED_UnknownSession": ("the request carried a SessionID the SECC does not know", "EVCC",
                              "ISO 15118-2 [V2G2-460] / DIN 70121 [V2G-DC-391]", ("UC2 110",)),
    "FAILED_ServiceIDInvalid": ("the EV asked for a ServiceID the SECC did not offer", "EVCC",
                                "ISO 15118-2 [V2G2-425] [V2G2-464]", ("UC2 110",)),
    "FAILED_ServiceSelectionInvalid": ("the EV selected a service the SECC did not offer", "EVCC",
                                       "ISO 15118-2 [V2G2-467] / DIN 70121 [V2G-DC-396]", ("UC2 108",)),
    "FAILED_PaymentSelectionInvalid": ("the EV selected a payment option the SECC did not offer "
                                       "(DIN: only ExternalPayment)", "EVCC",
                                       "ISO 15118-2 [V2G2-465] / DIN 70121 [V2G-DC-395]", ("UC2 112",)),
    "FAILED_CertificateExpired": ("the EV's certificate has expired", "EVCC",
                                  "ISO 15118-2 responseCodeType", ("UC2 113",)),
    "FAILED_SignatureError": ("the signature of the EV's message is invalid", "EVCC",
                              "ISO 15118-2 responseCodeType", ("UC2 113",)),
    "FAILED_NoCertificateAvailable": ("the SECC / its backend has no certificate for the EV", "SECC",
                                      "ISO 15118-2 responseCodeType", ("UC2 114",)),
    "FAILED_CertChainError": ("the EV's certificate chain does not verify", "EVCC",
                              "ISO 15118-2 responseCodeType", ("UC2 113",)),
    "FAILED_ChallengeInvalid": ("the GenChallenge in AuthorizationReq is missing or not the one of "
                                "PaymentDetailsRes", "EVCC", "ISO 15118-2 [V2G2-475] [V2G2-697] [V2G2-684]",
                                ("UC2 113",)),
    "FAILED_ContractCanceled": ("the EV's contract was cancelled", "EVCC",
                                "ISO 15118-2 responseCodeType", ("UC2 113",)),
    "FAILED_WrongChargeParameter": ("the EV's charge parameters are inconsistent (AC/DC parameter "
                                    "set, negative or out-of-range limits)", "EVCC",
                                    "ISO 15118-2 [V2G2-477] / DIN 70121 [V2G-DC-398]", ("UC2 110",)),
    "FAILED_PowerDeliveryNotApplied": ("the EVSE could not apply power (not ready)", "SECC",
                                       "ISO 15118-2 [V2G2-480] / DIN 70121 [V2G-DC-401]", ("UC2 158",)),
    "FAILED_TariffSelectionInvalid": ("the EV selected an SAScheduleTupleID that was not offered", "EVCC",
                                      "ISO 15118-2 [V2G2-479] / DIN 70121 [V2G-DC-400]", ("UC2 170",)),
    "FAILED_ChargingProfileInvalid": ("the EV's ChargingProfile exceeds the selected schedule", "EVCC",
                                      "ISO 15118-2 [V2G2-224] [V2G2-225] [V2G2-478]", ("UC2 170",)),
    "FAILED_EVSEPresentVoltageToLow": ("the EVSE's output voltage is too low", "SECC",
                                       "DIN 70121 responseCodeType", ("UC2 158",)),
    "FAILED_MeteringSignatureNotValid": ("the signature of the EV's metering receipt is invalid", "EVCC",
                                         "ISO 15118-2 responseCodeType", ("UC2 252",)),
    "FAILED_NoChargeServiceSelected": ("the EV selected no charge service", "EVCC",
                                       "ISO 15118-2 [V2G2-804]", ("UC2 110",)),
    "FAILED_WrongEnergyTransferMode": ("the EV requested an energy transfer mode the EVSE did not offer",
                                       "EVCC", "ISO 15118-2 [V2G2-476]", ("UC2 108",)),
    "FAILED_WrongEnergyTransferType": ("the EV requested an energy transfer type the EVSE did not offer",
                                       "EVCC", "DIN 70121 [V2G-DC-397]", ("UC2 108",)),
    "FAILED_ContactorError": ("the EVSE's contactor did not close (or open) in time: EVSE hardware",
                              "SECC", "ISO 15118-2 [V2G2-860] / ISO 15118-20 [V2G20-862]", ("UC2 158",)),
    "FAILED_CertificateNotAllowedAtThisEVSE": ("the EV's certificate is not accepted at this EVSE",
                                               "EVCC", "ISO 15118-2 responseCodeType", ("UC2 113",)),
    "FAILED_CertificateRevoked": ("the EV's certificate was revoked", "EVCC",
                                  "ISO 15118-2 responseCodeType", ("UC2 113",)),
    # ISO 15118-20 only
    "FAILED_AssociationError": ("ACDP association failed", "unknown", "ISO 15118-20 responseCodeType", ()),
    "FAILED_EVPowerProfileInvalid": ("the EV's power profile is invalid", "EVCC",
                                     "ISO 15118-20 responseCodeType", ("UC2 170",)),
    "FAILED_EVPowerProfileViolation": ("the EV violates its power profile", "EVCC",
                                       "ISO 15118-20 responseCodeType", ("UC2 170",)),
    "FAILED_NoEnergyTransferServiceSelected": ("the EV selected no energy transfer service", "EVCC",
                                               "ISO 15118-20 responseCodeType", ("UC2 108",)),
    "FAILED_NoServiceRenegotiationSupported": ("the SECC does not support service renegotiation", "SECC",
                                               "ISO 15118-20 responseCodeType", ("UC2 305",)),
    "FAILED_PauseNotAllowed": ("the SECC does not allow a pause", "SECC", "ISO 15118-20 responseCodeType",
                               ("UC2 173",)),
    "FAILED_PowerToleranceNotConfirmed": ("the EV did not confirm the power tolerance", "EVCC",
                                          "ISO 15118-20 responseCodeType", ("UC2 110",)),
    "FAILED_ScheduleRenegotiation": ("the schedule renegotiation failed", "SECC",
                                     "ISO 15118-20 responseCodeType", ("UC2 306",)),
    "FAILED_ScheduleSelectionInvalid": ("the EV selected a schedule that was not offered", "EVCC",
                                        "ISO 15118-20 responseCodeType", ("UC2 170",)),
    "Failed_NoNegotiation": ("no common application protocol (namespace and major version) between "
                             "the EV's offer and the SECC", "unknown",
                             "ISO 15118-2 [V2G2-172] SupportedAppProtocol", ("UC2 107",)),
}

#: Success codes that warn (and the -20 WARNING_* codes): meaning, culprit.
WARNING_CODES: dict[str, tuple[str, str]] = {
    "OK_CertificateExpiresSoon": ("the EV's contract certificate expires within 21 days [V2G2-690]: "
                                  "renew it (CertificateUpdate)", "EVCC"),
    "WARNING_AuthorizationSelectionInvalid": ("the EV selected an authorization service not offered", "EVCC"),
    "WARNING_CertificateExpired": ("the EV's certificate has expired", "EVCC"),
    "WARNING_CertificateNotYetValid": ("the EV's certificate is not yet valid", "EVCC"),
    "WARNING_CertificateRevoked": ("the EV's certificate was revoked", "EVCC"),
    "WARNING_CertificateValidationError": ("the EV's certificate did not validate", "EVCC"),
    "WARNING_ChallengeInvalid": ("the EV's challenge response is invalid", "EVCC"),
    "WARNING_EIMAuthorizationFailure": ("external identification (EIM) failed", "unknown"),
    "WARNING_eMSPUnknown": ("the EV's eMSP is unknown to the SECC", "EVCC"),
    "WARNING_EVPowerProfileViolation": ("the EV violates its power profile", "EVCC"),
    "WARNING_GeneralPnCAuthorizationError": ("Plug & Charge authorization failed", "unknown"),
    "WARNING_NoCertificateAvailable": ("no certificate available for the EV", "SECC"),
    "WARNING_NoContractMatchingPCIDFound": ("no contract matches the EV's PCID", "EVCC"),
    "WARNING_PowerToleranceNotConfirmed": ("the power tolerance was not confirmed", "EVCC"),
    "WARNING_ScheduleRenegotiationFailed": ("the schedule renegotiation failed", "SECC"),
    "WARNING_StandbyNotAllowed": ("the SECC does not allow standby", "SECC"),
    "WARNING_WPT": ("wireless power transfer warning", "unknown"),
}


#: FAILED codes judged by their own rules (SEQ003/SEQ004, SES005/SES006).
_OWN_RULES = ("FAILED_SequenceError", "FAILED_UnknownSession")


def _status_context(f: dict) -> str:
    parts = [f"{k} {f[k]}" for k in ("EVSEStatusCode", "EVSEIsolationStatus", "EVSEProcessing",
                                      "EVSENotification") if k in f and f[k] not in (None, "None")]
    return f" ({', '.join(parts)})" if parts else ""


class FailedResponseCode(Rule):
    """A response carries a FAILED ResponseCode.

    What it checks: the ResponseCode of every V2G response (DIN 70121, ISO 15118-2,
    ISO 15118-20), with what the code means and whom it points at (code → meaning → likely culprit, e.g.
    FAILED_WrongChargeParameter → EV limits inconsistent (EVCC), FAILED_ContactorError →
    EVSE hardware (SECC), plain FAILED → SECC internal failure). One finding per response
    type and code with the count. FAILED_SequenceError (SEQ003 / SEQ004) and
    FAILED_UnknownSession (SES005 / SES006) are judged by their own rules, which check
    whether the request really was out of order / carried a foreign SessionID;
    supportedAppProtocolRes Failed_NoNegotiation is the handshake rules' (HSK001).
    Why it matters: after a FAILED_* response the session terminates (ISO 15118-2
    [V2G2-539], DIN [V2G-DC-665]); the code names why the SECC refused.
    Fix: the side named by the code: the EVCC for a refused request (parameters, selection,
    certificates), the SECC for its own failures (FAILED, ContactorError,
    PowerDeliveryNotApplied).
    Source: ISO 15118-2 Table 105 responseCodeType; DIN 70121 responseCodeType;
    ISO 15118-20 responseCodeType; PROTOCOL_FACTS §3, §4.0, §4A/§4B/§4C code tables and
    "ISO-2 content rules".

    Example:

        #59 ChargeParameterDiscoveryReq
          → #61 ChargeParameterDiscoveryRes EVSEProcessing=Finished
              ResponseCode=FAILED_WrongChargeParameter
    """

    code = "RSP001"
    title = "FAILED response code"
    severity = "error"
    category = "response-code"
    kinds = ("failed-response", "evse-refused")
    explains = ("ev-stop", "ev-abort", "evse-abort", "no-session-stop", "connection-reset",
                "out-of-sequence")
    culprit = "SECC"
    requirement = "ISO 15118-2 [V2G2-539] / DIN 70121 [V2G-DC-665] session ends after FAILED"
    failure_modes = ("UC2 107", "UC2 111")

    def check(self, session, ctx):
        groups: dict = {}
        for e, req in responses(session, ctx):
            rc = facts(e).get("ResponseCode")
            if not is_failed(rc) or rc in _OWN_RULES or e.name == "supportedAppProtocolRes":
                continue
            groups.setdefault((e.name, rc), []).append((e, req))
        for (name, rc), items in groups.items():
            e, req = items[0]
            meaning, culprit, requirement, fms = FAILED_CODES.get(
                rc, ("an unknown FAILED code", "SECC", self.requirement, ()))
            if rc in SIGNATURE_REFUSALS and req is not None and passes_core_validation((req.info or {}).get("signature")):
                meaning, culprit = ("the SECC calls the EV's signature invalid, but it verifies "
                                    "(SIG005): the SECC's verification is wrong"), "SECC"
            n = len(items)
            more = f" ({n} times, last frame {items[-1][0].frame})" if n > 1 else ""
            to = f" to {req.name} (frame {req.frame})" if req is not None else ""
            who = {"EVCC": "points at the EVCC", "SECC": "points at the SECC"}.get(culprit, "")
            frames = [e.frame, items[-1][0].frame] + ([req.frame] if req is not None else [])
            f = facts(e)
            fnd = self.finding(session, frames,
                               f"{name} (frame {e.frame}) answers {rc}{to}{_status_context(f)}: "
                               f"{meaning}{' — ' + who if who else ''}{more}",
                               time=e.time, culprit=culprit, measured=rc, limit="OK*",
                               evidence={"expected": "ResponseCode OK*", "actual": rc, "message": name,
                                         "request": req.name if req is not None else None,
                                         "meaning": meaning, "count": n,
                                         **{k: f[k] for k in ("EVSEStatusCode", "EVSEIsolationStatus",
                                                              "EVSEProcessing") if k in f}},
                               values=[judged(e, "ResponseCode", rc, expected="OK*")])
            fnd.requirement = requirement
            if fms:
                fnd.failure_modes = list(fms)
            fnd.count = n
            yield fnd


class WarningResponseCode(Rule):
    """A response carries a warning code (OK_CertificateExpiresSoon, ISO 15118-20 WARNING_*).

    What it checks: ResponseCodes that succeed with a warning: OK_CertificateExpiresSoon
    (DIN, ISO 15118-2, -20) and every ISO 15118-20 WARNING_* code, with the meaning and the
    side it concerns. One finding per response type and code.
    Why it matters: the session goes on, but the next one may fail (an expiring contract
    certificate, a failed EIM/PnC authorization that falls back to another service).
    Fix: the side named: renew the contract certificate (EVCC, CertificateUpdate), fix the
    authorization or schedule data.
    Source: ISO 15118-2 [V2G2-690] (certificate expires within 21 days), responseCodeType;
    ISO 15118-20 responseCodeType (WARNING_* do not end the session, E-D20);
    PROTOCOL_FACTS §4.0, §4C.

    Example:

        #66 PaymentDetailsReq → #68 PaymentDetailsRes ResponseCode=OK_CertificateExpiresSoon
    """

    code = "RSP002"
    title = "Warning response code"
    severity = "warning"
    category = "response-code"
    culprit = "EVCC"
    requirement = "ISO 15118-2 [V2G2-690] / ISO 15118-20 responseCodeType WARNING_*"
    failure_modes = ("UC2 113",)

    def check(self, session, ctx):
        groups: dict = {}
        for e, req in responses(session, ctx):
            rc = facts(e).get("ResponseCode")
            if rc in WARNING_CODES or (isinstance(rc, str) and rc.startswith("WARNING_")):
                groups.setdefault((e.name, rc), []).append((e, req))
        for (name, rc), items in groups.items():
            e, req = items[0]
            meaning, culprit = WARNING_CODES.get(rc, ("a warning", "unknown"))
            n = len(items)
            more = f" ({n} times)" if n > 1 else ""
            yield self.finding(session, [e.frame, items[-1][0].frame] + ([req.frame] if req else []),
                               f"{name} (frame {e.frame}) answers {rc}: {meaning}{more}", time=e.time,
                               culprit=culprit, measured=rc, limit="OK",
                               evidence={"expected": "OK", "actual": rc, "meaning": meaning, "count": n},
                               values=[judged(e, "ResponseCode", rc, expected="OK")])
