"""Sessions of a long capture kept on disk once they are judged, read back one segment at a
time by whoever renders them (reports, the timeline, the store).

When a capture is streamed in segments (analyzer/segments.py) each judged segment's sessions
are written to a temporary file (pickle) and let go; ``Analysis.sessions`` is then a
:class:`SessionSpool`: a read-only sequence whose iteration loads one segment at a time, so
that a report of hundreds of sessions is rendered in the memory of one segment. The files go
when the spool is closed or collected.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Sequence

from .sessions import Session


class SessionSpool(Sequence):
    """Judged sessions on disk, in session order.

    :meth:`extend` writes a segment's sessions (marking them ``released``: views of them are
    not cached, analyzer/analysis.py ``Analysis.view``); ``len``, iteration and indexing read
    them back (the last segment read stays in memory); :meth:`close` deletes the files.
    Raises OSError when the temporary directory cannot be written.
    """

    def __init__(self, directory: str | None = None):
        self._dir = tempfile.mkdtemp(prefix="ccs-spool-", dir=directory)
        self._files: list[str] = []
        self._starts: list[int] = []       # index of each file's first session
        self._n = 0
        self._cached: tuple[int, list[Session]] | None = None

    def extend(self, sessions: list[Session]) -> str | None:
        """Write one segment's sessions to disk; return the file's path (None: nothing to
        write). The file holds the pickled list of sessions."""
        if not sessions:
            return None
        for s in sessions:
            s.released = True
        path = os.path.join(self._dir, f"segment{len(self._files):06d}.pickle")
        with open(path, "wb") as f:
            pickle.dump(sessions, f, protocol=pickle.HIGHEST_PROTOCOL)
        self._files.append(path)
        self._starts.append(self._n)
        self._n += len(sessions)
        return path

    def _load(self, k: int) -> list[Session]:
        if self._cached is not None and self._cached[0] == k:
            return self._cached[1]
        self._cached = None                 # let the previous segment go before reading
        with open(self._files[k], "rb") as f:
            got = pickle.load(f)
        self._cached = (k, got)
        return got

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
