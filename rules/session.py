"""V2G SessionIDs: new sessions, resume after a pause, the ID every message carries.

SessionID rules (PROTOCOL_FACTS §4.0 "SessionID rules", §4C "-20 rules"): the first
SessionSetupReq of a new session carries SessionID 0 (any all-zero value); the SECC answers
OK_NewSessionEstablished with a new, non-zero ID; to resume a paused session the EV offers
that session's ID and the SECC answers OK_OldSessionJoined with the same ID ([V2G2-463]);
an unknown non-zero ID gets a new ID ≠ 0 and ≠ the offered one ([V2G2-756]); every later
message in both directions carries the ID of SessionSetupRes ([V2G2-460], [V2G-DC-391]),
a request with another ID is answered FAILED_UnknownSession.

:func:`setups` indexes every SessionSetup exchange of the capture in frame order with what
the offered ID was at that moment (new, a paused session's, a terminated or running
session's, unknown); the rules read it. A long capture judged segment by segment
(analyzer/segments.py) hands on what its earlier segments issued (``ctx.carry``: each
SessionID's status and its last issue, as :class:`Past` stand-ins for the sessions and
messages already let go), so that an ID issued again an hour later is still seen.

How a session ends, as far as it concerns the session as a whole: an EVSE that stops the
charge on its own (EVSE_Shutdown / StopCharging, SES012 — the reason is in the charger, not
in the traffic) and an SECC that goes on after its own FAILED response instead of ending the
session (SES013).
"""
from __future__ import annotations

from dataclasses import dataclass

from ccs_analyzer.analyzer.views.index import v2g_messages
from ccs_analyzer.analyzer.views.walk import walk

from .base import Rule
from .helpers import body, facts, find_first, header, is_failed, protocol_of_session
from .state_machines import LOOP, qualifier

_EXEMPT = ("supportedAppProtocolReq", "supportedAppProtocolRes", "SessionSetupReq")


def _sid(e) -> str | None:
    sid = header(e).get("SessionID")
    return sid.lower() if isinstance(sid, str) else None


def _zero(sid: str | None) -> bool:
    return sid is not None and (sid == "" or set(sid) <= {"0"})


@dataclass
class Setup:
    """One SessionSetup exchange: ``req`` / ``res`` (None without response), the session
    and connection, ``offered`` (the request's SessionID, lower-case hex), ``code`` and
    ``issued`` (the response's ResponseCode and SessionID), ``known`` (what the offered ID
    was at that moment: "zero", "paused", "terminated", "running", "unknown") and
    ``owner`` (the session that issued the offered ID, when known)."""

    session: object
    conn: object
    req: object
    res: object | None
    offered: str | None
    code: str | None
    issued: str | None
    known: str
    owner: object | None


@dataclass(frozen=True)
class Past:
    """A session or message of an earlier segment, let go: its ``id`` (sessions) or its
    ``frame`` and ``time`` (messages) are what the rules still name."""

    id: str | None = None
    frame: int | None = None
    time: float | None = None


def setups(ctx) -> list[Setup]:
    """Every SessionSetup exchange of the capture, in frame order (built once per analysis;
    of a segment, after the earlier segments' last issue of each SessionID)."""
    return ctx.view("session.setups", None, lambda: _setups(ctx))


def _past(x):
    return None if x is None else Past(getattr(x, "id", None), getattr(x, "frame", None),
                                       getattr(x, "time", None))


def _setups(ctx) -> list[Setup]:
    carry = getattr(ctx, "carry", None)
    status, owner, past = (carry or {}).get("session.setups") or ({}, {}, [])
    status, owner = dict(status), dict(owner)
    out = _setups_of(ctx, status, owner)
    if carry is not None:         # hand on each ID's status, issuer and last issue
        last = {st.issued: st for st in past + out
                if st.res is not None and (st.code or "").startswith("OK") and st.issued}
        carry["session.setups"] = (
            status, {k: _past(v) for k, v in owner.items()},
            [Setup(_past(st.session), None, _past(st.req), _past(st.res), st.offered, st.code,
                   st.issued, st.known, _past(st.owner)) for st in last.values()])
    return past + out


def _setups_of(ctx, status: dict, owner: dict) -> list[Setup]:
    """The SessionSetup exchanges of ``ctx.sessions``; ``status`` (ID → running / paused /
    terminated) and ``owner`` (ID → the session that issued it) start with what earlier
    segments handed on and are updated."""
    events = []
    for s in ctx.sessions:
        for e in v2g_messages(s, ctx):
            if e.name in ("SessionSetupReq", "SessionSetupRes", "SessionStopReq", "SessionStopRes"):
                events.append((e.frame, e, s))
    events.sort(key=lambda x: x[0])
    # status: ID → running / paused / terminated; owner: ID → the session that issued it
    pending: dict = {}                 # conn → Setup waiting for its response
    stop_kind: dict = {}               # conn → ChargingSession of the last SessionStopReq
    conn_sid: dict = {}                # conn → ID in use on the connection
    out: list[Setup] = []
    for _, e, s in events:
        c = e.conn
        if e.name == "SessionSetupReq":
            sid = _sid(e)
            if _zero(sid):
                known = "zero"
            else:
                known = status.get(sid, "unknown")
            st = Setup(s, c, e, None, sid, None, None, known, owner.get(sid))
            out.append(st)
            pending[c] = st
        elif e.name == "SessionSetupRes":
            st = pending.pop(c, None)
            if st is None:
                continue
            st.res = e
            f = facts(e)
            st.code = f.get("ResponseCode") if isinstance(f.get("ResponseCode"), str) else None
            st.issued = _sid(e)
            if st.code and st.code.startswith("OK") and st.issued and not _zero(st.issued):
                status[st.issued] = "running"
                owner.setdefault(st.issued, s)
                if st.code == "OK_NewSessionEstablished" and st.issued in owner and owner[st.issued] is not s:
                    owner[st.issued] = s
                conn_sid[c] = st.issued
        elif e.name == "SessionStopReq":
            cs = body(e).get("ChargingSession")
            stop_kind[c] = cs if isinstance(cs, str) else "Terminate"
        elif e.name == "SessionStopRes":
            sid = conn_sid.get(c) or _sid(e)
            if sid and not is_failed(facts(e).get("ResponseCode")):
                status[sid] = "paused" if stop_kind.get(c) == "Pause" else "terminated"
    return out


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
                                         "ResponseCode": st.code, "issued": st.issued})


class ZeroSessionIdIssued(Rule):
    """SessionSetupRes hands out SessionID 0.

    What it checks: a SessionSetupRes with an OK response code whose header SessionID is
    all-zero (or empty).
    Why it matters: 0 means "no session / new session"; the EV cannot resume a session
    with it and every later message looks like a new-session request.
    Fix (SECC): generate a random, non-zero 8-byte SessionID for every new session.
    Source: ISO 15118-2 [V2G2-750] (⚠ RC changelog), DIN 70121 [V2G-DC-393] (new non-zero
    SessionID with OK_NewSessionEstablished); PROTOCOL_FACTS §4.0 SessionID rules.
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
                                             "actual": st.issued, "ResponseCode": st.code})


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
            why = expected = None
            if st.known == "zero":
                if st.code != "OK_NewSessionEstablished":
                    expected, why = "OK_NewSessionEstablished", f"{st.code} to SessionID 0"
            elif st.known == "paused":
                if st.code != "OK_OldSessionJoined" or st.issued != st.offered:
                    expected = f"OK_OldSessionJoined with SessionID {st.offered}"
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
            if why is None:
                continue
            yield self.finding(session, [st.req.frame, st.res.frame],
                               f"SessionSetupRes (frame {st.res.frame}) answers {why} "
                               f"(SessionSetupReq frame {st.req.frame})", time=st.res.time,
                               measured=st.code, limit=expected,
                               evidence={"expected": expected, "actual": f"{st.code} {st.issued}",
                                         "offered": st.offered, "offered_id_was": st.known})


def _stopped(v2g) -> bool:
    """Whether the session ended with an OK SessionStopRes (it did not break)."""
    return any(e.name == "SessionStopRes" and not is_failed(facts(e).get("ResponseCode")) for e in v2g)


def _expected_ids(session, ctx):
    """Per connection: (SessionSetupRes event, its ID) of the OK setup, in order."""
    out = {}
    for e in v2g_messages(session, ctx):
        if e.name == "SessionSetupRes":
            rc = facts(e).get("ResponseCode")
            sid = _sid(e)
            if isinstance(rc, str) and rc.startswith("OK") and sid and not _zero(sid):
                out[e.conn] = (e, sid)
    return out


def _mismatches(session, ctx):
    """Messages whose header SessionID differs from their connection's SessionSetupRes ID:
    [(event, expected id, setup response)]."""
    exp = _expected_ids(session, ctx)
    if not exp:
        return []
    out = []
    seen_setup: set = set()
    for e in v2g_messages(session, ctx):
        c = e.conn
        if e.name == "SessionSetupRes":
            if c in exp and exp[c][0] is e:
                seen_setup.add(c)
            continue
        if c not in seen_setup or e.name in _EXEMPT:
            continue
        sid = _sid(e)
        if sid != exp[c][1]:
            out.append((e, exp[c][1], exp[c][0]))
    return out


class SessionIdChanged(Rule):
    """A message carries another SessionID than the one SessionSetupRes established.

    What it checks: after an OK SessionSetupRes on a connection, the header SessionID of
    every later message in both directions against it (supportedAppProtocol and
    SessionSetupReq excepted). One finding per sender and wrong ID with the count; culprit
    the sender. Error when the session broke on it (a FAILED response, or the session ended
    without SessionStop within the next messages), warning when the peer tolerated it.
    Why it matters: the SECC shall answer a request with a foreign SessionID with
    FAILED_UnknownSession and the session ends; an EVSE response with a foreign ID makes the
    EV abort.
    Fix: the sender named: keep the SessionID of SessionSetupRes for the whole session,
    in every message.
    Source: ISO 15118-2 [V2G2-460]; DIN 70121 [V2G-DC-391]; ISO 15118-20 [V2G20-460]
    (D20-RPT); PROTOCOL_FACTS §4.0 SessionID rules (E-ISO, E-DIN).
    """

    code = "SES004"
    title = "SessionID changed during the session"
    severity = "error"
    category = "session"
    kinds = ("wrong-session-id",)
    explains = ("unknown-session", "failed-response", "evse-refused", "ev-abort", "evse-abort",
                "ev-stop", "no-session-stop", "connection-reset")
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-460] / DIN 70121 [V2G-DC-391] same SessionID in every message"
    failure_modes = ("UC2 110", "UC2 111")
    params = {"tail_messages": 3}

    def check(self, session, ctx):
        mm = _mismatches(session, ctx)
        if not mm:
            return
        v2g = v2g_messages(session, ctx)
        tail = {e.frame for e in v2g[-self.p["tail_messages"]:]}
        stopped = _stopped(v2g)
        groups: dict = {}
        for e, exp, setup in mm:
            groups.setdefault((e.direction, _sid(e)), []).append((e, exp, setup))
        for (direction, wrong), items in groups.items():
            e, exp, setup = items[0]
            last = items[-1][0]
            n = len(items)
            who = "EV" if direction == "EV->EVSE" else "EVSE"
            failed = [x for x, _, _ in items if is_failed(facts(x).get("ResponseCode"))]
            broke = bool(failed) or (not stopped and any(x.frame in tail for x, _, _ in items))
            more = f" ({n} messages, last {last.name} frame {last.frame})" if n > 1 else ""
            yield self.finding(session, [setup.frame, e.frame, last.frame],
                               f"{e.name} (frame {e.frame}) from the {who} carries SessionID {wrong} "
                               f"instead of {exp} (SessionSetupRes frame {setup.frame}){more}",
                               time=e.time, culprit="EVCC" if who == "EV" else "SECC",
                               severity=None if broke else "warning", measured=wrong, limit=exp,
                               evidence={"expected": exp, "actual": wrong, "count": n,
                                         "first_message": e.name, "tolerated": not broke})


def _unknown_session_answers(session, ctx):
    """(request, response, request had the session's ID?, expected ID) for every
    FAILED_UnknownSession response."""
    return ctx.view("session.unknown", session, lambda: _unknown(session, ctx))


def _unknown(session, ctx):
    pending: dict = {}
    out = []
    exp = None
    for e in v2g_messages(session, ctx):
        if e.name.endswith("Req"):
            pending[e.conn] = e
        elif e.name.endswith("Res"):
            req = pending.pop(e.conn, None)
            if req is None or facts(e).get("ResponseCode") != "FAILED_UnknownSession":
                continue
            if exp is None:
                exp = _expected_ids(session, ctx)
            want = exp.get(e.conn, (None, None))[1]
            offered = _sid(req)
            if req.name == "SessionSetupReq":
                own = True                   # SessionSetupReq is exempt from the check
            elif want is None:
                own = None
            else:
                own = offered == want
            out.append((req, e, own, want))
    return out


class UnknownSessionAnswered(Rule):
    """The SECC answered FAILED_UnknownSession to a request with a foreign SessionID.

    What it checks: FAILED_UnknownSession responses to requests whose header SessionID is
    not the one SessionSetupRes established on the connection: the SECC did as the standard
    asks; the cause is the request's ID (SES004), to which this consequence is linked.
    Why it matters: the session ends after a FAILED response.
    Fix (EVCC): keep the SessionID of SessionSetupRes in every request.
    Source: ISO 15118-2 [V2G2-460]; DIN 70121 [V2G-DC-391]; ISO 15118-20 [V2G20-460];
    PROTOCOL_FACTS §4.0.
    """

    code = "SES005"
    title = "FAILED_UnknownSession answered to a foreign SessionID"
    severity = "error"
    category = "session"
    kinds = ("unknown-session", "failed-response", "evse-refused")
    explains = ("ev-abort", "ev-stop", "no-session-stop", "connection-reset", "out-of-sequence")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-460] FAILED_UnknownSession"
    failure_modes = ("UC2 110",)

    def check(self, session, ctx):
        for req, res, own, want in _unknown_session_answers(session, ctx):
            if own is False:
                yield self.finding(session, [req.frame, res.frame],
                                   f"{res.name} (frame {res.frame}) answers FAILED_UnknownSession to "
                                   f"{req.name} (frame {req.frame}) carrying SessionID {_sid(req)} "
                                   f"instead of {want}", time=res.time, measured=_sid(req), limit=want,
                                   evidence={"expected": want, "actual": _sid(req)},
                                   key=f"foreign SessionID {_sid(req)} instead of {want}")


class UnknownSessionUnjustified(Rule):
    """The SECC answered FAILED_UnknownSession to a request with the right SessionID.

    What it checks: FAILED_UnknownSession responses to requests that carry the SessionID
    SessionSetupRes established on the connection, or to SessionSetupReq (which is exempt:
    an unknown offered ID gets a new session, [V2G2-756]). Warning with culprit unknown
    when the connection's SessionSetup was not captured.
    Why it matters: the SECC ends a session the EV ran correctly (a lost session context,
    e.g. after an SECC restart, or a SessionID compared wrongly).
    Fix (SECC): keep the session context for the session's lifetime; answer SessionSetupReq
    with an unknown ID by establishing a new session.
    Source: ISO 15118-2 [V2G2-460] [V2G2-756]; DIN 70121 [V2G-DC-391]; PROTOCOL_FACTS §4.0
    (E-ISO, E-DIN; EVerest ISO wrongly exempts ID 0).
    """

    code = "SES006"
    title = "FAILED_UnknownSession to the session's own SessionID"
    severity = "error"
    category = "session"
    kinds = ("unknown-session", "failed-response", "evse-refused")
    explains = ("ev-abort", "ev-stop", "no-session-stop", "connection-reset", "out-of-sequence")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-460] [V2G2-756]"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        for req, res, own, want in _unknown_session_answers(session, ctx):
            if own is False:
                continue
            if own is None:
                yield self.finding(session, [req.frame, res.frame],
                                   f"{res.name} (frame {res.frame}) answers FAILED_UnknownSession to "
                                   f"{req.name} (frame {req.frame}); the SessionSetup of this connection "
                                   "is not in the capture", time=res.time, culprit="unknown",
                                   severity="warning", measured=_sid(req),
                                   evidence={"expected": "unknown", "actual": _sid(req)})
                continue
            what = ("SessionSetupReq, which is exempt from the SessionID check"
                    if req.name == "SessionSetupReq" else f"the session's own SessionID {want}")
            yield self.finding(session, [req.frame, res.frame],
                               f"{res.name} (frame {res.frame}) answers FAILED_UnknownSession to "
                               f"{req.name} (frame {req.frame}) with {what}", time=res.time,
                               measured=_sid(req), limit=want,
                               evidence={"expected": "an OK response", "actual": "FAILED_UnknownSession",
                                         "request_SessionID": _sid(req), "session_SessionID": want})


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
                                         "paused_session": owner.id, "ResponseCode": st.code})


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
                                       evidence={"expected": v0, "actual": v1, "choice": what})


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
                                             "earlier_session": prev[0].id, "offered_id_was": was})
            issued[st.issued] = (st.session, st.res)


class MeteringReceiptSessionId(Rule):
    """MeteringReceiptReq carries another SessionID in its body than in its header.

    What it checks: the body element SessionID of MeteringReceiptReq (ISO 15118-2, DIN)
    against the header SessionID of the same message.
    Why it matters: the SECC checks the signed receipt against the session; a mismatch
    makes it refuse the receipt (FAILED_MeteringSignatureNotValid / FAILED_UnknownSession).
    Fix (EVCC): put the session's SessionID in both the header and the body.
    Source: ISO 15118-2 MeteringReceiptReqType (J-XSD-2); PROTOCOL_FACTS §4.0 SessionID
    rules, §5 "MeteringReceiptReq: body SessionID = header SessionID".
    """

    code = "SES010"
    title = "MeteringReceiptReq body SessionID differs from the header"
    severity = "warning"
    category = "session"
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "ISO 15118-2 MeteringReceiptReq SessionID = header SessionID"
    failure_modes = ("UC2 252",)

    def check(self, session, ctx):
        bad = []
        for e in v2g_messages(session, ctx):
            if e.name != "MeteringReceiptReq":
                continue
            b = body(e).get("SessionID")
            h = _sid(e)
            if isinstance(b, str) and b.lower() != h:
                bad.append((e, b.lower(), h))
        if not bad:
            return
        e, b, h = bad[0]
        n = len(bad)
        more = f" ({n} receipts, last frame {bad[-1][0].frame})" if n > 1 else ""
        yield self.finding(session, [e.frame, bad[-1][0].frame],
                           f"MeteringReceiptReq (frame {e.frame}) carries SessionID {b} in its body "
                           f"but {h} in its header{more}", time=e.time, measured=b, limit=h,
                           evidence={"expected": h, "actual": b, "count": n})


class SessionIdLength20(Rule):
    """An ISO 15118-20 message header carries a SessionID that is not 8 bytes long.

    What it checks: the header SessionID of every ISO 15118-20 message (both directions)
    has exactly 8 bytes (16 hex digits). One finding per sender and length with the count;
    error when the session broke on it (a FAILED response or the end of the session),
    warning when the peer tolerated it.
    Why it matters: the -20 schema fixes the length (hexBinary, exactly 8 bytes); a strict
    peer rejects the message.
    Fix: the sender named: use an 8-byte SessionID (8 zero bytes in the first
    SessionSetupReq).
    Source: ISO 15118-20 MessageHeaderType SessionID (J-XSD-20, length 8); PROTOCOL_FACTS
    §4C "Header: SessionID (hexBinary, exactly 8 bytes)".
    """

    code = "SES011"
    title = "ISO 15118-20 SessionID not 8 bytes"
    severity = "error"
    category = "session"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "unknown"
    protocols = ("ISO 15118-20",)
    requirement = "ISO 15118-20 MessageHeaderType: SessionID of 8 bytes"
    failure_modes = ("UC2 110", "UC2 111")
    params = {"tail_messages": 3}

    def check(self, session, ctx):
        v2g = [e for e in v2g_messages(session, ctx)
               if e.name not in ("supportedAppProtocolReq", "supportedAppProtocolRes")]
        tail = {e.frame for e in v2g[-self.p["tail_messages"]:]}
        stopped = _stopped(v2g)
        groups: dict = {}
        for e in v2g:
            sid = _sid(e)
            if sid is None or len(sid) != 16:
                groups.setdefault((e.direction, None if sid is None else len(sid) // 2), []).append(e)
        for (direction, nbytes), items in groups.items():
            e, last = items[0], items[-1]
            n = len(items)
            who = "EV" if direction == "EV->EVSE" else "EVSE"
            broke = any(is_failed(facts(x).get("ResponseCode")) or (not stopped and x.frame in tail)
                        for x in items)
            more = f" ({n} messages, last frame {last.frame})" if n > 1 else ""
            size = "no SessionID" if nbytes is None else f"a {nbytes}-byte SessionID ({_sid(e)})"
            yield self.finding(session, [e.frame, last.frame],
                               f"{e.name} (frame {e.frame}) from the {who} carries {size} instead of "
                               f"8 bytes{more}", time=e.time, culprit="EVCC" if who == "EV" else "SECC",
                               severity=None if broke else "warning", measured=nbytes, limit=8,
                               unit="bytes", evidence={"expected": "8 bytes", "actual": nbytes,
                                                       "count": n})


# --------------------------------------------------------------------------- how sessions end
#: Charge-loop responses (one per cycle) that can carry the EVSE's stop request.
_LOOP_RES = frozenset(f"{n}Res" for n in LOOP)
#: DC_EVSEStatusCode values that report a fault (RSP004's), not a normal stop.
_FAULTS = ("EVSE_EmergencyShutdown", "EVSE_Malfunction", "EVSE_UtilityInterruptEvent")


def _evse_stop(e) -> str | None:
    """What in a charge-loop response asks the EV to stop (EVSE_Shutdown, EVSENotification
    StopCharging / ISO 15118-20 Terminate), None when nothing does or when a fault status
    (RSP004), an RCD trip (RSP009) or a FAILED code says it."""
    if e.name not in _LOOP_RES:
        return None
    f = facts(e)
    if is_failed(f.get("ResponseCode")) or f.get("EVSEStatusCode") in _FAULTS:
        return None
    parts = []
    if f.get("EVSEStatusCode") == "EVSE_Shutdown":
        parts.append("EVSE_Shutdown")
    if f.get("EVSENotification") in ("StopCharging", "Terminate"):
        parts.append(f"EVSENotification {f['EVSENotification']}")
    if parts and find_first(body(e), "RCD") is True:
        return None                     # an AC residual-current trip: RSP009 names the reason
    return " + ".join(parts) or None


def _ev_asked_to_stop(e) -> bool:
    """Whether an EV loop request already asks to end the charge (ChargingComplete, EVReady
    false, an EV error code, ISO 15118-20 EVTerminationCode): the EVSE's stop then answers
    the EV's."""
    if e is None:
        return False
    b = body(e)
    f = facts(e)
    err = f.get("EVErrorCode")
    return (find_first(b, "ChargingComplete") is True or f.get("EVReady") is False
            or (isinstance(err, str) and err not in ("NO_ERROR", "NoData"))
            or find_first(b, "EVTerminationCode") is not None)


def _stop_reaction(protocol, e) -> bool:
    """The EV stops: PowerDeliveryReq Stop (DIN ReadyToChargeState false; -20 also
    Standby), WeldingDetectionReq, SessionStopReq."""
    n = e.name
    if n in ("SessionStopReq", "WeldingDetectionReq", "DC_WeldingDetectionReq"):
        return True
    return n == "PowerDeliveryReq" and qualifier(protocol, "PowerDelivery", body(e)) in ("Stop", "Standby")


class EvseStoppedCharging(Rule):
    """The EVSE stopped the charge on its own, and the EV followed.

    What it checks: the first charge-loop response (CurrentDemandRes, ChargingStatusRes,
    ISO 15118-20 DC_/AC_ChargeLoopRes) that asks the EV to stop — DC_EVSEStatusCode
    EVSE_Shutdown and/or EVSENotification StopCharging (ISO 15118-20: Terminate) — while the
    EV's own requests did not ask to end (no ChargingComplete, EVReady true, no EV error
    code), after which the EV stops (PowerDeliveryReq Stop / ReadyToChargeState false,
    WeldingDetectionReq or SessionStopReq). Names how long the charge had run (from the first
    loop request of that loop) and the current at the stop (EVSEPresentCurrent of the last
    loop response before it). A fault status (EVSE_EmergencyShutdown, EVSE_Malfunction,
    EVSE_UtilityInterruptEvent) is RSP004's, an AC residual-current trip (RCD true) RSP009's;
    an EV that did not stop in time is RSP003's.
    Why it matters: the charge ended because the charger decided so — a user or operator
    stop, a backend / authorization end, a power-module or grid limit; the traffic carries
    no reason (EVSE_Shutdown means "normal stop"), so the session's failure is explained only
    by the charger's log.
    Fix (SECC): check the charger's log at that time for why it stopped the transaction;
    when it was not meant to, fix that cause.
    Source: DIN 70121 / ISO 15118-2 DC_EVSEStatusType (EVSEStatusCode EVSE_Shutdown,
    EVSENotification StopCharging, NotificationMaxDelay), AC_EVSEStatusType; ISO 15118-20
    EVSEStatusType (EVSENotification Terminate); PROTOCOL_FACTS §4.0 "Status semantics"
    (EVSE_Shutdown in CurrentDemandRes = EVSE-initiated normal stop; PYPLC readme, Compleo).
    """

    code = "SES012"
    title = "EVSE stopped the charge"
    severity = "warning"
    category = "session"
    kinds = ("evse-stop",)
    explains = ("ev-stop", "ev-pause", "no-session-stop")
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "DIN 70121 / ISO 15118-2 EVSEStatusCode EVSE_Shutdown, EVSENotification StopCharging"
    failure_modes = ("UC2 238",)

    def check(self, session, ctx):
        protocol = protocol_of_session(session, ctx)
        msgs = v2g_messages(session, ctx)
        loop_start = None
        last_req = prev_req = None
        last_res = None
        for i, e in enumerate(msgs):
            if e.name.endswith("Req"):
                if e.name[:-3] in LOOP:
                    if loop_start is None:
                        loop_start = e
                    prev_req, last_req = last_req, e
                elif e.name not in ("MeteringReceiptReq", "MeteringConfirmationReq"):
                    loop_start = None
                continue
            what = _evse_stop(e)
            if what is None:
                if e.name in _LOOP_RES:
                    last_res = e
                continue
            if _ev_asked_to_stop(last_req) or _ev_asked_to_stop(prev_req):
                return                  # the EVSE answers the EV's own stop
            reaction = next((x for x in msgs[i + 1:] if x.name.endswith("Req")
                             and _stop_reaction(protocol, x)), None)
            if reaction is None:
                return                  # the EV did not stop (RSP003, CHL002)
            react_res = next((x for x in msgs[i + 1:] if x.time >= reaction.time
                              and x.name == reaction.name[:-3] + "Res"), None)
            ran = e.time - loop_start.time if loop_start is not None else None
            amps = facts(last_res).get("EVSEPresentCurrent_A") if last_res is not None else None
            if amps is None:
                amps = facts(e).get("EVSEPresentCurrent_A")
            ran_txt = f"after {ran:.1f} s of charging" if ran is not None else "during charging"
            at = f" at {amps:.1f} A" if isinstance(amps, (int, float)) else ""
            frames = [e.frame, reaction.frame] + ([react_res.frame] if react_res is not None else [])
            if last_req is not None:
                frames.append(last_req.frame)
            yield self.finding(
                session, frames,
                f"The EVSE stopped the charge ({e.name} frame {e.frame}: {what}, {ran_txt}{at}); the "
                f"EV followed with {reaction.name} (frame {reaction.frame}, "
                f"{reaction.time - e.time:.2f} s later). The reason is not in the traffic — check "
                "the charger's log",
                time=e.time, measured=what, unit=None,
                evidence={"expected": "the charge ends when the EV asks (ChargingComplete, PowerDelivery "
                                      "Stop)",
                          "actual": f"{what} from the EVSE at frame {e.frame}",
                          "signal": what, "charging_s": round(ran, 3) if ran is not None else None,
                          "present_current_A": amps, "reaction": reaction.name,
                          "reaction_frame": reaction.frame})
            return


class FailedNotTerminated(Rule):
    """The SECC went on after its own FAILED response instead of ending the session.

    What it checks: per connection, after the first response with a FAILED ResponseCode
    (supportedAppProtocol's Failed_NoNegotiation is the handshake rules'), whether the SECC
    kept answering further requests of the EV on that connection (SessionStopReq apart)
    instead of terminating the session and closing the connection. One finding per
    connection with the number of requests answered after the FAILED response, the time
    the SECC kept the session alive and the first and last frames. The EV that went on is
    SEQ002's (sequence, EVCC).
    Why it matters: a FAILED response ends the session ([V2G2-539], DIN [V2G-DC-665]); an SECC
    that keeps the connection open and answers on keeps an EV in a dead session (e.g. 161
    CableCheckReq over a minute, each answered FAILED_SequenceError) instead of letting it
    restart cleanly, and holds the charge point.
    Fix (SECC): after sending a FAILED response stop the V2G session: close the TCP
    connection (ISO 15118-2 [V2G2-539] with [V2G2-034]; DIN [V2G-DC-665]).
    Source: ISO 15118-2 [V2G2-539]; DIN 70121 [V2G-DC-665]; ISO 15118-20 (a FAILED response
    ends the session, ⚠ E-D20); PROTOCOL_FACTS §4.0 ("then the SECC terminates [V2G2-539],
    closing TCP [V2G2-034]").
    """

    code = "SES013"
    title = "SECC did not end the session after its FAILED response"
    severity = "warning"
    category = "session"
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-539] / DIN 70121 [V2G-DC-665] terminate after FAILED"
    failure_modes = ("UC2 111",)

    def check(self, session, ctx):
        w = walk(session, ctx)
        by_conn: dict = {}
        for st in w.steps:
            by_conn.setdefault(st.conn, []).append(st)
        for conn, steps in by_conn.items():
            first = next((st for st in steps if st.res is not None and st.base != "supportedAppProtocol"
                          and is_failed(facts(st.res).get("ResponseCode"))), None)
            if first is None:
                continue
            after = [st for st in steps if st.req.time > first.res.time and st.res is not None
                     and st.base != "SessionStop"]
            if not after:
                continue
            rc = facts(first.res).get("ResponseCode")
            last = after[-1]
            span = last.res.time - first.res.time
            codes = sorted({str(facts(st.res).get("ResponseCode")) for st in after})
            f = self.finding(
                session, [first.req.frame, first.res.frame, after[0].req.frame, after[0].res.frame,
                          last.res.frame],
                f"After {first.res.name} {rc} (frame {first.res.frame}) the SECC did not end the session: "
                f"it kept connection {conn} open and answered {len(after)} more request(s) over "
                f"{span:.1f} s ({after[0].req.name} frame {after[0].req.frame} … {last.res.name} frame "
                f"{last.res.frame}, {', '.join(codes)}) instead of closing it",
                time=first.res.time, measured=len(after), limit=0, unit="requests",
                evidence={"expected": "the SECC ends the session (closes TCP) after a FAILED response",
                          "actual": f"{len(after)} requests answered over {span:.1f} s",
                          "failed_response": first.res.name, "ResponseCode": rc,
                          "answered_after": len(after), "codes_after": codes, "connection": conn})
            f.count = len(after)
            yield f
