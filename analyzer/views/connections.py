"""Connection activity: what the capture shows of the TCP connections — lost bytes, one side
only, retransmissions, a half-open connection's retry.

Reads the connection summaries the dissectors write (``ctx.connections``, entries with
``conn``, ``client`` / ``server`` endpoints, ``client_mac`` / ``server_mac``, ``frames``,
``bytes``, ``lost_bytes`` [EV→EVSE, EVSE→EV], ``syn_frame``, ``synack_frame``,
``rst_frames``, ``segments``) and the session's TCP events (:mod:`.index`).
"""
from __future__ import annotations

from ccs_analyzer.dissectors.events import TCP_RETRANSMISSION

from .index import session_index

__all__ = ["lost_bytes", "one_sided", "conn_one_sided", "half_open_retry", "retransmissions"]


def lost_bytes(ctx, conn) -> int:
    """Bytes the capture lacks on connection number ``conn`` (both directions; 0 when the
    connection is unknown)."""
    for c in ctx.connections:
        if c.get("conn") == conn:
            return sum(c.get("lost_bytes") or [0, 0])
    return 0


def one_sided(c: dict) -> bool:
    """A connection (an entry of ``ctx.connections``) of which the capture shows only one
    side: frames from one endpoint and none from the other (a listen-mode sniffer that sees
    one direction only). Judged by the link-layer source addresses the pipeline records per
    direction."""
    macs = (c.get("client_mac"), c.get("server_mac"))
    return (macs[0] is None) != (macs[1] is None) and (c.get("frames") or 0) >= 2 and \
        any(c.get("bytes") or ())


def conn_one_sided(ctx, conn) -> bool:
    """Whether connection number ``conn`` is :func:`one_sided` — rules that judge what one
    side did in answer to the other (a loop's end, PreCharge's progress) stand down there:
    the capture cannot show it (CAP003 reports the capture)."""
    return any(c.get("conn") == conn and one_sided(c) for c in ctx.connections)


def half_open_retry(c: dict, conns_after: list) -> dict | None:
    """The connection after ``c`` that retried it, when ``c`` is an EV's SYN answered by the
    SECC with a segment of an older connection (no SYN-ACK; RFC 9293 §3.10.7.3 / RFC 5961 §4:
    a SYN that hits a synchronized connection is answered with an ACK) and reset by the EV in
    SYN-SENT state (RFC 9293 §3.10.7.3: an unacceptable ACK is answered with RST, then the SYN
    is sent again); None otherwise. ``c``: a connection summary; ``conns_after``: the
    capture's later connection summaries."""
    if c.get("syn_frame") is None or c.get("synack_frame") is not None:
        return None
    rst = c.get("rst_frames") or [None, None]
    segs = c.get("segments") or [0, 0]
    if rst[0] is None or rst[1] is not None or not (len(segs) > 1 and segs[1]):
        return None
    for d in conns_after:
        if d.get("client") == c.get("client") and d.get("server") == c.get("server") \
                and d.get("syn_frame") is not None:
            return d
    return None


def retransmissions(session, ctx, duplicate_within_s: float = 0.001) -> dict:
    """The session's "TCP retransmission" events by (connection, direction), split into
    ([retransmissions on the wire], [segments the capture recorded twice]), each in frame
    order. A duplicate is a retransmission whose stream offset is that of a V2GTP message of
    the same direction completed less than ``duplicate_within_s`` (s) earlier — the same
    frame captured twice (two capture interfaces, a bridge), not a sender retransmitting
    after its timeout (view ``connections.retransmissions`` per ``duplicate_within_s``)."""
    def build() -> dict:
        idx = session_index(session, ctx)
        starts = {}
        for e in idx.v2g_all:
            if e.offset is not None:
                starts[(e.conn, e.direction, e.offset)] = e.time
        out: dict = {}
        for e in idx.tcp:
            if e.name != TCP_RETRANSMISSION:
                continue
            real, dups = out.setdefault((e.conn, e.direction), ([], []))
            t0 = starts.get((e.conn, e.direction, (e.message or {}).get("offset")))
            (dups if t0 is not None and 0 <= e.time - t0 < duplicate_within_s else real).append(e)
        return out
    return ctx.view(("connections.retransmissions", duplicate_within_s), session, build)
