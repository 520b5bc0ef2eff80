"""report.html: one self-contained page (no network, no CDN) for one capture.

What it shows (docs/report.md): a header with the capture, its SHA-256, the analyzer, rule
pack and profile, the verdict, the score and the findings by severity; per session its
identities, choices, time span, outcome, phase reached, root cause, energy and peak power;
plots of voltage / current / power / SoC over time and a PreCharge zoom (static SVG, see
:mod:`.plots`) with the findings marked, and the control-pilot lane (IEC 61851-1 state, PWM
duty cycle, contactor) when the session has CP readings; a "Control pilot" table (the state
sequence with times and frames, the duty cycles and the current each allows, the cable's PP
rating, the contactor's closings and openings: :func:`pilot_facts`); a two-lane message
sequence chart with loops collapsed and the CP transitions on a lane of their own
(:mod:`.sequence`); and the findings table — filters by severity, category,
culprit and session, consequences under their root cause, each finding expanding to its
rule's explanation, requirement, measured value against the limit, evidence, evidence frames
and their decoded payloads with the values it judges marked (its ``values``, not words
read out of its text). Every frame number is a handle
for Wireshark (a display filter and the command line, copyable).

Safety: a capture is untrusted input. Everything from it is escaped by jinja2's autoescaping
(text and double-quoted attributes), the SVG is built from numbers and escaped labels, and
the data the page's script reads (frames, decoded payloads) is a ``<script
type="application/json">`` block in which ``<``, ``>``, ``&`` and the JS line separators are
``\\uXXXX`` escapes, so it can neither end the block nor open a comment; the script inserts
it with ``textContent`` only. A Content-Security-Policy (``default-src 'none'``) allows only
the page's own inline style and script, by their SHA-256 hashes.

Many sessions: a capture with more than :data:`PAGED_OVER_SESSIONS` sessions (a day at a busy
charger, streamed in segments: analyzer/segments.py) gets an index page — the sessions
table, the capture's own findings, the capture facts — and one page per session under
``sessions/`` (``sessions/S12.html``: that session's findings, plots, pilot and sequence
chart), each rendered from one session read back at a time: every page is offline and
small, and writing them needs the memory of one session.

Size and speed: payloads are embedded only for the messages shown one by one in the chart,
a sample of every loop and the findings' evidence frames (at most :data:`MAX_TREES`), long
strings in them are shortened, and plots are thinned per pixel column.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import inspect
import json
import math
import os
import re
import shlex
import urllib.parse

import jinja2
import markupsafe

from ccs_analyzer.analyzer.control_pilot import STATE_MEANING, is_digital
from ccs_analyzer.analyzer.views.certificates import certificate_problem
from ccs_analyzer.analyzer.views.control_pilot import CpView, build_cp_view, cp_view
from ccs_analyzer.analyzer.views.signatures import signature_result
from ccs_analyzer.dissectors.oui import vendor

from .json_report import _clean, report_dict
from .plots import session_plots
from .sequence import pilot_label, sequence_rows

def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (compiling the report template costs ~0.15 s,
    as much as analysing a small capture): ``$XDG_CACHE_HOME/ccs-analyzer/jinja2`` or
    ``~/.cache/…``; None (compile every time) when that folder cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "ccs-analyzer", "jinja2")
    try:
        os.makedirs(path, exist_ok=True)
        if not os.access(path, os.W_OK):
            return None
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(path)


class _Environment(jinja2.Environment):
    """jinja2's environment, with ``x.name`` on a plain dict (the context is plain data)
    looked up as the key first. jinja2 tries the attribute first and the key after the
    AttributeError; a plain dict's only attributes are its methods, so for any other name
    the answer is the same, without raising an exception per lookup (the template reads
    ~170k fields while writing the pages of a large capture)."""

    _DICT_ATTRS = frozenset(dir(dict))

    def getattr(self, obj, attribute):
        if type(obj) is dict and attribute not in self._DICT_ATTRS:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


_ENV = _Environment(
    loader=jinja2.PackageLoader("ccs_analyzer.reports", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    trim_blocks=True, lstrip_blocks=True, bytecode_cache=_bytecode_cache(),
)

#: Decoded payloads embedded in one page at most (messages shown one by one, loop samples,
#: evidence frames); the rest is a Wireshark filter away.
MAX_TREES = 1500
#: Evidence frames of one finding whose payloads are shown.
PAYLOADS_PER_FINDING = 6
#: Longest string kept in an embedded payload (certificates, signatures are longer).
MAX_STRING = 2048
#: Evidence values longer than this (as JSON) are shortened in the findings table.
MAX_EVIDENCE_TEXT = 1500
#: File names of an annotated capture next to the report (``ccs-analyzer annotate``).
ANNOTATED_NAMES = ("annotated.pcapng",)

SEVERITIES = ("error", "warning", "info")
_DOC_SECTIONS = ("What it checks", "Why it matters", "Fix", "Source", "Example", "Use instead",
                 "Limits", "Notes", "Parameters")


def csp_hash(text: str) -> str:
    """``'sha256-…'`` source expression of an inline style or script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def json_for_script(obj) -> str:
    """JSON to place inside ``<script type="application/json">``: ``<``, ``>`` and ``&``
    become ``\\u003c`` … so the text can neither close the element (``</script>``) nor open
    an HTML comment (``<!--``); U+2028/U+2029 are escaped too. ``JSON.parse`` reads it back
    unchanged."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return (s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def utc(t: float | None) -> str:
    """Epoch seconds → ``2026-01-01 00:00:01.234 UTC``; a time no calendar can show (a
    damaged capture's timestamp) as the number of seconds."""
    if t is None:
        return "-"
    try:
        d = _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{t:.6f} s (epoch; not a calendar date)"
    return d.strftime("%Y-%m-%d %H:%M:%S.") + f"{d.microsecond // 1000:03d} UTC"


def fmt_num(v, unit: str = "") -> str:
    """A measured value or limit for people: numbers rounded sensibly, lists joined."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        s = f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.1f}".rstrip("0").rstrip(".")
    elif isinstance(v, (int, str)):
        s = str(v)
    else:
        s = json.dumps(v, ensure_ascii=False, default=str)
        if len(s) > 200:
            s = s[:200] + "…"
    return f"{s} {unit}".strip() if unit else s


def fmt_duration(s) -> str:
    """A duration in seconds for people: ``"4.2 s"``, ``"2 min 05.0 s"``, ``"1 h 02 min 05 s"``;
    ``"-"`` for None."""
    if s is None:
        return "-"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(s, 60)
    if m < 60:
        return f"{int(m)} min {sec:04.1f} s"
    h, m = divmod(m, 60)
    return f"{int(h)} h {int(m):02d} min {sec:02.0f} s"


_LITERAL_RE = re.compile(r"``(.+?)``")


def doc_text(text: str) -> "markupsafe.Markup":
    """A rule docstring's prose as HTML: escaped, with ``literal`` spans as <code>."""
    esc = str(markupsafe.escape(text))
    return markupsafe.Markup(_LITERAL_RE.sub(r"<code>\1</code>", esc))


_ENV.filters["num"] = fmt_num
_ENV.filters["doc"] = doc_text
_ENV.filters["dur"] = fmt_duration
_ENV.filters["utc"] = utc


# ---------------------------------------------------------------------------- page fragments
# The page's most repeated pieces (a message chart has thousands of rows), built here rather
# than by template macros, which cost ten times as much per call. Every value is escaped
# (markupsafe.escape, as the template's autoescaping does).
_esc = markupsafe.escape


def frame_button(n) -> markupsafe.Markup:
    """A frame number as the button that opens the frame panel (Wireshark filter, command,
    decoded payload): the template's ``fr(n)``."""
    n = _esc(n)
    return markupsafe.Markup(f'<button type="button" class="fr" data-frame="{n}" '
                             f'title="frame {n}: Wireshark filter, command, payload">{n}</button>')


def finding_links(ids, sev_of: dict) -> markupsafe.Markup:
    """Links to the findings ``ids`` (the first six, then "+N"), coloured by their severity
    (``sev_of``: finding id → severity): the template's ``fmarks(ids)``."""
    o = [f'<a class="fmark" data-sev="{_esc(sev_of.get(i, ""))}" href="#{_esc(i)}">{_esc(i)}</a>'
         for i in ids[:6]]
    if len(ids) > 6:
        o.append(f'<span class="more">+{len(ids) - 6}</span>')
    return markupsafe.Markup("".join(o))


def message_row(r: dict, sev_of: dict) -> markupsafe.Markup:
    """One message of the sequence chart (a ``msg`` row of :func:`.sequence.sequence_rows`):
    time (s), frame, the arrow between the lanes with the message's name, response code and
    error, and the findings citing its frame: the template's ``msg_row(r)``."""
    frame = _esc(r["frame"])
    rc = (f' <span class="rc{" bad" if r["rc_bad"] else ""}">{_esc(r["rc"])}</span>'
          if r["rc"] else "")
    err = f' <span class="err">{_esc(r["error"])}</span>' if r["error"] else ""
    return markupsafe.Markup(
        f'<div class="mrow msg{" bad" if r["rc_bad"] or r["error"] else ""}'
        f'{" cited" if r["findings"] else ""}" data-frame="{frame}">\n'
        f'  <span class="t">{r["t"]:.3f}</span>\n'
        f'  <span class="f">{frame_button(r["frame"])}</span>\n'
        f'  <div class="mid"><div class="arrow {"ltr" if r["dir"] == "EV->EVSE" else "rtl"}">'
        f'<span class="lbl"><button type="button" class="mname" data-frame="{frame}">'
        f'{_esc(r["name"])}</button>{rc}{err}</span></div></div>\n'
        f'  <span class="fm">{finding_links(r["findings"], sev_of)}</span>\n'
        f'</div>\n')


@jinja2.pass_context
def _fmarks(ctx, ids) -> markupsafe.Markup:
    return finding_links(ids, ctx["sev_of"])


@jinja2.pass_context
def _msg_row(ctx, r) -> markupsafe.Markup:
    return message_row(r, ctx["sev_of"])


_ENV.globals.update(fr=frame_button, fmarks=_fmarks, msg_row=_msg_row)


# ---------------------------------------------------------------------------- rule pages
def rule_docs(codes) -> dict[str, dict]:
    """code → ``{"title", "summary", "sections": [(name, text)], "params": {…}}`` from the
    rules' docstrings (``ccs-analyzer rules explain CODE``)."""
    try:
        from ccs_analyzer.rules import all_rules
        classes = {r.code: r for r in all_rules()}
    except Exception:  # pragma: no cover - a broken plug-in must not stop the report
        classes = {}
    out = {}
    for code in codes:
        cls = classes.get(code)
        if cls is None:
            continue
        doc = inspect.cleandoc(cls.__doc__ or "")
        out[code] = dict(parse_doc(doc), title=cls.title, params=dict(cls.params),
                         protocols=list(cls.protocols))
    return out


_SECTION_RE = re.compile(r"^(" + "|".join(re.escape(s) for s in _DOC_SECTIONS) + r")([^:\n]{0,40}):\s*(.*)$")


def parse_doc(doc: str) -> dict:
    """A rule docstring → ``{"summary", "sections": [(name, text)]}`` (section heads such as
    "What it checks:", "Fix (SECC):" start a line; the Example's trace keeps its lines)."""
    lines = doc.splitlines()
    summary = []
    sections: list[list] = []
    for line in lines:
        m = _SECTION_RE.match(line.strip())
        if m:
            sections.append([m.group(1) + m.group(2), m.group(3)])
        elif sections and sections[-1][0] == "Example":
            sections[-1][1] += "\n" + (line[4:] if line.startswith("    ") else line.strip())
        elif sections:
            sections[-1][1] += ("\n" if not line.strip() else " ") + line.strip()
        else:
            summary.append(line.strip())
    return {"summary": " ".join(x for x in summary if x),
            "sections": [(n, t.strip()) for n, t in sections]}


# ---------------------------------------------------------------------------- payloads
def _page_value(x, limit: int = MAX_STRING):
    """A value of a decoded tree as the page embeds it, in one walk: JSON-safe as
    :func:`json_report._clean` makes it (bytes → hex, NaN and ±inf → None, tuples → lists,
    keys as strings), strings (a hex string too) longer than ``limit`` characters shortened
    to ``limit`` with their length said. The common leaves (str, int, bool) are told by
    their exact type."""
    t = type(x)
    if t is str:
        return x if len(x) <= limit else x[:limit] + f"… ({len(x)} characters)"
    if t is int or t is bool:
        return x
    if isinstance(x, dict):
        return {str(k): _page_value(v, limit) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_page_value(v, limit) for v in x]
    if isinstance(x, (bytes, bytearray)):
        return _page_value(x.hex(), limit)
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, str):
        return x if len(x) <= limit else x[:limit] + f"… ({len(x)} characters)"
    return x


def _page_tree(message, memo: dict | None):
    """A decoded tree as the page embeds it (:func:`_page_value`). ``memo`` (id(tree) →
    (tree, page tree)) keeps it per tree: identical payloads share one read-only tree
    (dissectors/v2g.py), so their messages are converted once and share one (equally
    read-only) page tree."""
    if memo is None:
        return _page_value(message)
    hit = memo.get(id(message))
    if hit is None:
        hit = memo[id(message)] = (message, _page_value(message))
    return hit[1]


def _event_meta(e, t0: float | None, tree: bool, hex_: bool, trees: dict | None = None) -> dict:
    """What the page's script knows of an event (its frame panel): name, layer, direction,
    times (epoch s, and ``t``: s since ``t0``), protocol, error, namespace, the decoded tree
    when ``tree`` (:func:`_page_tree`, ``trees`` its memo), the payload's hex when ``hex_``
    (at most 2048 bytes), the certificates and the signature check it carries."""
    d = {"name": e.name, "layer": e.layer, "dir": e.direction, "time": e.time,
         "t": round(e.time - t0, 3) if t0 is not None else None, "proto": e.protocol}
    if e.error:
        d["error"] = e.error
    if e.namespace:
        d["ns"] = e.namespace
    if tree and e.message is not None:
        d["tree"] = _page_tree(e.message, trees)
    if hex_ and e.payload:
        d["hex"] = e.payload[:2048].hex() + ("…" if len(e.payload) > 2048 else "")
    if e.first_frame is not None and e.first_frame != e.frame:
        d["first_frame"] = e.first_frame
    certs = (e.info or {}).get("certificates")
    if certs:
        d["certs"] = _certificate_rows(certs)
    sig = (e.info or {}).get("signature")
    if sig:
        d["signature"] = signature_line(sig)
    return d


def signature_line(sig: dict) -> dict:
    """The check of a signed message (dissectors/v2g_signatures.py ``info["signature"]``) as
    the page prints it beside the payload: ``{"ok": True / False / None, "text"}`` — the
    SignatureValue's result with its signer, then each Reference's digest."""
    signer = sig.get("signer") or {}
    who = (f"{signer.get('role')} certificate {signer.get('subject')} (frame {signer.get('frame')})"
           if signer else "")
    refs = "; ".join(f"{r.get('uri')} {r.get('element') or '(no element)'}: digest {r.get('status')}"
                     + (f" ({r['error']})" if r.get("error") else "")
                     for r in sig.get("references") or ())
    if sig.get("valid") is True:
        head = f"signature valid, signed by the {who}"
    elif sig.get("valid") is False:
        head = f"signature INVALID: {sig.get('reason')}" + (f" — signer: the {who}" if who else "")
    else:
        head = f"signature not checked: {sig.get('reason')}"
    return {"ok": signature_result(sig),
            "text": head + (f". References: {refs}" if refs else "")}


def _certificate_rows(certs: list[dict]) -> list[dict]:
    """The X.509 chains a V2G message carries (dissectors/v2g_certificates.py), as the page
    shows them: per chain its element and one row per certificate (#, subject, issuer,
    notBefore, notAfter, key, problem)."""
    out = []
    for item in certs[:8]:
        rows = []
        for c in item.get("certificates") or ():
            key = " ".join(str(x) for x in (c.get("key_type"), c.get("key_curve")) if x)
            rows.append([c.get("index", len(rows)), c.get("subject_cn") or c.get("subject") or "",
                         c.get("issuer_cn") or c.get("issuer") or "", c.get("not_before") or "",
                         c.get("not_after") or "", key, certificate_problem(c)])
        out.append({"element": item.get("element", ""), "rows": rows,
                    "not_described": item.get("not_described", 0),
                    "trust": trust_text(item.get("trust"))})
    return out


def trust_text(t: dict | None) -> str:
    """A chain's anchoring (dissectors/x509trust.py) as the certificates table's caption
    says it."""
    if not t:
        return ""
    if t.get("status") == "anchored":
        return f"anchored in the trust anchor {t.get('anchor')}"
    if t.get("status") == "not anchored":
        return f"NOT anchored in any given trust anchor: {t.get('reason')}"
    return "unanchored: no trust anchors given (--trust)"


def _count_under(fid: str, kids: dict) -> int:
    """How many findings hang under ``fid`` (its consequences, theirs, …)."""
    n, stack, seen = 0, list(kids.get(fid, [])), set()
    while stack:
        k = stack.pop()
        if k["id"] in seen:
            continue
        seen.add(k["id"])
        n += 1
        stack.extend(kids.get(k["id"], []))
    return n


def finding_marks(f: dict) -> dict:
    """What the page marks in the payloads of a finding's evidence frames: ``{"values": …}``,
    exactly the values the finding judges (its ``values``, rules/base.py ``judged``). The
    page marks each at its frame, in the message and element its path names — as the actual
    value when it equals ``actual``, with its ``expected`` value or ``limit`` beside it — and
    nothing else: no words are read out of the synopsis or the evidence (reports decide
    nothing; a finding that names no values marks none)."""
    return {"values": list(f.get("values") or [])}


# ---------------------------------------------------------------------------- control pilot
#: The message each CP reporter sends (analyzer/control_pilot.py), for the page.
PILOT_MESSAGE = {"ST/IoTecha": "VS_CP_STATE.IND", "SPiDCOM": "VS_CP_STATE.IND",
                 "dSPACE SCS": "MS_SCS_DIAG.IND"}
#: Rows of the transitions table shown at most (a flapping pilot: the rest is counted).
PILOT_ROWS = 200
#: Duty cycles, readings between the bands and contactor changes listed at most.
PILOT_LIST = 24


def _session_cp(session, analysis) -> CpView:
    """The session's CP view: the analysis' shared one (``cp_view``) when the analysis keeps
    views, else built from the session's events."""
    if hasattr(analysis, "view"):
        return cp_view(session, analysis)
    return build_cp_view(session.events)


def pilot_facts(cp: CpView, t0: float) -> dict | None:
    """What the "Control pilot" table of a session shows, from its CP view (read, not judged);
    None without CP readings. Times ``t`` are seconds since ``t0`` (epoch s).

    ``sequence``: the settled states in order (``["A1", "B1", "B2", …]``); ``transitions``
    (at most :data:`PILOT_ROWS`; ``more``: how many were left out): ``{"t", "frame", "label"
    ("B1 → B2"), "after", "letter", "meaning", "voltage_V" (V), "duty_pct" (%), "frequency_Hz",
    "current_A" (A the duty cycle allows), "digital" (5 %: ISO 15118 / DIN 70121 sets the
    current), "source"}``; ``sources``: ``{"source", "message", "readings", "macs",
    "primary"}``; ``duty``: the PWM duty cycles seen (PWM on, grouped by whole per cent, first
    reading each): ``{"duty_pct", "current_A", "digital", "t", "frame", "readings"}``;
    ``pp``: ``{"min_ohm", "max_ohm", "ratings_A", "frame"}`` or None; ``contactor``: its
    changes ``{"state" ("open"/"closed"), "t", "frame", "first"}`` and ``closings`` /
    ``openings`` counts; ``out_of_band``: ``{"t", "frame", "voltage_V", "source"}`` (at most
    :data:`PILOT_LIST`, ``out_of_band_n`` all of them).
    """
    if not cp.samples:
        return None
    sources: dict[str, dict] = {}
    for x in cp.samples:
        d = sources.setdefault(x.source, {"source": x.source, "message": PILOT_MESSAGE.get(x.source, ""),
                                          "readings": 0, "macs": [], "primary": x.source == cp.primary})
        d["readings"] += 1
        if x.src and x.src not in d["macs"]:
            d["macs"].append(x.src)
    trs = []
    for tr in cp.transitions[:PILOT_ROWS]:
        x = tr.sample
        trs.append({"t": tr.time - t0, "frame": tr.frame, "label": pilot_label(tr.before, tr.after),
                    "after": tr.after, "letter": tr.after[0],
                    "meaning": STATE_MEANING.get(tr.after[0], ""), "voltage_V": x.voltage_V,
                    "duty_pct": x.duty_pct if x.pwm else None, "frequency_Hz": x.frequency_Hz,
                    "current_A": x.pwm_current_A, "digital": bool(x.pwm) and is_digital(x.duty_pct),
                    "source": x.source})
    duty: dict[int, dict] = {}
    for x in cp.duty():
        if not x.pwm:
            continue
        d = duty.get(round(x.duty_pct))
        if d is None:
            d = duty[round(x.duty_pct)] = {"duty_pct": x.duty_pct, "current_A": x.pwm_current_A,
                                           "digital": is_digital(x.duty_pct), "t": x.time - t0,
                                           "frame": x.frame, "readings": 0}
        d["readings"] += 1
    pps = [x for x in cp.samples if x.pp_resistance_ohm and x.pp_resistance_ohm > 0]
    pp = None
    if pps:
        ohms = [x.pp_resistance_ohm for x in pps]
        pp = {"min_ohm": min(ohms), "max_ohm": max(ohms), "frame": pps[0].frame,
              "ratings_A": sorted({x.cable_rating_A for x in pps if x.cable_rating_A is not None}),
              "unrated": any(x.cable_rating_A is None for x in pps)}
    changes = []
    for x in cp.contactor():
        if not changes or changes[-1]["state"] != x.contactor:
            changes.append({"state": x.contactor, "t": x.time - t0, "frame": x.frame,
                            "first": not changes})
    oob = [{"t": x.time - t0, "frame": x.frame, "voltage_V": x.voltage_V, "source": x.source}
           for x in cp.out_of_band]
    return {"sequence": [tr.after for tr in cp.transitions], "transitions": trs,
            "more": max(0, len(cp.transitions) - PILOT_ROWS), "primary": cp.primary,
            "sources": list(sources.values()),
            "duty": sorted(duty.values(), key=lambda d: d["frame"])[:PILOT_LIST],
            "pp": pp, "contactor": changes[:PILOT_LIST],
            "contactor_more": max(0, len(changes) - PILOT_LIST),
            "closings": sum(1 for c in changes if c["state"] == "closed" and not c["first"]),
            "openings": sum(1 for c in changes if c["state"] == "open" and not c["first"]),
            "out_of_band": oob[:PILOT_LIST], "out_of_band_n": len(oob)}


# ---------------------------------------------------------------------------- the page
def _wireshark(path: str, frame: int | None = None, frames=None, annotated: str | None = None) -> str:
    cmd = f"wireshark -r {shlex.quote(annotated or path)}"
    if frames and len(frames) > 1:
        cmd += " -Y " + shlex.quote("frame.number in {" + " ".join(map(str, frames)) + "}")
    if frame is not None:
        cmd += f" -g {int(frame)}"
    return cmd


def frame_filter(frames) -> str:
    """The Wireshark display filter of a set of frames."""
    frames = sorted(set(int(x) for x in frames))
    if len(frames) == 1:
        return f"frame.number == {frames[0]}"
    return "frame.number in {" + " ".join(map(str, frames)) + "}"


def _named_vendor(mac: str | None) -> str | None:
    """The vendor's name when Wireshark's manuf knows the address (not just its OUI)."""
    v = vendor(mac)
    return v if v and mac and not mac.lower().startswith(v[:8].lower()) else None


#: A capture with more sessions than this gets an index page and a page per session.
PAGED_OVER_SESSIONS = 25

#: Where the per-session pages go, beside report.html.
SESSION_PAGES = "sessions"


def build_context(analysis, rep: dict | None = None, annotated: str | None = None,
                  annotated_path: str | None = None, paged: bool = False,
                  index_href: str | None = None) -> dict:
    """Everything the template needs (a dict of plain data). ``paged``: the index page of a
    capture whose sessions have pages of their own (the sessions table links there; only
    the capture's own findings are listed); ``index_href``: on a session page, the link
    back to the index."""
    rep = rep or report_dict(analysis)
    if paged:
        return _index_context(analysis, rep, annotated, annotated_path)
    findings = rep["findings"]
    by_id = {f["id"]: f for f in findings}
    cap_path = rep["capture"].get("path") or rep["capture"]["file"]

    # frames cited by findings
    cited: dict[int, list[str]] = {}
    for f in findings:
        for fr in f["frames"]:
            cited.setdefault(fr, []).append(f["id"])

    # events by frame (session events carry the payloads)
    t0_of: dict[str, float] = {}
    ev_by_frame: dict[int, list] = {}
    session_of_frame: dict[int, str] = {}
    for s in analysis.sessions:
        t0_of[s.id] = s.events[0].time if s.events else 0.0
        for e in s.events:
            ev_by_frame.setdefault(e.frame, []).append(e)
            session_of_frame.setdefault(e.frame, s.id)
    for e in analysis.capture_events:
        ev_by_frame.setdefault(e.frame, []).append(e)

    frames_data: dict[int, list[dict]] = {}
    trees = 0
    page_trees: dict = {}               # id(tree) → (tree, as embedded): see _page_tree

    def want(frame: int, tree: bool = True, hex_: bool = False) -> None:
        nonlocal trees
        have = frames_data.get(frame)
        if have is not None and (not tree or all("tree" in d or d.get("no_tree") for d in have)):
            return
        evs = ev_by_frame.get(frame, [])
        t0 = t0_of.get(session_of_frame.get(frame, ""), None)
        give = tree and trees < MAX_TREES
        out = []
        for e in evs:
            d = _event_meta(e, t0, give, hex_, page_trees)
            if give and e.message is not None:
                trees += 1
            if e.message is None:
                d["no_tree"] = True
            out.append(d)
        frames_data[frame] = out

    # findings first: their evidence frames always get payloads
    views = []
    roots = [f for f in findings if not f.get("caused_by") or f["caused_by"] not in by_id]
    kids: dict[str, list[dict]] = {}
    for f in findings:
        if f.get("caused_by") in by_id:
            kids.setdefault(f["caused_by"], []).append(f)
    order = []
    seen: set = set()

    def add(f, depth):                 # a cause, then its consequences under it (recursively)
        if f["id"] in seen:
            return
        seen.add(f["id"])
        order.append((f, depth))
        for k in kids.get(f["id"], []):
            add(k, depth + 1)

    for r in roots:
        add(r, 0)
    marks = {}
    for f, depth in order:
        frs = list(f["frames"])
        shown = frs[:PAYLOADS_PER_FINDING - 1] + frs[-1:] if len(frs) > PAYLOADS_PER_FINDING else frs
        for fr in shown:
            want(fr, True, hex_=True)
        for fr in frs:
            want(fr, False)
        marks[f["id"]] = finding_marks(f)
        ev = f.get("evidence") or {}
        ev_rows = []
        for k, v in ev.items():
            text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
            if len(text) > MAX_EVIDENCE_TEXT:
                text = text[:MAX_EVIDENCE_TEXT] + f"… ({len(text)} characters)"
            ev_rows.append({"key": k, "text": text,
                            "cls": "expected" if k == "expected" else "actual" if k == "actual" else ""})
        views.append({
            "f": f, "depth": min(depth, 3), "consequences": [k["id"] for k in kids.get(f["id"], [])],
            "under": _count_under(f["id"], kids),
            "payload_frames": shown, "evidence_rows": ev_rows,
            "filter": frame_filter(frs) if frs else None,
            "cmd": _wireshark(cap_path, frs[0], frs) if frs else None,
            "cmd_annotated": (_wireshark(cap_path, frs[0], frs, annotated_path)
                              if frs and annotated_path else None),
        })

    sessions = []
    for s, summ in zip(analysis.sessions, rep["sessions"]):
        t0 = t0_of.get(s.id, 0.0)
        sf = [by_id[i] for i in summ["findings"] if i in by_id]
        markers = [{"t": (f["time"] - t0) if f["time"] is not None else None, "id": f["id"],
                    "severity": f["severity"], "text": f"{f['rule']}: {f['synopsis']}"} for f in sf]
        cp = _session_cp(s, analysis)
        rows = sequence_rows(s, t0, cited, cp)
        for r in rows:
            if r["kind"] in ("msg", "pilot"):
                want(r["frame"])
            elif r["kind"] == "loop":
                for m in r["sample"]:
                    if m["kind"] == "msg":
                        want(m["frame"])
            elif r["kind"] == "note":
                want(r["frame"], False)
        root = by_id.get(summ.get("root_cause") or "")
        chain = [by_id[i] for i in summ.get("cause_chain") or [] if i in by_id]
        summ = dict(summ, ev_vendor=_named_vendor(summ.get("ev_mac")),
                    evse_vendor=_named_vendor(summ.get("evse_mac")))
        sessions.append({"m": summ, "t0": t0, "rows": rows, "plots": session_plots(s, t0, markers, cp),
                         "pilot": pilot_facts(cp, t0), "basic": bool(getattr(s, "basic", False)),
                         "root": root, "chain": chain, "counts": {sev: sum(1 for f in sf if f["severity"] == sev)
                                                  for sev in SEVERITIES},
                         "n_findings": len(sf)})

    cats = sorted({f["category"] for f in findings})
    culprits = sorted({f["culprit"] for f in findings})
    data = {
        "capture": {"file": rep["capture"]["file"], "path": cap_path},
        "annotated": annotated_path,
        "cmd": {"open": _wireshark(cap_path), "annotated": _wireshark(cap_path, annotated=annotated_path)
                if annotated_path else None},
        "frames": {str(k): v for k, v in sorted(frames_data.items())},
        "marks": marks,
        "findings": {f["id"]: {"rule": f["rule"], "severity": f["severity"], "synopsis": f["synopsis"],
                               "frames": f["frames"]} for f in findings},
    }
    return {
        "rep": rep, "sessions": sessions, "findings": views,
        "sev_of": {f["id"]: f["severity"] for f in findings}, "categories": cats,
        "culprits": culprits, "docs": rule_docs(sorted({f["rule"] for f in findings})),
        "capture_findings": [f for f in findings if f["session"] is None],
        "annotated": annotated, "annotated_path": annotated_path,
        "cmd_open": data["cmd"]["open"], "cmd_annotated": data["cmd"]["annotated"],
        "data_json": json_for_script(data), "generated": utc(_dt.datetime.now(_dt.timezone.utc).timestamp()),
        "paged": False, "index_href": index_href,
    }


#: Sessions' summary fields the index's table shows.
_INDEX_FIELDS = ("id", "verdict", "goal", "conformance", "score", "protocol", "EVCCID", "ev_mac",
                 "EVSEID", "evse_mac", "start", "duration_s", "outcome", "phase_reached",
                 "explanation", "root_cause", "findings")
#: TCP connections the index lists (all of them are in report.json and on the pages).
INDEX_CONNECTIONS = 200


def _index_rep(analysis) -> dict:
    """What the index page of a capture with many sessions shows of report.json: the
    sessions' table fields, the first :data:`INDEX_CONNECTIONS` connections, no findings
    (the capture's own are read by :func:`_index_context`) — summaries and findings of a
    streamed capture are read back from disk one segment at a time."""
    import itertools

    from .json_report import _clean, _parts

    head, lists = _parts(analysis, findings=False)
    counts = head.pop("counts")
    sessions = [{k: m.get(k) for k in _INDEX_FIELDS} for m in lists["sessions"]]
    conns = list(itertools.islice(iter(lists["connections"]), INDEX_CONNECTIONS))
    return _clean({**head, "connections": conns, "connections_total": len(lists["connections"]),
                   "sessions": sessions, "findings": [], "counts": counts})


def _index_context(analysis, rep: dict, annotated, annotated_path) -> dict:
    """The index page's context: every session's row linking to its page, the capture's
    own findings with their payloads (no session is read back). ``rep`` may come without
    the findings' list (``report_dict(findings=False)``): the capture's own findings and
    the severities are then read from ``analysis.findings``."""
    spool = analysis.findings if not isinstance(analysis.findings, list) else None
    if spool is not None:
        own = [f.to_json() for f in spool.no_session()]
        sev_of = spool.severity_of()
    else:
        own = [f for f in rep["findings"] if f["session"] is None]
        sev_of = {f["id"]: f["severity"] for f in rep["findings"]}
    capture_only = dict(rep, findings=own, sessions=[])
    ctx = build_context(_Part(analysis, [], {}, []), capture_only, annotated, annotated_path)
    rows = []
    for summ in rep["sessions"]:
        sevs = [sev_of.get(i) for i in summ["findings"]]
        root = summ.get("root_cause")
        rows.append({"m": summ, "root": {"id": root, "severity": sev_of.get(root)} if root else None,
                     "href": f"{SESSION_PAGES}/{summ['id']}.html", "chain": [],
                     "counts": {sev: sevs.count(sev) for sev in SEVERITIES},
                     "n_findings": len(sevs)})
    ctx.update(rep=rep, sessions=rows, paged=True, sev_of=sev_of)
    return ctx


def _conn_id(c: dict) -> int:
    return c["conn"]


class _Part:
    """The part of an analysis one page shows: its sessions, their summaries and findings
    (the capture facts shared); what :func:`build_context` reads."""

    def __init__(self, analysis, sessions: list, summaries: dict, findings: list):
        self.capture, self.accounting = analysis.capture, analysis.accounting
        self.messages, self.keylog = analysis.messages, analysis.keylog
        mine = {c for s in sessions for c in s.connections}
        if not sessions:
            self.connections = analysis.connections
        elif hasattr(analysis.connections, "by_keys"):        # on disk (analyzer/spool.py)
            self.connections = sorted(analysis.connections.by_keys(mine), key=_conn_id)
        else:
            self.connections = sorted((c for c in analysis.connections if c["conn"] in mine),
                                      key=_conn_id)
        self.sessions, self.summaries, self.findings = sessions, summaries, findings
        self.capture_events = analysis.capture_events if not sessions else []
        self.leftovers = getattr(analysis, "leftovers", [])
        self.profile = getattr(analysis, "profile", "default")
        summ = next(iter(summaries.values()), None) if len(summaries) == 1 else None
        self.verdict = summ.get("verdict") if summ else getattr(analysis, "verdict", None)
        self.conformance = summ.get("conformance") if summ else getattr(analysis, "conformance", None)
        self.score = summ.get("score") if summ else getattr(analysis, "score", None)
        self.cache: dict = {}

    def view(self, name, session, build):
        """Views of a page's session are built for the page (analysis.Analysis.view)."""
        return build()


def asset(name: str) -> str:
    """The text of a file in templates/ as it is (inline style and script: not templates)."""
    return _ENV.loader.get_source(_ENV, name)[0]


def render_html(analysis, *, rep: dict | None = None, annotated: str | None = None,
                annotated_path: str | None = None, paged: bool = False,
                index_href: str | None = None, deferred: bool = False) -> str:
    """The report page as a string. ``annotated``: the relative link (from the page) to an
    annotated copy of the capture, ``annotated_path`` its path for the command line;
    ``paged`` / ``index_href``: see :func:`build_context`; ``deferred``: the capture-wide
    facts (sha256, frames, duration, frame accounting, TLS secrets, problems) are left as
    markers that :meth:`SessionPages.finish` fills in (:data:`DEFERRED_MARKERS`)."""
    ctx = build_context(analysis, rep, annotated, annotated_path, paged, index_href)
    css, js = asset("report.css"), asset("report.js")
    csp = (f"default-src 'none'; style-src {csp_hash(css)}; script-src {csp_hash(js)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return _ENV.get_template("report.html.j2").render(css=css, js=js, csp=csp,
                                                      deferred=deferred, **ctx)


#: The markers a deferred page holds (:func:`render_html`) → the macro of
#: templates/capture_facts.html.j2 that renders what replaces each.
DEFERRED_MARKERS = {"<!--ccs:capture-meta-->": "capture_meta",
                    "<!--ccs:capture-kv-->": "capture_kv"}


class SessionPages:
    """The pages of a paged report's sessions (``sessions/<id>.html``), rendered while a
    streamed capture is analysed, segment by segment, by the process that judged the
    segment (analyzer/streaming.py; ``analyze_capture(..., pages=SessionPages(...))``):
    the session's part of the page is final then, the capture-wide facts are not yet (the
    capture is still being read), so they are left as markers (:data:`DEFERRED_MARKERS`)
    that :meth:`finish` fills in once, with the whole capture's facts, when report.html is
    written (:func:`write_html_report`). The finished pages are the pages
    :func:`write_html_report` renders from the spool, byte for byte.

    ``out_dir``: the report folder; ``annotated``: the name of the annotated capture that
    will be in ``out_dir`` (``annotated.pcapng``), or None."""

    def __init__(self, out_dir: str | os.PathLike, annotated: str | None = None):
        self.out_dir = os.fspath(out_dir)
        self.annotated = annotated

    def write(self, analysis, sessions: list, summaries: dict, findings: list) -> None:
        """Render the deferred pages of ``sessions`` (judged, with ``summaries`` by session
        id and ``findings`` carrying their final ids); ``analysis``: the segment's
        analysis (its connections, its profile). Raises OSError when a page cannot be
        written."""
        os.makedirs(os.path.join(self.out_dir, SESSION_PAGES), exist_ok=True)
        mine: dict = {}
        for f in findings:
            mine.setdefault(f.session, []).append(f)
        ann = self.annotated
        link = f"../{urllib.parse.quote(ann)}" if ann else None
        path = os.path.abspath(os.path.join(self.out_dir, ann)) if ann else None
        for s in sessions:
            _write_session_page(self.out_dir, _Part(analysis, [s], {s.id: summaries[s.id]},
                                                    mine.get(s.id, [])),
                                link, path, deferred=True)

    def finish(self, analysis) -> int:
        """Fill in the capture-wide facts of every session's page (``analysis``: the whole,
        finished analysis); return how many pages. Raises OSError for an unreadable page."""
        rep = _clean({"capture": analysis.capture, "frame_accounting": analysis.accounting,
                      "keylog": analysis.keylog})
        macros = _ENV.get_template("capture_facts.html.j2").module
        fill = {marker: str(getattr(macros, name)(rep)) for marker, name in DEFERRED_MARKERS.items()}
        n = 0
        for sid in analysis.summaries:
            page = os.path.join(self.out_dir, SESSION_PAGES, f"{sid}.html")
            with open(page, encoding="utf-8") as fh:
                text = fh.read()
            for marker, html in fill.items():
                text = text.replace(marker, html, 1)
            with open(page, "w", encoding="utf-8") as fh:
                fh.write(text)
            n += 1
        return n

    @staticmethod
    def paged(sessions: int) -> bool:
        """Whether a report of ``sessions`` sessions has session pages (more than
        :data:`PAGED_OVER_SESSIONS`)."""
        return sessions > PAGED_OVER_SESSIONS

    def discard(self, analysis) -> None:
        """Remove the pages rendered for ``analysis``'s sessions (the report turned out to
        be one page: no more than :data:`PAGED_OVER_SESSIONS` sessions)."""
        for sid in analysis.summaries:
            try:
                os.remove(os.path.join(self.out_dir, SESSION_PAGES, f"{sid}.html"))
            except OSError:
                pass
        try:
            os.rmdir(os.path.join(self.out_dir, SESSION_PAGES))
        except OSError:
            pass


_PAGES: dict = {}


def _write_pages(analysis, out_dir, ann: str | None, ann_path: str | None, workers: int) -> int:
    """Write ``sessions/<id>.html`` for every session; return how many. With ``workers`` > 1
    and a spooled analysis (analyzer/spool.py) the spool's segments are shared out between
    this process and ``workers - 1`` forked ones (they inherit the analysis; no copy is
    sent)."""
    findings: dict | None = None
    if isinstance(analysis.findings, list):
        findings = {}
        for f in analysis.findings:
            findings.setdefault(f.session, []).append(f)
    job = (analysis, str(out_dir), ann, ann_path, findings)
    k = getattr(analysis.sessions, "segments", None)
    if workers <= 1 or not k or k < 2 or not hasattr(os, "fork"):
        return _render_pages(job, analysis.sessions)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    shares = [list(range(i, k, workers)) for i in range(workers)]
    _PAGES["job"] = job
    try:
        with ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("fork")) as ex:
            futs = [ex.submit(_pages_of_segments, share) for share in shares[1:]]
            n = _pages_of_segments(shares[0])
            return n + sum(f.result() for f in futs)
    finally:
        _PAGES.clear()


def _pages_of_segments(ks: list[int]) -> int:
    """(In a forked worker or here) the pages of the spool segments ``ks``."""
    job = _PAGES["job"]
    spool = job[0].sessions
    return sum(_render_pages(job, spool.segment(k)) for k in ks)


def _render_pages(job, sessions) -> int:
    analysis, out_dir, ann, ann_path, findings = job
    n = 0
    link = f"../{urllib.parse.quote(ann)}" if ann else None
    for s in sessions:                  # one session read back at a time
        mine = findings.get(s.id, []) if findings is not None else analysis.findings.of_session(s.id)
        _write_session_page(out_dir, _Part(analysis, [s], {s.id: analysis.summaries[s.id]}, mine),
                            link, ann_path)
        n += 1
    return n


def _write_session_page(out_dir: str, part: "_Part", annotated: str | None,
                        annotated_path: str | None, deferred: bool = False) -> None:
    """Write ``sessions/<id>.html`` of the one session of ``part`` (:func:`render_html`
    with the link back to the index). Raises OSError when it cannot be written."""
    text = render_html(part, annotated=annotated, annotated_path=annotated_path,
                       index_href="../report.html", deferred=deferred)
    sid = part.sessions[0].id
    with open(os.path.join(out_dir, SESSION_PAGES, f"{sid}.html"), "w", encoding="utf-8") as f:
        f.write(text)


def find_annotated(out_dir: str | os.PathLike) -> str | None:
    """The annotated capture in ``out_dir`` (see :data:`ANNOTATED_NAMES`), or None."""
    for name in ANNOTATED_NAMES:
        if os.path.isfile(os.path.join(out_dir, name)):
            return name
    return None


def write_html_report(analysis, out_dir: str | os.PathLike, rep: dict | None = None,
                      workers: int = 1, pages: SessionPages | None = None) -> str:
    """Write ``report.html`` into ``out_dir``; return its path. An annotated capture already
    in ``out_dir`` (``annotated.pcapng``, made by ``ccs-analyzer annotate CAPTURE -o
    OUT_DIR/annotated.pcapng``) is linked. With more than :data:`PAGED_OVER_SESSIONS`
    sessions report.html is an index and each session has its page in ``sessions/``
    (module docstring), written one session at a time by ``workers`` processes (this one
    and forked ones, each taking whole segments of a spooled analysis) — or, when
    ``analysis.pages_written`` says that ``pages`` (a :class:`SessionPages`) rendered them
    during the analysis, finished by it."""
    os.makedirs(out_dir, exist_ok=True)
    ann = find_annotated(out_dir)
    ann_path = os.path.abspath(os.path.join(out_dir, ann)) if ann else None
    path = os.path.join(out_dir, "report.html")
    paged = SessionPages.paged(len(analysis.summaries))
    if rep is None:
        rep = _index_rep(analysis) if paged else report_dict(analysis)
    text = render_html(analysis, rep=rep, annotated=urllib.parse.quote(ann) if ann else None,
                       annotated_path=ann_path, paged=paged)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    early = pages is not None and getattr(analysis, "pages_written", False)
    if paged and early:
        pages.finish(analysis)
    elif paged:
        os.makedirs(os.path.join(out_dir, SESSION_PAGES), exist_ok=True)
        _write_pages(analysis, out_dir, ann, ann_path, workers)
    elif early:
        pages.discard(analysis)
    return path
