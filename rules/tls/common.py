"""What the TLS rule modules share: the session's TLS connections and handshakes, wording."""
from __future__ import annotations

ISO2 = "ISO 15118-2"
ISO20 = "ISO 15118-20"


def tls_connections(session, ctx) -> list[dict]:
    """The session's TLS connection summaries (kind "tls")."""
    conns = {c["conn"]: c for c in ctx.connections}
    return [conns[c] for c in session.connections if conns.get(c, {}).get("kind") == "tls"]


def _owner(e) -> str:
    return "SECC" if e.direction == "EVSE->EV" else "EVCC" if e.direction == "EV->EVSE" else "unknown"


def _protocol(session, ctx) -> str | None:
    return ctx.summaries.get(session.id, {}).get("protocol")
