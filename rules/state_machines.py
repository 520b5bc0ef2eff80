"""The request sequences of DIN SPEC 70121, ISO 15118-2 and ISO 15118-20, as data.

Each table reads like the standards' sequence tables (PROTOCOL_FACTS §4A "Legal request
sequence", §4B, §4C "Legal sequence (DC, PLC)"): *after the SECC sent response X, the
allowed next requests are …*. A state is named by the response and the values that decide
what may follow (``CableCheckRes (Ongoing)``, ``PowerDeliveryRes (Stop, DC)``); the table
maps it to the allowed request base names and the requirement that says so.

An allowed entry is a request base name (``CableCheck``) or a base name with the value that
qualifies it (``PowerDelivery:Stop`` — ChargeProgress, or for DIN ReadyToChargeState
true → ``Start`` / false → ``Stop``): ISO 15118-2 [V2G2-812] allows PowerDeliveryReq
(Renegotiate) only after the charge loop started and forbids PowerDeliveryReq(Start)
directly after it.

:func:`state_after` computes the state after a response; None means "unknown" (a message
the tables do not cover: ServiceDetail in DIN, WPT/ACDP in ISO 15118-20 …) and the next
request is not checked. After a FAILED response the session is over ([V2G2-539], DIN
[V2G-DC-665]; ISO 15118-20 ⚠ E-D20): the state of :func:`after_failed` allows only
SessionStopReq (an EV that says goodbye does no harm); any other request is out of sequence.

SessionStopReq may end the session while an EVSEProcessing = Ongoing loop waits
(ContractAuthentication / Authorization, ChargeParameterDiscovery, CableCheck in DIN and
ISO 15118-2): the EVSE state tables that PROTOCOL_FACTS draws on admit it there (EVerest
din_server.hpp WAIT_FOR_CABLECHECK "CableCheckReq, SessionStopReq" [V2G-DC-453]
[V2G-DC-499], WAIT_FOR_CHARGEPARAMETERDISCOVERY; iso_server.hpp after CableCheckRes /
ChargeParameterDiscoveryRes [V2G2-582] [V2G2-621], after AuthorizationRes [V2G2-687]), the
EV is obliged to give up a loop that does not finish (V2G_EVCC_CableCheck_Timeout
[V2G2-700..703], V2G_EVCC_Ongoing_Timeout [V2G2-710] [V2G2-711]) and SessionStopReq is how
a session ends in order; [V2G-DC-418] ("stay in CableCheck until EVSEProcessing is
complete") says what the EV repeats while it waits, not that it may not stop. PROTOCOL_FACTS
§4A/§4B list only the loop request there (⚠ the tables of the standards were not at hand).

Simplifications (documented in SEQ002's page): the CableCheck exit condition "Finished with
isolation Valid/Warning and EVSE_Ready" (DIN 70121 [V2G-DC-499], ISO 15118-2 [V2G2-584]) is
reduced to EVSEProcessing = Finished with isolation Valid / Warning here (a Finished cable
check with isolation Invalid / Fault allows only SessionStopReq; the EVSE status is judged by
RSP007 and the cable-check rules); after a renegotiation in ISO 15118-2 DC, PowerDeliveryReq is accepted besides
CableCheckReq (⚠ PROTOCOL_FACTS §4B, §7.5); a ChargeParameterDiscoveryRes with
EVSENotification = StopCharging also allows PreChargeReq / PowerDeliveryReq (the
IEC 61851-23 Ed2 pause, ⚠ UG18).

:func:`msg_timeout_s`: V2G_EVCC_Msg_Timeout per request, from rules/timing_tables.py
``MSG_TIMEOUT`` (PROTOCOL_FACTS §3, §4A "DIN timing", §4B Table 109, §4C Tables 215-217): how
long the EV waits for a response.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ccs_analyzer.analyzer.views.events import base_name

from .timing_tables import DIN, ISO2, ISO20, MSG_TIMEOUT, lookup

#: Requests of the charge loop (one per cycle).
LOOP = frozenset({"CurrentDemand", "ChargingStatus", "AC_ChargeLoop", "DC_ChargeLoop",
                  "WPT_ChargeLoop"})
_ONGOING = ("Ongoing", "Ongoing_WaitingForCustomerInteraction")


@dataclass(frozen=True)
class State:
    """What may follow a response: ``label`` (the response and its deciding values),
    ``allowed`` (request base names, optionally ``Name:Qualifier``), ``requirement``."""

    label: str
    allowed: tuple[str, ...]
    requirement: str

    def allows(self, base: str, qualifier: str | None) -> bool:
        """Whether a request (base name, qualifier) may follow."""
        return base in self.allowed or (qualifier is not None and f"{base}:{qualifier}" in self.allowed)

    def allows_type(self, base: str) -> bool:
        """Whether some request of this base name may follow (with another qualifier)."""
        return base in self.allowed or any(a.split(":", 1)[0] == base for a in self.allowed)

    def allowed_text(self) -> str:
        """``CableCheckReq, SessionStopReq`` — the allowed requests in the standard's words."""
        if not self.allowed:
            return "none (the SECC terminates the session)"
        out = []
        for a in self.allowed:
            base, _, q = a.partition(":")
            out.append(f"{base}Req({q})" if q else f"{base}Req")
        return ", ".join(out)


@dataclass
class Context:
    """What the sequence depends on beyond the last response: the payment option, the
    energy transfer mode (AC / DC), whether the charge loop started (and a renegotiation is
    under way), the -20 selected service."""

    payment: str | None = None
    mode: str | None = None
    loop_started: bool = False
    renegotiating: bool = False
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- tables
_S = "SessionStop"
_PD_ANY_2 = ("PowerDelivery:Start", "PowerDelivery:Stop")
_AFTER_LOOP_2 = ("PowerDelivery:Stop", "PowerDelivery:Renegotiate")
_NO_START = "no PowerDeliveryReq(Start) directly after the loop [V2G2-812]"
_20 = "ISO 15118-20 §8.8"

DIN_TABLE: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("supportedAppProtocol",),
              "DIN 70121 §9.6: the session starts with supportedAppProtocolReq"),
    "supportedAppProtocolRes": (("SessionSetup",), "DIN 70121 [V2G-DC-437]"),
    "SessionSetupRes": (("ServiceDiscovery", _S), "DIN 70121 [V2G-DC-438] [V2G-DC-439]"),
    "ServiceDiscoveryRes": (("ServicePaymentSelection", _S), "DIN 70121 [V2G-DC-441]"),
    "ServicePaymentSelectionRes": (("ContractAuthentication", _S), "DIN 70121 [V2G-DC-444]"),
    "ContractAuthenticationRes (Ongoing)": (("ContractAuthentication", _S),
                                            "DIN 70121 [V2G-DC-444] [V2G-DC-497]"),
    "ContractAuthenticationRes (Finished)": (("ChargeParameterDiscovery", _S),
                                             "DIN 70121 [V2G-DC-495] [V2G-DC-498]"),
    "ChargeParameterDiscoveryRes (Ongoing)": (("ChargeParameterDiscovery", _S),
                                              "DIN 70121 [V2G-DC-498]; SessionStopReq ends the wait (E-DIN)"),
    "ChargeParameterDiscoveryRes (Finished)": (("CableCheck", _S), "DIN 70121 [V2G-DC-453]"),
    "ChargeParameterDiscoveryRes (Finished, StopCharging)": (
        ("CableCheck", "PowerDelivery:Stop", _S),
        "DIN 70121 [V2G-DC-453]; IEC 61851-23 Ed2 pause (⚠ UG18)"),
    "CableCheckRes (Ongoing)": (("CableCheck", _S),
                                "DIN 70121 [V2G-DC-455] [V2G-DC-418]; SessionStopReq ends the wait "
                                "([V2G-DC-453] [V2G-DC-499], E-DIN)"),
    "CableCheckRes (Finished)": (("PreCharge", _S), "DIN 70121 [V2G-DC-499]"),
    "CableCheckRes (Finished, isolation not Valid)": ((_S,), "DIN 70121 [V2G-DC-499]"),
    "PreChargeRes": (("PreCharge", "PowerDelivery", _S), "DIN 70121 [V2G-DC-458]"),
    "PowerDeliveryRes (Start)": (("CurrentDemand",), "DIN 70121 [V2G-DC-462]"),
    "PowerDeliveryRes (Stop)": (("WeldingDetection", _S), "DIN 70121 [V2G-DC-459]"),
    "CurrentDemandRes": (("CurrentDemand", "PowerDelivery"), "DIN 70121 [V2G-DC-465]"),
    "WeldingDetectionRes": (("WeldingDetection", _S), "DIN 70121 [V2G-DC-469]"),
    "SessionStopRes": ((), "DIN 70121 [V2G-DC-451]"),
}

ISO2_TABLE: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("supportedAppProtocol",),
              "ISO 15118-2 §8.8.2: the session starts with supportedAppProtocolReq"),
    "supportedAppProtocolRes": (("SessionSetup",), "ISO 15118-2 [V2G2-541]"),
    "SessionSetupRes": (("ServiceDiscovery", _S), "ISO 15118-2 [V2G2-543]"),
    "ServiceDiscoveryRes": (("ServiceDetail", "PaymentServiceSelection", _S), "ISO 15118-2 [V2G2-545]"),
    "ServiceDetailRes": (("ServiceDetail", "PaymentServiceSelection", _S),
                         "ISO 15118-2 [V2G2-545] (ServiceDetail loop)"),
    "PaymentServiceSelectionRes (Contract)": (
        ("PaymentDetails", "CertificateInstallation", "CertificateUpdate", _S), "ISO 15118-2 [V2G2-551]"),
    "PaymentServiceSelectionRes (ExternalPayment)": (("Authorization", _S), "ISO 15118-2 [V2G2-551]"),
    "PaymentServiceSelectionRes": (
        ("PaymentDetails", "CertificateInstallation", "CertificateUpdate", "Authorization", _S),
        "ISO 15118-2 [V2G2-551]"),
    "CertificateInstallationRes": (("PaymentDetails", _S), "ISO 15118-2 [V2G2-554] [V2G2-557]"),
    "CertificateUpdateRes": (("PaymentDetails", _S), "ISO 15118-2 [V2G2-558]"),
    "PaymentDetailsRes": (("Authorization", _S), "ISO 15118-2 [V2G2-560]"),
    "AuthorizationRes (Ongoing)": (("Authorization", _S),
                                   "ISO 15118-2 [V2G2-684] (Authorization loop); SessionStopReq ends "
                                   "the wait ([V2G2-687], E-ISO)"),
    "AuthorizationRes (Finished)": (("ChargeParameterDiscovery", _S), "ISO 15118-2 [V2G2-573] [V2G2-687]"),
    "ChargeParameterDiscoveryRes (Ongoing)": (("ChargeParameterDiscovery", _S),
                                              "ISO 15118-2 [V2G2-688]; SessionStopReq ends the wait (E-ISO)"),
    "ChargeParameterDiscoveryRes (Finished, AC)": (_PD_ANY_2 + (_S,), "ISO 15118-2 §8.8.4 (AC)"),
    "ChargeParameterDiscoveryRes (Finished, DC)": (("CableCheck", _S), "ISO 15118-2 [V2G2-582]"),
    "ChargeParameterDiscoveryRes (Finished, DC, renegotiation)": (
        ("CableCheck", "PowerDelivery:Start", "PowerDelivery:Stop", _S),
        "ISO 15118-2 [V2G2-582]; after a renegotiation ⚠ (PROTOCOL_FACTS §7.5)"),
    "ChargeParameterDiscoveryRes (Finished, StopCharging)": (
        ("CableCheck", "PreCharge", "PowerDelivery:Start", "PowerDelivery:Stop", _S),
        "ISO 15118-2 [V2G2-582]; IEC 61851-23 Ed2 pause (⚠ UG18)"),
    "ChargeParameterDiscoveryRes (Finished)": (
        ("CableCheck", "PowerDelivery:Start", "PowerDelivery:Stop", _S), "ISO 15118-2 [V2G2-582]"),
    "CableCheckRes (Ongoing)": (("CableCheck", _S),
                                "ISO 15118-2 [V2G2-617] [V2G2-621]; SessionStopReq ends the wait "
                                "([V2G2-582], E-ISO)"),
    "CableCheckRes (Finished)": (("PreCharge", _S), "ISO 15118-2 [V2G2-584] [V2G2-525]"),
    "CableCheckRes (Finished, isolation not Valid)": ((_S,), "ISO 15118-2 [V2G2-584]"),
    "PreChargeRes": (("PreCharge",) + _PD_ANY_2 + (_S,), "ISO 15118-2 [V2G2-587] [V2G2-618] [V2G2-528]; "
                                                         "Renegotiate only after the charge loop [V2G2-812]"),
    "PowerDeliveryRes (Start, AC)": (("ChargingStatus",), "ISO 15118-2 [V2G2-576]"),
    "PowerDeliveryRes (Start, DC)": (("CurrentDemand",), "ISO 15118-2 [V2G2-590] [V2G2-530]"),
    "PowerDeliveryRes (Start)": (("ChargingStatus", "CurrentDemand"), "ISO 15118-2 [V2G2-576] [V2G2-590]"),
    "PowerDeliveryRes (Renegotiate)": (("ChargeParameterDiscovery",), "ISO 15118-2 [V2G2-813]"),
    "PowerDeliveryRes (Stop, AC)": ((_S,), "ISO 15118-2 [V2G2-568]"),
    "PowerDeliveryRes (Stop, DC)": (("WeldingDetection", _S), "ISO 15118-2 [V2G2-597] [V2G2-533] [V2G2-619]"),
    "PowerDeliveryRes (Stop)": (("WeldingDetection", _S), "ISO 15118-2 [V2G2-568] [V2G2-597]"),
    "ChargingStatusRes": (("ChargingStatus",) + _AFTER_LOOP_2,
                          "ISO 15118-2 [V2G2-575] [V2G2-797]; " + _NO_START),
    "ChargingStatusRes (ReceiptRequired)": (("MeteringReceipt",), "ISO 15118-2 [V2G2-577] [V2G2-795]"),
    "CurrentDemandRes": (("CurrentDemand",) + _AFTER_LOOP_2,
                         "ISO 15118-2 [V2G2-531] [V2G2-797]; " + _NO_START),
    "CurrentDemandRes (ReceiptRequired)": (("MeteringReceipt",), "ISO 15118-2 [V2G2-577] [V2G2-795]"),
    "MeteringReceiptRes (AC)": (("ChargingStatus",) + _AFTER_LOOP_2, "ISO 15118-2 [V2G2-580]"),
    "MeteringReceiptRes (DC)": (("CurrentDemand",) + _AFTER_LOOP_2, "ISO 15118-2 [V2G2-580]"),
    "MeteringReceiptRes": (("ChargingStatus", "CurrentDemand") + _AFTER_LOOP_2, "ISO 15118-2 [V2G2-580]"),
    "WeldingDetectionRes": (("WeldingDetection", _S), "ISO 15118-2 [V2G2-601] [V2G2-535] [V2G2-620]"),
    "SessionStopRes": ((), "ISO 15118-2 [V2G2-571]"),
}

ISO20_TABLE: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("supportedAppProtocol",), "ISO 15118-20 [V2G20-1483]"),
    "supportedAppProtocolRes": (("SessionSetup",), "ISO 15118-20 [V2G20-1484]"),
    "SessionSetupRes": (("AuthorizationSetup",), "ISO 15118-20 [V2G20-1486]"),
    "AuthorizationSetupRes": (("Authorization", _S), _20 + " (AuthorizationSetup)"),
    "AuthorizationSetupRes (CertificateInstallationService)": (
        ("Authorization", "CertificateInstallation", _S), "ISO 15118-20 [V2G20-1970]"),
    "CertificateInstallationRes": (("Authorization", "CertificateInstallation"),
                                   _20 + " (CertificateInstallation) ⚠"),
    "AuthorizationRes (Ongoing)": (("Authorization",), _20 + " (Authorization loop)"),
    "AuthorizationRes (Finished)": (("ServiceDiscovery", _S), _20 + " (Authorization)"),
    "ServiceDiscoveryRes": (("ServiceDetail", "ServiceSelection", _S), _20 + " (ServiceDiscovery)"),
    "ServiceDetailRes": (("ServiceDetail", "ServiceSelection", _S), _20 + " (ServiceDetail)"),
    "ServiceSelectionRes (DC)": (("DC_ChargeParameterDiscovery", _S), _20 + " (ServiceSelection, DC)"),
    "ServiceSelectionRes (AC)": (("AC_ChargeParameterDiscovery", _S), _20 + " (ServiceSelection, AC)"),
    "DC_ChargeParameterDiscoveryRes": (("ScheduleExchange",), _20 + " (ChargeParameterDiscovery)"),
    "AC_ChargeParameterDiscoveryRes": (("ScheduleExchange",), _20 + " (ChargeParameterDiscovery)"),
    "ScheduleExchangeRes (Ongoing)": (("ScheduleExchange",), _20 + " (ScheduleExchange loop)"),
    "ScheduleExchangeRes (Finished, DC)": (("DC_CableCheck", "PowerDelivery"), "ISO 15118-20 [V2G20-2122]"),
    "ScheduleExchangeRes (Finished, AC)": (("PowerDelivery",), _20 + " (ScheduleExchange, AC)"),
    "DC_CableCheckRes (Ongoing)": (("DC_CableCheck",), _20 + " (DC_CableCheck loop)"),
    "DC_CableCheckRes (Finished)": (("DC_PreCharge",), _20 + " (DC_CableCheck)"),
    "DC_PreChargeRes (EVProcessing=Ongoing)": (("DC_PreCharge",), "ISO 15118-20 [V2G20-2005]"),
    "DC_PreChargeRes (EVProcessing=Finished)": (("PowerDelivery",), "ISO 15118-20 [V2G20-2006]"),
    "PowerDeliveryRes (EVProcessing=Ongoing)": (("PowerDelivery",), _20 + " (PowerDelivery loop)"),
    "PowerDeliveryRes (Start, DC)": (("DC_ChargeLoop",), _20 + " (PowerDelivery Start, DC)"),
    "PowerDeliveryRes (Start, AC)": (("AC_ChargeLoop",), _20 + " (PowerDelivery Start, AC)"),
    "PowerDeliveryRes (Stop, DC)": (("DC_WeldingDetection", _S), _20 + " (PowerDelivery Stop, DC)"),
    "PowerDeliveryRes (Stop, AC)": ((_S,), _20 + " (PowerDelivery Stop, AC)"),
    "DC_ChargeLoopRes": (("DC_ChargeLoop", "PowerDelivery"), _20 + " (DC_ChargeLoop)"),
    "AC_ChargeLoopRes": (("AC_ChargeLoop", "PowerDelivery"), _20 + " (AC_ChargeLoop)"),
    "DC_WeldingDetectionRes (EVProcessing=Ongoing)": (("DC_WeldingDetection", _S),
                                                      _20 + " (DC_WeldingDetection loop)"),
    "DC_WeldingDetectionRes (EVProcessing=Finished)": ((_S,), _20 + " (DC_WeldingDetection)"),
    "SessionStopRes": ((), "ISO 15118-20 [V2G20-1633]"),
    "SessionStopRes (ServiceRenegotiation)": (("ServiceDiscovery",), "ISO 15118-20 [V2G20-1477]"),
}

TABLES = {DIN: DIN_TABLE, ISO2: ISO2_TABLE, ISO20: ISO20_TABLE}

#: Requirement that ends a session after a FAILED response, per protocol.
FAILED_ENDS = {DIN: "DIN 70121 [V2G-DC-665]: the SECC terminates after a FAILED response",
               ISO2: "ISO 15118-2 [V2G2-539]: the session terminates after a FAILED response",
               ISO20: "ISO 15118-20: a FAILED response ends the session, ⚠ E-D20"}


def msg_timeout_s(protocol: str | None, base: str, loop_timeout_s: float | None = None) -> float:
    """V2G_EVCC_Msg_Timeout of a request (s) with base name ``base`` in ``protocol`` (another
    or no protocol: ISO 15118-2's), from rules/timing_tables.py ``MSG_TIMEOUT``;
    ``loop_timeout_s`` overrides the DIN / ISO-2 CurrentDemand value when given."""
    if base == "CurrentDemand" and loop_timeout_s is not None and protocol in (DIN, ISO2):
        return loop_timeout_s
    return lookup(MSG_TIMEOUT, protocol if protocol in MSG_TIMEOUT else ISO2, base).seconds


# --------------------------------------------------------------------------- helpers
def qualifier(protocol: str | None, base: str, body: dict) -> str | None:
    """The value that qualifies a request in the tables: PowerDeliveryReq's ChargeProgress
    (DIN: ReadyToChargeState true → Start, false → Stop)."""
    if base != "PowerDelivery":
        return None
    cp = body.get("ChargeProgress")
    if isinstance(cp, str):
        return cp
    rtc = body.get("ReadyToChargeState")
    if isinstance(rtc, bool):
        return "Start" if rtc else "Stop"
    return None


def _mode_of(ctx: Context) -> str | None:
    return ctx.mode


def update_context(protocol: str | None, ctx: Context, base: str, body: dict) -> None:
    """Learn from a request what later states depend on (payment option, AC/DC, loop)."""
    if base in ("PaymentServiceSelection", "ServicePaymentSelection"):
        opt = body.get("SelectedPaymentOption")
        if isinstance(opt, str):
            ctx.payment = opt
    elif base == "ChargeParameterDiscovery":
        m = body.get("RequestedEnergyTransferMode") or body.get("EVRequestedEnergyTransferType")
        if isinstance(m, str):
            ctx.mode = "AC" if m.startswith("AC") else "DC" if m.startswith("DC") else ctx.mode
        elif "DC_EVChargeParameter" in body:
            ctx.mode = "DC"
        elif "AC_EVChargeParameter" in body:
            ctx.mode = "AC"
        if protocol == DIN:
            ctx.mode = "DC"
    elif base == "ServiceSelection":
        sel = body.get("SelectedEnergyTransferService")
        sid = sel.get("ServiceID") if isinstance(sel, dict) else None
        ctx.mode = {1: "AC", 5: "AC", 2: "DC", 6: "DC"}.get(sid)
        ctx.extra["service_id"] = sid
    elif base in LOOP:
        ctx.loop_started = True
        ctx.renegotiating = False
        if base in ("CurrentDemand", "DC_ChargeLoop"):
            ctx.mode = "DC"
        elif base in ("ChargingStatus", "AC_ChargeLoop"):
            ctx.mode = "AC"
    elif base in ("CableCheck", "PreCharge", "WeldingDetection", "DC_CableCheck", "DC_PreCharge"):
        ctx.mode = "DC"
    elif base == "PowerDelivery" and qualifier(protocol, base, body) in (
            "Renegotiate", "ScheduleRenegotiation"):
        ctx.renegotiating = True


#: Requests whose body decides a later state or the context (the others are not read).
BODY_NEEDED = frozenset({"PowerDelivery", "PaymentServiceSelection", "ServicePaymentSelection",
                         "ChargeParameterDiscovery", "ServiceSelection", "SessionStop",
                         "DC_PreCharge", "DC_WeldingDetection"})

_STATES: dict = {}


def state_after(protocol: str | None, res_name: str, res_facts: dict, res_body,
                req_body: dict, ctx: Context) -> State | None:
    """The state after response ``res_name`` (its facts; its body, or a callable that
    returns it — read only for -20 AuthorizationSetupRes) to a request (body), or None when
    the tables do not decide what may follow (module docstring)."""
    table = TABLES.get(protocol or "")
    if res_name == "supportedAppProtocolRes":
        rc = res_facts.get("ResponseCode")
        if isinstance(rc, str) and rc.startswith("OK") and table is not None:
            allowed, req = table["supportedAppProtocolRes"]
            return State("supportedAppProtocolRes", allowed, req)
        return None
    if table is None:
        return None
    rc = res_facts.get("ResponseCode")
    if isinstance(rc, str) and rc.upper().startswith("FAILED"):
        return after_failed(protocol)
    base = base_name(res_name)
    key = _key(protocol, base, res_name, res_facts, res_body, req_body, ctx)
    if key is None or key not in table:
        return None
    st = _STATES.get((protocol, key))
    if st is None:
        allowed, req = table[key]
        st = _STATES[(protocol, key)] = State(key, allowed, req)
    return st


def after_failed(protocol: str | None) -> State:
    """The state after a FAILED response: the session is over, only SessionStopReq is
    tolerated (module docstring)."""
    key = (protocol, "after FAILED")
    st = _STATES.get(key)
    if st is None:
        st = _STATES[key] = State("after a FAILED response", ("SessionStop",),
                                  FAILED_ENDS.get(protocol or "", FAILED_ENDS[ISO2]))
    return st


def start_state(protocol: str | None) -> State | None:
    """The state before the first message of a connection."""
    table = TABLES.get(protocol or "")
    if table is None:
        table = ISO2_TABLE
    allowed, req = table["start"]
    return State("start of the connection", allowed, req)


def _ongoing(facts: dict, key: str = "EVSEProcessing") -> bool:
    return facts.get(key) in _ONGOING


def _key(protocol, base, res_name, f, body, req_body, ctx: Context) -> str | None:
    if protocol == DIN:
        return _key_din(base, res_name, f, req_body, ctx)
    if protocol == ISO2:
        return _key_iso2(base, res_name, f, req_body, ctx)
    if protocol == ISO20:
        return _key_iso20(base, res_name, f, body, req_body, ctx)
    return None


def _cable_check_failed(f: dict) -> bool:
    """A CableCheckRes that finished without a usable isolation result: EVSEIsolationStatus
    neither Valid nor Warning (Invalid, Fault, No_IMD) — DIN 70121 [V2G-DC-499] and
    ISO 15118-2 [V2G2-584] let PreCharge follow only Finished with isolation Valid / Warning."""
    iso = f.get("EVSEIsolationStatus")
    return isinstance(iso, str) and iso not in ("Valid", "Warning")


def _key_din(base, res_name, f, req_body, ctx) -> str | None:
    if base in ("ContractAuthentication", "ChargeParameterDiscovery", "CableCheck"):
        if _ongoing(f):
            return f"{res_name} (Ongoing)"
        if base == "ChargeParameterDiscovery" and f.get("EVSENotification") == "StopCharging":
            return f"{res_name} (Finished, StopCharging)"
        if base == "CableCheck" and _cable_check_failed(f):
            return f"{res_name} (Finished, isolation not Valid)"
        return f"{res_name} (Finished)"
    if base == "PowerDelivery":
        q = qualifier(DIN, base, req_body)
        return f"{res_name} ({q})" if q else None
    return res_name


def _key_iso2(base, res_name, f, req_body, ctx) -> str | None:
    mode = _mode_of(ctx)
    if base == "PaymentServiceSelection":
        return f"{res_name} ({ctx.payment})" if ctx.payment in ("Contract", "ExternalPayment") else res_name
    if base == "Authorization":
        return f"{res_name} (Ongoing)" if _ongoing(f) else f"{res_name} (Finished)"
    if base == "ChargeParameterDiscovery":
        if _ongoing(f):
            return f"{res_name} (Ongoing)"
        if f.get("EVSENotification") == "StopCharging":
            return f"{res_name} (Finished, StopCharging)"
        if mode == "DC" and ctx.renegotiating:
            return f"{res_name} (Finished, DC, renegotiation)"
        return f"{res_name} (Finished, {mode})" if mode else f"{res_name} (Finished)"
    if base == "CableCheck":
        if _ongoing(f):
            return f"{res_name} (Ongoing)"
        return f"{res_name} (Finished, isolation not Valid)" if _cable_check_failed(f) else f"{res_name} (Finished)"
    if base == "PowerDelivery":
        q = qualifier(ISO2, base, req_body)
        if q == "Renegotiate":
            return f"{res_name} (Renegotiate)"
        if q in ("Start", "Stop"):
            return f"{res_name} ({q}, {mode})" if mode else f"{res_name} ({q})"
        return None
    if base in ("ChargingStatus", "CurrentDemand"):
        return f"{res_name} (ReceiptRequired)" if f.get("ReceiptRequired") is True else res_name
    if base == "MeteringReceipt":
        return f"{res_name} ({mode})" if mode else res_name
    return res_name


def _key_iso20(base, res_name, f, body, req_body, ctx) -> str | None:
    mode = _mode_of(ctx)
    if base == "AuthorizationSetup":
        b = body() if callable(body) else body
        return (f"{res_name} (CertificateInstallationService)"
                if b.get("CertificateInstallationService") is True else res_name)
    if base in ("Authorization", "ScheduleExchange", "DC_CableCheck"):
        if _ongoing(f):
            return f"{res_name} (Ongoing)"
        if base == "ScheduleExchange":
            return f"{res_name} (Finished, {mode})" if mode else None
        return f"{res_name} (Finished)"
    if base == "ServiceSelection":
        return f"{res_name} ({mode})" if mode else None
    if base in ("DC_PreCharge", "DC_WeldingDetection"):
        ep = req_body.get("EVProcessing")
        return f"{res_name} (EVProcessing={ep})" if ep in ("Ongoing", "Finished") else None
    if base == "PowerDelivery":
        if req_body.get("EVProcessing") == "Ongoing":
            return f"{res_name} (EVProcessing=Ongoing)"
        q = req_body.get("ChargeProgress")
        if q in ("Start", "Stop") and mode:
            return f"{res_name} ({q}, {mode})"
        return None
    if base == "SessionStop":
        cs = req_body.get("ChargingSession")
        return f"{res_name} (ServiceRenegotiation)" if cs == "ServiceRenegotiation" else res_name
    return res_name
