"""Plug & Charge verification on the simulator's scenarios (issue: "every new fault scenario
yields exactly its finding; every clean PnC sample yields none"): each signature, chain,
revocation and identity fault gives exactly its rule (and the consequences of the session it
ends: the FAILED response, the missing SessionStop), analysed with the simulator's roots as
trust anchors (``simulate --roots``, ``analyze --trust``); the clean Plug & Charge sessions of
ISO 15118-2 AC / DC and -20 give no warning or error."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
from cryptography import x509

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.dissectors.x509trust import TrustStore
from ccs_analyzer.samples.build import capture_path
from ccs_analyzer.samples.pki_data import roots

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ENDED = {"RSP001", "SEQ001"}        # a refused request: the FAILED response, no SessionStop

EXPECTED = {
    "iso2_dc_pnc_signature_invalid": {"SIG001"} | ENDED,
    "iso2_dc_pnc_signature_invalid_accepted": {"SIG001", "SIG004"},
    "iso2_ac_pnc_receipt_digest_wrong": {"SIG002", "CHL006"} | ENDED,   # the AC loop ends without Stop
    "iso2_dc_pnc_valid_signature_refused": {"SIG005"} | ENDED,
    "iso2_dc_pnc_stale_signature_header": {"SIG003"},
    "iso2_dc_pnc_emaid_mismatch": {"SIG006"},
    "iso20_dc_pnc_signature_invalid": {"SIG001"} | ENDED,
    "iso2_dc_pnc_contract_other_root": {"MSG023", "MSG018"},
    "iso2_dc_pnc_contract_leaf_ca": {"MSG024"} | ENDED,
    "iso2_dc_pnc_ocsp_revoked": {"TLS012"},
    "iso20_dc_ocsp_revoked": {"TLS012"},                     # TLS 1.3: in the leaf's CertificateEntry
    "iso2_dc_pnc_trusted_ca_mismatch": {"TLS013"},
    "iso2_dc_pnc_secc_certificate_operator": {"TLS014"},
    "iso2_dc_pnc": set(), "iso2_ac_pnc": set(), "iso20_dc_pnc": set(),
    "iso2_dc_pnc_certificate_installation": set(), "iso20_dc_pnc_certificate_installation": set(),
    "iso2_dc_pnc_signed_sales_tariff": set(),
}


@lru_cache(maxsize=1)
def _trust() -> TrustStore:
    return TrustStore([x509.load_der_x509_certificate(d) for d in roots(1)])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_pnc_scenario_yields_exactly_its_findings(name):
    a = analyze_capture(capture_path(name, SAMPLES), trust=_trust())
    assert {f.rule for f in a.findings if f.severity != "info"} == EXPECTED[name]
