"""Certificate chains against trust anchors (dissectors/x509trust.py, ``--trust``): the
simulator's chains are anchored in the roots it writes (``simulate --roots``) and not in an
unrelated root (the public RISE-V2G test PKI of ../shared/pki); without trust anchors every
chain — the corpus's dSPACE test-PKI chains included — is "unanchored", never failed; a
contract chain of another operator's root gives MSG023 (and MSG018, the SECC accepted it)
only when anchors are given; unusable trust paths are clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.analyzer.cli import app
from ccs_analyzer.dissectors.pipeline import Dissector
from ccs_analyzer.dissectors.x509trust import TrustError, TrustStore
from ccs_analyzer.samples.build import capture_path
from ccs_analyzer.samples.simulate import write_roots

from ..conftest import SHARED

REPO = Path(__file__).resolve().parents[2]
RISE_PKI = SHARED / "pki" / "risev2g"


def _chains(path, trust) -> list[tuple[str, str]]:
    """(where, trust status) of every chain of the capture: V2G message chains and TLS
    Certificate messages."""
    out = []
    for ev in Dissector(str(path), trust=trust).events():
        for item in (ev.info or {}).get("certificates") or ():
            out.append((item["element"], item["trust"]["status"]))
        if ev.layer == "tls" and ev.name == "Certificate" and isinstance(ev.message, dict):
            out.append((f"TLS {ev.message.get('sender')}", ev.message["trust"]["status"]))
    return out


@pytest.fixture(scope="module")
def sim_roots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("roots")
    write_roots(folder, 1)
    return TrustStore.load(folder)


def test_simulator_chains_are_anchored_in_its_roots(sim_roots):
    got = _chains(capture_path("iso2_dc_pnc", REPO / "samples"), sim_roots)
    assert ("PaymentDetailsReq.ContractSignatureCertChain", "anchored") in got
    assert ("TLS server", "anchored") in got
    assert {s for _, s in got} == {"anchored"}


def test_simulator_chains_are_not_anchored_in_an_unrelated_root():
    if not RISE_PKI.is_dir():
        pytest.skip("../shared/pki not present")
    got = _chains(capture_path("iso2_dc_pnc", REPO / "samples"), TrustStore.load(RISE_PKI))
    assert got and {s for _, s in got} == {"not anchored"}


def test_without_trust_anchors_every_chain_is_unanchored(corpus):
    for name in ("ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng",
                 "ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng"):
        got = _chains(corpus / name, None)
        assert len(got) >= 4 and {s for _, s in got} == {"unanchored"}, (name, got)
        a = analyze_capture(corpus / name)
        assert not [f.rule for f in a.findings if f.rule in ("MSG023", "TLS011", "MSG018")]


def test_dspace_chains_are_not_anchored_in_the_rise_root_never_invalid(corpus):
    if not RISE_PKI.is_dir():
        pytest.skip("../shared/pki not present")
    got = dict(_chains(corpus / "ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng", TrustStore.load(RISE_PKI)))
    # the OEM provisioning certificate travels without its sub-CAs: nothing to anchor it with
    assert got.pop("CertificateInstallationReq.OEMProvisioningCert") == "unanchored"
    assert set(got.values()) == {"not anchored"}


def test_contract_chain_of_another_root_is_found_only_with_anchors(sim_roots):
    path = capture_path("iso2_dc_pnc_contract_other_root", REPO / "samples")
    assert not [f for f in analyze_capture(path).findings if f.rule in ("MSG023", "MSG018")]
    got = {f.rule: f for f in analyze_capture(path, trust=sim_roots).findings}
    assert got["MSG023"].culprit == "EVCC" and "MO SubCA2 Other" in got["MSG023"].synopsis
    assert got["MSG018"].culprit == "SECC"


def test_unusable_trust_paths_are_errors(tmp_path):
    with pytest.raises(TrustError, match="no such file"):
        TrustStore.load(tmp_path / "missing")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(TrustError, match="no certificate"):
        TrustStore.load(junk)
    r = CliRunner().invoke(app, ["analyze", str(capture_path("iso2_dc_pnc", REPO / "samples")),
                                 "-o", str(tmp_path / "out"), "--trust", str(junk)])
    assert r.exit_code == 2 and "no certificate" in " ".join(r.output.split())


def test_trusted_ca_keys_compared_by_name_and_by_hash(sim_roots):
    """RFC 6066 §6 entries against a simulated SECC chain (leaf, Sub-CA 2, Sub-CA 1; root
    V2G RootCA Sim not sent): the root's name matches; another name does not; the root's key
    hash matches only when --trust makes the root known, else nothing is claimed."""
    import hashlib

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from ccs_analyzer.dissectors.ocsp import issuer_key_hash
    from ccs_analyzer.dissectors.x509trust import anchor_chain, trusted_ca_match
    from ccs_analyzer.samples.tls import build_chain, default_chain
    ders, _ = build_chain(tuple(default_chain("server", "secp256r1", "ISO 15118-2")), 1, "server")
    sent, root = list(ders[:3]), x509.load_der_x509_certificate(ders[3])
    by_name = [{"type": "x509_name", "name_der": root.subject.public_bytes().hex()}]
    assert trusted_ca_match(by_name, sent)["match"] is True
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another root")])
    assert trusted_ca_match([{"type": "x509_name", "name_der": other.public_bytes().hex()}], sent)["match"] is False
    by_key = [{"type": "key_sha1_hash", "sha1": issuer_key_hash(root).hex()}]
    assert trusted_ca_match(by_key, sent)["match"] is None
    assert trusted_ca_match(by_key, sent, sim_roots, anchor_chain(sent, None, sim_roots))["match"] is True
    wrong = [{"type": "cert_sha1_hash", "sha1": hashlib.sha1(b"x").hexdigest()}]
    assert trusted_ca_match(wrong, sent, sim_roots, anchor_chain(sent, None, sim_roots))["match"] is False
