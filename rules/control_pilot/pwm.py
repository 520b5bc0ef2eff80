"""Control pilot rules on the PWM duty cycle: CPL003, CPL004, CPL007."""
from __future__ import annotations

from ccs_analyzer.analyzer.control_pilot import is_digital

from ..helpers import base_name, facts, messages
from ..slac_timers import SLAC_TIMERS
from .common import REPORT_LAG_S, _CpRule, _cp, _slac_requests


def _mode(session, ctx) -> str | None:
    return ctx.summaries.get(session.id, {}).get("energy_transfer_mode")


def _is_dc(session, ctx) -> bool:
    m = _mode(session, ctx)
    if isinstance(m, str):
        return "DC" in m
    return any(base_name(e.name) in ("CurrentDemand", "CableCheck", "PreCharge", "DC_ChargeLoop")
               for e in messages(session))


class DutyNotDigital(_CpRule):
    """PWM duty cycle other than 5 % during DC high-level communication.

    What it checks: in a DC session, from the first CM_SLAC_PARM.REQ to the session's last
    V2G message, every reading with the PWM on has a duty cycle of 5 % (±1 point).
    Why it matters: DC charging is controlled by digital communication only; 5 % tells the
    EV to use it (IEC 61851-1 Table A.8). A nominal duty cycle during a DC session is a
    current offer the EV must not take (and some EVs stop matching or end the session when
    they see it).
    The reverse — 5 % while no high-level communication comes — is CPL007.
    Fix: EVSE — keep 5 % PWM for the whole DC session.
    Source: IEC 61851-1 Table A.8 (5 % = digital communication required); IEC 61851-23
    (DC charging requires digital communication); ISO 15118-3 §7 (5 % signalling for HLC).

    Example:

        #69 VS_CP_STATE.IND(ST/IoTecha) State=C DutyCycle_pct=53 Voltage_V=5.9
        #269 VS_CP_STATE.IND(ST/IoTecha) State=B DutyCycle_pct=53 Voltage_V=8.863
    """

    code = "CPL003"
    title = "PWM duty cycle not 5 % during DC high-level communication"
    severity = "error"
    culprit = "SECC"
    requirement = "IEC 61851-1 Table A.8; IEC 61851-23"
    kinds = ("cp-signal",)
    explains = ("slac-failed", "ev-error", "ev-abort")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None or session.basic or not _is_dc(session, ctx):
            return
        slac = _slac_requests(session)
        v2g = messages(session)
        if not slac and not v2g:
            return
        t0 = (slac or v2g)[0].time
        t1 = v2g[-1].time if v2g else session.events[-1].time
        bad = [x for x in v.duty() if t0 <= x.time <= t1 and x.pwm and not is_digital(x.duty_pct)]
        if not bad:
            return
        duties = sorted({x.duty_pct for x in bad})
        yield self.finding(
            session, [bad[0].frame, bad[-1].frame],
            f"The EVSE's PWM read {', '.join(f'{d:g} %' for d in duties)} during the DC session "
            f"(frames {bad[0].frame}–{bad[-1].frame}, {len(bad)} reading(s)) instead of 5 %.",
            time=bad[0].time, measured=duties[0], limit=5.0, unit="%",
            evidence={"duty_pct": duties, "count": len(bad)})


class PwmAboveLimit(_CpRule):
    """PWM current limit above the EVSE's ISO 15118 maximum or the cable's rating.

    What it checks: the current a nominal duty cycle allows (IEC 61851-1 Table A.8:
    d × 0.6 A for 10–85 %) is not above (a) the EVSE's maximum current announced in the
    session (ISO 15118-2 AC_EVSEChargeParameter EVSEMaxCurrent, ISO 15118-20
    EVSEMaximumChargeCurrent, the lowest one seen) nor (b) the current rating of the cable
    read from its PP resistor (IEC 61851-1 Table B.2), each with ``tolerance_a``.
    Why it matters: an AC EV takes what the PWM allows; a PWM above the cable's rating
    overloads the cable (a fire risk), one above the EVSE's own announcement overloads its
    supply (ChargeX UC2 240-243: "maximum current communicated higher than actual").
    Fix: EVSE — limit the duty cycle to min(supply, cable PP rating, the value announced in
    ISO 15118).
    Source: IEC 61851-1 Table A.8, Annex B Table B.2; ISO 15118-2 [V2G2-853] (nominal duty
    cycle after authorization).

    Example:

        #4 MS_SCS_DIAG.IND(dSPACE) CP State=State_B1 HV Contactor=Open Present Voltage [V]=1
        #5 VS_CP_STATE.IND(ST/IoTecha) State=B DutyCycle_pct=53 Voltage_V=8.849
    """

    code = "CPL004"
    title = "PWM current limit above the EVSE's announced maximum or the cable rating"
    severity = "error"
    culprit = "SECC"
    requirement = "IEC 61851-1 Table A.8, Table B.2"
    failure_modes = ("UC2 240-243",)
    params = {"tolerance_a": 0.5}
    kinds = ("limit-violation",)
    explains = ("ev-error", "evse-stop")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        pwm = [x for x in v.samples if x.pwm_current_A is not None]
        if not pwm:
            return
        top = max(pwm, key=lambda x: x.pwm_current_A)
        tol = self.p["tolerance_a"]
        evse_max = None
        src = None
        for e in messages(session):
            if not e.name.endswith("Res"):
                continue
            for k, val in facts(e).items():
                if (k.startswith(("EVSEMaxCurrent", "EVSEMaximumChargeCurrent"))
                        and k.endswith("_A") and isinstance(val, (int, float))
                        and (evse_max is None or val < evse_max)):
                    evse_max, src = float(val), e
        if evse_max is not None and top.pwm_current_A > evse_max + tol:
            yield self.finding(
                session, [top.frame, src.frame],
                f"The PWM duty cycle {top.duty_pct:g} % allows {top.pwm_current_A:g} A (frame "
                f"{top.frame}) but the EVSE announced a maximum of {evse_max:g} A in "
                f"{src.name} (frame {src.frame}).",
                time=top.time, measured=top.pwm_current_A, limit=evse_max, unit="A",
                evidence={"duty_pct": top.duty_pct, "announced_A": evse_max})
        cables = [x for x in v.samples if x.cable_rating_A is not None]
        if cables:
            cable = min(cables, key=lambda x: x.cable_rating_A)
            if top.pwm_current_A > cable.cable_rating_A + tol:
                yield self.finding(
                    session, [top.frame, cable.frame],
                    f"The PWM duty cycle {top.duty_pct:g} % allows {top.pwm_current_A:g} A "
                    f"(frame {top.frame}) but the cable is rated {cable.cable_rating_A:g} A (PP "
                    f"resistor {cable.pp_resistance_ohm:g} Ω, frame {cable.frame}).",
                    time=top.time, measured=top.pwm_current_A, limit=cable.cable_rating_A,
                    unit="A", key="cable",
                    evidence={"duty_pct": top.duty_pct, "pp_resistance_ohm": cable.pp_resistance_ohm})


class SlacLateAfterPwm(_CpRule):
    """SLAC not started within TT_EVSE_SLAC_init after the 5 % PWM.

    What it checks: from each start of a 5 % PWM (state B2 / C2 with a 5 % duty cycle after
    a reading without PWM or without an EV) to the EV's first CM_SLAC_PARM.REQ after it (or
    its first SDP / TCP / V2G message: after a pause the logical network may still stand); a
    finding when that takes longer than TT_EVSE_SLAC_init's lower bound (20 s: an error
    beyond its upper bound, 50 s), or when no SLAC follows while the capture goes on past
    it (the EVSE stays at 5 % and nothing can charge).
    Why it matters: the EVSE gives up on the EV after TT_EVSE_SLAC_init (20–50 s by
    implementation): it toggles E/F to restart or ends the session, and the EV never
    charges. A basic (IEC 61851-1 only) EV can do nothing with 5 %: the EVSE should fall
    back to a nominal duty cycle.
    Fix: EV — start SLAC within a few seconds of seeing 5 % (TP_EV_SLAC_init ≤ 10 s, ⚠);
    EVSE — offer a nominal PWM to EVs that do not start SLAC (AC).
    Source: ISO 15118-3 Table A.1 TT_EVSE_SLAC_init, [V2G3-M06-07] (C_sequ_retry);
    PROTOCOL_FACTS §2.4, §2.5.

    Example:

        #5 VS_CP_STATE.IND(ST/IoTecha) State=B DutyCycle_pct=5 Voltage_V=8.849
        #7 VS_CP_STATE.IND(ST/IoTecha) State=A DutyCycle_pct=5 Voltage_V=11.96 (+68.000 s)
    """

    code = "CPL007"
    title = "SLAC not started within TT_EVSE_SLAC_init after the 5 % PWM"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-3 Table A.1 TT_EVSE_SLAC_init"
    failure_modes = ("UC2 100-103",)
    params = {"tt_evse_slac_init_min_s": SLAC_TIMERS["TT_EVSE_SLAC_init"].minimum,
              "tt_evse_slac_init_max_s": SLAC_TIMERS["TT_EVSE_SLAC_init"].value}
    kinds = ("late-request",)
    explains = ("slac-failed", "capture-ended", "evse-stop", "cp-error")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        # the EV's first high-level message: CM_SLAC_PARM.REQ, or — after a pause with the
        # logical network kept — SDP / TCP / V2G straight away
        hlc = [e for e in session.events if e.name == "CM_SLAC_PARM.REQ"
               or e.layer in ("sdp", "tcp", "v2gtp")]
        end = session.events[-1].time
        cap_end = ctx.capture.get("last_time") or end
        lo, hi = self.p["tt_evse_slac_init_min_s"], self.p["tt_evse_slac_init_max_s"]
        prev = None
        for tr in v.transitions:
            digital = tr.sample.pwm and is_digital(tr.sample.duty_pct) and tr.after[0] in "BC"
            started = digital and (prev is None or not (prev.sample.pwm and
                                                        is_digital(prev.sample.duty_pct)))
            prev = tr
            if not started:
                continue
            first = next((e for e in hlc if e.time >= tr.time - REPORT_LAG_S), None)
            if first is not None:
                wait = first.time - tr.time
                if wait <= lo:
                    continue
                sev = "error" if wait > hi else "warning"
                yield self.finding(
                    session, [tr.frame, first.frame],
                    f"The EV sent its first {first.name} (frame {first.frame}) {wait:.1f} s "
                    f"after the EVSE started the 5 % PWM (frame {tr.frame}); TT_EVSE_SLAC_init is "
                    f"{lo:g}–{hi:g} s by implementation.",
                    time=tr.time, measured=round(wait, 3), limit=lo, unit="s", severity=sev)
                continue
            wait = cap_end - tr.time
            gone = next((t for t in v.transitions if t.time > tr.time
                         and (t.after[0] not in "BCD"
                              or not (t.sample.pwm and is_digital(t.sample.duty_pct)))), None)
            if gone is not None:
                wait = gone.time - tr.time
            if wait <= lo:
                continue
            f = self.finding(
                session, [tr.frame] + ([gone.frame] if gone else []),
                f"No CM_SLAC_PARM.REQ (nor SDP / V2G) in the {wait:.1f} s after the EVSE started the 5 % PWM "
                f"(frame {tr.frame})" + (f", until the pilot changed at frame {gone.frame}" if gone
                                         else ", until the end of the capture")
                + (": a basic EV cannot charge at 5 % and the EVSE offered no nominal PWM."
                   if session.basic else "."),
                time=tr.time, measured=round(wait, 3), limit=lo, unit="s",
                severity="error" if wait > hi else "warning",
                culprit="unknown" if session.basic else None)
            if session.basic:
                # a basic EV can do nothing at 5 %: this is why it never charged
                f.kinds, f.explains = ("late-request",), ("ev-stop", "evse-end", "capture-ended")
            else:
                f.kinds = ("slac-failed",)
            yield f
