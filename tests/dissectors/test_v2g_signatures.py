"""xmldsig signatures of V2G messages (dissectors/v2g_signatures.py, the EXI fragment
encoder): every signature of the corpus's RISE-V2G Plug & Charge captures verifies with the
signer the standard names; signatures made here (samples/signing.py) verify through the real
decoder and each fault — a flipped SignatureValue byte, a changed signed element, another
key, a missing contract certificate — is told apart; hostile Signature headers never raise."""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ccs_analyzer.dissectors import exi
from ccs_analyzer.dissectors.pipeline import Dissector
from ccs_analyzer.dissectors.v2g import V2gChannel
from ccs_analyzer.dissectors.v2g_signatures import check_references, verify_signed_info
from ccs_analyzer.samples.signing import reference, signature

NS_ISO2 = exi.NS_ISO2

#: (capture, frame, message, signer role, signer CN) of every signature the RISE-V2G PnC
#: captures carry on a message ISO 15118-2 signs; all verify, every Reference digest equal.
RISE_SIGNATURES = [
    ("ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng", 109, "AuthorizationReq", "contract", "DEABC123456789Y"),
    ("ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng", 164, "MeteringReceiptReq", "contract", "DEABC123456789Y"),
    ("ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng", 188, "MeteringReceiptReq", "contract", "DEABC123456789Y"),
    ("ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng", 112, "CertificateInstallationReq", "OEM provisioning", "OEM Prov Test-PKI"),
    ("ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng", 118, "CertificateInstallationRes", "CPS (SA provisioning)", "CPS Prov Test-PKI"),
    ("ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng", 128, "AuthorizationReq", "contract", "DEABC123456789Y"),
    ("ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng", 117, "CertificateUpdateReq", "contract", "DEABC123456789Y"),
    ("ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng", 123, "CertificateUpdateRes", "CPS (SA provisioning)", "CPS Prov Test-PKI"),
    ("ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng", 133, "AuthorizationReq", "contract", "DEABC123456789Y"),
    ("ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng", 115, "AuthorizationReq", "contract", "DEABC123456789Y"),
]
SIGNED = {"AuthorizationReq", "MeteringReceiptReq", "CertificateInstallationReq",
          "CertificateInstallationRes", "CertificateUpdateReq", "CertificateUpdateRes"}


def _signed_events(path):
    return [ev for ev in Dissector(str(path)).events()
            if ev.layer == "v2gtp" and (ev.info or {}).get("signature")]


def test_every_rise_v2g_signature_verifies_with_its_signer(corpus):
    found = []
    for cap in sorted({c for c, *_ in RISE_SIGNATURES}):
        for ev in _signed_events(corpus / cap):
            sig = ev.info["signature"]
            if ev.name not in SIGNED:
                continue
            assert sig["valid"] is True, (cap, ev.frame, sig["reason"])
            assert all(r["status"] == "ok" for r in sig["references"]), (cap, ev.frame, sig["references"])
            found.append((cap, ev.frame, ev.name, sig["signer"]["role"],
                          x509.Name.from_rfc4514_string(sig["signer"]["subject"])
                          .get_attributes_for_oid(NameOID.COMMON_NAME)[0].value))
    assert found == RISE_SIGNATURES


def test_certificate_installation_res_references_include_the_relaxed_emaid(corpus):
    (ev,) = [e for e in _signed_events(corpus / RISE_SIGNATURES[4][0]) if e.frame == 118]
    refs = [(r["uri"], r["element"], r["status"]) for r in ev.info["signature"]["references"]]
    assert refs == [("#ID1", "ContractSignatureCertChain", "ok"),
                    ("#ID2", "ContractSignatureEncryptedPrivateKey", "ok"),
                    ("#ID3", "DHpublickey", "ok"), ("#ID4", "eMAID", "ok")]


def test_rise_v2g_stale_header_signatures_reference_nothing(corpus):
    """RISE-V2G's EVCC keeps the MeteringReceiptReq's Signature header on the
    ChargingStatusReq / PowerDeliveryReq that follow: the signature over SignedInfo verifies,
    but its Reference #id1 names no element of those messages."""
    evs = [e for e in _signed_events(corpus / RISE_SIGNATURES[0][0]) if e.name not in SIGNED]
    assert [e.frame for e in evs] == [172, 176, 180, 184, 196, 200, 204, 208]
    for e in evs:
        sig = e.info["signature"]
        assert sig["valid"] is True
        assert [(r["uri"], r["status"]) for r in sig["references"]] == [("#id1", "unresolved")]


# ------------------------------------------------------------------ the fragment encoder
def test_fragment_bytes_match_the_real_digests():
    """The EXI fragments whose SHA-256 the RISE-V2G captures carry (AuthorizationReq #109 of
    the AC Contract capture; the eMAID of CertificateInstallationRes #118, declared twice
    with different types in ISO 15118-2, hence the relaxed Element Fragment grammar)."""
    auth = exi.encode_fragment("AuthorizationReq", {"Id": "ID1", "GenChallenge": "ab39eaecd9df0fb9d29fe31d3826510a"}, NS_ISO2)
    assert auth.hex() == "80040152510c408559cf5766cef87dce94ff18e9c1328851e8"
    assert hashlib.sha256(auth).hexdigest() == "dfa9ee6f9112555f38b0dc4216a4bf58cbea9b23048e3d41e22288df0fd2315c"
    emaid = exi.encode_fragment("eMAID", {"Id": "ID4", "value": "DEABC123456789Y"}, NS_ISO2)
    assert hashlib.sha256(emaid).hexdigest() == "7c5ca09e4db9d98d47ab41052675c808dbe5a43c915b5f024cba623b6bbda622"


def test_fragment_of_an_undeclared_element_is_an_encode_error():
    with pytest.raises(exi.ExiEncodeError):
        exi.encode_fragment("NoSuchElement", {}, NS_ISO2)


# ------------------------------------------------------------------ signed here, checked
def _key_and_cert(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.DER).hex()


def _msg(name: str, body: dict, sig: dict | None = None) -> dict:
    header = {"SessionID": "0102030405060708"}
    if sig:
        header["Signature"] = sig
    return {"V2G_Message": {"Header": header, "Body": {name: body}}}


def _session(contract_der_hex: str | None, auth: dict) -> dict | None:
    """PaymentDetailsReq (when a contract certificate is given), then the AuthorizationReq,
    through the real encoder and V2G decoder; the AuthorizationReq's info["signature"]."""
    ch = V2gChannel()
    ch.namespace = NS_ISO2
    if contract_der_hex:
        pd = _msg("PaymentDetailsReq", {"eMAID": "DESIMC0NTRACT01",
                                        "ContractSignatureCertChain": {"Certificate": contract_der_hex}})
        ch.decode(exi.encode(pd, NS_ISO2), 0x8001, 10)
    got = ch.decode(exi.encode(auth, NS_ISO2), 0x8001, 12)
    assert got.error is None
    return got.notes.get("signature")


AUTH = {"Id": "ID1", "GenChallenge": "00112233445566778899aabbccddeeff"}


def test_a_correct_signature_verifies_through_the_decoder():
    key, der = _key_and_cert("DESIMC0NTRACT01")
    sig = _session(der, _msg("AuthorizationReq", AUTH, signature([reference("AuthorizationReq", AUTH, NS_ISO2)], key)))
    assert sig["valid"] is True and sig["signer"]["role"] == "contract" and sig["signer"]["frame"] == 10
    assert [r["status"] for r in sig["references"]] == ["ok"]


def test_a_flipped_signature_byte_is_invalid():
    key, der = _key_and_cert("DESIMC0NTRACT01")
    s = signature([reference("AuthorizationReq", AUTH, NS_ISO2)], key)
    v = bytearray.fromhex(s["SignatureValue"]["value"])
    v[5] ^= 0x01
    s["SignatureValue"]["value"] = v.hex()
    sig = _session(der, _msg("AuthorizationReq", AUTH, s))
    assert sig["valid"] is False and "does not verify" in sig["reason"]
    assert [r["status"] for r in sig["references"]] == ["ok"]


def test_a_changed_signed_element_is_a_digest_mismatch():
    key, der = _key_and_cert("DESIMC0NTRACT01")
    s = signature([reference("AuthorizationReq", AUTH, NS_ISO2)], key)
    other = dict(AUTH, GenChallenge="ffeeddccbbaa99887766554433221100")
    sig = _session(der, _msg("AuthorizationReq", other, s))
    assert sig["valid"] is True                     # SignedInfo itself is intact
    (ref,) = sig["references"]
    assert ref["status"] == "mismatch" and ref["element"] == "AuthorizationReq"
    assert ref["computed"] != ref["carried"]


def test_a_signature_by_another_key_is_invalid_and_names_the_expected_signer():
    key, _ = _key_and_cert("someone else")
    _, der = _key_and_cert("DESIMC0NTRACT01")
    sig = _session(der, _msg("AuthorizationReq", AUTH, signature([reference("AuthorizationReq", AUTH, NS_ISO2)], key)))
    assert sig["valid"] is False and "CN=DESIMC0NTRACT01" in sig["signer"]["subject"]


def test_without_a_contract_certificate_the_signature_is_not_checked():
    key, _ = _key_and_cert("DESIMC0NTRACT01")
    sig = _session(None, _msg("AuthorizationReq", AUTH, signature([reference("AuthorizationReq", AUTH, NS_ISO2)], key)))
    assert sig["valid"] is None and sig["signer"] is None and "no contract certificate" in sig["reason"]


def test_verify_signed_info_reports_length_and_method():
    _, der = _key_and_cert("x")
    ok, why = verify_signed_info(b"abc", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", b"\0" * 10, bytes.fromhex(der))
    assert ok is False and "10 octets" in why
    ok, why = verify_signed_info(b"abc", "urn:nope", b"\0" * 64, bytes.fromhex(der))
    assert ok is None and "urn:nope" in why


_junk = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                               st.sampled_from(["#ID1", "ID1", "zz", "00" * 32])),
                     lambda c: st.one_of(st.lists(c, max_size=3),
                                         st.dictionaries(st.sampled_from(
                                             ["SignedInfo", "Reference", "URI", "DigestMethod", "Algorithm",
                                              "DigestValue", "Transforms", "Transform", "SignatureValue",
                                              "SignatureMethod", "value", "Id"]), c, max_size=4)),
                     max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(_junk)
def test_hostile_signature_headers_never_raise(sig):
    tree = _msg("AuthorizationReq", {"Id": "ID1", "GenChallenge": "00" * 16}, None)
    tree["V2G_Message"]["Header"]["Signature"] = sig if isinstance(sig, dict) else {"SignedInfo": sig}
    got = check_references(tree, NS_ISO2)
    assert got is None or isinstance(got["references"], list)


def test_iso20_pnc_signature_verifies_with_p521_and_sha512():
    """The simulator's ISO 15118-20 Plug & Charge AuthorizationReq: PnC_AReqAuthorizationMode
    digested with SHA-512 over its -20 EXI fragment, SignedInfo signed with ECDSA secp521r1
    (r‖s, 132 octets) by the contract certificate the message carries."""
    from pathlib import Path

    from ccs_analyzer.samples.build import capture_path
    samples = Path(__file__).resolve().parents[2] / "samples"
    (ev,) = _signed_events(capture_path("iso20_dc_pnc", samples))
    sig = ev.info["signature"]
    assert ev.name == "AuthorizationReq" and sig["valid"] is True, sig["reason"]
    assert sig["method"].endswith("#ecdsa-sha512") and len(bytes.fromhex(sig["value"])) == 132
    assert [(r["element"], r["status"], r["algorithm"].rsplit("#", 1)[1]) for r in sig["references"]] == \
        [("PnC_AReqAuthorizationMode", "ok", "sha512")]
    assert sig["signer"]["role"] == "contract" and sig["signer"]["frame"] == ev.frame


def test_simulated_sales_tariff_and_certificate_installation_name_their_signers():
    """The signers the standard names, found in the simulator's sessions: the MO Sub-CA 2 of
    the contract chain for a SalesTariff (found among the session's certificates), the OEM
    provisioning certificate and the CPS leaf for a certificate installation (-2 and -20)."""
    from pathlib import Path

    from ccs_analyzer.samples.build import capture_path
    samples = Path(__file__).resolve().parents[2] / "samples"

    def signers(name):
        return [(e.name, e.info["signature"]["signer"]["role"], e.info["signature"]["valid"])
                for e in _signed_events(capture_path(name, samples))]
    assert ("ChargeParameterDiscoveryRes", "contract sub-CA", True) in signers("iso2_dc_pnc_signed_sales_tariff")
    for name, cps in (("iso2_dc_pnc_certificate_installation", "CPS (SA provisioning)"),
                      ("iso20_dc_pnc_certificate_installation", "CPS")):
        got = signers(name)
        assert ("CertificateInstallationReq", "OEM provisioning", True) in got
        assert ("CertificateInstallationRes", cps, True) in got
