"""The control pilot of a simulated session: when the EV and the EVSE change the pilot, and the
CP evidence frames that report it (samples/control_pilot.py encodes them).

The EV sets the pilot's level (its resistors: A no EV, B connected, C ready for energy), the
EVSE its PWM (none = 100 %, 5 % = digital communication, or a nominal duty that offers a
current). The schedule follows the session as written (the V2G messages with their capture
times), so faults that move or cut messages move the pilot with them:

* plug-in (A → B1) ``plug_in_s`` before SLAC, an A1 report 1 s before that; the EVSE's 5 %
  ``pwm_delay_s`` after the plug-in (dsV2Gshark ISO-2_DC_Pause_DS5366: plug-in 22 s into
  the capture, 5 % 1 s later, CM_SLAC_PARM.REQ 3 s after that);
* DC: B → C between ChargeParameterDiscoveryRes and the first CableCheckReq (the EV is in C
  before CableCheck, [V2G2-917]); AC: before PowerDeliveryReq (Start) ([V2G2-847]: at the
  latest 250 ms after it; the ISO-2_AC_DS5366 EV switches just before the request);
* C → B after PowerDelivery (Stop) ([V2G2-848]: ≤ 250 ms after the request; DC right after
  the response, AC 10 ms after the request, as the captures show);
* pause (SessionStopReq ChargingSession = Pause): the EVSE goes to 100 % (B1) 2.5 s after
  SessionStopRes; the EV sleeps in B and wakes the EVSE with a 0.5 s B → C → B pulse about
  4 s before its next SDP request; the EVSE answers with 5 % 20 ms later (the pause capture:
  a 0.59 s pulse, 5 % 20 ms after it; its EV did not redo SLAC, nor does the simulator);
* the end: the EVSE's PWM off (B1) 2.5 s after the last message, the EV unplugged (A)
  ``unplug_s`` after the connection closed.

Basic charging (``protocol = "IEC 61851-1"``, no SLAC, no V2G): A → B1 → B2 at the nominal
duty cycle (from the EVSE's AC maximum and the cable's PP rating, IEC 61851-1 Table A.8) →
C2 ``ev_ready_s`` later (the EVSE closes its contactor 0.25 s after, the EV draws the PWM
limit or its own lower maximum) → B2 when the battery reaches its target or after
``charge_s`` → B1 → A.

The dSPACE diagnostics also carry what the test system measures: DC — the EVSE's output
(target / present voltage and current from the session's exchanges, the cable-check voltage
ramp, the contactor closed from CableCheck to PowerDelivery (Stop)); AC — the phase current
and 230 V while the contactor is closed. With ``battery_voltage_v`` reported the test system
is taken to be the EV's (a DS5366 emulating the EV): its frames come from the EV's MAC and
"HV Contactor" is the EV's battery contactor, closed from the end of PreCharge to
PowerDelivery (Stop).

:class:`ControlPilot` is the ``[control_pilot]`` table and the knobs samples/faults_cp.py
turns; :class:`CpRun` makes a session's frames (wire.write_session calls ``frames``).
"""
from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field

from . import control_pilot as cp
from .physical import AcSupply, Battery

BASIC = "IEC 61851-1"
EVIDENCE = ("st", "dspace", "both")
#: The ``[control_pilot]`` keys a scenario may set (the other fields are the faults' knobs).
TABLE_KEYS = ("evidence", "plug_in_s", "pwm_delay_s", "unplug_s", "interval_s", "pp_resistor_ohm",
              "battery_voltage_v", "duty_pct", "ev_ready_s", "charge_s")
#: Seconds from the last V2G message (SessionStopRes) to the EVSE's PWM off (the captures: 2.5 s).
PWM_OFF_S = 2.5
#: dSPACE report right after the ST indication of the same change (the captures: 1-2 ms).
SCS_AFTER_S = 0.002


@dataclass
class ControlPilot:
    """A session's ``[control_pilot]`` table (units in the names) and the CP faults' knobs.

    Table: ``evidence`` "st" | "dspace" | "both" (None: no CP evidence, the default);
    ``plug_in_s`` plug-in → CM_SLAC_PARM.REQ (3 s); ``pwm_delay_s`` plug-in → the EVSE's PWM
    (1 s); ``unplug_s`` the connection's close → unplug (3 s); ``interval_s`` dSPACE reports
    while energy flows (0.25 s; 0: on changes only); ``pp_resistor_ohm`` the cable's PP
    resistor (220 Ω = 32 A); ``battery_voltage_v`` 0 (not reported, as the dSPACE EVSE
    emulator), "battery" (the simulated battery's voltage, DC) or a constant (V, DC);
    basic charging only: ``duty_pct`` (default from the EVSE's AC maximum and the cable),
    ``ev_ready_s`` B2 → C2 (1 s), ``charge_s`` longest C2 (20 s).

    Knobs (samples/faults_cp.py): ``hlc_duty_pct`` the EVSE's duty cycle for HLC (5 %);
    ``duty_switch`` {"after": response name, "duty_pct"}; ``ev_stays_b``;
    ``stays_c_after_stop``; ``loop_events`` [{"cycle", "kind": "B" | "A" | "E" | "F",
    "duration_s", "comment"}]; ``noise`` {"B": [V…], "C": [V…]}; ``no_sleep_in_pause``;
    ``wakeup_unanswered`` {"resume_t", "then_s"}; ``ev_contactor_close_v``; ``no_ev_s``
    (basic: the EV never draws, unplugged that long after the session's start);
    ``comments`` (kind → pcapng comment of the frames it causes)."""

    evidence: str | None = None
    plug_in_s: float = 3.0
    pwm_delay_s: float = 1.0
    unplug_s: float = 3.0
    interval_s: float = 0.25
    pp_resistor_ohm: float = 220.0
    battery_voltage_v: float | str = 0.0
    duty_pct: float | None = None
    ev_ready_s: float = 1.0
    charge_s: float = 20.0
    hlc_duty_pct: float = cp.DIGITAL_DUTY_PCT
    duty_switch: dict | None = None
    ev_stays_b: bool = False
    stays_c_after_stop: bool = False
    loop_events: list = field(default_factory=list)
    noise: dict | None = None
    no_sleep_in_pause: bool = False
    wakeup_unanswered: dict | None = None
    ev_contactor_close_v: float | None = None
    no_ev_s: float | None = None
    comments: dict = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """Whether the session carries CP evidence."""
        return self.evidence is not None

    @property
    def st(self) -> bool:
        """Whether the capture carries the ST / IoTecha VS_CP_STATE.IND reports."""
        return self.evidence in ("st", "both")

    @property
    def dspace(self) -> bool:
        """Whether the capture carries the dSPACE MS_SCS_DIAG.IND reports."""
        return self.evidence in ("dspace", "both")

    @property
    def battery_reported(self) -> bool:
        """Whether the dSPACE reports a battery voltage (then it speaks for the EV)."""
        return self.battery_voltage_v not in (0, 0.0)

    def basic_duty(self, evse_ac_max_a: float) -> float:
        """The nominal duty cycle (%) of basic charging: ``duty_pct``, else the one that
        signals min(the EVSE's AC maximum, the cable's PP rating) (IEC 61851-1 Table A.8, B.2)."""
        if self.duty_pct is not None:
            return float(self.duty_pct)
        cable = cp.cable_rating_a(self.pp_resistor_ohm) or evse_ac_max_a
        return cp.duty_for_current(min(evse_ac_max_a, cable))


@dataclass
class _Ev:
    """One pilot event: ``kind`` "ev" (the EV's level: A-D), "duty" (the EVSE's %), "error"
    (E / F, None ends it), "noise" (a reading in V), "contactor" (True closed)."""

    t: float
    kind: str
    value: object
    comment: str | None = None


def _progress(m) -> str | None:
    """"Start" / "Stop" / "Renegotiate" of a PowerDeliveryReq (DIN: ReadyToChargeState)."""
    from .script import body_of
    b = body_of(m.tree) if m.tree else {}
    if "ChargeProgress" in b:
        return b["ChargeProgress"]
    if "ReadyToChargeState" in b:
        return "Start" if b["ReadyToChargeState"] else "Stop"
    return None


def _base(m) -> str:
    """A message's name without its DC_ / AC_ prefix and its Req / Res suffix."""
    n = m.name
    for p in ("DC_", "AC_"):
        n = n[len(p):] if n.startswith(p) else n
    return n[:-3] if n.endswith(("Req", "Res")) else n


class CpRun:
    """The CP evidence of one session (module docstring). ``cfg`` the session's
    :class:`ControlPilot`; ``mode`` "AC" / "DC"; ``basic`` True for IEC 61851-1 basic
    charging; ``evse_mac`` / ``ev_mac`` the hosts (reports come from the EVSE's, the dSPACE
    from the EV's when it reports a battery voltage); ``t_plug`` the plug-in (epoch s);
    ``evse`` / ``ev`` the flow's EvseParams / EvParams; ``battery`` the scenario's
    ``[battery]`` table; ``rng`` a seeded source (readings' noise)."""

    def __init__(self, cfg: ControlPilot, *, mode: str, basic: bool, evse_mac: str, ev_mac: str, t_plug: float,
                 evse, ev, battery: dict, rng: random.Random):
        self.cfg, self.mode, self.basic = cfg, mode, basic
        self.evse_mac, self.ev_mac, self.t_plug = evse_mac, ev_mac, t_plug
        self.evse, self.ev, self.battery = evse, ev, dict(battery)
        self.rng = rng
        self.events: list[_Ev] = []
        self.windows: list[tuple[float, float]] = []
        self._bat = Battery(**self.battery)
        self._xs: list = []                 # (time, exchange) of the session, time order
        self._cc: list = []                 # (start, end) of each CableCheck
        self._basic_i: list = []            # (time, current A) of basic charging
        self._end = math.inf                # after this: idle values
        self._unplugged = False             # a fault unplugged the EV in the charge loop

    # ------------------------------------------------------------------ the schedule
    def add(self, t: float, kind: str, value, comment: str | None = None) -> None:
        """Schedule a pilot event (:class:`_Ev`) at epoch ``t`` (s)."""
        self.events.append(_Ev(t, kind, value, comment))

    def _ev_at(self, t: float) -> str:
        cur = "A"
        for e in sorted((e for e in self.events if e.kind == "ev"), key=lambda e: e.t):
            if e.t > t:
                break
            cur = e.value
        return cur

    def _noise(self, letter: str, t0: float, t1: float) -> None:
        volts = (self.cfg.noise or {}).get(letter) or []
        for i, v in enumerate(volts):
            self.add(t0 + (t1 - t0) * (i + 1) / (len(volts) + 1), "noise", float(v),
                     self.cfg.comments.get("noise"))

    def _plug(self) -> float:
        """A1 report, plug-in (B1), the EVSE's PWM; returns the PWM's start (epoch s)."""
        self.add(self.t_plug - 1.0, "ev", "A")
        self.add(self.t_plug, "ev", "B")
        t_pwm = self.t_plug + self.cfg.pwm_delay_s
        return t_pwm

    def schedule_basic(self) -> None:
        """Basic charging (IEC 61851-1, no HLC; module docstring)."""
        c = self.cfg
        t_pwm = self._plug()
        if c.no_ev_s is not None:
            self.add(t_pwm, "duty", cp.DIGITAL_DUTY_PCT, c.comments.get("duty"))
            self._noise("B", t_pwm, t_pwm + 2.0)
            t_out = self.t_plug - 1.0 + c.no_ev_s
            self.add(t_out, "ev", "A", c.comments.get("unplug"))
            self.add(t_out + 0.03, "duty", 100.0)
            return
        duty = c.basic_duty(self.evse.ac_max_current_a)
        self.add(t_pwm, "duty", duty, c.comments.get("duty"))
        self._noise("B", t_pwm, t_pwm + c.ev_ready_s)
        t_c = t_pwm + c.ev_ready_s
        self.add(t_c, "ev", "C")
        t_k = t_c + 0.25
        self.add(t_k, "contactor", True)
        # the EV draws what the PWM allows (or its own lower maximum), tapered near full
        limit = cp.current_for_duty(duty) or 0.0
        ac = AcSupply(nominal_voltage_v=self.evse.ac_nominal_voltage_v, max_current_a=limit,
                      phases=self.evse.ac_phases)
        bat, dt = self._bat, (c.interval_s or 0.25)
        t = t_k
        self._basic_i = [(t, 0.0)]
        while t - t_c < c.charge_s and not bat.full:
            taper = 1.0
            if bat.soc > bat.taper_soc:
                taper = max(bat.taper_floor, 1 - (1 - bat.taper_floor) * (bat.soc - bat.taper_soc)
                            / max(1e-6, 100 - bat.taper_soc))
            bat.charge(ac.step(self.ev.ac_max_current_a, taper, dt), dt)
            t += dt
            self._basic_i.append((t, ac.current_a))
        self._noise("C", t_c + 0.3, t)
        self.add(t, "ev", "B")
        self.add(t + 0.25, "contactor", False)
        self._basic_i.append((t + 0.25, 0.0))
        self.windows.append((t_k, t + 0.25))
        self.add(t + PWM_OFF_S, "duty", 100.0)
        self.add(t + max(c.unplug_s, 0.05), "ev", "A")
        self.add(t + max(c.unplug_s, 0.05) + 0.03, "duty", 100.0)

    def schedule_hlc(self, plan, written) -> None:
        """A session with SLAC and V2G (module docstring): the events from ``plan`` (the
        :class:`~.script.SessionPlan`) and ``written`` ((Message, epoch s) as sent)."""
        c = self.cfg
        t_of = {id(m): t for m, t in written}
        t_pwm = self._plug()
        hlc = c.hlc_duty_pct
        self.add(t_pwm, "duty", hlc, c.comments.get("duty"))
        self._noise("B", t_pwm, self.t_plug + c.plug_in_s)
        loops: list = []            # (request t, response t) of the charge-loop exchanges
        last_stop = None            # (SessionStopRes t, ChargingSession)
        switched = False            # the duty_switch knob applied
        conns = plan.connections
        for ci, conn in enumerate(conns):
            prev = conn.v2g_start_t
            c_done = k_closed = False
            t_cc = t_pd_stop = None
            pre_res = last_name = None
            for x in conn.exchanges:
                a = t_of.get(id(x.request))
                if a is None:
                    continue
                b = t_of.get(id(x.response)) if x.response is not None else None
                self._xs.append((b if b is not None else a, x))
                name = _base(x.request)
                prog = _progress(x.request) if name == "PowerDelivery" else None
                if c.duty_switch and x.response is not None and x.response.name == c.duty_switch["after"] \
                        and b is not None and not switched:
                    switched = True
                    self.add(b + 0.01, "duty", float(c.duty_switch["duty_pct"]), c.comments.get("duty_switch"))
                enter_c = (name == "CableCheck") if self.mode == "DC" else (prog == "Start")
                if enter_c and not c_done:
                    c_done = True
                    if not c.ev_stays_b:
                        self.add(prev + (a - prev) / 2, "ev", "C")
                    elif c.comments.get("stays_b"):
                        self.add(prev + (a - prev) / 2, "mark", None, c.comments["stays_b"])
                if name == "CableCheck" and self.mode == "DC":
                    if last_name != "CableCheck":       # a CableCheck run (again after a renegotiation)
                        self._cc.append([a, b or a])
                    if t_cc is None:
                        t_cc = a
                        if not c.battery_reported:
                            self.add(a + 0.03, "contactor", True)
                    self._cc[-1][1] = b or a
                if name == "PreCharge" and b is not None:
                    pre_res = b
                    v = x.state.get("voltage_v", 0.0)
                    if (c.ev_contactor_close_v is not None and not k_closed and c.battery_reported
                            and v >= c.ev_contactor_close_v):
                        k_closed = True
                        self.add(b + 0.02, "contactor", True, c.comments.get("contactor"))
                if prog == "Start":
                    if self.mode == "DC" and c.battery_reported and not k_closed:
                        k_closed = True
                        self.add((pre_res or prev) + (a - (pre_res or prev)) / 2, "contactor", True)
                    if self.mode == "AC" and b is not None and not k_closed:
                        k_closed = True
                        self.add(b + 0.07, "contactor", True)
                        self.windows.append((b + 0.07, math.inf))
                if x.phase == "loop" and _base(x.request) in ("CurrentDemand", "ChargingStatus", "ChargeLoop"):
                    loops.append((a, b))
                if prog == "Stop":
                    t_pd_stop = b if b is not None else a
                    if not c.stays_c_after_stop:
                        t_b = (b + 0.03) if (self.mode == "DC" and b is not None) else \
                            a + min(0.01, ((b or a + 0.02) - a) / 2)
                        self.add(t_b, "ev", "B")
                    elif c.comments.get("stays_c"):
                        self.add(b or a, "mark", None, c.comments["stays_c"])
                    if k_closed or (self.mode == "DC" and not c.battery_reported and t_cc is not None):
                        self.add(a + (0.04 if self.mode == "DC" else 0.25), "contactor", False)
                        k_closed = False
                    if self.mode == "AC" and self.windows and self.windows[-1][1] == math.inf:
                        self.windows[-1] = (self.windows[-1][0], a + 0.25)
                if name == "SessionStop" and b is not None:
                    last_stop = (b, (x.request.tree and _session_kind(x.request)) or "Terminate")
                prev = b if b is not None else a
                last_name = name
            t_close = self._close_time(conn, t_of)
            if self.mode == "DC" and t_cc is not None:
                self.windows.append((t_cc, (t_pd_stop + 0.3) if t_pd_stop is not None else t_close))
                if t_pd_stop is None and not c.battery_reported:
                    self.add(t_close + 0.2, "contactor", False)
            if self.mode == "AC" and self.windows and self.windows[-1][1] == math.inf:
                self.windows[-1] = (self.windows[-1][0], t_close)
                self.add(t_close + 0.2, "contactor", False)
            if last_stop and last_stop[1] == "Pause" and ci + 1 < len(conns):
                self._pause(last_stop[0], conns[ci + 1].start_t)
                last_stop = None
        self._xs.sort(key=lambda p: p[0])
        self._loop_events(loops)
        if loops:
            self._noise("C", loops[0][0], loops[-1][0])
        self._finish(plan, written, conns, t_of)

    def _pause(self, t_stop: float, t_resume: float) -> None:
        """The pause between two connections (module docstring)."""
        c, hlc = self.cfg, self.cfg.hlc_duty_pct
        t_off = t_stop + PWM_OFF_S
        if c.no_sleep_in_pause:
            self.add(t_stop + 0.5, "ev", "C", c.comments.get("no_sleep"))
            self.add(t_off, "duty", 100.0)
            self.add(max(t_off + 0.5, t_resume - 4.0), "duty", hlc)
            return
        wake = max(t_off + 1.0, t_resume - 4.0)
        if wake + 0.6 > t_resume - 0.5:
            return                  # too short a pause: the EVSE keeps its 5 %
        self.add(t_off, "duty", 100.0)
        self.add(wake, "ev", "C")
        self.add(wake + 0.5, "ev", "B")
        self.add(wake + 0.52, "duty", hlc)

    def _loop_events(self, loops: list) -> None:
        """The faults' events in charge-loop cycles (1-based) of the session."""
        for le in self.cfg.loop_events:
            k = int(le["cycle"])
            if not 1 <= k <= len(loops):
                continue
            a, b = loops[k - 1]
            t = (b if b is not None else a) + 0.02
            kind = le["kind"]
            if kind in ("B", "A"):
                self.add(t + 0.01, "ev", kind, le.get("comment"))
                if kind == "A":             # the EVSE sees A: PWM off, contactor open
                    self.add(t + 0.04, "duty", 100.0)
                    self.add(t + 0.06, "contactor", False)
                    self._unplugged = True
            else:                   # E / F: the EVSE stops its PWM, the EV opens S2
                self.add(t, "error", kind, le.get("comment"))
                self.add(t + 0.001, "duty", 100.0)
                self.add(t + 0.05, "contactor", False)
                self.add(t + 0.1, "ev", "B")
                self.add(t + float(le.get("duration_s", 2.0)), "error", None)

    @staticmethod
    def _close_time(conn, t_of) -> float:
        ts = [t_of[id(m)] for x in conn.exchanges for m in (x.request, x.response)
              if m is not None and id(m) in t_of]
        if not ts:
            return conn.start_t + 0.5
        return max(ts) + (conn.ending.after_s if conn.ending.how != "none" else 0.0)

    def _finish(self, plan, written, conns, t_of) -> None:
        """The session's end: the EV back to B, the EVSE's PWM off, the unplug."""
        c = self.cfg
        if self._unplugged:
            return                  # unplugged in the loop: nothing follows
        times = [t for _, t in written]
        if plan.slac is not None:
            times += [f.t for f in plan.slac.frames]
        times += [cn.start_t for cn in conns]
        t_last = max(times, default=self.t_plug + c.plug_in_s)
        t_close = max([t_last] + [self._close_time(cn, t_of) for cn in conns[-1:]])
        self._end = t_close
        if c.wakeup_unanswered:
            wu = c.wakeup_unanswered
            t_off = t_last + PWM_OFF_S
            wake = max(t_off + 1.0, wu["resume_t"] - 4.0)
            self.add(t_off, "duty", 100.0)
            self.add(wake, "ev", "C", c.comments.get("wakeup"))
            self.add(wake + 0.5, "ev", "B")
            self.add(wake + 0.5 + float(wu["then_s"]), "ev", "A")
            return
        t_off = t_last + PWM_OFF_S
        t_out = max(t_last, t_close) + max(c.unplug_s, 0.05)
        if c.stays_c_after_stop and self._ev_at(t_close) in ("C", "D"):
            # the EV opens S2 only when it sees the PWM gone (C2 → C1 → B1)
            self.add(t_off + 0.5, "ev", "B")
            t_out = max(t_out, t_off + 1.0)
        elif self._ev_at(t_close) in ("C", "D"):
            self.add(t_close + 0.2, "ev", "B")
        if t_off < t_out:
            self.add(t_off, "duty", 100.0)
        self.add(t_out, "ev", "A")
        self.add(t_out + 0.03, "duty", 100.0)

    # ------------------------------------------------------------------ measured values
    def _state_at(self, t: float):
        i = bisect_right([p[0] for p in self._xs], t)
        return self._xs[i - 1][1] if i else None

    def values(self, t: float, closed: bool) -> dict:
        """What the test system measures at epoch ``t`` with its contactor ``closed``:
        target / present current (A) and voltage (V), battery voltage (V; 0 not reported)."""
        dc = self.mode == "DC"
        out = {"ti": -0.1 if dc else 0.0, "pi": 0.0, "tv": 0.0, "pv": 0.2 if dc else 1.0}
        soc, cur = self._bat.soc, 0.0
        if self.basic:
            i = bisect_right([p[0] for p in self._basic_i], t)
            amps = self._basic_i[i - 1][1] if i else 0.0
            if closed:
                out.update(pi=amps, pv=self.evse.ac_nominal_voltage_v)
        elif t <= self._end + 0.5:
            x = self._state_at(t)
            st = x.state if x is not None else {}
            soc = st.get("soc", soc)
            if not dc:
                if closed:
                    out.update(pi=st.get("ac_current_a", 0.0) if x is not None and x.phase == "loop" else 0.0,
                               pv=self.evse.ac_nominal_voltage_v)
            elif x is not None:
                self._dc_values(t, x, st, out, closed)
                cur = out["pi"]
        out["bv"] = self._battery_v(soc, cur)
        return out

    def _dc_values(self, t: float, x, st: dict, out: dict, closed: bool) -> None:
        cc = next((w for w in self._cc if w[0] <= t <= w[1] + 0.1), None)
        name = _base(x.request)
        stopping = not closed and x.phase == "loop"         # the contactor opened at PowerDelivery (Stop)
        if cc is not None:
            # the isolation test: the output rises at 400 V/s to the test voltage, and is
            # discharged at the end (ISO-2_DC_Pause_DS5366: 460 V, then 434 → 34 V)
            v_cc = min(self.evse.max_voltage_v, self._bat.max_voltage_v)
            fall = cc[1] - 0.25
            v = min(v_cc, 400.0 * (t - cc[0]))
            if t < fall:
                out.update(ti=1.0, tv=v_cc, pv=v)
            else:
                out.update(ti=-0.5, tv=0.0, pv=v * math.exp(-(t - fall) / 0.08))
        elif not stopping and (x.phase in ("precharge", "loop")
                               or (name == "PowerDelivery" and _progress(x.request) != "Stop")):
            out.update(ti=st.get("target_current_a", 0.0), pi=st.get("current_a", 0.0),
                       tv=st.get("target_voltage_v", 0.0), pv=st.get("voltage_v", 0.0))
        elif stopping or x.phase == "welding" or name == "PowerDelivery":
            out.update(ti=-1.0, pi=0.0, tv=0.0, pv=st.get("voltage_v", 0.0))

    def _battery_v(self, soc: float, current_a: float) -> float:
        bv = self.cfg.battery_voltage_v
        if bv in (0, 0.0):
            return 0.0
        if bv == "battery":
            self._bat.soc = soc
            return self._bat.ocv() + current_a * self._bat.internal_resistance_ohm
        return float(bv)

    # ------------------------------------------------------------------ frames
    def frames(self, plan, written) -> list[tuple[float, bytes, list[str]]]:
        """The session's CP frames: (epoch s, Ethernet frame, pcapng comments), for
        wire.write_session. ``written``: the session's (Message, epoch s) as sent."""
        self.events, self.windows = [], []
        if self.basic:
            self.schedule_basic()
        else:
            self.schedule_hlc(plan, written)
        items = [(e.t, 0, i, e) for i, e in enumerate(self.events)]
        step = self.cfg.interval_s
        if step > 0 and self.cfg.dspace:
            n = len(items)
            busy = sorted(e.t for e in self.events if e.kind != "mark")
            for a, b in self.windows:
                t = a + step
                while t < b - 1e-6:
                    j = bisect_right(busy, t)          # no tick within 50 ms of a change's report
                    if not ((j and t - busy[j - 1] < 0.05) or (j < len(busy) and busy[j] - t < 0.05)):
                        items.append((t, 1, n, None))
                        n += 1
                    t += step
        items.sort(key=lambda it: (it[0], it[1], it[2]))
        out: list = []
        ev, duty, err, closed = "A", 100.0, None, False
        shown = None
        reading = 0.0
        self._pending: list[str] = []       # comments of "mark" events, for the next frame
        for t, _, _, e in items:
            if e is None:
                self._report(out, t, ev, duty, err, closed, reading, st=False)
                continue
            if e.kind == "mark":
                self._pending.append(e.comment)
                continue
            if e.kind == "contactor":
                if bool(e.value) != closed:
                    closed = bool(e.value)
                    if self.cfg.dspace:
                        self._report(out, t, ev, duty, err, closed, reading, st=False, comment=e.comment)
                    elif e.comment:
                        self._pending.append(e.comment)
                continue
            if e.kind == "noise":
                self._report(out, t, ev, duty, err, closed, e.value, st=True, comment=e.comment)
                self._report(out, t + 0.05, ev, duty, err, closed, reading, st=True)
                continue
            if e.kind == "ev":
                ev = e.value
            elif e.kind == "duty":
                duty = float(e.value)
            elif e.kind == "error":
                err = e.value
            letter = err or ev
            pwm = cp.pwm_on(duty) and err is None
            now = (letter, pwm, round(duty, 2) if pwm else None)
            if now != shown:
                shown = now
                reading = cp.measured_voltage_v(letter, pwm, self.rng)
                self._report(out, t, ev, duty, err, closed, reading, st=True, comment=e.comment)
        return out

    def _report(self, out: list, t: float, ev: str, duty: float, err, closed: bool, volts: float, *,
                st: bool, comment: str | None = None) -> None:
        """Append the ST indication (``st`` and the evidence has it) and the dSPACE diagnostic
        of the pilot at ``t``."""
        letter = err or ev
        pwm = cp.pwm_on(duty) and err is None
        comments = ([comment] if comment else []) + self._pending
        self._pending = []
        if st and self.cfg.st:
            out.append((t, cp.frame(self.evse_mac, cp.LOCAL_MODEM,
                                    cp.st_cp_state_ind(duty if err is None else 100.0, volts)), comments))
            comments = []
        if not self.cfg.dspace:
            return
        v = self.values(t, closed)
        plugged = letter != "A"
        pp = self.cfg.pp_resistor_ohm * (1.0 + self.rng.uniform(-0.0025, 0.0025)) if plugged else 0.0
        vals = cp.scs_values(pp_ohm=pp, power_type="AC" if self.basic or self.mode == "AC" else "DC",
                             contactor_closed=closed, target_current_a=v["ti"], present_current_a=v["pi"],
                             target_voltage_v=v["tv"], present_voltage_v=v["pv"], battery_voltage_v=v["bv"],
                             cp_state="State_" + cp.state_name(letter, pwm), cp_voltage_v=volts)
        src = self.ev_mac if self.cfg.battery_reported else self.evse_mac
        out.append((t + (SCS_AFTER_S if st and self.cfg.st else 0.0),
                    cp.frame(src, cp.BROADCAST, cp.scs_diag_ind(vals)), comments))


def _session_kind(m) -> str | None:
    from .script import body_of
    return body_of(m.tree).get("ChargingSession")


__all__ = ["ControlPilot", "CpRun", "BASIC", "EVIDENCE", "TABLE_KEYS"]
