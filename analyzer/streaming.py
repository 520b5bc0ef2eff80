"""The segments of one capture finished, judged and let go (analyzer/segments.py says where a
capture is cut; this module does what follows each cut).

:class:`Segments` takes a session builder whose segment is over: it finishes the sessions,
writes their summaries into the analysis, judges them (analyzer/engine.py
``judge_segment``) and hands them to the :class:`~.spool.SessionSpool`. A capture that is
one segment (a small capture) is judged in place, exactly as before streaming existed.

Judging a segment (the rules) costs about as much as dissecting it. When a capture is
streamed and the machine has a second core, each segment is judged by a *forked judge*: a
child process started (``os.fork``) at the cut, which inherits the segment's sessions
without a copy through a pipe or a file. The dissecting process goes on with the next
segment at once; the judge writes the segment's sessions to their spool file, judges them,
writes their findings and, when the caller asked for session pages (``pages``, e.g.
reports/html_report.py ``SessionPages``), renders the segment's pages with the findings'
final ids. What a segment hands on to the next (``Analysis.carry``, and the number of
findings before it, which gives the final ids) goes from judge to judge: each judge waits
for its predecessor's word (a pipe) before it judges, then hands its own on before it renders
its pages, so that one judge's pages overlap the next one's rules. At most
:data:`MAX_JUDGES` judges live at a time (their segments stay in the dissecting process's
memory until they are collected). The results come back in segment order.

A judge that dies (killed, out of memory) loses nothing: its successors, which wait for its
word, give up too, and the dissecting process judges those segments itself from the sessions
it kept, with the same carry — same results. Without a second core, without ``os.fork``
(Windows), in a process that runs other threads (:func:`fork_allowed`), in a daemonic
worker of a pool or a Dask cluster (which may not start processes) or with
``judge_worker=False``, the dissecting process judges every segment itself.
"""
from __future__ import annotations

import copy
import multiprocessing
import os
import threading
from dataclasses import dataclass
from typing import Callable

from ccs_analyzer.dissectors.pipeline import Dissector

from .engine import judge_segment
from .profile import Profile
from .sessions import SessionBuilder, served_sessions
from .spool import (DiskList, FindingSpool, SessionSpool, SummarySpool, read_pickle,
                    remap_summary, write_pickle, write_spooled)

#: Forked judges alive at a time (module docstring): one judge's pages overlap the next one's
#: rules, and the dissecting process may run a batch ahead before it waits; each keeps its
#: batch in the parent's memory until collected.
MAX_JUDGES = 3

#: A forked judge takes the segments of this many events at least (the last batch: what is
#: left; in the last 15 % of the file a quarter of it, so that little judging is left once
#: the capture has been read). Each fork costs the parent's page tables and copy-on-write
#: faults on its memory (≈ 20 ms for a 100 MiB process), so a capture cut into many small
#: segments is judged in batches (6,000 / 8,000 / 12,000 measured alike on x4).
JUDGE_BATCH_EVENTS = 8000


def helper_allowed() -> bool:
    """Whether this process may start judging processes: more than one core, and not itself
    a daemonic worker (multiprocessing forbids those children)."""
    return (os.cpu_count() or 1) > 1 and not multiprocessing.current_process().daemon


def fork_allowed() -> bool:
    """Whether streamed segments are judged by forked judges (module docstring): ``os.fork``
    exists, :func:`helper_allowed`, and this process runs one thread — a fork copies only
    the forking thread, and a lock another thread held at that moment (a progress bar's, a
    report browser's server) would stay locked in the judge for ever."""
    return hasattr(os, "fork") and helper_allowed() and threading.active_count() == 1


def background_sha256(path: str, compute: Callable[[str], str]) -> Callable[[], str]:
    """The SHA-256 of the capture file computed beside the dissection, on the second core:
    a forked child hashes the file (``compute(path)``: analyzer/analysis.py ``sha256_of``)
    and writes the hex digest to a pipe; the returned function reads it (waiting for the
    child) — or, when no child could be started or it failed, computes it in this process.
    Only with :func:`fork_allowed`; otherwise the function computes it when called."""
    if not fork_allowed():
        return lambda: compute(path)
    try:
        r, w = os.pipe()
    except OSError:
        return lambda: compute(path)
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return lambda: compute(path)
    if pid == 0:                         # the child
        code = 1
        try:
            os.close(r)
            _yield_to_parent()
            os.write(w, compute(path).encode("ascii"))
            code = 0
        finally:
            os._exit(code)
    os.close(w)

    def result() -> str:
        try:
            with os.fdopen(r, "rb") as f:
                got = f.read().decode("ascii")
            _, status = os.waitpid(pid, 0)
        except (OSError, ChildProcessError, UnicodeDecodeError):
            got, status = "", -1
        return got if status == 0 and len(got) == 64 else compute(path)
    return result


def run_beside(fn: Callable[[], object]) -> Callable[[], None]:
    """Run ``fn()`` in a forked child while this process goes on (e.g. report.json written
    while report.html is: analyzer/cli.py); the returned function waits for the child and,
    when it could not be started or failed, runs ``fn()`` here — so its errors are raised
    here, as if it had run here. Only with :func:`fork_allowed`; otherwise the returned
    function simply runs ``fn()``."""
    def here() -> None:
        fn()
    if not fork_allowed():
        return here
    try:
        pid = os.fork()
    except OSError:
        return here
    if pid == 0:                         # the child
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)

    def wait() -> None:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = -1
        if status != 0:
            here()
    return wait


@dataclass
class _Segment:
    """A segment to judge: its ``sessions``, the rest of its analysis context ``ctx``, the
    ``tag`` of its provisional finding ids, its ``spool`` file (the sessions; None: no
    sessions) and its findings file ``out``; ``events``: how many events its sessions hold."""

    sessions: list
    ctx: dict
    tag: str
    spool: str | None
    out: str
    events: int


@dataclass
class _Judge:
    """A forked judge of a batch of segments, as the dissecting process knows it: ``pid``;
    ``ready``: the read end of the pipe on which it gives its successor the word (kept
    open by the parent only while it is the newest judge); ``batch``: its segments, in
    order (kept until it is collected: if it dies they are judged here); ``state``: its
    file for the successor (carry, findings count), ``result``: its file for the parent
    (each segment's summaries and findings index, the carry)."""

    pid: int
    ready: int
    batch: list
    state: str
    result: str


class Segments:
    """Finishes, judges and hands on the segments of one capture: :meth:`close` takes a
    builder whose segment is over, :meth:`finish` waits for the judging still under way.

    ``a``: the :class:`~.analysis.Analysis` being filled; ``d``: the capture's
    :class:`~ccs_analyzer.dissectors.pipeline.Dissector`; ``rules``: engine.instantiate's
    list for ``profile``; ``judge_worker``: judge streamed segments in forked judges (module
    docstring) when :func:`fork_allowed`; ``pages``: an object whose ``write(analysis,
    sessions, summaries, findings)`` renders the pages of a judged segment's sessions (final
    finding ids), called for every segment of a streamed capture judged by forked judges —
    :attr:`pages_written` then says that every session has its page — and whose
    ``paged(n)`` says whether a report of ``n`` sessions has session pages;
    ``keep_sessions``: False lets the sessions of segments go unwritten once the report is
    sure to be paged (nothing but the pages would read them: no store, analyzer/spool.py
    ``SessionSpool.reserve``)."""

    def __init__(self, a, d: Dissector, path: str, rules: list, profile: Profile,
                 judge_worker: bool = True, pages=None, keep_sessions: bool = True):
        self.a, self.d, self.path, self.rules, self.profile = a, d, path, rules, profile
        self.count = 0
        self.first_frame = -1             # the segment's first frame (-1: the first segment)
        self.findings: list = []          # the whole capture's (one segment), in memory
        self.spooled: FindingSpool | None = None   # a streamed capture's, on disk
        self.loose: list = []             # … and its segments' findings of no session
        self.served: list[tuple] = []
        self.pages = pages
        self.keep_sessions = keep_sessions
        self._fork = judge_worker and fork_allowed()
        self._judges: list[_Judge] = []   # alive or not yet collected, in segment order
        self._batch: list[_Segment] = []  # segments waiting for the next forked judge
        self._found = 0                   # findings of the segments collected so far
        self._sessions = 0                # sessions of the segments closed so far
        self.pages_written = False

    def builder(self) -> SessionBuilder:
        """A builder for the next segment: sessions numbered on, earlier chargers known."""
        return SessionBuilder(offset=self._sessions, served_before=self.served)

    def close(self, builder: SessionBuilder, conn_ids, next_frame: int | None) -> None:
        """Finish the segment's sessions, write their summaries, judge them (here or in a
        forked judge) and hand the sessions to ``Analysis.sessions``. ``next_frame``: the
        frame that starts the next segment (None: the capture is over)."""
        from .analysis import capture_info

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
        self.served.extend(served_sessions(sessions))
        self._sessions += len(sessions)
        tag = f"{self.count}."
        if next_frame is None and self.count == 0:          # the whole capture: in place
            conns = {c["conn"]: c for c in conn_list}
            for s in sessions:
                a.summaries[s.id] = s.summary(conns)
            a.sessions, a.capture_events, a.leftovers = sessions, builder.capture_events, builder.leftovers
            a.connections = conn_list
            self.findings.extend(judge_segment(a, sessions, self.rules, self.profile, tag=tag))
            self.count += 1
            return
        ctx = {"capture": dict(capture_info(d, self.path, None, probs), segment=self.count + 1),
               "accounting": d.accounting.as_dict(), "messages": {k: dict(v) for k, v in a.messages.items()},
               "connections": conn_list, "summaries": None,      # (made by the judge)
               "capture_events": builder.capture_events, "leftovers": builder.leftovers,
               "keylog": dict(a.keylog)}
        if not isinstance(a.sessions, SessionSpool):
            self._to_disk()                  # judged sessions and what goes with them: on disk
            self.pages_written = self._fork and self.pages is not None
        a.capture_events.extend(builder.capture_events)
        a.capture_events.flush()
        a.connections.extend(d.take_released())
        a.connections.flush()
        a.leftovers.extend(builder.leftovers)
        # a paged report's sessions that nobody else reads (no store) need not be written
        keep = self.keep_sessions or not (self.pages_written and self.pages.paged(self._sessions))
        seg = _Segment(sessions, ctx, tag, a.sessions.reserve(sessions, keep),
                       self.spooled.path_for(tag), sum(len(s.events) for s in sessions))
        if self._fork:
            self._batch.append(seg)
            events = sum(x.events for x in self._batch)
            size = d.capture.size or 1
            if (next_frame is None or events >= JUDGE_BATCH_EVENTS
                    or (d.reader.bytes_read > 0.85 * size and events >= JUDGE_BATCH_EVENTS // 4)):
                batch, self._batch = self._batch, []
                self._fork_judge(batch)
        else:
            self._judge_here([seg])
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

    # ------------------------------------------------------------------ judging
    def _judge_here(self, batch: list[_Segment]) -> None:
        """Judge segments in this process, in order (after every judge before them is
        collected: the carry and the findings count must be theirs)."""
        self._collect(wait=True)
        self._judge_batch(batch)

    def _judge_batch(self, batch: list[_Segment]) -> None:
        """Judge segments in this process, in order, after the segments taken so far."""
        for seg in batch:
            ctx, findings, judged = _judge(seg, self.rules, self.profile, self.a.carry)
            if self.pages_written:
                _render_pages(self.pages, ctx, seg.sessions, findings, judged[0], self._found,
                              self.a.connections)
            self._take(ctx.summaries, judged, seg.out)

    def _fork_judge(self, batch: list[_Segment]) -> None:
        """Start a forked judge for a batch of segments (module docstring)."""
        while len(self._judges) >= MAX_JUDGES:
            self._collect(wait=True, one=True)
        prev = self._judges[-1] if self._judges else None
        state, result = batch[0].out + ".state", batch[0].out + ".result"
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:                  # no process to be had: judge here from now on
            os.close(r)
            os.close(w)
            self._fork = False
            self._judge_here(batch)
            return
        if pid == 0:                     # the judge
            code = 1
            try:
                os.close(r)
                _yield_to_parent()
                code = _judge_forked(prev, w, state, result, batch, self.rules, self.profile,
                                     self.a.carry, self._found,
                                     self.pages if self.pages_written else None,
                                     self.a.connections)
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(w)
        if prev is not None:             # only the new judge waits on it now
            os.close(prev.ready)
            prev.ready = -1
        self._judges.append(_Judge(pid, r, batch, state, result))

    def _collect(self, wait: bool, one: bool = False) -> None:
        """Take the results of the judges that are done, in segment order (all of them with
        ``wait``; the oldest only with ``one``). A judge that failed leaves its segments to
        this process."""
        while self._judges:
            j = self._judges[0]
            try:
                pid, status = os.waitpid(j.pid, 0 if wait else os.WNOHANG)
            except ChildProcessError:    # reaped by someone else: its result is unknown
                pid, status = j.pid, -1
            if pid == 0:
                return
            self._judges.pop(0)
            if j.ready >= 0:
                os.close(j.ready)
            got = None
            if status == 0:
                try:
                    got = read_pickle(j.result)
                except (OSError, EOFError, ValueError):
                    got = None
            try:
                os.remove(j.result)      # (its state file may still be read by its successor:
            except OSError:              # it goes with the spool folder)
                pass
            if got is not None:
                results, self.a.carry = got
                for seg, (summaries, judged) in zip(j.batch, results):
                    self._take(summaries, judged, seg.out)
            else:                        # the judge died: its segments are judged here
                self._judge_batch(j.batch)
            if one:
                return

    def _take(self, summaries: dict, judged: tuple, out: str) -> None:
        """Keep a judged segment's summaries, register its findings file."""
        index, loose = judged
        self.a.summaries.update(summaries)
        self.a.summaries.spool(list(summaries))
        self.spooled.add(out, index)
        self.loose.extend(loose)
        self._found += len(index)

    def finish(self) -> None:
        """Wait for every segment's judging."""
        if self._batch:
            batch, self._batch = self._batch, []
            self._fork_judge(batch)
        self._collect(wait=True)


# ------------------------------------------------------------------------ judging a segment
def _write_findings(findings: list, out: str) -> tuple[list[tuple], list]:
    """Write a judged segment's findings to ``out``; return its index for the
    :class:`~.spool.FindingSpool` ((provisional id, session, severity) per finding) and its
    findings of no session (the capture's score counts them)."""
    write_pickle(out, findings)
    return ([(f.id, f.session, f.severity) for f in findings],
            [f for f in findings if f.session is None])


def _prepare(seg: _Segment) -> None:
    """What comes first for a segment, before its rules run: its sessions' summaries (into
    ``seg.ctx``) and its sessions written to their spool file, as they are before judging."""
    if seg.ctx["summaries"] is None:
        conns = {c["conn"]: c for c in seg.ctx["connections"]}
        seg.ctx["summaries"] = {s.id: s.summary(conns) for s in seg.sessions}
    if seg.spool is not None:
        write_spooled(seg.spool, seg.sessions)


def _judge(seg: _Segment, rules: list, profile: Profile, carry: dict, prepared: bool = False):
    """Judge one segment: :func:`_prepare` it (unless ``prepared``), run its rules with
    ``carry`` (updated in place), write its findings to ``seg.out``. Returns (the segment's
    :class:`~.analysis.Analysis`, its findings, :func:`_write_findings`' index and findings
    of no session)."""
    from .analysis import Analysis

    if not prepared:
        _prepare(seg)
    ctx = Analysis(sessions=seg.sessions, carry=carry, profile=profile.name, **seg.ctx)
    findings = judge_segment(ctx, seg.sessions, rules, profile, tag=seg.tag)
    return ctx, findings, _write_findings(findings, seg.out)


def _render_pages(pages, ctx, sessions: list, findings: list, index: list, found: int,
                  earlier=None) -> None:
    """The pages of a judged segment's sessions, with the findings' final ids (their
    provisional ids mapped as ``FindingSpool.number`` maps them) in the findings and the
    summaries' root causes; the spooled findings file keeps the provisional ids.
    ``earlier``: the connection summaries of earlier segments (``Analysis.connections``,
    a :class:`~.spool.DiskList`). Each connection is shown as it stood when the segment
    was cut — the summary the segment's rules judged; report.json lists its state at the
    end of the capture, which differs only for a connection whose 4-tuple is used again
    after the cut."""
    final = {prov: f"F{found + i}" for i, (prov, _, _) in enumerate(index, 1)}
    findings = [copy.copy(f) for f in findings]
    for f in findings:
        f.renumber(final)
    summaries = {}
    for sid, m in ctx.summaries.items():
        summaries[sid] = m = dict(m)
        remap_summary(m, final)
    # a session's connection let go in an earlier segment (its 4-tuple used again) is on
    # disk already: its page lists it too
    have = {c["conn"] for c in ctx.connections}
    missing = {c for s in sessions for c in s.connections} - have
    if missing and hasattr(earlier, "by_keys"):
        ctx = copy.copy(ctx)
        ctx.connections = list(ctx.connections) + earlier.by_keys(missing)
    pages.write(ctx, sessions, summaries, findings)


#: Niceness a forked judge adds to its own: the dissecting process, which every later
#: segment waits for, keeps its core when two judges (one rendering pages, the next judging)
#: want the other; once the capture has been read the judges have both cores anyway.
JUDGE_NICENESS = 10


def _yield_to_parent() -> None:
    """Lower this (forked judge) process's scheduling priority by :data:`JUDGE_NICENESS`
    (where the system allows it; nothing happens otherwise)."""
    try:
        os.nice(JUDGE_NICENESS)
    except (OSError, AttributeError):
        pass


def _judge_forked(prev: _Judge | None, word: int, state: str, result: str, batch: list,
                  rules: list, profile: Profile, carry: dict, found: int, pages,
                  earlier) -> int:
    """In a forked judge: write the batch's sessions to the spool, wait for the
    predecessor's word (its carry and findings count; without a predecessor the parent's
    own, inherited), judge the segments in order (:func:`_judge`), give the successor the
    word on ``word``, render the pages (``pages``, final finding ids: ``found`` before
    each segment), write the result for the parent. Returns the exit status: 0 done, 3 the
    predecessor failed (the parent judges this batch)."""
    for seg in batch:                    # first: while the predecessor may still be judging
        _prepare(seg)
    if prev is not None:
        if os.read(prev.ready, 1) != b"1":
            return 3
        carry, found = read_pickle(prev.state)
    judged_all = []
    for seg in batch:
        ctx, findings, judged = _judge(seg, rules, profile, carry, prepared=True)
        judged_all.append((seg, ctx, findings, judged, found))
        found += len(judged[0])
    write_pickle(state, (carry, found))
    os.write(word, b"1")                 # the successor may judge now; the pages follow
    if pages is not None:
        for seg, ctx, findings, judged, before in judged_all:
            _render_pages(pages, ctx, seg.sessions, findings, judged[0], before, earlier)
    write_pickle(result, ([(ctx.summaries, judged) for _, ctx, _, judged, _ in judged_all], carry))
    return 0
