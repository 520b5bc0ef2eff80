"""Timing rule on the communication setup: TIM003."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.timing import sent_at
from ccs_analyzer.dissectors.events import TCP_SYN, TCP_SYN_ACK

from ..base import Rule
from ..helpers import protocol_of_session
from ..timing_tables import COMM_SETUP_PERFORMANCE, COMM_SETUP_TIMEOUT, phase_seconds
from .common import _EV, _EVSE, _PROTOCOLS, _g, _phase, _severity, _timer_facts


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

    Example:

        #34 SDP request → #35 SDP response (+0.050 s)
        #36 SYN EV→EVSE (+21.000 s)
        #43 SessionSetupReq → #45 SessionSetupRes (+0.077 s)
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
                if e.name == TCP_SYN:
                    if start is None:
                        start, marks = e, {}
                    marks.setdefault(("syn", e.conn), e)
                    marks["syns"] = marks.get("syns", 0) + 1
                elif e.name == TCP_SYN_ACK:
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
