"""The ChargeX PFMEA failure modes of EV <-> EVSE communication that rules cite, with the
severities the report gives them.

Source: "Communications Reliability for Vehicle Grid Integration", ChargeX Consortium,
February 2026 (process FMEA; use case 2: ISO 15118-2 between EV and EVSE). Severities 1-10:
C = customer, U = utility, Avg = their mean. IDs are cited as "UC2 <id>"; one row covers a
range of IDs that share the failure mode and differ in cause. Only the rows rules cite are
here; the scoring uses ``Avg``.
"""
from __future__ import annotations

from typing import NamedTuple


class FailureMode(NamedTuple):
    """A PFMEA row: the ID range, the process step, the failure mode, its effect and the
    severities (customer, utility, average)."""

    ids: tuple[int, int]
    step: str
    mode: str
    effect: str
    customer: float
    utility: float
    avg: float


ROWS: tuple[FailureMode, ...] = (
    FailureMode((51, 56), "4 Initial EV-to-EVSE communication handshake",
                "EV/EVSE fail to establish a data link communication session",
                "Failed charge session", 8, 1, 4.5),
    FailureMode((100, 103), "7 V2G session handshake",
                "EV/EVSE fail to establish a successful V2G communication session",
                "Failed charge session", 8, 1, 4.5),
    FailureMode((104, 106), "7 V2G session handshake",
                "V2G communication session timeout (message/sequence)",
                "Failed charge session", 8, 1, 4.5),
    FailureMode((107, 111), "7 V2G session handshake", "Incompatible charger",
                "Failed charge session", 8, 1, 4.5),
    FailureMode((112, 117), "8 Payment authentication/charge authorization",
                "Failure to authenticate charge session", "Failed charge session", 2, 1, 1.5),
    FailureMode((156, 158), "11 EV and EVSE charge negotiation",
                "EV and EVSE cannot reliably communicate with each other",
                "Failed charge session", 8, 2, 5),
    FailureMode((159, 162), "11 EV and EVSE charge negotiation",
                "Inaccurate tariffs communicated by SECC",
                "Wrong tariff applied, customer disputes", 5, 5, 5),
    FailureMode((167, 169), "11 EV and EVSE charge negotiation",
                "V2G communication session timeout (message/sequence)",
                "Failed charge session", 8, 2, 5),
    FailureMode((170, 170), "12 EV calculates optimized charging schedule",
                "Nonoptimal charge power schedule calculated by EV",
                "User pays higher-than-optimal rate", 5, 5, 5),
    FailureMode((172, 175), "13 Session pause", "Unsuccessful session pause",
                "User pays higher-than-optimal rate", 5, 2, 3.5),
    FailureMode((176, 180), "13 Session pause", "Unsuccessful session pause",
                "Failed charge session", 8, 2, 5),
    FailureMode((181, 182), "13 Session pause",
                "EVSE assumes EV disconnected instead of sleeping",
                "Charging session terminates instead of pausing", 8, 2, 5),
    FailureMode((196, 199), "13 Session pause",
                "EVCC does not re-initialize the session using the previous SessionID, "
                "payment options, or SAScheduleTuple",
                "SECC error state, no new session without re-plug", 8, 2, 5),
    FailureMode((237, 239), "16 EV-EVSE communications during energy transfer",
                "EV and EVSE cannot reliably communicate with each other",
                "Failed charge session", 8, 2, 5),
    FailureMode((240, 243), "16 EV-EVSE communications during energy transfer",
                "Inaccurate maximum current communicated by EVSE (higher than actual)",
                "Grid overload / safety issue", 10, 10, 10),
    FailureMode((244, 247), "16 EV-EVSE communications during energy transfer",
                "Inaccurate maximum current communicated by EVSE (lower than actual)",
                "User needs not met", 7, 4, 5.5),
    FailureMode((248, 251), "16 EV-EVSE communications during energy transfer",
                "Inaccurate maximum current communicated by EVSE (lower than actual)",
                "Inefficient charging (time)", 5, 4, 4.5),
    FailureMode((252, 255), "16 EV-EVSE communications during energy transfer",
                "Invalid ChargingStatusRes message",
                "EVSE does not indicate signed receipt required", 4, 6, 5),
    FailureMode((301, 303), "18 Renegotiate V2G session",
                "EV and EVSE cannot reliably communicate with each other",
                "Failed charge session", 8, 2, 5),
    FailureMode((304, 307), "18 Renegotiate V2G session", "Failed to initiate renegotiation",
                "Charging session ends, user needs not met", 8, 2, 5),
)


def lookup(ref: str) -> FailureMode | None:
    """The row of a citation such as ``"UC2 156"`` (None when not in the table)."""
    try:
        uc, num = ref.split()
        n = int(num)
    except ValueError:
        return None
    if uc != "UC2":
        return None
    for row in ROWS:
        if row.ids[0] <= n <= row.ids[1]:
            return row
    return None


def severity(refs) -> float | None:
    """The highest average severity (1-10) among cited failure modes, or None."""
    sev = [r.avg for r in (lookup(x) for x in refs) if r is not None]
    return max(sev) if sev else None
