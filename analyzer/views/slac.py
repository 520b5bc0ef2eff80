"""The SLAC view of a session (ISO 15118-3 §9 and Annex A; PROTOCOL_FACTS §2).

:func:`slac_view` gives the session's ISO 15118-3 SLAC messages with identical copies
removed (a tester that sees several VLANs captures each broadcast once per VLAN), cut into
matching *runs* (a run begins with a CM_SLAC_PARM.REQ that carries a new RunID, or with one
sent after the previous run got past CM_SLAC_PARM.CNF), plus the HomePlug CM_SET_KEY
exchanges.

Partial captures: a sniffer often sees one side only (listen mode, a modem that forwards
only broadcasts, a capture started late). A message that answers another proves the other
was sent: CM_SLAC_PARM.CNF proves a CM_SLAC_PARM.REQ, CM_ATTEN_CHAR.IND with sounds proves
the EV's sounding, CM_ATTEN_CHAR.RSP and CM_SLAC_MATCH.REQ prove a CM_ATTEN_CHAR.IND,
CM_SLAC_MATCH.CNF proves CM_SLAC_MATCH.REQ, and SDP / TCP traffic proves a match. When the
capture lacks what such evidence proves, the view is ``partial`` (``missing`` names what
and why). The SLAC rules (rules/slac/) and SDP008 read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ccs_analyzer.dissectors.events import TCP_SYN_ACK

__all__ = ["PARM_REQ", "PARM_CNF", "START", "MNBC", "IND", "RSP", "VAL_REQ", "VAL_CNF",
           "MATCH_REQ", "MATCH_CNF", "SET_KEY_REQ", "SET_KEY_CNF", "STAGE", "EV_SENDS",
           "EVSE_SENDS", "fields", "SlacRun", "SlacView", "slac_view", "set_keys", "evse_hosts",
           "evse_reset"]

PARM_REQ, PARM_CNF = "CM_SLAC_PARM.REQ", "CM_SLAC_PARM.CNF"
START = "CM_START_ATTEN_CHAR.IND"
MNBC = "CM_MNBC_SOUND.IND"
IND, RSP = "CM_ATTEN_CHAR.IND", "CM_ATTEN_CHAR.RSP"
VAL_REQ, VAL_CNF = "CM_VALIDATE.REQ", "CM_VALIDATE.CNF"
MATCH_REQ, MATCH_CNF = "CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF"
SET_KEY_REQ, SET_KEY_CNF = "CM_SET_KEY.REQ", "CM_SET_KEY.CNF"

#: Position of each message in the matching sequence (ISO 15118-3 Annex A, PROTOCOL_FACTS §2.3).
STAGE = {PARM_REQ: 0, PARM_CNF: 1, START: 2, MNBC: 3, IND: 4, RSP: 5, VAL_REQ: 6, VAL_CNF: 6,
         MATCH_REQ: 7, MATCH_CNF: 8}
#: Messages the EV sends, and those the EVSE sends.
EV_SENDS = frozenset({PARM_REQ, START, MNBC, RSP, VAL_REQ, MATCH_REQ})
EVSE_SENDS = frozenset({PARM_CNF, IND, VAL_CNF, MATCH_CNF})


def fields(e) -> dict:
    """The decoded fields of a SLAC / SDP event ({} when undecoded)."""
    return e.message if isinstance(e.message, dict) else {}


@dataclass
class SlacRun:
    """One matching run: ``index`` (0-based), its RunID (the EV's, from CM_SLAC_PARM.REQ,
    hex) and its events (``by_name``: the same by message name), in time order."""

    index: int
    run_id: str | None
    events: list = field(default_factory=list)
    by_name: dict = field(default_factory=dict)

    def add(self, e) -> None:
        """Append an event of the run."""
        self.events.append(e)
        self.by_name.setdefault(e.name, []).append(e)

    def of(self, name: str) -> list:
        """The run's messages named ``name`` (``CM_SLAC_PARM.CNF`` …), in time order."""
        return self.by_name.get(name, [])

    def has(self, name: str) -> bool:
        """Whether the run holds a message named ``name``."""
        return name in self.by_name

    @property
    def stage(self) -> int:
        """How far the run got: the highest :data:`STAGE` of its messages (-1 when empty)."""
        return max((STAGE[e.name] for e in self.events), default=-1)

    @property
    def progressed(self) -> bool:
        """Got past CM_SLAC_PARM (sounding or later seen)."""
        return self.stage >= 2

    @property
    def label(self) -> str:
        """``run 1 (RunID 0102…)``, for synopses."""
        return f"run {self.index + 1} (RunID {self.run_id or '?'})"

    @property
    def ev_mac(self) -> str | None:
        """The EV's MAC address: the sender of the EV's messages, else the unicast
        destination of the EVSE's (None when neither is known)."""
        for e in self.events:
            if e.name in EV_SENDS and e.src:
                return e.src
        for e in self.events:
            if e.name in EVSE_SENDS and e.dst and e.dst != "ff:ff:ff:ff:ff:ff":
                return e.dst
        return None

    def announced_sounds(self) -> int | None:
        """NUM_SOUNDS the EVSE asked for (CM_SLAC_PARM.CNF), else what the EV announced."""
        for name in (PARM_CNF, START):
            for e in self.of(name):
                n = fields(e).get("NUM_SOUNDS")
                if isinstance(n, int):
                    return n
        return None

    def window_s(self, default: float) -> float:
        """The EVSE's sound-collection window (CNF Time_Out × 100 ms), else ``default``."""
        for e in self.of(PARM_CNF):
            t = fields(e).get("Time_Out")
            if isinstance(t, int) and t > 0:
                return t / 10.0
        return default

    def matched_evse(self) -> str | None:
        """The MAC address of the EVSE the run matched (CM_SLAC_MATCH.CNF's EVSE_MAC or
        sender, else CM_SLAC_MATCH.REQ's EVSE_MAC or destination); None without a match."""
        for name in (MATCH_CNF, MATCH_REQ):
            for e in self.of(name):
                mac = fields(e).get("EVSE_MAC") or (e.src if name == MATCH_CNF else e.dst)
                if mac:
                    return mac
        return None


@dataclass
class SlacView:
    """What a session shows of SLAC (module docstring): ``events`` its matching messages
    (copies removed), ``runs`` (:class:`SlacRun`), ``keys`` its CM_SET_KEY.REQ / .CNF,
    ``missing`` [(message name, the event proving it was sent)] the capture lacks,
    ``one_sided`` ("EV" when only the EVSE's messages are visible, "EVSE" conversely),
    ``capture_end`` (epoch s, None when unknown) and ``progressed`` (SDP or a TCP
    connection followed)."""

    events: list
    runs: list
    keys: list
    missing: list            # (message name, event proving it was sent)
    one_sided: str | None    # "EV" when only the EVSE's messages are visible, "EVSE" conversely
    capture_end: float | None
    progressed: bool

    @property
    def partial(self) -> bool:
        """The capture lacks messages the others prove, or shows one side only."""
        return bool(self.missing) or self.one_sided is not None

    @property
    def matched(self) -> bool:
        """Some run got a CM_SLAC_MATCH.CNF."""
        return any(r.has(MATCH_CNF) for r in self.runs)

    @property
    def last_match(self):
        """The last CM_SLAC_MATCH.CNF of the session (None without one)."""
        for r in reversed(self.runs):
            if r.has(MATCH_CNF):
                return r.of(MATCH_CNF)[-1]
        return None

    def count(self, name: str) -> int:
        """How many messages named ``name`` the runs hold."""
        return sum(len(r.of(name)) for r in self.runs)

    def waited_after(self, t: float) -> float:
        """How long the capture went on after time ``t`` (inf when unknown)."""
        return float("inf") if self.capture_end is None else self.capture_end - t


def _dedupe(evs: list) -> list:
    """Drop identical copies of a message captured within 2 ms (one per VLAN / interface)."""
    out: list = []
    for e in evs:
        dup = False
        for p in out[-8:]:
            if (p.name == e.name and p.src == e.src and p.dst == e.dst
                    and abs(e.time - p.time) <= 0.002 and p.message == e.message):
                dup = True
                break
        if not dup:
            out.append(e)
    return out


def slac_view(session, ctx) -> SlacView:
    """The session's :class:`SlacView` (view ``slac``, built once per analysis)."""
    return ctx.view("slac", session, lambda: _build_view(session, ctx))


def _build_view(session, ctx) -> SlacView:
    raw = [e for e in session.events if e.layer == "slac" and e.name in STAGE]
    keys = [e for e in session.events if e.layer == "slac" and e.name in (SET_KEY_REQ, SET_KEY_CNF)]
    evs = _dedupe(raw)
    runs: list[SlacRun] = []
    cur: SlacRun | None = None
    for e in evs:
        rid = fields(e).get("RunID")
        if e.name == PARM_REQ:
            if cur is None or (rid and rid != cur.run_id) or cur.progressed:
                cur = SlacRun(len(runs), rid)
                runs.append(cur)
        elif cur is None:
            cur = SlacRun(0, rid)
            runs.append(cur)
        cur.add(e)
    missing: list = []
    for r in runs:
        def need(name, proofs, cond=None, r=r):
            if r.has(name):
                return
            for p in proofs:
                for ev in r.of(p):
                    if cond is None or cond(ev):
                        missing.append((name, ev))
                        return
        need(PARM_REQ, [PARM_CNF])
        sounded = lambda ev: (fields(ev).get("NUM_SOUNDS") or 0) > 0  # noqa: E731
        need(START, [IND], sounded)
        need(MNBC, [IND], sounded)
        need(IND, [RSP, MATCH_REQ])
        need(RSP, [MATCH_REQ, MATCH_CNF])
        need(MATCH_REQ, [MATCH_CNF])
    ev_n = sum(1 for e in evs if e.name in EV_SENDS)
    evse_n = sum(1 for e in evs if e.name in EVSE_SENDS)
    one_sided = None
    if evs and ev_n == 0 and evse_n:
        one_sided = "EV"
    elif evs and evse_n == 0 and any(e.name != PARM_REQ for e in evs):
        one_sided = "EVSE"       # the EV sounds / matches only after the EVSE's answers
        first = next(e for e in evs if e.name != PARM_REQ)
        missing.append((PARM_CNF, first))
    progressed = bool(session.has_sdp or session.connections)
    if runs and not any(r.has(MATCH_CNF) for r in runs):
        proof = next((e for e in session.events if (e.layer == "sdp" and e.direction == "EVSE->EV")
                      or (e.layer == "tcp" and e.name == TCP_SYN_ACK)
                      or (e.layer == "v2gtp" and e.direction == "EVSE->EV")), None)
        if proof is not None and proof.time > runs[-1].events[0].time:
            missing.append((MATCH_CNF, proof))
            if evse_n == 0:
                one_sided = "EVSE"
    end = (ctx.capture or {}).get("last_time")
    return SlacView(evs, runs, keys, missing, one_sided, end, progressed)


def set_keys(ctx) -> list:
    """Every CM_SET_KEY.REQ of the capture (all sessions and the capture-level events), in
    time order — a host keying its own modem is attached to whichever session the builder
    saw last, so the SLAC rules look capture-wide (view ``slac.set_keys``, built once per
    analysis)."""
    def build() -> list:
        out = [e for s in ctx.sessions for e in s.events
               if e.layer == "slac" and e.name == SET_KEY_REQ]
        out += [e for e in getattr(ctx, "capture_events", ()) or ()
                if e.layer == "slac" and e.name == SET_KEY_REQ]
        return sorted(out, key=lambda e: (e.time, e.frame))
    return ctx.view("slac.set_keys", None, build)


def evse_hosts(v: SlacView, session) -> set:
    """MAC addresses of the EVSE host(s) of the session's SLAC: the senders of
    CM_SLAC_PARM.CNF, CM_ATTEN_CHAR.IND and CM_SLAC_MATCH.CNF (and the matched EVSE)."""
    macs = {e.src for e in v.events if e.name in EVSE_SENDS and e.src}
    if session is not None and session.evse_mac:
        macs.add(session.evse_mac)
    return macs


def evse_reset(v: SlacView, session, ctx, after: float, before: float | None = None,
               match=None):
    """The first CM_SET_KEY.REQ an EVSE host of the session sent to its own modem after time
    ``after`` (s, epoch) and before ``before`` that resets the EVSE's PLC link, or None.

    A host re-keying its modem makes the modem restart and leave the logical network it was
    in (pyPLC: QCA modems reset on CM_SET_KEY; EVerest's EvseSlac re-sets its key when its
    SLAC state machine resets, e.g. on CP state A). It counts as a reset when it sets a NID
    the same host had already set before (a re-key, not the first configuration of a fresh
    key), or — after a match (``match``, the CM_SLAC_MATCH.CNF) — a NID other than the one
    the match handed to the EV (the EVSE leaves the EV's network). Source: ISO 15118-3 §9 /
    Annex A (the hosts set the NMK of CM_SLAC_MATCH.CNF in their modems, TT_match_join);
    PROTOCOL_FACTS §2.3 rows 11-12."""
    hosts = evse_hosts(v, session)
    if not hosts:
        return None
    keys = set_keys(ctx)
    match_nid = fields(match).get("NID") if match is not None else None
    for k in keys:
        if k.src not in hosts or k.time <= after:
            continue
        if before is not None and k.time >= before:
            break
        nid = fields(k).get("NID")
        known = any(p.src == k.src and fields(p).get("NID") == nid and p.time < k.time - 0.001
                    and p.frame != k.frame for p in keys)
        if known or (match_nid is not None and nid is not None and nid != match_nid):
            return k
    return None
