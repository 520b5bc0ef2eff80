"""How each session ended (its outcome), how far it got (its phase), and which finding
explains a failure (its root cause), with the findings that are consequences of it linked.

Phases, in order (DIN SPEC 70121 §9.6, ISO 15118-2 §8.8.2, ISO 15118-20 §8.8 message
sequences): SLAC, SDP, TCP, TLS, handshake, session setup, service selection,
authorization, parameter discovery, cable check, pre-charge, power delivery, charging,
stopping, session stop.

Outcomes: ``completed normally``, ``paused``, ``stopped by EV``, ``stopped by EVSE``,
``timed out`` (a request left unanswered), ``aborted by EV`` / ``aborted by EVSE`` (the
connection closed or reset without SessionStop), ``capture ended``, and ``never got past
<phase>`` for sessions that failed before their V2G session was set up.

Root cause: for a session that failed (not completed normally or paused; a session cut by the
end of the capture only when an error-severity finding says it failed), the earliest finding of the highest severity present among those the session
did not recover from (after which it got no further — stopping does not count as getting
further) that are not themselves consequences (rules with ``consequence = True`` describe
symptoms such as a reset or a missing SessionStop); failing that, the earliest such
consequence; failing that, none (a finding the session recovered from explains nothing).
Every consequence finding at or after the root is linked to it (``caused_by``).
Capture-level findings are never linked.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import event_facts, message_body

PHASES = ("SLAC", "SDP", "TCP", "TLS", "handshake", "session setup", "service selection",
          "authorization", "parameter discovery", "cable check", "pre-charge",
          "power delivery", "charging", "stopping", "session stop")

_PHASE_OF = {
    "supportedAppProtocol": "handshake", "SessionSetup": "session setup",
    "ServiceDiscovery": "service selection", "ServiceDetail": "service selection",
    "ServicePaymentSelection": "service selection", "PaymentServiceSelection": "service selection",
    "ServiceSelection": "service selection", "PaymentDetails": "service selection",
    "CertificateInstallation": "service selection", "CertificateUpdate": "service selection",
    "ContractAuthentication": "authorization", "Authorization": "authorization",
    "AuthorizationSetup": "authorization",
    "ChargeParameterDiscovery": "parameter discovery", "DC_ChargeParameterDiscovery": "parameter discovery",
    "AC_ChargeParameterDiscovery": "parameter discovery", "WPT_ChargeParameterDiscovery": "parameter discovery",
    "ScheduleExchange": "parameter discovery",
    "CableCheck": "cable check", "DC_CableCheck": "cable check",
    "PreCharge": "pre-charge", "DC_PreCharge": "pre-charge",
    "PowerDelivery": "power delivery",
    "CurrentDemand": "charging", "ChargingStatus": "charging", "DC_ChargeLoop": "charging",
    "AC_ChargeLoop": "charging", "WPT_ChargeLoop": "charging", "MeteringReceipt": "charging",
    "MeteringConfirmation": "charging",
    "WeldingDetection": "stopping", "DC_WeldingDetection": "stopping",
    "SessionStop": "session stop",
}

_EVSE_STOP_STATUS = {"EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction",
                     "EVSE_UtilityInterruptEvent"}


def _base(name: str) -> str:
    return name[:-3] if name.endswith(("Req", "Res")) else name


def phase_of(name: str, message=None) -> str | None:
    """The phase a V2G message belongs to (PowerDelivery with ChargeProgress Stop /
    ReadyToChargeState false belongs to "stopping")."""
    ph = _PHASE_OF.get(_base(name))
    if ph == "power delivery" and message is not None and name.endswith("Req"):
        _, body = message_body(message)
        if body.get("ChargeProgress") in ("Stop", "Standby") or body.get("ReadyToChargeState") is False:
            return "stopping"
    return ph


def _rank(phase: str | None) -> int:
    return PHASES.index(phase) if phase in PHASES else -1


def session_outcome(session, summary: dict, connections: dict[int, dict]) -> dict:
    """``{"outcome", "phase_reached", "stopped_by"}`` of a session (module docstring)."""
    ev = session.events
    v2g = [e for e in ev if e.layer == "v2gtp" and e.message is not None]
    reached = None
    for e in v2g:
        ph = phase_of(e.name, e.message)
        if _rank(ph) > _rank(reached):
            reached = ph
    conns = [connections.get(c, {}) for c in session.connections]
    established = any(c.get("synack_frame") is not None or c.get("v2g_messages")
                      or c.get("syn_frame") is None and c.get("frames") for c in conns)
    tls = any(c.get("kind") == "tls" for c in conns)
    if reached is None or reached == "handshake" and not any(e.name == "SessionSetupRes" for e in v2g):
        if not any(e.name == "SessionSetupRes" for e in v2g) and v2g:
            first_fail = "handshake"
        elif any(e.layer == "v2gtp" for e in ev):
            first_fail = "handshake"      # V2GTP seen but nothing decodable
        elif tls and established:
            first_fail = "TLS"
        elif session.connections:
            first_fail = "TCP" if not established else "handshake"
        elif session.has_sdp:
            answered = any(e.layer == "sdp" and e.direction == "EVSE->EV" for e in ev)
            first_fail = "TCP" if answered else "SDP"
        else:
            matched = any(e.name == "CM_SLAC_MATCH.CNF" for e in ev)
            first_fail = "SDP" if matched else "SLAC"
        return {"outcome": f"never got past {first_fail}", "phase_reached": first_fail,
                "stopped_by": None}
    ended = summary.get("ended", {})
    stop_res = [e for e in v2g if e.name == "SessionStopRes"]
    last = v2g[-1]
    if stop_res:
        stop_req = next((e for e in reversed(v2g) if e.name == "SessionStopReq"), None)
        if stop_req is not None and message_body(stop_req.message)[1].get("ChargingSession") == "Pause":
            return {"outcome": "paused", "phase_reached": reached, "stopped_by": "EV"}
        who = _who_stopped(v2g)
        if who == "EVSE":
            return {"outcome": "stopped by EVSE", "phase_reached": reached, "stopped_by": "EVSE"}
        charged = any(phase_of(e.name, e.message) == "charging" for e in v2g)
        if who == "EV-error" or not charged:
            return {"outcome": "stopped by EV", "phase_reached": reached, "stopped_by": "EV"}
        return {"outcome": "completed normally", "phase_reached": reached, "stopped_by": "EV"}
    if last.name.endswith("Req"):
        return {"outcome": "timed out", "phase_reached": reached, "stopped_by": "EVSE",
                "detail": f"{last.name} (frame {last.frame}) got no response"}
    rc = event_facts(last).get("ResponseCode")
    if isinstance(rc, str) and rc.upper().startswith("FAILED"):
        return {"outcome": "stopped by EVSE", "phase_reached": reached, "stopped_by": "EVSE",
                "detail": f"{last.name} answered {rc}"}
    how = ended.get("how", "")
    by = ended.get("by")
    if how.startswith("TCP") and by in ("EV", "EVSE"):
        return {"outcome": f"aborted by {by}", "phase_reached": reached, "stopped_by": by,
                "detail": how}
    return {"outcome": "capture ended", "phase_reached": reached, "stopped_by": None}


def _who_stopped(v2g) -> str | None:
    """Who ended a session that reached SessionStop: "EVSE" when an EVSE status / notification
    / FAILED code asked for it before the EV stopped, "EV-error" when the EV reported an error,
    else None (the EV stopped on its own)."""
    first_stop = None
    for i, e in enumerate(v2g):
        if e.name == "SessionStopReq" or phase_of(e.name, e.message) == "stopping":
            first_stop = i
            break
    window = v2g[:first_stop] if first_stop is not None else v2g
    for e in reversed(window[-6:]):
        f = event_facts(e)
        if e.direction == "EVSE->EV":
            rc = f.get("ResponseCode")
            if (f.get("EVSEStatusCode") in _EVSE_STOP_STATUS or f.get("EVSENotification") == "StopCharging"
                    or (isinstance(rc, str) and rc.upper().startswith("FAILED"))):
                return "EVSE"
        else:
            err = f.get("EVErrorCode")
            if isinstance(err, str) and err not in ("NO_ERROR", "NoData"):
                return "EV-error"
    return None


def _progress_rank(e) -> int:
    """How far an event shows the session got (stopping phases do not count as progress)."""
    if e.layer == "slac":
        return 0
    if e.layer == "sdp":
        return 1
    if e.layer == "tcp":
        return 2 if e.name in ("SYN-ACK",) else -1
    if e.layer == "tls":
        return 3
    if e.layer == "v2gtp" and e.message is not None:
        ph = phase_of(e.name, e.message)
        if ph in ("stopping", "session stop"):
            return -1            # stopping is not getting further
        return _rank(ph)
    return -1


def _recovered(session, findings) -> set[str]:
    """Ids of findings after which the session still got further (it recovered from them:
    a refused connection retried, an SDP request answered on the next try …)."""
    marks = []
    best = -1
    for e in session.events:
        r = _progress_rank(e)
        if r > best:
            best = r
            marks.append((e.time, best))
    final = best
    out = set()
    for f in findings:
        if f.time is None:
            continue
        at = -1
        for t, r in marks:
            if t <= f.time:
                at = r
            else:
                break
        if at < final:
            out.add(f.id)
    return out


def link_root_causes(sessions, summaries: dict, findings, rule_classes: dict) -> None:
    """Set each session summary's ``root_cause`` (finding id or None) and
    ``root_cause_synopsis``, and ``caused_by`` on the consequence findings (module docstring)."""
    by_session: dict[str, list] = {}
    for f in findings:
        if f.session is not None:
            by_session.setdefault(f.session, []).append(f)
    for s in sessions:
        summ = summaries[s.id]
        fs = sorted(by_session.get(s.id, []), key=lambda f: (f.time if f.time is not None else 0,
                                                             f.frames[0] if f.frames else 0))
        root = None
        outcome = summ.get("outcome")
        if outcome not in ("completed normally", "paused"):
            recovered = _recovered(s, fs)
            is_cons = lambda f: getattr(rule_classes.get(f.rule), "consequence", False)  # noqa: E731
            live = [f for f in fs if f.id not in recovered]
            # a session cut by the end of the capture failed only if an error says so
            sevs = ("error",) if outcome == "capture ended" else ("error", "warning")
            for pool in ([f for f in live if not is_cons(f)], live):
                for sev in sevs:
                    cands = [f for f in pool if f.severity == sev and not f.caused_by]
                    if cands:
                        root = cands[0]
                        break
                if root is not None:
                    break
        summ["root_cause"] = root.id if root else None
        summ["root_cause_synopsis"] = root.synopsis if root else None
        if root is None:
            continue
        t0 = root.time if root.time is not None else 0
        for f in fs:
            if f is root or f.caused_by:
                continue
            if getattr(rule_classes.get(f.rule), "consequence", False) and (f.time or 0) >= t0:
                f.caused_by = root.id
