"""Building Ethernet / IPv6 / UDP / TCP frames with correct lengths and checksums, for the
project's own sample captures.

Sources: IEEE 802.3 (Ethernet II), RFC 8200 §3 (IPv6 header), RFC 8200 §8.1 (upper-layer
checksum pseudo-header), RFC 768 (UDP), RFC 9293 §3.1 (TCP), RFC 4291 §2.5.6 (link-local
addresses from EUI-64, the modified EUI-64 of an Ethernet MAC).
"""
from __future__ import annotations

import ipaddress
import struct

ETH_IPV6 = 0x86DD
ETH_HOMEPLUG = 0x88E1
BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1").packed
ALL_NODES_MAC = bytes.fromhex("333300000001")


def mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` → 6 bytes."""
    return bytes.fromhex(text.replace(":", ""))


def link_local(mac_bytes: bytes) -> bytes:
    """The fe80::/64 address of a MAC by modified EUI-64 (RFC 4291 §2.5.6, Appendix A)."""
    eui = bytes([mac_bytes[0] ^ 0x02]) + mac_bytes[1:3] + b"\xff\xfe" + mac_bytes[3:6]
    return b"\xfe\x80" + b"\x00" * 6 + eui


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes, pad_to_60: bool = True) -> bytes:
    """An Ethernet II frame (without FCS), padded to the 60-byte minimum when asked."""
    f = dst + src + struct.pack("!H", ethertype) + payload
    if pad_to_60 and len(f) < 60:
        f += b"\x00" * (60 - len(f))
    return f


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _pseudo(src: bytes, dst: bytes, length: int, nh: int) -> bytes:
    return src + dst + struct.pack("!IxxxB", length, nh)


def ipv6(src: bytes, dst: bytes, next_header: int, payload: bytes, hop_limit: int = 64) -> bytes:
    """An IPv6 header + payload (RFC 8200 §3)."""
    return struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit) + src + dst + payload


def udp(src_ip: bytes, dst_ip: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP datagram over IPv6 with its checksum (RFC 768, RFC 8200 §8.1)."""
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    c = _checksum(_pseudo(src_ip, dst_ip, length, 17) + hdr + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, c) + payload


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp(src_ip: bytes, dst_ip: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"", window: int = 65535, mss: int | None = None) -> bytes:
    """A TCP segment over IPv6 with its checksum (RFC 9293 §3.1); an MSS option on SYNs."""
    opts = struct.pack("!BBH", 2, 4, mss) if mss else b""
    off = (20 + len(opts)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      off << 4, flags, window, 0, 0) + opts
    c = _checksum(_pseudo(src_ip, dst_ip, len(hdr) + len(payload), 6) + hdr + payload)
    hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
    return hdr + payload


def v2gtp(payload_type: int, payload: bytes) -> bytes:
    """A V2GTP message: version 0x01, inverse 0xFE, payload type, length (ISO 15118-2 §7.8.3)."""
    return struct.pack("!BBHI", 0x01, 0xFE, payload_type, len(payload)) + payload
