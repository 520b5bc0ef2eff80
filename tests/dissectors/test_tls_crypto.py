"""Key schedules (published vectors) and record protection, sealed here independently."""
from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from ccs_analyzer.dissectors.tls_crypto import (
    DecryptError,
    Tls12AeadCipher,
    Tls12CbcCipher,
    Tls13Cipher,
    cipher_suite_name,
    hkdf_expand_label,
    is_grease,
    suite_params,
    tls12_key_block,
    tls12_prf,
    tls13_next_traffic_secret,
    tls13_traffic_key_iv,
)

H = bytes.fromhex


def test_tls12_prf_sha256_vector():
    # the TLS 1.2 PRF (P_SHA256) test vector published on the IETF TLS WG list
    out = tls12_prf(H("9bbe436ba940f017b17652849a71db35"), b"test label",
                    H("a0ba9f936cda311827a6f796ffd5198c"), 100)
    assert out == H("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
                    "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
                    "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
                    "87347b66")


def test_hkdf_expand_label_rfc8448_simple_1rtt():
    # RFC 8448 §3: handshake traffic secrets → write keys (TLS_AES_128_GCM_SHA256)
    s_hs = H("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    c_hs = H("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
    assert hkdf_expand_label(s_hs, b"key", b"", 16) == H("3fce516009c21727d0f2e4e86ee403bc")
    assert hkdf_expand_label(s_hs, "iv", b"", 12) == H("5d313eb2671276ee13000b30")
    assert hkdf_expand_label(s_hs, b"finished", b"", 32) == H(
        "008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8")
    assert tls13_traffic_key_iv(c_hs, suite_params(0x1301)) == (
        H("dbfaa693d1762c5b666af5d950258d01"), H("5bd3c71b836e0b76bb73265f"))


def test_tls13_next_traffic_secret_is_hkdf_expand_label():
    s = bytes(range(48))
    assert tls13_next_traffic_secret(s, "SHA384") == hkdf_expand_label(
        s, b"traffic upd", b"", 48, "SHA384")


@pytest.mark.parametrize("code, cipher, key_len, mac, prf, tag_len", [
    (0xC023, "AES-CBC", 16, "SHA256", "SHA256", 0),   # ISO 15118-2, ECDHE
    (0xC025, "AES-CBC", 16, "SHA256", "SHA256", 0),   # ISO 15118-2, ECDH
    (0xC024, "AES-CBC", 32, "SHA384", "SHA384", 0),
    (0x002F, "AES-CBC", 16, "SHA1", "SHA256", 0),
    (0xC02B, "AES-GCM", 16, None, "SHA256", 16),
    (0xC030, "AES-GCM", 32, None, "SHA384", 16),
    (0xCCA9, "CHACHA20-POLY1305", 32, None, "SHA256", 16),
    (0xC0AE, "AES-CCM", 16, None, "SHA256", 8),
    (0xC0AC, "AES-CCM", 16, None, "SHA256", 16),
    (0x1302, "AES-GCM", 32, None, "SHA384", 16),      # ISO 15118-20
    (0x1303, "CHACHA20-POLY1305", 32, None, "SHA256", 16),  # ISO 15118-20
    (0x1305, "AES-CCM", 16, None, "SHA256", 8),
])
def test_suite_params(code, cipher, key_len, mac, prf, tag_len):
    p = suite_params(code)
    assert (p.cipher, p.key_len, p.mac, p.prf_hash, p.tag_len) == (cipher, key_len, mac, prf, tag_len)
    assert p.tls13 == (code >> 8 == 0x13)


@pytest.mark.parametrize("code", [0x000A, 0x0005, 0xC072, 0xC05C, 0x0002, 0x00FF, 0x5600, 0x1234])
def test_suites_we_do_not_decrypt(code):
    assert suite_params(code) is None


def test_cipher_suite_names():
    assert cipher_suite_name(0x1302) == "TLS_AES_256_GCM_SHA384"
    assert cipher_suite_name(0xC023) == "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
    assert cipher_suite_name(0xC025) == "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"
    assert cipher_suite_name(0x3A3A) == "GREASE (0x3A3A)" and is_grease(0xFAFA)
    assert not is_grease(0x3A3B)
    assert cipher_suite_name(0x1234) == "0x1234"


# -- record protection, sealed with cryptography primitives in the test ----------------------

def _hmac(h, key, data):
    m = hmac.HMAC(key, h())
    m.update(data)
    return m.finalize()


def _pad(data: bytes) -> bytes:
    n = 15 - len(data) % 16
    return data + bytes([n]) * (n + 1)


def _cbc_seal(key, mac_key, h, seq, ctype, data, etm, iv=bytes(range(16))):
    """RFC 5246 §6.2.3.2 (MAC-then-encrypt) or RFC 7366 §3 (encrypt-then-MAC)."""
    version = b"\x03\x03"
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    if etm:
        body = iv + enc.update(_pad(data)) + enc.finalize()
        mac = _hmac(h, mac_key, struct.pack("!QB", seq, ctype) + version
                    + struct.pack("!H", len(body)) + body)
        frag = body + mac
    else:
        mac = _hmac(h, mac_key, struct.pack("!QB", seq, ctype) + version
                    + struct.pack("!H", len(data)) + data)
        frag = iv + enc.update(_pad(data + mac)) + enc.finalize()
    return bytes([ctype]) + version + struct.pack("!H", len(frag)), frag


@pytest.mark.parametrize("etm", [False, True])
@pytest.mark.parametrize("code", [0xC023, 0xC024, 0x002F])
def test_tls12_cbc(code, etm):
    p = suite_params(code)
    h = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384}[p.mac]
    key, mac_key = bytes(range(p.key_len)), bytes(range(100, 100 + p.mac_len))
    c = Tls12CbcCipher(p, key, mac_key, etm)
    for seq, data in [(0, b""), (1, b"A" * 15), (7, bytes(range(256)) * 5)]:
        header, frag = _cbc_seal(key, mac_key, h, seq, 23, data, etm)
        assert c.open(header, frag, seq) == (23, data)
        with pytest.raises(DecryptError, match="MAC|padding"):
            c.open(header, frag, seq + 1)
        bad = bytearray(frag)
        bad[20] ^= 1
        with pytest.raises(DecryptError):
            c.open(header, bytes(bad), seq)
    with pytest.raises(DecryptError, match="impossible length"):
        c.open(b"\x17\x03\x03\x00\x05", b"12345", 0)


@pytest.mark.parametrize("code", [0xC02B, 0xC02C, 0xCCA9, 0xC0AE, 0xC0AC])
def test_tls12_aead(code):
    p = suite_params(code)
    key, fixed_iv = bytes(range(p.key_len)), bytes(range(50, 50 + p.fixed_iv_len))
    c = Tls12AeadCipher(p, key, fixed_iv)
    seq, data = 5, b"ISO 15118 message"
    aad = struct.pack("!QB", seq, 23) + b"\x03\x03" + struct.pack("!H", len(data))
    if p.cipher == "CHACHA20-POLY1305":
        nonce = (int.from_bytes(fixed_iv, "big") ^ seq).to_bytes(12, "big")
        frag = ChaCha20Poly1305(key).encrypt(nonce, data, aad)
    else:
        explicit = struct.pack("!Q", seq)
        aead = AESGCM(key) if p.cipher == "AES-GCM" else AESCCM(key, tag_length=p.tag_len)
        frag = explicit + aead.encrypt(fixed_iv + explicit, data, aad)
    header = b"\x17\x03\x03" + struct.pack("!H", len(frag))
    assert c.open(header, frag, seq) == (23, data)
    with pytest.raises(DecryptError, match="tag"):
        c.open(header, frag, seq + 1)


def test_tls13_inner_plaintext():
    p = suite_params(0x1302)
    secret = bytes(range(48))
    key, iv = tls13_traffic_key_iv(secret, p)
    c = Tls13Cipher(p, secret)

    def seal(seq, inner):
        header = b"\x17\x03\x03" + struct.pack("!H", len(inner) + 16)
        nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
        return header, AESGCM(key).encrypt(nonce, inner, header)

    assert c.open(*seal(3, b"alert?\x15" + bytes(10)), 3) == (21, b"alert?")
    assert c.open(*seal(0, b"\x16"), 0) == (22, b"")
    with pytest.raises(DecryptError, match="no content type"):
        c.open(*seal(1, bytes(5)), 1)
    with pytest.raises(DecryptError, match="tag"):
        c.open(*seal(1, b"x\x17"), 2)
    assert c.next().secret == tls13_next_traffic_secret(secret, "SHA384")


def test_tls12_key_block_layout():
    p = suite_params(0xC023)
    kb = tls12_key_block(p, bytes(48), bytes(32), bytes(range(32)))
    full = tls12_prf(bytes(48), b"key expansion", bytes(range(32)) + bytes(32), 2 * (32 + 16))
    assert kb.client_mac_key + kb.server_mac_key + kb.client_key + kb.server_key == full
    assert kb.client_iv == kb.server_iv == b""
    g = tls12_key_block(suite_params(0xC02B), bytes(48), bytes(32), bytes(32))
    assert len(g.client_iv) == 4 and g.client_mac_key == b""
