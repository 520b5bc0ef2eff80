"""The role profile of a certificate (analyzer/views/certificates.py), shared by TLS005 and
MSG024: CA flag and key usage by role, the key by protocol, and the leaf's domainComponent by
PKI (ISO 15118-2 Annex F: CPO, MO, OEM, CPS)."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.certificates import certificate_problem, leaf_domain, profile_problems
from ccs_analyzer.analyzer.views.signatures import passes_core_validation, signature_result

LEAF = {"index": 0, "subject": "DC=MO,CN=DEABC123456789Y,O=x,C=DE", "basic_constraints": {"ca": False},
        "key_usage": ["digitalSignature", "keyAgreement"], "key_type": "EC", "key_curve": "secp256r1"}


def test_a_conforming_contract_leaf_has_no_problem():
    assert profile_problems(LEAF, ("EC secp256r1",), "ISO 15118-2", leaf_dc="MO") == ([], [])


def test_each_role_violation_is_named():
    errors, _ = profile_problems(dict(LEAF, basic_constraints={"ca": True}, key_usage=["keyCertSign"]))
    assert errors == ["leaf certificate with basicConstraints cA = true",
                      "leaf keyUsage ['keyCertSign'] lacks digitalSignature"]
    errors, _ = profile_problems(dict(LEAF, index=1, key_usage=["digitalSignature"]))
    assert errors == ["CA certificate without basicConstraints cA = true",
                      "CA keyUsage ['digitalSignature'] lacks keyCertSign"]
    _, warns = profile_problems(dict(LEAF, key_curve="secp384r1"), ("EC secp256r1",), "ISO 15118-2")
    assert warns == ["key EC secp384r1, ISO 15118-2 expects EC secp256r1"]


def test_the_leaf_domain_component_follows_its_pki():
    assert leaf_domain("PaymentDetailsReq.ContractSignatureCertChain") == "MO"
    assert leaf_domain("CertificateInstallationRes.SAProvisioningCertificateChain") == "CPS"
    assert leaf_domain("CertificateInstallationReq.OEMProvisioningCert") == "OEM"
    assert leaf_domain("TLS server") == "CPO" and leaf_domain("Whatever") is None
    _, warns = profile_problems(LEAF, leaf_dc="CPO")
    assert warns == ["subject DC=MO, ISO 15118-2 Annex F expects DC=CPO"]


def test_validity_periods_against_the_policy_a_user_gives():
    """MSG024's ``max_validity_days`` (a profile parameter; empty by default: the limits are
    the certificate policy's): the simulator's contract leaf is valid 730 days."""
    from pathlib import Path

    from ccs_analyzer.analyzer.analysis import analyze_capture
    from ccs_analyzer.analyzer.profile import Profile
    from ccs_analyzer.samples.build import capture_path
    cap = capture_path("iso2_dc_pnc", Path(__file__).resolve().parents[2] / "samples")
    assert not [f for f in analyze_capture(cap).findings if f.rule == "MSG024"]
    strict = Profile(rules={"MSG024": {"max_validity_days": {"MO": [365]}}})
    (f,) = [f for f in analyze_capture(cap, profile=strict).findings if f.rule == "MSG024"]
    assert f.severity == "warning" and "valid 730 days, the certificate policy allows 365" in f.synopsis
    _, warns = profile_problems(dict(LEAF, not_before="2025-01-01T00:00:00Z", not_after="2026-01-01T00:00:00Z"),
                                max_days=400)
    assert warns == []


def test_certificate_problem_names_parse_errors_and_broken_links():
    assert certificate_problem(LEAF) == ""
    assert certificate_problem({"error": "bad DER"}) == "bad DER"
    assert certificate_problem(dict(LEAF, problems=["a", "b"], issued_by_next=False)) == \
        "a; b; not issued by the next certificate"
    assert certificate_problem(dict(LEAF, issued_by_next=True, signed_by_next=False)) == \
        "signature does not verify with the next"


def test_signature_result_fails_on_any_bad_reference():
    ok, bad = {"status": "ok"}, {"status": "digest mismatch"}
    assert signature_result({"valid": True, "references": [ok]}) is True
    assert signature_result({"valid": True, "references": [ok, bad]}) is False
    assert signature_result({"valid": None, "references": [bad]}) is False
    assert signature_result({"valid": None, "references": [ok]}) is None
    assert signature_result({"valid": False, "references": [ok]}) is False
    assert passes_core_validation({"valid": True, "references": [ok]})
    assert not passes_core_validation({"valid": True, "references": []}) and not passes_core_validation(None)
