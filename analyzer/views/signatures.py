"""The signed Plug & Charge messages of a session, as the V2G layer verified them
(dissectors/v2g_signatures.py ``info["signature"]``): shared by the signature rules
(rules/signatures.py) and the response-code rules, which must know whether a refused
signature was in fact valid.

Sources: W3C XML Signature 1.1 §3.2 (core validation = Reference validation + Signature
validation); ISO 15118-2 responseCodeType FAILED_SignatureError /
FAILED_MeteringSignatureNotValid (ISO 15118-20: FAILED_SignatureError).
"""
from __future__ import annotations

from .index import session_index

#: The ResponseCodes with which an SECC refuses a signature (ISO 15118-2 / -20 responseCodeType).
SIGNATURE_REFUSALS = ("FAILED_SignatureError", "FAILED_MeteringSignatureNotValid")


def signed_events(session, ctx) -> list[tuple]:
    """[(event, its ``info["signature"]``)] of every signed V2G message of the session, in
    order (view ``signatures.signed``, built once per analysis; read-only)."""
    def build():
        out = []
        for e in session_index(session, ctx).v2g:
            sig = e.info.get("signature") if e.info else None
            if sig:
                out.append((e, sig))
        return out
    return ctx.view("signatures.signed", session, build)


def signature_result(sig: dict) -> bool | None:
    """The result of a signed message's check (its ``info["signature"]``): False when the
    SignatureValue does not verify or any Reference fails (does not resolve, digest not
    equal); True when the SignatureValue verifies and no Reference fails; None when the
    signature could not be checked (no signer certificate, an algorithm not supported …)
    and no Reference fails."""
    if any(r.get("status") != "ok" for r in sig.get("references") or ()):
        return False
    return sig.get("valid")


def passes_core_validation(sig: dict | None) -> bool:
    """Whether a signed message passed core validation as the V2G layer checked it
    (SignatureValue verifies, every Reference resolves and its digest is equal; a signature
    without References does not pass)."""
    return bool(sig) and bool(sig.get("references")) and signature_result(sig) is True
