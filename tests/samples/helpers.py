"""Shared helpers of the simulator tests: simulate once per scenario (cached), decode a
simulation with the project's pipeline."""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from ccs_analyzer.dissectors.pipeline import Dissector
from ccs_analyzer.samples import parse_scenario, scenario_names, simulate

SCENARIOS = scenario_names()
#: samples/ of this checkout: the committed captures live here (they are not package data,
#: so an installed, non-editable ccs_analyzer does not carry them)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def committed(name: str) -> Path:
    """The committed capture of scenario ``name`` in this checkout."""
    from ccs_analyzer.samples.build import capture_path
    return capture_path(name, SAMPLES)


@functools.lru_cache(maxsize=None)
def sim_of(name: str, seed: int | None = None):
    """The simulation of a shipped scenario (cached: simulations are deterministic)."""
    return simulate(name, seed)


def sim_from(table: dict, seed: int | None = None):
    """Simulate a scenario given as a dict (the parsed TOML form)."""
    return simulate(parse_scenario(table, "test"), seed)


def decode(sim) -> tuple[list, object]:
    """All dissector events of a simulation's capture, and the frame accounting."""
    fd, path = tempfile.mkstemp(suffix=".pcapng")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(sim.pcapng)
        d = Dissector(path)
        events = list(d.events())
        return events, d.accounting
    finally:
        os.unlink(path)


def v2g(sim, name: str | None = None):
    """The simulation's V2G messages (Message objects), optionally only those named ``name``."""
    return [w.message for w in sim.messages if name is None or w.message.name == name]


def body(m) -> dict:
    from ccs_analyzer.samples.script import body_of
    return body_of(m.tree)


def si(pv: dict) -> float:
    """A PhysicalValue / RationalNumber tree as a float."""
    return pv["Value"] * 10.0 ** pv.get("Multiplier", pv.get("Exponent", 0))
