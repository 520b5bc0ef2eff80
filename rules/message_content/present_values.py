"""Message content rule on EVSE present values that cannot be measurements: MSG020."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.loop_table import (IMPLAUSIBLE_DEFAULTS, ceiling,
                                                    implausible_marks, loop_table)

from ..base import Rule, judged
from ..helpers import culprit_of, excerpt


# present values that cannot be measurements
class EvsePresentValueImplausible(Rule):
    """An EVSE present value that cannot be a measurement.

    What it checks: EVSEPresentCurrent and EVSEPresentVoltage in the charge-loop responses
    (CurrentDemandRes, -20 DC_ChargeLoopRes) against every maximum either side announced:
    a value above ``factor`` × the largest of the EVSE's maximum in force
    (EVSEMaximumCurrentLimit / …VoltageLimit, -20 EVSEMaximumChargeCurrent / …Voltage), the
    EV's maximum (EVMaximumCurrentLimit / …VoltageLimit) and the EV's target, and above it by
    more than ``min_excess_a`` / ``min_excess_v``, is beyond physical possibility — neither
    side can carry it. The responses right before and after such values that are still above
    the EV's target (by more than ``current_tolerance_a`` / ``voltage_tolerance_v``) and
    climb monotonically toward them (an accumulating counter) or decay from them belong to
    the same defect. One finding per quantity and loop. The
    limit rules (LIM001, LIM002, LIM006, LIM007, LIM008, LIM011, LIM004 / LIM005) judge only
    plausible measurements and skip these values, so a counter reported as a current is one
    finding, not four; they skip the values marked with the default parameters.
    Why it matters: EVSEPresentCurrent / EVSEPresentVoltage are the EVSE's measurements the
    EV compares with its own (current-differential and voltage monitoring); a value no
    charger and no battery can carry is an accumulating counter, a wrong scaling or a wrong
    field, and leaves the EV (and a test system) without the real output.
    Fix (SECC): report the measured output current / voltage in A / V with the right
    multiplier, not a counter or a sum of modules.
    Source: ISO 15118-2 / DIN 70121 CurrentDemandResType EVSEPresentCurrent /
    EVSEPresentVoltage (present output), DC_EVSEChargeParameterType and
    DC_EVChargeParameterType maxima; PROTOCOL_FACTS §4D "Derived sanity" (⚠ analyst-derived:
    the factor and floors are parameters); ChargeX PFMEA UC2 241-242 (data corruption,
    encoding issues in the SECC).

    Example:

        #167 CurrentDemandReq EVMaximumCurrentLimit=200 A EVTargetCurrent=120 A
          → #169 CurrentDemandRes EVSEPresentCurrent=154.8 A EVSEMaximumCurrentLimit=150 A
        #211 CurrentDemandReq EVMaximumCurrentLimit=200 A EVTargetCurrent=200 A
          → #213 CurrentDemandRes EVSEPresentCurrent=1500 A EVSEMaximumCurrentLimit=150 A
        #247 CurrentDemandReq EVMaximumCurrentLimit=200 A EVTargetCurrent=200 A
          → #249 CurrentDemandRes EVSEPresentCurrent=1500 A EVSEMaximumCurrentLimit=150 A
    """

    code = "MSG020"
    title = "EVSE present value implausible"
    severity = "error"
    category = "message-content"
    kinds = ("implausible-value",)
    explains = ("limit-violation",)
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 241", "UC2 242")
    params = dict(IMPLAUSIBLE_DEFAULTS)
    requirement = ("EVSEPresentCurrent / EVSEPresentVoltage are measurements within what "
                   "either side can carry (§4D ⚠ derived)")

    _WHAT = (("current", "pi", "A", "EVSEPresentCurrent",
              (("imax", "EVSEMaximumCurrentLimit"), ("ev_imax", "EVMaximumCurrentLimit"),
               ("ti", "EVTargetCurrent"))),
             ("voltage", "pv", "V", "EVSEPresentVoltage",
              (("vmax", "EVSEMaximumVoltageLimit"), ("ev_vmax", "EVMaximumVoltageLimit"),
               ("tv", "EVTargetVoltage"))))

    def check(self, session, ctx):
        p = self.p
        for run, rows in loop_table(session, ctx):
            marks = ([r.bad for r in rows] if p == IMPLAUSIBLE_DEFAULTS
                     else implausible_marks(rows, p))
            for what, attr, unit, name, refs in self._WHAT:
                hit = [r for r, m in zip(rows, marks) if what in m]
                if not hit:
                    continue
                first, last = hit[0], hit[-1]
                worst = max(hit, key=lambda r: getattr(r, attr))
                v = getattr(worst, attr)
                anchor = next((r for r in hit if getattr(r, attr) > p["factor"] * (ceiling(
                    r, tuple(k for k, _ in refs)) or float("inf"))), worst)
                known = []
                for ref in (worst, anchor):       # the maxima in force (the anchor has some)
                    known = [(label, getattr(ref, k)) for k, label in refs
                             if getattr(ref, k) is not None and getattr(ref, k) > 0]
                    if known:
                        break
                if not known:
                    continue
                top = max(x for _, x in known)
                listed = ", ".join(f"{label} {x:.1f} {unit}" for label, x in known)
                climb = ""
                n_climb = hit.index(anchor)
                if n_climb:
                    climb = (f"; it climbed from {getattr(first, attr):.1f} {unit} (frame "
                             f"{first.cyc.res.frame}) in {n_climb + 1} responses like an "
                             f"accumulating counter")
                span = (f"frame {first.cyc.res.frame}" if len(hit) == 1 else
                        f"frames {first.cyc.res.frame}-{last.cyc.res.frame}")
                yield self.finding(
                    session, [first.cyc.res.frame, worst.cyc.res.frame, last.cyc.res.frame],
                    f"{name} cannot be a measurement in {len(hit)} {first.cyc.res.name} ({span}): "
                    f"up to {v:.1f} {unit} (frame {worst.cyc.res.frame}), more than "
                    f"{p['factor']:g}× the largest maximum either side announced ({listed})"
                    f"{climb}", time=first.t, measured=round(v, 3),
                    limit=round(p["factor"] * top, 3), unit=unit, culprit=culprit_of(first.cyc.res),
                    evidence={"expected": f"{name} ≤ {p['factor']:g} × max({', '.join(l for l, _ in known)})",
                              "actual": f"{v:.1f} {unit}", "count": len(hit), "messages": len(hit),
                              "announced": {label: x for label, x in known},
                              "first": excerpt(first.cyc.res, (name,)),
                              "worst": {"request": excerpt(worst.cyc.req, (refs[2][1],)),
                                        "response": excerpt(worst.cyc.res, (name, refs[0][1]))},
                              "last": excerpt(last.cyc.res, (name,))},
                    values=[judged(r.cyc.res, name, getattr(r, attr), limit=round(p["factor"] * top, 3),
                                   unit=unit) for r in (first, worst, last)])
