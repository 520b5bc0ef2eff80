"""Response code rules on the EVSE's and the EV's status and error codes: RSP004, RSP006-RSP009."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.exchanges import responses, with_requests
from ccs_analyzer.analyzer.views.index import v2g_messages

from ..base import Rule, judged
from ..helpers import body, facts, is_failed, protocol_of_session
from ..state_machines import qualifier
from .common import FAULT_STATUS, _end_text, _stop_reaction

#: DC_EVErrorCode → meaning.
EV_ERRORS = {
    "FAILED_RESSTemperatureInhibit": "the battery temperature inhibits charging",
    "FAILED_EVShiftPosition": "the vehicle is not in park (shift position)",
    "FAILED_ChargerConnectorLockFault": "the charging connector lock failed",
    "FAILED_EVRESSMalfunction": "the battery (RESS) reports a malfunction",
    "FAILED_ChargingCurrentdifferential": "the current the EV measures differs from the current it "
                                          "expects (EVTargetCurrent / EVSEPresentCurrent)",
    "FAILED_ChargingVoltageOutOfRange": "the charging voltage is out of the EV's range",
    "FAILED_ChargingSystemIncompatibility": "the EV finds the charging system incompatible",
}


class EvseFaultStatus(Rule):
    """The EVSE reports a fault: EVSE_EmergencyShutdown, EVSE_Malfunction or
    EVSE_UtilityInterruptEvent.

    What it checks: DC_EVSEStatusCode of every DC response (not FAILED responses, which only
    carry minimal values). One finding per status code with the count and the first and
    last frames; culprit SECC (the utility for EVSE_UtilityInterruptEvent is outside the
    capture, the EVSE reports it).
    Why it matters: the EVSE stops energy transfer; the EV has to end the session.
    Fix (SECC): look into the EVSE's fault log at that time (isolation, over-current,
    power module, emergency stop button, grid signal).
    Source: DIN 70121 / ISO 15118-2 DC_EVSEStatusCodeType; PROTOCOL_FACTS §4.0 "Status
    semantics" (EVSE_EmergencyShutdown / EVSE_Malfunction = fault).

    Example:

        #199 CurrentDemandReq
          → #201 CurrentDemandRes EVSEStatusCode=EVSE_EmergencyShutdown EVSEPresentVoltage=379.2 V
        #215 WeldingDetectionReq
          → #217 WeldingDetectionRes EVSEStatusCode=EVSE_EmergencyShutdown EVSEPresentVoltage=68.3 V
    """

    code = "RSP004"
    title = "EVSE reports a fault status"
    severity = "error"
    category = "response-code"
    kinds = ("evse-stop", "evse-not-ready")
    explains = ("ev-stop", "ev-abort", "evse-abort", "no-session-stop", "connection-reset",
                "failed-response")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 / ISO 15118-2 DC_EVSEStatusCodeType"
    failure_modes = ("UC2 158",)

    def check(self, session, ctx):
        groups: dict = {}
        for e, req in responses(session, ctx):
            f = facts(e)
            st = f.get("EVSEStatusCode")
            if st in FAULT_STATUS and not is_failed(f.get("ResponseCode")):
                groups.setdefault(st, []).append((e, req))
        for st, items in groups.items():
            e, req = items[0]
            last = items[-1][0]
            n = len(items)
            v = facts(e).get("EVSEPresentVoltage_V")
            volt = f", EVSEPresentVoltage {v:g} V" if v is not None else ""
            more = f" in {n} responses until frame {last.frame}" if n > 1 else ""
            yield self.finding(session, [e.frame, last.frame] + ([req.frame] if req else []),
                               f"{e.name} (frame {e.frame}) reports {st}{more}: {FAULT_STATUS[st]}{volt}",
                               time=e.time, measured=st, limit="EVSE_Ready",
                               evidence={"expected": "EVSE_Ready", "actual": st, "count": n,
                                         "messages": sorted({x.name for x, _ in items})},
                               values=[judged(x, "EVSEStatusCode", st, expected="EVSE_Ready")
                                       for x in (e, last)])


_CABLECHECK = ("CableCheckRes", "DC_CableCheckRes")


class IsolationMonitoringOutsideCableCheck(Rule):
    """The EVSE reports EVSE_IsolationMonitoringActive outside the cable check.

    What it checks: DC_EVSEStatusCode EVSE_IsolationMonitoringActive in responses other
    than CableCheckRes (ChargeParameterDiscovery, PreCharge, PowerDelivery, CurrentDemand,
    WeldingDetection). One finding per response type with the count.
    Why it matters: the status belongs to the isolation test of the cable check (test
    voltage applied); reported later it means the EVSE is still testing, or misreports its
    state, and EVs that require EVSE_Ready stop.
    Fix (SECC): report EVSE_IsolationMonitoringActive only while the cable check runs;
    EVSE_Ready afterwards.
    Source: DIN 70121 / ISO 15118-2 DC_EVSEStatusCodeType; PROTOCOL_FACTS §4D (cable check:
    EVSE_IsolationMonitoringActive while Ongoing), §4.0 "Status semantics" ([V2G2-880]:
    status codes without explicit requirement are informational ⚠).

    Example:

        #155 CurrentDemandReq → #157 CurrentDemandRes EVSEStatusCode=EVSE_IsolationMonitoringActive
        #175 CurrentDemandReq → #177 CurrentDemandRes EVSEStatusCode=EVSE_IsolationMonitoringActive
    """

    code = "RSP006"
    title = "EVSE_IsolationMonitoringActive outside CableCheck"
    severity = "warning"
    category = "response-code"
    kinds = ("evse-not-ready",)
    explains = ("ev-stop", "ev-abort")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 / ISO 15118-2 DC_EVSEStatusCodeType (cable check)"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        groups: dict = {}
        for e, _ in responses(session, ctx):
            if e.name in _CABLECHECK:
                continue
            f = facts(e)
            if (f.get("EVSEStatusCode") == "EVSE_IsolationMonitoringActive"
                    and not is_failed(f.get("ResponseCode"))):
                groups.setdefault(e.name, []).append(e)
        for name, items in groups.items():
            e, last = items[0], items[-1]
            n = len(items)
            more = f" ({n} responses until frame {last.frame})" if n > 1 else ""
            yield self.finding(session, [e.frame, last.frame],
                               f"{name} (frame {e.frame}) reports EVSE_IsolationMonitoringActive outside "
                               f"the cable check{more}", time=e.time,
                               measured="EVSE_IsolationMonitoringActive", limit="EVSE_Ready",
                               evidence={"expected": "EVSE_Ready",
                                                             "actual": "EVSE_IsolationMonitoringActive",
                                                             "count": n},
                               values=[judged(x, "EVSEStatusCode", "EVSE_IsolationMonitoringActive",
                                              expected="EVSE_Ready")
                                       for x in (e, last)])


def _needs_ready(e, req) -> bool:
    n = e.name
    if n in ("PreChargeRes", "CurrentDemandRes"):
        return True
    if n == "PowerDeliveryRes" and req is not None:
        return qualifier(None, "PowerDelivery", body(req)) == "Start"
    return False


class EvseNotReady(Rule):
    """The EVSE reports EVSE_NotReady where the EV needs EVSE_Ready.

    What it checks: DC_EVSEStatusCode EVSE_NotReady in PreChargeRes, CurrentDemandRes and
    PowerDeliveryRes to a start request (a finished CableCheckRes without EVSE_Ready is the
    cable-check rules' CBL002). One finding per response type with the count and the first
    and last frames. Error when the EV gave up after the last of them (SessionStopReq,
    PowerDeliveryReq Stop, or the session ended); ``tolerated_severity`` (info) when the EV
    went on regardless.
    Why it matters: power delivery needs EVSE_Ready ([V2G-DC-401], [V2G2-480]); many EVs
    wait for EVSE_Ready in PreCharge and stop when it does not come (e.g. the Tesla Model Y
    stops the session in PreCharge).
    Fix (SECC): report EVSE_Ready once the cable check passed and the output is available.
    Source: DIN 70121 [V2G-DC-401]; ISO 15118-2 [V2G2-480]; PROTOCOL_FACTS §4A, §4B content
    rules, §4D.

    Example:

        #91 PreChargeReq → #93 PreChargeRes EVSEStatusCode=EVSE_NotReady
        #231 PreChargeReq → #233 PreChargeRes EVSEStatusCode=EVSE_NotReady
        #235 SessionStopReq → #237 SessionStopRes
    """

    code = "RSP007"
    title = "EVSE_NotReady where the EV needs EVSE_Ready"
    severity = "error"
    category = "response-code"
    kinds = ("evse-not-ready",)
    explains = ("ev-stop", "ev-abort", "ev-timeout", "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 [V2G-DC-401] / ISO 15118-2 [V2G2-480] EVSE_Ready"
    failure_modes = ("UC2 158",)
    params = {"tolerated_severity": "info"}

    def check(self, session, ctx):
        protocol = protocol_of_session(session, ctx)
        msgs = list(with_requests(session, ctx))
        groups: dict = {}
        for i, (e, req) in enumerate(msgs):
            if not e.name.endswith("Res"):
                continue
            f = facts(e)
            if f.get("EVSEStatusCode") == "EVSE_NotReady" and not is_failed(f.get("ResponseCode")) \
                    and _needs_ready(e, req):
                groups.setdefault(e.name, []).append((i, e, req))
        for name, items in groups.items():
            i0, e, req = items[0]
            il, last, _ = items[-1]
            nxt = next((x for x, _ in msgs[il + 1:] if x.name.endswith("Req")), None)
            gave_up = nxt is None or _stop_reaction(protocol, nxt)
            n = len(items)
            then = (f"then the EV stopped with {nxt.name} (frame {nxt.frame})" if nxt is not None and gave_up
                    else f"then {_end_text(ctx, session)}" if nxt is None
                    else f"the EV went on with {nxt.name} (frame {nxt.frame})")
            more = f" in {n} responses (frames {e.frame}-{last.frame})" if n > 1 else ""
            frames = [e.frame, last.frame] + ([req.frame] if req else []) + ([nxt.frame] if nxt else [])
            yield self.finding(session, frames,
                               f"{name} reports EVSE_NotReady{more} where the EV needs EVSE_Ready; {then}",
                               time=e.time, severity=None if gave_up else self.p["tolerated_severity"],
                               measured="EVSE_NotReady", limit="EVSE_Ready",
                               evidence={"expected": "EVSE_Ready", "actual": "EVSE_NotReady", "count": n,
                                         "EV_next": nxt.name if nxt is not None else None,
                                         "ev_gave_up": gave_up},
                               values=[judged(x, "EVSEStatusCode", "EVSE_NotReady", expected="EVSE_Ready")
                                       for x in (e, last)])


class EvErrorCode(Rule):
    """The EV reports an error code (DC_EVErrorCode ≠ NO_ERROR).

    What it checks: DC_EVStatus EVErrorCode of every EV request (NoData is not an error).
    One finding per code with the count, the first and last frames and, when the EV stopped
    after it, the stop request. Error when the EV stopped with it (the request carrying the
    code, or the next one, is PowerDeliveryReq Stop / SessionStopReq) or the session ended
    there; warning when it charged on. The evidence carries
    the EV's target and the EVSE's present current / voltage of that moment.
    Why it matters: the EV ends charging for the reason the code names (battery temperature,
    shift position, connector lock, current differential …).
    Fix (EVCC): the code names the EV-side condition; for FAILED_ChargingCurrentdifferential
    compare EVTargetCurrent with EVSEPresentCurrent (an EVSE that does not deliver the
    requested current triggers it too).
    Source: DIN 70121 / ISO 15118-2 DC_EVErrorCodeType; PROTOCOL_FACTS §4.0 enumerations.

    Example:

        #211 CurrentDemandReq EVErrorCode=FAILED_ChargingCurrentdifferential EVTargetCurrent=200 A
            EVTargetVoltage=430 V
          → #213 CurrentDemandRes EVSEPresentCurrent=149 A EVSEPresentVoltage=379.3 V
        #227 WeldingDetectionReq EVErrorCode=FAILED_ChargingCurrentdifferential
          → #229 WeldingDetectionRes EVSEPresentVoltage=68.4 V
    """

    code = "RSP008"
    title = "EV reports an error code"
    severity = "error"
    category = "response-code"
    kinds = ("ev-error",)
    explains = ("no-session-stop", "ev-abort", "connection-reset", "evse-stop", "evse-abort")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 / ISO 15118-2 DC_EVErrorCodeType"
    failure_modes = ("UC2 238",)

    def check(self, session, ctx):
        protocol = protocol_of_session(session, ctx)
        v2g = v2g_messages(session, ctx)
        groups: dict = {}
        last_res = None
        last_ok: dict = {}                     # request name → last request without error
        for i, e in enumerate(v2g):
            if e.name.endswith("Res"):
                last_res = e
                continue
            err = facts(e).get("EVErrorCode")
            if isinstance(err, str) and err not in ("NO_ERROR", "NoData"):
                groups.setdefault(err, []).append((i, e, last_res, last_ok.get(e.name)))
            else:
                last_ok[e.name] = e
        for err, items in groups.items():
            i0, e, prev, before = items[0]
            il, last = items[-1][0], items[-1][1]
            after = [x for x in v2g[il:] if x.name.endswith("Req")]
            stop = next((x for x in after[:2] if _stop_reaction(protocol, x)), None)
            ended = stop is not None or len(after) <= 1
            meaning = EV_ERRORS.get(err, "a reserved / unknown error code")
            f = facts(before) if before is not None else facts(e)
            pf = facts(prev) if prev is not None else {}
            vals = {k: v for k, v in (("EVTargetCurrent_A", f.get("EVTargetCurrent_A")),
                                      ("EVTargetVoltage_V", f.get("EVTargetVoltage_V")),
                                      ("EVSEPresentCurrent_A", pf.get("EVSEPresentCurrent_A")),
                                      ("EVSEPresentVoltage_V", pf.get("EVSEPresentVoltage_V")))
                    if v is not None}
            detail = ""
            if "Current" in err and "EVTargetCurrent_A" in vals and "EVSEPresentCurrent_A" in vals:
                detail = (f" (just before: EVTargetCurrent {vals['EVTargetCurrent_A']:g} A, "
                          f"EVSEPresentCurrent {vals['EVSEPresentCurrent_A']:g} A)")
            elif "Voltage" in err and "EVSEPresentVoltage_V" in vals:
                detail = f" (EVSEPresentVoltage {vals['EVSEPresentVoltage_V']:g} V)"
            n = len(items)
            more = f" in {n} requests (until frame {last.frame})" if n > 1 else ""
            then = (f"; the EV then stopped with {stop.name} (frame {stop.frame})" if stop is not None
                    else "; then the session ended" if ended else "; the EV charged on")
            frames = [e.frame, last.frame] + ([stop.frame] if stop is not None else [])
            yield self.finding(session, frames,
                               f"{e.name} (frame {e.frame}) reports EVErrorCode {err}{more}: "
                               f"{meaning}{detail}{then}", time=e.time,
                               severity=None if ended else "warning", measured=err, limit="NO_ERROR",
                               evidence={"expected": "NO_ERROR", "actual": err, "meaning": meaning,
                                         "count": n, **vals},
                               values=[judged(e, "EVErrorCode", err, expected="NO_ERROR")])


_AC_RES = frozenset({"ChargeParameterDiscoveryRes", "PowerDeliveryRes", "ChargingStatusRes",
                     "MeteringReceiptRes"})


def _rcd(e) -> bool:
    b = body(e)
    st = b.get("AC_EVSEStatus")
    if not isinstance(st, dict):
        ch = b.get("AC_EVSEChargeParameter")
        st = ch.get("AC_EVSEStatus") if isinstance(ch, dict) else None
    return isinstance(st, dict) and st.get("RCD") is True


class ResidualCurrentDetected(Rule):
    """The AC EVSE reports its residual current device tripped (AC_EVSEStatus RCD true).

    What it checks: AC_EVSEStatus.RCD of every ISO 15118-2 AC response. One finding with the
    count and the first and last frames.
    Why it matters: a residual (earth-leakage) current was detected: the EVSE opens its
    contactor; charging stops. The leakage may be in the EVSE, the cable or the vehicle.
    Fix: inspect the installation, the cable and the vehicle's insulation; the EVSE's RCD
    log says when it tripped.
    Source: ISO 15118-2 AC_EVSEStatusType (RCD); PROTOCOL_FACTS §4B.

    Example:

        #95 ChargingStatusReq → #97 ChargingStatusRes RCD=True
        #99 PowerDeliveryReq → #101 PowerDeliveryRes RCD=True
    """

    code = "RSP009"
    title = "Residual current detected (AC RCD)"
    severity = "error"
    category = "response-code"
    kinds = ("isolation-fault",)
    explains = ("evse-stop", "evse-abort", "evse-refused", "ev-stop", "ev-abort", "no-session-stop")
    culprit = "unknown"
    protocols = ("ISO 15118-2",)
    requirement = "ISO 15118-2 AC_EVSEStatusType RCD"
    failure_modes = ("UC2 239",)

    def check(self, session, ctx):
        hits = [e for e, _ in responses(session, ctx) if e.name in _AC_RES and _rcd(e)]
        if not hits:
            return
        e, last = hits[0], hits[-1]
        n = len(hits)
        more = f" ({n} responses until frame {last.frame})" if n > 1 else ""
        yield self.finding(session, [e.frame, last.frame],
                           f"{e.name} (frame {e.frame}) reports RCD = true: the EVSE's residual current "
                           f"device detected a leakage current{more}", time=e.time, measured=True,
                           limit=False, evidence={"expected": "RCD false", "actual": "RCD true", "count": n},
                           values=[judged(x, "RCD", True, expected=False)
                                   for x in (e, last)])
