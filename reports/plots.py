"""Static SVG plots of a session's physical values over time, built here from numbers only.

Panels (each drawn when the session has data for it): voltage (EV target, EVSE present, EVSE
and EV maxima), current (same roles), power (EVSE present V × I and the maxima) and state of
charge, plus a zoom on PreCharge (EV target against EVSE present voltage). Findings are
vertical markers at their time, each a link to the finding (``#F3``).

Control pilot (IEC 61851-1; the readings and their states come from
analyzer/views/control_pilot.py, nothing is judged here): when the session has CP readings, a
*CP lane* under the physical panels, on the same time axis — the settled CP state as a step
line on a categorical axis (A1 … D2, E, F, top to bottom in the order of the pilot voltage),
the PWM duty cycle (%) as a second track where a modem reports it, the contactor as a band
where a test system reports it, and the readings between the voltage bands as diamonds. A
session without V2G values (basic charging, ``Session.basic``) plots instead the test
system's measured voltage and current, with the current the PWM duty cycle allows.

Values come from :func:`ccs_analyzer.analyzer.physical.event_facts` (SI units). Long loops are
thinned per pixel column (first, minimum, maximum and last point of each column are kept, so
peaks survive) and flat runs are reduced to their ends: a 600 s loop of 12,000 messages gives
a few hundred points per line. Nothing from the capture but numbers reaches the SVG, and the
only text (finding ids and synopses in tooltips) is escaped.
"""
from __future__ import annotations

import html
import math
from bisect import bisect_left, bisect_right
from operator import itemgetter
from dataclasses import dataclass, field

from ccs_analyzer.analyzer.control_pilot import STATE_MEANING, STATE_VOLTAGE_V
from ccs_analyzer.analyzer.physical import event_facts
from ccs_analyzer.analyzer.views.control_pilot import CpView, build_cp_view

#: Line roles: (colour, dash pattern, step-wise).
ROLE_STYLE = {
    "target": ("#e07b00", "6 3", False),
    "present": ("#1f5fbf", "", False),
    "evse_max": ("#6b6b6b", "2 3", True),
    "ev_max": ("#9b3fbf", "2 3", True),
    # a test system's meter reports on change: its value holds until the next reading
    "measured": ("#1f5fbf", "", True),
}

#: Panels: (id, title, unit, [(role, label, keys in order of preference)]).
PANELS = [
    ("voltage", "Voltage", "V", [
        ("target", "EV target voltage", ("EVTargetVoltage_V",)),
        ("present", "EVSE present voltage", ("EVSEPresentVoltage_V",)),
        ("evse_max", "EVSE maximum voltage", ("EVSEMaximumVoltageLimit_V", "EVSEMaximumVoltage_V")),
        ("ev_max", "EV maximum voltage", ("EVMaximumVoltageLimit_V", "EVMaximumVoltage_V")),
    ]),
    ("current", "Current", "A", [
        ("target", "EV target current", ("EVTargetCurrent_A",)),
        ("present", "EVSE present current", ("EVSEPresentCurrent_A",)),
        ("evse_max", "EVSE maximum current", ("EVSEMaximumCurrentLimit_A", "EVSEMaximumChargeCurrent_A",
                                              "EVSEMaxCurrent_A")),
        ("ev_max", "EV maximum current", ("EVMaximumCurrentLimit_A", "EVMaximumChargeCurrent_A",
                                          "EVMaxCurrent_A")),
    ]),
    ("power", "Power", "W", [
        ("present", "EVSE present power (V × I)", ("power_W",)),
        ("target", "EV target power", ("EVTargetPower_W",)),
        ("evse_max", "EVSE maximum power", ("EVSEMaximumPowerLimit_W", "EVSEMaximumChargePower_W")),
        ("ev_max", "EV maximum power", ("EVMaximumPowerLimit_W", "EVMaximumChargePower_W")),
    ]),
    ("soc", "State of charge", "%", [
        ("present", "EV state of charge", ("SoC_pct",)),
    ]),
]

WIDTH, HEIGHT = 900, 190
ML, MR, MT, MB = 62, 14, 26, 30          # margins: left, right, top (legend), bottom


@dataclass
class Line:
    """One line of a panel: its ``role`` (a key of :data:`ROLE_STYLE`), legend ``label`` and
    ``points`` ((s since the session's start, value in the panel's unit); a None value breaks
    the line)."""

    role: str
    label: str
    points: list[tuple[float, float]] = field(default_factory=list)


#: Plotted fact key (:func:`~ccs_analyzer.analyzer.physical.event_facts`) → the lines it may
#: feed: ``[(panel id, role, label)]``, in the order of :data:`PANELS`.
_WANTED: dict[str, list[tuple[str, str, str]]] = {}
for _pid, _title, _unit, _roles in PANELS:
    for _role, _label, _keys in _roles:
        for _k in _keys:
            _WANTED.setdefault(_k, []).append((_pid, _role, _label))


def _plotted(facts: dict) -> list[tuple[str, float]]:
    """The (key, value) pairs of a facts dict that a panel plots: wanted keys with a finite
    number (not a bool), in the facts' order."""
    return [(k, float(v)) for k, v in facts.items()
            if k in _WANTED and not isinstance(v, bool) and isinstance(v, (int, float))
            and math.isfinite(v)]


def session_series(session, t0: float) -> dict[str, list[Line]]:
    """panel id → lines with their (t_s, value) points, from the session's decoded V2G
    messages (``t_s``: seconds since ``t0``).

    A role with several keys (``EVSEMaximumVoltageLimit_V`` in ISO 15118-2,
    ``EVSEMaximumVoltage_V`` in -20 …) plots the one seen first, in message order. One pass
    gathers every plotted key's points (the facts of identical payloads are one shared dict,
    read once); each line then takes its chosen key's points."""
    points: dict[str, list[tuple[float, float]]] = {}   # key → points, keys as first seen
    plotted: dict[int, tuple[dict, list]] = {}           # id(facts) → (facts, its pairs)
    for e in session.events:
        if e.layer != "v2gtp" or e.message is None:
            continue
        f = event_facts(e)
        if not f:
            continue
        hit = plotted.get(id(f))
        if hit is None:
            hit = plotted[id(f)] = (f, _plotted(f))
        if not hit[1]:
            continue
        t = e.time - t0
        for k, v in hit[1]:
            pts = points.get(k)
            if pts is None:
                points[k] = [(t, v)]
            else:
                pts.append((t, v))
    seen = {k: i for i, k in enumerate(points)}
    out: dict[str, list[Line]] = {}
    for pid, _title, _unit, roles in PANELS:
        lines = []
        for role, label, keys in roles:
            have = [k for k in keys if k in seen]
            if have:
                lines.append(Line(role, label, list(points[min(have, key=seen.__getitem__)])))
        if lines:
            out[pid] = lines
    return out


def precharge_window(session, t0: float) -> tuple[float, float] | None:
    """(start, end) in seconds since ``t0`` of the PreCharge phase (first PreChargeReq to the
    first message after the last PreChargeRes), padded; None without PreCharge."""
    first = last = after = None
    for e in session.events:
        if e.layer != "v2gtp":
            continue
        if e.name in ("PreChargeReq", "DC_PreChargeReq", "PreChargeRes", "DC_PreChargeRes"):
            first = e.time if first is None else first
            last = e.time
        elif last is not None and after is None:
            after = e.time
    if first is None:
        return None
    end = after if after is not None and after - last < 5 else last
    pad = max(0.3, (end - first) * 0.04)
    return first - t0 - pad, end - t0 + pad


# ---------------------------------------------------------------------------- numbers
def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def axis_range(lo: float, hi: float, n: int = 4) -> tuple[float, float]:
    """[lo, hi] widened to whole tick steps, so that the highest value stays below the top."""
    ticks = nice_ticks(lo, hi, n)
    if len(ticks) < 2:
        return lo, hi if hi > lo else lo + 1.0
    step = ticks[1] - ticks[0]
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.2f}".rstrip("0").rstrip(".")


def thin(points: list[tuple[float, float]], lo: float, hi: float, columns: int) -> list[tuple[float, float]]:
    """At most ~4 points per pixel column (first, min, max, last, in time order) between
    ``lo`` and ``hi``, then flat runs reduced to their ends (:func:`drop_flat`). A column's
    points are a run of consecutive points that fall in it (:func:`_bucket_keep`)."""
    pts = [p for p in points if lo <= p[0] <= hi]
    if len(pts) > columns * 2:
        width = (hi - lo) / columns or 1.0
        col = [int((t - lo) / width) for t, _v in pts]
        ends = [i for i, before, c in zip(range(1, len(col)), col, col[1:]) if c != before]
        ends.append(len(pts))
        vals = [v for _t, v in pts]
        out: list[tuple[float, float]] = []
        start = 0
        for end in ends:
            out.extend(_bucket_keep(pts, vals, start, end))
            start = end
        pts = out
    return drop_flat(pts)


def drop_flat(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points inside a run of equal values removed (the run's ends kept)."""
    if len(pts) <= 2:
        return pts
    vals = [p[1] for p in pts]
    inner = [p for p, before, v, after in zip(pts[1:-1], vals, vals[1:], vals[2:])
             if not (v == before == after)]
    return [pts[0], *inner, pts[-1]]


def _first_extreme(vals: list, pick) -> int:
    """The index of the first lowest (``pick=min``) or highest (``pick=max``) of ``vals``,
    the one ``pick(range(len(vals)), key=vals.__getitem__)`` names, found with C-level
    comparisons: the first value equal to the extreme is it (for a NaN extreme, which
    equals nothing, the slower search answers)."""
    m = pick(vals)
    return vals.index(m) if m == m else pick(range(len(vals)), key=vals.__getitem__)


def _bucket_keep(pts, vals, start: int, end: int):
    """The points kept of one pixel column, ``pts[start:end]`` (``vals``: the points'
    values): its first, its lowest and highest value (the first of equal ones) and its last,
    each once, in time order."""
    if end - start <= 4:
        return pts[start:end]
    col = vals[start:end]
    lo = pts[start + _first_extreme(col, min)]
    hi = pts[start + _first_extreme(col, max)]
    first, last = pts[start], pts[end - 1]
    keep = {id(first): first, id(lo): lo, id(hi): hi, id(last): last}
    return sorted(keep.values(), key=itemgetter(0))


def _split_none(points):
    """Split a line where a value is None (the quantity was not there); the None points go."""
    cuts = [i for i, p in enumerate(points) if p[1] is None]
    start = 0
    for i in cuts + [len(points)]:
        if i > start:
            yield points[start:i]
        start = i + 1


def _step_runs(pts, lo: float, hi: float, to_end: bool) -> list[list[tuple[float, float]]]:
    """The runs of a step line between ``lo`` and ``hi`` (s): a value holds until the next
    point; a None point ends the run it follows (held up to it); the last run holds to ``hi``
    when ``to_end``. A run that began before ``lo`` starts at ``lo`` with its value there."""
    runs: list[list] = []
    cur: list = []
    for t, v in pts:
        if v is None:
            if cur:
                cur.append((t, cur[-1][1]))
                runs.append(cur)
                cur = []
            continue
        cur.append((t, v))
    if cur:
        if to_end and cur[-1][0] < hi:
            cur.append((hi, cur[-1][1]))
        runs.append(cur)
    out = []
    for ext in runs:
        inside = [p for p in ext if lo <= p[0] <= hi]
        before = [p for p in ext if p[0] < lo]
        if not inside and len(runs) > 1:
            if not before or ext[-1][0] <= hi:
                continue                 # wholly outside the window
            inside = [(hi, before[-1][1])]
        elif not inside:
            inside = ext[-1:]
        if before:
            inside = [(lo, before[-1][1])] + inside
        out.append(inside)
    return out


def _finding_marks(markers: list[dict], X, lo: float, hi: float, top: float, bottom: float) -> list[str]:
    """The findings' markers (``{"t": s, "id", "severity", "text"}``) between ``lo`` and ``hi``
    (s) as SVG links to ``#F3``: a dashed line from ``top`` to ``bottom`` (px) and a triangle
    above; ``X`` maps seconds to px."""
    esc = html.escape
    o = []
    for m in markers:
        t = m["t"]
        if t is None or not (lo <= t <= hi):
            continue
        x = X(t)
        fid = esc(m["id"])
        o.append(f'<a href="#{fid}" class="fmk {esc(m["severity"])}" data-finding="{fid}">'
                 f'<title>{fid} {esc(m["text"])}</title>'
                 f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>'
                 f'<path d="M{x - 5:.1f},{top - 8} L{x + 5:.1f},{top - 8} L{x:.1f},{top} Z"/></a>')
    return o


def _segments(points, gap_s: float):
    """Split a line where consecutive points are further apart than ``gap_s`` (a pause)."""
    if not points:
        return
    cuts = [i for i in range(1, len(points)) if points[i][0] - points[i - 1][0] > gap_s]
    start = 0
    for i in cuts + [len(points)]:
        yield points[start:i]
        start = i


# ---------------------------------------------------------------------------- SVG
def svg_panel(title: str, unit: str, lines: list[Line], t_range: tuple[float, float],
              markers: list[dict], *, panel_id: str, step_to_end: bool = True) -> str:
    """One panel as an SVG string. ``markers``: ``{"t": s, "id": "F3", "severity", "text"}``."""
    lo, hi = t_range
    if hi <= lo:
        hi = lo + 1.0
    pw, ph = WIDTH - ML - MR, HEIGHT - MT - MB
    vals = [v for ln in lines for t, v in ln.points if lo <= t <= hi and v is not None]
    if not vals:
        vals = [v for ln in lines for _t, v in ln.points if v is not None] or [0.0]
    vmin, vmax = min(vals + [0.0]), max(vals + [0.0])
    scale, unit_shown = 1.0, unit
    if unit == "W" and max(abs(vmin), abs(vmax)) >= 10000:
        scale, unit_shown = 1000.0, "kW"
    if unit == "%":
        vmin, vmax = min(vmin, 0.0), max(vmax, 100.0)
    if vmax == vmin:
        vmax = vmin + 1.0
    ylo, yhi = axis_range(vmin / scale, vmax / scale * (1.0 if unit == "%" else 1.03))
    yt = nice_ticks(ylo, yhi, 4)

    def X(t):
        return ML + pw * (t - lo) / (hi - lo)

    def Y(v):
        return MT + ph - ph * (v / scale - ylo) / (yhi - ylo)

    esc = html.escape
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="plot" '
         f'data-panel="{esc(panel_id)}" role="img" aria-label="{esc(title)} over time">',
         f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" class="pa"/>']
    for v in yt:
        y = Y(v * scale)
        if MT - 0.5 <= y <= MT + ph + 0.5:
            o.append(f'<line x1="{ML}" x2="{ML + pw}" y1="{y:.1f}" y2="{y:.1f}" class="gr"/>'
                     f'<text x="{ML - 5}" y="{y + 3.5:.1f}" text-anchor="end" class="ax">{_fmt(v)}</text>')
    o.append(f'<text x="14" y="{MT + ph / 2:.1f}" class="ax un" text-anchor="middle" '
             f'transform="rotate(-90 14 {MT + ph / 2:.1f})">{esc(title)} ({esc(unit_shown)})</text>')
    for t in nice_ticks(lo, hi, 8):
        x = X(t)
        o.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MT + ph}" y2="{MT + ph + 4}" class="tk"/>'
                 f'<text x="{x:.1f}" y="{MT + ph + 15}" text-anchor="middle" class="ax">{_fmt(t)}</text>')
    o.append(f'<text x="{ML + pw}" y="{HEIGHT - 2}" text-anchor="end" class="ax">'
             f's since session start</text>')
    gap = max(5.0, (hi - lo) / 20)
    columns = pw // 3                 # ≤ 4 points per 3 px: lighter pages, peaks kept
    for ln in lines:
        color, dash, step = ROLE_STYLE[ln.role]
        pts = sorted(ln.points, key=itemgetter(0))
        if not step and (pts[:1] and pts[0][0] < lo or pts[-1:] and pts[-1][0] > hi):
            # only the window's points are drawn (a zoom): they are one slice of the sorted line
            pts = pts[bisect_left(pts, lo, key=itemgetter(0)):bisect_right(pts, hi, key=itemgetter(0))]
        if step:
            # a limit holds until the next message says otherwise: draw it as steps
            runs = _step_runs(pts, lo, hi, step_to_end)
        else:
            runs = [seg for part in _split_none(pts) for seg in _segments(part, gap)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for seg in runs:
            seg = thin(seg, lo, hi, columns)
            if not seg:
                continue
            if step:
                coords = []
                for i, (t, v) in enumerate(seg):
                    if i:
                        coords.append(f"{X(t):.1f},{Y(seg[i - 1][1]):.1f}")
                    coords.append(f"{X(t):.1f},{Y(v):.1f}")
            else:
                coords = [f"{X(t):.1f},{Y(v):.1f}" for t, v in seg]
            if len(coords) == 1:
                x, y = coords[0].split(",")
                o.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{color}" class="pt" data-role="{ln.role}">'
                         f'<title>{esc(ln.label)}</title></circle>')
                continue
            o.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6"{dash_attr} '
                     f'data-role="{ln.role}" points="{" ".join(coords)}"><title>{esc(ln.label)} '
                     f'({esc(unit_shown)})</title></polyline>')
    o.extend(_finding_marks(markers, X, lo, hi, MT, MT + ph))
    # legend
    lx = ML
    for ln in lines:
        color, dash, _ = ROLE_STYLE[ln.role]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        o.append(f'<line x1="{lx}" x2="{lx + 22}" y1="9" y2="9" stroke="{color}" stroke-width="2"{dash_attr}/>'
                 f'<text x="{lx + 26}" y="12.5" class="lg">{esc(ln.label)}</text>')
        lx += 40 + 6.6 * len(ln.label)
    o.append("</svg>")
    return "".join(o)


# ---------------------------------------------------------------------------- control pilot
#: CP states in the order of the lane, top to bottom (pilot voltage falling, IEC 61851-1
#: Table A.4: A 12 V … E 0 V, F −12 V).
CP_ORDER = ("A1", "A2", "B1", "B2", "C1", "C2", "D1", "D2", "E", "F")
#: Colour of a state letter in the lane (and in the HTML's CP rows).
CP_COLOR = {"A": "#6b6b6b", "B": "#1f5fbf", "C": "#1e8a4c", "D": "#0f7f86", "E": "#b00020",
            "F": "#b00020"}
CP_ROW_H, CP_DUTY_H, CP_BAND_H, CP_GAP = 16, 56, 12, 10
#: A lane draws one coloured, titled segment per state when it has at most this many
#: transitions; beyond, one step line (a flapping pilot stays light).
CP_SEGMENTS_MAX = 400


def _cp_rows(cp: CpView) -> list[str]:
    """The states of the lane's categorical axis: those the primary reporter's readings
    reached, in :data:`CP_ORDER` (states outside it after, as they came)."""
    seen = list(dict.fromkeys(x.state for x in cp.states))
    return [st for st in CP_ORDER if st in seen] + [st for st in seen if st not in CP_ORDER]


def _cp_meaning(state: str | None) -> str:
    return STATE_MEANING.get((state or "?")[0], "between the voltage bands")


def _oob_y(cp: CpView, x, row_y: dict[str, float], middle: float) -> float:
    """Where a reading between the bands sits on the state track (px): between the rows of
    the state before it and the state after it, in proportion to its voltage between their
    nominal voltages (IEC 61851-1 Table A.4); halfway without a voltage; ``middle`` when
    neither state has a row."""
    before = cp.state_at(x.time)
    after = next((tr.after for tr in cp.transitions if tr.time > x.time), None)
    if before in row_y and after in row_y:
        vb, va = STATE_VOLTAGE_V.get(before[0]), STATE_VOLTAGE_V.get(after[0])
        frac = 0.5
        if x.voltage_V is not None and vb is not None and va is not None and vb != va:
            frac = min(1.0, max(0.0, (vb - x.voltage_V) / (vb - va)))
        return row_y[before] + frac * (row_y[after] - row_y[before])
    ys = [row_y[st] for st in (before, after) if st in row_y]
    return ys[0] if ys else middle


def _step_coords(pts, end: float, X, Y) -> str:
    """SVG points of a step line through ``pts`` ((s, value), sorted), held to ``end`` (s)."""
    coords = []
    for i, (t, v) in enumerate(pts):
        if i:
            coords.append(f"{X(t):.1f},{Y(pts[i - 1][1]):.1f}")
        coords.append(f"{X(t):.1f},{Y(v):.1f}")
    if pts and end > pts[-1][0]:
        coords.append(f"{X(end):.1f},{Y(pts[-1][1]):.1f}")
    return " ".join(coords)


def svg_cp_lane(cp: CpView, t0: float, t_range: tuple[float, float], markers: list[dict],
                end: float | None = None) -> str:
    """The CP lane of a session as an SVG string (``data-panel="cp"``), ``WIDTH`` px wide with
    the margins of :func:`svg_panel`, so that its time axis lines up with the panels above.

    ``cp``: the session's :class:`~ccs_analyzer.analyzer.views.control_pilot.CpView`;
    ``t0``: epoch s of the session's first frame (x = seconds since ``t0``); ``t_range``:
    (lo, hi) s shown; ``markers``: the findings as for :func:`svg_panel`; ``end``: s up to
    which the last state, duty cycle and contactor state are held (default ``hi``).

    Tracks, top to bottom: the settled state (``cp.transitions``) as a step line on one row per
    state of :func:`_cp_rows`; the PWM duty cycle (%, 0–100) of the readings that carry one
    (``cp.duty()``), labelled where it changes (with the current it allows, A); the contactor
    (``cp.contactor()``) as a band, filled where closed. Readings between the bands
    (``cp.out_of_band``) are diamonds on the state track.
    """
    lo, hi = t_range
    if hi <= lo:
        hi = lo + 1.0
    end = hi if end is None else min(end, hi)
    esc = html.escape
    pw = WIDTH - ML - MR
    rows = _cp_rows(cp)
    duty = [(x.time - t0, x.duty_pct, x) for x in cp.duty()]
    cont = [(x.time - t0, x.contactor, x) for x in cp.contactor()]
    top = MT
    st_bot = top + CP_ROW_H * max(1, len(rows))
    y = st_bot
    duty_top = duty_bot = band_top = None
    if duty:
        duty_top = y + CP_GAP
        duty_bot = y = duty_top + CP_DUTY_H
    if cont:
        band_top = y + CP_GAP
        y = band_top + CP_BAND_H
    bottom = y
    height = bottom + MB

    def X(t):
        return ML + pw * (t - lo) / (hi - lo)

    row_y = {st: top + CP_ROW_H * (i + 0.5) for i, st in enumerate(rows)}

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" class="plot cplane" '
         f'data-panel="cp" role="img" aria-label="Control pilot state over time">',
         f'<rect x="{ML}" y="{top}" width="{pw}" height="{st_bot - top}" class="pa"/>']
    # state track: one row per state
    for st in rows:
        yy = row_y[st]
        o.append(f'<line x1="{ML}" x2="{ML + pw}" y1="{yy:.1f}" y2="{yy:.1f}" class="gr"/>'
                 f'<text x="{ML - 5}" y="{yy + 3.5:.1f}" text-anchor="end" class="ax cps s-{esc(st[0])}">'
                 f'<title>{esc(st)}: {esc(_cp_meaning(st))}</title>{esc(st)}</text>')
    o.append(f'<text x="14" y="{(top + st_bot) / 2:.1f}" class="ax un" text-anchor="middle" '
             f'transform="rotate(-90 14 {(top + st_bot) / 2:.1f})">CP state</text>')
    trs = [tr for tr in cp.transitions if tr.after in row_y]
    if trs:
        if len(trs) <= CP_SEGMENTS_MAX:
            for i, tr in enumerate(trs):
                a = tr.time - t0
                b = trs[i + 1].time - t0 if i + 1 < len(trs) else max(end, a)
                if b < lo or a > hi:
                    continue
                xa, xb = X(max(a, lo)), X(min(b, hi))
                yy = row_y[tr.after]
                if i + 1 < len(trs) and lo <= b <= hi:
                    o.append(f'<line x1="{xb:.1f}" x2="{xb:.1f}" y1="{yy:.1f}" '
                             f'y2="{row_y[trs[i + 1].after]:.1f}" class="cpv"/>')
                o.append(f'<line x1="{xa:.1f}" x2="{max(xb, xa + 1.5):.1f}" y1="{yy:.1f}" y2="{yy:.1f}" '
                         f'stroke="{CP_COLOR.get(tr.after[0], "#4a535c")}" class="cpst" '
                         f'data-state="{esc(tr.after)}"><title>{esc(tr.after)} ({esc(_cp_meaning(tr.after))}) '
                         f'from {a:.3f} s, frame {tr.frame}</title></line>')
        else:
            pts = [(tr.time - t0, row_y[tr.after]) for tr in trs]
            pts = thin(pts, lo, hi, pw // 3)
            o.append(f'<polyline fill="none" stroke="#1f5fbf" stroke-width="1.6" data-role="cpstate" '
                     f'points="{_step_coords(pts, end, X, lambda v: v)}"><title>CP state</title></polyline>')
    # readings between the bands
    for x in cp.out_of_band:
        t = x.time - t0
        if not (lo <= t <= hi):
            continue
        yy = _oob_y(cp, x, row_y, (top + st_bot) / 2)
        xx = X(t)
        volts = f"{x.voltage_V:g} V" if x.voltage_V is not None else "no voltage"
        o.append(f'<path d="M{xx:.1f},{yy - 5:.1f} L{xx + 4:.1f},{yy:.1f} L{xx:.1f},{yy + 5:.1f} '
                 f'L{xx - 4:.1f},{yy:.1f} Z" class="oob"><title>frame {x.frame}: {esc(volts)}, between '
                 f'the voltage bands ({esc(x.source)}) at {t:.3f} s</title></path>')
    # duty cycle track
    if duty:
        o.append(f'<rect x="{ML}" y="{duty_top}" width="{pw}" height="{CP_DUTY_H}" class="pa"/>')

        def YD(v):
            return duty_bot - 3 - (CP_DUTY_H - 6) * max(0.0, min(100.0, v)) / 100.0

        for v in (0, 50, 100):
            yy = YD(v)
            o.append(f'<line x1="{ML}" x2="{ML + pw}" y1="{yy:.1f}" y2="{yy:.1f}" class="gr"/>'
                     f'<text x="{ML - 5}" y="{yy + 3.5:.1f}" text-anchor="end" class="ax">{v}</text>')
        o.append(f'<text x="14" y="{(duty_top + duty_bot) / 2:.1f}" class="ax un" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(duty_top + duty_bot) / 2:.1f})">duty %</text>')
        pts = [(t, v) for t, v, _x in duty]
        inside = [p for p in pts if lo <= p[0] <= hi]
        before = [p for p in pts if p[0] < lo]
        if before:
            inside = [(lo, before[-1][1])] + inside
        inside = thin(inside, lo, hi, pw // 3)
        if inside:
            o.append(f'<polyline fill="none" stroke="#e07b00" stroke-width="1.6" data-role="duty" '
                     f'points="{_step_coords(inside, end, X, YD)}"><title>PWM duty cycle (%)</title></polyline>')
        # labels where the duty cycle changes (≥ 1 point, ≥ 70 px apart, at most 24)
        last_v = last_x = None
        n = 0
        for t, v, x in duty:
            if not (lo <= t <= hi) or n >= 24:
                continue
            if last_v is not None and abs(v - last_v) < 1.0:
                continue
            xx = X(t)
            if last_x is not None and xx - last_x < 70:
                last_v = v
                continue
            text = f"{v:g} %" + (f" · {x.pwm_current_A:g} A" if x.pwm_current_A is not None else "")
            yy = YD(v) + (12 if v > 70 else -4)
            right = xx + 6 * len(text) > ML + pw      # near the right edge: end at the change
            o.append(f'<text x="{xx - 3 if right else xx + 3:.1f}" y="{yy:.1f}" class="lg dl"'
                     f'{" text-anchor=" + chr(34) + "end" + chr(34) if right else ""}>{esc(text)}</text>')
            last_v, last_x = v, xx
            n += 1
    # contactor band
    if cont:
        o.append(f'<rect x="{ML}" y="{band_top}" width="{pw}" height="{CP_BAND_H}" class="pa"/>'
                 f'<text x="{ML - 5}" y="{band_top + CP_BAND_H - 2:.1f}" text-anchor="end" class="ax">'
                 f'contactor</text>')
        runs: list[list] = []        # [state, t_from, frame, t_to]
        for t, state, x in cont:
            if runs and runs[-1][0] == state:
                continue
            if runs:
                runs[-1][3] = t
            runs.append([state, t, x.frame, None])
        for state, a, frame, b in runs:
            b = end if b is None else b
            if b < lo or a > hi:
                continue
            xa, xb = X(max(a, lo)), X(min(max(b, a), hi))
            cls = "cc" if state == "closed" else "co"
            o.append(f'<rect x="{xa:.1f}" y="{band_top + 1}" width="{max(xb - xa, 1.0):.1f}" '
                     f'height="{CP_BAND_H - 2}" class="{cls}" data-contactor="{esc(state)}"><title>contactor '
                     f'{esc(state)} from {a:.3f} s (frame {frame})</title></rect>')
    # time axis, findings
    for t in nice_ticks(lo, hi, 8):
        xx = X(t)
        o.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{bottom}" y2="{bottom + 4}" class="tk"/>'
                 f'<text x="{xx:.1f}" y="{bottom + 15}" text-anchor="middle" class="ax">{_fmt(t)}</text>')
    o.append(f'<text x="{ML + pw}" y="{height - 2}" text-anchor="end" class="ax">s since session start</text>')
    o.extend(_finding_marks(markers, X, lo, hi, top, bottom))
    # legend
    items = [("".join(f'<line x1="{{s{i}}}" x2="{{s{i + 1}}}" y1="9" y2="9" stroke="{CP_COLOR[k]}" '
                      f'stroke-width="3"/>' for i, k in enumerate("ABC")),
              f"CP state ({cp.primary})" if cp.primary else "CP state")]
    if duty:
        items.append(('<line x1="{x}" x2="{x2}" y1="9" y2="9" stroke="#e07b00" stroke-width="2"/>',
                      "PWM duty cycle (%) · current it allows"))
    if cont:
        items.append(('<rect x="{x}" y="4" width="22" height="10" class="cc"/>', "contactor closed"))
    if cp.out_of_band:
        items.append(('<path d="M{xm},4 L{xr},9 L{xm},14 L{xl},9 Z" class="oob"/>',
                      "reading between the voltage bands"))
    lx = ML
    for shape, label in items:
        o.append(shape.format(x=lx, x2=lx + 22, xm=lx + 11, xr=lx + 15, xl=lx + 7, s0=lx,
                              s1=lx + 7, s2=lx + 15, s3=lx + 22)
                 + f'<text x="{lx + 26}" y="12.5" class="lg">{esc(label)}</text>')
        lx += 40 + 6.6 * len(label)
    o.append("</svg>")
    return "".join(o)


def measured_series(cp: CpView, t0: float) -> dict[str, list[Line]]:
    """The test system's meter as plot lines: ``{"measured_voltage": [Line], "measured_current":
    [Line, …]}`` with (s since ``t0``, value) points — the measured voltage (V) and current (A)
    of the readings that carry them (``MeasuredVoltage_V`` / ``MeasuredCurrent_A``), and, on the
    current panel, the current the PWM duty cycle allows (A, IEC 61851-1 Table A.8, as the
    readings give it; a break where they give none: no PWM, or 5 %). Empty without such
    readings."""
    out: dict[str, list[Line]] = {}
    volts = [(x.time - t0, x.present_voltage_V, x.source) for x in cp.samples
             if x.present_voltage_V is not None]
    amps = [(x.time - t0, x.present_current_A, x.source) for x in cp.samples
            if x.present_current_A is not None]
    if volts:
        out["measured_voltage"] = [Line("measured", f"voltage measured by {volts[0][2]}",
                                        [(t, v) for t, v, _ in volts])]
    if amps:
        lines = [Line("measured", f"current measured by {amps[0][2]}", [(t, v) for t, v, _ in amps])]
        allowed = [(x.time - t0, x.pwm_current_A) for x in cp.duty()]
        if any(v is not None for _, v in allowed):
            lines.append(Line("evse_max", "current the PWM duty cycle allows", allowed))
        out["measured_current"] = lines
    return out


#: Panels of the test system's meter: (id, title, unit).
MEASURED_PANELS = [("measured_voltage", "Measured voltage", "V"),
                   ("measured_current", "Measured current", "A")]


def session_plots(session, t0: float, markers: list[dict], cp: CpView | None = None) -> list[dict]:
    """``[{"id", "title", "svg"}]``: the session's panels (voltage, current, power, SoC) — or,
    without V2G values, the test system's measured voltage and current — then the CP lane
    when the session has CP readings, all over one time range (s since ``t0``, the union of
    the plotted values' and the CP readings' times), then the PreCharge zoom when the session
    has PreCharge with voltages. ``markers``: the findings (:func:`svg_panel`); ``cp``: the
    session's :class:`~ccs_analyzer.analyzer.views.control_pilot.CpView` (built from its
    events when None)."""
    series = session_series(session, t0)
    if cp is None:
        cp = build_cp_view(session.events)
    measured = measured_series(cp, t0) if not series else {}
    ts = [t for group in (series, measured) for lines in group.values() for ln in lines
          for t, _ in ln.points]
    if cp.present:
        ts += [x.time - t0 for x in cp.samples]
    if not ts:
        return []
    lo, hi = min(ts), max(ts)
    pad = max(0.5, (hi - lo) * 0.02)
    rng = (lo - pad, hi + pad)
    out = []
    for pid, title, unit, _roles in PANELS:
        if pid in series:
            out.append({"id": pid, "title": title,
                        "svg": svg_panel(title, unit, series[pid], rng, markers, panel_id=pid)})
    for pid, title, unit in MEASURED_PANELS:
        if pid in measured:
            out.append({"id": pid, "title": title + " (test system)",
                        "svg": svg_panel(title, unit, measured[pid], rng, markers, panel_id=pid)})
    if cp.present:
        out.append({"id": "cp", "title": "Control pilot (IEC 61851-1)",
                    "svg": svg_cp_lane(cp, t0, rng, markers, end=hi)})
    win = precharge_window(session, t0)
    volts = [ln for ln in series.get("voltage", []) if ln.role in ("target", "present")]
    if win is not None and volts and any(win[0] <= t <= win[1] for ln in volts for t, _ in ln.points):
        out.append({"id": "precharge", "title": "PreCharge (zoom)",
                    "svg": svg_panel("PreCharge voltage", "V", volts, win, markers,
                                     panel_id="precharge", step_to_end=False)})
    return out
