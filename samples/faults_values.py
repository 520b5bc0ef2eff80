"""Faults of the values in the messages — registered with :func:`ccs_analyzer.samples.faults.fault`.

What real chargers and EVs get wrong in the values they report rather than in the protocol:
a charger that enters PreCharge with its cable-check voltage still on the output, reports a
counter as its present current or delivers no current at all while the loop runs, and an EV
that sends placeholder status values or strings XML cannot hold. Each models a behaviour of
the EVerest test-event captures (../shared/corpus/testevents) and names the requirement it
breaks. Physical faults change the charger's output stage (a :class:`DcConverter` subclass
swapped in by a hook, so that the battery, the meter and every later value follow); content
faults edit the trees (faults_edit.py helpers).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from .faults import FaultError, fault
from .physical import DcConverter

from . import faults_edit as ed


def _swap_converter(flow, cls, **extra) -> None:
    """Replace the session's DC output stage with an instance of ``cls`` (a DcConverter
    subclass) carrying the same settings and state plus ``extra``."""
    old = flow.s.dc
    if isinstance(old, cls):
        return
    flow.s.dc = cls(**{f.name: getattr(old, f.name) for f in fields(DcConverter)}, **extra)


# ====================================================================== PreCharge
@dataclass
class _ResidualVoltage(DcConverter):
    """A converter whose output still holds ``residual_v`` when PreCharge begins (the
    isolation test's voltage) and is discharged at ``fall_v_per_s`` down to the target."""

    residual_v: float = 500.0
    fall_v_per_s: float = 150.0
    begun: bool = False

    def precharge_step(self, target_v: float, dt_s: float, stall_v: float | None = None) -> float:
        if not self.begun:
            self.begun = True
            self.voltage_v = self.residual_v
            return self.voltage_v
        if self.voltage_v > target_v:
            self.voltage_v = max(target_v, self.voltage_v - self.fall_v_per_s * dt_s)
            return self.voltage_v
        return super().precharge_step(target_v, dt_s, stall_v)


@fault("precharge_at_cablecheck_voltage", level="script", stage="before", category="limits",
       voltage_v=500.0, fall_v_per_s=150.0)
def precharge_at_cablecheck_voltage(ctx, voltage_v, fall_v_per_s):
    """The charger enters PreCharge with the isolation-test voltage of the cable check
    (``voltage_v``, 500 V as EVerest's and pyPLC's chargers apply; PROTOCOL_FACTS §4D) still
    on its output, above the EV's EVMaximumVoltageLimit, and discharges it at only
    ``fall_v_per_s`` down to the EV's target (the Opel Mokka-e, BMW iX, Audi Q4, Seres,
    Tesla captures of the EVerest test events): the first PreChargeRes report a voltage the
    EV does not allow (derived rule EVSEPresentVoltage ≤ EVMaximumVoltageLimit, §4D). The EV
    waits until the voltage matches and goes on. DC only."""
    ed.need(ctx, mode="DC", name="precharge_at_cablecheck_voltage")
    state = {"noted": False}

    def hook(flow, x):
        if x.phase == "cablecheck" or x.request.name.endswith("CableCheckReq"):
            _swap_converter(flow, _ResidualVoltage, residual_v=float(voltage_v),
                            fall_v_per_s=float(fall_v_per_s))
        elif x.request.name.endswith("PreChargeReq") and not state["noted"] and x.response is not None:
            state["noted"] = True
            ed.note(x.response, f"precharge_at_cablecheck_voltage: {voltage_v:g} V left from the "
                                "cable check")
    ed.hook(ctx, hook)


# ====================================================================== present values
@fault("evse_present_current_counter", level="script", stage="before", category="message-content",
       at_cycle=1, saturate_a=1500.0)
def evse_present_current_counter(ctx, at_cycle, saturate_a):
    """From charge-loop cycle ``at_cycle`` the charger reports as EVSEPresentCurrent the sum of
    its measured currents since then — an accumulator its firmware never divides or resets —
    saturating at ``saturate_a``: the value climbs like a counter to far above every maximum
    either side announced while the real output follows the EV's request (the Audi Q4 and
    BYD Atto 3 captures of the EVerest test events: ~1,500 A against 30 A). The EV tolerates
    it. CurrentDemandRes / -20 DC_ChargeLoopRes EVSEPresentCurrent is the present output
    (PROTOCOL_FACTS §4D). DC only."""
    ed.need(ctx, mode="DC", name="evse_present_current_counter")
    acc = {"a": 0.0}

    def hook(flow, x):
        if not (ed.is_loop(x) and ed.cycle(flow) >= int(at_cycle)) or x.response is None:
            return
        r = ed.body(x.response)
        if "EVSEPresentCurrent" not in r:
            return
        acc["a"] = min(float(saturate_a), acc["a"] + max(0.0, flow.s.present_current_a))
        r["EVSEPresentCurrent"] = ed.like(r["EVSEPresentCurrent"], acc["a"])
        if ed.cycle(flow) == int(at_cycle):
            ed.note(x.response, "evse_present_current_counter: EVSEPresentCurrent accumulates")
    ed.hook(ctx, hook)


# ====================================================================== no current
@dataclass
class _DeadOutput(DcConverter):
    """A converter whose power modules do not deliver while ``dead()`` says so: no current
    flows (the output sits at the battery's voltage), whatever is requested."""

    dead: object = None

    def current_step(self, target_a: float, voltage_v: float, dt_s: float) -> float:
        if self.dead is not None and self.dead():
            self.current_a = 0.0
            self.voltage_v = voltage_v
            return 0.0
        return super().current_step(target_a, voltage_v, dt_s)


@fault("evse_late_output", level="script", stage="before", category="charging-loop",
       at_cycle=1, duration_s=15.0)
def evse_late_output(ctx, at_cycle, duration_s):
    """From charge-loop cycle ``at_cycle`` for ``duration_s`` the charger's power modules do
    not deliver: EVSEPresentCurrent stays at 0 A (the output at the battery's voltage) while
    the EV asks for current, the EVSE keeps reporting EVSE_Ready and announcing its
    maxima — no energy flows although both sides agreed to charge (the BMW iX, Opel
    Ampera-e / Mokka-e, Porsche Taycan, Seres captures of the EVerest test events; derived
    rule EVSEPresentCurrent ≈ min(EVTargetCurrent, EVSE limits), PROTOCOL_FACTS §4D). Then
    the modules come on and the current follows the EV's request. DC only."""
    ed.need(ctx, mode="DC", name="evse_late_output")
    window = {"t0": None, "flow": None}

    def dead() -> bool:
        flow = window["flow"]
        if flow is None or ed.cycle(flow) < int(at_cycle):
            return False
        if window["t0"] is None:
            window["t0"] = flow.t
        return flow.t - window["t0"] < float(duration_s)

    def hook(flow, x):
        if x.request.name.endswith("PowerDeliveryReq") and window["flow"] is None:
            window["flow"] = flow
            _swap_converter(flow, _DeadOutput, dead=dead)
        elif ed.is_loop(x) and ed.cycle(flow) == int(at_cycle) and x.response is not None:
            ed.note(x.response, f"evse_late_output: no output for {duration_s:g} s")
    ed.hook(ctx, hook)


# ====================================================================== EV content
@fault("ev_string_not_xml", level="script", stage="after", category="message-content",
       element="ServiceScope", length=64, code_point=0)
def ev_string_not_xml(ctx, element, length, code_point):
    """The EV's ServiceDiscoveryReq carries ``element`` (ServiceScope) made of ``length``
    characters U+``code_point`` — an uninitialised 64-octet buffer sent as a string (the BMW
    iX captures of the EVerest test events: 64 NUL). Schema-valid EXI (an EXI string is any
    sequence of code points) but not XML text: NUL is outside the XML 1.0 Char production
    (W3C XML 1.0 §2.2; EXI 1.0 encodes XML infosets). The SECC ignores it. DIN 70121 /
    ISO 15118-2."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), name="ev_string_not_xml")
    if not 0 <= int(code_point) <= 0x10FFFF:
        raise FaultError(f"ev_string_not_xml: code_point {code_point} is not a Unicode code point")
    ci, xi, x, m = ctx.find("ServiceDiscoveryReq", 1)
    b = ed.body(m)
    rest = {k: v for k, v in b.items() if k != element}
    b.clear()
    b[element] = chr(int(code_point)) * int(length)
    b.update(rest)
    ed.encodes(m)
    ed.note(m, f"ev_string_not_xml: {element} = {length} × U+{int(code_point):04X}")


@fault("ev_placeholder_status", level="script", stage="before", category="message-content",
       soc_pct=0, voltage_v=0.0, precharge_requests=1)
def ev_placeholder_status(ctx, soc_pct, voltage_v, precharge_requests):
    """The EV sends placeholders until its battery management's values arrive: DC_EVStatus
    EVRESSSOC ``soc_pct`` in ChargeParameterDiscoveryReq, CableCheckReq and its first
    ``precharge_requests`` PreChargeReq, whose EVTargetVoltage is ``voltage_v`` (0 V, below
    the EVSE's minimum voltage) and EVTargetCurrent 0 A; from then on the real SoC and the
    battery voltage (the Seres captures of the EVerest test events). EVRESSSOC is the
    battery's present SoC and EVTargetVoltage of PreChargeReq its voltage (DIN 70121 /
    ISO 15118-2 DC_EVStatusType, PreChargeReqType). The SECC goes on. DIN / ISO-2 DC."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="ev_placeholder_status")
    seen = {"precharge": 0}

    def hook(flow, x):
        name = x.request.name
        early = name.endswith(("ChargeParameterDiscoveryReq", "CableCheckReq"))
        if name.endswith("PreChargeReq"):
            seen["precharge"] += 1
            early = seen["precharge"] <= int(precharge_requests)
        if not early:
            return
        q = ed.body(x.request)
        found = ed.find_key(q, "EVRESSSOC")
        if found is not None:
            found[0][found[1]] = int(soc_pct)
        if name.endswith("PreChargeReq"):
            q["EVTargetVoltage"] = ed.like(q["EVTargetVoltage"], float(voltage_v))
            q["EVTargetCurrent"] = ed.like(q["EVTargetCurrent"], 0.0)
            if seen["precharge"] == 1:
                ed.note(x.request, f"ev_placeholder_status: EVTargetVoltage {voltage_v:g} V, "
                                   f"EVRESSSOC {soc_pct} %")
        elif name.endswith("ChargeParameterDiscoveryReq"):
            ed.note(x.request, f"ev_placeholder_status: EVRESSSOC {soc_pct} % until PreCharge")
    ed.hook(ctx, hook)
