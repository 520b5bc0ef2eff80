"""Bad input never stops the analysis: frames of random bytes, truncated and garbled V2G
streams give events that say why, every frame is accounted for, nothing raises."""
from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter
from ccs_analyzer.dissectors.pipeline import Dissector
from ccs_analyzer.samples import netframes as nf

EV = nf.mac("02:00:00:00:0e:01")
EVSE = nf.mac("02:00:00:00:e5:01")
EV_IP, EVSE_IP = nf.link_local(EV), nf.link_local(EVSE)


def capture(frames: list[bytes], tmp_path, name="r.pcapng"):
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    w.add_interface(1)
    for i, f in enumerate(frames):
        w.write(1_700_000_000 + i * 0.01, f)
    p = tmp_path / name
    p.write_bytes(buf.getvalue())
    return p


def run(path):
    d = Dissector(path)
    evs = list(d.events())
    assert d.accounting.total == d.frames
    assert not [e for e in evs if e.name == "dissector error"], [e.error for e in evs if e.name == "dissector error"]
    return d, evs


def tcp_frame(d, seq, ack, flags, payload=b""):
    if d == 0:
        seg = nf.tcp(EV_IP, EVSE_IP, 50000, 60000, seq, ack, flags, payload)
        return nf.ethernet(EVSE, EV, nf.ETH_IPV6, nf.ipv6(EV_IP, EVSE_IP, 6, seg))
    seg = nf.tcp(EVSE_IP, EV_IP, 60000, 50000, seq, ack, flags, payload)
    return nf.ethernet(EV, EVSE, nf.ETH_IPV6, nf.ipv6(EVSE_IP, EV_IP, 6, seg))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([0x88E1, 0x86DD, 0x0800, 0x8100, 0x1234]),
                          st.binary(max_size=120)), min_size=1, max_size=30))
def test_random_frames(tmp_path, frames):
    raw = [EV + EVSE + et.to_bytes(2, "big") + body for et, body in frames]
    raw.append(b"\x01\x02")          # shorter than an Ethernet header
    run(capture(raw, tmp_path))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=1, max_size=80), min_size=1, max_size=12), st.booleans())
def test_random_v2g_streams(tmp_path, payloads, with_header):
    """A TCP connection whose stream is V2GTP headers followed by random EXI (or garbage)."""
    frames = [tcp_frame(0, 100, 0, nf.SYN), tcp_frame(1, 500, 101, nf.SYN | nf.ACK),
              tcp_frame(0, 101, 501, nf.ACK)]
    seq = [101, 501]
    for i, p in enumerate(payloads):
        d = i % 2
        data = nf.v2gtp(0x8001, p) if with_header else p
        frames.append(tcp_frame(d, seq[d], seq[1 - d], nf.PSH | nf.ACK, data))
        seq[d] += len(data)
    d, evs = run(capture(frames, tmp_path))
    v2g = [e for e in evs if e.layer == "v2gtp"]
    if with_header:
        assert len([e for e in v2g if e.offset is not None and e.name != "V2GTP framing error"]) == len(payloads)
        assert all(e.message is not None or e.error for e in v2g)


def test_message_cut_short_at_end(tmp_path):
    msg = nf.v2gtp(0x8001, b"\x80\x00\xdb\xab\x93\x71\xd3\x23")
    frames = [tcp_frame(0, 100, 0, nf.SYN), tcp_frame(1, 500, 101, nf.SYN | nf.ACK),
              tcp_frame(0, 101, 501, nf.PSH | nf.ACK, msg[:10])]
    d, evs = run(capture(frames, tmp_path))
    err = [e for e in evs if e.layer == "v2gtp"]
    assert len(err) == 1 and "stream ends" in err[0].error


def test_empty_handshake_element_is_decoded_not_a_dissector_error(tmp_path):
    """EXI 80 2A is a supportedAppProtocolReq closed right after its start (no AppProtocol):
    the handshake state must take it as empty (found by the random-stream test above), and
    the frame is counted once."""
    frames = [tcp_frame(0, 100, 0, nf.SYN), tcp_frame(1, 500, 101, nf.SYN | nf.ACK),
              tcp_frame(0, 101, 501, nf.ACK),
              tcp_frame(0, 101, 501, nf.PSH | nf.ACK, nf.v2gtp(0x8001, b"\x80*"))]
    d, evs = run(capture(frames, tmp_path))
    (e,) = [e for e in evs if e.layer == "v2gtp"]
    assert e.name == "supportedAppProtocolReq" and e.error is None
