"""The rule engine: runs every enabled rule over every session (or once over the capture)
and numbers the findings in time order.

A rule that raises is reported as an ``ENG001`` info finding naming the rule and the error,
and the other rules still run.
"""
from __future__ import annotations

from ccs_analyzer.rules import all_rules
from ccs_analyzer.rules.base import Finding


def run_rules(analysis, profile=None) -> list[Finding]:
    """Findings of all rules for an :class:`~.analysis.Analysis`, ids ``F1``, ``F2`` …
    in order of time (then frame)."""
    findings: list[Finding] = []
    for cls in all_rules():
        rule = cls()
        targets = [None] if rule.scope == "capture" else analysis.sessions
        for s in targets:
            try:
                findings.extend(rule.check(s, analysis))
            except Exception as e:  # a broken rule must not hide the others' findings
                findings.append(Finding(rule="ENG001", title="Rule failed", category="capture-quality",
                                        severity="info", culprit="unknown",
                                        session=s.id if s is not None else None, frames=[],
                                        time=None, synopsis=f"rule {cls.code} failed: "
                                        f"{type(e).__name__}: {e}"))
    findings.sort(key=lambda f: (f.time if f.time is not None else float("inf"),
                                 f.frames[0] if f.frames else 0, f.rule))
    for i, f in enumerate(findings, 1):
        f.id = f"F{i}"
    return findings
