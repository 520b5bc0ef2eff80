"""The report and the report browser in a real headless browser (Debian's chromium driven by
Playwright; skipped without them): offline rendering, plots, findings that expand to frames
and payloads, filters, markup from the capture staying text, the browser's list, analysis
on demand and its confinement."""
from __future__ import annotations

import shutil
import threading
import time
import urllib.parse

import pytest

from ccs_analyzer.reports import browser as br
from ccs_analyzer.reports.html_report import write_html_report

from . import captures


@pytest.fixture(scope="module")
def reports(tmp_path_factory, made, analyses):
    """name → file:// URL of report.html written for each made capture."""
    out = {}
    for name, a in analyses.items():
        d = tmp_path_factory.mktemp(f"report-{name}")
        out[name] = (d / "report.html").as_uri() if write_html_report(a, d) else None
    return out


def offline(url: str) -> bool:
    """Only the report file itself may load: no network, no other file."""
    return url.startswith("file://") and url.endswith("/report.html")


def open_report(watched, url):
    w = watched(lambda u, url=url: u.split("#")[0] == url)
    w.page.goto(url)
    w.page.wait_for_load_state("load")
    return w


def test_report_renders_offline_without_requests(watched, reports):
    w = open_report(watched, reports["fail"])
    assert w.requests == [reports["fail"]]          # nothing but the page itself
    assert w.problems() == []                       # no CSP violation, no script error
    assert w.page.locator("header .verdict").inner_text() == "FAIL"
    assert w.page.locator("#sessions tbody tr").count() == 1


def test_plots_are_drawn(watched, reports):
    w = open_report(watched, reports["fail"])
    panels = w.page.locator("svg.plot")
    assert panels.count() >= 4
    ids = [panels.nth(i).get_attribute("data-panel") for i in range(panels.count())]
    assert {"voltage", "current", "precharge"} <= set(ids)
    pts = w.page.eval_on_selector_all(
        "svg.plot[data-panel=precharge] polyline", "ps => ps.map(p => p.points.numberOfItems)")
    assert pts and max(pts) >= 5                    # the ramp (a flat stall keeps its ends)
    every = w.page.eval_on_selector_all("svg.plot polyline", "ps => ps.map(p => p.points.numberOfItems)")
    assert len(every) >= 6 and sum(every) > 40
    box = w.page.locator("svg.plot[data-panel=voltage]").bounding_box()
    assert box["width"] > 300 and box["height"] > 60
    assert w.page.locator("svg.plot a.fmk").count() > 0      # findings on the time axis


def test_finding_expands_to_frames_and_payload(watched, reports):
    w = open_report(watched, reports["fail"])
    page = w.page
    root = page.locator("#sessions tbody tr td a[href^='#F']").first
    fid = root.get_attribute("href")[1:]
    root.click()
    det = page.locator(f"details#{fid}")
    # the page opens it on the hashchange event the click fires, after click() returns
    page.wait_for_selector(f"details#{fid}[open]", timeout=10_000)
    assert det.get_attribute("open") is not None
    assert det.locator(".frames button.fr").count() >= 2
    trees = det.locator(".payload .tree")
    trees.first.wait_for()
    assert trees.count() >= 2
    assert det.locator(".payload li.mark").count() > 0               # the fields it names
    judged = det.locator(".payload li.mark.actual", has_text="EVSEPresentVoltage")  # judged values
    assert judged.count() > 0 and "expected: 370 V" in judged.first.inner_text()
    assert "frame.number in {" in det.locator(".ws code").first.inner_text()
    assert "About" in det.inner_text() and "What it checks" in det.inner_text()
    # a frame handle opens the frame panel with its filter and payload
    det.locator(".frames button.fr").first.click()
    panel = page.locator("#frame-panel")
    assert panel.is_visible()
    assert "frame.number ==" in panel.inner_text() and "wireshark -r" in panel.inner_text()
    assert panel.locator(".tree").count() == 1
    assert w.problems() == []


def test_certificates_in_a_payload_are_tabulated(watched, tmp_path):
    from pathlib import Path

    from ccs_analyzer.analyzer.analysis import analyze_capture
    sample = Path(__file__).resolve().parents[2] / "samples" / "captures" / \
        "iso2_dc_pnc_contract_expired_accepted.pcapng"
    assert write_html_report(analyze_capture(sample), tmp_path)
    url = (tmp_path / "report.html").as_uri()
    w = open_report(watched, url)
    w.page.locator("details.finding summary", has_text="MSG016").first.click()
    table = w.page.locator("table.certs").first
    table.wait_for()
    text = table.inner_text()
    assert "DESIMC0NTRACT01" in text and "MO SubCA2 Sim" in text and "2025-12-29" in text
    assert w.problems() == []


def test_message_sequence_chart(watched, reports):
    w = open_report(watched, reports["long"])
    page = w.page
    msc = page.locator(".msc")
    assert msc.locator(".arrow.ltr").count() > 5 and msc.locator(".arrow.rtl").count() > 5
    loop = msc.locator("details.loop", has_text="CurrentDemand")
    assert "×6000" in loop.locator("summary").inner_text()
    assert not loop.locator(".loop-body").is_visible()
    loop.locator("summary").click()
    assert loop.locator(".loop-body .mrow.msg").count() >= 12     # ends + any a finding cites
    texts = msc.inner_text()
    for name in ("SLAC", "SYN", "SessionSetupReq", "SessionStopRes", "FIN"):
        assert name in texts
    assert w.problems() == []


def test_filters(watched, reports):
    w = open_report(watched, reports["markup"])
    page = w.page
    findings = page.locator("details.finding")
    n = findings.count()
    assert n >= 2
    # consequences hang collapsed under their causes until asked for
    n_cons = page.locator("details.finding[data-consequence='1']").count()
    assert page.locator("#shown-count").inner_text() == f"{n - n_cons} of {n} shown"
    page.check("#filters input[name=consequences]")

    def visible():
        return [f for f in findings.all() if f.is_visible()]
    sev = {f.get_attribute("data-severity") for f in findings.all()}
    assert "error" in sev and len(sev) >= 2
    page.uncheck("#filters input[name=severity][value=error]")
    assert all(f.get_attribute("data-severity") != "error" for f in visible())
    page.check("#filters input[name=severity][value=error]")
    assert len(visible()) == n
    cat = findings.first.get_attribute("data-category")
    page.select_option("#filters select[name=category]", cat)
    assert visible() and all(f.get_attribute("data-category") == cat for f in visible())
    page.select_option("#filters select[name=category]", "")
    cul = findings.first.get_attribute("data-culprit")
    page.select_option("#filters select[name=culprit]", cul)
    assert all(f.get_attribute("data-culprit") == cul for f in visible())
    page.select_option("#filters select[name=culprit]", "")
    page.select_option("#filters select[name=culprit]", "")
    assert page.locator("#shown-count").inner_text() == f"{n} of {n} shown"


def test_markup_in_the_capture_does_not_inject(watched, reports):
    w = open_report(watched, reports["markup"])
    page = w.page
    page.click("#expand-all")
    page.locator("details.finding .payload .tree").first.wait_for()
    page.locator("button.fr").first.click()
    assert w.dialogs == [] and w.errors == []
    assert page.locator("img").count() == 0 and page.locator("b:text('bold')").count() == 0
    assert page.locator("script").count() == 2
    body = page.locator("body").inner_text()
    assert captures.EVSEID_MARKUP in body                       # shown as text
    trees = page.locator(".payload .tree").all_inner_texts()
    assert any(captures.EVSEID_MARKUP in t or captures.EVCCID_MARKUP in t for t in trees)
    assert w.problems() == []


# ---------------------------------------------------------------------------- the browser
@pytest.fixture(scope="module")
def served(tmp_path_factory, made):
    root = tmp_path_factory.mktemp("served")
    (root / "bench").mkdir()
    shutil.copy(made / "fail.pcapng", root / "bench" / "fail.pcapng")
    shutil.copy(made / "markup.pcapng", root / "x<img src=x onerror=alert(1)>.pcapng")
    secret = tmp_path_factory.mktemp("outside") / "secret.pcapng"
    secret.write_bytes(b"secret")
    (root / "out.pcapng").symlink_to(secret)
    srv = br.make_server(root, port=0)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def local(srv):
    base = f"http://127.0.0.1:{srv.port}/"
    return lambda u: u.startswith(base)


def test_browser_lists_analyses_and_links_to_findings(watched, served):
    w = watched(local(served))
    page = w.page
    page.goto(served.url)
    rows = page.locator("#captures tbody tr")
    assert rows.count() == 2
    assert [r.get_attribute("data-path") for r in rows.all()] == [
        "bench/fail.pcapng", "x<img src=x onerror=alert(1)>.pcapng"]
    for r in rows.all():
        assert "not analysed" in r.inner_text()
    t = time.time()
    page.locator("#analyze-missing").click()
    verdicts = page.locator("#captures .verdict")
    while verdicts.count() < 2 and time.time() - t < 60:   # the page reloads when both are done
        page.wait_for_timeout(200)
    assert time.time() - t < 60
    row = page.locator("#captures tbody tr[data-path='bench/fail.pcapng']")
    assert row.locator(".verdict").inner_text() == "fail"
    # one click from the list to the root cause, expanded, with its payloads
    row.locator("td.ses a").first.click()
    page.wait_for_load_state("load")
    assert "/reports/bench/fail.pcapng/report.html#F" in page.url
    fid = urllib.parse.urlsplit(page.url).fragment
    det = page.locator(f"details#{fid}")
    assert det.get_attribute("open") is not None
    det.locator(".payload .tree").first.wait_for()
    assert page.locator("#back-to-list").is_visible()
    page.goto(served.url + "summary")
    assert page.locator("#by-phase tbody tr").count() >= 1
    assert page.locator("#by-rule tbody tr").count() >= 1
    assert "100.0 %" in page.locator("#by-pair").inner_text()
    assert w.dialogs == [] and page.locator("img").count() == 0
    assert w.problems() == []


def test_browser_refuses_paths_outside(watched, served):
    w = watched(local(served))
    req = w.page.request
    for path in ("captures/out.pcapng", "captures/..%2F..%2Fetc%2Fpasswd", "captures/%2Fetc%2Fpasswd",
                 "reports/..%2F..%2Fetc/report.html", "captures/bench/..%2F..%2F..%2Fetc%2Fpasswd"):
        assert req.get(served.url + path).status == 404, path
    assert req.get(served.url + "captures/bench/fail.pcapng").status == 200
    r = req.post(served.url + "api/analyze", data='{"path": "bench/fail.pcapng"}',
                 headers={"Content-Type": "application/json"})
    assert r.status == 403                          # no token: another site cannot trigger work
