"""Fingerprints of report.json for every capture of the corpus and every sample: the yardstick
of a refactoring that must not change behaviour (issue 13).

A fingerprint is a set of short SHA-256 digests of the report's canonical JSON: of the whole,
of each top-level key, of each session and of each finding (rule code beside it), so that a
difference says where it is without the report itself being stored (the corpus captures are
not ours to redistribute; neither are reports of them). Fields that are deliberately added to
the report after the fingerprints were taken are listed in :data:`ADDED` and removed before
hashing, so that adding data is allowed and changing data is not.

Regenerate (only when a report change is intended, and say so in the commit):
``python -m tests.report_snapshot`` writes tests/snapshots/report_fingerprints.json anew;
``python -m tests.report_snapshot KEY …`` (e.g. ``samples/captures/NEW.pcapng``) takes or
retakes only those captures' fingerprints and keeps every other one — a new sample then
changes nothing else.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from tests.conftest import CORPUS, REPO

SNAPSHOT = REPO / "tests" / "snapshots" / "report_fingerprints.json"

#: Fields added to report.json on purpose since the fingerprints were taken ("a.b[].c":
#: key c of every item of list b of key a). They are removed before hashing.
ADDED: tuple[str, ...] = ("findings[].values",)

#: Fields that differ from run to run or machine to machine, never compared.
VOLATILE: tuple[str, ...] = ("tool", "capture.path")


def captures() -> dict[str, Path]:
    """Every capture the fingerprints cover, by a stable key: ``corpus/NAME``,
    ``testevents/NAME`` (when ../shared is present) and ``samples/PATH``."""
    out: dict[str, Path] = {}
    if CORPUS.is_dir():
        for p in sorted(CORPUS.iterdir()):
            if p.suffix in (".pcap", ".pcapng"):
                out[f"corpus/{p.name}"] = p
        te = CORPUS / "testevents"
        if te.is_dir():
            for p in sorted(te.glob("*.dump")):
                out[f"testevents/{p.name}"] = p
    samples = REPO / "samples"
    for p in sorted(samples.rglob("*.pcapng")):
        out[f"samples/{p.relative_to(samples).as_posix()}"] = p
    return out


def _drop(obj, parts: list[str]) -> None:
    if not parts or obj is None:
        return
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = obj.get(head[:-2]) if isinstance(obj, dict) else None
        for item in items or []:
            _drop(item, rest)
    elif isinstance(obj, dict):
        if rest:
            _drop(obj.get(head), rest)
        else:
            obj.pop(head, None)


def normalised(report: dict) -> dict:
    """``report`` (report.json as a dict) without :data:`VOLATILE` and :data:`ADDED` fields."""
    r = copy.deepcopy(report)
    for path in VOLATILE + ADDED:
        _drop(r, path.split("."))
    return r


def _digest(obj) -> str:
    s = json.dumps(obj, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(s.encode()).hexdigest()[:16]


def fingerprint(report: dict) -> dict:
    """The fingerprint of one report.json (module docstring): ``{"all", "keys", "sessions",
    "findings"}``."""
    r = normalised(report)
    return {"all": _digest(r),
            "keys": {k: _digest(v) for k, v in sorted(r.items())},
            "sessions": [f"{s.get('id')}:{_digest(s)}" for s in r.get("sessions", [])],
            "findings": [f"{f.get('id')} {f.get('rule')}:{_digest(f)}" for f in r.get("findings", [])]}


def report_of(path: Path) -> dict:
    """report.json of ``path`` as the CLI writes it (analysis, then the JSON report's dict)."""
    from ccs_analyzer.analyzer.analysis import analyze_capture
    from ccs_analyzer.reports.json_report import report_dict

    a = analyze_capture(path)
    try:
        return json.loads(json.dumps(report_dict(a), default=str))
    finally:
        a.close()


def differences(expected: dict, got: dict) -> list[str]:
    """Where two fingerprints differ, in words (empty when they are equal)."""
    out = [f"top-level key {k!r}: {'added' if k not in expected['keys'] else 'removed' if k not in got['keys'] else 'changed'}"
           for k in sorted(set(expected["keys"]) | set(got["keys"]))
           if expected["keys"].get(k) != got["keys"].get(k)]
    for what in ("sessions", "findings"):
        e, g = expected[what], got[what]
        if e != g:
            gone = [x for x in e if x not in g]
            new = [x for x in g if x not in e]
            out.append(f"{what}: {len(e)} → {len(g)}; before only: {gone[:6]}; now only: {new[:6]}")
    return out


def main(keys: list[str] | None = None) -> None:
    """Write :data:`SNAPSHOT` from the current code: every capture's fingerprint, or only
    those of ``keys`` (the others as they were). Raises KeyError for a key that names no
    capture."""
    caps = captures()
    if keys:
        prints = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
        for key in keys:
            prints[key] = fingerprint(report_of(caps[key]))
    else:
        prints = {key: fingerprint(report_of(p)) for key, p in caps.items()}
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(json.dumps(prints, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(prints)} fingerprints → {SNAPSHOT}")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
