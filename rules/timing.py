"""Timing: message and sequence timers, communication setup, and the timers of the DC loops
(CableCheck, PreCharge, EVSEProcessing=Ongoing, WeldingDetection).

Every rule reads one shared view of the session (analyzer/views/timing.py, built once, in
one pass over its events): the request/response exchanges grouped into *runs* — consecutive
exchanges of the same request on one TCP connection; the charge loop (CurrentDemand /
ChargingStatus / AC_/DC_ChargeLoop with their MeteringReceipt / MeteringConfirmation) is one
run — so that a loop of thousands of messages yields at most one finding per rule and
message type, with its count, worst value and first / worst / last frames. The timer
values, their sources and their ✅/⚠ status are in :mod:`.timing_tables`.

What belongs elsewhere: a response that never came (sequence rules), SDP retry spacing (SDP
rules), SLAC timers (SLAC rules), reaching the PreCharge target voltage (PRE001).
"""
from __future__ import annotations

from ccs_analyzer.analyzer.views.timing import TimingView, between, sent_at, timing_view

from .base import Rule
from .helpers import base_name, facts, is_failed, protocol_of_session, response_code
from .timing_tables import (CABLECHECK_PERFORMANCE, CABLECHECK_TIMEOUT, CHARGE_LOOP_GROUP,
                            COMM_SETUP_PERFORMANCE, COMM_SETUP_TIMEOUT, DIN, ISO2, ISO20,
                            MSG_PERFORMANCE, MSG_TIMEOUT, ONGOING_PERFORMANCE, ONGOING_TIMEOUT,
                            PRECHARGE_PERFORMANCE, PRECHARGE_TIMEOUT, SEQ_PERFORMANCE,
                            SEQ_TIMEOUT, WELDING_LOOP, Timer, lookup, phase_seconds,
                            seconds_table)

_PROTOCOLS = (DIN, ISO2, ISO20)
_EV, _EVSE = "EV->EVSE", "EVSE->EV"
_ONGOING = ("Ongoing", "Ongoing_WaitingForCustomerInteraction")
_CABLECHECK = ("CableCheck", "DC_CableCheck")
_PRECHARGE = ("PreCharge", "DC_PreCharge")
_WELDING = ("WeldingDetection", "DC_WeldingDetection")


# ============================================================================ small helpers
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


def _phase(param: dict | None, table: dict, protocol: str) -> tuple[float | None, Timer | None]:
    timer = table.get(protocol)
    per = param or {}
    if protocol in per:
        return per[protocol], timer
    return (timer.seconds if timer else None), timer


def _severity(timer: Timer | None, measured: float, limit: float) -> str:
    """error for a ✅ timer (or one exceeded beyond every source's value), else warning."""
    return "error" if timer is not None and timer.certain_above(measured, limit) else "warning"


def _stats(values: list[float]) -> dict:
    """Median, 95th percentile and maximum (s, rounded to the ms)."""
    if not values:
        return {}
    s = sorted(values)
    n = len(s)
    return {"n": n, "median": round(s[n // 2], 3), "p95": round(s[min(n - 1, int(0.95 * n))], 3),
            "max": round(s[-1], 3)}


def _timer_facts(timer: Timer | None, limit: float | None) -> dict:
    if timer is None:
        return {}
    d = {"timer": timer.name, "limit_s": limit, "requirement": timer.requirement,
         "sources": timer.sources, "sure": timer.sure}
    if timer.alt is not None:
        d["other_sources_s"] = timer.alt
    if timer.note:
        d["note"] = timer.note
    return d


def _g(x: float) -> str:
    return f"{x:g}"


def _fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 1 else f"{x:.1f} s"


# ============================================================================ TIM001
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


# ============================================================================ TIM002
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
                got = self._gap(v, e, proto)
                if got is not None:
                    late.append(got)
            if late:
                yield self._finding(session, v, late, proto)

    def _gap(self, v: TimingView, res, proto):
        """(gap_s, response, next request or None, end description, P, pt, S, st) when the
        gap after ``res`` exceeds the EV's performance time, else None."""
        name = base_name(res.name)
        P, pt = _limit(self.p["evcc_sequence_performance_s"], SEQ_PERFORMANCE, proto, name)
        S, st = _limit(self.p["secc_sequence_timeout_s"], SEQ_TIMEOUT, proto, name)
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


# ============================================================================ TIM003
class SlowCommunicationSetup(Rule):
    """Communication setup (SDP → SessionSetupRes) took longer than the EV's timeout or
    the SECC's performance time.

    What it checks: the time from the first SDP request after the link came up (the first
    TCP SYN when no SDP was captured) to SessionSetupRes (its first transmission), for every
    (re)connection, against
    V2G_EVCC_CommunicationSetup_Timeout (20 s: the EV gives up) and
    V2G_SECC_CommunicationSetup_Performance_Time (18 s: the SECC stops waiting for
    SessionSetupReq). The standard starts both timers at link-up (D-LINK_READY), which a
    capture cannot see: the first SDP request comes after it, so the measured time is a lower
    bound and a finding is certain. The SLAC match is not used as the start: the AVLN join
    after it takes up to 12 s (TT_match_join) and clean reference sessions take 21-24 s from
    CM_SLAC_MATCH.CNF. The time is split into SDP, TCP, TLS, SupportedAppProtocol and
    SessionSetup segments; the culprit is the side that spent most of it. Setups that never
    reach SessionSetupRes are left to the SDP, transport and handshake rules.
    Why it matters: a setup longer than 20 s makes the EV abandon high-level communication
    (basic charging or abort); a SECC that still answers after 18 s is out of step with it.
    Fix: the slow segment's side: SECC — answer SDP at once, listen on the announced port,
    answer the handshake quickly; EVCC — connect right after the SDP response, send
    supportedAppProtocolReq and SessionSetupReq without delay.
    Source: ISO 15118-2 [V2G2-446..448] (EVCC 20 s), [V2G2-714..716] [V2G2-723] (SECC 18 s),
    Table 111; DIN SPEC 70121:2014 (J-TO-DIN 20 s; SECC 18 s ⚠ assumed); ISO 15118-20
    Table 215 (20 s), [V2G20-723] (18 s ⚠). PROTOCOL_FACTS §1.5 (e), §4A, §4B, §4C;
    ISS-ECOG105, RC-TIMERS.
    """

    code = "TIM003"
    title = "Communication setup too slow"
    severity = "error"
    category = "timing"
    explains = ("ev-timeout", "ev-abort", "tcp-failed", "handshake-failed", "sdp-failed")
    culprit = "unknown"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 [V2G2-446..448] V2G_EVCC_CommunicationSetup_Timeout"
    failure_modes = ("UC2 104", "UC2 105", "UC2 106")
    params = {"evcc_timeout_s": phase_seconds(COMM_SETUP_TIMEOUT),
              "secc_performance_s": phase_seconds(COMM_SETUP_PERFORMANCE)}

    def check(self, session, ctx):
        proto = protocol_of_session(session, ctx)
        if proto not in _PROTOCOLS:
            return
        T, tt = _phase(self.p["evcc_timeout_s"], COMM_SETUP_TIMEOUT, proto)
        P, pt = _phase(self.p["secc_performance_s"], COMM_SETUP_PERFORMANCE, proto)
        start = None
        marks: dict = {}
        for e in session.events:
            layer = e.layer
            if layer == "slac":
                if e.name == "CM_SLAC_PARM.REQ":
                    start, marks = None, {}
            elif layer == "sdp":
                if e.direction == _EV and start is None:
                    start, marks = e, {}
                elif e.direction == _EVSE and start is not None and "sdp_res" not in marks:
                    marks["sdp_res"] = e
            elif layer == "tcp":
                if e.name == "SYN":
                    if start is None:
                        start, marks = e, {}
                    marks.setdefault(("syn", e.conn), e)
                    marks["syns"] = marks.get("syns", 0) + 1
                elif e.name == "SYN-ACK":
                    marks.setdefault(("synack", e.conn), e)
            elif layer == "tls":
                marks.setdefault(("tls", e.conn), e)
            elif layer == "v2gtp" and e.message is not None and start is not None:
                n = e.name
                if n in ("supportedAppProtocolReq", "supportedAppProtocolRes", "SessionSetupReq"):
                    marks.setdefault((n, e.conn), e)
                elif n == "SessionSetupRes":
                    f = self._measure(session, start, e, marks, T, tt, P, pt)
                    if f is not None:
                        yield f
                    start, marks = None, {}

    def _measure(self, session, start, ssr, marks, T, tt, P, pt):
        total = sent_at(ssr) - start.time
        over_t = T is not None and total > T
        over_p = P is not None and total > P
        if not (over_t or over_p):
            return None
        c = ssr.conn
        syn, synack = marks.get(("syn", c)), marks.get(("synack", c))
        sapq = marks.get(("supportedAppProtocolReq", c))
        saps = marks.get(("supportedAppProtocolRes", c))
        ssq = marks.get(("SessionSetupReq", c))
        sdp_res = marks.get("sdp_res")
        tls = ("tls", c) in marks
        retried = marks.get("syns", 0) > 1
        segs = []

        def seg(label, side, a, b):
            if a is not None and b is not None and b.time >= a.time:
                segs.append({"segment": label, "side": side, "s": round(b.time - a.time, 3),
                             "frames": [a.frame, b.frame]})

        if start.layer == "sdp":
            seg("SDP request → SDP response", "SECC", start, sdp_res)
            seg("SDP response → TCP SYN"
                + (" (earlier connection attempts included)" if retried else ""),
                "unknown" if retried else "EVCC", sdp_res, syn)
        seg("TCP SYN → SYN-ACK", "SECC", syn, synack)
        seg("SYN-ACK → supportedAppProtocolReq" + (" (TLS handshake)" if tls else ""),
            "unknown" if tls else "EVCC", synack, sapq)
        seg("supportedAppProtocolReq → Res", "SECC", sapq, saps)
        seg("supportedAppProtocolRes → SessionSetupReq", "EVCC", saps, ssq)
        seg("SessionSetupReq → Res", "SECC", ssq, ssr)
        share = {"EVCC": 0.0, "SECC": 0.0, "unknown": 0.0}
        for s in segs:
            share[s["side"]] += s["s"]
        side = max(share, key=share.get)
        culprit = side if share[side] >= 0.5 * total else "unknown"
        big = max(segs, key=lambda s: s["s"]) if segs else None
        start_txt = (f"first SDP request #{start.frame}" if start.layer == "sdp"
                     else f"TCP SYN #{start.frame} (no SDP captured)")
        if over_t:
            sev = _severity(tt, total, T)
            limit, timer = T, tt
            syn_txt = (f"Communication setup took {total:.1f} s ({start_txt} → SessionSetupRes "
                       f"#{ssr.frame}), longer than the EV's {_g(T)} s "
                       "V2G_EVCC_CommunicationSetup_Timeout: the EV should have given up")
        else:
            sev = "warning"
            limit, timer = P, pt
            syn_txt = (f"Communication setup took {total:.1f} s ({start_txt} → SessionSetupRes "
                       f"#{ssr.frame}), longer than the SECC's {_g(P)} s "
                       "V2G_SECC_CommunicationSetup_Performance_Time: the SECC should have "
                       "stopped waiting (within the EV's "
                       f"{_g(T) if T is not None else '?'} s)")
        if big is not None:
            syn_txt += (f"; most of it {big['segment']} ({big['s']:.1f} s, "
                        f"#{big['frames'][0]} → #{big['frames'][1]})")
        frames = [start.frame, ssr.frame] + ([big["frames"][0], big["frames"][1]] if big else [])
        f = self.finding(session, frames, syn_txt, time=start.time, measured=round(total, 3),
                         limit=limit, unit="s", severity=sev, culprit=culprit,
                         evidence={"expected": f"SessionSetupRes within {_g(P)} s (SECC) / "
                                               f"{_g(T)} s (EV) of link-up",
                                   "actual": f"{total:.3f} s from {start.name} #{start.frame} "
                                             f"to SessionSetupRes #{ssr.frame}",
                                   "lower_bound": True, "segments": segs,
                                   "time_by_side_s": {k: round(x, 3) for k, x in share.items()},
                                   "timeout": _timer_facts(tt, T),
                                   "performance": _timer_facts(pt, P)})
        if timer is not None:
            f.requirement = f"{timer.requirement} {timer.name}"
        return f


# ============================================================================ loop helpers
def _end_text(kind, what) -> str:
    if kind == "request":
        return f"then {what.name} (#{what.frame})"
    if kind == "close":
        who = "EVSE" if what[2] == "EVSE" else "EV"
        return f"then the {who} closed the connection ({what[3]} #{what[1]})"
    return "and the capture ended"


# ============================================================================ TIM004
class CableCheckTooLong(Rule):
    """The CableCheck loop ran longer than the EV's CableCheck timeout or the SECC's
    performance time.

    What it checks: from the first CableCheckReq of a loop to the CableCheckRes with
    EVSEProcessing=Finished (or the loop's last response when it never finished) against
    V2G_SECC_CableCheck_Performance_Time (38 s ⚠: the SECC finishes the isolation test
    within) and V2G_EVCC_CableCheck_Timeout (40 s: the EV stops the session). A loop cut off
    by the end of the capture before the timer could expire is no finding.
    Why it matters: an EV applying its timeout aborts the charge before any energy flows; an
    isolation monitor or a converter that needs longer than 38 s is out of step with every
    conforming vehicle.
    Fix (SECC): finish the insulation test within 38 s (ramp the test voltage faster, check
    the IMD's measuring time); report Finished as soon as the result is known.
    Source: ISO 15118-2 [V2G2-700..703] Table 111 (EVCC 40 s ✅, SECC 38 s ⚠);
    DIN SPEC 70121:2014 40 s (J-TO-DIN; DIN TS 70121:2024-11 38 s per HOTWIRE — default
    follows the 2014 edition ⚠); ISO 15118-20 Table 215 40 s (J-TO-20 ⚠). PROTOCOL_FACTS
    §4A, §4B, §4C, §4E.
    """

    code = "TIM004"
    title = "CableCheck loop too long"
    severity = "error"
    category = "timing"
    kinds = ("loop-timeout",)
    explains = ("ev-timeout", "ev-abort", "ev-stop", "out-of-sequence", "failed-response",
                "evse-refused", "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 [V2G2-700..703] V2G_EVCC_CableCheck_Timeout"
    failure_modes = ("UC2 169",)
    params = {"evcc_timeout_s": phase_seconds(CABLECHECK_TIMEOUT),
              "secc_performance_s": phase_seconds(CABLECHECK_PERFORMANCE)}

    def check(self, session, ctx):
        v = timing_view(session, ctx)
        proto = v.protocol
        if proto not in _PROTOCOLS:
            return
        T, tt = _phase(self.p["evcc_timeout_s"], CABLECHECK_TIMEOUT, proto)
        P, pt = _phase(self.p["secc_performance_s"], CABLECHECK_PERFORMANCE, proto)
        for run in v.runs:
            if run.key not in _CABLECHECK:
                continue
            xs = run.exchanges
            answered = [x for x in xs if x.response is not None]
            if not answered:
                continue
            first = xs[0].request
            done = next((x for x in answered
                         if facts(x.response).get("EVSEProcessing") == "Finished"), None)
            end = (done or answered[-1]).response
            d = end.time - first.time
            if not ((T is not None and d > T) or (P is not None and d > P)):
                continue
            kind, what = v.next_after_run(run)
            last_f = facts(end)
            state = (f"EVSEProcessing={last_f.get('EVSEProcessing')}, "
                     f"EVSEIsolationStatus={last_f.get('EVSEIsolationStatus')}, "
                     f"EVSEStatusCode={last_f.get('EVSEStatusCode')}")
            how = (f"finished at #{end.frame}" if done is not None else
                   f"never finished (last response #{end.frame}), {_end_text(kind, what)}")
            if T is not None and d > T:
                sev, limit, timer = _severity(tt, d, T), T, tt
                syn = (f"CableCheck ran {d:.1f} s ({len(xs)} cycles, #{first.frame} → "
                       f"#{end.frame}), longer than the EV's {_g(T)} s "
                       f"V2G_EVCC_CableCheck_Timeout: the EV should have stopped; {how}")
            else:
                sev, limit, timer = _severity(pt, d, P), P, pt
                syn = (f"CableCheck ran {d:.1f} s ({len(xs)} cycles, #{first.frame} → "
                       f"#{end.frame}), longer than the SECC's {_g(P)} s "
                       f"V2G_SECC_CableCheck_Performance_Time (EV timeout {_g(T)} s); {how}")
            frames = [first.frame, end.frame, xs[-1].request.frame]
            if kind in ("request",):
                frames.append(what.frame)
            elif kind == "close":
                frames.append(what[1])
            f = self.finding(session, frames, syn, time=first.time, measured=round(d, 3),
                             limit=limit, unit="s", severity=sev,
                             evidence={"expected": f"CableCheck Finished within {_g(P)} s "
                                                   f"(SECC) / {_g(T)} s (EV)",
                                       "actual": f"{d:.3f} s, {len(xs)} cycles; last: {state}",
                                       "finished": done is not None, "cycles": len(xs),
                                       "timeout": _timer_facts(tt, T),
                                       "performance": _timer_facts(pt, P)})
            if timer is not None:
                f.requirement = f"{timer.requirement} {timer.name}"
            yield f


# ============================================================================ TIM005
class PreChargeTimer(Rule):
    """The PreCharge loop as a timer: the SECC's PreCharge performance time, and an EV that
    keeps the loop going past its own PreCharge timeout.

    What it checks: (1) SECC: the time from the first PreChargeReq until EVSEPresentVoltage
    comes within ``tolerance_v`` of EVTargetVoltage against
    V2G_SECC_PreCharge_Performance_Time (5 s ⚠, ISO 15118-2 only; unknown for DIN and -20) —
    only when the voltage was reached within the EV's V2G_EVCC_PreCharge_Timeout: a later or
    never reached target is PRE001's finding, not repeated here. (2) EVCC (info): the EV
    went on sending PreChargeReq for longer than its own V2G_EVCC_PreCharge_Timeout (the
    timer expired, the EV neither aborted nor moved on) — the threshold the vehicle really
    uses, whatever PRE001 says about the SECC's voltage.
    Why it matters: (1) a SECC slower than 5 s leaves conforming vehicles no margin; (2) an
    EV that waits longer than the standard's 7 s hides slow chargers in the lab and times out
    elsewhere (a mismatch of thresholds, PFMEA UC2 104).
    Fix: (1) SECC: ramp the converter to EVTargetVoltage within 5 s and report the measured
    output voltage; (2) EVCC: apply V2G_EVCC_PreCharge_Timeout.
    Source: ISO 15118-2 [V2G2-704..707] Table 111 (EVCC 7 s ✅, SECC 5 s ⚠); DIN SPEC
    70121:2014 7 s (HOTWIRE; EVerest's DIN EV 10 s — default follows the 2014 edition ⚠);
    ISO 15118-20 Table 215 10 s (J-TO-20; 60 s per ISS-ECOG281 ⚠). PROTOCOL_FACTS §4A, §4B,
    §4C, §4D, §4E. PRE001 (rules/precharge.py) checks the target voltage itself.
    """

    code = "TIM005"
    title = "PreCharge loop timer"
    severity = "warning"
    category = "timing"
    kinds = ("loop-timeout",)
    explains = ("ev-timeout", "ev-abort", "ev-stop", "out-of-sequence", "failed-response",
                "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 Table 111 V2G_SECC_PreCharge_Performance_Time"
    failure_modes = ("UC2 156", "UC2 104")
    params = {"evcc_timeout_s": phase_seconds(PRECHARGE_TIMEOUT),
              "secc_performance_s": phase_seconds(PRECHARGE_PERFORMANCE),
              "tolerance_v": 20.0}

    def check(self, session, ctx):
        v = timing_view(session, ctx)
        proto = v.protocol
        if proto not in _PROTOCOLS:
            return
        T, tt = _phase(self.p["evcc_timeout_s"], PRECHARGE_TIMEOUT, proto)
        P, pt = _phase(self.p["secc_performance_s"], PRECHARGE_PERFORMANCE, proto)
        tol = self.p["tolerance_v"]
        for run in v.runs:
            if run.key not in _PRECHARGE:
                continue
            xs = run.exchanges
            first = xs[0].request
            target = None
            reached = None
            for x in xs:
                tv = facts(x.request).get("EVTargetVoltage_V")
                if tv is not None:
                    target = tv
                if x.response is None or reached is not None or target is None:
                    continue
                pv = facts(x.response).get("EVSEPresentVoltage_V")
                if pv is not None and abs(pv - target) <= tol:
                    reached = (x.response, pv, target)
            if P is not None and reached is not None:
                t_r = reached[0].time - first.time
                if t_r > P and (T is None or t_r <= T):
                    yield self._secc(session, first, reached, t_r, P, pt, T)
            if T is not None:
                d = xs[-1].request.time - first.time
                if d > T:
                    yield self._evcc(session, v, run, d, T, tt)

    def _secc(self, session, first, reached, t_r, P, pt, T):
        res, pv, target = reached
        f = self.finding(session, [first.frame, res.frame],
                         f"PreCharge reached {pv:.1f} V (target {target:.1f} V) at #{res.frame} "
                         f"{t_r:.1f} s after PreChargeReq #{first.frame}: later than the SECC's "
                         f"{_g(P)} s V2G_SECC_PreCharge_Performance_Time (within the EV's "
                         f"{_g(T) if T is not None else '?'} s timeout)",
                         time=first.time, measured=round(t_r, 3), limit=P, unit="s",
                         severity=_severity(pt, t_r, P), culprit="SECC",
                         evidence={"expected": f"EVSEPresentVoltage within {self.p['tolerance_v']:g} V "
                                               f"of EVTargetVoltage within {_g(P)} s",
                                   "actual": f"{pv:.1f} V after {t_r:.3f} s",
                                   "EVTargetVoltage_V": target, "EVSEPresentVoltage_V": pv,
                                   "performance": _timer_facts(pt, P)})
        if pt is not None:
            f.requirement = f"{pt.requirement} {pt.name}"
        return f

    def _evcc(self, session, v, run, d, T, tt):
        xs = run.exchanges
        first = xs[0].request
        expiry = first.time + T
        after = [x for x in xs if x.request.time > expiry]
        at = after[0].request if after else xs[-1].request
        kind, what = v.next_after_run(run)
        within_alt = (tt is not None and tt.alt is not None and d <= tt.alt)
        alt_txt = (f" (within the {_g(tt.alt)} s other sources give: {tt.note})" if within_alt
                   else "")
        frames = [first.frame, at.frame, xs[-1].request.frame]
        if kind == "request":
            frames.append(what.frame)
        elif kind == "close":
            frames.append(what[1])
        f = self.finding(session, frames,
                         f"The EV kept PreCharge going {d:.1f} s ({len(xs)} cycles, #{first.frame} → "
                         f"#{xs[-1].request.frame}), past its {_g(T)} s V2G_EVCC_PreCharge_Timeout "
                         f"(expired before #{at.frame}; {len(after)} more cycles){alt_txt}, "
                         f"{_end_text(kind, what)}",
                         time=first.time, measured=round(d, 3), limit=T, unit="s",
                         severity="info", culprit="EVCC",
                         evidence={"expected": f"the EV ends PreCharge within {_g(T)} s "
                                               "(PowerDeliveryReq or stop)",
                                   "actual": f"PreChargeReq for {d:.3f} s, {len(after)} after "
                                             "the timer expired",
                                   "cycles": len(xs), "cycles_after_expiry": len(after),
                                   "ended": _end_text(kind, what),
                                   "timeout": _timer_facts(tt, T),
                                   "see_also": "PRE001 (target voltage reached in time)"})
        if tt is not None:
            f.requirement = f"{tt.requirement} {tt.name}"
        # it describes the EV's own timer running out (rules/causes.py), it causes nothing
        f.kinds, f.explains = ("ev-timeout",), ()
        return f


# ============================================================================ TIM006
class OngoingTooLong(Rule):
    """An EVSEProcessing=Ongoing loop ran longer than the SECC's ongoing performance time or
    the EV's ongoing timeout (or was cut short without a FAILED response).

    What it checks: loops of ContractAuthentication / Authorization, ChargeParameterDiscovery,
    ScheduleExchange … answered with EVSEProcessing=Ongoing (or
    Ongoing_WaitingForCustomerInteraction), from the first Ongoing response to the response
    with Finished (or the loop's end), against V2G_SECC_Ongoing_Performance_Time (55 s: the
    SECC answers Finished or FAILED within, [V2G2-713]) and V2G_EVCC_Ongoing_Timeout (60 s:
    the EV stops). CableCheck has its own timer (TIM004). A loop that the SECC ends by
    closing the connection before 55 s, or the EV abandons before 60 s, is reported as info
    with its duration; a loop cut off by the capture's end before a timer expired is no
    finding.
    Why it matters: authorizations that wait for a card or a backend beyond 55 s break the
    session on conforming vehicles; a SECC should end a hopeless wait with FAILED so the EV
    learns why.
    Fix (SECC): answer Finished or FAILED within 55 s (backend timeouts shorter than that);
    end the wait with a FAILED response, not a TCP reset.
    Source: ISO 15118-2 [V2G2-710] [V2G2-711] (EVCC 60 s), [V2G2-712] [V2G2-713] (SECC
    55 s), Table 109; DIN 70121 60 s (E-DIN-EV, PYPLC; SECC 55 s ⚠ assumed); ISO 15118-20
    Table 215 60 s / 55 s (J-TO-20, E-D20, D20-RPT; EVerest allows 180 s for EIM, not
    normative). PROTOCOL_FACTS §4A, §4B, §4C, §4E.
    """

    code = "TIM006"
    title = "EVSEProcessing=Ongoing loop too long"
    severity = "error"
    category = "timing"
    kinds = ("loop-timeout",)
    explains = ("ev-timeout", "ev-abort", "ev-stop", "out-of-sequence", "failed-response",
                "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 [V2G2-710..713] V2G_EVCC_Ongoing_Timeout"
    failure_modes = ("UC2 115", "UC2 167", "UC2 169")
    params = {"evcc_timeout_s": phase_seconds(ONGOING_TIMEOUT),
              "secc_performance_s": phase_seconds(ONGOING_PERFORMANCE)}

    def check(self, session, ctx):
        v = timing_view(session, ctx)
        proto = v.protocol
        if proto not in _PROTOCOLS:
            return
        T, tt = _phase(self.p["evcc_timeout_s"], ONGOING_TIMEOUT, proto)
        P, pt = _phase(self.p["secc_performance_s"], ONGOING_PERFORMANCE, proto)
        for run in v.runs:
            if run.key in _CABLECHECK or run.key == "charge loop":
                continue
            answered = [x for x in run.exchanges if x.response is not None]
            ongoing = [x for x in answered if facts(x.response).get("EVSEProcessing") in _ONGOING]
            if not ongoing:
                continue
            f = self._loop(session, v, run, answered, ongoing, T, tt, P, pt)
            if f is not None:
                yield f

    def _loop(self, session, v, run, answered, ongoing, T, tt, P, pt):
        start = ongoing[0].response
        done = next((x for x in answered if x.response.time > start.time
                     and facts(x.response).get("EVSEProcessing") == "Finished"), None)
        name = run.key
        n_ong = len(ongoing)
        if done is not None:
            end_ev = done.response
            d = end_ev.time - start.time
            how = f"Finished at #{end_ev.frame}"
            kind, what = "finished", None
        else:
            kind, what = v.next_after_run(run)
            last_res = answered[-1].response
            if kind == "capture":
                d = last_res.time - start.time
                end_ev = last_res
                how = f"still Ongoing at #{last_res.frame} when the capture ended"
            else:
                end_t = what.time if kind == "request" else what[0]
                d = end_t - start.time
                end_ev = last_res
                how = f"last Ongoing at #{last_res.frame}, {_end_text(kind, what)}"
        frames = [run.exchanges[0].request.frame, start.frame, end_ev.frame]
        if kind == "request":
            frames.append(what.frame)
        elif kind == "close":
            frames.append(what[1])
        base = (f"{name} answered EVSEProcessing=Ongoing {n_ong} times for {d:.1f} s "
                f"(from #{start.frame}); {how}")
        ev = {"expected": f"EVSEProcessing=Finished (or FAILED) within {_g(P)} s (SECC), the EV "
                          f"gives up at {_g(T)} s",
              "actual": f"{d:.3f} s of Ongoing ({n_ong} responses); {how}",
              "message": name, "ongoing_responses": n_ong, "finished": done is not None,
              "timeout": _timer_facts(tt, T), "performance": _timer_facts(pt, P)}
        if T is not None and d > T:
            f = self.finding(session, frames, f"{base}: longer than the EV's {_g(T)} s "
                             "V2G_EVCC_Ongoing_Timeout — the EV should have given up, the SECC "
                             f"should have answered FAILED at {_g(P)} s", time=start.time,
                             measured=round(d, 3), limit=T, unit="s",
                             severity=_severity(tt, d, T), evidence=ev)
            f.requirement = f"{tt.requirement} {tt.name}" if tt else f.requirement
            return f
        if P is not None and d > P:
            f = self.finding(session, frames, f"{base}: longer than the SECC's {_g(P)} s "
                             "V2G_SECC_Ongoing_Performance_Time (it should have answered "
                             f"Finished or FAILED; EV timeout {_g(T)} s)", time=start.time,
                             measured=round(d, 3), limit=P, unit="s",
                             severity=_severity(pt, d, P), evidence=ev)
            f.requirement = f"{pt.requirement} {pt.name}" if pt else f.requirement
            return f
        if done is None and kind == "close" and what[2] == "EVSE":
            return self.finding(session, frames, f"{base}: the EVSE ended the Ongoing loop after "
                                f"{d:.1f} s, before its {_g(P)} s V2G_SECC_Ongoing_Performance_Time, "
                                "without a FAILED response — no ongoing timeout", time=start.time,
                                measured=round(d, 3), limit=P, unit="s", severity="info",
                                culprit="SECC", evidence=ev)
        if done is None and (kind == "close" and what[2] == "EV" or kind == "request"):
            return self.finding(session, frames, f"{base}: the EV gave up the Ongoing loop after "
                                f"{d:.1f} s, before its {_g(T)} s V2G_EVCC_Ongoing_Timeout",
                                time=start.time, measured=round(d, 3), limit=T, unit="s",
                                severity="info", culprit="EVCC", evidence=ev)
        return None


# ============================================================================ TIM007
class WeldingDetectionTooLong(Rule):
    """The WeldingDetection loop ran longer than the usual ongoing bound.

    What it checks: from the first WeldingDetectionReq to the last WeldingDetectionRes of a
    loop against ``limit_s`` (60 s, an implementation bound ⚠ — no normative value is
    known). The culprit is the SECC when EVSEPresentVoltage stayed above ``discharged_v`` and
    did not fall (the EV waits for the output to discharge), else the EV (it decides when its
    welding detection is finished, [V2G2-620]). The delay from PowerDeliveryRes (Stop) to
    WeldingDetectionReq / SessionStopReq is TIM002's (sequence performance time).
    Why it matters: the connector stays locked and the charge point occupied; a SECC that does
    not discharge its output keeps the EV waiting.
    Fix: SECC — discharge the output after PowerDelivery (Stop) and report the measured
    voltage; EVCC — end welding detection once the voltage is low.
    Source: DIN 70121 / ISO 15118-2 [V2G2-601] [V2G2-620] (WeldingDetection loop), PROTOCOL_FACTS
    §4D, §4E (60 s per E-DIN-EV ⚠).
    """

    code = "TIM007"
    title = "WeldingDetection loop too long"
    severity = "warning"
    category = "timing"
    kinds = ("loop-timeout",)
    explains = ("ev-abort", "no-session-stop", "connection-reset")
    culprit = "EVCC"
    protocols = _PROTOCOLS
    requirement = "ISO 15118-2 [V2G2-620] WeldingDetection loop"
    params = {"limit_s": 60.0, "discharged_v": 60.0}

    def check(self, session, ctx):
        v = timing_view(session, ctx)
        proto = v.protocol
        if proto not in _PROTOCOLS:
            return
        lim = self.p["limit_s"]
        timer = WELDING_LOOP.get(proto)
        for run in v.runs:
            if run.key not in _WELDING:
                continue
            answered = [x for x in run.exchanges if x.response is not None]
            if not answered:
                continue
            first = run.exchanges[0].request
            last = answered[-1].response
            d = last.time - first.time
            if d <= lim:
                continue
            volts = [facts(x.response).get("EVSEPresentVoltage_V") for x in answered]
            volts = [x for x in volts if x is not None]
            stuck = (bool(volts) and volts[-1] > self.p["discharged_v"]
                     and volts[-1] >= 0.8 * volts[0])
            culprit = "SECC" if stuck else "EVCC"
            vtxt = (f"; EVSEPresentVoltage {volts[0]:.0f} V → {volts[-1]:.0f} V"
                    + (" (the output was not discharged)" if stuck else "") if volts else "")
            kind, what = v.next_after_run(run)
            f = self.finding(session, [first.frame, last.frame], f"WeldingDetection ran {d:.1f} s "
                             f"({len(run.exchanges)} cycles, #{first.frame} → #{last.frame}), longer "
                             f"than {_g(lim)} s{vtxt}, {_end_text(kind, what)}", time=first.time,
                             measured=round(d, 3), limit=lim, unit="s", culprit=culprit,
                             evidence={"expected": f"WeldingDetection done within {_g(lim)} s",
                                       "actual": f"{d:.3f} s, {len(run.exchanges)} cycles",
                                       "EVSEPresentVoltage_V_first_last":
                                           [volts[0], volts[-1]] if volts else None,
                                       "limit": _timer_facts(timer, lim)})
            yield f
