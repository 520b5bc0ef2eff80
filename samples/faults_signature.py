"""Faults of the Plug & Charge signatures and identities — registered with
:func:`ccs_analyzer.samples.faults.fault`.

The simulated AuthorizationReq and MeteringReceiptReq are really signed (samples/signing.py);
these faults break a signature the way real stacks do (a corrupted value, a digest over the
wrong bytes, a key that is not the certificate's), make the SECC judge it wrongly (accept a
broken one, refuse a good one), copy a signature header onto messages that are not signed,
or make the EV claim an eMAID its certificate is not issued to. Rules: SIG001-SIG006
(rules/signatures.py).
"""
from __future__ import annotations

import copy

from . import faults_edit as ed
from .faults import FaultError, fault
from .script import body_of
from .signing import SIGNATURE_FAULTS

_SIGNED = ("AuthorizationReq", "MeteringReceiptReq")


def _refusal(message: str) -> str:
    """The ResponseCode an SECC refuses a bad signature of ``message`` with (ISO 15118-2
    responseCodeType)."""
    return "FAILED_MeteringSignatureNotValid" if message == "MeteringReceiptReq" else "FAILED_SignatureError"


@fault("signature_broken", level="script", stage="after", category="message-content",
       message="AuthorizationReq", how="flip", secc_reaction="reject")
def signature_broken(ctx, message, how, secc_reaction):
    """ISO 15118-2 (and -20, AuthorizationReq) Plug & Charge: the EV's signature of its first
    ``message`` (AuthorizationReq or MeteringReceiptReq) is broken ``how``: "flip" — one octet of
    SignatureValue corrupted; "document_digest" — the Reference digest taken over the whole
    EXI document instead of the element's EXI fragment; "other_key" — signed with a key that
    is not the contract certificate's. ``secc_reaction`` "reject": the SECC answers
    FAILED_SignatureError (MeteringReceiptReq: FAILED_MeteringSignatureNotValid) and closes;
    "accept": it answers OK without verifying (SIG004)."""
    name = "signature_broken"
    ed.need(ctx, ("ISO 15118-2", "ISO 15118-20") if message == "AuthorizationReq" else ("ISO 15118-2",),
            payment="PnC", name=name)
    if message not in _SIGNED:
        raise FaultError(f"{name}: message {message!r}; one of {', '.join(_SIGNED)}")
    if how not in SIGNATURE_FAULTS:
        raise FaultError(f"{name}: how {how!r}; one of {', '.join(SIGNATURE_FAULTS)}")
    if secc_reaction not in ("reject", "accept"):
        raise FaultError(f"{name}: secc_reaction {secc_reaction!r}; reject or accept")
    ci, xi, x, m = ctx.find(message, 1)
    m.signature_fault = how
    ed.encodes(m)
    ed.note(m, f"{name}: signature broken ({how})")
    if secc_reaction == "reject":
        ed.refuse(ctx, ci, xi, x, _refusal(message), "the signature")


@fault("valid_signature_refused", level="script", stage="after", category="response-code",
       message="AuthorizationReq")
def valid_signature_refused(ctx, message):
    """ISO 15118-2 Plug & Charge: the EV signs its first ``message`` correctly, but the SECC's
    own verification is wrong: it answers FAILED_SignatureError (MeteringReceiptReq:
    FAILED_MeteringSignatureNotValid) and closes (SIG005)."""
    name = "valid_signature_refused"
    ed.need(ctx, ("ISO 15118-2",), payment="PnC", name=name)
    if message not in _SIGNED:
        raise FaultError(f"{name}: message {message!r}; one of {', '.join(_SIGNED)}")
    ci, xi, x, m = ctx.find(message, 1)
    ed.refuse(ctx, ci, xi, x, _refusal(message), "the signature")


@fault("stale_signature_header", level="script", stage="after", category="message-content", count=3)
def stale_signature_header(ctx, count):
    """ISO 15118-2 Plug & Charge: the EV keeps the Signature header of its AuthorizationReq on
    the ``count`` requests after it (as RISE-V2G's EVCC does after MeteringReceiptReq): a
    signature whose Reference names no element of those messages (SIG003). The SECC ignores
    it."""
    name = "stale_signature_header"
    ed.need(ctx, ("ISO 15118-2",), payment="PnC", name=name)
    ci, xi, x, m = ctx.find("AuthorizationReq", 1)
    m.exi()                                           # signs it
    sig = m.tree["V2G_Message"]["Header"]["Signature"]
    conn = ctx.plan.connections[ci]
    later = [ex.request for ex in conn.exchanges[xi + 1:xi + 1 + int(count)] if ex.request.tree]
    if not later:
        raise FaultError(f"{name}: no request follows the AuthorizationReq")
    for r in later:
        r.tree["V2G_Message"]["Header"]["Signature"] = copy.deepcopy(sig)
        ed.encodes(r)
        ed.note(r, f"{name}: the AuthorizationReq's Signature header kept")


@fault("emaid_mismatch", level="script", stage="after", category="message-content",
       emaid="DESIMC0NTRACT99")
def emaid_mismatch(ctx, emaid):
    """ISO 15118-2 Plug & Charge: the EV's PaymentDetailsReq claims eMAID ``emaid`` while its
    contract certificate is issued to the simulator's eMAID (a vehicle with the certificate of
    another contract installed); the SECC does not compare them and answers OK (SIG006)."""
    name = "emaid_mismatch"
    ed.need(ctx, ("ISO 15118-2",), payment="PnC", name=name)
    ci, xi, x, m = ctx.find("PaymentDetailsReq", 1)
    body_of(m.tree)["eMAID"] = str(emaid)
    ed.encodes(m)
    ed.note(m, f"{name}: eMAID {emaid} with the certificate of another contract")
