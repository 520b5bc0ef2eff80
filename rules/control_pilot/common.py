"""What the control pilot rule modules share: the base class, the CP view, loop requests, wording."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.control_pilot import CpView, cp_view

from ..base import Rule

#: Slack (s) for the reporting delay of a CP reading (the dSPACE SCS reports every ~250 ms,
#: the modems on change; dsV2Gshark captures show up to ~0.5 s between an edge and the
#: test system's report).
REPORT_LAG_S = 0.75


def _cp(session, ctx) -> CpView | None:
    v = cp_view(session, ctx)
    return v if v.present else None


def _slac_requests(session) -> list:
    return [e for e in session.events if e.name == "CM_SLAC_PARM.REQ"]


class _CpRule(Rule):
    category = "control-pilot"
    horizon_s = 10.0

    def finding(self, session, frames, synopsis: str, **kw):
        """:meth:`Rule.finding`, the synopsis without a closing full stop (the project's
        style: the explanation adds its own punctuation)."""
        return super().finding(session, frames, synopsis.rstrip("."), **kw)
