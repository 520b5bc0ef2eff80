"""Control-pilot rules (rules/control_pilot/) on hand-made sessions: an ISO 15118-2 DC
session whose pilot readings (ST/IoTecha VS_CP_STATE.IND, dSPACE SCS) are placed around its
messages. The simulator's CP fault samples trigger every rule too (tests/samples)."""
from __future__ import annotations

from tests.analyzer.test_control_pilot import ds, st
from tests.rules.util import NS_ISO2, analyze_events, iso2, pv, rules_found, script

T0 = 1_700_000_000.0


def _dc_session(loop=6, stop_at=None, extra=(), duty=5, pause=False):
    """An ISO-2 DC session from t = 10 s: setup … PowerDelivery(Start) at ~10.6 s, ``loop``
    CurrentDemand cycles 0.25 s apart, PowerDelivery(Stop), SessionStop; CP readings:
    plug-in at 0 s, ``duty`` % at 1 s, C at 10.3 s, B at stop + 0.1 s, unplug 2 s after the
    end — plus ``extra`` readings."""
    ex = [(iso2("SessionSetupReq", {"EVCCID": "01"}, "00"),
           iso2("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "DE*1"}),
           0.05, 0.02),
          (iso2("CableCheckReq", {}), iso2("CableCheckRes", {"ResponseCode": "OK",
                                                             "EVSEProcessing": "Finished"}), 0.05, 0.02),
          (iso2("PowerDeliveryReq", {"ChargeProgress": "Start", "SAScheduleTupleID": 1}),
           iso2("PowerDeliveryRes", {"ResponseCode": "OK"}), 0.2, 0.02)]
    for _ in range(loop):
        ex.append((iso2("CurrentDemandReq", {"EVTargetCurrent": pv(50, "A"),
                                             "EVTargetVoltage": pv(400, "V")}),
                   iso2("CurrentDemandRes", {"ResponseCode": "OK",
                                             "EVSEPresentCurrent": pv(50, "A"),
                                             "EVSEPresentVoltage": pv(400, "V")}), 0.2, 0.03))
    ex.append((iso2("PowerDeliveryReq", {"ChargeProgress": "Stop", "SAScheduleTupleID": 1}),
               iso2("PowerDeliveryRes", {"ResponseCode": "OK"}), 0.1, 0.02))
    ex.append((iso2("SessionStopReq", {"ChargingSession": "Pause" if pause else "Terminate"}),
               iso2("SessionStopRes", {"ResponseCode": "OK"}), 0.1, 0.02))
    evs = script(ex, t0=10.0, frame0=100, namespace=NS_ISO2)
    for e in evs:
        e.src = e.src or "[fe80::1]:50000"
    v2g = [e for e in evs if e.layer == "v2gtp"]
    pd = [e for e in v2g if e.name == "PowerDeliveryReq"]
    t_stop = (stop_at if stop_at is not None else pd[-1].time - T0) + 0.1
    end = evs[-1].time - T0
    cp = [st(1, 0.0, 12.0), st(2, 0.5, 9.0), st(3, 1.0, 9.0, duty, 1000),
          st(4, pd[0].time - T0 - 0.3, 6.0, duty, 1000), st(5, t_stop, 9.0, duty, 1000)]
    if not pause:
        cp += [st(900, end + 1.0, 9.0), st(901, end + 2.0, 12.0)]
    cp += list(extra)
    return evs + cp, v2g


def _run(evs):
    """Analyse ``evs`` numbered in time order (frames as a capture would number them)."""
    evs = sorted(evs, key=lambda e: (e.time, e.frame))
    for i, e in enumerate(evs):
        e.frame = i + 1
    return analyze_events(evs)


def _codes(a):
    return sorted({f.rule for f in a.findings if f.rule.startswith("CPL")})


def test_clean_session_has_no_cp_finding():
    evs, _ = _dc_session()
    a = _run(evs)
    assert _codes(a) == []


def test_cpl001_charge_loop_in_state_b():
    evs, v2g = _dc_session()
    pd = next(e for e in v2g if e.name == "PowerDeliveryReq")
    evs = [e for e in evs if e.frame != 4]            # the EV never goes to C
    evs.append(st(6, pd.time - T0 + 1.2, 9.0, 5, 1000))   # a reading confirms B in the loop
    a = _run(evs)
    f = rules_found(a, "CPL001")
    assert len(f) == 1 and f[0].culprit == "EVCC" and f[0].evidence["cp_state"] == "B2"


def test_cpl001_needs_a_reading_after_the_coupling_time():
    evs, v2g = _dc_session()
    evs = [e for e in evs if e.frame not in (4, 5, 900, 901)]   # the reporter falls silent in B
    assert rules_found(_run(evs), "CPL001") == []


def test_cpl002_state_c_held_after_stop():
    evs, v2g = _dc_session()
    stop = [e for e in v2g if e.name == "PowerDeliveryReq"][-1]
    # no B after the Stop: a reading 1.5 s later still shows C, then the EV is unplugged
    evs = [e for e in evs if e.frame not in (5, 900)] + [st(5, stop.time - T0 + 1.5, 6.0, 5, 1000)]
    f = rules_found(_run(evs), "CPL002")
    assert len(f) == 1 and f[0].measured > 1.0


def test_cpl003_nominal_duty_during_dc():
    evs, _ = _dc_session(duty=53)
    f = rules_found(_run(evs), "CPL003")
    assert len(f) == 1 and f[0].measured == 53 and f[0].culprit == "SECC"


def test_cpl005_state_e_during_transfer_and_the_restart_toggle():
    evs, v2g = _dc_session()
    loop = [e for e in v2g if e.name == "CurrentDemandReq"]
    evs.append(st(50, loop[2].time - T0 + 0.01, 0.0, 0, 1000))
    evs.append(st(51, loop[3].time - T0 + 0.01, 6.0, 5, 1000))
    f = rules_found(_run(evs), "CPL005")
    assert [x.severity for x in f] == ["error"]
    # an E/F toggle of 4 s before any energy, then 5 % and SLAC again: the EVSE restarting
    toggle = [st(1, 0.0, 12.0), st(2, 1.0, 9.0), st(3, 2.0, 9.0, 5, 1000), st(4, 30.0, 0.0, 0, 0),
              st(5, 34.5, 9.0, 5, 1000)]
    from tests.rules.util import ev
    toggle.append(ev(6, 35.0, "slac", "CM_SLAC_PARM.REQ", message={"RunID": "0102030405060708"},
                     src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff"))
    f = rules_found(_run(toggle), "CPL005")
    assert [x.severity for x in f] == ["info"]


def test_cpl006_c_to_b_in_the_loop_and_unplug_mid_session():
    evs, v2g = _dc_session()
    loop = [e for e in v2g if e.name == "CurrentDemandReq"]
    evs.append(st(50, loop[1].time - T0 + 0.01, 9.0, 5, 1000))
    f = rules_found(_run(evs), "CPL006")
    assert len(f) == 1 and "without PowerDeliveryReq (Stop)" in f[0].synopsis
    evs, v2g = _dc_session()
    loop = [e for e in v2g if e.name == "CurrentDemandReq"]
    cut = loop[1].time + 0.01
    evs = [e for e in evs if e.time < cut] + [st(50, cut - T0, 12.0, 100, 0)]
    f = rules_found(_run(evs), "CPL006")
    assert [x.evidence["before"] for x in f] == ["C2"] and f[0].kinds == ("ev-unplugged",)


def test_cpl007_slac_late_after_5_percent():
    from tests.rules.util import ev
    evs = [st(1, 0.0, 9.0), st(2, 1.0, 9.0, 5, 1000),
           ev(3, 31.0, "slac", "CM_SLAC_PARM.REQ", message={"RunID": "0102030405060708"},
              src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")]
    f = rules_found(_run(evs), "CPL007")
    assert len(f) == 1 and f[0].severity == "warning" and 29 < f[0].measured < 31
    evs[2].time = T0 + 5.0
    assert rules_found(_run(evs), "CPL007") == []


def test_cpl008_noise_but_not_an_edge():
    noisy = [st(1, 0.0, 9.0), st(2, 1.0, 9.0, 22, 1000), st(3, 2.0, 7.4, 22, 1000),
             st(4, 2.1, 9.0, 22, 1000), st(5, 3.0, 12.0)]
    f = rules_found(_run(noisy), "CPL008")
    assert len(f) == 1 and f[0].measured == 7.4
    edge = [st(1, 0.0, 9.0), st(2, 1.0, 9.0, 22, 1000), st(3, 2.0, 7.4, 22, 1000),
            st(4, 2.1, 6.0, 22, 1000), st(5, 9.0, 9.0, 22, 1000), st(6, 9.5, 12.0)]
    assert rules_found(_run(edge), "CPL008") == []


def test_cpl009_and_cpl010_pause_without_sleep_and_an_unanswered_wake_up():
    evs, v2g = _dc_session(pause=True)
    end = evs[-1].time - T0 if evs[-1].layer != "slac" else max(e.time for e in v2g) - T0
    end = max(e.time for e in v2g) - T0
    # the EV stays in C for 10 s of the pause
    bad = evs + [st(60, end + 0.5, 9.0, 100, 0), st(61, end + 1.0, 6.0, 100, 0),
                 st(62, end + 11.0, 9.0, 100, 0), st(63, end + 60.0, 9.0, 100, 0)]
    assert len(rules_found(_run(bad), "CPL009")) == 1
    # a wake-up pulse (B1 → C1 → B1, 0.4 s) that the EVSE never answers
    wake = evs + [st(60, end + 0.5, 9.0, 100, 0), st(61, end + 20.0, 6.0, 100, 0),
                  st(62, end + 20.4, 9.0, 100, 0), st(63, end + 60.0, 9.0, 100, 0)]
    a = _run(wake)
    assert rules_found(a, "CPL009") == []
    f = rules_found(a, "CPL010")
    assert len(f) == 1 and f[0].culprit == "SECC"
    # answered: 5 % again 0.4 s later
    ok = evs + [st(60, end + 0.5, 9.0, 100, 0), st(61, end + 20.0, 6.0, 100, 0),
                st(62, end + 20.4, 9.0, 100, 0), st(63, end + 20.8, 9.0, 5, 1000)]
    assert rules_found(_run(ok), "CPL010") == []


def test_cpl011_contactor_closed_across_a_voltage_difference():
    evs, _ = _dc_session()
    evs += [ds(70, 9.0, "State_C2", 6.0, "Open", 0.0, 250.0, battery=400.0),
            ds(71, 9.25, "State_C2", 6.0, "Closed", 0.0, 250.0, battery=400.0)]
    f = rules_found(_run(evs), "CPL011")
    assert len(f) == 1 and f[0].measured == 150.0
    evs, _ = _dc_session()
    evs += [ds(70, 9.0, "State_C2", 6.0, "Open", 0.0, 395.0, battery=400.0),
            ds(71, 9.25, "State_C2", 6.0, "Closed", 0.0, 398.0, battery=400.0)]
    assert rules_found(_run(evs), "CPL011") == []
