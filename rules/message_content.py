"""Message content: decodability, the schema a message was decoded with, elements that the
context makes mandatory or forbids (AC vs DC, EIM vs Plug & Charge, DIN restrictions),
values out of their range and physical values with the wrong unit.

Every check reads decoded trees (DESIGN.md "Events"); checks that depend only on a tree are
memoised by tree identity in the analysis' cache (``ctx.view``): identical payloads share
one read-only tree (dissectors/v2g.py), and a charge loop repeats the same few trees
thousands of times.

FAILED responses are never judged on their content: they only have to carry the mandatory
elements, with minimal XSD-valid values (ISO 15118-2 [V2G2-736], [V2G2-538]; ISO 15118-20
[V2G20-736]; PROTOCOL_FACTS §4.0 and §5).
"""
from __future__ import annotations

import re

from ccs_analyzer.analyzer.physical import event_facts, header_of, message_body, si_value
from ccs_analyzer.analyzer.views.index import SessionIndex, session_index
from ccs_analyzer.analyzer.views.loop_table import (IMPLAUSIBLE_DEFAULTS, PLACEHOLDER_MIN_VOLTAGE_V,
                                                    ceiling, evse_minimum_voltage,
                                                    implausible_marks, loop_table,
                                                    placeholder_targets)
from ccs_analyzer.analyzer.views.loops import precharge_runs

from .base import Rule
from .helpers import culprit_of, excerpt, is_failed, response_code

NS_SAP = "urn:iso:15118:2:2010:AppProtocol"
NS_ISO20 = "urn:iso:std:iso:15118:-20"
_EXI_TYPES = frozenset({0x8001, 0x8002, 0x8003, 0x8004, 0x8005, 0x8006,
                        0x8101, 0x8102, 0x8103, 0x8104})


def body_of(e) -> dict:
    """The message body (DIN / ISO-2 Body child, -20 root)."""
    return message_body(e.message)[1]


def failed(e) -> bool:
    """A response with a FAILED ResponseCode (its content is not judged)."""
    return is_failed(response_code(e))


class Groups:
    """Occurrences of a condition, grouped by a key: first and last event and the count, so
    that a loop yields one finding (house rule) rather than one per message."""

    def __init__(self):
        self.d: dict = {}

    def add(self, key, e, **facts) -> None:
        g = self.d.get(key)
        if g is None:
            self.d[key] = [e, e, 1, facts]
        else:
            g[1] = e
            g[2] += 1

    def items(self):
        """(key, first event, last event, count, facts of the first occurrence)."""
        for k, (first, last, n, facts) in self.d.items():
            yield k, first, last, n, facts


def _times(n: int) -> str:
    return "" if n == 1 else f" ({n}×)"


def _span(first, last, n: int) -> str:
    return f"frame {first.frame}" if n == 1 else f"frames {first.frame}-{last.frame}"


def _lower(severity: str) -> str:
    return {"error": "warning"}.get(severity, "info")


def _payment_options(idx: SessionIndex):
    """[(frame, SelectedPaymentOption)] of the session's (Service)PaymentServiceSelectionReq."""
    return [(e.frame, body_of(e).get("SelectedPaymentOption"))
            for e in idx.named("PaymentServiceSelectionReq", "ServicePaymentSelectionReq")]


def _payment_at(options, frame: int):
    """The payment option selected last before ``frame`` (None before any selection)."""
    out = None
    for f, opt in options:
        if f < frame:
            out = opt
        else:
            break
    return out


# ---------------------------------------------------------------------------------------
class UndecodableMessage(Rule):
    """A V2GTP message could not be decoded.

    What it checks: every V2GTP message with an EXI payload type decodes with the negotiated
    schema (EXI). V2GTP framing errors, payload types that carry no EXI and empty payloads
    are transport findings (TRN004 … TRN006).
    Why it matters: the receiver cannot decode it either, unless the capture lost bytes; it
    answers with a failure or drops the connection (ISO 15118-2 §7.8.3.2 header checks,
    V2G2 FaultCode ParsingError).
    Fix (sender): validate the EXI encoder against the XSD of the negotiated protocol (the
    error says at which bit and grammar state decoding stopped).
    Source: ISO 15118-2 §7.8.3 (V2GTP), W3C EXI 1.0; PROTOCOL_FACTS §1.1.
    """

    code = "MSG001"
    title = "V2GTP message not decodable"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "no-response", "evse-abort", "ev-abort",
                "no-session-stop", "connection-reset")
    culprit = "unknown"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        for e in session_index(session, ctx).v2g_all:
            if not e.error or e.message is not None or e.name == "V2GTP framing error":
                continue
            if e.payload_type not in _EXI_TYPES or not e.payload:
                continue          # no EXI / empty payload: transport rules TRN005, TRN006
            lost = "missing from the capture" in e.error
            yield self.finding(session, [e.frame, e.first_frame], f"{e.name} in frame {e.frame} "
                               f"could not be decoded: {e.error}", time=e.time,
                               culprit="capture" if lost else culprit_of(e),
                               severity=_lower(self.severity) if lost else None,
                               evidence={"error": e.error, "payload_type": f"0x{e.payload_type:04X}",
                                         "schemas_tried": e.info.get("schemas_tried"),
                                         "hex": e.payload.hex()[:512] if e.payload else None})


class TrailingBytes(Rule):
    """Bytes follow the EXI document inside the V2GTP payload.

    What it checks: the V2GTP payload length equals the octets the EXI document occupies
    (the V2G layer reports the surplus as ``trailing_bytes``); one finding per message type
    and sender, with the count.
    Why it matters: the payload length must describe the message exactly; a strict receiver
    rejects the message (ParsingError) or mis-frames what follows, a lenient one ignores
    the stray octets — an interoperability risk either way.
    Fix (sender): set the V2GTP payload length to the EXI encoder's output length; do not
    pad or reuse a larger buffer length.
    Source: ISO 15118-2 §7.8.3 (payload length = length of the V2GTP payload), DIN 70121
    §8.7.3; PROTOCOL_FACTS §1.1 ("payload length must equal the bytes that follow").
    """

    code = "MSG002"
    title = "Bytes after the EXI document in the V2GTP payload"
    severity = "warning"
    category = "message-content"
    requirement = "ISO 15118-2 §7.8.3 V2GTP payload length"
    culprit = "unknown"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e in session_index(session, ctx).v2g:
            tb = e.info.get("trailing_bytes")
            if tb:
                groups.add((e.name, e.direction), e, count=tb.get("count"), hex=tb.get("hex"),
                           payload=e.payload.hex()[:256] if e.payload else None)
        for (name, _), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) carries "
                               f"{f['count']} byte(s) (0x{f['hex']}) after the end of its EXI "
                               f"document inside the V2GTP payload length", time=first.time,
                               culprit=culprit_of(first), measured=f["count"], limit=0, unit="bytes",
                               evidence={"expected": "V2GTP payload length = EXI document length",
                                         "actual": f"{f['count']} trailing byte(s) 0x{f['hex']}",
                                         "payload_hex": f["payload"], "messages": n})


class SchemaFallback(Rule):
    """A message decodes only with another schema than the one negotiated.

    What it checks: after SupportedAppProtocol chose a namespace (DIN 70121, ISO 15118-2,
    ISO 15118-20), every message decodes with that namespace; the V2G layer notes
    ``schema_fallback`` when it had to try another one. Connections whose schema was
    detected (handshake not captured) are capture-quality findings (CAP004), not this; a
    -20 message on the wrong payload type is TRN005.
    Why it matters: the receiver decodes with the negotiated schema and fails (ParsingError,
    FAILED or a dropped connection); usually the sender mixes up DIN 70121 and ISO 15118-2.
    Fix (sender): encode every message of the session with the namespace the
    supportedAppProtocolRes selected.
    Source: ISO 15118-2 §8.2 / DIN 70121 §8.2 (SupportedAppProtocol chooses the protocol),
    ISO 15118-20 §8.3.3; PROTOCOL_FACTS §3.
    """

    code = "MSG003"
    title = "Message encoded with a schema other than the negotiated one"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "no-response", "evse-abort", "ev-abort",
                "no-session-stop", "connection-reset")
    requirement = "ISO 15118-2 §8.2 SupportedAppProtocol selects the schema"
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 107", "UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e in session_index(session, ctx).v2g:
            fb = e.info.get("schema_fallback")
            if not fb or e.info.get("namespace_detected") or e.info.get("schema_detected"):
                continue
            expected = fb.get("expected") or ""
            if expected == NS_SAP or e.namespace == NS_SAP:
                continue          # a handshake message out of place: a sequence matter
            if expected.startswith(NS_ISO20) and (e.namespace or "").startswith(NS_ISO20):
                continue          # -20 schema vs payload type: TRN005
            groups.add((e.name, e.direction, e.namespace), e, expected=expected,
                       error=fb.get("error"))
        for (name, _, ns), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) decodes only with "
                               f"{ns}, not with the negotiated {f['expected']}",
                               time=first.time, culprit=culprit_of(first),
                               evidence={"expected": f["expected"], "actual": ns,
                                         "error_with_negotiated_schema": f["error"], "messages": n})


# ---------------------------------------------------------------------------------------
_ISO20_FAMILY_SERVICES = {"AC_": {1, 5}, "DC_": {2, 4, 6, 7}, "WPT_": {3}}


def _mode_of(value) -> str | None:
    if isinstance(value, str):
        if value.startswith("AC"):
            return "AC"
        if value.startswith("DC"):
            return "DC"
    return None


class EnergyTransferMismatch(Rule):
    """AC and DC elements mixed up: charge parameters or EVSE status of the wrong kind.

    What it checks: ISO 15118-2: ChargeParameterDiscoveryReq carries AC_EVChargeParameter
    for an AC_* RequestedEnergyTransferMode and DC_EVChargeParameter for DC_*;
    ChargeParameterDiscoveryRes carries AC_/DC_EVSEChargeParameter, PowerDeliveryRes and
    MeteringReceiptRes AC_/DC_EVSEStatus matching the session's mode; PowerDeliveryReq has
    DC_EVPowerDeliveryParameter only for DC. DIN 70121 (DC only): no AC_EVChargeParameter /
    AC_EVSEChargeParameter, EVRequestedEnergyTransferType DC_core or DC_extended.
    ISO 15118-20: AC_* / DC_* / WPT_* messages match the energy transfer service selected in
    ServiceSelectionReq (1, 5 AC; 2, 6 DC; 4, 7 DC with ACDP; 3 WPT). FAILED responses are
    not judged.
    Why it matters: the SECC answers FAILED_WrongChargeParameter ([V2G2-477],
    [V2G-DC-398]); an EV reading the wrong status type cannot follow the EVSE's state.
    Fix: the side that sent the message (culprit): fill the parameter / status element of
    the energy transfer mode the session uses.
    Source: ISO 15118-2 [V2G2-476], [V2G2-477] (J-BODY2, R-SECC-CPD, E-ISO); DIN 70121
    [V2G-DC-398], [V2G-DC-625]; ISO 15118-20 Table 204 service IDs; PROTOCOL_FACTS §5, §4A,
    §4C.
    """

    code = "MSG004"
    title = "AC / DC elements do not match the energy transfer mode"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "out-of-sequence", "evse-abort", "ev-abort",
                "no-session-stop")
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-477]; DIN 70121 [V2G-DC-398]"
    failure_modes = ("UC2 108", "UC2 110", "UC2 111")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        groups = Groups()
        mode = None
        selected_service = None
        for e in idx.v2g:
            name = e.name
            proto = e.protocol
            if proto == "ISO 15118-20":
                if name == "ServiceSelectionReq":
                    sel = body_of(e).get("SelectedEnergyTransferService")
                    if isinstance(sel, dict):
                        selected_service = sel.get("ServiceID")
                    continue
                if selected_service is None or (name.endswith("Res") and failed(e)):
                    continue
                for prefix, services in _ISO20_FAMILY_SERVICES.items():
                    if name.startswith(prefix) and selected_service not in services:
                        groups.add(("-20", name), e, service=selected_service, family=prefix[:-1],
                                   expected=f"messages of service {selected_service}", actual=name)
                continue
            if proto not in ("ISO 15118-2", "DIN 70121"):
                continue
            din = proto == "DIN 70121"
            if name.endswith("Res") and failed(e):
                continue
            if name == "ChargeParameterDiscoveryReq":
                b = body_of(e)
                if din:
                    etype = b.get("EVRequestedEnergyTransferType")
                    if "AC_EVChargeParameter" in b:
                        groups.add(("din-ac", name), e, expected="DC_EVChargeParameter (DIN is DC only)",
                                   actual="AC_EVChargeParameter")
                    if etype is not None and etype not in ("DC_core", "DC_extended"):
                        groups.add(("din-type", name), e, expected="DC_core or DC_extended",
                                   actual=f"EVRequestedEnergyTransferType {etype}", warn=True)
                    mode = "DC"
                    continue
                req_mode = _mode_of(b.get("RequestedEnergyTransferMode"))
                has = [k for k in ("AC_EVChargeParameter", "DC_EVChargeParameter") if k in b]
                if req_mode is not None:
                    want = f"{req_mode}_EVChargeParameter"
                    if has != [want]:
                        groups.add(("cpd-req", name), e, expected=want,
                                   actual=", ".join(has) or "no EVChargeParameter",
                                   mode=b.get("RequestedEnergyTransferMode"))
                    mode = req_mode
                continue
            if mode is None:
                if name in ("CableCheckReq", "PreChargeReq", "CurrentDemandReq", "WeldingDetectionReq"):
                    mode = "DC"
                elif name == "ChargingStatusReq":
                    mode = "AC"
            if mode is None:
                continue
            if din and name == "ChargeParameterDiscoveryRes" and "AC_EVSEChargeParameter" in body_of(e):
                groups.add(("din-ac", name), e, expected="DC_EVSEChargeParameter (DIN is DC only)",
                           actual="AC_EVSEChargeParameter")
                continue
            if din:
                continue
            if name == "ChargeParameterDiscoveryRes":
                b = body_of(e)
                has = [k for k in ("AC_EVSEChargeParameter", "DC_EVSEChargeParameter") if k in b]
                if has and has != [f"{mode}_EVSEChargeParameter"]:
                    groups.add(("cpd-res", name), e, expected=f"{mode}_EVSEChargeParameter",
                               actual=", ".join(has))
            elif name in ("PowerDeliveryRes", "MeteringReceiptRes"):
                b = body_of(e)
                has = [k for k in ("AC_EVSEStatus", "DC_EVSEStatus") if k in b]
                if has and has != [f"{mode}_EVSEStatus"]:
                    groups.add(("status", name), e, expected=f"{mode}_EVSEStatus", actual=", ".join(has))
            elif name == "PowerDeliveryReq" and mode == "AC" and "DC_EVPowerDeliveryParameter" in body_of(e):
                groups.add(("pd-req", name), e, expected="no DC_EVPowerDeliveryParameter in an AC session",
                           actual="DC_EVPowerDeliveryParameter")
        for (kind, name), first, last, n, f in groups.items():
            if kind == "-20":
                yield self.finding(session, [first.frame, last.frame],
                                   f"{name}{_times(n)} ({_span(first, last, n)}) is a {f['family']} "
                                   f"message but ServiceSelectionReq selected energy transfer service "
                                   f"{f['service']}", time=first.time, culprit=culprit_of(first),
                                   evidence={"expected": f["expected"], "actual": name,
                                             "selected_service": f["service"], "messages": n})
                continue
            ctxt = (f" (RequestedEnergyTransferMode {f['mode']})" if f.get("mode") else
                    " in a DC-only DIN 70121 session" if kind.startswith("din") else
                    f" in this {mode} session" if kind in ("cpd-res", "status", "pd-req") and mode else "")
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) carries {f['actual']}, "
                               f"expected {f['expected']}{ctxt}", time=first.time,
                               culprit=culprit_of(first),
                               severity=_lower(self.severity) if f.get("warn") else None,
                               evidence={"expected": f["expected"], "actual": f["actual"],
                                         "energy_transfer_mode": f.get("mode") or mode, "messages": n})


class AuthorizationContent(Rule):
    """AuthorizationReq content does not fit the payment / authorization option.

    What it checks: ISO 15118-2: with Plug & Charge (SelectedPaymentOption Contract) the
    first AuthorizationReq carries the Id attribute and a 16-byte GenChallenge equal to the
    one of the last PaymentDetailsRes; with ExternalPayment (EIM), and in requests repeated
    while EVSEProcessing is Ongoing, both are absent. PaymentDetailsRes's GenChallenge is 16
    bytes. ISO 15118-20: SelectedAuthorizationService is one the AuthorizationSetupRes
    offered, and a PnC AuthorizationReq echoes the GenChallenge of PnC_ASResAuthorizationMode.
    Why it matters: the SECC answers FAILED_ChallengeInvalid ([V2G2-475]) and the session
    ends; a GenChallenge in an EIM request shows the EV runs the wrong authorization path.
    Fix (EVCC): sign and send the challenge the SECC issued, only for Plug & Charge; (SECC)
    issue a 16-byte GenChallenge.
    Source: ISO 15118-2 [V2G2-475], [V2G2-684], [V2G2-697]; ISO 15118-20 AuthorizationSetupRes
    / AuthorizationReq (J-XSD-20); PROTOCOL_FACTS §5 and §4B content rules.
    """

    code = "MSG005"
    title = "AuthorizationReq GenChallenge / Id inconsistent with the payment option"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "EVCC"
    protocols = ("ISO 15118-2", "ISO 15118-20")
    requirement = "ISO 15118-2 [V2G2-475], [V2G2-684], [V2G2-697]"
    failure_modes = ("UC2 112", "UC2 113")
    params = {"gen_challenge_bytes": 16}

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        options = _payment_options(idx)
        nbytes = self.p["gen_challenge_bytes"]
        challenge = challenge_frame = None
        ongoing = False
        offered20 = None
        for e in idx.named("PaymentDetailsRes", "AuthorizationReq", "AuthorizationRes",
                           "AuthorizationSetupRes"):
            b = body_of(e)
            if e.name == "PaymentDetailsRes":
                if failed(e):
                    continue
                challenge, challenge_frame = b.get("GenChallenge"), e.frame
                if isinstance(challenge, str) and len(challenge) != 2 * nbytes:
                    yield self._f(session, e, f"PaymentDetailsRes (frame {e.frame}) issues a "
                                  f"{len(challenge) // 2}-byte GenChallenge, not {nbytes} bytes",
                                  "SECC", f"GenChallenge of {nbytes} bytes [V2G2-697]",
                                  f"{len(challenge) // 2} bytes: {challenge}", [e.frame])
            elif e.name == "AuthorizationSetupRes":
                offered20 = b
            elif e.name == "AuthorizationRes":
                ongoing = str(b.get("EVSEProcessing", "")).startswith("Ongoing")
            elif e.protocol == "ISO 15118-20":
                yield from self._iso20(session, e, b, offered20)
            else:
                yield from self._iso2(session, e, b, _payment_at(options, e.frame), ongoing,
                                      challenge, challenge_frame, nbytes)

    def _f(self, session, e, synopsis, culprit, expected, actual, frames, **more):
        return self.finding(session, frames, synopsis, time=e.time, culprit=culprit,
                            evidence={"expected": expected, "actual": actual, **more})

    def _iso2(self, session, e, b, payment, repeated, challenge, challenge_frame, nbytes):
        gc, has_id = b.get("GenChallenge"), "Id" in b
        if payment == "ExternalPayment" or repeated:
            if gc is not None or has_id:
                why = "with ExternalPayment (EIM)" if payment == "ExternalPayment" else \
                    "repeated while EVSEProcessing was Ongoing"
                yield self._f(session, e, f"AuthorizationReq (frame {e.frame}) {why} carries "
                              f"{' and '.join(x for x, y in (('Id', has_id), ('GenChallenge', gc)) if y)}",
                              "EVCC", "no Id and no GenChallenge [V2G2-684]",
                              {"Id": b.get("Id"), "GenChallenge": gc}, [e.frame],
                              SelectedPaymentOption=payment)
            return
        if payment != "Contract":
            return
        if gc is None or not has_id:
            missing = [x for x, y in (("Id", has_id), ("GenChallenge", gc is not None)) if not y]
            yield self._f(session, e, f"Plug & Charge AuthorizationReq (frame {e.frame}) lacks "
                          f"{' and '.join(missing)}", "EVCC",
                          "Id and the signed GenChallenge of PaymentDetailsRes [V2G2-684]",
                          f"missing {', '.join(missing)}", [e.frame, challenge_frame],
                          SelectedPaymentOption=payment)
            return
        if isinstance(gc, str) and len(gc) != 2 * nbytes:
            yield self._f(session, e, f"AuthorizationReq (frame {e.frame}) GenChallenge is "
                          f"{len(gc) // 2} bytes, not {nbytes}", "EVCC",
                          f"{nbytes}-byte GenChallenge [V2G2-697]", gc, [e.frame])
        elif challenge is not None and gc != challenge:
            yield self._f(session, e, f"AuthorizationReq (frame {e.frame}) GenChallenge {gc} "
                          f"differs from the one of PaymentDetailsRes (frame {challenge_frame}) "
                          f"{challenge}", "EVCC", challenge, gc, [challenge_frame, e.frame])

    def _iso20(self, session, e, b, setup):
        sel = b.get("SelectedAuthorizationService")
        if setup is None or sel is None:
            return
        offered = setup.get("AuthorizationServices") or []
        if isinstance(offered, str):
            offered = [offered]
        if offered and sel not in offered:
            yield self._f(session, e, f"AuthorizationReq (frame {e.frame}) selects {sel}, which "
                          f"AuthorizationSetupRes did not offer ({', '.join(map(str, offered))})",
                          "EVCC", f"one of {offered}", sel, [e.frame])
            return
        pnc = setup.get("PnC_ASResAuthorizationMode")
        req = b.get("PnC_AReqAuthorizationMode")
        if sel == "PnC" and isinstance(pnc, dict) and isinstance(req, dict):
            want, got = pnc.get("GenChallenge"), req.get("GenChallenge")
            if want is not None and got != want:
                yield self._f(session, e, f"PnC AuthorizationReq (frame {e.frame}) GenChallenge "
                              f"{got} differs from AuthorizationSetupRes's {want}", "EVCC",
                              want, got, [e.frame])


class PncMessageWithoutContract(Rule):
    """Plug & Charge messages although the payment option is not Contract.

    What it checks: PaymentDetailsReq, CertificateInstallationReq and CertificateUpdateReq
    come only after PaymentServiceSelectionReq selected Contract (ISO 15118-2); DIN 70121
    allows ExternalPayment only, so they never belong in a DIN session.
    Why it matters: the SECC answers FAILED_SequenceError / FAILED_PaymentSelectionInvalid
    and ends the session.
    Fix (EVCC): follow the payment option you selected: with ExternalPayment go on with
    AuthorizationReq (ContractAuthenticationReq in DIN).
    Source: ISO 15118-2 [V2G2-551] (E-ISO, R); DIN 70121 [V2G-DC-252]; PROTOCOL_FACTS §5.
    """

    code = "MSG006"
    title = "Plug & Charge message without Contract payment"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2")
    requirement = "ISO 15118-2 [V2G2-551]"
    failure_modes = ("UC2 112", "UC2 100")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        options = _payment_options(idx)
        groups = Groups()
        for e in idx.named("PaymentDetailsReq", "CertificateInstallationReq", "CertificateUpdateReq"):
            din = e.protocol == "DIN 70121"
            opt = "ExternalPayment (DIN 70121)" if din else _payment_at(options, e.frame)
            if din or opt == "ExternalPayment":
                groups.add(e.name, e, option=opt)
        for name, first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) in a session whose "
                               f"payment option is {f['option']}", time=first.time,
                               evidence={"expected": "only after SelectedPaymentOption Contract",
                                         "actual": f"SelectedPaymentOption {f['option']}",
                                         "messages": n})


class PncWithoutTls(Rule):
    """Plug & Charge selected on a connection without TLS.

    What it checks: an ISO 15118-2 PaymentServiceSelectionReq with SelectedPaymentOption
    Contract on a plain TCP connection (not TLS).
    Why it matters: Plug & Charge signs and installs contract credentials; without TLS the
    SECC is not authenticated and the exchange is exposed. The standard requires TLS for
    Contract ([V2G2-634]); many SECCs refuse.
    Fix (EVCC): request TLS in SDP (security 0x00) when you intend Plug & Charge, or select
    ExternalPayment; (SECC): do not offer Contract over plain TCP.
    Source: ISO 15118-2 [V2G2-634], [V2G2-635] (RC-SEQ2 ⚠, hence a warning); PROTOCOL_FACTS
    §1.4 and §5.
    """

    code = "MSG007"
    title = "Plug & Charge without TLS"
    severity = "warning"
    category = "message-content"
    culprit = "EVCC"
    protocols = ("ISO 15118-2",)
    requirement = "ISO 15118-2 [V2G2-634]"
    failure_modes = ("UC2 112",)

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        conns = {c["conn"]: c for c in ctx.connections}
        for e in idx.named("PaymentServiceSelectionReq"):
            if body_of(e).get("SelectedPaymentOption") != "Contract":
                continue
            if e.info.get("tls") or conns.get(e.conn, {}).get("kind") == "tls":
                continue
            offered = [o for r in idx.named("ServiceDiscoveryRes") if r.frame < e.frame
                       for o in _options(body_of(r))]
            yield self.finding(session, [e.frame], f"PaymentServiceSelectionReq (frame {e.frame}) "
                               "selects Contract (Plug & Charge) on a plain TCP connection",
                               time=e.time, evidence={"expected": "Contract only over TLS",
                                                      "actual": "plain TCP",
                                                      "offered_by_SECC": offered})
            return


def _options(b: dict) -> list:
    po = b.get("PaymentOptionList") or b.get("PaymentOptions") or {}
    opts = po.get("PaymentOption", []) if isinstance(po, dict) else []
    return [opts] if isinstance(opts, str) else list(opts)


# ---------------------------------------------------------------------------------------
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
                               time=first.time, measured=name, limit="MeteringReceiptReq",
                               evidence={"expected": "MeteringReceiptReq", "actual": name, "times": n})


class ReceiptInEim(Rule):
    """ReceiptRequired = true in a session without Plug & Charge.

    What it checks: ChargingStatusRes / CurrentDemandRes with ReceiptRequired = true while
    the selected payment option is ExternalPayment (EIM). One finding per session with the
    count.
    Why it matters: only Plug & Charge has the contract key to sign a meter receipt; an EIM
    EV cannot comply and may stop or ignore the request.
    Fix (SECC): set ReceiptRequired only when SelectedPaymentOption is Contract.
    Source: ISO 15118-2 [V2G2-691] (R, E-ISO ✅); PROTOCOL_FACTS §5.
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
                                         "SelectedPaymentOption": "ExternalPayment", "messages": n})


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


# ---------------------------------------------------------------------------------------
class ConditionalElement(Rule):
    """An element that the context makes mandatory is missing, or a forbidden one present.

    What it checks: supportedAppProtocolRes carries SchemaID with an OK_* ResponseCode (a
    SchemaID with Failed_NoNegotiation is HSK002's); an ISO 15118-2 ChargeParameterDiscoveryRes with
    EVSEProcessing = Finished carries SAScheduleList; an ISO 15118-2 CurrentDemandRes
    carries EVSEID and SAScheduleTupleID. FAILED responses are not judged (they only carry
    mandatory elements, [V2G2-736]).
    Why it matters: without SchemaID the EV cannot know which protocol was chosen; without
    SAScheduleList the EV has no schedule for PowerDeliveryReq's SAScheduleTupleID.
    Fix (SECC): send the element the context requires.
    Source: supportedAppProtocolRes (E-SRV; HOTWIRE [V2G-DC-226] ⚠); SAScheduleList when
    Finished (R-SECC-CPD, J-BODY2 ⚠); CurrentDemandRes (J-XSD-2); PROTOCOL_FACTS §5. The ⚠
    conditions are warnings.
    """

    code = "MSG011"
    title = "Conditional element missing or present against its condition"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "ev-abort")
    requirement = "ISO 15118-2 conditional elements (Table 104 idea)"
    culprit = "SECC"
    failure_modes = ("UC2 107", "UC2 111")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        groups = Groups()
        for e in idx.named("supportedAppProtocolRes"):
            b = body_of(e)
            rc = str(b.get("ResponseCode", ""))
            if rc.startswith("OK") and "SchemaID" not in b:
                groups.add(("SchemaID missing", e.name), e, expected="SchemaID with " + rc,
                           actual="no SchemaID", warn=True)
        for e in idx.named("ChargeParameterDiscoveryRes"):
            if e.protocol != "ISO 15118-2" or failed(e):
                continue
            b = body_of(e)
            if b.get("EVSEProcessing") == "Finished" and "SAScheduleList" not in b:
                groups.add(("SAScheduleList missing", e.name), e, warn=True,
                           expected="SAScheduleList with EVSEProcessing Finished",
                           actual="no SAScheduleList")
        for e in idx.named("CurrentDemandRes"):
            if e.protocol != "ISO 15118-2" or failed(e):
                continue
            b = body_of(e)
            missing = [k for k in ("EVSEID", "SAScheduleTupleID") if k not in b]
            if missing:
                groups.add((f"{' and '.join(missing)} missing", e.name), e, warn=False,
                           expected="EVSEID and SAScheduleTupleID", actual=f"missing {missing}")
        for (what, name), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}): {what}",
                               time=first.time, culprit=culprit_of(first),
                               severity=_lower(self.severity) if f["warn"] else None,
                               evidence={"expected": f["expected"], "actual": f["actual"],
                                         "messages": n})


def _din_service_tags(b: dict):
    cs = b.get("ChargeService")
    if isinstance(cs, dict):
        yield cs.get("ServiceTag") if isinstance(cs.get("ServiceTag"), dict) else cs
    sl = b.get("ServiceList")
    services = sl.get("Service", []) if isinstance(sl, dict) else []
    for s in services if isinstance(services, list) else [services]:
        if isinstance(s, dict):
            yield s.get("ServiceTag") if isinstance(s.get("ServiceTag"), dict) else s
    for k in ("ServiceTag",):
        if isinstance(b.get(k), dict):
            yield b[k]


def _tuples(b: dict) -> list:
    sl = b.get("SAScheduleList")
    if not isinstance(sl, dict):
        return []
    t = sl.get("SAScheduleTuple", [])
    return [x for x in (t if isinstance(t, list) else [t]) if isinstance(x, dict)]


class DinForbiddenContent(Rule):
    """DIN 70121 content the standard does not allow.

    What it checks: in a DIN 70121 session: ServiceName and ServiceScope in service tags
    ([V2G-DC-628], [V2G-DC-629]); SalesTariff in SAScheduleTuple ([V2G-DC-554]); a payment
    option other than ExternalPayment, offered or selected ([V2G-DC-252]); more than 12
    PMaxScheduleEntry in a PMaxSchedule ([V2G-DC-329], single source ⚠ → warning).
    Why it matters: DIN 70121 EVs implement EIM only and parse these elements as errors; an
    EV selecting Contract gets FAILED_PaymentSelectionInvalid ([V2G-DC-395]).
    Fix: the sender (SECC for responses, EVCC for requests): leave these elements out in
    DIN 70121; offer and select ExternalPayment only.
    Source: DIN SPEC 70121 [V2G-DC-252], [V2G-DC-329], [V2G-DC-554], [V2G-DC-628],
    [V2G-DC-629] (J-DIN-DT, E-DIN); PROTOCOL_FACTS §4A "DIN-specific content rules".
    """

    code = "MSG012"
    title = "DIN 70121 content the standard forbids"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "ev-abort")
    culprit = "SECC"
    protocols = ("DIN 70121",)
    requirement = "DIN 70121 [V2G-DC-252], [V2G-DC-554], [V2G-DC-628], [V2G-DC-629]"
    failure_modes = ("UC2 107", "UC2 159")
    params = {"max_pmax_entries": 12}

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        groups = Groups()
        limit = self.p["max_pmax_entries"]
        for e in idx.v2g:
            if e.protocol != "DIN 70121":
                continue
            name = e.name
            if name in ("ServiceDiscoveryRes", "ServiceDetailRes"):
                if failed(e):
                    continue
                b = body_of(e)
                for tag in _din_service_tags(b):
                    for k in ("ServiceName", "ServiceScope"):
                        if isinstance(tag, dict) and k in tag:
                            groups.add((name, k), e, req="[V2G-DC-628]" if k == "ServiceName"
                                       else "[V2G-DC-629]", actual=f"{k} {tag[k]!r}")
                bad = [o for o in _options(b) if o != "ExternalPayment"]
                if bad:
                    groups.add((name, "PaymentOption"), e, req="[V2G-DC-252]",
                               actual=f"PaymentOption {', '.join(bad)}")
            elif name == "ServicePaymentSelectionReq":
                opt = body_of(e).get("SelectedPaymentOption")
                if opt is not None and opt != "ExternalPayment":
                    groups.add((name, "SelectedPaymentOption"), e, req="[V2G-DC-252]",
                               actual=f"SelectedPaymentOption {opt}")
            elif name == "ChargeParameterDiscoveryRes" and not failed(e):
                for t in _tuples(body_of(e)):
                    if "SalesTariff" in t:
                        groups.add((name, "SalesTariff"), e, req="[V2G-DC-554]", actual="SalesTariff")
                    ps = t.get("PMaxSchedule")
                    entries = ps.get("PMaxScheduleEntry", []) if isinstance(ps, dict) else []
                    if isinstance(entries, list) and len(entries) > limit:
                        groups.add((name, "PMaxScheduleEntry"), e, req="[V2G-DC-329]", warn=True,
                                   actual=f"{len(entries)} PMaxScheduleEntry (limit {limit})")
        for (name, what), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) carries {f['actual']}, "
                               f"which DIN 70121 does not allow {f['req']}", time=first.time,
                               culprit=culprit_of(first),
                               severity=_lower(self.severity) if f.get("warn") else None,
                               evidence={"expected": f"no {what} in DIN 70121 {f['req']}",
                                         "actual": f["actual"], "messages": n})


# ---------------------------------------------------------------------------------------
# physical values: ranges and units (memoised per shared tree)
_EXPECTED_UNITS = (("voltage", ("V",)), ("current", ("A",)), ("ripple", ("A",)),
                   ("energy", ("Wh",)), ("capacity", ("Wh",)), ("eamount", ("Wh",)),
                   ("power", ("W", "VA")), ("pmax", ("W", "VA")), ("remainingtime", ("s", "m", "h")))
_SOC_NAMES = ("EVRESSSOC", "FullSOC", "BulkSOC", "PresentSOC", "MinimumSOC", "TargetSOC",
              "MaximumSOC", "EVMinimumSOC", "EVTargetSOC", "EVMaximumSOC")
_UNIT_CACHE: dict[str, tuple | None] = {}


def expected_units(name: str) -> tuple | None:
    """Units a physical-value element may carry, by its name (None when the name says
    nothing): …Voltage → V, …Current → A, …Power / PMax → W, …Energy → Wh,
    RemainingTime… → s (m, h) — ISO 15118-2 Table 68 and the DIN / ISO-2 unit per field
    (J-PV)."""
    u = _UNIT_CACHE.get(name, False)
    if u is False:
        low = name.lower()
        u = next((units for key, units in _EXPECTED_UNITS if key in low), None)
        _UNIT_CACHE[name] = u
    return u


def _walk_values(node, out: list) -> None:
    """Collect (element name, physical value dict) and (SoC name, int) of a body."""
    for k, v in node.items():
        if type(v) is dict:
            if "Value" in v and ("Multiplier" in v or "Exponent" in v):
                out.append((k, v))
            else:
                _walk_values(v, out)
        elif type(v) is list:
            for x in v:
                if type(x) is dict:
                    if "Value" in x and ("Multiplier" in x or "Exponent" in x):
                        out.append((k, x))
                    else:
                        _walk_values(x, out)
        elif k in _SOC_NAMES and type(v) is int:
            out.append((k, v))


#: ISO 15118-2 Table 68 limits (Josev comments, ⚠): by unit, in SI units.
ISO2_TABLE68 = {"V": 1000.0, "A": 400.0, "W": 200_000.0, "Wh": 200_000.0, "s": 172_800.0}
_TIME = {"s": 1.0, "m": 60.0, "h": 3600.0}
#: How many trees a per-tree memo of this module keeps before it starts afresh.
_MEMO_MAX = 16384


def _tree_memo(ctx, name: str) -> dict:
    """A memo of one analysis by tree identity, id(tree) → (tree, value …): identical
    payloads share one read-only tree (dissectors/v2g.py), and the tree is kept so that its
    id cannot be reused while memoised (``ctx.view``, capture-wide)."""
    return ctx.view(("message_content.trees", name), None, dict)


def value_facts(e, ctx) -> tuple[list, list]:
    """(issues, iso2_values) of one decoded message, memoised per shared tree (per analysis).

    ``issues``: [(kind, element, actual, allowed)] with kind ``multiplier`` (outside −3..3),
    ``soc`` (outside 0..100) or ``unit`` (a Unit that does not fit the element);
    ``iso2_values``: [(element, SI value, SI unit)] of an ISO 15118-2 message's physical
    values with a fitting unit, for the Table 68 ranges."""
    tree = e.message
    memo = _tree_memo(ctx, "value_facts")
    hit = memo.get(id(tree))
    if hit is not None and hit[0] is tree:
        return hit[1], hit[2]
    _, body = message_body(tree)
    vals: list = []
    _walk_values(body, vals)
    issues, iso2_values = [], []
    iso2 = e.protocol == "ISO 15118-2"
    classic = iso2 or e.protocol == "DIN 70121"
    for name, v in vals:
        if type(v) is int:
            if not 0 <= v <= 100:
                issues.append(("soc", name, v, "0..100"))
            continue
        if not classic or "Multiplier" not in v:
            continue
        m, value, unit = v.get("Multiplier"), v.get("Value"), v.get("Unit")
        if isinstance(m, int) and not -3 <= m <= 3:
            issues.append(("multiplier", name, m, "-3..3"))
            continue
        want = expected_units(name)
        if unit is not None and want is not None and unit not in want:
            issues.append(("unit", name, unit, "/".join(want)))
            continue
        if iso2 and isinstance(value, int) and isinstance(m, int) and unit is not None:
            x = si_value({"Value": value, "Multiplier": m})
            if unit in _TIME:
                x, unit = x * _TIME[unit], "s"
            iso2_values.append((name, x, unit))
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[id(tree)] = (tree, issues, iso2_values)
    return issues, iso2_values


class ValueOutOfRange(Rule):
    """A value outside the range its schema type allows.

    What it checks: PhysicalValue Multiplier within −3..3 (DIN 70121, ISO 15118-2) and SoC
    values (EVRESSSOC, FullSOC, BulkSOC, -20 PresentSOC, TargetSOC …) within 0..100. One
    finding per message type, element and kind, with the count. FAILED responses are not
    judged.
    Why it matters: the EXI grammar can carry values outside these facets (a 3-bit
    multiplier reaches 4, a 7-bit SoC 127) but a validating receiver rejects them, and a
    lenient one computes a wrong value.
    Fix (sender): scale physical values with a multiplier in −3..3; send SoC in percent.
    Source: DIN 70121 / ISO 15118-2 XSD (multiplierType −3..3, percentValueType 0..100),
    ISO 15118-20 XSD (percentValueType); PROTOCOL_FACTS §4.0 "Physical values".
    """

    code = "MSG013"
    title = "Value outside its schema range"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "evse-abort", "ev-abort")
    requirement = "DIN 70121 / ISO 15118-2 XSD multiplierType −3..3, percentValueType 0..100"
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e in session_index(session, ctx).v2g:
            if e.name.endswith("Res") and failed(e):
                continue
            for kind, name, actual, limit in value_facts(e, ctx)[0]:
                if kind != "unit":
                    groups.add((e.name, name, kind), e, actual=actual, limit=limit)
        for (msg, name, kind), first, last, n, f in groups.items():
            what = (f"{name} Multiplier {f['actual']} (allowed −3..3)" if kind == "multiplier"
                    else f"{name} = {f['actual']} % (allowed 0..100)")
            yield self.finding(session, [first.frame, last.frame],
                               f"{msg}{_times(n)} ({_span(first, last, n)}): {what}", time=first.time,
                               culprit=culprit_of(first), measured=f["actual"], limit=f["limit"],
                               unit="%" if kind == "soc" else None,
                               evidence={"expected": f"{name} within {f['limit']}",
                                         "actual": f["actual"], "element": name, "messages": n})


class Table68Range(Rule):
    """An ISO 15118-2 physical value beyond the range of Table 68.

    What it checks: ISO 15118-2 values against the ranges of Table 68: voltages ≤
    ``max_voltage_v`` (EVSENominalVoltage ≤ ``max_nominal_voltage_v``), currents ≤
    ``max_current_a``, powers ≤ ``max_power_w``, energies ≤ ``max_energy_wh``, remaining
    times ≤ ``max_time_s``. One finding per element and sender, naming the messages and the
    count. FAILED responses are not judged.
    Why it matters: a value beyond the standard's operating range is either a scaling
    (multiplier) bug or equipment outside what ISO 15118-2 specifies; a receiver that
    validates against Table 68 rejects it.
    Fix (sender): check the scaling; clamp advertised limits to the Table 68 range.
    Source: ISO 15118-2 §8.5.2.7 Table 68 (as quoted by Josev's PhysicalValue classes, J-PV
    ⚠ single source, which is why this is a warning); PROTOCOL_FACTS §4.0.
        Opt-in: enable it in a profile (``[rules] enable = ["MSG015"]``).
    """

    code = "MSG015"
    title = "Value beyond the ISO 15118-2 Table 68 range"
    severity = "warning"
    category = "message-content"
    requirement = "ISO 15118-2 §8.5.2.7 Table 68"
    culprit = "unknown"
    protocols = ("ISO 15118-2",)
    failure_modes = ("UC2 240", "UC2 244")
    params = {"max_voltage_v": 1000.0, "max_nominal_voltage_v": 400.0, "max_current_a": 400.0,
              "max_power_w": 200_000.0, "max_energy_wh": 200_000.0, "max_time_s": 172_800.0}
    default_enabled = False      # opt-in: single-source (⚠) ranges no stack enforces

    def check(self, session, ctx):
        p = self.p
        table = {"V": p["max_voltage_v"], "A": p["max_current_a"], "W": p["max_power_w"],
                 "Wh": p["max_energy_wh"], "s": p["max_time_s"]}
        nominal = p["max_nominal_voltage_v"]
        over_of: dict[int, list] = {}
        found: dict = {}
        for e in session_index(session, ctx).v2g:
            if e.protocol != "ISO 15118-2" or (e.name.endswith("Res") and failed(e)):
                continue
            over = over_of.get(id(e.message))
            if over is None:
                over = over_of[id(e.message)] = [
                    (name, round(x, 3), lim, u) for name, x, u in value_facts(e, ctx)[1]
                    for lim in ((nominal if name == "EVSENominalVoltage" else table.get(u)),)
                    if lim is not None and abs(x) > lim]
            for name, x, lim, u in over:
                g = found.get((name, e.direction))
                if g is None:
                    g = found[(name, e.direction)] = {"first": e, "last": e, "n": 0, "max": x,
                                                      "lim": lim, "unit": u, "messages": {}}
                g["last"] = e
                g["n"] += 1
                g["max"] = max(g["max"], x, key=abs)
                g["messages"][e.name] = g["messages"].get(e.name, 0) + 1
        for (name, _), g in found.items():
            first, last, n = g["first"], g["last"], g["n"]
            msgs = ", ".join(f"{m}{_times(c)}" for m, c in g["messages"].items())
            yield self.finding(session, [first.frame, last.frame],
                               f"{name} = {g['max']:g} {g['unit']} exceeds the ISO 15118-2 Table 68 "
                               f"limit {g['lim']:g} {g['unit']} in {msgs} ({_span(first, last, n)})",
                               time=first.time, culprit=culprit_of(first), measured=g["max"],
                               limit=g["lim"], unit=g["unit"],
                               evidence={"expected": f"{name} ≤ {g['lim']:g} {g['unit']}",
                                         "actual": f"{g['max']:g} {g['unit']}", "element": name,
                                         "messages": g["messages"]})


class UnitMismatch(Rule):
    """A physical value carries a unit that does not fit the element.

    What it checks: DIN 70121 / ISO 15118-2 PhysicalValue elements whose Unit contradicts
    their name: a voltage not in V, a current not in A, a power not in W, an energy not in
    Wh, a remaining time not in s / m / h. A DIN value without Unit is allowed (Unit is
    optional in DIN; many EVs omit it) and is not reported.
    Why it matters: the receiver either rejects the value or reads e.g. amperes as volts,
    with wrong limits as the result.
    Fix (sender): set the Unit of each value per the element's definition.
    Source: ISO 15118-2 Table 68 (unit per element), DIN 70121 unitSymbolType; J-PV;
    PROTOCOL_FACTS §4.0 "Physical values".
    """

    code = "MSG014"
    title = "Physical value with the wrong unit"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    requirement = "ISO 15118-2 §8.5.2.7 Table 68 unit per element"
    culprit = "unknown"
    protocols = ("DIN 70121", "ISO 15118-2")
    failure_modes = ("UC2 240", "UC2 244", "UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e in session_index(session, ctx).v2g:
            if e.name.endswith("Res") and failed(e):
                continue
            for kind, name, actual, limit in value_facts(e, ctx)[0]:
                if kind == "unit":
                    groups.add((e.name, name, actual), e, want=limit)
        for (msg, name, unit), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{msg}{_times(n)} ({_span(first, last, n)}): {name} has Unit "
                               f"{unit}, expected {f['want']}", time=first.time,
                               culprit=culprit_of(first), measured=unit, limit=f["want"],
                               evidence={"expected": f["want"], "actual": unit, "element": name,
                                         "messages": n})


# ---------------------------------------------------------------------------------------
# present values that cannot be measurements
class EvsePresentValueImplausible(Rule):
    """An EVSE present value that cannot be a measurement.

    What it checks: EVSEPresentCurrent and EVSEPresentVoltage in the charge-loop responses
    (CurrentDemandRes, -20 DC_ChargeLoopRes) against every maximum either side announced:
    a value above ``factor`` × the largest of the EVSE's maximum in force
    (EVSEMaximumCurrentLimit / …VoltageLimit, -20 EVSEMaximumChargeCurrent / …Voltage), the
    EV's maximum (EVMaximumCurrentLimit / …VoltageLimit) and the EV's target, and above it by
    more than ``min_excess_a`` / ``min_excess_v``, is beyond physical possibility — neither
    side can carry it. The responses right before and after such values that are still above
    the EV's target (by more than ``current_tolerance_a`` / ``voltage_tolerance_v``) and
    climb monotonically toward them (an accumulating counter) or decay from them belong to
    the same defect. One finding per quantity and loop. The
    limit rules (LIM001, LIM002, LIM006, LIM007, LIM008, LIM011, LIM004 / LIM005) judge only
    plausible measurements and skip these values, so a counter reported as a current is one
    finding, not four; they skip the values marked with the default parameters.
    Why it matters: EVSEPresentCurrent / EVSEPresentVoltage are the EVSE's measurements the
    EV compares with its own (current-differential and voltage monitoring); a value no
    charger and no battery can carry is an accumulating counter, a wrong scaling or a wrong
    field, and leaves the EV (and a test system) without the real output.
    Fix (SECC): report the measured output current / voltage in A / V with the right
    multiplier, not a counter or a sum of modules.
    Source: ISO 15118-2 / DIN 70121 CurrentDemandResType EVSEPresentCurrent /
    EVSEPresentVoltage (present output), DC_EVSEChargeParameterType and
    DC_EVChargeParameterType maxima; PROTOCOL_FACTS §4D "Derived sanity" (⚠ analyst-derived:
    the factor and floors are parameters); ChargeX PFMEA UC2 241-242 (data corruption,
    encoding issues in the SECC).
    """

    code = "MSG020"
    title = "EVSE present value implausible"
    severity = "error"
    category = "message-content"
    kinds = ("implausible-value",)
    explains = ("limit-violation",)
    culprit = "SECC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    failure_modes = ("UC2 241", "UC2 242")
    params = dict(IMPLAUSIBLE_DEFAULTS)
    requirement = ("EVSEPresentCurrent / EVSEPresentVoltage are measurements within what "
                   "either side can carry (§4D ⚠ derived)")

    _WHAT = (("current", "pi", "A", "EVSEPresentCurrent",
              (("imax", "EVSEMaximumCurrentLimit"), ("ev_imax", "EVMaximumCurrentLimit"),
               ("ti", "EVTargetCurrent"))),
             ("voltage", "pv", "V", "EVSEPresentVoltage",
              (("vmax", "EVSEMaximumVoltageLimit"), ("ev_vmax", "EVMaximumVoltageLimit"),
               ("tv", "EVTargetVoltage"))))

    def check(self, session, ctx):
        p = self.p
        for run, rows in loop_table(session, ctx):
            marks = ([r.bad for r in rows] if p == IMPLAUSIBLE_DEFAULTS
                     else implausible_marks(rows, p))
            for what, attr, unit, name, refs in self._WHAT:
                hit = [r for r, m in zip(rows, marks) if what in m]
                if not hit:
                    continue
                first, last = hit[0], hit[-1]
                worst = max(hit, key=lambda r: getattr(r, attr))
                v = getattr(worst, attr)
                anchor = next((r for r in hit if getattr(r, attr) > p["factor"] * (ceiling(
                    r, tuple(k for k, _ in refs)) or float("inf"))), worst)
                known = []
                for ref in (worst, anchor):       # the maxima in force (the anchor has some)
                    known = [(label, getattr(ref, k)) for k, label in refs
                             if getattr(ref, k) is not None and getattr(ref, k) > 0]
                    if known:
                        break
                if not known:
                    continue
                top = max(x for _, x in known)
                listed = ", ".join(f"{label} {x:.1f} {unit}" for label, x in known)
                climb = ""
                n_climb = hit.index(anchor)
                if n_climb:
                    climb = (f"; it climbed from {getattr(first, attr):.1f} {unit} (frame "
                             f"{first.cyc.res.frame}) in {n_climb + 1} responses like an "
                             f"accumulating counter")
                span = (f"frame {first.cyc.res.frame}" if len(hit) == 1 else
                        f"frames {first.cyc.res.frame}-{last.cyc.res.frame}")
                yield self.finding(
                    session, [first.cyc.res.frame, worst.cyc.res.frame, last.cyc.res.frame],
                    f"{name} cannot be a measurement in {len(hit)} {first.cyc.res.name} ({span}): "
                    f"up to {v:.1f} {unit} (frame {worst.cyc.res.frame}), more than "
                    f"{p['factor']:g}× the largest maximum either side announced ({listed})"
                    f"{climb}", time=first.t, measured=round(v, 3),
                    limit=round(p["factor"] * top, 3), unit=unit, culprit=culprit_of(first.cyc.res),
                    evidence={"expected": f"{name} ≤ {p['factor']:g} × max({', '.join(l for l, _ in known)})",
                              "actual": f"{v:.1f} {unit}", "count": len(hit), "messages": len(hit),
                              "announced": {label: x for label, x in known},
                              "first": excerpt(first.cyc.res, (name,)),
                              "worst": {"request": excerpt(worst.cyc.req, (refs[2][1],)),
                                        "response": excerpt(worst.cyc.res, (name, refs[0][1]))},
                              "last": excerpt(last.cyc.res, (name,))})


# ---------------------------------------------------------------------------------------
# strings that are not XML text
def xml_char_ok(c: str) -> bool:
    """Whether one character matches the XML 1.0 ``Char`` production (§2.2): #x9 | #xA | #xD |
    [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]."""
    o = ord(c)
    return (o >= 0x20 and o <= 0xD7FF) or o in (0x9, 0xA, 0xD) or 0xE000 <= o <= 0xFFFD or \
        0x10000 <= o <= 0x10FFFF


_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def non_xml_strings(tree, ctx) -> list[tuple[str, str]]:
    """[(element path, string)] of the string values anywhere in a decoded tree (header and
    body, list items included; paths like ``Body/ServiceDiscoveryReq/ServiceScope``) that
    hold a character outside the XML 1.0 Char range; memoised per shared tree. Enumerations
    and hexBinary / base64Binary values (hex text in the decoded form) never do."""
    memo = _tree_memo(ctx, "non_xml_strings")
    hit = memo.get(id(tree))
    if hit is not None and hit[0] is tree:
        return hit[1]
    out: list = []
    stack = [("", tree)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                stack.append((f"{path}/{k}" if path else str(k), v))
        elif isinstance(node, list):
            for v in node:
                stack.append((path, v))
        elif isinstance(node, str) and _NOT_XML.search(node):
            out.append((path, node))
    out.reverse()
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[id(tree)] = (tree, out)
    return out


def _codepoints(text: str, limit: int = 8) -> list[str]:
    """The distinct non-XML characters of ``text`` as U+XXXX, at most ``limit``."""
    seen: list[str] = []
    for c in text:
        if not xml_char_ok(c):
            u = f"U+{ord(c):04X}"
            if u not in seen:
                seen.append(u)
                if len(seen) >= limit:
                    break
    return seen


class StringNotXmlText(Rule):
    """A string value holds characters that XML text cannot hold.

    What it checks: every string value of every decoded V2G message (header and body,
    SupportedAppProtocol included): a character outside the XML 1.0 Char production (§2.2:
    #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF) — a NUL or another C0
    control character, a lone surrogate, U+FFFE / U+FFFF. One finding per message type and
    element, naming the sender, the characters and the count.
    Why it matters: EXI (W3C EXI 1.0) encodes an XML infoset; a schema-informed EXI string
    can carry any code point, but no XML document can, so the message is EXI-valid yet not
    an XML document: an EXI-to-XML decoder (e.g. EXIficient, the reference), a logger or a
    backend that stores the value as XML or JSON text rejects or mangles it. An all-NUL
    ServiceScope is an uninitialised buffer sent as text.
    Fix (sender): leave optional strings out when there is nothing to send, or send
    printable text; never copy a fixed-size byte buffer into a string field.
    Source: W3C XML 1.0 §2.2 "Characters" (Char production); W3C EXI 1.0 §1 (EXI encodes
    the XML Information Set), §7.1.10 (String: a sequence of Unicode code points); ISO 15118-2
    / DIN 70121 serviceScopeType (xs:string, maxLength 64).
    """

    code = "MSG021"
    title = "String value outside the XML character range"
    severity = "warning"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "unknown"
    requirement = "W3C XML 1.0 §2.2 Char; W3C EXI 1.0 encodes XML infosets"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        for e in session_index(session, ctx).v2g:
            for path, text in non_xml_strings(e.message, ctx):
                groups.add((e.name, path, e.direction), e, text=text)
        for (msg, path, _), first, last, n, f in groups.items():
            text = f["text"]
            element = path.rsplit("/", 1)[-1]
            bad = sum(1 for c in text if not xml_char_ok(c))
            cps = _codepoints(text)
            what = (f"all {len(text)} characters {cps[0]}" if bad == len(text) and len(cps) == 1
                    else f"{bad} of {len(text)} characters outside XML 1.0 ({', '.join(cps)})")
            yield self.finding(
                session, [first.frame, last.frame],
                f"{msg}{_times(n)} ({_span(first, last, n)}): {element} is not XML text — {what}",
                time=first.time, culprit=culprit_of(first), measured=", ".join(cps),
                limit="XML 1.0 Char",
                evidence={"expected": f"{element}: characters of the XML 1.0 Char production",
                          "actual": text[:80].encode("unicode_escape").decode("ascii"),
                          "element": path, "characters": cps, "not_xml": bad,
                          "length": len(text), "messages": n})


# ---------------------------------------------------------------------------------------
# placeholder status values of the EV
class EvStatusPlaceholders(Rule):
    """The EV sent placeholder status values before its real ones.

    What it checks: (a) the EV's state of charge (DC_EVStatus EVRESSSOC in
    ChargeParameterDiscoveryReq, CableCheckReq, PreChargeReq …, -20 DisplayParameters
    PresentSOC): the first SoC reports of the session are ``placeholder_soc_pct`` (0 %) and
    the next one jumps by at least ``soc_jump_pct`` to the real SoC — EVRESSSOC is the
    battery's present SoC, which cannot rise without energy, and none flows before the
    charge loop; (b) the first PreChargeReq of a PreCharge loop asks for an EVTargetVoltage
    below the EVSE's minimum voltage (EVSEMinimumVoltageLimit / -20 EVSEMinimumVoltage of
    ChargeParameterDiscoveryRes; ``min_voltage_v`` when unknown), e.g. 0 V, and a later one
    of the same loop for the real battery voltage. One finding per session with both. A SoC
    that drops to 0 later while charging is LIM009's; a real target that changes during
    PreCharge PRE002's (which leaves the placeholders out).
    Why it matters: the EVSE, the backend and the driver's display take these values as
    real: a SoC of 0 % and a target of 0 V (outside the EVSE's range) misinform the
    charger's parameter checks and its PreCharge, which starts from a wrong target; the EV
    sends its values before its battery management has them.
    Fix (EVCC): send EVRESSSOC and EVTargetVoltage only once known (the BMS values), from
    the first message that carries them.
    Source: DIN 70121 / ISO 15118-2 DC_EVStatusType EVRESSSOC (state of charge of the EV's
    battery, percentValueType), PreChargeReqType EVTargetVoltage (the voltage the EVSE is to
    match: the battery voltage); ISO 15118-20 DisplayParametersType PresentSOC; PROTOCOL_FACTS
    §4D (PreCharge target = battery voltage; ⚠ the thresholds are parameters).
    """

    code = "MSG022"
    title = "EV status values are placeholders"
    severity = "warning"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "EVCC"
    protocols = ("DIN 70121", "ISO 15118-2", "ISO 15118-20")
    params = {"placeholder_soc_pct": 0.0, "soc_jump_pct": 10.0,
              "min_voltage_v": PLACEHOLDER_MIN_VOLTAGE_V}
    requirement = ("DC_EVStatus EVRESSSOC is the battery's present SoC; PreChargeReq "
                   "EVTargetVoltage is the battery voltage")

    def check(self, session, ctx):
        parts, frames, evidence = [], [], {}
        first_t = measured = unit = None
        soc = self._soc(session, ctx)
        if soc is not None:
            held, (real, value) = soc
            a, b = held[0], held[-1]
            parts.append(f"EVRESSSOC {self.p['placeholder_soc_pct']:g} % in {len(held)} "
                         f"request(s) ({a.name} frame {a.frame}" +
                         (f" … {b.name} frame {b.frame})" if b is not a else ")") +
                         f", then {value:g} % ({real.name} frame {real.frame})")
            frames += [a.frame, b.frame, real.frame]
            first_t, measured, unit = a.time, self.p["placeholder_soc_pct"], "%"
            evidence["soc"] = {"placeholder": excerpt(a, ("EVRESSSOC", "PresentSOC")),
                               "count": len(held),
                               "real": excerpt(real, ("EVRESSSOC", "PresentSOC"))}
        for run in precharge_runs(session, ctx):
            got = placeholder_targets(run, self.p["min_voltage_v"])
            if got is None:
                continue
            held, (real, value) = got
            a = held[0][0]
            lo = evse_minimum_voltage(run)
            below = (f"below EVSEMinimumVoltageLimit {lo:g} V" if lo is not None
                     else f"below {self.p['min_voltage_v']:g} V")
            parts.append(f"EVTargetVoltage {held[0][1]:g} V in {len(held)} PreChargeReq (frame "
                         f"{a.frame}, {below}), then {value:.1f} V (frame {real.frame})")
            frames += [a.frame, held[-1][0].frame, real.frame]
            if first_t is None:
                first_t, measured, unit = a.time, held[0][1], "V"
            evidence.setdefault("precharge", []).append(
                {"placeholder": excerpt(a, ("EVTargetVoltage", "EVTargetCurrent")),
                 "count": len(held), "real": excerpt(real, ("EVTargetVoltage",))})
        if not parts:
            return
        yield self.finding(
            session, frames, "The EV sent placeholders before its real status values: "
            + "; ".join(parts), time=first_t, measured=measured, unit=unit,
            evidence={"expected": "the battery's SoC and voltage from the first message that "
                                  "carries them", "actual": "; ".join(parts), **evidence})

    def _soc(self, session, ctx):
        """([placeholder requests], (first real request, SoC %)) or None."""
        held = []
        for e in session_index(session, ctx).v2g:
            if e.direction != "EV->EVSE" or not e.name.endswith("Req"):
                continue
            v = event_facts(e).get("SoC_pct")
            if v is None:
                continue
            if v <= self.p["placeholder_soc_pct"]:
                held.append(e)
                continue
            if held and v - self.p["placeholder_soc_pct"] >= self.p["soc_jump_pct"]:
                return held, (e, v)
            return None
        return None
