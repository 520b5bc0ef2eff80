"""report.html without a browser: escaping, the CSP, size and speed on a long session, the
sequence chart's loops, the plots' thinning, the marks of a finding's fields."""
from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from ccs_analyzer.reports import html_report as hr
from ccs_analyzer.reports.plots import axis_range, nice_ticks, thin
from ccs_analyzer.reports.sequence import sequence_rows

from . import captures


def inline(html: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)


def sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_json_for_script_cannot_end_the_block_or_open_a_comment():
    obj = {"EVSEID": "</script><script>alert(1)</script>", "x": "<!-- a -->", "amp": "&lt;",
           "sep": "\u2028\u2029"}
    s = hr.json_for_script(obj)
    assert "<" not in s and ">" not in s and "&" not in s and "\u2028" not in s
    assert json.loads(s) == obj


def test_csp_allows_exactly_the_inline_style_and_script(analyses):
    html = hr.render_html(analyses["fail"])
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1)
    csp = csp.replace("&#39;", "'")
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    styles = inline(html, "style")
    scripts = inline(html, "script")            # the executable one (the data block has a type)
    assert len(styles) == 1 and len(scripts) == 1
    assert sha(styles[0]) in csp and sha(scripts[0]) in csp
    assert html.count("<script") == 2 and 'type="application/json"' in html
    assert " style=" not in html                # style attributes would need 'unsafe-inline'


def test_markup_from_the_capture_is_text(analyses):
    html = hr.render_html(analyses["markup"])
    assert captures.EVSEID_MARKUP not in html and captures.EVCCID_MARKUP not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html     # the session card
    assert html.count("<script") == 2 and "<img" not in html and "<b>bold" not in html
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))
    trees = json.dumps(data["frames"])
    assert "alert(1)" in trees                  # the payload is there, as data


def test_header_and_session_facts(analyses):
    a = analyses["fail"]
    html = hr.render_html(a)
    rep_tool = "rule pack " + hr.report_dict(a)["tool"]["rule_pack"]
    assert rep_tool in html and "profile default" in html and a.capture["sha256"] in html
    assert ">FAIL<" in html
    s = a.summaries["S1"]
    root = s["root_cause"]
    assert s["outcome"] == "timed out" and "V2G_EVCC_PreCharge_Timeout" in s["stop_reason"]["reason"]
    assert f'href="#{root}"' in html and "phase reached" in html and "timed out" in html
    assert "wireshark -r " in html and "frame.number in {" in html


def test_long_session_renders_small(analyses):
    """A 10-minute CurrentDemand loop renders as one collapsed row with a sample and plots
    reduced to their turning points, so the page stays small (its render time is measured
    by benchmarks/bench.py's per-stage profile, not here)."""
    a = analyses["long"]
    counts = a.summaries["S1"]["message_counts"]
    assert counts["CurrentDemandReq"] + counts["CurrentDemandRes"] == 12000
    assert a.summaries["S1"]["duration_s"] > 600
    html = hr.render_html(a)
    assert len(html) < 400_000, len(html)
    points = sum(len(p.split()) for p in re.findall(r'points="([^"]+)"', html))
    assert 10 < points < 12000                 # flat stretches reduce to their ends
    assert html.count('class="mrow msg') < 400  # the loop is one row plus a sample


def test_sequence_collapses_the_loop_and_keeps_a_sample(analyses):
    a = analyses["long"]
    s = a.sessions[0]
    rows = sequence_rows(s, s.events[0].time, {})
    loops = [r for r in rows if r["kind"] == "loop"]
    cd = next(r for r in loops if r["base"] == "CurrentDemand")
    assert cd["count"] == 12000 and cd["dir"] == "both" and cd["codes"] == {"OK": 6000}
    assert 590 < cd["duration_s"] < 610
    assert sum(1 for x in cd["sample"] if x["kind"] == "msg") == 12
    kinds = [r["kind"] for r in rows]
    assert "phase" in kinds and kinds.count("msg") > 10
    names = [r.get("name") for r in rows if r["kind"] == "msg"]
    assert names[:2] == ["CM_SLAC_PARM.REQ", "CM_SLAC_PARM.CNF"]
    assert "SYN" in names and "SessionStopRes" in names and "FIN" in names


def test_findings_marked_at_the_frames_they_cite(analyses):
    a = analyses["fail"]
    s = a.sessions[0]
    cited = {}
    for f in a.findings:
        for fr in f.frames:
            cited.setdefault(fr, []).append(f.id)
    rows = sequence_rows(s, s.events[0].time, cited)
    marked = {fid for r in rows for fid in r.get("findings", [])}
    assert {f.id for f in a.findings if f.session == "S1"} <= marked


def test_plot_thinning_keeps_peaks_and_ends():
    pts = [(i * 0.1, 100.0 + (50.0 if i == 3333 else 0.0) + (i % 7) * 0.01) for i in range(12000)]
    out = thin(pts, 0.0, 1200.0, 400)
    assert len(out) <= 1600
    assert out[0] == pts[0] and out[-1] == pts[-1]
    assert max(v for _, v in out) == 150.0 + (3333 % 7) * 0.01
    flat = thin([(float(i), 5.0) for i in range(1000)], 0, 1000, 400)
    assert flat == [(0.0, 5.0), (999.0, 5.0)]


def test_axis_ticks_are_round_and_cover_the_values():
    assert nice_ticks(0, 100, 4) == [0, 25, 50, 75, 100]
    lo, hi = axis_range(0, 357)
    assert lo == 0 and hi >= 357 and hi == 400


def test_finding_marks_are_the_judged_values_when_the_finding_names_them():
    v = {"path": "PreChargeRes.EVSEPresentVoltage", "frame": 97, "actual": 347.0, "limit": 344.0, "unit": "V"}
    f = {"synopsis": "EVSEPresentVoltage 347 V above EVTargetVoltage", "measured": 347.0,
         "evidence": {"actual": "347 V", "EVTargetVoltage": 344.0}, "values": [v]}
    assert hr.finding_marks(f) == {"values": [v]}          # no words scraped from the text
    assert hr.finding_marks(dict(f, values=[])) == {"values": []}   # names none: marks none


def test_certificate_rows_name_each_certificate_and_its_problem():
    rows = hr._certificate_rows([{"element": "PaymentDetailsReq.ContractSignatureCertChain", "certificates": [
        {"index": 0, "subject_cn": "<b>x</b>", "issuer_cn": "CA", "not_before": "2025", "not_after": "2026",
         "key_type": "EC", "key_curve": "secp256r1", "issued_by_next": False, "problems": []},
        {"index": 1, "error": "certificate does not parse"}]}])
    (chain,) = rows
    assert chain["rows"][0] == [0, "<b>x</b>", "CA", "2025", "2026", "EC secp256r1",
                                "not issued by the next certificate"]
    assert chain["rows"][1][6] == "certificate does not parse"


def test_rule_docs_are_parsed_into_sections():
    d = hr.parse_doc("Title line.\n\nWhat it checks: a\nb.\nWhy it matters: c.\nFix (SECC): d.\nSource: e.")
    assert d["summary"] == "Title line."
    assert [n for n, _ in d["sections"]] == ["What it checks", "Why it matters", "Fix (SECC)", "Source"]
    assert d["sections"][0][1] == "a b."


def test_a_rule_docs_example_keeps_its_trace_lines():
    d = hr.parse_doc("T.\n\nSource: e.\n\nExample:\n\n    #3 A.REQ → #4 A.CNF\n      (+0.3 s)\n    #9 FIN")
    assert d["sections"][-1] == ("Example", "#3 A.REQ → #4 A.CNF\n  (+0.3 s)\n#9 FIN")
    assert d["sections"][0] == ("Source", "e.")


def test_rule_doc_literals_become_code_and_markup_stays_text():
    html = str(hr.doc_text("within ``tolerance_v`` of <b>EVTargetVoltage</b> & ``limit_s``"))
    assert html == ("within <code>tolerance_v</code> of &lt;b&gt;EVTargetVoltage&lt;/b&gt; &amp; "
                    "<code>limit_s</code>")


def test_write_links_an_annotated_capture_next_to_the_report(analyses, made, tmp_path):
    from ccs_analyzer.reports.annotate import annotate
    annotate(made / "fail.pcapng", tmp_path / "annotated.pcapng", analyses["fail"].findings)
    path = hr.write_html_report(analyses["fail"], tmp_path)
    html = open(path, encoding="utf-8").read()
    assert 'href="annotated.pcapng"' in html
    assert f"wireshark -r {tmp_path / 'annotated.pcapng'}" in html


@pytest.mark.parametrize("name", ["2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng",
                                  "ISO-2_DC_DS5366.pcapng", "2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng",
                                  "ISO-20_mTLS_DC_DS5366_Josev.pcapng",
                                  "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng"])
def test_corpus_reports_render(corpus, name):
    from ccs_analyzer.analyzer.analysis import analyze_capture
    a = analyze_capture(corpus / name)
    html = hr.render_html(a)
    assert len(html) < 1_500_000
    for f in a.findings:
        assert f'id="{f.id}"' in html
    for s in a.sessions:
        assert f'id="{s.id}"' in html


def _page_data(html: str) -> dict:
    """The JSON data block of a report page (frames, findings …)."""
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S):
        return json.loads(block)
    raise AssertionError("no data block")


def test_signed_messages_show_their_check_beside_the_payload():
    """A signed AuthorizationReq of the simulator's Plug & Charge sample: the page's frame
    data carries "signature valid, signed by the contract certificate …"; the broken one of
    iso2_dc_pnc_signature_invalid says INVALID and why (reports/html_report.signature_line)."""
    from pathlib import Path

    from ccs_analyzer.analyzer.analysis import analyze_capture
    from ccs_analyzer.samples.build import capture_path
    samples = Path(__file__).resolve().parents[2] / "samples"
    for name, want in (("iso2_dc_pnc", "signature valid, signed by the contract certificate"),
                       ("iso2_dc_pnc_signature_invalid", "signature INVALID: SignatureValue does not verify")):
        data = _page_data(hr.render_html(analyze_capture(capture_path(name, samples))))
        lines = [ev["signature"] for evs in data["frames"].values() for ev in evs if "signature" in ev]
        assert any(line["text"].startswith(want) for line in lines), (name, lines)
        assert all(line["ok"] is (name == "iso2_dc_pnc") for line in lines), (name, lines)


def test_certificate_chains_say_their_anchoring():
    rows = hr._certificate_rows([{"element": "PaymentDetailsReq.ContractSignatureCertChain", "certificates": [],
                                  "trust": {"status": "not anchored", "reason": "no path"}}])
    assert rows[0]["trust"] == "NOT anchored in any given trust anchor: no path"
    assert hr.trust_text({"status": "unanchored"}).startswith("unanchored: no trust anchors given")


def test_the_root_cause_marks_the_values_its_rule_judged(analyses):
    """PRE001 names the voltages it judged: the page marks those (Finding.values), with no
    words scraped from its synopsis."""
    a = analyses["fail"]
    root = a.summaries["S1"]["root_cause"]
    f = next(f for f in a.findings if f.id == root)
    assert f.rule == "PRE001"
    paths = {v["path"] for v in f.values}
    assert {"PreChargeReq.EVTargetVoltage", "PreChargeRes.EVSEPresentVoltage"} <= paths
    assert all(v["frame"] in f.frames for v in f.values)
    mark = _page_data(hr.render_html(a))["marks"][root]
    assert mark == {"values": f.values}
