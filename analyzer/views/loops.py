"""Runs of repeated messages: a session cut into uninterrupted repetitions of one
request / response pair on one TCP connection — a charge loop, a PreCharge loop, a
CableCheck loop — with what came before and after each, computed once per session.

The loop messages are CurrentDemand (DIN 70121, ISO 15118-2 DC), ChargingStatus
(ISO 15118-2 AC), DC_ChargeLoop / AC_ChargeLoop / WPT_ChargeLoop (ISO 15118-20)
(PROTOCOL_FACTS §4E); MeteringReceipt / MeteringConfirmation may interleave with them
([V2G2-580]). The charge-loop, PreCharge, cable-check, limits and message-content rules read
the runs; :mod:`.loop_table` turns the charge-loop runs into rows of values.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ccs_analyzer.dissectors.events import TCP_FIN, TCP_RST

from .events import body, facts

__all__ = ["LOOP", "LOOP_PASSTHROUGH", "CPD", "STOP_STATUS", "STOP_NOTIFICATION", "KINDS",
           "Cycle", "Run", "message_runs", "loop_runs", "precharge_runs", "cablecheck_runs",
           "is_start", "describe", "end_text", "end_culprit", "capture_cut", "flag"]

#: Base names of the charge-loop messages (PROTOCOL_FACTS §4E).
LOOP = frozenset({"CurrentDemand", "ChargingStatus", "DC_ChargeLoop", "AC_ChargeLoop",
                  "WPT_ChargeLoop"})
#: Messages that may interleave with the loop without ending it (ISO 15118-2 [V2G2-580]).
LOOP_PASSTHROUGH = frozenset({"MeteringReceipt", "MeteringConfirmation"})
#: Base names of the ChargeParameterDiscovery messages (their limits bound the loop).
CPD = frozenset({"ChargeParameterDiscovery", "DC_ChargeParameterDiscovery",
                 "AC_ChargeParameterDiscovery", "WPT_ChargeParameterDiscovery"})
#: DC_EVSEStatusCode values that tell the EV to stop (PROTOCOL_FACTS §4.0 "Status semantics").
STOP_STATUS = frozenset({"EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction"})
#: EVSENotification values that ask the EV to stop (DIN / ISO-2 StopCharging; -20 Terminate,
#: Pause).
STOP_NOTIFICATION = frozenset({"StopCharging", "Terminate", "Pause"})


@dataclass
class Cycle:
    """One request and its response (either may be missing: a request left unanswered, a
    response whose request the capture lacks)."""

    req: object | None
    res: object | None
    _qb: dict | None = None
    _rb: dict | None = None

    @property
    def qb(self) -> dict:
        """Decoded body of the request ({} without one), computed once."""
        if self._qb is None:
            self._qb = body(self.req) if self.req is not None else {}
        return self._qb

    @property
    def rb(self) -> dict:
        """Decoded body of the response ({} without one), computed once."""
        if self._rb is None:
            self._rb = body(self.res) if self.res is not None else {}
        return self._rb

    @property
    def q(self) -> dict:
        """SI facts of the request ({} without one)."""
        return facts(self.req) if self.req is not None else {}

    @property
    def r(self) -> dict:
        """SI facts of the response ({} without one)."""
        return facts(self.res) if self.res is not None else {}

    @property
    def time(self) -> float:
        """When the cycle happened (epoch s): its response's time, else its request's."""
        e = self.res if self.res is not None else self.req
        return e.time

    @property
    def frames(self) -> list[int]:
        """Frames of the request and the response (those present)."""
        return [e.frame for e in (self.req, self.res) if e is not None]


@dataclass
class Run:
    """An uninterrupted repetition of one message pair on one connection.

    ``name``: the base name (``PreCharge``); ``cycles``: the request/response pairs;
    ``messages``: every decoded message of the run in order (with interleaved
    ``LOOP_PASSTHROUGH`` messages for charge loops); ``before`` / ``before2``: the last and
    the second-to-last decoded message on the connection before the run; ``after``: the first
    decoded message on the connection after it (None when none came); ``end``: the first TCP
    FIN / RST event on the connection after the run's last message, when no message followed;
    ``cpd_req`` / ``cpd_res``: the session's latest ChargeParameterDiscovery request and
    response before the run; ``kind``: ``loop``, ``precharge`` or ``cablecheck``."""

    name: str
    conn: int | None
    cycles: list[Cycle] = field(default_factory=list)
    messages: list = field(default_factory=list)
    before: object | None = None
    before2: object | None = None
    after: object | None = None
    end: object | None = None
    cpd_req: object | None = None
    cpd_res: object | None = None
    kind: str = ""

    @property
    def first(self):
        """The run's first message."""
        return self.messages[0]

    @property
    def last(self):
        """The run's last message."""
        return self.messages[-1]

    @property
    def duration_s(self) -> float:
        """From the first to the last message (s)."""
        return self.last.time - self.first.time


#: The kinds of runs: kind → (base names of their messages, the messages that may interleave).
KINDS = {
    "loop": (LOOP, LOOP_PASSTHROUGH),
    "precharge": (frozenset({"PreCharge", "DC_PreCharge"}), frozenset()),
    "cablecheck": (frozenset({"CableCheck", "DC_CableCheck"}), frozenset()),
}
_KIND_OF = {b: k for k, (bases, _) in KINDS.items() for b in bases}


def message_runs(session, kind: str, ctx) -> list[Run]:
    """The session's runs of one kind (``loop``, ``precharge``, ``cablecheck``; see
    :class:`Run`), in order of their first message; all kinds are cut in one pass over the
    session (view ``loops.runs``, built once per analysis)."""
    return ctx.view("loops.runs", session, lambda: _build_runs(session))[kind]


def _build_runs(session) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {k: [] for k in KINDS}
    open_run: dict = {}          # conn → the run still open on it
    last: dict = {}              # conn → its last message
    last2: dict = {}             # conn → its second-to-last message
    cpd_req = cpd_res = None
    for e in session.events:
        layer = e.layer
        if layer == "tcp":
            if e.name in (TCP_FIN, TCP_RST):
                r = open_run.get(e.conn)
                if r is not None and r.end is None:
                    r.end = e
            continue
        if layer != "v2gtp" or e.message is None:
            continue
        c = e.conn
        name = e.name
        is_req = name.endswith("Req")
        b = name[:-3] if is_req or name.endswith("Res") else name
        r = open_run.get(c)
        kind = _KIND_OF.get(b)
        if r is not None and kind is None and b in KINDS[r.kind][1]:
            kind = r.kind                                  # interleaved (MeteringReceipt)
            member = False
        else:
            member = True
        if kind is not None:
            if r is not None and r.kind != kind:
                r.after = e
                r.end = None
                r = None
            if r is None:
                r = Run(name=b, conn=c, before=last.get(c), before2=last2.get(c),
                        cpd_req=cpd_req, cpd_res=cpd_res)
                r.kind = kind
                open_run[c] = r
                runs[kind].append(r)
            r.messages.append(e)
            if member:
                cyc = r.cycles
                if is_req:
                    cyc.append(Cycle(e, None))
                elif cyc and cyc[-1].res is None and cyc[-1].req is not None:
                    cyc[-1].res = e
                else:
                    cyc.append(Cycle(None, e))
        elif r is not None:
            r.after = e
            r.end = None
            del open_run[c]
        if b in CPD:
            if is_req:
                cpd_req = e
            else:
                cpd_res = e
        last2[c] = last.get(c)
        last[c] = e
    return runs


def loop_runs(session, ctx) -> list[Run]:
    """The session's charge-loop runs (MeteringReceipt / MeteringConfirmation do not end
    a run)."""
    return message_runs(session, "loop", ctx)


def precharge_runs(session, ctx) -> list[Run]:
    """The session's PreCharge loops (PreChargeReq/Res, -20 DC_PreChargeReq/Res)."""
    return message_runs(session, "precharge", ctx)


def cablecheck_runs(session, ctx) -> list[Run]:
    """The session's CableCheck loops (CableCheckReq/Res, -20 DC_CableCheckReq/Res)."""
    return message_runs(session, "cablecheck", ctx)


def is_start(e) -> bool:
    """Whether a PowerDeliveryReq starts energy transfer (ChargeProgress Start, DIN
    ReadyToChargeState true)."""
    b = body(e)
    if "ReadyToChargeState" in b:
        return b.get("ReadyToChargeState") is True
    return b.get("ChargeProgress") == "Start"


def describe(e) -> str:
    """A message's name, with what a PowerDeliveryReq asks for (``PowerDeliveryReq
    (ChargeProgress=Stop)``)."""
    if e.name == "PowerDeliveryReq" and e.message is not None:
        b = body(e)
        if "ReadyToChargeState" in b:
            return f"PowerDeliveryReq (ReadyToChargeState={str(b['ReadyToChargeState']).lower()})"
        if "ChargeProgress" in b:
            return f"PowerDeliveryReq (ChargeProgress={b['ChargeProgress']})"
    return e.name


def end_text(run: Run) -> str:
    """How a run ended, in words: the next message, the TCP close, or the capture end."""
    if run.after is not None:
        return f"then {describe(run.after)} (frame {run.after.frame})"
    if run.end is not None:
        who = "the EV" if run.end.direction == "EV->EVSE" else "the EVSE"
        how = "closed" if run.end.name == TCP_FIN else "reset"
        return f"then {who} {how} the TCP connection ({run.end.name}, frame {run.end.frame})"
    return "and the capture ended"


def end_culprit(run: Run, ctx=None, silence_s: float = 5.0) -> str | None:
    """Who ended a run: the sender of the next message; else SECC when the last request went
    unanswered (the connection closed, or the capture went on ``silence_s`` without an
    answer) or the EVSE closed / reset the connection, EVCC when the EV did; None when the
    capture simply ended."""
    if run.after is not None:
        return "EVCC" if run.after.direction == "EV->EVSE" else "SECC"
    unanswered = run.last.name.endswith("Req")
    if run.end is not None:
        if unanswered:
            return "SECC"
        return "EVCC" if run.end.direction == "EV->EVSE" else "SECC"
    if unanswered and ctx is not None:
        last = ctx.capture.get("last_time")
        if last is not None and last - run.last.time > silence_s:
            return "SECC"
    return None


def capture_cut(ctx, run: Run, limit_s: float) -> bool:
    """Whether the capture ended before ``limit_s`` after the run's first message without
    the run having ended (no following message, no TCP close): nothing to blame anyone for."""
    if run.after is not None or run.end is not None:
        return False
    last = ctx.capture.get("last_time")
    return last is not None and last - run.first.time < limit_s


def flag(b: dict, name: str):
    """A loop request's boolean such as ChargingComplete: a direct child of the body (DIN,
    ISO-2) or inside DisplayParameters (ISO 15118-20); None when absent."""
    v = b.get(name)
    if v is None:
        dp = b.get("DisplayParameters")
        if isinstance(dp, dict):
            v = dp.get(name)
    return v
