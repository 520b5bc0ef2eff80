"""The SLAC run of a simulated session (ISO 15118-3 §9 and Annex A; PROTOCOL_FACTS §2.3):
which HomePlug GreenPHY management messages go out, from whom, when.

    (EVSE host sets its NMK at start-up: CM_SET_KEY.REQ / .CNF with its own modem)
    EV   → bcast  CM_SLAC_PARM.REQ          RunID chosen by the EV
    EVSE → EV     CM_SLAC_PARM.CNF          NUM_SOUNDS 10, TIME_OUT 6 (×100 ms), RESP_TYPE 1
    EV   → bcast  CM_START_ATTEN_CHAR.IND ×3 (C_EV_start_atten_char_inds)
    EV   → bcast  CM_MNBC_SOUND.IND ×10     Cnt 9 … 0 (C_EV_match_MNBC)
    EVSE modem → CM_ATTEN_PROFILE.IND, one per sound received (58 attenuation groups)
    EVSE → EV     CM_ATTEN_CHAR.IND         average attenuation per group
    EV   → EVSE   CM_ATTEN_CHAR.RSP         Result 0
    EV   → EVSE   CM_SLAC_MATCH.REQ         MVFLength 0x3E
    EVSE → EV     CM_SLAC_MATCH.CNF         MVFLength 0x56, NID + NMK
    EV host → EV modem CM_SET_KEY.REQ / .CNF (joins the EVSE's AVLN)

Timing (:class:`SlacConfig` ``timers``, each a gap in s, with the ISO 15118-3 Table A.1
parameter that bounds it, PROTOCOL_FACTS §2.4): ``parm_cnf_s`` PARM.REQ → CNF
(TT_match_response 200 ms); ``start_atten_s`` CNF → first START_ATTEN_CHAR (TP_match_sequence
≤ 100 ms; TT_match_sequence 400 ms); ``batch_interval_s`` between START_ATTEN_CHAR / sounds
(TP_EV_batch_msg_interval 20-50 ms); ``atten_char_s`` first START_ATTEN_CHAR → ATTEN_CHAR.IND
(TT_EVSE_match_MNBC 600 ms window, TT_EV_atten_results 1200 ms); ``atten_rsp_s``
(TP_match_response ≤ 100 ms); ``match_req_s`` ATTEN_CHAR.RSP → MATCH.REQ (TP_EV_match_session
≤ 500 ms, TT_EVSE_match_session 10 s); ``match_cnf_s`` (TT_match_response 200 ms);
``link_ready_s`` MATCH.CNF → first SDP request (TT_match_join 12 s; pyPLC sees modems take
~5-7 s to join).

Attenuation: a profile over 58 carrier groups (higher attenuation at higher frequencies, a
ripple and per-sound noise, as the dSPACE captures show, 9-44 dB), ``attenuation_db`` its
mean; the EVSE reports the per-group average less ``aag_offset_db`` (the captures show the
ATTEN_CHAR values ~5 dB below the profiles).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ccs_analyzer.rules.slac_timers import SLAC_TIMERS

from . import netframes as nf
from . import slac_frames as sf

#: The HomePlug AV "local management" destination a host uses for its own modem.
LOCAL_MODEM = "00:b0:52:00:00:01"

TIMER_DEFAULTS = {
    "parm_cnf_s": 0.03, "start_atten_s": 0.05, "batch_interval_s": 0.03, "atten_char_s": 0.66,
    "atten_rsp_s": 0.02, "match_req_s": 0.2, "match_cnf_s": 0.04, "set_key_s": 0.01,
    "link_ready_s": 2.0, "profile_delay_s": 0.002,
}
#: ISO 15118-3 parameter names accepted as aliases of the timer keys.
TIMER_ALIASES = {
    "TT_match_response": "parm_cnf_s", "TP_match_sequence": "start_atten_s",
    "TT_match_sequence": "start_atten_s", "TP_EV_batch_msg_interval": "batch_interval_s",
    "TT_EV_atten_results": "atten_char_s", "TP_match_response": "atten_rsp_s",
    "TP_EV_match_session": "match_req_s", "TT_EVSE_match_session": "match_req_s",
    "TT_match_join": "link_ready_s",
}
#: The ISO 15118-3 parameter that bounds each timer (rules/slac_timers.py).
TIMER_BOUNDS = {"parm_cnf_s": "TT_match_response", "start_atten_s": "TT_match_sequence",
                "batch_interval_s": "TP_EV_batch_msg_interval", "atten_char_s": "TT_EV_atten_results",
                "atten_rsp_s": "TP_match_response", "match_req_s": "TT_EVSE_match_session",
                "match_cnf_s": "TT_match_response", "link_ready_s": "TT_match_join"}
#: The bound each timer has (s), for comments and docs.
TIMER_LIMITS = {key: SLAC_TIMERS[name].value for key, name in TIMER_BOUNDS.items()}


@dataclass
class SlacConfig:
    """SLAC parameters of a scenario (``[slac]``)."""

    enabled: bool = True
    start_s: float = 1.0
    num_sounds: int = SLAC_TIMERS["C_EV_match_MNBC"].value
    time_out: int = SLAC_TIMERS["TIME_OUT"].value
    resp_type: int = SLAC_TIMERS["RESP_TYPE"].value
    start_atten_char_inds: int = SLAC_TIMERS["C_EV_start_atten_char_inds"].value
    attenuation_db: float = 18.0
    aag_offset_db: float = 5.0
    evse_set_key: bool = True
    timers: dict = field(default_factory=dict)

    def timer(self, key: str) -> float:
        return float(self.timers.get(key, TIMER_DEFAULTS[key]))


@dataclass
class SlacFrame:
    """One HomePlug frame: time, source / destination MAC, the message builder's name and
    arguments (rendered by :meth:`SlacPlan.render`), packet comments."""

    t: float
    src: str
    dst: str
    name: str
    args: dict
    comments: list = field(default_factory=list)

    def mme(self) -> bytes:
        a = self.args
        if self.name == "CM_SLAC_PARM.REQ":
            return sf.slac_parm_req(a["run_id"])
        if self.name == "CM_SLAC_PARM.CNF":
            return sf.slac_parm_cnf(a["run_id"], nf.mac(a["ev"]), a["num_sounds"], a["time_out"],
                                    a.get("resp_type", 1))
        if self.name == "CM_START_ATTEN_CHAR.IND":
            return sf.start_atten_char_ind(a["run_id"], nf.mac(a["ev"]), a["num_sounds"], a["time_out"],
                                           a.get("resp_type", 1))
        if self.name == "CM_MNBC_SOUND.IND":
            return sf.mnbc_sound_ind(a["run_id"], a["cnt"], a["rnd"])
        if self.name == "CM_ATTEN_PROFILE.IND":
            return sf.atten_profile_ind(nf.mac(a["ev"]), a["aag"])
        if self.name == "CM_ATTEN_CHAR.IND":
            return sf.atten_char_ind(a["run_id"], nf.mac(a["ev"]), a["aag"], a["num_sounds"])
        if self.name == "CM_ATTEN_CHAR.RSP":
            return sf.atten_char_rsp(a["run_id"], nf.mac(a["ev"]), a.get("result", 0))
        if self.name == "CM_SLAC_MATCH.REQ":
            return sf.slac_match_req(a["run_id"], nf.mac(a["ev"]), nf.mac(a["evse"]))
        if self.name == "CM_SLAC_MATCH.CNF":
            return sf.slac_match_cnf(a["run_id"], nf.mac(a["ev"]), nf.mac(a["evse"]), a["nid"], a["nmk"])
        if self.name == "CM_SET_KEY.REQ":
            return sf.set_key_req(a["nid"], a["nmk"], a.get("nonce", b"\x00" * 4))
        if self.name == "CM_SET_KEY.CNF":
            return sf.set_key_cnf(a.get("nonce", b"\x00" * 4), a.get("result", 0))
        raise ValueError(f"unknown SLAC message {self.name}")

    def frame(self) -> bytes:
        return nf.ethernet(nf.mac(self.dst), nf.mac(self.src), nf.ETH_HOMEPLUG, self.mme())


@dataclass
class SlacPlan:
    """The frames of one SLAC run and when the link is ready for SDP (``link_ready_t``;
    None: the run failed and nothing follows). ``run_id`` / ``nid`` / ``nmk``: the EV's RunID
    and the EVSE's network keys; ``evse_mac`` the charger the EV matched."""

    frames: list[SlacFrame]
    link_ready_t: float | None
    run_id: bytes
    nid: bytes
    nmk: bytes
    evse_mac: str
    evse_modem_mac: str
    ev_mac: str = ""
    ev_modem_mac: str = ""

    def find(self, name: str, occurrence: int = 1) -> SlacFrame:
        hits = [f for f in self.frames if f.name == name]
        if not hits:
            raise LookupError(f"no {name} in this SLAC run (has: {', '.join(dict.fromkeys(f.name for f in self.frames))})")
        return hits[-1] if occurrence == -1 else hits[min(occurrence, len(hits)) - 1]

    def cut_after(self, frame: SlacFrame) -> None:
        """Drop every frame after ``frame``: the run stops there, the link never comes up."""
        i = self.frames.index(frame)
        del self.frames[i + 1:]
        self.link_ready_t = None

    def shift_after(self, frame: SlacFrame, dt: float) -> None:
        """Move every frame after ``frame`` (and the link-up time) by ``dt``."""
        i = self.frames.index(frame)
        for f in self.frames[i + 1:]:
            f.t += dt
        if self.link_ready_t is not None:
            self.link_ready_t += dt


def attenuation_profile(mean_db: float, rng: random.Random, groups: int = 58) -> list[float]:
    """An attenuation profile (dB) over the carrier groups with the given mean."""
    raw = [mean_db + 9.0 * (g - groups / 2) / groups + 3.0 * math.sin(g / 4.5) + rng.uniform(-1.0, 1.0)
           for g in range(groups)]
    shift = mean_db - sum(raw) / groups
    return [max(1.0, x + shift) for x in raw]


def build_slac(cfg: SlacConfig, ev_mac: str, ev_modem: str, evse_mac: str, evse_modem: str,
               rng: random.Random, t0: float) -> SlacPlan:
    """The SLAC run of a session starting at ``t0`` (the EV's CM_SLAC_PARM.REQ)."""
    run = bytes(rng.randrange(256) for _ in range(8))
    nid = bytes(rng.randrange(256) for _ in range(7))
    nid = bytes([nid[0] & 0x3F]) + nid[1:]          # NID security level bits 00 (§2.1)
    nmk = bytes(rng.randrange(256) for _ in range(16))
    T = cfg.timer
    frames: list[SlacFrame] = []
    bc = "ff:ff:ff:ff:ff:ff"
    common = {"run_id": run, "ev": ev_mac, "num_sounds": cfg.num_sounds, "time_out": cfg.time_out}
    if cfg.resp_type != 1:
        common["resp_type"] = cfg.resp_type
    if cfg.evse_set_key:
        frames.append(SlacFrame(t0 - 0.5, evse_mac, LOCAL_MODEM, "CM_SET_KEY.REQ", {"nid": nid, "nmk": nmk}))
        frames.append(SlacFrame(t0 - 0.499, evse_modem, evse_mac, "CM_SET_KEY.CNF",
                                {"nonce": bytes(rng.randrange(256) for _ in range(4))}))
    t = t0
    frames.append(SlacFrame(t, ev_mac, bc, "CM_SLAC_PARM.REQ", {"run_id": run}))
    t += T("parm_cnf_s")
    frames.append(SlacFrame(t, evse_mac, ev_mac, "CM_SLAC_PARM.CNF", dict(common)))
    t += T("start_atten_s")
    first = t
    for i in range(cfg.start_atten_char_inds):
        if i:
            t += T("batch_interval_s")
        frames.append(SlacFrame(t, ev_mac, bc, "CM_START_ATTEN_CHAR.IND", dict(common)))
    profile = attenuation_profile(cfg.attenuation_db, rng)
    sums = [0.0] * len(profile)
    for cnt in range(cfg.num_sounds - 1, -1, -1):
        t += T("batch_interval_s")
        frames.append(SlacFrame(t, ev_mac, bc, "CM_MNBC_SOUND.IND",
                                {"run_id": run, "cnt": cnt, "rnd": bytes(rng.randrange(256) for _ in range(16))}))
        sound = [min(255, max(0, int(round(p + rng.uniform(-1.5, 1.5))))) for p in profile]
        sums = [a + b for a, b in zip(sums, sound)]
        frames.append(SlacFrame(t + T("profile_delay_s"), evse_modem, bc, "CM_ATTEN_PROFILE.IND",
                                {"ev": ev_mac, "aag": sound}))
    aag = [max(0, int(round(x / max(1, cfg.num_sounds) - cfg.aag_offset_db))) for x in sums]
    t = max(t + 0.05, first + T("atten_char_s"))
    frames.append(SlacFrame(t, evse_mac, ev_mac, "CM_ATTEN_CHAR.IND", {**common, "aag": aag}))
    t += T("atten_rsp_s")
    frames.append(SlacFrame(t, ev_mac, evse_mac, "CM_ATTEN_CHAR.RSP", {"run_id": run, "ev": ev_mac}))
    t += T("match_req_s")
    frames.append(SlacFrame(t, ev_mac, evse_mac, "CM_SLAC_MATCH.REQ", {"run_id": run, "ev": ev_mac, "evse": evse_mac}))
    t += T("match_cnf_s")
    frames.append(SlacFrame(t, evse_mac, ev_mac, "CM_SLAC_MATCH.CNF",
                            {"run_id": run, "ev": ev_mac, "evse": evse_mac, "nid": nid, "nmk": nmk}))
    t += T("set_key_s")
    frames.append(SlacFrame(t, ev_mac, LOCAL_MODEM, "CM_SET_KEY.REQ", {"nid": nid, "nmk": nmk}))
    frames.append(SlacFrame(t + 0.001, ev_modem, ev_mac, "CM_SET_KEY.CNF",
                            {"nonce": bytes(rng.randrange(256) for _ in range(4))}))
    return SlacPlan(frames, t + T("link_ready_s"), run, nid, nmk, evse_mac, evse_modem, ev_mac, ev_modem)
