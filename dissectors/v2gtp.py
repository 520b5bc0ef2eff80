"""V2G Transfer Protocol (V2GTP) framing: the 8-byte header and the split of a byte stream.

Wire format (ISO 15118-2 §7.8.3, DIN SPEC 70121 §8.7.3, ISO 15118-20 §7.8; all big-endian,
[V2G2-085]):

    offset  size  field
    0       1     protocol version            0x01
    1       1     inverse protocol version    0xFE  (= version XOR 0xFF)
    2       2     payload type                see PAYLOAD_TYPES
    4       4     payload length              bytes after the header

A TCP stream carries V2GTP messages back to back: one segment may hold several, one message
may span many segments (PROTOCOL_FACTS §1.1). :class:`V2gtpSplitter` cuts a reassembled
stream, fed in order as ``(bytes, frame)`` chunks, into messages, each attributed to the
frame that supplied its last byte, and resynchronises on the next plausible header after
garbage.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .stream import FrameTaggedBuffer

HEADER_LEN = 8
VERSION = 0x01
INVERSE_VERSION = 0xFE

#: Payload types (ISO 15118-20 Table 12, ISO 15118-2 Table 10; PROTOCOL_FACTS §1.2).
PAYLOAD_TYPES: dict[int, str] = {
    0x8001: "EXI (SupportedAppProtocol, DIN 70121, ISO 15118-2)",
    0x8002: "ISO 15118-20 CommonMessages main stream",
    0x8003: "ISO 15118-20 AC main stream",
    0x8004: "ISO 15118-20 DC main stream",
    0x8005: "ISO 15118-20 ACDP main stream",
    0x8006: "ISO 15118-20 WPT main stream",
    0x8101: "ISO 15118-20 side stream: schedule renegotiation",
    0x8102: "ISO 15118-20 side stream: metering confirmation",
    0x8103: "ISO 15118-20 side stream: ACDP system status",
    0x8104: "ISO 15118-20 side stream: parking status",
    0x9000: "SDP request",
    0x9001: "SDP response",
    0x9002: "SDP request (wireless)",
    0x9003: "SDP response (wireless)",
    0x9004: "SDP EMSP request",
    0x9005: "SDP EMSP response",
}

#: Payload types that carry EXI, and the ISO 15118-20 schema each one implies
#: (PROTOCOL_FACTS §1.2; 0x8101 may carry AC, DC or WPT messages: the root element decides).
EXI_PAYLOAD_TYPES = frozenset({0x8001, 0x8002, 0x8003, 0x8004, 0x8005, 0x8006,
                               0x8101, 0x8102, 0x8103, 0x8104})
SDP_PAYLOAD_TYPES = frozenset({0x9000, 0x9001, 0x9002, 0x9003, 0x9004, 0x9005})

#: Largest payload a header may announce before we call the header implausible when
#: resynchronising. Not a protocol limit (the field is 32 bits); a header that announces
#: more is still honoured when it sits exactly where the previous message ended.
RESYNC_MAX_LENGTH = 1 << 20


def payload_type_name(payload_type: int) -> str:
    """Name of a V2GTP payload type (PROTOCOL_FACTS §1.2): known, reserved or manufacturer."""
    if payload_type in PAYLOAD_TYPES:
        return PAYLOAD_TYPES[payload_type]
    if payload_type >= 0xA000:
        return f"manufacturer specific (0x{payload_type:04X})"
    return f"reserved (0x{payload_type:04X})"


@dataclass(frozen=True, slots=True)
class V2gtpHeader:
    """A parsed V2GTP header.

    Attributes: ``version`` and ``inverse_version`` (ints, 0x01 / 0xFE when valid),
    ``payload_type`` (int), ``length`` (payload bytes, header excluded).
    """

    version: int
    inverse_version: int
    payload_type: int
    length: int

    @property
    def problems(self) -> list[str]:
        """What is wrong with the header, in words ([V2G2-xxx] header checks, §7.8.3.2)."""
        out = []
        if self.version != VERSION:
            out.append(f"protocol version 0x{self.version:02X} (expected 0x01)")
        if self.inverse_version != (self.version ^ 0xFF):
            out.append(f"inverse protocol version 0x{self.inverse_version:02X} "
                       f"does not match version 0x{self.version:02X}")
        if self.payload_type not in PAYLOAD_TYPES and self.payload_type < 0xA000:
            out.append(f"payload type 0x{self.payload_type:04X} is reserved")
        return out


def parse_header(data: bytes, offset: int = 0) -> V2gtpHeader | None:
    """Parse the 8-byte header at ``offset``; None when fewer than 8 bytes remain."""
    if len(data) - offset < HEADER_LEN:
        return None
    ver, inv, ptype, length = struct.unpack_from("!BBHI", data, offset)
    return V2gtpHeader(ver, inv, ptype, length)


def plausible_header(data: bytes | bytearray, offset: int) -> bool:
    """True when a valid-looking header (01 FE, known type, sane length) starts at offset."""
    if len(data) - offset < HEADER_LEN or data[offset] != VERSION or data[offset + 1] != INVERSE_VERSION:
        return False
    ptype, length = struct.unpack_from("!HI", data, offset + 2)
    return ptype in PAYLOAD_TYPES and length <= RESYNC_MAX_LENGTH


@dataclass(slots=True)
class V2gtpMessage:
    """One V2GTP message cut from a stream.

    ``frame``: the frame that supplied its last byte; ``first_frame``: the frame of its first
    byte; ``offset``: stream offset of the header; ``header``; ``payload`` (bytes);
    ``problems``: header problems (empty when the header is valid).
    """

    frame: int
    first_frame: int
    offset: int
    header: V2gtpHeader
    payload: bytes
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class V2gtpGarbage:
    """Bytes of a stream that are not a V2GTP message (skipped while resynchronising).

    ``frame``/``first_frame``, ``offset`` (stream offset), ``length`` (bytes), ``reason``.
    """

    frame: int
    first_frame: int
    offset: int
    length: int
    reason: str


class V2gtpSplitter(FrameTaggedBuffer):
    """Cuts one direction of a reassembled TCP (or decrypted TLS) stream into V2GTP messages.

    Feed contiguous stream bytes in order with :meth:`feed`; it returns the messages (and
    skipped garbage) completed by that chunk. Memory is bounded by one pending message: a
    header announcing more than ``max_length`` bytes is reported as garbage rather than
    buffered. :meth:`gap` tells the splitter that bytes are missing from the stream (lost
    in the capture); the pending partial message is reported and the splitter resyncs.
    :meth:`close` reports a message left incomplete at the end of the stream.
    """

    __slots__ = ("max_length", "_resyncing")

    #: Take the fast path of :meth:`feed` (a class attribute: tests compare it with the loop)
    fast = True

    def __init__(self, max_length: int = 16 << 20):
        super().__init__()              # buf, base (stream offset of buf[0]), chunks
        self.max_length = max_length
        self._resyncing = False

    def feed(self, data: bytes, frame: int) -> list[V2gtpMessage | V2gtpGarbage]:
        """Append ``data`` (arrived with ``frame``); return what it completed, in order."""
        if not data:
            return []
        if self.fast and not self.buf and not self._resyncing:
            # fast path (most segments of a V2G connection): nothing buffered and ``data`` is
            # exactly one message with a valid header — what the loop below would cut, and
            # the buffer left as it would leave it
            n = len(data)
            if n >= HEADER_LEN and data[0] == VERSION and data[1] == INVERSE_VERSION:
                hdr = parse_header(data, 0)
                if hdr.length == n - HEADER_LEN and hdr.length <= self.max_length:
                    base = self.base
                    self.base = base + n
                    self.chunks = [(self.base, frame)]
                    return [V2gtpMessage(frame, frame, base, hdr, bytes(data[HEADER_LEN:]),
                                         hdr.problems)]
        self.append(data, frame)
        out: list[V2gtpMessage | V2gtpGarbage] = []
        buf = self.buf
        base = self.base
        pos = 0
        n = len(buf)
        while True:
            if self._resyncing:
                j = self._find_header(buf, pos)
                stop = j if j is not None else max(pos, n - (HEADER_LEN - 1))
                if stop > pos:
                    out.append(V2gtpGarbage(frame, self.frame_at(base + pos), base + pos, stop - pos,
                                            "not a V2GTP header (resynchronising)"))
                    pos = stop
                if j is None:
                    break
                self._resyncing = False
            if n - pos < HEADER_LEN:
                break
            hdr = parse_header(buf, pos)
            if hdr.version != VERSION or hdr.inverse_version != INVERSE_VERSION:
                out.append(V2gtpGarbage(frame, self.frame_at(base + pos), base + pos, 1,
                                        "bad V2GTP header: " + "; ".join(hdr.problems)))
                pos += 1
                self._resyncing = True
                continue
            if hdr.length > self.max_length:
                out.append(V2gtpGarbage(frame, self.frame_at(base + pos), base + pos, HEADER_LEN,
                                        f"V2GTP header announces {hdr.length} bytes "
                                        f"(more than {self.max_length}); skipped"))
                pos += HEADER_LEN
                self._resyncing = True
                continue
            end = pos + HEADER_LEN + hdr.length
            if end > n:
                break
            out.append(V2gtpMessage(frame, self.frame_at(base + pos), base + pos, hdr,
                                    bytes(buf[pos + HEADER_LEN:end]), hdr.problems))
            pos = end
        self.consume(pos)
        return _merge_garbage(out)

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished message (or of garbage being resynchronised) held."""
        return len(self.buf)

    def gap(self, missing: int, frame: int) -> list[V2gtpGarbage]:
        """Bytes [current end, current end + missing) were never captured; drop the partial."""
        out = []
        if self.buf:
            out.append(V2gtpGarbage(frame, self.frame_at(self.base), self.base, len(self.buf),
                                    f"V2GTP message incomplete: {missing} bytes of the stream "
                                    "missing from the capture"))
        self.base += len(self.buf) + missing
        self.buf.clear()
        self.chunks = []
        self._resyncing = True
        return out

    def close(self, frame: int) -> list[V2gtpGarbage]:
        """End of stream: report a partial message or header still pending."""
        if not self.buf:
            return []
        hdr = parse_header(self.buf)
        if self._resyncing:
            why = "not a V2GTP header (resynchronising)"
        elif hdr is None:
            why = "stream ends inside a V2GTP header"
        else:
            why = (f"stream ends {hdr.length + HEADER_LEN - len(self.buf)} bytes before the end "
                   f"of a V2GTP message (payload type 0x{hdr.payload_type:04X}, "
                   f"{hdr.length} bytes announced)")
        g = V2gtpGarbage(frame, self.frame_at(self.base), self.base, len(self.buf), why)
        self.base += len(self.buf)
        self.buf.clear()
        self.chunks = []
        return [g]

    @staticmethod
    def _find_header(buf: bytearray, start: int) -> int | None:
        i = buf.find(b"\x01\xfe", start)
        while i != -1:
            if len(buf) - i < HEADER_LEN:
                return None
            if plausible_header(buf, i):
                return i
            i = buf.find(b"\x01\xfe", i + 1)
        return None


def _merge_garbage(items: list[V2gtpMessage | V2gtpGarbage]) -> list[V2gtpMessage | V2gtpGarbage]:
    out: list[V2gtpMessage | V2gtpGarbage] = []
    for it in items:
        prev = out[-1] if out else None
        if (isinstance(it, V2gtpGarbage) and isinstance(prev, V2gtpGarbage)
                and prev.offset + prev.length == it.offset):
            prev.length += it.length
            if "resynchronising" not in prev.reason:
                prev.reason += " (resynchronising)"
            continue
        out.append(it)
    return out
