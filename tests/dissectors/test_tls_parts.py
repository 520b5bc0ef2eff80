"""The parts of the TLS dissector on their own: record framing (tls_records.py), handshake
description (tls_handshake.py) and per-direction key-schedule state (tls_keys.py).

TlsConnection composes them and is tested end to end in test_tls_sessions.py and
test_tls_corpus.py; these tests pin what each part promises at its seam.
"""
from __future__ import annotations

from ccs_analyzer.dissectors.tls_handshake import (
    HRR_RANDOM,
    HandshakeState,
    describe_handshake,
)
from ccs_analyzer.dissectors.tls_keys import MAX_SEQ_WINDOW, DirectionKeys, start_tls13
from ccs_analyzer.dissectors.tls_records import (
    MIN_PROTECTED_RECORD,
    Record,
    RecordStream,
    TlsEvent,
    alert_events,
)


def _record(ctype: int, body: bytes) -> bytes:
    return bytes([ctype, 3, 3]) + len(body).to_bytes(2, "big") + body


def test_record_split_across_segments_is_attributed_to_both_frames():
    stream = RecordStream(1)
    wire = _record(23, b"x" * 40) + _record(21, b"\x02\x28")
    assert list(stream.cut(wire[:10], 5, lambda: None)) == []
    out = list(stream.cut(wire[10:], 6, lambda: None))
    assert [type(o) for o in out] == [Record, Record]
    first, second = out
    assert (first.index, first.offset, first.first_frame, first.frame) == (0, 0, 5, 6)
    assert first.ctype == 23 and first.fragment == b"x" * 40
    assert (second.index, second.offset, second.first_frame) == (1, 45, 6)
    assert not stream.buf and stream.base == len(wire)


def test_garbage_is_reported_then_framing_resynchronises():
    stream = RecordStream(0)
    wire = b"\x00garbage!" + _record(22, b"\x01\x00\x00\x00") + _record(23, b"y" * 20)
    out = list(stream.cut(wire, 3, lambda: 0x0303))
    errors = [o for o in out if isinstance(o, TlsEvent)]
    records = [o for o in out if isinstance(o, Record)]
    assert [e.name for e in errors] == ["Not a TLS record", "Not a TLS record"]
    assert errors[1].fields["skipped_bytes"] == 9        # the garbage, counted once resynced
    assert [r.ctype for r in records] == [22, 23] and records[0].offset == 9


def test_gap_inside_a_record_of_known_length_keeps_framing_in_step():
    stream = RecordStream(1)
    wire = _record(23, b"z" * 100)
    list(stream.cut(wire[:30], 7, lambda: None))
    event, marker = stream.lose(50, 8)
    assert event.name == "Bytes missing" and event.first_frame == 7
    assert event.fields["records_lost_at_least"] == 1
    assert (marker.seq_skip, marker.window) == (1, 0) and not stream.resyncing
    assert stream.skip == len(wire) - 80                 # the rest of the lost record
    out = list(stream.cut(wire[80:] + _record(23, b"n" * 30), 9, lambda: None))
    assert [(r.offset, len(r.fragment)) for r in out] == [(len(wire), 30)]


def test_gap_at_an_unknown_boundary_resynchronises_and_bounds_the_lost_records():
    stream = RecordStream(0)
    event, marker = stream.lose(3 * MIN_PROTECTED_RECORD, 4)
    assert stream.resyncing and marker.seq_skip == 0 and marker.window == 4
    assert "record boundary lost" in event.error


def test_partial_record_at_the_end_of_the_stream():
    stream = RecordStream(1)
    list(stream.cut(_record(22, b"a" * 10)[:8], 2, lambda: None))
    (event,) = stream.close(3)
    assert event.name == "Partial record" and event.first_frame == 2
    assert event.error == "stream ends inside a handshake record: 8 of 15 bytes"
    stream.release()
    assert stream.close(4) == []


def test_alert_record_gives_one_event_per_alert():
    rec = Record(0, 0, 1, 1, _record(21, b"")[:5], b"")
    events = alert_events(rec, 1, b"\x02\x28\x01\x00", {"record": 0})
    assert [e.name for e in events] == ["Alert fatal handshake_failure", "Alert warning close_notify"]
    (bad,) = alert_events(rec, 1, b"\x02", {})
    assert bad.kind == "error" and bad.name == "Malformed alert"


def test_truncated_client_hello_still_yields_the_client_random():
    hs = HandshakeState()
    random = bytes(range(32))
    body = b"\x03\x03" + random + b"\x20"               # session_id length 32, no bytes
    fields: dict = {}
    name, err = describe_handshake(hs, 0, 1, body, fields)
    assert name == "ClientHello" and err.startswith("malformed ClientHello: ")
    assert hs.client_random == random and hs.cr == random


def test_hello_retry_request_is_named_and_does_not_fix_the_server_random():
    hs = HandshakeState()
    ext = (43).to_bytes(2, "big") + b"\x00\x02\x03\x04"
    body = (b"\x03\x03" + HRR_RANDOM + b"\x00" + (0x1302).to_bytes(2, "big") + b"\x00"
            + len(ext).to_bytes(2, "big") + ext)
    fields: dict = {}
    name, err = describe_handshake(hs, 1, 2, body, fields)
    assert (name, err) == ("HelloRetryRequest", None)
    assert hs.hrr and hs.tls13 and hs.server_random is None and hs.hello is None
    name, err = describe_handshake(hs, 0, 2, body, {})
    assert err == "ServerHello sent by the client; ignored"


def test_key_schedule_epochs_and_gap_window():
    client, server = DirectionKeys(0), DirectionKeys(1)
    start_tls13(client, server, early_data=True)
    assert client.epoch_name(True) == "early data" and server.epoch_name(True) == "handshake"
    client.epoch = 3
    assert client.epoch_name(True) == "application (after 2 KeyUpdates)"
    server.skip(2, MAX_SEQ_WINDOW)
    server.skip(1, 10)
    assert (server.seq, server.window) == (3, MAX_SEQ_WINDOW)
    server.change_cipher_spec(None)
    assert (server.epoch, server.seq, server.window) == (1, 0, 0)
    assert server.epoch_name(False) == "session"


def test_missing_secrets_names_the_key_log_label():
    hs = HandshakeState(cr=b"\x11" * 32, suite=0x1302, version=0x0304, tls13=True)
    keys = DirectionKeys(1)
    assert keys.missing_secrets(hs) == ("encrypted, no key log secrets for client random "
                                        + "11" * 32 + " (needs SERVER_HANDSHAKE_TRAFFIC_SECRET)")
    assert DirectionKeys(0).missing_secrets(HandshakeState()) == (
        "encrypted, no ClientHello seen: client random unknown")
