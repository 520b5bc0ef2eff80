"""TLS record layer, handshake description and the per-connection state machine (TLS 1.2, 1.3).

ISO 15118-2 runs V2GTP over TLS 1.2 (server authentication, cipher suites
TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 / TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256); ISO 15118-20
over TLS 1.3 with mutual authentication (TLS_AES_256_GCM_SHA384 / TLS_CHACHA20_POLY1305_SHA256)
(PROTOCOL_FACTS §1.4). The EVCC is the TLS client: it opens the TCP connection.

Record layer (RFC 5246 §6.2, RFC 8446 §5.1), 5-byte header, big-endian:

    offset  size  field
    0       1     content type     20 change_cipher_spec, 21 alert, 22 handshake,
                                   23 application_data, 24 heartbeat
    1       2     version          0x0301 … 0x0304 (TLS 1.3 records say 0x0303)
    3       2     length           fragment bytes, at most 2^14 + 2048
    5       …     fragment

Handshake messages (RFC 5246 §7.4, RFC 8446 §4) sit in handshake records as
``type(1) length(3) body``; one record may carry several, one message may span records.

:class:`TlsConnection` takes the two reassembled TCP byte streams of one connection (fed in
stream order, as chunks tagged with the frame that carried them), cuts them into records,
describes the handshake, and decrypts what it can with the secrets of a
:class:`~ccs_analyzer.dissectors.tls_keylog.KeyLog` (TLS 1.2: CLIENT_RANDOM master secret;
TLS 1.3: the handshake and application traffic secrets). Records it cannot decrypt yet are
held back (bounded) until :meth:`TlsConnection.retry` — key logs are often disclosed in the
capture after the handshake and even after the first application data. Every output is a
:class:`TlsEvent` attributed to the frame that completed it; bad input never raises.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .tls_crypto import (
    DecryptError,
    RecordCipher,
    Tls13Cipher,
    cipher_suite_name,
    is_grease,
    suite_params,
    tls12_ciphers,
)
from .tls_keylog import KeyLog
from .x509info import describe_chain, describe_name
from .ocsp import describe_ocsp
from .x509trust import anchor_chain, trusted_ca_match

# -- registries (IANA TLS parameters) ---------------------------------------------------------

CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake",
                 23: "application_data", 24: "heartbeat"}

VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}

#: Handshake message types (RFC 5246 §7.4, RFC 8446 §4, RFC 6066 §5/§8, RFC 8879).
HANDSHAKE_TYPES = {
    0: "HelloRequest", 1: "ClientHello", 2: "ServerHello", 3: "HelloVerifyRequest",
    4: "NewSessionTicket", 5: "EndOfEarlyData", 8: "EncryptedExtensions", 11: "Certificate",
    12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone",
    15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished", 21: "CertificateURL",
    22: "CertificateStatus", 23: "SupplementalData", 24: "KeyUpdate",
    25: "CompressedCertificate", 254: "MessageHash",
}

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
ALERT_LEVELS = {1: "warning", 2: "fatal"}

#: Extension types (IANA "TLS ExtensionType Values").
EXTENSIONS = {
    0: "server_name", 1: "max_fragment_length", 2: "client_certificate_url",
    3: "trusted_ca_keys", 4: "truncated_hmac", 5: "status_request", 6: "user_mapping",
    7: "client_authz", 8: "server_authz", 9: "cert_type", 10: "supported_groups",
    11: "ec_point_formats", 12: "srp", 13: "signature_algorithms", 14: "use_srtp",
    15: "heartbeat", 16: "application_layer_protocol_negotiation", 17: "status_request_v2",
    18: "signed_certificate_timestamp", 19: "client_certificate_type",
    20: "server_certificate_type", 21: "padding", 22: "encrypt_then_mac",
    23: "extended_master_secret", 24: "token_binding", 25: "cached_info",
    27: "compress_certificate", 28: "record_size_limit", 35: "session_ticket",
    41: "pre_shared_key", 42: "early_data", 43: "supported_versions", 44: "cookie",
    45: "psk_key_exchange_modes", 47: "certificate_authorities", 48: "oid_filters",
    49: "post_handshake_auth", 50: "signature_algorithms_cert", 51: "key_share",
    57: "quic_transport_parameters", 17513: "application_settings",
    65037: "encrypted_client_hello", 65281: "renegotiation_info",
}

#: Named groups (RFC 8446 §4.2.7, RFC 8422 §5.1.1, RFC 7919, RFC 8734).
GROUPS = {
    19: "secp192r1", 21: "secp224r1", 22: "secp256k1", 23: "secp256r1", 24: "secp384r1",
    25: "secp521r1", 26: "brainpoolP256r1", 27: "brainpoolP384r1", 28: "brainpoolP512r1",
    29: "x25519", 30: "x448", 31: "brainpoolP256r1tls13", 32: "brainpoolP384r1tls13",
    33: "brainpoolP512r1tls13", 256: "ffdhe2048", 257: "ffdhe3072", 258: "ffdhe4096",
    259: "ffdhe6144", 260: "ffdhe8192", 0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768", 0x11ED: "SecP384r1MLKEM1024", 0x6399: "X25519Kyber768Draft00",
}

#: Signature schemes / TLS 1.2 SignatureAndHashAlgorithm (RFC 8446 §4.2.3, RFC 5246 §7.4.1.4.1).
SIGNATURE_SCHEMES = {
    0x0201: "rsa_pkcs1_sha1", 0x0202: "dsa_sha1", 0x0203: "ecdsa_sha1",
    0x0301: "rsa_pkcs1_sha224", 0x0302: "dsa_sha224", 0x0303: "ecdsa_sha224",
    0x0401: "rsa_pkcs1_sha256", 0x0402: "dsa_sha256", 0x0403: "ecdsa_secp256r1_sha256",
    0x0501: "rsa_pkcs1_sha384", 0x0502: "dsa_sha384", 0x0503: "ecdsa_secp384r1_sha384",
    0x0601: "rsa_pkcs1_sha512", 0x0602: "dsa_sha512", 0x0603: "ecdsa_secp521r1_sha512",
    0x0804: "rsa_pss_rsae_sha256", 0x0805: "rsa_pss_rsae_sha384", 0x0806: "rsa_pss_rsae_sha512",
    0x0807: "ed25519", 0x0808: "ed448", 0x0809: "rsa_pss_pss_sha256",
    0x080A: "rsa_pss_pss_sha384", 0x080B: "rsa_pss_pss_sha512",
    0x081A: "ecdsa_brainpoolP256r1tls13_sha256", 0x081B: "ecdsa_brainpoolP384r1tls13_sha384",
    0x081C: "ecdsa_brainpoolP512r1tls13_sha512",
}

_CERT_TYPES = {1: "rsa_sign", 2: "dss_sign", 3: "rsa_fixed_dh", 4: "dss_fixed_dh",
               64: "ecdsa_sign", 65: "rsa_fixed_ecdh", 66: "ecdsa_fixed_ecdh"}
_TRUSTED_CA_TYPES = {0: "pre_agreed", 1: "key_sha1_hash", 2: "x509_name", 3: "cert_sha1_hash"}
_PSK_MODES = {0: "psk_ke", 1: "psk_dhe_ke"}
_EC_POINT_FORMATS = {0: "uncompressed", 1: "ansiX962_compressed_prime",
                     2: "ansiX962_compressed_char2"}

#: ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
_DOWNGRADE = {b"DOWNGRD\x01": "TLS 1.2", b"DOWNGRD\x00": "TLS 1.1 or below"}

#: Largest record fragment: 2^14 + 2048 (RFC 5246 §6.2.3; TLS 1.3 allows 2^14 + 256).
MAX_FRAGMENT = (1 << 14) + 2048
#: Smallest possible protected record (TLS 1.3: 1 byte inner type + 16 bytes tag), used to
#: bound how many records may have been lost in a gap.
_MIN_PROTECTED_RECORD = 5 + 17
#: Upper bound on sequence numbers tried after a gap.
_MAX_SEQ_WINDOW = 1 << 16


def version_name(v: int) -> str:
    """Name of a protocol version code (``"TLS 1.2"``), GREASE or ``"0x7f1c"``."""
    if v in VERSIONS:
        return VERSIONS[v]
    if is_grease(v):
        return f"GREASE (0x{v:04X})"
    if v >> 8 == 0x7F:
        return f"TLS 1.3 draft {v & 0xFF}"
    return f"0x{v:04X}"


def _name(table: dict, v: int) -> str:
    if v in table:
        return table[v]
    if is_grease(v):
        return f"GREASE (0x{v:04X})"
    return f"0x{v:04X}"


def looks_like_tls(data: bytes) -> bool | None:
    """Does a connection whose client sent ``data`` first speak TLS?

    True when the bytes start like a TLS handshake record (type 22, version 0x0300-0x0304,
    plausible length) holding a ClientHello (handshake type 1); False when they cannot;
    None when fewer than 6 bytes are known.
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


def _looks_like_records(data: bytes) -> bool | None:
    """Could ``data`` start a TLS record stream? (type 20-24, version 3.0-3.4); None when
    fewer than 3 bytes are known. Looser than :func:`looks_like_tls`: a capture may begin
    in the middle of a connection."""
    if len(data) < 3:
        return None
    return 20 <= data[0] <= 24 and data[1] == 3 and data[2] <= 4


def _plausible_header(buf, pos: int, tls_version: int | None) -> bool:
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


class _Malformed(Exception):
    pass


class _Reader:
    """Bounds-checked big-endian reader over one structure; raises _Malformed."""

    __slots__ = ("d", "p", "end", "what")

    def __init__(self, data: bytes, what: str):
        self.d = data
        self.p = 0
        self.end = len(data)
        self.what = what

    def take(self, n: int) -> bytes:
        if self.p + n > self.end:
            raise _Malformed(f"{self.what} truncated: needs {n} more bytes at offset {self.p}, "
                             f"{self.end - self.p} left")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def vec(self, width: int) -> bytes:
        return self.take(int.from_bytes(self.take(width), "big"))

    def sub(self, width: int, what: str) -> _Reader:
        return _Reader(self.vec(width), what)

    @property
    def left(self) -> int:
        return self.end - self.p

    def u16_list(self) -> list[int]:
        if self.left % 2:
            raise _Malformed(f"{self.what}: odd length {self.left}")
        return [self.u16() for _ in range(self.left // 2)]


def _parse_extensions(r: _Reader) -> list[tuple[int, bytes]]:
    if r.left == 0:
        return []
    ext = r.sub(2, "extensions")
    out = []
    while ext.left:
        t = ext.u16()
        out.append((t, ext.vec(2)))
    return out


# -- per-direction state -----------------------------------------------------------------------

@dataclass(slots=True)
class _Record:
    index: int
    offset: int
    first_frame: int
    frame: int
    header: bytes
    fragment: bytes

    @property
    def ctype(self) -> int:
        return self.header[0]


@dataclass(slots=True)
class _Marker:
    """A queued state change that must happen in record order: records dropped over the
    held-back limit (``count``), or lost in a gap (``seq_skip`` records surely lost,
    ``window`` more possibly lost)."""

    kind: str
    count: int = 0
    seq_skip: int = 0
    window: int = 0


class _Direction:
    __slots__ = ("d", "buf", "base", "chunks", "resyncing", "resync_skipped", "resync_first",
                 "skip", "records", "epoch", "seq", "window", "params", "hs_buf",
                 "hs_first_frame", "queue", "pending_change", "ciphers",
                 "first_bytes", "tls12_keys")

    def __init__(self, d: int):
        self.d = d
        self.buf = bytearray()
        self.base = 0                   # stream offset of buf[0]
        self.chunks: list[tuple[int, int]] = []   # (stream offset, frame)
        self.resyncing = False
        self.resync_skipped = 0
        self.resync_first = 0
        self.skip = 0                   # bytes still to skip after a gap (known record end)
        self.records = 0
        self.epoch = 0                  # TLS 1.2: number of CCS seen; TLS 1.3: -1 early, 0 hs, n app
        self.seq = 0
        self.window = 0                 # extra sequence numbers to try (after a gap)
        self.params = None              # TLS 1.2: handshake parameters at the last CCS
        self.hs_buf = bytearray()
        self.hs_first_frame = 0
        self.queue: deque = deque()
        self.pending_change = False     # TLS 1.3: switch keys after this record
        self.ciphers: dict = {}         # TLS 1.3: epoch -> Tls13Cipher
        self.first_bytes = b""
        self.tls12_keys = None

    def frame_at(self, offset: int) -> int:
        frame = self.chunks[0][1] if self.chunks else 0
        for off, fr in self.chunks:
            if off > offset:
                break
            frame = fr
        return frame

    def consume(self, upto: int) -> None:
        if upto <= 0:
            return
        del self.buf[:upto]
        self.base += upto
        keep = [c for c in self.chunks if c[0] >= self.base]
        head = [c for c in self.chunks if c[0] < self.base]
        if head and (not keep or keep[0][0] > self.base):
            keep.insert(0, (self.base, head[-1][1]))
        self.chunks = keep


@dataclass(slots=True)
class _Hello:
    """TLS 1.2 parameters fixed by one ClientHello/ServerHello exchange."""

    client_random: bytes | None
    server_random: bytes | None
    suite: int | None
    version: int | None
    encrypt_then_mac: bool


_SIDE = ("CLIENT", "SERVER")
_DIR_WORDS = ("client→server", "server→client")


class TlsConnection:
    """One TLS connection (one TCP connection): records, handshake, decryption.

    ``keylog``: the :class:`KeyLog` to take secrets from (it may grow during the capture);
    ``label``: how to name the connection in messages (e.g. ``"[fe80::1]:50000 → [fe80::2]:
    15118"``); ``max_held_bytes``: ciphertext held back for lack of secrets, per connection
    (default 16 MiB); beyond it records are reported as ``"encrypted"`` and dropped;
    ``max_handshake_bytes``: largest handshake message buffered (default 1 MiB); ``trust``:
    a :class:`~.x509trust.TrustStore` the Certificate messages' chains are anchored against
    (their ``trust`` field; None: "unanchored").

    Feed both directions with :meth:`feed` in capture order; call :meth:`retry` when the key
    log's ``version`` changed (``feed`` also notices it); :meth:`gap` when bytes are missing
    from a direction; :meth:`close` at the end of the capture. Each returns the
    :class:`TlsEvent` list it produced, in record order per direction; events for held-back
    records carry their own (earlier) frames and ``fields["held_until_frame"]``
    (:attr:`held_back_first_frame` says how early such events may still be).
    A connection whose client does not start with a TLS record header gives one ``"Not TLS"``
    error and is ignored from then on; one captured mid-way (no ClientHello) is followed,
    its encrypted records reported at :meth:`close` ("no ClientHello seen").
    Never raises on bad input.
    """

    def __init__(self, keylog: KeyLog, label: str = "", *, max_held_bytes: int = 16 << 20,
                 max_handshake_bytes: int = 1 << 20, trust=None):
        self.keylog = keylog if keylog is not None else KeyLog()
        self.trust = trust                # x509trust.TrustStore (--trust) or None
        self.ocsp: dict | None = None     # the stapled OCSP response (dissectors/ocsp.py)
        self.ocsp_asked = False           # the ClientHello's status_request (RFC 6066 §8)
        self._server_ders: list[bytes] = []
        self._trusted_ca: list[dict] = []  # the ClientHello's trusted_ca_keys (RFC 6066 §6)
        self.label = label
        self.max_held_bytes = max_held_bytes
        self.max_handshake_bytes = max_handshake_bytes
        self._dirs = (_Direction(0), _Direction(1))
        self._held = 0
        self._kl_version = self.keylog.version
        self._not_tls: bool | None = None
        # handshake state
        self._client_random: bytes | None = None        # first ClientHello
        self._cr: bytes | None = None                   # latest ClientHello
        self._server_random: bytes | None = None
        self._suite: int | None = None
        self._version: int | None = None
        self._tls13 = False
        self._etm = False
        self._early_offered = False
        self._hello: _Hello | None = None               # latest negotiated (TLS 1.2)
        self._hrr = False
        self._group: str | None = None
        self._sni: str | None = None
        self._alpn: str | None = None
        self._decrypting = False
        self.server_certificates: list[dict] = []
        """Server certificate chain as described by :func:`x509info.describe_chain`
        (leaf first; empty until a Certificate message from the server was read)."""
        self.client_certificates: list[dict] = []
        """Client (EVCC) certificate chain, for mutual TLS (ISO 15118-20)."""
        self.stats = {"records": [0, 0], "decrypted": [0, 0], "undecryptable": [0, 0],
                      "application_bytes": [0, 0], "dropped": [0, 0]}
        """Counters per direction [client→server, server→client]."""

    # -- public properties ----------------------------------------------------------------

    @property
    def version(self) -> str | None:
        """Negotiated protocol version (``"TLS 1.2"``, ``"TLS 1.3"``); None before the
        ServerHello."""
        return version_name(self._version) if self._version is not None else None

    @property
    def cipher_suite(self) -> str | None:
        """Negotiated cipher suite, IANA name; None before the ServerHello."""
        return cipher_suite_name(self._suite) if self._suite is not None else None

    @property
    def client_random(self) -> bytes | None:
        """ClientHello.random (32 bytes) of the first ClientHello — the key log's key."""
        return self._client_random

    @property
    def server_random(self) -> bytes | None:
        """ServerHello.random (32 bytes), None before the ServerHello."""
        return self._server_random

    @property
    def server_name(self) -> str | None:
        """SNI host name offered by the client, if any."""
        return self._sni

    @property
    def is_tls(self) -> bool:
        """True when the first bytes from the client look like a TLS ClientHello record."""
        return bool(looks_like_tls(self._dirs[0].first_bytes))

    @property
    def decrypting(self) -> bool:
        """True once a record of this connection was decrypted and authenticated."""
        return self._decrypting

    @property
    def held_bytes(self) -> int:
        """Ciphertext bytes currently held back waiting for secrets."""
        return self._held

    @property
    def held_back_first_frame(self) -> int | None:
        """First frame of the earliest record held back (its events may still come, from
        :meth:`retry` or :meth:`close`); None when nothing is held. Lets a caller that
        orders output by frame know how far it may flush."""
        first = None
        for d in self._dirs:
            for item in d.queue:
                if isinstance(item, _Record):
                    if first is None or item.first_frame < first:
                        first = item.first_frame
                    break
        return first

    # -- public methods -------------------------------------------------------------------

    def feed(self, direction: int, data: bytes, frame: int) -> list[TlsEvent]:
        """Add contiguous stream bytes of ``direction`` (0 client→server, 1 server→client)
        that arrived with ``frame``; returns the events they completed."""
        try:
            return self._feed(direction, bytes(data), frame)
        except Exception as exc:   # a bug must not stop the analysis of the capture
            return [TlsEvent(frame, frame, direction if direction in (0, 1) else 0, "error",
                             "Internal error", {}, None, f"TLS dissector failed: {exc!r}")]

    @property
    def idle(self) -> bool:
        """Nothing buffered, held back or in progress: :meth:`close` would report nothing."""
        return self._not_tls or not any(d.queue or d.buf or d.hs_buf or d.resyncing
                                        or d.resync_skipped for d in self._dirs)

    def retry(self, frame: int) -> list[TlsEvent]:
        """Try again to decrypt held-back records (call when ``keylog.version`` changed;
        ``frame``: the frame that disclosed the secrets). Returns the events they gave."""
        try:
            self._kl_version = self.keylog.version
            return self._drain(frame)
        except Exception as exc:
            return [TlsEvent(frame, frame, 0, "error", "Internal error", {}, None,
                             f"TLS dissector failed: {exc!r}")]

    def gap(self, direction: int, missing: int, frame: int) -> list[TlsEvent]:
        """``missing`` bytes of ``direction`` were lost from the capture before the next
        bytes fed. Reports the damage; keeps the record stream in step when the lost range
        ends inside the record being read (its length is known), resynchronises on the next
        plausible record header otherwise, and then tries the sequence numbers the lost
        records may have used (bounded)."""
        try:
            return self._gap(direction, max(0, int(missing)), frame)
        except Exception as exc:
            return [TlsEvent(frame, frame, direction if direction in (0, 1) else 0, "error",
                             "Internal error", {}, None, f"TLS dissector failed: {exc!r}")]

    def close(self, frame: int) -> list[TlsEvent]:
        """End of capture: report partial records and handshake messages, and every record
        that stayed encrypted (with why: no key log secrets for the client random, no
        ServerHello seen, …). Held-back memory is released."""
        try:
            return self._close(frame)
        except Exception as exc:
            return [TlsEvent(frame, frame, 0, "error", "Internal error", {}, None,
                             f"TLS dissector failed: {exc!r}")]

    def summary(self) -> dict:
        """JSON-ready overview: version, cipher suite, client random (hex), SNI, ALPN, group,
        decrypting, certificate subjects, per-direction counters."""
        return {
            "label": self.label,
            "version": self.version,
            "cipher_suite": self.cipher_suite,
            "client_random": self._client_random.hex() if self._client_random else None,
            "server_name": self._sni,
            "alpn": self._alpn,
            "group": self._group,
            "decrypting": self._decrypting,
            "server_certificates": [c.get("subject") for c in self.server_certificates],
            "client_certificates": [c.get("subject") for c in self.client_certificates],
            "revocation": self.revocation(),
            **{k: list(v) for k, v in self.stats.items()},
        }

    def revocation(self) -> dict:
        """What the handshake shows of the SECC certificate's revocation status: whether the
        EV asked for an OCSP response (``status_request``) and the one stapled (or None —
        none present: nothing is claimed either way)."""
        return {"status_request": self.ocsp_asked, "ocsp": self.ocsp,
                "summary": (f"OCSP response stapled: {self.ocsp.get('cert_status') or self.ocsp.get('response_status')}"
                            if self.ocsp else "no OCSP response in the capture"
                            + (" although the EV asked for one (status_request)" if self.ocsp_asked else ""))}

    def __repr__(self) -> str:
        return (f"TlsConnection({self.label!r}, {self.version}, {self.cipher_suite}, "
                f"decrypting={self._decrypting})")

    # -- stream → records -----------------------------------------------------------------

    def _feed(self, direction: int, data: bytes, frame: int) -> list[TlsEvent]:
        if direction not in (0, 1):
            return [TlsEvent(frame, frame, 0, "error", "Bad direction", {}, None,
                             f"direction must be 0 or 1, not {direction!r}")]
        if not data:
            return []
        d = self._dirs[direction]
        if len(d.first_bytes) < 6:
            d.first_bytes += data[:6 - len(d.first_bytes)]
        if self._not_tls:
            return []
        if direction == 0 and self._not_tls is None:
            verdict = _looks_like_records(d.first_bytes)
            if verdict is False:
                self._not_tls = True
                return [TlsEvent(frame, frame, 0, "error", "Not TLS",
                                 {"first_bytes": d.first_bytes.hex()}, None,
                                 f"not TLS: the client's first bytes ({d.first_bytes.hex(' ')}) "
                                 "are not a TLS record header")]
            if verdict:
                self._not_tls = False
        events: list[TlsEvent] = []
        if self.keylog.version != self._kl_version and (self._dirs[0].queue or self._dirs[1].queue):
            self._kl_version = self.keylog.version
            events += self._drain(frame)
        events += self._parse(d, data, frame)
        if self._dirs[0].queue or self._dirs[1].queue:
            events += self._drain(frame)
        return events

    def _parse(self, d: _Direction, data: bytes, frame: int) -> list[TlsEvent]:
        events: list[TlsEvent] = []
        if d.skip:
            n = min(d.skip, len(data))
            d.skip -= n
            d.base += n
            data = data[n:]
            if not data:
                return events
        d.chunks.append((d.base + len(d.buf), frame))
        d.buf += data
        buf = d.buf
        n = len(buf)
        pos = 0
        while True:
            if d.resyncing:
                j, need_more = self._find_header(buf, pos)
                stop = j if j is not None else max(pos, n - 4)
                if stop > pos:
                    if not d.resync_skipped:
                        d.resync_first = d.frame_at(d.base + pos)
                    d.resync_skipped += stop - pos
                    pos = stop
                if j is None or need_more:
                    break
                d.resyncing = False
                if d.resync_skipped:
                    events.append(TlsEvent(frame, d.resync_first, d.d, "error", "Not a TLS record",
                                           {"skipped_bytes": d.resync_skipped,
                                            "offset": d.base + pos - d.resync_skipped}, None,
                                           f"skipped {d.resync_skipped} bytes that are not TLS "
                                           "records, resynchronised on the next record header"))
                d.resync_skipped = 0
            if n - pos < 5:
                break
            ctype = buf[pos]
            length = (buf[pos + 3] << 8) | buf[pos + 4]
            if (ctype < 20 or ctype > 24 or buf[pos + 1] != 3 or buf[pos + 2] > 4
                    or length > MAX_FRAGMENT):
                hdr = bytes(buf[pos:pos + 5])
                events.append(TlsEvent(frame, d.frame_at(d.base + pos), d.d, "error",
                                       "Not a TLS record", {"header": hdr.hex(),
                                                            "offset": d.base + pos}, None,
                                       f"invalid TLS record header {hdr.hex(' ')} at stream "
                                       f"offset {d.base + pos}; resynchronising"))
                d.resyncing = True
                d.resync_skipped = 1
                d.resync_first = d.frame_at(d.base + pos)
                pos += 1
                continue
            end = pos + 5 + length
            if end > n:
                break
            rec = _Record(d.records, d.base + pos, d.frame_at(d.base + pos), frame,
                          bytes(buf[pos:pos + 5]), bytes(buf[pos + 5:end]))
            d.records += 1
            self.stats["records"][d.d] += 1
            pos = end
            events += self._on_record(d, rec)
        d.consume(pos)
        return events

    def _find_header(self, buf: bytearray, start: int) -> tuple[int | None, bool]:
        """Next plausible record header at or after ``start`` whose record is followed by
        another plausible header (or by the end of the buffer). Returns (position or None,
        need more data to confirm)."""
        n = len(buf)
        for i in range(start, n - 4):
            if not _plausible_header(buf, i, self._version):
                continue
            end = i + 5 + ((buf[i + 3] << 8) | buf[i + 4])
            if end == n:
                return i, False
            if end + 5 <= n:
                if _plausible_header(buf, end, self._version):
                    return i, False
                continue
            return i, True
        return None, False

    def _on_record(self, d: _Direction, rec: _Record) -> list[TlsEvent]:
        if d.queue:
            return self._enqueue(d, rec)
        events, blocked = self._process_safely(d, rec)
        if blocked:
            events += self._enqueue(d, rec)
        return events

    def _process_safely(self, d: _Direction, rec: _Record) -> tuple[list[TlsEvent], bool]:
        """:meth:`_process`, with an unexpected failure confined to the record it hit."""
        try:
            return self._process(d, rec)
        except Exception as exc:
            return [self._error(rec, d, "Internal error",
                                f"TLS dissector failed on record {rec.index}: {exc!r}")], False

    def _enqueue(self, d: _Direction, rec: _Record) -> list[TlsEvent]:
        size = len(rec.fragment) + 5
        if self._held + size > self.max_held_bytes:
            self.stats["dropped"][d.d] += 1
            if d.queue and isinstance(d.queue[-1], _Marker) and d.queue[-1].kind == "dropped":
                d.queue[-1].count += 1
            else:
                d.queue.append(_Marker("dropped", count=1))
            return [self._encrypted_event(d, rec, f"encrypted, held-back ciphertext limit "
                                               f"({self.max_held_bytes} bytes per connection) "
                                               "reached: record dropped undecrypted")]
        self._held += size
        d.queue.append(rec)
        return []

    # -- held-back records -----------------------------------------------------------------

    def _drain(self, frame: int) -> list[TlsEvent]:
        events: list[TlsEvent] = []
        progress = True
        while progress:
            progress = False
            for d in self._dirs:
                while d.queue:
                    item = d.queue[0]
                    if isinstance(item, _Marker):
                        d.queue.popleft()
                        self._apply_marker(d, item)
                        progress = True
                        continue
                    evs, blocked = self._process_safely(d, item)
                    if blocked:
                        break
                    d.queue.popleft()
                    self._held -= len(item.fragment) + 5
                    for e in evs:
                        e.fields["held_until_frame"] = frame
                    events += evs
                    progress = True
        return events

    def _apply_marker(self, d: _Direction, m: _Marker) -> None:
        if m.kind == "dropped":
            d.seq += m.count
        elif m.kind == "gap":
            d.seq += m.seq_skip
            d.window = min(_MAX_SEQ_WINDOW, d.window + m.window)
            d.hs_buf.clear()

    # -- record processing -----------------------------------------------------------------

    def _encrypted_event(self, d: _Direction, rec: _Record, why: str) -> TlsEvent:
        fields = {"content_type": rec.ctype, "content_type_name": CONTENT_TYPES.get(rec.ctype),
                  "length": len(rec.fragment), "record": rec.index, "offset": rec.offset}
        name = "Alert (encrypted)" if rec.ctype == 21 and not self._tls13 else "Encrypted record"
        return TlsEvent(rec.frame, rec.first_frame, d.d, "encrypted", name, fields, None, why)

    def _is_protected(self, d: _Direction, rec: _Record) -> bool:
        if self._tls13:
            return rec.ctype == 23
        if self._version is not None:
            return d.epoch > 0
        return rec.ctype == 23 or d.epoch > 0

    def _process(self, d: _Direction, rec: _Record) -> tuple[list[TlsEvent], bool]:
        """Decrypt (if protected) and interpret one record. Returns (events, blocked):
        blocked means "cannot be read yet, keep it and everything after it"."""
        if not self._is_protected(d, rec):
            return self._content(d, rec, rec.ctype, rec.fragment, False, None), False
        cipher, why, blocked = self._cipher(d)
        if blocked:
            return [], True
        if cipher is None:
            d.seq += 1
            self.stats["undecryptable"][d.d] += 1
            return [self._encrypted_event(d, rec, why)], False
        epoch_before = d.epoch
        try:
            ctype, plain, seq = self._open(d, cipher, rec)
        except DecryptError as exc:
            seq = d.seq
            d.seq += 1
            self.stats["undecryptable"][d.d] += 1
            fields = {"content_type": rec.ctype, "content_type_name": CONTENT_TYPES.get(rec.ctype),
                      "length": len(rec.fragment), "record": rec.index, "offset": rec.offset,
                      "seq": seq, "epoch": self._epoch_name(d)}
            return [TlsEvent(rec.frame, rec.first_frame, d.d, "error",
                             "Record authentication failed", fields, None,
                             f"{_DIR_WORDS[d.d]} record {rec.index} "
                             f"({CONTENT_TYPES.get(rec.ctype, rec.ctype)}, {len(rec.fragment)} "
                             f"bytes, frame {rec.frame}, sequence number {seq}, "
                             f"{self._epoch_name(d)} keys) failed to decrypt: {exc}")], False
        self._decrypting = True
        self.stats["decrypted"][d.d] += 1
        d.seq = seq + 1
        d.window = 0
        events = self._content(d, rec, ctype, plain, True, seq)
        if d.epoch != epoch_before:
            for e in events:       # the Finished / KeyUpdate that changed keys was not seen
                e.fields["key_change_inferred"] = True
        if d.pending_change:
            d.pending_change = False
            d.epoch += 1
            d.seq = 0
            if d.hs_buf:
                events.append(self._error(rec, d, "Handshake message split across a key change",
                                          "a handshake message continues past a key change "
                                          "(RFC 8446 §5.1 forbids it); dropped"))
                d.hs_buf.clear()
        return events, False

    def _epoch_name(self, d: _Direction) -> str:
        if self._tls13:
            if d.epoch < 0:
                return "early data"
            if d.epoch == 0:
                return "handshake"
            return "application" if d.epoch == 1 else f"application (after {d.epoch - 1} KeyUpdates)"
        return "session" if d.epoch <= 1 else f"session {d.epoch}"

    def _open(self, d: _Direction, cipher: RecordCipher, rec: _Record) -> tuple[int, bytes, int]:
        """Decrypt with the expected sequence number, then (after a gap) the following ones,
        then (TLS 1.3) with the next epoch's keys in case a Finished / KeyUpdate was missed."""
        first_exc = None
        for seq in range(d.seq, d.seq + 1 + d.window):
            try:
                ctype, plain = cipher.open(rec.header, rec.fragment, seq)
                return ctype, plain, seq
            except DecryptError as exc:
                if first_exc is None:
                    first_exc = exc
        if self._tls13:
            nxt = self._tls13_cipher(d, d.epoch + 1)
            if nxt is not None:
                for seq in range(0, 1 + d.window):
                    try:
                        ctype, plain = nxt.open(rec.header, rec.fragment, seq)
                    except DecryptError:
                        continue
                    d.epoch += 1
                    return ctype, plain, seq
        raise first_exc

    def _cipher(self, d: _Direction) -> tuple[RecordCipher | None, str, bool]:
        """(cipher, why-not, blocked) for the current epoch of ``d``."""
        if self._cr is None:
            return None, "", True
        if self._version is None or self._suite is None:
            return None, "", True
        if self._tls13:
            params = suite_params(self._suite)
            if params is None or not params.tls13:
                return None, (f"encrypted, cipher suite {cipher_suite_name(self._suite)} not "
                              "supported for TLS 1.3 decryption"), False
            c = self._tls13_cipher(d, d.epoch)
            if c is None and d.epoch < 0:
                # 0-RTT offered but its secret unknown: maybe no early data was sent at all
                c = self._tls13_cipher(d, 0)
                if c is not None:
                    d.epoch = 0
            if c is None:
                return None, "", True
            return c, "", False
        # TLS 1.2 and below: keys fixed at this direction's last ChangeCipherSpec (the hellos
        # may have been fed after it when a direction lags behind: then take the latest)
        h: _Hello | None = d.params if d.params is not None else self._hello
        if h is None or h.suite is None or h.server_random is None:
            return None, "", True
        if h.client_random is None:
            if self._cr is None:
                return None, "", True
            h.client_random = self._cr
        if h.version is not None and h.version < 0x0303:
            return None, (f"encrypted, {version_name(h.version)} decryption not supported "
                          "(TLS 1.2 and 1.3 only)"), False
        params = suite_params(h.suite)
        if params is None or params.tls13:
            return None, (f"encrypted, cipher suite {cipher_suite_name(h.suite)} not supported "
                          "for decryption"), False
        if d.tls12_keys is not None and d.tls12_keys[0] == (h.client_random, h.server_random,
                                                            h.suite, h.encrypt_then_mac):
            return d.tls12_keys[1], "", False
        master = self.keylog.master_secret(h.client_random)
        if master is None:
            return None, "", True
        if len(master) != 48:
            return None, (f"encrypted, the key log's CLIENT_RANDOM secret is {len(master)} bytes "
                          "(a master secret has 48)"), False
        ciphers = tls12_ciphers(params, master, h.client_random, h.server_random,
                                h.encrypt_then_mac)
        d.tls12_keys = ((h.client_random, h.server_random, h.suite, h.encrypt_then_mac),
                        ciphers[d.d])
        return ciphers[d.d], "", False

    def _tls13_cipher(self, d: _Direction, epoch: int) -> Tls13Cipher | None:
        if epoch in d.ciphers:
            return d.ciphers[epoch]
        params = suite_params(self._suite) if self._suite is not None else None
        if params is None or not params.tls13 or self._cr is None:
            return None
        side = _SIDE[d.d]
        secret = None
        if epoch < 0:
            secret = self.keylog.get(self._cr, "CLIENT_EARLY_TRAFFIC_SECRET") if d.d == 0 else None
        elif epoch == 0:
            secret = self.keylog.get(self._cr, f"{side}_HANDSHAKE_TRAFFIC_SECRET")
        else:
            secret = self.keylog.get(self._cr, f"{side}_TRAFFIC_SECRET_{epoch - 1}")
            if secret is None and epoch > 1:
                prev = self._tls13_cipher(d, epoch - 1)
                if prev is not None:
                    c = prev.next()
                    d.ciphers[epoch] = c
                    return c
        if secret is None:
            return None
        c = Tls13Cipher(params, secret)
        d.ciphers[epoch] = c
        return c

    def _missing_secrets(self, d: _Direction) -> str:
        if self._cr is None:
            return "encrypted, no ClientHello seen: client random unknown"
        if self._version is None or self._suite is None:
            return "encrypted, no ServerHello seen: version and cipher suite unknown"
        if self._tls13:
            if d.epoch < 0:
                label = "CLIENT_EARLY_TRAFFIC_SECRET"
            elif d.epoch == 0:
                label = f"{_SIDE[d.d]}_HANDSHAKE_TRAFFIC_SECRET"
            else:
                label = f"{_SIDE[d.d]}_TRAFFIC_SECRET_0"
        else:
            label = "CLIENT_RANDOM"
        h = d.params if d.params is not None else self._hello
        cr = h.client_random if (not self._tls13 and h is not None and h.client_random) else self._cr
        return f"encrypted, no key log secrets for client random {cr.hex()} (needs {label})"

    # -- content ---------------------------------------------------------------------------

    def _error(self, rec: _Record, d: _Direction, name: str, why: str, **fields) -> TlsEvent:
        f = {"record": rec.index, "offset": rec.offset}
        f.update(fields)
        return TlsEvent(rec.frame, rec.first_frame, d.d, "error", name, f, None, why)

    def _content(self, d: _Direction, rec: _Record, ctype: int, data: bytes, encrypted: bool,
                 seq: int | None) -> list[TlsEvent]:
        base = {"record": rec.index, "offset": rec.offset, "encrypted": encrypted}
        if encrypted:
            base["seq"] = seq
            base["epoch"] = self._epoch_name(d)
        if ctype == 23:
            self.stats["application_bytes"][d.d] += len(data)
            f = dict(base, length=len(data))
            return [TlsEvent(rec.frame, rec.first_frame, d.d, "application_data", "ApplicationData",
                             f, data, None)]
        if ctype == 20:
            return self._ccs(d, rec, data, base)
        if ctype == 21:
            return self._alerts(d, rec, data, base)
        if ctype == 22:
            return self._handshake_bytes(d, rec, data, encrypted, base)
        if ctype == 24:
            return [TlsEvent(rec.frame, rec.first_frame, d.d, "error", "Heartbeat",
                             dict(base, length=len(data)), None,
                             "heartbeat record (RFC 6520), not expected in ISO 15118 traffic")]
        return [self._error(rec, d, "Unknown content type",
                            f"inner content type {ctype} is not a TLS content type",
                            content_type=ctype)]

    def _ccs(self, d: _Direction, rec: _Record, data: bytes, base: dict) -> list[TlsEvent]:
        f = dict(base)
        err = None
        if data != b"\x01":
            err = f"ChangeCipherSpec body {data.hex()} (expected 01)"
        if self._tls13:
            f["compatibility"] = True    # RFC 8446 §5 / Appendix D.4: middlebox compatibility
        else:
            d.epoch += 1
            d.seq = 0
            d.window = 0
            d.params = self._hello
            f["epoch"] = self._epoch_name(d)
            if d.hs_buf:
                err = (f"{err}; " if err else "") + (
                    f"{len(d.hs_buf)} bytes of an unfinished handshake message dropped at "
                    "ChangeCipherSpec (RFC 5246 §7.1: handshake messages must not span it)")
                d.hs_buf.clear()
        return [TlsEvent(rec.frame, rec.first_frame, d.d, "change_cipher_spec", "ChangeCipherSpec",
                         f, None, err)]

    def _alerts(self, d: _Direction, rec: _Record, data: bytes, base: dict) -> list[TlsEvent]:
        if not data or len(data) % 2:
            return [self._error(rec, d, "Malformed alert",
                                f"alert record of {len(data)} bytes (alerts are 2 bytes)",
                                alert=data.hex())]
        out = []
        for i in range(0, len(data), 2):
            level, desc = data[i], data[i + 1]
            lname = ALERT_LEVELS.get(level, f"level {level}")
            dname = ALERT_DESCRIPTIONS.get(desc, f"description {desc}")
            f = dict(base, level=level, level_name=lname, description=desc, description_name=dname)
            out.append(TlsEvent(rec.frame, rec.first_frame, d.d, "alert", f"Alert {lname} {dname}",
                                f, None, None))
        return out

    def _handshake_bytes(self, d: _Direction, rec: _Record, data: bytes, encrypted: bool,
                         base: dict) -> list[TlsEvent]:
        out: list[TlsEvent] = []
        if not d.hs_buf:
            d.hs_first_frame = rec.first_frame
        d.hs_buf += data
        while len(d.hs_buf) >= 4:
            mtype = d.hs_buf[0]
            mlen = int.from_bytes(d.hs_buf[1:4], "big")
            if mlen > self.max_handshake_bytes:
                out.append(self._error(rec, d, "Handshake message too long",
                                       f"{HANDSHAKE_TYPES.get(mtype, mtype)} announces {mlen} "
                                       f"bytes (more than {self.max_handshake_bytes}); handshake "
                                       "bytes of this record dropped"))
                d.hs_buf.clear()
                break
            if len(d.hs_buf) < 4 + mlen:
                break
            body = bytes(d.hs_buf[4:4 + mlen])
            del d.hs_buf[:4 + mlen]
            out += self._handshake(d, rec, mtype, body, d.hs_first_frame, dict(base))
            d.hs_first_frame = rec.first_frame      # a following message starts in this record
        return out

    # -- handshake messages ----------------------------------------------------------------

    def _handshake(self, d: _Direction, rec: _Record, mtype: int, body: bytes, first_frame: int,
                   fields: dict) -> list[TlsEvent]:
        name = HANDSHAKE_TYPES.get(mtype, f"Handshake type {mtype}")
        fields["handshake_type"] = mtype
        fields["length"] = len(body)
        err = None
        try:
            if mtype in (1, 2) and d.d != mtype - 1:
                err = f"{name} sent by the {'client' if d.d == 0 else 'server'}; ignored"
            elif mtype == 1:
                self._client_hello(d, body, fields)
            elif mtype == 2:
                if body[2:34] == HRR_RANDOM:
                    name = "HelloRetryRequest"
                self._server_hello(d, body, fields)
            elif mtype == 4:
                self._new_session_ticket(body, fields)
            elif mtype == 8:
                self._encrypted_extensions(body, fields)
            elif mtype == 11:
                self._certificate(d, body, fields)
            elif mtype == 12:
                self._server_key_exchange(body, fields)
            elif mtype == 13:
                self._certificate_request(body, fields)
            elif mtype == 15:
                r = _Reader(body, "CertificateVerify")
                scheme = r.u16()
                fields["signature_algorithm"] = _name(SIGNATURE_SCHEMES, scheme)
                fields["signature_length"] = len(r.vec(2))
            elif mtype == 16:
                self._client_key_exchange(body, fields)
            elif mtype == 20:
                fields["verify_data"] = body.hex()
                if self._tls13 and d.epoch == 0:
                    d.pending_change = True
            elif mtype == 24:
                r = _Reader(body, "KeyUpdate")
                req = r.u8()
                fields["request_update"] = {0: "update_not_requested",
                                            1: "update_requested"}.get(req, str(req))
                if self._tls13 and d.epoch >= 1:
                    d.pending_change = True
            elif mtype == 5:
                if self._tls13 and d.epoch < 0:
                    d.pending_change = True
            elif mtype == 22:
                r = _Reader(body, "CertificateStatus")
                st = r.u8()
                fields["status_type"] = {1: "ocsp", 2: "ocsp_multi"}.get(st, str(st))
                resp = r.vec(3)
                fields["response_length"] = len(resp)
                if st == 1:
                    fields["ocsp"] = self.ocsp = describe_ocsp(resp, self._server_ders)
            elif mtype in (0, 14) and body:
                err = f"{name} should be empty but holds {len(body)} bytes"
        except _Malformed as exc:
            err = f"malformed {name}: {exc}"
        except Exception as exc:    # anything else a hostile message may provoke
            err = f"malformed {name}: {exc!r}"
        return [TlsEvent(rec.frame, first_frame, d.d, "handshake", name, fields, None, err)]

    def _client_hello(self, d: _Direction, body: bytes, f: dict) -> None:
        r = _Reader(body, "ClientHello")
        legacy = r.u16()
        random = r.take(32)
        # the random is the key log's key: remember it before anything else can fail
        if self._client_random is None:
            self._client_random = random
        if self._cr is not None and random != self._cr and not self._hrr:
            f["renegotiation"] = True
        self._cr = random
        f["legacy_version"] = version_name(legacy)
        f["random"] = random.hex()
        f["session_id"] = r.vec(1).hex()
        suites = r.sub(2, "cipher_suites").u16_list()
        f["cipher_suites"] = [cipher_suite_name(s) for s in suites]
        f["compression_methods"] = list(r.vec(1))
        exts = _parse_extensions(r)
        f["extensions"] = [_name(EXTENSIONS, t) for t, _ in exts]
        offered = None
        early = False
        for t, data in exts:
            x = _Reader(data, _name(EXTENSIONS, t))
            if t == 0:
                names = x.sub(2, "server_name_list")
                hosts = []
                while names.left:
                    nt = names.u8()
                    host = names.vec(2)
                    if nt == 0:
                        hosts.append(host.decode("utf-8", "replace"))
                if hosts:
                    f["server_name"] = hosts[0]
                    self._sni = hosts[0]
            elif t == 1:
                v = x.u8()
                f["max_fragment_length"] = {1: 512, 2: 1024, 3: 2048, 4: 4096}.get(v, v)
            elif t == 3:
                f["trusted_ca_keys"] = self._trusted_ca = self._trusted_ca_keys(x)
            elif t == 5:
                st = x.u8()
                f["status_request"] = {1: "ocsp"}.get(st, str(st))
                self.ocsp_asked = True
            elif t == 10:
                f["supported_groups"] = [_name(GROUPS, g) for g in x.sub(2, "groups").u16_list()]
            elif t == 11:
                f["ec_point_formats"] = [_EC_POINT_FORMATS.get(p, str(p)) for p in x.vec(1)]
            elif t == 13:
                f["signature_algorithms"] = [_name(SIGNATURE_SCHEMES, s)
                                             for s in x.sub(2, "signature_algorithms").u16_list()]
            elif t == 50:
                f["signature_algorithms_cert"] = [
                    _name(SIGNATURE_SCHEMES, s) for s in x.sub(2, "signature_algorithms_cert").u16_list()]
            elif t == 16:
                f["alpn"] = self._alpn_list(x)
            elif t == 22:
                f["encrypt_then_mac"] = True
            elif t == 23:
                f["extended_master_secret"] = True
            elif t == 28:
                f["record_size_limit"] = x.u16()
            elif t == 35:
                f["session_ticket"] = len(data)
            elif t == 41:
                ids = x.sub(2, "identities")
                n = 0
                while ids.left:
                    ids.vec(2)
                    ids.u32()
                    n += 1
                f["pre_shared_key_identities"] = n
            elif t == 42:
                early = True
                f["early_data"] = True
            elif t == 43:
                offered = [version_name(v) for v in _Reader(x.vec(1), "versions").u16_list()]
                f["supported_versions"] = offered
            elif t == 45:
                f["psk_key_exchange_modes"] = [_PSK_MODES.get(m, str(m)) for m in x.vec(1)]
            elif t == 49:
                f["post_handshake_auth"] = True
            elif t == 51:
                shares = x.sub(2, "client_shares")
                groups = []
                while shares.left:
                    groups.append(_name(GROUPS, shares.u16()))
                    shares.vec(2)
                f["key_share_groups"] = groups
            elif t == 65281:
                f["renegotiation_info"] = True
        f["offered_versions"] = offered if offered is not None else [version_name(legacy)]
        if not self._hrr:
            self._early_offered = early

    @staticmethod
    def _alpn_list(x: _Reader) -> list[str]:
        lst = x.sub(2, "protocol_name_list")
        out = []
        while lst.left:
            out.append(lst.vec(1).decode("utf-8", "replace"))
        return out

    @staticmethod
    def _trusted_ca_keys(x: _Reader) -> list[dict]:
        """RFC 6066 §6 TrustedAuthorities (ISO 15118-2 EVCCs list their V2G root CAs here)."""
        lst = x.sub(2, "trusted_authorities_list")
        out = []
        while lst.left:
            t = lst.u8()
            item = {"type": _TRUSTED_CA_TYPES.get(t, str(t))}
            if t in (1, 3):
                item["sha1"] = lst.take(20).hex()
            elif t == 2:
                der = lst.vec(2)
                item["name"] = describe_name(der) or der.hex()
                item["name_der"] = der.hex()
            elif t != 0:
                item["data"] = lst.take(lst.left).hex()
            out.append(item)
        return out

    def _server_hello(self, d: _Direction, body: bytes, f: dict) -> None:
        r = _Reader(body, "ServerHello")
        legacy = r.u16()
        random = r.take(32)
        hrr = random == HRR_RANDOM
        session_id = r.vec(1)
        suite = r.u16()
        compression = r.u8()
        exts = _parse_extensions(r)
        version = legacy
        etm = ems = False
        f["legacy_version"] = version_name(legacy)
        f["random"] = random.hex()
        f["session_id"] = session_id.hex()
        f["cipher_suite"] = cipher_suite_name(suite)
        f["compression_method"] = compression
        f["extensions"] = [_name(EXTENSIONS, t) for t, _ in exts]
        f["hello_retry_request"] = hrr
        for t, data in exts:
            x = _Reader(data, _name(EXTENSIONS, t))
            if t == 43:
                version = x.u16()
            elif t == 51:
                g = _name(GROUPS, x.u16())
                f["group"] = g
                self._group = g
            elif t == 22:
                etm = True
            elif t == 23:
                ems = True
            elif t == 16:
                alpn = self._alpn_list(x)
                if alpn:
                    f["alpn"] = alpn[0]
                    self._alpn = alpn[0]
            elif t == 41:
                f["pre_shared_key_selected"] = x.u16()
            elif t == 44:
                f["cookie_length"] = len(x.vec(2))
            elif t == 1:
                f["max_fragment_length"] = {1: 512, 2: 1024, 3: 2048, 4: 4096}.get(x.u8())
            elif t == 28:
                f["record_size_limit"] = x.u16()
            elif t == 5:
                f["status_request"] = True
        f["version"] = version_name(version)
        f["encrypt_then_mac"] = etm
        f["extended_master_secret"] = ems
        if random[-8:] in _DOWNGRADE and version <= 0x0303:
            f["downgrade_sentinel"] = _DOWNGRADE[random[-8:]]
        self._version = version
        self._suite = suite
        self._tls13 = version == 0x0304
        if hrr:
            self._hrr = True
            return
        self._server_random = random
        self._etm = etm
        self._hello = _Hello(self._cr, random, suite, version, self._etm)
        if self._tls13:
            s, c = self._dirs[1], self._dirs[0]
            s.epoch, s.seq, s.window = 0, 0, 0
            c.epoch = -1 if (self._early_offered and not self._hrr) else 0
            c.seq = 0

    def _encrypted_extensions(self, body: bytes, f: dict) -> None:
        r = _Reader(body, "EncryptedExtensions")
        exts = _parse_extensions(r)
        f["extensions"] = [_name(EXTENSIONS, t) for t, _ in exts]
        for t, data in exts:
            x = _Reader(data, _name(EXTENSIONS, t))
            if t == 16:
                alpn = self._alpn_list(x)
                if alpn:
                    f["alpn"] = alpn[0]
                    self._alpn = alpn[0]
            elif t == 42:
                f["early_data_accepted"] = True
            elif t == 0:
                f["server_name_acknowledged"] = True
            elif t == 10:
                f["supported_groups"] = [_name(GROUPS, g) for g in x.sub(2, "groups").u16_list()]
            elif t == 28:
                f["record_size_limit"] = x.u16()
            elif t == 1:
                f["max_fragment_length"] = {1: 512, 2: 1024, 3: 2048, 4: 4096}.get(x.u8())

    def _certificate(self, d: _Direction, body: bytes, f: dict) -> None:
        r = _Reader(body, "Certificate")
        ders = []
        entry_exts = []
        staple = None
        if self._tls13:
            ctx = r.vec(1)
            if ctx:
                f["request_context"] = ctx.hex()
            lst = r.sub(3, "certificate_list")
            while lst.left:
                ders.append(lst.vec(3))
                exts = _parse_extensions(lst)
                entry_exts.append([_name(EXTENSIONS, t) for t, _ in exts])
                for t, data in exts:        # RFC 8446 §4.4.2.1: the leaf's OCSP response
                    if t == 5 and len(ders) == 1 and len(data) > 4 and data[0] == 1:
                        staple = data[4:4 + int.from_bytes(data[1:4], "big")]
        else:
            lst = r.sub(3, "certificate_list")
            while lst.left:
                ders.append(lst.vec(3))
        chain = describe_chain(ders)
        for c, e in zip(chain, entry_exts):
            if e:
                c["tls_extensions"] = e
        if ders and not any(c.get("error") for c in chain):
            f["trust"] = anchor_chain(ders, None, self.trust)
            if d.d == 1 and self._trusted_ca:          # RFC 6066 §6: a chain under a listed root?
                f["trusted_ca_keys"] = trusted_ca_match(self._trusted_ca, ders, self.trust, f["trust"])
        f["count"] = len(chain)
        f["certificates"] = chain
        f["subjects"] = [c.get("subject") for c in chain]
        f["sender"] = "server" if d.d == 1 else "client"
        if d.d == 1:
            self.server_certificates = chain
            self._server_ders = ders
            if staple is not None:
                f["ocsp"] = self.ocsp = describe_ocsp(staple, ders)
        else:
            self.client_certificates = chain

    def _kx(self) -> str:
        name = cipher_suite_name(self._suite) if self._suite is not None else ""
        if "_WITH_" not in name:
            return ""
        return name[4:name.index("_WITH_")]

    def _server_key_exchange(self, body: bytes, f: dict) -> None:
        r = _Reader(body, "ServerKeyExchange")
        kx = self._kx()
        f["key_exchange"] = kx or None
        if "PSK" in kx:
            f["psk_identity_hint_length"] = len(r.vec(2))
        if kx.startswith("ECDHE") or kx.startswith("ECDH_anon"):
            curve_type = r.u8()
            if curve_type != 3:
                f["curve_type"] = curve_type
                return
            g = _name(GROUPS, r.u16())
            f["group"] = g
            self._group = g
            f["public_key_length"] = len(r.vec(1))
        elif kx.startswith("DHE") or kx.startswith("DH_anon"):
            p = r.vec(2)
            r.vec(2)
            f["dh_p_bits"] = len(p.lstrip(b"\x00")) * 8
            f["public_key_length"] = len(r.vec(2))
        else:
            return
        if r.left and "anon" not in kx and "PSK" not in kx:
            if self._version is not None and self._version >= 0x0303:
                f["signature_algorithm"] = _name(SIGNATURE_SCHEMES, r.u16())
            f["signature_length"] = len(r.vec(2))

    def _client_key_exchange(self, body: bytes, f: dict) -> None:
        r = _Reader(body, "ClientKeyExchange")
        kx = self._kx()
        f["key_exchange"] = kx or None
        if "PSK" in kx:
            f["psk_identity"] = r.vec(2).decode("utf-8", "replace")
            if kx.endswith("PSK") and kx == "PSK":
                return
        if kx.startswith("ECDH"):
            f["public_key_length"] = len(r.vec(1))
        elif kx.startswith("RSA") or kx.startswith("DH"):
            f["public_key_length"] = len(r.vec(2))

    def _certificate_request(self, body: bytes, f: dict) -> None:
        r = _Reader(body, "CertificateRequest")
        cas = []
        if self._tls13:
            ctx = r.vec(1)
            if ctx:
                f["request_context"] = ctx.hex()
            exts = _parse_extensions(r)
            f["extensions"] = [_name(EXTENSIONS, t) for t, _ in exts]
            for t, data in exts:
                x = _Reader(data, _name(EXTENSIONS, t))
                if t == 13:
                    f["signature_algorithms"] = [_name(SIGNATURE_SCHEMES, s)
                                                 for s in x.sub(2, "signature_algorithms").u16_list()]
                elif t == 50:
                    f["signature_algorithms_cert"] = [
                        _name(SIGNATURE_SCHEMES, s) for s in x.sub(2, "sig_algs_cert").u16_list()]
                elif t == 47:
                    lst = x.sub(2, "certificate_authorities")
                    while lst.left:
                        cas.append(lst.vec(2))
        else:
            f["certificate_types"] = [_CERT_TYPES.get(t, str(t)) for t in r.vec(1)]
            if self._version is not None and self._version >= 0x0303:
                f["signature_algorithms"] = [_name(SIGNATURE_SCHEMES, s)
                                             for s in r.sub(2, "signature_algorithms").u16_list()]
            lst = r.sub(2, "certificate_authorities")
            while lst.left:
                cas.append(lst.vec(2))
        f["certificate_authorities"] = [describe_name(c) or c.hex() for c in cas]

    def _new_session_ticket(self, body: bytes, f: dict) -> None:
        r = _Reader(body, "NewSessionTicket")
        if self._tls13:
            f["lifetime_s"] = r.u32()
            r.u32()                                    # ticket_age_add
            f["nonce"] = r.vec(1).hex()
            f["ticket_length"] = len(r.vec(2))
            for t, data in _parse_extensions(r):
                if t == 42 and len(data) == 4:
                    f["max_early_data_size"] = int.from_bytes(data, "big")
        else:
            f["lifetime_hint_s"] = r.u32()
            f["ticket_length"] = len(r.vec(2))

    # -- gaps and the end ------------------------------------------------------------------

    def _gap(self, direction: int, missing: int, frame: int) -> list[TlsEvent]:
        if direction not in (0, 1):
            return [TlsEvent(frame, frame, 0, "error", "Bad direction", {}, None,
                             f"direction must be 0 or 1, not {direction!r}")]
        d = self._dirs[direction]
        if missing == 0:
            return []
        events: list[TlsEvent] = []
        if self._not_tls:
            return events
        fields = {"missing_bytes": missing, "offset": d.base + len(d.buf)}
        # lost inside the skip region of an earlier gap
        if d.skip:
            if missing < d.skip:
                d.skip -= missing
                d.base += missing
                return [TlsEvent(frame, frame, d.d, "error", "Bytes missing", fields, None,
                                 f"{missing} bytes of the {_DIR_WORDS[d.d]} stream missing from "
                                 "the capture (inside a record already lost)")]
            missing -= d.skip
            d.base += d.skip
            d.skip = 0
        seq_skip = 0
        window = 0
        why = ""
        first = d.frame_at(d.base) if d.buf else frame
        if d.resyncing:
            window = missing // _MIN_PROTECTED_RECORD + 1
            d.resync_skipped += len(d.buf)
            why = "while resynchronising"
            d.base += len(d.buf) + missing
        elif len(d.buf) >= 5:
            length = (d.buf[3] << 8) | d.buf[4]
            rec_end = d.base + 5 + length
            lost_end = d.base + len(d.buf) + missing
            seq_skip = 1
            why = (f"the {CONTENT_TYPES.get(d.buf[0], d.buf[0])} record at stream offset {d.base} "
                   f"({len(d.buf)} of {5 + length} bytes captured) is lost")
            if rec_end >= lost_end:
                d.skip = rec_end - lost_end
                d.base = lost_end
            else:
                window = (lost_end - rec_end) // _MIN_PROTECTED_RECORD + 1
                d.base = lost_end
                d.resyncing = True
                why += "; later records may be lost too, resynchronising"
        else:
            window = missing // _MIN_PROTECTED_RECORD + 1
            d.base += len(d.buf) + missing
            d.resyncing = True
            why = "record boundary lost, resynchronising"
        d.buf.clear()
        d.chunks = []
        if d.resyncing and not d.resync_skipped:
            d.resync_first = frame
        marker = _Marker("gap", seq_skip=seq_skip, window=window)
        if d.queue:
            d.queue.append(marker)
        else:
            self._apply_marker(d, marker)
        fields["records_lost_at_least"] = seq_skip
        events.append(TlsEvent(frame, first, d.d, "error", "Bytes missing", fields, None,
                               f"{missing} bytes of the {_DIR_WORDS[d.d]} TLS stream missing "
                               f"from the capture: {why}"))
        return events

    def _close(self, frame: int) -> list[TlsEvent]:
        events = []
        if self._dirs[0].queue or self._dirs[1].queue:
            self._kl_version = self.keylog.version
            events += self._drain(frame)
        if self._not_tls:
            return events
        for d in self._dirs:
            if d.resyncing and (d.resync_skipped or d.buf):
                n = d.resync_skipped + len(d.buf)
                events.append(TlsEvent(frame, d.resync_first or frame, d.d, "error",
                                       "Not a TLS record", {"skipped_bytes": n}, None,
                                       f"stream ends after {n} bytes that are not TLS records"))
            elif d.buf:
                first = d.frame_at(d.base)
                if len(d.buf) >= 5:
                    length = (d.buf[3] << 8) | d.buf[4]
                    why = (f"stream ends inside a {CONTENT_TYPES.get(d.buf[0], d.buf[0])} record: "
                           f"{len(d.buf)} of {5 + length} bytes")
                else:
                    why = f"stream ends inside a record header ({len(d.buf)} bytes)"
                events.append(TlsEvent(frame, first, d.d, "error", "Partial record",
                                       {"offset": d.base, "bytes": len(d.buf)}, None, why))
            if d.hs_buf:
                mtype = d.hs_buf[0]
                events.append(TlsEvent(frame, d.hs_first_frame or frame, d.d, "error",
                                       "Partial handshake message",
                                       {"handshake_type": mtype, "bytes": len(d.hs_buf)}, None,
                                       f"connection ends inside a "
                                       f"{HANDSHAKE_TYPES.get(mtype, mtype)} message "
                                       f"({len(d.hs_buf)} bytes)"))
            why = self._missing_secrets(d)
            for item in d.queue:
                if isinstance(item, _Record):
                    self.stats["undecryptable"][d.d] += 1
                    events.append(self._encrypted_event(d, item, why))
            d.queue.clear()
            d.buf.clear()
            d.chunks = []
            d.hs_buf.clear()
            d.resyncing = False
            d.resync_skipped = 0
        self._held = 0
        return events

