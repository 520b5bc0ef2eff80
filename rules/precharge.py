"""PreCharge: reaching the EV's target voltage in time, safely.

Each PreCharge loop (PreChargeReq/Res, ISO 15118-20 DC_PreChargeReq/Res, repeated on one
connection) is judged on its own — a paused and resumed session has two. How a loop ends
matters: the EV goes on with PowerDeliveryReq (Start) once the EVSE output matches its
battery voltage, or gives up (SessionStopReq, a TCP close), or the EVSE stops answering.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.views.connections import conn_one_sided, lost_bytes
from ccs_analyzer.analyzer.views.loop_table import (EV_MAXIMUM_VOLTAGE_TOLERANCE_V,
                                                    placeholder_targets, precharge_rows,
                                                    voltage_above_ev_maximum)
from ccs_analyzer.analyzer.views.loops import capture_cut, end_text, is_start, precharge_runs

from .base import LoopRule, judged
from .helpers import excerpt, facts, lower

#: EVSE status codes after which the EVSE will not bring the voltage up.
_FAULT_STATUS = frozenset({"EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction",
                           "EVSE_UtilityInterruptEvent"})


def _target(run) -> float | None:
    """The EV's last EVTargetVoltage of a PreCharge loop."""
    t = None
    for c in run.cycles:
        v = c.q.get("EVTargetVoltage_V")
        if v is not None:
            t = v
    return t


def _progression(run) -> list[tuple]:
    """[(response event, EVSEPresentVoltage V)] of a PreCharge loop."""
    out = []
    for c in run.cycles:
        v = c.r.get("EVSEPresentVoltage_V")
        if v is not None:
            out.append((c.res, v))
    return out


def _status_changes(run) -> list[tuple]:
    """[(response event, EVSEStatusCode)] each time the status changes within the loop."""
    out, last = [], None
    for c in run.cycles:
        st = c.r.get("EVSEStatusCode")
        if st is not None and st != last:
            out.append((c.res, st))
            last = st
    return out


def _thin(points: list, n: int = 24) -> list:
    """At most ``n`` points of a progression, first and last kept."""
    if len(points) <= n:
        return points
    step = len(points) / (n - 1)
    return [points[int(i * step)] for i in range(n - 1)] + [points[-1]]


def _moved_on(run) -> bool:
    """The EV ended the loop with a PowerDeliveryReq that starts energy transfer."""
    return run.after is not None and run.after.name == "PowerDeliveryReq" and is_start(run.after)


class PreChargeTimeout(LoopRule):
    """PreCharge did not bring the EVSE output to the EV's target voltage in time.

    What it checks: each PreCharge loop: from its first request, EVSEPresentVoltage in the
    responses must come within ``tolerance_v`` of EVTargetVoltage before ``limit_s``; a loop
    that runs longer than ``limit_s``, or after which the session stops instead of going on
    with PowerDeliveryReq, is a finding (an EV that accepts a lower voltage and goes on
    within the limit is not: see PRE004). The synopsis gives the voltage progression, the
    EVSE status changes (EVSE_NotReady, EVSE_EmergencyShutdown …) and how the loop ended.
    Culprit: the SECC when its voltage did not come up or it reported a status other than
    EVSE_Ready; the EVCC when the voltage was there and the EVSE ready but the EV did not go
    on, or gave up before ``limit_s`` while the EVSE was still ramping (info: the EV may end
    a session; the finding describes how it ended, "no cause visible"). Not on a connection
    the capture shows one side of (CAP003): requests or responses are missing.
    Why it matters: the EV aborts the session (V2G_EVCC_PreCharge_Timeout); closing the
    contactors onto a voltage difference damages them.
    Fix (SECC): ramp the converter faster, report the measured output voltage and
    EVSE_Ready once it is there; check the load (a parallel capacity or a lamp keeps the
    voltage down). (EVCC): go on with PowerDeliveryReq once the voltage matches.
    Source: ISO 15118-2 Table 109/111 V2G_EVCC_PreCharge_Timeout = 7 s ([V2G2-704..707]);
    DIN 70121 7 s (⚠ some editions 10 s); ISO 15118-20 ⚠ 10 s (Josev) vs 60 s — the default
    follows ISO 15118-2 / DIN SPEC 70121:2014; 20 V tolerance per IEC 61851-23 practice
    (PROTOCOL_FACTS §4D, ⚠ not a quoted 15118 value).

    Example:

        #91 PreChargeReq EVTargetVoltage=370 V
          → #93 PreChargeRes EVSEStatusCode=EVSE_Ready EVSEPresentVoltage=79.9 V
        #199 PreChargeReq EVTargetVoltage=370 V
          → #201 PreChargeRes EVSEStatusCode=EVSE_Ready EVSEPresentVoltage=222.3 V
        #231 PreChargeReq EVTargetVoltage=370 V
          → #233 PreChargeRes EVSEStatusCode=EVSE_Ready EVSEPresentVoltage=222.3 V
        #235 SessionStopReq → #237 SessionStopRes
    """

    code = "PRE001"
    title = "PreCharge did not reach the target voltage in time"
    severity = "error"
    category = "precharge"
    kinds = ("precharge-failed", "loop-timeout")
    explains = ("ev-timeout", "ev-abort", "ev-stop", "evse-stop", "evse-abort", "out-of-sequence",
                "failed-response", "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-704..707] V2G_EVCC_PreCharge_Timeout"
    failure_modes = ("UC2 156",)
    params = {"limit_s": 7.0, "tolerance_v": 20.0}

    def check(self, session, ctx):
        for run in precharge_runs(session, ctx):
            if conn_one_sided(ctx, run.conn):
                continue            # requests or responses not captured: no progress to judge
            f = self._judge(session, ctx, run)
            if f is not None:
                if f.culprit == "EVCC":
                    # the EV stopped early or did not go on: the finding describes the EV's
                    # end of the session, not a PreCharge that failed (rules/causes.py)
                    f.kinds, f.explains = ("ev-stop", "ev-abort", "ev-timeout"), ()
                yield f

    def _judge(self, session, ctx, run):
        first = run.first
        prog = _progression(run)
        if not prog:
            return None
        last_res = prog[-1][0]
        target = _target(run)
        limit, tol = self.p["limit_s"], self.p["tolerance_v"]
        reached = None
        if target is not None:
            reached = next(((e, v) for e, v in prog if abs(v - target) <= tol), None)
        duration = last_res.time - first.time
        moved_on = _moved_on(run)
        changes = _status_changes(run)
        not_ready = [(e, st) for e, st in changes if st != "EVSE_Ready"]
        end = end_text(run)
        end_frames = [x.frame for x in (run.after, run.end) if x is not None]
        points = [(round(e.time - first.time, 3), v) for e, v in prog]
        status_txt = ""
        if not_ready:
            parts = [f"{st} from frame {e.frame}" for e, st in not_ready[:3]]
            status_txt = f"; the EVSE reported {', '.join(parts)}"
        evidence = {"EVTargetVoltage_V": target, "tolerance_V": tol,
                    "progression_s_V": _thin(points),
                    "EVSEStatusCode": [{"frame": e.frame, "status": st} for e, st in changes],
                    "first_request": excerpt(first, ("EVTargetVoltage", "EVTargetCurrent")),
                    "last_response": excerpt(last_res, ("EVSEPresentVoltage", "EVSEStatusCode"))}
        sev = lower(self.severity) if lost_bytes(ctx, run.conn) else self.severity
        tgt = f"{target:.1f} V" if target is not None else "the target"
        if reached is not None:
            e, v = reached
            took = e.time - first.time
            if took > limit:
                culprit = "SECC"
                return self.finding(
                    session, [first.frame, e.frame] + end_frames,
                    f"PreCharge took {took:.1f} s to reach {v:.1f} V (target {tgt}); limit "
                    f"{limit} s{status_txt}, {end}", time=e.time, measured=round(took, 3),
                    limit=limit, unit="s", culprit=culprit, severity=sev,
                    evidence={"expected": f"EVSEPresentVoltage within {tol} V of {tgt} in {limit} s",
                              "actual": f"reached after {took:.1f} s", **evidence},
                    values=[judged(first, "EVTargetVoltage", target, unit="V"),
                            judged(e, "EVSEPresentVoltage", v, expected=target, unit="V")]
                    + [judged(x, "EVSEStatusCode", st, expected="EVSE_Ready") for x, st in not_ready[:3]])
            if not moved_on and duration > limit:
                last_status = changes[-1][1] if changes else None
                ready = last_status in (None, "EVSE_Ready")
                culprit = "EVCC" if ready else "SECC"
                why = ("the EVSE reported EVSE_Ready" if ready
                       else f"the EVSE still reported {last_status} at the end")
                return self.finding(
                    session, [first.frame, e.frame, last_res.frame] + end_frames,
                    f"PreCharge reached {v:.1f} V (target {tgt}) after {took:.1f} s (last "
                    f"{prog[-1][1]:.1f} V) but ran {duration:.1f} s without the EV going on "
                    f"({len(run.cycles)} PreChargeReq), "
                    f"{end}{status_txt}", time=first.time, measured=round(duration, 3),
                    limit=limit, unit="s", culprit=culprit, severity=sev,
                    evidence={"expected": "PowerDeliveryReq once the voltage is reached",
                              "actual": f"{duration:.1f} s of PreCharge, {end}; {why}", **evidence},
                    values=[judged(first, "EVTargetVoltage", target, unit="V"),
                            judged(e, "EVSEPresentVoltage", v, expected=target, unit="V"),
                            judged(last_res, "EVSEPresentVoltage", prog[-1][1], unit="V")]
                    + [judged(x, "EVSEStatusCode", st, expected="EVSE_Ready") for x, st in not_ready[:3]])
            return None
        if moved_on and duration <= limit:
            return None                        # the EV accepted the voltage (see PRE004)
        if capture_cut(ctx, run, limit):
            return None                        # the capture ended during PreCharge
        vmax = max(v for _, v in prog)
        gave_up = (run.after is not None and run.after.direction == "EV->EVSE") or (
            run.after is None and run.end is not None and run.end.direction == "EV->EVSE")
        last_status = changes[-1][1] if changes else None
        culprit = "SECC"
        stop = run.after if run.after is not None else run.end
        stopped_after = (stop.time - first.time) if stop is not None else duration
        if (gave_up and stopped_after < 0.9 * limit and last_status in (None, "EVSE_Ready")
                and not moved_on):
            culprit = "EVCC"      # the EV stopped well before its timeout, the EVSE still ramping
            sev = "info"          # the EV may end a session; it broke no requirement doing so
        fault = next(((e, st) for e, st in changes if st in _FAULT_STATUS), None)
        frames = [first.frame, max(prog, key=lambda p: p[1])[0].frame, last_res.frame]
        if fault is not None:
            frames.append(fault[0].frame)
        if moved_on:
            end = f"then {run.after.name} (frame {run.after.frame}) after the limit"
        return self.finding(
            session, frames + end_frames,
            f"PreCharge never reached {tgt}: at most {vmax:.1f} V, last {prog[-1][1]:.1f} V after "
            f"{duration:.1f} s ({len(run.cycles)} PreChargeReq){status_txt}, {end}",
            time=first.time, measured=vmax, limit=target, unit="V", culprit=culprit,
            severity=sev,
            evidence={"expected": f"EVSEPresentVoltage within {tol} V of {tgt} in {limit} s",
                      "actual": f"max {vmax} V in {duration:.1f} s", **evidence},
            values=[judged(first, "EVTargetVoltage", target, unit="V"),
                    judged(max(prog, key=lambda p: p[1])[0], "EVSEPresentVoltage", vmax,
                           expected=target, unit="V"),
                    judged(last_res, "EVSEPresentVoltage", prog[-1][1], expected=target, unit="V")]
            + [judged(x, "EVSEStatusCode", st, expected="EVSE_Ready")
               for x, st in not_ready[:3] + ([fault] if fault is not None else [])])


class PreChargeTargetChanged(LoopRule):
    """The EV changed EVTargetVoltage during PreCharge.

    What it checks: within one PreCharge loop, EVTargetVoltage of the requests differs from
    the first request's by more than ``tolerance_v``. Leading placeholder targets (below the
    EVSE's minimum voltage, e.g. 0 V, before the real one: MSG022) are not a change of target
    and are left out.
    Why it matters: informative — the EVSE has to follow a moving target; a precharge that
    times out after a target change is explained by it. The target should be the battery
    voltage, which does not move by much within seconds (⚠ no requirement forbids a change).
    Fix (EVCC): send the measured battery voltage as EVTargetVoltage from the first
    PreChargeReq on.
    Source: ISO 15118-2 / DIN 70121 PreChargeReqType EVTargetVoltage; ISO 15118-20
    DC_PreChargeReqType; PROTOCOL_FACTS §4D (PreCharge end criterion).

    Example:

        #91 PreChargeReq EVTargetVoltage=430 V → #93 PreChargeRes
        #103 PreChargeReq EVTargetVoltage=370 V → #105 PreChargeRes
    """

    code = "PRE002"
    title = "EVTargetVoltage changed during PreCharge"
    severity = "info"
    category = "precharge"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"tolerance_v": 10.0}
    requirement = "ISO 15118-2 / DIN 70121 PreChargeReq EVTargetVoltage"

    def check(self, session, ctx):
        for run in precharge_runs(session, ctx):
            reqs = [(c.req, c.q.get("EVTargetVoltage_V")) for c in run.cycles if c.req is not None]
            reqs = [(e, v) for e, v in reqs if v is not None]
            held = placeholder_targets(run)
            if held is not None:
                skip = {id(e) for e, _ in held[0]}
                reqs = [(e, v) for e, v in reqs if id(e) not in skip]
            if len(reqs) < 2:
                continue
            e0, v0 = reqs[0]
            moved = [(e, v) for e, v in reqs if abs(v - v0) > self.p["tolerance_v"]]
            if not moved:
                continue
            worst = max(moved, key=lambda x: abs(x[1] - v0))
            values = sorted({round(v, 1) for _, v in reqs})
            yield self.finding(
                session, [e0.frame, moved[0][0].frame, worst[0].frame],
                f"EVTargetVoltage changed during PreCharge from {v0:.1f} V ({e0.name} frame "
                f"{e0.frame}) to {moved[0][1]:.1f} V (frame {moved[0][0].frame}); values: "
                f"{', '.join(f'{v:g}' for v in values[:8])} V",
                time=moved[0][0].time, measured=worst[1], limit=v0, unit="V",
                evidence={"expected": f"EVTargetVoltage constant within {self.p['tolerance_v']} V",
                          "actual": values[:16], "count": len(moved),
                          "first": excerpt(e0, ("EVTargetVoltage",)),
                          "changed": excerpt(moved[0][0], ("EVTargetVoltage",))},
                values=[judged(e0, "EVTargetVoltage", v0, unit="V"),
                        judged(moved[0][0], "EVTargetVoltage", moved[0][1], expected=v0, unit="V"),
                        judged(worst[0], "EVTargetVoltage", worst[1], expected=v0, unit="V")])


class PreChargeInrushCurrent(LoopRule):
    """The PreCharge current is above the inrush limit.

    What it checks: EVTargetCurrent in PreChargeReq (DIN, ISO-2) against ``limit_a``, and
    EVSEPresentCurrent in PreChargeRes where a message carries it (not in the DIN / ISO-2 /
    -20 schemas; some implementations add it). One finding per loop and side: the EV for
    the request (culprit EVCC), the EVSE for the measured current (culprit SECC).
    Why it matters: PreCharge charges the EV's input capacitance only; a higher current is an
    inrush into a not yet matched DC link (IEC 61851-23 CC.5.2: at most 2 A).
    Fix (EVCC): request at most 2 A in PreChargeReq; (SECC): limit the PreCharge current to
    2 A whatever the EV asks.
    Source: IEC 61851-23 CC.5.2 (max. 2 A during pre-charge) as implemented by J-SECC-DIN
    and ISS-RISE20 (PROTOCOL_FACTS §4D "Hard facts" ✅).

    Example:

        #91 PreChargeReq EVTargetCurrent=10 A → #93 PreChargeRes
        #147 PreChargeReq EVTargetCurrent=10 A → #149 PreChargeRes
    """

    code = "PRE003"
    title = "PreCharge current above the inrush limit"
    severity = "warning"
    category = "precharge"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "IEC 61851-23 CC.5.2 pre-charge current ≤ 2 A"
    params = {"limit_a": 2.0}

    def check(self, session, ctx):
        lim = self.p["limit_a"]
        for run in precharge_runs(session, ctx):
            for side, key, attr, culprit in (("EV", "EVTargetCurrent_A", "req", "EVCC"),
                                             ("EVSE", "EVSEPresentCurrent_A", "res", "SECC")):
                hits = []
                for c in run.cycles:
                    e = getattr(c, attr)
                    v = (c.q if attr == "req" else c.r).get(key)
                    if e is not None and v is not None and v > lim:
                        hits.append((e, v))
                if not hits:
                    continue
                worst = max(hits, key=lambda h: h[1])
                name = key.rsplit("_", 1)[0]
                who = "the EV asked for" if side == "EV" else "the EVSE reported"
                yield self.finding(
                    session, [hits[0][0].frame, worst[0].frame, hits[-1][0].frame],
                    f"During PreCharge {who} {name} {worst[1]:.2f} A ({worst[0].name} frame "
                    f"{worst[0].frame}), above the {lim:g} A inrush limit, in {len(hits)} of "
                    f"{len(run.cycles)} cycles", time=hits[0][0].time, measured=worst[1],
                    limit=lim, unit="A", culprit=culprit,
                    evidence={"expected": f"{name} ≤ {lim:g} A", "actual": f"{worst[1]:.2f} A",
                              "count": len(hits), "worst": excerpt(worst[0], (name,))},
                    values=[judged(x, name, v, limit=lim, unit="A")
                            for x, v in (hits[0], worst, hits[-1])])


class PreChargeVoltageDifferenceAtEnd(LoopRule):
    """The EV ended PreCharge with a voltage difference above the tolerance.

    What it checks: when a PreCharge loop is followed by PowerDeliveryReq (Start), the
    difference between the last EVSEPresentVoltage and the EV's EVTargetVoltage must be at
    most ``tolerance_v``.
    Why it matters: with PowerDelivery (Start) the EV closes its contactors; a voltage
    difference between the EVSE output and the battery drives an inrush current through
    them (wear, welding). The EV decides when PreCharge is done, so the EV is named; an EVSE
    that ramps too slowly is the other half of the story (PRE001 when it exceeds the time
    limit). ⚠ the 20 V tolerance is practice, not a quoted normative value; test systems
    without a battery (dSPACE DS5366) end PreCharge on time rather than voltage.
    Fix (EVCC): go on with PowerDeliveryReq only when |EVSEPresentVoltage − battery
    voltage| ≤ 20 V; (SECC): ramp to the target within the PreCharge time.
    Source: PROTOCOL_FACTS §4D PreCharge end criterion (pyPLC 10 V / IEC 61851-23 practice
    20 V, EVerest -20 EV 20 V, EVerest DIN EV ±10 % capped at 20 V — ⚠ no normative number
    found); ISO 15118-2 [V2G2-587], DIN 70121 [V2G-DC-458].

    Example:

        #91 PreChargeReq EVTargetVoltage=370 V → #93 PreChargeRes EVSEPresentVoltage=39.9 V
        #127 PreChargeReq EVTargetVoltage=370 V → #129 PreChargeRes EVSEPresentVoltage=338.1 V
        #131 PowerDeliveryReq → #133 PowerDeliveryRes
    """

    code = "PRE004"
    title = "Voltage difference at the end of PreCharge"
    severity = "warning"
    category = "precharge"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"tolerance_v": 20.0}
    requirement = ("PreCharge end criterion |EVSEPresentVoltage − EVTargetVoltage| ≤ 20 V "
                   "(⚠ practice)")

    def check(self, session, ctx):
        for run in precharge_runs(session, ctx):
            if not _moved_on(run):
                continue
            prog = _progression(run)
            target = _target(run)
            if not prog or target is None:
                continue
            last, v = prog[-1]
            dv = v - target
            if abs(dv) <= self.p["tolerance_v"]:
                continue
            nxt = run.after
            yield self.finding(
                session, [run.first.frame, last.frame, nxt.frame],
                f"The EV ended PreCharge with {nxt.name} (frame {nxt.frame}) at {v:.1f} V "
                f"against its target {target:.1f} V (ΔV {dv:+.1f} V, tolerance "
                f"{self.p['tolerance_v']:g} V) after {len(run.cycles)} PreChargeReq in "
                f"{run.duration_s:.1f} s", time=nxt.time, measured=round(abs(dv), 3),
                limit=self.p["tolerance_v"], unit="V",
                evidence={"expected": "|EVSEPresentVoltage − EVTargetVoltage| ≤ "
                                      f"{self.p['tolerance_v']:g} V "
                                      "before PowerDeliveryReq (Start)",
                          "actual": f"{v:.1f} V vs {target:.1f} V",
                          "progression_V": [round(x, 1) for _, x in _thin(prog, 12)],
                          "last_response": excerpt(last, ("EVSEPresentVoltage",)),
                          "power_delivery": excerpt(nxt, ("ReadyToChargeState", "ChargeProgress",
                                                          "EVProcessing"))},
                values=[judged(last, "EVSEPresentVoltage", v, expected=target, unit="V")])


class PreChargeVoltageOvershoot(LoopRule):
    """The EVSE output overshot the EV's target voltage during PreCharge.

    What it checks: EVSEPresentVoltage in PreChargeRes above EVTargetVoltage +
    ``overshoot_v`` while it stays within the EV's maximum voltage. One finding per loop.
    A PreChargeRes whose voltage is also above the EV's EVMaximumVoltageLimit (+ LIM002's
    tolerance; typically an EVSE that enters PreCharge with the ~500 V isolation-test voltage
    of the cable check still on the output) is LIM002's and not counted here: each response
    is judged by one rule — above the EV's maximum (a safety limit, LIM002, error) or above
    its target only (this rule). The responses of such a loop that are back within the EV's
    maximum but still above its target remain here: the output did not come down to the
    battery voltage, a separate matter from having been above the maximum.
    Why it matters: an output above the battery voltage drives current into the battery when
    the contactors close.
    Fix (SECC): ramp to the target without overshoot; discharge the output after the cable
    check (isolation test) before PreCharge.
    Source: PROTOCOL_FACTS §4D (PreCharge: EVSEPresentVoltage must approach EVTargetVoltage;
    ⚠ the overshoot tolerance is an analyst choice, the 20 V of the PreCharge end criterion).

    Example:

        #111 PreChargeReq EVTargetVoltage=388.6 V → #113 PreChargeRes EVSEPresentVoltage=412.6 V
        #119 PreChargeReq EVTargetVoltage=388.6 V → #121 PreChargeRes EVSEPresentVoltage=433.5 V
        #131 PreChargeReq EVTargetVoltage=388.6 V → #133 PreChargeRes EVSEPresentVoltage=411.4 V
    """

    code = "PRE005"
    title = "PreCharge voltage overshoot"
    severity = "warning"
    category = "precharge"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"overshoot_v": 20.0}
    requirement = "PreCharge: EVSEPresentVoltage approaches EVTargetVoltage (⚠ overshoot tolerance)"

    def check(self, session, ctx):
        tol = EV_MAXIMUM_VOLTAGE_TOLERANCE_V          # LIM002's default
        for run in precharge_runs(session, ctx):
            hits = []
            lim002 = 0                     # responses above the EV's maximum: LIM002's
            for row in precharge_rows(run):
                c, v, t = row.cyc, row.pv, row.tv
                if v is None:
                    continue
                if voltage_above_ev_maximum(row, tol):
                    lim002 += 1
                    continue
                if t is not None and t > 0 and v - t > self.p["overshoot_v"]:
                    hits.append((c, v, t))
            if not hits:
                continue
            c, v, t = max(hits, key=lambda h: h[1] - h[2])
            yield self.finding(
                session, hits[0][0].frames + c.frames + hits[-1][0].frames,
                f"During PreCharge the EVSE output {'stayed at up to' if lim002 else 'reached'} "
                f"{v:.1f} V, {v - t:.1f} V above the EV's target {t:.1f} V ({c.res.name} frame "
                f"{c.res.frame}; {len(hits)} of {len(run.cycles)} responses above target + "
                f"{self.p['overshoot_v']:g} V"
                + (f", after {lim002} above the EV's maximum voltage (LIM002)" if lim002 else "")
                + ")",
                time=hits[0][0].time, measured=v, limit=t + self.p["overshoot_v"], unit="V",
                evidence={"expected": "EVSEPresentVoltage ≤ EVTargetVoltage + "
                                      f"{self.p['overshoot_v']:g} V",
                          "actual": f"{v:.1f} V vs {t:.1f} V", "count": len(hits),
                          "above_ev_maximum": lim002,
                          "request": excerpt(c.req, ("EVTargetVoltage",)),
                          "response": excerpt(c.res, ("EVSEPresentVoltage",))},
                values=[judged(c.req, "EVTargetVoltage", t, unit="V"),
                        judged(c.res, "EVSEPresentVoltage", v, limit=t + self.p["overshoot_v"],
                               unit="V")])


class PreChargeEndedNotReady(LoopRule):
    """The EV went on to PowerDelivery although the EVSE reported it was not ready.

    What it checks: a PreCharge loop followed by PowerDeliveryReq (Start) whose last
    PreChargeRes carried an EVSEStatusCode other than EVSE_Ready (EVSE_NotReady,
    EVSE_IsolationMonitoringActive …). The status itself is a response-code matter; this
    rule is about the PreCharge outcome: the EV closed its contactors on an EVSE that had
    not declared readiness. The evidence says whether the SECC then accepted
    PowerDeliveryReq (it should answer FAILED_PowerDeliveryNotApplied while not ready).
    Why it matters: whether the EVSE output is really ready (voltage settled, isolation
    monitoring on) is unknown; the EV relies on a precharge the EVSE did not confirm.
    Fix (EVCC): wait for EVSE_Ready in PreChargeRes before PowerDeliveryReq (Start);
    (SECC): report EVSE_Ready once the output is ready, or refuse PowerDelivery.
    Source: DIN 70121 [V2G-DC-401], ISO 15118-2 [V2G2-480] (PowerDelivery while
    EVSEStatusCode ≠ EVSE_Ready → FAILED_PowerDeliveryNotApplied); PROTOCOL_FACTS §4A, §4B.

    Example:

        #147 PreChargeReq → #149 PreChargeRes EVSEStatusCode=EVSE_NotReady
        #151 PowerDeliveryReq → #153 PowerDeliveryRes EVSEStatusCode=EVSE_Ready
    """

    code = "PRE006"
    title = "PreCharge ended while the EVSE was not ready"
    severity = "warning"
    category = "precharge"
    kinds = ("out-of-sequence",)
    explains = ("failed-response", "evse-refused")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 [V2G-DC-401]; ISO 15118-2 [V2G2-480]"

    def check(self, session, ctx):
        for run in precharge_runs(session, ctx):
            if not _moved_on(run):
                continue
            last = next((c for c in reversed(run.cycles) if c.res is not None), None)
            if last is None:
                continue
            st = last.r.get("EVSEStatusCode")
            if st is None or st == "EVSE_Ready":
                continue
            nxt = run.after
            res = self._answer(session, nxt)
            frames = [last.res.frame, nxt.frame] + ([res.frame] if res is not None else [])
            accepted = ""
            if res is not None:
                f = facts(res)
                accepted = (f"; the SECC answered {f.get('ResponseCode')}"
                            + (f" with {f['EVSEStatusCode']}" if f.get("EVSEStatusCode") else "")
                            + f" (frame {res.frame})")
            n_nr = sum(1 for c in run.cycles if c.r.get("EVSEStatusCode") not in (None, "EVSE_Ready"))
            yield self.finding(
                session, frames,
                f"The EV sent {nxt.name} (frame {nxt.frame}) although the last {last.res.name} "
                f"(frame {last.res.frame}) reported {st} ({n_nr} of {len(run.cycles)} PreChargeRes "
                f"not EVSE_Ready){accepted}", time=nxt.time, measured=st, limit="EVSE_Ready",
                evidence={"expected": "EVSE_Ready in the last PreChargeRes before PowerDeliveryReq",
                          "actual": st, "last_response": excerpt(last.res, ("EVSEStatusCode",
                                                                            "EVSEPresentVoltage")),
                          "power_delivery_response": excerpt(res, ("ResponseCode", "EVSEStatusCode"))
                          if res is not None else None},
                values=[judged(last.res, "EVSEStatusCode", st, expected="EVSE_Ready")])

    @staticmethod
    def _answer(session, req):
        seen = False
        for e in session.events:
            if e is req:
                seen = True
            elif seen and e.layer == "v2gtp" and e.message is not None and e.conn == req.conn:
                return e if e.name == "PowerDeliveryRes" else None
        return None
