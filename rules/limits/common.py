"""What the limit rule modules share: loop table excerpts and frames."""
from __future__ import annotations

from ..helpers import excerpt


def _frames(*rows) -> list[int]:
    out = []
    for r in rows:
        if r is not None:
            out.extend(r.cyc.frames)
    return out


def _proof(row, keys=("EVTargetCurrent", "EVTargetVoltage", "EVSEPresentCurrent",
                      "EVSEPresentVoltage")) -> dict:
    """Decoded excerpt of a row's request and response."""
    return {"request": excerpt(row.cyc.req, keys) if row.cyc.req is not None else None,
            "response": excerpt(row.cyc.res, keys) if row.cyc.res is not None else None}


def _src_frames(row, names) -> list[int]:
    return [row.src[n].frame for n in names if n in row.src]


class _Exceed:
    """Aggregate of a value exceeding a limit over a loop: count, worst row, first / last."""

    def __init__(self):
        self.n = 0
        self.first = self.last = self.worst = None
        self.worst_excess = None

    def add(self, row, excess):
        self.n += 1
        if self.first is None:
            self.first = row
        self.last = row
        if self.worst_excess is None or excess > self.worst_excess:
            self.worst, self.worst_excess = row, excess

    def frames(self, extra=()) -> list[int]:
        return _frames(self.first, self.worst, self.last) + list(extra)


def _span(agg) -> str:
    if agg.n == 1:
        return f"once (frame {agg.worst.cyc.frames[-1]})"
    return (f"in {agg.n} cycles (frames {agg.first.cyc.frames[0]}-{agg.last.cyc.frames[-1]}, "
            f"worst frame {agg.worst.cyc.frames[-1]})")
