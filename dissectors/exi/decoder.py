"""EXI stream → decoded tree (EXI 1.0 §5 header, §6 event codes, §8 grammars, §7 values).

`decode_stream(data, grammar)` → ``{root local name: value}`` in the tree form of
docs/architecture.md; every failure (malformed header, an event code the grammar does not
allow, a value running past the end, an undeclared event naming an unknown type, …) raises
ExiDecodeError with the bit offset and the grammar state.

How it is fast: the stream (up to `WINDOW` octets of it) is one Python int, an event code
is one shift and mask (bitstream.py), states and productions are pre-linked tuples
(grammar.py), and an element of simple type — most elements of a V2G message — is decoded
in place (its two one-bit event codes and its value) without pushing a frame. The tree is
built while decoding; there is no event list. Undeclared (second-level) events and
wildcards take the slow path in `_undeclared`. A longer stream is read through a window
that slides forward, and values of any length through bitstream.GrowingReader, so the time
stays linear in the stream's size.

Tree conventions beyond the contract: ``"xsi:type": "{uri}Name"`` and ``"xsi:nil": bool``
keys when a stream carries those attributes (a nil element without attributes is None);
characters outside declared simple content go under ``"value"``; a simple-typed element
ended without any characters (EXIficient's encoding of ``<a></a>``) is {} — not "", which
is an empty value (a CH event of length 0).
"""
from __future__ import annotations

from .bitstream import GrowingReader, Malformed, read_bits, read_chars, read_string, read_uint, \
    read_value_string
from .datatypes import (D_KIND, D_MIN, D_NAMES, D_WIDTH, DT_BOOL, DT_ENUM, DT_INT, DT_NBIT,
                        DT_UINT, bit_width, decode_value)
from .errors import ExiDecodeError
from .grammar import (EE, K_BUILTIN_START, OP_AT, OP_AT_NS, OP_CH, OP_CH_ANY, OP_ED, OP_EE,
                      OP_SE, OP_SE_ANY, OP_SE_NS, OP_SE_SIMPLE, P_CHILD, P_CHILD_END,
                      P_COUNTER, P_DATATYPE, P_IS_LIST, P_KEY, P_NEXT, P_OP, P_URI, SL_AT_ANY,
                      SL_AT_INVALID, SL_CH_ANY, SL_EE, SL_SE_ANY, SL_XSI_TYPE, STRING, Grammar,
                      counted, next_state, production)

MASKS = tuple((1 << i) - 1 for i in range(65))
XSI_URI = 2        # index of http://www.w3.org/2001/XMLSchema-instance in every URI table
WINDOW = 8192      # octets of the stream held as one int
MARGIN = 256       # bits left in the window before it slides (> any in-loop read)
NO_LIMIT = 1 << 62
#: the positions `_body` binds to locals (one unpacking per stream)
_FIELDS = (P_OP, P_KEY, P_NEXT, P_IS_LIST, P_CHILD, P_DATATYPE, P_COUNTER, P_CHILD_END,
           D_KIND, D_WIDTH, D_MIN, D_NAMES)


def read_header(data: bytes) -> int:
    """Bit offset of the body after the EXI header (§5): optional "$EXI" cookie, then the
    distinguishing bits 10, options-presence 0, version 1 (final). Raises ExiDecodeError."""
    pos = 0
    if data[:4] == b"$EXI":
        pos = 32
    if len(data) * 8 < pos + 8:
        raise ExiDecodeError("stream too short for an EXI header", pos, "header")
    b = data[pos >> 3]
    if b & 0xC0 != 0x80:
        raise ExiDecodeError(f"not an EXI stream (first byte {b:#04x}, expected 0x80)", pos, "header")
    if b & 0x20:
        raise ExiDecodeError("EXI options in the header are not supported", pos + 2, "header")
    if b & 0x1F:
        raise ExiDecodeError(f"unsupported EXI version bits {b & 0x1F:#x}", pos + 3, "header")
    return pos + 8


def decode_stream(data: bytes, g: Grammar, end_out: list | None = None) -> dict:
    """Decode one EXI document encoded with grammar ``g``; raises ExiDecodeError. When
    ``end_out`` is a list, the bit offset just after the document's ED event is appended to
    it (the octets after the padding that follows are not part of the document)."""
    return _body(g, data, read_header(data), end_out)


def _put(cur: dict, key: str, value, is_list) -> None:
    """Add a child to its parent: a list for repeatable elements; a repeated non-list
    name (possible only with undeclared events) becomes a list rather than being lost."""
    if is_list:
        lst = cur.get(key)
        if lst is None:
            cur[key] = [value]
        else:
            lst.append(value)
    elif key in cur:
        old = cur[key]
        cur[key] = old + [value] if isinstance(old, list) else [old, value]
    else:
        cur[key] = value


def _close(cur: dict, scalar: bool):
    """Tree value of a finished element: a simple-typed element is its value (an element
    ended without any characters stays {}); a nil element without attributes is None."""
    if scalar and len(cur) == 1 and "value" in cur:
        return cur["value"]
    if len(cur) == 1 and cur.get("xsi:nil") is True:
        return None
    return cur


class _Source:
    """The stream as seen by the decoding loop: the window ``big`` of ``end`` bits starting
    at bit ``off``; `slide` moves it to a position, `read` runs a reader of unknown length."""

    __slots__ = ("data", "off", "big", "end", "limit", "reader")

    def __init__(self, data: bytes):
        self.data = data
        self.off = 0
        self.reader = GrowingReader(data) if len(data) > WINDOW else None
        self._load(0)

    def _load(self, byte: int) -> None:
        chunk = self.data[byte:byte + WINDOW]
        self.off = byte << 3
        self.big = int.from_bytes(chunk, "big")
        self.end = len(chunk) << 3
        self.limit = NO_LIMIT if byte + WINDOW >= len(self.data) else self.end - MARGIN

    def slide(self, pos: int) -> int:
        """Move the window to window-relative ``pos`` (keeping the octet before it);
        returns the new relative pos."""
        absolute = self.off + pos
        self._load(max((absolute >> 3) - 1, 0))
        return absolute - self.off

    def read(self, fn, pos: int, *args):
        """``fn(big, end, pos, *args)`` at window-relative ``pos`` → (value, new pos)."""
        if self.reader is None:
            return fn(self.big, self.end, pos, *args)
        try:
            v, p = self.reader.read(fn, self.off + pos, *args)
        except Malformed as e:
            raise Malformed(e.reason, e.pos - self.off, e.short) from None
        return v, p - self.off


def _body(g: Grammar, data: bytes, pos: int, end_out: list | None = None) -> dict:
    if len(data) <= WINDOW:  # the common case: the whole stream in one int
        src = None
        big, end, limit = int.from_bytes(data, "big"), len(data) << 3, NO_LIMIT
        windowed = False
    else:
        src = _Source(data)
        big, end, limit = src.big, src.end, src.limit
        windowed = True
    masks = MASKS
    # the positions of production and datatype fields as locals: p[KEY] costs what p[1] does
    OP, KEY, NEXT, IS_LIST, CHILD, DATATYPE, COUNTER, CHILD_END, KIND, WIDTH, MIN, NAMES = _FIELDS
    root: dict = {}
    cur = root
    stack: list = []  # frames (parent dict, key, is_list, state and count after, scalar)
    st = g.document
    cnt = 0
    scalar = False
    ev_pos = pos
    qnames = None
    try:
        while True:
            if pos > limit:
                pos = src.slide(pos)
                big, end, limit = src.big, src.end, src.limit
            ev_pos = pos
            w = st.width
            pos += w
            code = (big >> (end - pos)) & masks[w]
            if code < st.n:
                p = st.prods[code]
            else:
                if qnames is None:
                    qnames = _QNames(g)
                if src is None:
                    src = _Source(data)
                p, pos, st, cnt = _undeclared(g, qnames, src, st, cnt, code, pos, cur)
                if p is None:
                    continue
            op = p[OP]
            if op == OP_SE_SIMPLE:
                # the child's grammar: [CH] (1-bit code 0), the value, [EE] (1-bit code 0)
                dt = p[DATATYPE]
                k = dt[KIND]
                if k <= DT_ENUM:
                    # n-bit, boolean, enumeration: both codes and the value in one read
                    n = dt[WIDTH] + 2
                    bits = (big >> (end - pos - n)) & masks[n]
                    slow = bits & 1 or bits >> (n - 1)  # nonzero: a code is not 0
                else:
                    slow = True
                if not slow:
                    pos += n
                    v = bits >> 1
                    if k == DT_NBIT:
                        v += dt[MIN]
                    elif k == DT_BOOL:
                        v = v == 1
                    elif v < len(dt[NAMES]):
                        v = dt[NAMES][v]
                    else:
                        raise Malformed(f"enumeration index {v} out of range", pos - n + 1)
                else:
                    pos += 1
                    if (big >> (end - pos)) & 1:
                        # not the declared CH: decode the element the general way
                        stack.append(_frame(p, cur, cnt, scalar))
                        pos -= 1
                        cur = {}
                        st = p[CHILD]
                        cnt = 0
                        scalar = True
                        continue
                    if k == DT_NBIT:
                        pos += dt[WIDTH]
                        v = ((big >> (end - pos)) & masks[dt[WIDTH]]) + dt[MIN]
                    elif k == DT_BOOL:
                        pos += 1
                        v = ((big >> (end - pos)) & 1) == 1
                    elif k == DT_ENUM:
                        pos += dt[WIDTH]
                        i = (big >> (end - pos)) & masks[dt[WIDTH]]
                        if i >= len(dt[NAMES]):
                            raise Malformed(f"enumeration index {i} out of range", pos - dt[WIDTH])
                        v = dt[NAMES][i]
                    elif k == DT_INT and not windowed and not (big >> (end - pos - 9)) & 0x80:
                        pos += 9  # sign bit and a one-octet magnitude
                        v = (big >> (end - pos)) & 0x1FF
                        v = -(v & 0x7F) - 1 if v & 0x100 else v
                    elif k == DT_UINT and not windowed and not (big >> (end - pos - 8)) & 0x80:
                        pos += 8
                        v = (big >> (end - pos)) & 0x7F
                    elif windowed:
                        v, pos = src.read(decode_value, pos, dt)
                        if pos > limit:
                            old = src.off
                            pos = src.slide(pos)
                            ev_pos -= src.off - old
                            big, end, limit = src.big, src.end, src.limit
                    else:
                        v, pos = decode_value(big, end, pos, dt)
                    pos += 1
                    if (big >> (end - pos)) & 1:
                        # an undeclared event after the value: continue in the element's
                        # end state
                        stack.append(_frame(p, cur, cnt, scalar))
                        pos -= 1
                        cur = {"value": v}
                        st = p[CHILD_END]
                        cnt = 0
                        scalar = True
                        continue
                key = p[KEY]
                if p[IS_LIST] or key in cur:
                    _put(cur, key, v, p[IS_LIST])
                else:
                    cur[key] = v
                ctr = p[COUNTER]
                if ctr is None:
                    st = p[NEXT]
                else:
                    st, cnt = counted(ctr, cnt)
            elif op == OP_SE:
                ctr = p[COUNTER]
                if ctr is None:
                    stack.append((cur, p[KEY], p[IS_LIST], p[NEXT], cnt, scalar))
                else:
                    stack.append((cur, p[KEY], p[IS_LIST], *counted(ctr, cnt), scalar))
                cur = {}
                st = p[CHILD]
                cnt = 0
                scalar = p[DATATYPE] is not None
            elif op == OP_EE:
                v = _close(cur, scalar) if scalar or len(cur) == 1 else cur
                pcur, key, is_list, st, cnt, scalar = stack.pop()
                if is_list or key in pcur:
                    _put(pcur, key, v, is_list)
                else:
                    pcur[key] = v
                cur = pcur
            elif op == OP_AT or op == OP_CH:
                dt = p[DATATYPE]
                if dt[KIND] == DT_NBIT:
                    pos += dt[WIDTH]
                    v = ((big >> (end - pos)) & masks[dt[WIDTH]]) + dt[MIN]
                elif windowed:
                    v, pos = src.read(decode_value, pos, dt)
                else:
                    v, pos = decode_value(big, end, pos, dt)
                cur[p[KEY]] = v
                st, cnt = next_state(p, cnt)
            elif op == OP_ED:
                if end_out is not None:
                    end_out.append((src.off if src is not None else 0) + pos)
                return root
            else:
                # wildcards: SE(*), SE(uri:*), AT(*), AT(uri:*), untyped CH
                nst, ncnt = next_state(p, cnt)
                if qnames is None:
                    qnames = _QNames(g)
                if src is None:
                    src = _Source(data)
                if op == OP_CH_ANY:
                    v, pos = src.read(read_value_string, pos)
                    cur["value"] = cur.get("value", "") + v
                    st, cnt = nst, ncnt
                    continue
                uri = p[P_URI] if op == OP_SE_NS or op == OP_AT_NS else None
                uri, name, pos = qnames.read(src, pos, uri)
                if op == OP_SE_ANY or op == OP_SE_NS:
                    first, dt = _element_grammar(g, uri, name)
                    stack.append((cur, name, p[IS_LIST], nst, ncnt, scalar))
                    cur = {}
                    st = first
                    cnt = 0
                    scalar = dt is not None
                    continue
                v, pos = src.read(read_value_string, pos)
                cur[name] = v
                st, cnt = nst, ncnt
    except ExiDecodeError:
        raise
    except Malformed as e:
        off = src.off if src is not None else 0
        raise ExiDecodeError(e.reason, off + e.pos, st.label, _path(stack)) from None
    except ValueError as e:
        off = src.off if src is not None else 0
        if "negative shift count" in str(e):
            raise ExiDecodeError("unexpected end of stream", off + ev_pos, st.label,
                                 _path(stack)) from None
        raise ExiDecodeError(f"malformed value ({e})", off + ev_pos, st.label,
                             _path(stack)) from None
    except (IndexError, KeyError, TypeError, AttributeError, OverflowError, MemoryError,
            RecursionError) as e:
        off = src.off if src is not None else 0
        raise ExiDecodeError(f"cannot decode ({type(e).__name__}: {e})", off + ev_pos,
                             getattr(st, "label", "?"), _path(stack)) from None


def _frame(p: tuple, cur: dict, cnt: int, scalar: bool) -> tuple:
    """The stack frame that keeps the parent while the element of SE production ``p`` is
    decoded: (parent dict, key, is_list, state and count after the element, the parent's
    scalar flag). The OP_SE branch of `_body` builds the same frame inline (speed)."""
    nst, ncnt = next_state(p, cnt)
    return (cur, p[P_KEY], p[P_IS_LIST], nst, ncnt, scalar)


def _path(stack: list, keep: int = 12) -> str:
    """Where decoding stopped, e.g. "V2G_Message/Body/PreChargeReq" (the last ``keep``
    elements when nested deeper)."""
    names = [str(key) for _, key, *_ in stack[-keep:]]
    return ("…/" if len(stack) > keep else "") + "/".join(names)


def _element_grammar(g: Grammar, uri: int, name: str):
    """(first state, value datatype or None) of an element met through SE(*): the global
    element of that name when the schema declares one, else the built-in element grammar
    (§8.4.3, no learning), whose text is an untyped string."""
    e = g.global_elements.get((uri, name)) if uri < len(g.uris) else None
    if e is not None:
        return e.first, e.datatype
    return g.builtin_start, STRING


def _undeclared(g: Grammar, qnames: "_QNames", src: _Source, st, cnt: int, code: int,
                pos: int, cur: dict):
    """Second- and third-level event codes (§8.5.4.4.1 undeclared productions, §8.4.3
    built-in grammars). Returns (production to run or None, pos, state, count); events it
    completes itself (attributes, xsi:type, xsi:nil, characters) return None."""
    if code > st.n or not st.sl_codes:
        raise Malformed(f"event code {code} not allowed ({st.n} declared productions)", pos - st.width)
    start = pos
    i, pos = src.read(read_bits, pos, st.sl_width)
    if i >= len(st.sl_codes):
        raise Malformed(f"event code {code}.{i} not allowed", start - st.width)
    sl = st.sl_codes[i]
    if sl == SL_EE:
        return EE, pos, st, cnt
    if sl == SL_SE_ANY:
        uri, name, pos = qnames.read(src, pos, None)
        first, dt = _element_grammar(g, uri, name)
        # run it as a declared SE whose next state is the undeclared target
        return production(OP_SE, name, st.after_undeclared, 0, first, dt, uri=uri), pos, st, cnt
    if sl == SL_CH_ANY:
        v, pos = src.read(read_value_string, pos)
        cur["value"] = cur.get("value", "") + v
        return None, pos, st.after_undeclared, cnt
    if sl == SL_AT_ANY:
        uri, name, pos = qnames.read(src, pos, None)
        if uri == XSI_URI and name in ("type", "nil") and st.kind == K_BUILTIN_START:
            return _xsi(g, qnames, src, st, cnt, name, pos, cur)
        v, pos = src.read(read_value_string, pos)
        cur[name] = v
        return None, pos, st, cnt
    if sl == SL_AT_INVALID:
        nat = len(st.at_codes)
        j, pos = src.read(read_bits, pos, bit_width(nat + 1))
        if j < nat:
            p = st.prods[st.at_codes[j]]
            v, pos = src.read(read_value_string, pos)
            cur[p[P_KEY]] = v
            return None, pos, next_state(p, cnt)[0], cnt
        if j == nat:
            uri, name, pos = qnames.read(src, pos, None)
            v, pos = src.read(read_value_string, pos)
            cur[name] = v
            return None, pos, st, cnt
        raise Malformed(f"attribute code {j} not allowed", start)
    return _xsi(g, qnames, src, st, cnt, "type" if sl == SL_XSI_TYPE else "nil", pos, cur)


def _xsi(g: Grammar, qnames: "_QNames", src: _Source, st, cnt: int, which: str, pos: int,
         cur: dict):
    """xsi:type (a QName naming the type to continue with, §8.5.4.4.1) or xsi:nil
    (a boolean; true switches to the type's TypeEmpty grammar)."""
    if which == "nil":
        nil, pos = src.read(read_bits, pos, 1)
        cur["xsi:nil"] = bool(nil)
        if nil and st.empty is not None:
            return None, pos, st.empty, cnt
        return None, pos, st, cnt
    start = pos
    uri, name, pos = qnames.read(src, pos, None)
    t = g.types.get((uri, name)) if uri < len(g.uris) else None
    uri_s = qnames.uris[uri]
    if t is None:
        raise Malformed(f"xsi:type names the unknown type {{{uri_s}}}{name}", start)
    cur["xsi:type"] = f"{{{uri_s}}}{name}"
    type_first, _type_empty = t
    return None, pos, type_first, cnt


class _QNames:
    """The URI and local-name string table partitions of one stream (§7.3.1, Appendix D),
    pre-populated from the schema; misses add entries for the rest of the stream."""

    __slots__ = ("uris", "names")

    def __init__(self, g: Grammar):
        self.uris = list(g.uris)
        self.names = [list(n) for n in g.local_names]

    def read(self, src: _Source, pos: int, uri: int | None):
        """QName (§7.1.7): URI (unless the production fixes it) then local name →
        (uri index, local name, pos); a miss adds the string to the table."""
        (new_uri, uri, name, new_name), pos = src.read(self._read, pos, uri)
        if new_uri is not None:
            self.uris.append(new_uri)
            self.names.append([])
        if new_name:
            self.names[uri].append(name)
        return uri, name, pos

    def _read(self, big: int, end: int, pos: int, uri: int | None):
        # pure: the caller applies the additions once the whole QName was read
        new_uri = None
        if uri is None:
            start = pos
            i, pos = read_bits(big, end, pos, bit_width(len(self.uris) + 1))
            if i == 0:
                new_uri, pos = read_string(big, end, pos)
                uri = len(self.uris)
            elif i - 1 < len(self.uris):
                uri = i - 1
            else:
                raise Malformed(f"URI id {i - 1} not in the table", start)
        start = pos
        n, pos = read_uint(big, end, pos)
        names = self.names[uri] if uri < len(self.names) else []
        if n == 0:
            j, pos = read_bits(big, end, pos, bit_width(len(names)))
            if j >= len(names):
                raise Malformed(f"local-name id {j} not in the table", start)
            return (new_uri, uri, names[j], False), pos
        if (n - 1) * 8 > end - pos:
            raise Malformed(f"local name of {n - 1} characters exceeds the stream", start, True)
        name, pos = read_chars(big, end, pos, n - 1)
        return (new_uri, uri, name, True), pos
