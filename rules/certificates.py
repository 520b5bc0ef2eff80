"""Plug & Charge certificates inside V2G messages: the contract certificate chain the EV
presents (PaymentDetailsReq, ISO 15118-20 AuthorizationReq), the provisioning and contract
chains of certificate installation and update, judged at the capture's time; whether the
SECC accepted a contract certificate it should have refused; whether it said that the
contract certificate expires soon.

The certificates are described by the V2G layer (dissectors/v2g_certificates.py) in each
message's ``info["certificates"]``: ``[{"element", "sub_certificates", "certificates":
[x509info descriptions, leaf first, with issued_by_next / signed_by_next]}]``. The TLS
handshake's own chains are the TLS rules' (TLS004-TLS006).
"""
from __future__ import annotations

from ccs_analyzer.analyzer.views.exchanges import accepted_response, response_to
from ccs_analyzer.analyzer.views.certificates import leaf_domain, profile_problems
from ccs_analyzer.analyzer.views.index import session_index

from .base import Rule, judged
from .helpers import culprit_of, response_code, utc_epoch, utc_text

ISO2 = "ISO 15118-2"
ISO20 = "ISO 15118-20"
DIN = "DIN 70121"

#: Requests whose chain is the EV's contract certificate chain, which the SECC must verify
#: before it authorises the session (ISO 15118-2 PaymentDetailsReq; -20 AuthorizationReq PnC).
_CONTRACT_REQUESTS = ("PaymentDetailsReq", "AuthorizationReq")


def certificate_events(session, ctx) -> list[tuple]:
    """[(event, chain item)] of every V2G message of the session that carries certificates,
    in order (kept per session, ``ctx.view("certificates.events")``: six rules read it;
    read-only)."""
    def build():
        return [(e, item) for e in session_index(session, ctx).v2g if e.info
                for item in e.info.get("certificates") or ()]
    return ctx.view("certificates.events", session, build)


def _label(cert: dict) -> str:
    return str(cert.get("subject_cn") or cert.get("subject") or f"certificate #{cert.get('index', 0)}")


def _role(cert: dict) -> str:
    return "leaf" if cert.get("index", 0) == 0 else f"sub-CA #{cert.get('index')}"


def validity_problem(cert: dict, t: float, skew_s: float, min_epoch: float) -> dict | None:
    """How ``cert`` (an x509info description) fails at capture time ``t`` (epoch s): None when
    valid or undatable, else ``{"state": "expired" | "not_yet_valid" | "implausible_clock",
    "days": float, "skew": bool}`` (skew: not yet valid by less than ``skew_s``). RFC 5280
    §4.1.2.5 (notBefore ≤ t ≤ notAfter)."""
    nb, na = utc_epoch(cert.get("not_before")), utc_epoch(cert.get("not_after"))
    if nb is None or na is None or nb <= t <= na:
        return None
    if t < min_epoch:
        return {"state": "implausible_clock", "days": 0.0, "skew": False}
    if t > na:
        return {"state": "expired", "days": (t - na) / 86400, "skew": False}
    return {"state": "not_yet_valid", "days": (nb - t) / 86400, "skew": nb - t < skew_s}


def chain_breaks(item: dict) -> list[str]:
    """Why a described chain does not link up (empty when it does): a certificate that does
    not parse, or one not issued / not signed by the next (RFC 5280 §6.1)."""
    out = []
    chain = item.get("certificates") or []
    for i, cert in enumerate(chain):
        if cert.get("error"):
            out.append(f"#{i} does not parse ({cert['error']})")
            continue
        nxt = chain[i + 1] if i + 1 < len(chain) else None
        if nxt is None or nxt.get("error"):
            continue
        if cert.get("issued_by_next") is False:
            out.append(f"#{i} {_label(cert)} is issued by {cert.get('issuer_cn') or cert.get('issuer')}, "
                       f"but the next certificate is {_label(nxt)}")
        elif cert.get("signed_by_next") is False:
            out.append(f"#{i} {_label(cert)} names {_label(nxt)} as issuer, but its signature does "
                       "not verify with that key")
    return out


class V2gCertificateNotValid(Rule):
    """A certificate carried in a V2G message is expired or not yet valid at the capture's time.

    What it checks: notBefore ≤ t ≤ notAfter of every certificate of the chains that Plug &
    Charge messages carry — the EV's contract chain (PaymentDetailsReq, CertificateUpdateReq,
    ISO 15118-20 AuthorizationReq), its OEM provisioning certificate / chain
    (CertificateInstallationReq), the provisioning (SA / CPS) and new contract chains the
    SECC delivers (CertificateInstallationRes, CertificateUpdateRes) — where t is the capture
    time of that message. Not yet valid by less than ``clock_skew_s``: a warning (clocks
    differ); a capture clock before ``min_plausible_epoch_s`` (epoch seconds, UTC; an unset
    clock): info, culprit capture. The culprit is the sender of the chain (for installation /
    update responses the SECC, which relays its backend's chain).
    Why it matters: the SECC (or the backend) must refuse an expired contract certificate
    (ISO 15118-2 PaymentDetailsRes FAILED_CertificateExpired; -20 WARNING_CertificateExpired)
    and the EV an expired provisioning chain: the session falls back to external payment or
    ends. An EV presenting an expired contract should have renewed it before
    (CertificateUpdate) or install a new one (CertificateInstallation).
    Fix (EVCC): renew the contract certificate in time (CertificateUpdateReq when it expires
    soon); check the vehicle clock. (SECC / backend): deliver currently valid chains.
    Source: RFC 5280 §4.1.2.5; ISO 15118-2 responseCodeType FAILED_CertificateExpired;
    ISO 15118-20 responseCodeType WARNING_CertificateExpired / WARNING_CertificateNotYetValid
    (PROTOCOL_FACTS §4.0, §5); ChargeX PFMEA UC2 113 (expired / incorrect certificates).

    Example:

        #66 PaymentDetailsReq eMAID=DESIMC0NTRACT01
          → #68 PaymentDetailsRes ResponseCode=FAILED_CertificateExpired
    """

    code = "MSG016"
    title = "Plug & Charge certificate not valid at the capture's time"
    severity = "error"
    category = "message-content"
    kinds = ("certificate-problem",)
    explains = ("failed-response", "evse-refused", "tls-failed")
    requirement = "RFC 5280 §4.1.2.5 validity; ISO 15118-2 FAILED_CertificateExpired"
    culprit = "unknown"
    failure_modes = ("UC2 113",)
    params = {"clock_skew_s": 300.0, "min_plausible_epoch_s": 1_262_304_000.0}
    renamed_params = {"min_plausible_epoch": "min_plausible_epoch_s"}

    def check(self, session, ctx):
        for e, item in certificate_events(session, ctx):
            for cert in item.get("certificates") or ():
                bad = validity_problem(cert, e.time, self.p["clock_skew_s"],
                                       self.p["min_plausible_epoch_s"])
                if bad is None:
                    continue
                where = f"{item['element']} (frame {e.frame})"
                window = f"{cert.get('not_before')} … {cert.get('not_after')}"
                if bad["state"] == "implausible_clock":
                    yield self.finding(session, [e.frame],
                                       f"The capture's clock ({utc_text(e.time)}) is implausible: the validity "
                                       f"of {_label(cert)} in {where} ({window}) cannot be judged",
                                       time=e.time, culprit="capture", severity="info",
                                       evidence={"capture_time": utc_text(e.time), "subject": cert.get("subject")})
                    continue
                state = (f"expired {cert.get('not_after')} ({bad['days']:.1f} days before the capture)"
                         if bad["state"] == "expired" else
                         f"not valid before {cert.get('not_before')} ({bad['days']:.2f} days after "
                         "the capture time)")
                res = response_to(session, ctx, e) if e.name.endswith("Req") else None
                rc = response_code(res) if res is not None else None
                answer = f"; the SECC answered {rc} (frame {res.frame})" if rc else ""
                yield self.finding(session, [e.frame, res.frame if res is not None else None],
                                   f"The {_role(cert)} certificate {_label(cert)} in {where} is {state}"
                                   f"{answer}",
                                   time=e.time, culprit=culprit_of(e),
                                   severity="warning" if bad["skew"] else None,
                                   measured=round(bad["days"] * 86400, 3), limit=0, unit="s",
                                   evidence={"expected": f"{cert.get('not_before')} ≤ capture time ≤ "
                                                         f"{cert.get('not_after')}",
                                             "actual": utc_text(e.time), "element": item["element"],
                                             "subject": cert.get("subject"), "issuer": cert.get("issuer"),
                                             "serial": cert.get("serial"), "sha256": cert.get("sha256"),
                                             "secc_answer": rc},
                                   values=[judged(res, "ResponseCode", rc) if rc else None])


class V2gCertificateChainBroken(Rule):
    """A certificate chain carried in a V2G message does not link up, or carries too many
    sub-CA certificates.

    What it checks: in every chain of a Plug & Charge message (see MSG016) each certificate
    parses and is issued (issuer name = next subject) and signed by the next one, leaf first
    then Sub-CA 2, Sub-CA 1 (the root is not sent); ISO 15118-2 / DIN 70121: at most
    ``max_sub_certificates`` certificates in SubCertificates ([V2G2-656]; the schema allows
    four) — a warning. The culprit is the sender of the chain.
    Why it matters: the receiver cannot build the path to its root (ISO 15118-2
    FAILED_CertChainError; -20 WARNING_CertificateValidationError): no Plug & Charge.
    Fix (chain owner): send leaf, Sub-CA 2, Sub-CA 1 in issuing order, nothing else.
    Source: ISO 15118-2 [V2G2-656] (≤ 2 sub-certificates), certificateChainType;
    ISO 15118-2 responseCodeType FAILED_CertChainError; RFC 5280 §6.1 (path validation).

    Example:

        #66 PaymentDetailsReq → #68 PaymentDetailsRes
    """

    code = "MSG017"
    title = "Plug & Charge certificate chain broken or too long"
    severity = "error"
    category = "message-content"
    kinds = ("certificate-problem",)
    explains = ("failed-response", "evse-refused", "tls-failed")
    requirement = "ISO 15118-2 [V2G2-656] certificateChainType; RFC 5280 §6.1"
    culprit = "unknown"
    failure_modes = ("UC2 113",)
    params = {"max_sub_certificates": 2}

    def check(self, session, ctx):
        for e, item in certificate_events(session, ctx):
            breaks = chain_breaks(item)
            names = [_label(c) for c in item.get("certificates") or ()]
            if breaks:
                yield self.finding(session, [e.frame],
                                   f"The certificate chain in {item['element']} (frame {e.frame}) is "
                                   f"broken: {'; '.join(breaks)}",
                                   time=e.time, culprit=culprit_of(e),
                                   evidence={"expected": "each certificate issued and signed by the next",
                                             "actual": "; ".join(breaks), "chain": names,
                                             "element": item["element"]})
            n_sub = item.get("sub_certificates", 0)
            if (e.protocol in (ISO2, DIN) and n_sub > self.p["max_sub_certificates"]):
                yield self.finding(session, [e.frame],
                                   f"{item['element']} (frame {e.frame}) carries {n_sub} sub-CA "
                                   f"certificates; {e.protocol} allows {self.p['max_sub_certificates']}",
                                   time=e.time, culprit=culprit_of(e), severity="warning",
                                   measured=n_sub, limit=self.p["max_sub_certificates"],
                                   evidence={"expected": f"≤ {self.p['max_sub_certificates']} SubCertificates",
                                             "actual": f"{n_sub} SubCertificates", "chain": names,
                                             "element": item["element"]})


class InvalidContractAccepted(Rule):
    """The SECC accepted a contract certificate it had to refuse.

    What it checks: the EV's contract chain in ISO 15118-2 PaymentDetailsReq (or ISO 15118-20
    AuthorizationReq, Plug & Charge) is expired, not yet valid (beyond ``clock_skew_s``),
    does not link up (MSG016 / MSG017) or — with trust anchors given — leads to none of them
    (MSG023), and the SECC's response still has a ResponseCode OK…: it did not validate the
    chain before authorising the session.
    Why it matters: a charger that does not validate contract certificates bills against
    contracts that have ended or were never issued by a trusted mobility operator; a
    conformance test fails it.
    Fix (SECC): validate the contract chain (validity, path to the MO / V2G root, OCSP where
    available) and answer FAILED_CertificateExpired / FAILED_CertChainError (-20:
    WARNING_CertificateExpired / WARNING_CertificateValidationError).
    Source: ISO 15118-2 responseCodeType FAILED_CertificateExpired, FAILED_CertChainError
    (PaymentDetailsRes); ISO 15118-20 responseCodeType WARNING_Certificate*; RFC 5280 §6.1;
    ChargeX PFMEA UC2 113.

    Example:

        #66 PaymentDetailsReq → #68 PaymentDetailsRes ResponseCode=OK
    """

    code = "MSG018"
    title = "SECC accepted an invalid contract certificate"
    severity = "error"
    category = "message-content"
    requirement = "ISO 15118-2 FAILED_CertificateExpired / FAILED_CertChainError (PaymentDetailsRes)"
    culprit = "SECC"
    failure_modes = ("UC2 113",)
    params = {"clock_skew_s": 300.0, "min_plausible_epoch_s": 1_262_304_000.0}
    renamed_params = {"min_plausible_epoch": "min_plausible_epoch_s"}

    def check(self, session, ctx):
        for e, item in certificate_events(session, ctx):
            if e.name not in _CONTRACT_REQUESTS or e.direction != "EV->EVSE":
                continue
            why = chain_breaks(item)
            if (item.get("trust") or {}).get("status") == "not anchored":
                why.append(f"no path to a given trust anchor ({item['trust'].get('reason')})")
            for cert in item.get("certificates") or ():
                bad = validity_problem(cert, e.time, self.p["clock_skew_s"],
                                       self.p["min_plausible_epoch_s"])
                if bad and bad["state"] in ("expired", "not_yet_valid") and not bad["skew"]:
                    why.append(f"{_role(cert)} {_label(cert)} {bad['state'].replace('_', ' ')} "
                               f"({cert.get('not_before')} … {cert.get('not_after')})")
            if not why:
                continue
            ok = accepted_response(session, ctx, e)
            if ok is None:
                continue
            res, rc = ok
            yield self.finding(session, [e.frame, res.frame],
                               f"The SECC answered {e.name} (frame {e.frame}) with {rc} (frame "
                               f"{res.frame}) although the contract chain is invalid: {'; '.join(why)}",
                               time=res.time, measured=rc,
                               limit="FAILED_CertificateExpired / FAILED_CertChainError",
                               evidence={"expected": "FAILED_CertificateExpired / FAILED_CertChainError "
                                                     "(-20: WARNING_Certificate…)",
                                         "actual": rc, "ResponseCode": rc, "problems": why,
                                         "element": item["element"]},
                               values=[judged(res, "ResponseCode", rc,
                                              expected="FAILED_CertificateExpired / FAILED_CertChainError")])


class CertificateExpiresSoonNotSignalled(Rule):
    """The contract certificate expires within 21 days, but the SECC answered plain OK.

    What it checks: ISO 15118-2 PaymentDetailsReq whose contract (leaf) certificate is valid
    at the capture's time but expires within ``warn_days`` days, answered with ResponseCode
    OK instead of OK_CertificateExpiresSoon.
    Why it matters: OK_CertificateExpiresSoon is how the EV learns to renew its contract
    (CertificateUpdate) before it expires; without it, the next sessions fail with
    FAILED_CertificateExpired (many EVs check the date themselves — RiseV2G's EVCC does).
    Fix (SECC): compare the contract certificate's notAfter with the current time and answer
    OK_CertificateExpiresSoon within 21 days of it.
    Source: ISO 15118-2 [V2G2-690] (PROTOCOL_FACTS §4.0 ⚠ read from RiseV2G), responseCodeType.

    Example:

        #66 PaymentDetailsReq eMAID=DESIMC0NTRACT01 → #68 PaymentDetailsRes ResponseCode=OK
    """

    code = "MSG019"
    title = "OK_CertificateExpiresSoon not signalled"
    severity = "warning"
    category = "message-content"
    protocols = (ISO2,)
    requirement = "ISO 15118-2 [V2G2-690]"
    culprit = "SECC"
    failure_modes = ("UC2 113",)
    params = {"warn_days": 21.0}

    def check(self, session, ctx):
        for e, item in certificate_events(session, ctx):
            if e.name != "PaymentDetailsReq" or e.protocol != ISO2 or not item.get("certificates"):
                continue
            leaf = item["certificates"][0]
            na = utc_epoch(leaf.get("not_after"))
            nb = utc_epoch(leaf.get("not_before"))
            if na is None or (nb is not None and e.time < nb) or not 0 <= na - e.time <= self.p["warn_days"] * 86400:
                continue
            res = response_to(session, ctx, e)
            rc = response_code(res) if res is not None else None
            if rc != "OK":
                continue
            days = (na - e.time) / 86400
            yield self.finding(session, [e.frame, res.frame],
                               f"The contract certificate {_label(leaf)} (frame {e.frame}) expires "
                               f"{leaf.get('not_after')}, {days:.1f} days after the capture, but "
                               f"PaymentDetailsRes (frame {res.frame}) says OK, not "
                               "OK_CertificateExpiresSoon",
                               time=res.time, measured=round(days, 2), limit=self.p["warn_days"], unit="d",
                               evidence={"expected": "OK_CertificateExpiresSoon", "actual": rc,
                                         "ResponseCode": rc, "not_after": leaf.get("not_after")},
                               values=[judged(res, "ResponseCode", rc, expected="OK_CertificateExpiresSoon")])


class ChainNotAnchored(Rule):
    """A certificate chain in a V2G message leads to none of the trust anchors given.

    What it checks: with trust anchors given (``--trust``: V2G, MO, OEM root certificates),
    each chain a Plug & Charge message carries — the contract chain (PaymentDetailsReq,
    CertificateUpdateReq, ISO 15118-20 AuthorizationReq), the OEM provisioning chain
    (CertificateInstallationReq), the SA provisioning (CPS) and new contract chains
    (CertificateInstallationRes / UpdateRes) — must have a path from its leaf through its
    sub-CAs to one of them (RFC 5280 §6 path validation by dissectors/x509trust.py:
    signatures, names, basicConstraints and path length, keyCertSign). Without trust anchors
    nothing is judged: the chains are "unanchored" (report, docs/pnc.md). Validity at the
    capture's time is MSG016's.
    Why it matters: a chain from a root the other side does not trust is refused
    (FAILED_CertChainError, -20 WARNING_CertificateValidationError, or a TLS alert): the
    vehicle carries a contract of a mobility operator the charger's backend does not know,
    or an OEM / CPS chain from a test PKI in a production setup.
    Fix (the chain's owner): present a chain issued under a root of the ecosystem the peer
    trusts (the V2G root, the MO's root in the charger's trust list, the OEM root).
    Source: RFC 5280 §6.1; ISO 15118-2 §7.9 and Annex F (certificate chains and roots);
    ISO 15118-20 §7.9 / Annex C.

    Example:

        #66 PaymentDetailsReq eMAID=DESIMC0NTRACT01 → #68 PaymentDetailsRes
    """

    code = "MSG023"
    title = "Certificate chain not anchored in a given trust anchor"
    severity = "error"
    category = "message-content"
    kinds = ("certificate-problem",)
    explains = ("failed-response", "evse-refused")
    requirement = "RFC 5280 §6.1 path validation; ISO 15118-2 Annex F"
    culprit = "unknown"
    failure_modes = ("UC2 113",)

    def check(self, session, ctx):
        for e, item in certificate_events(session, ctx):
            t = item.get("trust") or {}
            if t.get("status") != "not anchored":
                continue
            leaf = (item.get("certificates") or [{}])[0]
            res = response_to(session, ctx, e) if e.name.endswith("Req") else None
            rc = response_code(res) if res is not None else None
            yield self.finding(session, [e.frame, res.frame if res is not None else None],
                               f"The chain in {item['element']} (frame {e.frame}, leaf {_label(leaf)}, "
                               f"issuer {leaf.get('issuer_cn') or leaf.get('issuer')}) leads to none of the "
                               f"trust anchors given: {t.get('reason')}"
                               + (f"; the SECC answered {rc} (frame {res.frame})" if rc else ""),
                               time=e.time, culprit=culprit_of(e),
                               evidence={"expected": "a path to a given trust anchor",
                                         "actual": t.get("reason"), "element": item["element"],
                                         "chain": [c.get("subject") for c in item.get("certificates") or ()],
                                         "secc_answer": rc})


class PncCertificateProfile(Rule):
    """A certificate of a Plug & Charge chain does not fit its role.

    What it checks: every certificate of the chains Plug & Charge messages carry (contract,
    OEM provisioning, CPS / SA provisioning, the new contract chain of an installation or
    update): the leaf is not a CA and has keyUsage digitalSignature, and its subject carries
    its PKI's domainComponent (DC=MO contract, OEM provisioning, CPS: a warning); each sub-CA has
    basicConstraints cA = true and keyCertSign (errors); the key is EC secp256r1 in ISO
    15118-2 / DIN sessions, EC secp521r1 or Ed448 in ISO 15118-20 (a warning; the key
    types, "EC <curve>" or the algorithm's name, are ``iso2_keys`` and ``iso20_keys``). Validity
    periods: ``max_validity_days`` maps a PKI ("MO", "OEM", "CPS") to the longest validity in
    days of its leaf, Sub-CA 2 and Sub-CA 1 (``{MO = [730, 1460, 1460]}`` in a profile); it is
    empty by default — the limits are the certificate policy's (ISO 15118-2 Annex F, the V2G
    PKI's CP), which PROTOCOL_FACTS does not state, so a user sets them from the policy they
    test against (docs/pnc.md). The same profile as TLS005 applies to the TLS chains
    (analyzer/views/certificates.py).
    Why it matters: a validating SECC or backend refuses the chain (FAILED_CertChainError,
    -20 WARNING_CertificateValidationError); a contract certificate with the CA flag could
    issue further contracts.
    Fix (the chain's issuer: MO, OEM, CPS): re-issue the certificate with its role's profile.
    Source: RFC 5280 §4.2.1.3, §4.2.1.9; ISO 15118-2 Annex F (contract and provisioning
    certificate profiles: secp256r1, ecdsa-with-SHA256); ISO 15118-20 [V2G20-2674],
    [V2G20-2319].

    Example:

        #66 PaymentDetailsReq eMAID=DESIMC0NTRACT01
          → #68 PaymentDetailsRes ResponseCode=FAILED_CertChainError
    """

    code = "MSG024"
    title = "Plug & Charge certificate profile violated (CA flag, key usage, key)"
    severity = "error"
    category = "message-content"
    kinds = ("certificate-problem",)
    explains = ("failed-response", "evse-refused")
    requirement = "RFC 5280 §4.2.1.3 keyUsage, §4.2.1.9 basicConstraints; ISO 15118-2 Annex F"
    culprit = "unknown"
    failure_modes = ("UC2 113",)
    params = {"iso2_keys": ("EC secp256r1",), "iso20_keys": ("EC secp521r1", "Ed448"),
              "max_validity_days": {}}

    def check(self, session, ctx):
        proto = ctx.summaries.get(session.id, {}).get("protocol")
        limits = self.p["max_validity_days"] or {}
        keys = {ISO2: self.p["iso2_keys"], DIN: self.p["iso2_keys"], ISO20: self.p["iso20_keys"]}.get(proto)
        for e, item in certificate_events(session, ctx):
            hard, per_cert = 0, []
            pki = leaf_domain(item["element"])
            days = list(limits.get(pki) or ())
            for cert in item.get("certificates") or ():
                i = cert.get("index", 0)
                problems, warns = profile_problems(cert, keys, proto, leaf_dc=pki,
                                                   max_days=days[i] if i < len(days) else None)
                if problems or warns:
                    hard += len(problems)
                    per_cert.append(f"{_role(cert)} {_label(cert)}: {', '.join(problems + warns)}")
            if not per_cert:
                continue
            yield self.finding(session, [e.frame],
                               f"The chain in {item['element']} (frame {e.frame}): " + "; ".join(per_cert),
                               time=e.time, culprit=culprit_of(e), severity=None if hard else "warning",
                               evidence={"expected": "the certificate profile of each role",
                                         "actual": per_cert, "element": item["element"]})
