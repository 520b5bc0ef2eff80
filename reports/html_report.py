"""report.html: one self-contained page (no network, no CDN) for one capture.

Everything that came from the capture is escaped by jinja2's autoescaping (a capture is
untrusted input); plots are static SVG built here from numbers only. The page's own inline
style and script are allowed by their SHA-256 hashes in a Content-Security-Policy that
forbids everything else (``default-src 'none'``).
"""
from __future__ import annotations

import base64
import hashlib
import html
import os

import jinja2

from .json_report import report_dict

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("ccs_analyzer.reports", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    trim_blocks=True, lstrip_blocks=True,
)

PLOT_SERIES = [
    ("EVTargetVoltage_V", "EV target voltage", "V", "#1f77b4", "4 3"),
    ("EVSEPresentVoltage_V", "EVSE present voltage", "V", "#1f77b4", ""),
    ("EVTargetCurrent_A", "EV target current", "A", "#d62728", "4 3"),
    ("EVSEPresentCurrent_A", "EVSE present current", "A", "#d62728", ""),
]


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _group_sequence(events) -> list[dict]:
    """Message sequence rows with loops collapsed: consecutive events of the same message
    (Req/Res pairs of one kind, repeated SLAC messages) become one row with count, frames
    and duration."""
    rows: list[dict] = []
    for e in events:
        if e.layer not in ("slac", "sdp", "v2gtp", "tcp", "tls"):
            continue
        if e.layer == "tcp" and e.name not in ("SYN", "SYN-ACK", "FIN", "RST"):
            continue
        if e.layer == "slac" and e.protocol != "SLAC":
            continue
        base = e.name[:-3] if e.name.endswith(("Req", "Res")) else e.name.rsplit(".", 1)[0]
        last = rows[-1] if rows else None
        if last is not None and last["base"] == base and last["layer"] == e.layer:
            last["count"] += 1
            last["last_frame"] = e.frame
            last["end"] = e.time
            last["errors"] += 1 if e.error else 0
            last["names"].setdefault(e.name, 0)
            last["names"][e.name] += 1
            continue
        rows.append({"base": base, "layer": e.layer, "name": e.name, "direction": e.direction,
                     "count": 1, "first_frame": e.frame, "last_frame": e.frame, "start": e.time,
                     "end": e.time, "errors": 1 if e.error else 0, "names": {e.name: 1},
                     "error": e.error})
    for r in rows:
        r["duration_s"] = round(r["end"] - r["start"], 3)
        r["collapsed"] = r["count"] > 2
    return rows


def _svg_plot(rows: list[dict], findings_t: list[float], width=860, height=260) -> str | None:
    """A static SVG of voltage (left axis) and current (right axis) over session time."""
    series = []
    for key, label, unit, color, dash in PLOT_SERIES:
        pts = [(r["t_s"], r[key]) for r in rows if r.get(key) is not None and r.get("t_s") is not None]
        if pts:
            series.append((key, label, unit, color, dash, pts))
    if not series:
        return None
    tmax = max(p[0] for s in series for p in s[5]) or 1.0
    vmax = max([p[1] for s in series if s[2] == "V" for p in s[5]] or [1.0]) or 1.0
    amax = max([p[1] for s in series if s[2] == "A" for p in s[5]] or [1.0]) or 1.0
    ml, mr, mt, mb = 50, 50, 10, 30
    pw, ph = width - ml - mr, height - mt - mb

    def x(t):
        return ml + pw * t / tmax

    def y(v, vm):
        return mt + ph - ph * max(v, 0) / vm

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'class="plot" role="img" aria-label="voltage and current over time">',
             f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
    for i in range(5):
        yy = mt + ph * i / 4
        parts.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{ml - 4}" y="{yy + 4:.1f}" text-anchor="end" class="ax">'
                     f'{vmax * (4 - i) / 4:.0f} V</text>')
        parts.append(f'<text x="{ml + pw + 4}" y="{yy + 4:.1f}" class="ax">{amax * (4 - i) / 4:.0f} A</text>')
    for i in range(6):
        xx = ml + pw * i / 5
        parts.append(f'<text x="{xx:.1f}" y="{height - 10}" text-anchor="middle" class="ax">'
                     f'{tmax * i / 5:.0f} s</text>')
    for t in findings_t:
        if 0 <= t <= tmax:
            parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{mt}" y2="{mt + ph}" '
                         'stroke="#e67e22" stroke-width="2"><title>finding</title></line>')
    for key, label, unit, color, dash, pts in series:
        vm = vmax if unit == "V" else amax
        if len(pts) > 2000:          # keep the page light: thin long loops
            step = len(pts) // 2000 + 1
            pts = pts[::step] + [pts[-1]]
        d = " ".join(f"{x(t):.1f},{y(v, vm):.1f}" for t, v in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash_attr} '
                     f'points="{d}"><title>{html.escape(label)} ({unit})</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(analysis) -> str:
    """The report page as a string."""
    from ccs_analyzer.analyzer.physical import event_facts

    rep = report_dict(analysis)
    sessions = []
    by_id = {f["id"]: f for f in rep["findings"]}
    for s, summ in zip(analysis.sessions, rep["sessions"]):
        t0 = s.events[0].time if s.events else 0.0
        rows = [dict(event_facts(e), t_s=e.time - t0) for e in s.events
                if e.layer == "v2gtp" and e.message is not None]
        ftimes = [by_id[fid]["time"] - t0 for fid in summ["findings"]
                  if by_id[fid]["time"] is not None]
        sessions.append({"summary": summ, "sequence": _group_sequence(s.events),
                         "plot": _svg_plot(rows, ftimes),
                         "findings": [by_id[fid] for fid in summ["findings"]]})
    css = _ENV.get_template("report.css").render()
    js = _ENV.get_template("report.js").render()
    csp = (f"default-src 'none'; style-src {_csp_hash(css)}; script-src {_csp_hash(js)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return _ENV.get_template("report.html.j2").render(
        rep=rep, sessions=sessions, css=css, js=js, csp=csp,
        capture_findings=[f for f in rep["findings"] if f["session"] is None])


def write_html_report(analysis, out_dir: str | os.PathLike) -> str:
    """Write ``report.html`` into ``out_dir``; return its path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(analysis))
    return path
