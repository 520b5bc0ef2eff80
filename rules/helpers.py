"""Small helpers every rule uses to read a session and word its findings: its decoded V2G
messages, their bodies and SI values, the side that sent a message, the decoded excerpt that
proves a finding.

Rules never parse bytes: everything here reads the analyzer's events (decoded trees,
DESIGN.md "Events"). Reading one event is analyzer/views/events.py's (re-exported here);
the per-session views several rules share (SLAC runs, exchanges, loops, connection
activity …) are in analyzer/views/.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

from ccs_analyzer.analyzer.physical import find_first
from ccs_analyzer.analyzer.views.events import (base_name, body, facts, header, is_failed,
                                                protocol_of_session, response_code)

__all__ = ["messages", "body", "header", "facts", "find_first", "side_of", "culprit_of",
           "base_name", "protocol_of_session", "first_last", "response_code", "is_failed",
           "excerpt", "lower", "ms", "utc_epoch", "utc_text"]


def messages(session, names: tuple[str, ...] | set[str] | None = None) -> list:
    """The session's decoded V2G message events (``message`` not None), in frame order;
    only those named in ``names`` when given."""
    out = [e for e in session.events if e.layer == "v2gtp" and e.message is not None]
    if names is not None:
        out = [e for e in out if e.name in names]
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


def excerpt(e, keys=None) -> dict:
    """The decoded excerpt that proves a finding: ``{"message", "frame", field: decoded
    value…}`` with the fields named in ``keys`` (found anywhere in the body, first
    occurrence), all body fields but the Header when None; {} without an event."""
    if e is None:
        return {}
    b = body(e)
    if keys is None:
        sel = {k: v for k, v in b.items() if k != "Header"}
    else:
        sel = {}
        for k in keys:
            v = find_first(b, k)
            if v is not None:
                sel[k] = v
    return {"message": e.name, "frame": e.frame, **sel}


_LOWER = {"error": "warning", "warning": "info", "info": "info"}


def lower(severity: str) -> str:
    """One step less severe (error → warning → info): for findings made unreliable by frames
    missing from the capture."""
    return _LOWER.get(severity, severity)


def ms(seconds: float) -> str:
    """A duration in seconds as whole milliseconds: ``0.2`` → ``"200 ms"``."""
    return f"{seconds * 1000:.0f} ms"


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
