"""SECC Discovery Protocol (SDP): V2GTP over UDP port 15118 (ISO 15118-2 SDP requirements
[V2G2-139]..[V2G2-161], [V2G2-623]; DIN SPEC 70121; ISO 15118-20; PROTOCOL_FACTS §1.2-1.4).

Input is the UDP payload: the 8-byte V2GTP header (parsed with :func:`.v2gtp.parse_header`), then
the SDP body. Body layouts (all multi-byte integers big-endian, [V2G2-085])::

    0x9000 SDP request (2 bytes) — J-SDP, E-SDP, DSV ✅
        0   1   Security            0x00 TLS, 0x10 no transport-layer security [V2G2-623]
        1   1   TransportProtocol   0x00 TCP, 0x10 UDP (reserved for SDP itself)

    0x9001 SDP response (20 bytes) — J-SDP, E-SDP, DSV ✅
        0   16  SECCIPAddress       IPv6 address of the SECC
        16  2   SECCPort            TCP port of the SECC
        18  1   Security
        19  1   TransportProtocol

    0x9002 SDP request, wireless (61 bytes) — ⚠ dsV2Gshark v2gsdp.lua only
        0   1   Security
        1   1   TransportProtocol
        2   2   P2PS_PPD            flags 0x0100 PPD on infrastructure, 0x0200 PPD on EV,
                                    0x0400 WPT_LF on infrastructure, 0x0800 WPT_LF on EV,
                                    0x1000 WPT_Cam on EV, 0x2000 ACD_U_Infrared,
                                    0x4000 ACD_directed_WLAN
        4   1   CouplingType        see COUPLING_TYPES
        5   20  EVID                ASCII, NUL padded
        25  36  EVSEID              ASCII, NUL padded

    0x9003 SDP response, wireless (58 bytes) — ⚠ dsV2Gshark v2gsdp.lua only
        0   20  as the wired response
        20  1   DiagStatus          see DIAG_STATUS
        21  1   CouplingType
        22  36  EVSEID              ASCII, NUL padded

    0x9004 SDP EMSP request — ⚠ dsV2Gshark only (Josev lists 0x9004 as reserved): the whole body
           is a list of eMSP IDs, shown by dsV2Gshark as one string; separators not pinned down.
    0x9005 SDP EMSP response — ⚠ dsV2Gshark only: SECCIPAddress (16), SECCPort (2), then eMSP IDs
           (no Security / TransportProtocol: EMSP implies TLS).

:func:`decode_sdp` never raises; what is wrong ends up in ``header_problems`` (V2GTP header checks)
and ``error`` (why it could not be decoded).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .events import SDP_NO_V2GTP_HEADER
from .v2gtp import HEADER_LEN, parse_header, payload_type_name

SDP_REQUEST = 0x9000
SDP_RESPONSE = 0x9001
SDP_REQUEST_WIRELESS = 0x9002
SDP_RESPONSE_WIRELESS = 0x9003
SDP_EMSP_REQUEST = 0x9004
SDP_EMSP_RESPONSE = 0x9005

#: Payload type → (message name, is_request) (ISO 15118-20 Table 12; PROTOCOL_FACTS §1.2).
SDP_NAMES: dict[int, tuple[str, bool]] = {
    SDP_REQUEST: ("SDP request", True),
    SDP_RESPONSE: ("SDP response", False),
    SDP_REQUEST_WIRELESS: ("SDP request (wireless)", True),
    SDP_RESPONSE_WIRELESS: ("SDP response (wireless)", False),
    SDP_EMSP_REQUEST: ("SDP EMSP request", True),
    SDP_EMSP_RESPONSE: ("SDP EMSP response", False),
}

#: Security byte [V2G2-623] / [V2G2-624].
SECURITY = {0x00: "TLS", 0x10: "NoTLS"}
#: Transport protocol byte [V2G2-623].
TRANSPORT_PROTOCOL = {0x00: "TCP", 0x10: "UDP"}
#: Coupling type of the wireless SDP messages (⚠ dsV2Gshark v2gsdp.lua coupling_types).
COUPLING_TYPES = {
    0x00: "IEC 61851-23-1 / EN 50696 Annex A.2 (infrastructure inverse pantograph, cross rail)",
    0x01: "IEC 61851-23-1 / EN 50696 Annex A.3 (infrastructure inverse pantograph, in line)",
    0x02: "IEC 61851-23-1 / EN 50696 Annex A.4 (infrastructure pantograph, contact dome)",
    0x03: "IEC 61851-23-1 / EN 50696 Annex B (EV mounted pantograph)",
    0x04: "IEC 61851-23-1 / EN 50696 Annex C (ACD underneath the EV)",
    0x05: "IEC 61851-23-1 / EN 50696 Annex D (ACD on infrastructure, side or roof)",
    0x10: "WPT (IEC 61980)",
    0x20: "ACD-U (manipulator on infrastructure)",
    0x21: "ACD-U (manipulator on EV)",
    0x30: "ACD-S",
    0x40: "conductive manual",
    0xFF: "n.a.",
}
#: DiagStatus of the wireless SDP response (⚠ dsV2Gshark v2gsdp.lua diagstatus_types).
DIAG_STATUS = {0x00: "ongoing", 0x01: "finished with EVSEID", 0x02: "finished without EVSEID",
               0x10: "Error - no SECC"}
#: P2PS/PPD flag bits of the wireless SDP request (⚠ dsV2Gshark v2gsdp.lua).
P2PS_PPD_FLAGS = ((0x0100, "PPD on Infrastructure"), (0x0200, "PPD on EV"),
                  (0x0400, "WPT_LF on Infrastructure"), (0x0800, "WPT_LF on EV"),
                  (0x1000, "WPT_Cam on EV"), (0x2000, "ACD_U_Infrared"),
                  (0x4000, "ACD_directed_WLAN"))

#: Body sizes of the fixed-layout SDP messages.
BODY_LEN = {SDP_REQUEST: 2, SDP_RESPONSE: 20, SDP_REQUEST_WIRELESS: 61, SDP_RESPONSE_WIRELESS: 58}

_EMSP_SPLIT = re.compile(rb"[\x00,;\s]+")


@dataclass(slots=True)
class SdpMessage:
    """One decoded SDP datagram.

    * ``payload_type``: V2GTP payload type (int); -1 when there is no V2GTP header at all.
    * ``name``: "SDP request", "SDP response", "SDP request (wireless)", "SDP response
      (wireless)", "SDP EMSP request", "SDP EMSP response"; "V2GTP 0xNNNN" for other payload
      types; "no V2GTP header" when fewer than 8 bytes arrived.
    * ``is_request``: True for requests (EVCC → SECC), False for responses, None otherwise.
    * ``fields``: the standard's names: ``Security`` ("TLS" / "NoTLS" / "reserved(0xNN)"),
      ``TransportProtocol`` ("TCP" / "UDP" / "reserved(0xNN)"), ``SECCIPAddress`` (compressed
      IPv6 text), ``SECCPort`` (int); wireless and EMSP extras as in the module docstring;
      ``extra_hex`` for body bytes beyond a fixed layout.
    * ``header_problems``: V2GTP header check failures (``V2gtpHeader.problems``).
    * ``error``: None, or why (part of) the datagram could not be decoded: no or invalid V2GTP
      header, payload length different from the declared length, truncated body, payload type
      that is not SDP.
    """

    payload_type: int
    name: str
    is_request: bool | None = None
    fields: dict = field(default_factory=dict)
    header_problems: list[str] = field(default_factory=list)
    error: str | None = None


def _code(table: dict[int, str], b: int) -> str:
    return table.get(b) or f"reserved(0x{b:02X})"


def _ascii(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("ascii", "replace")


def _addr_port(body: bytes, fields: dict) -> None:
    fields["SECCIPAddress"] = ipaddress.IPv6Address(bytes(body[0:16])).compressed
    fields["SECCPort"] = (body[16] << 8) | body[17]


def _emsp_ids(b: bytes, fields: dict) -> None:
    """eMSP ID list (⚠ layout only known from dsV2Gshark, which shows one string): IDs split on
    NUL / comma / semicolon / whitespace; the raw bytes are always kept as ``EMSPIDs_hex``."""
    fields["EMSPIDs"] = [x.decode("ascii", "replace") for x in _EMSP_SPLIT.split(bytes(b)) if x]
    fields["EMSPIDs_hex"] = bytes(b).hex()


def decode_sdp(udp_payload: bytes) -> SdpMessage:
    """Decode an SDP datagram (the UDP payload of port 15118). Never raises.

    Returns an :class:`SdpMessage`. The body is what the V2GTP header declares (bytes beyond it
    are ignored; fewer bytes are decoded as far as they go); a mismatch with the declared length,
    an invalid header (version != 0x01 or inverse != 0xFE: fields are still decoded, the error
    says why they may be meaningless), a truncated body and a non-SDP payload type are reported
    in ``error``. Layouts: module docstring.
    """
    try:
        data = udp_payload if type(udp_payload) is bytes else bytes(udp_payload)
    except (TypeError, ValueError) as e:
        return SdpMessage(-1, SDP_NO_V2GTP_HEADER,
                          error=f"not a byte string: {type(udp_payload).__name__} ({e})")
    hdr = parse_header(data)
    if hdr is None:
        return SdpMessage(-1, SDP_NO_V2GTP_HEADER,
                          error=f"no V2GTP header: {len(data)} of {HEADER_LEN} bytes")
    pt = hdr.payload_type
    name, is_request = SDP_NAMES.get(pt, (f"V2GTP 0x{pt:04X}", None))
    msg = SdpMessage(pt, name, is_request, header_problems=hdr.problems)
    errors = []
    if hdr.version != 0x01 or hdr.inverse_version != 0xFE:
        errors.append("invalid V2GTP header: " + "; ".join(
            p for p in hdr.problems if "version" in p))
    present = len(data) - HEADER_LEN
    if present != hdr.length:
        errors.append(f"payload length mismatch: V2GTP header declares {hdr.length} bytes, "
                      f"{present} present")
    body = data[HEADER_LEN:HEADER_LEN + hdr.length]
    if pt not in SDP_NAMES:
        errors.append(f"payload type 0x{pt:04X} ({payload_type_name(pt)}) is not an SDP message")
    else:
        try:
            err = _decode_body(pt, body, msg.fields)
        except Exception as e:  # a guard: the body decoders check lengths before reading
            err = f"{name}: decoder error {type(e).__name__}: {e}"
        if err:
            errors.append(err)
    msg.error = "; ".join(errors) or None
    return msg


def _decode_body(pt: int, body: bytes, f: dict) -> str | None:
    """Fill ``f`` from the SDP body of payload type ``pt``; return an error string or None."""
    n = len(body)
    if pt in (SDP_EMSP_REQUEST, SDP_EMSP_RESPONSE):
        if pt == SDP_EMSP_RESPONSE:
            if n < 18:
                if n >= 16:
                    f["SECCIPAddress"] = ipaddress.IPv6Address(bytes(body[0:16])).compressed
                return f"SDP EMSP response truncated: {n} of at least 18 bytes"
            _addr_port(body, f)
            _emsp_ids(body[18:], f)
        else:
            _emsp_ids(body, f)
        return None
    need = BODY_LEN[pt]
    request = pt in (SDP_REQUEST, SDP_REQUEST_WIRELESS)
    name = SDP_NAMES[pt][0]
    sec = 0 if request else 18        # offset of Security
    if n >= 16 and not request:
        f["SECCIPAddress"] = ipaddress.IPv6Address(bytes(body[0:16])).compressed
    if n >= 18 and not request:
        f["SECCPort"] = (body[16] << 8) | body[17]
    if n > sec:
        f["Security"] = _code(SECURITY, body[sec])
    if n > sec + 1:
        f["TransportProtocol"] = _code(TRANSPORT_PROTOCOL, body[sec + 1])
    if pt == SDP_REQUEST_WIRELESS:
        if n >= 4:
            flags = (body[2] << 8) | body[3]
            f["P2PS_PPD"] = flags
            f["P2PS_PPD_flags"] = [t for bit, t in P2PS_PPD_FLAGS if flags & bit]
        if n >= 5:
            f["CouplingType"] = body[4]
            f["CouplingTypeName"] = _code(COUPLING_TYPES, body[4])
        if n >= 25:
            f["EVID"] = _ascii(body[5:25])
        if n >= 61:
            f["EVSEID"] = _ascii(body[25:61])
    elif pt == SDP_RESPONSE_WIRELESS:
        if n >= 21:
            f["DiagStatus"] = body[20]
            f["DiagStatusName"] = _code(DIAG_STATUS, body[20])
        if n >= 22:
            f["CouplingType"] = body[21]
            f["CouplingTypeName"] = _code(COUPLING_TYPES, body[21])
        if n >= 58:
            f["EVSEID"] = _ascii(body[22:58])
    if n < need:
        return f"{name} truncated: {n} of {need} bytes"
    if n > need:
        f["extra_hex"] = bytes(body[need:]).hex()
    return None
