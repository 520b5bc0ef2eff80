"""Message content: decodability, the schema a message was decoded with, elements that the
context makes mandatory or forbids (AC vs DC, EIM vs Plug & Charge, DIN restrictions),
values out of their range and physical values with the wrong unit.

Every check reads decoded trees (DESIGN.md "Events"); checks that depend only on a tree are
memoised by tree identity in the analysis' cache (``ctx.view``): identical payloads share
one read-only tree (dissectors/v2g.py), and a charge loop repeats the same few trees
thousands of times.

FAILED responses are never judged on their content: they only have to carry the mandatory
elements, with minimal XSD-valid values (ISO 15118-2 [V2G2-736], [V2G2-538]; ISO 15118-20
[V2G20-736]; PROTOCOL_FACTS §4.0 and §5).
"""
