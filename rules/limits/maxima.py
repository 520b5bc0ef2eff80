"""Limit rules on values above a maximum: LIM001-LIM003, LIM010."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.loop_table import (EV_IMAX, EV_MAXIMUM_VOLTAGE_TOLERANCE_V,
                                                    EV_PMAX, EV_VMAX, EVSE_IMAX, EVSE_PMAX,
                                                    EVSE_VMAX, REG_TOL, loop_table,
                                                    precharge_before_loops, run_key,
                                                    voltage_above_ev_maximum)

from ..base import LoopRule, judged
from ..helpers import excerpt
from .common import _Exceed, _proof, _span, _src_frames

_SCHEMA = {  # SI fact key → element name, for the decoded excerpts
    k: k.rsplit("_", 1)[0] for k in (*EVSE_IMAX, *EVSE_VMAX, *EVSE_PMAX, *EV_IMAX, *EV_VMAX,
                                     *EV_PMAX, REG_TOL)}


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

    Example:

        #183 CurrentDemandReq
          → #185 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEPresentCurrent=168 A
        #203 CurrentDemandReq
          → #205 CurrentDemandRes EVSEMaximumCurrentLimit=150 A EVSEPresentCurrent=168 A
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
                              "limit_from": excerpt(src, _schema_names(lim))},
                    values=[x for r in (agg.first, w, agg.last) for x in (
                        [judged(r.cyc.res, vname, getattr(r, val), limit=getattr(r, lim), unit=unit)]
                        if what != "power" else
                        [judged(r.cyc.res, "EVSEPresentVoltage", r.pv, unit="V"),
                         judged(r.cyc.res, "EVSEPresentCurrent", r.pi, unit="A")])]
                    + [judged(src, _schema_names(lim), limit, unit=unit)])


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

    Example:

        #91 PreChargeReq → #93 PreChargeRes EVSEPresentVoltage=499.9 V
        #103 PreChargeReq → #105 PreChargeRes EVSEPresentVoltage=454.6 V
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
                                              *_schema_names(lim)))},
                values=[judged(r.cyc.res, f"EVSEPresent{what.capitalize()}", getattr(r, val),
                               limit=getattr(r, lim), unit=unit) for r in (agg.first, w, agg.last)]
                + [judged(w.src.get(lim), _schema_names(lim), limit, unit=unit)])


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

    Example:

        #113 CurrentDemandReq EVTargetCurrent=180 A
          → #115 CurrentDemandRes EVSEMaximumCurrentLimit=150 A
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
                                                  "EVSEPresentVoltage", *_schema_names(ln)))},
                    values=[x for r in (agg.first, w, agg.last) for x in (
                        [judged(r.cyc.req, f"EVTarget{what.capitalize()}",
                                r.ti if what == "current" else r.tv, limit=getattr(r, ln), unit=unit)]
                        if what != "power" else
                        [judged(r.cyc.req, "EVTargetCurrent", r.ti, unit="A"),
                         judged(r.cyc.res, "EVSEPresentVoltage", r.pv, unit="V")])]
                    + [judged(w.src.get(ln), _schema_names(ln), lim, unit=unit)])


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

    Example:

        #155 CurrentDemandReq EVTargetVoltage=450 V EVMaximumVoltageLimit=430 V
          → #157 CurrentDemandRes
        #183 CurrentDemandReq EVTargetVoltage=450 V EVMaximumVoltageLimit=430 V
          → #185 CurrentDemandRes
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
                              "count": agg.n, "worst": _proof(w, (tname, *_schema_names(lim)))},
                    values=[judged(r.cyc.req, tname, getattr(r, val), limit=getattr(r, lim), unit=unit)
                            for r in (agg.first, w, agg.last)]
                    + [judged(w.src.get(lim), _schema_names(lim), limit, unit=unit)])
