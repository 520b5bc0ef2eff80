#!/usr/bin/env python3
"""Benchmark: ``ccs-analyzer decode`` and ``analyze`` against ``tshark -V`` on the same file.

For each capture it prints frames, V2G messages, wall time and frames/s of ``decode`` and of
``analyze`` (each a fresh process, as a user runs it, startup included), their peak RSS (of
the largest process: analyze judges a streamed capture's segments in forked judges,
analyzer/streaming.py), the pure EXI decoding rate (messages/s over the capture's own
payloads, in process), and the time of ``tshark -r FILE -V > /dev/null`` with the ratio
analyze / tshark (tshark does not even decode EXI). Targets (issue 11): analyze ≤ 0.5 ×
tshark's time, peak RSS ≤ 200 MiB flat in file size, EXI ≥ 20,000 messages/s. Then the
per-stage profile of one in-process analyze without forked judges (read, link, TCP, TLS, V2GTP,
EXI, pipeline, sessions, rules, reports, other: :func:`stage_profile`).

Default inputs: the largest capture of ../shared/corpus, and a large multi-session capture
made by concatenating corpus captures end to end (editcap -t to shift each in time, mergecap
-a to append): see :func:`make_multi_session`.

With ``--big-gib G`` it also builds a capture of ≥ G GiB (the corpus repeated, shifted in
time) and prints analyze's time against ``tshark -V`` and its RSS (and its largest judge's)
at 10 / 50 / 100 % of the run.

Usage: python benchmarks/bench.py [--repeat N] [--multi-copies K] [--big-gib G] [CAPTURE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CCS_SHARED", REPO.parent / "shared")) / "corpus"


#: The environment of the measured runs: as a user's, with Python's bytecode cache allowed
#: (some sandboxes set PYTHONDONTWRITEBYTECODE, which makes every run recompile every module).
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_measured(cmd: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float, int]:
    """Run a command; return (wall seconds, peak RSS MiB of the child, exit status)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=BENCH_ENV)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.returncode != 0:
        print(f"   ! {' '.join(cmd[:3])} … exited {p.returncode}: {err.strip()[-300:]}", file=sys.stderr)
    return wall, ru.ru_maxrss / 1024.0, p.returncode


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def run_sampled(cmd: list[str], period_s: float = 0.2) -> tuple[float, list[tuple[float, float, float]]]:
    """Run a command, sampling the resident memory (``/proc/PID/status`` VmRSS) of it and of
    the largest of its child processes (analyze's forked judges, analyzer/streaming.py)
    every ``period_s``; return (wall seconds, [(seconds since start, RSS MiB of the
    command's process, RSS MiB of its largest child)])."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=BENCH_ENV)
    samples = []
    while p.poll() is None:
        main = _rss_kib(p.pid)
        kids = [_rss_kib(c) for c in _children(p.pid)]
        if main:
            samples.append((time.perf_counter() - t0, main / 1024.0, max(kids, default=0) / 1024.0))
        time.sleep(period_s)
    return time.perf_counter() - t0, samples


def rss_at(samples: list[tuple], wall: float, shares=(0.1, 0.5, 1.0), col: int = 1) -> dict[str, float]:
    """The peak RSS (MiB) reached by each share of the run's wall time (``"10%"`` …): analyze
    reads the capture front to back, so the share of time stands for the share of the file
    read (the reports at the end aside). ``col``: 1 the process itself, 2 its largest child."""
    out = {}
    for sh in shares:
        upto = [x[col] for x in samples if x[0] <= sh * wall + 1e-9]
        out[f"{int(sh * 100)}%"] = round(max(upto), 1) if upto else None
    return out


def make_big(out_dir: Path, gib: float) -> Path | None:
    """A capture of at least ``gib`` GiB: the multi-session capture's corpus concatenation
    repeated until the size is reached (:func:`make_multi_session`)."""
    one = make_multi_session(out_dir, 1)
    if one is None:
        return None
    copies = max(1, int(gib * 2**30 / one.stat().st_size) + 1)
    one.unlink()
    return make_multi_session(out_dir, copies)


def big_bench(capture: Path) -> dict:
    """analyze and tshark -V once each on a big capture, with analyze's RSS over the run."""
    out = Path(tempfile.mkdtemp(prefix="ccs-bench-big-"))
    wall, samples = run_sampled(cli() + ["analyze", str(capture), "-o", str(out / "r")])
    res = {"capture": capture.name, "size_MiB": round(capture.stat().st_size / 2**20, 1),
           "analyze_s": round(wall, 1), "analyze_rss_MiB": rss_at(samples, wall),
           "judge_rss_MiB": rss_at(samples, wall, col=2)}
    if shutil.which("tshark"):
        t, _, _ = run_measured(["tshark", "-r", str(capture), "-V"])
        res["tshark_V_s"] = round(t, 1)
        res["analyze_over_tshark"] = round(wall / t, 3)
    shutil.rmtree(out, ignore_errors=True)
    return res


def cli() -> list[str]:
    exe = shutil.which("ccs-analyzer")
    return [exe] if exe else [sys.executable, "-m", "ccs_analyzer.analyzer.cli"]


def exi_rate(capture: Path) -> tuple[int, float]:
    """(messages, messages/s) decoding every EXI payload of the capture in process."""
    from ccs_analyzer.dissectors import exi
    from ccs_analyzer.dissectors.pipeline import Dissector

    work = [(e.payload, e.namespace) for e in Dissector(capture).events()
            if e.layer == "v2gtp" and e.namespace and e.payload is not None and e.message is not None]
    if not work:
        return 0, 0.0
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for data, ns in work:
            exi.decode(data, ns)
        dt = time.perf_counter() - t0
        best = max(best, len(work) / dt)
    return len(work), best


#: Seconds between the end of one corpus capture and the start of the next in the built
#: captures: the time between two cars at a charger (unplug, drive off, the next one parks
#: and plugs in), more than V2G_SECC_Sequence_Timeout (60 s), so that analyze may let a
#: finished car go (analyzer/segments.py) even when its capture was cut mid-session.
GAP_S = 90.0


def make_multi_session(out_dir: Path, copies: int) -> Path | None:
    """Concatenate the corpus's V2G captures ``copies`` times, each shifted to start
    :data:`GAP_S` after the previous one ends (editcap -t, mergecap -a). None when the tools
    or the corpus are absent."""
    if not (shutil.which("editcap") and shutil.which("mergecap") and CORPUS.is_dir()):
        return None
    from ccs_analyzer.dissectors.capture import CaptureReader

    picks = [p for p in sorted(CORPUS.glob("*.pcap*")) if p.stat().st_size > 50_000]
    parts = []
    t_end = None
    for k in range(copies):
        for p in picks:
            frames = list(CaptureReader(p))
            first, last = frames[0].time, frames[-1].time
            shift = 0.0 if t_end is None else (t_end + GAP_S - first)
            q = out_dir / f"part{len(parts):04d}.pcapng"
            subprocess.run(["editcap", "-F", "pcapng", "-t", f"{shift:.6f}", str(p), str(q)], check=True,
                           capture_output=True)
            parts.append(q)
            t_end = last + shift
    merged = out_dir / f"multi_session_x{copies}.pcapng"
    subprocess.run(["mergecap", "-a", "-F", "pcapng", "-w", str(merged), *map(str, parts)], check=True,
                   capture_output=True)
    for q in parts:
        q.unlink()
    return merged


#: Stages of an ``analyze`` run, by the module a function lives in (the first match wins):
#: each function's own time (cProfile ``tottime``) counts for its stage, so the stages add up
#: to the whole run.
STAGES = (("read", ("dissectors/capture.py",)), ("link", ("dissectors/link.py", "dissectors/homeplug.py",
                                                            "dissectors/ip.py", "dissectors/sdp.py")),
          ("TCP", ("dissectors/tcp.py",)), ("TLS", ("dissectors/tls",  "dissectors/x509info.py")),
          ("V2GTP", ("dissectors/v2gtp.py", "dissectors/v2g.py", "dissectors/v2g_certificates.py")),
          ("EXI", ("dissectors/exi/",)), ("pipeline", ("dissectors/pipeline.py", "dissectors/events.py")),
          ("sessions", ("analyzer/sessions.py", "analyzer/physical.py")),
          ("rules", ("rules/", "analyzer/views/", "analyzer/engine.py", "analyzer/causality.py",
                     "analyzer/outcome.py", "analyzer/control_pilot.py", "analyzer/scoring.py")),
          ("reports", ("reports/",)))


def stage_profile(capture: Path) -> dict[str, float]:
    """Seconds per stage of one in-process ``analyze`` (analysis, report.json and report.html)
    of ``capture``: the run under cProfile, each function's own time given to its stage
    (:data:`STAGES`; a built-in's time to its callers' stages; library and interpreter time
    to "other"), then scaled to the run's wall
    time without the profiler (cProfile slows small functions more than big ones: the shares
    are indicative, the total is real)."""
    import cProfile
    import pstats

    from ccs_analyzer.analyzer.analysis import analyze_capture
    from ccs_analyzer.reports.html_report import write_html_report
    from ccs_analyzer.reports.json_report import write_json_report

    out = Path(tempfile.mkdtemp(prefix="ccs-bench-prof-"))

    def run():
        a = analyze_capture(capture, judge_worker=False)    # every stage in this process
        write_json_report(a, out)
        write_html_report(a, out)
        a.close()

    run()                                            # warm-up: imports, template cache
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    prof = cProfile.Profile()
    prof.runcall(run)
    stats = pstats.Stats(prof).stats
    by: dict[str, float] = {name: 0.0 for name, _ in STAGES}
    by["other"] = 0.0

    def stage_of(filename: str) -> str:
        f = filename.replace(os.sep, "/")
        return next((name for name, mods in STAGES if "ccs_analyzer" in f or str(REPO) in f
                     for m in mods if m in f), "other")

    for (filename, _, _), (_, _, tottime, _, callers) in stats.items():
        if filename == "~" and callers:
            # a built-in (dict.get, isinstance …): its time goes to its callers' stages
            w = sum(c[3] for c in callers.values()) or float(len(callers))
            for (cf, _, _), c in callers.items():
                by[stage_of(cf)] += tottime * ((c[3] / w) if w else 1.0 / len(callers))
            continue
        by[stage_of(filename)] += tottime
    total = sum(by.values()) or 1.0
    shutil.rmtree(out, ignore_errors=True)
    return {k: round(v / total * wall, 3) for k, v in by.items()}


def bench(capture: Path, repeat: int) -> dict:
    from ccs_analyzer.dissectors.capture import CaptureReader

    frames = sum(1 for _ in CaptureReader(capture))
    res = {"capture": capture.name, "size_MiB": round(capture.stat().st_size / 2**20, 2), "frames": frames}
    out = Path(tempfile.mkdtemp(prefix="ccs-bench-"))
    for name, cmd in (("decode", cli() + ["decode", "--no-progress", str(capture)]),
                      ("analyze", cli() + ["analyze", str(capture), "-o", str(out / "r")])):
        run_measured(cmd)                       # warm-up: bytecode and template caches
        runs = [run_measured(cmd) for _ in range(repeat)]
        wall = min(r[0] for r in runs)
        res[f"{name}_s"] = round(wall, 3)
        res[f"{name}_frames_per_s"] = round(frames / wall)
        res[f"{name}_peak_rss_MiB"] = round(max(r[1] for r in runs), 1)
    with open(out / "r" / "report.json") as f:
        rep = json.load(f)
    res["v2g_messages"] = rep["messages"].get("v2gtp", {}).get("ok", 0) + rep["messages"].get("v2gtp", {}).get("error", 0)
    res["analyze_v2g_messages_per_s"] = round(res["v2g_messages"] / res["analyze_s"])
    n, rate = exi_rate(capture)
    res["exi_messages"] = n
    res["exi_decode_messages_per_s"] = round(rate)
    if shutil.which("tshark"):
        run_measured(["tshark", "-r", str(capture), "-V"])      # warm-up (page cache)
        runs = [run_measured(["tshark", "-r", str(capture), "-V"]) for _ in range(repeat)]
        res["tshark_V_s"] = round(min(r[0] for r in runs), 3)
        res["analyze_over_tshark"] = round(res["analyze_s"] / res["tshark_V_s"], 3)
        res["decode_over_tshark"] = round(res["decode_s"] / res["tshark_V_s"], 3)
    shutil.rmtree(out, ignore_errors=True)
    res["stages_s"] = stage_profile(capture)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("captures", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3, help="runs per command (best is kept)")
    ap.add_argument("--multi-copies", type=int, default=4,
                    help="how many times the corpus is concatenated for the multi-session capture")
    ap.add_argument("--big-gib", type=float, default=0.0,
                    help="also build a capture of at least this many GiB (the corpus repeated) and "
                         "print analyze's time against tshark and its RSS at 10 / 50 / 100 %% of the run")
    a = ap.parse_args()
    caps = list(a.captures)
    tmp = None
    if not caps:
        if not CORPUS.is_dir():
            sys.exit("no capture given and ../shared/corpus is absent")
        caps.append(max(CORPUS.glob("*.pcap*"), key=lambda p: p.stat().st_size))
        tmp = Path(tempfile.mkdtemp(prefix="ccs-bench-multi-"))
        m = make_multi_session(tmp, a.multi_copies)
        if m:
            caps.append(m)
        else:
            print("(editcap/mergecap not found: multi-session capture skipped)", file=sys.stderr)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for c in caps:
        r = bench(c, a.repeat)
        print(json.dumps(r))
        print(f"{r['capture']}: {r['frames']} frames, {r['v2g_messages']} V2G messages, {r['size_MiB']} MiB\n"
              f"  decode   {r['decode_s']:7.3f} s  {r['decode_frames_per_s']:8d} frames/s  peak RSS {r['decode_peak_rss_MiB']} MiB\n"
              f"  analyze  {r['analyze_s']:7.3f} s  {r['analyze_frames_per_s']:8d} frames/s  "
              f"{r['analyze_v2g_messages_per_s']} V2G msg/s  peak RSS {r['analyze_peak_rss_MiB']} MiB\n"
              f"  EXI decode alone: {r['exi_decode_messages_per_s']} messages/s over {r['exi_messages']} messages"
              + (f"\n  tshark -V {r['tshark_V_s']:7.3f} s → analyze/tshark = {r['analyze_over_tshark']}, "
                 f"decode/tshark = {r['decode_over_tshark']}" if "tshark_V_s" in r else "")
              + "\n  stages (in process, s): " + ", ".join(f"{k} {v}" for k, v in r["stages_s"].items()))
    if a.big_gib > 0:
        big_dir = Path(tempfile.mkdtemp(prefix="ccs-bench-big-"))
        big = make_big(big_dir, a.big_gib)
        if big is not None:
            r = big_bench(big)
            print(json.dumps(r))
            print(f"{r['capture']}: {r['size_MiB']} MiB — analyze {r['analyze_s']} s"
                  + (f", tshark -V {r['tshark_V_s']} s → {r['analyze_over_tshark']}" if "tshark_V_s" in r else "")
                  + f"; analyze RSS (MiB) at 10/50/100 % of the run: {r['analyze_rss_MiB']}, "
                    f"its largest forked judge's: {r['judge_rss_MiB']}")
        shutil.rmtree(big_dir, ignore_errors=True)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
