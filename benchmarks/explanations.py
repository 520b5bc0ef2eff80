#!/usr/bin/env python3
"""Explanation quality and reading load, per capture.

For every capture (default: ../shared/corpus/*.pcap*, ../shared/corpus/testevents/*, the
project's samples/captures/*) it prints: sessions, findings, the findings a person must read
(those that are not a consequence of another: ``caused_by`` null), errors among them,
failed sessions, and failed sessions explained by a root cause vs. by "no cause visible".
With ``--reports DIR`` it reads existing reports (DIR/<capture name>/report.json, e.g. written
by an earlier version) instead of analysing; with ``--compare DIR`` it prints the two side by
side (before → after) and the totals; ``--save DIR`` keeps the reports it made.

Then, when ../shared/tools/explain_score.py and the test-event labels exist, it runs the
scorer and prints outcome / root-cause / detection agreement.

Usage: python benchmarks/explanations.py [--reports DIR] [--compare DIR] [--save DIR]
                                         [--no-score] [CAPTURE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCS_SHARED", REPO.parent / "shared"))


def default_captures() -> list[Path]:
    corpus = SHARED / "corpus"
    out = sorted(corpus.glob("*.pcap*")) + sorted(
        p for p in (corpus / "testevents").glob("*") if p.suffix in (".dump", ".pcap", ".pcapng"))
    return out + sorted((REPO / "samples" / "captures").glob("*.pcapng"))


def counts(rep: dict | None) -> dict | None:
    """Reading load of one report.json: sessions, findings, to read, errors to read, failed
    sessions, with a root cause, without a visible cause."""
    if rep is None:
        return None
    fs = rep.get("findings") or []
    ss = rep.get("sessions") or []
    read = [f for f in fs if not f.get("caused_by")]
    failed = [s for s in ss if s.get("goal", "not achieved" if s.get("verdict") == "fail" else None)
              == "not achieved"]
    return {"sessions": len(ss), "findings": len(fs), "to_read": len(read),
            "errors_to_read": sum(1 for f in read if f.get("severity") == "error"),
            "failed": len(failed),
            "explained": sum(1 for s in failed if s.get("root_cause") and not s.get("no_cause_visible")),
            "no_cause": sum(1 for s in failed if not s.get("root_cause") or s.get("no_cause_visible"))}


def analyse(cap: Path, out: Path) -> dict | None:
    d = out / cap.name
    subprocess.run([sys.executable, "-m", "ccs_analyzer.analyzer.cli", "analyze", str(cap), "-o", str(d)],
                   capture_output=True, text=True, timeout=3600)
    return load(d)


def load(d: Path) -> dict | None:
    try:
        return json.loads((d / "report.json").read_text())
    except (OSError, ValueError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("captures", nargs="*", type=Path)
    ap.add_argument("--reports", type=Path, help="read reports from here instead of analysing")
    ap.add_argument("--compare", type=Path, help="reports of another version to compare with")
    ap.add_argument("--save", type=Path, help="keep the reports made here")
    ap.add_argument("--no-score", action="store_true", help="do not run explain_score.py")
    a = ap.parse_args()
    caps = a.captures or default_captures()
    out = a.save or Path(tempfile.mkdtemp())
    keys = ("sessions", "findings", "to_read", "errors_to_read", "failed", "explained", "no_cause")
    tot_now = dict.fromkeys(keys, 0)
    tot_before = dict.fromkeys(keys, 0)
    print(f"{'capture':62} " + " ".join(f"{k:>16}" for k in keys))
    for cap in caps:
        now = counts(load(a.reports / cap.name) if a.reports else analyse(cap, out))
        before = counts(load(a.compare / cap.name)) if a.compare else None
        if now is None:
            print(f"{cap.name[:62]:62} no report")
            continue
        cells = []
        for k in keys:
            tot_now[k] += now[k]
            if before is not None:
                tot_before[k] += before[k]
                cells.append(f"{before[k]:>7} → {now[k]:<6}")
            else:
                cells.append(f"{now[k]:>16}")
        print(f"{cap.name[:62]:62} " + " ".join(cells))
    if a.compare:
        print(f"{'total':62} " + " ".join(f"{tot_before[k]:>7} → {tot_now[k]:<6}" for k in keys))
    else:
        print(f"{'total':62} " + " ".join(f"{tot_now[k]:>16}" for k in keys))
    scorer = SHARED / "tools" / "explain_score.py"
    labels = SHARED / "corpus" / "testevents" / "labels.jsonl"
    if not a.no_score and scorer.exists() and labels.exists():
        r = subprocess.run([sys.executable, str(scorer), "--labels", str(labels), "--captures",
                            str(labels.parent), "--cmd", f"{sys.executable} -m ccs_analyzer.analyzer.cli analyze",
                            "--show", "0", "--min-root", "0"], capture_output=True, text=True)
        print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
