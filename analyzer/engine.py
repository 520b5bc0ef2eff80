"""The rule engine: runs every enabled rule (profile-adjusted) over every session, or once
over the capture, caps the findings per rule and session, numbers them in time order, then
sets each session's outcome, root cause and score (analyzer/outcome.py, analyzer/scoring.py).

A rule that raises becomes an ``ENG001`` info finding naming the rule and the error, and the
other rules still run. Findings beyond a rule's cap (profile ``max_findings``, default
``[engine] max_findings_per_rule`` = 20) are merged into one finding carrying their
``count`` and the first and last evidence frames: a loop of 2,000 messages that breaks a rule
gives at most 20 rows.
"""
from __future__ import annotations

from dataclasses import replace

from ccs_analyzer.rules import all_rules
from ccs_analyzer.rules.base import Finding

from .outcome import link_root_causes, phase_of, session_outcome
from .profile import Profile
from .scoring import capture_score, score_findings


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
                               "last_synopsis": last.synopsis})
    return keep + [merged]


_LAYER_PHASE = {"slac": "SLAC", "sdp": "SDP", "tcp": "TCP", "tls": "TLS"}


def _locate(analysis, findings) -> None:
    """Name each finding's message (the event at its first evidence frame) and phase: what a
    baseline matches on instead of frame numbers."""
    by_session = {s.id: s for s in analysis.sessions}
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
        f.phase = phase_of(ev.name, ev.message) if ev.layer == "v2gtp" else _LAYER_PHASE.get(ev.layer)


def evaluate(analysis, profile: Profile | None = None) -> None:
    """Run the rules and fill ``analysis.findings``, each session summary's ``outcome``,
    ``phase_reached``, ``stopped_by``, ``root_cause``, ``score`` and ``verdict``, and
    ``analysis.score`` / ``analysis.verdict``."""
    profile = profile or Profile()
    rules = instantiate(profile)
    findings: list[Finding] = []
    for rule, st in rules:
        cap = st.max_findings or profile.max_findings_per_rule
        targets = [None] if rule.scope == "capture" else analysis.sessions
        for s in targets:
            if s is not None and not rule.applies(analysis.summaries[s.id].get("protocol")):
                continue
            try:
                got = list(rule.check(s, analysis))
            except Exception as e:  # a broken rule must not hide the others' findings
                got = [Finding(rule="ENG001", title="Rule failed", category="capture-quality",
                               severity="info", culprit="unknown",
                               session=s.id if s is not None else None, frames=[], time=None,
                               synopsis=f"rule {rule.code} failed: {type(e).__name__}: {e}")]
            findings.extend(_cap(got, cap))
    findings.sort(key=lambda f: (f.time if f.time is not None else float("inf"),
                                 f.frames[0] if f.frames else 0, f.rule))
    for i, f in enumerate(findings, 1):
        f.id = f"F{i}"
    _locate(analysis, findings)
    conns = {c["conn"]: c for c in analysis.connections}
    for s in analysis.sessions:
        analysis.summaries[s.id].update(session_outcome(s, analysis.summaries[s.id], conns))
    link_root_causes(analysis.sessions, analysis.summaries, findings,
                     {r.code: type(r) for r, _ in rules})
    scores = []
    for s in analysis.sessions:
        fs = [f for f in findings if f.session == s.id]
        sc, vd = score_findings(fs, profile.scoring)
        analysis.summaries[s.id]["score"] = sc
        analysis.summaries[s.id]["verdict"] = vd
        scores.append((sc, vd))
    analysis.score, analysis.verdict = capture_score(
        scores, [f for f in findings if f.session is None], profile.scoring)
    analysis.findings = findings
    analysis.profile = profile.name
