"""Every rule of the pack on its own fixture (analyzer/rule_examples.py ``EXAMPLE_SCENARIOS``:
a sample scenario that makes it fire): its findings there match the snapshot
tests/rules/examples/CODE.json (rule, severity, culprit, session, frames, synopsis), and its
docstring's "Example" section shows frames of that capture by the names they carry there,
so neither can drift from what the rule does. The per-module tests next to this one keep
what the fixtures do not show (close cases that must stay silent, boundaries, variants,
measured values); a plain trigger that a fixture shows is not repeated there.

Regenerate the snapshots after a deliberate change of a rule or a sample (then read the
diff): ``python -m tests.rules.test_rule_examples [CODE …]``.
"""
from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

import pytest

from ccs_analyzer.analyzer.rule_examples import EXAMPLE_SCENARIOS, fixture_events, findings_of
from ccs_analyzer.rules import all_rules
from ccs_analyzer.samples.scenario import scenario_names

SNAPSHOTS = Path(__file__).parent / "examples"
RULES = {r.code: r for r in all_rules() if r.__module__.startswith("ccs_analyzer.rules.")}
CODES = sorted(RULES)


def snapshot(code: str) -> dict:
    """What the snapshot of ``code`` holds: its fixture and its findings there."""
    return {"rule": code, "scenario": EXAMPLE_SCENARIOS[code],
            "findings": [{"severity": f.severity, "culprit": f.culprit, "session": f.session,
                          "frames": f.frames, "synopsis": f.synopsis} for f in findings_of(code)]}


def example_section(doc: str | None) -> list[str]:
    """The lines of a docstring's "Example:" section (dedented, blank lines dropped): the
    indented lines after a line ``Example:``, up to the next unindented line."""
    lines = inspect.cleandoc(doc or "").splitlines()
    try:
        start = lines.index("Example:") + 1
    except ValueError:
        return []
    out = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        if line.strip():
            out.append(line.strip())
    return out


def test_every_rule_has_a_fixture_that_exists():
    assert sorted(EXAMPLE_SCENARIOS) == CODES
    assert set(EXAMPLE_SCENARIOS.values()) <= set(scenario_names())


def test_every_snapshot_belongs_to_a_rule():
    assert sorted(p.stem for p in SNAPSHOTS.glob("*.json")) == CODES


@pytest.mark.parametrize("code", CODES)
def test_findings_on_the_fixture(code):
    got = snapshot(code)
    assert got["findings"], f"{code} does not fire on its fixture {EXAMPLE_SCENARIOS[code]}"
    want = json.loads((SNAPSHOTS / f"{code}.json").read_text())
    assert got == want, f"regenerate with `python -m tests.rules.test_rule_examples {code}`"


@pytest.mark.parametrize("code", CODES)
def test_the_example_shows_the_fixture(code):
    lines = example_section(RULES[code].__doc__)
    assert lines, f"{code}: no Example section in its docstring"
    names: dict[int, set[str]] = {}
    for e in fixture_events(EXAMPLE_SCENARIOS[code]):
        names.setdefault(e.frame, set()).add(e.name)
    shown = 0
    for line in lines:
        for m in re.finditer(r"#(\d+) ", line):
            frame, rest = int(m.group(1)), line[m.end():]
            assert any(rest.startswith(n) for n in names.get(frame, ())), \
                f"{code}: frame {frame} of {EXAMPLE_SCENARIOS[code]} is not {rest.split()[0]!r}"
            shown += 1
    frames = {f for x in findings_of(code) for f in x.frames}
    assert shown or not frames & set(names), f"{code}: the Example shows none of its frames"


def main(codes: list[str]) -> None:
    """Write the snapshots of ``codes`` (all rules when empty)."""
    SNAPSHOTS.mkdir(exist_ok=True)
    for code in codes or CODES:
        p = SNAPSHOTS / f"{code}.json"
        s = snapshot(code)
        found = ",\n  ".join(json.dumps(f, ensure_ascii=False) for f in s["findings"])
        p.write_text(f'{{"rule": "{code}", "scenario": "{s["scenario"]}", "findings": [\n  {found}\n]}}\n')
        print(p)


if __name__ == "__main__":
    main([c.upper() for c in sys.argv[1:]])
