"""Decryption state of one TLS direction: which keys protect the next record (TLS 1.2, 1.3).

The derivations themselves (TLS 1.2 PRF and key block, RFC 5246 §5, §6.3; TLS 1.3
HKDF-Expand-Label and traffic keys, RFC 8446 §7.1-7.3) and the record ciphers are in
dissectors/tls_crypto.py; the secrets come from a key log (dissectors/tls_keylog.py). This
module keeps, per direction, where the connection stands in the key schedule:

* TLS 1.2 (RFC 5246 §6.1, §7.1): epoch = number of ChangeCipherSpec seen; the keys of an
  epoch come from the CLIENT_RANDOM master secret and the hellos' parameters fixed at that
  ChangeCipherSpec; the sequence number restarts at 0 with each.
* TLS 1.3 (RFC 8446 §7.1, §4.6.3): epoch -1 early data (client only, when 0-RTT was offered),
  0 handshake, 1 application traffic secret 0, n+1 after n KeyUpdates; each epoch's traffic
  secret comes from the key log (or, after a KeyUpdate, from the previous one); EndOfEarlyData,
  Finished and KeyUpdate switch to the next epoch after their record (``pending_change``).

After records were lost in a gap, ``window`` more sequence numbers are tried (bounded by
:data:`MAX_SEQ_WINDOW`).
"""
from __future__ import annotations

from .tls_crypto import (
    DecryptError,
    RecordCipher,
    Tls13Cipher,
    cipher_suite_name,
    suite_params,
    tls12_ciphers,
)
from .tls_handshake import HandshakeState, Hello
from .tls_keylog import KeyLog
from .tls_records import Record, version_name

#: Upper bound on sequence numbers tried after a gap.
MAX_SEQ_WINDOW = 1 << 16

_SIDE = ("CLIENT", "SERVER")


class DirectionKeys:
    """Key-schedule position of one direction (``d``: 0 client, 1 server).

    ``epoch`` (see the module docstring), ``seq``: sequence number of the next record
    (RFC 5246 §6.1, RFC 8446 §5.3), ``window``: extra sequence numbers to try after a gap,
    ``params``: TLS 1.2 :class:`~.tls_handshake.Hello` in force since this direction's last
    ChangeCipherSpec, ``ciphers``: TLS 1.3 epoch → :class:`~.tls_crypto.Tls13Cipher`,
    ``tls12_keys``: the TLS 1.2 cipher derived last and what it was derived from,
    ``pending_change``: TLS 1.3, switch to the next epoch after the current record.
    """

    __slots__ = ("d", "epoch", "seq", "window", "params", "ciphers", "tls12_keys",
                 "pending_change")

    def __init__(self, d: int):
        self.d = d
        self.epoch = 0                  # TLS 1.2: number of CCS seen; TLS 1.3: -1 early, 0 hs, n app
        self.seq = 0
        self.window = 0                 # extra sequence numbers to try (after a gap)
        self.params: Hello | None = None  # TLS 1.2: handshake parameters at the last CCS
        self.ciphers: dict = {}         # TLS 1.3: epoch -> Tls13Cipher
        self.tls12_keys = None
        self.pending_change = False     # TLS 1.3: switch keys after this record

    def skip(self, seq_skip: int, window: int) -> None:
        """Records were lost: ``seq_skip`` surely, up to ``window`` more possibly."""
        self.seq += seq_skip
        self.window = min(MAX_SEQ_WINDOW, self.window + window)

    def change_cipher_spec(self, hello: Hello | None) -> None:
        """TLS 1.2 ChangeCipherSpec (RFC 5246 §7.1): next epoch, with the keys of ``hello``."""
        self.epoch += 1
        self.seq = 0
        self.window = 0
        self.params = hello

    def epoch_name(self, tls13: bool) -> str:
        """How the keys of the current epoch are named in messages (``"handshake"``,
        ``"application"``, ``"session"``, …)."""
        if tls13:
            if self.epoch < 0:
                return "early data"
            if self.epoch == 0:
                return "handshake"
            return "application" if self.epoch == 1 else f"application (after {self.epoch - 1} KeyUpdates)"
        return "session" if self.epoch <= 1 else f"session {self.epoch}"

    def cipher(self, hs: HandshakeState, keylog: KeyLog) -> tuple[RecordCipher | None, str, bool]:
        """(cipher, why-not, blocked) for the current epoch: blocked means the secrets or
        the hellos are not known yet (hold the record back); a None cipher that is not
        blocked means the record can never be decrypted, for the reason given."""
        if hs.cr is None:
            return None, "", True
        if hs.version is None or hs.suite is None:
            return None, "", True
        if hs.tls13:
            params = suite_params(hs.suite)
            if params is None or not params.tls13:
                return None, (f"encrypted, cipher suite {cipher_suite_name(hs.suite)} not "
                              "supported for TLS 1.3 decryption"), False
            c = self.tls13_cipher(hs, keylog, self.epoch)
            if c is None and self.epoch < 0:
                # 0-RTT offered but its secret unknown: maybe no early data was sent at all
                c = self.tls13_cipher(hs, keylog, 0)
                if c is not None:
                    self.epoch = 0
            if c is None:
                return None, "", True
            return c, "", False
        # TLS 1.2 and below: keys fixed at this direction's last ChangeCipherSpec (the hellos
        # may have been fed after it when a direction lags behind: then take the latest)
        h = self.params if self.params is not None else hs.hello
        if h is None or h.suite is None or h.server_random is None:
            return None, "", True
        if h.client_random is None:
            if hs.cr is None:
                return None, "", True
            h.client_random = hs.cr
        if h.version is not None and h.version < 0x0303:
            return None, (f"encrypted, {version_name(h.version)} decryption not supported "
                          "(TLS 1.2 and 1.3 only)"), False
        params = suite_params(h.suite)
        if params is None or params.tls13:
            return None, (f"encrypted, cipher suite {cipher_suite_name(h.suite)} not supported "
                          "for decryption"), False
        if self.tls12_keys is not None and self.tls12_keys[0] == (h.client_random, h.server_random,
                                                                  h.suite, h.encrypt_then_mac):
            return self.tls12_keys[1], "", False
        master = keylog.master_secret(h.client_random)
        if master is None:
            return None, "", True
        if len(master) != 48:
            return None, (f"encrypted, the key log's CLIENT_RANDOM secret is {len(master)} bytes "
                          "(a master secret has 48)"), False
        ciphers = tls12_ciphers(params, master, h.client_random, h.server_random,
                                h.encrypt_then_mac)
        self.tls12_keys = ((h.client_random, h.server_random, h.suite, h.encrypt_then_mac),
                           ciphers[self.d])
        return ciphers[self.d], "", False

    def tls13_cipher(self, hs: HandshakeState, keylog: KeyLog, epoch: int) -> Tls13Cipher | None:
        """The TLS 1.3 cipher of ``epoch`` for this direction (RFC 8446 §7.1: the key log's
        CLIENT_EARLY_TRAFFIC_SECRET, {CLIENT,SERVER}_HANDSHAKE_TRAFFIC_SECRET,
        {CLIENT,SERVER}_TRAFFIC_SECRET_n, or §7.2 the next secret after the previous epoch's);
        None when its secret is unknown."""
        if epoch in self.ciphers:
            return self.ciphers[epoch]
        params = suite_params(hs.suite) if hs.suite is not None else None
        if params is None or not params.tls13 or hs.cr is None:
            return None
        side = _SIDE[self.d]
        secret = None
        if epoch < 0:
            secret = keylog.get(hs.cr, "CLIENT_EARLY_TRAFFIC_SECRET") if self.d == 0 else None
        elif epoch == 0:
            secret = keylog.get(hs.cr, f"{side}_HANDSHAKE_TRAFFIC_SECRET")
        else:
            secret = keylog.get(hs.cr, f"{side}_TRAFFIC_SECRET_{epoch - 1}")
            if secret is None and epoch > 1:
                prev = self.tls13_cipher(hs, keylog, epoch - 1)
                if prev is not None:
                    c = prev.next()
                    self.ciphers[epoch] = c
                    return c
        if secret is None:
            return None
        c = Tls13Cipher(params, secret)
        self.ciphers[epoch] = c
        return c

    def open(self, cipher: RecordCipher, rec: Record, hs: HandshakeState,
             keylog: KeyLog) -> tuple[int, bytes, int]:
        """Decrypt ``rec`` with the expected sequence number, then (after a gap) the
        following ones, then (TLS 1.3) with the next epoch's keys in case a Finished /
        KeyUpdate was missed. Returns (inner content type, plaintext, sequence number used);
        raises :class:`~.tls_crypto.DecryptError` (the first failure) when nothing fits."""
        first_exc = None
        for seq in range(self.seq, self.seq + 1 + self.window):
            try:
                ctype, plain = cipher.open(rec.header, rec.fragment, seq)
                return ctype, plain, seq
            except DecryptError as exc:
                if first_exc is None:
                    first_exc = exc
        if hs.tls13:
            nxt = self.tls13_cipher(hs, keylog, self.epoch + 1)
            if nxt is not None:
                for seq in range(0, 1 + self.window):
                    try:
                        ctype, plain = nxt.open(rec.header, rec.fragment, seq)
                    except DecryptError:
                        continue
                    self.epoch += 1
                    return ctype, plain, seq
        raise first_exc

    def missing_secrets(self, hs: HandshakeState) -> str:
        """Why a record of this direction stayed encrypted for lack of secrets: no
        ClientHello / ServerHello seen, or which key log label is missing."""
        if hs.cr is None:
            return "encrypted, no ClientHello seen: client random unknown"
        if hs.version is None or hs.suite is None:
            return "encrypted, no ServerHello seen: version and cipher suite unknown"
        if hs.tls13:
            if self.epoch < 0:
                label = "CLIENT_EARLY_TRAFFIC_SECRET"
            elif self.epoch == 0:
                label = f"{_SIDE[self.d]}_HANDSHAKE_TRAFFIC_SECRET"
            else:
                label = f"{_SIDE[self.d]}_TRAFFIC_SECRET_0"
        else:
            label = "CLIENT_RANDOM"
        h = self.params if self.params is not None else hs.hello
        cr = h.client_random if (not hs.tls13 and h is not None and h.client_random) else hs.cr
        return f"encrypted, no key log secrets for client random {cr.hex()} (needs {label})"


def start_tls13(client: DirectionKeys, server: DirectionKeys, early_data: bool) -> None:
    """After a TLS 1.3 ServerHello (RFC 8446 §7.1): the server sends under handshake keys
    from now, the client under early-data keys when it offered 0-RTT (``early_data``), else
    handshake keys; both sequence numbers restart at 0."""
    server.epoch, server.seq, server.window = 0, 0, 0
    client.epoch = -1 if early_data else 0
    client.seq = 0
