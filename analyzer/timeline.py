"""The timeline: one row per event, physical values as SI floats, as a pandas DataFrame.

Columns (always present, in this order): ``session``, ``frame``, ``time`` (epoch s), ``t_s``
(seconds since the session's first event), ``layer``, ``direction``, ``name``, ``protocol``,
``ResponseCode``, ``EVSEProcessing``, ``EVSEStatusCode``, ``EVSEIsolationStatus``,
``EVErrorCode``, ``SoC_pct`` (EVRESSSOC / PresentSOC, %), ``error``; then the physical
values found in the messages, named ``<element>_<unit>`` (``EVTargetVoltage_V``,
``EVSEPresentCurrent_A``, ``EVSEMaximumPowerLimit_W``, ``RemainingTimeToFullSoC_s`` …), and
``power_W`` (EVSEPresentVoltage × EVSEPresentCurrent where both are present) and
``energy_Wh`` (cumulative energy of the session's charge loop). Control-pilot readings
(vendor MMEs, analyzer/control_pilot.py) add ``CPState`` (IEC 61851-1 state, ``"B2"``),
``CPVoltage_V``, ``DutyCycle_pct``, ``PWMFrequency_Hz``, ``PWMCurrent_A`` (the current the
duty cycle allows), ``PPResistance_Ohm``, ``CableRating_A``, ``Contactor``,
``MeasuredVoltage_V`` / ``MeasuredCurrent_A`` (the test system's meter) and
``BatteryVoltage_V``. SLAC attenuation profiles (CM_ATTEN_CHAR.IND, CM_ATTEN_PROFILE.IND,
the Qualcomm modem's VS_ATTENUATION_CHARACTERISTICS.IND) add ``Attenuation_dB`` (the mean
of the carrier groups' attenuation, ISO 15118-3 Annex A.9).

Sources of the value semantics: analyzer/physical.py.
"""
from __future__ import annotations

from .control_pilot import cp_sample
from .physical import event_facts

BASE_COLUMNS = ["session", "frame", "time", "t_s", "layer", "direction", "name", "protocol",
                "ResponseCode", "EVSEProcessing", "EVSEStatusCode", "EVSEIsolationStatus",
                "EVErrorCode", "SoC_pct", "error"]

#: Physical columns shown first in tables (when present).
KEY_PHYSICAL = ["EVTargetVoltage_V", "EVSEPresentVoltage_V", "EVTargetCurrent_A",
                "EVSEPresentCurrent_A", "EVSEMaximumVoltageLimit_V", "EVSEMaximumCurrentLimit_A",
                "EVSEMaximumPowerLimit_W", "power_W", "energy_Wh"]

#: Control-pilot columns shown in tables (when present; analyzer/control_pilot.py).
KEY_CONTROL_PILOT = ["CPState", "CPVoltage_V", "DutyCycle_pct", "PWMCurrent_A", "Contactor",
                     "MeasuredVoltage_V", "MeasuredCurrent_A"]


_ROW_FACTS = ("ResponseCode", "EVSEProcessing", "EVSEStatusCode", "EVSEIsolationStatus",
              "EVErrorCode")


def event_row(session_id: str | None, t0: float | None, e) -> dict:
    """One timeline row (dict) for an event."""
    row = {"session": session_id, "frame": e.frame, "time": e.time,
           "t_s": (e.time - t0) if t0 is not None else None, "layer": e.layer,
           "direction": e.direction, "name": e.name, "protocol": e.protocol, "error": e.error}
    if e.layer == "v2gtp" and e.message is not None:
        facts = event_facts(e)
        for k, v in facts.items():
            if k in _ROW_FACTS or k.endswith(("_V", "_A", "_W", "_Wh", "_s", "_pct")):
                row[k] = v
    elif e.layer == "slac":
        smp = cp_sample(e)
        if smp is not None:
            row.update(smp.row())
        elif isinstance(e.message, dict) and isinstance(e.message.get("AAG_mean_dB"), (int, float)):
            row["Attenuation_dB"] = e.message["AAG_mean_dB"]
    return row


def timeline_rows(sessions, capture_events=()) -> list[dict]:
    """Rows of every session's events (sessions in order), then capture-level events."""
    return list(iter_timeline_rows(sessions, capture_events))


def iter_timeline_rows(sessions, capture_events=()):
    """:func:`timeline_rows` one row at a time (sessions read one by one: a spooled
    analysis, analyzer/spool.py, stays in the memory of one segment)."""
    for s in sessions:
        t0 = s.events[0].time if s.events else None
        energy = 0.0
        prev = None
        for e in s.events:
            r = event_row(s.id, t0, e)
            p = r.get("power_W")
            if p is not None and e.name.endswith("Res") and ("CurrentDemand" in e.name
                                                             or "ChargeLoop" in e.name):
                if prev is not None and 0 < e.time - prev[0] < 60:
                    energy += prev[1] * (e.time - prev[0]) / 3600.0
                prev = (e.time, p)
                r["energy_Wh"] = energy
            yield r
    for e in capture_events:
        yield event_row(None, None, e)


def timeline_frame(sessions, capture_events=()):
    """The timeline as a pandas DataFrame (see module docstring for the columns)."""
    import pandas as pd

    rows = timeline_rows(sessions, capture_events)
    df = pd.DataFrame.from_records(rows)
    cols = list(BASE_COLUMNS)
    extra = [c for c in df.columns if c not in cols]
    phys_first = [c for c in KEY_PHYSICAL if c in extra]
    rest = sorted(c for c in extra if c not in phys_first)
    for c in cols:
        if c not in df.columns:
            df[c] = None
    return df[cols + phys_first + rest]
