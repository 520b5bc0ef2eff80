"""Same scenario and seed ⇒ byte-identical capture; the committed captures are what the
scenarios give (``python -m ccs_analyzer.samples.build`` regenerates them)."""
from __future__ import annotations

import pytest

from ccs_analyzer.samples import simulate
from ccs_analyzer.samples.build import build_all, capture_path

from .helpers import SAMPLES, SCENARIOS, committed


def test_committed_captures_are_up_to_date():
    differing = build_all(SAMPLES, check=True, quiet=True)
    assert differing == [], ("regenerate with python -m ccs_analyzer.samples.build", differing)


def test_every_scenario_has_its_committed_capture():
    for name in SCENARIOS:
        assert committed(name).exists(), name
    assert committed("din_dc") == SAMPLES / "din_dc_session.pcapng"
    assert capture_path("slac_incomplete", SAMPLES) == SAMPLES / "captures" / "slac_incomplete.pcapng"


@pytest.mark.parametrize("name", ["iso2_dc_eim", "iso20_ac", "iso2_dc_noisy_link"])
def test_same_seed_same_bytes_other_seed_other_bytes(name):
    a, b = simulate(name, seed=5), simulate(name, seed=5)
    assert a.pcapng == b.pcapng
    c = simulate(name, seed=6)
    assert c.pcapng != a.pcapng


def test_build_writes_to_another_folder(tmp_path):
    written = build_all(tmp_path, names=["din_dc", "slac_incomplete"], quiet=True)
    assert written == ["din_dc", "slac_incomplete"]
    assert (tmp_path / "din_dc_session.pcapng").read_bytes() == committed("din_dc").read_bytes()
    assert (tmp_path / "captures" / "slac_incomplete.pcapng").exists()
