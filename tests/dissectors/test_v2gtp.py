"""V2GTP header validation and stream splitting."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ccs_analyzer.dissectors.v2gtp import (V2gtpGarbage, V2gtpMessage, V2gtpSplitter, parse_header,
                                           payload_type_name)


def msg(pt: int, payload: bytes) -> bytes:
    return bytes([1, 0xFE]) + pt.to_bytes(2, "big") + len(payload).to_bytes(4, "big") + payload


def test_header_problems():
    assert parse_header(msg(0x8001, b"\x80")).problems == []
    h = parse_header(bytes([2, 0xFE, 0x80, 0x01, 0, 0, 0, 0]))
    assert any("version 0x02" in p for p in h.problems)
    assert any("reserved" in p for p in parse_header(bytes([1, 0xFE, 0x70, 0x00, 0, 0, 0, 0])).problems)
    assert parse_header(b"\x01\xfe") is None
    assert payload_type_name(0xA123).startswith("manufacturer")


def test_several_messages_in_one_chunk_and_one_across_many():
    s = V2gtpSplitter()
    a, b = msg(0x8001, b"\x80\x01"), msg(0x8001, b"\x80" + b"\x02" * 30)
    out = s.feed(a + b[:5], 7)
    assert [m.payload for m in out] == [b"\x80\x01"]
    out = []
    for i, x in enumerate(b[5:]):
        out += s.feed(bytes([x]), 8 + i)
    assert len(out) == 1 and out[0].payload == b[8:] and out[0].first_frame == 7
    assert out[0].frame == 8 + len(b) - 6


def test_garbage_is_reported_and_resynced():
    s = V2gtpSplitter()
    out = s.feed(b"\x00\x11\x22" + msg(0x8001, b"\x80\x00"), 1)
    assert isinstance(out[0], V2gtpGarbage) and out[0].length == 3
    assert isinstance(out[1], V2gtpMessage)


def test_huge_length_is_not_buffered():
    s = V2gtpSplitter(max_length=1000)
    out = s.feed(bytes([1, 0xFE, 0x80, 0x01]) + (10**6).to_bytes(4, "big") + msg(0x8001, b"\x80"), 1)
    assert isinstance(out[0], V2gtpGarbage) and "announces" in out[0].reason
    assert isinstance(out[-1], V2gtpMessage)


def test_gap_and_close():
    s = V2gtpSplitter()
    m = msg(0x8001, b"\x80" * 10)
    s.feed(m[:6], 1)
    g = s.gap(4, 2)
    assert g and "missing" in g[0].reason
    out = s.feed(m[10:] + m, 3)           # the tail of the broken message, then a whole one
    assert [type(x) for x in out] == [V2gtpGarbage, V2gtpMessage]
    s.feed(m[:4], 4)
    c = s.close(5)
    assert c and "header" in c[0].reason


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=50), min_size=1, max_size=6), st.lists(st.integers(1, 30), max_size=20))
def test_chunking_does_not_matter(payloads, cuts):
    stream = b"".join(msg(0x8001, p) for p in payloads)
    s = V2gtpSplitter()
    got, pos, i = [], 0, 0
    for c in cuts + [len(stream)]:
        if pos >= len(stream):
            break
        got += s.feed(stream[pos:pos + c], i)
        pos += c
        i += 1
    if pos < len(stream):
        got += s.feed(stream[pos:], i)
    assert [m.payload for m in got if isinstance(m, V2gtpMessage)] == payloads
    assert not [m for m in got if isinstance(m, V2gtpGarbage)]


def test_fast_path_cuts_as_the_loop_does():
    """V2gtpSplitter.feed's fast path (nothing buffered, one whole message) gives the
    messages, garbage, frames, offsets and buffer state the general loop gives, for streams
    cut at random places (fixed seed) with bad headers and oversized lengths among them."""
    import random
    import struct

    from ccs_analyzer.dissectors.v2gtp import V2gtpSplitter

    class Loop(V2gtpSplitter):
        __slots__ = ()
        fast = False

    def msg(pt: int, payload: bytes, version: int = 1, inverse: int = 0xFE) -> bytes:
        return struct.pack("!BBHI", version, inverse, pt, len(payload)) + payload

    rnd = random.Random(15118)
    pieces = [msg(0x8001, bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40))))
              for _ in range(60)]
    pieces[7] = msg(0x8001, b"xyz", version=2)                    # bad header
    pieces[20] = b"\x00\x01garbage"                               # not a header at all
    pieces[33] = msg(0x7777, b"reserved type")                    # header with a problem
    pieces[40] = struct.pack("!BBHI", 1, 0xFE, 0x8001, 1 << 30)   # oversized length
    stream = b"".join(pieces)
    for trial in range(40):
        cuts, pos = [], 0
        while pos < len(stream):
            step = len(pieces[len(cuts) % len(pieces)]) if trial % 2 else rnd.randrange(1, 60)
            cuts.append(stream[pos:pos + step])
            pos += step
        fast, loop = V2gtpSplitter(max_length=4096), Loop(max_length=4096)
        for frame, chunk in enumerate(cuts, 1):
            assert fast.feed(chunk, frame) == loop.feed(chunk, frame)
            assert (bytes(fast.buf), fast.base, fast.chunks) == (bytes(loop.buf), loop.base, loop.chunks)
