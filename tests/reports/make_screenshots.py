"""Make the screenshots of docs/report.md with the headless browser, from captures the
project makes itself (tests/reports/captures.py): ``python -m tests.reports.make_screenshots
[OUT_DIR]`` (default docs/screenshots). Needs Playwright and /usr/bin/chromium.

report-control-pilot.png and report-control-pilot-sequence.png are of the basic-charging
capture (captures.basic_charging_capture: the control pilot only, IEC 61851-1)."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading

from ccs_analyzer.analyzer.analysis import analyze_capture
from ccs_analyzer.reports import browser as br
from ccs_analyzer.reports.annotate import annotate
from ccs_analyzer.reports.html_report import write_html_report
from ccs_analyzer.samples import simulate

from . import captures
from .conftest import CHROMIUM, CHROMIUM_ARGS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(out: str) -> None:
    from playwright.sync_api import sync_playwright

    os.makedirs(out, exist_ok=True)
    work = os.path.join(tempfile.gettempdir(), "ccs-demo")     # shows in the pages' commands
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        lab = os.path.join(work, "lab")
        os.makedirs(os.path.join(lab, "2026-01-12"))
        cap = os.path.join(lab, "2026-01-12", "precharge_stall.pcapng")
        with open(cap, "wb") as f:
            f.write(captures.failed_precharge_capture())
        with open(os.path.join(lab, "2026-01-12", "healthy_session.pcapng"), "wb") as f:
            f.write(simulate("din_dc").pcapng)
        rep = os.path.join(work, "report")
        a = analyze_capture(cap)
        os.makedirs(rep)
        annotate(cap, os.path.join(rep, "annotated.pcapng"), a.findings)
        page_url = "file://" + write_html_report(a, rep)
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
            page.goto(page_url)
            page.screenshot(path=os.path.join(out, "report-overview.png"))
            root = a.summaries["S1"]["root_cause"]
            page.goto(page_url + "#" + root)
            det = page.locator(f"details#{root}")
            det.locator(".payload .tree").first.wait_for()
            page.wait_for_timeout(1300)                 # let the highlight fade
            det.screenshot(path=os.path.join(out, "report-finding.png"))
            page.locator("#S1 .plots").screenshot(path=os.path.join(out, "report-plots.png"))
            loop = page.locator("#S1 details.loop", has_text="PreCharge")
            loop.locator("summary").click()
            msc = page.locator("#S1 .msc")
            page.evaluate("(dy) => window.scrollBy(0, dy)", loop.bounding_box()["y"] - 420)
            box, lb = msc.bounding_box(), loop.bounding_box()
            y0 = max(box["y"], 0)
            page.screenshot(path=os.path.join(out, "report-sequence.png"),
                            clip={"x": box["x"], "y": y0, "width": box["width"],
                                  "height": min(860, lb["y"] + lb["height"] - y0 + 10)})
            basic_cap = os.path.join(work, "basic_charging.pcapng")
            with open(basic_cap, "wb") as f:
                f.write(captures.basic_charging_capture())
            basic_rep = os.path.join(work, "report-basic")
            os.makedirs(basic_rep)
            page.goto("file://" + write_html_report(analyze_capture(basic_cap), basic_rep))
            sec = page.locator("#S1")
            top = sec.locator("h3", has_text="Control pilot").bounding_box()
            plots = sec.locator(".plots").bounding_box()
            page.set_viewport_size({"width": 1360, "height": int(plots["y"] + plots["height"] + 40)})
            top = sec.locator("h3", has_text="Control pilot").bounding_box()
            plots = sec.locator(".plots").bounding_box()
            page.screenshot(path=os.path.join(out, "report-control-pilot.png"),
                            clip={"x": plots["x"] - 8, "y": top["y"] - 6, "width": plots["width"] + 16,
                                  "height": plots["y"] + plots["height"] - top["y"] + 14})
            page.locator("#S1 .msc").screenshot(path=os.path.join(out, "report-control-pilot-sequence.png"))
            page.set_viewport_size({"width": 1360, "height": 900})
            srv = br.make_server(lab, port=0)
            th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            th.start()
            for rel in srv.library.captures():
                srv.jobs.submit(rel)
            srv.jobs.wait(120)
            page.goto(srv.url)
            page.screenshot(path=os.path.join(out, "browser-list.png"))
            page.goto(srv.url + "summary")
            page.screenshot(path=os.path.join(out, "browser-summary.png"))
            srv.shutdown()
            srv.server_close()
            b.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for n in sorted(os.listdir(out)):
        print(os.path.join(out, n), os.path.getsize(os.path.join(out, n)), "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "docs", "screenshots"))
