"""Charging sessions rebuilt from the dissectors' events: a session is one plug-in attempt.

A session groups what belongs to one charging session (DESIGN.md "Events, sessions,
timeline"): the SLAC run(s) of one EV, its SDP exchange, the TCP / TLS connection(s) and the
V2G SessionID — across pause and resume (ISO 15118-2 [V2G2-463]: a SessionSetupReq that
offers the paused session's SessionID and gets OK_OldSessionJoined continues that session).
Segmentation rules, applied per EV (EV MAC address where the capture shows it):

* SLAC: a CM_SLAC_PARM.REQ of an EV whose current session never got past SLAC is a retry
  within that session (C_EV_match_retry, ISO 15118-3 §A.9) — unless it comes more than
  TT_matching_repetition (:data:`TT_MATCHING_REPETITION_S`, [V2G3-A09-125]) after that
  session's last SLAC message: then it starts a new session, even with the same RunID
  (Tesla's fixed "TESLA EV"). Other messages carrying the RunID (other chargers' sounding
  too) join the run's session.
* SDP: a request joins the EV's current session unless that session has ended (SessionStop
  Terminate, or its V2G connection closed); a paused session (SessionStopReq
  ChargingSession = Pause) stays open for its resume. A session that follows a paused one
  while the control pilot shows the EV stayed plugged in is its resume, whatever SessionID
  the EV offered (one plug-in cycle, one charging session).
* TCP: a connection is bound at its SessionSetupReq: SessionID 0 (new session,
  PROTOCOL_FACTS §4.0) joins the current session if that has no SessionID yet, else starts a
  new one; a non-zero SessionID joins the session that issued it (resume). A connection
  without SessionSetupReq (handshake only, SYN answered by RST, capture started mid-session)
  joins the current session unless it has ended.
* Retries: once the EV's session got past SLAC (or has ended), what the EV tries next is
  held back until the SECC answers it. A new SLAC run answered by an EVSE (CM_SLAC_PARM.CNF,
  CM_ATTEN_CHAR.IND, CM_SLAC_MATCH.CNF, or the EV sounding, which it only does once
  answered), an answered SDP request, or a TCP connection carrying V2G is a new attempt (a
  new session, as above). CM_SLAC_PARM.REQs and SDP requests nobody answers, and TCP
  connections that the SECC refuses (RST answers the SYN), leaves unanswered or accepts
  without ever answering at the V2G level, are *retries* of the session they follow
  (``Session.retries``, ``Session.retry_connections``) when each comes within
  :data:`RETRY_GAP_S` of the session's previous activity; they do not end or restart it.
  Retries may also run *during* a session (an EV that keeps opening connections to a port
  nobody listens on while it charges).
* Leftovers: a TCP connection already open when the capture starts (no SYN seen) that
  carries only teardown — FIN / RST, retransmissions, at most a (retransmitted)
  SessionStopRes of a SessionID this capture never issued — is the tail of a session that
  ended before the capture: it neither starts nor joins a session. Its events stay capture
  events and :attr:`SessionBuilder.leftovers` describes it (rule CAP004 reports it).
* Control pilot: CP evidence (vendor MMEs, analyzer/control_pilot.py) marks plug-in cycles —
  from the first reading with an EV connected (B, C, D) to the next reading of state A (no
  EV); the readings of the :data:`CP_LEAD_S` before it are included (the plug-in is visible). A
  cycle's readings go to the sessions that run in it (each reading to the session whose span
  holds it, else the nearest one before it, else the first); a cycle in which no session runs
  is a session of its own: basic charging by the pilot alone, IEC 61851-1, without SLAC or
  V2G (``Session.basic``). Readings outside every cycle stay capture events.
* Crosstalk: when the capture holds a session that reached SDP / V2G with a known charger
  (the EVSE MAC it matched), a SLAC-only session of another EV that no EVSE answered, or
  that only other EVSEs answered or matched, is another charger's traffic heard over the
  powerline (``Session.crosstalk`` says why). Without such a session nothing is marked.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ccs_analyzer.dissectors.events import (EV_TO_EVSE, EVSE_TO_EV, TCP_BYTES_MISSING, TCP_FIN,
                                            TCP_OUT_OF_ORDER, TCP_RETRANSMISSION, TCP_RST,
                                            TCP_STARTED_BEFORE_CAPTURE, Event)
from ccs_analyzer.rules.slac_timers import SLAC_TIMERS
from ccs_analyzer.rules.timing_tables import COMM_SETUP_TIMEOUT, ISO2

from .control_pilot import CpSample, cp_sample, plug_state
from .physical import event_facts, find_first, header_of, message_body

#: TT_matching_repetition, ISO 15118-3 [V2G3-A09-125] (PROTOCOL_FACTS §2.4; rules/slac_timers.py):
#: the window (s) within which an EV repeats a failed matching. A CM_SLAC_PARM.REQ later than
#: this after the last SLAC message of a session that never got past SLAC starts a new
#: attempt; SLAC requests further apart than this are separate runs.
TT_MATCHING_REPETITION_S = SLAC_TIMERS["TT_matching_repetition"].value

#: The gap (s) within which unanswered activity of an EV still continues its previous session
#: as retries: V2G_EVCC_CommunicationSetup_Timeout = 20 s (ISO 15118-2 [V2G2-446..448] Table
#: 111, DIN 70121; PROTOCOL_FACTS §4; rules/timing_tables.py), the time an EV gives one
#: communication set-up (link up → SessionSetupRes) before it starts over.
RETRY_GAP_S = COMM_SETUP_TIMEOUT[ISO2].seconds

#: How long (s) before a plug-in the pilot readings still belong to its cycle (the state the
#: EV found: A, or an EVSE in E / F), so that the plug-in itself is visible.
CP_LEAD_S = 30.0

_SLAC_EV_SENDS = {"CM_SLAC_PARM.REQ", "CM_START_ATTEN_CHAR.IND", "CM_MNBC_SOUND.IND",
                  "CM_ATTEN_CHAR.RSP", "CM_VALIDATE.REQ", "CM_SLAC_MATCH.REQ"}
#: EVSE → EV SLAC messages that answer an EV's matching request (ISO 15118-3 §A.9).
_SLAC_EVSE_ANSWERS = {"CM_SLAC_PARM.CNF", "CM_ATTEN_CHAR.IND", "CM_VALIDATE.CNF",
                      "CM_SLAC_MATCH.CNF"}
#: TCP events a connection open before the capture may carry and still be only teardown.
_TEARDOWN_TCP = {TCP_STARTED_BEFORE_CAPTURE, TCP_FIN, TCP_RST, TCP_RETRANSMISSION,
                 TCP_OUT_OF_ORDER, TCP_BYTES_MISSING}
#: Phase order of the attempts' first steps (a new attempt moves forward through them).
_PHASE_RANK = {"slac": 0, "sdp": 1, "tcp": 2}


def _zero_id(sid) -> bool:
    return isinstance(sid, str) and (sid == "" or set(sid) <= {"0"})


@dataclass
class Session:
    """One charging session — one plug-in attempt (see module docstring).

    ``id`` ("S1", "S2" … in order of appearance); ``events``: all its events in frame
    order, the retries included; ``ev_mac`` / ``evse_mac`` (from SLAC or the Ethernet
    frames; ``evse_mac`` is the charger the EV matched, CM_SLAC_MATCH); ``run_ids`` (the EV's
    SLAC RunIDs, hex); ``connections`` (TCP connection ids, the retry connections included);
    ``session_ids`` (V2G SessionIDs, hex); flags that say how far it got (``has_sdp``,
    ``has_v2g``, ``setup_done``, ``ended``, ``paused``, ``resumed`` = resumptions).

    What the outcome logic needs to tell the session's own activity from the EV's retries:

    * ``retries``: the events that are retries, not the session's own activity (a subset of
      ``events``, frame order): CM_SLAC_PARM.REQs no EVSE answered, SDP requests no SECC
      answered, and every event of the retry connections — during the session or after it,
      each within :data:`RETRY_GAP_S` of the session's previous activity.
    * ``retry_connections``: the TCP connections (ids, a subset of ``connections``) the
      EV opened after its session had an answered V2G connection, that the SECC refused
      (RST answers the SYN), never answered (no SYN-ACK) or accepted without ever answering
      at the V2G / TLS level (e.g. a supportedAppProtocolReq left unanswered).
    * :meth:`own_events` (``events`` minus ``retries``) and :attr:`own_end_frame`: the frame
      where the session's own activity ended (its last own event, HomePlug management
      messages aside).
    * ``crosstalk``: None, or why this SLAC-only session is another charger's traffic heard
      over the powerline (an EV that is not this charger's, answered by no EVSE or only by
      other EVSEs than the charger of this capture's SDP / V2G sessions).
    * Leftovers of sessions that ended before the capture belong to no session: they are
      capture events, described by :attr:`SessionBuilder.leftovers` (``Analysis.leftovers``).

    :meth:`summary` computes what a report shows.
    """

    index: int
    ev_key: str | None = None
    ev_mac: str | None = None
    evse_mac: str | None = None
    events: list[Event] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    has_sdp: bool = False
    has_v2g: bool = False
    setup_done: bool = False
    ended: bool = False
    paused: bool = False
    resumed: int = 0
    retries: list[Event] = field(default_factory=list)
    retry_connections: list[int] = field(default_factory=list)
    crosstalk: str | None = None
    #: a plug-in cycle seen only on the control pilot: basic charging (IEC 61851-1), no SLAC
    #: or V2G (module docstring)
    basic: bool = False
    #: epoch s of the last event of the session's activity, retries included (HomePlug
    #: management messages without a RunID excluded): where retries chain on
    t_last: float | None = field(default=None, repr=False)
    #: epoch s of the last SLAC matching message (CM_SLAC_*, RunID) of the session
    t_slac: float | None = field(default=None, repr=False)
    #: True once an own connection carried a V2G (or TLS) message of the SECC
    answered: bool = field(default=False, repr=False)
    #: True once the session is judged and spooled to disk (analyzer/spool.py): views of it
    #: are built for the asker and not kept
    released: bool = field(default=False, repr=False)

    @property
    def id(self) -> str:
        return f"S{self.index + 1}"

    @property
    def progressed(self) -> bool:
        """Got past SLAC (SDP or TCP seen)."""
        return self.has_sdp or bool(self.connections)

    def v2g(self) -> list[Event]:
        """The session's V2GTP message events (decoded or not)."""
        return [e for e in self.events if e.layer == "v2gtp"]

    def own_events(self) -> list[Event]:
        """``events`` without the ``retries``: the session's own activity, frame order."""
        if not self.retries:
            return list(self.events)
        retry = {id(e) for e in self.retries}
        return [e for e in self.events if id(e) not in retry]

    @property
    def own_end_frame(self) -> int | None:
        """Frame (1-based) of the session's last own event that is not HomePlug management
        (CM_SET_KEY, CM_GET_KEY, vendor MMEs: protocol "HomePlug"): where its own activity
        ended and only retries (if any) follow. None for a session without such events."""
        own = [e.frame for e in self.own_events() if e.protocol != "HomePlug"]
        return max(own) if own else None

    def summary(self, connections: dict[int, dict] | None = None) -> dict:
        """What a report shows of the session (JSON-ready): identities, protocol, time span,
        last message, how it ended, maxima (V, A, W), energy (Wh), SoC, counts, retries."""
        return summarize(self, connections or {})


@dataclass
class _Tentative:
    """What an EV tried after its session got past SLAC or ended, not answered yet: runs of
    consecutive CM_SLAC_PARM.REQs (a SLAC run) or SDP requests, oldest first."""

    runs: list[list[Event]] = field(default_factory=list)

    @property
    def t_last(self) -> float:
        return self.runs[-1][-1].time

    def add(self, ev: Event) -> None:
        last = self.runs[-1] if self.runs else None
        if last is not None and last[0].layer == ev.layer and not (
                ev.layer == "slac" and ev.time - last[-1].time > TT_MATCHING_REPETITION_S):
            last.append(ev)
        else:
            self.runs.append([ev])

    def run_ids(self) -> set:
        return {(e.message or {}).get("RunID") for run in self.runs for e in run
                if e.layer == "slac" and isinstance(e.message, dict)}


class SessionBuilder:
    """Feeds on events in frame order (:meth:`add`) and returns sessions (:meth:`finish`).

    ``capture_events`` collects what belongs to no session (capture problems, disclosed key
    logs, HomePlug management traffic before any SLAC, non-V2G side channels, leftovers of
    sessions that ended before the capture). ``leftovers``: one dict per leftover connection
    — ``conn`` (id), ``frames`` (its event frames), ``first_frame`` / ``last_frame``,
    ``time`` (epoch s of its first event), ``what`` (the event names after its start),
    ``SessionID`` (of a stale SessionStopRes, hex, or None) and ``reason``.
    """

    def __init__(self, offset: int = 0, served_before: tuple = ()) -> None:
        #: sessions are numbered from ``offset`` (a later segment of a long capture,
        #: analyzer/segments.py); ``served_before``: (id, EV MAC, EVSE MAC) of the sessions of
        #: earlier segments that reached SDP / V2G (crosstalk is told by them too)
        self.offset = offset
        self.served_before = tuple(served_before)
        self.sessions: list[Session] = []
        self.capture_events: list[Event] = []
        self.leftovers: list[dict] = []
        self._current: dict[str | None, Session] = {}
        self._by_run: dict[tuple, Session] = {}       # (EV MAC, RunID) → session
        self._by_run_any: dict[str, Session] = {}     # RunID → last session using it
        self._cp: list[tuple[float, str]] = []        # (epoch s, "A" / "BCD" / "EF") per CP indication
        self._cp_events: list[tuple[Event, CpSample]] = []  # CP readings, placed at finish()
        self._conn_session: dict[int, Session] = {}
        self._conn_pending: dict[int, list[Event]] = {}
        self._conn_closed: set[int] = set()
        self._conn_other: set[int] = set()
        self._conn_leftover: dict[int, dict] = {}     # conn → its ``leftovers`` entry
        self._conn_retry: set[int] = set()
        self._by_sid: dict[str, Session] = {}
        self._ip_ev: dict[str, str] = {}      # EV IP → EV key
        self._tent: dict[str | None, _Tentative] = {}
        self._peers: dict[int, set] = {}              # id(session) → EVSE MACs answering its SLAC
        self._last: Session | None = None

    # ------------------------------------------------------------------ helpers
    def _new(self, key: str | None, flush: bool = True) -> Session:
        if flush:
            self._flush_pending()
        s = Session(self.offset + len(self.sessions), ev_key=key)
        self.sessions.append(s)
        self._current[key] = s
        self._last = s
        return s

    def _cur(self, key: str | None) -> Session | None:
        s = self._current.get(key)
        if s is None and key is not None:
            s = self._current.get(None)
            if s is not None and s.ev_key is None:
                # adopt the anonymous session now that the EV is known
                s.ev_key = key
                self._current[key] = s
                del self._current[None]
        if s is None and self._last is not None and (key is None or self._last.ev_key is None):
            s = self._last
        return s

    def _attach(self, s: Session, ev: Event, timed: bool = True) -> None:
        s.events.append(ev)
        if timed and (s.t_last is None or ev.time > s.t_last):
            s.t_last = ev.time
        self._last = s

    def _attach_retry(self, s: Session, ev: Event) -> None:
        self._attach(s, ev)
        s.retries.append(ev)
        if ev.layer == "slac":
            run = (ev.message or {}).get("RunID") if isinstance(ev.message, dict) else None
            if run:
                self._by_run[(ev.src, run)] = self._by_run_any[run] = s
                if run not in s.run_ids:
                    s.run_ids.append(run)

    def _follows(self, s: Session | None, t: float) -> bool:
        """Whether activity at ``t`` (epoch s) is close enough to ``s`` to be its retry: within
        :data:`RETRY_GAP_S` of its last activity, and the EV not unplugged in between."""
        return (s is not None and s.t_last is not None and t - s.t_last <= RETRY_GAP_S
                and self._plugged_in(s.t_last, t) is not False)

    def _plugged_in(self, t0: float, t1: float) -> bool | None:
        """Whether the EV stayed plugged in from ``t0`` to ``t1`` (epoch s), by the control
        pilot indications the capture holds (vendor MMEs such as VS_CP_STATE.IND, IEC 61851-1
        Annex A states): False when state A (no EV) was indicated at ``t0`` or in between,
        True when B, C or D (EV connected) was and A was not, None when the capture cannot
        tell (no indication; E / F alone — the EVSE's restart toggle, [V2G3-M06-05..09] —
        says nothing about the plug)."""
        states = [st for t, st in self._cp if t <= t0][-1:] + [st for t, st in self._cp
                                                               if t0 < t <= t1]
        if "A" in states:
            return False
        return True if "BCD" in states else None

    # ------------------------------------------------------------------ events
    def add(self, ev: Event) -> None:
        """Take the next event (events must come in frame order)."""
        if ev.layer == "slac":
            self._slac(ev)
        elif ev.layer == "sdp":
            self._sdp(ev)
        elif ev.conn is not None:
            self._conn(ev)
        else:
            self.capture_events.append(ev)

    # ---------------------------------------------------------------- SLAC
    @staticmethod
    def _slac_ev_mac(ev: Event, f: dict) -> str | None:
        ev_mac = None
        if ev.name in _SLAC_EV_SENDS or ev.direction == EV_TO_EVSE:
            ev_mac = ev.src
        elif ev.direction == EVSE_TO_EV:
            ev_mac = ev.dst if ev.dst and ev.dst != "ff:ff:ff:ff:ff:ff" else None
        if ev.name in ("CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF"):
            ev_mac = f.get("PEV_MAC") or ev_mac
        return ev_mac

    def _slac(self, ev: Event) -> None:
        f = ev.message if isinstance(ev.message, dict) else {}
        run = f.get("RunID")
        if not run:
            self._slac_other(ev)
            return
        key = self._slac_ev_mac(ev, f)
        if ev.name == "CM_SLAC_PARM.REQ":
            if self._join_pending(key, ev):
                return
            cur = self._cur(key)
            if cur is None:
                s = self._new(key)
            elif cur.progressed or cur.ended:
                self._hold(key, ev)           # held until an EVSE answers (module docstring)
                return
            elif (cur.t_slac is not None and ev.time - cur.t_slac > TT_MATCHING_REPETITION_S
                  and not self._plugged_in(cur.t_slac, ev.time)):
                s = self._new(key)            # [V2G3-A09-125]: a new matching attempt
            else:
                s = cur                       # a retry of a run that never got past SLAC
            self._place_slac(s, ev, key)
            return
        tent = self._tent.get(key)
        if tent is not None and (run in tent.run_ids() or self._run_session(key, run) is None):
            s = self._promote(key, "slac")    # answered (or the EV sounds): a new attempt
        else:
            s = self._run_session(key, run)
            if s is None:                     # an EVSE echoing a wrong RunID, a missed REQ
                cur = self._cur(key)
                s = self._new(key) if cur is None or cur.progressed or cur.ended else cur
        self._place_slac(s, ev, key)

    def _run_session(self, ev_mac: str | None, run: str) -> Session | None:
        """The session of the EV's RunID (by EV MAC; by RunID alone when the message names
        no EV, e.g. a broadcast CM_ATTEN_CHAR.IND)."""
        if ev_mac is None:
            return self._by_run_any.get(run)
        return self._by_run.get((ev_mac, run))

    def _place_slac(self, s: Session, ev: Event, ev_mac: str | None) -> None:
        """Attach a SLAC message carrying a RunID as the session's own activity."""
        f = ev.message if isinstance(ev.message, dict) else {}
        run = f.get("RunID")
        if ev.name in _SLAC_EV_SENDS:     # the EV's RunIDs (an EVSE may echo a wrong one)
            self._by_run[(ev_mac, run)] = self._by_run_any[run] = s
            if run not in s.run_ids:
                s.run_ids.append(run)
        self._attach(s, ev)
        if ev.protocol == "SLAC" and (s.t_slac is None or ev.time > s.t_slac):
            s.t_slac = ev.time
        if ev.name in _SLAC_EVSE_ANSWERS and ev.src:
            self._peers.setdefault(id(s), set()).add(ev.src)    # the EVSEs that answered it
        if ev_mac and not s.ev_mac:
            s.ev_mac = ev_mac
        if ev.name in ("CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF") and f.get("EVSE_MAC"):
            s.evse_mac = f.get("EVSE_MAC")
        self._current[s.ev_key] = s

    def _slac_other(self, ev: Event) -> None:
        """No RunID: key exchange with the own modem, vendor MMEs, attenuation profiles. CP
        readings are kept for :meth:`_place_cp` (they go by plug-in cycle, at the end)."""
        smp = cp_sample(ev)
        if smp is not None:
            ps = plug_state(smp)
            if ps is not None:
                self._cp.append((ev.time, ps))
            self._cp_events.append((ev, smp))
            return
        target = None
        for s in reversed(self.sessions):
            macs = {s.ev_mac, s.evse_mac} | self._peers.get(id(s), set())
            if ev.src in macs or ev.dst in macs:
                target = s
                break
        target = target or self._last
        if target is None:
            self.capture_events.append(ev)
        else:
            self._attach(target, ev, timed=False)

    # ---------------------------------------------------------------- SDP
    def _sdp(self, ev: Event) -> None:
        ev_ip = ev.src if ev.direction == EV_TO_EVSE else ev.dst
        ev_ip = ev_ip.rsplit(":", 1)[0] if ev_ip else None
        mac = ev.info.get("src_mac") if ev.direction == EV_TO_EVSE else ev.info.get("dst_mac")
        key = mac or (self._ip_ev.get(ev_ip) if ev_ip else None)
        if ev_ip and key:
            self._ip_ev[ev_ip] = key
        tent = self._tent.get(key)
        if ev.direction == EV_TO_EVSE:
            if self._join_pending(key, ev):
                return
            cur = self._cur(key)
            if cur is not None and cur.ended and not cur.paused:
                self._hold(key, ev)               # held until the SECC answers
                return
            if cur is None:
                cur = self._new(key)
        elif tent is not None:
            cur = self._promote(key, "sdp")       # an answered SDP request: a new attempt
        else:
            cur = self._cur(key) or self._new(key)
        self._place_sdp(cur, ev)

    def _place_sdp(self, s: Session, ev: Event) -> None:
        s.has_sdp = True
        mac = ev.info.get("src_mac") if ev.direction == EV_TO_EVSE else ev.info.get("dst_mac")
        if mac and not s.ev_mac:
            s.ev_mac = mac
        self._attach(s, ev)
        self._current[s.ev_key] = s

    # ---------------------------------------------------------------- tentative activity
    def _place(self, s: Session, ev: Event) -> None:
        if ev.layer == "slac":
            self._place_slac(s, ev, self._slac_ev_mac(ev, ev.message if isinstance(ev.message, dict)
                                                      else {}))
        else:
            self._place_sdp(s, ev)

    def _join_pending(self, key, ev: Event) -> bool:
        """An EV request while ``key`` has pending (unanswered) runs: within
        :data:`RETRY_GAP_S` of the last it joins them (True); later, the pending runs are
        resolved as unanswered first and the request is placed by the caller (False)."""
        tent = self._tent.get(key)
        if tent is None:
            return False
        if ev.time - tent.t_last <= RETRY_GAP_S:
            tent.add(ev)
            return True
        self._resolve(key)
        return False

    def _hold(self, key, ev: Event) -> None:
        """Start pending runs for ``key`` with ``ev`` (see :class:`_Tentative`)."""
        self._tent[key] = _Tentative()
        self._tent[key].add(ev)

    def _resolve(self, key) -> None:
        """Nobody answered what the EV tried (the pending runs of ``key``): each run is a
        retry of the session it follows when it comes within :data:`RETRY_GAP_S` of that
        session's activity, else an attempt of its own (a new session, as before)."""
        tent = self._tent.pop(key, None)
        if tent is None:
            return
        cur = self._cur(key)
        for run in tent.runs:
            if cur is not None and cur.progressed and self._follows(cur, run[0].time):
                for e in run:
                    self._attach_retry(cur, e)
            else:
                cur = self._new(key)
                for e in run:
                    self._place(cur, e)

    def _promote(self, key, phase: str) -> Session:
        """The SECC answered at ``phase`` ("slac", "sdp", "tcp"): a new attempt. The trailing
        pending runs that lead up to it (phases in order, one run per phase) start the new
        session; earlier runs are resolved as unanswered (:meth:`_resolve`)."""
        tent = self._tent.pop(key, None)
        taken: list[list[Event]] = []
        if tent is not None:
            limit, first = _PHASE_RANK[phase], True
            for run in reversed(tent.runs):
                r = _PHASE_RANK[run[0].layer]
                if r <= limit if first else r < limit:
                    taken.insert(0, run)
                    limit, first = r, False
                else:
                    break
            rest = tent.runs[:len(tent.runs) - len(taken)]
            if rest:
                self._tent[key] = _Tentative(rest)
                self._resolve(key)
        s = self._new(key, flush=phase != "tcp")   # a binding connection flushed the older ones
        for run in taken:
            for e in run:
                self._place(s, e)
        return s

    # ---------------------------------------------------------------- TCP
    def _conn(self, ev: Event) -> None:
        c = ev.conn
        if c in self._conn_other:
            self.capture_events.append(ev)
            return
        if c in self._conn_leftover:
            self.capture_events.append(ev)
            self._note_leftover(self._conn_leftover[c], ev)
            return
        s = self._conn_session.get(c)
        if s is not None:
            self._conn_attached(s, ev)
            return
        pend = self._conn_pending.setdefault(c, [])
        pend.append(ev)
        name = ev.name
        if ev.layer == "v2gtp" and ev.message is not None and name not in (
                "supportedAppProtocolReq", "supportedAppProtocolRes"):
            self._bind(c, ev)
        elif ev.layer == "tcp" and name == TCP_RST:
            self._bind(c, None)
        elif ev.layer == "tcp" and name == TCP_FIN:
            if c in self._conn_closed:
                self._bind(c, None)
            self._conn_closed.add(c)

    def _flush_pending(self, before: int | None = None) -> None:
        """Bind connections still waiting for a SessionSetupReq (older than ``before``):
        something else is happening now, so they belong to what was current until now."""
        for c in sorted(self._conn_pending):
            if (before is None or c < before) and c in self._conn_pending:
                self._bind(c, None)

    def _ev_key_of(self, ev: Event) -> str | None:
        ip = None
        if ev.src and ev.direction == EV_TO_EVSE:
            ip = ev.src.rsplit(":", 1)[0]
        elif ev.dst and ev.direction == EVSE_TO_EV:
            ip = ev.dst.rsplit(":", 1)[0]
        return self._ip_ev.get(ip) if ip else None

    def _leftover(self, c: int, pend: list[Event]) -> dict | None:
        """The leftover description of a connection, or None when it is not one: open before
        the capture (no SYN) and only teardown (module docstring)."""
        if not pend or pend[0].name != TCP_STARTED_BEFORE_CAPTURE:
            return None
        sid = None
        for e in pend:
            if e.layer == "tcp" and e.name in _TEARDOWN_TCP:
                continue
            if e.layer == "v2gtp" and e.message is not None and e.name == "SessionStopRes":
                sid = header_of(e.message).get("SessionID")
                if sid in self._by_sid:
                    return None          # the stop of a session of this capture
                continue
            return None
        left = {"conn": c, "frames": [], "first_frame": pend[0].frame, "last_frame": pend[0].frame,
                "time": pend[0].time, "what": [], "SessionID": sid, "reason": ""}
        for e in pend:
            self._note_leftover(left, e)
        return left

    @staticmethod
    def _note_leftover(left: dict, ev: Event) -> None:
        """Add an event of a leftover connection to its description (``leftovers``)."""
        if ev.frame not in left["frames"]:
            left["frames"] = sorted(left["frames"] + [ev.frame])
        left["last_frame"] = left["frames"][-1]
        if ev.name != TCP_STARTED_BEFORE_CAPTURE and ev.name not in left["what"]:
            left["what"].append(ev.name)
        left["reason"] = ("TCP connection open before the capture (no SYN) carrying only "
                          + (", ".join(left["what"]) or "its start")
                          + ": the tail of a session that ended before the capture")

    def _bind(self, c: int, ev: Event | None) -> None:
        self._flush_pending(before=c)
        pend = self._conn_pending.pop(c, [])
        if any(e.info.get("v2g") is False for e in pend) and not any(e.layer == "v2gtp" for e in pend):
            self._conn_other.add(c)              # not a V2G connection (e.g. a VAS side channel)
            self.capture_events.extend(pend)
            return
        left = self._leftover(c, pend)
        if left is not None:
            self._conn_leftover[c] = left
            self.leftovers.append(left)
            self.capture_events.extend(pend)
            return
        key = self._ev_key_of(pend[0]) if pend else None
        cur = self._cur(key)
        target = None
        retry = False
        if ev is not None and ev.name == "SessionSetupReq":
            sid = header_of(ev.message).get("SessionID")
            if _zero_id(sid):
                target = cur if (cur is not None and not cur.setup_done and not cur.ended) else None
            else:
                target = self._by_sid.get(sid)
                if target is not None:
                    target.resumed += 1
                    target.ended = False
                elif cur is not None and not cur.setup_done and not cur.ended:
                    target = cur
        else:
            live = cur is not None and not (cur.ended and not cur.paused)
            unanswered = not any(e.direction == EVSE_TO_EV and e.layer in ("v2gtp", "tls")
                                 for e in pend)
            if (ev is None and unanswered and cur is not None and cur.answered
                    and (live or (pend and self._follows(cur, pend[0].time)))):
                target, retry = cur, True        # the EV retries; the SECC does not listen
            elif live:
                target = cur
        if retry:
            self._conn_retry.add(c)
            target.retry_connections.append(c)
        elif target is None:
            target = self._promote(key, "tcp")
        self._conn_session[c] = target
        target.connections.append(c)
        if not retry:
            self._current[target.ev_key] = target
        for e in pend:
            self._conn_attached(target, e)

    def _conn_attached(self, s: Session, ev: Event) -> None:
        if ev.conn in self._conn_retry:
            self._attach_retry(s, ev)
            return
        self._attach(s, ev)
        if ev.direction == EVSE_TO_EV and ev.layer in ("v2gtp", "tls"):
            s.answered = True
        if ev.layer == "v2gtp":
            s.has_v2g = True
            if ev.message is None:
                return
            name = ev.name
            if name in ("SessionSetupRes",):
                sid = header_of(ev.message).get("SessionID")
                if sid and not _zero_id(sid):
                    if sid not in s.session_ids:
                        s.session_ids.append(sid)
                    self._by_sid[sid] = s
                    s.setup_done = True
                    s.paused = False
            elif name == "SessionStopReq":
                _, body = message_body(ev.message)
                if body.get("ChargingSession") == "Pause":
                    s.paused = True
            elif name == "SessionStopRes":
                s.ended = True
        elif ev.layer == "tcp" and ev.name in (TCP_RST, TCP_FIN) and s.setup_done:
            s.ended = True

    # ---------------------------------------------------------------- the end
    def finish(self) -> list[Session]:
        """Bind what is still pending, resolve what the EVs tried last (unanswered), mark
        crosstalk, and return the sessions, events in frame order."""
        self._flush_pending()
        for key in list(self._tent):
            self._resolve(key)
        mark_crosstalk(self.sessions, self.served_before)
        self._join_resumes()
        self._place_cp()
        for s in self.sessions:
            s.events.sort(key=lambda e: e.frame)
            s.retries.sort(key=lambda e: e.frame)
        # in order of appearance (a held-back attempt may be created after a later one)
        self.sessions.sort(key=lambda s: (s.events[0].frame if s.events else 0, s.index))
        for i, s in enumerate(self.sessions):
            s.index = self.offset + i
        return self.sessions

    # ---------------------------------------------------------------- state (segments)
    def plugged_in_now(self) -> bool:
        """Whether the last control pilot reading showed an EV plugged in (B, C, D)."""
        return bool(self._cp) and self._cp[-1][1] == "BCD"

    def served(self) -> bool:
        """Whether a session reached SDP (answered) or V2G: the charger of the capture is
        known (crosstalk, :func:`mark_crosstalk`)."""
        return any(_served(s) for s in self.sessions)

    # ---------------------------------------------------------------- control pilot
    def _join_resumes(self) -> None:
        """A session that follows a paused one of the same EV while the control pilot shows
        the EV stayed plugged in (no state A in between) is its resume, even when the EV did
        not offer the paused SessionID (ChargeX PFMEA UC2 196: the EVSE then sees a new
        session): one plug-in cycle, one charging session (``resumed`` counts it, both
        SessionIDs are kept). Without CP readings nothing is joined."""
        if not self._cp:
            return
        order = sorted((s for s in self.sessions if s.events and not s.crosstalk),
                       key=lambda s: min(e.time for e in s.events))
        gone: set[int] = set()
        for i, a in enumerate(order):
            if id(a) in gone or not a.paused or not a.ended:
                continue
            for b in order[i + 1:]:
                if id(b) in gone:
                    continue
                if b.ev_key is not None and a.ev_key is not None and b.ev_key != a.ev_key:
                    continue
                t_b = min(e.time for e in b.events)
                if a.t_last is None or self._plugged_in(a.t_last, t_b) is not True:
                    break
                _absorb(a, b)
                gone.add(id(b))
                if not (a.paused and a.ended):
                    break
        if gone:
            self.sessions = [s for s in self.sessions if id(s) not in gone]

    def _cp_cycles(self) -> tuple[list[list[tuple[Event, CpSample]]], list[Event]]:
        """The CP readings cut into plug-in cycles (module docstring), and the readings
        outside every cycle."""
        cycles: list[list[tuple[Event, CpSample]]] = []
        outside: list[Event] = []
        cur: list | None = None
        before: list[tuple[Event, CpSample]] = []     # readings since the last cycle ended
        for ev, smp in self._cp_events:
            ps = plug_state(smp)
            if cur is None:
                if ps == "BCD":
                    keep = [x for x in before if ev.time - x[0].time <= CP_LEAD_S]
                    outside.extend(x[0] for x in before[:len(before) - len(keep)])
                    cur = keep + [(ev, smp)]
                    before = []
                    cycles.append(cur)
                else:
                    before.append((ev, smp))
                continue
            cur.append((ev, smp))
            if ps == "A":
                cur = None
        outside.extend(x[0] for x in before)
        return cycles, outside

    def _place_cp(self) -> None:
        """Give each CP reading to its session; a cycle without one becomes a basic
        (pilot-only) session."""
        cycles, outside = self._cp_cycles()
        self.capture_events.extend(outside)
        spans = []
        for s in self.sessions:
            if s.events and not s.crosstalk:
                spans.append((min(e.time for e in s.events), max(e.time for e in s.events), s))
        for cyc in cycles:
            t0, t1 = cyc[0][0].time, cyc[-1][0].time
            if cyc[-1][1].letter != "A":
                t1 = float("inf")          # still plugged in when the capture ended
            inside = sorted((sp for sp in spans if sp[0] <= t1 and sp[1] >= t0),
                            key=lambda sp: sp[0])
            if not inside:
                s = Session(self.offset + len(self.sessions), basic=True)
                self.sessions.append(s)
                for ev, _ in cyc:
                    self._attach(s, ev)
                continue
            for ev, _ in cyc:
                target = inside[0][2]
                for a, b, s in inside:
                    if a <= ev.time:
                        target = s
                self._attach(target, ev, timed=False)


def _absorb(a: Session, b: Session) -> None:
    """Move session ``b`` (a resume) into ``a``: its events, retries, runs, connections and
    SessionIDs, and its state flags (how far it got, how it ended)."""
    a.events.extend(b.events)
    a.retries.extend(b.retries)
    for x in b.run_ids:
        if x not in a.run_ids:
            a.run_ids.append(x)
    a.connections.extend(c for c in b.connections if c not in a.connections)
    a.retry_connections.extend(c for c in b.retry_connections if c not in a.retry_connections)
    a.session_ids.extend(x for x in b.session_ids if x not in a.session_ids)
    a.has_sdp = a.has_sdp or b.has_sdp
    a.has_v2g = a.has_v2g or b.has_v2g
    a.setup_done = a.setup_done or b.setup_done
    a.ended, a.paused = b.ended, b.paused
    a.answered = a.answered or b.answered
    a.resumed += 1 + b.resumed
    a.ev_mac = a.ev_mac or b.ev_mac
    a.evse_mac = a.evse_mac or b.evse_mac
    if b.t_last is not None and (a.t_last is None or b.t_last > a.t_last):
        a.t_last = b.t_last


def _slac_answerers(s: Session) -> set[str]:
    """MACs of the EVSEs that answered the session's SLAC (its own events)."""
    return {e.src for e in s.own_events() if e.layer == "slac" and e.name in _SLAC_EVSE_ANSWERS
            and e.src}


def _served(s: Session) -> bool:
    """The session reached V2G or got an SDP response."""
    return s.has_v2g or any(e.layer == "sdp" and e.direction == EVSE_TO_EV for e in s.events)


def served_sessions(sessions: list[Session]) -> list[tuple]:
    """(id, EV MAC, EVSE MAC) of the sessions that reached SDP / V2G (for the next segment's
    :class:`SessionBuilder`, ``served_before``)."""
    return [(s.id, s.ev_mac, s.evse_mac) for s in sessions if _served(s)]


def mark_crosstalk(sessions: list[Session], served_before: tuple = ()) -> None:
    """Set ``crosstalk`` on the SLAC-only sessions that are another charger's traffic (module
    docstring): the capture's charger is the EVSE MAC matched by its sessions that reached
    SDP or V2G; a SLAC-only session of another EV MAC that no EVSE answered, or that only
    other EVSEs answered or matched, and that led to no SDP / V2G, is crosstalk — HomePlug
    GreenPHY is a shared medium and SLAC's CM_SLAC_PARM.REQ, CM_START_ATTEN_CHAR.IND and
    CM_MNBC_SOUND.IND are broadcast (ISO 15118-3 §A.9; PROTOCOL_FACTS §2.3, §2.7). Without a
    session that reached SDP / V2G with a known charger nothing is marked. ``served_before``:
    (id, EV MAC, EVSE MAC) of such sessions in earlier segments of the capture."""
    served = [s for s in sessions if _served(s)]
    known = list(served_before) + [(s.id, s.ev_mac, s.evse_mac) for s in served]
    chargers = {evse for _, _, evse in known if evse}
    evs = {ev for _, ev, _ in known if ev}
    if not chargers:
        return
    names = ", ".join(sorted(chargers))
    own = ", ".join(i for i, _, _ in known)
    for s in sessions:
        if s in served or s.progressed or not s.ev_mac or s.ev_mac in evs or not s.run_ids:
            continue
        answered = _slac_answerers(s)
        if s.evse_mac in chargers or answered & chargers:
            continue
        if not answered:
            s.crosstalk = (f"SLAC of EV {s.ev_mac} that no EVSE answered, while this capture's "
                           f"charger ({names}) served {own}: another charger's EV heard over the "
                           "powerline")
        else:
            by = s.evse_mac or ", ".join(sorted(answered))
            s.crosstalk = (f"SLAC of EV {s.ev_mac} answered{' and matched' if s.evse_mac else ''} "
                           f"by {by}, not by this capture's charger ({names}, which served {own}): "
                           "another charger's traffic heard over the powerline")


# ---------------------------------------------------------------------- summary
def summarize(s: Session, connections: dict[int, dict]) -> dict:
    """See :meth:`Session.summary`."""
    ev = s.events
    own = s.own_events()
    v2g = [e for e in ev if e.layer == "v2gtp"]
    ok = [e for e in v2g if e.message is not None]
    own_ok = [e for e in own if e.layer == "v2gtp" and e.message is not None]
    names = Counter(e.name for e in v2g)
    out: dict = {
        "id": s.id,
        "ev_mac": s.ev_mac,
        "evse_mac": s.evse_mac,
        "start_frame": ev[0].frame if ev else None,
        "end_frame": ev[-1].frame if ev else None,
        "own_end_frame": s.own_end_frame,
        "start": ev[0].time if ev else None,
        "end": ev[-1].time if ev else None,
        "duration_s": round(ev[-1].time - ev[0].time, 6) if ev else 0.0,
        "slac_run_ids": s.run_ids,
        "connections": s.connections,
        "session_ids": s.session_ids,
        "SessionID": s.session_ids[0] if s.session_ids else None,
        "resumed": s.resumed,
        "messages": len(v2g),
        "messages_undecoded": len(v2g) - len(ok),
        "message_counts": dict(names.most_common()),
    }
    # protocol
    protocol = namespace = None
    detected = False
    for c in s.connections:
        cs = connections.get(c, {})
        if c not in s.retry_connections and cs.get("namespace"):
            namespace = cs["namespace"]
            detected = cs.get("namespace_detected", False)
            break
    for e in ok:
        if e.protocol and e.protocol != "SupportedAppProtocol":
            protocol = e.protocol
            break
    if protocol is None and namespace:
        from ccs_analyzer.dissectors.v2g import protocol_of
        protocol = protocol_of(namespace)
    if protocol is None:
        protocol = ("IEC 61851-1" if s.basic else "SLAC only" if not s.has_sdp
                    and not s.connections else None)
    out["protocol"] = protocol
    out["namespace"] = namespace
    out["namespace_detected"] = detected
    out["tls"] = any(connections.get(c, {}).get("kind") == "tls" for c in s.connections)
    # identities and choices
    evccid = evseid = payment = mode = None
    wanted = {"SessionSetupReq", "SessionSetupRes", "PaymentServiceSelectionReq",
              "ServicePaymentSelectionReq", "AuthorizationReq", "ChargeParameterDiscoveryReq",
              "ServiceSelectionReq"}
    for e in ok:
        if e.name not in wanted:
            continue
        name, body = message_body(e.message)
        if name == "SessionSetupReq" and evccid is None:
            evccid = body.get("EVCCID")
        elif name == "SessionSetupRes" and evseid is None:
            evseid = body.get("EVSEID")
        elif name in ("PaymentServiceSelectionReq", "ServicePaymentSelectionReq") and payment is None:
            payment = body.get("SelectedPaymentOption")
        elif name == "AuthorizationSetupRes" and payment is None:
            pass
        elif name == "AuthorizationReq" and payment is None and body.get("SelectedAuthorizationService"):
            payment = body.get("SelectedAuthorizationService")
        elif name == "ChargeParameterDiscoveryReq" and mode is None:
            mode = body.get("RequestedEnergyTransferMode") or body.get("EVRequestedEnergyTransferType")
        elif name == "ServiceSelectionReq" and mode is None:
            sel = find_first(body, "ServiceID")
            mode = {1: "AC", 2: "DC", 3: "WPT", 4: "DC_ACDP", 5: "AC_BPT", 6: "DC_BPT",
                    7: "DC_ACDP_BPT"}.get(sel, sel)
    if mode is None:
        for e in ok:
            n = e.name
            if n.startswith("DC_") or n in ("CurrentDemandReq", "CableCheckReq", "PreChargeReq"):
                mode = "DC"
                break
            if n.startswith("AC_") or n == "ChargingStatusReq":
                mode = "AC"
                break
    out["EVCCID"] = evccid
    out["EVSEID"] = evseid
    out["EVSEID_text"] = evseid_text(evseid, namespace)
    out["payment"] = payment
    out["energy_transfer_mode"] = mode
    # last message and how it ended
    own_v2g = [e for e in own if e.layer == "v2gtp"]
    last = own_v2g[-1] if own_v2g else None
    out["last_message"] = {"name": last.name, "frame": last.frame, "direction": last.direction} \
        if last else None
    out["ended"] = _pilot_end(s) if s.basic else _how_it_ended(s, own, own_ok, connections)
    out.update(_physics(ok))
    # SLAC
    out["slac"] = _slac_summary(s)
    out["retries"] = _retries_summary(s)
    out["retry_connections"] = list(s.retry_connections)
    out["crosstalk"] = s.crosstalk
    out["basic"] = s.basic
    out["control_pilot"] = _cp_summary(s)
    return out


def evseid_text(evseid, namespace: str | None) -> str | None:
    """The EVSEID as text: ISO 15118-2 / -20 carry it as a string (returned as it is);
    DIN 70121 as hexBinary (DIN SPEC 70121:2014 SessionSetupResType, evseIDType, up to 32
    octets), into which chargers put the text form (e.g. ``DE*ABC*E123``, DIN SPEC 91286):
    those octets decoded as ASCII when they are all printable, else None (an all-zero or
    binary ID). What tells one charger across protocols (fleet tables)."""
    if not isinstance(evseid, str) or not evseid:
        return None
    if namespace is None or "din:70121" not in namespace:
        return evseid
    try:
        raw = bytes.fromhex(evseid)
    except ValueError:
        return None
    return raw.decode("ascii") if raw and all(0x20 <= b < 0x7F for b in raw) else None


def _cp_summary(s: Session) -> dict | None:
    """The session's control pilot (analyzer/views/control_pilot.py), None without readings:
    ``reporters``; ``states``: the settled states in order, each ``{"state", "frame",
    "time"}``; ``duty_pct``: the duty cycles seen (%); ``pwm_current_A``: the highest current
    a nominal duty cycle allowed (IEC 61851-1 Table A.8); ``cable_rating_A`` (PP, Table B.2);
    ``contactor_closed``: frames where a reported contactor closed; ``out_of_band``: readings
    between the state bands."""
    from .views.control_pilot import build_cp_view
    v = build_cp_view(s.events)
    if not v.samples:
        return None
    pwm = [x.pwm_current_A for x in v.samples if x.pwm_current_A is not None]
    cables = [x.cable_rating_A for x in v.samples if x.cable_rating_A is not None]
    closed, prev = [], None
    for x in v.contactor():
        if x.contactor == "closed" and prev != "closed":
            closed.append(x.frame)
        prev = x.contactor
    return {"reporters": sorted({x.source for x in v.samples}),
            "states": [{"state": t.after, "frame": t.frame, "time": t.time} for t in v.transitions],
            "duty_pct": sorted({x.duty_pct for x in v.duty()}),
            "pwm_current_A": max(pwm) if pwm else None,
            "cable_rating_A": min(cables) if cables else None,
            "contactor_closed": closed, "out_of_band": len(v.out_of_band)}


def _pilot_end(s: Session) -> dict:
    """How a basic (pilot-only) session ended: unplugged (state A) or still plugged in when
    the capture ended (IEC 61851-1 states; analyzer/views/control_pilot.py)."""
    from .views.control_pilot import build_cp_view
    v = build_cp_view(s.events)
    if v.unplugs:
        tr = v.unplugs[-1]
        return {"how": f"unplugged ({tr.before} → A)", "frame": tr.frame, "by": "EV"}
    last = v.states[-1] if v.states else None
    return {"how": f"capture ended in state {last.state if last else '?'}",
            "frame": last.frame if last else None, "by": None}


def _retries_summary(s: Session) -> dict | None:
    """Counts and frame span of the session's retries (None when it has none)."""
    if not s.retries:
        return None
    return {"events": len(s.retries), "first_frame": s.retries[0].frame,
            "last_frame": s.retries[-1].frame,
            "slac_requests": sum(1 for e in s.retries if e.name == "CM_SLAC_PARM.REQ"),
            "sdp_requests": sum(1 for e in s.retries if e.layer == "sdp"),
            "connections": len(s.retry_connections)}


def _how_it_ended(s: Session, ev: list[Event], ok: list[Event], connections: dict) -> dict:
    """How the session's own activity ended (``ev`` / ``ok``: its own events / decoded V2G
    messages; retry connections do not count)."""
    own_conns = [c for c in s.connections if c not in s.retry_connections]
    stop_req = next((e for e in reversed(ok) if e.name == "SessionStopReq"), None)
    stop_res = next((e for e in reversed(ok) if e.name == "SessionStopRes"), None)
    if stop_res is not None:
        _, body = message_body(stop_req.message) if stop_req else (None, {})
        how = body.get("ChargingSession", "Terminate")
        return {"how": f"SessionStop ({how})", "frame": stop_res.frame, "by": "EV"}
    # transport end of the last connection
    for c in reversed(own_conns):
        cs = connections.get(c)
        if not cs:
            continue
        if cs.get("syn_frame") is not None and cs.get("synack_frame") is None:
            attempts = sum(1 for x in own_conns if connections.get(x, {}).get("synack_frame") is None
                           and connections.get(x, {}).get("syn_frame") is not None)
            rst = (cs.get("rst_frames") or [None, None])[1]
            if rst is not None:
                return {"how": f"TCP connection refused (RST) by EVSE ({attempts} attempt(s))",
                        "frame": rst, "by": "EVSE"}
            return {"how": f"TCP connection never answered ({attempts} SYN(s) without SYN-ACK)",
                    "frame": cs.get("syn_frame"), "by": "EVSE"}
        rst = cs.get("rst_frames") or [None, None]
        fin = cs.get("fin_frames") or [None, None]
        cands = []
        for d, side in ((0, "EV"), (1, "EVSE")):
            if rst[d] is not None:
                cands.append((rst[d], f"TCP reset (RST) by {side}", side))
            if fin[d] is not None:
                cands.append((fin[d], f"TCP closed (FIN) by {side}", side))
        if cands:
            first = min(cands)
            return {"how": first[1], "frame": first[0], "by": first[2]}
        return {"how": "capture ended during the session", "frame": ev[-1].frame if ev else None,
                "by": None}
    if s.has_sdp:
        answered = any(e.layer == "sdp" and e.direction == EVSE_TO_EV for e in ev)
        return {"how": "SDP answered but no TCP connection" if answered else "SDP never answered",
                "frame": ev[-1].frame if ev else None, "by": None}
    if s.run_ids or any(e.layer == "slac" for e in ev):
        matched = any(e.name == "CM_SLAC_MATCH.CNF" for e in ev)
        return {"how": "SLAC matched but no SDP seen" if matched else "SLAC not completed",
                "frame": ev[-1].frame if ev else None, "by": None}
    return {"how": "unknown", "frame": ev[-1].frame if ev else None, "by": None}


def _physics(ok: list[Event]) -> dict:
    """Maxima of present voltage / current / power and the energy delivered (Wh), DC by
    EVSEPresentVoltage × EVSEPresentCurrent integrated over time (step-wise between
    responses), AC from the meter readings when the messages carry them."""
    vmax = imax = pmax = None
    energy_wh = 0.0
    prev = None
    soc = []
    meter = []
    for e in ok:
        f = event_facts(e)
        name = e.name
        v = f.get("EVSEPresentVoltage_V")
        i = f.get("EVSEPresentCurrent_A")
        if v is not None:
            vmax = v if vmax is None else max(vmax, v)
        if i is not None:
            imax = i if imax is None else max(imax, i)
        if v is not None and i is not None and name.endswith("Res") and (
                "CurrentDemand" in name or "ChargeLoop" in name):
            p = v * i
            pmax = p if pmax is None else max(pmax, p)
            if prev is not None:
                dt = e.time - prev[0]
                if 0 < dt < 60:
                    energy_wh += prev[1] * dt / 3600.0
            prev = (e.time, p)
        s = f.get("SoC_pct")
        if s is not None:
            soc.append(int(s))
        mr = f.get("MeterReading")
        if isinstance(mr, int) and not isinstance(mr, bool):
            meter.append(mr)
    if energy_wh == 0.0 and len(meter) >= 2:
        energy_wh = float(meter[-1] - meter[0])
    return {
        "max_voltage_v": vmax,
        "max_current_a": imax,
        "max_power_w": round(pmax, 3) if pmax is not None else None,
        "energy_wh": round(energy_wh, 3),
        "soc_start_pct": soc[0] if soc else None,
        "soc_end_pct": soc[-1] if soc else None,
    }


def _slac_summary(s: Session) -> dict | None:
    sl = [e for e in s.events if e.layer == "slac" and e.protocol == "SLAC"]
    if not sl:
        return None
    names = Counter(e.name for e in sl)
    att = [e for e in sl if e.name == "CM_ATTEN_CHAR.IND"]
    responders = {}
    for e in att:
        f = e.message or {}
        responders.setdefault(e.src, f.get("AAG_mean_dB"))
    match = next((e for e in sl if e.name == "CM_SLAC_MATCH.CNF"), None)
    return {
        "attempts": names.get("CM_SLAC_PARM.REQ", 0),
        "matched": match is not None,
        "match_frame": match.frame if match else None,
        "NID": (match.message or {}).get("NID") if match else None,
        "chargers_answering": responders,
        "message_counts": dict(names.most_common()),
    }
