"""Link layers: Ethernet II with 802.1Q / 802.1ad tags, Linux cooked capture (v1, v2),
BSD loopback, and raw IP — down to an ethertype and its payload.

Sources: IEEE 802.3 §3.2 (Ethernet II), IEEE 802.1Q §9.6 (C-tag 0x8100, S-tag 0x88A8, and the
pre-standard 0x9100), tcpdump.org LINKTYPE_LINUX_SLL / LINKTYPE_LINUX_SLL2 / LINKTYPE_NULL /
LINKTYPE_LOOP header descriptions.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from .capture import (LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL,
                      LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_HOMEPLUG_AV = 0x88E1       # HomePlug AV / GreenPHY MME (ISO 15118-3 SLAC)
ETHERTYPE_HOMEPLUG_1_0 = 0x887B
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)

#: BSD address-family values that mean IPv6 on the various platforms (LINKTYPE_NULL/LOOP)
_AF_INET6 = {10, 24, 28, 30}

SUPPORTED_LINKTYPES = {LINKTYPE_ETHERNET: "Ethernet", LINKTYPE_LINUX_SLL: "Linux cooked v1",
                       LINKTYPE_LINUX_SLL2: "Linux cooked v2", LINKTYPE_NULL: "BSD loopback",
                       LINKTYPE_LOOP: "OpenBSD loopback", LINKTYPE_RAW: "raw IP",
                       LINKTYPE_IPV4: "raw IPv4", LINKTYPE_IPV6: "raw IPv6"}


class LinkFrame(NamedTuple):
    """A frame's link layer: ``src``/``dst`` MAC as 6 bytes (None when the link type has
    none), ``ethertype``, ``offset`` of the payload in the frame, ``vlan`` (outermost VLAN
    id or None)."""

    src: bytes | None
    dst: bytes | None
    ethertype: int
    offset: int
    vlan: int | None


def mac_text(mac: bytes | None) -> str | None:
    """6 bytes → ``aa:bb:cc:dd:ee:ff`` (None stays None)."""
    return None if mac is None else mac.hex(":")


def parse_link(linktype: int, data: bytes) -> LinkFrame | str:
    """Decode the link header of a frame. Returns a :class:`LinkFrame`, or a string saying
    why the frame cannot be read (unsupported link type, truncated header)."""
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return f"Ethernet header truncated ({len(data)} of 14 bytes)"
        et = (data[12] << 8) | data[13]
        off = 14
        vlan = None
        while et in _VLAN_TAGS:
            if len(data) < off + 4:
                return "802.1Q tag truncated"
            if vlan is None:
                vlan = ((data[off] << 8) | data[off + 1]) & 0x0FFF
            et = (data[off + 2] << 8) | data[off + 3]
            off += 4
        if et <= 1500:
            return f"IEEE 802.3 length field ({et}) with LLC, not Ethernet II"
        return LinkFrame(data[6:12], data[0:6], et, off, vlan)
    if linktype == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return "Linux cooked header truncated"
        _ptype, arphrd, alen = struct.unpack_from("!HHH", data, 0)
        et = (data[14] << 8) | data[15]
        src = data[6:12] if alen == 6 and arphrd in (1, 772) else None
        return LinkFrame(src, None, et, 16, None)
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return "Linux cooked v2 header truncated"
        et = (data[0] << 8) | data[1]
        alen = data[11]
        src = data[12:18] if alen == 6 else None
        return LinkFrame(src, None, et, 20, None)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 4:
            return "loopback header truncated"
        fam_le = struct.unpack_from("<I", data)[0]
        fam_be = struct.unpack_from(">I", data)[0]
        fam = fam_be if linktype == LINKTYPE_LOOP else (fam_le if fam_le < 256 else fam_be)
        et = ETHERTYPE_IPV6 if fam in _AF_INET6 else ETHERTYPE_IPV4 if fam == 2 else 0
        if not et:
            return f"loopback address family {fam} is not IP"
        return LinkFrame(None, None, et, 4, None)
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not data:
            return "empty raw IP frame"
        v = data[0] >> 4
        et = ETHERTYPE_IPV6 if v == 6 else ETHERTYPE_IPV4 if v == 4 else 0
        if not et:
            return f"raw IP frame with IP version {v}"
        return LinkFrame(None, None, et, 0, None)
    return f"link type {linktype} is not supported"
