"""The public API: namespaces, errors, message_name, encoder checks."""
from __future__ import annotations

import pytest

from ccs_analyzer.dissectors import exi
from ccs_analyzer.dissectors.exi import (NAMESPACES, NS_APP_PROTOCOL, NS_DIN, NS_ISO2,
                                         NS_ISO20_DC, ExiDecodeError, ExiEncodeError, decode,
                                         encode, message_name)

PRECHARGE = {"V2G_Message": {
    "Header": {"SessionID": "0102030405060708"},
    "Body": {"PreChargeReq": {
        "DC_EVStatus": {"EVReady": True, "EVCabinConditioning": False,
                        "EVRESSConditioning": False, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 55},
        "EVTargetVoltage": {"Multiplier": 0, "Unit": "V", "Value": 400},
        "EVTargetCurrent": {"Multiplier": 0, "Unit": "A", "Value": 2}}}}}


def test_namespaces():
    assert NAMESPACES == (
        "urn:iso:15118:2:2010:AppProtocol", "urn:din:70121:2012:MsgDef",
        "urn:iso:15118:2:2013:MsgDef", "urn:iso:std:iso:15118:-20:CommonMessages",
        "urn:iso:std:iso:15118:-20:AC", "urn:iso:std:iso:15118:-20:DC",
        "urn:iso:std:iso:15118:-20:ACDP", "urn:iso:std:iso:15118:-20:WPT")
    for name in ("NS_ISO20_CM", "NS_ISO20_AC", "NS_ISO20_ACDP", "NS_ISO20_WPT"):
        assert getattr(exi, name) in NAMESPACES


def test_round_trip_and_message_name():
    data = encode(PRECHARGE, NS_DIN)
    assert data[0] == 0x80
    assert decode(data, NS_DIN) == PRECHARGE
    assert message_name(PRECHARGE) == "PreChargeReq"
    assert message_name({"supportedAppProtocolReq": {}}) == "supportedAppProtocolReq"
    assert message_name({"DC_ChargeLoopRes": {}}) == "DC_ChargeLoopRes"
    assert message_name({"V2G_Message": {"Header": {}, "Body": {}}}) == "(empty Body)"


def test_decode_errors_carry_offset_and_state():
    data = encode(PRECHARGE, NS_DIN)
    with pytest.raises(ExiDecodeError) as e:
        decode(data[:-3], NS_DIN)
    err = e.value
    assert isinstance(err, ValueError)
    assert err.bit_offset > 8 and err.state
    assert f"at bit {err.bit_offset}" in str(err) and err.state in str(err)
    assert err.path.startswith("V2G_Message/Body/PreChargeReq") and err.path in str(err)
    with pytest.raises(ExiDecodeError, match="not an EXI stream"):
        decode(b"\x00\x01", NS_DIN)
    with pytest.raises(ExiDecodeError, match="options"):
        decode(b"\xa0\x00", NS_DIN)
    with pytest.raises(ExiDecodeError, match="too short"):
        decode(b"", NS_DIN)
    with pytest.raises(ExiDecodeError, match="no grammar"):
        decode(data, "urn:example")
    # DocContent of SupportedAppProtocol: 2 globals + SE(*) in 2 bits; code 3 is not allowed
    with pytest.raises(ExiDecodeError, match="event code 3 not allowed") as e:
        decode(b"\x80\xc0", NS_APP_PROTOCOL)
    assert e.value.bit_offset == 8 and e.value.state == "DocContent"


def test_cookie_is_accepted():
    data = encode(PRECHARGE, NS_DIN)
    assert decode(b"$EXI" + data, NS_DIN) == PRECHARGE


@pytest.mark.parametrize("tree, path, reason", [
    ({"Nope": {}}, "Nope", "not a global element"),
    ({"a": 1, "b": 2}, "", "exactly one root"),
    ({"V2G_Message": {"Header": {"SessionID": "01"}, "Body": {"PreChargeReq": {"Bogus": 1}}}},
     "V2G_Message/Body/PreChargeReq/Bogus", "not allowed"),
    ({"V2G_Message": {"Header": {"SessionID": "01"}, "Body": {"PreChargeReq": {}}}},
     "V2G_Message/Body/PreChargeReq", "incomplete"),
    ({"V2G_Message": {"Header": {"SessionID": "zz"}, "Body": {}}},
     "V2G_Message/Header/SessionID", "hex"),
    ({"V2G_Message": {"Header": {"SessionID": "01"}, "Body": {"SessionStopRes": {
        "ResponseCode": "NOPE"}}}}, "V2G_Message/Body/SessionStopRes/ResponseCode", "not one of"),
])
def test_encode_errors_name_the_path(tree, path, reason):
    with pytest.raises(ExiEncodeError, match=reason) as e:
        encode(tree, NS_DIN)
    assert e.value.path == path
    assert isinstance(e.value, ValueError)


def test_encode_checks_value_ranges():
    bad = {"V2G_Message": {**PRECHARGE["V2G_Message"], "Body": {"PreChargeReq": {
        **PRECHARGE["V2G_Message"]["Body"]["PreChargeReq"],
        "EVTargetVoltage": {"Multiplier": 4, "Unit": "V", "Value": 1}}}}}
    with pytest.raises(ExiEncodeError, match=r"outside \[-3, 3\]"):
        encode(bad, NS_DIN)
    with pytest.raises(ExiEncodeError, match="no grammar"):
        encode(PRECHARGE, "urn:example")


def test_lists_for_repeatable_elements():
    """maxOccurs > 1 gives a list even with one item; the encoder takes a bare item too."""
    tree = {"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"ServiceDiscoveryRes": {
        "ResponseCode": "OK",
        "PaymentOptionList": {"PaymentOption": ["ExternalPayment"]},
        "ChargeService": {"ServiceID": 1, "ServiceCategory": "EVCharging", "FreeService": False,
                          "SupportedEnergyTransferMode": {"EnergyTransferMode": ["DC_extended"]}}}}}}
    assert decode(encode(tree, NS_ISO2), NS_ISO2) == tree
    bare = {"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"ServiceDiscoveryRes": {
        **tree["V2G_Message"]["Body"]["ServiceDiscoveryRes"],
        "PaymentOptionList": {"PaymentOption": "ExternalPayment"}}}}}
    assert encode(bare, NS_ISO2) == encode(tree, NS_ISO2)


def test_iso20_root_is_the_message():
    tree = {"DC_WeldingDetectionReq": {"Header": {"SessionID": "0102030405060708",
                                                  "TimeStamp": 1700000000},
                                       "EVProcessing": "Finished"}}
    assert decode(encode(tree, NS_ISO20_DC), NS_ISO20_DC) == tree
    assert message_name(tree) == "DC_WeldingDetectionReq"
