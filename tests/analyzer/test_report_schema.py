"""report.json validates against its published JSON Schema (reports/schema/report.schema.json),
on the project's sample and on every corpus capture."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.reports.json_report import report_dict
from tests.conftest import corpus_captures

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "din_dc_session.pcapng"


def schema() -> dict:
    return json.loads(resources.files("ccs_analyzer.reports").joinpath("schema/report.schema.json").read_text())


def validate(rep: dict) -> None:
    jsonschema.validate(rep, schema(), cls=jsonschema.Draft202012Validator)
    ids = {f["id"] for f in rep["findings"]}
    for s in rep["sessions"]:
        assert s["root_cause"] is None or s["root_cause"] in ids
        assert set(s["findings"]) <= ids
    for f in rep["findings"]:
        assert f["caused_by"] is None or f["caused_by"] in ids


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(schema())


def test_sample_report_validates():
    validate(json.loads(json.dumps(report_dict(analyze_capture(SAMPLE)))))


@pytest.mark.parametrize("cap", corpus_captures(), ids=lambda p: p.name[:40])
def test_corpus_reports_validate(corpus, cap):
    rep = json.loads(json.dumps(report_dict(analyze_capture(cap))))
    validate(rep)
    assert rep["frame_accounting"]["frames"] == rep["capture"]["frames"]
