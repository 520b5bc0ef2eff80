"""X.509 certificate description for the TLS layer (parsing by ``cryptography.x509``).

:func:`describe_certificate` turns one DER certificate into a flat, JSON-ready dict;
:func:`describe_chain` does a whole TLS Certificate message's chain (leaf first, RFC 5246
§7.4.2 / RFC 8446 §4.4.2) and says whether each certificate was issued and signed by the
next one. A certificate that does not parse is described by an ``"error"`` key, never raised.

ISO 15118 certificates are X.509 v3 with ECDSA keys (ISO 15118-2: secp256r1 with
ecdsa-with-SHA256). Their PKIs mark a certificate's role in the subject's domainComponent —
the corpus captures show DC=CPO for the SECC chain and DC=OEM for the EVCC's provisioning
chain (ISO-20_mTLS_DC_DS5366_Josev) — which is why the domain components are listed
separately.

Shape of a description (keys absent when the certificate lacks the item):

    subject, issuer            RFC 4514 strings
    subject_cn, issuer_cn      common names (str) ; subject_dc: list of domainComponent values
    serial                     lowercase hex string ; version: "v1" / "v3"
    not_before, not_after      ISO 8601 UTC, "2024-01-31T12:00:00Z" ; validity_days (float)
    key_type                   "EC", "RSA", "Ed25519", "Ed448", "DSA", "X25519", "X448", …
    key_curve, key_size        curve name ("secp256r1") and bits
    signature_algorithm        e.g. "ecdsa-with-SHA256" ; signature_hash: "sha256"
    key_usage, key_usage_critical, extended_key_usage (names or dotted OIDs)
    basic_constraints          {"ca": bool, "path_length": int | None, "critical": bool}
    subject_key_identifier, authority_key_identifier   lowercase hex
    subject_alt_names          ["DNS:secc.example", "IP:fe80::1", "URI:…", "email:…", …]
    extensions                 [{"oid", "name", "critical"}] every extension present
    self_signed                subject == issuer
    sha256, sha1               fingerprints of the DER, lowercase hex
    length                     DER bytes
    problems                   list of str: parts of a parsed certificate that failed
    error                      only when the certificate did not parse at all
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import NameOID

_KEY_USAGE_BITS = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
    ("encipher_only", "encipherOnly"),
    ("decipher_only", "decipherOnly"),
)


def _oid_name(oid: x509.ObjectIdentifier) -> str:
    name = getattr(oid, "_name", None)
    if not name or name == "Unknown OID":
        return oid.dotted_string
    return name


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name_attr(name: x509.Name, oid) -> list[str]:
    out = []
    for attr in name.get_attributes_for_oid(oid):
        v = attr.value
        out.append(v if isinstance(v, str) else v.hex())
    return out


def _general_name(gn) -> str:
    if isinstance(gn, x509.DNSName):
        return f"DNS:{gn.value}"
    if isinstance(gn, x509.IPAddress):
        return f"IP:{gn.value}"
    if isinstance(gn, x509.UniformResourceIdentifier):
        return f"URI:{gn.value}"
    if isinstance(gn, x509.RFC822Name):
        return f"email:{gn.value}"
    if isinstance(gn, x509.DirectoryName):
        return f"dirName:{gn.value.rfc4514_string()}"
    if isinstance(gn, x509.RegisteredID):
        return f"RID:{gn.value.dotted_string}"
    if isinstance(gn, x509.OtherName):
        return f"othername:{gn.type_id.dotted_string}:{gn.value.hex()}"
    return str(gn)


def _key(pub) -> dict:
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return {"key_type": "EC", "key_curve": pub.curve.name, "key_size": pub.key_size}
    if isinstance(pub, rsa.RSAPublicKey):
        return {"key_type": "RSA", "key_size": pub.key_size}
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return {"key_type": "Ed25519", "key_size": 256}
    if isinstance(pub, ed448.Ed448PublicKey):
        return {"key_type": "Ed448", "key_size": 456}
    if isinstance(pub, dsa.DSAPublicKey):
        return {"key_type": "DSA", "key_size": pub.key_size}
    if isinstance(pub, x25519.X25519PublicKey):
        return {"key_type": "X25519", "key_size": 256}
    if isinstance(pub, x448.X448PublicKey):
        return {"key_type": "X448", "key_size": 448}
    if isinstance(pub, dh.DHPublicKey):
        return {"key_type": "DH", "key_size": pub.key_size}
    return {"key_type": type(pub).__name__}


def _extensions(cert: x509.Certificate, out: dict, problems: list[str]) -> None:
    try:
        exts = list(cert.extensions)
    except Exception as exc:  # duplicate or malformed extension: cryptography refuses them all
        problems.append(f"extensions: {exc}")
        return
    out["extensions"] = [{"oid": e.oid.dotted_string, "name": _oid_name(e.oid),
                          "critical": e.critical} for e in exts]
    for e in exts:
        v = e.value
        try:
            if isinstance(v, x509.KeyUsage):
                names = []
                for attr, label in _KEY_USAGE_BITS:
                    try:
                        if getattr(v, attr):
                            names.append(label)
                    except ValueError:          # encipher/decipher_only without keyAgreement
                        pass
                out["key_usage"] = names
                out["key_usage_critical"] = e.critical
            elif isinstance(v, x509.ExtendedKeyUsage):
                out["extended_key_usage"] = [_oid_name(o) for o in v]
            elif isinstance(v, x509.BasicConstraints):
                out["basic_constraints"] = {"ca": v.ca, "path_length": v.path_length,
                                            "critical": e.critical}
            elif isinstance(v, x509.SubjectKeyIdentifier):
                out["subject_key_identifier"] = v.digest.hex()
            elif isinstance(v, x509.AuthorityKeyIdentifier):
                if v.key_identifier is not None:
                    out["authority_key_identifier"] = v.key_identifier.hex()
            elif isinstance(v, x509.SubjectAlternativeName):
                out["subject_alt_names"] = [_general_name(g) for g in v]
            elif isinstance(v, x509.IssuerAlternativeName):
                out["issuer_alt_names"] = [_general_name(g) for g in v]
            elif isinstance(v, x509.CRLDistributionPoints):
                out["crl_distribution_points"] = [
                    _general_name(n) for dp in v for n in (dp.full_name or [])]
            elif isinstance(v, x509.AuthorityInformationAccess):
                out["authority_information_access"] = [
                    f"{_oid_name(d.access_method)}:{_general_name(d.access_location)}" for d in v]
            elif isinstance(v, x509.CertificatePolicies):
                out["certificate_policies"] = [p.policy_identifier.dotted_string for p in v]
        except Exception as exc:
            problems.append(f"extension {_oid_name(e.oid)}: {exc}")


def describe_certificate(der: bytes) -> dict:
    """Describe one DER-encoded X.509 certificate (see the module docstring for the keys).

    Never raises: a certificate that does not parse gives ``{"error": why, "length": n,
    "sha256": hex}``; a parsed certificate with unreadable parts lists them in
    ``"problems"``. Parsing is ``cryptography.x509.load_der_x509_certificate`` (RFC 5280).
    """
    der = bytes(der)
    out: dict = {"length": len(der), "sha256": hashlib.sha256(der).hexdigest()}
    try:
        cert = x509.load_der_x509_certificate(der)
    except Exception as exc:
        out["error"] = f"certificate does not parse: {exc}"
        return out
    problems: list[str] = []
    out["sha1"] = hashlib.sha1(der).hexdigest()

    def field(key, fn):
        try:
            out[key] = fn()
        except Exception as exc:
            problems.append(f"{key}: {exc}")

    field("subject", lambda: cert.subject.rfc4514_string())
    field("issuer", lambda: cert.issuer.rfc4514_string())
    try:
        cn = _name_attr(cert.subject, NameOID.COMMON_NAME)
        if cn:
            out["subject_cn"] = cn[0]
        dc = _name_attr(cert.subject, NameOID.DOMAIN_COMPONENT)
        if dc:
            out["subject_dc"] = dc
        icn = _name_attr(cert.issuer, NameOID.COMMON_NAME)
        if icn:
            out["issuer_cn"] = icn[0]
    except Exception as exc:
        problems.append(f"names: {exc}")
    field("serial", lambda: format(cert.serial_number, "x") if cert.serial_number >= 0
          else "-" + format(-cert.serial_number, "x"))
    field("version", lambda: cert.version.name)
    field("not_before", lambda: _iso(cert.not_valid_before_utc))
    field("not_after", lambda: _iso(cert.not_valid_after_utc))
    try:
        out["validity_days"] = round((cert.not_valid_after_utc - cert.not_valid_before_utc)
                                     .total_seconds() / 86400, 3)
    except Exception:
        pass
    try:
        out.update(_key(cert.public_key()))
    except Exception as exc:
        problems.append(f"public key: {exc}")
    field("signature_algorithm", lambda: _oid_name(cert.signature_algorithm_oid))
    try:
        h = cert.signature_hash_algorithm
        out["signature_hash"] = h.name if h is not None else None
    except Exception:
        out["signature_hash"] = None
    _extensions(cert, out, problems)
    try:
        out["self_signed"] = cert.subject == cert.issuer
    except Exception:
        pass
    out["problems"] = problems
    return out


def _load(der: bytes):
    try:
        return x509.load_der_x509_certificate(bytes(der))
    except Exception:
        return None


def describe_chain(ders: list[bytes]) -> list[dict]:
    """Describe a certificate chain as sent in a TLS Certificate message (leaf first).

    Returns one :func:`describe_certificate` dict per certificate, plus ``"index"`` (0 =
    leaf) and, for every certificate but the last, ``"issued_by_next"`` (its issuer name
    equals the next certificate's subject) and ``"signed_by_next"`` (True / False, or None
    when the signature could not be checked: unparsable certificate or unsupported key),
    from ``Certificate.verify_directly_issued_by``. Never raises.
    """
    out = []
    certs = [_load(d) for d in ders]
    for i, der in enumerate(ders):
        d = describe_certificate(der)
        d["index"] = i
        if i + 1 < len(ders):
            a, b = certs[i], certs[i + 1]
            if a is None or b is None:
                d["issued_by_next"] = None
                d["signed_by_next"] = None
            else:
                try:
                    d["issued_by_next"] = a.issuer == b.subject
                except Exception:
                    d["issued_by_next"] = None
                try:
                    a.verify_directly_issued_by(b)
                    d["signed_by_next"] = True
                except ValueError:
                    d["signed_by_next"] = False if d.get("issued_by_next") else None
                except TypeError:
                    d["signed_by_next"] = None
                except Exception:
                    d["signed_by_next"] = False
        out.append(d)
    return out


# A fixed EC P-256 SubjectPublicKeyInfo, only used to wrap a bare Name for parsing.
_DUMMY_SPKI = bytes.fromhex(
    "3059301306072a8648ce3d020106082a8648ce3d030107034200"
    "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der_tlv(tag: int, body: bytes) -> bytes:
    """One DER element: ``tag``, the definite length of ``body`` (X.690 §8.1.3), ``body``."""
    return bytes([tag]) + _der_len(len(body)) + body


def describe_name(der: bytes) -> str | None:
    """RFC 4514 string of a DER-encoded X.501 Name (as listed in a TLS CertificateRequest's
    certificate_authorities, RFC 5246 §7.4.4 / RFC 8446 §4.2.4); None when it does not parse.

    ``cryptography`` parses Names only inside certificates and CSRs, so the Name is wrapped
    in an (unsigned) PKCS #10 request around a fixed public key and parsed from there.
    """
    try:
        der = bytes(der)
        if not der or der[0] != 0x30:
            return None
        info = der_tlv(0x30, b"\x02\x01\x00" + der + _DUMMY_SPKI + b"\xa0\x00")
        alg = der_tlv(0x30, b"\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02")
        csr = der_tlv(0x30, info + alg + b"\x03\x01\x00")
        return x509.load_der_x509_csr(csr).subject.rfc4514_string()
    except Exception:
        return None
