"""The control pilot (CP) and proximity pilot (PP) of IEC 61851-1, read from the evidence test
systems and modems put on the wire: one home for the CP facts.

Evidence (HomePlug vendor management messages, decoded by dissectors/homeplug.py):

* ``VS_CP_STATE.IND(ST/IoTecha)`` (MMTYPE 0xA22E, OUI 00:80:E1) and
  ``VS_CP_STATE.IND(SPiDCOM)`` (0xA10E, OUI 00:13:D7): the pilot voltage (V), the PWM duty
  cycle (%) and frequency (Hz) as the EVSE's modem measures them (dsV2Gshark
  v2ghpscs.lua / homeplug-llc.lua ``extract_infos_iotecha`` / ``_spidcom``).
* ``MS_SCS_DIAG.IND(dSPACE)`` (0x8002, dSPACE OUI): the dSPACE SCS test system's diagnostic
  JSON — its own CP state name (``State_C2``), CP voltage, PP resistor (Ω) and voltage,
  HV contactor, present / target voltage (V) and current (A), battery voltage (V), power
  and plug type (dsV2Gshark ``dissect_dSPACE_scs_diag``).

Facts (IEC 61851-1:2017 Annex A, as dsV2Gshark's ``get_cp_state`` / ``get_ac_max_current``
apply them; PROTOCOL_FACTS §2.4 for the SLAC coupling):

* States by the positive pilot voltage, ±1 V (Table A.4): A 12 V (no EV), B 9 V (EV
  connected, not ready), C 6 V (EV ready, charging), D 3 V (charging with ventilation),
  E 0 V (EVSE disconnected from mains / pilot shorted), F −12 V (EVSE not available).
  Suffix 1: no PWM (100 % or 0 Hz), 2: PWM at 1 kHz (950–1050 Hz) — the EVSE offers energy.
* PWM duty cycle → maximum current (Table A.8): 5 % digital communication required (the
  current comes from ISO 15118 / DIN 70121); 8–10 % 6 A; 10–85 % d × 0.6 A;
  85–96 % (d − 64) × 2.5 A; 96–97 % 80 A; below 8 % (other than 5 %) and above 97 %:
  charging not allowed.
* PP resistor of the cable (IEC 61851-1 Annex B.5 Table B.2, IEC 62196-2): 1.5 kΩ 13 A,
  680 Ω 20 A, 220 Ω 32 A, 100 Ω 63 A (3-phase) / 70 A (1-phase); ±10 % is accepted here
  (the dSPACE reports 1568–1575 Ω for a 1.5 kΩ cable).
"""
from __future__ import annotations

from dataclasses import dataclass

from ccs_analyzer.dissectors.events import CP_STATE_SPIDCOM, CP_STATE_ST, SCS_DIAG_DSPACE

#: Nominal pilot voltage (V) of each state, IEC 61851-1 Table A.4.
STATE_VOLTAGE_V = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0, "E": 0.0, "F": -12.0}
#: Half width (V) of each state's voltage band (dsV2Gshark's tolerance; IEC 61851-1 Table A.4
#: gives asymmetric ranges of about this width).
BAND_V = 1.0
#: Duty cycle (%) that signals "digital communication required" (IEC 61851-1 Table A.8).
DIGITAL_DUTY_PCT = 5.0
#: Tolerance (percentage points) when comparing a measured duty cycle with 5 %.
DUTY_TOLERANCE_PCT = 1.0
#: PWM frequency window (Hz) in which the PWM counts as on (dsV2Gshark get_cp_state).
PWM_HZ = (950.0, 1050.0)
#: PP resistor (Ω) → cable current rating (A), IEC 61851-1 Annex B Table B.2.
PP_RATING_A = ((1500.0, 13.0), (680.0, 20.0), (220.0, 32.0), (100.0, 63.0))
#: Relative tolerance of a PP resistor reading.
PP_TOLERANCE = 0.10

#: The names of the events that carry CP evidence (dissectors/events.py; decoded by
#: dissectors/homeplug.py VENDOR_LAYOUTS).
CP_EVENT_NAMES = (CP_STATE_ST, CP_STATE_SPIDCOM, SCS_DIAG_DSPACE)

#: Meaning of each state letter, for reports (IEC 61851-1 Table A.3).
STATE_MEANING = {
    "A": "no EV connected", "B": "EV connected, not ready", "C": "EV ready, charging",
    "D": "EV ready, charging with ventilation", "E": "pilot shorted / EVSE without supply",
    "F": "EVSE not available (error)",
}


def state_of_voltage(voltage_V: float | None) -> str | None:
    """The CP state letter (A–F) whose ±1 V band holds ``voltage_V`` (V), "?" when it lies
    between the bands (a transition or noise), None without a voltage. IEC 61851-1 Table A.4;
    E covers everything from −1 V to +1 V, F −13 V to −11 V."""
    if voltage_V is None:
        return None
    for letter, nominal in STATE_VOLTAGE_V.items():
        if abs(voltage_V - nominal) <= BAND_V:
            return letter
    return "?"


def pwm_on(duty_pct: float | None, frequency_Hz: float | None) -> bool | None:
    """Whether the EVSE generates the 1 kHz PWM (state suffix 2): a duty strictly between 0 and
    100 % at 950–1050 Hz. None when neither is known."""
    if duty_pct is None and frequency_Hz is None:
        return None
    if duty_pct is not None and (duty_pct <= 0 or duty_pct >= 100):
        return False
    if frequency_Hz is not None:
        return PWM_HZ[0] <= frequency_Hz <= PWM_HZ[1]
    return True


def is_digital(duty_pct: float | None) -> bool:
    """Whether a duty cycle (%) is the 5 % that requires digital communication (±1 point)."""
    return duty_pct is not None and abs(duty_pct - DIGITAL_DUTY_PCT) <= DUTY_TOLERANCE_PCT


def pwm_current_A(duty_pct: float | None) -> float | None:
    """The maximum current (A) a nominal PWM duty cycle (%) allows, IEC 61851-1 Table A.8;
    None for 5 % (digital communication: the limit comes from ISO 15118 / DIN 70121), for
    duty cycles that do not allow charging (< 8 %, > 97 %) and without a duty cycle."""
    if duty_pct is None or is_digital(duty_pct) or duty_pct < 8 or duty_pct > 97:
        return None
    if duty_pct < 10:
        return 6.0
    if duty_pct <= 85:
        return round(duty_pct * 0.6, 2)
    if duty_pct <= 96:
        return round((duty_pct - 64) * 2.5, 2)
    return 80.0


def cable_rating_A(pp_resistance_ohm: float | None) -> float | None:
    """The cable's current rating (A) from its PP resistor (Ω), IEC 61851-1 Table B.2
    (±10 %); None when no resistor is reported (0 Ω: no cable / not measured) or the value
    matches no rating."""
    if not pp_resistance_ohm or pp_resistance_ohm <= 0:
        return None
    for nominal, amps in PP_RATING_A:
        if abs(pp_resistance_ohm - nominal) <= nominal * PP_TOLERANCE:
            return amps
    return None


@dataclass(frozen=True)
class CpSample:
    """One CP reading: what a vendor message says about the pilot at ``time``.

    ``frame`` (1-based), ``time`` (epoch s), ``source`` (``"ST/IoTecha"``, ``"SPiDCOM"``,
    ``"dSPACE SCS"``), ``src`` (MAC of the reporting station); ``voltage_V`` (pilot, V),
    ``duty_pct`` (%), ``frequency_Hz``, ``state`` — the IEC 61851-1 state derived from the
    voltage and the PWM (``"A1"`` … ``"D2"``, ``"E"``, ``"F"``, ``"?"`` between the bands,
    None unknown), ``reported_state`` (the device's own state name, dSPACE ``State_C2`` →
    ``"C2"``), ``pwm`` (PWM on), ``pwm_current_A`` (Table A.8), ``pp_resistance_ohm``,
    ``cable_rating_A``, ``contactor`` (``"open"`` / ``"closed"``), ``present_voltage_V`` /
    ``present_current_A`` (measured by the test system), ``target_voltage_V`` /
    ``target_current_A``, ``battery_voltage_V`` (0 or None: not reported), ``power_type``
    (AC / DC).
    """

    frame: int
    time: float
    source: str
    src: str | None = None
    voltage_V: float | None = None
    duty_pct: float | None = None
    frequency_Hz: float | None = None
    state: str | None = None
    reported_state: str | None = None
    pwm: bool | None = None
    pwm_current_A: float | None = None
    pp_resistance_ohm: float | None = None
    cable_rating_A: float | None = None
    contactor: str | None = None
    present_voltage_V: float | None = None
    present_current_A: float | None = None
    target_voltage_V: float | None = None
    target_current_A: float | None = None
    battery_voltage_V: float | None = None
    power_type: str | None = None

    @property
    def letter(self) -> str | None:
        """The state letter (A–F, "?"), without the PWM suffix."""
        return self.state[0] if self.state else None

    def row(self) -> dict:
        """The sample's values for a timeline row, SI-named (``CPState``, ``CPVoltage_V``,
        ``DutyCycle_pct``, ``PWMFrequency_Hz``, ``PWMCurrent_A``, ``PPResistance_Ohm``,
        ``CableRating_A``, ``Contactor``, ``MeasuredVoltage_V``, ``MeasuredCurrent_A``,
        ``BatteryVoltage_V``); absent values are left out."""
        pairs = (("CPState", self.state), ("CPVoltage_V", self.voltage_V),
                 ("DutyCycle_pct", self.duty_pct), ("PWMFrequency_Hz", self.frequency_Hz),
                 ("PWMCurrent_A", self.pwm_current_A), ("PPResistance_Ohm", self.pp_resistance_ohm),
                 ("CableRating_A", self.cable_rating_A), ("Contactor", self.contactor),
                 ("MeasuredVoltage_V", self.present_voltage_V),
                 ("MeasuredCurrent_A", self.present_current_A),
                 ("BatteryVoltage_V", self.battery_voltage_V or None))
        return {k: v for k, v in pairs if v is not None}


def is_cp_event(e) -> bool:
    """Whether an event carries CP evidence (a decoded vendor message of
    :data:`CP_EVENT_NAMES`)."""
    name = e.name or ""
    return e.layer == "slac" and name in CP_EVENT_NAMES and isinstance(e.message, dict)


def _num(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def _state(letter: str | None, pwm: bool | None) -> str | None:
    if letter is None:
        return None
    if letter in ("A", "B", "C", "D"):
        return letter + ("2" if pwm else "1")
    return letter


def cp_sample(e) -> CpSample | None:
    """The :class:`CpSample` of a CP event (:func:`is_cp_event`), None for any other event or
    a message that says nothing about the pilot (a dSPACE diagnostic without JSON)."""
    if not is_cp_event(e):
        return None
    m = e.message
    if e.name in (CP_STATE_ST, CP_STATE_SPIDCOM):
        v = _num(m.get("Voltage_V"))
        duty = _num(m.get("DutyCycle_pct"))
        hz = _num(m.get("Frequency_Hz"))
        pwm = pwm_on(duty, hz)
        letter = state_of_voltage(v)
        return CpSample(e.frame, e.time, "SPiDCOM" if "SPiDCOM" in e.name else "ST/IoTecha",
                        e.src, voltage_V=v, duty_pct=duty, frequency_Hz=hz,
                        state=_state(letter, pwm), pwm=pwm,
                        reported_state=m.get("State") if isinstance(m.get("State"), str) else None,
                        pwm_current_A=pwm_current_A(duty) if pwm else None)
    j = m.get("JSON")
    if not isinstance(j, dict):
        return None
    rep = j.get("CP State")
    reported = rep[6:] if isinstance(rep, str) and rep.startswith("State_") else None
    v = _num(j.get("CP/CE Voltage [V]"))
    letter = state_of_voltage(v)
    pwm = reported[1:] == "2" if reported and len(reported) == 2 else None
    if letter is None and reported:
        letter = reported[0]
    contactor = j.get("HV Contactor")
    pp = _num(j.get("PP Resistor [Ohm]"))
    return CpSample(
        e.frame, e.time, "dSPACE SCS", e.src, voltage_V=v, state=_state(letter, pwm),
        reported_state=reported, pwm=pwm, pp_resistance_ohm=pp, cable_rating_A=cable_rating_A(pp),
        contactor=contactor.lower() if isinstance(contactor, str) else None,
        present_voltage_V=_num(j.get("Present Voltage [V]")),
        present_current_A=_num(j.get("Present Current [A]")),
        target_voltage_V=_num(j.get("Target Voltage [V]")),
        target_current_A=_num(j.get("Target Current [A]")),
        battery_voltage_V=_num(j.get("Battery Voltage [V]")),
        power_type=j.get("Power Type") if isinstance(j.get("Power Type"), str) else None)


def plug_state(sample: CpSample) -> str | None:
    """What a reading says about the plug: ``"A"`` (no EV), ``"BCD"`` (EV connected), ``"EF"``
    (EVSE error / not available — says nothing about the plug), None (between the bands)."""
    letter = sample.letter
    if letter == "A":
        return "A"
    if letter in ("B", "C", "D"):
        return "BCD"
    if letter in ("E", "F"):
        return "EF"
    return None
