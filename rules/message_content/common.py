"""What the message content rule modules share: message bodies, failed responses, wording."""
from __future__ import annotations

from ccs_analyzer.analyzer.physical import message_body
from ccs_analyzer.analyzer.views.index import SessionIndex
from ccs_analyzer.analyzer.views.tree_memo import TreeMemo

from ..helpers import is_failed, response_code


def body_of(e) -> dict:
    """The message body (DIN / ISO-2 Body child, -20 root)."""
    return message_body(e.message)[1]


def failed(e) -> bool:
    """A response with a FAILED ResponseCode (its content is not judged)."""
    return is_failed(response_code(e))


class Groups:
    """Occurrences of a condition, grouped by a key: first and last event and the count, so
    that a loop yields one finding (house rule) rather than one per message."""

    def __init__(self):
        self.d: dict = {}

    def add(self, key, e, **facts) -> None:
        g = self.d.get(key)
        if g is None:
            self.d[key] = [e, e, 1, facts]
        else:
            g[1] = e
            g[2] += 1

    def items(self):
        """(key, first event, last event, count, facts of the first occurrence)."""
        for k, (first, last, n, facts) in self.d.items():
            yield k, first, last, n, facts


def _times(n: int) -> str:
    return "" if n == 1 else f" ({n}×)"


def _span(first, last, n: int) -> str:
    return f"frame {first.frame}" if n == 1 else f"frames {first.frame}-{last.frame}"


def _lower(severity: str) -> str:
    return {"error": "warning"}.get(severity, "info")


def _payment_options(idx: SessionIndex):
    """[(frame, SelectedPaymentOption)] of the session's (Service)PaymentServiceSelectionReq."""
    return [(e.frame, body_of(e).get("SelectedPaymentOption"))
            for e in idx.named("PaymentServiceSelectionReq", "ServicePaymentSelectionReq")]


def _payment_at(options, frame: int):
    """The payment option selected last before ``frame`` (None before any selection)."""
    out = None
    for f, opt in options:
        if f < frame:
            out = opt
        else:
            break
    return out


def _options(b: dict) -> list:
    po = b.get("PaymentOptionList") or b.get("PaymentOptions") or {}
    opts = po.get("PaymentOption", []) if isinstance(po, dict) else []
    return [opts] if isinstance(opts, str) else list(opts)


def _tree_memo(ctx, name: str) -> TreeMemo:
    """The analysis's memo ``name`` of values by decoded tree (analyzer/views/tree_memo.py;
    ``ctx.view``, capture-wide)."""
    return ctx.view(("message_content.trees", name), None, TreeMemo)
