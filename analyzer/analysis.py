"""Analyse one capture: dissect it, rebuild its sessions, run the rules.

``analyze_capture(path)`` is the per-capture function every front end uses (CLI, report
browser, a distributed engine): it streams the capture once and returns an
:class:`Analysis` with the capture's metadata, frame accounting, TCP connections, sessions
(with their summaries), capture-level events and findings.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable, Hashable, TypeVar

from ccs_analyzer.dissectors.pipeline import Dissector
from ccs_analyzer.dissectors.x509trust import TrustStore

from .engine import finish_capture, instantiate
from .profile import Profile, load_profile
from .segments import cutter_for
from .sessions import Session
from .spool import SessionSpool
from .streaming import Segments, background_sha256

#: Version of the analyzer (reported in report.json).
from . import __version__ as ANALYZER_VERSION  # noqa: E402

T = TypeVar("T")


@dataclass
class Analysis:
    """Everything learned about one capture.

    ``capture``: file, size, sha256, format, frames, first/last time, duration (s), link
    types, problems; ``accounting``: frames decoded / skipped / out of scope; ``messages``:
    message counts by layer (ok / error); ``connections``: TCP connection summaries;
    ``sessions``: :class:`~.sessions.Session` objects (a :class:`~.spool.SessionSpool` on
    disk when the capture was streamed in segments: iterate it, one segment is read at a
    time); ``summaries``: session id → summary
    dict; ``capture_events``: events outside sessions; ``leftovers``: TCP connections of
    sessions that ended before the capture (:attr:`~.sessions.SessionBuilder.leftovers`;
    their events are capture events); ``findings``; ``keylog``: where TLS secrets came from;
    ``cache``: the views the rules share (:meth:`view`, analyzer/views/).
    """

    capture: dict
    accounting: dict
    messages: dict
    connections: list[dict]
    sessions: list[Session]
    summaries: dict[str, dict]
    capture_events: list
    findings: list = field(default_factory=list)
    leftovers: list = field(default_factory=list)
    keylog: dict = field(default_factory=dict)
    score: float = 100.0
    verdict: str = "pass"
    conformance: str = "pass"
    profile: str = "default"
    #: every session's page was rendered while the capture was analysed (a streamed
    #: capture's ``pages`` argument of :func:`analyze_capture`, analyzer/streaming.py)
    pages_written: bool = False
    #: the views built by :meth:`view`: (view name, session id) → (session, its number of
    #: events, value); they go with the analysis
    cache: dict = field(default_factory=dict)
    #: what capture-wide views of earlier segments hand on to the next when a long capture
    #: is judged segment by segment (analyzer/segments.py), by view name: small digests
    #: (e.g. rules/session/common.py: each SessionID's status and last issue), never sessions
    carry: dict = field(default_factory=dict)

    @property
    def capture_problems(self) -> list[dict]:
        return self.capture.get("problems", [])

    def view(self, name: Hashable, session: Session | None, build: Callable[[], T]) -> T:
        """A view shared by several rules, built once: ``build()`` the first time a view
        ``name`` of ``session`` is asked for, the same object afterwards.

        ``name``: the view's name, ``"<module>.<view>"`` (``"loops.runs"``), or a tuple that
        adds the parameters the value depends on (``("loop_table.no_current", params)``);
        ``session``: the :class:`~.sessions.Session` the view reads, None for a view of the
        whole capture. Kept in :attr:`cache` by (name, session id) with the session itself
        and its number of events, so another Session object with the same id (a test's
        modified copy) or a session that grew gets its own view. Every shared view
        (analyzer/views/, docs/architecture.md "Views") and every rule module that keeps a
        per-session value for its rules use this one cache; the views go with the analysis.
        """
        if getattr(session, "released", False):
            return build()          # a judged session read back from the spool: not kept
        if session is None:
            key = (name, None)
            hit = self.cache.get(key)
            if hit is None:
                hit = self.cache[key] = (None, 0, build())
            return hit[2]
        key = (name, session.id)
        n = len(session.events)
        hit = self.cache.get(key)
        if hit is not None and hit[0] is session and hit[1] == n:
            return hit[2]
        value = build()
        self.cache[key] = (session, n, value)
        return value


    def close(self) -> None:
        """Delete the spooled sessions' files (a streamed capture, analyzer/spool.py); the
        summaries, findings and capture facts stay."""
        if isinstance(self.sessions, SessionSpool):
            self.sessions.close()

    def release(self, session: Session) -> None:
        """Let go of the views of ``session`` (:meth:`view`): the engine calls it when the
        session's rules have run; a later reader builds them again."""
        for key in [k for k in self.cache if k[1] == session.id]:
            del self.cache[key]


def sha256_of(path: str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while a capture is analysed: the analysis
    builds millions of acyclic dicts (decoded trees), which the collector would scan again
    and again for nothing (≈ 20 % of the run time on large captures). Reference counting
    still frees everything; the collector's previous state is restored."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def analyze_capture(path: str | os.PathLike, keylog: str | os.PathLike | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    profile=None, segments: str = "auto", judge_worker: bool = True,
                    trust=None, pages=None, keep_sessions: bool = True) -> Analysis:
    """Analyse a capture file end to end.

    ``progress(bytes_read, size)`` is called now and then. ``profile``: a
    :class:`~.profile.Profile`, the path of a profile file, or None (defaults). Raises
    :class:`~ccs_analyzer.dissectors.capture.CaptureError` when the file is not a capture,
    ``OSError`` when it (or the key log) cannot be read, :class:`~.profile.ProfileError`
    (a ValueError) for an unusable profile.

    ``segments``: "auto" streams a capture of 16 MiB or more in segments that are judged and
    let go one by one (analyzer/segments.py), "always" / "never" force it on / off;
    ``judge_worker``: judge a streamed capture's segments in forked judges beside the
    dissection (analyzer/streaming.py), when the machine has a second core and ``os.fork``;
    ``pages``: with them, an object whose ``write(analysis, sessions, summaries, findings)``
    renders the session pages of each judged segment there (reports/html_report.py
    ``SessionPages``); ``Analysis.pages_written`` then says they were all rendered.
    ``keep_sessions``: False — the caller will read the sessions of a streamed, paged
    capture no more (its pages are rendered, no store): they are not written to the spool
    (reading ``Analysis.sessions`` then raises analyzer/spool.py ``SessionsNotKept``).
    ``trust``: trust anchors for the certificate chains (``--trust``): a
    :class:`~ccs_analyzer.dissectors.x509trust.TrustStore` or the path of a PEM / DER file or
    folder (raises its :class:`~ccs_analyzer.dissectors.x509trust.TrustError`, a ValueError);
    None: chains are reported unanchored (docs/pnc.md).
    """
    if profile is not None and not isinstance(profile, Profile):
        from ccs_analyzer.rules import all_rules
        profile = load_profile(profile, all_rules())
    if trust is not None and not isinstance(trust, TrustStore):
        trust = TrustStore.load(trust)
    with gc_paused():
        return _analyze(os.fspath(path), keylog, progress, profile, segments, judge_worker, trust,
                        pages, keep_sessions)


def capture_info(d: Dissector, path: str, sha256: str | None, problems=None) -> dict:
    """The ``capture`` dict of an analysis from the dissector's state now (``frames``,
    ``last_time`` … as far as it has read; ``problems``: the capture problems to show, by
    default all found so far)."""
    info = d.capture
    first, last = d.first_time, d.last_time
    probs = info.problems if problems is None else problems
    return {
        "file": os.path.basename(path),
        "path": os.path.abspath(path),
        "size": info.size,
        "sha256": sha256,
        "format": info.format,
        "byte_order": info.byte_order,
        "frames": d.frames,
        "first_time": first,
        "last_time": last,
        "duration_s": round(last - first, 6) if first is not None and last is not None else 0.0,
        "linktypes": {str(k): v for k, v in info.linktypes.items()},
        "interfaces": info.interfaces,
        "problems": [{"offset": p.offset, "length": p.length, "reason": p.reason,
                      "after_frame": p.after_frame} for p in probs],
        "blocks_skipped": info.blocks_skipped,
    }


def _analyze(path: str, keylog, progress, profile, segments: str = "auto",
             judge_worker: bool = True, trust=None, pages=None,
             keep_sessions: bool = True) -> Analysis:
    profile = profile or Profile()
    rules = instantiate(profile)
    d = Dissector(path, keylog=keylog, trust=trust)
    msgs: dict[str, dict[str, int]] = {}
    a = Analysis(capture={}, accounting={}, messages=msgs, connections=[], sessions=[],
                 summaries={}, capture_events=[])
    seg = Segments(a, d, path, rules, profile, judge_worker, pages, keep_sessions)
    cutter = cutter_for(segments, d.capture.size)
    # a streamed capture's SHA-256 is computed on the second core while it is dissected
    sha256 = (background_sha256(path, sha256_of) if judge_worker and cutter.streams
              else lambda: sha256_of(path))
    builder = seg.builder()
    n = 0
    for ev in d.events():
        if cutter.cut_before(ev, builder):
            a.keylog = {"sources": dict(d.keylog_sources), "secrets": len(d.keylog)}
            seg.close(builder, cutter.connections(), ev.frame)
            builder = seg.builder()
            cutter.cut()
        builder.add(ev)
        cutter.note(ev)
        c = msgs.get(ev.layer)
        if c is None:
            c = msgs[ev.layer] = {"ok": 0, "error": 0}
        c["error" if ev.error else "ok"] += 1
        n += 1
        if progress is not None and n % 2000 == 0:
            progress(d.reader.bytes_read, d.capture.size)
    if progress is not None:
        progress(d.capture.size, d.capture.size)
    a.capture = capture_info(d, path, sha256())
    a.accounting = d.accounting.as_dict()
    a.keylog = {"sources": dict(d.keylog_sources), "secrets": len(d.keylog)}
    seg.close(builder, cutter.connections(), None)
    seg.finish()
    a.pages_written = seg.pages_written
    finish_capture(a, seg.findings, rules, profile, spool=seg.spooled, loose=seg.loose)
    return a
