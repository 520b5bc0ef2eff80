"""Content models as deterministic automata over element positions.

EXI 1.0 §8.5.4.1.5-§8.5.4.1.8 builds a proto-grammar from a particle (concatenating copies
for minOccurs/maxOccurs), then normalises it (§8.5.4.2: removes EE-only hops and merges
duplicate terminals). The result is a deterministic automaton whose states are "which
particle matched last"; this module builds that automaton directly (a Glushkov / position
automaton, deterministic because XML Schema requires Unique Particle Attribution), which is
also how the reference EXIficient walks Xerces' content-model DFA.

A leaf particle with maxOccurs > 1 (or unbounded with minOccurs > 1) is one *counted*
position: instead of maxOccurs copies (2048 for EVPowerProfileEntry) its state carries a
counter class — below minOccurs ('lt'), between ('mid'), at maxOccurs ('max') — and the
decoder keeps the count. Repeated groups are expanded into copies (none with a bounded
maxOccurs > 1 exist in the V2G schemas; the expansion is capped).

`ContentModel(particle)`: ``positions``, ``first``, ``nullable``; `moves(pos, cls)` lists
what may come next. Raises GeneratorError for content models it cannot represent.
"""
from __future__ import annotations

from .model import ElementDecl, GeneratorError, Group, Particle, Wildcard

#: Refuse to expand a repeated group into more positions than this.
MAX_POSITIONS = 20000


class Position:
    """One leaf particle occurrence (element or wildcard) of the content model."""

    __slots__ = ("index", "key", "term", "min", "max", "counted")

    def __init__(self, index: int, term, mn: int, mx: int | None):
        self.index = index
        self.key = term          # identity of the declaration (Xerces' element map entry)
        self.term = term
        self.min = mn
        self.max = mx
        self.counted = (mx is not None and mx > 1) or (mx is None and mn > 1)

    def cls(self, count: int) -> str:
        """Counter class of this counted position after ``count`` occurrences."""
        if count < self.min:
            return "lt"
        if self.max is not None and count >= self.max:
            return "max"
        return "mid"

    def classes(self) -> list[str]:
        """The counter classes a count >= 1 can be in."""
        out = []
        if self.min > 1:
            out.append("lt")
        if self.max is None or self.max > max(self.min, 1):
            out.append("mid")
        if self.max is not None:
            out.append("max")
        return out

    def __repr__(self):
        name = getattr(self.term, "name", "*")
        return f"P{self.index}({name}{{{self.min},{self.max}}})"


class ContentModel:
    """Position automaton of one content particle."""

    def __init__(self, particle: Particle):
        self.positions: list[Position] = []
        self.follow: dict[int, list[int]] = {}
        self.key_order: dict[int, int] = {}
        first, last, nullable = self._particle(particle)
        self.first = first
        self.last = set(last)
        self.nullable = nullable
        for p in self.positions:
            if p.counted and p.index in self.follow.get(p.index, ()):
                raise GeneratorError(f"counted particle {p} repeats through an enclosing group (UPA)")

    # -- construction ------------------------------------------------------------------
    def _new(self, term, mn, mx) -> Position:
        if len(self.positions) >= MAX_POSITIONS:
            raise GeneratorError("content model too large after expanding repeated groups")
        p = Position(len(self.positions), term, mn, mx)
        self.positions.append(p)
        self.follow[p.index] = []
        self.key_order.setdefault(id(term), len(self.key_order))
        return p

    def _particle(self, part: Particle):
        term, mn, mx = part.term, part.min, part.max
        if mx == 0:
            return [], [], True
        if isinstance(term, (ElementDecl, Wildcard)):
            p = self._new(term, mn, mx)
            if mx is None and mn <= 1:
                self.follow[p.index].append(p.index)
            return [p.index], [p.index], mn == 0
        if not isinstance(term, Group):
            raise GeneratorError(f"unknown particle term {term!r}")
        if mx == 1:
            f, l, n = self._group(term)
            return f, l, n or mn == 0
        pieces = []
        if mx is None:
            for _ in range(max(mn - 1, 0)):
                pieces.append(self._group(term))
            f, l, n = self._group(term)
            for x in l:
                for y in f:
                    if y not in self.follow[x]:
                        self.follow[x].append(y)
            pieces.append((f, l, n or mn == 0))
        else:
            for _ in range(mn):
                pieces.append(self._group(term))
            # optional copies nest, (G (G (G)?)?)?, so that the automaton stays deterministic
            tail = None
            for _ in range(mx - mn):
                piece = self._group(term)
                if tail is not None:
                    piece = self._concat([piece, tail])
                tail = (piece[0], piece[1], True)
            if tail is not None:
                pieces.append(tail)
        return self._concat(pieces)

    def _group(self, g: Group):
        if g.compositor == "sequence":
            return self._concat([self._particle(p) for p in g.particles])
        if g.compositor == "choice":
            if not g.particles:
                return [], [], False
            first, last, nullable = [], [], False
            for p in g.particles:
                f, l, n = self._particle(p)
                first += f
                last += l
                nullable = nullable or n
            return first, last, nullable
        raise GeneratorError("xs:all is only supported as the whole content of a complex type")

    def _concat(self, pieces):
        first, last, nullable = [], [], True
        for f, l, n in pieces:
            for x in last:
                for y in f:
                    if y not in self.follow[x]:
                        self.follow[x].append(y)
            if nullable:
                first = first + f
            last = l + last if n else list(l)
            nullable = nullable and n
        return first, last, nullable

    # -- use ---------------------------------------------------------------------------
    def moves(self, pos: int | None, cls: str | None):
        """What may follow state (pos, cls): ([(position, how)], end_allowed) where how is
        'plain', 'enter' (a counted position starts at count 1) or 'loop' (count + 1)."""
        if pos is None:
            out = [(self.positions[q], "enter" if self.positions[q].counted else "plain")
                   for q in self.first]
            return out, self.nullable
        p = self.positions[pos]
        out = []
        if p.counted:
            if cls != "max":
                out.append((p, "loop"))
            if cls == "lt":
                return out, False
        for q in self.follow[pos]:
            qp = self.positions[q]
            out.append((qp, "enter" if qp.counted else "plain"))
        return out, pos in self.last
