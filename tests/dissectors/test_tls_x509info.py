"""Certificate description (x509info): fields, chains, and certificates that do not parse."""
from __future__ import annotations

import datetime
import hashlib
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ccs_analyzer.dissectors.x509info import describe_certificate, describe_chain, describe_name

T0 = datetime.datetime(2024, 3, 1, 12, 30, 5, tzinfo=datetime.timezone.utc)


def _name(cn, dc=None):
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
             x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if dc:
        attrs.insert(0, x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc))
    return x509.Name(attrs)


def _build(subject, key, issuer, issuer_key, *, ca=False, path_length=None, serial=0x1234ABCD,
           extra=(), algorithm=hashes.SHA256()):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(T0).not_valid_after(T0 + datetime.timedelta(days=60))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True))
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    return b.sign(issuer_key, algorithm)


def _der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def test_secc_leaf_certificate_described():
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    extra = [
        (x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=True, key_cert_sign=False,
                       crl_sign=False, encipher_only=False, decipher_only=False), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
         False),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
        (x509.SubjectAlternativeName([
            x509.DNSName("secc.example"), x509.IPAddress(ipaddress.ip_address("fe80::1")),
            x509.UniformResourceIdentifier("urn:evse:1"), x509.RFC822Name("ops@example.org")]), False),
        (x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.example/cpo.crl")], None, None, None)]), False),
        (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), False),
    ]
    cert = _build(_name("DE*ABC*E123456", "CPO"), key, _name("CPO Sub-CA 2", "CPO"), ca_key,
                  extra=extra)
    d = describe_certificate(_der(cert))
    assert d["problems"] == [] and "error" not in d
    assert d["subject"] == "CN=DE*ABC*E123456,C=DE,DC=CPO"
    assert d["subject_cn"] == "DE*ABC*E123456" and d["subject_dc"] == ["CPO"]
    assert d["issuer_cn"] == "CPO Sub-CA 2" and d["self_signed"] is False
    assert d["serial"] == "1234abcd" and d["version"] == "v3"
    assert d["not_before"] == "2024-03-01T12:30:05Z" and d["not_after"] == "2024-04-30T12:30:05Z"
    assert d["validity_days"] == 60
    assert (d["key_type"], d["key_curve"], d["key_size"]) == ("EC", "secp256r1", 256)
    assert d["signature_algorithm"] == "ecdsa-with-SHA256" and d["signature_hash"] == "sha256"
    assert d["key_usage"] == ["digitalSignature", "keyAgreement"] and d["key_usage_critical"]
    assert d["extended_key_usage"] == ["serverAuth", "clientAuth"]
    assert d["basic_constraints"] == {"ca": False, "path_length": None, "critical": True}
    assert d["subject_key_identifier"] == x509.SubjectKeyIdentifier.from_public_key(
        key.public_key()).digest.hex()
    assert d["authority_key_identifier"] == x509.SubjectKeyIdentifier.from_public_key(
        ca_key.public_key()).digest.hex()
    assert d["subject_alt_names"] == ["DNS:secc.example", "IP:fe80::1", "URI:urn:evse:1",
                                      "email:ops@example.org"]
    assert d["crl_distribution_points"] == ["URI:http://crl.example/cpo.crl"]
    assert {"oid": "1.3.6.1.4.1.99999.1", "name": "1.3.6.1.4.1.99999.1",
            "critical": False} in d["extensions"]
    assert d["sha256"] == hashlib.sha256(_der(cert)).hexdigest()
    assert d["length"] == len(_der(cert))


def test_other_key_types():
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = describe_certificate(_der(_build(_name("rsa"), rk, _name("rsa"), rk, ca=True, path_length=1)))
    assert (r["key_type"], r["key_size"], r["signature_algorithm"]) == ("RSA", 2048, "sha256WithRSAEncryption")
    assert r["self_signed"] is True and r["basic_constraints"]["path_length"] == 1
    ek = ed25519.Ed25519PrivateKey.generate()
    e = describe_certificate(_der(_build(_name("ed"), ek, _name("ed"), ek, algorithm=None)))
    assert e["key_type"] == "Ed25519" and e["signature_hash"] is None
    pk = ec.generate_private_key(ec.SECP521R1())
    p = describe_certificate(_der(_build(_name("p521"), pk, _name("p521"), pk,
                                         algorithm=hashes.SHA512())))
    assert (p["key_curve"], p["signature_algorithm"]) == ("secp521r1", "ecdsa-with-SHA512")


def test_certificates_that_do_not_parse_are_described_not_raised():
    k = ec.generate_private_key(ec.SECP256R1())
    der = _der(_build(_name("x"), k, _name("x"), k))
    for junk in (b"", b"\x30", b"\x30\x03\x02\x01\x05", der[:-10], bytes(range(200)),
                 b"\x04" + der[1:]):
        d = describe_certificate(junk)
        assert d["error"].startswith("certificate does not parse")
        assert d["sha256"] == hashlib.sha256(junk).hexdigest() and d["length"] == len(junk)


def test_chain_issuance_and_signatures():
    root_k = ec.generate_private_key(ec.SECP256R1())
    root = _build(_name("V2G Root", "V2G"), root_k, _name("V2G Root", "V2G"), root_k, ca=True)
    sub_k = ec.generate_private_key(ec.SECP256R1())
    sub = _build(_name("CPO Sub", "CPO"), sub_k, root.subject, root_k, ca=True, path_length=0)
    leaf_k = ec.generate_private_key(ec.SECP256R1())
    leaf = _build(_name("SECC", "CPO"), leaf_k, sub.subject, sub_k)
    chain = describe_chain([_der(leaf), _der(sub), _der(root)])
    assert [c["index"] for c in chain] == [0, 1, 2]
    assert [c.get("signed_by_next") for c in chain] == [True, True, None]
    assert chain[0]["issued_by_next"] and chain[1]["issued_by_next"]
    assert "issued_by_next" not in chain[2] and chain[2]["self_signed"]
    # an impostor sub-CA with the right name but another key: issued-by by name, not signed
    fake_k = ec.generate_private_key(ec.SECP256R1())
    fake = _build(_name("CPO Sub", "CPO"), fake_k, root.subject, root_k, ca=True)
    bad = describe_chain([_der(leaf), _der(fake)])
    assert bad[0]["issued_by_next"] is True and bad[0]["signed_by_next"] is False
    # wrong order, and junk in the chain
    wrong = describe_chain([_der(root), _der(leaf), b"junk"])
    assert wrong[0]["issued_by_next"] is False and wrong[0]["signed_by_next"] is None
    assert wrong[1]["signed_by_next"] is None and "error" in wrong[2]
    assert describe_chain([]) == []


def test_describe_name():
    name = x509.Name([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "V2G"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "V2G Root CA")])
    assert describe_name(name.public_bytes()) == "CN=V2G Root CA,DC=V2G"
    assert describe_name(b"") is None and describe_name(b"\x30\x05junk") is None
