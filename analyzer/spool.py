"""Sessions and findings of a long capture kept on disk once they are judged, read back one
segment at a time by whoever renders them (reports, the timeline, the store).

When a capture is streamed in segments (analyzer/segments.py) each judged segment's sessions
are written to a temporary file (pickle) and let go; ``Analysis.sessions`` is then a
:class:`SessionSpool`: a read-only sequence whose iteration loads one segment at a time, so
that a report of hundreds of sessions is rendered in the memory of one segment; likewise
``Analysis.findings`` is then a :class:`FindingSpool`, ``Analysis.summaries`` a
:class:`SummarySpool` and ``connections`` / ``capture_events`` are :class:`DiskList` ones, so that
memory does not grow with the number of sessions. The files go when the spool is closed or
collected.
"""
from __future__ import annotations

import os
import pickle
import shutil
import socket
import tempfile
from collections.abc import Iterator, MutableMapping, Sequence

from .sessions import Session

#: Spool folders are named ``ccs-spool-<host>.<pid>.<random>`` in the temporary folder; those
#: of processes of this host that are gone (killed mid-run) are removed by the next spool.
SPOOL_PREFIX = "ccs-spool-"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_spools(directory: str | None = None) -> int:
    """Remove the spool folders of this host's processes that are gone (a run killed before
    it could delete its own); return how many."""
    root = directory or tempfile.gettempdir()
    host = socket.gethostname()
    removed = 0
    try:
        names = os.listdir(root)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(SPOOL_PREFIX):
            continue
        parts = name[len(SPOOL_PREFIX):].rsplit(".", 2)
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not pid_alive(int(parts[1])):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed += 1
    return removed


def write_pickle(path: str, obj) -> str:
    """Write ``obj`` to ``path`` (pickle, highest protocol); return ``path``."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def read_pickle(path: str):
    """Read what :func:`write_pickle` wrote."""
    with open(path, "rb") as f:
        return pickle.load(f)


def write_spooled(path: str, sessions: list[Session]) -> None:
    """Write a segment's judged-or-to-be-judged sessions to their spool file ``path``
    (:meth:`SessionSpool.reserve`), marked ``released`` as a reader gets them back (their
    views are not cached); the sessions in memory keep their own flag."""
    was = [s.released for s in sessions]
    for s in sessions:
        s.released = True
    try:
        write_pickle(path, sessions)
    finally:
        for s, r in zip(sessions, was):
            s.released = r


class _OneFileCache:
    """The last spool file read back stays in memory (readers go segment by segment)."""

    _cached: tuple | None = None

    def _read(self, k: int, path: str, after=None):
        """File ``k`` at ``path``, read back (``after`` applied once) or from the cache."""
        if self._cached is not None and self._cached[0] == k:
            return self._cached[1]
        self._cached = None                 # let the previous file go before reading
        got = read_pickle(path)
        if after is not None:
            got = after(got)
        self._cached = (k, got)
        return got


def remap_summary(m: dict, mapping: dict) -> None:
    """Provisional → final finding ids in a session summary's ``root_cause`` and
    ``cause_chain`` (analyzer/engine.py ``finish_capture``)."""
    if not mapping:
        return
    if m.get("root_cause") is not None:
        m["root_cause"] = mapping.get(m["root_cause"], m["root_cause"])
    if m.get("cause_chain"):
        m["cause_chain"] = [mapping.get(x, x) for x in m["cause_chain"]]


class SessionsNotKept(RuntimeError):
    """The sessions asked for were let go without being written (``keep_sessions=False``)."""


class SessionSpool(_OneFileCache, Sequence):
    """Judged sessions on disk, in session order.

    :meth:`extend` writes a segment's sessions (marking them ``released``: views of them are
    not cached, analyzer/analysis.py ``Analysis.view``); ``len``, iteration and indexing read
    them back (the last segment read stays in memory); :meth:`close` deletes the files.
    Raises OSError when the temporary directory cannot be written.
    """

    def __init__(self, directory: str | None = None):
        clean_stale_spools(directory)
        self._dir = tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{socket.gethostname()}.{os.getpid()}.",
                                     dir=directory)
        self._files: list[str] = []        # ("": a segment whose sessions were not kept)
        self._starts: list[int] = []       # index of each file's first session
        self._n = 0
        #: some segments' sessions were not kept (:meth:`reserve`)
        self.dropped = False

    def extend(self, sessions: list[Session]) -> str | None:
        """Write one segment's sessions to disk; return the file's path (None: nothing to
        write). The file holds the pickled list of sessions."""
        path = self.reserve(sessions)
        if path is not None:
            write_spooled(path, sessions)
        return path

    def reserve(self, sessions: list[Session], keep: bool = True) -> str | None:
        """Take the next segment's place in the spool for ``sessions`` and return the path
        of its file, which whoever judges the segment writes with :func:`write_spooled`
        before the spool is read (analyzer/streaming.py: a forked judge writes it, so that
        the dissecting process does not spend its time pickling). None: no sessions, or
        ``keep`` False — nobody will read them (their pages are rendered, no store wants
        them: ``analyze_capture(keep_sessions=False)``); reading them raises
        :class:`SessionsNotKept`."""
        if not sessions:
            return None
        path = os.path.join(self._dir, f"segment{len(self._files):06d}.pickle")
        if not keep:
            path, self.dropped = "", True
        self._files.append(path)
        self._starts.append(self._n)
        self._n += len(sessions)
        return path or None

    def _load(self, k: int) -> list[Session]:
        if not self._files[k]:
            raise SessionsNotKept("the sessions of this streamed capture were not kept "
                                  "(analyze_capture(keep_sessions=False)): read its summaries, "
                                  "findings and session pages instead")
        return self._read(k, self._files[k])

    def __len__(self) -> int:
        return self._n

    @property
    def segments(self) -> int:
        """How many segment files the spool holds."""
        return len(self._files)

    def segment(self, k: int) -> list[Session]:
        """The sessions of segment file ``k`` (0-based), read back."""
        return self._load(k)

    def __iter__(self) -> Iterator[Session]:
        for k in range(len(self._files)):
            yield from self._load(k)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        k = max(j for j, start in enumerate(self._starts) if start <= i)
        return self._load(k)[i - self._starts[k]]

    @property
    def directory(self) -> str:
        """The spool's temporary folder (the findings files go there too)."""
        return self._dir

    def close(self) -> None:
        """Delete the spool's files."""
        self._cached = None
        shutil.rmtree(self._dir, ignore_errors=True)
        self._files, self._starts, self._n = [], [], 0

    def __del__(self):
        try:
            shutil.rmtree(self._dir, ignore_errors=True)
        except Exception:
            pass


class FindingSpool(_OneFileCache, Sequence):
    """The findings of a streamed capture: each segment's on disk (written by whoever judged
    the segment, analyzer/streaming.py), with a light index in memory (provisional id,
    session, severity per finding); the capture's own findings in memory. Read back in id
    order with their final ids (:meth:`number`), one segment at a time.

    ``directory``: where the files go (the session spool's folder)."""

    def __init__(self, directory: str):
        self._dir = directory
        self._segs: list[tuple[str, list[tuple]]] = []   # (path, [(prov id, session, severity)])
        self._final: dict[str, str] = {}
        self._of_session: dict[str | None, int] = {}      # session id → its segment
        self.capture: list = []                           # the capture's own findings
        self._paths = 0

    def path_for(self, tag: str) -> str:
        """A new file for the findings of the segment tagged ``tag``."""
        self._paths += 1
        return os.path.join(self._dir, f"findings{self._paths:06d}.pickle")

    def add(self, path: str, index: list[tuple]) -> None:
        """Register a segment's findings file and its index: (provisional id, session,
        severity) per finding, in the segment's (time) order."""
        k = len(self._segs)
        self._segs.append((path, index))
        for _, sid, _ in index:
            if sid is not None:
                self._of_session.setdefault(sid, k)

    def number(self, capture_findings: list) -> dict[str, str]:
        """Give every finding its final id — ``F1`` … segment by segment in order, then the
        capture's own findings — and return provisional id → final id."""
        n = 0
        for _, index in self._segs:
            for prov, _, _ in index:
                n += 1
                self._final[prov] = f"F{n}"
        for f in capture_findings:
            n += 1
            f.id = f"F{n}"
        self.capture = list(capture_findings)
        return self._final

    def segment(self, k: int) -> list:
        """The findings of segment ``k``, with their final ids."""
        def renumber(findings: list) -> list:
            for f in findings:
                f.renumber(self._final)
            return findings
        return self._read(k, self._segs[k][0], renumber)

    def of_session(self, session_id: str) -> list:
        """The findings of one session (its segment read back)."""
        k = self._of_session.get(session_id)
        return [] if k is None else [f for f in self.segment(k) if f.session == session_id]

    def no_session(self) -> list:
        """The findings of no session (the capture's own and its segments'), final ids."""
        out = []
        for k, (_, index) in enumerate(self._segs):
            if any(sid is None for _, sid, _ in index):
                out += [f for f in self.segment(k) if f.session is None]
        return out + list(self.capture)

    def severity_of(self) -> dict[str, str]:
        """Final id → severity (from the index)."""
        out = {self._final.get(prov, prov): sev for _, index in self._segs for prov, _, sev in index}
        out.update({f.id: f.severity for f in self.capture})
        return out

    def severities(self) -> dict[str, int]:
        """How many findings of each severity (from the index, nothing read back)."""
        out = {"error": 0, "warning": 0, "info": 0}
        for _, index in self._segs:
            for _, _, sev in index:
                out[sev] = out.get(sev, 0) + 1
        for f in self.capture:
            out[f.severity] = out.get(f.severity, 0) + 1
        return out

    def ids_by_session(self) -> dict:
        """Session id → the final ids of its findings (from the index)."""
        out: dict = {}
        for _, index in self._segs:
            for prov, sid, _ in index:
                out.setdefault(sid, []).append(self._final.get(prov, prov))
        for f in self.capture:
            out.setdefault(f.session, []).append(f.id)
        return out

    def __len__(self) -> int:
        return sum(len(index) for _, index in self._segs) + len(self.capture)

    def __iter__(self) -> Iterator:
        for k in range(len(self._segs)):
            yield from self.segment(k)
        yield from self.capture

    def __getitem__(self, i):
        items = list(self)
        return items[i]


class DiskList(_OneFileCache, Sequence):
    """An append-only list kept on disk in chunks (:meth:`flush` writes what was added since
    the last flush), read back in order one chunk at a time: the connection summaries and
    capture events of a streamed capture. ``key``: an item's key for :meth:`by_keys`."""

    def __init__(self, directory: str, name: str, key=None):
        self._dir, self._name, self._key = directory, name, key
        self._files: list[tuple[str, int]] = []
        self._tail: list = []
        self._where: dict = {}

    def append(self, item) -> None:
        """Add one item (in memory until the next :meth:`flush`)."""
        self._tail.append(item)

    def extend(self, items) -> None:
        """Add items (in memory until the next :meth:`flush`)."""
        self._tail.extend(items)

    def flush(self) -> None:
        """Write the items added since the last flush to a file of their own."""
        if not self._tail:
            return
        k = len(self._files)
        path = write_pickle(os.path.join(self._dir, f"{self._name}{k:06d}.pickle"), self._tail)
        self._files.append((path, len(self._tail)))
        if self._key is not None:
            for x in self._tail:
                self._where[self._key(x)] = k
        self._tail = []

    def _load(self, k: int) -> list:
        return self._read(k, self._files[k][0])

    def by_keys(self, keys) -> list:
        """The items whose key is in ``keys`` (their chunks read back)."""
        keys = set(keys)
        out = [x for x in self._tail if self._key(x) in keys]
        for k in sorted({self._where[x] for x in keys if x in self._where}):
            out += [x for x in self._load(k) if self._key(x) in keys]
        return out

    def __len__(self) -> int:
        return sum(n for _, n in self._files) + len(self._tail)

    def __iter__(self) -> Iterator:
        for k in range(len(self._files)):
            yield from self._load(k)
        yield from self._tail

    def __getitem__(self, i):
        return list(self)[i]


class SummarySpool(_OneFileCache, MutableMapping):
    """Session id → summary of a streamed capture, in session order: the summaries of judged
    segments on disk (:meth:`spool`), each session's (score, verdict, conformance) kept in
    memory for the capture's verdict (:meth:`scores`); reading one reads its segment back
    (with the final finding ids, :meth:`set_remap`). Summaries read back are copies: write
    them through ``summaries[id] = …`` only before they are spooled."""

    def __init__(self, directory: str):
        self._dir = directory
        self._order: list[str] = []
        self._mem: dict[str, dict] = {}
        self._where: dict[str, int] = {}
        self._files: list[str] = []
        self._light: dict[str, tuple] = {}
        self._remap: dict[str, str] = {}

    def spool(self, ids) -> None:
        """Write the summaries of ``ids`` to disk and let them go."""
        chunk = {sid: self._mem.pop(sid) for sid in ids if sid in self._mem}
        if not chunk:
            return
        k = len(self._files)
        self._files.append(write_pickle(os.path.join(self._dir, f"summaries{k:06d}.pickle"), chunk))
        for sid, m in chunk.items():
            self._where[sid] = k
            self._light[sid] = (m.get("score", 100.0), m.get("verdict"), m.get("conformance"))

    def set_remap(self, mapping: dict[str, str]) -> None:
        """Provisional → final finding ids, applied to ``root_cause`` and ``cause_chain`` of
        every summary (spooled ones as they are read back)."""
        self._remap = mapping
        self._cached = None
        for m in self._mem.values():
            remap_summary(m, mapping)

    def scores(self) -> list[tuple]:
        """(score, verdict, conformance) of every session, in order (nothing read back)."""
        return [self._light[sid] if sid in self._light else
                (self._mem[sid].get("score", 100.0), self._mem[sid].get("verdict"),
                 self._mem[sid].get("conformance")) for sid in self._order]

    def _load(self, k: int) -> dict:
        def renumber(got: dict) -> dict:
            for m in got.values():
                remap_summary(m, self._remap)
            return got
        return self._read(k, self._files[k], renumber)

    def __getitem__(self, sid: str) -> dict:
        m = self._mem.get(sid)
        if m is not None:
            return m
        return self._load(self._where[sid])[sid]

    def __setitem__(self, sid: str, value: dict) -> None:
        if sid not in self._mem and sid not in self._where:
            self._order.append(sid)
        self._where.pop(sid, None)
        self._light.pop(sid, None)
        self._mem[sid] = value

    def __delitem__(self, sid: str) -> None:
        raise TypeError("summaries of a streamed capture are not removed")

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

