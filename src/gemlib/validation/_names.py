"""Verdicts on short names (tool names, argument keys, reply paths), kept across trajectories."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["MEMO_CHARS", "MEMO_SIZE", "is_id_key", "short_memo"]

T = TypeVar("T")

MEMO_CHARS = 80
"""Longer names are computed each time, so the memo stays small whatever a model writes."""
MEMO_SIZE = 4096
"""Names a :func:`short_memo` keeps before it starts afresh."""


class _ShortMemo(dict[str, T]):
    """Results by name, computed on a miss; short names only, at most :data:`MEMO_SIZE`."""

    def __init__(self, compute: Callable[[str], T]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, name: str) -> T:
        value = self.compute(name)
        if len(name) <= MEMO_CHARS:
            if len(self) >= MEMO_SIZE:
                self.clear()
            self[name] = value
        return value


def short_memo(compute: Callable[[str], T]) -> Callable[[str], T]:
    """``compute`` with its results kept for names of up to :data:`MEMO_CHARS` characters.

    Names, keys and paths recur in every call and reply of a trajectory, and
    across trajectories; a kept result costs one dictionary lookup.
    """
    return _ShortMemo(compute).__getitem__


@short_memo
def is_id_key(key: str) -> bool:
    """Whether a field or argument names an ID: ``id``, ``order_id``, ``orderId``, ``userID``."""
    low = key.lower()
    return low == "id" or low.endswith("_id") or (key.endswith(("Id", "ID")) and len(key) > 2)
