"""Schema-informed EXI grammars of one schema set (EXI 1.0 §8.5.4), ready to be written out.

What is built, per the spec and as the reference EXIficient builds it:

* for every type T (named, anonymous, and the XSD built-ins for xsi:type) the grammar
  Type_T (§8.5.4.1.3) and TypeEmpty_T: attribute-use states sorted by local name then URI
  (§8.5.4.1.3.2, an optional attribute's state also offers everything after it), then the
  content automaton (automaton.py); a mixed type adds a CH [untyped] loop to each content
  state; xs:all is one state looping over its elements;
* state kinds for the undeclared productions of §8.5.4.4.1 (strict = false): 'first'
  (Type_T,0: xsi:type, xsi:nil, AT(*), SE(*), CH…), 'start' (further attribute states),
  'elem' (content states);
* event-code order (§8.5.4.3): AT(qname) sorted by local name then URI, AT(uri:*), AT(*),
  SE(qname) in schema order — the order the particles first appear in the content model,
  an element particle expanding to its substitution group (§8.5.4.1.6) sorted by local
  name then URI; the head is kept even when abstract, as the reference codec does (its
  ISO 15118-2 Body offers SE(BodyElement)) — then SE(uri:*), SE(*), EE, CH;
* the document grammar (§8.5.4.1.2): DocContent = SE(G) for every global element sorted by
  local name then URI, then SE(*); DocEnd = ED;
* the string table pre-population (Appendix D): URIs and their local names.

States are then minimised (Moore partition refinement) so that identical states — every
simple-typed element's end state, for one — are shared.
"""
from __future__ import annotations

import math

from .automaton import ContentModel
from .model import (XML_NS, XSD_BUILTIN_NAMES, XSD_NS, XSI_NS, ElementDecl, GeneratorError,
                    Group, Particle, SchemaModel, TypeDef, Wildcard)

#: event ranks of §8.5.4.3 (the ordinal order of EXIficient's EventType)
RANK = {"AT": 3, "AT_NS": 4, "AT_ANY": 5, "SE": 9, "SE_NS": 10, "SE_ANY": 11, "EE": 13,
        "CH": 15, "CH_ANY": 16, "ED": 18}


class Counter:
    """A counted position's states by counter class, with its bounds."""

    __slots__ = ("min", "max", "states")

    def __init__(self, mn: int, mx: int | None):
        self.min = mn
        self.max = mx
        self.states: dict[str, GState] = {}


class Counted:
    """A production target that depends on the counter: 'enter' sets it to 1, 'loop' adds 1."""

    __slots__ = ("counter", "enter")

    def __init__(self, counter: Counter, enter: bool):
        self.counter = counter
        self.enter = enter


class GState:
    """A grammar state: ``kind`` ('first', 'start', 'elem', 'doc', 'docend') and its
    productions [(event, target)] in event-code order once `finish()` ran; ``label`` names
    it in error messages (``TypeName[n]``), ``note`` says where in its grammar it stands
    ("start", "after @Id", "first child", "after EVTargetVoltage", …) for the comments of
    the generated tables."""

    __slots__ = ("kind", "prods", "content2", "empty", "label", "note")

    def __init__(self, kind: str, label: str, content2=None, empty=None, note: str = ""):
        self.kind = kind
        self.prods: list = []
        self.content2 = content2
        self.empty = empty
        self.label = label
        self.note = note

    def add(self, event: tuple, target) -> None:
        """Add a production; an equal event with another target is a grammar conflict."""
        ident = event_identity(event)
        for ev, tg in self.prods:
            if event_identity(ev) == ident:
                if ev[0] in ("EE", "SE_ANY", "AT_ANY") or tg is target:
                    return
                raise GeneratorError(f"{self.label}: two productions for {ident}")
        self.prods.append((event, target))

    def finish(self) -> None:
        """Sort productions into event-code order (stable: schema order among SE)."""
        def key(p):
            ev = p[0]
            if ev[0] == "AT":
                return (RANK["AT"], ev[1].name, ev[1].uri)
            return (RANK[ev[0]], "", "")
        self.prods.sort(key=key)

    def __repr__(self):
        return f"<{self.kind} {self.label}>"


def event_identity(ev: tuple) -> tuple:
    """What makes two events the same terminal symbol."""
    k = ev[0]
    if k == "SE":
        return ("SE", ev[1].uri, ev[1].name)
    if k == "AT":
        return ("AT", ev[1].uri, ev[1].name)
    if k in ("SE_NS", "AT_NS"):
        return (k, ev[1])
    return (k,)


class GrammarSet:
    """All grammars of one schema set. `build()` makes ``doc`` and every type grammar;
    `element_first(decl)` is an element's grammar; `states()` lists every reachable state."""

    def __init__(self, model: SchemaModel):
        self.model = model
        self.type_grammars: dict[int, tuple[GState, GState]] = {}
        self._seq: dict[str, int] = {}
        self.simple_end = GState("elem", "SimpleTypeEnd", note="end")
        self.simple_end.add(("EE",), None)
        self.doc: GState | None = None

    # -- element and type grammars -------------------------------------------------------
    def members(self, decl: ElementDecl) -> list[ElementDecl]:
        """Elements an element particle accepts: itself and its substitution group members
        (§8.5.4.1.6), sorted by local name then URI (see the module docstring on abstract
        ones)."""
        out = [decl] + list(self.model.substitutes.get(decl, ()))
        return sorted(out, key=lambda m: (m.name, m.uri))

    def new(self, kind: str, base: str, note: str, **kw) -> GState:
        """A new state labelled ``base[n]`` (n counts the states of that grammar) with the
        ``note`` saying where in the grammar it stands."""
        n = self._seq.get(base, 0)
        self._seq[base] = n + 1
        return GState(kind, f"{base}[{n}]", note=note, **kw)

    def type_grammar(self, td: TypeDef, owner: str = "") -> tuple[GState, GState]:
        """(Type_T first state, TypeEmpty_T first state), built once per type; ``owner``
        names an anonymous type's element in the state labels."""
        key = id(td)
        if key in self.type_grammars:
            return self.type_grammars[key]
        label = td.name or f"{owner or 'anonymous'}Type"
        end = self.new("elem", label + "Empty", "end")
        end.add(("EE",), None)
        empty_first = self._attributes(td, end, end, label + "Empty", None)
        if td.content == "simple":
            init = self.new("elem", label, "value")
            init.add(("CH", td.datatype), self.simple_end)
        elif td.content == "empty":
            init = end
        else:
            init = None  # built below
        if init is not None:
            first = self._attributes(td, init, init, label, empty_first)
            self.type_grammars[key] = (first, empty_first)
            return first, empty_first
        # element / mixed content: first state is created before the content so that
        # recursive types find it (their SE productions only need the first state object)
        placeholder = self.new("first", label, "start")
        self.type_grammars[key] = (placeholder, empty_first)
        init = self._content(td, label)
        first = self._attributes(td, init, init, label, empty_first, into=placeholder)
        return first, empty_first

    def _attributes(self, td: TypeDef, content: GState, content2: GState, label: str,
                    empty_first, into: GState | None = None) -> GState:
        """Attribute-use states in front of ``content`` (EXIficient handleAttributes)."""
        attrs = sorted(td.attributes, key=lambda a: (a.name, a.uri))

        def after(i: int) -> str:  # the note of the state reached after attribute i
            return f"after @{attrs[i].name}" if i >= 0 else "start"

        start = self.new("start", label, after(len(attrs) - 1), content2=content2)
        for ev, tg in content.prods:
            start.add(ev, tg)
        wc = td.attribute_wildcard
        if wc is not None:
            self._attr_wildcard(start, wc)
        for i in range(len(attrs) - 1, -1, -1):
            a = attrs[i]
            cur = self.new("start", label, after(i - 1), content2=content2)
            cur.add(("AT", a), start)
            if wc is not None:
                self._attr_wildcard(cur, wc)
            if not a.required:
                for ev, tg in start.prods:
                    if ev[0] not in ("AT_ANY", "AT_NS"):
                        cur.add(ev, tg)
            start = cur
        first = into if into is not None else self.new("first", label, "start")
        first.kind = "first"
        first.content2 = content2
        first.empty = empty_first if empty_first is not None else first
        for ev, tg in start.prods:
            first.add(ev, first if tg is start else tg)
        return first

    def _attr_wildcard(self, state: GState, wc: Wildcard) -> None:
        if wc.kind in ("any", "not"):
            state.add(("AT_ANY",), state)
        else:
            for uri in wc.uris:
                state.add(("AT_NS", uri), state)

    def _content(self, td: TypeDef, label: str) -> GState:
        """Content states of an element-only or mixed type; returns the content start."""
        mixed = td.content == "mixed"
        particle = td.particle
        occurs = occurrences(particle, self.members)
        term = particle.term
        if isinstance(term, Group) and term.compositor == "all":
            state = self.new("elem", label, "xs:all content")
            state.add(("EE",), None)
            for p in term.particles:
                if not isinstance(p.term, ElementDecl):
                    raise GeneratorError(f"{label}: xs:all with a non-element particle")
                for m in self.members(p.term):
                    state.add(("SE", m, _is_list(occurs, m)), state)
            if mixed:
                state.add(("CH_ANY",), state)
            return state
        cm = ContentModel(particle)
        states: dict[tuple, GState] = {}
        counters: dict[int, Counter] = {}
        todo: list[tuple] = []

        def state_of(pos, cls) -> GState:
            k = (pos, cls)
            if k not in states:
                note = "first child" if pos is None else _after(cm.positions[pos], cls)
                states[k] = self.new("elem", label, note)
                todo.append(k)
            return states[k]

        def counter_of(p) -> Counter:
            if p.index not in counters:
                c = Counter(p.min, p.max)
                for cls in p.classes():
                    c.states[cls] = state_of(p.index, cls)
                counters[p.index] = c
            return counters[p.index]

        init = state_of(None, None)
        while todo:
            pos, cls = todo.pop(0)
            st = states[(pos, cls)]
            moves, end = cm.moves(pos, cls)
            moves.sort(key=lambda m: cm.key_order[id(m[0].key)])
            for p, how in moves:
                if how == "plain":
                    target = state_of(p.index, None)
                else:
                    c = counter_of(p)
                    target = Counted(c, how == "enter")
                for ev in self._term_events(p.term, occurs):
                    st.add(ev, target)
            if end:
                st.add(("EE",), None)
            if mixed:
                st.add(("CH_ANY",), st)
        return init

    def _term_events(self, term, occurs) -> list[tuple]:
        if isinstance(term, ElementDecl):
            return [("SE", m, _is_list(occurs, m)) for m in self.members(term)]
        many = occurs.get("*", 0) > 1
        if term.kind in ("any", "not"):
            return [("SE_ANY", many)]
        return [("SE_NS", uri, many) for uri in term.uris]

    # -- document grammar ----------------------------------------------------------------
    def build(self) -> None:
        """Build the document grammar and every type grammar."""
        docend = GState("docend", "DocEnd", note="after the root element")
        docend.add(("ED",), None)
        doc = GState("doc", "DocContent", note="document start")
        for g in sorted(self.model.global_elements, key=lambda e: (e.name, e.uri)):
            doc.add(("SE", g, False), docend)
        doc.add(("SE_ANY", False), docend)
        self.doc = doc
        for td in self.model.named_types.values():
            self.type_grammar(td)
        for e in self.model.all_elements:
            self.type_grammar(e.type, e.name)

    def element_first(self, decl: ElementDecl) -> GState:
        """First state of an element's grammar (its type's Type_T)."""
        return self.type_grammar(decl.type, decl.name)[0]

    def states(self) -> list[GState]:
        """Every state reachable from the document grammar and the type grammars, sorted."""
        roots = [self.doc] + [s for pair in self.type_grammars.values() for s in pair]
        seen: dict[int, GState] = {}
        order: list[GState] = []
        stack = list(reversed(roots))
        while stack:
            s = stack.pop()
            if id(s) in seen:
                continue
            seen[id(s)] = s
            order.append(s)
            s.finish()
            nxt = []
            for ev, tg in s.prods:
                if ev[0] == "SE":
                    nxt.append(self.element_first(ev[1]))
                if isinstance(tg, GState):
                    nxt.append(tg)
                elif isinstance(tg, Counted):
                    nxt.extend(tg.counter.states.values())
            for t in (s.content2, s.empty):
                if t is not None:
                    nxt.append(t)
            stack.extend(reversed(nxt))
        return order


def _after(p, cls: str | None) -> str:
    """Note of the content state reached after position ``p`` (automaton.Position), with
    its counter class when the position is counted."""
    t = p.term
    what = t.name if isinstance(t, ElementDecl) else "a wildcard element"
    if cls == "lt":
        return f"after {what}, count < minOccurs {p.min}"
    if cls == "mid":
        least = max(p.min, 1)
        return (f"after {what}, count >= {least}" if p.max is None
                else f"after {what}, count {least}..{p.max - 1}")
    if cls == "max":
        return f"after {what}, count = maxOccurs {p.max}"
    return f"after {what}"


def occurrences(particle: Particle, members) -> dict:
    """Largest number of times each element name ((uri, name), or '*' for wildcards) can
    occur in a content particle (math.inf when unbounded); ``members(decl)`` lists the
    names an element particle stands for (its substitution group)."""

    def walk(p: Particle, factor):
        f = factor * (math.inf if p.max is None else p.max)
        t = p.term
        if isinstance(t, ElementDecl):
            return {(m.uri, m.name): f for m in members(t)}
        if isinstance(t, Wildcard):
            return {"*": f}
        res: dict = {}
        for c in t.particles:
            for k, v in walk(c, f).items():
                if t.compositor == "choice":
                    res[k] = max(res.get(k, 0), v)
                else:
                    res[k] = res.get(k, 0) + v
        return res

    return walk(particle, 1) if particle is not None else {}


def _is_list(occurs: dict, m: ElementDecl) -> bool:
    return occurs.get((m.uri, m.name), 0) > 1


def string_table(model: SchemaModel) -> tuple[list[str], list[list[str]]]:
    """URI partition and local-name partitions pre-populated from the schema (Appendix D)."""
    names: dict[str, set] = {"": set(), XML_NS: {"base", "id", "lang", "space"},
                             XSI_NS: {"nil", "type"}, XSD_NS: set(XSD_BUILTIN_NAMES)}
    for ns in model.namespaces:
        names.setdefault(ns, set())
    for e in model.all_elements:
        names.setdefault(e.uri, set()).add(e.name)
    seen_types = set()
    for (uri, local), td in model.named_types.items():
        if uri != XSD_NS:
            names.setdefault(uri, set()).add(local)

    def add_type(td: TypeDef):
        if id(td) in seen_types:
            return
        seen_types.add(id(td))
        for a in td.attributes:
            names.setdefault(a.uri, set()).add(a.name)
    for td in model.named_types.values():
        add_type(td)
    for e in model.all_elements:
        add_type(e.type)
    uris = ["", XML_NS, XSI_NS, XSD_NS] + sorted(u for u in names if u not in ("", XML_NS, XSI_NS, XSD_NS))
    return uris, [sorted(names[u]) for u in uris]
