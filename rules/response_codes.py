"""Response codes: FAILED_* answers, warning codes, EVSE status and notifications, EV error
codes — what each code means and who it points at.

Code tables: DIN 70121, ISO 15118-2 and ISO 15118-20 responseCodeType, DC_EVSEStatusCode,
DC_EVErrorCode, EVSENotification (PROTOCOL_FACTS §4.0, §4A, §4B, §4C code tables and
"Status semantics").
"""
from __future__ import annotations

from ccs_analyzer.analyzer.views.exchanges import responses, with_requests
from ccs_analyzer.analyzer.views.index import v2g_messages
from ccs_analyzer.analyzer.views.signatures import SIGNATURE_REFUSALS, passes_core_validation

from .base import Rule
from .helpers import body, facts, find_first, is_failed, protocol_of_session
from .state_machines import qualifier

# --------------------------------------------------------------------------- code tables
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

#: DC_EVSEStatusCode values that report an EVSE fault.
FAULT_STATUS = {
    "EVSE_EmergencyShutdown": "the EVSE shut down in an emergency (a fault it detected)",
    "EVSE_Malfunction": "the EVSE reports a malfunction",
    "EVSE_UtilityInterruptEvent": "the utility interrupted the supply (a demand-response event)",
}

#: DC_EVErrorCode → meaning.
EV_ERRORS = {
    "FAILED_RESSTemperatureInhibit": "the battery temperature inhibits charging",
    "FAILED_EVShiftPosition": "the vehicle is not in park (shift position)",
    "FAILED_ChargerConnectorLockFault": "the charging connector lock failed",
    "FAILED_EVRESSMalfunction": "the battery (RESS) reports a malfunction",
    "FAILED_ChargingCurrentdifferential": "the current the EV measures differs from the current it "
                                          "expects (EVTargetCurrent / EVSEPresentCurrent)",
    "FAILED_ChargingVoltageOutOfRange": "the charging voltage is out of the EV's range",
    "FAILED_ChargingSystemIncompatibility": "the EV finds the charging system incompatible",
}

#: FAILED codes judged by their own rules (SEQ003/SEQ004, SES005/SES006).
_OWN_RULES = ("FAILED_SequenceError", "FAILED_UnknownSession")

_STOP_SIGNAL_NOTE = {"StopCharging", "Terminate", "Pause"}
_STOP_SIGNAL_STATUS = {"EVSE_Shutdown", *FAULT_STATUS}


def _status_context(f: dict) -> str:
    parts = [f"{k} {f[k]}" for k in ("EVSEStatusCode", "EVSEIsolationStatus", "EVSEProcessing",
                                      "EVSENotification") if k in f and f[k] not in (None, "None")]
    return f" ({', '.join(parts)})" if parts else ""


def _stop_reaction(protocol, e) -> bool:
    """Whether an EV request stops charging: PowerDeliveryReq Stop (DIN ReadyToChargeState
    false; -20 also Standby), SessionStopReq, WeldingDetectionReq."""
    n = e.name
    if n in ("SessionStopReq", "WeldingDetectionReq", "DC_WeldingDetectionReq"):
        return True
    if n == "PowerDeliveryReq":
        return qualifier(protocol, "PowerDelivery", body(e)) in ("Stop", "Standby")
    return False


def _max_delay(e) -> float:
    d = find_first(body(e), "NotificationMaxDelay")
    return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else 0.0


def _end_text(ctx, session) -> str:
    ended = ctx.summaries.get(session.id, {}).get("ended", {})
    how = ended.get("how")
    return f"{how} (frame {ended.get('frame')})" if how else "the session ended"


# --------------------------------------------------------------------------- rules
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
                                                              "EVSEProcessing") if k in f}})
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
                               evidence={"expected": "OK", "actual": rc, "meaning": meaning, "count": n})


def _signal_runs(session, ctx, protocol, is_signal, is_reaction, new_session=("SessionSetupReq",)):
    """Walk a session's messages: each EVSE signal (first response matching ``is_signal``)
    with the EV requests that followed until a reaction (``is_reaction``) or the end.

    Yields dicts: signal (event), delay_s, reaction (event or None), requests (EV requests
    after the signal that were not a reaction), responses (signal-carrying responses)."""
    cur = None
    done = False
    for e in v2g_messages(session, ctx):
        if e.name in new_session:
            if cur is not None:
                yield cur
            cur, done = None, False
            continue
        if done:
            continue
        if e.name.endswith("Req"):
            kind = is_reaction(protocol, e)
            if kind:
                if cur is not None:
                    cur["reaction"] = e
                    cur["reaction_kind"] = kind
                    yield cur
                    cur = None
                if kind in ("stop", True):
                    done = True
                continue
            if cur is not None:
                cur["requests"].append(e)
        elif e.name.endswith("Res"):
            if is_failed(facts(e).get("ResponseCode")):
                continue
            what = is_signal(e)
            if cur is None and what:
                cur = {"signal": e, "what": what, "delay_s": _max_delay(e), "reaction": None,
                       "reaction_kind": None, "requests": [], "responses": [e]}
            elif cur is not None and what:
                cur["responses"].append(e)
    if cur is not None:
        yield cur


def _stop_signal(e):
    f = facts(e)
    parts = []
    st = f.get("EVSEStatusCode")
    if st in _STOP_SIGNAL_STATUS:
        parts.append(st)
    note = f.get("EVSENotification")
    if note in _STOP_SIGNAL_NOTE:
        parts.append(f"EVSENotification {note}")
    return " + ".join(parts) or None


class StopRequestIgnored(Rule):
    """The EV did not stop within NotificationMaxDelay after the EVSE asked it to.

    What it checks: after the first response carrying EVSENotification StopCharging
    (ISO 15118-20: Terminate, Pause) or DC_EVSEStatusCode EVSE_Shutdown (or a fault status:
    EVSE_EmergencyShutdown / EVSE_Malfunction / EVSE_UtilityInterruptEvent), the EV must
    stop — PowerDeliveryReq Stop (DIN: ReadyToChargeState false; -20 also Standby),
    WeldingDetectionReq or SessionStopReq — within the response's NotificationMaxDelay
    (+ ``grace_s``). A finding when the EV sent at least ``min_requests`` other requests
    after the signal and at least one after the deadline; a session that the EVSE ended
    before the deadline, or that the capture cut short, is not the EV's fault. An EVSE_Shutdown
    the EV follows in time is a normal, EVSE-initiated stop: no finding.
    Why it matters: the EVSE is shutting down (user stop, fault, grid event); an EV that
    keeps charging forces the EVSE to cut the power under load or reset the connection.
    Fix (EVCC): on StopCharging / EVSE_Shutdown send PowerDeliveryReq (Stop) within
    NotificationMaxDelay seconds.
    Source: DIN 70121 / ISO 15118-2 DC_EVSEStatusType / AC_EVSEStatusType (EVSENotification,
    NotificationMaxDelay), ISO 15118-20 EVSEStatusType; PROTOCOL_FACTS §4.0 "Status
    semantics" (R-EVCC-CD, PYPLC readme: EVSE_Shutdown → PowerDeliveryReq(Stop)).
    """

    code = "RSP003"
    title = "EV did not react to the EVSE's stop request within NotificationMaxDelay"
    severity = "error"
    category = "response-code"
    kinds = ("stop-ignored",)
    explains = ("stop-ignored", "evse-abort", "no-response", "no-session-stop",
                "connection-reset", "failed-response")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 / DIN 70121 EVSENotification StopCharging within NotificationMaxDelay"
    failure_modes = ("UC2 238",)
    params = {"grace_s": 0.0, "min_requests": 2}

    def check(self, session, ctx):
        protocol = protocol_of_session(session, ctx)

        def reaction(p, e):
            return "stop" if _stop_reaction(p, e) else None

        for run in _signal_runs(session, ctx, protocol, _stop_signal, reaction):
            sig = run["signal"]
            deadline = sig.time + run["delay_s"] + self.p["grace_s"]
            reqs = run["requests"]
            late = [r for r in reqs if r.time > deadline]
            if len(reqs) < self.p["min_requests"] or not late:
                continue
            react = run["reaction"]
            if react is not None:
                tail = f"; the EV stopped only with {react.name} (frame {react.frame}) " \
                       f"{react.time - sig.time:.1f} s after the signal"
                end_frame = react.frame
            else:
                tail = f"; then {_end_text(ctx, session)}"
                end_frame = ctx.summaries.get(session.id, {}).get("ended", {}).get("frame")
            span = (react.time if react is not None else reqs[-1].time) - sig.time
            n_res = len(run["responses"])
            yield self.finding(session, [sig.frame, late[0].frame, reqs[-1].frame, end_frame],
                               f"{sig.name} (frame {sig.frame}) asked the EV to stop ({run['what']}, "
                               f"NotificationMaxDelay {run['delay_s']:g} s) but the EV sent {len(reqs)} more "
                               f"{reqs[0].name} over {span:.1f} s ({n_res} responses repeated the "
                               f"request){tail}", time=sig.time, measured=round(span, 3),
                               limit=run["delay_s"], unit="s",
                               evidence={"expected": f"PowerDeliveryReq Stop / SessionStopReq within "
                                                     f"{run['delay_s']:g} s",
                                         "actual": f"{len(reqs)} × {reqs[0].name}, first late at frame "
                                                   f"{late[0].frame}",
                                         "signal": run["what"], "NotificationMaxDelay_s": run["delay_s"],
                                         "reaction": react.name if react is not None else None})


class EvseFaultStatus(Rule):
    """The EVSE reports a fault: EVSE_EmergencyShutdown, EVSE_Malfunction or
    EVSE_UtilityInterruptEvent.

    What it checks: DC_EVSEStatusCode of every DC response (not FAILED responses, which only
    carry minimal values). One finding per status code with the count and the first and
    last frames; culprit SECC (the utility for EVSE_UtilityInterruptEvent is outside the
    capture, the EVSE reports it).
    Why it matters: the EVSE stops energy transfer; the EV has to end the session.
    Fix (SECC): look into the EVSE's fault log at that time (isolation, over-current,
    power module, emergency stop button, grid signal).
    Source: DIN 70121 / ISO 15118-2 DC_EVSEStatusCodeType; PROTOCOL_FACTS §4.0 "Status
    semantics" (EVSE_EmergencyShutdown / EVSE_Malfunction = fault).
    """

    code = "RSP004"
    title = "EVSE reports a fault status"
    severity = "error"
    category = "response-code"
    kinds = ("evse-stop", "evse-not-ready")
    explains = ("ev-stop", "ev-abort", "evse-abort", "no-session-stop", "connection-reset",
                "failed-response")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 / ISO 15118-2 DC_EVSEStatusCodeType"
    failure_modes = ("UC2 158",)

    def check(self, session, ctx):
        groups: dict = {}
        for e, req in responses(session, ctx):
            f = facts(e)
            st = f.get("EVSEStatusCode")
            if st in FAULT_STATUS and not is_failed(f.get("ResponseCode")):
                groups.setdefault(st, []).append((e, req))
        for st, items in groups.items():
            e, req = items[0]
            last = items[-1][0]
            n = len(items)
            v = facts(e).get("EVSEPresentVoltage_V")
            volt = f", EVSEPresentVoltage {v:g} V" if v is not None else ""
            more = f" in {n} responses until frame {last.frame}" if n > 1 else ""
            yield self.finding(session, [e.frame, last.frame] + ([req.frame] if req else []),
                               f"{e.name} (frame {e.frame}) reports {st}{more}: {FAULT_STATUS[st]}{volt}",
                               time=e.time, measured=st, limit="EVSE_Ready",
                               evidence={"expected": "EVSE_Ready", "actual": st, "count": n,
                                         "messages": sorted({x.name for x, _ in items})})


def _renegotiation_signal(e):
    note = facts(e).get("EVSENotification")
    if note == "ReNegotiation" and e.name in ("ChargingStatusRes", "CurrentDemandRes", "MeteringReceiptRes"):
        return "ReNegotiation"
    if note in ("ScheduleRenegotiation", "ServiceRenegotiation"):
        return note
    return None


class RenegotiationIgnored(Rule):
    """The EV did not renegotiate within NotificationMaxDelay after the EVSE asked it to.

    What it checks: after a ChargingStatusRes / CurrentDemandRes / MeteringReceiptRes with
    EVSENotification ReNegotiation (ISO 15118-2; -20: ScheduleRenegotiation,
    ServiceRenegotiation in any response), the EV must send PowerDeliveryReq
    (Renegotiate; -20 ScheduleRenegotiation) or, for -20 service renegotiation,
    SessionStopReq (ServiceRenegotiation) within NotificationMaxDelay (+ ``grace_s``). Error
    when it kept on after the deadline (at least ``min_requests`` requests); warning when it
    stopped the session instead of renegotiating. DIN 70121 has no renegotiation: not
    checked.
    Why it matters: the SECC needs new charge parameters or a new schedule (grid limit,
    tariff); an EV that ignores the request keeps charging against stale limits or the SECC
    ends the session (PFMEA UC2 304-307 "failed to initiate renegotiation").
    Fix (EVCC): on ReNegotiation send PowerDeliveryReq (ChargeProgress Renegotiate) and
    then ChargeParameterDiscoveryReq.
    Source: ISO 15118-2 [V2G2-841] [V2G2-680] [V2G2-812] [V2G2-813]; ISO 15118-20
    EVSENotification (ScheduleRenegotiation, ServiceRenegotiation) [V2G20-1477];
    PROTOCOL_FACTS §4.0 "Status semantics" (R-EVCC-CD).
    """

    code = "RSP005"
    title = "EV did not renegotiate when the EVSE asked"
    severity = "error"
    category = "response-code"
    explains = ("evse-abort", "evse-stop")
    culprit = "EVCC"
    protocols = ("ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-841] EVSENotification ReNegotiation"
    failure_modes = ("UC2 304", "UC2 306")
    params = {"grace_s": 0.0, "min_requests": 2}

    def check(self, session, ctx):
        protocol = protocol_of_session(session, ctx)

        def reaction(p, e):
            q = qualifier(p, "PowerDelivery", body(e)) if e.name == "PowerDeliveryReq" else None
            if q in ("Renegotiate", "ScheduleRenegotiation"):
                return "renegotiate"
            if e.name == "SessionStopReq" and body(e).get("ChargingSession") == "ServiceRenegotiation":
                return "renegotiate"
            return "stop" if _stop_reaction(p, e) else None

        for run in _signal_runs(session, ctx, protocol, _renegotiation_signal, reaction):
            sig = run["signal"]
            react = run["reaction"]
            reqs = run["requests"]
            deadline = sig.time + run["delay_s"] + self.p["grace_s"]
            late = [r for r in reqs if r.time > deadline]
            if run["reaction_kind"] == "renegotiate" and not late:
                continue
            if run["reaction_kind"] == "stop" and not late:
                yield self.finding(session, [sig.frame, react.frame],
                                   f"{sig.name} (frame {sig.frame}) asked for {run['what']}; the EV "
                                   f"stopped instead ({react.name}, frame {react.frame})",
                                   time=sig.time, severity="warning", measured=react.name,
                                   limit="PowerDeliveryReq(Renegotiate)",
                                   evidence={"expected": "PowerDeliveryReq(Renegotiate)",
                                             "actual": react.name, "signal": run["what"]})
                continue
            if len(reqs) < self.p["min_requests"] or not late:
                continue
            span = (react.time if react is not None else reqs[-1].time) - sig.time
            tail = (f"; it reacted only with {react.name} (frame {react.frame})" if react is not None
                    else f"; then {_end_text(ctx, session)}")
            yield self.finding(session, [sig.frame, late[0].frame, reqs[-1].frame]
                               + ([react.frame] if react is not None else []),
                               f"{sig.name} (frame {sig.frame}) asked for {run['what']} "
                               f"(NotificationMaxDelay {run['delay_s']:g} s) but the EV sent {len(reqs)} "
                               f"more {reqs[0].name} over {span:.1f} s{tail}", time=sig.time,
                               measured=round(span, 3), limit=run["delay_s"], unit="s",
                               evidence={"expected": "PowerDeliveryReq(Renegotiate) within "
                                                     f"{run['delay_s']:g} s",
                                         "actual": f"{len(reqs)} × {reqs[0].name}",
                                         "signal": run["what"]})


_CABLECHECK = ("CableCheckRes", "DC_CableCheckRes")


class IsolationMonitoringOutsideCableCheck(Rule):
    """The EVSE reports EVSE_IsolationMonitoringActive outside the cable check.

    What it checks: DC_EVSEStatusCode EVSE_IsolationMonitoringActive in responses other
    than CableCheckRes (ChargeParameterDiscovery, PreCharge, PowerDelivery, CurrentDemand,
    WeldingDetection). One finding per response type with the count.
    Why it matters: the status belongs to the isolation test of the cable check (test
    voltage applied); reported later it means the EVSE is still testing, or misreports its
    state, and EVs that require EVSE_Ready stop.
    Fix (SECC): report EVSE_IsolationMonitoringActive only while the cable check runs;
    EVSE_Ready afterwards.
    Source: DIN 70121 / ISO 15118-2 DC_EVSEStatusCodeType; PROTOCOL_FACTS §4D (cable check:
    EVSE_IsolationMonitoringActive while Ongoing), §4.0 "Status semantics" ([V2G2-880]:
    status codes without explicit requirement are informational ⚠).
    """

    code = "RSP006"
    title = "EVSE_IsolationMonitoringActive outside CableCheck"
    severity = "warning"
    category = "response-code"
    kinds = ("evse-not-ready",)
    explains = ("ev-stop", "ev-abort")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 / ISO 15118-2 DC_EVSEStatusCodeType (cable check)"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        groups: dict = {}
        for e, _ in responses(session, ctx):
            if e.name in _CABLECHECK:
                continue
            f = facts(e)
            if (f.get("EVSEStatusCode") == "EVSE_IsolationMonitoringActive"
                    and not is_failed(f.get("ResponseCode"))):
                groups.setdefault(e.name, []).append(e)
        for name, items in groups.items():
            e, last = items[0], items[-1]
            n = len(items)
            more = f" ({n} responses until frame {last.frame})" if n > 1 else ""
            yield self.finding(session, [e.frame, last.frame],
                               f"{name} (frame {e.frame}) reports EVSE_IsolationMonitoringActive outside "
                               f"the cable check{more}", time=e.time,
                               measured="EVSE_IsolationMonitoringActive", limit="EVSE_Ready",
                               evidence={"expected": "EVSE_Ready",
                                                             "actual": "EVSE_IsolationMonitoringActive",
                                                             "count": n})


def _needs_ready(e, req) -> bool:
    n = e.name
    if n in ("PreChargeRes", "CurrentDemandRes"):
        return True
    if n == "PowerDeliveryRes" and req is not None:
        return qualifier(None, "PowerDelivery", body(req)) == "Start"
    return False


class EvseNotReady(Rule):
    """The EVSE reports EVSE_NotReady where the EV needs EVSE_Ready.

    What it checks: DC_EVSEStatusCode EVSE_NotReady in PreChargeRes, CurrentDemandRes and
    PowerDeliveryRes to a start request (a finished CableCheckRes without EVSE_Ready is the
    cable-check rules' CBL002). One finding per response type with the count and the first
    and last frames. Error when the EV gave up after the last of them (SessionStopReq,
    PowerDeliveryReq Stop, or the session ended); ``tolerated_severity`` (info) when the EV
    went on regardless.
    Why it matters: power delivery needs EVSE_Ready ([V2G-DC-401], [V2G2-480]); many EVs
    wait for EVSE_Ready in PreCharge and stop when it does not come (e.g. the Tesla Model Y
    stops the session in PreCharge).
    Fix (SECC): report EVSE_Ready once the cable check passed and the output is available.
    Source: DIN 70121 [V2G-DC-401]; ISO 15118-2 [V2G2-480]; PROTOCOL_FACTS §4A, §4B content
    rules, §4D.
    """

    code = "RSP007"
    title = "EVSE_NotReady where the EV needs EVSE_Ready"
    severity = "error"
    category = "response-code"
    kinds = ("evse-not-ready",)
    explains = ("ev-stop", "ev-abort", "ev-timeout", "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 [V2G-DC-401] / ISO 15118-2 [V2G2-480] EVSE_Ready"
    failure_modes = ("UC2 158",)
    params = {"tolerated_severity": "info"}

    def check(self, session, ctx):
        protocol = protocol_of_session(session, ctx)
        msgs = list(with_requests(session, ctx))
        groups: dict = {}
        for i, (e, req) in enumerate(msgs):
            if not e.name.endswith("Res"):
                continue
            f = facts(e)
            if f.get("EVSEStatusCode") == "EVSE_NotReady" and not is_failed(f.get("ResponseCode")) \
                    and _needs_ready(e, req):
                groups.setdefault(e.name, []).append((i, e, req))
        for name, items in groups.items():
            i0, e, req = items[0]
            il, last, _ = items[-1]
            nxt = next((x for x, _ in msgs[il + 1:] if x.name.endswith("Req")), None)
            gave_up = nxt is None or _stop_reaction(protocol, nxt)
            n = len(items)
            then = (f"then the EV stopped with {nxt.name} (frame {nxt.frame})" if nxt is not None and gave_up
                    else f"then {_end_text(ctx, session)}" if nxt is None
                    else f"the EV went on with {nxt.name} (frame {nxt.frame})")
            more = f" in {n} responses (frames {e.frame}-{last.frame})" if n > 1 else ""
            frames = [e.frame, last.frame] + ([req.frame] if req else []) + ([nxt.frame] if nxt else [])
            yield self.finding(session, frames,
                               f"{name} reports EVSE_NotReady{more} where the EV needs EVSE_Ready; {then}",
                               time=e.time, severity=None if gave_up else self.p["tolerated_severity"],
                               measured="EVSE_NotReady", limit="EVSE_Ready",
                               evidence={"expected": "EVSE_Ready", "actual": "EVSE_NotReady", "count": n,
                                         "EV_next": nxt.name if nxt is not None else None,
                                         "ev_gave_up": gave_up})


class EvErrorCode(Rule):
    """The EV reports an error code (DC_EVErrorCode ≠ NO_ERROR).

    What it checks: DC_EVStatus EVErrorCode of every EV request (NoData is not an error).
    One finding per code with the count, the first and last frames and, when the EV stopped
    after it, the stop request. Error when the EV stopped with it (the request carrying the
    code, or the next one, is PowerDeliveryReq Stop / SessionStopReq) or the session ended
    there; warning when it charged on. The evidence carries
    the EV's target and the EVSE's present current / voltage of that moment.
    Why it matters: the EV ends charging for the reason the code names (battery temperature,
    shift position, connector lock, current differential …).
    Fix (EVCC): the code names the EV-side condition; for FAILED_ChargingCurrentdifferential
    compare EVTargetCurrent with EVSEPresentCurrent (an EVSE that does not deliver the
    requested current triggers it too).
    Source: DIN 70121 / ISO 15118-2 DC_EVErrorCodeType; PROTOCOL_FACTS §4.0 enumerations.
    """

    code = "RSP008"
    title = "EV reports an error code"
    severity = "error"
    category = "response-code"
    kinds = ("ev-error",)
    explains = ("no-session-stop", "ev-abort", "connection-reset", "evse-stop", "evse-abort")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 / ISO 15118-2 DC_EVErrorCodeType"
    failure_modes = ("UC2 238",)

    def check(self, session, ctx):
        protocol = protocol_of_session(session, ctx)
        v2g = v2g_messages(session, ctx)
        groups: dict = {}
        last_res = None
        last_ok: dict = {}                     # request name → last request without error
        for i, e in enumerate(v2g):
            if e.name.endswith("Res"):
                last_res = e
                continue
            err = facts(e).get("EVErrorCode")
            if isinstance(err, str) and err not in ("NO_ERROR", "NoData"):
                groups.setdefault(err, []).append((i, e, last_res, last_ok.get(e.name)))
            else:
                last_ok[e.name] = e
        for err, items in groups.items():
            i0, e, prev, before = items[0]
            il, last = items[-1][0], items[-1][1]
            after = [x for x in v2g[il:] if x.name.endswith("Req")]
            stop = next((x for x in after[:2] if _stop_reaction(protocol, x)), None)
            ended = stop is not None or len(after) <= 1
            meaning = EV_ERRORS.get(err, "a reserved / unknown error code")
            f = facts(before) if before is not None else facts(e)
            pf = facts(prev) if prev is not None else {}
            vals = {k: v for k, v in (("EVTargetCurrent_A", f.get("EVTargetCurrent_A")),
                                      ("EVTargetVoltage_V", f.get("EVTargetVoltage_V")),
                                      ("EVSEPresentCurrent_A", pf.get("EVSEPresentCurrent_A")),
                                      ("EVSEPresentVoltage_V", pf.get("EVSEPresentVoltage_V")))
                    if v is not None}
            detail = ""
            if "Current" in err and "EVTargetCurrent_A" in vals and "EVSEPresentCurrent_A" in vals:
                detail = (f" (just before: EVTargetCurrent {vals['EVTargetCurrent_A']:g} A, "
                          f"EVSEPresentCurrent {vals['EVSEPresentCurrent_A']:g} A)")
            elif "Voltage" in err and "EVSEPresentVoltage_V" in vals:
                detail = f" (EVSEPresentVoltage {vals['EVSEPresentVoltage_V']:g} V)"
            n = len(items)
            more = f" in {n} requests (until frame {last.frame})" if n > 1 else ""
            then = (f"; the EV then stopped with {stop.name} (frame {stop.frame})" if stop is not None
                    else "; then the session ended" if ended else "; the EV charged on")
            frames = [e.frame, last.frame] + ([stop.frame] if stop is not None else [])
            yield self.finding(session, frames,
                               f"{e.name} (frame {e.frame}) reports EVErrorCode {err}{more}: "
                               f"{meaning}{detail}{then}", time=e.time,
                               severity=None if ended else "warning", measured=err, limit="NO_ERROR",
                               evidence={"expected": "NO_ERROR", "actual": err, "meaning": meaning,
                                         "count": n, **vals})


_AC_RES = frozenset({"ChargeParameterDiscoveryRes", "PowerDeliveryRes", "ChargingStatusRes",
                     "MeteringReceiptRes"})


def _rcd(e) -> bool:
    b = body(e)
    st = b.get("AC_EVSEStatus")
    if not isinstance(st, dict):
        ch = b.get("AC_EVSEChargeParameter")
        st = ch.get("AC_EVSEStatus") if isinstance(ch, dict) else None
    return isinstance(st, dict) and st.get("RCD") is True


class ResidualCurrentDetected(Rule):
    """The AC EVSE reports its residual current device tripped (AC_EVSEStatus RCD true).

    What it checks: AC_EVSEStatus.RCD of every ISO 15118-2 AC response. One finding with the
    count and the first and last frames.
    Why it matters: a residual (earth-leakage) current was detected: the EVSE opens its
    contactor; charging stops. The leakage may be in the EVSE, the cable or the vehicle.
    Fix: inspect the installation, the cable and the vehicle's insulation; the EVSE's RCD
    log says when it tripped.
    Source: ISO 15118-2 AC_EVSEStatusType (RCD); PROTOCOL_FACTS §4B.
    """

    code = "RSP009"
    title = "Residual current detected (AC RCD)"
    severity = "error"
    category = "response-code"
    kinds = ("isolation-fault",)
    explains = ("evse-stop", "evse-abort", "evse-refused", "ev-stop", "ev-abort", "no-session-stop")
    culprit = "unknown"
    protocols = ("ISO 15118-2",)
    requirement = "ISO 15118-2 AC_EVSEStatusType RCD"
    failure_modes = ("UC2 239",)

    def check(self, session, ctx):
        hits = [e for e, _ in responses(session, ctx) if e.name in _AC_RES and _rcd(e)]
        if not hits:
            return
        e, last = hits[0], hits[-1]
        n = len(hits)
        more = f" ({n} responses until frame {last.frame})" if n > 1 else ""
        yield self.finding(session, [e.frame, last.frame],
                           f"{e.name} (frame {e.frame}) reports RCD = true: the EVSE's residual current "
                           f"device detected a leakage current{more}", time=e.time, measured=True,
                           limit=False, evidence={"expected": "RCD false", "actual": "RCD true", "count": n})
