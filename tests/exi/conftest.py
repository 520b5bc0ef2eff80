"""Shared fixtures of the EXI codec tests: the reference decodes in ../shared (skipped when
that folder is absent) and the schema folder for the regeneration test."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import GOLDEN, SCHEMAS, SHARED  # noqa: F401  (one place honours CCS_SHARED)


def _golden_rows() -> list[dict]:
    rows = []
    for path in sorted(GOLDEN.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                if r.get("kind") == "v2gtp" and r.get("hex") and r.get("namespace"):
                    rows.append(r)
    return rows


@pytest.fixture(scope="session")
def golden_rows() -> list[dict]:
    """Every V2GTP row of ../shared/corpus/golden/*.jsonl (skip when absent)."""
    if not GOLDEN.is_dir():
        pytest.skip(f"reference corpus not present at {GOLDEN}")
    rows = _golden_rows()
    if not rows:
        pytest.skip(f"no V2GTP rows in {GOLDEN}")
    return rows


@pytest.fixture(scope="session")
def golden_messages(golden_rows) -> dict[tuple[str, str], list[dict]]:
    """Distinct (hex, namespace) → the rows carrying that message."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in golden_rows:
        out.setdefault((r["hex"], r["namespace"]), []).append(r)
    return out


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    """../shared/schemas (skip when absent)."""
    if not (SCHEMAS / "V2G_CI_AppProtocol.xsd").is_file():
        pytest.skip(f"schemas not present at {SCHEMAS}")
    return SCHEMAS
