"""JUnit XML for CI servers (Jenkins, GitLab, GitHub test reporters).

One ``<testsuite>`` per capture; one ``<testcase>`` per session, named ``session S1 goal``,
with a ``<failure>`` when the session did not achieve its goal and the gate counts it (the
message is the session's explanation: root cause or "no cause visible"); one ``<testcase>``
per enabled rule, named ``CODE title``; a rule with findings that fail the gate gets a
``<failure>`` whose message is the first synopsis and whose text lists every such finding (id,
session, frames, synopsis, requirement, culprit); baselined, below-threshold findings and
consequences (counted with their cause) go to ``<system-out>``. A capture
that could not be analysed is one test case with an ``<error>``. Format: the widely used
Ant/Jenkins JUnit schema (testsuites/testsuite/testcase/failure/error/system-out).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET


def _finding_line(f) -> str:
    frames = ", ".join(map(str, f.frames)) or "-"
    cnt = f" (×{f.count})" if getattr(f, "count", 1) > 1 else ""
    req = f"\n    requirement: {f.requirement}" if f.requirement else ""
    return (f"{f.id} [{f.session or 'capture'}] {f.severity} culprit {f.culprit}, frames {frames}{cnt}: "
            f"{f.synopsis}{req}")


def junit_xml(results, rules, fail_on: str) -> str:
    """The JUnit XML text of a gate run. ``results``: analyzer.gate.GateResult list;
    ``rules``: the enabled rule classes (one test case each)."""
    root = ET.Element("testsuites", name="ccs-analyzer gate")
    total = failures = errors = 0
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=r.capture)
        props = ET.SubElement(suite, "properties")
        for k, v in (("path", r.path), ("verdict", r.verdict), ("conformance", r.conformance),
                     ("score", r.score), ("fail_on", fail_on)):
            if v is not None:
                ET.SubElement(props, "property", name=k, value=str(v))
        n = f_ = e_ = 0
        if r.error:
            tc = ET.SubElement(suite, "testcase", classname=f"ccs-analyzer.{r.capture}", name="analysis")
            err = ET.SubElement(tc, "error", message=r.error, type="AnalysisError")
            err.text = r.error
            n, e_ = 1, 1
        else:
            failing = {s.get("id") for s in r.failed_sessions}
            for s in r.sessions:
                tc = ET.SubElement(suite, "testcase", classname=f"ccs-analyzer.{r.capture}",
                                   name=f"session {s.get('id')} goal", time="0")
                n += 1
                text = (f"{s.get('id')}: {s.get('outcome')} (phase {s.get('phase_reached')}), goal "
                        f"{s.get('goal')}, conformance {s.get('conformance')}: {s.get('explanation')}")
                if s.get("id") in failing:
                    el = ET.SubElement(tc, "failure", message=str(s.get("explanation") or s.get("outcome")),
                                       type="session failed")
                    el.text = text
                    f_ += 1
                else:
                    ET.SubElement(tc, "system-out").text = text
            by_rule: dict[str, list] = {}
            for f in r.findings:
                by_rule.setdefault(f.rule, []).append(f)
            counting = {id(f) for f in r.counting}
            codes = [c.code for c in rules] + sorted(set(by_rule) - {c.code for c in rules})
            titles = {c.code: c.title for c in rules}
            for code in codes:
                fs = by_rule.get(code, [])
                tc = ET.SubElement(suite, "testcase", classname=f"ccs-analyzer.{r.capture}",
                                   name=f"{code} {titles.get(code, fs[0].title if fs else '')}".strip(),
                                   time="0")
                n += 1
                fail = [f for f in fs if id(f) in counting]
                if fail:
                    el = ET.SubElement(tc, "failure", message=f"{fail[0].id}: {fail[0].synopsis}",
                                       type=fail[0].severity)
                    el.text = "\n".join(_finding_line(f) for f in fail)
                    f_ += 1
                rest = [f for f in fs if id(f) not in counting]
                if rest:
                    out = ET.SubElement(tc, "system-out")
                    out.text = "\n".join(("baselined or below threshold: " + _finding_line(f)) for f in rest)
        suite.set("tests", str(n))
        suite.set("failures", str(f_))
        suite.set("errors", str(e_))
        total, failures, errors = total + n, failures + f_, errors + e_
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
