"""The annotated capture: a copy of a capture whose packets carry the findings as pcapng packet
comments, so Wireshark shows them (``frame.comment``, Expert Info "Comment").

Every block is copied byte for byte except the packet blocks of frames that get a comment:
those are rewritten as Enhanced Packet Blocks with the same interface, timestamp, captured
and original length, packet bytes and existing options, plus one ``opt_comment`` option per
finding (pcapng draft §4.3 EPB options, §3.5 opt_comment = 1). A Simple Packet Block or an
obsolete Packet Block that needs a comment becomes an EPB (the packet bytes do not change).
A pcap input becomes a pcapng with one Interface Description Block (same link type, snap
length and timestamp resolution) and one EPB per packet.

Comment text: ``ccs-analyzer F3 PRE001 error (SECC): <synopsis>``.
"""
from __future__ import annotations

import os
import struct

from ccs_analyzer.dissectors.capture import PCAPNG_EPB, PCAPNG_PB, PCAPNG_SHB, PCAPNG_SPB, CaptureReader
from ccs_analyzer.dissectors.pcapng_writer import OPT_COMMENT, PcapngWriter, enhanced_packet_block, option


def comments_by_frame(findings) -> dict[int, list[str]]:
    """frame number → comment lines (one per finding that cites the frame)."""
    out: dict[int, list[str]] = {}
    for f in findings:
        text = f"ccs-analyzer {f.id} {f.rule} {f.severity} ({f.culprit}): {f.synopsis}"
        for fr in sorted(set(f.frames)):
            out.setdefault(fr, []).append(text)
    return out


def _options_of(body: bytes, start: int, bo: str) -> bytes:
    """The option bytes of a block body from ``start``, without the end-of-options marker."""
    out = b""
    i = start
    while i + 4 <= len(body):
        code, ln = struct.unpack_from(bo + "HH", body, i)
        if code == 0:
            break
        total = 4 + ln + (-ln % 4)
        out += body[i:i + total]
        i += total
    return out


def annotate(src: str | os.PathLike, dst: str | os.PathLike, findings) -> int:
    """Write the annotated copy of ``src`` to ``dst``; return the number of frames that got
    comments. Raises CaptureError / OSError like the reader."""
    notes = comments_by_frame(findings)
    reader = CaptureReader(src)
    if reader.info.format == "pcap":
        reader.close()
        return _from_pcap(src, dst, notes)
    reader.close()
    return _from_pcapng(src, dst, notes)


#: The Section Header Block's type, 0x0A0D0D0A: a palindrome, so that a reader finds it before
#: it knows the section's byte order (pcapng, draft-ietf-opsawg-pcapng §4.1).
_SHB_TYPE = struct.pack("<I", PCAPNG_SHB)


def _from_pcapng(src, dst, notes) -> int:
    done = 0
    frame = 0
    bo = "<"
    with open(src, "rb") as f, open(dst, "wb") as out:
        while True:
            head = f.read(8)
            if len(head) < 8:
                out.write(head)
                break
            if head[:4] == _SHB_TYPE:     # reads the same in either byte order (pcapng §4.1)
                btype = PCAPNG_SHB
                bom = f.read(4)
                bo = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
                f.seek(-4, 1)
            else:                         # every other block in its section's byte order
                btype = struct.unpack(bo + "I", head[:4])[0]
            blen = struct.unpack(bo + "I", head[4:8])[0]
            if blen < 12 or blen % 4:
                # damaged: copy the rest as it is (the reader reports the damage)
                out.write(head + f.read())
                break
            body = f.read(blen - 8)
            block = head + body
            if btype not in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_PB) or len(block) < blen:
                out.write(block)
                if len(block) < blen:
                    break
                continue
            frame += 1
            lines = notes.get(frame)
            if not lines:
                out.write(block)
                continue
            b = block[8:blen - 4]
            if btype == PCAPNG_EPB:
                iface, hi, lo, cap, orig = struct.unpack_from(bo + "IIIII", b, 0)
                pkt = b[20:20 + cap]
                opts = _options_of(b, 20 + cap + (-cap % 4), bo)
            elif btype == PCAPNG_PB:
                iface, _drops, hi, lo, cap, orig = struct.unpack_from(bo + "HHIIII", b, 0)
                pkt = b[20:20 + cap]
                opts = _options_of(b, 20 + cap + (-cap % 4), bo)
            else:  # SPB: no timestamp; captured length is what the block holds
                orig = struct.unpack_from(bo + "I", b, 0)[0]
                pkt = b[4:4 + min(orig, len(b) - 4)]
                iface, hi, lo, opts = 0, 0, 0, b""
            opts += b"".join(option(OPT_COMMENT, line.encode("utf-8"), bo) for line in lines)
            out.write(enhanced_packet_block(iface, hi, lo, pkt, orig, opts, bo))
            done += 1
    return done


def _from_pcap(src, dst, notes) -> int:
    reader = CaptureReader(src)
    frames = iter(reader)
    first = next(frames, None)           # reading the first frame fills reader.info
    info = reader.info
    iface = info.interfaces[0] if info.interfaces else {"linktype": 1, "snaplen": 262144,
                                                        "ts_resolution": 1_000_000}
    resol = iface["ts_resolution"]
    exp = 9 if resol == 1_000_000_000 else 6
    hdr = struct.Struct(("<" if info.byte_order == "little-endian" else ">") + "II")
    done = 0
    with open(src, "rb") as raw, open(dst, "wb") as out:
        w = PcapngWriter(out, tsresol_exp=exp)
        w.add_interface(iface["linktype"], iface.get("snaplen") or 262144)
        for fr in ([first] if first else []):
            done += _write_pcap_frame(w, raw, hdr, fr, notes)
        for fr in frames:
            done += _write_pcap_frame(w, raw, hdr, fr, notes)
    return done


def _write_pcap_frame(w, raw, hdr, fr, notes) -> int:
    """Copy one pcap record as an EPB with its exact timestamp (re-read from the record
    header: a float time would lose nanoseconds)."""
    raw.seek(fr.offset)
    sec, frac = hdr.unpack(raw.read(8))
    lines = notes.get(fr.number, [])
    w.write_ticks(sec * 10 ** w.tsresol_exp + frac, fr.data, orig_len=fr.orig_len, comments=lines)
    return 1 if lines else 0
