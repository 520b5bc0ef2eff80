"""Faults of the Plug & Charge certificates inside V2G messages — registered with
:func:`ccs_analyzer.samples.faults.fault`.

The simulated PaymentDetailsReq carries a valid contract chain (samples/pki_data.py); these
faults replace it with a chain issued for the fault — really issued and signed, with
deterministic keys and signatures (samples/tls.build_chain) — whose validity or order is
wrong, and say how the SECC reacts: refuses it as ISO 15118-2 requires, or accepts it (a
charger that does not validate contract certificates). Rules: MSG016-MSG019.
"""
from __future__ import annotations

import datetime as dt

from . import faults_edit as ed
from .faults import FaultError, fault
from .script import body_of
from .tls import CertSpec, build_chain

_YEAR = 365 * 86400.0


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _mo_chain(leaf_nb: float, leaf_na: float, operator: str = "Sim", leaf_ca: bool = False) -> list[str]:
    """The hex DER of a contract chain (leaf CN = the simulator's eMAID, MO Sub-CA 2, MO
    Sub-CA 1, MO root; ECDSA secp256r1 as ISO 15118-2 Annex F): leaf valid ``leaf_nb`` …
    ``leaf_na`` (epoch s), the CAs 2025-01-01 … 2031-01-01. ``operator`` names the CAs
    ("MO SubCA2 <operator>" …): another operator's PKI has another root. ``leaf_ca``: the
    leaf is issued as a CA (basicConstraints cA = true, keyCertSign). The leaf's key is the
    simulator's contract key whatever the chain (its signatures stay valid)."""
    from .pki_data import EMAID
    ca_ku = ("key_cert_sign", "crl_sign")
    leaf = (CertSpec(EMAID, "MO", "secp256r1", _when(leaf_nb), _when(leaf_na), True, ca_ku + ("digital_signature",))
            if leaf_ca else CertSpec(EMAID, "MO", "secp256r1", _when(leaf_nb), _when(leaf_na), False))
    specs = (leaf,
             CertSpec(f"MO SubCA2 {operator}", "MO", "secp256r1", "2025-01-01", "2031-01-01", True, ca_ku, 0),
             CertSpec(f"MO SubCA1 {operator}", "MO", "secp256r1", "2025-01-01", "2031-01-01", True, ca_ku, 1),
             CertSpec(f"MO RootCA {operator}", "MO", "secp256r1", "2025-01-01", "2035-01-01", True, ca_ku, 2))
    ders, _keys = build_chain(specs, 0, "contract")
    return [d.hex() for d in ders]


def _payment_details(ctx, name):
    ed.need(ctx, ("ISO 15118-2",), payment="PnC", name=name)
    ci, xi, x, m = ctx.find("PaymentDetailsReq", 1)
    chain = body_of(m.tree).get("ContractSignatureCertChain")
    if not isinstance(chain, dict):
        raise FaultError(f"{name}: the PaymentDetailsReq carries no ContractSignatureCertChain")
    return ci, xi, x, m, chain


def swap_contract_certificate(ctx, state: str, days: float, name: str):
    """Replace the contract chain of the session's first PaymentDetailsReq with one whose leaf
    is ``state`` ("expired": notAfter ``days`` before the connection starts; "not_yet_valid":
    notBefore ``days`` after; "expires_soon": notAfter ``days`` after). Returns (connection
    index, exchange index, exchange). FaultError when the session has no such message."""
    ci, xi, x, m, chain = _payment_details(ctx, name)
    t0 = ctx.plan.connections[ci].start_t
    d = days * 86400
    nb, na = {"expired": (t0 - d - 2 * _YEAR, t0 - d), "not_yet_valid": (t0 + d, t0 + d + 2 * _YEAR),
              "expires_soon": (t0 - _YEAR, t0 + d)}[state]
    ders = _mo_chain(nb, na)
    chain["Certificate"] = ders[0]
    chain["SubCertificates"] = {"Certificate": ders[1:3]}
    ed.encodes(m)
    ed.note(m, f"{name}: contract certificate {state.replace('_', ' ')} ({_when(nb)} … {_when(na)})")
    return ci, xi, x


@fault("contract_certificate_not_valid", level="script", stage="after", category="message-content",
       state="expired", days=30.0, secc_reaction="reject")
def contract_certificate_not_valid(ctx, state, days, secc_reaction):
    """ISO 15118-2 Plug & Charge: the contract certificate in PaymentDetailsReq is ``state``
    "expired" (notAfter ``days`` before the session: the EV never renewed it), "not_yet_valid"
    (notBefore ``days`` after it: a vehicle clock or a backend issuing for the future) or
    "expires_soon" (valid, notAfter ``days`` after the session). ``secc_reaction`` "reject":
    the SECC answers FAILED_CertificateExpired (not yet valid: FAILED_CertChainError) and
    closes; "accept": it answers OK — for an invalid certificate a charger that does not
    validate (MSG018), for one that expires soon a charger that does not say
    OK_CertificateExpiresSoon ([V2G2-690], MSG019; the conforming answer is the
    certificate_expires_soon fault)."""
    name = "contract_certificate_not_valid"
    if state not in ("expired", "not_yet_valid", "expires_soon"):
        raise FaultError(f"{name}: state {state!r}; expired, not_yet_valid or expires_soon")
    allowed = ("accept",) if state == "expires_soon" else ("reject", "accept")
    if secc_reaction not in allowed:
        raise FaultError(f"{name}: secc_reaction {secc_reaction!r} with {state}; one of {', '.join(allowed)}")
    if not float(days) > 0:
        raise FaultError(f"{name}: days must be > 0")
    ci, xi, x = swap_contract_certificate(ctx, state, float(days), name)
    if secc_reaction == "reject":
        ed.refuse(ctx, ci, xi, x, "FAILED_CertificateExpired" if state == "expired" else "FAILED_CertChainError",
                  "the contract certificate")


_CHAIN_PROBLEMS = ("order", "too_many", "other_root", "leaf_ca")


@fault("contract_chain_broken", level="script", stage="after", category="message-content",
       problem="order", secc_reaction="reject")
def contract_chain_broken(ctx, problem, secc_reaction):
    """ISO 15118-2 Plug & Charge: the contract chain in PaymentDetailsReq is ``problem``
    "order" — the sub-CAs in the wrong order (Sub-CA 1 before Sub-CA 2), so the leaf is not
    issued by the next certificate; "too_many" — the MO root is sent as a third sub-CA
    certificate (ISO 15118-2 [V2G2-656] allows two); "other_root" — a well-formed chain of
    another mobility operator's PKI ("MO RootCA Other"), which leads to none of the
    simulator's roots (MSG023 when they are given as trust anchors); "leaf_ca" — the contract
    certificate issued as a CA (basicConstraints cA = true, keyCertSign: MSG024).
    ``secc_reaction``
    "reject": the SECC answers FAILED_CertChainError and closes; "accept": it answers OK
    (MSG018 for a broken or unanchored chain)."""
    name = "contract_chain_broken"
    if problem not in _CHAIN_PROBLEMS:
        raise FaultError(f"{name}: problem {problem!r}; one of {', '.join(_CHAIN_PROBLEMS)}")
    if secc_reaction not in ("reject", "accept"):
        raise FaultError(f"{name}: secc_reaction {secc_reaction!r}; reject or accept")
    ci, xi, x, m, chain = _payment_details(ctx, name)
    t0 = ctx.plan.connections[ci].start_t
    ders = _mo_chain(t0 - _YEAR, t0 + _YEAR, "Other" if problem == "other_root" else "Sim",
                     leaf_ca=problem == "leaf_ca")
    chain["Certificate"] = ders[0]
    chain["SubCertificates"] = {"Certificate": {"order": [ders[2], ders[1]], "too_many": ders[1:4]}.get(
        problem, ders[1:3])}
    ed.encodes(m)
    ed.note(m, f"{name}: " + {"order": "sub-CAs in the wrong order", "too_many": "root sent as a third sub-CA",
                              "other_root": "a chain of another mobility operator's PKI",
                              "leaf_ca": "the contract certificate issued as a CA"}[problem])
    if secc_reaction == "reject":
        ed.refuse(ctx, ci, xi, x, "FAILED_CertChainError", "the contract certificate")
