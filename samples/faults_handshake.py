"""Faults of the session's set-up and message pattern — registered with :func:`ccs_analyzer.samples.faults.fault`.

What real EVs and chargers get wrong in the supportedAppProtocol handshake (DIN SPEC 70121
[V2G-DC-167..]; ISO 15118-2 [V2G2-173..]), in SessionIDs (pause / resume, fixed IDs, metering
receipts' headers) and in the request / response pattern (duplicate, stale or repeated
messages). Each fault models one behaviour seen in the field or in the reference
implementations (the corpus captures in ../shared/corpus, PROTOCOL_FACTS, ChargeX PFMEA) and
says how the other side reacts. Helpers: faults_edit.py.
"""
from __future__ import annotations


from .faults import FaultError, _random_session_id, fault
from .script import Connection, Ending, Exchange, SdpPlan, TcpPlan, body_of, header_of, set_response_code



from . import faults_edit as ed


# ====================================================================== handshake
def _sap(ctx):
    """(ci, xi, exchange) of the session's first supportedAppProtocol exchange."""
    ci, xi, x, _ = ctx.find("supportedAppProtocolReq", 1)
    return ci, xi, x


def _entries(x) -> list:
    return x.request.tree["supportedAppProtocolReq"]["AppProtocol"]


@fault("sap_failed_keeps_schema_id", level="script", stage="after", category="handshake", schema_id=None)
def sap_failed_keeps_schema_id(ctx, schema_id):
    """The SECC supports none of the EV's protocols and answers supportedAppProtocolRes
    Failed_NoNegotiation — but fills in a SchemaID anyway (``schema_id``; default the first
    offered entry's), as an SECC that always copies its SchemaID field does; the response
    must not carry one with Failed_NoNegotiation ([V2G-DC-226] ⚠, PROTOCOL_FACTS §3). The
    SECC closes the connection."""
    ci, xi, x = _sap(ctx)
    sid = int(schema_id) if schema_id is not None else _entries(x)[0]["SchemaID"]
    x.response.tree = {"supportedAppProtocolRes": {"ResponseCode": "Failed_NoNegotiation", "SchemaID": sid}}
    x.response.invalidate()
    ed.note(x.response, f"sap_failed_keeps_schema_id: Failed_NoNegotiation with SchemaID {sid}")
    ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="FIN", after_s=ctx.timing.failed_close_s,
                                      reason="SECC closes after Failed_NoNegotiation"))


@fault("sap_not_preferred", level="script", stage="before", category="handshake", preferred="ISO 15118-2")
def sap_not_preferred(ctx, preferred):
    """The EV ranks ``preferred`` first (Priority 1) in supportedAppProtocolReq and the
    session's protocol second; the SECC — configured for (or falling back to) the session's
    protocol — picks the lower-priority entry instead of the highest-priority one it could
    know (ISO 15118-2 supportedAppProtocol, [V2G20-167]: the SECC picks the highest
    priority it supports). Typical of chargers set to DIN 70121 first, or that fall back to
    DIN after a failed ISO 15118-2 session. The session goes on in the session's protocol."""
    if preferred == ctx.protocol:
        raise FaultError("sap_not_preferred: preferred must differ from the session's protocol")
    default = {"DIN 70121": ["DIN 70121"], "ISO 15118-2": ["ISO 15118-2", "DIN 70121"],
               "ISO 15118-20": ["ISO 15118-20", "ISO 15118-2"]}[ctx.protocol]
    offered = [p for p in (ctx.spec.ev.protocols or default) if p != preferred]
    ctx.spec.ev.protocols = [preferred] + offered


@fault("sap_version_mismatch", level="script", stage="after", category="handshake",
       major=None, minor=1, answer="OK_SuccessfulNegotiation")
def sap_version_mismatch(ctx, major, minor, answer):
    """The EV offers the session's protocol with another version (``major``.``minor``;
    default the published major and minor 1, e.g. ISO 15118-2 2.1) and the SECC accepts it
    with ``answer``: "OK_SuccessfulNegotiation" hides the deviation (it should answer
    …WithMinorDeviation for another minor, Failed_NoNegotiation for another major: ISO 15118-2
    supportedAppProtocol version matching, PROTOCOL_FACTS §3);
    "OK_SuccessfulNegotiationWithMinorDeviation" is the correct answer (reported for
    information). The session goes on."""
    ci, xi, x = _sap(ctx)
    res = x.response.tree["supportedAppProtocolRes"]
    chosen = next(a for a in _entries(x) if a["SchemaID"] == res.get("SchemaID"))
    if major is not None:
        chosen["VersionNumberMajor"] = int(major)
    chosen["VersionNumberMinor"] = int(minor)
    res["ResponseCode"] = answer
    x.request.invalidate()
    ed.encodes(x.response)
    ed.note(x.request, f"sap_version_mismatch: {chosen['ProtocolNamespace']} version "
                     f"{chosen['VersionNumberMajor']}.{chosen['VersionNumberMinor']} offered")
    ed.note(x.response, f"sap_version_mismatch: the SECC answers {answer}")


@fault("sap_schema_id_not_echoed", level="script", stage="after", category="handshake",
       schema_id=1, first_id=10, ev_reaction="fin")
def sap_schema_id_not_echoed(ctx, schema_id, first_id, ev_reaction):
    """The EV numbers its AppProtocol entries from ``first_id`` (the dSPACE EV uses 10 or
    111 / 222) and the SECC answers a fixed SchemaID ``schema_id`` instead of echoing the
    chosen entry's (ISO 15118-2 supportedAppProtocolRes: the SchemaID of the chosen entry;
    PROTOCOL_FACTS §3). The EV cannot map it to its offer: ``ev_reaction`` "fin" — it closes
    the connection; "continue" — it guesses its first entry and goes on."""
    ci, xi, x = _sap(ctx)
    res = x.response.tree["supportedAppProtocolRes"]
    for i, a in enumerate(_entries(x)):
        a["SchemaID"] = int(first_id) + i
    res["SchemaID"] = int(schema_id)
    if any(a["SchemaID"] == int(schema_id) for a in _entries(x)):
        raise FaultError("sap_schema_id_not_echoed: schema_id is one of the offered SchemaIDs")
    x.request.invalidate()
    x.response.invalidate()
    ed.note(x.response, f"sap_schema_id_not_echoed: SchemaID {schema_id}, offered "
                      f"{[a['SchemaID'] for a in _entries(x)]}")
    if ev_reaction == "fin":
        ctx.plan.terminate(ci, xi, Ending(by="EV", how="FIN", after_s=0.05,
                                          reason="the EV closes: SchemaID not among its offer"))
    elif ev_reaction != "continue":
        raise FaultError(f"sap_schema_id_not_echoed: ev_reaction {ev_reaction!r}; fin or continue")


@fault("sap_offer_duplicates", level="script", stage="after", category="handshake",
       field="SchemaID", value=1)
def sap_offer_duplicates(ctx, field, value):
    """The EV gives every AppProtocol entry of supportedAppProtocolReq the same ``field``
    ("SchemaID" or "Priority") = ``value`` — a hard-coded number in its offer list. SchemaIDs
    must be unique (the response's SchemaID is the only way to tell the chosen entry) and
    priorities should be (ISO 15118-2 supportedAppProtocol, PROTOCOL_FACTS §3). The SECC
    answers with the SchemaID / its choice and the session goes on."""
    if field not in ("SchemaID", "Priority"):
        raise FaultError(f"sap_offer_duplicates: field {field!r}; SchemaID or Priority")
    ci, xi, x = _sap(ctx)
    entries = _entries(x)
    if len(entries) < 2:
        raise FaultError("sap_offer_duplicates: the EV offers a single protocol (set ev.protocols)")
    res = x.response.tree["supportedAppProtocolRes"]
    if field == "SchemaID" and "SchemaID" in res:
        res["SchemaID"] = int(value)
    for a in entries:
        a[field] = int(value)
    x.request.invalidate()
    x.response.invalidate()
    ed.note(x.request, f"sap_offer_duplicates: every entry has {field} {value}")


@fault("sap_unanswered", level="script", stage="after", category="handshake",
       reconnects=2, timeout_s=2.0, gap_s=1.0)
def sap_unanswered(ctx, reconnects, timeout_s, gap_s):
    """The SECC's V2G server accepts the TCP connection but never answers
    supportedAppProtocolReq (hung after a previous session); the EV closes after
    V2G_EVCC_Msg_Timeout ``timeout_s`` (2 s, ISO 15118-2 Table 109), waits ``gap_s`` and
    tries again — SDP, TCP, supportedAppProtocolReq — ``reconnects`` times, never answered
    (pyPLC's westparkAlpi capture: three reconnects that get only SAP requests)."""
    from .wire import connect_duration, sdp_duration
    ci, xi, x = _sap(ctx)
    conn = ctx.plan.connections[ci]
    if conn.sdp.security == "TLS":
        raise FaultError("sap_unanswered: plain TCP sessions only")
    ctx.plan.terminate(ci, xi, Ending(by="EV", how="FIN", after_s=float(timeout_s),
                                      reason=f"no supportedAppProtocolRes within {timeout_s:g} s"),
                       keep_response=False)
    ed.note(x.request, "sap_unanswered: the SECC never answers")
    t_end = conn.v2g_start_t + x.think_s + float(timeout_s)
    tm = ctx.timing
    for k in range(int(reconnects)):
        c = Connection(sdp=SdpPlan(security=conn.sdp.security, latency_s=conn.sdp.latency_s),
                       tcp=TcpPlan(mss=conn.tcp.mss), gap_before_s=float(gap_s))
        c.start_t = t_end + float(gap_s)
        c.v2g_start_t = c.start_t + sdp_duration(c.sdp, tm.sdp_to_syn_s) + connect_duration(c.tcp, tm.tcp_rtt_s)
        req = x.request.copy()
        req.comments = [f"simulator fault sap_unanswered: reconnect {k + 1}, never answered"]
        c.exchanges.append(Exchange(req, None, x.think_s, 0.0, "handshake"))
        c.ending = Ending(by="EV", how="FIN", after_s=float(timeout_s),
                          reason=f"no supportedAppProtocolRes within {timeout_s:g} s")
        ctx.plan.connections.append(c)
        t_end = c.v2g_start_t + x.think_s + float(timeout_s)


# ====================================================================== session IDs
def _setup_exchanges(ctx):
    """[(ci, xi, exchange)] of every SessionSetup exchange of the session."""
    return [(ci, xi, x) for ci, xi, x in ctx.plan.exchanges() if x.request.name == "SessionSetupReq"]


def _set_sid(m, sid: str) -> None:
    header_of(m.tree)["SessionID"] = sid
    m.invalidate()


@fault("fixed_session_id", level="script", stage="after", category="session",
       session_id="0102030405060708")
def fixed_session_id(ctx, session_id):
    """The SECC hands out the same SessionID ``session_id`` in every session instead of a
    new random one ([V2G2-756], [V2G-DC-393]; PROTOCOL_FACTS §4.0): pyPLC in EVSE mode always
    answers 0102030405060708 (the corpus' Ioniq captures). Both sides use it for the rest of
    the session. Apply it to two sessions of a scenario to show the reuse."""
    ci, xi, x, m = ctx.find("SessionSetupRes", 1)
    sid = session_id.lower()
    ctx.plan.set_session_id(sid, ci, xi, sides=("EVSE",), first_side="EVSE")
    ctx.plan.set_session_id(sid, ci, xi + 1, sides=("EV", "EVSE"))
    # a resume after a pause offers the (now fixed) ID
    for cj, xj, y in _setup_exchanges(ctx)[1:]:
        if body_of(y.response.tree).get("ResponseCode") == "OK_OldSessionJoined":
            _set_sid(y.request, sid)
    ed.note(m, f"fixed_session_id: SessionID {sid}, as in every session")


@fault("ev_stale_session_id", level="script", stage="after", category="session",
       session_id=None, secc_reaction="new")
def ev_stale_session_id(ctx, session_id, secc_reaction):
    """The EV starts a new session offering a stale non-zero SessionID (``session_id``;
    default random: the ID of its last, terminated session, which it never reset) in its
    first SessionSetupReq instead of 0 ([V2G2-463], [V2G-DC-393]; PROTOCOL_FACTS §4.0).
    ``secc_reaction`` "new": the SECC correctly establishes a new session with a new ID
    ([V2G2-756]); "reuse": it answers OK_NewSessionEstablished but keeps the offered ID."""
    ci, xi, x = _setup_exchanges(ctx)[0]
    sid = (session_id or _random_session_id(ctx.rng)).lower()
    _set_sid(x.request, sid)
    ed.note(x.request, f"ev_stale_session_id: SessionID {sid} offered for a new session")
    if secc_reaction == "reuse":
        ctx.plan.set_session_id(sid, ci, xi, sides=("EVSE",), first_side="EVSE")
        ctx.plan.set_session_id(sid, ci, xi + 1, sides=("EV", "EVSE"))
        ed.note(x.response, "ev_stale_session_id: the SECC keeps the offered SessionID")
    elif secc_reaction != "new":
        raise FaultError(f"ev_stale_session_id: secc_reaction {secc_reaction!r}; new or reuse")


def _resume(ctx):
    setups = _setup_exchanges(ctx)
    if len(setups) < 2:
        raise FaultError("no resumed session: add [pause] at_cycle")
    return setups[1]


@fault("secc_no_resume", level="script", stage="after", category="session")
def secc_no_resume(ctx):
    """After a pause the EV offers the paused session's SessionID, but the SECC does not
    support resuming: it answers OK_NewSessionEstablished with a new SessionID instead of
    OK_OldSessionJoined ([V2G2-463]); the EV goes on with the new ID (and repeats the
    setup as it would anyway). The paused session's context is lost."""
    ci, xi, x = _resume(ctx)
    sid = _random_session_id(ctx.rng)
    set_response_code(x.response, "OK_NewSessionEstablished")
    ctx.plan.set_session_id(sid, ci, xi, sides=("EVSE",), first_side="EVSE")
    ctx.plan.set_session_id(sid, ci, xi + 1, sides=("EV", "EVSE"))
    ed.note(x.response, f"secc_no_resume: a new session {sid} instead of joining the paused one")


@fault("resume_without_session_id", level="script", stage="after", category="session")
def resume_without_session_id(ctx):
    """After a pause the EV offers SessionID 0 in SessionSetupReq instead of the paused
    session's ID (it did not store it, [V2G2-463], [V2G2-740]); the SECC starts a new session
    (OK_NewSessionEstablished, a new SessionID) and the paused session's payment and schedule
    context is lost."""
    ci, xi, x = _resume(ctx)
    zero = "00" if ctx.protocol == "DIN 70121" else "00" * 8
    _set_sid(x.request, zero)
    sid = _random_session_id(ctx.rng)
    set_response_code(x.response, "OK_NewSessionEstablished")
    ctx.plan.set_session_id(sid, ci, xi, sides=("EVSE",), first_side="EVSE")
    ctx.plan.set_session_id(sid, ci, xi + 1, sides=("EV", "EVSE"))
    ed.note(x.request, "resume_without_session_id: the EV offers SessionID 0 after the pause")


@fault("resume_changes_payment", level="script", stage="after", category="session")
def resume_changes_payment(ctx):
    """A Plug & Charge session paused and resumed (OK_OldSessionJoined): after the resume the
    EV selects ExternalPayment instead of Contract — it lost its contract context at the
    pause — skips PaymentDetails and sends an unsigned AuthorizationReq. The EV shall keep
    the paused session's payment option ([V2G2-740], [V2G2-741]); the SECC accepts it."""
    ed.need(ctx, ("ISO 15118-2",), payment="PnC", name="resume_changes_payment")
    ci, _, _ = _resume(ctx)
    conn = ctx.plan.connections[ci]
    keep = []
    for y in conn.exchanges:
        name = y.request.name
        if name == "PaymentDetailsReq":
            continue
        if name == "PaymentServiceSelectionReq":
            body_of(y.request.tree)["SelectedPaymentOption"] = "ExternalPayment"
            y.request.invalidate()
            ed.note(y.request, "resume_changes_payment: ExternalPayment after the resume (Contract before)")
        elif name == "AuthorizationReq":
            b = body_of(y.request.tree)
            b.pop("Id", None)
            b.pop("GenChallenge", None)
            header_of(y.request.tree).pop("Signature", None)
            y.request.invalidate()
        keep.append(y)
    conn.exchanges[:] = keep


@fault("metering_receipt_defect", level="script", stage="after", category="session",
       defect="session_id", occurrence=1, secc_reaction="accept")
def metering_receipt_defect(ctx, defect, occurrence, secc_reaction):
    """The EV's MeteringReceiptReq (its ``occurrence``-th; 0 = every one) is defective:
    ``defect`` "session_id" — the body SessionID is the all-zero ID of its first
    SessionSetupReq, not the header's session ID (ISO 15118-2 MeteringReceiptReqType: body
    SessionID = header SessionID; PROTOCOL_FACTS §5); "unsigned" — no Id and no header
    Signature although the session is Plug & Charge. ``secc_reaction`` "accept": the SECC
    answers OK and the loop goes on; "reject": FAILED_MeteringSignatureNotValid and the SECC
    closes the connection ([V2G2-539])."""
    ed.need(ctx, ("ISO 15118-2",), name="metering_receipt_defect")
    items = ed.messages(ctx, "MeteringReceiptReq", int(occurrence))
    for ci, xi, x, m in items:
        b = body_of(m.tree)
        if defect == "session_id":
            b["SessionID"] = "00" * 8
            ed.note(m, "metering_receipt_defect: body SessionID 0000000000000000")
        elif defect == "unsigned":
            b.pop("Id", None)
            header_of(m.tree).pop("Signature", None)
            ed.note(m, "metering_receipt_defect: no Id, no Signature")
        else:
            raise FaultError(f"metering_receipt_defect: defect {defect!r}; session_id or unsigned")
        m.invalidate()
    if secc_reaction == "reject":
        ci, xi, x, m = items[0]
        set_response_code(x.response, "FAILED_MeteringSignatureNotValid")
        ctx.plan.terminate(ci, xi, Ending(by="EVSE", how="FIN", after_s=ctx.timing.failed_close_s,
                                          reason="SECC closes after FAILED_MeteringSignatureNotValid"))
    elif secc_reaction != "accept":
        raise FaultError(f"metering_receipt_defect: secc_reaction {secc_reaction!r}; accept or reject")


@fault("short_session_id", level="script", stage="after", category="session", length=1)
def short_session_id(ctx, length):
    """ISO 15118-20: the EV's first SessionSetupReq carries a ``length``-octet zero SessionID
    (1: the DIN 70121 habit of a single 0x00) instead of eight zero octets (-20
    MessageHeaderType: SessionID of exactly 8 bytes; PROTOCOL_FACTS §4C). The SECC tolerates
    it and establishes the session."""
    ed.need(ctx, ("ISO 15118-20",), name="short_session_id")
    ci, xi, x = _setup_exchanges(ctx)[0]
    _set_sid(x.request, "00" * int(length))
    ed.encodes(x.request)
    ed.note(x.request, f"short_session_id: a {length}-octet SessionID")


# ====================================================================== request / response pattern
@fault("duplicate_response", level="script", stage="after", category="sequence",
       message="CurrentDemandRes", occurrence=3, after_s=0.01)
def duplicate_response(ctx, message, occurrence, after_s):
    """The SECC sends ``message`` (a response) twice: the copy ``after_s`` after the first,
    before the EV's next request (a socket layer that re-sends after a write timeout). One
    request gets exactly one response (ISO 15118-2 §8.8.2, [V2G2-538]); the EV ignores the
    copy and goes on."""
    ci, xi, x, m = ctx.find(message, occurrence)
    if m.side != "EVSE":
        raise FaultError(f"duplicate_response: {message} is not a response")
    dup = m.copy()
    dup.comments = [f"simulator fault duplicate_response: {message} sent a second time"]
    conn = ctx.plan.connections[ci]
    conn.exchanges.insert(xi + 1, Exchange(dup, None, float(after_s), 0.0, x.phase))
    if xi + 2 < len(conn.exchanges):
        nxt = conn.exchanges[xi + 2]
        nxt.think_s = max(0.001, nxt.think_s - float(after_s))


@fault("wrong_response_type", level="script", stage="after", category="sequence",
       message="PowerDeliveryReq", occurrence=2, answer="CurrentDemandRes", ev_reaction="fin")
def wrong_response_type(ctx, message, occurrence, answer, ev_reaction):
    """The SECC answers ``message`` (a request; default the PowerDeliveryReq that stops the
    charge loop) with a copy of its last ``answer`` (a stale send buffer: its state machine
    is still in the loop) instead of the response of the request's type ([V2G2-538],
    [V2G-DC-390]). The EV cannot use it: ``ev_reaction`` "fin" — it waits for its message
    timeout and closes the connection; "continue" — it ignores the mismatch."""
    ci, xi, x, m = ctx.find(message, occurrence)
    if m is not x.request or x.response is None:
        raise FaultError(f"wrong_response_type: {message} is not an answered request")
    prev = None
    for cj, xj, y in ctx.plan.exchanges():
        if (cj, xj) >= (ci, xi):
            break
        if y.response is not None and y.response.name == answer:
            prev = y.response
    if prev is None:
        raise FaultError(f"wrong_response_type: no {answer} before {message}")
    res = prev.copy()
    res.comments = [f"simulator fault wrong_response_type: {answer} (a copy of the last one) "
                    f"answers {message}"]
    x.response = res
    if ev_reaction == "fin":
        from .flow import msg_timeout
        step = ctx.plan.dialect.step_of(message)
        ctx.plan.terminate(ci, xi, Ending(by="EV", how="FIN", after_s=msg_timeout(ctx.plan.dialect, step),
                                          reason=f"no {message[:-3]}Res: the EV gives up"))
    elif ev_reaction != "continue":
        raise FaultError(f"wrong_response_type: ev_reaction {ev_reaction!r}; fin or continue")


@fault("ev_repeats_request", level="script", stage="after", category="sequence",
       message="PowerDeliveryReq", occurrence=1, resend_s=1.0)
def ev_repeats_request(ctx, message, occurrence, resend_s):
    """The SECC is slow to answer ``message`` (it closes its contactors first) and the EV
    sends the request again after its own retry timer ``resend_s`` — before
    V2G_EVCC_Msg_Timeout expired and without a response (ISO 15118-2 §8.8.2: one request,
    one response; PROTOCOL_FACTS §4.0). The SECC answers the repeated request only; the
    session goes on."""
    ci, xi, x, m = ctx.find(message, occurrence)
    if m is not x.request or x.response is None:
        raise FaultError(f"ev_repeats_request: {message} is not an answered request")
    again = x.request.copy()
    again.comments = [f"simulator fault ev_repeats_request: {message} sent again {resend_s:g} s later, "
                      "no response yet"]
    conn = ctx.plan.connections[ci]
    conn.exchanges.insert(xi + 1, Exchange(again, x.response, float(resend_s), x.latency_s, x.phase,
                                           state=x.state))
    x.response = None

