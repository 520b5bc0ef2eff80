"""Capture quality: what the capture itself lets us trust."""
from __future__ import annotations

from .base import Rule


class CaptureDamaged(Rule):
    """The capture file is damaged or cut short.

    What it checks: the reader's problems — a truncated last block, corrupted blocks skipped
    while resynchronising, packets cut by the snap length.
    Why it matters: frames are missing from the analysis; findings near the damage may be
    artefacts of the capture, not of the charger or the vehicle.
    Fix (capture): stop the capture cleanly (let the capture tool flush), capture with a
    snap length of at least 1600 bytes, check the storage medium.
    Source: pcapng (draft-ietf-opsawg-pcapng §4) block framing; pcap record headers.
    """

    code = "CAP001"
    title = "Capture file damaged or cut short"
    severity = "warning"
    category = "capture-quality"
    culprit = "capture"
    scope = "capture"

    def check(self, session, ctx):
        for p in ctx.capture_problems:
            yield self.finding(None, [max(p["after_frame"], 1)],
                               f"Capture damaged at byte {p['offset']}: {p['reason']}",
                               evidence={"offset": p["offset"], "length": p["length"]})
