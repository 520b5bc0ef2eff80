"""TCP: header parsing and stream reassembly per connection and direction.

Reassembly delivers each direction's bytes in sequence order, exactly once, as
``("data", ...)`` outputs attributed to the frame that made them contiguous; it handles
retransmissions and duplicates (dropped, counted), out-of-order and overlapping segments
(buffered, first copy wins), sequence-number wrap-around, connections that started before the
capture (the first captured byte defines offset 0), SYN/FIN/RST, port reuse (a new SYN on a
closed 4-tuple opens a new connection), and bytes the capture lost: when the peer
acknowledges data that was never captured (RFC 9293 §3.4 cumulative ACK), when buffered
out-of-order data exceeds its bound, or at FIN/RST/end of capture, the hole is reported as a
``("gap", ...)`` output and delivery continues after it.

Sources: RFC 9293 (TCP) §3.1 header format, §3.4 sequence numbers, §3.5 connection
establishment; the EVCC opens the connection to the SECC (ISO 15118-2 §7.7.3, [V2G2-182];
DIN SPEC 70121 §8.7.2), so the SYN sender is the EV.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .events import (TCP_BYTES_MISSING, TCP_FIN, TCP_OUT_OF_ORDER, TCP_RETRANSMISSION, TCP_RST,
                     TCP_STARTED_BEFORE_CAPTURE, TCP_SYN, TCP_SYN_ACK)

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_MOD = 1 << 32
_HALF = 1 << 31

#: Out-of-order bytes buffered per direction before the hole is declared lost.
MAX_PENDING = 4 << 20


class TcpHeader:
    """A parsed TCP header: ports, ``seq``, ``ack``, ``flags`` (int), ``window``,
    ``payload`` (bytes). Built by :func:`parse_tcp`."""

    __slots__ = ("sport", "dport", "seq", "ack", "flags", "window", "payload")

    def __init__(self, sport, dport, seq, ack, flags, window, payload):
        self.sport, self.dport, self.seq, self.ack = sport, dport, seq, ack
        self.flags, self.window, self.payload = flags, window, payload


_TCP = struct.Struct("!HHIIBBH")


def parse_tcp(data: bytes) -> TcpHeader | str:
    """Parse a TCP segment (RFC 9293 §3.1). Returns a :class:`TcpHeader` or why not."""
    if len(data) < 20:
        return f"TCP header truncated ({len(data)} of 20 bytes)"
    sport, dport, seq, ack, off, flags, window = _TCP.unpack_from(data)
    hl = (off >> 4) * 4
    if hl < 20:
        return f"TCP data offset {hl} is below the 20-byte minimum"
    if hl > len(data):
        return f"TCP header truncated ({len(data)} of {hl} bytes with options)"
    return TcpHeader(sport, dport, seq, ack, flags | ((off & 1) << 8), window, data[hl:])


def flags_text(flags: int) -> str:
    """``SYN,ACK`` style text of a flag byte."""
    names = ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"))
    return ",".join(n for bit, n in names if flags & bit) or "none"


@dataclass(slots=True)
class HalfStream:
    """One direction of a connection.

    ``base``: absolute sequence number of stream offset 0 (None until known); ``next_off``:
    next expected stream offset; ``pending``: out-of-order data {offset: (bytes, frame)};
    counters in bytes / segments; ``fin_frame``/``rst_frame``: first FIN / RST seen.
    """

    base: int | None = None
    isn: int | None = None
    next_off: int = 0
    pending: dict = field(default_factory=dict)
    pending_bytes: int = 0
    delivered: int = 0
    segments: int = 0
    retransmissions: int = 0
    retransmitted_bytes: int = 0
    out_of_order: int = 0
    lost_bytes: int = 0
    before_start_bytes: int = 0
    fin_frame: int | None = None
    fin_off: int | None = None
    rst_frame: int | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    syn_seen: bool = False
    duplicates: int = 0
    duplicate_frames: tuple[int, int] | None = None    # first and last frame captured twice
    last_sig: tuple | None = None
    last_sig_time: float = 0.0

    def ext(self, seq: int) -> int:
        """Absolute 32-bit ``seq`` → stream offset, unwrapped around ``next_off``."""
        rel = (seq - self.base) % _MOD
        return self.next_off + ((rel - self.next_off + _HALF) % _MOD) - _HALF


@dataclass(slots=True)
class TcpConnection:
    """A TCP connection: ``id`` (0-based, capture order), ``client``/``server`` as
    (ip bytes, port) — the client is the SYN sender, or a guess when the SYN was not captured
    (``roles_guessed``), ``dirs`` [client→server, server→client], frames, SYN/SYN-ACK frames,
    ``closed`` after RST or both FINs."""

    id: int
    client: tuple[bytes, int]
    server: tuple[bytes, int]
    first_frame: int
    first_time: float
    roles_guessed: bool
    dirs: tuple[HalfStream, HalfStream] = field(default_factory=lambda: (HalfStream(), HalfStream()))
    frames: int = 0
    last_frame: int = 0
    last_time: float = 0.0
    syn_frame: int | None = None
    synack_frame: int | None = None
    closed: bool = False
    syn_count: int = 0

    def swap_roles(self) -> None:
        """Exchange client and server (when the content shows the guess was wrong); use
        :meth:`TcpReassembler.swap_roles`, which also re-keys the lookup table."""
        self.client, self.server = self.server, self.client
        self.dirs = (self.dirs[1], self.dirs[0])


class TcpReassembler:
    """Tracks every TCP connection of a capture and reassembles its two byte streams.

    :meth:`segment` takes one parsed segment and returns a list of outputs (and leaves the
    segment's connection and direction in ``last``), tuples whose first item says what
    they are:

    * ``("data", conn, direction, bytes, frame)`` — contiguous new stream bytes;
    * ``("gap", conn, direction, missing_bytes, frame)`` — bytes the capture never saw;
    * ``("event", conn, direction, name, info_dict)`` — SYN, SYN-ACK, FIN, RST, TCP
      retransmission, TCP out-of-order, connection started before the capture, ACKed unseen
      segment.

    ``direction`` is 0 for client→server (EV→EVSE), 1 for server→client. ``server_hint``
    (a callable (ip, port) → bool) tells which endpoint is a known SECC when the SYN was not
    captured (e.g. from the SDP response).
    """

    def __init__(self, server_hint=None, max_pending: int = MAX_PENDING):
        self.conns: dict[tuple, tuple[TcpConnection, int]] = {}
        #: the connections not yet let go (:meth:`forget`), by id
        self.all: dict[int, TcpConnection] = {}
        self._next_id = 0
        self.server_hint = server_hint
        self.max_pending = max_pending
        self.last: tuple[TcpConnection, int] | None = None   # connection and direction of the last segment

    # ------------------------------------------------------------------ lookup
    def _lookup(self, src, sport, dst, dport, h: TcpHeader, frame: int, time: float):
        key = (src, sport, dst, dport)
        hit = self.conns.get(key)
        syn_only = (h.flags & (SYN | ACK)) == SYN
        if hit is not None:
            conn, d = hit
            if syn_only:
                hs = conn.dirs[d]
                fresh = conn.closed or (d == 1) or (hs.isn is not None and hs.isn != h.seq) \
                    or hs.delivered > 0
                if not fresh:
                    return conn, d, []
            else:
                return conn, d, []
        # new connection
        if syn_only:
            client, server, guessed = (src, sport), (dst, dport), False
        elif (h.flags & (SYN | ACK)) == (SYN | ACK):
            client, server, guessed = (dst, dport), (src, sport), False
        else:
            client, server, guessed = self._guess_roles(src, sport, dst, dport)
        conn = TcpConnection(self._next_id, client, server, frame, time, guessed)
        self._next_id += 1
        self.all[conn.id] = conn
        self.conns[client + server] = (conn, 0)
        self.conns[server + client] = (conn, 1)
        d = 0 if (src, sport) == client else 1
        out = []
        if guessed:
            out.append(("event", conn, d, TCP_STARTED_BEFORE_CAPTURE,
                        {"frame": frame, "roles": "guessed"}))
        return conn, d, out

    def swap_roles(self, conn: TcpConnection) -> None:
        """The content shows the guessed client is the server: exchange the roles."""
        conn.swap_roles()
        self.conns[conn.client + conn.server] = (conn, 0)
        self.conns[conn.server + conn.client] = (conn, 1)

    def _guess_roles(self, src, sport, dst, dport):
        hint = self.server_hint
        if hint is not None:
            if hint(dst, dport):
                return (src, sport), (dst, dport), True
            if hint(src, sport):
                return (dst, dport), (src, sport), True
        # the EV's port is ephemeral; 15118 or a lower port is the server
        if dport == 15118 or (sport != 15118 and dport < sport):
            return (src, sport), (dst, dport), True
        return (dst, dport), (src, sport), True

    # ------------------------------------------------------------------ segments
    def segment(self, frame: int, time: float, src: bytes, dst: bytes, h: TcpHeader) -> list:
        """Process one segment; return the outputs it causes (see the class docstring)."""
        conn, d, out = self._lookup(src, h.sport, dst, h.dport, h, frame, time)
        self.last = (conn, d)
        conn.frames += 1
        conn.last_frame = frame
        conn.last_time = time
        hs = conn.dirs[d]
        hs.segments += 1
        if hs.first_frame is None:
            hs.first_frame = frame
        hs.last_frame = frame
        flags = h.flags
        payload = h.payload
        # the same segment twice within 1 ms: the capture recorded the frame twice (two
        # capture points, a mirrored port), not a retransmission by the sender
        sig = (h.seq, h.ack, flags, len(payload), payload[:16])
        prev, prev_time = hs.last_sig, hs.last_sig_time
        hs.last_sig, hs.last_sig_time = sig, time
        if prev == sig and time - prev_time < 0.001:
            hs.duplicates += 1          # counted (connection summary), not an event
            first = hs.duplicate_frames[0] if hs.duplicate_frames else frame
            hs.duplicate_frames = (first, frame)
            return out
        if flags & SYN:
            conn.syn_count += 1
            if flags & ACK:
                if conn.synack_frame is None:
                    conn.synack_frame = frame
                    out.append(("event", conn, d, TCP_SYN_ACK, {"frame": frame}))
                else:
                    out.append(("event", conn, d, TCP_RETRANSMISSION, {"frame": frame, "what": "SYN-ACK"}))
            else:
                if conn.syn_frame is None:
                    conn.syn_frame = frame
                    out.append(("event", conn, d, TCP_SYN, {"frame": frame}))
                else:
                    out.append(("event", conn, d, TCP_RETRANSMISSION, {"frame": frame, "what": "SYN"}))
            if hs.base is None or not hs.syn_seen:
                hs.isn = h.seq
                hs.base = (h.seq + 1) % _MOD
                hs.next_off = 0
                hs.syn_seen = True
        elif hs.base is None:
            hs.base = h.seq
            hs.next_off = 0
        # data
        if payload:
            out.extend(self._data(conn, d, hs, h.seq if not flags & SYN else (h.seq + 1) % _MOD,
                                  payload, frame))
        # the peer's cumulative ACK reveals bytes the capture never saw
        if flags & ACK and not flags & RST:
            peer = conn.dirs[1 - d]
            if peer.base is not None:
                acked = peer.ext(h.ack)
                limit = peer.fin_off if peer.fin_off is not None else acked
                acked = min(acked, limit)
                if acked > peer.next_off and (acked - peer.next_off) < _HALF:
                    out.extend(self._fill_gap(conn, 1 - d, peer, acked, frame, "ACKed unseen segment"))
        if flags & FIN:
            end_off = hs.ext(h.seq) + len(payload)
            if hs.fin_frame is None:
                hs.fin_frame = frame
                hs.fin_off = end_off
                out.append(("event", conn, d, TCP_FIN, {"frame": frame}))
                if hs.pending:
                    out.extend(self._flush(conn, d, hs, frame, "FIN with data missing"))
            if conn.dirs[1 - d].fin_frame is not None:
                conn.closed = True
        if flags & RST:
            if hs.rst_frame is None:
                hs.rst_frame = frame
            out.append(("event", conn, d, TCP_RST, {"frame": frame}))
            conn.closed = True
            for dd in (0, 1):
                if conn.dirs[dd].pending:
                    out.extend(self._flush(conn, dd, conn.dirs[dd], frame, "RST with data missing"))
        return out

    def _data(self, conn, d, hs: HalfStream, seq: int, payload: bytes, frame: int) -> list:
        off = hs.ext(seq)
        end = off + len(payload)
        nxt = hs.next_off
        out = []
        if end <= nxt:
            if off < 0 and end <= 0 and not hs.syn_seen:
                hs.before_start_bytes += len(payload)
                return out
            hs.retransmissions += 1
            hs.retransmitted_bytes += len(payload)
            out.append(("event", conn, d, TCP_RETRANSMISSION,
                        {"frame": frame, "bytes": len(payload), "offset": off}))
            return out
        if off < nxt:
            cut = nxt - off
            hs.retransmitted_bytes += cut
            payload = payload[cut:]
            off = nxt
        if off == nxt:
            hs.next_off = end
            hs.delivered += len(payload)
            out.append(("data", conn, d, payload, frame))
            if hs.pending:
                out.extend(self._drain(conn, d, hs, frame))
            return out
        # a hole before this segment: keep it for later
        hs.out_of_order += 1
        out.append(("event", conn, d, TCP_OUT_OF_ORDER, {"frame": frame, "offset": off,
                                                            "expected": nxt}))
        prev = hs.pending.get(off)
        if prev is None or len(prev[0]) < len(payload):
            if prev is not None:
                hs.pending_bytes -= len(prev[0])
            hs.pending[off] = (payload, frame)
            hs.pending_bytes += len(payload)
        if hs.pending_bytes > self.max_pending:
            out.extend(self._flush(conn, d, hs, frame, "out-of-order buffer full"))
        return out

    def _drain(self, conn, d, hs: HalfStream, frame: int) -> list:
        """Deliver buffered segments that became contiguous."""
        out = []
        while hs.pending:
            off = min(hs.pending)
            if off > hs.next_off:
                break
            data, _fr = hs.pending.pop(off)
            hs.pending_bytes -= len(data)
            end = off + len(data)
            if end <= hs.next_off:
                hs.retransmitted_bytes += len(data)
                continue
            data = data[hs.next_off - off:]
            hs.next_off = end
            hs.delivered += len(data)
            out.append(("data", conn, d, data, frame))
        return out

    def _fill_gap(self, conn, d, hs: HalfStream, upto: int, frame: int, why: str) -> list:
        """Declare stream bytes [next_off, upto) lost; deliver what is buffered after them."""
        out = []
        while hs.next_off < upto:
            nxt_pending = min(hs.pending) if hs.pending else None
            stop = upto if nxt_pending is None else min(upto, nxt_pending)
            if stop > hs.next_off:
                missing = stop - hs.next_off
                hs.lost_bytes += missing
                out.append(("gap", conn, d, missing, frame))
                out.append(("event", conn, d, TCP_BYTES_MISSING,
                            {"frame": frame, "offset": hs.next_off, "bytes": missing, "why": why}))
                hs.next_off = stop
            out.extend(self._drain(conn, d, hs, frame))
            if nxt_pending is None:
                break
        return out

    def _flush(self, conn, d, hs: HalfStream, frame: int, why: str) -> list:
        """Deliver everything buffered, declaring the holes lost."""
        out = []
        while hs.pending:
            out.extend(self._fill_gap(conn, d, hs, min(hs.pending), frame, why))
            out.extend(self._drain(conn, d, hs, frame))
        return out

    def forget(self, conn: TcpConnection) -> None:
        """Let a finished connection go (its state, its place in the lookup table): a later
        segment with the same addresses and ports is a new connection."""
        self.all.pop(conn.id, None)
        for key in (conn.client + conn.server, conn.server + conn.client):
            hit = self.conns.get(key)
            if hit is not None and hit[0] is conn:
                del self.conns[key]
        if self.last is not None and self.last[0] is conn:
            self.last = None

    def close_all(self, frame: int) -> list:
        """End of capture: flush every connection's buffered data (holes reported)."""
        out = []
        for conn in self.all.values():
            for d in (0, 1):
                if conn.dirs[d].pending:
                    out.extend(self._flush(conn, d, conn.dirs[d], frame, "end of capture"))
        return out
