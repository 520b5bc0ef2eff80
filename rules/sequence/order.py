"""Sequence rules on the order of requests and FAILED_SequenceError: SEQ002-SEQ004."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.walk import Step, Walk, walk

from ..base import Rule, judged
from ..helpers import facts, is_failed
from .common import _req_label


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

    Example:

        #59 ChargeParameterDiscoveryReq → #61 ChargeParameterDiscoveryRes
        #63 PowerDeliveryReq ChargeProgress=Start
          → #65 PowerDeliveryRes ResponseCode=FAILED_SequenceError
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
                time=first.req.time,
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

    Example:

        #63 PowerDeliveryReq ChargeProgress=Start
          → #65 PowerDeliveryRes ResponseCode=FAILED_SequenceError
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
                                       "response": s.res.name, "state": label, "count": n},
                             values=[judged(x.res, "ResponseCode", "FAILED_SequenceError") for x in (s, last)])
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

    Example:

        #63 CableCheckReq → #65 CableCheckRes
        #67 CableCheckReq → #69 CableCheckRes ResponseCode=FAILED_SequenceError
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
                                   time=s.res.time,
                                   evidence={"expected": f"an OK response to {_req_label(s)}",
                                             "actual": "FAILED_SequenceError",
                                             "allowed": s.before.allowed_text(),
                                             "state": s.before.label},
                                   values=[judged(s.res, "ResponseCode", "FAILED_SequenceError",
                                                  expected="OK")])
            else:
                yield self.finding(session, [s.req.frame, s.res.frame],
                                   f"{s.res.name} (frame {s.res.frame}) answers FAILED_SequenceError to "
                                   f"{_req_label(s)} (frame {s.req.frame}) {prev}; the capture does not "
                                   "show enough of the sequence to say whether the request was allowed",
                                   time=s.res.time, culprit="unknown", severity="warning",
                                   measured="FAILED_SequenceError",
                                   evidence={"expected": "a known sequence state", "actual": "unknown",
                                             "request": s.req.name},
                                   values=[judged(s.res, "ResponseCode", "FAILED_SequenceError")])
