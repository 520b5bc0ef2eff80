"""Scores and verdicts — the one place they are computed (tunable in a profile's [scoring]).

Two questions are kept apart (docs/scoring.md):

* **Did the session achieve its goal?** — ``goal`` (analyzer/causality.py): ``achieved``
  (energy flowed and the EV stopped or paused on its own, nothing explains the stop),
  ``not achieved`` (it failed: the root cause, or "no cause visible"), ``unknown`` (the
  capture ended first).
* **Which conformance violations does it carry?** — ``conformance``: ``fail`` when a
  finding that is not a consequence of another one has severity error or the score is below
  ``fail_below`` (60); ``warn`` when one has severity warning or the score is below
  ``warn_below`` (90); else ``pass``.

The score (0-100) measures conformance: a session starts at 100 and each finding that is
not a consequence of another one (``caused_by`` is null) takes off

    penalty = weight[severity] × (0.5 + S / 10)

where ``weight`` is the profile's ``error`` (40), ``warning`` (10) or ``info`` (0) and ``S``
is the highest ChargeX PFMEA average severity (1-10) among the failure modes the rule cites
(rules/failure_modes.py; 5 when it cites none, so the factor is 1). Consequences weigh
nothing: their cause is counted once. The score never goes below 0.

**Verdict** (one word for lists, CI and JUnit; precedence documented): ``fail`` when the goal
was not achieved; otherwise ``warn`` when conformance is ``warn`` or ``fail`` (the session did
what it should but carries violations — e.g. CurrentDemandRes later than the 25 ms
V2G_SECC_Msg_Performance_Time); otherwise ``pass``. A session whose goal is unknown is never
``fail`` for lack of evidence. The capture's verdict is the worst session verdict (``warn`` at
least when capture-level findings break conformance); its conformance the worst conformance;
its score the lowest session score minus the penalties of capture-level findings.
"""
from __future__ import annotations

from ccs_analyzer.rules.failure_modes import severity as pfmea_severity

_ORDER = {"pass": 0, "warn": 1, "fail": 2}

#: The goal of a session that failed (analyzer/causality.py writes ``goal``).
NOT_ACHIEVED = "not achieved"


def failed(summary: dict) -> bool:
    """Whether a session failed: its goal (a session summary's, or report.json
    ``sessions[]``, ``goal``) is ``not achieved``. ``achieved`` and ``unknown`` goals are no
    failures (module docstring) — the one meaning of "failed" the batch summary, the fleet
    questions and CI count."""
    return summary.get("goal") == NOT_ACHIEVED


def penalty(finding, scoring: dict) -> float:
    """Points a finding takes off its session's score (0 for consequences)."""
    if finding.caused_by:
        return 0.0
    w = scoring.get(finding.severity, 0.0)
    s = pfmea_severity(finding.failure_modes)
    return w * (0.5 + (s if s is not None else 5.0) / 10.0)


def conformance_of(findings, score: float, scoring: dict) -> str:
    """pass / warn / fail conformance of a set of findings and their score (module
    docstring)."""
    roots = [f for f in findings if not f.caused_by]
    if score < scoring["fail_below"] or any(f.severity == "error" for f in roots):
        return "fail"
    if score < scoring["warn_below"] or any(f.severity == "warning" for f in roots):
        return "warn"
    return "pass"


def score_findings(findings, scoring: dict) -> tuple[float, str]:
    """(score 0-100, conformance) of a list of findings."""
    score = max(0.0, 100.0 - sum(penalty(f, scoring) for f in findings))
    return round(score, 1), conformance_of(findings, score, scoring)


def session_verdict(goal: str | None, conformance: str) -> str:
    """The session's verdict from its goal and its conformance (module docstring)."""
    if goal == NOT_ACHIEVED:
        return "fail"
    return "pass" if conformance == "pass" else "warn"


def worst(verdicts) -> str:
    """The worst of pass / warn / fail values (pass for none)."""
    return max(verdicts, key=lambda v: _ORDER[v], default="pass")


def capture_score(sessions: list[tuple[float, str, str]], capture_findings, scoring: dict):
    """(score, verdict, conformance) of a capture from its sessions' (score, verdict,
    conformance) and its capture-level findings."""
    base = min((s for s, _, _ in sessions), default=100.0)
    score = max(0.0, base - sum(penalty(f, scoring) for f in capture_findings))
    own = conformance_of(capture_findings, score, scoring)
    conformance = worst([own] + [c for _, _, c in sessions])
    verdict = worst([v for _, v, _ in sessions] + (["warn"] if own != "pass" else []))
    return round(score, 1), verdict, conformance
