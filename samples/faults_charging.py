"""Faults of the charging phases — registered with :func:`ccs_analyzer.samples.faults.fault`.

What real EVs and chargers get wrong in the cable check and isolation monitoring, in the
EVSE status and response codes, in the charge loop's flags and metering receipts, in
PreCharge, and in the timing of single steps. Each fault models one behaviour seen in the
field or in the reference implementations (the corpus captures in ../shared/corpus,
PROTOCOL_FACTS, ChargeX PFMEA) and says how the other side reacts. Stage ``before`` faults
install hooks (faults_edit.py); stage ``after`` faults edit the finished plan.
"""
from __future__ import annotations


from .faults import FaultError, fault
from .script import Ending, set_response_code



from . import faults_edit as ed


# ====================================================================== cable check, isolation
@fault("isolation_warning", level="script", stage="before", category="cablecheck")
def isolation_warning(ctx):
    """The EVSE's insulation monitor measures a degraded insulation resistance (between its
    warning and fault thresholds): the CableCheckRes that finishes the cable check and every
    later DC response report EVSEIsolationStatus Warning (DIN 70121 / ISO 15118-2
    isolationLevelType; PROTOCOL_FACTS §4D). Charging is allowed and goes on."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="isolation_warning")

    def hook(flow, x):
        if x.phase == "cablecheck" and x.response is not None \
                and ed.body(x.response).get("EVSEProcessing") == "Finished" and flow.s.isolation == "Valid":
            flow.s.isolation = "Warning"
            ed.evse_status(ed.body(x.response))["EVSEIsolationStatus"] = "Warning"
            ed.note(x.response, "isolation_warning: EVSEIsolationStatus Warning from here on")
    ed.hook(ctx, hook)


@fault("isolation_fault_in_loop", level="script", stage="before", category="cablecheck",
       at_cycle=10, status_code="EVSE_EmergencyShutdown")
def isolation_fault_in_loop(ctx, at_cycle, status_code):
    """In charge-loop cycle ``at_cycle`` the EVSE's insulation monitor trips: the response
    reports EVSEIsolationStatus Fault with ``status_code`` and EVSENotification StopCharging,
    the EVSE switches its output off (IEC 61851-23 insulation monitoring during charging;
    PROTOCOL_FACTS §4D). Every later DC response keeps reporting Fault; the EV stops
    (PowerDelivery Stop, WeldingDetection, SessionStop)."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="isolation_fault_in_loop")
    ctx.behaviour.ev_stop_cycle = int(at_cycle)

    def hook(flow, x):
        if not ed.is_loop(x) or ed.cycle(flow) != int(at_cycle):
            return
        s = flow.s
        s.isolation, s.evse_status_code = "Fault", status_code
        s.notification, s.notification_delay = "StopCharging", 0
        s.dc.current_a = s.present_current_a = 0.0
        b = ed.body(x.response)
        st = ed.evse_status(b)
        st.update({"EVSEIsolationStatus": "Fault", "EVSEStatusCode": status_code,
                   "EVSENotification": "StopCharging", "NotificationMaxDelay": 0})
        b["EVSEPresentCurrent"] = ed.like(b["EVSEPresentCurrent"], 0.0)
        ed.note(x.response, f"isolation_fault_in_loop: insulation fault, {status_code}")
    ed.hook(ctx, hook)


# ====================================================================== response codes, status
@fault("isolation_monitoring_status", level="script", stage="before", category="response-code",
       from_cycle=1)
def isolation_monitoring_status(ctx, from_cycle):
    """From charge-loop cycle ``from_cycle`` the SECC reports DC_EVSEStatusCode
    EVSE_IsolationMonitoringActive in its CurrentDemandRes (it maps its insulation monitor's
    "monitoring on" state, active during energy transfer, onto the status code) instead of
    EVSE_Ready; the status belongs to the cable check's isolation test (DIN 70121 /
    ISO 15118-2 DC_EVSEStatusCodeType; PROTOCOL_FACTS §4D). The EV tolerates it."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="isolation_monitoring_status")

    def hook(flow, x):
        if ed.is_loop(x) and ed.cycle(flow) >= int(from_cycle):
            ed.evse_status(ed.body(x.response))["EVSEStatusCode"] = "EVSE_IsolationMonitoringActive"
            if ed.cycle(flow) == int(from_cycle):
                ed.note(x.response, "isolation_monitoring_status: EVSE_IsolationMonitoringActive in the loop")
    ed.hook(ctx, hook)


@fault("rcd_trip", level="script", stage="before", category="response-code", at_cycle=8)
def rcd_trip(ctx, at_cycle):
    """ISO 15118-2 AC: in charge-loop cycle ``at_cycle`` the charge point's residual current
    device trips — ChargingStatusRes reports AC_EVSEStatus RCD true and EVSENotification
    StopCharging, the contactor opens and the current falls to 0 (ISO 15118-2
    AC_EVSEStatusType; PROTOCOL_FACTS §4B). RCD stays true; the EV stops (PowerDelivery Stop,
    SessionStop)."""
    ed.need(ctx, ("ISO 15118-2",), mode="AC", name="rcd_trip")
    ctx.behaviour.ev_stop_cycle = int(at_cycle)

    def hook(flow, x):
        if not ed.is_loop(x) or ed.cycle(flow) != int(at_cycle):
            return
        s = flow.s
        s.rcd, s.notification, s.notification_delay = True, "StopCharging", 0
        s.ac.current_a = 0.0
        st = ed.evse_status(ed.body(x.response))
        st.update({"RCD": True, "EVSENotification": "StopCharging", "NotificationMaxDelay": 0})
        ed.note(x.response, "rcd_trip: residual current detected, RCD true")
    ed.hook(ctx, hook)


@fault("renegotiation_ignored", level="script", stage="before", category="response-code",
       at_cycle=6, max_delay_s=1)
def renegotiation_ignored(ctx, at_cycle, max_delay_s):
    """ISO 15118-2: from charge-loop cycle ``at_cycle`` the SECC asks for a renegotiation
    (EVSENotification ReNegotiation, NotificationMaxDelay ``max_delay_s``: a new grid limit);
    the EV ignores it and charges on to the end of its loop instead of sending
    PowerDeliveryReq(Renegotiate) ([V2G2-841], [V2G2-813]; PFMEA UC2 304). The SECC keeps
    asking."""
    ed.need(ctx, ("ISO 15118-2",), name="renegotiation_ignored")

    def hook(flow, x):
        if ed.is_loop(x) and ed.cycle(flow) >= int(at_cycle):
            st = ed.evse_status(ed.body(x.response))
            st.update({"EVSENotification": "ReNegotiation", "NotificationMaxDelay": int(max_delay_s)})
            if ed.cycle(flow) == int(at_cycle):
                ed.note(x.response, "renegotiation_ignored: ReNegotiation requested; the EV ignores it")
    ed.hook(ctx, hook)


@fault("certificate_expires_soon", level="script", stage="after", category="response-code",
       message="PaymentDetailsRes")
def certificate_expires_soon(ctx, message):
    """Plug & Charge: the contract certificate expires within 21 days, so the SECC answers
    ``message`` with OK_CertificateExpiresSoon ([V2G2-690]; PROTOCOL_FACTS §4.0); the
    session goes on (the EV should renew its certificate: CertificateUpdate). For
    PaymentDetailsRes the EV's contract certificate is replaced by one that expires 10 days
    after the session (samples/faults_pki.py)."""
    ci, xi, x, m = ctx.find(message, 1)
    if message == "PaymentDetailsRes":     # the certificate the EV sends really expires soon
        from .faults_pki import swap_contract_certificate
        swap_contract_certificate(ctx, "expires_soon", 10.0, "certificate_expires_soon")
    set_response_code(m, "OK_CertificateExpiresSoon")
    ed.encodes(m)
    ed.note(m, "certificate_expires_soon: the contract certificate expires within 21 days")


# ====================================================================== charge loop, receipts
@fault("loop_after_refused_power_delivery", level="script", stage="after", category="charging-loop",
       code="FAILED_PowerDeliveryNotApplied")
def loop_after_refused_power_delivery(ctx, code):
    """The SECC refuses PowerDeliveryReq(Start) with ``code`` (its contactors did not close)
    and the EV starts the charge loop anyway; the SECC answers the first loop request
    FAILED_SequenceError and closes the connection. Only PowerDeliveryRes OK allows the
    loop ([V2G2-590], [V2G-DC-462], [V2G20-861]; PROTOCOL_FACTS §4A-4C)."""
    for ci, xi, x in ctx.plan.exchanges():
        if ed.is_loop(x):
            break
    else:
        raise FaultError("loop_after_refused_power_delivery: the session has no charge loop")
    conn = ctx.plan.connections[ci]
    pd = conn.exchanges[xi - 1]
    if pd.response is None or not pd.response.name.endswith("PowerDeliveryRes"):
        raise FaultError("loop_after_refused_power_delivery: no PowerDelivery before the loop")
    set_response_code(pd.response, code)
    ed.encodes(pd.response)
    ed.note(pd.response, f"loop_after_refused_power_delivery: {code}; the EV starts the loop anyway")
    set_response_code(x.response, "FAILED_SequenceError")
    ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="FIN", after_s=ctx.timing.failed_close_s,
                                      reason="SECC closes after FAILED_SequenceError"))


@fault("charging_complete_flag", level="script", stage="before", category="charging-loop",
       how="at_bulk", at_cycle=8)
def charging_complete_flag(ctx, how, at_cycle):
    """The EV sets ChargingComplete / BulkChargingComplete wrongly (DIN 70121 / ISO 15118-2
    CurrentDemandReq and DC_EVPowerDeliveryParameter semantics; PROTOCOL_FACTS §4D):
    ``how`` "at_bulk" — it sets ChargingComplete together with BulkChargingComplete (bulk
    SoC reached, mixing up the two) and keeps asking for current until its real target;
    "flicker" — BulkChargingComplete is true in cycle ``at_cycle`` only, then false again (a
    noisy SoC around the bulk threshold); "at_start" — PowerDeliveryReq(Start) already says
    ChargingComplete true (a flag left over from the previous session)."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="charging_complete_flag")
    if how not in ("at_bulk", "flicker", "at_start"):
        raise FaultError(f"charging_complete_flag: how {how!r}; at_bulk, flicker or at_start")
    state = {"noted": False}

    def hook(flow, x):
        b = ed.body(x.request)
        if how == "at_start" and x.request.name == "PowerDeliveryReq" and flow.s.charge_progress == "Start":
            p = b.get("DC_EVPowerDeliveryParameter")
            if p is not None and not state["noted"]:
                p["ChargingComplete"] = True
                state["noted"] = True
                ed.note(x.request, "charging_complete_flag: ChargingComplete true in PowerDeliveryReq(Start)")
        elif how == "at_bulk" and ed.is_loop(x) and b.get("BulkChargingComplete") and not b.get("ChargingComplete"):
            b["ChargingComplete"] = True
            if not state["noted"]:
                state["noted"] = True
                ed.note(x.request, "charging_complete_flag: ChargingComplete set at the bulk SoC")
        elif how == "flicker" and ed.is_loop(x) and ed.cycle(flow) == int(at_cycle) and not b.get("BulkChargingComplete"):
            b["BulkChargingComplete"] = True
            ed.note(x.request, "charging_complete_flag: BulkChargingComplete true for one cycle")
    ed.hook(ctx, hook)


@fault("metering_receipt_rejected", level="script", stage="after", category="charging-loop",
       occurrence=1)
def metering_receipt_rejected(ctx, occurrence):
    """Plug & Charge: the receipt's signature is corrupted (one octet of SignatureValue,
    samples/signing.py "flip"), the SECC cannot verify it and answers MeteringReceiptRes
    FAILED_MeteringSignatureNotValid — but neither side ends the session: the EV carries on
    with its loop requests and the SECC keeps answering them (after a FAILED response the
    session shall terminate, [V2G2-539], [V2G2-580]; PFMEA UC2 252)."""
    ed.need(ctx, ("ISO 15118-2",), payment="PnC", name="metering_receipt_rejected")
    ci, xi, x, m = ctx.find("MeteringReceiptRes", int(occurrence))
    x.request.signature_fault = "flip"
    x.request.invalidate()
    set_response_code(m, "FAILED_MeteringSignatureNotValid")
    ed.note(m, "metering_receipt_rejected: the loop goes on after the FAILED receipt")


@fault("receipt_not_sent", level="script", stage="after", category="message-content", occurrence=0)
def receipt_not_sent(ctx, occurrence):
    """Plug & Charge: the SECC sets ReceiptRequired but the EV never sends MeteringReceiptReq
    (its ``occurrence``-th requested receipt; 0 = all): it goes straight on with its next
    loop request ([V2G2-577], [V2G2-795]). The SECC tolerates it."""
    items = ed.messages(ctx, "MeteringReceiptReq", int(occurrence))
    for ci, xi, x, m in reversed(items):
        conn = ctx.plan.connections[ci]
        del conn.exchanges[xi]
        if xi < len(conn.exchanges):
            conn.exchanges[xi].request.comments.append(
                "simulator fault receipt_not_sent: no MeteringReceiptReq although ReceiptRequired")


@fault("receipt_required_eim", level="script", stage="before", category="message-content", every=5)
def receipt_required_eim(ctx, every):
    """ISO 15118-2 AC with external payment: the SECC sets ReceiptRequired true in every
    ``every``-th ChargingStatusRes although only Plug & Charge can sign a receipt
    ([V2G2-691]); the EIM EV ignores it."""
    ed.need(ctx, ("ISO 15118-2",), mode="AC", payment="EIM", name="receipt_required_eim")

    def hook(flow, x):
        if ed.is_loop(x) and ed.cycle(flow) % int(every) == 0:
            ed.body(x.response)["ReceiptRequired"] = True
            ed.note(x.response, "receipt_required_eim: ReceiptRequired in an EIM session")
    ed.hook(ctx, hook)


# ====================================================================== precharge
@fault("precharge_target_changes", level="script", stage="before", category="precharge",
       initial_v=None, count=3)
def precharge_target_changes(ctx, initial_v, count):
    """The EV starts PreCharge with a placeholder EVTargetVoltage ``initial_v`` (default its
    maximum voltage) in its first ``count`` PreChargeReq and sends the measured battery
    voltage only after that (the BMS value arrives late): the target moves during PreCharge
    (ISO 15118-2 / DIN 70121 PreChargeReq EVTargetVoltage; PROTOCOL_FACTS §4D). The EVSE
    output is still rate-limited in those cycles; PreCharge ends normally."""
    ed.need(ctx, mode="DC", name="precharge_target_changes")

    def hook(flow, x):
        if x.request.name.endswith("PreChargeReq") and flow.counts.get(x.request.name, 0) <= int(count):
            q = ed.body(x.request)
            v = float(initial_v) if initial_v is not None else flow.s.bat.max_voltage_v
            q["EVTargetVoltage"] = ed.like(q["EVTargetVoltage"], v)
            if flow.counts.get(x.request.name, 0) == 1:
                ed.note(x.request, f"precharge_target_changes: placeholder target {v:g} V")
    ed.hook(ctx, hook)


@fault("precharge_current_high", level="script", stage="before", category="precharge", current_a=10.0)
def precharge_current_high(ctx, current_a):
    """The EV asks for ``current_a`` in PreChargeReq (EVTargetCurrent) instead of at most
    2 A: an inrush into its not yet matched DC link if the EVSE followed it (IEC 61851-23
    CC.5.2; PROTOCOL_FACTS §4D). The EVSE limits its PreCharge current regardless; the
    session goes on."""
    ctx.spec.ev.precharge_current_a = float(current_a)


@fault("precharge_tolerance_loose", level="script", stage="before", category="precharge",
       tolerance_v=60.0)
def precharge_tolerance_loose(ctx, tolerance_v):
    """The EV ends PreCharge once two consecutive EVSEPresentVoltage readings are within
    ``tolerance_v`` of its target (a percentage window without the usual 20 V cap) and closes its
    contactors with tens of volts between the EVSE output and its battery (PreCharge end
    criterion ≤ 20 V in practice, PROTOCOL_FACTS §4D; [V2G2-587], [V2G-DC-458])."""
    ed.need(ctx, mode="DC", name="precharge_tolerance_loose")
    ctx.spec.ev.precharge_tolerance_v = float(tolerance_v)


# ====================================================================== timing
@fault("ev_late_request", level="script", stage="before", category="timing",
       message="DC_ChargeLoopReq", occurrence=10, delay_s=0.8)
def ev_late_request(ctx, message, occurrence, delay_s):
    """The EV sends ``message`` (its ``occurrence``-th) ``delay_s`` after the previous
    response — an EV-internal task stalls its loop. Past V2G_EVCC_Sequence_Performance_Time
    and the SECC's V2G_SECC_Sequence_Timeout (ISO 15118-20 charge loop 0.25 s / 0.5 s,
    [V2G20-1500]; 40 s / 60 s elsewhere, ISO 15118-2 Table 109) when larger. The SECC
    tolerates it; the session goes on."""
    ctx.behaviour.think_override[(message, int(occurrence))] = float(delay_s)
    ctx.behaviour.comments.append((message, int(occurrence), f"simulator fault ev_late_request: "
                                   f"{message} {delay_s:g} s after the previous response"))


@fault("slow_setup", level="script", stage="before", category="timing", segment="tcp", delay_s=21.0)
def slow_setup(ctx, segment, delay_s):
    """Communication setup takes too long (V2G_EVCC_CommunicationSetup_Timeout 20 s, the
    SECC's 18 s, ISO 15118-2 [V2G2-446..448], [V2G2-714..716]): ``segment`` "tcp" — the EV
    connects ``delay_s`` after the SDP response (its TCP client starts late); "sap" — it
    sends supportedAppProtocolReq ``delay_s`` after the TCP handshake; "session_setup" — the
    SECC answers SessionSetupReq after ``delay_s``. Both sides wait; the session goes on."""
    if segment == "tcp":
        ctx.timing.sdp_to_syn_s = float(delay_s)
    elif segment == "sap":
        ctx.timing.sap_think_s = float(delay_s)
        ctx.behaviour.comments.append(("supportedAppProtocolReq", 1, f"simulator fault slow_setup: "
                                       f"supportedAppProtocolReq {delay_s:g} s after the TCP handshake"))
    elif segment == "session_setup":
        ctx.behaviour.latency_override[("SessionSetupRes", 1)] = float(delay_s)
        ctx.behaviour.comments.append(("SessionSetupRes", 1, f"simulator fault slow_setup: "
                                       f"SessionSetupRes {delay_s:g} s after the request"))
    else:
        raise FaultError(f"slow_setup: segment {segment!r}; tcp, sap or session_setup")
    if segment == "tcp":
        ctx.sdp.comments.append(f"simulator fault slow_setup: the EV connects {delay_s:g} s after the SDP response")


@fault("slow_precharge_ramp", level="script", stage="before", category="timing", rate_v_per_s=65.0)
def slow_precharge_ramp(ctx, rate_v_per_s):
    """The charger's converter ramps its PreCharge voltage at only ``rate_v_per_s`` (a
    few hundred V/s is usual): it reaches the EV's target after more than
    V2G_SECC_PreCharge_Performance_Time (5 s ⚠, ISO 15118-2 Table 111) but within the EV's
    7 s PreCharge timeout, so the session goes on."""
    ed.need(ctx, mode="DC", name="slow_precharge_ramp")
    ctx.spec.evse.precharge_rate_v_per_s = float(rate_v_per_s)


@fault("no_output_discharge", level="script", stage="before", category="timing",
       polls=65, period_s=1.0)
def no_output_discharge(ctx, polls, period_s):
    """After PowerDelivery(Stop) the EVSE's output discharge circuit fails: EVSEPresentVoltage
    stays at the battery voltage, so the EV's WeldingDetection loop (a request every
    ``period_s``) never sees the output fall; it gives up after ``polls`` requests and ends
    the session — far past the usual 60 s bound ([V2G2-620]; PROTOCOL_FACTS §4D, §4E)."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="no_output_discharge")
    ctx.timing.welding_cycles = int(polls)
    ctx.timing.welding_period_s = float(period_s)

    def hook(flow, x):
        if x.request.name == "PowerDeliveryReq" and flow.s.charge_progress == "Stop":
            flow.s.dc.discharge_tau_s = 1e9
            ed.note(x.response, "no_output_discharge: the output is not discharged")
    ed.hook(ctx, hook)
