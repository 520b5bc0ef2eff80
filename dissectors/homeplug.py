"""HomePlug AV / GreenPHY management messages (MMEs, ethertype 0x88E1), every ISO 15118-3 SLAC message.

Input is the Ethernet payload after the ethertype. Header (HomePlug AV 1.1 / 2.1 §11.1, Green PHY
1.1; PROTOCOL_FACTS §2.1)::

    offset  size  field
    0       1     MMV       management message version: 0x00 = AV 1.0 (no FMI), 0x01 = AV 1.1
                            (GreenPHY, ISO 15118-3 SLAC), 0x02 = AV 2.0
    1       2     MMTYPE    little-endian; low 2 bits 0 .REQ, 1 .CNF, 2 .IND, 3 .RSP
    3       2     FMI       only when MMV >= 1: byte 0 = NF_MI (high nibble, fragments - 1) and
                            FN_MI (low nibble, fragment number), byte 1 = FMSN (sequence number)
                            (Wireshark packet-homeplug-av.c, EVerest slac.hpp ``fmni, fmsn``;
                            ⚠ open-plc-utils mme.h declares the two bytes as FMSN, FMID)
    3|5     3     OUI       only when MMTYPE >= 0x8000 (manufacturer 0x8000-0x9FFF / vendor
                            0xA000-0xBFFF specific MMEs)
    ...           MMENTRY   the message body; every table below counts offsets from its start

Each message body is a table in the style of dpkt / scapy ``fields_desc``: ``(offset, size,
name, decoder)``. Names are the standard's (ISO 15118-3 Annex A.9 message tables, HomePlug AV 2.1
Table 11-x); decoders: ``U8`` int, ``LE16``/``S16`` little-endian int, ``MAC`` "aa:bb:cc:dd:ee:ff",
``HEX`` lowercase hex (IDs, keys, nonces, RunID), ``RSVD`` reserved bytes (skipped). Fixed parts are
read with one precompiled :class:`struct.Struct`; variable parts (AAG lists, cipher suites, the
amplitude map, vendor strings) by a small ``tail`` function per message. Sources, by the keys of
PROTOCOL_FACTS §0: E-SLAC = EVerest libslac ``include/slac/slac.hpp``, OPU = qca/open-plc-utils
``slac/slac.h`` and ``plc/*.c``, PYPLC = uhi22/pyPLC ``pyPlcHomeplug.py``, PYSLAC = pyslac
``enums.py``, DSV = dsV2Gshark ``v2ghpscs.lua``. The ISO 15118-3 text itself was not available;
where only implementations agree the table says so.

Where sources disagree (⚠):

* CM_SLAC_PARM.REQ/.CNF cipher fields: ISO 15118-3 carries CipherSuiteSetSize/CipherSuite[] (REQ)
  and CipherSuite (CNF) only when SECURITY_TYPE = 0x01; OPU's structs (what the QCA reference
  tools and modem firmware send and log) always carry them, zero-filled when SECURITY_TYPE = 0,
  which on the wire cannot be told from the Ethernet minimum-frame padding. Both layouts are
  therefore decoded the same way: cipher fields only when SECURITY_TYPE = 0x01.
* CM_SET_KEY.CNF Result: HomePlug AV says 0x00 = success; PYPLC observed QCA modems that answer
  0x01 when they did accept the key (they restart to apply it) and 0x00 when they did not. The
  decoder reports the byte as sent.
* CM_GET_KEY.REQ: PYPLC notes that HomePlug AV 2.1 Table 11-91 lists the fields in another order
  and that real modems accept NID directly after RequestedKeyType (the layout used here).
* RESP_TYPE in CM_SLAC_PARM.CNF: ISO 15118-3 fixes 0x01 (other GP station); OPU's example EVSE
  sends 0x00 (PYSLAC comment). Values are reported as sent.
* CM_ATTEN_PROFILE.IND is defined by ISO 15118-3, not by the GreenPHY specification (E-SLAC).

Contract: :func:`decode_mme` never raises; malformed input gives an :class:`Mme` whose ``error``
says what is wrong, with whatever fields could be read.
"""
from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, NamedTuple

from .events import (CP_STATE_SPIDCOM, CP_STATE_ST, MME_HEADER_TRUNCATED, NOT_AN_MME,
                     SCS_DIAG_DSPACE)

ETHERTYPE_HOMEPLUG_AV = 0x88E1

#: Suffix of an MMTYPE from its two low bits (HomePlug AV 2.1 §11.1.3; PROTOCOL_FACTS §2.1).
SUFFIX = ("REQ", "CNF", "IND", "RSP")

# ------------------------------------------------------------------------------------------------
# MMTYPE names

#: Base MMTYPE → name: HomePlug AV 2.1 Table 11-2 (CC_* 0x0000-0x1FFF station-CCo, CP_* 0x2000-0x3FFF
#: proxy, NN_* 0x4000-0x5FFF CCo-CCo, CM_* 0x6000-0x7FFF station-station), GreenPHY 1.1 and
#: ISO 15118-3 (CM_SLAC_* / ATTEN / MNBC / VALIDATE / ATTEN_PROFILE). Spellings are those of the
#: reference decoder (shared/tools/reference_decode.py), which the fidelity check compares.
HPAV_BASE: dict[int, str] = {
    0x0000: "CC_CCO_APPOINT", 0x0004: "CC_BACKUP_APPOINT", 0x0008: "CC_LINK_INFO",
    0x000C: "CC_HANDOVER", 0x0010: "CC_HANDOVER_INFO", 0x0014: "CC_DISCOVER_LIST",
    0x0018: "CC_LINK_NEW", 0x001C: "CC_LINK_MOD", 0x0020: "CC_LINK_SQZ",
    0x0024: "CC_LINK_REL", 0x0028: "CC_DETECT_REPORT", 0x002C: "CC_WHO_RU",
    0x0030: "CC_ASSOC", 0x0034: "CC_LEAVE", 0x0038: "CC_SET_TEI_MAP", 0x003C: "CC_RELAY",
    0x0040: "CC_BEACON_RELIABILITY", 0x0044: "CC_ALLOC_MOVE", 0x0048: "CC_ACCESS_NEW",
    0x004C: "CC_ACCESS_REL", 0x0050: "CC_DCPPC", 0x0054: "CC_HP1_DET",
    0x0058: "CC_BLE_UPDATE", 0x005C: "CC_BCAST_REPEAT", 0x0060: "CC_MH_LINK_NEW",
    0x0064: "CC_ISP_DETECTION_REPORT", 0x0068: "CC_ISP_START_RESYNC",
    0x006C: "CC_ISP_FINISH_RESYNC", 0x0070: "CC_ISP_RESYNC_DETECTED",
    0x0074: "CC_ISP_RESYNC_TRANSMIT", 0x0078: "CC_POWERSAVE", 0x007C: "CC_POWERSAVE_EXIT",
    0x0080: "CC_POWERSAVE_LIST", 0x0084: "CC_STOP_POWERSAVE",
    0x2000: "CP_PROXY_APPOINT", 0x2004: "PH_PROXY_APPOINT", 0x2008: "CP_PROXY_WAKE",
    0x4000: "NN_INL", 0x4004: "NN_NEW_NET", 0x4008: "NN_ADD_ALLOC", 0x400C: "NN_REL_ALLOC",
    0x4010: "NN_REL_NET",
    0x6000: "CM_UNASSOCIATED_STA", 0x6004: "CM_ENCRYPTED_PAYLOAD", 0x6008: "CM_SET_KEY",
    0x600C: "CM_GET_KEY", 0x6010: "CM_SC_JOIN", 0x6014: "CM_CHAN_EST",
    0x6018: "CM_TM_UPDATE", 0x601C: "CM_AMP_MAP", 0x6020: "CM_BRG_INFO",
    0x6024: "CM_CONN_NEW", 0x6028: "CM_CONN_REL", 0x602C: "CM_CONN_MOD",
    0x6030: "CM_CONN_INFO", 0x6034: "CM_STA_CAP", 0x6038: "CM_NW_INFO",
    0x603C: "CM_GET_BEACON", 0x6040: "CM_HFID", 0x6044: "CM_MME_ERROR",
    0x6048: "CM_NW_STATS", 0x604C: "CM_LINK_STATS", 0x6050: "CM_ROUTE_INFO",
    0x6054: "CM_UNREACHABLE", 0x6058: "CM_MH_CONN_NEW", 0x605C: "CM_EXTENDED_TONEMASK",
    0x6060: "CM_STA_IDENTIFY",
    0x6064: "CM_SLAC_PARM", 0x6068: "CM_START_ATTEN_CHAR", 0x606C: "CM_ATTEN_CHAR",
    0x6070: "CM_PKCS_CERT", 0x6074: "CM_MNBC_SOUND", 0x6078: "CM_VALIDATE",
    0x607C: "CM_SLAC_MATCH", 0x6080: "CM_SLAC_USER_DATA", 0x6084: "CM_ATTEN_PROFILE",
}

OUI_QUALCOMM = "00b052"
OUI_ST = "0080e1"
OUI_SPIDCOM = "0013d7"
OUI_DSPACE = "644d70"

#: Qualcomm Atheros (OUI 00:B0:52) vendor-specific MMEs, base MMTYPE → name (OPU mme/MMEName.c,
#: mme/qualcomm.h; Wireshark packet-homeplug-av.c).
QCA_BASE: dict[int, str] = {
    0xA000: "VS_SW_VER", 0xA004: "VS_WR_MEM", 0xA008: "VS_RD_MEM", 0xA00C: "VS_ST_MAC",
    0xA010: "VS_GET_NVM", 0xA014: "VS_RSVD_1", 0xA018: "VS_RSVD_2", 0xA01C: "VS_RS_DEV",
    0xA020: "VS_WR_MOD", 0xA024: "VS_RD_MOD", 0xA028: "VS_MOD_NVM", 0xA02C: "VS_WD_RPT",
    0xA030: "VS_LNK_STATS", 0xA034: "VS_SNIFFER", 0xA038: "VS_NW_INFO",
    0xA03C: "VS_RSVD_3", 0xA040: "VS_CP_RPT", 0xA044: "VS_ARPC", 0xA048: "VS_FR_LBK",
    0xA04C: "VS_LBK_STAT", 0xA050: "VS_SET_KEY", 0xA054: "VS_MFG_STRING",
    0xA058: "VS_RD_CBLOCK", 0xA05C: "VS_SET_SDRAM", 0xA060: "VS_HOST_ACTION",
    0xA064: "VS_RSVD_4", 0xA068: "VS_OP_ATTRIBUTES", 0xA06C: "VS_ENET_SETTINGS",
    0xA070: "VS_TONE_MAP_CHAR", 0xA074: "VS_NW_INFO_STATS", 0xA078: "VS_SLAVE_MEM",
    0xA07C: "VS_FAC_DEFAULTS", 0xA080: "VS_RSVD_5", 0xA084: "VS_MULTICAST_INFO",
    0xA088: "VS_CLASSIFICATION", 0xA08C: "VS_RSVD_6", 0xA090: "VS_RX_TONE_MAP_CHAR",
    0xA094: "VS_SET_LED_BEHAVIOR", 0xA098: "VS_WRITE_AND_EXECUTE_APPLET",
    0xA09C: "VS_MDIO_COMMAND", 0xA0A0: "VS_SLAVE_REG", 0xA0A4: "VS_BANDWIDTH_LIMITING",
    0xA0A8: "VS_SNID_OPERATION", 0xA0AC: "VS_NN_MITIGATE", 0xA0B0: "VS_MODULE_OPERATION",
    0xA0B4: "VS_DIAG_NETWORK_PROBE", 0xA0B8: "VS_PL_LINK_STATUS", 0xA0BC: "VS_GPIO_STATE_CHANGE",
    0xA0C0: "VS_CONN_ADD", 0xA0C4: "VS_CONN_MOD", 0xA0C8: "VS_CONN_REL",
    0xA0CC: "VS_CONN_INFO", 0xA0D0: "VS_MULTIPORT_LNK_STA", 0xA0DC: "VS_EM_ID_TABLE",
    0xA0E0: "VS_STANDBY", 0xA0E4: "VS_SLEEPSCHEDULE", 0xA0E8: "VS_SLEEPSCHEDULE_NOTIFICATION",
    0xA0F0: "VS_MICROCONTROLLER_DIAG", 0xA0F8: "VS_GET_PROPERTY", 0xA100: "VS_SET_PROPERTY",
    0xA104: "VS_PHYSWITCH_MDIO", 0xA10C: "VS_SELFTEST_ONETIME_CONFIG",
    0xA110: "VS_SELFTEST_RESULTS", 0xA114: "VS_MDU_TRAFFIC_STATS", 0xA118: "VS_FORWARD_CONFIG",
    0xA200: "VS_HYBRID_INFO",
}

#: Vendor MMEs that CCS tooling uses, (MMTYPE, OUI) → full name (names as dsV2Gshark's
#: v2ghpscs.lua and the reference decoder print them). Some QCA modems send 0xA14E with OUI 000000.
VENDOR_MME: dict[tuple[int, str], str] = {
    (0xA14E, OUI_QUALCOMM): "VS_ATTENUATION_CHARACTERISTICS.IND",
    (0xA14E, "000000"): "VS_ATTENUATION_CHARACTERISTICS.IND",
    (0xA22E, OUI_ST): CP_STATE_ST,
    (0xA10E, OUI_SPIDCOM): CP_STATE_SPIDCOM,
    (0x8002, OUI_DSPACE): SCS_DIAG_DSPACE,
}

#: IEEE OUI → vendor name, for naming unknown vendor MMEs.
OUI_NAMES: dict[str, str] = {
    OUI_QUALCOMM: "Qualcomm Atheros", OUI_ST: "STMicroelectronics", OUI_SPIDCOM: "SPiDCOM",
    "00016d": "Intellon", "001f84": "Gigle", "00e0d1": "IoTecha", "c0e54e": "Vertexcom",
    OUI_DSPACE: "dSPACE",
}

#: The ISO 15118-3 SLAC messages (exactly the MMTYPEs the standard defines; PROTOCOL_FACTS §2.2).
SLAC_MMTYPES = frozenset({0x6064, 0x6065, 0x606A, 0x606E, 0x606F, 0x6076, 0x6078, 0x6079,
                          0x607C, 0x607D, 0x6086})

#: Which side normally sends a message (ISO 15118-3 matching sequence, PROTOCOL_FACTS §2.3):
#: "EV", "EVSE", or "host-modem" for traffic between a host and its own PLC modem (CM_SET_KEY,
#: CM_GET_KEY, CM_ATTEN_PROFILE.IND from the EVSE modem to the EVSE host, vendor MMEs).
_DIRECTION: dict[int, str] = {
    0x6064: "EV", 0x6065: "EVSE", 0x606A: "EV", 0x6076: "EV", 0x606E: "EVSE", 0x606F: "EV",
    0x6078: "EV", 0x6079: "EVSE", 0x607C: "EV", 0x607D: "EVSE",
    0x6086: "host-modem", 0x6008: "host-modem", 0x6009: "host-modem",
    0x600C: "host-modem", 0x600D: "host-modem",
}
_HOST_MODEM_OUIS = frozenset({OUI_QUALCOMM, "000000", OUI_ST, OUI_SPIDCOM})


@lru_cache(maxsize=4096)
def mmtype_name(mmtype: int, oui: str | None = None) -> str:
    """Name of an MMTYPE in the standard's words: ``CM_SLAC_PARM.REQ``, ``VS_NW_INFO.CNF``.

    ``mmtype``: 16-bit MMTYPE (int, as decoded little-endian from the wire); ``oui``: 6 lowercase
    hex digits of a vendor MME's OUI (MMTYPE >= 0x8000), else None.

    * below 0x8000: base name from :data:`HPAV_BASE` (HomePlug AV 2.1 Table 11-2, GreenPHY,
      ISO 15118-3) + ``.REQ/.CNF/.IND/.RSP`` from the two low bits; unknown codes give
      ``UNKNOWN_0x6088``;
    * vendor MMEs: :data:`VENDOR_MME` names, the Qualcomm ``VS_*`` family (:data:`QCA_BASE`),
      otherwise ``VS_0xA123(Qualcomm Atheros)`` / ``MS_0x8123(OUI 123456)`` (MS below 0xA000),
      with the vendor's name when the OUI is in :data:`OUI_NAMES`.

    Never raises for ints in 0..0xFFFF.
    """
    base, sub = mmtype & ~3, mmtype & 3
    if mmtype < 0x8000:
        n = HPAV_BASE.get(base)
        return f"{n}.{SUFFIX[sub]}" if n else f"UNKNOWN_0x{mmtype:04X}"
    if (mmtype, oui) in VENDOR_MME:
        return VENDOR_MME[(mmtype, oui)]
    if oui == OUI_QUALCOMM and base in QCA_BASE:
        return f"{QCA_BASE[base]}.{SUFFIX[sub]}"
    pre = "MS" if mmtype < 0xA000 else "VS"
    vendor = OUI_NAMES.get(oui or "", "OUI " + (oui or "?"))
    return f"{pre}_0x{mmtype:04X}({vendor})"


_GENERIC_MME_NAME = re.compile(r"UNKNOWN_0x[0-9A-F]{4}|(?:MS|VS)_0x[0-9A-F]{4}\((?:OUI [0-9a-f]{6}|OUI \?|(.+))\)")


@lru_cache(maxsize=1)
def _table_mme_names() -> frozenset[str]:
    return frozenset([f"{n}.{s}" for n in (*HPAV_BASE.values(), *QCA_BASE.values()) for s in SUFFIX]
                     + list(VENDOR_MME.values()))


def is_mme_name(name: str) -> bool:
    """Whether ``name`` is one :func:`mmtype_name` gives: a name of the tables
    (:data:`HPAV_BASE`, :data:`QCA_BASE` with their suffixes, :data:`VENDOR_MME`) or a
    generic ``UNKNOWN_0x6088`` / ``VS_0xA123(vendor)`` / ``MS_0x8123(OUI 123456)`` name —
    the membership rule of the HomePlug MME event family (dissectors/events.py)."""
    if name in _table_mme_names():
        return True
    m = _GENERIC_MME_NAME.fullmatch(name)
    return m is not None and (m.group(1) is None or m.group(1) in OUI_NAMES.values())


def direction_hint(mmtype: int, oui: str | None = None) -> str | None:
    """Which side normally sends this MME: ``"EV"``, ``"EVSE"``, ``"host-modem"`` or None.

    EV sends CM_SLAC_PARM.REQ, CM_START_ATTEN_CHAR.IND, CM_MNBC_SOUND.IND, CM_ATTEN_CHAR.RSP,
    CM_VALIDATE.REQ, CM_SLAC_MATCH.REQ; the EVSE answers with the .CNF / CM_ATTEN_CHAR.IND
    (ISO 15118-3 Annex A.9 sequence; PROTOCOL_FACTS §2.3). CM_SET_KEY / CM_GET_KEY (a host and its
    own modem), CM_ATTEN_PROFILE.IND (EVSE modem → EVSE host, E-SLAC, DSV) and the Qualcomm / ST /
    SPiDCOM vendor MMEs are ``"host-modem"``. Everything else (modem-to-modem CC_*/CM_* traffic,
    CM_AMP_MAP whose sender is not pinned down, test-tool diagnostics) is None.
    """
    d = _DIRECTION.get(mmtype)
    if d is not None:
        return d
    if mmtype >= 0xA000 and oui in _HOST_MODEM_OUIS:
        return "host-modem"
    return None


# ------------------------------------------------------------------------------------------------
# Field tables

U8, LE16, S16, MAC, HEX, RSVD = "u8", "le16", "s16", "mac", "hex", "rsvd"
_FMT = {U8: "B", LE16: "H", S16: "h"}


class Field(NamedTuple):
    """One row of a message table: ``offset`` and ``size`` in bytes from the MMENTRY start,
    ``name`` (the standard's), ``kind`` (decoder: U8, LE16, S16, MAC, HEX or RSVD)."""

    offset: int
    size: int
    name: str
    kind: str


#: A tail decodes the variable part after the fixed table: ``tail(layout, buf, off, fields, mmv)``
#: adds to ``fields`` and returns an error string or None. ``off`` is the MMENTRY start in buf.
Tail = Callable[["Layout", bytes, int, dict, int], "str | None"]


def _mac(b: bytes) -> str:
    return b.hex(":")


def _hex(b: bytes) -> str:
    return b.hex()


_CONV = {MAC: _mac, HEX: _hex}


class Layout:
    """A message body: its fixed field table, compiled into one :class:`struct.Struct`, plus an
    optional variable ``tail``. ``nominal_size`` is the size of a complete body with the usual
    variable part (e.g. 58 AAG groups) and is used in truncation messages. ``source`` names the
    standard table / implementation the layout comes from."""

    __slots__ = ("name", "fields", "tail", "source", "fixed_size", "nominal_size",
                 "_struct", "_names", "_convs")

    def __init__(self, name: str, fields: tuple[Field, ...], source: str,
                 tail: Tail | None = None, nominal_size: int | None = None):
        self.name, self.fields, self.tail, self.source = name, fields, tail, source
        fmt, pos, names, convs = ["<"], 0, [], []
        for f in fields:
            if f.offset != pos:
                raise ValueError(f"{name}: field {f.name} at {f.offset}, expected {pos}")
            if f.kind == RSVD:
                fmt.append(f"{f.size}x")
            else:
                fmt.append(_FMT.get(f.kind) or f"{f.size}s")
                if f.kind in _CONV:
                    convs.append((f.name, _CONV[f.kind]))
                names.append(f.name)
            pos += f.size
        self.fixed_size = pos
        self.nominal_size = nominal_size if nominal_size is not None else pos
        self._struct = struct.Struct("".join(fmt))
        self._names = tuple(names)
        self._convs = tuple(convs)

    def describe(self) -> str:
        """The table as text: name and source, then one line per field (offset, size, name, decoder)."""
        rows = [f"    {f.offset:<4} {f.size:<3} {f.name:<20} {f.kind}" for f in self.fields]
        if self.tail is not None:
            rows.append(f"    {self.fixed_size:<4} ... variable part: "
                        + (self.tail.__doc__ or "").strip().split("\n")[0])
        return "\n".join([f"{self.name}  (source: {self.source})", *rows])

    def decode(self, buf: bytes, off: int, mmv: int) -> tuple[dict, str | None]:
        """Decode the body starting at ``buf[off]``: ``(fields, error)``; never raises."""
        avail = len(buf) - off
        if avail >= self.fixed_size:
            fields = dict(zip(self._names, self._struct.unpack_from(buf, off)))
            for name, conv in self._convs:
                fields[name] = conv(fields[name])
            if self.tail is not None:
                return fields, self.tail(self, buf, off, fields, mmv)
            return fields, None
        # truncated fixed part: keep every field that is complete
        fields = {}
        for f in self.fields:
            if f.offset + f.size > avail:
                break
            if f.kind == RSVD:
                continue
            b = buf[off + f.offset: off + f.offset + f.size]
            if f.kind == U8:
                fields[f.name] = b[0]
            elif f.kind in (LE16, S16):
                fields[f.name] = int.from_bytes(b, "little", signed=f.kind == S16)
            else:
                fields[f.name] = _CONV[f.kind](b)
        _derive(fields)
        return fields, f"{self.name} truncated: {max(avail, 0)} of {self.nominal_size} bytes"


def _derive(fields: dict) -> None:
    """Derived values that the fixed part alone determines (used on the truncated path too)."""
    if "Time_Out" in fields:
        fields["Time_Out_s"] = fields["Time_Out"] / 10


def _truncated(layout: Layout, avail: int, need: int, what: str = "") -> str:
    return f"{layout.name} truncated: {avail} of {need} bytes{what}"


# --- tails ---------------------------------------------------------------------------------------

def _tail_time_out(layout, buf, off, fields, mmv):
    """Time_Out_s = Time_Out x 100 ms, in seconds (derived)."""
    fields["Time_Out_s"] = fields["Time_Out"] / 10
    return None


def _tail_slac_parm_req(layout, buf, off, fields, mmv):
    """CipherSuiteSetSize (1) + CipherSuite[n] (2 bytes LE each), only when SECURITY_TYPE = 0x01.

    ISO 15118-3; see the module docstring for the QCA layout. ⚠ Byte order from OPU's ``uint16_t``.
    """
    if fields["SECURITY_TYPE"] != 1:
        return None
    p = off + 10
    avail = len(buf) - off
    if len(buf) <= p:
        return _truncated(layout, avail, 11, " (SECURITY_TYPE 1 needs CipherSuiteSetSize)")
    n = buf[p]
    fields["CipherSuiteSetSize"] = n
    suites = [int.from_bytes(buf[q:q + 2], "little")
              for q in range(p + 1, min(p + 1 + 2 * n, len(buf) - 1), 2)]
    fields["CipherSuite"] = suites
    if len(suites) < n:
        return _truncated(layout, avail, 11 + 2 * n, f" ({len(suites)} of {n} cipher suites)")
    return None


def _tail_slac_parm_cnf(layout, buf, off, fields, mmv):
    """Time_Out_s; CipherSuite (2 bytes LE) only when SECURITY_TYPE = 0x01 (ISO 15118-3, OPU)."""
    fields["Time_Out_s"] = fields["Time_Out"] / 10
    if fields["SECURITY_TYPE"] != 1:
        return None
    if len(buf) - off < 27:
        return _truncated(layout, len(buf) - off, 27, " (SECURITY_TYPE 1 needs CipherSuite)")
    fields["CipherSuite"] = int.from_bytes(buf[off + 25:off + 27], "little")
    return None


def _aag(layout, buf, off, fields, start, count_field="NumGroups"):
    """AAG[NumGroups] (1 byte per group, dB) at body offset ``start``; AAG_mean_dB = mean of the
    groups present, rounded to 1/1000 dB (None when there are none)."""
    ng = fields[count_field]
    aag = list(buf[off + start: off + start + ng])
    fields["AAG"] = aag
    fields["AAG_mean_dB"] = round(sum(aag) / len(aag), 3) if aag else None
    if len(aag) < ng:
        return _truncated(layout, len(buf) - off, start + ng, f" ({len(aag)} of {ng} groups)")
    return None


def _tail_atten_char_ind(layout, buf, off, fields, mmv):
    """AAG[NumGroups] at 52: average attenuation per carrier group, dB; AAG_mean_dB derived."""
    return _aag(layout, buf, off, fields, 52)


def _tail_atten_profile_ind(layout, buf, off, fields, mmv):
    """AAG[NumGroups] at 8: attenuation per carrier group of one sound, dB; AAG_mean_dB derived."""
    return _aag(layout, buf, off, fields, 8)


def _tail_vs_atten_char(layout, buf, off, fields, mmv):
    """AAG[NumGroups] at 16 (DSV), dB; AAG_mean_dB derived."""
    return _aag(layout, buf, off, fields, 16)


def _tail_set_key_req(layout, buf, off, fields, mmv):
    """NewKey (16 bytes, AES-128) unless KeyType = 0x05 "nonce only".

    HomePlug AV 2.1 Table 11-88 / 11-89; PYPLC composeSetKey.
    """
    if fields["KeyType"] == 0x05:
        return None
    if len(buf) - off < 38:
        return _truncated(layout, len(buf) - off, 38, " (NewKey)")
    fields["NewKey"] = buf[off + 22: off + 38].hex()
    return None


#: Key lengths by key type, HomePlug AV 2.1 Table 11-89: DAK, NMK, NEK, TEK = AES-128 (16 bytes),
#: 0x04 hash key (384 bytes), 0x05 nonce only (no key).
_KEY_LEN = {0: 16, 1: 16, 2: 16, 3: 16, 4: 384, 5: 0}


def _tail_get_key_req(layout, buf, off, fields, mmv):
    """HASHKEY (384 bytes) only when RequestedKeyType = 0x04 (hash key)."""
    if fields["RequestedKeyType"] != 4:
        return None
    key = buf[off + 17: off + 17 + 384]
    fields["HASHKEY"] = key.hex()
    if len(key) < 384:
        return _truncated(layout, len(buf) - off, 17 + 384, " (HASHKEY)")
    return None


def _tail_get_key_cnf(layout, buf, off, fields, mmv):
    """Key: present when Result = 0x00 (key granted); length by RequestedKeyType (Table 11-89).
    Real modems pad the Key field to 384 bytes whatever the key type (corpus, PYPLC)."""
    if fields["Result"] != 0:
        return None
    n = _KEY_LEN.get(fields["RequestedKeyType"], 0)
    if not n:
        return None
    key = buf[off + 22: off + 22 + n]
    fields["Key"] = key.hex()
    if len(key) < n:
        return _truncated(layout, len(buf) - off, 22 + n, " (Key)")
    return None


def _tail_amp_map_req(layout, buf, off, fields, mmv):
    """AMDATA: AMLEN 4-bit amplitude-map entries, two per byte, low nibble first.

    HomePlug AV 2.1 CM_AMP_MAP.REQ; ⚠ nibble order as the reference decoder reads it (no second
    source found).
    """
    n = fields["AMLEN"]
    data = buf[off + 2: off + 2 + (n + 1) // 2]
    nib = []
    for x in data:
        nib.append(x & 0x0F)
        nib.append(x >> 4)
    fields["AMDATA"] = nib[:n]
    if len(nib) < n:
        return _truncated(layout, len(buf) - off, 2 + (n + 1) // 2, f" ({len(nib)} of {n} entries)")
    return None


def _ascii(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("ascii", "replace")


def _tail_sw_ver_cnf(layout, buf, off, fields, mmv):
    """MVERSION: MVERLENGTH bytes of ASCII, cut at the first NUL (OPU vs_sw_ver_confirm)."""
    n = fields["MVERLENGTH"]
    b = buf[off + 3: off + 3 + n]
    fields["MVERSION"] = _ascii(b)
    if len(b) < n:
        return _truncated(layout, len(buf) - off, 3 + n, " (MVERSION)")
    return None


def _tail_nw_info_cnf(layout, buf, off, fields, mmv):
    """NUMAVLNS, networks[] with stations[]: the AVLNs and stations the modem sees (by MMV).

    Two layouts (OPU plc/NetInfo1.c for MMV 0 / INT6x00, plc/NetInfo2.c for MMV 1 / AR7x00,
    QCA7x00):

    MMV 0: NUMAVLNS(1), then per AVLN: NID(7) SNID(1) TEI(1) ROLE(1) CCO_MAC(6) CCO_TEI(1)
    NUMSTAS(1), then per station: MAC(6) TEI(1) BDA(6) AVGTX(1) AVGRX(1) (Mbit/s).
    MMV 1: SUB_VERSION(1) Reserved(1) DATA_LEN(2 LE) Reserved(1) NUMAVLNS(1), then per AVLN:
    NID(7) Reserved(2) SNID(1) TEI(1) Reserved(4) ROLE(1) CCO_MAC(6) CCO_TEI(1) Reserved(3)
    NUMSTAS(1) Reserved(5), then per station: MAC(6) TEI(1) Reserved(3) BDA(6) AVGTX(2 LE)
    COUPLING(1) Reserved(1) AVGRX(2 LE) Reserved(2).
    ROLE: 0 STA, 1 proxy coordinator, 2 CCo (OPU StationRole).
    """
    end = len(buf)
    head = 1 if mmv == 0 else 6
    if end - off < head:
        return _truncated(layout, end - off, head, " (NUMAVLNS)")
    p = off
    if mmv == 0:
        nav = buf[p]
        net_len, sta_len = 18, 15
    else:
        fields["SUB_VERSION"] = buf[p]
        fields["DATA_LEN"] = buf[p + 2] | (buf[p + 3] << 8)
        nav = buf[p + 5]
        net_len, sta_len = 32, 22
    p += head
    fields["NUMAVLNS"] = nav
    nets = []
    fields["networks"] = nets
    for _ in range(nav):
        if p + net_len > end:
            return _truncated(layout, end - off, p + net_len - off, " (AVLN entry)")
        if mmv == 0:
            net = {"NID": buf[p:p + 7].hex(), "SNID": buf[p + 7], "TEI": buf[p + 8],
                   "ROLE": buf[p + 9], "CCO_MAC": buf[p + 10:p + 16].hex(":"),
                   "CCO_TEI": buf[p + 16], "NUMSTAS": buf[p + 17]}
        else:
            net = {"NID": buf[p:p + 7].hex(), "SNID": buf[p + 9], "TEI": buf[p + 10],
                   "ROLE": buf[p + 15], "CCO_MAC": buf[p + 16:p + 22].hex(":"),
                   "CCO_TEI": buf[p + 22], "NUMSTAS": buf[p + 26]}
        p += net_len
        stas = []
        net["stations"] = stas
        nets.append(net)
        for _ in range(net["NUMSTAS"]):
            if p + sta_len > end:
                return _truncated(layout, end - off, p + sta_len - off, " (station entry)")
            if mmv == 0:
                stas.append({"MAC": buf[p:p + 6].hex(":"), "TEI": buf[p + 6],
                             "BDA": buf[p + 7:p + 13].hex(":"), "AVGTX": buf[p + 13],
                             "AVGRX": buf[p + 14]})
            else:
                stas.append({"MAC": buf[p:p + 6].hex(":"), "TEI": buf[p + 6],
                             "BDA": buf[p + 10:p + 16].hex(":"),
                             "AVGTX": buf[p + 16] | (buf[p + 17] << 8),
                             "COUPLING": buf[p + 18],
                             "AVGRX": buf[p + 20] | (buf[p + 21] << 8)})
            p += sta_len
    return None


#: ST/IoTecha VS_CP_STATE.IND (Wireshark: STP_CPSTATE.IND) StateCode → the modem's CP state,
#: Wireshark packet-homeplug-av.c value table ``homeplug_av.st_iotecha.cpstate.state``
#: (``tshark -G values``); the corpus's 113 indications agree (1 at 12 V, 3 at 9 V, 5 at 6 V,
#: 9 at 0 V).
ST_CP_STATE_CODES = {0: "Invalid", 1: "A", 2: "A-B", 3: "B", 4: "B-C", 5: "C", 6: "C-D",
                     7: "D", 8: "D-E", 9: "E", 10: "F"}


def _tail_cp_state_st(layout, buf, off, fields, mmv):
    """Voltage_V = Voltage_mV / 1000; State from StateCode (:data:`ST_CP_STATE_CODES`,
    None for an unknown code) (derived)."""
    fields["Voltage_V"] = fields["Voltage_mV"] / 1000
    fields["State"] = ST_CP_STATE_CODES.get(fields["StateCode"])
    return None


def _tail_cp_state_spidcom(layout, buf, off, fields, mmv):
    """DutyCycle_pct = DutyCycle_permille / 10, Voltage_V = Voltage_mV / 1000 (derived)."""
    fields["DutyCycle_pct"] = fields["DutyCycle_permille"] / 10
    fields["Voltage_V"] = fields["Voltage_mV"] / 1000
    return None


def _tail_scs_diag(layout, buf, off, fields, mmv):
    """Text up to the first NUL; Source, Tool, Version (int), Info, JSON from its "|" parts.

    dSPACE SCS diagnostic text "dSPACE SCS Diag|dsV2Gshark|v<version>|<info>|<json>" (DSV
    v2ghpscs.lua); JSON is omitted when it does not parse.
    """
    txt = bytes(buf[off:]).split(b"\x00", 1)[0].decode("utf-8", "replace")
    fields["Text"] = txt
    parts = txt.split("|", 4)
    if len(parts) == 5:
        fields["Source"], fields["Tool"] = parts[0], parts[1]
        v = parts[2]
        fields["Version"] = int(v[1:]) if v[:1] == "v" and v[1:].isdigit() else v
        fields["Info"] = parts[3]
        try:
            fields["JSON"] = json.loads(parts[4])
        except (ValueError, RecursionError):
            pass
    return None


# --- the tables ----------------------------------------------------------------------------------

_ISO = "ISO 15118-3:2015 Annex A.9"

CM_SLAC_PARM_REQ = Layout("CM_SLAC_PARM.REQ", (
    Field(0, 1, "APPLICATION_TYPE", U8),   # 0x00 = PEV-EVSE matching
    Field(1, 1, "SECURITY_TYPE", U8),      # 0x00 = no security, 0x01 = public key signature
    Field(2, 8, "RunID", HEX),
    # 10  1   CipherSuiteSetSize  } only when SECURITY_TYPE = 0x01 (tail; OPU: always, zeroed)
    # 11  2n  CipherSuite[n]      }
), tail=_tail_slac_parm_req,
    source=f"{_ISO} CM_SLAC_PARM.REQ; E-SLAC cm_slac_parm_req; OPU cm_slac_param_request; PYPLC")

CM_SLAC_PARM_CNF = Layout("CM_SLAC_PARM.CNF", (
    Field(0, 6, "M-SOUND_TARGET", MAC),    # FF:FF:FF:FF:FF:FF
    Field(6, 1, "NUM_SOUNDS", U8),         # typically 10
    Field(7, 1, "Time_Out", U8),           # units of 100 ms (6 = TT_EVSE_match_MNBC 600 ms)
    Field(8, 1, "RESP_TYPE", U8),          # 0x01 = other GP station
    Field(9, 6, "FORWARDING_STA", MAC),    # EV host MAC
    Field(15, 1, "APPLICATION_TYPE", U8),
    Field(16, 1, "SECURITY_TYPE", U8),
    Field(17, 8, "RunID", HEX),
    # 25  2   CipherSuite         only when SECURITY_TYPE = 0x01 (tail)
), tail=_tail_slac_parm_cnf,
    source=f"{_ISO} CM_SLAC_PARM.CNF (Table A.2 per qca/open-plc-utils#134); E-SLAC; OPU")

CM_START_ATTEN_CHAR_IND = Layout("CM_START_ATTEN_CHAR.IND", (
    Field(0, 1, "APPLICATION_TYPE", U8),
    Field(1, 1, "SECURITY_TYPE", U8),
    Field(2, 1, "NUM_SOUNDS", U8),         # ACVarField from here
    Field(3, 1, "Time_Out", U8),
    Field(4, 1, "RESP_TYPE", U8),
    Field(5, 6, "FORWARDING_STA", MAC),
    Field(11, 8, "RunID", HEX),
), tail=_tail_time_out,
    source=f"{_ISO} CM_START_ATTEN_CHAR.IND; E-SLAC cm_start_atten_char_ind; OPU; PYPLC")

CM_MNBC_SOUND_IND = Layout("CM_MNBC_SOUND.IND", (
    Field(0, 1, "APPLICATION_TYPE", U8),
    Field(1, 1, "SECURITY_TYPE", U8),
    Field(2, 17, "SenderID", HEX),         # MSVarField from here; PEV VIN or zeros
    Field(19, 1, "Cnt", U8),               # remaining sounds, counts down to 0
    Field(20, 8, "RunID", HEX),
    Field(28, 8, "RSVD", RSVD),            # RunID is a 16-byte field here: 8 + 8 reserved
    Field(36, 16, "Rnd", HEX),
), source=f"{_ISO} CM_MNBC_SOUND.IND; E-SLAC cm_mnbc_sound_ind; OPU; PYPLC")

CM_ATTEN_CHAR_IND = Layout("CM_ATTEN_CHAR.IND", (
    Field(0, 1, "APPLICATION_TYPE", U8),
    Field(1, 1, "SECURITY_TYPE", U8),
    Field(2, 6, "SOURCE_ADDRESS", MAC),    # ACVarField from here; EV host MAC
    Field(8, 8, "RunID", HEX),
    Field(16, 17, "SOURCE_ID", HEX),
    Field(33, 17, "RESP_ID", HEX),
    Field(50, 1, "NUM_SOUNDS", U8),        # sounds actually received
    Field(51, 1, "NumGroups", U8),         # ATTEN_PROFILE: 58
    # 52  NumGroups  AAG[]  average attenuation per carrier group, dB (tail)
), tail=_tail_atten_char_ind, nominal_size=52 + 58,
    source=f"{_ISO} CM_ATTEN_CHAR.IND; E-SLAC cm_atten_char_ind; OPU; PYPLC")

CM_ATTEN_CHAR_RSP = Layout("CM_ATTEN_CHAR.RSP", (
    Field(0, 1, "APPLICATION_TYPE", U8),
    Field(1, 1, "SECURITY_TYPE", U8),
    Field(2, 6, "SOURCE_ADDRESS", MAC),
    Field(8, 8, "RunID", HEX),
    Field(16, 17, "SOURCE_ID", HEX),
    Field(33, 17, "RESP_ID", HEX),
    Field(50, 1, "Result", U8),            # 0x00 = success
), source=f"{_ISO} CM_ATTEN_CHAR.RSP; E-SLAC cm_atten_char_rsp; OPU; PYPLC")

CM_ATTEN_PROFILE_IND = Layout("CM_ATTEN_PROFILE.IND", (
    Field(0, 6, "PEV_MAC", MAC),
    Field(6, 1, "NumGroups", U8),
    Field(7, 1, "RSVD", RSVD),
    # 8  NumGroups  AAG[]  (tail)
), tail=_tail_atten_profile_ind, nominal_size=8 + 58,
    source="ISO 15118-3 (not in HomePlug GreenPHY); E-SLAC cm_atten_profile_ind; OPU; DSV")

CM_VALIDATE_REQ = Layout("CM_VALIDATE.REQ", (
    Field(0, 1, "SignalType", U8),         # 0x00 = PEV S2 toggles on the control pilot
    Field(1, 1, "Timer", U8),              # VRVarField; BCB toggle window, 0x00 = 100 ms steps
    Field(2, 1, "Result", U8),             # 0 not ready, 1 ready, 2 success, 3 failure, 4 not required
), source=f"{_ISO} CM_VALIDATE.REQ; E-SLAC cm_validate_req; OPU cm_validate_request")

CM_VALIDATE_CNF = Layout("CM_VALIDATE.CNF", (
    Field(0, 1, "SignalType", U8),
    Field(1, 1, "ToggleNum", U8),          # VCVarField; BCB edges detected
    Field(2, 1, "Result", U8),
), source=f"{_ISO} CM_VALIDATE.CNF; E-SLAC cm_validate_cnf; OPU cm_validate_confirm")

_MATCH_COMMON = (
    Field(0, 1, "APPLICATION_TYPE", U8),
    Field(1, 1, "SECURITY_TYPE", U8),
    Field(2, 2, "MVFLength", LE16),        # REQ 0x3E = 62, CNF 0x56 = 86 bytes follow
    Field(4, 17, "PEV_ID", HEX),           # MatchVarField from here
    Field(21, 6, "PEV_MAC", MAC),
    Field(27, 17, "EVSE_ID", HEX),
    Field(44, 6, "EVSE_MAC", MAC),
    Field(50, 8, "RunID", HEX),
    Field(58, 8, "RSVD", RSVD),            # RunID is a 16-byte field here: 8 + 8 reserved
)

CM_SLAC_MATCH_REQ = Layout("CM_SLAC_MATCH.REQ", _MATCH_COMMON,
                           source=f"{_ISO} CM_SLAC_MATCH.REQ; E-SLAC cm_slac_match_req; OPU; PYPLC")

CM_SLAC_MATCH_CNF = Layout("CM_SLAC_MATCH.CNF", _MATCH_COMMON + (
    Field(66, 7, "NID", HEX),              # 54 LSBs NID, 2 MSBs security level 0b00
    Field(73, 1, "RSVD2", RSVD),           # NID is an 8-byte field here: 7 + 1 reserved
    Field(74, 16, "NMK", HEX),
), source=f"{_ISO} CM_SLAC_MATCH.CNF; E-SLAC cm_slac_match_cnf; OPU; PYPLC")

CM_SET_KEY_REQ = Layout("CM_SET_KEY.REQ", (
    Field(0, 1, "KeyType", U8),            # 0x01 = NMK (AES-128)
    Field(1, 4, "MyNonce", HEX),
    Field(5, 4, "YourNonce", HEX),
    Field(9, 1, "PID", U8),                # 0x04 = HLE protocol
    Field(10, 2, "PRN", LE16),
    Field(12, 1, "PMN", U8),
    Field(13, 1, "CCoCapability", U8),
    Field(14, 7, "NID", HEX),
    Field(21, 1, "NewEKS", U8),            # 0x01 = NMK
    # 22  16  NewKey  (tail; absent for KeyType 0x05 "nonce only")
), tail=_tail_set_key_req, nominal_size=38,
    source="HomePlug AV 2.1 Table 11-88 (CM_SET_KEY.REQ); ISO 15118-3 values; E-SLAC; OPU; PYPLC")

CM_SET_KEY_CNF = Layout("CM_SET_KEY.CNF", (
    Field(0, 1, "Result", U8),             # 0x00 = success per spec (⚠ see module docstring)
    Field(1, 4, "MyNonce", HEX),
    Field(5, 4, "YourNonce", HEX),
    Field(9, 1, "PID", U8),
    Field(10, 2, "PRN", LE16),
    Field(12, 1, "PMN", U8),
    Field(13, 1, "CCoCapability", U8),
), source="HomePlug AV 2.1 CM_SET_KEY.CNF; E-SLAC cm_set_key_cnf; PYPLC evaluateSetKeyCnf")

CM_GET_KEY_REQ = Layout("CM_GET_KEY.REQ", (
    Field(0, 1, "RequestType", U8),        # 0x00 = direct, 0x01 = relayed
    Field(1, 1, "RequestedKeyType", U8),   # Table 11-89: 0 DAK, 1 NMK, 2 NEK, 3 TEK, 4 hash, 5 nonce
    Field(2, 7, "NID", HEX),               # ⚠ position verified on modems (PYPLC composeGetKey)
    Field(9, 4, "MyNonce", HEX),
    Field(13, 1, "PID", U8),
    Field(14, 2, "PRN", LE16),
    Field(16, 1, "PMN", U8),
    # 17  384  HASHKEY  only for RequestedKeyType 0x04 (tail)
), tail=_tail_get_key_req,
    source="HomePlug AV 2.1 Table 11-91 (CM_GET_KEY.REQ) as corrected by PYPLC")

CM_GET_KEY_CNF = Layout("CM_GET_KEY.CNF", (
    Field(0, 1, "Result", U8),             # 0x00 key granted, 0x01 refused, 0x02 unsupported
    Field(1, 1, "RequestedKeyType", U8),
    Field(2, 4, "MyNonce", HEX),
    Field(6, 4, "YourNonce", HEX),
    Field(10, 7, "NID", HEX),
    Field(17, 1, "EKS", U8),
    Field(18, 1, "PID", U8),
    Field(19, 2, "PRN", LE16),
    Field(21, 1, "PMN", U8),
    # 22  var  Key  (tail: when Result = 0x00, 16 bytes for AES keys)
), tail=_tail_get_key_cnf,
    source="HomePlug AV 2.1 CM_GET_KEY.CNF; PYPLC evaluateGetKeyCnf (Result@0, NID@10, key@22)")

CM_AMP_MAP_REQ = Layout("CM_AMP_MAP.REQ", (
    Field(0, 2, "AMLEN", LE16),            # number of amplitude-map entries (carriers)
    # 2  ceil(AMLEN/2)  AMDATA  4 bits per entry (tail)
), tail=_tail_amp_map_req,
    source="HomePlug AV 2.1 / GreenPHY CM_AMP_MAP.REQ; ISO 15118-3 (optional amplitude map)")

CM_AMP_MAP_CNF = Layout("CM_AMP_MAP.CNF", (
    Field(0, 1, "ResType", U8),            # 0x00 = success, 0x01 = failure
), source="HomePlug AV 2.1 / GreenPHY CM_AMP_MAP.CNF")

#: Standard MMEs with a field decoder, by MMTYPE.
LAYOUTS: dict[int, Layout] = {
    0x6064: CM_SLAC_PARM_REQ, 0x6065: CM_SLAC_PARM_CNF, 0x606A: CM_START_ATTEN_CHAR_IND,
    0x6076: CM_MNBC_SOUND_IND, 0x606E: CM_ATTEN_CHAR_IND, 0x606F: CM_ATTEN_CHAR_RSP,
    0x6086: CM_ATTEN_PROFILE_IND, 0x6078: CM_VALIDATE_REQ, 0x6079: CM_VALIDATE_CNF,
    0x607C: CM_SLAC_MATCH_REQ, 0x607D: CM_SLAC_MATCH_CNF, 0x6008: CM_SET_KEY_REQ,
    0x6009: CM_SET_KEY_CNF, 0x600C: CM_GET_KEY_REQ, 0x600D: CM_GET_KEY_CNF,
    0x601C: CM_AMP_MAP_REQ, 0x601D: CM_AMP_MAP_CNF,
}

# --- vendor MMEs (offsets from the first byte after the OUI) --------------------------------------

_EMPTY_QCA = "OPU (request carries nothing after the OUI)"
VS_SW_VER_REQ = Layout("VS_SW_VER.REQ", (), source=_EMPTY_QCA)
VS_SW_VER_CNF = Layout("VS_SW_VER.CNF", (
    Field(0, 1, "MSTATUS", U8),            # 0x00 = success
    Field(1, 1, "MDEVICEID", U8),          # chipset id (OPU chipset.c)
    Field(2, 1, "MVERLENGTH", U8),
    # 3  MVERLENGTH  MVERSION  ASCII firmware version (tail)
), tail=_tail_sw_ver_cnf, source="OPU vs_sw_ver_confirm (plc/chipset.c); PYPLC evaluateGetSwCnf")
VS_NW_INFO_REQ = Layout("VS_NW_INFO.REQ", (), source=_EMPTY_QCA)
VS_NW_INFO_CNF = Layout("VS_NW_INFO.CNF", (), tail=_tail_nw_info_cnf,
                        source="OPU plc/NetInfo1.c (MMV 0), plc/NetInfo2.c (MMV 1)")
VS_PL_LINK_STATUS_REQ = Layout("VS_PL_LINK_STATUS.REQ", (), source=_EMPTY_QCA)
VS_PL_LINK_STATUS_CNF = Layout("VS_PL_LINK_STATUS.CNF", (
    Field(0, 1, "MSTATUS", U8),
    Field(1, 1, "LINKSTATUS", U8),         # 0 = no link, 1 = link up
), source="OPU plc/LinkStatus.c vs_link_status_confirm")
VS_ATTENUATION_CHARACTERISTICS_IND = Layout("VS_ATTENUATION_CHARACTERISTICS.IND", (
    Field(0, 6, "SourceMAC", MAC),         # MAC of the sounding station (the EV)
    Field(6, 1, "NumGroups", U8),
    Field(7, 9, "unknown_hex", HEX),       # not documented by DSV; kept as hex
    # 16  NumGroups  AAG[]  dB (tail)
), tail=_tail_vs_atten_char, nominal_size=16 + 58,
    source="DSV v2ghpscs.lua dissect_qc_atten_char (⚠ single source)")
VS_CP_STATE_IND_ST = Layout(CP_STATE_ST, (
    Field(0, 1, "MMEVersion", U8),
    Field(1, 3, "RSVD", RSVD),
    Field(4, 1, "MessageVersion", U8),
    Field(5, 1, "StateCode", U8),          # the modem's CP state (State derived, tail)
    Field(6, 1, "DutyCycle_pct", U8),
    Field(7, 2, "Frequency_Hz", S16),
    Field(9, 2, "Voltage_mV", S16),        # Voltage_V derived (tail)
), tail=_tail_cp_state_st,
    source="Wireshark packet-homeplug-av.c STP_CPSTATE.IND; DSV v2ghpscs.lua extract_cp_info_iotecha")
VS_CP_STATE_IND_SPIDCOM = Layout(CP_STATE_SPIDCOM, (
    Field(0, 1, "ChangedMask", U8),        # bit 0 frequency, bit 1 duty cycle, bit 2 voltage changed
    Field(1, 2, "Frequency_Hz", S16),
    Field(3, 2, "DutyCycle_permille", S16),  # DutyCycle_pct derived (tail)
    Field(5, 2, "Voltage_mV", S16),        # Voltage_V derived (tail)
), tail=_tail_cp_state_spidcom,
    source="DSV v2ghpscs.lua extract_cp_info_spidcom (⚠ single source)")
MS_SCS_DIAG_IND = Layout(SCS_DIAG_DSPACE, (), tail=_tail_scs_diag,
                         source="DSV v2ghpscs.lua dissect_dSPACE_scs_diag")

#: Vendor MMEs with a field decoder, by (MMTYPE, OUI).
VENDOR_LAYOUTS: dict[tuple[int, str], Layout] = {
    (0xA000, OUI_QUALCOMM): VS_SW_VER_REQ, (0xA001, OUI_QUALCOMM): VS_SW_VER_CNF,
    (0xA038, OUI_QUALCOMM): VS_NW_INFO_REQ, (0xA039, OUI_QUALCOMM): VS_NW_INFO_CNF,
    (0xA0B8, OUI_QUALCOMM): VS_PL_LINK_STATUS_REQ, (0xA0B9, OUI_QUALCOMM): VS_PL_LINK_STATUS_CNF,
    (0xA14E, OUI_QUALCOMM): VS_ATTENUATION_CHARACTERISTICS_IND,
    (0xA14E, "000000"): VS_ATTENUATION_CHARACTERISTICS_IND,
    (0xA22E, OUI_ST): VS_CP_STATE_IND_ST,
    (0xA10E, OUI_SPIDCOM): VS_CP_STATE_IND_SPIDCOM,
    (0x8002, OUI_DSPACE): MS_SCS_DIAG_IND,
}


if __doc__ is not None:   # help(homeplug) shows every table (not under python -OO)
    __doc__ += "\nMessage tables (offset, size, name, decoder; offsets from the MMENTRY start)::\n\n" + \
        "\n\n".join("  " + lay.describe().replace("\n", "\n  ")
                    for lay in (*LAYOUTS.values(), *dict.fromkeys(VENDOR_LAYOUTS.values()))) + "\n"


# ------------------------------------------------------------------------------------------------
# The decoded message

@dataclass(slots=True)
class Mme:
    """One decoded HomePlug AV management message.

    * ``mmv``: management message version (0 = AV 1.0, 1 = AV 1.1 / GreenPHY, 2 = AV 2.0);
      -1 when the payload is empty.
    * ``mmtype``: the 16-bit MMTYPE (-1 when not readable); ``name``: :func:`mmtype_name`.
    * ``fmi``: hex of the 2 fragmentation bytes (MMV >= 1), else None.
    * ``oui``: 6 lowercase hex digits for MMTYPE >= 0x8000, else None.
    * ``fields``: flat dict with the standard's field names (ISO 15118-3 Annex A.9 / HomePlug
      AV 2.1): ints, MACs as "aa:bb:cc:dd:ee:ff", IDs/keys/RunID as lowercase hex, ``AAG`` as a
      list of ints (dB), derived values named as such (``AAG_mean_dB``, ``Time_Out_s``). Empty
      for MMEs without a field table.
    * ``error``: None, or what is wrong ("CM_ATTEN_CHAR.IND truncated: 40 of 110 bytes").
    * ``is_slac``: one of the ISO 15118-3 SLAC messages (:data:`SLAC_MMTYPES`).
    * ``direction_hint`` (property): ``"EV"``, ``"EVSE"``, ``"host-modem"`` or None
      (:func:`direction_hint`).
    """

    mmv: int
    mmtype: int
    name: str
    fmi: str | None = None
    oui: str | None = None
    fields: dict = field(default_factory=dict)
    error: str | None = None
    is_slac: bool = False

    @property
    def direction_hint(self) -> str | None:
        """Which side normally sends this message (see :func:`direction_hint`)."""
        return direction_hint(self.mmtype, self.oui)


def decode_mme(payload: bytes) -> Mme:
    """Decode one MME from the Ethernet payload after the ethertype 0x88E1 (starting with MMV).

    Returns an :class:`Mme`; never raises. Header per HomePlug AV 2.1 §11.1 (see the module
    docstring); fields per the message tables above. Errors reported in ``Mme.error``: header
    shorter than MMV+MMTYPE(+FMI)(+OUI), unknown MMV (fields still decoded as AV 1.1), a body
    shorter than its table ("NAME truncated: N of M bytes", with the fields that could be read),
    a continuation fragment (FN_MI > 0: fields not decoded, fragments are not reassembled).
    Trailing bytes after a complete body are Ethernet padding and are ignored.
    """
    try:
        buf = payload if type(payload) is bytes else bytes(payload)
    except (TypeError, ValueError) as e:
        return Mme(-1, -1, NOT_AN_MME, error=f"not a byte string: {type(payload).__name__} ({e})")
    n = len(buf)
    if n < 3:
        return Mme(buf[0] if n else -1, -1, MME_HEADER_TRUNCATED,
                   error=f"MME header truncated: {n} of 3 bytes")
    mmv = buf[0]
    mmtype = buf[1] | (buf[2] << 8)
    error = None
    if mmv == 0:
        hdr, fmi = 3, None
    else:
        if n < 5:
            return Mme(mmv, mmtype, mmtype_name(mmtype, None), is_slac=mmtype in SLAC_MMTYPES,
                       error=f"MME header truncated: {n} of 5 bytes (MMV {mmv} has FMI)")
        hdr, fmi = 5, buf[3:5].hex()
        if mmv > 2:
            error = f"unknown MMV 0x{mmv:02X} (HomePlug AV defines 0, 1, 2); decoded as AV 1.1"
    oui = None
    if mmtype >= 0x8000:
        if n < hdr + 3:
            return Mme(mmv, mmtype, mmtype_name(mmtype, None), fmi,
                       error=f"vendor MME header truncated: {n} of {hdr + 3} bytes (OUI)")
        oui = buf[hdr:hdr + 3].hex()
        hdr += 3
        layout = VENDOR_LAYOUTS.get((mmtype, oui))
    else:
        layout = LAYOUTS.get(mmtype)
    mme = Mme(mmv, mmtype, mmtype_name(mmtype, oui), fmi, oui, error=error,
              is_slac=mmtype in SLAC_MMTYPES)
    if layout is None:
        return mme
    if fmi is not None and buf[3] & 0x0F:
        frag = f"fragment {(buf[3] & 0x0F) + 1} of {(buf[3] >> 4) + 1} (FMI {fmi}): fields not " \
               "decoded, MME fragments are not reassembled"
        mme.error = f"{error}; {frag}" if error else frag
        return mme
    try:
        fields, ferr = layout.decode(buf, hdr, mmv)
    except Exception as e:  # a guard: the tables and tails are written not to raise
        fields, ferr = {}, f"{layout.name}: decoder error {type(e).__name__}: {e}"
    mme.fields = fields
    if ferr:
        mme.error = f"{error}; {ferr}" if error else ferr
    return mme
