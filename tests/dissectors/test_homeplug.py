"""Tests of ccs_analyzer.dissectors.homeplug: hand-built MMEs for every message with a field
table, truncated and garbage input, names, and the real corpus against its reference decodes
(../shared/corpus/golden, skipped when absent)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from ccs_analyzer.dissectors.homeplug import (
    LAYOUTS,
    SLAC_MMTYPES,
    VENDOR_LAYOUTS,
    Mme,
    decode_mme,
    direction_hint,
    mmtype_name,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import GOLDEN

EV_MAC = bytes.fromhex("0465650064c3")
EVSE_MAC = bytes.fromhex("dc0ea1116708")
RUN_ID = bytes.fromhex("0465650064c30000")
NID = bytes.fromhex("bc90751a5e390e")
NMK = bytes.fromhex("3b1fe4cc1bb8f8b8484096dc2eb59e8b")
AAG = bytes(range(5, 5 + 58))


def mme(mmtype: int, body: bytes, mmv: int = 1, fmi: bytes = b"\0\0", oui: str | None = None,
        pad: bool = True) -> bytes:
    """MMV, MMTYPE (LE), FMI (MMV >= 1), OUI (vendor), body; padded to the 46-byte minimum
    Ethernet payload like real frames."""
    out = bytes([mmv]) + struct.pack("<H", mmtype) + (fmi if mmv else b"")
    out += bytes.fromhex(oui) if oui else b""
    out += body
    return out + bytes(max(0, 46 - len(out))) if pad else out


def ok(payload: bytes) -> Mme:
    m = decode_mme(payload)
    assert m.error is None, m.error
    return m


# ------------------------------------------------------------------------------------------------
# ISO 15118-3 SLAC messages

def test_slac_parm_req():
    m = ok(mme(0x6064, b"\x00\x00" + RUN_ID))
    assert (m.mmv, m.mmtype, m.name, m.fmi, m.oui) == (1, 0x6064, "CM_SLAC_PARM.REQ", "0000", None)
    assert m.fields == {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0, "RunID": "0465650064c30000"}
    assert m.is_slac and m.direction_hint == "EV"


def test_slac_parm_req_qca_layout_zero_cipher_fields_are_not_reported():
    # OPU cm_slac_param_request always carries CipherSuiteSetSize + CipherSuite[1] (zeroed)
    m = ok(mme(0x6064, b"\x00\x00" + RUN_ID + b"\x00" + b"\x00\x00", pad=False))
    assert m.fields == {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0, "RunID": "0465650064c30000"}


def test_slac_parm_req_with_security():
    m = ok(mme(0x6064, b"\x00\x01" + RUN_ID + b"\x02" + struct.pack("<HH", 1, 0x0203)))
    assert m.fields["CipherSuiteSetSize"] == 2
    assert m.fields["CipherSuite"] == [1, 0x0203]


def test_slac_parm_req_with_security_truncated_suites():
    m = decode_mme(mme(0x6064, b"\x00\x01" + RUN_ID + b"\x03" + b"\x01\x00", pad=False))
    assert m.fields["CipherSuite"] == [1]
    assert m.error == "CM_SLAC_PARM.REQ truncated: 13 of 17 bytes (1 of 3 cipher suites)"


def test_slac_parm_cnf():
    body = b"\xff" * 6 + bytes([10, 6, 1]) + EV_MAC + b"\x00\x00" + RUN_ID
    m = ok(mme(0x6065, body))
    assert m.fields == {
        "M-SOUND_TARGET": "ff:ff:ff:ff:ff:ff", "NUM_SOUNDS": 10, "Time_Out": 6, "Time_Out_s": 0.6,
        "RESP_TYPE": 1, "FORWARDING_STA": "04:65:65:00:64:c3", "APPLICATION_TYPE": 0,
        "SECURITY_TYPE": 0, "RunID": "0465650064c30000"}
    assert m.direction_hint == "EVSE"


def test_slac_parm_cnf_with_security():
    body = b"\xff" * 6 + bytes([10, 6, 1]) + EV_MAC + b"\x00\x01" + RUN_ID + b"\x34\x12"
    assert ok(mme(0x6065, body)).fields["CipherSuite"] == 0x1234


def test_start_atten_char_ind():
    m = ok(mme(0x606A, bytes([0, 0, 10, 6, 1]) + EV_MAC + RUN_ID))
    assert m.fields == {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0, "NUM_SOUNDS": 10,
                        "Time_Out": 6, "Time_Out_s": 0.6, "RESP_TYPE": 1,
                        "FORWARDING_STA": "04:65:65:00:64:c3", "RunID": "0465650064c30000"}
    assert m.name == "CM_START_ATTEN_CHAR.IND" and m.is_slac and m.direction_hint == "EV"


def test_mnbc_sound_ind():
    body = b"\x00\x00" + b"VIN0123456789ABCD" + b"\x07" + RUN_ID + bytes(8) + b"\xff" * 16
    m = ok(mme(0x6076, body))
    assert m.fields == {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0,
                        "SenderID": b"VIN0123456789ABCD".hex(), "Cnt": 7,
                        "RunID": "0465650064c30000", "Rnd": "ff" * 16}
    assert m.name == "CM_MNBC_SOUND.IND"


def test_atten_char_ind():
    body = b"\x00\x00" + EV_MAC + RUN_ID + bytes(17) + bytes(17) + bytes([10, 58]) + AAG
    m = ok(mme(0x606E, body))
    assert m.fields["SOURCE_ADDRESS"] == "04:65:65:00:64:c3"
    assert m.fields["SOURCE_ID"] == "00" * 17 and m.fields["RESP_ID"] == "00" * 17
    assert (m.fields["NUM_SOUNDS"], m.fields["NumGroups"]) == (10, 58)
    assert m.fields["AAG"] == list(AAG)
    assert m.fields["AAG_mean_dB"] == pytest.approx(sum(AAG) / 58, abs=5e-4)
    assert m.direction_hint == "EVSE"


def test_atten_char_ind_truncated_example_from_the_contract():
    body = b"\x00\x00" + EV_MAC + RUN_ID + bytes(17) + bytes(17) + bytes([10, 58]) + AAG
    m = decode_mme(mme(0x606E, body)[:5 + 40])
    assert m.name == "CM_ATTEN_CHAR.IND"
    assert m.error == "CM_ATTEN_CHAR.IND truncated: 40 of 110 bytes"
    assert m.fields == {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0,
                        "SOURCE_ADDRESS": "04:65:65:00:64:c3", "RunID": "0465650064c30000",
                        "SOURCE_ID": "00" * 17}


def test_atten_char_ind_groups_cut_short():
    body = b"\x00\x00" + EV_MAC + RUN_ID + bytes(34) + bytes([10, 58]) + AAG[:20]
    m = decode_mme(mme(0x606E, body, pad=False))
    assert m.fields["AAG"] == list(AAG[:20])
    assert m.error == "CM_ATTEN_CHAR.IND truncated: 72 of 110 bytes (20 of 58 groups)"


def test_atten_char_rsp():
    body = b"\x00\x00" + EV_MAC + RUN_ID + bytes(34) + b"\x00"
    m = ok(mme(0x606F, body))
    assert m.fields == {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0,
                        "SOURCE_ADDRESS": "04:65:65:00:64:c3", "RunID": "0465650064c30000",
                        "SOURCE_ID": "00" * 17, "RESP_ID": "00" * 17, "Result": 0}
    assert m.name == "CM_ATTEN_CHAR.RSP" and m.direction_hint == "EV"


def test_atten_profile_ind():
    m = ok(mme(0x6086, EV_MAC + bytes([58, 0]) + AAG))
    assert m.fields["PEV_MAC"] == "04:65:65:00:64:c3"
    assert m.fields["NumGroups"] == 58 and m.fields["AAG"] == list(AAG)
    assert m.name == "CM_ATTEN_PROFILE.IND" and m.direction_hint == "host-modem"


def test_atten_profile_ind_without_groups():
    m = ok(mme(0x6086, EV_MAC + bytes([0, 0])))
    assert m.fields == {"PEV_MAC": "04:65:65:00:64:c3", "NumGroups": 0, "AAG": [],
                        "AAG_mean_dB": None}


def test_validate():
    m = ok(mme(0x6078, bytes([0, 1, 1])))
    assert (m.name, m.fields) == ("CM_VALIDATE.REQ", {"SignalType": 0, "Timer": 1, "Result": 1})
    m = ok(mme(0x6079, bytes([0, 3, 2])))
    assert (m.name, m.fields) == ("CM_VALIDATE.CNF", {"SignalType": 0, "ToggleNum": 3, "Result": 2})
    assert m.is_slac and m.direction_hint == "EVSE"


def _match_body(mvf: int) -> bytes:
    return (b"\x00\x00" + struct.pack("<H", mvf) + bytes(17) + EV_MAC + bytes(17) + EVSE_MAC
            + RUN_ID + bytes(8))


def test_slac_match_req():
    m = ok(mme(0x607C, _match_body(0x3E)))
    assert m.fields == {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0, "MVFLength": 62,
                        "PEV_ID": "00" * 17, "PEV_MAC": "04:65:65:00:64:c3",
                        "EVSE_ID": "00" * 17, "EVSE_MAC": "dc:0e:a1:11:67:08",
                        "RunID": "0465650064c30000"}
    assert m.name == "CM_SLAC_MATCH.REQ" and m.direction_hint == "EV"


def test_slac_match_cnf():
    m = ok(mme(0x607D, _match_body(0x56) + NID + b"\x00" + NMK))
    assert m.fields["MVFLength"] == 86
    assert m.fields["NID"] == NID.hex() and m.fields["NMK"] == NMK.hex()
    assert m.name == "CM_SLAC_MATCH.CNF" and m.direction_hint == "EVSE"


def test_slac_match_cnf_without_nmk():
    m = decode_mme(mme(0x607D, _match_body(0x56) + NID, pad=False))
    assert m.fields["NID"] == NID.hex() and "NMK" not in m.fields
    assert m.error == "CM_SLAC_MATCH.CNF truncated: 73 of 90 bytes"


def test_set_key():
    body = (b"\x01" + b"\xaa" * 4 + bytes(4) + b"\x04" + b"\x00\x00" + b"\x00\x00" + NID
            + b"\x01" + NMK)
    m = ok(mme(0x6008, body))
    assert m.fields == {"KeyType": 1, "MyNonce": "aaaaaaaa", "YourNonce": "00000000", "PID": 4,
                        "PRN": 0, "PMN": 0, "CCoCapability": 0, "NID": NID.hex(), "NewEKS": 1,
                        "NewKey": NMK.hex()}
    assert m.name == "CM_SET_KEY.REQ" and not m.is_slac and m.direction_hint == "host-modem"
    m = ok(mme(0x6009, b"\x01" + bytes.fromhex("b4f1ca65aaaaaaaa") + b"\x04\x02\x01\xff\x00"))
    assert m.fields == {"Result": 1, "MyNonce": "b4f1ca65", "YourNonce": "aaaaaaaa", "PID": 4,
                        "PRN": 0x0102, "PMN": 255, "CCoCapability": 0}


def test_set_key_req_without_new_key():
    body = b"\x01" + bytes(8) + b"\x04\x00\x00\x00\x00" + NID + b"\x01" + NMK[:4]
    m = decode_mme(mme(0x6008, body, pad=False))
    assert m.fields["NewEKS"] == 1 and "NewKey" not in m.fields
    assert m.error == "CM_SET_KEY.REQ truncated: 26 of 38 bytes (NewKey)"


def test_get_key():
    m = ok(mme(0x600C, b"\x00\x01" + NID + b"\xaa" * 4 + b"\x04\x00\x00\x00"))
    assert m.fields == {"RequestType": 0, "RequestedKeyType": 1, "NID": NID.hex(),
                        "MyNonce": "aaaaaaaa", "PID": 4, "PRN": 0, "PMN": 0}
    body = (b"\x00\x01" + bytes.fromhex("6746c9d8") + b"\xaa" * 4 + NID + b"\x01\x04\x00\x00\xff"
            + NMK + bytes(368))
    m = ok(mme(0x600D, body))
    assert m.fields == {"Result": 0, "RequestedKeyType": 1, "MyNonce": "6746c9d8",
                        "YourNonce": "aaaaaaaa", "NID": NID.hex(), "EKS": 1, "PID": 4, "PRN": 0,
                        "PMN": 255, "Key": NMK.hex()}
    refused = ok(mme(0x600D, b"\x01\x01" + bytes(8) + NID + b"\x00\x04\x00\x00\x00"))
    assert refused.fields["Result"] == 1 and "Key" not in refused.fields
    assert refused.name == "CM_GET_KEY.CNF" and refused.direction_hint == "host-modem"


def test_amp_map():
    m = ok(mme(0x601C, struct.pack("<H", 5) + bytes([0x21, 0x43, 0x05])))
    assert m.fields == {"AMLEN": 5, "AMDATA": [1, 2, 3, 4, 5]}
    assert m.name == "CM_AMP_MAP.REQ" and m.direction_hint is None
    m = decode_mme(mme(0x601C, struct.pack("<H", 10) + bytes([0x21]), pad=False))
    assert m.fields["AMDATA"] == [1, 2] and "truncated: 3 of 7 bytes" in m.error
    assert ok(mme(0x601D, b"\x00")).fields == {"ResType": 0}


def test_mmv0_has_no_fmi():
    m = ok(mme(0x6064, b"\x00\x00" + RUN_ID, mmv=0))
    assert m.mmv == 0 and m.fmi is None and m.fields["RunID"] == RUN_ID.hex()


def test_continuation_fragment_is_not_decoded():
    m = decode_mme(mme(0x606E, bytes(60), fmi=b"\x11\x05"))
    assert m.name == "CM_ATTEN_CHAR.IND" and m.fmi == "1105" and m.fields == {}
    assert "fragment 2 of 2" in m.error


def test_unknown_mmv_still_decodes_but_says_so():
    m = decode_mme(mme(0x6064, b"\x00\x00" + RUN_ID, mmv=7))
    assert m.fields["RunID"] == RUN_ID.hex() and "unknown MMV 0x07" in m.error


def test_message_without_field_table():
    m = ok(mme(0x0014, b""))
    assert (m.name, m.fields, m.is_slac, m.direction_hint) == ("CC_DISCOVER_LIST.REQ", {}, False, None)


# ------------------------------------------------------------------------------------------------
# vendor MMEs

def test_vs_sw_ver():
    m = ok(mme(0xA000, b"", mmv=0, oui="00b052"))
    assert (m.name, m.oui, m.fields, m.direction_hint) == ("VS_SW_VER.REQ", "00b052", {}, "host-modem")
    ver = b"MAC-QCA7420-1.4.0.20-00-20171027-CS\x00"
    m = ok(mme(0xA001, bytes([0, 0x20, len(ver)]) + ver + b"\xff" * 9, mmv=0, oui="00b052"))
    assert m.fields == {"MSTATUS": 0, "MDEVICEID": 0x20, "MVERLENGTH": len(ver),
                        "MVERSION": "MAC-QCA7420-1.4.0.20-00-20171027-CS"}


def test_vs_nw_info_mmv0_and_mmv1():
    m = ok(bytes.fromhex("0039a000b05201010203040506070402009848275a3ce401019848275a3ce401"
                         "dc0ea11167080909000000000000"))
    assert m.name == "VS_NW_INFO.CNF" and m.fields["NUMAVLNS"] == 1
    net = m.fields["networks"][0]
    assert (net["NID"], net["SNID"], net["TEI"], net["ROLE"], net["CCO_MAC"]) == (
        "01020304050607", 4, 2, 0, "98:48:27:5a:3c:e4")
    assert net["stations"] == [{"MAC": "98:48:27:5a:3c:e4", "TEI": 1, "BDA": "dc:0e:a1:11:67:08",
                                "AVGTX": 9, "AVGRX": 9}]
    m = ok(bytes.fromhex("0139a0000000b05200003a000001010203040506070000040100000000029848275a"
                         "3ce401000000010000000000046565ffffff020000000465650064c30900000009000000"))
    assert m.fields["SUB_VERSION"] == 0 and m.fields["DATA_LEN"] == 58
    net = m.fields["networks"][0]
    assert (net["SNID"], net["TEI"], net["ROLE"], net["CCO_TEI"], net["NUMSTAS"]) == (4, 1, 2, 1, 1)
    assert net["stations"] == [{"MAC": "04:65:65:ff:ff:ff", "TEI": 2, "BDA": "04:65:65:00:64:c3",
                                "AVGTX": 9, "COUPLING": 0, "AVGRX": 9}]
    m = decode_mme(bytes.fromhex("0139a0000000b05200003a000001010203040506070000"))
    assert "AVLN entry" in m.error


def test_vs_pl_link_status():
    m = ok(mme(0xA0B9, b"\x00\x01", mmv=0, oui="00b052"))
    assert (m.name, m.fields) == ("VS_PL_LINK_STATUS.CNF", {"MSTATUS": 0, "LINKSTATUS": 1})
    assert mmtype_name(0xA0B8, "00b052") == "VS_PL_LINK_STATUS.REQ"


@pytest.mark.parametrize("oui", ["00b052", "000000"])
def test_vs_attenuation_characteristics(oui):
    m = ok(mme(0xA14E, EV_MAC + bytes([58]) + bytes(9) + AAG, mmv=0, oui=oui))
    assert m.name == "VS_ATTENUATION_CHARACTERISTICS.IND"
    assert m.fields["SourceMAC"] == "04:65:65:00:64:c3" and m.fields["AAG"] == list(AAG)
    assert m.direction_hint == "host-modem" and not m.is_slac


def test_vs_cp_state():
    m = ok(mme(0xA22E, bytes(5) + b"\x03" + b"\x05" + struct.pack("<hh", 1000, 8952),
               oui="0080e1"))
    assert m.name == "VS_CP_STATE.IND(ST/IoTecha)"
    assert (m.fields["DutyCycle_pct"], m.fields["Frequency_Hz"], m.fields["Voltage_V"]) == (
        5, 1000, 8.952)
    m = ok(mme(0xA10E, b"\x07" + struct.pack("<hhh", 1000, 53, 9000), oui="0013d7"))
    assert m.name == "VS_CP_STATE.IND(SPiDCOM)"
    assert (m.fields["ChangedMask"], m.fields["Frequency_Hz"], m.fields["DutyCycle_pct"],
            m.fields["Voltage_V"]) == (7, 1000, 5.3, 9.0)


def test_ms_scs_diag():
    txt = b'dSPACE SCS Diag|dsV2Gshark|v1|SCS Diagnostic|{"CP State" : "State_E"}\x00'
    m = ok(mme(0x8002, txt, oui="644d70"))
    assert m.name == "MS_SCS_DIAG.IND(dSPACE)" and m.direction_hint is None
    assert (m.fields["Source"], m.fields["Tool"], m.fields["Version"], m.fields["Info"]) == (
        "dSPACE SCS Diag", "dsV2Gshark", 1, "SCS Diagnostic")
    assert m.fields["JSON"] == {"CP State": "State_E"}
    bad = ok(mme(0x8002, b"a|b|v1|c|" + b"[" * 100000, oui="644d70"))
    assert "JSON" not in bad.fields


# ------------------------------------------------------------------------------------------------
# names

@pytest.mark.parametrize("mmtype,oui,name", [
    (0x6064, None, "CM_SLAC_PARM.REQ"), (0x6065, None, "CM_SLAC_PARM.CNF"),
    (0x606A, None, "CM_START_ATTEN_CHAR.IND"), (0x606F, None, "CM_ATTEN_CHAR.RSP"),
    (0x6086, None, "CM_ATTEN_PROFILE.IND"), (0x0015, None, "CC_DISCOVER_LIST.CNF"),
    (0x6007, None, "CM_ENCRYPTED_PAYLOAD.RSP"), (0x2008, None, "CP_PROXY_WAKE.REQ"),
    (0x4011, None, "NN_REL_NET.CNF"), (0x6002, None, "CM_UNASSOCIATED_STA.IND"),
    (0x6088, None, "UNKNOWN_0x6088"),
    (0xA000, "00b052", "VS_SW_VER.REQ"), (0xA039, "00b052", "VS_NW_INFO.CNF"),
    (0xA14E, "00b052", "VS_ATTENUATION_CHARACTERISTICS.IND"),
    (0xA22E, "0080e1", "VS_CP_STATE.IND(ST/IoTecha)"), (0xA10E, "0013d7", "VS_CP_STATE.IND(SPiDCOM)"),
    (0x8002, "644d70", "MS_SCS_DIAG.IND(dSPACE)"),
    (0xA123, "00b052", "VS_0xA123(Qualcomm Atheros)"), (0x8123, "123456", "MS_0x8123(OUI 123456)"),
    (0xAC6C, "0080e1", "VS_0xAC6C(STMicroelectronics)"),
])
def test_mmtype_name(mmtype, oui, name):
    assert mmtype_name(mmtype, oui) == name


def test_every_layout_is_named_by_mmtype_name():
    for mmtype, layout in LAYOUTS.items():
        assert mmtype_name(mmtype) == layout.name
    for (mmtype, oui), layout in VENDOR_LAYOUTS.items():
        assert mmtype_name(mmtype, oui) == layout.name


def test_is_slac_set_is_the_iso_15118_3_messages():
    assert {mmtype_name(t) for t in SLAC_MMTYPES} == {
        "CM_SLAC_PARM.REQ", "CM_SLAC_PARM.CNF", "CM_START_ATTEN_CHAR.IND", "CM_MNBC_SOUND.IND",
        "CM_ATTEN_CHAR.IND", "CM_ATTEN_CHAR.RSP", "CM_ATTEN_PROFILE.IND", "CM_VALIDATE.REQ",
        "CM_VALIDATE.CNF", "CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF"}
    assert direction_hint(0x0014) is None and direction_hint(0xA000, "00b052") == "host-modem"


# ------------------------------------------------------------------------------------------------
# truncated and garbage input

@pytest.mark.parametrize("n,error", [
    (0, "MME header truncated: 0 of 3 bytes"), (2, "MME header truncated: 2 of 3 bytes"),
    (4, "MME header truncated: 4 of 5 bytes (MMV 1 has FMI)")])
def test_header_truncated(n, error):
    m = decode_mme(mme(0x6064, b"\x00\x00" + RUN_ID)[:n])
    assert m.error == error and m.fields == {}


def test_vendor_header_truncated():
    m = decode_mme(bytes.fromhex("0000a000b0"))
    assert m.error == "vendor MME header truncated: 5 of 6 bytes (OUI)" and m.oui is None


def test_not_bytes():
    assert decode_mme(None).error.startswith("not a byte string")
    assert decode_mme(bytearray(mme(0x6064, b"\x00\x00" + RUN_ID))).fields["RunID"] == RUN_ID.hex()
    assert decode_mme(memoryview(mme(0x6064, b"\x00\x00" + RUN_ID))).fields["RunID"] == RUN_ID.hex()


_FULL = {  # one complete, valid body per decoded message (body only)
    0x6064: b"\x00\x01" + RUN_ID + b"\x01\x01\x00",
    0x6065: b"\xff" * 6 + bytes([10, 6, 1]) + EV_MAC + b"\x00\x01" + RUN_ID + b"\x01\x00",
    0x606A: bytes([0, 0, 10, 6, 1]) + EV_MAC + RUN_ID,
    0x6076: bytes(52),
    0x606E: bytes(50) + bytes([10, 58]) + AAG,
    0x606F: bytes(51),
    0x6086: EV_MAC + bytes([58, 0]) + AAG,
    0x6078: bytes(3), 0x6079: bytes(3),
    0x607C: _match_body(0x3E), 0x607D: _match_body(0x56) + NID + b"\x00" + NMK,
    0x6008: b"\x01" + bytes(20) + b"\x01" + NMK, 0x6009: bytes(14),
    0x600C: b"\x00\x04" + bytes(15) + bytes(384), 0x600D: b"\x00\x01" + bytes(20) + NMK,
    0x601C: b"\x04\x00\x21\x43", 0x601D: b"\x00",
}


@pytest.mark.parametrize("mmtype", sorted(_FULL))
def test_every_truncation_of_every_slac_layout(mmtype):
    full = mme(mmtype, _FULL[mmtype], pad=False)
    complete = decode_mme(full)
    assert complete.error is None and complete.fields
    for cut in range(len(full)):
        m = decode_mme(full[:cut])
        assert m.error, (hex(mmtype), cut)
        if cut >= 5:
            assert m.name == LAYOUTS[mmtype].name
            assert "truncated" in m.error
            # whatever was read agrees with the complete decode
            for k, v in m.fields.items():
                if k not in ("AAG", "AAG_mean_dB", "CipherSuite", "AMDATA", "HASHKEY", "Key"):
                    assert complete.fields[k] == v, (k, cut)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data):
    m = decode_mme(data)
    assert isinstance(m, Mme) and isinstance(m.fields, dict)
    assert isinstance(m.name, str) and (m.error is None or isinstance(m.error, str))


_KNOWN_HEADERS = ([mme(t, b"", pad=False) for t in LAYOUTS]
                  + [mme(t, b"", mmv=0, pad=False) for t in LAYOUTS]
                  + [mme(t, b"", mmv=m, oui=o, pad=False)
                     for (t, o) in VENDOR_LAYOUTS for m in (0, 1)])


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(_KNOWN_HEADERS), st.binary(max_size=500))
def test_random_bodies_of_known_messages_never_raise(header, body):
    m = decode_mme(header + body)
    assert isinstance(m.fields, dict)
    json.dumps(m.fields)        # every value is plain data


# ------------------------------------------------------------------------------------------------
# the real corpus against the reference decodes


#: reference (snake_case) field name → ours (the standard's)
REF_TO_OURS = {
    "application_type": "APPLICATION_TYPE", "security_type": "SECURITY_TYPE", "run_id": "RunID",
    "cipher_suite_set_size": "CipherSuiteSetSize", "msound_target": "M-SOUND_TARGET",
    "num_sounds": "NUM_SOUNDS", "time_out": "Time_Out", "resp_type": "RESP_TYPE",
    "forwarding_sta": "FORWARDING_STA", "sender_id": "SenderID", "cnt": "Cnt", "rnd": "Rnd",
    "source_address": "SOURCE_ADDRESS", "source_id": "SOURCE_ID", "resp_id": "RESP_ID",
    "num_groups": "NumGroups", "aag": "AAG", "aag_mean_db": "AAG_mean_dB", "result": "Result",
    "pev_mac": "PEV_MAC", "mvf_length": "MVFLength", "pev_id": "PEV_ID", "evse_id": "EVSE_ID",
    "evse_mac": "EVSE_MAC", "nid": "NID", "nmk": "NMK", "signal_type": "SignalType",
    "timer": "Timer", "toggle_num": "ToggleNum", "key_type": "KeyType", "my_nonce": "MyNonce",
    "your_nonce": "YourNonce", "pid": "PID", "prn": "PRN", "pmn": "PMN",
    "cco_capability": "CCoCapability", "new_eks": "NewEKS", "new_key": "NewKey",
    "amlen": "AMLEN", "amdata": "AMDATA", "res_type": "ResType",
    # vendor MMEs (reference names after dsV2Gshark)
    "source_mac": "SourceMAC", "duty_cycle_pct": "DutyCycle_pct", "frequency_hz": "Frequency_Hz",
    "voltage_v": "Voltage_V", "changed_mask": "ChangedMask", "text": "Text", "source": "Source",
    "tool": "Tool", "version": "Version", "info": "Info", "json": "JSON",
}


def compare_row(row: dict) -> tuple[bool, bool, str | None]:
    """(name equal, fields equal, first difference) for one reference "slac" row."""
    m = decode_mme(bytes.fromhex(row["hex"]))
    if m.name != row["mmtype_name"]:
        return False, False, f"name {m.name!r} != {row['mmtype_name']!r}"
    ref = row.get("decoded") or {}
    for k, want in ref.items():
        if k == "parse_error":
            if not (m.error and "truncated" in m.error):
                return True, False, f"reference: {want}; ours: {m.error}"
            continue
        ours = REF_TO_OURS[k]
        if ours not in m.fields:
            return True, False, f"{k}: missing ({ours}); error {m.error}"
        got = m.fields[ours]
        if k == "version" and isinstance(got, int):
            got = f"v{got}"
        if got != want:
            return True, False, f"{k}: {got!r} != {want!r}"
    if "parse_error" not in ref and "parse_error" not in row and m.error:
        return True, False, f"unexpected error {m.error}"
    return True, True, None


def corpus_agreement(golden: Path = GOLDEN) -> dict:
    """Counts over every "slac" row of every golden file: rows, names equal, rows with reference
    fields, fields equal; and the first differences."""
    res = {"rows": 0, "names": 0, "field_rows": 0, "fields": 0, "diffs": []}
    for path in sorted(golden.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("kind") != "slac" or "hex" not in row or "mmtype_name" not in row:
                continue
            name_ok, fields_ok, diff = compare_row(row)
            res["rows"] += 1
            res["names"] += name_ok
            if row.get("decoded"):
                res["field_rows"] += 1
                res["fields"] += fields_ok
            if diff:
                res["diffs"].append(f"{path.name} frame {row['frame']}: {diff}")
    return res


def _golden_files():
    if not GOLDEN.is_dir():
        return []
    return sorted(p.name for p in GOLDEN.glob("*.jsonl"))


@pytest.mark.parametrize("name", _golden_files() or ["(no corpus)"])
def test_corpus_against_reference(name):
    if not GOLDEN.is_dir():
        pytest.skip("../shared/corpus/golden is absent")
    diffs, rows = [], 0
    for line in (GOLDEN / name).read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") != "slac" or "hex" not in row:
            continue
        rows += 1
        name_ok, fields_ok, diff = compare_row(row)
        if diff:
            diffs.append(f"frame {row['frame']} {row['mmtype_name']}: {diff}")
    if not rows:
        pytest.skip("no HomePlug messages in this capture")
    assert not diffs, f"{len(diffs)} of {rows} rows differ: " + "; ".join(diffs[:5])
