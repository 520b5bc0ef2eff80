"""Request / response exchanges of a session's V2G messages.

Two readings, both per TCP connection and in frame order:

* :func:`exchanges` — each request with the response that answers it (ISO 15118-2 §8.8.2:
  one request, one response): the next response of the same message type on the same
  connection before the next request (:class:`Exchange`, ``response`` None when none came).
  The timing view and the certificate rules read it.
* :func:`with_requests` / :func:`responses` — every decoded message with the latest request
  of its connection, whatever its type: what a response answered as the EV saw it (the
  response-code rules).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .events import base_name
from .index import session_index

__all__ = ["Exchange", "pairs", "exchanges", "response_to", "with_requests", "responses"]


@dataclass
class Exchange:
    """A request and its response (None when none came) on one connection.

    ``name``: the base name (``PreCharge``); ``latency_s``: response time − request time
    (s; None without response)."""

    request: object
    response: object | None
    #: the request's base name (set once: the timing rules read it per exchange)
    name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self.name = base_name(self.request.name)

    @property
    def latency_s(self) -> float | None:
        return None if self.response is None else self.response.time - self.request.time


def pairs(session) -> list[Exchange]:
    """Request/response pairs of the session's V2G messages, per TCP connection, in order:
    each request is paired with the next response of the same message type on the same
    connection before the next request (ISO 15118-2 §8.8.2: one request, one response).
    Built anew on each call; :func:`exchanges` is the shared view."""
    out: list[Exchange] = []
    pending: dict[int | None, Exchange] = {}
    for e in session.events:
        if e.layer != "v2gtp" or e.message is None:
            continue
        c = e.conn
        if e.name.endswith("Req"):
            out.append(Exchange(e, None))
            pending[c] = out[-1]
        elif e.name.endswith("Res"):
            ex = pending.get(c)
            if ex is not None and ex.response is None and base_name(e.name) == ex.name:
                ex.response = e
                pending.pop(c, None)
    return out


def exchanges(session, ctx) -> list[Exchange]:
    """The session's :func:`pairs` (view ``exchanges``, built once per analysis)."""
    return ctx.view("exchanges", session, lambda: pairs(session))


def response_to(session, ctx, request):
    """The response :func:`exchanges` pairs with ``request`` (an event of the session), None
    when none came or the event is not one of the session's requests."""
    answers = ctx.view("exchanges.answers", session,
                       lambda: {id(x.request): x.response for x in exchanges(session, ctx)})
    return answers.get(id(request))


def accepted_response(session, ctx, request) -> tuple | None:
    """(response, its ResponseCode) when ``request`` was answered with a ResponseCode OK…
    (the SECC accepted it), else None: what the rules that catch an SECC accepting what it
    had to refuse ask (MSG018, SIG004)."""
    from .events import response_code
    res = response_to(session, ctx, request)
    rc = response_code(res) if res is not None else None
    return (res, rc) if rc and rc.startswith("OK") else None


def _with_requests(v2g) -> list:
    """:func:`with_requests` of the session's decoded V2G messages ``v2g`` (in order)."""
    out = []
    last_req: dict = {}
    for e in v2g:
        if e.name.endswith("Req"):
            last_req[e.conn] = e
            out.append((e, None))
        else:
            out.append((e, last_req.get(e.conn)))
    return out


def with_requests(session, ctx) -> list[tuple]:
    """[(event, request)] for every decoded V2G message of the session in frame order:
    ``request`` None for a request, else the latest request on the message's connection
    (None when none came before) — whatever its type (view ``exchanges.with_requests``)."""
    return ctx.view("exchanges.with_requests", session,
                    lambda: _with_requests(session_index(session, ctx).v2g))


def responses(session, ctx) -> list[tuple]:
    """[(response, request or None)]: the :func:`with_requests` entries of the responses
    (names ending in ``Res``) (view ``exchanges.responses``)."""
    return ctx.view("exchanges.responses", session,
                    lambda: [(e, q) for e, q in with_requests(session, ctx) if e.name.endswith("Res")])
