"""The rule pack: one module, or a package of modules, per category (message content's Plug &
Charge certificate checks have their own, certificates.py), one small self-documenting class
per rule.

:func:`all_rules` lists every rule class: the project's own (the modules in
:data:`RULE_MODULES`) and those third parties register under the entry-point group
``ccs_analyzer.rules`` (an entry point may name a Rule subclass, a module holding some, or an
iterable of them)::

    [project.entry-points."ccs_analyzer.rules"]
    my_rules = "my_package.ccs_rules"
"""
from __future__ import annotations

import importlib
import inspect
import sys
from functools import lru_cache

from .base import CATEGORIES, CULPRITS, SEVERITIES, Finding, Rule

ENTRY_POINT_GROUP = "ccs_analyzer.rules"

#: The project's rule modules, in category order: a category's rules are one module
#: (``sdp``) or the modules of one package (``slac.sequence``, ``slac.timers``, …), whose
#: ``common`` module holds what they share.
RULE_MODULES = ("slac.sequence", "slac.timers", "slac.attenuation", "slac.matching", "sdp",
                "handshake", "sequence.ending", "sequence.order", "sequence.exchanges",
                "timing.messages", "timing.setup", "timing.loops",
                "session.setup", "session.ids", "session.resume", "session.ending",
                "limits.maxima", "limits.delivery", "limits.plausibility", "limits.parameters",
                "precharge", "cablecheck", "charging_loop",
                "response_codes.codes", "response_codes.notifications", "response_codes.status",
                "message_content.decoding", "message_content.choices", "message_content.receipts",
                "message_content.conditions", "message_content.values",
                "message_content.present_values", "message_content.strings",
                "message_content.ev_status", "certificates", "signatures",
                "tls.handshake", "tls.certificates", "tls.protocols", "transport.tcp",
                "transport.v2gtp", "capture_quality", "control_pilot.states", "control_pilot.pwm",
                "control_pilot.voltages")


def _classes_in(obj) -> list[type[Rule]]:
    if inspect.isclass(obj) and issubclass(obj, Rule) and obj is not Rule and obj.code:
        return [obj]
    if inspect.ismodule(obj):
        return [c for _, c in inspect.getmembers(obj, inspect.isclass)
                if issubclass(c, Rule) and c is not Rule and c.code and c.__module__ == obj.__name__]
    try:
        return [c for c in obj if inspect.isclass(c) and issubclass(c, Rule) and c.code]
    except TypeError:
        return []


def _check(cls: type[Rule], origin: str) -> str | None:
    """Why a rule class cannot be used (None when it can)."""
    if cls.severity not in SEVERITIES:
        return f"{origin}: rule {cls.code} has severity {cls.severity!r}"
    if cls.category not in CATEGORIES:
        return f"{origin}: rule {cls.code} has category {cls.category!r}"
    if cls.culprit not in CULPRITS:
        return f"{origin}: rule {cls.code} has culprit {cls.culprit!r}"
    return None


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class, sorted by code. A third-party rule that is malformed or reuses a
    code is left out with a warning on stderr; the pack's own rules must be well-formed."""
    found: dict[str, type[Rule]] = {}
    for name in RULE_MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue          # category without rules yet
            raise
        for cls in _classes_in(mod):
            why = _check(cls, f"module {name}")
            if why:
                raise ValueError(why)
            if cls.code in found and found[cls.code] is not cls:
                raise ValueError(f"rule code {cls.code} used twice")
            found[cls.code] = cls
    try:
        from importlib.metadata import entry_points
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - broken metadata must not stop the analysis
        eps = ()
    for ep in eps:
        try:
            classes = _classes_in(ep.load())
        except Exception as e:
            print(f"warning: rule plug-in {ep.name}: cannot load: {e}", file=sys.stderr)
            continue
        for cls in classes:
            why = _check(cls, f"plug-in {ep.name}")
            if why or cls.code in found:
                print(f"warning: {why or f'plug-in {ep.name}: rule code {cls.code} already used'}; "
                      "left out", file=sys.stderr)
                continue
            found[cls.code] = cls
    return tuple(sorted(found.values(), key=lambda r: r.code))


__all__ = ["Finding", "Rule", "all_rules", "ENTRY_POINT_GROUP", "RULE_MODULES"]
