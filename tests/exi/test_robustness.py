"""Any input either decodes or raises ExiDecodeError — never another exception, never a
hang, never an allocation beyond the message's own size."""
from __future__ import annotations

import random
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccs_analyzer.dissectors.exi import (NAMESPACES, NS_DIN, NS_ISO2, NS_ISO20_CM,
                                         ExiDecodeError, decode, encode)
from ccs_analyzer.dissectors.exi.bitstream import BitWriter
from ccs_analyzer.dissectors.exi.grammar import load

from .exi_strategies import trees

FAST = settings(max_examples=300, deadline=1000, derandomize=True,
                suppress_health_check=list(HealthCheck))


def decodes_or_fails_cleanly(data: bytes, ns: str) -> None:
    try:
        tree = decode(data, ns)
    except ExiDecodeError as e:
        assert e.bit_offset >= 0 and isinstance(e.state, str)
        return
    assert isinstance(tree, dict) and len(tree) == 1


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_random_bytes(namespace):
    @FAST
    @given(st.binary(max_size=200))
    def check(body):
        decodes_or_fails_cleanly(b"\x80" + body, namespace)
    check()


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_mutated_valid_streams(namespace):
    @FAST
    @given(trees(namespace), st.randoms(use_true_random=False))
    def check(tree, rnd):
        data = bytearray(encode(tree, namespace))
        for _ in range(rnd.randint(1, 4)):
            how = rnd.random()
            if how < 0.5:
                i = rnd.randrange(8, 8 * len(data))
                data[i >> 3] ^= 0x80 >> (i & 7)
            elif how < 0.75:
                del data[rnd.randrange(1, len(data)):]
            else:
                data[rnd.randrange(1, len(data)):rnd.randrange(1, len(data) + 1)] = \
                    rnd.randbytes(rnd.randint(1, 8))
            if len(data) < 2:
                break
        decodes_or_fails_cleanly(bytes(data), namespace)
    check()


def test_mutated_real_messages(golden_messages):
    """Bit flips, truncations and splices of every distinct real message."""
    rnd = random.Random(15118)
    for hx, ns in golden_messages:
        data = bytes.fromhex(hx)
        for _ in range(4):
            m = bytearray(data)
            i = rnd.randrange(8, 8 * len(m))
            m[i >> 3] ^= 0x80 >> (i & 7)
            decodes_or_fails_cleanly(bytes(m), ns)
        decodes_or_fails_cleanly(data[:rnd.randrange(1, len(data))], ns)


def _session_id_stream(length_field: int) -> bytes:
    """DIN V2G_Message whose SessionID claims ``length_field`` octets, then 32 bytes."""
    g = load(NS_DIN)
    w = BitWriter()
    w.bits(0x80, 8)
    w.bits(g.document.by_name["V2G_Message"], g.document.width)
    w.bits(0, 1)   # SE(Header)
    w.bits(0, 1)   # SE(SessionID)
    w.bits(0, 1)   # CH
    w.uint(length_field)
    return w.getvalue() + bytes(32)


@pytest.mark.parametrize("claimed", [2 ** 32, 2 ** 63, 10 ** 30])
def test_huge_length_fields_fail_at_once(claimed):
    data = _session_id_stream(claimed)
    assert len(data) < 60
    tracemalloc.start()
    try:
        with pytest.raises(ExiDecodeError, match="exceeds"):
            decode(data, NS_DIN)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20          # the claimed length is refused, never allocated


def _growth(run, small: int, factor: int = 4) -> float:
    """How much longer ``run(factor * small)`` takes than ``run(small)`` (best of 3 each):
    about ``factor`` when linear, ``factor**2`` when quadratic — a ratio, so that a loaded
    machine slows both alike (speed itself is measured by benchmarks/exi_speed.py)."""
    def best(n: int) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            run(n)
            times.append(time.perf_counter() - t0)
        return min(times)
    return best(factor * small) / max(best(small), 1e-6)


def test_long_varint_is_bounded_by_the_stream():
    """An unsigned integer of a million continuation octets just runs out of stream, in
    time linear in its length."""
    g = load(NS_DIN)
    w = BitWriter()
    w.bits(0x80, 8)
    w.bits(g.document.by_name["V2G_Message"], g.document.width)
    w.bits(0, 3)
    head = w.getvalue()

    def run(n: int) -> None:
        with pytest.raises(ExiDecodeError, match="end of stream"):
            decode(head + b"\xff" * n, NS_DIN)

    run(1_000_000)
    assert _growth(run, 250_000) < 9       # linear: ≈ 4; quadratic: 16


def test_long_values_decode_in_linear_time():
    """Megabyte-sized values — a non-ASCII string, a binary, a huge integer — inside a
    long stream decode without quadratic cost and round-trip."""
    def trees(n: int) -> tuple[dict, dict]:
        text = "Ünïcödé ✓ " * (n // 10)
        tree = {"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"SessionSetupRes": {
            "ResponseCode": "OK", "EVSEID": text, "EVSETimeStamp": 2 ** 62}}}}
        cert = {"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"CertificateUpdateRes": {
            "Id": "a", "ResponseCode": "OK",
            "ContractSignatureCertChain": {"Certificate": "ab" * n},
            "ContractSignatureEncryptedPrivateKey": "cd" * 40, "DHParams": "ef" * 65,
            "ContractID": "x", "RetryCounter": 0}}}}
        return tree, cert

    def run(n: int) -> None:
        tree, cert = trees(n)
        assert decode(encode(tree, NS_ISO2), NS_ISO2) == tree
        assert decode(encode(cert, NS_DIN), NS_DIN) == cert

    run(600_000)                            # megabyte-sized values round-trip
    assert _growth(run, 100_000) < 9        # linear: ≈ 4; quadratic: 16


def test_deeply_nested_undeclared_elements():
    """SE(*) inside SE(*) inside … (built-in grammars): no recursion limit, no crash."""
    g = load(NS_ISO20_CM)
    w = BitWriter()
    w.bits(0x80, 8)
    doc = g.document
    w.bits(doc.se_any_code, doc.width)                  # DocContent: SE(*)
    depth = 20000
    uri_bits = (len(g.uris)).bit_length()
    names = g.local_names[0]
    name_bits = (len(names) - 1).bit_length()
    start = g.builtin_start
    for i in range(depth):
        if i:
            w.bits(start.sl_codes.index(5), start.sl_width)  # built-in start tag: SE(*)
        w.bits(1, uri_bits)                              # URI hit: "" (id 0 + 1)
        w.uint(0)                                        # local-name hit …
        w.bits(0, name_bits)                             # … the first name of ""
    data = w.getvalue()
    with pytest.raises(ExiDecodeError) as e:            # the stream ends inside
        decode(data, NS_ISO20_CM)
    assert "end of stream" in str(e.value)
    assert e.value.path.startswith("…/Algorithm/") and len(str(e.value)) < 300
