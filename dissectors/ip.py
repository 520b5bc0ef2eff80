"""IPv6 (with extension headers) and IPv4, down to the transport protocol and its payload.

Sources: RFC 8200 §4 (IPv6 extension headers: Hop-by-Hop 0, Routing 43, Fragment 44,
Destination Options 60, AH 51 per RFC 4302), RFC 791 (IPv4). V2G traffic is IPv6 link-local
(ISO 15118-2 §7.6, [V2G2-139]); IPv4 is decoded too for lab captures.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
_EXT_HEADERS = {0, 43, 60}


class IpPacket(NamedTuple):
    """``version`` (4 or 6), ``src``/``dst`` (packed address bytes), ``proto`` (next header
    after extension headers), ``payload`` (transport bytes, cut to the IP length)."""

    version: int
    src: bytes
    dst: bytes
    proto: int
    payload: bytes


def ip_text(addr: bytes) -> str:
    """Packed IPv4/IPv6 address → compressed text (``fe80::1``)."""
    return ipaddress.ip_address(addr).compressed


def parse_ip(data: bytes, offset: int = 0) -> IpPacket | str:
    """Decode the IP header at ``offset``. Returns an :class:`IpPacket`, or a string saying
    why the packet cannot be read (truncated, fragment, bad version)."""
    n = len(data) - offset
    if n < 1:
        return "IP header missing"
    v = data[offset] >> 4
    if v == 6:
        if n < 40:
            return f"IPv6 header truncated ({n} of 40 bytes)"
        plen = (data[offset + 4] << 8) | data[offset + 5]
        nh = data[offset + 6]
        src = data[offset + 8:offset + 24]
        dst = data[offset + 24:offset + 40]
        start = offset + 40
        end = start + plen if plen else len(data)
        if end > len(data):
            return f"IPv6 payload truncated ({len(data) - start} of {plen} bytes captured)"
        p = start
        for _ in range(16):
            if nh in _EXT_HEADERS:
                if end - p < 2:
                    return "IPv6 extension header truncated"
                nh, p = data[p], p + (data[p + 1] + 1) * 8
            elif nh == 51:   # AH: length in 4-byte units minus 2
                if end - p < 2:
                    return "IPv6 AH header truncated"
                nh, p = data[p], p + (data[p + 1] + 2) * 4
            elif nh == 44:
                if end - p < 8:
                    return "IPv6 fragment header truncated"
                frag = struct.unpack_from("!H", data, p + 2)[0]
                if frag & 0xFFF9:
                    return "IPv6 fragment (fragment reassembly is not supported)"
                nh, p = data[p], p + 8
            else:
                break
        if p > end:
            return "IPv6 extension headers run past the payload"
        return IpPacket(6, src, dst, nh, data[p:end])
    if v == 4:
        if n < 20:
            return f"IPv4 header truncated ({n} of 20 bytes)"
        ihl = (data[offset] & 0x0F) * 4
        total = (data[offset + 2] << 8) | data[offset + 3]
        frag = (data[offset + 6] << 8) | data[offset + 7]
        if ihl < 20 or n < ihl:
            return "IPv4 header length invalid"
        if frag & 0x3FFF:
            return "IPv4 fragment (fragment reassembly is not supported)"
        end = offset + total if total else len(data)
        if end > len(data):
            return f"IPv4 payload truncated ({len(data) - offset} of {total} bytes captured)"
        return IpPacket(4, data[offset + 12:offset + 16], data[offset + 16:offset + 20],
                        data[offset + 9], data[offset + ihl:end])
    return f"IP version {v}"
