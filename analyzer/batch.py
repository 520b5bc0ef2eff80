"""The batch summary of a folder of reports (the report browser's ``/summary``, docs/report.md
"The report browser"): failure rates by phase reached, by rule and by EV × EVSE pairing,
computed from the folder's report.json files — or, when the folder has a store, the fleet
summary read from it (analyzer/fleet.py :func:`~ccs_analyzer.analyzer.fleet.fleet_summary`).

A session counts as failed when its report says so (:func:`ccs_analyzer.analyzer.scoring.failed`:
its goal is not achieved, docs/scoring.md); this module counts, it judges nothing. The EV of a
pairing is its EVCCID, else the vendor of its MAC address (Wireshark's manuf, reports/oui.py);
the EVSE its EVSEID, else its MAC's vendor.
"""
from __future__ import annotations

import os
from typing import Iterable

from .fleet import mac_vendor
from .outcome import PHASES
from .scoring import failed


def _pct(n: int, of: int) -> float:
    return round(100.0 * n / of, 1) if of else 0.0


def _rule_row(f: dict) -> dict:
    return {"rule": f["rule"], "title": f.get("title") or "", "sessions": 0, "failed": 0,
            "root_cause": 0, "captures": 0, "severity": f.get("severity")}


def batch_summary(reports: Iterable[tuple[str, dict | None]]) -> dict:
    """Failure rates across reports (module docstring). ``reports``: (capture's relative
    path, its report.json as a dict or None when it has none).

    Returns ``{"kind": "reports", "captures", "sessions", "failed", "rate" (% of sessions),
    "verdicts" ({verdict: captures}), "by_phase", "by_rule", "by_pair"}``: ``by_phase``
    items ``{"phase", "sessions", "failed", "outcomes", "rate" (% of the phase's sessions),
    "share" (% of all failures)}`` in the order of the protocol's phases
    (analyzer/outcome.py PHASES); ``by_rule`` items ``{"rule", "title", "severity",
    "sessions", "failed", "root_cause", "captures", "rate" (% of all sessions), "fail_rate"
    (% of the rule's sessions)}``; ``by_pair`` items ``{"ev", "ev_vendor", "evse",
    "evse_vendor", "sessions", "failed", "captures", "root_rules", "rate"}``."""
    phases: dict[str, dict] = {}
    rules: dict[str, dict] = {}
    pairs: dict[tuple, dict] = {}
    total = failed_total = 0
    captures = 0
    verdicts: dict[str, int] = {}
    for rel, rep in reports:
        if not rep:
            continue
        captures += 1
        verdicts[rep.get("verdict") or "?"] = verdicts.get(rep.get("verdict") or "?", 0) + 1
        fmap = {f.get("id"): f for f in rep.get("findings") or []}
        seen_rules_capture = set()
        for s in rep.get("sessions") or []:
            total += 1
            bad = failed(s)
            failed_total += bad
            ph = s.get("phase_reached") or "(none)"
            p = phases.setdefault(ph, {"phase": ph, "sessions": 0, "failed": 0, "outcomes": {}})
            p["sessions"] += 1
            p["failed"] += bad
            p["outcomes"][s.get("outcome") or "?"] = p["outcomes"].get(s.get("outcome") or "?", 0) + 1
            root = fmap.get(s.get("root_cause"))
            srules = {fmap[i]["rule"]: fmap[i] for i in s.get("findings") or [] if i in fmap}
            for code, f in srules.items():
                r = rules.setdefault(code, _rule_row(f))
                r["sessions"] += 1
                r["failed"] += bad
                if code not in seen_rules_capture:
                    r["captures"] += 1
                    seen_rules_capture.add(code)
            if root is not None and root.get("rule") in rules:
                rules[root["rule"]]["root_cause"] += 1
            ev = s.get("EVCCID") or mac_vendor(s.get("ev_mac")) or "(unknown EV)"
            evse = s.get("EVSEID") or mac_vendor(s.get("evse_mac")) or "(unknown EVSE)"
            q = pairs.setdefault((ev, evse), {"ev": ev, "ev_vendor": mac_vendor(s.get("ev_mac")),
                                              "evse": evse, "evse_vendor": mac_vendor(s.get("evse_mac")),
                                              "sessions": 0, "failed": 0, "captures": set(),
                                              "root_rules": {}})
            q["sessions"] += 1
            q["failed"] += bad
            q["captures"].add(rel)
            if root is not None:
                q["root_rules"][root.get("rule")] = q["root_rules"].get(root.get("rule"), 0) + 1
        for f in rep.get("findings") or []:
            if f.get("session") is None:
                r = rules.setdefault(f["rule"], _rule_row(f))
                if f["rule"] not in seen_rules_capture:
                    r["captures"] += 1
                    seen_rules_capture.add(f["rule"])

    order = {p: i for i, p in enumerate(PHASES)}
    by_phase = sorted(phases.values(), key=lambda p: order.get(p["phase"], -1))
    for p in by_phase:
        p["rate"] = _pct(p["failed"], p["sessions"])
        p["share"] = _pct(p["failed"], failed_total)
    by_rule = sorted(rules.values(), key=lambda r: (-r["failed"], -r["sessions"], r["rule"]))
    for r in by_rule:
        r["rate"] = _pct(r["sessions"], total)
        r["fail_rate"] = _pct(r["failed"], r["sessions"])
    by_pair = sorted(pairs.values(), key=lambda q: (-q["failed"], -q["sessions"], q["ev"], q["evse"]))
    for q in by_pair:
        q["captures"] = len(q["captures"])
        q["rate"] = _pct(q["failed"], q["sessions"])
    return {"kind": "reports", "captures": captures, "sessions": total, "failed": failed_total,
            "rate": _pct(failed_total, total), "verdicts": verdicts,
            "by_phase": by_phase, "by_rule": by_rule, "by_pair": by_pair}


def folder_summary(store: str | os.PathLike | None,
                   reports: Iterable[tuple[str, dict | None]]) -> dict:
    """The batch summary of a folder: with a ``store``, its
    :func:`~ccs_analyzer.analyzer.fleet.fleet_summary` (``kind`` "fleet"); otherwise, or when
    the store cannot be read (no duckdb, a damaged file: ``store_error`` says why),
    :func:`batch_summary` of ``reports`` (``kind`` "reports"; ``reports`` is read only then)."""
    why = None
    if store:
        try:
            from .fleet import fleet_summary
            return fleet_summary(store)
        except (ImportError, ValueError, OSError) as e:      # FleetError is a ValueError
            why = f"{store}: {e}"
    out = batch_summary(reports)
    out["store_error"] = why
    return out


__all__ = ["batch_summary", "folder_summary"]
