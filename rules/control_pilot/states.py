"""Control pilot rules on CP states and transitions: CPL001, CPL002, CPL005, CPL006, CPL009, CPL010."""
from __future__ import annotations

from ccs_analyzer.analyzer.control_pilot import STATE_MEANING
from ccs_analyzer.analyzer.views.control_pilot import CpView
from ccs_analyzer.analyzer.views.loops import is_start

from ..helpers import body, messages
from ..slac_timers import SLAC_TIMERS
from .common import REPORT_LAG_S, _CpRule, _cp, _slac_requests

#: Charge-loop requests: energy is being transferred while they run (DIN 70121 / ISO 15118-2
#: CurrentDemandReq, ChargingStatusReq; ISO 15118-20 DC_ChargeLoopReq, AC_ChargeLoopReq).
_LOOP_REQS = frozenset({"CurrentDemandReq", "ChargingStatusReq", "DC_ChargeLoopReq",
                        "AC_ChargeLoopReq"})
_PD_STOP = ("Stop",)


def _pd_requests(session):
    """(PowerDeliveryReq event, "start" / "stop" / other) of the session, in order."""
    out = []
    for e in messages(session, {"PowerDeliveryReq"}):
        b = body(e)
        if is_start(e):
            out.append((e, "start"))
        elif b.get("ReadyToChargeState") is False or b.get("ChargeProgress") in _PD_STOP:
            out.append((e, "stop"))
        else:
            out.append((e, str(b.get("ChargeProgress"))))
    return out


def _seen(v: CpView, t0: float, t1: float, letters: str) -> bool:
    """Whether a reading (any reporter, in a band) from epoch ``t0`` to ``t1`` (s) shows one
    of the state ``letters``."""
    return any(t0 <= x.time <= t1 and x.letter in tuple(letters) for x in v.samples
               if x.state not in (None, "?"))


def _first_after(session, names, t: float):
    return next((e for e in messages(session, names) if e.time > t), None)


def _desc(state: str | None) -> str:
    if not state:
        return "unknown"
    return f"{state} ({STATE_MEANING.get(state[0], 'between the bands')})"


class EnergyWithoutStateC(_CpRule):
    """Energy transfer without CP state C / D.

    What it checks: while the charge loop runs (CurrentDemandReq, ChargingStatusReq,
    DC_/AC_ChargeLoopReq) after a PowerDeliveryReq (Start), the pilot is in state C or D. A
    loop request more than ``coupling_s`` (+ the report lag) after PowerDeliveryReq (Start)
    while the pilot reads B (or A) and has not been in C / D since the Start (leaving C
    during the loop is CPL006) is a finding, with the number of such requests — when a
    reading after the coupling time shows that state (not merely the last one known).
    Why it matters: state C / D is the EV's "ready to take energy" on the pilot; an EVSE
    must not close its contactor without it (ISO 15118-2 [V2G2-860]: it answers
    FAILED_ContactorError instead), so the EV waits for current that never comes — or, with
    an EVSE that does not check, energy flows while the EV says it does not want it.
    Fix: EV — switch S2 (state C) within 250 ms of sending PowerDeliveryReq (Start).
    Source: ISO 15118-2 [V2G2-847], ISO 15118-20 [V2G20-847]; IEC 61851-1 Table A.3;
    PROTOCOL_FACTS §4 "CP coupling".

    Example:

        #5 VS_CP_STATE.IND(ST/IoTecha) State=B DutyCycle_pct=5 Voltage_V=8.849
        #170 PowerDeliveryReq ChargeProgress=Start (+9.011 s) → #172 PowerDeliveryRes (+0.089 s)
        #214 CurrentDemandReq → #216 CurrentDemandRes (+0.023 s)
        #258 CurrentDemandReq (+1.004 s) → #260 CurrentDemandRes (+0.017 s)
    """

    code = "CPL001"
    title = "Energy transfer without control pilot state C/D"
    severity = "error"
    culprit = "EVCC"
    requirement = "ISO 15118-2 [V2G2-847]; ISO 15118-20 [V2G20-847]"
    failure_modes = ("UC2 237-239",)
    params = {"coupling_s": 0.25}
    kinds = ("cp-transition",)
    explains = ("no-current", "under-delivery", "failed-response", "evse-refused", "evse-stop",
                "ev-error")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        starts = [e for e, kind in _pd_requests(session) if kind == "start"]
        if not starts:
            return
        limit = self.p["coupling_s"] + REPORT_LAG_S
        bad = []
        for e in messages(session, _LOOP_REQS):
            pd = next((s for s in reversed(starts) if s.time < e.time), None)
            if pd is None or e.time - pd.time <= limit:
                continue
            st = v.state_at(e.time)
            # never in C / D since the Start (a C → B during the loop is CPL006's)
            if st is not None and st[0] in "AB" and not any(
                    x[0] in "CD" for x in v.states_between(pd.time, e.time)):
                bad.append((e, st, pd))
        # the last known state is trusted only when a reading after the coupling time shows it
        # (a reporter that falls silent proves nothing)
        bad = [(e, st, pd) for e, st, pd in bad
               if _seen(v, pd.time + limit, e.time + REPORT_LAG_S, "AB")]
        if not bad:
            return
        e0, st, pd = bad[0]
        frames = [pd.frame, e0.frame, bad[-1][0].frame]
        tr = next((t for t in reversed(v.transitions) if t.time <= e0.time), None)
        if tr is not None:
            frames.append(tr.frame)
        yield self.finding(
            session, frames,
            f"The charge loop ran {len(bad)} request(s) with the control pilot in {_desc(st)} "
            f"(frames {e0.frame}–{bad[-1][0].frame}) after PowerDeliveryReq (Start) at frame "
            f"{pd.frame}: the EV did not switch to state C/D within "
            f"{self.p['coupling_s'] * 1000:.0f} ms.",
            time=e0.time, measured=round(e0.time - pd.time, 3), limit=self.p["coupling_s"],
            unit="s", evidence={"cp_state": st, "PowerDeliveryReq": pd.frame, "count": len(bad)})


class StateCAfterStop(_CpRule):
    """CP state C / D held after PowerDeliveryReq (Stop).

    What it checks: after a PowerDeliveryReq (Stop) (DIN ReadyToChargeState false), the
    pilot leaves C / D for B within ``release_s`` (+ the report lag) — before
    WeldingDetection and SessionStop. Judged only when a reading after that time still
    shows C / D (a reporter that falls silent proves nothing).
    Why it matters: the EVSE checks state B before it answers WeldingDetectionReq /
    SessionStopReq and answers FAILED when it does not see it; an EV that stays in C keeps
    asking for energy while the EVSE opens its contactor.
    Fix: EV — open S2 (state B) within 250 ms of PowerDeliveryReq (Stop).
    Source: ISO 15118-2 [V2G2-848], [V2G2-920] [V2G2-921]; ISO 15118-20 [V2G20-848];
    PROTOCOL_FACTS §4 "CP coupling".

    Example:

        #264 PowerDeliveryReq → #267 PowerDeliveryRes (+0.078 s)
        #270 WeldingDetectionReq → #272 WeldingDetectionRes (+0.090 s)
        #292 VS_CP_STATE.IND(ST/IoTecha) State=B DutyCycle_pct=100 Voltage_V=8.942 (+3.555 s)
    """

    code = "CPL002"
    title = "Control pilot state C/D held after PowerDelivery Stop"
    severity = "error"
    culprit = "EVCC"
    requirement = "ISO 15118-2 [V2G2-848]; ISO 15118-20 [V2G20-848]"
    params = {"release_s": 0.25}
    kinds = ("cp-transition",)
    explains = ("failed-response", "evse-refused", "evse-stop")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        for pd, kind in _pd_requests(session):
            if kind != "stop":
                continue
            st = v.state_at(pd.time)
            if st is None or st[0] not in "CD":
                continue
            limit = pd.time + self.p["release_s"] + REPORT_LAG_S
            left = next((t for t in v.transitions if t.time > pd.time and t.after[0] not in "CD"),
                        None)
            end = session.events[-1].time
            if left is not None and left.time <= limit:
                continue
            if not _seen(v, limit, left.time if left else end, "CD"):
                continue            # no reading shows C / D held beyond the limit
            nxt = _first_after(session, {"WeldingDetectionReq", "SessionStopReq",
                                         "DC_WeldingDetectionReq"}, pd.time)
            frames = [pd.frame] + ([left.frame] if left else []) + ([nxt.frame] if nxt else [])
            held = (left.time if left else end) - pd.time
            yield self.finding(
                session, frames,
                f"The EV kept the control pilot in {_desc(st)} for {held:.2f} s after "
                f"PowerDeliveryReq (Stop) at frame {pd.frame}"
                + (f" (state {left.after} at frame {left.frame})" if left else
                   ", until the session's end")
                + f"; it must return to B within {self.p['release_s'] * 1000:.0f} ms.",
                time=pd.time, measured=round(held, 3), limit=self.p["release_s"], unit="s",
                evidence={"cp_state": st})


class StateEF(_CpRule):
    """Control pilot state E or F.

    What it checks: after the EV was plugged in, a reading in state E (0 V: pilot shorted,
    the EVSE without supply) or F (−12 V: EVSE not available). An E / F of at least
    T_step_EF before any energy transfer that the EVSE follows with a new 5 % PWM and a new
    SLAC is the EVSE restarting the matching (ISO 15118-3 [V2G3-M06-05..09]): an info;
    anything else is an error. Readings before the plug-in (an EVSE that was not ready
    before the EV came) are not judged.
    Why it matters: E and F end any charging at once: the EVSE opens its contactor, the EV
    loses the pilot (and, on most modems, the PLC link), the V2G session breaks off.
    Fix: state F — the EVSE's own fault (its log); state E — check the pilot wiring, the EV's
    diode and the cable (a short of CP to PE).
    Source: IEC 61851-1 Table A.3 / A.4; ISO 15118-3 [V2G3-M06-05..09] (E/F toggle,
    T_step_EF); PROTOCOL_FACTS §2.4, §2.5 (C_sequ_retry).

    Example:

        #220 VS_CP_STATE.IND(ST/IoTecha) State=E DutyCycle_pct=100 Voltage_V=-0.009
        #224 VS_CP_STATE.IND(ST/IoTecha) State=B DutyCycle_pct=100 Voltage_V=8.964
    """

    code = "CPL005"
    title = "Control pilot state E or F"
    severity = "error"
    culprit = "SECC"
    requirement = "IEC 61851-1 Table A.3"
    failure_modes = ("UC1 230-231", "UC2 156-158")
    params = {"t_step_ef_s": SLAC_TIMERS["T_step_EF"].value}
    kinds = ("cp-error",)
    explains = ("cp-error", "ev-abort", "evse-abort", "connection-reset", "no-session-stop",
                "ev-error", "evse-stop", "no-response", "ev-timeout", "evse-timeout",
                "slac-failed", "no-current", "capture-ended")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        plugged = v.plug_ins[0].time if v.plug_ins else None
        if plugged is None:
            return
        trs = v.transitions
        loop = messages(session, _LOOP_REQS)
        for i, tr in enumerate(trs):
            if tr.after not in ("E", "F") or tr.time < plugged:
                continue
            nxt = trs[i + 1] if i + 1 < len(trs) else None
            dur = (nxt.time if nxt else session.events[-1].time) - tr.time
            charged = any(e.time < tr.time for e in loop)
            restart = (not charged and nxt is not None and nxt.after[0] in "BCD"
                       and dur >= self.p["t_step_ef_s"] - REPORT_LAG_S
                       and any(e.time > nxt.time for e in _slac_requests(session)))
            frames = [tr.frame] + ([nxt.frame] if nxt else [])
            what = "pilot shorted or EVSE without supply" if tr.after == "E" else "EVSE not available"
            if restart:
                f = self.finding(
                    session, frames,
                    f"The EVSE held the control pilot in state {tr.after} for {dur:.1f} s "
                    f"(frames {tr.frame}–{nxt.frame}) and then restarted the matching: an E/F "
                    "toggle (ISO 15118-3 [V2G3-M06-05..09]).",
                    time=tr.time, measured=round(dur, 3), limit=self.p["t_step_ef_s"], unit="s",
                    severity="info", key="restart", requirement="ISO 15118-3 [V2G3-M06-05..09]")
                f.kinds, f.explains = ("cp-error",), ()
                yield f
                continue
            yield self.finding(
                session, frames,
                f"The control pilot went from {tr.before} to state {tr.after} ({what}) at frame "
                f"{tr.frame}" + (" during energy transfer" if charged else "")
                + (f", for {dur:.1f} s" if nxt else ", until the end of the capture") + ".",
                time=tr.time, measured=tr.after, culprit="SECC" if tr.after == "F" else "unknown",
                evidence={"before": tr.before, "state": tr.after,
                          "voltage_V": tr.sample.voltage_V})


class UnexpectedTransition(_CpRule):
    """Unexpected control pilot transition: C → B during energy transfer, or unplugged
    (→ A) during the session.

    What it checks: (a) between PowerDeliveryReq (Start) and the next PowerDeliveryReq
    (Stop / Renegotiate) — or the session's end — the pilot leaves C / D for B while the
    charge loop goes on or ends without a PowerDeliveryReq (Stop) first: the EV withdrew
    its energy request on the pilot only. (b) The pilot reads A (no EV) while the V2G
    session still runs (after SessionSetupRes, before SessionStopRes), or straight from
    C / D in basic charging: the EV was unplugged without an orderly stop.
    Why it matters: ISO 15118 keeps the pilot and the messages in step ([V2G2-847/848],
    [V2G20-849]: no CP change between PowerDelivery Start and Stop); an EVSE that sees B
    during the loop must stop at once and the session ends abruptly. An unplug under load
    or mid-session means the connector was not locked or the user forced it.
    Fix: (a) EV — send PowerDeliveryReq (Stop) before opening S2; (b) lock the connector for
    the whole session (EV inlet lock for AC; the EVSE's lock for DC) and stop the session
    before unlocking.
    Source: ISO 15118-2 [V2G2-847] [V2G2-848]; ISO 15118-20 [V2G20-849]; IEC 61851-1 Table
    A.6 (state sequences).

    Example:

        #124 VS_CP_STATE.IND(ST/IoTecha) State=A DutyCycle_pct=5 Voltage_V=11.947
    """

    code = "CPL006"
    title = "Unexpected control pilot transition"
    severity = "error"
    culprit = "EVCC"
    requirement = "ISO 15118-20 [V2G20-849]; ISO 15118-2 [V2G2-848]; IEC 61851-1 Annex A"
    failure_modes = ("UC2 237-239",)
    kinds = ("cp-transition",)
    explains = ("evse-stop", "evse-abort", "connection-reset", "no-session-stop", "no-current",
                "failed-response", "evse-refused", "ev-abort")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        yield from self._c_to_b(session, v)
        yield from self._unplugged(session, v, ctx)

    def _c_to_b(self, session, v):
        pds = _pd_requests(session)
        loop = messages(session, _LOOP_REQS)
        for i, (pd, kind) in enumerate(pds):
            if kind != "start":
                continue
            end = pds[i + 1][0].time if i + 1 < len(pds) else float("inf")
            for tr in v.transitions:
                if not (pd.time < tr.time < end) or tr.before is None:
                    continue
                if tr.before[0] in "CD" and tr.after[0] == "B":
                    # a Stop request within the report lag after the edge is in order
                    if end - tr.time <= REPORT_LAG_S:
                        continue
                    after = [e for e in loop if e.time > tr.time and e.time < end]
                    f = self.finding(
                        session, [pd.frame, tr.frame] + ([after[0].frame] if after else []),
                        f"The EV left state {tr.before} for {tr.after} at frame {tr.frame} during "
                        f"energy transfer (PowerDeliveryReq (Start) at frame {pd.frame}) without "
                        "PowerDeliveryReq (Stop)"
                        + (f"; the charge loop went on for {len(after)} request(s)" if after else "")
                        + ".",
                        time=tr.time, key="c-to-b",
                        evidence={"before": tr.before, "after": tr.after})
                    yield f
                    break

    def _unplugged(self, session, v, ctx):
        for tr in v.unplugs:
            if session.basic:
                if tr.before[0] not in "CD":
                    continue
                running = True
            else:
                setup = next((e for e in messages(session, {"SessionSetupRes"})
                              if e.time < tr.time), None)
                stop = next((e for e in messages(session, {"SessionStopRes"})
                             if e.time <= tr.time), None)
                running = (setup is not None and stop is None
                           and not _closed_before(session, ctx, tr.time))
            if not running:
                continue
            f = self.finding(
                session, [tr.frame], f"The EV was unplugged (control pilot {tr.before} → A at "
                f"frame {tr.frame}) while the session was running, without an orderly stop.",
                time=tr.time, key="unplugged",
                evidence={"before": tr.before})
            f.kinds = ("ev-unplugged",)
            f.explains = ("ev-unplugged", "ev-abort", "evse-abort", "connection-reset",
                          "no-session-stop", "no-response", "evse-timeout", "late-request",
                          "capture-ended", "evse-stop")
            yield f


def _closed_before(session, ctx, t: float) -> bool:
    """Whether every V2G connection of the session was closed (FIN / RST) before ``t``."""
    conns = [c for c in ctx.connections if c.get("conn") in session.connections
             and c.get("conn") not in session.retry_connections]
    if not conns:
        return False
    return all(any(x is not None for x in (c.get("fin_frames") or []) + (c.get("rst_frames") or []))
               and c.get("last_time") is not None and c["last_time"] < t for c in conns)


def _pauses(session):
    """(SessionStopRes of a Pause, the next SessionSetupReq or None) of the session."""
    out = []
    reqs = messages(session, {"SessionStopReq"})
    for q in reqs:
        if body(q).get("ChargingSession") != "Pause":
            continue
        res = _first_after(session, {"SessionStopRes"}, q.time)
        if res is None:
            continue
        resume = _first_after(session, {"SessionSetupReq"}, res.time)
        out.append((res, resume))
    return out


class NoSleepInPause(_CpRule):
    """The EV stays in CP state C / D while the session is paused.

    What it checks: after SessionStopRes of a Pause (ChargingSession = Pause) until the
    resume (the next SessionSetupReq) or the end, the pilot is not in C / D for longer than
    ``wake_pulse_max_s`` (+ the report lag) — a longer C is not a wake-up pulse but an
    energy request the paused EVSE cannot serve.
    Why it matters: a paused EV is expected to sleep in state B; one that stays in C keeps
    requesting energy (EVSEs treat it as a fault or as a new plug-in) and drains its
    12 V battery (ChargeX UC2 183-185).
    Fix: EV — return to state B (S2 open) before SessionStopReq (Pause) and stay there until
    it wakes the EVSE.
    Source: ISO 15118-2 [V2G2-848] and §8.8.2 (pause); IEC 61851-1 Annex A; ChargeX PFMEA
    UC2 183-185.

    Example:

        #249 SessionStopReq ChargingSession=Pause → #251 SessionStopRes (+0.094 s)
        #256 VS_CP_STATE.IND(ST/IoTecha) State=C DutyCycle_pct=5 Voltage_V=5.893 (+0.500 s)
    """

    code = "CPL009"
    title = "EV stays in CP state C/D while the session is paused"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-2 [V2G2-848]"
    failure_modes = ("UC2 183-185",)
    params = {"wake_pulse_max_s": 3.0}
    kinds = ("cp-transition",)
    explains = ("evse-stop", "cp-error")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        for res, resume in _pauses(session):
            t1 = resume.time if resume is not None else session.events[-1].time
            cur = None
            for st_t, st in [(res.time, v.state_at(res.time))] + [
                    (t.time, t.after) for t in v.transitions if res.time < t.time <= t1]:
                if st and st[0] in "CD":
                    cur = cur if cur is not None else st_t
                else:
                    if cur is not None and st_t - cur > self.p["wake_pulse_max_s"] + REPORT_LAG_S:
                        break
                    cur = None
            if cur is None:
                continue
            nxt = next((t for t in v.transitions if t.time > cur and t.after[0] not in "CD"), None)
            held = (min(nxt.time, t1) if nxt else t1) - cur
            if held <= self.p["wake_pulse_max_s"] + REPORT_LAG_S:
                continue
            tr = next((t for t in v.transitions if t.time >= cur - 1e-6), None)
            yield self.finding(
                session, [res.frame] + ([tr.frame] if tr else []),
                f"The EV held the control pilot in state C/D for {held:.1f} s during the pause "
                f"that began with SessionStopRes (Pause) at frame {res.frame}: it did not sleep "
                "in state B.",
                time=cur, measured=round(held, 3), limit=self.p["wake_pulse_max_s"], unit="s")


class WakeUpUnanswered(_CpRule):
    """The EVSE does not answer the EV's pilot wake-up.

    What it checks: during a pause (after SessionStopRes with ChargingSession = Pause) a
    wake-up pulse of the EV — B → C / D → B in at most ``wake_pulse_max_s`` while the PWM
    is off — is followed within ``wake_response_s`` by the EVSE's 5 % PWM again (the pilot
    in B2 / C2 at 5 %) or by a new SLAC. A finding when neither comes while the capture
    goes on that long.
    Why it matters: the EV wakes the EVSE to resume charging (a departure time, a
    schedule); an EVSE that does not support pilot wake, or ignores it, leaves the EV
    uncharged (ChargeX UC1 230-231, UC2 192-195).
    Fix: EVSE — on a B → C → B pulse during a pause, restart the 5 % PWM and the matching.
    Source: IEC 61851-1 Annex A (wake-up by the EV); ISO 15118-2 §8.8.2 (pause and
    resume); ChargeX PFMEA UC2 192 "EVSE does not support pilot wake". The response time is
    the tool's choice (⚠ no normative value found; the dSPACE EVSE answers in 0.4 s).

    Example:

        #249 SessionStopReq → #251 SessionStopRes (+0.094 s)
        #258 VS_CP_STATE.IND(ST/IoTecha) State=C DutyCycle_pct=100 Voltage_V=5.961 (+16.100 s)
        #260 VS_CP_STATE.IND(ST/IoTecha) State=B DutyCycle_pct=100 Voltage_V=8.942 (+0.500 s)
    """

    code = "CPL010"
    title = "EV wake-up on the control pilot not answered"
    severity = "error"
    culprit = "SECC"
    requirement = "IEC 61851-1 Annex A (wake-up); ChargeX UC2 192"
    failure_modes = ("UC1 230-231", "UC2 192-195")
    params = {"wake_pulse_max_s": 3.0, "wake_response_s": 5.0}
    kinds = ("no-response",)
    explains = ("capture-ended", "slac-failed")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        cap_end = ctx.capture.get("last_time") or session.events[-1].time
        for res, resume in _pauses(session):
            trs = [t for t in v.transitions if t.time > res.time
                   and (resume is None or t.time < resume.time)]
            for i, t in enumerate(trs):
                if not (t.after[0] in "CD" and not t.sample.pwm and i + 1 < len(trs)):
                    continue
                back = trs[i + 1]
                if back.after[0] != "B" or back.time - t.time > self.p["wake_pulse_max_s"] + REPORT_LAG_S:
                    continue
                limit = back.time + self.p["wake_response_s"]
                answered = any(x.time <= limit + REPORT_LAG_S and x.sample.pwm
                               for x in trs[i + 1:]) or any(
                    t.time < e.time <= limit + REPORT_LAG_S for e in _slac_requests(session))
                if answered or cap_end < limit:
                    break
                yield self.finding(
                    session, [res.frame, t.frame, back.frame],
                    f"The EV woke the EVSE with a {t.before} → {t.after} → {back.after} pulse "
                    f"(frames {t.frame}–{back.frame}) during the pause, and the EVSE did not "
                    f"restart its PWM or the matching within {self.p['wake_response_s']:g} s.",
                    time=t.time, measured=round(min(cap_end, resume.time if resume else cap_end)
                                                - back.time, 3),
                    limit=self.p["wake_response_s"], unit="s")
                break
