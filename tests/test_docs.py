"""The generated rule catalogue (docs/rules.md) is up to date with the rule pack; the causal
vocabulary is documented and used consistently."""
from __future__ import annotations

from pathlib import Path

from ccs_analyzer.analyzer.cli import rules_markdown
from ccs_analyzer.rules import all_rules

REPO = Path(__file__).resolve().parents[1]


def test_rules_md_is_current():
    assert (REPO / "docs" / "rules.md").read_text(encoding="utf-8") == rules_markdown(all_rules()), \
        "regenerate it: ccs-analyzer rules list --format markdown > docs/rules.md"


def test_root_cause_doc_names_every_kind():
    """docs/root-cause.md explains every kind of the causal vocabulary (rules/causes.py)."""
    from ccs_analyzer.rules.causes import KINDS
    text = (REPO / "docs" / "root-cause.md").read_text(encoding="utf-8")
    assert not [k for k in KINDS if f"`{k}`" not in text]


def test_every_rule_declares_known_kinds():
    """Rules speak the causal vocabulary: every kind a rule declares is in rules/causes.py."""
    from ccs_analyzer.rules.causes import unknown_kinds
    bad = {r.code: unknown_kinds(r.kinds + r.explains) for r in all_rules()}
    assert not {k: v for k, v in bad.items() if v}


def test_readme_counts_the_rules():
    import re
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"checks it against (\d+) protocol\s+rules", text)
    assert m and int(m.group(1)) == len(all_rules())


def test_events_md_is_current():
    """docs/events.md is generated from the event catalogue (dissectors/events.py)."""
    from ccs_analyzer.dissectors.events import catalogue_markdown
    assert (REPO / "docs" / "events.md").read_text(encoding="utf-8") == catalogue_markdown(), \
        "regenerate it: python -m ccs_analyzer.dissectors.events > docs/events.md"
