"""SLAC rules on the attenuation profile and the chargers that answered: SLC014-SLC016."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.slac import IND, MATCH_REQ, fields, slac_view

from ..base import judged
from .common import _STD, _SlacRule


class SlacAttenuationHigh(_SlacRule):
    """The average attenuation to the matched charger is above the limit.

    What it checks: AAG_mean_dB (mean of the 58 group attenuations) of the CM_ATTEN_CHAR.IND
    of the charger the EV matched with (or of every charger when there is no match) against
    ``limit_db``. ⚠ Sources disagree on the thresholds: open-plc-utils and pyslac refuse a
    match above SLAC_LIMIT = 40 dB (the default here); the MStar SDK's
    C_EV_match_signalattn_direct / _indirect are 10 / 20 dB (match / validate), the ISO
    15118-3 test-environment port uses 40 / 80 dB.
    Why it matters: high attenuation means a poor or indirect coupling (another charger's
    cable, a long parallel run): unreliable communication or the wrong charger.
    Fix (link): check the coupling circuit, the cable and the CP line; an EV should validate
    (CM_VALIDATE) or refuse such a match.
    Source: ISO 15118-3 Annex A C_EV_match_signalattn_direct/_indirect; PROTOCOL_FACTS §2.6
    (OPU SLAC_LIMIT, PYSLAC, MSTAR ⚠, TENV ⚠).

    Example:

        #28 CM_ATTEN_CHAR.IND NUM_SOUNDS=10
    """

    code = "SLC014"
    title = "SLAC attenuation above the limit"
    severity = "warning"
    explains = ("slac-failed",)
    culprit = "link"
    requirement = "ISO 15118-3 C_EV_match_signalattn_direct/_indirect"
    params = {"limit_db": _STD["SLAC_LIMIT"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        for r in v.runs:
            chosen = r.matched_evse()
            for i in r.of(IND):
                a = fields(i).get("AAG_mean_dB")
                if not isinstance(a, (int, float)) or a <= self.p["limit_db"]:
                    continue
                if chosen and i.src != chosen:
                    continue
                yield self.finding(
                    session, [i.frame],
                    f"CM_ATTEN_CHAR.IND #{i.frame} from {i.src} reports an average attenuation of "
                    f"{a:.1f} dB, above {self.p['limit_db']:g} dB"
                    + (" — and the EV matched with it" if chosen == i.src else ""),
                    time=i.time, measured=round(a, 3), limit=self.p["limit_db"], unit="dB",
                    evidence={"expected": f"≤ {self.p['limit_db']:g} dB", "actual": round(a, 3),
                              "NUM_SOUNDS": fields(i).get("NUM_SOUNDS"), "run": r.run_id},
                    values=[judged(i, "AAG_mean_dB", fields(i).get("AAG_mean_dB"),
                                   limit=self.p["limit_db"], unit="dB")])
                break


class SlacAttenuationProfileImplausible(_SlacRule):
    """CM_ATTEN_CHAR.IND carries an implausible attenuation profile.

    What it checks: NumGroups = ``groups`` (58 carrier groups), the AAG list has NumGroups
    entries, and NUM_SOUNDS > 0. A frame the capture cut short (snap length, truncated
    frame: the event carries the dissector's error) is not judged on its AAG count — the
    missing values are the capture's loss (CAP006), not the charger's.
    Why it matters: the EV compares chargers by this profile; a malformed one makes the
    comparison meaningless (or the EV discards the message).
    Fix (SECC): report the 58 group averages of the received sounds.
    Source: HomePlug GreenPHY / ISO 15118-3 CM_ATTEN_CHAR.IND (NumGroups = 58);
    PROTOCOL_FACTS §2.1, §2.3 row 6 (E-SLAC, OPU, PYSLAC).

    Example:

        #18 CM_ATTEN_CHAR.IND NumGroups=0 NUM_SOUNDS=0
    """

    code = "SLC015"
    title = "Implausible attenuation profile"
    severity = "warning"
    culprit = "SECC"
    requirement = "ISO 15118-3 CM_ATTEN_CHAR.IND ATTEN_PROFILE (NumGroups 58)"
    params = {"groups": _STD["NumGroups"]}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        bad: dict = {}
        for i in (i for r in v.runs for i in r.of(IND)):
            f = fields(i)
            n, aag, sounds = f.get("NumGroups"), f.get("AAG"), f.get("NUM_SOUNDS")
            why = []
            if isinstance(n, int) and n != self.p["groups"]:
                why.append(f"NumGroups={n}")
            if isinstance(aag, list) and isinstance(n, int) and len(aag) != n and not i.error:
                why.append(f"{len(aag)} AAG values for NumGroups={n}")
            if sounds == 0:
                why.append("NUM_SOUNDS=0")
            if why:
                bad.setdefault((i.src, tuple(why)), []).append(i)
        for (src, why), evs in bad.items():
            yield self.finding(
                session, [evs[0].frame, evs[-1].frame],
                f"{len(evs)} CM_ATTEN_CHAR.IND from {src} (frames {evs[0].frame}-{evs[-1].frame}): "
                + ", ".join(why), time=evs[0].time,
                evidence={"expected": {"NumGroups": self.p["groups"], "NUM_SOUNDS": "> 0"},
                          "actual": list(why)},
                values=[judged(x, k, expected=want) for x in (evs[0], evs[-1])
                        for k, want in (("NumGroups", self.p["groups"]), ("NUM_SOUNDS", "> 0"))
                        if any(w.startswith(k) for w in why)])


class SlacSeveralChargers(_SlacRule):
    """Several chargers answered the EV's sounding (cross-talk).

    What it checks: CM_ATTEN_CHAR.IND from more than one EVSE MAC for one run; names each
    charger's average attenuation, the one the EV matched with, and whether that is the
    lowest attenuation (``tolerance_db`` allowed). An info; a warning when the EV chose a
    charger with clearly higher attenuation.
    Why it matters: chargers whose CP lines couple (shared cable routes, a common
    transformer) all hear the EV; the EV must pick its own charger — the lowest attenuation
    — or it starts a session with the neighbour.
    Fix (EVCC): choose the lowest-attenuation CM_ATTEN_CHAR.IND (validate when ambiguous);
    site: decouple the CP lines.
    Source: ISO 15118-3 Annex A (EV selects the EVSE with the lowest attenuation;
    CM_VALIDATE when ambiguous); PROTOCOL_FACTS §2.7 (PYPLC readme checkpoint 130).

    Example:

        #39 CM_ATTEN_CHAR.IND RunID=dfc658aaaa990a88
        #40 CM_ATTEN_CHAR.IND RunID=dfc658aaaa990a88
        #43 CM_SLAC_MATCH.REQ RunID=dfc658aaaa990a88 EVSE_MAC=02:00:00:00:e5:01
          → #44 CM_SLAC_MATCH.CNF RunID=dfc658aaaa990a88 EVSE_MAC=02:00:00:00:e5:01
    """

    code = "SLC016"
    title = "Several chargers answered the sounding"
    severity = "info"
    culprit = "EVCC"
    requirement = "ISO 15118-3 Annex A EVSE selection (lowest attenuation)"
    params = {"tolerance_db": 1.0}

    def check(self, session, ctx):
        v = slac_view(session, ctx)
        for r in v.runs:
            chargers: dict = {}
            for i in r.of(IND):
                a = fields(i).get("AAG_mean_dB")
                chargers.setdefault(i.src, (i, a))
            if len(chargers) < 2:
                continue
            chosen = r.matched_evse()
            known = {k: a for k, (_, a) in chargers.items() if isinstance(a, (int, float))}
            best = min(known, key=known.get) if known else None
            listing = ", ".join(f"{mac} (#{i.frame}, {a:.1f} dB)" if isinstance(a, (int, float))
                                else f"{mac} (#{i.frame})" for mac, (i, a) in chargers.items())
            frames = [i.frame for i, _ in chargers.values()]
            sev = "info"
            culprit = "unknown"
            if chosen is None:
                tail = "; the EV matched none of them"
            elif chosen not in chargers:
                tail = f"; the EV matched {chosen}, which sent no CM_ATTEN_CHAR.IND in this run"
                sev, culprit = "warning", "EVCC"
            elif best is None or chosen not in known:
                tail = f"; the EV matched {chosen}"
            elif known[chosen] <= known[best] + self.p["tolerance_db"]:
                tail = f"; the EV matched {chosen}, the lowest attenuation — as it should"
            else:
                tail = (f"; the EV matched {chosen} ({known[chosen]:.1f} dB) although {best} answered "
                        f"with {known[best]:.1f} dB: it may be talking to the wrong charger")
                sev, culprit = "warning", "EVCC"
            m = r.of(MATCH_REQ)
            if m:
                frames.append(m[0].frame)
            yield self.finding(
                session, frames,
                f"{len(chargers)} chargers answered {r.label}: {listing}{tail}",
                time=r.of(IND)[0].time, severity=sev, culprit=culprit,
                measured=known.get(chosen) if chosen else None,
                limit=known.get(best) if best else None, unit="dB",
                evidence={"expected": "the EV matches the lowest attenuation",
                          "actual": {"matched": chosen, "lowest": best},
                          "chargers": {mac: a for mac, (_, a) in chargers.items()}},
                values=[judged(i, "AAG_mean_dB", a, unit="dB") for i, a in chargers.values()])
