"""Message content rules on decoding the V2GTP payload: MSG001-MSG003."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import session_index
from ccs_analyzer.dissectors.events import V2GTP_FRAMING_ERROR
from ccs_analyzer.dissectors.exi.namespaces import NS_APP_PROTOCOL as NS_SAP
from ccs_analyzer.dissectors.exi.namespaces import NS_ISO20_PREFIX as NS_ISO20

from ..base import Rule
from ..helpers import culprit_of
from .common import Groups, _lower, _span, _times

_EXI_TYPES = frozenset({0x8001, 0x8002, 0x8003, 0x8004, 0x8005, 0x8006,
                        0x8101, 0x8102, 0x8103, 0x8104})


class UndecodableMessage(Rule):
    """A V2GTP message could not be decoded.

    What it checks: every V2GTP message with an EXI payload type decodes with the negotiated
    schema (EXI). V2GTP framing errors, payload types that carry no EXI and empty payloads
    are transport findings (TRN004 … TRN006).
    Why it matters: the receiver cannot decode it either, unless the capture lost bytes; it
    answers with a failure or drops the connection (ISO 15118-2 §7.8.3.2 header checks,
    V2G2 FaultCode ParsingError).
    Fix (sender): validate the EXI encoder against the XSD of the negotiated protocol (the
    error says at which bit and grammar state decoding stopped).
    Source: ISO 15118-2 §7.8.3 (V2GTP), W3C EXI 1.0; PROTOCOL_FACTS §1.1.

    Example:

        #59 (undecodable EXI) (EXI error at bit 94 in BodyType[0] at V2G_Message/Body: une…)
    """

    code = "MSG001"
    title = "V2GTP message not decodable"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "no-response", "evse-abort", "ev-abort",
                "no-session-stop", "connection-reset")
    culprit = "unknown"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        for e in session_index(session, ctx).v2g_all:
            if not e.error or e.message is not None or e.name == V2GTP_FRAMING_ERROR:
                continue
            if e.payload_type not in _EXI_TYPES or not e.payload:
                continue          # no EXI / empty payload: transport rules TRN005, TRN006
            lost = "missing from the capture" in e.error
            yield self.finding(session, [e.frame, e.first_frame], f"{e.name} in frame {e.frame} "
                               f"could not be decoded: {e.error}", time=e.time,
                               culprit="capture" if lost else culprit_of(e),
                               severity=_lower(self.severity) if lost else None,
                               evidence={"error": e.error, "payload_type": f"0x{e.payload_type:04X}",
                                         "schemas_tried": e.info.get("schemas_tried"),
                                         "hex": e.payload.hex()[:512] if e.payload else None})


class TrailingBytes(Rule):
    """Bytes follow the EXI document inside the V2GTP payload.

    What it checks: the V2GTP payload length equals the octets the EXI document occupies
    (the V2G layer reports the surplus as ``trailing_bytes``); one finding per message type
    and sender, with the count.
    Why it matters: the payload length must describe the message exactly; a strict receiver
    rejects the message (ParsingError) or mis-frames what follows, a lenient one ignores
    the stray octets — an interoperability risk either way.
    Fix (sender): set the V2GTP payload length to the EXI encoder's output length; do not
    pad or reuse a larger buffer length.
    Source: ISO 15118-2 §7.8.3 (payload length = length of the V2GTP payload), DIN 70121
    §8.7.3; PROTOCOL_FACTS §1.1 ("payload length must equal the bytes that follow").

    Example:

        #55 SessionSetupReq → #57 SessionSetupRes
    """

    code = "MSG002"
    title = "Bytes after the EXI document in the V2GTP payload"
    severity = "warning"
    category = "message-content"
    requirement = "ISO 15118-2 §7.8.3 V2GTP payload length"
    culprit = "unknown"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e in session_index(session, ctx).v2g:
            tb = e.info.get("trailing_bytes")
            if tb:
                groups.add((e.name, e.direction), e, count=tb.get("count"), hex=tb.get("hex"),
                           payload=e.payload.hex()[:256] if e.payload else None)
        for (name, _), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) carries "
                               f"{f['count']} byte(s) (0x{f['hex']}) after the end of its EXI "
                               f"document inside the V2GTP payload length", time=first.time,
                               culprit=culprit_of(first), measured=f["count"], limit=0, unit="bytes",
                               evidence={"expected": "V2GTP payload length = EXI document length",
                                         "actual": f"{f['count']} trailing byte(s) 0x{f['hex']}",
                                         "payload_hex": f["payload"], "messages": n})


class SchemaFallback(Rule):
    """A message decodes only with another schema than the one negotiated.

    What it checks: after SupportedAppProtocol chose a namespace (DIN 70121, ISO 15118-2,
    ISO 15118-20), every message decodes with that namespace; the V2G layer notes
    ``schema_fallback`` when it had to try another one. Connections whose schema was
    detected (handshake not captured) are capture-quality findings (CAP004), not this; a
    -20 message on the wrong payload type is TRN005.
    Why it matters: the receiver decodes with the negotiated schema and fails (ParsingError,
    FAILED or a dropped connection); usually the sender mixes up DIN 70121 and ISO 15118-2.
    Fix (sender): encode every message of the session with the namespace the
    supportedAppProtocolRes selected.
    Source: ISO 15118-2 §8.2 / DIN 70121 §8.2 (SupportedAppProtocol chooses the protocol),
    ISO 15118-20 §8.3.3; PROTOCOL_FACTS §3.

    Example:

        #63 CableCheckReq → #65 CableCheckRes
        #87 CableCheckReq → #89 CableCheckRes
    """

    code = "MSG003"
    title = "Message encoded with a schema other than the negotiated one"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "no-response", "evse-abort", "ev-abort",
                "no-session-stop", "connection-reset")
    requirement = "ISO 15118-2 §8.2 SupportedAppProtocol selects the schema"
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 107", "UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e in session_index(session, ctx).v2g:
            fb = e.info.get("schema_fallback")
            if not fb or e.info.get("namespace_detected") or e.info.get("schema_detected"):
                continue
            expected = fb.get("expected") or ""
            if expected == NS_SAP or e.namespace == NS_SAP:
                continue          # a handshake message out of place: a sequence matter
            if expected.startswith(NS_ISO20) and (e.namespace or "").startswith(NS_ISO20):
                continue          # -20 schema vs payload type: TRN005
            groups.add((e.name, e.direction, e.namespace), e, expected=expected,
                       error=fb.get("error"))
        for (name, _, ns), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) decodes only with "
                               f"{ns}, not with the negotiated {f['expected']}",
                               time=first.time, culprit=culprit_of(first),
                               evidence={"expected": f["expected"], "actual": ns,
                                         "error_with_negotiated_schema": f["error"], "messages": n})
