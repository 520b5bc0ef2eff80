"""Plug & Charge signatures and identities, judged from what the V2G layer verified.

Every message with a header xmldsig Signature gets ``info["signature"]`` from
dissectors/v2g_signatures.py: each Reference's digest recomputed over the referenced
element's EXI fragment (``references[i]["status"]`` ok / mismatch / unresolved /
unsupported), and SignatureValue checked over SignedInfo with the signer's public key
(``valid`` True / False / None, ``reason``, ``signer``). These rules turn that into findings
— the signature itself, the SECC's answer to it — and check the identities the contract
certificate vouches for (the eMAID). They never encode or verify anything themselves.

Sources: ISO 15118-2 §7.9.2.4 ([V2G2-771] … [V2G2-773]: EXI-fragment digests, ECDSA
secp256r1 / SHA-256), §8.4.3.x (which message is signed by whom), responseCodeType
FAILED_SignatureError / FAILED_MeteringSignatureNotValid; ISO 15118-20 §8.4 and its
responseCodeType; W3C XML Signature 1.1 §3.2 (core validation: Reference and Signature
validation).
"""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import message_body
from ccs_analyzer.analyzer.views.exchanges import accepted_response, response_to
from ccs_analyzer.analyzer.views.index import session_index
from ccs_analyzer.analyzer.views.signatures import (SIGNATURE_REFUSALS, passes_core_validation,
                                                    signed_events)

from .base import Rule, judged
from .helpers import culprit_of, response_code

def _signer_text(sig: dict) -> str:
    s = sig.get("signer") or {}
    return f"the {s.get('role')} certificate {s.get('subject')} (frame {s.get('frame')})" if s else "no known certificate"


def signature_problem(sig: dict) -> str | None:
    """Why a signed message fails core validation (W3C xmldsig §3.2), None when it passes or
    cannot be judged: SignatureValue does not verify, or a Reference's digest differs."""
    why = []
    if sig.get("valid") is False:
        why.append(f"SignatureValue: {sig.get('reason')}")
    for r in sig.get("references") or ():
        if r.get("status") == "mismatch":
            why.append(f"Reference {r.get('uri')} ({r.get('element')}): digest differs")
    return "; ".join(why) or None


class SignatureInvalid(Rule):
    """The SignatureValue of a signed Plug & Charge message does not verify.

    What it checks: the header Signature of AuthorizationReq, MeteringReceiptReq,
    CertificateInstallationReq/Res, CertificateUpdateReq/Res (ISO 15118-20:
    AuthorizationReq PnC, MeteringConfirmationReq, CertificateInstallationReq/Res): ECDSA
    over the EXI fragment of SignedInfo with the public key of the certificate the standard
    names (the contract certificate of the session's PaymentDetailsReq, the OEM provisioning
    or CPS certificate in the message), as dissectors/v2g_signatures.py verified it.
    Why it matters: the SECC must refuse the message (FAILED_SignatureError,
    FAILED_MeteringSignatureNotValid): Plug & Charge authorisation fails and the session
    ends or falls back to external payment. A broken signature means the signer used
    another key than its certificate's, signed other bytes than it sent (a wrong EXI
    fragment encoding, a wrong SignedInfo) or corrupted the value.
    Fix (signer): sign the EXI fragment of SignedInfo encoded against the xmldsig schema
    with the private key of the certificate presented; write r‖s as 64 octets.
    Source: ISO 15118-2 §7.9.2.4.2, [V2G2-771]; ISO 15118-20 §8.4; W3C xmldsig §3.2.2.

    Example:

        #70 AuthorizationReq → #72 AuthorizationRes ResponseCode=FAILED_SignatureError
    """

    code = "SIG001"
    title = "Plug & Charge signature does not verify"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    requirement = "ISO 15118-2 §7.9.2.4.2 [V2G2-771]"
    culprit = "EVCC"
    failure_modes = ("UC2 113",)

    def check(self, session, ctx):
        for e, sig in signed_events(session, ctx):
            if sig.get("valid") is not False:
                continue
            yield self.finding(session, [e.frame],
                               f"The signature of {e.name} (frame {e.frame}) does not verify with "
                               f"{_signer_text(sig)}: {sig.get('reason')}",
                               time=e.time, culprit=culprit_of(e),
                               evidence={"expected": "SignatureValue verifies over SignedInfo with the signer's key",
                                         "actual": sig.get("reason"), "signer": sig.get("signer"),
                                         "SignatureMethod": sig.get("method")},
                               values=[judged(e, "Signature.SignatureValue")])


class SignatureDigestMismatch(Rule):
    """A Reference of a signed message carries another digest than its element has.

    What it checks: each Reference of the header Signature (``URI="#ID1"``): the digest
    (SHA-256, ISO 15118-20 also SHA-512 / SHAKE256) of the EXI fragment of the element with
    that Id, as dissectors/v2g_signatures.py recomputed it, against DigestValue. The finding
    names the Reference and the element.
    Why it matters: a receiver that validates the signature refuses the message exactly as
    for a wrong SignatureValue; the usual cause is a signer that digests something else than
    the element's EXI fragment (the whole EXI document, an XML serialisation, the element
    before a last edit).
    Fix (signer): digest the referenced element's EXI fragment (EXI 1.0 §8.5.3, the
    message's schema, canonical-exi) after the last change to it.
    Source: ISO 15118-2 §7.9.2.4.2, [V2G2-771]/[V2G2-772]; W3C xmldsig §3.2.1 (Reference
    validation).

    Example:

        #102 MeteringReceiptReq
          → #104 MeteringReceiptRes ResponseCode=FAILED_MeteringSignatureNotValid
    """

    code = "SIG002"
    title = "Signature Reference digest does not match its element"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    requirement = "ISO 15118-2 §7.9.2.4.2 [V2G2-771]"
    culprit = "EVCC"
    failure_modes = ("UC2 113",)

    def check(self, session, ctx):
        for e, sig in signed_events(session, ctx):
            for r in sig.get("references") or ():
                if r.get("status") != "mismatch":
                    continue
                yield self.finding(session, [e.frame],
                                   f"Reference {r.get('uri')} of {e.name} (frame {e.frame}) carries "
                                   f"DigestValue {str(r.get('carried'))[:16]}…, but the EXI fragment of "
                                   f"{r.get('element')} digests to {str(r.get('computed'))[:16]}…",
                                   time=e.time, culprit=culprit_of(e),
                                   evidence={"expected": r.get("computed"), "actual": r.get("carried"),
                                             "Reference": r.get("uri"), "element": r.get("element"),
                                             "DigestMethod": r.get("algorithm")},
                                   values=[judged(e, "Reference.DigestValue", r.get("carried"),
                                                  expected=r.get("computed"))])


class SignatureSignsNothing(Rule):
    """A message carries a Signature whose Reference names no element of it.

    What it checks: a header Signature with a Reference ``#Id`` that resolves to no element
    of the message (dissectors/v2g_signatures.py status "unresolved"), typically a Signature
    copied from an earlier signed message onto messages that are not signed (RISE-V2G's EVCC
    keeps the MeteringReceiptReq's header on the ChargingStatusReq / PowerDeliveryReq after
    it). One finding per session with every such message.
    Why it matters: core validation fails for such a message; a strict SECC refuses it with
    FAILED_SignatureError although the message needs no signature. The lenient ones ignore
    the header, so sessions pass on some chargers and fail on others.
    Fix (EVCC): send the Signature header only on the messages ISO 15118-2 signs, each
    computed for that message.
    Source: ISO 15118-2 §7.9.2.4.2 ([V2G2-771]: the Reference names the signed element by
    its Id), W3C xmldsig §3.2.1 (Reference validation: dereferencing the URI).

    Example:

        #74 ChargeParameterDiscoveryReq → #76 ChargeParameterDiscoveryRes
        #78 CableCheckReq → #80 CableCheckRes
        #82 CableCheckReq → #84 CableCheckRes
    """

    code = "SIG003"
    title = "Signature header references no element of its message"
    severity = "warning"
    category = "message-content"
    requirement = "ISO 15118-2 §7.9.2.4.2 [V2G2-771]"
    culprit = "EVCC"

    def check(self, session, ctx):
        hits = [(e, sig) for e, sig in signed_events(session, ctx)
                if any(r.get("status") == "unresolved" for r in sig.get("references") or ())]
        if not hits:
            return
        e0 = hits[0][0]
        uris = sorted({r.get("uri") for _, sig in hits for r in sig["references"] if r.get("status") == "unresolved"})
        names = sorted({e.name for e, _ in hits})
        yield self.finding(session, [e.frame for e, _ in hits][:50],
                           f"{len(hits)} message(s) ({', '.join(names)}; first frame {e0.frame}) carry a "
                           f"header Signature whose Reference {', '.join(map(str, uris))} names no element "
                           "of the message: a signature copied onto messages that are not signed",
                           time=e0.time, culprit=culprit_of(e0),
                           evidence={"expected": "a Reference to an element of the message (or no Signature)",
                                     "actual": f"Reference {', '.join(map(str, uris))} unresolved",
                                     "messages": names, "count": len(hits)})


class InvalidSignatureAccepted(Rule):
    """The SECC accepted a request whose signature fails validation.

    What it checks: a signed request (SIG001 or SIG002 finds it invalid) answered with a
    ResponseCode OK…: the SECC did not verify the signature (ISO 15118-2 requires it to
    answer FAILED_SignatureError, for MeteringReceiptReq FAILED_MeteringSignatureNotValid).
    Why it matters: an SECC that does not verify AuthorizationReq signatures authorises
    anyone who replays a GenChallenge-free request or presents a foreign contract
    certificate; an unverified MeteringReceipt is worthless for billing. Conformance fails.
    Fix (SECC): verify each Reference digest and the SignatureValue with the contract
    certificate's key before answering OK.
    Source: ISO 15118-2 §8.4.3.x responseCodeType FAILED_SignatureError, [V2G2-771];
    ISO 15118-20 responseCodeType FAILED_SignatureError.

    Example:

        #70 AuthorizationReq → #72 AuthorizationRes
    """

    code = "SIG004"
    title = "SECC accepted an invalid signature"
    severity = "error"
    category = "response-code"
    requirement = "ISO 15118-2 FAILED_SignatureError / FAILED_MeteringSignatureNotValid"
    culprit = "SECC"
    failure_modes = ("UC2 113",)

    def check(self, session, ctx):
        for e, sig in signed_events(session, ctx):
            why = signature_problem(sig)
            if why is None or not e.name.endswith("Req") or e.direction != "EV->EVSE":
                continue
            ok = accepted_response(session, ctx, e)
            if ok is None:
                continue
            res, rc = ok
            yield self.finding(session, [e.frame, res.frame],
                               f"The SECC answered {e.name} (frame {e.frame}) with {rc} (frame {res.frame}) "
                               f"although its signature is invalid: {why}",
                               time=res.time, measured=rc, limit=" / ".join(SIGNATURE_REFUSALS),
                               evidence={"expected": " / ".join(SIGNATURE_REFUSALS), "actual": rc,
                                         "problem": why},
                               values=[judged(res, "ResponseCode", rc, expected=" / ".join(SIGNATURE_REFUSALS))])


class ValidSignatureRefused(Rule):
    """The SECC refused a signature that verifies.

    What it checks: a signed request whose every Reference digest matches and whose
    SignatureValue verifies with the signer's certificate (dissectors/v2g_signatures.py),
    answered FAILED_SignatureError or FAILED_MeteringSignatureNotValid: the SECC's own
    verification is wrong (an XML rather than EXI canonicalisation, SignedInfo encoded with
    the message's schema instead of the xmldsig schema alone, the wrong key, r‖s read as
    DER).
    Why it matters: Plug & Charge fails at this charger for every vehicle that signs
    correctly; the EV is blamed while the charger is at fault.
    Fix (SECC): verify as ISO 15118-2 §7.9.2.4.2 prescribes (the EXI fragments, the
    xmldsig-only SignedInfo encoding, ECDSA P-256 with the contract certificate's key).
    Source: ISO 15118-2 §7.9.2.4.2 [V2G2-771]; responseCodeType FAILED_SignatureError.

    Example:

        #70 AuthorizationReq → #72 AuthorizationRes ResponseCode=FAILED_SignatureError
    """

    code = "SIG005"
    title = "SECC refused a valid signature"
    severity = "error"
    category = "response-code"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    requirement = "ISO 15118-2 §7.9.2.4.2 [V2G2-771]"
    culprit = "SECC"
    failure_modes = ("UC2 113",)

    def check(self, session, ctx):
        for e, sig in signed_events(session, ctx):
            if not passes_core_validation(sig):
                continue
            res = response_to(session, ctx, e) if e.direction == "EV->EVSE" else None
            rc = response_code(res) if res is not None else None
            if rc not in SIGNATURE_REFUSALS:
                continue
            yield self.finding(session, [e.frame, res.frame],
                               f"The SECC answered {e.name} (frame {e.frame}) with {rc} (frame {res.frame}), "
                               f"but its signature verifies with {_signer_text(sig)} and every Reference "
                               "digest matches",
                               time=res.time, measured=rc, limit="OK",
                               evidence={"expected": "OK (the signature is valid)", "actual": rc,
                                         "signer": sig.get("signer")},
                               values=[judged(res, "ResponseCode", rc, expected="OK")])


def _emaid_key(text) -> str:
    """An eMAID compared as ISO 15118-2 / DIN SPEC 91286 write it: case and the optional
    hyphens do not matter."""
    return str(text or "").replace("-", "").upper()


class EmaidMismatch(Rule):
    """The eMAID the EV claims is not the one of its contract certificate.

    What it checks: ISO 15118-2 PaymentDetailsReq: ``eMAID`` against the common name of the
    contract certificate it presents in ContractSignatureCertChain (Annex F: the contract
    certificate's subject CN is the eMAID), hyphens and case ignored.
    Why it matters: the SECC (and the backend) authorise and bill the eMAID; one that does
    not match the certificate signed for is either a configuration error in the vehicle (a
    certificate of another contract installed) or an attempt to charge on someone else's
    contract. The SECC should refuse it (FAILED_CertChainError / FAILED).
    Fix (EVCC): send the eMAID of the installed contract certificate.
    Source: ISO 15118-2 PaymentDetailsReq eMAID, Annex F (contract certificate subject);
    DIN SPEC 91286 (eMAID format).

    Example:

        #66 PaymentDetailsReq eMAID=DESIMC0NTRACT99 → #68 PaymentDetailsRes
    """

    code = "SIG006"
    title = "eMAID differs from the contract certificate's"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    requirement = "ISO 15118-2 PaymentDetailsReq eMAID / Annex F"
    culprit = "EVCC"
    protocols = ("ISO 15118-2", "DIN 70121")

    def check(self, session, ctx):
        for e in session_index(session, ctx).named("PaymentDetailsReq"):
            emaid = message_body(e.message)[1].get("eMAID")
            leaf = next((c for item in (e.info or {}).get("certificates") or ()
                         if item.get("element", "").endswith("ContractSignatureCertChain")
                         for c in (item.get("certificates") or [])[:1]), None)
            cn = leaf.get("subject_cn") if leaf else None
            if not emaid or not cn or _emaid_key(emaid) == _emaid_key(cn):
                continue
            res = response_to(session, ctx, e)
            rc = response_code(res) if res is not None else None
            yield self.finding(session, [e.frame, res.frame if res is not None else None],
                               f"PaymentDetailsReq (frame {e.frame}) claims eMAID {emaid}, but its contract "
                               f"certificate is issued to {cn}" + (f"; the SECC answered {rc}" if rc else ""),
                               time=e.time, measured=str(emaid), limit=str(cn),
                               evidence={"expected": cn, "actual": emaid, "secc_answer": rc},
                               values=[judged(e, "eMAID", emaid, expected=cn)])


class SignatureUncheckable(Rule):
    """A signed message whose signature cannot be checked from the capture.

    What it checks: a header Signature the V2G layer could not verify for want of the
    signer's certificate (the contract certificate of a PaymentDetailsReq the capture does
    not hold — a capture started late, or a resumed session on a new connection), of a
    signature method or digest ISO 15118 does not use, or of a SignedInfo that cannot be
    encoded. Info: nothing is wrong with the session as far as the capture shows; the
    signature is simply unverified (dissectors/v2g_signatures.py ``valid`` None).
    Why it matters: a report that says nothing about a signature should say why; a
    capture of the whole session (from SLAC on) lets the signature be verified.
    Fix (capture): start capturing before plug-in; keep every connection of the session.
    Source: ISO 15118-2 §7.9.2.4.2 (which certificate signs what).

    Example:

        #1 AuthorizationReq → #3 AuthorizationRes
    """

    code = "SIG007"
    title = "Signature not checkable from the capture"
    severity = "info"
    category = "message-content"
    requirement = "ISO 15118-2 §7.9.2.4.2"
    culprit = "capture"

    def check(self, session, ctx):
        hits = [(e, sig) for e, sig in signed_events(session, ctx) if sig.get("valid") is None]
        if not hits:
            return
        e0, sig0 = hits[0]
        yield self.finding(session, [e.frame for e, _ in hits][:50],
                           f"{len(hits)} signature(s) could not be checked (first: {e0.name}, frame {e0.frame}): "
                           f"{sig0.get('reason')}",
                           time=e0.time, evidence={"expected": "the signer's certificate in the capture",
                                                   "actual": sig0.get("reason"), "count": len(hits)})
