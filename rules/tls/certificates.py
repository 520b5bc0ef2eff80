"""TLS rules on the SECC's certificates: TLS004-TLS006, TLS011-TLS014."""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import message_body
from ccs_analyzer.analyzer.views.certificates import (EVSEID, SECCID, leaf_domain, operator_of,
                                                      profile_problems)
from ccs_analyzer.analyzer.views.index import session_index

from ..base import Rule, judged
from ..helpers import utc_epoch, utc_text
from .common import ISO2, ISO20, _owner, _protocol


def certificate_messages(idx):
    """(event, sender, chain) of every Certificate handshake message of the session."""
    for e in idx.tls:
        if e.name == "Certificate" and e.info.get("kind") == "handshake":
            m = e.message or {}
            yield e, m.get("sender") or ("server" if e.direction == "EVSE->EV" else "client"), \
                m.get("certificates") or []


class CertificateNotValidAtCaptureTime(Rule):
    """A certificate in a TLS chain is expired or not yet valid at the capture's time.

    What it checks: notBefore ≤ t ≤ notAfter of every certificate in the server's and the
    client's Certificate message, where t is the capture time of that message — the time
    of the session, not today. A certificate not yet valid by less than
    ``clock_skew_s`` is a warning (clocks differ); a capture clock before
    ``min_plausible_epoch_s`` (epoch seconds, UTC; an unset clock, 1970) makes the check
    meaningless: info, culprit capture.
    Why it matters: the peer refuses an expired or not yet valid certificate
    (certificate_expired / bad_certificate alert, FAILED_CertificateExpired); the session
    never starts or falls back to no Plug & Charge.
    Fix: the certificate's owner (SECC for the server chain, EVCC for the client chain):
    renew the certificate; check the device clock when it is "not yet valid".
    Source: RFC 5280 §4.1.2.5 (validity), §6.1.3; ISO 15118-2 §7.7.3 / ISO 15118-20 §7.7.3
    certificate handling; ChargeX PFMEA UC2 113 (expired / incorrect certificates).

    Example:

        #45 Certificate, CertificateVerify, Finished EV→EVSE
    """

    code = "TLS004"
    title = "Certificate not valid at the capture's time"
    severity = "error"
    category = "tls"
    kinds = ("certificate-problem",)
    explains = ("tls-failed",)
    requirement = "RFC 5280 §4.1.2.5 certificate validity"
    culprit = "unknown"
    failure_modes = ("UC2 113", "UC2 100")
    params = {"clock_skew_s": 300.0, "min_plausible_epoch_s": 1_262_304_000.0}
    renamed_params = {"min_plausible_epoch": "min_plausible_epoch_s"}

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        for e, sender, chain in certificate_messages(idx):
            t = e.time
            for cert in chain:
                nb, na = utc_epoch(cert.get("not_before")), utc_epoch(cert.get("not_after"))
                if nb is None or na is None or nb <= t <= na:
                    continue
                subject = cert.get("subject_cn") or cert.get("subject")
                role = "leaf" if cert.get("index", 0) == 0 else "CA"
                if t < self.p["min_plausible_epoch_s"]:
                    yield self.finding(session, [e.frame],
                                       f"The capture's clock ({utc_text(t)}) is implausible: the validity "
                                       f"of {subject} ({cert.get('not_before')} … {cert.get('not_after')}) "
                                       "cannot be judged", time=t, culprit="capture", severity="info",
                                       evidence={"capture_time": utc_text(t), "subject": subject})
                    continue
                expired = t > na
                days = (t - na) / 86400 if expired else (nb - t) / 86400
                skew = not expired and nb - t < self.p["clock_skew_s"]
                state = (f"expired {cert.get('not_after')} ({days:.1f} days before the capture)" if expired
                         else f"not valid before {cert.get('not_before')} ({(nb - t):.0f} s after the "
                              "capture time)")
                yield self.finding(session, [e.frame],
                                   f"The {sender}'s {role} certificate {subject} (connection {e.conn}, "
                                   f"frame {e.frame}) is {state}; capture time {utc_text(t)}",
                                   time=t, culprit=_owner(e),
                                   severity=_lower(self.severity) if skew else None,
                                   measured=round(t - na if expired else nb - t, 3), limit=0,
                                   unit="s",
                                   evidence={"expected": f"{cert.get('not_before')} ≤ capture time ≤ "
                                                         f"{cert.get('not_after')}",
                                             "actual": utc_text(t), "subject": cert.get("subject"),
                                             "issuer": cert.get("issuer"), "serial": cert.get("serial"),
                                             "sha256": cert.get("sha256")})


def _lower(severity: str) -> str:
    return {"error": "warning"}.get(severity, "info")


class CertificateProfile(Rule):
    """A certificate's extensions or key do not fit its role.

    What it checks: a leaf (end-entity) certificate must not be a CA (basicConstraints
    cA = true) and needs keyUsage digitalSignature; a CA certificate in the chain needs
    basicConstraints cA = true and keyUsage keyCertSign; an extendedKeyUsage, when present,
    must allow serverAuth (server leaf) / clientAuth (client leaf); the SECC's leaf carries
    DC=CPO (ISO 15118-2 Annex F; a warning); the key: EC secp256r1
    for ISO 15118-2, EC secp521r1 or Ed448 for ISO 15118-20 (the key types, "EC <curve>" or
    the algorithm's name, are ``iso2_keys`` and ``iso20_keys``); certificates that did not
    parse. Errors for the X.509 role violations; key type / curve and EKU are warnings
    (⚠ PROTOCOL_FACTS has no certificate profile).
    Why it matters: a validating peer rejects the chain (bad_certificate /
    unsupported_certificate); a CA flag on a leaf lets it issue certificates.
    Fix: the certificate's owner (SECC: server chain; EVCC: client chain): re-issue the
    certificate with the profile of its role.
    Source: RFC 5280 §4.2.1.3 (keyUsage), §4.2.1.9 (basicConstraints), §4.2.1.12 (EKU);
    ISO 15118-2 Annex F certificate profiles (secp256r1, ecdsa-with-SHA256);
    ISO 15118-20 [V2G20-2674] (secp521r1), [V2G20-2319] (Ed448).

    Example:

        #42 Certificate, CertificateVerify, Finished EVSE→EV
    """

    code = "TLS005"
    title = "Certificate profile violated (CA flag, key usage, key)"
    severity = "error"
    category = "tls"
    kinds = ("certificate-problem",)
    explains = ("tls-failed",)
    requirement = "RFC 5280 §4.2.1.3 keyUsage, §4.2.1.9 basicConstraints"
    culprit = "unknown"
    failure_modes = ("UC2 113", "UC2 100")
    params = {"iso2_keys": ("EC secp256r1",), "iso20_keys": ("EC secp521r1", "Ed448")}

    def check(self, session, ctx):
        proto = _protocol(session, ctx)
        keys = {ISO2: self.p["iso2_keys"], ISO20: self.p["iso20_keys"]}.get(proto)
        idx = session_index(session, ctx)
        for e, sender, chain in certificate_messages(idx):
            hard, soft, per_cert = 0, 0, []
            for cert in chain:
                problems, warns = profile_problems(cert, keys, proto,
                                                   "serverAuth" if sender == "server" else "clientAuth",
                                                   leaf_domain("TLS server") if sender == "server" else None)
                if not problems and not warns:
                    continue
                hard += len(problems)
                soft += len(warns)
                role = "leaf" if cert.get("index", 0) == 0 else f"CA #{cert.get('index')}"
                per_cert.append({"certificate": f"{role} {cert.get('subject_cn') or cert.get('subject')}",
                                 "problems": problems + warns, "subject": cert.get("subject"),
                                 "basic_constraints": cert.get("basic_constraints"),
                                 "key_usage": cert.get("key_usage"),
                                 "extended_key_usage": cert.get("extended_key_usage"),
                                 "key": " ".join(x for x in (cert.get("key_type"),
                                                             cert.get("key_curve")) if x)})
            if not per_cert:
                continue
            yield self.finding(session, [e.frame],
                               f"The {sender}'s certificate chain (connection {e.conn}, frame {e.frame}): "
                               + "; ".join(f"{c['certificate']}: {', '.join(c['problems'])}"
                                           for c in per_cert),
                               time=e.time, culprit=_owner(e),
                               severity=None if hard else _lower(self.severity),
                               evidence={"expected": "the certificate profile of each role",
                                         "actual": per_cert})


class CertificateChainBroken(Rule):
    """A certificate chain that does not link up.

    What it checks: in every Certificate message each certificate is issued (issuer name =
    next subject) and signed by the next one; the server sends at least one certificate.
    The last certificate's issuer need not be in the chain: the root is normally left out —
    the peer has it in its trust store — so a chain ending in an intermediate is fine.
    Why it matters: the peer cannot build a path to its trusted root (unknown_ca /
    bad_certificate); certificates in the wrong order or a missing intermediate break
    strict validators.
    Fix: the certificate's owner (SECC: server chain; EVCC: client chain): send leaf, then
    each intermediate in issuing order (Sub-CA 2, Sub-CA 1), without gaps.
    Source: RFC 8446 §4.4.2 / RFC 5246 §7.4.2 (certificate_list order); RFC 5280 §6.1;
    ISO 15118-2 §7.7.3 / ISO 15118-20 §7.7.3 (chains with up to two Sub-CAs).

    Example:

        #41 ServerHello, Certificate, ServerKeyExchange, ServerHelloDone EVSE→EV
    """

    code = "TLS006"
    title = "Certificate chain broken or incomplete"
    severity = "error"
    category = "tls"
    kinds = ("certificate-problem",)
    explains = ("tls-failed",)
    requirement = "RFC 8446 §4.4.2 certificate_list order"
    culprit = "unknown"
    failure_modes = ("UC2 113", "UC2 100")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        for e, sender, chain in certificate_messages(idx):
            if not chain:
                if sender == "server":
                    yield self.finding(session, [e.frame], f"The EVSE sent an empty Certificate "
                                       f"message (frame {e.frame}) on connection {e.conn}",
                                       time=e.time, culprit="SECC",
                                       evidence={"expected": "the SECC certificate chain",
                                                 "actual": "no certificate"})
                continue
            for cert in chain[:-1]:
                i = cert.get("index", 0)
                nxt = chain[i + 1] if i + 1 < len(chain) else {}
                if cert.get("issued_by_next") is False:
                    why = (f"is issued by {cert.get('issuer_cn') or cert.get('issuer')}, but the next "
                           f"certificate is {nxt.get('subject_cn') or nxt.get('subject')}")
                elif cert.get("signed_by_next") is False:
                    why = (f"names {nxt.get('subject_cn') or nxt.get('subject')} as issuer but its "
                           "signature does not verify with that certificate's key")
                else:
                    continue
                yield self.finding(session, [e.frame],
                                   f"The {sender}'s certificate chain (frame {e.frame}) is broken at "
                                   f"#{i} {cert.get('subject_cn') or cert.get('subject')}: it {why}",
                                   time=e.time, culprit=_owner(e),
                                   evidence={"expected": "each certificate issued and signed by the next",
                                             "actual": why, "chain": [c.get("subject") for c in chain]})


class TlsChainNotAnchored(Rule):
    """A TLS certificate chain leads to none of the trust anchors given.

    What it checks: with trust anchors given (``--trust``), the chain of every TLS
    Certificate message — the SECC's server chain, the EVCC's client chain (ISO 15118-20
    mutual TLS) — must have a path from its leaf through its sub-CAs to one of them (RFC 5280
    §6, dissectors/x509trust.py). Without trust anchors nothing is judged ("unanchored").
    Why it matters: the peer aborts the handshake (unknown_ca, bad_certificate): an SECC
    certificate under a CPO sub-CA the vehicle's V2G root does not sign, or a vehicle
    certificate from an OEM root the charger does not hold; Plug & Charge never starts.
    Fix (the chain's owner): a certificate issued under the V2G root (SECC) or an OEM root the
    chargers trust (EVCC, -20).
    Source: RFC 5280 §6.1; ISO 15118-2 §7.7.3 / ISO 15118-20 §7.7.3 (TLS certificates);
    RFC 8446 §4.4.2.

    Example:

        #41 ServerHello, Certificate, ServerKeyExchange, ServerHelloDone EVSE→EV
    """

    code = "TLS011"
    title = "TLS certificate chain not anchored in a given trust anchor"
    severity = "error"
    category = "tls"
    kinds = ("certificate-problem",)
    explains = ("tls-failed",)
    requirement = "RFC 5280 §6.1 path validation"
    culprit = "unknown"
    failure_modes = ("UC2 113", "UC2 100")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        for e, sender, chain in certificate_messages(idx):
            t = (e.message or {}).get("trust") or {}
            if t.get("status") != "not anchored" or not chain:
                continue
            leaf = chain[0]
            yield self.finding(session, [e.frame],
                               f"The {sender}'s TLS certificate chain (frame {e.frame}, leaf "
                               f"{leaf.get('subject_cn') or leaf.get('subject')}) leads to none of the trust "
                               f"anchors given: {t.get('reason')}",
                               time=e.time, culprit=_owner(e),
                               evidence={"expected": "a path to a given trust anchor", "actual": t.get("reason"),
                                         "chain": [c.get("subject") for c in chain]})


class OcspRevoked(Rule):
    """The OCSP response the SECC stapled says its certificate is revoked, or cannot vouch
    for it.

    What it checks: the OCSP response the SECC stapled — a TLS 1.2 CertificateStatus message
    (the answer to the EV's status_request, RFC 6066 §8) or, in TLS 1.3, the status_request
    extension of its leaf's CertificateEntry (RFC 8446 §4.4.2.1) — decoded and checked by
    dissectors/ocsp.py: certStatus
    revoked (error) or unknown, or a response that is not successful, not about the SECC's
    leaf certificate, not signed by its issuer or outdated at the capture's time (warning).
    No stapled response is not a finding: the capture then says nothing about revocation
    (the TLS summary's ``revocation`` notes it).
    Why it matters: a revoked SECC certificate must not be accepted — an EV that checks
    aborts the handshake (certificate_revoked) and Plug & Charge never starts; one that does
    not check talks to a charger whose key may be compromised.
    Fix (SECC / CPO): install a new certificate (the revoked one's key is withdrawn); staple
    current responses from the issuer.
    Source: RFC 6960 §4.2 (OCSP response, certStatus), RFC 6066 §8 (status_request,
    CertificateStatus); ISO 15118-2 §7.7.3 (TLS, OCSP stapling asked by the EVCC).

    Example:

        #42 Certificate, CertificateVerify EVSE→EV
    """

    code = "TLS012"
    title = "Stapled OCSP response: SECC certificate revoked or not vouched for"
    severity = "error"
    category = "tls"
    kinds = ("certificate-problem",)
    explains = ("tls-failed",)
    requirement = "RFC 6960 §4.2 certStatus; RFC 6066 §8"
    culprit = "SECC"
    failure_modes = ("UC2 113",)

    def check(self, session, ctx):
        for e in session_index(session, ctx).tls:
            if e.name not in ("CertificateStatus", "Certificate"):     # TLS 1.2 / TLS 1.3 stapling
                continue
            o = (e.message or {}).get("ocsp")
            if not isinstance(o, dict):
                continue
            status = o.get("cert_status")
            problems = list(o.get("problems") or ())
            if status == "unknown":
                problems.insert(0, "the responder does not know the certificate (certStatus unknown)")
            if status != "revoked" and not problems:
                continue
            if status == "revoked":
                text = (f"The OCSP response the SECC stapled (frame {e.frame}) says its certificate "
                        f"(serial {o.get('serial')}) was revoked {o.get('revocation_time')}"
                        + (f" ({o.get('revocation_reason')})" if o.get("revocation_reason") else ""))
            else:
                text = f"The OCSP response the SECC stapled (frame {e.frame}) does not vouch for its certificate: " \
                       + "; ".join(problems)
            yield self.finding(session, [e.frame], text, time=e.time,
                               severity=None if status == "revoked" else "warning",
                               evidence={"expected": "certStatus good, signed by the issuer, current",
                                         "actual": status or o.get("response_status"), "ocsp": o},
                               values=[judged(e, "cert_status", status, expected="good") if status else None])


class TrustedCaIgnored(Rule):
    """The SECC's certificate chain is not under any root the EV said it trusts.

    What it checks: the EV's ClientHello lists its root CAs in the trusted_ca_keys extension
    (RFC 6066 §6: by name, key hash or certificate hash); the SECC's chain must be issued
    under one of them — compared by dissectors/x509trust.py (a listed name against the
    chain's issuer; a listed hash against the chain's root, known from ``--trust`` or carried
    in the chain). Nothing is judged when the comparison cannot be made (hashes only and an
    unknown root).
    Why it matters: the EV cannot validate a chain under a root it does not hold and aborts
    the handshake (unknown_ca / bad_certificate): Plug & Charge fails at this charger for
    vehicles of that ecosystem. An SECC holding several chains must pick the one under a root
    the EV names.
    Fix (SECC / CPO): install a chain under the V2G root the vehicles trust (or one per root
    in use) and select it by trusted_ca_keys.
    Source: RFC 6066 §6 (trusted_ca_keys); ISO 15118-2 §7.7.3 (TLS; the EVCC names its V2G
    root certificates, the SECC selects its chain accordingly).

    Example:

        #42 Certificate, ServerKeyExchange, ServerHelloDone EVSE→EV
    """

    code = "TLS013"
    title = "SECC chain not under a root the EV listed in trusted_ca_keys"
    severity = "error"
    category = "tls"
    kinds = ("certificate-problem",)
    explains = ("tls-failed",)
    requirement = "RFC 6066 §6 trusted_ca_keys"
    culprit = "SECC"
    failure_modes = ("UC2 113", "UC2 100")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        for e, sender, chain in certificate_messages(idx):
            m = (e.message or {}).get("trusted_ca_keys") or {}
            if sender != "server" or m.get("match") is not False:
                continue
            yield self.finding(session, [e.frame],
                               f"The SECC's certificate chain (frame {e.frame}, issued by "
                               f"{(chain[-1].get('issuer_cn') or chain[-1].get('issuer')) if chain else '?'}) is "
                               f"not under any of the {m.get('listed')} root CA(s) the EV listed in trusted_ca_keys: "
                               f"{m.get('how')}",
                               time=e.time,
                               evidence={"expected": "a chain under a root the EV listed", "actual": m.get("how"),
                                         "chain": [c.get("subject") for c in chain]})


class SeccCertificateOperator(Rule):
    """The SECC's TLS certificate names another charge point operator than its EVSEID.

    What it checks: the SECC leaf's common name is its SECCID (ISO 15118-2 Annex F SECC
    certificate profile; SECCID syntax: country code, EVSE operator ID, "S", controller ID);
    when it follows that syntax and the EVSEID of SessionSetupRes follows the EVSEID syntax
    (country code, operator ID, "E", outlet), both must name the same country and operator.
    Nothing is judged when either is not in its syntax (test PKIs, placeholder EVSEIDs such
    as "ZZ00000").
    Why it matters: the certificate vouches for another operator's charger — a certificate
    copied between charge points of different operators, or a charger re-branded without
    new certificates; a validating EV or backend rejects the identity.
    Fix (CPO): issue the SECC certificate for the charger's own SECCID (a CSR with its
    SECCID in the CN, DC=CPO).
    Source: ISO 15118-2 Annex F (SECC certificate: CN = SECCID, DC = CPO), Annex H (EVSEID);
    ISO 15118-20 SECCID syntax; Hubject EVSE requirements §2.3, §3.4.

    Example:

        #42 Certificate, ServerKeyExchange, ServerHelloDone EVSE→EV
    """

    code = "TLS014"
    title = "SECC certificate issued for another operator than its EVSEID"
    severity = "warning"
    category = "tls"
    requirement = "ISO 15118-2 Annex F SECC certificate (CN = SECCID)"
    culprit = "SECC"

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        evseid = next((str(body.get("EVSEID")) for e in idx.named("SessionSetupRes")
                       for body in [message_body(e.message)[1]] if body.get("EVSEID")), None)
        evse_op = operator_of(evseid, EVSEID)
        if evse_op is None:
            return
        for e, sender, chain in certificate_messages(idx):
            if sender != "server" or not chain:
                continue
            cn = chain[0].get("subject_cn")
            secc_op = operator_of(cn, SECCID)
            if secc_op is None or secc_op == evse_op:
                continue
            yield self.finding(session, [e.frame],
                               f"The SECC's certificate (frame {e.frame}) is issued to SECCID {cn} "
                               f"(operator {secc_op}), but the charger's EVSEID {evseid} names operator {evse_op}",
                               time=e.time, measured=secc_op, limit=evse_op,
                               evidence={"expected": f"an SECCID of operator {evse_op}", "actual": cn,
                                         "EVSEID": evseid},
                               values=[judged(e, "subject_cn", cn, expected=f"an SECCID of operator {evse_op}")])
