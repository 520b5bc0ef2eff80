"""TlsConnection against real TLS sessions made here with Python's ssl module (memory BIOs).

Each session is a genuine OpenSSL handshake + application data between an "EVCC" client and
a "SECC" server with an ISO 15118-like ECDSA P-256 PKI (root → sub-CA → leaf) made with
``cryptography``; the client writes an NSS key log (``keylog_filename``). The bytes the two
sides exchanged are fed to TlsConnection in several chunkings, with the key log given before
or only after the application data (then ``retry``).

TLS 1.3 suites other than OpenSSL's first choice (TLS_AES_256_GCM_SHA384) can only be forced
through an OpenSSL configuration file, so those sessions are made in a subprocess that runs
this file with OPENSSL_CONF set (``python test_tls_sessions.py generate …``).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import ssl
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ccs_analyzer.dissectors.tls import TlsConnection, TlsEvent, looks_like_tls
from ccs_analyzer.dissectors.tls_crypto import hkdf_expand_label
from ccs_analyzer.dissectors.tls_keylog import KeyLog

# ISO 15118-like application messages (V2GTP header + opaque payload), both ways.
MESSAGES = [
    (0, bytes.fromhex("01fe8001") + struct.pack("!I", 37) + bytes(range(37))),
    (1, bytes.fromhex("01fe8001") + struct.pack("!I", 14) + b"\x80\x40" * 7),
    (0, bytes.fromhex("01fe8001") + struct.pack("!I", 900) + random.Random(7).randbytes(900)),
    (1, bytes.fromhex("01fe8001") + struct.pack("!I", 20000) + bytes(i % 251 for i in range(20000))),
    (0, b"short"),
    (1, b"x" * 3),
]

SSL_OP_NO_ENCRYPT_THEN_MAC = 1 << 19      # OpenSSL 3 ssl.h, not exported by Python's ssl


# -- PKI ------------------------------------------------------------------------------------

def _name(cn: str, dc: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ccs-analyzer tests"),
                      x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc)])


def _cert(subject, key, issuer, issuer_key, *, ca: bool, path_length=None, serial: int,
          eku=None, san=None) -> x509.Certificate:
    t0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(t0).not_valid_after(t0 + datetime.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False,
                                      key_agreement=not ca, key_cert_sign=ca, crl_sign=ca,
                                      encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                        critical=False))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_pki(folder: Path) -> dict:
    """V2G root → CPO sub-CA → SECC leaf (ECDSA P-256), an EVCC (OEM) leaf, and an RSA SECC
    leaf for the RSA suites. Writes PEM files into ``folder``; returns the certificates."""
    root_k = ec.generate_private_key(ec.SECP256R1())
    root = _cert(_name("V2G Root CA", "V2G"), root_k, _name("V2G Root CA", "V2G"), root_k,
                 ca=True, serial=1)
    sub_k = ec.generate_private_key(ec.SECP256R1())
    sub = _cert(_name("CPO Sub-CA", "CPO"), sub_k, root.subject, root_k, ca=True, path_length=0,
                serial=2)
    secc_k = ec.generate_private_key(ec.SECP256R1())
    secc = _cert(_name("SECC DE*ABC*E123", "CPO"), secc_k, sub.subject, sub_k, ca=False, serial=3,
                 eku=[ExtendedKeyUsageOID.SERVER_AUTH], san="secc.example")
    evcc_k = ec.generate_private_key(ec.SECP256R1())
    evcc = _cert(_name("EVCC WMI123456", "OEM"), evcc_k, root.subject, root_k, ca=False, serial=4,
                 eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    rsa_k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_leaf = _cert(_name("SECC RSA", "CPO"), rsa_k, sub.subject, sub_k, ca=False, serial=5,
                     eku=[ExtendedKeyUsageOID.SERVER_AUTH], san="secc.example")
    files = {
        "root.pem": _pem(root),
        "secc_chain.pem": _pem(secc) + _pem(sub), "secc.key": _pem(secc_k),
        "rsa_chain.pem": _pem(rsa_leaf) + _pem(sub), "rsa.key": _pem(rsa_k),
        "evcc.pem": _pem(evcc), "evcc.key": _pem(evcc_k),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {"root": root, "sub": sub, "secc": secc, "evcc": evcc, "rsa": rsa_leaf}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    certs = make_pki(folder)
    return folder, certs


# -- sessions -------------------------------------------------------------------------------

@dataclass
class Session:
    transcript: list          # [(direction, bytes)] in the order the two sides sent them
    keylog: str               # the client's NSS key log
    cipher: str               # OpenSSL's name of the negotiated suite
    version: str


def make_session(folder: Path, *, tls13: bool, ciphers: str | None = None, mtls: bool = False,
                 rsa_server: bool = False, no_etm: bool = False, messages=MESSAGES,
                 close: bool = True, client_trusts: bool = True, client_cert: bool | None = None
                 ) -> Session:
    """Run one TLS session between two ssl objects over memory BIOs and record the bytes."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if rsa_server:
        sctx.load_cert_chain(folder / "rsa_chain.pem", folder / "rsa.key")
    else:
        sctx.load_cert_chain(folder / "secc_chain.pem", folder / "secc.key")
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if client_trusts:
        cctx.load_verify_locations(folder / "root.pem")
    version = ssl.TLSVersion.TLSv1_3 if tls13 else ssl.TLSVersion.TLSv1_2
    for ctx in (sctx, cctx):
        ctx.minimum_version = ctx.maximum_version = version
        if ciphers:
            ctx.set_ciphers(ciphers)
    if no_etm:
        cctx.options |= SSL_OP_NO_ENCRYPT_THEN_MAC
    if mtls:
        sctx.verify_mode = ssl.CERT_REQUIRED
        sctx.load_verify_locations(folder / "root.pem")
    if client_cert if client_cert is not None else mtls:
        cctx.load_cert_chain(folder / "evcc.pem", folder / "evcc.key")
    keylog = folder / f"keylog-{os.getpid()}-{random.random()}.txt"
    cctx.keylog_filename = str(keylog)
    bios = [ssl.MemoryBIO() for _ in range(4)]
    client = cctx.wrap_bio(bios[0], bios[1], server_hostname="secc.example")
    server = sctx.wrap_bio(bios[2], bios[3], server_side=True)
    transcript = []

    def pump():
        moved = True
        while moved:
            moved = False
            out = bios[1].read()
            if out:
                transcript.append((0, out))
                bios[2].write(out)
                moved = True
            out = bios[3].read()
            if out:
                transcript.append((1, out))
                bios[0].write(out)
                moved = True

    def attempt(fn):
        try:
            return fn()
        except (ssl.SSLWantReadError, ssl.SSLError, OSError):
            return None

    for _ in range(8):
        attempt(client.do_handshake)
        pump()
        attempt(server.do_handshake)
        pump()
    ends = (client, server)
    for direction, payload in messages:
        attempt(lambda: ends[direction].write(payload))
        pump()
        got = b""
        while True:
            chunk = attempt(lambda: ends[1 - direction].read(65536))
            if not chunk:
                break
            got += chunk
        pump()
    if close:
        attempt(client.unwrap)
        pump()
        attempt(server.unwrap)
        pump()
    text = keylog.read_text() if keylog.exists() else ""
    keylog.unlink(missing_ok=True)
    cipher = client.cipher()
    return Session(transcript, text, cipher[0] if cipher else "", client.version() or "")


def make_session_subprocess(folder: Path, tls13_suite: str, **kw) -> Session:
    """make_session in a child process whose OpenSSL only enables ``tls13_suite`` for TLS 1.3."""
    conf = folder / f"openssl-{tls13_suite}.cnf"
    conf.write_text("openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n"
                    "[ssl_sect]\nsystem_default = system_default_sect\n"
                    f"[system_default_sect]\nCiphersuites = {tls13_suite}\n")
    env = dict(os.environ, OPENSSL_CONF=str(conf))
    out = subprocess.run([sys.executable, __file__, "generate", str(folder), json.dumps(kw)],
                         env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.skip(f"could not make a {tls13_suite} session: {out.stderr[-500:]}")
    data = json.loads(out.stdout)
    return Session([(d, bytes.fromhex(h)) for d, h in data["transcript"]], data["keylog"],
                   data["cipher"], data["version"])


# -- feeding --------------------------------------------------------------------------------

def chunked(transcript, mode: str, seed: int = 0) -> list[tuple[int, bytes, int]]:
    """Cut the transcript into (direction, bytes, frame) TCP-segment-like chunks.

    "whole": one chunk per write; "mss": 1220-byte segments (IPv6 link MTU); "random":
    random sizes, records split across chunks; "coalesce": consecutive writes of a direction
    merged, then random sizes; "bytes": one byte per chunk. Frame numbers grow with gaps,
    as other frames (ACKs, SLAC, …) interleave in real captures.
    """
    rng = random.Random(seed)
    items = list(transcript)
    if mode == "coalesce":
        merged = []
        for d, data in items:
            if merged and merged[-1][0] == d:
                merged[-1] = (d, merged[-1][1] + data)
            else:
                merged.append((d, data))
        items = merged
    out = []
    frame = 0
    for d, data in items:
        if mode == "whole":
            pieces = [data]
        elif mode == "mss":
            pieces = [data[i:i + 1220] for i in range(0, len(data), 1220)]
        elif mode == "bytes":
            pieces = [data[i:i + 1] for i in range(len(data))]
        else:
            pieces = []
            i = 0
            while i < len(data):
                n = rng.choice([1, 3, 5, 7, 60, 200, 512, 1220, 4000])
                pieces.append(data[i:i + n])
                i += n
        for p in pieces:
            frame += rng.randint(1, 3)
            out.append((d, p, frame))
    return out


def record_frames(chunks) -> dict:
    """{(direction, record offset): (first frame, last frame)} computed from the raw bytes."""
    streams = {0: bytearray(), 1: bytearray()}
    owner = {0: [], 1: []}
    for d, data, frame in chunks:
        streams[d] += data
        owner[d] += [frame] * len(data)
    out = {}
    for d in (0, 1):
        s = streams[d]
        pos = 0
        while pos + 5 <= len(s):
            end = pos + 5 + int.from_bytes(s[pos + 3:pos + 5], "big")
            if end > len(s):
                break
            out[(d, pos)] = (owner[d][pos], owner[d][end - 1])
            pos = end
    return out


def feed_all(conn: TlsConnection, chunks) -> list[TlsEvent]:
    events = []
    for d, data, frame in chunks:
        events += conn.feed(d, data, frame)
    return events


def app_data(events, direction: int) -> bytes:
    return b"".join(e.data for e in events if e.kind == "application_data" and e.direction == direction)


def sent(direction: int, messages=MESSAGES) -> bytes:
    return b"".join(p for d, p in messages if d == direction)


def keylog_of(session: Session) -> KeyLog:
    kl = KeyLog()
    assert kl.add_text(session.keylog) >= 1
    return kl


def check_decrypted(events, chunks, messages=MESSAGES):
    """Application data equals what was sent; every event sits on the right frames."""
    for d in (0, 1):
        assert app_data(events, d) == sent(d, messages)
    frames = record_frames(chunks)
    for e in events:
        assert e.kind != "error", e
        assert e.kind != "encrypted", e
        if e.kind == "application_data":
            assert (e.first_frame, e.frame) == frames[(e.direction, e.fields["offset"])]


def check_server_chain(conn: TlsConnection, pki_certs, leaf="secc"):
    chain = conn.server_certificates
    assert [c["subject_cn"] for c in chain] == [
        pki_certs[leaf].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, "CPO Sub-CA"]
    c0 = chain[0]
    assert c0["sha256"] == hashlib.sha256(
        pki_certs[leaf].public_bytes(serialization.Encoding.DER)).hexdigest()
    assert c0["issuer_cn"] == "CPO Sub-CA"
    assert c0["not_before"] == "2025-01-01T00:00:00Z" and c0["not_after"] == "2034-12-30T00:00:00Z"
    assert c0["subject_dc"] == ["CPO"]
    assert c0["extended_key_usage"] == ["serverAuth"]
    assert c0["subject_alt_names"] == ["DNS:secc.example"]
    assert c0["basic_constraints"] == {"ca": False, "path_length": None, "critical": True}
    assert c0["signature_algorithm"] == "ecdsa-with-SHA256"
    assert c0["issued_by_next"] is True and c0["signed_by_next"] is True
    assert chain[1]["basic_constraints"]["ca"] is True and chain[1]["basic_constraints"]["path_length"] == 0
    assert "keyCertSign" in chain[1]["key_usage"]
    if leaf == "secc":
        assert (c0["key_type"], c0["key_curve"], c0["key_size"]) == ("EC", "secp256r1", 256)
        assert c0["key_usage"] == ["digitalSignature", "keyAgreement"]
    else:
        assert (c0["key_type"], c0["key_size"]) == ("RSA", 2048)


def handshake(events, name, direction=None):
    return [e for e in events if e.kind == "handshake" and e.name == name
            and (direction is None or e.direction == direction)]


# -- TLS 1.2 --------------------------------------------------------------------------------

TLS12_CASES = {
    # id: (OpenSSL cipher string, IANA name, extra make_session arguments)
    "ECDHE-ECDSA-AES128-SHA256 (ISO 15118-2), encrypt-then-MAC":
        ("ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", {}),
    "ECDHE-ECDSA-AES128-SHA256 (ISO 15118-2), MAC-then-encrypt":
        ("ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", {"no_etm": True}),
    "ECDHE-ECDSA-AES128-GCM-SHA256":
        ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", {}),
    "ECDHE-ECDSA-AES256-GCM-SHA384":
        ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", {}),
    "ECDHE-ECDSA-CHACHA20-POLY1305":
        ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", {}),
    "ECDHE-ECDSA-AES128-CCM8":
        ("ECDHE-ECDSA-AES128-CCM8", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", {}),
    "ECDHE-ECDSA-AES256-SHA (HMAC-SHA1), mutual TLS":
        ("ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", {"mtls": True}),
    "ECDHE-RSA-AES256-SHA384, MAC-then-encrypt":
        ("ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
         {"rsa_server": True, "no_etm": True}),
    "AES128-SHA256 (RSA key exchange)":
        ("AES128-SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256", {"rsa_server": True}),
}


@pytest.mark.parametrize("case", list(TLS12_CASES))
@pytest.mark.parametrize("mode", ["whole", "random"])
def test_tls12_decrypts_with_keylog_given_first(pki, case, mode):
    folder, certs = pki
    openssl_name, iana, kw = TLS12_CASES[case]
    s = make_session(folder, tls13=False, ciphers=openssl_name, **kw)
    assert s.cipher == openssl_name
    chunks = chunked(s.transcript, mode, seed=len(case))
    conn = TlsConnection(keylog_of(s), "test")
    events = feed_all(conn, chunks)
    events += conn.close(chunks[-1][2] + 1)
    check_decrypted(events, chunks)
    assert conn.version == "TLS 1.2" and conn.cipher_suite == iana and conn.decrypting
    assert conn.is_tls
    check_server_chain(conn, certs, "rsa" if kw.get("rsa_server") else "secc")
    ch = handshake(events, "ClientHello", 0)[0]
    assert ch.fields["random"] == conn.client_random.hex()
    assert ch.fields["server_name"] == "secc.example"
    assert iana in ch.fields["cipher_suites"]
    sh = handshake(events, "ServerHello", 1)[0]
    assert sh.fields["cipher_suite"] == iana and sh.fields["version"] == "TLS 1.2"
    assert sh.fields["extended_master_secret"] is True
    if "CBC" in iana:
        assert sh.fields["encrypt_then_mac"] is (not kw.get("no_etm"))
    if "ECDHE" in iana:
        ske = handshake(events, "ServerKeyExchange", 1)[0]
        assert ske.fields["group"] == "x25519" and ske.fields["signature_algorithm"]
    if kw.get("mtls"):
        cr = handshake(events, "CertificateRequest", 1)[0]
        assert "ecdsa_sign" in cr.fields["certificate_types"]
        assert cr.fields["certificate_authorities"] == []     # Python's ssl sends no CA list
        assert conn.client_certificates[0]["subject_cn"] == "EVCC WMI123456"
        assert handshake(events, "CertificateVerify", 0)
    fins = handshake(events, "Finished")
    assert sorted(e.direction for e in fins) == [0, 1] and all(e.fields["encrypted"] for e in fins)
    alerts = [e.name for e in events if e.kind == "alert"]
    assert alerts == ["Alert warning close_notify"] * 2


def test_tls12_byte_by_byte(pki):
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256",
                     messages=MESSAGES[:3])
    chunks = chunked(s.transcript, "bytes")
    conn = TlsConnection(keylog_of(s))
    events = feed_all(conn, chunks) + conn.close(10 ** 6)
    check_decrypted(events, chunks, MESSAGES[:3])


@pytest.mark.parametrize("mode", ["whole", "coalesce"])
def test_tls12_keylog_only_after_application_data(pki, mode):
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256")
    chunks = chunked(s.transcript, mode, seed=3)
    kl = KeyLog()
    conn = TlsConnection(kl, "late keys")
    events = feed_all(conn, chunks)
    assert not [e for e in events if e.kind in ("application_data", "error", "encrypted")]
    assert handshake(events, "Certificate", 1) and conn.held_bytes > 0 and not conn.decrypting
    disclosed_at = chunks[-1][2] + 5
    before = kl.version
    for line in s.keylog.splitlines():
        kl.add_line(line, disclosed_at)
    assert kl.version > before
    late = conn.retry(disclosed_at)
    check_decrypted(events + late, chunks)
    assert all(e.fields["held_until_frame"] == disclosed_at for e in late)
    assert all(e.frame < disclosed_at for e in late)
    assert conn.held_bytes == 0 and conn.decrypting
    assert conn.close(disclosed_at + 1) == []


def test_tls12_keylog_disclosed_midway_feed_notices_it(pki):
    """Secrets arriving between two chunks are used without an explicit retry; order kept."""
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    chunks = chunked(s.transcript, "random", seed=9)
    kl = KeyLog()
    conn = TlsConnection(kl)
    half = len(chunks) * 2 // 3
    events = feed_all(conn, chunks[:half])
    kl.add_text(s.keylog)
    events += feed_all(conn, chunks[half:])
    events += conn.close(10 ** 6)
    check_decrypted(events, chunks)


def test_tls12_without_keylog_reports_encrypted_at_close(pki):
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256")
    chunks = chunked(s.transcript, "whole")
    conn = TlsConnection(KeyLog(), "no keys")
    events = feed_all(conn, chunks)
    end = conn.close(chunks[-1][2] + 1)
    enc = [e for e in end if e.kind == "encrypted"]
    assert enc and len(enc) == len(end)
    cr = conn.client_random.hex()
    assert all(f"no key log secrets for client random {cr}" in e.error for e in enc)
    assert {e.direction for e in enc} == {0, 1}
    # Finished, application data and the close_notify alerts stayed encrypted, each with its frame
    frames = record_frames(chunks)
    assert all((e.first_frame, e.frame) == frames[(e.direction, e.fields["offset"])] for e in enc)
    assert conn.server_certificates and conn.version == "TLS 1.2" and not conn.decrypting
    assert [e.name for e in enc].count("Alert (encrypted)") == 2
    assert not [e for e in events if e.kind == "application_data"]


# -- TLS 1.3 --------------------------------------------------------------------------------

def _tls13_session(folder, suite, **kw) -> Session:
    if suite == "TLS_AES_256_GCM_SHA384":
        return make_session(folder, tls13=True, **kw)
    return make_session_subprocess(folder, suite, tls13=True, **kw)


@pytest.fixture(scope="module")
def tls13_sessions(pki):
    folder, _ = pki
    cache = {}

    def get(suite, **kw):
        key = (suite, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = _tls13_session(folder, suite, **kw)
        return cache[key]
    return get


TLS13_SUITES = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_AES_128_GCM_SHA256", "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"]


@pytest.mark.parametrize("suite", TLS13_SUITES)
@pytest.mark.parametrize("mode", ["mss", "random"])
def test_tls13_mutual_tls_decrypts(pki, tls13_sessions, suite, mode):
    _, certs = pki
    s = tls13_sessions(suite, mtls=True)
    assert s.cipher == suite and s.version == "TLSv1.3"
    chunks = chunked(s.transcript, mode, seed=len(suite))
    conn = TlsConnection(keylog_of(s))
    events = feed_all(conn, chunks) + conn.close(10 ** 6)
    check_decrypted(events, chunks)
    assert conn.version == "TLS 1.3" and conn.cipher_suite == suite and conn.decrypting
    check_server_chain(conn, certs)
    client_chain = conn.client_certificates
    assert [c["subject_cn"] for c in client_chain] == ["EVCC WMI123456", "V2G Root CA"]
    assert client_chain[0]["subject_dc"] == ["OEM"]
    assert client_chain[0]["extended_key_usage"] == ["clientAuth"]
    ch = handshake(events, "ClientHello", 0)[0]
    assert ch.fields["offered_versions"] == ["TLS 1.3"]
    assert ch.fields["key_share_groups"] and ch.fields["signature_algorithms"]
    sh = handshake(events, "ServerHello", 1)[0]
    assert sh.fields["version"] == "TLS 1.3" and sh.fields["cipher_suite"] == suite
    assert sh.fields["group"] == "x25519" and not sh.fields["hello_retry_request"]
    cr = handshake(events, "CertificateRequest", 1)[0]
    assert cr.fields["encrypted"] and cr.fields["signature_algorithms"]
    names = [e.name for e in events if e.kind == "handshake"]
    for n in ("EncryptedExtensions", "Certificate", "CertificateVerify", "Finished",
              "NewSessionTicket"):
        assert n in names
    assert len(handshake(events, "Finished")) == 2
    assert len(handshake(events, "CertificateVerify")) == 2
    assert [e.name for e in events if e.kind == "alert"] == ["Alert warning close_notify"] * 2
    assert all(e.fields["encrypted"] for e in events if e.kind == "alert")


@pytest.mark.parametrize("suite", ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"])
def test_tls13_keylog_only_after_application_data(tls13_sessions, suite):
    s = tls13_sessions(suite, mtls=True)
    chunks = chunked(s.transcript, "random", seed=1)
    kl = KeyLog()
    conn = TlsConnection(kl)
    events = feed_all(conn, chunks)
    assert [e.name for e in events] == ["ClientHello", "ServerHello", "ChangeCipherSpec",
                                        "ChangeCipherSpec"]
    assert conn.server_certificates == []          # encrypted in TLS 1.3
    # the secrets come in one by one, as dSPACE test systems disclose them
    lines = [ln for ln in s.keylog.splitlines() if ln and not ln.startswith("#")]
    late = []
    for i, line in enumerate(lines):
        kl.add_line(line, 1000 + i)
        late += conn.retry(1000 + i)
    check_decrypted(events + late, chunks)
    assert conn.server_certificates and conn.client_certificates


def test_tls13_only_handshake_secrets(tls13_sessions):
    s = tls13_sessions("TLS_AES_256_GCM_SHA384", mtls=True)
    kl = KeyLog()
    kl.add_text("\n".join(ln for ln in s.keylog.splitlines() if "HANDSHAKE" in ln))
    conn = TlsConnection(kl)
    chunks = chunked(s.transcript, "whole")
    events = feed_all(conn, chunks)
    assert conn.server_certificates and conn.client_certificates
    assert not [e for e in events if e.kind == "application_data"]
    end = conn.close(10 ** 6)
    assert end and all(e.kind == "encrypted" for e in end)
    assert any("needs SERVER_TRAFFIC_SECRET_0" in e.error for e in end)
    assert any("needs CLIENT_TRAFFIC_SECRET_0" in e.error for e in end)


def _encrypt13(secret: bytes, seq: int, inner_type: int, content: bytes) -> bytes:
    """One TLS 1.3 record under TLS_AES_256_GCM_SHA384 (independent of the code under test,
    except for HKDF-Expand-Label, which the RFC 8448 vectors pin down)."""
    key = hkdf_expand_label(secret, b"key", b"", 32, "SHA384")
    iv = hkdf_expand_label(secret, b"iv", b"", 12, "SHA384")
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    inner = content + bytes([inner_type]) + b"\x00" * 3
    header = b"\x17\x03\x03" + struct.pack("!H", len(inner) + 16)
    return header + AESGCM(key).encrypt(nonce, inner, header)


def test_tls13_key_update(tls13_sessions):
    """A KeyUpdate (RFC 8446 §4.6.3) switches the sender to the next application secret."""
    s = tls13_sessions("TLS_AES_256_GCM_SHA384", mtls=False, close=False)
    kl = keylog_of(s)
    conn = TlsConnection(kl)
    chunks = chunked(s.transcript, "whole")
    events = feed_all(conn, chunks)
    n_client_app = sum(1 for e in events
                       if e.direction == 0 and e.fields.get("epoch") == "application")
    assert n_client_app == 3
    secret0 = kl.get(conn.client_random, "CLIENT_TRAFFIC_SECRET_0")
    secret1 = hkdf_expand_label(secret0, b"traffic upd", b"", 48, "SHA384")
    key_update = b"\x18\x00\x00\x01\x01"                       # update_requested
    extra = (_encrypt13(secret0, n_client_app, 22, key_update)
             + _encrypt13(secret1, 0, 23, b"after key update")
             + _encrypt13(secret1, 1, 23, b" and again"))
    more = conn.feed(0, extra, 500)
    assert [e.name for e in more] == ["KeyUpdate", "ApplicationData", "ApplicationData"]
    assert more[0].fields["request_update"] == "update_requested"
    assert b"".join(e.data for e in more[1:]) == b"after key update and again"
    assert more[2].fields["epoch"] == "application (after 1 KeyUpdates)"


def test_tls13_missed_key_update_is_recovered(tls13_sessions):
    """A KeyUpdate record lost from the capture: the next epoch's keys are tried."""
    s = tls13_sessions("TLS_AES_256_GCM_SHA384", mtls=False, close=False)
    kl = keylog_of(s)
    conn = TlsConnection(kl)
    events = feed_all(conn, chunked(s.transcript, "whole"))
    n = sum(1 for e in events if e.direction == 0 and e.fields.get("epoch") == "application")
    secret0 = kl.get(conn.client_random, "CLIENT_TRAFFIC_SECRET_0")
    secret1 = hkdf_expand_label(secret0, b"traffic upd", b"", 48, "SHA384")
    lost = _encrypt13(secret0, n, 22, b"\x18\x00\x00\x01\x00")
    out = conn.gap(0, len(lost), 600)
    assert out[0].kind == "error" and "missing" in out[0].error
    more = conn.feed(0, _encrypt13(secret1, 0, 23, b"still readable"), 601)
    assert [e.data for e in more if e.kind == "application_data"] == [b"still readable"]
    assert more[-1].fields["key_change_inferred"] is True


# -- alerts and tampering -------------------------------------------------------------------

def test_tls12_fatal_alert_unknown_ca(pki):
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256",
                     client_trusts=False, messages=[])
    kl = KeyLog()
    kl.add_text(s.keylog)          # the client gave up before computing a master secret
    conn = TlsConnection(kl)
    events = feed_all(conn, chunked(s.transcript, "whole")) + conn.close(10 ** 6)
    alerts = [e for e in events if e.kind == "alert"]
    assert [e.name for e in alerts] == ["Alert fatal unknown_ca"]
    assert alerts[0].direction == 0 and alerts[0].fields["level_name"] == "fatal"
    assert alerts[0].fields["description"] == 48 and alerts[0].fields["encrypted"] is False


def test_tls13_encrypted_fatal_alert_certificate_required(pki, tls13_sessions):
    """ISO 15118-20 mutual TLS: an EVCC without certificate gets certificate_required,
    which in TLS 1.3 travels encrypted."""
    s = tls13_sessions("TLS_AES_256_GCM_SHA384", mtls=True, client_cert=False, messages=(),
                       close=False)
    conn = TlsConnection(keylog_of(s))
    events = feed_all(conn, chunked(s.transcript, "whole")) + conn.close(10 ** 6)
    alerts = [e for e in events if e.kind == "alert"]
    assert [e.name for e in alerts] == ["Alert fatal certificate_required"]
    assert alerts[0].direction == 1 and alerts[0].fields["encrypted"] is True
    empty = handshake(events, "Certificate", 0)[0]
    assert empty.fields["count"] == 0 and conn.client_certificates == []


@pytest.mark.parametrize("tls13", [False, True])
def test_tampered_record_is_reported_and_the_connection_goes_on(pki, tls13_sessions, tls13):
    folder, _ = pki
    if tls13:
        s = tls13_sessions("TLS_AES_256_GCM_SHA384", mtls=True)
    else:
        s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256")
    chunks = chunked(s.transcript, "random", seed=11)
    offset = record_offset(s, chunks, 0, MESSAGES[2][1])     # the record carrying MESSAGES[2]
    chunks, frame = tamper(chunks, 0, offset + 400)
    conn = TlsConnection(keylog_of(s))
    events = feed_all(conn, chunks) + conn.close(10 ** 6)
    errors = [e for e in events if e.kind == "error"]
    assert len(errors) == 1
    err = errors[0]
    assert err.name == "Record authentication failed" and err.frame == frame and err.direction == 0
    assert f"frame {frame}" in err.error and f"record {err.fields['record']}" in err.error
    assert "application_data" in err.error
    # everything else still decrypts: only the tampered message is missing
    assert app_data(events, 0) == sent(0).replace(MESSAGES[2][1], b"")
    assert app_data(events, 1) == sent(1)
    assert [e.name for e in events if e.kind == "alert"] == ["Alert warning close_notify"] * 2


# -- gaps and limits ------------------------------------------------------------------------

def record_offset(s: Session, chunks, direction: int, plaintext: bytes) -> int:
    """Stream offset of the record whose plaintext is ``plaintext`` (from a clean run)."""
    events = feed_all(TlsConnection(keylog_of(s)), chunks)
    return [e.fields["offset"] for e in events if e.kind == "application_data"
            and e.direction == direction and e.data == plaintext][0]


def tamper(chunks, direction: int, offset: int):
    """Flip one bit of the byte at stream ``offset``; returns (chunks, frame of that byte)."""
    out = []
    pos = 0
    hit = None
    for d, data, frame in chunks:
        if d == direction and pos <= offset < pos + len(data):
            b = bytearray(data)
            b[offset - pos] ^= 0x40
            data = bytes(b)
            hit = frame
        if d == direction:
            pos += len(data)
        out.append((d, data, frame))
    assert hit is not None
    return out, hit


def _streams(chunks):
    out = {0: b"", 1: b""}
    for d, data, _ in chunks:
        out[d] += data
    return out


def _records(stream: bytes):
    pos = 0
    out = []
    while pos + 5 <= len(stream):
        end = pos + 5 + int.from_bytes(stream[pos + 3:pos + 5], "big")
        out.append((pos, end))
        pos = end
    return out


@pytest.mark.parametrize("tls13", [False, True])
def test_gap_inside_one_record_keeps_sync(pki, tls13_sessions, tls13):
    """Bytes lost inside a record whose header was seen: that record is lost, the next
    ones decrypt (the record length tells where they start, the sequence number is +1)."""
    folder, _ = pki
    s = (tls13_sessions("TLS_AES_256_GCM_SHA384", mtls=False) if tls13 else
         make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
    chunks = chunked(s.transcript, "whole")
    server = _streams(chunks)[1]
    big = max(_records(server), key=lambda r: r[1] - r[0])   # a record of the 20000-byte message
    reference = feed_all(TlsConnection(keylog_of(s)), chunks)
    lost_plain = [e.data for e in reference if e.kind == "application_data"
                  and e.direction == 1 and e.fields["offset"] == big[0]][0]
    lost_from, lost_to = big[0] + 100, big[0] + 3000
    conn = TlsConnection(keylog_of(s))
    events = []
    for d, data, frame in chunks:
        if d == 0:
            events += conn.feed(0, data, frame)
    events += conn.feed(1, server[:lost_from], 1)
    gap = conn.gap(1, lost_to - lost_from, 2)
    assert [e.name for e in gap] == ["Bytes missing"]
    assert gap[0].fields["missing_bytes"] == lost_to - lost_from
    assert gap[0].fields["records_lost_at_least"] == 1
    events += conn.feed(1, server[lost_to:], 3)
    events += conn.close(4)
    assert not [e for e in events if e.kind in ("error", "encrypted")], events
    assert app_data(events, 1) == sent(1).replace(lost_plain, b"", 1)
    assert app_data(events, 0) == sent(0)


@pytest.mark.parametrize("tls13", [False, True])
def test_gap_across_records_resynchronises(pki, tls13_sessions, tls13):
    """Bytes lost across record boundaries: resynchronise on the next record header and find
    the sequence number the following record used."""
    folder, _ = pki
    msgs = [(0, b"m%d" % i * 40) for i in range(30)]
    s = (tls13_sessions("TLS_AES_256_GCM_SHA384", messages=tuple(msgs), close=True) if tls13 else
         make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256", messages=msgs))
    client = _streams(chunked(s.transcript, "whole"))[0]
    chunks = chunked(s.transcript, "whole")
    lost_from = record_offset(s, chunks, 0, msgs[10][1]) + 7   # inside message 10's record …
    lost_to = record_offset(s, chunks, 0, msgs[14][1]) + 3     # … to inside message 14's header
    conn = TlsConnection(keylog_of(s))
    events = []
    for d, data, frame in chunked(s.transcript, "whole"):
        if d == 1:
            events += conn.feed(1, data, frame)
    events += conn.feed(0, client[:lost_from], 1)
    events += conn.gap(0, lost_to - lost_from, 2)
    events += conn.feed(0, client[lost_to:], 3)
    events += conn.close(4)
    errors = [e for e in events if e.kind == "error"]
    assert [e.name for e in errors] == ["Bytes missing", "Not a TLS record"]
    got = app_data(events, 0)
    want = b"".join(p for _, p in msgs)
    # records 10..14 are lost: the data before and after is intact
    assert got.startswith(b"".join(p for _, p in msgs[:10]))
    assert got.endswith(b"".join(p for _, p in msgs[15:]))
    assert len(got) < len(want)
    assert [e.name for e in events if e.kind == "alert" and e.direction == 0] == [
        "Alert warning close_notify"]


def test_held_back_limit_drops_and_keeps_counting(tls13_sessions):
    """Over the held-back limit records are reported and dropped; once the secrets come, the
    held ones decrypt and later records too (sequence numbers count the dropped ones)."""
    msgs = [(0, bytes([65 + i]) * 3000) for i in range(10)] + [(0, b"tail %d" % i) for i in range(3)]
    s = tls13_sessions("TLS_AES_256_GCM_SHA384", messages=tuple(msgs), close=False)
    chunks = chunked(s.transcript, "whole")
    assert [c[1] for c in chunks[-3:]] and all(c[0] == 0 for c in chunks[-3:])
    kl = KeyLog()
    conn = TlsConnection(kl, max_held_bytes=12000)
    events = feed_all(conn, chunks[:-3])
    dropped = [e for e in events if e.kind == "encrypted"]
    assert dropped and all("limit" in e.error for e in dropped)
    assert all(e.direction == 0 for e in dropped)
    assert conn.held_bytes <= 12000
    kl.add_text(s.keylog)
    late = conn.retry(999)
    assert not [e for e in late if e.kind in ("error", "encrypted")]
    held_plain = app_data(late, 0)
    assert held_plain == b"".join(p for _, p in msgs[:10 - len(dropped)])
    assert conn.stats["dropped"][0] == len(dropped)
    more = feed_all(conn, chunks[-3:]) + conn.close(10 ** 6)
    assert not [e for e in more if e.kind in ("error", "encrypted")]
    assert app_data(more, 0) == b"tail 0tail 1tail 2"


def test_partial_record_at_close(pki):
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256", messages=MESSAGES[:2])
    chunks = chunked(s.transcript, "whole")
    conn = TlsConnection(keylog_of(s))
    feed_all(conn, chunks[:-1])
    d, data, frame = chunks[-1]
    conn.feed(d, data[:9], frame)
    end = conn.close(frame + 1)
    assert [e.name for e in end] == ["Partial record"]
    assert "9 of" in end[0].error and end[0].first_frame == frame


def test_not_tls(pki):
    conn = TlsConnection(KeyLog(), "plain V2GTP")
    v2gtp = MESSAGES[0][1]
    assert looks_like_tls(v2gtp) is False
    out = conn.feed(0, v2gtp, 7)
    assert [e.name for e in out] == ["Not TLS"] and out[0].frame == 7
    assert conn.feed(1, v2gtp, 8) == [] and conn.close(9) == []
    assert not conn.is_tls


def test_capture_starting_mid_connection(pki):
    """No ClientHello captured: records are followed and reported encrypted at close."""
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256", messages=MESSAGES[:4])
    chunks = chunked(s.transcript, "whole")
    first_app = next(i for i, c in enumerate(chunks) if c[1][0] == 23)
    conn = TlsConnection(keylog_of(s))
    events = feed_all(conn, chunks[first_app:])
    assert events == [] and conn.held_back_first_frame == chunks[first_app][2]
    assert not conn.is_tls
    end = conn.close(10 ** 6)
    assert end and all(e.kind == "encrypted" and "no ClientHello seen" in e.error for e in end)
    assert conn.held_back_first_frame is None


def test_held_back_first_frame(pki):
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256", messages=MESSAGES[:2])
    chunks = chunked(s.transcript, "whole")
    kl = KeyLog()
    conn = TlsConnection(kl)
    assert conn.held_back_first_frame is None
    feed_all(conn, chunks)
    client_finished = [c for c in chunks if c[0] == 0][1][2]    # ClientKeyExchange+CCS+Finished
    assert conn.held_back_first_frame == client_finished
    kl.add_text(s.keylog)
    conn.retry(999)
    assert conn.held_back_first_frame is None


def test_garbage_never_raises(pki):
    folder, _ = pki
    s = make_session(folder, tls13=False, ciphers="ECDHE-ECDSA-AES128-SHA256", messages=MESSAGES[:2])
    rng = random.Random(1234)
    base = chunked(s.transcript, "random", seed=5)
    kl = keylog_of(s)
    for trial in range(60):
        chunks = []
        for d, data, frame in base:
            data = bytearray(data)
            for _ in range(rng.randint(0, 2)):
                if data and rng.random() < 0.3:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.05:
                data = bytearray(rng.randbytes(rng.randint(0, 300)))
            chunks.append((d if rng.random() > 0.02 else 1 - d, bytes(data), frame))
        conn = TlsConnection(kl if trial % 2 else KeyLog(), max_held_bytes=4096)
        events = []
        for d, data, frame in chunks:
            events += conn.feed(d, data, frame)
            if rng.random() < 0.05:
                events += conn.gap(d, rng.randint(0, 5000), frame)
            if rng.random() < 0.05:
                events += conn.retry(frame)
        events += conn.close(10 ** 6)
        assert all(isinstance(e, TlsEvent) for e in events)
        assert not [e for e in events if e.name == "Internal error"], events
    conn = TlsConnection(KeyLog())
    for _ in range(200):
        conn.feed(rng.randrange(2), rng.randbytes(rng.randint(0, 50)), 1)
    conn.close(2)


def test_hello_retry_request_is_recognised(tls13_sessions):
    """HelloRetryRequest: a ServerHello whose random is SHA-256("HelloRetryRequest")."""
    s = tls13_sessions("TLS_AES_256_GCM_SHA384", mtls=False)
    conn = TlsConnection(keylog_of(s))
    client_hello = s.transcript[0][1]
    conn.feed(0, client_hello, 1)
    hrr_body = (b"\x03\x03" + bytes.fromhex(
        "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
        + b"\x00" + b"\x13\x02" + b"\x00"
        + struct.pack("!H", 12) + b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x02\x00\x17")
    hs = b"\x02" + len(hrr_body).to_bytes(3, "big") + hrr_body
    out = conn.feed(1, b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs, 2)
    assert [e.name for e in out] == ["HelloRetryRequest"]
    assert out[0].fields["hello_retry_request"] is True and out[0].fields["group"] == "secp256r1"
    assert conn.version == "TLS 1.3" and conn.cipher_suite == "TLS_AES_256_GCM_SHA384"


# -- subprocess entry point -------------------------------------------------------------------

if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "generate":
    _kw = json.loads(sys.argv[3])
    if "messages" in _kw:
        _kw["messages"] = [(d, bytes.fromhex(p) if isinstance(p, str) else bytes(p))
                           for d, p in _kw["messages"]]
    _s = make_session(Path(sys.argv[2]), **_kw)
    print(json.dumps({"transcript": [[d, b.hex()] for d, b in _s.transcript],
                      "keylog": _s.keylog, "cipher": _s.cipher, "version": _s.version}))
