"""TLS handshake messages: what each says, and what the hellos negotiated (TLS 1.2, 1.3).

Handshake messages (RFC 5246 §7.4, RFC 8446 §4) sit in handshake records as
``type(1) length(3) body``; one record may carry several, one message may span records
(the connection, dissectors/tls.py, reassembles them). :func:`describe_handshake` reads one
message body into JSON-ready fields and records in a :class:`HandshakeState` what later
records depend on: the client random (the key log's key), version and cipher suite (RFC 8446
§4.1.2-4.1.4, RFC 5246 §7.4.1.2-7.4.1.3), the TLS 1.2 :class:`Hello` parameters, SNI, ALPN,
group, the certificate chains (RFC 8446 §4.4.2, RFC 5246 §7.4.2), the trusted CA keys the
EVCC listed (RFC 6066 §6) and the OCSP response stapled (RFC 6066 §8, RFC 8446 §4.4.2.1).

ISO 15118-2 runs V2GTP over TLS 1.2 with server authentication; ISO 15118-20 over TLS 1.3
with mutual authentication (PROTOCOL_FACTS §1.4): the Certificate messages carry the SECC
and EVCC chains.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .ocsp import describe_ocsp
from .tls_crypto import cipher_suite_name, is_grease
from .tls_records import version_name
from .x509info import describe_chain, describe_name
from .x509trust import anchor_chain, trusted_ca_match

# -- registries (IANA TLS parameters) ---------------------------------------------------------

#: Handshake message types (RFC 5246 §7.4, RFC 8446 §4, RFC 6066 §5/§8, RFC 8879).
HANDSHAKE_TYPES = {
    0: "HelloRequest", 1: "ClientHello", 2: "ServerHello", 3: "HelloVerifyRequest",
    4: "NewSessionTicket", 5: "EndOfEarlyData", 8: "EncryptedExtensions", 11: "Certificate",
    12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone",
    15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished", 21: "CertificateURL",
    22: "CertificateStatus", 23: "SupplementalData", 24: "KeyUpdate",
    25: "CompressedCertificate", 254: "MessageHash",
}

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
#: max_fragment_length codes → bytes (RFC 6066 §4).
_MAX_FRAGMENT_LENGTHS = {1: 512, 2: 1024, 3: 2048, 4: 4096}

#: ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
#: Last 8 bytes of ServerHello.random of a TLS 1.3 server that negotiated less (RFC 8446 §4.1.3).
_DOWNGRADE = {b"DOWNGRD\x01": "TLS 1.2", b"DOWNGRD\x00": "TLS 1.1 or below"}


def _name(table: dict, v: int) -> str:
    if v in table:
        return table[v]
    if is_grease(v):
        return f"GREASE (0x{v:04X})"
    return f"0x{v:04X}"


class Malformed(Exception):
    """A handshake structure is shorter than its lengths say, or otherwise unreadable."""


class Reader:
    """Bounds-checked big-endian reader over one structure (RFC 8446 §3 presentation
    language: ``uintN``, ``opaque <…>`` vectors with 1-3 byte length); raises
    :class:`Malformed` naming ``what`` when the data ends early."""

    __slots__ = ("d", "p", "end", "what")

    def __init__(self, data: bytes, what: str):
        self.d = data
        self.p = 0
        self.end = len(data)
        self.what = what

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        if self.p + n > self.end:
            raise Malformed(f"{self.what} truncated: needs {n} more bytes at offset {self.p}, "
                            f"{self.end - self.p} left")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def u8(self) -> int:
        """uint8."""
        return self.take(1)[0]

    def u16(self) -> int:
        """uint16."""
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        """uint24."""
        return int.from_bytes(self.take(3), "big")

    def u32(self) -> int:
        """uint32."""
        return int.from_bytes(self.take(4), "big")

    def vec(self, width: int) -> bytes:
        """A vector with a ``width``-byte length prefix."""
        return self.take(int.from_bytes(self.take(width), "big"))

    def sub(self, width: int, what: str) -> Reader:
        """A reader over the next vector (``width``-byte length prefix), named ``what``."""
        return Reader(self.vec(width), what)

    @property
    def left(self) -> int:
        """Bytes not read yet."""
        return self.end - self.p

    def u16_list(self) -> list[int]:
        """The rest as uint16 values."""
        if self.left % 2:
            raise Malformed(f"{self.what}: odd length {self.left}")
        return [self.u16() for _ in range(self.left // 2)]


def _parse_extensions(r: Reader) -> list[tuple[int, bytes]]:
    """``Extension extensions<0..2^16-1>`` (RFC 8446 §4.2), absent when nothing is left."""
    if r.left == 0:
        return []
    ext = r.sub(2, "extensions")
    out = []
    while ext.left:
        t = ext.u16()
        out.append((t, ext.vec(2)))
    return out


def _extension_names(exts: list[tuple[int, bytes]]) -> list[str]:
    return [_name(EXTENSIONS, t) for t, _ in exts]


def _schemes(x: Reader, what: str) -> list[str]:
    """A ``SignatureScheme <2..2^16-2>`` list (RFC 8446 §4.2.3) as names."""
    return [_name(SIGNATURE_SCHEMES, s) for s in x.sub(2, what).u16_list()]


def _groups(x: Reader) -> list[str]:
    """A ``NamedGroup named_group_list<2..2^16-1>`` (RFC 8446 §4.2.7) as names."""
    return [_name(GROUPS, g) for g in x.sub(2, "groups").u16_list()]


def _alpn_list(x: Reader) -> list[str]:
    """``ProtocolName protocol_name_list<2..2^16-1>`` (RFC 7301 §3.1)."""
    lst = x.sub(2, "protocol_name_list")
    out = []
    while lst.left:
        out.append(lst.vec(1).decode("utf-8", "replace"))
    return out


def _trusted_ca_keys(x: Reader) -> list[dict]:
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


# -- what the handshake established -------------------------------------------------------------

@dataclass(slots=True)
class Hello:
    """TLS 1.2 parameters fixed by one ClientHello/ServerHello exchange (RFC 5246 §7.4.1):
    the two randoms (32 bytes each), cipher suite and version codes, and whether
    encrypt_then_mac (RFC 7366) was negotiated."""

    client_random: bytes | None
    server_random: bytes | None
    suite: int | None
    version: int | None
    encrypt_then_mac: bool


@dataclass(slots=True)
class HandshakeState:
    """What the handshake messages of one connection established so far.

    ``client_random``: ClientHello.random of the first ClientHello (the key log's key);
    ``cr``: that of the latest one; ``server_random``, ``suite``, ``version`` (codes, None
    before the ServerHello), ``tls13``, ``etm`` (encrypt_then_mac), ``early_offered`` (the
    ClientHello offered 0-RTT data), ``hello``: the latest TLS 1.2 :class:`Hello`; ``hrr``: a
    HelloRetryRequest was seen; ``group``, ``sni``, ``alpn``: names; ``trust``: the
    x509trust.TrustStore chains are anchored against (or None); ``ocsp``: the stapled OCSP
    response described; ``ocsp_asked``: the ClientHello's status_request; ``server_ders`` /
    ``trusted_ca``: the server chain (DER) and the ClientHello's trusted_ca_keys;
    ``server_certificates`` / ``client_certificates``: the chains described (leaf first).
    """

    trust: object = None
    client_random: bytes | None = None
    cr: bytes | None = None
    server_random: bytes | None = None
    suite: int | None = None
    version: int | None = None
    tls13: bool = False
    etm: bool = False
    early_offered: bool = False
    hello: Hello | None = None
    hrr: bool = False
    group: str | None = None
    sni: str | None = None
    alpn: str | None = None
    ocsp: dict | None = None
    ocsp_asked: bool = False
    server_ders: list = field(default_factory=list)
    trusted_ca: list = field(default_factory=list)
    server_certificates: list = field(default_factory=list)
    client_certificates: list = field(default_factory=list)


def describe_handshake(hs: HandshakeState, direction: int, mtype: int, body: bytes,
                       fields: dict) -> tuple[str, str | None]:
    """Describe one handshake message of type ``mtype`` sent in ``direction`` (0 client,
    1 server) into ``fields`` and update ``hs``. Returns (message name, error or None); a
    malformed message gives an error, never an exception, and leaves what was read before
    the damage in ``fields`` and ``hs``."""
    name = HANDSHAKE_TYPES.get(mtype, f"Handshake type {mtype}")
    fields["handshake_type"] = mtype
    fields["length"] = len(body)
    err = None
    try:
        if mtype in (1, 2) and direction != mtype - 1:
            err = f"{name} sent by the {'client' if direction == 0 else 'server'}; ignored"
        elif mtype == 1:
            _client_hello(hs, body, fields)
        elif mtype == 2:
            if body[2:34] == HRR_RANDOM:
                name = "HelloRetryRequest"
            _server_hello(hs, body, fields)
        elif mtype == 4:
            _new_session_ticket(hs, body, fields)
        elif mtype == 8:
            _encrypted_extensions(hs, body, fields)
        elif mtype == 11:
            _certificate(hs, direction, body, fields)
        elif mtype == 12:
            _server_key_exchange(hs, body, fields)
        elif mtype == 13:
            _certificate_request(hs, body, fields)
        elif mtype == 15:
            r = Reader(body, "CertificateVerify")
            scheme = r.u16()
            fields["signature_algorithm"] = _name(SIGNATURE_SCHEMES, scheme)
            fields["signature_length"] = len(r.vec(2))
        elif mtype == 16:
            _client_key_exchange(hs, body, fields)
        elif mtype == 20:
            fields["verify_data"] = body.hex()
        elif mtype == 24:
            r = Reader(body, "KeyUpdate")
            req = r.u8()
            fields["request_update"] = {0: "update_not_requested",
                                        1: "update_requested"}.get(req, str(req))
        elif mtype == 22:
            r = Reader(body, "CertificateStatus")
            st = r.u8()
            fields["status_type"] = {1: "ocsp", 2: "ocsp_multi"}.get(st, str(st))
            resp = r.vec(3)
            fields["response_length"] = len(resp)
            if st == 1:
                fields["ocsp"] = hs.ocsp = describe_ocsp(resp, hs.server_ders)
        elif mtype in (0, 14) and body:
            err = f"{name} should be empty but holds {len(body)} bytes"
    except Malformed as exc:
        err = f"malformed {name}: {exc}"
    except Exception as exc:    # anything else a hostile message may provoke
        err = f"malformed {name}: {exc!r}"
    return name, err


def _client_hello(hs: HandshakeState, body: bytes, f: dict) -> None:
    """ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) and its extensions."""
    r = Reader(body, "ClientHello")
    legacy = r.u16()
    random = r.take(32)
    # the random is the key log's key: remember it before anything else can fail
    if hs.client_random is None:
        hs.client_random = random
    if hs.cr is not None and random != hs.cr and not hs.hrr:
        f["renegotiation"] = True
    hs.cr = random
    f["legacy_version"] = version_name(legacy)
    f["random"] = random.hex()
    f["session_id"] = r.vec(1).hex()
    suites = r.sub(2, "cipher_suites").u16_list()
    f["cipher_suites"] = [cipher_suite_name(s) for s in suites]
    f["compression_methods"] = list(r.vec(1))
    exts = _parse_extensions(r)
    f["extensions"] = _extension_names(exts)
    offered = None
    early = False
    for t, data in exts:
        x = Reader(data, _name(EXTENSIONS, t))
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
                hs.sni = hosts[0]
        elif t == 1:
            v = x.u8()
            f["max_fragment_length"] = _MAX_FRAGMENT_LENGTHS.get(v, v)
        elif t == 3:
            f["trusted_ca_keys"] = hs.trusted_ca = _trusted_ca_keys(x)
        elif t == 5:
            st = x.u8()
            f["status_request"] = {1: "ocsp"}.get(st, str(st))
            hs.ocsp_asked = True
        elif t == 10:
            f["supported_groups"] = _groups(x)
        elif t == 11:
            f["ec_point_formats"] = [_EC_POINT_FORMATS.get(p, str(p)) for p in x.vec(1)]
        elif t == 13:
            f["signature_algorithms"] = _schemes(x, "signature_algorithms")
        elif t == 50:
            f["signature_algorithms_cert"] = _schemes(x, "signature_algorithms_cert")
        elif t == 16:
            f["alpn"] = _alpn_list(x)
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
            offered = [version_name(v) for v in Reader(x.vec(1), "versions").u16_list()]
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
    if not hs.hrr:
        hs.early_offered = early


def _server_alpn(hs: HandshakeState, x: Reader, f: dict) -> None:
    """The protocol a server selected (RFC 7301 §3.1: a list of exactly one)."""
    alpn = _alpn_list(x)
    if alpn:
        f["alpn"] = alpn[0]
        hs.alpn = alpn[0]


def _server_hello(hs: HandshakeState, body: bytes, f: dict) -> None:
    """ServerHello / HelloRetryRequest (RFC 8446 §4.1.3-4.1.4, RFC 5246 §7.4.1.3)."""
    r = Reader(body, "ServerHello")
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
    f["extensions"] = _extension_names(exts)
    f["hello_retry_request"] = hrr
    for t, data in exts:
        x = Reader(data, _name(EXTENSIONS, t))
        if t == 43:
            version = x.u16()
        elif t == 51:
            g = _name(GROUPS, x.u16())
            f["group"] = g
            hs.group = g
        elif t == 22:
            etm = True
        elif t == 23:
            ems = True
        elif t == 16:
            _server_alpn(hs, x, f)
        elif t == 41:
            f["pre_shared_key_selected"] = x.u16()
        elif t == 44:
            f["cookie_length"] = len(x.vec(2))
        elif t == 1:
            f["max_fragment_length"] = _MAX_FRAGMENT_LENGTHS.get(x.u8())
        elif t == 28:
            f["record_size_limit"] = x.u16()
        elif t == 5:
            f["status_request"] = True
    f["version"] = version_name(version)
    f["encrypt_then_mac"] = etm
    f["extended_master_secret"] = ems
    if random[-8:] in _DOWNGRADE and version <= 0x0303:
        f["downgrade_sentinel"] = _DOWNGRADE[random[-8:]]
    hs.version = version
    hs.suite = suite
    hs.tls13 = version == 0x0304
    if hrr:
        hs.hrr = True
        return
    hs.server_random = random
    hs.etm = etm
    hs.hello = Hello(hs.cr, random, suite, version, hs.etm)


def _encrypted_extensions(hs: HandshakeState, body: bytes, f: dict) -> None:
    """EncryptedExtensions (RFC 8446 §4.3.1)."""
    r = Reader(body, "EncryptedExtensions")
    exts = _parse_extensions(r)
    f["extensions"] = _extension_names(exts)
    for t, data in exts:
        x = Reader(data, _name(EXTENSIONS, t))
        if t == 16:
            _server_alpn(hs, x, f)
        elif t == 42:
            f["early_data_accepted"] = True
        elif t == 0:
            f["server_name_acknowledged"] = True
        elif t == 10:
            f["supported_groups"] = _groups(x)
        elif t == 28:
            f["record_size_limit"] = x.u16()
        elif t == 1:
            f["max_fragment_length"] = _MAX_FRAGMENT_LENGTHS.get(x.u8())


def _certificate(hs: HandshakeState, direction: int, body: bytes, f: dict) -> None:
    """Certificate (RFC 8446 §4.4.2 with per-entry extensions, RFC 5246 §7.4.2): the chain
    described, anchored against ``hs.trust``, matched against the EVCC's trusted_ca_keys
    (RFC 6066 §6); the server's OCSP staple (RFC 8446 §4.4.2.1)."""
    r = Reader(body, "Certificate")
    ders = []
    entry_exts = []
    staple = None
    if hs.tls13:
        ctx = r.vec(1)
        if ctx:
            f["request_context"] = ctx.hex()
        lst = r.sub(3, "certificate_list")
        while lst.left:
            ders.append(lst.vec(3))
            exts = _parse_extensions(lst)
            entry_exts.append(_extension_names(exts))
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
        f["trust"] = anchor_chain(ders, None, hs.trust)
        if direction == 1 and hs.trusted_ca:      # RFC 6066 §6: a chain under a listed root?
            f["trusted_ca_keys"] = trusted_ca_match(hs.trusted_ca, ders, hs.trust, f["trust"])
    f["count"] = len(chain)
    f["certificates"] = chain
    f["subjects"] = [c.get("subject") for c in chain]
    f["sender"] = "server" if direction == 1 else "client"
    if direction == 1:
        hs.server_certificates = chain
        hs.server_ders = ders
        if staple is not None:
            f["ocsp"] = hs.ocsp = describe_ocsp(staple, ders)
    else:
        hs.client_certificates = chain


def _kx(hs: HandshakeState) -> str:
    """The TLS 1.2 key exchange named in the cipher suite (``"ECDHE_ECDSA"``), or ``""``."""
    name = cipher_suite_name(hs.suite) if hs.suite is not None else ""
    if "_WITH_" not in name:
        return ""
    return name[4:name.index("_WITH_")]


def _server_key_exchange(hs: HandshakeState, body: bytes, f: dict) -> None:
    """ServerKeyExchange (RFC 5246 §7.4.3, RFC 8422 §5.4, RFC 4279 §2)."""
    r = Reader(body, "ServerKeyExchange")
    kx = _kx(hs)
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
        hs.group = g
        f["public_key_length"] = len(r.vec(1))
    elif kx.startswith("DHE") or kx.startswith("DH_anon"):
        p = r.vec(2)
        r.vec(2)
        f["dh_p_bits"] = len(p.lstrip(b"\x00")) * 8
        f["public_key_length"] = len(r.vec(2))
    else:
        return
    if r.left and "anon" not in kx and "PSK" not in kx:
        if hs.version is not None and hs.version >= 0x0303:
            f["signature_algorithm"] = _name(SIGNATURE_SCHEMES, r.u16())
        f["signature_length"] = len(r.vec(2))


def _client_key_exchange(hs: HandshakeState, body: bytes, f: dict) -> None:
    """ClientKeyExchange (RFC 5246 §7.4.7, RFC 8422 §5.7, RFC 4279 §2)."""
    r = Reader(body, "ClientKeyExchange")
    kx = _kx(hs)
    f["key_exchange"] = kx or None
    if "PSK" in kx:
        f["psk_identity"] = r.vec(2).decode("utf-8", "replace")
        if kx.endswith("PSK") and kx == "PSK":
            return
    if kx.startswith("ECDH"):
        f["public_key_length"] = len(r.vec(1))
    elif kx.startswith("RSA") or kx.startswith("DH"):
        f["public_key_length"] = len(r.vec(2))


def _certificate_request(hs: HandshakeState, body: bytes, f: dict) -> None:
    """CertificateRequest (RFC 8446 §4.3.2, RFC 5246 §7.4.4)."""
    r = Reader(body, "CertificateRequest")
    cas = []
    if hs.tls13:
        ctx = r.vec(1)
        if ctx:
            f["request_context"] = ctx.hex()
        exts = _parse_extensions(r)
        f["extensions"] = _extension_names(exts)
        for t, data in exts:
            x = Reader(data, _name(EXTENSIONS, t))
            if t == 13:
                f["signature_algorithms"] = _schemes(x, "signature_algorithms")
            elif t == 50:
                f["signature_algorithms_cert"] = _schemes(x, "sig_algs_cert")
            elif t == 47:
                lst = x.sub(2, "certificate_authorities")
                while lst.left:
                    cas.append(lst.vec(2))
    else:
        f["certificate_types"] = [_CERT_TYPES.get(t, str(t)) for t in r.vec(1)]
        if hs.version is not None and hs.version >= 0x0303:
            f["signature_algorithms"] = _schemes(r, "signature_algorithms")
        lst = r.sub(2, "certificate_authorities")
        while lst.left:
            cas.append(lst.vec(2))
    f["certificate_authorities"] = [describe_name(c) or c.hex() for c in cas]


def _new_session_ticket(hs: HandshakeState, body: bytes, f: dict) -> None:
    """NewSessionTicket (RFC 8446 §4.6.1, RFC 5077 §3.3)."""
    r = Reader(body, "NewSessionTicket")
    if hs.tls13:
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
