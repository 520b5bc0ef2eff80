"""TLS record layer: framing of one direction's byte stream into records (TLS 1.2, 1.3).

Record layer (RFC 5246 §6.2, RFC 8446 §5.1), 5-byte header, big-endian:

    offset  size  field
    0       1     content type     20 change_cipher_spec, 21 alert, 22 handshake,
                                   23 application_data, 24 heartbeat
    1       2     version          0x0301 … 0x0304 (TLS 1.3 records say 0x0303)
    3       2     length           fragment bytes, at most 2^14 + 2048 (RFC 5246 §6.2.3)
    5       …     fragment

:class:`RecordStream` cuts one direction of a reassembled TCP stream (fed as chunks tagged
with the frame that carried them) into :class:`Record` s, each attributed to the frames of its
first and last byte; it resynchronises on the next plausible header after garbage or a gap
in the capture. Records that cannot be decrypted yet are held back by the connection
(dissectors/tls.py) in record order, with :class:`Marker` s for state changes that must
happen in that order. The alert protocol (RFC 5246 §7.2, RFC 8446 §6) is described here too:
an alert record is two bytes per alert. Everything a TLS connection reports is a
:class:`TlsEvent`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .events import TLS_BYTES_MISSING, TLS_MALFORMED_ALERT, TLS_NOT_A_RECORD, TLS_PARTIAL_RECORD
from .stream import FrameTaggedBuffer
from .tls_crypto import is_grease

# -- registries (IANA TLS parameters) ---------------------------------------------------------

#: Record content types (RFC 5246 §6.2.1, RFC 8446 §5.1, RFC 6520 §2).
CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake",
                 23: "application_data", 24: "heartbeat"}

#: Protocol version codes (RFC 5246 Appendix E, RFC 8446 §4.2.1).
VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}

#: Alert descriptions (RFC 8446 §6, RFC 5246 §7.2).
ALERT_DESCRIPTIONS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
    22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure",
    41: "no_certificate", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
    51: "decrypt_error", 60: "export_restriction", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
    90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
    110: "unsupported_extension", 111: "certificate_unobtainable", 112: "unrecognized_name",
    113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
    115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
}
#: Alert levels (RFC 5246 §7.2).
ALERT_LEVELS = {1: "warning", 2: "fatal"}

#: Largest record fragment: 2^14 + 2048 (RFC 5246 §6.2.3; TLS 1.3 allows 2^14 + 256).
MAX_FRAGMENT = (1 << 14) + 2048
#: Smallest possible protected record (TLS 1.3: 1 byte inner type + 16 bytes tag, RFC 8446
#: §5.2), used to bound how many records may have been lost in a gap.
MIN_PROTECTED_RECORD = 5 + 17

#: How each direction is named in messages (0: the client, the EVCC; 1: the server, the SECC).
DIR_WORDS = ("client→server", "server→client")


def version_name(v: int) -> str:
    """Name of a protocol version code (``"TLS 1.2"``), GREASE (RFC 8701) or ``"0x7f1c"``."""
    if v in VERSIONS:
        return VERSIONS[v]
    if is_grease(v):
        return f"GREASE (0x{v:04X})"
    if v >> 8 == 0x7F:
        return f"TLS 1.3 draft {v & 0xFF}"
    return f"0x{v:04X}"


def looks_like_tls(data: bytes) -> bool | None:
    """Does a connection whose client sent ``data`` first speak TLS?

    True when the bytes start like a TLS handshake record (type 22, version 0x0300-0x0304,
    plausible length, RFC 5246 §6.2.1) holding a ClientHello (handshake type 1); False when
    they cannot; None when fewer than 6 bytes are known.
    """
    if len(data) >= 1 and data[0] != 22:
        return False
    if len(data) >= 2 and data[1] != 3:
        return False
    if len(data) >= 3 and data[2] > 4:
        return False
    if len(data) < 6:
        return None
    length = (data[3] << 8) | data[4]
    return 4 <= length <= MAX_FRAGMENT and data[5] == 1


def looks_like_records(data: bytes) -> bool | None:
    """Could ``data`` start a TLS record stream? (type 20-24, version 3.0-3.4); None when
    fewer than 3 bytes are known. Looser than :func:`looks_like_tls`: a capture may begin
    in the middle of a connection."""
    if len(data) < 3:
        return None
    return 20 <= data[0] <= 24 and data[1] == 3 and data[2] <= 4


def plausible_header(buf, pos: int, tls_version: int | None) -> bool:
    """Is there a plausible record header at ``buf[pos:pos + 5]`` (which must exist)? Known
    content type, version 3.1-3.4 (3.3 only once TLS 1.2 or 1.3 was negotiated: RFC 8446
    §5.1 legacy_record_version), length 1 … :data:`MAX_FRAGMENT`."""
    ctype = buf[pos]
    if ctype < 20 or ctype > 24 or buf[pos + 1] != 3 or not 1 <= buf[pos + 2] <= 4:
        return False
    length = (buf[pos + 3] << 8) | buf[pos + 4]
    if length == 0 or length > MAX_FRAGMENT:
        return False
    if tls_version is not None and tls_version >= 0x0303 and buf[pos + 2] != 3:
        return False
    return True


# -- events -----------------------------------------------------------------------------------

@dataclass(slots=True)
class TlsEvent:
    """One thing seen on a TLS connection.

    ``frame``: the frame that completed the record (or handshake message); ``first_frame``:
    the frame of its first byte; ``direction``: 0 client→server (EVCC→SECC), 1
    server→client; ``kind``: ``"handshake"``, ``"change_cipher_spec"``, ``"alert"``,
    ``"application_data"``, ``"encrypted"`` (a record left undecrypted) or ``"error"``;
    ``name``: ``"ClientHello"``, ``"Certificate"``, ``"Alert fatal bad_certificate"``,
    ``"ApplicationData"``, …; ``fields``: the description (JSON-ready values); ``data``: the
    decrypted application data (kind ``"application_data"`` only); ``error``: why something
    could not be read or decrypted, else None.
    """

    frame: int
    first_frame: int
    direction: int
    kind: str
    name: str
    fields: dict = field(default_factory=dict)
    data: bytes | None = None
    error: str | None = None


# -- records ----------------------------------------------------------------------------------

@dataclass(slots=True)
class Record:
    """One TLS record of one direction: ``index`` (0-based count in the direction),
    ``offset`` (stream offset of its header), ``first_frame`` / ``frame`` (frames of its
    first and last byte), ``header`` (the 5 header bytes) and ``fragment`` (RFC 5246 §6.2)."""

    index: int
    offset: int
    first_frame: int
    frame: int
    header: bytes
    fragment: bytes

    @property
    def ctype(self) -> int:
        """The outer content type (RFC 5246 §6.2.1; 23 for every TLS 1.3 protected record)."""
        return self.header[0]


@dataclass(slots=True)
class Marker:
    """A queued state change that must happen in record order: records dropped over the
    held-back limit (``count``), or lost in a gap (``seq_skip`` records surely lost,
    ``window`` more possibly lost)."""

    kind: str
    count: int = 0
    seq_skip: int = 0
    window: int = 0


def record_error(rec: Record, direction: int, name: str, why: str, **fields) -> TlsEvent:
    """An ``"error"`` event about record ``rec`` of ``direction``; ``fields`` add to its
    ``record`` / ``offset``."""
    f = {"record": rec.index, "offset": rec.offset}
    f.update(fields)
    return TlsEvent(rec.frame, rec.first_frame, direction, "error", name, f, None, why)


def alert_events(rec: Record, direction: int, data: bytes, base: dict) -> list[TlsEvent]:
    """The alerts of one (decrypted) alert record: ``level(1) description(1)`` each
    (RFC 5246 §7.2, RFC 8446 §6); one ``"alert"`` event per alert named
    ``"Alert fatal bad_certificate"``, its fields ``base`` plus level and description."""
    if not data or len(data) % 2:
        return [record_error(rec, direction, TLS_MALFORMED_ALERT,
                             f"alert record of {len(data)} bytes (alerts are 2 bytes)",
                             alert=data.hex())]
    out = []
    for i in range(0, len(data), 2):
        level, desc = data[i], data[i + 1]
        lname = ALERT_LEVELS.get(level, f"level {level}")
        dname = ALERT_DESCRIPTIONS.get(desc, f"description {desc}")
        f = dict(base, level=level, level_name=lname, description=desc, description_name=dname)
        out.append(TlsEvent(rec.frame, rec.first_frame, direction, "alert",
                            f"Alert {lname} {dname}", f, None, None))
    return out


class RecordStream(FrameTaggedBuffer):
    """Framing state of one direction (``d``: 0 client→server, 1 server→client).

    Holds the bytes of an unfinished record (``buf``, starting at stream offset ``base``)
    with the frames that carried them (``chunks``: (stream offset, frame)); after garbage or
    a gap it resynchronises on the next plausible header (``resyncing``; ``resync_skipped``
    bytes skipped since ``resync_first``); ``skip`` counts bytes still to pass over after a
    gap that ended inside a record of known length; ``records`` counts records cut;
    ``first_bytes`` keeps the first 6 bytes ever fed.
    """

    __slots__ = ("d", "resyncing", "resync_skipped", "resync_first",
                 "skip", "records", "first_bytes")

    def __init__(self, d: int):
        super().__init__()              # buf, base (stream offset of buf[0]), chunks
        self.d = d
        self.resyncing = False
        self.resync_skipped = 0
        self.resync_first = 0
        self.skip = 0                   # bytes still to skip after a gap (known record end)
        self.records = 0
        self.first_bytes = b""

    def find_header(self, start: int, tls_version: int | None) -> tuple[int | None, bool]:
        """Next plausible record header in ``buf`` at or after ``start`` whose record is
        followed by another plausible header (or by the end of the buffer). Returns
        (position or None, need more data to confirm)."""
        buf = self.buf
        n = len(buf)
        for i in range(start, n - 4):
            if not plausible_header(buf, i, tls_version):
                continue
            end = i + 5 + ((buf[i + 3] << 8) | buf[i + 4])
            if end == n:
                return i, False
            if end + 5 <= n:
                if plausible_header(buf, end, tls_version):
                    return i, False
                continue
            return i, True
        return None, False

    def cut(self, data: bytes, frame: int,
            tls_version: Callable[[], int | None]) -> Iterator[Record | TlsEvent]:
        """Add ``data`` (contiguous stream bytes that arrived with ``frame``) and yield, in
        stream order, the records it completed and the ``"Not a TLS record"`` errors of
        garbage skipped. ``tls_version()`` gives the negotiated version when a resync needs
        it (it may change while the caller handles the records yielded). The caller must
        exhaust the iterator: the bytes of the records yielded are released at its end."""
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            self.base += n
            data = data[n:]
            if not data:
                return
        self.append(data, frame)
        buf = self.buf
        n = len(buf)
        pos = 0
        while True:
            if self.resyncing:
                j, need_more = self.find_header(pos, tls_version())
                stop = j if j is not None else max(pos, n - 4)
                if stop > pos:
                    if not self.resync_skipped:
                        self.resync_first = self.frame_at(self.base + pos)
                    self.resync_skipped += stop - pos
                    pos = stop
                if j is None or need_more:
                    break
                self.resyncing = False
                if self.resync_skipped:
                    yield TlsEvent(frame, self.resync_first, self.d, "error", TLS_NOT_A_RECORD,
                                   {"skipped_bytes": self.resync_skipped,
                                    "offset": self.base + pos - self.resync_skipped}, None,
                                   f"skipped {self.resync_skipped} bytes that are not TLS "
                                   "records, resynchronised on the next record header")
                self.resync_skipped = 0
            if n - pos < 5:
                break
            ctype = buf[pos]
            length = (buf[pos + 3] << 8) | buf[pos + 4]
            if (ctype < 20 or ctype > 24 or buf[pos + 1] != 3 or buf[pos + 2] > 4
                    or length > MAX_FRAGMENT):
                hdr = bytes(buf[pos:pos + 5])
                yield TlsEvent(frame, self.frame_at(self.base + pos), self.d, "error",
                               TLS_NOT_A_RECORD, {"header": hdr.hex(),
                                                    "offset": self.base + pos}, None,
                               f"invalid TLS record header {hdr.hex(' ')} at stream "
                               f"offset {self.base + pos}; resynchronising")
                self.resyncing = True
                self.resync_skipped = 1
                self.resync_first = self.frame_at(self.base + pos)
                pos += 1
                continue
            end = pos + 5 + length
            if end > n:
                break
            rec = Record(self.records, self.base + pos, self.frame_at(self.base + pos), frame,
                         bytes(buf[pos:pos + 5]), bytes(buf[pos + 5:end]))
            self.records += 1
            pos = end
            yield rec
        self.consume(pos)

    def lose(self, missing: int, frame: int) -> tuple[TlsEvent, Marker | None]:
        """``missing`` (> 0) bytes were lost from the capture before the next bytes fed.
        Keeps the framing in step when the lost range ends inside the record being read (its
        length is known), resynchronises otherwise. Returns the ``"Bytes missing"`` event and
        the :class:`Marker` of records surely / possibly lost (None when the bytes fell
        inside a record already lost)."""
        fields = {"missing_bytes": missing, "offset": self.base + len(self.buf)}
        # lost inside the skip region of an earlier gap
        if self.skip:
            if missing < self.skip:
                self.skip -= missing
                self.base += missing
                return TlsEvent(frame, frame, self.d, "error", TLS_BYTES_MISSING, fields, None,
                                f"{missing} bytes of the {DIR_WORDS[self.d]} stream missing "
                                "from the capture (inside a record already lost)"), None
            missing -= self.skip
            self.base += self.skip
            self.skip = 0
        seq_skip = 0
        window = 0
        first = self.frame_at(self.base) if self.buf else frame
        if self.resyncing:
            window = missing // MIN_PROTECTED_RECORD + 1
            self.resync_skipped += len(self.buf)
            why = "while resynchronising"
            self.base += len(self.buf) + missing
        elif len(self.buf) >= 5:
            length = (self.buf[3] << 8) | self.buf[4]
            rec_end = self.base + 5 + length
            lost_end = self.base + len(self.buf) + missing
            seq_skip = 1
            why = (f"the {CONTENT_TYPES.get(self.buf[0], self.buf[0])} record at stream offset "
                   f"{self.base} ({len(self.buf)} of {5 + length} bytes captured) is lost")
            if rec_end >= lost_end:
                self.skip = rec_end - lost_end
                self.base = lost_end
            else:
                window = (lost_end - rec_end) // MIN_PROTECTED_RECORD + 1
                self.base = lost_end
                self.resyncing = True
                why += "; later records may be lost too, resynchronising"
        else:
            window = missing // MIN_PROTECTED_RECORD + 1
            self.base += len(self.buf) + missing
            self.resyncing = True
            why = "record boundary lost, resynchronising"
        self.buf.clear()
        self.chunks = []
        if self.resyncing and not self.resync_skipped:
            self.resync_first = frame
        fields["records_lost_at_least"] = seq_skip
        event = TlsEvent(frame, first, self.d, "error", TLS_BYTES_MISSING, fields, None,
                         f"{missing} bytes of the {DIR_WORDS[self.d]} TLS stream missing "
                         f"from the capture: {why}")
        return event, Marker("gap", seq_skip=seq_skip, window=window)

    def close(self, frame: int) -> list[TlsEvent]:
        """End of the stream: the garbage or partial record left (``"Not a TLS record"`` /
        ``"Partial record"``), then the buffer is released."""
        events = []
        if self.resyncing and (self.resync_skipped or self.buf):
            n = self.resync_skipped + len(self.buf)
            events.append(TlsEvent(frame, self.resync_first or frame, self.d, "error",
                                   TLS_NOT_A_RECORD, {"skipped_bytes": n}, None,
                                   f"stream ends after {n} bytes that are not TLS records"))
        elif self.buf:
            first = self.frame_at(self.base)
            if len(self.buf) >= 5:
                length = (self.buf[3] << 8) | self.buf[4]
                why = (f"stream ends inside a {CONTENT_TYPES.get(self.buf[0], self.buf[0])} "
                       f"record: {len(self.buf)} of {5 + length} bytes")
            else:
                why = f"stream ends inside a record header ({len(self.buf)} bytes)"
            events.append(TlsEvent(frame, first, self.d, "error", TLS_PARTIAL_RECORD,
                                   {"offset": self.base, "bytes": len(self.buf)}, None, why))
        return events

    def release(self) -> None:
        """Forget the buffered bytes and any resynchronisation in progress."""
        self.buf.clear()
        self.chunks = []
        self.resyncing = False
        self.resync_skipped = 0
