"""The report browser's server without a browser: confinement of paths, Host and token
checks, analysis on demand, the batch summary, the MAC vendor lookup."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import threading

import pytest

from ccs_analyzer.reports import browser as br
from ccs_analyzer.dissectors.oui import vendor


@pytest.fixture
def server(made, tmp_path):
    root = tmp_path / "runs"
    (root / "day1").mkdir(parents=True)
    shutil.copy(made / "fail.pcapng", root / "day1" / "fail.pcapng")
    shutil.copy(made / "markup.pcapng", root / "markup.pcapng")
    outside = tmp_path / "secret.pcapng"
    outside.write_bytes(b"secret")
    os.symlink(outside, root / "link-out.pcapng")
    os.symlink(tmp_path, root / "dir-out")
    (root / ".hidden").mkdir()
    shutil.copy(made / "markup.pcapng", root / ".hidden" / "h.pcapng")
    srv = br.make_server(root, port=0)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(srv, path, host=None, method="GET", body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    h = {"Host": host or f"127.0.0.1:{srv.port}"}
    h.update(headers or {})
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in h.items():
        c.putheader(k, v)
    data = json.dumps(body).encode() if body is not None else b""
    if method == "POST":
        c.putheader("Content-Type", "application/json")
        c.putheader("Content-Length", str(len(data)))
    c.endheaders(data if method == "POST" else None)
    r = c.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    c.close()
    return out


def test_default_is_loopback_and_a_free_port(server):
    assert server.server_address[0] == "127.0.0.1" and server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_lists_captures_inside_the_folder_only(server):
    assert server.library.captures() == ["day1/fail.pcapng", "markup.pcapng"]
    with open(os.path.join(server.library.root, "day1", "old.pcap.gz"), "wb") as f:
        f.write(b"\x1f\x8b")      # the capture reader reads no gzip: not listed
    assert server.library.captures() == ["day1/fail.pcapng", "markup.pcapng"]
    st, hd, body = get(server, "/")
    assert st == 200 and b"day1/fail.pcapng" in body and b"link-out" not in body
    csp = hd["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert hd["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", [
    "/captures/../secret.pcapng", "/captures/%2e%2e/secret.pcapng", "/captures/..%2Fsecret.pcapng",
    "/captures//etc/passwd", "/captures/%2Fetc%2Fpasswd", "/captures/link-out.pcapng",
    "/captures/dir-out/secret.pcapng", "/captures/.hidden/h.pcapng", "/captures/day1%5c..%5c..%5csecret.pcapng",
    "/captures/day1/fail.pcapng%00.txt", "/reports/../../secret.pcapng/report.html",
    "/reports/%2e%2e/%2e%2e/x/report.json", "/reports//etc/report.html", "/reports/x/../../../etc/passwd",
    "/reports/day1/fail.pcapng/secret.txt", "/etc/passwd", "/captures/C:%5cwindows",
])
def test_refuses_paths_outside_the_folder(server, path):
    st, _, body = get(server, path)
    assert st == 404, (path, body)


def test_serves_a_capture_inside(server):
    st, hd, body = get(server, "/captures/day1/fail.pcapng")
    assert st == 200 and body[:4] == b"\x0a\x0d\x0d\x0a" and "attachment" in hd["Content-Disposition"]


def test_foreign_host_and_missing_token_are_refused(server):
    assert get(server, "/", host="evil.example:80")[0] == 403        # DNS rebinding
    assert get(server, "/api/analyze", method="POST", body={"path": "markup.pcapng"})[0] == 403
    st, _, _ = get(server, "/api/analyze", method="POST", body={"path": "markup.pcapng"},
                   headers={"X-CCS-Token": server.token, "Origin": "http://evil.example"})
    assert st == 403
    st, _, _ = get(server, "/api/analyze", method="POST", body={"path": "../secret.pcapng"},
                   headers={"X-CCS-Token": server.token})
    assert st == 404


def test_analysis_on_demand_writes_the_reports(server):
    st, _, body = get(server, "/api/analyze", method="POST", body={"path": "day1/fail.pcapng"},
                      headers={"X-CCS-Token": server.token, "Origin": f"http://127.0.0.1:{server.port}"})
    assert st == 202 and json.loads(body)["state"] in ("queued", "running", "done")
    assert server.jobs.wait(120)
    jobs = json.loads(get(server, "/api/jobs")[2])
    assert jobs["day1/fail.pcapng"]["state"] == "done", jobs
    out = server.library.root + "/.ccs-reports/day1/fail.pcapng"
    assert sorted(os.listdir(out)) == ["annotated.pcapng", "report.html", "report.json"]
    st, _, html = get(server, "/reports/day1/fail.pcapng/report.html")
    assert st == 200 and b'href="annotated.pcapng"' in html
    entry = json.loads(get(server, "/api/captures")[2])[0]
    assert entry["verdict"] == "fail" and entry["status"] == "analysed" and entry["sessions"][0]["root_cause"]
    summ = json.loads(get(server, "/api/summary")[2])
    assert summ["sessions"] == 1 and summ["failed"] == 1
    assert summ["by_phase"][0]["phase"] == "session stop" and summ["by_rule"][0]["failed"] == 1


def test_report_made_by_analyze_into_the_reports_folder_is_found(server, made):
    from ccs_analyzer.analyzer.cli import analyze_to_dir
    root = server.library.root
    analyze_to_dir(os.path.join(root, "markup.pcapng"), os.path.join(root, ".ccs-reports", "markup"), None)
    e = server.library.entry("markup.pcapng")
    assert e["status"] == "analysed" and e["report"] == "/reports/markup" and e["verdict"] == "fail"


def test_mac_vendor():
    assert vendor(None) is None
    assert vendor("02:00:00:00:e5:01") == "02:00:00 (locally administered)"
    v = vendor("dc:0e:a1:11:67:08")
    if os.path.isfile("/usr/share/wireshark/manuf"):
        assert "Compal" in v
    else:
        assert v == "dc:0e:a1"


def test_safe_relpath():
    assert br.safe_relpath("a/b.pcapng") == "a/b.pcapng"
    for bad in ("", "/a", "a/../b", "./a", "a//b", ".ccs-reports/x", "a\\b", "C:x", "a\x00"):
        with pytest.raises(br.PathError):
            br.safe_relpath(bad)


def test_serve_command_is_registered():
    from typer.testing import CliRunner

    from ccs_analyzer.analyzer.cli import app
    r = CliRunner().invoke(app, ["serve", "--help"])
    assert r.exit_code == 0 and "--host" in r.output and "--port" in r.output
