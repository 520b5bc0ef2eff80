"""A finding's ``measured`` / ``limit`` hold quantities, not words: a number (with ``unit``), a
count, a bool, a list of numbers (a range or a set of allowed values), or None — words a
person reads go to ``evidence`` ("expected" / "actual") and the synopsis. The one exception
is a rule whose judged value IS a token of a standard's enumeration (a ResponseCode, an
EVSEStatusCode …) or an identifier it compares: those rules and their tokens are listed below,
so a message name or a free-text phrase in measured/limit fails here.

Checked on every rule's fixture (analyzer/rule_examples.py ``EXAMPLE_SCENARIOS``).
"""
from __future__ import annotations

import re

import pytest

from ccs_analyzer.analyzer.rule_examples import EXAMPLE_SCENARIOS, findings_of

_RESPONSE_CODE = r"OK(_\w+|\*)?|FAILED(_\w+)?|NO_ERROR"
_EVSE_STATUS = r"EVSE_\w+"
_ISOLATION = r"Invalid|Valid|Warning|Fault|No_IMD"

#: rule code → the tokens its measured / limit may hold (a regex a whole token must match);
#: alternatives may be joined by " / " ("Valid / Warning"). Enumerations of the standards:
ENUMERATIONS = {
    "CBL001": _ISOLATION, "CBL004": _ISOLATION, "CBL005": _ISOLATION,   # EVSEIsolationStatus
    "CPL005": r"[A-F][12]?",                                            # IEC 61851-1 CP state
    "HSK004": r"\d+\.\d+",                                              # supportedAppProtocol version
    "MSG014": r"[A-Za-z]+",                                             # unitSymbolType
    "MSG018": _RESPONSE_CODE, "RSP001": _RESPONSE_CODE, "RSP002": _RESPONSE_CODE,
    "RSP008": _RESPONSE_CODE, "SEQ003": _RESPONSE_CODE, "SEQ004": _RESPONSE_CODE,
    "SES003": _RESPONSE_CODE, "SES006": _RESPONSE_CODE, "SIG004": _RESPONSE_CODE,
    "SIG005": _RESPONSE_CODE,
    "PRE006": _EVSE_STATUS, "RSP004": _EVSE_STATUS, "RSP006": _EVSE_STATUS,
    "RSP007": _EVSE_STATUS,
    "SDP004": r"TLS|NoTLS",                                             # SDP Security
    "SES008": r"Contract|ExternalPayment",                              # paymentOptionType
    "TLS002": r"TLS 1\.[0-3]",                                          # TLS version
    "TLS003": r"TLS_\w+|secp\d+r1|x25519|x448",                         # cipher suite / group
    "TRN005": r"0x[0-9A-Fa-f]{4}",                                      # V2GTP payload type
}
#: … and identifiers the rule compares (SessionID, RunID, EMAID, operator ID, IPv6 address).
#: Not quantities either; kept as they are for now.
IDENTIFIERS = {
    "SES001": r"[0-9a-f]{1,16}", "SES002": r"[0-9a-f]{16}|non-zero",
    "SES004": r"[0-9a-f]{16}", "SES005": r"[0-9a-f]{16}", "SES007": r"[0-9a-f]{16}",
    "SES009": r"[0-9a-f]{16}", "SES010": r"[0-9a-f]{16}", "SLC003": r"[0-9a-f]{16}",
    "SIG006": r"[A-Z0-9]{14,18}", "TLS014": r"[A-Z]{2}-[A-Z0-9]{3}",
    "SDP006": r"[0-9a-f:]+",
}
TOKENS = {**ENUMERATIONS, **IDENTIFIERS}


def quantity_like(code: str, value) -> bool:
    """Whether ``value`` may stand in measured / limit of a finding of rule ``code``."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, list):
        return all(quantity_like(code, v) for v in value)
    if isinstance(value, str) and code in TOKENS:
        return all(re.fullmatch(TOKENS[code], part) for part in value.split(" / "))
    return False


def test_words_and_names_are_refused():
    assert not quantity_like("SEQ002", "CableCheckReq, SessionStopReq")
    assert not quantity_like("CPL006", "C2 → A")
    assert not quantity_like("SLC004", {"Time_Out": 10})
    assert not quantity_like("RSP004", "EVSE_Ready, Valid / Warning")
    assert not quantity_like("MSG008", "MeteringReceiptReq")
    assert quantity_like("CBL001", "Valid / Warning")
    assert quantity_like("SLC010", [0.02, 0.05])


@pytest.mark.parametrize("code", sorted(EXAMPLE_SCENARIOS))
def test_measured_and_limit_are_quantities(code):
    for f in findings_of(code):
        for field in ("measured", "limit"):
            value = getattr(f, field)
            assert quantity_like(code, value), (
                f"{code} {field}={value!r}: put words in evidence ('expected' / 'actual'), or list "
                "the enumeration in tests/rules/test_finding_quantities.py")
