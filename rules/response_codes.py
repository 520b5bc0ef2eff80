"""Response codes: FAILED_* answers, EVSE status and notifications, EV error codes."""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import event_facts

from .base import Rule


class FailedResponseCode(Rule):
    """A response carries a FAILED ResponseCode.

    What it checks: the ResponseCode of every V2G response (DIN 70121, ISO 15118-2,
    ISO 15118-20) and of supportedAppProtocolRes (Failed_NoNegotiation).
    Why it matters: after a FAILED_* response the session terminates (ISO 15118-2 [V2G2-539],
    DIN [V2G-DC-665]); the code names why the SECC refused.
    Fix: see the code: FAILED_SequenceError → the EVCC sent a request out of order;
    FAILED_UnknownSession → wrong SessionID; FAILED_WrongChargeParameter → EV limits
    inconsistent with the energy transfer mode; plain FAILED → SECC internal failure.
    Source: ISO 15118-2 Table 105 responseCodeType; DIN 70121 responseCodeType;
    ISO 15118-20 responseCodeType; PROTOCOL_FACTS §4.0.
    """

    code = "RSP001"
    title = "FAILED response code"
    severity = "error"
    category = "response-code"
    culprit = "SECC"
    failure_modes = ("UC2 100", "UC2 107")

    def check(self, session, ctx):
        for e in session.events:
            if e.layer != "v2gtp" or e.message is None or not e.name.endswith("Res"):
                continue
            rc = event_facts(e).get("ResponseCode")
            if isinstance(rc, str) and rc.upper().startswith("FAILED"):
                yield self.finding(session, [e.frame], f"{e.name} in frame {e.frame} answers "
                                   f"{rc}", time=e.time, measured=rc, limit="OK*",
                                   evidence={"expected": "ResponseCode OK*", "actual": rc,
                                             "message": e.name})
