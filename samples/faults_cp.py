"""Control-pilot faults — registered with :func:`ccs_analyzer.samples.faults.fault` at level
``pilot``: they turn the knobs of the session's :class:`~.cp_flow.ControlPilot` (what the EV
and the EVSE do on the pilot) and, where the pilot breaks the session, edit its plan. They
need CP evidence (``[control_pilot] evidence``): without it the pilot is not in the capture.

IEC 61851-1:2017 Annex A (states, Table A.4 voltages ±1 V, duty cycle Table A.8), Annex B
(PP, Table B.2); ISO 15118-2 [V2G2-847] / [V2G2-848] (C within 250 ms of PowerDeliveryReq
(Start), B within 250 ms of PowerDeliveryReq (Stop)); ISO 15118-3 Table A.1
(TT_EVSE_SLAC_init 20-50 s); the pause and wake-up as in dsV2Gshark ISO-2_DC_Pause_DS5366.
"""
from __future__ import annotations

from . import control_pilot as cp
from .cp_flow import BASIC
from .faults import FaultError, fault
from .script import Ending

CATEGORY = "control-pilot"


def _need(ctx, name: str, *, mode: str | None = None, basic: bool | None = None) -> None:
    """FaultError unless the session has CP evidence (and the ``mode`` "AC" / "DC" and, with
    ``basic`` True / False, the IEC 61851-1 basic charging or a high-level session asked)."""
    if ctx.cp is None or not ctx.cp.enabled:
        raise FaultError(f"{name}: needs CP evidence ([control_pilot] evidence = \"st\" | \"dspace\" | \"both\")")
    is_basic = ctx.spec.protocol == BASIC
    if basic is True and not is_basic:
        raise FaultError(f"{name}: {BASIC} basic charging sessions only (protocol = \"{BASIC}\")")
    if basic is False and is_basic:
        raise FaultError(f"{name}: sessions with high-level communication only (not {BASIC})")
    if mode and ctx.spec.mode != mode:
        raise FaultError(f"{name}: {mode} sessions only")


def _loop(ctx, name: str, cycle: int):
    """(connection, exchange index, exchange) of charge-loop cycle ``cycle`` (1-based, counted
    over the whole session)."""
    n = 0
    for ci, xi, x in ctx.plan.exchanges():
        if x.phase == "loop" and x.request.name.endswith(("CurrentDemandReq", "ChargingStatusReq",
                                                            "ChargeLoopReq")):
            n += 1
            if n == cycle:
                return ci, xi, x
    raise FaultError(f"{name}: the session has {n} charge-loop cycle(s), not {cycle}")


def _note(ctx, key: str, text: str) -> str:
    ctx.cp.comments[key] = f"simulator fault {text}"
    return ctx.cp.comments[key]


# ====================================================================== the EV on the pilot
@fault("cp_no_state_c", level="pilot", stage="before", category=CATEGORY)
def cp_no_state_c(ctx):
    """The EV never switches to state C: it stays in B through PowerDelivery (Start) and the
    whole charge loop while energy flows (the EVSE does not check the pilot). ISO 15118-2
    [V2G2-847]: the EV is in C / D at the latest 250 ms after PowerDeliveryReq (Start) (DC:
    before CableCheck, [V2G2-917]); IEC 61851-1 Table A.3: no energy in state B."""
    _need(ctx, "cp_no_state_c", basic=False)
    ctx.cp.ev_stays_b = True
    _note(ctx, "stays_b", "cp_no_state_c: the EV stays in state B")


@fault("cp_stays_c_after_stop", level="pilot", stage="before", category=CATEGORY)
def cp_stays_c_after_stop(ctx):
    """The EV keeps state C after PowerDeliveryReq (Stop), through WeldingDetection and
    SessionStop; it opens S2 (B) only when the EVSE has switched its PWM off (C2 → C1 → B1,
    0.5 s after the PWM off). ISO 15118-2 [V2G2-848]: back to B at the latest 250 ms after
    PowerDeliveryReq (Stop)."""
    _need(ctx, "cp_stays_c_after_stop", basic=False)
    ctx.cp.stays_c_after_stop = True
    _note(ctx, "stays_c", "cp_stays_c_after_stop: the EV stays in state C after PowerDelivery (Stop)")


@fault("cp_c_to_b_during_transfer", level="pilot", stage="before", category=CATEGORY,
       at_cycle=8, cycles=10)
def cp_c_to_b_during_transfer(ctx, at_cycle, cycles):
    """After charge-loop cycle ``at_cycle`` the EV goes from C to B without PowerDeliveryReq
    (Stop); the loop goes on ``cycles`` more cycles, then the SECC stops the charge
    (EVSENotification StopCharging, DC EVSE_Shutdown) and the EV ends the session orderly
    (PowerDelivery (Stop), SessionStop). ISO 15118-2 [V2G2-847] / [V2G2-848], ISO 15118-20
    [V2G20-849]: no pilot change between PowerDelivery (Start) and (Stop)."""
    _need(ctx, "cp_c_to_b_during_transfer", basic=False)
    if int(at_cycle) < 1 or int(cycles) < 1:
        raise FaultError("cp_c_to_b_during_transfer: at_cycle and cycles must be ≥ 1")
    text = _note(ctx, "c_to_b", f"cp_c_to_b_during_transfer: the EV goes to state B in charge-loop cycle "
                                f"{at_cycle} without PowerDeliveryReq (Stop)")
    ctx.cp.loop_events.append({"cycle": int(at_cycle), "kind": "B", "comment": text})
    ctx.behaviour.stop_charging = {
        "cycle": int(at_cycle) + int(cycles), "max_delay_s": 0, "ignored_s": 0.0, "evse_reaction": "none",
        "comment": "simulator fault cp_c_to_b_during_transfer: the SECC saw state B and stops the charge "
                   "(EVSENotification StopCharging)"}


@fault("cp_unplug_without_stop", level="pilot", stage="after", category=CATEGORY,
       at_cycle=10, then="none", rst_after_s=1.0)
def cp_unplug_without_stop(ctx, at_cycle, then, rst_after_s):
    """The EV is unplugged (C → A, the EVSE then stops its PWM) after charge-loop cycle
    ``at_cycle``: no PowerDelivery (Stop), no SessionStop. The connection dies: ``then``
    "none" — no more traffic (the link is gone with the cable); "rst" — the SECC resets it
    ``rst_after_s`` later. IEC 61851-1 Table A.6 (C → A: an unplug under load); ISO 15118-2
    §8.8.2 (the session ends with SessionStop)."""
    _need(ctx, "cp_unplug_without_stop", basic=False)
    if then not in ("none", "rst"):
        raise FaultError(f"cp_unplug_without_stop: then {then!r}; none or rst")
    ci, xi, x = _loop(ctx, "cp_unplug_without_stop", int(at_cycle))
    ending = (Ending(by="EVSE", how="RST", after_s=float(rst_after_s), reason="the EV was unplugged")
              if then == "rst" else Ending(how="none", reason="the EV was unplugged"))
    ctx.plan.terminate(ci, xi, ending)
    text = _note(ctx, "unplug", f"cp_unplug_without_stop: the EV is unplugged in charge-loop cycle {at_cycle}")
    ctx.cp.loop_events.append({"cycle": int(at_cycle), "kind": "A", "comment": text})


@fault("cp_no_sleep_in_pause", level="pilot", stage="before", category=CATEGORY)
def cp_no_sleep_in_pause(ctx):
    """During a pause (SessionStopReq ChargingSession = Pause, ``[pause]``) the EV does not
    sleep in state B: 0.5 s after SessionStopRes it switches back to C and stays there (the
    EVSE goes to 100 %: C1) until the EVSE resumes its 5 % before the next connection. The
    paused EV is expected to sleep in B and wake the EVSE with a short B → C → B pulse
    (IEC 61851-1 Annex A; the dsV2Gshark pause capture)."""
    _need(ctx, "cp_no_sleep_in_pause", basic=False)
    if not ctx.spec.pause:
        raise FaultError("cp_no_sleep_in_pause: needs a paused session ([pause] at_cycle)")
    ctx.cp.no_sleep_in_pause = True
    _note(ctx, "no_sleep", "cp_no_sleep_in_pause: the EV stays in state C during the pause")


# ====================================================================== the EVSE's PWM
@fault("cp_duty_not_5pct", level="pilot", stage="before", category=CATEGORY, duty_pct=53.0)
def cp_duty_not_5pct(ctx, duty_pct):
    """In a DC session the EVSE generates a nominal duty cycle of ``duty_pct`` (53 % = 31.8 A)
    instead of 5 % from the plug-in to the end; the EV matches and charges anyway. IEC 61851-1
    Table A.8: 5 % = digital communication required; DC charging is controlled by it
    (IEC 61851-23)."""
    _need(ctx, "cp_duty_not_5pct", mode="DC", basic=False)
    if abs(float(duty_pct) - cp.DIGITAL_DUTY_PCT) <= 1.0:
        raise FaultError("cp_duty_not_5pct: duty_pct must not be 5 %")
    ctx.cp.hlc_duty_pct = float(duty_pct)
    _note(ctx, "duty", f"cp_duty_not_5pct: the EVSE's PWM at {duty_pct:g} % in a DC session")


@fault("cp_pwm_above_evse_max", level="pilot", stage="before", category=CATEGORY,
       duty_pct=53.0, after="ChargeParameterDiscoveryRes")
def cp_pwm_above_evse_max(ctx, duty_pct, after):
    """In an AC session with HLC the EVSE switches from 5 % to a nominal duty cycle of
    ``duty_pct`` right after ``after`` (a response name) — 53 % allows 31.8 A (IEC 61851-1
    Table A.8) while ChargeParameterDiscoveryRes announced EVSEMaxCurrent of the EVSE's
    ``ac_max_current_a`` (16 A): the PWM offers more than the EVSE said it can supply."""
    _need(ctx, "cp_pwm_above_evse_max", mode="AC", basic=False)
    amps = cp.current_for_duty(float(duty_pct))
    if amps is None or amps <= ctx.spec.evse.ac_max_current_a:
        raise FaultError(f"cp_pwm_above_evse_max: {duty_pct:g} % allows {amps} A, not above the EVSE's "
                         f"{ctx.spec.evse.ac_max_current_a:g} A")
    ctx.cp.duty_switch = {"after": after, "duty_pct": float(duty_pct)}
    _note(ctx, "duty_switch", f"cp_pwm_above_evse_max: PWM {duty_pct:g} % = {amps:.1f} A, EVSEMaxCurrent "
                              f"{ctx.spec.evse.ac_max_current_a:g} A")


@fault("cp_pwm_above_cable", level="pilot", stage="before", category=CATEGORY,
       pp_resistor_ohm=1500.0, duty_pct=53.0)
def cp_pwm_above_cable(ctx, pp_resistor_ohm, duty_pct):
    """Basic charging (IEC 61851-1) with a cable whose PP resistor is ``pp_resistor_ohm``
    (1.5 kΩ: a 13 A cable, Annex B Table B.2) and a PWM of ``duty_pct`` (53 % = 31.8 A,
    Table A.8): the EVSE ignores the cable's rating and the EV draws what the PWM allows."""
    _need(ctx, "cp_pwm_above_cable", basic=True)
    amps, cable = cp.current_for_duty(float(duty_pct)), cp.cable_rating_a(float(pp_resistor_ohm))
    if amps is None or cable is None or amps <= cable:
        raise FaultError(f"cp_pwm_above_cable: {duty_pct:g} % ({amps} A) is not above the cable's rating "
                         f"({cable} A for {pp_resistor_ohm:g} Ω)")
    ctx.cp.pp_resistor_ohm = float(pp_resistor_ohm)
    ctx.cp.duty_pct = float(duty_pct)
    _note(ctx, "duty", f"cp_pwm_above_cable: PWM {duty_pct:g} % = {amps:.1f} A on a {cable:g} A cable")


@fault("cp_5pct_without_hlc", level="pilot", stage="before", category=CATEGORY, duration_s=70.0)
def cp_5pct_without_hlc(ctx, duration_s):
    """Basic charging (IEC 61851-1): the EVSE shows 5 % (digital communication required) to an
    EV that has none; the EV never starts SLAC and cannot charge, the EVSE never falls back to
    a nominal duty cycle; the EV is unplugged ``duration_s`` after the session's first
    report. ISO 15118-3 Table A.1 TT_EVSE_SLAC_init (20-50 s); IEC 61851-1 Table A.8."""
    _need(ctx, "cp_5pct_without_hlc", basic=True)
    ctx.cp.no_ev_s = float(duration_s)
    _note(ctx, "duty", "cp_5pct_without_hlc: 5 % PWM to an EV without high-level communication")
    _note(ctx, "unplug", f"cp_5pct_without_hlc: no charge; the EV is unplugged after {duration_s:g} s")


@fault("cp_slac_late", level="pilot", stage="before", category=CATEGORY, gap_s=55.0)
def cp_slac_late(ctx, gap_s):
    """The EV sends its first CM_SLAC_PARM.REQ ``gap_s`` after the EVSE started the 5 % PWM
    (the plug-in moves back accordingly) — past TT_EVSE_SLAC_init (20-50 s by
    implementation, ISO 15118-3 Table A.1), after which an EVSE may give up on the EV. This
    EVSE waits and the session goes on."""
    _need(ctx, "cp_slac_late", basic=False)
    ctx.cp.plug_in_s = ctx.cp.pwm_delay_s + float(gap_s)
    _note(ctx, "duty", f"cp_slac_late: the EV starts SLAC {gap_s:g} s after the 5 % PWM")


@fault("cp_wakeup_unanswered", level="pilot", stage="after", category=CATEGORY, then_s=30.0)
def cp_wakeup_unanswered(ctx, then_s):
    """After a pause (``[pause]``) the EV wakes the EVSE with its B → C → B pulse but the EVSE
    stays at 100 % (B1): no 5 %, no SDP, no resumed session; the EV is unplugged ``then_s``
    later (the capture ends there). IEC 61851-1 Annex A (wake-up by the EV); ChargeX PFMEA
    UC2 192 ("EVSE does not support pilot wake")."""
    _need(ctx, "cp_wakeup_unanswered", basic=False)
    conns = ctx.plan.connections
    if not ctx.spec.pause or len(conns) < 2:
        raise FaultError("cp_wakeup_unanswered: needs a paused session that resumes ([pause] at_cycle)")
    ctx.cp.wakeup_unanswered = {"resume_t": conns[1].start_t, "then_s": float(then_s)}
    del conns[1:]
    _note(ctx, "wakeup", "cp_wakeup_unanswered: the EV's wake-up pulse; the EVSE stays at 100 %")


@fault("cp_state_e", level="pilot", stage="after", category=CATEGORY,
       at_cycle=10, duration_s=2.0, reset_after_s=0.1)
def cp_state_e(ctx, at_cycle, duration_s, reset_after_s):
    """After charge-loop cycle ``at_cycle`` the pilot drops to state E (0 V: pilot shorted to
    PE, or the EVSE without supply) for ``duration_s``; the EVSE stops its PWM, the EV opens
    S2, and the SECC resets the TCP connection ``reset_after_s`` later (no PowerDelivery
    (Stop), no SessionStop). IEC 61851-1 Table A.3 / A.4."""
    _state_ef(ctx, "cp_state_e", "E", at_cycle, duration_s, reset_after_s)


@fault("cp_state_f", level="pilot", stage="after", category=CATEGORY,
       at_cycle=10, duration_s=2.0, reset_after_s=0.1)
def cp_state_f(ctx, at_cycle, duration_s, reset_after_s):
    """After charge-loop cycle ``at_cycle`` the EVSE switches the pilot to state F (−12 V:
    EVSE not available, an internal fault) for ``duration_s``; the EV opens S2 and the SECC
    resets the TCP connection ``reset_after_s`` later (no PowerDelivery (Stop), no
    SessionStop). IEC 61851-1 Table A.3 / A.4."""
    _state_ef(ctx, "cp_state_f", "F", at_cycle, duration_s, reset_after_s)


def _state_ef(ctx, name: str, letter: str, at_cycle, duration_s, reset_after_s) -> None:
    _need(ctx, name, basic=False)
    ci, xi, x = _loop(ctx, name, int(at_cycle))
    ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="RST", after_s=float(reset_after_s),
                                      reason=f"control pilot state {letter}"))
    text = _note(ctx, "error", f"{name}: control pilot state {letter} in charge-loop cycle {at_cycle}")
    ctx.cp.loop_events.append({"cycle": int(at_cycle), "kind": letter, "duration_s": float(duration_s),
                               "comment": text})


# ====================================================================== the readings
@fault("cp_noise", level="pilot", stage="before", category=CATEGORY,
       b_voltages_v=[10.5, 7.4], c_voltages_v=[7.4, 4.5])
def cp_noise(ctx, b_voltages_v, c_voltages_v):
    """Single pilot readings outside every IEC 61851-1 band (Table A.4: 12 / 9 / 6 / 3 / 0 /
    −12 V ± 1 V) — ``b_voltages_v`` while the EV waits in B (before SLAC), ``c_voltages_v``
    during the charge loop in C — each followed 50 ms later by a normal reading of the same
    state: noise on the pilot, not a state change."""
    _need(ctx, "cp_noise")
    for v in list(b_voltages_v) + list(c_voltages_v):
        if not isinstance(v, (int, float)) or any(abs(v - n) <= 1.0 for n in cp.STATE_VOLTAGE_V.values()):
            raise FaultError(f"cp_noise: {v!r} V lies in a state band (or is not a number)")
    ctx.cp.noise = {"B": [float(v) for v in b_voltages_v], "C": [float(v) for v in c_voltages_v]}
    _note(ctx, "noise", "cp_noise: a pilot reading outside every state band")


@fault("cp_contactor_voltage_mismatch", level="pilot", stage="before", category=CATEGORY, close_at_v=250.0)
def cp_contactor_voltage_mismatch(ctx, close_at_v):
    """The EV closes its battery contactor during PreCharge as soon as the EVSE's output
    reaches ``close_at_v`` (250 V) — far from its battery's voltage (the scenario's battery,
    ~400 V). The dSPACE test system (on the EV side: it reports "Battery Voltage [V]", set
    to the simulated battery's if the scenario does not report one) shows "HV Contactor"
    Closed with Present and Battery Voltage apart. IEC 61851-23 CC.5.2 (PreCharge limits the
    inrush)."""
    _need(ctx, "cp_contactor_voltage_mismatch", mode="DC", basic=False)
    if not ctx.cp.dspace:
        raise FaultError("cp_contactor_voltage_mismatch: the contactor is reported by the dSPACE "
                         "(evidence \"dspace\" or \"both\")")
    if not ctx.cp.battery_reported:
        ctx.cp.battery_voltage_v = "battery"
    ctx.cp.ev_contactor_close_v = float(close_at_v)
    _note(ctx, "contactor", f"cp_contactor_voltage_mismatch: the EV closes its contactor at {close_at_v:g} V")


__all__ = ["CATEGORY"]
