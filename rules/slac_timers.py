"""The ISO 15118-3 SLAC timers, counters and limits, as data.

Each :class:`Parameter` carries its value and unit, where it comes from (ISO 15118-3
Table A.1, Annex A, requirement IDs), the PROTOCOL_FACTS source keys and whether the sources
agree (``sure``, PROTOCOL_FACTS ✅) or not (⚠: a single source, or sources disagree —
``alt`` then holds the other claim); a range has its lower bound in ``minimum``. The shape
is that of rules/timing_tables.py's :class:`~.timing_tables.Timer`, with a unit, because
SLAC also counts messages and measures attenuation.

Values: PROTOCOL_FACTS §2.1 (framing), §2.3 (successful SLAC on the wire), §2.4 (timing
parameters, ISO 15118-3 Table A.1 family), §2.5 (counters and retries), §2.6 (attenuation
thresholds). The SLAC rules (rules/slac/) take their parameters' defaults from
:data:`SLAC_TIMERS` (``SLAC_TIMERS["TT_match_response"].value``), as do SDP008 (TT_match_join)
and the session simulator's SLAC bounds (samples/slac.py).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Parameter:
    """One SLAC parameter: ``name`` in the standard's words, ``value`` in ``unit`` (``s``,
    ``dB``, a count such as ``sounds``; for a range its upper bound), ``minimum`` (a
    range's lower bound, None otherwise), ``requirement`` (standard, table, requirement IDs,
    what it bounds), ``sources`` (PROTOCOL_FACTS keys), ``sure`` (✅), ``alt`` (the other
    sources' value when they disagree), ``note`` (other claims, observations)."""

    name: str
    value: float | int
    unit: str
    requirement: str
    sources: str
    sure: bool = True
    alt: float | None = None
    note: str = ""
    minimum: float | None = None

    def certain_above(self, measured: float, limit: float | None = None) -> bool:
        """Whether ``measured`` exceeds the limit beyond doubt: the parameter is ✅, or the
        value is also above the other sources' claim."""
        if self.sure:
            return True
        return self.alt is not None and measured > max(self.alt, limit or 0.0)


_A1 = "ISO 15118-3 Table A.1"
_P = Parameter

#: name → :class:`Parameter`, in the order of the matching sequence.
SLAC_TIMERS: dict[str, Parameter] = {p.name: p for p in (
    # ---------------------------------------------------------------- timers (§2.4)
    _P("TT_match_response", 0.2, "s",
       f"{_A1} TT_match_response: the EV waits this long for CM_SLAC_PARM.CNF and "
       "CM_SLAC_MATCH.CNF, the EVSE for CM_ATTEN_CHAR.RSP",
       "E-SLAC, E-SLAC-EV, PYSLAC, TENV, MSTAR"),
    _P("TP_match_response", 0.1, "s",
       f"{_A1} TP_match_response: performance time to send a response",
       "TENV, MSTAR"),
    _P("TT_match_sequence", 0.4, "s",
       f"{_A1} TT_match_sequence: timeout waiting for the next request of the sequence (the "
       "EVSE after CM_SLAC_PARM.CNF waits this long for CM_START_ATTEN_CHAR.IND)",
       "E-SLAC, PYSLAC, TENV, MSTAR"),
    _P("TP_match_sequence", 0.1, "s",
       f"{_A1} TP_match_sequence: performance time to send the next request of the sequence",
       "TENV, PYPLC", minimum=0.0,
       note="pyPLC: the Ioniq waits 100 ms; Supercharger / Compleo refuse an EV that waits "
            "~250 ms"),
    _P("TP_EV_batch_msg_interval", 0.050, "s",
       f"{_A1} TP_EV_batch_msg_interval: gap between consecutive CM_START_ATTEN_CHAR.IND / "
       "CM_MNBC_SOUND.IND", "E-SLAC, PYSLAC, TENV, MSTAR", minimum=0.020,
       note="EVerest 40 / 20 ms, TENV 30 ms"),
    _P("TT_EVSE_match_MNBC", 0.6, "s",
       f"{_A1} TT_EVSE_match_MNBC: the EVSE's sound-collection window after the first "
       "CM_START_ATTEN_CHAR.IND (CM_SLAC_PARM.CNF Time_Out 6 × 100 ms)",
       "E-SLAC, PYSLAC, TENV, MSTAR",
       note="pyPLC: Compleo ignores a Time_Out of 1000 ms"),
    _P("TT_EV_atten_results", 1.2, "s",
       f"{_A1} TT_EV_atten_results: from the first CM_START_ATTEN_CHAR.IND the EV waits this "
       "long for CM_ATTEN_CHAR.IND", "E-SLAC, PYSLAC, TENV, MSTAR"),
    _P("TT_EVSE_match_session", 10.0, "s",
       f"{_A1} TT_EVSE_match_session: the EVSE waits this long after CM_ATTEN_CHAR.RSP for "
       "CM_VALIDATE.REQ or CM_SLAC_MATCH.REQ", "E-SLAC, PYSLAC, TENV, MSTAR"),
    _P("TP_EV_match_session", 0.5, "s",
       f"{_A1} TP_EV_match_session: the EV sends CM_SLAC_MATCH.REQ / CM_VALIDATE.REQ within "
       "this after CM_ATTEN_CHAR.RSP", "MSTAR", sure=False,
       note="single source; the Hyundai Ioniq takes 860-980 ms (PYPLC)"),
    _P("TT_match_join", 12.0, "s",
       f"{_A1} TT_match_join: after CM_SLAC_MATCH.CNF both modems join the new AVLN within",
       "E-SLAC, TENV, MSTAR"),
    _P("TT_EVSE_SLAC_init", 50.0, "s",
       f"{_A1} TT_EVSE_SLAC_init: from CP state B (5 % PWM) the EVSE waits this long for the "
       "first valid CM_SLAC_PARM.REQ, then restarts (E/F toggle) or gives up",
       "E-SLAC, E-SLAC-MAN, PYSLAC, TENV, MSTAR", minimum=20.0,
       note="a range: 20-50 s (EVerest default 40 s, pyslac 50 s, Advantics 20 s); an EV later "
            "than 20 s fails at some EVSEs"),
    _P("T_step_EF", 4.0, "s",
       "ISO 15118-3 [V2G3-M06-05..09] T_step_EF: minimum duration of the CP state E / F with "
       "which an EVSE restarts the matching", "E-SLAC, PYSLAC, TENV",
       note="TENV: at most 8 s"),
    _P("TT_matching_rate", 0.4, "s",
       "ISO 15118-3 [V2G3-A09-124] TT_matching_rate: minimum wait before a failed matching "
       "process is restarted", "PYSLAC, TENV, MSTAR"),
    _P("TT_matching_repetition", 10.0, "s",
       "ISO 15118-3 [V2G3-A09-125] TT_matching_repetition: minimum window in which matching "
       "retries may happen", "PYSLAC, TENV, MSTAR"),
    # ---------------------------------------------------------------- counters (§2.5)
    _P("C_EV_match_retry", 2, "retries",
       "ISO 15118-3 C_EV_match_retry: re-sends of CM_SLAC_PARM.REQ, CM_ATTEN_CHAR.IND and "
       "CM_SLAC_MATCH.REQ", "E-SLAC, TENV, MSTAR"),
    _P("C_EV_match_MNBC", 10, "sounds",
       "ISO 15118-3 C_EV_match_MNBC: CM_MNBC_SOUND.IND the EV sends (NUM_SOUNDS)",
       "E-SLAC, PYSLAC, OPU, TENV, MSTAR", note="Advantics allows 1-255"),
    _P("C_EV_start_atten_char_inds", 3, "messages",
       "ISO 15118-3 C_EV_start_atten_char_inds: CM_START_ATTEN_CHAR.IND the EV sends",
       "E-SLAC, TENV, MSTAR"),
    # ---------------------------------------------------------------- CM_SLAC_PARM.CNF (§2.3)
    _P("TIME_OUT", 6, "× 100 ms",
       "ISO 15118-3 Annex A CM_SLAC_PARM.CNF Time_Out: TT_EVSE_match_MNBC in units of 100 ms",
       "E-SLAC, OPU, PYPLC"),
    _P("RESP_TYPE", 1, "",
       "ISO 15118-3 Annex A CM_SLAC_PARM.CNF RESP_TYPE",
       "E-SLAC, OPU, PYPLC"),
    # ---------------------------------------------------------------- attenuation (§2.1, §2.6)
    _P("NumGroups", 58, "groups",
       "ISO 15118-3 CM_ATTEN_CHAR.IND ATTEN_PROFILE: attenuation per carrier group",
       "E-SLAC, OPU, PYSLAC"),
    _P("SLAC_LIMIT", 40.0, "dB",
       "average attenuation over all groups above which the EV does not match "
       "(ISO 15118-3 C_EV_match_signalattn_direct / _indirect)",
       "OPU, PYSLAC",
       note="some open-plc-utils forks use 80 dB; C_EV_match_signalattn_direct / _indirect "
            "are 10 / 20 dB in MSTAR, 40 / 80 dB in TENV's test configuration (⚠)"),
)}
