"""PreCharge: reaching the EV's target voltage in time, safely."""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import message_body, physical_fields

from .base import Rule


class PreChargeTimeout(Rule):
    """PreCharge did not bring the EVSE output to the EV's target voltage in time.

    What it checks: from the first PreChargeReq, EVSEPresentVoltage in PreChargeRes must come
    within ``tolerance_v`` of EVTargetVoltage before ``limit_s``; a PreCharge loop that runs
    longer than ``limit_s``, or after which the session stops instead of continuing with
    PowerDeliveryReq, is a finding (an EV that accepts a lower voltage and goes on is not).
    Why it matters: the EV aborts the session (V2G_EVCC_PreCharge_Timeout); closing the
    contactors onto a voltage difference damages them.
    Fix (SECC): ramp the converter faster, report the measured output voltage; check the
    load (a parallel capacity or a lamp load keeps the voltage down).
    Source: ISO 15118-2 Table 109/111 V2G_EVCC_PreCharge_Timeout = 7 s ([V2G2-704..707]);
    DIN 70121 7 s (⚠ some editions 10 s); 20 V tolerance per IEC 61851-23 practice
    (PROTOCOL_FACTS §4D, ⚠ not a quoted 15118 value).
    """

    code = "PRE001"
    title = "PreCharge did not reach the target voltage in time"
    severity = "error"
    category = "precharge"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-704..707] V2G_EVCC_PreCharge_Timeout"
    failure_modes = ("UC2 156",)
    params = {"limit_s": 7.0, "tolerance_v": 20.0}

    def check(self, session, ctx):
        first = last_res = None
        target = None
        progression = []
        reached_at = None
        after = None
        for e in session.events:
            if e.layer != "v2gtp" or e.message is None:
                continue
            if e.name in ("PreChargeReq", "DC_PreChargeReq"):
                _, body = message_body(e.message)
                if first is None:
                    first = e
                target = physical_fields(body).get("EVTargetVoltage", target)
            elif e.name in ("PreChargeRes", "DC_PreChargeRes") and first is not None:
                _, body = message_body(e.message)
                v = physical_fields(body).get("EVSEPresentVoltage")
                last_res = e
                if v is not None:
                    progression.append((round(e.time - first.time, 3), v))
                    if reached_at is None and target is not None and abs(v - target) <= self.p["tolerance_v"]:
                        reached_at = (e, v)
            elif first is not None:
                after = e
                break
        if first is None or last_res is None:
            return
        limit = self.p["limit_s"]
        vmax = max((v for _, v in progression), default=None)
        duration = last_res.time - first.time
        moved_on = after is not None and after.name in ("PowerDeliveryReq",)
        statuses = sorted({str(_status(e)) for e in session.events
                           if e.layer == "v2gtp" and e.message is not None
                           and e.name in ("PreChargeRes", "DC_PreChargeRes") and _status(e)})
        not_ready = [st for st in statuses if st not in ("EVSE_Ready", "None")]
        if reached_at is not None:
            e, v = reached_at
            if e.time - first.time > limit:
                yield self.finding(session, [first.frame, e.frame],
                                   f"PreCharge took {e.time - first.time:.1f} s to reach {v:.1f} V "
                                   f"(target {target:.1f} V); limit {limit} s", time=e.time,
                                   measured=round(e.time - first.time, 3), limit=limit, unit="s",
                                   evidence={"progression_s_V": _thin(progression)})
            elif not moved_on and duration > limit:
                why = (f"; the EVSE reported {', '.join(not_ready)} in PreChargeRes"
                       if not_ready else "")
                end = (f"then {after.name} (frame {after.frame})" if after is not None
                       else "and the session ended")
                yield self.finding(session, [first.frame, e.frame, last_res.frame]
                                   + ([after.frame] if after else []),
                                   f"PreCharge reached {v:.1f} V (target {target:.1f} V) after "
                                   f"{e.time - first.time:.1f} s but ran {duration:.1f} s without the EV "
                                   f"going on, {end}{why}", time=first.time,
                                   measured=round(duration, 3), limit=limit, unit="s",
                                   evidence={"expected": "PowerDeliveryReq once the voltage is reached",
                                             "actual": f"{duration:.1f} s of PreCharge, {end}",
                                             "EVSEStatusCode": statuses,
                                             "progression_s_V": _thin(progression)})
            return
        if duration <= limit and moved_on:
            return
        tgt = f"{target:.1f} V" if target is not None else "the target"
        end = (f"then {after.name} (frame {after.frame})" if after is not None
               else "and the session ended")
        yield self.finding(session, [first.frame, last_res.frame] + ([after.frame] if after else []),
                           f"PreCharge never reached {tgt}: at most {vmax:.1f} V, last "
                           f"{progression[-1][1]:.1f} V after {duration:.1f} s, {end}"
                           if vmax is not None else f"PreCharge never reported a voltage, {end}",
                           time=first.time, measured=vmax, limit=target, unit="V",
                           evidence={"expected": f"EVSEPresentVoltage within {self.p['tolerance_v']} V "
                                                 f"of {tgt} in {limit} s",
                                     "actual": f"max {vmax} V in {duration:.1f} s",
                                     "progression_s_V": _thin(progression)})


def session_last_frame(session, suffix: str) -> int | None:
    """Frame of the last V2GTP event whose name ends with ``suffix``."""
    for e in reversed(session.events):
        if e.layer == "v2gtp" and e.name.endswith(suffix):
            return e.frame
    return None


def _status(e):
    """EVSEStatusCode of a DC response (DC_EVSEStatus), or None."""
    from ccs_analyzer.analyzer.physical import find_first
    return find_first(message_body(e.message)[1], "EVSEStatusCode")


def _thin(points: list, n: int = 24) -> list:
    """At most ``n`` points of a progression, first and last kept."""
    if len(points) <= n:
        return points
    step = len(points) / (n - 1)
    return [points[int(i * step)] for i in range(n - 1)] + [points[-1]]
