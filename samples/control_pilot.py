"""Control pilot (CP) and proximity pilot (PP) evidence as test systems put it on the wire:
HomePlug vendor management messages, as bytes (MMV onwards), and the IEC 61851-1 facts the
simulator needs to fill them in.

Two reporters (dissectors/homeplug.py VENDOR_LAYOUTS decodes both; the byte layouts follow
the dsV2Gshark captures ISO-2_DC_Pause_DS5366, ISO-2_AC_DS5366 and IEC61851_AC_PWM_Basic):

* **ST / IoTecha VS_CP_STATE.IND** — MMTYPE 0xA22E, OUI 00:80:E1, from the EVSE host to the
  HomePlug local address 00:b0:52:00:00:01: MME version, three reserved octets, message
  version, the CP state code (1 = A, 3 = B, 5 = C as the captures show; the whole list —
  0 invalid, 2 / 4 / 6 / 8 ambiguous between A-B / B-C / C-D / D-E, 7 D, 9 E, 10 F — from
  Wireshark's homeplug-av dissector, ``tshark -G values`` homeplug_av.st_iotecha.cpstate.state),
  DutyCycle_pct (u8, 100 = no PWM), Frequency_Hz (LE s16: 1000 with PWM, 0 without),
  Voltage_mV (LE s16), padded to the 60-octet minimum frame. Sent on every change.
* **dSPACE MS_SCS_DIAG.IND** — MMTYPE 0x8002, dSPACE OUI 64:4D:70, broadcast: the text
  ``dSPACE SCS Diag|dsV2Gshark|v1|SCS Diagnostic|{json}`` with the JSON keys, order and
  number style of the captures (``"Key" : value`` pairs joined by ``,``, no NUL after the
  closing brace, as the real frames end). Sent on every change and every ~250 ms while the
  values move.

The IEC 61851-1:2017 facts (state voltages and bands, Table A.4; 5 % = digital communication
and the duty cycle → current table, Table A.8; PP resistor → cable rating, Table B.2) come
from their one home, analyzer/control_pilot.py; the ST state codes from the dissector's
table (dissectors/homeplug.py ``ST_CP_STATE_CODES``).
"""
from __future__ import annotations

import random
import struct

from ccs_analyzer.analyzer.control_pilot import (BAND_V, DIGITAL_DUTY_PCT, STATE_VOLTAGE_V,
                                                 cable_rating_A, pwm_current_A)
from ccs_analyzer.dissectors.homeplug import OUI_DSPACE, OUI_ST, ST_CP_STATE_CODES

from . import netframes as nf

MMTYPE_ST_CP_STATE_IND = 0xA22E
MMTYPE_SCS_DIAG_IND = 0x8002
#: The HomePlug AV "local management" address a host uses for its own modem.
LOCAL_MODEM = "00:b0:52:00:00:01"
BROADCAST = "ff:ff:ff:ff:ff:ff"

#: What the captures' reporters measure (V) in each state, PWM off / on: the PWM's high level
#: sags a little under load (ISO-2_DC_Pause_DS5366: B1 8.93-8.97 V, B2 8.86 V, C2 5.89 V).
MEASURED_V = {("A", False): 12.0, ("A", True): 11.95, ("B", False): 8.95, ("B", True): 8.86,
              ("C", False): 5.96, ("C", True): 5.89, ("D", False): 2.95, ("D", True): 2.9,
              ("E", False): 0.0, ("E", True): 0.0, ("F", False): -11.95, ("F", True): -11.95}
#: ST / IoTecha state code of each state, and of a reading between two bands ("Ambiguous
#: (A-B)" …): the inverse of the dissector's table (dissectors/homeplug.py ST_CP_STATE_CODES,
#: Wireshark's homeplug-av dissector).
ST_STATE_CODE = {name: code for code, name in ST_CP_STATE_CODES.items() if len(name) == 1}
ST_AMBIGUOUS = {tuple(name.split("-")): code for code, name in ST_CP_STATE_CODES.items()
                if "-" in name}
PWM_HZ = 1000
#: The PP measuring circuit as fitted to the dSPACE readings: 5 V through 312 Ω gives the
#: 4.17 V the captures report for their 1568 Ω cable.
PP_SOURCE_V, PP_PULLUP_OHM = 5.0, 312.0
#: The dSPACE SCS identity fields (IEC61851_AC_PWM_Basic, ISO-2_*_DS5366).
SCS_STATIC = {"Plug Type": "Type_2", "HW Revision DS5366": 5, "HW Revision DS5367": 4,
              "Model Version": "25.2.0", "Firmware Version": "3.4.0"}
SCS_PREFIX = "dSPACE SCS Diag|dsV2Gshark|v1|SCS Diagnostic|"


# ------------------------------------------------------------------ IEC 61851-1 facts
def state_name(letter: str, pwm: bool) -> str:
    """The IEC 61851-1 state name: ``"B2"`` for letter B with PWM, ``"C1"`` without; E and F
    have no suffix (Table A.3)."""
    return letter if letter in ("E", "F") else f"{letter}{2 if pwm else 1}"


def pwm_on(duty_pct: float) -> bool:
    """Whether a duty cycle (%) means the EVSE generates the 1 kHz PWM (0 < d < 100)."""
    return 0.0 < duty_pct < 100.0


def current_for_duty(duty_pct: float) -> float | None:
    """The maximum current (A) a nominal duty cycle (%) allows: IEC 61851-1 Table A.8, from
    the analyzer's one home of the fact (analyzer/control_pilot.py ``pwm_current_A``)."""
    return pwm_current_A(duty_pct)


def duty_for_current(current_a: float) -> float:
    """The nominal duty cycle (%) that signals ``current_a`` (A), the inverse of IEC 61851-1
    Table A.8: 6-51 A → I / 0.6, 51-80 A → I / 2.5 + 64 (6 A at least, 80 A at most)."""
    a = max(6.0, min(80.0, float(current_a)))
    return round(a / 0.6, 2) if a <= 51.0 else round(a / 2.5 + 64.0, 2)


def cable_rating_a(pp_ohm: float) -> float | None:
    """The cable's current rating (A) of a PP resistor (Ω), IEC 61851-1 Table B.2
    (analyzer/control_pilot.py ``cable_rating_A``)."""
    return cable_rating_A(pp_ohm)


def pp_voltage_v(pp_ohm: float) -> float:
    """The PP / ID voltage (V) the dSPACE reports for a PP resistor of ``pp_ohm`` (Ω): 5 V
    through 312 Ω (fitted: 1568 Ω → 4.17 V as in the captures); 0.01 V without a cable."""
    if pp_ohm <= 0:
        return 0.01
    return PP_SOURCE_V * pp_ohm / (pp_ohm + PP_PULLUP_OHM)


def st_state_code(voltage_v: float) -> int:
    """The ST / IoTecha state code of a pilot reading (V): the state whose ±1 V band holds it
    (IEC 61851-1 Table A.4), the "ambiguous" code between two neighbouring bands from A to E,
    0 (invalid) anywhere else (:data:`ST_STATE_CODE`, :data:`ST_AMBIGUOUS`)."""
    for letter, nominal in STATE_VOLTAGE_V.items():
        if abs(voltage_v - nominal) <= BAND_V:
            return ST_STATE_CODE[letter]
    for (hi, lo), code in ST_AMBIGUOUS.items():
        if STATE_VOLTAGE_V[lo] < voltage_v < STATE_VOLTAGE_V[hi]:
            return code
    return 0


def measured_voltage_v(letter: str, pwm: bool, rng: random.Random) -> float:
    """A pilot reading (V) in state ``letter`` with or without PWM: the captures' level
    (:data:`MEASURED_V`) and ±15 mV of noise from ``rng`` (seeded)."""
    return MEASURED_V[(letter, pwm)] + rng.uniform(-0.015, 0.015)


# ------------------------------------------------------------------ wire formats
def _mme(mmtype: int, oui_hex: str, body: bytes) -> bytes:
    """MMV 0x01, MMTYPE (LE), FMI 0x0000, the vendor's OUI, then ``body``."""
    return struct.pack("<BHH", 0x01, mmtype, 0) + bytes.fromhex(oui_hex) + body


def st_cp_state_ind(duty_pct: float, voltage_v: float, code: int | None = None) -> bytes:
    """VS_CP_STATE.IND (ST / IoTecha) from MMV on, 46 octets (a 60-octet frame): MME version
    0, three reserved octets, message version 0, the state ``code`` (default
    :func:`st_state_code` of the reading), DutyCycle_pct (u8, %, rounded; 100 = no PWM),
    Frequency_Hz (LE s16: 1000 with PWM, 0 without), Voltage_mV (LE s16, from ``voltage_v``
    in V), zero padding. Layout: dsV2Gshark extract_cp_info_iotecha, Wireshark's
    STP_CPSTATE.IND and the dSPACE captures (module docstring)."""
    duty = max(0, min(100, int(round(duty_pct))))
    hz = PWM_HZ if pwm_on(duty_pct) else 0
    mv = max(-32768, min(32767, int(round(voltage_v * 1000.0))))
    code = st_state_code(voltage_v) if code is None else code
    body = bytes(5) + bytes([code]) + struct.pack("<Bhh", duty, hz, mv)
    m = _mme(MMTYPE_ST_CP_STATE_IND, OUI_ST, body)
    return m + bytes(46 - len(m))


def scs_number(value: float, decimals: int) -> str:
    """A number as the dSPACE JSON prints it: rounded to ``decimals``, no trailing zeros, no
    trailing point (``12``, ``8.97``, ``-0.1``, ``372.4``)."""
    s = f"{round(float(value), decimals):.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def scs_diag_json(values: dict) -> str:
    """The dSPACE SCS diagnostic JSON of ``values`` (key → str, int, or (float, decimals)), in
    the order given, as the captures write it: ``{"Key" : value,"Key" : "text"}``."""
    parts = []
    for k, v in values.items():
        if isinstance(v, str):
            txt = f'"{v}"'
        elif isinstance(v, tuple):
            txt = scs_number(*v)
        else:
            txt = str(int(v))
        parts.append(f'"{k}" : {txt}')
    return "{" + ",".join(parts) + "}"


def scs_values(*, pp_ohm: float, power_type: str, contactor_closed: bool, target_current_a: float,
               present_current_a: float, target_voltage_v: float, present_voltage_v: float,
               battery_voltage_v: float, cp_state: str, cp_voltage_v: float) -> dict:
    """The dSPACE diagnostic fields in the captures' key order: PP resistor (Ω, integer; 0 = no
    cable) and its voltage (V, :func:`pp_voltage_v`), "PP S3" Closed, ``power_type`` ("AC" /
    "DC"), HV contactor, target / present current (A) and voltage (V), battery voltage (V; 0 =
    not reported), the plug type, ``cp_state`` (``"State_B2"``, ``"State_E"`` …), the CP voltage
    (V) and the identity fields (:data:`SCS_STATIC`)."""
    out = {"PP Resistor [Ohm]": int(round(pp_ohm)), "PP/ID Voltage [V]": (pp_voltage_v(pp_ohm), 2),
           "PP S3": "Closed", "Power Type": power_type, "HV Contactor": "Closed" if contactor_closed else "Open",
           "Target Current [A]": (target_current_a, 1), "Present Current [A]": (present_current_a, 1),
           "Target Voltage [V]": (target_voltage_v, 1), "Present Voltage [V]": (present_voltage_v, 1),
           "Battery Voltage [V]": (battery_voltage_v, 1), "Plug Type": SCS_STATIC["Plug Type"],
           "CP State": cp_state, "CP/CE Voltage [V]": (cp_voltage_v, 2)}
    out.update({k: v for k, v in SCS_STATIC.items() if k != "Plug Type"})
    return out


def scs_diag_ind(values: dict) -> bytes:
    """MS_SCS_DIAG.IND (dSPACE) from MMV on: MMTYPE 0x8002, the dSPACE OUI and the text
    ``dSPACE SCS Diag|dsV2Gshark|v1|SCS Diagnostic|`` + :func:`scs_diag_json` (ASCII, no
    terminator: the captures' frames end with the closing brace)."""
    return _mme(MMTYPE_SCS_DIAG_IND, OUI_DSPACE, (SCS_PREFIX + scs_diag_json(values)).encode("ascii"))


def frame(src: str, dst: str, mme: bytes) -> bytes:
    """An Ethernet II frame (EtherType 0x88E1 HomePlug AV) from MAC ``src`` to ``dst`` carrying
    ``mme``, padded to 60 octets."""
    return nf.ethernet(nf.mac(dst), nf.mac(src), nf.ETH_HOMEPLUG, mme)


__all__ = ["state_name", "pwm_on", "current_for_duty", "duty_for_current", "cable_rating_a", "pp_voltage_v",
           "measured_voltage_v", "st_state_code", "st_cp_state_ind", "scs_number", "scs_diag_json", "scs_values",
           "scs_diag_ind", "frame", "LOCAL_MODEM", "BROADCAST", "STATE_VOLTAGE_V", "ST_STATE_CODE",
           "DIGITAL_DUTY_PCT"]
