"""report.json: the versioned, documented CI contract (docs/report-schema.md).

Top level: ``schema_version``, ``tool`` (name, version), ``capture`` (file, size, sha256,
format, frames, first/last time, duration_s, linktypes, problems), ``frame_accounting``
(frames = decoded + skipped + out_of_scope, with per-layer / per-reason counts),
``messages`` (per layer: ok / error), ``keylog``, ``connections`` (TCP), ``sessions``
(summaries), ``findings``, ``counts`` (findings by severity).
"""
from __future__ import annotations

import json
import math
import os

SCHEMA_VERSION = "2.1"


def _clean(x):
    """JSON-safe: bytes → hex, NaN → None, tuples → lists."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (bytes, bytearray)):
        return x.hex()
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


def _spooled(analysis) -> bool:
    """The findings are on disk (a streamed capture, analyzer/spool.py FindingSpool)."""
    return not isinstance(analysis.findings, list)


def report_dict(analysis, findings: bool = True) -> dict:
    """The report.json content of an :class:`~ccs_analyzer.analyzer.analysis.Analysis`.
    ``findings=False``: without the findings' list (``findings`` is then empty; the
    sessions' finding ids and the counts are there) — what an index needs of a long
    capture whose findings are on disk."""
    head, lists = _parts(analysis, findings)
    counts = head.pop("counts")
    return _clean({**head, **{k: list(v) for k, v in lists.items()}, "counts": counts})


def _parts(analysis, findings: bool = True) -> tuple[dict, dict]:
    """(the report's small items, its three long lists as iterables: ``connections``,
    ``sessions``, ``findings``), uncleaned; ``head["counts"]`` goes last in the document."""
    from ccs_analyzer.analyzer import __version__

    if _spooled(analysis):
        spool = analysis.findings
        items = (f.to_json() for f in spool) if findings else ()
        counts = spool.severities()
        by_session = spool.ids_by_session()
    else:
        items = [f.to_json() for f in analysis.findings]
        counts = {sev: sum(1 for f in items if f["severity"] == sev)
                  for sev in ("error", "warning", "info")}
        by_session = {}
        for f in items:
            by_session.setdefault(f["session"], []).append(f["id"])
        if not findings:
            items = []
    # session order; no session is read back
    sessions = (dict(summ, findings=by_session.get(sid, []))
                for sid, summ in analysis.summaries.items())
    head = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "ccs-analyzer", "version": __version__,
                 "rule_pack": _rule_pack_version(), "profile": getattr(analysis, "profile", "default")},
        "verdict": getattr(analysis, "verdict", None),
        "conformance": getattr(analysis, "conformance", None),
        "score": getattr(analysis, "score", None),
        "capture": analysis.capture,
        "frame_accounting": analysis.accounting,
        "messages": analysis.messages,
        "keylog": analysis.keylog,
        "counts": counts,
    }
    return head, {"connections": analysis.connections, "sessions": sessions, "findings": items}


def _rule_pack_version() -> str:
    """Version of the rule pack: the analyzer version and the number of rules."""
    from ccs_analyzer.analyzer import __version__
    from ccs_analyzer.rules import all_rules
    return f"{__version__}+{len(all_rules())}rules"


def write_json_report(analysis, out_dir: str | os.PathLike) -> str:
    """Write ``report.json`` into ``out_dir`` (created if needed); return its path. A
    streamed capture's connections, sessions and findings are written one at a time (its
    findings read back from disk a segment at a time): the same JSON, without the whole
    document in memory."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "report.json")
    with open(path, "w", encoding="utf-8") as f:
        if not _spooled(analysis):
            json.dump(report_dict(analysis), f, indent=1, ensure_ascii=False)
            f.write("\n")
            return path
        head, lists = _parts(analysis)
        counts = head.pop("counts")
        text = json.dumps(_clean({**head, **{k: k for k in lists}, "counts": counts}),
                          indent=1, ensure_ascii=False)
        for name, items in lists.items():   # each list where its key's placeholder stands
            before, text = text.split(f'"{name}": "{name}"', 1)
            f.write(before + f'"{name}": [')
            for i, x in enumerate(items):
                item = json.dumps(_clean(x), indent=1, ensure_ascii=False)
                f.write(("," if i else "") + "\n  " + item.replace("\n", "\n  "))
            f.write("\n ]")
        f.write(text + "\n")
    return path
