"""Response code rules on the EV's reaction to the EVSE's notifications: RSP003, RSP005."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import v2g_messages

from ..base import Rule, judged
from ..helpers import body, facts, find_first, is_failed, protocol_of_session
from ..state_machines import qualifier
from .common import FAULT_STATUS, _end_text, _stop_reaction

_STOP_SIGNAL_NOTE = {"StopCharging", "Terminate", "Pause"}
_STOP_SIGNAL_STATUS = {"EVSE_Shutdown", *FAULT_STATUS}


def _max_delay(e) -> float:
    d = find_first(body(e), "NotificationMaxDelay")
    return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else 0.0


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
    st = f.get("EVSEStatusCode")
    note = f.get("EVSENotification")
    if st not in _STOP_SIGNAL_STATUS and note not in _STOP_SIGNAL_NOTE:
        return None                 # the common case: no stop signal
    parts = []
    if st in _STOP_SIGNAL_STATUS:
        parts.append(st)
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

    Example:

        #191 CurrentDemandReq
          → #193 CurrentDemandRes EVSEStatusCode=EVSE_Shutdown EVSENotification=StopCharging
              NotificationMaxDelay=2 (+0.023 s)
        #271 CurrentDemandReq (+2.030 s)
          → #273 CurrentDemandRes EVSEStatusCode=EVSE_Shutdown EVSENotification=StopCharging
              NotificationMaxDelay=2 (+0.023 s)
        #351 CurrentDemandReq (+2.000 s)
          → #353 CurrentDemandRes EVSEStatusCode=EVSE_Shutdown EVSENotification=StopCharging
              NotificationMaxDelay=2 (+0.016 s)
        #355 RST EVSE→EV (+0.020 s)
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
                                         "reaction": react.name if react is not None else None},
                               values=[judged(sig, "EVSENotification"),
                                       judged(sig, "NotificationMaxDelay", run["delay_s"], unit="s")])


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

    Example:

        #175 CurrentDemandReq
          → #177 CurrentDemandRes EVSENotification=ReNegotiation NotificationMaxDelay=1 (+0.018 s)
        #219 CurrentDemandReq (+1.110 s)
          → #221 CurrentDemandRes EVSENotification=ReNegotiation NotificationMaxDelay=1 (+0.023 s)
        #247 CurrentDemandReq
          → #249 CurrentDemandRes EVSENotification=ReNegotiation NotificationMaxDelay=1 (+0.020 s)
        #251 PowerDeliveryReq → #253 PowerDeliveryRes NotificationMaxDelay=0 (+0.093 s)
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
                                             "actual": react.name, "signal": run["what"]},
                                   values=[judged(sig, "EVSENotification")])
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
                                         "signal": run["what"]},
                               values=[judged(sig, "EVSENotification"),
                                       judged(sig, "NotificationMaxDelay", run["delay_s"], unit="s")])
