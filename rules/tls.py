"""TLS: alerts, the protocol version / cipher suite / key exchange group each application
protocol requires, certificates (validity at the capture's time, profile, chain), mutual
authentication for ISO 15118-20, and TLS used where SDP or the protocol says otherwise.

The TLS events are the dissector's (dissectors/tls.py): handshake messages described with
their fields (ClientHello offers, ServerHello choice, Certificate chains described by
dissectors/x509info.py), alerts, and per connection ``ctx.connections[i]["tls"]`` (version,
cipher suite, group, decrypting, counters). A TLS 1.3 handshake is encrypted after the
ServerHello: certificates, CertificateRequest and alerts are visible only with the
secrets (key log); without them these rules stay silent and CAP005 says why.

Encrypted application data that cannot be decrypted is a capture-quality matter (CAP005),
never a TLS error.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import message_body
from ccs_analyzer.analyzer.views.certificates import (EVSEID, SECCID, leaf_domain, operator_of,
                                                      profile_problems)
from ccs_analyzer.analyzer.views.index import session_index

from .base import Rule
from .helpers import utc_epoch, utc_text

ISO2 = "ISO 15118-2"
ISO20 = "ISO 15118-20"
DIN = "DIN 70121"

#: Alerts whose sender rejects the other side's certificate (RFC 8446 §6.2, RFC 5246 §7.2.2).
_CERT_ALERTS = {"bad_certificate", "unsupported_certificate", "certificate_revoked",
                "certificate_expired", "certificate_unknown", "unknown_ca", "certificate_required",
                "no_certificate", "bad_certificate_status_response", "bad_certificate_hash_value",
                "certificate_unobtainable", "access_denied"}
#: Alerts whose sender found the other side's messages malformed or out of place.
_PEER_ALERTS = {"unexpected_message", "decode_error", "illegal_parameter", "record_overflow",
                "missing_extension", "unsupported_extension", "unrecognized_name"}
#: Alerts about the sender's own failure.
_OWN_ALERTS = {"internal_error", "user_canceled"}


def tls_connections(session, ctx) -> list[dict]:
    """The session's TLS connection summaries (kind "tls")."""
    conns = {c["conn"]: c for c in ctx.connections}
    return [conns[c] for c in session.connections if conns.get(c, {}).get("kind") == "tls"]


def handshake_of(idx, conn: int) -> dict:
    """Handshake messages of one connection by name (the first of each) and the
    Certificate messages by sender ("server" / "client")."""
    out: dict = {"certs": {}}
    for e in idx.tls:
        if e.conn != conn or e.info.get("kind") != "handshake":
            continue
        if e.name == "Certificate":
            out["certs"].setdefault((e.message or {}).get("sender"), e)
        else:
            out.setdefault(e.name, e)
    return out


def _owner(e) -> str:
    return "SECC" if e.direction == "EVSE->EV" else "EVCC" if e.direction == "EV->EVSE" else "unknown"


def _other(e) -> str:
    return {"SECC": "EVCC", "EVCC": "SECC"}.get(_owner(e), "unknown")


def _who(e) -> str:
    return "EVSE" if e.direction == "EVSE->EV" else "EV" if e.direction == "EV->EVSE" else "?"


def _protocol(session, ctx) -> str | None:
    return ctx.summaries.get(session.id, {}).get("protocol")


class TlsAlert(Rule):
    """A TLS alert other than close_notify.

    What it checks: every TLS alert record of the session's connections (in the clear, or
    decrypted with the key log): its level, description and sender. close_notify is the
    normal end of a TLS connection and not reported; a fatal alert is an error, a warning
    alert a warning. Who is at fault follows the description: a certificate alert
    (bad_certificate, unknown_ca, certificate_expired …) blames the side whose certificate
    was rejected; decode_error / unexpected_message / illegal_parameter the side that sent
    the offending message; internal_error the sender itself; handshake_failure,
    protocol_version and insufficient_security a mismatch of the two configurations.
    Why it matters: a fatal alert ends the TLS connection and with it the V2G session;
    during the handshake it means the two sides could not agree or trust each other.
    Fix: see the description — certificate alerts: install the right chain / root (SECC:
    V2G root; EVCC: OEM provisioning chain for -20); version / cipher alerts: configure
    the protocol's TLS profile (TLS001-TLS003 name it).
    Source: RFC 8446 §6, RFC 5246 §7.2; ISO 15118-2 §7.7.3, ISO 15118-20 §7.7.3 (TLS);
    PROTOCOL_FACTS §1.4.
    """

    code = "TLS001"
    title = "TLS alert"
    severity = "error"
    category = "tls"
    kinds = ("tls-failed",)
    explains = ("tls-failed", "connection-reset", "no-session-stop")
    requirement = "RFC 8446 §6 / RFC 5246 §7.2 alert protocol"
    culprit = "unknown"
    failure_modes = ("UC2 100", "UC2 113")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        last_hs: dict = {}
        finished: dict = {}
        for e in idx.tls:
            kind = e.info.get("kind")
            if kind == "handshake":
                last_hs[e.conn] = e
                if e.name == "Finished":
                    finished.setdefault(e.conn, set()).add(e.direction)
                continue
            if kind != "alert":
                continue
            m = e.message or {}
            desc, level = m.get("description_name"), m.get("level_name")
            if desc == "close_notify":
                continue
            if desc in _CERT_ALERTS or desc in _PEER_ALERTS:
                culprit = _other(e)
            elif desc in _OWN_ALERTS:
                culprit = _owner(e)
            else:
                culprit = "unknown"
            hs = last_hs.get(e.conn)
            during = ("during the handshake" if len(finished.get(e.conn, ())) < 2
                      else "after the handshake")
            sev = None if level == "fatal" else ("info" if desc == "user_canceled" else "warning")
            blame = {"EVCC": "the EV", "SECC": "the EVSE"}.get(culprit)
            yield self.finding(session, [hs.frame if hs else None, e.frame],
                               f"The {_who(e)} sent a {level} TLS alert {desc} (frame {e.frame}) "
                               f"{during} on connection {e.conn}"
                               + (f" after {hs.name} (frame {hs.frame})"
                                  if hs and during == "during the handshake" else "")
                               + (f": it rejects what {blame} sent" if blame and culprit != _owner(e)
                                  else ""),
                               time=e.time, culprit=culprit, severity=sev,
                               evidence={"expected": "no alert but close_notify",
                                         "actual": f"{level} {desc}", "sent_by": _who(e),
                                         "level": level, "description": desc,
                                         "last_handshake_message": hs.name if hs else None})


class TlsVersionNotAllowed(Rule):
    """The negotiated TLS version is not the one the application protocol requires.

    What it checks: ISO 15118-2 runs over TLS 1.2; ISO 15118-20 over TLS 1.3 only — the
    EVCC shall not offer -20 and the SECC shall not select it over TLS 1.2 or lower. The
    ServerHello's version against the session's protocol; the culprit is the SECC when the
    ClientHello offered the right version, else the EVCC.
    Why it matters: a -20 session over TLS ≤ 1.2 lacks the security the standard requires
    (and many peers abort); an ISO-2 peer may not implement TLS 1.3.
    Fix: configure the TLS stack per protocol: TLS 1.3 only for -20 (EVCC: offer it; SECC:
    select it), TLS 1.2 for ISO 15118-2.
    Source: ISO 15118-20 [V2G20-1237], [V2G20-2356] (error); ISO 15118-2 §7.7.3.2 (TLS 1.2;
    single source ⚠ → warning); PROTOCOL_FACTS §1.4.
    """

    code = "TLS002"
    title = "TLS version not allowed for the protocol"
    severity = "error"
    category = "tls"
    explains = ("tls-failed",)
    culprit = "unknown"
    protocols = (ISO2, ISO20)
    requirement = "ISO 15118-20 [V2G20-1237], [V2G20-2356]"
    failure_modes = ("UC2 100", "UC2 107")

    def check(self, session, ctx):
        proto = _protocol(session, ctx)
        want = {ISO2: "TLS 1.2", ISO20: "TLS 1.3"}.get(proto)
        if want is None:
            return
        idx = session_index(session, ctx)
        for c in tls_connections(session, ctx):
            hs = handshake_of(idx, c["conn"])
            sh, ch = hs.get("ServerHello"), hs.get("ClientHello")
            version = (sh.message or {}).get("version") if sh else (c.get("tls") or {}).get("version")
            if version is None or version == want:
                continue
            offered = (ch.message or {}).get("offered_versions") or [] if ch else []
            culprit = "SECC" if want in offered else "EVCC" if ch else "unknown"
            sev = None if proto == ISO20 else "warning"
            yield self.finding(session, [ch.frame if ch else None, sh.frame if sh else None],
                               f"{proto} over {version} on connection {c['conn']}: the protocol "
                               f"requires {want}" + (f" (the EV offered {', '.join(offered)})"
                                                     if offered else ""),
                               time=sh.time if sh else None, culprit=culprit, severity=sev,
                               measured=version, limit=want,
                               evidence={"expected": want, "actual": version,
                                         "offered_versions": offered})


class TlsCipherNotAllowed(Rule):
    """The negotiated cipher suite or key exchange group is not in the protocol's profile.

    What it checks: ISO 15118-2: TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 or
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, ECDH on secp256r1; ISO 15118-20:
    TLS_AES_256_GCM_SHA384 or TLS_CHACHA20_POLY1305_SHA256 and the groups secp521r1 or x448
    (Table 6 / Table 7). The ServerHello's suite and the key exchange group (TLS 1.2
    ServerKeyExchange, TLS 1.3 ServerHello key_share); the culprit is the SECC when the
    ClientHello offered an allowed one, else the EVCC.
    Why it matters: a peer implementing only the profile aborts the handshake; outside the
    profile the security level the standard assumes is not given.
    Fix: restrict the TLS stack to the profile's suites and groups (EVCC: offer them;
    SECC: prefer them).
    Source: ISO 15118-2 [V2G2-602] Table 7 (suites); ISO 15118-20 [V2G20-2458] Table 6,
    [V2G20-1634] Table 7 (groups secp521r1, x448); Josev security.py; PROTOCOL_FACTS §1.4
    (⚠ single sources: warnings).
    """

    code = "TLS003"
    title = "TLS cipher suite or group outside the protocol's profile"
    severity = "warning"
    category = "tls"
    explains = ("tls-failed",)
    culprit = "unknown"
    protocols = (ISO2, ISO20)
    requirement = "ISO 15118-2 [V2G2-602]; ISO 15118-20 [V2G20-2458], [V2G20-1634]"
    failure_modes = ("UC2 100", "UC2 107")
    params = {"iso2_suites": ("TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256",
                              "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
              "iso2_groups": ("secp256r1",),
              "iso20_suites": ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"),
              "iso20_groups": ("secp521r1", "x448")}

    def check(self, session, ctx):
        proto = _protocol(session, ctx)
        if proto not in (ISO2, ISO20):
            return
        key = "iso2" if proto == ISO2 else "iso20"
        suites, groups = tuple(self.p[f"{key}_suites"]), tuple(self.p[f"{key}_groups"])
        idx = session_index(session, ctx)
        for c in tls_connections(session, ctx):
            hs = handshake_of(idx, c["conn"])
            ch, sh, ske = hs.get("ClientHello"), hs.get("ServerHello"), hs.get("ServerKeyExchange")
            chm = (ch.message or {}) if ch else {}
            summary = c.get("tls") or {}
            suite = (sh.message or {}).get("cipher_suite") if sh else summary.get("cipher_suite")
            group = ((ske.message or {}).get("group") if ske else None) or \
                ((sh.message or {}).get("group") if sh else None) or summary.get("group")
            for what, value, allowed, offered in (
                    ("cipher suite", suite, suites, chm.get("cipher_suites") or []),
                    ("key exchange group", group, groups, chm.get("supported_groups") or [])):
                if value is None or value in allowed:
                    continue
                offered_ok = [x for x in offered if x in allowed]
                culprit = "SECC" if offered_ok else "EVCC" if ch else "unknown"
                why = (f"the EV offered {', '.join(offered_ok)} too" if offered_ok else
                       f"the EV offered none of them ({', '.join(offered) or 'nothing'})")
                frames = [ch.frame if ch else None, sh.frame if sh else None]
                if what.endswith("group") and ske:
                    frames.append(ske.frame)
                yield self.finding(session, frames,
                                   f"{proto} TLS on connection {c['conn']} uses {what} {value}, not "
                                   f"one of {', '.join(allowed)}; {why}",
                                   time=sh.time if sh else None, culprit=culprit,
                                   measured=value, limit=list(allowed),
                                   evidence={"expected": list(allowed), "actual": value,
                                             "offered_by_EV": offered})


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
    ``min_plausible_epoch`` (an unset clock, 1970) makes the check meaningless: info,
    culprit capture.
    Why it matters: the peer refuses an expired or not yet valid certificate
    (certificate_expired / bad_certificate alert, FAILED_CertificateExpired); the session
    never starts or falls back to no Plug & Charge.
    Fix: the certificate's owner (SECC for the server chain, EVCC for the client chain):
    renew the certificate; check the device clock when it is "not yet valid".
    Source: RFC 5280 §4.1.2.5 (validity), §6.1.3; ISO 15118-2 §7.7.3 / ISO 15118-20 §7.7.3
    certificate handling; ChargeX PFMEA UC2 113 (expired / incorrect certificates).
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
    params = {"clock_skew_s": 300.0, "min_plausible_epoch": 1_262_304_000.0}

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
                if t < self.p["min_plausible_epoch"]:
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
                                   measured=utc_text(t),
                                   limit=f"{cert.get('not_before')} … {cert.get('not_after')}",
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
    for ISO 15118-2, EC secp521r1 or Ed448 for ISO 15118-20; certificates that did not
    parse. Errors for the X.509 role violations; key type / curve and EKU are warnings
    (⚠ PROTOCOL_FACTS has no certificate profile).
    Why it matters: a validating peer rejects the chain (bad_certificate /
    unsupported_certificate); a CA flag on a leaf lets it issue certificates.
    Fix: the certificate's owner (SECC: server chain; EVCC: client chain): re-issue the
    certificate with the profile of its role.
    Source: RFC 5280 §4.2.1.3 (keyUsage), §4.2.1.9 (basicConstraints), §4.2.1.12 (EKU);
    ISO 15118-2 Annex F certificate profiles (secp256r1, ecdsa-with-SHA256);
    ISO 15118-20 [V2G20-2674] (secp521r1), [V2G20-2319] (Ed448).
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


class MutualTlsMissing(Rule):
    """An ISO 15118-20 TLS connection without client authentication.

    What it checks: on a -20 session's TLS 1.3 connection whose handshake could be read
    (decrypted): the SECC sends CertificateRequest and the EVCC answers with a non-empty
    Certificate (its OEM provisioning or vehicle chain). A handshake that cannot be
    decrypted is not judged.
    Why it matters: ISO 15118-20 authenticates both sides in TLS; without the EVCC's
    certificate the SECC cannot bind the session to the vehicle.
    Fix: SECC: request the client certificate; EVCC: send your certificate chain.
    Source: ISO 15118-20 [V2G20-2400] (SECC requests the EVCC certificate), §7.7.3
    (mutual authentication, Josev security.py ⚠ → warning); PROTOCOL_FACTS §1.4.
    """

    code = "TLS007"
    title = "Mutual TLS missing in ISO 15118-20"
    severity = "warning"
    category = "tls"
    culprit = "unknown"
    protocols = (ISO20,)
    requirement = "ISO 15118-20 [V2G20-2400]"
    failure_modes = ("UC2 100", "UC2 113")

    def check(self, session, ctx):
        if _protocol(session, ctx) != ISO20:
            return
        idx = session_index(session, ctx)
        for c in tls_connections(session, ctx):
            hs = handshake_of(idx, c["conn"])
            fin = hs.get("Finished")
            if fin is None or (c.get("tls") or {}).get("version") != "TLS 1.3":
                continue          # handshake not readable (no secrets) or not TLS 1.3
            req = hs.get("CertificateRequest")
            cert = hs["certs"].get("client")
            if req is None:
                yield self.finding(session, [hs["ServerHello"].frame if "ServerHello" in hs else None,
                                             fin.frame],
                                   f"The EVSE did not send CertificateRequest on -20 connection "
                                   f"{c['conn']}: no client authentication", time=fin.time,
                                   culprit="SECC", evidence={"expected": "CertificateRequest",
                                                             "actual": "none"})
            elif cert is None or not (cert.message or {}).get("certificates"):
                yield self.finding(session, [req.frame] + ([cert.frame] if cert else []),
                                   f"The EV answered the CertificateRequest (frame {req.frame}) on -20 "
                                   f"connection {c['conn']} without a certificate", time=req.time,
                                   culprit="EVCC", evidence={"expected": "EVCC certificate chain",
                                                             "actual": "empty / no Certificate"})


def _sdp_response(idx, before: int | None):
    res = [e for e in idx.sdp if e.direction == "EVSE->EV" and e.message
           and (before is None or e.frame <= before)]
    return res[-1] if res else None


class SdpSecurityMismatch(Rule):
    """The V2G connection does not use the security the SDP response announced.

    What it checks: each V2G connection of the session against the Security byte of the
    last SDP response before it: TLS (0x00) → a TLS connection; NoTLS (0x10) → plain V2GTP.
    Why it matters: the SECC listens for what it announced; a connection of the other kind
    fails the handshake or, if accepted, runs without (or with unexpected) security.
    Fix (EVCC): open the connection with the security of the SDP response.
    Source: ISO 15118-2 §7.10.1 SDP response Security [V2G2-623] (0x00 TLS, 0x10 no TLS);
    PROTOCOL_FACTS §1.4 (J-SDP, E-SDP, DSV ✅).
    """

    code = "TLS008"
    title = "Connection security differs from the SDP response"
    severity = "error"
    category = "tls"
    explains = ("tls-failed", "handshake-failed", "tcp-failed")
    requirement = "ISO 15118-2 [V2G2-623] SDP security"
    culprit = "EVCC"
    failure_modes = ("UC2 100",)

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        conns = {c["conn"]: c for c in ctx.connections}
        for cid in session.connections:
            c = conns.get(cid) or {}
            kind = c.get("kind")
            if kind not in ("tls", "v2gtp"):
                continue
            res = _sdp_response(idx, c.get("first_frame"))
            if res is None:
                continue
            sec = (res.message or {}).get("Security")
            if sec not in ("TLS", "NoTLS") or (sec == "TLS") == (kind == "tls"):
                continue
            actual = "TLS" if kind == "tls" else "plain TCP (no TLS)"
            yield self.finding(session, [res.frame, c.get("syn_frame") or c.get("first_frame")],
                               f"The SDP response (frame {res.frame}) announced {sec} but connection "
                               f"{cid} uses {actual}", time=c.get("first_time"),
                               measured=actual, limit=sec,
                               evidence={"expected": sec, "actual": actual, "connection": cid})


class DinOverTls(Rule):
    """A DIN 70121 session over TLS.

    What it checks: DIN 70121 sessions whose V2G connection is TLS.
    Why it matters: DIN 70121 has no TLS: the SDP response shall announce no TLS and the
    EVCC shall not offer DIN 70121 on a TLS connection; DIN-only peers fail the handshake.
    Fix: SECC: answer a DIN-capable EV with NoTLS / do not select DIN on a TLS connection;
    EVCC: drop DIN from supportedAppProtocolReq when using TLS.
    Source: DIN SPEC 70121 [V2G-DC-618] (quoted in J-EVCC); PROTOCOL_FACTS §1.4, §4A.
    """

    code = "TLS009"
    title = "DIN 70121 over TLS"
    severity = "error"
    category = "tls"
    explains = ("handshake-failed", "tls-failed")
    culprit = "SECC"
    protocols = (DIN,)
    requirement = "DIN 70121 [V2G-DC-618]"
    failure_modes = ("UC2 107",)

    def check(self, session, ctx):
        if _protocol(session, ctx) != DIN:
            return
        idx = session_index(session, ctx)
        for c in tls_connections(session, ctx):
            res = _sdp_response(idx, c.get("first_frame"))
            sap = [e for e in idx.named("supportedAppProtocolRes") if e.conn == c["conn"]]
            yield self.finding(session, [res.frame if res else None, c.get("syn_frame"),
                                         sap[0].frame if sap else None],
                               f"DIN 70121 was negotiated on TLS connection {c['conn']}"
                               + (f" (supportedAppProtocolRes frame {sap[0].frame})" if sap else ""),
                               time=c.get("first_time"),
                               evidence={"expected": "DIN 70121 over plain TCP", "actual": "TLS",
                                         "sdp_security": (res.message or {}).get("Security")
                                         if res else None})


class Iso20WithoutTls(Rule):
    """An ISO 15118-20 session over plain TCP.

    What it checks: ISO 15118-20 sessions whose V2G connection is not TLS.
    Why it matters: ISO 15118-20 always runs over TLS 1.3: the EVCC shall not offer and the
    SECC shall not select -20 without it. Test systems and some stacks run -20 over plain
    TCP anyway (PROTOCOL_FACTS notes it), which is why this is a warning.
    Fix: EVCC: request TLS in SDP and offer -20 only over TLS 1.3; SECC: select -20 only on
    a TLS 1.3 connection.
    Source: ISO 15118-20 [V2G20-1235], [V2G20-1237], [V2G20-2356] (PYPLC doc ⚠ single
    source); PROTOCOL_FACTS §1.4.
    """

    code = "TLS010"
    title = "ISO 15118-20 without TLS"
    severity = "warning"
    category = "tls"
    culprit = "unknown"
    protocols = (ISO20,)
    requirement = "ISO 15118-20 [V2G20-1235], [V2G20-1237], [V2G20-2356]"
    failure_modes = ("UC2 107",)

    def check(self, session, ctx):
        if _protocol(session, ctx) != ISO20:
            return
        idx = session_index(session, ctx)
        conns = {c["conn"]: c for c in ctx.connections}
        for cid in session.connections:
            c = conns.get(cid) or {}
            if c.get("kind") != "v2gtp" or not c.get("v2g_messages"):
                continue
            req = [e for e in idx.sdp if e.direction == "EV->EVSE" and e.message
                   and e.frame <= (c.get("first_frame") or 0)]
            asked = (req[-1].message or {}).get("Security") if req else None
            sap = [e for e in idx.named("supportedAppProtocolRes") if e.conn == cid]
            culprit = "EVCC" if asked == "NoTLS" else "SECC" if asked == "TLS" else "unknown"
            yield self.finding(session, [req[-1].frame if req else None,
                                         c.get("syn_frame") or c.get("first_frame"),
                                         sap[0].frame if sap else None],
                               f"ISO 15118-20 runs over plain TCP on connection {cid}"
                               + (f"; the EV asked for {asked} in SDP (frame {req[-1].frame})"
                                  if asked else ""),
                               time=c.get("first_time"), culprit=culprit,
                               evidence={"expected": "TLS 1.3", "actual": "plain TCP",
                                         "sdp_request_security": asked})
            return


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
                                         "actual": status or o.get("response_status"), "ocsp": o})


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
                                         "EVSEID": evseid})
