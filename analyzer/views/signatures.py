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


def signed_events(session, ctx):
    """(event, its ``info["signature"]``) of every signed V2G message of the session."""
    for e in session_index(session, ctx).v2g:
        sig = (e.info or {}).get("signature")
        if sig:
            yield e, sig


def passes_core_validation(sig: dict | None) -> bool:
    """Whether a signed message passed core validation as the V2G layer checked it
    (SignatureValue verifies, every Reference resolves and its digest is equal)."""
    refs = (sig or {}).get("references") or ()
    return bool(sig) and sig.get("valid") is True and bool(refs) and all(r.get("status") == "ok" for r in refs)
