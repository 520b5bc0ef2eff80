"""Scenario files and the fault registry: every shipped scenario loads; the format rejects
what it cannot simulate with a message that says why; every fault is documented, used by a
shipped scenario and in docs/simulator.md; every rule category has a fault."""
from __future__ import annotations

from pathlib import Path

import pytest

from ccs_analyzer.rules.base import CATEGORIES
from ccs_analyzer.samples import FAULTS, ScenarioError, load_scenario, parse_scenario, scenario_names
from ccs_analyzer.samples.faults import LEVELS, STAGES

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


def test_every_scenario_loads_and_has_a_description():
    names = scenario_names()
    assert len(names) >= 40
    for n in names:
        sc = load_scenario(n)
        assert sc.name == n and sc.description, n
        assert sc.sessions


def test_scenario_by_path(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('protocol = "DIN 70121"\n[timing]\nloop_cycles = 5\n')
    sc = load_scenario(p)
    assert sc.name == "mine" and sc.sessions[0].timing.loop_cycles == 5


@pytest.mark.parametrize("table, words", [
    ({"protocl": "DIN 70121"}, "unknown key"),
    ({"protocol": "ISO 15118-3"}, "protocol"),
    ({"protocol": "DIN 70121", "mode": "AC"}, "DIN 70121 is DC"),
    ({"battery": {"soc": 3}}, "unknown key"),
    ({"timing": {"loop_cycle": 3}}, "unknown key"),
    ({"slac": {"timers": {"nope_s": 1}}}, "unknown key"),
    ({"faults": [{"name": "no_such_fault"}]}, "unknown fault"),
    ({"faults": [{"name": "late_response", "delay": 3}]}, "unknown parameter"),
    ({"faults": [{"name": "late_response", "delay_s": "3"}]}, "should be a float"),
    ({"faults": [{"name": "late_response", "session": 2}]}, "session 2 does not exist"),
    ({"protocol": "ISO 15118-20", "renegotiation": {"at_cycle": 3}}, "renegotiation"),
    ({"protocol": "DIN 70121", "pause": {"at_cycle": 3}}, "pause"),
])
def test_bad_scenarios_are_refused_with_a_reason(table, words):
    with pytest.raises(ScenarioError, match=words):
        parse_scenario(table, "bad")


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="din_dc"):
        load_scenario("no_such_scenario")


def test_a_fault_that_does_not_fit_the_session_is_refused():
    from ccs_analyzer.samples import simulate
    sc = parse_scenario({"faults": [{"name": "late_response", "message": "ChargingStatusRes"}]}, "x")
    with pytest.raises(ScenarioError):
        simulate(parse_scenario({"faults": [{"name": "missing_response", "message": "NoSuchReq"}]}, "x"))
    assert sc.sessions[0].faults[0].name == "late_response"


def test_every_fault_is_registered_with_level_stage_category_and_doc():
    assert len(FAULTS) >= 30
    for name, f in FAULTS.items():
        assert f.level in LEVELS and f.stage in STAGES, name
        assert f.category in CATEGORIES, (name, f.category)
        assert len(f.doc) > 80, name


def test_every_rule_category_has_a_fault():
    covered = {f.category for f in FAULTS.values()}
    assert set(CATEGORIES) <= covered, sorted(set(CATEGORIES) - covered)


def test_every_fault_is_used_by_a_shipped_scenario():
    used = set()
    for n in scenario_names():
        sc = load_scenario(n)
        used |= {f.name for s in sc.sessions for f in s.faults} | {f.name for f in sc.capture_faults}
    assert set(FAULTS) <= used, sorted(set(FAULTS) - used)


def test_docs_list_every_fault_and_scenario():
    text = DOC.read_text(encoding="utf-8")
    for name in FAULTS:
        assert f"`{name}`" in text, name
    for name in scenario_names():
        assert f"`{name}`" in text, name


def test_several_sessions_and_per_session_faults():
    sc = parse_scenario({"protocol": "DIN 70121", "sessions": [{"protocol": "ISO 15118-2", "gap_s": 3.0}],
                         "faults": [{"name": "late_response", "message": "CableCheckRes", "session": 2}]}, "x")
    assert [s.protocol for s in sc.sessions] == ["DIN 70121", "ISO 15118-2"]
    assert sc.sessions[0].faults == [] and sc.sessions[1].faults[0].name == "late_response"
    assert sc.sessions[1].gap_s == 3.0
