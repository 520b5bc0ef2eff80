"""What the sequence rule modules share: steps of the sequence walk and wording."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.walk import Step

_STOP_CODES = ("EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction",
               "EVSE_UtilityInterruptEvent")


def _req_label(step: Step) -> str:
    return f"{step.req.name}({step.qual})" if step.qual and step.base == "PowerDelivery" else step.req.name
