"""Transport: TCP resets, retransmissions, V2GTP framing."""
from __future__ import annotations

from .base import Rule


class TcpConnectionRefused(Rule):
    """A TCP connection to the SECC was refused (RST answers the SYN).

    What it checks: RST segments that answer the EV's SYN on the session's V2G connections,
    and the port the EV connected to against the SECCPort of the SDP response.
    Why it matters: without a TCP connection there is no V2G session; when the EV connects
    to another port than the SDP response announced, the EV is at fault.
    Fix (EVCC): connect to the address and port of the SDP response; (SECC): listen on the
    port you announce.
    Source: ISO 15118-2 §7.7.3 and §7.10.1 (TCP connection to the SDP-announced SECC address
    and port), RFC 9293 §3.5.3 (reset generation); PROTOCOL_FACTS §1.5 (d).
    """

    code = "TRN001"
    title = "TCP connection refused"
    severity = "error"
    category = "transport"
    culprit = "unknown"
    requirement = "ISO 15118-2 §7.10.1 SDP response SECC address/port"
    failure_modes = ("UC2 100",)

    def check(self, session, ctx):
        rsts = [e for e in session.events if e.layer == "tcp" and e.name == "RST"]
        conns = {c["conn"]: c for c in ctx.connections}
        refused = [e for e in rsts if conns.get(e.conn, {}).get("synack_frame") is None]
        if not refused:
            return
        sdp_ports = {(e.message or {}).get("SECCPort") for e in session.events
                     if e.layer == "sdp" and e.direction == "EVSE->EV" and e.message}
        sdp_ports.discard(None)
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


class TcpResetInSession(Rule):
    """An established TCP connection of the session was reset (RST).

    What it checks: RST segments on the session's established V2G connections.
    Why it matters: a reset ends the V2G session abruptly; the side sending it gave up
    (timeout, crash, an error it answers with a reset). Usually the symptom of an earlier
    problem, which the report names as the root cause.
    Fix: the side that sent the RST: check its timers and logs around that frame.
    Source: RFC 9293 §3.5.3; ISO 15118-2 §7.7.3 (TCP usage).
    """

    code = "TRN002"
    title = "TCP connection reset during the session"
    severity = "warning"
    category = "transport"
    culprit = "unknown"
    consequence = True
    failure_modes = ("UC2 237",)

    def check(self, session, ctx):
        conns = {c["conn"]: c for c in ctx.connections}
        resets = [e for e in session.events if e.layer == "tcp" and e.name == "RST"
                  and conns.get(e.conn, {}).get("synack_frame") is not None]
        if not resets:
            return
        sides = {"EVCC" if e.direction == "EV->EVSE" else "SECC" for e in resets}
        who = " and ".join("the EV" if s == "EVCC" else "the EVSE" for s in sorted(sides))
        idle = sum(1 for e in resets if not any(conns.get(e.conn, {}).get("bytes") or [0]))
        idle_txt = f", {idle} of them before any data" if idle else ""
        yield self.finding(session, [e.frame for e in resets],
                           f"{len(resets)} established TCP connection(s) reset by {who}"
                           f"{idle_txt} (first in frame {resets[0].frame})", time=resets[0].time,
                           culprit=sides.pop() if len(sides) == 1 else "unknown",
                           measured=len(resets))
