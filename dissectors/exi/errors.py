"""Errors raised by the EXI codec."""
from __future__ import annotations


class ExiDecodeError(ValueError):
    """An EXI stream that cannot be decoded with the namespace's grammars.

    ``bit_offset``: position in the stream (bits from its first byte) where decoding failed;
    ``state``: readable grammar state, e.g. ``"CurrentDemandReqType[3]"``, and where in the
    tree (``"V2G_Message/Body/CurrentDemandReq"``) when known. The message says both.
    """

    def __init__(self, reason: str, bit_offset: int, state: str, path: str = ""):
        self.reason = reason
        self.bit_offset = bit_offset
        self.state = state
        self.path = path
        where = f"{state} at {path}" if path else state
        super().__init__(f"EXI error at bit {bit_offset} in {where}: {reason}")


class ExiEncodeError(ValueError):
    """A tree that does not fit the schema; ``path`` names the offending node
    (``"V2G_Message/Body/PreChargeReq/EVTargetVoltage/Value"``)."""

    def __init__(self, reason: str, path: str):
        self.reason = reason
        self.path = path
        super().__init__(f"cannot encode {path or '(root)'}: {reason}")
