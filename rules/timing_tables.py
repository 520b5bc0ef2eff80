"""The V2G timers of DIN SPEC 70121, ISO 15118-2 and ISO 15118-20, as data.

Each :class:`Timer` carries its value in seconds, where it comes from (standard, table,
requirement IDs), the PROTOCOL_FACTS source keys and whether the sources agree (``sure``,
PROTOCOL_FACTS ✅) or not (⚠: single source, or sources disagree — ``alt`` then holds the
other claim). Rules built on a timer that is not ``sure`` report a warning unless the
measured value also exceeds ``alt``.

Values (PROTOCOL_FACTS §1.5, §3, §4A "DIN timing", §4B "ISO-2 timing" Tables 108-111,
§4C "-20 timing" Tables 215-217):

* SDP (``SDP_RESPONSE_TIMEOUT``: the EV repeats its SDP request after; ``SDP_MAX_REQUESTS``);
* per message (``MSG_TIMEOUT`` = V2G_EVCC_Msg_Timeout, the EV waits this long for the
  response; ``MSG_PERFORMANCE`` = V2G_SECC_Msg_Performance_Time, the SECC answers within);
* between messages (``SEQ_PERFORMANCE`` = V2G_EVCC_Sequence_Performance_Time, the EV sends
  its next request within; ``SEQ_TIMEOUT`` = V2G_SECC_Sequence_Timeout, the SECC gives up);
* whole phases (``COMM_SETUP_*``, ``CABLECHECK_*``, ``PRECHARGE_*``, ``ONGOING_*``,
  ``WELDING_LOOP``).

Keys: protocol label (``DIN 70121``, ``ISO 15118-2``, ``ISO 15118-20``), then the message's
base name (``CurrentDemand``, ``DC_ChargeLoop``) with ``*`` for every other message.
"""
from __future__ import annotations

from dataclasses import dataclass

DIN, ISO2, ISO20 = "DIN 70121", "ISO 15118-2", "ISO 15118-20"
PROTOCOLS = (DIN, ISO2, ISO20)


@dataclass(frozen=True)
class Timer:
    """One timing parameter: ``name`` in the standard's words, ``seconds`` (None: the
    standard's value is unknown, the check is off), ``requirement`` (standard, table,
    requirement IDs), ``sources`` (PROTOCOL_FACTS keys), ``sure`` (✅), ``alt`` (the other
    sources' value when they disagree), ``note`` (which edition the value follows)."""

    name: str
    seconds: float | None
    requirement: str
    sources: str
    sure: bool = True
    alt: float | None = None
    note: str = ""

    def certain_above(self, measured: float, limit: float | None = None) -> bool:
        """Whether ``measured`` exceeds the limit beyond doubt: the timer is ✅, or the
        value is also above the other sources' claim."""
        if self.sure:
            return True
        return self.alt is not None and measured > max(self.alt, limit or 0.0)


def _t(name, s, req, src, sure=True, alt=None, note=""):
    return Timer(name, s, req, src, sure, alt, note)


# --------------------------------------------------------------------------- per message
_MT, _MP = "V2G_EVCC_Msg_Timeout", "V2G_SECC_Msg_Performance_Time"
_DIN_T = "DIN SPEC 70121:2014 §9.6 Tables 75/77"
_ISO2_T = "ISO 15118-2 §8.7.2 Table 109"
_ISO20_T = "ISO 15118-20 §8.5 Tables 215-217 [V2G20-436..440]"

#: Requests whose response the SECC must give within the charge-loop budget.
CHARGE_LOOP = frozenset({"CurrentDemand", "ChargingStatus", "AC_ChargeLoop", "DC_ChargeLoop",
                         "WPT_ChargeLoop"})
#: Messages that belong to the charge loop (a receipt exchange does not end the loop).
CHARGE_LOOP_GROUP = CHARGE_LOOP | {"MeteringReceipt", "MeteringConfirmation"}

_ISO20_COMMON = ("SessionSetup", "AuthorizationSetup", "Authorization", "ServiceDiscovery",
                 "ServiceSelection", "AC_ChargeParameterDiscovery", "DC_ChargeParameterDiscovery",
                 "ScheduleExchange", "PowerDelivery", "MeteringConfirmation", "SessionStop",
                 "VehicleCheckIn", "VehicleCheckOut", "DC_CableCheck", "DC_PreCharge",
                 "DC_WeldingDetection", "ACDP_VehiclePositioning", "ACDP_Connect",
                 "ACDP_Disconnect", "ACDP_SystemStatus")

_SAP_T = _t(_MT, 2.0, "ISO 15118-2 Table 109 / DIN 70121 / ISO 15118-20 (SupportedAppProtocol)",
            "J-TO, R-TR, PY-TAB")
_SAP_P = _t(_MP, 1.5, "ISO 15118-2 Table 109 (SupportedAppProtocol)", "J-TO, R-TR, PY-TAB")

MSG_TIMEOUT: dict[str, dict[str, Timer]] = {
    DIN: {
        "*": _t(_MT, 2.0, _DIN_T, "J-TO-DIN, HOTWIRE, E-DIN-EV, PYPLC"),
        "supportedAppProtocol": _SAP_T,
        "CurrentDemand": _t(_MT, 0.25, _DIN_T, "J-TO-DIN, ISS-INL111", sure=False, alt=0.5,
                            note="0.25 s per DIN SPEC 70121:2014 (Josev); DIN TS 70121:2024-11 "
                                 "§9.6.3.1 (HOTWIRE) and EVerest's DIN EV say 0.5 s"),
    },
    ISO2: {
        "*": _t(_MT, 2.0, _ISO2_T, "R-TR, J-TO-2, PY-TAB, TS-2"),
        "supportedAppProtocol": _SAP_T,
        **{n: _t(_MT, 5.0, _ISO2_T, "R-TR, J-TO-2, PY-TAB, TS-2")
           for n in ("ServiceDetail", "PowerDelivery", "CertificateInstallation",
                     "CertificateUpdate")},
        "PaymentDetails": _t(_MT, 5.0, _ISO2_T, "R-TR, J-TO-2, PY-TAB",
                             note="TS-2 (a conformance parameter file) says 2 s"),
        "CurrentDemand": _t(_MT, 0.25, _ISO2_T, "R-TR, J-TO-2, PY-TAB, TS-2"),
    },
    ISO20: {
        "*": _t(_MT, 2.0, _ISO20_T, "J-TO-20", sure=False,
                note="messages not listed in Table 215 (WPT_*): 2 s assumed"),
        "supportedAppProtocol": _SAP_T,
        **{n: _t(_MT, 2.0, _ISO20_T, "J-TO-20, D20-RPT") for n in _ISO20_COMMON},
        "ServiceDetail": _t(_MT, 5.0, _ISO20_T, "J-TO-20", sure=False, alt=2.0,
                            note="5 s per Josev; Table 215's 2 s baseline otherwise"),
        "CertificateInstallation": _t(_MT, 5.0, _ISO20_T, "J-TO-20", sure=False, alt=2.0,
                                      note="5 s per Josev; Table 215's 2 s baseline otherwise"),
        "AC_ChargeLoop": _t(_MT, 0.5, _ISO20_T + " Table 216", "J-TO-20, D20-RPT"),
        "DC_ChargeLoop": _t(_MT, 0.5, _ISO20_T + " Table 217", "J-TO-20, D20-RPT"),
        "WPT_ChargeLoop": _t(_MT, 0.5, _ISO20_T, "J-TO-20", sure=False,
                             note="WPT charge loop assumed as AC/DC (0.5 s)"),
    },
}

MSG_PERFORMANCE: dict[str, dict[str, Timer]] = {
    DIN: {
        "*": _t(_MP, 1.5, _DIN_T, "PYPLC, ISS-FV250", sure=False,
                note="DIN performance times are not in the public sources; pyPLC and a "
                     "FreeV2G user assume 1.5 s"),
        "supportedAppProtocol": _SAP_P,
        "CurrentDemand": _t(_MP, None, _DIN_T, "—", sure=False,
                            note="unknown for DIN (PROTOCOL_FACTS §7.1): not checked"),
    },
    ISO2: {
        "*": _t(_MP, 1.5, _ISO2_T, "R-TR, J-TO-2, PY-TAB, TS-2"),
        "supportedAppProtocol": _SAP_P,
        **{n: _t(_MP, 4.5, _ISO2_T, "R-TR, J-TO-2, PY-TAB, TS-2")
           for n in ("ServiceDetail", "PaymentDetails", "PowerDelivery",
                     "CertificateInstallation", "CertificateUpdate")},
        "CurrentDemand": _t(_MP, 0.025, _ISO2_T, "R-TR, J-TO-2, PY-TAB, TS-2"),
    },
    ISO20: {
        "*": _t(_MP, None, _ISO20_T, "—", sure=False,
                note="-20 SECC performance times per message are not in the public "
                     "sources (PROTOCOL_FACTS §7.2): not checked"),
        "supportedAppProtocol": _SAP_P,
    },
}

# --------------------------------------------------------------------------- sequence
_ST, _SP = "V2G_SECC_Sequence_Timeout", "V2G_EVCC_Sequence_Performance_Time"

SEQ_TIMEOUT: dict[str, dict[str, Timer]] = {
    DIN: {"*": _t(_ST, 60.0, _DIN_T, "J-TO-DIN, HOTWIRE"),
          "CurrentDemand": _t(_ST, 60.0, _DIN_T, "J-TO-DIN", sure=False, alt=5.0,
                              note="60 s per DIN SPEC 70121:2014 (Josev); HOTWIRE reads 5 s "
                                   "within CurrentDemand from DIN TS 70121:2024-11 §9.6.3.2")},
    ISO2: {"*": _t(_ST, 60.0, "ISO 15118-2 [V2G2-443] Table 109",
                   "R-TR, J-TO, E-V2G, PY-TAB, RC-TIMERS")},
    ISO20: {"*": _t(_ST, 60.0, "ISO 15118-20 Table 215", "J-TO-20, E-D20, D20-RPT"),
            **{n: _t(_ST, 0.5, "ISO 15118-20 [V2G20-1500] Tables 216/217", "J-TO-20, D20-RPT")
               for n in ("AC_ChargeLoop", "DC_ChargeLoop", "WPT_ChargeLoop")}},
}

SEQ_PERFORMANCE: dict[str, dict[str, Timer]] = {
    DIN: {"*": _t(_SP, 40.0, _DIN_T, "R-TR (ISO-2 value)", sure=False,
                  note="the DIN value is not in the public sources; ISO 15118-2's 40 s assumed")},
    ISO2: {"*": _t(_SP, 40.0, "ISO 15118-2 [V2G2-485] Table 109", "R-TR, PY-TAB, RC-TIMERS")},
    ISO20: {"*": _t(_SP, 40.0, "ISO 15118-20 Table 215", "RC-TIMERS", sure=False,
                    note="assumed as ISO 15118-2 (40 s)"),
            **{n: _t(_SP, 0.25, "ISO 15118-20 [V2G20-1499] [V2G20-1501] Tables 216/217",
                     "D20-RPT", sure=False)
               for n in ("AC_ChargeLoop", "DC_ChargeLoop", "WPT_ChargeLoop")}},
}

# --------------------------------------------------------------------------- SDP
#: How long the EVCC waits for the SDP response before it repeats the request (PROTOCOL_FACTS
#: §1.5); the same for DIN 70121 and ISO 15118-20, which use ISO 15118-2's SDP.
SDP_RESPONSE_TIMEOUT = _t("SDP response timeout (EVCC)", 0.25, "ISO 15118-2 [V2G2-159]",
                          "R-TR, J-TO (SDP_REQ), RC-TIMERS")
#: SDP_MAX_REQUEST_COUNTER: the most SDP requests an EVCC sends in a row without a response
#: (ISO 15118-2 [V2G2-161]; PROTOCOL_FACTS §1.5: R-TR, J-EVCC, RC-TIMERS ✅). A count.
SDP_MAX_REQUESTS = 50

# --------------------------------------------------------------------------- phases
COMM_SETUP_TIMEOUT = {
    DIN: _t("V2G_EVCC_CommunicationSetup_Timeout", 20.0, _DIN_T, "J-TO-DIN, HOTWIRE"),
    ISO2: _t("V2G_EVCC_CommunicationSetup_Timeout", 20.0,
             "ISO 15118-2 [V2G2-446..448] Table 111", "R-TR, J-TO, ISS-ECOG105, PY-TAB"),
    ISO20: _t("V2G_EVCC_CommunicationSetup_Timeout", 20.0, "ISO 15118-20 Table 215",
              "J-TO-20, RC-TIMERS"),
}
COMM_SETUP_PERFORMANCE = {
    DIN: _t("V2G_SECC_CommunicationSetup_Performance_Time", 18.0, _DIN_T, "E-V2G", sure=False,
            note="assumed as ISO 15118-2 (18 s)"),
    ISO2: _t("V2G_SECC_CommunicationSetup_Performance_Time", 18.0,
             "ISO 15118-2 [V2G2-714..716] [V2G2-723] Table 111", "E-V2G, PY-TAB, TS-2"),
    ISO20: _t("V2G_SECC_CommunicationSetup_Performance_Time", 18.0,
              "ISO 15118-20 [V2G20-723] Table 215", "V20-TXT", sure=False,
              note="assumed as ISO 15118-2 (18 s)"),
}

CABLECHECK_TIMEOUT = {
    DIN: _t("V2G_EVCC_CableCheck_Timeout", 40.0, _DIN_T, "J-TO-DIN", sure=False, alt=38.0,
            note="40 s per DIN SPEC 70121:2014 (Josev); HOTWIRE (DIN TS 70121:2024-11) 38 s"),
    ISO2: _t("V2G_EVCC_CableCheck_Timeout", 40.0, "ISO 15118-2 [V2G2-700..703] Table 111",
             "R-TR, J-TO-2, PY-TAB, TS-2"),
    ISO20: _t("V2G_EVCC_CableCheck_Timeout", 40.0, "ISO 15118-20 Table 215", "J-TO-20",
              sure=False),
}
CABLECHECK_PERFORMANCE = {
    DIN: _t("V2G_SECC_CableCheck_Performance_Time", 38.0, _DIN_T, "PY-TAB (ISO-2 value)",
            sure=False, note="assumed as ISO 15118-2 (38 s)"),
    ISO2: _t("V2G_SECC_CableCheck_Performance_Time", 38.0, "ISO 15118-2 Table 111",
             "PY-TAB, RC-TIMERS", sure=False),
    ISO20: _t("V2G_SECC_CableCheck_Performance_Time", 38.0, "ISO 15118-20 Table 215",
              "PY-TAB (ISO-2 value)", sure=False, note="assumed as ISO 15118-2 (38 s)"),
}

PRECHARGE_TIMEOUT = {
    DIN: _t("V2G_EVCC_PreCharge_Timeout", 7.0, _DIN_T, "J-TO-DIN, HOTWIRE", sure=False,
            alt=10.0, note="7 s per DIN SPEC 70121:2014 (Josev, HOTWIRE); EVerest's DIN EV "
                           "reads 10 s from Table 77"),
    ISO2: _t("V2G_EVCC_PreCharge_Timeout", 7.0, "ISO 15118-2 [V2G2-704..707] Table 111",
             "R-TR, J-TO-2, PY-TAB"),
    ISO20: _t("V2G_EVCC_PreCharge_Timeout", 10.0, "ISO 15118-20 Table 215", "J-TO-20, ISS-ECOG281",
              sure=False, alt=60.0, note="10 s per Josev; an issue reporter reads 60 s"),
}
PRECHARGE_PERFORMANCE = {
    DIN: _t("V2G_SECC_PreCharge_Performance_Time", None, _DIN_T, "—", sure=False,
            note="unknown for DIN: not checked"),
    ISO2: _t("V2G_SECC_PreCharge_Performance_Time", 5.0, "ISO 15118-2 Table 111",
             "PY-TAB, RC-TIMERS", sure=False),
    ISO20: _t("V2G_SECC_PreCharge_Performance_Time", None, "ISO 15118-20 Table 215", "—",
              sure=False, note="unknown for -20: not checked"),
}

ONGOING_TIMEOUT = {
    DIN: _t("V2G_EVCC_Ongoing_Timeout", 60.0, _DIN_T, "E-DIN-EV, PYPLC"),
    ISO2: _t("V2G_EVCC_Ongoing_Timeout", 60.0, "ISO 15118-2 [V2G2-710] [V2G2-711] Table 109",
             "R-TR, J-TO, PY-TAB, TS-2"),
    ISO20: _t("V2G_EVCC_Ongoing_Timeout", 60.0, "ISO 15118-20 Table 215",
              "J-TO-20, E-D20, D20-RPT", note="EVerest allows 180 s for EIM (not normative)"),
}
ONGOING_PERFORMANCE = {
    DIN: _t("V2G_SECC_Ongoing_Performance_Time", 55.0, _DIN_T, "PY-TAB (ISO-2 value)",
            sure=False, note="assumed as ISO 15118-2 (55 s)"),
    ISO2: _t("V2G_SECC_Ongoing_Performance_Time", 55.0,
             "ISO 15118-2 [V2G2-712] [V2G2-713] Table 109", "PY-TAB, RC-TIMERS, TS-2"),
    ISO20: _t("V2G_SECC_Ongoing_Performance_Time", 55.0, "ISO 15118-20 Table 215",
              "J-TO-20, E-D20, D20-RPT"),
}

WELDING_LOOP = {
    p: _t("WeldingDetection loop (ongoing bound)", 60.0, "PROTOCOL_FACTS §4E", "E-DIN-EV",
          sure=False, note="an implementation bound (EVerest's DIN EV), no normative value")
    for p in PROTOCOLS
}


def lookup(table: dict[str, dict[str, Timer]], protocol: str, name: str) -> Timer | None:
    """The timer of message ``name`` (base name) for ``protocol``, or its ``*`` default."""
    per = table.get(protocol)
    if per is None:
        return None
    return per.get(name) or per.get("*")


def seconds_table(table: dict[str, dict[str, Timer]]) -> dict[str, dict[str, float | None]]:
    """The table as plain seconds (a rule's default ``params``): ``*`` and the messages whose
    value differs from it."""
    out = {}
    for p, per in table.items():
        star = per["*"].seconds
        out[p] = {"*": star, **{n: t.seconds for n, t in per.items()
                               if n != "*" and t.seconds != star}}
    return out


def phase_seconds(table: dict[str, Timer]) -> dict[str, float | None]:
    """A per-protocol phase table as plain seconds."""
    return {p: t.seconds for p, t in table.items()}
