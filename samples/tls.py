"""TLS as ISO 15118 stacks speak it, deterministic: the records of a whole TLS 1.2 or TLS 1.3
session — handshake, certificates, application data carrying V2GTP, alerts — built from the
simulator's seed, and the NSS key log lines that let a reader decrypt them.

* **TLS 1.2** (ISO 15118-2, [V2G2-602], PROTOCOL_FACTS §1.4): server authentication,
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (RFC 5289: AES-128-CBC + HMAC-SHA256, explicit IV,
  MAC-then-encrypt, RFC 5246 §6.2.3.2) on secp256r1; ClientHello, ServerHello, Certificate,
  ServerKeyExchange (ECDHE parameters signed with the SECC's key, RFC 8422 §5.4),
  [CertificateRequest], ServerHelloDone, [Certificate], ClientKeyExchange, [CertificateVerify],
  ChangeCipherSpec, Finished (RFC 5246 §7.4); AES-GCM suites (RFC 5288) for the faults that
  need them. Key log: ``CLIENT_RANDOM <client random> <master secret>``.
* **TLS 1.3** (ISO 15118-20, [V2G20-1237], [V2G20-2458], [V2G20-1634]): TLS_AES_256_GCM_SHA384,
  key exchange x448, mutual authentication: ServerHello, then encrypted EncryptedExtensions,
  CertificateRequest, Certificate, CertificateVerify, Finished; the client's Certificate,
  CertificateVerify, Finished (RFC 8446 §4, key schedule §7.1, record protection §5.2).
  Key log: the four handshake and application traffic secrets.

Every random value (hello randoms, session IDs, key shares, CBC IVs) comes from a
``random.Random`` seeded by the simulator; the certificates' keys are derived from the seed
and a fixed label; ECDSA signatures (certificates, ServerKeyExchange, CertificateVerify) are
deterministic (RFC 6979, ``cryptography`` ≥ 44: ``ECDSA(..., deterministic_signing=True)``), so
the same seed gives the same bytes. Every primitive (ECDH, X25519 / X448, ECDSA, HMAC,
HKDF-Expand, AES-CBC, AES-GCM, ChaCha20-Poly1305) comes from ``cryptography``; what is written
here is the TLS framing: the PRF (RFC 5246 §5), the TLS 1.3 key schedule (RFC 8446 §7.1), the
record formats. The reader that must decrypt it is dissectors/tls.py + tls_crypto.py (and
Wireshark with the key log); tests/samples/test_tls_sim.py checks both.

The plain records of the fault ``tls_handshake_failure`` (a lone ClientHello and an alert)
are here too: :func:`client_hello`, :func:`alert_record`.

Sources: RFC 5246 (TLS 1.2), RFC 8446 (TLS 1.3), RFC 8422 (ECC cipher suites), RFC 5289 (ECDHE
SHA-256/384 suites), RFC 5288 (GCM), RFC 7748 (X25519 / X448), RFC 6979 (deterministic ECDSA),
RFC 5280 (certificates); ISO 15118-2 §7.7.3 / Annex F, ISO 15118-20 §7.7.3 (PROTOCOL_FACTS §1.4).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import random
import struct
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.x509.oid import NameOID

from ccs_analyzer.dissectors.x509info import der_tlv

ALERTS = {"close_notify": 0, "unexpected_message": 10, "handshake_failure": 40, "bad_certificate": 42,
          "certificate_expired": 45, "certificate_unknown": 46, "unknown_ca": 48, "decode_error": 50,
          "protocol_version": 70, "insufficient_security": 71, "internal_error": 80,
          "certificate_required": 116}

CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APP = 20, 21, 22, 23
VERSIONS = {"TLS 1.2": 0x0303, "TLS 1.3": 0x0304}

#: The cipher suites the simulator can write: code, TLS 1.3?, cipher, key bytes, fixed IV
#: bytes, MAC hash (CBC) and the PRF / HKDF hash (RFC 5289, RFC 5288, RFC 8446 §B.4).
SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": (0xC023, False, "CBC", 16, 0, "SHA256", "SHA256"),
    "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256": (0xC025, False, "CBC", 16, 0, "SHA256", "SHA256"),
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": (0xC02B, False, "GCM", 16, 4, None, "SHA256"),
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": (0xC02C, False, "GCM", 32, 4, None, "SHA384"),
    "TLS_AES_128_GCM_SHA256": (0x1301, True, "GCM", 16, 12, None, "SHA256"),
    "TLS_AES_256_GCM_SHA384": (0x1302, True, "GCM", 32, 12, None, "SHA384"),
    "TLS_CHACHA20_POLY1305_SHA256": (0x1303, True, "CHACHA20", 32, 12, None, "SHA256"),
}
#: Named groups (RFC 8446 §4.2.7).
GROUPS = {"secp256r1": 23, "secp384r1": 24, "secp521r1": 25, "x25519": 29, "x448": 30}
_CURVES = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1, "secp521r1": ec.SECP521R1}
#: ECDSA signature schemes by curve (RFC 8446 §4.2.3; TLS 1.2 SignatureAndHashAlgorithm).
_SIG = {"secp256r1": (0x0403, hashes.SHA256), "secp384r1": (0x0503, hashes.SHA384),
        "secp521r1": (0x0603, hashes.SHA512)}
_HASH = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384}
_HASHLIB = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384}

#: The TLS profiles of the application protocols: ISO 15118-2 [V2G2-602] (Table 7), ISO
#: 15118-20 [V2G20-2458] (Table 6), [V2G20-1634] (groups), PROTOCOL_FACTS §1.4.
PROFILES = {
    "ISO 15118-2": dict(version="TLS 1.2", offered_versions=["TLS 1.2"],
                        suite="TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
                        offered_suites=["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
                                        "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"],
                        group="secp256r1", offered_groups=["secp256r1"], curve="secp256r1",
                        mutual=False),
    "ISO 15118-20": dict(version="TLS 1.3", offered_versions=["TLS 1.3"],
                         suite="TLS_AES_256_GCM_SHA384",
                         offered_suites=["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"],
                         group="x448", offered_groups=["x448", "secp521r1"], curve="secp521r1",
                         mutual=True),
}
PROFILES["DIN 70121"] = PROFILES["ISO 15118-2"]      # DIN has no TLS; a faulty SECC uses ISO-2's


class TlsSimError(ValueError):
    """A TLS plan the simulator cannot write (unknown suite or group, impossible combination)."""


# ------------------------------------------------------------------------------ certificates
@dataclass(frozen=True)
class CertSpec:
    """One certificate of a chain: subject CN, the domain component (V2G, CPO, OEM), its key's
    curve, validity (ISO dates), CA or leaf, key usage (names of x509.KeyUsage arguments)."""

    cn: str
    dc: str
    curve: str
    not_before: str
    not_after: str
    ca: bool
    key_usage: tuple = ("digital_signature", "key_agreement")
    path_length: int | None = None


def default_chain(role: str, curve: str, protocol: str) -> list[CertSpec]:
    """The chain of ``role`` ("server": SECC certificate ← CPO Sub-CA 2 ← CPO Sub-CA 1 ← V2G
    root; "client": the -20 vehicle certificate ← OEM Sub-CA 2 ← OEM Sub-CA 1 ← OEM root),
    leaf first, root last (ISO 15118-2 Annex F / ISO 15118-20 Annex C: up to two Sub-CAs).
    Validity brackets the simulator's default capture date 2026-01-01."""
    ca_ku = ("key_cert_sign", "crl_sign")
    if role == "server":
        names = [("SECC DE*SIM*E0001", "CPO"), ("CPO SubCA2 Sim", "CPO"), ("CPO SubCA1 Sim", "CPO"),
                 ("V2G RootCA Sim", "V2G")]
    else:
        names = [("Vehicle WSIMEV00000000001", "OEM"), ("OEM SubCA2 Sim", "OEM"),
                 ("OEM SubCA1 Sim", "OEM"), ("OEM RootCA Sim", "OEM")]
    leaf_ku = ("digital_signature", "key_agreement") if protocol != "ISO 15118-20" else ("digital_signature",)
    return [CertSpec(names[0][0], names[0][1], curve, "2025-06-01", "2027-06-01", False, leaf_ku),
            CertSpec(names[1][0], names[1][1], curve, "2025-01-01", "2029-01-01", True, ca_ku, 0),
            CertSpec(names[2][0], names[2][1], curve, "2025-01-01", "2031-01-01", True, ca_ku, 1),
            CertSpec(names[3][0], names[3][1], curve, "2025-01-01", "2035-01-01", True, ca_ku, 2)]


def _derived_key(curve: str, *labels) -> ec.EllipticCurvePrivateKey:
    """A private key derived from ``labels`` (the seed and the certificate's role): the same
    labels give the same key."""
    c = _CURVES[curve]()
    r = random.Random("/".join(str(x) for x in ("pki",) + labels))
    return ec.derive_private_key(r.getrandbits(c.key_size - 1) | 1, c)


def _name(cn: str, dc: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ccs-analyzer simulator"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc)])


def _date(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc)


def _key_usage(names) -> x509.KeyUsage:
    args = {k: k in names for k in ("digital_signature", "content_commitment", "key_encipherment",
                                    "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")}
    return x509.KeyUsage(**args, encipher_only=False, decipher_only=False)


@lru_cache(maxsize=64)
def build_chain(specs: tuple, seed: int, role: str) -> tuple:
    """DER certificates and private keys of a chain (leaf first, root last): each certificate
    issued and signed (deterministic ECDSA, hash by curve) by the next, the root self-signed.
    Returns ((der, …), (key, …))."""
    keys = [_derived_key(s.curve, seed, role, i, s.cn) for i, s in enumerate(specs)]
    ders: list[bytes] = [b""] * len(specs)
    for i in range(len(specs) - 1, -1, -1):
        s = specs[i]
        issuer_i = min(i + 1, len(specs) - 1)
        issuer = specs[issuer_i]
        pub = keys[i].public_key()
        b = (x509.CertificateBuilder()
             .subject_name(_name(s.cn, s.dc)).issuer_name(_name(issuer.cn, issuer.dc))
             .public_key(pub)
             .serial_number(int.from_bytes(hashlib.sha256(f"{seed}/{role}/{i}/{s.cn}".encode()).digest()[:8],
                                           "big") | 1)
             .not_valid_before(_date(s.not_before)).not_valid_after(_date(s.not_after))
             .add_extension(x509.BasicConstraints(ca=s.ca, path_length=s.path_length if s.ca else None),
                            critical=True)
             .add_extension(_key_usage(s.key_usage), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(keys[issuer_i].public_key()),
                            critical=False))
        h = _SIG[issuer.curve][1]()
        cert = b.sign(keys[issuer_i], h, ecdsa_deterministic=True)
        ders[i] = cert.public_bytes(serialization.Encoding.DER)
    return tuple(ders), tuple(keys)


def _gtime(t: dt.datetime) -> bytes:
    return der_tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


def _int(v: int) -> bytes:
    return der_tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


#: The moment the simulator's OCSP responses speak about (the default capture date).
OCSP_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def ocsp_response(leaf_der: bytes, issuer_der: bytes, issuer_key, status: str = "good") -> bytes:
    """A successful OCSP response (RFC 6960 §4.2.1) for ``leaf_der``, signed by its issuer
    (``issuer_key``, ECDSA SHA-256, deterministic: the same bytes every time): CertID with
    SHA-1 hashes of the issuer's name and key, ``status`` "good", "revoked" (keyCompromise, a
    day before :data:`OCSP_TIME`) or "unknown", thisUpdate an hour before and nextUpdate a
    week after :data:`OCSP_TIME`, responder by key hash. Written here rather than with
    cryptography's OCSPResponseBuilder, which stamps producedAt with the wall clock and
    signs with random nonces."""
    from ccs_analyzer.dissectors.ocsp import issuer_key_hash
    leaf = x509.load_der_x509_certificate(leaf_der)
    issuer = x509.load_der_x509_certificate(issuer_der)
    key_hash = issuer_key_hash(issuer)
    sha1_alg = der_tlv(0x30, der_tlv(0x06, bytes.fromhex("2b0e03021a")) + b"\x05\x00")
    cert_id = der_tlv(0x30, sha1_alg + der_tlv(0x04, hashlib.sha1(issuer.subject.public_bytes()).digest())
                   + der_tlv(0x04, key_hash) + _int(leaf.serial_number))
    if status == "good":
        cert_status = b"\x80\x00"
    elif status == "revoked":
        cert_status = der_tlv(0xA1, _gtime(OCSP_TIME - dt.timedelta(days=1)) + der_tlv(0xA0, der_tlv(0x0A, b"\x01")))
    else:
        cert_status = b"\x82\x00"
    single = der_tlv(0x30, cert_id + cert_status + _gtime(OCSP_TIME - dt.timedelta(hours=1))
                  + der_tlv(0xA0, _gtime(OCSP_TIME + dt.timedelta(days=7))))
    tbs = der_tlv(0x30, der_tlv(0xA2, der_tlv(0x04, key_hash)) + _gtime(OCSP_TIME) + der_tlv(0x30, single))
    sig = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    ecdsa_sha256 = der_tlv(0x30, der_tlv(0x06, bytes.fromhex("2a8648ce3d040302")))
    basic = der_tlv(0x30, tbs + ecdsa_sha256 + der_tlv(0x03, b"\x00" + sig))
    basic_oid = der_tlv(0x06, bytes.fromhex("2b0601050507300101"))      # id-pkix-ocsp-basic
    return der_tlv(0x30, der_tlv(0x0A, b"\x00") + der_tlv(0xA0, der_tlv(0x30, basic_oid + der_tlv(0x04, basic))))


# ------------------------------------------------------------------------------ the plan
@dataclass
class TlsPlan:
    """How a session's connections speak TLS (faults edit it, samples/faults_tls.py).

    ``enabled``: the EV asks for TLS in SDP; a connection uses TLS when the SDP response
    announces it, unless ``force`` says "tls" or "plain" (an EV ignoring the SDP response).
    ``version`` / ``suite`` / ``group``: what the SECC selects; ``offered_*``: what the
    EV's ClientHello offers. ``server_chain`` / ``client_chain``: CertSpecs (leaf first, root
    last); ``server_sent`` / ``client_sent``: indexes of the certificates each side sends
    (default: all but the root). ``request_client_cert``: the SECC sends CertificateRequest;
    ``client_sends_cert``: the EV answers with its chain (False: an empty Certificate).
    ``abort``: (side, alert) — that side rejects the peer's first flight with a fatal alert
    and closes. ``keylog``: how the secrets are disclosed — "udp" (NSS key log lines in UDP
    datagrams to [ff02::1]:52345, the dSPACE convention), "dsb" (a pcapng Decryption Secrets
    Block) or "none" (withheld). ``max_fragment``: largest plaintext per record.
    ``comments``: pcapng comments on the first handshake frame. ``status_request``: the EV's
    ClientHello asks for the SECC's OCSP response (RFC 6066 §8); ``ocsp``: the SECC staples one
    (TLS 1.2 CertificateStatus) saying "good", "revoked" or "unknown" (:func:`ocsp_response`).
    ``trusted_ca_names``: the root CAs the EV lists in its trusted_ca_keys extension, by
    X.509 name (RFC 6066 §6; (CN, DC) pairs, empty: no extension)."""

    enabled: bool = False
    force: str | None = None
    version: str = "TLS 1.2"
    offered_versions: list = field(default_factory=lambda: ["TLS 1.2"])
    suite: str = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
    offered_suites: list = field(default_factory=list)
    group: str = "secp256r1"
    offered_groups: list = field(default_factory=list)
    server_chain: list = field(default_factory=list)
    client_chain: list = field(default_factory=list)
    server_sent: list | None = None
    client_sent: list | None = None
    request_client_cert: bool = False
    client_sends_cert: bool = True
    abort: tuple | None = None
    keylog: str = "udp"
    keylog_sender: str = "EV"
    max_fragment: int = 16384
    comments: list = field(default_factory=list)
    seed: int = 1
    status_request: bool = False
    ocsp: str | None = None
    trusted_ca_names: list = field(default_factory=list)

    @classmethod
    def for_session(cls, protocol: str, payment: str, options: dict | None, seed: int) -> "TlsPlan":
        """The default plan of a session: TLS asked for in PnC and -20 sessions (options
        ``enabled`` overrides), the protocol's profile, the keylog disclosure of ``options``."""
        o = dict(options or {})
        prof = PROFILES[protocol]
        enabled = o.get("enabled")
        if enabled is None:
            enabled = payment == "PnC" or protocol == "ISO 15118-20"
        p = cls(enabled=bool(enabled), version=prof["version"], offered_versions=list(prof["offered_versions"]),
                suite=prof["suite"], offered_suites=list(prof["offered_suites"]), group=prof["group"],
                offered_groups=list(prof["offered_groups"]),
                server_chain=default_chain("server", prof["curve"], protocol),
                client_chain=default_chain("client", prof["curve"], protocol),
                request_client_cert=prof["mutual"], keylog=o.get("keylog", "udp"),
                max_fragment=int(o.get("max_fragment", 16384)), seed=seed)
        return p

    def used_on(self, sdp) -> bool:
        """Does a connection after SDP exchange ``sdp`` speak TLS?"""
        if self.force is not None:
            return self.force == "tls"
        return (sdp.response_security or sdp.security) == "TLS"

    def duration(self) -> float:
        """Seconds from the end of the TCP handshake to the first V2G message's think time."""
        return sum(d for _, d in _steps(self)) + KEYLOG_DELAY_S

    def check(self) -> None:
        for s in [self.suite] + self.offered_suites:
            if s not in SUITES:
                raise TlsSimError(f"TLS cipher suite {s!r} is not simulated; one of {', '.join(SUITES)}")
        for g in [self.group] + self.offered_groups:
            if g not in GROUPS:
                raise TlsSimError(f"TLS group {g!r} is not simulated; one of {', '.join(GROUPS)}")
        if self.version not in VERSIONS:
            raise TlsSimError(f"TLS version {self.version!r}; one of {', '.join(VERSIONS)}")
        if SUITES[self.suite][1] != (self.version == "TLS 1.3"):
            raise TlsSimError(f"{self.suite} is not a {self.version} cipher suite")
        if self.suite == "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256":
            raise TlsSimError("static ECDH (TLS_ECDH_ECDSA_*) is offered, never selected, by the simulator")
        if self.keylog not in ("udp", "dsb", "none"):
            raise TlsSimError(f"TLS keylog {self.keylog!r}; udp, dsb or none")
        if not 64 <= self.max_fragment <= 16384:
            raise TlsSimError("TLS max_fragment must be within 64 … 16384")


#: Handshake timing (s): the peer's processing before each flight (ECDSA on an embedded
#: controller takes milliseconds), and the key log datagram after the handshake.
KEYLOG_DELAY_S = 0.0005


def _steps(plan: TlsPlan) -> list[tuple[str, float]]:
    """(side, delay s) of each flight. An abort by the EV replaces its flight after the
    server's (it rejects the server's certificate); one by the SECC follows the EV's flight."""
    if plan.version == "TLS 1.3":
        steps = [("EV", 0.002), ("EVSE", 0.015), ("EV", 0.018 if plan.request_client_cert else 0.004)]
    else:
        steps = [("EV", 0.002), ("EVSE", 0.012), ("EV", 0.014), ("EVSE", 0.004)]
    if plan.abort:
        steps = steps[:2] + [("EV", 0.006)] if plan.abort[0] == "EV" else steps[:3] + [("EVSE", 0.004)]
    return steps


# ------------------------------------------------------------------------------ encoding
def record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    """A TLS record: type, version, length, fragment (RFC 5246 §6.2.1)."""
    return struct.pack("!BHH", content_type, version, len(body)) + body


def _ext(kind: int, data: bytes) -> bytes:
    return struct.pack("!HH", kind, len(data)) + data


def _v8(b: bytes) -> bytes:
    return bytes([len(b)]) + b


def _v16(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def _v24(b: bytes) -> bytes:
    return len(b).to_bytes(3, "big") + b


def _hs(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _v24(body)


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


# ------------------------------------------------------------------------------ key schedules
def _hmac(h: str, key: bytes, data: bytes) -> bytes:
    m = hmac.HMAC(key, _HASH[h]())
    m.update(data)
    return m.finalize()


def prf(secret: bytes, label: bytes, seed: bytes, n: int, h: str = "SHA256") -> bytes:
    """The TLS 1.2 PRF, P_hash(secret, label + seed) (RFC 5246 §5)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < n:
        a = _hmac(h, secret, a)
        out += _hmac(h, secret, a + seed)
    return out[:n]


def _expand_label(secret: bytes, label: str, context: bytes, n: int, h: str) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1)."""
    full = b"tls13 " + label.encode()
    info = struct.pack("!H", n) + _v8(full) + _v8(context)
    return HKDFExpand(algorithm=_HASH[h](), length=n, info=info).derive(secret)


def _extract(salt: bytes, ikm: bytes, h: str) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2) = HMAC-Hash(salt, IKM)."""
    return _hmac(h, salt, ikm)


def _kx_pair(group: str, rng: random.Random):
    """An ephemeral key pair of ``group`` from ``rng``: (private key, public key octets)."""
    if group == "x25519":
        k = x25519.X25519PrivateKey.from_private_bytes(bytes(rng.randrange(256) for _ in range(32)))
        return k, k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if group == "x448":
        k = x448.X448PrivateKey.from_private_bytes(bytes(rng.randrange(256) for _ in range(56)))
        return k, k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    c = _CURVES[group]()
    k = ec.derive_private_key(rng.getrandbits(c.key_size - 1) | 1, c)
    return k, k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _kx_shared(group: str, priv, peer: bytes) -> bytes:
    if group == "x25519":
        return priv.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    if group == "x448":
        return priv.exchange(x448.X448PublicKey.from_public_bytes(peer))
    return priv.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[group](), peer))


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> tuple[int, bytes]:
    """(signature scheme, deterministic ECDSA signature of ``data``) for ``key``'s curve."""
    scheme, h = _SIG[key.curve.name]
    try:
        return scheme, key.sign(data, ec.ECDSA(h(), deterministic_signing=True))
    except TypeError as e:          # pragma: no cover - cryptography < 44
        raise TlsSimError("deterministic ECDSA needs cryptography >= 44") from e


# ------------------------------------------------------------------------------ record protection
class _Protect:
    """Record protection of one direction and one key epoch (RFC 5246 §6.2.3, RFC 8446 §5.2);
    ``seq`` counts the records sealed."""

    def __init__(self, suite: str, key: bytes, iv: bytes, mac_key: bytes, rng: random.Random):
        _, self.tls13, self.cipher, _, _, self.mac, self.h = SUITES[suite]
        self.key, self.iv, self.mac_key, self.rng = key, iv, mac_key, rng
        self.seq = 0
        if self.cipher == "GCM":
            self.aead = AESGCM(key)
        elif self.cipher == "CHACHA20":
            self.aead = ChaCha20Poly1305(key)

    def seal(self, ctype: int, data: bytes) -> bytes:
        seq = self.seq
        self.seq += 1
        if self.tls13:
            inner = data + bytes([ctype])
            header = struct.pack("!BHH", CT_APP, 0x0303, len(inner) + 16)
            nonce = (int.from_bytes(self.iv, "big") ^ seq).to_bytes(12, "big")
            return header + self.aead.encrypt(nonce, inner, header)
        pre = struct.pack("!QBHH", seq, ctype, 0x0303, len(data))
        if self.cipher == "CBC":
            mac = _hmac(self.mac, self.mac_key, pre + data)
            plain = data + mac
            pad = 15 - len(plain) % 16
            plain += bytes([pad]) * (pad + 1)
            iv = bytes(self.rng.randrange(256) for _ in range(16))
            enc = Cipher(algorithms.AES(self.key), modes.CBC(iv)).encryptor()
            body = iv + enc.update(plain) + enc.finalize()
        else:
            explicit = struct.pack("!Q", seq)
            body = explicit + self.aead.encrypt(self.iv + explicit, data, pre)
        return record(ctype, body)


def _tls13_keys(suite: str, secret: bytes) -> tuple[bytes, bytes]:
    _, _, _, klen, ivlen, _, h = SUITES[suite]
    return _expand_label(secret, "key", b"", klen, h), _expand_label(secret, "iv", b"", ivlen, h)


# ------------------------------------------------------------------------------ a session
@dataclass
class Flight:
    """Bytes one side sends at once (several records), ``delay_s`` after the previous flight."""

    side: str
    delay_s: float
    data: bytes


class TlsSession:
    """One TLS connection between the EV (client) and the SECC (server), written from
    ``plan`` with ``rng`` (the connection's seeded random source).

    :attr:`flights`: the handshake (:class:`Flight` list); :attr:`keylog`: the NSS key log
    lines of the connection; :meth:`seal` protects application data (V2GTP messages) of one
    side into records; :meth:`alert` an alert record; :attr:`failed`: the handshake ended in
    an alert (no application data follows)."""

    def __init__(self, plan: TlsPlan, rng: random.Random):
        plan.check()
        self.plan, self.rng = plan, rng
        self.flights: list[Flight] = []
        self.keylog: list[str] = []
        self.failed = False
        self._out: dict[str, _Protect | None] = {"EV": None, "EVSE": None}
        srv = self._chain(plan.server_chain, plan.server_sent, "server")
        cli = self._chain(plan.client_chain, plan.client_sent, "client")
        self.server_certs, self.server_key = srv
        self.client_certs, self.client_key = cli
        if plan.version == "TLS 1.3":
            self._tls13()
        else:
            self._tls12()

    def _chain(self, specs, sent, role):
        ders, keys = build_chain(tuple(specs), self.plan.seed, role)
        idx = sent if sent is not None else list(range(len(ders) - 1))
        if role == "server" and len(ders) > 1:
            self.server_issuer = (ders[0], ders[1], keys[1])     # for the OCSP response
        return [ders[i] for i in idx], keys[0]

    # -------------------------------------------------------------- helpers
    def _rand(self, n: int) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(n))

    def _records(self, side: str, ctype: int, data: bytes) -> bytes:
        """``data`` of content type ``ctype`` from ``side`` in records of at most
        ``max_fragment`` octets, protected with the side's current keys (if any)."""
        n = self.plan.max_fragment
        prot = self._out[side]
        out = b""
        for i in range(0, max(len(data), 1), n):
            chunk = data[i:i + n]
            out += prot.seal(ctype, chunk) if prot is not None else record(ctype, chunk)
        return out

    def seal(self, side: str, data: bytes) -> bytes:
        """Application data (a V2GTP message) from ``side``, protected."""
        return self._records(side, CT_APP, data)

    def alert(self, side: str, name: str, fatal: bool = True) -> bytes:
        """An alert record from ``side`` (protected once keys are in use)."""
        return self._records(side, CT_ALERT, bytes([2 if fatal else 1, ALERTS[name]]))

    def _flight(self, side: str, data: bytes, i: int) -> None:
        self.flights.append(Flight(side, _steps(self.plan)[i][1], data))

    def _client_hello(self, cr: bytes, sid: bytes, shares: list[tuple[str, bytes]]) -> bytes:
        p = self.plan
        tls13 = "TLS 1.3" in p.offered_versions
        suites = b"".join(struct.pack("!H", SUITES[s][0]) for s in p.offered_suites)
        sigs = [0x0403, 0x0503, 0x0603] if not tls13 else [0x0603, 0x0503, 0x0403, 0x0808]
        exts = _ext(10, _v16(b"".join(struct.pack("!H", GROUPS[g]) for g in p.offered_groups)))
        if "TLS 1.2" in p.offered_versions:
            exts += _ext(11, _v8(b"\x00"))
        exts += _ext(13, _v16(b"".join(struct.pack("!H", s) for s in sigs)))
        if p.trusted_ca_names:                             # RFC 6066 §6 TrustedAuthorities, x509_name
            exts += _ext(3, _v16(b"".join(b"\x02" + _v16(_name(cn, dc).public_bytes())
                                          for cn, dc in p.trusted_ca_names)))
        if p.status_request:                               # RFC 6066 §8: ocsp, no ids, no extensions
            exts += _ext(5, b"\x01" + _v16(b"") + _v16(b""))
        if tls13:
            exts += _ext(43, _v8(b"".join(struct.pack("!H", VERSIONS[v]) for v in p.offered_versions)))
            exts += _ext(51, _v16(b"".join(struct.pack("!H", GROUPS[g]) + _v16(k) for g, k in shares)))
        body = struct.pack("!H", 0x0303) + cr + _v8(sid) + _v16(suites) + b"\x01\x00" + _v16(exts)
        return _hs(1, body)

    def _abort(self, side: str, i: int) -> bool:
        """The plan's abort by ``side``: it rejects the peer's flight with a fatal alert."""
        if not self.plan.abort or self.plan.abort[0] != side:
            return False
        self._flight(side, self.alert(side, self.plan.abort[1]), i)
        self.failed = True
        return True

    # -------------------------------------------------------------- TLS 1.2
    def _tls12(self) -> None:
        p = self.plan
        code, _, cipher, klen, ivlen, mac, h = SUITES[p.suite]
        cr, sr = self._rand(32), self._rand(32)
        c_priv, c_pub = _kx_pair(p.group, self.rng)
        shares = [(p.offered_groups[0], _kx_pair(p.offered_groups[0], self.rng)[1])] \
            if "TLS 1.3" in p.offered_versions else []
        ch = self._client_hello(cr, b"", shares)
        transcript = ch
        self._flight("EV", record(CT_HANDSHAKE, ch), 0)
        # server flight
        s_priv, s_pub = _kx_pair(p.group, self.rng)
        sh = _hs(2, struct.pack("!H", 0x0303) + sr + _v8(self._rand(32)) + struct.pack("!H", code) + b"\x00"
                 + _v16(_ext(11, _v8(b"\x00")) + (_ext(5, b"") if p.ocsp else b"")))
        cert = _hs(11, _v24(b"".join(_v24(d) for d in self.server_certs)))
        params = b"\x03" + struct.pack("!H", GROUPS[p.group]) + _v8(s_pub)
        scheme, sig = _sign(self.server_key, cr + sr + params)
        ske = _hs(12, params + struct.pack("!H", scheme) + _v16(sig))
        msgs = [sh, cert, ske]
        if p.ocsp:                                         # RFC 6066 §8 CertificateStatus
            leaf, issuer, issuer_key = self.server_issuer
            msgs.insert(2, _hs(22, b"\x01" + _v24(ocsp_response(leaf, issuer, issuer_key, p.ocsp))))
        if p.request_client_cert:
            msgs.append(_hs(13, _v8(b"\x40") + _v16(b"\x04\x03\x05\x03\x06\x03") + _v16(b"")))
        msgs.append(_hs(14, b""))
        transcript += b"".join(msgs)
        self._flight("EVSE", b"".join(record(CT_HANDSHAKE, m) for m in msgs), 1)
        pms = _kx_shared(p.group, c_priv, s_pub)
        assert pms == _kx_shared(p.group, s_priv, c_pub)
        master = prf(pms, b"master secret", cr + sr, 48, h)
        self.keylog = [f"CLIENT_RANDOM {cr.hex()} {master.hex()}"]
        if self._abort("EV", 2):
            return
        # client flight
        msgs = []
        sends_cert = p.request_client_cert and p.client_sends_cert
        if p.request_client_cert:
            msgs.append(_hs(11, _v24(b"".join(_v24(d) for d in self.client_certs) if sends_cert else b"")))
        msgs.append(_hs(16, _v8(c_pub)))
        transcript += b"".join(msgs)
        if sends_cert:
            scheme, sig = _sign(self.client_key, transcript)
            cv = _hs(15, struct.pack("!H", scheme) + _v16(sig))
            msgs.append(cv)
            transcript += cv
        kb = prf(master, b"key expansion", sr + cr, 2 * ((32 if mac else 0) + klen + ivlen), h)
        m = 32 if mac else 0
        cmk, smk = kb[:m], kb[m:2 * m]
        ck, sk = kb[2 * m:2 * m + klen], kb[2 * m + klen:2 * m + 2 * klen]
        civ, siv = kb[2 * m + 2 * klen:2 * m + 2 * klen + ivlen], kb[2 * m + 2 * klen + ivlen:]
        fin_c = _hs(20, prf(master, b"client finished", _HASHLIB[h](transcript).digest(), 12, h))
        data = b"".join(record(CT_HANDSHAKE, x) for x in msgs) + record(CT_CCS, b"\x01")
        self._out["EV"] = _Protect(p.suite, ck, civ, cmk, self.rng)
        data += self._records("EV", CT_HANDSHAKE, fin_c)
        transcript += fin_c
        self._flight("EV", data, 2)
        if self._abort("EVSE", 3):
            return
        fin_s = _hs(20, prf(master, b"server finished", _HASHLIB[h](transcript).digest(), 12, h))
        self._out["EVSE"] = _Protect(p.suite, sk, siv, smk, self.rng)
        self._flight("EVSE", record(CT_CCS, b"\x01") + self._records("EVSE", CT_HANDSHAKE, fin_s), 3)

    # -------------------------------------------------------------- TLS 1.3
    def _tls13(self) -> None:
        p = self.plan
        code, _, _, _, _, _, h = SUITES[p.suite]
        hl = {"SHA256": 32, "SHA384": 48}[h]
        H = _HASHLIB[h]
        cr, sr = self._rand(32), self._rand(32)
        sid = self._rand(32)            # legacy_session_id (RFC 8446 §4.1.2, compatibility)
        c_priv, c_pub = _kx_pair(p.group, self.rng)
        shares = [(p.group, c_pub)]
        ch = self._client_hello(cr, sid, shares)
        self._flight("EV", record(CT_HANDSHAKE, ch, 0x0301), 0)
        s_priv, s_pub = _kx_pair(p.group, self.rng)
        sh = _hs(2, struct.pack("!H", 0x0303) + sr + _v8(sid) + struct.pack("!H", code) + b"\x00"
                 + _v16(_ext(43, struct.pack("!H", 0x0304))
                        + _ext(51, struct.pack("!H", GROUPS[p.group]) + _v16(s_pub))))
        shared = _kx_shared(p.group, c_priv, s_pub)
        early = _extract(bytes(hl), bytes(hl), h)
        hs_secret = _extract(_expand_label(early, "derived", H(b"").digest(), hl, h), shared, h)
        th = ch + sh
        c_hs = _expand_label(hs_secret, "c hs traffic", H(th).digest(), hl, h)
        s_hs = _expand_label(hs_secret, "s hs traffic", H(th).digest(), hl, h)
        self._out["EVSE"] = _Protect(p.suite, *_tls13_keys(p.suite, s_hs), b"", self.rng)
        ee = _hs(8, _v16(b""))
        msgs = [ee]
        if p.request_client_cert:
            msgs.append(_hs(13, _v8(b"") + _v16(_ext(13, _v16(b"\x06\x03\x05\x03\x04\x03\x08\x08")))))
        staple = b""
        if p.ocsp:                              # RFC 8446 §4.4.2.1: the leaf entry's status_request
            leaf, issuer, issuer_key = self.server_issuer
            staple = _ext(5, b"\x01" + _v24(ocsp_response(leaf, issuer, issuer_key, p.ocsp)))
        cert = _hs(11, _v8(b"") + _v24(b"".join(_v24(d) + _v16(staple if i == 0 else b"")
                                                for i, d in enumerate(self.server_certs))))
        msgs.append(cert)
        th += b"".join(msgs)
        scheme, sig = _sign(self.server_key, b" " * 64 + b"TLS 1.3, server CertificateVerify\x00" + H(th).digest())
        cv = _hs(15, struct.pack("!H", scheme) + _v16(sig))
        th += cv
        msgs.append(cv)
        fin_s = _hs(20, _hmac(h, _expand_label(s_hs, "finished", b"", hl, h), H(th).digest()))
        th += fin_s
        msgs.append(fin_s)
        data = record(CT_HANDSHAKE, sh) + b"".join(self._records("EVSE", CT_HANDSHAKE, m) for m in msgs)
        # (the middlebox-compatibility ChangeCipherSpec, RFC 8446 §D.4, is not sent)
        self._flight("EVSE", data, 1)
        master = _extract(_expand_label(hs_secret, "derived", H(b"").digest(), hl, h), bytes(hl), h)
        c_ap = _expand_label(master, "c ap traffic", H(th).digest(), hl, h)
        s_ap = _expand_label(master, "s ap traffic", H(th).digest(), hl, h)
        self.keylog = [f"SERVER_HANDSHAKE_TRAFFIC_SECRET {cr.hex()} {s_hs.hex()}",
                       f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {cr.hex()} {c_hs.hex()}"]
        self._out["EV"] = _Protect(p.suite, *_tls13_keys(p.suite, c_hs), b"", self.rng)
        if self._abort("EV", 2):
            return
        msgs = []
        if p.request_client_cert:
            certs = self.client_certs if p.client_sends_cert else []
            msgs.append(_hs(11, _v8(b"") + _v24(b"".join(_v24(d) + _v16(b"") for d in certs))))
            th += msgs[-1]
            if certs:
                scheme, sig = _sign(self.client_key, b" " * 64 + b"TLS 1.3, client CertificateVerify\x00"
                                    + H(th).digest())
                msgs.append(_hs(15, struct.pack("!H", scheme) + _v16(sig)))
                th += msgs[-1]
        msgs.append(_hs(20, _hmac(h, _expand_label(c_hs, "finished", b"", hl, h), H(th).digest())))
        self._flight("EV", b"".join(self._records("EV", CT_HANDSHAKE, m) for m in msgs), 2)
        self._out["EV"] = _Protect(p.suite, *_tls13_keys(p.suite, c_ap), b"", self.rng)
        self._out["EVSE"] = _Protect(p.suite, *_tls13_keys(p.suite, s_ap), b"", self.rng)
        self.keylog += [f"CLIENT_TRAFFIC_SECRET_0 {cr.hex()} {c_ap.hex()}",
                        f"SERVER_TRAFFIC_SECRET_0 {cr.hex()} {s_ap.hex()}"]
        self._abort("EVSE", 3)          # the SECC rejects the EV's chain (application keys, §4.4.4)


__all__ = ["TlsPlan", "TlsSession", "TlsSimError", "CertSpec", "Flight", "PROFILES", "SUITES", "GROUPS",
           "ALERTS", "KEYLOG_DELAY_S", "build_chain", "default_chain", "record", "client_hello", "alert_record",
           "prf"]
