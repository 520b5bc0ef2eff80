"""Session rules on the SessionID offered and issued at SessionSetup: SES001-SES003."""
from __future__ import annotations

from ..base import Rule, judged
from .common import _zero, setups


class NonZeroSessionIdWithoutPause(Rule):
    """SessionSetupReq offers a non-zero SessionID while no paused session exists.

    What it checks: a SessionSetupReq whose SessionID is not all-zero although no session
    paused earlier in the capture (SessionStopReq ChargingSession = Pause) has that ID.
    When the SECC answers OK_OldSessionJoined for an ID the capture never saw, the pause
    happened before the capture started: no finding. Offering the ID of a session that was
    terminated or broke off is reported too.
    Why it matters: a new session starts with SessionID 0 (PROTOCOL_FACTS §4.0); a stale
    non-zero ID makes the SECC establish a new session ([V2G2-756]) or, in faulty SECCs,
    join the wrong one.
    Fix (EVCC): send SessionID 0 in the first SessionSetupReq of a new session; offer a
    stored SessionID only to resume a paused session.
    Source: ISO 15118-2 [V2G2-463] [V2G2-756], DIN 70121 [V2G-DC-393]; PROTOCOL_FACTS §4.0
    SessionID rules (PYPLC Checkpoint 500, J-SECC-DIN, J-SECC-2, E-ISO).

    Example:

        #43 SessionSetupReq SessionID=4a5e1d9c2b7f3e08
          → #45 SessionSetupRes SessionID=e31fe59dd7038005 ResponseCode=OK_NewSessionEstablished
    """

    code = "SES001"
    title = "Non-zero SessionID without a paused session to resume"
    severity = "warning"
    category = "session"
    kinds = ("wrong-session-id",)
    explains = ("unknown-session",)
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-463] [V2G2-756] SessionID 0 for a new session"
    failure_modes = ("UC2 196",)

    def check(self, session, ctx):
        all_setups = setups(ctx)
        paused_exists = any(x.known == "paused" for x in all_setups)
        for st in all_setups:
            if st.session is not session or st.known in ("zero", "paused"):
                continue
            if st.known == "unknown" and (st.code == "OK_OldSessionJoined" or paused_exists):
                continue
            what = {"unknown": "an ID the capture never saw issued",
                    "terminated": f"the ID of session {getattr(st.owner, 'id', '?')}, which was terminated",
                    "running": f"the ID of session {getattr(st.owner, 'id', '?')}, which was never paused"
                    }[st.known]
            ans = f"; the SECC answered {st.code} (frame {st.res.frame})" if st.res is not None else ""
            yield self.finding(session, [st.req.frame] + ([st.res.frame] if st.res else []),
                               f"SessionSetupReq (frame {st.req.frame}) offers SessionID {st.offered}, "
                               f"{what}, instead of 0{ans}", time=st.req.time,
                               measured=st.offered, limit="0",
                               evidence={"expected": "SessionID 0 (new session) or a paused session's ID",
                                         "actual": st.offered, "offered_id_was": st.known,
                                         "ResponseCode": st.code, "issued": st.issued},
                               values=[judged(st.req, "Header.SessionID", st.offered, expected="0")])


class ZeroSessionIdIssued(Rule):
    """SessionSetupRes hands out SessionID 0.

    What it checks: a SessionSetupRes with an OK response code whose header SessionID is
    all-zero (or empty).
    Why it matters: 0 means "no session / new session"; the EV cannot resume a session
    with it and every later message looks like a new-session request.
    Fix (SECC): generate a random, non-zero 8-byte SessionID for every new session.
    Source: ISO 15118-2 [V2G2-750] (⚠ RC changelog), DIN 70121 [V2G-DC-393] (new non-zero
    SessionID with OK_NewSessionEstablished); PROTOCOL_FACTS §4.0 SessionID rules.

    Example:

        #43 SessionSetupReq SessionID=0000000000000000
          → #45 SessionSetupRes SessionID=0000000000000000 ResponseCode=OK_NewSessionEstablished
    """

    code = "SES002"
    title = "SessionSetupRes hands out SessionID 0"
    severity = "warning"
    category = "session"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-750] no all-zero SessionID"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        for st in setups(ctx):
            if st.session is not session or st.res is None or not (st.code or "").startswith("OK"):
                continue
            if st.issued is None or _zero(st.issued):
                yield self.finding(session, [st.req.frame, st.res.frame],
                                   f"SessionSetupRes (frame {st.res.frame}) answers {st.code} with "
                                   f"SessionID {st.issued!r}: an all-zero SessionID",
                                   time=st.res.time, measured=st.issued, limit="non-zero",
                                   evidence={"expected": "a random non-zero SessionID",
                                             "actual": st.issued, "ResponseCode": st.code},
                                   values=[judged(st.res, "Header.SessionID", st.issued,
                                                  expected="non-zero")])


class SetupResponseCodeMismatch(Rule):
    """The SessionSetupRes code or ID does not fit the SessionID the EV offered.

    What it checks: SessionID 0 offered → OK_NewSessionEstablished expected; the ID of a
    session paused earlier in the capture → OK_OldSessionJoined with the same ID expected
    (an SECC that establishes a new session instead does not support resume); any other
    non-zero ID → OK_NewSessionEstablished with a new ID different from the offered one
    ([V2G2-756]); OK_OldSessionJoined must echo the offered ID.
    Why it matters: the EV's view of the session (new or resumed, which ID) differs from the
    SECC's: a resumed session loses its payment and schedule context, or the EV keeps the
    wrong ID.
    Fix (SECC): answer per the SessionID rules: new ID with OK_NewSessionEstablished, the
    paused session's own ID with OK_OldSessionJoined.
    Source: ISO 15118-2 [V2G2-463] [V2G2-756]; DIN 70121 [V2G-DC-393]; ISO 15118-20
    responseCodeType (OK_NewSessionEstablished / OK_OldSessionJoined); PROTOCOL_FACTS §4.0
    SessionID rules (E-ISO, J-SECC-2).

    Example:

        #207 SessionSetupReq SessionID=e31fe59dd7038005
          → #209 SessionSetupRes ResponseCode=OK_NewSessionEstablished SessionID=855be4b46456cdf3
    """

    code = "SES003"
    title = "SessionSetupRes does not fit the offered SessionID"
    severity = "warning"
    category = "session"
    explains = ("unknown-session",)
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-463] [V2G2-756] SessionSetupRes ResponseCode"
    failure_modes = ("UC2 176", "UC2 180")

    def check(self, session, ctx):
        for st in setups(ctx):
            if st.session is not session or st.res is None or not (st.code or "").startswith("OK"):
                continue
            why = expected = want_code = None
            if st.known == "zero":
                if st.code != "OK_NewSessionEstablished":
                    expected, why = "OK_NewSessionEstablished", f"{st.code} to SessionID 0"
                    want_code = expected
            elif st.known == "paused":
                if st.code != "OK_OldSessionJoined" or st.issued != st.offered:
                    expected = f"OK_OldSessionJoined with SessionID {st.offered}"
                    want_code = "OK_OldSessionJoined" if st.code != "OK_OldSessionJoined" else None
                    why = (f"{st.code} with SessionID {st.issued} to the paused session's ID "
                           f"{st.offered}: the SECC did not resume the paused session")
            else:
                if st.code == "OK_OldSessionJoined" and st.issued != st.offered:
                    expected = f"OK_OldSessionJoined echoing {st.offered}"
                    why = f"OK_OldSessionJoined with another SessionID ({st.issued})"
                elif st.code == "OK_NewSessionEstablished" and st.issued == st.offered:
                    expected, why = "a new SessionID ≠ the offered one", \
                        f"OK_NewSessionEstablished reusing the offered SessionID {st.offered}"
                elif st.code not in ("OK_NewSessionEstablished", "OK_OldSessionJoined"):
                    expected, why = "OK_NewSessionEstablished", f"{st.code} to SessionID {st.offered}"
                    want_code = expected
            if why is None:
                continue
            yield self.finding(session, [st.req.frame, st.res.frame],
                               f"SessionSetupRes (frame {st.res.frame}) answers {why} "
                               f"(SessionSetupReq frame {st.req.frame})", time=st.res.time,
                               measured=st.code, limit=want_code,
                               evidence={"expected": expected, "actual": f"{st.code} {st.issued}",
                                         "offered": st.offered, "offered_id_was": st.known},
                               values=[judged(st.req, "Header.SessionID", st.offered),
                                       judged(st.res, "ResponseCode", st.code, expected=expected),
                                       judged(st.res, "Header.SessionID", st.issued)])
