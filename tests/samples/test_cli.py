"""``ccs-analyzer simulate SCENARIO -o FILE [--seed N]``."""
from __future__ import annotations

from typer.testing import CliRunner

from ccs_analyzer.analyzer.cli import app
from .helpers import committed as capture_path

runner = CliRunner()


def test_simulate_writes_the_scenarios_capture(tmp_path):
    out = tmp_path / "s.pcapng"
    r = runner.invoke(app, ["simulate", "din_dc", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == capture_path("din_dc").read_bytes()
    assert "1 session(s)" in r.output


def test_simulate_with_a_seed_and_a_file(tmp_path):
    scen = tmp_path / "mine.toml"
    scen.write_text('protocol = "ISO 15118-20"\nmode = "AC"\n[[faults]]\nname = "trailing_bytes"\n')
    a, b = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
    assert runner.invoke(app, ["simulate", str(scen), "-o", str(a), "--seed", "3"]).exit_code == 0
    assert runner.invoke(app, ["simulate", str(scen), "-o", str(b), "--seed", "3"]).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    r = runner.invoke(app, ["simulate", str(scen), "-o", str(b), "--seed", "4"])
    assert r.exit_code == 0 and "trailing_bytes" in r.output and a.read_bytes() != b.read_bytes()


def test_simulate_unknown_scenario(tmp_path):
    r = runner.invoke(app, ["simulate", "no_such_scenario", "-o", str(tmp_path / "x.pcapng")])
    assert r.exit_code == 2
    assert not (tmp_path / "x.pcapng").exists()
