"""xmldsig signatures for simulated Plug & Charge messages, made as a real EVCC / SECC / CPS
makes them (ISO 15118-2 §7.9.2.4.2, [V2G2-771] ff.): each signed element digested over its
EXI fragment (SHA-256), SignedInfo encoded against the xmldsig schema alone and signed with
ECDSA secp256r1 / SHA-256, the value written as raw r‖s (64 octets). Deterministic ECDSA
(RFC 6979) keeps the simulator's captures reproducible byte for byte.

The checks these signatures must pass live in dissectors/v2g_signatures.py; this module only
builds them (the simulator's side).
"""
from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ccs_analyzer.dissectors import exi
from ccs_analyzer.dissectors.exi.namespaces import NS_XMLDSIG
from ccs_analyzer.dissectors.v2g_signatures import CANONICAL_EXI

ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def reference(element: str, value: dict, namespace: str) -> dict:
    """An xmldsig Reference to ``element`` (its tree ``value`` holds the ``Id``): the
    canonical-exi transform and the SHA-256 digest of its EXI fragment."""
    digest = hashlib.sha256(exi.encode_fragment(element, value, namespace)).hexdigest()
    return {"URI": f"#{value['Id']}",
            "Transforms": {"Transform": [{"Algorithm": CANONICAL_EXI}]},
            "DigestMethod": {"Algorithm": SHA256},
            "DigestValue": digest}


def signature(references: list[dict], key: ec.EllipticCurvePrivateKey) -> dict:
    """A header ``Signature`` over ``references`` (:func:`reference`), signed with ``key``
    (secp256r1): SignedInfo's EXI fragment (xmldsig schema alone) signed with deterministic
    ECDSA-SHA256, SignatureValue r‖s."""
    signed_info = {"CanonicalizationMethod": {"Algorithm": CANONICAL_EXI},
                   "SignatureMethod": {"Algorithm": ECDSA_SHA256},
                   "Reference": references}
    data = exi.encode_fragment("SignedInfo", signed_info, _any_v2g_namespace(), only_uri=NS_XMLDSIG)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
    return {"SignedInfo": signed_info,
            "SignatureValue": {"value": (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex()}}


def _any_v2g_namespace() -> str:
    """SignedInfo is encoded against the xmldsig declarations alone, which every V2G schema
    set imports unchanged: any of them gives the same fragment."""
    return exi.NS_ISO2
