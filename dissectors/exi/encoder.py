"""Decoded tree → EXI stream, with the same grammars as the decoder (EXI 1.0 §8.5.4).

`encode_tree(tree, grammar)` walks the tree with the grammar states: at each state the
next item of the element (attributes first, in the grammar's sorted order, then the dict's
children in order, list items in turn, "value" for character content) must match a
declared production; its event code is written with the state's code width, then its value
(datatypes.encode_value). Trees the schema does not allow raise ExiEncodeError naming the
path. Special keys: "xsi:type" ("{uri}Name") and "xsi:nil" (or a None element) are written
as the second-level events of §8.5.4.4.1, and so is the EE of a simple-typed element given
as {} (no characters at all, unlike "" which is an empty value).
"""
from __future__ import annotations

from .bitstream import BitWriter
from .datatypes import encode_value
from .errors import ExiEncodeError
from .grammar import (OP_AT, OP_AT_ANY, OP_AT_NS, OP_CH, OP_CH_ANY, OP_EE, OP_SE, OP_SE_ANY,
                      OP_SE_NS, OP_SE_SIMPLE, P_CHILD, P_DATATYPE, P_KEY, P_OP, P_URI, SL_EE,
                      SL_XSI_NIL, SL_XSI_TYPE, STRING, Grammar, element_production, next_state)

HEADER = 0x80  # §5: distinguishing bits 10, no options, version 1


def encode_tree(tree: dict, g: Grammar) -> bytes:
    """Encode ``tree`` ({root name: value}); raises ExiEncodeError."""
    if not isinstance(tree, dict) or len(tree) != 1:
        raise ExiEncodeError("the tree must be a dict with exactly one root element", "")
    (name, value), = tree.items()
    w = BitWriter()
    w.bits(HEADER, 8)
    doc = g.document
    code = doc.by_name.get(name)
    if code is None:
        raise ExiEncodeError(f"{name!r} is not a global element of {g.title}", name)
    w.bits(code, doc.width)
    p = doc.prods[code]
    _element(g, w, p, value, name)
    # DocEnd: ED has the only (zero-bit) code
    return w.getvalue()


def _second_level(w: BitWriter, st, sl: int, path: str) -> None:
    """Escape to the second level and write the undeclared event ``sl``."""
    try:
        i = st.sl_codes.index(sl)
    except ValueError:
        raise ExiEncodeError("event not allowed here", path) from None
    w.bits(st.n, st.width)
    w.bits(i, st.sl_width)


def _element(g: Grammar, w: BitWriter, p: tuple, value, path: str) -> None:
    """Everything after an element's SE event code: its attributes, content and EE."""
    st = p[P_CHILD]
    if p[P_OP] == OP_SE_SIMPLE and not isinstance(value, dict) and value is not None:
        w.bits(0, 1)                      # CH, the only declared event
        encode_value(p[P_DATATYPE], value, w, path)
        w.bits(0, 1)                      # EE
        return
    if value is None:
        value = {"xsi:nil": True}
    elif not isinstance(value, dict):
        if st.ch_code < 0:
            raise ExiEncodeError(f"complex element needs a dict, got {value!r}", path)
        value = {"value": value}
    if "xsi:type" in value:
        tname = value["xsi:type"]
        t = _type_of(g, tname)
        if t is None:
            raise ExiEncodeError(f"xsi:type {tname!r} is not a type of {g.title}", path)
        _second_level(w, st, SL_XSI_TYPE, path)
        type_first, _type_empty, (uri, local) = t
        _qname(g, w, uri, local)
        st = type_first
    if "xsi:nil" in value:
        nil = value["xsi:nil"]
        if not isinstance(nil, bool):
            raise ExiEncodeError("xsi:nil must be a boolean", path)
        _second_level(w, st, SL_XSI_NIL, path)
        w.bits(1 if nil else 0, 1)
        if nil:
            st = st.empty
    cnt = 0
    # attributes: the grammar lists them sorted; take each one the dict has
    done = set()
    while st.at_codes:
        for code in st.at_codes:
            ap = st.prods[code]
            name = ap[P_KEY]
            if name in value and name not in done:
                break
        else:
            break
        w.bits(code, st.width)
        encode_value(ap[P_DATATYPE], value[name], w, f"{path}/@{name}")
        done.add(name)
        st, cnt = next_state(ap, cnt)
    for key, item in value.items():
        if key in done or key in ("xsi:type", "xsi:nil"):
            continue
        if key == "value":
            code = st.ch_code if st.ch_code >= 0 else st.ch_any_code  # typed, or mixed text
            if code < 0:
                raise ExiEncodeError("no character content allowed here", f"{path}/value")
            w.bits(code, st.width)
            cp = st.prods[code]
            encode_value(cp[P_DATATYPE], item, w, f"{path}/value")
            st, cnt = next_state(cp, cnt)
            continue
        items = item if isinstance(item, list) else (item,)
        for i, child in enumerate(items):
            cpath = f"{path}/{key}" if len(items) == 1 else f"{path}/{key}[{i}]"
            code = st.by_name.get(key)
            if code is None:
                raise ExiEncodeError(f"element {key!r} not allowed here (expected "
                                     f"{_expected(st)})", cpath)
            w.bits(code, st.width)
            cp = st.prods[code]
            _element(g, w, cp, child, cpath)
            st, cnt = next_state(cp, cnt)
    if st.ee_code >= 0:
        w.bits(st.ee_code, st.width)
    elif st.ch_code >= 0 and "value" not in value and SL_EE in st.sl_codes:
        # characters absent altogether (not an empty value): EE is undeclared where only
        # CH is declared — how EXIficient writes an element without text (§8.5.4.4.1)
        _second_level(w, st, SL_EE, path)
    else:
        raise ExiEncodeError(f"element incomplete: expected {_expected(st)}", path)


def _expected(st) -> str:
    """What a state accepts, for error messages."""
    out = []
    for p in st.prods:
        op = p[P_OP]
        if op in (OP_SE, OP_SE_SIMPLE):
            out.append(p[P_KEY])
        elif op == OP_AT:
            out.append("@" + p[P_KEY])
        elif op in (OP_CH, OP_CH_ANY):
            out.append("value")
        elif op == OP_EE:
            out.append("end of element")
        elif op in (OP_SE_ANY, OP_SE_NS):
            out.append("any element (not encodable: the tree has no namespaces)")
        elif op in (OP_AT_ANY, OP_AT_NS):
            out.append("any attribute")
    return ", ".join(out) or "nothing"


def _type_of(g: Grammar, tname):
    """(Type first state, TypeEmpty first state, (uri index, name)) of "{uri}Name", or None."""
    if not isinstance(tname, str):
        return None
    if tname.startswith("{"):
        uri_s, local = tname[1:].split("}", 1)
    else:
        uri_s, local = "", tname
    uri = g.uri_index.get(uri_s)
    t = g.types.get((uri, local)) if uri is not None else None
    return None if t is None else (*t, (uri, local))


def _qname(g: Grammar, w: BitWriter, uri: int, local: str) -> None:
    """QName from the pre-populated string table (§7.1.7, §7.3.2): URI hit, local-name hit."""
    w.bits(uri + 1, (len(g.uris)).bit_length())
    names = g.local_names[uri]
    w.uint(0)
    w.bits(names.index(local), (len(names) - 1).bit_length() if len(names) > 1 else 0)


# ---------------------------------------------------------------------------- fragments
def fragment_table(g: Grammar, only_uri: str | None = None) -> tuple[list[tuple[str, str]], dict]:
    """The SE events of the schema-informed Fragment grammar (EXI 1.0 §8.5.3): the unique
    qnames (local name, URI) of every element declared in ``g``'s schema set — of those in
    namespace ``only_uri`` when given, i.e. a schema of that namespace alone — sorted by
    local name, then URI; event code i is entry i, then SE(*) and ED. Returns (that list,
    {qname: [declarations]}); cached on the grammar."""
    cache = g.__dict__.setdefault("_fragment_tables", {})
    got = cache.get(only_uri)
    if got is None:
        decls: dict[tuple[str, str], list] = {}
        for e in g.elements:
            uri = g.uris[e.uri]
            if only_uri is None or uri == only_uri:
                decls.setdefault((e.name, uri), []).append(e)
        got = cache[only_uri] = (sorted(decls), decls)
    return got


def encode_fragment_tree(name: str, value, g: Grammar, uri: str | None = None,
                         only_uri: str | None = None) -> bytes:
    """Encode element ``name`` (its decoded-tree ``value``) as an EXI body with the
    schema-informed Fragment grammar (EXI 1.0 §8.5.3): header 0x80, SD, SE(qname) with the
    code of :func:`fragment_table`, the element as in a document, ED. This is the form
    ISO 15118-2 §7.9.2.4.2 ([V2G2-771]…) and ISO 15118-20 §8.4 digest and sign (the
    canonical-exi transform of the References; SignedInfo against the xmldsig schema alone,
    ``only_uri`` = its namespace, as RISE-V2G / EXIficient and OpenV2G do).

    ``uri``: the element's namespace when its local name is declared in several. Raises
    ExiEncodeError when the element is not declared (or ambiguous) or when the value does
    not fit its grammar (a qname declared with different types takes the relaxed Element
    Fragment grammar, :func:`_relaxed_element`)."""
    order, decls = fragment_table(g, only_uri)
    keys = [k for k in order if k[0] == name and (uri is None or k[1] == uri)]
    if len(keys) != 1:
        raise ExiEncodeError(f"{name!r} is {'not declared' if not keys else 'declared in several namespaces'}"
                             f" in {g.title}" + (f" ({only_uri} only)" if only_uri else ""), name)
    width = (len(order) + 1).bit_length()           # codes 0..n-1 SE(qname), n SE(*), n+1 ED
    w = BitWriter()
    w.bits(HEADER, 8)
    w.bits(order.index(keys[0]), width)             # SD has the only (zero-bit) code
    _fragment_element(g, w, keys[0], value, name, order, decls)
    w.bits(len(order) + 1, width)
    return w.getvalue()


def _fragment_element(g: Grammar, w: BitWriter, qname: tuple[str, str], value, path: str,
                      order: list, decls: dict) -> None:
    """The content of an element reached through a Fragment grammar SE(qname): its own
    grammar when all its declarations share one (EXI 1.0 §8.5.3), else the relaxed Element
    Fragment grammar."""
    es = decls[qname]
    if len({id(x.first) for x in es}) == 1:
        _element(g, w, element_production(es[0]), value, path)
        return
    _relaxed_element(g, w, es, value, path, order, decls)


def _relaxed_element(g: Grammar, w: BitWriter, es: list, value, path: str, order: list,
                     decls: dict) -> None:
    """EXI 1.0 §8.5.3 Schema-informed Element Fragment grammar, for a qname declared with
    different types: ElementFragment0 = AT(A0..An-1) (every attribute qname of the schema
    set, sorted by local name then URI; a value typed when all its declarations share the
    type, else a string), AT(*), SE(F0..Fm-1) (the fragment's element qnames), SE(*), EE,
    CH (untyped: a string); after the first SE or CH, ElementFragment1 = SE(F0..Fm-1),
    SE(*), EE, CH. Attributes are written in qname order (canonical EXI); their namespace
    is the one the element's own declarations give the local name. Raises ExiEncodeError."""
    types: dict[tuple[str, str], set] = {}
    for n, u, dt in g.attributes:
        types.setdefault((n, g.uris[u]), set()).add(dt)
    attrs = sorted(types)
    m, n = len(order), len(attrs)
    if not isinstance(value, dict):
        value = {"value": value}
    own: dict[str, set] = {}                       # attribute local name -> URIs its declarations use
    for e in es:
        for code in e.first.at_codes:
            ap = e.first.prods[code]
            uri = ap[P_URI]
            own.setdefault(ap[P_KEY], set()).add(g.uris[uri] if uri is not None else "")
    w0, w1 = (n + m + 3).bit_length(), (m + 2).bit_length()
    first = True
    for key in sorted(k for k in value if k in own):
        if len(own[key]) != 1:
            raise ExiEncodeError(f"attribute {key!r} has no single declared namespace", f"{path}/@{key}")
        q = (key, next(iter(own[key])))
        w.bits(attrs.index(q), w0)
        dts = types[q]
        encode_value(next(iter(dts)) if len(dts) == 1 else STRING, value[key], w, f"{path}/@{key}")
    for key, item in value.items():
        if key == "value":
            w.bits(n + m + 3 if first else m + 2, w0 if first else w1)
            encode_value(STRING, item if isinstance(item, str) else str(item), w, f"{path}/value")
            first = False
        elif key not in own:
            qs = [k for k in order if k[0] == key]
            if len(qs) != 1:
                raise ExiEncodeError(f"element {key!r} is {'not declared' if not qs else 'ambiguous'}"
                                     " in a relaxed fragment", f"{path}/{key}")
            q = qs[0]
            for child in (item if isinstance(item, list) else (item,)):
                w.bits(n + 1 + order.index(q) if first else order.index(q), w0 if first else w1)
                _fragment_element(g, w, q, child, f"{path}/{key}", order, decls)
                first = False
    w.bits(n + m + 2 if first else m + 1, w0 if first else w1)

