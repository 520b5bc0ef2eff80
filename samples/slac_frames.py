"""HomePlug GreenPHY management messages of a SLAC run, as bytes (MMV onwards).

Layouts: ISO 15118-3 Annex A (Tables A.2-A.9 field order) as implemented by open-plc-utils
slac/slac.h and EVerest libslac (PROTOCOL_FACTS §2.1-2.3). MMTYPE is little-endian on the
wire; MMV 0x01 is followed by the two FMI bytes.
"""
from __future__ import annotations

import struct

CM_SET_KEY_REQ, CM_SET_KEY_CNF = 0x6008, 0x6009
CM_SLAC_PARM_REQ, CM_SLAC_PARM_CNF = 0x6064, 0x6065
CM_START_ATTEN_CHAR_IND = 0x606A
CM_ATTEN_CHAR_IND, CM_ATTEN_CHAR_RSP = 0x606E, 0x606F
CM_MNBC_SOUND_IND = 0x6076
CM_SLAC_MATCH_REQ, CM_SLAC_MATCH_CNF = 0x607C, 0x607D
CM_ATTEN_PROFILE_IND = 0x6086


def mme(mmtype: int, body: bytes) -> bytes:
    """MMV 0x01, MMTYPE (LE), FMI 0x0000, then the message entry."""
    return struct.pack("<BHH", 0x01, mmtype, 0) + body


def slac_parm_req(run_id: bytes) -> bytes:
    """CM_SLAC_PARM.REQ: APPLICATION_TYPE 0, SECURITY_TYPE 0, RunID (8)."""
    return mme(CM_SLAC_PARM_REQ, b"\x00\x00" + run_id)


def slac_parm_cnf(run_id: bytes, ev_mac: bytes, num_sounds: int = 10, time_out: int = 6,
                  resp_type: int = 1) -> bytes:
    """CM_SLAC_PARM.CNF: M-SOUND_TARGET ff:…, NUM_SOUNDS, Time_Out (×100 ms), RESP_TYPE (1),
    FORWARDING_STA (the EV), APPLICATION_TYPE, SECURITY_TYPE, RunID."""
    return mme(CM_SLAC_PARM_CNF, b"\xff" * 6 + bytes([num_sounds, time_out, resp_type]) + ev_mac
               + b"\x00\x00" + run_id)


def start_atten_char_ind(run_id: bytes, ev_mac: bytes, num_sounds: int = 10, time_out: int = 6,
                         resp_type: int = 1) -> bytes:
    """CM_START_ATTEN_CHAR.IND: APP, SEC, NUM_SOUNDS, Time_Out, RESP_TYPE (1), FORWARDING_STA, RunID."""
    return mme(CM_START_ATTEN_CHAR_IND, b"\x00\x00" + bytes([num_sounds, time_out, resp_type]) + ev_mac + run_id)


def mnbc_sound_ind(run_id: bytes, cnt: int, rnd: bytes) -> bytes:
    """CM_MNBC_SOUND.IND: APP, SEC, SenderID (17), Cnt, RunID (8), RSVD (8), Rnd (16)."""
    return mme(CM_MNBC_SOUND_IND, b"\x00\x00" + b"\x00" * 17 + bytes([cnt]) + run_id + b"\x00" * 8 + rnd)


def atten_profile_ind(ev_mac: bytes, aag: list[int]) -> bytes:
    """CM_ATTEN_PROFILE.IND (EVSE modem → EVSE host): PEV MAC, NumGroups, RSVD, AAG."""
    return mme(CM_ATTEN_PROFILE_IND, ev_mac + bytes([len(aag), 0]) + bytes(aag))


def atten_char_ind(run_id: bytes, ev_mac: bytes, aag: list[int], num_sounds: int = 10) -> bytes:
    """CM_ATTEN_CHAR.IND: APP, SEC, SOURCE_ADDRESS (EV), RunID, SOURCE_ID (17), RESP_ID (17),
    NUM_SOUNDS, ATTEN_PROFILE {NumGroups, AAG[NumGroups]}."""
    return mme(CM_ATTEN_CHAR_IND, b"\x00\x00" + ev_mac + run_id + b"\x00" * 34
               + bytes([num_sounds, len(aag)]) + bytes(aag))


def atten_char_rsp(run_id: bytes, ev_mac: bytes, result: int = 0) -> bytes:
    """CM_ATTEN_CHAR.RSP: APP, SEC, SOURCE_ADDRESS, RunID, SOURCE_ID, RESP_ID, Result."""
    return mme(CM_ATTEN_CHAR_RSP, b"\x00\x00" + ev_mac + run_id + b"\x00" * 34 + bytes([result]))


def slac_match_req(run_id: bytes, ev_mac: bytes, evse_mac: bytes) -> bytes:
    """CM_SLAC_MATCH.REQ: APP, SEC, MVFLength 0x3E, PEV ID, PEV MAC, EVSE ID, EVSE MAC, RunID, RSVD."""
    return mme(CM_SLAC_MATCH_REQ, b"\x00\x00" + struct.pack("<H", 0x3E) + b"\x00" * 17 + ev_mac
               + b"\x00" * 17 + evse_mac + run_id + b"\x00" * 8)


def slac_match_cnf(run_id: bytes, ev_mac: bytes, evse_mac: bytes, nid: bytes, nmk: bytes) -> bytes:
    """CM_SLAC_MATCH.CNF: as the REQ with MVFLength 0x56, then NID (7), RSVD, NMK (16)."""
    return mme(CM_SLAC_MATCH_CNF, b"\x00\x00" + struct.pack("<H", 0x56) + b"\x00" * 17 + ev_mac
               + b"\x00" * 17 + evse_mac + run_id + b"\x00" * 8 + nid + b"\x00" + nmk)


def set_key_req(nid: bytes, nmk: bytes, my_nonce: bytes = b"\x00" * 4) -> bytes:
    """CM_SET_KEY.REQ (host → own modem): KeyType 1 (NMK), MyNonce, YourNonce, PID 4, PRN,
    PMN, CCo capability, NID, NewEKS 1, NewKey."""
    return mme(CM_SET_KEY_REQ, bytes([1]) + my_nonce + b"\x00" * 4 + bytes([4]) + b"\x00\x00"
               + bytes([0, 0]) + nid + bytes([1]) + nmk)


def set_key_cnf(my_nonce: bytes = b"\x00" * 4, result: int = 0) -> bytes:
    """CM_SET_KEY.CNF (modem → host): Result (0 success), nonces, PID, PRN, PMN, CCo cap."""
    return mme(CM_SET_KEY_CNF, bytes([result]) + my_nonce + b"\x00" * 4 + bytes([4]) + b"\x00\x00"
               + bytes([0, 0]))
