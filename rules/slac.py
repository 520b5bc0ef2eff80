"""SLAC matching (ISO 15118-3)."""
from __future__ import annotations

from .base import Rule


class SlacIncomplete(Rule):
    """SLAC did not complete (no CM_SLAC_MATCH.CNF).

    What it checks: a session that began SLAC (CM_SLAC_PARM.REQ / .CNF) reaches
    CM_SLAC_MATCH.CNF.
    Why it matters: without a match the EV and the EVSE never share a logical network: no SDP,
    no charging.
    Fix: see where it stopped: no CM_SLAC_PARM.CNF → EVSE not listening; no
    CM_START_ATTEN_CHAR / CM_MNBC_SOUND after the CNF → the EV gave up (timing, TIME_OUT or
    NUM_SOUNDS it dislikes); no CM_ATTEN_CHAR.IND → EVSE sounding failed.
    Source: ISO 15118-3 §9 and Annex A (matching sequence); PROTOCOL_FACTS §2.3, §2.7.
    """

    code = "SLC001"
    title = "SLAC matching did not complete"
    severity = "error"
    category = "slac"
    culprit = "unknown"
    protocols = ("SLAC",)
    failure_modes = ("UC2 51", "UC2 52", "UC2 54")

    def check(self, session, ctx):
        slac = [e for e in session.events if e.layer == "slac" and e.protocol == "SLAC"]
        if not slac or any(e.name == "CM_SLAC_MATCH.CNF" for e in slac):
            return
        if session.progressed:
            return      # listen-mode captures: SDP/TCP seen, so the match happened unseen
        names = [e.name for e in slac]
        if "CM_SLAC_PARM.CNF" not in names:
            culprit, why = "SECC", "no CM_SLAC_PARM.CNF: the EVSE never answered"
        elif "CM_START_ATTEN_CHAR.IND" not in names:
            culprit, why = "EVCC", "the EV never started sounding after CM_SLAC_PARM.CNF"
        elif "CM_ATTEN_CHAR.IND" not in names:
            culprit, why = "SECC", "no CM_ATTEN_CHAR.IND: the EVSE did not report attenuation"
        elif "CM_SLAC_MATCH.REQ" not in names:
            culprit, why = "EVCC", "the EV did not request a match after CM_ATTEN_CHAR"
        else:
            culprit, why = "SECC", "CM_SLAC_MATCH.REQ was not confirmed"
        yield self.finding(session, [slac[0].frame, slac[-1].frame],
                           f"SLAC stopped after {slac[-1].name} (frame {slac[-1].frame}): {why}; "
                           f"{names.count('CM_SLAC_PARM.REQ')} CM_SLAC_PARM.REQ sent",
                           time=slac[0].time, culprit=culprit,
                           evidence={"messages": dict((n, names.count(n)) for n in dict.fromkeys(names))})
