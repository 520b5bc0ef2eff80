"""CableCheck: the isolation test before PreCharge.

A CableCheck passes only with EVSEProcessing = Finished, EVSEIsolationStatus Valid or
Warning and EVSEStatusCode EVSE_Ready (DIN 70121 [V2G-DC-499], ISO 15118-2; PROTOCOL_FACTS
§4D). ISO 15118-20 DC_CableCheckRes carries only EVSEProcessing (no status, no isolation
level, no voltage), so only "never finished" applies to it. No protocol's CableCheckRes
carries the test voltage (DIN / ISO-2: ResponseCode, DC_EVSEStatus, EVSEProcessing; -20:
ResponseCode, EVSEProcessing); an output left at the test voltage shows in the first
PreChargeRes (PRE005).

FAILED responses are left to the response-code rules: they only have to carry placeholder
values ([V2G2-736]); "Invalid", the first isolationLevel value, is such a placeholder.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.views.connections import lost_bytes
from ccs_analyzer.analyzer.views.loops import cablecheck_runs, capture_cut, end_culprit, end_text

from .base import LoopRule, judged
from .helpers import excerpt, facts, is_failed, lower

PASS_ISOLATION = frozenset({"Valid", "Warning"})
FAIL_ISOLATION = frozenset({"Invalid", "Fault"})
_DC_RES = frozenset({"PreChargeRes", "PowerDeliveryRes", "CurrentDemandRes",
                     "WeldingDetectionRes", "ChargeParameterDiscoveryRes", "CableCheckRes"})


def _finished(run):
    """The first cycle whose response says EVSEProcessing = Finished with an OK code."""
    for c in run.cycles:
        r = c.r
        if (c.res is not None and r.get("EVSEProcessing") == "Finished"
                and not is_failed(r.get("ResponseCode"))):
            return c
    return None


def _next_text(run) -> str:
    """What followed a finished cable check, for the synopsis."""
    a = run.after
    if a is not None and a.name in ("PreChargeReq", "DC_PreChargeReq"):
        return f"; the EV went on with {a.name} (frame {a.frame})"
    if a is not None or run.end is not None:
        return "; " + end_text(run)
    return ""


class CableCheckIsolationFailed(LoopRule):
    """CableCheck finished with isolation Invalid or Fault.

    What it checks: a CableCheckRes with EVSEProcessing = Finished (ResponseCode OK) whose
    EVSEIsolationStatus is Invalid (no valid measurement) or Fault (insulation fault).
    Culprit: SECC for Invalid (it declared the test finished without a result); unknown
    for Fault (the fault may be in the cable, the EVSE or the EV).
    Why it matters: charging must not start; an EV that goes on to PreCharge after it
    closes its contactors onto an unsafe DC circuit.
    Fix (SECC): finish the cable check only with a valid measurement, keep it Ongoing
    otherwise, answer with the real result; check the insulation of cable, EVSE and EV on a
    Fault. (EVCC): do not go on to PreCharge after it.
    Source: DIN 70121 [V2G-DC-499] (PreCharge only after Finished + Valid/Warning +
    EVSE_Ready), ISO 15118-2 [V2G2-584]; PROTOCOL_FACTS §4D "Hard facts" (E-DIN, E-ISO ✅).

    Example:

        #87 CableCheckReq
          → #89 CableCheckRes EVSEIsolationStatus=Invalid EVSEStatusCode=EVSE_Shutdown
              EVSEProcessing=Finished
        #91 SessionStopReq → #93 SessionStopRes
    """

    code = "CBL001"
    title = "CableCheck finished with isolation Invalid / Fault"
    severity = "error"
    category = "cablecheck"
    kinds = ("isolation-fault",)
    explains = ("failed-response", "evse-refused", "out-of-sequence", "evse-stop", "evse-abort",
                "ev-stop", "ev-abort", "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 [V2G-DC-499]; ISO 15118-2 [V2G2-584]"
    failure_modes = ("UC2 156",)

    def check(self, session, ctx):
        for run in cablecheck_runs(session, ctx):
            fin = _finished(run)
            if fin is None:
                continue
            iso = fin.r.get("EVSEIsolationStatus")
            if iso not in FAIL_ISOLATION:
                continue
            culprit = "SECC" if iso == "Invalid" else "unknown"
            st = fin.r.get("EVSEStatusCode")
            yield self.finding(
                session, fin.frames + ([run.after.frame] if run.after is not None else []),
                f"{fin.res.name} (frame {fin.res.frame}) finished the cable check with "
                f"EVSEIsolationStatus={iso}" + (f", {st}" if st else "") + _next_text(run),
                time=fin.res.time, measured=iso, limit="Valid / Warning", culprit=culprit,
                evidence={"expected": "EVSEProcessing=Finished with EVSEIsolationStatus Valid "
                                      "or Warning",
                          "actual": iso, "response": excerpt(fin.res)},
                values=[judged(fin.res, "EVSEIsolationStatus", iso, expected="Valid / Warning")])


class CableCheckFinishedNotReady(LoopRule):
    """CableCheck finished without the EVSE declaring it passed.

    What it checks: a CableCheckRes with EVSEProcessing = Finished (ResponseCode OK) whose
    EVSEStatusCode is not EVSE_Ready or whose EVSEIsolationStatus is missing (optional in
    DIN) or No_IMD (ISO-2) — not one of Valid / Warning. (Invalid / Fault are CBL001.) The
    synopsis says whether the EV went on to PreCharge anyway. Severity: warning when the EV
    stopped after it (SessionStopReq, a close) — the unpassed check ended the session;
    ``tolerated_severity`` (info) when the EV went on to PreCharge regardless (this EV
    tolerates it, a stricter one stops; the EVSE status itself is RSP007's).
    Why it matters: the cable check has not passed; by [V2G-DC-499] the EV should not start
    PreCharge, and EVs that are strict about it stop the session (the Tesla Model Y of the
    corpus gives up in PreCharge while the EVSE keeps reporting EVSE_NotReady).
    Fix (SECC): report EVSE_Ready and the isolation result (Valid / Warning) with Finished,
    or stay Ongoing until they are so.
    Source: DIN 70121 [V2G-DC-499], [V2G-DC-455]; ISO 15118-2 [V2G2-584]; PROTOCOL_FACTS §4D
    (E-DIN, E-ISO ✅).

    Example:

        #87 CableCheckReq
          → #89 CableCheckRes EVSEStatusCode=EVSE_NotReady EVSEProcessing=Finished
              EVSEIsolationStatus=Valid
        #91 SessionStopReq → #93 SessionStopRes
    """

    code = "CBL002"
    title = "CableCheck finished without EVSE_Ready / isolation result"
    severity = "warning"
    category = "cablecheck"
    kinds = ("evse-not-ready",)
    explains = ("failed-response", "evse-refused", "out-of-sequence", "ev-stop", "ev-abort",
                "no-session-stop")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 [V2G-DC-499]"
    params = {"tolerated_severity": "info"}

    def check(self, session, ctx):
        for run in cablecheck_runs(session, ctx):
            fin = _finished(run)
            if fin is None:
                continue
            r = fin.r
            iso, st = r.get("EVSEIsolationStatus"), r.get("EVSEStatusCode")
            if iso in FAIL_ISOLATION:
                continue
            why = []
            if st != "EVSE_Ready":
                why.append(f"EVSEStatusCode={st}")
            if iso not in PASS_ISOLATION:
                why.append("no EVSEIsolationStatus" if iso is None else f"EVSEIsolationStatus={iso}")
            if not why:
                continue
            n = len(run.cycles)
            went_on = run.after is not None and run.after.name in ("PreChargeReq", "DC_PreChargeReq")
            yield self.finding(
                session, fin.frames + ([run.after.frame] if run.after is not None else []),
                f"{fin.res.name} (frame {fin.res.frame}) finished the cable check "
                f"({n} CableCheckReq) with {' and '.join(why)}" + _next_text(run),
                time=fin.res.time,
                severity=self.p["tolerated_severity"] if went_on else None,
                evidence={"ev_went_on": went_on, "expected": "EVSEProcessing=Finished with EVSE_Ready and isolation "
                                      "Valid / Warning",
                          "actual": why, "response": excerpt(fin.res)},
                values=[judged(fin.res, "EVSEStatusCode", st, expected="EVSE_Ready")
                        if st != "EVSE_Ready" else None,
                        judged(fin.res, "EVSEIsolationStatus", iso, expected="Valid / Warning")
                        if iso is not None and iso not in PASS_ISOLATION else None])


class CableCheckNeverFinished(LoopRule):
    """CableCheck never finished.

    What it checks: a CableCheck loop that ends without any response with EVSEProcessing =
    Finished within ``timeout_s``: the EV gave up (SessionStopReq, a TCP close, or it went
    on to PreCharge regardless), the EVSE stopped answering or closed the connection.
    Culprit: the SECC when it stopped answering or closed the connection; the EVCC when it
    gave up before ``timeout_s`` or skipped ahead. Not findings here: a loop longer than
    ``timeout_s`` (TIM004, timing, reports it against both timers), a loop cut by the end of
    the capture, a loop ended by a FAILED response (RSP001) and a loop seen without any
    request (the capture started inside it).
    Why it matters: no isolation result, no charging.
    Fix (SECC): finish the isolation test within V2G_SECC_CableCheck_Performance_Time
    (38 s ⚠); (EVCC): wait V2G_EVCC_CableCheck_Timeout (40 s) before giving up, and never go
    to PreCharge without Finished.
    Source: ISO 15118-2 [V2G2-700..703] V2G_EVCC_CableCheck_Timeout = 40 s (Table 109);
    DIN 70121 40 s (⚠ HotWire 38 s), ISO 15118-20 40 s ⚠ (Josev) — the default follows
    ISO 15118-2; DIN 70121 [V2G-DC-418], [V2G-DC-455]; PROTOCOL_FACTS §4E.

    Example:

        #63 CableCheckReq
          → #65 CableCheckRes EVSEStatusCode=EVSE_IsolationMonitoringActive EVSEProcessing=Ongoing
              (+0.078 s)
        #71 CableCheckReq (+0.372 s) → (no response)
        #73 FIN EV→EVSE (+2.000 s)
    """

    code = "CBL003"
    title = "CableCheck never finished"
    severity = "error"
    category = "cablecheck"
    kinds = ("loop-timeout",)
    explains = ("ev-timeout", "ev-abort", "ev-stop", "out-of-sequence", "failed-response",
                "no-session-stop", "connection-reset")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-700..703] V2G_EVCC_CableCheck_Timeout"
    failure_modes = ("UC2 167",)
    params = {"timeout_s": 40.0}

    def check(self, session, ctx):
        for run in cablecheck_runs(session, ctx):
            if _finished(run) is not None:
                continue
            if not any(c.req is not None for c in run.cycles):
                continue                       # capture started inside the loop
            last_res = next((c.res for c in reversed(run.cycles) if c.res is not None), None)
            if last_res is not None and is_failed(facts(last_res).get("ResponseCode")):
                continue                       # a FAILED response: response-code rules
            if capture_cut(ctx, run, self.p["timeout_s"]):
                continue
            culprit = end_culprit(run, ctx)
            if culprit is None:
                continue
            dur = run.duration_s
            if dur > self.p["timeout_s"]:
                continue                       # too long: TIM004 (timing) reports it
            skipped = run.after is not None and run.after.direction == "EV->EVSE" and \
                run.after.name in ("PreChargeReq", "DC_PreChargeReq", "PowerDeliveryReq")
            statuses = sorted({str(c.r.get("EVSEStatusCode")) for c in run.cycles
                               if c.r.get("EVSEStatusCode") is not None})
            st = f"; EVSEStatusCode {', '.join(statuses)}" if statuses else ""
            how = end_text(run)
            if skipped:
                how = f"the EV went on with {run.after.name} (frame {run.after.frame}) without it"
            sev = lower(self.severity) if lost_bytes(ctx, run.conn) else self.severity
            frames = [run.first.frame, run.last.frame] + [
                x.frame for x in (run.after, run.end) if x is not None]
            f = self.finding(
                session, frames,
                f"CableCheck never finished: {len(run.cycles)} CableCheckReq over {dur:.1f} s "
                f"(frames {run.first.frame}-{run.last.frame}) all answered "
                f"{'Ongoing' if last_res is not None else 'with nothing'}{st}, {how}",
                time=run.last.time, measured=round(dur, 3), limit=self.p["timeout_s"], unit="s",
                culprit=culprit, severity=sev,
                evidence={"expected": "CableCheckRes EVSEProcessing=Finished within "
                                      f"{self.p['timeout_s']:g} s",
                          "actual": f"no Finished in {dur:.1f} s, {how}",
                          "last_response": excerpt(last_res) if last_res is not None else None,
                          "lost_bytes": lost_bytes(ctx, run.conn)},
                values=[judged(last_res, "EVSEProcessing", "Ongoing", expected="Finished")])
            # what the finding is (rules/causes.py): the EV giving up early describes the
            # session's end; the EV skipping ahead is out of sequence; the SECC going silent
            # or closing is the SECC's cable check that never finished
            if culprit == "EVCC" and skipped:
                f.kinds, f.explains = ("out-of-sequence",), ("failed-response", "evse-refused",
                                                              "evse-abort")
            elif culprit == "EVCC":
                f.kinds, f.explains = ("ev-abort", "ev-stop"), ()
            else:
                f.kinds = ("loop-timeout", "evse-abort", "no-response")
            yield f


class IsolationWarning(LoopRule):
    """The EVSE reported isolation Warning.

    What it checks: EVSEIsolationStatus = Warning in CableCheckRes (Finished) or in any
    later DC response of the session (PreChargeRes, CurrentDemandRes …). One finding per
    session, with the first and last frames and the count.
    Why it matters: charging is allowed, but the insulation resistance is degraded (between
    the warning and the fault threshold of the IMD): the next session may fail with Fault.
    Fix: inspect the insulation of the charging cable, the EVSE's DC circuit and the EV's
    HV system; the IMD that reports it is the EVSE's.
    Source: DIN 70121 / ISO 15118-2 isolationLevelType (Invalid, Valid, Warning, Fault,
    No_IMD); PROTOCOL_FACTS §4.0, §4D.

    Example:

        #87 CableCheckReq → #89 CableCheckRes EVSEIsolationStatus=Warning
        #191 WeldingDetectionReq → #193 WeldingDetectionRes EVSEIsolationStatus=Warning
    """

    code = "CBL004"
    title = "Isolation warning"
    severity = "warning"
    category = "cablecheck"
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "DIN 70121 / ISO 15118-2 isolationLevelType (Warning)"

    def check(self, session, ctx):
        hits = []
        started = False
        for e in session.events:
            if e.layer != "v2gtp" or e.message is None or e.name not in _DC_RES:
                continue
            f = facts(e)
            if e.name == "CableCheckRes":
                started = started or f.get("EVSEProcessing") == "Finished"
                if f.get("EVSEProcessing") != "Finished":
                    continue
            elif not started or e.name == "ChargeParameterDiscoveryRes":
                continue
            if f.get("EVSEIsolationStatus") == "Warning" and not is_failed(f.get("ResponseCode")):
                hits.append(e)
        if not hits:
            return
        names = sorted({e.name for e in hits})
        yield self.finding(
            session, [hits[0].frame, hits[-1].frame],
            f"The EVSE reported EVSEIsolationStatus=Warning in {len(hits)} responses "
            f"({', '.join(names)}; first frame {hits[0].frame}, last frame {hits[-1].frame})",
            time=hits[0].time, measured="Warning", limit="Valid", evidence={
                "expected": "EVSEIsolationStatus=Valid", "actual": "Warning", "count": len(hits),
                "first": excerpt(hits[0], ("EVSEIsolationStatus", "EVSEStatusCode"))},
            values=[judged(e, "EVSEIsolationStatus", "Warning", expected="Valid")
                    for e in (hits[0], hits[-1])])


class IsolationFaultAfterCableCheck(LoopRule):
    """The EVSE reported an isolation fault after the cable check had passed.

    What it checks: EVSEIsolationStatus = Fault in a DC response after a CableCheckRes
    Finished (PreChargeRes, PowerDeliveryRes, CurrentDemandRes, WeldingDetectionRes). One
    finding per session (first occurrence, count). Invalid later in the session is not
    counted (the IMD may be switched off, e.g. during welding detection).
    Why it matters: the insulation monitor tripped during PreCharge or energy transfer; the
    EVSE must shut down.
    Fix: inspect the insulation of the cable, the EVSE's DC circuit and the EV's HV system.
    Source: IEC 61851-23 insulation monitoring during charging; DIN 70121 / ISO 15118-2
    isolationLevelType; PROTOCOL_FACTS §4D.

    Example:

        #183 CurrentDemandReq → #185 CurrentDemandRes EVSEIsolationStatus=Fault
        #199 WeldingDetectionReq → #201 WeldingDetectionRes EVSEIsolationStatus=Fault
    """

    code = "CBL005"
    title = "Isolation fault after the cable check"
    severity = "error"
    category = "cablecheck"
    kinds = ("isolation-fault",)
    explains = ("evse-stop", "evse-abort", "evse-refused", "ev-stop", "ev-abort", "ev-error",
                "no-session-stop", "connection-reset")
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "IEC 61851-23 insulation monitoring during energy transfer"

    def check(self, session, ctx):
        hits = []
        passed = False
        for e in session.events:
            if e.layer != "v2gtp" or e.message is None or e.name not in _DC_RES:
                continue
            f = facts(e)
            if e.name in ("CableCheckRes", "ChargeParameterDiscoveryRes"):
                if e.name == "CableCheckRes" and f.get("EVSEProcessing") == "Finished":
                    passed = True
                continue
            if (passed and f.get("EVSEIsolationStatus") == "Fault"
                    and not is_failed(f.get("ResponseCode"))):
                hits.append(e)
        if not hits:
            return
        yield self.finding(
            session, [hits[0].frame, hits[-1].frame],
            f"{hits[0].name} (frame {hits[0].frame}) reported EVSEIsolationStatus=Fault after the "
            f"cable check had passed ({len(hits)} responses with Fault)",
            time=hits[0].time, measured="Fault", limit="Valid",
            evidence={"expected": "EVSEIsolationStatus=Valid", "actual": "Fault", "count": len(hits),
                      "first": excerpt(hits[0], ("EVSEIsolationStatus", "EVSEStatusCode",
                                                 "EVSEPresentVoltage"))},
            values=[judged(e, "EVSEIsolationStatus", "Fault", expected="Valid")
                    for e in (hits[0], hits[-1])])
