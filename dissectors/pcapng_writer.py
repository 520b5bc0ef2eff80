"""Writing pcapng files: a Section Header, one Interface Description per interface, and
Enhanced Packet Blocks, optionally with packet comments (opt_comment); a Decryption Secrets
Block for TLS key logs.

The one place the project packs pcapng blocks: :class:`PcapngWriter` for new files (the
simulator, tests), :func:`block`, :func:`option` and :func:`enhanced_packet_block` for
rewriting blocks of an existing file in its own byte order (reports/annotate.py).

Source: draft-ietf-opsawg-pcapng §3.1 (block layout), §3.5 (options, opt_comment = 1), §4.1
(SHB), §4.2 (IDB, if_tsresol), §4.3 (EPB, epb options), §4.7 (DSB). The writer's output is
little-endian; timestamps in microseconds unless ``tsresol_exp`` says otherwise. The output is
deterministic: the same calls give the same bytes.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

from .capture import DSB_TLS_KEY_LOG, PCAPNG_BYTE_ORDER_MAGIC, PCAPNG_DSB, PCAPNG_EPB, PCAPNG_IDB, PCAPNG_SHB

#: option codes (draft-ietf-opsawg-pcapng §3.5, §4.1, §4.2)
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
OPT_SHB_USERAPPL = 4
OPT_IF_NAME = 2
OPT_IF_TSRESOL = 9


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def option(code: int, value: bytes, bo: str = "<") -> bytes:
    """One option: code, length, value padded to 32 bits (§3.5), in byte order ``bo``
    (``"<"`` little-endian, ``">"`` big-endian: the section's)."""
    return struct.pack(bo + "HH", code, len(value)) + _pad4(value)


def end_options(options: bytes, bo: str = "<") -> bytes:
    """``options`` (encoded options) followed by opt_endofopt; empty when there are none."""
    return options + struct.pack(bo + "HH", OPT_ENDOFOPT, 0) if options else b""


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    return end_options(b"".join(option(code, v) for code, v in opts))


def block(btype: int, body: bytes, bo: str = "<") -> bytes:
    """A whole pcapng block: type, total length, body (padded), total length (§3.1)."""
    body = _pad4(body)
    n = 12 + len(body)
    return struct.pack(bo + "II", btype, n) + body + struct.pack(bo + "I", n)


def enhanced_packet_block(interface: int, ts_high: int, ts_low: int, data: bytes, orig_len: int,
                          options: bytes = b"", bo: str = "<") -> bytes:
    """A whole Enhanced Packet Block (§4.3): interface id, timestamp (upper / lower 32 bits of
    the tick count), captured length = ``len(data)``, original length ``orig_len`` (bytes),
    the packet padded to 32 bits, then ``options`` (encoded options, see :func:`option`)
    closed by opt_endofopt when there are any."""
    body = struct.pack(bo + "IIIII", interface, ts_high, ts_low, len(data), orig_len)
    return block(PCAPNG_EPB, body + _pad4(data) + end_options(options, bo), bo)


class PcapngWriter:
    """Write a pcapng stream to a binary file object.

    ``add_interface(linktype, snaplen=262144, name=None) -> id``; ``write(time_s, data,
    interface=0, orig_len=None, comments=())`` writes one Enhanced Packet Block whose
    timestamp is ``time_s`` (epoch seconds, float or an exact int of ticks via
    ``write_ticks``). ``tsresol_exp`` is the decimal exponent of the timestamp unit
    (6 → µs, 9 → ns).
    """

    def __init__(self, f: BinaryIO, application: str = "ccs-analyzer", tsresol_exp: int = 6):
        self.f = f
        self.tsresol_exp = tsresol_exp
        self.interfaces = 0
        opts = [(OPT_SHB_USERAPPL, application.encode())]
        body = struct.pack("<IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1) + _options(opts)
        f.write(block(PCAPNG_SHB, body))

    def add_interface(self, linktype: int, snaplen: int = 262144, name: str | None = None) -> int:
        """Describe an interface; return its id."""
        opts = [(OPT_IF_TSRESOL, bytes([self.tsresol_exp]))]
        if name:
            opts.insert(0, (OPT_IF_NAME, name.encode()))
        self.f.write(block(PCAPNG_IDB, struct.pack("<HHI", linktype, 0, snaplen) + _options(opts)))
        self.interfaces += 1
        return self.interfaces - 1

    def write_decryption_secrets(self, data: bytes, secrets_type: int = DSB_TLS_KEY_LOG) -> None:
        """Write a Decryption Secrets Block (§4.7): ``data`` of type ``secrets_type`` (default
        the NSS key log, "TLSK"). Readers apply it to the packets that follow."""
        self.f.write(block(PCAPNG_DSB, struct.pack("<II", secrets_type, len(data)) + data))

    def write(self, time_s: float, data: bytes, interface: int = 0, orig_len: int | None = None,
              comments: tuple[str, ...] | list[str] = ()) -> None:
        """Write one packet at ``time_s`` (epoch seconds)."""
        ticks = int(round(time_s * 10 ** self.tsresol_exp))
        self.write_ticks(ticks, data, interface, orig_len, comments)

    def write_ticks(self, ticks: int, data: bytes, interface: int = 0, orig_len: int | None = None,
                    comments: tuple[str, ...] | list[str] = ()) -> None:
        """Write one packet whose timestamp is ``ticks`` units of 10^-tsresol_exp s."""
        if interface >= self.interfaces:
            raise ValueError(f"interface {interface} was not added")
        opts = b"".join(option(OPT_COMMENT, c.encode("utf-8")) for c in comments)
        self.f.write(enhanced_packet_block(interface, (ticks >> 32) & 0xFFFFFFFF, ticks & 0xFFFFFFFF, data,
                                           orig_len if orig_len is not None else len(data), opts))
