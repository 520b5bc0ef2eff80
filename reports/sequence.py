"""The message sequence of a session as rows for a two-lane chart (EV ↔ EVSE).

Rows, in frame order:

* ``msg``: one message with its direction (``EV->EVSE`` draws an arrow from the EV lane to
  the EVSE lane), name, time, frame, response code and the findings that cite its frame;
* ``loop``: consecutive messages of one kind (CurrentDemandReq/Res, CM_MNBC_SOUND.IND …)
  collapsed into one row with their count, frames, duration and response codes, and a
  sample of its messages (the first and last few, and every one a finding cites) to expand;
* ``note``: something that has no direction (a disclosed TLS key log, an attenuation profile
  the EVSE's modem reports), consecutive ones counted;
* ``gap``: a pause of ``GAP_S`` seconds or more between two rows (``pilot_readings``: the CP
  readings in it, which changed no state);
* ``phase``: the phase the next messages belong to (handshake, cable check, charging …);
* ``pilot``: a change of the IEC 61851-1 control-pilot state (a transition of
  analyzer/views/control_pilot.py: ``"B1 → B2 (5 %)"``, ``"C2 → B2"``, ``"→ E"``), drawn on a
  lane of its own beside EV and EVSE — one row per transition, not per reading; a reading
  that is no transition shows only when a finding cites it. A pilot row ends a loop (the
  messages after it start a new one), so the chart keeps the order of what happened.

Shown: SLAC (ISO 15118-3) messages, SDP, TCP SYN / SYN-ACK / FIN / RST, TLS handshake
records and alerts, every V2GTP message, the CP transitions; other TCP events
(retransmissions) only when a finding cites them, and then as notes.
"""
from __future__ import annotations

import bisect
from collections import Counter

from ccs_analyzer.analyzer.control_pilot import STATE_MEANING, cp_sample
from ccs_analyzer.analyzer.outcome import event_phase
from ccs_analyzer.analyzer.physical import event_facts
from ccs_analyzer.analyzer.views.control_pilot import CpView, build_cp_view
from ccs_analyzer.analyzer.views.events import base_name
from ccs_analyzer.dissectors.events import TCP_FIN, TCP_RST, TCP_SYN, TCP_SYN_ACK

GAP_S = 2.0
LOOP_MIN = 3          # consecutive messages of one kind that make a loop
SAMPLE_EACH_END = 6   # messages of a loop kept at each end for the expanded view
_TCP_SHOWN = (TCP_SYN, TCP_SYN_ACK, TCP_FIN, TCP_RST)


def _shown(e, cited: set[int]) -> str | None:
    """How an event appears: "msg", "note" or None (left out)."""
    if e.layer == "slac":
        if e.protocol != "SLAC":
            return None
        return "msg" if e.direction else "note"
    if e.layer == "sdp" or e.layer == "v2gtp":
        return "msg" if e.direction else "note"
    if e.layer == "tcp":
        if e.name in _TCP_SHOWN:
            return "msg" if e.direction else "note"
        return "note" if e.frame in cited else None
    if e.layer == "tls":
        return "msg" if e.direction else "note"
    return "note" if e.frame in cited else None


def _msg(e, t0: float, by_frame: dict[int, list[str]]) -> dict:
    rc = None
    if e.layer == "v2gtp" and e.message is not None:
        v = event_facts(e).get("ResponseCode")
        rc = v if isinstance(v, str) else None
    return {"kind": "msg", "frame": e.frame, "t": round(e.time - t0, 3), "time": e.time,
            "name": e.name, "layer": e.layer, "dir": e.direction, "rc": rc,
            "rc_bad": bool(rc) and not rc.upper().startswith("OK"),
            "error": e.error, "findings": by_frame.get(e.frame, [])}


def pilot_label(before: str | None, after: str, duty_pct: float | None = None,
                current_A: float | None = None) -> str:
    """The text of a CP row: ``"B1 → B2 (5 %)"``, ``"B2 → C2"``, ``"→ E"``; ``duty_pct`` (%)
    and ``current_A`` (the current that duty cycle allows, A) are added when given
    (``"B1 → B2 (22 % · 13.2 A)"``)."""
    text = f"{before} → {after}" if before else f"→ {after}"
    if duty_pct is not None:
        text += f" ({duty_pct:g} %" + (f" · {current_A:g} A" if current_A is not None else "") + ")"
    return text


def _reading_label(x) -> str:
    """The text of a CP reading that is no transition (a finding cites it): ``"7.4 V
    between the bands"`` or ``"C2 (no change)"``."""
    if x.state in (None, "?"):
        volts = f"{x.voltage_V:g} V" if x.voltage_V is not None else "no voltage"
        return f"{volts} between the bands" if x.state == "?" else f"{volts} (no state)"
    return f"{x.state} (no change)"


def _pilot(e, t0: float, by_frame: dict[int, list[str]], tr, smp, shown_duty) -> dict:
    """A ``pilot`` row for event ``e``: its transition ``tr`` (or None: a reading a finding
    cites) and its CP reading ``smp``. ``shown_duty``: the duty cycle the last row showed
    (the label gives the duty cycle when the PWM starts or its duty cycle changed)."""
    after = tr.after if tr is not None else smp.state
    before = tr.before if tr is not None else None
    x = tr.sample if tr is not None else smp
    duty = None
    if x.pwm and x.duty_pct is not None and (
            before is None or not before.endswith("2") or shown_duty is None
            or abs(x.duty_pct - shown_duty) >= 1.0):
        duty = x.duty_pct
    return {"kind": "pilot", "frame": e.frame, "t": round(e.time - t0, 3), "time": e.time,
            "transition": tr is not None, "before": before, "after": after,
            "letter": (after or "?")[0],
            "label": pilot_label(before, after, duty, x.pwm_current_A if duty is not None else None)
            if tr is not None else _reading_label(x),
            "meaning": STATE_MEANING.get((after or "?")[0], "between the voltage bands"),
            "voltage_V": x.voltage_V, "duty_pct": x.duty_pct, "frequency_Hz": x.frequency_Hz,
            "current_A": x.pwm_current_A, "source": x.source,
            "findings": by_frame.get(e.frame, [])}


def sequence_rows(session, t0: float, by_frame: dict[int, list[str]],
                  cp: CpView | None = None) -> list[dict]:
    """The chart rows of a session (module docstring), dicts with a ``kind``; ``t`` is in
    seconds since ``t0`` (epoch s). ``by_frame``: frame → ids of the findings that cite it;
    ``cp``: the session's :class:`~ccs_analyzer.analyzer.views.control_pilot.CpView` (built
    from its events when None) — its transitions become ``pilot`` rows."""
    cited = set(by_frame)
    if cp is None:
        cp = build_cp_view(session.events)
    transitions = {tr.frame: tr for tr in cp.transitions}
    cp_cited = {x.frame: x for x in cp.samples if x.frame in cited and x.frame not in transitions}
    pilot_frames = transitions.keys() | cp_cited.keys()
    shown = []
    for e in session.events:
        if e.frame in pilot_frames and cp_sample(e) is not None:
            shown.append(("pilot", e))
            continue
        how = _shown(e, cited)
        if how:
            shown.append((how, e))
    # 1. runs of one kind; notes in the middle of a run do not break it
    groups: list[dict] = []
    cur = None
    split_key = None
    pending_notes: list = []
    bases: dict[str, str] = {}          # name → base_name(name), asked once per name
    for how, e in shown:
        if how == "pilot":          # ends the run: the pilot's change sits where it happened
            if cur is not None:
                groups.append(cur)
                for n in pending_notes:
                    groups.append({"type": "note", "events": [n]})
                pending_notes = []
                split_key = cur["key"]
                cur = None
            groups.append({"type": "pilot", "events": [e]})
            continue
        if how == "note":
            (pending_notes if cur is not None else groups).append(
                e if cur is not None else {"type": "note", "events": [e]})
            continue
        base = bases.get(e.name)
        if base is None:
            base = bases[e.name] = base_name(e.name)
        key = (e.layer, base)
        if cur is not None and cur["key"] == key:
            cur["events"].append(e)
            if pending_notes:
                cur["absorbed"].extend(pending_notes)
                pending_notes = []
            continue
        if cur is not None:
            groups.append(cur)
            for n in pending_notes:
                groups.append({"type": "note", "events": [n]})
            pending_notes = []
        # the rest of a run a pilot row split continues its phase (no new phase row)
        cur = {"type": "run", "key": key, "events": [e], "absorbed": [], "cont": key == split_key}
        split_key = None
    if cur is not None:
        groups.append(cur)
        for n in pending_notes:
            groups.append({"type": "note", "events": [n]})
    # 2. rows
    rows: list[dict] = []
    last_t = None
    last_phase = None

    def phase_row(e):
        nonlocal last_phase
        ph = event_phase(e)
        if ph and ph != last_phase:
            rows.append({"kind": "phase", "phase": ph})
            last_phase = ph

    cp_times = [x.time for x in cp.samples]

    def gap_row(t):
        if last_t is not None and t - last_t >= GAP_S:
            # CP readings in the pause that changed no state (not rows of their own)
            n = bisect.bisect_left(cp_times, t) - bisect.bisect_right(cp_times, last_t)
            rows.append({"kind": "gap", "seconds": round(t - last_t, 1), "pilot_readings": n})

    shown_duty = None
    for g in groups:
        evs = g["events"]
        if g["type"] == "pilot":
            e = evs[0]
            gap_row(e.time)
            tr = transitions.get(e.frame)
            row = _pilot(e, t0, by_frame, tr, cp_cited.get(e.frame), shown_duty)
            if tr is not None:
                x = tr.sample
                shown_duty = x.duty_pct if x.pwm else None
            rows.append(row)
            last_t = e.time
            continue
        if g["type"] == "note":
            e = evs[0]
            gap_row(e.time)
            prev = rows[-1] if rows else None
            if prev and prev["kind"] == "note" and prev["name"] == e.name:
                prev["count"] += 1
                prev["last_frame"] = e.frame
                prev["findings"] = sorted(set(prev["findings"]) | set(by_frame.get(e.frame, [])),
                                          key=_fid_key)
            else:
                rows.append({"kind": "note", "name": e.name, "layer": e.layer, "count": 1,
                             "frame": e.frame, "last_frame": e.frame, "t": round(e.time - t0, 3),
                             "findings": list(by_frame.get(e.frame, []))})
            last_t = evs[-1].time
            continue
        gap_row(evs[0].time)
        if not g.get("cont"):
            phase_row(evs[0])
        if len(evs) < LOOP_MIN:
            for i, e in enumerate(evs):
                if i:
                    gap_row(e.time)
                rows.append(_msg(e, t0, by_frame))
                last_t = e.time
            continue
        rows.append(_loop(g, t0, by_frame))
        last_t = evs[-1].time
        for e in evs[-1:]:
            # a loop may end in the next phase (PowerDeliveryReq Stop) — keep phases honest
            ph = event_phase(e)
            last_phase = ph or last_phase
    return rows


def _fid_key(fid: str) -> int:
    return int(fid[1:]) if fid[1:].isdigit() else 0


def _loop(g: dict, t0: float, by_frame: dict[int, list[str]]) -> dict:
    evs = g["events"]
    # counts in the order first seen (a loop has thousands of messages: one pass per count)
    names = dict(Counter(e.name for e in evs))
    rcs = [event_facts(e).get("ResponseCode") for e in evs
           if e.layer == "v2gtp" and e.message is not None and e.name.endswith("Res")]
    codes = dict(Counter(rc for rc in rcs if isinstance(rc, str)))
    dirs = {e.direction for e in evs}
    errors = sum(1 for e in evs if e.error)
    cited = [i for i, e in enumerate(evs) if e.frame in by_frame]
    findings: set[str] = set()
    for e in [evs[i] for i in cited] + [e for e in g["absorbed"] if e.frame in by_frame]:
        findings.update(by_frame[e.frame])
    n = SAMPLE_EACH_END
    idx = set(range(min(n, len(evs)))) | set(range(max(0, len(evs) - n), len(evs)))
    idx.update(cited)
    sample = []
    prev = None
    for i in sorted(idx):
        if prev is not None and i > prev + 1:
            skipped = evs[prev + 1:i]
            sample.append({"kind": "skip", "count": len(skipped), "first_frame": skipped[0].frame,
                           "last_frame": skipped[-1].frame,
                           "seconds": round(skipped[-1].time - skipped[0].time, 1)})
        sample.append(_msg(evs[i], t0, by_frame))
        prev = i
    absorbed: dict[str, int] = {}
    for e in g["absorbed"]:
        absorbed[e.name] = absorbed.get(e.name, 0) + 1
    both = len(dirs - {None}) > 1
    first_dir = evs[0].direction
    return {"kind": "loop", "base": base_name(evs[0].name), "layer": evs[0].layer,
            "count": len(evs), "names": names, "codes": codes,
            "bad_codes": {c: k for c, k in codes.items() if not c.upper().startswith("OK")},
            "dir": "both" if both else first_dir, "first_frame": evs[0].frame,
            "last_frame": evs[-1].frame, "t": round(evs[0].time - t0, 3),
            "duration_s": round(evs[-1].time - evs[0].time, 3), "errors": errors,
            "findings": sorted(findings, key=_fid_key), "sample": sample, "absorbed": absorbed}
