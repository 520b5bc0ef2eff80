"""Tests of ccs_analyzer.dissectors.sdp: hand-built datagrams of every SDP payload type, broken
headers, length mismatches, truncated and random input, and the real corpus against its
reference decodes (../shared/corpus/golden, skipped when absent)."""
from __future__ import annotations

import ipaddress
import json
import struct
from pathlib import Path

import pytest
from ccs_analyzer.dissectors.sdp import (
    SECURITY,
    TRANSPORT_PROTOCOL,
    SdpMessage,
    decode_sdp,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import GOLDEN

SECC_IP = ipaddress.IPv6Address("fe80::c690:83ff:fef3:78ba")


def v2gtp(ptype: int, body: bytes, length: int | None = None, version: bytes = b"\x01\xfe") -> bytes:
    return version + struct.pack("!HI", ptype, len(body) if length is None else length) + body


def response_body(port: int = 57122, sec: int = 0x10, tp: int = 0x00) -> bytes:
    return SECC_IP.packed + struct.pack("!H", port) + bytes([sec, tp])


def ok(data: bytes) -> SdpMessage:
    m = decode_sdp(data)
    assert m.error is None and m.header_problems == [], (m.error, m.header_problems)
    return m


# ------------------------------------------------------------------------------------------------
# wired SDP

@pytest.mark.parametrize("sec,tp,want_sec,want_tp", [
    (0x00, 0x00, "TLS", "TCP"), (0x10, 0x00, "NoTLS", "TCP"), (0x10, 0x10, "NoTLS", "UDP"),
    (0x20, 0x01, "reserved(0x20)", "reserved(0x01)")])
def test_request(sec, tp, want_sec, want_tp):
    m = ok(v2gtp(0x9000, bytes([sec, tp])))
    assert (m.payload_type, m.name, m.is_request) == (0x9000, "SDP request", True)
    assert m.fields == {"Security": want_sec, "TransportProtocol": want_tp}


def test_response():
    m = ok(v2gtp(0x9001, response_body()))
    assert (m.name, m.is_request) == ("SDP response", False)
    assert m.fields == {"SECCIPAddress": "fe80::c690:83ff:fef3:78ba", "SECCPort": 57122,
                        "Security": "NoTLS", "TransportProtocol": "TCP"}


def test_request_with_extra_bytes_keeps_them():
    m = ok(v2gtp(0x9000, b"\x10\x00\xab"))
    assert m.fields["extra_hex"] == "ab"


@pytest.mark.parametrize("ptype,body,error", [
    (0x9000, b"\x10", "SDP request truncated: 1 of 2 bytes"),
    (0x9000, b"", "SDP request truncated: 0 of 2 bytes"),
    (0x9001, response_body()[:17], "SDP response truncated: 17 of 20 bytes"),
    (0x9001, response_body()[:19], "SDP response truncated: 19 of 20 bytes"),
])
def test_truncated_body(ptype, body, error):
    m = decode_sdp(v2gtp(ptype, body))
    assert m.error == error


def test_truncated_response_keeps_what_it_read():
    m = decode_sdp(v2gtp(0x9001, response_body()[:19]))
    assert m.fields == {"SECCIPAddress": "fe80::c690:83ff:fef3:78ba", "SECCPort": 57122,
                        "Security": "NoTLS"}


def test_declared_length_longer_than_datagram():
    m = decode_sdp(v2gtp(0x9001, response_body()[:10], length=20))
    assert m.error == ("payload length mismatch: V2GTP header declares 20 bytes, 10 present; "
                       "SDP response truncated: 10 of 20 bytes")


def test_declared_length_shorter_than_datagram():
    m = decode_sdp(v2gtp(0x9000, b"\x10\x00\x00\x00", length=2))
    assert m.fields == {"Security": "NoTLS", "TransportProtocol": "TCP"}
    assert m.error == "payload length mismatch: V2GTP header declares 2 bytes, 4 present"


def test_invalid_header_is_reported_and_body_still_decoded():
    m = decode_sdp(v2gtp(0x9000, b"\x10\x00", version=b"\x02\xfd"))
    assert m.header_problems == ["protocol version 0x02 (expected 0x01)"]
    assert m.error == "invalid V2GTP header: protocol version 0x02 (expected 0x01)"
    assert m.fields["Security"] == "NoTLS"
    m = decode_sdp(v2gtp(0x9000, b"\x10\x00", version=b"\x01\x00"))
    assert m.error.startswith("invalid V2GTP header: inverse protocol version 0x00")


@pytest.mark.parametrize("n", range(8))
def test_no_header(n):
    m = decode_sdp(v2gtp(0x9000, b"\x10\x00")[:n])
    assert (m.payload_type, m.name, m.is_request) == (-1, "no V2GTP header", None)
    assert m.error == f"no V2GTP header: {n} of 8 bytes"


def test_other_payload_types():
    m = decode_sdp(v2gtp(0x8001, b"\x80\x00"))
    assert (m.name, m.is_request, m.fields, m.header_problems) == ("V2GTP 0x8001", None, {}, [])
    assert m.error == ("payload type 0x8001 (EXI (SupportedAppProtocol, DIN 70121, ISO 15118-2)) "
                       "is not an SDP message")
    m = decode_sdp(v2gtp(0x9006, b""))
    assert m.name == "V2GTP 0x9006" and m.header_problems == ["payload type 0x9006 is reserved"]


def test_not_bytes():
    assert decode_sdp(None).error.startswith("not a byte string")
    assert decode_sdp(bytearray(v2gtp(0x9000, b"\x00\x00"))).fields["Security"] == "TLS"


# ------------------------------------------------------------------------------------------------
# wireless and EMSP variants (layouts only known from dsV2Gshark)

def test_wireless_request():
    body = (b"\x00\x00" + struct.pack("!H", 0x0300) + b"\x10" + b"WVWZZZ1KZ0W000001".ljust(20, b"\0")
            + b"DE*ABC*E1234*5".ljust(36, b"\0"))
    m = ok(v2gtp(0x9002, body))
    assert (m.name, m.is_request) == ("SDP request (wireless)", True)
    assert m.fields == {"Security": "TLS", "TransportProtocol": "TCP", "P2PS_PPD": 0x0300,
                        "P2PS_PPD_flags": ["PPD on Infrastructure", "PPD on EV"],
                        "CouplingType": 0x10, "CouplingTypeName": "WPT (IEC 61980)",
                        "EVID": "WVWZZZ1KZ0W000001", "EVSEID": "DE*ABC*E1234*5"}


def test_wireless_response():
    body = response_body(sec=0x00) + b"\x01\x40" + b"DE*ABC*E1234*5".ljust(36, b"\0")
    m = ok(v2gtp(0x9003, body))
    assert (m.name, m.is_request) == ("SDP response (wireless)", False)
    assert m.fields["SECCPort"] == 57122 and m.fields["Security"] == "TLS"
    assert (m.fields["DiagStatus"], m.fields["DiagStatusName"]) == (1, "finished with EVSEID")
    assert (m.fields["CouplingType"], m.fields["CouplingTypeName"]) == (0x40, "conductive manual")
    assert m.fields["EVSEID"] == "DE*ABC*E1234*5"


def test_wireless_truncated():
    m = decode_sdp(v2gtp(0x9002, b"\x00\x00\x01\x00\x10"))
    assert m.error == "SDP request (wireless) truncated: 5 of 61 bytes"
    assert m.fields["CouplingType"] == 0x10 and "EVID" not in m.fields


def test_emsp_request():
    m = ok(v2gtp(0x9004, b"DE-ABC,NL-XYZ\x00"))
    assert (m.name, m.is_request) == ("SDP EMSP request", True)
    assert m.fields == {"EMSPIDs": ["DE-ABC", "NL-XYZ"], "EMSPIDs_hex": b"DE-ABC,NL-XYZ\x00".hex()}
    assert ok(v2gtp(0x9004, b"")).fields == {"EMSPIDs": [], "EMSPIDs_hex": ""}


def test_emsp_response():
    m = ok(v2gtp(0x9005, SECC_IP.packed + struct.pack("!H", 64109) + b"DE-ABC"))
    assert (m.name, m.is_request) == ("SDP EMSP response", False)
    assert m.fields == {"SECCIPAddress": "fe80::c690:83ff:fef3:78ba", "SECCPort": 64109,
                        "EMSPIDs": ["DE-ABC"], "EMSPIDs_hex": b"DE-ABC".hex()}
    m = decode_sdp(v2gtp(0x9005, SECC_IP.packed))
    assert m.error == "SDP EMSP response truncated: 16 of at least 18 bytes"
    assert m.fields == {"SECCIPAddress": "fe80::c690:83ff:fef3:78ba"}


# ------------------------------------------------------------------------------------------------
# random input

@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_never_raise(data):
    m = decode_sdp(data)
    assert isinstance(m, SdpMessage) and isinstance(m.fields, dict)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from([0x9000, 0x9001, 0x9002, 0x9003, 0x9004, 0x9005, 0x8001, 0xA000]),
       st.binary(max_size=80), st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_random_bodies_never_raise(ptype, body, length):
    m = decode_sdp(v2gtp(ptype, body, length))
    json.dumps(m.fields)
    assert (m.error is None) == (length in (None, len(body)) and (
        ptype in (0x9004, 0x9005) and (ptype == 0x9004 or len(body) >= 18)
        or ptype in (0x9000, 0x9001, 0x9002, 0x9003)
        and len(body) >= {0x9000: 2, 0x9001: 20, 0x9002: 61, 0x9003: 58}[ptype]))


# ------------------------------------------------------------------------------------------------
# the real corpus against the reference decodes

_REF_TYPE = {"SDP_REQUEST": "SDP request", "SDP_RESPONSE": "SDP response",
             "SDP_REQUEST_WIRELESS": "SDP request (wireless)",
             "SDP_RESPONSE_WIRELESS": "SDP response (wireless)"}
_SEC = {v: k for k, v in SECURITY.items()}
_TP = {v: k for k, v in TRANSPORT_PROTOCOL.items()}


def _code(table: dict, text: str) -> int:
    return table[text] if text in table else int(text[len("reserved("):-1], 16)


def compare_row(row: dict) -> str | None:
    """None when our decode of a reference "sdp" row equals the reference, else the difference."""
    m = decode_sdp(bytes.fromhex(row["hex"]))
    if "decode_error" in row:      # reference: no V2GTP header
        return None if m.error and "V2GTP header" in m.error else f"expected an error, got {m}"
    f = m.fields
    for k, want in (row.get("decoded") or {}).items():
        if k == "type":
            got = m.name
            want = _REF_TYPE.get(want, want)
        elif k == "security":
            got, want = f.get("Security") and _code(_SEC, f["Security"]), int(want, 16)
        elif k == "security_name":
            got = f.get("Security", "")
            got = "reserved" if got.startswith("reserved") else got
        elif k == "transport_protocol":
            got, want = f.get("TransportProtocol") and _code(_TP, f["TransportProtocol"]), int(want, 16)
        elif k == "transport_name":
            got = f.get("TransportProtocol", "")
            got = "reserved" if got.startswith("reserved") else got
        elif k == "secc_ip":
            got = f.get("SECCIPAddress")
        elif k == "secc_port":
            got = f.get("SECCPort")
        elif k == "extra_hex":
            got = f.get("extra_hex")
        elif k == "length_mismatch":
            got = bool(m.error and "payload length mismatch" in m.error)
            want = True
        elif k == "parse_error":
            got, want = bool(m.error and "truncated" in m.error), True
        else:
            return f"reference field {k} not compared"
        if got != want:
            return f"{k}: {got!r} != {want!r}"
    if m.error and not any(k in (row.get("decoded") or {}) for k in ("length_mismatch", "parse_error")):
        return f"unexpected error {m.error}"
    return None


def corpus_agreement(golden: Path = GOLDEN) -> dict:
    """Counts over every "sdp" row of every golden file: rows, rows equal, first differences."""
    res = {"rows": 0, "equal": 0, "diffs": []}
    for path in sorted(golden.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("kind") != "sdp" or "hex" not in row:
                continue
            res["rows"] += 1
            diff = compare_row(row)
            res["equal"] += diff is None
            if diff:
                res["diffs"].append(f"{path.name} frame {row['frame']}: {diff}")
    return res


def test_corpus_against_reference():
    if not GOLDEN.is_dir():
        pytest.skip("../shared/corpus/golden is absent")
    res = corpus_agreement()
    if not res["rows"]:
        pytest.skip("no SDP datagrams in the corpus")
    assert not res["diffs"], f"{len(res['diffs'])} of {res['rows']} differ: {res['diffs'][:5]}"
