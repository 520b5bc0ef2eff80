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
uri)`` (see the ``OP_*`` constants), read by position through the ``P_*`` constants and
made by `production`: ``key`` the tree key (local name, "value" for characters), ``next``
the state after it, ``is_list`` whether the element repeats (a list in the tree),
``child`` the first state of the element entered, ``datatype`` the value's (AT, CH, and a
simple-typed element's for SE — None for a complex one), ``counter`` None or
``(min, max, lt, mid, max_state, enter)`` for a counted repetition (generate/automaton.py;
``next`` is then None), ``child_end`` the state after a simple-typed element's value,
``uri`` the URI index of the element or attribute. A tuple rather than an object because
the decoding loop reads several fields of one production per event (decoder.py).
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
# positions in a production tuple (module docstring)
P_OP, P_KEY, P_NEXT, P_IS_LIST, P_CHILD, P_DATATYPE, P_COUNTER, P_CHILD_END, P_URI = range(9)

# the event numbers of the generated tables (generate/tables.py EV) as production ops
_TABLE_OPS = (OP_SE, OP_AT, OP_CH, OP_EE, OP_SE_NS, OP_SE_ANY, OP_AT_NS, OP_AT_ANY, OP_CH_ANY,
              OP_ED)
STRING = (DT_STRING,)


def production(op: int, key=None, next=None, is_list: int = 0, child=None, datatype=None,
               counter=None, child_end=None, uri=None) -> tuple:
    """A production tuple (module docstring) from its fields by name."""
    return (op, key, next, is_list, child, datatype, counter, child_end, uri)


#: the EE production (also the undeclared EE of §8.5.4.4.1)
EE = production(OP_EE)


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
        has_ee = any(p[P_OP] == OP_EE for p in prods)
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
            op = p[P_OP]
            if op == OP_AT:
                at.append(code)
                self.by_name.setdefault(("@", p[P_KEY]), code)
            elif op in (OP_SE, OP_SE_SIMPLE):
                self.by_name.setdefault(p[P_KEY], code)
            elif op == OP_EE:
                self.ee_code = code
            elif op == OP_CH:
                self.ch_code = code
            elif op == OP_CH_ANY:
                self.ch_any_code = code
            elif op == OP_SE_ANY:
                self.se_any_code = code
            elif op == OP_SE_NS:
                self.ns_codes.setdefault(p[P_URI], code)
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
    mn, mx, lt, mid, at_max, enter = ctr
    c = 1 if enter else cnt + 1
    if c < mn:
        return lt, c
    if mx is not None and c >= mx:
        return at_max, c
    return mid, c


def next_state(p: tuple, cnt: int) -> tuple:
    """(next state, count) after production ``p`` taken with count ``cnt``."""
    return (p[P_NEXT], cnt) if p[P_COUNTER] is None else counted(p[P_COUNTER], cnt)


def element_production(e: "Element", nxt=None, is_list: int = 0, ctr=None) -> tuple:
    """The SE production entering element ``e`` (SE_SIMPLE for a simple-typed one)."""
    if e.scalar:
        return production(OP_SE_SIMPLE, e.name, nxt, is_list, e.first, e.datatype, ctr, e.end,
                          e.uri)
    return production(OP_SE, e.name, nxt, is_list, e.first, counter=ctr, uri=e.uri)


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
        rows = module.STATES  # (kind, content2, empty, production rows)
        labels = getattr(module, "STATE_LABELS", None)
        st = [State(i, row[0], labels[i] if labels else f"state {i}")
              for i, row in enumerate(rows)]
        self.states = st
        for s, (_, content2, empty, _) in zip(st, rows):
            s.content2 = st[content2] if content2 >= 0 else None
            s.empty = st[empty] if empty >= 0 else None
        self.counters = tuple(
            (mn, mx, st[a] if a >= 0 else None, st[b] if b >= 0 else None,
             st[c] if c >= 0 else None) for mn, mx, a, b, c in module.COUNTERS)
        # simple-typed elements: first state [CH] only, into a state [EE] only
        simple = {}
        for i, (kind, _, _, prods) in enumerate(rows):
            if kind == K_FIRST and len(prods) == 1 and _TABLE_OPS[prods[0][0]] == OP_CH:
                _, datatype, target = prods[0]
                if target >= 0:
                    end_kind, _, _, end_prods = rows[target]
                    if (end_kind == K_ELEM and len(end_prods) == 1
                            and _TABLE_OPS[end_prods[0][0]] == OP_EE):
                        simple[i] = (self.datatypes[datatype], st[target])
        self.elements = []
        for uri, name, first in module.ELEMENTS:
            dt, end = simple.get(first, (None, None))
            self.elements.append(Element(name, uri, st[first], dt, end))
        self.attributes = tuple((name, uri, self.datatypes[dt]) for uri, name, dt in module.ATTRIBUTES)
        for s, row in zip(st, rows):
            s.finish([self._production(p) for p in row[3]])
        for s in st:
            s.after_undeclared = s.content2 if s.kind in (K_FIRST, K_START) and s.content2 else s
        self.document = st[module.DOCUMENT]
        self.global_elements = {(uri, name): self.elements[e] for uri, name, e in module.GLOBAL_ELEMENTS}
        self.types = {(uri, name): (st[f], st[e]) for uri, name, f, e in module.TYPES}
        # built-in element grammar for undeclared elements (§8.4.3), no learning
        self.builtin_start = State(-1, K_BUILTIN_START, "BuiltInStartTag")
        self.builtin_elem = State(-2, K_BUILTIN_ELEM, "BuiltInElementContent")
        self.builtin_start.finish([])
        self.builtin_elem.finish([EE])
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
        """Runtime production of one generated production row (generate/tables.py)."""
        op = _TABLE_OPS[row[0]]
        if op == OP_SE:
            _, element, target, is_list = row
            nxt, ctr = self._target(target)
            return element_production(self.elements[element], nxt, is_list, ctr)
        if op == OP_AT:
            _, attribute, target = row
            nxt, ctr = self._target(target)
            name, uri, dt = self.attributes[attribute]
            return production(OP_AT, name, nxt, datatype=dt, counter=ctr, uri=uri)
        if op == OP_CH:
            _, datatype, target = row
            nxt, ctr = self._target(target)
            return production(OP_CH, "value", nxt, datatype=self.datatypes[datatype], counter=ctr)
        if op in (OP_EE, OP_ED):
            return production(op)
        if op == OP_SE_NS:
            _, uri, target, is_list = row
            nxt, ctr = self._target(target)
            return production(OP_SE_NS, uri, nxt, is_list, counter=ctr, uri=uri)
        if op == OP_SE_ANY:
            _, target, is_list = row
            nxt, ctr = self._target(target)
            return production(OP_SE_ANY, None, nxt, is_list, counter=ctr)
        if op == OP_AT_NS:
            _, uri, target = row
            nxt, ctr = self._target(target)
            return production(OP_AT_NS, uri, nxt, datatype=STRING, counter=ctr, uri=uri)
        _, target = row  # AT_ANY, CH_ANY
        nxt, ctr = self._target(target)
        return production(op, "value" if op == OP_CH_ANY else None, nxt, datatype=STRING,
                          counter=ctr)


_CACHE: dict[str, Grammar] = {}


def load(namespace: str) -> Grammar:
    """The Grammar of ``namespace`` (one of namespaces.NAMESPACES); KeyError otherwise."""
    g = _CACHE.get(namespace)
    if g is None:
        module = importlib.import_module(f"{__package__}.grammars.{GRAMMAR_MODULES[namespace]}")
        g = Grammar(module)
        _CACHE[namespace] = g
    return g
