"""What the timing rule modules share: timer limits and phases from the sourced tables, wording."""
from __future__ import annotations

from ..timing_tables import DIN, ISO2, ISO20, Timer

_PROTOCOLS = (DIN, ISO2, ISO20)
_EV, _EVSE = "EV->EVSE", "EVSE->EV"


def _phase(param: dict | None, table: dict, protocol: str) -> tuple[float | None, Timer | None]:
    timer = table.get(protocol)
    per = param or {}
    if protocol in per:
        return per[protocol], timer
    return (timer.seconds if timer else None), timer


def _severity(timer: Timer | None, measured: float, limit: float) -> str:
    """error for a ✅ timer (or one exceeded beyond every source's value), else warning."""
    return "error" if timer is not None and timer.certain_above(measured, limit) else "warning"


def _timer_facts(timer: Timer | None, limit: float | None) -> dict:
    if timer is None:
        return {}
    d = {"timer": timer.name, "limit_s": limit, "requirement": timer.requirement,
         "sources": timer.sources, "sure": timer.sure}
    if timer.alt is not None:
        d["other_sources_s"] = timer.alt
    if timer.note:
        d["note"] = timer.note
    return d


def _g(x: float) -> str:
    return f"{x:g}"
