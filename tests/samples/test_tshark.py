"""Every committed capture opens in tshark without malformed packets, bad checksums (TCP /
UDP checksum validation on) or other Error-level expert infos, and with Warning-level ones
only where a fault deliberately causes them (a reset, frames missing from the capture).
Skipped when tshark is not installed."""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from ccs_analyzer.samples import load_scenario

from .helpers import SCENARIOS
from .helpers import committed as capture_path

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")

#: Warning-level expert summaries a fault may cause (tshark 3.x / 4.x wording, prefixes).
ALLOWED_WARNINGS = {
    "tcp_rst": ("Connection reset",),
    "stop_charging_ignored": ("Connection reset",),
    "tcp_connect_refused": ("Connection reset",),
    "lost_frames": ("ACKed segment that wasn't captured", "Previous segment"),
    "tcp_retransmission": ("This frame is a (suspected) retransmission", "Duplicate ACK"),
    "ev_reconnect_flood": ("Connection reset",),
    "response_after_ev_timeout": ("Connection reset",),
    "ev_reuses_half_open_port": ("Connection reset", "ACKed segment that wasn't captured"),
    "cp_state_e": ("Connection reset",),
    "cp_state_f": ("Connection reset",),
    "cp_unplug_without_stop": ("Connection reset",),
}


def expert(path) -> tuple[dict[str, list[str]], str, int]:
    """tshark's expert summary of ``path``: {group: [summaries]}, stderr, exit status."""
    p = subprocess.run([TSHARK, "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o",
                        "udp.check_checksum:TRUE", "-z", "expert", "-q"],
                       capture_output=True, text=True, timeout=120)
    groups: dict[str, list[str]] = {}
    current = None
    for line in p.stdout.splitlines():
        m = re.match(r"^(\w+) \(\d+\)$", line.strip())
        if m:
            current = groups.setdefault(m.group(1), [])
            continue
        m = re.match(r"^\s*\d+\s+\S+\s+\S+\s+(.*)$", line)
        if current is not None and m:
            current.append(m.group(1).strip())
    return groups, p.stderr, p.returncode


def check(name: str) -> list[str]:
    """Problems tshark reports for scenario ``name``'s capture (empty: fine)."""
    sc = load_scenario(name)
    faults = {f.name for s in sc.sessions for f in s.faults} | {f.name for f in sc.capture_faults}
    groups, stderr, rc = expert(capture_path(name))
    problems = []
    if "capture_truncated" not in faults:
        if rc != 0 or "cut short" in stderr or "appears to be damaged" in stderr:
            problems.append(f"tshark exit {rc}: {stderr.strip()[:200]}")
    for g in ("Errors", "Error"):
        problems += [f"error: {s}" for s in groups.get(g, [])]
    allowed = tuple(w for f in faults for w in ALLOWED_WARNINGS.get(f, ()))
    for g in ("Warns", "Warnings", "Warning"):
        problems += [f"warning: {s}" for s in groups.get(g, []) if not s.startswith(allowed) or not allowed]
    if any("Malformed" in s for v in groups.values() for s in v):
        problems.append("malformed packet")
    return problems


def test_every_capture_is_clean_in_tshark():
    with ThreadPoolExecutor(max_workers=2) as ex:
        results = dict(zip(SCENARIOS, ex.map(check, SCENARIOS)))
    bad = {k: v for k, v in results.items() if v}
    assert not bad, bad


def test_truncated_capture_is_reported_by_tshark():
    groups, stderr, rc = expert(capture_path("iso2_dc_capture_truncated"))
    assert rc != 0 or "cut short" in stderr


def test_faults_cause_the_warnings_they_should():
    groups, _, _ = expert(capture_path("iso2_dc_tcp_rst"))
    assert any(s.startswith("Connection reset") for s in groups.get("Warns", []))
    groups, _, _ = expert(capture_path("iso2_dc_lost_frames"))
    assert any(s.startswith("ACKed segment that wasn't captured") for s in groups.get("Warns", []))


def test_the_checker_sees_a_bad_checksum(tmp_path):
    data = bytearray(capture_path("iso2_dc_eim").read_bytes())
    i = data.find(bytes.fromhex("01fe8001"))       # a V2GTP header inside a TCP segment
    data[i + 10] ^= 0xFF
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(data))
    groups, _, _ = expert(bad)
    assert any("checksum" in s.lower() for s in groups.get("Errors", []))
