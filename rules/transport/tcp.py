"""Transport rules on TCP connections: TRN001-TRN003, TRN007-TRN009."""
from __future__ import annotations

import ipaddress

from ccs_analyzer.analyzer.views.connections import half_open_retry, one_sided, retransmissions
from ccs_analyzer.analyzer.views.index import session_index
from ccs_analyzer.dissectors.events import TCP_FIN, TCP_OUT_OF_ORDER, TCP_RST, TCP_SYN

from ..base import Rule
from .common import _conns


def sdp_announcements(ctx) -> list:
    """Every SDP response of the capture as (time, frame, SECC address (ip_address or None),
    SECCPort), in time order — capture-wide, because a connection attempt may sit in another
    session than the SDP exchange it follows (built once per analysis)."""
    def build() -> list:
        out = []
        for s in ctx.sessions:
            for e in s.events:
                m = e.message if e.layer == "sdp" and e.direction == "EVSE->EV" else None
                if isinstance(m, dict) and m.get("SECCPort") is not None:
                    out.append((e.time, e.frame, _ip(m.get("SECCIPAddress")), m.get("SECCPort")))
        return sorted(out, key=lambda x: (x[0], x[1]))
    return ctx.view("transport.sdp", None, build)


def _latest_announcement(ctx, server: str, t: float):
    """The last SDP response before time ``t`` that announced the SECC at ``server``'s
    address (any address when it does not parse), or None."""
    ip = _ip(server, endpoint=True)
    best = None
    for x in sdp_announcements(ctx):
        if x[0] > t:
            break
        if ip is None or x[2] is None or x[2] == ip:
            best = x
    return best


class TcpConnectionRefused(Rule):
    """A TCP connection to the SECC was refused (RST answers the SYN).

    What it checks: the EV's SYNs on the session's connections that the EVSE answered with a
    RST (no SYN-ACK), and the port the EV connected to against the SECCPort of the last SDP
    response of that SECC before the SYN — looked up in the whole capture, since a retry can
    land in another session than its SDP exchange. Culprit EVCC when the port is not the one
    the SDP response announced (the EV's error, wherever the connection sits); SECC when it is
    (nothing listens on the port it announced); unknown when the capture holds no SDP
    response to compare with. A RST the EV sends itself (on a connection begun before the
    capture, or to a SYN-ACK it did not expect) is no refusal, nor is the half-open case
    TRN009 reports (the SECC answered the SYN with an old connection's ACK). Connections the
    EV retries after its session's own end (``Session.retry_connections`` after
    ``own_end_frame``, analyzer/sessions.py) to the announced port (or without SDP to compare)
    are a warning on the EV: the SECC need not listen once the session is over.
    Why it matters: without a TCP connection there is no V2G session; when the EV connects
    to another port than the SDP response announced, the EV is at fault.
    Fix (EVCC): connect to the address and port of the SDP response; (SECC): listen on the
    port you announce.
    Source: ISO 15118-2 §7.7.3 and §7.10.1 (TCP connection to the SDP-announced SECC address
    and port), RFC 9293 §3.5.3 (reset generation); PROTOCOL_FACTS §1.5 (d).

    Example:

        #34 SDP request → #35 SDP response SECCPort=63162
        … (4 more)
        #40 SYN EV→EVSE
        #41 RST EVSE→EV
    """

    code = "TRN001"
    title = "TCP connection refused"
    severity = "error"
    category = "transport"
    kinds = ("tcp-failed",)
    explains = ("tcp-failed",)
    culprit = "unknown"
    requirement = "ISO 15118-2 §7.10.1 SDP response SECC address/port"
    failure_modes = ("UC2 100",)

    def check(self, session, ctx):
        conns = {c["conn"]: c for c in ctx.connections}
        groups: dict = {}
        # the EV's retries after the session's own end (analyzer/sessions.py): the SECC need
        # not listen once the session is over
        retry = set(getattr(session, "retry_connections", ()) or ())
        own_end = getattr(session, "own_end_frame", None)
        late = []
        for e in session.events:
            if e.layer != "tcp" or e.name != TCP_RST or e.direction != "EVSE->EV":
                continue
            c = conns.get(e.conn, {})
            if c.get("synack_frame") is not None or c.get("syn_frame") is None:
                continue
            server = c.get("server", "")
            port = int(server.rsplit(":", 1)[1]) if ":" in server else None
            t_syn = next((x.time for x in session.events if x.layer == "tcp" and x.name == TCP_SYN
                          and x.conn == e.conn), e.time)
            sdp = _latest_announcement(ctx, server, t_syn)
            if sdp is None:
                culprit = "unknown"
            else:
                culprit = "SECC" if sdp[3] == port else "EVCC"
            if culprit != "EVCC" and e.conn in retry and own_end is not None and e.frame > own_end:
                late.append(e)
                continue
            groups.setdefault(culprit, []).append((e, c, port, sdp))
        for culprit, items in groups.items():
            refused = [x[0] for x in items]
            ports = sorted({x[2] for x in items if x[2] is not None})
            frames = [x[1]["syn_frame"] for x in items] + [e.frame for e in refused]
            sdps = sorted({(x[3][1], x[3][3]) for x in items if x[3] is not None})
            said = ", ".join(f"port {p} (SDP response frame {f})" for f, p in sdps[-3:])
            n = len(refused)
            ptxt = ", ".join(map(str, ports))
            if culprit == "EVCC":
                syn = (f"{n} TCP connection(s) to port {ptxt} refused (RST) by the EVSE: the EV "
                       f"connected to a port no SDP response announced — the SECC announced {said}")
            elif culprit == "SECC":
                when = ", ".join(f"frame {f}" for f, _ in sdps[-3:])
                syn = (f"{n} TCP connection(s) to port {ptxt} refused (RST answers the SYN): the SECC "
                       f"announced that port (SDP response {when}) but nothing listens there")
            else:
                syn = (f"{n} TCP connection(s) to port {ptxt} refused (RST answers the SYN); the "
                       "capture holds no SDP response to tell whether the SECC announced that port")
            frames += [f for f, _ in sdps[-3:]]
            yield self.finding(session, frames, syn, time=refused[0].time, culprit=culprit,
                               measured=ports, limit=sorted({p for _, p in sdps}) or None,
                               evidence={"expected": "connection to the SDP SECCPort "
                                                     f"{sorted({p for _, p in sdps})}",
                                         "actual": f"SYN to port(s) {ports} answered by RST",
                                         "count": n})
        if late:
            yield self._after_end(session, conns, late, own_end)

    def _after_end(self, session, conns, late, own_end):
        """The refused connections the EV retried after its session's own end: a warning on
        the EV (the SECC need not listen once the session is over)."""
        ports = sorted({int(conns[e.conn]["server"].rsplit(":", 1)[1]) for e in late})
        frames = [conns[e.conn]["syn_frame"] for e in late] + [e.frame for e in late]
        return self.finding(
            session, frames,
            f"{len(late)} TCP connection(s) to port {', '.join(map(str, ports))} refused (RST) "
            f"after session {session.id} had ended (its last frame {own_end}): the EV keeps "
            "reconnecting without a new SDP / SLAC; the SECC need not listen once the session "
            "is over", time=late[0].time, culprit="EVCC", severity="warning",
            measured=len(late), evidence={"expected": "no connection after the session's end "
                                                      "without a new SDP exchange",
                                          "actual": f"{len(late)} SYN(s) answered by RST",
                                          "ports": ports, "session_end_frame": own_end})


class TcpResetInSession(Rule):
    """An established TCP connection of the session was reset (RST).

    What it checks: RST segments on the session's established V2G connections.
    Why it matters: a reset ends the V2G session abruptly; the side sending it gave up
    (timeout, crash, an error it answers with a reset). Usually the symptom of an earlier
    problem, which the report names as the root cause.
    Fix: the side that sent the RST: check its timers and logs around that frame.
    Source: RFC 9293 §3.5.3; ISO 15118-2 §7.7.3 (TCP usage).

    Example:

        #61 RST EVSE→EV
    """

    code = "TRN002"
    title = "TCP connection reset during the session"
    severity = "warning"
    category = "transport"
    kinds = ("connection-reset",)
    culprit = "unknown"
    failure_modes = ("UC2 237",)

    def check(self, session, ctx):
        conns = {c["conn"]: c for c in ctx.connections}
        resets = [e for e in session.events if e.layer == "tcp" and e.name == TCP_RST
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


class RetransmissionStorm(Rule):
    """Many TCP retransmissions on a V2G connection (a retransmission storm).

    What it checks: per connection and direction, the "TCP retransmission" events: at least
    ``min_count`` within any ``window_s`` seconds, or at least ``min_total`` in all making up
    more than ``max_share`` (a fraction: 0.05 = 5 %) of the connection's frames.
    Out-of-order segments are counted in the evidence. A single spurious retransmission is normal TCP and not reported; nor are
    connections of which the capture shows one side only (CAP003 says so). Segments the
    capture recorded twice (a "retransmission" in the same instant as the original, within
    ``duplicate_within_s``) are not retransmissions on the wire: CAP007 reports them.
    Why it matters: retransmissions mean segments or their acknowledgements were lost —
    on the PLC link usually noise or attenuation; each one costs at least the
    retransmission timeout, enough to break the 250 ms CurrentDemand / ChargeLoop timing.
    Fix (link): check the PLC coupling, attenuation and noise (SLAC attenuation profile),
    the modems' firmware; the receiver of the retransmitted data may also be too slow to
    acknowledge (EVCC/SECC processing).
    Source: RFC 9293 §3.8.1 (retransmission timeout); ISO 15118-2 Table 109 message timing;
    ChargeX PFMEA UC2 156 / 237 (signal integrity); PROTOCOL_FACTS §4E.

    Example:

        #160 TCP retransmission EV→EVSE bytes=58
        #215 TCP retransmission EV→EVSE bytes=56
    """

    code = "TRN003"
    title = "TCP retransmission storm"
    severity = "warning"
    category = "transport"
    explains = ("no-response", "late-response", "ev-timeout", "ev-abort", "evse-abort",
                "connection-reset")
    requirement = "RFC 9293 §3.8.1 retransmission"
    culprit = "link"
    failure_modes = ("UC2 156", "UC2 237")
    params = {"min_count": 10, "window_s": 10.0, "min_total": 20, "max_share": 0.05,
              "duplicate_within_s": 0.001}

    def check(self, session, ctx):
        conns = _conns(ctx)
        idx = session_index(session, ctx)
        by = retransmissions(session, ctx, self.p["duplicate_within_s"])
        ooo: dict = {}
        for e in idx.tcp:
            if e.name == TCP_OUT_OF_ORDER:
                ooo[(e.conn, e.direction)] = ooo.get((e.conn, e.direction), 0) + 1
        n_min, window = self.p["min_count"], self.p["window_s"]
        for (conn, direction), (evs, dups) in by.items():
            c = conns.get(conn, {})
            if not evs or one_sided(c):
                continue
            best, bi, bj = 0, 0, 0
            j = 0
            for i, e in enumerate(evs):
                while e.time - evs[j].time > window:
                    j += 1
                if i - j + 1 > best:
                    best, bi, bj = i - j + 1, j, i
            share = len(evs) / max((c.get("frames") or len(evs)) - len(dups), 1)
            burst = best >= n_min
            if not burst and not (len(evs) >= self.p["min_total"] and share > self.p["max_share"]):
                continue
            side = "EV" if direction == "EV->EVSE" else "EVSE"
            peer = "EVSE" if side == "EV" else "EV"
            first, last = (evs[bi], evs[bj]) if burst else (evs[0], evs[-1])
            syn = (f"{len(evs)} TCP retransmissions by the {side} on connection {conn} "
                   f"(frames {evs[0].frame}-{evs[-1].frame}, {share:.0%} of its frames)"
                   + (f", {best} within {window:g} s (frames {first.frame}-{last.frame})" if burst else "")
                   + f": segments or the {peer}'s acknowledgements are being lost")
            yield self.finding(session, [evs[0].frame, first.frame, last.frame, evs[-1].frame], syn,
                               time=first.time, measured=best if burst else len(evs),
                               limit=n_min if burst else self.p["min_total"],
                               unit=f"retransmissions per {window:g} s" if burst else "retransmissions",
                               evidence={"expected": f"fewer than {n_min} retransmissions per "
                                                     f"{window:g} s",
                                         "actual": f"{best} in {window:g} s, {len(evs)} in all",
                                         "connection": conn, "direction": direction,
                                         "retransmissions": len(evs), "share_of_frames": round(share, 4),
                                         "captured_twice_not_counted": len(dups),
                                         "out_of_order": ooo.get((conn, direction), 0),
                                         "bytes": sorted({(x.message or {}).get("bytes") for x in evs
                                                          if (x.message or {}).get("bytes")})[:10]})


class SeccClosedAfterRequest(Rule):
    """The SECC closed or reset the connection instead of answering a request.

    What it checks: a FIN or RST from the EVSE while a request of the EV is unanswered on
    that connection, within ``max_delay_s`` of the request (beyond that it is a timeout,
    reported by the timing rules).
    Why it matters: the EV gets no response and the session ends abruptly; usually the
    SECC rejected the request (an unexpected message, a state it cannot handle) or
    crashed. Often a symptom of an earlier problem, which the report names as the root
    cause.
    Fix (SECC): answer every request, with a FAILED response code if needed (ISO 15118-2
    [V2G2-538]: even a request out of sequence gets its response with
    FAILED_SequenceError), then close.
    Source: ISO 15118-2 §8.8.2 (one response per request), [V2G2-538], [V2G2-539];
    DIN 70121 [V2G-DC-390]; PROTOCOL_FACTS §4.0.

    Example:

        #59 ChargeParameterDiscoveryReq → (no response)
        #61 RST EVSE→EV (+0.030 s)
    """

    code = "TRN007"
    title = "SECC closed the connection instead of answering"
    severity = "warning"
    category = "transport"
    kinds = ("evse-abort", "no-response", "connection-reset")
    culprit = "SECC"
    requirement = "ISO 15118-2 [V2G2-538] every request gets its response"
    failure_modes = ("UC2 158", "UC2 239", "UC2 103")
    params = {"max_delay_s": 5.0}

    def check(self, session, ctx):
        pending: dict = {}
        for e in session.events:
            layer = e.layer
            if layer == "v2gtp":
                if e.message is None:
                    continue
                if e.name.endswith("Req"):
                    pending[e.conn] = e
                elif e.name.endswith("Res"):
                    pending.pop(e.conn, None)
            elif layer == "tcp" and e.name in (TCP_FIN, TCP_RST):
                req = pending.pop(e.conn, None)
                if req is None or e.direction != "EVSE->EV":
                    continue
                dt = e.time - req.time
                if dt > self.p["max_delay_s"]:
                    continue
                yield self.finding(session, [req.frame, e.frame],
                                   f"The EVSE {'reset' if e.name == TCP_RST else 'closed'} the "
                                   f"connection ({e.name}, frame {e.frame}) {dt:.3f} s after "
                                   f"{req.name} (frame {req.frame}) instead of answering it",
                                   time=e.time, measured=round(dt, 6), limit=self.p["max_delay_s"],
                                   unit="s", evidence={"expected": req.name[:-3] + "Res",
                                                       "actual": f"TCP {e.name} by the EVSE",
                                                       "request": req.name})


def _ip(text: str | None, endpoint: bool = False):
    """An ip_address from a bare address, or from an endpoint ``[ip]:port`` / ``ip:port``
    (``endpoint``); None when it does not parse. A zone (``%eth0``) is dropped."""
    if not text:
        return None
    host = text
    if endpoint:
        host = text[1:text.index("]")] if text.startswith("[") and "]" in text else text.rsplit(":", 1)[0]
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


class ConnectedElsewhere(Rule):
    """The EV's V2G connection goes to another address or port than the SDP response gave.

    What it checks: for every established V2G connection of the session (SYN answered or
    data exchanged), its server address and port against the SECCIPAddress / SECCPort of
    the session's SDP responses. Refused connections are TRN001's.
    Why it matters: the EV must connect where the SECC told it to; that it worked here (the
    SECC listens there too) is luck — another charger would refuse the connection.
    Fix (EVCC): take address and port from the SDP response, never a fixed 15118.
    Source: ISO 15118-2 §7.10.1 (SDP response SECC IP address and port), DIN 70121 §8.7.2;
    PROTOCOL_FACTS §1.5 (d) (pyPLC readme).

    Example:

        #34 SDP request → #35 SDP response SECCIPAddress=fe80::ff:fe00:e501
        #36 SYN EV→EVSE
    """

    code = "TRN008"
    title = "TCP connection to another address / port than SDP announced"
    severity = "warning"
    category = "transport"
    explains = ("tcp-failed",)
    culprit = "EVCC"
    requirement = "ISO 15118-2 §7.10.1 SDP response SECC address/port"
    failure_modes = ("UC2 100",)

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        announced = []
        for e in idx.sdp:
            m = e.message or {}
            if e.direction == "EVSE->EV" and m.get("SECCPort") is not None:
                announced.append((_ip(m.get("SECCIPAddress")), m.get("SECCPort"), e))
        if not announced:
            return
        conns = _conns(ctx)
        for cid in session.connections:
            c = conns.get(cid)
            if not c or c.get("kind") in ("other",):
                continue
            if c.get("synack_frame") is None and not c.get("v2g_messages"):
                continue
            server = c.get("server", "")
            ip = _ip(server, endpoint=True)
            port = int(server.rsplit(":", 1)[1]) if ":" in server else None
            if any((a is None or ip is None or a == ip) and p == port for a, p, _ in announced):
                continue
            sdp = max((x for x in announced if x[2].frame <= (c.get("first_frame") or 0)),
                      key=lambda x: x[2].frame, default=announced[-1])
            what = " and ".join(w for w, bad in (("address", sdp[0] is not None and ip is not None
                                                  and sdp[0] != ip), ("port", sdp[1] != port)) if bad)
            yield self.finding(session, [sdp[2].frame, c.get("syn_frame") or c.get("first_frame")],
                               f"The EV connected to {server} (connection {cid}) although the SDP "
                               f"response (frame {sdp[2].frame}) announced [{sdp[0]}]:{sdp[1]} "
                               f"(the {what} differ{'' if ' and ' in what else 's'}); the SECC "
                               "accepted it",
                               time=c.get("first_time"),
                               evidence={"expected": f"[{sdp[0]}]:{sdp[1]}", "actual": server,
                                         "connection": cid})


class HalfOpenPortReused(Rule):
    """The EV reused the source port of a connection the SECC still held open.

    What it checks: an EV's SYN that the SECC answered not with SYN-ACK but with a segment
    of an older connection on the same address and port pair (the SECC still holds that
    connection — half-open: the EV left it without FIN or RST), which the EV then reset
    before sending its SYN again on the same ports (the next connection of the capture).
    This is RFC 9293's half-open recovery working as designed (§3.10.7.3 / RFC 5961 §4: a
    SYN that hits a synchronized connection is answered with an ACK; the SYN-SENT side
    answers an unacceptable ACK with RST and retries) — not a refusal (TRN001). An info,
    culprit EVCC: the EV reused the port of a connection it never closed, which costs a
    round trip and would fail against a peer that drops such segments.
    Why it matters: the connection comes up late; on a stricter stack the leftover
    connection makes the SYN fail; it shows the previous session ended without closing
    its TCP connection (SessionStop then FIN, ISO 15118-2 §7.7.3 / [V2G2-571]).
    Fix (EVCC): close the V2G connection at the end of a session (FIN, or RST when leaving
    without one) and use a fresh ephemeral source port for each connection.
    Source: RFC 9293 §3.5.2 (half-open connections), §3.10.7.3; RFC 5961 §4 (challenge
    ACK); RFC 6056 (port selection); ISO 15118-2 §7.7.3 (TCP usage).

    Example:

        #36 SYN EV→EVSE
        #38 RST EV→EVSE (+0.002 s)
        #39 SYN EV→EVSE (+0.008 s)
        #40 SYN-ACK EVSE→EV (+0.001 s)
    """

    code = "TRN009"
    title = "EV reused the port of a half-open connection"
    severity = "info"
    category = "transport"
    culprit = "EVCC"
    requirement = "RFC 9293 §3.5.2 half-open connection recovery"
    failure_modes = ("UC2 100",)

    def check(self, session, ctx):
        allc = sorted(ctx.connections, key=lambda c: c["conn"])
        mine = set(session.connections)
        for i, c in enumerate(allc):
            if c["conn"] not in mine:
                continue
            retry = half_open_retry(c, allc[i + 1:])
            if retry is None:
                continue
            rst = (c.get("rst_frames") or [None])[0]
            ev_port = c.get("client", "").rsplit(":", 1)[-1]
            ok = retry.get("synack_frame") is not None
            dt = (retry.get("first_time") or 0) - (c.get("first_time") or 0)
            t0 = next((x.time for x in session.events if x.layer == "tcp" and x.name == TCP_SYN
                       and x.conn == c["conn"]), c.get("first_time"))
            yield self.finding(
                session, [c["syn_frame"], rst, retry.get("syn_frame"), retry.get("synack_frame")],
                f"The EV's SYN (frame {c['syn_frame']}) from port {ev_port} was answered by the SECC "
                f"with a segment of an older connection on the same ports (no SYN-ACK): the EV reused "
                f"the port of a connection it had left open (half-open); it reset it (RST, frame "
                f"{rst}) and sent its SYN again (frame {retry.get('syn_frame')}), "
                + (f"answered by SYN-ACK (frame {retry.get('synack_frame')}) {dt * 1000:.0f} ms after "
                   "the first SYN" if ok else "which was not answered either")
                + " — RFC 9293 half-open recovery, not a refusal",
                time=t0, measured=round(dt, 6), unit="s",
                evidence={"expected": "SYN-ACK to a SYN from a fresh port",
                          "actual": "ACK of an older connection, RST, SYN again",
                          "connection": c["conn"], "retry_connection": retry["conn"],
                          "ev_port": ev_port})
