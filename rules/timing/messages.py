"""Timing rules on single exchanges: TIM001 (response time), TIM002 (next request)."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.timing import TimingView, between, sent_at, timing_view

from ..base import Rule
from ..helpers import base_name, is_failed, response_code
from ..timing_tables import (CHARGE_LOOP_GROUP, MSG_PERFORMANCE, MSG_TIMEOUT, SEQ_PERFORMANCE,
                             SEQ_TIMEOUT, Timer, lookup, seconds_table)
from .common import _EV, _EVSE, _PROTOCOLS, _g, _severity, _timer_facts


def _limit(param: dict | None, table: dict, protocol: str,
           name: str) -> tuple[float | None, Timer | None]:
    """(seconds, timer) of message ``name``: the profile's value for the message, else the
    table's own value for it (where it differs from the protocol's ``*``), else the
    profile's ``*``, else the table's ``*``."""
    timer = lookup(table, protocol, name)
    per = (param or {}).get(protocol) or {}
    if name in per:
        return per[name], timer
    own = table.get(protocol, {})
    star = own.get("*")
    if name in own and (star is None or own[name].seconds != star.seconds):
        return own[name].seconds, timer
    if "*" in per:
        return per["*"], timer
    return (timer.seconds if timer else None), timer


def _stats(values: list[float]) -> dict:
    """Median, 95th percentile and maximum (s, rounded to the ms)."""
    if not values:
        return {}
    s = sorted(values)
    n = len(s)
    return {"n": n, "median": round(s[n // 2], 3), "p95": round(s[min(n - 1, int(0.95 * n))], 3),
            "max": round(s[-1], 3)}


def _fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 1 else f"{x:.1f} s"


class LateResponse(Rule):
    """A response came later than the SECC's performance time or the EV's message timeout.

    What it checks: the latency of every response (request frame → response frame) against
    V2G_SECC_Msg_Performance_Time (the SECC shall answer within; a small
    ``capture_allowance_s`` covers the PLC transit a capture point may add) and
    V2G_EVCC_Msg_Timeout (after which the EV shall give up and stop the session), per
    protocol and request type (table in rules/timing_tables.py). Reported once per run of
    the same request on a connection — the charge loop is one run — with the count, the
    worst latency, the latency distribution and the first, worst and last late exchanges.
    A request that got no response at all is left to the sequence rules. The latency is the
    SECC's: from the copy of the request the SECC answered (the last one sent before the
    response: when TCP retransmitted the request, the earlier copies were lost on the line —
    TRN003's matter, not the SECC's) to the first transmission of the response (a response a
    later frame completed, e.g. a retransmission of its tail, is timed from the frame that
    began it). Lost capture data between request and response makes the finding a warning.
    Why it matters: an EV that applies its timeout stops the session at the late response;
    an EV that waits longer hides a SECC that is too slow for a stricter vehicle. Late
    charge-loop responses are how overloaded or crashing SECCs first show.
    Fix (SECC): answer within the performance time: move slow work (backend calls, power
    module ramps, logging) out of the request path; for CurrentDemand / ChargeLoop answer
    with the last known values instead of waiting for fresh measurements.
    Source: DIN SPEC 70121:2014 §9.6 Tables 75/77 (2 s; CurrentDemand 0.25 s ⚠ — DIN TS
    70121:2024-11 0.5 s; SECC 1.5 s ⚠); ISO 15118-2 §8.7.2 Table 109 (2 s / 1.5 s; 5 s /
    4.5 s for ServiceDetail, PaymentDetails, PowerDelivery, certificates; CurrentDemand
    0.25 s / 0.025 s); ISO 15118-20 Tables 215-217 (2 s; ChargeLoop 0.5 s; ServiceDetail and
    CertificateInstallation 5 s ⚠; SECC times unknown). PROTOCOL_FACTS §3, §4A, §4B, §4C
    (J-TO-DIN, J-TO-2, J-TO-20, R-TR, PY-TAB, TS-2, D20-RPT, HOTWIRE). ⚠ values give a
    warning unless the latency also exceeds the other sources' value.

    Example:

        #71 CableCheckReq → #73 CableCheckRes (+3.000 s)
    """

    code = "TIM001"
    title = "Response later than the message timeout / performance time"
    severity = "error"
    category = "timing"
    kinds = ("late-response",)
    culprit = "SECC"
    protocols = _PROTOCOLS
    requirement = ("ISO 15118-2 §8.7.2 Table 109 V2G_EVCC_Msg_Timeout / "
                   "V2G_SECC_Msg_Performance_Time")
    failure_modes = ("UC2 106", "UC2 169", "UC2 239")
    params = {"evcc_msg_timeout_s": seconds_table(MSG_TIMEOUT),
              "secc_performance_s": seconds_table(MSG_PERFORMANCE),
              "capture_allowance_s": 0.005}

    def check(self, session, ctx):
        v = timing_view(session, ctx)
        proto = v.protocol
        if proto not in _PROTOCOLS:
            return
        allow = self.p["capture_allowance_s"]
        for run in v.runs:
            by_name: dict = {}
            for x in run.exchanges:
                if x.response is not None:
                    by_name.setdefault(x.name, []).append(x)
            for name, xs in by_name.items():
                T, tt = _limit(self.p["evcc_msg_timeout_s"], MSG_TIMEOUT, proto, name)
                P, pt = _limit(self.p["secc_performance_s"], MSG_PERFORMANCE, proto, name)
                over_t, over_p = [], []
                lat: dict = {}
                for x in xs:
                    lat[id(x)] = v.secc_latency(x)
                    d = lat[id(x)][0]
                    if T is not None and d > T:
                        over_t.append(x)
                    elif P is not None and d > P + allow:
                        over_p.append(x)
                if over_t or over_p:
                    yield self._finding(session, v, name, xs, over_t, over_p, T, tt, P, pt, lat)

    def _finding(self, session, v, name, xs, over_t, over_p, T, tt, P, pt, lat):
        late = sorted(over_t + over_p, key=lambda x: x.request.time)
        worst = max(late, key=lambda x: lat[id(x)][0])
        w = lat[id(worst)][0]
        first, last = late[0], late[-1]
        retx = sum(1 for x in late if lat[id(x)][1])
        lost_x = [x for x in late if between(v.missing.get(x.request.conn),
                                              x.request.time, sent_at(x.response))]
        lost = len(lost_x)
        doubtful = lost
        single = len(late) == 1
        if single:
            lead = (f"{name}Res #{worst.response.frame} came {_fmt_s(w)} after {name}Req "
                    f"#{worst.request.frame}")
        else:
            lead = None
        if over_t:
            wt = max(lat[id(x)][0] for x in over_t)
            sev = _severity(tt, wt, T)
            limit, timer = T, tt
            what = f"later than the EV's {_g(T)} s timeout (V2G_EVCC_Msg_Timeout)"
            tail = ": the EV should have given up — the SECC answered too slowly"
            if over_p:
                tail += (f"; {len(over_p)} more later than the SECC's {_g(P)} s performance "
                         "time")
            n_over = len(over_t)
        else:
            sev = _severity(pt, w, P)
            limit, timer = P, pt
            what = (f"later than the SECC's {_g(P)} s performance time "
                    "(V2G_SECC_Msg_Performance_Time)")
            tail = f", within the EV's {_g(T)} s timeout" if T is not None else ""
            n_over = len(over_p)
        if single:
            syn = f"{lead}, {what}{tail}"
        else:
            syn = (f"{n_over} of {len(xs)} {name}Res came {what} (worst {_fmt_s(w)}: "
                   f"{name}Req #{worst.request.frame} → #{worst.response.frame}; first "
                   f"#{first.request.frame}, last #{last.response.frame}){tail}")
        if retx:
            syn += (f"; {retx} of them timed from a retransmitted copy of the request (the "
                    "earlier copies were lost on the line, the SECC answered this one)")
        if lost:
            syn += (f"; the capture lost TCP data while {lost} of them were awaited — the "
                    "timing may be off")
        if doubtful == len(late):
            sev = "warning"
        frames = [first.request.frame, first.response.frame, worst.request.frame,
                  worst.response.frame, last.request.frame, last.response.frame]
        f = self.finding(session, frames, syn, time=first.request.time, measured=round(w, 4),
                         limit=limit, unit="s", severity=sev,
                         evidence={
                             "expected": (f"{name}Res within {_g(P)} s (SECC) and at the latest "
                                          f"{_g(T)} s (EV timeout)" if P is not None else
                                          f"{name}Res within {_g(T)} s (EV timeout)"),
                             "actual": (f"worst {w:.3f} s; {len(over_t)} over the timeout, "
                                        f"{len(over_p)} over the performance time, of {len(xs)} "
                                        "responses"),
                             "message": name, "responses": len(xs),
                             "over_timeout": len(over_t), "over_performance": len(over_p),
                             "latency_s": _stats([lat[id(x)][0] for x in xs]),
                             "worst_frames": [worst.request.frame, worst.response.frame],
                             "first_frames": [first.request.frame, first.response.frame],
                             "last_frames": [last.request.frame, last.response.frame],
                             "request_retransmitted": retx, "capture_lost_data": lost,
                             "timeout": _timer_facts(tt, T),
                             "performance": _timer_facts(pt, P)})
        if timer is not None:
            f.requirement = f"{timer.requirement} {timer.name}"
        if over_t:
            # beyond the EV's own timeout: the EV may give up on it (rules/causes.py)
            f.explains = ("ev-timeout", "ev-abort", "no-session-stop", "connection-reset")
        return f


class LateNextRequest(Rule):
    """The EV's next request came later than its sequence performance time / the SECC's
    sequence timeout.

    What it checks: on each connection, the time from a response to the EV's next request
    (or, when none came, to the connection's close or the capture's end) against
    V2G_EVCC_Sequence_Performance_Time (the EV shall send its next request within; 40 s,
    ISO 15118-20 charge loop 0.25 s ⚠) and V2G_SECC_Sequence_Timeout (after which the SECC
    may end the session; 60 s, ISO 15118-20 after a ChargeLoopRes 0.5 s). Not after
    SessionStopRes or a FAILED response (the session ends there). Includes the delay after
    PowerDeliveryRes (Stop) until WeldingDetectionReq / SessionStopReq. When the capture ends
    before the SECC's timeout could expire there is no finding; lost capture data in the gap
    lowers the severity (a request may be missing from the capture); a connection of which
    the capture shows no request at all (one-sided capture) is skipped. The gap runs from the
    response's first transmission (a response a later frame completed is timed from the frame
    that began it). Once per run, with count, worst gap and first / last frames.
    Why it matters: a SECC that applies its sequence timeout ends the session; an EV that
    idles also holds the charge point. In the ISO 15118-20 charge loop a late request
    interrupts the power flow control.
    Fix (EVCC): send the next request within the performance time; keep the charge-loop
    cadence independent of slow EV-internal tasks.
    Source: ISO 15118-2 [V2G2-443] V2G_SECC_Sequence_Timeout 60 s, [V2G2-485] et al.
    V2G_EVCC_Sequence_Performance_Time 40 s (Table 109); DIN SPEC 70121:2014 60 s (J-TO-DIN;
    DIN TS 70121:2024-11 5 s in CurrentDemand per HOTWIRE ⚠; EV 40 s assumed ⚠);
    ISO 15118-20 Table 215 60 s, [V2G20-1500] 0.5 s after ChargeLoopRes, [V2G20-1499]
    [V2G20-1501] 0.25 s ⚠ (D20-RPT). PROTOCOL_FACTS §4A, §4B, §4C, §4E.

    Example:

        #211 DC_ChargeLoopReq → #213 DC_ChargeLoopRes (+0.024 s)
        #215 DC_ChargeLoopReq → #217 DC_ChargeLoopRes (+0.020 s)
    """

    code = "TIM002"
    title = "Next request later than the sequence performance time / timeout"
    severity = "error"
    category = "timing"
    kinds = ("late-request",)
    culprit = "EVCC"
    protocols = _PROTOCOLS
    requirement = ("ISO 15118-2 [V2G2-443] V2G_SECC_Sequence_Timeout / [V2G2-485] "
                   "V2G_EVCC_Sequence_Performance_Time")
    failure_modes = ("UC2 105", "UC2 168", "UC2 238")
    params = {"evcc_sequence_performance_s": seconds_table(SEQ_PERFORMANCE),
              "secc_sequence_timeout_s": seconds_table(SEQ_TIMEOUT)}

    def check(self, session, ctx):
        v = timing_view(session, ctx)
        proto = v.protocol
        if proto not in _PROTOCOLS:
            return
        known: dict = {}          # base name → its timers (_timers)
        for conn, evs in v.by_conn.items():
            if not any(e.direction == _EV for e in evs):
                continue          # one-sided capture: the EV's requests are not visible
            group = None
            late: list = []
            for e in evs:
                if e.direction != _EVSE or e.message is None or not e.name.endswith("Res"):
                    continue
                name = base_name(e.name)
                key = "charge loop" if name in CHARGE_LOOP_GROUP else name
                if key != group:
                    if late:
                        yield self._finding(session, v, late, proto)
                    group, late = key, []
                if name == "SessionStop" or is_failed(response_code(e)):
                    continue
                timers = known.get(name)
                if timers is None:
                    timers = known[name] = self._timers(proto, name)
                got = self._gap(v, e, timers)
                if got is not None:
                    late.append(got)
            if late:
                yield self._finding(session, v, late, proto)

    def _timers(self, proto, name) -> tuple:
        """(P, pt, S, st): the EV's sequence performance time and the SECC's sequence timeout
        after response ``name`` (a base name) in ``proto`` (s, with their timers; :func:`_limit`)."""
        P, pt = _limit(self.p["evcc_sequence_performance_s"], SEQ_PERFORMANCE, proto, name)
        S, st = _limit(self.p["secc_sequence_timeout_s"], SEQ_TIMEOUT, proto, name)
        return P, pt, S, st

    def _gap(self, v: TimingView, res, timers: tuple):
        """(gap_s, response, next request or None, end description, P, pt, S, st) when the
        gap after ``res`` exceeds the EV's performance time, else None. ``timers``: the
        response's :meth:`_timers`."""
        P, pt, S, st = timers
        if P is None and S is None:
            return None
        first = P if P is not None else S
        nxt = v.next_on_conn(res)
        while nxt is not None and nxt.direction != _EV:
            nxt = v.next_on_conn(nxt)
        t_res = sent_at(res)
        if nxt is not None:
            gap = nxt.time - t_res
            end = None
        else:
            close = v.close_after(res.conn, res.time)
            if close is not None:
                gap = close[0] - t_res
                end = close
            else:
                gap = v.last_time - t_res
                if S is None or gap <= S:
                    return None       # the capture ended before the SECC's timer expired
                if v.moved_on(res.conn, res.time):
                    return None       # the EV went on elsewhere; the close was not captured
                end = "capture"
            if end != "capture" and end[2] == "EV" and gap <= first:
                return None
        if gap <= first:
            return None
        return (gap, res, nxt, end, P, pt, S, st)

    def _finding(self, session, v, late, proto):
        worst = max(late, key=lambda g: g[0])
        gap, res, nxt, end, P, pt, S, st = worst
        first, last = late[0], late[-1]
        over_s = [g for g in late if g[6] is not None and g[0] > g[6]]
        if over_s:
            sev = _severity(st, gap, S)
            limit, timer = S, st
        else:
            sev = _severity(pt, gap, P)
            limit, timer = P, pt
        label = v.stop_label(res)
        if nxt is not None:
            what = (f"the EV sent {nxt.name} (#{nxt.frame}) {_fmt_s(gap)} after {label} "
                    f"(#{res.frame})")
        elif end == "capture":
            what = (f"the EV sent no request for {_fmt_s(gap)} after {label} (#{res.frame}) until "
                    "the capture ended; the SECC did not close the connection either")
        else:
            who = "the EVSE" if end[2] == "EVSE" else "the EV"
            what = (f"the EV sent no request for {_fmt_s(gap)} after {label} (#{res.frame}), then "
                    f"{who} closed the connection ({end[3]} #{end[1]})")
        bits = []
        if P is not None and gap > P:
            bits.append(f"its {_g(P)} s V2G_EVCC_Sequence_Performance_Time")
        if S is not None and gap > S:
            bits.append(f"the SECC's {_g(S)} s V2G_SECC_Sequence_Timeout (the SECC was entitled "
                        "to end the session)")
        syn = f"{what}: later than {' and '.join(bits)}"
        if len(late) > 1:
            syn = (f"{len(late)} times the EV's next request came late after "
                   f"{base_name(res.name)}Res (first after #{first[1].frame}, last after "
                   f"#{last[1].frame}); worst: {syn}")
        lost = sum(1 for g in late if between(v.missing.get(g[1].conn), g[1].time,
                                                g[1].time + g[0]))
        if lost:
            syn += (f"; the capture lost TCP data in {lost} of these gaps — a request may be "
                    "missing from the capture")
            sev = "warning"
        frames = [first[1].frame, last[1].frame, res.frame]
        for g in (first, worst, last):
            if g[2] is not None:
                frames.append(g[2].frame)
            elif g[3] not in (None, "capture"):
                frames.append(g[3][1])
        f = self.finding(session, frames, syn, time=first[1].time, measured=round(gap, 4),
                         limit=limit, unit="s", severity=sev,
                         evidence={
                             "expected": (f"next request within {_g(P)} s of the response"
                                          if P is not None else
                                          f"next request within {_g(S)} s of the response"),
                             "actual": f"{gap:.3f} s after {label} #{res.frame}",
                             "response": label, "late": len(late),
                             "over_sequence_timeout": len(over_s),
                             "gaps_s": _stats([g[0] for g in late]),
                             "next_request": nxt.name if nxt is not None else None,
                             "ended_by": (None if nxt is not None or end == "capture" else
                                          f"{end[3]} by {end[2]} #{end[1]}"),
                             "capture_lost_data": lost,
                             "performance": _timer_facts(pt, P),
                             "timeout": _timer_facts(st, S)})
        if timer is not None:
            f.requirement = f"{timer.requirement} {timer.name}"
        if over_s:
            # beyond the SECC's sequence timeout: the SECC may end the session on it
            f.explains = ("evse-timeout", "evse-abort", "no-session-stop", "connection-reset")
        return f
