"""SECC Discovery Protocol (ISO 15118-2 §7.10.1)."""
from __future__ import annotations

from .base import Rule


class SdpUnanswered(Rule):
    """SDP requests got no response.

    What it checks: every SDP request is followed by an SDP response.
    Why it matters: without the SECC's address and port the EV cannot open the V2G
    connection; after 50 requests it gives up ([V2G2-161]).
    Fix (SECC): answer on UDP 15118 from the link-local address; check the PLC link (the
    SECC may sit in another AVLN when SLAC failed silently).
    Source: ISO 15118-2 §7.10.1, [V2G2-159] (≥ 250 ms between requests), [V2G2-161]
    (at most 50 requests); PROTOCOL_FACTS §1.5.
    """

    code = "SDP001"
    title = "SDP request without response"
    severity = "error"
    category = "sdp"
    culprit = "SECC"
    failure_modes = ("UC2 100",)

    def check(self, session, ctx):
        reqs = [e for e in session.events if e.layer == "sdp" and e.direction == "EV->EVSE"]
        res = [e for e in session.events if e.layer == "sdp" and e.direction == "EVSE->EV"]
        if reqs and not res:
            yield self.finding(session, [reqs[0].frame, reqs[-1].frame],
                               f"{len(reqs)} SDP request(s) (frames {reqs[0].frame}-{reqs[-1].frame}) "
                               "never answered", time=reqs[0].time, measured=len(reqs))
