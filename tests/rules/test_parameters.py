"""Rule parameters say their unit: in the name (``limit_s``, ``tolerance_v``,
``time_out_100ms``, ``max_pmax_entries``) or, for one that has none (a ratio, a list of
names), in the rule's docstring; a renamed parameter's former name still works, in a profile
and in the constructor (docs/profiles.md "Renamed parameters")."""
from __future__ import annotations

import re

import pytest

from ccs_analyzer.analyzer.profile import ProfileError, load_profile
from ccs_analyzer.rules import all_rules

#: Name endings that carry a unit: SI and other physical units, and what a count counts.
UNIT_SUFFIX = re.compile(r"_(s|ms|100ms|v|a|w|wh|pct|db|days|hz|ohm|epoch_s|bytes|messages|entries|"
                         r"cycles|requests|certificates|inds|sounds|groups|retries|port)$")
RULES = {r.code: r for r in all_rules() if r.__module__.startswith("ccs_analyzer.rules.")}


def test_every_parameter_carries_its_unit_in_its_name_or_its_doc():
    silent = []
    for code, r in sorted(RULES.items()):
        doc = r.__doc__ or ""
        for name in r.params:
            if not UNIT_SUFFIX.search(name) and f"``{name}``" not in doc:
                silent.append(f"{code}.{name}")
    assert silent == []


def test_former_names_lead_to_parameters_that_exist():
    for code, r in RULES.items():
        for old, new in r.renamed_params.items():
            assert new in r.params and old not in r.params, (code, old, new)


@pytest.mark.parametrize("code,old,new", sorted(
    (c, o, n) for c, r in RULES.items() for o, n in r.renamed_params.items()))
def test_a_former_name_sets_the_renamed_parameter(tmp_path, code, old, new):
    value = RULES[code].params[new] + 1
    p = tmp_path / "old.toml"
    p.write_text(f"[rules.{code}]\n{old} = {value!r}\n")
    prof = load_profile(p, all_rules())
    settings = prof.settings(RULES[code])
    assert settings.params == {new: value}
    assert RULES[code](**settings.params).p[new] == value
    assert RULES[code](**{old: value}).p[new] == value
    p.write_text(f"[rules.{code}]\n{old} = {value!r}\n{new} = {value!r}\n")
    with pytest.raises(ProfileError, match="former name"):
        load_profile(p, all_rules())
