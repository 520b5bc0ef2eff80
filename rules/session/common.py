"""What the session rule modules share: the SessionSetup exchanges of the capture and SessionIDs."""
from __future__ import annotations

from dataclasses import dataclass

from ccs_analyzer.analyzer.views.index import v2g_messages

from ..helpers import body, facts, header, is_failed


def _sid(e) -> str | None:
    sid = header(e).get("SessionID")
    return sid.lower() if isinstance(sid, str) else None


def _zero(sid: str | None) -> bool:
    return sid is not None and (sid == "" or set(sid) <= {"0"})


@dataclass
class Setup:
    """One SessionSetup exchange: ``req`` / ``res`` (None without response), the session
    and connection, ``offered`` (the request's SessionID, lower-case hex), ``code`` and
    ``issued`` (the response's ResponseCode and SessionID), ``known`` (what the offered ID
    was at that moment: "zero", "paused", "terminated", "running", "unknown") and
    ``owner`` (the session that issued the offered ID, when known)."""

    session: object
    conn: object
    req: object
    res: object | None
    offered: str | None
    code: str | None
    issued: str | None
    known: str
    owner: object | None


@dataclass(frozen=True)
class Past:
    """A session or message of an earlier segment, let go: its ``id`` (sessions) or its
    ``frame`` and ``time`` (messages) are what the rules still name."""

    id: str | None = None
    frame: int | None = None
    time: float | None = None


def setups(ctx) -> list[Setup]:
    """Every SessionSetup exchange of the capture, in frame order (built once per analysis;
    of a segment, after the earlier segments' last issue of each SessionID)."""
    return ctx.view("session.setups", None, lambda: _setups(ctx))


def _past(x):
    return None if x is None else Past(getattr(x, "id", None), getattr(x, "frame", None),
                                       getattr(x, "time", None))


def _setups(ctx) -> list[Setup]:
    carry = getattr(ctx, "carry", None)
    status, owner, past = (carry or {}).get("session.setups") or ({}, {}, [])
    status, owner = dict(status), dict(owner)
    out = _setups_of(ctx, status, owner)
    if carry is not None:         # hand on each ID's status, issuer and last issue
        last = {st.issued: st for st in past + out
                if st.res is not None and (st.code or "").startswith("OK") and st.issued}
        carry["session.setups"] = (
            status, {k: _past(v) for k, v in owner.items()},
            [Setup(_past(st.session), None, _past(st.req), _past(st.res), st.offered, st.code,
                   st.issued, st.known, _past(st.owner)) for st in last.values()])
    return past + out


def _setups_of(ctx, status: dict, owner: dict) -> list[Setup]:
    """The SessionSetup exchanges of ``ctx.sessions``; ``status`` (ID → running / paused /
    terminated) and ``owner`` (ID → the session that issued it) start with what earlier
    segments handed on and are updated."""
    events = []
    for s in ctx.sessions:
        for e in v2g_messages(s, ctx):
            if e.name in ("SessionSetupReq", "SessionSetupRes", "SessionStopReq", "SessionStopRes"):
                events.append((e.frame, e, s))
    events.sort(key=lambda x: x[0])
    # status: ID → running / paused / terminated; owner: ID → the session that issued it
    pending: dict = {}                 # conn → Setup waiting for its response
    stop_kind: dict = {}               # conn → ChargingSession of the last SessionStopReq
    conn_sid: dict = {}                # conn → ID in use on the connection
    out: list[Setup] = []
    for _, e, s in events:
        c = e.conn
        if e.name == "SessionSetupReq":
            sid = _sid(e)
            if _zero(sid):
                known = "zero"
            else:
                known = status.get(sid, "unknown")
            st = Setup(s, c, e, None, sid, None, None, known, owner.get(sid))
            out.append(st)
            pending[c] = st
        elif e.name == "SessionSetupRes":
            st = pending.pop(c, None)
            if st is None:
                continue
            st.res = e
            f = facts(e)
            st.code = f.get("ResponseCode") if isinstance(f.get("ResponseCode"), str) else None
            st.issued = _sid(e)
            if st.code and st.code.startswith("OK") and st.issued and not _zero(st.issued):
                status[st.issued] = "running"
                owner.setdefault(st.issued, s)
                if st.code == "OK_NewSessionEstablished" and st.issued in owner and owner[st.issued] is not s:
                    owner[st.issued] = s
                conn_sid[c] = st.issued
        elif e.name == "SessionStopReq":
            cs = body(e).get("ChargingSession")
            stop_kind[c] = cs if isinstance(cs, str) else "Terminate"
        elif e.name == "SessionStopRes":
            sid = conn_sid.get(c) or _sid(e)
            if sid and not is_failed(facts(e).get("ResponseCode")):
                status[sid] = "paused" if stop_kind.get(c) == "Pause" else "terminated"
    return out
