"""Message content: decodability and mandatory / forbidden elements."""
from __future__ import annotations

from .base import Rule


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
