"""Schema-informed EXI codec for V2G messages (W3C EXI 1.0 Second Edition).

Streams are decoded and encoded exactly as the reference codec (EXIficient, as shipped in
the iso15118 wheel) does for V2G traffic: bit-packed, default fidelity options, no options
in the header, no value string table (valuePartitionCapacity 0), non-strict grammars built
from the XSDs of each namespace (`NAMESPACES`). The grammars are generated from the XSDs
(``python -m ccs_analyzer.dissectors.exi.generate``) into ``grammars/``.

API:

* `decode(data, namespace)` → ``{root local name: value}`` (tree contract in
  docs/architecture.md); raises `ExiDecodeError` (``.bit_offset``, ``.state``).
* `decode_with_length(data, namespace)` → (tree, octets the document occupies).
* `encode(tree, namespace)` → bytes; raises `ExiEncodeError` naming the path in the tree.
* `encode_fragment(name, value, namespace, uri=None, only_uri=None)` → one element as an EXI
  fragment (§8.5.3), the form xmldsig References and SignedInfo are digested in.
* `message_name(tree)` → the Body child's name for V2G_Message trees, else the root key.

Unknown namespaces raise ExiDecodeError / ExiEncodeError (both are ValueErrors).
"""
from __future__ import annotations

from ..events import V2G_EMPTY_BODY
from .decoder import decode_stream
from .encoder import encode_fragment_tree, encode_tree
from .errors import ExiDecodeError, ExiEncodeError
from .grammar import load
from .namespaces import (NAMESPACES, NS_APP_PROTOCOL, NS_DIN, NS_ISO2, NS_ISO20_AC,
                         NS_ISO20_ACDP, NS_ISO20_CM, NS_ISO20_DC, NS_ISO20_WPT, NS_XMLDSIG)

__all__ = [
    "decode", "decode_with_length", "encode", "encode_fragment", "message_name", "ExiDecodeError", "ExiEncodeError", "NAMESPACES",
    "NS_APP_PROTOCOL", "NS_DIN", "NS_ISO2", "NS_ISO20_CM", "NS_ISO20_AC", "NS_ISO20_DC",
    "NS_ISO20_ACDP", "NS_ISO20_WPT", "NS_XMLDSIG",
]


def decode(data: bytes, namespace: str) -> dict:
    """Decode an EXI stream encoded with the grammars of ``namespace``.

    ``data``: the EXI payload (bytes-like, starting with the EXI header 0x80).
    Returns a dict with one key, the root element's local name (EXI 1.0 §8.5.4.1.2
    document grammar). Raises ExiDecodeError for anything that is not a decodable stream
    — truncation, event codes the grammar does not allow, values running past the end —
    with the bit offset and grammar state; never another exception for bad input.
    """
    try:
        g = load(namespace)
    except KeyError:
        raise ExiDecodeError(f"no grammar for namespace {namespace!r}", 0, "namespace") from None
    return decode_stream(bytes(data), g)


def decode_with_length(data: bytes, namespace: str) -> tuple[dict, int]:
    """Like :func:`decode`, and also the number of octets the EXI document occupies (its
    events up to ED, then the zero padding to an octet boundary, EXI 1.0 §5 / §8.2).
    Octets after that belong to no document: the caller can report them."""
    try:
        g = load(namespace)
    except KeyError:
        raise ExiDecodeError(f"no grammar for namespace {namespace!r}", 0, "namespace") from None
    end: list = []
    tree = decode_stream(bytes(data), g, end)
    return tree, (end[0] + 7) >> 3 if end else len(data)


def encode(tree: dict, namespace: str) -> bytes:
    """Encode a decoded-tree dict (one root key) with the grammars of ``namespace``.

    Produces the bit-packed stream the reference codec produces for the same document
    (header 0x80, EXI 1.0 §5; events §8.5.4; values §7.1), padded with zero bits.
    Raises ExiEncodeError, naming the path, for trees the schema does not allow.
    """
    try:
        g = load(namespace)
    except KeyError:
        raise ExiEncodeError(f"no grammar for namespace {namespace!r}", "") from None
    return encode_tree(tree, g)


def encode_fragment(name: str, value, namespace: str, uri: str | None = None,
                    only_uri: str | None = None) -> bytes:
    """Encode one element (``name``, its decoded-tree ``value``) as an EXI fragment with the
    schema-informed Fragment grammar of ``namespace``'s schema set (EXI 1.0 §8.5.3): what
    an xmldsig Reference with the canonical-exi transform digests (ISO 15118-2 §7.9.2.4.2,
    ISO 15118-20 §8.4). ``uri``: the element's namespace when its name is declared in
    several; ``only_uri``: use the declarations of that namespace alone (SignedInfo:
    NS_XMLDSIG, the xmldsig schema alone, as the real stacks encode it). Raises
    ExiEncodeError (encoder.encode_fragment_tree)."""
    try:
        g = load(namespace)
    except KeyError:
        raise ExiEncodeError(f"no grammar for namespace {namespace!r}", "") from None
    return encode_fragment_tree(name, value, g, uri, only_uri)


def message_name(tree: dict) -> str:
    """The message's name: for ``{"V2G_Message": {..., "Body": {"X": ...}}}`` trees (DIN,
    ISO 15118-2) the Body child's name ("PreChargeReq"), ``"(empty Body)"`` when the Body
    is empty; otherwise the root key ("supportedAppProtocolReq", "DC_ChargeLoopRes")."""
    if not isinstance(tree, dict) or not tree:
        return "(empty)"
    root = next(iter(tree))
    if root == "V2G_Message":
        msg = tree[root]
        body = msg.get("Body") if isinstance(msg, dict) else None
        if isinstance(body, dict):
            for key in body:
                if not key.startswith("xsi:"):
                    return key
        return V2G_EMPTY_BODY
    return root
