"""Link layers (Ethernet, 802.1Q, Linux cooked v1/v2, loopback, raw IP) and IP headers."""
from __future__ import annotations

import struct

from ccs_analyzer.dissectors.ip import parse_ip
from ccs_analyzer.dissectors.link import parse_link
from ccs_analyzer.samples import netframes as nf

SRC, DST = nf.mac("02:00:00:00:00:01"), nf.mac("02:00:00:00:00:02")
IP6 = nf.ipv6(nf.link_local(SRC), nf.link_local(DST), 17, nf.udp(nf.link_local(SRC), nf.link_local(DST), 1, 2, b"x"))


def test_ethernet_and_vlan():
    f = parse_link(1, DST + SRC + b"\x81\x00\x00\x05" + b"\x88\xa8\x00\x07" + b"\x86\xdd" + IP6)
    assert f.ethertype == 0x86DD and f.vlan == 5 and f.src == SRC and f.dst == DST
    assert isinstance(parse_link(1, b"\x00" * 10), str)
    assert "802.3" in parse_link(1, DST + SRC + b"\x00\x40" + b"\x00" * 64)


def test_linux_cooked_v1_v2():
    sll = struct.pack("!HHH", 0, 1, 6) + SRC + b"\x00\x00" + b"\x86\xdd"
    f = parse_link(113, sll + IP6)
    assert f.ethertype == 0x86DD and f.src == SRC and f.offset == 16
    sll2 = b"\x86\xdd" + b"\x00\x00" + struct.pack("!I", 3) + struct.pack("!HBB", 1, 0, 6) + SRC + b"\x00\x00"
    f = parse_link(276, sll2 + IP6)
    assert f.ethertype == 0x86DD and f.src == SRC and f.offset == 20


def test_loopback_and_raw():
    assert parse_link(0, struct.pack("<I", 30) + IP6).ethertype == 0x86DD
    assert parse_link(108, struct.pack(">I", 24) + IP6).ethertype == 0x86DD
    assert parse_link(101, IP6).ethertype == 0x86DD
    assert "not supported" in parse_link(999, IP6)


def test_ipv6_extension_headers_and_errors():
    # hop-by-hop (8 bytes) in front of UDP
    udp = nf.udp(nf.link_local(SRC), nf.link_local(DST), 1, 2, b"x")
    hbh = bytes([17, 0]) + b"\x00" * 6
    pkt = nf.ipv6(nf.link_local(SRC), nf.link_local(DST), 0, hbh + udp)
    ip = parse_ip(pkt)
    assert ip.proto == 17 and ip.payload == udp
    assert "truncated" in parse_ip(pkt[:30])
    frag = bytes([17, 0]) + struct.pack("!H", 8 << 3) + b"\x00" * 4
    assert "fragment" in parse_ip(nf.ipv6(nf.link_local(SRC), nf.link_local(DST), 44, frag + udp))
