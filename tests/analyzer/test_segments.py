"""A long capture streamed in segments (analyzer/segments.py), its judged sessions spooled to
disk (analyzer/spool.py), its report paged per session and its timeline stored in batches.

The captures here are samples joined end to end with quiet gaps between them, as at a
charger where one car leaves and the next arrives: analysed in segments, every session must
come out as it does when its sample is analysed alone.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.analyzer.segments import SegmentCutter, cutter_for
from ccs_analyzer.analyzer.sessions import SessionBuilder
from ccs_analyzer.analyzer.spool import SessionSpool
from ccs_analyzer.dissectors.capture import CaptureReader
from ccs_analyzer.dissectors.events import EV_TO_EVSE, EVSE_TO_EV, Event
from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter
from ccs_analyzer.reports.json_report import report_dict

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "captures"
PARTS = ["din_dc_cablecheck_invalid.pcapng", "iso20_dc.pcapng", "din_dc_evse_stops.pcapng",
         "iso2_dc_cablecheck_unanswered.pcapng", "iso2_dc_ev_stops_in_precharge.pcapng"]


def join(parts: list[Path], out: Path, gap_s: float) -> Path:
    """Write the frames of ``parts`` one capture after the other, each shifted to start
    ``gap_s`` after the previous one ended."""
    with open(out, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(1)
        t_end = None
        for p in parts:
            frames = list(CaptureReader(p))
            shift = 0.0 if t_end is None else t_end + gap_s - frames[0].time
            for fr in frames:
                assert fr.linktype == 1
                w.write(fr.time + shift, fr.data)
            t_end = frames[-1].time + shift
    return out


def digest(summary: dict, findings: list) -> tuple:
    """What must not change when a session is analysed inside a longer capture (SES009, a
    SessionID issued again, is about the sessions before it: the simulator's SECC gives
    every session the same ID)."""
    mine = [f for f in findings if f.session == summary["id"] and f.rule != "SES009"]
    root = next((f.rule for f in mine if f.id == summary.get("root_cause")), None)
    return (summary["protocol"], summary["outcome"], summary["verdict"], summary["goal"],
            summary["phase_reached"], root, sorted(f.rule for f in mine))


@pytest.fixture(scope="module")
def parts() -> list[Path]:
    paths = [SAMPLES / n for n in PARTS]
    missing = [p.name for p in paths if not p.is_file()]
    assert not missing, missing
    return paths


@pytest.fixture(scope="module")
def joined(parts, tmp_path_factory) -> Path:
    return join(parts, tmp_path_factory.mktemp("seg") / "joined.pcapng", gap_s=120.0)


def test_every_session_as_when_alone(parts, joined):
    alone = []
    for p in parts:
        a = analyze_capture(p, segments="never")
        alone += [digest(m, a.findings) for m in a.summaries.values()]
    a = analyze_capture(joined, segments="always")
    assert isinstance(a.sessions, SessionSpool)
    assert len(a.sessions) == len(alone) == len(a.summaries)
    got = [digest(m, a.findings) for m in a.summaries.values()]
    assert got == alone
    # the SessionID issued in earlier segments is still known (ctx.carry, rules/session/common.py)
    reused = {f.session for f in a.findings if f.rule == "SES009"}
    assert reused == set(list(a.summaries)[1:])
    # ids in session order, findings numbered in time order across the segments
    assert list(a.summaries) == [f"S{i}" for i in range(1, len(alone) + 1)]
    assert [f.id for f in a.findings] == [f"F{i}" for i in range(1, len(a.findings) + 1)]
    times = [f.time for f in a.findings if f.time is not None]
    assert times == sorted(times)
    ids = {f.id for f in a.findings}
    for f in a.findings:
        assert f.caused_by is None or f.caused_by in ids
    for m in a.summaries.values():
        assert m["root_cause"] is None or m["root_cause"] in ids
        assert set(m["cause_chain"]) <= ids
    a.close()


@pytest.fixture(autouse=True)
def _judges_in_tests(monkeypatch):
    """Forked judges even in a pytest-xdist worker (which runs a thread of its own, so that
    analyzer/streaming.py ``fork_allowed`` would judge in process): the tests here are about
    the forked judges."""
    from ccs_analyzer.analyzer import streaming
    monkeypatch.setattr(streaming, "fork_allowed",
                        lambda: hasattr(os, "fork") and streaming.helper_allowed())


def _die(*args):
    os._exit(3)                          # a judge that dies mid-segment


@pytest.mark.parametrize("helper", ["judges", "in-process", "judges-die", "one-judge-dies"])
def test_segmented_report_equals_whole_report(joined, helper, monkeypatch, tmp_path):
    """The parts are independent: streamed or whole, judged in forked judges or here,
    report.json is the same (a judge that dies, and the judges after it that wait for its
    word, leave their segments to the main process)."""
    from ccs_analyzer.analyzer import streaming

    whole = report_dict(analyze_capture(joined, segments="never"))
    if helper == "judges-die":
        monkeypatch.setattr(streaming, "_judge_forked", _die)
    elif helper == "one-judge-dies":
        real = streaming._judge_forked

        def second_dies(prev, word, state, result, batch, *rest):
            if any(seg.tag == "1." for seg in batch):
                os._exit(9)
            return real(prev, word, state, result, batch, *rest)
        monkeypatch.setattr(streaming, "_judge_forked", second_dies)
    if helper != "in-process":           # a judge per segment, or one for them all
        monkeypatch.setattr(streaming, "JUDGE_BATCH_EVENTS", 0 if helper != "judges" else 10**6)
    forks = []
    real_fork = streaming.Segments._fork_judge
    monkeypatch.setattr(streaming.Segments, "_fork_judge",
                        lambda self, batch: forks.append(len(batch)) or real_fork(self, batch))
    streamed = analyze_capture(joined, segments="always", judge_worker=helper != "in-process")
    if helper == "in-process":
        assert not forks
    else:                                # a judge per segment, or one for the five
        assert forks == ([1] * len(PARTS) if helper != "judges" else [len(PARTS)])
    rep = report_dict(streamed)
    assert json.dumps(rep, sort_keys=True, default=str) == json.dumps(whole, sort_keys=True, default=str)
    # report.json written from disk, findings one segment at a time: the same document
    from ccs_analyzer.reports.json_report import write_json_report
    out = write_json_report(streamed, tmp_path)
    with open(out, encoding="utf-8") as f:
        assert json.dumps(json.load(f), sort_keys=True) == json.dumps(whole, sort_keys=True, default=str)
    # the spool reads the sessions back, with their events, one segment at a time
    back = list(streamed.sessions)
    assert [s.id for s in back] == list(streamed.summaries)
    assert all(s.events and s.released for s in back)
    assert streamed.sessions[-1].id == back[-1].id
    streamed.close()
    assert len(streamed.sessions) == 0


def test_small_captures_are_whole_by_default(joined):
    a = analyze_capture(joined)
    assert isinstance(a.sessions, list)
    with pytest.raises(ValueError):
        cutter_for("sometimes", 1)


def _ev(frame, t, layer="v2gtp", name="CurrentDemandReq", conn=1, direction=EV_TO_EVSE, message=None):
    return Event(frame, t, layer, name, direction=direction, conn=conn, message=message)


def test_cut_needs_a_quiet_gap_and_closed_connections():
    b = SessionBuilder()
    c = SegmentCutter()
    for i, ev in enumerate([_ev(1, 0.0, "tcp", "SYN"), _ev(2, 1.0)]):
        b.add(ev)
        c.note(ev)
    nxt = _ev(3, 30.0, "tcp", "SYN", conn=2)
    assert not c.cut_before(nxt, b)             # connection 1 open and silent for < 60 s
    assert not c.cut_before(_ev(3, 50.0, "tcp", "SYN", conn=2), b)
    for ev in (_ev(3, 2.0, "tcp", "FIN"), _ev(4, 2.1, "tcp", "FIN", direction=EVSE_TO_EV)):
        b.add(ev)
        c.note(ev)
    # closed, but a session that got past SLAC and did not end needs 60 s
    assert not c.cut_before(_ev(5, 30.0, "tcp", "SYN", conn=2), b)
    assert c.cut_before(_ev(5, 70.0, "tcp", "SYN", conn=2), b)
    # no cut before what is not session activity (a pilot reading, a vendor MME)
    assert not c.cut_before(Event(5, 70.0, "slac", "VS_CP_STATE.IND"), b)


def test_paused_session_holds_the_cut_until_the_segment_is_long():
    b = SessionBuilder()
    c = SegmentCutter(max_events=10)
    for ev in (_ev(1, 0.0, "tcp", "RST"),):
        b.add(ev)
        c.note(ev)
    b.sessions[0].paused = True
    nxt = _ev(2, 100.0, "tcp", "SYN", conn=2)
    assert not c.cut_before(nxt, b)
    c.events = 10
    assert c.cut_before(nxt, b)


def test_paged_html_and_timeline_batches(joined, tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("duckdb")
    from ccs_analyzer.analyzer import store as store_mod
    from ccs_analyzer.reports import html_report
    from ccs_analyzer.reports.html_report import write_html_report

    monkeypatch.setattr(html_report, "PAGED_OVER_SESSIONS", 1)
    a = analyze_capture(joined, segments="always")
    write_html_report(a, tmp_path / "r2", workers=2)       # forked page writers …
    write_html_report(a, tmp_path / "r")                   # … write what one process writes
    for p in (tmp_path / "r" / "sessions").iterdir():
        strip = lambda t: re.sub(r"Report generated [^<]*? UTC", "", t)  # noqa: E731
        assert strip(p.read_text()) == strip((tmp_path / "r2" / "sessions" / p.name).read_text())
    index = (tmp_path / "r" / "report.html").read_text()
    pages = sorted(p.name for p in (tmp_path / "r" / "sessions").iterdir())
    assert pages == sorted(f"{sid}.html" for sid in a.summaries)
    for sid in a.summaries:
        assert f'href="sessions/{sid}.html"' in index
    f = next(f for f in a.findings if f.session is not None)
    page = (tmp_path / "r" / "sessions" / f"{f.session}.html").read_text()
    assert f'id="{f.id}"' in page and "../report.html" in page
    assert f'id="{f.id}"' not in index              # session findings live on their page

    monkeypatch.setattr(store_mod, "TIMELINE_BATCH_ROWS", 100)
    st = store_mod.Store(tmp_path / "store")
    st.put_analysis(a)
    whole = analyze_capture(joined, segments="never")
    expect = store_mod.capture_tables(whole)["timeline"]
    assert isinstance(expect, pa.Table)
    got = st.table("timeline")
    assert len(got) == expect.num_rows > 100
    assert set(expect.column_names) <= set(got.columns)
    assert list(got["frame"]) == expect.column("frame").to_pylist()
    a.close()


def _tcp_syn_frame(dport: int) -> bytes:
    """Ethernet II + IPv6 + a TCP SYN from fe80::1 port 50000 to fe80::2 port ``dport``."""
    import struct
    src, dst = bytes.fromhex("fe80" + "00" * 13 + "01"), bytes.fromhex("fe80" + "00" * 13 + "02")
    tcp = struct.pack("!HHIIBBHHH", 50000, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    ip6 = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + src + dst
    eth = bytes.fromhex("020000000002" "020000000001" "86dd")
    return eth + ip6 + tcp


def test_a_lone_connection_after_the_last_session(parts, tmp_path):
    """After the last session, a quiet gap and a lone SYN to port 80: its own last segment
    (a session that never got past TCP), judged as the whole analysis judges it, with the
    helper or without."""
    from ccs_analyzer.dissectors.pcapng_writer import PcapngWriter
    joined = join(parts[:2], tmp_path / "two.pcapng", gap_s=120.0)
    frames = list(CaptureReader(joined))
    out = tmp_path / "tail.pcapng"
    with open(out, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(1)
        for fr in frames:
            w.write(fr.time, fr.data)
        w.write(frames[-1].time + 300.0, _tcp_syn_frame(80))
    for helper in (True, False):
        a = analyze_capture(out, segments="always", judge_worker=helper)
        whole = analyze_capture(out, segments="never")
        assert list(a.summaries) == list(whole.summaries)
        assert [f.rule for f in a.findings] == [f.rule for f in whole.findings]
        assert a.capture["frames"] == len(frames) + 1
        a.close()


def test_cli_analyze_of_a_streamed_capture(joined, tmp_path, monkeypatch):
    """`ccs-analyzer analyze` on a capture that is streamed (its spool deleted at the end):
    report.json, the paged report.html, the store and the command's summary."""
    pytest.importorskip("pyarrow")
    from typer.testing import CliRunner

    from ccs_analyzer.analyzer import segments
    from ccs_analyzer.analyzer.cli import analyze_to_dir, app
    from ccs_analyzer.reports import html_report

    monkeypatch.setattr(segments, "WHOLE_BELOW_BYTES", 0)
    monkeypatch.setattr(html_report, "PAGED_OVER_SESSIONS", 1)
    res = analyze_to_dir(str(joined), str(tmp_path / "r"), None, store=str(tmp_path / "st"))
    assert "error" not in res and len(res["sessions"]) == len(PARTS)
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [s["id"] for s in rep["sessions"]] == [s[0] for s in res["sessions"]]
    assert sum(res["findings"].values()) == len(rep["findings"]) == sum(rep["counts"].values())
    assert len(list((tmp_path / "r" / "sessions").iterdir())) == len(PARTS)
    out = CliRunner().invoke(app, ["analyze", str(joined), "-o", str(tmp_path / "r2")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "r2" / "report.json").is_file()


def test_a_killed_runs_spool_is_removed_by_the_next(tmp_path):
    import socket
    import subprocess
    import sys

    from ccs_analyzer.analyzer.spool import SPOOL_PREFIX
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"{SPOOL_PREFIX}{socket.gethostname()}.{gone}.abc123"
    alive = tmp_path / f"{SPOOL_PREFIX}{socket.gethostname()}.{os.getpid()}.def456"
    other = tmp_path / f"{SPOOL_PREFIX}otherhost.{gone}.ghi789"
    for d in (stale, alive, other):
        d.mkdir()
        (d / "segment000000.pickle").write_bytes(b"x")
    sp = SessionSpool(str(tmp_path))
    assert not stale.exists() and alive.exists() and other.exists()
    sp.close()


def test_session_pages_rendered_by_the_judges(joined, tmp_path, monkeypatch):
    """The session pages the forked judges render while the capture is read, finished with
    the capture-wide facts at the end (reports/html_report.py SessionPages), are the pages
    rendered from the spool afterwards, byte for byte; a capture that turns out to be one
    page keeps no session pages."""
    from ccs_analyzer.analyzer import segments
    from ccs_analyzer.analyzer.cli import analyze_to_dir
    from ccs_analyzer.reports import html_report

    monkeypatch.setattr(segments, "WHOLE_BELOW_BYTES", 0)
    monkeypatch.setattr(html_report, "PAGED_OVER_SESSIONS", 1)
    early = analyze_to_dir(str(joined), str(tmp_path / "early"), None)
    late = analyze_to_dir(str(joined), str(tmp_path / "late"), None, judge_helper=False)
    assert early["sessions"] == late["sessions"]
    strip = lambda t: re.sub(r"Report generated [^<]*? UTC", "", t)  # noqa: E731
    pages = sorted(p.name for p in (tmp_path / "late" / "sessions").iterdir())
    assert pages == sorted(p.name for p in (tmp_path / "early" / "sessions").iterdir())
    assert len(pages) == len(PARTS)
    for name in pages:
        got = (tmp_path / "early" / "sessions" / name).read_text()
        assert "<!--ccs:" not in got
        assert strip(got) == strip((tmp_path / "late" / "sessions" / name).read_text())
    monkeypatch.setattr(html_report, "PAGED_OVER_SESSIONS", 25)
    analyze_to_dir(str(joined), str(tmp_path / "one"), None)
    assert not (tmp_path / "one" / "sessions").exists()
    assert (tmp_path / "one" / "report.html").is_file()


def test_no_forked_judges_while_another_thread_runs(monkeypatch):
    """A fork copies only the forking thread: with another thread alive (a progress bar, the
    report browser's server) segments are judged in process."""
    import threading

    from ccs_analyzer.analyzer import streaming

    monkeypatch.undo()                   # the real fork_allowed, not the fixture's
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert not streaming.fork_allowed()
    finally:
        stop.set()
        t.join()


def test_sessions_not_kept_when_only_their_pages_read_them(joined, tmp_path, monkeypatch):
    """keep_sessions=False: once the report is sure to be paged, a segment's sessions are not
    written to the spool (their pages are rendered by the judges); the summaries and the
    findings are whole, and reading the sessions says why they are not there."""
    from ccs_analyzer.analyzer.spool import SessionsNotKept
    from ccs_analyzer.reports import html_report

    monkeypatch.setattr(html_report, "PAGED_OVER_SESSIONS", 2)
    pages = html_report.SessionPages(tmp_path / "r")
    a = analyze_capture(joined, segments="always", pages=pages, keep_sessions=False)
    whole = analyze_capture(joined, segments="never")
    assert a.pages_written and a.sessions.dropped
    assert list(a.summaries) == list(whole.summaries)
    assert [f.rule for f in a.findings] == [f.rule for f in whole.findings]
    with pytest.raises(SessionsNotKept):
        list(a.sessions)
    html_report.write_html_report(a, tmp_path / "r", pages=pages)
    assert len(list((tmp_path / "r" / "sessions").iterdir())) == len(PARTS)
    a.close()


def test_sha256_beside_the_dissection(joined):
    """A streamed capture's SHA-256 comes from a forked child (analyzer/streaming.py
    background_sha256): the digest sha256_of gives; a child that fails leaves it to this
    process."""
    from ccs_analyzer.analyzer.analysis import sha256_of
    from ccs_analyzer.analyzer.streaming import background_sha256

    assert background_sha256(str(joined), sha256_of)() == sha256_of(str(joined))
    calls = []

    def flaky(path):
        calls.append(os.getpid())
        if os.getpid() != me:
            raise OSError("the child cannot read it")
        return sha256_of(path)
    me = os.getpid()
    assert background_sha256(str(joined), flaky)() == sha256_of(str(joined))
    assert calls == [me]                 # (the child's call is in the child's memory)


def test_run_beside_raises_here_when_the_child_fails(tmp_path):
    """run_beside (report.json written beside report.html): the child's work is done once;
    a child that fails leaves the work to this process, whose error is raised here."""
    from ccs_analyzer.analyzer.streaming import run_beside

    out = tmp_path / "done.txt"
    run_beside(lambda: out.write_text(str(os.getpid())))()
    assert out.read_text() != str(os.getpid())          # written by the child
    me = os.getpid()

    def fails_in_child():
        if os.getpid() != me:
            raise OSError("disk full in the child")
        raise OSError("disk full here too")
    with pytest.raises(OSError, match="here too"):
        run_beside(fails_in_child)()
