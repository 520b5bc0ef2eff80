"""Sequence rules on sessions that end without SessionStop: SEQ001, SEQ009."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import v2g_messages

from ..base import Rule
from ..helpers import body, facts, is_failed, protocol_of_session
from ..state_machines import qualifier
from .common import _STOP_CODES


class NoSessionStop(Rule):
    """The V2G session ended without SessionStop.

    What it checks: a session that set up a V2G session (SessionSetupRes) ends with
    SessionStopReq/Res (Terminate or Pause). The culprit is the side that closed or reset
    the connection; a session the capture cut short is reported as info with culprit
    "capture" (nobody's fault).
    Why it matters: the session broke off (timeout, crash, reset); it is usually the
    symptom of an earlier failure, which the report names as the root cause (this rule is a
    consequence: it is linked to that cause).
    Fix: look at the last request/response and the TCP close: the side that closed or
    stopped answering is the likely culprit (see SEQ007 / SEQ009 for the details).
    Source: ISO 15118-2 §8.8.4 message sequences (SessionStopReq ends a session,
    [V2G2-571]); DIN 70121 §9.6 [V2G-DC-451]; ISO 15118-20 [V2G20-1633].

    Example:

        #59 ChargeParameterDiscoveryReq → (no response)
        #61 FIN EV→EVSE
    """

    code = "SEQ001"
    title = "Session ended without SessionStop"
    severity = "warning"
    category = "sequence"
    kinds = ("no-session-stop",)
    culprit = "unknown"
    requirement = "ISO 15118-2 [V2G2-571] SessionStop ends the session"
    failure_modes = ("UC2 237", "UC2 238", "UC2 239")

    def check(self, session, ctx):
        v2g = v2g_messages(session, ctx)
        if not v2g or any(e.name == "SessionStopRes" for e in v2g):
            return
        if not any(e.name == "SessionSetupRes" for e in v2g):
            return
        last = v2g[-1]
        ended = ctx.summaries.get(session.id, {}).get("ended", {})
        by = ended.get("by")
        how = ended.get("how", "unknown")
        if by is None and how.startswith("capture ended"):
            yield self.finding(session, [last.frame, ended.get("frame")],
                               f"Session still running after {last.name} (frame {last.frame}) "
                               f"when the capture ended: no SessionStop seen",
                               time=last.time, culprit="capture", severity="info",
                               evidence={"expected": "SessionStopReq/Res", "actual": how,
                                         "last_message": last.name, "ended": ended})
            return
        culprit = {"EV": "EVCC", "EVSE": "SECC"}.get(by, "unknown")
        pending = " (its request unanswered)" if last.name.endswith("Req") else ""
        yield self.finding(session, [last.frame, ended.get("frame")],
                           f"Session ended after {last.name} (frame {last.frame}){pending} without "
                           f"SessionStop: {how}", time=last.time, culprit=culprit,
                           evidence={"expected": "SessionStopReq/Res", "actual": how,
                                     "last_message": last.name, "ended": ended})


class SessionDropped(Rule):
    """One side closed the connection in the middle of a running session, unannounced.

    What it checks: a session that set up a V2G session and ended with a TCP FIN or RST
    while no request was pending, or while one was pending whose response came only after
    the close (SEQ007 covers requests never answered), without SessionStop, after an
    ordinary response: no FAILED response code, no EVSE stop request
    (EVSE_Shutdown / EVSE_EmergencyShutdown / EVSE_Malfunction / EVSE_UtilityInterruptEvent,
    EVSENotification StopCharging) and no EV error code among the last exchanges. The side
    that closed first is the culprit.
    Why it matters: the session ends without an orderly stop (PowerDelivery stop, welding
    detection, SessionStop): contactors may open under load, the EV reports a charging
    error.
    Fix: the side that closed: end a session with SessionStop (EVCC) or announce the stop
    with EVSENotification StopCharging / EVSE_Shutdown and wait for the EV to stop (SECC).
    Source: ISO 15118-2 §8.8.4 [V2G2-571] (SessionStop ends a session), status semantics
    (PROTOCOL_FACTS §4.0); DIN 70121 §9.6 [V2G-DC-451].

    Example:

        #183 CurrentDemandReq → #185 CurrentDemandRes
        #187 RST EVSE→EV
    """

    code = "SEQ009"
    title = "Session dropped without SessionStop or a stop request"
    severity = "error"
    category = "sequence"
    kinds = ("no-session-stop",)
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-571] SessionStop ends the session"
    failure_modes = ("UC2 238", "UC2 239")
    params = {"lookback_messages": 6}

    def check(self, session, ctx):
        v2g = v2g_messages(session, ctx)
        if not v2g or not any(e.name == "SessionSetupRes" for e in v2g):
            return
        if any(e.name in ("SessionStopReq", "SessionStopRes") for e in v2g):
            return
        ended = ctx.summaries.get(session.id, {}).get("ended", {})
        by, how = ended.get("by"), ended.get("how", "")
        if by not in ("EV", "EVSE") or not how.startswith("TCP"):
            return
        end_frame = ended.get("frame")
        end_t = next((e.time for e in session.events if e.frame == end_frame), v2g[-1].time)
        last = next((e for e in reversed(v2g) if e.time <= end_t), v2g[-1])
        pending = ""
        if last.name.endswith("Req"):
            if not any(e.time > end_t and e.conn == last.conn and e.name == last.name[:-3] + "Res"
                       for e in v2g):
                return                 # never answered at all: SEQ007's
            pending = " before its response"
        for e in v2g[-self.p["lookback_messages"]:]:
            f = facts(e)
            if is_failed(f.get("ResponseCode")):
                return
            if f.get("EVSEStatusCode") in _STOP_CODES or f.get("EVSENotification") in (
                    "StopCharging", "Terminate", "Pause"):
                return
            err = f.get("EVErrorCode")
            if isinstance(err, str) and err not in ("NO_ERROR", "NoData"):
                return
            if e.name == "PowerDeliveryReq" and qualifier(protocol_of_session(session, ctx),
                                                          "PowerDelivery", body(e)) == "Stop":
                return
        culprit = "SECC" if by == "EVSE" else "EVCC"
        who = "EVSE" if by == "EVSE" else "EV"
        f = self.finding(session, [last.frame, end_frame],
                           f"The {who} ended the session ({how}, frame {end_frame}) "
                           f"{end_t - last.time:.2f} s after {last.name} (frame {last.frame}){pending} "
                           f"without SessionStop and without announcing a stop",
                           time=last.time, culprit=culprit,
                           evidence={"expected": "PowerDelivery stop / SessionStop, or EVSE_Shutdown / "
                                                 "StopCharging before the EVSE closes",
                                     "actual": how, "last_message": last.name,
                                     "last_status": facts(last).get("EVSEStatusCode")})
        # it describes how the session ended (rules/causes.py): the side that dropped it
        f.kinds = ("evse-abort" if by == "EVSE" else "ev-abort", "no-session-stop",
                   "connection-reset")
        yield f
