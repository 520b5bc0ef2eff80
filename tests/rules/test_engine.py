"""The engine: profiles, caps, outcome, root cause, scoring, plug-ins — on event-level sessions."""
from __future__ import annotations

import pytest

from ccs_analyzer.analyzer.profile import Profile, ProfileError, load_profile
from ccs_analyzer.rules import all_rules
from tests.rules.util import EV, EVSE, analyze_events, din, pv, rules_found, script

OK_STATUS = {"EVSEIsolationStatus": "Valid", "EVSEStatusCode": "EVSE_Ready",
             "NotificationMaxDelay": 0, "EVSENotification": "None"}
EV_STATUS = {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 50}


def setup_exchanges():
    return [(din("SessionSetupReq", {"EVCCID": "01"}, "00"),
             din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}), 0.05, 0.02)]


def precharge(n, volts, target=400.0):
    out = []
    for i in range(n):
        out.append((din("PreChargeReq", {"DC_EVStatus": EV_STATUS, "EVTargetVoltage": pv(target, "V"),
                                         "EVTargetCurrent": pv(1, "A")}),
                    din("PreChargeRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_STATUS,
                                         "EVSEPresentVoltage": pv(volts[i], "V")}), 0.5, 0.02))
    return out


def stop():
    return [(din("SessionStopReq", {}), din("SessionStopRes", {"ResponseCode": "OK"}), 0.05, 0.02)]


def test_precharge_timeout_is_the_root_cause_and_links_consequences():
    evs = script(setup_exchanges() + precharge(20, [10.0 * i for i in range(20)]))
    a = analyze_events(evs)
    (pre,) = rules_found(a, "PRE001")
    s = a.summaries["S1"]
    assert s["root_cause"] == pre.id
    assert s["outcome"] == "timed out" or s["outcome"].startswith("capture") or s["verdict"] == "fail"
    assert s["verdict"] == "fail" and s["score"] < 100


def test_profile_disables_and_rerates(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[rules]\ndisable = ["precharge"]\n[rules.SEQ001]\nseverity = "info"\n')
    prof = load_profile(p, all_rules())
    evs = script(setup_exchanges() + precharge(20, [10.0 * i for i in range(20)]))
    a = analyze_events(evs, profile=prof)
    assert not rules_found(a, "PRE001")
    assert all(f.severity == "info" for f in rules_found(a, "SEQ001"))


def test_profile_parameters_apply(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[rules.PRE001]\nlimit_s = 60.0\n")
    evs = script(setup_exchanges() + precharge(20, [10.0 * i for i in range(19)] + [395.0]) + stop())
    assert rules_found(analyze_events(evs), "PRE001")
    assert not rules_found(analyze_events(evs, profile=load_profile(p, all_rules())), "PRE001")


@pytest.mark.parametrize("text,why", [
    ("[rules.NOPE001]\nlimit_s = 1\n", "unknown rule"),
    ("[rules.PRE001]\nlimit = 1\n", "no parameter"),
    ("[rules.PRE001]\nseverity = \"fatal\"\n", "severity"),
    ("[rules]\ndisable = [\"nonsense\"]\n", "unknown rule or category"),
    ("this is = = not toml", "not valid TOML"),
    ("[scoring]\nerrors = 3\n", "unknown scoring key"),
])
def test_bad_profiles_are_explained(tmp_path, text, why):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ProfileError, match=why):
        load_profile(p, all_rules())


def test_findings_are_capped_with_count_and_last_frame():
    from ccs_analyzer.analyzer.engine import _cap
    from ccs_analyzer.rules.base import Finding
    fs = [Finding("X001", "t", "limits", "warning", "SECC", "S1", [i], float(i), f"n{i}")
          for i in range(1, 101)]
    capped = _cap(fs, 5)
    assert len(capped) == 5 and capped[-1].count == 96
    assert capped[-1].frames == [5, 100] and "96 such findings" in capped[-1].synopsis


def charge_loop(n, amps=50.0, volts=399.0):
    """``n`` CurrentDemand exchanges, 0.1 s apart, the EVSE delivering what the EV asks."""
    return [(din("CurrentDemandReq", {"DC_EVStatus": EV_STATUS, "EVTargetVoltage": pv(volts, "V"),
                                      "EVTargetCurrent": pv(amps, "A"), "ChargingComplete": False}),
             din("CurrentDemandRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_STATUS,
                                      "EVSEPresentVoltage": pv(volts, "V"),
                                      "EVSEPresentCurrent": pv(amps, "A"),
                                      "EVSECurrentLimitAchieved": False,
                                      "EVSEVoltageLimitAchieved": False,
                                      "EVSEPowerLimitAchieved": False}), 0.1, 0.02)
            for _ in range(n)]


def test_clean_session_passes():
    evs = script(setup_exchanges() + precharge(3, [100.0, 300.0, 399.0]) +
                 [(din("PowerDeliveryReq", {"ReadyToChargeState": True}),
                   din("PowerDeliveryRes", {"ResponseCode": "OK", "DC_EVSEStatus": OK_STATUS}), 0.05, 0.02)]
                 + charge_loop(100) + stop())
    a = analyze_events(evs)
    s = a.summaries["S1"]
    assert s["outcome"] == "completed normally" and s["goal"] == "achieved", s
    assert a.verdict in ("pass", "warn") and s["root_cause"] is None
    assert not [f for f in a.findings if f.severity == "error"]


def test_ev_stop_before_charging_is_a_failure_without_visible_cause():
    """Class 3 of the explanation issue: the EV stops during PreCharge for no visible reason
    — the session failed, and the explanation says that no cause is visible and why."""
    evs = script(setup_exchanges() + precharge(3, [100.0, 300.0, 380.0]) + stop())
    a = analyze_events(evs)
    s = a.summaries["S1"]
    assert s["outcome"] == "stopped by EV" and s["goal"] == "not achieved" and s["verdict"] == "fail"
    assert s["root_cause"] is None and s["no_cause_visible"]
    assert "No cause visible" in s["explanation"] and "pre-charge" in s["explanation"]
    assert "3 PreChargeReq" in s["explanation"] and "380 V of 400 V" in s["explanation"]


def test_rule_catalogue_is_well_formed():
    codes = [r.code for r in all_rules()]
    assert len(codes) == len(set(codes))
    for r in all_rules():
        doc = r.__doc__ or ""
        for section in ("What it checks", "Why it matters", "Fix", "Source"):
            assert section in doc, f"{r.code} docstring lacks {section!r}"
        assert r.title and r.category and r.severity


def test_judged_values_travel_with_the_finding_and_its_merged_repeats():
    from types import SimpleNamespace

    from ccs_analyzer.analyzer.engine import merge_repeats
    from ccs_analyzer.rules.base import Rule, judged

    class R(Rule):
        code, title, category = "TST001", "t", "limits"

    e1 = SimpleNamespace(name="PreChargeRes", frame=7)
    e2 = SimpleNamespace(name="PreChargeRes", frame=9)
    v1 = judged(e1, "EVSEPresentVoltage", 347.0, limit=344.0, unit="V")
    assert v1 == {"path": "PreChargeRes.EVSEPresentVoltage", "frame": 7, "actual": 347.0,
                  "limit": 344.0, "unit": "V"}
    assert judged(e1, "DC_EVSEStatus.EVSEStatusCode") == {"path": "PreChargeRes.DC_EVSEStatus.EVSEStatusCode",
                                                          "frame": 7}
    assert judged(None, "EVSEPresentVoltage", 1.0) is None
    assert judged(SimpleNamespace(frame=3, time=1.0), "SessionID") is None   # let go (Past)
    cd = SimpleNamespace(name="CurrentDemandRes", frame=8, message={"V2G_Message": {"Header": {}, "Body": {
        "CurrentDemandRes": {"EVSEMaximumCurrentLimit": {"Multiplier": 0, "Unit": "A", "Value": 150}}}}})
    assert judged(cd, ("EVSEMaximumChargeCurrent", "EVSEMaximumCurrentLimit"), 150.0)["path"] == \
        "CurrentDemandRes.EVSEMaximumCurrentLimit"     # the name the message holds
    a = R().finding(None, [7], "voltage 347 V", values=[v1, None, dict(v1)])   # repeats dropped
    b = R().finding(None, [9], "voltage 350 V", values=[judged(e2, "EVSEPresentVoltage", 350.0)])
    assert a.values == [v1] and a.to_json()["values"] == [v1]
    (m,) = merge_repeats([a, b])
    assert [v["frame"] for v in m.values] == [7, 9] and m.frames == [7, 9]
