"""Shared editing helpers of the script-level faults (faults_handshake, faults_charging, faults_content).

The faults of those modules edit a session plan (samples/script.py) either before the flow
is built, through *hooks* (``Behaviour.hooks``, flow.py: a function called as each exchange is
built, which edits that exchange's trees and may change the session state for what follows),
or after (stage ``after``: the finished plan's trees, exchanges and connections). These
helpers find exchanges, read and write PhysicalValues and encode a tree leniently where the
project's strict encoder would refuse a field value on purpose.
"""
from __future__ import annotations

from ccs_analyzer.dissectors import exi as _exi
from ccs_analyzer.dissectors.exi import ExiEncodeError
from ccs_analyzer.dissectors.exi.namespaces import NS_DIN, NS_ISO2

from .faults import FaultError
from .physical import pv, rational
from .script import Ending, body_of, set_response_code


def hook(ctx, fn) -> None:
    """Install ``fn(flow, exchange)`` as a hook of the session's flow (``Behaviour.hooks``, flow.py)."""
    ctx.behaviour.hooks.append(fn)


def cycle(flow) -> int:
    """The charge-loop cycle the flow is in (0 before the loop)."""
    return getattr(flow, "_cycle", 0)


def note(m, text: str) -> None:
    """Add "simulator fault <text>" to message ``m``'s comments (shown in pcapng comments)."""
    m.comments.append(f"simulator fault {text}")


def body(m) -> dict:
    """The body element's tree of message ``m`` (the dict under ``Body``'s only child)."""
    return body_of(m.tree)


def si(node: dict) -> float:
    """A PhysicalValue / RationalNumber tree as a float."""
    return node["Value"] * 10.0 ** node.get("Multiplier", node.get("Exponent", 0))


def like(old: dict, value: float) -> dict:
    """``value`` encoded like ``old`` (same Unit and preferred Multiplier / Exponent)."""
    if "Exponent" in old:
        return rational(value, old["Exponent"])
    return pv(value, old.get("Unit"), old.get("Multiplier", 0))


def is_loop(x) -> bool:
    """Whether exchange ``x`` is a charge-loop exchange (CurrentDemand, ChargingStatus or -20 ChargeLoop)."""
    return x.phase == "loop" and x.request.name.endswith(("CurrentDemandReq", "ChargingStatusReq", "ChargeLoopReq"))


def evse_status(b: dict) -> dict | None:
    """The DC_EVSEStatus / AC_EVSEStatus / EVSEStatus tree of a response body, or None."""
    for k in ("DC_EVSEStatus", "AC_EVSEStatus", "EVSEStatus"):
        if isinstance(b.get(k), dict):
            return b[k]
    return None


def need(ctx, protocols=None, mode=None, payment=None, name="") -> None:
    """Raise FaultError unless the session has one of ``protocols``, ``mode`` ("AC"/"DC") and ``payment``."""
    if protocols and ctx.protocol not in protocols:
        raise FaultError(f"{name}: {' / '.join(protocols)} sessions only")
    if mode and ctx.spec.mode != mode:
        raise FaultError(f"{name}: {mode} sessions only")
    if payment and ctx.spec.payment != payment:
        raise FaultError(f"{name}: {payment} sessions only")


def encodes(m) -> None:
    """Re-encode message ``m`` after an edit; FaultError if the project's encoder refuses it."""
    m.invalidate()
    try:
        m.exi()
    except ExiEncodeError as e:
        raise FaultError(f"{m.name} cannot be encoded: {e}") from None


def path_get(tree_body: dict, path: str):
    """The node at ``path`` ("DC_EVSEChargeParameter/EVSEMinimumVoltageLimit") of a body; a
    bare element name is searched depth-first."""
    if "/" not in path:
        found = find_key(tree_body, path)
        if found is None:
            raise FaultError(f"no element {path}")
        return found
    node = tree_body
    parts = path.split("/")
    for p in parts[:-1]:
        node = node.get(p) if isinstance(node, dict) else None
        if node is None:
            raise FaultError(f"no element {path}")
    if not isinstance(node, dict) or parts[-1] not in node:
        raise FaultError(f"no element {path}")
    return node, parts[-1]


def find_key(node, key):
    """(parent, key) of the first ``key`` found depth-first in a tree, or None."""
    if isinstance(node, dict) and key in node:
        return node, key
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    return next((r for r in (find_key(v, key) for v in children) if r is not None), None)


def messages(ctx, name: str, occurrence: int):
    """[(ci, xi, x, m)] of ``name``: its ``occurrence``-th or (0) every one."""
    if occurrence:
        return [ctx.find(name, occurrence)]
    out, k = [], 1
    while True:
        try:
            out.append(ctx.plan.find(name, k))
        except LookupError:
            break
        k += 1
    if not out:
        ctx.find(name, 1)           # raises with the list of names
    return out


def lenient_exi(tree: dict, namespace: str, parent: dict, key: str, value: int) -> bytes:
    """The EXI document of ``tree`` with the n-bit integer ``parent[key]`` set to ``value``,
    outside its schema facet but within the bits the grammar gives it (a 3-bit Multiplier
    reaches 4, a 7-bit percent 127). The project's encoder refuses such values, so the
    field's bits are located by encoding in-range values and patched."""
    orig = parent[key]
    probes = {}
    for v in range(-3, 101):
        parent[key] = v
        try:
            probes[v] = _exi.encode(tree, namespace)
        except ExiEncodeError:
            continue
    parent[key] = orig
    if not probes:
        raise FaultError(f"{key} is not an integer field")
    lo = min(probes)
    base = probes[lo]
    bits: set[int] = set()
    for v, data in probes.items():
        if len(data) != len(base):
            raise FaultError(f"{key} is not a fixed-width field")
        for i, (a, b) in enumerate(zip(base, data)):
            x = a ^ b
            for k in range(8):
                if x >> (7 - k) & 1:
                    bits.add(i * 8 + k)
    if not bits:
        raise FaultError(f"{key}: cannot locate its bits")
    first, last = min(bits), max(bits)
    width = last - first + 1
    raw = value - lo
    if not 0 <= raw < (1 << width):
        raise FaultError(f"{key} = {value} does not fit the {width}-bit field")
    out = bytearray(base)
    for k in range(width):
        pos = first + k
        bit = raw >> (width - 1 - k) & 1
        if bit:
            out[pos // 8] |= 0x80 >> (pos % 8)
        else:
            out[pos // 8] &= ~(0x80 >> (pos % 8)) & 0xFF
    return bytes(out)



def refuse(ctx, ci: int, xi: int, x, code: str, what: str) -> None:
    """The SECC answers exchange ``x`` (connection ``ci``, exchange ``xi``) with ResponseCode
    ``code`` — it refuses ``what`` — and closes the connection ``failed_close_s`` later
    (after a FAILED response the session ends, [V2G2-539])."""
    set_response_code(x.response, code)
    encodes(x.response)
    note(x.response, f"the SECC refuses {what}: {code}")
    ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="FIN", after_s=ctx.timing.failed_close_s,
                                      reason=f"SECC closes after {code}"))
