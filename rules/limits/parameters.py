"""Limit rules on the minima and maxima of ChargeParameterDiscovery: LIM012-LIM014."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.loop_table import pick

from ..base import LoopRule, judged
from ..helpers import excerpt, facts, is_failed

#: (minimum, maximum, what) pairs checked in ChargeParameterDiscovery and loop messages.
MIN_MAX = (
    ("EVSEMinimumCurrentLimit_A", "EVSEMaximumCurrentLimit_A", "EVSE current"),
    ("EVSEMinimumVoltageLimit_V", "EVSEMaximumVoltageLimit_V", "EVSE voltage"),
    ("EVSEMinimumChargeCurrent_A", "EVSEMaximumChargeCurrent_A", "EVSE charge current"),
    ("EVSEMinimumVoltage_V", "EVSEMaximumVoltage_V", "EVSE voltage"),
    ("EVSEMinimumChargePower_W", "EVSEMaximumChargePower_W", "EVSE charge power"),
    ("EVMinimumChargeCurrent_A", "EVMaximumChargeCurrent_A", "EV charge current"),
    ("EVMinimumVoltage_V", "EVMaximumVoltage_V", "EV voltage"),
    ("EVMinimumChargePower_W", "EVMaximumChargePower_W", "EV charge power"),
    ("EVMinCurrent_A", "EVMaxCurrent_A", "EV current"),
)


def _decoded(session, names):
    for e in session.events:
        if e.layer == "v2gtp" and e.message is not None and e.name in names:
            yield e


# DIN / ISO-2 loop messages carry no minima: only CPD and the -20 loop messages are read
_CPD_NAMES = frozenset({"ChargeParameterDiscoveryReq", "ChargeParameterDiscoveryRes",
                        "DC_ChargeParameterDiscoveryReq", "DC_ChargeParameterDiscoveryRes",
                        "AC_ChargeParameterDiscoveryReq", "AC_ChargeParameterDiscoveryRes",
                        "DC_ChargeLoopReq", "DC_ChargeLoopRes", "AC_ChargeLoopReq",
                        "AC_ChargeLoopRes"})


class MinimumAboveMaximum(LoopRule):
    """A minimum limit is above the corresponding maximum.

    What it checks: in ChargeParameterDiscovery and -20 charge-loop messages, each minimum
    against its maximum: EVSEMinimumCurrentLimit / …VoltageLimit against the maxima (DIN,
    ISO-2), -20 EVSEMinimumChargeCurrent / …Voltage / …ChargePower and the EV's
    EVMinimumChargeCurrent / …Voltage / …ChargePower, ISO-2 AC EVMinCurrent / EVMaxCurrent.
    One finding per pair and session (first occurrence, count). FAILED responses are left out
    (their values are placeholders, [V2G2-736]).
    Why it matters: an empty operating range: no current or voltage satisfies both; the peer
    cannot plan, and a value is probably encoded wrongly.
    Fix: the side that sent it (EVSE… → SECC, EV… → EVCC): send min ≤ max.
    Source: PROTOCOL_FACTS §4D "EVSE limits in CPD Res: min ≤ max" (⚠ analyst-derived);
    ISO 15118-2 DC_EVSEChargeParameterType, ISO 15118-20 DC_CPDResEnergyTransferModeType.

    Example:

        #59 ChargeParameterDiscoveryReq
          → #61 ChargeParameterDiscoveryRes EVSEMinimumVoltageLimit=1500 V
              EVSEMaximumVoltageLimit=500 V
    """

    code = "LIM012"
    title = "Minimum limit above the maximum"
    severity = "warning"
    category = "limits"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "unknown"
    requirement = "ChargeParameterDiscovery limits: minimum ≤ maximum (§4D ⚠ derived)"

    def check(self, session, ctx):
        found: dict = {}
        for e in _decoded(session, _CPD_NAMES):
            f = facts(e)
            if e.name.endswith("Res") and is_failed(f.get("ResponseCode")):
                continue
            for lo, hi, what in MIN_MAX:
                a, b = f.get(lo), f.get(hi)
                if a is not None and b is not None and a > b:
                    got = found.setdefault((lo, hi), [what, e, a, b, 0, e])
                    got[4] += 1
                    got[5] = e
        for (lo, hi), (what, e, a, b, n, last) in found.items():
            side = "SECC" if lo.startswith("EVSE") else "EVCC"
            ln, hn, unit = _name(lo), _name(hi), _unit(lo)
            yield self.finding(
                session, [e.frame, last.frame],
                f"{e.name} (frame {e.frame}) gives {ln} {a:.6g} {unit} above {hn} {b:.6g} {unit}"
                + (f" ({n} messages)" if n > 1 else ""), time=e.time, culprit=side,
                measured=a, limit=b, unit=unit,
                evidence={"expected": f"{ln} ≤ {hn}", "actual": f"{a:.6g} > {b:.6g} {unit}",
                          "count": n, "message": excerpt(e, (ln, hn))},
                values=[judged(e, ln, a, limit=b, unit=unit), judged(e, hn, b, unit=unit)])


_EV_MAXIMA = ("EVMaximumCurrentLimit_A", "EVMaximumVoltageLimit_V", "EVMaximumPowerLimit_W",
              "EVMaximumChargeCurrent_A", "EVMaximumVoltage_V", "EVMaximumChargePower_W",
              "EVMaxCurrent_A", "EVMaxVoltage_V")
_CPD_REQ = frozenset({"ChargeParameterDiscoveryReq", "DC_ChargeParameterDiscoveryReq",
                      "AC_ChargeParameterDiscoveryReq"})


def _cpd_exchanges(session, ctx) -> list[tuple]:
    """[(ChargeParameterDiscoveryReq, its response or None)] of the session, in one pass: the
    response is the next decoded message on the request's connection when it is of the
    matching type (kept per session for LIM013 and LIM014, ``ctx.view``; read-only)."""
    return ctx.view("limits.cpd_exchanges", session, lambda: _cpd_pairs(session))


def _cpd_pairs(session) -> list[tuple]:
    out, pending = [], {}
    for e in session.events:
        if e.layer != "v2gtp" or e.message is None:
            continue
        req = pending.pop(e.conn, None)
        if req is not None:
            out.append((req, e if e.name == req.name[:-3] + "Res" else None))
        if e.name in _CPD_REQ:
            pending[e.conn] = e
    out.extend((req, None) for req in pending.values())
    return out


class NegativeEvMaximum(LoopRule):
    """The EV announced a negative maximum in ChargeParameterDiscoveryReq.

    What it checks: EVMaximumCurrentLimit, EVMaximumVoltageLimit, EVMaximumPowerLimit (DIN,
    ISO-2 DC), EVMaxCurrent / EVMaxVoltage (ISO-2 AC), EVMaximumChargeCurrent / …Voltage /
    …ChargePower (-20) must not be negative (discharge limits are not checked). The SECC
    should answer FAILED_WrongChargeParameter; the evidence says what it answered.
    Why it matters: a negative maximum forbids any charging (or is a sign / encoding error);
    the SECC must refuse the parameters.
    Fix (EVCC): send non-negative maxima; (SECC): answer FAILED_WrongChargeParameter.
    Source: ISO 15118-2 [V2G2-477] (E-ISO), PROTOCOL_FACTS §4D "Hard facts" and §4B content
    rules.

    Example:

        #59 ChargeParameterDiscoveryReq EVMaximumCurrentLimit=-200 A
          → #61 ChargeParameterDiscoveryRes ResponseCode=FAILED_WrongChargeParameter
    """

    code = "LIM013"
    title = "Negative EV maximum in ChargeParameterDiscoveryReq"
    severity = "error"
    category = "limits"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "EVCC"
    requirement = "ISO 15118-2 [V2G2-477] FAILED_WrongChargeParameter"
    failure_modes = ("UC2 107",)

    def check(self, session, ctx):
        hits = []
        for e, res in _cpd_exchanges(session, ctx):
            f = facts(e)
            neg = {k: f[k] for k in _EV_MAXIMA if f.get(k) is not None and f[k] < 0}
            if neg:
                hits.append((e, res, neg))
        if not hits:
            return
        e, res, neg = hits[0]
        last = hits[-1][0]
        rc = facts(res).get("ResponseCode") if res is not None else None
        answer = (f"; the SECC answered {rc} (frame {res.frame})" if res is not None
                  else "; no response")
        more = f" ({len(hits)} requests, the last frame {last.frame})" if len(hits) > 1 else ""
        k, v = next(iter(neg.items()))
        listed = ", ".join(f"{_name(n)} = {x:.6g} {_unit(n)}" for n, x in neg.items())
        yield self.finding(
            session, [e.frame, last.frame] + ([res.frame] if res is not None else []),
            f"{e.name} (frame {e.frame}) announced negative maxima: {listed}{more}{answer}",
            time=e.time, measured=v, limit=0, unit=_unit(k),
            evidence={"expected": "EV maxima ≥ 0, else FAILED_WrongChargeParameter",
                      "actual": dict(neg), "ResponseCode": rc, "count": len(hits),
                      "request": excerpt(e, tuple(_name(n) for n in neg))},
            values=[judged(e, _name(n), x, limit=0, unit=_unit(n)) for n, x in dict(neg).items()]
            + [judged(res, "ResponseCode", rc, expected="FAILED_WrongChargeParameter")])


def _name(key: str) -> str:
    """``EVMaximumCurrentLimit_A`` → ``EVMaximumCurrentLimit``."""
    return key.rsplit("_", 1)[0]


def _unit(key: str) -> str:
    """``EVMaximumCurrentLimit_A`` → ``A``."""
    return key.rsplit("_", 1)[1]


class EvMaximumBelowEvseMinimum(LoopRule):
    """The EV's maximum is below the EVSE's minimum (no common operating range).

    What it checks: after ChargeParameterDiscovery, EVMaximumCurrentLimit against
    EVSEMinimumCurrentLimit and EVMaximumVoltageLimit against EVSEMinimumVoltageLimit (-20:
    EVMaximumChargeCurrent / EVSEMinimumChargeCurrent, EVMaximumVoltage / EVSEMinimumVoltage);
    a finding when the EV's maximum is below the EVSE's minimum and the SECC still answered
    OK. A refusal (FAILED_WrongChargeParameter or any FAILED code) is the correct reaction
    and not reported here (the session's outcome shows it).
    Why it matters: EV and EVSE cannot agree on any current / voltage — an incompatible
    charger; a SECC that accepts goes on into a session that cannot deliver energy.
    EVerest answers FAILED_WrongChargeParameter.
    Fix: none on the wire — the EV and the charger do not fit; (SECC) refuse with
    FAILED_WrongChargeParameter instead of starting.
    Source: PROTOCOL_FACTS §4D "Hard facts" (E-ISO ⚠ implementation); ChargeX PFMEA UC2
    107-111 (incompatible charger).

    Example:

        #59 ChargeParameterDiscoveryReq → #61 ChargeParameterDiscoveryRes
    """

    code = "LIM014"
    title = "EV maximum below the EVSE minimum"
    severity = "warning"
    category = "limits"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "ev-stop", "ev-abort")
    culprit = "unknown"
    failure_modes = ("UC2 107",)
    requirement = "EV maximum ≥ EVSE minimum, else FAILED_WrongChargeParameter (E-ISO ⚠)"

    _PAIRS = ((("EVMaximumCurrentLimit_A", "EVMaximumChargeCurrent_A"),
               ("EVSEMinimumCurrentLimit_A", "EVSEMinimumChargeCurrent_A"), "current", "A"),
              (("EVMaximumVoltageLimit_V", "EVMaximumVoltage_V"),
               ("EVSEMinimumVoltageLimit_V", "EVSEMinimumVoltage_V"), "voltage", "V"))

    def check(self, session, ctx):
        found: dict = {}
        for e, res in _cpd_exchanges(session, ctx):
            if res is None:
                continue
            q, r = facts(e), facts(res)
            if is_failed(r.get("ResponseCode")):
                continue
            for evk, evsek, what, unit in self._PAIRS:
                a, b = pick(q, evk), pick(r, evsek)
                if a is not None and b is not None and a < b:
                    found.setdefault(what, []).append((e, res, a, b, evk, evsek, unit))
        for what, hits in found.items():
            e, res, a, b, evk, evsek, unit = hits[0]
            last = hits[-1][1]
            more = f" ({len(hits)} exchanges, the last frame {last.frame})" if len(hits) > 1 else ""
            yield self.finding(
                session, [e.frame, res.frame, last.frame],
                f"The EV's maximum {what} {a:.1f} {unit} ({e.name} frame {e.frame}) is below "
                f"the EVSE's minimum {b:.1f} {unit} ({res.name} frame {res.frame}), yet the "
                f"SECC answered {facts(res).get('ResponseCode')}{more}", time=res.time,
                measured=a, limit=b, unit=unit,
                evidence={"expected": f"EV maximum {what} ≥ EVSE minimum {what}, else "
                                      "FAILED_WrongChargeParameter",
                          "actual": f"{a:.1f} < {b:.1f} {unit}", "count": len(hits),
                          "request": excerpt(e, tuple(_name(k) for k in evk)),
                          "response": excerpt(res, tuple(_name(k) for k in evsek))},
                values=[judged(e, tuple(_name(k) for k in evk), a, limit=b, unit=unit),
                        judged(res, tuple(_name(k) for k in evsek), b, unit=unit),
                        judged(res, "ResponseCode", facts(res).get("ResponseCode"),
                               expected="FAILED_WrongChargeParameter")])
