"""Stapled OCSP responses (dissectors/ocsp.py, TLS CertificateStatus): good / revoked /
unknown decoded, the CertID matched to the SECC's leaf, the signature checked with the
issuer's key, the validity window against the capture time; a revoked stapled response in
a simulated session gives TLS012; the corpus's EVs ask for OCSP and get none, which the TLS
summary says without failing anything."""
from __future__ import annotations

from pathlib import Path

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.dissectors.ocsp import describe_ocsp
from ccs_analyzer.dissectors.pipeline import Dissector
from ccs_analyzer.samples.build import capture_path
from ccs_analyzer.samples.tls import OCSP_TIME, build_chain, default_chain, ocsp_response

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DERS, KEYS = build_chain(tuple(default_chain("server", "secp256r1", "ISO 15118-2")), 1, "server")
CHAIN = list(DERS[:3])
AT = OCSP_TIME.timestamp()


def test_good_revoked_unknown_are_decoded_and_verified():
    for status in ("good", "revoked", "unknown"):
        o = describe_ocsp(ocsp_response(DERS[0], DERS[1], KEYS[1], status), CHAIN, AT)
        assert o["response_status"] == "successful" and o["cert_status"] == status
        assert o["for_leaf"] is True and o["signature_valid"] is True and o["problems"] == []
    o = describe_ocsp(ocsp_response(DERS[0], DERS[1], KEYS[1], "revoked"), CHAIN, AT)
    assert o["revocation_reason"] == "key_compromise" and o["revocation_time"] == "2025-12-31T00:00:00Z"


def test_unusable_responses_say_why():
    wrong_signer = describe_ocsp(ocsp_response(DERS[0], DERS[1], KEYS[2], "good"), CHAIN, AT)
    assert wrong_signer["signature_valid"] is False
    assert any("signature" in p for p in wrong_signer["problems"])
    other_cert = describe_ocsp(ocsp_response(DERS[1], DERS[2], KEYS[2], "good"), CHAIN, AT)
    assert other_cert["for_leaf"] is False
    outdated = describe_ocsp(ocsp_response(DERS[0], DERS[1], KEYS[1], "good"), CHAIN, AT + 30 * 86400)
    assert any("outdated" in p for p in outdated["problems"])
    assert "error" in describe_ocsp(b"\x30\x03\x02\x01", CHAIN, AT)


def test_revoked_stapled_response_gives_tls012():
    a = analyze_capture(capture_path("iso2_dc_pnc_ocsp_revoked", SAMPLES))
    (f,) = [f for f in a.findings if f.rule == "TLS012"]
    assert f.severity == "error" and f.culprit == "SECC" and "revoked" in f.synopsis


def test_no_stapled_response_is_said_not_failed(corpus):
    d = Dissector(str(corpus / "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng"))
    for _ in d.events():
        pass
    (tls,) = [c["tls"] for c in d.connections if isinstance(c.get("tls"), dict)]
    assert tls["revocation"]["status_request"] is True and tls["revocation"]["ocsp"] is None
    assert tls["revocation"]["summary"].startswith("no OCSP response in the capture although the EV asked")
