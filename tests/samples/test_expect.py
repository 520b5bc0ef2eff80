"""The ``[expect]`` table of a scenario (what a correct analysis concludes): it parses into
``Scenario.expect``, refuses unknown keys and bad values with the reason, speaks the
analyzer's words (outcomes, phases, culprits) and names only rules of the rule pack.

Whether the analyzer reaches those conclusions is tests/samples/test_expectations.py's."""
from __future__ import annotations

import pytest

from ccs_analyzer.analyzer import outcome as analyzer_outcome
from ccs_analyzer.rules import all_rules
from ccs_analyzer.rules.base import CULPRITS
from ccs_analyzer.samples import ScenarioError, load_scenario, parse_scenario, scenario_names
from ccs_analyzer.samples.scenario import (EXPECT_CULPRITS, EXPECT_OUTCOMES, EXPECT_PHASES, Expectation,
                                           SessionExpectation)

#: the scenarios made for the classes of failure explanation (samples/faults_causes.py)
CAUSE_SCENARIOS = ("iso2_dc_ev_foreign_session_id", "din_dc_no_current_ev_gives_up",
                   "iso2_dc_ev_stops_in_precharge", "din_dc_reconnect_flood", "iso2_dc_conformance_only",
                   "din_dc_evse_stops", "din_dc_response_after_ev_timeout", "din_dc_cablecheck_never_finished",
                   "din_dc_cablecheck_invalid_ignored", "iso2_dc_no_current_evse_stops")

GOOD = {"sessions": 1, "session": [{
    "outcome": "timed out", "phase_reached": "charging", "root_rule": "TIM001", "root_culprit": "SECC",
    "consequences": ["SEQ001", "TRN002"], "goal": "not achieved", "conformance": "fail"}]}


def with_expect(expect) -> dict:
    return {"protocol": "DIN 70121", "expect": expect}


def test_a_full_table_parses():
    sc = parse_scenario(with_expect(GOOD), "x")
    assert sc.expect == Expectation(sessions=1, session=[SessionExpectation(
        outcome="timed out", phase_reached="charging", root_rule="TIM001", root_culprit="SECC",
        consequences=["SEQ001", "TRN002"], goal="not achieved", conformance="fail")])
    assert sc.expect.rule_codes() == {"TIM001", "SEQ001", "TRN002"}


def test_keys_left_out_are_not_stated():
    sc = parse_scenario(with_expect({"session": [{"outcome": "never got past SDP", "root_rule": "none"}]}), "x")
    e = sc.expect.session[0]
    assert sc.expect.sessions is None and e.outcome == "never got past SDP" and e.root_rule == "none"
    assert e.consequences is None and e.goal is None and sc.expect.rule_codes() == set()
    assert parse_scenario({"protocol": "DIN 70121"}, "x").expect is None
    assert parse_scenario(with_expect({"sessions": 2}), "x").expect == Expectation(sessions=2)


def test_the_toml_form_parses(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('protocol = "DIN 70121"\n\n[expect]\nsessions = 1\n\n[[expect.session]]\n'
                 'outcome = "completed normally"\nroot_rule = "none"\ngoal = "achieved"\nconformance = "pass"\n')
    e = load_scenario(p).expect
    assert e.sessions == 1 and e.session[0].goal == "achieved" and e.session[0].root_rule == "none"


@pytest.mark.parametrize("expect, words", [
    ({"session_count": 1}, "unknown key"),
    ({"sessions": "1"}, "whole number"),
    ({"sessions": True}, "whole number"),
    ({"sessions": -1}, "whole number"),
    ({"session": {"outcome": "timed out"}}, "list of tables"),
    ({"session": ["timed out"]}, "should be a table"),
    ({"session": [{"outcom": "timed out"}]}, "unknown key"),
    ({"session": [{"outcome": "failed"}]}, "outcome 'failed'"),
    ({"session": [{"outcome": 3}]}, "should be a string"),
    ({"session": [{"outcome": "never got past the moon"}]}, "phase"),
    ({"session": [{"phase_reached": "precharge"}]}, "phase_reached"),
    ({"session": [{"root_rule": "tim001"}]}, "not a rule code"),
    ({"session": [{"root_rule": "TIM1"}]}, "not a rule code"),
    ({"session": [{"root_culprit": "EV"}]}, "root_culprit"),
    ({"session": [{"consequences": "SEQ001"}]}, "list of rule codes"),
    ({"session": [{"consequences": ["SEQ001", "late"]}]}, "not a rule code"),
    ({"session": [{"goal": "yes"}]}, "goal"),
    ({"session": [{"conformance": "warning"}]}, "conformance"),
    ({"session": [{"root_rule": "none", "consequences": ["SEQ001"]}]}, "need a root cause"),
    ({"session": [{"root_rule": "none", "root_culprit": "SECC"}]}, "need a root cause"),
    ({"sessions": 2, "session": [{"outcome": "timed out"}]}, "one per session"),
])
def test_bad_tables_are_refused_with_a_reason(expect, words):
    with pytest.raises(ScenarioError, match=words):
        parse_scenario(with_expect(expect), "bad")


def test_expect_is_not_a_session_key():
    with pytest.raises(ScenarioError, match="unknown key"):
        parse_scenario({"protocol": "DIN 70121", "sessions": [{"expect": GOOD}]}, "bad")


def test_the_words_are_the_analyzers():
    assert EXPECT_PHASES == analyzer_outcome.PHASES
    assert set(EXPECT_CULPRITS) == set(CULPRITS)
    doc = analyzer_outcome.__doc__
    for o in EXPECT_OUTCOMES:
        assert f"``{o}``" in doc, o


def test_cause_scenarios_state_their_expectations():
    for n in CAUSE_SCENARIOS:
        e = load_scenario(n).expect
        assert e is not None and e.sessions == 1 and len(e.session) == 1, n
        s = e.session[0]
        assert s.outcome is None or s.outcome in EXPECT_OUTCOMES, n
        assert s.goal and s.conformance and s.phase_reached, n


def test_every_rule_an_expectation_names_exists():
    codes = {r.code for r in all_rules()}
    for n in scenario_names():
        e = load_scenario(n).expect
        if e is not None:
            assert e.rule_codes() <= codes, (n, sorted(e.rule_codes() - codes))
