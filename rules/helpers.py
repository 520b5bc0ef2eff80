"""Small helpers every rule uses to read a session: its decoded V2G messages, their bodies
and SI values, request/response pairs, the side that sent a message.

Rules never parse bytes: everything here reads the analyzer's events (decoded trees,
DESIGN.md "Events").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from ccs_analyzer.analyzer.physical import (
    event_facts,
    find_first,
    header_of,
    message_body,
)

__all__ = ["cached", "messages", "body", "header", "facts", "find_first", "pairs", "Exchange",
           "side_of", "culprit_of", "base_name", "protocol_of_session", "first_last",
           "response_code", "is_failed", "utc_epoch", "utc_text"]


def cached(ctx, session, key: str, build):
    """``build()`` once per analysis, session and ``key`` (a name such as "slac.view"): the
    views several rules share live in the analysis' scratch space ``ctx.cache`` and go with
    it, so no module keeps sessions alive after their analysis. ``session`` None: once per
    analysis. Without a ``cache`` attribute on ``ctx`` the value is built every time."""
    cache = getattr(ctx, "cache", None)
    if cache is None:
        return build()
    k = (key, None if session is None else session.id, None if session is None else len(session.events))
    hit = cache.get(k)
    if hit is None:
        hit = cache[k] = build()
    return hit


def messages(session, names: tuple[str, ...] | set[str] | None = None) -> list:
    """The session's decoded V2G message events (``message`` not None), in frame order;
    only those named in ``names`` when given."""
    out = [e for e in session.events if e.layer == "v2gtp" and e.message is not None]
    if names is not None:
        out = [e for e in out if e.name in names]
    return out


def body(e) -> dict:
    """The body of a decoded message (the Body child for DIN / ISO-2, the root for -20)."""
    return message_body(e.message)[1]


def header(e) -> dict:
    """The message header (SessionID, Notification, Signature / -20 TimeStamp)."""
    return header_of(e.message)


def facts(e) -> dict:
    """The message's values in SI units and its status fields (analyzer/physical.py
    ``event_facts``): ``EVTargetVoltage_V``, ``EVSEPresentCurrent_A``, ``ResponseCode`` …"""
    return event_facts(e)


def base_name(name: str) -> str:
    """``PreChargeReq`` → ``PreCharge``; names without Req/Res stay as they are."""
    return name[:-3] if name.endswith(("Req", "Res")) else name


def response_code(e) -> str | None:
    """The ResponseCode of a response event (None for requests / undecoded messages)."""
    if e.message is None or not e.name.endswith("Res"):
        return None
    rc = facts(e).get("ResponseCode")
    return rc if isinstance(rc, str) else None


def is_failed(code: str | None) -> bool:
    """Whether a ResponseCode is a failure (FAILED… in DIN / ISO-2 / -20,
    Failed_NoNegotiation in SupportedAppProtocol)."""
    return isinstance(code, str) and code.upper().startswith("FAILED")


@dataclass
class Exchange:
    """A request and its response (None when none came) on one connection.

    ``latency_s``: response time − request time (None without response)."""

    request: object
    response: object | None

    @property
    def name(self) -> str:
        return base_name(self.request.name)

    @property
    def latency_s(self) -> float | None:
        return None if self.response is None else self.response.time - self.request.time


def pairs(session) -> list[Exchange]:
    """Request/response pairs of the session's V2G messages, per TCP connection, in order:
    each request is paired with the next response of the same message type on the same
    connection before the next request (ISO 15118-2 §8.8.2: one request, one response)."""
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


def side_of(e) -> str | None:
    """``EV`` or ``EVSE``: who sent the event."""
    if e.direction == "EV->EVSE":
        return "EV"
    if e.direction == "EVSE->EV":
        return "EVSE"
    return None


def culprit_of(e) -> str:
    """The culprit code for the sender of an event: EVCC, SECC or unknown."""
    return {"EV": "EVCC", "EVSE": "SECC"}.get(side_of(e), "unknown")


def protocol_of_session(session, ctx) -> str | None:
    """The session's protocol label (``DIN 70121``, ``ISO 15118-2``, ``ISO 15118-20``)."""
    return ctx.summaries.get(session.id, {}).get("protocol")


def first_last(events) -> list[int]:
    """Frames of the first and last of a list of events (the evidence of a loop)."""
    if not events:
        return []
    return sorted({events[0].frame, events[-1].frame})


def iter_requests(session, name: str) -> Iterator:
    """Requests named ``name`` (e.g. ``PreChargeReq``) of the session, in order."""
    for e in messages(session):
        if e.name == name:
            yield e


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


def utc_epoch(text: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 UTC time as x509info writes it ("2024-01-31T12:00:00Z");
    None when absent or not in that form."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def utc_text(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC (a damaged capture's impossible time as seconds)."""
    try:
        return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{t:.0f} s since the epoch"
