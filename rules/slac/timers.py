"""SLAC rules on the ISO 15118-3 timers and counters of the sounding: SLC008-SLC013."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.slac import (IND, MATCH_CNF, MATCH_REQ, MNBC, PARM_CNF, PARM_REQ,
                                              RSP, START, fields, slac_view)

from ..base import judged
from ..helpers import ms
from ..slac_timers import SLAC_TIMERS
from .common import _STD, _SlacRule, _culprit


class SlacResponseLate(_SlacRule):
    """A SLAC response came later than TT_match_response.

    What it checks: CM_SLAC_PARM.CNF after CM_SLAC_PARM.REQ, CM_SLAC_MATCH.CNF after
    CM_SLAC_MATCH.REQ (EVSE) and CM_ATTEN_CHAR.RSP after CM_ATTEN_CHAR.IND (EV) each arrive
    within ``limit_s`` (TT_match_response = 200 ms) of the first request they answer: a
    request repeated because its first copies went unanswered (the EVSE answered only the
    fifth CM_SLAC_PARM.REQ) is late from the first copy — each earlier one was owed an
    answer within TT_match_response.
    Why it matters: the requester stops waiting after TT_match_response and repeats or
    fails the run; a late answer is discarded or crosses a repetition.
    Fix: the responder named: answer within TP_match_response (≤ 100 ms).
    Source: ISO 15118-3 Table A.1 TT_match_response = 200 ms, TP_match_response ≤ 100 ms;
    PROTOCOL_FACTS §2.4 (E-SLAC, E-SLAC-EV, PYSLAC, TENV, MSTAR).

    Example:

        #3 CM_SLAC_PARM.REQ → #4 CM_SLAC_PARM.CNF (+0.350 s)
    """

    code = "SLC008"
    title = "SLAC response later than TT_match_response"
    severity = "warning"
    explains = ("slac-failed",)
    culprit = "unknown"
    requirement = "ISO 15118-3 Table A.1 TT_match_response"
    params = {"limit_s": _STD["TT_match_response"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        late: dict = {}
        for r in v.runs:
            for req_name, res_name in ((PARM_REQ, PARM_CNF), (MATCH_REQ, MATCH_CNF), (IND, RSP)):
                reqs = r.of(req_name)
                prev = None                      # the previous response of this kind
                for res in r.of(res_name):
                    peer = res.dst
                    cands = [q for q in reqs if q.time <= res.time and
                             (prev is None or q.time > prev.time) and
                             (req_name == PARM_REQ or q.src == peer)]
                    prev = res
                    if not cands:
                        continue
                    q = cands[0]                 # the first copy still waiting for an answer
                    lat = res.time - q.time
                    if lat > self.p["limit_s"]:
                        late.setdefault((res_name, res.src), []).append((q, res, lat, len(cands)))
        for (name, src), items in late.items():
            worst = max(items, key=lambda x: x[2])
            q, res, lat, n_req = worst
            copies = f", the first of {n_req} requests" if n_req > 1 else ""
            yield self.finding(
                session, [items[0][0].frame, items[0][1].frame, q.frame, res.frame],
                f"{len(items)} {name} from {src} later than {ms(self.p['limit_s'])}: worst "
                f"{ms(lat)} ({q.name} #{q.frame}{copies} → {name} #{res.frame})",
                time=items[0][1].time, culprit=_culprit(name), measured=round(lat, 3),
                limit=self.p["limit_s"], unit="s",
                evidence={"expected": f"{name} ≤ {ms(self.p['limit_s'])} after {q.name}",
                          "actual": [{"request": a.frame, "response": b.frame, "latency_s": round(c, 3),
                                      "requests": k} for a, b, c, k in items[:5]]})


class SlacSoundingStartLate(_SlacRule):
    """The EV started sounding later than TT_match_sequence after CM_SLAC_PARM.CNF.

    What it checks: the first CM_START_ATTEN_CHAR.IND of a run follows the run's last
    CM_SLAC_PARM.CNF within ``limit_s`` (TT_match_sequence = 400 ms).
    Why it matters: the EVSE waits TT_match_sequence for the next message and then abandons
    the run; pyPLC saw Supercharger and Compleo refuse an EV that waited ~250 ms (the
    performance time TP_match_sequence is 0–100 ms).
    Fix (EVCC): send CM_START_ATTEN_CHAR.IND within TP_match_sequence (≤ 100 ms).
    Source: ISO 15118-3 Table A.1 TT_match_sequence = 400 ms, TP_match_sequence;
    PROTOCOL_FACTS §2.4 (E-SLAC, PYSLAC, TENV, MSTAR, PYPLC).

    Example:

        #3 CM_SLAC_PARM.REQ → #4 CM_SLAC_PARM.CNF (+0.030 s)
        #5 CM_START_ATTEN_CHAR.IND (+0.500 s)
    """

    code = "SLC009"
    title = "Sounding started later than TT_match_sequence"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-3 Table A.1 TT_match_sequence"
    params = {"limit_s": _STD["TT_match_sequence"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        for r in v.runs:
            if not r.has(START) or not r.has(PARM_CNF):
                continue
            s = r.of(START)[0]
            cnfs = [c for c in r.of(PARM_CNF) if c.time <= s.time]
            if not cnfs:
                continue
            c = cnfs[-1]
            gap = s.time - c.time
            if gap > self.p["limit_s"]:
                yield self.finding(
                    session, [c.frame, s.frame],
                    f"CM_START_ATTEN_CHAR.IND #{s.frame} came {ms(gap)} after CM_SLAC_PARM.CNF "
                    f"#{c.frame} (TT_match_sequence {ms(self.p['limit_s'])})",
                    time=s.time, measured=round(gap, 3), limit=self.p["limit_s"], unit="s",
                    evidence={"expected": f"≤ {ms(self.p['limit_s'])}", "actual": ms(gap),
                              "run": r.run_id})


class SlacBatchInterval(_SlacRule):
    """Gaps between the EV's sounding messages outside TP_EV_batch_msg_interval.

    What it checks: consecutive CM_START_ATTEN_CHAR.IND and consecutive CM_MNBC_SOUND.IND of
    a run are ``min_s``–``max_s`` apart (TP_EV_batch_msg_interval = 20–50 ms), with
    ``tolerance_s`` for capture time-stamp jitter.
    Why it matters: the EVSE collects sounds only within TT_EVSE_match_MNBC; an EV that
    pauses sounds into the EVSE's window expiry (fewer sounds measured, SLC012), an EV that
    bursts may overrun the EVSE's modem.
    Fix (EVCC): send the batch at 20–50 ms intervals.
    Source: ISO 15118-3 Table A.1 TP_EV_batch_msg_interval; PROTOCOL_FACTS §2.4 (E-SLAC
    40/20 ms, TENV 30 ms, PYSLAC, MSTAR).

    Example:

        #5 CM_START_ATTEN_CHAR.IND RunID=dfc658aaaa990a88
        #6 CM_START_ATTEN_CHAR.IND RunID=dfc658aaaa990a88 (+0.070 s)
    """

    code = "SLC010"
    title = "Sounding interval outside TP_EV_batch_msg_interval"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-3 Table A.1 TP_EV_batch_msg_interval"
    params = {"min_s": SLAC_TIMERS["TP_EV_batch_msg_interval"].minimum,
              "max_s": _STD["TP_EV_batch_msg_interval"], "tolerance_s": 0.005}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        lo = self.p["min_s"] - self.p["tolerance_s"]
        hi = self.p["max_s"] + self.p["tolerance_s"]
        for r in v.runs:
            for name in (START, MNBC):
                evs = r.of(name)
                bad = [(a, b, b.time - a.time) for a, b in zip(evs, evs[1:])
                       if not lo <= b.time - a.time <= hi]
                if not bad:
                    continue
                a, b, g = max(bad, key=lambda x: abs(x[2] - (lo + hi) / 2))
                yield self.finding(
                    session, [bad[0][0].frame, bad[0][1].frame, a.frame, b.frame],
                    f"{len(bad)} gap(s) between {name} outside {ms(self.p['min_s'])}–"
                    f"{ms(self.p['max_s'])} in {r.label}: worst {ms(g)} (#{a.frame} → #{b.frame})",
                    time=bad[0][1].time, measured=round(g, 4),
                    limit=[self.p["min_s"], self.p["max_s"]], unit="s",
                    evidence={"expected": f"{ms(self.p['min_s'])}–{ms(self.p['max_s'])}",
                              "actual": [{"from": x.frame, "to": y.frame, "gap_s": round(z, 4)}
                                         for x, y, z in bad[:5]], "count": len(bad)})


class SlacSoundingBeyondWindow(_SlacRule):
    """Sounds fell outside the EVSE's collection window (TT_EVSE_match_MNBC).

    What it checks: the EVSE collects sounds for the CNF's Time_Out × 100 ms (default
    ``window_s`` = TT_EVSE_match_MNBC = 600 ms) from the first CM_START_ATTEN_CHAR.IND. EV:
    CM_MNBC_SOUND.IND sent after the window closed; EVSE: CM_ATTEN_CHAR.IND sent before the
    window closed while the EV was still sounding (``tolerance_s`` for jitter).
    Why it matters: sounds outside the window are not averaged: the EVSE reports fewer sounds
    (SLC012) and a less reliable attenuation, or the EV treats the early report as complete.
    Fix: EVCC: send all sounds promptly (TP_EV_batch_msg_interval); SECC: keep collecting
    for the full Time_Out it announced.
    Source: ISO 15118-3 Table A.1 TT_EVSE_match_MNBC = 600 ms (CNF Time_Out = 6);
    PROTOCOL_FACTS §2.4 (E-SLAC, PYSLAC, TENV, MSTAR).

    Example:

        #5 CM_START_ATTEN_CHAR.IND RunID=dfc658aaaa990a88
        #20 CM_MNBC_SOUND.IND RunID=dfc658aaaa990a88 (+0.630 s)
        #26 CM_MNBC_SOUND.IND RunID=dfc658aaaa990a88 (+0.210 s)
    """

    code = "SLC011"
    title = "Sounding outside TT_EVSE_match_MNBC"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-3 Table A.1 TT_EVSE_match_MNBC"
    params = {"window_s": _STD["TT_EVSE_match_MNBC"], "tolerance_s": 0.01}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        tol = self.p["tolerance_s"]
        for r in v.runs:
            if not r.has(START) or not r.has(MNBC):
                continue
            t0 = r.of(START)[0]
            win = r.window_s(self.p["window_s"])
            end = t0.time + win
            sounds = r.of(MNBC)
            late = [s for s in sounds if s.time > end + tol]
            inds = r.of(IND)
            early = [i for i in inds if i.time < end - tol and any(s.time > i.time for s in sounds)]
            if late:
                yield self.finding(
                    session, [t0.frame, late[0].frame, late[-1].frame],
                    f"{len(late)} of {len(sounds)} CM_MNBC_SOUND.IND in {r.label} came after the "
                    f"EVSE's {ms(win)} sound window closed (first START_ATTEN_CHAR #{t0.frame}; "
                    f"last sound {ms(late[-1].time - t0.time)} after it)",
                    time=late[0].time, measured=round(late[-1].time - t0.time, 3), limit=win,
                    unit="s", evidence={"expected": f"all sounds within {ms(win)}",
                                        "actual": f"{len(late)} later", "run": r.run_id})
            for i in early[:1]:
                after = [s for s in sounds if s.time > i.time]
                yield self.finding(
                    session, [t0.frame, i.frame, after[0].frame],
                    f"{i.src} sent CM_ATTEN_CHAR.IND #{i.frame} {ms(i.time - t0.time)} after the first "
                    f"START_ATTEN_CHAR, before its {ms(win)} window closed, while "
                    f"{len(after)} sound(s) were still coming",
                    time=i.time, culprit="SECC", measured=round(i.time - t0.time, 3), limit=win,
                    unit="s", evidence={"expected": f"CM_ATTEN_CHAR.IND after {ms(win)} or after all sounds",
                                        "actual": ms(i.time - t0.time), "run": r.run_id})


class SlacTooFewSounds(_SlacRule):
    """Fewer sounds than announced.

    What it checks: the EV sends 3 CM_START_ATTEN_CHAR.IND (C_EV_start_atten_char_inds) and
    as many CM_MNBC_SOUND.IND as NUM_SOUNDS announced; the EVSE's CM_ATTEN_CHAR.IND reports
    NUM_SOUNDS equal to the announced number. A shortfall is blamed on the EV when it sent
    fewer sounds or sent them after the EVSE's window, on the link when every sound was
    sent in time but the EVSE counted fewer.
    Why it matters: the attenuation profile averages the received sounds; with fewer the
    EV's choice of charger is less reliable, with none it cannot match.
    Fix: EVCC: send all sounds in time; link: check the coupling / noise on the CP line.
    Source: ISO 15118-3 Annex A C_EV_match_MNBC = 10, C_EV_start_atten_char_inds = 3;
    PROTOCOL_FACTS §2.3 rows 3, 4, 6, §2.7.

    Example:

        #8 CM_MNBC_SOUND.IND
        #21 CM_MNBC_SOUND.IND
        #22 CM_ATTEN_CHAR.IND NUM_SOUNDS=4
    """

    code = "SLC012"
    title = "Fewer SLAC sounds than announced"
    severity = "warning"
    explains = ("slac-failed",)
    culprit = "EVCC"
    requirement = "ISO 15118-3 C_EV_match_MNBC, C_EV_start_atten_char_inds"
    params = {"start_atten_char_inds": _STD["C_EV_start_atten_char_inds"],
              "window_s": _STD["TT_EVSE_match_MNBC"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        for r in v.runs:
            sounding_over = r.stage >= 4 or (r.has(MNBC) and v.waited_after(r.events[-1].time) > 1.2)
            if not sounding_over:
                continue
            announced = r.announced_sounds()
            starts, sounds = r.of(START), r.of(MNBC)
            if r.has(MNBC) or r.has(START):
                if 0 < len(starts) < self.p["start_atten_char_inds"]:
                    yield self.finding(
                        session, [starts[0].frame, starts[-1].frame],
                        f"{len(starts)} CM_START_ATTEN_CHAR.IND in {r.label} (frames "
                        f"{starts[0].frame}-{starts[-1].frame}); {self.p['start_atten_char_inds']} required",
                        time=starts[0].time, measured=len(starts),
                        limit=self.p["start_atten_char_inds"],
                        evidence={"expected": self.p["start_atten_char_inds"], "actual": len(starts)})
                if announced and len(sounds) < announced:
                    fr = [sounds[0].frame, sounds[-1].frame] if sounds else [starts[-1].frame]
                    yield self.finding(
                        session, fr,
                        f"the EV sent {len(sounds)} CM_MNBC_SOUND.IND in {r.label}, {announced} announced",
                        time=(sounds or starts)[0].time, measured=len(sounds), limit=announced,
                        evidence={"expected": announced, "actual": len(sounds)})
            for i in r.of(IND):
                n = fields(i).get("NUM_SOUNDS")
                if not isinstance(n, int) or not announced or n >= announced:
                    continue
                t0 = starts[0].time if starts else None
                win = r.window_s(self.p["window_s"])
                in_time = [s for s in sounds if t0 is None or s.time <= t0 + win + 0.01]
                before = [s for s in sounds if s.time <= i.time]
                if len(sounds) < announced or len(in_time) < announced or len(before) < announced:
                    culprit = "EVCC"
                    why = (f"the EV had sent {len(before)} sound(s) by then, {len(in_time)} within the "
                           f"{ms(win)} window")
                else:
                    culprit = "link"
                    why = f"all {len(sounds)} sounds were sent in time: sounds lost on the line"
                yield self.finding(
                    session, [i.frame] + ([sounds[0].frame, sounds[-1].frame] if sounds else []),
                    f"CM_ATTEN_CHAR.IND #{i.frame} from {i.src} averages {n} of {announced} sounds: {why}",
                    time=i.time, culprit=culprit, measured=n, limit=announced,
                    evidence={"expected": {"NUM_SOUNDS": announced}, "actual": {"NUM_SOUNDS": n},
                              "sounds_sent": len(sounds), "sent_before_ind": len(before)},
                    values=[judged(i, "NUM_SOUNDS", n, expected=announced)])
                break


class SlacAttenResultsLate(_SlacRule):
    """CM_ATTEN_CHAR.IND came later than TT_EV_atten_results.

    What it checks: the first CM_ATTEN_CHAR.IND of each EVSE arrives within ``limit_s``
    (TT_EV_atten_results = 1200 ms) of the EV's first CM_START_ATTEN_CHAR.IND.
    Why it matters: the EV evaluates the attenuation results it has when TT_EV_atten_results
    expires; a later report is ignored (the EVSE is not considered, or the run fails).
    Fix (SECC): send CM_ATTEN_CHAR.IND right after the TT_EVSE_match_MNBC window.
    Source: ISO 15118-3 Table A.1 TT_EV_atten_results = 1200 ms; PROTOCOL_FACTS §2.4
    (E-SLAC, PYSLAC, TENV, MSTAR).

    Example:

        #5 CM_START_ATTEN_CHAR.IND
        #28 CM_ATTEN_CHAR.IND (+1.500 s)
    """

    code = "SLC013"
    title = "CM_ATTEN_CHAR.IND later than TT_EV_atten_results"
    severity = "warning"
    explains = ("slac-failed",)
    culprit = "SECC"
    requirement = "ISO 15118-3 Table A.1 TT_EV_atten_results"
    params = {"limit_s": _STD["TT_EV_atten_results"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if v.partial:
            return
        for r in v.runs:
            if not r.has(START):
                continue
            t0 = r.of(START)[0]
            firsts: dict = {}
            for i in r.of(IND):
                firsts.setdefault(i.src, i)
            for src, i in firsts.items():
                d = i.time - t0.time
                if d > self.p["limit_s"]:
                    yield self.finding(
                        session, [t0.frame, i.frame],
                        f"CM_ATTEN_CHAR.IND #{i.frame} from {src} came {ms(d)} after the first "
                        f"CM_START_ATTEN_CHAR.IND #{t0.frame} (TT_EV_atten_results {ms(self.p['limit_s'])})",
                        time=i.time, measured=round(d, 3), limit=self.p["limit_s"], unit="s",
                        evidence={"expected": f"≤ {ms(self.p['limit_s'])}", "actual": ms(d),
                                  "run": r.run_id})
