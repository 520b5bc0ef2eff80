"""The simulator's TLS (samples/tls.py, samples/faults_tls.py): real TLS 1.2 and TLS 1.3
sessions, deterministic, that a receiver decrypts with the disclosed key log.

Checked independently of the writer: the handshake is re-parsed from the bytes on the wire;
the Finished messages are decrypted and recomputed with the reader's primitives
(dissectors/tls_crypto.py: the TLS 1.2 PRF, HKDF-Expand-Label, the record ciphers) from the
key log secrets; every signature (certificates, ServerKeyExchange, CertificateVerify) is
verified with the public key of the certificate that was sent. The whole captures decrypt with
our dissector into exactly the V2G messages simulated (test_decode.py) and — when tshark is
installed — with Wireshark's TLS dissector and the key log file (or the capture's Decryption
Secrets Block) into exactly the V2GTP bytes the simulator sent.
"""
from __future__ import annotations

import hashlib
import hmac as std_hmac
import random
import shutil
import struct
import subprocess

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ccs_analyzer.dissectors.tls_crypto import (
    Tls13Cipher,
    hkdf_expand_label,
    suite_params,
    tls12_ciphers,
    tls12_prf,
)
from ccs_analyzer.samples import ScenarioError, load_scenario
from ccs_analyzer.samples.tls import SUITES, TlsPlan, TlsSession, build_chain

from .helpers import SCENARIOS, committed, decode, sim_from, sim_of

TSHARK = shutil.which("tshark")

#: scenarios whose sessions speak TLS, by how their secrets are disclosed
TLS_SCENARIOS = [n for n in SCENARIOS if sim_of(n).keylog]


# ------------------------------------------------------------------ an independent parser
def records(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(content type, 5-octet header, fragment) of every record in ``data``."""
    out, pos = [], 0
    while pos < len(data):
        ctype, _, n = struct.unpack("!BHH", data[pos:pos + 5])
        out.append((ctype, data[pos:pos + 5], data[pos + 5:pos + 5 + n]))
        pos += 5 + n
    assert pos == len(data)
    return out


def handshakes(blob: bytes) -> list[bytes]:
    """Whole handshake messages (type, length, body) in ``blob``."""
    out, pos = [], 0
    while pos < len(blob):
        n = int.from_bytes(blob[pos + 1:pos + 4], "big")
        out.append(blob[pos:pos + 4 + n])
        pos += 4 + n
    return out


def certificates(msg: bytes, tls13: bool) -> list[bytes]:
    body = msg[4:]
    pos = 1 + body[0] if tls13 else 0
    end = pos + 3 + int.from_bytes(body[pos:pos + 3], "big")
    pos += 3
    ders = []
    while pos < end:
        n = int.from_bytes(body[pos:pos + 3], "big")
        ders.append(body[pos + 3:pos + 3 + n])
        pos += 3 + n + (2 + int.from_bytes(body[pos + 3 + n:pos + 5 + n], "big") if tls13 else 0)
    return ders


def verify(der: bytes, sig: bytes, data: bytes, scheme: int) -> None:
    h = {0x0403: hashes.SHA256, 0x0503: hashes.SHA384, 0x0603: hashes.SHA512}[scheme]
    x509.load_der_x509_certificate(der).public_key().verify(sig, data, ec.ECDSA(h()))


def keylog_of(sess: TlsSession) -> dict[str, bytes]:
    return {line.split()[0]: bytes.fromhex(line.split()[2]) for line in sess.keylog}


def plan(protocol="ISO 15118-2", payment="PnC", **changes) -> TlsPlan:
    p = TlsPlan.for_session(protocol, payment, {}, seed=5)
    for k, v in changes.items():
        setattr(p, k, v)
    return p


# ------------------------------------------------------------------ the handshakes, checked
@pytest.mark.parametrize("suite, mutual", [("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", False),
                                           ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", True)])
def test_tls12_handshake_is_honest(suite, mutual):
    p = plan(suite=suite, offered_suites=[suite], request_client_cert=mutual)
    sess = TlsSession(p, random.Random(3))
    ch, sf, cf, sf2 = (f.data for f in sess.flights)
    assert [f.side for f in sess.flights] == ["EV", "EVSE", "EV", "EVSE"]
    (ch_msg,) = handshakes(records(ch)[0][2])
    server = handshakes(b"".join(frag for _, _, frag in records(sf)))
    assert [m[0] for m in server] == [2, 11, 12] + ([13] if mutual else []) + [14]
    cr, sr = ch_msg[6:38], server[0][6:38]
    # ServerKeyExchange signed by the leaf certificate's key over the randoms and the parameters
    chain = certificates(server[1], tls13=False)
    ske = server[2][4:]
    plen = 4 + ske[3]
    params, scheme = ske[:plen], int.from_bytes(ske[plen:plen + 2], "big")
    verify(chain[0], ske[plen + 4:], cr + sr + params, scheme)
    # the client's plaintext messages, CCS, then its Finished under the session keys
    recs = records(cf)
    plain = [r for r in recs if r[0] == 22][:-1]
    client = handshakes(b"".join(frag for _, _, frag in plain))
    assert [m[0] for m in client] == ([11, 16, 15] if mutual else [16])
    transcript = ch_msg + b"".join(server) + b"".join(client)
    if mutual:
        cv = client[2][4:]
        verify(certificates(client[0], tls13=False)[0], cv[4:], ch_msg + b"".join(server) + client[0] + client[1],
               int.from_bytes(cv[:2], "big"))
    assert recs[-2][0] == 20 and recs[-1][0] == 22
    master = bytes.fromhex(sess.keylog[0].split()[2])
    assert sess.keylog[0].split()[1] == cr.hex()
    params_ = suite_params(SUITES[suite][0])
    c_cipher, s_cipher = tls12_ciphers(params_, master, cr, sr)
    _, fin = c_cipher.open(recs[-1][1], recs[-1][2], 0)
    h = hashlib.sha384 if params_.prf_hash == "SHA384" else hashlib.sha256
    assert fin == b"\x14\x00\x00\x0c" + tls12_prf(master, b"client finished", h(transcript).digest(), 12,
                                                  params_.prf_hash)
    srecs = records(sf2)
    _, sfin = s_cipher.open(srecs[1][1], srecs[1][2], 0)
    assert sfin == b"\x14\x00\x00\x0c" + tls12_prf(master, b"server finished", h(transcript + fin).digest(), 12,
                                                   params_.prf_hash)
    # application data: a V2GTP message round-trips through the reader's cipher
    rec = records(sess.seal("EV", b"\x01\xfe\x80\x01\x00\x00\x00\x02\x80\x00"))[0]
    assert c_cipher.open(rec[1], rec[2], 1) == (23, b"\x01\xfe\x80\x01\x00\x00\x00\x02\x80\x00")


@pytest.mark.parametrize("suite, group", [("TLS_AES_256_GCM_SHA384", "x448"),
                                          ("TLS_CHACHA20_POLY1305_SHA256", "secp521r1"),
                                          ("TLS_AES_128_GCM_SHA256", "x25519")])
def test_tls13_mutual_handshake_is_honest(suite, group):
    p = plan("ISO 15118-20", "EIM", suite=suite, group=group,
             offered_suites=[suite], offered_groups=[group])
    sess = TlsSession(p, random.Random(4))
    keys = keylog_of(sess)
    params = suite_params(SUITES[suite][0])
    H = hashlib.sha384 if params.prf_hash == "SHA384" else hashlib.sha256
    ch, sf, cf = (f.data for f in sess.flights)
    (ch_msg,) = handshakes(records(ch)[0][2])
    srecs = records(sf)
    sh = srecs[0][2]
    dec = Tls13Cipher(params, keys["SERVER_HANDSHAKE_TRAFFIC_SECRET"])
    server = []
    for i, (ctype, hdr, frag) in enumerate(srecs[1:]):
        assert ctype == 23
        inner_type, data = dec.open(hdr, frag, i)
        assert inner_type == 22
        server += handshakes(data)
    assert [m[0] for m in server] == [8, 13, 11, 15, 20]
    chain = certificates(server[2], tls13=True)
    assert len(chain) == 3                  # leaf, Sub-CA 2, Sub-CA 1 (no root)
    th = ch_msg + sh + b"".join(server[:3])
    cv = server[3][4:]
    verify(chain[0], cv[4:], b" " * 64 + b"TLS 1.3, server CertificateVerify\x00" + H(th).digest(),
           int.from_bytes(cv[:2], "big"))
    th += server[3]
    fk = hkdf_expand_label(keys["SERVER_HANDSHAKE_TRAFFIC_SECRET"], b"finished", b"", H().digest_size,
                           params.prf_hash)
    assert server[4][4:] == std_hmac.new(fk, H(th).digest(), H).digest()
    th += server[4]
    dec = Tls13Cipher(params, keys["CLIENT_HANDSHAKE_TRAFFIC_SECRET"])
    client = []
    for i, (_, hdr, frag) in enumerate(records(cf)):
        client += handshakes(dec.open(hdr, frag, i)[1])
    assert [m[0] for m in client] == [11, 15, 20]
    cchain = certificates(client[0], tls13=True)
    cv = client[1][4:]
    verify(cchain[0], cv[4:], b" " * 64 + b"TLS 1.3, client CertificateVerify\x00" + H(th + client[0]).digest(),
           int.from_bytes(cv[:2], "big"))
    fk = hkdf_expand_label(keys["CLIENT_HANDSHAKE_TRAFFIC_SECRET"], b"finished", b"", H().digest_size,
                           params.prf_hash)
    assert client[2][4:] == std_hmac.new(fk, H(th + client[0] + client[1]).digest(), H).digest()
    rec = records(sess.seal("EVSE", b"hello"))[0]
    assert Tls13Cipher(params, keys["SERVER_TRAFFIC_SECRET_0"]).open(rec[1], rec[2], 0) == (23, b"hello")


def test_certificate_chains_are_real():
    for role, curve in (("server", "secp256r1"), ("client", "secp521r1")):
        p = plan("ISO 15118-20" if curve == "secp521r1" else "ISO 15118-2")
        specs = p.server_chain if role == "server" else p.client_chain
        ders, _ = build_chain(tuple(specs), 5, role)
        certs = [x509.load_der_x509_certificate(d) for d in ders]
        for c, issuer in zip(certs, certs[1:] + certs[-1:]):
            assert c.issuer == issuer.subject
            c.verify_directly_issued_by(issuer)
            assert c.public_key().curve.name == curve
        assert not certs[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert all(c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca for c in certs[1:])
        with pytest.raises(InvalidSignature):       # signed by its issuer, not by itself
            certs[0].public_key().verify(certs[0].signature, certs[0].tbs_certificate_bytes,
                                         ec.ECDSA(certs[0].signature_hash_algorithm))


def test_same_seed_same_bytes_other_seed_other_secrets():
    a = TlsSession(plan(), random.Random(9))
    build_chain.cache_clear()
    b = TlsSession(plan(), random.Random(9))
    assert [f.data for f in a.flights] == [f.data for f in b.flights] and a.keylog == b.keylog
    c = TlsSession(plan(), random.Random(10))
    assert c.keylog != a.keylog
    s1 = sim_from({"protocol": "ISO 15118-20", "timing": {"loop_cycles": 3}}, seed=2)
    build_chain.cache_clear()
    s2 = sim_from({"protocol": "ISO 15118-20", "timing": {"loop_cycles": 3}}, seed=2)
    s3 = sim_from({"protocol": "ISO 15118-20", "timing": {"loop_cycles": 3}}, seed=3)
    assert s1.pcapng == s2.pcapng and s1.keylog == s2.keylog
    assert s3.keylog[0].split()[1] != s1.keylog[0].split()[1]


# ------------------------------------------------------------------ whole captures
def tls_events(sim):
    return [e for e in decode(sim)[0] if e.layer == "tls"]


@pytest.mark.parametrize("name", TLS_SCENARIOS)
def test_our_dissector_decrypts_every_record(name):
    sim = sim_of(name)
    events, _ = decode(sim)
    tls = [e for e in events if e.layer == "tls"]
    names = [e.name for e in tls]
    withheld = any(not w.readable for w in sim.messages)
    if withheld:
        assert "Encrypted record" in names and "TLS key log disclosed" not in names
        return
    assert not [e for e in tls if e.error], [(e.name, e.error) for e in tls if e.error][:3]
    assert "Encrypted record" not in names
    assert names.count("Finished") >= 2 or any(n.startswith("Alert fatal") for n in names), names


def test_handshakes_as_iso_15118_wants_them():
    names = [e.name for e in tls_events(sim_of("iso2_dc_pnc"))]
    assert names[:10] == ["ClientHello", "ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone",
                          "ClientKeyExchange", "ChangeCipherSpec", "Finished", "ChangeCipherSpec", "Finished"]
    tls = tls_events(sim_of("iso20_dc"))
    sh = next(e for e in tls if e.name == "ServerHello").message
    assert (sh["version"], sh["cipher_suite"], sh["group"]) == ("TLS 1.3", "TLS_AES_256_GCM_SHA384", "x448")
    certs = [e.message for e in tls if e.name == "Certificate"]
    assert [c["sender"] for c in certs] == ["server", "client"]
    assert all(c["certificates"][0]["key_curve"] == "secp521r1" for c in certs)
    assert "CertificateRequest" in [e.name for e in tls]
    # a record split over TCP segments: the server's certificate chain is larger than one MSS
    cert = next(e for e in tls_events(sim_of("iso2_dc_pnc")) if e.name == "Certificate")
    assert cert.first_frame < cert.frame


def test_secrets_disclosed_three_ways():
    import re
    udp = sim_of("iso2_dc_pnc")
    assert b"CLIENT_RANDOM " in udp.pcapng and b"TLSK"[::-1] not in udp.pcapng
    names = [e.name for e in tls_events(udp)]
    assert "TLS key log disclosed" in names
    dsb = sim_of("iso2_ac_pnc_tls_dsb")
    i = dsb.pcapng.find(b"TLSK"[::-1])           # secrets type 0x544c534b, little-endian
    assert i > 0 and dsb.pcapng[i - 8:i - 4] == b"\x0a\x00\x00\x00"
    assert "TLS key log disclosed" not in [e.name for e in tls_events(dsb)]
    assert len(re.findall(rb"CLIENT_RANDOM [0-9a-f]{64} ", dsb.pcapng)) == 1
    none = sim_of("iso20_dc_tls_keys_withheld")
    assert b"TRAFFIC_SECRET" not in none.pcapng and none.keylog
    assert not any(w.readable for w in none.messages)


def test_withheld_keys_give_cap005_only():
    from ccs_analyzer.analyzer.analysis import analyze_capture
    a = analyze_capture(committed("iso20_dc_tls_keys_withheld"))
    assert {f.rule for f in a.findings} == {"CAP005"}


def test_a_message_spans_records():
    sim = sim_of("iso2_ac_pnc_tls_dsb")
    pd = next(w.message for w in sim.messages if w.message.name == "PaymentDetailsReq")
    assert len(pd.wire()) > 1024            # in two records of at most 1024 octets
    events, _ = decode(sim)
    assert any(e.name == "PaymentDetailsReq" and e.message == pd.tree for e in events if e.layer == "v2gtp")


# ------------------------------------------------------------------ the faults
def test_tls_faults_do_what_they_say():
    tls = tls_events(sim_of("iso20_dc_tls12_not_allowed"))
    ch = next(e for e in tls if e.name == "ClientHello").message
    sh = next(e for e in tls if e.name == "ServerHello").message
    assert ch["offered_versions"] == ["TLS 1.3", "TLS 1.2"] and sh["version"] == "TLS 1.2"
    sh = next(e for e in tls_events(sim_of("iso20_ac_tls_cipher_group")) if e.name == "ServerHello").message
    assert (sh["cipher_suite"], sh["group"]) == ("TLS_AES_128_GCM_SHA256", "x25519")
    cert = next(e for e in tls_events(sim_of("iso2_dc_pnc_tls_cert_expired")) if e.name == "Certificate")
    assert cert.message["certificates"][0]["not_after"] < "2026-01-01"
    tls = tls_events(sim_of("iso20_dc_tls_cert_rejected"))
    assert "Alert fatal certificate_expired" in [e.name for e in tls] and not sim_of("iso20_dc_tls_cert_rejected").messages
    certs = [e.message for e in tls_events(sim_of("iso20_dc_tls_cert_profile")) if e.name == "Certificate"]
    assert certs[0]["certificates"][0]["basic_constraints"]["ca"] is True
    assert "digitalSignature" not in certs[1]["certificates"][0]["key_usage"]
    cert = next(e for e in tls_events(sim_of("iso2_ac_pnc_tls_chain_incomplete")) if e.name == "Certificate")
    assert [c["subject_cn"] for c in cert.message["certificates"]] == ["SECC DE*SIM*E0001", "CPO SubCA1 Sim"]
    names = [e.name for e in tls_events(sim_of("iso20_ac_tls_no_client_auth"))]
    assert "CertificateRequest" not in names and names.count("Certificate") == 1
    assert tls_events(sim_of("iso2_dc_tls_sdp_ignored")) == []
    sdp = [e for e in decode(sim_of("iso2_dc_tls_sdp_ignored"))[0] if e.layer == "sdp"]
    assert [e.message["Security"] for e in sdp] == ["TLS", "TLS"]
    din = sim_of("din_dc_over_tls")
    assert din.keylog and din.messages[1].message.tree["supportedAppProtocolRes"]["SchemaID"] == 2
    for name in ("iso20_ac_no_tls", "iso2_ac_pnc_no_tls"):
        no = sim_of(name)
        assert not no.keylog and all(w.readable for w in no.messages)
        assert [e.message["Security"] for e in decode(no)[0] if e.layer == "sdp"] == ["NoTLS", "NoTLS"]


@pytest.mark.parametrize("table, words", [
    ({"protocol": "ISO 15118-2", "payment": "PnC", "faults": [{"name": "tls_no_client_auth"}]}, "ISO 15118-20"),
    ({"protocol": "ISO 15118-2", "faults": [{"name": "tls_certificate_profile"}]}, "does not use TLS"),
    ({"protocol": "ISO 15118-20", "faults": [{"name": "tls_cipher_not_allowed", "suite": "NOPE"}]}, "suite"),
    ({"protocol": "ISO 15118-20", "faults": [{"name": "din_over_tls"}]}, "DIN 70121"),
    ({"protocol": "ISO 15118-2", "payment": "PnC",
      "faults": [{"name": "tls_chain_missing_intermediate", "chain": "client"}]}, "no mutual TLS"),
    ({"protocol": "ISO 15118-2", "tls": {"keylog": "file"}}, "keylog"),
])
def test_tls_faults_that_do_not_fit_are_refused(table, words):
    with pytest.raises(ScenarioError, match=words):
        sim_from(table)


def test_tls_option_in_scenarios():
    sc = load_scenario("iso2_dc_tls_sdp_ignored")
    assert sc.sessions[0].tls == {"enabled": True}
    sim = sim_from({"protocol": "ISO 15118-2", "tls": {"enabled": True}, "timing": {"loop_cycles": 2}})
    assert sim.keylog and all(w.readable and w.expect_decoded for w in sim.messages)


# ------------------------------------------------------------------ Wireshark
def tshark_payloads(path, keylog=None) -> bytes:
    """The decrypted TLS application data of a capture, in frame order, as tshark reads it."""
    cmd = [TSHARK, "-r", str(path), "-Y", "tls", "-T", "fields", "-e", "data.data"]
    if keylog:
        cmd[3:3] = ["-o", f"tls.keylog_file:{keylog}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return b"".join(bytes.fromhex(x) for line in p.stdout.split() for x in line.split(",") if x)


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
@pytest.mark.parametrize("name", ["iso2_dc_pnc", "iso20_dc", "iso20_dc_tls12_not_allowed", "iso20_ac_tls_cipher_group",
                                  "iso2_ac_pnc_tls_dsb", "din_dc_over_tls"])
def test_tshark_decrypts_with_the_key_log(name, tmp_path):
    sim = sim_of(name)
    keylog = tmp_path / "keys.txt"
    keylog.write_text(sim.keylog_text())
    meant = b"".join(w.message.wire() for w in sim.messages)
    dsb = name.endswith("_dsb")
    got = tshark_payloads(committed(name), None if dsb else keylog)
    assert got == meant
    if not dsb:                         # without the key log tshark sees no plaintext
        assert tshark_payloads(committed(name)) == b""
