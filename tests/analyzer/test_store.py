"""The columnar store (analyzer/store.py): rows that match the analysis, fixed schemas,
replacement keyed by SHA-256, invisible and cleaned leftovers, concurrent writers, DuckDB
queries, and ``analyze --store`` on the command line."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

pa = pytest.importorskip("pyarrow")
duckdb = pytest.importorskip("duckdb")

from ccs_analyzer.analyzer.analysis import analyze_capture  # noqa: E402
from ccs_analyzer.analyzer.cli import app  # noqa: E402
from ccs_analyzer.analyzer.store import (TABLES, TIMELINE_LAYERS, Store, capture_date,  # noqa: E402
                                         capture_tables, schema)
from ccs_analyzer.analyzer.timeline import timeline_frame  # noqa: E402
from ccs_analyzer.dissectors.oui import vendor  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "din_dc_session.pcapng"
CAPTURES = REPO / "samples" / "captures"
#: a clean session, a failed one, control pilot, two sessions, ISO 15118-20 over TLS, SLAC only
NAMES = ["din_dc_precharge_never_reaches.pcapng", "cp_state_e.pcapng", "two_sessions_cp.pcapng",
         "iso20_dc.pcapng", "slac_incomplete.pcapng", "iso2_ac_failed_response.pcapng"]
PATHS = [SAMPLE] + [CAPTURES / n for n in NAMES]
runner = CliRunner()


@pytest.fixture(scope="module")
def analyses():
    return {p.name: analyze_capture(p) for p in PATHS}


def _nan_to_none(v):
    return None if isinstance(v, float) and v != v else v


def check_rows(a, tables):
    """The store rows of ``a`` say what the analysis says."""
    sha = a.capture["sha256"]
    assert set(tables) == set(TABLES)
    for name in ("captures", "sessions", "findings"):
        assert tables[name].schema == schema(name)
    cap = tables["captures"].to_pylist()
    assert len(cap) == 1
    c = cap[0]
    assert (c["sha256"], c["file"], c["size"], c["frames"]) == (
        sha, a.capture["file"], a.capture["size"], a.capture["frames"])
    assert (c["verdict"], c["conformance"], c["score"], c["sessions"]) == (
        a.verdict, a.conformance, a.score, len(a.sessions))
    assert c["errors"] == sum(f.severity == "error" for f in a.findings)
    assert c["first_time"] == a.capture["first_time"] and c["analyzed_at"].tzinfo is not None

    by_id = {f.id: f for f in a.findings}
    sessions = tables["sessions"].to_pylist()
    assert [s["session"] for s in sessions] == [s.id for s in a.sessions]
    for row in sessions:
        summ = a.summaries[row["session"]]
        assert row["sha256"] == sha
        for k in ("protocol", "outcome", "phase_reached", "goal", "verdict", "conformance", "score",
                  "EVCCID", "EVSEID", "ev_mac", "evse_mac", "energy_wh", "start", "end", "basic",
                  "explanation", "no_cause_visible"):
            assert row[k] == summ.get(k), k
        assert row["stop_kind"] == (summ.get("stop_reason") or {}).get("kind")
        assert row["ev_vendor"] == vendor(summ.get("ev_mac"))
        cause = by_id.get(summ.get("root_cause"))
        assert row["root_cause_rule"] == (cause.rule if cause else None)
        assert row["root_cause_culprit"] == (cause.culprit if cause else None)
        assert row["findings"] == sum(f.session == row["session"] for f in a.findings)

    findings = tables["findings"].to_pylist()
    assert [(f["id"], f["rule"], f["session"], f["frames"], f["severity"], f["caused_by"])
            for f in findings] == [(f.id, f.rule, f.session, list(f.frames), f.severity, f.caused_by)
                                   for f in a.findings]
    for row, f in zip(findings, a.findings):
        assert row["first_frame"] == (min(f.frames) if f.frames else None)
        assert row["failure_modes"] == list(f.failure_modes)
        if isinstance(f.measured, (int, float)) and not isinstance(f.measured, bool):
            assert float(row["measured"]) == pytest.approx(f.measured)
        if isinstance(f.limit, str):
            assert row["limit"] == f.limit

    tl = tables["timeline"]
    df = timeline_frame(a.sessions, a.capture_events)
    df = df[df["layer"].isin(TIMELINE_LAYERS)]
    assert tl.column("frame").to_pylist() == df["frame"].tolist()
    assert tl.column("name").to_pylist() == df["name"].tolist()
    assert set(tl.column("sha256").to_pylist()) <= {sha}
    assert [n for n in tl.column_names if n != "sha256"] == [
        c for c in df.columns if c in tl.column_names]
    for name in tl.column_names:
        if name.endswith(("_V", "_A", "_W", "_Wh", "_pct", "_s")):
            assert tl.schema.field(name).type == pa.float64(), name
    for name in ("EVSEPresentVoltage_V", "CPState", "ResponseCode"):
        if name in tl.column_names:
            assert [_nan_to_none(v) for v in tl.column(name).to_pylist()] == \
                   [_nan_to_none(v) for v in df[name].tolist()]


def test_rows_match_the_analysis(analyses):
    for name, a in analyses.items():
        check_rows(a, capture_tables(a))
    cp = capture_tables(analyses["cp_state_e.pcapng"])["timeline"]
    assert cp.schema.field("CPState").type == pa.string()
    assert len(capture_tables(analyses["two_sessions_cp.pcapng"])["sessions"]) == 2


def test_fixed_schemas_do_not_depend_on_the_values(analyses):
    for name in ("captures", "sessions", "findings"):
        schemas = {capture_tables(a)[name].schema for a in analyses.values()}
        assert schemas == {schema(name)}
    base = schema("timeline").names
    for a in analyses.values():
        assert capture_tables(a)["timeline"].schema.names[:len(base)] == base


def test_capture_date():
    assert capture_date(None) == "unknown"
    assert capture_date(1767225601.0) == "2026-01-01"
    assert capture_date(86399.9) == "1970-01-01"


def test_reput_replaces_never_duplicates(tmp_path, analyses):
    a = analyses[SAMPLE.name]
    b = analyses["din_dc_precharge_never_reaches.pcapng"]
    st = Store(tmp_path / "store")
    st.put_analysis(a)
    st.put_analysis(b)
    st.put_analysis(a)
    assert st.captures() == sorted([a.capture["sha256"], b.capture["sha256"]])
    n = st.query("SELECT count(*) AS n FROM findings WHERE sha256 = ?", [b.capture["sha256"]])
    st.put_analysis(b)
    assert st.query("SELECT count(*) AS n FROM findings WHERE sha256 = ?",
                    [b.capture["sha256"]])["n"][0] == n["n"][0] == len(b.findings)
    # the same capture under another date (e.g. a fixed clock): moved, not copied
    sha = a.capture["sha256"]
    st.put(sha, "2020-02-02", capture_tables(a))
    assert len(list((tmp_path / "store").glob(f"*/sha256={sha}"))) == 1
    assert (tmp_path / "store" / "date=2020-02-02" / f"sha256={sha}" / "captures.parquet").is_file()
    got = st.query("SELECT date, count(*) AS n FROM captures WHERE sha256 = ? GROUP BY date", [sha])
    assert got.to_dict("records") == [{"date": "2020-02-02", "n": 1}]
    assert not any((tmp_path / "store" / ".tmp").iterdir())
    assert st.remove(sha) and st.captures() == [b.capture["sha256"]]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_tmp_leftovers_are_invisible_and_cleaned(tmp_path, analyses):
    a = analyses[SAMPLE.name]
    root = tmp_path / "store"
    st = Store(root)
    final = st.put_analysis(a)
    sha = a.capture["sha256"]
    # a writer killed after staging its files, and one whose name says nothing
    dead = root / ".tmp" / f"{socket.gethostname()}.{_dead_pid()}.0123abcd" / f"sha256={sha}"
    odd = root / ".tmp" / "leftover" / f"sha256={sha}"
    for d in (dead, odd):
        shutil.copytree(final, d)
    n_sessions = len(a.sessions)
    for pattern in ("*/*/sessions.parquet", "date=*/sha256=*/sessions.parquet"):
        got = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/{pattern}', "
                         "hive_partitioning=true, union_by_name=true)").fetchall()[0][0]
        assert got == n_sessions
    assert st.captures() == [sha]
    assert st.query("SELECT count(*) AS n FROM sessions")["n"][0] == n_sessions
    # the next write removes the dead writer's entry; a recent unknown one stays until stale
    st.put_analysis(analyses["din_dc_precharge_never_reaches.pcapng"])
    assert not dead.parent.exists() and odd.parent.exists()
    os.utime(odd.parent, (1_000_000_000, 1_000_000_000))
    assert st.clean() == 1 and not odd.parent.exists()


def _put_many(args):
    store, paths = args
    st = Store(store)
    for p in paths:
        st.put_analysis(analyze_capture(p))
    return os.getpid()


def test_concurrent_writers(tmp_path):
    """Four processes writing the same captures at once leave each capture exactly once."""
    paths = [SAMPLE, CAPTURES / NAMES[0], CAPTURES / NAMES[4]]
    store = str(tmp_path / "store")
    work = [(store, paths * 3)] * 4
    with ProcessPoolExecutor(max_workers=4) as ex:
        list(ex.map(_put_many, work))
    st = Store(store)
    assert len(st.captures()) == len(set(st.captures())) == 3
    assert st.query("SELECT count(*) AS n FROM captures")["n"][0] == 3
    assert not any((tmp_path / "store" / ".tmp").iterdir())


def test_put_checks_its_arguments(tmp_path, analyses):
    st = Store(tmp_path / "s")
    t = capture_tables(analyses[SAMPLE.name])
    with pytest.raises(ValueError):
        st.put("../../etc", "2026-01-01", t)
    with pytest.raises(ValueError):
        st.put("ab" * 32, "yesterday", t)
    with pytest.raises(ValueError):
        st.put("ab" * 32, "2026-01-01", {"other": t["captures"]})


def test_empty_store_has_empty_views(tmp_path):
    st = Store(tmp_path / "nothing")
    assert st.captures() == []
    for name in TABLES:
        df = st.table(name)
        assert len(df) == 0 and set(schema(name).names) <= set(df.columns)
    assert list(st.query("SELECT * FROM sessions").columns)[-1] == "date"


def test_duckdb_failure_rate_by_phase(tmp_path, analyses):
    st = Store(tmp_path / "store")
    for a in analyses.values():
        st.put_analysis(a)
    got = st.query("""
        SELECT phase_reached, count(*) AS sessions,
               count(*) FILTER (WHERE goal = 'not achieved') AS failed,
               avg(CASE WHEN goal = 'not achieved' THEN 1.0 ELSE 0.0 END) AS failure_rate
        FROM sessions GROUP BY phase_reached ORDER BY phase_reached""")
    expect: dict[str, list[int]] = {}
    for a in analyses.values():
        for s in a.summaries.values():
            e = expect.setdefault(s["phase_reached"], [0, 0])
            e[0] += 1
            e[1] += s["goal"] == "not achieved"
    assert {r["phase_reached"]: [r["sessions"], r["failed"]] for r in got.to_dict("records")} == expect
    for r in got.to_dict("records"):
        assert r["failure_rate"] == pytest.approx(r["failed"] / r["sessions"])
    # joins: findings of failed sessions by rule, timeline rows by message
    rules = st.query("""
        SELECT f.rule, count(*) AS n FROM findings f JOIN sessions s USING (sha256, session)
        WHERE s.goal = 'not achieved' GROUP BY f.rule ORDER BY n DESC""")
    assert "PRE001" in set(rules["rule"])
    loops = st.query("SELECT count(*) AS n FROM timeline WHERE name = 'CurrentDemandRes' "
                     "AND EVSEPresentVoltage_V > 0")
    assert loops["n"][0] > 0


def test_corpus_rows(corpus, tmp_path):
    caps = sorted((p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng")),
                  key=lambda p: p.stat().st_size)[:6]
    st = Store(tmp_path / "store")
    for p in caps:
        a = analyze_capture(p)
        check_rows(a, capture_tables(a))
        st.put_analysis(a)
    assert len(st.captures()) == len(caps)
    got = st.query("SELECT c.file, count(s.session) AS n FROM captures c LEFT JOIN sessions s "
                   "USING (sha256) GROUP BY c.file")
    assert set(got["file"]) == {p.name for p in caps}


# ---------------------------------------------------------------------------- CLI
def test_cli_analyze_into_store(tmp_path):
    caps = tmp_path / "caps"
    caps.mkdir()
    for p in PATHS[:3]:
        shutil.copy(p, caps / p.name)
    (caps / "junk.pcap").write_bytes(b"not a capture at all")
    store = tmp_path / "store"
    for jobs in ("1", "2"):
        r = runner.invoke(app, ["analyze", str(caps), "-o", str(tmp_path / "out"), "--store",
                                str(store), "-j", jobs, "--no-progress"])
        assert r.exit_code == 2, r.output  # the junk file
        assert "junk.pcap" in "".join(r.stderr.split())  # rich wraps long paths
        st = Store(store)
        assert len(st.captures()) == 3
        assert st.query("SELECT count(*) AS n FROM captures")["n"][0] == 3
        assert set(st.query("SELECT file FROM captures")["file"]) == {p.name for p in PATHS[:3]}
    assert (tmp_path / "out" / "din_dc_session" / "report.json").is_file()


def test_cli_store_without_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    r = runner.invoke(app, ["analyze", str(SAMPLE), "-o", str(tmp_path / "o"), "--store",
                            str(tmp_path / "s")])
    assert r.exit_code == 2
    said = " ".join(r.stderr.split())
    assert "pip install 'ccs-analyzer[fleet]'" in said and "Traceback" not in r.output
    assert not (tmp_path / "s").exists()
    monkeypatch.setitem(sys.modules, "distributed", None)
    r = runner.invoke(app, ["analyze", str(SAMPLE), "-o", str(tmp_path / "o"), "--engine", "dask"])
    assert r.exit_code == 2 and "distributed" in r.stderr


def test_cli_engine_options_checked(tmp_path):
    r = runner.invoke(app, ["analyze", str(SAMPLE), "-o", str(tmp_path / "o"), "--engine", "spark"])
    assert r.exit_code == 2 and "--engine" in r.stderr
    r = runner.invoke(app, ["analyze", str(SAMPLE), "-o", str(tmp_path / "o"), "--scheduler",
                            "tcp://127.0.0.1:8786"])
    assert r.exit_code == 2 and "--engine dask" in r.stderr


def test_analyze_without_store_imports_no_fleet_dependency(tmp_path):
    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from ccs_analyzer.analyzer.cli import app\n"
            f"r = CliRunner().invoke(app, ['analyze', {str(SAMPLE)!r}, '-o', {str(tmp_path / 'o')!r}])\n"
            "assert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in ('duckdb', 'dask', 'distributed') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
