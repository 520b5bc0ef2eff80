"""Scenarios: small declarative TOML files (samples/scenarios/*.toml) that say which session(s)
to simulate and which faults to inject. The format is documented in docs/simulator.md; in
short::

    name = "iso2_dc_late_cablecheck"          # default: the file name
    description = "…"
    seed = 1
    protocol = "ISO 15118-2"                  # "DIN 70121" | "ISO 15118-2" | "ISO 15118-20"
                                              # | "IEC 61851-1" (basic AC: the pilot only)
    mode = "DC"                               # "DC" | "AC"
    payment = "EIM"                           # "EIM" | "PnC"
    control_mode = "Scheduled"                # -20 only: "Scheduled" | "Dynamic"

    [ev]        mac, modem_mac, evccid, vin, protocols, precharge_tolerance_v, …
    [evse]      mac, modem_mac, evseid, port, max_current_a, max_voltage_v, max_power_w, …
    [battery]   capacity_kwh, soc_start, soc_target, taper_soc, max_current_a, speedup, …
    [timing]    latency_s, think_s, jitter, loop_cycles, cablecheck_s, … [timing.latency] …
    [slac]      attenuation_db, num_sounds, … [slac.timers] parm_cnf_s = 0.03 …
    [pause]     at_cycle = 12                 # ISO 15118-2: SessionStop(Pause) and resume
    [renegotiation] at_cycle = 10             # ISO 15118-2: PowerDelivery(Renegotiate)
    [tls]       enabled = true, keylog = "udp" | "dsb" | "none", max_fragment = 16384
    [pnc]       certificate_installation = true # PnC: CertificateInstallation first (-2, -20)
                signed_sales_tariff = true      # -2 PnC: a SalesTariff signed by the MO
    [control_pilot] evidence = "both"         # CP evidence: "st" | "dspace" | "both" (cp_flow.py)

    [[faults]]
    name = "late_response"
    message = "CableCheckRes"
    delay_s = 3.0

    [[sessions]]                              # more sessions: overrides of the above
    gap_s = 10.0

    [expect]                                  # what a correct analysis concludes (optional)
    sessions = 1
    [[expect.session]]                        # one per session, in session order
    outcome = "timed out"
    phase_reached = "charging"
    root_rule = "TIM001"                      # a rule code, or "none": no cause visible
    root_culprit = "SECC"
    consequences = ["SEQ001"]
    goal = "not achieved"                     # "achieved" | "not achieved"
    conformance = "fail"                      # "pass" | "warn" | "fail"

Python 3.11 reads TOML with tomllib, 3.10 with tomli (a dependency there).
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

from .cp_flow import BASIC, EVIDENCE, TABLE_KEYS, ControlPilot
from ccs_analyzer.analyzer.outcome import PHASES

from .flow import EvParams, EvseParams, Timing
from .physical import Battery
from .slac import TIMER_ALIASES, TIMER_DEFAULTS, SlacConfig

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
PROTOCOLS = ("DIN 70121", "ISO 15118-2", "ISO 15118-20", BASIC)
DEFAULT_START = 1_767_225_600.0      # 2026-01-01T00:00:00Z


class ScenarioError(ValueError):
    """A scenario that cannot be simulated; the message names the file and the key."""


@dataclass
class FaultUse:
    """A fault named in a scenario: its registry name and parameters."""

    name: str
    params: dict = field(default_factory=dict)


@dataclass
class SessionSpec:
    """One session of a scenario (everything the simulator needs to build it)."""

    protocol: str = "ISO 15118-2"
    mode: str = "DC"
    payment: str = "EIM"
    control_mode: str = "Scheduled"
    ev: EvParams = field(default_factory=EvParams)
    evse: EvseParams = field(default_factory=EvseParams)
    battery: dict = field(default_factory=dict)
    timing: Timing = field(default_factory=Timing)
    slac: SlacConfig = field(default_factory=SlacConfig)
    pause: dict | None = None
    renegotiation: dict | None = None
    tls: dict = field(default_factory=dict)
    pnc: dict = field(default_factory=dict)
    gap_s: float = 5.0
    faults: list[FaultUse] = field(default_factory=list)
    #: ``[control_pilot]``: CP evidence (cp_flow.ControlPilot; evidence None: none)
    control_pilot: ControlPilot = field(default_factory=ControlPilot)

    def make_battery(self) -> Battery:
        return Battery(**self.battery)


@dataclass
class Scenario:
    """A parsed scenario: name, description, seed, start time (epoch s), its sessions and the
    faults that act on the whole capture file."""

    name: str
    description: str = ""
    seed: int = 1
    start: float = DEFAULT_START
    sessions: list[SessionSpec] = field(default_factory=list)
    capture_faults: list[FaultUse] = field(default_factory=list)
    path: str | None = None
    #: what a correct analysis of the capture concludes (the ``[expect]`` table), or None
    expect: Expectation | None = None


# ---------------------------------------------------------------------------- [expect]
#: The words an ``[expect]`` table may use. Outcomes and phases are the analyzer's
#: (analyzer/outcome.py; tests/samples checks they agree); "never got past <phase>" is an
#: outcome for every phase.
EXPECT_OUTCOMES = ("completed normally", "paused", "stopped by EV", "stopped by EVSE", "timed out",
                   "aborted by EV", "aborted by EVSE", "capture ended")
EXPECT_PHASES = PHASES               # the analyzer's phases: one home (analyzer/outcome.py)
EXPECT_CULPRITS = ("EVCC", "SECC", "link", "capture", "unknown")      # rules/base.py CULPRITS
EXPECT_GOALS = ("achieved", "not achieved")
EXPECT_CONFORMANCE = ("pass", "warn", "fail")
_RULE_CODE = re.compile(r"^[A-Z]{3}[0-9]{3}$")


@dataclass
class SessionExpectation:
    """What a correct analysis concludes about one session (``[[expect.session]]``); a key
    left out of the table is None (not stated).

    ``outcome``: how the session ended (EXPECT_OUTCOMES or "never got past <phase>");
    ``phase_reached``: the furthest phase the session got to (EXPECT_PHASES, as
    analyzer/outcome.py counts it: a refused request counts for its phase, a session that
    ended with SessionStop reached "session stop"); ``root_rule``: the rule code of
    the root-cause finding, or "none" when the traffic shows no cause; ``root_culprit``: whom
    the root cause points at (EXPECT_CULPRITS); ``consequences``: rule codes of findings
    that must hang under the root cause; ``goal``: "achieved" / "not achieved" (did the
    session do what it set out to — charge, or pause as asked); ``conformance``: "pass" /
    "warn" / "fail" (the conformance violations it carries, whatever the goal)."""

    outcome: str | None = None
    phase_reached: str | None = None
    root_rule: str | None = None
    root_culprit: str | None = None
    consequences: list[str] | None = None
    goal: str | None = None
    conformance: str | None = None


@dataclass
class Expectation:
    """A scenario's ``[expect]`` table: ``sessions`` — how many charging sessions the capture
    holds (None: not stated); ``session`` — one :class:`SessionExpectation` per session, in
    session order (may be empty)."""

    sessions: int | None = None
    session: list[SessionExpectation] = field(default_factory=list)

    def rule_codes(self) -> set[str]:
        """Every rule code the expectations name (root rules other than "none", consequences)."""
        out: set[str] = set()
        for e in self.session:
            if e.root_rule not in (None, "none"):
                out.add(e.root_rule)
            out.update(e.consequences or ())
        return out


_EXPECT_SESSION_KEYS = {f.name for f in dataclasses.fields(SessionExpectation)}


def _one_of(where: str, key: str, value, allowed) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: {key} = {value!r} should be a string")
    if value not in allowed:
        raise ScenarioError(f"{where}: {key} {value!r}; one of {', '.join(repr(a) for a in allowed)}")
    return value


def _rule_code(where: str, key: str, value) -> str:
    if not isinstance(value, str) or not _RULE_CODE.match(value):
        raise ScenarioError(f"{where}: {key} {value!r} is not a rule code (three capitals and three digits, "
                            f"e.g. TIM001)")
    return value


def _expect_session(where: str, d) -> SessionExpectation:
    if not isinstance(d, dict):
        raise ScenarioError(f"{where}: should be a table ([[expect.session]])")
    _check_keys(where, d, _EXPECT_SESSION_KEYS)
    e = SessionExpectation()
    if "outcome" in d:
        o = d["outcome"]
        if not isinstance(o, str):
            raise ScenarioError(f"{where}: outcome = {o!r} should be a string")
        if o.startswith("never got past "):
            _one_of(where, "outcome's phase", o[len("never got past "):], EXPECT_PHASES)
        elif o not in EXPECT_OUTCOMES:
            raise ScenarioError(f"{where}: outcome {o!r}; one of {', '.join(repr(a) for a in EXPECT_OUTCOMES)} "
                                f"or 'never got past <phase>'")
        e.outcome = o
    if "phase_reached" in d:
        e.phase_reached = _one_of(where, "phase_reached", d["phase_reached"], EXPECT_PHASES)
    if "root_rule" in d:
        r = d["root_rule"]
        e.root_rule = "none" if r == "none" else _rule_code(where, "root_rule", r)
    if "root_culprit" in d:
        e.root_culprit = _one_of(where, "root_culprit", d["root_culprit"], EXPECT_CULPRITS)
    if "consequences" in d:
        c = d["consequences"]
        if not isinstance(c, list):
            raise ScenarioError(f"{where}: consequences = {c!r} should be a list of rule codes")
        e.consequences = [_rule_code(where, "consequences entry", x) for x in c]
    if "goal" in d:
        e.goal = _one_of(where, "goal", d["goal"], EXPECT_GOALS)
    if "conformance" in d:
        e.conformance = _one_of(where, "conformance", d["conformance"], EXPECT_CONFORMANCE)
    if e.root_rule == "none" and (e.consequences or e.root_culprit):
        raise ScenarioError(f"{where}: consequences and root_culprit need a root cause (root_rule is \"none\")")
    return e


def _expect(where: str, d) -> Expectation:
    """An :class:`Expectation` from the ``[expect]`` table (ScenarioError with the reason)."""
    where = f"{where} [expect]"
    if not isinstance(d, dict):
        raise ScenarioError(f"{where}: should be a table")
    _check_keys(where, d, {"sessions", "session"})
    n = d.get("sessions")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ScenarioError(f"{where}: sessions = {n!r} should be a whole number ≥ 0")
    items = d.get("session", [])
    if not isinstance(items, list):
        raise ScenarioError(f"{where}: session should be a list of tables ([[expect.session]])")
    sessions = [_expect_session(f"{where} [[expect.session]] #{i + 1}", x) for i, x in enumerate(items)]
    if n is not None and items and len(sessions) != n:
        raise ScenarioError(f"{where}: sessions = {n} but {len(sessions)} [[expect.session]] table(s); "
                            f"give one per session, in order")
    return Expectation(sessions=n, session=sessions)


_TOP_KEYS = {"name", "description", "seed", "start", "protocol", "mode", "payment", "control_mode",
             "ev", "evse", "battery", "timing", "slac", "pause", "renegotiation", "tls", "pnc", "faults", "sessions",
             "expect", "control_pilot"}
_SESSION_KEYS = _TOP_KEYS - {"name", "description", "seed", "start", "sessions", "expect"} | {"gap_s"}
_BATTERY_KEYS = {f.name for f in dataclasses.fields(Battery) if f.init}


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _check_keys(where: str, given: dict, allowed: set[str]) -> None:
    bad = sorted(set(given) - allowed)
    if bad:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")


def _dataclass_from(cls, where: str, base, table: dict):
    _check_keys(where, table, _fields(cls))
    return dataclasses.replace(base, **table)


def _session(where: str, base: SessionSpec, d: dict) -> SessionSpec:
    """Apply the overrides of table ``d`` to a copy of ``base``."""
    _check_keys(where, d, _SESSION_KEYS)
    s = copy.deepcopy(base)
    for k in ("protocol", "mode", "payment", "control_mode"):
        if k in d:
            setattr(s, k, d[k])
    if "ev" in d:
        s.ev = _dataclass_from(EvParams, f"{where} [ev]", s.ev, d["ev"])
    if "evse" in d:
        s.evse = _dataclass_from(EvseParams, f"{where} [evse]", s.evse, d["evse"])
    if "battery" in d:
        _check_keys(f"{where} [battery]", d["battery"], _BATTERY_KEYS)
        s.battery = {**s.battery, **d["battery"]}
    if "timing" in d:
        t = dict(d["timing"])
        lat, think = t.pop("latency", {}), t.pop("think", {})
        s.timing = _dataclass_from(Timing, f"{where} [timing]", s.timing, t)
        s.timing.latency = {**s.timing.latency, **lat}
        s.timing.think = {**s.timing.think, **think}
    if "slac" in d:
        t = dict(d["slac"])
        timers = {TIMER_ALIASES.get(k, k): v for k, v in t.pop("timers", {}).items()}
        _check_keys(f"{where} [slac.timers]", timers, set(TIMER_DEFAULTS))
        s.slac = _dataclass_from(SlacConfig, f"{where} [slac]", s.slac, t)
        s.slac.timers = {**s.slac.timers, **timers}
    for k in ("pause", "renegotiation"):
        if k in d:
            s_val = d[k]
            if s_val is False:
                setattr(s, k, None)
            else:
                _check_keys(f"{where} [{k}]", s_val, {"at_cycle", "duration_s"})
                setattr(s, k, dict(s_val))
    if "tls" in d:
        _check_keys(f"{where} [tls]", d["tls"], {"enabled", "keylog", "max_fragment"})
        s.tls = {**s.tls, **d["tls"]}
        if s.tls.get("keylog", "udp") not in ("udp", "dsb", "none"):
            raise ScenarioError(f"{where} [tls]: keylog {s.tls['keylog']!r}; udp, dsb or none")
    if "pnc" in d:
        _check_keys(f"{where} [pnc]", d["pnc"], {"certificate_installation", "signed_sales_tariff"})
        s.pnc = {**s.pnc, **d["pnc"]}
    if "control_pilot" in d:
        s.control_pilot = _control_pilot(f"{where} [control_pilot]", s.control_pilot, d["control_pilot"])
    if "gap_s" in d:
        s.gap_s = float(d["gap_s"])
    if "faults" in d:
        s.faults = [_fault(f"{where} [[faults]] #{i + 1}", f) for i, f in enumerate(d["faults"])]
    _validate(where, s)
    return s


def _control_pilot(where: str, base: ControlPilot, table) -> ControlPilot:
    """``base`` with the ``[control_pilot]`` table's keys (types and ranges checked)."""
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: should be a table")
    _check_keys(where, table, set(TABLE_KEYS))
    out = copy.deepcopy(base)
    for k, v in table.items():
        if k == "evidence":
            if v not in EVIDENCE:
                raise ScenarioError(f"{where}: evidence {v!r}; one of {', '.join(repr(e) for e in EVIDENCE)}")
        elif k == "battery_voltage_v":
            if v != "battery" and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ScenarioError(f"{where}: battery_voltage_v {v!r}; 0 (not reported), \"battery\" or a "
                                    f"voltage ≥ 0")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ScenarioError(f"{where}: {k} = {v!r} should be a number ≥ 0")
        elif k == "duty_pct" and not 0 < v <= 100:
            raise ScenarioError(f"{where}: duty_pct {v!r} should be in (0, 100] %")
        setattr(out, k, v if isinstance(v, str) else float(v))
    if out.evidence is None:
        raise ScenarioError(f"{where}: evidence is required (\"st\", \"dspace\" or \"both\")")
    return out


def _fault(where: str, f: dict) -> FaultUse:
    if "name" not in f:
        raise ScenarioError(f"{where}: a fault needs a name")
    params = {k: v for k, v in f.items() if k != "name"}
    from .faults import FAULTS
    if f["name"] not in FAULTS:
        raise ScenarioError(f"{where}: unknown fault {f['name']!r}; known: {', '.join(sorted(FAULTS))}")
    try:
        FAULTS[f["name"]].check(params)
    except ValueError as e:
        raise ScenarioError(f"{where}: {e}") from None
    return FaultUse(f["name"], params)


def _validate(where: str, s: SessionSpec) -> None:
    if s.protocol not in PROTOCOLS:
        raise ScenarioError(f"{where}: protocol {s.protocol!r}; one of {', '.join(PROTOCOLS)}")
    if s.mode not in ("DC", "AC"):
        raise ScenarioError(f"{where}: mode {s.mode!r}; DC or AC")
    if s.payment not in ("EIM", "PnC"):
        raise ScenarioError(f"{where}: payment {s.payment!r}; EIM or PnC")
    if s.control_mode not in ("Scheduled", "Dynamic"):
        raise ScenarioError(f"{where}: control_mode {s.control_mode!r}; Scheduled or Dynamic")
    if s.protocol == "DIN 70121" and (s.mode != "DC" or s.payment != "EIM"):
        raise ScenarioError(f"{where}: DIN 70121 is DC with external payment (EIM) only ([V2G-DC-252])")
    if s.protocol == "ISO 15118-20" and s.mode == "AC" and s.control_mode != "Scheduled":
        raise ScenarioError(f"{where}: ISO 15118-20 AC is simulated in Scheduled mode only")
    if s.pnc.get("certificate_installation") and (s.protocol not in ("ISO 15118-2", "ISO 15118-20")
                                                   or s.payment != "PnC"):
        raise ScenarioError(f"{where}: [pnc] certificate_installation needs ISO 15118-2 or -20 Plug & Charge")
    if s.pnc.get("signed_sales_tariff") and (s.protocol != "ISO 15118-2" or s.payment != "PnC"):
        raise ScenarioError(f"{where}: [pnc] signed_sales_tariff is simulated for ISO 15118-2 Plug & Charge")
    if s.renegotiation and s.protocol != "ISO 15118-2":
        raise ScenarioError(f"{where}: renegotiation is simulated for ISO 15118-2 only")
    cpc = s.control_pilot
    if s.protocol == BASIC:
        if s.mode != "AC":
            raise ScenarioError(f"{where}: {BASIC} basic charging is AC (mode = \"AC\")")
        if not cpc.enabled:
            raise ScenarioError(f"{where}: an {BASIC} session shows the control pilot only: set [control_pilot] "
                                f"evidence")
        if s.pause or s.renegotiation:
            raise ScenarioError(f"{where}: {BASIC} basic charging has no pause or renegotiation")
    elif cpc.duty_pct is not None:
        raise ScenarioError(f"{where} [control_pilot]: duty_pct is the nominal duty cycle of {BASIC} basic "
                            f"charging; high-level sessions use 5 %")
    if cpc.battery_reported and s.mode != "DC":
        raise ScenarioError(f"{where} [control_pilot]: battery_voltage_v is reported in DC sessions only")
    if s.pause and s.protocol != "ISO 15118-2":
        raise ScenarioError(f"{where}: pause / resume is simulated for ISO 15118-2 only (DIN SessionStopReq "
                            "has no ChargingSession)")


def _start(v) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=v.tzinfo or dt.timezone.utc).timestamp()
    if isinstance(v, str):
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    raise ScenarioError(f"start: {v!r} is not a time")


def parse_scenario(data: dict, name: str, path: str | None = None) -> Scenario:
    """A :class:`Scenario` from a parsed TOML table (``name``: the default name)."""
    where = path or name
    _check_keys(where, data, _TOP_KEYS)
    from .faults import FAULTS
    top_faults = data.get("faults", [])
    capture = [f for f in top_faults if FAULTS.get(f.get("name"), None) is not None
               and FAULTS[f["name"]].level == "capture"]
    session_faults = [f for f in top_faults if f not in capture]
    base_table = {k: v for k, v in data.items() if k in _SESSION_KEYS and k != "faults"}
    base = _session(where, SessionSpec(), base_table)
    first = copy.deepcopy(base)
    sessions = [first]
    for i, extra in enumerate(data.get("sessions", [])):
        sessions.append(_session(f"{where} [[sessions]] #{i + 2}", base, extra))
    for i, f in enumerate(session_faults):
        use = _fault(f"{where} [[faults]] #{i + 1}", f)
        n = int(use.params.pop("session", 1))
        if not 1 <= n <= len(sessions):
            raise ScenarioError(f"{where} [[faults]] #{i + 1}: session {n} does not exist")
        sessions[n - 1].faults.append(use)
    return Scenario(name=data.get("name", name), description=data.get("description", ""),
                    seed=int(data.get("seed", 1)), start=_start(data.get("start", DEFAULT_START)),
                    sessions=sessions,
                    capture_faults=[_fault(f"{where} capture fault", f) for f in capture], path=path,
                    expect=_expect(where, data["expect"]) if "expect" in data else None)


def load_scenario(ref: str | os.PathLike) -> Scenario:
    """A scenario by file path or by name (a file in samples/scenarios/). Raises
    ScenarioError with the reason (unknown name: the list of known ones)."""
    p = Path(ref)
    if not p.suffix and not p.exists():
        p = SCENARIO_DIR / f"{ref}.toml"
    if not p.exists():
        raise ScenarioError(f"no scenario {str(ref)!r}; known: {', '.join(scenario_names())}")
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{p}: {e}") from None
    return parse_scenario(data, p.stem, str(p))


def scenario_names() -> list[str]:
    """The names of the scenarios shipped in samples/scenarios/."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
