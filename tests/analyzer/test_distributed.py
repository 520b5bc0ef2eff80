"""The Dask engine (analyzer/distributed.py): a folder analysed on a LocalCluster of two
worker processes into a store, one worker killed during the run: every capture is in the
store exactly once, with the findings of a single-process run."""
from __future__ import annotations

import logging
import os
import shutil
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("pyarrow")
pytest.importorskip("duckdb")
distributed = pytest.importorskip("distributed")

from ccs_analyzer.analyzer.analysis import analyze_capture  # noqa: E402
from ccs_analyzer.analyzer.cli import app  # noqa: E402
from ccs_analyzer.analyzer.distributed import Job, largest_first, run_dask, run_local  # noqa: E402
from ccs_analyzer.analyzer.store import Store  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "samples" / "captures"
NAMES = ["din_dc_precharge_never_reaches.pcapng", "din_dc_evse_stops.pcapng", "cp_state_e.pcapng",
         "two_sessions_cp.pcapng", "iso20_dc.pcapng", "slac_incomplete.pcapng",
         "iso2_ac_failed_response.pcapng", "iso2_dc_pause_cp.pcapng",
         "din_dc_no_current_ev_gives_up.pcapng", "iso2_ac_pnc.pcapng"]


def _folder(tmp_path: Path, names=NAMES) -> list[Path]:
    caps = tmp_path / "caps"
    caps.mkdir()
    for n in names:
        shutil.copy(CAPTURES / n, caps / n)
    return sorted(caps.iterdir())


def _expected(paths):
    """Per capture file: its sessions and its findings (session, rule, frames), from a
    single-process analysis."""
    sessions, findings = {}, set()
    for p in paths:
        a = analyze_capture(p)
        sessions[p.name] = len(a.sessions)
        findings |= {(p.name, f.session, f.rule, tuple(f.frames)) for f in a.findings}
    return sessions, findings


def _stored(store: Store):
    sessions = dict(store.query(
        "SELECT c.file, count(s.session) AS n FROM captures c LEFT JOIN sessions s USING (sha256) "
        "GROUP BY c.file").itertuples(index=False, name=None))
    rows = store.query("SELECT c.file, f.session, f.rule, f.frames FROM findings f "
                       "JOIN captures c USING (sha256)")
    findings = {(file, session, rule, tuple(int(x) for x in frames))
                for file, session, rule, frames in rows.itertuples(index=False, name=None)}
    return sessions, findings


def test_worker_killed_during_the_run(tmp_path):
    paths = _folder(tmp_path)
    store_dir = tmp_path / "store"
    jobs = [Job(str(p), str(tmp_path / "out" / p.stem), store=str(store_dir)) for p in paths]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        killed = []

        def kill_a_busy_worker(result):
            if killed:
                return
            busy = [w for w, keys in client.processing().items() if keys and w in pids]
            victim = busy[0] if busy else next(iter(pids))
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

        results = run_dask(jobs, scheduler=cluster.scheduler_address, on_result=kill_a_busy_worker)
    assert killed
    assert len(results) == len(jobs)
    assert not [r for r in results if "error" in r]
    assert {os.path.basename(r["capture"]) for r in results} == {p.name for p in paths}

    store = Store(store_dir)
    held = store.captures()
    assert len(held) == len(set(held)) == len(paths)
    assert store.query("SELECT count(*) AS n FROM captures")["n"][0] == len(paths)
    assert _stored(store) == _expected(paths)


def test_cli_engine_dask_equals_local(tmp_path):
    paths = _folder(tmp_path, NAMES[:3])
    runner = CliRunner()
    out = {}
    for engine in ("local", "dask"):
        store = tmp_path / f"store-{engine}"
        r = runner.invoke(app, ["analyze", str(tmp_path / "caps"), "-o", str(tmp_path / engine),
                                "--store", str(store), "--engine", engine, "-j", "1",
                                "--no-progress"])
        assert r.exit_code == 0, r.output
        out[engine] = r.stdout.replace(str(tmp_path / engine), "OUT")
        assert len(Store(store).captures()) == len(paths)
    assert out["dask"] == out["local"]
    assert _stored(Store(tmp_path / "store-dask")) == _stored(Store(tmp_path / "store-local"))


def test_largest_first_and_local_engine(tmp_path):
    paths = _folder(tmp_path, NAMES[:4])
    jobs = [Job(str(p), str(tmp_path / "out" / p.stem)) for p in paths]
    sizes = [j.size() for j in largest_first(jobs)]
    assert sizes == sorted(sizes, reverse=True)
    seen = []
    results = run_local(jobs, 2, on_result=seen.append)
    assert len(results) == len(seen) == len(jobs) and all("error" not in r for r in results)
