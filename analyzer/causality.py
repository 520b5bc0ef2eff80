"""The causal model: which finding caused which, the root cause of a session that failed,
and a one-line explanation a person can forward — or an explicit "no cause visible".

Rules declare what their findings are and what they can explain (``Rule.kinds`` /
``Rule.explains``, per finding ``Finding.kinds`` / ``Finding.explains``, in the vocabulary
of rules/causes.py). Here, per session (docs/root-cause.md):

1. **Links.** Finding A explains finding B when one of B's kinds is among A's ``explains``,
   A started no later than B, and A was still *live* when B started: A's last evidence is
   at most A's rule ``horizon_s`` before B and the session did not get further in between
   (a new phase answered OK: getting further after a defect that then stops is recovering
   from it; a defect that persists until B is live by its own evidence). Ties in time go to
   the declaration that is not mutual.
2. **The end.** analyzer/outcome.py names how the session ended (its stop reason, a kind
   such as ``ev-error``, ``ev-timeout``, ``evse-stop``, ``slac-failed``) and when. A
   finding that explains that kind and is live at the end explains the session's end
   *directly*; a finding whose own kind is the end's (the EV's error code, "session dropped
   without SessionStop") *describes* the end.
3. **The root cause** of a session that did not achieve its goal: the best direct
   explanation (highest severity, then earliest), followed back through what explains it
   until nothing earlier does — the earliest finding of the chain that nothing explains.
   Without a direct explanation the finding that describes the end best is the root, and
   the explanation says that no cause is visible in the traffic, with the facts that narrow
   it down and the evidence that is missing (the EV's or the charger's log). A session cut
   by the capture: a causal defect persisting until the end (it was failing: no current for
   minutes); else the capture's damage (it hides the end); else nothing (goal unknown).
4. **Consequences.** Every finding that something explains gets ``caused_by`` = its direct
   cause (for a member of the root chain its predecessor in the chain; else the nearest
   explanation: the latest to start before it, then the most severe); ``role`` is ``root-cause``, ``consequence`` or ``independent``, and each
   cause lists its direct ``consequences``.

Goal (``summary["goal"]``): ``achieved`` when the EV stopped (or paused) on its own after
energy flowed — or, in basic charging (IEC 61851-1, no HLC), the EVSE switched its PWM off
and the EV released — and no finding explains the stop; ``not achieved`` when the session failed;
``unknown`` when the capture ended before the session could show either.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ccs_analyzer.analyzer.outcome import PHASES, phase_of
from ccs_analyzer.analyzer.physical import event_facts, message_body
from ccs_analyzer.analyzer.views.events import is_failed

_SEV = {"error": 3, "warning": 2, "info": 1}
#: End kinds that always mean the session failed.
_FAILURE_ENDS = frozenset({"ev-error", "ev-abort", "ev-timeout", "evse-stop", "evse-refused",
                           "ev-unplugged", "cp-error",
                           "evse-abort", "evse-timeout", "no-response", "slac-failed",
                           "sdp-failed", "tcp-failed", "tls-failed", "handshake-failed"})
#: Kinds of findings that describe how a session broke off (anchored at the last message
#: before the break, with the break itself as their last evidence).
_BREAK_KINDS = frozenset({"no-session-stop", "connection-reset", "ev-abort", "evse-abort"})
#: Orderly ends: the goal is achieved when energy flowed and nothing explains the stop (the
#: EV stopped or paused; in basic charging also the EVSE switching its PWM off).
_ORDERLY_ENDS = frozenset({"ev-stop", "ev-pause", "evse-end"})
#: "never got past" ends: the failure is the phase itself, liveness does not apply.
_PHASE_ENDS = frozenset({"slac-failed", "sdp-failed", "tcp-failed", "tls-failed",
                         "handshake-failed"})
_EPS = 1e-6


@dataclass(eq=False)
class _Node:
    f: object
    kinds: frozenset
    explains: frozenset
    t0: float
    t1: float
    horizon: float
    idx: int
    parents: list = field(default_factory=list)

    @property
    def sev(self) -> int:
        return _SEV.get(self.f.severity, 0)


def _declared(f, cls, attr):
    v = getattr(f, attr, None)
    if v is None:
        v = getattr(cls, attr, ()) if cls is not None else ()
    return frozenset(v or ())


def _nodes(fs, rule_classes, times) -> list[_Node]:
    out = []
    for i, f in enumerate(fs):
        cls = rule_classes.get(f.rule)
        ts = [times[x] for x in f.frames if x in times]
        t0 = f.time if f.time is not None else (min(ts) if ts else 0.0)
        t1 = max(ts + [t0])
        out.append(_Node(f, _declared(f, cls, "kinds"), _declared(f, cls, "explains"), t0, t1,
                         float(getattr(cls, "horizon_s", 10.0)), i))
    return out


def _explains(a: _Node, b: _Node, marks=()) -> bool:
    """Whether finding ``a`` can be a cause of finding ``b`` (module docstring, step 1)."""
    if a is b or not (b.kinds & a.explains):
        return False
    # a finding that describes the break-off happened at its last evidence (the reset, the
    # close), not at the last message before it: a cause between the two still precedes it
    tb = b.t1 if b.kinds & _BREAK_KINDS else b.t0
    if a.t0 > tb + _EPS:
        return False
    if abs(a.t0 - b.t0) <= _EPS and (a.kinds & b.explains) and a.idx > b.idx:
        return False                   # mutual declaration at the same time: keep one order
    return _live(a, b.t0, marks)


def _live(a: _Node, t: float, marks) -> bool:
    """Whether finding ``a`` still acts at time ``t``: its last evidence is at most its
    horizon before ``t``, and the session did not get further in between (``marks``: times
    of progress, :func:`progress_marks`) — getting further after a defect that then stops
    is recovering from it; a defect that persists has evidence up to ``t``."""
    if a.t1 + a.horizon < t - _EPS:
        return False
    return not any(a.t1 + _EPS < m < t - _EPS for m in marks)


#: Each phase's place in PHASES.
_PHASE_RANK = {ph: i for i, ph in enumerate(PHASES)}


def progress_marks(session) -> list[float]:
    """Times at which the session got further: the first non-FAILED EVSE response of each
    phase beyond the furthest one reached so far on its connection (stopping and session
    stop are not progress; analyzer/outcome.py PHASES)."""
    best: dict = {}
    out = []
    for e in session.events:
        if e.layer != "v2gtp" or e.message is None or e.direction != "EVSE->EV" or not e.name.endswith("Res"):
            continue
        ph = phase_of(e.name, e.message)
        if ph is None or ph in ("stopping", "session stop"):
            continue
        if is_failed(event_facts(e).get("ResponseCode")):
            continue
        r = _PHASE_RANK[ph]
        if r > best.get(e.conn, -1):
            best[e.conn] = r
            out.append(e.time)
    return out


def _best(cands: list[_Node]) -> _Node:
    return min(cands, key=lambda n: (-n.sev, n.t0, n.idx))


def explain_sessions(analysis, sessions, findings, rule_classes: dict) -> None:
    """Link the findings of each of ``sessions`` and fill each session summary's ``root_cause``,
    ``root_cause_synopsis``, ``cause_chain`` (finding ids, root first), ``explanation``,
    ``no_cause_visible`` and ``goal``; set ``caused_by``, ``role`` and ``consequences`` on
    the findings (module docstring). Capture-level findings are ``independent``."""
    by_session: dict = {}
    for f in findings:
        f.caused_by = None
        f.role = "independent"
        f.consequences = []
        if f.session is not None:
            by_session.setdefault(f.session, []).append(f)
    for s in sessions:
        summ = analysis.summaries[s.id]
        times = {e.frame: e.time for e in s.events}
        fs = by_session.get(s.id, [])
        _explain(s, summ, _nodes(fs, rule_classes, times))
    ids = {f.id: f for f in findings}
    for f in findings:
        if f.caused_by and f.caused_by in ids:
            ids[f.caused_by].consequences.append(f.id)


def _explain(session, summ: dict, nodes: list[_Node]) -> None:
    marks = progress_marks(session)
    for b in nodes:
        b.parents = [a for a in nodes if _explains(a, b, marks)]
    stop = summ.get("stop_reason") or {}
    primary = stop.get("kind")
    t_end = stop.get("time")
    if t_end is None:
        t_end = session.events[-1].time if session.events else 0.0
    chain: list[_Node] = []
    describes = False
    if getattr(session, "crosstalk", None):
        goal = None
    elif primary == "capture-ended":
        root, goal = _capture_ended(nodes, t_end, marks)
        if root is not None:
            chain = _climb(root)
    else:
        direct = [n for n in nodes if primary in n.explains and n.t0 <= t_end + _EPS
                  and (primary in _PHASE_ENDS or _live(n, t_end, marks))]
        failure = primary in _FAILURE_ENDS or (
            primary in _ORDERLY_ENDS and summ.get("energy_transferred") is False
            and not stop.get("target_reached"))
        if direct and (failure or primary in _ORDERLY_ENDS):
            chain = _climb(_best(direct))
            goal = "not achieved"
        elif failure:
            desc = [n for n in nodes if primary in n.kinds]
            if desc:
                ends = _end_kinds(session, summ, primary)
                best = min(desc, key=lambda n: (bool(n.parents), -len(n.kinds & ends), -n.sev,
                                                n.t0, n.idx))
                for n in nodes:           # the other descriptions of the end hang under it
                    if n is not best and not n.parents and n.kinds & ends and n.t0 >= best.t0 - _EPS:
                        n.parents.append(best)
                chain = _climb(best)
                describes = primary in chain[0].kinds
            goal = "not achieved"
        else:
            goal = "achieved" if primary in _ORDERLY_ENDS else None
    _link(nodes, chain)
    root = chain[0].f if chain else None
    summ["root_cause"] = root.id if root is not None else None
    summ["root_cause_synopsis"] = root.synopsis if root is not None else None
    summ["cause_chain"] = [n.f.id for n in chain]
    summ["goal"] = goal
    summ["no_cause_visible"] = goal == "not achieved" and (root is None or describes)
    same = bool(chain) and primary in chain[0].kinds and stop.get("frame") in (root.frames or [])
    summ["explanation"] = _sentence(session, summ, root, describes, same)
    if root is not None and summ.get("outcome") == "completed normally":
        summ["outcome"] = "stopped by EV"      # the stop was explained: not a normal completion


def _end_kinds(session, summ, primary) -> frozenset:
    """The kinds of a session's end: its stop reason's, ``no-session-stop`` when a V2G
    session was set up and no SessionStopRes OK came, ``connection-reset`` when a side
    aborted the connection."""
    out = {primary}
    v2g = [e for e in session.events if e.layer == "v2gtp" and e.message is not None]
    if any(e.name == "SessionSetupRes" for e in v2g) and not any(
            e.name == "SessionStopRes" and str(event_facts(e).get("ResponseCode", "")).startswith("OK")
            for e in v2g):
        out.add("no-session-stop")
    if str(summ.get("outcome", "")).startswith("aborted"):
        out.add("connection-reset")
    return frozenset(out)


def _climb(start: _Node) -> list[_Node]:
    """``start`` and what explains it, back to the finding nothing explains: root first."""
    chain = [start]
    seen = {id(start)}
    cur = start
    while True:
        ps = [p for p in cur.parents if id(p) not in seen]
        if not ps:
            break
        cur = _best(ps)
        seen.add(id(cur))
        chain.append(cur)
    chain.reverse()
    return chain


def _capture_ended(nodes, t_end, marks):
    """(root node or None, goal) of a session the capture cut: a causal defect of severity
    error persisting until the end (the session was failing when the capture stopped: no
    current for minutes), else the capture's damage (it hides how the session ended), else
    nothing (goal unknown)."""
    persisting = [n for n in nodes if n.f.severity == "error" and n.explains & _FAILURE_ENDS
                  and _live(n, t_end, marks) and not n.parents]
    if persisting:
        return min(persisting, key=lambda n: (n.t0, n.idx)), "not achieved"
    cut = [n for n in nodes if "capture-ended" in n.explains]
    if cut:
        return _best(cut), "unknown"
    return None, "unknown"


def _link(nodes, chain) -> None:
    """``caused_by`` / ``role`` of every finding (module docstring, step 4)."""
    pos = {id(n): i for i, n in enumerate(chain)}
    if chain:
        chain[0].f.role = "root-cause"
    for b in nodes:
        if chain and b is chain[0]:
            continue
        ps = b.parents
        if not ps:
            continue
        in_chain = [p for p in ps if id(p) in pos and pos[id(p)] < pos.get(id(b), len(chain))]
        if id(b) in pos:                   # a chain member: its predecessor in the chain
            a = max(in_chain, key=lambda p: pos[id(p)]) if in_chain else _best(ps)
        else:                              # the nearest cause: latest start, most severe
            a = max(ps, key=lambda p: (p.t0, p.sev, -p.idx))
        b.f.caused_by = a.f.id
        b.f.role = "consequence"


# ---------------------------------------------------------------------------- sentences
def _sentence(session, summ, root, describes: bool, same: bool = False) -> str:
    """The session's explanation in one or two sentences (what the report shows first);
    ``same``: the root cause is the end itself (its evidence is the stop's event), so the
    stop reason is not repeated after it."""
    stop = summ.get("stop_reason") or {}
    reason = stop.get("reason") or summ.get("outcome") or ""
    goal = summ.get("goal")
    if getattr(session, "crosstalk", None):
        return f"Not a session of this charger: {session.crosstalk}."
    if root is not None and not describes:
        if same:
            return f"{_cap(root.synopsis)}."
        return f"{_cap(root.synopsis)}. Then: {reason}."
    if goal == "not achieved":
        facts = phase_facts(session, summ)
        missing = {"EV": "the EV gave no reason on the wire — the EV's log (or the control pilot "
                         "state) would tell why",
                   "EVSE": "the charger gave no reason on the wire — the charger's log would tell why"
                   }.get(stop.get("by"), "neither side gave a reason on the wire — both sides' logs "
                                          "would tell why")
        return f"No cause visible in the traffic: {reason}{facts}; {missing}."
    if goal == "unknown":
        return f"{_cap(reason)}: the capture does not show how the session ended."
    return _cap(reason) + "."


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def phase_facts(session, summ) -> str:
    """The facts that narrow down an unexplained end, from the session's last phase: how
    many requests of the last loop, for how long, the last values against their targets
    (V, A), the EVSE's last status — as a clause starting with "; "."""
    v2g = [e for e in session.events if e.layer == "v2gtp" and e.message is not None]
    if not v2g:
        return ""
    reqs = [e for e in v2g if e.name.endswith("Req")]
    if not reqs:
        return ""
    last = reqs[-1]
    if last.name in ("SessionStopReq",) or "PowerDelivery" in last.name:
        earlier = [e for e in reqs if e.name not in ("SessionStopReq", "PowerDeliveryReq",
                                                     "WeldingDetectionReq")]
        last = earlier[-1] if earlier else last
    name = last.name[:-3]
    run = []
    for e in reversed(reqs):
        if e.name == last.name:
            run.append(e)
        elif run and e.name not in ("SessionStopReq", "PowerDeliveryReq"):
            break
    run.reverse()
    res = [e for e in v2g if e.name == name + "Res" and e.time >= run[0].time]
    parts = [f"{len(run)} {name}Req over {run[-1].time - run[0].time:.1f} s"
             if len(run) > 1 else f"after {name}Req (frame {last.frame})"]
    if res:
        r = event_facts(res[-1])
        q = event_facts(run[-1])
        pv, tv = r.get("EVSEPresentVoltage_V"), q.get("EVTargetVoltage_V")
        pi, ti = r.get("EVSEPresentCurrent_A"), q.get("EVTargetCurrent_A")
        if pv is not None and tv is not None:
            parts.append(f"at {pv:g} V of {tv:g} V target")
        if pi is not None and ti is not None and name in ("CurrentDemand", "DC_ChargeLoop"):
            parts.append(f"{pi:g} A of {ti:g} A asked")
        st = [r.get(k) for k in ("EVSEStatusCode", "EVSEProcessing", "EVSEIsolationStatus")
              if isinstance(r.get(k), str)]
        if st:
            parts.append("EVSE " + ", ".join(st))
        soc = q.get("SoC_pct")
        if soc is not None:
            parts.append(f"SoC {soc:g} %")
        rc = r.get("ResponseCode")
        if isinstance(rc, str) and not rc.startswith("OK"):
            parts.append(rc)
    err = event_facts(reqs[-1]).get("EVErrorCode")
    if isinstance(err, str) and err not in ("NO_ERROR", "NoData"):
        parts.append(f"EVErrorCode {err}")
    ph = phase_of(last.name, last.message) or summ.get("phase_reached")
    where = f" during {ph}" if ph else ""
    body = message_body(last.message)[1]
    ready = body.get("EVReady") if isinstance(body, dict) else None
    if ready is False:
        parts.append("EVReady=false")
    return f"{where} ({', '.join(parts)})"
