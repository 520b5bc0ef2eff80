"""The segments of one capture finished, judged and let go (analyzer/segments.py says where a
capture is cut; this module does what follows each cut).

:class:`Segments` takes a session builder whose segment is over: it finishes the sessions,
writes their summaries into the analysis, judges them (analyzer/engine.py
``judge_segment``) and hands them to the :class:`~.spool.SessionSpool`. A capture that is
one segment (a small capture) is judged in place, exactly as before streaming existed.

Judging a segment (the rules) costs about as much as dissecting it. When a capture is
streamed, the judging runs in one helper process beside the dissection (``judge_worker``):
the main process dissects and builds segment k+1 while the helper judges segment k, so a
long capture uses two cores. The helper reads each segment's sessions from the spool file the
main process has just written (no second copy through a pipe), judges the segments in order
(what a segment hands on to the next, ``Analysis.carry``, stays in the helper) and returns
summaries and findings. Without a helper (one core, a daemonic worker process of a pool or a
Dask cluster, which may not start processes, or ``judge_worker=False``) — or when the helper
dies — the main process judges the segments itself: same results.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

from ccs_analyzer.dissectors.pipeline import Dissector

from .engine import judge_segment
from .profile import Profile
from .sessions import SessionBuilder, served_sessions
from .spool import (DiskList, FindingSpool, SessionSpool, SummarySpool, read_pickle,
                    write_pickle)


def helper_allowed() -> bool:
    """Whether this process may start a judging helper: more than one core, and not itself
    a daemonic worker (multiprocessing forbids those children)."""
    return (os.cpu_count() or 1) > 1 and not multiprocessing.current_process().daemon


class Segments:
    """Finishes, judges and hands on the segments of one capture: :meth:`close` takes a
    builder whose segment is over, :meth:`finish` waits for the judging still under way.

    ``a``: the :class:`~.analysis.Analysis` being filled; ``d``: the capture's
    :class:`~ccs_analyzer.dissectors.pipeline.Dissector`; ``rules``: engine.instantiate's
    list for ``profile``; ``judge_worker``: judge streamed segments in a helper process
    (module docstring) when :func:`helper_allowed`."""

    def __init__(self, a, d: Dissector, path: str, rules: list, profile: Profile,
                 judge_worker: bool = True):
        self.a, self.d, self.path, self.rules, self.profile = a, d, path, rules, profile
        self.count = 0
        self.first_frame = -1             # the segment's first frame (-1: the first segment)
        self.findings: list = []          # the whole capture's (one segment), in memory
        self.spooled: FindingSpool | None = None   # a streamed capture's, on disk
        self.loose: list = []             # … and its segments' findings of no session
        self.served: list[tuple] = []
        self._want_helper = judge_worker
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[tuple[Future | None, str, dict, str, str]] = []

    def builder(self) -> SessionBuilder:
        """A builder for the next segment: sessions numbered on, earlier chargers known."""
        return SessionBuilder(offset=len(self.a.summaries), served_before=self.served)

    def close(self, builder: SessionBuilder, conn_ids, next_frame: int | None) -> None:
        """Finish the segment's sessions, write their summaries, judge them (here or in the
        helper) and hand the sessions to ``Analysis.sessions``. ``next_frame``: the frame
        that starts the next segment (None: the capture is over)."""
        from .analysis import Analysis, capture_info

        d, a = self.d, self.a
        sessions = builder.finish()
        if next_frame is None:
            conn_list = d.connections
            probs = [p for p in d.capture.problems if p.after_frame >= self.first_frame]
        else:
            ids = set(conn_ids)
            for s in sessions:
                ids.update(s.connections)
            conn_list = [c for c in (d.connection_summary(i) for i in sorted(ids)) if c is not None]
            probs = [p for p in d.capture.problems if self.first_frame <= p.after_frame < next_frame]
        conns = {c["conn"]: c for c in conn_list}
        for s in sessions:
            a.summaries[s.id] = s.summary(conns)
        self.served.extend(served_sessions(sessions))
        tag = f"{self.count}."
        if next_frame is None and self.count == 0:          # the whole capture: in place
            a.sessions, a.capture_events, a.leftovers = sessions, builder.capture_events, builder.leftovers
            a.connections = conn_list
            self.findings.extend(judge_segment(a, sessions, self.rules, self.profile, tag=tag))
            self.count += 1
            return
        ctx = {"capture": dict(capture_info(d, self.path, None, probs), segment=self.count + 1),
               "accounting": d.accounting.as_dict(), "messages": {k: dict(v) for k, v in a.messages.items()},
               "connections": conn_list, "summaries": {s.id: a.summaries[s.id] for s in sessions},
               "capture_events": builder.capture_events, "leftovers": builder.leftovers,
               "keylog": dict(a.keylog)}
        if not isinstance(a.sessions, SessionSpool):
            self._to_disk()                  # judged sessions and what goes with them: on disk
        a.capture_events.extend(builder.capture_events)
        a.capture_events.flush()
        a.connections.extend(d.take_released())
        a.connections.flush()
        a.leftovers.extend(builder.leftovers)
        out = self.spooled.path_for(tag)
        pool = self._helper() if sessions else None   # (the last segment may hold none)
        if pool is not None:
            path = a.sessions.extend(sessions)
            try:
                fut = pool.submit(_judge_file, path, ctx, tag, out)
            except Exception:            # the helper is gone: judge here
                self._pool, self._want_helper, fut = None, False, None
            self._pending.append((fut, path, ctx, tag, out))
        else:
            self._collect(wait=True)     # segments stay in order
            got = Analysis(sessions=sessions, carry=a.carry, **ctx)
            findings = judge_segment(got, sessions, self.rules, self.profile, tag=tag)
            self._take(ctx["summaries"], _write_findings(findings, out), out)
            a.sessions.extend(sessions)
        self.count += 1
        if next_frame is not None:
            self.first_frame = next_frame
        self._collect(wait=False)

    def _to_disk(self) -> None:
        """The capture is streamed: sessions, findings, summaries, connection summaries and
        capture events of judged segments go to disk from now on (analyzer/spool.py)."""
        a = self.a
        a.sessions = SessionSpool()
        where = a.sessions.directory
        self.spooled = FindingSpool(where)
        summaries = SummarySpool(where)
        for sid, m in a.summaries.items():
            summaries[sid] = m
        a.summaries = summaries
        events = DiskList(where, "events")
        events.extend(a.capture_events)
        a.capture_events = events
        a.connections = DiskList(where, "connections", key=lambda c: c["conn"])

    def _helper(self) -> ProcessPoolExecutor | None:
        if self._pool is None and self._want_helper and helper_allowed():
            try:
                self._pool = ProcessPoolExecutor(1, initializer=_helper_init,
                                                 initargs=(self.rules, self.profile))
            except Exception:
                self._want_helper = False
        return self._pool

    def _collect(self, wait: bool) -> None:
        """Take the results of the segments judged so far, in order (all with ``wait``)."""
        while self._pending:
            fut, path, ctx, tag, out = self._pending[0]
            if fut is not None and not fut.done() and not wait:
                return
            self._pending.pop(0)
            res = None
            if fut is not None:
                try:
                    res = fut.result()
                except Exception:        # the helper died: judge this segment here
                    self._pool = None
                    self._want_helper = False
            if res is None:
                res = _judge(path, ctx, tag, self.rules, self.profile, self.a.carry, out)
            self._take(*res, out)

    def _take(self, summaries: dict, judged: tuple, out: str) -> None:
        """Keep a judged segment's summaries, register its findings file."""
        index, loose = judged
        self.a.summaries.update(summaries)
        self.a.summaries.spool(list(summaries))
        self.spooled.add(out, index)
        self.loose.extend(loose)

    def finish(self) -> None:
        """Wait for every segment's judging; stop the helper."""
        try:
            self._collect(wait=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


# ------------------------------------------------------------------------ judging a segment
def _write_findings(findings: list, out: str) -> tuple[list[tuple], list]:
    """Write a judged segment's findings to ``out``; return its index for the
    :class:`~.spool.FindingSpool` ((provisional id, session, severity) per finding) and its
    findings of no session (the capture's score counts them)."""
    write_pickle(out, findings)
    return ([(f.id, f.session, f.severity) for f in findings],
            [f for f in findings if f.session is None])


def _judge(path: str, fields: dict, tag: str, rules: list, profile: Profile, carry: dict,
           out: str):
    """Judge the segment whose sessions are in spool file ``path``; ``fields``: the rest of
    its context; its findings go to file ``out``. Returns (summaries by session id,
    :func:`_write_findings`' index and findings of no session)."""
    from .analysis import Analysis

    sessions = read_pickle(path)
    for s in sessions:
        s.released = False               # cached views while its rules run
    ctx = Analysis(sessions=sessions, carry=carry, **fields)
    findings = judge_segment(ctx, sessions, rules, profile, tag=tag)
    return ctx.summaries, _write_findings(findings, out)


_HELPER: dict = {}


def _helper_init(rules: list, profile: Profile) -> None:
    _HELPER.update(rules=rules, profile=profile, carry={})


def _judge_file(path: str, fields: dict, tag: str, out: str):
    """In the helper process: :func:`_judge` with the helper's rules and its carry."""
    from .analysis import gc_paused

    with gc_paused():
        return _judge(path, fields, tag, _HELPER["rules"], _HELPER["profile"], _HELPER["carry"],
                      out)
