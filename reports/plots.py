"""Static SVG plots of a session's physical values over time, built here from numbers only.

Panels (each drawn when the session has data for it): voltage (EV target, EVSE present, EVSE
and EV maxima), current (same roles), power (EVSE present V × I and the maxima) and state of
charge, plus a zoom on PreCharge (EV target against EVSE present voltage). Findings are
vertical markers at their time, each a link to the finding (``#F3``).

Values come from :func:`ccs_analyzer.analyzer.physical.event_facts` (SI units). Long loops are
thinned per pixel column (first, minimum, maximum and last point of each column are kept, so
peaks survive) and flat runs are reduced to their ends: a 600 s loop of 12,000 messages gives
a few hundred points per line. Nothing from the capture but numbers reaches the SVG, and the
only text (finding ids and synopses in tooltips) is escaped.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from ccs_analyzer.analyzer.physical import event_facts

#: Line roles: (colour, dash pattern, step-wise).
ROLE_STYLE = {
    "target": ("#e07b00", "6 3", False),
    "present": ("#1f5fbf", "", False),
    "evse_max": ("#6b6b6b", "2 3", True),
    "ev_max": ("#9b3fbf", "2 3", True),
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
    role: str
    label: str
    points: list[tuple[float, float]] = field(default_factory=list)


def session_series(session, t0: float) -> dict[str, list[Line]]:
    """panel id → lines with their (t_s, value) points, from the session's decoded V2G
    messages (``t_s``: seconds since ``t0``)."""
    wanted = {}
    for pid, _title, _unit, roles in PANELS:
        for role, label, keys in roles:
            for k in keys:
                wanted.setdefault(k, []).append((pid, role, label))
    acc: dict[tuple[str, str], Line] = {}
    chosen: dict[tuple[str, str], str] = {}
    plotted: dict[int, list] = {}      # id(facts) → [(key, value, targets)]: facts are shared
    for e in session.events:
        if e.layer != "v2gtp" or e.message is None:
            continue
        f = event_facts(e)
        if not f:
            continue
        items = plotted.get(id(f))
        if items is None:
            items = plotted[id(f)] = [
                (k, float(v), wanted[k]) for k, v in f.items()
                if k in wanted and not isinstance(v, bool) and isinstance(v, (int, float))
                and math.isfinite(v)]
        if not items:
            continue
        t = e.time - t0
        for k, v, targets in items:
            for pid, role, label in targets:
                key = (pid, role)
                prev = chosen.get(key)
                if prev is None:
                    chosen[key] = k
                elif prev != k:
                    continue          # one key per role: the first seen wins
                line = acc.get(key)
                if line is None:
                    line = acc[key] = Line(role, label)
                line.points.append((t, v))
    out: dict[str, list[Line]] = {}
    for pid, _title, _unit, roles in PANELS:
        lines = [acc[(pid, r)] for r, _l, _k in roles if (pid, r) in acc]
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
    ``lo`` and ``hi``, then flat runs reduced to their ends (:func:`drop_flat`)."""
    pts = [p for p in points if lo <= p[0] <= hi]
    if len(pts) > columns * 2:
        width = (hi - lo) / columns or 1.0
        out: list[tuple[float, float]] = []
        bucket: list[tuple[float, float]] = []
        cur = None
        for p in pts:
            b = int((p[0] - lo) / width)
            if b != cur and bucket:
                out.extend(_bucket_keep(bucket))
                bucket = []
            cur = b
            bucket.append(p)
        if bucket:
            out.extend(_bucket_keep(bucket))
        pts = out
    return drop_flat(pts)


def drop_flat(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points inside a run of equal values removed (the run's ends kept)."""
    if len(pts) <= 2:
        return pts
    flat = [pts[0]]
    for i in range(1, len(pts) - 1):
        if not (pts[i][1] == pts[i - 1][1] == pts[i + 1][1]):
            flat.append(pts[i])
    flat.append(pts[-1])
    return flat


def _bucket_keep(bucket):
    if len(bucket) <= 4:
        return bucket
    lo = min(bucket, key=lambda p: p[1])
    hi = max(bucket, key=lambda p: p[1])
    keep = {id(bucket[0]): bucket[0], id(lo): lo, id(hi): hi, id(bucket[-1]): bucket[-1]}
    return sorted(keep.values(), key=lambda p: p[0])


def _segments(points, gap_s: float):
    """Split a line where consecutive points are further apart than ``gap_s`` (a pause)."""
    seg = []
    for p in points:
        if seg and p[0] - seg[-1][0] > gap_s:
            yield seg
            seg = []
        seg.append(p)
    if seg:
        yield seg


# ---------------------------------------------------------------------------- SVG
def svg_panel(title: str, unit: str, lines: list[Line], t_range: tuple[float, float],
              markers: list[dict], *, panel_id: str, step_to_end: bool = True) -> str:
    """One panel as an SVG string. ``markers``: ``{"t": s, "id": "F3", "severity", "text"}``."""
    lo, hi = t_range
    if hi <= lo:
        hi = lo + 1.0
    pw, ph = WIDTH - ML - MR, HEIGHT - MT - MB
    vals = [v for ln in lines for t, v in ln.points if lo <= t <= hi]
    if not vals:
        vals = [v for ln in lines for _t, v in ln.points]
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
        pts = sorted(ln.points)
        if step and pts:
            # a limit holds until the next message says otherwise: draw it as steps
            ext = pts + ([(hi, pts[-1][1])] if step_to_end and pts[-1][0] < hi else [])
            pts = [p for p in ext if lo <= p[0] <= hi] or ext[-1:]
            before = [p for p in ext if p[0] < lo]
            if before:
                pts = [(lo, before[-1][1])] + pts
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for seg in _segments(pts, gap if not step else float("inf")):
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
    for m in markers:
        t = m["t"]
        if t is None or not (lo <= t <= hi):
            continue
        x = X(t)
        fid = esc(m["id"])
        o.append(f'<a href="#{fid}" class="fmk {esc(m["severity"])}" data-finding="{fid}">'
                 f'<title>{fid} {esc(m["text"])}</title>'
                 f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MT}" y2="{MT + ph}"/>'
                 f'<path d="M{x - 5:.1f},{MT - 8} L{x + 5:.1f},{MT - 8} L{x:.1f},{MT} Z"/></a>')
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


def session_plots(session, t0: float, markers: list[dict]) -> list[dict]:
    """``[{"id", "title", "svg"}]``: the session's panels over its V2G time range, then the
    PreCharge zoom when the session has PreCharge with voltages."""
    series = session_series(session, t0)
    if not series:
        return []
    ts = [t for lines in series.values() for ln in lines for t, _ in ln.points]
    lo, hi = min(ts), max(ts)
    pad = max(0.5, (hi - lo) * 0.02)
    rng = (lo - pad, hi + pad)
    out = []
    for pid, title, unit, _roles in PANELS:
        if pid in series:
            out.append({"id": pid, "title": title,
                        "svg": svg_panel(title, unit, series[pid], rng, markers, panel_id=pid)})
    win = precharge_window(session, t0)
    volts = [ln for ln in series.get("voltage", []) if ln.role in ("target", "present")]
    if win is not None and volts and any(win[0] <= t <= win[1] for ln in volts for t, _ in ln.points):
        out.append({"id": "precharge", "title": "PreCharge (zoom)",
                    "svg": svg_panel("PreCharge voltage", "V", volts, win, markers,
                                     panel_id="precharge", step_to_end=False)})
    return out
