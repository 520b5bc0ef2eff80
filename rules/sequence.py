"""Message sequences: what may follow what (state machines per protocol), one request and
one response, requests left unanswered, sessions that end without SessionStop.

Every rule here reads one walk over the session's V2G messages (analyzer/views/walk.py
:func:`walk`): per TCP connection the requests in order, each with its response (or none),
the state the sequence tables of rules/state_machines.py were in when it came, the
responses that answered nothing or the wrong request, and how the connection ended.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import v2g_messages
from ccs_analyzer.analyzer.views.walk import Step, Walk, walk

from .base import Rule
from .helpers import body, facts, is_failed, protocol_of_session
from .state_machines import base_name, msg_timeout_s, qualifier

_STOP_CODES = ("EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction",
               "EVSE_UtilityInterruptEvent")


# --------------------------------------------------------------------------- helpers
def _answer(step: Step) -> str:
    """What the SECC did with a request, in words."""
    if step.res is not None:
        rc = facts(step.res).get("ResponseCode")
        return f"the SECC answered {rc} ({step.res.name}, frame {step.res.frame})"
    if step.wrong_res is not None:
        return f"the SECC answered with {step.wrong_res.name} (frame {step.wrong_res.frame})"
    return "no response"


def _broke(step: Step, last_frame: int | None) -> bool:
    """Whether a request ended the session: refused (FAILED), or it is the last request and
    the session ended without a response."""
    if step.res is not None:
        return is_failed(facts(step.res).get("ResponseCode"))
    return step.req.frame == last_frame or step.wrong_res is not None


def _req_label(step: Step) -> str:
    return f"{step.req.name}({step.qual})" if step.qual and step.base == "PowerDelivery" else step.req.name


# --------------------------------------------------------------------------- rules
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


class OutOfSequenceRequest(Rule):
    """A request that the sequence table does not allow after the previous response.

    What it checks: per TCP connection, each request of the EVCC against the state the
    previous response left: DIN 70121 (DC, EIM), ISO 15118-2 AC and DC with EIM
    (ExternalPayment) and PnC (Contract: PaymentDetails, CertificateInstallation /
    CertificateUpdate, Authorization), EVSEProcessing = Ongoing loops (ContractAuthentication
    / Authorization, ChargeParameterDiscovery, CableCheck), ReceiptRequired → MeteringReceipt,
    renegotiation (PowerDelivery Renegotiate → ChargeParameterDiscovery), ISO 15118-2
    [V2G2-812] (PowerDeliveryReq(Renegotiate) only after the charge loop started,
    PowerDeliveryReq(Start) not directly after it), pause and resume (every new TCP
    connection starts with supportedAppProtocolReq → SessionSetupReq), and ISO 15118-20 as
    far as PROTOCOL_FACTS §4C goes (its DC_PreCharge / PowerDelivery / DC_WeldingDetection
    state depends on the request's EVProcessing), and the end of the session after a FAILED
    response ([V2G2-539], DIN [V2G-DC-665]: only SessionStopReq is tolerated after it — an EV
    that goes on with its next request ignores that the SECC refused). SessionStopReq is
    allowed while an EVSEProcessing = Ongoing loop waits (rules/state_machines.py says
    why). One finding per (previous response, request) with the count and the first and
    last frames. Simplifications: DIN's CableCheck exit is EVSEProcessing = Finished (its
    EVSE_Ready / isolation condition [V2G-DC-499] is judged by the cable-check rules,
    CBL001/CBL002); after an ISO 15118-2 DC renegotiation PowerDeliveryReq is accepted
    besides CableCheckReq (⚠ not pinned down); states the tables do not cover (ServiceDetail
    in DIN, WPT/ACDP) are not checked.
    Severity: error when the SECC refused the request (FAILED_*) or the session ended on it;
    ``tolerated_severity`` (info) when the SECC answered OK and the session went on: the EV
    deviated but this SECC accepted it (a stricter SECC answers FAILED_SequenceError).
    Why it matters: the SECC shall answer an out-of-order request with FAILED_SequenceError
    and terminate ([V2G2-538], [V2G2-539], DIN [V2G-DC-390], [V2G-DC-665]).
    Fix (EVCC): follow the message sequence of the standard's sequence tables: after the
    named response send one of the allowed requests; after a FAILED response stop the
    session (SessionStopReq or close the connection) instead of going on.
    Source: DIN 70121 §9.6 [V2G-DC-437…469]; ISO 15118-2 §8.8.2/§8.8.4 [V2G2-541…813],
    [V2G2-812]; ISO 15118-20 §8.8 [V2G20-1483…2006]; PROTOCOL_FACTS §4A/§4B/§4C "Legal
    request sequence" (E-DIN, E-ISO, J-SECC-*, V20-TXT, ISS-EV2305).
    """

    code = "SEQ002"
    title = "Request not allowed after the previous response"
    severity = "error"
    category = "sequence"
    kinds = ("out-of-sequence",)
    explains = ("failed-response", "evse-refused", "evse-abort", "no-response", "no-session-stop",
                "connection-reset")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-538] message sequence"
    failure_modes = ("UC2 110",)
    params = {"tolerated_severity": "info"}

    def check(self, session, ctx):
        w = walk(session, ctx)
        groups: dict = {}
        for s in w.steps:
            if s.ok is False:
                if s.before.label == "after a FAILED response":
                    # one problem: the EV went on after the session had ended, whatever it sent
                    groups.setdefault((s.before.label, "*", None), []).append(s)
                else:
                    groups.setdefault((s.before.label, s.req.name, s.qual), []).append(s)
        last_req = next((s.req.frame for s in reversed(w.steps)), None)
        for (label, name, q), steps in groups.items():
            first, lastg = steps[0], steps[-1]
            st = first.before
            req_txt = _req_label(first)
            after = (f"after {first.prev_res.name} (frame {first.prev_res.frame})"
                     if first.prev_res is not None else "as the first request of the connection")
            if label == "after a FAILED response" and first.prev_res is not None:
                rc = facts(first.prev_res).get("ResponseCode")
                after = (f"after {first.prev_res.name} {rc} (frame {first.prev_res.frame}), which "
                         "ended the session,")
            requirement = st.requirement
            if (w.protocol == "ISO 15118-2" and first.base == "PowerDelivery"
                    and st.allows_type("PowerDelivery")):
                requirement = "ISO 15118-2 [V2G2-812]"
            broke = any(_broke(s, last_req) for s in steps)
            sev = None if broke else self.p["tolerated_severity"]
            n = len(steps)
            times = f" ({n} times, last frame {lastg.req.frame})" if n > 1 else ""
            frames = [first.req.frame, lastg.req.frame]
            for s in (first, lastg):
                if s.prev_res is not None:
                    frames.append(s.prev_res.frame)
                for x in (s.res, s.wrong_res):
                    if x is not None:
                        frames.append(x.frame)
            f = self.finding(
                session, frames,
                f"{req_txt} (frame {first.req.frame}) {after} is out of sequence{times}: allowed "
                f"next are {st.allowed_text()} ({requirement}); {_answer(first)}",
                time=first.req.time, measured=req_txt, limit=st.allowed_text(),
                severity=sev,
                evidence={"expected": st.allowed_text(), "actual": req_txt,
                          "state": st.label, "requirement": requirement,
                          "previous_response": first.prev_res.name if first.prev_res else None,
                          "answer": _answer(first), "count": n,
                          "tolerated": not broke})
            f.requirement = requirement
            f.count = n
            yield f


def _seq_error_steps(w: Walk):
    for s in w.steps:
        if s.res is not None and facts(s.res).get("ResponseCode") == "FAILED_SequenceError":
            yield s


class SequenceErrorAnswered(Rule):
    """The SECC answered FAILED_SequenceError to a request that was out of sequence.

    What it checks: responses with ResponseCode FAILED_SequenceError whose request SEQ002
    found not allowed after the previous response. The response is the SECC doing what the
    standard asks; the cause is the request, so this finding is a consequence linked to the
    SEQ002 finding. One finding per (state, request) with the count and the first and last
    frames.
    Why it matters: after FAILED_SequenceError the SECC terminates the session
    ([V2G2-539], DIN [V2G-DC-665]).
    Fix (EVCC): send the requests in the order of the sequence table (see the linked SEQ002
    finding for the allowed requests).
    Source: ISO 15118-2 [V2G2-538] [V2G2-459] [V2G2-539]; DIN 70121 [V2G-DC-390]
    [V2G-DC-665]; ISO 15118-20 responseCodeType FAILED_SequenceError; PROTOCOL_FACTS §4.0.
    """

    code = "SEQ003"
    title = "FAILED_SequenceError answered to an out-of-sequence request"
    severity = "error"
    category = "sequence"
    kinds = ("failed-response", "evse-refused")
    explains = ("ev-stop", "ev-abort", "no-session-stop", "connection-reset", "out-of-sequence")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-538] FAILED_SequenceError"
    failure_modes = ("UC2 110",)

    def check(self, session, ctx):
        groups: dict = {}
        for s in _seq_error_steps(walk(session, ctx)):
            if s.ok is not False:
                continue
            groups.setdefault((s.before.label, _req_label(s)), []).append(s)
        for (label, req), steps in groups.items():
            s, last = steps[0], steps[-1]
            n = len(steps)
            after = (f"{s.prev_res.name} (frame {s.prev_res.frame})" if s.prev_res is not None
                     else "the start")
            if label == "after a FAILED response":
                after = f"the FAILED response {after}"
            more = f" ({n} times, last {last.res.name} frame {last.res.frame})" if n > 1 else ""
            f = self.finding(session, [s.req.frame, s.res.frame, last.req.frame, last.res.frame],
                             f"{s.res.name} (frame {s.res.frame}) answers FAILED_SequenceError to "
                             f"{req} (frame {s.req.frame}), which is not allowed after {after}{more}",
                             time=s.res.time, measured="FAILED_SequenceError",
                             evidence={"expected": s.before.allowed_text(), "actual": req,
                                       "response": s.res.name, "state": label, "count": n})
            f.count = n
            yield f


class SequenceErrorUnjustified(Rule):
    """The SECC answered FAILED_SequenceError to a request the sequence allows.

    What it checks: responses with ResponseCode FAILED_SequenceError whose request the
    sequence table allows after the previous response (the SECC's state machine disagrees
    with the standard: error, culprit SECC), or whose state could not be established from
    the capture (warning, culprit unknown: the connection's start was not captured or the
    tables do not cover the previous message).
    The defect is the SECC's response code (category response-code).
    Why it matters: the SECC terminates a session the EV ran correctly — e.g. an EV that ends
    the session with SessionStopReq while CableCheck is still Ongoing (its CableCheck timeout
    expired) is refused instead of stopped in order.
    Fix (SECC): accept every request the sequence table allows after the response you sent
    (e.g. SessionStopReq in most states, also while an EVSEProcessing = Ongoing loop waits;
    the loop request while EVSEProcessing = Ongoing).
    Source: ISO 15118-2 [V2G2-538] and the sequence tables §8.8.2; DIN 70121 §9.6;
    ISO 15118-20 §8.8; PROTOCOL_FACTS §4A/§4B/§4C.
    """

    code = "SEQ004"
    title = "FAILED_SequenceError to an allowed request"
    severity = "error"
    category = "response-code"
    kinds = ("failed-response", "evse-refused")
    explains = ("ev-stop", "ev-abort", "no-session-stop", "connection-reset", "out-of-sequence")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-538] FAILED_SequenceError only for out-of-order requests"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        for s in _seq_error_steps(walk(session, ctx)):
            if s.ok is False:
                continue
            prev = (f"after {s.prev_res.name} (frame {s.prev_res.frame})" if s.prev_res is not None
                    else "as the first request")
            if s.ok:
                frames = [s.req.frame, s.res.frame] + ([s.prev_res.frame] if s.prev_res else [])
                yield self.finding(session, frames,
                                   f"{s.res.name} (frame {s.res.frame}) answers FAILED_SequenceError to "
                                   f"{_req_label(s)} (frame {s.req.frame}) {prev}, which the sequence "
                                   f"table allows ({s.before.requirement})",
                                   time=s.res.time, measured=_req_label(s), limit=s.before.allowed_text(),
                                   evidence={"expected": f"an OK response to {_req_label(s)}",
                                             "actual": "FAILED_SequenceError",
                                             "allowed": s.before.allowed_text(),
                                             "state": s.before.label})
            else:
                yield self.finding(session, [s.req.frame, s.res.frame],
                                   f"{s.res.name} (frame {s.res.frame}) answers FAILED_SequenceError to "
                                   f"{_req_label(s)} (frame {s.req.frame}) {prev}; the capture does not "
                                   "show enough of the sequence to say whether the request was allowed",
                                   time=s.res.time, culprit="unknown", severity="warning",
                                   measured="FAILED_SequenceError",
                                   evidence={"expected": "a known sequence state", "actual": "unknown",
                                             "request": s.req.name})


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
                               time=s.wrong_res.time, measured=rs, limit=f"{base_name(rq)}Res",
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
                act = "reset (RST)" if end[2] == "RST" else "closed (FIN)"
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
                           time=last.time, culprit=culprit, measured=how,
                           evidence={"expected": "PowerDelivery stop / SessionStop, or EVSE_Shutdown / "
                                                 "StopCharging before the EVSE closes",
                                     "actual": how, "last_message": last.name,
                                     "last_status": facts(last).get("EVSEStatusCode")})
        # it describes how the session ended (rules/causes.py): the side that dropped it
        f.kinds = ("evse-abort" if by == "EVSE" else "ev-abort", "no-session-stop",
                   "connection-reset")
        yield f
