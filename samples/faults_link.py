"""More faults (link level) — registered with :func:`ccs_analyzer.samples.faults.fault`.

SLAC runs that go wrong the way real EVs and chargers make them go wrong (ISO 15118-3 Annex A,
PROTOCOL_FACTS §2; the pyPLC and dSPACE captures of shared/corpus), SDP and TCP set-up faults
(ISO 15118-2 §7.10.1, RFC 9293), and what a capture point records of a session: a sniffer
started late, one that hears one side only (listen mode), a small snap length, a bridge that
records every frame twice (:class:`Sniffer`, applied by wire.write_session).

Faults here that act on frames rather than on the protocol set the link fields of the plan
objects (script.py; wire.py applies them: ``SdpPlan.announce_address``, ``TcpPlan.connect_port``,
``Message.line_losses``, ``SessionPlan.sniffer`` …).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import netframes as nf
from .faults import FaultError, _receiver_reaction, _slac_find, fault
from .slac import SlacFrame

PARM_REQ, PARM_CNF = "CM_SLAC_PARM.REQ", "CM_SLAC_PARM.CNF"
START, MNBC, PROFILE = "CM_START_ATTEN_CHAR.IND", "CM_MNBC_SOUND.IND", "CM_ATTEN_PROFILE.IND"
IND, RSP = "CM_ATTEN_CHAR.IND", "CM_ATTEN_CHAR.RSP"
MATCH_REQ, MATCH_CNF = "CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF"
SET_KEY_REQ, SET_KEY_CNF = "CM_SET_KEY.REQ", "CM_SET_KEY.CNF"
BROADCAST = "ff:ff:ff:ff:ff:ff"
ETH_HDR, IP6_TCP_HDR = 14, 60          # Ethernet II; IPv6 (40) + TCP without options (20)


def _note(f: SlacFrame, text: str) -> None:
    f.comments.append(f"simulator fault {text}")


def _copy(f: SlacFrame, **changes) -> SlacFrame:
    return SlacFrame(changes.get("t", f.t), changes.get("src", f.src), changes.get("dst", f.dst), f.name,
                     {**f.args, **changes.get("args", {})}, list(changes.get("comments", [])))


def _run_id(ctx) -> bytes:
    return bytes(ctx.rng.randrange(256) for _ in range(8))


def _sound_pairs(p):
    """The run's sounds and, for each, the EVSE modem's CM_ATTEN_PROFILE.IND reporting it."""
    sounds = [f for f in p.frames if f.name == MNBC]
    profiles = [f for f in p.frames if f.name == PROFILE and f.src == p.evse_modem_mac]
    if len(profiles) != len(sounds):
        raise FaultError("the SLAC run's sounds and attenuation profiles do not pair up")
    return list(zip(sounds, profiles))


def _average(profiles, offset_db: float) -> list[int]:
    """What the EVSE reports in CM_ATTEN_CHAR.IND: the per-group average of the received
    profiles less the offset (slac.build_slac)."""
    n = len(profiles)
    groups = len(profiles[0].args["aag"])
    return [max(0, int(round(sum(f.args["aag"][g] for f in profiles) / n - offset_db))) for g in range(groups)]


# ====================================================================== SLAC
@fault("slac_parm_off_nominal", level="slac", stage="slac", category="slac",
       time_out=10, num_sounds=None, resp_type=None)
def slac_parm_off_nominal(ctx, time_out, num_sounds, resp_type):
    """The charger's CM_SLAC_PARM.CNF asks for off-nominal sounding parameters: Time_Out
    ``time_out`` (× 100 ms; nominal 6 = TT_EVSE_match_MNBC 600 ms — pyPLC's early code sent 10),
    NUM_SOUNDS ``num_sounds`` (nominal 10 = C_EV_match_MNBC; at most the run's) and RESP_TYPE
    ``resp_type`` (nominal 1); None (or the nominal value) leaves the field as it is. The EV copies them into its
    CM_START_ATTEN_CHAR.IND (as ISO 15118-3 Annex A asks) and sends that many sounds; the
    charger collects for its Time_Out before it answers CM_ATTEN_CHAR.IND (PROTOCOL_FACTS §2.3
    row 2, §2.7: EVs are tested against the nominal values; Compleo ignored a Time_Out of
    1000 ms)."""
    p = ctx.slac
    cnf = _slac_find(ctx, PARM_CNF)
    change = {k: int(v) for k, v in (("time_out", time_out), ("num_sounds", num_sounds),
                                     ("resp_type", resp_type)) if v is not None}
    if not change:
        raise FaultError("slac_parm_off_nominal: give time_out, num_sounds or resp_type")
    pairs = _sound_pairs(p)
    n = change.get("num_sounds", len(pairs))
    if not 0 < n <= len(pairs):
        raise FaultError(f"slac_parm_off_nominal: num_sounds between 1 and {len(pairs)}")
    for f in p.frames:
        if f.name in (PARM_CNF, START):
            f.args = {**f.args, **change}
    if n < len(pairs):                     # the EV sends the number of sounds it was asked for
        _keep_sounds(ctx, pairs[:n], pairs, renumber=True)
    window = change.get("time_out", cnf.args["time_out"]) / 10.0
    ind = _slac_find(ctx, IND)
    first = _slac_find(ctx, START)
    late = first.t + window + 0.05 - ind.t
    if late > 0:                           # the charger answers after its (longer) window
        p.shift_after(p.frames[p.frames.index(ind) - 1], late)
    _note(cnf, "slac_parm_off_nominal: " + ", ".join(f"{k} {v}" for k, v in change.items()))


def _keep_sounds(ctx, kept, pairs, renumber: bool = False) -> None:
    """Drop the sounds (and their profiles) not in ``kept``; the charger's CM_ATTEN_CHAR.IND
    averages the kept profiles and reports their number."""
    p = ctx.slac
    drop = {id(f) for pair in pairs if pair not in kept for f in pair}
    p.frames = [f for f in p.frames if id(f) not in drop]
    if renumber:                           # Cnt counts the remaining sounds down to 0
        for k, (s, _) in enumerate(kept):
            s.args = {**s.args, "cnt": len(kept) - 1 - k}
    ind = _slac_find(ctx, IND)
    ind.args = {**ind.args, "num_sounds": len(kept),
                "aag": _average([pr for _, pr in kept], ctx.slac_cfg.aag_offset_db)}


@fault("slac_start_atten_mismatch", level="slac", stage="slac", category="slac",
       time_out=10, num_sounds=None, resp_type=None)
def slac_start_atten_mismatch(ctx, time_out, num_sounds, resp_type):
    """The EV's CM_START_ATTEN_CHAR.IND announce its own Time_Out ``time_out`` (pyPLC's early
    EV code sent 10 = 1000 ms), NUM_SOUNDS ``num_sounds`` or RESP_TYPE ``resp_type`` instead of
    repeating the charger's CM_SLAC_PARM.CNF (ISO 15118-3 Annex A: the parameters "as in
    CM_SLAC_PARM.CNF"; PROTOCOL_FACTS §2.3 row 3). The charger keeps its own window; the
    run goes on."""
    change = {k: int(v) for k, v in (("time_out", time_out), ("num_sounds", num_sounds),
                                     ("resp_type", resp_type)) if v is not None}
    if not change:
        raise FaultError("slac_start_atten_mismatch: give time_out, num_sounds or resp_type")
    starts = [f for f in ctx.slac.frames if f.name == START]
    if not starts:
        raise FaultError("slac_start_atten_mismatch: no CM_START_ATTEN_CHAR.IND in this run")
    for f in starts:
        f.args = {**f.args, **change}
    _note(starts[0], "slac_start_atten_mismatch: the EV announces "
          + ", ".join(f"{k} {v}" for k, v in change.items()))


@fault("slac_parm_unanswered", level="slac", stage="slac", category="slac",
       count=5, interval_s=1.0)
def slac_parm_unanswered(ctx, count, interval_s):
    """The charger is not ready for SLAC yet (still booting, or it has not seen CP state B):
    the EV's first ``count`` CM_SLAC_PARM.REQ go unanswered and the EV repeats the request
    every ``interval_s`` with the same RunID — beyond 1 + C_EV_match_retry = 3 requests per
    run (ISO 15118-3 Annex A; PROTOCOL_FACTS §2.5, §2.7) — as pyPLC did, once a second with its
    fixed RunID, for 30 s against an Alpitronic (westparkAlpi capture). Then the charger
    sets its key, answers and the run completes."""
    if count < 1 or interval_s <= 0:
        raise FaultError("slac_parm_unanswered: count ≥ 1 and interval_s > 0")
    p = ctx.slac
    req = _slac_find(ctx, PARM_REQ)
    t0 = req.t
    shift = count * float(interval_s)
    for f in p.frames:
        f.t += shift
    if p.link_ready_t is not None:
        p.link_ready_t += shift
    extra = [_copy(req, t=t0 + k * float(interval_s)) for k in range(count)]
    _note(extra[0], f"slac_parm_unanswered: {count} CM_SLAC_PARM.REQ unanswered, {interval_s} s apart")
    p.frames = sorted(extra + p.frames, key=lambda f: f.t)


@fault("slac_restart", level="slac", stage="slac", category="slac",
       fail_after="CM_MNBC_SOUND.IND", restart_after_s=1.2, new_run_id=True)
def slac_restart(ctx, fail_after, restart_after_s, new_run_id):
    """The first matching run stops after ``fail_after`` (default: after the sounding, the
    charger never sends CM_ATTEN_CHAR.IND); the EV waits ``restart_after_s`` after the run's
    last frame — its pending timer (TT_EV_atten_results 1.2 s) and TT_matching_rate (400 ms,
    [V2G3-A09-124]) — and restarts the matching with a new RunID (``new_run_id`` False: pyPLC
    reuses its fixed RunID); the second run completes. The pyPLC Compleo and Ioniq captures
    show such restarts. A restart sooner than 400 ms breaks [V2G3-A09-124]."""
    p = ctx.slac
    req = _slac_find(ctx, PARM_REQ)
    hits = [f for f in p.frames if f.name == fail_after]
    if not hits:
        raise FaultError(f"slac_restart: no {fail_after} in this SLAC run")
    stop = hits[-1]
    i0, i1 = p.frames.index(req), p.frames.index(stop)
    if i1 < i0 or fail_after in (MATCH_CNF, SET_KEY_REQ, SET_KEY_CNF):
        raise FaultError(f"slac_restart: the run cannot fail after {fail_after}")
    rid = _run_id(ctx) if new_run_id else p.run_id
    failed = []
    for f in p.frames[i0:i1 + 1]:
        failed.append(_copy(f, args={"run_id": rid} if "run_id" in f.args else {}, comments=f.comments))
        f.comments = []
    _note(failed[-1], f"slac_restart: the run stops after {fail_after}")
    dt = stop.t - req.t + float(restart_after_s)
    if i0 > 0:
        p.shift_after(p.frames[i0 - 1], dt)
    else:
        _shift_all(p, dt)
    _note(req, f"slac_restart: new run {restart_after_s} s after the failed one")
    p.frames = p.frames[:i0] + failed + p.frames[i0:]


def _shift_all(p, dt: float) -> None:
    for f in p.frames:
        f.t += dt
    if p.link_ready_t is not None:
        p.link_ready_t += dt


@fault("slac_sounds_lost", level="slac", stage="slac", category="slac", received=4, sent=None)
def slac_sounds_lost(ctx, received, sent):
    """Sounds lost on a noisy or badly coupled CP line: the EV sends ``sent`` of its
    CM_MNBC_SOUND.IND (default all it announced), the charger's modem receives only
    ``received`` of them (a CM_ATTEN_PROFILE.IND each) and the charger's CM_ATTEN_CHAR.IND
    averages those and reports NUM_SOUNDS ``received`` (C_EV_match_MNBC = 10; ISO 15118-3
    Annex A, PROTOCOL_FACTS §2.3 rows 4-6; the westparkAlpi capture shows an
    Alpitronic counting 2 of 10). The EV still matches."""
    p = ctx.slac
    pairs = _sound_pairs(p)
    n_sent = len(pairs) if sent is None else int(sent)
    if not 0 < n_sent <= len(pairs) or not 0 < received <= n_sent:
        raise FaultError(f"slac_sounds_lost: 0 < received ≤ sent ≤ {len(pairs)}")
    on_wire = pairs[:n_sent]
    got = sorted(ctx.rng.sample(range(n_sent), int(received)))
    drop = {id(f) for s, pr in pairs[n_sent:] for f in (s, pr)}
    drop |= {id(pr) for k, (_, pr) in enumerate(on_wire) if k not in got}
    p.frames = [f for f in p.frames if id(f) not in drop]
    ind = _slac_find(ctx, IND)
    ind.args = {**ind.args, "num_sounds": int(received),
                "aag": _average([on_wire[k][1] for k in got], ctx.slac_cfg.aag_offset_db)}
    _note(ind, f"slac_sounds_lost: {received} of {n_sent} sounds received")


@fault("slac_attenuation_high", level="slac", stage="slac", category="slac", attenuation_db=48.0)
def slac_attenuation_high(ctx, attenuation_db):
    """A poorly coupled CP line (a long cable run, a weak coupling circuit in the charger):
    the sounds arrive with a mean attenuation of ``attenuation_db`` over the 58 carrier groups
    (the charger reports ~5 dB less, slac.py), above the 40 dB that open-plc-utils and pyslac
    accept for a match (SLAC_LIMIT; ISO 15118-3 C_EV_match_signalattn_*, PROTOCOL_FACTS
    §2.6). This EV matches anyway (its limit is the 80 dB of the ISO test environment)."""
    p = ctx.slac
    pairs = _sound_pairs(p)
    profiles = [pr for _, pr in pairs]
    mean = sum(sum(pr.args["aag"]) / len(pr.args["aag"]) for pr in profiles) / len(profiles)
    delta = float(attenuation_db) - mean
    for pr in profiles:
        pr.args = {**pr.args, "aag": [min(255, max(0, int(round(x + delta)))) for x in pr.args["aag"]]}
    ind = _slac_find(ctx, IND)
    ind.args = {**ind.args, "aag": _average(profiles, ctx.slac_cfg.aag_offset_db)}
    _note(ind, f"slac_attenuation_high: sounds received at {attenuation_db:g} dB")


@fault("atten_char_empty", level="slac", stage="slac", category="slac", num_sounds=0, groups=0)
def atten_char_empty(ctx, num_sounds, groups):
    """The charger's modem delivers no sound reports to its host (CM_ATTEN_PROFILE.IND not
    enabled in the modem's configuration), yet the host answers the sounding with a
    CM_ATTEN_CHAR.IND carrying NUM_SOUNDS ``num_sounds`` and an attenuation profile of
    ``groups`` groups (NumGroups must be 58 and the profile the averages of the received
    sounds: ISO 15118-3 CM_ATTEN_CHAR.IND, PROTOCOL_FACTS §2.1, §2.3 row 6). The EV, which
    has no other charger to choose from, matches anyway."""
    p = ctx.slac
    ind = _slac_find(ctx, IND)
    p.frames = [f for f in p.frames if not (f.name == PROFILE and f.src == p.evse_modem_mac)]
    aag = list(ind.args["aag"])[:int(groups)] + [0] * max(0, int(groups) - len(ind.args["aag"]))
    ind.args = {**ind.args, "num_sounds": int(num_sounds), "aag": aag}
    _note(ind, f"atten_char_empty: NUM_SOUNDS {num_sounds}, NumGroups {groups}")


@fault("atten_char_after_match", level="slac", stage="slac", category="slac",
       count=10, first_after_s=4.2, interval_s=0.27, broadcast=True)
def atten_char_after_match(ctx, count, first_after_s, interval_s, broadcast):
    """After the match the charger keeps sending CM_ATTEN_CHAR.IND — ``count`` copies,
    ``interval_s`` apart, from ``first_after_s`` after CM_SLAC_MATCH.CNF, to the broadcast
    address (``broadcast``) or the EV — while SDP and the V2G session run: its SLAC state
    machine never left the matching state (pyPLC as charger, Griffigroen Polestar 2 capture:
    ten broadcasts every ~0.27 s). Each message is valid only in its step of the matching
    sequence (ISO 15118-3 Annex A); the EV ignores them."""
    p = ctx.slac
    cnf = _slac_find(ctx, MATCH_CNF)
    ind = _slac_find(ctx, IND)
    new = [_copy(ind, t=cnf.t + float(first_after_s) + k * float(interval_s),
                 dst=BROADCAST if broadcast else ind.dst) for k in range(int(count))]
    if not new:
        raise FaultError("atten_char_after_match: count ≥ 1")
    _note(new[0], f"atten_char_after_match: {count} CM_ATTEN_CHAR.IND after the match")
    p.frames = sorted(p.frames + new, key=lambda f: f.t)


@fault("set_key_failed", level="slac", stage="slac", category="slac", result=1, restart_after_s=14.0)
def set_key_failed(ctx, result, restart_after_s):
    """The EV's modem does not take the NMK of the match: its CM_SET_KEY.CNF answers Result
    ``result`` (HomePlug AV: 0 success, 1 failure — a Qualcomm modem also answers 1 when it
    does apply the key, PROTOCOL_FACTS §2.3 row 11) and it never joins the charger's AVLN. The
    EV waits for the link, sends no SDP, and ``restart_after_s`` later (past TT_match_join
    12 s) restarts the matching with a new CM_SLAC_PARM.REQ, which the charger answers; the
    capture ends there (as the Dehner Alpitronic capture ends with a SLAC restart)."""
    p = ctx.slac
    cnfs = [f for f in p.frames if f.name == SET_KEY_CNF and f.dst == p.ev_mac]
    if not cnfs:
        raise FaultError("set_key_failed: the EV sets no key in this run")
    c = cnfs[-1]
    c.args = {**c.args, "result": int(result)}
    _note(c, f"set_key_failed: Result {result}, the modem does not join the AVLN")
    p.link_ready_t = None
    if restart_after_s and restart_after_s > 0:
        req, pcnf = _slac_find(ctx, PARM_REQ), _slac_find(ctx, PARM_CNF)
        rid = _run_id(ctx)
        t = c.t + float(restart_after_s)
        p.frames.append(_copy(req, t=t, args={"run_id": rid},
                              comments=["simulator fault set_key_failed: no link, the EV restarts SLAC"]))
        p.frames.append(_copy(pcnf, t=t + (pcnf.t - req.t), args={"run_id": rid}))


# ====================================================================== SDP
@fault("sdp_wrong_secc_address", level="sdp", stage="before", category="sdp",
       address=None, ev_reaction="announced")
def sdp_wrong_secc_address(ctx, address, ev_reaction):
    """The SDP response announces an SECCIPAddress that is not the responder's: ``address``
    (an IPv6 address; default the link-local address of the charger's PLC modem — an SECC
    that builds its address from the wrong interface's MAC). ISO 15118-2 §7.10.1: the SECC
    announces its own address (PROTOCOL_FACTS §1.3, §1.5 d). ``ev_reaction`` "announced": the
    EV tries the announced address, finds nobody there (no neighbour answers) and never
    connects; "responder": a tolerant EV connects to the datagram's source instead and the
    session runs."""
    import ipaddress
    modem = (ctx.evse_override or (ctx.spec.evse.mac, ctx.spec.evse.modem_mac))[1]
    try:
        addr = ipaddress.IPv6Address(address).packed if address else nf.link_local(nf.mac(modem))
    except ValueError:
        raise FaultError(f"sdp_wrong_secc_address: {address!r} is not an IPv6 address") from None
    ctx.sdp.announce_address = addr
    if ev_reaction == "announced":
        ctx.tcp.connect_to_wrong_port_only = True      # no connection: nothing after SDP
    elif ev_reaction != "responder":
        raise FaultError(f"sdp_wrong_secc_address: ev_reaction {ev_reaction!r}; announced or responder")
    ctx.sdp.comments.append(f"simulator fault sdp_wrong_secc_address: the response announces "
                            f"{ipaddress.IPv6Address(addr)}")


@fault("sdp_invalid_transport", level="sdp", stage="before", category="sdp",
       side="EVSE", transport=0x10, requests=5)
def sdp_invalid_transport(ctx, side, transport, requests):
    """An SDP message carries TransportProtocol ``transport`` instead of TCP (0x00; 0x10 is
    UDP, reserved: no V2G message may use it, ISO 15118-2 [V2G2-623], PROTOCOL_FACTS §1.4).
    ``side`` "EVSE": the SECC's response announces it; the EV (pyPLC, say) does not check the
    octet and connects over TCP as usual. ``side`` "EV": the EV asks for it; the SECC answers
    nothing to a non-TCP request (EVerest) and the EV gives up after ``requests`` requests."""
    if side == "EVSE":
        ctx.sdp.response_transport = int(transport) & 0xFF
    elif side == "EV":
        ctx.sdp.request_transport = int(transport) & 0xFF
        ctx.sdp.answered = False
        ctx.sdp.unanswered = int(requests)
    else:
        raise FaultError(f"sdp_invalid_transport: side {side!r}; EV or EVSE")
    ctx.sdp.comments.append(f"simulator fault sdp_invalid_transport: TransportProtocol {int(transport):#04x} "
                            f"in the {'response' if side == 'EVSE' else 'requests'}")


@fault("secc_port_static", level="sdp", stage="before", category="sdp", port=15118)
def secc_port_static(ctx, port):
    """The SECC listens on, and announces, the fixed port ``port`` (default 15118, the SDP
    port) instead of one from the dynamic range 49152-65535 (DIN 70121 §8.7.2 / ISO 15118-2
    §7.10.1 as HotWire and Josev read them ⚠; PROTOCOL_FACTS §1.3) — as pyPLC in charger
    mode does. Tolerant EVs connect and the session runs."""
    if not 0 < port < 65536:
        raise FaultError("secc_port_static: port 1-65535")
    ctx.spec.evse.port = int(port)
    ctx.sdp.comments.append(f"simulator fault secc_port_static: the SECC announces port {port}")


# ====================================================================== TCP
@fault("ev_ignores_secc_port", level="tcp", stage="before", category="transport", port=15118)
def ev_ignores_secc_port(ctx, port):
    """The EV connects to the fixed port ``port`` (15118) instead of the SECCPort of the SDP
    response, and this SECC happens to accept connections there too, so the session runs —
    ISO 15118-2 §7.10.1 / DIN 70121 §8.7.2: the EV connects to the announced port (pyPLC's
    early EV code; an Alpitronic refused it, PROTOCOL_FACTS §1.5 d; fault
    ``tcp_connect_refused`` is that case)."""
    if not 0 < port < 65536:
        raise FaultError("ev_ignores_secc_port: port 1-65535")
    ctx.tcp.connect_port = int(port)


@fault("retransmission_storm", level="tcp", stage="after", category="transport",
       message="CurrentDemandReq", occurrence=1, count=12, every=1, rto_s=0.2, losses=1)
def retransmission_storm(ctx, message, occurrence, count, every, rto_s, losses):
    """Noise on the CP line: from the ``occurrence``-th ``message`` on, ``count`` of its
    occurrences (every ``every``-th) are lost on the line ``losses`` times each: the sender's
    segment is in the capture but never acknowledged, and the sender retransmits it after its
    retransmission timeout ``rto_s`` (doubling for each further loss; RFC 6298, Linux's
    minimum RTO 200 ms); the peer answers after the last copy, so every cycle is delayed
    (ChargeX PFMEA UC2 156 / 237 signal integrity; RFC 9293 §3.8.1)."""
    ci, xi, x, m = ctx.find(message, occurrence)
    if count < 1 or every < 1 or losses < 1 or rto_s <= 0:
        raise FaultError("retransmission_storm: count, every, losses ≥ 1 and rto_s > 0")
    hits = []
    for cj, xj, xx in ctx.plan.exchanges():
        for mm in (xx.request, xx.response):
            if mm is not None and mm.tree is not None and mm.name == message and (cj, xj) >= (ci, xi):
                hits.append((cj, xj, xx, mm))
    chosen = hits[::int(every)][:int(count)]
    for cj, xj, xx, mm in chosen:
        gaps = [float(rto_s) * 2 ** k for k in range(int(losses))]
        mm.line_losses = gaps
        delay = sum(gaps)
        if mm is xx.request:
            xx.latency_s += delay
        else:
            conn = ctx.plan.connections[cj]
            if xj + 1 < len(conn.exchanges):
                conn.exchanges[xj + 1].think_s += delay
            else:
                conn.ending.after_s += delay
    ctx.comment(chosen[0][3], f"retransmission_storm: {len(chosen)} × {message} lost on the line")


@fault("v2gtp_empty_payload", level="v2gtp", stage="after", category="transport",
       message="ChargeParameterDiscoveryRes", occurrence=1, receiver_reaction="close")
def v2gtp_empty_payload(ctx, message, occurrence, receiver_reaction):
    """``message`` goes out as a V2GTP header announcing payload length 0 and no EXI
    document: the sender's encoder failed (a value out of range, a buffer too small) and it
    sent the header anyway (ISO 15118-2 §7.8.3, DIN 70121 §8.7.3: every V2GTP message carries
    one EXI document; PROTOCOL_FACTS §1.1). ``receiver_reaction`` "close": the receiver
    cannot decode it and closes the connection."""
    ci, xi, x, m = ctx.find(message, occurrence)
    m.exi_keep = 0
    ctx.comment(m, "v2gtp_empty_payload: V2GTP header without payload")
    _receiver_reaction(ctx, ci, xi, x, m, receiver_reaction, True)


# ====================================================================== capture point
@dataclass
class Sniffer:
    """What the capture point records of one session (wire.write_session applies it):
    ``start_t`` / ``start_message`` — nothing before that time / before the first frame of
    that message; ``senders`` — only frames sent by these MACs (6-octet values; None: all);
    ``snaplen`` — frames cut to that many octets (the pcapng keeps their length on the wire);
    ``duplicate_on`` — a second capture interface that records every frame again
    ``duplicate_after_s`` later. Messages the capture does not show are marked ``lost``, those
    a short snap length cuts are too (their segments are not whole in the capture); those sent
    inside TLS on a connection whose start the capture lacks cannot be decrypted
    (CaptureBuilder.unreadable)."""

    start_t: float | None = None
    start_message: object = None
    senders: frozenset | None = None
    snaplen: int | None = None
    duplicate_on: str | None = None
    duplicate_after_s: float = 0.00002
    comments: dict = field(default_factory=dict)       # what → packet comment text

    def wrap(self, cb) -> "_SniffedCapture":
        return _SniffedCapture(cb, self)

    def finish(self, written) -> None:
        self._cap.flush(written)


class _SniffedCapture:
    """A CaptureBuilder stand-in that buffers one session's frames and hands what the sniffer
    records to the real one at the end (every other attribute is the real one's)."""

    def __init__(self, cb, sniffer: Sniffer):
        self.cb, self.sn = cb, sniffer
        self.buf: list = []
        self.sizes: dict = {}
        sniffer._cap = self

    def __getattr__(self, name):
        return getattr(self.cb, name)

    def add(self, t: float, frame: bytes, comments=(), interface: int = 0, orig_len=None) -> None:
        self.buf.append((t, frame, list(comments), interface, orig_len))

    def note_message(self, m, t: float, size: int, mss: int) -> None:
        self.sizes[id(m)] = (size, mss)

    def _sees(self, t: float, src: bytes, start: float | None) -> bool:
        sn = self.sn
        return (start is None or t >= start - 1e-9) and (sn.senders is None or src in sn.senders)

    def flush(self, written) -> None:
        sn, cb = self.sn, self.cb
        start = sn.start_t
        if sn.start_message is not None:
            start = next((t for m, t in written if m is sn.start_message), start)
        first = True
        dup = cb.interface(sn.duplicate_on) if sn.duplicate_on else None
        if sn.snaplen:
            cb.snaplen = min(cb.snaplen, int(sn.snaplen))
        first_dup = True
        dropped_tcp = False
        for t, frame, comments, iface, orig in self.buf:
            if not self._sees(t, frame[6:12], start):
                dropped_tcp = dropped_tcp or (frame[12:14] == b"\x86\xdd" and frame[20] == 6)
                continue
            if first and sn.comments.get("first"):
                comments = comments + [sn.comments["first"]]
                first = False
            if sn.snaplen and len(frame) > sn.snaplen:
                frame, orig = frame[:sn.snaplen], (orig or len(frame))
            cb.add(t, frame, comments, iface, orig)
            if dup is not None:
                cb.add(t + sn.duplicate_after_s, frame, [sn.comments["duplicate"]] if first_dup and
                       sn.comments.get("duplicate") else [], dup, orig)
                first_dup = False
        for m, t in written:
            src = nf.mac(self._mac(m.side))
            size, mss = self.sizes.get(id(m), (0, 1440))
            if not self._sees(t, src, start):
                m.lost = True
            elif dropped_tcp and m.raw is None and size != len(m.wire()):
                cb.unreadable.add(id(m))   # inside TLS whose handshake the capture lacks: not decryptable
            elif sn.snaplen and id(m) in self.sizes:
                if ETH_HDR + IP6_TCP_HDR + min(size, mss) > sn.snaplen:
                    m.lost = True          # its segments are cut: the capture does not hold it

    def _mac(self, side: str) -> str:
        return self.sn.comments["ev_mac"] if side == "EV" else self.sn.comments["evse_mac"]


def _sniffer(ctx) -> Sniffer:
    sn = ctx.plan.sniffer
    if sn is None:
        sn = Sniffer()
        ev = ctx.spec.ev
        evse_mac, evse_modem = ctx.evse_override or (ctx.spec.evse.mac, ctx.spec.evse.modem_mac)
        sn.comments.update(ev_mac=ev.mac, evse_mac=evse_mac, evse_modem=evse_modem, ev_modem=ev.modem_mac)
        ctx.plan.sniffer = sn
    return sn


@fault("capture_starts_late", level="tcp", stage="after", category="capture-quality",
       message="CM_SLAC_PARM.CNF", occurrence=1)
def capture_starts_late(ctx, message, occurrence):
    """The capture was started late: its first frame is the one carrying ``message`` (its
    ``occurrence``-th; a SLAC message name, or a V2G message name — then the TCP connection,
    SDP and SLAC before it are missing, and the protocol is known only from the messages). The
    session itself is unchanged (a sniffer started after plug-in, like pyPLC's listen-mode
    captures that begin mid-session)."""
    sn = _sniffer(ctx)
    if message.startswith(("CM_", "VS_")):
        if ctx.slac is None:
            raise FaultError("capture_starts_late: this session has no SLAC")
        hits = [f for f in ctx.slac.frames if f.name == message]
        if not 1 <= occurrence <= len(hits):
            raise FaultError(f"capture_starts_late: {message} occurs {len(hits)} time(s) in the SLAC run")
        sn.start_t = hits[occurrence - 1].t
    else:
        ci, xi, x, m = ctx.find(message, occurrence)
        sn.start_message = m
    sn.comments["first"] = f"simulator fault capture_starts_late: the capture starts at {message}"


@fault("sniffer_one_side", level="tcp", stage="after", category="capture-quality", side="EVSE")
def sniffer_one_side(ctx, side):
    """The capture point records only the frames sent by ``side`` (its host and its PLC
    modem): a HomePlug sniffer in listen mode that hears one side's transmissions (pyPLC
    listenMode captures: only the charger's SLAC messages and V2G responses). The session
    itself is unchanged; the other side's messages are missing from the capture."""
    sn = _sniffer(ctx)
    c = sn.comments
    if side == "EVSE":
        macs = (c["evse_mac"], c["evse_modem"])
    elif side == "EV":
        macs = (c["ev_mac"], c["ev_modem"])
    else:
        raise FaultError(f"sniffer_one_side: side {side!r}; EV or EVSE")
    sn.senders = frozenset(nf.mac(x) for x in macs)
    c.setdefault("first", f"simulator fault sniffer_one_side: only the {side}'s frames are captured")


@fault("capture_snaplen", level="tcp", stage="after", category="capture-quality", snaplen=128)
def capture_snaplen(ctx, snaplen):
    """The capture was taken with a snap length of ``snaplen`` octets (tcpdump -s 128, or a
    logger configured for headers only): every longer frame is cut, its length on the wire
    kept in the pcapng (draft-ietf-opsawg-pcapng §4.2 SnapLen, §4.3 Original Packet Length).
    V2G messages in cut frames cannot be read from the capture; the session is unchanged."""
    if not 60 <= snaplen < 1514:
        raise FaultError("capture_snaplen: snaplen between 60 and 1513")
    sn = _sniffer(ctx)
    sn.snaplen = int(snaplen)
    sn.comments.setdefault("first", f"simulator fault capture_snaplen: snap length {snaplen}")


@fault("capture_duplicates", level="tcp", stage="after", category="capture-quality",
       interface="br0", delay_us=20)
def capture_duplicates(ctx, interface, delay_us):
    """The capture records every frame twice: on the Ethernet port and again ``delay_us`` µs
    later on the bridge ``interface`` it belongs to (dumpcap on both, or "any" with a bridge;
    a pcapng with two interfaces). The sender sent each frame once; they are not
    retransmissions (Wireshark "duplicate frame"; editcap -d removes them)."""
    if not 0 < delay_us < 1000:
        raise FaultError("capture_duplicates: delay_us between 1 and 999 (the same instant)")
    sn = _sniffer(ctx)
    sn.duplicate_on = str(interface)
    sn.duplicate_after_s = delay_us / 1e6
    sn.comments["duplicate"] = f"simulator fault capture_duplicates: every frame again on {interface}"


__all__ = ["Sniffer"]
