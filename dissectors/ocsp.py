"""OCSP responses found in a capture (TLS CertificateStatus, RFC 6066 §8 "status_request"),
decoded and checked against the certificate chain they speak about.

ISO 15118-2 EVCCs ask the SECC to staple the OCSP response of its certificate (the
``status_request`` extension of ClientHello, §7.7.3.x); the SECC answers with a
CertificateStatus handshake message after its Certificate. :func:`describe_ocsp` decodes
such a response with the ``cryptography`` package (RFC 6960 §4.2) and says:

* ``response_status`` (successful, malformedRequest, …) and, for a successful one,
  ``cert_status`` (good / revoked / unknown), ``revocation_time`` / ``revocation_reason``,
  ``this_update`` / ``next_update`` (UTC text), ``serial`` (hex);
* ``for_leaf``: whether the response's CertID names the chain's leaf (serial and the
  issuer key hash of the next certificate, RFC 6960 §4.1.1);
* ``signature_valid``: the response's signature checked with the issuer's key (the issuer
  signs its own responses; a delegated responder's certificate inside the response is used
  when the issuer's key does not verify it, RFC 6960 §4.2.2.2) — None when it cannot be
  checked;
* ``problems``: what makes the response unusable (not successful, not for this certificate,
  a bad signature, outside thisUpdate … nextUpdate at the capture's time).

Never raises; an undecodable response gives ``{"error": …}``.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

_TIME = "%Y-%m-%dT%H:%M:%SZ"


def _t(v: dt.datetime | None) -> str | None:
    return v.strftime(_TIME) if v is not None else None


def _tlv(b: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER element at ``i``."""
    tag, n, k = b[i], b[i + 1], i + 2
    if n & 0x80:
        w = n & 0x7F
        n, k = int.from_bytes(b[k:k + w], "big"), k + w
    return tag, k, k + n


def issuer_key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey BIT STRING's value (RFC 6960 §4.1.1 issuerKeyHash):
    SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    _, inner, _ = _tlv(spki, 0)
    _, _, alg_end = _tlv(spki, inner)
    _, bits, end = _tlv(spki, alg_end)
    return hashlib.sha1(spki[bits + 1:end]).digest()      # after the unused-bits octet


def _verifies(key, resp: ocsp.OCSPResponse) -> bool | None:
    try:
        h = resp.signature_hash_algorithm
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(h))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), h)
        else:
            key.verify(resp.signature, resp.tbs_response_bytes)
        return True
    except InvalidSignature:
        return False
    except (TypeError, ValueError, AttributeError):
        return None


def describe_ocsp(der: bytes, chain_ders: list[bytes], at_epoch: float | None = None) -> dict:
    """Decode and check an OCSP response (module docstring) for the chain ``chain_ders``
    (leaf first, as the TLS Certificate message carried it) at capture time ``at_epoch``."""
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except ValueError as e:
        return {"error": f"not an OCSP response: {e}", "problems": ["undecodable OCSP response"]}
    out: dict = {"response_status": resp.response_status.name.lower(), "problems": []}
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        out["problems"].append(f"response status {out['response_status']}")
        return out
    try:
        out.update(cert_status=resp.certificate_status.name.lower(), serial=format(resp.serial_number, "x"),
                   this_update=_t(resp.this_update_utc), next_update=_t(resp.next_update_utc),
                   produced_at=_t(resp.produced_at_utc))
        if resp.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            out["revocation_time"] = _t(resp.revocation_time_utc)
            out["revocation_reason"] = resp.revocation_reason.name if resp.revocation_reason else None
    except ValueError as e:          # several SingleResponses: the property form refuses them
        out["problems"].append(f"cannot read the response: {e}")
        return out
    certs = []
    for d in chain_ders:
        try:
            certs.append(x509.load_der_x509_certificate(d))
        except ValueError:
            certs.append(None)
    leaf = certs[0] if certs else None
    issuer = certs[1] if len(certs) > 1 else None
    out["for_leaf"] = None
    if leaf is not None:
        same_serial = resp.serial_number == leaf.serial_number
        same_issuer = issuer is None or resp.issuer_key_hash == issuer_key_hash(issuer)
        out["for_leaf"] = same_serial and same_issuer
        if not out["for_leaf"]:
            out["problems"].append("the response is not about the SECC's certificate "
                                   f"(serial {out['serial']}, leaf {format(leaf.serial_number, 'x')})")
    out["signature_valid"] = None
    if issuer is not None:
        ok = _verifies(issuer.public_key(), resp)
        if ok is not True:
            for c in resp.certificates:          # a delegated responder
                if _verifies(c.public_key(), resp):
                    ok = True
                    break
        out["signature_valid"] = ok
        if ok is False:
            out["problems"].append("its signature does not verify with the issuer's key")
    if at_epoch is not None:
        t = dt.datetime.fromtimestamp(at_epoch, dt.timezone.utc)
        if resp.this_update_utc and t < resp.this_update_utc - dt.timedelta(minutes=5):
            out["problems"].append(f"thisUpdate {out['this_update']} is after the capture time")
        if resp.next_update_utc and t > resp.next_update_utc:
            out["problems"].append(f"nextUpdate {out['next_update']} has passed: the response is outdated")
    return out
