"""Limits and physics rules (LIM…) on event-level sessions, and on the corpus."""
from __future__ import annotations

import time

import pytest

from tests.rules.test_charging_loop import (NS_ISO20_DC, analyze, cablecheck, cd, clean_din,
                                            corpus_analysis, cpd, ev_status, iso20, iso20_cl,
                                            iso20_pd, iso20_precharge, iso20_setup, loop,
                                            power_delivery, precharge, setup, stop)
from tests.rules.util import pv, rn, rules_found


def lim(a):
    return sorted(f.rule for f in a.findings if f.rule.startswith("LIM"))


def with_loop(part, **kw):
    return analyze(clean_din(part), **kw)


def test_clean_loop_has_no_limit_finding():
    ramp = [cd(100, x) for x in (0, 40, 80, 99)] + loop(20)
    assert lim(with_loop(ramp)) == []


# ============================================================== LIM001
def test_present_above_own_maximum():
    part = loop(3) + [cd(200, 150, res={"EVSEMaximumCurrentLimit": pv(100, "A")}) for _ in range(3)] + loop(2)
    (f,) = rules_found(with_loop(part), "LIM001")
    assert f.severity == "error" and f.culprit == "SECC" and "current" in f.synopsis
    assert f.measured == pytest.approx(150) and f.limit == pytest.approx(100)
    assert "in 3 cycles" in f.synopsis and f.evidence["worst"]["response"]["EVSEMaximumCurrentLimit"]
    assert f.failure_modes == ["UC2 240"]


def test_power_above_maximum_from_cpd():
    part = [cd(400, 400, pv_=420.0) for _ in range(3)]                  # 168 kW > 150 kW
    (f,) = rules_found(with_loop(part), "LIM001")
    assert "power" in f.synopsis and "ChargeParameterDiscoveryRes" in f.synopsis
    assert not rules_found(with_loop([cd(350, 350, pv_=420.0) for _ in range(3)]), "LIM001")   # 147 kW


def test_present_within_tolerance_of_maximum():
    part = [cd(200, 103, res={"EVSEMaximumCurrentLimit": pv(100, "A")}) for _ in range(3)]
    assert not rules_found(with_loop(part), "LIM001")


# ============================================================== LIM002
def test_output_above_ev_maximum():
    (f,) = rules_found(with_loop([cd(100, 100, tv=450, pv_=480) for _ in range(3)]), "LIM002")
    assert f.culprit == "SECC" and "EVMaximumVoltageLimit 460.0 V" in f.synopsis
    assert not rules_found(with_loop([cd(100, 100, tv=460, pv_=465) for _ in range(3)]), "LIM002")


# ============================================================== LIM003
def test_target_above_evse_maximum():
    (f,) = rules_found(with_loop([cd(600, 100, pv_=200, req={"EVMaximumCurrentLimit": pv(700, "A")})
                                  for _ in range(3)]), "LIM003")
    assert f.severity == "info" and f.culprit == "EVCC" and "EVTargetCurrent 600.0 A" in f.synopsis
    assert not rules_found(with_loop([cd(450, 450, pv_=300) for _ in range(3)]), "LIM003")


# ============================================================== LIM004 / LIM005
def test_evse_delivers_less_than_it_offers():
    part = [cd(100, 10, tv=400, pv_=380) for _ in range(60)]           # 12.4 s, CC phase
    (f,) = rules_found(with_loop(part), "LIM004")
    assert f.culprit == "SECC" and f.failure_modes == ["UC2 244", "UC2 248"]
    assert "at most 10.00 A" in f.synopsis and "allowed 100.0 A" in f.synopsis
    assert not rules_found(with_loop(part), "LIM005")


def test_short_shortfall_or_a_ramp_is_fine():
    assert not rules_found(with_loop([cd(100, 10) for _ in range(20)]), "LIM004")       # 4 s
    ramp = [cd(100, 2 * i) for i in range(60)]                          # converging ramp
    assert not rules_found(with_loop(ramp), "LIM004")
    limited = [cd(100, 30, pv_=400, res={"EVSEMaximumPowerLimit": pv(12000, "W", 1)}) for _ in range(60)]
    assert not rules_found(with_loop(limited), "LIM004")                # 12 kW / 400 V = 30 A


def test_voltage_limited_shortfall_is_info():
    part = [cd(100, 0.3, tv=230, pv_=230.5) for _ in range(60)]
    (f,) = rules_found(with_loop(part), "LIM005")
    assert f.severity == "info" and "holding the EV's target voltage" in f.synopsis
    assert not rules_found(with_loop(part), "LIM004")


# ============================================================== LIM006
def test_current_overshoot():
    part = loop(3) + [cd(100, 120) for _ in range(3)] + loop(2)
    (f,) = rules_found(with_loop(part), "LIM006")
    assert f.culprit == "SECC" and "+20.00 A" in f.synopsis
    assert not rules_found(with_loop(loop(3) + [cd(100, 120)] + loop(3)), "LIM006")     # one cycle


def test_ramp_down_after_lower_target_is_not_overshoot():
    part = loop(5, 200, 200) + [cd(t, p) for t, p in ((150, 200), (100, 154), (50, 107), (0, 60),
                                                      (0, 12), (0, 1))]
    assert not rules_found(with_loop(part), "LIM006")


def test_regulation_tolerance_from_cpd_is_used():
    ex = (setup() + cpd(evse={"EVSECurrentRegulationTolerance": pv(30, "A")}) + cablecheck()
          + precharge([100, 398]) + power_delivery() + [cd(100, 120) for _ in range(4)]
          + power_delivery(False) + stop())
    assert not rules_found(analyze(ex), "LIM006")


# ============================================================== LIM007
def test_voltage_above_target():
    (f,) = rules_found(with_loop([cd(50, 50, tv=400, pv_=420) for _ in range(3)]), "LIM007")
    assert f.culprit == "SECC" and "420.0 V against 400.0 V" in f.synopsis
    stopping = [cd(0, 0, tv=0, pv_=400, req={"DC_EVStatus": ev_status(EVErrorCode="FAILED_ChargingCurrentdifferential")})
                for _ in range(3)]
    assert not rules_found(with_loop(loop(3) + stopping), "LIM007")
    assert not rules_found(with_loop(loop(3) + [cd(50, 50, tv=400, pv_=420)] + loop(3)), "LIM007")


# ============================================================== LIM008
def test_spike_and_multiplier_jump():
    part = loop(3) + [cd(100, 100, pv_=440)] + loop(3)
    (f,) = rules_found(with_loop(part), "LIM008")
    assert f.severity == "info" and "EVSEPresentVoltage spiked" in f.synopsis
    imax = {"EVSEMaximumCurrentLimit": pv(500, "A")}
    part = (loop(3, res=imax) + [cd(100, 100, res={"EVSEMaximumCurrentLimit": pv(5000, "A", 1)})]
            + loop(3, res=imax))
    (g,) = rules_found(with_loop(part), "LIM008")
    assert "EVSEMaximumCurrentLimit" in g.synopsis and g.unit is None


def test_following_a_moving_target_is_not_a_spike():
    part = loop(3, 0, 0) + [cd(200, 1), cd(45, 105), cd(0, 47), cd(0, 4)]
    assert not rules_found(with_loop(part), "LIM008")


def test_voltage_step_while_current_flows():
    part = loop(3, pv_=380) + loop(3, pv_=250)
    (f,) = rules_found(with_loop(part), "LIM008")
    assert "jumped" in f.synopsis and "while current flowed" in f.synopsis
    assert not rules_found(with_loop(loop(3, 0, 0, pv_=380) + loop(3, 0, 0, pv_=250)), "LIM008")


# ============================================================== LIM009
def test_soc_backwards():
    part = [cd(100, 100, req={"DC_EVStatus": ev_status(EVRESSSOC=s)}) for s in (50, 51, 51, 45, 46)]
    (f,) = rules_found(with_loop(part), "LIM009")
    assert "from 51 % " in f.synopsis and "to 45 %" in f.synopsis and f.culprit == "EVCC"
    part = [cd(100, 100, req={"DC_EVStatus": ev_status(EVRESSSOC=s)}) for s in (50, 51, 50, 51)]
    assert not rules_found(with_loop(part), "LIM009")


# ============================================================== LIM010
def test_target_above_own_maximum():
    (f,) = rules_found(with_loop([cd(100, 100, tv=470, pv_=380) for _ in range(2)]), "LIM010")
    assert "EVTargetVoltage" in f.synopsis and f.severity == "warning"
    assert not rules_found(with_loop([cd(100, 100, tv=460, pv_=380) for _ in range(2)]), "LIM010")


# ============================================================== LIM011
def test_limit_flags_inconsistent():
    part = [cd(100, 100, res={"EVSECurrentLimitAchieved": True}) for _ in range(3)]
    (f,) = rules_found(with_loop(part), "LIM011")
    assert f.severity == "info" and "EVSECurrentLimitAchieved=true" in f.synopsis
    part = [cd(600, 500, pv_=250, req={"EVMaximumCurrentLimit": pv(700, "A")}) for _ in range(3)]
    (g,) = rules_found(with_loop(part), "LIM011")
    assert "EVSECurrentLimitAchieved=false" in g.synopsis
    part = [cd(600, 500, pv_=250, req={"EVMaximumCurrentLimit": pv(700, "A")},
               res={"EVSECurrentLimitAchieved": True}) for _ in range(3)]
    assert not rules_found(with_loop(part), "LIM011")


# ============================================================== LIM012 / LIM013 / LIM014
def test_minimum_above_maximum_in_cpd():
    ex = (setup() + cpd(evse={"EVSEMinimumCurrentLimit": pv(600, "A")}) + cablecheck()
          + precharge([100, 398]) + power_delivery() + loop(3) + power_delivery(False) + stop())
    (f,) = rules_found(analyze(ex), "LIM012")
    assert f.culprit == "SECC" and "EVSEMinimumCurrentLimit 600 A above EVSEMaximumCurrentLimit 500 A" in f.synopsis
    assert not rules_found(analyze(clean_din()), "LIM012")


def test_minimum_above_maximum_iso20_ev():
    req = iso20("DC_ChargeParameterDiscoveryReq", {"DC_CPDReqEnergyTransferMode": {
        "EVMaximumChargePower": rn(50000), "EVMinimumChargePower": rn(100), "EVMaximumChargeCurrent": rn(100),
        "EVMinimumChargeCurrent": rn(150), "EVMaximumVoltage": rn(450), "EVMinimumVoltage": rn(200)}})
    res = iso20("DC_ChargeParameterDiscoveryRes", {"ResponseCode": "OK", "DC_CPDResEnergyTransferMode": {
        "EVSEMaximumChargePower": rn(150000), "EVSEMinimumChargePower": rn(0), "EVSEMaximumChargeCurrent": rn(300),
        "EVSEMinimumChargeCurrent": rn(0), "EVSEMaximumVoltage": rn(1000), "EVSEMinimumVoltage": rn(0)}})
    a = analyze(iso20_setup() + [(req, res, 0.05, 0.02)] + iso20_precharge([100, 449]) + iso20_pd()
                + [iso20_cl(50, 50)] * 3 + iso20_pd(False), namespace=NS_ISO20_DC)
    (f,) = rules_found(a, "LIM012")
    assert f.culprit == "EVCC" and "EVMinimumChargeCurrent" in f.synopsis
    assert not rules_found(a, "LIM014")


def test_negative_ev_maximum():
    ex = (setup() + cpd(ev={"EVMaximumCurrentLimit": pv(-10, "A")}) + cablecheck() + precharge([100, 398])
          + power_delivery() + loop(2) + power_delivery(False) + stop())
    (f,) = rules_found(analyze(ex), "LIM013")
    assert f.severity == "error" and f.culprit == "EVCC"
    assert "EVMaximumCurrentLimit = -10 A" in f.synopsis and "the SECC answered OK" in f.synopsis
    assert not rules_found(analyze(clean_din()), "LIM013")


def test_ev_maximum_below_evse_minimum():
    ex = (setup() + cpd(ev={"EVMaximumVoltageLimit": pv(40, "V")}) + cablecheck() + stop())
    (f,) = rules_found(analyze(ex), "LIM014")
    assert "maximum voltage 40.0 V" in f.synopsis and "minimum 50.0 V" in f.synopsis
    refused = setup() + cpd(ev={"EVMaximumVoltageLimit": pv(40, "V")}, rc="FAILED_WrongChargeParameter") + stop()
    assert not rules_found(analyze(refused), "LIM014")


# ============================================================== -20 and speed
def test_iso20_scheduled_loop_limits():
    base = iso20_setup() + iso20_precharge([100, 449]) + iso20_pd()
    a = analyze(base + [iso20_cl(100, 350)] * 3 + iso20_pd(False), namespace=NS_ISO20_DC)
    assert "LIM001" in lim(a) and "LIM006" in lim(a)                    # 350 A > 300 A EVSE max
    b = analyze(base + [iso20_cl(100, 100)] * 3 + [iso20_cl()] * 3 + iso20_pd(False), namespace=NS_ISO20_DC)
    assert lim(b) == []


def test_rules_are_fast_on_a_long_loop():
    from ccs_analyzer.rules import all_rules
    a = with_loop(loop(3000))
    rules = [c() for c in all_rules() if c.code[:3] in ("LIM", "CHL", "PRE", "CBL")]
    a.cache.clear()
    t = time.process_time()
    for r in rules:
        for s in a.sessions:
            list(r.check(s, a))
    assert time.process_time() - t < 1.0          # ≈ 0.05 s: O(messages), not O(messages²)


# ============================================================== corpus
def test_corpus_ioniq_evse_delivers_far_less(corpus):
    a = corpus_analysis("2023-04-16_at_home_Ioniq_in_currentDemandLoop.pcapng")
    (f,) = rules_found(a, "LIM004")
    assert f.culprit == "SECC" and "158.8 A" in f.synopsis and "10.00 A" in f.synopsis
    assert {643, 6343} <= set(f.frames) and 312 in f.frames            # limits from CPD Res #312
    assert not rules_found(a, "LIM001") and not rules_found(a, "LIM002")


def test_corpus_10_minute_loops(corpus):
    a = corpus_analysis("2026-02-03_pyPLC_FoccciCape_with_Ioniq_runs_10_minutes.pcap")
    (f,) = rules_found(a, "LIM004")
    assert f.session == "S1" and f.measured == pytest.approx(10.0) and f.evidence["duration_s"] > 590
    # pyPLC as the EVSE reports 10 A at 412 V — the EV's target — while the battery the EV
    # declared in PreCharge is at 346.6 V and the SoC stays put: no battery holds 65 V above
    # its voltage at 10 A, so this is not constant-voltage operation (LIM005) but a shortfall
    # of the EVSE (LIM004), which the EV's FAILED_ChargingCurrentdifferential then reports
    b = corpus_analysis("2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng")
    assert not rules_found(b, "LIM005")
    cv = rules_found(b, "LIM004")
    assert {f.session for f in cv} == {"S2", "S3"} and all("346." in f.synopsis for f in cv)
    assert not [f for f in b.findings if f.rule in ("LIM001", "LIM002", "LIM007")]   # 415 V vs 412.8 V


def test_corpus_bulb_and_polestar_are_voltage_limited(corpus):
    a = corpus_analysis("2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    (f,) = rules_found(a, "LIM005")
    assert "0.34 A" in f.synopsis and "230.5 V" in f.synopsis
    assert not [g for g in a.findings if g.rule.startswith("LIM") and g.severity != "info"]
    # pyPLC as the EVSE reports 1 A at 450-452 V, 32 V above the Polestar's 418 V battery
    # (its PreCharge target), while the EV asks for 22 A: no battery holds that voltage at no
    # current — no current was delivered (CHL007), not a load-limited one (LIM005)
    b = corpus_analysis("2024-06-18_Griffigroen_pyPLC_polestar2_discharging_with_additional_prechargeCircuit.pcapng")
    (g,) = rules_found(b, "CHL007")
    assert "22.2 A" in g.synopsis and "450.0-452.0 V" in g.synopsis
    assert not [h for h in b.findings if h.rule in ("LIM002", "LIM004", "LIM005")]   # 452 V ≤ 470 V


@pytest.mark.parametrize("name", ["DIN_DC_DS5366_Josev.pcapng", "ISO-2_DC_DS5366.pcapng",
                                  "ISO-2_AC_DS5366.pcapng", "ISO-2_DC_Pause_DS5366.pcapng",
                                  "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng",
                                  "ISO-2_DC_BatteryDataExchange_DS5366_RiseV2G.pcapng",
                                  "ISO-2_DC_SalesTariffSchedule_DS5366_RiseV2G.pcapng",
                                  "ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng",
                                  "ISO-20_mTLS_DC_DS5366_Josev.pcapng", "ISO-20_BPT_AC_DS5366_Josev.pcapng"])
def test_corpus_references_within_limits(corpus, name):
    a = corpus_analysis(name)
    assert lim(a) == [], [(f.rule, f.synopsis) for f in a.findings if f.rule.startswith("LIM")]
    assert not [f for f in a.findings if f.rule in ("MSG020", "MSG021", "MSG022", "CHL007")]


# ============================================================== LIM002 in PreCharge, PRE005 split
def pre_session(volts, target=400.0, loop_part=None):
    return analyze(setup() + cpd() + cablecheck() + precharge(volts, target) + power_delivery()
                   + (loop_part if loop_part is not None else loop(3)) + power_delivery(False) + stop())


def test_precharge_at_cablecheck_voltage_is_above_the_ev_maximum():
    a = pre_session([500, 490, 430, 402, 400])                    # EV maximum 460 V
    (f,) = rules_found(a, "LIM002")
    assert f.severity == "error" and f.culprit == "SECC" and "PreChargeRes" in f.synopsis
    assert f.measured == pytest.approx(500) and f.limit == pytest.approx(460) and f.count == 2
    (g,) = rules_found(a, "PRE005")                               # 430 V: within the maximum
    assert "430.0 V" in g.synopsis and "after 2 above the EV's maximum voltage (LIM002)" in g.synopsis
    assert not set(f.frames) & set(g.frames)
    assert not rules_found(pre_session([100, 250, 398]), "LIM002")
    assert not rules_found(pre_session([468, 430, 400]), "LIM002")           # within 10 V


def test_precharge_and_loop_above_the_ev_maximum_is_one_finding():
    a = pre_session([500, 499], loop_part=[cd(100, 0, pv_=499) for _ in range(3)] + loop(3))
    (f,) = rules_found(a, "LIM002")
    assert "PreChargeRes and CurrentDemandRes" in f.synopsis and f.count == 5
    assert not rules_found(a, "PRE005")


def test_precharge_without_a_loop_gets_its_own_finding():
    a = analyze(setup() + cpd() + cablecheck() + precharge([500, 480, 470]) + stop())
    (f,) = rules_found(a, "LIM002")
    assert "PreChargeRes" in f.synopsis and f.count == 2


# ============================================================== MSG020 and the limit rules
def test_counter_as_present_current_is_one_finding():
    climb = [cd(100, x) for x in (100, 150, 400, 800)] + [cd(100, 1500 + i) for i in range(6)]
    a = with_loop(loop(3) + climb)                      # EVSE 500 A, EV 200 A: 2 × 500 = 1000 A
    (f,) = rules_found(a, "MSG020")
    assert f.severity == "error" and f.culprit == "SECC" and f.category == "message-content"
    assert f.measured == pytest.approx(1505) and f.limit == pytest.approx(1000)
    assert "climbed from 150.0 A" in f.synopsis and f.evidence["count"] == 9
    assert lim(a) == [], [(g.rule, g.synopsis) for g in a.findings if g.rule.startswith("LIM")]


def test_present_voltage_far_above_every_maximum():
    a = with_loop(loop(3) + [cd(100, 100, pv_=1200) for _ in range(3)] + loop(3))
    (f,) = rules_found(a, "MSG020")
    assert f.unit == "V" and "EVSEPresentVoltage" in f.synopsis
    assert not [g for g in a.findings if g.rule in ("LIM001", "LIM002", "LIM007", "LIM008")]


def test_plausible_excess_stays_with_the_limit_rules():
    over = [cd(200, 150, res={"EVSEMaximumCurrentLimit": pv(100, "A")}) for _ in range(3)]
    a = with_loop(loop(3) + over + loop(2))
    assert rules_found(a, "LIM001") and not rules_found(a, "MSG020")
    b = with_loop(loop(3) + [cd(100, 180) for _ in range(3)] + loop(2))      # 80 A above target
    assert rules_found(b, "LIM006") and not rules_found(b, "MSG020")


# ============================================================== corpus: PreCharge, counters
TE = "testevents/"


@pytest.mark.parametrize("name,frame,limit", [
    ("logfiles__Opel__Mokka-E__din_spec_70121__2023-04-14T14-18-09.853Z-1_config-dc-dinspec__ethernet-traffic.dump", 111, 470.0),
    ("logfiles__BMW__iX_fw_11_2022.64__iso_15118-2__2023-03-30T06-29-19.281Z_iso2__ethernet-traffic.dump", 413, 399.0),
    ("logfiles__Seres__2024-01-10T13-18-27.364Z-1_din_spec__ethernet-traffic.dump", 116, 403.0),
])
def test_corpus_precharge_at_the_cablecheck_voltage(corpus, name, frame, limit):
    a = corpus_analysis(TE + name)
    (f,) = rules_found(a, "LIM002")
    assert "PreChargeRes" in f.synopsis and f.limit == pytest.approx(limit) and f.measured > 490
    assert min(f.frames) <= frame <= max(f.frames)
    assert not rules_found(a, "PRE005")


def test_corpus_cablecheck_voltage_into_the_loop_is_one_finding(corpus):
    a = corpus_analysis(TE + "logfiles__BMW__iX_fw_11_2022.64__din_spec_70121__2023-03-30T06-24-26.582Z_din_spec__ethernet-traffic.dump")
    (f,) = rules_found(a, "LIM002")
    assert "PreChargeRes and CurrentDemandRes" in f.synopsis and {413, 513} <= set(f.frames)


@pytest.mark.parametrize("name,lo,hi", [
    ("logfiles__Audi__Q4__dc-iso2.dump", 351, 4153),
    ("logfiles__Audi__Q4__dc-dinspec-1.dump", 373, 1790),
    ("logfiles__BYD__Atto3__2023-10-04__dinspec-DC.dump", 264, 5478),
    ("logfiles__BYD__Atto3__2023-10-04__iso2-DC.dump", 259, 3100),
])
def test_corpus_counter_as_present_current_is_one_finding(corpus, name, lo, hi):
    a = corpus_analysis(TE + name)
    (f,) = rules_found(a, "MSG020")
    assert f.culprit == "SECC" and f.measured > 1200 and min(f.frames) == lo and max(f.frames) == hi
    loud = [g for g in a.findings if g.rule in ("LIM001", "LIM006", "LIM008")
            or (g.rule == "LIM002" and g.unit == "A")]
    assert loud == [], [(g.rule, g.synopsis) for g in loud]
