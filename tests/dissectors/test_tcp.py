"""TCP reassembly: retransmissions, out-of-order, overlap, wrap-around, mid-stream starts,
lost segments, RST/FIN, port reuse; and against the real corpus (V2GTP payloads and frames
equal to the reference decode)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccs_analyzer.dissectors.capture import CaptureReader
from ccs_analyzer.dissectors.ip import parse_ip
from ccs_analyzer.dissectors.link import parse_link
from ccs_analyzer.dissectors.tcp import ACK, FIN, PSH, RST, SYN, TcpHeader, TcpReassembler, parse_tcp
from ccs_analyzer.dissectors.v2gtp import V2gtpMessage, V2gtpSplitter
from tests.conftest import corpus_captures, golden_rows

EV, EVSE = b"\xfe\x80" + b"\x00" * 13 + b"\x01", b"\xfe\x80" + b"\x00" * 13 + b"\x02"


class Conv:
    """Drives a reassembler with segments of one connection EV:50000 → EVSE:60000."""

    def __init__(self, isn_c=1000, isn_s=5000, syn=True):
        self.r = TcpReassembler()
        self.frame = 0
        self.out = []
        self.isn = [isn_c, isn_s]
        if syn:
            self.seg(0, SYN, seq=isn_c)
            self.seg(1, SYN | ACK, seq=isn_s, ack=isn_c + 1)
            self.seg(0, ACK, seq=isn_c + 1, ack=isn_s + 1)

    def seg(self, d, flags, seq, data=b"", ack=0):
        self.frame += 1
        src, dst, sp, dp = (EV, EVSE, 50000, 60000) if d == 0 else (EVSE, EV, 60000, 50000)
        h = TcpHeader(sp, dp, seq % (1 << 32), ack % (1 << 32), flags, 1000, data)
        self.out.extend(self.r.segment(self.frame, float(self.frame), src, dst, h))
        return self.frame

    def data(self, d):
        return b"".join(o[3] for o in self.out if o[0] == "data" and o[2] == d)

    def events(self):
        return [o[3] for o in self.out if o[0] == "event"]


def test_in_order_and_retransmission():
    c = Conv()
    c.seg(0, PSH | ACK, 1001, b"hello ")
    c.seg(0, PSH | ACK, 1001, b"hello ")          # retransmission
    c.seg(0, PSH | ACK, 1007, b"world")
    assert c.data(0) == b"hello world"
    assert "TCP retransmission" in c.events()
    assert c.r.all[0].dirs[0].retransmissions == 1


def test_out_of_order_and_overlap():
    c = Conv()
    c.seg(0, PSH | ACK, 1007, b"world")           # arrives first
    c.seg(0, PSH | ACK, 1001, b"hello wo")        # fills the hole and overlaps
    c.seg(0, PSH | ACK, 1012, b"!")
    assert c.data(0) == b"hello world!"
    assert "TCP out-of-order" in c.events()


def test_sequence_wraparound():
    c = Conv(isn_c=(1 << 32) - 3)
    c.seg(0, PSH | ACK, (1 << 32) - 2, b"abcd")   # crosses 2^32
    c.seg(0, PSH | ACK, 2, b"efgh")
    assert c.data(0) == b"abcdefgh"


def test_midstream_start_and_roles_guessed():
    c = Conv(syn=False)
    c.r.server_hint = lambda ip, port: (ip, port) == (EVSE, 60000)   # known from SDP
    c.seg(0, PSH | ACK, 777, b"xyz", ack=10)
    c.seg(1, PSH | ACK, 10, b"abc", ack=780)
    conn = c.r.all[0]
    assert conn.roles_guessed
    assert c.data(0) == b"xyz" and c.data(1) == b"abc"
    assert "TCP connection started before the capture" in c.events()


def test_acked_unseen_segment_is_a_gap():
    c = Conv()
    c.seg(0, PSH | ACK, 1001, b"aaaa")
    # segment 1005..1009 lost by the capture, the next one arrives
    c.seg(0, PSH | ACK, 1009, b"cccc")
    assert c.data(0) == b"aaaa"
    c.seg(1, ACK, 5001, ack=1013)                # the EVSE ACKs everything
    gaps = [o for o in c.out if o[0] == "gap"]
    assert gaps and gaps[0][3] == 4
    assert c.data(0) == b"aaaacccc"


def test_fin_and_rst_and_port_reuse():
    c = Conv()
    c.seg(0, PSH | ACK, 1001, b"req")
    c.seg(0, FIN | ACK, 1004)
    c.seg(1, RST, 5001)
    assert c.r.all[0].closed
    assert {"FIN", "RST"} <= set(c.events())
    # a new SYN on the same 4-tuple opens a second connection
    c.seg(0, SYN, 9000)
    assert len(c.r.all) == 2 and c.r.all[1].syn_frame == c.frame


def test_end_of_capture_flushes_holes():
    c = Conv()
    c.seg(0, PSH | ACK, 1011, b"late")
    c.out.extend(c.r.close_all(99))
    assert [o[3] for o in c.out if o[0] == "gap"] == [10]
    assert c.data(0) == b"late"


def test_parse_tcp_errors():
    assert isinstance(parse_tcp(b"\x00" * 10), str)
    hdr = bytearray(20)
    hdr[12] = 0x40                                 # data offset 16 < 20
    assert isinstance(parse_tcp(bytes(hdr)), str)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_stream(chunks, rnd):
    """Whatever the order (and duplicates) of segments, the stream comes out once, in order."""
    c = Conv()
    segs = []
    seq = 1001
    for ch in chunks:
        segs.append((seq, ch))
        seq += len(ch)
    order = segs + rnd.sample(segs, k=min(3, len(segs)))
    rnd.shuffle(order)
    for s, ch in order:
        c.seg(0, PSH | ACK, s, ch)
    c.out.extend(c.r.close_all(999))
    assert c.data(0) == b"".join(chunks)


@pytest.mark.parametrize("cap", [p for p in corpus_captures()], ids=lambda p: p.name[:40])
def test_corpus_v2gtp_payloads_and_frames(corpus, cap):
    """Plain-TCP captures: every V2GTP message of the reference, same frame and bytes."""
    gold = sorted((g["frame"], g["hex"]) for g in golden_rows(cap)
                  if g["kind"] == "v2gtp" and not g.get("tls"))
    if not gold:
        pytest.skip("no plain V2GTP in this capture")
    r = TcpReassembler()
    spl: dict = {}
    mine = []
    for fr in CaptureReader(cap):
        link = parse_link(fr.linktype, fr.data)
        if isinstance(link, str) or link.ethertype != 0x86DD:
            continue
        ip = parse_ip(fr.data, link.offset)
        if isinstance(ip, str) or ip.proto != 6:
            continue
        for o in r.segment(fr.number, fr.time, ip.src, ip.dst, parse_tcp(ip.payload)):
            if o[0] == "data":
                s = spl.setdefault((o[1].id, o[2]), V2gtpSplitter())
                mine += [(m.frame, m.payload.hex()) for m in s.feed(o[3], o[4])
                         if isinstance(m, V2gtpMessage)]
    assert sorted(mine) == gold
