"""Limit rules on what the EVSE delivers against the EV's target: LIM004-LIM007."""
from __future__ import annotations

from collections import deque

from ccs_analyzer.analyzer.views.loop_table import (allowed_current, battery_voltage,
                                                    covered_by_no_current, loop_table)

from ..base import LoopRule, judged
from .common import _Exceed, _frames, _proof, _span, _src_frames


def _short_stretches(rows, classify, tol_a, tol_pct, skip=frozenset()):
    """Stretches of consecutive rows where the EVSE delivers less than allowed (gap >
    tolerance) and ``classify(row)`` holds: [(rows of the stretch, [gap …])]. Rows with
    implausible present values and rows whose id is in ``skip`` (the no-current stretches,
    CHL007's) end a stretch."""
    out, cur, gaps = [], [], []
    for row in rows:
        a = allowed_current(row)
        ok = False
        if a is not None and not row.ev_error and not row.failed and not row.bad:
            gap = a - row.pi
            tol = max(row.reg_tol or 0.0, tol_a, tol_pct / 100.0 * a)
            # the cheap test first: most cycles deliver what is allowed
            ok = gap > tol and id(row) not in skip and classify(row)
        if ok:
            cur.append(row)
            gaps.append(gap)
        elif cur:
            out.append((cur, gaps))
            cur, gaps = [], []
    if cur:
        out.append((cur, gaps))
    return out


class _UnderDelivery(LoopRule):
    """Shared logic of LIM004 / LIM005 (no code: not a rule itself)."""

    params = {"min_s": 10.0, "current_tolerance_a": 5.0, "current_tolerance_pct": 5.0,
              "voltage_tolerance_v": 10.0, "battery_tolerance_v": 20.0, "soc_rise_pct": 5.0}
    where = ""

    def _cv(self, row, batt=None, soc0=None) -> bool:
        """Constant-voltage operation: the output has reached the EV's target voltage — and
        a battery can be at that voltage: the output is within ``battery_tolerance_v`` of the
        battery voltage the EV declared in PreCharge (``batt``, V), or the battery has
        charged since (SoC up by ``soc_rise_pct`` from ``soc0``). An output far above the
        battery's voltage with little current cannot be a battery in constant voltage: the
        EVSE reports a voltage it does not apply (PROTOCOL_FACTS §4D ⚠ derived)."""
        if row.tv is None or row.pv is None or row.pv < row.tv - self.p["voltage_tolerance_v"]:
            return False
        if batt is None or row.pv - batt <= self.p["battery_tolerance_v"]:
            return True
        return soc0 is not None and row.soc is not None and row.soc - soc0 >= self.p["soc_rise_pct"]

    def _classify(self, row, batt=None, soc0=None) -> bool:
        raise NotImplementedError

    def _stretches(self, rows, skip=frozenset(), batt=None):
        got = []
        soc0 = next((r.soc for r in rows if r.soc is not None), None)
        classify = (lambda row: self._classify(row, batt, soc0))  # noqa: E731
        for st, gaps in _short_stretches(rows, classify, self.p["current_tolerance_a"],
                                         self.p["current_tolerance_pct"], skip):
            dur = st[-1].t - st[0].t
            if dur < self.p["min_s"]:
                continue
            if gaps[-1] < 0.5 * gaps[0]:
                continue                      # converging: a ramp, not a shortfall
            got.append((st, gaps, dur))
        return got

    def check(self, session, ctx):
        yield from _under_findings(self, session, ctx, self.where)


class EvseDeliversLessThanOffered(_UnderDelivery):
    """The EVSE delivers far less current than the EV asks for and its own limits allow.

    What it checks: charge-loop cycles where EVSEPresentCurrent stays below min(EVTargetCurrent,
    EVSEMaximumCurrentLimit, EVSEMaximumPowerLimit / EVSEPresentVoltage) by more than the
    tolerance (EVSECurrentRegulationTolerance when given, else ``current_tolerance_a`` /
    ``current_tolerance_pct``) while the EVSE is not in constant-voltage operation — below the
    EV's target voltage, or at it while the reported output is more than
    ``battery_tolerance_v`` above the battery voltage the EV declared in PreCharge and the
    battery has not charged since (no battery holds such a voltage at so little current: the
    EVSE reports a voltage it does not apply) — for at least ``min_s`` seconds without
    converging (a ramp that halves the gap is not a finding). One finding per loop: the longest such stretch. Cycles
    in which the EVSE delivered no current at all (CHL007's stretches) and implausible
    present values (MSG020) are not counted here.
    Why it matters: the EVSE announces more than it then delivers — the EV charges slower
    than planned (user needs not met); some EVs abort when the current they measure differs
    from the requested one (EVErrorCode FAILED_ChargingCurrentdifferential).
    Fix (SECC): deliver the requested current up to the announced limits, or announce the
    limits the hardware really has (EVSEMaximumCurrentLimit / …PowerLimit) and set
    EVSECurrentLimitAchieved / EVSEPowerLimitAchieved.
    Source: PROTOCOL_FACTS §4D "Derived sanity" (⚠ analyst-derived; tolerances are
    parameters); ChargeX PFMEA UC2 244-251 (EVSE maximum current inaccurate — charging slower
    than possible).

    Example:

        #163 CurrentDemandReq EVTargetCurrent=200 A
          → #165 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEPresentCurrent=74.9 A
        #199 CurrentDemandReq EVTargetCurrent=200 A
          → #201 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEPresentCurrent=74.7 A
        #263 CurrentDemandReq EVTargetCurrent=200 A
          → #265 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEPresentCurrent=74.8 A
    """

    code = "LIM004"
    title = "EVSE delivers less than the EV asks and its limits allow"
    severity = "warning"
    category = "limits"
    kinds = ("under-delivery",)
    explains = ("ev-error",)
    horizon_s = 3.0                    # the EV reports a current differential right away
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 244", "UC2 248")
    where = "while not in constant-voltage operation"
    requirement = "EVSEPresentCurrent ≈ min(EVTargetCurrent, EVSE limits) (§4D ⚠ derived)"

    def _classify(self, row, batt=None, soc0=None):
        return not self._cv(row, batt, soc0)


class EvseCurrentLimitedByVoltage(_UnderDelivery):
    """The EVSE delivers far less current than asked while holding the EV's target voltage.

    What it checks: the same shortfall as LIM004, but in cycles where EVSEPresentVoltage has
    reached EVTargetVoltage (within ``voltage_tolerance_v``): constant-voltage operation, where
    the current is set by the load (a lamp, a full battery). One finding per loop. Cycles
    CHL007 reports (no current at all, at a voltage no battery could hold without current)
    and cycles whose output is far above the EV's declared battery voltage (LIM004: an EVSE
    that echoes the target voltage it does not apply) are not counted here.
    Why it matters: informative — it explains a low current that is not the EVSE's choice:
    the EV's own voltage target binds. An EV that asks for high current while declaring a
    target voltage already reached contradicts itself, or the EVSE's voltage reading is off.
    Fix: (EVCC) request a target voltage above the battery voltage in the constant-current
    phase; (SECC) report the measured output voltage, not the target.
    Source: PROTOCOL_FACTS §4D (⚠ analyst-derived); ISO 15118-2 / DIN 70121
    CurrentDemandReqType (EVTargetVoltage, EVTargetCurrent).

    Example:

        #139 CurrentDemandReq EVTargetCurrent=10 A
          → #141 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEPresentCurrent=0.35 A
        #247 CurrentDemandReq EVTargetCurrent=10 A
          → #249 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEMaximumPowerLimit=100000 W
              EVSEPresentCurrent=0.35 A
    """

    code = "LIM005"
    title = "EVSE current limited at the EV's target voltage"
    severity = "info"
    category = "limits"
    kinds = ("under-delivery",)
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    where = "while holding the EV's target voltage"
    requirement = "EVSEPresentCurrent vs EVTargetCurrent at EVTargetVoltage (§4D ⚠ derived)"

    def _classify(self, row, batt=None, soc0=None):
        return self._cv(row, batt, soc0)


def _under_findings(rule, session, ctx, where):
    skip = covered_by_no_current(session, ctx)
    for run, rows in loop_table(session, ctx):
        batt = battery_voltage(session, run, ctx)
        got = rule._stretches(rows, skip, batt[0] if batt else None)
        if not got:
            continue
        st, gaps, dur = max(got, key=lambda g: g[2])
        k = max(range(len(st)), key=lambda i: gaps[i])
        w = st[k]
        a = allowed_current(w)
        total = sum(g[2] for g in got)
        asked = max(r.ti for r in st)
        got_i = max(r.pi for r in st)
        more = f" ({len(got)} such stretches, {total:.0f} s in all)" if len(got) > 1 else ""
        note = ""
        if batt is not None and w.pv - batt[0] > rule.p["voltage_tolerance_v"]:
            note = (f"; the EV's PreCharge target (its battery voltage) was {batt[0]:.1f} V "
                    f"(frame {batt[1]}), {w.pv - batt[0]:.0f} V below the reported output")
        limits = []
        if w.imax is not None:
            limits.append(f"EVSEMaximumCurrentLimit {w.imax:.1f} A")
        if w.pmax:
            limits.append(f"EVSEMaximumPowerLimit {w.pmax / 1000:.1f} kW")
        yield rule.finding(
            session, _frames(st[0], w, st[-1]) + _src_frames(w, ("imax", "pmax")),
            f"For {dur:.1f} s ({len(st)} cycles, frames {st[0].cyc.frames[0]}-{st[-1].cyc.frames[-1]}) "
            f"the EVSE delivered at most {got_i:.2f} A {where} ({w.pv:.1f} V vs target "
            f"{w.tv:.1f} V) although the EV asked for up to {asked:.1f} A and it allowed "
            f"{a:.1f} A ({', '.join(limits) or 'no EVSE maximum known'}){more}{note}",
            time=st[0].t, measured=round(w.pi, 3), limit=round(a, 3), unit="A",
            evidence={"precharge_target_V": batt[0] if batt else None,
                      "expected": f"EVSEPresentCurrent ≈ min(EVTargetCurrent, EVSE limits) = "
                                  f"{a:.1f} A", "actual": f"{w.pi:.2f} A for {dur:.1f} s",
                      "cycles": len(st), "count": len(st), "duration_s": round(dur, 3),
                      "stretches": len(got),
                      "worst": _proof(w, ("EVTargetCurrent", "EVTargetVoltage", "EVSEPresentCurrent",
                                          "EVSEPresentVoltage", "EVSECurrentLimitAchieved",
                                          "EVSEPowerLimitAchieved", "EVSEVoltageLimitAchieved"))},
        values=[judged(w.cyc.req, "EVTargetCurrent", w.ti, unit="A"),
                judged(w.cyc.req, "EVTargetVoltage", w.tv, unit="V"),
                judged(w.cyc.res, "EVSEPresentVoltage", w.pv, unit="V")]
        + [judged(r.cyc.res, "EVSEPresentCurrent", r.pi, expected=round(allowed_current(r), 3), unit="A")
           for r in (st[0], w, st[-1])])


class CurrentOvershoot(LoopRule):
    """The EVSE's current overshoots the EV's target.

    What it checks: EVSEPresentCurrent above the highest EVTargetCurrent of the last
    ``settle_s`` seconds (so that a current still ramping down after the EV lowered its
    target is not counted) by more than the tolerance (EVSECurrentRegulationTolerance when
    given, else max(``current_tolerance_a``, ``current_tolerance_pct`` of the target)), in at
    least ``min_cycles`` consecutive cycles. One finding per loop. Implausible present
    currents (MSG020) are not judged here.
    Why it matters: the EV's target current is the most it accepts; an overshoot stresses the
    battery and makes EVs abort (FAILED_ChargingCurrentdifferential).
    Fix (SECC): regulate to the EV's target within the regulation tolerance; report the
    measured current.
    Source: PROTOCOL_FACTS §4D "Derived sanity": EVSEPresentCurrent ≤ min(EVTargetCurrent,
    EVSEMaximumCurrentLimit) + EVSECurrentRegulationTolerance (⚠ analyst-derived; the
    default tolerances are analyst choices, not quoted from IEC 61851-23).

    Example:

        #183 CurrentDemandReq EVTargetCurrent=104.7 A
          → #185 CurrentDemandRes EVSEPresentCurrent=124.7 A
        #195 CurrentDemandReq EVTargetCurrent=104.7 A
          → #197 CurrentDemandRes EVSEPresentCurrent=124.7 A
    """

    code = "LIM006"
    title = "EVSE current above the EV's target"
    severity = "warning"
    category = "limits"
    kinds = ("limit-violation",)
    explains = ("ev-error", "ev-abort")
    horizon_s = 3.0                    # the EV or EVSE reacts to it at once
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"settle_s": 2.0, "current_tolerance_a": 5.0, "current_tolerance_pct": 5.0,
              "min_cycles": 2}
    requirement = ("EVSEPresentCurrent ≤ EVTargetCurrent + EVSECurrentRegulationTolerance "
                   "(§4D ⚠ derived)")

    def check(self, session, ctx):
        for run, rows in loop_table(session, ctx):
            window: deque = deque()      # (time, target) — monotonic by target
            agg = _Exceed()
            streak = []
            for row in rows:
                if row.ti is not None and row.cyc.req is not None:
                    t = row.cyc.req.time
                    while window and window[-1][1] <= row.ti:
                        window.pop()
                    window.append((t, row.ti))
                    while window and window[0][0] < t - self.p["settle_s"]:
                        window.popleft()
                over = None
                if row.pi is not None and window and not row.failed and not row.ev_error \
                        and "current" not in row.bad:
                    ref = window[0][1]
                    tol = row.reg_tol or max(self.p["current_tolerance_a"],
                                             self.p["current_tolerance_pct"] / 100 * ref)
                    if row.pi - ref > tol:
                        over = (row, row.pi - ref, ref)
                if over:
                    streak.append(over)
                    continue
                self._flush(streak, agg)
                streak = []
            self._flush(streak, agg)
            if not agg.n:
                continue
            w = agg.worst
            ref = w.pi - agg.worst_excess
            yield self.finding(
                session, agg.frames(),
                f"The EVSE delivered more current than the EV asked for {_span(agg)}: "
                f"{w.pi:.2f} A against EVTargetCurrent {ref:.2f} A (+{agg.worst_excess:.2f} A)",
                time=agg.first.t, measured=round(w.pi, 3), limit=round(ref, 3), unit="A",
                evidence={"expected": "EVSEPresentCurrent ≤ EVTargetCurrent + tolerance",
                          "actual": f"{w.pi:.2f} A vs {ref:.2f} A", "count": agg.n,
                          "EVSECurrentRegulationTolerance_A": w.reg_tol, "worst": _proof(w)},
                values=[judged(w.cyc.res, "EVSEPresentCurrent", w.pi, limit=ref, unit="A")])

    def _flush(self, streak, agg):
        if len(streak) >= self.p["min_cycles"]:
            for row, x, _ in streak:
                agg.add(row, x)


class VoltageAboveTarget(LoopRule):
    """The EVSE's voltage is above the EV's target voltage.

    What it checks: EVSEPresentVoltage above EVTargetVoltage + ``voltage_tolerance_v`` in at
    least ``min_cycles`` consecutive cycles (requests with a target of 0 V or an EV error
    code are left out: the EV is stopping). A voltage below the target is normal in the
    constant-current phase and is not checked. One finding per loop. Implausible present
    voltages (MSG020) are not judged here.
    Why it matters: EVTargetVoltage is the voltage the EV wants not to be exceeded (its
    charge-end voltage); a higher output overcharges the battery and makes the EV abort.
    Fix (SECC): regulate the output voltage to at most EVTargetVoltage; report the measured
    voltage.
    Source: PROTOCOL_FACTS §4D (⚠ analyst-derived; tolerance is a parameter); ISO 15118-2 /
    DIN 70121 CurrentDemandReqType EVTargetVoltage; ISO 15118-20 Scheduled_DC_CLReqControlMode.

    Example:

        #175 CurrentDemandReq EVTargetVoltage=430 V
          → #177 CurrentDemandRes EVSEPresentVoltage=454.5 V
        #183 CurrentDemandReq EVTargetVoltage=430 V
          → #185 CurrentDemandRes EVSEPresentVoltage=455.1 V
        #191 CurrentDemandReq EVTargetVoltage=430 V
          → #193 CurrentDemandRes EVSEPresentVoltage=454.9 V
    """

    code = "LIM007"
    title = "EVSE voltage above the EV's target voltage"
    severity = "warning"
    category = "limits"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"voltage_tolerance_v": 10.0, "min_cycles": 2}
    requirement = "EVSEPresentVoltage ≤ EVTargetVoltage (§4D ⚠ derived)"

    def check(self, session, ctx):
        for run, rows in loop_table(session, ctx):
            agg, streak = _Exceed(), []
            for row in rows:
                if (row.pv is not None and row.tv is not None and row.tv > 0 and not row.ev_error
                        and not row.failed and row.pv - row.tv > self.p["voltage_tolerance_v"]
                        and "voltage" not in row.bad):
                    streak.append(row)
                    continue
                if len(streak) >= self.p["min_cycles"]:
                    for r in streak:
                        agg.add(r, r.pv - r.tv)
                streak = []
            if len(streak) >= self.p["min_cycles"]:
                for r in streak:
                    agg.add(r, r.pv - r.tv)
            if not agg.n:
                continue
            w = agg.worst
            yield self.finding(
                session, agg.frames(),
                f"EVSEPresentVoltage exceeded the EV's EVTargetVoltage {_span(agg)}: "
                f"{w.pv:.1f} V against {w.tv:.1f} V (+{agg.worst_excess:.1f} V)",
                time=agg.first.t, measured=round(w.pv, 3), limit=round(w.tv, 3), unit="V",
                evidence={"expected": f"EVSEPresentVoltage ≤ EVTargetVoltage + "
                                      f"{self.p['voltage_tolerance_v']} V",
                          "actual": f"{w.pv:.1f} V vs {w.tv:.1f} V", "count": agg.n,
                          "worst": _proof(w)},
                values=[x for r in (agg.first, w, agg.last) for x in (
                    judged(r.cyc.req, "EVTargetVoltage", r.tv, unit="V"),
                    judged(r.cyc.res, "EVSEPresentVoltage", r.pv,
                           limit=r.tv + self.p["voltage_tolerance_v"], unit="V"))])
