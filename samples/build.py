"""Assemble a complete capture of one charging session: SLAC, SDP, the TCP handshake with
correct sequence / acknowledgement numbers and ACKs, V2GTP, EXI encoded with the project's
own encoder, and the TCP close — written as pcapng.

``python -m ccs_analyzer.samples.build`` regenerates the committed sample captures
(deterministic: the same parameters give byte-identical files).

Sources: ISO 15118-3 Annex A (SLAC sequence, PROTOCOL_FACTS §2.3), ISO 15118-2 §7.10.1
(SDP over UDP 15118 to ff02::1, response unicast), RFC 9293 (TCP).
"""
from __future__ import annotations

import argparse
import io
import os
import random
from dataclasses import dataclass, field

from ccs_analyzer.dissectors import exi
from ccs_analyzer.dissectors.capture import LINKTYPE_ETHERNET
from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter

from . import netframes as nf
from . import slac_frames as sf
from .din_dc import DinDcParams, Exchange, din_dc_script

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Endpoints:
    """Addresses of the EV and the EVSE (hosts and their PLC modems), and ports."""

    ev_mac: str = "02:00:00:00:0e:01"
    evse_mac: str = "02:00:00:00:e5:01"
    ev_modem_mac: str = "02:00:00:00:0e:02"
    evse_modem_mac: str = "02:00:00:00:e5:02"
    secc_port: int = 57122
    ev_port: int = 50123
    sdp_port: int = 51555


@dataclass
class CaptureBuilder:
    """Collects (time, frame bytes) and writes them as pcapng in time order."""

    start: float = 1_767_225_600.0      # 2026-01-01T00:00:00Z
    frames: list[tuple[float, bytes]] = field(default_factory=list)

    def add(self, t: float, frame: bytes) -> None:
        self.frames.append((round(t, 6), frame))

    def pcapng(self) -> bytes:
        buf = io.BytesIO()
        w = PcapngWriter(buf)
        w.add_interface(LINKTYPE_ETHERNET, name="plc0")
        for t, fr in sorted(self.frames, key=lambda x: x[0]):
            w.write(t, fr)
        return buf.getvalue()


def add_slac(cb: CaptureBuilder, t: float, ep: Endpoints, rnd: random.Random) -> float:
    """A successful SLAC run from ``t``; returns the time after CM_SET_KEY (link ready)."""
    ev, evse = nf.mac(ep.ev_mac), nf.mac(ep.evse_mac)
    run = bytes(rnd.randrange(256) for _ in range(8))
    nid = bytes(rnd.randrange(256) for _ in range(7))
    nid = bytes([nid[0] & 0x3F]) + nid[1:]       # security level bits 00
    nmk = bytes(rnd.randrange(256) for _ in range(16))
    hp = nf.ETH_HOMEPLUG
    cb.add(t, nf.ethernet(nf.BROADCAST, ev, hp, sf.slac_parm_req(run)))
    t += 0.03
    cb.add(t, nf.ethernet(ev, evse, hp, sf.slac_parm_cnf(run, ev)))
    for _ in range(3):
        t += 0.03
        cb.add(t, nf.ethernet(nf.BROADCAST, ev, hp, sf.start_atten_char_ind(run, ev)))
    aag = [rnd.randrange(8, 22) for _ in range(58)]
    for cnt in range(9, -1, -1):
        t += 0.02
        cb.add(t, nf.ethernet(nf.BROADCAST, ev, hp,
                              sf.mnbc_sound_ind(run, cnt, bytes(rnd.randrange(256) for _ in range(16)))))
        cb.add(t + 0.002, nf.ethernet(evse, nf.mac(ep.evse_modem_mac), hp,
                                      sf.atten_profile_ind(ev, [min(255, a + rnd.randrange(3)) for a in aag])))
    t += 0.1
    cb.add(t, nf.ethernet(ev, evse, hp, sf.atten_char_ind(run, ev, aag)))
    t += 0.02
    cb.add(t, nf.ethernet(evse, ev, hp, sf.atten_char_rsp(run, ev)))
    t += 0.2
    cb.add(t, nf.ethernet(evse, ev, hp, sf.slac_match_req(run, ev, evse)))
    t += 0.03
    cb.add(t, nf.ethernet(ev, evse, hp, sf.slac_match_cnf(run, ev, evse, nid, nmk)))
    t += 0.01
    cb.add(t, nf.ethernet(nf.mac(ep.ev_modem_mac), ev, hp, sf.set_key_req(nid, nmk)))
    t += 0.005
    cb.add(t, nf.ethernet(ev, nf.mac(ep.ev_modem_mac), hp, sf.set_key_cnf()))
    return t + 2.0          # the modem joins the new AVLN


def add_sdp(cb: CaptureBuilder, t: float, ep: Endpoints, tls: bool = False) -> float:
    """An SDP request (multicast) and its response (unicast); returns the time after."""
    ev, evse = nf.mac(ep.ev_mac), nf.mac(ep.evse_mac)
    ev_ip, evse_ip = nf.link_local(ev), nf.link_local(evse)
    sec = b"\x00" if tls else b"\x10"
    req = nf.v2gtp(0x9000, sec + b"\x00")
    cb.add(t, nf.ethernet(nf.ALL_NODES_MAC, ev, nf.ETH_IPV6,
                          nf.ipv6(ev_ip, nf.ALL_NODES, 17, nf.udp(ev_ip, nf.ALL_NODES, ep.sdp_port, 15118, req), 255)))
    t += 0.04
    res = nf.v2gtp(0x9001, evse_ip + ep.secc_port.to_bytes(2, "big") + sec + b"\x00")
    cb.add(t, nf.ethernet(ev, evse, nf.ETH_IPV6,
                          nf.ipv6(evse_ip, ev_ip, 17, nf.udp(evse_ip, ev_ip, 15118, ep.sdp_port, res), 255)))
    return t + 0.05


class TcpFlow:
    """One TCP connection EV → SECC with correct sequence and acknowledgement numbers."""

    def __init__(self, cb: CaptureBuilder, ep: Endpoints, rnd: random.Random):
        self.cb, self.ep = cb, ep
        self.ev, self.evse = nf.mac(ep.ev_mac), nf.mac(ep.evse_mac)
        self.ev_ip, self.evse_ip = nf.link_local(self.ev), nf.link_local(self.evse)
        self.seq = [rnd.randrange(1 << 32), rnd.randrange(1 << 32)]   # next seq: EV, EVSE
        self.ack = [0, 0]

    def _send(self, t: float, d: int, flags: int, payload: bytes = b"", mss=None) -> None:
        ep = self.ep
        if d == 0:
            seg = nf.tcp(self.ev_ip, self.evse_ip, ep.ev_port, ep.secc_port, self.seq[0],
                         self.seq[1] if flags & nf.ACK else 0, flags, payload, mss=mss)
            fr = nf.ethernet(self.evse, self.ev, nf.ETH_IPV6, nf.ipv6(self.ev_ip, self.evse_ip, 6, seg))
        else:
            seg = nf.tcp(self.evse_ip, self.ev_ip, ep.secc_port, ep.ev_port, self.seq[1],
                         self.seq[0], flags, payload, mss=mss)
            fr = nf.ethernet(self.ev, self.evse, nf.ETH_IPV6, nf.ipv6(self.evse_ip, self.ev_ip, 6, seg))
        self.cb.add(t, fr)
        self.seq[d] = (self.seq[d] + len(payload) + (1 if flags & (nf.SYN | nf.FIN) else 0)) & 0xFFFFFFFF

    def connect(self, t: float) -> float:
        self._send(t, 0, nf.SYN, mss=1440)
        self._send(t + 0.002, 1, nf.SYN | nf.ACK, mss=1440)
        self._send(t + 0.003, 0, nf.ACK)
        return t + 0.01

    def data(self, t: float, d: int, payload: bytes) -> None:
        self._send(t, d, nf.PSH | nf.ACK, payload)

    def ack_only(self, t: float, d: int) -> None:
        self._send(t, d, nf.ACK)

    def close(self, t: float, first: int = 0) -> float:
        self._send(t, first, nf.FIN | nf.ACK)
        self._send(t + 0.002, 1 - first, nf.FIN | nf.ACK)
        self._send(t + 0.003, first, nf.ACK)
        return t + 0.01


def add_v2g(cb: CaptureBuilder, t: float, ep: Endpoints, script: list[Exchange],
            rnd: random.Random) -> float:
    """The TCP connection and every exchange of ``script``; returns the end time."""
    flow = TcpFlow(cb, ep, rnd)
    t = flow.connect(t)
    for exch in script:
        t += exch.gap_s
        flow.data(t, 0, nf.v2gtp(0x8001, exi.encode(exch.request, exch.namespace)))
        t += exch.latency_s
        flow.data(t, 1, nf.v2gtp(0x8001, exi.encode(exch.response, exch.namespace)))
        flow.ack_only(t + 0.001, 0)
    return flow.close(t + 0.05)


def din_dc_capture(params: DinDcParams | None = None, ep: Endpoints | None = None, seed: int = 1) -> bytes:
    """A complete DIN 70121 DC session (SLAC, SDP, TCP, V2G) as pcapng bytes."""
    rnd = random.Random(seed)
    ep = ep or Endpoints()
    cb = CaptureBuilder()
    t = add_slac(cb, cb.start + 1.0, ep, rnd)
    t = add_sdp(cb, t, ep)
    add_v2g(cb, t, ep, din_dc_script(params), rnd)
    return cb.pcapng()


SAMPLES = {
    "din_dc_session.pcapng": lambda: din_dc_capture(),
}


def main(argv: list[str] | None = None) -> None:
    """Regenerate the committed samples (or write them to ``--out``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=HERE, help="folder to write the samples to")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    for name, make in SAMPLES.items():
        path = os.path.join(a.out, name)
        data = make()
        with open(path, "wb") as f:
            f.write(data)
        print(f"{path}: {len(data)} bytes")


if __name__ == "__main__":
    main()
