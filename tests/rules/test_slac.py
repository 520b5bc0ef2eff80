"""SLAC rules (rules/slac/): event-level cases that trigger each rule and close cases that
must not, and what the rules say about the real captures (CORPUS.md)."""
from __future__ import annotations

import pytest

from ccs_analyzer.analyzer.views.slac import (EV_SENDS, IND, MATCH_CNF, MATCH_REQ, MNBC, PARM_CNF,
                                              PARM_REQ, RSP, SET_KEY_CNF, SET_KEY_REQ, START)
from tests.conftest import analyze_testevent
from tests.rules.util import EV, EVSE, analyze_events, ev, rules_found

EV_MAC, EVSE_MAC, EVSE2_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
BCAST = "ff:ff:ff:ff:ff:ff"
RUN = "a1b2c3d4e5f60718"
NID = "0102030405060f"
EV_IP, SECC_IP = "fe80::1", "fe80::2"


def step(t, name, fields, src, dst):
    return {"t": t, "name": name, "f": dict(fields), "src": src, "dst": dst}


def nominal(t0=0.0, run=RUN, evse=EVSE_MAC, aag=12.0, *, match=True):
    """The steps of a successful SLAC run (timings within every ISO 15118-3 timer)."""
    s = [step(t0, PARM_REQ, {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0, "RunID": run}, EV_MAC, BCAST),
         step(t0 + 0.05, PARM_CNF, {"M-SOUND_TARGET": BCAST, "NUM_SOUNDS": 10, "Time_Out": 6,
                                    "RESP_TYPE": 1, "FORWARDING_STA": EV_MAC, "APPLICATION_TYPE": 0,
                                    "SECURITY_TYPE": 0, "RunID": run, "Time_Out_s": 0.6}, evse, EV_MAC)]
    for i in range(3):
        s.append(step(t0 + 0.15 + 0.025 * i, START, {"NUM_SOUNDS": 10, "Time_Out": 6, "RESP_TYPE": 1,
                                                      "FORWARDING_STA": EV_MAC, "RunID": run},
                      EV_MAC, BCAST))
    for i in range(10):
        s.append(step(t0 + 0.225 + 0.025 * i, MNBC, {"Cnt": 9 - i, "RunID": run}, EV_MAC, BCAST))
    s.append(ind(t0 + 0.55, run, evse, aag))
    s.append(step(t0 + 0.56, RSP, {"RunID": run, "Result": 0}, EV_MAC, evse))
    if match:
        s.append(step(t0 + 0.85, MATCH_REQ, {"PEV_MAC": EV_MAC, "EVSE_MAC": evse, "RunID": run},
                      EV_MAC, evse))
        s.append(step(t0 + 0.9, MATCH_CNF, {"PEV_MAC": EV_MAC, "EVSE_MAC": evse, "RunID": run,
                                            "NID": NID, "NMK": "00" * 16}, evse, EV_MAC))
    return s


def ind(t, run=RUN, evse=EVSE_MAC, aag=12.0, sounds=10, groups=58):
    return step(t, IND, {"RunID": run, "NUM_SOUNDS": sounds, "NumGroups": groups,
                         "AAG": [int(aag)] * groups, "AAG_mean_dB": aag}, evse, EV_MAC)


def sdp(t, answered=True):
    """SDP request (and response) steps."""
    out = [{"t": t, "layer": "sdp", "name": "SDP request", "dir": EV,
            "f": {"Security": "NoTLS", "TransportProtocol": "TCP"},
            "src": f"[{EV_IP}]:50000", "dst": "[ff02::1]:15118", "info": {"src_mac": EV_MAC}}]
    if answered:
        out.append({"t": t + 0.05, "layer": "sdp", "name": "SDP response", "dir": EVSE,
                    "f": {"SECCIPAddress": SECC_IP, "SECCPort": 60000, "Security": "NoTLS",
                          "TransportProtocol": "TCP"},
                    "src": f"[{SECC_IP}]:15118", "dst": f"[{EV_IP}]:50000",
                    "info": {"dst_mac": EV_MAC}})
    return out


def events(steps, end=None):
    """Events from steps (frames in time order); ``end``: time of a last capture event."""
    steps = sorted(steps, key=lambda s: s["t"])
    out = []
    for i, s in enumerate(steps, 1):
        layer = s.get("layer", "slac")
        if layer == "slac":
            d = EV if s["name"] in EV_SENDS else (EVSE if s["name"].startswith("CM_") and
                                                   s["name"] not in (SET_KEY_REQ, SET_KEY_CNF) else None)
            proto = "SLAC" if d else "HomePlug"
            e = ev(i, s["t"], "slac", s["name"], d, s["f"], src=s["src"], dst=s["dst"])
            e.protocol = proto
        else:
            e = ev(i, s["t"], layer, s["name"], s["dir"], s["f"], src=s["src"], dst=s["dst"],
                   info=s.get("info"))
        out.append(e)
    if end is not None:
        out.append(ev(len(out) + 1, end, "capture", "capture end"))
    return out


def run(steps, end=None):
    return analyze_events(events(steps, end))


def only(a, code):
    fs = rules_found(a, code)
    assert len(fs) == 1, [f.synopsis for f in a.findings]
    return fs[0]


def slac_findings(a):
    return [f for f in a.findings if f.category == "slac"]


def drop(steps, *names):
    return [s for s in steps if s["name"] not in names]


def edit(steps, name, index=0, **changes):
    """Change the fields (and ``t``) of the index-th step named ``name``."""
    hits = [s for s in steps if s["name"] == name]
    s = hits[index]
    if "t" in changes:
        s["t"] = changes.pop("t")
    s["f"].update(changes)
    return steps


# --------------------------------------------------------------------------- clean
def test_nominal_slac_with_sdp_is_clean():
    a = run(nominal() + sdp(3.0), end=20.0)
    assert slac_findings(a) == []
    assert not [f for f in a.findings if f.category == "sdp"]


def test_vlan_copies_do_not_count_twice():
    steps = nominal()
    copies = [dict(s, f=dict(s["f"])) for s in steps if s["name"] in (PARM_REQ, START, MNBC)]
    a = run(steps + copies + sdp(3.0), end=20.0)
    assert slac_findings(a) == []


# --------------------------------------------------------------------------- SLC001
@pytest.mark.parametrize("keep_until,culprit,stopped", [
    (PARM_REQ, "SECC", PARM_REQ), (PARM_CNF, "EVCC", PARM_CNF), (MNBC, "SECC", MNBC),
    (IND, "EVCC", IND), (RSP, "EVCC", RSP), (MATCH_REQ, "SECC", MATCH_REQ)])
def test_slac_incomplete_names_where_it_stopped(keep_until, culprit, stopped):
    steps = nominal()
    last = max(i for i, s in enumerate(steps) if s["name"] == keep_until)
    a = run(steps[:last + 1], end=30.0)
    f = only(a, "SLC001")
    assert f.severity == "error" and f.culprit == culprit
    assert f"stopped after {stopped}" in f.synopsis and f.time - 1_700_000_000.0 == pytest.approx(steps[last]["t"])


def test_slac_incomplete_not_blamed_when_capture_ends():
    steps = nominal()[:2]                       # REQ, CNF and the capture ends 100 ms later
    a = run(steps, end=0.15)
    f = only(a, "SLC001")
    assert f.severity == "info" and f.culprit == "capture"
    assert a.summaries["S1"]["root_cause"] is None


def test_slac_incomplete_attenuation_blames_the_link():
    steps = nominal(aag=50.0)
    a = run(drop(steps, MATCH_REQ, MATCH_CNF), end=30.0)
    f = only(a, "SLC001")
    assert f.culprit == "link" and "50.0 dB" in f.synopsis


def test_slac_complete_has_no_slc001():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC001")


# --------------------------------------------------------------------------- SLC002
def test_one_sided_capture_is_capture_quality_not_a_slac_error():
    steps = [s for s in nominal() if s["name"] not in EV_SENDS]
    a = run(steps, end=30.0)
    assert not [x for x in a.findings if x.category in ("slac", "sdp", "handshake")]


def test_ev_side_only_is_not_an_evse_failure():
    steps = [s for s in nominal() if s["name"] in EV_SENDS]
    a = run(steps, end=30.0)
    assert not [x for x in a.findings if x.category in ("slac", "sdp", "handshake")]


def test_missing_messages_with_both_sides_visible():
    steps = drop(nominal(), MATCH_REQ, START, MNBC)
    a = run(steps + sdp(3.0), end=20.0)
    f = only(a, "SLC002")
    assert f.severity == "info" and f.culprit == "capture"
    assert "CM_SLAC_MATCH.REQ" in f.synopsis and "CM_MNBC_SOUND.IND" in f.synopsis
    assert not [x for x in slac_findings(a) if x.rule != "SLC002"]


def test_match_proved_by_sdp_response_is_partial():
    steps = drop(nominal(), MATCH_CNF, MATCH_REQ)
    a = run(steps + sdp(3.0), end=20.0)
    f = only(a, "SLC002")
    assert "CM_SLAC_MATCH.CNF" in f.synopsis
    assert not rules_found(a, "SLC001")


def test_complete_capture_is_not_partial():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC002")


# --------------------------------------------------------------------------- SLC003
def test_cnf_with_foreign_runid_is_the_root_cause():
    steps = nominal()[:2]
    steps = edit(steps, PARM_CNF, RunID="0011223344550000")
    steps += [step(0.25, PARM_REQ, {"RunID": RUN}, EV_MAC, BCAST),
              step(0.3, PARM_CNF, dict(steps[1]["f"]), EVSE_MAC, EV_MAC),
              step(0.5, PARM_REQ, {"RunID": RUN}, EV_MAC, BCAST),
              step(0.55, PARM_CNF, dict(steps[1]["f"]), EVSE_MAC, EV_MAC)]
    a = run(steps, end=30.0)
    f = only(a, "SLC003")
    assert f.severity == "error" and f.culprit == "SECC" and "0011223344550000" in f.synopsis
    assert f.frames[0] == 1 and 2 in f.frames
    inc = only(a, "SLC001")
    assert inc.culprit == "EVCC" and "SLC003" in inc.synopsis and "3 CM_SLAC_PARM.REQ" in inc.synopsis
    assert a.summaries["S1"]["root_cause"] == f.id


def test_echoed_runid_is_fine():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC003")


# --------------------------------------------------------------------------- SLC004 / SLC005
def test_cnf_off_nominal():
    steps = edit(nominal(), PARM_CNF, Time_Out=10, NUM_SOUNDS=8)
    f = only(run(steps + sdp(3.0), end=20.0), "SLC004")
    assert f.culprit == "SECC" and "Time_Out=10" in f.synopsis and "NUM_SOUNDS=8" in f.synopsis


def test_cnf_nominal_is_fine():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC004")


def test_start_atten_char_agreeing_is_fine():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC005")


# --------------------------------------------------------------------------- SLC006 / SLC007
def _with_repeats(n):
    steps = nominal(t0=1.0 * (n - 1))
    for i in range(n - 1):
        steps.append(step(1.0 * i, PARM_REQ, {"RunID": RUN}, EV_MAC, BCAST))
    return steps


def test_too_many_parm_req():
    f = only(run(_with_repeats(4) + sdp(8.0), end=30.0), "SLC006")
    assert f.culprit == "EVCC" and f.measured == 4 and f.limit == 3


def test_three_parm_req_are_allowed():
    assert not rules_found(run(_with_repeats(3) + sdp(8.0), end=30.0), "SLC006")


def test_restart_is_reported():
    first = nominal()[:2]
    second = nominal(t0=2.0, run="ffeeddccbbaa9988")
    f = only(run(first + second + sdp(5.0), end=30.0), "SLC007")
    assert f.severity == "info"
    assert "CM_SLAC_PARM.CNF #2" in f.synopsis and f.evidence["restarts"][0]["gap_s"] == pytest.approx(1.95)


def test_restart_too_early_is_a_warning():
    first = nominal()[:2]
    second = nominal(t0=0.3, run="ffeeddccbbaa9988")
    f = only(run(first + second + sdp(5.0), end=30.0), "SLC007")
    assert f.severity == "warning"


def test_single_run_has_no_restart():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC007")


# --------------------------------------------------------------------------- timers
def test_cnf_later_than_tt_match_response():
    steps = edit(nominal(), PARM_CNF, t=0.25)
    f = only(run(steps + sdp(3.0), end=20.0), "SLC008")
    assert f.culprit == "SECC" and f.measured == pytest.approx(0.25)


def test_rsp_later_than_tt_match_response_blames_the_ev():
    steps = edit(nominal(), RSP, t=0.8)
    steps = edit(steps, MATCH_REQ, t=0.9)
    steps = edit(steps, MATCH_CNF, t=0.95)
    f = only(run(steps + sdp(3.0), end=20.0), "SLC008")
    assert f.culprit == "EVCC" and RSP in f.synopsis


def test_responses_in_time():
    steps = edit(nominal(), PARM_CNF, t=0.15)
    assert not rules_found(run(steps + sdp(3.0), end=20.0), "SLC008")


def test_sounding_start_later_than_tt_match_sequence():
    steps = nominal()
    for s in steps:
        if s["name"] in (START, MNBC, IND, RSP, MATCH_REQ, MATCH_CNF):
            s["t"] += 0.35              # CNF at 0.05, first START at 0.5
    f = only(run(steps + sdp(3.0), end=20.0), "SLC009")
    assert f.measured == pytest.approx(0.45) and f.frames == [2, 3]


def test_sounding_start_in_time():
    steps = nominal()
    for s in steps:
        if s["name"] in (START, MNBC, IND, RSP, MATCH_REQ, MATCH_CNF):
            s["t"] += 0.2
    assert not rules_found(run(steps + sdp(3.0), end=20.0), "SLC009")


def test_batch_interval_too_long():
    steps = nominal()
    for s in steps:
        if s["name"] == MNBC and s["f"]["Cnt"] <= 4:
            s["t"] += 0.08
    f = only(run(steps + sdp(3.0), end=20.0), "SLC010")
    assert f.culprit == "EVCC" and "105 ms" in f.synopsis


def test_batch_interval_with_jitter_is_fine():
    steps = nominal()
    for s in steps:
        if s["name"] == MNBC and s["f"]["Cnt"] % 2:
            s["t"] -= 0.003                  # 22 / 28 ms gaps
    assert not rules_found(run(steps + sdp(3.0), end=20.0), "SLC010")


def _late_sounds():
    """The EV pauses 0.5 s after the 2nd sound; the EVSE reports after its window."""
    steps = nominal()
    for s in steps:
        if s["name"] == MNBC and s["f"]["Cnt"] <= 7:
            s["t"] += 0.5
    steps = edit(steps, IND, t=0.76, NUM_SOUNDS=2)
    for name, t in ((RSP, 1.0), (MATCH_REQ, 1.3), (MATCH_CNF, 1.35)):
        edit(steps, name, t=t)
    return steps


def test_sounds_after_the_window_blame_the_ev():
    a = run(_late_sounds() + sdp(3.0), end=20.0)
    f = only(a, "SLC011")
    assert f.culprit == "EVCC" and "8 of 10" in f.synopsis
    few = only(a, "SLC012")
    assert few.culprit == "EVCC" and "2 of 10" in few.synopsis
    assert only(a, "SLC010").culprit == "EVCC"


def test_evse_closing_the_window_early():
    steps = nominal()
    for s in steps:
        if s["name"] == MNBC and s["f"]["Cnt"] <= 4:
            s["t"] += 0.1                  # sounds until 0.55 s, still inside the 600 ms window
    steps = edit(steps, IND, t=0.4, NUM_SOUNDS=7)
    a = run(steps + sdp(3.0), end=20.0)
    f = [x for x in rules_found(a, "SLC011") if x.culprit == "SECC"]
    assert len(f) == 1 and "before its 600 ms window closed" in f[0].synopsis


def test_sounding_inside_the_window():
    a = run(nominal() + sdp(3.0), end=20.0)
    assert not rules_found(a, "SLC011") and not rules_found(a, "SLC012")


def test_sounds_lost_on_the_line():
    steps = edit(nominal(), IND, NUM_SOUNDS=6)
    f = only(run(steps + sdp(3.0), end=20.0), "SLC012")
    assert f.culprit == "link" and "6 of 10" in f.synopsis


def test_ev_sends_fewer_sounds():
    steps = [s for s in nominal() if not (s["name"] == MNBC and s["f"]["Cnt"] < 2)]
    steps = edit(steps, IND, NUM_SOUNDS=8)
    fs = rules_found(run(steps + sdp(3.0), end=20.0), "SLC012")
    assert {f.culprit for f in fs} == {"EVCC"} and any("sent 8 CM_MNBC_SOUND.IND" in f.synopsis for f in fs)


def test_atten_results_late():
    steps = edit(nominal(), IND, t=1.4)
    for name, t in ((RSP, 1.45), (MATCH_REQ, 1.7), (MATCH_CNF, 1.75)):
        edit(steps, name, t=t)
    f = only(run(steps + sdp(3.0), end=20.0), "SLC013")
    assert f.culprit == "SECC" and f.measured == pytest.approx(1.25)


def test_atten_results_in_time():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC013")


def test_match_request_after_tt_evse_match_session():
    steps = edit(nominal(), MATCH_REQ, t=11.6)
    steps = edit(steps, MATCH_CNF, t=11.65)
    a = run(steps + sdp(14.0), end=30.0)
    f = only(a, "SLC017")
    assert f.culprit == "EVCC" and f.measured == pytest.approx(11.04)
    assert not rules_found(a, "SLC018")


def test_match_request_within_tt_evse_match_session():
    steps = edit(nominal(), MATCH_REQ, t=9.0)
    steps = edit(steps, MATCH_CNF, t=9.05)
    a = run(steps + sdp(12.0), end=30.0)
    assert not rules_found(a, "SLC017") and only(a, "SLC018").severity == "info"


def test_match_request_slow_is_info():
    steps = edit(nominal(), MATCH_REQ, t=1.4)
    steps = edit(steps, MATCH_CNF, t=1.45)
    f = only(run(steps + sdp(3.0), end=20.0), "SLC018")
    assert f.severity == "info" and f.measured == pytest.approx(0.84)


def test_match_request_at_500_ms_is_fine():
    steps = edit(nominal(), MATCH_REQ, t=1.07)        # 510 ms: within the jitter tolerance
    steps = edit(steps, MATCH_CNF, t=1.12)
    assert not rules_found(run(steps + sdp(3.0), end=20.0), "SLC018")


# --------------------------------------------------------------------------- attenuation
def test_attenuation_above_limit():
    f = only(run(nominal(aag=45.0) + sdp(3.0), end=20.0), "SLC014")
    assert f.culprit == "link" and f.measured == 45.0 and "matched" in f.synopsis


def test_attenuation_below_limit():
    assert not rules_found(run(nominal(aag=31.0) + sdp(3.0), end=20.0), "SLC014")


def test_attenuation_profile_implausible():
    steps = nominal()
    steps[[s["name"] for s in steps].index(IND)] = ind(0.55, groups=57)
    f = only(run(steps + sdp(3.0), end=20.0), "SLC015")
    assert f.culprit == "SECC" and "NumGroups=57" in f.synopsis


def test_attenuation_profile_plausible():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC015")


def _two_chargers(matched):
    steps = nominal(evse=matched, aag=25.8 if matched == EVSE_MAC else 31.3)
    other = EVSE2_MAC if matched == EVSE_MAC else EVSE_MAC
    steps.append(ind(0.555, aag=31.3 if matched == EVSE_MAC else 25.8, evse=other))
    steps.append(step(0.565, RSP, {"RunID": RUN, "Result": 0}, EV_MAC, other))
    return steps


def test_several_chargers_lowest_matched_is_info():
    f = only(run(_two_chargers(EVSE_MAC) + sdp(3.0), end=20.0), "SLC016")
    assert f.severity == "info" and "25.8 dB" in f.synopsis and "31.3 dB" in f.synopsis
    assert "the lowest attenuation" in f.synopsis


def test_several_chargers_wrong_one_matched_is_a_warning():
    f = only(run(_two_chargers(EVSE2_MAC) + sdp(3.0), end=20.0), "SLC016")
    assert f.severity == "warning" and f.culprit == "EVCC" and "wrong charger" in f.synopsis


def test_one_charger_is_no_crosstalk():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC016")


# --------------------------------------------------------------------------- order, join, key
def test_atten_char_after_the_match():
    steps = nominal() + [ind(4.0 + i * 0.3, evse=EVSE_MAC) for i in range(3)]
    for s in steps[-3:]:
        s["dst"] = BCAST
    f = only(run(steps + sdp(3.0), end=20.0), "SLC019")
    assert f.culprit == "SECC" and "3 × CM_ATTEN_CHAR.IND after CM_SLAC_MATCH.CNF" in f.synopsis


def test_sounding_before_cnf():
    steps = edit(nominal(), PARM_CNF, t=0.18)
    f = only(run(steps + sdp(3.0), end=20.0), "SLC019")
    assert f.culprit == "EVCC" and "sounding before CM_SLAC_PARM.CNF" in f.synopsis


def test_sequence_in_order():
    assert not rules_found(run(nominal() + sdp(3.0), end=20.0), "SLC019")


def test_no_sdp_after_match():
    f = only(run(nominal(), end=20.0), "SLC020")
    assert f.severity == "error" and f.culprit == "link" and f.frames == [19]


def test_no_sdp_after_a_match_that_a_restart_replaced():
    # the first match gets no link for 14 s; the EV restarts SLAC, the second run links up
    steps = nominal() + nominal(t0=15.0, run="0f0e0d0c0b0a0908") + sdp(16.5)
    f = only(run(steps, end=40.0), "SLC020")
    assert f.frames[0] == 19 and "restarted SLAC" in f.synopsis and f.measured == pytest.approx(14.1)


def test_no_sdp_but_the_ev_restarted_within_tt_match_join():
    steps = nominal() + nominal(t0=5.0, run="0f0e0d0c0b0a0908") + sdp(6.5)
    assert not rules_found(run(steps, end=40.0), "SLC020")


def test_no_sdp_but_capture_ends_early():
    assert not rules_found(run(nominal(), end=8.0), "SLC020")


def test_no_sdp_but_capture_one_sided():
    steps = [s for s in nominal() if s["name"] not in EV_SENDS]
    assert not rules_found(run(steps, end=30.0), "SLC020")


def _set_key(t, result):
    return [step(t, SET_KEY_REQ, {"KeyType": 1, "NID": NID, "NewKey": "00" * 16}, EV_MAC, BCAST),
            step(t + 0.001, SET_KEY_CNF, {"Result": result}, "02:00:00:00:00:99", EV_MAC)]


def test_set_key_failure_code():
    f = only(run(nominal() + _set_key(1.0, 2) + sdp(3.0), end=20.0), "SLC021")
    assert f.culprit == "EVCC" and "Result=2" in f.synopsis


def test_set_key_qca_result_without_link():
    f = only(run(nominal() + _set_key(1.0, 1), end=20.0), "SLC021")
    assert "probably not applied" in f.synopsis


def test_set_key_qca_result_with_link_is_fine():
    assert not rules_found(run(nominal() + _set_key(1.0, 1) + sdp(3.0), end=20.0), "SLC021")
    assert not rules_found(run(nominal() + _set_key(1.0, 0), end=20.0), "SLC021")


# --------------------------------------------------------------------------- corpus
_cache: dict = {}
CLEAN = ["DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng", "ISO-2_AC_DS5366.pcapng",
         "ISO-2_DC_Pause_DS5366.pcapng", "ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_SalesTariffSchedule_DS5366_RiseV2G.pcapng",
         "ISO-2_DC_BatteryDataExchange_DS5366_RiseV2G.pcapng", "ISO-20_BPT_AC_DS5366_Josev.pcapng",
         "ISO-20_mTLS_DC_DS5366_Josev.pcapng", "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng"]
MINE = ("slac", "sdp", "handshake")


def analysis(corpus, name):
    from ccs_analyzer.analyzer.analysis import analyze_capture
    if name not in _cache:
        path = corpus / name if not name.startswith("/") else name
        _cache[name] = analyze_capture(path)
    return _cache[name]


def mine(a, rule=None):
    return [f for f in a.findings if f.category in MINE and (rule is None or f.rule == rule)]


def test_corpus_taycan_cnf_runid_explains_the_failure(corpus):
    # the two matching attempts 41 s apart are two sessions (TT_matching_repetition)
    a = analysis(corpus, "2023-05-03_TaycanLeftside_slacFail.pcapng")
    run_ids = mine(a, "SLC003")
    assert [f.session for f in run_ids] == ["S1", "S2"]
    assert all(f.culprit == "SECC" and f.severity == "error" for f in run_ids)
    assert {3, 4} <= set(run_ids[0].frames) and 26 in run_ids[1].frames
    assert all("00188700a1d60000" in f.synopsis for f in run_ids)
    inc = mine(a, "SLC001")
    assert [f.session for f in inc] == ["S1", "S2"] and 26 in inc[1].frames
    assert all(f.culprit == "EVCC" and "3 CM_SLAC_PARM.REQ" in f.synopsis for f in inc)
    assert [a.summaries[s]["root_cause"] for s in ("S1", "S2")] == [f.id for f in run_ids]
    assert not mine(a, "SLC004")                  # NUM_SOUNDS 10, Time_Out 6, RESP_TYPE 1: nominal


def test_corpus_dehner_slac_fine_until_sdp(corpus):
    a = analysis(corpus, "2022-11-17_Dehner_Alpitronic_until_SdpRequest.pcapng")
    assert not [f for f in mine(a) if f.category == "slac" and f.severity == "error"]
    cut = [f for f in mine(a, "SLC001")]
    assert all(f.culprit == "capture" and f.severity == "info" for f in cut)


def test_corpus_multi_evse_is_informational(corpus):
    a = analysis(corpus, "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng")
    (f,) = mine(a, "SLC016")
    assert f.severity == "info" and {56, 57, 62} <= set(f.frames)
    assert "25.8 dB" in f.synopsis and "31.3 dB" in f.synopsis and "64:4d:70:01:06:0e" in f.synopsis
    assert "lowest attenuation" in f.synopsis
    assert not mine(a, "SLC006") and not mine(a, "SLC010")      # VLAN copies are one message


@pytest.mark.parametrize("name", ["2022-10-26_WP4_networkEstablishedButHiddenCommunication.pcapng",
                                  "2025-01-21_listenMode_01_slow_and_only_broadcast_visible.pcapng",
                                  "2025-01-21_listenMode_02_mac_spoofing_some_frames_visible.pcapng",
                                  "2025-01-21_listenMode_04_cutted_tx_path_no_joining.pcapng",
                                  "2025-01-21_listenMode_05_cutted_tx_path_no_joining.pcapng"])
def test_corpus_listen_mode_blames_nobody(corpus, name):
    """One-sided SLAC (only the EVSE's messages): the SLAC / SDP / handshake rules stay
    silent (capture quality reports the capture: CAP003)."""
    a = analysis(corpus, name)
    assert mine(a) == []


def test_corpus_westpark_sounding_and_retries(corpus):
    a = analysis(corpus, "2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    (ret,) = [f for f in mine(a, "SLC006") if f.measured == 33]
    assert ret.culprit == "EVCC" and {25, 379, 381} <= set(ret.frames)
    (few,) = mine(a, "SLC012")
    assert few.culprit == "EVCC" and 1190 in few.frames and "2 of 10" in few.synopsis
    (gap,) = mine(a, "SLC010")
    assert {1176, 1188} <= set(gap.frames)


def test_corpus_griffigroen_stray_atten_char(corpus):
    a = analysis(corpus, "2024-06-18_Griffigroen_pyPLC_polestar2_discharging_with_additional_prechargeCircuit.pcapng")
    (f,) = mine(a, "SLC019")
    assert f.culprit == "SECC" and {101, 260, 382} <= set(f.frames)


@pytest.mark.parametrize("name", CLEAN)
def test_corpus_clean_references_get_no_error(corpus, name):
    a = analysis(corpus, name)
    assert not [f for f in mine(a) if f.severity == "error"]
    assert not [f for f in mine(a) if f.severity == "warning"]


def test_sample_session_gets_nothing_from_these_rules():
    from pathlib import Path
    sample = Path(__file__).resolve().parents[2] / "samples" / "din_dc_session.pcapng"
    a = analysis(None, str(sample))
    assert mine(a) == []


# --------------------------------------------------------------------------- EVSE resets its SLAC
MODEM = "00:b0:52:00:00:01"


def evse_key(t, nid=NID):
    """The EVSE host keying its own modem (CM_SET_KEY.REQ / .CNF)."""
    return [step(t, SET_KEY_REQ, {"KeyType": 1, "NID": nid, "NewKey": "11" * 16}, EVSE_MAC, MODEM),
            step(t + 0.001, SET_KEY_CNF, {"Result": 1}, "02:00:00:00:00:98", EVSE_MAC)]


def test_slc001_evse_rekey_mid_sounding_ends_the_run_at_once():
    steps = nominal()
    last = [i for i, s in enumerate(steps) if s["name"] == MNBC][5]      # 6 of 10 sounds
    steps = evse_key(-1.0) + steps[:last + 1] + evse_key(steps[last]["t"] + 0.26)
    f = only(run(steps, end=steps[-1]["t"] + 0.001), "SLC001")
    assert f.culprit == "unknown" and f.severity == "error"
    assert "6 of 10 CM_MNBC_SOUND.IND" in f.synopsis and "re-keyed its modem" in f.synopsis


def test_slc001_first_key_of_the_evse_is_no_reset():
    steps = nominal()
    last = [i for i, s in enumerate(steps) if s["name"] == MNBC][5]
    steps = steps[:last + 1] + evse_key(steps[last]["t"] + 0.26)       # its first key: not a reset
    f = only(run(steps, end=steps[-1]["t"] + 0.001), "SLC001")
    assert f.culprit == "capture" and f.severity == "info"


def test_slc001_unanswered_requests_are_timed_from_the_first():
    reqs = [step(0.2 * k, PARM_REQ, {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0, "RunID": RUN}, EV_MAC, BCAST)
            for k in range(6)]
    f = only(run(reqs, end=1.01), "SLC001")          # the capture ends 10 ms after the last one
    assert f.culprit == "SECC" and f.severity == "error" and "first" in f.synopsis


def test_slc001_abandoned_unanswered_attempt_before_a_session_that_matched():
    # a CM_SLAC_PARM.REQ more than TT_matching_repetition after the last one of a session
    # that never got past SLAC starts a new session (analyzer/sessions.py): the unanswered
    # burst is an attempt of its own, which failed on the EVSE
    reqs = [step(0.2 * k, PARM_REQ, {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0, "RunID": RUN}, EV_MAC, BCAST)
            for k in range(5)]
    a = run(reqs + nominal(t0=30.0) + sdp(33.0), end=50.0)
    assert len(a.sessions) == 2
    f = only(a, "SLC001")
    assert f.session == "S1" and f.culprit == "SECC" and "5 CM_SLAC_PARM.REQ" in f.synopsis
    assert 1 in f.frames and 5 in f.frames


def test_slc001_unanswered_retries_after_the_session():
    # the EV restarts matching after its session; no EVSE answers: retries of that session
    reqs = [step(20.0 + 0.2 * k, PARM_REQ, {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0,
                                           "RunID": "0f0e0d0c0b0a0908"}, EV_MAC, BCAST)
            for k in range(4)]
    a = run(nominal() + sdp(3.0) + reqs, end=30.0)
    assert len(a.sessions) == 1
    f = only(a, "SLC001")
    assert f.culprit == "SECC" and f.severity == "warning" and "4 CM_SLAC_PARM.REQ" in f.synopsis


def test_slc001_short_pause_between_attempts_is_one_attempt():
    reqs = [step(0.2 * k, PARM_REQ, {"APPLICATION_TYPE": 0, "SECURITY_TYPE": 0, "RunID": RUN}, EV_MAC, BCAST)
            for k in range(3)]
    assert not rules_found(run(reqs + nominal(t0=2.0) + sdp(5.0), end=20.0), "SLC001")


def test_slc020_key_of_a_fresh_network_after_the_match_then_sdp_is_fine():
    steps = nominal() + evse_key(0.95) + sdp(3.0)
    assert not rules_found(run(steps, end=20.0), "SLC020")


@pytest.mark.parametrize("name,rule,culprit,frames", [
    ("logfiles__Opel__Mokka-E__din_spec_70121__2023-04-14T14-18-09.853Z-1_config-dc-dinspec__"
     "ethernet-traffic.dump", "SLC001", "unknown", (1042, 1059)),
    ("logfiles__Opel__Mokka-E__iso_15118-2_DC__2023-04-14T14-26-45.452Z-9_config-josev-dc-iso2_failure__"
     "ethernet-traffic.dump", "SLC020", "unknown", (147, 148)),
    ("logfiles__Tesla__Model_Y_11.1__din_spec_70121__2023-01-18-tesla_y_dinspec_infypower__teslay_dc_infy_0.dump",
     "SLC001", "SECC", (2, 6)),
    ("logfiles__Citroen__eC4__2024-02-29T12-40-16.003Z-2_iso2_ac__ethernet-traffic.dump",
     "SLC001", "SECC", (69, 80)),
])
def test_testevents_slac_failures(testevents, name, rule, culprit, frames):
    (f,) = rules_found(analyze_testevent(testevents, name), rule)
    assert f.culprit == culprit and set(frames) <= set(f.frames)
