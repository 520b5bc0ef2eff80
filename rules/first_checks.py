"""A first handful of obvious checks (the full rule pack is built on rules/base.py).

Each class is one rule; its docstring is its page (``ccs-analyzer rules explain CODE``).
"""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import event_facts, message_body, physical_fields

from .base import Rule

_LOOP_ENDS = ("SessionStopRes",)


class CaptureDamaged(Rule):
    """The capture file is damaged or cut short.

    What it checks: the reader's problems — a truncated last block, corrupted blocks skipped
    while resynchronising, packets cut by the snap length.
    Why it matters: frames are missing from the analysis; findings near the damage may be
    artefacts of the capture, not of the charger or the vehicle.
    Fix (capture): stop the capture cleanly (let the capture tool flush), capture with a
    snap length of at least 1600 bytes, check the storage medium.
    Source: pcapng (draft-ietf-opsawg-pcapng §4) block framing; pcap record headers.
    """

    code = "CAP001"
    title = "Capture file damaged or cut short"
    severity = "warning"
    category = "capture-quality"
    culprit = "capture"
    scope = "capture"

    def check(self, session, ctx):
        for p in ctx.capture_problems:
            yield self.finding(None, [max(p["after_frame"], 1)],
                               f"Capture damaged at byte {p['offset']}: {p['reason']}",
                               evidence={"offset": p["offset"], "length": p["length"]})


class UndecodableMessage(Rule):
    """A V2GTP message could not be decoded.

    What it checks: every V2GTP message decodes with the negotiated schema (EXI), carries an
    EXI payload type, and the stream frames cleanly into V2GTP messages.
    Why it matters: the receiver cannot decode it either, unless the capture lost bytes; it
    answers with a failure or drops the connection (ISO 15118-2 §7.8.3.2 header checks,
    V2G2 FaultCode ParsingError).
    Fix (sender): validate the EXI encoder against the XSD of the negotiated protocol; check
    the V2GTP header (version 0x01, inverse 0xFE, payload type, length).
    Source: ISO 15118-2 §7.8.3 (V2GTP), W3C EXI 1.0; PROTOCOL_FACTS §1.1.
    """

    code = "MSG001"
    title = "V2GTP message not decodable"
    severity = "error"
    category = "message-content"
    culprit = "unknown"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        for e in session.events:
            if e.layer == "v2gtp" and e.error:
                culprit = "EVCC" if e.direction == "EV->EVSE" else "SECC" if e.direction == "EVSE->EV" else "unknown"
                lost = "missing from the capture" in (e.error or "")
                yield self.finding(session, [e.frame, e.first_frame], f"{e.name} in frame {e.frame} "
                                   f"could not be decoded: {e.error}", time=e.time,
                                   culprit="capture" if lost else culprit,
                                   severity="warning" if lost else None,
                                   evidence={"error": e.error,
                                             "hex": e.payload.hex() if e.payload else None})


class FailedResponseCode(Rule):
    """A response carries a FAILED ResponseCode.

    What it checks: the ResponseCode of every V2G response (DIN 70121, ISO 15118-2,
    ISO 15118-20) and of supportedAppProtocolRes (Failed_NoNegotiation).
    Why it matters: after a FAILED_* response the session terminates (ISO 15118-2 [V2G2-539],
    DIN [V2G-DC-665]); the code names why the SECC refused.
    Fix: see the code: FAILED_SequenceError → the EVCC sent a request out of order;
    FAILED_UnknownSession → wrong SessionID; FAILED_WrongChargeParameter → EV limits
    inconsistent with the energy transfer mode; plain FAILED → SECC internal failure.
    Source: ISO 15118-2 Table 105 responseCodeType; DIN 70121 responseCodeType;
    ISO 15118-20 responseCodeType; PROTOCOL_FACTS §4.0.
    """

    code = "RSP001"
    title = "FAILED response code"
    severity = "error"
    category = "response-code"
    culprit = "SECC"
    failure_modes = ("UC2 100", "UC2 107")

    def check(self, session, ctx):
        for e in session.events:
            if e.layer != "v2gtp" or e.message is None or not e.name.endswith("Res"):
                continue
            rc = event_facts(e).get("ResponseCode")
            if isinstance(rc, str) and rc.upper().startswith("FAILED"):
                yield self.finding(session, [e.frame], f"{e.name} in frame {e.frame} answers "
                                   f"{rc}", time=e.time, measured=rc, limit="OK*",
                                   evidence={"expected": "ResponseCode OK*", "actual": rc,
                                             "message": e.name})


class PreChargeTimeout(Rule):
    """PreCharge did not bring the EVSE output to the EV's target voltage in time.

    What it checks: from the first PreChargeReq, EVSEPresentVoltage in PreChargeRes must come
    within ``tolerance_v`` of EVTargetVoltage before ``limit_s``; a PreCharge loop that runs
    longer than ``limit_s``, or after which the session stops instead of continuing with
    PowerDeliveryReq, is a finding (an EV that accepts a lower voltage and goes on is not).
    Why it matters: the EV aborts the session (V2G_EVCC_PreCharge_Timeout); closing the
    contactors onto a voltage difference damages them.
    Fix (SECC): ramp the converter faster, report the measured output voltage; check the
    load (a parallel capacity or a lamp load keeps the voltage down).
    Source: ISO 15118-2 Table 109/111 V2G_EVCC_PreCharge_Timeout = 7 s ([V2G2-704..707]);
    DIN 70121 7 s (⚠ some editions 10 s); 20 V tolerance per IEC 61851-23 practice
    (PROTOCOL_FACTS §4D, ⚠ not a quoted 15118 value).
    """

    code = "PRE001"
    title = "PreCharge did not reach the target voltage in time"
    severity = "error"
    category = "precharge"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-704..707] V2G_EVCC_PreCharge_Timeout"
    failure_modes = ("UC2 156",)
    params = {"limit_s": 7.0, "tolerance_v": 20.0}

    def check(self, session, ctx):
        first = last_res = None
        target = None
        progression = []
        reached_at = None
        after = None
        for e in session.events:
            if e.layer != "v2gtp" or e.message is None:
                continue
            if e.name in ("PreChargeReq", "DC_PreChargeReq"):
                _, body = message_body(e.message)
                if first is None:
                    first = e
                target = physical_fields(body).get("EVTargetVoltage", target)
            elif e.name in ("PreChargeRes", "DC_PreChargeRes") and first is not None:
                _, body = message_body(e.message)
                v = physical_fields(body).get("EVSEPresentVoltage")
                last_res = e
                if v is not None:
                    progression.append((round(e.time - first.time, 3), v))
                    if reached_at is None and target is not None and abs(v - target) <= self.p["tolerance_v"]:
                        reached_at = (e, v)
            elif first is not None:
                after = e
                break
        if first is None or last_res is None:
            return
        limit = self.p["limit_s"]
        vmax = max((v for _, v in progression), default=None)
        duration = last_res.time - first.time
        moved_on = after is not None and after.name in ("PowerDeliveryReq",)
        statuses = sorted({str(_status(e)) for e in session.events
                           if e.layer == "v2gtp" and e.message is not None
                           and e.name in ("PreChargeRes", "DC_PreChargeRes") and _status(e)})
        not_ready = [st for st in statuses if st not in ("EVSE_Ready", "None")]
        if reached_at is not None:
            e, v = reached_at
            if e.time - first.time > limit:
                yield self.finding(session, [first.frame, e.frame],
                                   f"PreCharge took {e.time - first.time:.1f} s to reach {v:.1f} V "
                                   f"(target {target:.1f} V); limit {limit} s", time=e.time,
                                   measured=round(e.time - first.time, 3), limit=limit, unit="s",
                                   evidence={"progression_s_V": _thin(progression)})
            elif not moved_on and duration > limit:
                why = (f"; the EVSE reported {', '.join(not_ready)} in PreChargeRes"
                       if not_ready else "")
                end = (f"then {after.name} (frame {after.frame})" if after is not None
                       else "and the session ended")
                yield self.finding(session, [first.frame, e.frame, last_res.frame]
                                   + ([after.frame] if after else []),
                                   f"PreCharge reached {v:.1f} V (target {target:.1f} V) after "
                                   f"{e.time - first.time:.1f} s but ran {duration:.1f} s without the EV "
                                   f"going on, {end}{why}", time=first.time,
                                   measured=round(duration, 3), limit=limit, unit="s",
                                   evidence={"expected": "PowerDeliveryReq once the voltage is reached",
                                             "actual": f"{duration:.1f} s of PreCharge, {end}",
                                             "EVSEStatusCode": statuses,
                                             "progression_s_V": _thin(progression)})
            return
        if duration <= limit and moved_on:
            return
        tgt = f"{target:.1f} V" if target is not None else "the target"
        end = (f"then {after.name} (frame {after.frame})" if after is not None
               else "and the session ended")
        yield self.finding(session, [first.frame, last_res.frame] + ([after.frame] if after else []),
                           f"PreCharge never reached {tgt}: at most {vmax:.1f} V, last "
                           f"{progression[-1][1]:.1f} V after {duration:.1f} s, {end}"
                           if vmax is not None else f"PreCharge never reported a voltage, {end}",
                           time=first.time, measured=vmax, limit=target, unit="V",
                           evidence={"expected": f"EVSEPresentVoltage within {self.p['tolerance_v']} V "
                                                 f"of {tgt} in {limit} s",
                                     "actual": f"max {vmax} V in {duration:.1f} s",
                                     "progression_s_V": _thin(progression)})


def _status(e):
    """EVSEStatusCode of a DC response (DC_EVSEStatus), or None."""
    from ccs_analyzer.analyzer.physical import find_first
    return find_first(message_body(e.message)[1], "EVSEStatusCode")


def _thin(points: list, n: int = 24) -> list:
    """At most ``n`` points of a progression, first and last kept."""
    if len(points) <= n:
        return points
    step = len(points) / (n - 1)
    return [points[int(i * step)] for i in range(n - 1)] + [points[-1]]


def session_last_frame(session, suffix: str) -> int | None:
    """Frame of the last V2GTP event whose name ends with ``suffix``."""
    for e in reversed(session.events):
        if e.layer == "v2gtp" and e.name.endswith(suffix):
            return e.frame
    return None


class NoSessionStop(Rule):
    """The V2G session ended without SessionStop.

    What it checks: a session that exchanged V2G messages ends with SessionStopReq/Res.
    Why it matters: the session broke off (timeout, crash, reset); the last messages before
    the end say where.
    Fix: look at the last request/response and the TCP close: the side that closed or stopped
    answering is the likely culprit.
    Source: ISO 15118-2 §8.8.4 message sequences (SessionStopReq ends a session,
    [V2G2-571]); DIN 70121 §9.6.
    """

    code = "SEQ001"
    title = "Session ended without SessionStop"
    severity = "warning"
    category = "sequence"
    culprit = "unknown"
    failure_modes = ("UC2 237", "UC2 238", "UC2 239")

    def check(self, session, ctx):
        v2g = [e for e in session.events if e.layer == "v2gtp" and e.message is not None]
        if not v2g or any(e.name == "SessionStopRes" for e in v2g):
            return
        if not any(e.name == "SessionSetupRes" for e in v2g):
            return
        last = v2g[-1]
        ended = ctx.summaries.get(session.id, {}).get("ended", {})
        culprit = {"EV": "EVCC", "EVSE": "SECC"}.get(ended.get("by"), "unknown")
        if last.name.endswith("Req"):
            culprit = "SECC"   # a request left unanswered
        yield self.finding(session, [last.frame, ended.get("frame")],
                           f"Session ended after {last.name} (frame {last.frame}) without "
                           f"SessionStop: {ended.get('how', 'unknown')}", time=last.time,
                           culprit=culprit, evidence={"last_message": last.name,
                                                      "ended": ended})


class TcpResetInSession(Rule):
    """TCP connections of the session were reset (RST) or refused.

    What it checks: RST segments on the session's V2G connections; a RST that answers the
    EV's SYN is a refused connection, and the port the EV connected to is compared with the
    SECCPort of the SDP response.
    Why it matters: a reset ends the V2G session abruptly; the side sending RST gave up
    (timeout, crash) or refused the connection (nothing listens on that port).
    Fix: the side that sent the RST: check its timers and logs; when the RST answers the SYN,
    the EV must connect to the address and port announced in the SDP response.
    Source: RFC 9293 §3.5.3 (reset generation); ISO 15118-2 §7.7.3 and §7.10.1 (TCP
    connection to the SDP-announced SECC address/port); PROTOCOL_FACTS §1.5 (d).
    """

    code = "TRN001"
    title = "TCP connection reset or refused"
    severity = "warning"
    category = "transport"
    culprit = "unknown"
    failure_modes = ("UC2 237", "UC2 100")

    def check(self, session, ctx):
        rsts = [e for e in session.events if e.layer == "tcp" and e.name == "RST"]
        if not rsts:
            return
        conns = {c["conn"]: c for c in ctx.connections}
        refused = [e for e in rsts if conns.get(e.conn, {}).get("synack_frame") is None]
        resets = [e for e in rsts if e not in refused]
        sdp_ports = {(e.message or {}).get("SECCPort") for e in session.events
                     if e.layer == "sdp" and e.direction == "EVSE->EV" and e.message}
        sdp_ports.discard(None)
        if refused:
            ports = sorted({int(conns[e.conn]["server"].rsplit(":", 1)[1]) for e in refused})
            frames = [conns[e.conn]["syn_frame"] for e in refused] + [e.frame for e in refused]
            wrong = [p for p in ports if sdp_ports and p not in sdp_ports]
            if wrong:
                syn = (f"{len(refused)} TCP connection(s) to port {', '.join(map(str, wrong))} refused "
                       f"(RST) by the EVSE: the SDP response announced port "
                       f"{', '.join(map(str, sorted(sdp_ports)))}")
                culprit = "EVCC"
            else:
                syn = (f"{len(refused)} TCP connection(s) to port {', '.join(map(str, ports))} refused "
                       "(RST answers the SYN): nothing listens there")
                culprit = "SECC"
            yield self.finding(session, frames, syn, time=refused[0].time, culprit=culprit,
                               measured=ports, limit=sorted(sdp_ports) or None,
                               evidence={"expected": f"connection to SDP SECCPort {sorted(sdp_ports)}",
                                         "actual": f"SYN to port(s) {ports} answered by RST"})
        if resets:
            sides = {"EVCC" if e.direction == "EV->EVSE" else "SECC" for e in resets}
            who = " and ".join("the EV" if s == "EVCC" else "the EVSE" for s in sorted(sides))
            idle = sum(1 for e in resets if not any(conns.get(e.conn, {}).get("bytes") or [0]))
            idle_txt = f", {idle} of them before any data" if idle else ""
            yield self.finding(session, [e.frame for e in resets],
                               f"{len(resets)} established TCP connection(s) reset by {who}"
                               f"{idle_txt} (first in frame {resets[0].frame})", time=resets[0].time,
                               culprit=sides.pop() if len(sides) == 1 else "unknown",
                               measured=len(resets))


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


FIRST_CHECKS = (CaptureDamaged, UndecodableMessage, FailedResponseCode, PreChargeTimeout,
                NoSessionStop, TcpResetInSession, SdpUnanswered, SlacIncomplete)
