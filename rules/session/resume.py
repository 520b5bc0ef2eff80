"""Session rules on pausing, resuming and reusing sessions: SES007-SES009."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import v2g_messages

from ..base import Rule, judged
from ..helpers import body, facts, find_first, is_failed
from .common import _sid, _zero, setups


def _pause_points(ctx):
    """[(frame, ID, session, SessionStopRes)] of OK SessionStopRes to ChargingSession =
    Pause, capture-wide (built once per analysis)."""
    return ctx.view("session.pauses", None, lambda: _pauses(ctx))


def _pauses(ctx):
    out = []
    for s in ctx.sessions:
        sid = None
        pause_req = {}
        for e in v2g_messages(s, ctx):
            if e.name == "SessionSetupRes" and (facts(e).get("ResponseCode") or "").startswith("OK"):
                sid = _sid(e)
            elif e.name == "SessionStopReq":
                pause_req[e.conn] = body(e).get("ChargingSession") == "Pause"
            elif e.name == "SessionStopRes" and pause_req.get(e.conn) and not is_failed(
                    facts(e).get("ResponseCode")):
                out.append((e.frame, sid, s, e))
    return sorted(out, key=lambda x: x[0])


class PausedSessionNotResumed(Rule):
    """After a pause the EV did not offer the paused session's SessionID.

    What it checks: the first SessionSetupReq after a session paused (SessionStopReq
    ChargingSession = Pause, answered OK) must offer that session's SessionID to resume it;
    a zero or other ID starts a new session instead.
    Why it matters: the paused session's payment, schedule and authorization are lost; the
    SECC may refuse a new session until the cable is re-plugged (PFMEA UC2 196-199).
    Fix (EVCC): store the SessionID (and payment option, energy transfer mode, schedule) at
    the pause and offer it in the SessionSetupReq of the resume.
    Source: ISO 15118-2 [V2G2-463] [V2G2-740]; PROTOCOL_FACTS §4.0 SessionID rules, §4B
    "Pause"; ChargeX PFMEA UC2 196-199.

    Example:

        #191 SessionStopReq SessionID=e31fe59dd7038005
          → #193 SessionStopRes SessionID=e31fe59dd7038005 ResponseCode=OK
        #207 SessionSetupReq SessionID=0000000000000000
          → #209 SessionSetupRes SessionID=855be4b46456cdf3 ResponseCode=OK_NewSessionEstablished
    """

    code = "SES007"
    title = "Paused session not resumed with its SessionID"
    severity = "warning"
    category = "session"
    kinds = ("wrong-session-id",)
    explains = ("unknown-session", "failed-response")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-463] [V2G2-740] resume with the paused SessionID"
    failure_modes = ("UC2 196",)

    def check(self, session, ctx):
        pauses = _pause_points(ctx)
        if not pauses:
            return
        for st in setups(ctx):
            if st.session is not session:
                continue
            before = [p for p in pauses if p[0] < st.req.frame]
            if not before:
                continue
            frame, sid, owner, stop_res = before[-1]
            # only the first setup after that pause counts
            first_after = next((x for x in setups(ctx) if x.req.frame > frame), None)
            if first_after is not st or st.offered == sid:
                continue
            ans = f"; the SECC answered {st.code}" if st.code else ""
            yield self.finding(session, [stop_res.frame, st.req.frame] + ([st.res.frame] if st.res else []),
                               f"SessionSetupReq (frame {st.req.frame}) offers SessionID {st.offered} "
                               f"after session {owner.id} was paused with SessionID {sid} (frame "
                               f"{stop_res.frame}): the paused session is not resumed{ans}",
                               time=st.req.time, measured=st.offered, limit=sid,
                               evidence={"expected": sid, "actual": st.offered,
                                         "paused_session": owner.id, "ResponseCode": st.code},
                               values=[judged(st.req, "Header.SessionID", st.offered, expected=sid)])


#: The elements that carry each choice of :func:`_choices` (DIN 70121 / ISO 15118-2 / -20 names).
_CHOICE_ELEMENTS = {"payment option": ("SelectedPaymentOption", "SelectedAuthorizationService"),
                    "energy transfer mode": ("RequestedEnergyTransferMode",
                                             "EVRequestedEnergyTransferType", "ServiceID"),
                    "schedule (SAScheduleTupleID)": ("SAScheduleTupleID", "SelectedScheduleTupleID")}


def _choices(events) -> dict:
    """What a (part of a) session chose: payment option, energy transfer mode / service,
    schedule (SAScheduleTupleID), each with the event that chose it (first occurrence)."""
    out: dict = {}
    for e in events:
        if e.layer != "v2gtp" or e.message is None:
            continue
        n = e.name
        if n in ("PaymentServiceSelectionReq", "ServicePaymentSelectionReq"):
            v = body(e).get("SelectedPaymentOption")
            if isinstance(v, str):
                out.setdefault("payment option", (v, e))
        elif n == "AuthorizationReq" and "SelectedAuthorizationService" in body(e):
            out.setdefault("payment option", (body(e).get("SelectedAuthorizationService"), e))
        elif n == "ChargeParameterDiscoveryReq":
            b = body(e)
            v = b.get("RequestedEnergyTransferMode") or b.get("EVRequestedEnergyTransferType")
            if isinstance(v, str):
                out.setdefault("energy transfer mode", (v, e))
        elif n == "ServiceSelectionReq":
            sel = body(e).get("SelectedEnergyTransferService")
            if isinstance(sel, dict) and sel.get("ServiceID") is not None:
                out.setdefault("energy transfer mode", (f"ServiceID {sel.get('ServiceID')}", e))
        elif n == "PowerDeliveryReq":
            b = body(e)
            v = b.get("SAScheduleTupleID")
            if v is None:
                v = find_first(b, "SelectedScheduleTupleID")
            if v is not None:
                out.setdefault("schedule (SAScheduleTupleID)", (v, e))
    return out


class ResumeChangedChoices(Rule):
    """A resumed session chose another payment option, energy transfer mode or schedule
    than before the pause.

    What it checks: in a session paused and resumed (SessionSetupRes OK_OldSessionJoined),
    the payment option (PaymentServiceSelectionReq), the energy transfer mode
    (ChargeParameterDiscoveryReq; -20 ServiceSelectionReq) and the SAScheduleTupleID
    (PowerDeliveryReq) after the resume against the values before the pause.
    Why it matters: the EVCC shall store them at the pause and the SECC reuses them in the
    resumed session ([V2G2-740], [V2G2-741]); a changed choice may be refused or bill the
    session differently (PFMEA UC2 196-199).
    Fix (EVCC): keep the paused session's payment option, energy transfer mode and schedule
    when resuming.
    Source: ISO 15118-2 [V2G2-740] [V2G2-741]; PROTOCOL_FACTS §4.0 SessionID rules (R
    V2GCommunicationSessionEVCC, J ev_data.py); ChargeX PFMEA UC2 196-199.

    Example:

        #61 PaymentServiceSelectionReq SelectedPaymentOption=Contract
          → #63 PaymentServiceSelectionRes
        #233 SessionSetupReq → #235 SessionSetupRes ResponseCode=OK_OldSessionJoined
        #241 PaymentServiceSelectionReq SelectedPaymentOption=ExternalPayment
          → #243 PaymentServiceSelectionRes
    """

    code = "SES008"
    title = "Resumed session changed payment, energy transfer mode or schedule"
    severity = "warning"
    category = "session"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-740] [V2G2-741] resume with the paused session's data"
    failure_modes = ("UC2 196",)

    def check(self, session, ctx):
        for st in setups(ctx):
            if st.session is not session or st.code != "OK_OldSessionJoined" or st.res is None:
                continue
            before = [e for e in session.events if e.frame < st.req.frame]
            pause = next((e for e in reversed(before) if e.layer == "v2gtp" and e.name == "SessionStopReq"),
                         None)
            if pause is None or body(pause).get("ChargingSession") != "Pause":
                continue
            start = next((e for e in reversed(before) if e.layer == "v2gtp"
                          and e.name == "SessionSetupRes" and e.frame < pause.frame), None)
            old = _choices([e for e in before if start is None or e.frame > start.frame])
            nxt = next((x.req.frame for x in setups(ctx) if x.req.frame > st.req.frame
                        and x.session is session), None)
            new = _choices([e for e in session.events if e.frame > st.res.frame
                            and (nxt is None or e.frame < nxt)])
            for what in ("payment option", "energy transfer mode", "schedule (SAScheduleTupleID)"):
                if what in old and what in new and old[what][0] != new[what][0]:
                    (v0, e0), (v1, e1) = old[what], new[what]
                    yield self.finding(session, [e0.frame, st.res.frame, e1.frame],
                                       f"Resumed session (OK_OldSessionJoined, frame {st.res.frame}) "
                                       f"changed the {what} from {v0} ({e0.name}, frame {e0.frame}) to "
                                       f"{v1} ({e1.name}, frame {e1.frame})", time=e1.time,
                                       measured=v1, limit=v0,
                                       evidence={"expected": v0, "actual": v1, "choice": what},
                                       values=[judged(e0, _CHOICE_ELEMENTS[what], v0),
                                               judged(e1, _CHOICE_ELEMENTS[what], v1, expected=v0)])


class SessionIdReused(Rule):
    """A new session got the SessionID of an earlier session.

    What it checks: a SessionSetupRes OK_NewSessionEstablished whose SessionID an earlier
    session of the capture already had. Info when that session was terminated (the ID is
    not random per session), warning when it was paused (the paused session can no longer
    be told from the new one).
    Why it matters: SessionIDs identify a session for resume; an SECC that hands out the
    same ID again cannot tell a resume from a new session.
    Fix (SECC): generate a new random 8-byte SessionID for every new session.
    Source: ISO 15118-2 [V2G2-756] (new ID ≠ the old one), DIN 70121 [V2G-DC-393];
    PROTOCOL_FACTS §4.0 SessionID rules (new, non-zero, 8-byte random SessionID).

    Example:

        #43 SessionSetupReq SessionID=00 → #45 SessionSetupRes SessionID=0102030405060708
        #240 SessionSetupReq SessionID=00 → #242 SessionSetupRes SessionID=0102030405060708
    """

    code = "SES009"
    title = "New session got an earlier session's SessionID"
    severity = "info"
    category = "session"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-756] a new SessionID for a new session"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        issued: dict[str, tuple] = {}
        for st in setups(ctx):
            if st.res is None or not (st.code or "").startswith("OK") or not st.issued or _zero(st.issued):
                continue
            prev = issued.get(st.issued)
            if (st.session is session and st.code == "OK_NewSessionEstablished" and prev is not None
                    and prev[0] is not session):
                was = st.known if st.known in ("paused", "terminated", "running") else None
                paused = any(p[1] == st.issued and p[2] is prev[0] for p in _pause_points(ctx))
                old_status = "paused" if paused else "earlier"
                sev = "warning" if old_status == "paused" else None
                yield self.finding(session, [prev[1].frame, st.res.frame],
                                   f"SessionSetupRes (frame {st.res.frame}) establishes a new session with "
                                   f"SessionID {st.issued}, the ID of {old_status} session {prev[0].id} "
                                   f"(SessionSetupRes frame {prev[1].frame})", time=st.res.time,
                                   severity=sev, measured=st.issued,
                                   evidence={"expected": f"a SessionID ≠ {st.issued}", "actual": st.issued,
                                             "earlier_session": prev[0].id, "offered_id_was": was},
                                   values=[judged(st.res, "Header.SessionID", st.issued)])
            issued[st.issued] = (st.session, st.res)
