"""NSS key log: the TLS secrets that let us decrypt a captured session, keyed by client random.

Format (NSS "SSLKEYLOGFILE", as written by NSS, OpenSSL, BoringSSL, Python's ``ssl`` module
``keylog_filename``, Java agents, and read by Wireshark): one secret per line,

    LABEL <client random: 64 hex digits> <secret: hex>

``#`` starts a comment line. The labels we know:

    CLIENT_RANDOM                      TLS 1.2 (and older) master secret, 48 bytes
    CLIENT_EARLY_TRAFFIC_SECRET        TLS 1.3 0-RTT traffic secret (RFC 8446 §7.1)
    CLIENT_HANDSHAKE_TRAFFIC_SECRET    TLS 1.3 [sender]_handshake_traffic_secret
    SERVER_HANDSHAKE_TRAFFIC_SECRET
    CLIENT_TRAFFIC_SECRET_0            TLS 1.3 [sender]_application_traffic_secret_0
    SERVER_TRAFFIC_SECRET_0            (a _N suffix gives the secret after N KeyUpdates)
    EARLY_EXPORTER_SECRET, EXPORTER_SECRET, ECH_SECRET, ECH_CONFIG   (kept, not used here)

Test systems that do not write files disclose the same lines on the wire: dSPACE test benches
(and the dsV2Gshark Wireshark plugin that reads them) send each line in a UDP datagram, seen
to ``[ff02::1]:52345``; several lines may share a datagram, separated by CR, LF or NUL.
:func:`lines_in_datagram` recognises such datagrams by their content, whatever the port.

Secrets are often disclosed in the capture *after* the handshake and even after the first
application data; :attr:`KeyLog.version` increases whenever a new secret arrives, so that a
TLS connection holding back ciphertext knows when to try again (``TlsConnection.retry``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

#: Labels of the NSS key log format keyed by a 32-byte client random.
LABELS = frozenset({
    "CLIENT_RANDOM",
    "CLIENT_EARLY_TRAFFIC_SECRET",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EARLY_EXPORTER_SECRET",
    "EXPORTER_SECRET",
    "ECH_SECRET",
    "ECH_CONFIG",
})

_LABEL_RE = r"(?:CLIENT_RANDOM|CLIENT_EARLY_TRAFFIC_SECRET|CLIENT_HANDSHAKE_TRAFFIC_SECRET|" \
            r"SERVER_HANDSHAKE_TRAFFIC_SECRET|(?:CLIENT|SERVER)_TRAFFIC_SECRET_[0-9]{1,5}|" \
            r"EARLY_EXPORTER_SECRET|EXPORTER_SECRET|ECH_SECRET|ECH_CONFIG)"
_LINE_RE = re.compile(r"(" + _LABEL_RE + r")[ \t]+([0-9A-Fa-f]{64})[ \t]+((?:[0-9A-Fa-f]{2}){1,1024})")
_LINE_RE_B = re.compile(_LINE_RE.pattern.encode())

#: Longest key log file we read (a key log holds a few hundred bytes per connection).
MAX_FILE_BYTES = 256 << 20


class KeyLogError(OSError):
    """A key log file that cannot be used: unreadable, or holding no key log line at all."""


@dataclass(frozen=True, slots=True)
class Secret:
    """One key log secret: ``label``, ``client_random`` (32 bytes), ``secret`` (bytes) and the
    ``frame`` of the capture that disclosed it (None when it came from a file)."""

    label: str
    client_random: bytes
    secret: bytes
    frame: int | None = None


def parse_line(line: str) -> Secret | None:
    """Parse one key log line; None for comments, blank lines and anything else.

    Surrounding white space is ignored; the label must be one of :data:`LABELS` (or a
    ``CLIENT_/SERVER_TRAFFIC_SECRET_N``), the client random exactly 64 hex digits and the
    secret an even number of hex digits (NSS key log format, see the module docstring).
    """
    if not isinstance(line, str):
        return None
    m = _LINE_RE.fullmatch(line.strip())
    if m is None:
        return None
    return Secret(m.group(1), bytes.fromhex(m.group(2)), bytes.fromhex(m.group(3)))


def lines_in_datagram(payload: bytes) -> list[str]:
    """Key log lines disclosed in one UDP datagram (dSPACE / dsV2Gshark convention).

    ``payload``: the UDP payload. Returns the well-formed key log lines it holds, in order
    (empty when it holds none). Lines may be separated by CR, LF or NUL and padded with
    white space; anything that is not a complete key log line makes no line (detection is
    by content, not by port, so any datagram may be offered). Never raises.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        return []
    out: list[str] = []
    for piece in re.split(rb"[\r\n\x00]+", bytes(payload)):
        piece = piece.strip(b" \t")
        if len(piece) < 70:
            continue
        m = _LINE_RE_B.fullmatch(piece)
        if m is not None:
            out.append(piece.decode("ascii"))
    return out


class KeyLog:
    """TLS secrets from NSS key log lines, looked up by client random.

    ``add_line`` / ``add_text`` / ``from_file`` / :func:`lines_in_datagram` fill it;
    :meth:`get` and :meth:`secrets_for` look secrets up. :attr:`version` counts the times a
    new (or changed) secret was added: a TLS connection compares it with the value it saw
    when it last lacked secrets and retries when it changed.
    """

    #: Class-level alias of the module function, for callers that only hold a KeyLog.
    lines_in_datagram = staticmethod(lines_in_datagram)

    def __init__(self) -> None:
        self._secrets: dict[bytes, dict[str, Secret]] = {}
        self.version = 0
        #: lines given to add_line that were not key log lines (comments excluded)
        self.rejected_lines = 0

    # -- filling -----------------------------------------------------------------------

    def add_line(self, line: str, frame: int | None = None) -> bool:
        """Add one key log line (``frame``: the capture frame that disclosed it, if any).

        Returns True when the line is a well-formed key log line (whether or not the secret
        was already known), False for comments, blank lines and malformed lines. Bumps
        :attr:`version` only when the secret is new or differs from the one stored.
        """
        s = parse_line(line)
        if s is None:
            if isinstance(line, str) and line.strip() and not line.lstrip().startswith("#"):
                self.rejected_lines += 1
            return False
        self.add_secret(s.label, s.client_random, s.secret, frame)
        return True

    def add_secret(self, label: str, client_random: bytes, secret: bytes,
                   frame: int | None = None) -> bool:
        """Store one secret; True (and :attr:`version` bumped) when it was new or changed."""
        per = self._secrets.setdefault(bytes(client_random), {})
        old = per.get(label)
        if old is not None and old.secret == secret:
            return False
        per[label] = Secret(label, bytes(client_random), bytes(secret), frame)
        self.version += 1
        return True

    def add_text(self, text: str) -> int:
        """Add every key log line of ``text`` (lines split on CR, LF or NUL); returns how many
        well-formed key log lines it held."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        n = 0
        for line in re.split(r"[\r\n\x00]+", text):
            if self.add_line(line):
                n += 1
        return n

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> KeyLog:
        """Read an NSS key log file.

        Errors: :class:`KeyLogError` (an ``OSError``) naming the file when it cannot be
        read, is larger than :data:`MAX_FILE_BYTES`, or holds text but not a single key log
        line (e.g. a capture given by mistake). An empty file, or one with only comments,
        gives an empty key log.
        """
        try:
            size = os.path.getsize(path)
            if size > MAX_FILE_BYTES:
                raise KeyLogError(f"key log file {os.fspath(path)!r} is {size} bytes "
                                  f"(more than {MAX_FILE_BYTES}); not a key log?")
            with open(path, "rb") as fh:
                raw = fh.read()
        except KeyLogError:
            raise
        except OSError as exc:
            raise KeyLogError(f"cannot read key log file {os.fspath(path)!r}: "
                              f"{exc.strerror or exc}") from exc
        kl = cls()
        n = kl.add_text(raw.decode("utf-8", "replace"))
        if n == 0 and kl.rejected_lines:
            raise KeyLogError(f"key log file {os.fspath(path)!r} holds no NSS key log line "
                              f"('LABEL <64 hex client random> <hex secret>'); "
                              f"{kl.rejected_lines} other lines")
        return kl

    # -- lookups -----------------------------------------------------------------------

    def get(self, client_random: bytes, label: str) -> bytes | None:
        """The secret for ``client_random`` (32 bytes) and ``label``; None when unknown."""
        s = self._secrets.get(bytes(client_random) if client_random else b"", {}).get(label)
        return s.secret if s is not None else None

    def secret(self, client_random: bytes, label: str) -> Secret | None:
        """Like :meth:`get` but the whole :class:`Secret` (with the disclosing frame)."""
        return self._secrets.get(bytes(client_random) if client_random else b"", {}).get(label)

    def secrets_for(self, client_random: bytes) -> dict[str, bytes]:
        """All secrets known for ``client_random``: ``{label: secret}`` (empty when none)."""
        return {k: v.secret for k, v in self._secrets.get(bytes(client_random), {}).items()}

    def master_secret(self, client_random: bytes) -> bytes | None:
        """TLS 1.2 master secret (label CLIENT_RANDOM) for ``client_random``, or None."""
        return self.get(client_random, "CLIENT_RANDOM")

    def client_randoms(self) -> list[bytes]:
        """Client randoms with at least one secret, in the order first seen."""
        return list(self._secrets)

    def __contains__(self, client_random: object) -> bool:
        return isinstance(client_random, (bytes, bytearray)) and bytes(client_random) in self._secrets

    def __len__(self) -> int:
        """Number of secrets held."""
        return sum(len(v) for v in self._secrets.values())

    def __iter__(self):
        """All :class:`Secret` objects, grouped by client random."""
        for per in self._secrets.values():
            yield from per.values()

    def __repr__(self) -> str:
        return f"KeyLog({len(self._secrets)} client randoms, {len(self)} secrets, version {self.version})"
