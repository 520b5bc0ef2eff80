"""Behaviour does not change in a refactoring (issue 13): report.json of every corpus capture,
test-event capture and sample has the fingerprint it had before (tests/report_snapshot.py),
apart from fields deliberately added (``ADDED`` there)."""
from __future__ import annotations

import json

import pytest

from tests import report_snapshot as rs

_EXPECTED = json.loads(rs.SNAPSHOT.read_text(encoding="utf-8"))
_CAPTURES = rs.captures()


@pytest.mark.parametrize("key", sorted(set(_EXPECTED) | set(_CAPTURES)))
def test_report_json_unchanged(key):
    if key not in _CAPTURES:
        if key.startswith(("corpus/", "testevents/")):
            pytest.skip("../shared/corpus not present")
        pytest.fail(f"{key}: sample gone (rebuild samples or regenerate the fingerprints)")
    if key not in _EXPECTED:
        pytest.fail(f"{key}: new capture without a fingerprint (python -m tests.report_snapshot {key})")
    got = rs.fingerprint(rs.report_of(_CAPTURES[key]))
    assert got == _EXPECTED[key], f"{key}: " + "; ".join(rs.differences(_EXPECTED[key], got))


def test_fingerprint_sees_a_changed_finding():
    # the yardstick itself can fail: a changed severity changes the finding's digest
    rep = {"findings": [{"id": "F1", "rule": "X001", "severity": "error"}], "sessions": []}
    before = rs.fingerprint(rep)
    rep["findings"][0]["severity"] = "warning"
    after = rs.fingerprint(rep)
    assert before != after and any("findings" in d for d in rs.differences(before, after))


def test_added_fields_are_ignored(monkeypatch):
    rep = {"findings": [{"id": "F1", "rule": "X001"}], "sessions": []}
    before = rs.fingerprint(rep)
    monkeypatch.setattr(rs, "ADDED", ("findings[].values",))
    rep["findings"][0]["values"] = {"actual": "x"}
    assert rs.fingerprint(rep) == before
