"""Scores and verdicts — the one place they are computed (tunable in a profile's [scoring]).

A session's score starts at 100. Each finding that is not a consequence of another one
(``caused_by`` is null) takes off

    penalty = weight[severity] × (0.5 + S / 10)

where ``weight`` is the profile's ``error`` (40), ``warning`` (10) or ``info`` (0) and ``S``
is the highest ChargeX PFMEA average severity (1-10) among the failure modes the rule cites
(rules/failure_modes.py; 5 when it cites none, so the factor is 1). A failure mode of
severity 10 (e.g. an EVSE current above its own maximum: grid overload, safety) weighs 1.5×,
one of severity 1.5 (authentication) 0.65×. Consequences weigh nothing: the root cause is
already counted. The score never goes below 0.

Verdict: ``fail`` when a root finding (not a consequence) has severity error or the score is
below ``fail_below`` (60); ``warn`` when one has severity warning or the score is below
``warn_below`` (90); else ``pass``. The capture's score is the lowest of its sessions' scores
minus the penalties of its capture-level findings; its verdict is the worst verdict.
"""
from __future__ import annotations

from ccs_analyzer.rules.failure_modes import severity as pfmea_severity

_ORDER = {"pass": 0, "warn": 1, "fail": 2}


def penalty(finding, scoring: dict) -> float:
    """Points a finding takes off its session's score (0 for consequences)."""
    if finding.caused_by:
        return 0.0
    w = scoring.get(finding.severity, 0.0)
    s = pfmea_severity(finding.failure_modes)
    return w * (0.5 + (s if s is not None else 5.0) / 10.0)


def verdict_of(findings, score: float, scoring: dict) -> str:
    """pass / warn / fail of a set of findings and their score (module docstring)."""
    roots = [f for f in findings if not f.caused_by]
    if score < scoring["fail_below"] or any(f.severity == "error" for f in roots):
        return "fail"
    if score < scoring["warn_below"] or any(f.severity == "warning" for f in roots):
        return "warn"
    return "pass"


def score_findings(findings, scoring: dict) -> tuple[float, str]:
    """(score 0-100, verdict) of a list of findings."""
    score = max(0.0, 100.0 - sum(penalty(f, scoring) for f in findings))
    return round(score, 1), verdict_of(findings, score, scoring)


def capture_score(session_scores: list[tuple[float, str]], capture_findings, scoring: dict):
    """(score, verdict) of a capture from its sessions' (score, verdict) and its
    capture-level findings."""
    base = min((s for s, _ in session_scores), default=100.0)
    score = max(0.0, base - sum(penalty(f, scoring) for f in capture_findings))
    verdict = verdict_of(capture_findings, score, scoring)
    for _, v in session_scores:
        if _ORDER[v] > _ORDER[verdict]:
            verdict = v
    return round(score, 1), verdict
