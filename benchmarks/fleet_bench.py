"""Many captures into a store: ``analyze DIR --store STORE`` with ``--engine dask`` on 1 and 2
workers, and with the local engine at ``-j 1`` and ``-j 2``; wall times and the 2-worker /
1-worker ratio (issue 11: ≤ 0.55 on a 2-core machine).

The folder holds ``--count`` captures (200): half from the real-capture corpus
(``../shared/corpus``, skipped when absent) and half from ``samples/captures``, each list
repeated as often as needed, as symbolic links ``NNN_<name>`` in a temporary folder (the
repeated ones have the same SHA-256, so the store holds each once: replacement under
concurrent writers is part of the run). Every configuration runs the command line in a new
process, into a new report folder and store: the wall time counts starting Python and, for
Dask, starting and closing the LocalCluster. ``--warm`` adds the Dask engine alone on an
already started cluster whose workers have analysed one capture (what a long-lived cluster
costs per batch).

    python benchmarks/fleet_bench.py [--count 200] [--warm] [--repeat N] [--keep DIR]
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCS_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
SAMPLES = REPO / "samples" / "captures"


def sources(count: int) -> list[Path]:
    """``count`` capture paths: half corpus, half samples (each cycled), interleaved."""
    corpus = sorted(p for p in CORPUS.glob("*") if p.suffix in (".pcap", ".pcapng")) if CORPUS.is_dir() else []
    samples = sorted(SAMPLES.glob("*.pcapng"))
    if not corpus:
        return [samples[i % len(samples)] for i in range(count)]
    n_corpus = count // 2
    picked = [corpus[i % len(corpus)] for i in range(n_corpus)]
    picked += [samples[(i * 2) % len(samples)] for i in range(count - n_corpus)]
    return picked


def build_folder(paths: list[Path], folder: Path) -> None:
    """Create ``folder`` with a symbolic link ``NNN_<name>`` (a copy where links fail) per
    path."""
    folder.mkdir(parents=True)
    for i, p in enumerate(paths):
        link = folder / f"{i:03d}_{p.name}"
        try:
            link.symlink_to(p.resolve())
        except OSError:
            shutil.copy(p, link)


def cli() -> list[str]:
    """The command that runs ccs-analyzer of this interpreter's environment."""
    exe = Path(sys.executable).parent / "ccs-analyzer"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ccs_analyzer.analyzer.cli"]


def run_cli(folder: Path, work: Path, engine: str, jobs: int) -> tuple[float, float, int, int]:
    """Wall time (s), CPU time (s, user + system, of the command and the processes it
    waited for), exit code and captures in the store of one command-line run."""
    import resource

    from ccs_analyzer.analyzer.store import Store

    tag = f"{engine}-j{jobs}"
    out, store = work / f"out-{tag}", work / f"store-{tag}"
    for d in (out, store):  # every run starts empty
        shutil.rmtree(d, ignore_errors=True)
    cmd = cli() + ["analyze", str(folder), "-o", str(out), "--store", str(store),
                   "--engine", engine, "-j", str(jobs), "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode not in (0, 2):
        sys.stderr.write(r.stderr[-2000:])
    return wall, cpu, r.returncode, len(Store(store).captures())


def run_warm(folder: Path, work: Path, workers: int) -> float:
    """Seconds for the Dask engine alone on a started, warmed-up LocalCluster."""
    import dask
    from distributed import Client, LocalCluster

    from ccs_analyzer.analyzer.distributed import LOCAL_CLUSTER_CONFIG, Job, run_dask, run_job

    files = sorted(folder.iterdir())
    store = work / f"store-warm-{workers}"
    for d in (store, work / f"out-warm-{workers}"):
        shutil.rmtree(d, ignore_errors=True)
    jobs = [Job(str(p), str(work / f"out-warm-{workers}" / p.stem), store=str(store)) for p in files]
    with dask.config.set(LOCAL_CLUSTER_CONFIG):  # as run_dask starts its own
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        warm = Job(str(files[-1]), str(work / "warm" / "x"), store=str(work / "store-warmup"))
        client.run(run_job, warm)
        t0 = time.perf_counter()
        run_dask(jobs, scheduler=cluster.scheduler_address)
        return time.perf_counter() - t0


def main() -> None:
    """Build the folder, run the four configurations (and ``--warm``), print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200, help="captures in the folder (200)")
    ap.add_argument("--warm", action="store_true", help="also time the Dask engine on a warm cluster")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration; the "
                    "fastest counts (1)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    try:
        paths = sources(args.count)
        folder = work / "captures"
        build_folder(paths, folder)
        unique = len({p.resolve() for p in paths})
        size = sum(p.stat().st_size for p in paths)
        print(f"{len(paths)} captures ({unique} distinct, {size / 1e6:.1f} MB; "
              f"{'corpus + samples' if CORPUS.is_dir() else 'samples only'}), "
              f"{os.cpu_count()} cores")
        configs = [("local", 1), ("local", 2), ("dask", 1), ("dask", 2)]
        runs: dict = {c: [] for c in configs}
        warm: dict = {1: [], 2: []}
        # round robin, so that a burst of load from elsewhere hits one run of each, not all
        # the runs of one configuration; the fastest run of each configuration counts
        for _ in range(max(1, args.repeat)):
            for engine, jobs in configs:
                load = os.getloadavg()[0]
                runs[(engine, jobs)].append(run_cli(folder, work, engine, jobs) + (load,))
            if args.warm:
                for n in (1, 2):
                    warm[n].append(run_warm(folder, work, n))
        best = {}
        for (engine, jobs), rs in runs.items():
            wall, cpu, code, held, load = min(rs)
            best[(engine, jobs)] = wall
            print(f"  {engine:5s} {jobs} worker(s): {wall:7.2f} s wall, {cpu:7.2f} s CPU "
                  f"({len(paths) / wall:5.1f} captures/s; exit {code}; store holds {held} of "
                  f"{unique}; load average before {load:.2f})"
                  + (f"; all runs {', '.join(f'{r[0]:.2f}' for r in rs)} s" if len(rs) > 1 else ""))
        for engine in ("local", "dask"):
            print(f"  {engine}: 2 workers / 1 worker = {best[(engine, 2)] / best[(engine, 1)]:.3f}"
                  " (target ≤ 0.55)")
        if args.warm:
            w1, w2 = min(warm[1]), min(warm[2])
            print(f"  dask, warm cluster: 1 worker {w1:.2f} s, 2 workers {w2:.2f} s, "
                  f"ratio {w2 / w1:.3f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
