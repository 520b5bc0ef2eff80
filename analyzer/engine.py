"""The rule engine: runs every enabled rule (profile-adjusted) over every session, or once
over the capture, merges repeats of one problem, numbers the findings in time order, then
sets each session's outcome and stop reason (analyzer/outcome.py), links causes and
consequences and names root causes (analyzer/causality.py), and scores and judges the
sessions and the capture (analyzer/scoring.py).

A rule that raises becomes an ``ENG001`` info finding naming the rule and the error, and the
other rules still run. One distinct problem is one finding: the findings a rule yields for
one session with the same culprit, severity and problem (``Finding.key``, by default the
synopsis with its numbers blanked) are merged into one that carries their ``count``, all
their evidence frames and, in ``evidence["instances"]``, what each said (a SessionID refused
38 times is one row, not 38). A profile's ``max_findings`` (default
``[engine] max_findings_per_rule`` = 20) still caps the rows a rule may give per session.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ccs_analyzer.rules import all_rules
from ccs_analyzer.rules.base import Finding

from .causality import explain_sessions
from .control_pilot import is_cp_event
from .outcome import phase_of, session_outcome
from .profile import Profile
from .scoring import capture_score, score_findings, session_verdict
from .spool import remap_summary


def instantiate(profile: Profile) -> list[tuple]:
    """[(rule instance, settings)] for the enabled rules of a profile."""
    out = []
    for cls in all_rules():
        st = profile.settings(cls)
        if not st.enabled:
            continue
        rule = cls(**st.params)
        if st.severity:
            rule.severity = st.severity
        out.append((rule, st))
    return out


#: How many instance synopses a merged finding keeps in ``evidence["instances"]``.
_INSTANCES = 20


_NUMBERS = re.compile(r"[0-9a-fA-F:.]*[0-9][0-9a-fA-F:.]*")


def problem_key(f: Finding) -> str:
    """The identity of a finding's problem within its rule: ``f.key``, else its synopsis
    with every number, frame, address and hex value blanked."""
    return f.key if f.key is not None else _NUMBERS.sub("#", f.synopsis)


def merge_repeats(findings: list[Finding]) -> list[Finding]:
    """One finding per problem: the findings of one rule and session with the same culprit,
    severity and :func:`problem_key` merged into the first, with the summed ``count``, the
    union of the evidence frames, the earliest time, the instances' synopses
    (``evidence["instances"]``, at most 20; ``evidence["merged"]`` = how many findings were
    merged) and the judged ``values`` of those instances."""
    groups: dict[tuple, list[Finding]] = {}
    order: list[tuple] = []
    for f in findings:
        k = (f.rule, f.session, f.culprit, f.severity, problem_key(f))
        if k not in groups:
            groups[k] = []
            order.append(k)
        groups[k].append(f)
    out = []
    for k in order:
        fs = groups[k]
        if len(fs) == 1:
            out.append(fs[0])
            continue
        fs.sort(key=lambda f: (f.time if f.time is not None else float("inf"),
                               f.frames[0] if f.frames else 0))
        first = fs[0]
        frames = sorted({x for f in fs for x in f.frames})
        n = sum(f.count for f in fs)
        times = [f.time for f in fs if f.time is not None]
        syn = (f"{first.synopsis} — {len(fs)} such findings in all ({n} occurrences), the last in "
               f"frame {max(frames) if frames else '?'}")
        evidence = {**first.evidence, "merged": len(fs),
                    "instances": [f.synopsis for f in fs[:_INSTANCES]]}
        out.append(replace(first, frames=frames, count=n, synopsis=syn, evidence=evidence,
                           time=min(times) if times else None,
                           values=[v for f in fs[:_INSTANCES] for v in f.values]))
    return out


def _cap(findings: list[Finding], cap: int) -> list[Finding]:
    """Keep ``cap`` findings; merge the rest into the last kept one (count, first/last frame)."""
    if len(findings) <= cap:
        return findings
    keep, rest = findings[:cap - 1], findings[cap - 1:]
    first, last = rest[0], rest[-1]
    frames = sorted({*(first.frames[:1]), *(last.frames[-1:])})
    merged = replace(first, frames=frames, count=sum(f.count for f in rest),
                     synopsis=f"{first.synopsis} — {len(rest)} such findings in all, the last in "
                              f"frame {last.frames[-1] if last.frames else '?'}",
                     evidence={**first.evidence, "merged": len(rest),
                               "last_synopsis": last.synopsis},
                     values=first.values + (last.values if last is not first else []))
    return keep + [merged]


_LAYER_PHASE = {"slac": "SLAC", "sdp": "SDP", "tcp": "TCP", "tls": "TLS"}


def _locate(analysis, sessions, findings) -> None:
    """Name each finding's message (the event at its first evidence frame) and phase: what a
    baseline matches on instead of frame numbers."""
    by_session = {s.id: s for s in sessions}
    for f in findings:
        s = by_session.get(f.session)
        if s is None or not f.frames:
            continue
        frames = set(f.frames)
        ev = next((e for e in s.events if e.frame in frames and e.layer == "v2gtp"), None) or \
            next((e for e in s.events if e.frame in frames), None)
        if ev is None:
            continue
        f.message = ev.name
        if ev.layer == "v2gtp":
            f.phase = phase_of(ev.name, ev.message)
        elif is_cp_event(ev):
            # a pilot reading: the phase the V2G session was in, else the pilot's own
            prev = next((e for e in reversed(s.events) if e.frame < ev.frame
                         and e.layer == "v2gtp" and e.message is not None), None)
            f.phase = (phase_of(prev.name, prev.message) if prev is not None else None) \
                or "control pilot"
        else:
            f.phase = _LAYER_PHASE.get(ev.layer)


def evaluate(analysis, profile: Profile | None = None) -> None:
    """Run the rules and fill ``analysis.findings``, each session summary's ``outcome``,
    ``phase_reached``, ``stopped_by``, ``root_cause``, ``score`` and ``verdict``, and
    ``analysis.score`` / ``analysis.verdict``: the whole capture judged as one segment
    (:func:`judge_segment`, then :func:`finish_capture`)."""
    profile = profile or Profile()
    rules = instantiate(profile)
    found = judge_segment(analysis, analysis.sessions, rules, profile)
    finish_capture(analysis, found, rules, profile)


def _run(rule, st, s, ctx, profile: Profile) -> list[Finding]:
    """A rule's findings for one session (None: the segment or capture), merged and capped; a
    rule that raises gives one ``ENG001`` info finding instead."""
    try:
        got = list(rule.check(s, ctx))
    except Exception as e:  # a broken rule must not hide the others' findings
        got = [Finding(rule="ENG001", title="Rule failed", category="capture-quality",
                       severity="info", culprit="unknown",
                       session=s.id if s is not None else None, frames=[], time=None,
                       synopsis=f"rule {rule.code} failed: {type(e).__name__}: {e}")]
    return _cap(merge_repeats(got), st.max_findings or profile.max_findings_per_rule)


def _order(f: Finding):
    """Findings are numbered in time order (then frame, then rule)."""
    return (f.time if f.time is not None else float("inf"), f.frames[0] if f.frames else 0, f.rule)


def judge_segment(ctx, sessions, rules: list[tuple], profile: Profile, tag: str = "") -> list[Finding]:
    """Judge the sessions of one segment of a capture (analyzer/segments.py; the whole
    capture when it is not cut): every session-scope rule session by session (its views let
    go after it, ``ctx.release``), then the segment-scope rules once over ``ctx``; then each
    session's outcome and stop reason (analyzer/outcome.py), causes and root cause
    (analyzer/causality.py), score, conformance and verdict (analyzer/scoring.py), written
    into ``ctx.summaries``.

    ``ctx``: the :class:`~.analysis.Analysis` the rules read (for a segment, one holding the
    segment's sessions, capture events and leftovers); ``rules``: :func:`instantiate`'s
    list. Returns the findings in time order with provisional ids ``<tag>F1`` …, which
    :func:`finish_capture` renumbers across the capture."""
    findings: list[Finding] = []
    # session by session, all its rules, then its views are let go: the views of one session
    # at a time are in memory, not those of every session of a long capture
    for s in sessions:
        if not getattr(s, "crosstalk", None):        # another charger's traffic is not judged
            protocol = ctx.summaries[s.id].get("protocol")
            for rule, st in rules:
                if rule.scope == "session" and rule.applies(protocol):
                    findings.extend(_run(rule, st, s, ctx, profile))
        ctx.release(s)
    for rule, st in rules:
        if rule.scope == "segment":
            findings.extend(_run(rule, st, None, ctx, profile))
    findings.sort(key=_order)
    for i, f in enumerate(findings, 1):
        f.id = f"{tag}F{i}"
    _locate(ctx, sessions, findings)
    conns = {c["conn"]: c for c in ctx.connections}
    cap_end = ctx.capture.get("last_time")
    for s in sessions:
        ctx.summaries[s.id].update(session_outcome(s, ctx.summaries[s.id], conns, cap_end))
    explain_sessions(ctx, sessions, findings, {r.code: type(r) for r, _ in rules})
    by_session: dict = {}
    for f in findings:
        by_session.setdefault(f.session, []).append(f)
    for s in sessions:
        summ = ctx.summaries[s.id]
        sc, conformance = score_findings(by_session.get(s.id, []), profile.scoring)
        summ["score"] = sc
        summ["conformance"] = conformance
        summ["verdict"] = session_verdict(summ.get("goal"), conformance)
        ctx.release(s)
    return findings


def finish_capture(analysis, findings: list[Finding], rules: list[tuple], profile: Profile,
                   spool=None, loose: list[Finding] = ()) -> None:
    """Run the capture-scope rules, number every finding of the capture (``F1`` …; the
    provisional ids of :func:`judge_segment` in ``caused_by``, ``consequences``,
    ``root_cause`` and ``cause_chain`` follow), and score and judge the capture from its
    sessions' verdicts (analyzer/scoring.py). Fills ``analysis.findings``, ``score``,
    ``verdict``, ``conformance`` and ``profile``.

    ``findings``: the judged findings in memory, numbered in time order with the capture's
    own; or, for a streamed capture, ``spool`` (an analyzer/spool.py ``FindingSpool``,
    numbered segment by segment in time order, the capture's own findings last — so that
    they can be written out one segment at a time) with ``loose``, its findings of no
    session."""
    own: list[Finding] = []
    for rule, st in rules:
        if rule.scope == "capture":
            got = _run(rule, st, None, analysis, profile)
            for f in got:
                f.caused_by, f.role, f.consequences = None, "independent", []
            own.extend(got)
    if spool is not None:
        own.sort(key=_order)
        new = spool.number(own)
        findings = spool
        capture_level = [*loose, *own]
    else:
        findings = list(findings) + own
        findings.sort(key=_order)
        new = {}
        for i, f in enumerate(findings, 1):
            if f.id is not None:
                new[f.id] = f"F{i}"
            f.id = f"F{i}"
        for f in findings:
            f.renumber(new)
        capture_level = [f for f in findings if f.session is None]
    summaries = analysis.summaries
    if hasattr(summaries, "set_remap"):     # a streamed capture's (analyzer/spool.py)
        summaries.set_remap(new)
        scores = summaries.scores()
    else:
        scores = []
        for summ in summaries.values():
            remap_summary(summ, new)
            scores.append((summ.get("score", 100.0), summ.get("verdict"), summ.get("conformance")))
    analysis.score, analysis.verdict, analysis.conformance = capture_score(
        scores, capture_level, profile.scoring)
    analysis.findings = findings
    analysis.profile = profile.name
