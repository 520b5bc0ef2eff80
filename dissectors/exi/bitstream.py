"""Bit-packed EXI primitives (EXI 1.0 §7.1, alignment "bit-packed", §9.1).

Reading works on the whole stream held as one Python int ``big`` of ``end`` bits: the
``n`` bits at bit offset ``pos`` are ``(big >> (end - pos - n)) & (2**n - 1)``. Reading past
the end makes that shift negative and raises ValueError, which the decoder reports as an
ExiDecodeError — so no read ever needs its own bounds check, and no length field can make a
reader allocate or loop beyond what the stream holds (lengths are checked against the bits
left before anything is read).

Every reader takes ``(big, end, pos, …)`` and returns ``(value, new_pos)``; malformed input
raises `Malformed` (reason, bit offset). `BitWriter` is the encoder's counterpart.
"""
from __future__ import annotations


class Malformed(Exception):
    """Malformed primitive at ``pos``; the decoder adds the grammar state. ``short`` is set
    when the value only failed because it runs past the bits that were given."""

    def __init__(self, reason: str, pos: int, short: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.pos = pos
        self.short = short


def _too_long(what: str, n: int, left: int, pos: int) -> Malformed:
    return Malformed(f"{what} {n} exceeds the {left} bits left", pos, short=True)


_HIGH_BITS: dict[int, int] = {}


def _high_bits(n: int) -> int:
    """0x8080…80 of n bytes (the continuation / non-ASCII bit of each octet)."""
    m = _HIGH_BITS.get(n)
    if m is None:
        m = int.from_bytes(b"\x80" * n, "big")
        if n <= 512:
            _HIGH_BITS[n] = m
    return m


def read_bits(big: int, end: int, pos: int, n: int) -> tuple[int, int]:
    """n-bit unsigned integer, most significant bit first (§7.1.9)."""
    pos += n
    return (big >> (end - pos)) & ((1 << n) - 1), pos


def read_uint(big: int, end: int, pos: int) -> tuple[int, int]:
    """Unsigned Integer (§7.1.6): 7-bit groups, least significant first, each in an octet
    whose high bit says another octet follows. Any size (beyond 8 octets in linear time)."""
    pos += 8
    b = (big >> (end - pos)) & 0xFF
    if b < 0x80:
        return b, pos
    value = b & 0x7F
    shift = 7
    while shift < 56:
        pos += 8
        b = (big >> (end - pos)) & 0xFF
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    return _read_long_uint(big, end, pos, value, shift)


def _read_long_uint(big: int, end: int, pos: int, value: int, shift: int) -> tuple[int, int]:
    # the rest of an integer longer than 8 octets: one extraction, then byte arithmetic
    left = (end - pos) >> 3
    raw = ((big >> (end - pos - 8 * left)) & ((1 << (8 * left)) - 1)).to_bytes(left, "big")
    stop = next((i for i, b in enumerate(raw) if b < 0x80), -1)
    if stop < 0:
        raise ValueError("negative shift count")  # runs past the end: as any short read
    out = bytearray()
    for k in range(0, stop + 1, 8):
        v = 0
        for i, b in enumerate(raw[k:min(k + 8, stop + 1)]):
            v |= (b & 0x7F) << (7 * i)
        out += v.to_bytes(7, "little")
    return value | (int.from_bytes(out, "little") << shift), pos + 8 * (stop + 1)


def read_int(big: int, end: int, pos: int) -> tuple[int, int]:
    """Integer (§7.1.5): sign bit (1 = negative), then the magnitude as an Unsigned
    Integer; a negative value -n is stored as n - 1."""
    pos += 1
    neg = (big >> (end - pos)) & 1
    v, pos = read_uint(big, end, pos)
    return (-v - 1 if neg else v), pos


def read_chars(big: int, end: int, pos: int, n: int) -> tuple[str, int]:
    """n characters, each a code point as an Unsigned Integer (§7.1.10)."""
    if n == 0:
        return "", pos
    if n * 8 > end - pos:
        raise _too_long("string of characters:", n, end - pos, pos)
    nb = n * 8
    v = (big >> (end - pos - nb)) & ((1 << nb) - 1)
    if not v & _high_bits(n):  # every character one octet: ASCII
        return v.to_bytes(n, "big").decode("ascii"), pos + nb
    # code points of up to three octets each (≤ 0x10FFFF): parse them from the octets
    nb = min(3 * n, (end - pos) >> 3)
    raw = ((big >> (end - pos - 8 * nb)) & ((1 << (8 * nb)) - 1)).to_bytes(nb, "big")
    out = []
    i = 0
    try:
        for _ in range(n):
            start = i
            b = raw[i]
            i += 1
            cp = b & 0x7F
            shift = 7
            while b >= 0x80:
                b = raw[i]
                i += 1
                cp |= (b & 0x7F) << shift
                shift += 7
                if shift > 21:
                    raise Malformed("character code point longer than three octets", pos + 8 * start)
            if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                raise Malformed(f"invalid character code point {cp:#x}", pos + 8 * start)
            out.append(chr(cp))
    except IndexError:
        raise ValueError("negative shift count") from None  # ran past the given bits
    return "".join(out), pos + 8 * i


def read_string(big: int, end: int, pos: int) -> tuple[str, int]:
    """String (§7.1.10): length as an Unsigned Integer, then the characters."""
    start = pos
    n, pos = read_uint(big, end, pos)
    if n * 8 > end - pos:
        raise _too_long("string length", n, end - pos, start)
    return read_chars(big, end, pos, n)


def read_value_string(big: int, end: int, pos: int) -> tuple[str, int]:
    """A string value (§7.3.3): length + 2 then the characters. 0 and 1 would be hits in
    the value string table, which is always empty here (valuePartitionCapacity 0)."""
    start = pos
    n, pos = read_uint(big, end, pos)
    if n < 2:
        raise Malformed(f"string table {'local' if n == 0 else 'global'} value hit, "
                        "but the value table is empty (valuePartitionCapacity 0)", start)
    n -= 2
    if n * 8 > end - pos:
        raise _too_long("string length", n, end - pos, start)
    return read_chars(big, end, pos, n)


def read_binary(big: int, end: int, pos: int) -> tuple[bytes, int]:
    """Binary (§7.1.1): length in octets as an Unsigned Integer, then the octets."""
    start = pos
    n, pos = read_uint(big, end, pos)
    nb = n * 8
    if nb > end - pos:
        raise _too_long("binary length", n, end - pos, start)
    v = (big >> (end - pos - nb)) & ((1 << nb) - 1)
    return v.to_bytes(n, "big"), pos + nb


class GrowingReader:
    """Reads a value of unknown length from a long stream without turning the whole stream
    into one int: the read gets a 64-octet window at its position and is retried with a
    four times larger one while it runs past the window (but not past the stream), so a
    read costs time in proportion to the value, wherever it is.

    ``read(fn, pos, *args)``: ``fn(big, end, pos, *args) -> (value, pos)`` must have no side
    effects; positions are absolute bit offsets."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def read(self, fn, pos: int, *args):
        """``fn``'s value at absolute bit ``pos`` → (value, new pos); raises what ``fn``
        raises once the window covers the rest of the stream."""
        data = self.data
        k = 64
        while True:
            b0 = pos >> 3
            chunk = data[b0:b0 + k]
            off = b0 << 3
            last = b0 + k >= len(data)
            try:
                v, p = fn(int.from_bytes(chunk, "big"), len(chunk) << 3, pos - off, *args)
                return v, p + off
            except ValueError:
                if last:
                    raise
            except Malformed as e:
                if last or not e.short:
                    raise Malformed(e.reason, e.pos + off, e.short) from None
            k <<= 2


class BitWriter:
    """Bit-packed output (§7.1): fields are appended most significant bit first; `getvalue`
    pads the last octet with zero bits (§8: the stream ends on an octet boundary)."""

    __slots__ = ("_out", "_acc", "_n")

    def __init__(self):
        self._out = bytearray()
        self._acc = 0
        self._n = 0

    def bits(self, value: int, n: int) -> None:
        """Append ``value`` as an n-bit unsigned integer (§7.1.9)."""
        self._acc = (self._acc << n) | value
        self._n += n
        if self._n >= 64:
            k = self._n >> 3
            rest = self._n & 7
            self._out += (self._acc >> rest).to_bytes(k, "big")
            self._acc &= (1 << rest) - 1
            self._n = rest

    def uint(self, value: int) -> None:
        """Unsigned Integer (§7.1.6)."""
        while value >= 0x80:
            self.bits((value & 0x7F) | 0x80, 8)
            value >>= 7
        self.bits(value, 8)

    def int(self, value: int) -> None:
        """Integer (§7.1.5)."""
        if value < 0:
            self.bits(1, 1)
            self.uint(-value - 1)
        else:
            self.bits(0, 1)
            self.uint(value)

    def chars(self, s: str) -> None:
        """Code points, one Unsigned Integer each (§7.1.10)."""
        if s.isascii():
            if s:
                self.bits(int.from_bytes(s.encode("ascii"), "big"), 8 * len(s))
            return
        for ch in s:
            self.uint(ord(ch))

    def string(self, s: str) -> None:
        """String (§7.1.10): length then characters."""
        self.uint(len(s))
        self.chars(s)

    def value_string(self, s: str) -> None:
        """String value as a string-table miss (§7.3.3): length + 2 then characters."""
        self.uint(len(s) + 2)
        self.chars(s)

    def binary(self, data: bytes) -> None:
        """Binary (§7.1.1): length then octets."""
        self.uint(len(data))
        if data:
            self.bits(int.from_bytes(data, "big"), 8 * len(data))

    def getvalue(self) -> bytes:
        """The stream so far, padded with zero bits to a whole octet."""
        out = bytes(self._out)
        if self._n:
            pad = (-self._n) & 7
            out += (self._acc << pad).to_bytes((self._n + pad) >> 3, "big")
        return out
