"""What the transport rule modules share: the session's TCP connections by number."""
from __future__ import annotations


def _conns(ctx) -> dict:
    return {c["conn"]: c for c in ctx.connections}
