"""Charging sessions rebuilt from the dissectors' events.

A session groups what belongs to one charging session (DESIGN.md "Events, sessions,
timeline"): the SLAC run(s) of one EV, its SDP exchange, the TCP / TLS connection(s) and the
V2G SessionID — across pause and resume (ISO 15118-2 [V2G2-463]: a SessionSetupReq that
offers the paused session's SessionID and gets OK_OldSessionJoined continues that session).

Segmentation rules, applied per EV (EV MAC address where the capture shows it):

* SLAC: a CM_SLAC_PARM.REQ with a new RunID starts a new session unless the current one
  never got past SLAC (then it is a retry within that session, C_EV_match_retry in
  ISO 15118-3 §A.9). Other messages carrying the RunID (other chargers' sounding too) join
  the run's session.
* SDP: a request joins the EV's current session unless that session has ended (SessionStop
  Terminate, or its V2G connection closed); then it starts a new one. A paused session
  (SessionStopReq ChargingSession = Pause) stays open for its resume.
* TCP: a connection is bound at its SessionSetupReq: SessionID 0 (new session,
  PROTOCOL_FACTS §4.0) joins the current session if that has no SessionID yet, else starts a
  new one; a non-zero SessionID joins the session that issued it (resume). A connection
  without SessionSetupReq (handshake only, SYN answered by RST, capture started mid-session)
  joins the current session unless it has ended.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ccs_analyzer.dissectors.events import EV_TO_EVSE, EVSE_TO_EV, Event

from .physical import event_facts, find_first, header_of, message_body

_SLAC_EV_SENDS = {"CM_SLAC_PARM.REQ", "CM_START_ATTEN_CHAR.IND", "CM_MNBC_SOUND.IND",
                  "CM_ATTEN_CHAR.RSP", "CM_VALIDATE.REQ", "CM_SLAC_MATCH.REQ"}


def _zero_id(sid) -> bool:
    return isinstance(sid, str) and (sid == "" or set(sid) <= {"0"})


@dataclass
class Session:
    """One charging session (see module docstring).

    ``id`` ("S1", "S2" … in order of appearance), ``events`` (its events in frame order),
    ``ev_mac`` / ``evse_mac`` (from SLAC or the Ethernet frames), ``run_ids`` (SLAC RunIDs),
    ``connections`` (TCP connection ids), ``session_ids`` (V2G SessionIDs, hex), flags that
    say how far it got. :meth:`summary` computes what a report shows.
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

    def summary(self, connections: dict[int, dict] | None = None) -> dict:
        """What a report shows of the session (JSON-ready): identities, protocol, time span,
        last message, how it ended, maxima (V, A, W), energy (Wh), SoC, counts."""
        return summarize(self, connections or {})


class SessionBuilder:
    """Feeds on events in frame order (:meth:`add`) and returns sessions (:meth:`finish`).

    ``capture_events`` collects what belongs to no session (capture problems, disclosed key
    logs, HomePlug management traffic before any SLAC).
    """

    def __init__(self) -> None:
        self.sessions: list[Session] = []
        self.capture_events: list[Event] = []
        self._current: dict[str | None, Session] = {}
        self._by_run: dict[str, Session] = {}
        self._conn_session: dict[int, Session] = {}
        self._conn_pending: dict[int, list[Event]] = {}
        self._conn_closed: set[int] = set()
        self._conn_other: set[int] = set()
        self._by_sid: dict[str, Session] = {}
        self._ip_ev: dict[str, str] = {}      # EV IP → EV key
        self._last: Session | None = None

    # ------------------------------------------------------------------ helpers
    def _new(self, key: str | None) -> Session:
        s = Session(len(self.sessions), ev_key=key)
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

    def _attach(self, s: Session, ev: Event) -> None:
        s.events.append(ev)
        self._last = s

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

    def _slac(self, ev: Event) -> None:
        f = ev.message if isinstance(ev.message, dict) else {}
        run = f.get("RunID")
        ev_mac = None
        if ev.name in _SLAC_EV_SENDS or ev.direction == EV_TO_EVSE:
            ev_mac = ev.src
        elif ev.direction == EVSE_TO_EV:
            ev_mac = ev.dst if ev.dst and ev.dst != "ff:ff:ff:ff:ff:ff" else None
        if ev.name in ("CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF"):
            ev_mac = f.get("PEV_MAC") or ev_mac
        key = ev_mac
        if run:
            s = self._by_run.get(run)
            if s is not None and ev.name == "CM_SLAC_PARM.REQ" and (s.progressed or s.ended):
                s = None              # the EV reuses its RunID for a new matching run
            if s is None:
                cur = self._cur(key)
                if cur is None or cur.progressed or cur.ended:
                    self._flush_pending()
                    s = self._new(key)
                else:
                    s = cur           # a retry of a run that never got past SLAC
                self._by_run[run] = s
            if run not in s.run_ids and ev.name in _SLAC_EV_SENDS:
                s.run_ids.append(run)       # the EV's RunIDs (an EVSE may echo a wrong one)
            self._attach(s, ev)
            if ev_mac and not s.ev_mac:
                s.ev_mac = ev_mac
            if ev.name in ("CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF") and f.get("EVSE_MAC"):
                s.evse_mac = f.get("EVSE_MAC")
            self._current[s.ev_key] = s
            return
        # no RunID: key exchange with the own modem, vendor MMEs, attenuation profiles
        target = None
        for s in reversed(self.sessions):
            if ev.src in (s.ev_mac, s.evse_mac) or ev.dst in (s.ev_mac, s.evse_mac):
                target = s
                break
        target = target or self._last
        if target is None:
            self.capture_events.append(ev)
        else:
            self._attach(target, ev)

    def _sdp(self, ev: Event) -> None:
        ev_ip = ev.src if ev.direction == EV_TO_EVSE else ev.dst
        ev_ip = ev_ip.rsplit(":", 1)[0] if ev_ip else None
        mac = ev.info.get("src_mac") if ev.direction == EV_TO_EVSE else ev.info.get("dst_mac")
        key = mac or (self._ip_ev.get(ev_ip) if ev_ip else None)
        if ev_ip and key:
            self._ip_ev[ev_ip] = key
        if ev.direction == EV_TO_EVSE:
            self._flush_pending()
        cur = self._cur(key)
        if cur is None or (ev.direction == EV_TO_EVSE and cur.ended and not cur.paused):
            cur = self._new(key)
        cur.has_sdp = True
        if mac and not cur.ev_mac:
            cur.ev_mac = mac
        self._attach(cur, ev)

    def _conn(self, ev: Event) -> None:
        c = ev.conn
        if c in self._conn_other:
            self.capture_events.append(ev)
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
        elif ev.layer == "tcp" and name == "RST":
            self._bind(c, None)
        elif ev.layer == "tcp" and name == "FIN":
            if c in self._conn_closed:
                self._bind(c, None)
            self._conn_closed.add(c)

    def _flush_pending(self, before: int | None = None) -> None:
        """Bind connections still waiting for a SessionSetupReq (older than ``before``):
        something else is happening now, so they belong to what was current until now."""
        for c in sorted(self._conn_pending):
            if before is None or c < before:
                self._bind(c, None)

    def _ev_key_of(self, ev: Event) -> str | None:
        ip = None
        if ev.src and ev.direction == EV_TO_EVSE:
            ip = ev.src.rsplit(":", 1)[0]
        elif ev.dst and ev.direction == EVSE_TO_EV:
            ip = ev.dst.rsplit(":", 1)[0]
        return self._ip_ev.get(ip) if ip else None

    def _bind(self, c: int, ev: Event | None) -> None:
        self._flush_pending(before=c)
        pend = self._conn_pending.pop(c, [])
        if any(e.info.get("v2g") is False for e in pend) and not any(e.layer == "v2gtp" for e in pend):
            self._conn_other.add(c)              # not a V2G connection (e.g. a VAS side channel)
            self.capture_events.extend(pend)
            return
        key = self._ev_key_of(pend[0]) if pend else None
        cur = self._cur(key)
        target = None
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
            target = cur if (cur is not None and not (cur.ended and not cur.paused)) else None
        if target is None:
            target = self._new(key)
        self._conn_session[c] = target
        target.connections.append(c)
        self._current[target.ev_key] = target
        for e in pend:
            self._conn_attached(target, e)

    def _conn_attached(self, s: Session, ev: Event) -> None:
        self._attach(s, ev)
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
        elif ev.layer == "tcp" and ev.name in ("RST", "FIN") and s.setup_done:
            s.ended = True

    def finish(self) -> list[Session]:
        """Bind what is still pending and return the sessions, events in frame order."""
        self._flush_pending()
        for s in self.sessions:
            s.events.sort(key=lambda e: e.frame)
        return self.sessions


# ---------------------------------------------------------------------- summary
def summarize(s: Session, connections: dict[int, dict]) -> dict:
    """See :meth:`Session.summary`."""
    ev = s.events
    v2g = [e for e in ev if e.layer == "v2gtp"]
    ok = [e for e in v2g if e.message is not None]
    names = Counter(e.name for e in v2g)
    out: dict = {
        "id": s.id,
        "ev_mac": s.ev_mac,
        "evse_mac": s.evse_mac,
        "start_frame": ev[0].frame if ev else None,
        "end_frame": ev[-1].frame if ev else None,
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
        if cs.get("namespace"):
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
        protocol = "SLAC only" if not s.has_sdp and not s.connections else None
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
    out["payment"] = payment
    out["energy_transfer_mode"] = mode
    # last message and how it ended
    last = v2g[-1] if v2g else None
    out["last_message"] = {"name": last.name, "frame": last.frame, "direction": last.direction} \
        if last else None
    out["ended"] = _how_it_ended(s, ev, ok, connections)
    out.update(_physics(ok))
    # SLAC
    out["slac"] = _slac_summary(s)
    return out


def _how_it_ended(s: Session, ev: list[Event], ok: list[Event], connections: dict) -> dict:
    stop_req = next((e for e in reversed(ok) if e.name == "SessionStopReq"), None)
    stop_res = next((e for e in reversed(ok) if e.name == "SessionStopRes"), None)
    if stop_res is not None:
        _, body = message_body(stop_req.message) if stop_req else (None, {})
        how = body.get("ChargingSession", "Terminate")
        return {"how": f"SessionStop ({how})", "frame": stop_res.frame, "by": "EV"}
    # transport end of the last connection
    for c in reversed(s.connections):
        cs = connections.get(c)
        if not cs:
            continue
        if cs.get("syn_frame") is not None and cs.get("synack_frame") is None:
            attempts = sum(1 for x in s.connections if connections.get(x, {}).get("synack_frame") is None
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
