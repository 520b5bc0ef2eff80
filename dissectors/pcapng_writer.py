"""Writing pcapng files: a Section Header, one Interface Description per interface, and
Enhanced Packet Blocks, optionally with packet comments (opt_comment).

Source: draft-ietf-opsawg-pcapng §4.1 (SHB), §4.2 (IDB, if_tsresol), §4.3 (EPB, epb options),
§3.5 (options, opt_comment = 1). Little-endian output; timestamps in microseconds unless
``tsresol_exp`` says otherwise. The output is deterministic: the same calls give the same
bytes.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    out = b"".join(struct.pack("<HH", code, len(v)) + _pad4(v) for code, v in opts)
    return out + struct.pack("<HH", 0, 0)


def block(btype: int, body: bytes) -> bytes:
    """A whole pcapng block: type, total length, body (padded), total length."""
    body = _pad4(body)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


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
        opts = [(4, application.encode())]          # shb_userappl
        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _options(opts)
        f.write(block(_SHB, body))

    def add_interface(self, linktype: int, snaplen: int = 262144, name: str | None = None) -> int:
        """Describe an interface; return its id."""
        opts = [(9, bytes([self.tsresol_exp]))]
        if name:
            opts.insert(0, (2, name.encode()))
        self.f.write(block(_IDB, struct.pack("<HHI", linktype, 0, snaplen) + _options(opts)))
        self.interfaces += 1
        return self.interfaces - 1

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
        opts = [(1, c.encode("utf-8")) for c in comments]
        body = struct.pack("<IIIII", interface, (ticks >> 32) & 0xFFFFFFFF, ticks & 0xFFFFFFFF,
                           len(data), orig_len if orig_len is not None else len(data))
        body += _pad4(data) + _options(opts)
        self.f.write(block(_EPB, body))
