"""TLS rules (TLS001-TLS010): handshakes built as the TLS dissector describes them, each
rule triggered and silent on the close case; the corpus TLS captures judged at capture time."""
from __future__ import annotations

from dataclasses import replace

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.rules.tls.certificates import CertificateNotValidAtCaptureTime
from tests.rules.util import (EV, EVSE, NS_DIN, NS_ISO2, NS_ISO20_DC, analyze_events,
                              connection, din, ev, iso2, iso20, rules_found, script)

ISO2_SUITE = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
ISO20_SUITE = "TLS_AES_256_GCM_SHA384"


def cert(cn, issuer, i, *, ca=None, ku=None, nb="2023-01-01T00:00:00Z", na="2024-12-31T00:00:00Z",
         curve="secp256r1", issued=True, signed=True, last=False):
    c = {"subject": f"DC=CPO,CN={cn}", "issuer": f"CN={issuer}", "subject_cn": cn, "issuer_cn": issuer,
         "not_before": nb, "not_after": na, "key_type": "EC", "key_curve": curve,
         "basic_constraints": {"ca": bool(i) if ca is None else ca, "path_length": None,
                               "critical": True},
         "key_usage": ku or (["keyCertSign", "cRLSign"] if i else ["digitalSignature", "keyAgreement"]),
         "problems": [], "index": i, "self_signed": False}
    if not last:
        c["issued_by_next"], c["signed_by_next"] = issued, signed
    return c


def chain(curve="secp256r1", **leaf):
    return [cert("SECC", "SubCA2", 0, curve=curve, **leaf), cert("SubCA2", "SubCA1", 1, curve=curve),
            cert("SubCA1", "V2G Root", 2, curve=curve, last=True)]


def hs(version="TLS 1.2", suite=ISO2_SUITE, group="secp256r1", offered=None, certs=None,
       client_certs=None, cert_request=False, finished=True, extra=()):
    """TLS handshake events on connection 0, frames 3.."""
    out = [ev(3, 0.01, "tls", "ClientHello", EV,
              {"cipher_suites": [suite if offered is None else offered[0]] + list(offered or [])[1:],
               "supported_groups": [group], "offered_versions": [version] if offered is None
               else [version, "TLS 1.3"]}, info={"kind": "handshake"}),
           ev(4, 0.02, "tls", "ServerHello", EVSE, {"version": version, "cipher_suite": suite,
                                                    "group": group if version == "TLS 1.3" else None},
              info={"kind": "handshake"})]
    f = 5
    if cert_request:
        out.append(ev(f, 0.03, "tls", "CertificateRequest", EVSE, {}, info={"kind": "handshake"}))
        f += 1
    out.append(ev(f, 0.04, "tls", "Certificate", EVSE, {"sender": "server", "certificates": certs
                                                        if certs is not None else chain()},
                  info={"kind": "handshake"}))
    f += 1
    if version == "TLS 1.2":
        out.append(ev(f, 0.05, "tls", "ServerKeyExchange", EVSE, {"group": group},
                      info={"kind": "handshake"}))
        f += 1
    if client_certs is not None:
        out.append(ev(f, 0.06, "tls", "Certificate", EV, {"sender": "client", "certificates": client_certs},
                      info={"kind": "handshake"}))
        f += 1
    if finished:
        out += [ev(f, 0.07, "tls", "Finished", EV, {}, info={"kind": "handshake"}),
                ev(f + 1, 0.08, "tls", "Finished", EVSE, {}, info={"kind": "handshake"})]
        f += 2
    for e in extra:
        out.append(e)
    return out


def session(tls_events, namespace=NS_ISO2, kind="tls", version="TLS 1.2", sdp_security=None,
            summary=None):
    make = {NS_ISO2: iso2, NS_DIN: din}.get(namespace, iso20)
    ex = [(make("SessionSetupReq", {"EVCCID": "01"}, "00" * (1 if make is not iso20 else 8)),
           make("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "ZZ"}),
           0.05, 0.02)]
    evs = [ev(1, 0.0, "tcp", "SYN", EV), ev(2, 0.001, "tcp", "SYN-ACK", EVSE)] + tls_events
    evs += [e for e in script(ex, namespace=namespace, frame0=30, t0=1.0) if e.layer != "tcp"]
    if sdp_security:
        evs = [ev(-1 + i, -0.5 + 0.1 * i, "sdp", n, d, m) for i, (n, d, m) in enumerate((
            ("SDP request", EV, {"Security": sdp_security[0], "TransportProtocol": "TCP"}),
            ("SDP response", EVSE, {"SECCIPAddress": "fe80::2", "SECCPort": 60000,
                                    "Security": sdp_security[1], "TransportProtocol": "TCP"})))] + evs
        for e in evs:
            e.frame += 2
    tls = {"version": version, "cipher_suite": None, "group": None, "decrypting": True,
           "client_random": "00" * 32, "records": [5, 5], "decrypted": [5, 5],
           "undecryptable": [0, 0], "application_bytes": [10, 10], "dropped": [0, 0],
           **(summary or {})}
    conn = connection(0, kind=kind, namespace=namespace, syn=evs[0].frame if not sdp_security else 3,
                      synack=2, **({"tls": tls} if kind == "tls" else {}))
    return analyze_events(evs, [conn])


def found(a, code):
    return rules_found(a, code)


def mine(a, prefix="TLS"):
    return [f for f in a.findings if f.rule.startswith(prefix)]


# --------------------------------------------------------------------------- clean
def test_conforming_iso2_tls_handshake_has_no_tls_finding():
    assert mine(session(hs())) == []


def test_conforming_iso20_mutual_tls_has_no_tls_finding():
    iso20_chain = chain(curve="secp521r1")
    a = session(hs(version="TLS 1.3", suite=ISO20_SUITE, group="secp521r1", certs=iso20_chain,
                   cert_request=True, client_certs=chain(curve="secp521r1")),
                namespace=NS_ISO20_DC, version="TLS 1.3")
    assert mine(a) == []


# --------------------------------------------------------------------------- TLS001
def test_tls001_fatal_certificate_alert_blames_the_rejected_side():
    alert = ev(9, 0.09, "tls", "Alert fatal bad_certificate", EV,
               {"level_name": "fatal", "description_name": "bad_certificate", "encrypted": False},
               info={"kind": "alert"})
    a = session(hs(finished=False, extra=[alert]))
    (f,) = found(a, "TLS001")
    assert f.severity == "error" and f.culprit == "SECC" and "during the handshake" in f.synopsis


def test_tls001_close_notify_is_normal():
    bye = ev(60, 5.0, "tls", "Alert warning close_notify", EV,
             {"level_name": "warning", "description_name": "close_notify"}, info={"kind": "alert"})
    assert not found(session(hs(extra=[bye])), "TLS001")


def test_tls001_alert_after_the_handshake_says_so_without_naming_finished():
    alert = ev(60, 5.0, "tls", "Alert fatal internal_error", EVSE,
               {"level_name": "fatal", "description_name": "internal_error"}, info={"kind": "alert"})
    (f,) = found(session(hs(extra=[alert])), "TLS001")
    assert "after the handshake" in f.synopsis and "Finished" not in f.synopsis
    assert f.culprit == "SECC" and f.severity == "error"


# --------------------------------------------------------------------------- TLS002 / TLS003
def test_tls002_iso20_over_tls12_although_the_ev_offered_13():
    a = session(hs(version="TLS 1.2", offered=[ISO20_SUITE, ISO2_SUITE], suite=ISO2_SUITE),
                namespace=NS_ISO20_DC)
    (f,) = found(a, "TLS002")
    assert f.severity == "error" and f.culprit == "SECC" and f.measured == "TLS 1.2"


def test_tls002_iso2_over_tls12_is_right():
    assert not found(session(hs()), "TLS002")


def test_tls003_suite_outside_the_iso2_profile():
    a = session(hs(suite="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                   offered=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", ISO2_SUITE]))
    fs = found(a, "TLS003")
    assert [(f.measured, f.culprit, f.severity) for f in fs] == [
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "SECC", "warning")]


def test_tls003_iso20_group_the_ev_chose():
    a = session(hs(version="TLS 1.3", suite=ISO20_SUITE, group="secp256r1", cert_request=True,
                   certs=chain(curve="secp521r1"), client_certs=chain(curve="secp521r1")),
                namespace=NS_ISO20_DC, version="TLS 1.3")
    (f,) = found(a, "TLS003")
    assert f.measured == "secp256r1" and f.culprit == "EVCC"


# --------------------------------------------------------------------------- TLS004
def test_tls004_expired_at_capture_time():
    a = session(hs(certs=chain(na="2023-06-01T00:00:00Z")))     # events are in Nov 2023
    (f,) = found(a, "TLS004")
    assert f.culprit == "SECC" and f.severity == "error" and "expired" in f.synopsis


def test_tls004_valid_at_capture_time_even_if_expired_today():
    a = session(hs(certs=chain(nb="2023-11-01T00:00:00Z", na="2023-12-01T00:00:00Z")))
    assert not found(a, "TLS004")


def test_tls004_a_few_minutes_early_is_clock_skew():
    a = session(hs(certs=chain(nb="2023-11-14T22:15:00Z")))     # capture at 22:13:20
    (f,) = found(a, "TLS004")
    assert f.severity == "warning" and "not valid before" in f.synopsis


# --------------------------------------------------------------------------- TLS005 / TLS006
def test_tls005_ca_flag_on_the_leaf_and_missing_key_cert_sign():
    bad = chain(ca=True)
    bad[1]["key_usage"] = ["cRLSign"]
    a = session(hs(certs=bad))
    (f,) = found(a, "TLS005")
    assert f.severity == "error" and f.culprit == "SECC" and len(f.evidence["actual"]) == 2
    assert "cA = true" in f.synopsis and "keyCertSign" in f.synopsis


def test_tls005_wrong_curve_for_iso2_is_a_warning():
    (f,) = found(session(hs(certs=chain(curve="secp384r1"))), "TLS005")
    assert f.severity == "warning" and len(f.evidence["actual"]) == 3


def test_tls006_root_left_out_is_normal():
    assert not found(session(hs(certs=chain()[:2])), "TLS006")


# --------------------------------------------------------------------------- TLS007
def test_tls007_no_client_certificate_in_iso20():
    a = session(hs(version="TLS 1.3", suite=ISO20_SUITE, group="secp521r1", certs=chain(curve="secp521r1")),
                namespace=NS_ISO20_DC, version="TLS 1.3")
    (f,) = found(a, "TLS007")
    assert f.culprit == "SECC" and "CertificateRequest" in f.synopsis
    a = session(hs(version="TLS 1.3", suite=ISO20_SUITE, group="secp521r1", certs=chain(curve="secp521r1"),
                   cert_request=True, client_certs=[]), namespace=NS_ISO20_DC, version="TLS 1.3")
    (f,) = found(a, "TLS007")
    assert f.culprit == "EVCC"


def test_tls007_not_judged_without_a_readable_handshake():
    a = session(hs(version="TLS 1.3", suite=ISO20_SUITE, group="secp521r1", certs=chain(curve="secp521r1"),
                   finished=False), namespace=NS_ISO20_DC, version="TLS 1.3")
    assert not found(a, "TLS007")


# --------------------------------------------------------------------------- TLS008-010
def test_tls008_plain_tcp_after_sdp_announced_tls():
    a = session([], kind="v2gtp", sdp_security=("TLS", "TLS"))
    (f,) = found(a, "TLS008")
    assert f.culprit == "EVCC" and f.evidence["expected"] == "TLS"
    assert not found(session(hs(), sdp_security=("TLS", "TLS")), "TLS008")


def test_tls009_din_over_tls():
    (f,) = found(session(hs(), namespace=NS_DIN), "TLS009")
    assert f.severity == "error"
    assert not found(session([], namespace=NS_DIN, kind="v2gtp"), "TLS009")


def test_tls010_iso20_over_plain_tcp():
    (f,) = found(session([], namespace=NS_ISO20_DC, kind="v2gtp", sdp_security=("NoTLS", "NoTLS")),
                 "TLS010")
    assert f.severity == "warning" and f.culprit == "EVCC"
    a = session(hs(version="TLS 1.3", suite=ISO20_SUITE, group="secp521r1", certs=chain(curve="secp521r1"),
                   cert_request=True, client_certs=chain(curve="secp521r1")),
                namespace=NS_ISO20_DC, version="TLS 1.3")
    assert not found(a, "TLS010")


# --------------------------------------------------------------------------- corpus
_cache: dict = {}


def analysis(corpus, name):
    if name not in _cache:
        _cache[name] = analyze_capture(corpus / name)
    return _cache[name]


ISO2_TLS = ["ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng",
            "ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng",
            "ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng",
            "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng"]


@pytest.mark.parametrize("name", ISO2_TLS)
def test_corpus_iso2_tls_references_conform(corpus, name):
    a = analysis(corpus, name)
    tls = next(c for c in a.connections if c["kind"] == "tls")["tls"]
    assert tls["version"] == "TLS 1.2" and tls["cipher_suite"] == ISO2_SUITE
    assert mine(a) == []
    assert not [f for f in a.findings if f.rule.startswith("MSG00") and f.rule != "MSG001"
                and f.severity == "error"]


def test_corpus_iso20_mutual_tls_only_the_key_exchange_group(corpus):
    a = analysis(corpus, "ISO-20_mTLS_DC_DS5366_Josev.pcapng")
    (f,) = mine(a)
    assert f.rule == "TLS003" and f.severity == "warning" and f.culprit == "EVCC"
    assert f.measured == "secp256r1" and f.frames == [48, 50]


@pytest.mark.parametrize("name", ISO2_TLS + ["ISO-20_mTLS_DC_DS5366_Josev.pcapng"])
def test_corpus_certificates_judged_at_capture_time(corpus, name):
    """The dSPACE test PKI's leaf certificates are valid for 90 days from minutes before the
    capture: valid then (no finding), expired when judged 100 days later."""
    a = analysis(corpus, name)
    s = a.sessions[0]
    certs = [e for e in s.events if e.layer == "tls" and e.name == "Certificate"]
    assert certs
    for e in certs:
        for c in e.message["certificates"]:
            assert c["not_before"] < c["not_after"]
    rule = CertificateNotValidAtCaptureTime()
    assert list(rule.check(s, a)) == []
    later = replace(s, events=[replace(e, time=e.time + 100 * 86400) if e in certs else e
                               for e in s.events])
    fs = list(rule.check(later, a))
    assert fs and all("expired" in f.synopsis and f.culprit in ("SECC", "EVCC") for f in fs)
    assert any("EVSE Test-PKI" in f.synopsis for f in fs)
