"""Plug & Charge certificate rules (MSG016-MSG019) on sessions built from events whose
certificates are real X.509 chains (issued by samples/faults_pki.py's test PKI) described by
the V2G layer's own function, as a capture would give them."""
from __future__ import annotations

from ccs_analyzer.dissectors.exi import message_name
from ccs_analyzer.dissectors.v2g import _body
from ccs_analyzer.dissectors.v2g_certificates import describe_v2g_certificates
from ccs_analyzer.samples.faults_pki import _mo_chain

from tests.rules.util import NS_ISO2, analyze_events, iso2, rules_found, script

T0 = 67_225_600.0          # + 1.7e9 (tests/rules/util.ev) = 2026-01-01T00:00:00Z
NOW = 1_700_000_000.0 + T0
DAY = 86400.0
CODES = ("MSG016", "MSG017", "MSG018", "MSG019")


def chain(nb_days: float = -365, na_days: float = 365) -> list[str]:
    """Hex DER of a contract chain (leaf, Sub-CA 2, Sub-CA 1, root), leaf valid from
    ``nb_days`` to ``na_days`` around the session."""
    return _mo_chain(NOW + nb_days * DAY, NOW + na_days * DAY)


def described(events):
    """Give the V2G events ``info["certificates"]`` as dissectors/v2g.py does."""
    for e in events:
        if e.layer == "v2gtp" and e.message:
            certs = describe_v2g_certificates(e.name, _body(e.message, message_name(e.message)))
            if certs:
                e.info["certificates"] = certs
    return events


def pnc(certs: list[str], rc: str = "OK", t0: float = T0):
    req = iso2("PaymentDetailsReq", {"eMAID": "DESIMC0NTRACT01", "ContractSignatureCertChain": {
        "Certificate": certs[0], "SubCertificates": {"Certificate": certs[1:]}}})
    res = iso2("PaymentDetailsRes", {"ResponseCode": rc, "GenChallenge": "00" * 16, "EVSETimeStamp": 0})
    return analyze_events(described(script([(req, res, 0.1, 0.05)], namespace=NS_ISO2, t0=t0)))


def found(a):
    return {c: rules_found(a, c) for c in CODES if rules_found(a, c)}


def test_valid_contract_chain_is_silent():
    assert found(pnc(chain()[:3])) == {}


def test_expired_contract_refused_is_the_evs_fault_only():
    a = pnc(chain(-800, -30)[:3], rc="FAILED_CertificateExpired")
    got = found(a)
    assert set(got) == {"MSG016"}
    (f,) = got["MSG016"]
    assert f.severity == "error" and f.culprit == "EVCC" and len(f.frames) == 2
    assert "expired" in f.synopsis and "30.0 days" in f.synopsis and "FAILED_CertificateExpired" in f.synopsis


def test_expired_contract_accepted_blames_the_secc_too():
    got = found(pnc(chain(-800, -3)[:3], rc="OK"))
    assert set(got) == {"MSG016", "MSG018"}
    (f,) = got["MSG018"]
    assert f.culprit == "SECC" and f.severity == "error" and f.measured == "OK"


def test_not_yet_valid_by_a_minute_is_clock_skew():
    got = found(pnc(chain(60 / DAY, 700)[:3]))
    assert set(got) == {"MSG016"} and got["MSG016"][0].severity == "warning"


def test_implausible_capture_clock_is_info_on_the_capture():
    got = found(pnc(chain()[:3], t0=-1_690_000_000.0))
    assert {f.culprit for f in got["MSG016"]} == {"capture"}
    assert {f.severity for f in got["MSG016"]} == {"info"} and "MSG018" not in got


def test_chain_out_of_order_and_accepted():
    c = chain()
    got = found(pnc([c[0], c[2], c[1]], rc="OK"))
    assert set(got) == {"MSG017", "MSG018"}
    (f,) = got["MSG017"]
    assert f.severity == "error" and f.culprit == "EVCC" and "issued by MO SubCA2 Sim" in f.synopsis


def test_three_sub_certificates_are_one_too_many_in_iso2():
    got = found(pnc(chain()))                      # leaf + Sub-CA 2 + Sub-CA 1 + root
    (f,) = got["MSG017"]
    assert f.severity == "warning" and f.measured == 3 and f.limit == 2
    assert "MSG018" not in got                     # the chain links up: nothing to refuse


def test_expires_soon_must_be_signalled():
    got = found(pnc(chain(-300, 10)[:3], rc="OK"))
    assert set(got) == {"MSG019"}
    assert 9.9 < got["MSG019"][0].measured < 10.1
    assert found(pnc(chain(-300, 10)[:3], rc="OK_CertificateExpiresSoon")) == {}
    assert found(pnc(chain(-300, 30)[:3], rc="OK")) == {}


def test_a_chain_the_secc_delivers_is_the_seccs():
    c = chain(-800, -30)
    req = iso2("CertificateInstallationReq", {"Id": "ID1", "OEMProvisioningCert": chain()[0],
                                              "ListOfRootCertificateIDs": {"RootCertificateID": []}})
    res = iso2("CertificateInstallationRes", {"ResponseCode": "OK",
                                              "SAProvisioningCertificateChain": {
                                                  "Certificate": c[0], "SubCertificates": {"Certificate": c[1:3]}}})
    a = analyze_events(described(script([(req, res, 0.1, 0.05)], namespace=NS_ISO2, t0=T0)))
    (f,) = rules_found(a, "MSG016")
    assert f.culprit == "SECC" and "CertificateInstallationRes.SAProvisioningCertificateChain" in f.synopsis
    assert not rules_found(a, "MSG018")
