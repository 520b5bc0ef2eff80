"""Bit-level primitives (EXI 1.0 §7.1) against hand-worked examples."""
from __future__ import annotations

import pytest

from ccs_analyzer.dissectors.exi.bitstream import (BitWriter, Malformed, read_binary, read_bits,
                                                   read_chars, read_int, read_string, read_uint,
                                                   read_value_string)


def bits(s: str) -> tuple[int, int]:
    """'0101 1' → (big, end) as the decoder holds a stream."""
    s = s.replace(" ", "")
    return int(s, 2) if s else 0, len(s)


def written(fn) -> str:
    """Bits a BitWriter call sequence produces (before padding)."""
    w = BitWriter()
    fn(w)
    n = w._n + 8 * len(w._out)
    v = int.from_bytes(w.getvalue(), "big") >> ((-n) & 7)
    return format(v, f"0{n}b") if n else ""


# §7.1.9 n-bit unsigned integer: most significant bit first
def test_nbit():
    big, end = bits("101 0011")
    assert read_bits(big, end, 0, 3) == (5, 3)
    assert read_bits(big, end, 3, 4) == (3, 7)
    assert read_bits(big, end, 0, 0) == (0, 0)
    assert written(lambda w: (w.bits(5, 3), w.bits(3, 4))) == "1010011"


# §7.1.6 unsigned integer: 7-bit groups, least significant first, high bit = more follow
@pytest.mark.parametrize("value, octets", [
    (0, "00000000"),
    (1, "00000001"),
    (127, "01111111"),
    (128, "10000000 00000001"),           # 0 | more, then 1
    (300, "10101100 00000010"),           # 300 = 0b10 0101100
    (16384, "10000000 10000000 00000001"),
    (2 ** 64, "10000000 " * 9 + "00000010"),
])
def test_unsigned_integer(value, octets):
    big, end = bits(octets)
    assert read_uint(big, end, 0) == (value, end)
    assert written(lambda w: w.uint(value)) == octets.replace(" ", "")


# §7.1.5 integer: sign bit, then magnitude; negative -n stored as n - 1
@pytest.mark.parametrize("value, stream", [
    (0, "0 00000000"), (5, "0 00000101"), (-1, "1 00000000"), (-128, "1 01111111"),
    (-129, "1 10000000 00000001"),
])
def test_integer(value, stream):
    big, end = bits(stream)
    assert read_int(big, end, 0) == (value, end)
    assert written(lambda w: w.int(value)) == stream.replace(" ", "")


# §7.1.10 string: length, then each code point as an unsigned integer
def test_string_ascii_and_non_ascii():
    stream = "00000011 01000001 01000010 11101001 00000001"  # 3: 'A' 'B' 'é' (233 = 0xE9)
    big, end = bits(stream)
    assert read_string(big, end, 0) == ("ABé", end)
    assert written(lambda w: w.string("ABé")) == stream.replace(" ", "")


def test_code_point_beyond_bmp():
    cp = 0x1F600  # 😀: three octets
    w = BitWriter()
    w.chars(chr(cp))
    big, end = int.from_bytes(w.getvalue(), "big"), 24
    assert read_chars(big, end, 0, 1) == (chr(cp), 24)


# §7.3.3 string value without a table hit: length + 2
def test_value_string_miss_and_forbidden_hits():
    big, end = bits("00000100 01101000 01101001")  # 4 = 2 + 2: "hi"
    assert read_value_string(big, end, 0) == ("hi", end)
    assert written(lambda w: w.value_string("hi")) == "000001000110100001101001"
    for hit in ("00000000", "00000001"):  # local / global hit: the value table is empty
        big, end = bits(hit + "0" * 16)
        with pytest.raises(Malformed, match="value table is empty"):
            read_value_string(big, end, 0)


# §7.1.1 binary: length in octets, then the octets
def test_binary():
    big, end = bits("00000010 10101011 11001101")
    assert read_binary(big, end, 0) == (b"\xab\xcd", end)
    assert written(lambda w: w.binary(b"\xab\xcd")) == "000000101010101111001101"


def test_lengths_are_checked_before_reading():
    """A length claiming more than the stream holds fails at once (no allocation)."""
    big, end = bits("10000000 10000000 10000000 10000000 00010000" + "0" * 40)  # 2^32
    with pytest.raises(Malformed, match="exceeds"):
        read_string(big, end, 0)
    with pytest.raises(Malformed, match="exceeds"):
        read_binary(big, end, 0)


def test_reading_past_the_end_is_an_error():
    big, end = bits("1010")
    with pytest.raises(ValueError):  # the decoder turns this into ExiDecodeError
        read_bits(big, end, 0, 5)
    big, end = bits("10000000")  # continuation bit set, no next octet
    with pytest.raises(ValueError):
        read_uint(big, end, 0)


def test_writer_pads_with_zero_bits():
    w = BitWriter()
    w.bits(0b101, 3)
    assert w.getvalue() == b"\xa0"
    w = BitWriter()
    for i in range(100):  # crosses the internal 64-bit flush several times
        w.bits(i & 1, 1)
    assert w.getvalue() == bytes([0x55] * 12 + [0x50])
