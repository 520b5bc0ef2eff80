"""What the SLAC rule modules share: the base class, culprits, the RunID check, the timer defaults."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.slac import EV_SENDS, EVSE_SENDS

from ..base import Rule
from ..slac_timers import SLAC_TIMERS

SLAC_FAILURE_MODES = ("UC2 51", "UC2 52", "UC2 54", "UC2 55", "UC2 56")
#: The standard's value of each ISO 15118-3 parameter (rules/slac_timers.py): the defaults of
#: the rules' parameters.
_STD = {name: p.value for name, p in SLAC_TIMERS.items()}


def _culprit(name: str) -> str:
    return "EVCC" if name in EV_SENDS else "SECC" if name in EVSE_SENDS else "unknown"


class _SlacRule(Rule):
    """Shared class facts of the SLAC rules."""

    category = "slac"
    protocols = ("SLAC",)
    failure_modes = SLAC_FAILURE_MODES
