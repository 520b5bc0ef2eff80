"""Message content rules on metering receipts: MSG008-MSG010."""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import header_of
from ccs_analyzer.analyzer.views.index import session_index

from ..base import Rule, judged
from .common import Groups, _payment_at, _payment_options, _span, _times, body_of, failed

_LOOP_RES = ("ChargingStatusRes", "CurrentDemandRes")


class ReceiptNotSent(Rule):
    """The SECC asked for a metering receipt and the EV did not send MeteringReceiptReq.

    What it checks: after a ChargingStatusRes / CurrentDemandRes with ReceiptRequired =
    true in a Plug & Charge session, the EV's next request on the connection is
    MeteringReceiptReq. A session that ends right there is not judged.
    Why it matters: the SECC cannot get a signed meter reading for billing; it may stop the
    session (FAILED_SequenceError).
    Fix (EVCC): answer ReceiptRequired with a signed MeteringReceiptReq before the next
    ChargingStatusReq / CurrentDemandReq.
    Source: ISO 15118-2 [V2G2-577], [V2G2-795] (E-ISO); PROTOCOL_FACTS §4B sequence table.

    Example:

        #98 ChargingStatusReq → #100 ChargingStatusRes
        #102 ChargingStatusReq → #104 ChargingStatusRes
    """

    code = "MSG008"
    title = "Metering receipt requested but not sent"
    severity = "error"
    category = "message-content"
    culprit = "EVCC"
    protocols = ("ISO 15118-2",)
    requirement = "ISO 15118-2 [V2G2-577], [V2G2-795]"
    failure_modes = ("UC2 252", "UC2 255")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        options = _payment_options(idx)
        groups = Groups()
        pending: dict = {}
        for e in idx.v2g:
            if e.name in _LOOP_RES:
                if body_of(e).get("ReceiptRequired") is True and not failed(e) \
                        and _payment_at(options, e.frame) == "Contract":
                    pending[e.conn] = e
            elif e.name.endswith("Req"):
                res = pending.pop(e.conn, None)
                if res is not None and e.name != "MeteringReceiptReq":
                    groups.add(e.name, res, next_req=e)
        for name, first, last, n, f in groups.items():
            nxt = f["next_req"]
            yield self.finding(session, [first.frame, nxt.frame, last.frame],
                               f"{first.name} (frame {first.frame}) requires a receipt but the EV "
                               f"sent {name} (frame {nxt.frame}) instead of MeteringReceiptReq"
                               + (f"; {n} times, the last after frame {last.frame}" if n > 1 else ""),
                               time=first.time,
                               evidence={"expected": "MeteringReceiptReq", "actual": name, "times": n},
                               values=[judged(first, "ReceiptRequired", True)])


class ReceiptInEim(Rule):
    """ReceiptRequired = true in a session without Plug & Charge.

    What it checks: ChargingStatusRes / CurrentDemandRes with ReceiptRequired = true while
    the selected payment option is ExternalPayment (EIM). One finding per session with the
    count.
    Why it matters: only Plug & Charge has the contract key to sign a meter receipt; an EIM
    EV cannot comply and may stop or ignore the request.
    Fix (SECC): set ReceiptRequired only when SelectedPaymentOption is Contract.
    Source: ISO 15118-2 [V2G2-691] (R, E-ISO ✅); PROTOCOL_FACTS §5.

    Example:

        #83 ChargingStatusReq → #85 ChargingStatusRes ReceiptRequired=True
        #103 ChargingStatusReq → #105 ChargingStatusRes ReceiptRequired=True
    """

    code = "MSG009"
    title = "Metering receipt requested in an EIM session"
    severity = "error"
    category = "message-content"
    culprit = "SECC"
    protocols = ("ISO 15118-2",)
    requirement = "ISO 15118-2 [V2G2-691]"
    failure_modes = ("UC2 252", "UC2 254")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        options = _payment_options(idx)
        groups = Groups()
        for e in idx.named(*_LOOP_RES):
            if body_of(e).get("ReceiptRequired") is True and not failed(e):
                opt = _payment_at(options, e.frame)
                if opt == "ExternalPayment":
                    groups.add(e.name, e)
        for name, first, last, n, _ in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) sets ReceiptRequired "
                               "= true although the session uses ExternalPayment (EIM)",
                               time=first.time, measured=n,
                               evidence={"expected": "ReceiptRequired false / absent with EIM",
                                         "actual": "ReceiptRequired true",
                                         "SelectedPaymentOption": "ExternalPayment", "messages": n},
                               values=[judged(x, "ReceiptRequired", True, expected=False) for x in (first, last)])


class MeteringReceiptInvalid(Rule):
    """MeteringReceiptReq is not signed (Plug & Charge), lacks MeterInfo or names another
    session.

    What it checks: in a Contract session MeteringReceiptReq carries the Id attribute and a
    header Signature over it; every MeteringReceiptReq carries MeterInfo (schema-mandatory:
    only a lenient decode shows its absence) and a body SessionID equal to the header
    SessionID.
    Why it matters: an unsigned receipt is no proof for billing; the SECC answers
    FAILED_MeteringSignatureNotValid or FAILED_UnknownSession.
    Fix (EVCC): sign the MeterInfo of the last response with the contract key (XML
    signature in the header, Reference to the body Id); copy the session's SessionID.
    Source: ISO 15118-2 MeteringReceiptReqType (J-XSD-2), RISE-V2G WaitForCurrentDemandRes
    (R-EVCC-CD); PROTOCOL_FACTS §5.

    Example:

        #106 MeteringReceiptReq SessionID=e31fe59dd7038005
          → #108 MeteringReceiptRes SessionID=e31fe59dd7038005
        #130 MeteringReceiptReq SessionID=e31fe59dd7038005
          → #132 MeteringReceiptRes SessionID=e31fe59dd7038005
    """

    code = "MSG010"
    title = "MeteringReceiptReq unsigned, without MeterInfo or for another session"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "EVCC"
    protocols = ("ISO 15118-2",)
    failure_modes = ("UC2 252", "UC2 255")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        options = _payment_options(idx)
        groups = Groups()
        for e in idx.named("MeteringReceiptReq"):
            b = body_of(e)
            h = header_of(e.message)
            if _payment_at(options, e.frame) == "Contract" and ("Id" not in b or "Signature" not in h):
                missing = [x for x, y in (("Id", "Id" in b), ("header Signature", "Signature" in h)) if not y]
                groups.add(("unsigned", " and ".join(missing)), e)
            if "MeterInfo" not in b:
                groups.add(("meterinfo", "MeterInfo"), e)
            sid, hsid = b.get("SessionID"), h.get("SessionID")
            if sid is not None and hsid is not None and sid != hsid:
                groups.add(("session", f"{sid} vs {hsid}"), e)
        for (kind, what), first, last, n, _ in groups.items():
            if kind == "unsigned":
                syn = f"Plug & Charge MeteringReceiptReq{_times(n)} ({_span(first, last, n)}) lacks {what}"
                ev = {"expected": "Id and header Signature", "actual": f"missing {what}"}
            elif kind == "meterinfo":
                syn = f"MeteringReceiptReq{_times(n)} ({_span(first, last, n)}) lacks MeterInfo"
                ev = {"expected": "MeterInfo of the last response", "actual": "no MeterInfo"}
            else:
                syn = (f"MeteringReceiptReq{_times(n)} ({_span(first, last, n)}) body SessionID "
                       f"differs from the header SessionID ({what})")
                ev = {"expected": "body SessionID = header SessionID", "actual": what}
            yield self.finding(session, [first.frame, last.frame], syn, time=first.time,
                               evidence={**ev, "messages": n})
