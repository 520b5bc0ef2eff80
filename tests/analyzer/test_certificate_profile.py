"""The role profile of a certificate (analyzer/views/certificates.py), shared by TLS005 and
MSG024: CA flag and key usage by role, the key by protocol, and the leaf's domainComponent by
PKI (ISO 15118-2 Annex F: CPO, MO, OEM, CPS)."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.certificates import leaf_domain, profile_problems

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
