"""Transport rules on V2GTP framing and payload types: TRN004-TRN006."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import session_index
from ccs_analyzer.dissectors.events import V2GTP_FRAMING_ERROR

from ..base import Rule
from ..helpers import culprit_of
from .common import _conns


def _capture_caused(reason: str) -> bool:
    return "missing from the capture" in reason


class V2gtpHeaderError(Rule):
    """A V2GTP header is invalid or the stream does not frame into V2GTP messages.

    What it checks: "V2GTP framing error" events (bytes that are not a V2GTP header: wrong
    protocol version 0x01 / inverse 0xFE, an impossible length, a message cut off by the
    sender's FIN or RST) and V2GTP messages whose header has problems (payload types are
    TRN005's). Bytes lost in the capture are not the sender's fault: they are reported by
    CAP002; a message left incomplete because the capture ended is not reported.
    Why it matters: the receiver discards the message or closes the connection
    (ISO 15118-2 §7.8.3.2 header checks); the session stalls until a timeout.
    Fix (sender): write the 8-byte header as version 0x01, inverse 0xFE, the payload type,
    the exact payload length (big-endian), and send whole messages.
    Source: ISO 15118-2 §7.8.3 (V2GTP header, [V2G2-085] byte order), DIN 70121 §8.7.3,
    ISO 15118-20 §7.8; PROTOCOL_FACTS §1.1 (J-V2GTP, CBV2G, R-MH).

    Example:

        #43 V2GTP framing error (bad V2GTP header: protocol version 0x02 (expected 0x01); in…)
    """

    code = "TRN004"
    title = "V2GTP header or framing error"
    severity = "error"
    category = "transport"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-abort", "no-response", "ev-abort", "no-session-stop",
                "connection-reset", "handshake-failed")
    requirement = "ISO 15118-2 §7.8.3.2 V2GTP header checks"
    culprit = "unknown"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        conns = _conns(ctx)
        idx = session_index(session, ctx)
        for e in idx.v2g_all:
            if e.name == V2GTP_FRAMING_ERROR:
                reason = e.error or ""
                if _capture_caused(reason):
                    continue
                if reason.startswith("stream ends"):
                    c = conns.get(e.conn, {})
                    d = 0 if e.direction == "EV->EVSE" else 1
                    closed = ((c.get("fin_frames") or [None, None])[d]
                              or (c.get("rst_frames") or [None, None])[d])
                    if closed is None:
                        continue      # the capture ended inside the message
                    reason += f"; the sender closed the connection (frame {closed})"
                n = e.info.get("bytes") or (len(e.payload) if e.payload else None)
                where = f"frames {e.first_frame}-{e.frame}" if e.first_frame not in (None, e.frame) \
                    else f"frame {e.frame}"
                yield self.finding(session, [e.first_frame, e.frame],
                                   f"{n if n is not None else 'Some'} byte(s) of the {_side(e)}'s stream "
                                   f"on connection {e.conn} ({where}) are not a valid V2GTP message: "
                                   f"{reason}", time=e.time, culprit=culprit_of(e),
                                   evidence={"expected": "V2GTP header 01 FE <type> <length>",
                                             "actual": reason, "stream_offset": e.offset,
                                             "bytes": e.info.get("bytes")})
            elif e.info.get("header_problems"):
                probs = [p for p in e.info["header_problems"] if "payload type" not in p]
                if not probs:
                    continue      # a reserved / unexpected payload type: TRN005
                yield self.finding(session, [e.frame], f"V2GTP header of {e.name} (frame {e.frame}) "
                                   f"from the {_side(e)}: {'; '.join(probs)}", time=e.time,
                                   culprit=culprit_of(e),
                                   evidence={"expected": "valid V2GTP header", "actual": probs,
                                             "payload_type": _pt(e.payload_type)})


def _side(e) -> str:
    return "EV" if e.direction == "EV->EVSE" else "EVSE" if e.direction == "EVSE->EV" else "sender"


def _pt(pt) -> str | None:
    return f"0x{pt:04X}" if isinstance(pt, int) else None


#: ISO 15118-20 payload type per message family (E-D20 payload_type.hpp; ISO 15118-20 Table
#: 12): the main stream of the schema; side streams as listed.
_ISO20_SIDE = {0x8101: ("ScheduleExchange", "PowerDelivery", "ChargeParameterDiscovery"),
               0x8102: ("MeteringConfirmation",), 0x8103: ("ACDP_SystemStatus",),
               0x8104: ("VehicleCheckIn", "VehicleCheckOut")}


def iso20_payload_types(name: str) -> set[int]:
    """Payload types an ISO 15118-20 message may travel on (PROTOCOL_FACTS §1.2)."""
    if name.startswith("supportedAppProtocol"):
        return {0x8001}
    base = name[:-3] if name.endswith(("Req", "Res")) else name
    if base.startswith("AC_"):
        main = 0x8003
    elif base.startswith("DC_"):
        main = 0x8004
    elif base.startswith("ACDP_"):
        main = 0x8005
    elif base.startswith("WPT_"):
        main = 0x8006
    else:
        main = 0x8002
    out = {main}
    for pt, names in _ISO20_SIDE.items():
        if any(n in base for n in names):
            out.add(pt)
    return out


class PayloadTypeNotAllowed(Rule):
    """A V2GTP payload type that the negotiated protocol does not use for that message.

    What it checks: DIN 70121 and ISO 15118-2 use payload type 0x8001 only; ISO 15118-20
    uses 0x8001 for SupportedAppProtocol, 0x8002 for CommonMessages, 0x8003 AC, 0x8004 DC,
    0x8005 ACDP, 0x8006 WPT, and the side streams 0x8101-0x8104 for their messages. Payload
    types that carry no EXI (SDP types, reserved, manufacturer specific) on the V2G
    connection are reported too. -20 per-message mismatches follow a single implementation
    (E-D20 ⚠): warnings.
    Why it matters: the receiver picks the schema by payload type (-20) or rejects unknown
    types; the message is dropped or answered with a failure.
    Fix (sender): send every message with the payload type of its schema.
    Source: ISO 15118-20 Table 12, ISO 15118-2 Table 10 (payload types); J-V2GTP validity
    check, E-D20 payload_type.hpp; PROTOCOL_FACTS §1.2.

    Example:

        #95 PreChargeReq → #97 PreChargeRes
    """

    code = "TRN005"
    title = "V2GTP payload type not allowed for the protocol"
    severity = "error"
    category = "transport"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-abort", "no-response", "ev-abort", "handshake-failed")
    requirement = "ISO 15118-20 Table 12 / ISO 15118-2 Table 10 payload types"
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        proto = ctx.summaries.get(session.id, {}).get("protocol")
        groups: dict = {}
        for e in session_index(session, ctx).v2g_all:
            pt = e.payload_type
            if pt is None or e.name == V2GTP_FRAMING_ERROR:
                continue
            if e.message is None:
                if e.error and "does not carry EXI" in e.error:
                    allowed, warn = ("0x8001",) if proto != "ISO 15118-20" else ("0x8001-0x8006",
                                                                                 "0x8101-0x8104"), False
                else:
                    continue
            elif proto == "ISO 15118-20" or (e.protocol or "").startswith("ISO 15118-20"):
                ok = iso20_payload_types(e.name)
                if pt in ok:
                    continue
                allowed, warn = tuple(_pt(x) for x in sorted(ok)), True
            else:
                if pt == 0x8001:
                    continue
                allowed, warn = ("0x8001",), False
            key = (e.name, e.direction, pt)
            g = groups.get(key)
            if g is None:
                groups[key] = [e, e, 1, allowed, warn]
            else:
                g[1] = e
                g[2] += 1
        for (name, _, pt), (first, last, n, allowed, warn) in groups.items():
            span = f"frame {first.frame}" if n == 1 else f"{n}×, frames {first.frame}-{last.frame}"
            yield self.finding(session, [first.frame, last.frame],
                               f"{name} ({span}) from the {_side(first)} uses V2GTP payload type "
                               f"{_pt(pt)}; {proto or 'the protocol'} allows {', '.join(allowed)} "
                               "for it", time=first.time, culprit=culprit_of(first),
                               severity="warning" if warn and self.severity == "error" else None,
                               measured=_pt(pt), limit=list(allowed),
                               evidence={"expected": list(allowed), "actual": _pt(pt),
                                         "messages": n})


class EmptyPayload(Rule):
    """A V2GTP message with a zero-length payload.

    What it checks: V2GTP messages whose header announces a payload length of 0.
    Why it matters: every V2GTP message carries one EXI document; an empty one cannot be
    decoded and the receiver answers with a failure or drops the connection.
    Fix (sender): do not send a V2GTP header without its payload (check the encoder's
    return value before sending).
    Source: ISO 15118-2 §7.8.3 (V2GTP payload), DIN 70121 §8.7.3; PROTOCOL_FACTS §1.1.

    Example:

        #61 (undecodable EXI) (EXI error at bit 0 in header: stream too short for an EXI h…)
    """

    code = "TRN006"
    title = "V2GTP message with an empty payload"
    severity = "error"
    category = "transport"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-abort", "no-response", "ev-abort", "handshake-failed")
    requirement = "ISO 15118-2 §7.8.3 V2GTP payload"
    culprit = "unknown"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups: dict = {}
        for e in session_index(session, ctx).v2g_all:
            if e.payload is not None and len(e.payload) == 0 and e.name != V2GTP_FRAMING_ERROR:
                g = groups.setdefault((e.direction, e.payload_type), [e, e, 0])
                g[1] = e
                g[2] += 1
        for (_, pt), (first, last, n) in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{n} V2GTP message(s) from the {_side(first)} with payload type "
                               f"{_pt(pt)} and no payload (frames {first.frame}-{last.frame})",
                               time=first.time, culprit=culprit_of(first), measured=0,
                               evidence={"expected": "an EXI payload", "actual": "payload length 0",
                                         "messages": n})
