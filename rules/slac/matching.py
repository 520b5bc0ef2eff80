"""SLAC rules on CM_SLAC_MATCH, CM_SET_KEY and the link after the match: SLC017, SLC018, SLC020, SLC021."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import session_index
from ccs_analyzer.analyzer.views.slac import (MATCH_CNF, MATCH_REQ, PARM_REQ, RSP, SET_KEY_CNF,
                                              SET_KEY_REQ, VAL_REQ, evse_reset, fields, slac_view)

from ..base import judged
from ..helpers import ms
from .common import _STD, _SlacRule


class SlacMatchRequestLate(_SlacRule):
    """The EV requested the match later than TT_EVSE_match_session.

    What it checks: CM_SLAC_MATCH.REQ (or CM_VALIDATE.REQ) follows the EV's
    CM_ATTEN_CHAR.RSP within ``limit_s`` (TT_EVSE_match_session = 10 s).
    Why it matters: the EVSE abandons the run when TT_EVSE_match_session expires; a later
    request is not answered.
    Fix (EVCC): decide and send CM_SLAC_MATCH.REQ promptly (TP_EV_match_session).
    Source: ISO 15118-3 Table A.1 TT_EVSE_match_session = 10 s; PROTOCOL_FACTS §2.4
    (E-SLAC, PYSLAC, TENV, MSTAR).

    Example:

        #29 CM_ATTEN_CHAR.RSP
        #30 CM_SLAC_MATCH.REQ (+11.000 s) → #31 CM_SLAC_MATCH.CNF (+0.040 s)
    """

    code = "SLC017"
    title = "CM_SLAC_MATCH.REQ later than TT_EVSE_match_session"
    severity = "warning"
    explains = ("slac-failed",)
    culprit = "EVCC"
    requirement = "ISO 15118-3 Table A.1 TT_EVSE_match_session"
    params = {"limit_s": _STD["TT_EVSE_match_session"]}

    def _gap(self, r):
        rsp = r.of(RSP)
        nxt = (r.of(VAL_REQ) + r.of(MATCH_REQ))
        if not rsp or not nxt:
            return None
        m = min(nxt, key=lambda e: e.time)
        before = [x for x in rsp if x.time <= m.time]
        if not before:
            return None
        return before[-1], m, m.time - before[-1].time

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        for r in v.runs:
            g = self._gap(r)
            if g and g[2] > self.p["limit_s"]:
                a, b, d = g
                yield self.finding(
                    session, [a.frame, b.frame],
                    f"{b.name} #{b.frame} came {d:.2f} s after CM_ATTEN_CHAR.RSP #{a.frame} "
                    f"(TT_EVSE_match_session {self.p['limit_s']:g} s)",
                    time=b.time, measured=round(d, 3), limit=self.p["limit_s"], unit="s",
                    evidence={"expected": f"≤ {self.p['limit_s']:g} s", "actual": f"{d:.3f} s",
                              "run": r.run_id})


class SlacMatchSessionSlow(SlacMatchRequestLate):
    """The EV took longer than TP_EV_match_session to request the match (⚠).

    What it checks: CM_SLAC_MATCH.REQ (or CM_VALIDATE.REQ) follows the EV's
    CM_ATTEN_CHAR.RSP within ``limit_s`` + ``tolerance_s``. ⚠ TP_EV_match_session = 500 ms
    comes from a single source (MStar SDK); real EVs take longer (Hyundai Ioniq 860–980 ms,
    pyPLC) and the EVSE waits TT_EVSE_match_session (10 s), so this is an info; the
    tolerance absorbs capture jitter around stacks that wait exactly 500 ms.
    Why it matters: a slow decision delays the match; together with a short EVSE timer it
    can break the run.
    Fix (EVCC): send CM_SLAC_MATCH.REQ within TP_EV_match_session.
    Source: ISO 15118-3 Table A.1 TP_EV_match_session (MSTAR ⚠); PROTOCOL_FACTS §2.4.

    Example:

        #29 CM_ATTEN_CHAR.RSP
        #30 CM_SLAC_MATCH.REQ → #31 CM_SLAC_MATCH.CNF (+0.040 s)
    """

    code = "SLC018"
    title = "CM_SLAC_MATCH.REQ later than TP_EV_match_session"
    severity = "info"
    requirement = "ISO 15118-3 Table A.1 TP_EV_match_session (⚠ single source)"
    params = {"limit_s": _STD["TP_EV_match_session"], "tolerance_s": 0.05}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        for r in v.runs:
            g = self._gap(r)
            if g and self.p["limit_s"] + self.p["tolerance_s"] < g[2] <= 10.0:
                a, b, d = g
                yield self.finding(
                    session, [a.frame, b.frame],
                    f"{b.name} #{b.frame} came {ms(d)} after CM_ATTEN_CHAR.RSP #{a.frame} "
                    f"(TP_EV_match_session ⚠ {ms(self.p['limit_s'])})",
                    time=b.time, measured=round(d, 3), limit=self.p["limit_s"], unit="s",
                    evidence={"expected": f"≤ {ms(self.p['limit_s'])}", "actual": ms(d),
                              "run": r.run_id})


class SlacNoLinkAfterMatch(_SlacRule):
    """SLAC matched but no SDP / V2G traffic followed.

    What it checks: after each CM_SLAC_MATCH.CNF, an SDP request or a TCP connection of the
    session appears before the wait for it ends. The wait ends when the EV restarts SLAC
    (its next CM_SLAC_PARM.REQ), when the EVSE resets its PLC link — its host re-keys its
    own modem (a CM_SET_KEY.REQ that re-sets a key it had set before, or sets another NID
    than the match's: the EVSE's SLAC state machine was reset and its modem leaves the
    logical network the EV joined, so no SDP can follow) — or when the capture ends. A
    finding when none came although more than ``limit_s`` (TT_match_join = 12 s) passed, or
    at once when the EVSE reset its link first (culprit unknown: an unplug, CP state A,
    makes the EVSE reset, and the traffic cannot show it). A match that got no link is
    reported even when a later restart succeeds. Not for partly captured SLAC (SLC002: the
    sniffer may not see the new network's traffic) nor when the capture or the restart comes
    earlier than TT_match_join without an EVSE reset.
    Why it matters: the match only helps when both modems join the new AVLN (NMK/NID of the
    CNF) and the EV then starts SDP; a modem that does not take the key (CM_SET_KEY), an EVSE
    that resets its link, or an EV that never starts SDP ends the session here.
    Fix: link / EVCC: set the NMK from CM_SLAC_MATCH.CNF with CM_SET_KEY and wait for the
    link; then send SDP requests. SECC: do not reset the PLC modem after a match unless the
    EV is gone (check the charger's log for why its SLAC reset).
    Source: ISO 15118-3 Table A.1 TT_match_join = 12 s; PROTOCOL_FACTS §2.3 rows 11-12,
    §2.7 (E-SLAC, TENV, MSTAR).

    Example:

        #30 CM_SLAC_MATCH.REQ → #31 CM_SLAC_MATCH.CNF NID=253d78cde1c15f (+0.040 s)
        #32 CM_SET_KEY.REQ NID=253d78cde1c15f (+1.070 s) → #33 CM_SET_KEY.CNF (+0.001 s)
    """

    code = "SLC020"
    title = "No SDP after the SLAC match"
    severity = "error"
    kinds = ("slac-failed",)
    explains = ("slac-failed", "sdp-failed")
    culprit = "link"
    requirement = "ISO 15118-3 Table A.1 TT_match_join"
    params = {"limit_s": _STD["TT_match_join"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        matches = sorted((m for r in v.runs for m in r.of(MATCH_CNF)), key=lambda e: (e.time, e.frame))
        restarts = [e for e in v.events if e.name == PARM_REQ] + _later_restarts(session, ctx)
        linked = [e.time for e in session.events if e.layer in ("sdp", "tcp", "tls", "v2gtp")]
        for k, m in enumerate(matches):
            if k + 1 < len(matches) and matches[k + 1].time - m.time < 0.5:
                continue                    # the same match confirmed twice: judge the last
            nxt = next((e for e in restarts if e.time > m.time), None)
            end = nxt.time if nxt is not None else None
            first_link = next((t for t in linked if m.time < t and (end is None or t < end)), None)
            reset = evse_reset(v, session, ctx, after=m.time, before=first_link if first_link is not None
                               else end, match=m)
            if reset is not None:
                yield self._reset(session, m, reset)
                continue
            if first_link is not None:
                continue
            waited = (end - m.time) if end is not None else v.waited_after(m.time)
            if waited <= self.p["limit_s"]:
                continue
            yield self._no_link(session, v, m, nxt, waited)

    def _reset(self, session, m, reset):
        dt = reset.time - m.time
        return self.finding(
            session, [m.frame, reset.frame],
            f"SLAC matched (CM_SLAC_MATCH.CNF #{m.frame}, NID {fields(m).get('NID')}) but the EVSE "
            f"re-keyed its modem {dt:.2f} s later (CM_SET_KEY.REQ #{reset.frame}, NID "
            f"{fields(reset).get('NID')}) before any SDP request: its SLAC state machine was reset and "
            "its modem left the logical network, so no SDP could follow (an unplug, CP state A, would "
            "explain it and is not visible in the traffic)",
            time=m.time, culprit="unknown", measured=round(dt, 3), limit=self.p["limit_s"], unit="s",
            evidence={"expected": f"SDP within {self.p['limit_s']:g} s of the match",
                      "actual": f"EVSE modem re-keyed after {dt:.3f} s, no SDP",
                      "NID": fields(m).get("NID"), "reset_frame": reset.frame,
                      "reset_NID": fields(reset).get("NID")})

    def _no_link(self, session, v, m, nxt, waited: float):
        keys = [k for k in v.keys if k.time >= m.time - 0.001 and (nxt is None or k.time < nxt.time)]
        cnf = next((k for k in keys if k.name == SET_KEY_CNF), None)
        extra = ""
        if cnf is not None:
            extra = f"; CM_SET_KEY.CNF #{cnf.frame} Result={fields(cnf).get('Result')}"
        tail = f"; the EV restarted SLAC at frame {nxt.frame}" if nxt is not None else ""
        return self.finding(
            session, [m.frame] + ([cnf.frame] if cnf else []) + ([nxt.frame] if nxt else []),
            f"SLAC matched (CM_SLAC_MATCH.CNF #{m.frame}, NID {fields(m).get('NID')}) but no SDP "
            f"request or TCP connection followed in {waited:.1f} s (TT_match_join "
            f"{self.p['limit_s']:g} s){extra}{tail}",
            time=m.time, measured=round(waited, 3), limit=self.p["limit_s"], unit="s",
            evidence={"expected": f"SDP within {self.p['limit_s']:g} s of the match",
                      "actual": "no SDP / TCP before " + ("the SLAC restart" if nxt else "the capture ended"),
                      "NID": fields(m).get("NID")})


def _later_restarts(session, ctx) -> list:
    """The same EV's CM_SLAC_PARM.REQs in the sessions after this one: a restart later than
    TT_matching_repetition after a session that never got past SLAC starts a session of its
    own (analyzer/sessions.py), yet it still ends this session's wait for the link."""
    later, seen = [], False
    for s in getattr(ctx, "sessions", None) or ():
        if s is session:
            seen = True
        elif seen and session.ev_mac and s.ev_mac == session.ev_mac:
            later += [e for e in session_index(s, ctx).slac if e.name == PARM_REQ]
    return later


class SlacSetKeyFailed(_SlacRule):
    """CM_SET_KEY.CNF reports a failure that the link confirms.

    What it checks: the CM_SET_KEY.CNF answering a host's CM_SET_KEY.REQ (the NMK/NID of the
    match handed to its own modem). HomePlug AV defines Result 0x00 = success, 0x01 =
    failure — ⚠ but Qualcomm (QCA7000/7420) modems answer 0x01 even when they apply the key
    (they reset to join the new network; pyPLC calls it a "false-negative response"), which
    every capture of the corpus shows. So Result 0 is never a finding, the other codes in
    ``ok_results`` (default 1) only when no SDP / V2G traffic followed the key while the
    capture went on for ``limit_s`` (TT_match_join), and any other code always.
    Why it matters: a modem that did not take the NMK stays outside the new AVLN: the match
    is useless, SDP is never answered.
    Fix (EVCC / SECC host, whoever sent the REQ): check the CM_SET_KEY.REQ fields (KeyType
    NMK, PID 4, NID of the match) and the modem firmware.
    Source: HomePlug AV 1.1 CM_SET_KEY.CNF Result; ISO 15118-3 (the hosts set the NMK of CM_SLAC_MATCH.CNF in their modems);
    PROTOCOL_FACTS §2.3 row 11 (E-SLAC, OPU, PYSLAC), pyPLC pyPlcHomeplug.py test notes.

    Example:

        #32 CM_SET_KEY.REQ NID=253d78cde1c15f → #33 CM_SET_KEY.CNF Result=1
    """

    code = "SLC021"
    title = "CM_SET_KEY.CNF reports a failure"
    severity = "warning"
    explains = ("slac-failed", "sdp-failed")
    culprit = "link"
    requirement = "HomePlug AV CM_SET_KEY.CNF Result"
    params = {"ok_results": [0, 1], "limit_s": _STD["TT_match_join"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if not v.keys:
            return
        macs = {r.ev_mac for r in v.runs} | {session.ev_mac} | {session.evse_mac}
        macs |= {r.matched_evse() for r in v.runs}
        macs.discard(None)
        nids = {fields(m).get("NID") for r in v.runs for m in r.of(MATCH_CNF)} - {None}
        m = v.last_match
        first_traffic = next((e.time for e in session.events if m is not None and e.time > m.time
                              and e.layer in ("sdp", "tcp", "v2gtp")), float("inf"))
        for req in (k for k in v.keys if k.name == SET_KEY_REQ):
            if req.src not in macs or fields(req).get("NID") not in nids or req.time > first_traffic:
                continue   # a sniffer joining, another key, or a key set after the link was up
            cnf = next((k for k in v.keys if k.name == SET_KEY_CNF and k.time >= req.time
                        and k.dst == req.src), None)
            if cnf is None:
                continue
            res = fields(cnf).get("Result")
            traffic = any(e.time > cnf.time and e.layer in ("sdp", "tcp", "v2gtp") for e in session.events)
            if res == 0:
                continue
            if res in self.p["ok_results"]:
                if traffic or v.waited_after(cnf.time) <= self.p["limit_s"]:
                    continue
                why = (f"Result={res} and no SDP / V2G traffic followed in "
                       f"{v.waited_after(cnf.time):.1f} s: the key was probably not applied")
            else:
                why = f"Result={res} (not success)"
            side = "EV" if req.src in {r.ev_mac for r in v.runs} | {session.ev_mac} else "EVSE"
            yield self.finding(
                session, [req.frame, cnf.frame],
                f"CM_SET_KEY.CNF #{cnf.frame} from the {side}'s modem {cnf.src} to CM_SET_KEY.REQ "
                f"#{req.frame} (NID {fields(req).get('NID')}): {why}",
                time=cnf.time, culprit="EVCC" if side == "EV" else "SECC", measured=res,
                limit=self.p["ok_results"],
                evidence={"expected": {"Result": 0}, "actual": {"Result": res},
                          "NID": fields(req).get("NID"), "traffic_after": traffic},
                values=[judged(cnf, "Result", res, expected=0)])
