"""Fixtures of the report tests: captures made with the project's own sample builder, their
analyses, and one headless Chromium per test module (Debian's /usr/bin/chromium driven by
Playwright; the browser tests skip when either is missing)."""
from __future__ import annotations

import os
import shutil

import pytest

from ccs_analyzer.analyzer.analysis import analyze_capture

from . import captures

CHROMIUM = os.environ.get("CCS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps", "--disable-extensions"]


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    """Folder with the made captures: fail.pcapng, markup.pcapng, long.pcapng, basic.pcapng
    (basic AC charging seen on the control pilot only)."""
    d = tmp_path_factory.mktemp("made")
    (d / "fail.pcapng").write_bytes(captures.failed_precharge_capture())
    (d / "markup.pcapng").write_bytes(captures.markup_capture())
    (d / "long.pcapng").write_bytes(captures.long_loop_capture())
    (d / "basic.pcapng").write_bytes(captures.basic_charging_capture())
    return d


@pytest.fixture(scope="session")
def analyses(made):
    """name → Analysis of the made captures."""
    return {name: analyze_capture(made / f"{name}.pcapng")
            for name in ("fail", "markup", "long", "basic")}


def _launch():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        pytest.skip(f"chromium not found at {CHROMIUM}")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception as e:  # a broken browser install must not fail the suite
        pw.stop()
        pytest.skip(f"chromium does not start: {e}")
    return pw, browser


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the whole test module."""
    pw, b = _launch()
    yield b
    b.close()
    pw.stop()


class PageWatch:
    """A page with what happened on it: requests, console errors, dialogs, page errors."""

    def __init__(self, page, allow):
        self.page = page
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.console: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", self._dialog)

        def route(r):
            url = r.request.url
            self.requests.append(url)
            if allow(url):
                r.continue_()
            else:
                self.blocked.append(url)
                r.abort()
        page.route("**/*", route)

    def _dialog(self, d):
        self.dialogs.append(d.message)
        d.dismiss()

    def problems(self) -> list[str]:
        """Console errors (CSP violations show here), page errors, dialogs, blocked requests."""
        return ([c for c in self.console if c.startswith("error")] + self.errors
                + [f"dialog: {d}" for d in self.dialogs] + [f"blocked: {u}" for u in self.blocked])


@pytest.fixture
def watched(browser):
    """``watched(allow)`` → a new page (1400×1000) with a :class:`PageWatch`; every request
    not allowed by ``allow(url)`` is aborted and recorded."""
    pages = []

    def make(allow):
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
        page = ctx.new_page()
        pages.append(ctx)
        return PageWatch(page, allow)
    yield make
    for c in pages:
        c.close()
