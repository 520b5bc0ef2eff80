"""Certificate chains checked against the trust anchors the user gives (``--trust``).

A Plug & Charge or TLS chain in a capture ends at a sub-CA; its root is the V2G root (SECC and
CPS chains), a mobility operator's root (contract chains) or an OEM root (provisioning
chains), which the capture does not carry (ISO 15118-2 §7.9 / Annex F; ISO 15118-20 §7.9 /
Annex C). Whether a chain leads to a root the user trusts is therefore a question about the
capture *and* the user's trust store: :class:`TrustStore` holds the roots (PEM or DER files,
or a folder of them), :func:`anchor_chain` builds the path with the ``cryptography``
package's verifier (RFC 5280 §6: signatures, names, basicConstraints CA and pathLenConstraint,
keyCertSign for issuers) and says:

* ``"anchored"`` — a path from the leaf through the chain's sub-CAs to a given root
  (``anchor``: its subject; ``path``: the subjects, leaf first);
* ``"not anchored"`` — roots were given, none is reached (``reason``);
* ``"unanchored"`` — no trust anchors were given: nothing can be said, and nothing is failed.

Validity in time is judged apart (rules MSG016 / TLS004 at the capture's time): a chain whose
certificates are out of date at the capture's time is still anchored when it leads to a given
root at a time inside every certificate's validity (``expired_at_capture`` says so).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification as xv

from .ocsp import issuer_key_hash

#: Certificates read from a trust folder at most (a wrong folder cannot make us read a disk).
MAX_ANCHORS = 1000
#: Largest file read as a trust anchor (a certificate bundle of 1000 roots is ~2 MB).
MAX_FILE_BYTES = 4 << 20


class TrustError(ValueError):
    """Trust anchors that cannot be used, and why (a file that holds no certificate, …)."""


class TrustStore:
    """Trust anchors (root CA certificates): ``certificates`` (cryptography objects) and
    ``sources`` (file of each). Build with :meth:`load` or from certificates directly."""

    def __init__(self, certificates: list[x509.Certificate], sources: list[str] | None = None):
        self.certificates = list(certificates)
        self.sources = list(sources or ["(given)"] * len(self.certificates))
        self._store = xv.Store(self.certificates) if self.certificates else None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrustStore":
        """Read the roots in ``path``: a PEM file (one or more certificates), a DER file, or a
        folder of such files (``*.pem``, ``*.crt``, ``*.cer``, ``*.der``). Raises
        :class:`TrustError` when the path cannot be read or holds no certificate."""
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in
                           (".pem", ".crt", ".cer", ".der"))
        elif p.is_file():
            files = [p]
        else:
            raise TrustError(f"trust anchors {path}: no such file or folder")
        certs, sources, bad = [], [], []
        for f in files:
            try:
                if f.stat().st_size > MAX_FILE_BYTES:
                    bad.append(f"{f.name}: larger than {MAX_FILE_BYTES >> 20} MiB")
                    continue
                data = f.read_bytes()
            except OSError as e:
                raise TrustError(f"trust anchors {f}: {e.strerror or e}") from e
            got = _certificates(data)
            if not got:
                bad.append(f"{f.name}: no PEM or DER certificate")
            for c in got[:MAX_ANCHORS - len(certs)]:
                certs.append(c)
                sources.append(f.name)
        if not certs:
            raise TrustError(f"trust anchors {path}: no certificate found"
                             + (f" ({'; '.join(bad[:3])})" if bad else ""))
        return cls(certs, sources)

    def describe(self) -> list[dict]:
        """The anchors as a report lists them: subject, file, notAfter."""
        return [{"subject": c.subject.rfc4514_string(), "file": s,
                 "not_after": c.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")}
                for c, s in zip(self.certificates, self.sources)]


def _certificates(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return list(x509.load_pem_x509_certificates(data))
        except ValueError:
            return []
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        return []


def _load(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _verify(store: TrustStore, leaf, intermediates, when: dt.datetime):
    builder = (xv.PolicyBuilder().store(store._store).time(when)
               .extension_policies(ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(),
                                   ee_policy=xv.ExtensionPolicy.permit_all()))
    return builder.build_client_verifier().verify(leaf, intermediates)


def anchor_chain(ders: list[bytes], at_epoch: float | None, store: TrustStore | None,
                 leaf_only: bool = False) -> dict:
    """Whether the chain ``ders`` (leaf first, as the message or TLS Certificate carries it)
    leads to an anchor of ``store`` (module docstring). ``at_epoch``: the capture time of the
    message (s); ``leaf_only``: the element carries a certificate without its sub-CAs by
    definition (ISO 15118-2 CertificateInstallationReq OEMProvisioningCert) — without a path
    the chain is "unanchored" (its intermediates are not in the capture), not "not
    anchored", unless the trust store holds them. Returns ``{"status", "anchor", "path",
    "reason", "expired_at_capture"}``. Never raises."""
    out = {"status": "unanchored", "anchor": None, "path": [], "reason": "", "expired_at_capture": False}
    if store is None or not store.certificates:
        out["reason"] = "no trust anchors given (--trust)"
        return out
    certs = [_load(d) for d in ders]
    if not certs or certs[0] is None:
        out.update(status="not anchored", reason="the leaf certificate cannot be read")
        return out
    leaf, inter = certs[0], [c for c in certs[1:] if c is not None]
    # anchoring is judged at a time inside every certificate's validity (validity at the
    # capture's time is MSG016's / TLS004's); at the capture's time first when it is given
    inside = max([c.not_valid_before_utc for c in certs if c is not None]
                 + [a.not_valid_before_utc for a in store.certificates]) + dt.timedelta(seconds=1)
    times = [inside]
    if at_epoch:
        times.insert(0, dt.datetime.fromtimestamp(at_epoch, dt.timezone.utc))
    got, why = None, ""
    for i, when in enumerate(times):
        try:
            got = _verify(store, leaf, inter, when)
            out["expired_at_capture"] = i > 0
            break
        except xv.VerificationError as e:
            why = why or _reason(str(e))
        except ValueError as e:      # a policy the certificates cannot meet at all
            why = why or str(e)
    if got is None:
        if leaf_only:
            out.update(status="unanchored", reason="the message carries the certificate without its sub-CAs; "
                                                   "give them with --trust to anchor it")
        else:
            out.update(status="not anchored", reason=why)
        return out
    chain = list(got.chain)
    out.update(status="anchored", anchor=chain[-1].subject.rfc4514_string(),
               path=[c.subject.rfc4514_string() for c in chain])
    return out


def _reason(text: str) -> str:
    """The verifier's message, in words a reader of the report understands."""
    if "candidates exhausted" in text:
        return "no path from the chain to any given trust anchor"
    return text.replace("validation failed: ", "")


def _root_candidates(chain_ders: list[bytes], store: TrustStore | None, trust: dict | None) -> list:
    """The certificates that may be the chain's root: the anchor the path was built to (when
    trust anchors were given and the chain is anchored), and any self-issued certificate the
    chain itself carries."""
    out = []
    if store is not None and trust and trust.get("status") == "anchored":
        out += [c for c in store.certificates if c.subject.rfc4514_string() == trust.get("anchor")]
    for d in chain_ders:
        c = _load(d)
        if c is not None and c.issuer == c.subject:
            out.append(c)
    return out


def trusted_ca_match(entries: list[dict], chain_ders: list[bytes], store: TrustStore | None = None,
                     trust: dict | None = None) -> dict:
    """Whether the server chain ``chain_ders`` is issued under a root the client listed in its
    trusted_ca_keys extension (RFC 6066 §6: ``entries`` as dissectors/tls_handshake.py parses them —
    key_sha1_hash, x509_name, cert_sha1_hash, pre_agreed). A listed name is compared with the
    issuer of the chain's last certificate; a listed hash with the root: the trust anchor the
    chain leads to (``trust``, from :func:`anchor_chain` with ``store``) or a root the chain
    carries (key hash: SHA-1 of the subjectPublicKey bits, as RFC 6066 defines it for ECDSA).
    Returns ``{"match": True / False / None (cannot tell: hashes only and the root unknown),
    "listed": n, "how": text}``."""
    if not entries or not chain_ders:
        return {"match": None, "listed": len(entries or ()), "how": "nothing to compare"}
    if any(e.get("type") == "pre_agreed" for e in entries):
        return {"match": None, "listed": len(entries), "how": "pre_agreed: the roots are agreed out of band"}
    last = _load(chain_ders[-1])
    names = [bytes.fromhex(e["name_der"]) for e in entries if e.get("type") == "x509_name" and e.get("name_der")]
    if last is not None and names:
        issuer = last.issuer.public_bytes()
        if issuer in names or last.subject.public_bytes() in names:
            return {"match": True, "listed": len(entries), "how": "the chain's issuer is a listed name"}
    roots = _root_candidates(chain_ders, store, trust)
    keys = {e["sha1"] for e in entries if e.get("type") == "key_sha1_hash" and e.get("sha1")}
    certs = {e["sha1"] for e in entries if e.get("type") == "cert_sha1_hash" and e.get("sha1")}
    for r in roots:
        if issuer_key_hash(r).hex() in keys or hashlib.sha1(r.public_bytes(Encoding.DER)).hexdigest() in certs:
            return {"match": True, "listed": len(entries), "how": f"the root {r.subject.rfc4514_string()} is listed"}
    if roots or (names and not keys and not certs):
        return {"match": False, "listed": len(entries),
                "how": "neither the chain's issuer nor its root is among the listed CAs"}
    return {"match": None, "listed": len(entries),
            "how": "the listed CAs are hashes and the chain's root is unknown (give --trust)"}
