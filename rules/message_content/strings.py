"""Message content rule on strings that are not XML text: MSG021."""
from __future__ import annotations

import re

from ccs_analyzer.analyzer.views.index import session_index

from ..base import Rule
from ..helpers import culprit_of
from .common import Groups, _span, _times, _tree_memo


# strings that are not XML text
def xml_char_ok(c: str) -> bool:
    """Whether one character matches the XML 1.0 ``Char`` production (§2.2): #x9 | #xA | #xD |
    [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]."""
    o = ord(c)
    return (o >= 0x20 and o <= 0xD7FF) or o in (0x9, 0xA, 0xD) or 0xE000 <= o <= 0xFFFD or \
        0x10000 <= o <= 0x10FFFF


_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def non_xml_strings(tree, ctx) -> list[tuple[str, str]]:
    """[(element path, string)] of the string values anywhere in a decoded tree (header and
    body, list items included; paths like ``Body/ServiceDiscoveryReq/ServiceScope``) that
    hold a character outside the XML 1.0 Char range; memoised per shared tree. Enumerations
    and hexBinary / base64Binary values (hex text in the decoded form) never do."""
    memo = _tree_memo(ctx, "non_xml_strings")
    hit = memo.get(tree)
    if hit is not None:
        return hit
    out: list = []
    stack = [("", tree)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                stack.append((f"{path}/{k}" if path else str(k), v))
        elif isinstance(node, list):
            for v in node:
                stack.append((path, v))
        elif isinstance(node, str) and _NOT_XML.search(node):
            out.append((path, node))
    out.reverse()
    return memo.put(tree, out)


def _codepoints(text: str, limit: int = 8) -> list[str]:
    """The distinct non-XML characters of ``text`` as U+XXXX, at most ``limit``."""
    seen: list[str] = []
    for c in text:
        if not xml_char_ok(c):
            u = f"U+{ord(c):04X}"
            if u not in seen:
                seen.append(u)
                if len(seen) >= limit:
                    break
    return seen


class StringNotXmlText(Rule):
    """A string value holds characters that XML text cannot hold.

    What it checks: every string value of every decoded V2G message (header and body,
    SupportedAppProtocol included): a character outside the XML 1.0 Char production (§2.2:
    #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF) — a NUL or another C0
    control character, a lone surrogate, U+FFFE / U+FFFF. One finding per message type and
    element, naming the sender, the characters and the count.
    Why it matters: EXI (W3C EXI 1.0) encodes an XML infoset; a schema-informed EXI string
    can carry any code point, but no XML document can, so the message is EXI-valid yet not
    an XML document: an EXI-to-XML decoder (e.g. EXIficient, the reference), a logger or a
    backend that stores the value as XML or JSON text rejects or mangles it. An all-NUL
    ServiceScope is an uninitialised buffer sent as text.
    Fix (sender): leave optional strings out when there is nothing to send, or send
    printable text; never copy a fixed-size byte buffer into a string field.
    Source: W3C XML 1.0 §2.2 "Characters" (Char production); W3C EXI 1.0 §1 (EXI encodes
    the XML Information Set), §7.1.10 (String: a sequence of Unicode code points); ISO 15118-2
    / DIN 70121 serviceScopeType (xs:string, maxLength 64).

    Example:

        #47 ServiceDiscoveryReq ServiceScope=␀␀␀␀␀␀␀␀␀␀␀… → #49 ServiceDiscoveryRes
    """

    code = "MSG021"
    title = "String value outside the XML character range"
    severity = "warning"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused")
    culprit = "unknown"
    requirement = "W3C XML 1.0 §2.2 Char; W3C EXI 1.0 encodes XML infosets"
    failure_modes = ("UC2 110", "UC2 111")

    def check(self, session, ctx):
        groups = Groups()
        by_tree: dict[int, list] = {}        # id(tree) → its strings (the events keep their trees)
        for e in session_index(session, ctx).v2g:
            found = by_tree.get(id(e.message))
            if found is None:
                found = by_tree[id(e.message)] = non_xml_strings(e.message, ctx)
            for path, text in found:
                groups.add((e.name, path, e.direction), e, text=text)
        for (msg, path, _), first, last, n, f in groups.items():
            text = f["text"]
            element = path.rsplit("/", 1)[-1]
            bad = sum(1 for c in text if not xml_char_ok(c))
            cps = _codepoints(text)
            what = (f"all {len(text)} characters {cps[0]}" if bad == len(text) and len(cps) == 1
                    else f"{bad} of {len(text)} characters outside XML 1.0 ({', '.join(cps)})")
            yield self.finding(
                session, [first.frame, last.frame],
                f"{msg}{_times(n)} ({_span(first, last, n)}): {element} is not XML text — {what}",
                time=first.time, culprit=culprit_of(first), measured=bad,
                limit=0, unit="characters",
                evidence={"expected": f"{element}: characters of the XML 1.0 Char production",
                          "actual": text[:80].encode("unicode_escape").decode("ascii"),
                          "element": path, "characters": cps, "not_xml": bad,
                          "length": len(text), "messages": n})
