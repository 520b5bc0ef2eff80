"""The timing view: a session's request / response exchanges grouped for the V2G timers.

:func:`timing_view` builds, in one pass over the session's events, the exchanges
(:func:`.exchanges.exchanges`) grouped into *runs* — consecutive exchanges of the same
request on one TCP connection; the charge loop (CurrentDemand / ChargingStatus /
AC_/DC_ChargeLoop with their MeteringReceipt / MeteringConfirmation, rules/timing_tables.py
``CHARGE_LOOP_GROUP``) is one run — and what the timers need around them: each connection's
V2GTP events, its FIN / RST, the bytes the capture lacks, the TCP retransmissions and the
connection activity of the session. The timing rules (rules/timing/) read it: a loop of
thousands of messages yields at most one finding per rule and message type.

Times are epoch seconds; ``side`` is ``EV`` / ``EVSE``.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter
from dataclasses import dataclass, field

from ccs_analyzer.dissectors.events import (TCP_BYTES_MISSING, TCP_FIN, TCP_RETRANSMISSION,
                                            TCP_RST, TCP_SYN)
from ccs_analyzer.rules.timing_tables import CHARGE_LOOP_GROUP

from .events import base_name, body, protocol_of_session
from .exchanges import exchanges

__all__ = ["ExchangeRun", "TimingView", "timing_view", "sent_at", "between"]

_EV = "EV->EVSE"


@dataclass
class ExchangeRun:
    """Consecutive exchanges (:class:`.exchanges.Exchange`) of one request (or of the charge
    loop, ``key`` "charge loop") on connection ``conn``; ``key`` is otherwise the base name."""

    conn: int | None
    key: str
    exchanges: list = field(default_factory=list)


@dataclass
class TimingView:
    """What the timing rules read of one session (built in one pass, :func:`timing_view`).

    ``protocol``: the session's protocol label; ``runs``: the :class:`ExchangeRun` list in
    order; ``by_conn``: conn → its V2GTP events (decoded or not), in order; ``closes``:
    conn → [(time, frame, side, "FIN" / "RST")]; ``missing``: conn → sorted times of "TCP
    bytes missing from capture"; ``retrans``: (conn, direction) → sorted times of TCP
    retransmissions; ``last_time``: the capture's last time (the session's without one);
    ``copies``: (conn, direction) → (stream offsets, [(time, offset, bytes)] sorted by
    offset, longest bytes) of the retransmitted segments; ``pos``: id(event) → its index in
    ``by_conn[conn]``; ``activity``: [(time, conn)] of SDP (conn None), SYN and V2GTP
    events, in time order."""

    protocol: str | None
    runs: list[ExchangeRun]
    by_conn: dict
    closes: dict
    missing: dict
    retrans: dict
    last_time: float
    copies: dict = field(default_factory=dict)
    pos: dict = field(default_factory=dict)
    activity: list = field(default_factory=list)

    def moved_on(self, conn, t: float) -> bool:
        """Whether the session shows activity (SDP, a SYN, V2GTP) on another connection after
        ``t``: the EV left connection ``conn``."""
        times = [a[0] for a in self.activity]
        i = bisect_right(times, t)
        return any(c != conn for _, c in self.activity[i:])

    def copies_of(self, e) -> list[float]:
        """Times at which the bytes of V2G message ``e`` were sent again (TCP retransmissions
        on its connection and direction overlapping its stream range), after its first copy,
        sorted. Not for TLS connections (their record offsets are not the V2GTP stream's)."""
        idx = self.copies.get((e.conn, e.direction))
        if not idx or e.offset is None or (e.info or {}).get("tls"):
            return []
        offs, rows, longest = idx
        lo, hi = e.offset, e.offset + 8 + len(e.payload or b"")
        out = []
        i = bisect_left(offs, hi) - 1
        while i >= 0 and offs[i] + longest > lo:
            t, off, n = rows[i]
            if off + n > lo and t > e.time:
                out.append(t)
            i -= 1
        return sorted(out)

    def secc_latency(self, x) -> tuple[float, bool]:
        """(latency s, whether the request was retransmitted first) of an exchange ``x`` as
        the SECC saw it: from the last copy of the request sent before the response (the one
        the SECC answered — earlier copies were lost on the line) to the response's first
        transmission."""
        res_t = sent_at(x.response)
        q = x.request
        if (q.conn, q.direction) not in self.copies:       # nothing was sent again
            return res_t - q.time, False
        again = [t for t in self.copies_of(q) if t < res_t]
        start = again[-1] if again else x.request.time
        return res_t - start, bool(again)

    def close_after(self, conn, t: float):
        """The first FIN / RST of connection ``conn`` at or after ``t`` as (time, frame, side,
        name); None when none came."""
        for c in self.closes.get(conn, ()):
            if c[0] >= t:
                return c
        return None

    def next_on_conn(self, e):
        """The V2GTP event after ``e`` on its connection (None at the end)."""
        lst = self.by_conn.get(e.conn, ())
        i = self.pos.get(id(e))
        if i is None or i + 1 >= len(lst):
            return None
        return lst[i + 1]

    def next_after_run(self, run: ExchangeRun):
        """What followed a run on its connection: ("request", event) for the EV's next
        request, ("close", (time, frame, side, name)) for a FIN / RST, ("capture", None)
        otherwise."""
        lastx = run.exchanges[-1]
        anchor = lastx.response or lastx.request
        nxt = self.next_on_conn(anchor)
        while nxt is not None and nxt.direction != _EV:
            nxt = self.next_on_conn(nxt)
        if nxt is not None:
            return "request", nxt
        close = self.close_after(run.conn, anchor.time)
        if close is not None:
            return "close", close
        return "capture", None

    def stop_label(self, res) -> str:
        """``PowerDeliveryRes (Stop)`` when the response answers a stopping PowerDeliveryReq
        (its ChargeProgress, or ``ReadyToChargeState=false``); the response's name
        otherwise."""
        if base_name(res.name) != "PowerDelivery":
            return res.name
        lst = self.by_conn.get(res.conn, ())
        i = self.pos.get(id(res), 0)
        for j in range(i - 1, max(-1, i - 4), -1):
            q = lst[j]
            if q.name == "PowerDeliveryReq" and q.message is not None:
                b = body(q)
                cp = b.get("ChargeProgress")
                if cp:
                    return f"PowerDeliveryRes ({cp})"
                if b.get("ReadyToChargeState") is False:
                    return "PowerDeliveryRes (ReadyToChargeState=false)"
                break
        return res.name


def timing_view(session, ctx) -> TimingView:
    """The session's :class:`TimingView` (view ``timing``, built once per analysis)."""
    return ctx.view("timing", session, lambda: _build(session, ctx))


def _build(session, ctx) -> TimingView:
    by_conn: dict = {}
    closes: dict = {}
    missing: dict = {}
    retrans: dict = {}
    copies: dict = {}
    pos: dict = {}
    activity: list = []
    for e in session.events:
        layer = e.layer
        if layer == "v2gtp":
            lst = by_conn.setdefault(e.conn, [])
            pos[id(e)] = len(lst)
            lst.append(e)
            activity.append((e.time, e.conn))
        elif layer == "sdp":
            activity.append((e.time, None))
        elif layer == "tcp":
            n = e.name
            if n == TCP_SYN:
                activity.append((e.time, e.conn))
            if n in (TCP_FIN, TCP_RST):
                closes.setdefault(e.conn, []).append(
                    (e.time, e.frame, "EV" if e.direction == _EV else "EVSE", n))
            elif n == TCP_BYTES_MISSING:
                missing.setdefault(e.conn, []).append(e.time)
            elif n == TCP_RETRANSMISSION:
                retrans.setdefault((e.conn, e.direction), []).append(e.time)
                m = e.message or {}
                if isinstance(m.get("offset"), int) and isinstance(m.get("bytes"), int):
                    copies.setdefault((e.conn, e.direction), []).append((e.time, m["offset"], m["bytes"]))
    runs: list[ExchangeRun] = []
    for x in exchanges(session, ctx):
        name = x.name
        key = "charge loop" if name in CHARGE_LOOP_GROUP else name
        if not runs or runs[-1].key != key or runs[-1].conn != x.request.conn:
            runs.append(ExchangeRun(x.request.conn, key))
        runs[-1].exchanges.append(x)
    cap_last = (ctx.capture or {}).get("last_time")
    if cap_last is None:
        cap_last = session.events[-1].time if session.events else 0.0
    activity.sort(key=itemgetter(0))
    for times in (*missing.values(), *retrans.values()):
        times.sort()
    for key, rows in list(copies.items()):       # by stream offset, for copies_of' bisection
        rows.sort(key=lambda r: r[1])
        copies[key] = ([r[1] for r in rows], rows, max(r[2] for r in rows))
    return TimingView(protocol_of_session(session, ctx), runs, by_conn, closes, missing, retrans,
                      cap_last, copies, pos, activity)


def sent_at(e) -> float:
    """When message ``e`` was first sent (epoch s): its first frame's time when a later frame
    completed it — a retransmission of its tail, say (dissector fact ``info["first_time"]``)
    — else its own time. A response is timed from its first transmission."""
    info = e.info if e is not None else None
    t = info.get("first_time") if info else None
    return t if isinstance(t, (int, float)) else e.time


def between(times: list | None, t0: float, t1: float) -> int:
    """How many of the sorted ``times`` fall in [t0, t1]."""
    if not times:
        return 0
    return bisect_right(times, t1) - bisect_left(times, t0)
