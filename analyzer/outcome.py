"""How each session ended: its outcome, the phase it reached, and why it stopped (its stop
reason), from the traffic alone.

Phases, in order (DIN SPEC 70121 §9.6, ISO 15118-2 §8.8.2, ISO 15118-20 §8.8 message
sequences; "plugged in" is the control pilot's state B, IEC 61851-1 — a basic session that
never charged): plugged in, SLAC, SDP, TCP, TLS, handshake, session setup, service selection,
authorization, parameter discovery, cable check, pre-charge, power delivery, charging,
stopping, session stop.

Outcomes (what happened, docs/scoring.md):

* ``completed normally`` — the EV stopped after charging and the session ended with
  SessionStop; ``stopped by EV`` — the EV stopped (an error code, or before charging);
  ``paused`` — the EV paused (SessionStopReq ChargingSession = Pause);
* ``stopped by EVSE`` — the EVSE asked the EV to stop (EVSENotification StopCharging /
  Terminate, EVSE_Shutdown or a fault status) or refused a request with a FAILED response
  code, and the session ended on it (an orderly stop, also one still in progress when the
  capture ended);
* ``timed out`` — a timer expired: the EV gave up waiting for a response
  (V2G_EVCC_Msg_Timeout), for the end of a CableCheck / PreCharge / Ongoing loop
  (V2G_EVCC_CableCheck_Timeout …), or a request stayed unanswered while the capture went on;
* ``aborted by EV`` / ``aborted by EVSE`` — that side closed or reset the TCP connection
  without an orderly end (SessionStop), before any of its timers expired;
* ``capture ended`` — the capture ended while the session was running, or before the step
  it was in could have failed (within the step's timeout);
* ``never got past SLAC / SDP / TCP / TLS / handshake`` — the V2G session was never set up;
  SLAC counts as passed only when SDP followed;
* ``crosstalk`` — not a session of this charger: another EV's SLAC heard over the powerline
  (analyzer/sessions.py ``Session.crosstalk``); it is not judged.

The stop reason (item 7 of the explanation issue) says why, from the evidence:
``{"kind", "reason", "by", "frame", "time", "timer"}``: ``kind`` is a session-end kind of
rules/causes.py (``ev-stop``, ``ev-error``, ``ev-pause``, ``ev-abort``, ``ev-timeout``,
``evse-stop``, ``evse-refused``, ``evse-abort``, ``no-response``, ``slac-failed`` …,
``capture-ended``), ``reason`` a sentence (EV target reached, EV stop without reason
signalled, EVErrorCode X, EVSENotification StopCharging, FAILED_X, TCP reset by the EV,
V2G_EVCC_CableCheck_Timeout expired, capture end …), ``by`` EV / EVSE / None, ``frame`` and
``time`` of the event that started the end, ``timer`` the expired timer's name.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import event_facts, find_first, message_body
from ccs_analyzer.analyzer.views.events import base_name, is_failed
from ccs_analyzer.dissectors.events import TCP_FIN, TCP_RST, TCP_SYN
from ccs_analyzer.rules.timing_tables import (CABLECHECK_TIMEOUT, MSG_TIMEOUT, ONGOING_TIMEOUT,
                                              PRECHARGE_TIMEOUT, lookup)

PHASES = ("plugged in", "SLAC", "SDP", "TCP", "TLS", "handshake", "session setup", "service selection",
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

#: DC_EVSEStatusCode values that stop the session (DIN 70121 / ISO 15118-2
#: DC_EVSEStatusCodeType; PROTOCOL_FACTS §4.0 "Status semantics").
EVSE_STOP_STATUS = frozenset({"EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction",
                              "EVSE_UtilityInterruptEvent"})
#: EVSENotification values that ask the EV to stop (DIN / ISO-2 StopCharging; ISO 15118-20
#: EVSENotification Terminate).
EVSE_STOP_NOTIFICATION = frozenset({"StopCharging", "Terminate"})
#: EVErrorCode values that are no error.
_NO_ERROR = frozenset({"NO_ERROR", "NoData", "NO_ERROR_"})
#: Loops whose duration one of the EV's timers bounds (ISO 15118-2 [V2G2-700..713],
#: DIN 70121 Tables 75/77, ISO 15118-20 Table 215): base name → timer table.
_LOOP_TIMERS = {"CableCheck": CABLECHECK_TIMEOUT, "DC_CableCheck": CABLECHECK_TIMEOUT,
                "PreCharge": PRECHARGE_TIMEOUT, "DC_PreCharge": PRECHARGE_TIMEOUT}
#: Requests answered EVSEProcessing=Ongoing while the EVSE works, bounded by the EV's
#: V2G_EVCC_Ongoing_Timeout (ISO 15118-2 [V2G2-710] [V2G2-711]; DIN 70121 Table 75).
_ONGOING_LOOPS = frozenset({"Authorization", "ContractAuthentication", "AuthorizationSetup",
                            "ChargeParameterDiscovery", "AC_ChargeParameterDiscovery",
                            "DC_ChargeParameterDiscovery", "WPT_ChargeParameterDiscovery",
                            "ScheduleExchange", "PaymentDetails"})
#: A loop counts as ended by the EV's timer when it ran this share of the timer or more
#: (the EV starts its timer with its first request; the capture sees it a little later).
_TIMER_SHARE = 0.95
#: Energy above which a session transferred energy (Wh); AC sessions without values:
#: a charge loop of at least this many seconds after PowerDelivery Start.
_ENERGY_WH = 1.0
_AC_LOOP_S = 10.0


def phase_of(name: str, message=None) -> str | None:
    """The phase a V2G message belongs to (PowerDelivery with ChargeProgress Stop /
    ReadyToChargeState false belongs to "stopping")."""
    ph = _PHASE_OF.get(base_name(name))
    if ph == "power delivery" and message is not None and name.endswith("Req"):
        if _power_delivery_stop(message):
            return "stopping"
    return ph


#: The phase of the events of the layers below V2G (a layer not listed has none).
_LAYER_PHASE = {"slac": "SLAC", "sdp": "SDP", "tcp": "TCP", "tls": "TLS"}


def event_phase(e) -> str | None:
    """The phase (one of :data:`PHASES`) an event belongs to: a V2G message's by
    :func:`phase_of`, a SLAC / SDP / TCP / TLS event its layer's; None for the others."""
    return phase_of(e.name, e.message) if e.layer == "v2gtp" else _LAYER_PHASE.get(e.layer)


def _power_delivery_stop(message) -> bool:
    _, body = message_body(message)
    return body.get("ChargeProgress") in ("Stop", "Standby") or body.get("ReadyToChargeState") is False


#: Each phase's place in :data:`PHASES`.
_RANK = {ph: i for i, ph in enumerate(PHASES)}


def _rank(phase: str | None) -> int:
    return _RANK.get(phase, -1)


def _stop(kind, reason, by=None, e=None, timer=None, frame=None, time=None) -> dict:
    return {"kind": kind, "reason": reason, "by": by,
            "frame": e.frame if e is not None else frame, "time": e.time if e is not None else time,
            "timer": timer}


def _result(outcome, reached, stop, detail=None) -> dict:
    by = stop.get("by") if stop else None
    out = {"outcome": outcome, "phase_reached": reached, "stopped_by": by, "stop_reason": stop}
    if detail:
        out["detail"] = detail
    return out


# ---------------------------------------------------------------------------- entry point
def session_outcome(session, summary: dict, connections: dict[int, dict],
                    capture_end: float | None = None) -> dict:
    """``{"outcome", "phase_reached", "stopped_by", "stop_reason", "energy_transferred"
    [, "detail"]}`` of a session (module docstring). ``capture_end``: epoch seconds of the
    capture's last frame (None: the session's last event)."""
    ev = session.events
    v2g = [e for e in ev if e.layer == "v2gtp" and e.message is not None]
    cap_end = capture_end if capture_end is not None else (ev[-1].time if ev else None)
    phases = [phase_of(e.name, e.message) for e in v2g]       # one per message, read often
    reached = max(set(phases), key=_rank, default=None)
    if getattr(session, "basic", False):
        return _basic(session, cap_end)
    if getattr(session, "crosstalk", None):
        out = _result("crosstalk", "SLAC", _stop(None, f"another charger's traffic: {session.crosstalk}",
                                                   None, ev[0] if ev else None))
    elif not any(e.name == "SessionSetupRes" for e in v2g):
        out = _never(session, ev, v2g, connections, cap_end)
    else:
        out = _ended(session, v2g, phases, summary, reached, cap_end)
    if not getattr(session, "crosstalk", None):
        _unplugged(session, v2g, out)
    out["energy_transferred"] = energy_transferred(v2g, summary, phases)
    return out


#: Ends the control pilot can tell more about: when the pilot shows the EV unplugged (state A)
#: after the session's last V2G message and before the end was noticed, the unplug is why.
_UNPLUG_CAN_EXPLAIN = frozenset({"capture-ended", "no-response", "ev-abort", "evse-abort",
                                 "evse-timeout", "ev-timeout"})


def _unplugged(session, v2g, out: dict) -> None:
    """Replace the stop reason of a V2G session that broke off by an unplug the control pilot
    shows (IEC 61851-1 state A after B / C / D; analyzer/views/control_pilot.py): kind
    ``ev-unplugged``, outcome ``aborted by EV``."""
    stop = out.get("stop_reason") or {}
    if stop.get("kind") not in _UNPLUG_CAN_EXPLAIN or not v2g:
        return
    if any(e.name == "SessionStopRes" for e in v2g):
        return
    from ccs_analyzer.analyzer.views.control_pilot import build_cp_view

    last = v2g[-1].time
    t_end = stop.get("time") if stop.get("kind") != "capture-ended" else None
    for tr in build_cp_view(session.events).unplugs:
        if tr.time >= last - 1.0 and (t_end is None or tr.time <= t_end + 1.0):
            out.update(_result("aborted by EV", out.get("phase_reached"), _stop(
                "ev-unplugged", f"the EV was unplugged (control pilot {tr.before} → A, frame "
                f"{tr.frame}) without an orderly stop", "EV", tr.sample)))
            return


def energy_transferred(v2g, summary: dict, phases: list | None = None) -> bool | None:
    """Whether the session transferred energy: the integrated EVSEPresentVoltage ×
    EVSEPresentCurrent (summary ``energy_wh``) above 1 Wh; or the EVSE delivering what the
    EV asked (EVSEPresentCurrent ≥ 0.5 A and ≥ half of EVTargetCurrent in two loop cycles —
    a short test loop at 1 A); or the EV's SoC rising by a point or more during the charge
    loop; AC without values: a charge loop of ≥ 10 s (the meter readings count in
    ``energy_wh``). False when the loop shows none of this (or there was no loop), None when
    the traffic cannot tell. ``phases``: :func:`phase_of` of each of ``v2g`` when known."""
    if phases is None:
        phases = [phase_of(e.name) for e in v2g]
    loop = [e for e, ph in zip(v2g, phases) if ph == "charging"
            and base_name(e.name) not in ("MeteringReceipt", "MeteringConfirmation")]
    res = [e for e in loop if e.name.endswith("Res")]
    if not res:
        return False
    if (summary.get("energy_wh") or 0.0) > _ENERGY_WH:
        return True
    socs = [event_facts(e).get("SoC_pct") for e in loop if e.name.endswith("Req")]
    socs = [x for x in socs if x is not None]
    if len(socs) >= 2 and max(socs) - socs[0] >= 1.0:
        return True
    served, asked = 0, None
    for e in loop:
        f = event_facts(e)
        if e.name.endswith("Req"):
            asked = f.get("EVTargetCurrent_A")
            continue
        got = f.get("EVSEPresentCurrent_A")
        if got is not None and asked is not None and asked >= 0.5 and got >= max(0.5, 0.5 * asked):
            served += 1
    if served >= 2:
        return True
    if any("EVSEPresentCurrent_A" in event_facts(e) for e in res):
        return False
    if res[-1].time - res[0].time >= _AC_LOOP_S:
        return True
    return None


# ---------------------------------------------------------------------------- basic charging
#: A basic session transferred energy when the EV was in C / D under a nominal PWM this long
#: (s), or the test system's meter read this much current (A) with the contactor closed.
_BASIC_CHARGE_S = 1.0
_BASIC_CURRENT_A = 0.5


def _basic(session, cap_end) -> dict:
    """The outcome of a basic session (IEC 61851-1 only, analyzer/sessions.py
    ``Session.basic``), from its control pilot (analyzer/views/control_pilot.py).

    Phase reached: ``plugged in`` (B), ``charging`` (C / D under a nominal PWM). Stop reasons
    (IEC 61851-1 Annex A, Tables A.3 / A.8): the EVSE switched its PWM off while the EV was in
    C / D (``evse-end``, the EV then released to B: ``completed normally``); the EV went from
    C / D to B under PWM (``ev-stop``, ``completed normally``); state E / F (``cp-error``,
    ``aborted by EVSE``); the EV unplugged straight from C / D (``ev-unplugged``, ``aborted by
    EV``); still connected when the capture ended (``capture ended``). Energy transferred:
    ≥ 1 s in C2 / D2 at a nominal duty cycle, or a metered current ≥ 0.5 A with the contactor
    closed."""
    from ccs_analyzer.analyzer.views.control_pilot import build_cp_view

    v = build_cp_view(session.events)
    trs = v.transitions
    charged = False
    for i, tr in enumerate(trs):
        if tr.after in ("C2", "D2") and tr.sample.pwm_current_A is not None:
            end = trs[i + 1].time if i + 1 < len(trs) else cap_end
            if end is not None and end - tr.time >= _BASIC_CHARGE_S:
                charged = True
    if any(x.contactor == "closed" and (x.present_current_A or 0) >= _BASIC_CURRENT_A
           for x in v.samples):
        charged = True
    reached = "charging" if any(tr.after[0] in "CD" for tr in trs) else "plugged in"
    stop = None
    outcome = "capture ended"
    for i, tr in enumerate(trs):
        prev = tr.before or ""
        if tr.after in ("E", "F"):
            stop = _stop("cp-error", f"control pilot state {tr.after} "
                         f"({'pilot shorted or EVSE without supply' if tr.after == 'E' else 'EVSE not available'}, "
                         "IEC 61851-1 Table A.3)", "EVSE", tr.sample)
            outcome = "aborted by EVSE"
        elif prev[:1] in ("C", "D") and tr.after[:1] in ("C", "D") and prev.endswith("2") \
                and tr.after.endswith("1"):
            stop = _stop("evse-end", f"the EVSE switched its PWM off ({prev} → {tr.after}): "
                         "charging no longer allowed (IEC 61851-1 Table A.8)", "EVSE", tr.sample)
            outcome = "completed normally" if charged else "stopped by EVSE"
        elif prev[:1] in ("C", "D") and tr.after[:1] == "B":
            if stop is None or stop["kind"] not in ("evse-end", "cp-error"):
                stop = _stop("ev-stop", f"the EV stopped charging ({prev} → {tr.after})", "EV",
                             tr.sample)
                outcome = "completed normally" if charged else "stopped by EV"
        elif prev[:1] in ("C", "D") and tr.after[:1] == "A":
            stop = _stop("ev-unplugged", f"the EV was unplugged while charging ({prev} → A)",
                         "EV", tr.sample)
            outcome = "aborted by EV"
        elif tr.after[:1] in ("C", "D"):
            stop, outcome = None, "capture ended"          # charging (again)
    if stop is None:
        last = v.states[-1] if v.states else None
        stop = _stop("capture-ended", "the capture ended while the EV was "
                     f"{'plugged in' if last is None or last.letter != 'A' else 'unplugged'}"
                     f" (state {last.state if last else '?'})", None, last)
        if last is not None and last.letter == "A":
            outcome = "completed normally" if charged else "stopped by EV"
            stop = _stop("ev-stop" if not charged else "ev-stop",
                         "the EV was unplugged without charging" if not charged
                         else "the EV was unplugged after charging", "EV", last)
    out = _result(outcome, reached, stop)
    out["energy_transferred"] = charged
    return out


# ---------------------------------------------------------------------------- never set up
def _never(session, ev, v2g, connections, cap_end) -> dict:
    """A session whose V2G session was never set up: ``never got past <phase>`` or, when
    the capture ended before that phase could have failed, ``capture ended``."""
    conns = [connections.get(c, {}) for c in _own_connections(session)]
    established = any(c.get("synack_frame") is not None or c.get("v2g_messages")
                      or c.get("syn_frame") is None and c.get("frames") for c in conns)
    tls = any(c.get("kind") == "tls" for c in conns)
    last = ev[-1] if ev else None
    if v2g or any(e.layer == "v2gtp" for e in ev):
        sap = next((e for e in reversed(v2g) if e.name == "supportedAppProtocolRes"), None)
        rc = event_facts(sap).get("ResponseCode") if sap is not None else None
        if sap is not None and isinstance(rc, str) and rc.startswith("Failed"):
            stop = _stop("handshake-failed", f"supportedAppProtocolRes {rc}", "EVSE", sap)
        elif v2g and v2g[-1].name.endswith("Req") and _within(cap_end, v2g[-1], 2.0):
            return _result("capture ended", "handshake",
                           _stop("capture-ended", f"capture ended {_ago(cap_end, v2g[-1])} after "
                                 f"{v2g[-1].name} (frame {v2g[-1].frame})", None, v2g[-1]))
        else:
            x = v2g[-1] if v2g else next(e for e in reversed(ev) if e.layer == "v2gtp")
            stop = _stop("handshake-failed", f"no V2G session set up after {x.name} "
                         f"(frame {x.frame})", None, x)
        return _result("never got past handshake", "handshake", stop)
    if tls and established:
        x = next((e for e in reversed(ev) if e.layer == "tls"), last)
        return _result("never got past TLS", "TLS",
                       _stop("tls-failed", f"TLS handshake not completed ({x.name}, frame {x.frame})",
                             None, x))
    if session.connections and conns:
        if not established:
            x = next((e for e in ev if e.layer == "tcp" and e.name in (TCP_RST, TCP_SYN)), last)
            refused = any(e.layer == "tcp" and e.name == TCP_RST for e in ev)
            why = "refused (RST)" if refused else "never answered"
            return _result("never got past TCP", "TCP",
                           _stop("tcp-failed", f"TCP connection {why}", "EVSE" if refused else None, x))
        return _result("never got past handshake", "handshake",
                       _stop("handshake-failed", "TCP connected but no V2G message exchanged",
                             None, last))
    if session.has_sdp:
        sdp = [e for e in ev if e.layer == "sdp"]
        answered = any(e.direction == "EVSE->EV" for e in sdp)
        if not answered and sdp and _within(cap_end, sdp[-1], 2.0):
            return _result("capture ended", "SDP",
                           _stop("capture-ended", f"capture ended {_ago(cap_end, sdp[-1])} after the "
                                 f"SDP request (frame {sdp[-1].frame})", None, sdp[-1]))
        if answered:
            x = next(e for e in reversed(sdp) if e.direction == "EVSE->EV")
            return _result("never got past TCP", "TCP",
                           _stop("tcp-failed", "SDP answered but the EV opened no TCP connection",
                                 "EV", x))
        return _result("never got past SDP", "SDP",
                       _stop("sdp-failed", f"{len(sdp)} SDP request(s) never answered", "EVSE", sdp[-1]
                             if sdp else last))
    slac = [e for e in ev if e.layer == "slac"]
    match = next((e for e in reversed(slac) if e.name == "CM_SLAC_MATCH.CNF"), None)
    torn = _link_torn_down(slac, match)
    if not torn and slac and _within(cap_end, slac[-1], 10.0 if match is None else 12.0):
        # ISO 15118-3: the EV may retry within TT_matching_repetition (10 s) and has
        # TT_match_join (12 s) after the match to start SDP: a capture that ends sooner
        # cannot show a failure.
        x = slac[-1]
        return _result("capture ended", "SLAC",
                       _stop("capture-ended", f"capture ended {_ago(cap_end, x)} after {x.name} "
                             f"(frame {x.frame}), during SLAC", None, x))
    if match is not None:
        reason = "SLAC matched but no SDP followed"
        if torn is not None:
            reason += f" (the EVSE's modem left the logical network: {torn.name}, frame {torn.frame})"
        return _result("never got past SLAC", "SLAC", _stop("slac-failed", reason, None, torn or match))
    x = slac[-1] if slac else last
    return _result("never got past SLAC", "SLAC",
                   _stop("slac-failed", "SLAC matching not completed", None, x))


def _link_torn_down(slac, match):
    """The event that shows the EVSE's modem left the logical network (a new CM_SET_KEY.REQ
    with a new NMK from the EVSE's host) after the last SLAC run, or None."""
    runs = [e for e in slac if e.name in ("CM_SLAC_PARM.REQ", "CM_SLAC_MATCH.CNF",
                                          "CM_MNBC_SOUND.IND", "CM_ATTEN_CHAR.IND")]
    after = runs[-1].time if runs else None
    if after is None:
        return None
    return next((e for e in slac if e.time > after and e.name == "CM_SET_KEY.REQ"), None)


def _within(cap_end, e, seconds: float) -> bool:
    return cap_end is not None and e is not None and cap_end - e.time < seconds


def _ago(cap_end, e) -> str:
    return f"{max(0.0, cap_end - e.time):.2f} s" if cap_end is not None else "?"


def _own_connections(session) -> list[int]:
    """The session's connections without the post-session retries (refused reconnects)."""
    retries = set(getattr(session, "retry_connections", ()) or ())
    return [c for c in session.connections if c not in retries]


# ---------------------------------------------------------------------------- set up
def _ended(session, v2g, phases, summary, reached, cap_end) -> dict:
    """The outcome of a session that was set up; ``phases``: :func:`phase_of` of each of
    ``v2g``."""
    protocol = summary.get("protocol")
    init = _initiation(v2g, phases)
    close = _close(session, v2g)
    stop_req = next((e for e in reversed(v2g) if e.name == "SessionStopReq"), None)
    stop_res = next((e for e in reversed(v2g) if e.name == "SessionStopRes"), None)
    charged = "charging" in phases
    timer = _loop_timer(v2g, protocol, init, close, stop_req)
    if stop_res is not None and not _failed(stop_res):
        return _orderly(init, timer, stop_req, stop_res, charged, reached)
    # no (successful) SessionStop
    if timer is not None:
        return _result("timed out", reached, timer)
    pending = _pending_at(v2g, close[0] if close else None)
    if close is not None:
        t_close, by, what, ce = close
        if pending is not None:
            limit = _msg_timeout(protocol, pending.name)
            waited = t_close - pending.time
            if by == "EV" and limit is not None and waited >= _TIMER_SHARE * limit:
                return _result("timed out", reached,
                               _stop("ev-timeout", f"the EV gave up waiting for {base_name(pending.name)}Res "
                                     f"after {waited:.2f} s ({what}, frame {ce.frame}): "
                                     f"V2G_EVCC_Msg_Timeout ({limit:g} s) expired", "EV", pending,
                                     timer="V2G_EVCC_Msg_Timeout"))
            if by == "EV":
                return _result("aborted by EV", reached,
                               _stop("ev-abort", f"{what} {waited:.2f} s after {pending.name} (frame "
                                     f"{pending.frame}), before its response and before the EV's "
                                     f"message timeout", "EV", ce), detail=what)
            return _result("aborted by EVSE", reached,
                           _stop("evse-abort", f"{what} instead of answering {pending.name} (frame "
                                 f"{pending.frame})", "EVSE", ce), detail=what)
        reason = f"{what} (frame {ce.frame})"
        if init is not None:
            reason = f"{init['reason']}, then {reason}"
        kind = "ev-abort" if by == "EV" else "evse-abort"
        ignored = _requests_after(v2g, phases, init) if init is not None and init["kind"] == "evse-stop" else 0
        if init is not None and init["kind"] == "evse-stop" and by == "EVSE" and ignored:
            # the EV went on after the stop request and the EVSE cut the connection: the
            # session ended on the EVSE's abort, which the EV's not stopping explains
            stop = _stop("evse-abort", f"{init['reason']}; the EV went on with {ignored} more "
                         f"request(s), then {what} (frame {ce.frame})", "EVSE", ce)
        elif init is not None and init["kind"] in ("ev-error", "evse-stop", "evse-refused"):
            kind = init["kind"]
            stop = dict(init, reason=reason)
        else:
            stop = _stop(kind, reason, by, ce)
        return _result(f"aborted by {by}", reached, stop, detail=what)
    # neither SessionStop nor a close: the capture ended, or the SECC went silent
    last = v2g[-1]
    if pending is not None and pending is last:
        limit = _msg_timeout(protocol, last.name)
        if limit is not None and cap_end is not None and cap_end - last.time >= limit \
                and init is None:
            return _result("timed out", reached,
                           _stop("no-response", f"{last.name} (frame {last.frame}) got no response "
                                 f"for {cap_end - last.time:.2f} s (V2G_EVCC_Msg_Timeout {limit:g} s)",
                                 "EVSE", last, timer="V2G_EVCC_Msg_Timeout"),
                           detail=f"{last.name} (frame {last.frame}) got no response")
    if init is not None:
        who = "EVSE" if init["kind"] in ("evse-stop", "evse-refused") else "EV"
        outcome = "paused" if init["kind"] == "ev-pause" else f"stopped by {who}"
        if init["kind"] == "ev-stop" and charged:
            outcome = "stopped by EV"
        return _result(outcome, reached, dict(init, reason=f"{init['reason']}; the capture ended "
                                              f"before the session did"))
    return _result("capture ended", reached,
                   _stop("capture-ended", f"capture ended during {reached or 'the session'} "
                         f"(last message {last.name}, frame {last.frame})", None, last))


def _orderly(init, timer, stop_req, stop_res, charged, reached) -> dict:
    """A session that ended with SessionStopRes OK: by whom and why."""
    if init is not None and init["kind"] in ("evse-stop", "evse-refused"):
        return _result("stopped by EVSE", reached, init)
    if init is not None and init["kind"] == "ev-error":
        return _result("stopped by EV", reached, init)
    if timer is not None:
        return _result("timed out", reached, timer)
    pause = message_body(stop_req.message)[1].get("ChargingSession") == "Pause" if stop_req else False
    if pause:
        return _result("paused", reached, _stop("ev-pause", "the EV paused the session "
                                                "(SessionStopReq ChargingSession=Pause)", "EV",
                                                stop_req))
    stop = init if init is not None else _stop("ev-stop", "the EV ended the session with SessionStop",
                                               "EV", stop_req or stop_res)
    return _result("completed normally" if charged else "stopped by EV", reached, stop)


def _failed(e) -> bool:
    return is_failed(event_facts(e).get("ResponseCode"))


def _ev_error(f: dict) -> str | None:
    """The EVErrorCode of a request's facts ``f`` when it is an error, else None."""
    err = f.get("EVErrorCode")
    if isinstance(err, str) and err not in _NO_ERROR:
        return err
    return None


def _evse_stop_signal(f: dict) -> str | None:
    """The stop signal (stopping EVSEStatusCode, EVSENotification) in a response's facts
    ``f``, as text; None without one."""
    if f.get("EVSEStatusCode") not in EVSE_STOP_STATUS and \
            f.get("EVSENotification") not in EVSE_STOP_NOTIFICATION:
        return None             # the common case: no stop signal
    what = [x for x in (f.get("EVSEStatusCode") if f.get("EVSEStatusCode") in EVSE_STOP_STATUS else None,
                        f.get("EVSENotification") if f.get("EVSENotification") in EVSE_STOP_NOTIFICATION
                        else None) if x]
    return " + ".join(what) if what else None


def _initiation(v2g, phases) -> dict | None:
    """The event that started the session's end, as a stop reason: the first stop signal of
    the final stretch — an EVSE stop request (EVSENotification StopCharging / Terminate,
    EVSE_Shutdown or a fault status), a FAILED response, an EV error code, or the EV's own
    stop (PowerDelivery Stop / ReadyToChargeState false, SessionStopReq) — that the session
    never recovered from (a later ordinary exchange of a progressing phase cancels it).
    ``phases``: :func:`phase_of` of each of ``v2g``."""
    cur = None
    for e, ph in zip(v2g, phases):
        name = e.name
        if name.startswith("supportedAppProtocol"):
            continue
        f = event_facts(e)
        if e.direction == "EVSE->EV" and name.endswith("Res"):
            rc = f.get("ResponseCode")
            if is_failed(rc):
                if cur is None:
                    cur = _stop("evse-refused", f"{name} (frame {e.frame}) answered {rc}", "EVSE", e)
                continue
            sig = _evse_stop_signal(f)
            if sig is not None:
                if cur is None:
                    cur = _stop("evse-stop", f"the EVSE asked the EV to stop: {sig} in {name} "
                                f"(frame {e.frame})", "EVSE", e)
                continue
            if cur is not None and ph not in ("stopping", "session stop", "power delivery", None) \
                    and cur["kind"] not in ("ev-stop", "ev-pause") and not _ongoing_stop(cur, e):
                cur = None        # an ordinary response of a progressing phase: recovered
            continue
        if e.direction != "EV->EVSE" or not name.endswith("Req"):
            continue
        err = _ev_error(f)
        if err is not None:
            if cur is None:
                cur = _stop("ev-error", f"the EV reported EVErrorCode {err} in {name} (frame {e.frame})",
                            "EV", e)
            continue
        if name == "SessionStopReq" or ph == "stopping":
            if cur is None:
                cur = _ev_stop(e)
            continue
        if cur is not None and ph not in ("session stop", "power delivery", None) \
                and cur["kind"] in ("ev-error", "ev-stop", "ev-pause"):
            cur = None            # the EV went on charging: it recovered from its error
    return cur


def _requests_after(v2g, phases, init) -> int:
    """How many of the EV's requests after a stop signal were not a stop (PowerDelivery Stop,
    WeldingDetection, SessionStop); ``phases``: :func:`phase_of` of each of ``v2g``."""
    n = 0
    for e, ph in zip(v2g, phases):
        if e.time <= init["time"] or e.direction != "EV->EVSE" or not e.name.endswith("Req"):
            continue
        if e.name == "SessionStopReq" or ph == "stopping":
            break
        n += 1
    return n


def _ongoing_stop(cur, e) -> bool:
    """Whether a response still belongs to an EVSE stop in force (the EV reacts within
    NotificationMaxDelay; responses of that time may look ordinary)."""
    return cur["kind"] == "evse-stop" and e.time - (cur["time"] or e.time) < 2.0


def _ev_stop(e) -> dict:
    """The stop reason of the EV's own stop request ``e``: target reached, pause, or no
    reason signalled (ISO 15118-2 / DIN 70121 PowerDeliveryReq ChargeProgress /
    ReadyToChargeState, DC_EVStatus / DC_EVPowerDeliveryParameter ChargingComplete,
    SessionStopReq ChargingSession)."""
    _, body = message_body(e.message)
    if e.name == "SessionStopReq" and body.get("ChargingSession") == "Pause":
        return _stop("ev-pause", "the EV paused the session (SessionStopReq ChargingSession=Pause)",
                     "EV", e)
    complete = find_first(body, "ChargingComplete")
    soc = event_facts(e).get("SoC_pct")
    full = soc is not None and soc >= 100.0
    if complete is True or full:
        why = "ChargingComplete=true" if complete is True else "battery full"
        reason = f"the EV reached its target ({why}"
        reason += f", SoC {soc:g} %)" if soc is not None else ")"
    else:
        what = "PowerDeliveryReq (ChargeProgress Stop)" if e.name == "PowerDeliveryReq" else e.name
        reason = f"the EV stopped without a reason signalled ({what}, frame {e.frame}"
        reason += f", SoC {soc:g} %)" if soc is not None else ")"
    out = _stop("ev-stop", reason, "EV", e)
    out["target_reached"] = complete is True or full
    return out


def _close(session, v2g):
    """The first FIN / RST of the session's V2G connections after the session's last V2G
    request, as (time, "EV"/"EVSE", text, event), or None."""
    if not v2g:
        return None
    conns = {e.conn for e in v2g}
    last_req = max((e.time for e in v2g if e.name.endswith("Req")), default=v2g[0].time)
    for e in session.events:
        if e.layer == "tcp" and e.name in (TCP_FIN, TCP_RST) and e.conn in conns and e.time >= last_req:
            side = "EV" if e.direction == "EV->EVSE" else "EVSE"
            what = f"TCP {'reset (RST)' if e.name == TCP_RST else 'closed (FIN)'} by the {side}"
            return e.time, side, what, e
    return None


def _pending_at(v2g, t):
    """The EV's last request before time ``t`` (None: the end of the messages) whose response
    had not come by then, or None."""
    last_req = None
    for e in v2g:
        if t is not None and e.time > t:
            break
        if e.name.endswith("Req"):
            last_req = e
        elif last_req is not None and base_name(e.name) == base_name(last_req.name) \
                and e.conn == last_req.conn:
            last_req = None
    return last_req


def _msg_timeout(protocol, name) -> float | None:
    t = lookup(MSG_TIMEOUT, protocol, base_name(name)) if protocol else None
    return t.seconds if t is not None else None


def _loop_timer(v2g, protocol, init, close, stop_req) -> dict | None:
    """A stop reason ``ev-timeout`` when the EV ended the session at the end of a CableCheck
    / PreCharge loop, or of an EVSEProcessing=Ongoing loop, that had run for the EV's timer
    (≥ 95 %): V2G_EVCC_CableCheck_Timeout, V2G_EVCC_PreCharge_Timeout,
    V2G_EVCC_Ongoing_Timeout (ISO 15118-2 [V2G2-700..713] Tables 109/111; DIN 70121 Tables
    75/77; ISO 15118-20 Table 215). None otherwise."""
    if not protocol or not v2g:
        return None
    if init is not None and init["kind"] in ("evse-stop", "evse-refused", "ev-error"):
        return None
    end_t = None
    if stop_req is not None:
        end_t = stop_req.time
    if close is not None and (end_t is None or close[0] < end_t):
        end_t = close[0]
    if init is not None and init["kind"] in ("ev-stop", "ev-pause") and init["time"] is not None:
        end_t = min(end_t, init["time"]) if end_t is not None else init["time"]
    if end_t is None:
        return None
    # the last run of one request name before the end, with its responses
    before = [e for e in v2g if e.time <= end_t + 1e-6 and e.name not in ("SessionStopReq",)]
    reqs = [e for e in before if e.name.endswith("Req")]
    if not reqs:
        return None
    name = base_name(reqs[-1].name)
    if name == "PowerDelivery" and reqs[-1].message is not None and _power_delivery_stop(reqs[-1].message):
        reqs = reqs[:-1]
        if not reqs:
            return None
        name = base_name(reqs[-1].name)
    run = []
    for e in reversed(reqs):
        if base_name(e.name) != name:
            break
        run.append(e)
    run.reverse()
    first = run[0]
    res = [e for e in before if base_name(e.name) == name and e.name.endswith("Res")
           and e.time >= first.time]
    ongoing = bool(res) and all(event_facts(r).get("EVSEProcessing") == "Ongoing" for r in res[-1:])
    table = _LOOP_TIMERS.get(name)
    if table is None and ongoing and name in _ONGOING_LOOPS:
        table = ONGOING_TIMEOUT
    if table is None:
        return None
    if name in ("CableCheck", "DC_CableCheck") and not ongoing:
        return None
    timer = table.get(protocol)
    if timer is None or timer.seconds is None:
        return None
    ran = end_t - first.time
    if ran < _TIMER_SHARE * timer.seconds:
        return None
    last = run[-1]
    return _stop("ev-timeout", f"{name} ran {ran:.1f} s ({len(run)} requests from frame {first.frame}) "
                 f"without finishing: the EV's {timer.name} ({timer.seconds:g} s) expired",
                 "EV", last, timer=timer.name)
