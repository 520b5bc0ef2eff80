"""Cable-check rules (CBL…) on event-level sessions, and on the corpus."""
from __future__ import annotations

import pytest

from tests.rules.test_charging_loop import (EV_STATUS, NS_ISO20_DC, analyze, cablecheck, cd,
                                            corpus_analysis, cpd, din, iso20, iso20_setup, loop,
                                            power_delivery, precharge, setup, status, stop)
from tests.rules.util import EVSE, analyze_events, ev, rules_found, script

def session(cc, after=None):
    after = (precharge([100, 250, 398]) + power_delivery() + loop(3) + power_delivery(False) + stop()
             if after is None else after)
    return setup() + cpd() + cc + after


def mine(a):
    return sorted(f.rule for f in a.findings if f.rule.startswith("CBL"))


def test_clean_cable_check():
    assert mine(analyze(session(cablecheck(5)))) == []


# ============================================================== CBL001
def test_finished_with_isolation_invalid_or_fault():
    (f,) = rules_found(analyze(session(cablecheck(4, final=status(EVSEIsolationStatus="Invalid")))), "CBL001")
    assert f.culprit == "SECC" and "EVSEIsolationStatus=Invalid" in f.synopsis
    assert "the EV went on with PreChargeReq" in f.synopsis and len(f.frames) == 3
    (g,) = rules_found(analyze(session(cablecheck(4, final=status(EVSEIsolationStatus="Fault",
                                                                  EVSEStatusCode="EVSE_Shutdown")),
                                       after=stop())), "CBL001")
    assert g.culprit == "unknown" and "Fault" in g.synopsis


def test_failed_response_with_invalid_is_left_to_response_codes():
    cc = cablecheck(2) + [(din("CableCheckReq", {"DC_EVStatus": EV_STATUS}),
                           din("CableCheckRes", {"ResponseCode": "FAILED", "EVSEProcessing": "Finished",
                                                 "DC_EVSEStatus": status(EVSEIsolationStatus="Invalid",
                                                                         EVSEStatusCode="EVSE_Shutdown")}),
                           0.2, 0.02)]
    a = analyze(session(cc, after=stop()))
    assert mine(a) == []
    assert rules_found(a, "RSP001")


# ============================================================== CBL002
def test_finished_not_ready_without_isolation():
    nr = {"EVSEStatusCode": "EVSE_NotReady", "NotificationMaxDelay": 0, "EVSENotification": "None"}
    (f,) = rules_found(analyze(session(cablecheck(3, final=nr))), "CBL002")
    assert f.culprit == "SECC" and f.severity == "info"          # the EV tolerated it
    assert "EVSEStatusCode=EVSE_NotReady and no EVSEIsolationStatus" in f.synopsis
    assert "went on with PreChargeReq" in f.synopsis
    (g,) = rules_found(analyze(session(cablecheck(3, final=nr), after=stop())), "CBL002")
    assert g.severity == "warning" and "SessionStopReq" in g.synopsis


def test_finished_ready_with_warning_is_not_cbl002():
    a = analyze(session(cablecheck(3, final=status(EVSEIsolationStatus="Warning"))))
    assert mine(a) == ["CBL004"]


# ============================================================== CBL003
def _never(n, gap=0.5):
    return cablecheck(n + 1, final=False, gap=gap)[:n]


def test_never_finished_ev_gives_up_early():
    (f,) = rules_found(analyze(session(_never(10), after=stop())), "CBL003")
    assert f.culprit == "EVCC" and "never finished" in f.synopsis and "SessionStopReq" in f.synopsis


def test_never_finished_ev_skips_to_precharge():
    (f,) = rules_found(analyze(session(_never(5))), "CBL003")
    assert f.culprit == "EVCC" and "PreChargeReq" in f.synopsis and "without it" in f.synopsis


def test_never_finished_evse_closes():
    evs = script(session(_never(6), after=[]))
    last = evs[-1]
    evs.append(ev(last.frame + 1, last.time - 1_700_000_000 + 0.1, "tcp", "FIN", EVSE))
    (f,) = rules_found(analyze_events(evs), "CBL003")
    assert f.culprit == "SECC" and last.frame + 1 in f.frames


def test_never_finished_not_blamed_when_capture_ends_or_too_long():
    assert not rules_found(analyze(session(_never(6), after=[])), "CBL003")
    # longer than the 40 s EV timeout: the timing rule (TIM004) reports it
    assert not rules_found(analyze(session(_never(50, gap=1.0), after=stop())), "CBL003")


def test_iso20_cable_check_never_finished():
    cc = [(iso20("DC_CableCheckReq", {}), iso20("DC_CableCheckRes", {"ResponseCode": "OK",
                                                                      "EVSEProcessing": "Ongoing"}), 0.3, 0.02)] * 5
    a = analyze(iso20_setup() + cc + [(iso20("SessionStopReq", {"ChargingSession": "Terminate"}),
                                       iso20("SessionStopRes", {"ResponseCode": "OK"}), 0.05, 0.02)],
                namespace=NS_ISO20_DC)
    (f,) = rules_found(a, "CBL003")
    assert f.culprit == "EVCC"
    ok = [(iso20("DC_CableCheckReq", {}), iso20("DC_CableCheckRes", {"ResponseCode": "OK",
                                                                      "EVSEProcessing": "Finished"}), 0.3, 0.02)]
    b = analyze(iso20_setup() + cc + ok, namespace=NS_ISO20_DC)
    assert mine(b) == []


# ============================================================== CBL004 / CBL005
def test_isolation_warning_later_in_the_session():
    warn = status(EVSEIsolationStatus="Warning")
    a = analyze(session(cablecheck(3), after=precharge([100, 398]) + power_delivery()
                        + [cd(100, 100, st=warn) for _ in range(4)] + power_delivery(False) + stop()))
    (f,) = rules_found(a, "CBL004")
    assert "4 responses" in f.synopsis and "CurrentDemandRes" in f.synopsis


def test_isolation_fault_after_the_cable_check():
    fault = status(EVSEIsolationStatus="Fault", EVSEStatusCode="EVSE_EmergencyShutdown")
    a = analyze(session(cablecheck(3), after=precharge([100, 398]) + power_delivery() + loop(3)
                        + [cd(100, 0, st=fault)] + power_delivery(False) + stop()))
    (f,) = rules_found(a, "CBL005")
    assert f.severity == "error" and "CurrentDemandRes" in f.synopsis
    # Invalid after the cable check (IMD off) is not a fault
    inv = status(EVSEIsolationStatus="Invalid")
    b = analyze(session(cablecheck(3), after=precharge([100, 398]) + power_delivery() + loop(3)
                        + [cd(100, 100, st=inv)] + power_delivery(False) + stop()))
    assert not rules_found(b, "CBL005")


# ============================================================== corpus
@pytest.mark.parametrize("name,frames", [
    ("2023-04-16_at_home_Ioniq_in_currentDemandLoop.pcapng", {321, 329}),
    ("2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng", {185, 187}),
    ("2024-06-18_Griffigroen_pyPLC_polestar2_discharging_with_additional_prechargeCircuit.pcapng", {250, 254}),
])
def test_corpus_pyplc_evse_finishes_cable_check_not_ready(corpus, name, frames):
    a = corpus_analysis(name)
    (f,) = rules_found(a, "CBL002")
    assert f.culprit == "SECC" and frames <= set(f.frames) and "EVSE_NotReady" in f.synopsis


def test_corpus_failed_cable_check_and_fragment(corpus):
    a = corpus_analysis("2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    assert mine(a) == []                      # the FAILED CableCheckRes #659 is RSP001's
    b = corpus_analysis("2025-01-21_listenMode_02_mac_spoofing_some_frames_visible.pcapng")
    assert mine(b) == []                      # a lone CableCheckRes of a mid-session fragment


@pytest.mark.parametrize("name", ["DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng",
                                  "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng",
                                  "ISO-20_mTLS_DC_DS5366_Josev.pcapng", "ISO-2_DC_Pause_DS5366.pcapng",
                                  "2022-12-13_compleo_with_bulb.pcapng"])
def test_corpus_cable_checks_that_pass(corpus, name):
    assert mine(corpus_analysis(name)) == []
