"""Property: for random valid trees of every schema (any global element as root, rare
message types included), decode(encode(tree)) == tree."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from ccs_analyzer.dissectors.exi import NAMESPACES, decode, encode

from .exi_strategies import trees

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_encode_decode_identity(namespace):
    @SETTINGS
    @given(trees(namespace))
    def check(tree):
        assert decode(encode(tree, namespace), namespace) == tree
    check()


MESSAGES = {
    # the rare and the large: certificate chains, schedules, PnC, WPT, ACDP
    "urn:iso:15118:2:2013:MsgDef": ("V2G_Message",),
    "urn:iso:std:iso:15118:-20:CommonMessages": (
        "CertificateInstallationReq", "CertificateInstallationRes", "ScheduleExchangeRes",
        "PowerDeliveryReq", "MeteringConfirmationReq", "VehicleCheckInRes"),
    "urn:iso:std:iso:15118:-20:WPT": ("WPT_FinePositioningSetupReq", "WPT_AlignmentCheckRes"),
    "urn:iso:std:iso:15118:-20:ACDP": ("ACDP_SystemStatusReq", "ACDP_VehiclePositioningRes"),
}


@pytest.mark.parametrize("namespace, roots", MESSAGES.items(), ids=list(MESSAGES))
def test_rare_messages(namespace, roots):
    @SETTINGS
    @given(trees(namespace, roots=roots))
    def check(tree):
        assert decode(encode(tree, namespace), namespace) == tree
    check()


def test_longest_list_spans_stream_windows():
    """EVPowerProfileEntry allows 2048 entries: the full list round-trips (a stream longer
    than the decoder's int window), the 2049th is refused."""
    from ccs_analyzer.dissectors.exi import NS_ISO20_CM, ExiEncodeError

    def message(n):
        return {"PowerDeliveryReq": {
            "Header": {"SessionID": "0102030405060708", "TimeStamp": 1700000000},
            "EVProcessing": "Ongoing", "ChargeProgress": "Start",
            "EVPowerProfile": {"TimeAnchor": 0, "Dynamic_EVPPTControlMode": {},
                               "EVPowerProfileEntries": {"EVPowerProfileEntry": [
                                   {"Duration": i * 60, "Power": {"Exponent": 3, "Value": i % 300},
                                    "Power_L2": {"Exponent": 0, "Value": -i}}
                                   for i in range(n)]}}}}
    tree = message(2048)
    data = encode(tree, NS_ISO20_CM)
    assert len(data) > 8192
    assert decode(data, NS_ISO20_CM) == tree
    with pytest.raises(ExiEncodeError, match="not allowed"):
        encode(message(2049), NS_ISO20_CM)
