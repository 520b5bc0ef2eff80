"""Simulate a scenario: SLAC, SDP, TCP, V2GTP / EXI and the faults, into pcapng bytes.

    from ccs_analyzer.samples import simulate
    sim = simulate("iso2_dc_eim", seed=3)        # a name in samples/scenarios/ or a path
    sim.write("out.pcapng")
    sim.messages                                  # every V2G message as meant, with its time

Deterministic: the same scenario and seed give byte-identical captures (every random choice
comes from ``random.Random`` seeded with the seed and a fixed label; no wall-clock time).

The order of work per session: faults of stage "before" (behaviour, timing, SLAC, SDP, TCP
knobs) → the SLAC run → faults of stage "slac" → the message script (flow.py) → faults of
stage "after" → frames (wire.py). After the last session, faults of stage "capture" act on
the file. Sessions follow each other, ``gap_s`` apart.
"""
from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass, field

from .cp_flow import BASIC, CpRun
from .faults import FAULTS, FaultContext, FaultError, annotate_slac_timers
from .flow import Behaviour, Flow
from .scenario import Scenario, ScenarioError, SessionSpec, load_scenario
from .script import Message, SdpPlan, SessionPlan, TcpPlan
from .slac import build_slac
from .tls import TlsPlan, TlsSimError
from .wire import CaptureBuilder, Endpoints, connect_duration, sdp_duration, write_session


@dataclass
class WrittenMessage:
    """A V2G message as it went on the wire: session number (1-based), time (epoch s),
    the :class:`~.script.Message` (tree, namespace, payload type, wire overrides)."""

    session: int
    time: float
    message: Message

    #: False when the message went inside TLS records whose keys the capture withholds
    readable: bool = True

    @property
    def expect_decoded(self) -> bool:
        """True when a decoder must reproduce ``message.tree`` exactly from the capture."""
        return self.message.decodable and self.readable


@dataclass
class Simulation:
    """The result of :func:`simulate`: the pcapng bytes, the scenario and seed, the session
    plans, every V2G message written (in time order), the faults applied and the TLS
    secrets of the capture's TLS connections (NSS key log lines, whether disclosed in the
    capture or withheld: ``keylog_text()`` is a key log file for Wireshark)."""

    scenario: Scenario
    seed: int
    pcapng: bytes
    sessions: list[SessionPlan]
    messages: list[WrittenMessage]
    faults: list[dict] = field(default_factory=list)
    keylog: list[str] = field(default_factory=list)

    def keylog_text(self) -> str:
        """The TLS secrets as an NSS key log file."""
        return "".join(line + "\n" for line in self.keylog)

    def write(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as f:
            f.write(self.pcapng)


def _rng(seed: int, *labels) -> random.Random:
    return random.Random("/".join(str(x) for x in (seed,) + labels))


def _apply(ctx: FaultContext, spec: SessionSpec, stage: str, applied: list, index: int) -> None:
    for use in spec.faults:
        fd = FAULTS[use.name]
        if fd.stage != stage:
            continue
        try:
            fd.call(ctx, use.params)
        except (FaultError, LookupError) as e:
            raise ScenarioError(f"session {index}: {e}") from None
        applied.append({"session": index, "name": use.name, "level": fd.level, "category": fd.category,
                            "params": {**fd.params, **use.params}})


def simulate(scenario: Scenario | str | os.PathLike, seed: int | None = None) -> Simulation:
    """Simulate ``scenario`` (a :class:`Scenario`, a scenario name or a TOML path) with
    ``seed`` (default: the scenario's). Raises ScenarioError when the scenario or one of its
    faults cannot be applied."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    seed = sc.seed if seed is None else int(seed)
    cb = CaptureBuilder(sc.start)
    plans: list[SessionPlan] = []
    written: list[WrittenMessage] = []
    applied: list[dict] = []
    t = sc.start
    for k, spec0 in enumerate(sc.sessions, start=1):
        spec = copy.deepcopy(spec0)
        if k > 1:
            t += spec.gap_s
        plan, msgs = _session(cb, spec, seed, k, t, applied)
        plans.append(plan)
        written += [WrittenMessage(k, tm, m, id(m) not in cb.unreadable) for m, tm in msgs]
        t = max((f[0] for f in cb.frames), default=t)
    data = cb.pcapng()
    for use in sc.capture_faults:
        fd = FAULTS[use.name]
        try:
            data = fd.fn(None, data, **{**fd.params, **use.params})
        except FaultError as e:
            raise ScenarioError(str(e)) from None
        applied.append({"session": None, "name": use.name, "level": fd.level, "category": fd.category,
                        "params": {**fd.params, **use.params}})
    written.sort(key=lambda w: w.time)
    return Simulation(sc, seed, data, plans, written, applied, list(cb.keylog))


def _control_pilot(spec: SessionSpec, seed: int, k: int, t_plug: float, evse_mac: str) -> CpRun | None:
    """The session's CP evidence (cp_flow.py), None without ``[control_pilot]`` evidence."""
    cpc = spec.control_pilot
    if not cpc.enabled:
        return None
    return CpRun(cpc, mode=spec.mode, basic=spec.protocol == BASIC, evse_mac=evse_mac, ev_mac=spec.ev.mac,
                 t_plug=t_plug, evse=spec.evse, ev=spec.ev, battery=spec.battery, rng=_rng(seed, k, "cp"))


def _basic_session(cb: CaptureBuilder, ctx: FaultContext, spec: SessionSpec, seed: int, k: int, t0: float,
                   applied: list):
    """An IEC 61851-1 basic-charging session: no SLAC, no V2G, the pilot only (cp_flow.py)."""
    _apply(ctx, spec, "before", applied, k)
    plan = SessionPlan(slac=None, connections=[], protocol=BASIC)
    plan.control_pilot = _control_pilot(spec, seed, k, t0 + spec.slac.start_s, spec.evse.mac)
    ctx.plan = plan
    _apply(ctx, spec, "after", applied, k)
    write_session(cb, plan, None, _rng(seed, k, "tcp"), spec.timing.sdp_to_syn_s, spec.timing.tcp_rtt_s)
    return plan, []


def _session(cb: CaptureBuilder, spec: SessionSpec, seed: int, k: int, t0: float, applied: list):
    rng = _rng(seed, k, "ports")
    tm = spec.timing
    ctx = FaultContext(spec=spec, behaviour=Behaviour(), timing=tm, slac_cfg=spec.slac,
                       sdp=SdpPlan(latency_s=tm.sdp_latency_s), tcp=TcpPlan(), rng=_rng(seed, k, "faults"),
                       cp=spec.control_pilot)
    if spec.protocol == BASIC:
        return _basic_session(cb, ctx, spec, seed, k, t0, applied)
    # TLS (samples/tls.py): PnC and -20 EVs ask for it in SDP; the plan's faults edit ctx.tls
    tls = ctx.tls = TlsPlan.for_session(spec.protocol, spec.payment, spec.tls, seed)
    ctx.sdp.security = "TLS" if tls.enabled else "NoTLS"
    _apply(ctx, spec, "before", applied, k)
    try:
        tls.check()
    except TlsSimError as e:
        raise ScenarioError(f"session {k}: {e}") from None
    ev, evse = spec.ev, spec.evse
    # --- SLAC (with CP evidence: ``plug_in_s`` after the plug-in, cp_flow.py)
    slac = None
    t_plug = t0 + spec.slac.start_s
    t_slac = t_plug + (spec.control_pilot.plug_in_s if spec.control_pilot.enabled else 0.0)
    link_ready = t_slac
    if spec.slac.enabled:
        slac = build_slac(spec.slac, ev.mac, ev.modem_mac, evse.mac, evse.modem_mac, _rng(seed, k, "slac"),
                          t_slac)
        ctx.slac = slac
        annotate_slac_timers(ctx)
        _apply(ctx, spec, "slac", applied, k)
        link_ready = slac.link_ready_t
    evse_mac, evse_modem = ctx.evse_override or (evse.mac, evse.modem_mac)
    secc_port = evse.port or rng.randrange(49152, 65536)
    if link_ready is None:          # SLAC failed: nothing follows
        plan = SessionPlan(slac=slac, connections=[], protocol=spec.protocol)
        plan.control_pilot = _control_pilot(spec, seed, k, t_plug, evse_mac)
        write_session(cb, plan, None, rng, tm.sdp_to_syn_s, tm.tcp_rtt_s)
        return plan, []
    # --- the message script
    flow = Flow(protocol=spec.protocol, mode=spec.mode, payment=spec.payment, control_mode=spec.control_mode,
                ev=ev, evse=evse, battery=spec.make_battery(), timing=tm, behaviour=ctx.behaviour,
                rng=_rng(seed, k, "flow"), t0=link_ready, sdp=ctx.sdp, tcp=ctx.tcp,
                sdp_duration=lambda s: sdp_duration(s, tm.sdp_to_syn_s),
                connect_duration=lambda c: connect_duration(c, tm.tcp_rtt_s),
                pause=spec.pause, renegotiation=spec.renegotiation, pnc=spec.pnc,
                tls_duration=lambda s: tls.duration() if tls.used_on(s) else 0.0)
    plan = flow.run()
    plan.slac = slac
    plan.control_pilot = _control_pilot(spec, seed, k, t_plug, evse_mac)
    ctx.plan = plan
    _apply(ctx, spec, "after", applied, k)
    ports = [(ev.tcp_port or rng.randrange(49152, 65536), ev.sdp_port or rng.randrange(49152, 65536))
             for _ in plan.connections]

    def ep_of(i: int) -> Endpoints:
        return Endpoints(ev_mac=ev.mac, evse_mac=evse_mac, ev_modem_mac=ev.modem_mac,
                         evse_modem_mac=evse_modem, secc_port=secc_port, ev_port=ports[i][0],
                         sdp_port=ports[i][1])
    msgs = write_session(cb, plan, ep_of, _rng(seed, k, "tcp"), tm.sdp_to_syn_s, tm.tcp_rtt_s,
                         tls, _rng(seed, k, "tls"))
    return plan, msgs


__all__ = ["simulate", "simulate_command", "Simulation", "WrittenMessage", "ScenarioError"]


def write_roots(folder: os.PathLike, seed: int) -> list[str]:
    """Write the simulator's root certificates for ``seed`` (samples/pki_data.roots) as PEM
    files into ``folder`` (created); return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from .pki_data import roots
    os.makedirs(folder, exist_ok=True)
    out = []
    for i, der in enumerate(roots(seed), 1):
        cert = x509.load_der_x509_certificate(der)
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        path = os.path.join(folder, f"{i:02d}_{cn.replace(' ', '_')}.pem")
        with open(path, "wb") as f:
            f.write(cert.public_bytes(Encoding.PEM))
        out.append(path)
    return out


def simulate_command(scenario: str, output: os.PathLike, seed: int | None,
                     roots_dir: os.PathLike | None = None) -> int:
    """The ``ccs-analyzer simulate`` command: simulate, write, print a one-line summary
    (errors on stderr); with ``roots_dir``, also write the roots the capture's chains lead to
    (:func:`write_roots`). Returns the exit code: 0, or 2 when the scenario cannot be
    simulated."""
    import sys
    try:
        sim = simulate(scenario, seed)
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sim.write(output)
    faults = ", ".join(f["name"] for f in sim.faults) or "none"
    print(f"{output}: {len(sim.pcapng)} bytes, {len(sim.sessions)} session(s), {len(sim.messages)} V2G "
          f"messages, seed {sim.seed}; faults: {faults}")
    if roots_dir is not None:
        paths = write_roots(roots_dir, sim.seed)
        print(f"{roots_dir}: {len(paths)} root certificate(s) (give them to --trust)")
    return 0
