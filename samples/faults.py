"""Named, composable faults: a registry of small functions, each acting at its level.

A fault is registered with :func:`fault` under a name, a *level* (where it acts: ``script`` —
the message trees and timings of the session, ``slac``, ``sdp``, ``tcp``, ``v2gtp`` — the V2GTP
header and EXI bytes of one message, ``tls``, ``capture`` — the file, ``pilot`` — the control
pilot, faults_cp.py), the rule *category* it is
meant to exercise (rules/base.py CATEGORIES), its parameters with their defaults (types
follow the defaults; ``None`` = optional) and a *stage*, the moment the simulator calls it:

* ``before`` — before the session is generated: it turns knobs of the EV / SECC models
  (:class:`ccs_analyzer.samples.flow.Behaviour`), the timing, the SLAC configuration or the
  SDP / TCP plans; the script is then generated consistently (the EV reacts, times and
  TimeStamps follow);
* ``slac`` — after the SLAC run is planned: edits its frames (:class:`~.slac.SlacPlan`);
* ``after`` — after the session is generated: edits the plan (:class:`~.script.SessionPlan`):
  trees, endings, wire overrides of single messages;
* ``capture`` — on the finished pcapng bytes.

Every fault's docstring is its documentation (docs/simulator.md lists them); it says what
happens, how the other side reacts, and the requirement that makes it a fault. A new fault is
one decorated function::

    @fault("late_response", level="script", stage="before", category="timing",
           message="CableCheckRes", delay_s=3.0, occurrence=1)
    def late_response(ctx, message, delay_s, occurrence):
        \"\"\"…\"\"\"
        ctx.behaviour.latency_override[(message, occurrence)] = delay_s

Every fault also accepts ``session`` (1-based; default 1) in a scenario: the session it acts on.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from ccs_analyzer.dissectors.exi import ExiEncodeError
from ccs_analyzer.rules.timing_tables import CABLECHECK_TIMEOUT, ONGOING_TIMEOUT

from .flow import Behaviour, Timing, msg_timeout, phase_timeout
from .physical import Battery
from .script import Ending, Message, SdpPlan, SessionPlan, TcpPlan, set_response_code
from .slac import TIMER_ALIASES, TIMER_DEFAULTS, TIMER_LIMITS, SlacConfig, SlacPlan

LEVELS = ("script", "slac", "sdp", "tcp", "v2gtp", "tls", "capture", "pilot")
STAGES = ("before", "slac", "after", "capture")


class FaultError(ValueError):
    """A fault that cannot be applied to this session (names the fault and why)."""


@dataclass
class FaultDef:
    """A registered fault: name, level, stage, target rule category, parameter defaults,
    the function and its documentation."""

    name: str
    level: str
    stage: str
    category: str
    params: dict
    fn: Callable
    doc: str

    def check(self, given: dict) -> None:
        """Raise ValueError for unknown parameters or values of the wrong type."""
        unknown = set(given) - set(self.params) - {"session"}
        if unknown:
            raise ValueError(f"fault {self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                             f"it takes {', '.join(self.params) or 'none'}")
        for k, v in given.items():
            d = self.params.get(k)
            if d is None or k == "session":
                continue
            ok = (isinstance(v, bool) if isinstance(d, bool) else
                  isinstance(v, (int, float)) and not isinstance(v, bool) if isinstance(d, float) else
                  isinstance(v, int) and not isinstance(v, bool) if isinstance(d, int) else
                  isinstance(v, type(d)))
            if not ok:
                raise ValueError(f"fault {self.name}: parameter {k} = {v!r} should be a {type(d).__name__}")

    def call(self, ctx, given: dict):
        p = {**self.params, **{k: v for k, v in given.items() if k != "session"}}
        return self.fn(ctx, **p)


FAULTS: dict[str, FaultDef] = {}


def fault(name: str, *, level: str, stage: str, category: str, **params):
    """Register the decorated function as fault ``name`` (see module docstring)."""
    assert level in LEVELS and stage in STAGES, (name, level, stage)

    def deco(fn):
        FAULTS[name] = FaultDef(name, level, stage, category, params, fn, (fn.__doc__ or "").strip())
        return fn
    return deco


@dataclass
class FaultContext:
    """What a fault can edit, by stage (module docstring). ``spec``: the session's
    scenario settings; ``rng``: a seeded random source for the fault; ``notes``: what the
    faults did (returned with the simulation); ``tls``: the session's TLS plan
    (samples/tls.TlsPlan, what faults_tls.py edits); ``cp``: the session's control pilot
    (cp_flow.ControlPilot, what faults_cp.py edits)."""

    spec: object
    behaviour: Behaviour
    timing: Timing
    slac_cfg: SlacConfig
    sdp: SdpPlan
    tcp: TcpPlan
    rng: random.Random
    slac: SlacPlan | None = None
    plan: SessionPlan | None = None
    evse_override: tuple | None = None
    tls: object = None
    cp: object = None
    notes: list = field(default_factory=list)

    @property
    def protocol(self) -> str:
        return self.spec.protocol

    def find(self, message: str, occurrence: int = 1):
        try:
            return self.plan.find(message, occurrence)
        except LookupError as e:
            raise FaultError(str(e)) from None

    def comment(self, m: Message, text: str) -> None:
        m.comments.append(f"simulator fault {text}")


def _random_session_id(rng: random.Random) -> str:
    return bytes(rng.randrange(1, 256) for _ in range(8)).hex()


# ====================================================================== script, before
@fault("late_response", level="script", stage="before", category="timing",
       message="CableCheckRes", delay_s=3.0, occurrence=1)
def late_response(ctx, message, delay_s, occurrence):
    """The SECC answers ``message`` (a response name; its ``occurrence``-th, 0 = every one)
    ``delay_s`` after the request — past V2G_EVCC_Msg_Timeout (2 s for most messages,
    0.25 s for CurrentDemand, ISO 15118-2 Table 109; PROTOCOL_FACTS §4) when the delay is
    larger. The EV is tolerant and goes on; the rest of the session shifts accordingly."""
    ctx.behaviour.latency_override[(message, occurrence)] = float(delay_s)
    ctx.behaviour.comments.append((message, occurrence, f"simulator fault late_response: {message} "
                                   f"{delay_s:.3f} s after its request"))


@fault("slow_charge_loop", level="script", stage="before", category="timing",
       latency_s=0.3, period_s=None)
def slow_charge_loop(ctx, latency_s, period_s):
    """Every charge-loop response (CurrentDemand / ChargingStatus / -20 ChargeLoop) takes
    ``latency_s`` and a cycle lasts ``period_s`` (default latency + 0.1 s). The default 0.3 s
    is past the 0.25 s V2G_EVCC_Msg_Timeout of CurrentDemand (ISO-2 Table 109, DIN) and far
    past the SECC's 25 ms performance time; -20 allows 0.5 s (Tables 216/217). The EV
    tolerates it."""
    ctx.behaviour.loop_latency_s = float(latency_s)
    ctx.behaviour.loop_period_s = float(period_s) if period_s is not None else float(latency_s) + 0.1


@fault("missing_response", level="script", stage="after", category="timing",
       message="ChargeParameterDiscoveryReq", occurrence=1, ev_reaction="fin")
def missing_response(ctx, message, occurrence, ev_reaction):
    """The SECC never answers ``message`` (the request, or give its response name); the EV
    waits its V2G_EVCC_Msg_Timeout for that message and then closes the connection
    (``ev_reaction`` "fin" | "rst"; "none": the capture ends there)."""
    ci, xi, x, m = ctx.find(message, occurrence)
    step = ctx.plan.dialect.step_of(x.request.name) if ctx.plan.dialect and x.request.name.endswith("Req") else ""
    timeout = msg_timeout(ctx.plan.dialect, step) if step else 2.0
    how = {"fin": "FIN", "rst": "RST", "none": "none"}[ev_reaction]
    ctx.plan.terminate(ci, xi, Ending(by="EV", how=how, after_s=timeout,
                                      reason=f"no {x.request.name[:-3]}Res within {timeout} s, the EV gives up"),
                       keep_response=False)
    ctx.comment(x.request, f"missing_response: the SECC never answers {x.request.name}")


@fault("failed_response", level="script", stage="after", category="response-code",
       message="ChargeParameterDiscoveryRes", code="FAILED", occurrence=1)
def failed_response(ctx, message, code, occurrence):
    """``message`` (a response) carries ResponseCode ``code`` (any FAILED_* name of the
    protocol, e.g. FAILED_WrongChargeParameter); the SECC then closes the connection
    ([V2G2-539], [V2G-DC-665]: the session terminates after a FAILED response)."""
    ci, xi, x, m = ctx.find(message, occurrence)
    if m.side != "EVSE":
        raise FaultError(f"failed_response: {message} is not a response")
    set_response_code(m, code)
    try:
        m.exi()
    except ExiEncodeError:
        raise FaultError(f"failed_response: {code!r} is not a ResponseCode of {ctx.protocol}") from None
    ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="FIN", after_s=ctx.timing.failed_close_s,
                                      reason=f"SECC closes after {code}"))
    ctx.comment(m, f"failed_response: {code}")


@fault("failed_no_negotiation", level="script", stage="before", category="handshake")
def failed_no_negotiation(ctx):
    """supportedAppProtocolRes answers Failed_NoNegotiation (no SchemaID, [V2G-DC-226]) —
    none of the EV's protocols is accepted; the SECC closes the connection ([V2G2-172]
    default, PROTOCOL_FACTS §3)."""
    ctx.behaviour.sap_result = "Failed_NoNegotiation"


@fault("out_of_sequence", level="script", stage="before", category="sequence",
       after="ChargeParameterDiscoveryRes", request="PowerDeliveryReq")
def out_of_sequence(ctx, after, request):
    """After ``after`` (a response name) the EV sends ``request`` instead of the request the
    sequence allows (default: PowerDeliveryReq straight after ChargeParameterDiscovery,
    skipping CableCheck and PreCharge); the SECC answers FAILED_SequenceError ([V2G2-538],
    [V2G-DC-390]) and closes the connection ([V2G2-539])."""
    ctx.behaviour.out_of_sequence = {"after": after, "request": request}


@fault("session_id_changed", level="script", stage="after", category="session",
       message="CableCheckReq", occurrence=1, side="EV", session_id=None, ev_reaction="fin")
def session_id_changed(ctx, message, occurrence, side, session_id, ev_reaction):
    """From ``message`` on, ``side`` uses another SessionID than SessionSetupRes handed out.
    ``side`` "EV": the SECC answers that request FAILED_UnknownSession ([V2G2-460],
    [V2G-DC-391]) and closes. ``side`` "EVSE": the SECC's responses carry the other ID; the EV
    closes the connection (``ev_reaction`` "fin") or carries on ("continue")."""
    ci, xi, x, m = ctx.find(message, occurrence)
    sid = session_id or _random_session_id(ctx.rng)
    if side == "EV":
        if x.request is not m:
            raise FaultError("session_id_changed with side EV needs a request name")
        ctx.plan.set_session_id(sid, ci, xi, sides=("EV",))
        if x.response is None:
            raise FaultError(f"session_id_changed: {message} has no response")
        set_response_code(x.response, "FAILED_UnknownSession")
        ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="FIN", after_s=ctx.timing.failed_close_s,
                                          reason="SECC closes after FAILED_UnknownSession"))
        ctx.comment(x.request, f"session_id_changed: the EV sends SessionID {sid}")
    elif side == "EVSE":
        ctx.plan.set_session_id(sid, ci, xi, sides=("EVSE",), first_side="EVSE")
        target = x.response if x.request is m else m
        if target is None:
            raise FaultError(f"session_id_changed: {message} has no response")
        ctx.comment(target, f"session_id_changed: the SECC sends SessionID {sid}")
        if ev_reaction == "fin":
            ctx.plan.terminate(ci, xi, Ending(by="EV", how="FIN", after_s=0.05,
                                              reason="the EV closes: unexpected SessionID"))
    else:
        raise FaultError(f"session_id_changed: side {side!r}; EV or EVSE")


@fault("session_id_zero", level="script", stage="after", category="session")
def session_id_zero(ctx):
    """SessionSetupRes hands out the all-zero SessionID (the SECC must not: [V2G2-750];
    PROTOCOL_FACTS §4.0); both sides use it for the rest of the session."""
    ci, xi, x, m = ctx.find("SessionSetupRes", 1)
    zero = "00" * 8
    ctx.plan.set_session_id(zero, ci, xi, sides=("EVSE",), first_side="EVSE")
    ctx.plan.set_session_id(zero, ci, xi + 1, sides=("EV", "EVSE"))
    ctx.comment(m, "session_id_zero: SessionID 0000000000000000 handed out")


@fault("precharge_never_reaches", level="script", stage="before", category="precharge",
       max_v=None, fraction=0.6, ev_reaction="session_stop")
def precharge_never_reaches(ctx, max_v, fraction, ev_reaction):
    """The EVSE's output stalls at ``max_v`` (default ``fraction`` × the EV's target, the
    battery voltage) during PreCharge; after its PreCharge timeout (7 s DIN / ISO-2
    [V2G2-704..707], 10 s -20) the EV ends the session (``ev_reaction`` "session_stop":
    SessionStopReq; "fin" / "rst": closes TCP) — like pyPLC's lamp-load capture."""
    target = Battery(**ctx.spec.battery).ocv()
    ctx.behaviour.precharge_stall_v = float(max_v) if max_v is not None else target * float(fraction)
    ctx.behaviour.precharge_stall_reaction = ev_reaction


@fault("precharge_overshoot", level="script", stage="before", category="precharge",
       overshoot_v=40.0, peak_s=0.8, settles=True)
def precharge_overshoot(ctx, overshoot_v, peak_s, settles):
    """The EVSE's PreCharge control overshoots: an underdamped response peaking
    ``overshoot_v`` above the EV's target ``peak_s`` after the ramp began. ``settles`` True:
    it settles to the target and the EV goes on once stable; False: it stays above the target
    and the EV gives up after its PreCharge timeout (SessionStop)."""
    ctx.behaviour.precharge_overshoot_v = float(overshoot_v)
    ctx.behaviour.precharge_overshoot_settle_s = float(peak_s) if settles else None


@fault("evse_not_ready_precharge", level="script", stage="before", category="precharge",
       ev_reaction="wait")
def evse_not_ready_precharge(ctx, ev_reaction):
    """Every PreChargeRes carries EVSEStatusCode EVSE_NotReady although the voltage comes up
    (the Tesla Model Y / pyPLC capture). ``ev_reaction`` "wait": the EV holds in PreCharge
    until its timeout and stops the session; "proceed": it ignores the status and goes on."""
    if ctx.protocol == "ISO 15118-20":
        raise FaultError("evse_not_ready_precharge: ISO 15118-20 has no EVSEStatusCode")
    ctx.behaviour.precharge_not_ready = ev_reaction


@fault("cablecheck_fail", level="script", stage="before", category="cablecheck",
       isolation="Fault", response_code="FAILED", status_code="EVSE_Malfunction")
def cablecheck_fail(ctx, isolation, response_code, status_code):
    """The isolation test fails: the last CableCheckRes (EVSEProcessing Finished) reports
    EVSEIsolationStatus ``isolation`` with ``status_code`` and ResponseCode
    ``response_code`` (CableCheck passes only with Valid / Warning and EVSE_Ready,
    [V2G-DC-499], PROTOCOL_FACTS §4D). A FAILED code makes the SECC close the connection; with
    OK the EV stops the session (SessionStop). -20 DC_CableCheckRes has no isolation or status
    fields: only the ResponseCode changes."""
    ctx.behaviour.cablecheck_failure = {"isolation": isolation, "response_code": response_code,
                                        "status_code": status_code}


@fault("evse_processing_ongoing", level="script", stage="before", category="timing",
       message="Authorization", duration_s=None, period_s=1.0, ev_reaction="session_stop")
def evse_processing_ongoing(ctx, message, duration_s, period_s, ev_reaction):
    """The SECC answers ``message`` (Authorization, ChargeParameterDiscovery, CableCheck,
    -20 ScheduleExchange) with EVSEProcessing Ongoing for ``duration_s`` (default: 2 s past the
    EV's limit — V2G_EVCC_Ongoing_Timeout 60 s, [V2G2-710]; CableCheck 40 s, [V2G2-700..703]),
    polled every ``period_s``; the EV gives up (``ev_reaction`` "session_stop" | "fin" |
    "rst")."""
    step = message[:-3] if message.endswith(("Req", "Res")) else message
    step = {"ContractAuthentication": "Authorization"}.get(step, step)
    for p in ("DC_", "AC_"):
        step = step[len(p):] if step.startswith(p) else step
    if step not in ("Authorization", "ChargeParameterDiscovery", "CableCheck", "ScheduleExchange"):
        raise FaultError(f"evse_processing_ongoing: {message} has no EVSEProcessing loop")
    limit = phase_timeout(CABLECHECK_TIMEOUT if step == "CableCheck" else ONGOING_TIMEOUT, ctx.protocol)
    dur = float(duration_s) if duration_s is not None else limit + 2.0
    ctx.behaviour.ongoing[step] = (dur, float(period_s), ev_reaction)


@fault("evse_current_above_max", level="script", stage="before", category="limits",
       excess_a=15.0, at_cycle=10, cycles=5)
def evse_current_above_max(ctx, excess_a, at_cycle, cycles):
    """From charge-loop cycle ``at_cycle`` for ``cycles`` cycles EVSEPresentCurrent is
    ``excess_a`` above the EVSE's own EVSEMaximumCurrentLimit (a regulation fault; the
    derived rule EVSEPresentCurrent ≤ EVSEMaximumCurrentLimit + tolerance, PROTOCOL_FACTS §4D).
    DC only."""
    if ctx.spec.mode != "DC":
        raise FaultError("evse_current_above_max: DC sessions only")
    ctx.behaviour.current_excess = {"cycle": int(at_cycle), "cycles": int(cycles), "excess_a": float(excess_a)}


@fault("evse_emergency_shutdown", level="script", stage="before", category="charging-loop",
       at_cycle=15)
def evse_emergency_shutdown(ctx, at_cycle):
    """In charge-loop cycle ``at_cycle`` the EVSE reports EVSE_EmergencyShutdown with
    EVSENotification StopCharging (a fault, not a normal stop: PROTOCOL_FACTS §4.0 "Status
    semantics"); the current drops to 0; the EV stops (PowerDelivery Stop, WeldingDetection,
    SessionStop). -20: the ChargeLoopRes carries ResponseCode FAILED and EVSENotification
    Terminate; the SECC closes."""
    ctx.behaviour.emergency_shutdown_cycle = int(at_cycle)


@fault("stop_charging_ignored", level="script", stage="before", category="charging-loop",
       at_cycle=10, max_delay_s=2, ignored_s=4.0, evse_reaction="rst")
def stop_charging_ignored(ctx, at_cycle, max_delay_s, ignored_s, evse_reaction):
    """From charge-loop cycle ``at_cycle`` the EVSE asks to stop (EVSENotification
    StopCharging, EVSE_Shutdown, NotificationMaxDelay ``max_delay_s``; -20: Terminate) and
    ramps the current down; the EV ignores it and keeps sending charge-loop requests for
    ``ignored_s`` (it should stop within NotificationMaxDelay: PROTOCOL_FACTS §4.0); then the
    EVSE resets the connection (``evse_reaction`` "rst" | "fin"; "none": the EV finally stops).
    As in pyPLC's westparkAlpi capture."""
    ctx.behaviour.stop_charging = {"cycle": int(at_cycle), "max_delay_s": int(max_delay_s),
                                   "ignored_s": float(ignored_s), "evse_reaction": evse_reaction}


@fault("ev_error_code", level="script", stage="before", category="charging-loop",
       code="FAILED_ChargingCurrentdifferential", at_cycle=15)
def ev_error_code(ctx, code, at_cycle):
    """In charge-loop cycle ``at_cycle`` the EV reports DC_EVErrorCode ``code`` with EVReady
    false and stops (PowerDelivery Stop, WeldingDetection, SessionStop) — the Hyundai Ioniq /
    pyPLC captures. -20 has no EVErrorCode: the EV sends SessionStopReq with EVTerminationCode
    ``code``."""
    if ctx.spec.mode != "DC":
        raise FaultError("ev_error_code: DC_EVErrorCode exists in DC sessions only")
    ctx.behaviour.ev_error = {"cycle": int(at_cycle), "code": code}


# ====================================================================== SDP
@fault("no_sdp_response", level="sdp", stage="before", category="sdp", requests=5, retry_s=0.25)
def no_sdp_response(ctx, requests, retry_s):
    """The SECC never answers SDP: the EV sends ``requests`` SDP requests ``retry_s`` apart
    (≥ 250 ms, [V2G2-159]) and gives up (at most 50, [V2G2-161]); no TCP, no V2G."""
    ctx.sdp.answered = False
    ctx.sdp.unanswered = int(requests)
    ctx.sdp.retry_s = float(retry_s)
    ctx.sdp.comments.append(f"simulator fault no_sdp_response: {requests} requests, none answered")


@fault("sdp_retries", level="sdp", stage="before", category="sdp", count=2, retry_s=0.25)
def sdp_retries(ctx, count, retry_s):
    """The first ``count`` SDP requests go unanswered, the next one is answered (the EV
    retries every ``retry_s`` ≥ 250 ms, [V2G2-159]) — a slow SECC, not a failure."""
    ctx.sdp.unanswered = int(count)
    ctx.sdp.retry_s = float(retry_s)
    ctx.sdp.comments.append(f"simulator fault sdp_retries: {count} requests unanswered")


@fault("sdp_security_mismatch", level="sdp", stage="before", category="sdp",
       requested="TLS", answered="NoTLS")
def sdp_security_mismatch(ctx, requested, answered):
    """The EV asks for ``requested`` security ("TLS" / "NoTLS"), the SECC announces
    ``answered`` (EVerest falls back to the other mode; a warning: PROTOCOL_FACTS §1.5); the
    session goes on as the SDP response says: over plain TCP, or over TLS (samples/tls.py)."""
    if {requested, answered} - {"TLS", "NoTLS"} or requested == answered:
        raise FaultError("sdp_security_mismatch: requested and answered must be TLS and NoTLS, one each")
    ctx.sdp.security = requested
    ctx.sdp.response_security = answered
    ctx.sdp.comments.append(f"simulator fault sdp_security_mismatch: EV asks {requested}, SECC answers {answered}")


# ====================================================================== SLAC
@fault("slac_timer_violated", level="slac", stage="before", category="slac",
       timer="parm_cnf_s", value_s=0.35)
def slac_timer_violated(ctx, timer, value_s):
    """One gap of the SLAC run takes ``value_s``: ``timer`` is a key of the SLAC timers
    (parm_cnf_s, start_atten_s, batch_interval_s, atten_char_s, atten_rsp_s, match_req_s,
    match_cnf_s, link_ready_s) or the ISO 15118-3 parameter bounding it (TT_match_response,
    TP_EV_batch_msg_interval, TT_EV_atten_results, TT_match_join, …; slac.py). Default:
    CM_SLAC_PARM.CNF 350 ms after the REQ (TT_match_response 200 ms). Both sides carry on."""
    key = TIMER_ALIASES.get(timer, timer)
    if key not in TIMER_DEFAULTS:
        raise FaultError(f"slac_timer_violated: unknown timer {timer!r}; one of "
                         f"{', '.join(list(TIMER_DEFAULTS) + list(TIMER_ALIASES))}")
    ctx.slac_cfg.timers[key] = float(value_s)
    ctx.notes.append(("slac_timer", key, float(value_s), TIMER_LIMITS.get(key)))


_TIMER_FRAME = {"parm_cnf_s": "CM_SLAC_PARM.CNF", "start_atten_s": "CM_START_ATTEN_CHAR.IND",
                "batch_interval_s": "CM_START_ATTEN_CHAR.IND", "atten_char_s": "CM_ATTEN_CHAR.IND",
                "atten_rsp_s": "CM_ATTEN_CHAR.RSP", "match_req_s": "CM_SLAC_MATCH.REQ",
                "match_cnf_s": "CM_SLAC_MATCH.CNF", "set_key_s": "CM_SET_KEY.REQ"}


def annotate_slac_timers(ctx) -> None:
    """Packet comments for the slac_timer_violated notes (called after the SLAC run is built)."""
    for note in ctx.notes:
        if note[0] != "slac_timer":
            continue
        _, key, value, limit = note
        text = f"simulator fault slac_timer_violated: {key} = {value} s" + (f" (bound {limit} s)" if limit else "")
        if key == "link_ready_s":
            ctx.sdp.comments.append(text)
            continue
        name = _TIMER_FRAME.get(key)
        occ = 2 if key == "batch_interval_s" else 1
        if name and ctx.slac is not None:
            try:
                ctx.slac.find(name, occ).comments.append(text)
            except LookupError:
                pass


@fault("wrong_run_id", level="slac", stage="slac", category="slac",
       message="CM_ATTEN_CHAR.IND", run_id=None, then="continue")
def wrong_run_id(ctx, message, run_id, then):
    """``message`` (a SLAC message carrying the RunID) carries another RunID than the EV's
    CM_SLAC_PARM.REQ (every message of a run must carry the same RunID: ISO 15118-3 Annex A,
    PROTOCOL_FACTS §2.7). ``then`` "continue": the peers carry on; "abort": the receiver
    drops it and the run stops there (no match, no SDP)."""
    f = _slac_find(ctx, message)
    if "run_id" not in f.args:
        raise FaultError(f"wrong_run_id: {message} has no RunID")
    rid = bytes.fromhex(run_id) if run_id else bytes(ctx.rng.randrange(256) for _ in range(8))
    f.args = {**f.args, "run_id": rid}
    f.comments.append(f"simulator fault wrong_run_id: RunID {rid.hex()} (run {ctx.slac.run_id.hex()})")
    if then == "abort":
        ctx.slac.cut_after(f)


@fault("cross_talk", level="slac", stage="slac", category="slac",
       evse_mac="02:00:00:00:e5:11", modem_mac="02:00:00:00:e5:12", attenuation_db=32.0, ev_picks="lowest")
def cross_talk(ctx, evse_mac, modem_mac, attenuation_db, ev_picks):
    """A second charger (``evse_mac``) hears the EV's sounding through cross-talk: it answers
    CM_SLAC_PARM.REQ, its modem reports attenuation profiles and it sends CM_ATTEN_CHAR.IND
    with ``attenuation_db`` (weaker than the own charger's). The EV acknowledges both and
    matches the lowest attenuation (``ev_picks`` "lowest"); "other": it matches the wrong
    charger and the whole session runs with it (PROTOCOL_FACTS §2.7, dsV2Gshark
    ISO-2_DC_multi_EVSE_SLAC)."""
    from .slac import SlacFrame, attenuation_profile
    p = ctx.slac
    bc = "ff:ff:ff:ff:ff:ff"
    new: list[SlacFrame] = []
    prof = attenuation_profile(attenuation_db, ctx.rng)
    sums = [0.0] * len(prof)
    for f in p.frames:
        if f.name == "CM_SLAC_PARM.CNF":
            new.append(SlacFrame(f.t + 0.011, evse_mac, f.dst, f.name, dict(f.args),
                                 ["simulator fault cross_talk: a second charger answers"]))
        elif f.name == "CM_MNBC_SOUND.IND":
            sound = [min(255, max(0, int(round(x + ctx.rng.uniform(-1.5, 1.5))))) for x in prof]
            sums = [a + b for a, b in zip(sums, sound)]
            new.append(SlacFrame(f.t + 0.0035, modem_mac, bc, "CM_ATTEN_PROFILE.IND",
                                 {"ev": f.src, "aag": sound}))
    char = p.find("CM_ATTEN_CHAR.IND")
    n = max(1, char.args["num_sounds"])
    aag = [max(0, int(round(x / n - ctx.slac_cfg.aag_offset_db))) for x in sums]
    new.append(SlacFrame(char.t + 0.013, evse_mac, char.dst, "CM_ATTEN_CHAR.IND", {**char.args, "aag": aag},
                         [f"simulator fault cross_talk: ATTEN_CHAR.IND from {evse_mac}"]))
    rsp = p.find("CM_ATTEN_CHAR.RSP")
    new.append(SlacFrame(rsp.t + 0.012, rsp.src, evse_mac, "CM_ATTEN_CHAR.RSP", dict(rsp.args)))
    p.frames = sorted(p.frames + new, key=lambda f: f.t)
    if ev_picks == "other":
        for name in ("CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF"):
            f = p.find(name)
            f.args = {**f.args, "evse": evse_mac}
            if f.dst == p.evse_mac:
                f.dst = evse_mac
            if f.src == p.evse_mac:
                f.src = evse_mac
            f.comments.append("simulator fault cross_talk: the EV matches the wrong charger")
        p.evse_mac, p.evse_modem_mac = evse_mac, modem_mac
        ctx.evse_override = (evse_mac, modem_mac)


@fault("slac_incomplete", level="slac", stage="slac", category="slac",
       stop_after="CM_SLAC_PARM.CNF", retries=2, retry_s=0.6)
def slac_incomplete(ctx, stop_after, retries, retry_s):
    """The SLAC run stops after ``stop_after``; the EV retries CM_SLAC_PARM.REQ ``retries``
    times ``retry_s`` apart (C_EV_match_retry = 2), each answered, and then gives up: no match,
    no SDP (the Porsche Taycan / pyPLC capture)."""
    from .slac import SlacFrame
    p = ctx.slac
    f = _slac_find(ctx, stop_after)
    p.cut_after(f)
    req, cnf = p.find("CM_SLAC_PARM.REQ"), p.find("CM_SLAC_PARM.CNF")
    for k in range(1, int(retries) + 1):
        dt = f.t - req.t + k * float(retry_s)
        p.frames.append(SlacFrame(req.t + dt, req.src, req.dst, req.name, dict(req.args),
                                  [f"simulator fault slac_incomplete: retry {k}"]))
        if stop_after != "CM_SLAC_PARM.REQ":
            p.frames.append(SlacFrame(cnf.t + dt, cnf.src, cnf.dst, cnf.name, dict(cnf.args)))
    f.comments.append(f"simulator fault slac_incomplete: the run stops after {stop_after}")


def _slac_find(ctx, name):
    try:
        return ctx.slac.find(name)
    except LookupError as e:
        raise FaultError(str(e)) from None


# ====================================================================== TCP
@fault("tcp_rst", level="tcp", stage="after", category="transport",
       message="CurrentDemandRes", occurrence=5, side="EVSE", after_s=0.01)
def tcp_rst(ctx, message, occurrence, side, after_s):
    """``side`` resets the TCP connection (RST) ``after_s`` after ``message``; a request
    name means the reset comes instead of its response. Nothing follows."""
    ci, xi, x, m = ctx.find(message, occurrence)
    ctx.plan.terminate(ci, xi, Ending(by=side, how="RST", after_s=float(after_s),
                                      reason=f"fault tcp_rst by the {side}"),
                       keep_response=m is not x.request)


@fault("lost_frames", level="tcp", stage="after", category="capture-quality",
       message="CurrentDemandRes", occurrence=3, count=1)
def lost_frames(ctx, message, occurrence, count):
    """The segments carrying ``message`` and the next ``count`` − 1 messages of the
    connection are missing from the capture although the peer received them (its ACKs
    acknowledge them): a sniffer that dropped frames. The session itself goes on."""
    ci, xi, x, m = ctx.find(message, occurrence)
    conn = ctx.plan.connections[ci]
    seq = [mm for xx in conn.exchanges for mm in (xx.request, xx.response) if mm is not None]
    i = next(k for k, mm in enumerate(seq) if mm is m)
    for mm in seq[i:i + int(count)]:
        mm.lost = True


@fault("tcp_retransmission", level="tcp", stage="after", category="transport",
       message="PreChargeReq", occurrence=2, after_s=0.2)
def tcp_retransmission(ctx, message, occurrence, after_s):
    """The first segment of ``message`` is sent again ``after_s`` later (a retransmission,
    answered by a duplicate ACK) — link noise, PROTOCOL_FACTS FAILURE_MODES UC2 156."""
    ci, xi, x, m = ctx.find(message, occurrence)
    m.retransmit_after_s = float(after_s)


@fault("tcp_connect_refused", level="tcp", stage="before", category="transport",
       port=15118, attempts=3, then_connect=True)
def tcp_connect_refused(ctx, port, attempts, then_connect):
    """The EV first connects to ``port`` instead of the SECCPort of the SDP response; each
    SYN is answered by RST ``attempts`` times (pyPLC Alpitronic capture). ``then_connect``
    True: it then uses the announced port and the session goes on; False: it never does."""
    ctx.tcp.wrong_port = int(port)
    ctx.tcp.refused_attempts = int(attempts)
    ctx.tcp.connect_to_wrong_port_only = not then_connect
    ctx.tcp.comments.append(f"simulator fault tcp_connect_refused: SYN to port {port}")


# ====================================================================== V2GTP / EXI
_HEADER_DEFAULTS = {"version": 0x02, "inverse": 0x00, "payload_type": 0x8002, "length": None}


@fault("v2gtp_header_error", level="v2gtp", stage="after", category="transport",
       message="SessionSetupReq", occurrence=1, field="version", value=None, receiver_reaction="close")
def v2gtp_header_error(ctx, message, occurrence, field, value, receiver_reaction):
    """The V2GTP header of ``message`` is wrong in ``field`` (version — default 0x02,
    inverse — default 0x00, payload_type — default 0x8002 for DIN / ISO-2 and 0x8001 for -20,
    length — default 10 octets more than the payload) — ISO 15118-2 §7.8.3 header checks
    (PROTOCOL_FACTS §1.1). ``receiver_reaction`` "close": the receiver drops the message and
    closes the connection; "respond": it carries on as if nothing happened (not for length)."""
    if field not in _HEADER_DEFAULTS:
        raise FaultError(f"v2gtp_header_error: field {field!r}; one of {', '.join(_HEADER_DEFAULTS)}")
    ci, xi, x, m = ctx.find(message, occurrence)
    if value is None:
        value = (_HEADER_DEFAULTS[field] if field != "length" else len(m.payload()) + 10)
        if field == "payload_type" and m.payload_type != 0x8001:
            value = 0x8001
    m.v2gtp_header[field] = int(value)
    ctx.comment(m, f"v2gtp_header_error: {field} = {int(value):#x}")
    _receiver_reaction(ctx, ci, xi, x, m, receiver_reaction, field == "length")


@fault("exi_truncated", level="v2gtp", stage="after", category="message-content",
       message="ChargeParameterDiscoveryReq", occurrence=1, keep_bytes=None, receiver_reaction="close")
def exi_truncated(ctx, message, occurrence, keep_bytes, receiver_reaction):
    """The EXI document of ``message`` is cut after ``keep_bytes`` octets (default half); the
    V2GTP length matches the cut payload. The receiver cannot decode it and closes the
    connection (``receiver_reaction`` "close")."""
    ci, xi, x, m = ctx.find(message, occurrence)
    n = len(m.exi())
    keep = int(keep_bytes) if keep_bytes is not None else max(1, n // 2)
    if not 0 < keep < n:
        raise FaultError(f"exi_truncated: keep_bytes must be between 1 and {n - 1}")
    m.exi_keep = keep
    ctx.comment(m, f"exi_truncated: {keep} of {n} EXI octets")
    _receiver_reaction(ctx, ci, xi, x, m, receiver_reaction, True)


@fault("trailing_bytes", level="v2gtp", stage="after", category="message-content",
       message="SessionSetupRes", occurrence=1, data="00")
def trailing_bytes(ctx, message, occurrence, data):
    """Octets ``data`` (hex) follow the EXI document inside the V2GTP payload of ``message``
    (the V2GTP length counts them); receivers ignore them and the session goes on."""
    ci, xi, x, m = ctx.find(message, occurrence)
    m.trailing = bytes.fromhex(data)
    ctx.comment(m, f"trailing_bytes: {data} after the EXI document")


def _receiver_reaction(ctx, ci, xi, x, m, reaction, must_close):
    if reaction == "respond" and not must_close:
        return
    if reaction not in ("close", "respond"):
        raise FaultError(f"receiver_reaction {reaction!r}; close or respond")
    if m is x.request:
        ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="FIN", after_s=0.1,
                                          reason="the SECC cannot read the request and closes"),
                           keep_response=False)
    else:
        ctx.plan.terminate(ci, xi, Ending(by="EV", how="FIN", after_s=0.1,
                                          reason="the EV cannot read the response and closes"))


# ====================================================================== TLS
@fault("tls_handshake_failure", level="tls", stage="after", category="tls",
       alert="handshake_failure")
def tls_handshake_failure(ctx, alert):
    """The EV asks for TLS in SDP and opens the connection with a TLS 1.2 ClientHello
    (ECDHE-ECDSA / ECDH-ECDSA with AES-128-CBC-SHA256, the ISO 15118-2 suites, PROTOCOL_FACTS
    §1.5); the SECC answers a fatal ``alert`` and closes: no V2G message follows. (A hello
    refused outright; the failures later in a handshake the simulator runs are the faults of
    faults_tls.py.)"""
    from .tls import ALERTS, alert_record, client_hello
    if alert not in ALERTS:
        raise FaultError(f"tls_handshake_failure: alert {alert!r}; one of {', '.join(ALERTS)}")
    conn = ctx.plan.connections[0]
    conn.sdp.security = "TLS"
    conn.sdp.response_security = "TLS"
    conn.exchanges.clear()
    hello = client_hello(ctx.rng)
    conn.tls_prelude = [("EV", hello, 0.005), ("EVSE", alert_record(alert), 0.004)]
    conn.ending = Ending(by="EVSE", how="FIN", after_s=0.01, reason=f"TLS alert {alert}")
    del ctx.plan.connections[1:]


# ====================================================================== capture
@fault("capture_truncated", level="capture", stage="capture", category="capture-quality", cut_bytes=40)
def capture_truncated(ctx, data: bytes, cut_bytes):
    """The capture file ends ``cut_bytes`` octets early, in the middle of its last block
    (a capture tool killed before it flushed)."""
    if not 0 < cut_bytes < len(data) // 2:
        raise FaultError("capture_truncated: cut_bytes out of range")
    return data[: len(data) - int(cut_bytes)]


__all__ = ["FAULTS", "FaultDef", "FaultContext", "FaultError", "fault", "annotate_slac_timers",
           "LEVELS", "STAGES"]

# more faults, one module per area; importing them registers them
from . import faults_handshake, faults_charging, faults_content, faults_link, faults_tls, faults_pki  # noqa: E402,F401,I001
from . import faults_protocol  # noqa: E402,F401,I001  (protocol faults of the test-event captures)
from . import faults_causes  # noqa: E402,F401,I001  (faults for the classes of failure explanation)
from . import faults_values  # noqa: E402,F401,I001  (values the test-event chargers report)
from . import faults_cp  # noqa: E402,F401,I001  (control pilot faults)
from . import faults_signature  # noqa: E402,F401,I001  (Plug & Charge signatures, samples/signing.py)
