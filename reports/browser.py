"""The report browser: ``ccs-analyzer serve DIR`` serves a folder of captures and their
reports on localhost (docs/report.md "The report browser").

Layout: the reports of ``DIR/sub/run1.pcapng`` live in ``DIR/.ccs-reports/sub/run1.pcapng/``
(``report.json``, ``report.html`` and ``annotated.pcapng``, the capture with the findings as
packet comments); a report made by ``ccs-analyzer analyze DIR -o DIR/.ccs-reports`` (one
sub-folder per capture name without its extension) is found too. Captures are every
``.pcap`` / ``.pcapng`` / ``.cap`` file under DIR, hidden folders left out.

Pages: ``/`` lists the captures with their verdicts, scores, counts by severity and sessions
(outcome, phase reached, root cause — one click to the finding), and a button that analyses a
capture without a report (or with a stale one) in a background thread while the page shows
its progress; ``/summary`` is the batch summary across the folder: failure rate by phase
reached, by rule and by EV × EVSE pairing (EVCCID or the EV MAC's vendor, × EVSEID or the
EVSE MAC's vendor) — when the folder has a store (``DIR/.ccs-store``, or ``serve --store``,
written by ``analyze --store``) it is the fleet summary read from the store through DuckDB
(analyzer/fleet.py ``fleet_summary``: also by root cause, over time and per ChargeX PFMEA
failure mode), otherwise computed from the folder's report.json files (analyzer/batch.py: the
browser counts and judges nothing itself);
``/reports/<capture path>/report.html`` is the capture's own HTML report (sessions,
findings, frames, payloads, plots).

Safety: it listens on 127.0.0.1 unless told otherwise; every path in a URL is confined to
DIR (no ``..``, no absolute paths, no hidden components, and the real path — symlinks
resolved — must stay inside DIR); requests whose Host is not the server's own are refused
(DNS rebinding); the only state-changing request (POST ``/api/analyze``) needs the page's
random token in a header, which another site's page cannot send. Pages are escaped like the
report (jinja2 autoescaping, JSON for scripts in ``<script type="application/json">``) and
carry a Content-Security-Policy header that allows only their own style and script (by hash)
and requests to the server itself.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import os
import queue
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ccs_analyzer.analyzer.batch import folder_summary
from ccs_analyzer.dissectors.capture import capture_stem, is_capture_name

from .html_report import _ENV, asset, csp_hash, json_for_script

REPORTS_DIR = ".ccs-reports"
#: The store the batch summary reads when the folder has one (``analyze DIR --store DIR/.ccs-store``).
STORE_DIR = ".ccs-store"
REPORT_FILES = {"report.html": "text/html; charset=utf-8",
                "report.json": "application/json; charset=utf-8",
                "annotated.pcapng": "application/octet-stream"}


# ---------------------------------------------------------------------------- paths
class PathError(ValueError):
    """A path that is not allowed (outside the folder, hidden, absolute …)."""


def safe_relpath(rel: str) -> str:
    """A URL path part (already unquoted) as a relative path inside the folder, or
    PathError: no empty, ``.`` or ``..`` components, none starting with a dot, no
    backslashes, NULs or drive letters, not absolute."""
    if not rel or "\x00" in rel or "\\" in rel or rel.startswith("/") or ":" in rel.split("/")[0]:
        raise PathError("not a relative path")
    parts = rel.split("/")
    for p in parts:
        if p in ("", ".", "..") or p.startswith("."):
            raise PathError("bad path component")
    return "/".join(parts)


def inside(root: str, path: str) -> bool:
    """Whether ``path``'s real path (symlinks resolved) is ``root`` or below it."""
    real = os.path.realpath(path)
    try:
        return os.path.commonpath([root, real]) == root
    except ValueError:
        return False


class Library:
    """The served folder: its captures, their reports, the batch summary. ``store``: the
    Parquet store the batch summary reads (default ``root/.ccs-store`` when it exists)."""

    def __init__(self, root: str | os.PathLike, store: str | os.PathLike | None = None):
        self.root = os.path.realpath(os.fspath(root))
        if not os.path.isdir(self.root):
            raise NotADirectoryError(self.root)
        self.store = os.path.realpath(os.fspath(store)) if store else None
        self.reports_root = os.path.join(self.root, REPORTS_DIR)
        self._cache: dict[str, tuple[float, dict | None]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ captures
    def captures(self) -> list[str]:
        """Relative paths (``/``-separated) of every capture, sorted; hidden folders and
        files, symlinks that lead out of the folder and the reports folder left out."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in filenames:
                if fn.startswith(".") or not is_capture_name(fn):
                    continue
                full = os.path.join(dirpath, fn)
                if not os.path.isfile(full) or not inside(self.root, full):
                    continue
                out.append(os.path.relpath(full, self.root).replace(os.sep, "/"))
        return sorted(out)

    def capture_path(self, rel: str) -> str:
        """Absolute path of a capture given by its relative path; PathError when it is not a
        capture inside the folder."""
        rel = safe_relpath(rel)
        if not is_capture_name(rel):
            raise PathError("not a capture")
        full = os.path.join(self.root, *rel.split("/"))
        if not inside(self.root, full) or not os.path.isfile(full):
            raise PathError("no such capture")
        return full

    def report_dir(self, rel: str) -> str:
        """Where the reports of a capture go (``DIR/.ccs-reports/<rel>/``)."""
        rel = safe_relpath(rel)
        return os.path.join(self.reports_root, *rel.split("/"))

    def find_report_dir(self, rel: str) -> str | None:
        """The folder holding the capture's report.json: ``.ccs-reports/<rel>/``, else
        ``.ccs-reports/<name without extension>/`` when its report names this capture."""
        d = self.report_dir(rel)
        if os.path.isfile(os.path.join(d, "report.json")) and inside(self.root, d):
            return d
        name = rel.rsplit("/", 1)[-1]
        alt = os.path.join(self.reports_root, capture_stem(name))
        rep = self.load_report(alt)
        if rep is not None and rep.get("capture", {}).get("file") == name and inside(self.root, alt):
            return alt
        return None

    def load_report(self, report_dir: str) -> dict | None:
        """report.json of a report folder (cached by modification time), or None."""
        path = os.path.join(report_dir, "report.json")
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return None
        with self._lock:
            hit = self._cache.get(path)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            with open(path, encoding="utf-8") as f:
                rep = json.load(f)
            if not isinstance(rep, dict):
                rep = None
        except (OSError, ValueError):
            rep = None
        with self._lock:
            self._cache[path] = (mtime, rep)
        return rep

    def entry(self, rel: str) -> dict:
        """What the list shows of one capture."""
        full = os.path.join(self.root, *rel.split("/"))
        st = os.stat(full)
        d = self.find_report_dir(rel)
        rep = self.load_report(d) if d else None
        e = {"path": rel, "size": st.st_size, "mtime": st.st_mtime, "report": None,
             "status": "not analysed", "capture_url": "/captures/" + urllib.parse.quote(rel)}
        if rep is None:
            return e
        url = "/reports/" + urllib.parse.quote(os.path.relpath(d, self.reports_root).replace(os.sep, "/"))
        stale = (rep.get("capture", {}).get("size") != st.st_size
                 or os.stat(os.path.join(d, "report.json")).st_mtime < st.st_mtime)
        sessions = []
        for s in rep.get("sessions") or []:
            sessions.append({k: s.get(k) for k in ("id", "protocol", "outcome", "phase_reached", "verdict",
                                                   "goal", "conformance", "score", "root_cause",
                                                   "root_cause_synopsis", "explanation", "EVCCID",
                                                   "EVSEID", "ev_mac", "evse_mac", "duration_s")})
        e.update({
            "status": "stale" if stale else "analysed", "report": url,
            "html": os.path.isfile(os.path.join(d, "report.html")),
            "annotated": os.path.isfile(os.path.join(d, "annotated.pcapng")),
            "verdict": rep.get("verdict"), "score": rep.get("score"), "counts": rep.get("counts") or {},
            "frames": rep.get("capture", {}).get("frames"), "first_time": rep.get("capture", {}).get("first_time"),
            "duration_s": rep.get("capture", {}).get("duration_s"), "sessions": sessions,
            "tool": rep.get("tool", {}).get("version"),
        })
        return e

    def entries(self) -> list[dict]:
        return [self.entry(rel) for rel in self.captures()]

    # ------------------------------------------------------------------ summary
    def store_path(self) -> str | None:
        """The store the batch summary reads: the one given, else ``root/.ccs-store`` when it
        is a folder; None without one."""
        if self.store:
            return self.store
        default = os.path.join(self.root, STORE_DIR)
        return default if os.path.isdir(default) else None

    def summary(self) -> dict:
        """The batch summary (:func:`~ccs_analyzer.analyzer.batch.folder_summary`): the fleet
        summary of the store when there is one, else the summary of every analysed capture's
        report.json."""
        return folder_summary(self.store_path(), ((rel, self.load_report(d)) for rel in self.captures()
                                                  for d in [self.find_report_dir(rel)] if d))


# ---------------------------------------------------------------------------- jobs
class Jobs:
    """Analyses on demand, one at a time in a background thread (the analysis is CPU-bound
    and pauses the garbage collector; one at a time keeps the server responsive)."""

    def __init__(self, library: Library, annotate: bool = True):
        self.lib = library
        self.annotate = annotate
        self.status: dict[str, dict] = {}
        self._q: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="ccs-analyze", daemon=True)
        self._thread.start()

    def submit(self, rel: str) -> dict:
        path = self.lib.capture_path(rel)
        with self._lock:
            st = self.status.get(rel)
            if st and st["state"] in ("queued", "running"):
                return dict(st)
            st = self.status[rel] = {"path": rel, "state": "queued", "done": 0,
                                     "total": os.path.getsize(path), "error": None,
                                     "queued": time.time()}
        self._q.put(rel)
        return dict(st)

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self.status.items()}

    def wait(self, timeout: float = 60.0) -> bool:
        """Wait until no job is queued or running (tests)."""
        end = time.time() + timeout
        while time.time() < end:
            if all(s["state"] in ("done", "error") for s in self.snapshot().values()):
                return True
            time.sleep(0.05)
        return False

    def _set(self, rel: str, **kw) -> None:
        with self._lock:
            self.status[rel].update(kw)

    def _work(self) -> None:
        while True:
            rel = self._q.get()
            try:
                self._set(rel, state="running", started=time.time())
                self._run(rel)
                self._set(rel, state="done", finished=time.time())
            except Exception as e:  # report any failure on the page, keep serving
                self._set(rel, state="error", error=f"{type(e).__name__}: {e}", finished=time.time())
                traceback.print_exc(file=sys.stderr)

    def _run(self, rel: str) -> None:
        from ccs_analyzer.analyzer.analysis import analyze_capture
        from ccs_analyzer.reports.html_report import render_html
        from ccs_analyzer.reports.json_report import write_json_report

        src = self.lib.capture_path(rel)
        out = self.lib.report_dir(rel)
        a = analyze_capture(src, progress=lambda done, total: self._set(rel, done=done, total=total))
        parent = os.path.dirname(out)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
        try:
            write_json_report(a, tmp)
            if self.annotate:
                from ccs_analyzer.reports.annotate import annotate as write_annotated
                write_annotated(src, os.path.join(tmp, "annotated.pcapng"), a.findings)
            ann = "annotated.pcapng" if self.annotate else None
            text = render_html(a, annotated=ann,
                               annotated_path=os.path.join(out, ann) if ann else None)
            with open(os.path.join(tmp, "report.html"), "w", encoding="utf-8") as f:
                f.write(text)
            os.makedirs(out, exist_ok=True)
            for name in ("annotated.pcapng", "report.json", "report.html"):
                p = os.path.join(tmp, name)
                if os.path.exists(p):
                    os.replace(p, os.path.join(out, name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- pages
def _page(template: str, **ctx) -> tuple[str, str]:
    """(html, CSP header) of a browser page."""
    css = asset("report.css") + asset("fleet.css") + asset("browser.css")
    js = asset("browser.js")
    csp = (f"default-src 'none'; style-src {csp_hash(css)}; script-src {csp_hash(js)}; "
           "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'")
    html = _ENV.get_template(template).render(css=css, js=js, csp=csp, **ctx)
    return html, csp + "; frame-ancestors 'none'"      # frame-ancestors: header only


class Handler(BaseHTTPRequestHandler):
    server: "BrowserServer"
    server_version = "ccs-analyzer"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, text: str) -> None:
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8")

    def _json(self, obj, status: int = 200) -> None:
        self._send(status, json.dumps(obj, default=str).encode(), "application/json; charset=utf-8")

    def _html(self, html: str, csp: str) -> None:
        self._send(200, html.encode("utf-8"), "text/html; charset=utf-8",
                   {"Content-Security-Policy": csp, "X-Frame-Options": "DENY"})

    def _host_ok(self) -> bool:
        allowed = self.server.allowed_hosts
        return allowed is None or (self.headers.get("Host") or "").lower() in allowed

    def _file(self, path: str, ctype: str, download: str | None = None) -> None:
        try:
            size = os.path.getsize(path)
            f = open(path, "rb")
        except OSError:
            return self._error(404, "not found")
        with f:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(size))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            if download:
                self.send_header("Content-Disposition", "attachment; filename*=UTF-8''"
                                 + urllib.parse.quote(download))
            self.end_headers()
            if self.command != "HEAD":
                shutil.copyfileobj(f, self.wfile, 1 << 16)

    # ------------------------------------------------------------------ routes
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if not self._host_ok():
            return self._error(403, "unexpected Host header")
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        lib = self.server.library
        try:
            if path == "/":
                html, csp = _page("browser.html.j2", page="index", entries=lib.entries(),
                                  jobs=self.server.jobs.snapshot(), root=lib.root,
                                  data_json=json_for_script({"token": self.server.token}))
                return self._html(html, csp)
            if path == "/summary":
                html, csp = _page("browser.html.j2", page="summary", s=lib.summary(), root=lib.root,
                                  data_json=json_for_script({"token": self.server.token}))
                return self._html(html, csp)
            if path == "/api/jobs":
                return self._json(self.server.jobs.snapshot())
            if path == "/api/captures":
                return self._json(lib.entries())
            if path == "/api/summary":
                return self._json(lib.summary())
            if path.startswith("/reports/"):
                rest = urllib.parse.unquote(path[len("/reports/"):])
                rel, _, name = rest.rpartition("/")
                if name not in REPORT_FILES:
                    return self._error(404, "not found")
                d = os.path.join(lib.reports_root, *safe_relpath(rel).split("/"))
                full = os.path.join(d, name)
                if not inside(lib.reports_root, full) or not os.path.isfile(full):
                    return self._error(404, "not found")
                if name == "report.html":
                    return self._file(full, REPORT_FILES[name])
                return self._file(full, REPORT_FILES[name], download=name if name.endswith(".pcapng") else None)
            if path.startswith("/captures/"):
                rel = urllib.parse.unquote(path[len("/captures/"):])
                full = lib.capture_path(rel)
                return self._file(full, "application/octet-stream", download=rel.rsplit("/", 1)[-1])
        except PathError:
            return self._error(404, "not found")
        return self._error(404, "not found")

    def do_POST(self):
        if not self._host_ok():
            return self._error(403, "unexpected Host header")
        url = urllib.parse.urlsplit(self.path)
        origin = self.headers.get("Origin")
        if origin and not self.server.origin_ok(origin, self.headers.get("Host") or ""):
            return self._error(403, "cross-origin request refused")
        token = self.headers.get("X-CCS-Token") or ""
        if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), self.server.token.encode()):
            return self._error(403, "missing or wrong token")
        if url.path != "/api/analyze":
            return self._error(404, "not found")
        try:
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(min(n, 65536)) or b"{}")
            rel = body.get("path") if isinstance(body, dict) else None
            if not isinstance(rel, str):
                return self._error(400, "path missing")
            return self._json(self.server.jobs.submit(rel), 202)
        except PathError:
            return self._error(404, "not found")
        except ValueError:
            return self._error(400, "bad request")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BrowserServer(ThreadingHTTPServer):
    """The HTTP server (a :class:`ThreadingHTTPServer`) with the folder, the jobs and the
    page token. ``url`` is where it listens."""

    daemon_threads = True

    def __init__(self, root, host: str = "127.0.0.1", port: int = 0, annotate: bool = True,
                 verbose: bool = False, store=None):
        self.library = Library(root, store=store)
        self.jobs = Jobs(self.library, annotate=annotate)
        self.token = secrets.token_urlsafe(24)
        self.verbose = verbose
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), Handler)
        self.host = host
        self.port = self.server_address[1]
        h = f"[{host.strip('[]')}]" if ":" in host else host
        self.url = f"http://{h}:{self.port}/"
        if _is_loopback(host.strip("[]")):
            self.allowed_hosts = {f"{x}:{self.port}" for x in ("127.0.0.1", "localhost", "[::1]", h)}
        else:
            self.allowed_hosts = None       # opened to the network on purpose: any name

    def origin_ok(self, origin: str, host_header: str) -> bool:
        """Whether a request's Origin is this server (by its Host when open to the network)."""
        hosts = self.allowed_hosts if self.allowed_hosts is not None else {host_header.lower()}
        return origin.lower() in {f"http://{h}" for h in hosts}


def make_server(root, host: str = "127.0.0.1", port: int = 0, annotate: bool = True,
                verbose: bool = False, store=None) -> BrowserServer:
    """A :class:`BrowserServer` bound to ``host:port`` (port 0: a free one); call
    ``serve_forever()`` (in a thread for tests) and ``shutdown()``. ``store``: the Parquet
    store of the batch summary (default ``root/.ccs-store`` when it exists)."""
    return BrowserServer(root, host, port, annotate=annotate, verbose=verbose, store=store)


def serve(root, host: str = "127.0.0.1", port: int = 0, annotate: bool = True,
          echo=print, store=None) -> None:
    """Serve until interrupted (Ctrl-C)."""
    srv = make_server(root, host, port, annotate=annotate, verbose=True, store=store)
    echo(f"ccs-analyzer report browser: {srv.url}  (folder {srv.library.root}; Ctrl-C stops)")
    if srv.library.store_path():
        echo(f"batch summary from the store {srv.library.store_path()}")
    if srv.allowed_hosts is None:
        echo(f"warning: listening on {host}: reachable from the network")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


__all__ = ["Library", "BrowserServer", "make_server", "serve", "safe_relpath",
           "PathError", "REPORTS_DIR", "STORE_DIR"]
