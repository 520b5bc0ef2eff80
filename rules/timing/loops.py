"""Timing rules on the DC loops and EVSEProcessing=Ongoing loops: TIM004-TIM007."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.timing import timing_view

from ..base import Rule
from ..helpers import facts
from ..timing_tables import (CABLECHECK_PERFORMANCE, CABLECHECK_TIMEOUT, ONGOING_PERFORMANCE,
                             ONGOING_TIMEOUT, PRECHARGE_PERFORMANCE, PRECHARGE_TIMEOUT,
                             WELDING_LOOP, phase_seconds)
from .common import _PROTOCOLS, _g, _phase, _severity, _timer_facts

_ONGOING = ("Ongoing", "Ongoing_WaitingForCustomerInteraction")
_CABLECHECK = ("CableCheck", "DC_CableCheck")
_PRECHARGE = ("PreCharge", "DC_PreCharge")
_WELDING = ("WeldingDetection", "DC_WeldingDetection")


def _phase_timers(rule: Rule, session, ctx, timeout: dict, performance: dict):
    """What a loop-phase rule (CableCheck, PreCharge, Ongoing) judges a session with: its
    TimingView and, for its protocol, the EV's timeout and the SECC's performance time —
    ``(view, (T s, Timer), (P s, Timer))`` from the rule's ``evcc_timeout_s`` /
    ``secc_performance_s`` parameters over the rules/timing_tables.py rows ``timeout`` /
    ``performance``; None for a protocol without these timers (only DIN 70121, ISO 15118-2
    and ISO 15118-20 have them)."""
    v = timing_view(session, ctx)
    if v.protocol not in _PROTOCOLS:
        return None
    return (v, _phase(rule.p["evcc_timeout_s"], timeout, v.protocol),
            _phase(rule.p["secc_performance_s"], performance, v.protocol))


def _end_text(kind, what) -> str:
    if kind == "request":
        return f"then {what.name} (#{what.frame})"
    if kind == "close":
        who = "EVSE" if what[2] == "EVSE" else "EV"
        return f"then the {who} closed the connection ({what[3]} #{what[1]})"
    return "and the capture ended"


class CableCheckTooLong(Rule):
    """The CableCheck loop ran longer than the EV's CableCheck timeout or the SECC's
    performance time.

    What it checks: from the first CableCheckReq of a loop to the CableCheckRes with
    EVSEProcessing=Finished (or the loop's last response when it never finished) against
    V2G_SECC_CableCheck_Performance_Time (38 s ⚠: the SECC finishes the isolation test
    within) and V2G_EVCC_CableCheck_Timeout (40 s: the EV stops the session). A loop cut off
    by the end of the capture before the timer could expire is no finding.
    Why it matters: an EV applying its timeout aborts the charge before any energy flows; an
    isolation monitor or a converter that needs longer than 38 s is out of step with every
    conforming vehicle.
    Fix (SECC): finish the insulation test within 38 s (ramp the test voltage faster, check
    the IMD's measuring time); report Finished as soon as the result is known.
    Source: ISO 15118-2 [V2G2-700..703] Table 111 (EVCC 40 s ✅, SECC 38 s ⚠);
    DIN SPEC 70121:2014 40 s (J-TO-DIN; DIN TS 70121:2024-11 38 s per HOTWIRE — default
    follows the 2014 edition ⚠); ISO 15118-20 Table 215 40 s (J-TO-20 ⚠). PROTOCOL_FACTS
    §4A, §4B, §4C, §4E.

    Example:

        #63 CableCheckReq
          → #65 CableCheckRes EVSEProcessing=Ongoing EVSEIsolationStatus=Invalid
              EVSEStatusCode=EVSE_IsolationMonitoringActive (+0.078 s)
        #383 CableCheckReq (+39.967 s)
          → #385 CableCheckRes EVSEProcessing=Ongoing EVSEIsolationStatus=Invalid
              EVSEStatusCode=EVSE_IsolationMonitoringActive (+0.084 s)
        #387 SessionStopReq → #389 SessionStopRes (+0.083 s)
    """

    code = "TIM004"
    title = "CableCheck loop too long"
    severity = "error"
    category = "timing"
    kinds = ("loop-timeout",)
    explains = ("ev-timeout", "ev-abort", "ev-stop", "out-of-sequence", "failed-response",
                "evse-refused", "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 [V2G2-700..703] V2G_EVCC_CableCheck_Timeout"
    failure_modes = ("UC2 169",)
    params = {"evcc_timeout_s": phase_seconds(CABLECHECK_TIMEOUT),
              "secc_performance_s": phase_seconds(CABLECHECK_PERFORMANCE)}

    def check(self, session, ctx):
        timers = _phase_timers(self, session, ctx, CABLECHECK_TIMEOUT, CABLECHECK_PERFORMANCE)
        if timers is None:
            return
        v, (T, tt), (P, pt) = timers
        for run in v.runs:
            if run.key not in _CABLECHECK:
                continue
            xs = run.exchanges
            answered = [x for x in xs if x.response is not None]
            if not answered:
                continue
            first = xs[0].request
            done = next((x for x in answered
                         if facts(x.response).get("EVSEProcessing") == "Finished"), None)
            end = (done or answered[-1]).response
            d = end.time - first.time
            if not ((T is not None and d > T) or (P is not None and d > P)):
                continue
            kind, what = v.next_after_run(run)
            last_f = facts(end)
            state = (f"EVSEProcessing={last_f.get('EVSEProcessing')}, "
                     f"EVSEIsolationStatus={last_f.get('EVSEIsolationStatus')}, "
                     f"EVSEStatusCode={last_f.get('EVSEStatusCode')}")
            how = (f"finished at #{end.frame}" if done is not None else
                   f"never finished (last response #{end.frame}), {_end_text(kind, what)}")
            if T is not None and d > T:
                sev, limit, timer = _severity(tt, d, T), T, tt
                syn = (f"CableCheck ran {d:.1f} s ({len(xs)} cycles, #{first.frame} → "
                       f"#{end.frame}), longer than the EV's {_g(T)} s "
                       f"V2G_EVCC_CableCheck_Timeout: the EV should have stopped; {how}")
            else:
                sev, limit, timer = _severity(pt, d, P), P, pt
                syn = (f"CableCheck ran {d:.1f} s ({len(xs)} cycles, #{first.frame} → "
                       f"#{end.frame}), longer than the SECC's {_g(P)} s "
                       f"V2G_SECC_CableCheck_Performance_Time (EV timeout {_g(T)} s); {how}")
            frames = [first.frame, end.frame, xs[-1].request.frame]
            if kind in ("request",):
                frames.append(what.frame)
            elif kind == "close":
                frames.append(what[1])
            f = self.finding(session, frames, syn, time=first.time, measured=round(d, 3),
                             limit=limit, unit="s", severity=sev,
                             evidence={"expected": f"CableCheck Finished within {_g(P)} s "
                                                   f"(SECC) / {_g(T)} s (EV)",
                                       "actual": f"{d:.3f} s, {len(xs)} cycles; last: {state}",
                                       "finished": done is not None, "cycles": len(xs),
                                       "timeout": _timer_facts(tt, T),
                                       "performance": _timer_facts(pt, P)})
            if timer is not None:
                f.requirement = f"{timer.requirement} {timer.name}"
            yield f


class PreChargeTimer(Rule):
    """The PreCharge loop as a timer: the SECC's PreCharge performance time, and an EV that
    keeps the loop going past its own PreCharge timeout.

    What it checks: (1) SECC: the time from the first PreChargeReq until EVSEPresentVoltage
    comes within ``tolerance_v`` of EVTargetVoltage against
    V2G_SECC_PreCharge_Performance_Time (5 s ⚠, ISO 15118-2 only; unknown for DIN and -20) —
    only when the voltage was reached within the EV's V2G_EVCC_PreCharge_Timeout: a later or
    never reached target is PRE001's finding, not repeated here. (2) EVCC (info): the EV
    went on sending PreChargeReq for longer than its own V2G_EVCC_PreCharge_Timeout (the
    timer expired, the EV neither aborted nor moved on) — the threshold the vehicle really
    uses, whatever PRE001 says about the SECC's voltage.
    Why it matters: (1) a SECC slower than 5 s leaves conforming vehicles no margin; (2) an
    EV that waits longer than the standard's 7 s hides slow chargers in the lab and times out
    elsewhere (a mismatch of thresholds, PFMEA UC2 104).
    Fix: (1) SECC: ramp the converter to EVTargetVoltage within 5 s and report the measured
    output voltage; (2) EVCC: apply V2G_EVCC_PreCharge_Timeout.
    Source: ISO 15118-2 [V2G2-704..707] Table 111 (EVCC 7 s ✅, SECC 5 s ⚠); DIN SPEC
    70121:2014 7 s (HOTWIRE; EVerest's DIN EV 10 s — default follows the 2014 edition ⚠);
    ISO 15118-20 Table 215 10 s (J-TO-20; 60 s per ISS-ECOG281 ⚠). PROTOCOL_FACTS §4A, §4B,
    §4C, §4D, §4E. PRE001 (rules/precharge.py) checks the target voltage itself.

    Example:

        #91 PreChargeReq EVTargetVoltage=370 V
          → #93 PreChargeRes EVSEPresentVoltage=6.4 V (+0.075 s)
        #307 PreChargeReq EVTargetVoltage=370 V (+5.287 s)
          → #309 PreChargeRes EVSEPresentVoltage=356.2 V (+0.090 s)
    """

    code = "TIM005"
    title = "PreCharge loop timer"
    severity = "warning"
    category = "timing"
    kinds = ("loop-timeout",)
    explains = ("ev-timeout", "ev-abort", "ev-stop", "out-of-sequence", "failed-response",
                "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 Table 111 V2G_SECC_PreCharge_Performance_Time"
    failure_modes = ("UC2 156", "UC2 104")
    params = {"evcc_timeout_s": phase_seconds(PRECHARGE_TIMEOUT),
              "secc_performance_s": phase_seconds(PRECHARGE_PERFORMANCE),
              "tolerance_v": 20.0}

    def check(self, session, ctx):
        timers = _phase_timers(self, session, ctx, PRECHARGE_TIMEOUT, PRECHARGE_PERFORMANCE)
        if timers is None:
            return
        v, (T, tt), (P, pt) = timers
        tol = self.p["tolerance_v"]
        for run in v.runs:
            if run.key not in _PRECHARGE:
                continue
            xs = run.exchanges
            first = xs[0].request
            target = None
            reached = None
            for x in xs:
                tv = facts(x.request).get("EVTargetVoltage_V")
                if tv is not None:
                    target = tv
                if x.response is None or reached is not None or target is None:
                    continue
                pv = facts(x.response).get("EVSEPresentVoltage_V")
                if pv is not None and abs(pv - target) <= tol:
                    reached = (x.response, pv, target)
            if P is not None and reached is not None:
                t_r = reached[0].time - first.time
                if t_r > P and (T is None or t_r <= T):
                    yield self._secc(session, first, reached, t_r, P, pt, T)
            if T is not None:
                d = xs[-1].request.time - first.time
                if d > T:
                    yield self._evcc(session, v, run, d, T, tt)

    def _secc(self, session, first, reached, t_r, P, pt, T):
        res, pv, target = reached
        f = self.finding(session, [first.frame, res.frame],
                         f"PreCharge reached {pv:.1f} V (target {target:.1f} V) at #{res.frame} "
                         f"{t_r:.1f} s after PreChargeReq #{first.frame}: later than the SECC's "
                         f"{_g(P)} s V2G_SECC_PreCharge_Performance_Time (within the EV's "
                         f"{_g(T) if T is not None else '?'} s timeout)",
                         time=first.time, measured=round(t_r, 3), limit=P, unit="s",
                         severity=_severity(pt, t_r, P), culprit="SECC",
                         evidence={"expected": f"EVSEPresentVoltage within {self.p['tolerance_v']:g} V "
                                               f"of EVTargetVoltage within {_g(P)} s",
                                   "actual": f"{pv:.1f} V after {t_r:.3f} s",
                                   "EVTargetVoltage_V": target, "EVSEPresentVoltage_V": pv,
                                   "performance": _timer_facts(pt, P)})
        if pt is not None:
            f.requirement = f"{pt.requirement} {pt.name}"
        return f

    def _evcc(self, session, v, run, d, T, tt):
        xs = run.exchanges
        first = xs[0].request
        expiry = first.time + T
        after = [x for x in xs if x.request.time > expiry]
        at = after[0].request if after else xs[-1].request
        kind, what = v.next_after_run(run)
        within_alt = (tt is not None and tt.alt is not None and d <= tt.alt)
        alt_txt = (f" (within the {_g(tt.alt)} s other sources give: {tt.note})" if within_alt
                   else "")
        frames = [first.frame, at.frame, xs[-1].request.frame]
        if kind == "request":
            frames.append(what.frame)
        elif kind == "close":
            frames.append(what[1])
        f = self.finding(session, frames,
                         f"The EV kept PreCharge going {d:.1f} s ({len(xs)} cycles, #{first.frame} → "
                         f"#{xs[-1].request.frame}), past its {_g(T)} s V2G_EVCC_PreCharge_Timeout "
                         f"(expired before #{at.frame}; {len(after)} more cycles){alt_txt}, "
                         f"{_end_text(kind, what)}",
                         time=first.time, measured=round(d, 3), limit=T, unit="s",
                         severity="info", culprit="EVCC",
                         evidence={"expected": f"the EV ends PreCharge within {_g(T)} s "
                                               "(PowerDeliveryReq or stop)",
                                   "actual": f"PreChargeReq for {d:.3f} s, {len(after)} after "
                                             "the timer expired",
                                   "cycles": len(xs), "cycles_after_expiry": len(after),
                                   "ended": _end_text(kind, what),
                                   "timeout": _timer_facts(tt, T),
                                   "see_also": "PRE001 (target voltage reached in time)"})
        if tt is not None:
            f.requirement = f"{tt.requirement} {tt.name}"
        # it describes the EV's own timer running out (rules/causes.py), it causes nothing
        f.kinds, f.explains = ("ev-timeout",), ()
        return f


class OngoingTooLong(Rule):
    """An EVSEProcessing=Ongoing loop ran longer than the SECC's ongoing performance time or
    the EV's ongoing timeout (or was cut short without a FAILED response).

    What it checks: loops of ContractAuthentication / Authorization, ChargeParameterDiscovery,
    ScheduleExchange … answered with EVSEProcessing=Ongoing (or
    Ongoing_WaitingForCustomerInteraction), from the first Ongoing response to the response
    with Finished (or the loop's end), against V2G_SECC_Ongoing_Performance_Time (55 s: the
    SECC answers Finished or FAILED within, [V2G2-713]) and V2G_EVCC_Ongoing_Timeout (60 s:
    the EV stops). CableCheck has its own timer (TIM004). A loop that the SECC ends by
    closing the connection before 55 s, or the EV abandons before 60 s, is reported as info
    with its duration; a loop cut off by the capture's end before a timer expired is no
    finding.
    Why it matters: authorizations that wait for a card or a backend beyond 55 s break the
    session on conforming vehicles; a SECC should end a hopeless wait with FAILED so the EV
    learns why.
    Fix (SECC): answer Finished or FAILED within 55 s (backend timeouts shorter than that);
    end the wait with a FAILED response, not a TCP reset.
    Source: ISO 15118-2 [V2G2-710] [V2G2-711] (EVCC 60 s), [V2G2-712] [V2G2-713] (SECC
    55 s), Table 109; DIN 70121 60 s (E-DIN-EV, PYPLC; SECC 55 s ⚠ assumed); ISO 15118-20
    Table 215 60 s / 55 s (J-TO-20, E-D20, D20-RPT; EVerest allows 180 s for EIM, not
    normative). PROTOCOL_FACTS §4A, §4B, §4C, §4E.

    Example:

        #55 ContractAuthenticationReq
          → #57 ContractAuthenticationRes EVSEProcessing=Ongoing (+0.085 s)
        #299 ContractAuthenticationReq (+60.334 s)
          → #301 ContractAuthenticationRes EVSEProcessing=Ongoing (+0.083 s)
        #303 SessionStopReq → #305 SessionStopRes (+0.094 s)
    """

    code = "TIM006"
    title = "EVSEProcessing=Ongoing loop too long"
    severity = "error"
    category = "timing"
    kinds = ("loop-timeout",)
    explains = ("ev-timeout", "ev-abort", "ev-stop", "out-of-sequence", "failed-response",
                "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 [V2G2-710..713] V2G_EVCC_Ongoing_Timeout"
    failure_modes = ("UC2 115", "UC2 167", "UC2 169")
    params = {"evcc_timeout_s": phase_seconds(ONGOING_TIMEOUT),
              "secc_performance_s": phase_seconds(ONGOING_PERFORMANCE)}

    def check(self, session, ctx):
        timers = _phase_timers(self, session, ctx, ONGOING_TIMEOUT, ONGOING_PERFORMANCE)
        if timers is None:
            return
        v, (T, tt), (P, pt) = timers
        for run in v.runs:
            if run.key in _CABLECHECK or run.key == "charge loop":
                continue
            answered = [x for x in run.exchanges if x.response is not None]
            ongoing = [x for x in answered if facts(x.response).get("EVSEProcessing") in _ONGOING]
            if not ongoing:
                continue
            f = self._loop(session, v, run, answered, ongoing, T, tt, P, pt)
            if f is not None:
                yield f

    def _loop(self, session, v, run, answered, ongoing, T, tt, P, pt):
        start = ongoing[0].response
        done = next((x for x in answered if x.response.time > start.time
                     and facts(x.response).get("EVSEProcessing") == "Finished"), None)
        name = run.key
        n_ong = len(ongoing)
        if done is not None:
            end_ev = done.response
            d = end_ev.time - start.time
            how = f"Finished at #{end_ev.frame}"
            kind, what = "finished", None
        else:
            kind, what = v.next_after_run(run)
            last_res = answered[-1].response
            if kind == "capture":
                d = last_res.time - start.time
                end_ev = last_res
                how = f"still Ongoing at #{last_res.frame} when the capture ended"
            else:
                end_t = what.time if kind == "request" else what[0]
                d = end_t - start.time
                end_ev = last_res
                how = f"last Ongoing at #{last_res.frame}, {_end_text(kind, what)}"
        frames = [run.exchanges[0].request.frame, start.frame, end_ev.frame]
        if kind == "request":
            frames.append(what.frame)
        elif kind == "close":
            frames.append(what[1])
        base = (f"{name} answered EVSEProcessing=Ongoing {n_ong} times for {d:.1f} s "
                f"(from #{start.frame}); {how}")
        ev = {"expected": f"EVSEProcessing=Finished (or FAILED) within {_g(P)} s (SECC), the EV "
                          f"gives up at {_g(T)} s",
              "actual": f"{d:.3f} s of Ongoing ({n_ong} responses); {how}",
              "message": name, "ongoing_responses": n_ong, "finished": done is not None,
              "timeout": _timer_facts(tt, T), "performance": _timer_facts(pt, P)}
        if T is not None and d > T:
            f = self.finding(session, frames, f"{base}: longer than the EV's {_g(T)} s "
                             "V2G_EVCC_Ongoing_Timeout — the EV should have given up, the SECC "
                             f"should have answered FAILED at {_g(P)} s", time=start.time,
                             measured=round(d, 3), limit=T, unit="s",
                             severity=_severity(tt, d, T), evidence=ev)
            f.requirement = f"{tt.requirement} {tt.name}" if tt else f.requirement
            return f
        if P is not None and d > P:
            f = self.finding(session, frames, f"{base}: longer than the SECC's {_g(P)} s "
                             "V2G_SECC_Ongoing_Performance_Time (it should have answered "
                             f"Finished or FAILED; EV timeout {_g(T)} s)", time=start.time,
                             measured=round(d, 3), limit=P, unit="s",
                             severity=_severity(pt, d, P), evidence=ev)
            f.requirement = f"{pt.requirement} {pt.name}" if pt else f.requirement
            return f
        if done is None and kind == "close" and what[2] == "EVSE":
            return self.finding(session, frames, f"{base}: the EVSE ended the Ongoing loop after "
                                f"{d:.1f} s, before its {_g(P)} s V2G_SECC_Ongoing_Performance_Time, "
                                "without a FAILED response — no ongoing timeout", time=start.time,
                                measured=round(d, 3), limit=P, unit="s", severity="info",
                                culprit="SECC", evidence=ev)
        if done is None and (kind == "close" and what[2] == "EV" or kind == "request"):
            return self.finding(session, frames, f"{base}: the EV gave up the Ongoing loop after "
                                f"{d:.1f} s, before its {_g(T)} s V2G_EVCC_Ongoing_Timeout",
                                time=start.time, measured=round(d, 3), limit=T, unit="s",
                                severity="info", culprit="EVCC", evidence=ev)
        return None


class WeldingDetectionTooLong(Rule):
    """The WeldingDetection loop ran longer than the usual ongoing bound.

    What it checks: from the first WeldingDetectionReq to the last WeldingDetectionRes of a
    loop against ``limit_s`` (60 s, an implementation bound ⚠ — no normative value is
    known). The culprit is the SECC when EVSEPresentVoltage stayed above ``discharged_v`` and
    did not fall (the EV waits for the output to discharge), else the EV (it decides when its
    welding detection is finished, [V2G2-620]). The delay from PowerDeliveryRes (Stop) to
    WeldingDetectionReq / SessionStopReq is TIM002's (sequence performance time).
    Why it matters: the connector stays locked and the charge point occupied; a SECC that does
    not discharge its output keeps the EV waiting.
    Fix: SECC — discharge the output after PowerDelivery (Stop) and report the measured
    voltage; EVCC — end welding detection once the voltage is low.
    Source: DIN 70121 / ISO 15118-2 [V2G2-601] [V2G2-620] (WeldingDetection loop), PROTOCOL_FACTS
    §4D, §4E (60 s per E-DIN-EV ⚠).

    Example:

        #179 WeldingDetectionReq → #181 WeldingDetectionRes EVSEPresentVoltage=374.1 V (+0.078 s)
        #435 WeldingDetectionReq (+66.640 s)
          → #437 WeldingDetectionRes EVSEPresentVoltage=374.5 V (+0.079 s)
    """

    code = "TIM007"
    title = "WeldingDetection loop too long"
    severity = "warning"
    category = "timing"
    kinds = ("loop-timeout",)
    explains = ("ev-abort", "no-session-stop", "connection-reset")
    culprit = "EVCC"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 [V2G2-620] WeldingDetection loop"
    params = {"limit_s": 60.0, "discharged_v": 60.0}

    def check(self, session, ctx):
        v = timing_view(session, ctx)
        proto = v.protocol
        if proto not in _PROTOCOLS:
            return
        lim = self.p["limit_s"]
        timer = WELDING_LOOP.get(proto)
        for run in v.runs:
            if run.key not in _WELDING:
                continue
            answered = [x for x in run.exchanges if x.response is not None]
            if not answered:
                continue
            first = run.exchanges[0].request
            last = answered[-1].response
            d = last.time - first.time
            if d <= lim:
                continue
            volts = [facts(x.response).get("EVSEPresentVoltage_V") for x in answered]
            volts = [x for x in volts if x is not None]
            stuck = (bool(volts) and volts[-1] > self.p["discharged_v"]
                     and volts[-1] >= 0.8 * volts[0])
            culprit = "SECC" if stuck else "EVCC"
            vtxt = (f"; EVSEPresentVoltage {volts[0]:.0f} V → {volts[-1]:.0f} V"
                    + (" (the output was not discharged)" if stuck else "") if volts else "")
            kind, what = v.next_after_run(run)
            f = self.finding(session, [first.frame, last.frame], f"WeldingDetection ran {d:.1f} s "
                             f"({len(run.exchanges)} cycles, #{first.frame} → #{last.frame}), longer "
                             f"than {_g(lim)} s{vtxt}, {_end_text(kind, what)}", time=first.time,
                             measured=round(d, 3), limit=lim, unit="s", culprit=culprit,
                             evidence={"expected": f"WeldingDetection done within {_g(lim)} s",
                                       "actual": f"{d:.3f} s, {len(run.exchanges)} cycles",
                                       "EVSEPresentVoltage_V_first_last":
                                           [volts[0], volts[-1]] if volts else None,
                                       "limit": _timer_facts(timer, lim)})
            yield f
