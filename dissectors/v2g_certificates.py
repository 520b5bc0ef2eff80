"""X.509 certificates carried inside V2G messages (Plug & Charge), described for the rules.

Plug & Charge messages carry DER certificates as base64Binary elements, which the decoded
tree holds as lowercase hex (DESIGN.md decoded-form contract):

- ISO 15118-2 (and the DIN 70121 schema, which has the same types): PaymentDetailsReq
  ContractSignatureCertChain; CertificateInstallationReq OEMProvisioningCert;
  CertificateUpdateReq ContractSignatureCertChain; CertificateInstallationRes /
  CertificateUpdateRes SAProvisioningCertificateChain and ContractSignatureCertChain
  (certificateChainType: Certificate, SubCertificates/Certificate{1..4};
  ISO 15118-2 §8.5.2.x, [V2G2-656] at most two sub-CA certificates).
- ISO 15118-20: AuthorizationReq PnC_AReqAuthorizationMode ContractCertificateChain;
  CertificateInstallationReq OEMProvisioningCertificateChain; CertificateInstallationRes
  CPSCertificateChain and SignedInstallationData ContractCertificateChain (the same
  Certificate / SubCertificates shape).

:func:`describe_v2g_certificates` finds every such chain in a decoded message and describes
it with :func:`ccs_analyzer.dissectors.x509info.describe_chain` (leaf first, each
certificate checked against the next). The V2G layer (dissectors/v2g.py) puts the result in
the event's ``info["certificates"]``; rules read it there and never parse DER themselves.
"""
from __future__ import annotations

import re

from .x509info import describe_certificate, describe_chain
from .x509trust import anchor_chain

#: Messages that can carry certificates (any namespace); others are not searched.
CERTIFICATE_MESSAGES = frozenset({
    "PaymentDetailsReq", "CertificateInstallationReq", "CertificateInstallationRes",
    "CertificateUpdateReq", "CertificateUpdateRes", "AuthorizationReq"})

#: Elements holding one bare certificate (not a chain).
_SINGLE = frozenset({"OEMProvisioningCert"})

#: A DER certificate as the decoder writes base64Binary: hex, starting with SEQUENCE (0x30).
_HEX = re.compile(r"30[0-9a-f]{6,}\Z")

#: Certificates described per message at most (a hostile message cannot make us parse more).
MAX_CERTIFICATES = 16


def _as_list(x) -> list:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def _der(x) -> bytes | None:
    if isinstance(x, str) and len(x) % 2 == 0 and _HEX.match(x):
        try:
            return bytes.fromhex(x)
        except ValueError:
            return None
    return None


def _chains(node, path: str, out: list) -> None:
    if isinstance(node, dict):
        cert = node.get("Certificate")
        if isinstance(cert, str):
            subs = _as_list((node.get("SubCertificates") or {}).get("Certificate")
                            if isinstance(node.get("SubCertificates"), dict) else None)
            out.append((path, [cert, *subs], len(subs)))
        for k, v in node.items():
            if k in _SINGLE and isinstance(v, str):
                out.append((f"{path}.{k}" if path else k, [v], 0))
            elif k not in ("Certificate", "SubCertificates") and isinstance(v, (dict, list)):
                _chains(v, f"{path}.{k}" if path else k, out)
    elif isinstance(node, list):
        for v in node:
            _chains(v, path, out)


def describe_v2g_certificates(name: str, body: dict | None, trust=None) -> list[dict]:
    """The certificate chains of one decoded V2G message body.

    ``name``: the message name (SessionSetupReq …); ``body``: the dict under
    ``V2G_Message.Body.<name>`` (ISO 15118-2 / DIN) or the -20 root element's content.
    Returns ``[{"element": "PaymentDetailsReq.ContractSignatureCertChain",
    "sub_certificates": int, "certificates": [describe_chain dicts, leaf first]}]`` (empty
    for messages of :data:`CERTIFICATE_MESSAGES` without certificates and for every other
    message). A value that is not hex DER is described as ``{"error": …}`` in its place;
    at most :data:`MAX_CERTIFICATES` certificates are parsed per message, those beyond are
    counted in ``"not_described"``. Each chain whose certificates all parse also gets
    ``"trust"``: :func:`~.x509trust.anchor_chain` against ``trust`` (a
    :class:`~.x509trust.TrustStore`; None: "unanchored"). Never raises.
    """
    if name not in CERTIFICATE_MESSAGES or not isinstance(body, dict):
        return []
    found: list = []
    _chains(body, name, found)
    out, budget = [], MAX_CERTIFICATES
    for path, values, n_sub in found:
        left_out = max(0, len(values) - budget)
        values = values[:budget]
        budget -= len(values)
        ders = [_der(v) for v in values]
        if all(d is not None for d in ders):
            chain = describe_chain(ders)
        else:                       # no links judged across a value that is not a certificate
            chain = [dict(describe_certificate(d), index=i) if d is not None else
                     {"index": i, "error": "not a DER certificate (hex expected)"}
                     for i, d in enumerate(ders)]
        item = {"element": path, "sub_certificates": n_sub, "certificates": chain}
        if ders and all(d is not None for d in ders) and not any(c.get("error") for c in chain):
            item["trust"] = anchor_chain(ders, None, trust, leaf_only=path.rsplit(".", 1)[-1] in _SINGLE)
        if left_out:
            item["not_described"] = left_out
        out.append(item)
    return out
