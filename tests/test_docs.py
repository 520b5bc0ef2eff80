"""The generated rule catalogue (docs/rules.md) is up to date with the rule pack."""
from __future__ import annotations

from pathlib import Path

from ccs_analyzer.analyzer.cli import rules_markdown
from ccs_analyzer.rules import all_rules

REPO = Path(__file__).resolve().parents[1]


def test_rules_md_is_current():
    assert (REPO / "docs" / "rules.md").read_text(encoding="utf-8") == rules_markdown(all_rules()), \
        "regenerate it: ccs-analyzer rules list --format markdown > docs/rules.md"
