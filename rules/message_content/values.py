"""Message content rules on physical values, their ranges and units: MSG013-MSG015."""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import message_body, si_value
from ccs_analyzer.analyzer.views.index import session_index

from ..base import Rule, judged
from ..helpers import culprit_of
from .common import Groups, _span, _times, _tree_memo, failed

# physical values: ranges and units (memoised per shared tree)
_EXPECTED_UNITS = (("voltage", ("V",)), ("current", ("A",)), ("ripple", ("A",)),
                   ("energy", ("Wh",)), ("capacity", ("Wh",)), ("eamount", ("Wh",)),
                   ("power", ("W", "VA")), ("pmax", ("W", "VA")), ("remainingtime", ("s", "m", "h")))
_SOC_NAMES = ("EVRESSSOC", "FullSOC", "BulkSOC", "PresentSOC", "MinimumSOC", "TargetSOC",
              "MaximumSOC", "EVMinimumSOC", "EVTargetSOC", "EVMaximumSOC")
_UNIT_CACHE: dict[str, tuple | None] = {}


def expected_units(name: str) -> tuple | None:
    """Units a physical-value element may carry, by its name (None when the name says
    nothing): …Voltage → V, …Current → A, …Power / PMax → W, …Energy → Wh,
    RemainingTime… → s (m, h) — ISO 15118-2 Table 68 and the DIN / ISO-2 unit per field
    (J-PV)."""
    u = _UNIT_CACHE.get(name, False)
    if u is False:
        low = name.lower()
        u = next((units for key, units in _EXPECTED_UNITS if key in low), None)
        _UNIT_CACHE[name] = u
    return u


def _walk_values(node, out: list) -> None:
    """Collect (element name, physical value dict) and (SoC name, int) of a body."""
    for k, v in node.items():
        if type(v) is dict:
            if "Value" in v and ("Multiplier" in v or "Exponent" in v):
                out.append((k, v))
            else:
                _walk_values(v, out)
        elif type(v) is list:
            for x in v:
                if type(x) is dict:
                    if "Value" in x and ("Multiplier" in x or "Exponent" in x):
                        out.append((k, x))
                    else:
                        _walk_values(x, out)
        elif k in _SOC_NAMES and type(v) is int:
            out.append((k, v))


#: ISO 15118-2 Table 68 limits (Josev comments, ⚠): by unit, in SI units.
ISO2_TABLE68 = {"V": 1000.0, "A": 400.0, "W": 200_000.0, "Wh": 200_000.0, "s": 172_800.0}
_TIME = {"s": 1.0, "m": 60.0, "h": 3600.0}


def _bound_crossed(actual: int, allowed: str) -> int:
    """The bound of ``allowed`` (a range "lo..hi" of value_facts) that ``actual`` crossed: lo
    when below it, else hi."""
    lo, hi = (int(x) for x in allowed.split(".."))
    return lo if actual < lo else hi


def value_facts(e, ctx) -> tuple[list, list]:
    """(issues, iso2_values) of one decoded message, memoised per shared tree (per analysis).

    ``issues``: [(kind, element, actual, allowed)] with kind ``multiplier`` (outside −3..3),
    ``soc`` (outside 0..100) or ``unit`` (a Unit that does not fit the element);
    ``iso2_values``: [(element, SI value, SI unit)] of an ISO 15118-2 message's physical
    values with a fitting unit, for the Table 68 ranges."""
    tree = e.message
    memo = _tree_memo(ctx, "value_facts")
    hit = memo.get(tree)
    if hit is not None:
        return hit
    _, body = message_body(tree)
    vals: list = []
    _walk_values(body, vals)
    issues, iso2_values = [], []
    iso2 = e.protocol == "ISO 15118-2"
    classic = iso2 or e.protocol == "DIN 70121"
    for name, v in vals:
        if type(v) is int:
            if not 0 <= v <= 100:
                issues.append(("soc", name, v, "0..100"))
            continue
        if not classic or "Multiplier" not in v:
            continue
        m, value, unit = v.get("Multiplier"), v.get("Value"), v.get("Unit")
        if isinstance(m, int) and not -3 <= m <= 3:
            issues.append(("multiplier", name, m, "-3..3"))
            continue
        want = expected_units(name)
        if unit is not None and want is not None and unit not in want:
            issues.append(("unit", name, unit, "/".join(want)))
            continue
        if iso2 and isinstance(value, int) and isinstance(m, int) and unit is not None:
            x = si_value({"Value": value, "Multiplier": m})
            if unit in _TIME:
                x, unit = x * _TIME[unit], "s"
            iso2_values.append((name, x, unit))
    return memo.put(tree, (issues, iso2_values))


def value_issues(session, ctx) -> list[tuple]:
    """[(event, issues)]: the session's decoded messages with :func:`value_facts` issues, in
    order, FAILED responses left out (their content is not judged) — what MSG013 and MSG014
    report, found in one pass (``ctx.view("message_content.value_issues", session)``)."""
    def build():
        out = []
        by_tree: dict[int, list] = {}      # id(tree) → issues (the events keep their trees)
        for e in session_index(session, ctx).v2g:
            if e.name.endswith("Res") and failed(e):
                continue
            issues = by_tree.get(id(e.message))
            if issues is None:
                issues = by_tree[id(e.message)] = value_facts(e, ctx)[0]
            if issues:
                out.append((e, issues))
        return out
    return ctx.view("message_content.value_issues", session, build)


class ValueOutOfRange(Rule):
    """A value outside the range its schema type allows.

    What it checks: PhysicalValue Multiplier within −3..3 (DIN 70121, ISO 15118-2) and SoC
    values (EVRESSSOC, FullSOC, BulkSOC, -20 PresentSOC, TargetSOC …) within 0..100. One
    finding per message type, element and kind, with the count. FAILED responses are not
    judged.
    Why it matters: the EXI grammar can carry values outside these facets (a 3-bit
    multiplier reaches 4, a 7-bit SoC 127) but a validating receiver rejects them, and a
    lenient one computes a wrong value.
    Fix (sender): scale physical values with a multiplier in −3..3; send SoC in percent.
    Source: DIN 70121 / ISO 15118-2 XSD (multiplierType −3..3, percentValueType 0..100),
    ISO 15118-20 XSD (percentValueType); PROTOCOL_FACTS §4.0 "Physical values".

    Example:

        #59 ChargeParameterDiscoveryReq
          → #61 ChargeParameterDiscoveryRes EVSEMaximumPowerLimit=100000 W
    """

    code = "MSG013"
    title = "Value outside its schema range"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "evse-abort", "ev-abort")
    requirement = "DIN 70121 / ISO 15118-2 XSD multiplierType −3..3, percentValueType 0..100"
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e, issues in value_issues(session, ctx):
            for kind, name, actual, limit in issues:
                if kind != "unit":
                    groups.add((e.name, name, kind), e, actual=actual, limit=limit)
        for (msg, name, kind), first, last, n, f in groups.items():
            what = (f"{name} Multiplier {f['actual']} (allowed −3..3)" if kind == "multiplier"
                    else f"{name} = {f['actual']} % (allowed 0..100)")
            yield self.finding(session, [first.frame, last.frame],
                               f"{msg}{_times(n)} ({_span(first, last, n)}): {what}", time=first.time,
                               culprit=culprit_of(first), measured=f["actual"],
                               limit=_bound_crossed(f["actual"], f["limit"]),
                               unit="%" if kind == "soc" else None,
                               evidence={"expected": f"{name} within {f['limit']}",
                                         "actual": f["actual"], "element": name, "messages": n},
                               values=[judged(x, name, limit=f["limit"]) for x in (first, last)])


class Table68Range(Rule):
    """An ISO 15118-2 physical value beyond the range of Table 68.

    What it checks: ISO 15118-2 values against the ranges of Table 68: voltages ≤
    ``max_voltage_v`` (EVSENominalVoltage ≤ ``max_nominal_voltage_v``), currents ≤
    ``max_current_a``, powers ≤ ``max_power_w``, energies ≤ ``max_energy_wh``, remaining
    times ≤ ``max_time_s``. One finding per element and sender, naming the messages and the
    count. FAILED responses are not judged.
    Why it matters: a value beyond the standard's operating range is either a scaling
    (multiplier) bug or equipment outside what ISO 15118-2 specifies; a receiver that
    validates against Table 68 rejects it.
    Fix (sender): check the scaling; clamp advertised limits to the Table 68 range.
    Source: ISO 15118-2 §8.5.2.7 Table 68 (as quoted by Josev's PhysicalValue classes, J-PV
    ⚠ single source, which is why this is a warning); PROTOCOL_FACTS §4.0.
        Opt-in: enable it in a profile (``[rules] enable = ["MSG015"]``).

    Example:

        #59 ChargeParameterDiscoveryReq → #61 ChargeParameterDiscoveryRes
    """

    code = "MSG015"
    title = "Value beyond the ISO 15118-2 Table 68 range"
    severity = "warning"
    category = "message-content"
    requirement = "ISO 15118-2 §8.5.2.7 Table 68"
    culprit = "unknown"
    protocols = ("ISO 15118-2",)
    failure_modes = ("UC2 240", "UC2 244")
    params = {"max_voltage_v": 1000.0, "max_nominal_voltage_v": 400.0, "max_current_a": 400.0,
              "max_power_w": 200_000.0, "max_energy_wh": 200_000.0, "max_time_s": 172_800.0}
    default_enabled = False      # opt-in: single-source (⚠) ranges no stack enforces

    def check(self, session, ctx):
        p = self.p
        table = {"V": p["max_voltage_v"], "A": p["max_current_a"], "W": p["max_power_w"],
                 "Wh": p["max_energy_wh"], "s": p["max_time_s"]}
        nominal = p["max_nominal_voltage_v"]
        over_of: dict[int, list] = {}
        found: dict = {}
        for e in session_index(session, ctx).v2g:
            if e.protocol != "ISO 15118-2" or (e.name.endswith("Res") and failed(e)):
                continue
            over = over_of.get(id(e.message))
            if over is None:
                over = over_of[id(e.message)] = [
                    (name, round(x, 3), lim, u) for name, x, u in value_facts(e, ctx)[1]
                    for lim in ((nominal if name == "EVSENominalVoltage" else table.get(u)),)
                    if lim is not None and abs(x) > lim]
            for name, x, lim, u in over:
                g = found.get((name, e.direction))
                if g is None:
                    g = found[(name, e.direction)] = {"first": e, "last": e, "n": 0, "max": x,
                                                      "lim": lim, "unit": u, "messages": {}}
                g["last"] = e
                g["n"] += 1
                g["max"] = max(g["max"], x, key=abs)
                g["messages"][e.name] = g["messages"].get(e.name, 0) + 1
        for (name, _), g in found.items():
            first, last, n = g["first"], g["last"], g["n"]
            msgs = ", ".join(f"{m}{_times(c)}" for m, c in g["messages"].items())
            yield self.finding(session, [first.frame, last.frame],
                               f"{name} = {g['max']:g} {g['unit']} exceeds the ISO 15118-2 Table 68 "
                               f"limit {g['lim']:g} {g['unit']} in {msgs} ({_span(first, last, n)})",
                               time=first.time, culprit=culprit_of(first), measured=g["max"],
                               limit=g["lim"], unit=g["unit"],
                               evidence={"expected": f"{name} ≤ {g['lim']:g} {g['unit']}",
                                         "actual": f"{g['max']:g} {g['unit']}", "element": name,
                                         "messages": g["messages"]},
                               values=[judged(x, name, limit=g["lim"], unit=g["unit"]) for x in (first, last)])


class UnitMismatch(Rule):
    """A physical value carries a unit that does not fit the element.

    What it checks: DIN 70121 / ISO 15118-2 PhysicalValue elements whose Unit contradicts
    their name: a voltage not in V, a current not in A, a power not in W, an energy not in
    Wh, a remaining time not in s / m / h. A DIN value without Unit is allowed (Unit is
    optional in DIN; many EVs omit it) and is not reported.
    Why it matters: the receiver either rejects the value or reads e.g. amperes as volts,
    with wrong limits as the result.
    Fix (sender): set the Unit of each value per the element's definition.
    Source: ISO 15118-2 Table 68 (unit per element), DIN 70121 unitSymbolType; J-PV;
    PROTOCOL_FACTS §4.0 "Physical values".

    Example:

        #59 ChargeParameterDiscoveryReq EVEnergyRequest=18000 W → #61 ChargeParameterDiscoveryRes
    """

    code = "MSG014"
    title = "Physical value with the wrong unit"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    requirement = "ISO 15118-2 §8.5.2.7 Table 68 unit per element"
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2")
    failure_modes = ("UC2 240", "UC2 244", "UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e, issues in value_issues(session, ctx):
            for kind, name, actual, limit in issues:
                if kind == "unit":
                    groups.add((e.name, name, actual), e, want=limit)
        for (msg, name, unit), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{msg}{_times(n)} ({_span(first, last, n)}): {name} has Unit "
                               f"{unit}, expected {f['want']}", time=first.time,
                               culprit=culprit_of(first), measured=unit, limit=f["want"],
                               evidence={"expected": f["want"], "actual": unit, "element": name,
                                         "messages": n},
                               values=[judged(x, name, expected=f"Unit {f['want']}") for x in (first, last)])
