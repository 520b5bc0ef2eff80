"""Faults of the messages' values and encodings — registered with :func:`ccs_analyzer.samples.faults.fault`.

What real EVs and chargers get wrong in the limits and physics of the charge loop
(overshoots, power-module failures, lamp loads, SOC glitches, limit flags, incompatible
voltage ranges) and in message content and encodings (PhysicalValue multipliers and units,
wrong schema or status type, stale GenChallenge, missing schedules, DIN messages with ISO-2
content). Each fault models one behaviour seen in the field or in the reference
implementations (the corpus captures in ../shared/corpus, PROTOCOL_FACTS, ChargeX PFMEA) and
says how the other side reacts. Helpers: faults_edit.py.
"""
from __future__ import annotations


from .faults import FaultError, fault
from .physical import pv
from .script import Ending, body_of, set_response_code



from . import faults_edit as ed
from .faults_edit import NS_DIN, NS_ISO2


# ====================================================================== limits and physics
def _loop_values(x):
    """(request body, response body) of a loop exchange."""
    return ed.body(x.request), ed.body(x.response)


@fault("evse_current_overshoot", level="script", stage="before", category="limits",
       overshoot_a=20.0, at_cycle=8, cycles=4)
def evse_current_overshoot(ctx, overshoot_a, at_cycle, cycles):
    """The EVSE's current controller overshoots: from charge-loop cycle ``at_cycle`` for
    ``cycles`` cycles EVSEPresentCurrent is ``overshoot_a`` above the EV's EVTargetCurrent
    (beyond EVSECurrentRegulationTolerance; derived rule EVSEPresentCurrent ≤ EVTargetCurrent
    + tolerance, PROTOCOL_FACTS §4D), then it settles. DC only; the EV tolerates it."""
    ed.need(ctx, mode="DC", name="evse_current_overshoot")

    def hook(flow, x):
        c = ed.cycle(flow)
        if ed.is_loop(x) and int(at_cycle) <= c < int(at_cycle) + int(cycles):
            q, r = _loop_values(x)
            key = "EVSEPresentCurrent"
            target = ed.si(q["EVTargetCurrent"]) if "EVTargetCurrent" in q else flow.s.target_current_a
            r[key] = ed.like(r[key], target + float(overshoot_a))
            if c == int(at_cycle):
                ed.note(x.response, f"evse_current_overshoot: {overshoot_a:g} A above the EV's target")
    ed.hook(ctx, hook)


@fault("evse_voltage_overshoot", level="script", stage="before", category="limits",
       overshoot_v=25.0, at_cycle=6, ev_stops_after=5)
def evse_voltage_overshoot(ctx, overshoot_v, at_cycle, ev_stops_after):
    """From charge-loop cycle ``at_cycle`` the EVSE's output voltage runs ``overshoot_v``
    above the EV's EVTargetVoltage (its charge-end voltage, here also its
    EVMaximumVoltageLimit): a voltage-regulation fault of the charger — derived rules
    EVSEPresentVoltage ≤ EVTargetVoltage and ≤ EVMaximumVoltageLimit, PROTOCOL_FACTS §4D.
    After ``ev_stops_after`` cycles the EV reports DC_EVErrorCode
    FAILED_ChargingVoltageOutOfRange and stops (0: it never does). DIN / ISO-2 DC."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="evse_voltage_overshoot")
    if int(ev_stops_after):
        ctx.behaviour.ev_error = {"cycle": int(at_cycle) + int(ev_stops_after),
                                  "code": "FAILED_ChargingVoltageOutOfRange"}

    def hook(flow, x):
        c = ed.cycle(flow)
        if ed.is_loop(x) and c >= int(at_cycle):
            q, r = _loop_values(x)
            v = ed.si(q["EVTargetVoltage"]) + float(overshoot_v) + flow.rng.uniform(-0.5, 0.5)
            flow.s.present_voltage_v = v
            r["EVSEPresentVoltage"] = ed.like(r["EVSEPresentVoltage"], v)
            if c == int(at_cycle):
                ed.note(x.response, f"evse_voltage_overshoot: output {overshoot_v:g} V above the EV's target")
    ed.hook(ctx, hook)


@fault("evse_power_module_failure", level="script", stage="before", category="limits",
       at_cycle=3, fraction=0.5)
def evse_power_module_failure(ctx, at_cycle, fraction):
    """From charge-loop cycle ``at_cycle`` one of the charger's power modules has failed: the
    output current is capped at ``fraction`` of its EVSEMaximumCurrentLimit, which it keeps
    announcing unchanged (and its limit-achieved flags do not say it is limiting): the EV
    gets far less than it asks for and the EVSE's limits allow (derived rule, PROTOCOL_FACTS
    §4D; PFMEA UC2 244-251). DC only; the EV charges on, slowly."""
    ed.need(ctx, mode="DC", name="evse_power_module_failure")

    def hook(flow, x):
        if not (ed.is_loop(x) and ed.cycle(flow) >= int(at_cycle)):
            return
        s = flow.s
        cap = float(fraction) * s.dc.max_current_a
        if s.dc.current_a > cap:
            s.dc.current_a = cap
        if s.present_current_a > cap:
            s.present_current_a = cap + flow.rng.uniform(-0.3, 0.0)
            r = ed.body(x.response)
            r["EVSEPresentCurrent"] = ed.like(r["EVSEPresentCurrent"], s.present_current_a)
        if ed.cycle(flow) == int(at_cycle):
            ed.note(x.response, f"evse_power_module_failure: output capped at {cap:g} A")
    ed.hook(ctx, hook)


@fault("lamp_load", level="script", stage="before", category="limits",
       voltage_v=230.0, resistance_ohm=660.0, request_a=10.0)
def lamp_load(ctx, voltage_v, resistance_ohm, request_a):
    """The "EV" is a test rig (pyPLC in EV mode) with a light bulb as its load instead of a
    battery (pyPLC's compleo_with_bulb / westparkAlpi captures): it asks for ``voltage_v`` and
    ``request_a``; the EVSE holds the target voltage and the bulb draws voltage /
    ``resistance_ohm`` (0.35 A for 660 Ω): far less current than asked, at the EV's target
    voltage (derived rule, PROTOCOL_FACTS §4D). The rig reports a made-up SoC. DC only."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="lamp_load")
    v = float(voltage_v)
    ctx.spec.battery.update({"voltage_empty_v": v, "voltage_full_v": v, "max_voltage_v": v,
                             "max_current_a": float(request_a), "internal_resistance_ohm": 0.0,
                             "min_voltage_v": min(v, 200.0)})

    def hook(flow, x):
        if not ed.is_loop(x):
            return
        s = flow.s
        s.present_voltage_v = s.target_voltage_v + flow.rng.uniform(-0.3, 0.3)
        s.present_current_a = s.dc.current_a = s.present_voltage_v / float(resistance_ohm)
        r = ed.body(x.response)
        r["EVSEPresentVoltage"] = ed.like(r["EVSEPresentVoltage"], s.present_voltage_v)
        r["EVSEPresentCurrent"] = pv(s.present_current_a, r["EVSEPresentCurrent"].get("Unit"), -2)
        if ed.cycle(flow) == 1:
            ed.note(x.response, f"lamp_load: a {voltage_v * voltage_v / resistance_ohm:.0f} W bulb as the load")
    ed.hook(ctx, hook)


@fault("ev_soc_glitch", level="script", stage="before", category="limits",
       at_cycle=10, cycles=2, value=0)
def ev_soc_glitch(ctx, at_cycle, cycles, value):
    """From charge-loop cycle ``at_cycle`` for ``cycles`` cycles the EV reports SoC ``value``
    (its BMS message timed out and the gateway sends the default) instead of the battery's
    SoC: the SoC jumps backwards while charging (DC_EVStatus EVRESSSOC / -20 PresentSOC;
    derived check, PROTOCOL_FACTS §4)."""
    ed.need(ctx, mode="DC", name="ev_soc_glitch")

    def hook(flow, x):
        c = ed.cycle(flow)
        if ed.is_loop(x) and int(at_cycle) <= c < int(at_cycle) + int(cycles):
            q = ed.body(x.request)
            if "DC_EVStatus" in q:
                q["DC_EVStatus"]["EVRESSSOC"] = int(value)
            elif isinstance(q.get("DisplayParameters"), dict):
                q["DisplayParameters"]["PresentSOC"] = int(value)
            else:
                return
            if c == int(at_cycle):
                ed.note(x.request, f"ev_soc_glitch: SoC {value} %")
    ed.hook(ctx, hook)


@fault("ev_target_above_max", level="script", stage="before", category="limits",
       quantity="voltage", excess=20.0, at_cycle=1)
def ev_target_above_max(ctx, quantity, excess, at_cycle):
    """From charge-loop cycle ``at_cycle`` the EV's target exceeds its own maximum by
    ``excess``: ``quantity`` "voltage" — EVTargetVoltage above EVMaximumVoltageLimit (its
    BMS adds a margin to the charge-end voltage the maximum does not have); "current" —
    EVTargetCurrent above EVMaximumCurrentLimit (a derating that lowered the maximum but not
    the target). Derived rule EVTarget… ≤ EVMaximum…, PROTOCOL_FACTS §4D. DIN / ISO-2 DC."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="ev_target_above_max")
    keys = {"voltage": ("EVTargetVoltage", "EVMaximumVoltageLimit"),
            "current": ("EVTargetCurrent", "EVMaximumCurrentLimit")}
    if quantity not in keys:
        raise FaultError(f"ev_target_above_max: quantity {quantity!r}; voltage or current")
    tk, mk = keys[quantity]

    def hook(flow, x):
        if ed.is_loop(x) and ed.cycle(flow) >= int(at_cycle):
            q = ed.body(x.request)
            q[tk] = ed.like(q[tk], ed.si(q[mk]) + float(excess))
            if ed.cycle(flow) == int(at_cycle):
                ed.note(x.request, f"ev_target_above_max: {tk} {excess:g} above {mk}")
    ed.hook(ctx, hook)


@fault("limit_flags_fixed", level="script", stage="before", category="limits", value=False)
def limit_flags_fixed(ctx, value):
    """The EVSE sends fixed EVSECurrentLimitAchieved / EVSEVoltageLimitAchieved /
    EVSEPowerLimitAchieved = ``value`` in every CurrentDemandRes whatever its output does (a
    hard-coded response, as simple SECCs and test rigs send): with false while it limits the
    EV to its maximum current the flags contradict the values (PROTOCOL_FACTS §4D
    "CurrentDemandRes flags", E-ISO ⚠)."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="limit_flags_fixed")

    def hook(flow, x):
        if ed.is_loop(x):
            r = ed.body(x.response)
            for k in ("EVSECurrentLimitAchieved", "EVSEVoltageLimitAchieved", "EVSEPowerLimitAchieved"):
                r[k] = bool(value)
            if ed.cycle(flow) == 1:
                ed.note(x.response, f"limit_flags_fixed: every limit-achieved flag {value}")
    ed.hook(ctx, hook)


@fault("physical_value_error", level="script", stage="after", category="message-content",
       message="ChargeParameterDiscoveryRes", element="EVSEMaximumPowerLimit", occurrence=1,
       multiplier=None, unit=None, keep_value=True)
def physical_value_error(ctx, message, element, occurrence, multiplier, unit, keep_value):
    """An encoding error in one DIN / ISO-2 PhysicalValue (PROTOCOL_FACTS §4.0 "Physical
    values"; PFMEA UC2 240-243): ``element`` (a name, or a path inside the body) of
    ``message`` (its ``occurrence``-th; 0 = every one) is sent with ``multiplier`` and / or
    ``unit``. ``keep_value`` True: the Value is rescaled so that the quantity stays right
    (only the form is wrong — a Multiplier outside −3..3 such as 4, which the 3-bit EXI field
    can carry but the schema forbids); False: the Value is kept, so the quantity is off by
    a power of ten (the classic multiplier bug). Receivers read it as sent; the session goes
    on."""
    items = ed.messages(ctx, message, int(occurrence))
    for ci, xi, x, m in items:
        parent, key = ed.path_get(body_of(m.tree), element)
        node = parent[key]
        if not isinstance(node, dict) or "Multiplier" not in node:
            raise FaultError(f"physical_value_error: {element} is not a PhysicalValue")
        old = dict(node)
        if unit is not None:
            node["Unit"] = unit
        if multiplier is not None:
            mult = int(multiplier)
            value = node["Value"]
            if keep_value:
                value = int(round(old["Value"] * 10.0 ** (old["Multiplier"] - mult)))
            node["Multiplier"], node["Value"] = mult, value
        m.invalidate()
        if multiplier is not None and not -3 <= int(multiplier) <= 3:
            mult = node["Multiplier"]
            node["Multiplier"] = old["Multiplier"]
            data = ed.lenient_exi(m.tree, m.namespace, node, "Multiplier", mult)
            node["Multiplier"] = mult
            m._exi = data
        else:
            ed.encodes(m)
        ed.note(m, f"physical_value_error: {key} {old} sent as {dict(node)}")


def _cpd_hook(fn):
    """A hook on the ChargeParameterDiscovery exchange that ends its loop (Finished)."""
    def hook(flow, x):
        if x.request.name.endswith("ChargeParameterDiscoveryReq") and x.response is not None \
                and ed.body(x.response).get("EVSEProcessing", "Finished") == "Finished":
            fn(flow, x)
    return hook


@fault("ev_negative_limit", level="script", stage="before", category="limits",
       element="EVMaximumCurrentLimit", secc_reaction="refuse")
def ev_negative_limit(ctx, element, secc_reaction):
    """The EV announces ``element`` (a maximum of its ChargeParameterDiscoveryReq) with a
    negative sign — its battery's sign convention (charging current negative) leaked into
    the message. A negative maximum forbids any charging; the SECC must answer
    FAILED_WrongChargeParameter ([V2G2-477]; PROTOCOL_FACTS §4D): ``secc_reaction`` "refuse"
    does so and closes the connection, "accept" goes on."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), name="ev_negative_limit")

    def fn(flow, x):
        q = ed.body(x.request)
        par = next((v for k, v in q.items() if k.endswith("EVChargeParameter")), q)
        if element not in par:
            raise FaultError(f"ev_negative_limit: no {element} in {x.request.name}")
        par[element] = ed.like(par[element], -abs(ed.si(par[element])))
        ed.note(x.request, f"ev_negative_limit: {element} negative")
        if secc_reaction == "refuse":
            set_response_code(x.response, "FAILED_WrongChargeParameter")
            flow.secc_closes("FAILED_WrongChargeParameter")
    ed.hook(ctx, _cpd_hook(fn))


@fault("incompatible_voltage_range", level="script", stage="before", category="limits",
       evse_min_voltage_v=500.0, secc_reaction="accept")
def incompatible_voltage_range(ctx, evse_min_voltage_v, secc_reaction):
    """A 400 V car at an 800 V-only charger: the EVSE's minimum voltage
    ``evse_min_voltage_v`` is above the EV's EVMaximumVoltageLimit — no common operating
    range (PFMEA UC2 107-111 "incompatible charger"). ``secc_reaction`` "accept": the SECC
    does not check and answers OK (it should refuse with FAILED_WrongChargeParameter, as
    EVerest does: PROTOCOL_FACTS §4D); the EV sees the mismatch and ends the session
    (SessionStop). "refuse": the SECC answers FAILED_WrongChargeParameter and closes."""
    ed.need(ctx, ("DIN 70121", "ISO 15118-2"), mode="DC", name="incompatible_voltage_range")
    if secc_reaction not in ("accept", "refuse"):
        raise FaultError(f"incompatible_voltage_range: secc_reaction {secc_reaction!r}; accept or refuse")
    ctx.spec.evse.min_voltage_v = float(evse_min_voltage_v)
    done = []

    def fn(flow, x):
        if done:
            return
        done.append(x)
        ed.note(x.response, f"incompatible_voltage_range: EVSE minimum {evse_min_voltage_v:g} V above the "
                          f"EV's maximum {flow.s.bat.max_voltage_v:g} V")
        if secc_reaction == "refuse":
            set_response_code(x.response, "FAILED_WrongChargeParameter")
            flow.secc_closes("FAILED_WrongChargeParameter")
        flow.ev_gives_up("session_stop", before_power=True)
    ed.hook(ctx, _cpd_hook(fn))


@fault("hpc_ratings", level="script", stage="before", category="message-content",
       max_power_w=350000.0, max_current_a=500.0)
def hpc_ratings(ctx, max_power_w, max_current_a):
    """A high-power charger announces its real ratings (``max_power_w``, ``max_current_a``)
    in ISO 15118-2, beyond the ranges of ISO 15118-2 Table 68 (200 kW, 400 A; Josev's
    PhysicalValue classes): a receiver that validates Table 68 rejects them. The EV charges
    at its own limits."""
    ed.need(ctx, ("ISO 15118-2",), mode="DC", name="hpc_ratings")
    ctx.spec.evse.max_power_w = float(max_power_w)
    ctx.spec.evse.max_current_a = float(max_current_a)


# ====================================================================== message content
@fault("wrong_schema", level="script", stage="after", category="message-content",
       message="CableCheckReq", occurrence=0, namespace="ISO 15118-2")
def wrong_schema(ctx, message, occurrence, namespace):
    """The EV negotiated one protocol but encodes ``message`` (its ``occurrence``-th; 0 =
    every one) with the schema of ``namespace`` ("ISO 15118-2" or "DIN 70121"): a stack whose
    DIN and ISO 15118-2 codecs share the message builders and picks the wrong one
    (ISO 15118-2 §8.2: SupportedAppProtocol selects the schema; PROTOCOL_FACTS §3). The
    trees are alike, so a tolerant SECC that tries both schemas decodes it and goes on."""
    ns = {"ISO 15118-2": NS_ISO2, "DIN 70121": NS_DIN}.get(namespace)
    if ns is None:
        raise FaultError(f"wrong_schema: namespace {namespace!r}; ISO 15118-2 or DIN 70121")
    for ci, xi, x, m in ed.messages(ctx, message, int(occurrence)):
        if m.namespace == ns:
            raise FaultError(f"wrong_schema: {message} is already encoded with {namespace}")
        m.namespace = ns
        ed.encodes(m)
        ed.note(m, f"wrong_schema: encoded with the {namespace} schema")


@fault("wrong_status_type", level="script", stage="after", category="message-content",
       message="PowerDeliveryRes", occurrence=0)
def wrong_status_type(ctx, message, occurrence):
    """ISO 15118-2 DC: the SECC fills ``message`` (its ``occurrence``-th; 0 = every one) with
    an AC_EVSEStatus (NotificationMaxDelay, EVSENotification, RCD) instead of DC_EVSEStatus —
    a combined AC / DC charger firmware filling the wrong status block ([V2G2-477]; PROTOCOL_FACTS
    §5). The EV cannot read the DC status but goes on."""
    ed.need(ctx, ("ISO 15118-2",), mode="DC", name="wrong_status_type")
    for ci, xi, x, m in ed.messages(ctx, message, int(occurrence)):
        b = body_of(m.tree)
        st = b.get("DC_EVSEStatus")
        if st is None:
            raise FaultError(f"wrong_status_type: {message} has no DC_EVSEStatus")
        new = {}
        for k, v in b.items():
            if k == "DC_EVSEStatus":
                new["AC_EVSEStatus"] = {"NotificationMaxDelay": st["NotificationMaxDelay"],
                                        "EVSENotification": st["EVSENotification"], "RCD": False}
            else:
                new[k] = v
        b.clear()
        b.update(new)
        ed.encodes(m)
        ed.note(m, "wrong_status_type: AC_EVSEStatus in a DC session")


@fault("stale_gen_challenge", level="script", stage="after", category="message-content")
def stale_gen_challenge(ctx):
    """Plug & Charge: the EV signs and sends a stale GenChallenge in AuthorizationReq (the one
    of its previous session) instead of the one PaymentDetailsRes just issued
    ([V2G2-475], [V2G2-684]); the SECC answers FAILED_ChallengeInvalid and closes the
    connection."""
    ed.need(ctx, ("ISO 15118-2",), payment="PnC", name="stale_gen_challenge")
    ci, xi, x, m = ctx.find("AuthorizationReq", 1)
    b = body_of(m.tree)
    if "GenChallenge" not in b:
        raise FaultError("stale_gen_challenge: the AuthorizationReq carries no GenChallenge")
    b["GenChallenge"] = bytes(ctx.rng.randrange(256) for _ in range(16)).hex()
    m.invalidate()
    ed.note(m, "stale_gen_challenge: GenChallenge of the previous session")
    set_response_code(x.response, "FAILED_ChallengeInvalid")
    ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="FIN", after_s=ctx.timing.failed_close_s,
                                      reason="SECC closes after FAILED_ChallengeInvalid"))


@fault("cpd_without_schedule", level="script", stage="after", category="message-content")
def cpd_without_schedule(ctx):
    """ISO 15118-2: the SECC answers ChargeParameterDiscoveryRes EVSEProcessing Finished
    without SAScheduleList (it sends its schedule only with Ongoing, or not at all) — with
    Finished the schedule is mandatory (R-SECC-CPD, PROTOCOL_FACTS §5). The EV assumes
    SAScheduleTupleID 1 and goes on."""
    ed.need(ctx, ("ISO 15118-2",), name="cpd_without_schedule")
    done = 0
    for ci, xi, x, m in ed.messages(ctx, "ChargeParameterDiscoveryRes", 0):
        b = body_of(m.tree)
        if b.get("EVSEProcessing") == "Finished" and b.pop("SAScheduleList", None) is not None:
            m.invalidate()
            ed.note(m, "cpd_without_schedule: Finished without SAScheduleList")
            done += 1
    if not done:
        raise FaultError("cpd_without_schedule: no ChargeParameterDiscoveryRes with a schedule")


@fault("din_iso2_service_content", level="script", stage="after", category="message-content")
def din_iso2_service_content(ctx):
    """DIN 70121: the SECC's ServiceDiscoveryRes carries ISO 15118-2 habits — it offers the
    Contract payment option besides ExternalPayment and names its charge service
    (ServiceName, ServiceScope) — a firmware sharing its service list with the ISO 15118-2
    stack. DIN 70121 allows ExternalPayment only and no ServiceName / ServiceScope
    ([V2G-DC-252], [V2G-DC-628], [V2G-DC-629]). The EV selects ExternalPayment and goes on."""
    ed.need(ctx, ("DIN 70121",), name="din_iso2_service_content")
    ci, xi, x, m = ctx.find("ServiceDiscoveryRes", 1)
    b = body_of(m.tree)
    b["PaymentOptions"] = {"PaymentOption": ["Contract", "ExternalPayment"]}
    tag = b["ChargeService"]["ServiceTag"]
    b["ChargeService"]["ServiceTag"] = {"ServiceID": tag["ServiceID"], "ServiceName": "DC_Charging",
                                        "ServiceCategory": tag["ServiceCategory"], "ServiceScope": "Public"}
    ed.encodes(m)
    ed.note(m, "din_iso2_service_content: Contract offered, ServiceName and ServiceScope")

