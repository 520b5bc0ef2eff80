"""From a session plan to frames: SLAC, SDP, a TCP connection with correct sequence and
acknowledgement numbers and ACKs, V2GTP messages, the close — collected with their times and
written as pcapng.

Sources: ISO 15118-2 §7.10.1 (SDP over UDP 15118 to ff02::1, response unicast to the
requester, PROTOCOL_FACTS §1.3-1.5), §7.8.3 (V2GTP); RFC 9293 (TCP: the handshake, sequence
and acknowledgement numbers, FIN and RST, §3.4-3.6), RFC 6691 (MSS 1440 for IPv6 over a 1500
octet MTU: 1500 − 40 − 20); RFC 4291 §2.5.6 (link-local addresses from the MACs).

TCP behaviour: every data segment is acknowledged by the peer ``ack_delay_s`` later with a
pure ACK unless the peer sends data first (then the ACK rides on it); a message larger than
the MSS goes out in several segments, PSH on the last. Faults set per message: ``lost``
(segments left out of the capture; the peer still ACKs them, so a reader sees a gap),
``retransmit_after_s`` (the first segment again, and a duplicate ACK).

Link and capture-point details (fields of the plan objects, script.py, that the faults of
faults_link.py set; their defaults give a correct link): ``SdpPlan.request_transport`` /
``response_transport`` (the TransportProtocol octet, default 0x00 TCP),
``SdpPlan.announce_address`` / ``announce_port`` (what the SDP response announces instead of
the SECC's own address / port); ``TcpPlan.connect_port`` (the port the EV connects to instead
of the SECC port; the SECC accepts there); ``Message.line_losses`` (a list of gaps, s: the
message's segments were lost on the line that many times — captured, never acknowledged —
and sent again after each gap); ``SessionPlan.sniffer`` (what the capture point records of
the session: an object with ``wrap(cb)`` returning a CaptureBuilder stand-in and
``finish(written)``, faults_link.Sniffer).

TLS (samples/tls.py): on a connection that speaks TLS (the SDP response announced it, or a
fault forces it) the handshake flights follow the TCP handshake, the key log is disclosed
(UDP datagrams to [ff02::1]:52345, a pcapng Decryption Secrets Block, or not at all), every
V2GTP message goes inside application-data records, and an orderly close starts with a
close_notify alert.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass

from ccs_analyzer.dissectors.capture import LINKTYPE_ETHERNET
from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter

from . import netframes as nf
from .script import PT_SDP_REQ, PT_SDP_RES, Connection, Message, SdpPlan, SessionPlan, TcpPlan

SDP_PORT = 15118
KEYLOG_PORT = 52345                         # dSPACE: key log lines to [ff02::1]:52345
TLS_SEC = {"TLS": 0x00, "NoTLS": 0x10}     # [V2G2-623]
REFUSED_RETRY_S = 1.0
#: A SYN answered by a half-open connection's ACK: ACK, the EV's RST, the SYN again (s).
HALF_OPEN_S = 0.01


@dataclass
class Endpoints:
    """Addresses of the EV and the EVSE (hosts and their PLC modems) and the ports of one
    connection. IPv6 link-local addresses come from the MACs (modified EUI-64)."""

    ev_mac: str
    evse_mac: str
    ev_modem_mac: str
    evse_modem_mac: str
    secc_port: int
    ev_port: int
    sdp_port: int

    @property
    def ev_ip(self) -> bytes:
        return nf.link_local(nf.mac(self.ev_mac))

    @property
    def evse_ip(self) -> bytes:
        return nf.link_local(nf.mac(self.evse_mac))


class CaptureBuilder:
    """Collects (time, frame, comments) and writes pcapng in time order (ties keep the order
    in which the frames were added)."""

    def __init__(self, start: float):
        self.start = start
        self.frames: list[tuple[float, int, bytes, list[str]]] = []
        self.keylog: list[str] = []         # every TLS secret of the capture (NSS key log lines)
        self.secrets: list[str] = []        # … of them, those written in a Decryption Secrets Block
        self.unreadable: set[int] = set()   # id() of messages sent encrypted without disclosed keys
        self.interfaces: list[str] = ["eth0"]   # capture interfaces (pcapng IDBs), frames on 0 by default
        self.snaplen = 262144                   # the interfaces' snap length
        self.iface: dict[int, int] = {}         # frame index -> interface (when not 0)
        self.orig_len: dict[int, int] = {}      # frame index -> length on the wire (frames cut by the snap length)

    def add(self, t: float, frame: bytes, comments=(), interface: int = 0, orig_len: int | None = None) -> None:
        i = len(self.frames)
        self.frames.append((round(t, 6), i, frame, list(comments)))
        if interface:
            self.iface[i] = interface
        if orig_len is not None:
            self.orig_len[i] = orig_len

    def interface(self, name: str) -> int:
        """The index of capture interface ``name`` (added when new)."""
        if name not in self.interfaces:
            self.interfaces.append(name)
        return self.interfaces.index(name)

    def ordered(self):
        return sorted(self.frames, key=lambda x: (x[0], x[1]))

    def pcapng(self) -> bytes:
        buf = io.BytesIO()
        w = PcapngWriter(buf, application="ccs-analyzer simulate")
        for name in self.interfaces:
            w.add_interface(LINKTYPE_ETHERNET, snaplen=self.snaplen, name=name)
        if self.secrets:        # Decryption Secrets Block, TLS key log (pcapng §4.7), before the packets
            text = "".join(line + "\n" for line in self.secrets).encode()
            w.write_decryption_secrets(text)
        for t, i, fr, comments in self.ordered():
            w.write(t, fr, interface=self.iface.get(i, 0), orig_len=self.orig_len.get(i), comments=comments)
        return buf.getvalue()


# ------------------------------------------------------------------------------ SDP
def sdp_duration(sdp: SdpPlan, sdp_to_syn_s: float = 0.02) -> float:
    """Seconds from the first SDP request to the EV's SYN."""
    return sdp.unanswered * sdp.retry_s + sdp.latency_s + sdp_to_syn_s


def write_sdp(cb: CaptureBuilder, t: float, ep: Endpoints, sdp: SdpPlan) -> None:
    """SDP requests (multicast to ff02::1, hop limit 255) and, if answered, the response
    (unicast: the SECC's address, port, security and transport, ISO 15118-2 §7.10.1.3)."""
    ev = nf.mac(ep.ev_mac)
    sec = TLS_SEC[sdp.security]
    req = nf.v2gtp(PT_SDP_REQ, bytes([sec, sdp.request_transport]))
    n = sdp.unanswered + 1 if sdp.answered else max(1, sdp.unanswered)
    for i in range(n):
        udp = nf.udp(ep.ev_ip, nf.ALL_NODES, ep.sdp_port, SDP_PORT, req)
        cb.add(t + i * sdp.retry_s, nf.ethernet(nf.ALL_NODES_MAC, ev, nf.ETH_IPV6,
                                                nf.ipv6(ep.ev_ip, nf.ALL_NODES, 17, udp, 255)),
               sdp.comments if i == 0 else ())
    if not sdp.answered:
        return
    rsec = TLS_SEC[sdp.response_security or sdp.security]
    addr = sdp.announce_address or ep.evse_ip
    port = sdp.announce_port or ep.secc_port
    res = nf.v2gtp(PT_SDP_RES, addr + port.to_bytes(2, "big") + bytes([rsec, sdp.response_transport]))
    udp = nf.udp(ep.evse_ip, ep.ev_ip, SDP_PORT, ep.sdp_port, res)
    cb.add(t + sdp.unanswered * sdp.retry_s + sdp.latency_s,
           nf.ethernet(ev, nf.mac(ep.evse_mac), nf.ETH_IPV6, nf.ipv6(ep.evse_ip, ep.ev_ip, 17, udp, 255)))


# ------------------------------------------------------------------------------ TCP
def connect_duration(tcp: TcpPlan, rtt_s: float = 0.002) -> float:
    """Seconds from the first SYN to the end of the handshake (refused attempts first, a
    half-open probe first)."""
    extra = HALF_OPEN_S if tcp.half_open_first else 0.0
    return tcp.refused_attempts * REFUSED_RETRY_S + rtt_s + 0.001 + extra


class TcpConn:
    """One TCP connection EV → SECC; side 0 is the EV, side 1 the SECC."""

    def __init__(self, cb: CaptureBuilder, ep: Endpoints, rng: random.Random, mss: int = 1440,
                 rtt_s: float = 0.002, ack_delay_s: float = 0.001, port: int | None = None):
        self.cb, self.ep = cb, ep
        self.mss, self.rtt, self.ack_delay = mss, rtt_s, ack_delay_s
        self.port = port if port is not None else ep.secc_port
        self.ev, self.evse = nf.mac(ep.ev_mac), nf.mac(ep.evse_mac)
        self.nxt = [rng.randrange(1 << 32), rng.randrange(1 << 32)]     # next sequence number
        self.owed: list[float | None] = [None, None]                    # pure ACK owed by side
        self.last_t = 0.0

    def _segment(self, t: float, side: int, flags: int, payload: bytes = b"", seq: int | None = None,
                 mss: int | None = None, captured: bool = True, comments=()) -> None:
        ep = self.ep
        seq = self.nxt[side] if seq is None else seq
        ack = self.nxt[1 - side] if flags & nf.ACK else 0
        if side == 0:
            seg = nf.tcp(ep.ev_ip, ep.evse_ip, ep.ev_port, self.port, seq, ack, flags, payload, mss=mss)
            fr = nf.ethernet(self.evse, self.ev, nf.ETH_IPV6, nf.ipv6(ep.ev_ip, ep.evse_ip, 6, seg))
        else:
            seg = nf.tcp(ep.evse_ip, ep.ev_ip, self.port, ep.ev_port, seq, ack, flags, payload, mss=mss)
            fr = nf.ethernet(self.ev, self.evse, nf.ETH_IPV6, nf.ipv6(ep.evse_ip, ep.ev_ip, 6, seg))
        if captured:
            self.cb.add(t, fr, comments)

    def _advance(self, side: int, n: int) -> None:
        self.nxt[side] = (self.nxt[side] + n) & 0xFFFFFFFF

    def flush_acks(self, t: float) -> None:
        """Emit the pure ACKs owed before ``t``."""
        for side in (0, 1):
            due = self.owed[side]
            if due is not None and due <= t:
                self._segment(due, side, nf.ACK)
                self.owed[side] = None

    def connect(self, t: float) -> float:
        """SYN, SYN-ACK, ACK (with an MSS option on the SYNs); returns the time after."""
        self._segment(t, 0, nf.SYN, mss=self.mss)
        self._advance(0, 1)
        self._segment(t + self.rtt / 2, 1, nf.SYN | nf.ACK, mss=self.mss)
        self._advance(1, 1)
        self._segment(t + self.rtt, 0, nf.ACK)
        return t + self.rtt + 0.001

    def half_open_probe(self, t: float, rng: random.Random, comments=()) -> float:
        """The EV's SYN reaches a connection the SECC still holds on these ports: the SECC
        answers with that connection's ACK (RFC 9293 §3.10.7.3, RFC 5961 §4), the EV resets
        it (RST with the ACK's number as its sequence) and will send its SYN again. Returns
        the time of the new SYN."""
        self._segment(t, 0, nf.SYN, mss=self.mss, comments=comments)
        old_seq, old_ack = rng.randrange(1 << 32), rng.randrange(1 << 32)
        ep = self.ep
        seg = nf.tcp(ep.evse_ip, ep.ev_ip, self.port, ep.ev_port, old_seq, old_ack, nf.ACK, b"")
        self.cb.add(t + self.rtt / 2, nf.ethernet(self.ev, self.evse, nf.ETH_IPV6,
                                                  nf.ipv6(ep.evse_ip, ep.ev_ip, 6, seg)))
        seg = nf.tcp(ep.ev_ip, ep.evse_ip, ep.ev_port, self.port, old_ack, 0, nf.RST, b"")
        self.cb.add(t + self.rtt, nf.ethernet(self.evse, self.ev, nf.ETH_IPV6,
                                              nf.ipv6(ep.ev_ip, ep.evse_ip, 6, seg)))
        return t + HALF_OPEN_S

    def refused(self, t: float, comments=()) -> None:
        """A SYN answered by RST/ACK (nothing listens on that port, RFC 9293 §3.5.2)."""
        self._segment(t, 0, nf.SYN, mss=self.mss, comments=comments)
        self._advance(0, 1)
        self._segment(t + self.rtt / 2, 1, nf.RST | nf.ACK, seq=0)

    def send(self, t: float, side: int, data: bytes, captured: bool = True, comments=(),
             retransmit_after_s: float | None = None, line_losses=None) -> None:
        """``data`` from ``side`` at ``t``: MSS-sized segments, the peer's ACK owed.
        ``line_losses``: gaps (s) after which the segments, lost on the line, are sent again
        (the peer acknowledges the last transmission only)."""
        self.flush_acks(t)
        self.owed[side] = None                      # this data carries our ACK
        first_seq = self.nxt[side]
        chunks = [data[i:i + self.mss] for i in range(0, len(data), self.mss)] or [b""]
        for k, chunk in enumerate(chunks):
            flags = nf.ACK | (nf.PSH if k == len(chunks) - 1 else 0)
            self._segment(t + k * 0.00005, side, flags, chunk, captured=captured,
                          comments=comments if k == 0 else ())
            self._advance(side, len(chunk))
        if retransmit_after_s is not None:
            rt = t + retransmit_after_s
            self._segment(rt, side, nf.ACK | nf.PSH, chunks[0], seq=first_seq,
                          comments=["simulator fault tcp_retransmission: segment sent again"])
            self._segment(rt + self.rtt / 2, 1 - side, nf.ACK)        # duplicate ACK
        if line_losses:
            rt = t
            for k, gap in enumerate(line_losses, start=1):
                rt += gap
                seq = first_seq
                for j, chunk in enumerate(chunks):
                    flags = nf.ACK | (nf.PSH if j == len(chunks) - 1 else 0)
                    self._segment(rt + j * 0.00005, side, flags, chunk, seq=seq,
                                  comments=[f"simulator fault: lost on the line, sent again ({k})"] if j == 0 else ())
                    seq += len(chunk)
            self.owed[1 - side] = rt + len(chunks) * 0.00005 + self.ack_delay
            return
        self.owed[1 - side] = t + len(chunks) * 0.00005 + self.ack_delay

    def reset(self, t: float, side: int, comments=()) -> None:
        """RST/ACK from ``side`` (RFC 9293 §3.10.7)."""
        self.flush_acks(t)
        self._segment(t, side, nf.RST | nf.ACK, comments=comments)
        self.owed = [None, None]

    def close(self, t: float, first: int, comments=()) -> None:
        """Orderly close initiated by ``first``: FIN/ACK, FIN/ACK, ACK."""
        self.flush_acks(t)
        self.owed = [None, None]
        self._segment(t, first, nf.FIN | nf.ACK, comments=comments)
        self._advance(first, 1)
        self._segment(t + self.rtt / 2, 1 - first, nf.FIN | nf.ACK)
        self._advance(1 - first, 1)
        self._segment(t + self.rtt, first, nf.ACK)


# ------------------------------------------------------------------------------ sessions
def write_keylog(cb: CaptureBuilder, t: float, ep: Endpoints, side: str, lines: list[str], port: int,
                 comments=()) -> None:
    """Key log lines disclosed on the wire as dSPACE test systems do: one UDP datagram per
    line from ``side``'s host to [ff02::1]:52345 (read by dsV2Gshark and by the analyzer)."""
    src_mac = nf.mac(ep.ev_mac if side == "EV" else ep.evse_mac)
    src_ip = ep.ev_ip if side == "EV" else ep.evse_ip
    for i, line in enumerate(lines):
        udp = nf.udp(src_ip, nf.ALL_NODES, port, KEYLOG_PORT, line.encode() + b"\n")
        cb.add(t + i * 0.0001, nf.ethernet(nf.ALL_NODES_MAC, src_mac, nf.ETH_IPV6,
                                            nf.ipv6(src_ip, nf.ALL_NODES, 17, udp, 1)),
               comments if i == 0 else ())


def _tls_handshake(cb: CaptureBuilder, tc: "TcpConn", t: float, ep: Endpoints, tls, rng: random.Random):
    """The TLS handshake of one connection from ``t`` (the TCP handshake's end) and the key log
    disclosure; returns the :class:`~.tls.TlsSession` (its record protection for the V2G
    messages) and the time of its last flight."""
    from .tls import KEYLOG_DELAY_S, TlsSession
    sess = TlsSession(tls, rng)
    for i, fl in enumerate(sess.flights):
        t += fl.delay_s
        tc.send(t, 0 if fl.side == "EV" else 1, fl.data, comments=tls.comments if i == 0 else ())
    cb.keylog += sess.keylog
    if tls.keylog == "udp":
        write_keylog(cb, t + KEYLOG_DELAY_S, ep, tls.keylog_sender, sess.keylog, rng.randrange(49152, 65536))
    elif tls.keylog == "dsb":
        cb.secrets += sess.keylog
    return sess, t


def write_connection(cb: CaptureBuilder, ep: Endpoints, conn: Connection, rng: random.Random,
                     sdp_to_syn_s: float, rtt_s: float, tls=None,
                     tls_rng: random.Random | None = None) -> list[tuple[Message, float]]:
    """SDP, TCP and every exchange of ``conn``; returns the messages written with their times.
    ``tls``: the session's :class:`~.tls.TlsPlan` (None: plain TCP), ``tls_rng`` its random
    source."""
    written: list[tuple[Message, float]] = []
    t = conn.start_t
    write_sdp(cb, t, ep, conn.sdp)
    if not conn.sdp.answered:
        return written
    t += sdp_duration(conn.sdp, sdp_to_syn_s)
    tcp = conn.tcp
    for i in range(tcp.refused_attempts):
        bad = TcpConn(cb, ep, rng, mss=tcp.mss, rtt_s=rtt_s, port=tcp.wrong_port)
        bad.refused(t + i * REFUSED_RETRY_S, tcp.comments if i == 0 else ())
    if tcp.connect_to_wrong_port_only:
        return written
    t += tcp.refused_attempts * REFUSED_RETRY_S
    tc = TcpConn(cb, ep, rng, mss=tcp.mss, rtt_s=rtt_s, port=tcp.connect_port)
    if tcp.half_open_first:
        t = tc.half_open_probe(t, rng, tcp.comments)
    t_open = tc.connect(t)
    sess, t = None, t_open
    if tls is not None and not conn.tls_prelude and tls.used_on(conn.sdp):
        sess, t = _tls_handshake(cb, tc, t_open, ep, tls, tls_rng)
    t = max(t, conn.v2g_start_t)
    for side, data, delay in conn.tls_prelude:
        t += delay
        tc.send(t, 0 if side == "EV" else 1, data)
    if sess is not None and sess.failed:
        conn.exchanges.clear()
    for x in conn.exchanges:
        t += x.think_s
        _send_message(tc, t, x.request, sess, cb)
        written.append((x.request, t))
        if x.response is None:
            continue
        t += x.latency_s
        _send_message(tc, t, x.response, sess, cb)
        written.append((x.response, t))
    end = conn.ending
    t += end.after_s
    comments = [f"simulator: {end.reason}"] if end.reason else []
    if end.how == "FIN":
        if sess is not None and not sess.failed:        # close_notify before the FIN (RFC 8446 §6.1)
            closer = "EV" if end.by == "EV" else "EVSE"
            tc.send(t, 0 if closer == "EV" else 1, sess.alert(closer, "close_notify", fatal=False))
            t += 0.0005
        tc.close(t, 0 if end.by == "EV" else 1, comments)
    elif end.how == "RST":
        tc.reset(t, 0 if end.by == "EV" else 1, comments)
    else:
        tc.flush_acks(t)
    return written


def _send_message(tc: TcpConn, t: float, m: Message, sess=None, cb: CaptureBuilder | None = None) -> None:
    data = m.wire()
    if sess is not None and m.raw is None:      # V2GTP inside TLS application data
        data = sess.seal(m.side, data)
        if sess.plan.keylog == "none":
            cb.unreadable.add(id(m))
    note = getattr(tc.cb, "note_message", None)     # a capture point that needs to know (faults_link.Sniffer)
    if note is not None:
        note(m, t, len(data), tc.mss)
    tc.send(t, 0 if m.side == "EV" else 1, data, captured=not m.lost, comments=m.comments,
            retransmit_after_s=m.retransmit_after_s, line_losses=m.line_losses)


def write_session(cb: CaptureBuilder, plan: SessionPlan, ep_of, rng: random.Random, sdp_to_syn_s: float,
                  rtt_s: float, tls=None, tls_rng: random.Random | None = None) -> list[tuple[Message, float]]:
    """SLAC frames and every connection of ``plan``; ``ep_of(conn_index)`` gives the
    endpoints (ports differ per connection); ``tls`` the session's TlsPlan. The plan's
    ``control_pilot`` (cp_flow.CpRun) adds the CP evidence, timed by the messages written. A
    ``sniffer`` on the plan (module docstring) decides what of it the capture records."""
    sniffer = plan.sniffer
    if sniffer is not None:
        cb = sniffer.wrap(cb)
    for f in plan.slac.frames if plan.slac is not None else ():
        cb.add(f.t, f.frame(), f.comments)
    written = []
    for i, conn in enumerate(plan.connections):
        written += write_connection(cb, ep_of(i), conn, rng, sdp_to_syn_s, rtt_s, tls, tls_rng)
    if plan.control_pilot is not None:          # CP evidence (cp_flow.py), timed by the messages
        for t, fr, comments in plan.control_pilot.frames(plan, written):
            cb.add(t, fr, comments)
    if sniffer is not None:
        sniffer.finish(written)
    return written
