"""The plaintext TLS records the simulator can produce: a TLS 1.2 ClientHello as an ISO 15118-2
EVCC sends it and an alert. Everything after the handshake is encrypted, which the simulator
does not do (docs/simulator.md, "Out of reach").

Sources: RFC 5246 §6.2.1 (record layer), §7.4.1.2 (ClientHello), §7.2 (alerts); RFC 8422 §5.1
(supported_groups, ec_point_formats); RFC 5289 (TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 0xC023,
TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 0xC025 — the ISO 15118-2 suites, PROTOCOL_FACTS §1.5).
"""
from __future__ import annotations

import random
import struct

ALERTS = {"close_notify": 0, "unexpected_message": 10, "handshake_failure": 40, "bad_certificate": 42,
          "certificate_expired": 45, "certificate_unknown": 46, "unknown_ca": 48, "decode_error": 50,
          "protocol_version": 70, "insufficient_security": 71, "internal_error": 80}


def record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    """A TLS record: type, version, length, fragment (RFC 5246 §6.2.1)."""
    return struct.pack("!BHH", content_type, version, len(body)) + body


def _ext(kind: int, data: bytes) -> bytes:
    return struct.pack("!HH", kind, len(data)) + data


def client_hello(rng: random.Random) -> bytes:
    """A TLS 1.2 ClientHello record offering the two ISO 15118-2 cipher suites."""
    suites = struct.pack("!HHH", 4, 0xC023, 0xC025)
    exts = (_ext(10, struct.pack("!HH", 2, 23))                 # supported_groups: secp256r1
            + _ext(11, bytes([1, 0]))                           # ec_point_formats: uncompressed
            + _ext(13, struct.pack("!HH", 2, 0x0403)))          # signature_algorithms: ecdsa_secp256r1_sha256
    body = (struct.pack("!H", 0x0303) + bytes(rng.randrange(256) for _ in range(32)) + b"\x00"
            + suites + bytes([1, 0]) + struct.pack("!H", len(exts)) + exts)
    hs = struct.pack("!B", 1) + len(body).to_bytes(3, "big") + body
    return record(22, hs)


def alert_record(name: str = "handshake_failure", fatal: bool = True) -> bytes:
    """An alert record (RFC 5246 §7.2): level 2 (fatal) or 1 (warning), description."""
    if name not in ALERTS:
        raise ValueError(f"unknown TLS alert {name!r}; one of {', '.join(ALERTS)}")
    return record(21, bytes([2 if fatal else 1, ALERTS[name]]))
