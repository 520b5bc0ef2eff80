"""Profiles: TOML files that enable, disable, re-rate and re-parameterise rules, cap the
findings per rule, and tune the scoring (docs/profiles.md).

    [engine]
    max_findings_per_rule = 20        # per rule and session; the rest are merged (count)

    [scoring]                         # see analyzer/scoring.py
    error = 40
    warning = 10
    info = 0
    fail_below = 60
    warn_below = 90

    [rules]
    disable = ["TRN002", "timing"]    # rule codes or whole categories
    enable = ["MSG009"]               # opt-in rules

    [rules.PRE001]                    # one rule
    severity = "warning"
    limit_s = 10.0                    # any of the rule's parameters
    max_findings = 5
    enabled = true

Raises :class:`ProfileError` (a ValueError) naming the file and the problem for unknown
rules, parameters, severities or malformed TOML.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SEVERITIES = ("error", "warning", "info")

DEFAULT_SCORING = {"error": 40.0, "warning": 10.0, "info": 0.0, "fail_below": 60.0,
                   "warn_below": 90.0}


class ProfileError(ValueError):
    """A profile that cannot be used, and why."""


@dataclass
class RuleSettings:
    """Settings of one rule after the profile: enabled, severity (None: the rule's own),
    parameter overrides, finding cap."""

    enabled: bool = True
    severity: str | None = None
    params: dict = field(default_factory=dict)
    max_findings: int | None = None


@dataclass
class Profile:
    """A loaded profile (the defaults when no file is given)."""

    name: str = "default"
    max_findings_per_rule: int = 20
    scoring: dict = field(default_factory=lambda: dict(DEFAULT_SCORING))
    disable: set = field(default_factory=set)
    enable: set = field(default_factory=set)
    rules: dict[str, dict] = field(default_factory=dict)

    def settings(self, rule_cls) -> RuleSettings:
        """The settings of a rule class under this profile."""
        code, cat = rule_cls.code, rule_cls.category
        enabled = rule_cls.default_enabled
        if code in self.enable or cat in self.enable:
            enabled = True
        if code in self.disable or cat in self.disable:
            enabled = False
        raw = dict(self.rules.get(code, {}))
        if "enabled" in raw:
            enabled = bool(raw.pop("enabled"))
        sev = raw.pop("severity", None)
        cap = raw.pop("max_findings", None)
        return RuleSettings(enabled, sev, raw, cap)


def load_profile(path: str | os.PathLike | None, rule_classes=()) -> Profile:
    """Read a profile file (None: the defaults) and check it against the known rules."""
    if path is None:
        return Profile()
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ProfileError(f"profile {path}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"profile {path}: not valid TOML: {e}") from e
    p = Profile(name=os.path.basename(path))
    eng = data.get("engine", {})
    if "max_findings_per_rule" in eng:
        p.max_findings_per_rule = _positive_int(path, "engine.max_findings_per_rule",
                                                eng["max_findings_per_rule"])
    for k, v in data.get("scoring", {}).items():
        if k not in DEFAULT_SCORING:
            raise ProfileError(f"profile {path}: unknown scoring key {k!r} "
                               f"(known: {', '.join(DEFAULT_SCORING)})")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ProfileError(f"profile {path}: scoring.{k} must be a number")
        p.scoring[k] = float(v)
    rules = data.get("rules", {})
    by_code = {r.code: r for r in rule_classes}
    cats = {r.category for r in rule_classes}
    for key in ("disable", "enable"):
        vals = rules.get(key, [])
        if not isinstance(vals, list):
            raise ProfileError(f"profile {path}: rules.{key} must be a list of codes or categories")
        for v in vals:
            if by_code and v not in by_code and v not in cats:
                raise ProfileError(f"profile {path}: rules.{key}: unknown rule or category {v!r}")
        getattr(p, key).update(vals)
    for code, cfg in rules.items():
        if code in ("disable", "enable"):
            continue
        if not isinstance(cfg, dict):
            raise ProfileError(f"profile {path}: [rules.{code}] must be a table")
        if by_code and code not in by_code:
            raise ProfileError(f"profile {path}: unknown rule {code!r}")
        cls = by_code.get(code)
        for k, v in cfg.items():
            if k == "severity":
                if v not in SEVERITIES:
                    raise ProfileError(f"profile {path}: rules.{code}.severity must be one of "
                                       f"{', '.join(SEVERITIES)}")
            elif k == "max_findings":
                _positive_int(path, f"rules.{code}.max_findings", v)
            elif k == "enabled":
                if not isinstance(v, bool):
                    raise ProfileError(f"profile {path}: rules.{code}.enabled must be true or false")
            elif cls is not None and k not in cls.params and k not in cls.renamed_params:
                known = ", ".join(cls.params) or "none"
                raise ProfileError(f"profile {path}: rule {code} has no parameter {k!r} "
                                   f"(parameters: {known})")
        p.rules[code] = _current_names(path, code, cls, cfg)
    return p


def _current_names(path, code: str, cls, cfg: dict) -> dict:
    """``cfg`` with a renamed parameter under its current name (the rule's
    ``renamed_params``); raises ProfileError when a parameter is set under both names."""
    renamed = getattr(cls, "renamed_params", {}) if cls is not None else {}
    out: dict = {}
    for k, v in cfg.items():
        new = renamed.get(k, k)
        if new in out:
            raise ProfileError(f"profile {path}: rules.{code} sets {new!r} under its current "
                               "and its former name")
        out[new] = v
    return out


def _positive_int(path, key, v) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ProfileError(f"profile {path}: {key} must be a positive integer")
    return v
