"""Limits and physics: the charge loop's voltages, currents and powers against the EVSE's and
the EV's own limits, plausibility over consecutive cycles, and the limits exchanged in
ChargeParameterDiscovery.

Every loop rule aggregates over a loop (one finding per condition and loop, with the count,
the worst value, the first / worst / last frames and the decoded excerpt of the worst
message). The rules read the loop table (analyzer/views/loop_table.py): one row per
charge-loop cycle with the values in SI units (``facts(e)``: DIN / ISO-2 PhysicalValue and
ISO 15118-20 RationalNumber alike), the limits in force, and the marks of the judgements
other rules own — implausible present values (MSG020; the limit rules skip them) and
no-current stretches (CHL007; LIM004 / LIM005 stand down on them).

The relations are those of PROTOCOL_FACTS §4D: the CPD rules ([V2G2-477]) are hard facts;
the loop relations are analyst-derived (⚠) — their tolerances are parameters.
"""
from __future__ import annotations

from collections import deque

from ccs_analyzer.analyzer.views.loop_table import (EV_IMAX, EV_MAXIMUM_VOLTAGE_TOLERANCE_V,
                                                    EV_PMAX, EV_VMAX, EVSE_IMAX, EVSE_PMAX,
                                                    EVSE_VMAX, REG_TOL, allowed_current,
                                                    battery_voltage, covered_by_no_current,
                                                    loop_table, pick, precharge_before_loops,
                                                    run_key, voltage_above_ev_maximum)

from .base import LoopRule
from .helpers import excerpt, facts, is_failed

#: (minimum, maximum, what) pairs checked in ChargeParameterDiscovery and loop messages.
MIN_MAX = (
    ("EVSEMinimumCurrentLimit_A", "EVSEMaximumCurrentLimit_A", "EVSE current"),
    ("EVSEMinimumVoltageLimit_V", "EVSEMaximumVoltageLimit_V", "EVSE voltage"),
    ("EVSEMinimumChargeCurrent_A", "EVSEMaximumChargeCurrent_A", "EVSE charge current"),
    ("EVSEMinimumVoltage_V", "EVSEMaximumVoltage_V", "EVSE voltage"),
    ("EVSEMinimumChargePower_W", "EVSEMaximumChargePower_W", "EVSE charge power"),
    ("EVMinimumChargeCurrent_A", "EVMaximumChargeCurrent_A", "EV charge current"),
    ("EVMinimumVoltage_V", "EVMaximumVoltage_V", "EV voltage"),
    ("EVMinimumChargePower_W", "EVMaximumChargePower_W", "EV charge power"),
    ("EVMinCurrent_A", "EVMaxCurrent_A", "EV current"),
)

_SCHEMA = {  # SI fact key → element name, for the decoded excerpts
    k: k.rsplit("_", 1)[0] for k in (*EVSE_IMAX, *EVSE_VMAX, *EVSE_PMAX, *EV_IMAX, *EV_VMAX,
                                     *EV_PMAX, REG_TOL)}


def _frames(*rows) -> list[int]:
    out = []
    for r in rows:
        if r is not None:
            out.extend(r.cyc.frames)
    return out


def _proof(row, keys=("EVTargetCurrent", "EVTargetVoltage", "EVSEPresentCurrent",
                      "EVSEPresentVoltage")) -> dict:
    """Decoded excerpt of a row's request and response."""
    return {"request": excerpt(row.cyc.req, keys) if row.cyc.req is not None else None,
            "response": excerpt(row.cyc.res, keys) if row.cyc.res is not None else None}


def _src_frames(row, names) -> list[int]:
    return [row.src[n].frame for n in names if n in row.src]


class _Exceed:
    """Aggregate of a value exceeding a limit over a loop: count, worst row, first / last."""

    def __init__(self):
        self.n = 0
        self.first = self.last = self.worst = None
        self.worst_excess = None

    def add(self, row, excess):
        self.n += 1
        if self.first is None:
            self.first = row
        self.last = row
        if self.worst_excess is None or excess > self.worst_excess:
            self.worst, self.worst_excess = row, excess

    def frames(self, extra=()) -> list[int]:
        return _frames(self.first, self.worst, self.last) + list(extra)


def _span(agg) -> str:
    if agg.n == 1:
        return f"once (frame {agg.worst.cyc.frames[-1]})"
    return (f"in {agg.n} cycles (frames {agg.first.cyc.frames[0]}-{agg.last.cyc.frames[-1]}, "
            f"worst frame {agg.worst.cyc.frames[-1]})")


class EvseAboveOwnMaximum(LoopRule):
    """The EVSE's output exceeds its own maximum (voltage, current or power).

    What it checks: in each charge-loop response, EVSEPresentVoltage against
    EVSEMaximumVoltageLimit + ``voltage_tolerance_v``, EVSEPresentCurrent against
    EVSEMaximumCurrentLimit + the tolerance (EVSECurrentRegulationTolerance when the EVSE
    gives one, else ``current_tolerance_a``), and EVSEPresentVoltage × EVSEPresentCurrent
    against EVSEMaximumPowerLimit + ``power_tolerance_pct``. The limits in force are those
    of the same response, else of the last response that had them, else of
    ChargeParameterDiscoveryRes (-20: EVSEMaximumChargeCurrent / …Voltage / …ChargePower).
    One finding per quantity and loop. Present values that cannot be measurements (far
    above every maximum either side announced) are MSG020's and are not judged here.
    Why it matters: the EVSE either delivers more than it declared it can (grid overload,
    safety: ChargeX PFMEA severity 10) or reports its limits or measurements wrongly; the EV
    plans with these limits.
    Fix (SECC): limit the converter to the announced maxima, or announce the real ones;
    check the PhysicalValue multipliers / RationalNumber exponents.
    Source: PROTOCOL_FACTS §4D "Derived sanity" (⚠ analyst-derived, tolerances are
    parameters); ISO 15118-2 CurrentDemandResType, DIN 70121 CurrentDemandResType,
    ISO 15118-20 DC_ChargeLoopResType; ChargeX PFMEA UC2 240-243.
    """

    code = "LIM001"
    title = "EVSE output above its own maximum"
    severity = "error"
    category = "limits"
    kinds = ("limit-violation",)
    explains = ("evse-stop", "evse-abort")
    horizon_s = 3.0                    # the EV or EVSE reacts to it at once
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 240",)
    params = {"voltage_tolerance_v": 10.0, "current_tolerance_a": 5.0, "power_tolerance_pct": 5.0}
    requirement = ("EVSEPresentVoltage / Current / power ≤ EVSEMaximum…Limit "
                   "(PROTOCOL_FACTS §4D ⚠ derived)")

    def check(self, session, ctx):
        for run, rows in loop_table(session, ctx):
            aggs = {"voltage": _Exceed(), "current": _Exceed(), "power": _Exceed()}
            for row in rows:
                if row.failed:
                    continue
                if row.pv is not None and row.vmax is not None and "voltage" not in row.bad:
                    x = row.pv - row.vmax
                    if x > self.p["voltage_tolerance_v"]:
                        aggs["voltage"].add(row, x)
                if row.pi is not None and row.imax is not None and "current" not in row.bad:
                    tol = max(row.reg_tol or 0.0, self.p["current_tolerance_a"])
                    x = row.pi - row.imax
                    if x > tol:
                        aggs["current"].add(row, x)
                if row.p is not None and row.pmax is not None and row.pmax > 0 and not row.bad:
                    x = row.p - row.pmax
                    if x > row.pmax * self.p["power_tolerance_pct"] / 100.0:
                        aggs["power"].add(row, x)
            units = {"voltage": ("V", "pv", "vmax", "EVSEPresentVoltage", "EVSEMaximumVoltageLimit"),
                     "current": ("A", "pi", "imax", "EVSEPresentCurrent", "EVSEMaximumCurrentLimit"),
                     "power": ("W", "p", "pmax", "EVSEPresentVoltage × EVSEPresentCurrent",
                               "EVSEMaximumPowerLimit")}
            for what, agg in aggs.items():
                if not agg.n:
                    continue
                unit, val, lim, vname, lname = units[what]
                w = agg.worst
                v, limit = getattr(w, val), getattr(w, lim)
                src = w.src.get(lim)
                k, u = (1000.0, "kW") if unit == "W" else (1.0, unit)
                yield self.finding(
                    session, agg.frames(_src_frames(w, (lim,))),
                    f"The EVSE's {what} exceeded its own maximum {_span(agg)}: {v / k:.1f} {u} "
                    f"against {lname} {limit / k:.1f} {u} (from {src.name} frame {src.frame})",
                    time=agg.first.t, measured=round(v, 3), limit=round(limit, 3), unit=unit,
                    evidence={"expected": f"{vname} ≤ {lname} (+ tolerance)",
                              "actual": f"{v:.2f} {unit} > {limit:.2f} {unit}", "count": agg.n,
                              "worst": _proof(w, ("EVSEPresentVoltage", "EVSEPresentCurrent",
                                                  *_schema_names(lim))),
                              "limit_from": excerpt(src, _schema_names(lim))})


def _schema_names(lim: str) -> tuple:
    keys = {"imax": EVSE_IMAX, "vmax": EVSE_VMAX, "pmax": EVSE_PMAX, "ev_imax": EV_IMAX,
            "ev_vmax": EV_VMAX, "ev_pmax": EV_PMAX}[lim]
    return tuple(_SCHEMA[k] for k in keys)


class EvseAboveEvMaximum(LoopRule):
    """The EVSE's output exceeds the EV's maximum voltage or current.

    What it checks: EVSEPresentVoltage against the EV's EVMaximumVoltageLimit (-20:
    EVMaximumVoltage; from the loop request, else ChargeParameterDiscoveryReq) +
    ``voltage_tolerance_v`` — in the charge loop and in the PreCharge responses before it
    (PreChargeRes / -20 DC_PreChargeRes, the only DC responses before the loop that carry
    EVSEPresentVoltage: a charger that enters PreCharge still at its ~500 V cable-check
    voltage) — and EVSEPresentCurrent against EVMaximumCurrentLimit (-20:
    EVMaximumChargeCurrent) + ``current_tolerance_a`` in the loop. One finding per quantity
    and loop; the PreCharge responses before a loop belong to that loop's voltage finding (a
    voltage that is still too high when the loop starts is one problem), a PreCharge loop
    that no charge loop follows gets its own. Present values that cannot be measurements
    (MSG020) are not judged here. PRE005 (PreCharge overshoot above the EV's target) stands
    down for the PreChargeRes this rule covers: a PreCharge voltage above the EV's maximum
    is above its target too, and is reported once, here.
    Why it matters: the EV's maxima protect its battery; an EVSE that applies more voltage
    or current than the EV allows risks damage, and the EV will abort (EVErrorCode
    FAILED_ChargingVoltageOutOfRange / FAILED_ChargingCurrentdifferential). During PreCharge
    the EV closes its contactors onto whatever voltage the EVSE holds.
    Fix (SECC): never exceed the EV's maxima (regulate to min(EV target, EV maximum, EVSE
    maximum)); discharge the output after the cable check (isolation test) before PreCharge;
    check the measurement and the encoding of the values.
    Source: PROTOCOL_FACTS §4D "Derived sanity" (⚠ analyst-derived; tolerances are
    parameters) and "During CableCheck the EVSE applies a test voltage" (500 V); ISO 15118-2
    / DIN 70121 CurrentDemandReqType, PreChargeResType, DC_EVChargeParameterType.
    """

    code = "LIM002"
    title = "EVSE output above the EV's maximum"
    severity = "error"
    category = "limits"
    kinds = ("limit-violation",)
    explains = ("ev-error", "ev-stop", "ev-abort")
    horizon_s = 3.0                    # the EV or EVSE reacts to it at once
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"voltage_tolerance_v": EV_MAXIMUM_VOLTAGE_TOLERANCE_V, "current_tolerance_a": 5.0}
    requirement = ("EVSEPresentVoltage ≤ EVMaximumVoltageLimit, EVSEPresentCurrent ≤ "
                   "EVMaximumCurrentLimit (§4D ⚠ derived)")

    def check(self, session, ctx):
        tol_v = self.p["voltage_tolerance_v"]
        groups = precharge_before_loops(session, ctx)
        for run, rows in loop_table(session, ctx):
            vagg, iagg = _Exceed(), _Exceed()
            for row in groups.pop(run_key(run), []):
                if voltage_above_ev_maximum(row, tol_v):
                    vagg.add(row, row.pv - row.ev_vmax)
            for row in rows:
                if row.failed:
                    continue
                if voltage_above_ev_maximum(row, tol_v) and "voltage" not in row.bad:
                    vagg.add(row, row.pv - row.ev_vmax)
                if row.pi is not None and row.ev_imax is not None and row.ev_imax > 0 \
                        and "current" not in row.bad:
                    x = row.pi - row.ev_imax
                    if x > self.p["current_tolerance_a"]:
                        iagg.add(row, x)
            yield from self._findings(session, vagg, iagg)
        for rows in groups.values():          # PreCharge loops without a charge loop after
            vagg = _Exceed()
            for row in rows:
                if voltage_above_ev_maximum(row, tol_v):
                    vagg.add(row, row.pv - row.ev_vmax)
            yield from self._findings(session, vagg, _Exceed())

    def _findings(self, session, vagg, iagg):
        for agg, what, unit, val, lim, lname in (
                (vagg, "voltage", "V", "pv", "ev_vmax", "EVMaximumVoltageLimit"),
                (iagg, "current", "A", "pi", "ev_imax", "EVMaximumCurrentLimit")):
            if not agg.n:
                continue
            w = agg.worst
            v, limit = getattr(w, val), getattr(w, lim)
            names = sorted({r.cyc.res.name for r in (agg.first, agg.worst, agg.last)},
                           key=lambda n: "PreCharge" not in n)
            where = f" in {' and '.join(names)}" if len(names) > 1 or "PreCharge" in names[0] else ""
            yield self.finding(
                session, agg.frames(),
                f"The EVSE's {what} exceeded the EV's maximum{where} {_span(agg)}: {v:.1f} {unit} "
                f"against {lname} {limit:.1f} {unit}",
                time=agg.first.t, measured=round(v, 3), limit=round(limit, 3), unit=unit,
                evidence={"expected": f"EVSEPresent{what.capitalize()} ≤ the EV's {lname}",
                          "actual": f"{v:.2f} {unit} > {limit:.2f} {unit}", "count": agg.n,
                          "first": _proof(agg.first, ("EVSEPresentVoltage", "EVSEPresentCurrent",
                                                      "EVTargetVoltage")),
                          "worst": _proof(w, ("EVSEPresentVoltage", "EVSEPresentCurrent",
                                              *_schema_names(lim)))})


class EvTargetAboveEvseMaximum(LoopRule):
    """The EV asks for more than the EVSE's maximum (the EVSE has to limit).

    What it checks: EVTargetCurrent against EVSEMaximumCurrentLimit, EVTargetVoltage
    against EVSEMaximumVoltageLimit, and EVTargetCurrent × EVSEPresentVoltage against
    EVSEMaximumPowerLimit (with the LIM001 tolerances). One finding per quantity and loop.
    Why it matters: nothing breaks — the EVSE limits its output and should set
    EVSECurrentLimitAchieved / …VoltageLimitAchieved / …PowerLimitAchieved — but it explains
    why the EV gets less than it asks for, and an EV that ignores the EVSE's limits is
    worth knowing about.
    Fix (EVCC): keep the requests within the EVSE's announced maxima.
    Source: PROTOCOL_FACTS §4D (CurrentDemandRes limit flags, E-ISO ⚠; derived sanity ⚠);
    ISO 15118-2 / DIN 70121 CurrentDemandReqType / CurrentDemandResType.
    """

    code = "LIM003"
    title = "EV target above the EVSE maximum"
    severity = "info"
    category = "limits"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"voltage_tolerance_v": 10.0, "current_tolerance_a": 5.0, "power_tolerance_pct": 5.0}
    requirement = "EVTarget… ≤ EVSEMaximum…Limit (EVSE limits otherwise; §4D ⚠)"

    def check(self, session, ctx):
        for run, rows in loop_table(session, ctx):
            aggs = {"current": _Exceed(), "voltage": _Exceed(), "power": _Exceed()}
            for row in rows:
                if row.ev_error:
                    continue
                ti, tv = row.ti, row.tv
                tol_a, tol_v = self.p["current_tolerance_a"], self.p["voltage_tolerance_v"]
                if ti is not None and row.imax is not None and ti - row.imax > tol_a:
                    aggs["current"].add(row, ti - row.imax)
                if tv is not None and row.vmax is not None and tv - row.vmax > tol_v:
                    aggs["voltage"].add(row, tv - row.vmax)
                if row.ti is not None and row.pv is not None and row.pmax and "voltage" not in row.bad:
                    x = row.ti * row.pv - row.pmax
                    if x > row.pmax * self.p["power_tolerance_pct"] / 100.0:
                        aggs["power"].add(row, x)
            for what, agg in aggs.items():
                if not agg.n:
                    continue
                w = agg.worst
                if what == "current":
                    txt = f"EVTargetCurrent {w.ti:.1f} A > EVSEMaximumCurrentLimit {w.imax:.1f} A"
                    m, lim, unit, ln = w.ti, w.imax, "A", "imax"
                elif what == "voltage":
                    txt = f"EVTargetVoltage {w.tv:.1f} V > EVSEMaximumVoltageLimit {w.vmax:.1f} V"
                    m, lim, unit, ln = w.tv, w.vmax, "V", "vmax"
                else:
                    txt = (f"EVTargetCurrent {w.ti:.1f} A × EVSEPresentVoltage {w.pv:.1f} V = "
                           f"{w.ti * w.pv / 1000:.1f} kW > EVSEMaximumPowerLimit "
                           f"{w.pmax / 1000:.1f} kW")
                    m, lim, unit, ln = w.ti * w.pv, w.pmax, "W", "pmax"
                yield self.finding(
                    session, agg.frames(_src_frames(w, (ln,))),
                    f"The EV asked for more {what} than the EVSE's maximum {_span(agg)}: {txt}; "
                    "the EVSE has to limit",
                    time=agg.first.t, measured=round(m, 3), limit=round(lim, 3), unit=unit,
                    evidence={"expected": f"EV target {what} within the EVSE maximum",
                              "actual": txt, "count": agg.n,
                              "worst": _proof(w, ("EVTargetCurrent", "EVTargetVoltage",
                                                  "EVSEPresentVoltage", *_schema_names(ln)))})


def _short_stretches(rows, classify, tol_a, tol_pct, skip=frozenset()):
    """Stretches of consecutive rows where the EVSE delivers less than allowed (gap >
    tolerance) and ``classify(row)`` holds: [(rows of the stretch, [gap …])]. Rows with
    implausible present values and rows whose id is in ``skip`` (the no-current stretches,
    CHL007's) end a stretch."""
    out, cur, gaps = [], [], []
    for row in rows:
        a = allowed_current(row)
        ok = False
        if a is not None and not row.ev_error and not row.failed and not row.bad \
                and id(row) not in skip and classify(row):
            gap = a - row.pi
            tol = max(row.reg_tol or 0.0, tol_a, tol_pct / 100.0 * a)
            if gap > tol:
                ok = True
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
                                          "EVSEPowerLimitAchieved", "EVSEVoltageLimitAchieved"))})


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
                          "EVSECurrentRegulationTolerance_A": w.reg_tol, "worst": _proof(w)})

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
                          "worst": _proof(w)})


class ImplausibleJump(LoopRule):
    """Implausible jumps of the EVSE's values between consecutive cycles.

    What it checks: in the charge-loop responses, (a) single-cycle spikes — a value that
    differs from both its neighbours in the same direction by more than ``spike_v`` /
    ``spike_a``, or by a factor of ``spike_factor`` for the EVSE maxima (a wrong multiplier
    / exponent looks like that); (b) steps of EVSEPresentVoltage larger than ``step_v``
    within one cycle while at least ``flowing_a`` flow before and after (with the battery
    connected the voltage cannot jump). One finding per quantity and loop. Responses whose
    present values cannot be measurements at all (MSG020) are left out.
    Why it matters: physically impossible values point at measurement, encoding (PhysicalValue
    multiplier, RationalNumber exponent) or data corruption problems; the EV may react to
    them (ChargeX PFMEA UC2 241-243 causes: data corruption, encoding issues).
    Fix (SECC): check the measurement and the encoding of the values.
    Source: PROTOCOL_FACTS §4 "Physical values", §4D (⚠ analyst-derived; thresholds are
    parameters); ChargeX PFMEA UC2 240-243.
    """

    code = "LIM008"
    title = "Implausible jump between loop cycles"
    severity = "info"
    category = "limits"
    kinds = ("limit-violation",)
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 241",)
    params = {"spike_v": 50.0, "spike_a": 50.0, "spike_factor": 5.0, "step_v": 100.0,
              "flowing_a": 5.0}
    requirement = "physically continuous EVSE values (§4D ⚠ derived)"

    def check(self, session, ctx):
        for run, rows in loop_table(session, ctx):
            rs = [r for r in rows if r.cyc.res is not None and not r.failed and not r.bad]
            own = [r.own for r in rs]      # the EVSE maxima as sent (not inherited)
            fac = self.p["spike_factor"]
            series = {       # name: (values, EV targets, unit, spike threshold, spike factor)
                "EVSEPresentVoltage": ([r.pv for r in rs], [r.tv for r in rs], "V",
                                       self.p["spike_v"], None),
                "EVSEPresentCurrent": ([r.pi for r in rs], [r.ti for r in rs], "A",
                                       self.p["spike_a"], None),
                "EVSEMaximumCurrentLimit": ([o[0] for o in own], None, "A", None, fac),
                "EVSEMaximumVoltageLimit": ([o[1] for o in own], None, "V", None, fac),
                "EVSEMaximumPowerLimit": ([o[2] for o in own], None, "W", None, fac),
            }
            for name, (xs, targets, unit, th, factor) in series.items():
                if all(x is None for x in xs):
                    continue
                agg = _Exceed()
                for i in range(1, len(xs) - 1):
                    a, b, c = xs[i - 1], xs[i], xs[i + 1]
                    if a is None or b is None or c is None:
                        continue
                    if any(rs[j].ev_error for j in (i - 1, i, i + 1)):
                        continue                          # the EV is stopping
                    if th is not None:
                        d1, d2 = b - a, b - c
                        if abs(d1) > th and abs(d2) > th and (d1 > 0) == (d2 > 0) and \
                                _steady(targets, i, th / 2):
                            agg.add(rs[i], min(abs(d1), abs(d2)))
                    elif a > 0 and b > 0 and c > 0:
                        r1, r2 = b / a, b / c
                        if ((r1 >= factor and r2 >= factor) or (r1 <= 1 / factor and r2 <= 1 / factor)):
                            agg.add(rs[i], max(r1, 1 / r1))
                steps = _Exceed()
                if name == "EVSEPresentVoltage":
                    for i in range(1, len(rs)):
                        p, r = rs[i - 1], rs[i]
                        if None in (p.pv, r.pv, p.pi, r.pi) or p.ev_error or r.ev_error:
                            continue
                        nxt = rs[i + 1].pv if i + 1 < len(rs) else None
                        back = nxt is not None and abs(nxt - p.pv) <= self.p["step_v"] / 2
                        if (abs(r.pv - p.pv) > self.p["step_v"] and p.pi >= self.p["flowing_a"]
                                and r.pi >= self.p["flowing_a"] and not back):
                            steps.add(r, abs(r.pv - p.pv))      # a level change, not a spike
                for kind, g in (("spike", agg), ("step", steps)):
                    if not g.n:
                        continue
                    w = g.worst
                    i = rs.index(w)
                    neigh = [xs[j] for j in (i - 1, i, i + 1) if 0 <= j < len(xs)]
                    frames = _frames(rs[i - 1] if i > 0 else None, w,
                                     rs[i + 1] if i + 1 < len(rs) else None) + g.frames()
                    vals = ", ".join(f"{x:.6g}" for x in neigh if x is not None)
                    yield self.finding(
                        session, frames,
                        f"{name} {'spiked' if kind == 'spike' else 'jumped'} between consecutive "
                        f"{w.cyc.res.name} {_span(g)}: {vals} {unit} around frame "
                        f"{w.cyc.res.frame}" + (" while current flowed" if kind == "step" else ""),
                        time=g.first.t, measured=round(g.worst_excess, 3),
                        unit=unit if th is not None or kind == "step" else None,
                        evidence={"expected": "a physically continuous value", "actual": vals,
                                  "count": g.n, "kind": kind,
                                  "worst": excerpt(w.cyc.res, (name, "EVSEPresentCurrent"))})


def _steady(targets, i, tol) -> bool:
    """Whether the EV's target stayed within ``tol`` over cycles i-1 … i+1 (unknown targets
    count as steady): a present value that follows a moving target is not a spike."""
    if targets is None:
        return True
    ts = [targets[j] for j in (i - 1, i, i + 1) if targets[j] is not None]
    return not ts or max(ts) - min(ts) <= tol


class SocBackwards(LoopRule):
    """The EV's state of charge goes backwards during charging.

    What it checks: the SoC (DC_EVStatus EVRESSSOC, -20 DisplayParameters PresentSOC) of
    consecutive charge-loop requests; a drop of more than ``tolerance_pct`` points while the
    EVSE is not discharging (present current ≥ 0) is counted. One finding per loop.
    Why it matters: while charging the SoC cannot fall; a falling SoC points at a wrong value
    (encoding, a stale or default value) that the EVSE, the backend and the driver's display
    rely on.
    Fix (EVCC): report the battery's SoC.
    Source: ISO 15118-2 / DIN 70121 DC_EVStatusType EVRESSSOC (percentValueType 0-100);
    ISO 15118-20 DisplayParametersType; PROTOCOL_FACTS §4 "Physical values" (⚠
    analyst-derived check; tolerance is a parameter).
    """

    code = "LIM009"
    title = "SoC going backwards"
    severity = "warning"
    category = "limits"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"tolerance_pct": 1.0}
    requirement = "DC_EVStatus EVRESSSOC non-decreasing while charging (⚠ derived)"

    def check(self, session, ctx):
        for run, rows in loop_table(session, ctx):
            agg = _Exceed()
            prev = None
            pair = None                     # (before, after) of the worst drop
            for row in rows:
                if row.soc is None:
                    continue
                if prev is not None and prev.soc - row.soc > self.p["tolerance_pct"] and not (
                        (row.pi is not None and row.pi < 0) or (prev.pi is not None and prev.pi < 0)):
                    drop = prev.soc - row.soc
                    if agg.worst_excess is None or drop > agg.worst_excess:
                        pair = (prev, row)
                    agg.add(row, drop)
                prev = row
            if not agg.n:
                continue
            p, w = pair
            yield self.finding(
                session, _frames(p) + agg.frames(),
                f"The EV's SoC went backwards {_span(agg)}: from {p.soc:.0f} % (frame "
                f"{p.cyc.req.frame}) to {w.soc:.0f} % (frame {w.cyc.req.frame}) while charging",
                time=agg.first.t, measured=w.soc, limit=p.soc, unit="%",
                evidence={"expected": "SoC non-decreasing while charging",
                          "actual": f"{p.soc:.0f} % → {w.soc:.0f} %", "count": agg.n,
                          "before": excerpt(p.cyc.req, ("EVRESSSOC", "PresentSOC")),
                          "after": excerpt(w.cyc.req, ("EVRESSSOC", "PresentSOC"))})


class EvTargetAboveEvMaximum(LoopRule):
    """The EV's target exceeds the EV's own maximum.

    What it checks: in the charge-loop requests, EVTargetVoltage against the EV's
    EVMaximumVoltageLimit and EVTargetCurrent against EVMaximumCurrentLimit (from the same
    request, else ChargeParameterDiscoveryReq; -20: EVMaximumVoltage / EVMaximumChargeCurrent)
    plus ``voltage_tolerance_v`` / ``current_tolerance_a``. One finding per quantity and loop.
    Why it matters: the EV contradicts itself; an EVSE that follows the target exceeds the
    EV's limits.
    Fix (EVCC): keep EVTargetVoltage / EVTargetCurrent within the announced maxima.
    Source: PROTOCOL_FACTS §4D "Derived sanity": EVTargetVoltage ≤ EVMaximumVoltageLimit,
    EVTargetCurrent ≤ EVMaximumCurrentLimit (⚠ analyst-derived).
    """

    code = "LIM010"
    title = "EV target above the EV's own maximum"
    severity = "warning"
    category = "limits"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"voltage_tolerance_v": 1.0, "current_tolerance_a": 1.0}
    requirement = ("EVTargetVoltage ≤ EVMaximumVoltageLimit, EVTargetCurrent ≤ "
                   "EVMaximumCurrentLimit (§4D ⚠ derived)")

    def check(self, session, ctx):
        for run, rows in loop_table(session, ctx):
            vagg, iagg = _Exceed(), _Exceed()
            for row in rows:
                tv, ti = row.tv, row.ti
                tol_a, tol_v = self.p["current_tolerance_a"], self.p["voltage_tolerance_v"]
                if tv is not None and row.ev_vmax is not None and tv - row.ev_vmax > tol_v:
                    vagg.add(row, tv - row.ev_vmax)
                if ti is not None and row.ev_imax is not None and ti - row.ev_imax > tol_a:
                    iagg.add(row, ti - row.ev_imax)
            for agg, what, unit, val, lim, tname, lname in (
                    (vagg, "voltage", "V", "tv", "ev_vmax", "EVTargetVoltage",
                     "EVMaximumVoltageLimit"),
                    (iagg, "current", "A", "ti", "ev_imax", "EVTargetCurrent",
                     "EVMaximumCurrentLimit")):
                if not agg.n:
                    continue
                w = agg.worst
                v, limit = getattr(w, val), getattr(w, lim)
                yield self.finding(
                    session, agg.frames(),
                    f"The EV's {tname} exceeded its own {lname} {_span(agg)}: {v:.1f} {unit} "
                    f"against {limit:.1f} {unit}",
                    time=agg.first.t, measured=round(v, 3), limit=round(limit, 3), unit=unit,
                    evidence={"expected": f"{tname} ≤ {lname}",
                              "actual": f"{v:.2f} > {limit:.2f} {unit}",
                              "count": agg.n, "worst": _proof(w, (tname, *_schema_names(lim)))})


_FLAGS = (("EVSECurrentLimitAchieved", "current"), ("EVSEVoltageLimitAchieved", "voltage"),
          ("EVSEPowerLimitAchieved", "power"))


class LimitFlagsInconsistent(LoopRule):
    """EVSE…LimitAchieved flags contradict the values.

    What it checks: in CurrentDemandRes (DIN / ISO-2) and -20 scheduled-mode DC_ChargeLoopRes,
    each flag against the numbers: a flag set to true while both the EV's target and the
    present value are below the EVSE maximum by more than the tolerance, or false while both
    the target and the present value are at or above the maximum (unambiguous under either
    reading of the flag: "the target reaches the limit" — EVerest — or "the output is at the
    limit"). Power uses EVTargetCurrent × EVSEPresentVoltage and EVSEPresentVoltage ×
    EVSEPresentCurrent. -20 dynamic mode has no EV target and is left out, and so are
    responses with implausible present values (MSG020). One finding per flag and loop.
    Why it matters: the EV reads the flags to know whether the EVSE is limiting; a wrong flag
    misleads its charge control. Informative: the flag semantics are an implementation
    reading (⚠).
    Fix (SECC): set EVSECurrentLimitAchieved / …VoltageLimitAchieved / …PowerLimitAchieved
    when the output is limited by the corresponding maximum.
    Source: PROTOCOL_FACTS §4D "CurrentDemandRes flags" (E-ISO ⚠ implementation semantics).
    """

    code = "LIM011"
    title = "Limit-achieved flags inconsistent with the values"
    severity = "info"
    category = "limits"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"voltage_tolerance_v": 10.0, "current_tolerance_a": 5.0, "power_tolerance_pct": 5.0}
    requirement = "CurrentDemandRes EVSE…LimitAchieved semantics (E-ISO ⚠)"

    def check(self, session, ctx):
        for run, rows in loop_table(session, ctx):
            aggs = {flag: _Exceed() for flag, _ in _FLAGS}
            for row in rows:
                if row.cyc.res is None or row.failed or row.ev_error or row.bad:
                    continue
                b = row.cyc.rb
                for flag, what in _FLAGS:
                    v = b.get(flag)
                    if not isinstance(v, bool):
                        continue
                    if what == "current":
                        tgt, now, mx, tol = row.ti, row.pi, row.imax, self.p["current_tolerance_a"]
                    elif what == "voltage":
                        tgt, now, mx, tol = row.tv, row.pv, row.vmax, self.p["voltage_tolerance_v"]
                    else:
                        tgt = row.ti * row.pv if row.ti is not None and row.pv is not None else None
                        now, mx = row.p, row.pmax
                        tol = (mx or 0) * self.p["power_tolerance_pct"] / 100.0
                    if tgt is None or now is None or mx is None:
                        continue
                    if v and tgt < mx - tol and now < mx - tol:
                        aggs[flag].add(row, mx - max(tgt, now))
                    elif not v and tgt >= mx and now >= mx - tol:
                        aggs[flag].add(row, tgt - mx)
            for flag, what in _FLAGS:
                agg = aggs[flag]
                if not agg.n:
                    continue
                w = agg.worst
                v = w.cyc.rb.get(flag)
                yield self.finding(
                    session, agg.frames(),
                    f"{flag}={str(v).lower()} contradicts the values {_span(agg)}: the EV's target "
                    f"and the present {what} are {'below' if v else 'at'} the EVSE maximum",
                    time=agg.first.t, measured=v, limit=not v,
                    evidence={"expected": f"{flag}={str(not v).lower()}",
                              "actual": f"{flag}={str(v).lower()}",
                              "count": agg.n,
                              "worst": _proof(w, ("EVTargetCurrent", "EVTargetVoltage",
                                                  "EVSEPresentCurrent", "EVSEPresentVoltage", flag,
                                                  "EVSEMaximumCurrentLimit",
                                                  "EVSEMaximumVoltageLimit",
                                                  "EVSEMaximumPowerLimit"))})


def _decoded(session, names):
    for e in session.events:
        if e.layer == "v2gtp" and e.message is not None and e.name in names:
            yield e


# DIN / ISO-2 loop messages carry no minima: only CPD and the -20 loop messages are read
_CPD_NAMES = frozenset({"ChargeParameterDiscoveryReq", "ChargeParameterDiscoveryRes",
                        "DC_ChargeParameterDiscoveryReq", "DC_ChargeParameterDiscoveryRes",
                        "AC_ChargeParameterDiscoveryReq", "AC_ChargeParameterDiscoveryRes",
                        "DC_ChargeLoopReq", "DC_ChargeLoopRes", "AC_ChargeLoopReq",
                        "AC_ChargeLoopRes"})


class MinimumAboveMaximum(LoopRule):
    """A minimum limit is above the corresponding maximum.

    What it checks: in ChargeParameterDiscovery and -20 charge-loop messages, each minimum
    against its maximum: EVSEMinimumCurrentLimit / …VoltageLimit against the maxima (DIN,
    ISO-2), -20 EVSEMinimumChargeCurrent / …Voltage / …ChargePower and the EV's
    EVMinimumChargeCurrent / …Voltage / …ChargePower, ISO-2 AC EVMinCurrent / EVMaxCurrent.
    One finding per pair and session (first occurrence, count). FAILED responses are left out
    (their values are placeholders, [V2G2-736]).
    Why it matters: an empty operating range: no current or voltage satisfies both; the peer
    cannot plan, and a value is probably encoded wrongly.
    Fix: the side that sent it (EVSE… → SECC, EV… → EVCC): send min ≤ max.
    Source: PROTOCOL_FACTS §4D "EVSE limits in CPD Res: min ≤ max" (⚠ analyst-derived);
    ISO 15118-2 DC_EVSEChargeParameterType, ISO 15118-20 DC_CPDResEnergyTransferModeType.
    """

    code = "LIM012"
    title = "Minimum limit above the maximum"
    severity = "warning"
    category = "limits"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "unknown"
    requirement = "ChargeParameterDiscovery limits: minimum ≤ maximum (§4D ⚠ derived)"

    def check(self, session, ctx):
        found: dict = {}
        for e in _decoded(session, _CPD_NAMES):
            f = facts(e)
            if e.name.endswith("Res") and is_failed(f.get("ResponseCode")):
                continue
            for lo, hi, what in MIN_MAX:
                a, b = f.get(lo), f.get(hi)
                if a is not None and b is not None and a > b:
                    got = found.setdefault((lo, hi), [what, e, a, b, 0, e])
                    got[4] += 1
                    got[5] = e
        for (lo, hi), (what, e, a, b, n, last) in found.items():
            side = "SECC" if lo.startswith("EVSE") else "EVCC"
            ln, hn, unit = _name(lo), _name(hi), _unit(lo)
            yield self.finding(
                session, [e.frame, last.frame],
                f"{e.name} (frame {e.frame}) gives {ln} {a:.6g} {unit} above {hn} {b:.6g} {unit}"
                + (f" ({n} messages)" if n > 1 else ""), time=e.time, culprit=side,
                measured=a, limit=b, unit=unit,
                evidence={"expected": f"{ln} ≤ {hn}", "actual": f"{a:.6g} > {b:.6g} {unit}",
                          "count": n, "message": excerpt(e, (ln, hn))})


_EV_MAXIMA = ("EVMaximumCurrentLimit_A", "EVMaximumVoltageLimit_V", "EVMaximumPowerLimit_W",
              "EVMaximumChargeCurrent_A", "EVMaximumVoltage_V", "EVMaximumChargePower_W",
              "EVMaxCurrent_A", "EVMaxVoltage_V")
_CPD_REQ = frozenset({"ChargeParameterDiscoveryReq", "DC_ChargeParameterDiscoveryReq",
                      "AC_ChargeParameterDiscoveryReq"})


def _cpd_exchanges(session) -> list[tuple]:
    """[(ChargeParameterDiscoveryReq, its response or None)] of the session, in one pass: the
    response is the next decoded message on the request's connection when it is of the
    matching type."""
    out, pending = [], {}
    for e in session.events:
        if e.layer != "v2gtp" or e.message is None:
            continue
        req = pending.pop(e.conn, None)
        if req is not None:
            out.append((req, e if e.name == req.name[:-3] + "Res" else None))
        if e.name in _CPD_REQ:
            pending[e.conn] = e
    out.extend((req, None) for req in pending.values())
    return out


class NegativeEvMaximum(LoopRule):
    """The EV announced a negative maximum in ChargeParameterDiscoveryReq.

    What it checks: EVMaximumCurrentLimit, EVMaximumVoltageLimit, EVMaximumPowerLimit (DIN,
    ISO-2 DC), EVMaxCurrent / EVMaxVoltage (ISO-2 AC), EVMaximumChargeCurrent / …Voltage /
    …ChargePower (-20) must not be negative (discharge limits are not checked). The SECC
    should answer FAILED_WrongChargeParameter; the evidence says what it answered.
    Why it matters: a negative maximum forbids any charging (or is a sign / encoding error);
    the SECC must refuse the parameters.
    Fix (EVCC): send non-negative maxima; (SECC): answer FAILED_WrongChargeParameter.
    Source: ISO 15118-2 [V2G2-477] (E-ISO), PROTOCOL_FACTS §4D "Hard facts" and §4B content
    rules.
    """

    code = "LIM013"
    title = "Negative EV maximum in ChargeParameterDiscoveryReq"
    severity = "error"
    category = "limits"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "EVCC"
    requirement = "ISO 15118-2 [V2G2-477] FAILED_WrongChargeParameter"
    failure_modes = ("UC2 107",)

    def check(self, session, ctx):
        hits = []
        for e, res in _cpd_exchanges(session):
            f = facts(e)
            neg = {k: f[k] for k in _EV_MAXIMA if f.get(k) is not None and f[k] < 0}
            if neg:
                hits.append((e, res, neg))
        if not hits:
            return
        e, res, neg = hits[0]
        last = hits[-1][0]
        rc = facts(res).get("ResponseCode") if res is not None else None
        answer = (f"; the SECC answered {rc} (frame {res.frame})" if res is not None
                  else "; no response")
        more = f" ({len(hits)} requests, the last frame {last.frame})" if len(hits) > 1 else ""
        k, v = next(iter(neg.items()))
        listed = ", ".join(f"{_name(n)} = {x:.6g} {_unit(n)}" for n, x in neg.items())
        yield self.finding(
            session, [e.frame, last.frame] + ([res.frame] if res is not None else []),
            f"{e.name} (frame {e.frame}) announced negative maxima: {listed}{more}{answer}",
            time=e.time, measured=v, limit=0, unit=_unit(k),
            evidence={"expected": "EV maxima ≥ 0, else FAILED_WrongChargeParameter",
                      "actual": dict(neg), "ResponseCode": rc, "count": len(hits),
                      "request": excerpt(e, tuple(_name(n) for n in neg))})


def _name(key: str) -> str:
    """``EVMaximumCurrentLimit_A`` → ``EVMaximumCurrentLimit``."""
    return key.rsplit("_", 1)[0]


def _unit(key: str) -> str:
    """``EVMaximumCurrentLimit_A`` → ``A``."""
    return key.rsplit("_", 1)[1]


class EvMaximumBelowEvseMinimum(LoopRule):
    """The EV's maximum is below the EVSE's minimum (no common operating range).

    What it checks: after ChargeParameterDiscovery, EVMaximumCurrentLimit against
    EVSEMinimumCurrentLimit and EVMaximumVoltageLimit against EVSEMinimumVoltageLimit (-20:
    EVMaximumChargeCurrent / EVSEMinimumChargeCurrent, EVMaximumVoltage / EVSEMinimumVoltage);
    a finding when the EV's maximum is below the EVSE's minimum and the SECC still answered
    OK. A refusal (FAILED_WrongChargeParameter or any FAILED code) is the correct reaction
    and not reported here (the session's outcome shows it).
    Why it matters: EV and EVSE cannot agree on any current / voltage — an incompatible
    charger; a SECC that accepts goes on into a session that cannot deliver energy.
    EVerest answers FAILED_WrongChargeParameter.
    Fix: none on the wire — the EV and the charger do not fit; (SECC) refuse with
    FAILED_WrongChargeParameter instead of starting.
    Source: PROTOCOL_FACTS §4D "Hard facts" (E-ISO ⚠ implementation); ChargeX PFMEA UC2
    107-111 (incompatible charger).
    """

    code = "LIM014"
    title = "EV maximum below the EVSE minimum"
    severity = "warning"
    category = "limits"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "ev-stop", "ev-abort")
    culprit = "unknown"
    failure_modes = ("UC2 107",)
    requirement = "EV maximum ≥ EVSE minimum, else FAILED_WrongChargeParameter (E-ISO ⚠)"

    _PAIRS = ((("EVMaximumCurrentLimit_A", "EVMaximumChargeCurrent_A"),
               ("EVSEMinimumCurrentLimit_A", "EVSEMinimumChargeCurrent_A"), "current", "A"),
              (("EVMaximumVoltageLimit_V", "EVMaximumVoltage_V"),
               ("EVSEMinimumVoltageLimit_V", "EVSEMinimumVoltage_V"), "voltage", "V"))

    def check(self, session, ctx):
        found: dict = {}
        for e, res in _cpd_exchanges(session):
            if res is None:
                continue
            q, r = facts(e), facts(res)
            if is_failed(r.get("ResponseCode")):
                continue
            for evk, evsek, what, unit in self._PAIRS:
                a, b = pick(q, evk), pick(r, evsek)
                if a is not None and b is not None and a < b:
                    found.setdefault(what, []).append((e, res, a, b, evk, evsek, unit))
        for what, hits in found.items():
            e, res, a, b, evk, evsek, unit = hits[0]
            last = hits[-1][1]
            more = f" ({len(hits)} exchanges, the last frame {last.frame})" if len(hits) > 1 else ""
            yield self.finding(
                session, [e.frame, res.frame, last.frame],
                f"The EV's maximum {what} {a:.1f} {unit} ({e.name} frame {e.frame}) is below "
                f"the EVSE's minimum {b:.1f} {unit} ({res.name} frame {res.frame}), yet the "
                f"SECC answered {facts(res).get('ResponseCode')}{more}", time=res.time,
                measured=a, limit=b, unit=unit,
                evidence={"expected": f"EV maximum {what} ≥ EVSE minimum {what}, else "
                                      "FAILED_WrongChargeParameter",
                          "actual": f"{a:.1f} < {b:.1f} {unit}", "count": len(hits),
                          "request": excerpt(e, tuple(_name(k) for k in evk)),
                          "response": excerpt(res, tuple(_name(k) for k in evsek))})
