"""Runtime grammars: the generated tables (``grammars/*.py``) turned into linked states.

`load(namespace)` → `Grammar` (cached; raises KeyError for an unknown namespace). A
`State` holds its first-level productions in event-code order (EXI 1.0 §8.5.4.3), the width
of its first-level event code and the undeclared productions of strict=false grammars
(§8.5.4.4.1) as second-level codes:

* first start tag: [EE if not declared] xsi:type, xsi:nil, AT(*), AT(untyped), SE(*), CH
* further start tag states: [EE] AT(*), AT(untyped), SE(*), CH
* element content: [EE] SE(*), CH
* built-in element grammars (§8.4.3, for elements the schema does not declare; grammar
  learning is off as in the reference codec's EXI Profile settings): start tag
  EE, AT(*), SE(*), CH all second level; content EE first level, SE(*), CH second level.

A production is a tuple ``(op, key, next, is_list, child, datatype, counter, child_end,
uri)`` (see the ``OP_*`` constants): ``key`` the tree key (local name, "value" for
characters), ``next`` the state after it, ``is_list`` whether the element repeats (a
list in the tree), ``child`` the first state of the element entered, ``datatype`` the
value's (AT, CH, and a simple-typed element's for SE — None for a complex one),
``counter`` None or ``(min, max, lt, mid, max_state, enter)`` for a counted repetition
(generate/automaton.py; ``next`` is then None), ``child_end`` the state after a
simple-typed element's value, ``uri`` the URI index of the element or attribute.
"""
from __future__ import annotations

import importlib

from .datatypes import DT_STRING, bit_width, runtime_datatype
from .namespaces import GRAMMAR_MODULES

# production ops
OP_SE, OP_SE_SIMPLE, OP_AT, OP_CH, OP_EE, OP_SE_NS, OP_SE_ANY, OP_AT_NS, OP_AT_ANY, \
    OP_CH_ANY, OP_ED = range(11)
# second-level (undeclared) events
SL_EE, SL_XSI_TYPE, SL_XSI_NIL, SL_AT_ANY, SL_AT_INVALID, SL_SE_ANY, SL_CH_ANY = range(7)
# state kinds (generate/tables.py) and the built-in ones
K_FIRST, K_START, K_ELEM, K_DOC, K_DOCEND, K_BUILTIN_START, K_BUILTIN_ELEM = range(7)

_TABLE_OPS = {0: OP_SE, 1: OP_AT, 2: OP_CH, 3: OP_EE, 4: OP_SE_NS, 5: OP_SE_ANY, 6: OP_AT_NS,
              7: OP_AT_ANY, 8: OP_CH_ANY, 9: OP_ED}
STRING = (DT_STRING,)


class State:
    """One grammar state (see module docstring)."""

    __slots__ = ("index", "kind", "label", "prods", "n", "width", "content2", "empty",
                 "after_undeclared", "sl_codes", "sl_width", "at_codes", "by_name", "ee_code",
                 "ch_code", "ch_any_code", "se_any_code", "ns_codes")

    def __init__(self, index: int, kind: int, label: str):
        self.index = index
        self.kind = kind
        self.label = label
        self.prods: tuple = ()
        self.n = 0
        self.width = 0
        self.content2 = None
        self.empty = None
        self.after_undeclared = None
        self.sl_codes: tuple = ()
        self.sl_width = 0
        self.at_codes: tuple = ()      # first-level codes of declared AT productions
        self.by_name: dict = {}        # encoder: SE local name / ("@", AT name) -> code
        self.ee_code = -1
        self.ch_code = -1
        self.ch_any_code = -1
        self.se_any_code = -1
        self.ns_codes: dict = {}       # encoder: uri index -> SE(uri:*) code

    def finish(self, prods: list) -> None:
        """Set the productions and derive widths, second-level codes and encoder indexes."""
        self.prods = tuple(prods)
        self.n = len(prods)
        has_ee = any(p[0] == OP_EE for p in prods)
        k = self.kind
        if k == K_FIRST:
            sl = [SL_XSI_TYPE, SL_XSI_NIL, SL_AT_ANY, SL_AT_INVALID, SL_SE_ANY, SL_CH_ANY]
        elif k == K_START:
            sl = [SL_AT_ANY, SL_AT_INVALID, SL_SE_ANY, SL_CH_ANY]
        elif k == K_ELEM or k == K_BUILTIN_ELEM:
            sl = [SL_SE_ANY, SL_CH_ANY]
        elif k == K_BUILTIN_START:
            sl = [SL_EE, SL_AT_ANY, SL_SE_ANY, SL_CH_ANY]
        else:
            sl = []
        if sl and not has_ee and k != K_BUILTIN_START:
            sl.insert(0, SL_EE)
        self.sl_codes = tuple(sl)
        self.sl_width = bit_width(len(sl))
        self.width = bit_width(self.n + (1 if sl else 0))
        at = []
        for code, p in enumerate(prods):
            op = p[0]
            if op == OP_AT:
                at.append(code)
                self.by_name.setdefault(("@", p[1]), code)
            elif op in (OP_SE, OP_SE_SIMPLE):
                self.by_name.setdefault(p[1], code)
            elif op == OP_EE:
                self.ee_code = code
            elif op == OP_CH:
                self.ch_code = code
            elif op == OP_CH_ANY:
                self.ch_any_code = code
            elif op == OP_SE_ANY:
                self.se_any_code = code
            elif op == OP_SE_NS:
                self.ns_codes.setdefault(p[1], code)
        self.at_codes = tuple(at)

    def __repr__(self):
        return f"<State {self.label}>"


class Element:
    """A declared element: local name, URI index, grammar and tree form. A simple-typed
    element (grammar first state [CH] then [EE]) is a scalar in the tree: ``datatype`` is its
    value's and ``end`` the state after the value."""

    __slots__ = ("name", "uri", "first", "scalar", "datatype", "end")

    def __init__(self, name: str, uri: int, first: State, datatype=None, end=None):
        self.name = name
        self.uri = uri
        self.first = first
        self.scalar = datatype is not None
        self.datatype = datatype
        self.end = end


def counted(ctr: tuple, cnt: int) -> tuple:
    """(next state, new count) of a production with counter ``ctr`` after ``cnt``
    repetitions: entering sets the count to 1, looping adds 1; the state is the one of
    the count's class — below minOccurs, between, at maxOccurs (generate/automaton.py)."""
    c = 1 if ctr[5] else cnt + 1
    if c < ctr[0]:
        return ctr[2], c
    if ctr[1] is not None and c >= ctr[1]:
        return ctr[4], c
    return ctr[3], c


def next_state(p: tuple, cnt: int) -> tuple:
    """(next state, count) after production ``p`` taken with count ``cnt``."""
    return (p[2], cnt) if p[6] is None else counted(p[6], cnt)


#: layout version of the generated tables this runtime reads (generate/writer.py)
TABLE_FORMAT = 1


class Grammar:
    """All grammars of one namespace's schema set (tables from its generated module).

    Raises RuntimeError for tables of another layout version (regenerate them)."""

    def __init__(self, module):
        if getattr(module, "FORMAT", None) != TABLE_FORMAT:
            raise RuntimeError(f"{module.__name__}: grammar tables of format "
                               f"{getattr(module, 'FORMAT', '?')}, expected {TABLE_FORMAT}; "
                               "regenerate them (python -m ccs_analyzer.dissectors.exi.generate)")
        self.namespace = module.NAMESPACE
        self.title = module.TITLE
        self.uris = tuple(module.URIS)
        self.local_names = tuple(tuple(n) for n in module.LOCAL_NAMES)
        self.uri_index = {u: i for i, u in enumerate(self.uris)}
        self.datatypes = tuple(runtime_datatype(d) for d in module.DATATYPES)
        rows = module.STATES
        labels = getattr(module, "STATE_LABELS", None)
        st = [State(i, row[0], labels[i] if labels else f"state {i}")
              for i, row in enumerate(rows)]
        self.states = st
        for i, row in enumerate(rows):
            st[i].content2 = st[row[1]] if row[1] >= 0 else None
            st[i].empty = st[row[2]] if row[2] >= 0 else None
        self.counters = tuple(
            (mn, mx, st[a] if a >= 0 else None, st[b] if b >= 0 else None,
             st[c] if c >= 0 else None) for mn, mx, a, b, c in module.COUNTERS)
        simple = {}
        for i, row in enumerate(rows):
            p = row[3]
            if row[0] == K_FIRST and len(p) == 1 and p[0][0] == 2 and p[0][2] >= 0:
                end = rows[p[0][2]]
                if end[0] == K_ELEM and tuple(end[3]) == ((3,),):
                    simple[i] = (self.datatypes[p[0][1]], st[p[0][2]])
        self.elements = []
        for uri, name, first in module.ELEMENTS:
            dt, end = simple.get(first, (None, None))
            self.elements.append(Element(name, uri, st[first], dt, end))
        self.attributes = tuple((name, uri, self.datatypes[dt]) for uri, name, dt in module.ATTRIBUTES)
        for i, row in enumerate(rows):
            st[i].finish([self._production(p) for p in row[3]])
        for s in st:
            s.after_undeclared = s.content2 if s.kind in (K_FIRST, K_START) and s.content2 else s
        self.document = st[module.DOCUMENT]
        self.global_elements = {(uri, name): self.elements[e] for uri, name, e in module.GLOBAL_ELEMENTS}
        self.types = {(uri, name): (st[f], st[e]) for uri, name, f, e in module.TYPES}
        # built-in element grammar for undeclared elements (§8.4.3), no learning
        self.builtin_start = State(-1, K_BUILTIN_START, "BuiltInStartTag")
        self.builtin_elem = State(-2, K_BUILTIN_ELEM, "BuiltInElementContent")
        self.builtin_start.finish([])
        self.builtin_elem.finish([(OP_EE, None, None, 0, None, None, None, None, None)])
        self.builtin_start.after_undeclared = self.builtin_elem
        self.builtin_elem.after_undeclared = self.builtin_elem
        self.builtin_start.content2 = self.builtin_elem
        self.builtin_start.empty = self.builtin_start

    def _target(self, t: int):
        if t >= 0:
            return self.states[t], None
        t = -t - 1
        mn, mx, lt, mid, top = self.counters[t >> 1]
        return None, (mn, mx, lt, mid, top, t & 1)

    def _production(self, row: tuple) -> tuple:
        op = _TABLE_OPS[row[0]]
        if op == OP_SE:
            nxt, ctr = self._target(row[2])
            e = self.elements[row[1]]
            if e.scalar:
                return (OP_SE_SIMPLE, e.name, nxt, row[3], e.first, e.datatype, ctr, e.end, e.uri)
            return (OP_SE, e.name, nxt, row[3], e.first, None, ctr, None, e.uri)
        if op == OP_AT:
            nxt, ctr = self._target(row[2])
            name, uri, dt = self.attributes[row[1]]
            return (OP_AT, name, nxt, 0, None, dt, ctr, None, uri)
        if op == OP_CH:
            nxt, ctr = self._target(row[2])
            return (OP_CH, "value", nxt, 0, None, self.datatypes[row[1]], ctr, None, None)
        if op in (OP_EE, OP_ED):
            return (op, None, None, 0, None, None, None, None, None)
        if op == OP_SE_NS:
            nxt, ctr = self._target(row[2])
            return (OP_SE_NS, row[1], nxt, row[3], None, None, ctr, None, row[1])
        if op == OP_SE_ANY:
            nxt, ctr = self._target(row[1])
            return (OP_SE_ANY, None, nxt, row[2], None, None, ctr, None, None)
        if op == OP_AT_NS:
            nxt, ctr = self._target(row[2])
            return (OP_AT_NS, row[1], nxt, 0, None, STRING, ctr, None, row[1])
        nxt, ctr = self._target(row[1])  # AT_ANY, CH_ANY
        return (op, "value" if op == OP_CH_ANY else None, nxt, 0, None, STRING, ctr, None, None)


_CACHE: dict[str, Grammar] = {}


def load(namespace: str) -> Grammar:
    """The Grammar of ``namespace`` (one of namespaces.NAMESPACES); KeyError otherwise."""
    g = _CACHE.get(namespace)
    if g is None:
        module = importlib.import_module(f"{__package__}.grammars.{GRAMMAR_MODULES[namespace]}")
        g = Grammar(module)
        _CACHE[namespace] = g
    return g
