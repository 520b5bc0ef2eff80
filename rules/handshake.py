"""Application handshake: supportedAppProtocolReq / Res (ISO 15118-2 and DIN SPEC 70121
supportedAppProtocol handshake, schema V2G_CI_AppProtocol.xsd; PROTOCOL_FACTS §3).

The EV offers 1..20 AppProtocol entries (ProtocolNamespace, VersionNumberMajor/Minor, an
EV-chosen SchemaID, Priority 1 = highest); the SECC answers a ResponseCode and, on success,
the SchemaID of the entry it chose — the highest-priority entry it supports.
"""
from __future__ import annotations

from ccs_analyzer.dissectors.events import TCP_FIN, TCP_RST
from ccs_analyzer.dissectors.exi.namespaces import (NS_DIN, NS_ISO2, NS_ISO2_PREFIX, NS_ISO20_AC,
                                                    NS_ISO20_ACDP, NS_ISO20_DC, NS_ISO20_PREFIX,
                                                    NS_ISO20_WPT)

from .base import Rule, judged
from .helpers import body

REQ, RES = "supportedAppProtocolReq", "supportedAppProtocolRes"
HANDSHAKE_FAILURE_MODES = ("UC2 100", "UC2 107")

#: Published namespace → (major, minor) (PROTOCOL_FACTS §3 "Known namespaces / versions").
KNOWN_VERSIONS = {
    NS_DIN: (2, 0),
    NS_ISO2: (2, 0),
    NS_ISO20_DC: (1, 0),
    NS_ISO20_AC: (1, 0),
    NS_ISO20_WPT: (1, 0),
    NS_ISO20_ACDP: (1, 0),
}
SHORT = {NS_DIN: "DIN 70121", NS_ISO2: "ISO 15118-2",
         NS_ISO20_DC: "ISO 15118-20 DC", NS_ISO20_AC: "ISO 15118-20 AC",
         NS_ISO20_WPT: "ISO 15118-20 WPT",
         NS_ISO20_ACDP: "ISO 15118-20 ACDP"}


def offered(req) -> list[dict]:
    """The AppProtocol entries of a supportedAppProtocolReq event."""
    ap = body(req).get("AppProtocol") if req is not None and req.message else None
    if isinstance(ap, dict):
        ap = [ap]
    return [a for a in (ap or []) if isinstance(a, dict)]


def describe(a: dict) -> str:
    ns = a.get("ProtocolNamespace")
    return (f"{ns} {a.get('VersionNumberMajor')}.{a.get('VersionNumberMinor')} "
            f"(SchemaID {a.get('SchemaID')}, priority {a.get('Priority')})")


class Handshake:
    """One supportedAppProtocol exchange on a connection: ``req``, ``res`` (None when
    unanswered), the offered entries, ResponseCode, SchemaID and the chosen entry."""

    def __init__(self, req, res=None):
        self.req = req
        self.entries = offered(req)
        self.answer(res)

    def answer(self, res) -> None:
        """Record the response (None: unanswered)."""
        self.res = res
        b = body(res) if res is not None and res.message else {}
        self.code = b.get("ResponseCode")
        self.schema_id = b.get("SchemaID")
        self.chosen = next((a for a in self.entries if a.get("SchemaID") == self.schema_id), None) \
            if self.schema_id is not None else None

    @property
    def frames(self) -> list[int]:
        return [e.frame for e in (self.req, self.res) if e is not None]

    @property
    def secc(self) -> str | None:
        return self.req.dst.rsplit(":", 1)[0] if self.req.dst else None


def handshakes(session, ctx) -> list[Handshake]:
    """The session's supportedAppProtocol exchanges, per connection, in order (built once
    per session on the analysis, ``ctx.view``)."""
    return ctx.view("handshake.handshakes", session, lambda: _handshakes(session))


def _handshakes(session) -> list[Handshake]:
    pending: dict = {}
    out: list[Handshake] = []
    for e in session.events:
        if e.layer != "v2gtp" or e.name not in (REQ, RES):
            continue
        if e.name == REQ:
            if e.message is None:
                continue
            h = Handshake(e)
            out.append(h)
            pending[e.conn] = h
        else:
            h = pending.pop(e.conn, None)
            if h is not None:
                h.answer(e)
    return out


def supported_elsewhere(ctx) -> dict:
    """SECC host → {namespace} it negotiated successfully anywhere in the capture (built
    once per analysis)."""
    def build() -> dict:
        out: dict = {}
        for s in ctx.sessions:
            for h in handshakes(s, ctx):
                if h.chosen is not None and str(h.code or "").startswith("OK"):
                    out.setdefault(h.secc, set()).add(h.chosen.get("ProtocolNamespace"))
        return out
    return ctx.view("handshake.supported", None, build)


#: Namespace prefixes of ISO 15118 (-2 in its IS and 2010 draft form, -20).
ISO15118_PREFIXES = (NS_ISO2_PREFIX, NS_ISO20_PREFIX + ":")
ISO2_NS = NS_ISO2


def _no_negotiation_culprit(h: Handshake, elsewhere: set) -> tuple[str, str]:
    """(culprit, reason text) of a Failed_NoNegotiation ``h`` given the namespaces the same
    SECC negotiated elsewhere in the capture (HSK001's page says why)."""
    known = [a for a in h.entries if a.get("ProtocolNamespace") in KNOWN_VERSIONS]
    right_major = [a for a in known if a.get("VersionNumberMajor")
                   == KNOWN_VERSIONS[a["ProtocolNamespace"]][0]]
    could = [a for a in h.entries if a.get("ProtocolNamespace") in elsewhere]
    if could:
        return "SECC", (f"; the same SECC negotiated {could[0]['ProtocolNamespace']} elsewhere in "
                        "this capture")
    if not right_major:
        return "EVCC", "; none of them is a published namespace / major version"
    iso = [a for a in h.entries if str(a.get("ProtocolNamespace") or "").startswith(ISO15118_PREFIXES)]
    if not iso:
        return "EVCC", ("; the EV offered no ISO 15118 namespace (only DIN SPEC 70121, a DC-only "
                        "pre-standard, and/or proprietary ones): it cannot use an ISO 15118 charger")
    iso2 = [a for a in right_major if a.get("ProtocolNamespace") == ISO2_NS]
    if iso2:
        return "SECC", (f"; the EV offered ISO 15118-2 {iso2[0].get('VersionNumberMajor')}."
                        f"{iso2[0].get('VersionNumberMinor')} and the SECC still refused it")
    return "unknown", "; the SECC supports none of them"


class _HskRule(Rule):
    category = "handshake"
    failure_modes = HANDSHAKE_FAILURE_MODES


class HandshakeNoNegotiation(_HskRule):
    """The SECC answered Failed_NoNegotiation.

    What it checks: supportedAppProtocolRes ResponseCode ≠ Failed_NoNegotiation; names the
    namespaces and versions the EV offered, and who could not use whom:

    * SECC, when the same SECC negotiated one of the offered namespaces elsewhere in the
      capture (it supports it and still refused);
    * EVCC, when the EV offered no published namespace (or only unpublished major versions
      of one);
    * EVCC, when the EV offered no ISO 15118 namespace at all — only DIN SPEC 70121
      (urn:din:70121:2012:MsgDef, a DC-only pre-standard that an ISO 15118 charger, an AC one
      in particular, need not implement) and/or proprietary namespaces such as
      urn:tesla:din:2018:MsgDef: the EV is the side that cannot use an ISO 15118 charger;
    * SECC, when the EV offered ISO 15118-2 (urn:iso:15118:2:2013:MsgDef, published major
      version 2) and the SECC still refused: ISO 15118-2 is the protocol ISO 15118 chargers
      and vehicles share (AC and DC; ISO 15118-20 chargers keep it for the installed
      vehicles), so a charger that refuses it is the one that cannot serve a conformant EV;
    * unknown otherwise (e.g. an EV offering only ISO 15118-20 to an SECC without it: an
      incompatible pair, neither side broke a rule).

    Why it matters: no common application protocol — the SECC closes the connection and no
    charging is possible (ChargeX "incompatible charger").
    Fix: EVCC: offer ISO 15118-2 2.0 (and DIN 70121 2.0 for DC, -20 1.0) with their
    published namespaces; SECC: support the protocols EVs offer (ISO 15118-2; DIN 70121 at
    least for DC).
    Source: ISO 15118-2 [V2G2-172] (Failed_NoNegotiation when no namespace + major version
    matches); DIN SPEC 70121 supportedAppProtocol handshake; PROTOCOL_FACTS §3 "Known
    namespaces / versions" (J-XSD-SAP, E-SRV, J-SAP).

    Example:

        #39 supportedAppProtocolReq → #41 supportedAppProtocolRes ResponseCode=Failed_NoNegotiation
    """

    code = "HSK001"
    title = "No application protocol negotiated"
    severity = "error"
    kinds = ("handshake-failed",)
    explains = ("handshake-failed", "no-session-stop", "ev-abort", "evse-abort", "connection-reset")
    culprit = "unknown"
    requirement = "ISO 15118-2 supportedAppProtocol [V2G2-172] (Failed_NoNegotiation)"

    def check(self, session, ctx):
        for h in handshakes(session, ctx):
            if h.code != "Failed_NoNegotiation":
                continue
            culprit, why = _no_negotiation_culprit(h, supported_elsewhere(ctx).get(h.secc, set()))
            offers = "; ".join(describe(a) for a in h.entries) or "nothing"
            yield self.finding(
                session, h.frames,
                f"supportedAppProtocolRes #{h.res.frame} answered Failed_NoNegotiation to the EV's "
                f"offer #{h.req.frame}: {offers}{why}",
                time=h.res.time, culprit=culprit,
                evidence={"expected": "OK_SuccessfulNegotiation",
                          "actual": {"ResponseCode": h.code, "SchemaID": h.schema_id},
                          "offered": h.entries},
                values=[judged(h.req, "ProtocolNamespace"),
                        judged(h.res, "ResponseCode", h.code, expected="OK_SuccessfulNegotiation")])


class HandshakeSchemaIdOnFailure(_HskRule):
    """supportedAppProtocolRes carries a SchemaID with Failed_NoNegotiation (⚠).

    What it checks: with ResponseCode Failed_NoNegotiation the SchemaID element is absent.
    ⚠ Only HotWire quotes [V2G-DC-226] for this; EVerest sets SchemaID only for OK codes.
    Why it matters: an EV that reads the SchemaID first may take the failed handshake for a
    choice and send SessionSetupReq in a protocol the SECC does not speak.
    Fix (SECC): omit SchemaID when no protocol was negotiated.
    Source: DIN SPEC 70121 [V2G-DC-226] (HOTWIRE ⚠); PROTOCOL_FACTS §3, §5 (E-SRV).

    Example:

        #39 supportedAppProtocolReq
          → #41 supportedAppProtocolRes SchemaID=1 ResponseCode=Failed_NoNegotiation
    """

    code = "HSK002"
    title = "SchemaID present with Failed_NoNegotiation"
    severity = "warning"
    category = "message-content"          # the response's content, not the negotiation
    culprit = "SECC"
    requirement = "DIN SPEC 70121 [V2G-DC-226] (⚠)"

    def check(self, session, ctx):
        for h in handshakes(session, ctx):
            if h.code == "Failed_NoNegotiation" and h.schema_id is not None:
                yield self.finding(
                    session, h.frames,
                    f"supportedAppProtocolRes #{h.res.frame} says Failed_NoNegotiation but carries "
                    f"SchemaID {h.schema_id}",
                    time=h.res.time, measured=h.schema_id,
                    evidence={"expected": "no SchemaID", "actual": {"SchemaID": h.schema_id,
                                                                  "ResponseCode": h.code}},
                    values=[judged(h.res, "ResponseCode", h.code),
                            judged(h.res, "SchemaID", h.schema_id, expected="no SchemaID")])


class HandshakeNotHighestPriority(_HskRule):
    """The SECC did not choose the EV's highest-priority protocol it could have known.

    What it checks: the entry the SECC chose has the best (lowest) Priority among the
    entries with a published namespace (an SECC cannot be expected to know proprietary
    ones such as urn:tesla:din:2018:MsgDef). An info when a better published entry was
    passed over (the SECC may not implement it); a warning when the same SECC negotiated
    that better namespace elsewhere in the capture — it supports it and still chose lower.
    Why it matters: the EV ranks its protocols for a reason (features such as ISO 15118-2
    Plug & Charge, or -20 bidirectional power are lost with DIN 70121).
    Fix (SECC): pick the highest-priority entry you support.
    Source: ISO 15118-2 supportedAppProtocol handshake, ISO 15118-20 [V2G20-167] (Priority 1 = highest; SECC picks the highest
    it supports); PROTOCOL_FACTS §3 (E-SRV, E-D20, J-SAP).

    Example:

        #39 supportedAppProtocolReq → #41 supportedAppProtocolRes SchemaID=2
    """

    code = "HSK003"
    title = "Chosen protocol not the EV's preferred one"
    severity = "info"
    culprit = "SECC"
    requirement = "ISO 15118-2 supportedAppProtocol priority"

    def check(self, session, ctx):
        for h in handshakes(session, ctx):
            if h.chosen is None or not str(h.code or "").startswith("OK"):
                continue
            prio = h.chosen.get("Priority")
            if not isinstance(prio, int):
                continue
            better = [a for a in h.entries if isinstance(a.get("Priority"), int) and a["Priority"] < prio
                      and a.get("ProtocolNamespace") in KNOWN_VERSIONS
                      and a.get("ProtocolNamespace") != h.chosen.get("ProtocolNamespace")]
            if not better:
                continue
            elsewhere = supported_elsewhere(ctx).get(h.secc, set())
            known_ok = [a for a in better if a.get("ProtocolNamespace") in elsewhere]
            best = min(better, key=lambda a: a["Priority"])
            if known_ok:
                sev, tail = "warning", (f"; the same SECC negotiated {known_ok[0]['ProtocolNamespace']} "
                                        "elsewhere in this capture")
            else:
                sev, tail = "info", "; the SECC may not implement it"
            yield self.finding(
                session, h.frames,
                f"the SECC chose {describe(h.chosen)} (#{h.res.frame}) over the EV's preferred "
                f"{describe(best)}{tail}",
                time=h.res.time, severity=sev, measured=prio, limit=best["Priority"],
                evidence={"expected": {"SchemaID": best.get("SchemaID")},
                          "actual": {"SchemaID": h.schema_id}, "offered": h.entries},
                values=[judged(h.req, "Priority", best["Priority"]),
                        judged(h.res, "SchemaID", h.schema_id, expected=best.get("SchemaID"))])


class HandshakeMinorDeviation(_HskRule):
    """The negotiated protocol version deviates (minor version).

    What it checks: OK_SuccessfulNegotiationWithMinorDeviation (an info naming the
    versions), and OK_SuccessfulNegotiation for an entry of a published namespace whose
    version differs from the published one (DIN 70121 2.0, ISO 15118-2 2.0, -20 1.0): the
    SECC should have answered …WithMinorDeviation (minor differs) or Failed_NoNegotiation
    (major differs) — a warning.
    Why it matters: a minor deviation is allowed but means message details may differ;
    an SECC that hides the deviation leaves the EV assuming exact compatibility.
    Fix (SECC): answer OK_SuccessfulNegotiation only for the exact major.minor version you
    implement.
    Source: ISO 15118-2 supportedAppProtocol handshake (major equal, minor equal → OK; minor differs →
    …WithMinorDeviation; no match → Failed_NoNegotiation); PROTOCOL_FACTS §3 (E-SRV, J-SAP).

    Example:

        #39 supportedAppProtocolReq
          → #41 supportedAppProtocolRes ResponseCode=OK_SuccessfulNegotiation
    """

    code = "HSK004"
    title = "Application protocol minor-version deviation"
    severity = "info"
    culprit = "SECC"
    requirement = "ISO 15118-2 supportedAppProtocol version matching"

    def check(self, session, ctx):
        for h in handshakes(session, ctx):
            if h.chosen is None:
                continue
            ns = h.chosen.get("ProtocolNamespace")
            ver = (h.chosen.get("VersionNumberMajor"), h.chosen.get("VersionNumberMinor"))
            pub = KNOWN_VERSIONS.get(ns)
            if h.code == "OK_SuccessfulNegotiationWithMinorDeviation":
                note = f" (published {pub[0]}.{pub[1]})" if pub else ""
                yield self.finding(
                    session, h.frames,
                    f"negotiated {ns} {ver[0]}.{ver[1]}{note} with minor deviation (#{h.res.frame})",
                    time=h.res.time, measured=f"{ver[0]}.{ver[1]}",
                    limit=f"{pub[0]}.{pub[1]}" if pub else None,
                    evidence={"expected": "exact version", "actual": {"ResponseCode": h.code,
                                                                      "version": list(ver)}},
                    values=[judged(h.res, "ResponseCode", h.code)])
            elif h.code == "OK_SuccessfulNegotiation" and pub and ver != pub:
                want = ("OK_SuccessfulNegotiationWithMinorDeviation" if ver[0] == pub[0]
                        else "Failed_NoNegotiation")
                yield self.finding(
                    session, h.frames,
                    f"the SECC answered OK_SuccessfulNegotiation (#{h.res.frame}) to {ns} "
                    f"{ver[0]}.{ver[1]}, published version {pub[0]}.{pub[1]}: expected {want}",
                    time=h.res.time, severity="warning", measured=f"{ver[0]}.{ver[1]}",
                    limit=f"{pub[0]}.{pub[1]}",
                    evidence={"expected": {"ResponseCode": want},
                              "actual": {"ResponseCode": h.code, "version": list(ver)}},
                    values=[judged(h.res, "ResponseCode", h.code, expected=want)])


class HandshakeSchemaIdNotOffered(_HskRule):
    """The SchemaID in the response was not offered (or is missing).

    What it checks: with an OK_* ResponseCode, the response's SchemaID is present and equals
    the SchemaID of one of the request's AppProtocol entries.
    Why it matters: the EV maps the SchemaID back to its offer to know which protocol to
    speak; an unknown or missing SchemaID leaves it guessing — it must abort.
    Fix (SECC): echo the SchemaID of the chosen entry of this request.
    Source: ISO 15118-2 supportedAppProtocol handshake (SchemaID of the chosen AppProtocol); PROTOCOL_FACTS §3
    (J-EVCC, DSV v2gmsg.lua).

    Example:

        #39 supportedAppProtocolReq
          → #41 supportedAppProtocolRes ResponseCode=OK_SuccessfulNegotiation SchemaID=1
    """

    code = "HSK005"
    title = "SchemaID not offered by the EV"
    severity = "error"
    kinds = ("bad-content",)
    explains = ("handshake-failed", "ev-abort", "connection-reset")
    culprit = "SECC"
    requirement = "ISO 15118-2 supportedAppProtocolRes SchemaID"

    def check(self, session, ctx):
        for h in handshakes(session, ctx):
            if h.res is None or not str(h.code or "").startswith("OK") or h.chosen is not None:
                continue
            ids = [a.get("SchemaID") for a in h.entries]
            what = "no SchemaID" if h.schema_id is None else f"SchemaID {h.schema_id}"
            yield self.finding(
                session, h.frames,
                f"supportedAppProtocolRes #{h.res.frame} ({h.code}) carries {what}; the EV offered "
                f"SchemaID(s) {ids} (#{h.req.frame})",
                time=h.res.time, measured=h.schema_id, limit=ids,
                evidence={"expected": {"SchemaID": ids}, "actual": {"SchemaID": h.schema_id}},
                values=[judged(h.req, "SchemaID"), judged(h.res, "SchemaID", h.schema_id, expected=ids)])


class HandshakeDuplicateSchemaId(_HskRule):
    """The EV offered the same SchemaID twice.

    What it checks: the SchemaIDs of the AppProtocol entries of a supportedAppProtocolReq
    are unique. An error when the duplicates name different protocols / versions (the
    answer becomes ambiguous), a warning when they are identical entries.
    Why it matters: the SchemaID in the response is the only way to tell which entry the
    SECC chose.
    Fix (EVCC): number the entries 1..n.
    Source: ISO 15118-2 supportedAppProtocol handshake (SchemaID identifies an entry); PROTOCOL_FACTS §3 (J-EVCC:
    "must be unique in the Req", DSV).

    Example:

        #39 supportedAppProtocolReq → #41 supportedAppProtocolRes SchemaID=1
    """

    code = "HSK006"
    title = "Duplicate SchemaID in supportedAppProtocolReq"
    severity = "error"
    kinds = ("bad-content",)
    explains = ("handshake-failed",)
    culprit = "EVCC"
    requirement = "ISO 15118-2 AppProtocol SchemaID unique"

    def check(self, session, ctx):
        for h in handshakes(session, ctx):
            seen: dict = {}
            for a in h.entries:
                seen.setdefault(a.get("SchemaID"), []).append(a)
            dups = {k: v for k, v in seen.items() if len(v) > 1 and k is not None}
            if not dups:
                continue
            differ = any(len({(a.get("ProtocolNamespace"), a.get("VersionNumberMajor"),
                               a.get("VersionNumberMinor")) for a in v}) > 1 for v in dups.values())
            txt = "; ".join(f"SchemaID {k}: " + ", ".join(describe(a) for a in v) for k, v in dups.items())
            yield self.finding(
                session, h.frames, f"supportedAppProtocolReq #{h.req.frame} repeats {txt}",
                time=h.req.time, severity="error" if differ else "warning",
                measured=sorted(dups), evidence={"expected": "unique SchemaIDs",
                                                 "actual": {str(k): v for k, v in dups.items()}},
                values=[judged(h.req, "SchemaID", k) for k in sorted(dups)])


class HandshakeDuplicatePriority(_HskRule):
    """The EV gave two entries the same Priority.

    What it checks: the Priority values (1..20) of a supportedAppProtocolReq's entries are
    unique.
    Why it matters: with equal priorities the SECC's choice is arbitrary; the EV's
    preference is not expressed.
    Fix (EVCC): give each entry its own priority, 1 for the preferred one.
    Source: ISO 15118-2 supportedAppProtocol handshake, ISO 15118-20 [V2G20-167] (Priority 1..20, 1 = highest); PROTOCOL_FACTS §3.

    Example:

        #39 supportedAppProtocolReq → #41 supportedAppProtocolRes SchemaID=1
    """

    code = "HSK007"
    title = "Duplicate Priority in supportedAppProtocolReq"
    severity = "warning"
    culprit = "EVCC"
    requirement = "ISO 15118-2 AppProtocol Priority"

    def check(self, session, ctx):
        for h in handshakes(session, ctx):
            seen: dict = {}
            for a in h.entries:
                seen.setdefault(a.get("Priority"), []).append(a)
            dups = {k: v for k, v in seen.items() if len(v) > 1 and k is not None}
            if dups:
                txt = "; ".join(f"priority {k}: " + ", ".join(describe(a) for a in v)
                                for k, v in dups.items())
                yield self.finding(
                    session, h.frames, f"supportedAppProtocolReq #{h.req.frame} repeats {txt}",
                    time=h.req.time, measured=sorted(dups),
                    evidence={"expected": "unique priorities",
                              "actual": {str(k): v for k, v in dups.items()}},
                    values=[judged(h.req, "Priority", k) for k in sorted(dups)])


class HandshakeUnanswered(_HskRule):
    """supportedAppProtocolReq left unanswered.

    What it checks: each supportedAppProtocolReq gets a supportedAppProtocolRes on its
    connection. A finding when the SECC closed or reset the connection without answering,
    or stayed silent for at least ``secc_performance_s`` (V2G_SECC_Msg_Performance_Time
    1.5 s) while the capture went on; one finding per session with every such connection.
    Lost bytes in the SECC's direction lower it to a warning (the response may be in the
    gap).
    Why it matters: without the handshake nothing else happens; the EV closes after
    V2G_EVCC_Msg_Timeout (2 s) and usually retries or restarts SLAC.
    Fix (SECC): answer supportedAppProtocolReq within 1.5 s (is the V2G server running,
    listening on the announced port, in the right state after the previous session?).
    Source: ISO 15118-2 supportedAppProtocol handshake, Table 109/110 (EVCC msg timeout 2 s, SECC performance 1.5 s);
    PROTOCOL_FACTS §3 (J-TO, R-TR, PY-TAB).

    Example:

        #39 supportedAppProtocolReq → (no response)
        … (6 more)
        #61 FIN EV→EVSE
        #62 FIN EVSE→EV
    """

    code = "HSK008"
    title = "supportedAppProtocolReq unanswered"
    severity = "error"
    kinds = ("no-response",)
    explains = ("handshake-failed", "ev-timeout", "ev-abort", "connection-reset")
    culprit = "SECC"
    requirement = "ISO 15118-2 supportedAppProtocolRes; Table 109 V2G_EVCC_Msg_Timeout"
    failure_modes = ("UC2 100", "UC2 103", "UC2 104")
    params = {"secc_performance_s": 1.5, "evcc_timeout_s": 2.0}

    def check(self, session, ctx):
        conns = {c["conn"]: c for c in ctx.connections}
        end = (ctx.capture or {}).get("last_time")
        items = []
        for h in handshakes(session, ctx):
            if h.res is not None:
                continue
            c = h.req.conn
            tcp = [e for e in session.events if e.layer == "tcp" and e.conn == c and e.time > h.req.time
                   and e.name in (TCP_FIN, TCP_RST)]
            secc_close = next((e for e in tcp if e.direction == "EVSE->EV"), None)
            ev_close = next((e for e in tcp if e.direction == "EV->EVSE"), None)
            seen_until = secc_close.time if secc_close is not None else end
            silence = None if seen_until is None else seen_until - h.req.time
            if secc_close is None and (silence is None or silence < self.p["secc_performance_s"]):
                continue
            lost = (conns.get(c, {}).get("lost_bytes") or [0, 0])[1:]
            items.append((h, ev_close, secc_close, silence, bool(lost and lost[0])))
        if not items:
            return
        frames = []
        for h, evc, sc, _, _ in items:
            frames += [h.req.frame] + [e.frame for e in (evc, sc) if e is not None]
        ev_early = [round(evc.time - h.req.time, 2) for h, evc, _, _, _ in items
                    if evc is not None and evc.time - h.req.time < self.p["evcc_timeout_s"]]
        parts = []
        for h, evc, sc, sil, _ in items[:5]:
            p = f"#{h.req.frame} (conn {h.req.conn}"
            if evc is not None:
                p += f", EV {evc.name} #{evc.frame} after {evc.time - h.req.time:.1f} s"
            if sc is not None:
                p += f", EVSE {sc.name} #{sc.frame} after {sc.time - h.req.time:.1f} s"
            elif sil is not None:
                p += f", silent {sil:.1f} s"
            parts.append(p + ")")
        lost = any(x[4] for x in items)
        tail = ""
        if ev_early:
            span = f"{min(ev_early)}" if min(ev_early) == max(ev_early) else f"{min(ev_early)}–{max(ev_early)}"
            tail += (f"; the EV closed after {span} s, before its V2G_EVCC_Msg_Timeout "
                     f"{self.p['evcc_timeout_s']:g} s")
        if lost:
            tail += "; bytes are missing in the EVSE's direction: the response may be in the gap"
        yield self.finding(
            session, frames,
            f"{len(items)} supportedAppProtocolReq never answered: {', '.join(parts)}{tail}",
            time=items[0][0].req.time, severity="warning" if lost else None,
            measured=len(items), evidence={"expected": "supportedAppProtocolRes",
                                           "actual": "no response",
                                           "requests": [h.req.frame for h, *_ in items],
                                           "offered": items[0][0].entries})
