"""The annotated capture: packets byte-identical, findings as packet comments on the right
frames (checked with tshark when it is installed)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.dissectors.capture import CaptureReader
from ccs_analyzer.reports.annotate import annotate
from ccs_analyzer.rules.base import Finding
from tests.conftest import CORPUS

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "din_dc_session.pcapng"


def frames(path):
    return [(f.number, f.time, f.data, f.orig_len, f.linktype) for f in CaptureReader(path)]


def tshark_comments(path) -> dict[int, list[str]]:
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "frame.comment", "-T", "fields",
                          "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number",
                          "-e", "frame.comment"], capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        num, _, text = line.partition("\t")
        res[int(num)] = text.split("|")
    return res


def fake(fid, frames_, text="synopsis <b>&</b>"):
    return Finding("PRE001", "t", "precharge", "error", "SECC", "S1", frames_, 0.0, text, id=fid)


def test_packets_unchanged_and_comments_placed(tmp_path):
    out = tmp_path / "a.pcapng"
    n = annotate(SAMPLE, out, [fake("F1", [5, 40]), fake("F2", [40])])
    assert n == 2
    assert frames(out) == frames(SAMPLE)
    if shutil.which("tshark"):
        c = tshark_comments(out)
        assert set(c) == {5, 40}
        assert len(c[40]) == 2 and c[5][0].startswith("ccs-analyzer F1 PRE001 error (SECC): synopsis <b>&</b>")


def test_no_findings_is_a_byte_identical_copy(tmp_path):
    out = tmp_path / "b.pcapng"
    assert annotate(SAMPLE, out, []) == 0
    assert out.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
def test_real_findings_on_a_corpus_capture(corpus, tmp_path):
    cap = CORPUS / "2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng"
    a = analyze_capture(cap)
    out = tmp_path / "m.pcapng"
    annotate(cap, out, a.findings)
    assert frames(out) == frames(cap)
    c = tshark_comments(out)
    for f in a.findings:
        for fr in f.frames:
            assert any(f.id in line and f.rule in line for line in c[fr])


def test_pcap_input_becomes_pcapng_with_exact_times(corpus, tmp_path):
    cap = CORPUS / "2026-02-03_pyPLC_FoccciCape_with_Ioniq_runs_10_minutes.pcap"
    out = tmp_path / "p.pcapng"
    annotate(cap, out, [fake("F1", [3])])
    a, b = frames(cap), frames(out)
    assert [x[2] for x in a] == [x[2] for x in b] and [x[1] for x in a] == [x[1] for x in b]
    assert CaptureReader(out).info.format == "pcapng"


def test_big_endian_section_gets_its_comments(tmp_path):
    """A pcapng section written big-endian (byte-order magic 1A2B3C4D read as such): its
    Enhanced Packet Blocks are found in that byte order and the comments placed."""
    import struct

    from ccs_analyzer.dissectors.capture import PCAPNG_SHB
    from ccs_analyzer.dissectors.pcapng_writer import block, enhanced_packet_block

    shb = block(PCAPNG_SHB, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1), ">")
    idb = block(1, struct.pack(">HHI", 1, 0, 262144), ">")
    eth = bytes.fromhex("ffffffffffff0200000000010800") + bytes(46)
    pkts = [enhanced_packet_block(0, 0, 1_000_000 * k, eth, len(eth), b"", ">") for k in (1, 2)]
    src = tmp_path / "be.pcapng"
    src.write_bytes(shb + idb + b"".join(pkts))
    out = tmp_path / "be_annotated.pcapng"
    assert annotate(src, out, [fake("F1", [2])]) == 1
    assert frames(out) == frames(src)
    data = out.read_bytes()
    assert b"ccs-analyzer F1 PRE001" in data[len(shb) + len(idb) + len(pkts[0]):]
    if shutil.which("tshark"):
        assert set(tshark_comments(out)) == {2}
