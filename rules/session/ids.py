"""Session rules on the SessionID within a session: SES004-SES006, SES010, SES011."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import v2g_messages

from ..base import Rule, judged
from ..helpers import body, facts, is_failed
from .common import _sid, _zero

_EXEMPT = ("supportedAppProtocolReq", "supportedAppProtocolRes", "SessionSetupReq")


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
    sids: dict = {}                  # id(tree) → its SessionID (the events keep their trees)
    for e in v2g_messages(session, ctx):
        c = e.conn
        if e.name == "SessionSetupRes":
            if c in exp and exp[c][0] is e:
                seen_setup.add(c)
            continue
        if c not in seen_setup or e.name in _EXEMPT:
            continue
        k = id(e.message)
        sid = sids[k] if k in sids else sids.setdefault(k, _sid(e))
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

    Example:

        #43 SessionSetupReq SessionID=00 → #45 SessionSetupRes SessionID=e31fe59dd7038005
        #63 CableCheckReq SessionID=855be4b46456cdf3
          → #65 CableCheckRes ResponseCode=FAILED_UnknownSession SessionID=e31fe59dd7038005
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
                                         "first_message": e.name, "tolerated": not broke},
                               values=[judged(x, "Header.SessionID", _sid(x), expected=exp)
                                       for x in (e, last)])


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

    Example:

        #63 CableCheckReq SessionID=855be4b46456cdf3
          → #65 CableCheckRes ResponseCode=FAILED_UnknownSession SessionID=e31fe59dd7038005
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
                                   key=f"foreign SessionID {_sid(req)} instead of {want}",
                                   values=[judged(req, "Header.SessionID", _sid(req), expected=want),
                                           judged(res, "ResponseCode", "FAILED_UnknownSession")])


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

    Example:

        #151 PowerDeliveryReq SessionID=e31fe59dd7038005
          → #153 PowerDeliveryRes ResponseCode=FAILED_UnknownSession SessionID=e31fe59dd7038005
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
                                   severity="warning", measured="FAILED_UnknownSession",
                                   evidence={"expected": "unknown", "actual": _sid(req)},
                                   values=[judged(req, "Header.SessionID", _sid(req)),
                                           judged(res, "ResponseCode", "FAILED_UnknownSession")])
                continue
            what = ("SessionSetupReq, which is exempt from the SessionID check"
                    if req.name == "SessionSetupReq" else f"the session's own SessionID {want}")
            yield self.finding(session, [req.frame, res.frame],
                               f"{res.name} (frame {res.frame}) answers FAILED_UnknownSession to "
                               f"{req.name} (frame {req.frame}) with {what}", time=res.time,
                               measured="FAILED_UnknownSession", limit="OK",
                               evidence={"expected": "an OK response", "actual": "FAILED_UnknownSession",
                                         "request_SessionID": _sid(req), "session_SessionID": want},
                               values=[judged(req, "Header.SessionID", _sid(req)),
                                       judged(res, "ResponseCode", "FAILED_UnknownSession",
                                              expected="OK")])


class MeteringReceiptSessionId(Rule):
    """MeteringReceiptReq carries another SessionID in its body than in its header.

    What it checks: the body element SessionID of MeteringReceiptReq (ISO 15118-2, DIN)
    against the header SessionID of the same message.
    Why it matters: the SECC checks the signed receipt against the session; a mismatch
    makes it refuse the receipt (FAILED_MeteringSignatureNotValid / FAILED_UnknownSession).
    Fix (EVCC): put the session's SessionID in both the header and the body.
    Source: ISO 15118-2 MeteringReceiptReqType (J-XSD-2); PROTOCOL_FACTS §4.0 SessionID
    rules, §5 "MeteringReceiptReq: body SessionID = header SessionID".

    Example:

        #106 MeteringReceiptReq SessionID=e31fe59dd7038005
          → #108 MeteringReceiptRes SessionID=e31fe59dd7038005
        #130 MeteringReceiptReq SessionID=e31fe59dd7038005
          → #132 MeteringReceiptRes SessionID=e31fe59dd7038005
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
                           evidence={"expected": h, "actual": b, "count": n},
                           values=[judged(e, "MeteringReceiptReq.SessionID", b, expected=h),
                                   judged(e, "Header.SessionID", h)])


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

    Example:

        #55 SessionSetupReq SessionID=00 → #57 SessionSetupRes SessionID=e31fe59dd7038005
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
                                                       "count": n},
                               values=[judged(x, "Header.SessionID") for x in (e, last)])
