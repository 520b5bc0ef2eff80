"""SLAC matching (ISO 15118-3 §9 and Annex A; PROTOCOL_FACTS §2).

Every rule here reads the session's SLAC view (analyzer/views/slac.py :func:`slac_view`):
its ISO 15118-3 SLAC messages with identical copies removed (a tester that sees several
VLANs captures each broadcast once per VLAN), cut into matching *runs* (a run begins with a
CM_SLAC_PARM.REQ that carries a new RunID, or with one sent after the previous run got past
CM_SLAC_PARM.CNF), plus the HomePlug CM_SET_KEY exchanges. The ISO 15118-3 timers, counters
and limits the rules' parameters default to are the sourced table of rules/slac_timers.py.

Partial captures: a sniffer often sees one side only (listen mode, a modem that forwards
only broadcasts, a capture started late). A message that answers another proves the other
was sent: CM_SLAC_PARM.CNF proves a CM_SLAC_PARM.REQ, CM_ATTEN_CHAR.IND with sounds proves
the EV's sounding, CM_ATTEN_CHAR.RSP and CM_SLAC_MATCH.REQ prove a CM_ATTEN_CHAR.IND,
CM_SLAC_MATCH.CNF proves CM_SLAC_MATCH.REQ, and SDP / TCP traffic proves a match. When the
capture lacks what such evidence proves, the view is ``partial``: SLC002 says so (culprit
capture; a capture of one side only is CAP003's) and the rules that need both sides stay
silent instead of blaming the EV or the EVSE for what the capture cannot show.
"""
from __future__ import annotations

from collections import Counter

from ccs_analyzer.analyzer.views.slac import (EV_SENDS, EVSE_SENDS, IND, MATCH_CNF, MATCH_REQ, MNBC,
                                              PARM_CNF, PARM_REQ, RSP, SET_KEY_CNF, SET_KEY_REQ,
                                              STAGE, START, VAL_REQ, SlacRun, SlacView, evse_reset,
                                              fields, slac_view)

from .base import Rule
from .helpers import ms
from .slac_timers import SLAC_TIMERS

SLAC_FAILURE_MODES = ("UC2 51", "UC2 52", "UC2 54", "UC2 55", "UC2 56")
#: The standard's value of each ISO 15118-3 parameter (rules/slac_timers.py): the defaults of
#: the rules' parameters.
_STD = {name: p.value for name, p in SLAC_TIMERS.items()}


def _culprit(name: str) -> str:
    return "EVCC" if name in EV_SENDS else "SECC" if name in EVSE_SENDS else "unknown"


def _runid_mismatches(run: SlacRun) -> list:
    """Events of the run whose RunID differs from the EV's (the run's)."""
    if not run.run_id:
        return []
    return [e for e in run.events if fields(e).get("RunID") not in (None, run.run_id)]


class _SlacRule(Rule):
    """Shared class facts of the SLAC rules."""

    category = "slac"
    protocols = ("SLAC",)
    failure_modes = SLAC_FAILURE_MODES


# --------------------------------------------------------------------------- sequence
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
                          "message": name, "sender": src, "count": len(items)})


def _off_nominal(e, nominal: dict) -> dict:
    f = fields(e)
    return {k: (f.get(k), want) for k, want in nominal.items()
            if f.get(k) is not None and f.get(k) != want}


class SlacParmCnfOffNominal(_SlacRule):
    """CM_SLAC_PARM.CNF parameters are off nominal.

    What it checks: the EVSE's CM_SLAC_PARM.CNF asks for NUM_SOUNDS = ``num_sounds`` (10,
    C_EV_match_MNBC), Time_Out = ``time_out`` (6 × 100 ms = TT_EVSE_match_MNBC) and
    RESP_TYPE = ``resp_type`` (1, "other GP station"); M-SOUND_TARGET should be the broadcast
    address.
    Why it matters: EVs are built and tested against the nominal values; pyPLC saw chargers
    and cars refuse a peer whose values differ (Compleo ignored a Time_Out of 1000 ms), so a
    deviation can explain an EV that stops after the CNF.
    Fix (SECC): send NUM_SOUNDS 10, Time_Out 6, RESP_TYPE 1, M-SOUND_TARGET FF:FF:FF:FF:FF:FF.
    Source: ISO 15118-3 Annex A (C_EV_match_MNBC, TT_EVSE_match_MNBC); PROTOCOL_FACTS
    §2.3 row 2, §2.7 (E-SLAC, OPU, PYPLC).
    """

    code = "SLC004"
    title = "CM_SLAC_PARM.CNF parameters off nominal"
    severity = "warning"
    culprit = "SECC"
    requirement = "ISO 15118-3 Annex A CM_SLAC_PARM.CNF (NUM_SOUNDS, Time_Out, RESP_TYPE)"
    params = {"num_sounds": _STD["C_EV_match_MNBC"], "time_out": _STD["TIME_OUT"],
              "resp_type": _STD["RESP_TYPE"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        nominal = {"NUM_SOUNDS": self.p["num_sounds"], "Time_Out": self.p["time_out"],
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
                time=evs[0].time, measured={k: a for k, (a, _) in off},
                limit={k: b for k, (_, b) in off},
                evidence={"expected": {k: b for k, (_, b) in off},
                          "actual": {k: a for k, (a, _) in off}, "count": len(evs)})


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
                time=bad[0].time, measured={k: a for k, (a, _) in diffs.items()},
                limit={k: b for k, (_, b) in diffs.items()},
                evidence={"expected": {k: b for k, (_, b) in diffs.items()},
                          "actual": {k: a for k, (a, _) in diffs.items()}, "run": r.run_id})


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


# --------------------------------------------------------------------------- timers
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
                              "sounds_sent": len(sounds), "sent_before_ind": len(before)})
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


# --------------------------------------------------------------------------- attenuation
class SlacAttenuationHigh(_SlacRule):
    """The average attenuation to the matched charger is above the limit.

    What it checks: AAG_mean_dB (mean of the 58 group attenuations) of the CM_ATTEN_CHAR.IND
    of the charger the EV matched with (or of every charger when there is no match) against
    ``limit_db``. ⚠ Sources disagree on the thresholds: open-plc-utils and pyslac refuse a
    match above SLAC_LIMIT = 40 dB (the default here); the MStar SDK's
    C_EV_match_signalattn_direct / _indirect are 10 / 20 dB (match / validate), the ISO
    15118-3 test-environment port uses 40 / 80 dB.
    Why it matters: high attenuation means a poor or indirect coupling (another charger's
    cable, a long parallel run): unreliable communication or the wrong charger.
    Fix (link): check the coupling circuit, the cable and the CP line; an EV should validate
    (CM_VALIDATE) or refuse such a match.
    Source: ISO 15118-3 Annex A C_EV_match_signalattn_direct/_indirect; PROTOCOL_FACTS §2.6
    (OPU SLAC_LIMIT, PYSLAC, MSTAR ⚠, TENV ⚠).
    """

    code = "SLC014"
    title = "SLAC attenuation above the limit"
    severity = "warning"
    explains = ("slac-failed",)
    culprit = "link"
    requirement = "ISO 15118-3 C_EV_match_signalattn_direct/_indirect"
    params = {"limit_db": _STD["SLAC_LIMIT"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        for r in v.runs:
            chosen = r.matched_evse()
            for i in r.of(IND):
                a = fields(i).get("AAG_mean_dB")
                if not isinstance(a, (int, float)) or a <= self.p["limit_db"]:
                    continue
                if chosen and i.src != chosen:
                    continue
                yield self.finding(
                    session, [i.frame],
                    f"CM_ATTEN_CHAR.IND #{i.frame} from {i.src} reports an average attenuation of "
                    f"{a:.1f} dB, above {self.p['limit_db']:g} dB"
                    + (" — and the EV matched with it" if chosen == i.src else ""),
                    time=i.time, measured=round(a, 3), limit=self.p["limit_db"], unit="dB",
                    evidence={"expected": f"≤ {self.p['limit_db']:g} dB", "actual": round(a, 3),
                              "NUM_SOUNDS": fields(i).get("NUM_SOUNDS"), "run": r.run_id})
                break


class SlacAttenuationProfileImplausible(_SlacRule):
    """CM_ATTEN_CHAR.IND carries an implausible attenuation profile.

    What it checks: NumGroups = ``groups`` (58 carrier groups), the AAG list has NumGroups
    entries, and NUM_SOUNDS > 0. A frame the capture cut short (snap length, truncated
    frame: the event carries the dissector's error) is not judged on its AAG count — the
    missing values are the capture's loss (CAP006), not the charger's.
    Why it matters: the EV compares chargers by this profile; a malformed one makes the
    comparison meaningless (or the EV discards the message).
    Fix (SECC): report the 58 group averages of the received sounds.
    Source: HomePlug GreenPHY / ISO 15118-3 CM_ATTEN_CHAR.IND (NumGroups = 58);
    PROTOCOL_FACTS §2.1, §2.3 row 6 (E-SLAC, OPU, PYSLAC).
    """

    code = "SLC015"
    title = "Implausible attenuation profile"
    severity = "warning"
    culprit = "SECC"
    requirement = "ISO 15118-3 CM_ATTEN_CHAR.IND ATTEN_PROFILE (NumGroups 58)"
    params = {"groups": _STD["NumGroups"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        bad: dict = {}
        for i in (i for r in v.runs for i in r.of(IND)):
            f = fields(i)
            n, aag, sounds = f.get("NumGroups"), f.get("AAG"), f.get("NUM_SOUNDS")
            why = []
            if isinstance(n, int) and n != self.p["groups"]:
                why.append(f"NumGroups={n}")
            if isinstance(aag, list) and isinstance(n, int) and len(aag) != n and not i.error:
                why.append(f"{len(aag)} AAG values for NumGroups={n}")
            if sounds == 0:
                why.append("NUM_SOUNDS=0")
            if why:
                bad.setdefault((i.src, tuple(why)), []).append(i)
        for (src, why), evs in bad.items():
            yield self.finding(
                session, [evs[0].frame, evs[-1].frame],
                f"{len(evs)} CM_ATTEN_CHAR.IND from {src} (frames {evs[0].frame}-{evs[-1].frame}): "
                + ", ".join(why), time=evs[0].time,
                evidence={"expected": {"NumGroups": self.p["groups"], "NUM_SOUNDS": "> 0"},
                          "actual": list(why)})


class SlacSeveralChargers(_SlacRule):
    """Several chargers answered the EV's sounding (cross-talk).

    What it checks: CM_ATTEN_CHAR.IND from more than one EVSE MAC for one run; names each
    charger's average attenuation, the one the EV matched with, and whether that is the
    lowest attenuation (``tolerance_db`` allowed). An info; a warning when the EV chose a
    charger with clearly higher attenuation.
    Why it matters: chargers whose CP lines couple (shared cable routes, a common
    transformer) all hear the EV; the EV must pick its own charger — the lowest attenuation
    — or it starts a session with the neighbour.
    Fix (EVCC): choose the lowest-attenuation CM_ATTEN_CHAR.IND (validate when ambiguous);
    site: decouple the CP lines.
    Source: ISO 15118-3 Annex A (EV selects the EVSE with the lowest attenuation;
    CM_VALIDATE when ambiguous); PROTOCOL_FACTS §2.7 (PYPLC readme checkpoint 130).
    """

    code = "SLC016"
    title = "Several chargers answered the sounding"
    severity = "info"
    culprit = "EVCC"
    requirement = "ISO 15118-3 Annex A EVSE selection (lowest attenuation)"
    params = {"tolerance_db": 1.0}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        for r in v.runs:
            chargers: dict = {}
            for i in r.of(IND):
                a = fields(i).get("AAG_mean_dB")
                chargers.setdefault(i.src, (i, a))
            if len(chargers) < 2:
                continue
            chosen = r.matched_evse()
            known = {k: a for k, (_, a) in chargers.items() if isinstance(a, (int, float))}
            best = min(known, key=known.get) if known else None
            listing = ", ".join(f"{mac} (#{i.frame}, {a:.1f} dB)" if isinstance(a, (int, float))
                                else f"{mac} (#{i.frame})" for mac, (i, a) in chargers.items())
            frames = [i.frame for i, _ in chargers.values()]
            sev = "info"
            culprit = "unknown"
            if chosen is None:
                tail = "; the EV matched none of them"
            elif chosen not in chargers:
                tail = f"; the EV matched {chosen}, which sent no CM_ATTEN_CHAR.IND in this run"
                sev, culprit = "warning", "EVCC"
            elif best is None or chosen not in known:
                tail = f"; the EV matched {chosen}"
            elif known[chosen] <= known[best] + self.p["tolerance_db"]:
                tail = f"; the EV matched {chosen}, the lowest attenuation — as it should"
            else:
                tail = (f"; the EV matched {chosen} ({known[chosen]:.1f} dB) although {best} answered "
                        f"with {known[best]:.1f} dB: it may be talking to the wrong charger")
                sev, culprit = "warning", "EVCC"
            m = r.of(MATCH_REQ)
            if m:
                frames.append(m[0].frame)
            yield self.finding(
                session, frames,
                f"{len(chargers)} chargers answered {r.label}: {listing}{tail}",
                time=r.of(IND)[0].time, severity=sev, culprit=culprit,
                measured=known.get(chosen) if chosen else None,
                limit=known.get(best) if best else None, unit="dB",
                evidence={"expected": "the EV matches the lowest attenuation",
                          "actual": {"matched": chosen, "lowest": best},
                          "chargers": {mac: a for mac, (_, a) in chargers.items()}})


class SlacMatchRequestLate(_SlacRule):
    """The EV requested the match later than TT_EVSE_match_session.

    What it checks: CM_SLAC_MATCH.REQ (or CM_VALIDATE.REQ) follows the EV's
    CM_ATTEN_CHAR.RSP within ``limit_s`` (TT_EVSE_match_session = 10 s).
    Why it matters: the EVSE abandons the run when TT_EVSE_match_session expires; a later
    request is not answered.
    Fix (EVCC): decide and send CM_SLAC_MATCH.REQ promptly (TP_EV_match_session).
    Source: ISO 15118-3 Table A.1 TT_EVSE_match_session = 10 s; PROTOCOL_FACTS §2.4
    (E-SLAC, PYSLAC, TENV, MSTAR).
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
            later += [e for e in s.events if e.layer == "slac" and e.name == PARM_REQ]
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
                          "NID": fields(req).get("NID"), "traffic_after": traffic})
