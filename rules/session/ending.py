"""Session rules on how sessions end: SES012, SES013."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import v2g_messages
from ccs_analyzer.analyzer.views.walk import walk

from ..base import Rule, judged
from ..helpers import body, facts, find_first, is_failed, protocol_of_session
from ..state_machines import LOOP, qualifier

#: Charge-loop responses (one per cycle) that can carry the EVSE's stop request.
_LOOP_RES = frozenset(f"{n}Res" for n in LOOP)
#: DC_EVSEStatusCode values that report a fault (RSP004's), not a normal stop.
_FAULTS = ("EVSE_EmergencyShutdown", "EVSE_Malfunction", "EVSE_UtilityInterruptEvent")


def _evse_stop(e) -> str | None:
    """What in a charge-loop response asks the EV to stop (EVSE_Shutdown, EVSENotification
    StopCharging / ISO 15118-20 Terminate), None when nothing does or when a fault status
    (RSP004), an RCD trip (RSP009) or a FAILED code says it."""
    if e.name not in _LOOP_RES:
        return None
    f = facts(e)
    if is_failed(f.get("ResponseCode")) or f.get("EVSEStatusCode") in _FAULTS:
        return None
    parts = []
    if f.get("EVSEStatusCode") == "EVSE_Shutdown":
        parts.append("EVSE_Shutdown")
    if f.get("EVSENotification") in ("StopCharging", "Terminate"):
        parts.append(f"EVSENotification {f['EVSENotification']}")
    if parts and find_first(body(e), "RCD") is True:
        return None                     # an AC residual-current trip: RSP009 names the reason
    return " + ".join(parts) or None


def _ev_asked_to_stop(e) -> bool:
    """Whether an EV loop request already asks to end the charge (ChargingComplete, EVReady
    false, an EV error code, ISO 15118-20 EVTerminationCode): the EVSE's stop then answers
    the EV's."""
    if e is None:
        return False
    b = body(e)
    f = facts(e)
    err = f.get("EVErrorCode")
    return (find_first(b, "ChargingComplete") is True or f.get("EVReady") is False
            or (isinstance(err, str) and err not in ("NO_ERROR", "NoData"))
            or find_first(b, "EVTerminationCode") is not None)


def _stop_reaction(protocol, e) -> bool:
    """The EV stops: PowerDeliveryReq Stop (DIN ReadyToChargeState false; -20 also
    Standby), WeldingDetectionReq, SessionStopReq."""
    n = e.name
    if n in ("SessionStopReq", "WeldingDetectionReq", "DC_WeldingDetectionReq"):
        return True
    return n == "PowerDeliveryReq" and qualifier(protocol, "PowerDelivery", body(e)) in ("Stop", "Standby")


class EvseStoppedCharging(Rule):
    """The EVSE stopped the charge on its own, and the EV followed.

    What it checks: the first charge-loop response (CurrentDemandRes, ChargingStatusRes,
    ISO 15118-20 DC_/AC_ChargeLoopRes) that asks the EV to stop — DC_EVSEStatusCode
    EVSE_Shutdown and/or EVSENotification StopCharging (ISO 15118-20: Terminate) — while the
    EV's own requests did not ask to end (no ChargingComplete, EVReady true, no EV error
    code), after which the EV stops (PowerDeliveryReq Stop / ReadyToChargeState false,
    WeldingDetectionReq or SessionStopReq). Names how long the charge had run (from the first
    loop request of that loop) and the current at the stop (EVSEPresentCurrent of the last
    loop response before it). A fault status (EVSE_EmergencyShutdown, EVSE_Malfunction,
    EVSE_UtilityInterruptEvent) is RSP004's, an AC residual-current trip (RCD true) RSP009's;
    an EV that did not stop in time is RSP003's.
    Why it matters: the charge ended because the charger decided so — a user or operator
    stop, a backend / authorization end, a power-module or grid limit; the traffic carries
    no reason (EVSE_Shutdown means "normal stop"), so the session's failure is explained only
    by the charger's log.
    Fix (SECC): check the charger's log at that time for why it stopped the transaction;
    when it was not meant to, fix that cause.
    Source: DIN 70121 / ISO 15118-2 DC_EVSEStatusType (EVSEStatusCode EVSE_Shutdown,
    EVSENotification StopCharging, NotificationMaxDelay), AC_EVSEStatusType; ISO 15118-20
    EVSEStatusType (EVSENotification Terminate); PROTOCOL_FACTS §4.0 "Status semantics"
    (EVSE_Shutdown in CurrentDemandRes = EVSE-initiated normal stop; PYPLC readme, Compleo).

    Example:

        #271 CurrentDemandReq ChargingComplete=False
          → #273 CurrentDemandRes EVSEStatusCode=EVSE_Shutdown EVSENotification=StopCharging
        #275 PowerDeliveryReq ChargingComplete=False
          → #277 PowerDeliveryRes EVSEStatusCode=EVSE_Shutdown EVSENotification=StopCharging
    """

    code = "SES012"
    title = "EVSE stopped the charge"
    severity = "warning"
    category = "session"
    kinds = ("evse-stop",)
    explains = ("ev-stop", "ev-pause", "no-session-stop")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "DIN 70121 / ISO 15118-2 EVSEStatusCode EVSE_Shutdown, EVSENotification StopCharging"
    failure_modes = ("UC2 238",)

    def check(self, session, ctx):
        protocol = protocol_of_session(session, ctx)
        msgs = v2g_messages(session, ctx)
        loop_start = None
        last_req = prev_req = None
        last_res = None
        for i, e in enumerate(msgs):
            if e.name.endswith("Req"):
                if e.name[:-3] in LOOP:
                    if loop_start is None:
                        loop_start = e
                    prev_req, last_req = last_req, e
                elif e.name not in ("MeteringReceiptReq", "MeteringConfirmationReq"):
                    loop_start = None
                continue
            what = _evse_stop(e)
            if what is None:
                if e.name in _LOOP_RES:
                    last_res = e
                continue
            if _ev_asked_to_stop(last_req) or _ev_asked_to_stop(prev_req):
                return                  # the EVSE answers the EV's own stop
            reaction = next((x for x in msgs[i + 1:] if x.name.endswith("Req")
                             and _stop_reaction(protocol, x)), None)
            if reaction is None:
                return                  # the EV did not stop (RSP003, CHL002)
            react_res = next((x for x in msgs[i + 1:] if x.time >= reaction.time
                              and x.name == reaction.name[:-3] + "Res"), None)
            ran = e.time - loop_start.time if loop_start is not None else None
            amps = facts(last_res).get("EVSEPresentCurrent_A") if last_res is not None else None
            if amps is None:
                amps = facts(e).get("EVSEPresentCurrent_A")
            ran_txt = f"after {ran:.1f} s of charging" if ran is not None else "during charging"
            at = f" at {amps:.1f} A" if isinstance(amps, (int, float)) else ""
            frames = [e.frame, reaction.frame] + ([react_res.frame] if react_res is not None else [])
            if last_req is not None:
                frames.append(last_req.frame)
            yield self.finding(
                session, frames,
                f"The EVSE stopped the charge ({e.name} frame {e.frame}: {what}, {ran_txt}{at}); the "
                f"EV followed with {reaction.name} (frame {reaction.frame}, "
                f"{reaction.time - e.time:.2f} s later). The reason is not in the traffic — check "
                "the charger's log",
                time=e.time,
                evidence={"expected": "the charge ends when the EV asks (ChargingComplete, PowerDelivery "
                                      "Stop)",
                          "actual": f"{what} from the EVSE at frame {e.frame}",
                          "signal": what, "charging_s": round(ran, 3) if ran is not None else None,
                          "present_current_A": amps, "reaction": reaction.name,
                          "reaction_frame": reaction.frame},
                values=[judged(e, "EVSEStatusCode", "EVSE_Shutdown") if "EVSE_Shutdown" in what else None,
                        judged(e, "EVSENotification", facts(e).get("EVSENotification"))
                        if "EVSENotification" in what else None])
            return


class FailedNotTerminated(Rule):
    """The SECC went on after its own FAILED response instead of ending the session.

    What it checks: per connection, after the first response with a FAILED ResponseCode
    (supportedAppProtocol's Failed_NoNegotiation is the handshake rules'), whether the SECC
    kept answering further requests of the EV on that connection (SessionStopReq apart)
    instead of terminating the session and closing the connection. One finding per
    connection with the number of requests answered after the FAILED response, the time
    the SECC kept the session alive and the first and last frames. The EV that went on is
    SEQ002's (sequence, EVCC).
    Why it matters: a FAILED response ends the session ([V2G2-539], DIN [V2G-DC-665]); an SECC
    that keeps the connection open and answers on keeps an EV in a dead session (e.g. 161
    CableCheckReq over a minute, each answered FAILED_SequenceError) instead of letting it
    restart cleanly, and holds the charge point.
    Fix (SECC): after sending a FAILED response stop the V2G session: close the TCP
    connection (ISO 15118-2 [V2G2-539] with [V2G2-034]; DIN [V2G-DC-665]).
    Source: ISO 15118-2 [V2G2-539]; DIN 70121 [V2G-DC-665]; ISO 15118-20 (a FAILED response
    ends the session, ⚠ E-D20); PROTOCOL_FACTS §4.0 ("then the SECC terminates [V2G2-539],
    closing TCP [V2G2-034]").

    Example:

        #59 ChargeParameterDiscoveryReq
          → #61 ChargeParameterDiscoveryRes ResponseCode=FAILED_WrongChargeParameter
        #63 CableCheckReq → #65 CableCheckRes ResponseCode=FAILED_SequenceError
        #83 CableCheckReq → #85 CableCheckRes ResponseCode=FAILED_SequenceError
    """

    code = "SES013"
    title = "SECC did not end the session after its FAILED response"
    severity = "warning"
    category = "session"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-539] / DIN 70121 [V2G-DC-665] terminate after FAILED"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        w = walk(session, ctx)
        by_conn: dict = {}
        for st in w.steps:
            by_conn.setdefault(st.conn, []).append(st)
        for conn, steps in by_conn.items():
            first = next((st for st in steps if st.res is not None and st.base != "supportedAppProtocol"
                          and is_failed(facts(st.res).get("ResponseCode"))), None)
            if first is None:
                continue
            after = [st for st in steps if st.req.time > first.res.time and st.res is not None
                     and st.base != "SessionStop"]
            if not after:
                continue
            rc = facts(first.res).get("ResponseCode")
            last = after[-1]
            span = last.res.time - first.res.time
            codes = sorted({str(facts(st.res).get("ResponseCode")) for st in after})
            f = self.finding(
                session, [first.req.frame, first.res.frame, after[0].req.frame, after[0].res.frame,
                          last.res.frame],
                f"After {first.res.name} {rc} (frame {first.res.frame}) the SECC did not end the session: "
                f"it kept connection {conn} open and answered {len(after)} more request(s) over "
                f"{span:.1f} s ({after[0].req.name} frame {after[0].req.frame} … {last.res.name} frame "
                f"{last.res.frame}, {', '.join(codes)}) instead of closing it",
                time=first.res.time, measured=len(after), limit=0, unit="requests",
                evidence={"expected": "the SECC ends the session (closes TCP) after a FAILED response",
                          "actual": f"{len(after)} requests answered over {span:.1f} s",
                          "failed_response": first.res.name, "ResponseCode": rc,
                          "answered_after": len(after), "codes_after": codes, "connection": conn},
                values=[judged(first.res, "ResponseCode", rc)])
            f.count = len(after)
            yield f
