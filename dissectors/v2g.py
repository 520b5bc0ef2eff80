"""Which EXI schema each V2GTP message of a TCP connection is encoded with, and its decode.

Per connection (ISO 15118-2 §8.2, ISO 15118-20 §8.3.3, DIN SPEC 70121 §8.2): the first
exchange is SupportedAppProtocol (namespace ``urn:iso:15118:2:2010:AppProtocol``); the EV's
``supportedAppProtocolReq`` lists AppProtocol entries (ProtocolNamespace, version, SchemaID,
Priority), the SECC's ``supportedAppProtocolRes`` echoes the SchemaID of the chosen entry
(PROTOCOL_FACTS §3). From then on:

* DIN 70121 / ISO 15118-2: every message is payload type 0x8001 in the chosen namespace;
* ISO 15118-20: the payload type names the schema (0x8002 CommonMessages, 0x8003 AC,
  0x8004 DC, 0x8005 ACDP, 0x8006 WPT; side streams 0x8101-0x8104), PROTOCOL_FACTS §1.2.

When the capture starts after the handshake (or the handshake was not captured) the schema
is detected from the messages themselves: the candidates are tried and the first that yields
a V2G message (root ``V2G_Message`` for DIN / ISO-2, a ``…Req`` / ``…Res`` element for -20)
is kept for the connection, and every event says it was detected, not negotiated.

Plug & Charge messages that carry X.509 certificates get them described in the event's
``info["certificates"]`` (dissectors/v2g_certificates.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from . import exi
from .events import UNDECODABLE_EXI
from .exi.namespaces import (NS_APP_PROTOCOL as NS_SAP, NS_DIN, NS_ISO2, NS_ISO20_AC, NS_ISO20_ACDP,
                             NS_ISO20_CM, NS_ISO20_DC, NS_ISO20_PREFIX as NS_ISO20, NS_ISO20_WPT,
                             PROTOCOL_BY_NAMESPACE)
from .v2g_certificates import CERTIFICATE_MESSAGES, describe_v2g_certificates
from .v2g_signatures import SignatureTracker, header_signature

#: ISO 15118-20 Table 12: payload type → schema namespace(s) to try, most likely first.
ISO20_PAYLOAD_NS = {
    0x8001: (NS_SAP,),
    0x8002: (NS_ISO20_CM,),
    0x8003: (NS_ISO20_AC,),
    0x8004: (NS_ISO20_DC,),
    0x8005: (NS_ISO20_ACDP,),
    0x8006: (NS_ISO20_WPT,),
    0x8101: (NS_ISO20_DC, NS_ISO20_AC, NS_ISO20_WPT, NS_ISO20_CM),
    0x8102: (NS_ISO20_CM,),
    0x8103: (NS_ISO20_ACDP,),
    0x8104: (NS_ISO20_CM,),
}
_ISO20_ALL = (NS_ISO20_CM, NS_ISO20_DC, NS_ISO20_AC, NS_ISO20_ACDP, NS_ISO20_WPT)


@lru_cache(maxsize=8192)
def _decode_cached(payload: bytes, namespace: str) -> tuple[dict, int, str, bool, bool]:
    """``exi.decode_with_length`` memoised, with what :meth:`V2gChannel.decode` asks of every
    tree: (tree, octets used, message name (``exi.message_name``), whether it is a plausible
    V2G message of ``namespace`` (:func:`_is_v2g_message`), whether its header carries a
    Signature). Charge loops repeat byte-identical messages (9 of 10 messages of the corpus
    are repeats), so most decodes are cache hits. The returned tree is shared between events
    and must be treated as read-only (nothing in the analyzer modifies a decoded tree).
    Failures are not cached (they raise)."""
    tree, used = exi.decode_with_length(payload, namespace)
    return (tree, used, exi.message_name(tree), _is_v2g_message(tree, namespace),
            header_signature(tree)[0] is not None)


def _body(tree: dict, name: str):
    """The message element's content: ``V2G_Message.Body.<name>`` (DIN, ISO 15118-2) or the
    root element's (ISO 15118-20)."""
    root = tree.get("V2G_Message")
    if isinstance(root, dict):
        body = root.get("Body")
        return body.get(name) if isinstance(body, dict) else None
    return tree.get(name)


def protocol_of(namespace: str | None) -> str | None:
    """Human protocol label of a schema namespace (``DIN 70121``, ``ISO 15118-2`` …)."""
    if namespace is None:
        return None
    if namespace in PROTOCOL_BY_NAMESPACE:
        return PROTOCOL_BY_NAMESPACE[namespace]
    if namespace.startswith(NS_ISO20):
        return "ISO 15118-20"
    return namespace


def _is_v2g_message(tree: dict, namespace: str) -> bool:
    """Whether a decoded tree is a plausible V2G message of that schema (used when the
    schema is guessed: a wrong schema may still decode to some global element)."""
    root = next(iter(tree), "")
    if namespace == NS_SAP:
        return root in ("supportedAppProtocolReq", "supportedAppProtocolRes")
    if namespace in (NS_DIN, NS_ISO2):
        return root == "V2G_Message"
    return root.endswith("Req") or root.endswith("Res")


@dataclass(slots=True)
class Decoded:
    """Result of decoding one V2GTP payload: ``name`` (message name or a placeholder),
    ``namespace`` (schema used), ``tree`` (or None), ``error`` (or None), ``notes``
    (facts about how the schema was chosen)."""

    name: str
    namespace: str | None
    tree: dict | None
    error: str | None
    notes: dict = field(default_factory=dict)


#: The namespaces tried, in order, on a connection that negotiated DIN 70121 or ISO 15118-2:
#: its own, the handshake's, the other one.
_NEGOTIATED_DIN_ISO2 = {ns: [ns, NS_SAP] + [n for n in (NS_DIN, NS_ISO2) if n != ns]
                        for ns in (NS_DIN, NS_ISO2)}


class V2gChannel:
    """The application-protocol state of one TCP connection (see module docstring).

    ``offered``: SchemaID → AppProtocol entry of the EV's request (the first entry of a duplicated
    SchemaID, as rules/handshake.py reads it); ``namespace``: the
    negotiated (or detected) protocol namespace; ``negotiated_frame``; ``detected`` (True
    when inferred from the messages); ``response_code`` of the handshake.
    """

    def __init__(self, trust=None) -> None:
        self.trust = trust                    # dissectors/x509trust.TrustStore (--trust) or None
        self.offered: dict[int, dict] = {}
        self.namespace: str | None = None
        self.negotiated_frame: int | None = None
        self.response_code: str | None = None
        self.detected = False
        self.handshake_failed = False
        self.signature_state: SignatureTracker | None = None   # made at the first PnC message

    def _signatures(self) -> SignatureTracker:
        """The connection's certificates and signature checks (dissectors/v2g_signatures.py)."""
        if self.signature_state is None:
            self.signature_state = SignatureTracker()
        return self.signature_state

    def _candidates(self, payload_type: int) -> tuple[list[str], bool]:
        """Namespaces to try, in order, and whether the first one is certain."""
        ns = self.namespace
        if ns in _NEGOTIATED_DIN_ISO2:        # (nearly every message of a DIN / -2 session)
            return _NEGOTIATED_DIN_ISO2[ns], True
        if ns is None:
            if payload_type == 0x8001:
                return [NS_SAP, NS_DIN, NS_ISO2, *_ISO20_ALL], True
            return [*ISO20_PAYLOAD_NS.get(payload_type, ()), *_ISO20_ALL], False
        if ns.startswith(NS_ISO20):
            first = list(ISO20_PAYLOAD_NS.get(payload_type, ()))
            return first + [n for n in (NS_SAP, *_ISO20_ALL) if n not in first], bool(first)
        # negotiated a namespace we have no schema for
        return [NS_SAP, NS_DIN, NS_ISO2, *_ISO20_ALL], False

    def decode(self, payload: bytes, payload_type: int, frame: int) -> Decoded:
        """Decode one EXI payload; update the handshake state. Never raises."""
        cands, certain = self._candidates(payload_type)
        first_error = None
        first_ns = cands[0] if cands else None
        for i, ns in enumerate(cands):
            try:
                tree, used, name, plausible, signed = _decode_cached(bytes(payload), ns)
            except ValueError as e:
                if first_error is None:
                    first_error = str(e)
                continue
            except Exception as e:  # a codec bug must not stop the capture's analysis
                if first_error is None:
                    first_error = f"EXI decoder failure ({type(e).__name__}: {e})"
                continue
            if not plausible:
                if first_error is None:
                    first_error = f"decodes with {ns} to {next(iter(tree), '?')}, not a V2G message"
                continue
            notes: dict = {}
            if used < len(payload):
                extra = payload[used:]
                notes["trailing_bytes"] = {"count": len(extra), "hex": extra[:32].hex(),
                                           "note": "octets after the end of the EXI document "
                                                   "(inside the V2GTP payload length)"}
            if i > 0 and certain:
                notes["schema_fallback"] = {"expected": first_ns, "error": first_error}
            if name in CERTIFICATE_MESSAGES:
                certs = describe_v2g_certificates(name, _body(tree, name), self.trust)
                if certs:
                    notes["certificates"] = certs
                self._signatures().note_certificates(name, _body(tree, name),
                                                     ns.startswith(NS_ISO20), frame)
            if signed:
                notes["signature"] = self._signatures().check(name, tree, ns,
                                                              ns.startswith(NS_ISO20), frame)
            self._track(ns, name, tree, frame, notes)
            return Decoded(name, ns, tree, None, notes)
        notes = {"schemas_tried": list(cands)}
        return Decoded(UNDECODABLE_EXI, first_ns if certain else None, None,
                       first_error or "no schema applies", notes)

    def _track(self, ns: str, name: str, tree: dict, frame: int, notes: dict) -> None:
        if ns == NS_SAP:
            body = tree.get(name)
            if not isinstance(body, dict):      # an empty element (EXI EE right after SE)
                body = {}
            if name == "supportedAppProtocolReq":
                apl = body.get("AppProtocol", [])
                if isinstance(apl, dict):
                    apl = [apl]
                self.offered = {}
                for a in apl:       # a duplicated SchemaID (HSK006): the first entry counts
                    if isinstance(a, dict):
                        self.offered.setdefault(a.get("SchemaID"), a)
            elif name == "supportedAppProtocolRes":
                self.response_code = body.get("ResponseCode")
                sid = body.get("SchemaID")
                entry = self.offered.get(sid)
                self.negotiated_frame = frame
                if str(self.response_code).startswith("OK") and entry:
                    self.namespace = entry.get("ProtocolNamespace")
                    self.detected = False
                    notes["negotiated"] = {"namespace": self.namespace, "SchemaID": sid}
                else:
                    self.handshake_failed = True
            return
        if self.namespace is None or self.namespace not in (NS_DIN, NS_ISO2) and \
                not self.namespace.startswith(NS_ISO20):
            self.namespace = NS_ISO20_CM if ns.startswith(NS_ISO20) else ns
            self.detected = True
        if self.detected:
            notes["schema_detected"] = ("no SupportedAppProtocol handshake seen on this "
                                        "connection: schema detected from the message itself")
