"""The CI conformance gate: which findings and which failed sessions fail a build, given a
threshold and a baseline — consistent with the verdicts (docs/scoring.md).

A finding *counts* when its severity is at or above the threshold (``--fail-on error``: errors
only; ``warning``: warnings and errors), it is not a consequence of another finding (its cause
counts once, as in the conformance score) and no baseline entry accepts it. A session that did
not achieve its goal (``goal`` "not achieved", verdict fail) *counts* too, unless ``--no-goal``
or the baseline accepts its root cause (or, for a failure without a visible cause, an entry
``{"rule": "GOAL", "phase": <phase reached>, "message": <outcome>}``). A baseline (JSON, see
:func:`write_baseline`) lists known findings by what survives a re-run — the capture's file
name, the rule, the session phase and the message — never by frame number, which changes with
every capture. ``"capture": "*"`` accepts the finding in any capture.

Exit status of ``ccs-analyzer gate``: 0 when nothing counts, 1 when something does, 2 when a
capture could not be analysed at all (that wins: a gate must not pass on unreadable input).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .scoring import failed

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
BASELINE_VERSION = 1


def signature(capture: str, f) -> dict:
    """What identifies a finding across re-runs: capture file name, rule, phase, message."""
    return {"capture": capture, "rule": f.rule, "phase": f.phase, "message": f.message}


@dataclass
class Baseline:
    """Accepted findings (signatures). ``accepts(capture, finding)``."""

    entries: list[dict] = field(default_factory=list)

    def accepts(self, capture: str, f) -> bool:
        sig = signature(capture, f)
        for e in self.entries:
            if e.get("capture", "*") not in ("*", capture):
                continue
            if all(e.get(k) == sig[k] for k in ("rule", "phase", "message")):
                return True
        return False


def load_baseline(path: str | os.PathLike | None) -> Baseline:
    """Read a baseline file (None: empty). Raises ValueError naming the problem."""
    if path is None:
        return Baseline()
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError(f"baseline {path}: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"baseline {path}: not valid JSON: {e}") from e
    entries = data.get("accepted") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "rule" in e for e in entries):
        raise ValueError(f"baseline {path}: expected {{\"accepted\": [{{\"rule\": …, \"phase\": …, "
                         "\"message\": …, \"capture\": …}}, …]}")
    return Baseline(entries)


#: The baseline "rule" of a failed session without a visible cause.
GOAL = "GOAL"


def goal_signature(capture: str, s: dict) -> dict:
    """What identifies a failed session across re-runs: capture, GOAL, phase reached, outcome."""
    return {"capture": capture, "rule": GOAL, "phase": s.get("phase_reached"), "message": s.get("outcome")}


def write_baseline(path: str | os.PathLike, results: list["GateResult"]) -> int:
    """Write every finding of ``results`` (at any severity) and every failed session without a
    root cause as accepted baseline entries; return how many distinct entries were written."""
    seen = []
    for r in results:
        sigs = [dict(signature(r.capture, f), synopsis=f.synopsis) for f in r.findings]
        sigs += [dict(goal_signature(r.capture, s), synopsis=s.get("explanation"))
                 for s in r.sessions if failed(s) and not s.get("root_cause")]
        for sig in sigs:                          # "synopsis" is for the reader; not matched on
            key = (sig["capture"], sig["rule"], sig["phase"], sig["message"])
            if key not in {(e["capture"], e["rule"], e["phase"], e["message"]) for e in seen}:
                seen.append(sig)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"version": BASELINE_VERSION, "accepted": seen}, f, indent=1)
        f.write("\n")
    return len(seen)


@dataclass
class GateResult:
    """The gate's view of one capture: ``counting`` (new findings at/above the threshold),
    ``baselined`` (accepted ones), all ``findings``, ``failed_sessions`` (summaries of the
    sessions whose failure counts) and ``accepted_sessions`` (failed, but baselined), and the
    analysis' verdict and score; or ``error`` when the capture could not be analysed."""

    capture: str
    path: str
    findings: list = field(default_factory=list)
    counting: list = field(default_factory=list)
    baselined: list = field(default_factory=list)
    verdict: str | None = None
    score: float | None = None
    sessions: list = field(default_factory=list)
    error: str | None = None
    rules: list = field(default_factory=list)
    failed_sessions: list = field(default_factory=list)
    accepted_sessions: list = field(default_factory=list)
    conformance: str | None = None


def judge(analysis, path: str, fail_on: str, baseline: Baseline, goal: bool = True) -> GateResult:
    """Sort an analysis' findings into counting / baselined / below the threshold (or a
    consequence, counted with its cause), and, with ``goal``, its failed sessions into
    counting / accepted (module docstring)."""
    cap = os.path.basename(path)
    r = GateResult(capture=cap, path=path, findings=list(analysis.findings),
                   verdict=analysis.verdict, score=analysis.score,
                   sessions=list(analysis.summaries.values()),
                   conformance=getattr(analysis, "conformance", None))
    limit = SEVERITY_RANK[fail_on]
    for f in analysis.findings:
        if SEVERITY_RANK.get(f.severity, 0) < limit or f.caused_by:
            continue
        (r.baselined if baseline.accepts(cap, f) else r.counting).append(f)
    if goal:
        by_id = {f.id: f for f in analysis.findings}
        for s in r.sessions:
            if not failed(s):
                continue
            root = by_id.get(s.get("root_cause") or "")
            ok = baseline.accepts(cap, root) if root is not None else any(
                e.get("capture", "*") in ("*", cap) and e.get("rule") == GOAL
                and e.get("phase") == s.get("phase_reached") and e.get("message") == s.get("outcome")
                for e in baseline.entries)
            (r.accepted_sessions if ok else r.failed_sessions).append(s)
    return r


def exit_code(results: list[GateResult]) -> int:
    """2 if a capture could not be analysed, else 1 if any finding or failed session counts,
    else 0."""
    if any(r.error for r in results):
        return 2
    return 1 if any(r.counting or r.failed_sessions for r in results) else 0


def gate_json(results: list[GateResult], fail_on: str) -> dict:
    """The ``--json`` summary of a gate run."""
    return {
        "fail_on": fail_on,
        "exit_code": exit_code(results),
        "captures": [{
            "capture": r.capture, "path": r.path, "error": r.error, "verdict": r.verdict,
            "score": r.score,
            "counting": [f.to_json() for f in r.counting],
            "baselined": [f.to_json() for f in r.baselined],
            "findings": len(r.findings),
            "conformance": r.conformance,
            "sessions": [{k: s.get(k) for k in ("id", "protocol", "outcome", "phase_reached", "goal",
                                                 "conformance", "verdict", "root_cause",
                                                 "root_cause_synopsis", "explanation")}
                         for s in r.sessions],
            "failed_sessions": [s.get("id") for s in r.failed_sessions],
            "accepted_sessions": [s.get("id") for s in r.accepted_sessions],
        } for r in results],
    }
