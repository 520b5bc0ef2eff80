"""TLS key schedules and record decryption (TLS 1.2 and TLS 1.3), on ``cryptography`` primitives.

What is ours and what is not: the TLS 1.2 PRF (RFC 5246 §5), the TLS 1.2 key block
(RFC 5246 §6.3), the TLS 1.3 HKDF-Expand-Label / traffic-key derivation (RFC 8446 §7.1,
§7.3) and the record framing (MAC input, AEAD nonce and additional data, CBC padding, TLS 1.3
inner plaintext) are written here; every primitive (HMAC, HKDF-Expand, AES-CBC, AES-GCM,
AES-CCM, ChaCha20-Poly1305) comes from the ``cryptography`` library.

Record protection handled (decryption only):

* TLS 1.2 block ciphers, AES-128/256-CBC with HMAC-SHA1/SHA256/SHA384, explicit per-record
  IV (RFC 5246 §6.2.3.2), MAC-then-encrypt or encrypt-then-MAC (RFC 7366 §3).
* TLS 1.2 AEAD: AES-GCM (RFC 5288 §3: 4-byte salt from the key block + 8-byte explicit nonce),
  AES-CCM / CCM_8 (RFC 6655 §3, same nonce layout), ChaCha20-Poly1305 (RFC 7905 §2: 12-byte
  IV XOR sequence number, no explicit nonce); additional data = seq_num + type + version +
  length (RFC 5246 §6.2.3.3).
* TLS 1.3 AEAD (RFC 8446 §5.2-5.3): TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
  TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_CCM_SHA256, TLS_AES_128_CCM_8_SHA256; key and
  IV from a traffic secret (§7.3), KeyUpdate's next secret (§7.2).

The key exchange (ECDH, ECDHE, RSA, DHE, PSK) never matters here: the key log gives the TLS
1.2 master secret or the TLS 1.3 traffic secrets directly, and extended master secret
(RFC 7627) only changes how the master secret was computed, not how it is used.

ISO 15118-2 mandates TLS 1.2 with TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 or
TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256; ISO 15118-20 mandates TLS 1.3 with
TLS_AES_256_GCM_SHA384 or TLS_CHACHA20_POLY1305_SHA256 (PROTOCOL_FACTS §1.4).
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

_HASHES = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384}
_HASH_LEN = {"SHA1": 20, "SHA256": 32, "SHA384": 48}

#: IANA TLS cipher suite names (IANA "TLS Cipher Suites" registry), the ones worth naming.
CIPHER_SUITE_NAMES: dict[int, str] = {
    0x0000: "TLS_NULL_WITH_NULL_NULL",
    0x0001: "TLS_RSA_WITH_NULL_MD5",
    0x0002: "TLS_RSA_WITH_NULL_SHA",
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x002C: "TLS_PSK_WITH_NULL_SHA",
    0x002D: "TLS_DHE_PSK_WITH_NULL_SHA",
    0x002E: "TLS_RSA_PSK_WITH_NULL_SHA",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0032: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0034: "TLS_DH_anon_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x0038: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x003A: "TLS_DH_anon_WITH_AES_256_CBC_SHA",
    0x003B: "TLS_RSA_WITH_NULL_SHA256",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x0040: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
    0x0041: "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x006A: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x006C: "TLS_DH_anon_WITH_AES_128_CBC_SHA256",
    0x006D: "TLS_DH_anon_WITH_AES_256_CBC_SHA256",
    0x0084: "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA",
    0x008C: "TLS_PSK_WITH_AES_128_CBC_SHA",
    0x008D: "TLS_PSK_WITH_AES_256_CBC_SHA",
    0x0090: "TLS_DHE_PSK_WITH_AES_128_CBC_SHA",
    0x0091: "TLS_DHE_PSK_WITH_AES_256_CBC_SHA",
    0x0094: "TLS_RSA_PSK_WITH_AES_128_CBC_SHA",
    0x0095: "TLS_RSA_PSK_WITH_AES_256_CBC_SHA",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x00A2: "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256",
    0x00A3: "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
    0x00A6: "TLS_DH_anon_WITH_AES_128_GCM_SHA256",
    0x00A7: "TLS_DH_anon_WITH_AES_256_GCM_SHA384",
    0x00A8: "TLS_PSK_WITH_AES_128_GCM_SHA256",
    0x00A9: "TLS_PSK_WITH_AES_256_GCM_SHA384",
    0x00AA: "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256",
    0x00AB: "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384",
    0x00AC: "TLS_RSA_PSK_WITH_AES_128_GCM_SHA256",
    0x00AD: "TLS_RSA_PSK_WITH_AES_256_GCM_SHA384",
    0x00AE: "TLS_PSK_WITH_AES_128_CBC_SHA256",
    0x00AF: "TLS_PSK_WITH_AES_256_CBC_SHA384",
    0x00B0: "TLS_PSK_WITH_NULL_SHA256",
    0x00B1: "TLS_PSK_WITH_NULL_SHA384",
    0x00B2: "TLS_DHE_PSK_WITH_AES_128_CBC_SHA256",
    0x00B3: "TLS_DHE_PSK_WITH_AES_256_CBC_SHA384",
    0x00B6: "TLS_RSA_PSK_WITH_AES_128_CBC_SHA256",
    0x00B7: "TLS_RSA_PSK_WITH_AES_256_CBC_SHA384",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0x5600: "TLS_FALLBACK_SCSV",
    0xC001: "TLS_ECDH_ECDSA_WITH_NULL_SHA",
    0xC002: "TLS_ECDH_ECDSA_WITH_RC4_128_SHA",
    0xC003: "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA",
    0xC004: "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA",
    0xC005: "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA",
    0xC006: "TLS_ECDHE_ECDSA_WITH_NULL_SHA",
    0xC007: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    0xC008: "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC00B: "TLS_ECDH_RSA_WITH_NULL_SHA",
    0xC00C: "TLS_ECDH_RSA_WITH_RC4_128_SHA",
    0xC00D: "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC00E: "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA",
    0xC00F: "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA",
    0xC010: "TLS_ECDHE_RSA_WITH_NULL_SHA",
    0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC015: "TLS_ECDH_anon_WITH_NULL_SHA",
    0xC018: "TLS_ECDH_anon_WITH_AES_128_CBC_SHA",
    0xC019: "TLS_ECDH_anon_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC025: "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC026: "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC029: "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256",
    0xC02A: "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02D: "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02E: "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC031: "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256",
    0xC032: "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384",
    0xC035: "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA",
    0xC036: "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA",
    0xC037: "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256",
    0xC038: "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384",
    0xC039: "TLS_ECDHE_PSK_WITH_NULL_SHA",
    0xC03A: "TLS_ECDHE_PSK_WITH_NULL_SHA256",
    0xC03B: "TLS_ECDHE_PSK_WITH_NULL_SHA384",
    0xC05C: "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256",
    0xC05D: "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384",
    0xC072: "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256",
    0xC073: "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384",
    0xC09C: "TLS_RSA_WITH_AES_128_CCM",
    0xC09D: "TLS_RSA_WITH_AES_256_CCM",
    0xC09E: "TLS_DHE_RSA_WITH_AES_128_CCM",
    0xC09F: "TLS_DHE_RSA_WITH_AES_256_CCM",
    0xC0A0: "TLS_RSA_WITH_AES_128_CCM_8",
    0xC0A1: "TLS_RSA_WITH_AES_256_CCM_8",
    0xC0A2: "TLS_DHE_RSA_WITH_AES_128_CCM_8",
    0xC0A3: "TLS_DHE_RSA_WITH_AES_256_CCM_8",
    0xC0A4: "TLS_PSK_WITH_AES_128_CCM",
    0xC0A5: "TLS_PSK_WITH_AES_256_CCM",
    0xC0A6: "TLS_DHE_PSK_WITH_AES_128_CCM",
    0xC0A7: "TLS_DHE_PSK_WITH_AES_256_CCM",
    0xC0A8: "TLS_PSK_WITH_AES_128_CCM_8",
    0xC0A9: "TLS_PSK_WITH_AES_256_CCM_8",
    0xC0AA: "TLS_PSK_DHE_WITH_AES_128_CCM_8",
    0xC0AB: "TLS_PSK_DHE_WITH_AES_256_CCM_8",
    0xC0AC: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
    0xC0AD: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    0xC0AE: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
    0xC0AF: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAB: "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAC: "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAD: "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAE: "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xD001: "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256",
    0xD002: "TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384",
    0xD003: "TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256",
    0xD005: "TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256",
}


def is_grease(value: int) -> bool:
    """True for the GREASE code points 0x0A0A, 0x1A1A, … 0xFAFA (RFC 8701 §2)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def cipher_suite_name(code: int) -> str:
    """IANA name of a cipher suite code; ``"GREASE (0x0A0A)"`` or ``"0x1234"`` otherwise."""
    name = CIPHER_SUITE_NAMES.get(code)
    if name is not None:
        return name
    if is_grease(code):
        return f"GREASE (0x{code:04X})"
    return f"0x{code:04X}"


class DecryptError(Exception):
    """A record did not decrypt or authenticate; the message says why (bad record MAC,
    bad padding, AEAD tag mismatch, impossible length)."""


@dataclass(frozen=True, slots=True)
class SuiteParams:
    """What record protection a cipher suite implies.

    ``code``/``name``: the suite; ``tls13``: a TLS 1.3 suite (RFC 8446 §B.4);
    ``cipher``: ``"AES-CBC"``, ``"AES-GCM"``, ``"AES-CCM"`` or ``"CHACHA20-POLY1305"``;
    ``key_len``: encryption key bytes; ``fixed_iv_len``: IV bytes taken from the key block
    (TLS 1.2: 4 for GCM/CCM, 12 for ChaCha20, 0 for CBC) or from the traffic secret (TLS 1.3:
    12); ``record_iv_len``: explicit per-record IV/nonce bytes (CBC 16, GCM/CCM 8, ChaCha20
    0, TLS 1.3 0); ``tag_len``: AEAD tag bytes (16, or 8 for CCM_8); ``mac``: HMAC hash for
    CBC suites (``"SHA1"``, ``"SHA256"``, ``"SHA384"``), None for AEAD; ``prf_hash``: hash of
    the TLS 1.2 PRF / TLS 1.3 HKDF (``"SHA256"`` or ``"SHA384"``).
    """

    code: int
    name: str
    tls13: bool
    cipher: str
    key_len: int
    fixed_iv_len: int
    record_iv_len: int
    tag_len: int
    mac: str | None
    prf_hash: str

    @property
    def aead(self) -> bool:
        """True for AEAD suites (GCM, CCM, ChaCha20-Poly1305)."""
        return self.mac is None

    @property
    def mac_len(self) -> int:
        """HMAC output bytes for CBC suites, 0 for AEAD."""
        return _HASH_LEN[self.mac] if self.mac else 0


_TLS12_RE = re.compile(
    r"TLS_(?:[A-Za-z0-9]+_)*?WITH_"
    r"(?:(?P<aes>AES_(?P<bits>128|256)_(?P<mode>CBC|GCM|CCM_8|CCM))|(?P<chacha>CHACHA20_POLY1305))"
    r"(?:_(?P<hash>SHA|SHA256|SHA384))?")
_TLS13_SUITES = {
    0x1301: ("AES-GCM", 16, 16, "SHA256"),
    0x1302: ("AES-GCM", 32, 16, "SHA384"),
    0x1303: ("CHACHA20-POLY1305", 32, 16, "SHA256"),
    0x1304: ("AES-CCM", 16, 16, "SHA256"),
    0x1305: ("AES-CCM", 16, 8, "SHA256"),
}


def suite_params(code: int) -> SuiteParams | None:
    """Record-protection parameters of cipher suite ``code``; None when we cannot decrypt it
    (RC4, 3DES, Camellia, ARIA, NULL, unknown codes).

    TLS 1.2 parameters follow from the IANA name: ``…_WITH_<cipher>_<hash>``; the PRF hash
    is SHA-384 for ``…_SHA384`` suites and SHA-256 otherwise (RFC 5246 §5, RFC 5289 §3.2).
    """
    if code in _TLS13_SUITES:
        cipher, key_len, tag_len, h = _TLS13_SUITES[code]
        return SuiteParams(code, CIPHER_SUITE_NAMES[code], True, cipher, key_len, 12, 0,
                           tag_len, None, h)
    name = CIPHER_SUITE_NAMES.get(code)
    if name is None:
        return None
    m = _TLS12_RE.fullmatch(name)
    if m is None:
        return None
    h = m.group("hash")
    prf = "SHA384" if h == "SHA384" else "SHA256"
    if m.group("chacha"):
        return SuiteParams(code, name, False, "CHACHA20-POLY1305", 32, 12, 0, 16, None, prf)
    key_len = int(m.group("bits")) // 8
    mode = m.group("mode")
    if mode == "CBC":
        if h is None:
            return None
        return SuiteParams(code, name, False, "AES-CBC", key_len, 0, 16, 0,
                           "SHA1" if h == "SHA" else h, prf)
    if mode == "GCM":
        return SuiteParams(code, name, False, "AES-GCM", key_len, 4, 8, 16, None, prf)
    return SuiteParams(code, name, False, "AES-CCM", key_len, 4, 8, 8 if mode == "CCM_8" else 16,
                       None, prf)


# -- key schedules ----------------------------------------------------------------------------

def _hmac(hash_name: str, key: bytes, data: bytes) -> bytes:
    h = hmac.HMAC(key, _HASHES[hash_name]())
    h.update(data)
    return h.finalize()


def tls12_prf(secret: bytes, label: bytes, seed: bytes, length: int,
              hash_name: str = "SHA256") -> bytes:
    """The TLS 1.2 PRF: P_<hash>(secret, label + seed) cut to ``length`` bytes (RFC 5246 §5).

    ``hash_name``: ``"SHA256"`` (default, every TLS 1.2 suite unless it says otherwise) or
    ``"SHA384"``. HMAC comes from ``cryptography``.
    """
    seed = label + seed
    out = bytearray()
    a = seed
    while len(out) < length:
        a = _hmac(hash_name, secret, a)
        out += _hmac(hash_name, secret, a + seed)
    return bytes(out[:length])


def hkdf_expand_label(secret: bytes, label: bytes | str, context: bytes, length: int,
                      hash_name: str = "SHA256") -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) of RFC 8446 §7.1.

    HkdfLabel = uint16 length || opaque label<7..255> = "tls13 " + Label ||
    opaque context<0..255>; HKDF-Expand is ``cryptography``'s HKDFExpand.
    """
    if isinstance(label, str):
        label = label.encode("ascii")
    full = b"tls13 " + label
    info = struct.pack("!H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(algorithm=_HASHES[hash_name](), length=length, info=info).derive(secret)


def tls13_traffic_key_iv(secret: bytes, params: SuiteParams) -> tuple[bytes, bytes]:
    """(key, iv) of a TLS 1.3 traffic secret: HKDF-Expand-Label(secret, "key"/"iv", "",
    key_length / 12) (RFC 8446 §7.3)."""
    key = hkdf_expand_label(secret, b"key", b"", params.key_len, params.prf_hash)
    iv = hkdf_expand_label(secret, b"iv", b"", 12, params.prf_hash)
    return key, iv


def tls13_next_traffic_secret(secret: bytes, hash_name: str) -> bytes:
    """application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "",
    Hash.length) (RFC 8446 §7.2, after a KeyUpdate)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", _HASH_LEN[hash_name], hash_name)


@dataclass(frozen=True, slots=True)
class Tls12KeyBlock:
    """The TLS 1.2 key block split per RFC 5246 §6.3 (bytes; empty when a suite uses none)."""

    client_mac_key: bytes
    server_mac_key: bytes
    client_key: bytes
    server_key: bytes
    client_iv: bytes
    server_iv: bytes


def tls12_key_block(params: SuiteParams, master_secret: bytes, client_random: bytes,
                    server_random: bytes) -> Tls12KeyBlock:
    """key_block = PRF(master_secret, "key expansion", server_random + client_random),
    cut into MAC keys, encryption keys and fixed IVs (RFC 5246 §6.3; RFC 5288 §3 and
    RFC 7905 §2 for the AEAD fixed IVs)."""
    m, k, i = params.mac_len, params.key_len, params.fixed_iv_len
    kb = tls12_prf(master_secret, b"key expansion", server_random + client_random,
                   2 * (m + k + i), params.prf_hash)
    parts = []
    pos = 0
    for n in (m, m, k, k, i, i):
        parts.append(kb[pos:pos + n])
        pos += n
    return Tls12KeyBlock(*parts)


# -- record protection ------------------------------------------------------------------------

def _aead(params: SuiteParams, key: bytes):
    if params.cipher == "AES-GCM":
        return AESGCM(key)
    if params.cipher == "AES-CCM":
        return AESCCM(key, tag_length=params.tag_len)
    return ChaCha20Poly1305(key)


def _xor_seq(iv: bytes, seq: int) -> bytes:
    n = len(iv)
    return (int.from_bytes(iv, "big") ^ seq).to_bytes(n, "big")


class RecordCipher:
    """Decrypts the records of one direction and one key epoch.

    :meth:`open` takes the record's 5-byte header (content type, version, length), its
    fragment and the record sequence number (RFC 5246 §6.1 / RFC 8446 §5.3: 0 for the first
    record after each key change) and returns ``(content_type, plaintext)``; for TLS 1.3 the
    inner content type (RFC 8446 §5.2). Raises :class:`DecryptError`.
    """

    def open(self, header: bytes, fragment: bytes, seq: int) -> tuple[int, bytes]:
        raise NotImplementedError


class Tls12CbcCipher(RecordCipher):
    """TLS 1.2 AES-CBC + HMAC record protection (RFC 5246 §6.2.3.2, explicit IV).

    MAC-then-encrypt: MAC = HMAC(mac_key, seq_num + type + version + length + content),
    ciphertext = IV + AES-CBC(content + MAC + padding). With ``encrypt_then_mac`` (RFC 7366
    §3): ciphertext = IV + AES-CBC(content + padding), then MAC over seq_num + type +
    version + length(IV + ciphertext) + IV + ciphertext appended in clear.
    """

    def __init__(self, params: SuiteParams, key: bytes, mac_key: bytes, encrypt_then_mac: bool):
        self.params = params
        self._alg = algorithms.AES(key)
        self._mac_key = mac_key
        self.encrypt_then_mac = encrypt_then_mac

    def _cbc(self, iv: bytes, data: bytes) -> bytes:
        d = Cipher(self._alg, modes.CBC(iv)).decryptor()
        return d.update(data) + d.finalize()

    @staticmethod
    def _unpad(padded: bytes) -> bytes:
        pad = padded[-1]
        if pad + 1 > len(padded) or padded[-pad - 1:-1] != bytes([pad]) * pad:
            raise DecryptError("bad padding")
        return padded[:-pad - 1]

    def open(self, header: bytes, fragment: bytes, seq: int) -> tuple[int, bytes]:
        ctype, version = header[0], header[1:3]
        mlen = self.params.mac_len
        if self.encrypt_then_mac:
            body_len = len(fragment) - mlen
            if body_len < 32 or body_len % 16:
                raise DecryptError(f"impossible length {len(fragment)} for an encrypt-then-MAC "
                                   "CBC record")
            body, mac = fragment[:body_len], fragment[body_len:]
            want = _hmac(self.params.mac, self._mac_key, struct.pack("!QB", seq, ctype) + version
                         + struct.pack("!H", body_len) + body)
            if want != mac:
                raise DecryptError("bad record MAC (encrypt-then-MAC)")
            return ctype, self._unpad(self._cbc(body[:16], body[16:]))
        if len(fragment) < 32 or len(fragment) % 16:
            raise DecryptError(f"impossible length {len(fragment)} for a CBC record")
        content = self._unpad(self._cbc(fragment[:16], fragment[16:]))
        if len(content) < mlen:
            raise DecryptError("bad record MAC (record shorter than its MAC)")
        data, mac = content[:len(content) - mlen], content[len(content) - mlen:]
        want = _hmac(self.params.mac, self._mac_key, struct.pack("!QB", seq, ctype) + version
                     + struct.pack("!H", len(data)) + data)
        if want != mac:
            raise DecryptError("bad record MAC")
        return ctype, data


class Tls12AeadCipher(RecordCipher):
    """TLS 1.2 AEAD record protection.

    GCM / CCM: nonce = 4-byte fixed IV (key block) + 8-byte explicit nonce sent before the
    ciphertext (RFC 5288 §3, RFC 6655 §3). ChaCha20-Poly1305: nonce = 12-byte fixed IV XOR
    the sequence number, nothing explicit (RFC 7905 §2). Additional data = seq_num + type +
    version + plaintext length (RFC 5246 §6.2.3.3).
    """

    def __init__(self, params: SuiteParams, key: bytes, fixed_iv: bytes):
        self.params = params
        self._aead = _aead(params, key)
        self._iv = fixed_iv

    def open(self, header: bytes, fragment: bytes, seq: int) -> tuple[int, bytes]:
        ctype, version = header[0], header[1:3]
        p = self.params
        if len(fragment) < p.record_iv_len + p.tag_len:
            raise DecryptError(f"impossible length {len(fragment)} for an AEAD record")
        if p.record_iv_len:
            nonce = self._iv + fragment[:p.record_iv_len]
        else:
            nonce = _xor_seq(self._iv, seq)
        ct = fragment[p.record_iv_len:]
        aad = struct.pack("!QB", seq, ctype) + version + struct.pack("!H", len(ct) - p.tag_len)
        try:
            return ctype, self._aead.decrypt(nonce, ct, aad)
        except InvalidTag:
            raise DecryptError("AEAD authentication tag mismatch (bad record MAC)") from None


class Tls13Cipher(RecordCipher):
    """TLS 1.3 record protection (RFC 8446 §5.2-5.3).

    key, iv from the traffic secret (§7.3); nonce = iv XOR seq; additional data = the
    5-byte record header; the plaintext is TLSInnerPlaintext = content + content type +
    zero padding, whose last non-zero byte is the real content type.
    """

    def __init__(self, params: SuiteParams, secret: bytes):
        self.params = params
        self.secret = secret
        key, self._iv = tls13_traffic_key_iv(secret, params)
        self._aead = _aead(params, key)

    def next(self) -> Tls13Cipher:
        """The cipher after a KeyUpdate (RFC 8446 §7.2)."""
        return Tls13Cipher(self.params, tls13_next_traffic_secret(self.secret, self.params.prf_hash))

    def open(self, header: bytes, fragment: bytes, seq: int) -> tuple[int, bytes]:
        if len(fragment) < self.params.tag_len + 1:
            raise DecryptError(f"impossible length {len(fragment)} for a TLS 1.3 record")
        try:
            inner = self._aead.decrypt(_xor_seq(self._iv, seq), fragment, bytes(header[:5]))
        except InvalidTag:
            raise DecryptError("AEAD authentication tag mismatch (bad record MAC)") from None
        end = len(inner)
        while end and inner[end - 1] == 0:
            end -= 1
        if end == 0:
            raise DecryptError("inner plaintext holds no content type (all zeros)")
        return inner[end - 1], inner[:end - 1]


def tls12_ciphers(params: SuiteParams, master_secret: bytes, client_random: bytes,
                  server_random: bytes, encrypt_then_mac: bool = False
                  ) -> tuple[RecordCipher, RecordCipher]:
    """(client→server cipher, server→client cipher) of a TLS 1.2 session from its master
    secret (key log label CLIENT_RANDOM) and the two hello randoms (RFC 5246 §6.3).
    ``encrypt_then_mac``: the ServerHello echoed the encrypt_then_mac extension (RFC 7366;
    only matters for CBC suites)."""
    kb = tls12_key_block(params, master_secret, client_random, server_random)
    if params.cipher == "AES-CBC":
        return (Tls12CbcCipher(params, kb.client_key, kb.client_mac_key, encrypt_then_mac),
                Tls12CbcCipher(params, kb.server_key, kb.server_mac_key, encrypt_then_mac))
    return (Tls12AeadCipher(params, kb.client_key, kb.client_iv),
            Tls12AeadCipher(params, kb.server_key, kb.server_iv))
