"""Physical values and the small physical models a simulated session follows.

Encodings:

* DIN SPEC 70121 / ISO 15118-2 ``PhysicalValueType`` {Multiplier (byte −3..3), Unit, Value
  (short)}: value = Value × 10^Multiplier (DIN / ISO-2 XSDs; PROTOCOL_FACTS §4 "Physical
  values"). :func:`pv` picks the multiplier a real stack would use (one decimal for volts and
  amperes, tens of watts) and raises it when the value would not fit in a short.
* ISO 15118-20 ``RationalNumberType`` {Exponent (byte), Value (short)} (ISO 15118-20 XSD
  V2G_CI_CommonTypes): :func:`rational`.

Models (plain physics, deliberately simple; every constant is a parameter of the scenario):

* :class:`Battery` — the EV's traction battery: open-circuit voltage rising with SoC, an
  internal resistance, a charge-current request that tapers above ``taper_soc`` (the usual
  CC/CV shape, reduced to a straight line), SoC integrated from the delivered energy
  (optionally sped up so that a short capture shows SoC rising and the taper).
* :class:`DcConverter` — the EVSE's DC output: PreCharge ramps the output voltage toward the
  EV's target (first order, rate limited, as the dSPACE and pyPLC captures show: a few hundred
  V/s), the charge current follows the EV's target with a first-order lag, limited by the
  EVSE maxima (current, power / voltage), and the output decays after PowerDelivery(Stop)
  (WeldingDetection sees the voltage fall: PROTOCOL_FACTS §4D, Ioniq trace 109 V → 65 V).
* :class:`AcSupply` — an AC charge point: phases × nominal voltage × current, an energy meter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

SHORT_MIN, SHORT_MAX = -32768, 32767


def pv(value: float, unit: str | None, multiplier: int = 0) -> dict:
    """``value`` (in ``unit``) as a DIN / ISO-2 PhysicalValueType tree.

    ``multiplier`` is the preferred decimal exponent (−1: 0.1 resolution); it is raised (up to
    3) while the scaled value does not fit in a short. ``unit`` None leaves the Unit out (DIN
    allows that: minOccurs 0)."""
    m = multiplier
    v = int(round(value / 10 ** m))
    while not SHORT_MIN <= v <= SHORT_MAX and m < 3:
        m += 1
        v = int(round(value / 10 ** m))
    v = max(SHORT_MIN, min(SHORT_MAX, v))
    out: dict = {"Multiplier": m}
    if unit is not None:
        out["Unit"] = unit
    out["Value"] = v
    return out


def rational(value: float, exponent: int = 0) -> dict:
    """``value`` as an ISO 15118-20 RationalNumberType tree (Value × 10^Exponent), the
    exponent raised while the value does not fit in a short."""
    e = exponent
    v = int(round(value / 10 ** e))
    while not SHORT_MIN <= v <= SHORT_MAX and e < 127:
        e += 1
        v = int(round(value / 10 ** e))
    return {"Exponent": e, "Value": v}


@dataclass
class Battery:
    """The EV's battery and charge controller (units in the names).

    ``speedup`` multiplies the energy the SoC integration sees: 1 is real time; a short
    capture uses more so that SoC visibly rises (the dSPACE reference captures simulate their
    SoC the same way: 30 → 100 % in nine CurrentDemand cycles)."""

    capacity_kwh: float = 60.0
    soc_start: float = 50.0
    soc_target: float = 80.0
    voltage_empty_v: float = 330.0
    voltage_full_v: float = 410.0
    internal_resistance_ohm: float = 0.06
    max_current_a: float = 200.0
    max_voltage_v: float = 430.0
    max_power_w: float = 90000.0
    min_current_a: float = 0.0
    min_voltage_v: float = 200.0
    taper_soc: float = 80.0
    taper_floor: float = 0.1
    ramp_a_per_s: float = 300.0
    speedup: float = 1.0
    soc: float = field(init=False)
    energy_wh: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.soc = float(self.soc_start)

    @property
    def capacity_wh(self) -> float:
        return self.capacity_kwh * 1000.0

    def ocv(self) -> float:
        """Open-circuit voltage (V) at the present SoC: a mild S-curve between the empty and
        full voltages (lithium-ion NMC packs are flat in the middle)."""
        x = max(0.0, min(1.0, self.soc / 100.0))
        shape = 0.5 * x + 0.5 * (1 - math.cos(math.pi * x)) / 2 + 0.25 * math.sin(2 * math.pi * x) / math.pi
        return self.voltage_empty_v + (self.voltage_full_v - self.voltage_empty_v) * max(0.0, min(1.0, shape))

    def terminal_voltage(self, current_a: float) -> float:
        """Voltage at the inlet while ``current_a`` flows in."""
        return self.ocv() + current_a * self.internal_resistance_ohm

    def current_request(self, previous_a: float, dt_s: float) -> float:
        """The EV's target current (A): its maximum, tapered above ``taper_soc`` (linear to
        ``taper_floor`` × maximum at 100 %), limited by its maximum power, and ramped from
        ``previous_a`` at ``ramp_a_per_s``."""
        taper = 1.0
        if self.soc > self.taper_soc:
            span = max(1e-6, 100.0 - self.taper_soc)
            taper = max(self.taper_floor, 1.0 - (1.0 - self.taper_floor) * (self.soc - self.taper_soc) / span)
        want = self.max_current_a * taper
        want = min(want, self.max_power_w / max(1.0, self.terminal_voltage(want)))
        return min(want, previous_a + self.ramp_a_per_s * dt_s)

    def charge(self, power_w: float, dt_s: float) -> None:
        """Integrate ``power_w`` over ``dt_s`` (times ``speedup`` for the SoC)."""
        wh = power_w * dt_s / 3600.0
        self.energy_wh += wh
        self.soc = min(100.0, self.soc + 100.0 * wh * self.speedup / self.capacity_wh)

    def remaining_time_s(self, power_w: float) -> float:
        """Time to full (s) at ``power_w`` (real time, not sped up)."""
        if power_w <= 1:
            return 0.0
        return (100.0 - self.soc) / 100.0 * self.capacity_wh / power_w * 3600.0

    @property
    def full(self) -> bool:
        return self.soc >= self.soc_target


@dataclass
class DcConverter:
    """The EVSE's DC output stage (units in the names)."""

    max_current_a: float = 150.0
    max_voltage_v: float = 500.0
    max_power_w: float = 100000.0
    min_current_a: float = 0.0
    min_voltage_v: float = 150.0
    peak_current_ripple_a: float = 2.0
    current_regulation_tolerance_a: float = 5.0
    precharge_rate_v_per_s: float = 400.0
    precharge_tau_s: float = 0.25
    current_tau_s: float = 0.25
    discharge_tau_s: float = 0.35
    voltage_v: float = 0.0
    current_a: float = 0.0

    def precharge_step(self, target_v: float, dt_s: float, stall_v: float | None = None) -> float:
        """Advance the PreCharge ramp by ``dt_s`` toward ``target_v`` (first order with time
        constant ``precharge_tau_s``, at most ``precharge_rate_v_per_s``); ``stall_v`` caps
        the output (a converter that cannot reach the target)."""
        goal = target_v if stall_v is None else min(target_v, stall_v)
        step = (goal - self.voltage_v) * (1.0 - math.exp(-dt_s / self.precharge_tau_s))
        limit = self.precharge_rate_v_per_s * dt_s
        self.voltage_v += max(-limit, min(limit, step))
        return self.voltage_v

    def underdamped(self, t_s: float, target_v: float, overshoot_v: float, peak_s: float) -> float:
        """Output voltage ``t_s`` after the ramp began for an underdamped (second-order)
        converter from 0 V: it peaks ``overshoot_v`` above ``target_v`` at ``peak_s`` and
        settles to the target (peak overshoot Mp = exp(−πζ/√(1−ζ²)))."""
        mp = max(1e-4, min(0.9, overshoot_v / max(1.0, target_v)))
        ln = math.log(mp)
        zeta = -ln / math.sqrt(math.pi ** 2 + ln ** 2)
        wd = math.pi / peak_s
        sigma = zeta * wd / math.sqrt(1 - zeta ** 2)
        t = max(0.0, t_s)
        return target_v * (1 - math.exp(-sigma * t) * (math.cos(wd * t) + sigma / wd * math.sin(wd * t)))

    def current_step(self, target_a: float, voltage_v: float, dt_s: float) -> float:
        """Advance the output current by ``dt_s`` toward ``target_a`` limited by the maxima
        (current and power at ``voltage_v``); returns the new present current."""
        cap = min(self.max_current_a, self.max_power_w / max(1.0, voltage_v))
        goal = max(0.0, min(target_a, cap))
        self.current_a += (goal - self.current_a) * (1.0 - math.exp(-dt_s / self.current_tau_s))
        self.voltage_v = voltage_v
        return self.current_a

    def discharge_step(self, dt_s: float) -> float:
        """Output voltage decaying after the contactors opened (discharge resistor)."""
        self.current_a = 0.0
        self.voltage_v *= math.exp(-dt_s / self.discharge_tau_s)
        return self.voltage_v

    def limits_achieved(self, target_a: float, target_v: float) -> tuple[bool, bool, bool]:
        """(current, voltage, power) limit achieved flags of CurrentDemandRes (EVerest
        semantics, PROTOCOL_FACTS §4D)."""
        return (target_a >= self.max_current_a, target_v >= self.max_voltage_v,
                target_a * max(self.voltage_v, 1.0) >= self.max_power_w)


@dataclass
class AcSupply:
    """An AC charge point and its meter (units in the names)."""

    nominal_voltage_v: float = 230.0
    max_current_a: float = 16.0
    phases: int = 3
    frequency_hz: float = 50.0
    meter_start_wh: int = 1834512
    current_a: float = 0.0
    meter_wh: float = field(init=False)

    def __post_init__(self) -> None:
        self.meter_wh = float(self.meter_start_wh)

    @property
    def max_power_w(self) -> float:
        return self.phases * self.nominal_voltage_v * self.max_current_a

    def step(self, ev_max_current_a: float, taper: float, dt_s: float, tau_s: float = 0.5) -> float:
        """Advance the phase current toward min(EVSE, EV maximum) × ``taper``; returns the
        power (W) and counts the energy on the meter."""
        goal = min(self.max_current_a, ev_max_current_a) * taper
        self.current_a += (goal - self.current_a) * (1.0 - math.exp(-dt_s / tau_s))
        power = self.phases * self.nominal_voltage_v * self.current_a
        self.meter_wh += power * dt_s / 3600.0
        return power
