"""xmldsig signatures of V2G messages, checked offline from the capture.

Plug & Charge messages carry an XML Signature in their header (ISO 15118-2 §7.9.2.4,
[V2G2-771] ff.; DIN 70121 has the same header; ISO 15118-20 §8.4). Each ``Reference`` names
an element of the message by its ``Id`` attribute (``URI="#ID1"``) and carries the digest of
that element's EXI encoding — an EXI *fragment* with the schema-informed Fragment grammar of
the message's schema (EXI 1.0 §8.5.3; the canonical-exi transform). ``SignatureValue`` signs
the EXI fragment of ``SignedInfo``, encoded against the xmldsig schema alone (what RISE-V2G,
EXIficient and OpenV2G do, and what the corpus's real signatures verify with): ECDSA
secp256r1 / SHA-256 with the raw r‖s value (64 octets) in ISO 15118-2 and DIN 70121
([V2G2-771]), secp521r1 / SHA-512 (r‖s, 132 octets) or Ed448 (114 octets) in ISO 15118-20.

Who signs what (ISO 15118-2 §8.4.3 / §8.5; ISO 15118-20 §8.3.x):

============================  ====================================================
message                       signer's certificate
============================  ====================================================
AuthorizationReq (-2, DIN)    contract certificate of the session's PaymentDetailsReq
MeteringReceiptReq            contract certificate of the session
CertificateInstallationReq    OEM provisioning certificate in the message
CertificateUpdateReq          contract certificate (ContractSignatureCertChain) in it
CertificateInstallationRes,   SA provisioning (CPS) leaf: SAProvisioningCertificateChain
CertificateUpdateRes          (-20: CPSCertificateChain) in the message
AuthorizationReq (-20 PnC)    contract certificate (ContractCertificateChain) in it
MeteringConfirmationReq       contract certificate of the session
ChargeParameterDiscoveryRes   the SalesTariff signer (MO): a certificate of the
(SalesTariff) and others      session's contract chain, found by trying them
============================  ====================================================

:func:`check_references` (no key needed) recomputes every digest; :func:`verify_signed_info`
checks SignatureValue with a certificate's public key; :class:`SignatureTracker` keeps, per
TCP connection, the certificates the session has shown so far and puts both results into a
message's ``info["signature"]``. Rules read it there and never encode or verify anything.
"""
from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from . import exi
from .exi.encoder import fragment_table
from .exi.errors import ExiEncodeError
from .exi.grammar import load
from .exi.namespaces import NS_XMLDSIG

#: DigestMethod Algorithm URI -> hashlib constructor name (RFC 6931 / xmlenc).
DIGEST_METHODS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
    "http://www.w3.org/2007/05/xmldsig-more#shake256": "shake_256",   # ISO 15118-20 Ed448
}

#: SignatureMethod Algorithm URI -> (kind, hash, octets of the raw signature value).
SIGNATURE_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ecdsa", hashes.SHA256, 64),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ecdsa", hashes.SHA384, 96),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ecdsa", hashes.SHA512, 132),
    "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448": ("ed448", None, 114),
}

#: The canonical-exi transform / canonicalization ISO 15118 prescribes ([V2G2-767], [V2G2-769]).
CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"

#: Elements searched for an Id per message at most (a hostile message cannot make us walk more).
MAX_NODES = 5000


def header_signature(tree: dict) -> tuple[dict | None, dict | None]:
    """(the header's ``Signature``, the message body to resolve References in) of a decoded
    V2G message: ``V2G_Message.Header.Signature`` and ``Body`` (DIN 70121, ISO 15118-2), or
    the root element's ``Header.Signature`` and the root element (ISO 15118-20)."""
    if not isinstance(tree, dict) or not tree:
        return None, None
    root, msg = next(iter(tree.items()))
    if not isinstance(msg, dict):
        return None, None
    header = msg.get("Header")
    sig = header.get("Signature") if isinstance(header, dict) else None
    if not isinstance(sig, dict):
        return None, None
    if root == "V2G_Message":
        body = msg.get("Body")
        return sig, body if isinstance(body, dict) else {}
    return sig, {root: {k: v for k, v in msg.items() if k != "Header"}}


def find_id(node, ident: str) -> tuple[str, dict] | None:
    """(element name, value) of the element whose ``Id`` attribute is ``ident`` in a decoded
    tree, depth first; None when there is none."""
    stack = [(k, v) for k, v in node.items()] if isinstance(node, dict) else []
    seen = 0
    while stack and seen < MAX_NODES:
        name, val = stack.pop(0)
        seen += 1
        items = val if isinstance(val, list) else [val]
        for it in items:
            if isinstance(it, dict):
                if it.get("Id") == ident:
                    return name, it
                stack.extend((k, v) for k, v in it.items())
    return None


def _digest(algorithm: str, data: bytes) -> bytes:
    h = hashlib.new(algorithm)
    h.update(data)
    return h.digest(64) if algorithm == "shake_256" else h.digest()


def _as_list(x) -> list:
    return [] if x is None else x if isinstance(x, list) else [x]


def _fragments(name: str, value, namespace: str) -> list[bytes]:
    """The element's EXI fragment(s): one per namespace of the schema set declaring a
    global or local element of that local name (the decoded tree keeps no namespaces; all
    but a few names are declared once). Raises ExiEncodeError when none can be encoded."""
    order, _ = fragment_table(load(namespace))
    out, err = [], None
    for n, uri in order:
        if n == name:
            try:
                out.append(exi.encode_fragment(name, value, namespace, uri=uri))
            except ValueError as e:
                err = e
    if not out:
        raise err or ExiEncodeError(f"{name!r} is not declared in the schema of {namespace}", name)
    return out


def check_references(tree: dict, namespace: str) -> dict | None:
    """Recompute the digests of a signed message's References.

    Returns None when the message has no header Signature, else ``{"method": SignatureMethod
    URI, "references": [{"uri", "element", "algorithm", "status", "carried", "computed",
    "error"}], "signed_info": hex of SignedInfo's EXI fragment (None with "signed_info_error"
    when it cannot be encoded), "value": SignatureValue hex}``. A Reference's status:
    "ok" (digest equal), "mismatch", "unresolved" (no element with that Id in the message),
    "unsupported" (a digest algorithm or transform ISO 15118 does not use, or an element
    this codec cannot encode as a fragment: ``error`` says which). Never raises."""
    sig, body = header_signature(tree)
    if sig is None:
        return None
    si = sig.get("SignedInfo") if isinstance(sig.get("SignedInfo"), dict) else {}
    method = (si.get("SignatureMethod") or {}).get("Algorithm") if isinstance(si.get("SignatureMethod"), dict) else None
    value = sig.get("SignatureValue")
    value = value.get("value") if isinstance(value, dict) else value
    refs = []
    for ref in _as_list(si.get("Reference")):
        if not isinstance(ref, dict):
            continue
        uri = ref.get("URI")
        dm = ref.get("DigestMethod")
        alg_uri = dm.get("Algorithm") if isinstance(dm, dict) else None
        alg = DIGEST_METHODS.get(alg_uri)
        carried = ref.get("DigestValue") if isinstance(ref.get("DigestValue"), str) else None
        item = {"uri": uri, "element": None, "algorithm": alg_uri, "status": "unsupported",
                "carried": carried, "computed": None, "error": None}
        refs.append(item)
        transforms = [t.get("Algorithm") for t in _as_list((ref.get("Transforms") or {}).get("Transform"))
                      if isinstance(t, dict)] if isinstance(ref.get("Transforms"), dict) else []
        if alg is None:
            item["error"] = f"digest algorithm {alg_uri!r} is not one ISO 15118 uses"
            continue
        if any(t != CANONICAL_EXI for t in transforms):
            item["error"] = f"transform {transforms} is not canonical-exi ([V2G2-767])"
            continue
        found = find_id(body, uri[1:]) if isinstance(uri, str) and uri.startswith("#") else None
        if found is None:
            item["status"] = "unresolved"
            item["error"] = f"no element of the message has Id {uri!r}"
            continue
        item["element"] = found[0]
        try:
            digests = [_digest(alg, f).hex() for f in _fragments(found[0], found[1], namespace)]
        except ValueError as e:
            item["error"] = f"cannot encode {found[0]} as an EXI fragment: {e}"
            continue
        match = carried is not None and carried.lower() in digests
        item["computed"] = carried.lower() if match else digests[0]
        item["status"] = "ok" if match else "mismatch"
    out = {"method": method, "references": refs, "signed_info": None, "signed_info_error": None,
           "value": value if isinstance(value, str) else None}
    try:
        out["signed_info"] = exi.encode_fragment("SignedInfo", si, namespace, only_uri=NS_XMLDSIG).hex()
    except ValueError as e:
        out["signed_info_error"] = str(e)
    return out


def verify_signed_info(signed_info: bytes, method: str | None, value: bytes,
                       cert_der: bytes) -> tuple[bool | None, str]:
    """Check ``value`` (SignatureValue octets) over ``signed_info`` (SignedInfo's EXI
    fragment) with the public key of the DER certificate ``cert_der``. Returns (True, "")
    when it verifies; (False, why) when it does not — wrong length, a key of another type
    than the method needs, or a signature that does not match; (None, why) when it cannot be
    checked (an unsupported method, an unreadable certificate)."""
    spec = SIGNATURE_METHODS.get(method or "")
    if spec is None:
        return None, f"signature method {method!r} is not one ISO 15118 uses"
    kind, hash_cls, size = spec
    try:
        key = x509.load_der_x509_certificate(cert_der).public_key()
    except (ValueError, TypeError) as e:
        return None, f"the signer's certificate cannot be read ({e})"
    if len(value) != size:
        return False, f"SignatureValue has {len(value)} octets; {method.rsplit('#', 1)[-1]} needs {size}"
    try:
        if kind == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return False, f"the signer's key is {type(key).__name__.lstrip('_')}, not ECDSA"
            half = size // 2
            der = encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
            key.verify(der, signed_info, ec.ECDSA(hash_cls()))
        else:
            if not isinstance(key, ed448.Ed448PublicKey):
                return False, f"the signer's key is {type(key).__name__.lstrip('_')}, not Ed448"
            key.verify(value, signed_info)
    except InvalidSignature:
        return False, "SignatureValue does not verify with the signer's public key"
    return True, ""


#: message -> where its signer's certificate is: ("in", path of the certificate in the body)
#: or ("session", the session's certificate role) — module docstring table.
SIGNERS = {
    "AuthorizationReq": ("session", "contract"),
    "MeteringReceiptReq": ("session", "contract"),
    "MeteringConfirmationReq": ("session", "contract"),
    "CertificateInstallationReq": ("in", ("OEMProvisioningCert",), "OEM provisioning"),
    "CertificateUpdateReq": ("in", ("ContractSignatureCertChain", "Certificate"), "contract"),
    "CertificateInstallationRes": ("in", ("SAProvisioningCertificateChain", "Certificate"), "CPS (SA provisioning)"),
    "CertificateUpdateRes": ("in", ("SAProvisioningCertificateChain", "Certificate"), "CPS (SA provisioning)"),
}
#: ISO 15118-20 forms where the certificate travels in the message itself.
SIGNERS_20 = {
    "AuthorizationReq": ("in", ("PnC_AReqAuthorizationMode", "ContractCertificateChain", "Certificate"), "contract"),
    "CertificateInstallationReq": ("in", ("OEMProvisioningCertificateChain", "Certificate"), "OEM provisioning"),
    "CertificateInstallationRes": ("in", ("CPSCertificateChain", "Certificate"), "CPS"),
}


def _at(node, path: tuple) -> str | None:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, str) else None


def _subject(der: bytes) -> str:
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return "(unreadable certificate)"


class SignatureTracker:
    """Per TCP connection (one V2G session's stream): the certificates seen so far and the
    signature check of each signed message (``info["signature"]``)."""

    def __init__(self):
        self.contract: tuple[bytes, int] | None = None      # (DER, frame) of the contract leaf
        self.contract_chain: list[bytes] = []               # its sub-CAs
        self.seen: list[tuple[bytes, int, str]] = []        # every certificate: DER, frame, role

    def _keep(self, der_hex: str | None, frame: int, role: str) -> bytes | None:
        try:
            der = bytes.fromhex(der_hex) if der_hex else None
        except ValueError:
            return None
        if der and all(d != der for d, _, _ in self.seen) and len(self.seen) < 32:
            self.seen.append((der, frame, role))
        return der

    def note_certificates(self, name: str, body: dict | None, iso20: bool, frame: int) -> None:
        """Remember the contract certificate (and its sub-CAs) a message shows: -2 / DIN
        PaymentDetailsReq and CertificateUpdateReq ContractSignatureCertChain, the -20
        AuthorizationReq ContractCertificateChain; and the in-message signers of the tables."""
        if not isinstance(body, dict):
            return
        chain = None
        if name in ("PaymentDetailsReq", "CertificateUpdateReq") and not iso20:
            chain = body.get("ContractSignatureCertChain")
        elif name == "AuthorizationReq" and iso20:
            pnc = body.get("PnC_AReqAuthorizationMode")
            chain = pnc.get("ContractCertificateChain") if isinstance(pnc, dict) else None
        if isinstance(chain, dict):
            leaf = self._keep(chain.get("Certificate"), frame, "contract")
            if leaf:
                self.contract = (leaf, frame)
                subs = chain.get("SubCertificates")
                self.contract_chain = [d for d in (self._keep(c, frame, "contract sub-CA")
                                                   for c in _as_list(subs.get("Certificate") if isinstance(subs, dict) else None)
                                                   if isinstance(c, str)) if d]

    def check(self, name: str, tree: dict, namespace: str, iso20: bool, frame: int) -> dict | None:
        """``info["signature"]`` of a message: :func:`check_references`' result with
        ``signer`` ({"role", "subject", "frame"} or None when the session showed no such
        certificate), ``valid`` (SignatureValue over SignedInfo: True / False / None when it
        cannot be checked) and ``reason`` (why not True). The References' digests are judged
        apart (``references[i]["status"]``): core validation needs both."""
        got = check_references(tree, namespace)
        if got is None:
            return None
        _, body = header_signature(tree)
        inner = body.get(name) if isinstance(body, dict) else None
        where = (SIGNERS_20 if iso20 else SIGNERS).get(name)
        candidates: list[tuple[bytes, int, str]] = []
        if where and where[0] == "in":
            der = self._keep(_at(inner, where[1]), frame, where[2])
            if der:
                candidates.append((der, frame, where[2]))
        elif where and self.contract:
            candidates.append((self.contract[0], self.contract[1], "contract"))
        expected = bool(candidates)
        if not candidates:            # SalesTariff and others: any certificate of the session
            candidates = [c for c in self.seen]
        got["signer"], got["valid"], got["reason"] = None, None, ""
        if got["signed_info"] is None:
            got["reason"] = f"SignedInfo cannot be encoded: {got['signed_info_error']}"
            return got
        try:
            value = bytes.fromhex(got["value"] or "")
        except ValueError:
            value = b""
        si = bytes.fromhex(got["signed_info"])
        first = None
        for der, fr, role in candidates:
            ok, why = verify_signed_info(si, got["method"], value, der)
            if first is None:
                first = (der, fr, role, ok, why)
            if ok:
                got["signer"] = {"role": role, "subject": _subject(der), "frame": fr}
                got["valid"] = True
                break
        else:
            if first is None:
                got["reason"] = (f"no {where[2] if where and where[0] == 'in' else 'contract'} certificate "
                                 "in the session to verify it with" if where else
                                 "no certificate in the session to verify it with")
            elif expected or len(candidates) == 1:
                der, fr, role, ok, why = first
                got["signer"] = {"role": role, "subject": _subject(der), "frame": fr}
                got["valid"], got["reason"] = ok, why
            else:
                got["reason"] = "no certificate of the session verifies it"
        return got
