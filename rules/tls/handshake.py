"""TLS rules on the handshake: alerts, version, cipher suite, mutual authentication: TLS001-TLS003, TLS007."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import session_index

from ..base import Rule, judged
from .common import ISO2, ISO20, _owner, _protocol, tls_connections

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


def _other(e) -> str:
    return {"SECC": "EVCC", "EVCC": "SECC"}.get(_owner(e), "unknown")


def _who(e) -> str:
    return "EVSE" if e.direction == "EVSE->EV" else "EV" if e.direction == "EV->EVSE" else "?"


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

    Example:

        #39 ClientHello EV→EVSE
        #41 Alert fatal handshake_failure EVSE→EV
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
                                         "last_handshake_message": hs.name if hs else None},
                               values=[judged(e, "level_name", level), judged(e, "description_name", desc)])


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

    Example:

        #39 ClientHello EV→EVSE
        #41 ServerHello EVSE→EV version=TLS 1.2
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
                                         "offered_versions": offered},
                               values=[judged(sh, "version", version, expected=want)])


class TlsCipherNotAllowed(Rule):
    """The negotiated cipher suite or key exchange group is not in the protocol's profile.

    What it checks: ISO 15118-2: TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 or
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, ECDH on secp256r1; ISO 15118-20:
    TLS_AES_256_GCM_SHA384 or TLS_CHACHA20_POLY1305_SHA256 and the groups secp521r1 or x448
    (Table 6 / Table 7) — the suites' and groups' IANA names are ``iso2_suites``,
    ``iso2_groups``, ``iso20_suites`` and ``iso20_groups``. The ServerHello's suite and the
    key exchange group (TLS 1.2 ServerKeyExchange, TLS 1.3 ServerHello key_share); the
    culprit is the SECC when the ClientHello offered an allowed one, else the EVCC.
    Why it matters: a peer implementing only the profile aborts the handshake; outside the
    profile the security level the standard assumes is not given.
    Fix: restrict the TLS stack to the profile's suites and groups (EVCC: offer them;
    SECC: prefer them).
    Source: ISO 15118-2 [V2G2-602] Table 7 (suites); ISO 15118-20 [V2G20-2458] Table 6,
    [V2G20-1634] Table 7 (groups secp521r1, x448); Josev security.py; PROTOCOL_FACTS §1.4
    (⚠ single sources: warnings).

    Example:

        #39 ClientHello EV→EVSE
        #41 ServerHello, EncryptedExtensions, CertificateRequest EVSE→EV
            cipher_suite=TLS_AES_128_GCM_SHA256
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
                                             "offered_by_EV": offered},
                                   values=[judged(ske if what.endswith("group") and ske else sh,
                                                  "group" if what.endswith("group") else "cipher_suite",
                                                  value, expected=list(allowed))])


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

    Example:

        #41 ServerHello, EncryptedExtensions EVSE→EV
        #42 Certificate, CertificateVerify, Finished EVSE→EV
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
