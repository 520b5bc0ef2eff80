"""More faults (protocol level) — registered with :func:`ccs_analyzer.samples.faults.fault`.

What the test-event captures of real vehicles and chargers show (shared/corpus/testevents):
an EVSE whose SLAC is not active when the EV starts, an EVSE that resets its SLAC (re-keys
its PLC modem) in the middle of a run or right after the match, an EV that goes on after a
FAILED response while the SECC keeps answering, and an EV whose SYN hits a connection the
SECC still holds on the same ports (RFC 9293 half-open recovery). (An EVSE that ends the
charge on its own is samples/faults_causes.py's ``evse_stops_charging``.)
"""
from __future__ import annotations

from .faults import FaultError, _slac_find, fault
from .script import Ending, Exchange, set_response_code
from .slac import LOCAL_MODEM, SlacFrame

PARM_REQ = "CM_SLAC_PARM.REQ"
SET_KEY_REQ, SET_KEY_CNF = "CM_SET_KEY.REQ", "CM_SET_KEY.CNF"


# ====================================================================== SLAC
@fault("evse_slac_not_ready", level="slac", stage="slac", category="slac",
       attempts=5, retry_s=0.2, pause_s=20.0)
def evse_slac_not_ready(ctx, attempts, retry_s, pause_s):
    """The EVSE's SLAC is not active yet when the EV starts: the EV's first ``attempts``
    CM_SLAC_PARM.REQ (``retry_s`` apart, the RunID of the run) get no answer; the EV gives up,
    waits ``pause_s`` (longer than TT_matching_repetition, 10 s) and starts over — then the
    EVSE (which keys its modem only now) answers and the run goes on (ISO 15118-3
    TT_match_response 200 ms; the Tesla Model Y / Infypower test-event capture)."""
    if attempts < 1 or retry_s <= 0 or pause_s <= 0:
        raise FaultError("evse_slac_not_ready: attempts ≥ 1, retry_s > 0, pause_s > 0")
    p = ctx.slac
    req = _slac_find(ctx, PARM_REQ)
    first = min(f.t for f in p.frames)
    t0 = first - float(pause_s) - (int(attempts) - 1) * float(retry_s)
    early = [SlacFrame(t0 + k * float(retry_s), req.src, req.dst, req.name, dict(req.args),
                       [f"simulator fault evse_slac_not_ready: unanswered attempt {k + 1}"] if k == 0 else [])
             for k in range(int(attempts))]
    p.frames[:0] = early


@fault("evse_slac_reset", level="slac", stage="slac", category="slac",
       stop_after="CM_SLAC_MATCH.CNF", occurrence=1, after_s=1.0)
def evse_slac_reset(ctx, stop_after, occurrence, after_s):
    """The EVSE resets its SLAC ``after_s`` after ``stop_after`` (its ``occurrence``-th): its
    host re-keys its own PLC modem with the key it had set before the run (CM_SET_KEY.REQ /
    .CNF — EVerest's EvseSlac does so when its state machine resets, e.g. on CP state A after
    an unplug), the modem restarts and leaves the logical network: the run stops there (in
    the middle of the sounding, say) or, after CM_SLAC_MATCH.CNF, no SDP can follow (the
    Opel Mokka-e test-event captures). Needs the EVSE's start-up key (``slac.evse_set_key``)."""
    p = ctx.slac
    keys = [f for f in p.frames if f.name == SET_KEY_REQ and f.src == p.evse_mac]
    if not keys:
        raise FaultError("evse_slac_reset: the EVSE sets no key before the run (slac.evse_set_key = false)")
    f = _slac_find_occurrence(ctx, stop_after, int(occurrence))
    p.cut_after(f)
    t = f.t + float(after_s)
    key = keys[0]
    p.frames.append(SlacFrame(t, p.evse_mac, LOCAL_MODEM, SET_KEY_REQ, dict(key.args),
                              ["simulator fault evse_slac_reset: the EVSE re-keys its modem (SLAC reset)"]))
    p.frames.append(SlacFrame(t + 0.001, p.evse_modem_mac, p.evse_mac, SET_KEY_CNF,
                              {"nonce": bytes(ctx.rng.randrange(256) for _ in range(4)), "result": 1}))


def _slac_find_occurrence(ctx, name: str, occurrence: int) -> SlacFrame:
    hits = [f for f in ctx.slac.frames if f.name == name]
    if not hits:
        _slac_find(ctx, name)               # raises the FaultError naming what the run has
    if not 1 <= occurrence <= len(hits):
        raise FaultError(f"{name} occurs {len(hits)} time(s) in the run, not {occurrence}")
    return hits[occurrence - 1]


# ====================================================================== script
@fault("ev_continues_after_failed", level="script", stage="after", category="sequence",
       message="ChargeParameterDiscoveryRes", code="FAILED_WrongChargeParameter", repeats=6, every_s=0.4)
def ev_continues_after_failed(ctx, message, code, repeats, every_s):
    """``message`` (a response) answers ``code`` (a FAILED_* code), after which the session
    is over ([V2G2-539], DIN [V2G-DC-665]); but the SECC does not close the connection, and
    the EV goes on with the request that would have come next, ``repeats`` times
    ``every_s`` apart, each answered FAILED_SequenceError, until it gives up and closes
    (FIN) — the Seres test-event capture (161 CableCheckReq in 62 s)."""
    if repeats < 1 or every_s <= 0:
        raise FaultError("ev_continues_after_failed: repeats ≥ 1 and every_s > 0")
    ci, xi, x, m = ctx.find(message)
    if m.side != "EVSE" or not code.upper().startswith("FAILED"):
        raise FaultError("ev_continues_after_failed: message must be a response and code a FAILED_* code")
    conn = ctx.plan.connections[ci]
    if xi + 1 >= len(conn.exchanges) or conn.exchanges[xi + 1].response is None:
        raise FaultError(f"ev_continues_after_failed: no answered request follows {message}")
    nxt = conn.exchanges[xi + 1]
    set_response_code(m, code)
    ctx.comment(m, f"ev_continues_after_failed: {code}; the SECC keeps the connection open")
    extra = []
    for k in range(int(repeats)):
        req, res = nxt.request.copy(), nxt.response.copy()
        set_response_code(res, "FAILED_SequenceError")
        if k == 0:
            req.comments = ["simulator fault ev_continues_after_failed: the EV goes on"]
            res.comments = []
        else:
            req.comments, res.comments = [], []
        extra.append(Exchange(req, res, float(every_s), nxt.latency_s, nxt.phase, dict(nxt.state)))
    for mm in (m, extra[0].response):
        try:
            mm.exi()
        except Exception:
            raise FaultError(f"ev_continues_after_failed: {code!r} is not a ResponseCode of {ctx.protocol}") from None
    ctx.plan.terminate(ci, xi, Ending(by="EV", how="FIN", after_s=0.5,
                                      reason="the EV gives up after repeated FAILED_SequenceError"))
    conn.exchanges.extend(extra)


# ====================================================================== TCP
@fault("ev_reuses_half_open_port", level="tcp", stage="before", category="transport")
def ev_reuses_half_open_port(ctx):
    """The EV's SYN comes from the source port of an earlier connection that it left without
    FIN or RST and that the SECC still holds: the SECC answers with that connection's ACK
    (RFC 9293 §3.10.7.3, RFC 5961 §4), the EV resets it and sends its SYN again, and the
    connection comes up (the BYD Atto 3 test-event capture)."""
    ctx.tcp.half_open_first = True
    ctx.tcp.comments.append("simulator fault ev_reuses_half_open_port: SYN hits a half-open connection")
