"""The control pilot of a session: its CP readings, the state sequence, the PWM and the
contactor over time (IEC 61851-1; readings and facts: analyzer/control_pilot.py).

Two kinds of reporter may speak for the same pilot: a modem that measures voltage, duty
cycle and frequency (ST/IoTecha, SPiDCOM VS_CP_STATE.IND) and a test system that reports
its own state name, PP, contactor and meter (dSPACE SCS). The state *sequence* is read from
one of them, the *primary* source — the measuring modem when the session has its readings,
else the test system — so that two reporters that see the same edge a few ms apart do not
make two transitions; the PP, contactor and meter come from whoever reports them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ccs_analyzer.analyzer.control_pilot import CpSample, cp_sample

__all__ = ["CpView", "Transition", "cp_view"]

_MEASURING = ("ST/IoTecha", "SPiDCOM")


@dataclass(frozen=True)
class Transition:
    """A change of the settled CP state: ``frame`` / ``time`` (epoch s) of the first reading
    in the new state, ``before`` / ``after`` (``"B2"``, ``"C2"``, ``"E"`` … None before the
    first reading), ``sample`` (that reading)."""

    frame: int
    time: float
    before: str | None
    after: str
    sample: CpSample


@dataclass
class CpView:
    """A session's CP evidence.

    ``samples``: every CP reading (:class:`~ccs_analyzer.analyzer.control_pilot.CpSample`,
    frame order); ``primary``: the reporter the state sequence is read from (module
    docstring), None without readings; ``states``: the primary's readings with a state in a
    band; ``transitions``: the changes of the settled state (the first reading counts as a
    transition from None); ``out_of_band``: readings whose voltage lies between the bands
    (``state`` "?"), any reporter; ``plug_in`` / ``unplug``: the transitions into an
    EV-connected state from A (or from nothing) and back to A.
    """

    samples: list[CpSample] = field(default_factory=list)
    primary: str | None = None
    states: list[CpSample] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    out_of_band: list[CpSample] = field(default_factory=list)

    @property
    def present(self) -> bool:
        """Whether the session has CP readings with a state."""
        return bool(self.states)

    def state_at(self, t: float) -> str | None:
        """The settled state at epoch ``t`` (s): the last transition at or before ``t``; None
        before the first reading."""
        cur = None
        for tr in self.transitions:
            if tr.time > t:
                break
            cur = tr.after
        return cur

    def states_between(self, t0: float, t1: float) -> list[str]:
        """The settled states from epoch ``t0`` to ``t1`` (s): the state at ``t0`` and every
        state entered up to ``t1``, in order (None left out)."""
        out = [self.state_at(t0)]
        out += [tr.after for tr in self.transitions if t0 < tr.time <= t1]
        return [x for x in out if x is not None]

    @property
    def plug_ins(self) -> list[Transition]:
        """Transitions from A (or from no reading) into B, C or D."""
        return [tr for tr in self.transitions if tr.after[0] in "BCD"
                and (tr.before is None or tr.before[0] == "A")]

    @property
    def unplugs(self) -> list[Transition]:
        """Transitions from B, C or D into A."""
        return [tr for tr in self.transitions if tr.after[0] == "A"
                and tr.before is not None and tr.before[0] in "BCD"]

    def duty(self) -> list[CpSample]:
        """Readings with a duty cycle (the measuring reporters')."""
        return [x for x in self.samples if x.duty_pct is not None]

    def contactor(self) -> list[CpSample]:
        """Readings with a contactor state (test systems)."""
        return [x for x in self.samples if x.contactor is not None]


def build_cp_view(events) -> CpView:
    """The :class:`CpView` of a list of events (any order is sorted by frame)."""
    samples = sorted((x for x in map(cp_sample, events) if x is not None),
                     key=lambda x: x.frame)
    v = CpView(samples=samples)
    if not samples:
        return v
    v.primary = next((x.source for x in samples if x.source in _MEASURING), samples[0].source)
    v.out_of_band = [x for x in samples if x.state == "?"]
    v.states = [x for x in samples if x.source == v.primary and x.state not in (None, "?")]
    cur = None
    for x in v.states:
        if x.state != cur:
            v.transitions.append(Transition(x.frame, x.time, cur, x.state, x))
            cur = x.state
    return v


def cp_view(session, ctx) -> CpView:
    """The session's :class:`CpView`, built once per analysis (``ctx.view``)."""
    return ctx.view("control_pilot.cp", session, lambda: build_cp_view(session.events))
