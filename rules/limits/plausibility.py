"""Limit rules on implausible loop values: LIM008, LIM009, LIM011."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.loop_table import loop_table

from ..base import LoopRule, judged
from ..helpers import excerpt
from .common import _Exceed, _frames, _proof, _span


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

    Example:

        #167 CurrentDemandReq → #169 CurrentDemandRes EVSEMaximumVoltageLimit=500 V
        #171 CurrentDemandReq → #173 CurrentDemandRes EVSEMaximumVoltageLimit=5000 V
        #175 CurrentDemandReq → #177 CurrentDemandRes EVSEMaximumVoltageLimit=500 V
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
            err = [r.ev_error for r in rs]
            for name, (xs, targets, unit, th, factor) in series.items():
                if all(x is None for x in xs):
                    continue
                agg = _Exceed()
                for i in range(1, len(xs) - 1):
                    a, b, c = xs[i - 1], xs[i], xs[i + 1]
                    if a is None or b is None or c is None:
                        continue
                    # a cycle next to one where the EV is stopping (EVErrorCode) is not judged
                    if th is not None:
                        d1, d2 = b - a, b - c
                        if abs(d1) > th and abs(d2) > th and (d1 > 0) == (d2 > 0) and \
                                not (err[i - 1] or err[i] or err[i + 1]) and \
                                _steady(targets, i, th / 2):
                            agg.add(rs[i], min(abs(d1), abs(d2)))
                    elif a > 0 and b > 0 and c > 0:
                        r1, r2 = b / a, b / c
                        if ((r1 >= factor and r2 >= factor) or (r1 <= 1 / factor and r2 <= 1 / factor)) \
                                and not (err[i - 1] or err[i] or err[i + 1]):
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
                                  "worst": excerpt(w.cyc.res, (name, "EVSEPresentCurrent"))},
                        values=[judged(w.cyc.res, name)])


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

    Example:

        #179 CurrentDemandReq SoC=50 % → #181 CurrentDemandRes
        #183 CurrentDemandReq SoC=0 % → #185 CurrentDemandRes
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
                          "after": excerpt(w.cyc.req, ("EVRESSSOC", "PresentSOC"))},
                values=[judged(p.cyc.req, ("EVRESSSOC", "PresentSOC"), p.soc, unit="%"),
                        judged(w.cyc.req, ("EVRESSSOC", "PresentSOC"), w.soc, limit=p.soc, unit="%")])


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

    Example:

        #195 CurrentDemandReq → #197 CurrentDemandRes EVSECurrentLimitAchieved=False
        #215 CurrentDemandReq → #217 CurrentDemandRes EVSECurrentLimitAchieved=False
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
                                                  "EVSEMaximumPowerLimit"))},
                    values=[judged(r.cyc.res, flag, r.cyc.rb.get(flag), expected=not r.cyc.rb.get(flag))
                            for r in (agg.first, w, agg.last)])
