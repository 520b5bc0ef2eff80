"""Certificates inside V2G messages (dissectors/v2g_certificates.py): every chain shape of
ISO 15118-2 and -20 found and described, values that are not certificates reported in place,
the per-message budget, other messages untouched, and the V2G layer putting the result in
the event's info (an encoded PaymentDetailsReq through the real decoder)."""
from __future__ import annotations

from ccs_analyzer.dissectors import exi
from ccs_analyzer.dissectors.exi.namespaces import NS_ISO2
from ccs_analyzer.dissectors.v2g import V2gChannel
from ccs_analyzer.dissectors.v2g_certificates import (
    MAX_CERTIFICATES,
    describe_v2g_certificates,
)
from ccs_analyzer.samples import pki_data
from hypothesis import given, settings
from hypothesis import strategies as st

LEAF = "".join(pki_data.CONTRACT_CERT)
SUB2 = "".join(pki_data.MO_SUBCA2_CERT)
SUB1 = "".join(pki_data.MO_SUBCA1_CERT)


def test_iso2_contract_chain_is_described_leaf_first_and_linked():
    body = {"eMAID": pki_data.EMAID, "ContractSignatureCertChain": {
        "Certificate": LEAF, "SubCertificates": {"Certificate": [SUB2, SUB1]}}}
    (item,) = describe_v2g_certificates("PaymentDetailsReq", body)
    assert item["element"] == "PaymentDetailsReq.ContractSignatureCertChain"
    assert item["sub_certificates"] == 2
    leaf, s2, s1 = item["certificates"]
    assert leaf["subject_cn"] == pki_data.EMAID and leaf["index"] == 0
    assert leaf["issued_by_next"] is True and leaf["signed_by_next"] is True
    assert s2["issued_by_next"] is True and "issued_by_next" not in s1
    assert leaf["not_after"] == "2027-06-01T00:00:00Z"


def test_single_sub_certificate_and_bare_provisioning_certificate():
    (a,) = describe_v2g_certificates("CertificateUpdateReq", {"ContractSignatureCertChain": {
        "Certificate": LEAF, "SubCertificates": {"Certificate": SUB2}}})
    assert a["sub_certificates"] == 1 and len(a["certificates"]) == 2
    (b,) = describe_v2g_certificates("CertificateInstallationReq", {"Id": "ID1", "OEMProvisioningCert": LEAF})
    assert b["element"] == "CertificateInstallationReq.OEMProvisioningCert"
    assert b["certificates"][0]["subject_cn"] == pki_data.EMAID


def test_iso20_nested_contract_chain():
    body = {"Header": {"SessionID": "00" * 8, "TimeStamp": 0}, "SelectedAuthorizationService": "PnC",
            "PnC_AReqAuthorizationMode": {"Id": "ID1", "GenChallenge": "00" * 16,
                                          "ContractCertificateChain": {"Certificate": LEAF,
                                                                       "SubCertificates": {"Certificate": [SUB2]}}}}
    (item,) = describe_v2g_certificates("AuthorizationReq", body)
    assert item["element"] == "AuthorizationReq.PnC_AReqAuthorizationMode.ContractCertificateChain"


def test_values_that_are_not_certificates_are_reported_in_place():
    (item,) = describe_v2g_certificates("PaymentDetailsReq", {"ContractSignatureCertChain": {
        "Certificate": "zz", "SubCertificates": {"Certificate": ["3082000130", SUB1]}}})
    bad, broken, good = item["certificates"]
    assert bad["error"].startswith("not a DER certificate")
    assert broken["error"].startswith("certificate does not parse")
    assert good["subject_cn"] and "issued_by_next" not in good      # no links across a gap


def test_budget_counts_what_is_left_out():
    body = {"ContractSignatureCertChain": {"Certificate": LEAF,
                                           "SubCertificates": {"Certificate": [SUB2] * 20}}}
    (item,) = describe_v2g_certificates("PaymentDetailsReq", body)
    assert len(item["certificates"]) == MAX_CERTIFICATES and item["not_described"] == 21 - MAX_CERTIFICATES


def test_other_messages_are_not_searched():
    assert describe_v2g_certificates("SessionSetupReq", {"Certificate": LEAF}) == []
    assert describe_v2g_certificates("PaymentDetailsReq", None) == []


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.one_of(st.text(max_size=20), st.integers(), st.none(),
                              st.sampled_from([LEAF, "30", "3082"])),
                    lambda kids: st.one_of(st.lists(kids, max_size=4),
                                           st.dictionaries(st.sampled_from(
                                               ["Certificate", "SubCertificates", "OEMProvisioningCert",
                                                "ContractSignatureCertChain", "x"]), kids, max_size=4)),
                    max_leaves=12))
def test_any_tree_never_raises(tree):
    out = describe_v2g_certificates("CertificateInstallationRes", {"x": tree})
    assert sum(len(i["certificates"]) for i in out) <= MAX_CERTIFICATES


def test_the_v2g_layer_puts_them_in_the_event_info():
    tree = {"V2G_Message": {"Header": {"SessionID": "0102030405060708"}, "Body": {"PaymentDetailsReq": {
        "eMAID": pki_data.EMAID, "ContractSignatureCertChain": {
            "Certificate": LEAF, "SubCertificates": {"Certificate": [SUB2, SUB1]}}}}}}
    ch = V2gChannel()
    ch.namespace = NS_ISO2
    dec = ch.decode(exi.encode(tree, NS_ISO2), 0x8001, 7)
    assert dec.name == "PaymentDetailsReq" and dec.error is None
    (item,) = dec.notes["certificates"]
    assert item["certificates"][0]["subject_cn"] == pki_data.EMAID
