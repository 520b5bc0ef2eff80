"""The TLS connection state machine (TLS 1.2, 1.3): records → handshake, alerts, decrypted data.

ISO 15118-2 runs V2GTP over TLS 1.2 (server authentication, cipher suites
TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 / TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256); ISO 15118-20
over TLS 1.3 with mutual authentication (TLS_AES_256_GCM_SHA384 / TLS_CHACHA20_POLY1305_SHA256)
(PROTOCOL_FACTS §1.4). The EVCC is the TLS client: it opens the TCP connection.

As Zeek's SSL analyzer, the dissector is in parts, each a module:

* dissectors/tls_records.py — the record layer (RFC 5246 §6.2, RFC 8446 §5.1): framing of
  each direction's stream into records, resynchronisation, the alert protocol, :class:`TlsEvent`;
* dissectors/tls_handshake.py — the handshake messages (RFC 5246 §7.4, RFC 8446 §4) and what
  they negotiated;
* dissectors/tls_keys.py — each direction's place in the key schedule (RFC 5246 §6.1,
  RFC 8446 §7), on the derivations and ciphers of dissectors/tls_crypto.py and the secrets of
  dissectors/tls_keylog.py;
* this module — :class:`TlsConnection`, which composes them: it decrypts what it can,
  reassembles handshake messages across records (RFC 5246 §7.4, RFC 8446 §5.1), applies
  ChangeCipherSpec (RFC 5246 §7.1) and the TLS 1.3 key changes, and holds back records it
  cannot decrypt yet.

:class:`TlsConnection` takes the two reassembled TCP byte streams of one connection (fed in
stream order, as chunks tagged with the frame that carried them), cuts them into records,
describes the handshake, and decrypts what it can with the secrets of a
:class:`~ccs_analyzer.dissectors.tls_keylog.KeyLog` (TLS 1.2: CLIENT_RANDOM master secret;
TLS 1.3: the handshake and application traffic secrets). Records it cannot decrypt yet are
held back (bounded) until :meth:`TlsConnection.retry` — key logs are often disclosed in the
capture after the handshake and even after the first application data. Every output is a
:class:`TlsEvent` attributed to the frame that completed it; bad input never raises.
"""
from __future__ import annotations

from collections import deque

from .events import (
    TLS_ALERT_ENCRYPTED,
    TLS_BAD_DIRECTION,
    TLS_CHANGE_CIPHER_SPEC,
    TLS_ENCRYPTED_RECORD,
    TLS_HANDSHAKE_SPLIT_ACROSS_KEY_CHANGE,
    TLS_HANDSHAKE_TOO_LONG,
    TLS_HEARTBEAT,
    TLS_INTERNAL_ERROR,
    TLS_NOT_TLS,
    TLS_PARTIAL_HANDSHAKE_MESSAGE,
    TLS_RECORD_AUTHENTICATION_FAILED,
    TLS_UNKNOWN_CONTENT_TYPE,
)
from .tls_crypto import DecryptError, cipher_suite_name
from .tls_handshake import (
    EXTENSIONS,
    GROUPS,
    HANDSHAKE_TYPES,
    HRR_RANDOM,
    SIGNATURE_SCHEMES,
    HandshakeState,
    describe_handshake,
)
from .tls_keylog import KeyLog
from .tls_keys import DirectionKeys, start_tls13
from .tls_records import (
    ALERT_DESCRIPTIONS,
    ALERT_LEVELS,
    CONTENT_TYPES,
    DIR_WORDS,
    MAX_FRAGMENT,
    VERSIONS,
    Marker,
    Record,
    RecordStream,
    TlsEvent,
    alert_events,
    looks_like_records,
    looks_like_tls,
    record_error,
    version_name,
)

__all__ = [
    "ALERT_DESCRIPTIONS", "ALERT_LEVELS", "CONTENT_TYPES", "EXTENSIONS", "GROUPS",
    "HANDSHAKE_TYPES", "HRR_RANDOM", "MAX_FRAGMENT", "SIGNATURE_SCHEMES", "VERSIONS",
    "TlsConnection", "TlsEvent", "looks_like_tls", "version_name",
]


class _Direction:
    """One direction of the connection: its record framing (``stream``), its key-schedule
    position (``keys``), the handshake message being reassembled (``hs_buf``, begun in
    frame ``hs_first_frame``) and the records held back (``queue`` of Record / Marker)."""

    __slots__ = ("d", "stream", "keys", "hs_buf", "hs_first_frame", "queue")

    def __init__(self, d: int):
        self.d = d
        self.stream = RecordStream(d)
        self.keys = DirectionKeys(d)
        self.hs_buf = bytearray()
        self.hs_first_frame = 0
        self.queue: deque = deque()


class TlsConnection:
    """One TLS connection (one TCP connection): records, handshake, decryption.

    ``keylog``: the :class:`KeyLog` to take secrets from (it may grow during the capture);
    ``label``: how to name the connection in messages (e.g. ``"[fe80::1]:50000 → [fe80::2]:
    15118"``); ``max_held_bytes``: ciphertext held back for lack of secrets, per connection
    (default 16 MiB); beyond it records are reported as ``"encrypted"`` and dropped;
    ``max_handshake_bytes``: largest handshake message buffered (default 1 MiB); ``trust``:
    a :class:`~.x509trust.TrustStore` the Certificate messages' chains are anchored against
    (their ``trust`` field; None: "unanchored").

    Feed both directions with :meth:`feed` in capture order; call :meth:`retry` when the key
    log's ``version`` changed (``feed`` also notices it); :meth:`gap` when bytes are missing
    from a direction; :meth:`close` at the end of the capture. Each returns the
    :class:`TlsEvent` list it produced, in record order per direction; events for held-back
    records carry their own (earlier) frames and ``fields["held_until_frame"]``
    (:attr:`held_back_first_frame` says how early such events may still be).
    A connection whose client does not start with a TLS record header gives one ``"Not TLS"``
    error and is ignored from then on; one captured mid-way (no ClientHello) is followed,
    its encrypted records reported at :meth:`close` ("no ClientHello seen").
    Never raises on bad input.
    """

    def __init__(self, keylog: KeyLog, label: str = "", *, max_held_bytes: int = 16 << 20,
                 max_handshake_bytes: int = 1 << 20, trust=None):
        self.keylog = keylog if keylog is not None else KeyLog()
        self.trust = trust                # x509trust.TrustStore (--trust) or None
        self.hs = HandshakeState(trust=trust)
        """What the handshake established (:class:`~.tls_handshake.HandshakeState`)."""
        self.label = label
        self.max_held_bytes = max_held_bytes
        self.max_handshake_bytes = max_handshake_bytes
        self._dirs = (_Direction(0), _Direction(1))
        self._held = 0
        self._kl_version = self.keylog.version
        self._not_tls: bool | None = None
        self._decrypting = False
        self.stats = {"records": [0, 0], "decrypted": [0, 0], "undecryptable": [0, 0],
                      "application_bytes": [0, 0], "dropped": [0, 0]}
        """Counters per direction [client→server, server→client]."""

    # -- public properties ----------------------------------------------------------------

    @property
    def server_certificates(self) -> list[dict]:
        """Server certificate chain as described by :func:`x509info.describe_chain`
        (leaf first; empty until a Certificate message from the server was read)."""
        return self.hs.server_certificates

    @property
    def client_certificates(self) -> list[dict]:
        """Client (EVCC) certificate chain, for mutual TLS (ISO 15118-20)."""
        return self.hs.client_certificates

    @property
    def ocsp(self) -> dict | None:
        """The stapled OCSP response as dissectors/ocsp.py describes it, or None."""
        return self.hs.ocsp

    @property
    def ocsp_asked(self) -> bool:
        """Did the ClientHello carry status_request (RFC 6066 §8)?"""
        return self.hs.ocsp_asked

    @property
    def version(self) -> str | None:
        """Negotiated protocol version (``"TLS 1.2"``, ``"TLS 1.3"``); None before the
        ServerHello."""
        return version_name(self.hs.version) if self.hs.version is not None else None

    @property
    def cipher_suite(self) -> str | None:
        """Negotiated cipher suite, IANA name; None before the ServerHello."""
        return cipher_suite_name(self.hs.suite) if self.hs.suite is not None else None

    @property
    def client_random(self) -> bytes | None:
        """ClientHello.random (32 bytes) of the first ClientHello — the key log's key."""
        return self.hs.client_random

    @property
    def server_random(self) -> bytes | None:
        """ServerHello.random (32 bytes), None before the ServerHello."""
        return self.hs.server_random

    @property
    def server_name(self) -> str | None:
        """SNI host name offered by the client, if any."""
        return self.hs.sni

    @property
    def is_tls(self) -> bool:
        """True when the first bytes from the client look like a TLS ClientHello record."""
        return bool(looks_like_tls(self._dirs[0].stream.first_bytes))

    @property
    def decrypting(self) -> bool:
        """True once a record of this connection was decrypted and authenticated."""
        return self._decrypting

    @property
    def held_bytes(self) -> int:
        """Ciphertext bytes currently held back waiting for secrets."""
        return self._held

    @property
    def held_back_first_frame(self) -> int | None:
        """First frame of the earliest record held back (its events may still come, from
        :meth:`retry` or :meth:`close`); None when nothing is held. Lets a caller that
        orders output by frame know how far it may flush."""
        first = None
        for d in self._dirs:
            for item in d.queue:
                if isinstance(item, Record):
                    if first is None or item.first_frame < first:
                        first = item.first_frame
                    break
        return first

    # -- public methods -------------------------------------------------------------------

    def feed(self, direction: int, data: bytes, frame: int) -> list[TlsEvent]:
        """Add contiguous stream bytes of ``direction`` (0 client→server, 1 server→client)
        that arrived with ``frame``; returns the events they completed."""
        try:
            return self._feed(direction, bytes(data), frame)
        except Exception as exc:   # a bug must not stop the analysis of the capture
            return [TlsEvent(frame, frame, direction if direction in (0, 1) else 0, "error",
                             TLS_INTERNAL_ERROR, {}, None, f"TLS dissector failed: {exc!r}")]

    @property
    def idle(self) -> bool:
        """Nothing buffered, held back or in progress: :meth:`close` would report nothing."""
        return self._not_tls or not any(d.queue or d.stream.buf or d.hs_buf or d.stream.resyncing
                                        or d.stream.resync_skipped for d in self._dirs)

    def retry(self, frame: int) -> list[TlsEvent]:
        """Try again to decrypt held-back records (call when ``keylog.version`` changed;
        ``frame``: the frame that disclosed the secrets). Returns the events they gave."""
        try:
            self._kl_version = self.keylog.version
            return self._drain(frame)
        except Exception as exc:
            return [TlsEvent(frame, frame, 0, "error", TLS_INTERNAL_ERROR, {}, None,
                             f"TLS dissector failed: {exc!r}")]

    def gap(self, direction: int, missing: int, frame: int) -> list[TlsEvent]:
        """``missing`` bytes of ``direction`` were lost from the capture before the next
        bytes fed. Reports the damage; keeps the record stream in step when the lost range
        ends inside the record being read (its length is known), resynchronises on the next
        plausible record header otherwise, and then tries the sequence numbers the lost
        records may have used (bounded)."""
        try:
            return self._gap(direction, max(0, int(missing)), frame)
        except Exception as exc:
            return [TlsEvent(frame, frame, direction if direction in (0, 1) else 0, "error",
                             TLS_INTERNAL_ERROR, {}, None, f"TLS dissector failed: {exc!r}")]

    def close(self, frame: int) -> list[TlsEvent]:
        """End of capture: report partial records and handshake messages, and every record
        that stayed encrypted (with why: no key log secrets for the client random, no
        ServerHello seen, …). Held-back memory is released."""
        try:
            return self._close(frame)
        except Exception as exc:
            return [TlsEvent(frame, frame, 0, "error", TLS_INTERNAL_ERROR, {}, None,
                             f"TLS dissector failed: {exc!r}")]

    def summary(self) -> dict:
        """JSON-ready overview: version, cipher suite, client random (hex), SNI, ALPN, group,
        decrypting, certificate subjects, per-direction counters."""
        hs = self.hs
        return {
            "label": self.label,
            "version": self.version,
            "cipher_suite": self.cipher_suite,
            "client_random": hs.client_random.hex() if hs.client_random else None,
            "server_name": hs.sni,
            "alpn": hs.alpn,
            "group": hs.group,
            "decrypting": self._decrypting,
            "server_certificates": [c.get("subject") for c in hs.server_certificates],
            "client_certificates": [c.get("subject") for c in hs.client_certificates],
            "revocation": self.revocation(),
            **{k: list(v) for k, v in self.stats.items()},
        }

    def revocation(self) -> dict:
        """What the handshake shows of the SECC certificate's revocation status: whether the
        EV asked for an OCSP response (``status_request``) and the one stapled (or None —
        none present: nothing is claimed either way)."""
        ocsp = self.hs.ocsp
        return {"status_request": self.hs.ocsp_asked, "ocsp": ocsp,
                "summary": (f"OCSP response stapled: {ocsp.get('cert_status') or ocsp.get('response_status')}"
                            if ocsp else "no OCSP response in the capture"
                            + (" although the EV asked for one (status_request)" if self.hs.ocsp_asked else ""))}

    def __repr__(self) -> str:
        return (f"TlsConnection({self.label!r}, {self.version}, {self.cipher_suite}, "
                f"decrypting={self._decrypting})")

    # -- stream → records -----------------------------------------------------------------

    def _feed(self, direction: int, data: bytes, frame: int) -> list[TlsEvent]:
        if direction not in (0, 1):
            return [TlsEvent(frame, frame, 0, "error", TLS_BAD_DIRECTION, {}, None,
                             f"direction must be 0 or 1, not {direction!r}")]
        if not data:
            return []
        d = self._dirs[direction]
        stream = d.stream
        if len(stream.first_bytes) < 6:
            stream.first_bytes += data[:6 - len(stream.first_bytes)]
        if self._not_tls:
            return []
        if direction == 0 and self._not_tls is None:
            verdict = looks_like_records(stream.first_bytes)
            if verdict is False:
                self._not_tls = True
                return [TlsEvent(frame, frame, 0, "error", TLS_NOT_TLS,
                                 {"first_bytes": stream.first_bytes.hex()}, None,
                                 f"not TLS: the client's first bytes ({stream.first_bytes.hex(' ')}) "
                                 "are not a TLS record header")]
            if verdict:
                self._not_tls = False
        events: list[TlsEvent] = []
        if self.keylog.version != self._kl_version and (self._dirs[0].queue or self._dirs[1].queue):
            self._kl_version = self.keylog.version
            events += self._drain(frame)
        records = self.stats["records"]
        for item in stream.cut(data, frame, self._negotiated_version):
            if type(item) is Record:
                records[d.d] += 1
                events += self._on_record(d, item)
            else:
                events.append(item)
        if self._dirs[0].queue or self._dirs[1].queue:
            events += self._drain(frame)
        return events

    def _negotiated_version(self) -> int | None:
        return self.hs.version

    def _on_record(self, d: _Direction, rec: Record) -> list[TlsEvent]:
        if d.queue:
            return self._enqueue(d, rec)
        events, blocked = self._process_safely(d, rec)
        if blocked:
            events += self._enqueue(d, rec)
        return events

    def _process_safely(self, d: _Direction, rec: Record) -> tuple[list[TlsEvent], bool]:
        """:meth:`_process`, with an unexpected failure confined to the record it hit."""
        try:
            return self._process(d, rec)
        except Exception as exc:
            return [record_error(rec, d.d, TLS_INTERNAL_ERROR,
                                 f"TLS dissector failed on record {rec.index}: {exc!r}")], False

    def _enqueue(self, d: _Direction, rec: Record) -> list[TlsEvent]:
        size = len(rec.fragment) + 5
        if self._held + size > self.max_held_bytes:
            self.stats["dropped"][d.d] += 1
            if d.queue and isinstance(d.queue[-1], Marker) and d.queue[-1].kind == "dropped":
                d.queue[-1].count += 1
            else:
                d.queue.append(Marker("dropped", count=1))
            return [self._encrypted_event(d, rec, f"encrypted, held-back ciphertext limit "
                                               f"({self.max_held_bytes} bytes per connection) "
                                               "reached: record dropped undecrypted")]
        self._held += size
        d.queue.append(rec)
        return []

    # -- held-back records -----------------------------------------------------------------

    def _drain(self, frame: int) -> list[TlsEvent]:
        events: list[TlsEvent] = []
        progress = True
        while progress:
            progress = False
            for d in self._dirs:
                while d.queue:
                    item = d.queue[0]
                    if isinstance(item, Marker):
                        d.queue.popleft()
                        self._apply_marker(d, item)
                        progress = True
                        continue
                    evs, blocked = self._process_safely(d, item)
                    if blocked:
                        break
                    d.queue.popleft()
                    self._held -= len(item.fragment) + 5
                    for e in evs:
                        e.fields["held_until_frame"] = frame
                    events += evs
                    progress = True
        return events

    @staticmethod
    def _apply_marker(d: _Direction, m: Marker) -> None:
        if m.kind == "dropped":
            d.keys.skip(m.count, 0)
        elif m.kind == "gap":
            d.keys.skip(m.seq_skip, m.window)
            d.hs_buf.clear()

    # -- record processing -----------------------------------------------------------------

    def _encrypted_event(self, d: _Direction, rec: Record, why: str) -> TlsEvent:
        fields = {"content_type": rec.ctype, "content_type_name": CONTENT_TYPES.get(rec.ctype),
                  "length": len(rec.fragment), "record": rec.index, "offset": rec.offset}
        name = (TLS_ALERT_ENCRYPTED if rec.ctype == 21 and not self.hs.tls13
                else TLS_ENCRYPTED_RECORD)
        return TlsEvent(rec.frame, rec.first_frame, d.d, "encrypted", name, fields, None, why)

    def _is_protected(self, d: _Direction, rec: Record) -> bool:
        if self.hs.tls13:
            return rec.ctype == 23
        if self.hs.version is not None:
            return d.keys.epoch > 0
        return rec.ctype == 23 or d.keys.epoch > 0

    def _process(self, d: _Direction, rec: Record) -> tuple[list[TlsEvent], bool]:
        """Decrypt (if protected) and interpret one record. Returns (events, blocked):
        blocked means "cannot be read yet, keep it and everything after it"."""
        if not self._is_protected(d, rec):
            return self._content(d, rec, rec.ctype, rec.fragment, False, None), False
        keys = d.keys
        cipher, why, blocked = keys.cipher(self.hs, self.keylog)
        if blocked:
            return [], True
        if cipher is None:
            keys.seq += 1
            self.stats["undecryptable"][d.d] += 1
            return [self._encrypted_event(d, rec, why)], False
        epoch_before = keys.epoch
        try:
            ctype, plain, seq = keys.open(cipher, rec, self.hs, self.keylog)
        except DecryptError as exc:
            seq = keys.seq
            keys.seq += 1
            self.stats["undecryptable"][d.d] += 1
            epoch = keys.epoch_name(self.hs.tls13)
            fields = {"content_type": rec.ctype, "content_type_name": CONTENT_TYPES.get(rec.ctype),
                      "length": len(rec.fragment), "record": rec.index, "offset": rec.offset,
                      "seq": seq, "epoch": epoch}
            return [TlsEvent(rec.frame, rec.first_frame, d.d, "error",
                             TLS_RECORD_AUTHENTICATION_FAILED, fields, None,
                             f"{DIR_WORDS[d.d]} record {rec.index} "
                             f"({CONTENT_TYPES.get(rec.ctype, rec.ctype)}, {len(rec.fragment)} "
                             f"bytes, frame {rec.frame}, sequence number {seq}, "
                             f"{epoch} keys) failed to decrypt: {exc}")], False
        self._decrypting = True
        self.stats["decrypted"][d.d] += 1
        keys.seq = seq + 1
        keys.window = 0
        events = self._content(d, rec, ctype, plain, True, seq)
        if keys.epoch != epoch_before:
            for e in events:       # the Finished / KeyUpdate that changed keys was not seen
                e.fields["key_change_inferred"] = True
        if keys.pending_change:
            keys.pending_change = False
            keys.epoch += 1
            keys.seq = 0
            if d.hs_buf:
                events.append(record_error(rec, d.d, TLS_HANDSHAKE_SPLIT_ACROSS_KEY_CHANGE,
                                           "a handshake message continues past a key change "
                                           "(RFC 8446 §5.1 forbids it); dropped"))
                d.hs_buf.clear()
        return events, False

    # -- content ---------------------------------------------------------------------------

    def _content(self, d: _Direction, rec: Record, ctype: int, data: bytes, encrypted: bool,
                 seq: int | None) -> list[TlsEvent]:
        base = {"record": rec.index, "offset": rec.offset, "encrypted": encrypted}
        if encrypted:
            base["seq"] = seq
            base["epoch"] = d.keys.epoch_name(self.hs.tls13)
        if ctype == 23:
            self.stats["application_bytes"][d.d] += len(data)
            f = dict(base, length=len(data))
            return [TlsEvent(rec.frame, rec.first_frame, d.d, "application_data", "ApplicationData",
                             f, data, None)]
        if ctype == 20:
            return self._ccs(d, rec, data, base)
        if ctype == 21:
            return alert_events(rec, d.d, data, base)
        if ctype == 22:
            return self._handshake_bytes(d, rec, data, base)
        if ctype == 24:
            return [TlsEvent(rec.frame, rec.first_frame, d.d, "error", TLS_HEARTBEAT,
                             dict(base, length=len(data)), None,
                             "heartbeat record (RFC 6520), not expected in ISO 15118 traffic")]
        return [record_error(rec, d.d, TLS_UNKNOWN_CONTENT_TYPE,
                             f"inner content type {ctype} is not a TLS content type",
                             content_type=ctype)]

    def _ccs(self, d: _Direction, rec: Record, data: bytes, base: dict) -> list[TlsEvent]:
        f = dict(base)
        err = None
        if data != b"\x01":
            err = f"ChangeCipherSpec body {data.hex()} (expected 01)"
        if self.hs.tls13:
            f["compatibility"] = True    # RFC 8446 §5 / Appendix D.4: middlebox compatibility
        else:
            d.keys.change_cipher_spec(self.hs.hello)
            f["epoch"] = d.keys.epoch_name(False)
            if d.hs_buf:
                err = (f"{err}; " if err else "") + (
                    f"{len(d.hs_buf)} bytes of an unfinished handshake message dropped at "
                    "ChangeCipherSpec (RFC 5246 §7.1: handshake messages must not span it)")
                d.hs_buf.clear()
        return [TlsEvent(rec.frame, rec.first_frame, d.d, "change_cipher_spec",
                         TLS_CHANGE_CIPHER_SPEC, f, None, err)]

    def _handshake_bytes(self, d: _Direction, rec: Record, data: bytes,
                         base: dict) -> list[TlsEvent]:
        """Reassemble ``type(1) length(3) body`` handshake messages across records
        (RFC 5246 §7.4, RFC 8446 §4) and describe each one completed."""
        out: list[TlsEvent] = []
        if not d.hs_buf:
            d.hs_first_frame = rec.first_frame
        d.hs_buf += data
        while len(d.hs_buf) >= 4:
            mtype = d.hs_buf[0]
            mlen = int.from_bytes(d.hs_buf[1:4], "big")
            if mlen > self.max_handshake_bytes:
                out.append(record_error(rec, d.d, TLS_HANDSHAKE_TOO_LONG,
                                        f"{HANDSHAKE_TYPES.get(mtype, mtype)} announces {mlen} "
                                        f"bytes (more than {self.max_handshake_bytes}); handshake "
                                        "bytes of this record dropped"))
                d.hs_buf.clear()
                break
            if len(d.hs_buf) < 4 + mlen:
                break
            body = bytes(d.hs_buf[4:4 + mlen])
            del d.hs_buf[:4 + mlen]
            out.append(self._handshake(d, rec, mtype, body, d.hs_first_frame, dict(base)))
            d.hs_first_frame = rec.first_frame      # a following message starts in this record
        return out

    def _handshake(self, d: _Direction, rec: Record, mtype: int, body: bytes, first_frame: int,
                   fields: dict) -> TlsEvent:
        """Describe one handshake message, then apply the key changes it announces: a TLS 1.3
        ServerHello starts the handshake keys (RFC 8446 §7.1); EndOfEarlyData, Finished and
        KeyUpdate switch keys after their record (RFC 8446 §4.5, §4.4.4, §4.6.3)."""
        hs = self.hs
        name, err = describe_handshake(hs, d.d, mtype, body, fields)
        if err is None and hs.tls13:
            epoch = d.keys.epoch
            if mtype == 2 and name == "ServerHello":
                start_tls13(self._dirs[0].keys, self._dirs[1].keys,
                            hs.early_offered and not hs.hrr)
            elif ((mtype == 20 and epoch == 0) or (mtype == 24 and epoch >= 1)
                  or (mtype == 5 and epoch < 0)):
                d.keys.pending_change = True
        return TlsEvent(rec.frame, first_frame, d.d, "handshake", name, fields, None, err)

    # -- gaps and the end ------------------------------------------------------------------

    def _gap(self, direction: int, missing: int, frame: int) -> list[TlsEvent]:
        if direction not in (0, 1):
            return [TlsEvent(frame, frame, 0, "error", TLS_BAD_DIRECTION, {}, None,
                             f"direction must be 0 or 1, not {direction!r}")]
        d = self._dirs[direction]
        if missing == 0 or self._not_tls:
            return []
        event, marker = d.stream.lose(missing, frame)
        if marker is not None:
            if d.queue:
                d.queue.append(marker)
            else:
                self._apply_marker(d, marker)
        return [event]

    def _close(self, frame: int) -> list[TlsEvent]:
        events = []
        if self._dirs[0].queue or self._dirs[1].queue:
            self._kl_version = self.keylog.version
            events += self._drain(frame)
        if self._not_tls:
            return events
        for d in self._dirs:
            events += d.stream.close(frame)
            if d.hs_buf:
                mtype = d.hs_buf[0]
                events.append(TlsEvent(frame, d.hs_first_frame or frame, d.d, "error",
                                       TLS_PARTIAL_HANDSHAKE_MESSAGE,
                                       {"handshake_type": mtype, "bytes": len(d.hs_buf)}, None,
                                       f"connection ends inside a "
                                       f"{HANDSHAKE_TYPES.get(mtype, mtype)} message "
                                       f"({len(d.hs_buf)} bytes)"))
            why = d.keys.missing_secrets(self.hs)
            for item in d.queue:
                if isinstance(item, Record):
                    self.stats["undecryptable"][d.d] += 1
                    events.append(self._encrypted_event(d, item, why))
            d.queue.clear()
            d.stream.release()
            d.hs_buf.clear()
        self._held = 0
        return events
