"""The charge-loop table: each charge-loop cycle as a row of the values the limit rules
compare, and the judgements several rules share so that one defect gives one finding.

The values come from ``facts(e)`` (SI units): DIN / ISO-2 PhysicalValue and ISO 15118-20
RationalNumber alike. Names differ between the protocols; :func:`pick` reads the first of the
alternatives present (``EVSEMaximumCurrentLimit`` in DIN / ISO-2,
``EVSEMaximumChargeCurrent`` in -20 …). The relations are those of PROTOCOL_FACTS §4D
(analyst-derived ⚠: their tolerances are parameters).

* :func:`loop_table` — [(run, [:class:`Row` …])] per charge-loop run (:mod:`.loops`).
* :func:`implausible_marks` — EVSE present values that cannot be measurements (far above
  every maximum either side announced, and the climb to them). MSG020 reports them; the limit
  rules judge only plausible measurements and skip the marked quantities of a row
  (``Row.bad``).
* :func:`no_current_stretches` — sustained stretches in which the EVSE delivered no current
  although the EV asked for it and the EVSE's limits allowed it. CHL007 reports them; LIM004 /
  LIM005 (a shortfall) stand down on the cycles they cover.
* :func:`allowed_current`, :func:`battery_voltage`, :func:`evse_minimum_voltage`,
  :func:`precharge_rows`, :func:`precharge_before_loops`, :func:`placeholder_targets` — the
  values derived from the rows and from the PreCharge loops before them.

The stand-downs use their rules' default parameters (:data:`IMPLAUSIBLE_DEFAULTS` for MSG020,
:data:`NO_CURRENT_DEFAULTS` for CHL007, :data:`EV_MAXIMUM_VOLTAGE_TOLERANCE_V` for LIM002): a
profile that re-parameterises those rules changes what they report, not what the other
rules skip.
"""
from __future__ import annotations

from .events import facts, is_failed
from .loops import STOP_NOTIFICATION, STOP_STATUS, flag, loop_runs, message_runs

__all__ = ["EVSE_IMAX", "EVSE_VMAX", "EVSE_PMAX", "EV_IMAX", "EV_VMAX", "EV_PMAX", "EVSE_IMIN",
           "EVSE_VMIN", "REG_TOL", "pick", "Row", "loop_table", "IMPLAUSIBLE_DEFAULTS",
           "ceiling", "implausible_marks", "NO_CURRENT_DEFAULTS", "no_current_stretches",
           "covered_by_no_current", "allowed_current", "battery_voltage",
           "evse_minimum_voltage", "EV_MAXIMUM_VOLTAGE_TOLERANCE_V", "voltage_above_ev_maximum",
           "precharge_rows", "run_key", "precharge_before_loops", "PLACEHOLDER_MIN_VOLTAGE_V",
           "placeholder_targets"]

# alternatives per quantity: DIN / ISO-2 first, then ISO 15118-20, then AC
EVSE_IMAX = ("EVSEMaximumCurrentLimit_A", "EVSEMaximumChargeCurrent_A")
EVSE_VMAX = ("EVSEMaximumVoltageLimit_V", "EVSEMaximumVoltage_V")
EVSE_PMAX = ("EVSEMaximumPowerLimit_W", "EVSEMaximumChargePower_W")
EV_IMAX = ("EVMaximumCurrentLimit_A", "EVMaximumChargeCurrent_A", "EVMaxCurrent_A")
EV_VMAX = ("EVMaximumVoltageLimit_V", "EVMaximumVoltage_V", "EVMaxVoltage_V")
EV_PMAX = ("EVMaximumPowerLimit_W", "EVMaximumChargePower_W")
EVSE_IMIN = ("EVSEMinimumCurrentLimit_A", "EVSEMinimumChargeCurrent_A")
EVSE_VMIN = ("EVSEMinimumVoltageLimit_V", "EVSEMinimumVoltage_V")
REG_TOL = "EVSECurrentRegulationTolerance_A"


def pick(d: dict, keys) -> float | None:
    """The first of ``keys`` present in the facts ``d`` (None when none is)."""
    for k in keys:
        v = d.get(k)
        if v is not None:
            return v
    return None


class Row:
    """One loop cycle with the values the rules compare: the EV's request (``ti``, ``tv``:
    target current / voltage), the EVSE's output (``pi``, ``pv``, ``p``), the limits in force
    (``imax``, ``vmax``, ``pmax`` from this response, an earlier one or the
    ChargeParameterDiscoveryRes, each with the event it came from in ``src``; ``imin`` the
    EVSE's minimum current), the EV's maxima, the SoC and the current tolerance
    (EVSECurrentRegulationTolerance when given). ``bad``: the present quantities of this
    response that are not measurements (:func:`implausible_marks`: "current", "voltage";
    the limit rules do not judge them)."""

    __slots__ = ("cyc", "t", "ti", "tv", "pi", "pv", "p", "imax", "vmax", "pmax", "src", "own",
                 "ev_imax", "ev_vmax", "ev_pmax", "soc", "reg_tol", "ev_error", "failed", "imin",
                 "bad")

    def __init__(self, cyc):
        self.cyc = cyc
        self.t = cyc.time
        self.src = {}
        self.bad = _NO_MARKS
        self.ti = self.tv = self.pi = self.pv = self.p = None
        self.imax = self.vmax = self.pmax = self.own = None
        self.ev_imax = self.ev_vmax = self.ev_pmax = None
        self.soc = self.reg_tol = self.imin = None
        self.ev_error = self.failed = False


_NO_MARKS: frozenset = frozenset()


def loop_table(session, ctx) -> list[tuple]:
    """[(run, [:class:`Row` …])] for each charge-loop run of the session (:func:`.loops.loop_runs`),
    one row per cycle in order, each with its implausible marks (default parameters) (view
    ``loop_table``, built once per analysis)."""
    return ctx.view("loop_table", session, lambda: _build_table(session, ctx))


def _build_table(session, ctx) -> list[tuple]:
    out = []
    seen: dict = {}           # (id(q), id(r)) → (q, r, _cycle_values(q, r)): facts are shared
    for run in loop_runs(session, ctx):
        cpd_r = facts(run.cpd_res) if run.cpd_res is not None else {}
        cpd_q = facts(run.cpd_req) if run.cpd_req is not None else {}
        # the limits in force: (value, the event it came from), None while unknown
        lim_i = lim_v = lim_p = None
        if run.cpd_res is not None:
            v = pick(cpd_r, EVSE_IMAX)
            lim_i = (v, run.cpd_res) if v is not None else None
            v = pick(cpd_r, EVSE_VMAX)
            lim_v = (v, run.cpd_res) if v is not None else None
            v = pick(cpd_r, EVSE_PMAX)
            lim_p = (v, run.cpd_res) if v is not None else None
        ev_imax, ev_vmax, ev_pmax = pick(cpd_q, EV_IMAX), pick(cpd_q, EV_VMAX), pick(cpd_q, EV_PMAX)
        reg_tol = cpd_r.get(REG_TOL)
        imin = pick(cpd_r, EVSE_IMIN)
        rows = []
        for cyc in run.cycles:
            q, r = cyc.q, cyc.r
            hit = seen.get((id(q), id(r)))
            if hit is None or hit[0] is not q or hit[1] is not r:
                hit = seen[(id(q), id(r))] = (q, r, _cycle_values(q, r))
            (row_ti, row_tv, row_pi, row_pv, row_p, failed, own, q_imax, q_vmax, q_pmax, soc,
             own_tol, own_min, ev_error) = hit[2]
            res = cyc.res
            failed = res is not None and failed
            row = Row(cyc)
            row.ti, row.tv, row.pi, row.pv, row.p = row_ti, row_tv, row_pi, row_pv, row_p
            row.failed = failed
            row.own = own
            if res is not None and not failed:
                if own[0] is not None:
                    lim_i = (own[0], res)
                if own[1] is not None:
                    lim_v = (own[1], res)
                if own[2] is not None:
                    lim_p = (own[2], res)
            src = row.src
            if lim_i is not None:
                row.imax = lim_i[0]
                src["imax"] = lim_i[1]
            if lim_v is not None:
                row.vmax = lim_v[0]
                src["vmax"] = lim_v[1]
            if lim_p is not None:
                row.pmax = lim_p[0]
                src["pmax"] = lim_p[1]
            if q_imax is not None:
                ev_imax = q_imax
            if q_vmax is not None:
                ev_vmax = q_vmax
            if q_pmax is not None:
                ev_pmax = q_pmax
            row.ev_imax, row.ev_vmax, row.ev_pmax = ev_imax, ev_vmax, ev_pmax
            row.soc = soc
            row.reg_tol = reg_tol if own_tol is _ABSENT else own_tol
            if own_min is not None and not failed:
                imin = own_min
            row.imin = imin
            row.ev_error = ev_error
            rows.append(row)
        for row, bad in zip(rows, implausible_marks(rows, IMPLAUSIBLE_DEFAULTS)):
            row.bad = bad
        out.append((run, rows))
    return out


_ABSENT = object()


def _cycle_values(q: dict, r: dict) -> tuple:
    """What one cycle's request facts ``q`` and response facts ``r`` alone give a :class:`Row`
    (SI units): (EVTargetCurrent, EVTargetVoltage, EVSEPresentCurrent, EVSEPresentVoltage,
    present power, FAILED ResponseCode, the response's own (imax, vmax, pmax), the request's
    EV maxima (current, voltage, power), SoC, the response's
    EVSECurrentRegulationTolerance (``_ABSENT`` when it has none), the response's minimum
    current, an EVErrorCode other than NO_ERROR / NoData). Identical payloads share their facts
    (analyzer/physical.py), so a loop's rows mostly repeat a few of these."""
    err = q.get("EVErrorCode")
    return (q.get("EVTargetCurrent_A"), q.get("EVTargetVoltage_V"),
            r.get("EVSEPresentCurrent_A"), r.get("EVSEPresentVoltage_V"),
            r.get("power_W", r.get("EVSEPresentActivePower_W")),
            is_failed(r.get("ResponseCode")),
            (pick(r, EVSE_IMAX), pick(r, EVSE_VMAX), pick(r, EVSE_PMAX)),
            pick(q, EV_IMAX), pick(q, EV_VMAX), pick(q, EV_PMAX),
            q.get("SoC_pct"), r.get(REG_TOL, _ABSENT), pick(r, EVSE_IMIN),
            isinstance(err, str) and err not in ("NO_ERROR", "NoData"))


# ---------------------------------------------------------------- plausibility (MSG020)
#: Default parameters of the plausibility judgement (MSG020's ``params``): ``factor`` — how
#: far above the largest announced maximum a present value must be to be impossible;
#: ``min_excess_a`` / ``min_excess_v`` — and by at least this much (small limits make a
#: factor meaningless); ``current_tolerance_a`` / ``voltage_tolerance_v`` — the regulation
#: margin above which a value on its way to / from an impossible one belongs to it.
IMPLAUSIBLE_DEFAULTS = {"factor": 2.0, "min_excess_a": 50.0, "min_excess_v": 100.0,
                        "current_tolerance_a": 5.0, "voltage_tolerance_v": 10.0}

#: (quantity, present value, [announced maxima of both sides and the EV's target], [the EV's
#: target, else the EVSE's maximum], excess floor key, tolerance key)
_QUANTITIES = (("current", "pi", ("imax", "ev_imax", "ti"), ("ti", "imax"), "min_excess_a",
                "current_tolerance_a"),
               ("voltage", "pv", ("vmax", "ev_vmax", "tv"), ("tv", "vmax"), "min_excess_v",
                "voltage_tolerance_v"))


def ceiling(row, names) -> float | None:
    """The largest of the row's values named in ``names`` (announced maxima, targets) that are
    known and positive; None when none is."""
    top = None
    for n in names:
        v = getattr(row, n)
        if v is not None and v > 0 and (top is None or v > top):
            top = v
    return top


def implausible_marks(rows, p: dict) -> list[frozenset]:
    """For each loop row, the present quantities ("current", "voltage") that cannot be a
    measurement.

    A value is *impossible* when it exceeds ``p["factor"]`` × the largest maximum either side
    announced for it (EVSEMaximumCurrentLimit / …VoltageLimit in force, the EV's
    EVMaximumCurrentLimit / …VoltageLimit, and the EV's target) and that maximum by more than
    ``p["min_excess_a"]`` / ``p["min_excess_v"]`` (at least one announced maximum must be
    known). The values next to an impossible one that are still above the EV's target (the
    EVSE's maximum when the request has none) by more than the tolerance and move
    monotonically toward it (a counter-like climb) or away from it (its decay) are the same
    defect and are marked too. Rows without a response, FAILED responses and negative values
    (discharge) are never marked. ``rows``: :class:`Row` list of one loop; returns a list of
    the same length (units: A, V)."""
    marks: list[set] = [set() for _ in rows]
    factor = p["factor"]
    for what, attr, maxima, own, floor_key, tol_key in _QUANTITIES:
        vals = []
        for row in rows:
            v = getattr(row, attr)
            ok = row.cyc.res is not None and not row.failed and v is not None and v > 0
            vals.append(v if ok else None)
        anchor = []
        floor = p[floor_key]
        announced = maxima[:2]
        first = maxima[0]
        for row, v in zip(rows, vals):
            if v is None:                           # nothing measured: no anchor
                anchor.append(False)
                continue
            m = getattr(row, first)
            if factor > 0 and m is not None and m > 0 and v <= factor * m:
                anchor.append(False)                # the ceiling is at least m: within it
                continue
            top = ceiling(row, announced)           # an announced maximum must be known
            c = ceiling(row, maxima) if top is not None else None
            anchor.append(c is not None and v > factor * c and v - c > floor)
        tol = p[tol_key]

        def above(i) -> bool:
            """Above what the EV asks for (else what the EVSE allows itself)."""
            c = getattr(rows[i], own[0])
            if c is None:
                c = getattr(rows[i], own[1])
            return vals[i] is not None and c is not None and vals[i] > c + tol

        for i, a in enumerate(anchor):
            if not a:
                continue
            marks[i].add(what)
            j = i - 1                       # the climb: non-decreasing toward the anchor
            while j >= 0 and not anchor[j] and above(j) and vals[j] <= vals[j + 1] + tol:
                marks[j].add(what)
                j -= 1
            j = i + 1                       # the decay: non-increasing away from it
            while j < len(rows) and not anchor[j] and above(j) and vals[j] <= vals[j - 1] + tol:
                marks[j].add(what)
                j += 1
    return [frozenset(m) for m in marks]


# ---------------------------------------------------------------- no current (CHL007)
#: Default parameters of the no-current judgement (CHL007's ``params``): see
#: :func:`no_current_stretches`.
NO_CURRENT_DEFAULTS = {"max_current_a": 1.0, "min_request_a": 2.0, "min_s": 10.0,
                       "min_cycles": 5, "voltage_tolerance_v": 10.0,
                       "battery_tolerance_v": 20.0}

#: DC_EVSEStatusCode values under which the EVSE is not expected to deliver.
_NOT_DELIVERING = STOP_STATUS | {"EVSE_NotReady", "EVSE_UtilityInterruptEvent"}


def no_current_stretches(session, ctx, p: dict | None = None) -> list[tuple]:
    """[(run, [Row …])]: the stretches of consecutive charge-loop cycles in which the EVSE
    delivered no current although the EV asked for it and the EVSE's own limits allowed it,
    lasting at least ``min_cycles`` cycles and ``min_s`` seconds — or, shorter, when no
    current flowed in the whole loop up to its end (view ``loop_table.no_current``, built
    once per analysis and parameters).

    A cycle counts when its response is not FAILED, |EVSEPresentCurrent| ≤ ``max_current_a``,
    EVTargetCurrent ≥ ``min_request_a`` and ≥ the EVSE's minimum current, min(EVTargetCurrent,
    EVSEMaximumCurrentLimit, EVSEMaximumPowerLimit / EVSEPresentVoltage) ≥ ``min_request_a``,
    the present values are plausible (:func:`implausible_marks`), the EVSE is not stopping or
    not ready (DC_EVSEStatusCode EVSE_NotReady / …Shutdown / …Malfunction /
    …UtilityInterruptEvent, EVSENotification StopCharging / Terminate / Pause) and the EV is
    not (EVErrorCode, EVReady false, ChargingComplete). A stretch whose median output voltage
    holds the EV's target voltage (within ``voltage_tolerance_v``) is load-limited — the EV's
    own voltage target sets the current (a lamp on a test rig) — and is left out, unless the
    loop had delivered no current before it and that voltage is more than
    ``battery_tolerance_v`` above the battery voltage the EV declared in PreCharge (no battery
    holds the output there while drawing no current). ``p``: parameters (default
    :data:`NO_CURRENT_DEFAULTS`). Units: A, V, s."""
    p = {**NO_CURRENT_DEFAULTS, **(p or {})}
    key = ("loop_table.no_current", repr(sorted(p.items())))
    return ctx.view(key, session, lambda: _build_no_current(session, ctx, p))


def _build_no_current(session, ctx, p) -> list[tuple]:
    out = []
    for run, rows in loop_table(session, ctx):
        batt = battery_voltage(session, run, ctx)
        delivered = False          # current flowed earlier in this loop
        cur: list = []
        flowed_before = False
        for i, row in enumerate(rows + [None]):
            ok = row is not None and _no_current(row, p)
            if ok:
                if not cur:
                    flowed_before = delivered
                cur.append(row)
            else:
                # a loop that never delivered current at all, to its end, counts whatever its
                # length: the session transferred no energy
                whole = bool(cur) and not flowed_before and not any(
                    r.pi is not None and r.pi > p["max_current_a"] and not r.bad and not r.failed
                    for r in rows[i:])
                if len(cur) >= p["min_cycles"] and (cur[-1].t - cur[0].t >= p["min_s"] or whole) and \
                        not _load_limited(cur, p, batt[0] if batt else None, flowed_before):
                    out.append((run, cur))
                cur = []
            if row is not None and row.pi is not None and row.pi > p["max_current_a"] \
                    and not row.bad and not row.failed:
                delivered = True
    return out


def _no_current(row, p) -> bool:
    """Whether one loop row counts for "no current although asked and allowed" (the voltage
    is judged per stretch, :func:`_load_limited`)."""
    if row.cyc.res is None or row.failed or row.bad or row.ev_error:
        return False
    if row.pi is None or row.ti is None or abs(row.pi) > p["max_current_a"]:
        return False
    if row.ti < p["min_request_a"] or (row.imin is not None and row.ti < row.imin):
        return False
    allowed = allowed_current(row)
    if allowed is None or allowed < p["min_request_a"]:
        return False
    r = row.cyc.r
    if r.get("EVSEStatusCode") in _NOT_DELIVERING or r.get("EVSENotification") in STOP_NOTIFICATION:
        return False
    if row.cyc.q.get("EVReady") is False or flag(row.cyc.qb, "ChargingComplete") is True:
        return False
    return True


def _median(xs: list) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def _load_limited(stretch, p, batt, flowed_before) -> bool:
    """Whether a no-current stretch is load-limited operation at the EV's target voltage: the
    median output voltage is within ``voltage_tolerance_v`` of (or above) the median
    EVTargetVoltage, and either current flowed earlier in the loop (the battery may have
    reached that voltage), or the battery voltage is unknown, or the output is within
    ``battery_tolerance_v`` of the battery voltage the EV declared in PreCharge."""
    pv = _median([r.pv for r in stretch])
    tv = _median([r.tv for r in stretch])
    if pv is None or tv is None or pv < tv - p["voltage_tolerance_v"]:
        return False
    return flowed_before or batt is None or pv <= batt + p["battery_tolerance_v"]


def covered_by_no_current(session, ctx) -> set:
    """ids of the loop rows in the default no-current stretches (LIM004 / LIM005 skip them)."""
    return {id(r) for _, st in no_current_stretches(session, ctx) for r in st}


def allowed_current(row) -> float | None:
    """What the EVSE should deliver (A): min(EVTargetCurrent, EVSE maximum current, EVSE
    maximum power / present voltage) of a loop :class:`Row`; None without a target or a
    present current."""
    if row.ti is None or row.pi is None:
        return None
    a = row.ti
    if row.imax is not None:
        a = min(a, row.imax)
    if row.pmax and row.pv and row.pv > 0:
        a = min(a, row.pmax / row.pv)
    return a


def battery_voltage(session, run, ctx) -> tuple | None:
    """(EVTargetVoltage V, frame) of the last PreCharge request before a loop ``run`` on its
    connection: the battery voltage the EV declared before charging; None without one."""
    best = None
    for pre in message_runs(session, "precharge", ctx):
        if pre.conn == run.conn and pre.last.time <= run.first.time:
            for c in pre.cycles:
                v = c.q.get("EVTargetVoltage_V")
                if v is not None:
                    best = (v, c.req.frame)
    return best


def evse_minimum_voltage(run) -> float | None:
    """The EVSE's minimum output voltage (V) announced in the ChargeParameterDiscoveryRes
    before a run (EVSEMinimumVoltageLimit, -20 EVSEMinimumVoltage); None when unknown or not
    positive."""
    if run.cpd_res is None:
        return None
    v = pick(facts(run.cpd_res), EVSE_VMIN)
    return v if v is not None and v > 0 else None


#: LIM002's default ``voltage_tolerance_v`` (V): how far EVSEPresentVoltage may exceed the EV's
#: maximum voltage before LIM002 reports it; PRE005 leaves the PreCharge responses beyond it to
#: LIM002 (PROTOCOL_FACTS §4D ⚠ analyst choice).
EV_MAXIMUM_VOLTAGE_TOLERANCE_V = 10.0


def voltage_above_ev_maximum(row, tolerance_v: float) -> bool:
    """Whether a row's EVSEPresentVoltage exceeds the EV's maximum voltage by more than
    ``tolerance_v`` V (LIM002's condition; False when either value is unknown)."""
    return (row.pv is not None and row.ev_vmax is not None and row.ev_vmax > 0
            and row.pv - row.ev_vmax > tolerance_v)


def precharge_rows(run) -> list:
    """:class:`Row` objects of a PreCharge loop's answered cycles: ``pv`` (EVSEPresentVoltage),
    ``tv`` (EVTargetVoltage) and the EV's maximum voltage ``ev_vmax`` from the request, else
    the ChargeParameterDiscoveryReq before the loop (V)."""
    cpd_q = facts(run.cpd_req) if run.cpd_req is not None else {}
    ev_vmax = pick(cpd_q, EV_VMAX)
    out = []
    for cyc in run.cycles:
        if cyc.res is None:
            continue
        r = cyc.r
        if is_failed(r.get("ResponseCode")):
            continue
        row = Row(cyc)
        row.pv = r.get("EVSEPresentVoltage_V")
        row.tv = cyc.q.get("EVTargetVoltage_V")
        v = pick(cyc.q, EV_VMAX)
        row.ev_vmax = v if v is not None else ev_vmax
        out.append(row)
    return out


def run_key(run) -> tuple:
    """A run's identity that survives rebuilding the runs: (connection, first frame)."""
    return (run.conn, run.first.frame)


def precharge_before_loops(session, ctx) -> dict:
    """{:func:`run_key` of a loop run or of a PreCharge run: [Row …]}: the PreCharge rows (see
    :func:`precharge_rows`) of each connection grouped under the charge loop that follows
    them on the connection, or under the PreCharge run itself when no loop follows before
    the next PreCharge (a fresh dict per call)."""
    loops = loop_runs(session, ctx)
    out: dict = {}
    for pre in message_runs(session, "precharge", ctx):
        nxt = next((lp for lp in loops if lp.conn == pre.conn and lp.first.time >= pre.last.time),
                   None)
        later_pre = nxt is not None and any(
            o is not pre and o.conn == pre.conn and pre.last.time < o.first.time < nxt.first.time
            for o in message_runs(session, "precharge", ctx))
        key = run_key(nxt) if nxt is not None and not later_pre else run_key(pre)
        out.setdefault(key, []).extend(precharge_rows(pre))
    return out


#: EVTargetVoltage below which a PreChargeReq target is a placeholder when the EVSE's
#: minimum voltage is unknown (V; MSG022's default ``min_voltage_v``).
PLACEHOLDER_MIN_VOLTAGE_V = 50.0


def placeholder_targets(run, min_voltage_v: float = PLACEHOLDER_MIN_VOLTAGE_V):
    """The leading placeholder targets of a PreCharge loop: ([(request, EVTargetVoltage V) …],
    (first real request, its EVTargetVoltage V)) when the loop's first requests ask for a
    target below the EVSE's minimum voltage (EVSEMinimumVoltageLimit / -20
    EVSEMinimumVoltage of the ChargeParameterDiscoveryRes before it; ``min_voltage_v`` when
    unknown) — a voltage no EVSE output can be asked to match, e.g. 0 V — and a later
    request of the same loop asks for one at or above it; None otherwise."""
    lo = evse_minimum_voltage(run) or min_voltage_v
    held = []
    for c in run.cycles:
        v = c.q.get("EVTargetVoltage_V") if c.req is not None else None
        if v is None:
            continue
        if v < lo:
            held.append((c.req, v))
            continue
        return (held, (c.req, v)) if held else None
    return None
