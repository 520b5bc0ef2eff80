"""The charging loop's own health: how it starts (PowerDeliveryRes OK), how it reacts to the
EVSE's stop signals, ChargingComplete, metering receipts, and how it ends (PowerDelivery Stop).

The rules read the session's charge-loop *runs* — uninterrupted repetitions of the loop
request/response pair on one TCP connection, with what came before and after each
(analyzer/views/loops.py) — and the loop table (analyzer/views/loop_table.py). The loop
messages are CurrentDemand (DIN 70121, ISO 15118-2 DC), ChargingStatus (ISO 15118-2 AC),
DC_ChargeLoop / AC_ChargeLoop / WPT_ChargeLoop (ISO 15118-20).
"""
from __future__ import annotations

from ccs_analyzer.analyzer.views.connections import conn_one_sided, lost_bytes
from ccs_analyzer.analyzer.views.loop_table import (allowed_current, battery_voltage,
                                                    no_current_stretches)
from ccs_analyzer.analyzer.views.loops import (LOOP, STOP_NOTIFICATION, STOP_STATUS, end_culprit,
                                               end_text, flag, is_start, loop_runs)

from .base import LoopRule, judged
from .helpers import base_name, body, excerpt, facts, find_first, is_failed, lower

def ok_response(e) -> bool:
    """A decoded response whose ResponseCode is not FAILED*."""
    return e is not None and e.message is not None and not is_failed(facts(e).get("ResponseCode"))


def _current_request(q: dict) -> float | None:
    """What a loop request says about the current the EV wants: EVTargetCurrent (DIN, ISO-2
    DC, -20 scheduled DC); for -20 AC the power the EV draws (EVPresentActivePower, W);
    None when the message says nothing about it (ISO-2 AC, -20 dynamic DC)."""
    i = q.get("EVTargetCurrent_A")
    if i is None:
        i = q.get("EVPresentActivePower_W")
    return i


class LoopStartedWithoutPowerDelivery(LoopRule):
    """The charge loop started without a PowerDeliveryRes OK to a Start request.

    What it checks: the message on the same connection right before the first
    CurrentDemandReq / ChargingStatusReq / DC_ChargeLoopReq / AC_ChargeLoopReq of each loop
    must be a PowerDeliveryRes with a ResponseCode OK* answering a PowerDeliveryReq that
    starts energy transfer (ChargeProgress Start; DIN ReadyToChargeState true; -20 with
    EVProcessing Finished). The sequence rules (SEQ002) judge the same requests against the
    sequence tables (and leave states after a FAILED response unjudged); this rule names the
    PowerDelivery exchange the loop is missing, whatever the SECC then answered.
    Why it matters: only PowerDeliveryRes OK means the SECC closed its contactors and accepts
    the loop ([V2G2-590], [V2G-DC-462], [V2G20-861]); an EV that starts the loop after a
    refusal, a stop or no PowerDelivery at all asks for current the SECC did not agree to.
    Fix (EVCC): send CurrentDemandReq / ChargingStatusReq / ChargeLoopReq only after
    PowerDeliveryRes OK to a Start request; stop the session on a FAILED PowerDeliveryRes.
    Source: ISO 15118-2 [V2G2-576], [V2G2-590]; DIN 70121 [V2G-DC-462]; ISO 15118-20
    [V2G20-861], PowerDeliveryRes to EVProcessing=Ongoing allows only PowerDeliveryReq
    (J-SECC-20); PROTOCOL_FACTS §4A, §4B, §4C sequence tables.

    Example:

        #151 PowerDeliveryReq → #153 PowerDeliveryRes ResponseCode=FAILED_PowerDeliveryNotApplied
        #155 CurrentDemandReq → #157 CurrentDemandRes ResponseCode=FAILED_SequenceError
    """

    code = "CHL001"
    title = "Charge loop started without PowerDeliveryRes OK"
    severity = "error"
    category = "charging-loop"
    kinds = ("out-of-sequence",)
    explains = ("failed-response", "evse-refused", "evse-abort")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-590]; DIN 70121 [V2G-DC-462]; ISO 15118-20 [V2G20-861]"

    def check(self, session, ctx):
        for run in loop_runs(session, ctx):
            first = run.first
            if not first.name.endswith("Req"):
                continue
            prev, prev2 = run.before, run.before2
            if prev is None:
                continue                  # the capture starts inside the session
            why = None
            frames = [prev.frame, first.frame]
            if base_name(prev.name) != "PowerDelivery":
                why = f"after {prev.name} (frame {prev.frame}) without any PowerDelivery exchange"
            elif prev.name == "PowerDeliveryReq":
                why = f"although PowerDeliveryReq (frame {prev.frame}) got no response"
            elif not ok_response(prev):
                why = (f"although PowerDeliveryRes (frame {prev.frame}) answered "
                       f"{facts(prev).get('ResponseCode')}")
            elif prev2 is not None and prev2.name == "PowerDeliveryReq":
                frames.insert(0, prev2.frame)
                b = body(prev2)
                if not is_start(prev2):
                    what = ("ReadyToChargeState=false" if "ReadyToChargeState" in b
                            else f"ChargeProgress={b.get('ChargeProgress')}")
                    why = f"after PowerDeliveryReq (frame {prev2.frame}) with {what}"
                elif b.get("EVProcessing") == "Ongoing":
                    why = (f"after PowerDeliveryReq (frame {prev2.frame}) with "
                           "EVProcessing=Ongoing (the EV had not finished PowerDelivery)")
            if why is None:
                continue
            yield self.finding(
                session, frames, f"{first.name} (frame {first.frame}) started the charge loop "
                f"{why}", time=first.time,
                evidence={"expected": "PowerDeliveryRes OK to a PowerDeliveryReq Start right "
                                      "before the first loop request",
                          "actual": why, "previous": excerpt(prev),
                          "loop_request": excerpt(first)},
                values=[judged(prev, "ResponseCode", facts(prev).get("ResponseCode"), expected="OK")
                        if prev.name == "PowerDeliveryRes" and not ok_response(prev) else None,
                        judged(prev2, "ReadyToChargeState" if "ReadyToChargeState" in body(prev2)
                               else "ChargeProgress")
                        if prev2 is not None and prev2.name == "PowerDeliveryReq" and "after PowerDeliveryReq" in why
                        and not is_start(prev2) else None,
                        judged(prev2, "EVProcessing", "Ongoing", expected="Finished")
                        if prev2 is not None and prev2.name == "PowerDeliveryReq" and "EVProcessing" in why
                        else None])


class CurrentRequestedAfterStop(LoopRule):
    """The EV kept requesting current after the EVSE signalled a stop.

    What it checks: after the first charge-loop response with EVSEStatusCode EVSE_Shutdown /
    EVSE_EmergencyShutdown / EVSE_Malfunction or EVSENotification StopCharging (-20:
    Terminate, Pause), further loop requests that still ask for current (EVTargetCurrent >
    ``min_current_a``; -20 AC: EVPresentActivePower > ``min_current_a`` W; loops whose
    requests say nothing about the current — ISO-2 AC, -20 dynamic mode — are left out). A
    status code leaves the EV ``grace_s`` to stop (⚠ no normative delay found; the Ioniq
    reacts in 250 ms); a notification alone leaves it NotificationMaxDelay (at least
    ``grace_s``). The protocol side — no PowerDeliveryReq (Stop) within NotificationMaxDelay
    — is RSP003 (response codes), the EVSE status itself RSP004; this rule is about the
    physics: current still asked for, and still delivered by an EVSE that declared it is
    shutting down (in the synopsis and the evidence). An EV that keeps looping with 0 A is
    not a finding here.
    Why it matters: the EVSE is shutting down; an EV that keeps drawing current forces the
    EVSE to open its contactors under load or to reset the connection.
    Fix (EVCC): on EVSE_Shutdown / StopCharging ramp EVTargetCurrent to 0 and send
    PowerDeliveryReq (Stop) within NotificationMaxDelay.
    Source: PROTOCOL_FACTS §4.0 "Status semantics" (EVSE_Shutdown → PowerDeliveryReq(Stop);
    NotificationMaxDelay; R-EVCC-CD, PYPLC readme); DIN 70121 / ISO 15118-2 DC_EVSEStatusType;
    ISO 15118-20 EVSENotification.

    Example:

        #191 CurrentDemandReq EVTargetCurrent=200 A
          → #193 CurrentDemandRes EVSEStatusCode=EVSE_Shutdown EVSENotification=StopCharging
              NotificationMaxDelay=2 (+0.023 s)
        #195 CurrentDemandReq EVTargetCurrent=200 A
          → #197 CurrentDemandRes EVSEStatusCode=EVSE_Shutdown EVSENotification=StopCharging
              NotificationMaxDelay=2 (+0.016 s)
        #351 CurrentDemandReq EVTargetCurrent=200 A (+3.946 s)
          → #353 CurrentDemandRes EVSEStatusCode=EVSE_Shutdown EVSENotification=StopCharging
              NotificationMaxDelay=2 (+0.016 s)
        #355 RST EVSE→EV (+0.020 s)
    """

    code = "CHL002"
    title = "EV kept requesting current after the EVSE signalled stop"
    severity = "warning"
    category = "charging-loop"
    kinds = ("stop-ignored",)
    explains = ("evse-abort", "no-response", "no-session-stop", "connection-reset")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = ("DIN 70121 / ISO 15118-2 DC_EVSEStatusCode, EVSENotification, "
                   "NotificationMaxDelay")
    failure_modes = ("UC2 237",)
    params = {"grace_s": 2.0, "min_current_a": 0.5}

    def check(self, session, ctx):
        for run in loop_runs(session, ctx):
            signal = None
            for cyc in run.cycles:
                r = cyc.r
                if cyc.res is not None and (r.get("EVSEStatusCode") in STOP_STATUS
                                            or r.get("EVSENotification") in STOP_NOTIFICATION):
                    signal = cyc
                    break
            if signal is None:
                continue
            r = signal.r
            status = r.get("EVSEStatusCode")
            note = r.get("EVSENotification")
            delay = find_first(body(signal.res), "NotificationMaxDelay")
            grace = self.p["grace_s"]
            if status not in STOP_STATUS and isinstance(delay, (int, float)):
                grace = max(grace, float(delay))
            after = [c for c in run.cycles if c.req is not None and c.req.time > signal.res.time]
            asking = []
            for c in after:
                i = _current_request(c.q)
                if i is not None and i > self.p["min_current_a"]:
                    asking.append(c)
            if not asking:
                continue
            span = asking[-1].req.time - signal.res.time
            if span <= grace:
                continue
            delivered = [c.r.get("EVSEPresentCurrent_A") for c in asking]
            delivered = [x for x in delivered if x is not None]
            asked = [_current_request(c.q) for c in asking]
            asked = [x for x in asked if x is not None]
            what = " / ".join(x for x in (status if status in STOP_STATUS else None,
                                          note if note in STOP_NOTIFICATION else None) if x)
            unit = "A" if asking[0].q.get("EVTargetCurrent_A") is not None else "W"
            amount = f" up to {max(asked):.1f} {unit}" if asked else ""
            flow = (f"; the EVSE still reported up to {max(delivered):.2f} A"
                    if delivered and max(delivered) > self.p["min_current_a"] else "")
            frames = [signal.res.frame, asking[0].req.frame, asking[-1].req.frame]
            tail = end_text(run)
            if run.after is not None:
                frames.append(run.after.frame)
            elif run.end is not None:
                frames.append(run.end.frame)
            yield self.finding(
                session, frames,
                f"After {signal.res.name} (frame {signal.res.frame}) reported {what}, the EV "
                f"sent {len(asking)} more {asking[0].req.name} asking for current{amount} "
                f"over {span:.1f} s (allowed {grace:.1f} s){flow}, {tail}",
                time=signal.res.time, measured=round(span, 3), limit=grace, unit="s",
                evidence={"expected": f"EVTargetCurrent 0 and PowerDeliveryReq (Stop) within "
                                      f"{grace:.1f} s of {what}",
                          "actual": f"{len(asking)} loop requests over {span:.1f} s",
                          "count": len(asking),
                          "NotificationMaxDelay_s": delay, "signal": excerpt(signal.res),
                          "last_request": excerpt(asking[-1].req),
                          "EVSEPresentCurrent_max_A": max(delivered) if delivered else None},
                values=[judged(signal.res, "EVSEStatusCode", status) if status in STOP_STATUS else None,
                        judged(signal.res, "EVSENotification", note) if note in STOP_NOTIFICATION else None]
                + [judged(c.req, "EVTargetCurrent", c.q.get("EVTargetCurrent_A"), expected=0, unit="A")
                   for c in (asking[0], asking[-1]) if c.q.get("EVTargetCurrent_A") is not None])


class CurrentAfterChargingComplete(LoopRule):
    """The EV kept asking for current after it declared ChargingComplete.

    What it checks: the loop requests with ChargingComplete = true (DIN / ISO-2
    CurrentDemandReq, -20 DisplayParameters) that still ask for more than ``min_current_a``,
    over more than ``grace_s`` from the first of them (⚠ analyst-chosen; no normative
    delay).
    Why it matters: ChargingComplete = true says the battery is full; the EV should ramp
    down and stop with PowerDeliveryReq (Stop). A full EV that keeps asking for current
    contradicts itself (wrong flag or a wrong current request).
    Fix (EVCC): set ChargingComplete only when charging is complete, then request 0 A and
    send PowerDeliveryReq (Stop).
    Source: ISO 15118-2 CurrentDemandReqType (ChargingComplete, BulkChargingComplete);
    DIN 70121 CurrentDemandReqType; ISO 15118-20 DisplayParametersType; PROTOCOL_FACTS §4D.

    Example:

        #179 CurrentDemandReq ChargingComplete=True EVTargetCurrent=199.8 A
          → #181 CurrentDemandRes (+0.016 s)
        #295 CurrentDemandReq ChargingComplete=True EVTargetCurrent=144.9 A (+7.507 s)
          → #297 CurrentDemandRes (+0.018 s)
    """

    code = "CHL003"
    title = "Current requested after ChargingComplete"
    severity = "warning"
    category = "charging-loop"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"grace_s": 5.0, "min_current_a": 1.0}
    requirement = ("ISO 15118-2 / DIN 70121 CurrentDemandReq ChargingComplete; "
                   "ISO 15118-20 DisplayParameters")

    def check(self, session, ctx):
        for run in loop_runs(session, ctx):
            start = None
            asking = []
            for c in run.cycles:
                if c.req is None:
                    continue
                if flag(c.qb, "ChargingComplete") is not True:
                    continue              # withdrawn ChargingComplete: CHL004's matter
                if start is None:
                    start = c
                i = _current_request(c.q)
                if i is not None and i > self.p["min_current_a"]:
                    asking.append((c, i))
            if start is None or not asking:
                continue
            span = asking[-1][0].req.time - start.req.time
            if span <= self.p["grace_s"]:
                continue
            worst = max(asking, key=lambda x: x[1])
            yield self.finding(
                session, [start.req.frame, worst[0].req.frame, asking[-1][0].req.frame],
                f"{start.req.name} (frame {start.req.frame}) declared ChargingComplete, yet the EV "
                f"asked for current in {len(asking)} requests over {span:.1f} s (up to "
                f"{worst[1]:.1f} A, frame {worst[0].req.frame})",
                time=start.req.time, measured=round(span, 3), limit=self.p["grace_s"], unit="s",
                evidence={"expected": "EVTargetCurrent ramped to 0 and PowerDeliveryReq (Stop) "
                                      "after ChargingComplete",
                          "actual": f"{len(asking)} requests asking for current",
                          "count": len(asking),
                          "first": excerpt(start.req, ("ChargingComplete", "EVTargetCurrent")),
                          "worst": excerpt(worst[0].req, ("ChargingComplete", "EVTargetCurrent"))},
                values=[judged(start.req, "ChargingComplete", True),
                        judged(worst[0].req, "EVTargetCurrent", worst[1], expected=0, unit="A")])


_PD_FIELDS = ("ReadyToChargeState", "ChargeProgress", "ChargingComplete", "BulkChargingComplete",
              "EVRESSSOC")


class ChargingCompleteInconsistent(LoopRule):
    """ChargingComplete / BulkChargingComplete used inconsistently.

    What it checks: (a) a PowerDeliveryReq that starts energy transfer while declaring
    ChargingComplete = true; (b) ChargingComplete or BulkChargingComplete going back from
    true to false within one charge loop.
    Why it matters: ChargingComplete = true means "full charge (100 % SOC) is complete";
    starting a transfer with it, or withdrawing it, leaves the EVSE (and a backend reading
    it) with a wrong picture of the session. ⚠ informative: no requirement names these
    cases.
    Fix (EVCC): set ChargingComplete / BulkChargingComplete from the battery state and keep
    them monotonic within a loop.
    Source: ISO 15118-2 DC_EVPowerDeliveryParameterType, CurrentDemandReqType (field
    semantics); DIN 70121 same types; ISO 15118-20 DisplayParametersType.

    Example:

        #151 PowerDeliveryReq ChargingComplete=True → #153 PowerDeliveryRes
    """

    code = "CHL004"
    title = "ChargingComplete / BulkChargingComplete inconsistent"
    severity = "info"
    category = "charging-loop"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 / DIN 70121 ChargingComplete, BulkChargingComplete semantics"

    def check(self, session, ctx):
        for e in session.events:
            if e.layer == "v2gtp" and e.message is not None and e.name == "PowerDeliveryReq":
                if is_start(e) and find_first(body(e), "ChargingComplete") is True:
                    soc = facts(e).get("SoC_pct")
                    yield self.finding(
                        session, [e.frame],
                        f"PowerDeliveryReq (frame {e.frame}) starts energy transfer with "
                        f"ChargingComplete=true" + (f" at SOC {soc:.0f} %" if soc is not None else ""),
                        time=e.time, evidence={"expected": "ChargingComplete=false when starting",
                                               "actual": "ChargingComplete=true",
                                               "message": excerpt(e, _PD_FIELDS)},
                        values=[judged(e, "ChargingComplete", True, expected=False)])
        for run in loop_runs(session, ctx):
            for name in ("ChargingComplete", "BulkChargingComplete"):
                was = None
                back = []
                for c in run.cycles:
                    if c.req is None:
                        continue
                    v = flag(c.qb, name)
                    if v is None:
                        continue
                    if was is not None and was[1] is True and v is False:
                        back.append((was[0], c.req))
                    was = (c.req, v)
                if back:
                    a, b = back[0]
                    yield self.finding(
                        session, [a.frame, b.frame] + ([back[-1][1].frame] if len(back) > 1 else []),
                        f"{name} went back from true ({a.name}, frame {a.frame}) to false "
                        f"({b.name}, frame {b.frame})"
                        + (f", {len(back)} times in the loop" if len(back) > 1 else ""),
                        time=b.time, measured=len(back),
                        evidence={"expected": f"{name} stays true once set", "actual": "true → false",
                                  "count": len(back),
                                  "before": excerpt(a, (name,)), "after": excerpt(b, (name,))},
                        values=[judged(a, name, True), judged(b, name, False, expected=True)])


class LoopNotResumedAfterReceipt(LoopRule):
    """The charge loop did not go on properly after a metering receipt.

    What it checks: the loop side of the metering-receipt exchange inside the charge loop:
    after MeteringReceiptRes OK the EV's next request must be the loop request
    (CurrentDemandReq / ChargingStatusReq) or PowerDeliveryReq; after a FAILED
    MeteringReceiptRes (e.g. FAILED_MeteringSignatureNotValid) the loop must not go on —
    the SECC terminates after a FAILED response — so further loop requests that the SECC
    still answers are counted. Whether a receipt was sent when ReceiptRequired = true asked
    for one is MSG008 (message content), its content MSG010.
    Why it matters: a loop that goes somewhere else after the receipt breaks the session; a
    loop that goes on after a refused receipt charges energy that cannot be billed.
    Fix (EVCC): after MeteringReceiptRes OK continue with CurrentDemandReq /
    ChargingStatusReq or PowerDeliveryReq; after a FAILED one stop. (SECC): terminate after
    a FAILED MeteringReceiptRes.
    Source: ISO 15118-2 [V2G2-580] (MeteringReceiptRes → ChargingStatusReq /
    CurrentDemandReq / PowerDeliveryReq), [V2G2-539] (terminate after FAILED); PROTOCOL_FACTS
    §4.0, §4B sequence table; ChargeX PFMEA UC2 252-255.

    Example:

        #102 MeteringReceiptReq
          → #104 MeteringReceiptRes ResponseCode=FAILED_MeteringSignatureNotValid
        #106 ChargingStatusReq → #108 ChargingStatusRes
        #118 ChargingStatusReq → #120 ChargingStatusRes
    """

    code = "CHL005"
    title = "Charge loop not resumed properly after MeteringReceipt"
    severity = "error"
    category = "charging-loop"
    culprit = "EVCC"
    protocols = ("ISO 15118-2",)
    requirement = "ISO 15118-2 [V2G2-580], [V2G2-539]"
    failure_modes = ("UC2 252",)

    def check(self, session, ctx):
        for run in loop_runs(session, ctx):
            msgs = run.messages + ([run.after] if run.after is not None else [])
            for i, e in enumerate(msgs):
                if e.name != "MeteringReceiptRes":
                    continue
                reqs = [m for m in msgs[i + 1:] if m.name.endswith("Req")]
                if not reqs:
                    continue
                nxt = reqs[0]
                rc = facts(e).get("ResponseCode")
                if is_failed(rc):
                    more = [m for m in reqs if base_name(m.name) in LOOP]
                    if not more:
                        continue
                    yield self.finding(
                        session, [e.frame, more[0].frame, more[-1].frame],
                        f"{e.name} (frame {e.frame}) answered {rc}, yet the loop went on with "
                        f"{len(more)} more {more[0].name} (frames {more[0].frame}-{more[-1].frame})",
                        time=more[0].time, measured=len(more), limit=0,
                        evidence={"expected": "no further loop request after a FAILED "
                                              "MeteringReceiptRes",
                                  "actual": f"{len(more)} × {more[0].name}",
                                  "response": excerpt(e, ("ResponseCode",))},
                        values=[judged(e, "ResponseCode", rc)])
                elif base_name(nxt.name) not in LOOP and nxt.name != "PowerDeliveryReq":
                    yield self.finding(
                        session, [e.frame, nxt.frame],
                        f"After {e.name} (frame {e.frame}) the EV sent {nxt.name} (frame {nxt.frame}) "
                        f"instead of going on with the loop or PowerDeliveryReq",
                        time=nxt.time, measured=nxt.name,
                        limit=f"{run.name}Req / PowerDeliveryReq",
                        evidence={"expected": f"{run.name}Req or PowerDeliveryReq",
                                  "actual": nxt.name, "response": excerpt(e, ("ResponseCode",))})


class LoopEndedWithoutPowerDeliveryStop(LoopRule):
    """The charge loop ended without PowerDeliveryReq (Stop).

    What it checks: what follows the last message of each charge loop on its connection:
    it must be PowerDeliveryReq (Stop; -20 also Standby / ScheduleRenegotiation; ISO-2
    Renegotiate). A loop followed by another request (SessionStopReq …), by a TCP close or
    reset, or whose last request went unanswered, is a finding; the culprit is the side that
    broke it off. A capture that simply ends during the loop is not, nor a connection the
    capture shows one side of (CAP003).
    Why it matters: without PowerDelivery Stop the current is not ramped down in an orderly
    way and the contactors may open under load; the session ends abnormally. Usually the
    symptom of an earlier problem (timeout, EV error, EVSE shutdown).
    Fix: the side that broke off (see the culprit): end charging with PowerDeliveryReq
    (Stop) / answer the last request.
    Source: ISO 15118-2 [V2G2-575], [V2G2-531] (loop → PowerDeliveryReq); DIN 70121
    [V2G-DC-465]; ISO 15118-20 ChargeLoopRes → PowerDeliveryReq (J-SECC-20); PROTOCOL_FACTS
    §4A-4C.

    Example:

        #155 CurrentDemandReq → #157 CurrentDemandRes
        #183 CurrentDemandReq → #185 CurrentDemandRes
        #187 RST EVSE→EV
    """

    code = "CHL006"
    title = "Charge loop ended without PowerDelivery Stop"
    severity = "warning"
    category = "charging-loop"
    kinds = ("no-session-stop",)
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-575], [V2G2-531]; DIN 70121 [V2G-DC-465]"
    failure_modes = ("UC2 237",)

    def check(self, session, ctx):
        for run in loop_runs(session, ctx):
            if run.after is not None and run.after.name == "PowerDeliveryReq":
                continue
            if conn_one_sided(ctx, run.conn):
                continue                      # one direction not captured (CAP003)
            culprit = end_culprit(run, ctx)
            if culprit is None:
                continue                      # the capture ended during the loop
            last = run.last
            if run.after is not None:
                what = f"the EV went on with {run.after.name} (frame {run.after.frame})"
                frames = [last.frame, run.after.frame]
                if run.after.direction != "EV->EVSE":
                    what = f"{run.after.name} (frame {run.after.frame}) followed"
            else:
                unanswered = last.name.endswith("Req")
                what = (end_text(run)[5:] if run.end is not None
                        else "the capture went on without an answer")
                if unanswered:
                    what = f"{last.name} got no response, {what}"
                frames = [last.frame] + ([run.end.frame] if run.end is not None else [])
            sev = self.severity
            if lost_bytes(ctx, run.conn):
                sev = lower(sev)
            yield self.finding(
                session, [run.first.frame] + frames,
                f"The {run.name} loop ({len(run.cycles)} cycles, {run.duration_s:.1f} s, frames "
                f"{run.first.frame}-{last.frame}) ended without PowerDeliveryReq (Stop): {what}",
                time=last.time, culprit=culprit, severity=sev, measured=len(run.cycles),
                evidence={"expected": "PowerDeliveryReq (Stop) after the last loop response",
                          "actual": what, "last_message": excerpt(last),
                          "lost_bytes": lost_bytes(ctx, run.conn)})


class EvseDeliveredNoCurrent(LoopRule):
    """The EVSE delivered no current although the EV asked for it and the EVSE allowed it.

    What it checks: stretches of consecutive charge-loop cycles (CurrentDemand, -20
    scheduled-mode DC_ChargeLoop) in which EVSEPresentCurrent stays at or below
    ``max_current_a`` while EVTargetCurrent is at least ``min_request_a`` and the EVSE's own
    limits allow that much (min(EVTargetCurrent, EVSEMaximumCurrentLimit,
    EVSEMaximumPowerLimit / EVSEPresentVoltage) ≥ ``min_request_a``, EVTargetCurrent ≥
    EVSEMinimumCurrentLimit), for at least ``min_s`` seconds and ``min_cycles`` cycles (or,
    shorter, at least ``min_cycles`` cycles when no current flowed in the whole loop up to
    its end: the session transferred no energy at all) — whatever the voltage: a charger that reports its output at or near the EV's target
    voltage while no current flows is not limited by the battery, unless that voltage is
    the battery's own (within ``battery_tolerance_v`` of the EV's PreCharge target, or
    current already flowed in this loop): then the load sets the current (a lamp on a test
    rig; LIM005). Cycles in which the EVSE signals that it is stopping or not ready
    (EVSE_NotReady, EVSE_Shutdown, EVSE_EmergencyShutdown, EVSE_Malfunction,
    EVSE_UtilityInterruptEvent, EVSENotification StopCharging / Terminate / Pause), in which
    the EV is stopping (EVErrorCode, EVReady false, ChargingComplete) or whose present values
    are implausible (MSG020) end a stretch. One finding per stretch, from its first to its
    last response, with the number of cycles, the duration, what was asked and allowed and
    what was delivered, and how the stretch ended. LIM004 / LIM005 (a shortfall) stand down
    on the cycles reported here. A normal start of the loop, where the current follows the
    EV's ramp within a few seconds, is not a finding.
    Why it matters: no energy flows although both sides agreed to charge: the session
    fails its purpose (user needs not met), and EVs abort when the current they measure
    differs from the one they asked for (EVErrorCode FAILED_ChargingCurrentdifferential).
    Fix (SECC): switch the power modules on when the loop starts and follow EVTargetCurrent;
    if the output cannot deliver, say so (EVSE_NotReady / EVSE_Shutdown, EVSENotification
    StopCharging) or announce the real limits instead of reporting 0 A; report the measured
    output.
    Source: ISO 15118-2 / DIN 70121 CurrentDemandReqType EVTargetCurrent (the current the EV
    requests), CurrentDemandResType EVSEPresentCurrent (the EVSE's present output current)
    and its limits; PROTOCOL_FACTS §4D "Derived sanity" (⚠ analyst-derived: EVSEPresentCurrent
    ≈ min(EVTargetCurrent, EVSE limits); the 1 A, 2 A and 10 s defaults are analyst choices,
    well above the 1-3 s in which chargers in the reference captures follow the EV's ramp).

    Example:

        #155 CurrentDemandReq EVTargetCurrent=60 A
          → #157 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEPresentCurrent=0.3 A
        #163 CurrentDemandReq EVTargetCurrent=150 A
          → #165 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEPresentCurrent=0 A
        #547 CurrentDemandReq EVTargetCurrent=150 A
          → #549 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEPresentCurrent=0.5 A
        #551 CurrentDemandReq EVTargetCurrent=150 A
          → #553 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEStatusCode=EVSE_Shutdown
    """

    code = "CHL007"
    title = "EVSE delivered no current"
    severity = "error"
    category = "charging-loop"
    kinds = ("no-current",)
    explains = ("ev-error", "ev-stop", "ev-abort", "ev-timeout", "evse-stop", "evse-abort",
                "no-session-stop", "connection-reset", "under-delivery")
    #: an EV or EVSE reacts to no current within a few cycles; once current flows again the
    #: stretch explains nothing that comes later
    horizon_s = 3.0
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"max_current_a": 1.0, "min_request_a": 2.0, "min_s": 10.0, "min_cycles": 5,
              "voltage_tolerance_v": 10.0, "battery_tolerance_v": 20.0}
    requirement = ("EVSEPresentCurrent ≈ min(EVTargetCurrent, EVSE limits) while charging "
                   "(§4D ⚠ derived)")

    def check(self, session, ctx):
        for run, st in no_current_stretches(session, ctx, self.p):
            first, last = st[0], st[-1]
            dur = last.t - first.t
            asked = max(r.ti for r in st)
            delivered = max(abs(r.pi) for r in st)
            allowed = max(allowed_current(r) for r in st)
            worst = max(st, key=lambda r: allowed_current(r) - abs(r.pi))
            volts = [r.pv for r in st if r.pv is not None]
            targets = [r.tv for r in st if r.tv is not None]
            limits = []
            if worst.imax is not None:
                limits.append(f"EVSEMaximumCurrentLimit {worst.imax:.1f} A")
            if worst.pmax:
                limits.append(f"EVSEMaximumPowerLimit {worst.pmax / 1000:.1f} kW")
            vtxt = ""
            if volts:
                lo, hi = min(volts), max(volts)
                vtxt = f"; output {lo:.1f} V" if hi - lo < 1 else f"; output {lo:.1f}-{hi:.1f} V"
                if targets:
                    vtxt += f", EV target {max(targets):.1f} V"
            batt = battery_voltage(session, run, ctx)
            end, end_frames = self._ending(run, st)
            frames = first.cyc.frames + worst.cyc.frames + last.cyc.frames + end_frames
            limits_from = sorted({e.frame for e in (worst.src.get("imax"), worst.src.get("pmax"))
                                  if e is not None})
            yield self.finding(
                session, frames,
                f"For {dur:.1f} s ({len(st)} cycles, {first.cyc.res.name} frames "
                f"{first.cyc.res.frame}-{last.cyc.res.frame}) the EVSE delivered no current (at "
                f"most {delivered:.2f} A) although the EV asked for up to {asked:.1f} A and the "
                f"EVSE's limits allowed {allowed:.1f} A ({', '.join(limits) or 'no EVSE maximum known'})"
                f"{vtxt}; {end}",
                time=first.t, measured=round(delivered, 3), limit=round(allowed, 3), unit="A",
                evidence={"expected": f"EVSEPresentCurrent ≈ min(EVTargetCurrent, EVSE limits), "
                                      f"up to {allowed:.1f} A",
                          "actual": f"≤ {delivered:.2f} A for {dur:.1f} s",
                          "count": len(st), "cycles": len(st), "duration_s": round(dur, 3),
                          "first_frame": first.cyc.frames[0], "last_frame": last.cyc.frames[-1],
                          "requested_max_A": round(asked, 3), "delivered_max_A": round(delivered, 3),
                          "allowed_max_A": round(allowed, 3),
                          "precharge_target_V": batt[0] if batt else None,
                          "limits_from_frames": limits_from,
                          "ended": end,
                          "first": {"request": excerpt(first.cyc.req, _NC_KEYS),
                                    "response": excerpt(first.cyc.res, _NC_KEYS)},
                          "last": {"request": excerpt(last.cyc.req, _NC_KEYS),
                                   "response": excerpt(last.cyc.res, _NC_KEYS)}},
                values=[judged(worst.cyc.req, "EVTargetCurrent", worst.ti, unit="A")]
                + [judged(r.cyc.res, "EVSEPresentCurrent", r.pi, expected=round(allowed_current(r), 3),
                          unit="A") for r in (first, worst, last)])

    def _ending(self, run, st) -> tuple[str, list]:
        """How a stretch ended, in words, and the frame that shows it."""
        after = None
        seen = False
        for c in run.cycles:
            if seen and c.res is not None:
                after = c
                break
            if c is st[-1].cyc:
                seen = True
        if after is None:
            return end_text(run), [x.frame for x in (run.after, run.end) if x is not None]
        r, q = after.r, after.q
        i = r.get("EVSEPresentCurrent_A")
        err = q.get("EVErrorCode")
        if isinstance(err, str) and err not in ("NO_ERROR", "NoData"):
            return (f"then the EV reported EVErrorCode {err} ({after.req.name} frame "
                    f"{after.req.frame})"), [after.req.frame]
        if r.get("EVSEStatusCode") not in (None, "EVSE_Ready", "EVSE_IsolationMonitoringActive"):
            return (f"then the EVSE reported {r.get('EVSEStatusCode')} ({after.res.name} frame "
                    f"{after.res.frame})"), [after.res.frame]
        if r.get("EVSENotification") in STOP_NOTIFICATION:
            return (f"then the EVSE asked to stop (EVSENotification {r.get('EVSENotification')}, "
                    f"frame {after.res.frame})"), [after.res.frame]
        if i is not None and abs(i) > self.p["max_current_a"]:
            return f"then current flowed ({i:.1f} A, frame {after.res.frame})", [after.res.frame]
        t = q.get("EVTargetCurrent_A")
        if t is not None and t < self.p["min_request_a"]:
            return (f"then the EV lowered its request to {t:.1f} A (frame {after.req.frame})",
                    [after.req.frame])
        return f"until frame {after.res.frame}", [after.res.frame]


_NC_KEYS = ("EVTargetCurrent", "EVTargetVoltage", "EVSEPresentCurrent", "EVSEPresentVoltage",
            "EVSEStatusCode", "EVSEMaximumCurrentLimit", "EVSECurrentLimitAchieved")
