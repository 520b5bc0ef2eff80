"""The dissector's fast paths (dissectors/pipeline.py ``_frame``) decide exactly as the
general path does: a capture of crafted frames, each at an edge of a fast path's checks,
gives the same events and the same frame accounting with the fast paths and without."""
from __future__ import annotations

import struct

import pytest

from ccs_analyzer.dissectors import pipeline
from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter


def _eth(ethertype: int, payload: bytes) -> bytes:
    return bytes.fromhex("020000000002" "020000000001") + struct.pack("!H", ethertype) + payload


def _ipv4_udp(sport: int, dport: int, body: bytes, *, ulen: int | None = None,
              frag: int = 0, total: int | None = None, ihl: int = 5) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(body) if ulen is None else ulen, 0) + body
    opts = b"\x01" * ((ihl - 5) * 4)
    tot = 20 + len(opts) + len(udp) if total is None else total
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot, 1, frag, 64, 17, 0,
                     bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2])) + opts
    return _eth(0x0800, ip + udp)


FRAMES = [
    _ipv4_udp(40000, 514, b"<13>syslog line"),                     # plain out of scope
    _ipv4_udp(5353, 5353, b"x" * 30),                              # a named port
    _ipv4_udp(40000, 15118, bytes.fromhex("01fe9000000000021000")),  # SDP: not the fast path
    _ipv4_udp(15118, 40000, b"\x01\xfe\x90\x01\x00\x00\x00\x00"),
    _ipv4_udp(40000, 514, b"CLIENT_RANDOM " + b"ab" * 40 + b"\n"),  # key log lines
    _ipv4_udp(40000, 514, b"SECRET" * 20),
    _ipv4_udp(40000, 514, b"SECRET" * 20, ulen=20),                # UDP length shorter
    _ipv4_udp(40000, 514, b"y" * 100, ulen=4000),                  # UDP length too long
    _ipv4_udp(40000, 514, b"z" * 10, frag=0x2000),                 # a fragment
    _ipv4_udp(40000, 514, b"z" * 10, total=1000),                  # payload cut short
    _ipv4_udp(40000, 514, b"z" * 10, total=24),                    # UDP header cut
    _ipv4_udp(40000, 514, b"z" * 10, total=0),                     # total length 0
    _ipv4_udp(40000, 514, b"z" * 10, ihl=7),                       # IPv4 options
    _ipv4_udp(40000, 514, b"z" * 10, ihl=4),                       # bad header length
    _eth(0x0800, b"\x45\x00"),                                     # IPv4 header cut
    _eth(0x0800, bytes([0x60]) + b"\x00" * 40),                    # version 6 in 0x0800
]


def _run(path) -> tuple[list, dict]:
    d = pipeline.Dissector(str(path))
    events = [e.to_json() for e in d.events()]
    return events, d.accounting.as_dict()


def test_fast_paths_count_as_the_general_path(tmp_path, monkeypatch):
    cap = tmp_path / "udp.pcapng"
    with open(cap, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(1)
        for i, fr in enumerate(FRAMES):
            w.write(1000.0 + i, fr)
    taken = []
    real = pipeline.Dissector._udp4_out_of_scope
    monkeypatch.setattr(pipeline.Dissector, "_udp4_out_of_scope",
                        lambda self, data: taken.append(real(self, data)) or taken[-1])
    fast = _run(cap)
    monkeypatch.setattr(pipeline.Dissector, "_udp4_out_of_scope", lambda self, data: False)
    general = _run(cap)
    assert fast == general
    assert fast[1]["out_of_scope"] >= 2 and fast[0]     # something of each kind
    # the fast path took the plain ones and left SDP, key logs and damage to the general one
    assert taken.count(True) == 6
    assert len(taken) >= 10


@pytest.mark.parametrize("body", [b"", b"q" * 64, b"q" * 65, b"SECRET" * 11])
def test_key_log_size_edges(tmp_path, body):
    cap = tmp_path / "edge.pcapng"
    with open(cap, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(1)
        w.write(1.0, _ipv4_udp(40000, 514, body))
    d = pipeline.Dissector(str(cap))
    list(d.events())
    acc = d.accounting.as_dict()
    assert acc["frames"] == 1 and acc["out_of_scope"] + acc["decoded"] + acc["skipped"] == 1
