"""The plan of a simulated capture: what every side sends, when, and how it goes on the wire.

A :class:`SessionPlan` is one charging session: its SLAC run (:class:`ccs_analyzer.samples.slac.SlacPlan`),
then one or more :class:`Connection` (a second one after a pause): each with its SDP exchange,
its TCP connection and its :class:`Exchange` list (request / response V2G messages with the EV's
think time and the SECC's latency), and how it ends (:class:`Ending`).

Faults edit this plan (faults.py): trees and timings of the exchanges (script level), the wire
form of one message (V2GTP header, EXI bytes, lost or retransmitted segments: TCP level), the
SLAC and SDP plans. The capture writer (wire.py) turns it into frames.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ccs_analyzer.dissectors import exi
from ccs_analyzer.rules.timing_tables import SDP_RESPONSE_TIMEOUT

from . import signing

#: V2GTP payload types (ISO 15118-2 §7.8.3 Table 10, ISO 15118-20 §V2GTP; PROTOCOL_FACTS §1.2)
PT_EXI = 0x8001
PT_20_COMMON = 0x8002
PT_20_AC = 0x8003
PT_20_DC = 0x8004
PT_SDP_REQ = 0x9000
PT_SDP_RES = 0x9001


@dataclass
class Message:
    """One V2G message as the simulator means it, and how it goes on the wire.

    ``side`` "EV" or "EVSE"; ``tree`` the decoded-tree form (docs/architecture.md) encoded with
    ``namespace``; ``payload_type`` the V2GTP payload type. Wire overrides set by faults:
    ``v2gtp_header`` (any of version, inverse, payload_type, length), ``exi_keep`` (only the
    first N octets of the EXI document are sent), ``trailing`` (octets after the EXI document,
    inside the V2GTP payload), ``lost`` (the segments are not in the capture although the peer
    receives and ACKs them), ``retransmit_after_s`` (the first segment is sent again),
    ``line_losses`` (gaps, s: the segments were lost on the line that many times — captured,
    never acknowledged — and sent again after each gap), ``raw`` (send these bytes instead of a V2GTP message: a TLS record, say).
    ``comments`` end up as pcapng packet comments on the frames that carry the message.
    ``signer`` (set from the tree's header placeholder, samples/signing.py) signs the message
    at each encoding; ``signature_fault`` breaks that signature (signing.SIGNATURE_FAULTS)."""

    side: str
    tree: dict | None
    namespace: str
    payload_type: int = PT_EXI
    v2gtp_header: dict = field(default_factory=dict)
    exi_keep: int | None = None
    trailing: bytes = b""
    lost: bool = False
    retransmit_after_s: float | None = None
    raw: bytes | None = None
    line_losses: list[float] | None = None
    comments: list[str] = field(default_factory=list)
    signer: str | None = None
    signature_fault: str | None = None
    _exi: bytes | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        if self.raw is not None and self.tree is None:
            return "(raw)"
        return exi.message_name(self.tree)

    def exi(self) -> bytes:
        """The EXI document (encoded once, with the project's encoder); a message marked to
        be signed (samples/signing.py) is signed over its tree as it is now, broken as
        ``signature_fault`` says."""
        if self._exi is None:
            if self.signer is None and self.tree is not None:
                self.signer = signing.take_marker(self.tree)
            if self.signer is not None:
                signing.sign_tree(self.tree, self.namespace, self.signer, self.signature_fault)
            self._exi = exi.encode(self.tree, self.namespace)
        return self._exi

    def invalidate(self) -> None:
        """Forget the cached encoding after the tree was edited."""
        self._exi = None

    def payload(self) -> bytes:
        """The V2GTP payload: the EXI document (cut to ``exi_keep``) and ``trailing``."""
        doc = self.exi()
        if self.exi_keep is not None:
            doc = doc[: self.exi_keep]
        return doc + self.trailing

    def wire(self) -> bytes:
        """The bytes on the TCP stream: the V2GTP header (ISO 15118-2 §7.8.3: version 0x01,
        inverse 0xFE, payload type, payload length; big-endian) and the payload."""
        if self.raw is not None:
            return self.raw
        body = self.payload()
        h = {"version": 0x01, "inverse": 0xFE, "payload_type": self.payload_type, "length": len(body)}
        h.update(self.v2gtp_header)
        return (bytes([h["version"] & 0xFF, h["inverse"] & 0xFF]) + (h["payload_type"] & 0xFFFF).to_bytes(2, "big")
                + (h["length"] & 0xFFFFFFFF).to_bytes(4, "big") + body)

    @property
    def intact(self) -> bool:
        """True when nothing but ``trailing`` octets changed its wire form."""
        return (self.raw is None and not self.v2gtp_header and self.exi_keep is None
                and not self.lost)

    @property
    def decodable(self) -> bool:
        """True when a tolerant receiver (and the analyzer) decodes exactly ``tree`` from the
        capture: intact, or only its V2GTP payload type is wrong."""
        return (self.raw is None and self.exi_keep is None and not self.lost
                and set(self.v2gtp_header) <= {"payload_type"})

    def copy(self) -> "Message":
        m = copy.deepcopy(self)
        m._exi = None
        return m


@dataclass
class Exchange:
    """A request and its response (None: the SECC never answers).

    ``think_s``: the EV's time from the previous response (or from the connection / previous
    request) to this request; ``latency_s``: the SECC's time from the request to the response.
    ``phase``: the session phase (handshake, setup, authorization, parameters, cablecheck,
    precharge, powerdelivery, loop, welding, stop). ``state``: physical quantities at that
    moment (for faults that rebuild a message)."""

    request: Message
    response: Message | None
    think_s: float
    latency_s: float
    phase: str = ""
    state: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.request.name[:-3] if self.request.name.endswith("Req") else self.request.name


@dataclass
class Ending:
    """How a TCP connection ends, ``after_s`` after its last message: ``by`` "EV" or "EVSE",
    ``how`` "FIN" (orderly close: FIN, FIN, ACK), "RST" (reset), or "none" (the capture
    ends with the connection open). ``reason`` is for the packet comment."""

    by: str = "EV"
    how: str = "FIN"
    after_s: float = 0.1
    reason: str = ""


@dataclass
class SdpPlan:
    """The SDP exchange before a connection (ISO 15118-2 §7.10.1; PROTOCOL_FACTS §1.4-1.5).

    ``security`` the EV asks for ("TLS" / "NoTLS"); ``response_security`` what the SECC
    announces (None: same); ``unanswered`` requests go out before one is answered (each after
    ``retry_s``, by default the EVCC's SDP response timeout, 250 ms [V2G2-159]); ``answered`` False: no request is ever answered (the
    session ends there); ``latency_s`` the SECC's answer time. Link faults (faults_link.py):
    ``request_transport`` / ``response_transport`` the TransportProtocol octets (0x00 TCP,
    0x10 UDP; ISO 15118-2 Table 15); ``announce_address`` (16 octets) / ``announce_port``
    what the response announces instead of the SECC's own address / port (None: its own)."""

    security: str = "NoTLS"
    response_security: str | None = None
    unanswered: int = 0
    answered: bool = True
    retry_s: float = SDP_RESPONSE_TIMEOUT.seconds
    latency_s: float = 0.05
    request_transport: int = 0x00
    response_transport: int = 0x00
    announce_address: bytes | None = None
    announce_port: int | None = None
    comments: list[str] = field(default_factory=list)


@dataclass
class TcpPlan:
    """TCP details of a connection: refused attempts on a wrong port before the right one
    (``wrong_port`` / ``refused_attempts``, the pyPLC Alpitronic failure), the MSS;
    ``connect_port`` the port the EV connects to instead of the announced one (the SECC
    accepts there; None: the announced port); ``half_open_first``: the EV's first SYN hits
    a connection the SECC still holds on the same ports (answered by that connection's ACK,
    reset by the EV, then the SYN again: RFC 9293 §3.10.7.3)."""

    wrong_port: int | None = None
    refused_attempts: int = 0
    connect_to_wrong_port_only: bool = False
    mss: int = 1440
    connect_port: int | None = None
    half_open_first: bool = False
    comments: list[str] = field(default_factory=list)


@dataclass
class Connection:
    """One SDP + TCP connection of a session and its V2G exchanges; ``tls_prelude``: raw
    records (side, bytes, delay s) sent before them."""

    exchanges: list[Exchange] = field(default_factory=list)
    ending: Ending = field(default_factory=Ending)
    sdp: SdpPlan = field(default_factory=SdpPlan)
    tcp: TcpPlan = field(default_factory=TcpPlan)
    gap_before_s: float = 0.0
    tls_prelude: list[tuple[str, bytes, float]] = field(default_factory=list)
    #: absolute times (epoch s): the first SDP request, and the end of the TCP handshake
    start_t: float = 0.0
    v2g_start_t: float = 0.0


@dataclass
class SessionPlan:
    """One charging session: SLAC, then its connections (see module docstring).

    ``sniffer``: what the capture point records of the session (None: everything; else an
    object with ``wrap(cb)`` and ``finish(written)``, faults_link.Sniffer);
    ``control_pilot``: the session's CP evidence (None: none; else an object whose
    ``frames(plan, written)`` gives (time, frame, comments), cp_flow.CpRun)."""

    slac: object
    connections: list[Connection]
    protocol: str = ""
    session_id: str = ""
    gap_before_s: float = 0.0
    dialect: object = None
    capture_comments: list[str] = field(default_factory=list)
    sniffer: object = None
    control_pilot: object = None

    # ---------------------------------------------------------------- finding messages
    def exchanges(self):
        """Every (connection index, exchange index, exchange), in order."""
        for ci, c in enumerate(self.connections):
            for xi, x in enumerate(c.exchanges):
                yield ci, xi, x

    def find(self, message: str, occurrence: int = 1) -> tuple[int, int, Exchange, Message]:
        """The ``occurrence``-th (1-based; −1: the last) message named ``message`` (a request
        or a response name, e.g. "CableCheckRes"), as (connection, exchange index, exchange,
        message). Raises LookupError when the session has none."""
        hits = []
        for ci, xi, x in self.exchanges():
            for m in (x.request, x.response):
                if m is not None and m.tree is not None and m.name == message:
                    hits.append((ci, xi, x, m))
        if not hits:
            names = sorted({m.name for _, _, x in self.exchanges() for m in (x.request, x.response)
                            if m is not None and m.tree is not None})
            raise LookupError(f"no {message} in this session (it has: {', '.join(names)})")
        if occurrence == -1:
            return hits[-1]
        if not 1 <= occurrence <= len(hits):
            raise LookupError(f"{message} occurs {len(hits)} time(s), not {occurrence}")
        return hits[occurrence - 1]

    def messages(self):
        """Every Message of the plan in order."""
        for _, _, x in self.exchanges():
            yield x.request
            if x.response is not None:
                yield x.response

    # ---------------------------------------------------------------- editing the flow
    def terminate(self, ci: int, xi: int, ending: Ending, keep_response: bool = True) -> None:
        """End the session at exchange ``xi`` of connection ``ci``: later exchanges and later
        connections are dropped, the connection ends as ``ending``; ``keep_response`` False
        drops that exchange's response too."""
        conn = self.connections[ci]
        del conn.exchanges[xi + 1:]
        if not keep_response:
            conn.exchanges[xi].response = None
        conn.ending = ending
        del self.connections[ci + 1:]

    def set_session_id(self, session_id: str, from_ci: int, from_xi: int, sides=("EV", "EVSE"),
                       first_side: str | None = None) -> None:
        """Put ``session_id`` into the header of every message from exchange (from_ci,
        from_xi) on (``first_side``: only that side's message of the first exchange)."""
        for ci, xi, x in list(self.exchanges()):
            if (ci, xi) < (from_ci, from_xi):
                continue
            for m in (x.request, x.response):
                if m is None or m.tree is None or m.side not in sides:
                    continue
                if (ci, xi) == (from_ci, from_xi) and first_side and m.side != first_side:
                    continue
                h = header_of(m.tree)
                if h is not None and "SessionID" in h:
                    h["SessionID"] = session_id
                    m.invalidate()


def header_of(tree: dict) -> dict | None:
    """The header dict of a V2G message tree (DIN / ISO-2 V2G_Message.Header, -20 root.Header);
    None for supportedAppProtocol messages."""
    (root, v), = tree.items()
    if root == "V2G_Message":
        return v.get("Header")
    if isinstance(v, dict) and "Header" in v:
        return v["Header"]
    return None


def body_of(tree: dict) -> dict:
    """The message body dict (DIN / ISO-2 Body child, -20 / SAP root value)."""
    (root, v), = tree.items()
    if root == "V2G_Message":
        (_, b), = v["Body"].items()
        return b
    return v


def set_response_code(m: Message, code: str) -> None:
    """Set the ResponseCode of a response message (all protocols and SAP); a Failed_* SAP
    response loses its SchemaID ([V2G-DC-226], PROTOCOL_FACTS §3)."""
    b = body_of(m.tree)
    b["ResponseCode"] = code
    if "SchemaID" in b and code.startswith("Failed"):
        del b["SchemaID"]
    m.invalidate()
