"""SLAC rules on the order and content of a matching run's messages: SLC001-SLC007, SLC019."""
from __future__ import annotations

from collections import Counter

from ccs_analyzer.analyzer.views.slac import (EVSE_SENDS, IND, MATCH_CNF, MATCH_REQ, MNBC, PARM_CNF,
                                              PARM_REQ, RSP, STAGE, START, SlacRun, SlacView,
                                              evse_reset, fields, slac_view)

from ..base import judged
from ..helpers import ms
from .common import _STD, _SlacRule, _culprit


def _runid_mismatches(run: SlacRun) -> list:
    """Events of the run whose RunID differs from the EV's (the run's)."""
    if not run.run_id:
        return []
    return [e for e in run.events if fields(e).get("RunID") not in (None, run.run_id)]


class SlacIncomplete(_SlacRule):
    """SLAC did not complete (no CM_SLAC_MATCH.CNF).

    What it checks: a session that began SLAC reaches CM_SLAC_MATCH.CNF
    (CM_SLAC_PARM.REQ → .CNF → CM_START_ATTEN_CHAR.IND ×3 → CM_MNBC_SOUND.IND ×N →
    CM_ATTEN_CHAR.IND → .RSP → [CM_VALIDATE] → CM_SLAC_MATCH.REQ → .CNF). It names the
    message after which the sequence stopped and the side that owed the next message: no
    CNF → EVSE; no sounding after the CNF → EV; no CM_ATTEN_CHAR.IND → EVSE; no RSP or no
    MATCH.REQ → EV (or the link, when the attenuation was above the limit); no MATCH.CNF →
    EVSE. The timer of the pending step runs from the first message still waiting for its
    answer: the first of the unanswered CM_SLAC_PARM.REQ (TT_match_response, 200 ms, each),
    the first CM_START_ATTEN_CHAR.IND (TT_EV_atten_results, 1200 ms), else the last message.
    When the capture ends before that timer ran out (and no earlier attempt stalled at the
    same step) the finding is an info blaming nobody (culprit capture).
    An EVSE that re-keys its own modem during the run (a CM_SET_KEY.REQ of its host that
    re-sets a key it had set before: its SLAC state machine was reset and its modem restarts)
    ends the run at once, whatever the timer: the finding names the re-key; the culprit is
    unknown unless the EVSE never answered at all (an unplug — CP state A — makes the EVSE
    reset and the EV stop, and the traffic cannot show it).
    An earlier attempt inside a session that later went on is reported too when it is an
    abandoned burst of CM_SLAC_PARM.REQ that no EVSE answered and after which the EV paused
    longer than TT_matching_repetition (10 s) before trying again, while a later EVSE
    message shows that the capture does see the EVSE (culprit SECC, a warning: the session
    recovered); so are the EV's retries during or after its session that no EVSE answered
    (``Session.retries``: a warning on the SECC, which did not take up a new matching).
    Sessions whose SLAC is only partly captured are left to SLC002 / CAP003.
    Why it matters: without a match the EV and the EVSE never share a logical network: no
    SDP, no charging.
    Fix: the side named: answer CM_SLAC_PARM.REQ within TT_match_response (EVSE — is its
    SLAC active as soon as the EV is plugged in?); start sounding within TT_match_sequence
    after a valid CNF (EV) — and check the CNF's RunID and parameters (SLC003, SLC004), which
    a conformant EV rejects when wrong.
    Source: ISO 15118-3 §9 and Annex A (matching sequence, Table A.1 timers TT_match_response,
    TT_match_sequence, TT_EV_atten_results, TT_EVSE_match_session, [V2G3-A09-125]
    TT_matching_repetition); PROTOCOL_FACTS §2.3, §2.4, §2.7.

    Example:

        #3 CM_SLAC_PARM.REQ → #4 CM_SLAC_PARM.CNF
        #7 CM_SLAC_PARM.REQ → #8 CM_SLAC_PARM.CNF
    """

    code = "SLC001"
    title = "SLAC matching did not complete"
    severity = "error"
    kinds = ("slac-failed",)
    explains = ("slac-failed",)
    culprit = "unknown"
    requirement = "ISO 15118-3 Annex A matching sequence"
    params = {"tt_match_response_s": _STD["TT_match_response"],
              "tt_match_sequence_s": _STD["TT_match_sequence"],
              "tt_ev_atten_results_s": _STD["TT_EV_atten_results"],
              "tt_evse_match_session_s": _STD["TT_EVSE_match_session"],
              "attenuation_limit_db": _STD["SLAC_LIMIT"],
              "tt_matching_repetition_s": _STD["TT_matching_repetition"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if not v.runs or v.one_sided is not None:
            return
        yield from self._abandoned_attempts(session, v)
        yield from self._unanswered_retries(session, v)
        if v.matched or v.progressed or v.partial:
            return
        yield from self._stalled(session, v, ctx)

    def _unanswered_retries(self, session, v: SlacView):
        """Bursts of CM_SLAC_PARM.REQ the EV retried during or after its session that no
        EVSE answered (``Session.retries``, analyzer/sessions.py): the session's own SLAC is
        not judged by them (the rule's page)."""
        retry = {id(e) for e in getattr(session, "retries", ())}
        reqs = [e for e in v.events if e.name == PARM_REQ and id(e) in retry]
        limit = self.p["tt_matching_repetition_s"]
        bursts: list = []
        for e in reqs:
            if bursts and e.time - bursts[-1][-1].time <= limit:
                bursts[-1].append(e)
            else:
                bursts.append([e])
        own_end = getattr(session, "own_end_frame", None)
        for burst in bursts:
            first, last = burst[0], burst[-1]
            if v.waited_after(first.time) < self.p["tt_match_response_s"]:
                continue            # the capture ended before the first answer was due
            when = (f"after the session's own end (frame {own_end})"
                    if own_end is not None and first.frame > own_end else "during the session")
            yield self.finding(
                session, [first.frame, last.frame],
                f"No EVSE answered the {len(burst)} CM_SLAC_PARM.REQ the EV retried {when} "
                f"(frames {first.frame}-{last.frame}, RunID {fields(first).get('RunID') or '?'}, "
                f"{last.time - first.time:.1f} s): the EVSE did not take up a new matching",
                time=first.time, culprit="SECC", severity="warning", measured=len(burst),
                evidence={"expected": f"CM_SLAC_PARM.CNF within {ms(self.p['tt_match_response_s'])}",
                          "actual": f"{len(burst)} CM_SLAC_PARM.REQ unanswered",
                          "requests": [x.frame for x in burst], "retries_of": session.id})

    def _abandoned_attempts(self, session, v: SlacView):
        """Bursts of CM_SLAC_PARM.REQ no EVSE answered, after which the EV paused longer than
        TT_matching_repetition and tried again (the rule's page)."""
        evs = v.events
        limit = self.p["tt_matching_repetition_s"]
        burst: list = []
        for i, e in enumerate(evs):
            if e.name in EVSE_SENDS:
                burst = []
                continue
            if e.name != PARM_REQ:
                burst = []
                continue
            burst.append(e)
            nxt = evs[i + 1] if i + 1 < len(evs) else None
            if nxt is None or nxt.time - e.time <= limit:
                continue
            later = next((x for x in evs[i + 1:] if x.name in EVSE_SENDS), None)
            if later is None:
                burst = []
                continue            # never any EVSE message after: the main check's case
            first = burst[0]
            rid = fields(first).get("RunID")
            yield self.finding(
                session, [first.frame, e.frame, nxt.frame, later.frame],
                f"No EVSE answered the {len(burst)} CM_SLAC_PARM.REQ of frames {first.frame}-{e.frame} "
                f"(RunID {rid or '?'}, {e.time - first.time:.1f} s; TT_match_response "
                f"{ms(self.p['tt_match_response_s'])} each): the EV gave up and tried again "
                f"{nxt.time - e.time:.1f} s later (frame {nxt.frame}); the EVSE answered only then "
                f"({later.name} #{later.frame})",
                time=first.time, culprit="SECC", severity="warning", measured=len(burst),
                evidence={"expected": f"CM_SLAC_PARM.CNF within {ms(self.p['tt_match_response_s'])}",
                          "actual": f"{len(burst)} CM_SLAC_PARM.REQ unanswered",
                          "requests": [x.frame for x in burst], "restart_frame": nxt.frame,
                          "pause_s": round(nxt.time - e.time, 3), "first_answer": later.frame})
            burst = []

    def _stalled(self, session, v: SlacView, ctx):
        """The session's SLAC stopped short of a match (the rule's page)."""
        p = self.p
        last_run = v.runs[-1]
        stage = last_run.stage
        stop = [e for e in last_run.events if STAGE[e.name] == stage][-1]
        names = [e.name for e in v.events]
        n_req = names.count(PARM_REQ)
        attn = [fields(e).get("AAG_mean_dB") for e in last_run.of(IND)]
        attn = [a for a in attn if isinstance(a, (int, float))]
        high = bool(attn) and min(attn) > p["attenuation_limit_db"]
        since = v.events[-1]
        if stage == 0:
            culprit, why, timer = "SECC", "no CM_SLAC_PARM.CNF: the EVSE never answered", \
                p["tt_match_response_s"]
            since = last_run.of(PARM_REQ)[0] if last_run.of(PARM_REQ) else since
        elif stage == 1:
            culprit, timer = "EVCC", p["tt_match_sequence_s"]
            why = "the EV never started sounding (no CM_START_ATTEN_CHAR.IND) after CM_SLAC_PARM.CNF"
            bad = [e for r in v.runs for e in _runid_mismatches(r) if e.name == PARM_CNF]
            if bad:
                got = sorted({fields(e).get("RunID") for e in bad})
                want = sorted({r.run_id for r in v.runs if r.run_id})
                why += (f"; {len(bad)} of {names.count(PARM_CNF)} CM_SLAC_PARM.CNF carried RunID "
                        f"{', '.join(got)} instead of the EV's {', '.join(want)} (SLC003) — a "
                        "conformant EV discards such a confirmation and retries")
            off = _off_nominal(last_run.of(PARM_CNF)[-1], {"NUM_SOUNDS": 10, "Time_Out": 6,
                                                           "RESP_TYPE": 1}) if last_run.of(PARM_CNF) else {}
            if off:
                why += "; the CNF's " + ", ".join(f"{k}={a}" for k, (a, _) in off.items()) + \
                    " are off nominal (SLC004)"
        elif stage in (2, 3):
            culprit, why, timer = "SECC", ("the EV sounded but no CM_ATTEN_CHAR.IND came from the "
                                           "EVSE"), p["tt_ev_atten_results_s"]
            since = last_run.of(START)[0] if last_run.of(START) else since
        elif stage == 4:
            culprit, timer = ("link" if high else "EVCC"), p["tt_match_response_s"]
            why = "the EV did not acknowledge CM_ATTEN_CHAR.IND (no CM_ATTEN_CHAR.RSP)"
        elif stage in (5, 6):
            culprit, timer = ("link" if high else "EVCC"), p["tt_evse_match_session_s"]
            why = "the EV did not request a match (no CM_SLAC_MATCH.REQ) after CM_ATTEN_CHAR"
        else:
            culprit, why, timer = "SECC", "CM_SLAC_MATCH.REQ was not confirmed (no CM_SLAC_MATCH.CNF)", \
                p["tt_match_response_s"]
        if high and stage >= 4:
            why += f" — the average attenuation {min(attn):.1f} dB exceeds {p['attenuation_limit_db']:g} dB"
        waited = v.waited_after(since.time)
        stalled_before = any(r.stage == stage for r in v.runs[:-1]) or (
            stage == 1 and any(a.name == PARM_CNF and b.name == PARM_REQ
                               for a, b in zip(last_run.events, last_run.events[1:])))
        reset = evse_reset(v, session, ctx, after=v.events[-1].time)
        evidence = {"expected": "CM_SLAC_MATCH.CNF", "actual": f"stopped after {stop.name}",
                    "stopped_after": {"message": stop.name, "frame": stop.frame},
                    "messages": dict(Counter(names)), "runs": [r.run_id for r in v.runs],
                    "waited_s": round(waited, 3) if waited != float("inf") else None,
                    "timer_s": timer}
        frames = [v.events[0].frame, stop.frame, v.events[-1].frame]
        if reset is not None:
            evidence["evse_reset"] = {"frame": reset.frame, "NID": fields(reset).get("NID")}
            frames.append(reset.frame)
            dt = reset.time - v.events[-1].time
            sounds = len(last_run.of(MNBC))
            announced = last_run.announced_sounds()
            if stage in (2, 3) and announced and sounds < announced:
                what = f"the EV's sounding stopped after {sounds} of {announced} CM_MNBC_SOUND.IND"
            else:
                what = f"SLAC stopped after {stop.name} (frame {stop.frame})"
            if stage == 0:
                tail = (f"{why}; the EVSE then re-keyed its modem (CM_SET_KEY.REQ #{reset.frame}, "
                        f"{dt:.2f} s later): its SLAC was reset")
            else:
                culprit = "unknown"
                tail = (f"{what} and the EVSE re-keyed its modem {dt:.2f} s later (CM_SET_KEY.REQ "
                        f"#{reset.frame}): it abandoned the run — its SLAC state machine was reset "
                        "(an unplug, CP state A, would explain both and is not visible in the traffic)")
            yield self.finding(
                session, frames,
                f"SLAC did not complete: {tail}; {n_req} CM_SLAC_PARM.REQ sent in {len(v.runs)} run(s)",
                time=stop.time, culprit=culprit, evidence=evidence)
            return
        if waited < timer and not stalled_before:
            yield self.finding(
                session, frames,
                f"Capture ended {ms(waited)} after {since.name} (frame {since.frame}), before the "
                f"{ms(timer)} the next SLAC step may take: SLAC cut by the end of the capture",
                time=stop.time, culprit="capture", severity="info", measured=round(waited, 3),
                limit=timer, unit="s", evidence=evidence)
            return
        yield self.finding(
            session, frames,
            f"SLAC stopped after {stop.name} (frame {stop.frame}): {why}; {n_req} "
            f"CM_SLAC_PARM.REQ sent in {len(v.runs)} run(s)"
            + ((f"; nothing more in the {waited:.1f} s the capture went on" if since is v.events[-1]
                else f"; no answer in the {waited:.1f} s the capture went on after the first "
                     f"{since.name} (frame {since.frame})") if waited != float("inf") else ""),
            time=stop.time, culprit=culprit, evidence=evidence)


class SlacPartlyCaptured(_SlacRule):
    """SLAC messages are missing from the capture although both sides are visible.

    What it checks: messages that answer another prove the other was sent (module
    docstring): a CM_SLAC_PARM.CNF without CM_SLAC_PARM.REQ, a CM_ATTEN_CHAR.IND with sounds
    but no sounding, CM_SLAC_MATCH.CNF without .REQ, SDP / TCP traffic without any match.
    A capture that shows only one side's SLAC at all is CAP003's (capture quality) to
    report; the SLAC rules detect it the same way and stay silent.
    Why it matters: a sniffer that drops frames, forwards only some of them, or started
    late shows the matching in part; the timing and sequence checks then cannot be made,
    and a missing message is not the EV's or the EVSE's fault.
    Fix (capture): capture at a point that sees both directions without loss (a modem in
    the EV's AVLN that forwards unicast frames); start capturing before plug-in.
    Source: ISO 15118-3 Annex A (each confirmation / indication answers a message);
    pyPLC doc/sniffing_experiments.md (listen mode sees only part of SLAC).

    Example:

        #1 CM_SLAC_PARM.CNF
        #27 CM_SLAC_MATCH.REQ → #28 CM_SLAC_MATCH.CNF
    """

    code = "SLC002"
    title = "SLAC messages missing from the capture"
    severity = "info"
    culprit = "capture"
    failure_modes = ()

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if not v.runs or not v.missing or v.one_sided is not None:
            return
        seen = Counter(e.name for e in v.events)
        lacking = list(dict.fromkeys(name for name, _ in v.missing))
        proofs = list(dict.fromkeys((p.name, p.frame) for _, p in v.missing))
        syn = (f"SLAC only partly captured: {', '.join(lacking)} must have been sent (proved by "
               f"{', '.join(f'{n} #{f}' for n, f in proofs[:4])}) but are not in the capture — "
               "SLAC timing and sequence checks skipped")
        frames = [v.events[0].frame, v.events[-1].frame] + [f for _, f in proofs[:4]]
        yield self.finding(session, frames, syn, time=v.events[0].time,
                           evidence={"expected": "every message of the SLAC sequence",
                                     "actual": dict(seen), "missing": lacking})


class SlacRunIdMismatch(_SlacRule):
    """A SLAC message carries another RunID than the EV's CM_SLAC_PARM.REQ.

    What it checks: every message of a matching run (CM_SLAC_PARM.CNF,
    CM_START_ATTEN_CHAR.IND, CM_MNBC_SOUND.IND, CM_ATTEN_CHAR.IND/.RSP, CM_SLAC_MATCH.REQ/.CNF)
    echoes the RunID the EV chose in its CM_SLAC_PARM.REQ.
    Why it matters: the RunID ties the messages of one matching run together; a receiver
    discards messages of another run, so an EVSE that does not echo the RunID is never
    answered (the EV retries CM_SLAC_PARM.REQ and gives up).
    Fix: the sender named: copy the RunID of the received CM_SLAC_PARM.REQ into every
    message of the run (an EVSE must not assume the "MAC + 0000" RunID some EVs use).
    Source: ISO 15118-3 Annex A (RunID, 8 octets, identical in every message of one
    matching run); PROTOCOL_FACTS §2.1, §2.3 ("RunID echoed"), §2.7.

    Example:

        #3 CM_SLAC_PARM.REQ RunID=dfc658aaaa990a88 → #4 CM_SLAC_PARM.CNF RunID=dfc658aaaa990a88
        #28 CM_ATTEN_CHAR.IND RunID=b4c7ab4b43c4745f
    """

    code = "SLC003"
    title = "SLAC RunID not echoed"
    severity = "error"
    explains = ("slac-failed",)
    culprit = "unknown"
    requirement = "ISO 15118-3 Annex A RunID (identical in all messages of a run)"

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        groups: dict = {}
        for r in v.runs:
            for e in _runid_mismatches(r):
                groups.setdefault((e.name, e.src), []).append((r, e))
        for (name, src), items in groups.items():
            first_r, first = items[0]
            last = items[-1][1]
            got = sorted({fields(e).get("RunID") for _, e in items})
            want = sorted({r.run_id for r, _ in items})
            runs = list({id(r): r for r, _ in items}.values())
            reqs = [r.of(PARM_REQ)[0].frame for r in runs if r.of(PARM_REQ)]
            n_all = sum(len(r.of(name)) for r in runs)
            who = "the EVSE" if name in EVSE_SENDS else "the EV"
            yield self.finding(
                session, [first.frame, last.frame] + reqs[:4],
                f"{len(items)} of {n_all} {name} from {who} ({src}, frames {first.frame}-{last.frame}) "
                f"carry RunID {', '.join(got)} instead of the EV's {', '.join(want)} "
                f"(CM_SLAC_PARM.REQ {', '.join(f'#{x}' for x in reqs) or '?'}): the receiver discards them",
                time=first.time, culprit=_culprit(name), measured=got[0], limit=want[0],
                evidence={"expected": {"RunID": want}, "actual": {"RunID": got},
                          "message": name, "sender": src, "count": len(items)},
                values=[judged(x, "RunID", expected=want[0]) for x in (first, last)])


def _off_nominal(e, nominal: dict) -> dict:
    f = fields(e)
    return {k: (f.get(k), want) for k, want in nominal.items()
            if f.get(k) is not None and f.get(k) != want}


class SlacParmCnfOffNominal(_SlacRule):
    """CM_SLAC_PARM.CNF parameters are off nominal.

    What it checks: the EVSE's CM_SLAC_PARM.CNF asks for NUM_SOUNDS = ``num_sounds`` (10,
    C_EV_match_MNBC), Time_Out = ``time_out_100ms`` (in units of 100 ms as the field: 6 =
    600 ms = TT_EVSE_match_MNBC) and RESP_TYPE = ``resp_type`` (1, "other GP station");
    M-SOUND_TARGET should be the broadcast address.
    Why it matters: EVs are built and tested against the nominal values; pyPLC saw chargers
    and cars refuse a peer whose values differ (Compleo ignored a Time_Out of 1000 ms), so a
    deviation can explain an EV that stops after the CNF.
    Fix (SECC): send NUM_SOUNDS 10, Time_Out 6, RESP_TYPE 1, M-SOUND_TARGET FF:FF:FF:FF:FF:FF.
    Source: ISO 15118-3 Annex A (C_EV_match_MNBC, TT_EVSE_match_MNBC); PROTOCOL_FACTS
    §2.3 row 2, §2.7 (E-SLAC, OPU, PYPLC).

    Example:

        #3 CM_SLAC_PARM.REQ → #4 CM_SLAC_PARM.CNF Time_Out=10
    """

    code = "SLC004"
    title = "CM_SLAC_PARM.CNF parameters off nominal"
    severity = "warning"
    culprit = "SECC"
    requirement = "ISO 15118-3 Annex A CM_SLAC_PARM.CNF (NUM_SOUNDS, Time_Out, RESP_TYPE)"
    params = {"num_sounds": _STD["C_EV_match_MNBC"], "time_out_100ms": _STD["TIME_OUT"],
              "resp_type": _STD["RESP_TYPE"]}
    renamed_params = {"time_out": "time_out_100ms"}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        nominal = {"NUM_SOUNDS": self.p["num_sounds"], "Time_Out": self.p["time_out_100ms"],
                   "RESP_TYPE": self.p["resp_type"]}
        groups: dict = {}
        for e in (e for r in v.runs for e in r.of(PARM_CNF)):
            off = _off_nominal(e, nominal)
            tgt = fields(e).get("M-SOUND_TARGET")
            if tgt and tgt != "ff:ff:ff:ff:ff:ff":
                off["M-SOUND_TARGET"] = (tgt, "ff:ff:ff:ff:ff:ff")
            if off:
                groups.setdefault((e.src, tuple(sorted(off.items()))), []).append(e)
        for (src, off), evs in groups.items():
            txt = ", ".join(f"{k}={a} (nominal {b})" for k, (a, b) in off)
            yield self.finding(
                session, [evs[0].frame, evs[-1].frame],
                f"{len(evs)} CM_SLAC_PARM.CNF from {src} (frames {evs[0].frame}-{evs[-1].frame}) "
                f"ask for {txt}: EVs may refuse the matching",
                time=evs[0].time,
                evidence={"expected": {k: b for k, (_, b) in off},
                          "actual": {k: a for k, (a, _) in off}, "count": len(evs)},
                values=[judged(x, k, a, expected=b) for x in (evs[0], evs[-1]) for k, (a, b) in off])


class SlacStartAttenMismatch(_SlacRule):
    """The EV's CM_START_ATTEN_CHAR.IND does not repeat the CNF's parameters.

    What it checks: NUM_SOUNDS, Time_Out, RESP_TYPE and FORWARDING_STA of each
    CM_START_ATTEN_CHAR.IND equal those of the CM_SLAC_PARM.CNF the EV received.
    Why it matters: the EVSE collects sounds for the Time_Out it announced and expects the
    number of sounds it asked for; an EV that announces other values sounds longer or
    shorter than the EVSE listens (pyPLC's early EV code sent Time_Out 10 = 1000 ms).
    Fix (EVCC): copy NUM_SOUNDS, Time_Out and RESP_TYPE from CM_SLAC_PARM.CNF.
    Source: ISO 15118-3 Annex A (CM_START_ATTEN_CHAR.IND parameters "as in
    CM_SLAC_PARM.CNF"); PROTOCOL_FACTS §2.3 row 3 (E-SLAC, E-SLAC-EV, PYPLC).

    Example:

        #3 CM_SLAC_PARM.REQ → #4 CM_SLAC_PARM.CNF Time_Out=6
        #5 CM_START_ATTEN_CHAR.IND Time_Out=10
        #7 CM_START_ATTEN_CHAR.IND Time_Out=10
    """

    code = "SLC005"
    title = "CM_START_ATTEN_CHAR.IND parameters differ from CM_SLAC_PARM.CNF"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-3 Annex A CM_START_ATTEN_CHAR.IND parameters"

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        for r in v.runs:
            if not r.has(PARM_CNF) or not r.has(START):
                continue
            cnf = fields(r.of(PARM_CNF)[-1])
            diffs: dict = {}
            bad = []
            for e in r.of(START):
                f = fields(e)
                d = {k: (f.get(k), cnf.get(k)) for k in ("NUM_SOUNDS", "Time_Out", "RESP_TYPE",
                                                          "FORWARDING_STA")
                     if f.get(k) is not None and cnf.get(k) is not None and f.get(k) != cnf.get(k)}
                if d:
                    bad.append(e)
                    diffs.update(d)
            if not bad:
                continue
            txt = ", ".join(f"{k}={a} (CNF {b})" for k, (a, b) in diffs.items())
            c = r.of(PARM_CNF)[-1]
            yield self.finding(
                session, [c.frame, bad[0].frame, bad[-1].frame],
                f"{len(bad)} CM_START_ATTEN_CHAR.IND (frames {bad[0].frame}-{bad[-1].frame}) announce "
                f"{txt} of CM_SLAC_PARM.CNF #{c.frame}",
                time=bad[0].time,
                evidence={"expected": {k: b for k, (_, b) in diffs.items()},
                          "actual": {k: a for k, (a, _) in diffs.items()}, "run": r.run_id},
                values=[judged(x, k, a, expected=b) for x in (bad[0], bad[-1]) for k, (a, b) in diffs.items()])


class SlacTooManyRetries(_SlacRule):
    """More SLAC repetitions than C_EV_match_retry allows.

    What it checks: per matching run, at most 1 + ``retries`` (C_EV_match_retry = 2)
    CM_SLAC_PARM.REQ and CM_SLAC_MATCH.REQ from the EV, and at most 1 + ``retries``
    CM_ATTEN_CHAR.IND from each EVSE before the match (the EVSE repeats it when the RSP is
    missing).
    Why it matters: repetitions beyond the limit show a peer that does not answer (or whose
    answers are discarded); an EV that keeps re-sending with the same RunID instead of
    restarting the matching after TT_matching_rate does not follow the standard, and a
    responder that needs many repetitions delays or breaks the matching.
    Fix: EVCC: after 1 + C_EV_match_retry unanswered requests fail the run and restart
    with a new RunID; SECC: answer the first request (be ready for SLAC as soon as the CP
    is in state B), acknowledge once.
    Source: ISO 15118-3 Annex A C_EV_match_retry = 2; PROTOCOL_FACTS §2.5, §2.7
    (E-SLAC, TENV, MSTAR).

    Example:

        #1 CM_SLAC_PARM.REQ RunID=dfc658aaaa990a88 → (no response)
        #8 CM_SLAC_PARM.REQ RunID=dfc658aaaa990a88 → #9 CM_SLAC_PARM.CNF RunID=dfc658aaaa990a88
    """

    code = "SLC006"
    title = "Too many SLAC repetitions"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-3 C_EV_match_retry"
    params = {"retries": _STD["C_EV_match_retry"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        limit = 1 + self.p["retries"]
        for r in v.runs:
            match_t = r.of(MATCH_REQ)[0].time if r.has(MATCH_REQ) else float("inf")
            checks = [(PARM_REQ, None, r.of(PARM_REQ)), (MATCH_REQ, None, r.of(MATCH_REQ))]
            by_evse: dict = {}
            for e in r.of(IND):
                if e.time < match_t:
                    by_evse.setdefault(e.src, []).append(e)
            checks += [(IND, src, evs) for src, evs in by_evse.items()]
            for name, src, evs in checks:
                if len(evs) <= limit:
                    continue
                answered = {PARM_REQ: PARM_CNF, MATCH_REQ: MATCH_CNF, IND: RSP}[name]
                resp = r.of(answered)
                tail = (f"; first answer {answered} #{resp[0].frame}" if resp else
                        f"; no {answered} at all")
                who = f"the EVSE {src}" if src else "the EV"
                yield self.finding(
                    session, [evs[0].frame, evs[-1].frame] + ([resp[0].frame] if resp else []),
                    f"{who} sent {len(evs)} {name} in {r.label} (frames {evs[0].frame}-{evs[-1].frame}, "
                    f"{evs[-1].time - evs[0].time:.1f} s); 1 + C_EV_match_retry = {limit} allowed{tail}",
                    time=evs[0].time, culprit=_culprit(name), measured=len(evs), limit=limit,
                    evidence={"expected": f"≤ {limit} {name} per run", "actual": len(evs),
                              "run": r.run_id, "answered_by": [e.frame for e in resp[:3]]})


class SlacRestarted(_SlacRule):
    """SLAC matching was restarted in the session.

    What it checks: the session's matching runs after the first (a new CM_SLAC_PARM.REQ with
    a new RunID, or one sent after the previous run got past CM_SLAC_PARM.CNF): which run
    failed where, and how long the EV waited before the restart — at least
    TT_matching_rate (400 ms) after the failed run; restarts are expected within
    TT_matching_repetition (10 s). An info, a warning when the EV restarts too early.
    Why it matters: restarts cost time and show a matching problem (RunID, timing,
    attenuation, an EVSE that was not ready); a restart sooner than TT_matching_rate can
    hit an EVSE that still runs the old attempt.
    Fix: see the failed run's findings (SLC001, SLC003 …); EVCC: wait TT_matching_rate
    before restarting.
    Source: ISO 15118-3 [V2G3-A09-124] TT_matching_rate = 400 ms, [V2G3-A09-125]
    TT_matching_repetition = 10 s; PROTOCOL_FACTS §2.4, §2.7.

    Example:

        #3 CM_SLAC_PARM.REQ → #4 CM_SLAC_PARM.CNF
        #26 CM_MNBC_SOUND.IND
        #27 CM_SLAC_PARM.REQ → #28 CM_SLAC_PARM.CNF
    """

    code = "SLC007"
    title = "SLAC matching restarted"
    severity = "info"
    culprit = "EVCC"
    requirement = "ISO 15118-3 [V2G3-A09-124] TT_matching_rate, [V2G3-A09-125] TT_matching_repetition"
    params = {"tt_matching_rate_s": _STD["TT_matching_rate"],
              "tt_matching_repetition_s": _STD["TT_matching_repetition"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        if len(v.runs) < 2:
            return
        items = []
        early = []
        for prev, r in zip(v.runs, v.runs[1:]):
            stop = [e for e in prev.events if STAGE[e.name] == prev.stage][-1]
            gap = r.events[0].time - prev.events[-1].time
            items.append({"failed_run": prev.run_id, "stopped_after": stop.name,
                          "stop_frame": stop.frame, "restart_run": r.run_id,
                          "restart_frame": r.events[0].frame, "gap_s": round(gap, 3),
                          "within_repetition": gap <= self.p["tt_matching_repetition_s"]})
            if gap < self.p["tt_matching_rate_s"]:
                early.append(items[-1])
        desc = "; ".join(f"{it['stopped_after']} #{it['stop_frame']} → new run #{it['restart_frame']} "
                         f"{it['gap_s']:.1f} s later"
                         + ("" if it["within_repetition"] else " (after TT_matching_repetition: a new "
                                                                "matching process)")
                         for it in items[:4])
        sev = "warning" if early else "info"
        tail = (f"; {len(early)} restart(s) sooner than TT_matching_rate "
                f"{ms(self.p['tt_matching_rate_s'])}" if early else "")
        frames = [v.runs[0].events[0].frame] + [it["stop_frame"] for it in items] + \
            [it["restart_frame"] for it in items]
        yield self.finding(
            session, frames,
            f"SLAC restarted {len(items)} time(s) ({len(v.runs)} runs): {desc}{tail}",
            time=v.runs[1].events[0].time, severity=sev, measured=len(items),
            evidence={"expected": "one matching run", "actual": f"{len(v.runs)} runs",
                      "restarts": items, "tt_matching_rate_s": self.p["tt_matching_rate_s"]})


class SlacOutOfSequence(_SlacRule):
    """SLAC messages out of sequence.

    What it checks: within a run, (a) the EV sounding (CM_START_ATTEN_CHAR.IND /
    CM_MNBC_SOUND.IND) before any CM_SLAC_PARM.CNF although one came later; (b)
    CM_SLAC_MATCH.REQ before any CM_ATTEN_CHAR.IND; (c) SLAC messages of the run after its
    CM_SLAC_MATCH.CNF (the matching is over; e.g. an EVSE that keeps broadcasting
    CM_ATTEN_CHAR.IND during the V2G session). One finding per sender and kind, with the
    count and the first and last frame.
    Why it matters: each message is only valid in its step; out-of-step messages are
    discarded or, worse, restart state machines on the other side.
    Fix: the sender named: follow the ISO 15118-3 matching state machine.
    Source: ISO 15118-3 §9 / Annex A sequence; PROTOCOL_FACTS §2.3.

    Example:

        #30 CM_SLAC_MATCH.REQ EVSE_MAC=02:00:00:00:e5:01
          → #31 CM_SLAC_MATCH.CNF EVSE_MAC=02:00:00:00:e5:01
        #85 CM_ATTEN_CHAR.IND
        #184 CM_ATTEN_CHAR.IND
    """

    code = "SLC019"
    title = "SLAC message out of sequence"
    severity = "warning"
    explains = ("slac-failed",)
    culprit = "unknown"
    requirement = "ISO 15118-3 Annex A matching sequence"

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        groups: dict = {}
        for r in v.runs:
            cnf = r.of(PARM_CNF)
            if cnf:
                for e in r.of(START) + r.of(MNBC):
                    if e.time < cnf[0].time:
                        groups.setdefault(("sounding before CM_SLAC_PARM.CNF", e.src), []).append((e, cnf[0]))
            ind = r.of(IND)
            for e in r.of(MATCH_REQ):
                if ind and e.time < ind[0].time:
                    groups.setdefault(("CM_SLAC_MATCH.REQ before CM_ATTEN_CHAR.IND", e.src), []).append((e, ind[0]))
            if r.has(MATCH_CNF):
                mc = r.of(MATCH_CNF)[0]
                for e in r.events:
                    if e.time > mc.time and e.name != MATCH_CNF:
                        groups.setdefault((f"{e.name} after CM_SLAC_MATCH.CNF", e.src), []).append((e, mc))
        for (what, src), items in groups.items():
            first, ref = items[0]
            last = items[-1][0]
            extra = ""
            if "after CM_SLAC_MATCH.CNF" in what:
                extra = f" ({last.time - ref.time:.1f} s after the match #{ref.frame})"
            yield self.finding(
                session, [ref.frame, first.frame, last.frame],
                f"{len(items)} × {what} from {src} (frames {first.frame}-{last.frame}){extra}",
                time=first.time, culprit=_culprit(first.name), measured=len(items),
                evidence={"expected": "the ISO 15118-3 matching sequence", "actual": what,
                          "count": len(items), "dst": sorted({e.dst or "" for e, _ in items})})
