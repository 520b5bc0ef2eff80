"""Captures the report tests (and the documentation's screenshots) make with the project's own
session simulator (ccs_analyzer.samples): a failed DIN DC session (PreCharge never reaches the
target), an ISO 15118-20 session whose identities carry markup, a long charging loop."""
from __future__ import annotations

import sys

from ccs_analyzer.samples import parse_scenario, simulate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Markup in strings that come from the capture: must show as text, never run.
EVSEID_MARKUP = "</script><script>alert(1)</script>"
EVCCID_MARKUP = "<img src=x onerror=alert(1)>"


def _sim(name: str, toml: str) -> bytes:
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
