"""The session index: a session's events sorted by kind, in one pass.

Used by the message-content, certificate, TLS, transport and capture-quality rules, and by
the views that need a session's decoded messages (:func:`v2g_messages`).
"""
from __future__ import annotations

__all__ = ["SessionIndex", "session_index", "v2g_messages"]


class SessionIndex:
    """The events of one session sorted by kind (one pass over ``session.events``), each
    list in frame order: ``v2g`` decoded V2GTP messages, ``v2g_all`` every V2GTP event
    (undecodable ones and framing errors too), ``by_name`` decoded messages by name,
    ``tcp``, ``tls``, ``sdp``, ``slac`` events; ``n`` the session's number of events. Use
    :func:`session_index`."""

    __slots__ = ("n", "v2g", "v2g_all", "by_name", "tcp", "tls", "sdp", "slac")

    def __init__(self, session):
        self.n = len(session.events)
        self.v2g, self.v2g_all, self.tcp, self.tls, self.sdp, self.slac = [], [], [], [], [], []
        self.by_name: dict[str, list] = {}
        lists = {"tcp": self.tcp, "tls": self.tls, "sdp": self.sdp, "slac": self.slac}
        for e in session.events:
            if e.layer == "v2gtp":
                self.v2g_all.append(e)
                if e.message is not None:
                    self.v2g.append(e)
                    lst = self.by_name.get(e.name)
                    if lst is None:
                        lst = self.by_name[e.name] = []
                    lst.append(e)
            else:
                lst = lists.get(e.layer)
                if lst is not None:
                    lst.append(e)

    def named(self, *names: str) -> list:
        """Decoded messages with one of ``names``, in frame order."""
        if len(names) == 1:
            return self.by_name.get(names[0], [])
        out = [e for n in names for e in self.by_name.get(n, ())]
        out.sort(key=lambda e: e.frame)
        return out


def session_index(session, ctx) -> SessionIndex:
    """The :class:`SessionIndex` of a session (view ``index``, built once per analysis)."""
    return ctx.view("index", session, lambda: SessionIndex(session))


def v2g_messages(session, ctx) -> list:
    """The session's own decoded V2G message events (``layer`` v2gtp, ``message`` not None),
    in frame order: :attr:`SessionIndex.v2g` without the EV's retries beside or after the
    session (``Session.retries``, analyzer/sessions.py — e.g. a supportedAppProtocolReq on a
    connection the SECC never answers is not part of the session's message sequence).
    Read-only."""
    def own():
        retry = {id(e) for e in getattr(session, "retries", ())}
        v2g = session_index(session, ctx).v2g
        return [e for e in v2g if id(e) not in retry] if retry else v2g
    return ctx.view("index.own_v2g", session, own)
