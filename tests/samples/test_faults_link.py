"""The link-level and capture-point faults (samples/faults_link.py) do what their documentation
says: SLAC frames, SDP fields, TCP behaviour, and what the capture records."""
from __future__ import annotations

import struct

import pytest

from ccs_analyzer.samples import ScenarioError

from .helpers import decode, sim_from, sim_of


def events(sim, layer=None):
    return [e for e in decode(sim)[0] if layer is None or e.layer == layer]


def slac(sim, name=None):
    return [e for e in events(sim, "slac") if name is None or e.name == name]


def names(sim):
    return [w.message.name for w in sim.messages]


def blocks(data: bytes):
    """(type, body) of every pcapng block (little-endian, as the writer makes them)."""
    i = 0
    while i < len(data):
        btype, n = struct.unpack_from("<II", data, i)
        yield btype, data[i + 8:i + n - 4]
        i += n


def packets(data: bytes):
    """(interface, captured length, original length, frame) of every Enhanced Packet Block."""
    for btype, body in blocks(data):
        if btype == 6:
            iface, _, _, cap, orig = struct.unpack_from("<IIIII", body)
            yield iface, cap, orig, body[20:20 + cap]


# ------------------------------------------------------------------ SLAC
def test_slac_parm_off_nominal():
    sim = sim_of("iso2_dc_slac_parm_off_nominal")
    cnf = slac(sim, "CM_SLAC_PARM.CNF")[0]
    starts = slac(sim, "CM_START_ATTEN_CHAR.IND")
    assert cnf.message["Time_Out"] == 10 and {s.message["Time_Out"] for s in starts} == {10}
    ind = slac(sim, "CM_ATTEN_CHAR.IND")[0]
    assert ind.time - starts[0].time >= 1.0           # the charger waits for its 1000 ms window
    assert names(sim)[-1] == "SessionStopRes"


def test_slac_parm_off_nominal_fewer_sounds():
    sim = sim_from({"faults": [{"name": "slac_parm_off_nominal", "time_out": 6, "num_sounds": 8, "resp_type": 2}]})
    sounds = slac(sim, "CM_MNBC_SOUND.IND")
    assert [s.message["Cnt"] for s in sounds] == list(range(7, -1, -1))
    cnf = slac(sim, "CM_SLAC_PARM.CNF")[0].message
    assert (cnf["NUM_SOUNDS"], cnf["RESP_TYPE"]) == (8, 2)
    assert slac(sim, "CM_ATTEN_CHAR.IND")[0].message["NUM_SOUNDS"] == 8
    assert len(slac(sim, "CM_ATTEN_PROFILE.IND")) == 8


def test_slac_start_atten_mismatch():
    sim = sim_of("iso2_dc_slac_start_atten_mismatch")
    assert slac(sim, "CM_SLAC_PARM.CNF")[0].message["Time_Out"] == 6
    assert {s.message["Time_Out"] for s in slac(sim, "CM_START_ATTEN_CHAR.IND")} == {10}


def test_slac_parm_unanswered():
    sim = sim_of("din_dc_slac_parm_repeated")
    reqs, cnfs = slac(sim, "CM_SLAC_PARM.REQ"), slac(sim, "CM_SLAC_PARM.CNF")
    assert len(reqs) == 6 and len(cnfs) == 1 and len({r.message["RunID"] for r in reqs}) == 1
    assert all(abs(b.time - a.time - 1.0) < 1e-4 for a, b in zip(reqs, reqs[1:]))
    assert cnfs[0].time > reqs[-1].time and names(sim)[-1] == "SessionStopRes"


def test_slac_restart():
    sim = sim_of("iso2_dc_slac_restart")
    reqs = slac(sim, "CM_SLAC_PARM.REQ")
    assert len(reqs) == 2 and reqs[0].message["RunID"] != reqs[1].message["RunID"]
    first_run = [e for e in slac(sim) if e.time < reqs[1].time and e.name != "CM_ATTEN_PROFILE.IND"]
    assert first_run[-1].name == "CM_MNBC_SOUND.IND"
    assert not any(e.name == "CM_ATTEN_CHAR.IND" for e in first_run)
    assert abs(reqs[1].time - first_run[-1].time - 1.2) < 1e-4
    assert slac(sim, "CM_SLAC_MATCH.CNF")[0].message["RunID"] == reqs[1].message["RunID"]
    sim = sim_from({"faults": [{"name": "slac_restart", "fail_after": "CM_SLAC_PARM.CNF", "new_run_id": False}]})
    assert len({r.message["RunID"] for r in slac(sim, "CM_SLAC_PARM.REQ")}) == 1


def test_slac_sounds_lost():
    sim = sim_of("iso2_dc_slac_sounds_lost")
    assert len(slac(sim, "CM_MNBC_SOUND.IND")) == 10
    profiles = [e for e in slac(sim, "CM_ATTEN_PROFILE.IND")]
    assert len(profiles) == 4
    assert slac(sim, "CM_ATTEN_CHAR.IND")[0].message["NUM_SOUNDS"] == 4
    sim = sim_from({"faults": [{"name": "slac_sounds_lost", "sent": 7, "received": 7}]})
    assert len(slac(sim, "CM_MNBC_SOUND.IND")) == 7
    with pytest.raises(ScenarioError):
        sim_from({"faults": [{"name": "slac_sounds_lost", "sent": 3, "received": 4}]})


def test_slac_attenuation_high():
    sim = sim_of("iso2_dc_slac_attenuation_high")
    profiles = slac(sim, "CM_ATTEN_PROFILE.IND")
    assert all(46 < p.message["AAG_mean_dB"] < 50 for p in profiles)
    assert slac(sim, "CM_ATTEN_CHAR.IND")[0].message["AAG_mean_dB"] > 40
    assert slac(sim, "CM_SLAC_MATCH.CNF")


def test_atten_char_empty():
    sim = sim_of("iso2_dc_slac_empty_profile")
    ind = slac(sim, "CM_ATTEN_CHAR.IND")[0].message
    assert (ind["NUM_SOUNDS"], ind["NumGroups"]) == (0, 0)
    assert not slac(sim, "CM_ATTEN_PROFILE.IND") and slac(sim, "CM_SLAC_MATCH.CNF")


def test_atten_char_after_match():
    sim = sim_of("din_dc_atten_char_after_match")
    match = slac(sim, "CM_SLAC_MATCH.CNF")[0]
    late = [e for e in slac(sim, "CM_ATTEN_CHAR.IND") if e.time > match.time]
    assert len(late) == 10 and {e.dst for e in late} == {"ff:ff:ff:ff:ff:ff"}
    v2g = [w.time for w in sim.messages]
    assert v2g[0] < late[0].time < v2g[-1]                # during the V2G session


def test_set_key_failed():
    sim = sim_of("slac_set_key_failed")
    ev_mac = sim.sessions[0].slac.ev_mac
    cnf = [e for e in slac(sim, "CM_SET_KEY.CNF") if e.dst == ev_mac][0]
    assert cnf.message["Result"] == 1
    assert not events(sim, "sdp") and not sim.messages
    reqs = slac(sim, "CM_SLAC_PARM.REQ")
    assert len(reqs) == 2 and reqs[1].time - cnf.time >= 14.0
    assert reqs[0].message["RunID"] != reqs[1].message["RunID"]


# ------------------------------------------------------------------ SDP
def test_sdp_wrong_secc_address():
    sim = sim_of("iso2_dc_sdp_wrong_address")
    res = [e for e in events(sim, "sdp") if e.direction == "EVSE->EV"][0]
    assert res.message["SECCIPAddress"] == "fe80::ff:fe00:e502"       # the charger's modem
    assert res.src.startswith("[fe80::ff:fe00:e501]")
    assert not events(sim, "tcp") and not sim.messages
    sim = sim_from({"faults": [{"name": "sdp_wrong_secc_address", "address": "fe80::1", "ev_reaction": "responder"}]})
    res = [e for e in events(sim, "sdp") if e.direction == "EVSE->EV"][0]
    assert res.message["SECCIPAddress"] == "fe80::1" and names(sim)[-1] == "SessionStopRes"


def test_sdp_invalid_transport():
    sim = sim_of("iso2_dc_sdp_transport_udp")
    sdp = events(sim, "sdp")
    assert [e.message["TransportProtocol"] for e in sdp] == ["TCP", "UDP"]
    assert names(sim)[-1] == "SessionStopRes"
    sim = sim_from({"faults": [{"name": "sdp_invalid_transport", "side": "EV", "requests": 4}]})
    sdp = events(sim, "sdp")
    assert len(sdp) == 4 and {e.message["TransportProtocol"] for e in sdp} == {"UDP"}
    assert all(e.direction == "EV->EVSE" for e in sdp) and not sim.messages


def test_secc_port_static():
    sim = sim_of("din_dc_secc_port_15118")
    res = [e for e in events(sim, "sdp") if e.direction == "EVSE->EV"][0]
    assert res.message["SECCPort"] == 15118
    syn = [e for e in events(sim, "tcp") if e.name == "SYN"][0]
    assert syn.dst.endswith(":15118")


# ------------------------------------------------------------------ TCP / V2GTP
def test_ev_ignores_secc_port():
    sim = sim_of("din_dc_ev_fixed_port")
    res = [e for e in events(sim, "sdp") if e.direction == "EVSE->EV"][0]
    assert res.message["SECCPort"] != 15118
    syn = [e for e in events(sim, "tcp") if e.name == "SYN"][0]
    assert syn.dst.endswith(":15118") and names(sim)[-1] == "SessionStopRes"


def test_retransmission_storm():
    sim = sim_of("iso2_dc_retransmission_storm")
    tcp = events(sim, "tcp")
    rtx = [e for e in tcp if e.name == "TCP retransmission"]
    assert len(rtx) == 12 and {e.direction for e in rtx} == {"EV->EVSE"}
    lost = [w for w in sim.messages if getattr(w.message, "line_losses", None)]
    assert len(lost) == 12 and all(w.message.name == "CurrentDemandReq" for w in lost)
    times = [w.time for w in sim.messages]
    for w in lost:                                     # the response comes after the retransmission
        i = next(k for k, x in enumerate(sim.messages) if x is w)
        assert times[i + 1] - times[i] > 0.2
    sim = sim_from({"faults": [{"name": "retransmission_storm", "message": "CurrentDemandRes", "count": 2,
                                "losses": 2}]})
    rtx = [e for e in events(sim, "tcp") if e.name == "TCP retransmission"]
    assert len(rtx) == 4 and {e.direction for e in rtx} == {"EVSE->EV"}


def test_v2gtp_empty_payload():
    sim = sim_of("iso2_ac_empty_payload")
    m = sim.messages[-1].message
    assert m.name == "ChargeParameterDiscoveryRes" and m.payload() == b""
    assert m.wire()[4:8] == b"\x00\x00\x00\x00"
    assert sim.sessions[0].connections[-1].ending.by == "EV"


# ------------------------------------------------------------------ the capture point
def test_capture_starts_late_in_slac():
    sim = sim_of("iso2_dc_capture_starts_in_slac")
    first = events(sim)[0]
    assert first.layer == "slac" and first.name == "CM_SLAC_PARM.CNF"
    assert not slac(sim, "CM_SLAC_PARM.REQ") and names(sim)[-1] == "SessionStopRes"


def test_capture_starts_late_mid_session():
    sim = sim_of("din_dc_capture_starts_mid_session")
    evs = events(sim)
    assert not [e for e in evs if e.layer in ("slac", "sdp")]
    assert not [e for e in evs if e.layer == "tcp" and e.name == "SYN"]
    decoded = [e for e in evs if e.layer == "v2gtp" and e.message is not None]
    assert decoded[0].name == "CableCheckReq"
    seen = [w.message.name for w in sim.messages if not w.message.lost]
    assert seen[0] == "CableCheckReq" and all(w.message.lost for w in sim.messages[:sim.messages.index(
        next(w for w in sim.messages if w.message.name == "CableCheckReq"))])


def test_sniffer_one_side():
    sim = sim_of("din_dc_listen_mode_one_sided")
    plan = sim.sessions[0]
    evse = {plan.slac.evse_mac, plan.slac.evse_modem_mac}
    srcs = {":".join(f"{b:02x}" for b in fr[6:12]) for _, _, _, fr in packets(sim.pcapng)}
    assert srcs <= evse
    assert all(w.message.lost == (w.message.side == "EV") for w in sim.messages)


def test_capture_snaplen():
    sim = sim_of("iso2_dc_capture_snaplen")
    idb = [body for t, body in blocks(sim.pcapng) if t == 1]
    assert struct.unpack_from("<HHI", idb[0])[2] == 128
    pk = list(packets(sim.pcapng))
    assert all(cap <= 128 for _, cap, _, _ in pk)
    cut = [p for p in pk if p[2] > p[1]]
    assert cut and all(len(fr) == 128 for _, _, _, fr in cut)
    assert any(w.message.lost for w in sim.messages)
    _, acc = decode(sim)
    assert any("truncated" in r for r in acc.skipped)


def test_capture_duplicates():
    sim = sim_of("iso2_dc_capture_duplicates")
    pk = list(packets(sim.pcapng))
    idb = [body for t, body in blocks(sim.pcapng) if t == 1]
    assert len(idb) == 2
    on = [[fr for i, _, _, fr in pk if i == k] for k in (0, 1)]
    assert on[0] == on[1] and len(on[0]) * 2 == len(pk)
    assert not any(w.message.lost for w in sim.messages)


def test_sniffer_faults_compose():
    sim = sim_from({"protocol": "DIN 70121", "timing": {"loop_cycles": 3},
                    "faults": [{"name": "capture_starts_late", "message": "PreChargeReq"},
                               {"name": "capture_duplicates"}, {"name": "capture_snaplen", "snaplen": 120}]})
    pk = list(packets(sim.pcapng))
    assert all(cap <= 120 for _, cap, _, _ in pk) and {i for i, *_ in pk} == {0, 1}
    with pytest.raises(ScenarioError):
        sim_from({"faults": [{"name": "capture_starts_late", "message": "NoSuchReq"}]})
