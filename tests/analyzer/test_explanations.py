"""Explanations a protocol expert would sign, measured on the real test-event captures: the
shared scorer (../shared/tools/explain_score.py) runs ``ccs-analyzer analyze`` on every
labelled capture of ../shared/corpus/testevents and compares outcomes, root causes and
detected defects with the hand-made labels (testevents/README.md). The figures are printed
(``pytest -s``) and kept as test properties; the targets are those of the explanation issue:
outcome ≥ 90 %, root cause ≥ 80 %, detection ≥ 80 %, and no clean completed session judged
"fail". Skips without ../shared."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import SHARED

SCORER = SHARED / "tools" / "explain_score.py"
TARGETS = {"outcome": 90.0, "root cause": 80.0, "detection": 80.0}


def test_explanations_agree_with_the_test_event_labels(testevents, record_property):
    if not SCORER.exists():
        pytest.skip("../shared/tools/explain_score.py not present")
    cmd = f"{sys.executable} -m ccs_analyzer.analyzer.cli analyze"
    r = subprocess.run([sys.executable, str(SCORER), "--labels", str(testevents / "labels.jsonl"),
                        "--captures", str(testevents), "--cmd", cmd, "--show", "60", "--min-root", "0"],
                       capture_output=True, text=True, timeout=900)
    print(r.stdout)
    last = r.stdout.strip().splitlines()[-1]
    got = {}
    for name, a, b in re.findall(r"(outcome|root cause|detection) (\d+)/(\d+)", last):
        got[name] = (int(a), int(b))
    clean = re.search(r"'fail' on clean sessions (\d+)/(\d+)", last)
    assert got.keys() == TARGETS.keys() and clean, last
    for name, (a, b) in got.items():
        record_property(name, f"{a}/{b}")
        assert b and 100.0 * a / b >= TARGETS[name], f"{name} {a}/{b} below {TARGETS[name]} %: {last}"
    record_property("fail on clean sessions", clean.group(0))
    assert clean.group(1) == "0", last
