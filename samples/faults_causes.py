"""Faults for the classes of failure explanation — registered with :func:`ccs_analyzer.samples.faults.fault`.

The analyzer explains a session by its outcome (who stopped it, how), its root cause (the
finding nothing earlier explains) and the consequences hanging under it — or says that the
traffic shows no cause. These faults give each class of explanation a realistic capture:
an EV that keeps using a foreign SessionID, a charger that delivers no current (the
pyPLC / Hyundai Ioniq field captures: the car gives up with FAILED_ChargingCurrentdifferential),
an EV that stops in PreCharge without saying why, an EV that keeps reconnecting after its
session, a charger that stops the charge (EVSE_Shutdown + StopCharging, the Polestar 2 /
pyPLC capture), a response that arrives after the EV gave up, a cable check that never
finishes, and an EV that ignores a failed isolation test. Each says how the other side
reacts; the scenarios using them carry an ``[expect]`` table (docs/simulator.md).

Two of them add traffic after the session's own frames (refused reconnects; a late response
on a connection the EV already closed). They do it through the session plan's capture
point (``SessionPlan.sniffer``, wire.write_session): :class:`TrailingSniffer` is a
:class:`~.faults_link.Sniffer` that, before it hands the session's frames on, appends the
frames of its *tails* — functions that read the TCP state the session left (ports,
sequence numbers) from the frames and continue it. The capture-point faults of
faults_link.py compose with it (they set the same object's fields).
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from ccs_analyzer.rules.timing_tables import CABLECHECK_TIMEOUT

from . import faults_edit as ed
from . import netframes as nf
from .faults import FaultError, _random_session_id, fault
from .faults_link import Sniffer
from .flow import phase_timeout
from .script import Ending, set_response_code
from .wire import Endpoints, TcpConn

_DC_DIN_ISO2 = ("DIN 70121", "ISO 15118-2")


# ====================================================================== traffic after a session
@dataclass
class _TcpState:
    """What the frames of a session say about its last TCP connection: the EV's and the
    SECC's MAC, the ports, each side's next sequence number (0 EV, 1 SECC) and the time of
    the session's last frame."""

    ev_mac: str
    evse_mac: str
    ev_port: int
    secc_port: int
    nxt: list
    last_t: float


def _mac_text(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _tcp_fields(frame: bytes):
    """(sport, dport, seq, flags, payload length) of an Ethernet / IPv6 / TCP frame, else None."""
    if len(frame) < 74 or frame[12:14] != b"\x86\xdd" or frame[20] != 6:
        return None
    plen = struct.unpack("!H", frame[18:20])[0]
    sport, dport, seq, _ack, off, flags = struct.unpack("!HHIIBB", frame[54:68])
    return sport, dport, seq, flags, plen - (off >> 4) * 4


def tcp_state(frames) -> _TcpState | None:
    """The state of the last TCP connection the EV opened, from a session's frames
    ((time, frame, …) tuples in the order they were written); None without one."""
    conns: dict = {}
    last = None
    last_t = max((f[0] for f in frames), default=0.0)
    for t, frame, *_ in frames:
        tf = _tcp_fields(frame)
        if tf is None:
            continue
        sport, dport, seq, flags, n = tf
        if flags & nf.SYN and not flags & nf.ACK:             # the EV opens a connection
            key = (sport, dport)
            conns[key] = _TcpState(_mac_text(frame[6:12]), _mac_text(frame[0:6]), sport, dport,
                                   [None, None], last_t)
            last = key
        key = (sport, dport) if (sport, dport) in conns else (dport, sport)
        st = conns.get(key)
        if st is None:
            continue
        side = 0 if (sport, dport) == key else 1
        if flags & nf.RST and not flags & nf.ACK:
            continue
        end = (seq + n + (1 if flags & (nf.SYN | nf.FIN) else 0)) & 0xFFFFFFFF
        cur = st.nxt[side]
        if cur is None or ((end - cur) & 0xFFFFFFFF) < 0x80000000:
            st.nxt[side] = end
    return conns.get(last) if last is not None else None


@dataclass
class TrailingSniffer(Sniffer):
    """A capture point (faults_link.Sniffer) that also appends traffic after the session:
    each of ``tails`` is called as ``tail(cap, state, written)`` with the buffered capture
    (its ``add`` takes frames), the :func:`tcp_state` of the session's frames and the list
    of (message, time) written, which it may extend."""

    tails: list = field(default_factory=list)

    def finish(self, written) -> None:
        cap = self._cap
        for tail in self.tails:
            state = tcp_state(cap.buf)
            if state is None:
                raise FaultError("this session has no TCP connection to continue")
            tail(cap, state, written)
        super().finish(written)


def _trailing(ctx) -> TrailingSniffer:
    """The session's TrailingSniffer (replacing a plain Sniffer, keeping its settings)."""
    sn = ctx.plan.sniffer
    if isinstance(sn, TrailingSniffer):
        return sn
    new = TrailingSniffer()
    if sn is not None:
        for k, v in vars(sn).items():
            setattr(new, k, v)
    else:
        ev = ctx.spec.ev
        evse_mac, evse_modem = ctx.evse_override or (ctx.spec.evse.mac, ctx.spec.evse.modem_mac)
        new.comments.update(ev_mac=ev.mac, evse_mac=evse_mac, evse_modem=evse_modem, ev_modem=ev.modem_mac)
    ctx.plan.sniffer = new
    return new


def _conn(cap, st: _TcpState, rng: random.Random, ev_port: int | None = None) -> TcpConn:
    ep = Endpoints(ev_mac=st.ev_mac, evse_mac=st.evse_mac, ev_modem_mac=st.ev_mac, evse_modem_mac=st.evse_mac,
                   secc_port=st.secc_port, ev_port=st.ev_port if ev_port is None else ev_port, sdp_port=0)
    return TcpConn(cap, ep, rng)


def _plain_tcp(ctx, name: str) -> None:
    if any(ctx.tls is not None and ctx.tls.used_on(c.sdp) for c in ctx.plan.connections):
        raise FaultError(f"{name}: sessions over plain TCP only (the SDP response announces NoTLS)")


@fault("ev_reconnect_flood", level="tcp", stage="after", category="transport",
       count=20, interval_s=1.0, first_after_s=1.0)
def ev_reconnect_flood(ctx, count, interval_s, first_after_s):
    """After the session has ended (SessionStop, TCP closed) the EV's V2G client goes on
    connecting to the SECC port: ``count`` SYNs ``interval_s`` apart (± 2 %), from a new ephemeral
    port each, the first ``first_after_s`` after the session's last frame — a state machine
    that falls back to "connect" after SessionStop instead of waiting for a new plug-in (CP
    state A). The SECC no longer listens and refuses each with RST/ACK (RFC 9293 §3.5.2):
    the refused connections belong to the finished session and change nothing of its
    outcome (PROTOCOL_FACTS §1.5; PFMEA UC2 100)."""
    if int(count) < 1 or float(interval_s) <= 0:
        raise FaultError("ev_reconnect_flood: count ≥ 1 and interval_s > 0")
    _plain_tcp(ctx, "ev_reconnect_flood")
    rng = random.Random(ctx.rng.random())

    def tail(cap, st, written):
        t = st.last_t + float(first_after_s)
        for i in range(int(count)):
            c = _conn(cap, st, rng, ev_port=rng.randrange(49152, 65536))
            c.refused(round(t, 6), [f"simulator fault ev_reconnect_flood: {count} SYNs after the session, "
                                    f"every ~{float(interval_s):g} s, each refused"] if i == 0 else ())
            t += float(interval_s) * (1.0 + rng.uniform(-0.02, 0.02))     # the EV's retry timer, scheduling jitter
    _trailing(ctx).tails.append(tail)


@fault("response_after_ev_timeout", level="script", stage="after", category="timing",
       message="CurrentDemandRes", occurrence=10, delay_s=0.6, ev_close_s=0.5)
def response_after_ev_timeout(ctx, message, occurrence, delay_s, ev_close_s):
    """The SECC answers ``message`` (a response; its ``occurrence``-th) only ``delay_s``
    after the request, past the EV's V2G_EVCC_Msg_Timeout (0.25 s for CurrentDemand, 2 s for
    most others: ISO 15118-2 Table 109, DIN 70121 Tables 75/77; PROTOCOL_FACTS §4A, §4B). The
    EV gives up ``ev_close_s`` after its request and closes the connection (FIN); the SECC
    acknowledges the FIN, its late response then arrives on the half-closed connection and
    the EV's stack, whose socket is closed, answers it with RST (RFC 9293 §3.10.7). Plain
    TCP only."""
    if not 0 < float(ev_close_s) < float(delay_s):
        raise FaultError("response_after_ev_timeout: 0 < ev_close_s < delay_s (the EV closes first)")
    _plain_tcp(ctx, "response_after_ev_timeout")
    ci, xi, x, m = ctx.find(message, occurrence)
    if m.side != "EVSE" or x.response is not m:
        raise FaultError(f"response_after_ev_timeout: {message} is not a response")
    req = x.request
    ctx.plan.terminate(ci, xi, Ending(by="EV", how="none", after_s=float(ev_close_s)), keep_response=False)
    ed.note(m, f"response_after_ev_timeout: {message} {float(delay_s):g} s after its request, after the EV "
               f"closed the connection")

    def tail(cap, st, written):
        t_req = next(t for mm, t in written if mm is req)
        c = _conn(cap, st, random.Random(0))
        c.nxt = list(st.nxt)
        t = t_req + float(ev_close_s)
        c._segment(t, 0, nf.FIN | nf.ACK, comments=[
            f"simulator: the EV gives up after {float(ev_close_s):g} s without {message} and closes"])
        c._advance(0, 1)
        c._segment(t + c.rtt / 2, 1, nf.ACK)
        t_res = t_req + float(delay_s)
        c.send(t_res, 1, m.wire(), comments=m.comments)
        written.append((m, t_res))
        c._segment(t_res + c.rtt / 4, 0, nf.RST, comments=[
            "simulator: the EV's closed socket resets the connection on the late data"])
        c.owed = [None, None]
    _trailing(ctx).tails.append(tail)


# ====================================================================== SessionID
@fault("ev_foreign_session_id", level="script", stage="after", category="session",
       requests=3, session_id=None, close_after_s=0.2)
def ev_foreign_session_id(ctx, requests, session_id, close_after_s):
    """After SessionSetupRes the EV sends every request with another SessionID than the one
    handed out (``session_id``; default random: say the ID of its previous session, which it
    never replaced). The SECC answers each FAILED_UnknownSession ([V2G2-460],
    [V2G-DC-391]) but keeps its connection open and goes on answering (it should end the
    session after a FAILED response: [V2G2-539], [V2G-DC-665]); the EV, which does not read
    the ResponseCode, goes on with its sequence for ``requests`` requests and then closes the
    connection (FIN, ``close_after_s`` after the last response): no SessionStop."""
    if int(requests) < 1:
        raise FaultError("ev_foreign_session_id: requests ≥ 1")
    ci, xi, x, m = ctx.find("SessionSetupRes", 1)
    conn = ctx.plan.connections[ci]
    later = conn.exchanges[xi + 1:xi + 1 + int(requests)]
    if len(later) < int(requests) or any(y.response is None for y in later):
        raise FaultError(f"ev_foreign_session_id: fewer than {requests} answered requests after SessionSetup")
    own = ctx.plan.session_id
    sid = session_id or _random_session_id(ctx.rng)
    if sid == own:
        raise FaultError("ev_foreign_session_id: session_id is the one SessionSetupRes handed out")
    last = xi + int(requests)
    ctx.plan.terminate(ci, last, Ending(by="EV", how="FIN", after_s=float(close_after_s),
                                        reason=f"the EV gives up after {requests} FAILED_UnknownSession"))
    ctx.plan.set_session_id(sid, ci, xi + 1, sides=("EV",))
    for y in later:
        set_response_code(y.response, "FAILED_UnknownSession")
        ed.encodes(y.response)
    ed.note(later[0].request, f"ev_foreign_session_id: the EV sends SessionID {sid} (SessionSetupRes: {own})")
    ed.note(later[0].response, "ev_foreign_session_id: FAILED_UnknownSession; the SECC keeps answering")


# ====================================================================== the charge loop
@fault("evse_no_current", level="script", stage="before", category="charging-loop",
       max_a=0.8, from_cycle=1, ev_gives_up_s=60.0, code="FAILED_ChargingCurrentdifferential",
       welding_detection=False)
def evse_no_current(ctx, max_a, from_cycle, ev_gives_up_s, code, welding_detection):
    """From charge-loop cycle ``from_cycle`` the charger delivers no current: its contactors
    are closed and EVSEPresentVoltage shows the battery voltage, but EVSEPresentCurrent stays
    at measurement noise (0 … ``max_a``) while the EV asks for its full current and the
    EVSE's limits allow it (a power module that never started; the pyPLC captures where a
    charger simulator serves a Hyundai Ioniq). The battery gains nothing. After
    ``ev_gives_up_s`` of the loop (the Ioniq waits 600 s; 0: never) the EV reports
    DC_EVErrorCode ``code`` with EVReady false and stops: PowerDelivery(Stop) (DIN
    ReadyToChargeState false), WeldingDetection only if ``welding_detection`` (the Ioniq
    goes straight on), SessionStop. Derived rule EVSEPresentCurrent ≈ min(EVTargetCurrent,
    EVSE limits), PROTOCOL_FACTS §4D; PFMEA UC2 244-251. DIN / ISO-2 DC."""
    ed.need(ctx, _DC_DIN_ISO2, mode="DC", name="evse_no_current")
    gives_up = float(ev_gives_up_s)
    if gives_up > 0 and not welding_detection:
        ctx.timing.welding_cycles = 0
    if gives_up > 0:
        ctx.timing.loop_cycles = max(ctx.timing.loop_cycles, 100000)
    st = {"t0": None, "noted": False, "gave_up": False}

    def hook(flow, x):
        if not ed.is_loop(x) or ed.cycle(flow) < int(from_cycle):
            return
        s = flow.s
        if st["t0"] is None:
            st["t0"] = flow.t - x.latency_s - x.think_s
        # no energy flowed in this cycle: undo the battery model's step (flow.loop, secc())
        wh = s.present_voltage_v * s.present_current_a * flow.loop_period() / 3600.0
        s.bat.energy_wh -= wh
        s.bat.soc -= 100.0 * wh * s.bat.speedup / s.bat.capacity_wh
        s.meter_wh -= wh
        s.dc.current_a = 0.0
        s.present_current_a = round(flow.rng.uniform(0.0, float(max_a)), 1)
        s.present_voltage_v = s.bat.ocv() + flow.rng.uniform(-0.3, 0.3)
        s.limits_achieved = (False, False, False)
        r = ed.body(x.response)
        r["EVSEPresentCurrent"] = ed.like(r["EVSEPresentCurrent"], s.present_current_a)
        r["EVSEPresentVoltage"] = ed.like(r["EVSEPresentVoltage"], s.present_voltage_v)
        for k in ("EVSECurrentLimitAchieved", "EVSEVoltageLimitAchieved", "EVSEPowerLimitAchieved"):
            r[k] = False
        if not st["noted"]:
            st["noted"] = True
            ed.note(x.response, f"evse_no_current: no current delivered (≤ {float(max_a):g} A) from here on")
        elapsed = (flow.t - x.latency_s) - st["t0"]
        if gives_up > 0 and elapsed >= gives_up and not st["gave_up"]:
            st["gave_up"] = True
            s.ev_error, s.ev_ready = code, False
            ev = ed.body(x.request)["DC_EVStatus"]
            ev["EVErrorCode"], ev["EVReady"] = code, False
            ed.note(x.request, f"evse_no_current: after {elapsed:.0f} s without current the EV reports {code}")
            c = ed.cycle(flow)
            flow.b.ev_stop_cycle = c if flow.b.ev_stop_cycle is None else min(c, flow.b.ev_stop_cycle)
    ed.hook(ctx, hook)


@fault("evse_stops_charging", level="script", stage="before", category="charging-loop",
       at_cycle=30, status_code="EVSE_Shutdown", max_delay_s=2, ev_reaction_s=0.25)
def evse_stops_charging(ctx, at_cycle, status_code, max_delay_s, ev_reaction_s):
    """In charge-loop cycle ``at_cycle`` the charger ends the charge on its own: the
    CurrentDemandRes carries DC_EVSEStatusCode ``status_code`` (EVSE_Shutdown: an
    EVSE-initiated normal stop — a stop button, a backend RemoteStop, a local limit) with
    EVSENotification StopCharging and NotificationMaxDelay ``max_delay_s``, and the output
    current ramps down; nothing in the traffic says why (PROTOCOL_FACTS §4.0 "Status
    semantics"). The EV reacts ``ev_reaction_s`` later, as it should, with PowerDelivery(Stop)
    (the Ioniq: 250 ms), WeldingDetection and SessionStop — the pyPLC Polestar 2 capture.
    DIN / ISO-2 DC."""
    ed.need(ctx, _DC_DIN_ISO2, mode="DC", name="evse_stops_charging")
    n = int(at_cycle)
    if n < 1:
        raise FaultError("evse_stops_charging: at_cycle ≥ 1")
    ctx.behaviour.ev_stop_cycle = n
    ctx.timing.loop_cycles = max(ctx.timing.loop_cycles, n)
    ctx.behaviour.think_override[("PowerDeliveryReq", 2)] = float(ev_reaction_s)

    def hook(flow, x):
        if not ed.is_loop(x) or ed.cycle(flow) != n:
            return
        s = flow.s
        s.evse_status_code, s.notification, s.notification_delay = status_code, "StopCharging", int(max_delay_s)
        s.dc.current_a *= 0.3
        r = ed.body(x.response)
        st = ed.evse_status(r)
        st.update({"EVSEStatusCode": status_code, "EVSENotification": "StopCharging",
                   "NotificationMaxDelay": int(max_delay_s)})
        cur = ed.si(r["EVSEPresentCurrent"]) * 0.3
        s.present_current_a = cur
        r["EVSEPresentCurrent"] = ed.like(r["EVSEPresentCurrent"], cur)
        ed.note(x.response, f"evse_stops_charging: {status_code}, EVSENotification StopCharging (no reason given)")
    ed.hook(ctx, hook)


# ====================================================================== PreCharge
@fault("ev_stops_in_precharge", level="script", stage="before", category="precharge",
       after_requests=10)
def ev_stops_in_precharge(ctx, after_requests):
    """The EV ends the session during PreCharge for a reason of its own that the traffic does
    not show (a BMS or contactor check inside the car): PreCharge runs normally — the EVSE
    ramps its output toward the EV's target and answers EVSE_Ready — and after its
    ``after_requests``-th PreChargeRes the EV sends SessionStopReq (Terminate) with no
    DC_EVErrorCode, without PowerDelivery (as the Tesla Model Y in pyPLC's
    ModelY_stop_in_precharge capture, there after EVSE_NotReady answers). Allowed by the
    sequence ([V2G2-587], [V2G-DC-458]); nothing in the traffic explains it. DC."""
    ed.need(ctx, mode="DC", name="ev_stops_in_precharge")
    n = int(after_requests)
    if n < 1:
        raise FaultError("ev_stops_in_precharge: after_requests ≥ 1")

    def hook(flow, x):
        if x.phase != "precharge" or flow.counts.get(x.request.name, 0) != n:
            return
        ed.note(x.response, f"ev_stops_in_precharge: the EV stops after {n} PreChargeReq "
                            f"({flow.s.present_voltage_v:.1f} V of {flow.s.target_voltage_v:.1f} V)")
        flow.ev_gives_up("session_stop", before_power=True)
    ed.hook(ctx, hook)


# ====================================================================== cable check
@fault("cablecheck_never_finished", level="script", stage="before", category="cablecheck",
       isolation="Valid", status_code="EVSE_Ready", test_s=1.5, period_s=0.6, ev_reaction="fin",
       ev_ready_last=False)
def cablecheck_never_finished(ctx, isolation, status_code, test_s, period_s, ev_reaction, ev_ready_last):
    """The charger never finishes the cable check: its isolation test ends after ``test_s``
    with EVSEIsolationStatus ``isolation`` (Valid) and ``status_code``, but every
    CableCheckRes keeps saying EVSEProcessing Ongoing (a state machine waiting for an event
    that never comes — its output to fall back after the test, a power module). The EV polls
    every ``period_s`` until its V2G_EVCC_CableCheck_Timeout (40 s, [V2G2-700..703],
    PROTOCOL_FACTS §4A/§4B) has run out; its last CableCheckReq says EVReady
    ``ev_ready_last`` and after its response the EV ends the session (``ev_reaction`` "fin" /
    "rst": closes TCP; "session_stop": SessionStopReq). DIN / ISO-2 DC."""
    ed.need(ctx, _DC_DIN_ISO2, mode="DC", name="cablecheck_never_finished")
    if ev_reaction not in ("fin", "rst", "session_stop"):
        raise FaultError(f"cablecheck_never_finished: ev_reaction {ev_reaction!r}; fin, rst or session_stop")
    # the flow's own cable check, polled every period_s, made longer than the EV waits: the
    # hook below ends it when the EV's timer has run out
    limit = phase_timeout(CABLECHECK_TIMEOUT, ctx.protocol)
    ctx.timing.cablecheck_s = 10 * limit
    ctx.timing.cablecheck_period_s = float(period_s)
    st = {"t_first": None}

    def hook(flow, x):
        if x.phase != "cablecheck" or x.response is None:
            return
        t_req = flow.t - x.latency_s
        if st["t_first"] is None:
            st["t_first"] = t_req
        r = ed.evse_status(ed.body(x.response))
        if t_req - st["t_first"] >= float(test_s):
            if r.get("EVSEIsolationStatus") != isolation:
                ed.note(x.response, f"cablecheck_never_finished: isolation {isolation}, {status_code}, "
                                    f"EVSEProcessing stays Ongoing")
            r["EVSEIsolationStatus"], r["EVSEStatusCode"] = isolation, status_code
        if t_req - st["t_first"] >= limit:     # the EV's timer ran out before this request
            ed.body(x.request)["DC_EVStatus"]["EVReady"] = bool(ev_ready_last)
            flow.s.ev_ready = bool(ev_ready_last)
            ed.note(x.request, f"cablecheck_never_finished: {t_req - st['t_first']:.1f} s after the first "
                               f"CableCheckReq (V2G_EVCC_CableCheck_Timeout {limit:.0f} s): "
                               f"the EV's last request, then it ends the session")
            flow.ev_gives_up(ev_reaction, before_power=True)
    ed.hook(ctx, hook)


@fault("cablecheck_invalid_ignored", level="script", stage="after", category="cablecheck",
       isolation="Invalid", status_code="EVSE_Ready")
def cablecheck_invalid_ignored(ctx, isolation, status_code):
    """The isolation test fails — the CableCheckRes that finishes it (EVSEProcessing
    Finished, ResponseCode OK) reports EVSEIsolationStatus ``isolation`` (with
    ``status_code``) — but the EV, which checks only EVSEProcessing and the status code, goes
    on with PreChargeReq. PreCharge is allowed only after Valid / Warning isolation and
    EVSE_Ready ([V2G-DC-499], [V2G2-584]; PROTOCOL_FACTS §4A): the SECC, still in its cable
    check, answers FAILED_SequenceError with its output off; the EV then sends SessionStopReq,
    the SECC answers it and the EV closes the connection. DIN / ISO-2 DC."""
    ed.need(ctx, _DC_DIN_ISO2, mode="DC", name="cablecheck_invalid_ignored")
    cc = [x for _, _, x in ctx.plan.exchanges() if x.phase == "cablecheck" and x.response is not None]
    if not cc or ed.body(cc[-1].response).get("EVSEProcessing") != "Finished":
        raise FaultError("cablecheck_invalid_ignored: the cable check does not finish in this session")
    st = ed.evse_status(ed.body(cc[-1].response))
    st["EVSEIsolationStatus"], st["EVSEStatusCode"] = isolation, status_code
    ed.encodes(cc[-1].response)
    ed.note(cc[-1].response, f"cablecheck_invalid_ignored: isolation {isolation}; the EV goes on")
    sci, sxi, stop, _ = ctx.find("SessionStopReq", -1)
    ending = ctx.plan.connections[sci].ending
    ci, xi, pre, _ = ctx.find("PreChargeReq", 1)
    r = ed.body(pre.response)
    set_response_code(pre.response, "FAILED_SequenceError")
    r["EVSEPresentVoltage"] = ed.like(r["EVSEPresentVoltage"], 0.0)
    ed.evse_status(r).update({"EVSEIsolationStatus": isolation, "EVSEStatusCode": status_code})
    ed.encodes(pre.response)
    ed.note(pre.request, "cablecheck_invalid_ignored: PreChargeReq after a failed isolation test")
    ctx.plan.terminate(ci, xi, ending)
    ctx.plan.connections[ci].exchanges.append(stop)
