"""The one cache of an analysis (Analysis.view) and the shared views built with it
(analyzer/views/)."""
from __future__ import annotations

from dataclasses import replace

from ccs_analyzer.analyzer.views.exchanges import exchanges, responses
from ccs_analyzer.analyzer.views.index import session_index, v2g_messages
from ccs_analyzer.analyzer.views.loops import loop_runs
from ccs_analyzer.analyzer.views.timing import timing_view
from ccs_analyzer.analyzer.views.walk import walk
from tests.rules.util import EVSE, analyze_events, din, pv, script


def _analysis():
    evs = script([(din("SessionSetupReq", {"EVCCID": "01"}, "00"),
                   din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "1"}),
                   0.1, 0.05)]
                 + [(din("CurrentDemandReq", {"EVTargetCurrent": pv(10, "A")}),
                     din("CurrentDemandRes", {"ResponseCode": "OK", "EVSEPresentCurrent": pv(10, "A")}),
                     0.1, 0.05)] * 3)
    return analyze_events(evs)


def test_a_view_is_built_once_per_session():
    a = _analysis()
    s = a.sessions[0]
    calls = []
    first = a.view("test.thing", s, lambda: calls.append(1) or ["built"])
    assert a.view("test.thing", s, lambda: calls.append(1) or ["again"]) is first
    assert calls == [1]
    assert a.view("test.capture", None, dict) is a.view("test.capture", None, dict)
    assert a.view(("test.param", 1), s, lambda: 1) == 1 and a.view(("test.param", 2), s, lambda: 2) == 2


def test_another_session_object_or_a_grown_session_gets_its_own_view():
    a = _analysis()
    s = a.sessions[0]
    idx = session_index(s, a)
    copy = replace(s, events=list(s.events))          # same id, another object
    assert session_index(copy, a) is not idx
    grown = replace(s, events=s.events[:-1])
    assert session_index(grown, a).n == len(s.events) - 1


def test_the_rules_share_the_views_they_read():
    from ccs_analyzer.analyzer.engine import instantiate
    from ccs_analyzer.analyzer.profile import Profile
    a = _analysis()
    s = a.sessions[0]
    a.release(s)                                      # as the engine does after its rules
    assert not [k for k in a.cache if k[1] == s.id]
    for rule, _ in instantiate(Profile()):            # the session's rules, as the engine runs them
        if rule.scope != "capture":
            list(rule.check(s, a))
    n = len(a.cache)
    for view in (session_index, exchanges, responses, walk, loop_runs, timing_view):
        assert view(s, a) is view(s, a)
    assert v2g_messages(s, a) is session_index(s, a).v2g
    assert len(a.cache) == n                          # all built already, by the rules
    assert [x.name for x in exchanges(s, a)] == ["supportedAppProtocol", "SessionSetup"] + \
        ["CurrentDemand"] * 3
    assert [r.name for r in loop_runs(s, a)] == ["CurrentDemand"]
    assert [r.key for r in timing_view(s, a).runs] == ["supportedAppProtocol", "SessionSetup",
                                                       "charge loop"]
    assert {e.direction for e, _ in responses(s, a)} == {EVSE}


def test_tree_memo_keeps_values_by_tree_identity_and_is_bounded():
    from ccs_analyzer.analyzer.views.tree_memo import TreeMemo
    memo = TreeMemo(max_trees=2)
    a, equal_to_a, b, c = {"x": 1}, {"x": 1}, {"y": 2}, {"z": 3}
    assert memo.put(a, []) == [] and memo.get(a) == []      # an empty value is kept, not None
    assert memo.get(equal_to_a) is None                      # an equal tree is another tree
    memo.put(b, "b")
    assert len(memo) == 2
    memo.put(c, "c")                                         # full: starts afresh
    assert len(memo) == 1 and memo.get(a) is None and memo.get(c) == "c"
