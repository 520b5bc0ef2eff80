"""xmldsig signatures for simulated Plug & Charge messages, made as a real EVCC / SECC / CPS
makes them (ISO 15118-2 §7.9.2.4.2, [V2G2-771] ff.): each signed element digested over its
EXI fragment (SHA-256), SignedInfo encoded against the xmldsig schema alone and signed with
ECDSA secp256r1 / SHA-256, the value written as raw r‖s (64 octets); ISO 15118-20
(§8.4): secp521r1 with SHA-512 digests and signature (r‖s, 132 octets). Deterministic ECDSA
(RFC 6979) keeps the simulator's captures reproducible byte for byte.

A dialect marks a message to be signed by putting :func:`marker` in its header's Signature;
the message (samples/script.Message) signs its tree with :func:`sign_tree` every time it is
encoded, so a fault that edits a signed message after the flow made it gets a message signed
over what it now says — unless the fault asks for a broken signature (``fault``: see
:data:`SIGNATURE_FAULTS`).

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
from ccs_analyzer.dissectors.v2g_signatures import CANONICAL_EXI, header_signature

from . import pki_data

#: Algorithms by curve: (SignatureMethod, DigestMethod, hash, octets of r and of s) —
#: ISO 15118-2 secp256r1 / SHA-256 ([V2G2-771]); ISO 15118-20 secp521r1 / SHA-512 (§8.4).
ALGORITHMS = {
    "secp256r1": ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
                  "http://www.w3.org/2001/04/xmlenc#sha256", hashes.SHA256, 32),
    "secp521r1": ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
                  "http://www.w3.org/2001/04/xmlenc#sha512", hashes.SHA512, 66),
}


def _curve_of(key) -> str:
    return key.curve.name


def reference(element: str, value: dict, namespace: str, curve: str = "secp256r1") -> dict:
    """An xmldsig Reference to ``element`` (its tree ``value`` holds the ``Id``): the
    canonical-exi transform and the digest (SHA-256; SHA-512 with ``curve`` secp521r1) of
    its EXI fragment."""
    _, digest_uri, hash_cls, _ = ALGORITHMS[curve]
    h = hashlib.new(hash_cls.name)
    h.update(exi.encode_fragment(element, value, namespace))
    return {"URI": f"#{value['Id']}",
            "Transforms": {"Transform": [{"Algorithm": CANONICAL_EXI}]},
            "DigestMethod": {"Algorithm": digest_uri},
            "DigestValue": h.hexdigest()}


def signature(references: list[dict], key: ec.EllipticCurvePrivateKey) -> dict:
    """A header ``Signature`` over ``references`` (:func:`reference`), signed with ``key``
    (secp256r1 or secp521r1): SignedInfo's EXI fragment (xmldsig schema alone) signed with
    deterministic ECDSA (SHA-256 / SHA-512), SignatureValue r‖s."""
    method, _, hash_cls, n = ALGORITHMS[_curve_of(key)]
    signed_info = {"CanonicalizationMethod": {"Algorithm": CANONICAL_EXI},
                   "SignatureMethod": {"Algorithm": method},
                   "Reference": references}
    data = exi.encode_fragment("SignedInfo", signed_info, _any_v2g_namespace(), only_uri=NS_XMLDSIG)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_cls(), deterministic_signing=True)))
    return {"SignedInfo": signed_info,
            "SignatureValue": {"value": (r.to_bytes(n, "big") + s.to_bytes(n, "big")).hex()}}


def _any_v2g_namespace() -> str:
    """SignedInfo is encoded against the xmldsig declarations alone, which every V2G schema
    set imports unchanged: any of them gives the same fragment."""
    return exi.NS_ISO2


#: Who signs: signer name -> its private key (the PKI of samples/pki_data.py).
SIGNERS = {"contract": pki_data.contract_key, "contract-20": pki_data.contract_key_20,
           "oem": pki_data.oem_key, "cps": pki_data.cps_key,
           "oem-20": pki_data.oem_key_20, "cps-20": pki_data.cps_key_20,
           "mo-subca2": pki_data.mo_subca2_key}

#: How a fault breaks a signature: "flip" — one octet of SignatureValue flipped after signing
#: (a corrupted signature); "document_digest" — the Reference's digest taken over the whole EXI
#: document without the Signature instead of the referenced element's fragment (an
#: implementation that digests the wrong thing); "other_key" — signed with a key that is not
#: the certificate's (a vehicle that installed a new contract but signs with the old key).
SIGNATURE_FAULTS = ("flip", "document_digest", "other_key")

_MARK = "sign with"


def marker(signer: str = "contract") -> dict:
    """The header Signature placeholder that asks for a real signature by ``signer``."""
    return {_MARK: signer}


def take_marker(tree: dict) -> str | None:
    """The signer a tree's header placeholder names (None: no placeholder)."""
    sig, _ = header_signature(tree)
    return sig.get(_MARK) if isinstance(sig, dict) else None


def _with_id(body: dict) -> list[tuple[str, dict]]:
    """(name, value) of the body's elements that carry an Id (the signed ones), in order."""
    out = []
    for name, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                if "Id" in item:
                    out.append((name, item))
                out.extend(_with_id(item))
    return out


def sign_tree(tree: dict, namespace: str, signer: str, fault: str | None = None) -> None:
    """Put into ``tree``'s header (ISO 15118-2 ``V2G_Message.Header``, -20 the root
    element's ``Header``) a Signature by ``signer`` over every element with an Id attribute
    (ISO 15118-2: AuthorizationReq, MeteringReceiptReq …; -20: PnC_AReqAuthorizationMode),
    broken as ``fault`` says (:data:`SIGNATURE_FAULTS`). Raises ValueError for an unknown
    signer or fault."""
    if fault is not None and fault not in SIGNATURE_FAULTS:
        raise ValueError(f"signature fault {fault!r}; one of {', '.join(SIGNATURE_FAULTS)}")
    root, msg = next(iter(tree.items()))
    header = msg["Header"]
    body = msg["Body"] if root == "V2G_Message" else {k: v for k, v in msg.items() if k != "Header"}
    header.pop("Signature", None)
    key = SIGNERS[signer]()
    curve = _curve_of(key)
    refs = [reference(n, v, namespace, curve) for n, v in _with_id(body)]
    if fault == "document_digest":
        h = hashlib.new(ALGORITHMS[curve][2].name)
        h.update(exi.encode(tree, namespace))
        refs = [dict(r, DigestValue=h.hexdigest()) for r in refs]
    if fault == "other_key":
        key = ec.derive_private_key(0x5EED, type(key.curve)())
    sig = signature(refs, key)
    if fault == "flip":
        v = bytearray.fromhex(sig["SignatureValue"]["value"])
        v[10] ^= 0x01
        sig["SignatureValue"]["value"] = v.hex()
    header["Signature"] = sig
