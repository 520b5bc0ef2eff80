"""The typed events the dissectors produce: one per SLAC / SDP / V2GTP message, per notable
TCP or TLS happening, and per capture problem.

Direction follows the protocol roles (DESIGN.md "Events"): the EV sends CM_SLAC_PARM.REQ and
the SDP request and opens the TCP connection, so client→server is ``EV->EVSE``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EV_TO_EVSE = "EV->EVSE"
EVSE_TO_EV = "EVSE->EV"

LAYERS = ("capture", "slac", "sdp", "tcp", "tls", "v2gtp")

#: Protocol labels used in events and sessions.
PROTOCOL_BY_NAMESPACE = {
    "urn:iso:15118:2:2010:AppProtocol": "SupportedAppProtocol",
    "urn:din:70121:2012:MsgDef": "DIN 70121",
    "urn:iso:15118:2:2013:MsgDef": "ISO 15118-2",
    "urn:iso:15118:2:2010:MsgDef": "ISO 15118-2 (2010 draft)",
    "urn:iso:std:iso:15118:-20:CommonMessages": "ISO 15118-20",
    "urn:iso:std:iso:15118:-20:AC": "ISO 15118-20",
    "urn:iso:std:iso:15118:-20:DC": "ISO 15118-20",
    "urn:iso:std:iso:15118:-20:ACDP": "ISO 15118-20",
    "urn:iso:std:iso:15118:-20:WPT": "ISO 15118-20",
}


@dataclass(slots=True)
class Event:
    """One thing that happened in the capture.

    Attributes:
        frame: frame number (1-based, Wireshark's); for a V2GTP message the frame that
            supplied its last byte.
        time: capture time of that frame, epoch seconds.
        layer: one of :data:`LAYERS`.
        name: in the standard's words: ``CM_SLAC_PARM.REQ``, ``SDP request``,
            ``SessionSetupReq``, ``supportedAppProtocolRes``, ``SYN``, ``ClientHello`` …
        direction: ``EV->EVSE``, ``EVSE->EV`` or None when not applicable / unknown.
        protocol: ``SLAC``, ``SDP``, ``SupportedAppProtocol``, ``DIN 70121``,
            ``ISO 15118-2``, ``ISO 15118-20``, ``TCP``, ``TLS`` or None.
        namespace: the EXI schema namespace a V2GTP payload was decoded with.
        message: the decoded tree (EXI, DESIGN.md contract) or the decoded fields (SLAC,
            SDP, TCP, TLS), or None.
        error: None, or why the message could not be decoded (where, if known).
        src, dst: MAC address (SLAC) or ``[ip]:port`` endpoint.
        conn: TCP connection id (0-based) for TCP / TLS / V2GTP events.
        first_frame: frame of the first byte of a message spanning several frames.
        offset: stream offset (TCP / decrypted TLS) of a V2GTP message, else None.
        payload_type: V2GTP payload type or HomePlug MMTYPE.
        payload: the raw message bytes (EXI payload, MME, SDP datagram) when relevant.
        info: extra facts (header problems, namespace detection notes, counts …;
            ``first_time``: for a V2GTP message a later frame completed — e.g. a TCP
            retransmission of its tail — the capture time of ``first_frame``, when its first
            transmission began).
        derived: filled by the analyzer (the message's values in SI units, see
            analyzer/physical.py ``event_facts``); not part of the decode output.
    """

    frame: int
    time: float
    layer: str
    name: str
    direction: str | None = None
    protocol: str | None = None
    namespace: str | None = None
    message: Any = None
    error: str | None = None
    src: str | None = None
    dst: str | None = None
    conn: int | None = None
    first_frame: int | None = None
    offset: int | None = None
    payload_type: int | None = None
    payload: bytes | None = None
    info: dict = field(default_factory=dict)
    derived: dict | None = None

    def to_json(self) -> dict:
        """The JSON Lines form used by ``ccs-analyzer decode`` (a documented contract:
        frame, time, layer, name, direction, namespace, message, error, plus the rest)."""
        d = {
            "frame": self.frame,
            "time": self.time,
            "layer": self.layer,
            "name": self.name,
            "direction": self.direction,
            "protocol": self.protocol,
            "namespace": self.namespace,
            "message": self.message,
            "error": self.error,
            "src": self.src,
            "dst": self.dst,
        }
        if self.conn is not None:
            d["conn"] = self.conn
        if self.first_frame is not None and self.first_frame != self.frame:
            d["first_frame"] = self.first_frame
        if self.payload_type is not None:
            d["payload_type"] = f"0x{self.payload_type:04X}"
        if self.payload is not None:
            d["hex"] = self.payload.hex()
        if self.info:
            d["info"] = self.info
        return d
