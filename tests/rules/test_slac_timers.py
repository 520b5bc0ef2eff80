"""The ISO 15118-3 SLAC parameters as a sourced table (rules/slac_timers.py): well-formed
entries, and the SLAC rules' parameter defaults (and the simulator's bounds) read from it."""
from __future__ import annotations

import pytest

from ccs_analyzer.rules import all_rules
from ccs_analyzer.rules.slac_timers import SLAC_TIMERS, Parameter
from ccs_analyzer.samples.slac import TIMER_BOUNDS, TIMER_LIMITS, SlacConfig

RULES = {r.code: r for r in all_rules()}

#: rule parameter → table entry (PROTOCOL_FACTS §2.3-§2.6)
DEFAULTS = {
    ("SLC001", "tt_match_response_s"): "TT_match_response",
    ("SLC001", "tt_match_sequence_s"): "TT_match_sequence",
    ("SLC001", "tt_ev_atten_results_s"): "TT_EV_atten_results",
    ("SLC001", "tt_evse_match_session_s"): "TT_EVSE_match_session",
    ("SLC001", "attenuation_limit_db"): "SLAC_LIMIT",
    ("SLC001", "tt_matching_repetition_s"): "TT_matching_repetition",
    ("SLC004", "num_sounds"): "C_EV_match_MNBC",
    ("SLC004", "time_out_100ms"): "TIME_OUT",
    ("SLC004", "resp_type"): "RESP_TYPE",
    ("SLC006", "retries"): "C_EV_match_retry",
    ("SLC007", "tt_matching_rate_s"): "TT_matching_rate",
    ("SLC007", "tt_matching_repetition_s"): "TT_matching_repetition",
    ("SLC008", "limit_s"): "TT_match_response",
    ("SLC009", "limit_s"): "TT_match_sequence",
    ("SLC010", "max_s"): "TP_EV_batch_msg_interval",
    ("SLC011", "window_s"): "TT_EVSE_match_MNBC",
    ("SLC012", "start_atten_char_inds"): "C_EV_start_atten_char_inds",
    ("SLC012", "window_s"): "TT_EVSE_match_MNBC",
    ("SLC013", "limit_s"): "TT_EV_atten_results",
    ("SLC014", "limit_db"): "SLAC_LIMIT",
    ("SLC015", "groups"): "NumGroups",
    ("SLC017", "limit_s"): "TT_EVSE_match_session",
    ("SLC018", "limit_s"): "TP_EV_match_session",
    ("SLC020", "limit_s"): "TT_match_join",
    ("SLC021", "limit_s"): "TT_match_join",
    ("SDP008", "join_s"): "TT_match_join",
}


@pytest.mark.parametrize("name", sorted(SLAC_TIMERS))
def test_entries_are_sourced(name):
    p = SLAC_TIMERS[name]
    assert isinstance(p, Parameter) and p.name == name
    assert p.requirement and p.sources and p.unit is not None
    assert isinstance(p.value, (int, float)) and p.value > 0
    if p.minimum is not None:
        assert 0 <= p.minimum < p.value
    if not p.sure:
        assert p.alt is not None or p.note, "a ⚠ parameter says what the other claims are"


def test_the_standard_values():
    # PROTOCOL_FACTS §2.4-§2.6 (ISO 15118-3 Table A.1 family)
    got = {n: (p.value, p.minimum) for n, p in SLAC_TIMERS.items()}
    assert got["TT_match_response"] == (0.2, None)
    assert got["TT_match_sequence"] == (0.4, None)
    assert got["TP_EV_batch_msg_interval"] == (0.05, 0.02)
    assert got["TT_EVSE_match_MNBC"] == (0.6, None)
    assert got["TT_EV_atten_results"] == (1.2, None)
    assert got["TT_EVSE_match_session"] == (10.0, None)
    assert got["TP_EV_match_session"] == (0.5, None) and not SLAC_TIMERS["TP_EV_match_session"].sure
    assert got["TT_match_join"] == (12.0, None)
    assert got["TT_matching_rate"] == (0.4, None)
    assert got["TT_matching_repetition"] == (10.0, None)
    assert got["C_EV_match_retry"] == (2, None)
    assert got["C_EV_match_MNBC"] == (10, None)
    assert got["SLAC_LIMIT"] == (40.0, None)


@pytest.mark.parametrize("rule,param", sorted(DEFAULTS))
def test_rule_defaults_come_from_the_table(rule, param):
    assert RULES[rule].params[param] == SLAC_TIMERS[DEFAULTS[(rule, param)]].value
    assert type(RULES[rule].params[param]) is type(SLAC_TIMERS[DEFAULTS[(rule, param)]].value)


def test_batch_interval_range():
    p = RULES["SLC010"].params
    assert (p["min_s"], p["max_s"]) == (SLAC_TIMERS["TP_EV_batch_msg_interval"].minimum,
                                        SLAC_TIMERS["TP_EV_batch_msg_interval"].value)


def test_simulator_bounds_come_from_the_table():
    assert TIMER_LIMITS == {k: SLAC_TIMERS[n].value for k, n in TIMER_BOUNDS.items()}
    cfg = SlacConfig()
    assert (cfg.num_sounds, cfg.time_out, cfg.resp_type, cfg.start_atten_char_inds) == (10, 6, 1, 3)
