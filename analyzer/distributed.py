"""The engines that run the per-capture function over many captures.

One capture is one unit of work, :class:`Job`, done by :func:`run_job` (which calls
:func:`ccs_analyzer.analyzer.cli.analyze_to_dir`: analyse, write the reports, then — last —
put the capture's rows into the store). Two engines run a list of jobs:

* :func:`run_local` — this machine: in this process for one job or one worker, else a
  ``ProcessPoolExecutor`` of ``workers`` processes (``ccs-analyzer analyze -j N``, the
  default engine);
* :func:`run_dask` — a dask.distributed cluster (``--engine dask``): the scheduler at
  ``scheduler`` (``tcp://host:8786``), or a ``LocalCluster`` of ``workers`` single-threaded
  worker processes started (and closed) for the run. A job is one task, however large its
  capture. A task whose worker dies is run again on another worker (the scheduler's
  ``distributed.scheduler.allowed-failures``, 3 by default) and a task that raises is
  retried ``retries`` times; since the store write is the task's last step and is atomic
  (:class:`~ccs_analyzer.analyzer.store.Store`), a killed task leaves nothing behind but a
  ``.tmp`` entry the next write removes.

Both submit the largest captures first (the longest tasks start early, so the workers end
together) and return one summary dict per job (:func:`~ccs_analyzer.analyzer.cli.analyze_to_dir`;
``{"capture", "error"}`` for a capture that could not be analysed), in completion order,
calling ``on_result(summary)`` as each arrives.

On a remote cluster every worker needs ccs-analyzer with the ``fleet`` extra, and the
captures, the output folder and the store must be reachable under the same paths (a shared
file system); the paths are made absolute before they are sent.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Callable, Iterable

#: Retries of a task that raised (a worker's death is counted apart, by the scheduler).
DEFAULT_RETRIES = 2

#: Dask settings of the LocalCluster :func:`run_dask` starts: no statistical profiler (it
#: samples the running task's stack every 10 ms, for a dashboard nobody opens) and calmer
#: system and GIL monitors — together ~10-15 % of a worker's time on pure-Python tasks.
#: Workers of a remote cluster use their own configuration: set the same there
#: (``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``, …).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@dataclass(frozen=True)
class Job:
    """One capture to analyse: ``capture`` (path), ``out_dir`` (its report folder),
    ``keylog`` (NSS key log path or None), ``profile`` (a
    :class:`~ccs_analyzer.analyzer.profile.Profile` or None), ``annotate`` (also write
    annotated.pcapng), ``store`` (store folder or None), ``judge_helper`` (a streamed
    capture may judge its segments in forked judges, analyzer/streaming.py: not when
    the job is one of several running side by side, which already use the cores),
    ``trust`` (trust anchors, a PEM / DER file or folder, or None: docs/pnc.md)."""

    capture: str
    out_dir: str
    keylog: str | None = None
    profile: object = None
    annotate: bool = False
    store: str | None = None
    judge_helper: bool = True
    trust: str | None = None

    def absolute(self) -> "Job":
        """The same job with absolute paths (for workers whose working folder differs)."""
        ab = os.path.abspath
        return replace(self, capture=ab(self.capture), out_dir=ab(self.out_dir),
                       keylog=ab(self.keylog) if self.keylog else None,
                       trust=ab(self.trust) if self.trust else None,
                       store=ab(self.store) if self.store else None)

    def size(self) -> int:
        """The capture's size in bytes (0 when it cannot be read)."""
        try:
            return os.path.getsize(self.capture)
        except OSError:
            return 0


def run_job(job: Job) -> dict:
    """Do one job (:func:`~ccs_analyzer.analyzer.cli.analyze_to_dir`); return its summary.
    A capture that cannot be analysed gives ``{"capture", "error"}``; a report or store
    write that fails raises (OSError, :class:`~ccs_analyzer.analyzer.store.MissingExtra`)."""
    from ccs_analyzer.analyzer.cli import analyze_to_dir
    return analyze_to_dir(job.capture, job.out_dir, job.keylog, job.profile, job.annotate,
                          store=job.store, judge_helper=job.judge_helper, trust=job.trust)


def largest_first(jobs: Iterable[Job]) -> list[Job]:
    """``jobs`` by decreasing capture size (ties keep their order)."""
    return sorted(jobs, key=lambda j: -j.size())


def run_local(jobs: list[Job], workers: int,
              on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Run ``jobs`` on this machine: in this process when there is one job or ``workers``
    ≤ 1, else in a pool of ``min(workers, len(jobs))`` processes. Returns the summaries in
    completion order. An exception of a job (a report or store write that failed)
    propagates."""
    results: list[dict] = []
    if len(jobs) <= 1 or workers <= 1:
        for job in jobs:
            r = run_job(job)
            results.append(r)
            if on_result:
                on_result(r)
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as ex:
        futs = [ex.submit(run_job, replace(job, judge_helper=False)) for job in largest_first(jobs)]
        for fu in as_completed(futs):
            r = fu.result()
            results.append(r)
            if on_result:
                on_result(r)
    return results


def run_dask(jobs: list[Job], scheduler: str | None = None, workers: int | None = None,
             retries: int = DEFAULT_RETRIES,
             on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Run ``jobs`` on a dask.distributed cluster: the scheduler at ``scheduler``, or a
    ``LocalCluster`` of ``workers`` (default: one per core) single-threaded worker
    processes, closed at the end. One task per job, submitted largest capture first, with
    ``retries`` retries when it raises; a worker's death reschedules its task. Returns the
    summaries in completion order; a task that failed for good gives ``{"capture",
    "error"}`` (the exception's type and message). Raises
    :class:`~ccs_analyzer.analyzer.store.MissingExtra` without dask.distributed, OSError /
    TimeoutError when the scheduler cannot be reached."""
    from ccs_analyzer.analyzer.store import require
    require("distributed")
    import contextlib

    import dask
    from distributed import Client, LocalCluster, as_completed

    jobs = [replace(j.absolute(), judge_helper=False) for j in jobs]
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            n = workers or os.cpu_count() or 1
            with dask.config.set(LOCAL_CLUSTER_CONFIG):  # the workers take it at their start
                cluster = stack.enter_context(LocalCluster(
                    n_workers=max(1, min(n, len(jobs) or 1)), threads_per_worker=1,
                    processes=True, dashboard_address=None, silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
        ordered = largest_first(jobs)
        # one message for all the tasks (cheaper for the scheduler than a submit each)
        futures = dict(zip(client.map(run_job, ordered, retries=retries, pure=False), ordered))
        results: list[dict] = []
        for fut in as_completed(list(futures)):
            try:
                r = fut.result()
            except Exception as e:  # noqa: BLE001 — the task's own error, reported per capture
                r = {"capture": futures[fut].capture, "error": f"{type(e).__name__}: {e}"}
            results.append(r)
            fut.release()
            if on_result:
                on_result(r)
    return results
