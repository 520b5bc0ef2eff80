"""Flatten a GrammarSet into the indexed, minimised tables the runtime reads.

Table layout (the contract with the runtime, ``dissectors/exi/grammar.py``):

* ``DATATYPES``: tuple of datatype tuples (see model.datatype_of).
* ``ELEMENTS``: (uri index, local name, first state of the element's grammar).
* ``ATTRIBUTES``: (uri index, local name, datatype index).
* ``COUNTERS``: (minOccurs, maxOccurs or None, state 'lt', state 'mid', state 'max'; -1 = none).
* ``STATES``: (kind, content2, empty, productions) with kind 0 first start tag, 1 start tag,
  2 element content, 3 DocContent, 4 DocEnd; content2/empty state indexes or -1;
  productions in event-code order, each a tuple starting with its event:
  (0 SE, element, next, is_list), (1 AT, attribute, next), (2 CH, datatype, next), (3 EE,),
  (4 SE(uri:*), uri, next, is_list), (5 SE(*), next, is_list), (6 AT(uri:*), uri, next),
  (7 AT(*), next), (8 CH untyped, next), (9 ED,).
  ``next`` is a state index, or for a counted repetition ``-(2 * counter + enter) - 1``.
* ``GLOBAL_ELEMENTS``: (uri index, local name, element index) — for SE(*) of a known name.
* ``TYPES``: (uri index, local name, Type first state, TypeEmpty first state) — for xsi:type.
* ``STATE_LABELS``: a readable name per state, ``TypeName[n]`` (for error messages).

In the module each row of ``STATES`` follows a comment naming the state, as cbexigen's
generated C does: ``# 12: PreChargeReqType[3], after EVTargetVoltage`` — its index, its
label, and where in its grammar it stands ("start", "after @Id", "first child", "value",
"end", …; builder.GState.note). A state that minimisation shares between grammars is
named after the first of them.

Minimisation is Moore's partition refinement over (kind, event signature) refined by the
targets, the element grammars entered, content2 and empty.
"""
from __future__ import annotations

from .builder import Counted, GrammarSet, GState, string_table
from .model import ElementDecl

KIND = {"first": 0, "start": 1, "elem": 2, "doc": 3, "docend": 4}
EV = {"SE": 0, "AT": 1, "CH": 2, "EE": 3, "SE_NS": 4, "SE_ANY": 5, "AT_NS": 6, "AT_ANY": 7,
      "CH_ANY": 8, "ED": 9}


class Tables:
    """The flattened tables of one schema set (attributes named as in the module)."""

    def __init__(self, gs: GrammarSet):
        self.gs = gs
        self.uris, self.local_names = string_table(gs.model)
        self.uri_index = {u: i for i, u in enumerate(self.uris)}
        self.datatypes: list[tuple] = []
        self._dt_index: dict = {}
        states = gs.states()
        rep = self._minimise(states)
        uniq: list[GState] = []
        index: dict[int, int] = {}
        for s in states:
            r = rep[id(s)]
            if id(r) not in index:
                index[id(r)] = len(uniq)
                uniq.append(r)
        self.state_index = {id(s): index[id(rep[id(s)])] for s in states}
        self.elements: list[tuple] = []
        self._el_index: dict = {}
        self.attributes: list[tuple] = []
        self._at_index: dict = {}
        self.counters: list[tuple] = []
        self._ctr_index: dict = {}
        self.states = [self._state_row(s) for s in uniq]
        self.labels = [s.label for s in uniq]
        self.notes = [s.note for s in uniq]
        self.document = self.state_index[id(gs.doc)]
        self.global_elements = sorted(
            (self.uri_index[e.uri], e.name, self.element(e)) for e in gs.model.global_elements)
        types = []
        for (uri, local), td in gs.model.named_types.items():
            first, empty = gs.type_grammar(td)
            types.append((self.uri_index[uri], local, self.state_index[id(first)],
                          self.state_index[id(empty)]))
        self.types = sorted(types)

    # -- interning ---------------------------------------------------------------------
    def datatype(self, dt: tuple) -> int:
        """Index of a datatype in DATATYPES (added on first use)."""
        if dt not in self._dt_index:
            self._dt_index[dt] = len(self.datatypes)
            self.datatypes.append(dt)
        return self._dt_index[dt]

    def element(self, decl: ElementDecl) -> int:
        """Index of an element (name, URI, grammar) in ELEMENTS (added on first use)."""
        key = (decl.uri, decl.name, self.state_index[id(self.gs.element_first(decl))])
        if key not in self._el_index:
            self._el_index[key] = len(self.elements)
            self.elements.append((self.uri_index[decl.uri], decl.name, key[2]))
        return self._el_index[key]

    def attribute(self, a) -> int:
        """Index of an attribute (name, URI, datatype) in ATTRIBUTES (added on first use)."""
        key = (a.uri, a.name, self.datatype(a.datatype))
        if key not in self._at_index:
            self._at_index[key] = len(self.attributes)
            self.attributes.append((self.uri_index[a.uri], a.name, key[2]))
        return self._at_index[key]

    def target(self, tg) -> int:
        """A production target as written in the tables: state index, -1 for none, or
        ``-(2 * counter + enter) - 1`` for a counted repetition."""
        if tg is None:
            return -1
        if isinstance(tg, GState):
            return self.state_index[id(tg)]
        c = tg.counter
        if id(c) not in self._ctr_index:
            self._ctr_index[id(c)] = len(self.counters)
            row = (c.min, c.max) + tuple(
                self.state_index[id(c.states[k])] if k in c.states else -1
                for k in ("lt", "mid", "max"))
            self.counters.append(row)
        return -(2 * self._ctr_index[id(c)] + (1 if tg.enter else 0)) - 1

    def _state_row(self, s: GState) -> tuple:
        prods = []
        for ev, tg in s.prods:
            k = ev[0]
            if k == "SE":
                prods.append((EV[k], self.element(ev[1]), self.target(tg), int(ev[2])))
            elif k == "AT":
                prods.append((EV[k], self.attribute(ev[1]), self.target(tg)))
            elif k == "CH":
                prods.append((EV[k], self.datatype(ev[1]), self.target(tg)))
            elif k in ("EE", "ED"):
                prods.append((EV[k],))
            elif k == "SE_NS":
                prods.append((EV[k], self.uri_index[ev[1]], self.target(tg), int(ev[2])))
            elif k == "SE_ANY":
                prods.append((EV[k], self.target(tg), int(ev[1])))
            elif k == "AT_NS":
                prods.append((EV[k], self.uri_index[ev[1]], self.target(tg)))
            else:  # AT_ANY, CH_ANY
                prods.append((EV[k], self.target(tg)))
        return (KIND[s.kind], self.target(s.content2), self.target(s.empty), tuple(prods))

    # -- minimisation ------------------------------------------------------------------
    def _minimise(self, states: list[GState]) -> dict[int, GState]:
        """Map each state to the representative of its equivalence class."""
        def sig(s: GState):
            out = [s.kind, s.content2 is None, s.empty is None]
            for ev, tg in s.prods:
                k = ev[0]
                if k == "SE":
                    e = ev[1]
                    out.append((k, e.uri, e.name, ev[2]))
                elif k == "AT":
                    out.append((k, ev[1].uri, ev[1].name, ev[1].datatype))
                elif k == "CH":
                    out.append((k, ev[1]))
                else:
                    out.append(ev)
                if isinstance(tg, Counted):
                    out.append(("counted", tg.enter, tg.counter.min, tg.counter.max,
                                tuple(sorted(tg.counter.states))))
            return tuple(out)

        def targets(s: GState):
            out = []
            for ev, tg in s.prods:
                if ev[0] == "SE":
                    out.append(self.gs.element_first(ev[1]))
                if isinstance(tg, GState):
                    out.append(tg)
                elif isinstance(tg, Counted):
                    out.extend(tg.counter.states[k] for k in sorted(tg.counter.states))
            out.extend(t for t in (s.content2, s.empty) if t is not None)
            return out

        tgt = {id(s): targets(s) for s in states}
        block = {}
        names: dict = {}
        for s in states:
            block[id(s)] = names.setdefault(sig(s), len(names))
        count = len(names)
        while True:
            names = {}
            new = {}
            for s in states:
                key = (block[id(s)], tuple(block[id(t)] for t in tgt[id(s)]))
                new[id(s)] = names.setdefault(key, len(names))
            block = new
            if len(names) == count:
                break
            count = len(names)
        rep: dict[int, GState] = {}
        first_of: dict[int, GState] = {}
        for s in states:
            b = block[id(s)]
            first_of.setdefault(b, s)
            rep[id(s)] = first_of[b]
        return rep
