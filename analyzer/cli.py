"""The command line: ``ccs-analyzer decode | timeline | analyze | rules``.

Exit codes: 0 success; 2 when an input could not be analysed (not a capture, unreadable,
missing key log); 1 for usage errors reported by typer.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from ccs_analyzer.dissectors.capture import capture_stem, is_capture_name

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="CCS / ISO 15118 charging-session traffic analyzer: SLAC, SDP, V2GTP, "
                       "EXI (DIN 70121, ISO 15118-2, ISO 15118-20) → sessions, findings, reports.")
rules_app = typer.Typer(no_args_is_help=True, help="The rule pack: list rules, explain one.")
app.add_typer(rules_app, name="rules")

err = Console(stderr=True, highlight=False)
EXIT_INPUT = 2


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Captures named on the command line; a folder stands for every capture in it (sorted,
    recursively). Raises typer.Exit(2) when a path does not exist or a folder holds none."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and is_capture_name(q.name))
            if not found:
                err.print(f"[red]error:[/] no .pcap/.pcapng files in folder {p}")
                raise typer.Exit(EXIT_INPUT)
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            err.print(f"[red]error:[/] {p}: no such file or folder")
            raise typer.Exit(EXIT_INPUT)
    return out


def _progress(enabled: bool):
    """A rich progress bar on stderr (only when stderr is a terminal and enabled)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
    if not enabled or not err.is_terminal:
        return None
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TimeRemainingColumn(), console=err, transient=True)


# ---------------------------------------------------------------------------- decode
@app.command()
def decode(captures: List[Path] = typer.Argument(..., help="capture files or folders"),
           keylog: Optional[Path] = typer.Option(None, "--keylog", help="NSS key log file (TLS secrets)"),
           layers: str = typer.Option("slac,sdp,v2gtp", help="layers to print: any of "
                                      "slac,sdp,v2gtp,tcp,tls,capture, or 'all'"),
           progress: bool = typer.Option(True, help="progress bar on stderr (terminals only)")):
    """Decode every SLAC / SDP / V2GTP message as JSON Lines on stdout.

    One object per message: frame, time (epoch s), layer, name, direction, protocol,
    namespace, message (decoded tree), error, src, dst and, where relevant, conn,
    payload_type, hex and info.
    """
    from ccs_analyzer.dissectors.capture import CaptureError
    from ccs_analyzer.dissectors.pipeline import Dissector

    want = None if layers == "all" else set(x.strip() for x in layers.split(","))
    files = expand_inputs(captures)
    failed = False
    out = sys.stdout
    for path in files:
        try:
            d = Dissector(path, keylog=keylog)
        except (CaptureError, OSError, ValueError) as e:
            err.print(f"[red]error:[/] {path}: {e}")
            failed = True
            continue
        prog = _progress(progress)
        task = None
        if prog:
            prog.start()
            task = prog.add_task(path.name, total=d.capture.size)
        n = 0
        try:
            for ev in d.events():
                if want is not None and ev.layer not in want:
                    continue
                obj = ev.to_json()
                if len(files) > 1:
                    obj["capture"] = path.name
                out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
                n += 1
                if prog and n % 1000 == 0:
                    prog.update(task, completed=d.reader.bytes_read)
        except BrokenPipeError:
            return
        finally:
            if prog:
                prog.stop()
    if failed:
        raise typer.Exit(EXIT_INPUT)


# ---------------------------------------------------------------------------- timeline
@app.command()
def timeline(capture: Path = typer.Argument(..., help="capture file"),
             keylog: Optional[Path] = typer.Option(None, "--keylog", help="NSS key log file"),
             csv: bool = typer.Option(False, "--csv", help="CSV with every column instead of a table"),
             output: Optional[Path] = typer.Option(None, "-o", "--output", help="write to this file"),
             session: Optional[str] = typer.Option(None, help="only this session (e.g. S2)"),
             layers: str = typer.Option("slac,sdp,v2gtp,tcp", help="layers to include, or 'all'")):
    """The timeline of the capture: one row per event, physical values in SI units."""
    from ccs_analyzer.analyzer.timeline import KEY_CONTROL_PILOT, KEY_PHYSICAL, timeline_frame

    a = _analyze_or_exit(capture, keylog)
    df = timeline_frame(a.sessions, a.capture_events)
    if layers != "all":
        df = df[df["layer"].isin([x.strip() for x in layers.split(",")])]
    if session:
        df = df[df["session"] == session]
    if csv:
        text = df.to_csv(index=False)
        if output:
            output.write_text(text)
        else:
            sys.stdout.write(text)
        return
    cols = ["session", "frame", "t_s", "direction", "name", "ResponseCode", "EVSEProcessing",
            "SoC_pct"] + [c for c in KEY_PHYSICAL + KEY_CONTROL_PILOT
                          if c in df.columns and df[c].notna().any()]
    cols = [c for c in cols if c in ("session", "frame", "t_s", "name") or df[c].notna().any()]
    view = df[cols].copy()
    for c in cols:
        view[c] = [_cell(v) for v in view[c]]
    text = view.to_string(index=False) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def _analyze_or_exit(capture: Path, keylog: Optional[Path], profile=None, trust=None):
    from ccs_analyzer.analyzer.analysis import analyze_capture
    from ccs_analyzer.dissectors.capture import CaptureError

    if not capture.exists():
        err.print(f"[red]error:[/] {capture}: no such file")
        raise typer.Exit(EXIT_INPUT)
    prog = _progress(True)
    cb = None
    if prog:
        prog.start()
        task = prog.add_task(capture.name, total=capture.stat().st_size)
        cb = lambda done, total: prog.update(task, completed=done)  # noqa: E731
    try:
        return analyze_capture(capture, keylog=keylog, progress=cb, profile=profile, trust=trust)
    except (CaptureError, OSError, ValueError) as e:
        err.print(f"[red]error:[/] {capture}: {e}")
        raise typer.Exit(EXIT_INPUT)
    finally:
        if prog:
            prog.stop()


# ---------------------------------------------------------------------------- analyze
def analyze_to_dir(capture: str, out_dir: str, keylog: str | None, profile=None,
                   annotate: bool = False, store: str | None = None,
                   judge_helper: bool = True, trust=None) -> dict:
    """Analyse one capture and write report.json and report.html (and, with ``annotate``,
    annotated.pcapng first, so that the report links it) into ``out_dir``; with ``store``
    (a store folder, analyzer/store.py), put the capture's rows there as the last step;
    ``judge_helper``: a streamed capture may judge its segments (and render its session pages)
    in forked judges (analyzer/streaming.py);
    ``trust``: trust anchors for the certificate chains (a path or TrustStore; docs/pnc.md).
    Return a short summary (also the unit of work of a parallel folder run and of a Dask
    task, analyzer/distributed.py). Never raises for a bad capture: the summary's ``error``
    says why (and the store gets no rows for it); a report or store write that fails raises
    (OSError; :class:`~ccs_analyzer.analyzer.store.MissingExtra` without pyarrow)."""
    from ccs_analyzer.analyzer.analysis import analyze_capture, gc_paused
    from ccs_analyzer.dissectors.capture import CaptureError
    from ccs_analyzer.reports.html_report import SessionPages, find_annotated, write_html_report
    from ccs_analyzer.reports.json_report import write_json_report

    # a streamed capture's session pages are rendered by its forked judges, segment by
    # segment (analyzer/streaming.py), and finished when report.html is written
    pages = SessionPages(out_dir, "annotated.pcapng" if annotate else find_annotated(out_dir))
    with gc_paused():
        try:
            a = analyze_capture(capture, keylog=keylog, profile=profile, judge_worker=judge_helper,
                                trust=trust, pages=pages, keep_sessions=store is not None)
        except (CaptureError, OSError, ValueError) as e:
            return {"capture": capture, "error": str(e)}
    # a streamed capture's reports run with the cyclic garbage collector on: its hundreds of
    # session pages leave template garbage that only the collector frees; a whole capture's
    # run faster with it paused (nothing to collect, much to scan)
    from ccs_analyzer.analyzer.streaming import helper_allowed, run_beside
    with gc_paused() if isinstance(a.sessions, list) else contextlib.nullcontext():
        os.makedirs(out_dir, exist_ok=True)
        jp = os.path.join(out_dir, "report.json")
        # a streamed capture's report.json is written by a forked child while report.html
        # is written here (analyzer/streaming.py run_beside; errors are raised here)
        def write_json() -> None:
            write_json_report(a, out_dir)
        json_done = run_beside(write_json) if judge_helper and a.pages_written else write_json
        if annotate:
            from ccs_analyzer.reports.annotate import annotate as write_annotated
            write_annotated(capture, os.path.join(out_dir, "annotated.pcapng"), a.findings)
        hp = write_html_report(a, out_dir, workers=2 if judge_helper and helper_allowed() else 1,
                               pages=pages)
        json_done()
        if store is not None:  # last: a task killed before this line leaves no rows
            from ccs_analyzer.analyzer.store import Store
            Store(store).put_analysis(a)
    sev = {"error": 0, "warning": 0, "info": 0}
    for f in a.findings:
        sev[f.severity] = sev.get(f.severity, 0) + 1
    out = {"capture": capture, "json": jp, "html": hp, "frames": a.capture["frames"],
           "verdict": a.verdict, "score": a.score, "conformance": a.conformance,
           "sessions": [(sid, m["protocol"], m["outcome"], m["verdict"], m["explanation"])
                        for sid, m in a.summaries.items()],
           "findings": sev}
    a.close()                   # a streamed capture's files on disk go (read nothing after)
    return out


@app.command()
def analyze(captures: List[Path] = typer.Argument(..., help="capture files or folders"),
            output: Path = typer.Option(Path("ccs-report"), "-o", "--output",
                                        help="output folder (one sub-folder per capture when several)"),
            keylog: Optional[Path] = typer.Option(None, "--keylog", help="NSS key log file"),
            trust: Optional[Path] = typer.Option(None, "--trust", help="trust anchors (V2G, MO, OEM "
                                                 "root certificates; a PEM / DER file or a folder) "
                                                 "the certificate chains are checked against "
                                                 "(docs/pnc.md)"),
            jobs: int = typer.Option(0, "--jobs", "-j", help="parallel workers for several captures "
                                     "(0: one per core)"),
            profile: Optional[Path] = typer.Option(None, "--profile", help="rule profile (TOML): "
                                                   "enable, disable, re-rate, re-parameterise rules"),
            annotate: bool = typer.Option(False, "--annotate", help="also write annotated.pcapng "
                                          "(findings as packet comments) next to the report"),
            store: Optional[Path] = typer.Option(None, "--store", help="also add each capture's "
                                                 "rows to this Parquet store, queryable with "
                                                 "DuckDB (docs/fleet.md; the 'fleet' extra)"),
            engine: str = typer.Option("local", "--engine", help="local (processes on this "
                                       "machine, -j) or dask (a dask.distributed cluster: "
                                       "--scheduler, else a local cluster of -j workers)"),
            scheduler: Optional[str] = typer.Option(None, "--scheduler", help="address of the "
                                                    "Dask scheduler (tcp://host:8786) for "
                                                    "--engine dask"),
            progress: bool = typer.Option(True, help="progress bar over the captures on stderr "
                                          "(terminals only)")):
    """Analyse captures: write report.json and report.html, print a summary; with --store,
    add the rows to a columnar store; with --engine dask, run on a Dask cluster."""
    from ccs_analyzer.analyzer.distributed import Job, run_dask, run_local

    files = expand_inputs(captures)
    if keylog is not None and not keylog.exists():
        err.print(f"[red]error:[/] key log {keylog}: no such file")
        raise typer.Exit(EXIT_INPUT)
    if engine not in ("local", "dask"):
        err.print("[red]error:[/] --engine must be local or dask")
        raise typer.Exit(EXIT_INPUT)
    if scheduler and engine != "dask":
        err.print("[red]error:[/] --scheduler needs --engine dask")
        raise typer.Exit(EXIT_INPUT)
    _require_extra((["pyarrow"] if store is not None else [])
                   + (["distributed"] if engine == "dask" else []))
    if store is not None and store.exists() and not store.is_dir():
        err.print(f"[red]error:[/] {store}: a store is a folder")
        raise typer.Exit(EXIT_INPUT)
    prof = _load_profile_or_exit(profile)
    tr = _check_trust_or_exit(trust)
    kl = str(keylog) if keylog else None
    st = str(store) if store is not None else None
    todo = [Job(str(f), str(output if len(files) == 1 else output / capture_stem(f.name)), kl, prof,
                annotate, st, trust=tr) for f in files]
    workers = jobs or os.cpu_count() or 1
    bar = _count_progress(len(todo), progress)
    tick = (lambda r: bar.advance(bar.task_ids[0])) if bar else None  # noqa: E731
    try:
        if bar:
            bar.start()
            bar.add_task("captures", total=len(todo))
        if engine == "dask":
            try:
                results = run_dask(todo, scheduler=scheduler, workers=jobs or None, on_result=tick)
            except (OSError, TimeoutError) as e:
                err.print(f"[red]error:[/] Dask scheduler {scheduler or '(local cluster)'}: {e}")
                raise typer.Exit(EXIT_INPUT)
            # the summaries name the captures by absolute path: back to the paths as given
            given = {os.path.abspath(j.capture): j.capture for j in todo}
            for r in results:
                r["capture"] = given.get(r["capture"], r["capture"])
        else:
            results = run_local(todo, workers, on_result=tick)
    finally:
        if bar:
            bar.stop()
    results.sort(key=lambda r: r["capture"])
    con = Console(highlight=False, soft_wrap=True)
    bad = False
    for r in results:
        if "error" in r:
            from rich.markup import escape
            bad = True
            err.print(f"[red]error:[/] {escape(str(r['capture']))}: {escape(str(r['error']))}")
            continue
        f = r["findings"]
        con.print(f"[bold]{Path(r['capture']).name}[/]: {r['verdict'].upper()} (conformance "
                  f"{r['conformance']}, score {r['score']}), {r['frames']} frames, "
                  f"{len(r['sessions'])} session(s); findings: {f['error']} error, {f['warning']} "
                  f"warning, {f['info']} info → {r['html']}")
        for sid, proto, outcome, verdict, why in r["sessions"]:
            con.print(f"  {sid}: {verdict.upper()} {proto or '-'} — {outcome}" + (f" — {why}" if why else ""))
    if bad:
        raise typer.Exit(EXIT_INPUT)


def _require_extra(modules: list[str]) -> None:
    """Exit 2 with the install command when a module of the 'fleet' extra is missing."""
    if not modules:
        return
    from ccs_analyzer.analyzer.store import MissingExtra, require
    try:
        require(*modules)
    except MissingExtra as e:
        from rich.markup import escape
        err.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(EXIT_INPUT)


def _count_progress(total: int, enabled: bool):
    """A rich progress bar over ``total`` captures on stderr (None unless stderr is a
    terminal, ``enabled`` and there are several captures)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    if not enabled or total < 2 or not err.is_terminal:
        return None
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def _check_trust_or_exit(path: Optional[Path]) -> str | None:
    """The trust anchors' path as given (None without ``--trust``), after checking that it
    holds certificates; exit 2 with the reason when it does not (dissectors/x509trust.py)."""
    if path is None:
        return None
    from ccs_analyzer.dissectors.x509trust import TrustError, TrustStore
    try:
        TrustStore.load(path)
    except TrustError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_INPUT)
    return str(path)


def _load_profile_or_exit(path: Optional[Path]):
    """The profile at ``path`` (None: defaults); exit 2 with the reason when unusable."""
    from ccs_analyzer.analyzer.profile import ProfileError, load_profile
    from ccs_analyzer.rules import all_rules
    try:
        return load_profile(path, all_rules())
    except ProfileError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_INPUT)


# ---------------------------------------------------------------------------- annotate
@app.command()
def annotate(capture: Path = typer.Argument(..., help="capture file"),
             output: Path = typer.Option(..., "-o", "--output", help="annotated pcapng to write"),
             keylog: Optional[Path] = typer.Option(None, "--keylog", help="NSS key log file"),
             profile: Optional[Path] = typer.Option(None, "--profile", help="rule profile (TOML)")):
    """Write a copy of the capture whose packets carry the findings as pcapng packet comments
    (Wireshark: frame.comment, Expert Info); the packets themselves are unchanged."""
    from ccs_analyzer.reports.annotate import annotate as write_annotated

    prof = _load_profile_or_exit(profile)
    a = _analyze_or_exit(capture, keylog, prof)
    if output.resolve() == capture.resolve():
        err.print("[red]error:[/] the output must not overwrite the capture")
        raise typer.Exit(EXIT_INPUT)
    n = write_annotated(capture, output, a.findings)
    Console(highlight=False, soft_wrap=True).print(
        f"{output}: {len(a.findings)} finding(s) as comments on {n} frame(s); open it in "
        f"Wireshark (filter: frame.comment)")


# ---------------------------------------------------------------------------- gate
def gate_one(capture: str, keylog: str | None, profile, fail_on: str, baseline, goal: bool = True,
             trust: str | None = None):
    """Analyse one capture for the gate (runs in a worker process for folders); ``trust``:
    trust anchors (docs/pnc.md)."""
    from ccs_analyzer.analyzer.analysis import analyze_capture, gc_paused
    from ccs_analyzer.analyzer.gate import GateResult, judge
    from ccs_analyzer.dissectors.capture import CaptureError

    with gc_paused():
        try:
            a = analyze_capture(capture, keylog=keylog, profile=profile, trust=trust)
        except (CaptureError, OSError, ValueError) as e:
            return GateResult(capture=Path(capture).name, path=capture, error=str(e))
        return judge(a, capture, fail_on, baseline, goal)


@app.command()
def gate(captures: List[Path] = typer.Argument(..., help="capture files or folders"),
         profile: Optional[Path] = typer.Option(None, "--profile", help="rule profile (TOML)"),
         fail_on: str = typer.Option("error", "--fail-on", help="lowest severity that fails: error or warning"),
         baseline: Optional[Path] = typer.Option(None, "--baseline", help="accepted findings (JSON); "
                                                 "only new findings fail"),
         junit: Optional[Path] = typer.Option(None, "--junit", help="write JUnit XML here"),
         json_out: Optional[Path] = typer.Option(None, "--json", help="write the gate's JSON summary here"),
         write_baseline: Optional[Path] = typer.Option(None, "--write-baseline",
                                                       help="write every finding as a baseline file"),
         keylog: Optional[Path] = typer.Option(None, "--keylog", help="NSS key log file"),
         trust: Optional[Path] = typer.Option(None, "--trust", help="trust anchors (root "
                                              "certificates, PEM / DER file or folder; docs/pnc.md)"),
         jobs: int = typer.Option(0, "--jobs", "-j", help="parallel workers (0: one per core)"),
         goal: bool = typer.Option(True, "--goal/--no-goal", help="a session that did not achieve "
                                   "its goal (verdict fail) fails the gate unless the baseline "
                                   "accepts its root cause")):
    """CI conformance gate: exit 0 when no finding at or above --fail-on and no failed session
    (beyond the baseline), 1 when there are, 2 when an input could not be analysed."""
    from ccs_analyzer.analyzer.gate import exit_code, gate_json, load_baseline
    from ccs_analyzer.analyzer.gate import write_baseline as write_bl
    from ccs_analyzer.reports.junit import junit_xml
    from ccs_analyzer.rules import all_rules

    if fail_on not in ("error", "warning"):
        err.print("[red]error:[/] --fail-on must be error or warning")
        raise typer.Exit(EXIT_INPUT)
    files = expand_inputs(captures)
    prof = _load_profile_or_exit(profile)
    try:
        bl = load_baseline(baseline)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_INPUT)
    kl = str(keylog) if keylog else None
    tr = _check_trust_or_exit(trust)
    workers = jobs or os.cpu_count() or 1
    if len(files) == 1 or workers == 1:
        results = [gate_one(str(f), kl, prof, fail_on, bl, goal, tr) for f in files]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(files))) as ex:
            results = list(ex.map(gate_one, [str(f) for f in files], [kl] * len(files),
                                  [prof] * len(files), [fail_on] * len(files), [bl] * len(files),
                                  [goal] * len(files), [tr] * len(files)))
    code = exit_code(results)
    con = Console(highlight=False, soft_wrap=True)
    for r in results:
        if r.error:
            con.print(f"[red]ERROR[/] {r.capture}: could not be analysed: {r.error}")
            continue
        mark = "[red]FAIL[/]" if r.counting or r.failed_sessions else "[green]PASS[/]"
        extra = f", {len(r.baselined)} baselined" if r.baselined else ""
        extra += f", {len(r.accepted_sessions)} failed session(s) baselined" if r.accepted_sessions else ""
        con.print(f"{mark} {r.capture}: {len(r.counting)} finding(s) at or above {fail_on}, "
                  f"{len(r.failed_sessions)} failed session(s){extra} (verdict {r.verdict}, "
                  f"conformance {r.conformance}, score {r.score})")
        for s in r.failed_sessions:
            con.print(f"   session {s.get('id')} failed: {s.get('outcome')} — {s.get('explanation')}")
        for f in r.counting[:20]:
            con.print(f"   {f.rule} {f.severity} [{f.session or 'capture'}] frames "
                      f"{', '.join(map(str, f.frames[:6]))}: {f.synopsis}")
        if len(r.counting) > 20:
            con.print(f"   … and {len(r.counting) - 20} more")
    enabled = [c for c in all_rules() if prof.settings(c).enabled]
    if junit:
        junit.write_text(junit_xml(results, enabled, fail_on), encoding="utf-8")
    if json_out:
        json_out.write_text(json.dumps(gate_json(results, fail_on), indent=1) + "\n", encoding="utf-8")
    if write_baseline:
        n = write_bl(write_baseline, [r for r in results if not r.error])
        con.print(f"baseline with {n} accepted finding(s) written to {write_baseline}")
    con.print(f"gate: {'failed' if code == 1 else 'input error' if code == 2 else 'passed'} "
              f"({len(results)} capture(s))")
    raise typer.Exit(code)


# ---------------------------------------------------------------------------- simulate
@app.command()
def simulate(scenario: str = typer.Argument(..., help="scenario name (samples/scenarios/) or TOML file"),
             output: Path = typer.Option(..., "-o", "--output", help="pcapng file to write"),
             seed: Optional[int] = typer.Option(None, "--seed", help="random seed (default: the scenario's)"),
             roots: Optional[Path] = typer.Option(None, "--roots", help="also write the root "
                                                  "certificates of the simulated chains (PEM) "
                                                  "into this folder, for --trust")):
    """Write a simulated capture of charging sessions, with the scenario's faults (docs/simulator.md)."""
    from ccs_analyzer.samples.simulate import simulate_command
    raise typer.Exit(simulate_command(scenario, output, seed, roots))


# ---------------------------------------------------------------------------- rules
@rules_app.command("list")
def rules_list(fmt: str = typer.Option("table", "--format", help="table, markdown (every rule's "
                                       "page) or json")):
    """List every rule: code, severity, category, culprit, title and the requirement it checks."""
    from ccs_analyzer.rules import all_rules
    rules = all_rules()
    if fmt == "json":
        sys.stdout.write(json.dumps([_rule_json(r) for r in rules], indent=1) + "\n")
        return
    if fmt == "markdown":
        sys.stdout.write(rules_markdown(rules))
        return
    from rich.table import Table
    t = Table(header_style="bold")
    for c in ("code", "severity", "category", "culprit", "title", "requirement"):
        t.add_column(c)
    for r in rules:
        t.add_row(r.code, r.severity, r.category, r.culprit, r.title, r.requirement or "")
    Console(width=200).print(t)


def _rule_json(r) -> dict:
    import inspect
    return {"code": r.code, "title": r.title, "severity": r.severity, "category": r.category,
            "culprit": r.culprit, "protocols": list(r.protocols), "requirement": r.requirement,
            "failure_modes": list(r.failure_modes), "params": r.params,
            "kinds": list(r.kinds), "explains": list(r.explains),
            "default_enabled": r.default_enabled,
            "doc": inspect.cleandoc(r.__doc__ or "")}


def rules_markdown(rules) -> str:
    """The rule catalogue as Markdown (docs/rules.md is generated with it)."""
    import inspect

    from ccs_analyzer.analyzer.rule_examples import fixture_note
    lines = ["# Rules", "", "Generated by `ccs-analyzer rules list --format markdown`; "
             "`ccs-analyzer rules explain CODE` prints one page.", "",
             "The rules live in `rules/` (one module or package per category); the per-session views "
             "they share (SLAC runs, request / response exchanges, the sequence walk, loop "
             "tables, connection activity, the timing view) live in `analyzer/views/` and are "
             "built once per analysis ([architecture.md](architecture.md#views-analyzerviews)). "
             "Timer defaults come from the sourced tables `rules/timing_tables.py` (V2G) and "
             "`rules/slac_timers.py` (SLAC).", "",
             "Each rule's Example is the trace of its finding on a sample capture of the "
             "simulator, named under it (frame numbers, message names, the values the finding "
             "speaks of, → between a request and its response; `python -m "
             "ccs_analyzer.analyzer.rule_examples CODE` prints it).", "",
             "| code | severity | category | culprit | title |", "|---|---|---|---|---|"]
    for r in rules:
        lines.append(f"| [{r.code}](#{r.code.lower()}) | {r.severity} | {r.category} | {r.culprit} | {r.title} |")
    for r in rules:
        lines += ["", f"## {r.code}", "", f"**{r.title}** — {r.severity}, {r.category}, culprit "
                  f"{r.culprit}; protocols: {', '.join(r.protocols) or 'all'}.", ""]
        if r.requirement:
            lines.append(f"Requirement: {r.requirement}.  ")
        if r.failure_modes:
            lines.append(f"Failure modes (ChargeX PFMEA): {', '.join(r.failure_modes)}.  ")
        if r.params:
            lines.append("Parameters: " + ", ".join(f"`{k} = {v!r}`" for k, v in r.params.items()) + ".  ")
        if r.renamed_params:
            lines.append("Renamed parameters ([profiles.md](profiles.md#renamed-parameters)): " + ", ".join(
                f"`{old}` → `{new}`" for old, new in r.renamed_params.items()) + ".  ")
        if r.kinds or r.explains:
            lines.append(f"Causes ([root-cause.md](root-cause.md)): is {', '.join(r.kinds) or '-'}; "
                         f"can explain {', '.join(r.explains) or '-'}.  ")
        lines += ["", inspect.cleandoc(r.__doc__ or "")]
        if fixture_note(r.code):
            lines += ["", fixture_note(r.code)]
    return "\n".join(lines) + "\n"


@rules_app.command("explain")
def rules_explain(code: str = typer.Argument(..., help="rule code, e.g. PRE001")):
    """Print a rule's page: what it checks, why it matters, how to fix, source, parameters,
    an example and the sample capture it comes from."""
    from ccs_analyzer.analyzer.rule_examples import fixture_note
    from ccs_analyzer.rules import all_rules
    for r in all_rules():
        if r.code.upper() == code.upper():
            note = fixture_note(r.code)
            sys.stdout.write(r.explain() + (f"\n{note}\n" if note else ""))
            return
    err.print(f"[red]error:[/] no rule {code}; see `ccs-analyzer rules list`")
    raise typer.Exit(EXIT_INPUT)


# ---------------------------------------------------------------------------- serve
@app.command()
def serve(folder: Path = typer.Argument(..., help="folder of captures (searched recursively)"),
          host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (the default "
                                   "keeps it to this machine)"),
          port: int = typer.Option(0, "--port", help="port (0: a free one, printed)"),
          annotate: bool = typer.Option(True, help="also write the annotated capture when "
                                        "analysing on demand"),
          store: Optional[Path] = typer.Option(None, "--store", help="Parquet store for the batch "
                                               "summary (default: FOLDER/.ccs-store when present)")):
    """Report browser: serve a folder of captures and their reports on localhost — verdicts,
    sessions, findings, payloads, plots, analysis on demand and a batch summary. Reports go
    to FOLDER/.ccs-reports/<capture path>/."""
    from ccs_analyzer.reports.browser import serve as run_server

    if not folder.is_dir():
        err.print(f"[red]error:[/] {folder}: not a folder")
        raise typer.Exit(EXIT_INPUT)
    if store is not None and not store.is_dir():
        err.print(f"[red]error:[/] {store}: no such store")
        raise typer.Exit(EXIT_INPUT)
    try:
        run_server(folder, host=host, port=port, annotate=annotate, store=store,
                   echo=lambda text: Console(highlight=False, soft_wrap=True).print(text, markup=False))
    except OSError as e:
        err.print(f"[red]error:[/] cannot listen on {host}:{port}: {e}")
        raise typer.Exit(EXIT_INPUT)


# ---------------------------------------------------------------------------- fleet
@app.command()
def fleet(store: Path = typer.Argument(..., help="store folder (written by analyze --store)"),
          fmt: str = typer.Option("table", "--format", help="table (console), json or html"),
          output: Optional[Path] = typer.Option(None, "-o", "--output", help="write to this file"),
          since: Optional[str] = typer.Option(None, "--since", help="first UTC day (YYYY-MM-DD) "
                                              "of the sessions to count"),
          until: Optional[str] = typer.Option(None, "--until", help="last UTC day (YYYY-MM-DD), "
                                              "inclusive")):
    """Fleet questions over a store of analysed captures (docs/fleet.md): failure rate by phase,
    root cause, rule, EV × EVSE and day, and the observed occurrence of each ChargeX PFMEA
    failure mode. Exit 2 when the store is missing or unreadable or a date is wrong."""
    if fmt not in ("table", "json", "html"):
        err.print("[red]error:[/] --format must be table, json or html")
        raise typer.Exit(EXIT_INPUT)
    if not store.exists():
        err.print(f"[red]error:[/] {store}: no such store")
        raise typer.Exit(EXIT_INPUT)
    if not store.is_dir():
        err.print(f"[red]error:[/] {store}: a store is a folder")
        raise typer.Exit(EXIT_INPUT)
    try:
        from ccs_analyzer.analyzer.fleet import FleetError, fleet_summary
        s = fleet_summary(store, since=since, until=until)
    except ImportError as e:
        err.print(f"[red]error:[/] the fleet command needs duckdb ({e}): "
                  "pip install 'ccs-analyzer[fleet]'")
        raise typer.Exit(EXIT_INPUT)
    except (FleetError, OSError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_INPUT)
    if s["message"]:
        err.print(f"[yellow]note:[/] {s['message']}")
    if fmt == "json":
        text = json.dumps(s, indent=1, ensure_ascii=False) + "\n"
    elif fmt == "html":
        from ccs_analyzer.reports.fleet_html import render_fleet_html
        text = render_fleet_html(s)
    elif output:
        import io
        buf = io.StringIO()
        fleet_tables(s, Console(file=buf, width=200, highlight=False, color_system=None))
        text = buf.getvalue()
    else:
        fleet_tables(s, Console(highlight=False, width=None if sys.stdout.isatty() else 200))
        return
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"fleet summary written to {output}")
    else:
        sys.stdout.write(text)


def fleet_tables(s: dict, con: Console) -> None:
    """Print a :func:`~ccs_analyzer.analyzer.fleet.fleet_summary` dict as rich tables; each
    ratio reads ``n / of (pct %)``, the denominator named in the column header."""
    from rich.table import Table

    def r(x):
        return f"{x['n']} / {x['of']}" + (f" ({x['pct']} %)" if x["pct"] is not None else "")

    def table(title, *cols):
        t = Table(title=title, title_justify="left", header_style="bold")
        for c in cols:
            t.add_column(c, justify="right" if c.startswith(("#", "sessions", "captures", "findings",
                                                             "occurrences", "root", "1 in")) else "left")
        return t

    t = s["totals"]
    win = ""
    if s["window"]["since"] or s["window"]["until"]:
        win = f", window {s['window']['since'] or '…'} to {s['window']['until'] or '…'} (UTC days)"
    con.print(f"[bold]Fleet[/] {s['store']}{win}: {t['captures']} capture(s), {t['sessions']} "
              f"session(s)" + (f" (+{t['crosstalk']} crosstalk, not counted)" if t["crosstalk"] else "")
              + f"; failed {r(t['failure_rate'])} of the sessions; achieved {t['achieved']}, "
              f"unknown {t['unknown']}")
    if s["message"]:
        con.print(s["message"])
        if not t["sessions"]:
            return
    tb = table("By phase reached", "phase reached", "sessions", "failed / sessions in phase",
               "share of all failed", "outcomes")
    for p in s["by_phase"]:
        tb.add_row(p["phase"], str(p["sessions"]), r(p["failure_rate"]), r(p["share_of_failures"]),
                   ", ".join(f"{o} ×{n}" for o, n in p["outcomes"].items()))
    con.print(tb)
    tb = table("By root cause", "rule", "culprit", "title", "sessions", "failed / all failed")
    for x in s["by_root_cause"]:
        tb.add_row(x["rule"] or "-", x["culprit"] or "-", x["title"] or "", str(x["sessions"]),
                   r(x["share_of_failures"]))
    con.print(tb)
    tb = table("By rule (all findings)", "rule", "severity", "title", "findings", "occurrences",
               "sessions / all sessions", "failed / sessions with it", "root cause",
               "captures / all captures")
    for x in s["by_rule"]:
        tb.add_row(x["rule"], x["severity"] or "", x["title"] or "", str(x["findings"]),
                   str(x["occurrences"]), r(x["sessions"]), r(x["fail_rate"]), str(x["root_cause"]),
                   r(x["captures"]))
    con.print(tb)
    tb = table("By EV × EVSE", "EV", "EVSE", "sessions", "failed / pair's sessions", "captures",
               "root causes")
    for q in s["by_pair"]:
        ev = q["ev"] + (f" · {q['ev_vendor']}" if q["ev_vendor"] and q["ev_vendor"] != q["ev"] else "")
        evse = q["evse"] + (f" · {q['evse_vendor']}" if q["evse_vendor"] and q["evse_vendor"] != q["evse"] else "")
        tb.add_row(ev, evse, str(q["sessions"]), r(q["failure_rate"]), str(q["captures"]),
                   ", ".join(f"{k} ×{n}" for k, n in q["root_causes"].items()))
    con.print(tb)
    tb = table("Over time (UTC day of the session start)", "day", "captures", "sessions",
               "failed / day's sessions")
    for d in s["by_day"]:
        tb.add_row(d["day"] or "(no time)", str(d["captures"]), str(d["sessions"]), r(d["failure_rate"]))
    con.print(tb)
    tb = table("ChargeX PFMEA failure modes: observed occurrence", "ID", "PFMEA row · failure mode",
               "severity", "rules seen (sessions)", "findings", "sessions / all sessions", "1 in N",
               "captures / all captures", "first seen", "last seen")
    unseen = []
    for m in s["failure_modes"]:
        if not m["findings"]:
            unseen.append(m["id"])
            continue
        p = m["pfmea"] or {}
        text = f"{p['row']} {p['failure_mode']}" if p else "(no PFMEA text)"
        if p.get("cause"):
            text += f" — cause: {p['cause']}"
        tb.add_row(m["id"], text, p.get("severity") or "",
                   ", ".join(f"{x['rule']} ({x['sessions']})" for x in m["rules"] if x["findings"]),
                   str(m["findings"]), r(m["sessions"]), str(m["one_in"] or "-"), r(m["captures"]),
                   m["first_seen_utc"] or "-", m["last_seen_utc"] or "-")
    con.print(tb)
    if unseen:
        con.print(f"Cited by rules, not observed ({len(unseen)}): {', '.join(unseen)}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
