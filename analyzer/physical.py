"""Physical values of V2G messages as SI floats.

* DIN SPEC 70121 / ISO 15118-2 ``PhysicalValueType``: ``Value`` (short) × 10^``Multiplier``
  (-3..3), ``Unit`` one of h, m, s, A, V, W, Wh (ISO 15118-2 §8.5.2.7 Table 68,
  DIN SPEC 70121 §9.5.2.6; PROTOCOL_FACTS §4 "Physical values").
* ISO 15118-20 ``RationalNumberType``: ``Value`` (short) × 10^``Exponent`` (byte), no unit
  field; the unit follows from the element name (ISO 15118-20 §8.3.5.3.x, Table 150 ff.).

Results are in V, A, W, Wh, s; time units h and m are converted to s.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.views.tree_memo import TreeMemo

_TIME_UNIT_S = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def si_value(node) -> float | None:
    """``{"Multiplier", "Value"[, "Unit"]}`` or ``{"Exponent", "Value"}`` → float in SI units
    (time in seconds); None when the node is not a physical value."""
    if not isinstance(node, dict) or "Value" not in node:
        return None
    v = node["Value"]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if "Multiplier" in node:
        x = _scale(v, node["Multiplier"])
        unit = node.get("Unit")
        if unit in _TIME_UNIT_S:
            x *= _TIME_UNIT_S[unit]
        return x
    if "Exponent" in node:
        return _scale(v, node["Exponent"])
    return None


def _scale(v, e) -> float:
    """``v`` × 10^``e``, correctly rounded (2223 × 10^-1 = 222.3, not 222.30000000000001)."""
    if not isinstance(e, int) or isinstance(e, bool):
        return v * 10.0 ** e
    return v / 10 ** -e if e < 0 else float(v * 10 ** e)


_UNIT_CACHE: dict = {}


def unit_of(name: str, node: dict | None = None) -> str:
    """Unit of a physical-value element: its ``Unit`` field, else guessed from the name
    (…Voltage → V, …Current → A, …Power → W, …Energy → Wh, …Time/…SoC → s / %)."""
    field = node.get("Unit") if isinstance(node, dict) else None
    key = (name, field)
    u = _UNIT_CACHE.get(key)
    if u is None:
        u = _UNIT_CACHE[key] = _unit_of(name, field)
    return u


def _unit_of(name: str, field) -> str:
    if field in ("V", "A", "W", "Wh"):
        return field
    if field in _TIME_UNIT_S:
        return "s"
    n = name.lower()
    if "voltage" in n:
        return "V"
    if "current" in n or "ripple" in n:
        return "A"
    if "energy" in n or "capacity" in n:
        return "Wh"
    if "power" in n:
        return "W"
    if "time" in n or "delay" in n:
        return "s"
    return ""


def physical_fields(tree, prefix: str = "") -> dict[str, float]:
    """Every physical value in a decoded message body, by element name → SI float.

    Walks nested dicts and lists; the key is the element's own name (e.g.
    ``EVTargetVoltage``, ``EVSEMaximumCurrentLimit``); when the same name occurs twice the
    first occurrence wins. Lists of physical values (schedules) are skipped: they are not
    one value.
    """
    out: dict[str, float] = {}
    _walk(tree, out)
    return out


def _walk(node, out: dict) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, dict):
                x = si_value(v)
                if x is not None:
                    out.setdefault(k, x)
                else:
                    _walk(v, out)


def message_body(tree: dict | None) -> tuple[str | None, dict]:
    """(message name, body dict) of a decoded V2G tree: the Body child for DIN / ISO-2
    (``V2G_Message``), the root for ISO-15118-20 and SupportedAppProtocol."""
    if not isinstance(tree, dict) or not tree:
        return None, {}
    root, val = next(iter(tree.items()))
    if root == "V2G_Message" and isinstance(val, dict):
        body = val.get("Body") or {}
        if isinstance(body, dict) and body:
            name, b = next(iter(body.items()))
            return name, b if isinstance(b, dict) else {}
        return None, {}
    return root, val if isinstance(val, dict) else {}


def header_of(tree: dict | None) -> dict:
    """The message header (SessionID …): ``V2G_Message.Header`` or the -20 ``Header``."""
    if not isinstance(tree, dict) or not tree:
        return {}
    root, val = next(iter(tree.items()))
    if not isinstance(val, dict):
        return {}
    h = val.get("Header")
    return h if isinstance(h, dict) else {}


def find_first(node, key: str):
    """First value of ``key`` anywhere in a nested dict/list (depth-first), or None."""
    if isinstance(node, dict):
        if key in node:
            return node[key]
        for v in node.values():
            r = find_first(v, key)
            if r is not None:
                return r
    elif isinstance(node, list):
        for v in node:
            r = find_first(v, key)
            if r is not None:
                return r
    return None


#: Scalar fields the timeline and the rules read from a message (first occurrence wins).
FACT_KEYS = ("ResponseCode", "EVSEProcessing", "EVProcessing", "EVSEStatusCode",
             "EVSEIsolationStatus", "EVErrorCode", "EVSENotification", "EVRESSSOC", "PresentSOC",
             "ChargeProgress", "ChargingSession", "EVReady", "ReceiptRequired", "MeterReading")


def extract(body) -> tuple[dict, dict]:
    """One walk over a message body: (scalars, physical). ``scalars``: element name → first
    scalar value (str / int / bool) outside lists; ``physical``: element name → (SI float,
    unit) of each physical value outside lists (schedules and other lists are skipped)."""
    scalars: dict = {}
    phys: dict = {}
    stack = [body]
    while stack:
        node = stack.pop()
        for k, v in node.items():
            if isinstance(v, dict):
                x = si_value(v)
                if x is not None:
                    if k not in phys:
                        phys[k] = (x, unit_of(k, v))
                else:
                    stack.append(v)
            elif not isinstance(v, list) and k not in scalars:
                scalars[k] = v
    return scalars, phys


#: Facts of shared trees (identical payloads decode to one tree, dissectors/v2g.py), by tree
#: (analyzer/views/tree_memo.py). Per process, not a view of the analysis (Analysis.view):
#: the session builder reads facts before the analysis exists. It pays: without it
#: ``analyze`` took 10-15 % longer and 26 % more peak memory (every event its own facts dict;
#: benchmarks/bench.py on the largest corpus capture and the 4× multi-session capture).
_FACTS = TreeMemo()


def event_facts(e) -> dict:
    """The values of a decoded V2GTP event the analyzer works with, computed once and kept in
    ``e.derived``: ``ResponseCode``, ``EVSEProcessing``, ``EVSEStatusCode``, … (see
    :data:`FACT_KEYS`), ``SoC_pct`` (%), and every physical value as ``<name>_<unit>`` in SI
    units (V, A, W, Wh, s), plus ``power_W`` = EVSEPresentVoltage × EVSEPresentCurrent.
    Events with the same (shared, read-only) tree share one facts dict: treat it as
    read-only too."""
    d = e.derived
    if d is not None:
        return d
    tree = e.message
    if e.layer == "v2gtp" and isinstance(tree, dict):
        hit = _FACTS.get(tree)
        if hit is not None:
            e.derived = hit
            return hit
    d = {}
    if e.layer == "v2gtp" and isinstance(e.message, dict):
        _, body = message_body(e.message)
        scalars, phys = extract(body)
        for k in FACT_KEYS:
            v = scalars.get(k)
            if v is not None:
                d[k] = v
        soc = scalars.get("EVRESSSOC", scalars.get("PresentSOC"))
        if isinstance(soc, (int, float)) and not isinstance(soc, bool):
            d["SoC_pct"] = float(soc)
        for k, (x, unit) in phys.items():
            d[f"{k}_{unit}" if unit else k] = x
        v = d.get("EVSEPresentVoltage_V")
        i = d.get("EVSEPresentCurrent_A")
        if v is not None and i is not None:
            d["power_W"] = v * i
        _FACTS.put(tree, d)
    e.derived = d
    return d
