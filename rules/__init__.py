"""The rule pack. :func:`all_rules` lists every rule class, the project's own and those
third parties register under the entry-point group ``ccs_analyzer.rules``."""
from __future__ import annotations

from .base import Finding, Rule
from .first_checks import FIRST_CHECKS

ENTRY_POINT_GROUP = "ccs_analyzer.rules"


def all_rules() -> list[type[Rule]]:
    """Every rule class, sorted by code."""
    rules = list(FIRST_CHECKS)
    return sorted(rules, key=lambda r: r.code)


__all__ = ["Finding", "Rule", "all_rules", "ENTRY_POINT_GROUP"]
