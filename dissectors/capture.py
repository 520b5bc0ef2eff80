"""Streaming reader for pcap and pcapng capture files.

Formats:
* pcap (libpcap): magic 0xA1B2C3D4 (microsecond timestamps) or 0xA1B23C4D (nanosecond), in
  either byte order; the Kuznetzov "modified pcap" variant 0xA1B2CD34 (µs, 8 more bytes per
  record header). Source: draft-ietf-opsawg-pcap §4-5, pcap-savefile(5).
* pcapng: Section Header, Interface Description, Enhanced / Simple / obsolete Packet blocks,
  Decryption Secrets (TLS key logs), several sections, interfaces and link types in one file,
  both byte orders, per-interface timestamp resolution (if_tsresol) and offset (if_tsoffset).
  Source: draft-ietf-opsawg-pcapng (RFC-to-be) §4.1-4.7.

Why our own reader and not scapy's RawPcapReader: on a damaged file scapy stops at the first
bad block without telling the caller, and drops a truncated last block with only a log line.
The analyzer must say what it skipped and go on (a capture is untrusted input), and the
annotated-capture writer needs the blocks byte for byte. So this reader reports every
problem as a :class:`CaptureProblem`, resynchronises on the next plausible block after
garbage, and never holds more than one block (bounded by ``max_block``) in memory.

Frame numbers are 1-based and count packet records/blocks in file order, as Wireshark does.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

# Link-layer header types (tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_PB = 0x00000002      # obsolete Packet Block
PCAPNG_SPB = 0x00000003
PCAPNG_NRB = 0x00000004
PCAPNG_ISB = 0x00000005
PCAPNG_EPB = 0x00000006
PCAPNG_DSB = 0x0000000A     # Decryption Secrets Block
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
DSB_TLS_KEY_LOG = 0x544C534B  # "TLSK": NSS key log format

_KNOWN_BLOCKS = {PCAPNG_SHB, PCAPNG_IDB, PCAPNG_PB, PCAPNG_SPB, PCAPNG_NRB, PCAPNG_ISB,
                 PCAPNG_EPB, PCAPNG_DSB, 0x00000007, 0x00000008, 0x00000009,
                 0x00000BAD, 0x40000BAD}

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000, False),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000, False),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000, False),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000, False),
    b"\x34\xcd\xb2\xa1": ("<", 1_000_000, True),
    b"\xa1\xb2\xcd\x34": (">", 1_000_000, True),
}

#: File-name endings of the captures this reader reads (pcap, pcapng and the ``.cap`` some
#: tools give pcap files; compressed captures are not read). Folder scans (the CLI, the report
#: browser) pick files by these, matched case-insensitively.
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")

#: Largest block / record we accept. A snap length is at most 262,144 bytes in practice;
#: larger lengths are treated as corruption, which bounds memory per frame.
MAX_BLOCK = 16 << 20

_READ_CHUNK = 1 << 20


def is_capture_name(name: str) -> bool:
    """True when the file name ``name`` ends with one of :data:`CAPTURE_SUFFIXES` (any case)."""
    return name.lower().endswith(CAPTURE_SUFFIXES)


def capture_stem(name: str) -> str:
    """``name`` without its capture suffix (``run1.pcapng`` → ``run1``); unchanged when it
    has none."""
    for suf in CAPTURE_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


class CaptureError(Exception):
    """The file is not a capture we can read at all (unknown magic, empty, unreadable)."""


@dataclass(slots=True)
class Frame:
    """One captured packet.

    ``number``: 1-based frame number (Wireshark's); ``time``: capture time, epoch seconds;
    ``linktype``: LINKTYPE_* of its interface; ``data``: the captured bytes; ``orig_len``:
    length on the wire (> len(data) when the capture was cut by the snap length);
    ``interface``: pcapng interface id (0 for pcap); ``offset``: file offset of its block;
    ``block_len``: length of that block/record in the file (header included).
    """

    number: int
    time: float
    linktype: int
    data: bytes
    orig_len: int
    interface: int
    offset: int
    block_len: int


@dataclass(slots=True)
class CaptureProblem:
    """Something wrong in the file: ``offset`` (bytes), ``length`` (bytes skipped, 0 if
    none), ``reason`` (words), ``after_frame`` (number of the last good frame before it)."""

    offset: int
    length: int
    reason: str
    after_frame: int


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    resol: int = 1_000_000       # ticks per second
    offset_s: int = 0
    name: str | None = None


@dataclass
class CaptureInfo:
    """What the reader learned about the file (filled while iterating)."""

    path: str
    format: str = ""
    size: int = 0
    byte_order: str = ""
    interfaces: list[dict] = field(default_factory=list)
    linktypes: dict[int, int] = field(default_factory=dict)
    tls_key_log: list[str] = field(default_factory=list)
    problems: list[CaptureProblem] = field(default_factory=list)
    blocks_skipped: dict[str, int] = field(default_factory=dict)


class _Buffered:
    """A forward-only byte window over a binary file: bounded memory, cheap small reads."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.buf = b""
        self.start = 0      # file offset of buf[0]
        self.eof = False

    def fill(self, offset: int, n: int) -> bytes:
        """Return up to n bytes at file offset (fewer only at end of file)."""
        end = offset + n
        if offset < self.start:
            self.f.seek(offset)
            self.buf, self.start = b"", offset
        if end > self.start + len(self.buf) and not self.eof:
            keep = self.buf[offset - self.start:] if offset - self.start < len(self.buf) else b""
            if offset - self.start >= len(self.buf):
                self.f.seek(offset)
            want = max(n - len(keep), _READ_CHUNK)
            more = self.f.read(want)
            if len(more) < want:
                self.eof = True
            self.buf = keep + more
            self.start = offset
        rel = offset - self.start
        return self.buf[rel:rel + n]


class CaptureReader:
    """Iterate the frames of a pcap / pcapng file in order, in bounded memory.

    >>> reader = CaptureReader("session.pcapng")
    >>> for frame in reader: ...
    >>> reader.info.problems   # truncation, garbage skipped, unknown link types ...

    Raises :class:`CaptureError` (at construction) when the file cannot be opened or does not
    start like a pcap / pcapng file. Never raises while iterating: damage becomes a
    :class:`CaptureProblem` in ``info.problems`` and the reader goes on after it.
    """

    def __init__(self, path: str | os.PathLike, max_block: int = MAX_BLOCK):
        self.path = os.fspath(path)
        self.max_block = max_block
        try:
            self._f = open(self.path, "rb")
            size = os.fstat(self._f.fileno()).st_size
        except OSError as e:
            raise CaptureError(f"cannot open {self.path}: {e.strerror or e}") from e
        head = self._f.read(4)
        self._f.seek(0)
        self.info = CaptureInfo(path=self.path, size=size)
        if len(head) < 4:
            self._f.close()
            raise CaptureError(f"{self.path}: empty or shorter than a capture header ({size} bytes)")
        if head in _PCAP_MAGICS:
            self.info.format = "pcap"
        elif struct.unpack("<I", head)[0] == PCAPNG_SHB:
            self.info.format = "pcapng"
        else:
            self._f.close()
            raise CaptureError(f"{self.path}: not a pcap or pcapng file (starts with {head.hex()})")
        self.frames = 0
        self.bytes_read = 0

    def close(self) -> None:
        """Close the file."""
        self._f.close()

    def __enter__(self) -> "CaptureReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        try:
            if self.info.format == "pcap":
                yield from self._pcap()
            else:
                yield from self._pcapng()
        finally:
            self._f.close()

    # ------------------------------------------------------------------ helpers
    def _problem(self, offset: int, length: int, reason: str) -> None:
        self.info.problems.append(CaptureProblem(offset, length, reason, self.frames))

    def _count_linktype(self, lt: int) -> None:
        self.info.linktypes[lt] = self.info.linktypes.get(lt, 0) + 1

    # ------------------------------------------------------------------ pcap
    def _pcap(self) -> Iterator[Frame]:
        rd = _Buffered(self._f)
        hdr = rd.fill(0, 24)
        if len(hdr) < 24:
            self._problem(0, len(hdr), f"pcap file header truncated ({len(hdr)} of 24 bytes)")
            return
        bo, resol, modified = _PCAP_MAGICS[hdr[:4]]
        self.info.byte_order = "little-endian" if bo == "<" else "big-endian"
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(bo + "HHiIII", hdr[4:24])
        linktype = network & 0x0FFFFFFF
        self.info.interfaces.append({"id": 0, "linktype": linktype, "snaplen": snaplen,
                                     "ts_resolution": resol})
        rec_len = 24 if modified else 16
        rec = struct.Struct(bo + "IIII")
        limit = max(snaplen, 262144) if 0 < snaplen < self.max_block else self.max_block
        size = self.info.size
        off = 24
        prev_sec = None
        while off < size:
            h = rd.fill(off, rec_len)
            if len(h) < rec_len:
                self._problem(off, len(h), f"capture ends inside a record header "
                                            f"({len(h)} of {rec_len} bytes): file cut short")
                break
            sec, frac, incl, orig = rec.unpack_from(h)
            if incl > limit or (frac >= resol) or (incl > orig and orig != 0):
                nxt = self._pcap_resync(rd, off + 1, rec, rec_len, limit, resol, prev_sec)
                self._problem(off, (nxt if nxt is not None else size) - off,
                              f"implausible pcap record header (captured length {incl}, wire "
                              f"length {orig}, fraction {frac}); "
                              + ("skipped to the next plausible record" if nxt is not None
                                 else "no plausible record follows"))
                if nxt is None:
                    break
                off = nxt
                continue
            data = rd.fill(off + rec_len, incl)
            if len(data) < incl:
                self._problem(off, rec_len + len(data), f"capture ends inside a packet: "
                                                        f"{len(data)} of {incl} bytes present "
                                                        f"(file cut short); packet not counted")
                break
            self.frames += 1
            self._count_linktype(linktype)
            prev_sec = sec
            yield Frame(self.frames, sec + frac / resol, linktype, data, orig, 0, off, rec_len + incl)
            off += rec_len + incl
            self.bytes_read = off

    def _pcap_resync(self, rd, start, rec, rec_len, limit, resol, prev_sec):
        """Find the next offset that looks like a record followed by another record (or EOF)."""
        size = self.info.size
        off = start
        end = min(size, start + 4 * self.max_block)
        while off + rec_len <= end:
            h = rd.fill(off, rec_len)
            if len(h) < rec_len:
                return None
            sec, frac, incl, orig = rec.unpack_from(h)
            if incl <= limit and frac < resol and incl <= orig and (
                    prev_sec is None or abs(sec - prev_sec) < 86400 * 366):
                nxt = off + rec_len + incl
                if nxt == size:
                    return off
                h2 = rd.fill(nxt, rec_len)
                if len(h2) == rec_len:
                    s2, f2, i2, o2 = rec.unpack_from(h2)
                    if i2 <= limit and f2 < resol and i2 <= o2 and abs(s2 - sec) < 86400:
                        return off
            off += 1
        return None

    # ------------------------------------------------------------------ pcapng
    def _pcapng(self) -> Iterator[Frame]:
        rd = _Buffered(self._f)
        size = self.info.size
        off = 0
        bo = "<"
        ifaces: list[_Interface] = []
        section = 0
        epb_hdr = {"<": struct.Struct("<IIIIIII"), ">": struct.Struct(">IIIIIII")}
        u32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
        max_block = self.max_block
        linktypes = self.info.linktypes
        while off < size:
            # fast path: Enhanced Packet Blocks wholly inside the read buffer, one after the
            # other (the structs of the section's byte order bound once per buffer)
            buf = rd.buf
            rel = off - rd.start
            n_buf = len(buf)
            hdr_from, u32_from, n_if = epb_hdr[bo].unpack_from, u32[bo].unpack_from, len(ifaces)
            while 0 <= rel and rel + 28 <= n_buf:
                btype, blen, iid, hi, lo, cap, orig = hdr_from(buf, rel)
                if not (btype == PCAPNG_EPB and 32 <= blen <= max_block and not blen & 3
                        and rel + blen <= n_buf and iid < n_if and cap <= blen - 32
                        and u32_from(buf, rel + blen - 4)[0] == blen):
                    break
                iface = ifaces[iid]
                sec, frac = divmod((hi << 32) | lo, iface.resol)
                self.frames += 1
                lt = iface.linktype
                linktypes[lt] = linktypes.get(lt, 0) + 1
                yield Frame(self.frames, sec + iface.offset_s + frac / iface.resol, lt,
                            buf[rel + 28:rel + 28 + cap], orig, iid, off, blen)
                off += blen
                rel += blen
                self.bytes_read = off
            if off >= size:
                break
            h = rd.fill(off, 12)
            if len(h) < 8:
                self._problem(off, len(h), f"capture ends inside a block header ({len(h)} bytes): "
                                            "file cut short")
                break
            btype = struct.unpack_from(bo + "I", h)[0]
            if btype == PCAPNG_SHB:
                if len(h) < 12:
                    self._problem(off, len(h), "capture ends inside a Section Header Block")
                    break
                bom = h[8:12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    bo = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    bo = ">"
                else:
                    nxt = self._ng_resync(rd, off + 1, bo)
                    self._problem(off, (nxt or size) - off,
                                  "Section Header Block with an invalid byte-order magic"
                                  + ("; skipped to the next block" if nxt else ""))
                    if nxt is None:
                        break
                    off = nxt
                    continue
                self.info.byte_order = self.info.byte_order or (
                    "little-endian" if bo == "<" else "big-endian")
            blen = struct.unpack_from(bo + "I", h, 4)[0]
            if blen < 12 or blen % 4 or blen > self.max_block:
                nxt = self._ng_resync(rd, off + 1, bo)
                self._problem(off, (nxt if nxt is not None else size) - off,
                              f"invalid block length {blen} (block type 0x{btype:08X})"
                              + ("; skipped to the next valid block" if nxt is not None
                                 else "; nothing readable follows"))
                if nxt is None:
                    break
                off = nxt
                continue
            block = rd.fill(off, blen)
            if len(block) < blen:
                self._problem(off, len(block),
                              f"capture ends inside a block (type 0x{btype:08X}, {len(block)} of "
                              f"{blen} bytes): file cut short"
                              + ("; packet not counted" if btype in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_PB)
                                 else ""))
                break
            trail = struct.unpack_from(bo + "I", block, blen - 4)[0]
            if trail != blen:
                nxt = self._ng_resync(rd, off + 1, bo)
                self._problem(off, (nxt if nxt is not None else size) - off,
                              f"block at offset {off} (type 0x{btype:08X}) has trailing length "
                              f"{trail} != {blen}: corrupted"
                              + ("; skipped to the next valid block" if nxt is not None else ""))
                if nxt is None:
                    break
                off = nxt
                continue
            body = block[8:blen - 4]
            if btype == PCAPNG_SHB:
                section += 1
                ifaces = []
            elif btype == PCAPNG_IDB:
                ifaces.append(self._idb(body, bo, len(self.info.interfaces)))
            elif btype in (PCAPNG_EPB, PCAPNG_PB, PCAPNG_SPB):
                fr = self._packet_block(btype, body, bo, ifaces, off, blen)
                if fr is not None:
                    yield fr
            elif btype == PCAPNG_DSB:
                self._dsb(body, bo, off)
            else:
                name = {PCAPNG_NRB: "name resolution", PCAPNG_ISB: "interface statistics"}.get(
                    btype, f"type 0x{btype:08X}")
                self.info.blocks_skipped[name] = self.info.blocks_skipped.get(name, 0) + 1
            off += blen
            self.bytes_read = off

    def _idb(self, body: bytes, bo: str, global_id: int) -> _Interface:
        linktype, _res, snaplen = struct.unpack_from(bo + "HHI", body, 0) if len(body) >= 8 else (0, 0, 0)
        iface = _Interface(linktype, snaplen)
        for code, val in _options(body, 8, bo):
            if code == 9 and val:        # if_tsresol
                v = val[0]
                iface.resol = (2 ** (v & 0x7F)) if v & 0x80 else 10 ** v
            elif code == 14 and len(val) >= 8:   # if_tsoffset
                iface.offset_s = struct.unpack_from(bo + "q", val)[0]
            elif code == 2:                      # if_name
                iface.name = val.decode("utf-8", "replace")
        self.info.interfaces.append({"id": global_id, "linktype": linktype, "snaplen": snaplen,
                                     "ts_resolution": iface.resol, "name": iface.name})
        return iface

    def _packet_block(self, btype, body, bo, ifaces, off, blen) -> Frame | None:
        try:
            if btype == PCAPNG_EPB:
                iid, hi, lo, cap, orig = struct.unpack_from(bo + "IIIII", body, 0)
                data_off = 20
            elif btype == PCAPNG_PB:
                iid, _drops, hi, lo, cap, orig = struct.unpack_from(bo + "HHIIII", body, 0)
                data_off = 20
            else:  # SPB: no timestamp, interface 0, captured length = min(orig, snaplen)
                orig = struct.unpack_from(bo + "I", body, 0)[0]
                iid, hi, lo, data_off = 0, None, None, 4
                snap = ifaces[0].snaplen if ifaces else 0
                cap = min(orig, snap) if snap else min(orig, len(body) - 4)
        except struct.error:
            self._problem(off, blen, "packet block shorter than its fixed header; not counted")
            return None
        if iid >= len(ifaces):
            self._problem(off, blen, f"packet block refers to interface {iid}, which was never "
                                     "described (no Interface Description Block); not counted")
            return None
        if data_off + cap > len(body):
            self._problem(off, blen, f"packet block claims {cap} captured bytes but holds "
                                     f"{len(body) - data_off}; not counted")
            return None
        iface = ifaces[iid]
        if hi is None:
            t = 0.0
        else:
            ticks = (hi << 32) | lo
            sec, frac = divmod(ticks, iface.resol)
            t = sec + iface.offset_s + frac / iface.resol
        self.frames += 1
        self._count_linktype(iface.linktype)
        return Frame(self.frames, t, iface.linktype, bytes(body[data_off:data_off + cap]), orig,
                     iid, off, blen)

    def _dsb(self, body: bytes, bo: str, off: int) -> None:
        if len(body) < 8:
            self._problem(off, len(body), "Decryption Secrets Block too short")
            return
        stype, slen = struct.unpack_from(bo + "II", body, 0)
        secret = body[8:8 + slen]
        if stype == DSB_TLS_KEY_LOG:
            self.info.tls_key_log.extend(
                line for line in secret.decode("ascii", "replace").splitlines() if line.strip())
        else:
            self.info.blocks_skipped[f"decryption secrets 0x{stype:08X}"] = \
                self.info.blocks_skipped.get(f"decryption secrets 0x{stype:08X}", 0) + 1

    def _ng_resync(self, rd, start: int, bo: str) -> int | None:
        """Next offset >= start where a well-formed block (lengths agree) begins."""
        size = self.info.size
        off = (start + 3) & ~3          # blocks are 32-bit aligned relative to the file start
        end = min(size, start + 4 * self.max_block)
        while off + 12 <= end:
            h = rd.fill(off, 8)
            if len(h) < 8:
                return None
            btype, blen = struct.unpack_from(bo + "II", h)
            if btype in _KNOWN_BLOCKS and 12 <= blen <= self.max_block and blen % 4 == 0 \
                    and off + blen <= size:
                t = rd.fill(off + blen - 4, 4)
                if len(t) == 4 and struct.unpack_from(bo + "I", t)[0] == blen:
                    return off
            off += 4
        return None


def _options(body: bytes, start: int, bo: str):
    """Yield (code, value) of a pcapng option list (§3.5), stopping at opt_endofopt."""
    i = start
    n = len(body)
    while i + 4 <= n:
        code, ln = struct.unpack_from(bo + "HH", body, i)
        if code == 0:
            return
        yield code, body[i + 4:i + 4 + ln]
        i += 4 + ((ln + 3) & ~3)
