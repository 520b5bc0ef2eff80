"""The command line on the project's own sample capture (no corpus needed): the decode
contract, timeline, analyze reports, folders, bad input and damaged captures."""
from __future__ import annotations

import json
import re
from html import unescape
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccs_analyzer.analyzer.cli import app, expand_inputs

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "din_dc_session.pcapng"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_decode_contract():
    r = run("decode", "--no-progress", SAMPLE)
    assert r.exit_code == 0
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    layers = {x["layer"] for x in rows}
    assert layers == {"slac", "sdp", "v2gtp"}
    for x in rows:
        assert {"frame", "time", "layer", "name", "direction", "namespace", "message", "error"} <= set(x)
        assert isinstance(x["frame"], int) and isinstance(x["time"], float)
        assert x["error"] is None
    v2g = [x for x in rows if x["layer"] == "v2gtp"]
    assert v2g[0]["name"] == "supportedAppProtocolReq" and v2g[0]["direction"] == "EV->EVSE"
    assert v2g[1]["name"] == "supportedAppProtocolRes" and v2g[1]["direction"] == "EVSE->EV"
    assert v2g[-1]["name"] == "SessionStopRes"
    assert all(x["namespace"] == "urn:din:70121:2012:MsgDef" for x in v2g[2:])
    pre = next(x for x in v2g if x["name"] == "PreChargeReq")
    assert pre["message"]["V2G_Message"]["Body"]["PreChargeReq"]["EVTargetVoltage"]["Unit"] == "V"
    slac = [x for x in rows if x["layer"] == "slac"]
    assert slac[0]["name"] == "CM_SLAC_PARM.REQ" and slac[0]["direction"] == "EV->EVSE"
    assert any(x["name"] == "CM_SLAC_MATCH.CNF" for x in slac)


def test_decode_all_layers_and_folder(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "a.pcapng")
    shutil.copy(SAMPLE, tmp_path / "b.pcapng")
    r = run("decode", "--no-progress", "--layers", "all", tmp_path)
    assert r.exit_code == 0
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {x["capture"] for x in rows} == {"a.pcapng", "b.pcapng"}
    assert {"SYN", "SYN-ACK", "FIN"} <= {x["name"] for x in rows if x["layer"] == "tcp"}


def test_timeline_table_and_csv(tmp_path):
    r = run("timeline", SAMPLE)
    assert r.exit_code == 0 and "CurrentDemandRes" in r.stdout
    out = tmp_path / "t.csv"
    r = run("timeline", SAMPLE, "--csv", "-o", out)
    assert r.exit_code == 0
    head = out.read_text().splitlines()[0].split(",")
    for col in ("session", "frame", "t_s", "name", "EVSEPresentVoltage_V", "EVTargetCurrent_A", "power_W"):
        assert col in head


def test_analyze_writes_reports(tmp_path):
    r = run("analyze", SAMPLE, "-o", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["schema_version"] == "2.1"
    cap = rep["capture"]
    assert cap["frames"] == rep["frame_accounting"]["frames"] and len(cap["sha256"]) == 64
    acc = rep["frame_accounting"]
    assert acc["decoded"] + acc["skipped"] + acc["out_of_scope"] == acc["frames"]
    assert acc["skipped"] == 0 and acc["out_of_scope"] == 0
    (s,) = rep["sessions"]
    assert s["protocol"] == "DIN 70121" and s["ended"]["how"] == "SessionStop (Terminate)"
    assert s["EVCCID"] and s["EVSEID"] and s["SessionID"]
    assert s["max_voltage_v"] > 300 and s["max_current_a"] > 50 and s["energy_wh"] > 0
    assert s["soc_end_pct"] >= s["soc_start_pct"] > 0
    assert rep["counts"]["error"] == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    assert csp and "default-src 'none'" in unescape(csp.group(1))
    assert not re.search(r"(src|href)=\"https?:", html)
    assert "<svg" in html


def test_analyze_folder_in_parallel(tmp_path):
    for n in ("x", "y"):
        shutil.copy(SAMPLE, tmp_path / f"{n}.pcapng")
    r = run("analyze", tmp_path, "-o", tmp_path / "out", "-j", "2")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "x" / "report.json").exists()
    assert (tmp_path / "out" / "y" / "report.html").exists()


def test_bad_inputs_exit_2(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"definitely not a capture" * 10)
    assert run("analyze", junk, "-o", tmp_path / "o").exit_code == 2
    assert run("decode", junk).exit_code == 2
    assert run("analyze", tmp_path / "missing.pcapng").exit_code == 2
    assert run("analyze", SAMPLE, "--keylog", tmp_path / "nokeys.log", "-o", tmp_path / "o").exit_code == 2


def test_truncated_capture_is_analysed_and_reported(tmp_path):
    data = SAMPLE.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = run("analyze", cut, "-o", tmp_path / "rep")
    assert r.exit_code == 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["capture"]["problems"] and "cut short" in rep["capture"]["problems"][0]["reason"]
    assert "CAP001" in {f["rule"] for f in rep["findings"]}
    (s,) = rep["sessions"]
    assert s["ended"]["how"] == "capture ended during the session"


def test_rules_list_and_explain():
    r = run("rules", "list")
    assert r.exit_code == 0 and "PRE001" in r.stdout
    r = run("rules", "explain", "pre001")
    assert r.exit_code == 0 and "What it checks" in r.stdout and "limit_s" in r.stdout
    assert run("rules", "explain", "NOPE").exit_code == 2


@pytest.mark.parametrize("garbage", [b"\x0a\x0d\x0d\x0a" + b"\xff" * 200, b"\xd4\xc3\xb2\xa1" + b"\x00" * 10])
def test_garbage_after_magic_never_tracebacks(tmp_path, garbage):
    p = tmp_path / "g.pcapng"
    p.write_bytes(garbage)
    r = runner.invoke(app, ["analyze", str(p), "-o", str(tmp_path / "o")])
    assert r.exit_code in (0, 2)
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_folder_scan_takes_the_captures_the_reader_reads(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "x.pcapng")
    (tmp_path / "old.pcap.gz").write_bytes(b"\x1f\x8b")     # no gzip reader: not picked
    assert expand_inputs([tmp_path]) == [tmp_path / "x.pcapng"]
