"""Hypothesis strategies: random valid decoded trees, drawn by walking the EXI grammars.

`trees(namespace)` draws a root among the schema's global elements and walks the grammar
states the way an encoder would: at each state one declared production is chosen (end of
element more likely the deeper the walk), values are drawn per datatype in the canonical
form the decoder returns, counted repetitions respect minOccurs/maxOccurs. The result is a
tree `encode` must accept and `decode` must give back unchanged.
"""
from __future__ import annotations

from hypothesis import strategies as st

from ccs_analyzer.dissectors.exi.datatypes import (D_FORM, D_ITEM, D_KIND, D_MAX, D_MIN,
                                                   D_NAMES, DT_B64, DT_BOOL, DT_DATETIME,
                                                   DT_DECIMAL, DT_ENUM, DT_FLOAT, DT_HEX, DT_INT,
                                                   DT_LIST, DT_NBIT, DT_STRING, DT_UINT)
from ccs_analyzer.dissectors.exi.grammar import (OP_AT, OP_CH, OP_EE, OP_SE, OP_SE_SIMPLE,
                                                 P_CHILD, P_DATATYPE, P_IS_LIST, P_KEY, P_OP,
                                                 load, next_state)

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
MAX_DEPTH = 12
MAX_ITEMS = 6


def values(dt: tuple, text=TEXT):
    """Strategy for a tree value of runtime datatype ``dt`` (canonical forms)."""
    k = dt[D_KIND]
    if k == DT_NBIT:
        return st.integers(dt[D_MIN], dt[D_MAX])
    if k == DT_BOOL:
        return st.booleans()
    if k == DT_ENUM:
        return st.sampled_from(dt[D_NAMES])
    if k == DT_UINT:
        return st.one_of(st.integers(0, 300), st.integers(0, 2 ** 70))
    if k == DT_INT:
        return st.one_of(st.integers(-300, 300), st.integers(-2 ** 70, 2 ** 70))
    if k == DT_STRING:
        return text
    if k in (DT_HEX, DT_B64):
        return st.binary(max_size=300).map(bytes.hex)
    if k == DT_DECIMAL:
        return st.tuples(st.sampled_from(["", "-"]), st.integers(0, 10 ** 20),
                         st.integers(0, 10 ** 8).filter(lambda f: f % 10 != 0 or f == 0)).map(
            lambda t: f"{t[0]}{t[1]}.{str(t[2])[::-1]}")
    if k == DT_FLOAT:
        return st.one_of(st.tuples(st.integers(-2 ** 40, 2 ** 40), st.integers(-500, 500)).map(
            lambda t: f"{t[0]}E{t[1]}"), st.sampled_from(["INF", "-INF", "NaN"]))
    if k == DT_DATETIME:
        return _datetimes(dt[D_FORM])
    if k == DT_LIST:
        return st.lists(values(dt[D_ITEM], text).map(lambda v: str(v).lower() if isinstance(v, bool) else str(v)),
                        max_size=4).map(lambda items: " ".join(items)).filter(
            lambda s: all(" " not in i for i in s.split(" ")))
    raise ValueError(dt)


def _datetimes(kind: str):
    year = st.integers(-9999, 9999)
    month = st.integers(1, 12)
    day = st.integers(1, 28)
    time = st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59),
                     st.one_of(st.just(""), st.integers(1, 999999).filter(lambda f: f % 10).map(
                         lambda f: "." + str(f))))
    tz = st.one_of(st.just(""), st.just("Z"), st.tuples(st.sampled_from("+-"), st.integers(0, 13),
                   st.integers(0, 59)).filter(lambda t: t[1] or t[2]).map(
        lambda t: f"{t[0]}{t[1]:02d}:{t[2]:02d}"))

    def y(v):
        return f"-{-v:04d}" if v < 0 else f"{v:04d}"
    if kind == "gYear":
        body = year.map(y)
    elif kind == "gYearMonth":
        body = st.tuples(year, month).map(lambda t: f"{y(t[0])}-{t[1]:02d}")
    elif kind == "date":
        body = st.tuples(year, month, day).map(lambda t: f"{y(t[0])}-{t[1]:02d}-{t[2]:02d}")
    elif kind == "dateTime":
        body = st.tuples(year, month, day, time).map(
            lambda t: f"{y(t[0])}-{t[1]:02d}-{t[2]:02d}T{t[3][0]:02d}:{t[3][1]:02d}:{t[3][2]:02d}{t[3][3]}")
    elif kind == "gMonth":
        body = month.map(lambda m: f"--{m:02d}")
    elif kind == "gMonthDay":
        body = st.tuples(month, day).map(lambda t: f"--{t[0]:02d}-{t[1]:02d}")
    elif kind == "gDay":
        body = day.map(lambda d: f"---{d:02d}")
    else:
        body = time.map(lambda t: f"{t[0]:02d}:{t[1]:02d}:{t[2]:02d}{t[3]}")
    return st.tuples(body, tz).map(lambda t: t[0] + t[1])


def _element(draw, p, depth: int, text):
    """Draw the value of the element entered by SE production ``p``."""
    if p[P_OP] == OP_SE_SIMPLE:
        return draw(values(p[P_DATATYPE], text))
    state = p[P_CHILD]
    node: dict = {}
    cnt = 0
    last = None
    items = 0
    while True:
        choices = []
        for code, q in enumerate(state.prods):
            op = q[P_OP]
            if op == OP_EE:
                choices.append(code)
            elif op == OP_AT or op == OP_CH:
                choices.append(code)
            elif op in (OP_SE, OP_SE_SIMPLE):
                # a name may repeat only right after itself (a list in the tree)
                if q[P_KEY] in node and q[P_KEY] != last:
                    continue
                if depth >= MAX_DEPTH and op == OP_SE:
                    continue
                choices.append(code)
        if not choices:
            raise _Dead()
        ee = [c for c in choices if state.prods[c][P_OP] == OP_EE]
        if ee and (items >= MAX_ITEMS or depth >= MAX_DEPTH or draw(st.integers(0, 3)) == 0):
            return node
        if ee and len(choices) == 1:
            return node
        code = draw(st.sampled_from([c for c in choices if c not in ee] or choices))
        q = state.prods[code]
        op = q[P_OP]
        if op == OP_EE:
            return node
        if op == OP_AT or op == OP_CH:
            node[q[P_KEY]] = draw(values(q[P_DATATYPE], text))
        else:
            v = _element(draw, q, depth + 1, text)
            if q[P_IS_LIST]:
                node.setdefault(q[P_KEY], []).append(v)
            else:
                node[q[P_KEY]] = v
            last = q[P_KEY]
            items += 1
        state, cnt = next_state(q, cnt)


class _Dead(Exception):
    """The walk reached a state it cannot leave within the limits."""


@st.composite
def trees(draw, namespace: str, roots: tuple | None = None, text=TEXT):
    """A random valid tree {root: value} of ``namespace`` (roots: restrict the root names;
    text: the strategy for string values)."""
    g = load(namespace)
    prods = [p for p in g.document.prods if p[P_OP] in (OP_SE, OP_SE_SIMPLE)
             and (roots is None or p[P_KEY] in roots)]
    p = draw(st.sampled_from(prods))
    try:
        value = _element(draw, p, 0, text)
    except _Dead:
        from hypothesis import assume
        assume(False)
    return {p[P_KEY]: value}
