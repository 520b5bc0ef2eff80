"""SECC Discovery Protocol (ISO 15118-2 §7.10.1; PROTOCOL_FACTS §1.3-§1.5).

The rules read the session's SDP events: requests (EV → [ff02::1]:15118) and responses
(SECC → the requester's endpoint). A response answers the latest request of the endpoint it
is sent to; the requests before it that got none form an unanswered series (the EV re-sends
after at least 250 ms, at most 50 times).
"""
from __future__ import annotations

import ipaddress

from ccs_analyzer.analyzer.views.slac import MATCH_CNF, fields, slac_view
from ccs_analyzer.dissectors.events import TCP_SYN

from .base import Rule, judged
from .helpers import ms
from .slac_timers import SLAC_TIMERS
from .timing_tables import COMM_SETUP_TIMEOUT, ISO2, SDP_MAX_REQUESTS, SDP_RESPONSE_TIMEOUT

SDP_FAILURE_MODES = ("UC2 100",)


def _is_req(e) -> bool:
    return e.layer == "sdp" and e.direction == "EV->EVSE" and "request" in e.name


def _is_res(e) -> bool:
    return e.layer == "sdp" and e.direction == "EVSE->EV" and "response" in e.name


def _host(endpoint: str | None) -> str | None:
    """``[fe80::1]:15118`` → ``fe80::1``."""
    if not endpoint:
        return None
    h = endpoint.rsplit(":", 1)[0] if endpoint.count(":") > 1 and "]" in endpoint else endpoint
    return h.strip("[]")


def _frames(evs) -> str:
    """``#12`` or ``#12-#40`` (first and last frame of a list of events)."""
    return f"#{evs[0].frame}" if len(evs) == 1 else f"#{evs[0].frame}-#{evs[-1].frame}"


def _same_ip(a: str | None, b: str | None) -> bool:
    try:
        return ipaddress.ip_address(str(a).split("%")[0]) == ipaddress.ip_address(str(b).split("%")[0])
    except ValueError:
        return a == b


class Exchanges:
    """The session's SDP requests grouped by the response that ended them.

    ``series``: list of (requests, response or None) in order — each a run of consecutive
    requests from one EV endpoint, the last of which the response answers (None: the
    series is still unanswered when the session ends)."""

    def __init__(self, session):
        evs = []
        for e in session.events:
            if e.layer != "sdp":
                continue
            if evs and evs[-1].name == e.name and evs[-1].src == e.src and \
                    abs(evs[-1].time - e.time) <= 0.002 and evs[-1].message == e.message:
                continue          # the same datagram captured twice
            evs.append(e)
        self.requests = [e for e in evs if _is_req(e)]
        self.responses = [e for e in evs if _is_res(e)]
        pending: dict = {}
        self.series: list[tuple[list, object | None]] = []
        for e in evs:
            if _is_req(e):
                pending.setdefault(e.src, []).append(e)
            elif _is_res(e):
                reqs = pending.pop(e.dst, None)
                if reqs is None and len(pending) == 1:
                    reqs = pending.pop(next(iter(pending)))
                if reqs:
                    self.series.append((reqs, e))
        for reqs in pending.values():
            self.series.append((reqs, None))
        self.series.sort(key=lambda s: s[0][0].time)

    def answered(self):
        """(request, response) pairs."""
        return [(reqs[-1], res) for reqs, res in self.series if res is not None]


def _exchanges(session, ctx) -> Exchanges:
    """The session's :class:`Exchanges`, built once per analysis for the eight SDP rules
    that read it (``ctx.view("sdp.exchanges")``; read-only)."""
    return ctx.view("sdp.exchanges", session, lambda: Exchanges(session))


class _SdpRule(Rule):
    category = "sdp"
    protocols = ("SDP",)
    failure_modes = SDP_FAILURE_MODES


def _previous_session(session, ctx):
    prev = None
    for s in ctx.sessions:
        if s is session:
            return prev
        if session.ev_key is None or s.ev_key in (None, session.ev_key):
            prev = s
    return None


def _next_slac(session, ctx, after: float):
    found = False
    for s in ctx.sessions:
        if s is session:
            found = True
            continue
        if found and (session.ev_key is None or s.ev_key in (None, session.ev_key)):
            e = next((e for e in s.events if e.layer == "slac" and e.name == "CM_SLAC_PARM.REQ"
                      and e.time > after), None)
            if e is not None:
                return e
    return next((e for e in session.events if e.layer == "slac" and e.name == "CM_SLAC_PARM.REQ"
                 and e.time > after), None)


class SdpUnanswered(_SdpRule):
    """SDP requests got no response.

    What it checks: every SDP request is answered by an SDP response before the EV sends the
    next one. Names the requests that went unanswered and whether a later request was
    answered. A series that is still unanswered when the session ends is an error (culprit
    SECC) — unless the capture ended within ``timeout_s`` of the last request (no finding),
    a TCP connection to the SECC follows (the response was sent but not captured: info,
    culprit capture), or the requests follow a session that had already ended, without a
    new SLAC match — the EV's retries of that session, or a session of their own — (the EVSE
    need not serve a finished session: warning, culprit unknown).
    Unanswered requests followed by an answered one are an info (the EV recovered).
    Why it matters: without the SECC's address and port the EV cannot open the V2G
    connection; after 50 requests it gives up ([V2G2-161]).
    Fix (SECC): answer on UDP 15118 from the link-local address; check the PLC link (the
    SECC may sit in another AVLN when SLAC failed silently) and the IPv6 neighbour discovery.
    Source: ISO 15118-2 §7.10.1, [V2G2-159] (≥ 250 ms between requests), [V2G2-161]
    (at most 50 requests); PROTOCOL_FACTS §1.5.

    Example:

        #34 SDP request → (no response)
        #38 SDP request → (no response)
    """

    code = "SDP001"
    title = "SDP request without response"
    severity = "error"
    kinds = ("sdp-failed",)
    explains = ("sdp-failed",)
    culprit = "SECC"
    requirement = "ISO 15118-2 §7.10.1 SDP request / response"
    params = {"timeout_s": SDP_RESPONSE_TIMEOUT.seconds}

    def check(self, session, ctx):
        x = _exchanges(session, ctx)
        if not x.requests:
            return
        recovered = [(reqs, res) for reqs, res in x.series if res is not None and len(reqs) > 1]
        final = [(reqs, res) for reqs, res in x.series if res is None]
        end = (ctx.capture or {}).get("last_time")
        for reqs, _ in final:
            last = reqs[-1]
            waited = float("inf") if end is None else end - last.time
            if waited < self.p["timeout_s"]:
                reqs = [r for r in reqs if end - r.time >= self.p["timeout_s"]]
                if not reqs:
                    continue          # the capture ended before the SECC had to answer
            first, last = reqs[0], reqs[-1]
            span = f"{len(reqs)} SDP requests (frames {first.frame}-{last.frame}, {last.time - first.time:.1f} s)" \
                if len(reqs) > 1 else f"SDP request #{first.frame}"
            later_answer = [res for rq, res in x.series if res is not None and rq[0].time > last.time]
            nxt = _next_slac(session, ctx, last.time)
            if nxt is not None:
                silence = f" in the {nxt.time - last.time:.1f} s until the EV restarted SLAC (frame {nxt.frame})"
            elif waited != float("inf"):
                silence = f" in the {waited:.1f} s until the capture ended"
            else:
                silence = ""
            syn_base = f"{span} never answered (no SDP response{silence})"
            rec_txt = ""
            if recovered:
                rec_txt = (f"; earlier, request #{recovered[0][0][-1].frame} was answered by "
                           f"#{recovered[0][1].frame} after {len(recovered[0][0]) - 1} unanswered")
            elif any(res is not None for _, res in x.series):
                a = next((rq[-1], res) for rq, res in x.series if res is not None)
                rec_txt = f"; an earlier request (#{a[0].frame}) was answered by #{a[1].frame}"
            ev = {"expected": "an SDP response to each request", "actual": f"{len(reqs)} unanswered",
                  "unanswered": [r.frame for r in reqs[:10]], "count": len(reqs),
                  "later_answered": [r.frame for r in later_answer]}
            frames = [first.frame, last.frame]
            tcp = next((e for e in session.events if e.layer == "tcp" and e.name == TCP_SYN
                        and e.time > last.time), None)
            prev = _previous_session(session, ctx)
            has_slac = any(e.layer == "slac" and e.name == MATCH_CNF for e in session.events)
            retries = {id(e) for e in getattr(session, "retries", ())}
            if all(id(r) in retries for r in reqs):
                # the EV's retries after the session's own end (analyzer/sessions.py)
                how = ctx.summaries.get(session.id, {}).get("ended", {})
                yield self.finding(
                    session, frames + ([nxt.frame] if nxt is not None else []),
                    f"{syn_base}; they are retries of session {session.id}, which had ended "
                    f"({how.get('how', 'ended')}, frame {how.get('frame')}) without a new SLAC "
                    "match — an EVSE that has closed the session need not answer before a new "
                    "matching",
                    time=first.time, culprit="unknown", severity="warning", measured=len(reqs),
                    evidence={**ev, "retries_of": session.id})
            elif tcp is not None:
                yield self.finding(
                    session, frames + [tcp.frame],
                    f"{span}: no SDP response in the capture, yet the EV opened a TCP connection "
                    f"(SYN #{tcp.frame}) — the response was not captured",
                    time=first.time, culprit="capture", severity="info", measured=len(reqs),
                    evidence=ev)
            elif not has_slac and prev is not None and prev.ended and not prev.paused:
                how = ctx.summaries.get(prev.id, {}).get("ended", {})
                yield self.finding(
                    session, frames + ([nxt.frame] if nxt is not None else []),
                    f"{syn_base}; they follow session {prev.id}, which had ended "
                    f"({how.get('how', 'ended')}, frame {how.get('frame')}) without a new SLAC match — "
                    "an EVSE that has closed the session need not answer before a new matching",
                    time=first.time, culprit="unknown", severity="warning", measured=len(reqs),
                    evidence={**ev, "previous_session": prev.id})
            else:
                yield self.finding(session, frames + ([nxt.frame] if nxt is not None else []),
                                   syn_base + rec_txt, time=first.time, measured=len(reqs),
                                   evidence=ev)
        if not final and recovered:
            n = sum(len(r) - 1 for r, _ in recovered)
            reqs, res = recovered[0]
            desc = "; ".join(f"{_frames(r[:-1])} unanswered, then #{r[-1].frame} (request {len(r)}) "
                             f"answered by #{s.frame} {s.time - r[0].time:.2f} s after the first"
                             for r, s in recovered[:3])
            yield self.finding(
                session, [reqs[0].frame, reqs[-2].frame, reqs[-1].frame, res.frame],
                f"{n} SDP request(s) went unanswered before one was answered: {desc}",
                time=reqs[0].time, severity="info", measured=n,
                evidence={"expected": "an SDP response to each request",
                          "actual": [{"unanswered": [q.frame for q in r[:-1]], "answered": r[-1].frame,
                                      "response": s.frame} for r, s in recovered[:5]]})


class SdpTooManyRequests(_SdpRule):
    """More consecutive SDP requests than [V2G2-161] allows.

    What it checks: a series of SDP requests without a response has at most ``limit``
    (50) requests.
    Why it matters: after 50 unanswered requests the EV shall stop and fall back (restart
    the data link); an EV that goes on wastes the plug-in and hides the real failure.
    Fix (EVCC): stop SDP after 50 requests and restart SLAC (or report the failure).
    Source: ISO 15118-2 [V2G2-161] (SDP_MAX_REQUEST_COUNTER = 50); PROTOCOL_FACTS §1.5
    (R-TR, J-EVCC, RC-TIMERS).

    Example:

        #34 SDP request → (no response)
        #93 SDP request → (no response)
    """

    code = "SDP002"
    title = "SDP retried beyond the limit"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-2 [V2G2-161] at most 50 SDP requests"
    params = {"limit": SDP_MAX_REQUESTS}

    def check(self, session, ctx):
        for reqs, res in _exchanges(session, ctx).series:
            unanswered = reqs if res is None else reqs[:-1]
            if len(unanswered) > self.p["limit"]:
                a, b = unanswered[0], unanswered[-1]
                yield self.finding(
                    session, [a.frame, b.frame],
                    f"{len(unanswered)} consecutive SDP requests without response (frames "
                    f"{a.frame}-{b.frame}, {b.time - a.time:.1f} s); [V2G2-161] allows {self.p['limit']}",
                    time=a.time, measured=len(unanswered), limit=self.p["limit"],
                    evidence={"expected": f"≤ {self.p['limit']}", "actual": len(unanswered)})


class SdpRequestsTooClose(_SdpRule):
    """SDP requests repeated sooner than 250 ms.

    What it checks: between two requests of an unanswered series at least ``min_s``
    (250 ms, the EV's wait for a response) minus ``tolerance_s`` pass.
    Why it matters: the SECC gets no fair chance to answer; bursts of requests on the shared
    PLC medium disturb neighbours.
    Fix (EVCC): wait ≥ 250 ms for the response before repeating the request.
    Source: ISO 15118-2 [V2G2-159] (V2G_SDP timeout 250 ms); PROTOCOL_FACTS §1.5 (R-TR,
    J-TO SDP_REQ = 0.25 s, RC-TIMERS).

    Example:

        #34 SDP request → (no response)
        #35 SDP request (+0.100 s) → (no response)
    """

    code = "SDP003"
    title = "SDP requests closer than 250 ms"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-2 [V2G2-159] ≥ 250 ms between SDP requests"
    params = {"min_s": SDP_RESPONSE_TIMEOUT.seconds, "tolerance_s": 0.005}

    def check(self, session, ctx):
        bad = []
        for reqs, _ in _exchanges(session, ctx).series:
            bad += [(a, b) for a, b in zip(reqs, reqs[1:])
                    if b.time - a.time < self.p["min_s"] - self.p["tolerance_s"]]
        if not bad:
            return
        a, b = min(bad, key=lambda p: p[1].time - p[0].time)
        g = b.time - a.time
        yield self.finding(
            session, [bad[0][0].frame, bad[0][1].frame, a.frame, b.frame],
            f"{len(bad)} SDP request(s) repeated sooner than {ms(self.p['min_s'])}: shortest gap "
            f"{ms(g)} (#{a.frame} → #{b.frame})",
            time=bad[0][1].time, measured=round(g, 4), limit=self.p["min_s"], unit="s",
            evidence={"expected": f"≥ {ms(self.p['min_s'])}",
                      "actual": [{"from": x.frame, "to": y.frame, "gap_s": round(y.time - x.time, 4)}
                                 for x, y in bad[:5]]})


class SdpSecurityMismatch(_SdpRule):
    """The SDP response's security differs from the request's (⚠).

    What it checks: the Security of each SDP response equals that of the request it
    answers; for a DIN 70121 session the response announces no TLS.
    Why it matters: an SECC may fall back to the other mode when it cannot offer the one
    requested (EVerest does), so a mismatch is a warning; but an EV that insists on TLS (or
    on no TLS) will not connect, and DIN 70121 does not use TLS at all ([V2G-DC-618]).
    Fix (SECC): answer with the requested security when supported; never TLS for DIN.
    Source: ISO 15118-2 §7.10.1 [V2G2-623]; DIN SPEC 70121 [V2G-DC-618]; PROTOCOL_FACTS
    §1.4 (E-SDP fallback ⚠, J-EVCC).

    Example:

        #34 SDP request Security=TLS → #35 SDP response Security=NoTLS
    """

    code = "SDP004"
    title = "SDP security mismatch"
    severity = "warning"
    explains = ("tls-failed", "tcp-failed", "handshake-failed")
    culprit = "SECC"
    requirement = "ISO 15118-2 [V2G2-623] SDP Security; DIN 70121 [V2G-DC-618]"

    def check(self, session, ctx):
        pairs = _exchanges(session, ctx).answered()
        bad = [(q, r) for q, r in pairs if fields(q).get("Security") and fields(r).get("Security")
               and fields(q).get("Security") != fields(r).get("Security")]
        if bad:
            q, r = bad[0]
            yield self.finding(
                session, [q.frame, r.frame],
                f"SDP request #{q.frame} asked for Security={fields(q)['Security']}, response #{r.frame} "
                f"announces {fields(r)['Security']}" + (f" ({len(bad)} exchanges)" if len(bad) > 1 else ""),
                time=r.time, measured=fields(r)["Security"], limit=fields(q)["Security"],
                evidence={"expected": {"Security": fields(q)["Security"]},
                          "actual": {"Security": fields(r)["Security"]}, "count": len(bad)},
                values=[judged(q, "Security", fields(q)["Security"]),
                        judged(r, "Security", fields(r)["Security"], expected=fields(q)["Security"])])
        proto = ctx.summaries.get(session.id, {}).get("protocol")
        if proto == "DIN 70121":
            tls = [r for _, r in pairs if fields(r).get("Security") == "TLS"]
            if tls:
                r = tls[0]
                yield self.finding(
                    session, [r.frame],
                    f"SDP response #{r.frame} announces TLS for a DIN 70121 session ([V2G-DC-618]: no TLS)",
                    time=r.time, measured="TLS", limit="NoTLS",
                    evidence={"expected": {"Security": "NoTLS"}, "actual": {"Security": "TLS"}},
                    values=[judged(r, "Security", "TLS", expected="NoTLS")])


class SdpTransportInvalid(_SdpRule):
    """SDP carries a transport other than TCP or a reserved security value.

    What it checks: TransportProtocol = TCP (0x00) and Security ∈ {TLS 0x00, no TLS 0x10} in
    every SDP request and response.
    Why it matters: V2G messages run over TCP only (UDP 0x10 is reserved for SDP itself);
    an EVSE answers nothing to a non-TCP request (EVerest), an EV cannot use a non-TCP
    answer.
    Fix: the sender named: request / announce TCP with a valid security byte.
    Source: ISO 15118-2 §7.10.1 [V2G2-623] (Table 15/16); PROTOCOL_FACTS §1.4 (J-SDP,
    E-SDP, DSV).

    Example:

        #34 SDP request TransportProtocol=TCP Security=NoTLS
          → #35 SDP response TransportProtocol=UDP Security=NoTLS
    """

    code = "SDP005"
    title = "SDP transport not TCP"
    severity = "error"
    explains = ("sdp-failed", "tcp-failed")
    culprit = "unknown"
    requirement = "ISO 15118-2 [V2G2-623] SDP TransportProtocol / Security"

    def check(self, session, ctx):
        x = _exchanges(session, ctx)
        groups: dict = {}
        for e in x.requests + x.responses:
            f = fields(e)
            why = []
            if f.get("TransportProtocol") not in (None, "TCP"):
                why.append(f"TransportProtocol={f['TransportProtocol']}")
            if f.get("Security") not in (None, "TLS", "NoTLS"):
                why.append(f"Security={f['Security']}")
            if why:
                groups.setdefault((e.direction, tuple(why)), []).append(e)
        for (direction, why), evs in groups.items():
            req = direction == "EV->EVSE"
            yield self.finding(
                session, [evs[0].frame, evs[-1].frame],
                f"{len(evs)} SDP {'request' if req else 'response'}(s) (frames {evs[0].frame}-"
                f"{evs[-1].frame}) with {', '.join(why)}",
                time=evs[0].time, culprit="EVCC" if req else "SECC",
                evidence={"expected": {"TransportProtocol": "TCP", "Security": "TLS or NoTLS"},
                          "actual": list(why)},
                values=[judged(ev, k, v, expected=want) for ev in (evs[0], evs[-1])
                        for k, v, want in (("TransportProtocol", fields(ev).get("TransportProtocol"), "TCP"),
                                           ("Security", fields(ev).get("Security"), "TLS or NoTLS"))
                        if f"{k}={v}" in why])


class SdpAddressMismatch(_SdpRule):
    """The SECC address in the SDP response is not the responder's address.

    What it checks: SECCIPAddress of each SDP response equals the IPv6 source address of
    the datagram that carries it.
    Why it matters: the EV connects to the announced address; one that is not the
    responder's (a stale or configured address, another interface) leads the TCP
    connection nowhere.
    Fix (SECC): announce the link-local address of the interface that answers.
    Source: ISO 15118-2 §7.10.1 (SECCIPAddress of the SECC); PROTOCOL_FACTS §1.3, §1.5 (d).

    Example:

        #34 SDP request → #35 SDP response SECCIPAddress=fe80::ff:fe00:e502
    """

    code = "SDP006"
    title = "SDP SECC address differs from the responder"
    severity = "warning"
    explains = ("tcp-failed",)
    culprit = "SECC"
    requirement = "ISO 15118-2 §7.10.1 SECCIPAddress"

    def check(self, session, ctx):
        for r in _exchanges(session, ctx).responses:
            addr = fields(r).get("SECCIPAddress")
            src = _host(r.src)
            if addr and src and not _same_ip(addr, src):
                yield self.finding(
                    session, [r.frame],
                    f"SDP response #{r.frame} from {src} announces SECC address {addr}",
                    time=r.time, measured=addr, limit=src,
                    evidence={"expected": {"SECCIPAddress": src}, "actual": {"SECCIPAddress": addr}},
                    values=[judged(r, "SECCIPAddress", addr, expected=src)])
                return


class SdpPortOutsideDynamicRange(_SdpRule):
    """The announced SECC port is outside the dynamic range 49152–65535 (⚠).

    What it checks: SECCPort of each SDP response lies within ``min_port``–``max_port``.
    ⚠ Josev accepts only the dynamic range and HotWire reads DIN 70121 §8.7.2 as mandating
    it; chargers in the field announce 15118 or other ports and pyPLC notes that EVs must use
    the announced port — hence an info.
    Why it matters: a strict EV refuses a port outside the range; 15118 itself is only a
    convention for SDP.
    Fix (SECC): announce a port from 49152–65535.
    Source: DIN SPEC 70121 §8.7.2 / ISO 15118-2 §7.10.1 (SECCPort, dynamic port);
    PROTOCOL_FACTS §1.3 (J-SDP, HOTWIRE ⚠, PYPLC).

    Example:

        #34 SDP request → #35 SDP response
    """

    code = "SDP007"
    title = "SECC port outside 49152–65535"
    severity = "info"
    culprit = "SECC"
    requirement = "DIN SPEC 70121 §8.7.2 SECCPort (dynamic range ⚠)"
    params = {"min_port": 49152, "max_port": 65535}

    def check(self, session, ctx):
        for r in _exchanges(session, ctx).responses:
            port = fields(r).get("SECCPort")
            if isinstance(port, int) and not self.p["min_port"] <= port <= self.p["max_port"]:
                yield self.finding(
                    session, [r.frame],
                    f"SDP response #{r.frame} announces SECC port {port}, outside "
                    f"{self.p['min_port']}–{self.p['max_port']}",
                    time=r.time, measured=port, limit=[self.p["min_port"], self.p["max_port"]],
                    evidence={"expected": f"{self.p['min_port']}–{self.p['max_port']}", "actual": port},
                    values=[judged(r, "SECCPort", port, limit=[self.p["min_port"], self.p["max_port"]])])
                return


class SdpLateAfterMatch(_SdpRule):
    """The EV started SDP too long after the SLAC match.

    What it checks: the first SDP request after each CM_SLAC_MATCH.CNF of the session comes
    within ``join_s`` + ``setup_s``: TT_match_join (12 s) for both modems to join the new
    AVLN, plus V2G_EVCC_CommunicationSetup_Timeout (20 s) that runs from the link being up
    to SessionSetupRes — an SDP request later than their sum cannot lead to a V2G session
    in time. (The reference captures start SDP 9–23 s after the match, so TT_match_join
    alone is no limit for SDP.)
    Why it matters: the EVSE gives up waiting for the EV (and may leave the AVLN); the
    charge start is delayed.
    Fix (EVCC / link): start SDP as soon as the link is up after CM_SET_KEY.
    Source: ISO 15118-3 Table A.1 TT_match_join = 12 s; ISO 15118-2 Table 109
    V2G_EVCC_CommunicationSetup_Timeout = 20 s; PROTOCOL_FACTS §1.5 (c, e), §2.4.

    Example:

        #30 CM_SLAC_MATCH.REQ → #31 CM_SLAC_MATCH.CNF (+0.040 s)
        #34 SDP request (+35.010 s) → #35 SDP response (+0.050 s)
    """

    code = "SDP008"
    title = "SDP started late after the SLAC match"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-3 TT_match_join + ISO 15118-2 V2G_EVCC_CommunicationSetup_Timeout"
    params = {"join_s": SLAC_TIMERS["TT_match_join"].value, "setup_s": COMM_SETUP_TIMEOUT[ISO2].seconds}

    def check(self, session, ctx):
        x = _exchanges(session, ctx)
        if not x.requests:
            return
        v = slac_view(session, ctx)
        limit = self.p["join_s"] + self.p["setup_s"]
        matches = [m for r in v.runs for m in r.of(MATCH_CNF)]
        for i, m in enumerate(matches):
            nxt_match = matches[i + 1].time if i + 1 < len(matches) else float("inf")
            q = next((q for q in x.requests if m.time < q.time < nxt_match), None)
            if q is None:
                continue
            d = q.time - m.time
            if d > limit:
                yield self.finding(
                    session, [m.frame, q.frame],
                    f"first SDP request #{q.frame} came {d:.1f} s after CM_SLAC_MATCH.CNF #{m.frame} "
                    f"(TT_match_join {self.p['join_s']:g} s + CommunicationSetup {self.p['setup_s']:g} s)",
                    time=q.time, measured=round(d, 3), limit=limit, unit="s",
                    evidence={"expected": f"≤ {limit:g} s", "actual": f"{d:.3f} s"})
