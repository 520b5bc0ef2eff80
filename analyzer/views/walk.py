"""The sequence walk: a session's V2G requests and responses per TCP connection, judged
against the protocol's sequence tables (rules/state_machines.py, PROTOCOL_FACTS §4A-§4C).

:func:`walk` gives, per connection and in order, each request with its response (or none),
the state the tables were in when it came and whether they allow it, the responses that
answered nothing or the wrong request, and how the connection ended (FIN / RST) or lost
bytes. The sequence and session rules read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ccs_analyzer.dissectors.events import TCP_BYTES_MISSING, TCP_FIN, TCP_RST, TCP_SYN
from ccs_analyzer.rules.state_machines import (BODY_NEEDED, LOOP, Context, State, qualifier,
                                               start_state, state_after, update_context)

from .events import body, facts, protocol_of_session

__all__ = ["Step", "Walk", "walk"]


@dataclass
class Step:
    """One request of a connection: ``req`` and its ``res`` (None when none came),
    ``before`` (the State it was judged against, None = unknown), ``prev_res`` (the
    response that set that state), ``ok`` (True allowed / False not allowed / None not
    checked), ``base`` / ``qual`` (PowerDelivery's ChargeProgress), ``conn``, and what
    came instead of a response: ``next_req`` (the EV's next request), ``wrong_res`` (a
    response of another type), ``undecoded`` (an undecodable message from the EVSE)."""

    req: object
    base: str
    qual: str | None
    conn: int | None
    before: State | None
    prev_res: object | None
    ok: bool | None
    res: object | None = None
    next_req: object | None = None
    wrong_res: object | None = None
    undecoded: bool = False
    loop_run: int = 1


@dataclass
class Walk:
    """The walk of a session (see :func:`walk`)."""

    protocol: str | None
    steps: list[Step] = field(default_factory=list)
    orphans: list[tuple] = field(default_factory=list)      # (response event, prev step or None)
    ends: dict = field(default_factory=dict)                # conn → [(time, frame, name, direction)]
    gaps: dict = field(default_factory=dict)                # conn → [(time, frame, direction)]


@dataclass
class _Conn:
    state: State | None
    prev_res: object | None = None
    pending: Step | None = None
    ctx: Context = field(default_factory=Context)
    seen_request: bool = False
    started: bool = False
    last_step: Step | None = None


_EMPTY: dict = {}


def walk(session, ctx) -> Walk:
    """The session's requests and responses per connection, judged against the protocol's
    sequence table (view ``walk``, built once per analysis): a :class:`Walk` with the
    :class:`Step` of every request, the orphan responses, and per connection its FIN / RST
    (``ends``) and the stretches of bytes missing from the capture (``gaps``)."""
    return ctx.view("walk", session, lambda: _walk(session, protocol_of_session(session, ctx)))


def _walk(session, protocol) -> Walk:
    w = Walk(protocol)
    conns: dict = {}
    mode = None
    syn_seen = {e.conn for e in session.events if e.layer == "tcp" and e.name == TCP_SYN}
    for e in session.events:
        c = e.conn
        if e.layer == "tcp":
            if e.name in (TCP_FIN, TCP_RST):
                w.ends.setdefault(c, []).append((e.time, e.frame, e.name, e.direction))
            elif e.name == TCP_BYTES_MISSING:
                w.gaps.setdefault(c, []).append((e.time, e.frame, e.direction))
            continue
        if e.layer != "v2gtp":
            continue
        cs = conns.get(c)
        if cs is None:
            known = c in syn_seen or (e.message is not None and e.name == "supportedAppProtocolReq")
            cs = conns[c] = _Conn(start_state(protocol) if known else None)
            cs.started = known
            cs.ctx.mode = mode
        if e.message is None:
            if e.direction == "EVSE->EV" and cs.pending is not None:
                cs.pending.undecoded = True
                cs.pending = None
            cs.state = None
            continue
        name = e.name
        if name.endswith("Req"):
            b = name[:-3]
            bd = body(e) if b in BODY_NEEDED else _EMPTY
            q = qualifier(protocol, b, bd) if b == "PowerDelivery" else None
            st = cs.state
            ok = None if st is None else st.allows(b, q)
            if cs.pending is not None and cs.pending.next_req is None:
                cs.pending.next_req = e
            prev = cs.last_step
            step = Step(e, b, q, c, st, cs.prev_res, ok)
            if prev is not None and prev.base == b and b not in LOOP:
                step.loop_run = prev.loop_run + 1
            w.steps.append(step)
            update_context(protocol, cs.ctx, b, bd)
            mode = cs.ctx.mode or mode
            cs.pending = step
            cs.last_step = step
            cs.seen_request = True
        elif name.endswith("Res"):
            p = cs.pending
            if p is None:
                if cs.seen_request or cs.started:
                    w.orphans.append((e, cs.last_step))
                cs.state = None
                continue
            cs.pending = None
            if name[:-3] != p.base:
                p.wrong_res = e
                cs.state = None
                continue
            p.res = e
            cs.state = state_after(protocol, name, facts(e), lambda e=e: body(e),
                                   body(p.req) if p.base in BODY_NEEDED else _EMPTY, cs.ctx)
            cs.prev_res = e
    return w
