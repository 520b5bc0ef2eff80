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


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "corpus" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.corpus)


def pytest_configure(config):
    config.addinivalue_line("markers", "corpus: uses the real-capture corpus in ../shared")
