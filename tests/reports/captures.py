"""Captures the report tests (and the documentation's screenshots) make with the project's own
session simulator (ccs_analyzer.samples): a failed DIN DC session (PreCharge never reaches the
target), an ISO 15118-20 session whose identities carry markup, a long charging loop; and,
frame by frame, basic AC charging seen only on the control pilot (IEC 61851-1: the EVSE's
modem's VS_CP_STATE.IND and a test system's MS_SCS_DIAG.IND)."""
from __future__ import annotations

import io
import json
import struct
import sys

from ccs_analyzer.dissectors.capture import LINKTYPE_ETHERNET
from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Markup in strings that come from the capture: must show as text, never run.
EVSEID_MARKUP = "</script><script>alert(1)</script>"
EVCCID_MARKUP = "<img src=x onerror=alert(1)>"


def _sim(name: str, toml: str) -> bytes:
    from ccs_analyzer.samples import parse_scenario, simulate
    return simulate(parse_scenario(tomllib.loads(toml), name)).pcapng


def failed_precharge_capture() -> bytes:
    """DIN 70121 DC: a lamp load keeps PreCharge at 60 % of the EV's target; after 7 s the EV
    stops with SessionStopReq."""
    return _sim("precharge_stall", """
description = "DIN 70121 DC: PreCharge stalls at 60 % of the target, the EV gives up after 7 s"
protocol = "DIN 70121"
seed = 1
[timing]
precharge_period_s = 0.2
[[faults]]
name = "precharge_never_reaches"
fraction = 0.6
""")


def long_loop_capture(cycles: int = 6000) -> bytes:
    """A healthy DIN 70121 DC session with ``cycles`` CurrentDemand exchanges 0.1 s apart
    (6000 → 12,000 CurrentDemand messages, 600 s)."""
    return _sim("long_loop", f"""
description = "DIN 70121 DC, a 600 s charging loop"
protocol = "DIN 70121"
seed = 1
[battery]
capacity_kwh = 1000.0
soc_start = 20.0
soc_target = 95.0
[timing]
loop_cycles = {cycles}
loop_period_s = 0.1
""")


def markup_capture() -> bytes:
    """ISO 15118-20 DC whose EVCCID and EVSEID carry markup, and whose SessionSetupRes answers
    FAILED (so a finding cites the frame that carries them)."""
    return _sim("markup", f"""
description = "ISO 15118-20 DC with markup in its identities"
protocol = "ISO 15118-20"
mode = "DC"
seed = 1
[ev]
evccid = {EVCCID_MARKUP!r}
[evse]
evseid = {EVSEID_MARKUP!r}
[[faults]]
name = "failed_response"
message = "SessionSetupRes"
code = "FAILED"
""")


# ------------------------------------------------------------------ basic charging (CP only)
#: MACs of the basic-charging capture: the EVSE's modem (reports the pilot) and the test
#: system (its diagnostics go to broadcast); both locally administered.
CP_MODEM_MAC, CP_TESTER_MAC = "02:00:00:00:c9:01", "02:00:00:00:c9:02"
_HOMEPLUG_HOST = "00:b0:52:00:00:01"

#: The pilot of the basic-charging capture: (s, reporter, values). ``st``: a VS_CP_STATE.IND
#: (ST/IoTecha) of the EVSE's modem (V, duty %, Hz); ``ds``: an MS_SCS_DIAG.IND (dSPACE SCS)
#: of the test system (its state name, CP V, PP Ω, contactor, V, A).
BASIC_PILOT = [
    (0.00, "st", (12.0, 100, 0)), (0.01, "ds", ("A1", 12.0, 0, "Open", 0.2, 0.0)),
    (4.00, "ds", ("B1", 8.97, 1568, "Open", 1.0, 0.0)), (4.00, "st", (8.97, 100, 0)),    # plug-in
    (5.00, "st", (8.95, 22, 1000)), (5.01, "ds", ("B2", 8.95, 1568, "Open", 1.0, 0.0)),  # PWM 22 %
    (6.00, "ds", ("B2", 7.70, 1575, "Open", 1.0, 0.0)),                                  # edge
    (6.01, "st", (5.96, 22, 1000)), (6.25, "ds", ("C2", 5.96, 1575, "Open", 1.0, 0.0)),  # EV ready
    (6.50, "ds", ("C2", 5.96, 1575, "Closed", 230.0, 12.8)),
    (10.0, "ds", ("C2", 5.96, 1575, "Closed", 230.0, 13.1)),
    (16.0, "st", (5.96, 16, 1000)), (16.5, "ds", ("C2", 5.96, 1575, "Closed", 230.0, 9.5)),  # 16 %
    (20.0, "ds", ("C2", 7.40, 1575, "Closed", 230.0, 9.6)),                              # noise
    (20.25, "ds", ("C2", 5.96, 1575, "Closed", 230.0, 9.6)),
    (24.0, "st", (8.96, 16, 1000)), (24.0, "ds", ("B2", 8.96, 1575, "Closed", 230.0, 0.0)),  # pause
    (24.3, "ds", ("B2", 8.96, 1575, "Open", 1.0, 0.0)),
    (28.0, "st", (5.96, 16, 1000)), (28.25, "ds", ("C2", 5.96, 1575, "Open", 1.0, 0.0)),
    (28.5, "ds", ("C2", 5.96, 1575, "Closed", 230.0, 9.6)),
    (36.0, "st", (5.98, 100, 0)), (36.0, "ds", ("C1", 5.98, 1575, "Closed", 230.0, 0.0)),  # PWM off
    (36.8, "st", (8.96, 100, 0)), (36.8, "ds", ("B1", 8.96, 1575, "Closed", 230.0, 0.0)),
    (37.0, "ds", ("B1", 8.96, 1575, "Open", 1.0, 0.0)),
    (38.0, "st", (12.0, 100, 0)), (38.0, "ds", ("A1", 12.0, 0, "Open", 0.2, 0.0)),       # unplug
]


def _eth(dst: str, src: str, payload: bytes) -> bytes:
    return bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + b"\x88\xe1" + payload


def cp_state_st(volts: float, duty_pct: int, hz: int) -> bytes:
    """A VS_CP_STATE.IND (ST/IoTecha, MMTYPE 0xA22E, OUI 00:80:E1) from the EVSE's modem:
    6 undocumented octets (the last a state code, 1 A / 3 B / 5 C as real captures show),
    duty cycle (%), frequency (Hz), pilot voltage (mV), little-endian
    (dissectors/homeplug.py VS_CP_STATE_IND_ST), padded to the 60-octet minimum frame."""
    code = 1 if volts > 10.5 else 3 if volts > 7.5 else 5
    body = bytes(5) + bytes([code]) + struct.pack("<Bhh", duty_pct, hz, round(volts * 1000))
    mme = struct.pack("<BHH", 0x01, 0xA22E, 0) + bytes.fromhex("0080e1") + body
    return _eth(_HOMEPLUG_HOST, CP_MODEM_MAC, mme.ljust(46, b"\x00"))


def scs_diag(state: str, cp_volts: float, pp_ohm: int, contactor: str, volts: float, amps: float) -> bytes:
    """An MS_SCS_DIAG.IND (dSPACE SCS, MMTYPE 0x8002, OUI 64:4D:70): the test system's
    diagnostic text with its JSON (dissectors/homeplug.py MS_SCS_DIAG_IND)."""
    j = json.dumps({"PP Resistor [Ohm]": pp_ohm, "Power Type": "AC", "HV Contactor": contactor,
                    "Target Current [A]": 0, "Present Current [A]": amps, "Target Voltage [V]": 0,
                    "Present Voltage [V]": volts, "Battery Voltage [V]": 0, "Plug Type": "Type_2",
                    "CP State": f"State_{state}", "CP/CE Voltage [V]": cp_volts})
    text = f"dSPACE SCS Diag|dsV2Gshark|v1|SCS Diagnostic|{j}".encode()
    mme = struct.pack("<BHH", 0x01, 0x8002, 0) + bytes.fromhex("644d70") + text
    return _eth("ff:ff:ff:ff:ff:ff", CP_TESTER_MAC, mme)


def basic_charging_capture(start: float = 1_767_225_600.0) -> bytes:
    """Basic AC charging (IEC 61851-1), the control pilot only — no SLAC, no V2G: plug-in,
    PWM 22 % (13.2 A), the EV charges (C2), the EVSE lowers the PWM to 16 % (9.6 A), the EV
    pauses (C2 → B2) and resumes, the EVSE switches the PWM off (C2 → C1), unplug; the test
    system's readings carry the PP (1.5 kΩ: 13 A cable), the contactor and its meter, one
    reading between the voltage bands on the B → C edge and one in the middle of C2 (noise)
    (:data:`BASIC_PILOT`)."""
    buf = io.BytesIO()
    w = PcapngWriter(buf, application="ccs-analyzer tests")
    w.add_interface(LINKTYPE_ETHERNET, name="eth0")
    for t, who, v in BASIC_PILOT:
        w.write(start + t, cp_state_st(*v) if who == "st" else scs_diag(*v))
    return buf.getvalue()
