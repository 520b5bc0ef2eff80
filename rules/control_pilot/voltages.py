"""Control pilot rules on pilot and contactor voltages: CPL008, CPL011."""
from __future__ import annotations

from .common import _CpRule, _cp


class PilotNoise(_CpRule):
    """Pilot voltage outside the IEC 61851-1 bands (noise).

    What it checks: a reading whose pilot voltage lies between the state bands (12 / 9 /
    6 / 3 / 0 / −12 V ± 1 V) that is not part of a transition — the readings on both sides
    are in the same state — or such readings in a row for longer than ``persist_s``.
    A single reading between two different states is the edge itself and is not judged.
    Why it matters: the EVSE and the EV decide on the pilot's level; a pilot that drifts
    out of its band is read as another state (a false B or an error) and, on the same wire,
    noise that disturbs the pilot disturbs the PLC too (ChargeX UC2 101 / 156 / 237).
    Fix: check the pilot circuit (the EV's resistor and diode, the EVSE's ±12 V source and
    its 1 kΩ), the cable and its screening, and what else is coupled onto CP / PE.
    Source: IEC 61851-1 Table A.4 (pilot voltage ranges); dsV2Gshark get_cp_state (±1 V).

    Example:

        #7 VS_CP_STATE.IND(ST/IoTecha) State=A-B DutyCycle_pct=5 Voltage_V=10.5
        … (5 more)
        #245 VS_CP_STATE.IND(ST/IoTecha) State=C-D DutyCycle_pct=5 Voltage_V=4.5
        #246 MS_SCS_DIAG.IND(dSPACE) CP State=State_C2 HV Contactor=Closed Present Voltage [V]=379.1
    """

    code = "CPL008"
    title = "Pilot voltage outside the IEC 61851-1 bands"
    severity = "warning"
    culprit = "link"
    requirement = "IEC 61851-1 Table A.4"
    failure_modes = ("UC2 100-103", "UC2 156-158", "UC2 237-239")
    params = {"persist_s": 1.0}
    kinds = ("cp-signal",)
    explains = ("slac-failed", "connection-reset")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None or not v.out_of_band:
            return
        s = v.samples
        noise = []
        for i, x in enumerate(s):
            if x.state != "?":
                continue
            before = next((y.letter for y in reversed(s[:i]) if y.state not in (None, "?")), None)
            after = next((y.letter for y in s[i + 1:] if y.state not in (None, "?")), None)
            j = i
            while j + 1 < len(s) and s[j + 1].state == "?":
                j += 1
            lasting = s[j].time - x.time > self.p["persist_s"]
            if (before is not None and before == after) or lasting:
                noise.append(x)
        if not noise:
            return
        volts = [x.voltage_V for x in noise if x.voltage_V is not None]
        yield self.finding(
            session, [x.frame for x in noise[:20]],
            f"{len(noise)} control-pilot reading(s) outside every state band (e.g. "
            f"{noise[0].voltage_V:g} V at frame {noise[0].frame}) that are not a state change.",
            time=noise[0].time, measured=volts[0] if volts else None, unit="V",
            evidence={"voltages_V": volts[:20], "count": len(noise)})


class ContactorVoltageMismatch(_CpRule):
    """A contactor closed while the voltage difference exceeds the PreCharge tolerance.

    What it checks: where a test system reports its HV contactor together with the present
    voltage at the connector and the battery voltage (dSPACE SCS "HV Contactor",
    "Present Voltage [V]", "Battery Voltage [V]"; a battery voltage of 0 means "not
    reported"), the contactor closes only when |present − battery| ≤ ``tolerance_v``.
    Why it matters: PreCharge exists to bring the EVSE's output to the battery's voltage
    before the EV closes its contactor; closing across a larger difference drives an inrush
    current that welds contactors and trips the EVSE (IEC 61851-23 CC.5.2: ≤ 2 A inrush).
    Fix: EV — close the contactor only when PreCharge has brought the output within the
    tolerance of the battery voltage (check the EV's voltage measurement and its PreCharge
    end criterion).
    Source: IEC 61851-23 CC.5.2; PROTOCOL_FACTS §4 "PreCharge end criterion" (20 V, ⚠ no
    normative number found).

    Example:

        #124 MS_SCS_DIAG.IND(dSPACE) CP State=State_C2 HV Contactor=Open Present Voltage [V]=162.1
        #137 MS_SCS_DIAG.IND(dSPACE) CP State=State_C2 HV Contactor=Closed Present Voltage [V]=270.6
    """

    code = "CPL011"
    title = "Contactor closed with the voltage difference above the PreCharge tolerance"
    severity = "error"
    culprit = "EVCC"
    requirement = "IEC 61851-23 CC.5.2"
    params = {"tolerance_v": 20.0}
    kinds = ("contactor-fault",)
    explains = ("ev-error", "evse-stop", "evse-abort", "ev-abort", "connection-reset")

    def check(self, session, ctx):
        v = _cp(session, ctx)
        if v is None:
            return
        prev = None
        for x in v.contactor():
            if (x.contactor == "closed" and prev is not None and prev.contactor == "open"
                    and x.battery_voltage_V and x.present_voltage_V is not None):
                diff = abs(x.present_voltage_V - x.battery_voltage_V)
                if diff > self.p["tolerance_v"]:
                    yield self.finding(
                        session, [prev.frame, x.frame],
                        f"The contactor closed (frame {x.frame}) at {x.present_voltage_V:g} V "
                        f"against a battery at {x.battery_voltage_V:g} V: {diff:.1f} V apart, "
                        f"more than the {self.p['tolerance_v']:g} V PreCharge tolerance.",
                        time=x.time, measured=round(diff, 1), limit=self.p["tolerance_v"],
                        unit="V")
                    return
            prev = x
