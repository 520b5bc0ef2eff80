"""Whole streams worked out by hand from the spec, and streams with undeclared events.

The synthetic streams of `REFERENCE_ENCODED` were made by the reference codec (EXIficient,
with the same settings as the corpus) from XML written for these tests — none is taken from
a capture. They exercise what real traffic rarely carries: xsi:nil, xsi:type, undeclared
elements, attributes and characters, mixed content, wildcards, empty values.
"""
from __future__ import annotations

import pytest

from ccs_analyzer.dissectors.exi import (NS_APP_PROTOCOL, NS_DIN, ExiEncodeError, decode,
                                         encode)

XSD = "{http://www.w3.org/2001/XMLSchema}"


def test_supported_app_protocol_res_by_hand():
    """§5 header, §8.5.4.1.2 DocContent, §8.5.4.4.1 non-strict code widths, §7.1.9/§7.2.

    header                          10 0 0 0000          0x80
    DocContent: 2 globals + SE(*)   2 bits: Res = 01
    Res type, state 0: [SE(ResponseCode)] + escape      1 bit: 0
    ResponseCode (enum of 3): [CH] + escape = 0, value 2 bits, [EE] + escape = 0
    Res state 1: [SE(SchemaID), EE] + escape            2 bits
    SchemaID (unsignedByte: n-bit, 8 bits): 0, 00000001, 0
    Res state 2: [EE] + escape                          1 bit: 0;  DocEnd: ED, 0 bits
    """
    ok = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}}
    # 01 0 0 00 0 00 0 00000001 0 0 + 4 padding bits
    assert encode(ok, NS_APP_PROTOCOL) == bytes([0x80, 0b01000000, 0b00000000, 0b01000000])
    assert decode(b"\x80\x40\x00\x40", NS_APP_PROTOCOL) == ok
    failed = {"supportedAppProtocolRes": {"ResponseCode": "Failed_NoNegotiation"}}
    # 01 0 0 10 0 01 (EE is code 1 of [SchemaID, EE]) + 7 padding bits
    assert encode(failed, NS_APP_PROTOCOL) == bytes([0x80, 0b01001000, 0b10000000])


def test_bounded_repetition_is_counted():
    """AppProtocol has maxOccurs 20: after the 20th only EE is left and its event code
    shrinks from 2 bits to 1 — a counted state, not 20 copies of the grammar."""
    from ccs_analyzer.dissectors.exi.grammar import next_state
    from ccs_analyzer.dissectors.exi.grammar import OP_EE, P_CHILD, P_KEY, P_OP, load
    g = load(NS_APP_PROTOCOL)
    req = next(p for p in g.document.prods if p[P_KEY] == "supportedAppProtocolReq")
    st, cnt = req[P_CHILD], 0
    for n in range(1, 21):
        st, cnt = next_state(st.prods[0], cnt)       # SE(AppProtocol)
        if n < 20:
            assert (st.n, st.width) == (2, 2) and st.prods[1][P_OP] == OP_EE
        else:
            assert (st.n, st.width) == (1, 1) and st.prods[0][P_OP] == OP_EE
    entry = {"ProtocolNamespace": "urn:x", "VersionNumberMajor": 1, "VersionNumberMinor": 0,
             "SchemaID": 1, "Priority": 1}
    for n in (1, 19, 20):
        tree = {"supportedAppProtocolReq": {"AppProtocol": [entry] * n}}
        assert decode(encode(tree, NS_APP_PROTOCOL), NS_APP_PROTOCOL) == tree
    with pytest.raises(ExiEncodeError, match="not allowed"):
        encode({"supportedAppProtocolReq": {"AppProtocol": [entry] * 21}}, NS_APP_PROTOCOL)


HEAD = {"SessionID": "0102030405060708"}
ANY = XSD + "anyType"

#: (name, reference-encoded stream, decoded tree of V2G_Message, re-encodes identically)
REFERENCE_ENCODED = [
    ("xsi:nil", "809a02004080c1014181c211d540",
     {"Header": HEAD, "Body": {"SessionSetupReq": {"EVCCID": None}}}, True),
    ("xsi:type hexBinary", "809a02004080c1014181c211d4a0038020a0b0",
     {"Header": HEAD, "Body": {"SessionSetupReq": {"EVCCID": {"xsi:type": XSD + "hexBinary",
                                                               "value": "0a0b"}}}}, True),
    ("xsi:type string", "809a02004080c1014181c211d4a004e0768656c6c6f0",
     {"Header": HEAD, "Body": {"SessionSetupReq": {"EVCCID": {"xsi:type": XSD + "string",
                                                               "value": "hello"}}}}, True),
    ("no characters: EE without CH", "809a02004080c1014181c211d400",
     {"Header": HEAD, "Body": {"SessionSetupReq": {"EVCCID": {}}}}, True),
    ("undeclared element (built-in grammar, xsi:type anyType)",
     "809a02004080c1014181c211dd00775726e3a666f6f0645787472614c028006306746578744020a0b0",
     {"Header": HEAD, "Body": {"SessionSetupReq": {"Extra": {"xsi:type": ANY, "value": "text"},
                                                   "EVCCID": "0a0b"}}}, False),
    ("undeclared element with attribute and child",
     "809a02004080c1014181c211d008282d003bab9371d3337b78322bc3a3930a601400300813081989a06"
     "496e6e65724c0280063037850",
     {"Header": HEAD, "Body": {"SessionSetupReq": {
         "EVCCID": "0a0b",
         "Extra": {"xsi:type": ANY, "a": "1", "Inner": [{"xsi:type": ANY, "value": "x"}]}}}}, False),
    ("undeclared attribute", "809a02004080c1014181c211db00775726e3a666f6f0561747472047631008282c00",
     {"Header": HEAD, "Body": {"SessionSetupReq": {"attr": "v1", "EVCCID": "0a0b"}}}, False),
    ("characters not of the declared type (untyped CH)", "809a02004080c1014181c2101100001c0ac2c4c700",
     {"Header": HEAD, "Body": {"CableCheckReq": {"DC_EVStatus": {
         "EVReady": True, "EVCabinConditioning": False, "EVRESSConditioning": False,
         "EVErrorCode": "NO_ERROR", "EVRESSSOC": "abc"}}}}, False),
    ("missing elements (undeclared EE)", "809a02004080c1014181c2101160",
     {"Header": HEAD, "Body": {"CableCheckReq": {"DC_EVStatus": {"EVReady": True}}}}, False),
]



def _cast(type_name: str, value):
    return {"Header": {"SessionID": "0102"}, "Body": {"SessionSetupReq": {
        "EVCCID": {"xsi:type": XSD + type_name, "value": value}}}}


#: xsi:type casts to built-in types whose representations the V2G schemas do not use
#: otherwise (§7.1.3 decimal, §7.1.4 float, §7.1.8 date-time, §7.1.11 list, big integers)
REFERENCE_ENCODED += [
    ("dateTime", "809a00804091d4a00240c298e41305b800", _cast("dateTime", "2024-05-06T07:08:09.5Z"), True),
    ("gDay", "809a00804091d4a002e08800", _cast("gDay", "---17"), True),
    ("decimal", "809a00804091d4a00268619000", _cast("decimal", "-12.05"), True),
    ("double", "809a00804091d4a00280780400", _cast("double", "15E1"), True),
    ("NMTOKENS list", "809a00804091d4a000e030361036203630", _cast("NMTOKENS", "a b c"), True),
    ("integer beyond 64 bits", "809a00804091d4a003ce8cafe78f24efc5ce1f6dfe47718800",
     _cast("integer", -123456789012345678901234567890), True),
]


@pytest.mark.parametrize("name, hexstream, message, identical", REFERENCE_ENCODED,
                         ids=[c[0] for c in REFERENCE_ENCODED])
def test_undeclared_events(name, hexstream, message, identical):
    data = bytes.fromhex(hexstream)
    tree = decode(data, NS_DIN)
    assert tree == {"V2G_Message": message}
    if identical:
        assert encode(tree, NS_DIN) == data
    else:  # schema deviations are decoded, never produced
        with pytest.raises(ExiEncodeError):
            encode(tree, NS_DIN)


def test_signature_with_mixed_content_and_wildcards():
    """xmldsig: CanonicalizationMethod is mixed (text → "value"), SignatureMethod and
    KeyInfo have ##other wildcards whose unknown elements use the built-in grammar."""
    data = bytes.fromhex(
        "809a02004080c1014181c20a81dd5c9b8e98e0c6d69786564207465787440775726e3a7304000800775726"
        "e3a666f6f04416e794c028006303315204236140eeae4dc74c8806000204240c000408080dacf40896caf29"
        "805000c606f4c23e0")
    sig = decode(data, NS_DIN)["V2G_Message"]["Header"]["Signature"]
    info = sig["SignedInfo"]
    assert info["CanonicalizationMethod"] == {"Algorithm": "urn:c", "value": "mixed text"}
    assert info["SignatureMethod"] == {"Algorithm": "urn:s", "HMACOutputLength": 128,
                                       "Any": [{"xsi:type": ANY, "value": "1"}]}
    assert info["Reference"] == [{"URI": "#a", "DigestMethod": {"Algorithm": "urn:d"},
                                  "DigestValue": "000102"}]
    assert sig["SignatureValue"] == {"value": "000102"}
    assert sig["KeyInfo"] == {"KeyName": ["k"], "Key": [{"xsi:type": ANY, "value": "z"}]}
