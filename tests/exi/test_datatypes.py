"""Typed values (EXI 1.0 §7.1, §7.2) against hand-worked bit patterns."""
from __future__ import annotations

import pytest

from ccs_analyzer.dissectors.exi.bitstream import BitWriter, Malformed
from ccs_analyzer.dissectors.exi.datatypes import decode_value, encode_value, runtime_datatype
from ccs_analyzer.dissectors.exi.errors import ExiEncodeError


def encoded_bits(dt, value) -> str:
    w = BitWriter()
    encode_value(dt, value, w, "x")
    n = 8 * len(w._out) + w._n
    v = int.from_bytes(w.getvalue(), "big") >> ((-n) & 7)
    return format(v, f"0{n}b") if n else ""


def decoded(dt, bitstring: str):
    s = bitstring.replace(" ", "")
    value, pos = decode_value(int(s, 2), len(s), 0, dt)
    assert pos == len(s)
    return value


CASES = [
    # §7.1.9 n-bit: unitMultiplierType (byte, -3..3) is 3 bits offset by -3
    (("nbit", -3, 3), -1, "010"),
    (("nbit", 0, 255), 200, "11001000"),
    (("nbit", 5, 5), 5, ""),                       # a single value needs no bits
    # §7.1.2 boolean
    (("bool",), True, "1"),
    # §7.2 enumeration: index in schema order, ceil(log2(count)) bits
    (("enum", ("h", "m", "s", "g", "A")), "g", "011"),
    # §7.1.6 / §7.1.5
    (("uint",), 1000, "11101000 00000111"),
    (("int",), -1000, "1 11100111 00000111"),      # magnitude 999
    # §7.3.3 string value: length + 2, then code points
    (("string",), "V", "00000011 01010110"),
    # §7.1.1 binary, shown as lowercase hex in the tree
    (("hex",), "0aff", "00000010 00001010 11111111"),
    (("base64",), "", "00000000"),
    # §7.1.3 decimal: sign, integral part, fractional digits reversed ("05" -> 50)
    (("decimal",), "-12.05", "1 00001100 00110010"),
    (("decimal",), "3.0", "0 00000011 00000000"),
    # §7.1.4 float: mantissa and base-10 exponent as Integers; -2^14 marks INF/-INF/NaN
    (("float",), "15E-1", "0 00001111 1 00000000"),
    (("float",), "-INF", "1 00000000 1 11111111 01111111"),
    # §7.1.8 dateTime: year-2000 (Integer), month*32+day (9 bits), (h*64+m)*64+s (17 bits),
    # fraction present + digits reversed, time zone present + (h*64+m)+896 (11 bits)
    (("datetime", "dateTime"), "2024-05-06T07:08:09.5Z",
     "0 00011000  010100110  00111001000001001  1 00000101  1 01110000000"),
    (("datetime", "gDay"), "---17", "000010001 0"),
    (("datetime", "time"), "23:59:60-05:30", "10111111011111100 0 1 01000100010"),
    # §7.1.11 list: item count, then the items
    (("list", ("uint",)), "1 2", "00000010 00000001 00000010"),
]


@pytest.mark.parametrize("spec, value, bitstring", CASES, ids=[f"{c[0][0]}:{c[1]}" for c in CASES])
def test_hand_worked(spec, value, bitstring):
    dt = runtime_datatype(spec)
    assert encoded_bits(dt, value) == bitstring.replace(" ", "")
    if bitstring.replace(" ", ""):
        assert decoded(dt, bitstring) == value


def test_nan_and_inf():
    dt = runtime_datatype(("float",))
    for v in ("INF", "-INF", "NaN"):
        assert decoded(dt, encoded_bits(dt, v)) == v


@pytest.mark.parametrize("spec, value, reason", [
    (("nbit", -3, 3), 4, "outside"),
    (("nbit", 0, 255), True, "integer"),
    (("uint",), -1, "non-negative"),
    (("enum", ("a", "b")), "c", "not one of"),
    (("string",), 5, "string"),
    (("hex",), "xyz", "hex"),
    (("bool",), 1, "boolean"),
    (("decimal",), "1.2.3", "decimal"),
    (("datetime", "date"), "yesterday", "date"),
])
def test_encode_rejects(spec, value, reason):
    with pytest.raises(ExiEncodeError, match=reason):
        encoded_bits(runtime_datatype(spec), value)


def test_enumeration_index_out_of_range():
    dt = runtime_datatype(("enum", ("a", "b", "c")))
    with pytest.raises(Malformed, match="out of range"):
        decoded(dt, "11")
