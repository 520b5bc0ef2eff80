"""The typed events the dissectors produce: one per SLAC / SDP / V2GTP message, per notable
TCP or TLS happening, and per capture problem — and the catalogue of their kinds.

Direction follows the protocol roles (DESIGN.md "Events"): the EV sends CM_SLAC_PARM.REQ and
the SDP request and opens the TCP connection, so client→server is ``EV->EVSE``.

The catalogue (in the spirit of Zeek's ``events.bif``): every name an event may carry is
registered here, by layer, with the keys of its ``message`` (and ``info``), their units and a
line of documentation. Free-prose kinds are named constants (:data:`TCP_RETRANSMISSION` is
``"TCP retransmission"``): dissectors, the analyzer and rules use the constants, never the
literal. Decoded protocol messages (every V2G message of the three schemas, every HomePlug
MME, the SDP messages, the TLS handshake messages and alerts) are *families*
(:class:`EventFamily`): the family names the rule that decides membership instead of listing
every member. :func:`lookup` finds the kind or family of a (layer, name);
tests/dissectors/test_event_catalogue.py checks that every event the dissectors emit over the
corpus and the samples is registered, and docs/events.md is generated from the catalogue
(``python -m ccs_analyzer.dissectors.events > docs/events.md``).

Debug mode: with the environment variable ``CCS_ANALYZER_CHECK_EVENTS=1`` set when this
module is imported, constructing an :class:`Event` whose (layer, name) is not registered
raises :class:`UnregisteredEvent`. It is off by default: the dissector event loop is hot.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

EV_TO_EVSE = "EV->EVSE"
EVSE_TO_EV = "EVSE->EV"

LAYERS = ("capture", "slac", "sdp", "tcp", "tls", "v2gtp")

#: Whether :class:`Event` checks its (layer, name) against the catalogue when constructed.
CHECK_EVENTS = os.environ.get("CCS_ANALYZER_CHECK_EVENTS", "") not in ("", "0")


# ------------------------------------------------------------------------------------------
# The catalogue

Keys = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class EventKind:
    """One registered event name.

    Attributes: ``name`` (the event's ``name``, the constant's value), ``layer`` (one of
    :data:`LAYERS`), ``doc`` (one line), ``message`` and ``info``: (key, meaning with unit)
    pairs of the event's ``message`` / ``info`` dicts (keys that may be absent say so),
    ``error``: what the event's ``error`` says, when it carries one.
    """

    name: str
    layer: str
    doc: str
    message: Keys = ()
    info: Keys = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EventFamily:
    """A family of event names decided by a rule rather than listed: decoded protocol
    messages. ``name``: the family's label; ``layer``; ``rule``: the membership rule in
    words; ``member``: the rule as a predicate on an event name; ``doc``, ``message``,
    ``info``, ``error`` as in :class:`EventKind`. ``name in FAMILY`` tests membership."""

    name: str
    layer: str
    rule: str
    member: Callable[[str], bool]
    doc: str
    message: Keys = ()
    info: Keys = ()
    error: str | None = None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.member(name)


#: Every registered name → its kind, in registration order.
EVENT_KINDS: dict[str, EventKind] = {}
#: Every family, in registration order.
EVENT_FAMILIES: list[EventFamily] = []


def _kind(name: str, layer: str, doc: str, message: Keys = (), info: Keys = (),
          error: str | None = None) -> str:
    """Register one event name; return it (the constant's value). Raises ValueError for a
    name registered twice or an unknown layer."""
    if name in EVENT_KINDS or layer not in LAYERS:
        raise ValueError(f"event kind {name!r} ({layer}): registered twice or unknown layer")
    EVENT_KINDS[name] = EventKind(name, layer, doc, message, info, error)
    return name


def _family(name: str, layer: str, rule: str, member: Callable[[str], bool], doc: str,
            message: Keys = (), info: Keys = (), error: str | None = None) -> EventFamily:
    """Register one family of event names; return it."""
    if layer not in LAYERS:
        raise ValueError(f"event family {name!r}: unknown layer {layer!r}")
    fam = EventFamily(name, layer, rule, member, doc, message, info, error)
    EVENT_FAMILIES.append(fam)
    return fam


def lookup(layer: str, name: str) -> EventKind | EventFamily | None:
    """The registered kind of an event name on a layer: the :class:`EventKind` of that name,
    else the first :class:`EventFamily` of the layer the name belongs to, else None."""
    k = EVENT_KINDS.get(name)
    if k is not None and k.layer == layer:
        return k
    for fam in EVENT_FAMILIES:
        if fam.layer == layer and fam.member(name):
            return fam
    return None


class UnregisteredEvent(AssertionError):
    """An :class:`Event` was built with a (layer, name) the catalogue does not know (debug
    mode, :data:`CHECK_EVENTS`)."""


# -- capture ----------------------------------------------------------------------------------

DISSECTOR_ERROR = _kind(
    "dissector error", "capture",
    "A dissector failed on a frame (a bug); the frame is counted as skipped and the capture "
    "goes on.", error="exception type and text")
CAPTURE_PROBLEM = _kind(
    "capture problem", "capture",
    "The capture file itself is damaged (truncated block, bad length); the event's frame is "
    "the last one read before the damage.",
    info=(("offset", "file offset of the damaged part, bytes"),
          ("length", "bytes of the damaged part")),
    error="what is wrong with the file")

# -- slac (HomePlug GreenPHY management messages) ---------------------------------------------

_MME_INFO: Keys = (("mmv", "management message version (0 AV 1.0, 1 AV 1.1, 2 AV 2.0)"),
                   ("slac", "True for an ISO 15118-3 SLAC message"),
                   ("oui", "vendor OUI, 6 hex digits (vendor MMEs only)"),
                   ("vlan", "802.1Q VLAN id, when tagged"))

MME_HEADER_TRUNCATED = _kind(
    "MME header truncated", "slac",
    "A HomePlug AV frame too short for the MMV and MMTYPE (HomePlug AV 2.1 §11.1).",
    info=_MME_INFO, error="bytes present of those needed")
NOT_AN_MME = _kind(
    "not an MME", "slac", "The HomePlug AV payload could not be read as bytes at all.",
    info=_MME_INFO, error="why")
#: What a modem's control-pilot reading holds (IEC 61851-1 Annex A).
_CP_READING: Keys = (("DutyCycle_pct", "PWM duty cycle, %"), ("Frequency_Hz", "PWM frequency, Hz"),
                     ("Voltage_mV", "pilot voltage, mV"), ("Voltage_V", "pilot voltage, V"))

CP_STATE_ST = _kind(
    "VS_CP_STATE.IND(ST/IoTecha)", "slac",
    "Control-pilot reading of an ST / IoTecha modem (MMTYPE 0xA22E, OUI 00:80:E1), IEC "
    "61851-1 Annex A.",
    message=(("State", "CP state (A … F, or a transition such as B-C; None for an unknown "
                       "code)"),
             ("StateCode", "the modem's state code (dissectors/homeplug.py ST_CP_STATE_CODES)"),
             ("MMEVersion", "vendor MME version"), ("MessageVersion", "vendor message version"),
             *_CP_READING),
    info=_MME_INFO)
CP_STATE_SPIDCOM = _kind(
    "VS_CP_STATE.IND(SPiDCOM)", "slac",
    "Control-pilot reading of a SPiDCOM modem (MMTYPE 0xA10E, OUI 00:13:D7), IEC 61851-1 "
    "Annex A.",
    message=(("ChangedMask", "bit 0 frequency, bit 1 duty cycle, bit 2 voltage changed"),
             ("DutyCycle_permille", "PWM duty cycle, ‰"), *_CP_READING),
    info=_MME_INFO)
SCS_DIAG_DSPACE = _kind(
    "MS_SCS_DIAG.IND(dSPACE)", "slac",
    "Diagnostics of a dSPACE SCS test system (MMTYPE 0x8002): its CP state, CP voltage, PP "
    "resistor, contactor, voltages (V) and currents (A) as JSON.",
    message=(("Text", "the diagnostic text ``Source|Tool|v<Version>|Info|JSON``"),
             ("Source", "its first part (dSPACE SCS Diag)"), ("Tool", "the tool (dsV2Gshark)"),
             ("Version", "the format version (int)"), ("Info", "its fourth part"),
             ("JSON", "the decoded JSON object (CP state, CP voltage V, PP resistor Ω, "
                      "contactor, voltages V, currents A), absent when it does not parse")),
    info=_MME_INFO)


def _is_mme_name(name: str) -> bool:
    from .homeplug import is_mme_name
    return is_mme_name(name)


SLAC_MME = _family(
    "HomePlug MME", "slac",
    "an MME name of dissectors/homeplug.py's tables (mmtype_name: HomePlug AV 2.1 / GreenPHY / "
    "ISO 15118-3 names with .REQ/.CNF/.IND/.RSP, the Qualcomm VS_* family, the vendor MMEs, "
    "UNKNOWN_0xNNNN, VS_0xNNNN(vendor) / MS_0xNNNN(vendor))",
    _is_mme_name,
    "One HomePlug AV management message; protocol ``SLAC`` for the ISO 15118-3 SLAC messages "
    "(CM_SLAC_PARM.REQ …), ``HomePlug`` for the others.",
    message=(("<field>", "the message table's fields (ISO 15118-3 Annex A.9, HomePlug AV 2.1): "
                         "ints, MACs aa:bb:…, IDs and keys as hex, AAG in dB, Time_Out_s in s"),),
    info=_MME_INFO, error="truncated body, unknown MMV, unreassembled fragment")

# -- sdp (SECC Discovery Protocol, ISO 15118-2 §7.10.1) ----------------------------------------

_SDP_INFO: Keys = (("src_mac", "link source MAC"), ("dst_mac", "link destination MAC"),
                   ("header_problems", "V2GTP header problems, when any"))

SDP_NO_V2GTP_HEADER = _kind(
    "no V2GTP header", "sdp", "A datagram on the SDP port (15118) too short for a V2GTP header.",
    info=_SDP_INFO, error="bytes present of the 8 needed")


def _is_sdp_name(name: str) -> bool:
    from .sdp import SDP_NAMES
    return any(n == name for n, _ in SDP_NAMES.values())


def _is_sdp_other(name: str) -> bool:
    from .sdp import SDP_NAMES
    m = re.fullmatch(r"V2GTP 0x([0-9A-F]{4})", name)
    return m is not None and int(m.group(1), 16) not in SDP_NAMES


SDP_MESSAGE = _family(
    "SDP message", "sdp",
    "an SDP message name of dissectors/sdp.py's SDP_NAMES (SDP request / response, their "
    "wireless and EMSP forms)",
    _is_sdp_name,
    "An SDP request (EV) or response (SECC): ISO 15118-2 §7.10.1, ISO 15118-20 §7.10.1.",
    message=(("Security", "TLS or NoTLS"), ("TransportProtocol", "TCP or UDP"),
             ("SECCIPAddress", "the SECC's IPv6 address (response)"),
             ("SECCPort", "the SECC's TCP port (response)")),
    info=_SDP_INFO, error="header problems, length mismatch, truncated body")
SDP_OTHER_PAYLOAD = _family(
    "V2GTP payload type on the SDP port", "sdp",
    "``V2GTP 0xNNNN`` for a payload type that is not an SDP message",
    _is_sdp_other,
    "A datagram on the SDP port whose V2GTP payload type is not SDP.",
    info=_SDP_INFO, error="the payload type is not an SDP message")

# -- tcp (RFC 9293; dissectors/tcp.py) ---------------------------------------------------------

_TCP_INFO: Keys = (("v2g", "whether the connection carries V2G traffic (None: not known yet)"),)

TCP_SYN = _kind("SYN", "tcp", "The EVCC opens the TCP connection (first SYN).", info=_TCP_INFO)
TCP_SYN_ACK = _kind("SYN-ACK", "tcp", "The SECC accepts the connection (first SYN-ACK).",
                    info=_TCP_INFO)
TCP_FIN = _kind("FIN", "tcp", "One side closes its half of the connection (first FIN).",
                info=_TCP_INFO)
TCP_RST = _kind("RST", "tcp", "One side resets the connection.", info=_TCP_INFO)
TCP_RETRANSMISSION = _kind(
    "TCP retransmission", "tcp",
    "A segment sent again: data already delivered, or a repeated SYN / SYN-ACK.",
    message=(("bytes", "payload length, bytes (data)"),
             ("offset", "stream offset of the payload, bytes (data)"),
             ("what", "SYN or SYN-ACK (a repeated handshake segment)")),
    info=_TCP_INFO)
TCP_OUT_OF_ORDER = _kind(
    "TCP out-of-order", "tcp", "A segment arrived after a hole in the stream; it is held back.",
    message=(("offset", "stream offset of the segment, bytes"),
             ("expected", "stream offset expected next, bytes")),
    info=_TCP_INFO)
TCP_BYTES_MISSING = _kind(
    "TCP bytes missing from capture", "tcp",
    "Stream bytes the capture never saw (acknowledged by the peer, or given up at FIN / RST / "
    "end of capture / a full out-of-order buffer).",
    message=(("offset", "stream offset of the hole, bytes"), ("bytes", "bytes missing"),
             ("why", "ACKed unseen segment, FIN / RST with data missing, end of capture, "
                     "out-of-order buffer full")),
    info=_TCP_INFO)
TCP_STARTED_BEFORE_CAPTURE = _kind(
    "TCP connection started before the capture", "tcp",
    "The first segment of a connection is not its SYN: the client and server roles are "
    "guessed.",
    message=(("roles", "guessed"),), info=_TCP_INFO)

# -- tls (RFC 5246, RFC 8446; dissectors/tls.py) -----------------------------------------------

_TLS_INFO: Keys = (("kind", "record kind: handshake, alert, change_cipher_spec, encrypted, "
                            "error"),)
_RECORD: Keys = (("record", "record index in its direction (0-based)"),
                 ("offset", "stream offset of the record, bytes"))
_PLAIN: Keys = _RECORD + (
    ("encrypted", "True when the record was protected (and decrypted)"),
    ("seq", "record sequence number (decrypted records)"),
    ("epoch", "the keys' epoch in words (decrypted records)"),
    ("held_until_frame", "frame whose key log disclosure let it be decrypted (late records)"),
    ("key_change_inferred", "True when the keys changed without the message that changes them"))

TLS_KEY_LOG_DISCLOSED = _kind(
    "TLS key log disclosed", "tls",
    "A UDP datagram disclosing TLS secrets in NSS key log format (test systems do this).",
    message=(("lines", "key log lines in the datagram"), ("labels", "their labels, sorted")))
TLS_CHANGE_CIPHER_SPEC = _kind(
    "ChangeCipherSpec", "tls",
    "A ChangeCipherSpec record (RFC 5246 §7.1; in TLS 1.3 for middlebox compatibility only).",
    message=_PLAIN + (("compatibility", "True in TLS 1.3 (RFC 8446 Appendix D.4)"),),
    info=_TLS_INFO, error="a body other than 01, or a handshake message cut by it")
TLS_ENCRYPTED_RECORD = _kind(
    "Encrypted record", "tls", "A protected record that could not be decrypted (no secrets).",
    message=_RECORD + (("content_type", "outer content type"),
                       ("content_type_name", "its name"), ("length", "bytes")),
    info=_TLS_INFO, error="why it stays encrypted (which secret is missing)")
TLS_ALERT_ENCRYPTED = _kind(
    "Alert (encrypted)", "tls", "A TLS 1.2 alert record that could not be decrypted.",
    message=_RECORD + (("content_type", "21"), ("content_type_name", "alert"),
                       ("length", "bytes")),
    info=_TLS_INFO, error="why it stays encrypted")
TLS_RECORD_AUTHENTICATION_FAILED = _kind(
    "Record authentication failed", "tls",
    "A record failed to decrypt with the secrets at hand (wrong keys or a damaged record).",
    message=_RECORD + (("content_type", "outer content type"), ("content_type_name", "its name"),
                       ("length", "bytes"), ("seq", "sequence number tried"),
                       ("epoch", "keys tried")),
    info=_TLS_INFO, error="which record, which keys, and the failure")
TLS_BYTES_MISSING = _kind(
    "Bytes missing", "tls", "Bytes of a TLS stream the capture never saw.",
    message=(("missing_bytes", "bytes missing"), ("offset", "stream offset, bytes"),
             ("records_lost_at_least", "records lost with them, at least")),
    info=_TLS_INFO, error="where and why")
TLS_NOT_TLS = _kind(
    "Not TLS", "tls", "A connection taken for TLS whose first bytes are not a TLS record.",
    message=(("first_bytes", "the first bytes, hex"),), info=_TLS_INFO, error="why")
TLS_NOT_A_RECORD = _kind(
    "Not a TLS record", "tls",
    "Bytes inside a TLS stream that are not a record header; the dissector resynchronises.",
    message=(("header", "the invalid header, hex"), ("offset", "stream offset, bytes"),
             ("skipped_bytes", "bytes skipped before the next record")),
    info=_TLS_INFO, error="what was skipped")
TLS_PARTIAL_RECORD = _kind(
    "Partial record", "tls", "The stream ends inside a record.",
    message=(("offset", "stream offset of the record, bytes"), ("bytes", "bytes present")),
    info=_TLS_INFO, error="how much of the record is present")
TLS_PARTIAL_HANDSHAKE_MESSAGE = _kind(
    "Partial handshake message", "tls", "The connection ends inside a handshake message.",
    message=(("handshake_type", "the message's HandshakeType"), ("bytes", "bytes present")),
    info=_TLS_INFO, error="which message, how much is present")
TLS_HANDSHAKE_SPLIT_ACROSS_KEY_CHANGE = _kind(
    "Handshake message split across a key change", "tls",
    "A handshake message continues past a key change (RFC 8446 §5.1 forbids it).",
    message=_RECORD, info=_TLS_INFO, error="what was dropped")
TLS_HANDSHAKE_TOO_LONG = _kind(
    "Handshake message too long", "tls",
    "A handshake message announces more bytes than the dissector accepts; its bytes are "
    "dropped.", message=_RECORD, info=_TLS_INFO, error="the announced length")
TLS_MALFORMED_ALERT = _kind(
    "Malformed alert", "tls", "An alert record whose length is not a multiple of 2.",
    message=_RECORD + (("alert", "the record body, hex"),), info=_TLS_INFO, error="its length")
TLS_UNKNOWN_CONTENT_TYPE = _kind(
    "Unknown content type", "tls", "A decrypted record with an inner content type TLS lacks.",
    message=_RECORD + (("content_type", "the inner content type"),), info=_TLS_INFO,
    error="the content type")
TLS_HEARTBEAT = _kind(
    "Heartbeat", "tls", "A heartbeat record (RFC 6520), not expected in ISO 15118 traffic.",
    message=_PLAIN + (("length", "bytes"),), info=_TLS_INFO, error="not expected")
TLS_INTERNAL_ERROR = _kind(
    "Internal error", "tls", "The TLS dissector failed (a bug); the record or chunk is skipped.",
    message=_RECORD, info=_TLS_INFO,
    error="the exception (message empty when the failure was outside a record)")
TLS_BAD_DIRECTION = _kind(
    "Bad direction", "tls", "The TLS dissector was fed a direction other than 0 or 1 (a bug).",
    info=_TLS_INFO, error="the direction given")


def _is_tls_handshake_name(name: str) -> bool:
    from .tls_handshake import HANDSHAKE_TYPES
    return (name in HANDSHAKE_TYPES.values() or name == "HelloRetryRequest"
            or re.fullmatch(r"Handshake type \d+", name) is not None)


def _is_tls_alert_name(name: str) -> bool:
    from .tls_records import ALERT_DESCRIPTIONS, ALERT_LEVELS
    m = re.fullmatch(r"Alert (\S+(?: \d+)?) (\S+(?: \d+)?)", name)
    if m is None:
        return False
    level, desc = m.groups()
    return ((level in ALERT_LEVELS.values() or re.fullmatch(r"level \d+", level) is not None)
            and (desc in ALERT_DESCRIPTIONS.values()
                 or re.fullmatch(r"description \d+", desc) is not None))


TLS_HANDSHAKE = _family(
    "TLS handshake message", "tls",
    "a HandshakeType name of dissectors/tls_handshake.py's HANDSHAKE_TYPES (ClientHello …), "
    "HelloRetryRequest, or ``Handshake type N`` for an unknown type",
    _is_tls_handshake_name,
    "One handshake message (RFC 5246 §7.4, RFC 8446 §4), plain or decrypted.",
    message=_PLAIN + (("handshake_type", "HandshakeType"), ("length", "body bytes"),
                      ("<field>", "the message's decoded fields (cipher suites, extensions, "
                                  "certificates …), see dissectors/tls_handshake.py")),
    info=_TLS_INFO, error="a malformed or misplaced message")
TLS_ALERT = _family(
    "TLS alert", "tls",
    "``Alert LEVEL DESCRIPTION`` with the names of dissectors/tls_records.py's ALERT_LEVELS and "
    "ALERT_DESCRIPTIONS (``level N`` / ``description N`` for unknown codes)",
    _is_tls_alert_name,
    "One alert (RFC 8446 §6, RFC 5246 §7.2), plain or decrypted.",
    message=_PLAIN + (("level", "AlertLevel"), ("level_name", "its name"),
                      ("description", "AlertDescription"), ("description_name", "its name")),
    info=_TLS_INFO)

# -- v2gtp (V2GTP, ISO 15118-2 §7.8.3; EXI messages) -------------------------------------------

_V2GTP_INFO: Keys = (
    ("first_time", "capture time (epoch s) of first_frame, when a later frame completed it"),
    ("header_problems", "V2GTP header problems, when any"),
    ("tls", "True when the message came out of TLS"),
    ("roles", "set when the EV/EVSE roles were taken from this first message"),
    ("namespace_detected", "True when the schema was detected, not negotiated"),
    ("negotiated", "namespace and SchemaID the SupportedAppProtocolRes chose"),
    ("schema_detected", "why the schema was detected (no handshake seen), on the first message"),
    ("trailing_bytes", "octets after the EXI document: count, hex, note"),
    ("schema_fallback", "the schema expected first and its error, when another decoded it"),
    ("certificates", "the certificates the message carries, described"),
    ("signature", "the check of the message's XML signature"),
    ("schemas_tried", "the schemas tried (undecodable EXI)"))

V2GTP_FRAMING_ERROR = _kind(
    "V2GTP framing error", "v2gtp",
    "Stream bytes that are not a V2GTP message (bad header, or a message cut short); the "
    "splitter resynchronises.",
    info=(("bytes", "bytes skipped"),), error="why")
UNDECODABLE_EXI = _kind(
    "(undecodable EXI)", "v2gtp", "An EXI payload no schema decodes.",
    info=_V2GTP_INFO, error="the first schema's error (bit position, state)")
V2G_EMPTY_BODY = _kind(
    "(empty Body)", "v2gtp", "A DIN 70121 / ISO 15118-2 V2G_Message whose Body is empty.",
    message=(("V2G_Message", "the decoded tree (Header, empty Body)"),), info=_V2GTP_INFO)


@lru_cache(maxsize=1)
def _v2g_message_names() -> frozenset[str]:
    """Every element name ending in Req or Res of the EXI grammars (all schemas)."""
    import importlib

    from .exi.namespaces import GRAMMAR_MODULES
    names: set[str] = set()
    for module in GRAMMAR_MODULES.values():
        g = importlib.import_module(f"{__package__}.exi.grammars.{module}")
        for uri_names in g.LOCAL_NAMES:
            names.update(n for n in uri_names if n.endswith(("Req", "Res")))
    return frozenset(names)


def _is_v2g_message_name(name: str) -> bool:
    return name in _v2g_message_names()


@lru_cache(maxsize=1)
def _payload_names_without_exi() -> frozenset[str]:
    """Names of the known V2GTP payload types that carry no EXI (dissectors/v2gtp.py)."""
    from .v2gtp import EXI_PAYLOAD_TYPES, PAYLOAD_TYPES
    return frozenset(v for k, v in PAYLOAD_TYPES.items() if k not in EXI_PAYLOAD_TYPES)


def _is_v2gtp_other(name: str) -> bool:
    if not name.startswith("V2GTP "):
        return False
    rest = name[6:]
    return rest in _payload_names_without_exi() or re.fullmatch(
        r"(manufacturer specific|reserved) \(0x[0-9A-F]{4}\)", rest) is not None


V2G_MESSAGE = _family(
    "V2G message", "v2gtp",
    "a message element name (ending in Req or Res) of the schema the payload decoded with "
    "(dissectors/exi/grammars: SupportedAppProtocol, DIN 70121, ISO 15118-2, ISO 15118-20); "
    "the Body child for DIN 70121 / ISO 15118-2, the root element otherwise",
    _is_v2g_message_name,
    "One decoded V2G message (SupportedAppProtocolReq, PreChargeRes …).",
    message=(("<root>", "the decoded tree, mirroring the XSD (DESIGN.md contract)"),),
    info=_V2GTP_INFO, error="none when decoded")
V2GTP_OTHER_PAYLOAD = _family(
    "V2GTP payload without EXI", "v2gtp",
    "``V2GTP `` + dissectors/v2gtp.py's payload_type_name for a payload type that carries no "
    "EXI (an SDP type, ``manufacturer specific (0xNNNN)``, ``reserved (0xNNNN)``)",
    _is_v2gtp_other,
    "A V2GTP message on a V2G connection whose payload type carries no EXI.",
    info=_V2GTP_INFO, error="the payload type does not carry EXI")


def catalogue_markdown() -> str:
    """docs/events.md: every registered kind and family by layer (Markdown text)."""
    consts = {v: k for k, v in globals().items()
              if k.isupper() and isinstance(v, (str, EventFamily))
              and (v in EVENT_KINDS if isinstance(v, str) else True)}
    out = ["# Event catalogue", "",
           "<!-- Generated from dissectors/events.py: "
           "python -m ccs_analyzer.dissectors.events > docs/events.md -->", "",
           "Every event the dissectors produce has a layer and a name. Free-prose names are "
           "constants of `ccs_analyzer.dissectors.events`; decoded protocol messages are "
           "families whose membership is decided by a rule. `message` and `info` list the "
           "keys of the event's dicts (a key may be absent).", ""]

    def keys(title: str, ks: Keys) -> list[str]:
        return [f"- {title}: " + "; ".join(f"`{k}` {v}" for k, v in ks)] if ks else []

    for layer in LAYERS:
        out += [f"## {layer}", ""]
        for k in EVENT_KINDS.values():
            if k.layer != layer:
                continue
            out += [f"### `{k.name}`", "", f"Constant `{consts[k.name]}`. {k.doc}", ""]
            body = keys("message", k.message) + keys("info", k.info)
            if k.error:
                body.append(f"- error: {k.error}")
            out += body + ([""] if body else [])
        for f in EVENT_FAMILIES:
            if f.layer != layer:
                continue
            out += [f"### Family: {f.name}", "", f"Constant `{consts[f]}`. {f.doc}", "",
                    f"- member: {f.rule}"]
            out += keys("message", f.message) + keys("info", f.info)
            if f.error:
                out.append(f"- error: {f.error}")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


@dataclass(slots=True)
class Event:
    """One thing that happened in the capture.

    Attributes:
        frame: frame number (1-based, Wireshark's); for a V2GTP message the frame that
            supplied its last byte.
        time: capture time of that frame, epoch seconds.
        layer: one of :data:`LAYERS`.
        name: in the standard's words: ``CM_SLAC_PARM.REQ``, ``SDP request``,
            ``SessionSetupReq``, ``supportedAppProtocolRes``, ``SYN``, ``ClientHello`` …;
            registered in the catalogue above (:func:`lookup`), free-prose names by their
            constant (:data:`TCP_RETRANSMISSION` …).
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

    if CHECK_EVENTS:      # debug mode only: the check costs a call per event
        def __post_init__(self) -> None:
            if lookup(self.layer, self.name) is None:
                raise UnregisteredEvent(f"event {self.name!r} on layer {self.layer!r} is not "
                                        "in the catalogue (dissectors/events.py)")

    def __reduce__(self):
        """Pickle as the class and its field values in order (analyzer/spool.py writes the
        events of judged segments to disk and a helper process reads them back): about a
        third faster to write and read, and smaller, than the default state dict of a
        slotted class."""
        return (Event, (self.frame, self.time, self.layer, self.name, self.direction,
                        self.protocol, self.namespace, self.message, self.error, self.src,
                        self.dst, self.conn, self.first_frame, self.offset, self.payload_type,
                        self.payload, self.info, self.derived))

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


if __name__ == "__main__":
    print(catalogue_markdown(), end="")
