"""Where a long capture may be cut: segments that are judged and let go one by one.

A capture is analysed as a stream (analyzer/analysis.py): the session builder takes the
events of a *segment*; when the segment is over its sessions are finished, judged (every
rule, outcome, causes, verdict) and handed on — to the report spool, not kept in memory —
and a fresh builder takes the next segment. Memory then depends on the longest segment, not
on the length of the capture.

A cut is made before an event only where no session of the segment can receive anything
more, by the rules of analyzer/sessions.py:

* an inactivity gap: no session activity (SLAC with a RunID, SDP, TCP / V2G) for more than
  :data:`~.sessions.RETRY_GAP_S` = V2G_EVCC_CommunicationSetup_Timeout (20 s, ISO 15118-2
  [V2G2-446..448] Table 111) when every session has ended (SessionStop) or never got past
  SLAC: nothing later can be a retry of what came before, an unanswered request is
  resolved, a new CM_SLAC_PARM.REQ starts a new session; for more than
  :data:`SEQUENCE_TIMEOUT_S` (60 s) when a session got past SLAC and did not end (an EV
  slow to open its connection after SDP is still in its communication setup);
* every TCP connection closed (RST, or FIN both ways), or silent for longer than
  V2G_SECC_Sequence_Timeout (60 s, ISO 15118-2 [V2G2-443] Table 109; rules/timing_tables.py
  ``SEQ_TIMEOUT``), after which the SECC has given the session up (a connection still
  waiting for its SessionSetupReq is bound to the session before it, as the builder does
  when the next session starts);
* no session paused (SessionStopReq ChargingSession = Pause): its resume may come at any time
  with its SessionID ([V2G2-463]);
* the control pilot not showing an EV plugged in (IEC 61851-1 states B, C, D): a plug-in
  cycle is one unit (its pause and resume, its basic charging) — unless the next activity
  is another EV's CM_SLAC_PARM.REQ or SDP request (an EV MAC none of the segment's sessions
  has): the plugged-in EV has left, whether or not the capture saw the unplug;
* a session of the segment reached SDP or V2G, so that another charger's SLAC heard over the
  powerline is told from this charger's (crosstalk, analyzer/sessions.py) — the chargers seen
  in earlier segments count too.

A segment that grows beyond :data:`MAX_SEGMENT_EVENTS` events is cut at its next inactivity
gap even when a session is paused, the pilot shows a plugged-in EV or nobody reached SDP, so
that memory stays bounded; what spans that cut is then judged in two parts.

Cross-session views of the rules (a SECC's namespaces negotiated elsewhere, SessionIDs
reused, the previous session of the EV) see the sessions of the segment. A capture without
such gaps is one segment. A capture smaller than :data:`WHOLE_BELOW_BYTES` is always one
segment (``segments="auto"``): its memory is small, and its cross-session views see the
whole capture.
"""
from __future__ import annotations

from ccs_analyzer.dissectors.events import EV_TO_EVSE, TCP_FIN, TCP_RST, Event
from ccs_analyzer.rules.timing_tables import ISO2, SEQ_TIMEOUT

from .sessions import RETRY_GAP_S, SessionBuilder

#: V2G_SECC_Sequence_Timeout (s): a connection silent this long no longer holds a session
#: open (ISO 15118-2 [V2G2-443] Table 109, the same 60 s in DIN 70121 and ISO 15118-20
#: Table 215; rules/timing_tables.py).
SEQUENCE_TIMEOUT_S = SEQ_TIMEOUT[ISO2]["*"].seconds

#: A segment longer than this (events) is cut at its next inactivity gap whatever its
#: sessions' state (module docstring): some 40 MiB of events with their decoded messages.
MAX_SEGMENT_EVENTS = 25_000

#: Captures smaller than this (bytes) are analysed as one segment with ``segments="auto"``.
WHOLE_BELOW_BYTES = 16 * 2**20

#: A segment with this many sessions and none that reached SDP / V2G is cut at its next gap.
MAX_UNSERVED_SESSIONS = 50


def cutter_for(segments: str, size: int) -> "SegmentCutter":
    """The cutter of a capture of ``size`` bytes: ``segments`` "auto" (cut captures of
    :data:`WHOLE_BELOW_BYTES` and more), "always" or "never". Raises ValueError for another
    word."""
    if segments not in ("auto", "always", "never"):
        raise ValueError(f"segments must be auto, always or never, not {segments!r}")
    if segments == "never" or (segments == "auto" and size < WHOLE_BELOW_BYTES):
        return SegmentCutter(quiet_s=float("inf"))
    return SegmentCutter()


class SegmentCutter:
    """Follows the events given to a :class:`~.sessions.SessionBuilder` (:meth:`note`) and
    says whether the segment may be cut before the next one (:meth:`cut_before`; module
    docstring). ``quiet_s`` (s): the inactivity gap that allows a cut; ``max_events``: the
    segment length beyond which sessions' states no longer hold a cut back."""

    def __init__(self, quiet_s: float = RETRY_GAP_S, max_events: int = MAX_SEGMENT_EVENTS):
        self.quiet_s = quiet_s
        self.max_events = max_events
        self.events = 0                  # events of the current segment
        self.t_activity: float | None = None
        self._conns: dict[int, list] = {}   # conn → [last time, closed, FIN directions]

    def note(self, ev: Event) -> None:
        """Take an event the builder has just been given."""
        self.events += 1
        t = ev.time
        if ev.conn is not None:
            st = self._conns.get(ev.conn)
            if st is None:
                st = self._conns[ev.conn] = [t, False, set()]
            elif t > st[0]:
                st[0] = t
            if ev.layer == "tcp":
                if ev.name == TCP_RST:
                    st[1] = True
                elif ev.name == TCP_FIN:
                    st[2].add(ev.direction)
                    st[1] = st[1] or len(st[2]) == 2
        if (self.t_activity is None or t > self.t_activity) and _activity(ev):
            self.t_activity = t

    def cut_before(self, ev: Event, builder: SessionBuilder) -> bool:
        """Whether the segment may end before ``ev`` (module docstring)."""
        if (self.t_activity is None or ev.time - self.t_activity <= self.quiet_s
                or not builder.sessions or not _activity(ev)):
            return False
        if (ev.time - self.t_activity <= SEQUENCE_TIMEOUT_S
                and any(s.progressed and not s.ended for s in builder.sessions)):
            return False
        if any(not closed and ev.time - t <= SEQUENCE_TIMEOUT_S
               for t, closed, _ in self._conns.values()):
            return False
        if self.events >= self.max_events:
            return True
        if any(s.paused for s in builder.sessions):
            return False
        if builder.plugged_in_now() and not _another_ev(ev, builder):
            return False
        if not builder.served() and len(builder.sessions) < MAX_UNSERVED_SESSIONS:
            return False
        return True

    @property
    def streams(self) -> bool:
        """Whether this cutter may cut at all (a streamed capture; ``cutter_for``)."""
        return self.quiet_s != float("inf")

    def connections(self) -> list[int]:
        """The TCP connections the segment has seen (ids)."""
        return list(self._conns)

    def cut(self) -> None:
        """The segment was cut: start counting the next one."""
        self.events = 0
        self._conns = {c: st for c, st in self._conns.items() if not st[1]}


def _another_ev(ev: Event, builder: SessionBuilder) -> bool:
    """``ev`` is an EV's first request (CM_SLAC_PARM.REQ, SDP request) from an EV MAC that no
    session of the segment has."""
    if ev.layer == "slac" and ev.name == "CM_SLAC_PARM.REQ":
        mac = ev.src
    elif ev.layer == "sdp" and ev.direction == EV_TO_EVSE:
        mac = ev.info.get("src_mac")
    else:
        return False
    return bool(mac) and all(s.ev_mac != mac for s in builder.sessions)


def _activity(ev: Event) -> bool:
    """Session activity (what the builder's retry and join rules look at): SLAC with a
    RunID, SDP, TCP and what it carries — not HomePlug management messages, control pilot
    readings or capture-level events."""
    if ev.layer == "slac":
        return isinstance(ev.message, dict) and bool(ev.message.get("RunID"))
    return ev.layer == "sdp" or ev.conn is not None
