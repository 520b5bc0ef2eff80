"""PreCharge rules (PRE…) on event-level sessions, and on the corpus."""
from __future__ import annotations

import pytest

from tests.rules.test_charging_loop import (NS_ISO20_DC, analyze, cablecheck, corpus_analysis, cpd,
                                            iso20_cl, iso20_pd, iso20_precharge, iso20_setup, loop,
                                            power_delivery, precharge, setup, status, stop)
from tests.rules.util import EVSE, analyze_events, ev, rules_found, script


def session(pre, after=None):
    after = power_delivery() + loop(3) + power_delivery(False) + stop() if after is None else after
    return setup() + cpd() + cablecheck() + pre + after


# ============================================================== PRE001
def test_reached_in_time_and_moved_on_is_clean():
    a = analyze(session(precharge([100, 250, 390, 398])))
    assert [f.rule for f in a.findings if f.rule.startswith("PRE")] == []


def test_never_reached_then_evse_closes():
    evs = script(session(precharge([50, 80, 90, 95.5] + [95] * 20), after=[]))
    last = evs[-1]
    evs.append(ev(last.frame + 1, last.time - 1_700_000_000 + 0.05, "tcp", "FIN", EVSE))
    (f,) = rules_found(analyze_events(evs), "PRE001")
    assert f.culprit == "SECC" and f.severity == "error"
    assert "never reached 400.0 V" in f.synopsis and "at most 95.5 V" in f.synopsis
    assert "closed the TCP connection" in f.synopsis and last.frame + 1 in f.frames
    assert f.evidence["progression_s_V"][0][1] == 50


def test_never_reached_names_the_emergency_shutdown():
    emerg = status(EVSEStatusCode="EVSE_EmergencyShutdown")
    sts = [None] * 22 + [emerg] * 4                 # 26 cycles ≈ 8.3 s
    (f,) = rules_found(analyze(session(precharge([50 + i for i in range(22)] + [1] * 4, st=sts), after=[])),
                       "PRE001")
    assert "EVSE_EmergencyShutdown from frame" in f.synopsis


def test_reached_late_is_a_finding_on_time_is_not():
    slow = [15.0 * i for i in range(25)] + [395]          # 26 cycles × 0.32 s ≈ 8.3 s
    (f,) = rules_found(analyze(session(precharge(slow))), "PRE001")
    assert "took" in f.synopsis and f.unit == "s" and f.measured > 7
    fast = [100.0 * i for i in range(4)] + [395]
    assert not rules_found(analyze(session(precharge(fast))), "PRE001")


def test_reached_but_ev_never_went_on_evse_not_ready():
    nr = status(EVSEStatusCode="EVSE_NotReady")
    (f,) = rules_found(analyze(session(precharge([200, 300] + [401] * 40, st=nr), after=stop())), "PRE001")
    assert f.culprit == "SECC" and "EVSE_NotReady" in f.synopsis and "SessionStopReq" in f.synopsis
    (g,) = rules_found(analyze(session(precharge([200, 300] + [401] * 40), after=stop())), "PRE001")
    assert g.culprit == "EVCC"


def test_ev_giving_up_early_while_evse_ramps_is_the_ev():
    (f,) = rules_found(analyze(session(precharge([50, 100, 150]), after=stop())), "PRE001")
    assert f.culprit == "EVCC" and "never reached" in f.synopsis


def test_capture_ending_during_precharge_blames_nobody():
    assert not rules_found(analyze(session(precharge([50, 100, 150]), after=[])), "PRE001")


def test_iso20_precharge():
    good = analyze(iso20_setup() + iso20_precharge([100, 300, 445]) + iso20_pd() + [iso20_cl(50, 50)] * 2
                   + iso20_pd(False), namespace=NS_ISO20_DC)
    assert not [f for f in good.findings if f.rule.startswith("PRE")]
    bad = analyze(iso20_setup() + iso20_precharge([50] * 40, last_finished=False), namespace=NS_ISO20_DC)
    (f,) = rules_found(bad, "PRE001")
    assert "never reached 450.0 V" in f.synopsis


# ============================================================== PRE002
def test_target_changed_during_precharge():
    (f,) = rules_found(analyze(session(precharge([100, 200, 300, 380], targets=[400, 400, 380, 380]))),
                       "PRE002")
    assert f.severity == "info" and "from 400.0 V" in f.synopsis and "to 380.0 V" in f.synopsis
    assert not rules_found(analyze(session(precharge([100, 200, 395], targets=[400, 402, 399]))), "PRE002")


# ============================================================== PRE003
def test_inrush_current_request():
    (f,) = rules_found(analyze(session(precharge([100, 250, 398], current=5.0))), "PRE003")
    assert f.culprit == "EVCC" and "5.00 A" in f.synopsis and f.limit == 2.0
    assert not rules_found(analyze(session(precharge([100, 250, 398], current=2.0))), "PRE003")


def test_inrush_current_reported_by_the_evse():
    assert not rules_found(analyze(session(precharge([100, 250, 398]))), "PRE003")
    # an implementation that adds EVSEPresentCurrent to PreChargeRes
    extra = {"EVSEPresentCurrent": {"Multiplier": 0, "Unit": "A", "Value": 6}}
    (f,) = rules_found(analyze(session(precharge([100, 250, 398], res_extra=extra))), "PRE003")
    assert f.culprit == "SECC" and "EVSEPresentCurrent" in f.synopsis


# ============================================================== PRE004
def test_voltage_difference_at_the_end():
    (f,) = rules_found(analyze(session(precharge([100, 250, 366]))), "PRE004")
    assert f.severity == "warning" and f.culprit == "EVCC" and f.measured == pytest.approx(34.0)
    assert "ΔV -34.0 V" in f.synopsis
    assert not rules_found(analyze(session(precharge([100, 250, 385]))), "PRE004")
    # a PowerDeliveryReq that stops is not closing the contactors
    stop_after = power_delivery(False) + stop()
    assert not rules_found(analyze(session(precharge([100, 250, 366]), after=stop_after)), "PRE004")


# ============================================================== PRE005
def test_overshoot():
    (f,) = rules_found(analyze(session(precharge([100, 450, 420, 400]))), "PRE005")
    assert f.culprit == "SECC" and "450.0 V" in f.synopsis
    assert not rules_found(analyze(session(precharge([100, 415, 400]))), "PRE005")


# ============================================================== PRE006
def test_moved_on_while_not_ready():
    nr = status(EVSEStatusCode="EVSE_NotReady")
    (f,) = rules_found(analyze(session(precharge([100, 250, 398], st=nr))), "PRE006")
    assert f.culprit == "EVCC" and "EVSE_NotReady" in f.synopsis and "answered OK" in f.synopsis
    # ready at the end: fine
    sts = [nr, nr, None]
    assert not rules_found(analyze(session(precharge([100, 250, 398], st=sts))), "PRE006")


# ============================================================== corpus
def test_corpus_compleo_bulb_precharge_failure(corpus):
    a = corpus_analysis("2022-12-13_compleo_with_bulb.pcapng")
    (f,) = rules_found(a, "PRE001")
    assert f.culprit == "SECC" and f.severity == "error"
    assert "95.5 V" in f.synopsis and "230.0 V" in f.synopsis and "EVSE_EmergencyShutdown" in f.synopsis
    assert {589, 701, 731, 733} <= set(f.frames)
    assert a.summaries[f.session]["root_cause"] == f.id


def test_corpus_model_y_stops_in_precharge(corpus):
    a = corpus_analysis("2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng")
    (f,) = rules_found(a, "PRE001")
    assert f.culprit == "SECC" and 583 in f.frames and "EVSE_NotReady" in f.synopsis
    assert "347.0 V" in f.synopsis and "119 PreChargeReq" in f.synopsis


@pytest.mark.parametrize("name,frames,dv", [
    ("DIN_DC_DS5366_Josev.pcapng", {352, 354}, 94.0),
    ("ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng", {361, 363}, 409.4),
    ("ISO-20_mTLS_DC_DS5366_Josev.pcapng", {215, 217}, 234.8),
])
def test_corpus_references_end_precharge_early_warning_only(corpus, name, frames, dv):
    a = corpus_analysis(name)
    (f,) = rules_found(a, "PRE004")
    assert f.severity == "warning" and f.culprit == "EVCC" and frames <= set(f.frames)
    assert f.measured == pytest.approx(dv, abs=0.1)
    assert not [g for g in a.findings if g.rule.startswith("PRE") and g.severity == "error"]


def test_corpus_ev_goes_on_while_evse_not_ready(corpus):
    a = corpus_analysis("2023-04-16_at_home_Ioniq_in_currentDemandLoop.pcapng")
    (f,) = rules_found(a, "PRE006")
    assert {576, 579, 583} <= set(f.frames) and "26 of 26" in f.synopsis
    assert not rules_found(a, "PRE001")


@pytest.mark.parametrize("name", ["ISO-2_DC_DS5366.pcapng", "ISO-2_DC_Pause_DS5366.pcapng",
                                  "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng",
                                  "ISO-2_DC_BatteryDataExchange_DS5366_RiseV2G.pcapng",
                                  "ISO-2_DC_SalesTariffSchedule_DS5366_RiseV2G.pcapng"])
def test_corpus_clean_precharge(corpus, name):
    a = corpus_analysis(name)
    assert not [f for f in a.findings if f.rule.startswith("PRE")]
