"""TLS rules on whether the protocol runs over TLS: TLS008-TLS010."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import session_index

from ..base import Rule, judged
from .common import ISO20, _protocol, tls_connections

DIN = "DIN 70121"


def _sdp_response(idx, before: int | None):
    res = [e for e in idx.sdp if e.direction == "EVSE->EV" and e.message
           and (before is None or e.frame <= before)]
    return res[-1] if res else None


class SdpSecurityMismatch(Rule):
    """The V2G connection does not use the security the SDP response announced.

    What it checks: each V2G connection of the session against the Security byte of the
    last SDP response before it: TLS (0x00) → a TLS connection; NoTLS (0x10) → plain V2GTP.
    Why it matters: the SECC listens for what it announced; a connection of the other kind
    fails the handshake or, if accepted, runs without (or with unexpected) security.
    Fix (EVCC): open the connection with the security of the SDP response.
    Source: ISO 15118-2 §7.10.1 SDP response Security [V2G2-623] (0x00 TLS, 0x10 no TLS);
    PROTOCOL_FACTS §1.4 (J-SDP, E-SDP, DSV ✅).

    Example:

        #34 SDP request → #35 SDP response
        #36 SYN EV→EVSE
    """

    code = "TLS008"
    title = "Connection security differs from the SDP response"
    severity = "error"
    category = "tls"
    explains = ("tls-failed", "handshake-failed", "tcp-failed")
    requirement = "ISO 15118-2 [V2G2-623] SDP security"
    culprit = "EVCC"
    failure_modes = ("UC2 100",)

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        conns = {c["conn"]: c for c in ctx.connections}
        for cid in session.connections:
            c = conns.get(cid) or {}
            kind = c.get("kind")
            if kind not in ("tls", "v2gtp"):
                continue
            res = _sdp_response(idx, c.get("first_frame"))
            if res is None:
                continue
            sec = (res.message or {}).get("Security")
            if sec not in ("TLS", "NoTLS") or (sec == "TLS") == (kind == "tls"):
                continue
            actual = "TLS" if kind == "tls" else "plain TCP (no TLS)"
            yield self.finding(session, [res.frame, c.get("syn_frame") or c.get("first_frame")],
                               f"The SDP response (frame {res.frame}) announced {sec} but connection "
                               f"{cid} uses {actual}", time=c.get("first_time"),
                               evidence={"expected": sec, "actual": actual, "connection": cid},
                               values=[judged(res, "Security", sec)])


class DinOverTls(Rule):
    """A DIN 70121 session over TLS.

    What it checks: DIN 70121 sessions whose V2G connection is TLS.
    Why it matters: DIN 70121 has no TLS: the SDP response shall announce no TLS and the
    EVCC shall not offer DIN 70121 on a TLS connection; DIN-only peers fail the handshake.
    Fix: SECC: answer a DIN-capable EV with NoTLS / do not select DIN on a TLS connection;
    EVCC: drop DIN from supportedAppProtocolReq when using TLS.
    Source: DIN SPEC 70121 [V2G-DC-618] (quoted in J-EVCC); PROTOCOL_FACTS §1.4, §4A.

    Example:

        #34 SDP request → #35 SDP response
        #36 SYN EV→EVSE
        #49 supportedAppProtocolReq → #51 supportedAppProtocolRes
    """

    code = "TLS009"
    title = "DIN 70121 over TLS"
    severity = "error"
    category = "tls"
    explains = ("handshake-failed", "tls-failed")
    culprit = "SECC"
    protocols = (DIN,)
    requirement = "DIN 70121 [V2G-DC-618]"
    failure_modes = ("UC2 107",)

    def check(self, session, ctx):
        if _protocol(session, ctx) != DIN:
            return
        idx = session_index(session, ctx)
        for c in tls_connections(session, ctx):
            res = _sdp_response(idx, c.get("first_frame"))
            sap = [e for e in idx.named("supportedAppProtocolRes") if e.conn == c["conn"]]
            yield self.finding(session, [res.frame if res else None, c.get("syn_frame"),
                                         sap[0].frame if sap else None],
                               f"DIN 70121 was negotiated on TLS connection {c['conn']}"
                               + (f" (supportedAppProtocolRes frame {sap[0].frame})" if sap else ""),
                               time=c.get("first_time"),
                               evidence={"expected": "DIN 70121 over plain TCP", "actual": "TLS",
                                         "sdp_security": (res.message or {}).get("Security")
                                         if res else None},
                               values=[judged(res, "Security", "TLS", expected="NoTLS")])


class Iso20WithoutTls(Rule):
    """An ISO 15118-20 session over plain TCP.

    What it checks: ISO 15118-20 sessions whose V2G connection is not TLS.
    Why it matters: ISO 15118-20 always runs over TLS 1.3: the EVCC shall not offer and the
    SECC shall not select -20 without it. Test systems and some stacks run -20 over plain
    TCP anyway (PROTOCOL_FACTS notes it), which is why this is a warning.
    Fix: EVCC: request TLS in SDP and offer -20 only over TLS 1.3; SECC: select -20 only on
    a TLS 1.3 connection.
    Source: ISO 15118-20 [V2G20-1235], [V2G20-1237], [V2G20-2356] (PYPLC doc ⚠ single
    source); PROTOCOL_FACTS §1.4.

    Example:

        #34 SDP request Security=NoTLS → #35 SDP response Security=NoTLS
        #36 SYN EV→EVSE
        #39 supportedAppProtocolReq → #41 supportedAppProtocolRes
    """

    code = "TLS010"
    title = "ISO 15118-20 without TLS"
    severity = "warning"
    category = "tls"
    culprit = "unknown"
    protocols = (ISO20,)
    requirement = "ISO 15118-20 [V2G20-1235], [V2G20-1237], [V2G20-2356]"
    failure_modes = ("UC2 107",)

    def check(self, session, ctx):
        if _protocol(session, ctx) != ISO20:
            return
        idx = session_index(session, ctx)
        conns = {c["conn"]: c for c in ctx.connections}
        for cid in session.connections:
            c = conns.get(cid) or {}
            if c.get("kind") != "v2gtp" or not c.get("v2g_messages"):
                continue
            req = [e for e in idx.sdp if e.direction == "EV->EVSE" and e.message
                   and e.frame <= (c.get("first_frame") or 0)]
            asked = (req[-1].message or {}).get("Security") if req else None
            sap = [e for e in idx.named("supportedAppProtocolRes") if e.conn == cid]
            culprit = "EVCC" if asked == "NoTLS" else "SECC" if asked == "TLS" else "unknown"
            yield self.finding(session, [req[-1].frame if req else None,
                                         c.get("syn_frame") or c.get("first_frame"),
                                         sap[0].frame if sap else None],
                               f"ISO 15118-20 runs over plain TCP on connection {cid}"
                               + (f"; the EV asked for {asked} in SDP (frame {req[-1].frame})"
                                  if asked else ""),
                               time=c.get("first_time"), culprit=culprit,
                               evidence={"expected": "TLS 1.3", "actual": "plain TCP",
                                         "sdp_request_security": asked},
                               values=[judged(req[-1] if req else None, "Security", asked)
                                       if asked else None])
            return
