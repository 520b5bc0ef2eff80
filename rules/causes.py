"""The causal vocabulary: what a finding *is* and what it can *explain*, in one table.

DESIGN.md "Causes, outcomes, verdicts": "which kinds of findings can cause which is declared
by the rules, not inferred from severity". Each rule declares, in the words of :data:`KINDS`,

* ``kinds``    — what its findings are (e.g. ``no-current``: the EVSE delivered no current);
* ``explains`` — which kinds of findings, and of session ends, its findings can cause
  (``no-current`` explains an EV error code, an EV stop, an EVSE stop …);

and may set them per finding where the facts decide (a response later than the SECC's
performance time explains nothing; one later than the EV's timeout explains the EV giving
up). The session ends that analyzer/outcome.py derives from the traffic ("the EV reported an
error code and stopped", "the EV's timer expired", "the EVSE asked the EV to stop") are named
with the same words (:data:`END_KINDS`), so a finding can explain how a session ended.
analyzer/causality.py links the findings of a session with these declarations and names the
root cause: the earliest finding of the chain that explains the session's end that nothing
earlier explains (docs/root-cause.md).
"""
from __future__ import annotations

#: Every kind, with what it means. Keys are used by ``Rule.kinds`` / ``Rule.explains`` and by
#: the session ends; a rule that names a kind missing here fails the rule-pack test.
KINDS: dict[str, str] = {
    # ---- how a session ends (analyzer/outcome.py, stop reasons) -- also kinds of findings
    "ev-stop": "the EV ended charging on its own, without an error code (PowerDelivery Stop, "
               "SessionStop)",
    "ev-error": "the EV reported an error code (EVErrorCode, EVStatus) and stopped",
    "ev-pause": "the EV paused the session (SessionStopReq ChargingSession = Pause)",
    "ev-abort": "the EV closed or reset the connection without an orderly stop",
    "ev-timeout": "a timer of the EV expired (V2G_EVCC_Msg_Timeout, _CableCheck_Timeout, "
                  "_PreCharge_Timeout, _Ongoing_Timeout) and the EV gave up",
    "evse-stop": "the EVSE asked the EV to stop (EVSENotification StopCharging / Terminate, "
                 "EVSE_Shutdown, a fault status)",
    "evse-refused": "the EVSE answered a FAILED response code and the session ended on it",
    "evse-abort": "the EVSE closed or reset the connection without an orderly stop",
    "evse-timeout": "the EVSE's V2G_SECC_Sequence_Timeout expired: it stopped waiting for the "
                    "EV's next request",
    "no-response": "a request got no response at all",
    "slac-failed": "SLAC matching did not lead to a logical network (ISO 15118-3)",
    "sdp-failed": "SECC discovery (SDP) did not give the EV an address to connect to",
    "tcp-failed": "no TCP connection to the SECC could be established",
    "tls-failed": "the TLS handshake failed",
    "handshake-failed": "no application protocol was agreed (supportedAppProtocol)",
    "capture-ended": "the capture ended while the session was running",
    "evse-end": "the EVSE ended basic charging in an orderly way that carries no reason (PWM "
                "switched off, IEC 61851-1 Table A.8) and the EV released (state B)",
    "ev-unplugged": "the EV was unplugged (control pilot state A) while the session ran",
    "cp-error": "the control pilot showed state E or F (pilot shorted, EVSE without supply or "
                "not available, IEC 61851-1 Table A.3)",
    "cp-transition": "the control pilot changed state against the session's step (C → B during "
                     "energy transfer, B during PowerDelivery Start, C held after Stop)",
    "cp-signal": "the control pilot signal is out of its bands or its PWM is not what the "
                 "session needs (noise, a duty cycle other than 5 % during HLC)",
    "contactor-fault": "a contactor closed or stayed closed against the rules (voltage "
                       "difference, no energy request)",
    # ---- what findings are (symptoms and causes between the ends)
    "no-session-stop": "the session ended without SessionStop",
    "connection-reset": "a TCP connection was reset or closed in the middle of the session",
    "failed-response": "a response carried a FAILED ResponseCode",
    "out-of-sequence": "a request the message sequence does not allow at that point",
    "unknown-session": "a request answered FAILED_UnknownSession",
    "wrong-session-id": "a message carried another SessionID than the session's",
    "late-response": "a response came after the EV's message timeout",
    "late-request": "the EV's next request came after the SECC's sequence timeout",
    "loop-timeout": "a CableCheck / PreCharge / EVSEProcessing=Ongoing loop ran past the EV's "
                    "timer or never finished",
    "isolation-fault": "the cable check or the isolation monitor reported a fault",
    "evse-not-ready": "the EVSE reported a status that does not let the EV proceed "
                      "(EVSE_NotReady, isolation monitoring, a fault status)",
    "precharge-failed": "PreCharge did not bring the EVSE output to the EV's target voltage",
    "stop-ignored": "the EV did not stop when the EVSE asked it to",
    "no-current": "the EVSE delivered no current although the EV asked for it and the EVSE's "
                  "limits allowed it",
    "under-delivery": "the EVSE delivered less current than the EV asked for and its limits "
                      "allowed",
    "implausible-value": "a present value the EVSE reports cannot be a measurement",
    "limit-violation": "a present value above a maximum limit of the EVSE or the EV",
    "bad-content": "a message whose content the receiver has to refuse (wrong parameters, AC/DC "
                   "mismatch, undecodable, wrong schema)",
    "certificate-problem": "a certificate or chain that is not valid for Plug & Charge or TLS",
    "capture-cut": "the capture file was cut or damaged: the rest of the session is missing",
    "capture-gap": "frames are missing from the capture",
}

#: The kinds that describe how a session ended (a session's ``stop_reason.kind``).
END_KINDS = frozenset({"ev-stop", "ev-error", "ev-pause", "ev-abort", "ev-timeout", "evse-stop",
                       "evse-refused", "evse-abort", "evse-timeout", "no-response",
                       "slac-failed", "sdp-failed", "tcp-failed", "tls-failed",
                       "handshake-failed", "capture-ended", "evse-end", "ev-unplugged",
                       "cp-error"})


def unknown_kinds(names) -> list[str]:
    """The names in ``names`` that are not in :data:`KINDS` (empty when all are known)."""
    return [n for n in names if n not in KINDS]
