"""Control-pilot evidence of the simulator (samples/control_pilot.py, samples/cp_flow.py,
samples/faults_cp.py): the vendor messages round-trip through the project's dissector with the
voltages, duty cycles and states meant, byte for byte as the dSPACE captures write them; no
evidence unless a scenario asks; the CP follows the simulated flow (DIN, ISO 15118-2 AC / DC,
pause and wake-up, ISO 15118-20, several sessions, basic IEC 61851-1 charging); every CP
fault produces its pattern in the decoded events (not in rule findings)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from ccs_analyzer.dissectors.homeplug import decode_mme
from ccs_analyzer.samples import ScenarioError, parse_scenario
from ccs_analyzer.samples import control_pilot as cp

from .helpers import body, decode, si, sim_from, sim_of

BANDS = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0, "E": 0.0, "F": -12.0}


@dataclass
class Reading:
    """One decoded CP report: reporter ("st" / "ds"), time, frame, source MAC, pilot voltage
    (V), state ("B2", "E", "?" between the bands), duty (%, ST only), the dSPACE JSON."""

    who: str
    t: float
    frame: int
    src: str
    volts: float
    state: str
    duty: float | None = None
    hz: int | None = None
    code: int | None = None
    json: dict | None = None


def _letter(v: float) -> str:
    return next((k for k, n in BANDS.items() if abs(v - n) <= 1.0), "?")


def readings(sim) -> tuple[list[Reading], list]:
    """The CP reports of a simulation's capture (decoded by the project's dissector), and all
    its events."""
    events, _ = decode(sim)
    out = []
    for e in events:
        if e.layer != "slac" or not e.name:
            continue
        m = e.message
        if e.name.startswith("VS_CP_STATE.IND"):
            v, duty, hz = m["Voltage_V"], m["DutyCycle_pct"], m["Frequency_Hz"]
            letter = _letter(v)
            pwm = 0 < duty < 100 and hz == 1000
            st = letter if letter in "EF?" else letter + ("2" if pwm else "1")
            code = m["StateCode"] if "StateCode" in m else int(m["unknown_hex"][-2:], 16)
            out.append(Reading("st", e.time, e.frame, e.src, v, st, duty, hz, code))
        elif e.name.startswith("MS_SCS_DIAG.IND"):
            j = m["JSON"]
            out.append(Reading("ds", e.time, e.frame, e.src, j["CP/CE Voltage [V]"], j["CP State"][6:], json=j))
    return out, events


def seq(rs: list[Reading], who: str = "st") -> list[str]:
    """The state sequence of one reporter (repeats folded)."""
    out: list[str] = []
    for r in rs:
        if r.who == who and (not out or out[-1] != r.state):
            out.append(r.state)
    return out


def first(rs, state, who="st", after=0.0) -> Reading:
    return next(r for r in rs if r.who == who and r.state == state and r.t > after)


def msgs(sim, name):
    return [w for w in sim.messages if w.message.name == name]


def progress(w) -> str:
    b = body(w.message)
    return b.get("ChargeProgress") or ("Start" if b.get("ReadyToChargeState") else "Stop")


def slac_times(events, name="CM_SLAC_PARM.REQ"):
    return [e.time for e in events if e.layer == "slac" and e.name == name]


# ------------------------------------------------------------------ wire format
def test_st_indication_is_byte_for_byte_the_captures():
    # the brief's example (C2 at 22 %) and two frames of the dSPACE captures (A1, B1)
    assert cp.st_cp_state_ind(22, 5.956) == bytes.fromhex("012ea200000080e100000000000516e8034417") + bytes(27)
    assert cp.st_cp_state_ind(100, 12.008).hex() == "012ea200000080e1000000000001640000e82e" + "00" * 27
    assert cp.st_cp_state_ind(100, 8.973).hex().startswith("012ea200000080e10000000000036400000d23")
    f = cp.frame("02:00:00:00:e5:01", cp.LOCAL_MODEM, cp.st_cp_state_ind(5, 8.86))
    assert len(f) == 60 and f[12:14] == b"\x88\xe1"


@pytest.mark.parametrize("duty, volts, code", [(5, 8.86, 3), (53, 5.89, 5), (100, 12.0, 1), (100, 2.9, 7),
                                               (100, 0.0, 9), (100, -11.95, 10), (5, 10.5, 2), (5, 7.4, 4),
                                               (5, 4.5, 6)])
def test_st_indication_decodes_to_what_was_meant(duty, volts, code):
    mme = decode_mme(cp.st_cp_state_ind(duty, volts))
    f = mme.fields
    assert mme.name.startswith("VS_CP_STATE.IND")
    assert f["DutyCycle_pct"] == duty and f["Frequency_Hz"] == (1000 if 0 < duty < 100 else 0)
    assert abs(f["Voltage_V"] - volts) < 0.0006
    assert (f["StateCode"] if "StateCode" in f else int(f["unknown_hex"][-2:], 16)) == code


REAL_SCS = ('dSPACE SCS Diag|dsV2Gshark|v1|SCS Diagnostic|{"PP Resistor [Ohm]" : 0,"PP/ID Voltage [V]" : 0.01,'
            '"PP S3" : "Closed","Power Type" : "DC","HV Contactor" : "Open","Target Current [A]" : -0.1,'
            '"Present Current [A]" : 0,"Target Voltage [V]" : 0,"Present Voltage [V]" : 0.2,'
            '"Battery Voltage [V]" : 0,"Plug Type" : "Type_2","CP State" : "State_A1","CP/CE Voltage [V]" : 12,'
            '"HW Revision DS5366" : 5,"HW Revision DS5367" : 4,"Model Version" : "25.2.0",'
            '"Firmware Version" : "3.4.0"}')


def test_scs_diagnostic_is_byte_for_byte_the_captures():
    # the second frame of dsV2Gshark ISO-2_DC_Pause_DS5366
    vals = cp.scs_values(pp_ohm=0, power_type="DC", contactor_closed=False, target_current_a=-0.1,
                         present_current_a=0, target_voltage_v=0, present_voltage_v=0.2, battery_voltage_v=0,
                         cp_state="State_A1", cp_voltage_v=12.0)
    mme = cp.scs_diag_ind(vals)
    assert mme == bytes.fromhex("0102800000644d70") + REAL_SCS.encode()
    f = decode_mme(mme).fields
    assert f["Text"] == REAL_SCS and list(f["JSON"])[0] == "PP Resistor [Ohm]" and f["JSON"]["CP State"] == "State_A1"


def test_iec_61851_facts():
    assert cp.duty_for_current(16) == pytest.approx(26.67) and cp.duty_for_current(63) == pytest.approx(89.2)
    assert cp.current_for_duty(53) == pytest.approx(31.8) and cp.current_for_duty(90) == pytest.approx(65.0)
    assert cp.current_for_duty(5) is None and cp.current_for_duty(99) is None
    assert [cp.cable_rating_a(r) for r in (1568, 680, 220, 100, 0, 1000)] == [13, 20, 32, 63, None, None]
    assert cp.pp_voltage_v(1568) == pytest.approx(4.17, abs=0.005) and cp.pp_voltage_v(0) == 0.01
    assert cp.state_name("B", True) == "B2" and cp.state_name("C", False) == "C1" and cp.state_name("F", False) == "F"
    assert cp.scs_number(8.9649, 2) == "8.96" and cp.scs_number(230.0, 1) == "230" and cp.scs_number(-0.04, 1) == "0"


# ------------------------------------------------------------------ absent unless asked
def test_no_evidence_by_default():
    assert parse_scenario({}, "x").sessions[0].control_pilot.evidence is None
    sim = sim_of("iso2_dc_eim")
    assert sim.sessions[0].control_pilot is None
    rs, _ = readings(sim)
    assert rs == []


@pytest.mark.parametrize("evidence, whos", [("st", {"st"}), ("dspace", {"ds"}), ("both", {"st", "ds"})])
def test_evidence_kinds(evidence, whos):
    sim = sim_from({"protocol": "DIN 70121", "timing": {"loop_cycles": 6}, "control_pilot": {"evidence": evidence}})
    rs, _ = readings(sim)
    assert {r.who for r in rs} == whos
    for who in whos:
        assert seq(rs, who) == ["A1", "B1", "B2", "C2", "B2", "B1", "A1"]


# ------------------------------------------------------------------ the clean flows
def test_iso2_dc_follows_the_flow():
    sim = sim_of("iso2_dc_eim_cp")
    rs, events = readings(sim)
    assert seq(rs) == ["A1", "B1", "B2", "C2", "B2", "B1", "A1"] == seq(rs, "ds")
    b1, b2 = first(rs, "B1"), first(rs, "B2")
    assert b2.t - b1.t == pytest.approx(1.0, abs=1e-3)                      # pwm_delay_s
    assert b2.duty == 5 and b2.hz == 1000 and b2.src == "02:00:00:00:e5:01"
    assert slac_times(events)[0] - b1.t == pytest.approx(3.0, abs=1e-3)     # plug_in_s
    c2 = first(rs, "C2")
    cpd, cc = msgs(sim, "ChargeParameterDiscoveryRes")[-1].time, msgs(sim, "CableCheckReq")[0].time
    assert cpd < c2.t < cc
    stop = next(w for w in msgs(sim, "PowerDeliveryReq") if progress(w) == "Stop")
    back = first(rs, "B2", after=c2.t)
    assert 0 < back.t - stop.time < 0.25                                    # [V2G2-848]
    assert first(rs, "B1", after=c2.t).t - msgs(sim, "SessionStopRes")[-1].time == pytest.approx(2.5, abs=1e-3)
    fin = [e for e in events if e.layer == "tcp" and e.name == "FIN"][0]
    assert first(rs, "A1", after=c2.t).t - fin.time == pytest.approx(3.0, abs=0.01)
    for r in rs:                    # every pilot reading in its band; dSPACE labels agree with the ST
        assert r.state != "?"
    ds = [r for r in rs if r.who == "ds"]
    assert all(r.json["Power Type"] == "DC" and r.json["Battery Voltage [V]"] == 0 for r in ds)
    assert {r.json["PP Resistor [Ohm]"] for r in ds if r.state != "A1"} <= {219, 220, 221}


def test_dspace_measures_the_charge():
    sim = sim_of("iso2_dc_eim_cp")
    rs, _ = readings(sim)
    loop = msgs(sim, "CurrentDemandRes")
    t0, t1 = loop[0].time, loop[-1].time
    ds = [r for r in rs if r.who == "ds" and t0 < r.t < t1]
    gaps = [b.t - a.t for a, b in zip(ds, ds[1:])]
    assert len(ds) >= 8 and max(gaps) < 0.26                                # every 250 ms
    assert all(r.json["HV Contactor"] == "Closed" for r in ds)
    top = max(si(body(w.message)["EVSEPresentCurrent"]) for w in loop)
    assert max(r.json["Present Current [A]"] for r in ds) == pytest.approx(top, abs=15)
    cc = [r for r in rs if r.who == "ds" and msgs(sim, "CableCheckReq")[0].time < r.t
          < msgs(sim, "CableCheckRes")[-1].time]
    assert cc and max(r.json["Present Voltage [V]"] for r in cc) > 400     # the isolation test's ramp
    before = [r for r in rs if r.who == "ds" and r.t < msgs(sim, "CableCheckReq")[0].time]
    assert all(r.json["HV Contactor"] == "Open" for r in before)


def test_iso2_ac_switches_c_before_power_delivery():
    sim = sim_of("iso2_ac_eim_cp")
    rs, _ = readings(sim)
    assert seq(rs) == ["A1", "B1", "B2", "C2", "B2", "B1", "A1"]
    start = next(w for w in msgs(sim, "PowerDeliveryReq") if progress(w) == "Start")
    stop = next(w for w in msgs(sim, "PowerDeliveryReq") if progress(w) == "Stop")
    c2 = first(rs, "C2")
    assert 0 < start.time - c2.t < 0.25
    assert 0 < first(rs, "B2", after=c2.t).t - stop.time <= 0.011
    closed = [r for r in rs if r.who == "ds" and r.json["HV Contactor"] == "Closed"]
    assert closed and all(r.json["Present Voltage [V]"] == 230 and r.json["Power Type"] == "AC" for r in closed)
    assert max(r.json["Present Current [A]"] for r in closed) == pytest.approx(16.0, abs=0.2)
    assert all(r.duty == 5 for r in rs if r.who == "st" and r.state.endswith("2"))


def test_pause_sleep_and_wake_up_pulse():
    sim = sim_of("iso2_dc_pause_cp")
    rs, events = readings(sim)
    assert seq(rs) == ["A1", "B1", "B2", "C2", "B2", "B1", "C1", "B1", "B2", "C2", "B2", "B1", "A1"]
    pause = msgs(sim, "SessionStopRes")[0]
    assert body(msgs(sim, "SessionStopReq")[0].message)["ChargingSession"] == "Pause"
    b1 = first(rs, "B1", after=pause.time)
    assert b1.t - pause.time == pytest.approx(2.5, abs=1e-3)
    wake = first(rs, "C1", after=b1.t)
    back = first(rs, "B1", after=wake.t)
    resumed = first(rs, "B2", after=back.t)
    assert back.t - wake.t == pytest.approx(0.5, abs=1e-3) and resumed.t - back.t == pytest.approx(0.02, abs=1e-3)
    sdp = [e.time for e in events if e.layer == "sdp"]
    assert resumed.t < sdp[-1] and sdp[-1] - resumed.t < 5
    assert len(slac_times(events)) == 1                                      # the link was kept


def test_iso20_dc_and_din():
    sim = sim_of("iso20_dc_cp")
    rs, _ = readings(sim)
    assert seq(rs) == ["A1", "B1", "B2", "C2", "B2", "B1", "A1"]
    assert first(rs, "C2").t < msgs(sim, "DC_CableCheckReq")[0].time
    sim = sim_of("din_dc_cp")
    rs, _ = readings(sim)
    assert seq(rs) == ["A1", "B1", "B2", "C2", "B2", "B1", "A1"]
    stop = next(w for w in msgs(sim, "PowerDeliveryReq") if progress(w) == "Stop")
    assert 0 < first(rs, "B2", after=first(rs, "C2").t).t - stop.time < 0.25


def test_two_sessions_two_plug_ins():
    sim = sim_of("two_sessions_cp")
    rs, events = readings(sim)
    assert seq(rs) == ["A1", "B1", "B2", "C2", "B2", "B1", "A1"] + ["B1", "B2", "C2", "B2", "B1", "A1"]
    unplug = first(rs, "A1", after=first(rs, "C2").t)
    assert slac_times(events)[0] < unplug.t < slac_times(events)[1]


def test_basic_ac_charging():
    sim = sim_of("iec61851_ac_basic")
    rs, events = readings(sim)
    assert sim.messages == [] and not slac_times(events) and not any(e.layer in ("sdp", "tcp") for e in events)
    assert seq(rs) == ["A1", "B1", "B2", "C2", "B2", "B1", "A1"] == seq(rs, "ds")
    b2 = first(rs, "B2")
    assert b2.duty == 27 and b2.hz == 1000                                   # 26.7 % = 16 A (Table A.8)
    c2 = first(rs, "C2")
    assert c2.t - b2.t == pytest.approx(1.0, abs=1e-3)
    closed = [r for r in rs if r.who == "ds" and r.json["HV Contactor"] == "Closed"]
    assert closed[0].t - c2.t == pytest.approx(0.25, abs=1e-3)
    assert max(r.json["Present Current [A]"] for r in closed) == pytest.approx(16.0, abs=0.2)
    assert all(r.json["Present Voltage [V]"] == 230 and r.state == "C2" for r in closed[:-1])
    done = first(rs, "B2", after=c2.t)
    assert first(rs, "B1", after=done.t).t - done.t == pytest.approx(2.5, abs=1e-3)


# ------------------------------------------------------------------ faults
def _loop_res(sim, k):
    loop = [w for w in sim.messages if w.message.name in ("CurrentDemandRes", "ChargingStatusRes")]
    return loop[k - 1]


def test_cp_no_state_c():
    sim = sim_of("cp_no_state_c")
    rs, _ = readings(sim)
    assert not any(r.state.startswith("C") for r in rs)
    loop = msgs(sim, "CurrentDemandReq")
    assert len(loop) > 5
    during = [r for r in rs if r.who == "ds" and loop[0].time < r.t < loop[-1].time]
    assert during and all(r.state == "B2" and r.json["HV Contactor"] == "Closed" for r in during)
    assert any(r.json["Present Current [A]"] > 50 for r in during)


def test_cp_stays_c_after_stop():
    sim = sim_of("cp_stays_c_after_stop")
    rs, _ = readings(sim)
    stop = msgs(sim, "SessionStopRes")[-1]
    c_end = first(rs, "C1")
    assert seq(rs) == ["A1", "B1", "B2", "C2", "C1", "B1", "A1"]
    assert c_end.t - stop.time == pytest.approx(2.5, abs=1e-3)
    assert first(rs, "B1", after=c_end.t).t - c_end.t == pytest.approx(0.5, abs=1e-3)


def test_cp_duty_not_5pct():
    rs, _ = readings(sim_of("cp_duty_not_5pct"))
    assert {r.duty for r in rs if r.who == "st" and r.state.endswith("2")} == {53}


def test_cp_pwm_above_evse_max():
    sim = sim_of("cp_pwm_above_evse_max")
    rs, _ = readings(sim)
    cpd = msgs(sim, "ChargeParameterDiscoveryRes")[-1]
    assert si(body(cpd.message)["AC_EVSEChargeParameter"]["EVSEMaxCurrent"]) == 16.0
    pwm = [r for r in rs if r.who == "st" and r.state.endswith("2")]
    assert {r.duty for r in pwm if r.t < cpd.time} == {5}
    switch = next(r for r in pwm if r.duty == 53)
    assert switch.t - cpd.time == pytest.approx(0.01, abs=1e-3)
    assert cp.current_for_duty(53) == pytest.approx(31.8)


def test_cp_pwm_above_cable():
    rs, _ = readings(sim_of("cp_pwm_above_cable"))
    ds = [r for r in rs if r.who == "ds" and r.state != "A1"]
    assert all(abs(r.json["PP Resistor [Ohm]"] - 1500) <= 5 for r in ds)
    assert {r.duty for r in rs if r.who == "st" and r.state.endswith("2")} == {53}
    assert max(r.json["Present Current [A]"] for r in ds) > 30.0             # above the 13 A cable


@pytest.mark.parametrize("name, letter, volts, code", [("cp_state_e", "E", 0.0, 9), ("cp_state_f", "F", -12.0, 10)])
def test_cp_state_e_f(name, letter, volts, code):
    sim = sim_of(name)
    rs, events = readings(sim)
    res = _loop_res(sim, 10)
    assert sim.messages[-1] is res and not msgs(sim, "SessionStopReq")
    err = first(rs, letter)
    assert 0 < err.t - res.time < 0.05 and abs(err.volts - volts) < 0.1 and err.code == code
    assert seq(rs)[-4:] == ["C2", letter, "B1", "A1"]
    rst = [e for e in events if e.layer == "tcp" and e.name == "RST"]
    assert rst and rst[0].time > err.t and rst[0].direction == "EVSE->EV"


def test_cp_c_to_b_during_transfer():
    sim = sim_of("cp_c_to_b_during_transfer")
    rs, _ = readings(sim)
    edge = first(rs, "B2", after=first(rs, "C2").t)
    assert 0 < edge.t - _loop_res(sim, 8).time < 0.05
    stop = next(w for w in msgs(sim, "PowerDeliveryReq") if progress(w) == "Stop")
    later = [w for w in msgs(sim, "CurrentDemandReq") if edge.t < w.time < stop.time]
    assert len(later) >= 9                                                    # the loop goes on in B
    assert msgs(sim, "SessionStopRes")


def test_cp_unplug_without_stop():
    sim = sim_of("cp_unplug_without_stop")
    rs, _ = readings(sim)
    res = _loop_res(sim, 10)
    assert sim.messages[-1] is res and not msgs(sim, "PowerDeliveryReq")[1:] and not msgs(sim, "SessionStopReq")
    a2 = first(rs, "A2")
    assert 0 < a2.t - res.time < 0.05
    assert seq(rs)[-3:] == ["C2", "A2", "A1"]


def test_cp_slac_late():
    rs, events = readings(sim_of("cp_slac_late"))
    assert slac_times(events)[0] - first(rs, "B2").t == pytest.approx(55.0, abs=1e-3)


def test_cp_noise():
    rs, _ = readings(sim_of("cp_noise"))
    st = [r for r in rs if r.who == "st"]
    odd = [(i, r) for i, r in enumerate(st) if r.state == "?"]
    assert [round(r.volts, 1) for _, r in odd] == [10.5, 7.4, 7.4, 4.5]
    assert [r.code for _, r in odd] == [2, 4, 4, 6]
    for i, r in odd:
        assert st[i - 1].state == st[i + 1].state and st[i + 1].t - r.t == pytest.approx(0.05, abs=1e-3)
    assert [st[i - 1].state for i, _ in odd] == ["B2", "B2", "C2", "C2"]


def test_cp_no_sleep_in_pause():
    sim = sim_of("cp_no_sleep_in_pause")
    rs, _ = readings(sim)
    pause = msgs(sim, "SessionStopRes")[0]
    resume = msgs(sim, "SessionSetupReq")[1]
    during = [r for r in rs if r.who == "st" and pause.time < r.t < resume.time]
    assert [r.state for r in during] == ["C2", "C1", "C2"]
    assert resume.time - during[0].t > 15


def test_cp_wakeup_unanswered():
    sim = sim_of("cp_wakeup_unanswered")
    rs, events = readings(sim)
    assert len(msgs(sim, "SessionSetupReq")) == 1 and len([e for e in events if e.layer == "sdp"]) == 2
    pause = msgs(sim, "SessionStopRes")[-1]
    after = [r for r in rs if r.who == "st" and r.t > pause.time]
    assert [r.state for r in after] == ["B1", "C1", "B1", "A1"]
    assert after[2].t - after[1].t == pytest.approx(0.5, abs=1e-3)
    assert after[3].t - after[2].t == pytest.approx(30.0, abs=1e-3)


def test_cp_contactor_voltage_mismatch_and_its_clean_twin():
    def closing(sim):
        rs, _ = readings(sim)
        ds = [r for r in rs if r.who == "ds"]
        return next(b for a, b in zip(ds, ds[1:]) if a.json["HV Contactor"] == "Open"
                    and b.json["HV Contactor"] == "Closed"), ds
    sim = sim_of("cp_contactor_voltage_mismatch")
    k, ds = closing(sim)
    assert k.src == "02:00:00:00:0e:01"                                      # the dSPACE on the EV side
    assert 240 < k.json["Present Voltage [V]"] < 300 and k.json["Battery Voltage [V]"] > 380
    assert k.t < msgs(sim, "PowerDeliveryReq")[0].time
    clean = sim_from({"protocol": "ISO 15118-2", "battery": {"soc_start": 70.0, "voltage_empty_v": 340.0,
                                                             "voltage_full_v": 420.0},
                      "timing": {"loop_cycles": 8},
                      "control_pilot": {"evidence": "dspace", "battery_voltage_v": "battery"}})
    k, ds = closing(clean)
    assert abs(k.json["Present Voltage [V]"] - k.json["Battery Voltage [V]"]) <= 10
    closed = [r for r in ds if r.json["HV Contactor"] == "Closed"]
    assert all(abs(r.json["Present Voltage [V]"] - r.json["Battery Voltage [V]"]) <= 20 for r in closed)


def test_cp_5pct_without_hlc():
    sim = sim_of("cp_5pct_without_hlc")
    rs, events = readings(sim)
    assert not slac_times(events) and sim.messages == []
    assert seq(rs) == ["A1", "B1", "B2", "A2", "A1"]
    assert first(rs, "B2").duty == 5
    assert first(rs, "A2").t - rs[0].t == pytest.approx(70.0, abs=1e-3)


# ------------------------------------------------------------------ scenario checks
@pytest.mark.parametrize("table, words", [
    ({"control_pilot": {"evidence": "wire"}}, "evidence"),
    ({"control_pilot": {"plug_in_s": 4}}, "evidence is required"),
    ({"control_pilot": {"evidence": "st", "pwm_delay_s": -1}}, "≥ 0"),
    ({"control_pilot": {"evidence": "st", "colour": 1}}, "unknown key"),
    ({"protocol": "IEC 61851-1"}, "AC"),
    ({"protocol": "IEC 61851-1", "mode": "AC"}, "control pilot only"),
    ({"mode": "AC", "control_pilot": {"evidence": "both", "battery_voltage_v": "battery"}}, "DC sessions only"),
    ({"control_pilot": {"evidence": "both", "duty_pct": 26.7}}, "basic"),
])
def test_bad_control_pilot_tables_are_refused(table, words):
    with pytest.raises(ScenarioError, match=words):
        parse_scenario(table, "bad")


@pytest.mark.parametrize("table, words", [
    ({"faults": [{"name": "cp_no_state_c"}]}, "needs CP evidence"),
    ({"control_pilot": {"evidence": "both"}, "faults": [{"name": "cp_pwm_above_cable"}]}, "basic"),
    ({"mode": "AC", "control_pilot": {"evidence": "both"}, "faults": [{"name": "cp_duty_not_5pct"}]}, "DC"),
    ({"control_pilot": {"evidence": "both"}, "faults": [{"name": "cp_wakeup_unanswered"}]}, "paused"),
    ({"control_pilot": {"evidence": "both"}, "faults": [{"name": "cp_noise", "c_voltages_v": [6.1]}]}, "band"),
    ({"control_pilot": {"evidence": "both"}, "timing": {"loop_cycles": 4},
      "faults": [{"name": "cp_state_e", "at_cycle": 9}]}, "charge-loop"),
])
def test_cp_faults_that_do_not_fit_are_refused(table, words):
    with pytest.raises(ScenarioError, match=words):
        sim_from(table)
