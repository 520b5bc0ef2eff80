"""Message content rule on placeholder status values of the EV: MSG022."""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import event_facts
from ccs_analyzer.analyzer.views.index import session_index
from ccs_analyzer.analyzer.views.loop_table import (PLACEHOLDER_MIN_VOLTAGE_V, evse_minimum_voltage,
                                                    placeholder_targets)
from ccs_analyzer.analyzer.views.loops import precharge_runs

from ..base import Rule
from ..helpers import excerpt


# placeholder status values of the EV
class EvStatusPlaceholders(Rule):
    """The EV sent placeholder status values before its real ones.

    What it checks: (a) the EV's state of charge (DC_EVStatus EVRESSSOC in
    ChargeParameterDiscoveryReq, CableCheckReq, PreChargeReq …, -20 DisplayParameters
    PresentSOC): the first SoC reports of the session are ``placeholder_soc_pct`` (0 %) and
    the next one jumps by at least ``soc_jump_pct`` to the real SoC — EVRESSSOC is the
    battery's present SoC, which cannot rise without energy, and none flows before the
    charge loop; (b) the first PreChargeReq of a PreCharge loop asks for an EVTargetVoltage
    below the EVSE's minimum voltage (EVSEMinimumVoltageLimit / -20 EVSEMinimumVoltage of
    ChargeParameterDiscoveryRes; ``min_voltage_v`` when unknown), e.g. 0 V, and a later one
    of the same loop for the real battery voltage. One finding per session with both. A SoC
    that drops to 0 later while charging is LIM009's; a real target that changes during
    PreCharge PRE002's (which leaves the placeholders out).
    Why it matters: the EVSE, the backend and the driver's display take these values as
    real: a SoC of 0 % and a target of 0 V (outside the EVSE's range) misinform the
    charger's parameter checks and its PreCharge, which starts from a wrong target; the EV
    sends its values before its battery management has them.
    Fix (EVCC): send EVRESSSOC and EVTargetVoltage only once known (the BMS values), from
    the first message that carries them.
    Source: DIN 70121 / ISO 15118-2 DC_EVStatusType EVRESSSOC (state of charge of the EV's
    battery, percentValueType), PreChargeReqType EVTargetVoltage (the voltage the EVSE is to
    match: the battery voltage); ISO 15118-20 DisplayParametersType PresentSOC; PROTOCOL_FACTS
    §4D (PreCharge target = battery voltage; ⚠ the thresholds are parameters).

    Example:

        #59 ChargeParameterDiscoveryReq EVRESSSOC=0 SoC=0 %
          → #61 ChargeParameterDiscoveryRes EVSEMinimumVoltageLimit=150 V
        #91 PreChargeReq EVRESSSOC=0 EVTargetVoltage=0 V SoC=0 % → #93 PreChargeRes
        #95 PreChargeReq EVRESSSOC=50 EVTargetVoltage=370 V SoC=50 % → #97 PreChargeRes
    """

    code = "MSG022"
    title = "EV status values are placeholders"
    severity = "warning"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"placeholder_soc_pct": 0.0, "soc_jump_pct": 10.0,
              "min_voltage_v": PLACEHOLDER_MIN_VOLTAGE_V}
    requirement = ("DC_EVStatus EVRESSSOC is the battery's present SoC; PreChargeReq "
                   "EVTargetVoltage is the battery voltage")

    def check(self, session, ctx):
        parts, frames, evidence = [], [], {}
        first_t = measured = unit = None
        soc = self._soc(session, ctx)
        if soc is not None:
            held, (real, value) = soc
            a, b = held[0], held[-1]
            parts.append(f"EVRESSSOC {self.p['placeholder_soc_pct']:g} % in {len(held)} "
                         f"request(s) ({a.name} frame {a.frame}" +
                         (f" … {b.name} frame {b.frame})" if b is not a else ")") +
                         f", then {value:g} % ({real.name} frame {real.frame})")
            frames += [a.frame, b.frame, real.frame]
            first_t, measured, unit = a.time, self.p["placeholder_soc_pct"], "%"
            evidence["soc"] = {"placeholder": excerpt(a, ("EVRESSSOC", "PresentSOC")),
                               "count": len(held),
                               "real": excerpt(real, ("EVRESSSOC", "PresentSOC"))}
        for run in precharge_runs(session, ctx):
            got = placeholder_targets(run, self.p["min_voltage_v"])
            if got is None:
                continue
            held, (real, value) = got
            a = held[0][0]
            lo = evse_minimum_voltage(run)
            below = (f"below EVSEMinimumVoltageLimit {lo:g} V" if lo is not None
                     else f"below {self.p['min_voltage_v']:g} V")
            parts.append(f"EVTargetVoltage {held[0][1]:g} V in {len(held)} PreChargeReq (frame "
                         f"{a.frame}, {below}), then {value:.1f} V (frame {real.frame})")
            frames += [a.frame, held[-1][0].frame, real.frame]
            if first_t is None:
                first_t, measured, unit = a.time, held[0][1], "V"
            evidence.setdefault("precharge", []).append(
                {"placeholder": excerpt(a, ("EVTargetVoltage", "EVTargetCurrent")),
                 "count": len(held), "real": excerpt(real, ("EVTargetVoltage",))})
        if not parts:
            return
        yield self.finding(
            session, frames, "The EV sent placeholders before its real status values: "
            + "; ".join(parts), time=first_t, measured=measured, unit=unit,
            evidence={"expected": "the battery's SoC and voltage from the first message that "
                                  "carries them", "actual": "; ".join(parts), **evidence})

    def _soc(self, session, ctx):
        """([placeholder requests], (first real request, SoC %)) or None."""
        held = []
        for e in session_index(session, ctx).v2g:
            if e.direction != "EV->EVSE" or not e.name.endswith("Req"):
                continue
            v = event_facts(e).get("SoC_pct")
            if v is None:
                continue
            if v <= self.p["placeholder_soc_pct"]:
                held.append(e)
                continue
            if held and v - self.p["placeholder_soc_pct"] >= self.p["soc_jump_pct"]:
                return held, (e, v)
            return None
        return None
