"""The simulator's Plug & Charge test PKI, contract side: a contract certificate (CN = the
eMAID DESIMC0NTRACT01) issued by MO Sub-CA 2 ← MO Sub-CA 1 ← MO root, ECDSA secp256r1 /
SHA-256 as ISO 15118-2 requires (Annex F certificate profiles); leaf valid 2025-06-01 to
2027-06-01, Sub-CA 2 to 2029-05-31, Sub-CA 1 to 2033-05-30, root to 2035-05-30 (path lengths 0, 1,
2). A PaymentDetailsReq carries the leaf and the two sub-CAs (at most two, [V2G2-656]).

Derived, not stored: samples/tls.build_chain makes the certificates from the keys it
derives from (seed 0, role "contract", position, CN), with deterministic ECDSA — so the same
certificates every time, and the leaf's private key (:func:`contract_key`) to sign the
AuthorizationReq and MeteringReceiptReq with (samples/signing.py). The contract chains the
PKI faults issue (samples/faults_pki.py) share that leaf key: the EV's signatures stay valid
when only its certificate's dates or chain change.
"""
from __future__ import annotations

from .tls import CertSpec, build_chain

EMAID = "DESIMC0NTRACT01"

_CA = ("key_cert_sign", "crl_sign")
#: leaf first, root last (samples/tls.CertSpec: CN, domain component, curve, validity, CA).
CONTRACT_CHAIN = (
    CertSpec(EMAID, "MO", "secp256r1", "2025-06-01", "2027-06-01", False),
    CertSpec("MO SubCA2 Sim", "MO", "secp256r1", "2025-06-01", "2029-05-31", True, _CA, 0),
    CertSpec("MO SubCA1 Sim", "MO", "secp256r1", "2025-06-01", "2033-05-30", True, _CA, 1),
    CertSpec("MO RootCA Sim", "MO", "secp256r1", "2025-06-01", "2035-05-30", True, _CA, 2),
)
#: build_chain's seed and role of every contract chain of the simulator.
CONTRACT_SEED, CONTRACT_ROLE = 0, "contract"

_DERS, _KEYS = build_chain(CONTRACT_CHAIN, CONTRACT_SEED, CONTRACT_ROLE)
#: hex DER (the decoded-tree form of base64Binary) of the leaf, the sub-CAs and the root.
CONTRACT_CERT, MO_SUBCA2_CERT, MO_SUBCA1_CERT, MO_ROOT_CERT = (d.hex() for d in _DERS)


def contract_key():
    """The contract certificate's private key (secp256r1)."""
    return _KEYS[0]


def mo_subca2_key():
    """MO Sub-CA 2's private key: the mobility operator signs SalesTariffs with it."""
    return _KEYS[1]


#: The ISO 15118-20 contract chain: the same names and dates on secp521r1 (ISO 15118-20
#: §7.9 / Annex C: secp521r1 or Ed448 certificates; ECDSA with SHA-512), its own keys.
CONTRACT_CHAIN_20 = tuple(CertSpec(c.cn, c.dc, "secp521r1", c.not_before, c.not_after, c.ca,
                                   c.key_usage, c.path_length) for c in CONTRACT_CHAIN)
CONTRACT_ROLE_20 = "contract-20"
_DERS_20, _KEYS_20 = build_chain(CONTRACT_CHAIN_20, CONTRACT_SEED, CONTRACT_ROLE_20)
#: hex DER of the -20 contract leaf, sub-CAs and root.
CONTRACT_CERT_20, MO_SUBCA2_CERT_20, MO_SUBCA1_CERT_20, MO_ROOT_CERT_20 = (d.hex() for d in _DERS_20)


def contract_key_20():
    """The ISO 15118-20 contract certificate's private key (secp521r1)."""
    return _KEYS_20[0]


#: The OEM provisioning chain of the simulated vehicle (ISO 15118-2 Annex F: OEM PKI, DC=OEM)
#: and the CPS chain under the V2G root (DC=CPS) that signs certificate installations; the
#: roots are those of the TLS chains of the same seed (samples/tls.default_chain), so one set
#: of roots (:func:`roots`) anchors everything.
def _pki_chain(role: str, leaf_cn: str, leaf_dc: str, sub_cn: str, sub_dc: str, protocol: str = "ISO 15118-2"):
    from .tls import PROFILES, default_chain
    curve = PROFILES[protocol]["curve"]
    base = default_chain(role, curve, protocol)
    specs = (CertSpec(leaf_cn, leaf_dc, curve, "2025-06-01", "2027-06-01", False, ("digital_signature",)),
             CertSpec(f"{sub_cn} SubCA2 Sim", sub_dc, curve, "2025-01-01", "2029-01-01", True, _CA, 0),
             CertSpec(f"{sub_cn} SubCA1 Sim", sub_dc, curve, "2025-01-01", "2031-01-01", True, _CA, 1),
             base[3])
    return build_chain(specs, CONTRACT_SEED, role)


_OEM_DERS, _OEM_KEYS = _pki_chain("client", "OEM Prov WSIMEV00000000001", "OEM", "OEM Prov", "OEM")
_CPS_DERS, _CPS_KEYS = _pki_chain("server", "CPS Leaf Sim", "CPS", "CPS", "V2G")
#: the ISO 15118-20 chains (secp521r1, under the -20 V2G and OEM roots)
_OEM_DERS_20, _OEM_KEYS_20 = _pki_chain("client", "OEM Prov WSIMEV00000000001", "OEM", "OEM Prov", "OEM",
                                        "ISO 15118-20")
_CPS_DERS_20, _CPS_KEYS_20 = _pki_chain("server", "CPS Leaf Sim", "CPS", "CPS", "V2G", "ISO 15118-20")
OEM_PROV_CHAIN_20 = [d.hex() for d in _OEM_DERS_20[:3]]
CPS_CHAIN_20 = [d.hex() for d in _CPS_DERS_20[:3]]
OEM_PROV_CERT = _OEM_DERS[0].hex()
CPS_CERT, CPS_SUBCA2_CERT, CPS_SUBCA1_CERT = (d.hex() for d in _CPS_DERS[:3])
#: the V2G root the CPS chain ends in
V2G_ROOT_FOR_CPS = _CPS_DERS[3].hex()


def oem_key():
    """The OEM provisioning certificate's private key."""
    return _OEM_KEYS[0]


def cps_key():
    """The CPS leaf's private key."""
    return _CPS_KEYS[0]


def oem_key_20():
    """The ISO 15118-20 OEM provisioning certificate's private key (secp521r1)."""
    return _OEM_KEYS_20[0]


def cps_key_20():
    """The ISO 15118-20 CPS leaf's private key (secp521r1)."""
    return _CPS_KEYS_20[0]


def cert(der_hex: str):
    """A hex DER certificate as a cryptography object."""
    from cryptography import x509
    return x509.load_der_x509_certificate(bytes.fromhex(der_hex))


def roots(seed: int) -> list[bytes]:
    """DER of every root the simulator issues under with scenario seed ``seed``: the MO roots of
    the contract chains (ISO 15118-2 and -20), and the V2G root (SECC chains) and OEM root (vehicle chains) of the
    TLS chains of ISO 15118-2 (secp256r1) and ISO 15118-20 (secp521r1) — what a test lab
    gives ``--trust`` to check the simulator's chains (docs/pnc.md)."""
    from .tls import PROFILES, build_chain, default_chain
    out = [_DERS[-1], _DERS_20[-1], _CPS_DERS[-1], _OEM_DERS[-1], _CPS_DERS_20[-1], _OEM_DERS_20[-1]]
    for protocol in ("ISO 15118-2", "ISO 15118-20"):
        for role in ("server", "client"):
            ders, _ = build_chain(tuple(default_chain(role, PROFILES[protocol]["curve"], protocol)), seed, role)
            if ders[-1] not in out:
                out.append(ders[-1])
    return out
