"""Reading one event: the decoded body and header of a V2G message, its values in SI units,
its ResponseCode, its base name — and the protocol of a session.

Everything reads the analyzer's events (decoded trees, DESIGN.md "Events"); rules reach
these through rules/helpers.py.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import event_facts, header_of, message_body

__all__ = ["body", "header", "facts", "base_name", "response_code", "is_failed",
           "protocol_of_session"]


def body(e) -> dict:
    """The body of a decoded message (the Body child for DIN / ISO-2, the root for -20)."""
    return message_body(e.message)[1]


def header(e) -> dict:
    """The message header (SessionID, Notification, Signature / -20 TimeStamp)."""
    return header_of(e.message)


#: ``facts(e)``: the message's values in SI units and its status fields
#: (``EVTargetVoltage_V``, ``EVSEPresentCurrent_A``, ``ResponseCode`` …) — analyzer/physical.py
#: ``event_facts`` itself, not a wrapper: the rules read it about ten times per message.
facts = event_facts


#: Base names already worked out (:func:`base_name`): message names are few (the schemas'
#: and the event catalogue's, dissectors/events.py), their lookups many (≈ 10 per V2G message
#: in a judged session).
_BASE_NAMES: dict[str, str] = {}


def base_name(name: str) -> str:
    """A message's name without its request / response suffix: ``PreChargeReq`` →
    ``PreCharge`` (V2G Req / Res), ``CM_SLAC_PARM.REQ`` → ``CM_SLAC_PARM`` (HomePlug MME
    .REQ / .CNF / .IND / .RSP, ISO 15118-3); other names stay as they are."""
    b = _BASE_NAMES.get(name)
    if b is None:
        b = _strip_suffix(name)
        if len(_BASE_NAMES) < 4096:            # bounded, whatever names a capture brings
            _BASE_NAMES[name] = b
    return b


def _strip_suffix(name: str) -> str:
    if name.endswith(("Req", "Res")):
        return name[:-3]
    if "." in name and name.startswith(("CM_", "CC_", "VS_", "MS_")):
        return name.rsplit(".", 1)[0]
    return name


def response_code(e) -> str | None:
    """The ResponseCode of a response event (None for requests / undecoded messages)."""
    if e.message is None or not e.name.endswith("Res"):
        return None
    rc = event_facts(e).get("ResponseCode")
    return rc if isinstance(rc, str) else None


#: :func:`is_failed` of the ResponseCodes seen (a schema enumeration: a handful of values).
_FAILED: dict[str, bool] = {}


def is_failed(code: str | None) -> bool:
    """Whether a ResponseCode is a failure (FAILED… in DIN / ISO-2 / -20,
    Failed_NoNegotiation in SupportedAppProtocol)."""
    if not isinstance(code, str):
        return False
    f = _FAILED.get(code)
    if f is None:
        f = code.upper().startswith("FAILED")
        if len(_FAILED) < 4096:
            _FAILED[code] = f
    return f


def protocol_of_session(session, ctx) -> str | None:
    """The session's protocol label (``DIN 70121``, ``ISO 15118-2``, ``ISO 15118-20``) from
    its summary (``ctx.summaries``)."""
    return ctx.summaries.get(session.id, {}).get("protocol")
