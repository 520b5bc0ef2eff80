"""Shared test fixtures: where the real-capture corpus lives (../shared), and helpers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCS_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
GOLDEN = CORPUS / "golden"
SCHEMAS = SHARED / "schemas"


def corpus_captures() -> list[Path]:
    """Every capture of the corpus (empty when ../shared is absent)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".pcap", ".pcapng"))


def golden_rows(capture: Path) -> list[dict]:
    """The reference decode rows of a corpus capture."""
    with open(GOLDEN / (capture.name + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def golden_meta(capture: Path) -> dict:
    with open(GOLDEN / (capture.name + ".meta.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def corpus():
    """The corpus folder; skips the test when ../shared is absent."""
    if not CORPUS.is_dir():
        pytest.skip("real-capture corpus (../shared/corpus) not present")
    return CORPUS


@pytest.fixture(scope="session")
def testevents():
    """The labelled test-event captures (../shared/corpus/testevents); skips the test when
    they are absent."""
    folder = CORPUS / "testevents"
    if not folder.is_dir():
        pytest.skip("test-event captures (../shared/corpus/testevents) not present")
    return folder


_ANALYSES: dict = {}


def analyze_testevent(folder: Path, name: str):
    """The analysis of one test-event capture (``folder`` from the ``testevents`` fixture),
    computed once per test process."""
    if name not in _ANALYSES:
        from ccs_analyzer.analyzer.analysis import analyze_capture
        _ANALYSES[name] = analyze_capture(folder / name)
    return _ANALYSES[name]


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "corpus" in names or "testevents" in names:
            item.add_marker(pytest.mark.corpus)


def pytest_configure(config):
    config.addinivalue_line("markers", "corpus: uses the real-capture corpus in ../shared")
