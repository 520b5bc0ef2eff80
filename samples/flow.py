"""The message script of one charging session: the EV (EVCC) and the charger (SECC) modelled as
two simple state machines that exchange V2G messages, driven by the physical models
(physical.py) and a clock.

Sequences (PROTOCOL_FACTS §4A DIN, §4B ISO 15118-2, §4C ISO 15118-20):

    supportedAppProtocol → SessionSetup → setup steps of the protocol
      DIN:   ServiceDiscovery, ServicePaymentSelection, ContractAuthentication
      ISO-2: ServiceDiscovery, PaymentServiceSelection, [PaymentDetails (PnC)], Authorization
      -20:   AuthorizationSetup, Authorization, ServiceDiscovery, ServiceDetail, ServiceSelection
    → ChargeParameterDiscovery [→ ScheduleExchange (-20)]
    DC: → CableCheck (EVSEProcessing Ongoing … Finished) → PreCharge (until the EVSE output is
          within the EV's tolerance of its target) → PowerDelivery(Start) → CurrentDemand /
          DC_ChargeLoop … → PowerDelivery(Stop) → WeldingDetection … → SessionStop
    AC: → PowerDelivery(Start) → ChargingStatus / AC_ChargeLoop [+ MeteringReceipt (PnC)]
          … → PowerDelivery(Stop) → SessionStop

Pause (ISO 15118-2 §8.4.3.x, PROTOCOL_FACTS §4B "Pause"): PowerDelivery(Stop) → [WeldingDetection]
→ SessionStopReq(Pause) → TCP close; after the pause a new SDP and TCP connection,
supportedAppProtocol, SessionSetupReq with the old SessionID → OK_OldSessionJoined
([V2G2-463]) and the setup steps again (as in dsV2Gshark ISO-2_DC_Pause_DS5366).
Renegotiation (ISO-2 only): the SECC sets EVSENotification ReNegotiation in a charge-loop
response ([V2G2-841]); the EV answers with PowerDeliveryReq(Renegotiate) and runs
ChargeParameterDiscovery again ([V2G2-813]); a DC EV then repeats CableCheck and PreCharge
(Josev's EVCC and EVerest's SECC both do; PROTOCOL_FACTS §4B notes this is not pinned down).

The EV's timeouts (when a faulty SECC makes it give up): V2G_EVCC_PreCharge_Timeout 7 s
(DIN, ISO-2 Table 109; 10 s -20, J-TO-20), V2G_EVCC_CableCheck_Timeout 40 s,
V2G_EVCC_Ongoing_Timeout 60 s (PROTOCOL_FACTS §4A-4C).

:class:`Behaviour` holds the knobs faults turn before the script is generated (faults.py);
everything else comes from the scenario.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from ccs_analyzer.dissectors.exi.namespaces import NS_DIN, NS_ISO2, NS_ISO20_PREFIX
from ccs_analyzer.rules.timing_tables import (CABLECHECK_TIMEOUT, MSG_TIMEOUT, ONGOING_TIMEOUT,
                                              PRECHARGE_TIMEOUT, lookup)

from .dialects import NS_SAP, Dialect, dialect_for
from .physical import AcSupply, Battery, DcConverter
from .script import PT_EXI, Connection, Ending, Exchange, Message, SdpPlan, SessionPlan, TcpPlan

PROTOCOL_NAMESPACES = {"DIN 70121": NS_DIN, "ISO 15118-2": NS_ISO2}


def msg_timeout(dialect: Dialect, step: str) -> float:
    """V2G_EVCC_Msg_Timeout (s) of ``step`` as ``dialect`` names its request: the EV's timers
    are those the analyzer judges with (rules/timing_tables.py ``MSG_TIMEOUT``: ISO 15118-2
    Table 109, DIN 70121 Tables 75/77, ISO 15118-20 Tables 215-217)."""
    return lookup(MSG_TIMEOUT, dialect.protocol, dialect.name(step)).seconds


def phase_timeout(table: dict, protocol: str) -> float:
    """The EV's timer (s) of a whole phase in ``protocol``: ``table`` is one of
    rules/timing_tables.py ``CABLECHECK_TIMEOUT`` (V2G_EVCC_CableCheck_Timeout),
    ``PRECHARGE_TIMEOUT``, ``ONGOING_TIMEOUT``. KeyError for another protocol."""
    return table[protocol].seconds


@dataclass
class Timing:
    """Think times, latencies and loop counts of a session (all times in s).

    ``latency_s``: SECC request → response; ``think_s``: EV response → next request;
    ``jitter``: each of them is multiplied by a factor drawn uniformly from 1 ± jitter (seeded);
    ``latency`` / ``think``: per-message overrides by message name ("CableCheckRes": 0.3,
    "PreChargeReq": 0.05). Loops: ``*_period_s`` is request → next request;
    ``cablecheck_s`` how long the isolation test runs (EVSEProcessing Ongoing);
    ``loop_cycles`` caps the charge loop (it also ends when the battery reaches its target);
    ``authorization_ongoing`` / ``cpd_ongoing``: Ongoing answers before Finished;
    ``close_s``: SessionStopRes → TCP close; ``failed_close_s``: a FAILED response → the
    SECC closes the connection; ``pause_s``: how long a paused session waits."""

    latency_s: float = 0.08
    think_s: float = 0.06
    jitter: float = 0.2
    latency: dict = field(default_factory=dict)
    think: dict = field(default_factory=dict)
    sap_think_s: float = 0.05
    loop_period_s: float | None = None
    loop_latency_s: float | None = None
    loop_cycles: int = 24
    cablecheck_s: float = 1.5
    cablecheck_period_s: float = 0.25
    precharge_period_s: float = 0.1
    welding_period_s: float = 0.2
    welding_cycles: int = 3
    ongoing_period_s: float = 0.5
    authorization_ongoing: int = 0
    cpd_ongoing: int = 0
    receipt_every: int = 10
    close_s: float | None = None
    failed_close_s: float = 0.5
    pause_s: float = 20.0
    sdp_latency_s: float = 0.05
    sdp_to_syn_s: float = 0.02
    tcp_rtt_s: float = 0.002


@dataclass
class EvParams:
    """The EV's identity and behaviour (MACs are the host's and its PLC modem's)."""

    mac: str = "02:00:00:00:0e:01"
    modem_mac: str = "02:00:00:00:0e:02"
    evccid: str | None = None
    vin: str = "WSIMEV00000000001"
    protocols: list | None = None
    precharge_tolerance_v: float = 10.0
    precharge_current_a: float = 1.0
    ac_max_current_a: float = 32.0
    ac_min_current_a: float = 6.0
    ac_max_voltage_v: float = 400.0
    departure_time_s: int = 7200
    sdp_port: int | None = None
    tcp_port: int | None = None


@dataclass
class EvseParams:
    """The charger's identity, ports and limits."""

    mac: str = "02:00:00:00:e5:01"
    modem_mac: str = "02:00:00:00:e5:02"
    evseid: str = "DE*SIM*E0001*1"
    port: int | None = None
    max_current_a: float = 150.0
    max_voltage_v: float = 500.0
    max_power_w: float = 100000.0
    min_current_a: float = 0.0
    min_voltage_v: float = 150.0
    precharge_rate_v_per_s: float = 400.0
    ac_nominal_voltage_v: float = 230.0
    ac_max_current_a: float = 16.0
    ac_phases: int = 3
    meter_id: str = "SIM-EM-0001"
    meter_start_wh: int = 1834512


@dataclass
class Behaviour:
    """Knobs faults turn before the script is generated (see faults.py). Defaults: a
    healthy EV and charger."""

    sap_result: str | None = None
    ongoing: dict = field(default_factory=dict)          # step → (seconds, period_s, ev_reaction)
    cablecheck_failure: dict | None = None
    precharge_stall_v: float | None = None
    precharge_stall_reaction: str = "session_stop"
    precharge_overshoot_v: float | None = None
    precharge_overshoot_settle_s: float | None = 1.0
    precharge_not_ready: str | None = None               # None | "wait" | "proceed"
    emergency_shutdown_cycle: int | None = None
    stop_charging: dict | None = None
    current_excess: dict | None = None
    ev_error: dict | None = None
    out_of_sequence: dict | None = None
    latency_override: dict = field(default_factory=dict)  # (message, occurrence) → s
    loop_latency_s: float | None = None
    loop_period_s: float | None = None
    comments: list = field(default_factory=list)          # (message name, occurrence, text)
    think_override: dict = field(default_factory=dict)    # (request, occurrence) → s (0: every one)
    #: callables ``hook(flow, exchange)`` run as each exchange is built (before the next one):
    #: they may edit its trees, add comments and change ``flow.s`` / ``flow.b`` for what follows
    hooks: list = field(default_factory=list)
    ev_stop_cycle: int | None = None                      # the EV ends the charge loop after it


@dataclass
class State:
    """Everything the dialects read to build a message (see dialects.py)."""

    sid: str = "00"
    setup_sid: str = "00"
    evccid_hex: str = ""
    evccid_20: str = ""
    evseid: str = ""
    evseid_hex: str = ""
    bat: Battery = field(default_factory=Battery)
    dc: DcConverter = field(default_factory=DcConverter)
    ac: AcSupply = field(default_factory=AcSupply)
    now: float = 0.0
    response_code: str = "OK"
    processing: str = "Finished"
    ev_processing: str = "Finished"
    ev_ready: bool = True
    ev_error: str = "NO_ERROR"
    evse_status_code: str = "EVSE_Ready"
    isolation: str = "Invalid"
    notification: str = "None"
    notification_delay: int = 0
    rcd: bool = False
    energy_mode: str = "DC_extended"
    target_current_a: float = 0.0
    target_voltage_v: float = 0.0
    present_current_a: float = 0.0
    present_voltage_v: float = 0.0
    limits_achieved: tuple = (False, False, False)
    charge_progress: str = "Start"
    charging_complete: bool = False
    bulk_complete: bool = False
    remaining_full_s: float = 0.0
    remaining_bulk_s: float = 0.0
    charging_session: str = "Terminate"
    schedule_tuple_id: int = 1
    departure_time_s: int = 7200
    energy_request_wh: float = 0.0
    energy_left_wh: float = 0.0
    meter_id: str = ""
    meter_wh: float = 0.0
    sig_meter_reading: str = ""
    receipt_required: bool = False
    meter_info_requested: bool = False
    gen_challenge: str = ""
    first_authorization: bool = True
    ev_ac_max_current_a: float = 32.0
    ev_ac_min_current_a: float = 6.0
    ev_ac_max_voltage_v: float = 400.0
    ev_ac_max_power_w: float = 22080.0
    ev_ac_min_power_w: float = 4140.0
    ac_power_w: float = 0.0
    ev_termination_code: str | None = None
    ev_termination_explanation: str | None = None
    rng: random.Random | None = None


class SessionOver(Exception):
    """Raised inside the flow when the session ends early (the plan is complete)."""


class Flow:
    """Generate the :class:`SessionPlan` of one session.

    ``t0``: the absolute time (epoch s) the first SDP request goes out; ``sdp_duration``,
    ``connect_duration`` and ``tls_duration``: callables (wire.py, tls.py) giving how long SDP,
    the TCP handshake and the TLS handshake take, so that the script's clock (TimeStamps,
    physics) and the capture agree."""

    def __init__(self, *, protocol: str, mode: str, payment: str, control_mode: str, ev: EvParams,
                 evse: EvseParams, battery: Battery, timing: Timing, behaviour: Behaviour,
                 rng: random.Random, t0: float, sdp: SdpPlan, tcp: TcpPlan, sdp_duration, connect_duration,
                 pause: dict | None = None, renegotiation: dict | None = None, tls_duration=None,
                 pnc: dict | None = None):
        self.d: Dialect = dialect_for(protocol, mode, payment, control_mode)
        self.d.certificate_installation = bool((pnc or {}).get("certificate_installation"))
        self.d.signed_sales_tariff = bool((pnc or {}).get("signed_sales_tariff"))
        #: seconds of the TLS handshake on a connection after SDP exchange ``sdp`` (0: plain TCP)
        self.tls_duration = tls_duration or (lambda sdp: 0.0)
        self.protocol, self.mode, self.payment = protocol, mode, payment
        self.ev, self.evse, self.tm, self.b = ev, evse, timing, behaviour
        self.rng = rng
        self.pause = pause
        self.renegotiation = renegotiation
        self.sdp_duration, self.connect_duration = sdp_duration, connect_duration
        self.first_sdp, self.first_tcp = sdp, tcp
        self.counts: dict[str, int] = {}
        self.t = t0
        self.plan = SessionPlan(slac=None, connections=[], protocol=protocol, dialect=self.d)
        s = self.s = State(rng=rng)
        s.bat = battery
        s.dc = DcConverter(max_current_a=evse.max_current_a, max_voltage_v=evse.max_voltage_v,
                           max_power_w=evse.max_power_w, min_current_a=evse.min_current_a,
                           min_voltage_v=evse.min_voltage_v, precharge_rate_v_per_s=evse.precharge_rate_v_per_s)
        s.ac = AcSupply(nominal_voltage_v=evse.ac_nominal_voltage_v, max_current_a=evse.ac_max_current_a,
                        phases=evse.ac_phases, meter_start_wh=evse.meter_start_wh)
        mac_hex = ev.mac.replace(":", "").lower()
        s.evccid_hex = (ev.evccid or mac_hex).lower()
        s.evccid_20 = ev.evccid or ev.vin
        s.evseid = evse.evseid
        s.evseid_hex = evse.evseid.encode().hex()
        s.energy_mode = ("DC_extended" if mode == "DC" else
                         "AC_three_phase_core" if evse.ac_phases == 3 else "AC_single_phase_core")
        s.departure_time_s = ev.departure_time_s
        s.energy_request_wh = max(0.0, battery.soc_target - battery.soc) / 100.0 * battery.capacity_wh
        s.meter_id = evse.meter_id
        s.meter_wh = float(evse.meter_start_wh)
        s.ev_ac_max_current_a = ev.ac_max_current_a
        s.ev_ac_min_current_a = ev.ac_min_current_a
        s.ev_ac_max_voltage_v = ev.ac_max_voltage_v
        phases = evse.ac_phases
        s.ev_ac_max_power_w = phases * evse.ac_nominal_voltage_v * ev.ac_max_current_a
        s.ev_ac_min_power_w = phases * evse.ac_nominal_voltage_v * ev.ac_min_current_a
        self.session_id = bytes(rng.randrange(256) for _ in range(8)).hex()
        s.gen_challenge = bytes(rng.randrange(256) for _ in range(16)).hex()
        s.sig_meter_reading = bytes(rng.randrange(256) for _ in range(64)).hex()
        s.isolation = "Invalid"
        self.zero_sid = "00" if protocol == "DIN 70121" else "0000000000000000"

    # ================================================================ timing helpers
    def jit(self, v: float) -> float:
        j = self.tm.jitter
        return round(max(0.0005, v * (1.0 + j * (2.0 * self.rng.random() - 1.0))), 6)

    def loop_period(self) -> float:
        if self.b.loop_period_s is not None:
            return self.b.loop_period_s
        if self.tm.loop_period_s is not None:
            return self.tm.loop_period_s
        return 0.1 if self.mode == "DC" else 0.25

    def loop_latency(self) -> float:
        if self.b.loop_latency_s is not None:
            return self.b.loop_latency_s
        if self.tm.loop_latency_s is not None:
            return self.tm.loop_latency_s
        return 0.02 if self.mode == "DC" else 0.05

    # ================================================================ exchanges
    @property
    def conn(self) -> Connection:
        return self.plan.connections[-1]

    def open_connection(self, sdp: SdpPlan, tcp: TcpPlan, gap_s: float = 0.0) -> None:
        """A new SDP + TCP connection starting ``gap_s`` from now."""
        self.t += gap_s
        c = Connection(sdp=sdp, tcp=tcp, gap_before_s=gap_s)
        c.start_t = self.t
        self.t += self.sdp_duration(sdp) + self.connect_duration(tcp) + self.tls_duration(sdp)
        c.v2g_start_t = self.t
        self.plan.connections.append(c)
        if not sdp.answered or tcp.connect_to_wrong_port_only:
            c.ending = Ending(how="none")
            raise SessionOver

    def _count(self, name: str) -> int:
        self.counts[name] = self.counts.get(name, 0) + 1
        return self.counts[name]

    def ex(self, step: str, phase: str, *, think: float | None = None, latency: float | None = None,
           before_response=None, code: str | None = None, respond: bool = True,
           exact_latency: bool = False) -> Exchange:
        """One request/response of ``step``: the EV's request after its think time, the
        SECC's response after its latency (``before_response`` updates the SECC's state in
        between). Per-message overrides and the late-response knob apply here."""
        d, s = self.d, self.s
        req_name = d.name(step) + "Req"
        res_name = d.name(step) + "Res"
        n_req = self.counts.get(req_name, 0) + 1
        th = self.b.think_override.get((req_name, n_req), self.b.think_override.get((req_name, 0)))
        th = self.tm.think.get(req_name) if th is None else th
        th = self.jit(self.tm.think_s if think is None else think) if th is None else th
        self.t += th
        s.now = self.t
        self._count(req_name)
        req = Message("EV", d.request(step, s), d.namespace_of(step), d.payload_type(step))
        n = self._count(res_name)
        lat = self.b.latency_override.get((res_name, n), self.b.latency_override.get((res_name, 0)))
        if lat is None:
            lat = self.tm.latency.get(res_name)
        if lat is None:
            lat = latency if exact_latency and latency is not None else \
                self.jit(self.tm.latency_s if latency is None else latency)
        self.t += lat
        s.now = self.t
        if before_response:
            before_response()
        res = None
        if respond:
            s.response_code = code or "OK"
            res = Message("EVSE", d.response(step, s), d.namespace_of(step), d.payload_type(step))
        x = Exchange(req, res, th, lat, phase, state=self.snapshot())
        self.conn.exchanges.append(x)
        for hook in self.b.hooks:
            hook(self, x)
        self._annotate(x)
        self._after(x)
        return x

    def snapshot(self) -> dict:
        s = self.s
        return {"t": round(self.t, 6), "soc": round(s.bat.soc, 2), "voltage_v": round(s.present_voltage_v, 1),
                "current_a": round(s.present_current_a, 1), "target_voltage_v": round(s.target_voltage_v, 1),
                "target_current_a": round(s.target_current_a, 1), "ac_current_a": round(s.ac.current_a, 1)}

    def _annotate(self, x: Exchange) -> None:
        for m in (x.request, x.response):
            if m is None:
                continue
            for name, occ, text in self.b.comments:
                if name == m.name and occ in (0, self.counts.get(m.name, 0)):
                    m.comments.append(text)

    def _after(self, x: Exchange) -> None:
        """The out-of-sequence knob: after the named response the EV sends another request;
        the SECC answers it with FAILED_SequenceError ([V2G2-538], [V2G-DC-390]) and closes."""
        oos = self.b.out_of_sequence
        if not oos or x.response is None or x.response.name != oos["after"]:
            return
        if oos.get("done"):
            return
        oos["done"] = True
        step = self.d.step_of(oos["request"])
        y = self.ex(step, "sequence", code="FAILED_SequenceError")
        y.request.comments.append(f"simulator fault out_of_sequence: {y.request.name} sent after {oos['after']}")
        self.secc_closes("FAILED_SequenceError")

    # ================================================================ endings
    def secc_closes(self, reason: str) -> None:
        """The SECC closes the connection after a FAILED response ([V2G2-539], [V2G-DC-665])."""
        self.conn.ending = Ending(by="EVSE", how="FIN", after_s=self.tm.failed_close_s, reason=reason)
        raise SessionOver

    def close_after_stop(self) -> None:
        """TCP close after SessionStopRes: DIN / ISO-2 EVs close at once (dSPACE captures);
        an ISO 15118-20 SECC closes after 5 s ([V2G20-1633], Josev comm_session.py)."""
        if self.protocol == "ISO 15118-20":
            self.conn.ending = Ending(by="EVSE", how="FIN", after_s=self.tm.close_s or 5.0)
        else:
            self.conn.ending = Ending(by="EV", how="FIN", after_s=self.tm.close_s or 0.1)

    def session_stop(self, how: str = "Terminate") -> None:
        self.s.charging_session = how
        self.ex("SessionStop", "stop")
        self.close_after_stop()

    # ================================================================ the session
    def run(self) -> SessionPlan:
        self.plan.session_id = self.session_id
        try:
            self.open_connection(self.first_sdp, self.first_tcp)
            self.handshake()
            self.setup(resume=False)
            self.charge()
        except SessionOver:
            pass
        return self.plan

    def handshake(self) -> None:
        """supportedAppProtocolReq / Res (ISO 15118-2 §8.2, PROTOCOL_FACTS §3): the EV lists
        its protocols by priority; the SECC picks the scenario's and echoes its SchemaID."""
        offered = self.ev.protocols or {"DIN 70121": ["DIN 70121"],
                                        "ISO 15118-2": ["ISO 15118-2", "DIN 70121"],
                                        "ISO 15118-20": ["ISO 15118-20", "ISO 15118-2"]}[self.protocol]
        entries, chosen = [], None
        for i, p in enumerate(offered):
            if p == self.protocol:
                e = self.d.sap_entry(i + 1, i + 1)
                chosen = i + 1
            elif p in PROTOCOL_NAMESPACES:
                e = {"ProtocolNamespace": PROTOCOL_NAMESPACES[p], "VersionNumberMajor": 2,
                     "VersionNumberMinor": 0, "SchemaID": i + 1, "Priority": i + 1}
            elif p == "ISO 15118-20":
                e = {"ProtocolNamespace": f"{NS_ISO20_PREFIX}:{self.mode}", "VersionNumberMajor": 1,
                     "VersionNumberMinor": 0, "SchemaID": i + 1, "Priority": i + 1}
            else:
                e = {"ProtocolNamespace": p, "VersionNumberMajor": 1, "VersionNumberMinor": 0,
                     "SchemaID": i + 1, "Priority": i + 1}
            entries.append(e)
        result = self.b.sap_result or ("OK_SuccessfulNegotiation" if chosen else "Failed_NoNegotiation")
        res_body = {"ResponseCode": result}
        if result.startswith("OK"):
            res_body["SchemaID"] = chosen
        th = self.jit(self.tm.sap_think_s)
        self.t += th
        self._count("supportedAppProtocolReq")
        req = Message("EV", {"supportedAppProtocolReq": {"AppProtocol": entries}}, NS_SAP, PT_EXI)
        lat = self.b.latency_override.get(("supportedAppProtocolRes", self._count("supportedAppProtocolRes")))
        lat = lat if lat is not None else self.tm.latency.get("supportedAppProtocolRes", self.jit(self.tm.latency_s))
        self.t += lat
        res = Message("EVSE", {"supportedAppProtocolRes": res_body}, NS_SAP, PT_EXI)
        x = Exchange(req, res, th, lat, "handshake", state=self.snapshot())
        self.conn.exchanges.append(x)
        self._annotate(x)
        if not result.startswith("OK"):
            res.comments.append(f"simulator: SECC answers {result} and closes the connection")
            self.secc_closes(result)
        self._after(x)

    def setup(self, resume: bool) -> None:
        """SessionSetup and the protocol's setup steps (see module docstring)."""
        s = self.s
        s.setup_sid = self.session_id if resume else self.zero_sid
        s.sid = s.setup_sid
        self.s.first_authorization = True

        def assign():
            s.sid = self.session_id
        self.ex("SessionSetup", "setup", before_response=assign,
                code="OK_OldSessionJoined" if resume else "OK_NewSessionEstablished")
        for step in self.d.setup:
            if step == "Authorization":
                self.ongoing_loop("Authorization", "authorization", self.tm.authorization_ongoing)
                continue
            self.ex(step, "setup")

    def ongoing_loop(self, step: str, phase: str, ongoing: int) -> None:
        """A request answered ``ongoing`` times with EVSEProcessing Ongoing, then Finished
        (PROTOCOL_FACTS §4E). The EVSEProcessing-too-long knob stretches it past the EV's
        ongoing timeout; the EV then gives up."""
        s = self.s
        extra = self.b.ongoing.get(step)
        period = self.tm.ongoing_period_s
        if extra:
            seconds, period, reaction = extra
            ongoing = max(ongoing, int(seconds / period) + 1)
        start = self.t
        for i in range(ongoing + 1):
            last = i == ongoing and not extra
            s.processing = "Finished" if last else ("Ongoing_WaitingForCustomerInteraction"
                                                     if step == "Authorization" and self.protocol == "ISO 15118-2"
                                                     and self.payment == "EIM" else "Ongoing")
            if self.protocol == "DIN 70121" or (self.protocol == "ISO 15118-20" and step != "Authorization"):
                s.processing = "Finished" if last else "Ongoing"
            think = None if i == 0 else max(0.005, period - self.tm.latency_s)
            self.ex(step, phase, think=think)
            s.first_authorization = False
            limit = phase_timeout(ONGOING_TIMEOUT, self.protocol)
            if extra and self.t - start > limit:
                self.conn.exchanges[-1].response.comments.append(
                    f"simulator fault evse_processing_ongoing: {step} Ongoing for {self.t - start:.0f} s "
                    f"(V2G_EVCC_Ongoing_Timeout {limit:.0f} s)")
                self.ev_gives_up(reaction, before_power=True)
        s.processing = "Finished"

    def ev_gives_up(self, reaction: str, before_power: bool) -> None:
        """The EV ends the session: "session_stop" (SessionStopReq Terminate, the polite way;
        in the charge loop first PowerDelivery(Stop) and WeldingDetection), "fin" or "rst"
        (closes the TCP connection)."""
        if reaction in ("fin", "rst"):
            self.conn.ending = Ending(by="EV", how=reaction.upper(), after_s=0.05, reason="EV gives up")
            raise SessionOver
        if not before_power:
            self.stop_power()
        self.session_stop("Terminate")
        raise SessionOver

    # ================================================================ charging
    def charge(self) -> None:
        """ChargeParameterDiscovery to SessionStop; pause and renegotiation included."""
        self.parameters()
        if self.mode == "DC":
            self.cable_check()
            self.precharge()
        self.power_delivery("Start")
        paused = self.loop()
        self.stop_power()
        if paused:
            self.s.charging_session = "Pause"
            self.ex("SessionStop", "stop")
            self.close_after_stop()
            self.resume()
            return
        self.session_stop("Terminate")

    def resume(self) -> None:
        """After the pause: new SDP / TCP, SessionSetup with the old SessionID, charge on."""
        self.t += self.conn.ending.after_s
        self.open_connection(SdpPlan(security=self.first_sdp.security, retry_s=self.first_sdp.retry_s,
                                     latency_s=self.first_sdp.latency_s),
                             TcpPlan(mss=self.first_tcp.mss), gap_s=self.tm.pause_s)
        self.pause = None
        self.handshake()
        self.setup(resume=True)
        self.charge()
        raise SessionOver

    def parameters(self) -> None:
        s = self.s
        s.ev_ready = self.protocol != "ISO 15118-2"     # dSPACE ISO-2 EV: EVReady false in CPD
        s.isolation = "Invalid" if self.protocol == "DIN 70121" else "No_IMD" if s.isolation == "Invalid" else s.isolation
        self.ongoing_loop("ChargeParameterDiscovery", "parameters", self.tm.cpd_ongoing)
        s.ev_ready = True
        if self.protocol == "ISO 15118-20":
            self.ongoing_loop("ScheduleExchange", "parameters", 0)

    def cable_check(self) -> None:
        """CableCheck: Ongoing with EVSE_IsolationMonitoringActive while the isolation test
        runs (PROTOCOL_FACTS §4D: the EVSE applies a test voltage), then Finished with
        isolation Valid and EVSE_Ready ([V2G-DC-499])."""
        s, tm = self.s, self.tm
        fail = self.b.cablecheck_failure
        extra = self.b.ongoing.get("CableCheck")
        duration = tm.cablecheck_s
        period = tm.cablecheck_period_s
        reaction = "session_stop"
        if extra:
            duration, period, reaction = extra
        n = max(1, int(round(duration / period)))
        start = self.t
        for i in range(n + 1):
            last = i == n
            if extra and last:
                break
            s.processing = "Finished" if last else "Ongoing"
            s.evse_status_code = "EVSE_Ready" if last else "EVSE_IsolationMonitoringActive"
            s.isolation = "Valid" if last else "Invalid"
            code = None
            if last and fail:
                s.isolation = fail["isolation"]
                s.evse_status_code = fail["status_code"]
                code = fail["response_code"]
            think = None if i == 0 else max(0.005, period - tm.latency_s)
            x = self.ex("CableCheck", "cablecheck", think=think, code=code)
            if last and fail:
                x.response.comments.append(
                    f"simulator fault cablecheck_fail: isolation {fail['isolation']}, {fail['status_code']}, "
                    f"ResponseCode {code or 'OK'}")
                s.processing = "Finished"
                if (code or "OK").startswith("FAILED"):
                    self.secc_closes(code)
                self.ev_gives_up("session_stop", before_power=True)
            limit = phase_timeout(CABLECHECK_TIMEOUT, self.protocol)
            if extra and self.t - start > limit:
                x.response.comments.append(
                    f"simulator fault evse_processing_ongoing: CableCheck Ongoing for {self.t - start:.0f} s "
                    f"(V2G_EVCC_CableCheck_Timeout {limit:.0f} s)")
                self.ev_gives_up(reaction, before_power=True)
        s.processing = "Finished"

    def precharge(self) -> None:
        """PreCharge: the EV asks for its battery voltage at ≤ 2 A (IEC 61851-23 CC.5.2,
        PROTOCOL_FACTS §4D); the EVSE ramps its output; the EV goes on once two consecutive
        readings are within ``precharge_tolerance_v`` of the target (a stable voltage), and
        gives up after its PreCharge timeout (7 s DIN / ISO-2, 10 s -20)."""
        s, b, tm = self.s, self.b, self.tm
        target = s.target_voltage_v = round(s.bat.ocv(), 1)
        s.target_current_a = self.ev.precharge_current_a
        s.dc.voltage_v = 0.0
        s.dc.current_a = 0.0
        timeout = phase_timeout(PRECHARGE_TIMEOUT, self.protocol)
        period = tm.precharge_period_s
        start = self.t
        last = [None]

        def ramp():
            dt = period if last[0] is None else self.t - last[0]
            last[0] = self.t
            if b.precharge_overshoot_v is not None:
                if b.precharge_overshoot_settle_s is None:      # stays above the target
                    s.dc.voltage_v = s.dc.underdamped(self.t - start, target + b.precharge_overshoot_v,
                                                      0.25 * b.precharge_overshoot_v, 0.8)
                else:
                    s.dc.voltage_v = s.dc.underdamped(self.t - start, target, b.precharge_overshoot_v,
                                                      b.precharge_overshoot_settle_s)
            else:
                s.dc.precharge_step(target, dt, stall_v=b.precharge_stall_v)
            s.present_voltage_v = max(0.0, s.dc.voltage_v + self.rng.uniform(-0.3, 0.3))
            if b.precharge_not_ready:
                s.evse_status_code = "EVSE_NotReady"

        stable = 0
        i = 0
        while True:
            s.ev_processing = "Ongoing"
            x = self.ex("PreCharge", "precharge", think=None if i == 0 else max(0.005, period - tm.latency_s),
                        before_response=ramp)
            i += 1
            within = abs(s.present_voltage_v - target) <= self.ev.precharge_tolerance_v
            ready = s.evse_status_code == "EVSE_Ready" or b.precharge_not_ready == "proceed"
            stable = stable + 1 if within else 0
            if stable >= 2 and ready:
                if self.protocol == "ISO 15118-20":
                    s.ev_processing = "Finished"
                    self.ex("PreCharge", "precharge", think=max(0.005, period - tm.latency_s), before_response=ramp)
                break
            if self.t - start > timeout:
                why = ("the EVSE reported EVSE_NotReady" if not ready else
                       f"the EVSE output is {s.present_voltage_v:.1f} V (target {target:.1f} V)")
                x.response.comments.append(f"simulator: EV PreCharge timeout {timeout:.0f} s: {why}")
                self.ev_gives_up(b.precharge_stall_reaction, before_power=True)
        s.evse_status_code = "EVSE_Ready"
        s.ev_processing = "Finished"

    def power_delivery(self, progress: str) -> None:
        """PowerDelivery(Start / Stop / Renegotiate). -20 DC: the EV first reports
        EVProcessing Ongoing (Josev EV in ISO-20_mTLS_DC_DS5366_Josev)."""
        s = self.s
        s.charge_progress = progress
        s.charging_complete = progress == "Stop" and s.bat.full
        if self.protocol == "ISO 15118-20" and progress == "Start" and self.mode == "DC":
            s.ev_processing = "Ongoing"
            self.ex("PowerDelivery", "powerdelivery")
        s.ev_processing = "Finished"
        self.ex("PowerDelivery", "powerdelivery")

    def loop(self) -> bool:
        """The charge loop (CurrentDemand / ChargingStatus / -20 ChargeLoop) following the
        battery model; returns True when the session pauses. Ends when the battery reaches its
        target SoC (ChargingComplete), after ``loop_cycles``, or when a fault ends it."""
        s, b, tm = self.s, self.b, self.tm
        period, lat = self.loop_period(), self.loop_latency()
        cycles = tm.loop_cycles
        pause_at = self.pause.get("at_cycle") if self.pause else None
        reneg_at = self.renegotiation.get("at_cycle") if self.renegotiation else None
        stop = b.stop_charging
        stop_started = None
        excess = b.current_excess
        err = b.ev_error
        cycle = getattr(self, "_cycle", 0)
        i_req = getattr(self, "_i_req", 0.0)
        receipt_pending = False
        while True:
            cycle += 1
            self._cycle = cycle
            dt = period
            # ---------------- the EV's side of this cycle
            s.target_voltage_v = s.bat.max_voltage_v       # the EV's charge-end voltage
            if self.mode == "DC":
                i_req = s.bat.current_request(i_req, dt) if not s.bat.full else 0.0
                s.target_current_a = max(0.0, i_req)
                s.energy_left_wh = max(0.0, (s.bat.soc_target - s.bat.soc) / 100.0 * s.bat.capacity_wh)
                power = max(1.0, s.present_voltage_v * s.present_current_a)
                s.remaining_full_s = min(172800.0, s.bat.remaining_time_s(power))
                s.remaining_bulk_s = min(172800.0, max(0.0, s.remaining_full_s * 0.8))
            s.charging_complete = s.bat.full
            s.bulk_complete = s.bat.soc >= s.bat.taper_soc
            if err and cycle == err["cycle"]:
                if self.protocol == "ISO 15118-20":
                    s.ev_termination_code = err["code"]
                    s.ev_termination_explanation = "EV error during charging"
                else:
                    s.ev_error = err["code"]
                    s.ev_ready = False
            s.meter_info_requested = (self.protocol == "ISO 15118-20" and cycle % max(1, tm.receipt_every) == 1)
            step = "ChargeLoop"
            if receipt_pending:
                step = "MeteringReceipt"

            # ---------------- the SECC's side
            def secc():
                if self.mode == "DC":
                    v = s.bat.terminal_voltage(s.dc.current_a)
                    cur = s.dc.current_step(s.target_current_a, v, dt)
                    s.present_voltage_v = s.bat.terminal_voltage(cur) + self.rng.uniform(-0.2, 0.2)
                    # measurement noise, never past the EVSE's own limits
                    cap = min(s.dc.max_current_a, s.dc.max_power_w / max(1.0, s.present_voltage_v))
                    s.present_current_a = max(0.0, min(cap, cur + self.rng.uniform(-0.15, 0.15)))
                    if s.target_current_a <= 0.5:
                        s.present_current_a = max(0.0, min(cap, cur))
                    if excess and excess["cycle"] <= cycle < excess["cycle"] + excess["cycles"]:
                        s.present_current_a = s.dc.max_current_a + excess["excess_a"]
                    s.limits_achieved = s.dc.limits_achieved(s.target_current_a, s.target_voltage_v)
                    s.bat.charge(s.present_voltage_v * s.present_current_a, dt)
                    s.meter_wh += s.present_voltage_v * s.present_current_a * dt / 3600.0
                else:
                    taper = 1.0
                    if s.bat.soc > s.bat.taper_soc:
                        taper = max(s.bat.taper_floor, 1 - (1 - s.bat.taper_floor) * (s.bat.soc - s.bat.taper_soc)
                                    / max(1e-6, 100 - s.bat.taper_soc))
                    if s.bat.full or s.notification == "StopCharging":
                        taper = 0.0
                    p = s.ac.step(s.ev_ac_max_current_a, taper, dt)
                    s.ac_power_w = p
                    s.bat.charge(p, dt)
                    s.meter_wh = s.ac.meter_wh
                if stop and cycle >= stop["cycle"]:
                    s.notification = "StopCharging"
                    s.notification_delay = int(stop["max_delay_s"])
                    if self.protocol != "ISO 15118-20":
                        s.evse_status_code = "EVSE_Shutdown" if self.mode == "DC" else s.evse_status_code
                    if self.mode == "DC":
                        s.dc.current_a *= 0.3
                        s.present_current_a = s.dc.current_a
                if b.emergency_shutdown_cycle is not None and cycle >= b.emergency_shutdown_cycle:
                    s.evse_status_code = "EVSE_EmergencyShutdown"
                    s.notification = "StopCharging"
                    s.notification_delay = 0
                    s.dc.current_a = 0.0
                    s.present_current_a = 0.0
                s.receipt_required = (self.payment == "PnC" and step == "ChargeLoop"
                                      and self.protocol == "ISO 15118-2"   # -20: MeteringConfirmation, not simulated
                                      and cycle % max(1, tm.receipt_every) == 0)
                s.rcd = False

            code = None
            if (b.emergency_shutdown_cycle is not None and cycle == b.emergency_shutdown_cycle
                    and self.protocol == "ISO 15118-20"):
                code = "FAILED"
            think = max(0.005, period - lat) if self.conn.exchanges[-1].phase == "loop" else None
            x = self.ex(step, "loop", think=think, latency=lat, before_response=secc, code=code,
                        exact_latency=b.loop_latency_s is not None)
            receipt_pending = step == "ChargeLoop" and s.receipt_required
            if err and cycle == err["cycle"]:
                x.request.comments.append(f"simulator fault ev_error_code: {err['code']}")
            if excess and cycle == excess["cycle"]:
                x.response.comments.append(
                    f"simulator fault evse_current_above_max: {s.present_current_a:.1f} A > "
                    f"EVSEMaximumCurrentLimit {s.dc.max_current_a:.1f} A")
            if b.emergency_shutdown_cycle is not None and cycle == b.emergency_shutdown_cycle:
                x.response.comments.append("simulator fault evse_emergency_shutdown")
                if code:
                    self.secc_closes(code)
                self._i_req = 0.0
                return False
            if stop and cycle == stop["cycle"]:
                x.response.comments.append(stop.get("comment") or
                    f"simulator fault stop_charging_ignored: EVSENotification StopCharging, "
                    f"NotificationMaxDelay {stop['max_delay_s']} s; the EV ignores it")
                stop_started = self.t
            if stop and stop_started is not None and self.t - stop_started >= stop["ignored_s"]:
                reaction = stop["evse_reaction"]
                if reaction in ("rst", "fin"):
                    self.conn.ending = Ending(by="EVSE", how=reaction.upper(), after_s=0.02,
                                              reason="EV ignored StopCharging")
                    raise SessionOver
                self.b.stop_charging = stop = None
                return False
            if err and cycle == err["cycle"]:
                if self.protocol == "ISO 15118-20":
                    self.session_stop("Terminate")
                    raise SessionOver
                self._i_req = 0.0
                return False
            if pause_at is not None and cycle >= pause_at:
                self._i_req = i_req
                return True
            if reneg_at is not None and cycle == reneg_at:
                self.renegotiate()
                reneg_at = None
                continue
            if receipt_pending:
                continue            # a requested MeteringReceipt comes first ([V2G2-577], [V2G2-795])
            if s.bat.full and s.charging_complete and step == "ChargeLoop":
                break                   # the EV said ChargingComplete in this request
            if b.ev_stop_cycle is not None and cycle >= b.ev_stop_cycle:
                break                   # the EV stops (a fault's reason: faults_charging.py)
            if cycle >= cycles and not (stop and stop_started is not None):
                break
        self._i_req = 0.0
        return False

    def renegotiate(self) -> None:
        """ISO-2 renegotiation: this cycle's response already carries ReNegotiation (set
        here, rebuilt); the EV answers with PowerDelivery(Renegotiate), then
        ChargeParameterDiscovery again, and (DC) CableCheck and PreCharge (Josev EVCC)."""
        s = self.s
        last = self.conn.exchanges[-1]
        s.notification = "ReNegotiation"
        s.response_code = "OK"
        last.response.tree = self.d.response("ChargeLoop", s)
        last.response.invalidate()
        last.response.comments.append("simulator: SECC requests a renegotiation (EVSENotification ReNegotiation)")
        s.notification = "None"
        self.power_delivery("Renegotiate")
        self.parameters()
        if self.mode == "DC":
            self.cable_check()
            self.precharge()
        self.power_delivery("Start")

    def stop_power(self) -> None:
        """PowerDelivery(Stop) and, DC, WeldingDetection while the output voltage decays
        ([V2G2-620]; PROTOCOL_FACTS §4D)."""
        s = self.s
        s.target_current_a = 0.0
        self.power_delivery("Stop")
        s.notification = "None"
        s.notification_delay = 0
        if s.evse_status_code != "EVSE_EmergencyShutdown":
            s.evse_status_code = "EVSE_Ready"
        if self.mode != "DC":
            return
        s.ev_ready = False
        period = self.tm.welding_period_s
        for i in range(self.tm.welding_cycles):
            def discharge():
                s.present_voltage_v = max(0.0, s.dc.discharge_step(period) + self.rng.uniform(-0.2, 0.2))
                s.present_current_a = 0.0
            done = i == self.tm.welding_cycles - 1
            s.ev_processing = "Finished" if done else "Ongoing"
            self.ex("WeldingDetection", "welding", think=None if i == 0 else max(0.005, period - self.tm.latency_s),
                    before_response=discharge)
            if s.present_voltage_v < 60.0 and self.protocol != "ISO 15118-20":
                break
            if s.present_voltage_v < 60.0 and done:
                break
        s.ev_processing = "Finished"
