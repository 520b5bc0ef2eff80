"""Values computed from a decoded message tree, kept by the tree's identity.

Identical V2GTP payloads decode to one shared, read-only tree (dissectors/v2g.py
``_decode_cached``: 9 of 10 charge-loop messages repeat byte for byte), so a value computed
from a tree serves every event that carries it. A :class:`TreeMemo` keeps such values by
``id(tree)`` with the tree itself beside the value, so that the id cannot be reused by another
tree while the value is kept; it is bounded and starts afresh after ``max_trees`` trees.

Where a memo lives decides how long its values live: one per analysis through the analysis
cache (``ctx.view((name, ...), None, TreeMemo)``, rules/message_content/common.py), or one
per process for values that are needed before an analysis exists (the SI facts of an event,
analyzer/physical.py ``event_facts``, read by the session builder).
"""
from __future__ import annotations

from typing import Any


class TreeMemo:
    """A bounded memo of values by decoded tree (module docstring).

    ``get(tree)`` → the value kept for this very tree, or None (values themselves are never
    None); ``put(tree, value)`` keeps and returns ``value``.
    """

    __slots__ = ("_memo", "max_trees")

    def __init__(self, max_trees: int = 16384):
        self._memo: dict[int, tuple[Any, Any]] = {}
        self.max_trees = max_trees

    def get(self, tree) -> Any:
        """The value kept for ``tree`` (the same object, not an equal one), or None."""
        hit = self._memo.get(id(tree))
        if hit is not None and hit[0] is tree:
            return hit[1]
        return None

    def put(self, tree, value):
        """Keep ``value`` for ``tree`` and return it; the memo starts afresh when full."""
        if len(self._memo) >= self.max_trees:
            self._memo.clear()
        self._memo[id(tree)] = (tree, value)
        return value

    def __len__(self) -> int:
        return len(self._memo)
