"""Message content rules on the energy transfer mode and the payment option: MSG004-MSG007."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import session_index

from ..base import Rule
from ..helpers import culprit_of
from .common import (Groups, _lower, _options, _payment_at, _payment_options, _span, _times,
                     body_of, failed)

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

    Example:

        #151 PowerDeliveryReq → #153 PowerDeliveryRes
        #175 PowerDeliveryReq → #177 PowerDeliveryRes
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

    Example:

        #66 PaymentDetailsReq → #68 PaymentDetailsRes GenChallenge=865f777acc7…
        #70 AuthorizationReq GenChallenge=b4c7ab4b43c…
          → #72 AuthorizationRes ResponseCode=FAILED_ChallengeInvalid
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

    Example:

        #56 PaymentDetailsReq → #58 PaymentDetailsRes ResponseCode=FAILED_SequenceError
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

    Example:

        #51 PaymentServiceSelectionReq SelectedPaymentOption=Contract
          → #53 PaymentServiceSelectionRes
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
