"""Message sequences: what may follow what (state machines per protocol)."""
from __future__ import annotations

from .base import Rule


class NoSessionStop(Rule):
    """The V2G session ended without SessionStop.

    What it checks: a session that exchanged V2G messages ends with SessionStopReq/Res.
    Why it matters: the session broke off (timeout, crash, reset); the last messages before
    the end say where.
    Fix: look at the last request/response and the TCP close: the side that closed or stopped
    answering is the likely culprit.
    Source: ISO 15118-2 §8.8.4 message sequences (SessionStopReq ends a session,
    [V2G2-571]); DIN 70121 §9.6.
    """

    code = "SEQ001"
    title = "Session ended without SessionStop"
    severity = "warning"
    category = "sequence"
    culprit = "unknown"
    consequence = True
    failure_modes = ("UC2 237", "UC2 238", "UC2 239")

    def check(self, session, ctx):
        v2g = [e for e in session.events if e.layer == "v2gtp" and e.message is not None]
        if not v2g or any(e.name == "SessionStopRes" for e in v2g):
            return
        if not any(e.name == "SessionSetupRes" for e in v2g):
            return
        last = v2g[-1]
        ended = ctx.summaries.get(session.id, {}).get("ended", {})
        culprit = {"EV": "EVCC", "EVSE": "SECC"}.get(ended.get("by"), "unknown")
        if last.name.endswith("Req"):
            culprit = "SECC"   # a request left unanswered
        yield self.finding(session, [last.frame, ended.get("frame")],
                           f"Session ended after {last.name} (frame {last.frame}) without "
                           f"SessionStop: {ended.get('how', 'unknown')}", time=last.time,
                           culprit=culprit, evidence={"last_message": last.name,
                                                      "ended": ended})
