"""TLS faults (level ``tls``) — registered with :func:`ccs_analyzer.samples.faults.fault`.

They edit the session's :class:`~ccs_analyzer.samples.tls.TlsPlan` (``ctx.tls``, set by
simulate.py before the faults of stage "before" run): the version, cipher suite and group the
SECC selects, the certificate chains and what each side sends, client authentication, whether
the EV asks for TLS in SDP and whether it follows the SDP response. The handshake is then
written honestly from the edited plan (samples/tls.py): a certificate with a CA flag is
really signed with that flag, an expired one really carries the past notAfter, a missing
intermediate is really left out of the Certificate message.

Profiles: ISO 15118-2 [V2G2-602] TLS 1.2 with TLS_ECDH(E)_ECDSA_WITH_AES_128_CBC_SHA256 on
secp256r1; ISO 15118-20 [V2G20-1237], [V2G20-2458] Table 6, [V2G20-1634] Table 7: TLS 1.3
with TLS_AES_256_GCM_SHA384 / TLS_CHACHA20_POLY1305_SHA256, groups secp521r1 / x448, mutual
authentication [V2G20-2400]; PROTOCOL_FACTS §1.4.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

from .faults import FaultError, fault
from .script import Ending
from .tls import ALERTS, GROUPS, SUITES

_ISO20, _ISO2, _DIN = "ISO 15118-20", "ISO 15118-2", "DIN 70121"


def _chain_of(ctx, chain: str) -> list:
    if chain not in ("server", "client"):
        raise FaultError(f"chain {chain!r}: server (the SECC's) or client (the EV's)")
    if chain == "client" and not ctx.tls.request_client_cert:
        raise FaultError("the EV sends no certificate in this session (no mutual TLS: ISO 15118-20 only)")
    return ctx.tls.server_chain if chain == "server" else ctx.tls.client_chain


def _needs_tls(ctx, name: str) -> None:
    if not ctx.tls.enabled:
        raise FaultError(f"{name}: the session does not use TLS (Plug & Charge and ISO 15118-20 do; "
                         "[tls] enabled = true for others)")


def _comment(ctx, text: str) -> None:
    ctx.tls.comments.append(f"simulator fault {text}")


# ====================================================================== version, suite, group
@fault("tls_version_not_allowed", level="tls", stage="before", category="tls", version=None)
def tls_version_not_allowed(ctx, version):
    """The SECC negotiates TLS ``version`` (default: TLS 1.2 for an ISO 15118-20 session,
    TLS 1.3 for ISO 15118-2), which the protocol does not allow: -20 runs over TLS 1.3 only
    ([V2G20-1237], [V2G20-2356]); ISO 15118-2 over TLS 1.2 (§7.7.3.2). The EV's generic stack
    offers both versions (supported_versions TLS 1.3, TLS 1.2) with the suites of both; the
    SECC's stack, configured for the other protocol, selects ``version`` — in TLS 1.2 the
    ECDHE-ECDSA AES-256-GCM-SHA384 suite with the -20 secp521r1 certificates, in TLS 1.3
    TLS_AES_128_GCM_SHA256 — so the cipher-suite rule (TLS003) fires too. The session goes
    on over that TLS."""
    _needs_tls(ctx, "tls_version_not_allowed")
    t = ctx.tls
    version = version or ("TLS 1.2" if ctx.protocol == _ISO20 else "TLS 1.3")
    if version not in ("TLS 1.2", "TLS 1.3"):
        raise FaultError(f"tls_version_not_allowed: version {version!r}; TLS 1.2 or TLS 1.3")
    t.offered_versions = ["TLS 1.3", "TLS 1.2"]
    if version == "TLS 1.2":
        t.offered_suites = [s for s in t.offered_suites if SUITES[s][1]] + [
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"]
        t.suite = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" if ctx.protocol == _ISO20 else \
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
        if t.group not in ("secp256r1", "secp384r1", "secp521r1", "x25519"):
            t.group = "secp521r1" if "secp521r1" in t.offered_groups else "secp256r1"
    else:
        t.offered_suites = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"] + t.offered_suites
        t.suite = "TLS_AES_128_GCM_SHA256" if ctx.protocol != _ISO20 else "TLS_AES_256_GCM_SHA384"
        if t.group not in t.offered_groups:
            t.offered_groups = [t.group] + t.offered_groups
    t.version = version
    _comment(ctx, f"tls_version_not_allowed: the SECC selects {version} for {ctx.protocol}")


@fault("tls_cipher_not_allowed", level="tls", stage="before", category="tls", suite=None, group=None)
def tls_cipher_not_allowed(ctx, suite, group):
    """The SECC selects cipher suite ``suite`` and key exchange group ``group`` outside the
    protocol's profile — the defaults of a generic TLS stack: ISO 15118-20:
    TLS_AES_128_GCM_SHA256 and x25519 (the profile allows TLS_AES_256_GCM_SHA384 /
    TLS_CHACHA20_POLY1305_SHA256 and secp521r1 / x448: [V2G20-2458] Table 6, [V2G20-1634]
    Table 7); ISO 15118-2: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and x25519 (the profile:
    the two AES_128_CBC_SHA256 ECDSA suites on secp256r1, [V2G2-602]). The EV offers its
    profile's suites and groups and these too; the SECC prefers these (culprit SECC). Give an
    empty string to leave the suite or the group as the profile has it."""
    _needs_tls(ctx, "tls_cipher_not_allowed")
    t = ctx.tls
    tls13 = t.version == "TLS 1.3"
    suite = (("TLS_AES_128_GCM_SHA256" if tls13 else "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
             if suite is None else suite)
    group = "x25519" if group is None else group
    if suite:
        if suite not in SUITES or SUITES[suite][1] != tls13:
            names = [s for s, v in SUITES.items() if v[1] == tls13]
            raise FaultError(f"tls_cipher_not_allowed: suite {suite!r}; a {t.version} suite: {', '.join(names)}")
        t.suite = suite
        if suite not in t.offered_suites:
            t.offered_suites = t.offered_suites + [suite]
    if group:
        if group not in GROUPS:
            raise FaultError(f"tls_cipher_not_allowed: group {group!r}; one of {', '.join(GROUPS)}")
        t.group = group
        if group not in t.offered_groups:
            t.offered_groups = ([group] if tls13 else []) + t.offered_groups + ([] if tls13 else [group])
    _comment(ctx, f"tls_cipher_not_allowed: the SECC selects {t.suite} with {t.group}")


# ====================================================================== certificates
def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


@fault("tls_certificate_not_valid", level="tls", stage="after", category="tls",
       chain="server", index=0, state="expired", days=30.0, peer_reaction="ignore")
def tls_certificate_not_valid(ctx, chain, index, state, days, peer_reaction):
    """Certificate ``index`` (0 = the leaf) of the ``chain`` ("server": the SECC's, "client":
    the EV's -20 vehicle chain) is ``state`` "expired" (notAfter ``days`` before the session)
    or "not_yet_valid" (notBefore ``days`` after it) at the capture's time — an operator who
    forgot to renew, a device whose clock is wrong (RFC 5280 §4.1.2.5, §6.1.3; ChargeX PFMEA
    UC2 113). ``peer_reaction`` "ignore": the peer does not check the validity (an EV without
    a real-time clock often cannot) and the session goes on; "alert": the peer rejects the
    chain with a fatal certificate_expired alert (TLS 1.3: encrypted with the handshake or
    application keys, readable with the key log) and closes — no V2G message follows."""
    _needs_tls(ctx, "tls_certificate_not_valid")
    specs = _chain_of(ctx, chain)
    if not 0 <= index < len(specs):
        raise FaultError(f"tls_certificate_not_valid: index {index}; 0 … {len(specs) - 1}")
    if state not in ("expired", "not_yet_valid"):
        raise FaultError(f"tls_certificate_not_valid: state {state!r}; expired or not_yet_valid")
    if peer_reaction not in ("ignore", "alert"):
        raise FaultError(f"tls_certificate_not_valid: peer_reaction {peer_reaction!r}; ignore or alert")
    conn = ctx.plan.connections[0]
    t0 = conn.start_t
    span = 2 * 365 * 86400.0
    if state == "expired":
        nb, na = t0 - days * 86400 - span, t0 - days * 86400
    else:
        nb, na = t0 + days * 86400, t0 + days * 86400 + span
    specs[index] = replace(specs[index], not_before=_when(nb), not_after=_when(na))
    _comment(ctx, f"tls_certificate_not_valid: {chain} certificate #{index} {specs[index].cn} {state} "
                  f"({specs[index].not_before} … {specs[index].not_after})")
    if peer_reaction == "alert":
        side = "EV" if chain == "server" else "EVSE"
        ctx.tls.abort = (side, "certificate_expired")
        conn.exchanges.clear()
        conn.ending = Ending(by=side, how="FIN", after_s=0.002,
                             reason=f"{side} rejects the {chain} certificate ({state})")
        del ctx.plan.connections[1:]


_PROBLEMS = ("ca_flag", "key_usage", "no_ca_flag", "no_key_cert_sign", "curve")


@fault("tls_certificate_profile", level="tls", stage="before", category="tls",
       chain="server", index=0, problem="ca_flag")
def tls_certificate_profile(ctx, chain, index, problem):
    """Certificate ``index`` (0 = the leaf) of the ``chain`` ("server" / "client") violates
    its profile (RFC 5280 §4.2.1.9 basicConstraints, §4.2.1.3 keyUsage; ISO 15118-2 Annex F,
    ISO 15118-20 [V2G20-2674]): ``problem`` "ca_flag" — a leaf with basicConstraints cA =
    true (issued from a CA template by mistake); "key_usage" — a leaf whose keyUsage lacks
    digitalSignature (keyAgreement only, an ISO-2 ECDH certificate reused); "no_ca_flag" /
    "no_key_cert_sign" — a CA certificate without cA = true / without keyCertSign; "curve" —
    the key on the other protocol's curve (a -20 certificate on secp256r1, an ISO-2 one on
    secp521r1: a warning). The certificates are really issued that way; the peer does not
    check and the session goes on."""
    _needs_tls(ctx, "tls_certificate_profile")
    specs = _chain_of(ctx, chain)
    if problem not in _PROBLEMS:
        raise FaultError(f"tls_certificate_profile: problem {problem!r}; one of {', '.join(_PROBLEMS)}")
    if not 0 <= index < len(specs):
        raise FaultError(f"tls_certificate_profile: index {index}; 0 … {len(specs) - 1}")
    s = specs[index]
    if problem in ("ca_flag", "key_usage") and s.ca:
        raise FaultError(f"tls_certificate_profile: {problem} is a leaf problem; index 0")
    if problem in ("no_ca_flag", "no_key_cert_sign") and not s.ca:
        raise FaultError(f"tls_certificate_profile: {problem} is a CA problem; index ≥ 1")
    if problem == "ca_flag":
        s = replace(s, ca=True, path_length=0)
    elif problem == "key_usage":
        s = replace(s, key_usage=("key_agreement",))
    elif problem == "no_ca_flag":
        s = replace(s, ca=False)
    elif problem == "no_key_cert_sign":
        s = replace(s, key_usage=("crl_sign", "digital_signature"))
    else:
        s = replace(s, curve="secp256r1" if s.curve != "secp256r1" else "secp521r1")
    specs[index] = s
    _comment(ctx, f"tls_certificate_profile: {chain} certificate #{index} {s.cn}: {problem}")


@fault("tls_chain_missing_intermediate", level="tls", stage="before", category="tls",
       chain="server", missing=1)
def tls_chain_missing_intermediate(ctx, chain, missing):
    """The ``chain``'s Certificate message leaves out certificate ``missing`` (default 1, the
    Sub-CA 2 that issued the leaf): the leaf is followed by Sub-CA 1, which did not issue it —
    the chain does not link up (RFC 8446 §4.4.2 / RFC 5246 §7.4.2: each certificate certifies
    the one before; ISO 15118-2 / -20 §7.7.3: leaf, Sub-CA 2, Sub-CA 1). A misconfigured
    certificate bundle; the peer here builds the path from its own store and goes on."""
    _needs_tls(ctx, "tls_chain_missing_intermediate")
    specs = _chain_of(ctx, chain)
    if not 1 <= missing < len(specs) - 1:
        raise FaultError(f"tls_chain_missing_intermediate: missing {missing}; an intermediate, 1 … "
                         f"{len(specs) - 2}")
    sent = [i for i in range(len(specs) - 1) if i != missing]
    if chain == "server":
        ctx.tls.server_sent = sent
    else:
        ctx.tls.client_sent = sent
    _comment(ctx, f"tls_chain_missing_intermediate: the {chain} chain lacks #{missing} {specs[missing].cn}")


# ====================================================================== authentication, use of TLS
@fault("tls_no_client_auth", level="tls", stage="before", category="tls", side="SECC")
def tls_no_client_auth(ctx, side):
    """ISO 15118-20 TLS 1.3 without client authentication ([V2G20-2400]: the SECC requests
    the EVCC's certificate; mutual TLS, §7.7.3). ``side`` "SECC": the SECC sends no
    CertificateRequest (a server configured as for ISO 15118-2); "EV": the EV answers the
    CertificateRequest with an empty Certificate (no vehicle certificate provisioned). The
    SECC accepts and the session goes on."""
    _needs_tls(ctx, "tls_no_client_auth")
    if ctx.tls.version != "TLS 1.3" or not ctx.tls.request_client_cert:
        raise FaultError("tls_no_client_auth: an ISO 15118-20 (TLS 1.3, mutual) session only")
    if side == "SECC":
        ctx.tls.request_client_cert = False
    elif side == "EV":
        ctx.tls.client_sends_cert = False
    else:
        raise FaultError(f"tls_no_client_auth: side {side!r}; SECC or EV")
    _comment(ctx, "tls_no_client_auth: " + ("no CertificateRequest" if side == "SECC"
                                             else "the EV sends an empty Certificate"))


@fault("tls_sdp_security_ignored", level="tls", stage="before", category="tls", connection="plain")
def tls_sdp_security_ignored(ctx, connection):
    """The EV does not use the security the SDP response announced ([V2G2-623]: TLS 0x00 /
    NoTLS 0x10; the EVCC connects accordingly). ``connection`` "plain": the EV asks for TLS,
    the SECC announces TLS, the EV then opens a plain TCP connection (V2GTP in the clear);
    "tls": the SECC answers NoTLS and the EV starts a TLS handshake anyway. The SECC's
    listener accepts both here (it auto-detects), so the session goes on."""
    if connection == "plain":
        ctx.sdp.security = "TLS"
        ctx.sdp.response_security = "TLS"
    elif connection == "tls":
        ctx.sdp.security = "TLS"
        ctx.sdp.response_security = "NoTLS"
    else:
        raise FaultError(f"tls_sdp_security_ignored: connection {connection!r}; plain or tls")
    ctx.tls.enabled = True
    ctx.tls.force = connection
    ctx.sdp.comments.append(f"simulator fault tls_sdp_security_ignored: SDP answers "
                            f"{ctx.sdp.response_security}, the EV connects {'with TLS' if connection == 'tls' else 'without TLS'}")


@fault("din_over_tls", level="tls", stage="before", category="tls")
def din_over_tls(ctx):
    """A DIN 70121 session over TLS ([V2G-DC-618]: DIN has no TLS; the SECC shall announce
    NoTLS to a DIN EV and not select DIN on a TLS connection). An EV that speaks ISO 15118-2
    and DIN asks for TLS in SDP and offers both in supportedAppProtocolReq (ISO-2 first); a
    DIN-only SECC announces TLS, completes the TLS 1.2 handshake (the ISO-2 profile) and
    selects DIN 70121 on the TLS connection (culprit SECC). The session goes on."""
    if ctx.protocol != _DIN:
        raise FaultError("din_over_tls: a DIN 70121 session only")
    ctx.tls.enabled = True
    ctx.sdp.security = "TLS"
    if ctx.spec.ev.protocols is None:
        ctx.spec.ev.protocols = [_ISO2, _DIN]
    _comment(ctx, "din_over_tls: a DIN-only SECC accepts TLS")


@fault("no_tls", level="tls", stage="before", category="tls")
def no_tls(ctx):
    """The EV asks for NoTLS in SDP and the SECC accepts: an ISO 15118-20 or Plug & Charge
    session over plain TCP — as test benches run them (the dSPACE ISO-20_BPT_AC reference
    captures; PROTOCOL_FACTS §1.4). -20 requires TLS 1.3 ([V2G20-1235], [V2G20-1237]); Plug &
    Charge requires TLS ([V2G2-634])."""
    if ctx.protocol != _ISO20 and ctx.spec.payment != "PnC":
        raise FaultError("no_tls: an ISO 15118-20 or Plug & Charge session only (the others run "
                         "without TLS anyway)")
    ctx.tls.enabled = False
    ctx.sdp.security = "NoTLS"
    ctx.sdp.comments.append("simulator fault no_tls: the EV asks for NoTLS")


__all__ = ["ALERTS"]


# ====================================================================== revocation (OCSP)
@fault("ocsp_stapled", level="tls", stage="before", category="tls", status="revoked")
def ocsp_stapled(ctx, status):
    """The EV asks for the SECC certificate's OCSP response (ClientHello status_request, RFC
    6066 §8) and the SECC staples one — TLS 1.2: a CertificateStatus after its Certificate;
    TLS 1.3 (ISO 15118-20): in its leaf's CertificateEntry (RFC 8446 §4.4.2.1) — saying
    ``status``: "good", "revoked" (keyCompromise, revoked the
    day before the session: a certificate the CPO's backend has withdrawn, still installed in
    the charger) or "unknown". The response is really issued and signed by the SECC
    certificate's issuer (samples/tls.ocsp_response). The EV does not check it and goes on
    (TLS012 for revoked / unknown)."""
    _needs_tls(ctx, "ocsp_stapled")
    if status not in ("good", "revoked", "unknown"):
        raise FaultError(f"ocsp_stapled: status {status!r}; good, revoked or unknown")
    ctx.tls.status_request = True
    ctx.tls.ocsp = status
    _comment(ctx, f"ocsp_stapled: the SECC staples an OCSP response saying {status}")


@fault("trusted_ca_keys_mismatch", level="tls", stage="before", category="tls")
def trusted_ca_keys_mismatch(ctx):
    """ISO 15118-2 over TLS 1.2: the EV lists the root CAs it trusts in ClientHello
    trusted_ca_keys (RFC 6066 §6) — only "V2G RootCA Other", the root of another V2G PKI
    (a vehicle provisioned for another ecosystem) — and the SECC, which has no chain under
    it, sends its own chain anyway instead of refusing. The EV does not check and goes on
    (TLS013)."""
    _needs_tls(ctx, "trusted_ca_keys_mismatch")
    if ctx.tls.version != "TLS 1.2":
        raise FaultError("trusted_ca_keys_mismatch: TLS 1.2 sessions only (TLS 1.3 uses certificate_authorities)")
    ctx.tls.trusted_ca_names = [("V2G RootCA Other", "V2G")]
    _comment(ctx, "trusted_ca_keys_mismatch: the EV trusts only V2G RootCA Other")


@fault("tls_secc_certificate_identity", level="tls", stage="before", category="tls", operator="XYZ")
def tls_secc_certificate_identity(ctx, operator):
    """The SECC's TLS certificate carries an SECCID in its CN (ISO 15118-2 Annex F) — but of
    operator ``operator`` ("DE" + operator + "S" + controller ID), while the charger's EVSEID
    (DE*SIM*E0001*1) names operator SIM: a certificate copied from another operator's charge
    point. Nobody checks; the session goes on (TLS014)."""
    _needs_tls(ctx, "tls_secc_certificate_identity")
    op = str(operator).upper()
    if len(op) != 3 or not op.isalnum():
        raise FaultError(f"tls_secc_certificate_identity: operator {operator!r}; three letters or digits")
    specs = ctx.tls.server_chain
    specs[0] = replace(specs[0], cn=f"DE{op}S0123456789ABCDEF0123456789ABCDEF")
    _comment(ctx, f"tls_secc_certificate_identity: the SECC certificate's SECCID names operator {op}")
