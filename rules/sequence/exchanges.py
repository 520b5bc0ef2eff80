"""Sequence rules on request / response pairs: SEQ005-SEQ008."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.events import base_name
from ccs_analyzer.analyzer.views.walk import Step, Walk, walk
from ccs_analyzer.dissectors.events import TCP_RST

from ..base import Rule
from ..helpers import facts
from ..state_machines import msg_timeout_s
from .common import _STOP_CODES, _req_label


class ResponseWithoutRequest(Rule):
    """A response that answers no pending request.

    What it checks: per TCP connection, a V2G response while no request is waiting for one
    (a second response to one request, or a response before any request). Connections whose
    start the capture missed are not checked before their first request, nor responses
    after a gap in the capture's EV → EVSE stream (the request may be in the gap).
    Why it matters: one request gets exactly one response ([V2G2-538], ISO 15118-2
    §8.8.2); an unexpected response confuses the EV's state machine.
    Fix (SECC): send exactly one response per request, after the request.
    Source: ISO 15118-2 §8.8.2 (request-response pattern), [V2G2-538]; DIN 70121 §9.6;
    PROTOCOL_FACTS §4.0 "Every request gets exactly one response".

    Example:

        #163 CurrentDemandReq → #165 CurrentDemandRes
        #167 CurrentDemandRes
    """

    code = "SEQ005"
    title = "Response without a request"
    severity = "warning"
    category = "sequence"
    culprit = "SECC"
    requirement = "ISO 15118-2 §8.8.2 one response per request"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        groups: dict = {}
        w = walk(session, ctx)
        for e, prev in w.orphans:
            since = prev.req.time if prev is not None else float("-inf")
            if _lost_after(w, e.conn, since, e.time, "EV->EVSE") is not None:
                continue                          # its request may be in the capture's gap
            groups.setdefault(e.name, []).append((e, prev))
        for name, items in groups.items():
            e, prev = items[0]
            last = items[-1][0]
            before = (f"; the last request {prev.req.name} (frame {prev.req.frame}) was already "
                      f"answered" + (f" by frame {prev.res.frame}" if prev.res is not None else "")
                      if prev is not None else "; no request came before it on this connection")
            n = len(items)
            more = f" ({n} such responses, last frame {last.frame})" if n > 1 else ""
            yield self.finding(session, [e.frame, last.frame] + ([prev.req.frame] if prev else []),
                               f"{name} (frame {e.frame}) answers no pending request{before}{more}",
                               time=e.time, measured=n,
                               evidence={"expected": "a response only to a pending request",
                                         "actual": f"{n} × {name} without request",
                                         "previous_request": prev.req.name if prev else None})


class ResponseTypeMismatch(Rule):
    """A response of another type than the pending request.

    What it checks: per TCP connection, the response to a pending request must carry the
    same message type (CableCheckReq → CableCheckRes). One finding per (request, response)
    pair of names with the count.
    Why it matters: the EV cannot use the response; it times out or aborts
    ([V2G2-538]: the response of the corresponding type, even for FAILED_SequenceError).
    Fix (SECC): answer each request with its own response type.
    Source: ISO 15118-2 [V2G2-538] [V2G2-459]; DIN 70121 [V2G-DC-390]; PROTOCOL_FACTS §4.0.

    Example:

        #179 PowerDeliveryReq → (no response)
        #181 CurrentDemandRes
    """

    code = "SEQ006"
    title = "Response of another type than the request"
    severity = "error"
    category = "sequence"
    kinds = ("bad-content",)
    explains = ("ev-abort", "no-session-stop", "connection-reset")
    culprit = "SECC"
    requirement = "ISO 15118-2 [V2G2-538] response of the corresponding type"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        groups: dict = {}
        for s in walk(session, ctx).steps:
            if s.wrong_res is not None:
                groups.setdefault((s.req.name, s.wrong_res.name), []).append(s)
        for (rq, rs), steps in groups.items():
            s, last = steps[0], steps[-1]
            n = len(steps)
            more = f" ({n} times, last frame {last.wrong_res.frame})" if n > 1 else ""
            frames = [s.req.frame, s.wrong_res.frame, last.req.frame, last.wrong_res.frame]
            yield self.finding(session, frames,
                               f"{rq} (frame {s.req.frame}) answered with {rs} (frame "
                               f"{s.wrong_res.frame}) instead of {base_name(rq)}Res{more}",
                               time=s.wrong_res.time,
                               evidence={"expected": f"{base_name(rq)}Res", "actual": rs, "count": n})


def _end_after(w: Walk, conn, t: float):
    """The first FIN/RST of a connection at or after time ``t``."""
    for item in w.ends.get(conn, ()):
        if item[0] >= t:
            return item
    return None


def _lost_after(w: Walk, conn, t: float, t_end: float | None, direction: str = "EVSE->EV") -> int | None:
    """Frame of a 'TCP bytes missing' event of a connection in ``direction`` between ``t``
    and ``t_end`` (None: no end)."""
    for tt, fr, d in w.gaps.get(conn, ()):
        if tt >= t and (t_end is None or tt <= t_end) and d == direction:
            return fr
    return None


class RequestUnanswered(Rule):
    """A request that got no response.

    What it checks: each V2G request without a response on its connection, and what came
    instead: the connection closed or reset, the capture ended, or the EV's next request
    after at least V2G_EVCC_Msg_Timeout (a next request sooner is SEQ008). Culprit SECC
    when the SECC closed/reset the connection or let the EV's message timeout expire;
    culprit EVCC (warning) when the EV itself closed the connection before its own
    V2G_EVCC_Msg_Timeout expired (the SECC was still within its time). Nothing is reported
    when the capture simply ended before the timeout expired. When the capture lost bytes of
    the EVSE → EV stream after the request, the response may be in the gap: warning,
    culprit capture. When the response before the request asked the EV to stop
    (EVSE_Shutdown, a fault status, StopCharging) and the EVSE then closed the connection,
    the EVSE gave up on an EV that did not stop (RSP003): info, culprit EVCC. One finding
    per (connection, request name, cause), with the count. supportedAppProtocolReq is the
    handshake rules' (HSK008).
    Why it matters: every request gets exactly one response within the SECC's performance
    time; a request left unanswered ends the session.
    Fix (SECC): answer every request within V2G_SECC_Msg_Performance_Time, also when the
    answer is FAILED; (EVCC): wait V2G_EVCC_Msg_Timeout before giving up.
    Source: ISO 15118-2 §8.8.2, [V2G2-538], Table 109 (V2G_EVCC_Msg_Timeout 2 s, 5 s for
    ServiceDetail/PaymentDetails/PowerDelivery/Certificate*, 0.25 s CurrentDemand); DIN 70121
    Tables 75/77 (2 s, CurrentDemand 0.25 s per DIN SPEC 70121:2014 — DIN TS 70121:2024
    says 0.5 s ⚠, parameter ``current_demand_timeout_s``); ISO 15118-20 Tables 215-217 (2 s,
    ChargeLoop 0.5 s); PROTOCOL_FACTS §3, §4A/§4B/§4C timing (J-TO-*, R-TR, PY-TAB).

    Example:

        #55 ContractAuthenticationReq → #57 ContractAuthenticationRes (+0.085 s)
        #59 ChargeParameterDiscoveryReq (+0.064 s) → (no response)
        #61 FIN EV→EVSE (+2.000 s)
    """

    code = "SEQ007"
    title = "Request left unanswered"
    severity = "error"
    category = "sequence"
    kinds = ("no-response",)
    explains = ("ev-timeout", "ev-abort", "no-session-stop", "connection-reset")
    culprit = "SECC"
    requirement = "ISO 15118-2 §8.8.2 every request gets a response; Table 109 V2G_EVCC_Msg_Timeout"
    failure_modes = ("UC2 104", "UC2 106")
    params = {"current_demand_timeout_s": 0.25}

    def check(self, session, ctx):
        w = walk(session, ctx)
        cap_end = ctx.capture.get("last_time")
        groups: dict = {}
        for s in w.steps:
            if s.res is not None or s.wrong_res is not None or s.undecoded:
                continue
            if s.base == "supportedAppProtocol":
                continue                              # HSK008 (handshake rules)
            t0 = s.req.time
            limit = msg_timeout_s(w.protocol, s.base, self.p["current_demand_timeout_s"])
            end = _end_after(w, s.conn, t0)
            nxt = s.next_req
            if nxt is not None and (end is None or nxt.time <= end[0]):
                gap = nxt.time - t0
                if gap < limit:
                    continue                          # SEQ008: the EV did not wait
                kind = ("next", "SECC", "error")
                how = (f"the EV sent {nxt.name} (frame {nxt.frame}) {gap:.2f} s later, after its "
                       f"{limit:g} s message timeout")
                frames = [s.req.frame, nxt.frame]
                waited = gap
            elif end is not None:
                waited = end[0] - t0
                side = "EV" if end[3] == "EV->EVSE" else "EVSE"
                act = "reset (RST)" if end[2] == TCP_RST else "closed (FIN)"
                frames = [s.req.frame, end[1]]
                stop = _stop_signal_before(s)
                if side == "EVSE" and stop is not None:
                    kind = ("closed-after-stop-signal", "EVCC", "info")
                    how = (f"the EVSE {act} the connection (frame {end[1]}) {waited:.2f} s later, "
                           f"having asked the EV to stop ({stop[1]}) since frame {stop[0].frame}")
                elif side == "EVSE":
                    kind = ("closed-by-SECC", "SECC", "error")
                    how = f"the EVSE {act} the connection (frame {end[1]}) {waited:.2f} s later"
                elif waited < limit:
                    kind = ("EV-gave-up", "EVCC", "warning")
                    how = (f"the EV {act} the connection (frame {end[1]}) {waited:.2f} s later, "
                           f"before its own V2G_EVCC_Msg_Timeout of {limit:g} s expired")
                else:
                    kind = ("timeout", "SECC", "error")
                    how = (f"the EV {act} the connection (frame {end[1]}) after {waited:.2f} s, "
                           f"beyond the {limit:g} s message timeout")
            else:
                if cap_end is None or cap_end - t0 < limit:
                    continue                          # the capture ended first: nobody's fault
                waited = cap_end - t0
                kind = ("silent", "SECC", "error")
                how = f"nothing came for {waited:.2f} s until the capture ended"
                frames = [s.req.frame]
            lost = _lost_after(w, s.conn, t0, t0 + waited)
            if lost is not None:
                kind = ("lost", "capture", "warning")
                how += f"; the capture lost EVSE → EV bytes (frame {lost}): the response may be in the gap"
                frames.append(lost)
            groups.setdefault((s.conn, s.req.name, kind), []).append((s, how, frames, waited, limit))
        for (conn, name, (k, culprit, sev)), items in groups.items():
            s, how, frames, waited, limit = items[0]
            n = len(items)
            loop = (f" after {s.loop_run - 1} earlier {s.base}Req in a row" if s.loop_run > 1 else "")
            loop_ev = _loop_evidence(s)
            more = f" ({n} such requests, last frame {items[-1][0].req.frame})" if n > 1 else ""
            fr = frames + items[-1][2]
            if s.prev_res is not None:
                fr.append(s.prev_res.frame)
            f = self.finding(session, fr,
                               f"{_req_label(s)} (frame {s.req.frame}){loop} got no response: {how}{more}",
                               time=s.req.time, culprit=culprit, severity=sev,
                               measured=round(waited, 3), limit=limit, unit="s",
                               evidence={"expected": f"{base_name(name)}Res within {limit:g} s "
                                                     "(V2G_EVCC_Msg_Timeout)",
                                         "actual": how, "count": n, "cause": k, **loop_ev})
            # what it is (rules/causes.py): how the wait ended decides
            f.kinds = {"closed-by-SECC": ("no-response", "evse-abort"),
                       "closed-after-stop-signal": ("evse-abort",),
                       "EV-gave-up": ("ev-abort",),
                       "lost": ("no-response",)}.get(k, ("no-response",))
            if k in ("EV-gave-up", "closed-after-stop-signal", "lost"):
                f.explains = ("no-session-stop", "connection-reset")
            yield f


def _stop_signal_before(s: Step):
    """(response, what) when the response before an unanswered request asked the EV to stop
    (EVSE_Shutdown / a fault status / EVSENotification StopCharging): the EVSE then ends
    the session because the EV did not stop (RSP003), not because it failed to answer."""
    r = s.prev_res
    if r is None:
        return None
    f = facts(r)
    what = [x for x in (f.get("EVSEStatusCode") if f.get("EVSEStatusCode") in _STOP_CODES else None,
                        f.get("EVSENotification") if f.get("EVSENotification") in
                        ("StopCharging", "Terminate", "Pause") else None) if x]
    return (r, " + ".join(what)) if what else None


def _loop_evidence(s: Step) -> dict:
    if s.loop_run <= 1 or s.prev_res is None:
        return {}
    f = facts(s.prev_res)
    return {"loop_length": s.loop_run, "last_EVSEProcessing": f.get("EVSEProcessing")}


class RequestsWithoutWaiting(Rule):
    """Two requests in a row: the EV sent its next request before the response came.

    What it checks: per TCP connection, a request followed by another request of the EV
    while no response had come and V2G_EVCC_Msg_Timeout had not yet expired (after the
    timeout the missing response is SEQ007's). Culprit EVCC. Error when the session ended
    on it, else warning. Not reported when the capture lost EVSE → EV bytes in between (the
    response may be in the gap). One finding per pair of request names with the count.
    Why it matters: V2G communication is strictly one request, one response; a request
    while another is pending is out of sequence for the SECC ([V2G2-538]).
    Fix (EVCC): wait for the response (or for V2G_EVCC_Msg_Timeout and then stop) before
    sending the next request.
    Source: ISO 15118-2 §8.8.2 request-response pattern, [V2G2-538], Table 109; DIN 70121
    §9.6; PROTOCOL_FACTS §4.0, §4B timing.

    Example:

        #151 PowerDeliveryReq → (no response)
        #153 PowerDeliveryReq → #155 PowerDeliveryRes (+0.089 s)
    """

    code = "SEQ008"
    title = "Two requests in a row without a response"
    severity = "warning"
    category = "sequence"
    kinds = ("out-of-sequence",)
    explains = ("failed-response", "evse-refused", "evse-abort", "no-session-stop")
    culprit = "EVCC"
    requirement = "ISO 15118-2 §8.8.2 one request, one response"
    failure_modes = ("UC2 110",)
    params = {"current_demand_timeout_s": 0.25}

    def check(self, session, ctx):
        w = walk(session, ctx)
        groups: dict = {}
        last_req = next((s.req.frame for s in reversed(w.steps)), None)
        for s in w.steps:
            if s.res is not None or s.wrong_res is not None or s.undecoded or s.next_req is None:
                continue
            limit = msg_timeout_s(w.protocol, s.base, self.p["current_demand_timeout_s"])
            end = _end_after(w, s.conn, s.req.time)
            if end is not None and end[0] < s.next_req.time:
                continue
            gap = s.next_req.time - s.req.time
            if gap >= limit:
                continue
            if _lost_after(w, s.conn, s.req.time, s.next_req.time) is not None:
                continue                          # the response may be in the capture's gap
            groups.setdefault((s.req.name, s.next_req.name), []).append((s, gap, limit))
        for (a, b), items in groups.items():
            s, gap, limit = items[0]
            n = len(items)
            broke = any(x[0].next_req.frame == last_req for x in items)
            more = f" ({n} times, last frame {items[-1][0].req.frame})" if n > 1 else ""
            yield self.finding(session, [s.req.frame, s.next_req.frame, items[-1][0].next_req.frame],
                               f"{a} (frame {s.req.frame}) had no response yet when the EV sent {b} "
                               f"(frame {s.next_req.frame}) {gap:.3f} s later (message timeout "
                               f"{limit:g} s){more}", time=s.next_req.time,
                               severity="error" if broke else None,
                               measured=round(gap, 3), limit=limit, unit="s",
                               evidence={"expected": f"{base_name(a)}Res before the next request",
                                         "actual": f"{b} after {gap:.3f} s without response",
                                         "count": n})
