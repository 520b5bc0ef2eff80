"""Every scenario's capture decodes with the project's decoder exactly as the simulator meant
it: the decoded V2G trees equal the trees it encoded, in order — inside TLS too, decrypted
with the key log the capture discloses (UDP datagrams or a Decryption Secrets Block); damaged
messages (faults) come out as errors, messages whose TLS secrets are withheld as encrypted
records; every frame of a clean capture is accounted for as decoded."""
from __future__ import annotations

import pytest

from .helpers import SCENARIOS, decode, sim_of

CLEAN = {"din_dc", "iso2_dc_eim", "iso2_ac_eim", "iso2_dc_pnc", "iso2_ac_pnc", "iso2_dc_pause",
         "iso2_dc_renegotiation", "iso2_ac_renegotiation", "iso20_dc", "iso20_dc_scheduled", "iso20_ac",
         "two_sessions", "iso2_ac_pnc_tls_dsb", "iso20_dc_tls_keys_withheld",
         # with control-pilot evidence (vendor MMEs, samples/control_pilot.py)
         "din_dc_cp", "iso2_dc_eim_cp", "iso2_ac_eim_cp", "iso2_dc_pause_cp", "iso20_dc_cp", "two_sessions_cp"}


@pytest.mark.parametrize("name", SCENARIOS)
def test_decoded_trees_are_the_simulated_ones(name):
    sim = sim_of(name)
    events, acc = decode(sim)
    v2g = [e for e in events if e.layer == "v2gtp"]
    decoded = [e for e in v2g if e.message is not None]
    meant = [w for w in sim.messages if w.expect_decoded]
    assert len(decoded) == len(meant), (name, [e.name for e in decoded][-5:], [w.message.name for w in meant][-5:])
    for e, w in zip(decoded, meant):
        assert e.message == w.message.tree, (name, e.frame, e.name)
        assert e.direction == ("EV->EVSE" if w.message.side == "EV" else "EVSE->EV")
        assert abs(e.time - w.time) < 0.01, (name, e.frame, e.name)
    damaged = [w for w in sim.messages if not w.expect_decoded and not w.message.lost and w.readable]
    if damaged:
        assert any(e.error for e in v2g), name
    if any(not w.readable for w in sim.messages):       # TLS secrets withheld: encrypted records
        assert any(e.layer == "tls" and e.name == "Encrypted record" for e in events), name
    if name in CLEAN:
        assert not any(e.error for e in events if e.layer in ("v2gtp", "sdp", "slac", "tcp")), name
        assert not acc.skipped and not acc.out_of_scope, (name, acc)


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_sessions_end_with_session_stop(name):
    sim = sim_of(name)
    assert sim.messages[-1].message.name == "SessionStopRes"
    assert not any("fault" in c for w in sim.messages for c in w.message.comments)
    assert sim.faults == []
