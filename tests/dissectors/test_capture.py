"""The pcap / pcapng reader: formats, byte orders, resolutions, damage, memory."""
from __future__ import annotations

import io
import struct
import tracemalloc

import pytest

from ccs_analyzer.dissectors.capture import CaptureError, CaptureReader
from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter, block
from tests.conftest import corpus_captures, golden_meta


def pcap_bytes(frames, endian="<", nano=False, linktype=1, modified=False):
    magic = 0xA1B23C4D if nano else (0xA1B2CD34 if modified else 0xA1B2C3D4)
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for sec, frac, data in frames:
        out += struct.pack(endian + "IIII", sec, frac, len(data), len(data))
        if modified:
            out += b"\x00" * 8
        out += data
    return out


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path, endian, nano):
    frac = 123456789 if nano else 123456
    p = write(tmp_path, "a.pcap", pcap_bytes([(1700000000, frac, b"x" * 60),
                                             (1700000001, 0, b"y" * 70)], endian, nano))
    r = CaptureReader(p)
    fr = list(r)
    assert [f.number for f in fr] == [1, 2]
    assert fr[0].time == pytest.approx(1700000000.123456789 if nano else 1700000000.123456, abs=1e-6)
    assert fr[1].data == b"y" * 70
    assert r.info.format == "pcap" and not r.info.problems


def test_modified_pcap(tmp_path):
    p = write(tmp_path, "m.pcap", pcap_bytes([(1, 2, b"abc" * 20)], modified=True))
    assert [f.data for f in CaptureReader(p)] == [b"abc" * 20]


def test_pcap_truncated_last_record_is_reported(tmp_path):
    data = pcap_bytes([(1, 0, b"a" * 60), (2, 0, b"b" * 60)])
    p = write(tmp_path, "t.pcap", data[:-10])
    r = CaptureReader(p)
    assert [f.number for f in r] == [1]
    assert len(r.info.problems) == 1 and "cut short" in r.info.problems[0].reason


def test_pcap_garbage_between_records_resyncs(tmp_path):
    good = pcap_bytes([(10, 0, b"a" * 60)])
    rec2 = struct.pack("<IIII", 11, 0, 60, 60) + b"b" * 60
    rec3 = struct.pack("<IIII", 12, 0, 60, 60) + b"c" * 60
    p = write(tmp_path, "g.pcap", good + b"\xff" * 37 + rec2 + rec3)
    r = CaptureReader(p)
    assert [f.data[:1] for f in r] == [b"a", b"b", b"c"]
    assert r.info.problems and r.info.problems[0].length == 37


def ng_file(sections):
    """sections: list of (endian, interfaces[(linktype, tsresol_byte)], packets[(iface, ticks, data)])"""
    out = b""
    for endian, ifaces, packets, extra in sections:
        def blk(t, body):
            body = body + b"\x00" * (-len(body) % 4)
            n = 12 + len(body)
            return struct.pack(endian + "II", t, n) + body + struct.pack(endian + "I", n)
        out += blk(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
        for lt, res in ifaces:
            opts = struct.pack(endian + "HH", 9, 1) + bytes([res]) + b"\x00" * 3 + struct.pack(endian + "HH", 0, 0)
            out += blk(1, struct.pack(endian + "HHI", lt, 0, 65535) + opts)
        for iface, ticks, data in packets:
            pad = data + b"\x00" * (-len(data) % 4)
            out += blk(6, struct.pack(endian + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF,
                                      len(data), len(data)) + pad)
        out += extra(blk)
    return out


def test_pcapng_multi(tmp_path):
    sec1 = ("<", [(1, 6), (113, 9)], [(0, 1_700_000_000_000_000, b"e" * 60),
                                      (1, 1_700_000_000_500_000_000, b"s" * 40)], lambda blk: b"")
    keylog = b"CLIENT_RANDOM " + b"ab" * 32 + b" " + b"cd" * 48 + b"\n"

    def dsb(blk):
        return blk(0x0A, struct.pack(">II", 0x544C534B, len(keylog)) + keylog)

    sec2 = (">", [(1, 0x80 | 10)], [(0, 1024 * 1_700_000_001, b"b" * 64)], dsb)
    p = tmp_path / "m.pcapng"
    p.write_bytes(ng_file([sec1, sec2]))
    r = CaptureReader(p)
    fr = list(r)
    assert [f.linktype for f in fr] == [1, 113, 1]
    assert fr[0].time == pytest.approx(1_700_000_000.0)
    assert fr[1].time == pytest.approx(1_700_000_000.5)
    assert fr[2].time == pytest.approx(1_700_000_001.0)
    assert fr[2].interface == 0 and fr[2].data == b"b" * 64
    assert r.info.linktypes == {1: 2, 113: 1}
    assert r.info.tls_key_log and r.info.tls_key_log[0].startswith("CLIENT_RANDOM")
    assert not r.info.problems


def _written(n=3, comments=()):
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    w.add_interface(1)
    for i in range(n):
        w.write(1_700_000_000 + i * 0.5, bytes([i]) * 60, comments=comments)
    return buf.getvalue()


def test_writer_round_trip(tmp_path):
    p = write(tmp_path, "w.pcapng", _written(3, comments=("hello",)))
    fr = list(CaptureReader(p))
    assert [f.data[0] for f in fr] == [0, 1, 2]
    assert fr[2].time == pytest.approx(1_700_000_001.0)


def test_pcapng_truncated_last_block_is_reported(tmp_path):
    data = _written(3)
    p = write(tmp_path, "t.pcapng", data[:-7])
    r = CaptureReader(p)
    assert len(list(r)) == 2
    assert len(r.info.problems) == 1
    assert "cut short" in r.info.problems[0].reason and r.info.problems[0].after_frame == 2


def test_pcapng_corrupt_block_is_skipped_and_rest_read(tmp_path):
    data = bytearray(_written(5))
    # walk the blocks; corrupt the total length of the 2nd packet block
    off, epbs = 0, []
    while off < len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if btype == 6:
            epbs.append(off)
        off += blen
    second = epbs[1]
    data[second + 4:second + 8] = b"\xff\xff\xff\x7f"
    p = write(tmp_path, "c.pcapng", bytes(data))
    r = CaptureReader(p)
    got = [f.data[0] for f in r]
    assert got == [0, 2, 3, 4]
    assert len(r.info.problems) == 1 and r.info.problems[0].length > 0


def test_not_a_capture(tmp_path):
    with pytest.raises(CaptureError):
        CaptureReader(write(tmp_path, "x.pcap", b"hello world, not a capture"))
    with pytest.raises(CaptureError):
        CaptureReader(write(tmp_path, "e.pcap", b""))
    with pytest.raises(CaptureError):
        CaptureReader(tmp_path / "missing.pcap")


def test_memory_stays_flat(tmp_path):
    """Reading 40,000 frames allocates no more than reading 10,000 (bounded buffers)."""
    def peak(n):
        buf = io.BytesIO()
        w = PcapngWriter(buf)
        w.add_interface(1)
        for i in range(n):
            w.write(1_700_000_000 + i, b"\x00" * 200)
        p = tmp_path / f"big{n}.pcapng"
        p.write_bytes(buf.getvalue())
        tracemalloc.start()
        count = sum(1 for _ in CaptureReader(p))
        _, pk = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == n
        return pk
    small, large = peak(10000), peak(40000)
    assert large < small * 1.5 + 256 * 1024


@pytest.mark.parametrize("cap", corpus_captures(), ids=lambda p: p.name[:40])
def test_corpus_frame_counts_and_times(corpus, cap):
    meta = golden_meta(cap)
    r = CaptureReader(cap)
    frames = list(r)
    assert len(frames) == meta["frames"]
    assert not r.info.problems
    assert frames[0].time == pytest.approx(float(meta["first_ts"]), abs=1e-6)
    assert frames[-1].time == pytest.approx(float(meta["last_ts"]), abs=1e-6)


def test_capture_names_are_the_formats_the_reader_reads(tmp_path):
    """CAPTURE_SUFFIXES (the CLI's and the browser's folder scans) names what CaptureReader
    opens: a pcap under every suffix is read; a gzip'ed capture is neither a capture name
    nor readable."""
    import gzip

    from ccs_analyzer.dissectors.capture import CAPTURE_SUFFIXES, capture_stem, is_capture_name
    data = pcap_bytes([(1, 0, b"\x00" * 60)])
    for suf in CAPTURE_SUFFIXES:
        p = write(tmp_path, "run1" + suf.upper(), data)
        assert is_capture_name(p.name) and capture_stem(p.name) == "run1"
        assert len(list(CaptureReader(p))) == 1
    gz = write(tmp_path, "run1.pcap.gz", gzip.compress(data))
    assert not is_capture_name(gz.name) and capture_stem(gz.name) == "run1.pcap.gz"
    with pytest.raises(CaptureError):
        CaptureReader(gz)
