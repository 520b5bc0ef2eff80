"""What the response code rule modules share: the status codes and wording."""
from __future__ import annotations

from ..helpers import body
from ..state_machines import qualifier

#: DC_EVSEStatusCode values that report an EVSE fault.
FAULT_STATUS = {
    "EVSE_EmergencyShutdown": "the EVSE shut down in an emergency (a fault it detected)",
    "EVSE_Malfunction": "the EVSE reports a malfunction",
    "EVSE_UtilityInterruptEvent": "the utility interrupted the supply (a demand-response event)",
}


def _stop_reaction(protocol, e) -> bool:
    """Whether an EV request stops charging: PowerDeliveryReq Stop (DIN ReadyToChargeState
    false; -20 also Standby), SessionStopReq, WeldingDetectionReq."""
    n = e.name
    if n in ("SessionStopReq", "WeldingDetectionReq", "DC_WeldingDetectionReq"):
        return True
    if n == "PowerDeliveryReq":
        return qualifier(protocol, "PowerDelivery", body(e)) in ("Stop", "Standby")
    return False


def _end_text(ctx, session) -> str:
    ended = ctx.summaries.get(session.id, {}).get("ended", {})
    how = ended.get("how")
    return f"{how} (frame {ended.get('frame')})" if how else "the session ended"
