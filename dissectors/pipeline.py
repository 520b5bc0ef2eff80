"""Frames → dissector events, for a whole capture, streamed in frame order.

One pass over the capture (dissectors/capture.py) with cheap byte checks first: each frame
goes through the link layer, then HomePlug MME (SLAC), IPv6/IPv4 → UDP (SDP, disclosed TLS
key logs) or TCP (reassembly → TLS → V2GTP → EXI). Every frame is counted exactly once in
:class:`FrameAccounting` as decoded, skipped-with-reason or out-of-scope-with-reason.

Events come out in frame order. TLS application data can only be decrypted once the secrets
are known, and test systems disclose them in the capture after the handshake; events of such
held-back records are produced late, so a small reorder buffer holds events back until no
earlier frame can still produce one (bounded: past ``reorder_limit`` events it flushes).
"""
from __future__ import annotations

import heapq
import itertools
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from . import homeplug, sdp
from .capture import CaptureReader
from .events import (CAPTURE_PROBLEM, DISSECTOR_ERROR, EV_TO_EVSE, EVSE_TO_EV,
                     TLS_KEY_LOG_DISCLOSED, V2GTP_FRAMING_ERROR, Event)
from .ip import PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, ip_text, parse_ip
from .link import ETHERTYPE_HOMEPLUG_AV, ETHERTYPE_IPV4, ETHERTYPE_IPV6, parse_link
from .tcp import TcpReassembler, parse_tcp
from .tls_keylog import KeyLog
from .v2g import V2gChannel, protocol_of
from .v2gtp import EXI_PAYLOAD_TYPES, V2gtpGarbage, V2gtpSplitter, payload_type_name

SDP_PORT = 15118

#: A closed TCP connection silent this long (s) is summarised and let go (:meth:`Dissector.
#: _release_finished`): V2G_SECC_Sequence_Timeout, 60 s (ISO 15118-2 [V2G2-443] Table 109),
#: beyond which nothing more of its session can come.
RELEASE_AFTER_S = 60.0
#: Events held back at most (the reorder buffer, :meth:`Dissector._drain`): behind a TLS
#: record that waits for secrets, later frames' events wait so that the stream stays in
#: frame order; past this many they flow on (late-decrypted messages then come out of
#: order, and the session builder sorts them). About 50 MiB of events.
REORDER_LIMIT = 25_000
#: How often (frames) finished connections are looked for.
RELEASE_EVERY = 4096
_UDP_NAMES = {546: "DHCPv6", 547: "DHCPv6", 5353: "mDNS", 5355: "LLMNR", 67: "DHCP", 68: "DHCP",
              137: "NetBIOS", 138: "NetBIOS", 1900: "SSDP", 123: "NTP", 53: "DNS"}
_ICMPV6_NAMES = {133: "router solicitation", 134: "router advertisement",
                 135: "neighbour solicitation", 136: "neighbour advertisement",
                 143: "MLDv2 report", 128: "echo request", 129: "echo reply", 1: "unreachable"}


@dataclass
class FrameAccounting:
    """Every frame of the capture, counted once: ``decoded`` by layer, ``skipped`` and
    ``out_of_scope`` by reason. ``total`` is the number of frames."""

    decoded: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    out_of_scope: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.decoded.values()) + sum(self.skipped.values()) + sum(self.out_of_scope.values())

    def as_dict(self) -> dict:
        """JSON form: totals and the per-layer / per-reason counts."""
        return {
            "frames": self.total,
            "decoded": sum(self.decoded.values()),
            "skipped": sum(self.skipped.values()),
            "out_of_scope": sum(self.out_of_scope.values()),
            "decoded_by_layer": dict(self.decoded.most_common()),
            "skipped_by_reason": dict(self.skipped.most_common()),
            "out_of_scope_by_reason": dict(self.out_of_scope.most_common()),
        }


class _Conn:
    """Pipeline state of one TCP connection."""

    __slots__ = ("tcp", "kind", "held", "splitters", "tls", "channel", "v2g_messages", "macs")

    def __init__(self, tcp, trust=None):
        self.tcp = tcp
        self.kind: str | None = None          # "v2gtp" | "tls" | "other" | None (no data yet)
        self.held: list = []                  # data chunks before the kind is known
        self.splitters = (V2gtpSplitter(), V2gtpSplitter())
        self.tls: TlsConnection | None = None
        self.channel = V2gChannel(trust)
        self.v2g_messages = 0
        self.macs: list[str | None] = [None, None]   # link source address per direction


class Dissector:
    """Dissects one capture file.

    ``Dissector(path, keylog=None).events()`` yields :class:`~.events.Event` in frame order;
    afterwards ``accounting`` (:class:`FrameAccounting`), ``capture`` (the reader's
    ``CaptureInfo``), ``connections`` (per TCP connection summary dicts), ``keylog`` and
    ``frames`` / ``first_time`` / ``last_time`` describe the capture.

    ``keylog`` is the path of an NSS key log file (``--keylog``); secrets disclosed inside
    the capture (pcapng Decryption Secrets Blocks, dSPACE key-log UDP datagrams) are used too.
    ``trust``: a :class:`~.x509trust.TrustStore` (``--trust``) the certificate chains of
    Plug & Charge messages are anchored against (dissectors/x509trust.py).
    Raises :class:`~.capture.CaptureError` when the file is not a capture at all, and
    ``OSError``/``ValueError`` when the key log file cannot be read.
    """

    def __init__(self, path: str | os.PathLike, keylog: str | os.PathLike | None = None,
                 reorder_limit: int = REORDER_LIMIT, trust=None):
        self.path = os.fspath(path)
        self.trust = trust                    # x509trust.TrustStore: roots for the chains seen
        self.reader = CaptureReader(self.path)
        self.capture = self.reader.info
        self.keylog = KeyLog.from_file(keylog) if keylog else KeyLog()
        self.keylog_sources: Counter = Counter()
        if keylog:
            self.keylog_sources["key log file"] += len(self.keylog)
        self.accounting = FrameAccounting()
        self.reorder_limit = reorder_limit
        self.frames = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.secc_endpoints: set[tuple[bytes, int]] = set()
        self.tcp = TcpReassembler(server_hint=lambda ip, port: (ip, port) in self.secc_endpoints)
        self._conns: dict[int, _Conn] = {}
        self._tls_conns: list[_Conn] = []
        self._tls_frame_time: dict[int, float] = {}   # frame → time: late-decrypted records, multi-frame messages
        self._heap: list = []
        self._seq = itertools.count()
        self._keylog_version = self.keylog.version
        self._dsb_seen = 0
        self.connections: list[dict] = []
        self._released: dict[int, dict] = {}          # conn id → summary of a let-go connection
        self._release_at = RELEASE_EVERY

    # ------------------------------------------------------------------ output ordering
    def _emit(self, ev: Event) -> None:
        heapq.heappush(self._heap, (ev.frame, next(self._seq), ev))

    def _floor(self) -> int | None:
        """Earliest frame whose events may still be produced late (held-back TLS records)."""
        floor = None
        for c in self._tls_conns:
            f = c.tls.held_back_first_frame
            if f is not None and (floor is None or f < floor):
                floor = f
        return floor

    def _drain(self, upto: int | None) -> Iterator[Event]:
        heap = self._heap
        if upto is not None and len(heap) > self.reorder_limit:
            upto = None
        while heap and (upto is None or heap[0][0] < upto):
            yield heapq.heappop(heap)[2]

    # ------------------------------------------------------------------ main loop
    def events(self) -> Iterator[Event]:
        """Yield every event of the capture in frame order (see class docstring)."""
        acc = self.accounting
        key_lines = self.capture.tls_key_log      # (grows as the reader meets DSBs)
        keylog = self.keylog
        heap = self._heap
        one_frame = self._frame
        for frame in self.reader:
            number = frame.number
            self.frames = number
            if self.first_time is None:
                self.first_time = frame.time
            self.last_time = frame.time
            try:
                one_frame(frame)
            except Exception as e:  # a dissector bug must not stop the capture's analysis
                if acc.total < number:           # counted once: not when a layer already did
                    acc.skipped[f"internal error in dissector ({type(e).__name__})"] += 1
                self._emit(Event(number, frame.time, "capture", DISSECTOR_ERROR,
                                 error=f"{type(e).__name__}: {e}"))
            if len(key_lines) > self._dsb_seen:
                for line in key_lines[self._dsb_seen:]:
                    if keylog.add_line(line, number):
                        self.keylog_sources["pcapng Decryption Secrets Block"] += 1
                self._dsb_seen = len(key_lines)
            if keylog.version != self._keylog_version:
                self._keylog_version = keylog.version
                for c in self._conns.values():
                    if c.tls is not None:
                        self._tls_events(c, c.tls.retry(number), frame.time)
            if number >= self._release_at:
                self._release_at = number + RELEASE_EVERY
                self._release_finished(frame.time)
                self._forget_frame_times(number)
            if heap:                    # (most frames leave nothing to hand out)
                floor = self._floor() if self._tls_conns else None
                yield from self._drain(number if floor is None or floor > number else floor)
        yield from self._finish()

    def _finish(self) -> Iterator[Event]:
        last = self.frames
        t = self.last_time or 0.0
        for out in self.tcp.close_all(last):
            self._tcp_output(out, t)
        for c in self._conns.values():
            if c.kind is None and c.held:
                self._classify(c, t, force=True)
            if c.tls is not None:
                self._tls_events(c, c.tls.close(last), t)
            for d in (0, 1):
                for g in c.splitters[d].close(last):
                    self._garbage(c, d, g, t)
        for p in self.capture.problems:
            self._emit(Event(max(p.after_frame, 1), t, "capture", CAPTURE_PROBLEM,
                             error=p.reason, info={"offset": p.offset, "length": p.length}))
        self._summarise_connections()
        yield from self._drain(None)

    # ------------------------------------------------------------------ frames
    def _frame(self, frame) -> None:
        acc = self.accounting
        data = frame.data
        # fast path (most frames of a V2G capture): Ethernet II, IPv6 without extension
        # headers, TCP — the same checks as parse_link / parse_ip, without building objects
        if (frame.linktype == 1 and len(data) >= 74 and data[12] == 0x86 and data[13] == 0xDD
                and data[20] == PROTO_TCP and data[14] >> 4 == 6):
            end = 54 + ((data[18] << 8) | data[19])
            if 74 <= end <= len(data):
                self._tcp_segment(frame, data[22:38], data[38:54], data[54:end], data[6:12])
                return
        # fast path: Ethernet II, IPv4, UDP that is neither SDP nor a key log (a charger's
        # syslog can be a fifth of the frames) — counted out of scope as _udp counts it
        if (frame.linktype == 1 and len(data) >= 42 and data[12] == 0x08 and data[13] == 0x00
                and data[23] == PROTO_UDP and self._udp4_out_of_scope(data)):
            return
        link = parse_link(frame.linktype, data)
        if isinstance(link, str):
            acc.skipped[link] += 1
            return
        et = link.ethertype
        if et == ETHERTYPE_HOMEPLUG_AV:
            self._homeplug(frame, link)
            return
        if et != ETHERTYPE_IPV6 and et != ETHERTYPE_IPV4:
            acc.out_of_scope[_ethertype_name(et)] += 1
            return
        ip = parse_ip(frame.data, link.offset)
        if isinstance(ip, str):
            acc.skipped[ip] += 1
            return
        proto = ip.proto
        if proto == PROTO_TCP:
            self._tcp(frame, ip, link)
        elif proto == PROTO_UDP:
            self._udp(frame, ip, link)
        elif proto == PROTO_ICMPV6:
            t = ip.payload[0] if ip.payload else -1
            acc.out_of_scope[f"ICMPv6 {_ICMPV6_NAMES.get(t, f'type {t}')}"] += 1
        else:
            acc.out_of_scope[f"IP protocol {proto}"] += 1

    def _udp4_out_of_scope(self, data: bytes) -> bool:
        """Count an Ethernet II / IPv4 / UDP frame out of scope, as :meth:`_udp` would, when
        it plainly is (no fragment, whole header and payload, not SDP, no key-log lines);
        False (nothing counted) for anything else, which takes the general path."""
        b0 = data[14]
        ihl = (b0 & 0x0F) * 4
        if b0 >> 4 != 4 or ihl < 20 or len(data) - 14 < ihl or (data[20] << 8 | data[21]) & 0x3FFF:
            return False
        total = (data[16] << 8) | data[17]
        end = 14 + total if total else len(data)
        start = 14 + ihl
        if end > len(data) or end - start < 8:
            return False
        sport = (data[start] << 8) | data[start + 1]
        dport = (data[start + 2] << 8) | data[start + 3]
        if sport == SDP_PORT or dport == SDP_PORT:
            return False
        ulen = (data[start + 4] << 8) | data[start + 5]
        n_body = ulen - 8 if 8 <= ulen <= end - start else end - start - 8
        if 64 < n_body < 65536:
            body = data[start + 8:start + 8 + n_body]
            if b"SECRET" in body or b"CLIENT_RANDOM" in body:
                return False
        self.accounting.out_of_scope[_UDP_NAMES.get(dport) or _UDP_NAMES.get(sport)
                                     or f"UDP port {min(sport, dport)}"] += 1
        return True

    def _homeplug(self, frame, link) -> None:
        m = homeplug.decode_mme(frame.data[link.offset:])
        hint = m.direction_hint
        direction = EV_TO_EVSE if hint == "EV" else EVSE_TO_EV if hint == "EVSE" else None
        self.accounting.decoded["slac"] += 1
        info = {"mmv": m.mmv, "slac": m.is_slac}
        if m.oui:
            info["oui"] = m.oui
        if link.vlan is not None:
            info["vlan"] = link.vlan
        self._emit(Event(frame.number, frame.time, "slac", m.name, direction=direction,
                         protocol="SLAC" if m.is_slac else "HomePlug", message=m.fields,
                         error=m.error, src=link.src.hex(":") if link.src else None,
                         dst=link.dst.hex(":") if link.dst else None, payload_type=m.mmtype,
                         payload=frame.data[link.offset:], info=info))

    def _udp(self, frame, ip, link) -> None:
        acc = self.accounting
        p = ip.payload
        if len(p) < 8:
            acc.skipped["UDP header truncated"] += 1
            return
        sport = (p[0] << 8) | p[1]
        dport = (p[2] << 8) | p[3]
        ulen = (p[4] << 8) | p[5]
        body = p[8:ulen] if 8 <= ulen <= len(p) else p[8:]
        if sport != SDP_PORT and dport != SDP_PORT and not (
                64 < len(body) < 65536 and (b"SECRET" in body or b"CLIENT_RANDOM" in body)):
            acc.out_of_scope[_UDP_NAMES.get(dport) or _UDP_NAMES.get(sport)
                             or f"UDP port {min(sport, dport)}"] += 1
            return
        src = f"[{ip_text(ip.src)}]:{sport}" if ip.version == 6 else f"{ip_text(ip.src)}:{sport}"
        dst = f"[{ip_text(ip.dst)}]:{dport}" if ip.version == 6 else f"{ip_text(ip.dst)}:{dport}"
        if sport == SDP_PORT or dport == SDP_PORT:
            m = sdp.decode_sdp(body)
            direction = EV_TO_EVSE if m.is_request else EVSE_TO_EV if m.is_request is False else None
            if m.is_request is False and m.error is None:
                addr = m.fields.get("SECCIPAddress")
                port = m.fields.get("SECCPort")
                if addr and port is not None:
                    import ipaddress
                    try:
                        self.secc_endpoints.add((ipaddress.ip_address(addr).packed, port))
                    except ValueError:
                        pass
            acc.decoded["sdp"] += 1
            info = {}
            if link.src is not None:
                info["src_mac"] = link.src.hex(":")
            if link.dst is not None:
                info["dst_mac"] = link.dst.hex(":")
            if m.header_problems:
                info["header_problems"] = m.header_problems
            self._emit(Event(frame.number, frame.time, "sdp", m.name, direction=direction,
                             protocol="SDP", message=m.fields, error=m.error, src=src, dst=dst,
                             payload_type=m.payload_type, payload=body, info=info))
            return
        if 64 < len(body) < 65536 and (b"SECRET" in body or b"CLIENT_RANDOM" in body):
            lines = KeyLog.lines_in_datagram(body)
            if lines:
                added = sum(1 for line in lines if self.keylog.add_line(line, frame.number))
                self.keylog_sources["key log lines disclosed in UDP datagrams"] += added
                acc.decoded["tls key log"] += 1
                self._emit(Event(frame.number, frame.time, "tls", TLS_KEY_LOG_DISCLOSED,
                                 protocol="TLS", src=src, dst=dst,
                                 message={"lines": len(lines),
                                          "labels": sorted({ln.split()[0] for ln in lines})}))
                return
        name = _UDP_NAMES.get(dport) or _UDP_NAMES.get(sport) or f"UDP port {min(sport, dport)}"
        acc.out_of_scope[name] += 1

    # ------------------------------------------------------------------ TCP
    def _tcp(self, frame, ip, link) -> None:
        self._tcp_segment(frame, ip.src, ip.dst, ip.payload, link.src)

    def _tcp_segment(self, frame, src: bytes, dst: bytes, segment: bytes, src_mac: bytes | None) -> None:
        h = parse_tcp(segment)
        if isinstance(h, str):
            self.accounting.skipped[h] += 1
            return
        outs = self.tcp.segment(frame.number, frame.time, src, dst, h)
        tcpc, d = self.tcp.last
        c = self._conns.get(tcpc.id)
        if c is None:
            c = self._conns[tcpc.id] = _Conn(tcpc, self.trust)
        if c.macs[d] is None and src_mac is not None:
            c.macs[d] = src_mac.hex(":")
        for out in outs:
            self._tcp_output(out, frame.time)

    def _tcp_output(self, out, t: float) -> None:
        kind, tcpc, d = out[0], out[1], out[2]
        c = self._conns.get(tcpc.id)
        if c is None:
            c = self._conns[tcpc.id] = _Conn(tcpc, self.trust)
        if kind == "data":
            data, frame = out[3], out[4]
            if c.kind is None:
                c.held.append((d, data, frame))
                self._classify(c, t)
            else:
                self._stream(c, d, data, frame, t)
        elif kind == "gap":
            missing, frame = out[3], out[4]
            if c.kind is None:
                c.held.append((d, None, (missing, frame)))
                return
            self._gap(c, d, missing, frame, t)
        else:
            name, info = out[3], out[4]
            frame = info.get("frame", tcpc.last_frame)
            self._emit(Event(frame, t, "tcp", name, direction=EV_TO_EVSE if d == 0 else EVSE_TO_EV,
                             protocol="TCP", conn=tcpc.id, src=_ep(tcpc, d), dst=_ep(tcpc, 1 - d),
                             message={k: v for k, v in info.items() if k != "frame"} or None,
                             info={"v2g": self._is_v2g(c)}))

    def _is_v2g(self, c: _Conn) -> bool | None:
        """Whether a connection carries V2G traffic: by its content once seen (V2GTP or TLS),
        else by its server endpoint (announced in an SDP response, the SECC's address, or
        port 15118); None when nothing tells yet."""
        if c.kind in ("v2gtp", "tls"):
            return True
        if c.kind == "other":
            return False
        ip, port = c.tcp.server
        if (ip, port) in self.secc_endpoints or port == SDP_PORT:
            return True
        if self.secc_endpoints:
            return any(ip == e[0] for e in self.secc_endpoints) or None
        return None

    def _classify(self, c: _Conn, t: float, force: bool = False) -> None:
        """Decide from the first stream bytes whether the connection is TLS, V2GTP or other."""
        first = {}
        for d, data, _ in c.held:
            if data:
                first[d] = first.get(d, b"") + data
        probe = first.get(0) or first.get(1) or b""
        if len(probe) < 2 and not force:
            return
        if probe[:2] == b"\x01\xfe":
            c.kind = "v2gtp"
        elif probe[:1] in (b"\x16", b"\x14", b"\x15", b"\x17") and probe[1:2] == b"\x03":
            # a TLS record: a handshake, or (capture started late) CCS / alert / data
            from .tls import TlsConnection   # imported on first use: it pulls in cryptography
            c.kind = "tls"
            c.tls = TlsConnection(self.keylog, f"conn {c.tcp.id}", trust=self.trust)
            self._tls_conns.append(c)
        else:
            c.kind = "other"
        held, c.held = c.held, []
        for d, data, frame in held:
            if data is None:
                self._gap(c, d, frame[0], frame[1], t)
            else:
                self._stream(c, d, data, frame, t)

    def _stream(self, c: _Conn, d: int, data: bytes, frame: int, t: float) -> None:
        if c.kind == "v2gtp":
            if len(self._tls_frame_time) > 200_000:
                self._tls_frame_time.clear()
            self._tls_frame_time[frame] = t      # a message's first frame may end in a later one
            for m in c.splitters[d].feed(data, frame):
                self._v2gtp(c, d, m, t)
        elif c.kind == "tls":
            if len(self._tls_frame_time) > 200_000:
                self._tls_frame_time.clear()
            self._tls_frame_time[frame] = t
            self._tls_events(c, c.tls.feed(d, data, frame), t)

    def _gap(self, c: _Conn, d: int, missing: int, frame: int, t: float) -> None:
        if c.kind == "v2gtp":
            for g in c.splitters[d].gap(missing, frame):
                self._garbage(c, d, g, t)
        elif c.kind == "tls":
            self._tls_events(c, c.tls.gap(d, missing, frame), t)

    def _tls_events(self, c: _Conn, events, t: float) -> None:
        """Emit TLS events; decrypted application data goes on to V2GTP. Records decrypted
        late (secrets disclosed after them) keep the time of the frame that carried them."""
        times = self._tls_frame_time
        for te in events:
            d = te.direction
            tt = times.get(te.frame, t)
            if te.kind == "application_data" and te.data is not None:
                for m in c.splitters[d].feed(te.data, te.frame):
                    self._v2gtp(c, d, m, times.get(m.frame, tt))
                continue
            self._emit(Event(te.frame, tt, "tls", te.name,
                             direction=EV_TO_EVSE if d == 0 else EVSE_TO_EV, protocol="TLS",
                             message=te.fields or None, error=te.error, conn=c.tcp.id,
                             first_frame=te.first_frame, src=_ep(c.tcp, d), dst=_ep(c.tcp, 1 - d),
                             info={"kind": te.kind}))

    # ------------------------------------------------------------------ V2GTP / EXI
    def _v2gtp(self, c: _Conn, d: int, m, t: float) -> None:
        if isinstance(m, V2gtpGarbage):
            self._garbage(c, d, m, t)
            return
        tcpc = c.tcp
        pt = m.header.payload_type
        info: dict = {}
        if m.first_frame != m.frame:
            # the message began in an earlier frame (a later one — possibly a retransmission —
            # completed it): when its first transmission started (epoch s)
            ft = self._tls_frame_time.get(m.first_frame)
            if ft is not None and ft < t:
                info["first_time"] = ft
        if m.problems:
            info["header_problems"] = m.problems
        if c.tls is not None:
            info["tls"] = True
        if pt in EXI_PAYLOAD_TYPES:
            dec = c.channel.decode(m.payload, pt, m.frame)
            if dec.tree is not None and tcpc.roles_guessed and c.v2g_messages == 0:
                if (d == 0 and dec.name.endswith("Res")) or (d == 1 and dec.name.endswith("Req")):
                    self.tcp.swap_roles(tcpc)
                    c.macs.reverse()
                    d = 1 - d
                    info["roles"] = "EV/EVSE roles taken from the first message (SYN not captured)"
                tcpc.roles_guessed = False
            c.v2g_messages += 1
            info.update(dec.notes)
            if c.channel.detected:
                info["namespace_detected"] = True
            # (positional: the fields in Event's order — a V2G message is the commonest event)
            self._emit(Event(m.frame, t, "v2gtp", dec.name, EV_TO_EVSE if d == 0 else EVSE_TO_EV,
                             protocol_of(dec.namespace), dec.namespace, dec.tree, dec.error,
                             _ep(tcpc, d), _ep(tcpc, 1 - d), tcpc.id, m.first_frame, m.offset,
                             pt, m.payload, info))
        else:
            c.v2g_messages += 1
            self._emit(Event(m.frame, t, "v2gtp", f"V2GTP {payload_type_name(pt)}",
                             direction=EV_TO_EVSE if d == 0 else EVSE_TO_EV, conn=tcpc.id,
                             error=f"payload type 0x{pt:04X} does not carry EXI "
                                   f"({payload_type_name(pt)})",
                             first_frame=m.first_frame, offset=m.offset, payload_type=pt,
                             payload=m.payload, src=_ep(tcpc, d), dst=_ep(tcpc, 1 - d), info=info))

    def _garbage(self, c: _Conn, d: int, g: V2gtpGarbage, t: float) -> None:
        self._emit(Event(g.frame, t, "v2gtp", V2GTP_FRAMING_ERROR,
                         direction=EV_TO_EVSE if d == 0 else EVSE_TO_EV, conn=c.tcp.id,
                         error=g.reason, first_frame=g.first_frame, offset=g.offset,
                         src=_ep(c.tcp, d), dst=_ep(c.tcp, 1 - d), info={"bytes": g.length}))

    # ------------------------------------------------------------------ finished connections
    def _release_finished(self, now: float) -> None:
        """Let go of the TCP connections that are over: closed (RST, or FIN both ways) and
        silent for :data:`RELEASE_AFTER_S`, with no stream bytes or V2GTP message in
        progress. A TLS connection is closed first, as at the end of the capture: records it
        still holds (no secrets for them yet) are reported as encrypted now — key log lines
        disclosed more than :data:`RELEASE_AFTER_S` after a connection closed no longer
        decrypt it — so that they no longer hold back the events of the frames after them.
        Each connection is summarised and counted now, as :meth:`_summarise_connections`
        does for the others at the end: the state of a long capture's connections does not
        pile up."""
        done = []
        for c in self._conns.values():
            tc = c.tcp
            if (not tc.closed or now - tc.last_time < RELEASE_AFTER_S or c.held
                    or tc.dirs[0].pending or tc.dirs[1].pending
                    or c.splitters[0].buffered or c.splitters[1].buffered):
                continue
            done.append(c)
        for c in done:
            tc = c.tcp
            if c.tls is not None:
                if not c.tls.idle:
                    self._tls_events(c, c.tls.close(tc.last_frame), tc.last_time)
                    for d in (0, 1):
                        for g in c.splitters[d].close(tc.last_frame):
                            self._garbage(c, d, g, tc.last_time)
                self._tls_conns.remove(c)
            self._account(c)
            self._released[tc.id] = summary = self._summary(c)
            self.connections.append(summary)
            del self._conns[tc.id]
            self.tcp.forget(tc)

    def _forget_frame_times(self, now: int) -> None:
        """Drop the frame times (``_tls_frame_time``) no TLS record or V2GTP message can
        still need: those before the earliest held-back record and more than
        4 × :data:`RELEASE_EVERY` frames old."""
        cut = now - 4 * RELEASE_EVERY
        floor = self._floor() if self._tls_conns else None
        if floor is not None:
            cut = min(cut, floor)
        times = self._tls_frame_time
        if times and next(iter(times)) < cut:
            for k in [k for k in times if k < cut]:
                del times[k]

    # ------------------------------------------------------------------ summary
    def _account(self, c: _Conn) -> None:
        """Count a connection's frames (decoded as V2G, or out of scope and why)."""
        acc = self.accounting
        tc = c.tcp
        v2g_port = (tc.server in self.secc_endpoints) or tc.server[1] == SDP_PORT
        if c.kind in ("v2gtp", "tls") or (c.kind is None and v2g_port):
            acc.decoded["tcp (V2G connection)"] += tc.frames
        elif c.kind is None:
            acc.out_of_scope[f"TCP port {tc.server[1]} without payload"] += tc.frames
        else:
            acc.out_of_scope[f"TCP port {tc.server[1]}: not V2GTP or TLS"] += tc.frames

    def _summarise_connections(self) -> None:
        for c in self._conns.values():
            self._account(c)
            self.connections.append(self._summary(c))
        self.connections.sort(key=lambda x: x["conn"])

    def take_released(self) -> list[dict]:
        """Hand over (and forget) the summaries of the connections let go so far: a caller
        streaming a long capture keeps them itself (on disk), so that ``connections`` holds
        only the later ones at the end."""
        out = self.connections
        self.connections = []
        self._released.clear()
        return out

    def connection_summary(self, conn: int) -> dict | None:
        """The summary of TCP connection ``conn`` as it stands now (the entry that
        ``connections`` will hold at the end; None for an unknown id): what a segment's
        rules read before the capture is over (analyzer/segments.py)."""
        c = self._conns.get(conn)
        return self._summary(c) if c is not None else self._released.get(conn)

    @staticmethod
    def _summary(c: _Conn) -> dict:
        tc = c.tcp
        summary = {
            "conn": tc.id,
            "client": _ep(tc, 0), "server": _ep(tc, 1),
            "client_mac": c.macs[0], "server_mac": c.macs[1],
            "roles_guessed": tc.roles_guessed,
            "first_frame": tc.first_frame, "last_frame": tc.last_frame,
            "first_time": tc.first_time, "last_time": tc.last_time,
            "frames": tc.frames,
            "kind": c.kind or ("no payload" if tc.frames else None),
            "syn_frame": tc.syn_frame, "synack_frame": tc.synack_frame,
            "fin_frames": [tc.dirs[0].fin_frame, tc.dirs[1].fin_frame],
            "rst_frames": [tc.dirs[0].rst_frame, tc.dirs[1].rst_frame],
            "bytes": [tc.dirs[0].delivered, tc.dirs[1].delivered],
            "segments": [tc.dirs[0].segments, tc.dirs[1].segments],
            "duplicates": [tc.dirs[0].duplicates, tc.dirs[1].duplicates],
            "duplicate_frames": [tc.dirs[0].duplicate_frames, tc.dirs[1].duplicate_frames],
            "retransmissions": [tc.dirs[0].retransmissions, tc.dirs[1].retransmissions],
            "out_of_order": [tc.dirs[0].out_of_order, tc.dirs[1].out_of_order],
            "lost_bytes": [tc.dirs[0].lost_bytes, tc.dirs[1].lost_bytes],
            "v2g_messages": c.v2g_messages,
            "namespace": c.channel.namespace,
            "namespace_detected": c.channel.detected,
            "negotiated_frame": c.channel.negotiated_frame,
            "handshake_response": c.channel.response_code,
            "offered": list(c.channel.offered.values()),
        }
        if c.tls is not None:
            summary["tls"] = c.tls.summary()
        return summary


_EP_CACHE: dict = {}


def _ep(tcpc, d: int) -> str:
    """``[ip]:port`` text of the client (d = 0) or server (d = 1) endpoint."""
    key = tcpc.client if d == 0 else tcpc.server
    txt = _EP_CACHE.get(key)
    if txt is None:
        ip, port = key
        txt = f"[{ip_text(ip)}]:{port}" if len(ip) == 16 else f"{ip_text(ip)}:{port}"
        if len(_EP_CACHE) > 4096:
            _EP_CACHE.clear()
        _EP_CACHE[key] = txt
    return txt


def _ethertype_name(et: int) -> str:
    return {0x0806: "ARP", 0x887B: "HomePlug 1.0", 0x8899: "Realtek RRCP", 0x88CC: "LLDP",
            0x893A: "IEEE 1905.1", 0x8912: "HomePlug AV mediaxtream (0x8912)"}.get(
        et, f"ethertype 0x{et:04X}")
