"""Message-content rules (MSG001-MSG015): each triggered by a minimal session and silent on
the close case next to it; corpus captures where CORPUS.md shows a content problem."""
from __future__ import annotations

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.analyzer.profile import Profile
from tests.rules.util import (EV, NS_DIN, NS_ISO2, NS_ISO20_AC, NS_ISO20_DC, analyze_events,
                              connection, din, ev, iso2, iso20, pv, rules_found, script)

OK_DC = {"NotificationMaxDelay": 0, "EVSENotification": "None", "EVSEIsolationStatus": "Valid",
         "EVSEStatusCode": "EVSE_Ready"}
OK_AC = {"NotificationMaxDelay": 0, "EVSENotification": "None", "RCD": False}
EV_DC = {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 50}
GC = "ab39eaecd9df0fb9d29fe31d3826510a"
SIG = {"SignedInfo": {}, "SignatureValue": {"value": "00"}}


def x(req, res, gap=0.05, lat=0.02):
    return (req, res, gap, lat)


def setup_iso2(payment="ExternalPayment"):
    return [x(iso2("SessionSetupReq", {"EVCCID": "01"}, "00"),
              iso2("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "ZZ"})),
            x(iso2("ServiceDiscoveryReq", {}),
              iso2("ServiceDiscoveryRes", {"ResponseCode": "OK", "PaymentOptionList": {
                  "PaymentOption": ["ExternalPayment", "Contract"]}})),
            x(iso2("PaymentServiceSelectionReq", {
                "SelectedPaymentOption": payment,
                "SelectedServiceList": {"SelectedService": [{"ServiceID": 1}]}}),
              iso2("PaymentServiceSelectionRes", {"ResponseCode": "OK"}))]


def pnc_auth(req_gc=GC, res_gc=GC, req_id=True):
    body = {"GenChallenge": req_gc}
    if req_id:
        body = {"Id": "ID1", **body}
    return [x(iso2("PaymentDetailsReq", {"eMAID": "DEABC",
                                         "ContractSignatureCertChain": {"Certificate": "00"}}),
              iso2("PaymentDetailsRes", {"ResponseCode": "OK", "GenChallenge": res_gc, "EVSETimeStamp": 0})),
            x(iso2("AuthorizationReq", body),
              iso2("AuthorizationRes", {"ResponseCode": "OK", "EVSEProcessing": "Finished"}))]


def eim_auth(body=None):
    return [x(iso2("AuthorizationReq", body or {}),
              iso2("AuthorizationRes", {"ResponseCode": "OK", "EVSEProcessing": "Finished"}))]


def cpd_dc(param="DC_EVChargeParameter", res_param="DC_EVSEChargeParameter", code="OK",
           schedules=True, mode="DC_extended"):
    res = {"ResponseCode": code, "EVSEProcessing": "Finished"}
    if schedules:
        res["SAScheduleList"] = {"SAScheduleTuple": [{"SAScheduleTupleID": 1, "PMaxSchedule": {
            "PMaxScheduleEntry": [{"RelativeTimeInterval": {"start": 0}, "PMax": pv(11000, "W")}]}}]}
    res[res_param] = {"DC_EVSEStatus": OK_DC, "EVSEMaximumCurrentLimit": pv(200, "A")} \
        if res_param.startswith("DC") else {"AC_EVSEStatus": OK_AC, "EVSEMaxCurrent": pv(16, "A")}
    req = {"RequestedEnergyTransferMode": mode,
           param: {"DC_EVStatus": EV_DC, "EVMaximumCurrentLimit": pv(100, "A"),
                   "EVMaximumVoltageLimit": pv(400, "V")} if param.startswith("DC")
           else {"EAmount": pv(5000, "Wh"), "EVMaxVoltage": pv(400, "V"),
                 "EVMaxCurrent": pv(32, "A"), "EVMinCurrent": pv(5, "A")}}
    return [x(iso2("ChargeParameterDiscoveryReq", req), iso2("ChargeParameterDiscoveryRes", res))]


def cd(receipt=None, current=pv(10, "A"), max_current=pv(200, "A"), **extra):
    res = {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC, "EVSEPresentVoltage": pv(400, "V"),
           "EVSEPresentCurrent": current, "EVSECurrentLimitAchieved": False,
           "EVSEVoltageLimitAchieved": False, "EVSEPowerLimitAchieved": False,
           "EVSEMaximumCurrentLimit": max_current, "EVSEID": "ZZ", "SAScheduleTupleID": 1, **extra}
    if receipt is not None:
        res["ReceiptRequired"] = receipt
    return x(iso2("CurrentDemandReq", {"DC_EVStatus": EV_DC, "EVTargetCurrent": pv(10, "A"),
                                       "EVTargetVoltage": pv(400, "V"), "ChargingComplete": False}),
             iso2("CurrentDemandRes", res))


def metering(signed=True, sid=None):
    body = {"SessionID": sid or "5a3c9e01b2d47f68", "MeterInfo": {"MeterID": "M1", "MeterReading": 12}}
    if signed:
        body = {"Id": "id1", **body}
    msg = iso2("MeteringReceiptReq", body)
    if signed:
        msg["V2G_Message"]["Header"]["Signature"] = SIG
    return x(msg, iso2("MeteringReceiptRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC}))


def stop():
    return [x(iso2("SessionStopReq", {"ChargingSession": "Terminate"}),
              iso2("SessionStopRes", {"ResponseCode": "OK"}))]


def run(exchanges, namespace=NS_ISO2, connections=None, mutate=None, profile=None):
    evs = script(exchanges, namespace=namespace)
    if mutate:
        mutate(evs)
    return analyze_events(evs, connections, profile=profile)


def found(a, code):
    return rules_found(a, code)


def named(evs, name):
    return [e for e in evs if e.name == name]


# --------------------------------------------------------------------------- MSG001
def _undecodable(evs, payload=b"\x80\x9a\x02\x00", name="(undecodable EXI)", error="EXI error at bit 9"):
    e = ev(90, 9.0, "v2gtp", name, EV, None, namespace=NS_ISO2, error=error)
    e.payload, e.payload_type = payload, 0x8001
    evs.append(e)


def test_msg001_undecodable_exi_is_an_error_of_the_sender():
    a = run(setup_iso2(), mutate=_undecodable)
    (f,) = found(a, "MSG001")
    assert f.severity == "error" and f.culprit == "EVCC" and f.frames == [90]


def test_msg001_leaves_framing_errors_and_empty_payloads_to_transport():
    a = run(setup_iso2(), mutate=lambda evs: (_undecodable(evs, name="V2GTP framing error"),
                                              _undecodable(evs, payload=b"")))
    assert not found(a, "MSG001")


# --------------------------------------------------------------------------- MSG002
def _trailing(evs):
    e = named(evs, "PaymentServiceSelectionReq")[0]
    e.info["trailing_bytes"] = {"count": 1, "hex": "00", "note": "…"}


def test_msg002_trailing_bytes_warn_the_sender():
    a = run(setup_iso2(), mutate=_trailing)
    (f,) = found(a, "MSG002")
    assert f.severity == "warning" and f.culprit == "EVCC"
    assert "PaymentServiceSelectionReq" in f.synopsis and "0x00" in f.synopsis


def test_msg002_silent_without_trailing_bytes():
    assert not found(run(setup_iso2()), "MSG002")


# --------------------------------------------------------------------------- MSG003
def _fallback(detected):
    def m(evs):
        e = named(evs, "ServiceDiscoveryRes")[0]
        e.namespace = NS_DIN
        e.info["schema_fallback"] = {"expected": NS_ISO2, "error": "EXI error at bit 3"}
        if detected:
            e.info["namespace_detected"] = True
    return m


def test_msg003_message_in_another_schema_than_negotiated():
    a = run(setup_iso2(), mutate=_fallback(False))
    (f,) = found(a, "MSG003")
    assert f.culprit == "SECC" and f.severity == "error" and NS_DIN in f.synopsis


def test_msg003_not_when_the_schema_was_detected():
    assert not found(run(setup_iso2(), mutate=_fallback(True)), "MSG003")


# --------------------------------------------------------------------------- MSG004
def test_msg004_dc_parameters_for_an_ac_mode():
    a = run(setup_iso2() + eim_auth() + cpd_dc(mode="AC_three_phase_core",
                                               res_param="AC_EVSEChargeParameter"))
    (f,) = found(a, "MSG004")
    assert f.culprit == "EVCC" and "AC_EVChargeParameter" in f.synopsis
    assert "ChargeParameterDiscoveryReq" in f.synopsis


def test_msg004_matching_ac_session_and_failed_response_are_fine():
    a = run(setup_iso2() + eim_auth() +
            cpd_dc(param="AC_EVChargeParameter", mode="AC_three_phase_core",
                   res_param="AC_EVSEChargeParameter"))
    assert not found(a, "MSG004")
    # a FAILED response with the "wrong" minimal content is not judged
    a = run(setup_iso2() + eim_auth() + cpd_dc(res_param="AC_EVSEChargeParameter", code="FAILED"))
    assert not found(a, "MSG004")


def test_msg004_din_ac_parameters_and_iso20_service_mismatch():
    req = din("ChargeParameterDiscoveryReq", {"EVRequestedEnergyTransferType": "DC_extended",
                                              "AC_EVChargeParameter": {"EAmount": pv(1, "Wh")}})
    a = run([x(req, din("ChargeParameterDiscoveryRes", {"ResponseCode": "FAILED_WrongChargeParameter"}))],
            namespace=NS_DIN)
    assert [f.culprit for f in found(a, "MSG004")] == ["EVCC"]
    sel = x(iso20("ServiceSelectionReq", {"SelectedEnergyTransferService": {"ServiceID": 1}}),
            iso20("ServiceSelectionRes", {"ResponseCode": "OK"}))
    dc = (iso20("DC_ChargeParameterDiscoveryReq", {}), iso20("DC_ChargeParameterDiscoveryRes",
                                                             {"ResponseCode": "OK"}), 0.05, 0.02)
    ac = (iso20("AC_ChargeParameterDiscoveryReq", {}), iso20("AC_ChargeParameterDiscoveryRes",
                                                             {"ResponseCode": "OK"}), 0.05, 0.02)
    bad = script([sel, dc], namespace=NS_ISO20_DC, handshake=True)
    for e in bad:
        if e.name.startswith("DC_"):
            e.namespace = NS_ISO20_DC
    f = found(analyze_events(bad), "MSG004")
    assert f and f[0].culprit == "EVCC" and "service 1" in f[0].synopsis
    good = script([sel, ac], namespace=NS_ISO20_AC)
    assert not found(analyze_events(good), "MSG004")


# --------------------------------------------------------------------------- MSG005
def test_msg005_pnc_challenge_must_match_payment_details():
    a = run(setup_iso2("Contract") + pnc_auth(req_gc="00" * 16))
    (f,) = found(a, "MSG005")
    assert f.culprit == "EVCC" and "differs" in f.synopsis
    assert len(f.frames) == 2


def test_msg005_pnc_with_matching_challenge_is_fine():
    assert not found(run(setup_iso2("Contract") + pnc_auth()), "MSG005")


def test_msg005_eim_request_must_not_carry_a_challenge():
    a = run(setup_iso2() + eim_auth({"Id": "ID1", "GenChallenge": GC}))
    (f,) = found(a, "MSG005")
    assert "ExternalPayment" in f.synopsis and f.culprit == "EVCC"
    assert not found(run(setup_iso2() + eim_auth()), "MSG005")


def test_msg005_short_challenge_from_the_secc():
    a = run(setup_iso2("Contract") + pnc_auth(req_gc="ab" * 8, res_gc="ab" * 8))
    culprits = sorted(f.culprit for f in found(a, "MSG005"))
    assert culprits == ["EVCC", "SECC"]


# --------------------------------------------------------------------------- MSG006 / MSG007
def test_msg006_payment_details_after_external_payment():
    a = run(setup_iso2("ExternalPayment") + pnc_auth())
    (f,) = found(a, "MSG006")
    assert "PaymentDetailsReq" in f.synopsis and f.culprit == "EVCC"
    assert not found(run(setup_iso2("Contract") + pnc_auth()), "MSG006")


def test_msg007_contract_over_plain_tcp_but_not_over_tls():
    a = run(setup_iso2("Contract") + pnc_auth())
    (f,) = found(a, "MSG007")
    assert f.severity == "warning" and "Contract" in f.evidence["offered_by_SECC"]
    tls = run(setup_iso2("Contract") + pnc_auth(),
              connections=[connection(0, kind="tls", namespace=NS_ISO2)])
    assert not found(tls, "MSG007")


# --------------------------------------------------------------------------- MSG008-010
def test_msg008_receipt_required_but_ev_goes_on():
    a = run(setup_iso2("Contract") + pnc_auth() + cpd_dc() + [cd(True), cd()] + stop())
    (f,) = found(a, "MSG008")
    assert f.culprit == "EVCC" and "CurrentDemandReq" in f.synopsis


def test_msg008_receipt_sent_is_fine():
    a = run(setup_iso2("Contract") + pnc_auth() + cpd_dc() + [cd(True), metering(), cd()] + stop())
    assert not found(a, "MSG008") and not found(a, "MSG010")


def test_msg009_receipt_required_with_eim():
    a = run(setup_iso2() + eim_auth() + cpd_dc() + [cd(True), cd(True), cd()] + stop())
    (f,) = found(a, "MSG009")
    assert f.culprit == "SECC" and "(2×)" in f.synopsis
    assert not found(a, "MSG008")
    assert not found(run(setup_iso2() + eim_auth() + cpd_dc() + [cd(False)] + stop()), "MSG009")


def test_msg010_unsigned_metering_receipt_in_pnc():
    a = run(setup_iso2("Contract") + pnc_auth() + cpd_dc() + [cd(True), metering(signed=False)])
    (f,) = found(a, "MSG010")
    assert "Id" in f.synopsis and "Signature" in f.synopsis
    a = run(setup_iso2("Contract") + pnc_auth() + cpd_dc() + [cd(True), metering(sid="0102030405060708")])
    (f,) = found(a, "MSG010")
    assert "SessionID" in f.synopsis


def test_msg010_metering_receipt_without_meter_info():
    def drop(evs):
        body = named(evs, "MeteringReceiptReq")[0].message["V2G_Message"]["Body"]
        body["MeteringReceiptReq"].pop("MeterInfo")
    a = run(setup_iso2("Contract") + pnc_auth() + cpd_dc() + [cd(True), metering()], mutate=drop)
    (f,) = found(a, "MSG010")
    assert "MeterInfo" in f.synopsis and f.culprit == "EVCC"


# --------------------------------------------------------------------------- MSG011
def test_msg011_schema_id_and_schedules():
    evs = script(setup_iso2() + eim_auth() + cpd_dc(schedules=False), namespace=NS_ISO2)
    named(evs, "supportedAppProtocolRes")[0].message["supportedAppProtocolRes"].pop("SchemaID")
    a = analyze_events(evs)
    fs = {f.evidence["actual"]: f for f in found(a, "MSG011")}
    assert fs["no SchemaID"].severity == "warning" and fs["no SchemaID"].culprit == "SECC"
    assert fs["no SAScheduleList"].severity == "warning"


def test_msg011_failed_response_without_schedules_is_fine():
    a = run(setup_iso2() + eim_auth() + cpd_dc(schedules=False, code="FAILED_WrongChargeParameter"))
    assert not found(a, "MSG011")
    assert not found(run(setup_iso2() + eim_auth() + cpd_dc()), "MSG011")


# --------------------------------------------------------------------------- MSG012
def din_discovery(tag_extra=None, options=("ExternalPayment",)):
    tag = {"ServiceID": 1, "ServiceCategory": "EVCharging", **(tag_extra or {})}
    return [x(din("ServiceDiscoveryReq", {}),
              din("ServiceDiscoveryRes", {"ResponseCode": "OK", "PaymentOptions": {
                  "PaymentOption": list(options)}, "ChargeService": {"ServiceTag": tag,
                                                                      "FreeService": False,
                                                                      "EnergyTransferType": "DC_extended"}}))]


def test_msg012_din_service_name_and_contract_payment():
    a = run(din_discovery({"ServiceName": "Fast"}, ("ExternalPayment", "Contract")), namespace=NS_DIN)
    what = sorted(f.evidence["actual"] for f in found(a, "MSG012"))
    assert what == ["PaymentOption Contract", "ServiceName 'Fast'"]
    assert all(f.culprit == "SECC" and f.severity == "error" for f in found(a, "MSG012"))


def test_msg012_plain_din_discovery_is_fine():
    assert not found(run(din_discovery(), namespace=NS_DIN), "MSG012")


# --------------------------------------------------------------------------- MSG013-015
def test_msg013_multiplier_and_soc_out_of_schema_range():
    bad = x(iso2("PreChargeReq", {"DC_EVStatus": {**EV_DC, "EVRESSSOC": 120},
                                  "EVTargetVoltage": {"Multiplier": 4, "Unit": "V", "Value": 4},
                                  "EVTargetCurrent": pv(1, "A")}),
            iso2("PreChargeRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC,
                                  "EVSEPresentVoltage": pv(400, "V")}))
    a = run(setup_iso2() + [bad])
    kinds = sorted(f.evidence["element"] for f in found(a, "MSG013"))
    assert kinds == ["EVRESSSOC", "EVTargetVoltage"]
    assert all(f.culprit == "EVCC" for f in found(a, "MSG013"))


def test_msg013_and_msg015_silent_on_normal_values():
    a = run(setup_iso2() + eim_auth() + cpd_dc() + [cd(), cd()] + stop())
    assert not found(a, "MSG013") and not found(a, "MSG015") and not found(a, "MSG014")


def test_msg014_voltage_in_ampere():
    bad = x(iso2("PreChargeReq", {"DC_EVStatus": EV_DC, "EVTargetVoltage": pv(400, "A"),
                                  "EVTargetCurrent": pv(1, "A")}),
            iso2("PreChargeRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC,
                                  "EVSEPresentVoltage": pv(400, "V")}))
    (f,) = found(run(setup_iso2() + [bad]), "MSG014")
    assert "EVTargetVoltage" in f.synopsis and f.limit == "V" and f.culprit == "EVCC"


def test_msg014_din_value_without_unit_is_allowed():
    req = din("PreChargeReq", {"DC_EVStatus": EV_DC, "EVTargetVoltage": {"Multiplier": 0, "Value": 400},
                               "EVTargetCurrent": {"Multiplier": 0, "Value": 1}})
    res = din("PreChargeRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC,
                               "EVSEPresentVoltage": {"Multiplier": 0, "Value": 400}})
    assert not found(run([x(req, res)], namespace=NS_DIN), "MSG014")


ENABLE_MSG015 = Profile(enable={"MSG015"})


def test_msg015_is_opt_in():
    a = run(setup_iso2() + eim_auth() + cpd_dc() + [cd(max_current=pv(500, "A"))] * 3 + stop())
    assert not found(a, "MSG015")


def test_msg015_table68_current_is_one_warning_per_element():
    evs = setup_iso2() + eim_auth() + cpd_dc() + [cd(max_current=pv(500, "A"))] * 3 + stop()
    a = run(evs, profile=ENABLE_MSG015)
    (f,) = found(a, "MSG015")
    assert f.severity == "warning" and f.culprit == "SECC" and f.measured == 500.0
    assert "CurrentDemandRes (3×)" in f.synopsis


# --------------------------------------------------------------------------- MSG021
def discovery(scope):
    return [x(iso2("ServiceDiscoveryReq", {"ServiceScope": scope, "ServiceCategory": "EVCharging"}),
              iso2("ServiceDiscoveryRes", {"ResponseCode": "OK", "PaymentOptionList": {
                  "PaymentOption": ["ExternalPayment"]}}))]


def test_msg021_nul_service_scope_is_not_xml_text():
    a = run(setup_iso2()[:1] + discovery("\x00" * 64) + stop())
    (f,) = found(a, "MSG021")
    assert f.severity == "warning" and f.culprit == "EVCC" and f.category == "message-content"
    assert "ServiceScope" in f.synopsis and "all 64 characters U+0000" in f.synopsis
    assert f.evidence["characters"] == ["U+0000"] and f.evidence["not_xml"] == 64


@pytest.mark.parametrize("text, bad", [("abc\x01", ["U+0001"]), ("a\ud800b", ["U+D800"]),
                                       ("x\ufffe", ["U+FFFE"])])
def test_msg021_other_characters_outside_xml(text, bad):
    (f,) = found(run(setup_iso2()[:1] + discovery(text) + stop()), "MSG021")
    assert f.evidence["characters"] == bad


def test_msg021_xml_text_is_fine():
    for text in ("Internet", "tab\tnew\nline\r", "\u00e9\U0001f600", ""):
        assert not found(run(setup_iso2()[:1] + discovery(text) + stop()), "MSG021")


# --------------------------------------------------------------------------- MSG022
def ev_status_soc(soc):
    return {**EV_DC, "EVRESSSOC": soc}


def placeholder_session(soc0=0, soc1=81, v0=0.0, v1=383.0, pre=2):
    req = {"RequestedEnergyTransferMode": "DC_extended",
           "DC_EVChargeParameter": {"DC_EVStatus": ev_status_soc(soc0),
                                    "EVMaximumCurrentLimit": pv(100, "A"),
                                    "EVMaximumVoltageLimit": pv(400, "V")}}
    res = {"ResponseCode": "OK", "EVSEProcessing": "Finished",
           "SAScheduleList": {"SAScheduleTuple": [{"SAScheduleTupleID": 1, "PMaxSchedule": {
               "PMaxScheduleEntry": [{"RelativeTimeInterval": {"start": 0}, "PMax": pv(11000, "W")}]}}]},
           "DC_EVSEChargeParameter": {"DC_EVSEStatus": OK_DC, "EVSEMaximumCurrentLimit": pv(200, "A"),
                                      "EVSEMinimumVoltageLimit": pv(150, "V")}}
    out = setup_iso2() + [x(iso2("ChargeParameterDiscoveryReq", req), iso2("ChargeParameterDiscoveryRes", res))]
    out += [x(iso2("CableCheckReq", {"DC_EVStatus": ev_status_soc(soc0)}),
              iso2("CableCheckRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC,
                                     "EVSEProcessing": "Finished"}))]
    for i in range(pre):
        soc, v = (soc0, v0) if i == 0 else (soc1, v1)
        out.append(x(iso2("PreChargeReq", {"DC_EVStatus": ev_status_soc(soc), "EVTargetVoltage": pv(v, "V"),
                                           "EVTargetCurrent": pv(0, "A")}),
                     iso2("PreChargeRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_DC,
                                           "EVSEPresentVoltage": pv(v1, "V")})))
    return out + stop()


def test_msg022_soc_and_precharge_target_placeholders():
    a = run(placeholder_session())
    (f,) = found(a, "MSG022")
    assert f.severity == "warning" and f.culprit == "EVCC" and f.category == "message-content"
    assert "EVRESSSOC 0 % in 3 request(s)" in f.synopsis and "then 81 %" in f.synopsis
    assert "EVTargetVoltage 0 V" in f.synopsis and "EVSEMinimumVoltageLimit 150 V" in f.synopsis
    assert not found(a, "PRE002")                # the placeholder is not a change of target


def test_msg022_soc_only_and_target_only():
    (f,) = found(run(placeholder_session(v0=383.0)), "MSG022")
    assert "EVRESSSOC" in f.synopsis and "EVTargetVoltage" not in f.synopsis
    (g,) = found(run(placeholder_session(soc0=81)), "MSG022")
    assert "EVTargetVoltage" in g.synopsis and "EVRESSSOC" not in g.synopsis


def test_msg022_real_values_are_fine():
    assert not found(run(placeholder_session(soc0=81, v0=383.0)), "MSG022")
    assert not found(run(placeholder_session(soc0=0, soc1=3, v0=383.0)), "MSG022")   # a real 0 %
    assert not found(run(placeholder_session(soc0=81, v0=383.0, pre=1)), "MSG022")
    assert not found(run(placeholder_session(soc0=81, v0=0.0, pre=1)), "MSG022")      # never a real one


# --------------------------------------------------------------------------- corpus
_cache: dict = {}


def analysis(corpus, name):
    if name not in _cache:
        _cache[name] = analyze_capture(corpus / name)
    return _cache[name]


MINE = ("MSG", "TLS", "TRN", "CAP")
CLEAN = ["DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng", "ISO-2_AC_DS5366.pcapng",
         "ISO-2_DC_Pause_DS5366.pcapng", "ISO-2_DC_SalesTariffSchedule_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_BatteryDataExchange_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng", "ISO-20_BPT_AC_DS5366_Josev.pcapng",
         "ISO-20_mTLS_DC_DS5366_Josev.pcapng",
         "ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng"]


@pytest.mark.parametrize("name", CLEAN)
def test_corpus_clean_references_get_no_error_from_these_rules(corpus, name):
    a = analysis(corpus, name)
    errors = [f for f in a.findings if f.rule.startswith(MINE) and f.severity == "error"]
    assert errors == []
    # the only content warning a clean reference may get: Table 68 (dSPACE offers 500 A)
    assert {f.rule for f in a.findings if f.rule.startswith("MSG")} <= {"MSG015"}


def test_corpus_model_y_stray_byte_after_the_exi_document(corpus):
    a = analysis(corpus, "2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng")
    (f,) = [f for f in a.findings if f.rule == "MSG002"]
    assert f.frames == [144] and f.culprit == "EVCC" and f.severity == "warning"
    assert "ContractAuthenticationReq" in f.synopsis and "0x00" in f.synopsis


def test_corpus_dspace_dc_table68_current(corpus):
    a = analyze_capture(corpus / "ISO-2_DC_DS5366.pcapng", profile=ENABLE_MSG015)
    (f,) = [f for f in a.findings if f.rule == "MSG015"]
    assert f.culprit == "SECC" and f.measured == 500.0 and f.frames == [101, 2048]


def test_corpus_listen_mode_fragment_is_no_schema_error(corpus):
    a = analysis(corpus, "2025-01-21_listenMode_02_mac_spoofing_some_frames_visible.pcapng")
    assert not [f for f in a.findings if f.rule.startswith("MSG")]


def test_corpus_the_sample_has_no_finding_of_these_rules():
    from tests.conftest import REPO
    a = analyze_capture(REPO / "samples" / "din_dc_session.pcapng")
    assert not [f for f in a.findings if f.rule.startswith(MINE)]


@pytest.mark.parametrize("name", [
    "testevents/logfiles__BMW__iX_fw_11_2022.64__iso_15118-2__2023-03-30T06-29-19.281Z_iso2__ethernet-traffic.dump",
    "testevents/logfiles__BMW__iX_fw_11_2022.64__2023-03-30T06-36-03.571Z_car_stops_soc_too_close_to_target__ethernet-traffic.dump"])
def test_corpus_bmw_service_scope_of_nul(corpus, name):
    (f,) = found(analysis(corpus, name), "MSG021")
    assert f.frames == [53] and f.culprit == "EVCC" and "U+0000" in f.synopsis


@pytest.mark.parametrize("name,frames", [
    ("testevents/logfiles__Seres__2024-01-10T13-18-27.364Z-1_din_spec__ethernet-traffic.dump", {78, 114, 118}),
    ("testevents/logfiles__Seres__2024-01-10T13-30-14.882Z-2_iso2_dc__ethernet-traffic.dump", {72, 104, 108})])
def test_corpus_seres_placeholders(corpus, name, frames):
    a = analysis(corpus, name)
    (f,) = found(a, "MSG022")
    assert frames <= set(f.frames) and f.culprit == "EVCC"
    assert not found(a, "PRE002")
