"""The columnar store: Parquet tables of many analysed captures, queryable with DuckDB.

``ccs-analyzer analyze DIR --store STORE`` adds the rows of each capture to ``STORE``
(docs/fleet.md "Store")::

    STORE/date=YYYY-MM-DD/sha256=<hex>/captures.parquet
                                      /sessions.parquet
                                      /findings.parquet
                                      /timeline.parquet

``date`` is the UTC date of the capture's first frame (``unknown`` when it has none); the
capture's SHA-256 is its key. A capture's four files are written into a private folder under
``STORE/.tmp/`` and moved into place with one ``os.rename``; re-analysing a capture replaces
its folder (in whichever date partition it was), so the store never holds half a capture
nor a capture twice, and appending a new day never rewrites older files. Readers glob
``STORE/*/*/<table>.parquet`` (or ``date=*/sha256=*/…``): ``.tmp`` keeps its files one
level deeper, so a crashed writer's leftovers are never read; they are removed by the next
write. Several processes (on one machine or on a shared file system) may write different
captures at once; two writers of the same capture end with exactly one copy of it. The
files are not flushed to the disk before the rename unless the store is opened with
``durable=True`` (:class:`Store`): a killed writer never matters, a power loss might.

A file that is not a capture at all (the analysis raises) gets no rows: the command line
reports it and exits 2; a damaged capture that could be analysed as far as it goes gets its
rows like any other.

The tables (column types: :data:`CAPTURES_COLUMNS`, :data:`SESSIONS_COLUMNS`,
:data:`FINDINGS_COLUMNS`, :data:`TIMELINE_BASE_COLUMNS`; every column nullable):

* ``captures`` — one row per capture: identity, size, frames, time span, when and with
  which analyzer version and profile it was analysed, verdict, conformance, score, number
  of sessions and of findings by severity.
* ``sessions`` — one row per charging session (``session`` is its id in the capture,
  ``"S1"``): outcome, phase reached, goal, verdicts, how it stopped, the root cause (rule,
  culprit, synopsis), EV and EVSE identities (EVCCID, MAC and its IEEE vendor, EVSEID),
  protocol, energy (Wh), time span (epoch s), number of findings.
* ``findings`` — one row per finding: rule, category, severity, culprit, evidence frames
  (``list<int64>``), synopsis, measured value and limit (as strings; ``unit`` apart),
  ``caused_by`` (another finding's ``id`` in the same capture), role, failure modes.
* ``timeline`` — one row per SLAC / SDP / V2GTP event (TCP and TLS events are left out):
  the columns of :func:`ccs_analyzer.analyzer.timeline.timeline_frame`; the physical
  columns (``<element>_<unit>``) are float64, and a file has only the physical columns its
  capture shows (read with ``union_by_name=true``).

pyarrow writes the files; duckdb answers :meth:`Store.query`. Both come with the ``fleet``
extra (``pip install 'ccs-analyzer[fleet]'``) and are imported only when used.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import glob
import importlib
import json
import math
import os
import re
import shutil
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from .spool import pid_alive

#: The store's tables, in the order of their files in a capture's folder.
TABLES = ("captures", "sessions", "findings", "timeline")

#: Timeline layers written to the store (TCP and TLS events stay in the reports).
TIMELINE_LAYERS = ("v2gtp", "slac", "sdp")

#: How to get the optional dependencies.
FLEET_EXTRA = "pip install 'ccs-analyzer[fleet]'"

#: Column name → type name (``string``, ``int64``, ``float64``, ``bool``, ``timestamp``
#: (µs, UTC), ``list<int64>``, ``list<string>``) of each fixed table, in file order.
CAPTURES_COLUMNS: dict[str, str] = {
    "sha256": "string", "file": "string", "path": "string", "size": "int64",
    "frames": "int64", "first_time": "float64", "last_time": "float64",
    "duration_s": "float64", "analyzed_at": "timestamp", "analyzer_version": "string",
    "profile": "string", "verdict": "string", "conformance": "string", "score": "float64",
    "sessions": "int64", "errors": "int64", "warnings": "int64", "infos": "int64",
}
SESSIONS_COLUMNS: dict[str, str] = {
    "sha256": "string", "session": "string", "protocol": "string", "outcome": "string",
    "phase_reached": "string", "goal": "string", "verdict": "string",
    "conformance": "string", "score": "float64", "stop_kind": "string",
    "stopped_by": "string", "root_cause_rule": "string", "root_cause_culprit": "string",
    "root_cause_synopsis": "string", "no_cause_visible": "bool", "explanation": "string",
    "EVCCID": "string", "ev_mac": "string", "ev_vendor": "string", "evse_mac": "string",
    "evse_vendor": "string", "EVSEID": "string", "EVSEID_text": "string",
    "energy_transfer_mode": "string",
    "payment": "string", "energy_wh": "float64", "energy_transferred": "bool",
    "start": "float64", "end": "float64", "duration_s": "float64", "basic": "bool",
    "findings": "int64",
}
FINDINGS_COLUMNS: dict[str, str] = {
    "sha256": "string", "session": "string", "id": "string", "rule": "string",
    "title": "string", "category": "string", "severity": "string", "culprit": "string",
    "first_frame": "int64", "frames": "list<int64>", "time": "float64",
    "synopsis": "string", "measured": "string", "limit": "string", "unit": "string",
    "caused_by": "string", "role": "string", "count": "int64",
    "failure_modes": "list<string>",
}
#: The timeline columns every timeline file has (then its physical columns).
TIMELINE_BASE_COLUMNS: dict[str, str] = {
    "sha256": "string", "session": "string", "frame": "int64", "time": "float64",
    "t_s": "float64", "layer": "string", "direction": "string", "name": "string",
    "protocol": "string", "ResponseCode": "string", "EVSEProcessing": "string",
    "EVSEStatusCode": "string", "EVSEIsolationStatus": "string", "EVErrorCode": "string",
    "SoC_pct": "float64", "error": "string",
}
FIXED_COLUMNS = {"captures": CAPTURES_COLUMNS, "sessions": SESSIONS_COLUMNS,
                 "findings": FINDINGS_COLUMNS}

#: Unit suffixes of the timeline's physical columns (float64).
PHYSICAL_SUFFIXES = ("_V", "_A", "_W", "_Wh", "_s", "_pct", "_Hz", "_Ohm", "_dB")

_HEX = re.compile(r"[0-9a-f]{8,128}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|unknown")
#: A ``.tmp`` entry older than this (s) is a leftover whatever its name says.
STALE_AFTER_S = 3600.0


class MissingExtra(ImportError):
    """An optional dependency of the ``fleet`` extra is not installed; the message names
    it and the command that installs it."""


def require(*modules: str) -> None:
    """Import ``modules`` (e.g. ``"pyarrow"``, ``"duckdb"``, ``"distributed"``) or raise
    :class:`MissingExtra` naming the missing ones and :data:`FLEET_EXTRA`."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtra(f"{', '.join(missing)} not installed (the 'fleet' extra): "
                           f"{FLEET_EXTRA}")


# ---------------------------------------------------------------------------- schemas
def _pa_type(name: str):
    import pyarrow as pa
    return {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
            "bool": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC"),
            "list<int64>": pa.list_(pa.int64()),
            "list<string>": pa.list_(pa.string())}[name]


def timeline_type(column: str) -> str:
    """The type name of a timeline column: base columns as :data:`TIMELINE_BASE_COLUMNS`,
    ``<element>_<unit>`` physical columns float64, any other (``CPState``, ``Contactor``)
    string."""
    if column in TIMELINE_BASE_COLUMNS:
        return TIMELINE_BASE_COLUMNS[column]
    return "float64" if column.endswith(PHYSICAL_SUFFIXES) else "string"


@functools.lru_cache(maxsize=None)
def schema(table: str, extra: tuple[str, ...] = ()):
    """The ``pyarrow.Schema`` of ``table`` (one of :data:`TABLES`); for ``timeline``,
    ``extra`` names the physical / control-pilot columns after the base columns. Every
    field is nullable. Raises KeyError for an unknown table."""
    import pyarrow as pa
    if table == "timeline":
        cols = dict(TIMELINE_BASE_COLUMNS)
        cols.update((c, timeline_type(c)) for c in extra)
    else:
        cols = FIXED_COLUMNS[table]
    return pa.schema([pa.field(n, _pa_type(t), nullable=True) for n, t in cols.items()])


# ---------------------------------------------------------------------------- rows
def _float(v):
    if v is None or isinstance(v, bool):
        return None if v is None else float(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _int(v):
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _str(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return v if isinstance(v, str) else str(v)


def _bool(v):
    return None if v is None else bool(v)


def _value_text(v):
    """A measured value or limit as text: strings as they are, anything else as JSON
    (numbers ``222.3``, booleans ``true``, lists and dicts)."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    try:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(v)


_COERCE = {"string": _str, "int64": _int, "float64": _float, "bool": _bool,
           "timestamp": lambda v: v,
           "list<int64>": lambda v: None if v is None else [int(x) for x in v],
           "list<string>": lambda v: None if v is None else [str(x) for x in v]}


def _table(rows: list[dict], table: str, extra: tuple[str, ...] = ()):
    """A pyarrow Table of ``rows`` with the table's schema (values coerced to the column
    types; absent keys are nulls)."""
    import pyarrow as pa
    sch = schema(table, extra)
    n = len(rows)
    columns: dict[str, list] = {f.name: [None] * n for f in sch}
    for i, r in enumerate(rows):  # one pass over the cells present (timelines are sparse)
        for k, v in r.items():
            col = columns.get(k)
            if col is not None:
                col[i] = v
    arrays = []
    for f in sch:
        kind = timeline_type(f.name) if table == "timeline" else FIXED_COLUMNS[table][f.name]
        values = columns[f.name]
        try:  # fast path: values already of the column's type (NaN → null)
            if kind in ("float64", "string", "int64"):
                arrays.append(pa.array(values, type=f.type, from_pandas=True))
                continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        conv = _COERCE[kind]
        arrays.append(pa.array([conv(v) for v in values], type=f.type))
    return pa.Table.from_arrays(arrays, schema=sch)


def capture_date(first_time: float | None) -> str:
    """The store partition of a capture: the UTC date (``YYYY-MM-DD``) of its first frame
    (epoch s), ``"unknown"`` when it has none."""
    if first_time is None:
        return "unknown"
    try:
        return datetime.fromtimestamp(float(first_time), tz=timezone.utc).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):
        return "unknown"


def capture_tables(analysis, analyzed_at: datetime | None = None) -> dict:
    """The store rows of one :class:`~ccs_analyzer.analyzer.analysis.Analysis`: a dict
    ``{"captures", "sessions", "findings", "timeline"}`` → ``pyarrow.Table`` with the
    schemas of :func:`schema` (``captures`` has one row; the timeline keeps the
    SLAC / SDP / V2GTP events of :func:`~ccs_analyzer.analyzer.timeline.timeline_rows`).
    ``analyzed_at``: the ``analyzed_at`` timestamp (default: now, UTC)."""
    from ccs_analyzer.analyzer import __version__
    from ccs_analyzer.dissectors.oui import vendor

    cap = analysis.capture
    sha = cap["sha256"]
    summaries = analysis.summaries
    roots = {s.get("root_cause") for s in summaries.values() if s.get("root_cause")}
    by_id: dict = {}                  # the root causes (what the sessions table names)
    per_session: dict = {}
    sev = {"error": 0, "warning": 0, "info": 0}
    frows = []
    for f in analysis.findings:       # one pass: a long capture's are read back from disk
        if f.id in roots:
            by_id[f.id] = f
        per_session[f.session] = per_session.get(f.session, 0) + 1
        sev[f.severity] = sev.get(f.severity, 0) + 1
        frames = [int(x) for x in (f.frames or ())]
        frows.append({
            "sha256": sha, "session": f.session, "id": f.id, "rule": f.rule, "title": f.title,
            "category": f.category, "severity": f.severity, "culprit": f.culprit,
            "first_frame": min(frames) if frames else None, "frames": frames, "time": f.time,
            "synopsis": f.synopsis, "measured": _value_text(f.measured),
            "limit": _value_text(f.limit), "unit": f.unit, "caused_by": f.caused_by,
            "role": f.role, "count": f.count, "failure_modes": list(f.failure_modes or ()),
        })
    when = analyzed_at or datetime.now(timezone.utc)

    captures = [{
        "sha256": sha, "file": cap.get("file"), "path": cap.get("path"), "size": cap.get("size"),
        "frames": cap.get("frames"), "first_time": cap.get("first_time"),
        "last_time": cap.get("last_time"), "duration_s": cap.get("duration_s"),
        "analyzed_at": when, "analyzer_version": __version__,
        "profile": getattr(analysis, "profile", None), "verdict": getattr(analysis, "verdict", None),
        "conformance": getattr(analysis, "conformance", None),
        "score": getattr(analysis, "score", None), "sessions": len(summaries),
        "errors": sev["error"], "warnings": sev["warning"], "infos": sev["info"],
    }]

    sessions = []
    for sid, s in summaries.items():
        stop = s.get("stop_reason") or {}
        cause = by_id.get(s.get("root_cause"))
        sessions.append({
            "sha256": sha, "session": sid, "protocol": s.get("protocol"),
            "outcome": s.get("outcome"), "phase_reached": s.get("phase_reached"),
            "goal": s.get("goal"), "verdict": s.get("verdict"),
            "conformance": s.get("conformance"), "score": s.get("score"),
            "stop_kind": stop.get("kind"), "stopped_by": s.get("stopped_by") or stop.get("by"),
            "root_cause_rule": cause.rule if cause else None,
            "root_cause_culprit": cause.culprit if cause else None,
            "root_cause_synopsis": s.get("root_cause_synopsis") or (cause.synopsis if cause else None),
            "no_cause_visible": s.get("no_cause_visible"), "explanation": s.get("explanation"),
            "EVCCID": s.get("EVCCID"), "ev_mac": s.get("ev_mac"), "ev_vendor": vendor(s.get("ev_mac")),
            "evse_mac": s.get("evse_mac"), "evse_vendor": vendor(s.get("evse_mac")),
            "EVSEID": s.get("EVSEID"), "EVSEID_text": s.get("EVSEID_text"),
            "energy_transfer_mode": s.get("energy_transfer_mode"),
            "payment": s.get("payment"), "energy_wh": s.get("energy_wh"),
            "energy_transferred": s.get("energy_transferred"), "start": s.get("start"),
            "end": s.get("end"), "duration_s": s.get("duration_s"), "basic": s.get("basic"),
            "findings": per_session.get(sid, 0),
        })

    return {"captures": _table(captures, "captures"),
            "sessions": _table(sessions, "sessions"),
            "findings": _table(frows, "findings"),
            "timeline": (timeline_table(analysis, sha) if isinstance(analysis.sessions, list)
                         else timeline_batches(analysis, sha))}


#: Rows per table of :func:`timeline_batches`.
TIMELINE_BATCH_ROWS = 50_000


def timeline_batches(analysis, sha256: str, rows: int = TIMELINE_BATCH_ROWS):
    """The ``timeline`` table of a long (spooled) analysis as a sequence of pyarrow Tables of
    at most ``rows`` rows each, sessions read back one at a time; each batch has the
    columns its rows use (:meth:`Store.put` writes them into one file with their union)."""
    from .timeline import iter_timeline_rows

    batch: list[dict] = []
    for r in iter_timeline_rows(analysis.sessions, analysis.capture_events):
        if r.get("layer") not in TIMELINE_LAYERS:
            continue
        r["sha256"] = sha256
        batch.append(r)
        if len(batch) >= rows:
            yield _timeline_of(batch)
            batch = []
    if batch:
        yield _timeline_of(batch)


def _timeline_of(rows: list[dict]):
    from .timeline import KEY_PHYSICAL

    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            if k not in TIMELINE_BASE_COLUMNS:
                seen[k] = None
    first = [c for c in KEY_PHYSICAL if c in seen]
    return _table(rows, "timeline", tuple(first + sorted(c for c in seen if c not in first)))


def _write_batches(batches, path: Path) -> None:
    """Write a sequence of ``timeline`` tables (:func:`timeline_batches`) as one Parquet
    file with the union of their columns (base, :data:`~.timeline.KEY_PHYSICAL`, the others
    sorted), one batch in memory at a time: each goes to a part file first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .timeline import KEY_PHYSICAL

    parts: list[Path] = []
    seen: dict[str, None] = {}
    for t in batches:
        part = path.with_name(f"{path.stem}.part{len(parts)}.parquet")
        pq.write_table(t, part)
        parts.append(part)
        for name in t.column_names:
            if name not in TIMELINE_BASE_COLUMNS:
                seen[name] = None
    first = [c for c in KEY_PHYSICAL if c in seen]
    sch = schema("timeline", tuple(first + sorted(c for c in seen if c not in first)))
    with pq.ParquetWriter(path, sch) as w:
        for part in parts:
            t = pq.read_table(part)
            cols = [t.column(f.name) if f.name in t.column_names else pa.nulls(len(t), f.type)
                    for f in sch]
            w.write_table(pa.Table.from_arrays(cols, schema=sch))
            part.unlink()


def timeline_table(analysis, sha256: str):
    """The ``timeline`` table of an analysis (SLAC / SDP / V2GTP events, in timeline order):
    base columns, then the physical columns present (:data:`~.timeline.KEY_PHYSICAL` first,
    the others sorted), as :func:`~ccs_analyzer.analyzer.timeline.timeline_frame` orders
    them."""
    from .timeline import KEY_PHYSICAL, timeline_rows

    rows = [r for r in timeline_rows(analysis.sessions, analysis.capture_events)
            if r.get("layer") in TIMELINE_LAYERS]
    seen: dict[str, None] = {}
    for r in rows:
        r["sha256"] = sha256
        for k in r:
            if k not in TIMELINE_BASE_COLUMNS:
                seen[k] = None
    first = [c for c in KEY_PHYSICAL if c in seen]
    extra = tuple(first + sorted(c for c in seen if c not in first))
    return _table(rows, "timeline", extra)


# ---------------------------------------------------------------------------- the store
class Store:
    """A columnar store of analysed captures in the folder ``path`` (created on the first
    write; see the module docstring for the layout and guarantees).

    ``durable``: flush each file to the disk (fsync) before it is renamed into place. The
    rename alone makes a write atomic for every reader and against a writer that crashes
    or is killed; only an operating-system crash or power loss within seconds of a write
    can then leave that capture's files empty or short (re-analyse it). ``durable=True``
    closes that window at the price of four fsyncs per capture (slow on a busy disk).

    Writing: :meth:`put` (one capture's tables, atomically). Reading: :meth:`captures`
    (the SHA-256 keys held), :meth:`connect` / :meth:`query` (DuckDB with a view per table),
    :meth:`table` (one table as a pandas DataFrame).

    The views of :meth:`connect` and :meth:`query` — ``captures``, ``sessions``,
    ``findings``, ``timeline`` — read every ``date=*/sha256=*/<table>.parquet`` file with
    ``union_by_name`` and add the hive partition column ``date`` (VARCHAR: ``YYYY-MM-DD``
    or ``unknown``); ``sha256`` is VARCHAR. A table with no file yet is an empty view with
    the table's columns. Join the tables on ``sha256`` (and ``session`` for sessions,
    findings, timeline); ``findings.caused_by`` names another finding's ``id`` of the same
    capture. Example — failure rate by phase::

        Store("fleet").query(\"\"\"
            SELECT phase_reached, count(*) AS sessions,
                   avg(CASE WHEN goal = 'not achieved' THEN 1.0 ELSE 0.0 END) AS failure_rate
            FROM sessions GROUP BY phase_reached ORDER BY sessions DESC\"\"\")
    """

    def __init__(self, path: str | os.PathLike, durable: bool = False):
        self.path = Path(path)
        self.durable = durable

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, durable={self.durable})"

    # ------------------------------------------------------------------ writing
    @property
    def tmp(self) -> Path:
        """The folder of writers' work in progress (``STORE/.tmp``)."""
        return self.path / ".tmp"

    def put(self, sha256: str, date: str, tables: dict) -> Path:
        """Store one capture's rows; return the folder that holds them.

        ``sha256``: the capture's hex SHA-256 (lowercase); ``date``: ``YYYY-MM-DD`` or
        ``unknown`` (:func:`capture_date`); ``tables``: table name → ``pyarrow.Table`` as
        :func:`capture_tables` returns, or an iterable of Tables for the timeline of a long
        capture (:func:`timeline_batches`; a missing table is written empty). The files are
        written under ``.tmp`` then renamed into ``date=<date>/sha256=<sha256>``, after the
        capture's previous folder (any date) has been moved away: the capture is either
        absent for a moment or present once, never half. Writers of the same capture at the
        same time end with one copy as long as they give the same ``date`` (they do: the
        date comes from the capture's first frame). Raises ValueError for a malformed key,
        date or table name, OSError when the file system refuses.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(sha256, str) or not _HEX.fullmatch(sha256):
            raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
        if not isinstance(date, str) or not _DATE.fullmatch(date):
            raise ValueError(f"date must be YYYY-MM-DD or 'unknown', not {date!r}")
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise ValueError(f"unknown table(s) {sorted(unknown)}; tables are {TABLES}")
        self.clean()
        work = self._workdir()
        try:
            staged = work / f"sha256={sha256}"
            staged.mkdir()
            for name in TABLES:
                t = tables.get(name)
                if t is None:
                    t = schema(name).empty_table()
                path = staged / f"{name}.parquet"
                if isinstance(t, pa.Table):
                    pq.write_table(t, path)
                else:                     # batches of a long capture (timeline_batches)
                    _write_batches(t, path)
                if self.durable:
                    _fsync(path)
            final = self.path / f"date={date}" / f"sha256={sha256}"
            final.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(100):
                for n, old in enumerate(self._folders(sha256)):
                    try:
                        os.rename(old, work / f"old{attempt}-{n}")
                    except FileNotFoundError:  # another writer moved it first
                        pass
                try:
                    os.rename(staged, final)
                    break
                except OSError as e:
                    # another writer of the same capture renamed its copy in between
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
            else:
                raise OSError(f"{final}: could not be replaced (other writers keep writing it)")
            if self.durable:
                _fsync(final.parent)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return final

    def put_analysis(self, analysis) -> Path:
        """:meth:`put` the rows of an :class:`~ccs_analyzer.analyzer.analysis.Analysis`
        (:func:`capture_tables`), keyed by its SHA-256, in the partition of its first
        frame's date."""
        return self.put(analysis.capture["sha256"], capture_date(analysis.capture.get("first_time")),
                        capture_tables(analysis))

    def remove(self, sha256: str) -> bool:
        """Remove a capture's rows; True when it was held."""
        if not _HEX.fullmatch(sha256 or ""):
            raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
        found = False
        work = self._workdir()
        try:
            for n, old in enumerate(self._folders(sha256)):
                try:
                    os.rename(old, work / f"old-{n}")
                    found = True
                except FileNotFoundError:
                    pass
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return found

    def clean(self, stale_after_s: float = STALE_AFTER_S) -> int:
        """Remove the ``.tmp`` entries of writers that are gone: those named after a
        process of this host that no longer runs, and any older than ``stale_after_s``.
        Returns how many were removed. (Called by every :meth:`put`.)"""
        try:
            entries = list(os.scandir(self.tmp))
        except FileNotFoundError:
            return 0
        host = socket.gethostname()
        now = time.time()
        removed = 0
        for e in entries:
            stale = False
            parts = e.name.rsplit(".", 2)
            if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
                stale = not pid_alive(int(parts[1]))
            if not stale:
                try:
                    stale = now - e.stat(follow_symlinks=False).st_mtime > stale_after_s
                except FileNotFoundError:
                    continue
            if stale:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)
                removed += 1
        return removed

    def _workdir(self) -> Path:
        """A new private folder under ``.tmp``, named ``<host>.<pid>.<random>`` so that
        :meth:`clean` can tell a dead writer's leftovers from a live writer's work."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        work = self.tmp / f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex}"
        work.mkdir()
        return work

    def _folders(self, sha256: str) -> list[Path]:
        return sorted(Path(p) for p in glob.glob(os.path.join(
            glob.escape(str(self.path)), "date=*", f"sha256={sha256}")))

    # ------------------------------------------------------------------ reading
    def captures(self) -> list[str]:
        """The SHA-256 of every capture held, sorted (a capture appears once)."""
        out = []
        for p in glob.glob(os.path.join(glob.escape(str(self.path)), "date=*", "sha256=*")):
            if os.path.isfile(os.path.join(p, "captures.parquet")):
                out.append(os.path.basename(p)[len("sha256="):])
        return sorted(out)

    def files(self, table: str) -> list[str]:
        """The Parquet files of ``table`` (one of :data:`TABLES`), sorted."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables are {TABLES}")
        return sorted(glob.glob(os.path.join(glob.escape(str(self.path)), "date=*", "sha256=*",
                                             f"{table}.parquet")))

    def pattern(self, table: str) -> str:
        """The glob of ``table``'s files as DuckDB's ``read_parquet`` takes it:
        ``STORE/date=*/sha256=*/<table>.parquet`` (the store's path is not escaped)."""
        return os.path.join(str(self.path), "date=*", "sha256=*", f"{table}.parquet")

    def connect(self, database: str = ":memory:"):
        """A DuckDB connection with the views ``captures``, ``sessions``, ``findings`` and
        ``timeline`` over the store (see the class docstring). Raises :class:`MissingExtra`
        without duckdb. The caller closes it."""
        require("duckdb", "pyarrow")
        import duckdb
        con = duckdb.connect(database)
        for table in TABLES:
            if self.files(table):
                pattern = self.pattern(table).replace("'", "''")
                con.execute(
                    f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', "
                    "hive_partitioning=true, union_by_name=true, "
                    "hive_types={'date': 'VARCHAR', 'sha256': 'VARCHAR'})")
            else:
                import pyarrow as pa
                empty = schema(table).empty_table().append_column(
                    "date", pa.array([], type=pa.string()))
                con.register(f"_empty_{table}", empty)
                con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM _empty_{table}")
        return con

    def query(self, sql: str, params=None):
        """Run ``sql`` (DuckDB SQL over the views ``captures``, ``sessions``, ``findings``,
        ``timeline``) and return a pandas DataFrame. A query that meets a capture being
        replaced by a concurrent writer (a file vanished between glob and read) is run
        again, up to three times. Raises :class:`MissingExtra` without duckdb and
        ``duckdb.Error`` for a bad query."""
        require("duckdb", "pyarrow")
        import duckdb
        for attempt in range(3):
            con = self.connect()
            try:
                return con.execute(sql, params).df() if params is not None else con.execute(sql).df()
            except duckdb.IOException:
                if attempt == 2:
                    raise
            finally:
                con.close()
        raise AssertionError("unreachable")

    def table(self, name: str):
        """One table of the store as a pandas DataFrame (``SELECT * FROM name``)."""
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}; tables are {TABLES}")
        return self.query(f"SELECT * FROM {name}")


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk, so that a rename after it
    never exposes a file whose bytes a power loss would lose. Best effort."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
