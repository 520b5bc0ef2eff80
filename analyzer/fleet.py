"""Fleet questions over a store of analysed captures (``ccs-analyzer fleet STORE``, the report
browser's batch summary): failure rate by phase reached, by root cause and by rule, by EV ×
EVSE, over time, and the observed occurrence of each ChargeX PFMEA failure mode
(../shared/FAILURE_MODES.md) across the fleet.

The store is the Parquet layout ``ccs-analyzer analyze DIR --store STORE`` writes
(docs/fleet.md "Store"): ``STORE/date=YYYY-MM-DD/sha256=<hex>/{captures,sessions,findings,
timeline}.parquet``, read through analyzer/store.py's DuckDB views (:func:`connect`).
Every question is one SQL query; nothing is loaded into Python but the answers.

Counting (docs/fleet.md "Fleet questions"):

* a session **failed** when its goal is ``not achieved`` (docs/scoring.md); ``achieved`` and
  unknown goals do not count as failures;
* **crosstalk** sessions (outcome ``crosstalk``: another charger's SLAC heard over the
  powerline) are not sessions of the fleet: they are counted apart and left out of every
  other number, their findings too;
* the **window** (``since`` / ``until``, UTC days, both inclusive) selects sessions by the
  UTC day of their start (the capture's first packet when a session has no start time) and
  captures by the day of their first packet or by holding a session in the window;
  capture-scope findings (no session) count with their capture;
* every ratio is ``{"n", "of", "pct"}``: ``n`` of ``of`` things (``pct`` = 100·n/of rounded
  to 0.1, None when ``of`` is 0); each section's ``denominator`` text says what ``of``
  counts.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

#: JSON shape of :func:`fleet_summary` (docs/fleet.md "Fleet questions").
SCHEMA = "ccs-analyzer.fleet/1"

#: The columns the fleet questions read, with their DuckDB types: a column missing from
#: every file of a table (an older store) reads as NULL.
COLUMNS: dict[str, dict[str, str]] = {
    "captures": {"sha256": "VARCHAR", "file": "VARCHAR", "path": "VARCHAR",
                 "first_time": "DOUBLE", "last_time": "DOUBLE", "verdict": "VARCHAR"},
    "sessions": {"sha256": "VARCHAR", "session": "VARCHAR", "protocol": "VARCHAR",
                 "outcome": "VARCHAR", "phase_reached": "VARCHAR", "goal": "VARCHAR",
                 "verdict": "VARCHAR", "root_cause_rule": "VARCHAR",
                 "root_cause_culprit": "VARCHAR", "root_cause_synopsis": "VARCHAR",
                 "EVCCID": "VARCHAR", "ev_mac": "VARCHAR", "ev_vendor": "VARCHAR",
                 "EVSEID": "VARCHAR", "EVSEID_text": "VARCHAR", "evse_mac": "VARCHAR",
                 "evse_vendor": "VARCHAR", "start": "DOUBLE", "end": "DOUBLE"},
    "findings": {"sha256": "VARCHAR", "session": "VARCHAR", "id": "VARCHAR", "rule": "VARCHAR",
                 "title": "VARCHAR", "category": "VARCHAR", "severity": "VARCHAR",
                 "culprit": "VARCHAR", "time": "DOUBLE", "count": "BIGINT",
                 "failure_modes": "VARCHAR[]"},
}

DENOMINATORS = {
    "totals": "sessions in the window, crosstalk excluded",
    "by_phase": "failure_rate: of the sessions that reached this phase last; "
                "share_of_failures: of all failed sessions",
    "by_root_cause": "share_of_failures: of all failed sessions",
    "by_rule": "sessions: of all sessions; fail_rate: of the sessions showing the rule; "
               "captures: of all captures",
    "by_pair": "failure_rate: of this EV × EVSE pair's sessions",
    "by_day": "failure_rate: of that UTC day's sessions",
    "failure_modes": "sessions: of all sessions; failed_sessions: of all failed sessions; "
                     "captures: of all captures; one_in: all sessions / sessions showing it",
    "pfmea_rows": "as failure_modes, a session counted once per PFMEA row whichever of the "
                  "row's IDs its findings cite",
}


class FleetError(ValueError):
    """A fleet question that cannot be asked: a date that is not ``YYYY-MM-DD``, a window
    whose start is after its end, a store whose files DuckDB cannot read."""


# ---------------------------------------------------------------------------- the store
def store_files(store_path: str | os.PathLike, table: str) -> list[str]:
    """The Parquet files of one table of the store (``date=*/sha256=*/<table>.parquet``,
    analyzer/store.py :meth:`~ccs_analyzer.analyzer.store.Store.files`), sorted; [] when
    there are none."""
    from ccs_analyzer.analyzer.store import Store
    return Store(store_path).files(table)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(store_path: str | os.PathLike):
    """A DuckDB connection over the store: the views ``captures``, ``sessions``,
    ``findings``, ``timeline`` of :meth:`ccs_analyzer.analyzer.store.Store.connect` (the one
    reader of the store), and the temporary tables ``captures_n``, ``sessions_n``,
    ``findings_n``: exactly the :data:`COLUMNS` the fleet questions read, with their types
    (NULL where an older store lacks a column), read from the files once. The caller closes
    it.

    Raises FileNotFoundError when ``store_path`` does not exist, NotADirectoryError when it
    is not a folder, ImportError (:class:`~ccs_analyzer.analyzer.store.MissingExtra`) when
    duckdb or pyarrow is not installed (``pip install 'ccs-analyzer[fleet]'``)."""
    from ccs_analyzer.analyzer.store import Store

    root = os.fspath(store_path)
    if not os.path.exists(root):
        raise FileNotFoundError(f"{root}: no such store")
    if not os.path.isdir(root):
        raise NotADirectoryError(f"{root}: a store is a folder")
    con = Store(root).connect()
    try:
        for table, cols in COLUMNS.items():
            have = {r[0].lower() for r in con.execute(f"DESCRIBE {table}").fetchall()}
            sel = ", ".join(f"CAST({_q(c) if c.lower() in have else 'NULL'} AS {t}) AS {_q(c)}"
                            for c, t in cols.items())
            con.execute(f"CREATE TEMP TABLE {table}_n AS SELECT {sel} FROM {table}")
    except BaseException:
        con.close()
        raise
    return con


# ---------------------------------------------------------------------------- PFMEA rows
def shared_dir() -> Path:
    """Where ../shared is: ``$CCS_SHARED`` or the folder ``shared`` next to the repository."""
    env = os.environ.get("CCS_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared"


_ROW_IDS = re.compile(r"^(UC\d)\s+(\d+)(?:\s*[–-]\s*(\d+))?$")
_CAUSE = re.compile(r"(?:^|;\s*)(\d+)\s+")


def parse_failure_modes(text: str) -> dict[tuple[str, int], dict]:
    """The PFMEA rows of FAILURE_MODES.md's main table, by ``(use case, id)`` for every ID
    a row covers: ``{"row": "UC2 100–103", "step", "failure_mode", "effect", "severity"
    (the source's text, e.g. "C=8 U=1 Avg=4.5"), "severity_avg" (float or None; Avg, or
    UC1's single S),
    "cause" (the cause of this ID, or None), "observable", "lines"}``; a step the source
    abbreviates to its number ("7", "9 (same)") gets the text of that step's first row.
    Rows of other tables (fewer columns) are ignored."""
    out: dict[tuple[str, int], dict] = {}
    steps: dict[str, str] = {}          # "7" → "7 V2G session handshake" (later rows say "7")
    for line in text.splitlines():
        if not line.startswith("| UC"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 8:
            continue
        m = _ROW_IDS.match(cells[0])
        if not m:
            continue
        uc, lo = m.group(1), int(m.group(2))
        hi = int(m.group(3) or lo)
        causes: dict[int, str] = {}
        pos = [(mm.start(), mm.end(), int(mm.group(1))) for mm in _CAUSE.finditer(cells[5])]
        for i, (_s, e, n) in enumerate(pos):
            stop = pos[i + 1][0] if i + 1 < len(pos) else len(cells[5])
            causes[n] = cells[5][e:stop].strip().rstrip(";").strip()
        step = re.match(r"^(\d+)(?:\s*\(same\))?$", cells[1])
        if step:
            cells[1] = steps.get(f"{m.group(1)} {step.group(1)}", cells[1])
        else:
            steps[f"{m.group(1)} {cells[1].split()[0]}"] = cells[1]
        sev = re.search(r"(?:Avg|S)=([\d.]+)", cells[4])
        for n in range(lo, hi + 1):
            out[(uc, n)] = {"row": cells[0], "step": cells[1], "failure_mode": cells[2],
                            "effect": cells[3], "severity": cells[4],
                            "severity_avg": float(sev.group(1)) if sev else None,
                            "cause": causes.get(n), "observable": cells[6], "lines": cells[7]}
    return out


def pfmea_rows() -> tuple[dict[tuple[str, int], dict], str | None]:
    """The PFMEA rows by ``(use case, id)`` and where they came from: FAILURE_MODES.md in
    :func:`shared_dir` when readable (its path), else the rows the rules cite
    (rules/failure_modes.py: ``"rules/failure_modes.py"``, no causes), else ({}, None)."""
    path = shared_dir() / "FAILURE_MODES.md"
    try:
        rows = parse_failure_modes(path.read_text(encoding="utf-8"))
        if rows:
            return rows, str(path)
    except OSError:
        pass
    try:
        from ccs_analyzer.rules.failure_modes import ROWS
    except ImportError:
        return {}, None
    out = {}
    for r in ROWS:
        for n in range(r.ids[0], r.ids[1] + 1):
            out[("UC2", n)] = {"row": f"UC2 {r.ids[0]}–{r.ids[1]}" if r.ids[1] != r.ids[0] else f"UC2 {n}",
                               "step": r.step, "failure_mode": r.mode, "effect": r.effect,
                               "severity": f"C={r.customer:g} U={r.utility:g} Avg={r.avg:g}",
                               "severity_avg": float(r.avg), "cause": None, "observable": None,
                               "lines": None}
    return out, "rules/failure_modes.py"


def _fm_ids(ref: str) -> tuple[str, list[int]] | None:
    """``"UC2 156"`` → ("UC2", [156]); ``"UC2 237-239"`` → ("UC2", [237, 238, 239])."""
    m = _ROW_IDS.match(ref.strip())
    if not m:
        return None
    lo = int(m.group(2))
    hi = int(m.group(3) or lo)
    return m.group(1), list(range(lo, max(lo, hi) + 1))


def pfmea_entry(ref: str, rows: dict[tuple[str, int], dict]) -> dict | None:
    """The PFMEA text of a cited failure mode (``"UC2 100"``, ``"UC2 237-239"``): its row's
    fields, ``cause`` joined over the IDs a range cites; None when not in ``rows``."""
    ids = _fm_ids(ref)
    if not ids:
        return None
    uc, nums = ids
    hit = [rows[(uc, n)] for n in nums if (uc, n) in rows]
    if not hit:
        return None
    e = dict(hit[0])
    causes = [f"{n} {rows[(uc, n)]['cause']}" if len(nums) > 1 else rows[(uc, n)]["cause"]
              for n in nums if (uc, n) in rows and rows[(uc, n)]["cause"]]
    e["cause"] = "; ".join(causes) or None
    return e


def _fm_key(ref: str):
    ids = _fm_ids(ref)
    return (0, ids[0], ids[1][0], ref) if ids else (1, "", 0, ref)


def rule_failure_modes() -> dict[str, tuple[str, ...]]:
    """Rule code → the failure modes it cites, for every rule of the pack (rules/*.py
    ``failure_modes``); {} when the pack cannot be loaded."""
    try:
        from ccs_analyzer.rules import all_rules
        return {r.code: tuple(r.failure_modes) for r in all_rules() if r.failure_modes}
    except Exception:      # a broken third-party rule must not stop the fleet view
        return {}


# ---------------------------------------------------------------------------- helpers
def rate(n: int, of: int) -> dict:
    """A ratio that says its denominator: ``{"n": n, "of": of, "pct": 100·n/of rounded to
    0.1 (None when of is 0)}``."""
    return {"n": int(n), "of": int(of), "pct": round(100.0 * n / of, 1) if of else None}


def parse_day(text: str | _dt.date | None, what: str = "date") -> _dt.date | None:
    """``YYYY-MM-DD`` (or a date) → date; None stays None. FleetError otherwise."""
    if text is None or isinstance(text, _dt.date):
        return text
    try:
        return _dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise FleetError(f"{what} {text!r}: expected YYYY-MM-DD") from None


def _epoch(d: _dt.date) -> float:
    return _dt.datetime(d.year, d.month, d.day, tzinfo=_dt.timezone.utc).timestamp()


def iso_utc(t: float | None) -> str | None:
    """Epoch seconds → ``2026-01-02T03:04:05Z`` (None for None or a time no calendar shows)."""
    if t is None:
        return None
    try:
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def _rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _window_sql(col: str, lo: float | None, hi: float | None) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{col} >= {lo!r}")
    if hi is not None:
        parts.append(f"{col} < {hi!r}")
    return " AND ".join(parts) or "true"


DAY_SQL = ("CASE WHEN {t} IS NULL THEN NULL ELSE strftime(DATE '1970-01-01' + "
           "CAST(floor({t} / 86400) AS INTEGER), '%Y-%m-%d') END")


def _views(con, lo: float | None, hi: float | None, rule_fm: dict[str, tuple[str, ...]]) -> None:
    """The window's tables: ``s_all`` (sessions in the window, crosstalk too, with ``t0`` =
    start or the capture's first packet), ``s`` (without crosstalk, ``failed`` flag), ``c``
    (captures), ``f`` (findings of ``s`` and capture-scope findings of ``c``, with ``fms``
    = their failure modes — the rule pack's when the store has none — and ``t``)."""
    con.execute("CREATE TEMP TABLE rule_fm (rule VARCHAR, fms VARCHAR[])")
    if rule_fm:
        con.executemany("INSERT INTO rule_fm VALUES (?, ?)", [(k, list(v)) for k, v in rule_fm.items()])
    con.execute(f"""CREATE TEMP TABLE s_all AS
        SELECT x.*, coalesce(x."start", cap.first_time) AS t0
        FROM sessions_n x LEFT JOIN (SELECT sha256, min(first_time) AS first_time
                                     FROM captures_n GROUP BY sha256) cap USING (sha256)
        WHERE {_window_sql('coalesce(x."start", cap.first_time)', lo, hi)}""")
    con.execute("""CREATE TEMP TABLE s AS
        SELECT *, coalesce(goal = 'not achieved', false) AS failed FROM s_all
        WHERE outcome IS DISTINCT FROM 'crosstalk'""")
    con.execute(f"""CREATE TEMP TABLE c AS
        SELECT * FROM captures_n
        WHERE ({_window_sql('first_time', lo, hi)}) OR sha256 IN (SELECT sha256 FROM s_all)""")
    con.execute("""CREATE TEMP TABLE f AS
        SELECT x.*, coalesce(x.failure_modes, rm.fms) AS fms,
               coalesce(x."time", s.t0, c.first_time) AS t, coalesce(s.failed, false) AS failed,
               CASE WHEN x.session IS NULL THEN NULL ELSE x.sha256 || '/' || x.session END AS skey
        FROM findings_n x
        JOIN (SELECT DISTINCT sha256, first_time FROM c) c ON c.sha256 = x.sha256
        LEFT JOIN s ON s.sha256 = x.sha256 AND s.session = x.session
        LEFT JOIN rule_fm rm ON rm.rule = x.rule
        WHERE x.session IS NULL OR s.session IS NOT NULL""")


# ---------------------------------------------------------------------------- the questions
def fleet_summary(store_path: str | os.PathLike, since: str | _dt.date | None = None,
                  until: str | _dt.date | None = None) -> dict:
    """The fleet questions over a store, as one JSON-able dict (docs/fleet.md "Fleet
    questions" has an example):

    ``{"schema", "kind": "fleet", "store", "generated_at", "window": {"since", "until",
    "basis"}, "pfmea_source", "empty", "message", "denominators",
    "totals": {"captures", "sessions", "crosstalk", "failed", "achieved", "unknown",
    "failure_rate", "verdicts"}, "by_phase": [...], "by_root_cause": [...], "by_rule": [...],
    "by_pair": [...], "by_day": [...], "failure_modes": [...], "pfmea_rows": [...]}`` — ratios are
    ``{"n", "of", "pct"}`` (:func:`rate`), times epoch seconds (UTC) with an ``_utc`` ISO
    twin. ``since`` / ``until``: UTC days (``YYYY-MM-DD`` or date), both inclusive, None for
    open. A store without captures gives zeros, ``empty`` True and a ``message``.

    Raises FileNotFoundError / NotADirectoryError for a store path that is not a folder,
    FleetError for a bad window or unreadable store files, ImportError without duckdb."""
    import duckdb

    d_since, d_until = parse_day(since, "--since"), parse_day(until, "--until")
    if d_since and d_until and d_since > d_until:
        raise FleetError(f"--since {d_since} is after --until {d_until}")
    lo = _epoch(d_since) if d_since else None
    hi = _epoch(d_until + _dt.timedelta(days=1)) if d_until else None
    rule_fm = rule_failure_modes()
    rows, pfmea_source = pfmea_rows()
    for attempt in range(3):
        con = None
        try:
            con = connect(store_path)
            _views(con, lo, hi, rule_fm)
            out = _answers(con, rule_fm, rows)
            break
        except duckdb.IOException as e:     # a capture replaced by a writer meanwhile: again
            if attempt == 2:
                raise FleetError(f"{os.fspath(store_path)}: cannot read the store: {e}") from None
        except duckdb.Error as e:
            raise FleetError(f"{os.fspath(store_path)}: cannot read the store: {e}") from None
        finally:
            if con is not None:
                con.close()
    empty = not store_files(store_path, "captures")
    message = None
    if empty:
        message = (f"the store {os.fspath(store_path)} holds no captures (no "
                   "date=*/sha256=*/captures.parquet); fill it with "
                   f"`ccs-analyzer analyze DIR --store {os.fspath(store_path)}`")
    elif out["totals"]["captures"] == 0:
        message = "no captures in the window"
    out = {"schema": SCHEMA, "kind": "fleet", "store": os.path.abspath(os.fspath(store_path)),
           "generated_at": iso_utc(_dt.datetime.now(_dt.timezone.utc).timestamp()),
           "window": {"since": d_since.isoformat() if d_since else None,
                      "until": d_until.isoformat() if d_until else None,
                      "basis": "UTC day of the session start (the capture's first packet when "
                               "the session has none); both ends inclusive"},
           "pfmea_source": pfmea_source, "empty": empty, "message": message,
           "denominators": DENOMINATORS, **out}
    return out


def _answers(con, rule_fm: dict[str, tuple[str, ...]], pfmea: dict) -> dict:
    from ccs_analyzer.analyzer.outcome import PHASES

    t = _rows(con, """SELECT (SELECT count(*) FROM c) AS captures, count(*) AS sessions,
        count(*) FILTER (WHERE failed) AS failed,
        count(*) FILTER (WHERE goal = 'achieved') AS achieved,
        (SELECT count(*) FROM s_all WHERE outcome = 'crosstalk') AS crosstalk FROM s""")[0]
    n_s, n_f, n_c = t["sessions"], t["failed"], t["captures"]
    verdicts = {r["v"]: r["n"] for r in _rows(con, "SELECT coalesce(verdict, '?') AS v, count(*) AS n "
                                                   "FROM c GROUP BY 1 ORDER BY 2 DESC, 1")}
    totals = {"captures": n_c, "sessions": n_s, "crosstalk": t["crosstalk"], "failed": n_f,
              "achieved": t["achieved"], "unknown": n_s - n_f - t["achieved"],
              "failure_rate": rate(n_f, n_s), "verdicts": verdicts}

    # -- by phase reached
    order = {p: i for i, p in enumerate(PHASES)}
    outcomes: dict[str, dict] = {}
    for r in _rows(con, """SELECT coalesce(phase_reached, '(none)') AS phase,
            coalesce(outcome, '?') AS outcome, count(*) AS n FROM s GROUP BY 1, 2 ORDER BY 3 DESC, 2"""):
        outcomes.setdefault(r["phase"], {})[r["outcome"]] = r["n"]
    by_phase = []
    for r in _rows(con, """SELECT coalesce(phase_reached, '(none)') AS phase, count(*) AS sessions,
            count(*) FILTER (WHERE failed) AS failed FROM s GROUP BY 1"""):
        by_phase.append({"phase": r["phase"], "sessions": r["sessions"], "failed": r["failed"],
                         "failure_rate": rate(r["failed"], r["sessions"]),
                         "share_of_failures": rate(r["failed"], n_f),
                         "outcomes": outcomes.get(r["phase"], {})})
    by_phase.sort(key=lambda p: (order.get(p["phase"], len(order)), p["phase"]))

    # -- rule titles (findings first, the rule pack for rules without findings)
    titles = {r["rule"]: r for r in _rows(con, """SELECT rule, min(title) AS title,
        min(category) AS category, min(severity) AS severity, min(culprit) AS culprit
        FROM findings_n GROUP BY rule""")}
    try:
        from ccs_analyzer.rules import all_rules
        pack = {r.code: r for r in all_rules()}
    except Exception:
        pack = {}

    def title(code):
        if code in titles and titles[code]["title"]:
            return titles[code]["title"]
        return pack[code].title if code in pack else None

    # -- by root cause (rule and culprit)
    by_root = []
    for r in _rows(con, """SELECT root_cause_rule AS rule, root_cause_culprit AS culprit,
            count(*) AS sessions, count(*) FILTER (WHERE failed) AS failed,
            min(root_cause_synopsis) AS example FROM s WHERE root_cause_rule IS NOT NULL
            GROUP BY 1, 2 ORDER BY failed DESC, sessions DESC, rule, culprit"""):
        by_root.append({**r, "title": title(r["rule"]), "share_of_failures": rate(r["failed"], n_f)})
    none = _rows(con, "SELECT count(*) AS n FROM s WHERE failed AND root_cause_rule IS NULL")[0]["n"]
    if none:
        by_root.append({"rule": None, "culprit": None, "sessions": none, "failed": none,
                        "example": None, "title": "(no cause visible in the capture)",
                        "share_of_failures": rate(none, n_f)})

    # -- by rule, over all findings
    root_n = {r["rule"]: r["n"] for r in _rows(con, """SELECT root_cause_rule AS rule, count(*) AS n
        FROM s WHERE root_cause_rule IS NOT NULL GROUP BY 1""")}
    by_rule = []
    for r in _rows(con, """SELECT rule, min(title) AS title, min(category) AS category,
            min(severity) AS severity, min(culprit) AS culprit, max(fms) AS fms, count(*) AS findings,
            sum(coalesce("count", 1)) AS occurrences, count(DISTINCT skey) AS sessions,
            count(DISTINCT skey) FILTER (WHERE failed) AS failed_sessions,
            count(DISTINCT sha256) AS captures, min(t) AS first_seen, max(t) AS last_seen
            FROM f GROUP BY rule ORDER BY failed_sessions DESC, sessions DESC, occurrences DESC, rule"""):
        by_rule.append({"rule": r["rule"], "title": r["title"] or title(r["rule"]),
                        "category": r["category"], "severity": r["severity"], "culprit": r["culprit"],
                        "findings": r["findings"], "occurrences": int(r["occurrences"] or 0),
                        "sessions": rate(r["sessions"], n_s),
                        "failed_sessions": r["failed_sessions"],
                        "fail_rate": rate(r["failed_sessions"], r["sessions"]),
                        "root_cause": root_n.get(r["rule"], 0),
                        "captures": rate(r["captures"], n_c),
                        "failure_modes": list(r["fms"] or rule_fm.get(r["rule"], ())),
                        "first_seen": r["first_seen"], "first_seen_utc": iso_utc(r["first_seen"]),
                        "last_seen": r["last_seen"], "last_seen_utc": iso_utc(r["last_seen"])})

    # -- by EV × EVSE
    pair_sql = """coalesce(EVCCID, ev_mac, ev_vendor, '(unknown EV)') AS ev,
        CASE WHEN EVCCID IS NOT NULL THEN 'EVCCID' WHEN ev_mac IS NOT NULL THEN 'MAC'
             WHEN ev_vendor IS NOT NULL THEN 'vendor' END AS ev_by,
        coalesce(EVSEID_text, EVSEID, evse_mac, evse_vendor, '(unknown EVSE)') AS evse,
        CASE WHEN coalesce(EVSEID_text, EVSEID) IS NOT NULL THEN 'EVSEID'
             WHEN evse_mac IS NOT NULL THEN 'MAC'
             WHEN evse_vendor IS NOT NULL THEN 'vendor' END AS evse_by"""
    roots: dict[tuple, dict] = {}
    for r in _rows(con, f"""SELECT {pair_sql}, root_cause_rule AS rule, count(*) AS n FROM s
            WHERE root_cause_rule IS NOT NULL GROUP BY ALL ORDER BY n DESC, rule"""):
        roots.setdefault((r["ev"], r["evse"]), {})[r["rule"]] = r["n"]
    by_pair = []
    for r in _rows(con, f"""SELECT {pair_sql}, min(ev_vendor) AS ev_vendor, min(ev_mac) AS ev_mac,
            min(evse_vendor) AS evse_vendor, min(evse_mac) AS evse_mac, count(*) AS sessions,
            count(*) FILTER (WHERE failed) AS failed, count(DISTINCT sha256) AS captures
            FROM s GROUP BY ev, ev_by, evse, evse_by
            ORDER BY failed DESC, sessions DESC, ev, evse"""):
        by_pair.append({"ev": r["ev"], "ev_by": r["ev_by"],
                        "ev_vendor": r["ev_vendor"] or mac_vendor(r["ev_mac"]),
                        "evse": r["evse"], "evse_by": r["evse_by"],
                        "evse_vendor": r["evse_vendor"] or mac_vendor(r["evse_mac"]),
                        "sessions": r["sessions"], "failed": r["failed"],
                        "failure_rate": rate(r["failed"], r["sessions"]), "captures": r["captures"],
                        "root_causes": roots.get((r["ev"], r["evse"]), {})})

    # -- over time
    by_day = []
    for r in _rows(con, f"""SELECT {DAY_SQL.format(t='t0')} AS day, count(*) AS sessions,
            count(*) FILTER (WHERE failed) AS failed, count(DISTINCT sha256) AS captures
            FROM s GROUP BY 1 ORDER BY 1 NULLS LAST"""):
        by_day.append({"day": r["day"], "sessions": r["sessions"], "failed": r["failed"],
                       "captures": r["captures"], "failure_rate": rate(r["failed"], r["sessions"])})

    # -- per PFMEA failure mode
    seen = {r["fm"]: r for r in _rows(con, """SELECT fm, count(*) AS findings,
            count(DISTINCT skey) AS sessions, count(DISTINCT skey) FILTER (WHERE failed) AS failed_sessions,
            count(DISTINCT sha256) AS captures, min(t) AS first_seen, max(t) AS last_seen
            FROM (SELECT *, unnest(fms) AS fm FROM f) GROUP BY fm""")}
    per_rule: dict[str, dict[str, dict]] = {}
    for r in _rows(con, """SELECT fm, rule, count(*) AS findings, count(DISTINCT skey) AS sessions
            FROM (SELECT *, unnest(fms) AS fm FROM f) GROUP BY fm, rule"""):
        per_rule.setdefault(r["fm"], {})[r["rule"]] = r
    citing: dict[str, set] = {}
    for code, fms in rule_fm.items():
        for fm in fms:
            citing.setdefault(fm, set()).add(code)
    failure_modes = []
    for fm in sorted(set(citing) | set(seen), key=_fm_key):
        r = seen.get(fm) or {"findings": 0, "sessions": 0, "failed_sessions": 0, "captures": 0,
                             "first_seen": None, "last_seen": None}
        codes = sorted(citing.get(fm, set()) | set(per_rule.get(fm, {})))
        failure_modes.append({
            "id": fm, "pfmea": pfmea_entry(fm, pfmea),
            "rules": [{"rule": c, "title": title(c),
                       "findings": per_rule.get(fm, {}).get(c, {}).get("findings", 0),
                       "sessions": per_rule.get(fm, {}).get(c, {}).get("sessions", 0)} for c in codes],
            "findings": r["findings"], "sessions": rate(r["sessions"], n_s),
            "failed_sessions": rate(r["failed_sessions"], n_f), "captures": rate(r["captures"], n_c),
            "one_in": round(n_s / r["sessions"], 1) if r["sessions"] else None,
            "first_seen": r["first_seen"], "first_seen_utc": iso_utc(r["first_seen"]),
            "last_seen": r["last_seen"], "last_seen_utc": iso_utc(r["last_seen"])})
    failure_modes.sort(key=lambda x: (-x["sessions"]["n"], -x["captures"]["n"], _fm_key(x["id"])))

    # -- per PFMEA row (the IDs a row covers taken together: one session counted once)
    row_of = {x["id"]: (x["pfmea"] or {}).get("row") or x["id"] for x in failure_modes}
    con.execute("CREATE TEMP TABLE fm_row (fm VARCHAR, pfmea_row VARCHAR)")
    if row_of:
        con.executemany("INSERT INTO fm_row VALUES (?, ?)", list(row_of.items()))
    seen_rows = {r["pfmea_row"]: r for r in _rows(con, """SELECT fr.pfmea_row, count(DISTINCT fid) AS findings,
            count(DISTINCT skey) AS sessions, count(DISTINCT skey) FILTER (WHERE failed) AS failed_sessions,
            count(DISTINCT sha256) AS captures, min(t) AS first_seen, max(t) AS last_seen
            FROM (SELECT *, sha256 || '/' || coalesce(id, '') AS fid, unnest(fms) AS fm FROM f) x
            JOIN fm_row fr USING (fm) GROUP BY fr.pfmea_row""")}
    rows_out: dict[str, dict] = {}
    for x in failure_modes:
        key = row_of[x["id"]]
        e = rows_out.get(key)
        if e is None:
            r = seen_rows.get(key) or {"findings": 0, "sessions": 0, "failed_sessions": 0,
                                       "captures": 0, "first_seen": None, "last_seen": None}
            p = x["pfmea"] or {}
            e = rows_out[key] = {
                "row": key, "step": p.get("step"), "failure_mode": p.get("failure_mode"),
                "effect": p.get("effect"), "severity": p.get("severity"),
                "severity_avg": p.get("severity_avg"), "ids": [], "rules": [], "rules_seen": [],
                "findings": r["findings"], "sessions": rate(r["sessions"], n_s),
                "failed_sessions": rate(r["failed_sessions"], n_f),
                "captures": rate(r["captures"], n_c),
                "one_in": round(n_s / r["sessions"], 1) if r["sessions"] else None,
                "first_seen": r["first_seen"], "first_seen_utc": iso_utc(r["first_seen"]),
                "last_seen": r["last_seen"], "last_seen_utc": iso_utc(r["last_seen"])}
        e["ids"].append(x["id"])
        e["rules"] = sorted(set(e["rules"]) | {y["rule"] for y in x["rules"]})
        e["rules_seen"] = sorted(set(e["rules_seen"]) | {y["rule"] for y in x["rules"] if y["findings"]})
    by_row = sorted(rows_out.values(), key=lambda e: (-e["sessions"]["n"], -e["captures"]["n"],
                                                      _fm_key(e["row"])))
    for e in by_row:
        e["ids"].sort(key=_fm_key)
    return {"totals": totals, "by_phase": by_phase, "by_root_cause": by_root, "by_rule": by_rule,
            "by_pair": by_pair, "by_day": by_day, "failure_modes": failure_modes,
            "pfmea_rows": by_row}


def mac_vendor(mac: str | None) -> str | None:
    """The vendor of a MAC address ``aa:bb:cc:dd:ee:ff`` for the fleet tables: Wireshark's
    manuf name, else its OUI ``aa:bb:cc`` (reports/oui.py ``vendor``); None without an
    address."""
    if not mac:
        return None
    from ccs_analyzer.dissectors.oui import vendor
    return vendor(mac)


__all__ = ["fleet_summary", "connect", "store_files", "FleetError", "rate", "parse_day",
           "pfmea_rows", "pfmea_entry", "parse_failure_modes", "rule_failure_modes", "iso_utc",
           "shared_dir", "mac_vendor", "SCHEMA", "COLUMNS"]
