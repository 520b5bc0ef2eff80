"""Certificate profiles: what each certificate of a chain must look like for its role, shared
by the TLS chain rule (TLS005) and the Plug & Charge chain rule (MSG024).

Works on the descriptions of dissectors/x509info.py (``basic_constraints``, ``key_usage``,
``extended_key_usage``, ``key_type`` / ``key_curve``, ``index``: 0 = leaf). Sources: RFC 5280
§4.2.1.3 (keyUsage), §4.2.1.9 (basicConstraints), §4.2.1.12 (extendedKeyUsage); ISO 15118-2
Annex F (EC secp256r1, ecdsa-with-SHA256); ISO 15118-20 [V2G20-2674] (secp521r1),
[V2G20-2319] (Ed448). The identity section: the SECCID and EVSEID syntaxes, to compare the
operator a SECC certificate names with the charger's EVSEID (TLS014).
"""
from __future__ import annotations

import datetime as dt
import re

#: The key types each protocol's certificates carry (key_type + curve, as x509info writes them).
PROTOCOL_KEYS = {"ISO 15118-2": ("EC secp256r1",), "ISO 15118-20": ("EC secp521r1", "Ed448")}


#: The subject domainComponent (DC) of each PKI's leaf certificates (ISO 15118-2 Annex F
#: certificate profiles; restated by Hubject's EVSE requirements §2.3 for the SECC: "DC must
#: be CPO"), by the element that carries the chain (or "TLS server" for the SECC's chain).
LEAF_DOMAIN = {"TLS server": "CPO", "ContractSignatureCertChain": "MO", "ContractCertificateChain": "MO",
               "OEMProvisioningCert": "OEM", "OEMProvisioningCertificateChain": "OEM",
               "SAProvisioningCertificateChain": "CPS", "CPSCertificateChain": "CPS"}


def leaf_domain(element: str) -> str | None:
    """The DC a chain's leaf must carry, from the element the chain is in
    ("PaymentDetailsReq.ContractSignatureCertChain" → "MO"), None when not known."""
    return LEAF_DOMAIN.get(element.rsplit(".", 1)[-1]) if element else None


def _domain(subject: str | None) -> list[str]:
    return [p.split("=", 1)[1] for p in (subject or "").split(",") if p.strip().upper().startswith("DC=")]


def validity_days(cert: dict) -> float | None:
    """notAfter − notBefore of a described certificate, in days (None when undatable)."""
    try:
        nb = dt.datetime.fromisoformat(str(cert.get("not_before")).replace("Z", "+00:00"))
        na = dt.datetime.fromisoformat(str(cert.get("not_after")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (na - nb).total_seconds() / 86400


def profile_problems(cert: dict, keys=(), protocol: str | None = None,
                     leaf_eku: str | None = None, leaf_dc: str | None = None,
                     max_days: float | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one certificate against the profile of its role: a leaf must not
    be a CA and needs keyUsage digitalSignature (and, when ``leaf_eku`` is given and an
    extendedKeyUsage is present, that purpose; when ``leaf_dc`` is given, a subject with
    that domainComponent — a warning); a CA needs cA = true and keyCertSign; the key must be
    one of ``keys`` (a warning: the standards' profiles, not RFC 5280); with ``max_days``,
    a validity period (notAfter − notBefore) longer than that many days is a warning; a
    certificate that does not parse is an error."""
    problems, warns = [], []
    i = cert.get("index", 0)
    bc = cert.get("basic_constraints") or {}
    ku = cert.get("key_usage")
    eku = cert.get("extended_key_usage")
    if cert.get("error"):
        return [f"does not parse: {cert['error']}"], []
    if i == 0:
        if bc.get("ca"):
            problems.append("leaf certificate with basicConstraints cA = true")
        if ku is not None and "digitalSignature" not in ku:
            problems.append(f"leaf keyUsage {ku} lacks digitalSignature")
        if leaf_eku and eku and leaf_eku not in eku and "anyExtendedKeyUsage" not in eku:
            warns.append(f"extendedKeyUsage {eku} lacks {leaf_eku}")
        dcs = _domain(cert.get("subject"))
        if leaf_dc and dcs != [leaf_dc]:
            warns.append(f"subject DC={'/'.join(dcs) or '(none)'}, ISO 15118-2 Annex F expects DC={leaf_dc}")
    else:
        if not bc.get("ca"):
            problems.append("CA certificate without basicConstraints cA = true")
        if ku is not None and "keyCertSign" not in ku:
            problems.append(f"CA keyUsage {ku} lacks keyCertSign")
    if keys:
        key = " ".join(x for x in (cert.get("key_type"), cert.get("key_curve")) if x)
        if key and key not in keys:
            warns.append(f"key {key}, {protocol} expects {' or '.join(keys)}")
    if max_days is not None:
        days = validity_days(cert)
        if days is not None and days > max_days:
            warns.append(f"valid {days:.0f} days, the certificate policy allows {max_days:g}")
    if cert.get("problems"):
        warns.append("parts did not parse: " + "; ".join(cert["problems"]))
    return problems, warns


def certificate_problem(cert: dict) -> str:
    """What is wrong with one certificate of a described chain (dissectors/x509info.py), as
    one line for the report's certificates table; "" when nothing is: it does not parse
    (``error``), parts of it did not parse (``problems``), and — for every certificate but
    the last — it is not issued by the next certificate (issuer name ≠ the next subject) or
    its signature does not verify with the next certificate's key (RFC 5280 §6.1)."""
    problem = cert.get("error") or ("; ".join(cert["problems"]) if cert.get("problems") else "")
    if cert.get("issued_by_next") is False:
        problem = (problem + "; " if problem else "") + "not issued by the next certificate"
    elif cert.get("signed_by_next") is False:
        problem = (problem + "; " if problem else "") + "signature does not verify with the next"
    return problem


#: SECCID (ISO 15118-20 §8.3.x syntax, restated by Hubject's EVSE requirements §3.4):
#: <Country Code> <S> <EVSE Operator ID> <S> "S" <S> <ControllerID> [<S> <Check Digit>],
#: separator "-" optional, case-insensitive.
SECCID = re.compile(r"^([A-Z]{2})-?([A-Z0-9]{3})-?S-?([A-Z0-9]{8,248})(?:-?[A-Z0-9])?$", re.I)
#: EVSEID (ISO 15118-2 Annex H / DIN SPEC 91286): <Country Code> <S> <EVSE Operator ID> <S>
#: "E" <Power Outlet ID>, separator "*" optional.
EVSEID = re.compile(r"^([A-Z]{2})\*?([A-Z0-9]{3})\*?E[A-Z0-9*]+$", re.I)


def operator_of(identifier: str | None, pattern: re.Pattern) -> str | None:
    """"CC-OOO" (country code and EVSE operator ID, upper case) of an SECCID or EVSEID in
    that syntax, None when it does not follow it (a placeholder such as "ZZ00000", a test
    PKI's CN)."""
    m = pattern.match((identifier or "").strip())
    return f"{m.group(1)}-{m.group(2)}".upper() if m else None
